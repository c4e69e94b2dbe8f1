#!/usr/bin/python3
"""A Kubernetes API server DOUBLE for gedge's tests. It is not a cluster and never claims to be.

It enforces the parts of the API semantics gedge relies on:
  * HTTPS only, with a certificate signed by a CA this script generates (openssl CLI);
  * bearer-token authentication: a bad/missing token -> 401; the "viewer" token may only read
    (writes -> 403);
  * discovery: /version, /api, /api/v1, /apis, /apis/<group>/<version> (APIResourceList);
  * content types: PATCH must be application/apply-patch+yaml (server-side apply) or
    application/merge-patch+json; anything else -> 415;
  * server-side apply: fieldManager required (400); create on first apply; per-manager field
    ownership (leaf paths, lists atomic); a changed value of a field owned by another manager ->
    409 Conflict unless force=true (then ownership moves); no-op applies keep resourceVersion;
  * dryRun=All: the response shows the result, nothing is stored;
  * validation where mistakes are easy: HPA metric types (Resource, Pods, Object, External,
    ContainerResource; GS-Engine's `Pod` -> 422), VPA targetRef and updateMode, LimitRange types;
  * GET/LIST (labelSelector k=v[,k=v]), DELETE -> 404 for absent objects;
  * PUT with a stale metadata.resourceVersion -> 409;
  * a simulated Deployment controller: status.replicas/readyReplicas/availableReplicas follow
    spec.replicas and Pods named <deploy>-<n> appear with phase Running (so "wait for
    available" and pod listings can be tested). This is a simulation, not a kubelet.
  * pod logs (GET .../pods/NAME/log): simulated container output, six lines ten minutes apart
    ending at the pod's creation, then (follow=true, chunked) one line every 0.2 s until the
    client goes; `container` is required when the pod has several and must name one of them
    (400 otherwise); tailLines and sinceSeconds are validated and applied (since first);
  * TLS names: the server certificate carries IP 127.0.0.1, DNS localhost and DNS
    api.double.test (so a kubeconfig tls-server-name can be right or wrong); the SNI each
    connection sent is appended to DIR/sni.log.

Usage: k8s_double.py --dir DIR [--port 0] [--nodes N] [--seed FILE]
--seed FILE: a JSON list of objects stored as given (status included, no controller run), so a
test can show nodes that are not ready, pods in every phase, PVs, extra storage classes.
Writes DIR/ca.crt, DIR/kubeconfig (context "double", token auth), DIR/kubeconfig-viewer,
DIR/kubeconfig-badtoken, DIR/kubeconfig-wrongca, DIR/kubeconfig-insecure, DIR/kubeconfig-tlsname
(tls-server-name api.double.test), DIR/kubeconfig-wrongname (tls-server-name wrong.double.test),
then prints one JSON line
{"port": P, "kubeconfig": ..., "pid": ...} on stdout when it is ready to serve.
"""
import argparse
import calendar
import copy
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    import yaml  # optional: apply bodies may be YAML; gedge sends JSON (which is YAML)
except ImportError:  # pragma: no cover
    yaml = None

ADMIN_TOKEN = "double-admin-token"
TLS_NAME = "api.double.test"
VIEWER_TOKEN = "double-viewer-token"

# group/version -> [(kind, plural, namespaced)]
RESOURCES = {
    "v1": [("Pod", "pods", True), ("Service", "services", True), ("Node", "nodes", False),
           ("Namespace", "namespaces", False), ("PersistentVolume", "persistentvolumes", False),
           ("ConfigMap", "configmaps", True), ("Secret", "secrets", True), ("PersistentVolumeClaim", "persistentvolumeclaims", True),
           ("LimitRange", "limitranges", True)],
    "apps/v1": [("Deployment", "deployments", True)],
    "autoscaling/v2": [("HorizontalPodAutoscaler", "horizontalpodautoscalers", True)],
    "monitoring.coreos.com/v1": [("ServiceMonitor", "servicemonitors", True)],
    "storage.k8s.io/v1": [("StorageClass", "storageclasses", False)],
    "autoscaling.k8s.io/v1": [("VerticalPodAutoscaler", "verticalpodautoscalers", True)],
    "k8s.cni.cncf.io/v1": [("NetworkAttachmentDefinition", "network-attachment-definitions", True)],
}
# Subresources served (listed by discovery as "<plural>/<sub>", never as kinds of their own).
SUBRESOURCES = {"v1": [("pods/log", "Pod", True)]}
PLURALS = {(gv, plural): (kind, ns) for gv, lst in RESOURCES.items() for kind, plural, ns in lst}


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def leaves(obj, prefix=()):
    """Leaf field paths of an applied object (dicts recurse; lists and scalars are leaves)."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if prefix == () and k in ("apiVersion", "kind"):
                continue
            if prefix == ("metadata",) and k in ("name", "namespace", "resourceVersion", "managedFields",
                                                 "uid", "creationTimestamp", "generation"):
                continue
            if prefix == () and k == "status":
                continue
            if isinstance(v, dict) and v:
                out.update(leaves(v, prefix + (k,)))
            else:
                out[prefix + (k,)] = v
    return out


def get_path(obj, path):
    for p in path:
        if not isinstance(obj, dict) or p not in obj:
            return (False, None)
        obj = obj[p]
    return (True, obj)


def set_path(obj, path, value):
    for p in path[:-1]:
        obj = obj.setdefault(p, {})
    obj[path[-1]] = copy.deepcopy(value)


def del_path(obj, path):
    stack = []
    for p in path[:-1]:
        if p not in obj:
            return
        stack.append((obj, p))
        obj = obj[p]
    obj.pop(path[-1], None)
    for parent, key in reversed(stack):  # prune emptied maps
        if parent[key] == {}:
            del parent[key]


HPA_METRIC_TYPES = ("Resource", "Pods", "Object", "External", "ContainerResource")
VPA_MODES = ("Off", "Initial", "Recreate", "Auto", "InPlaceOrRecreate")


def validate(kind, obj):
    """The API server's validation for the fields gedge renders where a mistake is easy (and was
    made: GS-Engine's HPA type `Pod`). Returns a message, or "" when valid."""
    spec = obj.get("spec", {})
    if kind == "HorizontalPodAutoscaler":
        for i, m in enumerate(spec.get("metrics", [])):
            t = m.get("type")
            if t not in HPA_METRIC_TYPES:
                return (f'spec.metrics[{i}].type: Unsupported value: "{t}": supported values: '
                        + ", ".join(f'"{x}"' for x in HPA_METRIC_TYPES))
            key = t[0].lower() + t[1:]
            if key not in m:
                return f"spec.metrics[{i}].{key}: Required value: must populate information for the given metric source"
    if kind == "VerticalPodAutoscaler":
        ref = spec.get("targetRef", {})
        if not ref.get("kind") or not ref.get("name"):
            return "spec.targetRef: Required value"
        mode = spec.get("updatePolicy", {}).get("updateMode", "Auto")
        if mode not in VPA_MODES:
            return f'spec.updatePolicy.updateMode: Unsupported value: "{mode}"'
    if kind == "LimitRange":
        for i, item in enumerate(spec.get("limits", [])):
            if item.get("type") not in ("Container", "Pod", "PersistentVolumeClaim"):
                return f'spec.limits[{i}].type: Unsupported value: "{item.get("type")}"'
    return ""


class Store:
    def __init__(self, nodes):
        self.lock = threading.Lock()
        self.rv = 1000
        self.objects = {}   # (gv, plural, ns, name) -> object
        self.owners = {}    # same key -> {manager: set(paths)}
        for i in range(nodes):
            self.put_raw("v1", "nodes", "", {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": f"double-node-{i}", "labels": {"gedge.io/tier": "local"}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}],
                           "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                           "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})
        self.put_raw("storage.k8s.io/v1", "storageclasses", "", {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "double-local"}, "provisioner": "double.invalid/none"})
        self.put_raw("v1", "namespaces", "", {"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": "default"}})

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def put_raw(self, gv, plural, ns, obj):
        md = obj.setdefault("metadata", {})
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        md["resourceVersion"] = self.next_rv()
        md.setdefault("generation", 1)
        if ns:
            md["namespace"] = ns
        self.objects[(gv, plural, ns, md["name"])] = obj

    # The simulated Deployment controller: pods and status follow spec.replicas.
    def reconcile_deployment(self, ns, dep):
        name = dep["metadata"]["name"]
        want = dep.get("spec", {}).get("replicas", 1)
        labels = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
        existing = sorted(k for k in self.objects
                          if k[0] == "v1" and k[1] == "pods" and k[2] == ns
                          and self.objects[k].get("metadata", {}).get("ownerReferences", [{}])[0].get("name") == name)
        for k in existing[want:]:
            del self.objects[k]
        for i in range(len(existing), want):
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"{name}-{i}", "labels": dict(labels),
                                "ownerReferences": [{"kind": "Deployment", "name": name}]},
                   "spec": copy.deepcopy(dep.get("spec", {}).get("template", {}).get("spec", {})),
                   "status": {"phase": "Running",
                              "containerStatuses": [{"name": c.get("name"), "ready": True, "restartCount": 0}
                                                    for c in dep.get("spec", {}).get("template", {})
                                                    .get("spec", {}).get("containers", [])]}}
            pod["spec"]["nodeName"] = "double-node-0"
            self.put_raw("v1", "pods", ns, pod)
        dep["status"] = {"observedGeneration": dep["metadata"].get("generation", 1), "replicas": want,
                         "readyReplicas": want, "availableReplicas": want, "updatedReplicas": want,
                         "conditions": [{"type": "Available", "status": "True"}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8s-api-double/1"

    def log_message(self, fmt, *args):  # quiet; the test reads the JSON, not logs
        if os.environ.get("K8S_DOUBLE_VERBOSE"):
            sys.stderr.write("double: " + fmt % args + "\n")

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def auth(self, write):
        h = self.headers.get("Authorization", "")
        token = h[7:] if h.startswith("Bearer ") else None
        if token not in (ADMIN_TOKEN, VIEWER_TOKEN):
            self.reply(401, status(401, "Unauthorized", "Unauthorized"))
            return False
        if write and token != ADMIN_TOKEN:
            self.reply(403, status(403, "Forbidden", "user \"viewer\" cannot modify resources"))
            return False
        return True

    def body(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def route(self):
        """-> (gv, plural, ns, name, query) or a discovery path string."""
        u = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query).items()}
        parts = [p for p in u.path.split("/") if p]
        if parts[:1] == ["api"]:
            gv, rest = (parts[1] if len(parts) > 1 else None), parts[2:]
        elif parts[:1] == ["apis"]:
            gv, rest = ("/".join(parts[1:3]) if len(parts) > 2 else None), parts[3:]
        else:
            return None, q
        if gv is None or not rest:
            return ("discovery", parts), q
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        name = urllib.parse.unquote(rest[1]) if len(rest) > 1 else ""
        return (gv, plural, ns, name), q

    def do_GET(self):
        if not self.auth(False):
            return
        path = urllib.parse.urlsplit(self.path).path
        if path == "/version":
            return self.reply(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-double",
                                    "platform": "k8s-api-double"})
        if path == "/api":
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = [{"name": gv.split("/")[0], "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}]}
                      for gv in RESOURCES if "/" in gv]
            return self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/log", path)
        if m:
            return self.pod_log(urllib.parse.unquote(m.group(1)), urllib.parse.unquote(m.group(2)))
        r, q = self.route()
        if r is None:
            return self.reply(404, status(404, "NotFound", "the server could not find the requested resource"))
        if r[0] == "discovery":
            parts = r[1]
            gv = parts[1] if parts[0] == "api" else "/".join(parts[1:3])
            if gv not in RESOURCES:
                return self.reply(404, status(404, "NotFound", f"the server could not find {gv}"))
            return self.reply(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                                    "resources": [{"name": p, "kind": k, "namespaced": n,
                                                   "verbs": ["get", "list", "patch", "delete"]}
                                                  for k, p, n in RESOURCES[gv]] +
                                                 [{"name": p, "kind": k, "namespaced": n, "verbs": ["get"]}
                                                  for p, k, n in SUBRESOURCES.get(gv, [])]})
        gv, plural, ns, name = r
        if (gv, plural) not in PLURALS:
            return self.reply(404, status(404, "NotFound", f"no resource {plural} in {gv}"))
        store = self.server.store
        with store.lock:
            if name:
                obj = store.objects.get((gv, plural, ns, name))
                if obj is None:
                    return self.reply(404, status(404, "NotFound", f'{plural} "{name}" not found'))
                return self.reply(200, obj)
            sel = {}
            for term in filter(None, q.get("labelSelector", "").split(",")):
                k, _, v = term.partition("=")
                sel[k] = v
            items = [o for (g, p, n, _), o in sorted(store.objects.items())
                     if g == gv and p == plural and (not ns or n == ns)
                     and all(o.get("metadata", {}).get("labels", {}).get(k) == v for k, v in sel.items())]
            kind = PLURALS[(gv, plural)][0]
            return self.reply(200, {"kind": kind + "List", "apiVersion": gv,
                                    "metadata": {"resourceVersion": str(store.rv)}, "items": items})

    def pod_log(self, ns, name):
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).items()}
        store = self.server.store
        with store.lock:
            pod = copy.deepcopy(store.objects.get(("v1", "pods", ns, name)))
        if pod is None:
            return self.reply(404, status(404, "NotFound", f'pods "{name}" not found'))
        containers = [c.get("name") for c in pod.get("spec", {}).get("containers", [])]
        container = q.get("container")
        if not container:
            if len(containers) != 1:
                return self.reply(400, status(400, "BadRequest", f"a container name must be specified for pod {name}, "
                                                                 f"choose one of: [{' '.join(containers)}]"))
            container = containers[0]
        if container not in containers:
            return self.reply(400, status(400, "BadRequest", f'container {container} is not valid for pod {name}'))
        try:
            tail = int(q["tailLines"]) if "tailLines" in q else None
            since = int(q["sinceSeconds"]) if "sinceSeconds" in q else None
        except ValueError:
            return self.reply(400, status(400, "BadRequest", "tailLines and sinceSeconds must be integers"))
        if (tail is not None and tail < 0) or (since is not None and since < 1):
            return self.reply(400, status(400, "BadRequest", "tailLines must be >= 0 and sinceSeconds >= 1"))
        follow = q.get("follow") == "true"
        created = pod.get("metadata", {}).get("creationTimestamp", "")
        try:
            t0 = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            t0 = time.time()
        # Simulated output: six lines ten minutes apart, the last at creation.
        lines = [(t0 - 3000 + i * 600, f"{name} {container}: line {i} (simulated by the API double)")
                 for i in range(6)]
        now = time.time()
        if since is not None:
            lines = [ln for ln in lines if ln[0] >= now - since]
        if tail is not None:
            lines = lines[len(lines) - tail:] if tail else []
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if not follow:
            body = "".join(text + "\n" for _, text in lines).encode()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        try:
            if lines:
                chunk("".join(text + "\n" for _, text in lines).encode())
            n = 0
            while True:
                time.sleep(0.2)
                with store.lock:
                    if ("v1", "pods", ns, name) not in store.objects:
                        break  # the pod is gone: the stream ends, as the kubelet's does
                chunk(f"{name} {container}: tick {n}\n".encode())
                n += 1
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass  # the client went away (Ctrl-C)
        self.close_connection = True

    def do_PATCH(self):
        if not self.auth(True):
            return
        r, q = self.route()
        if r is None or r[0] == "discovery" or not r[3]:
            return self.reply(405, status(405, "MethodNotAllowed", "PATCH needs an object path"))
        gv, plural, ns, name = r
        if (gv, plural) not in PLURALS:
            return self.reply(404, status(404, "NotFound", f"no resource {plural} in {gv}"))
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
        raw = self.body()
        if ctype not in ("application/apply-patch+yaml", "application/merge-patch+json"):
            return self.reply(415, status(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {ctype}"))
        try:
            patch = json.loads(raw) if (ctype.endswith("json") or yaml is None) else yaml.safe_load(raw)
        except Exception as e:  # noqa: BLE001
            return self.reply(400, status(400, "BadRequest", f"cannot parse body: {e}"))
        if not isinstance(patch, dict):
            return self.reply(400, status(400, "BadRequest", "body must be an object"))
        dry = q.get("dryRun") == "All"
        store = self.server.store
        key = (gv, plural, ns, name)
        kind, namespaced = PLURALS[(gv, plural)]
        with store.lock:
            cur = store.objects.get(key)
            if ctype == "application/merge-patch+json":
                if cur is None:
                    return self.reply(404, status(404, "NotFound", f'{plural} "{name}" not found'))
                new = copy.deepcopy(cur)
                for path, v in leaves(patch).items():
                    set_path(new, path, v)
                return self.commit(key, cur, new, store.owners.get(key, {}), dry, 200)
            manager = q.get("fieldManager")
            if not manager:
                return self.reply(400, status(400, "BadRequest", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"))
            if patch.get("apiVersion") != gv or patch.get("kind") != kind:
                return self.reply(400, status(400, "BadRequest", f"apiVersion/kind in the body ({patch.get('apiVersion')}/{patch.get('kind')}) do not match the URL ({gv}/{kind})"))
            md = patch.get("metadata", {})
            if md.get("name") != name or (namespaced and md.get("namespace", ns) != ns):
                return self.reply(400, status(400, "BadRequest", "metadata.name/namespace in the body do not match the URL"))
            invalid = validate(kind, patch)
            if invalid:
                return self.reply(422, status(422, "Invalid", f'{kind} "{name}" is invalid: {invalid}'))
            force = q.get("force") == "true"
            applied = leaves(patch)
            owners = copy.deepcopy(store.owners.get(key, {}))
            base = copy.deepcopy(cur) if cur is not None else {"apiVersion": gv, "kind": kind,
                                                               "metadata": {"name": name}}
            conflicts = []
            for path, v in applied.items():
                for m, paths in owners.items():
                    if m == manager or path not in paths:
                        continue
                    found, old = get_path(base, path)
                    if found and old != v:
                        conflicts.append((m, path))
            if conflicts and not force:
                msg = "Apply failed with {} conflict{}: {}".format(
                    len(conflicts), "s" if len(conflicts) > 1 else "",
                    "; ".join(f'conflict with "{m}": .{".".join(p)}' for m, p in conflicts))
                return self.reply(409, status(409, "Conflict", msg))
            for m, p in conflicts:
                owners[m].discard(p)
            mine_before = owners.get(manager, set())
            new = base
            for path in mine_before - set(applied):
                if not any(path in ps for m, ps in owners.items() if m != manager):
                    del_path(new, path)
            for path, v in applied.items():
                set_path(new, path, v)
            owners[manager] = set(applied)
            return self.commit(key, cur, new, owners, dry, 201 if cur is None else 200)

    def commit(self, key, cur, new, owners, dry, code):
        store = self.server.store
        gv, plural, ns, name = key
        if ns:
            new["metadata"]["namespace"] = ns
        changed = cur is None or {k: v for k, v in new.items() if k != "status"} != \
            {k: v for k, v in cur.items() if k != "status"}
        if cur is not None and not changed:
            new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        new["metadata"]["managedFields"] = [{"manager": m, "operation": "Apply",
                                             "fieldsV1": sorted(".".join(p) for p in ps)}
                                            for m, ps in sorted(owners.items()) if ps]
        if dry:
            return self.reply(code, new)
        if changed:
            if cur is not None and new.get("spec") != cur.get("spec"):
                new["metadata"]["generation"] = cur["metadata"].get("generation", 1) + 1
            store.put_raw(gv, plural, ns, new)
            store.owners[key] = owners
        if plural == "deployments":
            store.reconcile_deployment(ns, store.objects[key])
        return self.reply(code, store.objects[key])

    def do_PUT(self):
        if not self.auth(True):
            return
        r, q = self.route()
        if r is None or r[0] == "discovery" or not r[3]:
            return self.reply(405, status(405, "MethodNotAllowed", "PUT needs an object path"))
        gv, plural, ns, name = r
        try:
            obj = json.loads(self.body())
        except ValueError as e:
            return self.reply(400, status(400, "BadRequest", str(e)))
        store = self.server.store
        with store.lock:
            cur = store.objects.get((gv, plural, ns, name))
            if cur is None:
                return self.reply(404, status(404, "NotFound", f'{plural} "{name}" not found'))
            rv = obj.get("metadata", {}).get("resourceVersion")
            if rv != cur["metadata"]["resourceVersion"]:
                return self.reply(409, status(409, "Conflict", f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified; please apply your changes to the latest version and try again'))
            if q.get("dryRun") == "All":
                return self.reply(200, obj)
            store.put_raw(gv, plural, ns, obj)
            return self.reply(200, obj)

    def do_DELETE(self):
        if not self.auth(True):
            return
        r, q = self.route()
        if r is None or r[0] == "discovery" or not r[3]:
            return self.reply(405, status(405, "MethodNotAllowed", "DELETE needs an object path"))
        gv, plural, ns, name = r
        store = self.server.store
        with store.lock:
            key = (gv, plural, ns, name)
            if key not in store.objects:
                return self.reply(404, status(404, "NotFound", f'{plural} "{name}" not found'))
            if q.get("dryRun") != "All":
                del store.objects[key]
                store.owners.pop(key, None)
                if plural == "deployments":
                    for k in [k for k in store.objects if k[1] == "pods" and k[2] == ns and
                              store.objects[k]["metadata"].get("ownerReferences", [{}])[0].get("name") == name]:
                        del store.objects[k]
            return self.reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success",
                                    "details": {"name": name, "kind": plural}})


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA."""
    ext = os.path.join(d, "san.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:{TLS_NAME}\nbasicConstraints=CA:FALSE\n")
    for ca in ("ca", "wrong-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                f"/CN=k8s-api-double {ca}", "-keyout", os.path.join(d, f"{ca}.key"),
                "-out", os.path.join(d, f"{ca}.crt"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", os.path.join(d, "server.key"), "-out", os.path.join(d, "server.csr"))
    openssl("x509", "-req", "-in", os.path.join(d, "server.csr"), "-CA", os.path.join(d, "ca.crt"),
            "-CAkey", os.path.join(d, "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", ext, "-out", os.path.join(d, "server.crt"))


def kubeconfig(server, ca_file, token, insecure=False, tls_name=None):
    cluster = {"server": server}
    if tls_name:
        cluster["tls-server-name"] = tls_name
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    else:
        cluster["certificate-authority"] = ca_file
    return json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "double",
                       "clusters": [{"name": "double", "cluster": cluster}],
                       "users": [{"name": "double-user", "user": {"token": token}}],
                       "contexts": [{"name": "double", "context": {"cluster": "double", "user": "double-user"}}]},
                      indent=1)


def seed_objects(store, objects):
    """Stores each object of a --seed list as given (status kept; no simulated controller)."""
    kinds = {(gv, kind): (plural, ns) for gv, lst in RESOURCES.items() for kind, plural, ns in lst}
    for o in objects:
        plural, namespaced = kinds[(o["apiVersion"], o["kind"])]
        ns = o.get("metadata", {}).get("namespace", "default") if namespaced else ""
        store.put_raw(o["apiVersion"], plural, ns, copy.deepcopy(o))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--seed", help="JSON list of objects to store as given (status included)")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    make_certs(a.dir)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.store = Store(a.nodes)
    if a.seed:
        with open(a.seed) as f:
            seed_objects(srv.store, json.load(f))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(a.dir, "server.crt"), os.path.join(a.dir, "server.key"))
    sni_log = os.path.join(a.dir, "sni.log")

    def record_sni(sock, name, _ctx):  # what the client asked for (None: no SNI, e.g. an IP)
        with open(sni_log, "a") as f:
            f.write(f"{name or ''}\n")
    ctx.sni_callback = record_sni
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    server = f"https://127.0.0.1:{port}"
    files = {"kubeconfig": (ADMIN_TOKEN, "ca.crt", False, None),
             "kubeconfig-viewer": (VIEWER_TOKEN, "ca.crt", False, None),
             "kubeconfig-badtoken": ("not-a-valid-token", "ca.crt", False, None),
             "kubeconfig-wrongca": (ADMIN_TOKEN, "wrong-ca.crt", False, None),
             "kubeconfig-insecure": (ADMIN_TOKEN, "ca.crt", True, None),
             "kubeconfig-tlsname": (ADMIN_TOKEN, "ca.crt", False, TLS_NAME),
             "kubeconfig-wrongname": (ADMIN_TOKEN, "ca.crt", False, "wrong.double.test")}
    for fname, (tok, ca, insecure, tls_name) in files.items():
        p = os.path.join(a.dir, fname)
        with open(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(kubeconfig(server, os.path.join(a.dir, ca), tok, insecure, tls_name))
    print(json.dumps({"port": port, "server": server, "kubeconfig": os.path.join(a.dir, "kubeconfig"),
                      "pid": os.getpid()}), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
