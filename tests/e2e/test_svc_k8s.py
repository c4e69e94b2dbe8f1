"""gedge svc deploy / status / scale / rm against a registered Kubernetes cluster.

There is no API server here: the cluster is tests/k8s_double/k8s_double.py, a DOUBLE that
enforces the API semantics gedge relies on (TLS with its own CA, bearer tokens, server-side apply
with field ownership and 409 conflicts, dryRun=All, a simulated Deployment controller). The
test reads the objects back from the double's API, not from gedge's output alone."""

import base64
import json
import os
import re
import signal
import ssl
import subprocess
import time
import urllib.request

from gedge_e2e import GEDGE, GedgeTest
from k8s_check import assert_valid_k8s

SRC = os.environ.get("GEDGE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DOUBLE = os.path.join(SRC, "tests", "k8s_double", "k8s_double.py")

WEB = {
    "name": "k8s-web",
    "namespace": "default",
    "replicas": 2,
    "containers": [{"name": "web", "image": "10.213.0.1:5000/gedge/busybox:1.0",
                    "ports": [{"containerPort": 8080, "externalPort": 80}],
                    "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}],
    "monitorPorts": [8080],
    "autoscale": {"min": 2, "max": 5, "cpu": 70},
}


class SvcKubernetesTest(GedgeTest):
    def setUp(self):
        super().setUp()
        ddir = os.path.join(self.tmp, "double")
        self.proc = subprocess.Popen(["/usr/bin/python3", DOUBLE, "--dir", ddir], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.addCleanup(self.proc.stderr.close)
        self.addCleanup(self.proc.stdout.close)
        self.addCleanup(self.proc.wait, 10)
        self.addCleanup(self.proc.kill)
        line = self.proc.stdout.readline()
        self.assertTrue(line, self.proc.stderr.read() if self.proc.poll() is not None else "no output")
        info = json.loads(line)
        self.server = info["server"]
        self.kubeconfig = info["kubeconfig"]
        self.ca = os.path.join(ddir, "ca.crt")
        r = self.run_gedge("cluster", "register", "kc", "--kubeconfig", self.kubeconfig, "-o", "json")
        self.assertEqual(r.rc, 0, r)

    def api(self, method, path, body=None, ctype=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        req = urllib.request.Request(self.server + path, method=method,
                                     data=body.encode() if body is not None else None)
        req.add_header("Authorization", "Bearer double-admin-token")
        if ctype:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def spec_file(self, doc):
        p = os.path.join(self.tmp, "svc.json")
        with open(p, "w") as f:
            json.dump(doc, f)
        return p

    def test_deploy_apply_conflict_status_rm(self):
        f = self.spec_file(WEB)
        # dry run: the server validates, nothing is stored
        d = self.gedge_json("svc", "deploy", f, "--cluster", "kc", "--dry-run")
        kinds = [o["kind"] for o in d["services"][0]["objects"]]
        self.assertEqual(kinds, ["Deployment", "Service", "ServiceMonitor", "HorizontalPodAutoscaler"])
        code, _ = self.api("GET", "/apis/apps/v1/namespaces/default/deployments/k8s-web")
        self.assertEqual(code, 404, "a dry run must not create anything")
        self.assertEqual(self.gedge_json("svc", "ls"), [])

        # deploy: every object created with gedge as field manager; waits for availability
        d = self.gedge_json("svc", "deploy", f, "--cluster", "kc")
        svc = d["services"][0]
        self.assertEqual([o["action"] for o in svc["objects"]], ["created"] * 4)
        self.assertEqual(svc["state"], "deployed")
        self.assertGreaterEqual(svc["available"], 1)  # the double runs no HPA: spec.replicas defaults to 1
        code, dep = self.api("GET", "/apis/apps/v1/namespaces/default/deployments/k8s-web")
        self.assertEqual(code, 200)
        self.assertNotIn("replicas", dep["spec"], "the HPA owns replicas under autoscale")
        self.assertEqual(dep["metadata"]["labels"]["app.kubernetes.io/managed-by"], "gedge")
        code, hpa = self.api("GET", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/k8s-web")
        self.assertEqual((code, hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]), (200, 2, 5))

        # the same file again: nothing changes on the server
        rv = dep["metadata"]["resourceVersion"]
        d = self.gedge_json("svc", "deploy", f, "--cluster", "kc")
        self.assertEqual([o["action"] for o in d["services"][0]["objects"]], ["unchanged"] * 4)
        _, dep = self.api("GET", "/apis/apps/v1/namespaces/default/deployments/k8s-web")
        self.assertEqual(dep["metadata"]["resourceVersion"], rv)

        # another field manager takes the image: gedge reports the conflict (exit 7) ...
        patch = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {"name": "k8s-web", "namespace": "default"},
                            "spec": {"template": {"spec": {"containers": [
                                {"name": "web", "image": "10.213.0.1:5000/other/image:2"}]}}}})
        code, _ = self.api("PATCH", "/apis/apps/v1/namespaces/default/deployments/k8s-web"
                           "?fieldManager=someone-else&force=true", patch, "application/apply-patch+yaml")
        self.assertEqual(code, 200)
        changed = dict(WEB, containers=[dict(WEB["containers"][0], image="10.213.0.1:5000/gedge/busybox:1.1")])
        f2 = self.spec_file(changed)
        r = self.run_gedge("svc", "deploy", f2, "--cluster", "kc", "-o", "json")
        self.assertEqual(r.rc, 7, r)
        self.assertIn("--force-conflicts", r.stderr)
        _, dep = self.api("GET", "/apis/apps/v1/namespaces/default/deployments/k8s-web")
        self.assertEqual(dep["spec"]["template"]["spec"]["containers"][0]["image"], "10.213.0.1:5000/other/image:2")
        # ... and takes it back only when told to
        d = self.gedge_json("svc", "deploy", f2, "--cluster", "kc", "--force-conflicts")
        _, dep = self.api("GET", "/apis/apps/v1/namespaces/default/deployments/k8s-web")
        self.assertEqual(dep["spec"]["template"]["spec"]["containers"][0]["image"],
                         "10.213.0.1:5000/gedge/busybox:1.1")

        # status: pods from the API
        st = self.gedge_json("svc", "status", "k8s-web")
        self.assertEqual(st["kind"], "kubernetes")
        self.assertGreaterEqual(st["available"], 1)
        self.assertTrue(all(p["state"] == "Running" for p in st["replicas"]), st)
        self.assertTrue(all(p["pod"].startswith("k8s-web-") for p in st["replicas"]), st)

        # scale without autoscale: spec.replicas applied
        plain = {k: v for k, v in WEB.items() if k != "autoscale"}
        plain["name"] = "k8s-plain"
        self.gedge_json("svc", "deploy", self.spec_file(plain), "--cluster", "kc")
        self.gedge_json("svc", "scale", "k8s-plain", "4")
        _, dep = self.api("GET", "/apis/apps/v1/namespaces/default/deployments/k8s-plain")
        self.assertEqual(dep["spec"]["replicas"], 4)
        self.assertEqual([(x["name"], x["replicas"]) for x in self.gedge_json("svc", "ls", "--cluster", "kc")],
                         [("k8s-plain", 4), ("k8s-web", 2)])

        # rm: exactly the objects gedge created
        rm = self.gedge_json("svc", "rm", "k8s-web", "--yes")
        self.assertEqual(sorted(x["kind"] for x in rm["removed"]),
                         ["Deployment", "HorizontalPodAutoscaler", "Service", "ServiceMonitor"])
        for path in ("/apis/apps/v1/namespaces/default/deployments/k8s-web",
                     "/api/v1/namespaces/default/services/k8s-web",
                     "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/k8s-web"):
            self.assertEqual(self.api("GET", path)[0], 404, path)
        code, _ = self.api("GET", "/apis/apps/v1/namespaces/default/deployments/k8s-plain")
        self.assertEqual(code, 200, "rm of one service leaves the others")
        self.assertEqual([x["name"] for x in self.gedge_json("svc", "ls")], ["k8s-plain"])

    def test_logs_through_the_pod_log_api(self):
        spec = {"name": "k8s-logs", "namespace": "default", "replicas": 2,
                "containers": [{"name": "web", "image": "10.213.0.1:5000/gedge/busybox:1.0"},
                               {"name": "side", "image": "10.213.0.1:5000/gedge/busybox:1.0"}]}
        self.gedge_json("svc", "deploy", self.spec_file(spec), "--cluster", "kc")
        pods = [p["pod"] for p in self.gedge_json("svc", "status", "k8s-logs")["replicas"]]
        self.assertEqual(len(pods), 2)
        line = re.compile(r"^\[pod/(k8s-logs-\d)/(web|side)\] (\S+) (\S+): line (\d) \(simulated by the API double\)$")

        # every container of every pod, each line prefixed with where it came from (kubectl logs -l --prefix)
        r = self.run_gedge("svc", "logs", "k8s-logs", "--cluster", "kc")
        self.assertEqual(r.rc, 0, r)
        got = [line.match(x) for x in r.stdout.splitlines()]
        self.assertTrue(all(got), r.stdout)
        self.assertEqual(sorted({(m[1], m[2]) for m in got}), sorted((p, c) for p in pods for c in ("web", "side")))
        self.assertTrue(all(m[1] == m[3] and m[2] == m[4] for m in got), "each line under its own prefix")
        self.assertEqual(len(got), 4 * 6)
        # --tail per stream; --since passes sinceSeconds (lines are 10 minutes apart, the last just now)
        r = self.run_gedge("svc", "logs", "k8s-logs", "--tail", "2")
        self.assertEqual(len(r.stdout.splitlines()), 4 * 2, r.stdout)
        r = self.run_gedge("svc", "logs", "k8s-logs", "--since", "25m")
        self.assertEqual(sorted({int(line.match(x)[5]) for x in r.stdout.splitlines()}), [3, 4, 5], r.stdout)
        # one pod, one container: no prefix
        r = self.run_gedge("svc", "logs", "k8s-logs", "--replica", pods[1], "--container", "side", "--tail", "1")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.stdout, f"{pods[1]} side: line 5 (simulated by the API double)\n")
        # bad input named
        r = self.run_gedge("svc", "logs", "k8s-logs", "--replica", "nope", "-o", "json")
        self.assertEqual(r.rc, 4, r)
        self.assertIn(pods[0], r.err_json["hint"])
        r = self.run_gedge("svc", "logs", "k8s-logs", "--container", "db", "-o", "json")
        self.assertEqual(r.rc, 4, r)
        self.assertIn("'db'", r.err_json["message"])
        r = self.run_gedge("svc", "logs", "k8s-logs", "--since", "5 minutes", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("--since", r.err_json["message"])

        # --follow: every stream at once until Ctrl-C, which ends it cleanly (130)
        p = subprocess.Popen([GEDGE, "svc", "logs", "k8s-logs", "--follow", "--tail", "0"], env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen, deadline = set(), time.time() + 30
        while len(seen) < 4 and time.time() < deadline:
            out = p.stdout.readline()
            if not out:
                break
            m = re.match(r"^\[pod/(k8s-logs-\d)/(web|side)\] \S+ \S+ tick \d+$", out.rstrip("\n"))
            self.assertTrue(m, out)
            seen.add((m[1], m[2]))
        self.assertEqual(len(seen), 4, "ticks from every container of every pod")
        p.send_signal(signal.SIGINT)
        try:
            rest, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("gedge svc logs --follow did not stop on SIGINT")
        self.assertEqual(p.returncode, 130, err)
        self.assertTrue(all(x.startswith("[pod/") for x in rest.splitlines()), rest)

    def test_scaling_objects(self):
        spec = {"name": "k8s-scale", "namespace": "default",
                "containers": [{"name": "det", "image": "10.213.0.1:5000/gedge/busybox:1.0",
                                "resources": {"requests": {"cpu": "200m", "memory": "64Mi"}}}],
                "autoscale": {"min": 1, "max": 6, "metrics": [
                    {"type": "resource", "name": "cpu", "target": 70},
                    {"type": "pods", "name": "frames_per_second", "target": 30},
                    {"type": "external", "name": "queue_depth", "target": 100}]},
                "vpa": {"mode": "auto"},
                "limits": {"min": {"cpu": "100m", "memory": "32Mi"}, "max": {"cpu": "2", "memory": "2Gi"}}}
        f = self.spec_file(spec)
        # every rendered object passes the official schemas (the VPA its CRD's)
        r = self.run_gedge("svc", "render", f, "-o", "json")
        self.assertEqual(r.rc, 0, r)
        assert_valid_k8s(self, r.json)
        d = self.gedge_json("svc", "deploy", f, "--cluster", "kc")
        self.assertEqual(sorted(o["kind"] for o in d["services"][0]["objects"]),
                         ["Deployment", "HorizontalPodAutoscaler", "LimitRange", "VerticalPodAutoscaler"])
        # the API double validates metric types (GS-Engine's "Pod" is refused there) and VPA modes
        code, hpa = self.api("GET", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/k8s-scale")
        self.assertEqual(code, 200)
        self.assertEqual([m["type"] for m in hpa["spec"]["metrics"]], ["Resource", "Pods", "External"])
        self.assertEqual(hpa["spec"]["metrics"][1]["pods"]["target"], {"type": "AverageValue", "averageValue": "30"})
        code, vpa = self.api("GET", "/apis/autoscaling.k8s.io/v1/namespaces/default/verticalpodautoscalers/k8s-scale")
        self.assertEqual(code, 200)
        self.assertEqual(vpa["spec"]["updatePolicy"]["updateMode"], "Recreate")
        self.assertEqual(vpa["spec"]["targetRef"], {"apiVersion": "apps/v1", "kind": "Deployment", "name": "k8s-scale"})
        code, lr = self.api("GET", "/api/v1/namespaces/default/limitranges/k8s-scale")
        self.assertEqual(code, 200)
        self.assertEqual(lr["spec"]["limits"], [{"type": "Container", "min": {"cpu": "100m", "memory": "32Mi"},
                                                 "max": {"cpu": "2", "memory": "2Gi"}}])
        # rm removes them too
        rm = self.gedge_json("svc", "rm", "k8s-scale", "--yes")
        self.assertEqual(sorted(x["kind"] for x in rm["removed"]),
                         ["Deployment", "HorizontalPodAutoscaler", "LimitRange", "VerticalPodAutoscaler"])
        self.assertEqual(self.api("GET", "/api/v1/namespaces/default/limitranges/k8s-scale")[0], 404)

    def home_holds(self, needles):
        """The needles found in any file under GEDGE_HOME (inventory, log, run dirs)."""
        found = set()
        for root, _, files in os.walk(self.home):
            for n in files:
                with open(os.path.join(root, n), "rb") as f:
                    data = f.read()
                found |= {x for x in needles if x.encode() in data}
        return found

    def test_manifest_secret_values_never_stored_or_logged(self):
        value, other = "s3cr3t-Value-7f1c", "0ther-Value-93ad"
        b64 = base64.b64encode(value.encode()).decode()
        text = "\n".join([
            "apiVersion: v1", "kind: Secret", "metadata: {name: creds}",
            f"data: {{token: {b64}}}", f"stringData: {{plain: {value}}}", "---",
            "apiVersion: apps/v1", "kind: Deployment", "metadata: {name: k8s-sec}",
            "spec:", "  selector: {matchLabels: {app: k8s-sec}}", "  template:",
            "    metadata: {labels: {app: k8s-sec}}", "    spec:", "      containers:",
            "      - name: app", "        image: 10.213.0.1:5000/gedge/busybox:1.0",
            "        env:", "        - name: TOKEN",
            "          valueFrom: {secretKeyRef: {name: creds, key: token}}", ""])
        f = os.path.join(self.tmp, "sec.yaml")
        with open(f, "w") as fh:
            fh.write(text)
        needles = {value, b64, other, base64.b64encode(other.encode()).decode()}
        r = self.run_gedge("svc", "render", f, "-v", "-v", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.home_holds(needles), set(), "render must not keep the Secret anywhere")
        r = self.run_gedge("svc", "deploy", f, "--cluster", "kc", "-v", "-v", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertFalse([x for x in needles if x in r.stdout + r.stderr], r)
        code, sec = self.api("GET", "/api/v1/namespaces/default/secrets/creds")
        self.assertEqual(code, 200, "the Secret itself goes to the API server")
        self.assertEqual(sec["data"]["token"], b64)
        # the record names the Secret, never its contents
        objs = [(o["kind"], o["name"]) for o in r.json["services"][0]["objects"]]
        self.assertIn(("Secret", "creds"), objs)
        self.assertEqual(self.home_holds(needles), set(), "inventory or log holds a Secret value")
        self.assertEqual(self.home_holds({"Secret/creds created"}), {"Secret/creds created"},
                         "the search reads the log (and the record names the Secret)")
        # a conflict on the Secret: the error names the object, not the values
        patch = json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "default"},
                            "data": {"token": base64.b64encode(other.encode()).decode()}})
        code, _ = self.api("PATCH", "/api/v1/namespaces/default/secrets/creds?fieldManager=someone-else&force=true",
                           patch, "application/apply-patch+yaml")
        self.assertEqual(code, 200)
        with open(f, "w") as fh:
            fh.write(text.replace(b64, base64.b64encode(b"changed-" + value.encode()).decode()))
        r = self.run_gedge("svc", "deploy", f, "--cluster", "kc", "-v", "-v", "-o", "json")
        self.assertEqual(r.rc, 7, r)
        self.assertIn("creds", r.stderr)
        self.assertFalse([x for x in needles if x in r.stdout + r.stderr], r)
        self.assertEqual(self.home_holds(needles | {"changed-" + value}), set())
        rm = self.gedge_json("svc", "rm", "k8s-sec", "--yes")
        self.assertIn("Secret", [x["kind"] for x in rm["removed"]])
        self.assertEqual(self.api("GET", "/api/v1/namespaces/default/secrets/creds")[0], 404)

    def test_viewer_token_cannot_deploy(self):
        r = self.run_gedge("cluster", "register", "kv", "--kubeconfig",
                           os.path.join(os.path.dirname(self.kubeconfig), "kubeconfig-viewer"), "-o", "json")
        self.assertEqual(r.rc, 0, r)
        r = self.run_gedge("svc", "deploy", self.spec_file(WEB), "--cluster", "kv", "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertEqual(self.api("GET", "/apis/apps/v1/namespaces/default/deployments/k8s-web")[0], 404)
        self.assertEqual(self.gedge_json("svc", "ls"), [])
