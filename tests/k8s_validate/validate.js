#!/usr/bin/env node
// Validates Kubernetes objects against the official OpenAPI schemas shipped by the npm package
// kubernetes-models (and @kubernetes-models/prometheus-operator for ServiceMonitor), using each
// model's validate(). Used by gedge's tests for every object gedge renders or passes through.
//
// stdin: JSON: one object, an array of objects, or a {kind: List, items: [...]}. Objects gedge
// does not send to Kubernetes (apiVersion gedge/v1) are skipped.
// Exit 0: all valid. Exit 1: messages on stderr, one per invalid object ("#i Kind/name: ...").
// Exit 2: unreadable input, or a kind without a schema (unless --allow-unknown-kinds).
//
// Network attachment definitions (k8s.cni.cncf.io/v1) have no kubernetes-models package; they
// are checked against the openAPIV3Schema of the NetworkAttachmentDefinition CRD published by
// the Network Plumbing Working Group (k8snetworkplumbingwg/network-attachment-definition-client,
// artifacts/networks-crd.yaml), copied below.
import { readFileSync } from "node:fs";

const allowUnknown = process.argv.includes("--allow-unknown-kinds");

function groupPath(apiVersion) {
  if (apiVersion === "v1") return "kubernetes-models/v1";
  if (apiVersion.startsWith("monitoring.coreos.com/")) return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  return `kubernetes-models/${apiVersion}`;
}

// NetworkAttachmentDefinition CRD (k8s.cni.cncf.io/v1), openAPIV3Schema.
function validateNad(o) {
  const errs = [];
  const allowed = new Set(["apiVersion", "kind", "metadata", "spec"]);
  for (const k of Object.keys(o)) if (!allowed.has(k)) errs.push(`unknown field '${k}'`);
  if (typeof o.metadata !== "object" || o.metadata === null || typeof o.metadata.name !== "string")
    errs.push("metadata.name: required string");
  if (o.spec !== undefined) {
    if (typeof o.spec !== "object" || o.spec === null) errs.push("spec: must be an object");
    else {
      for (const k of Object.keys(o.spec)) if (k !== "config") errs.push(`spec: unknown field '${k}'`);
      if (o.spec.config !== undefined) {
        if (typeof o.spec.config !== "string") errs.push("spec.config: must be a string");
        else {
          try {
            const c = JSON.parse(o.spec.config);
            if (typeof c !== "object" || c === null || typeof c.cniVersion !== "string" || typeof c.type !== "string")
              errs.push("spec.config: a CNI configuration needs string cniVersion and type");
          } catch (e) {
            errs.push(`spec.config: not JSON: ${e.message}`);
          }
        }
      }
    }
  }
  return errs;
}

async function validateOne(o) {
  if (typeof o !== "object" || o === null || Array.isArray(o)) return ["not an object"];
  const { apiVersion, kind } = o;
  if (typeof apiVersion !== "string" || typeof kind !== "string") return ["apiVersion and kind are required strings"];
  if (apiVersion === "k8s.cni.cncf.io/v1" && kind === "NetworkAttachmentDefinition") return validateNad(o);
  let mod;
  try {
    mod = await import(groupPath(apiVersion));
  } catch (e) {
    return allowUnknown ? [] : [`no schema for apiVersion ${apiVersion}`, "unknown"];
  }
  const Model = mod[kind];
  if (!Model) return allowUnknown ? [] : [`no schema for ${apiVersion} ${kind}`, "unknown"];
  try {
    new Model(o).validate();
    return [];
  } catch (e) {
    return [e.message || String(e)];
  }
}

let input;
try {
  input = JSON.parse(readFileSync(0, "utf8"));
} catch (e) {
  console.error(`k8s-validate: stdin is not JSON: ${e.message}`);
  process.exit(2);
}
let objects = Array.isArray(input) ? input : input && input.kind === "List" ? input.items || [] : [input];
let bad = 0, unknown = false, checked = 0;
for (let i = 0; i < objects.length; i++) {
  const o = objects[i];
  if (o && typeof o === "object" && o.apiVersion === "gedge/v1") continue;
  checked++;
  const errs = await validateOne(o);
  if (errs.length === 0) continue;
  if (errs[errs.length - 1] === "unknown") { unknown = true; errs.pop(); }
  bad++;
  const name = o && o.metadata && o.metadata.name;
  console.error(`#${i} ${o && o.kind}/${name}: ${errs.join("; ")}`);
}
if (bad > 0) process.exit(unknown ? 2 : 1);
console.log(`k8s-validate: ${checked} object(s) valid`);
