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

// VerticalPodAutoscaler CRD (autoscaling.k8s.io/v1), openAPIV3Schema of kubernetes/autoscaler's
// vertical-pod-autoscaler/deploy/vpa-v1-crd-gen.yaml (VPA 1.x), transcribed for the fields of spec;
// like the API server with strict field validation, unknown fields are errors.
const QUANTITY = /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;
function validateVpa(o) {
  const errs = [];
  const isObj = (x) => typeof x === "object" && x !== null && !Array.isArray(x);
  const only = (x, where, keys) => {
    for (const k of Object.keys(x)) if (!keys.includes(k)) errs.push(`${where}: unknown field '${k}'`);
  };
  const isInt32 = (x) => Number.isInteger(x) && x >= -2147483648 && x <= 2147483647;
  const resources = (x, where) => {
    if (!isObj(x)) return errs.push(`${where}: must be an object`);
    for (const [k, v] of Object.entries(x))
      if (!(Number.isInteger(v) || (typeof v === "string" && QUANTITY.test(v)))) errs.push(`${where}.${k}: not a quantity`);
  };
  const enumOf = (x, where, values) => {
    if (!values.includes(x)) errs.push(`${where}: must be one of ${values.join(", ")}`);
  };
  only(o, "", ["apiVersion", "kind", "metadata", "spec", "status"]);
  if (!isObj(o.metadata) || typeof o.metadata.name !== "string") errs.push("metadata.name: required string");
  const spec = o.spec;
  if (!isObj(spec)) return [...errs, "spec: required object"];
  only(spec, "spec", ["targetRef", "updatePolicy", "resourcePolicy", "recommenders", "startupBoost"]);
  const ref = spec.targetRef;
  if (!isObj(ref)) errs.push("spec.targetRef: required object");
  else {
    only(ref, "spec.targetRef", ["apiVersion", "kind", "name"]);
    for (const k of ["kind", "name"]) if (typeof ref[k] !== "string") errs.push(`spec.targetRef.${k}: required string`);
    if (ref.apiVersion !== undefined && typeof ref.apiVersion !== "string") errs.push("spec.targetRef.apiVersion: string");
  }
  const up = spec.updatePolicy;
  if (up !== undefined) {
    if (!isObj(up)) errs.push("spec.updatePolicy: must be an object");
    else {
      only(up, "spec.updatePolicy", ["updateMode", "minReplicas", "evictionRequirements", "evictAfterOOMSeconds"]);
      if (up.updateMode !== undefined)
        enumOf(up.updateMode, "spec.updatePolicy.updateMode", ["Off", "Initial", "Recreate", "InPlaceOrRecreate", "InPlace", "Auto"]);
      if (up.minReplicas !== undefined && !isInt32(up.minReplicas)) errs.push("spec.updatePolicy.minReplicas: int32");
      if (up.evictAfterOOMSeconds !== undefined && !(isInt32(up.evictAfterOOMSeconds) && up.evictAfterOOMSeconds >= 1))
        errs.push("spec.updatePolicy.evictAfterOOMSeconds: int32 >= 1");
      if (up.evictionRequirements !== undefined && !Array.isArray(up.evictionRequirements))
        errs.push("spec.updatePolicy.evictionRequirements: must be an array");
    }
  }
  const rp = spec.resourcePolicy;
  if (rp !== undefined) {
    if (!isObj(rp)) errs.push("spec.resourcePolicy: must be an object");
    else {
      only(rp, "spec.resourcePolicy", ["containerPolicies"]);
      (Array.isArray(rp.containerPolicies) ? rp.containerPolicies : []).forEach((c, i) => {
        const w = `spec.resourcePolicy.containerPolicies[${i}]`;
        if (!isObj(c)) return errs.push(`${w}: must be an object`);
        if (c.containerName !== undefined && typeof c.containerName !== "string") errs.push(`${w}.containerName: string`);
        if (c.mode !== undefined) enumOf(c.mode, `${w}.mode`, ["Auto", "Off"]);
        if (c.controlledValues !== undefined) enumOf(c.controlledValues, `${w}.controlledValues`, ["RequestsAndLimits", "RequestsOnly"]);
        for (const k of ["minAllowed", "maxAllowed"]) if (c[k] !== undefined) resources(c[k], `${w}.${k}`);
      });
    }
  }
  if (spec.recommenders !== undefined) {
    if (!Array.isArray(spec.recommenders)) errs.push("spec.recommenders: must be an array");
    else spec.recommenders.forEach((r, i) => {
      if (!isObj(r) || typeof r.name !== "string") errs.push(`spec.recommenders[${i}].name: required string`);
    });
  }
  return errs;
}

async function validateOne(o) {
  if (typeof o !== "object" || o === null || Array.isArray(o)) return ["not an object"];
  const { apiVersion, kind } = o;
  if (typeof apiVersion !== "string" || typeof kind !== "string") return ["apiVersion and kind are required strings"];
  if (apiVersion === "k8s.cni.cncf.io/v1" && kind === "NetworkAttachmentDefinition") return validateNad(o);
  if (apiVersion === "autoscaling.k8s.io/v1" && kind === "VerticalPodAutoscaler") return validateVpa(o);
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
