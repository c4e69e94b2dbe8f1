"""gedge cluster register / status for Kubernetes clusters, against tests/k8s_double (a Kubernetes
API server DOUBLE on 127.0.0.1 over HTTPS with a CA made by the test; it is not a cluster).

register keeps only the kubeconfig's path and context (the token never reaches GEDGE_HOME),
checks reachability and credentials (401 / wrong CA -> 6, nothing listening -> 5), and status
reads nodes, pods by phase per namespace, deployments, PVs and storage classes live."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import unittest
import urllib.request

from gedge_e2e import GEDGE, SOURCE_DIR, GedgeTest

DOUBLE = os.path.join(SOURCE_DIR, "tests", "k8s_double", "k8s_double.py")
PROXY = os.path.join(SOURCE_DIR, "tests", "e2e", "connect_proxy.py")
PLUGIN = os.path.join(SOURCE_DIR, "tests", "k8s_double", "exec_plugin.py")
SCHEMAS = os.path.join(SOURCE_DIR, "schemas")
ADMIN_TOKEN = "double-admin-token"

# Objects stored as given (status included): a node that is not ready, pods in every phase
# across namespaces, a deployment that is not fully ready, a PV and a second storage class.
SEED = [
    {"apiVersion": "v1", "kind": "Node",
     "metadata": {"name": "edge-gpu-0"},
     "status": {"conditions": [{"type": "Ready", "status": "False"}],
                "capacity": {"cpu": "8", "memory": "16Gi", "nvidia.com/gpu": "1", "pods": "110"},
                "allocatable": {"cpu": "7800m", "memory": "15Gi", "nvidia.com/gpu": "1", "pods": "110"}}},
    *[{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"det-{i}", "namespace": "vision"},
       "status": {"phase": ph}} for i, ph in enumerate(["Running", "Running", "Pending"])],
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dns", "namespace": "kube-system"},
     "status": {"phase": "Running"}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job-x", "namespace": "kube-system"},
     "status": {"phase": "Failed"}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "once", "namespace": "default"},
     "status": {"phase": "Succeeded"}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "detector", "namespace": "vision"},
     "spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 1}},
    {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-models"},
     "spec": {"capacity": {"storage": "50Gi"}, "storageClassName": "fast-nvme"},
     "status": {"phase": "Bound"}},
    {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast-nvme"},
     "provisioner": "kubernetes.io/no-provisioner"},
]


def closed_port():
    """A localhost TCP port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ClusterKubernetesTest(GedgeTest):
    def setUp(self):
        super().setUp()
        if not shutil.which("openssl"):
            self.skipTest("the API double needs the openssl CLI")
        self.ddir = os.path.join(self.tmp, "double")
        self.double, self.info = self.start_double(self.ddir, SEED)
        self.kubeconfig = self.info["kubeconfig"]

    def start_double(self, ddir, seed_objects):
        seed = os.path.join(self.tmp, os.path.basename(ddir) + "-seed.json")
        with open(seed, "w") as f:
            json.dump(seed_objects, f)
        proc = subprocess.Popen([sys.executable, DOUBLE, "--dir", ddir, "--seed", seed],
                                stdout=subprocess.PIPE, text=True)
        self.addCleanup(self.stop_double, proc)
        line = proc.stdout.readline()
        self.assertTrue(line, "the API double did not start")
        return proc, json.loads(line)

    def stop_double(self, proc):
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
        proc.stdout.close()

    def kc(self, name):
        return os.path.join(self.ddir, name)

    def write_kubeconfig(self, name, server=None, token=None):
        """A copy of the double's kubeconfig with another server URL and/or token."""
        with open(self.kubeconfig) as f:
            cfg = json.load(f)
        if server:
            cfg["clusters"][0]["cluster"]["server"] = server
        if token:
            cfg["users"][0]["user"]["token"] = token
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def home_bytes(self):
        """Every byte gedge wrote under GEDGE_HOME (db, WAL, logs, ...)."""
        out = b""
        for root, _, files in os.walk(self.home):
            for fn in files:
                try:
                    with open(os.path.join(root, fn), "rb") as f:
                        out += f.read()
                except OSError:
                    pass
        return out

    def apply_deployment(self, ns, name, replicas):
        """Server-side apply straight to the double (as another client would)."""
        body = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": name, "namespace": ns},
                           "spec": {"replicas": replicas,
                                    "selector": {"matchLabels": {"app": name}},
                                    "template": {"metadata": {"labels": {"app": name}},
                                                 "spec": {"containers": [{"name": name, "image": "x"}]}}}})
        ctx = ssl.create_default_context(cafile=os.path.join(self.ddir, "ca.crt"))
        req = urllib.request.Request(
            f"{self.info['server']}/apis/apps/v1/namespaces/{ns}/deployments/{name}?fieldManager=e2e",
            data=body.encode(), method="PATCH",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/apply-patch+yaml"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            self.assertIn(r.status, (200, 201))

    def check_schema(self, name, doc):
        try:
            import jsonschema
        except ImportError:
            return  # python3-jsonschema is optional; the explicit assertions below still run
        with open(os.path.join(SCHEMAS, name)) as f:
            jsonschema.validate(doc, json.load(f))

    # ---------------------------------------------------------------------------------------
    def test_register_keeps_path_and_context_only(self):
        r = self.run_gedge("cluster", "register", "k1", "--kubeconfig", self.kubeconfig, "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["name"], "k1")
        self.assertEqual(r.json["kind"], "kubernetes")
        self.assertEqual(r.json["kubeconfig"], self.kubeconfig)
        self.assertEqual(r.json["context"], "double")
        self.assertEqual(r.json["api_server"], self.info["server"])
        self.assertTrue(r.json["changed"])
        self.assertEqual(r.json["version"], "v1.30.0-double")
        self.check_schema("cluster-register.schema.json", r.json)
        self.assertNotIn(ADMIN_TOKEN, r.stdout + r.stderr)

        # The token is nowhere in GEDGE_HOME: not in the db file, its WAL, or any log.
        data = self.home_bytes()
        self.assertIn(self.kubeconfig.encode(), data, "the kubeconfig path is stored")
        self.assertNotIn(ADMIN_TOKEN.encode(), data)
        db = os.path.join(self.home, "gedge.db")
        self.assertTrue(os.path.exists(db))

        # Registering again is a no-op; ls and show say what it is.
        r = self.run_gedge("cluster", "register", "k1", "--kubeconfig", self.kubeconfig,
                           "--context", "double", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(r.json["changed"])
        ls = self.gedge_json("cluster", "ls")
        self.assertEqual([(c["name"], c["kind"], c["api_server"], c["context"]) for c in ls],
                         [("k1", "kubernetes", self.info["server"], "double")])
        show = self.gedge_json("cluster", "show", "k1")
        self.assertEqual(show["kubeconfig"], self.kubeconfig)
        self.assertEqual(show["members"], [])

        # A relative path is stored absolute (status works from another directory).
        rel = os.path.relpath(self.kubeconfig, self.tmp)
        p = subprocess.run([GEDGE, "cluster", "register", "k2", "--kubeconfig", rel,
                            "-o", "json"], cwd=self.tmp, env=self.env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["kubeconfig"], self.kubeconfig)

        # rm forgets it (the kubeconfig file is the user's and stays).
        self.gedge_json("cluster", "rm", "k1", "--yes")
        self.assertTrue(os.path.exists(self.kubeconfig))
        self.assertEqual([c["name"] for c in self.gedge_json("cluster", "ls")], ["k2"])

    def test_register_refuses_bad_credentials_and_endpoints(self):
        # 401 from the API (wrong token) -> 6; nothing is stored.
        r = self.run_gedge("cluster", "register", "bad", "--kubeconfig", self.kc("kubeconfig-badtoken"),
                           "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertEqual(r.err_json["code"], 6)
        self.assertIn("401", r.err_json["message"])
        self.assertNotIn("not-a-valid-token", r.stderr)
        # A CA that did not sign the server's certificate -> TLS refused, 6.
        r = self.run_gedge("cluster", "register", "bad", "--kubeconfig", self.kc("kubeconfig-wrongca"),
                           "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertIn("TLS", r.err_json["message"])
        # Nothing listening -> unreachable, 5.
        down = self.write_kubeconfig("kc-down", server=f"https://127.0.0.1:{closed_port()}")
        r = self.run_gedge("cluster", "register", "bad", "--kubeconfig", down, "--timeout", "5", "-o", "json")
        self.assertEqual(r.rc, 5, r)
        self.assertEqual(self.gedge_json("cluster", "ls"), [])
        self.assertNotIn(ADMIN_TOKEN.encode(), self.home_bytes())

        # Bad input: unknown context (2), malformed file (2), missing file (4), bad name (2).
        r = self.run_gedge("cluster", "register", "bad", "--kubeconfig", self.kubeconfig,
                           "--context", "nope", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("nope", r.err_json["message"])
        junk = os.path.join(self.tmp, "junk")
        with open(junk, "w") as f:
            f.write("clusters: [unterminated\n  - {")
        self.assertEqual(self.run_gedge("cluster", "register", "bad", "--kubeconfig", junk).rc, 2)
        self.assertEqual(self.run_gedge("cluster", "register", "bad", "--kubeconfig",
                                        os.path.join(self.tmp, "absent")).rc, 4)
        self.assertEqual(self.run_gedge("cluster", "register", "-bad/x", "--kubeconfig", self.kubeconfig).rc, 2)
        self.assertEqual(self.gedge_json("cluster", "ls"), [])

        # insecure-skip-tls-verify is honoured because the kubeconfig says so, with a warning.
        r = self.run_gedge("cluster", "register", "insec", "--kubeconfig", self.kc("kubeconfig-insecure"),
                           "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("insecure", r.stderr.lower())

    def test_status_reads_the_api_live(self):
        self.gedge_json("cluster", "register", "k1", "--kubeconfig", self.kubeconfig)
        st = self.gedge_json("cluster", "status", "k1")
        self.check_schema("cluster-status.schema.json", st)
        self.assertEqual(st["kind"], "kubernetes")
        self.assertEqual(st["api_server"], self.info["server"])
        self.assertEqual(st["context"], "double")

        nodes = {n["name"]: n for n in st["nodes"]}
        self.assertEqual(sorted(nodes), ["double-node-0", "double-node-1", "edge-gpu-0"])
        self.assertTrue(nodes["double-node-0"]["ready"])
        self.assertFalse(nodes["edge-gpu-0"]["ready"])
        self.assertEqual(nodes["edge-gpu-0"]["capacity"]["nvidia.com/gpu"], "1")
        self.assertEqual(nodes["edge-gpu-0"]["capacity"]["cpu"], "8")
        self.assertEqual(nodes["edge-gpu-0"]["allocatable"]["cpu"], "7800m")
        self.assertEqual(nodes["edge-gpu-0"]["allocatable"]["memory"], "15Gi")

        self.assertEqual(st["pods"], {"vision": {"Running": 2, "Pending": 1},
                                      "kube-system": {"Running": 1, "Failed": 1},
                                      "default": {"Succeeded": 1}})
        self.assertEqual(st["deployments"], [{"namespace": "vision", "name": "detector",
                                              "desired": 3, "ready": 1}])
        self.assertEqual(st["persistent_volumes"], [{"name": "pv-models", "capacity": "50Gi",
                                                     "phase": "Bound", "storage_class": "fast-nvme"}])
        self.assertEqual(sorted((s["name"], s["provisioner"]) for s in st["storage_classes"]),
                         [("double-local", "double.invalid/none"),
                          ("fast-nvme", "kubernetes.io/no-provisioner")])

        # Live, not cached: a deployment created by someone else shows up, with its pods.
        self.apply_deployment("default", "web", 2)
        st = self.gedge_json("cluster", "status", "k1")
        deps = {(d["namespace"], d["name"]): d for d in st["deployments"]}
        self.assertEqual(deps[("default", "web")], {"namespace": "default", "name": "web",
                                                    "desired": 2, "ready": 2})
        self.assertEqual(st["pods"]["default"], {"Succeeded": 1, "Running": 2})

    def test_status_of_objects_without_status_or_with_odd_types(self):
        """Issue 16 item 3: a Node without status made cluster status read past the end of a
        buffer (valgrind); objects missing spec/status/metadata or with fields of other types are
        shown with what they have."""
        odd = [
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "bare-node"}},
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "odd-node"},
             "status": {"conditions": "Ready", "capacity": ["cpu"]}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare-pod", "namespace": "x"}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bare", "namespace": "x"}},
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "bare-pv"}},
        ]
        _, info = self.start_double(os.path.join(self.tmp, "double-odd"), odd)
        self.gedge_json("cluster", "register", "odd", "--kubeconfig", info["kubeconfig"])
        st = self.gedge_json("cluster", "status", "odd")
        nodes = {n["name"]: n for n in st["nodes"]}
        self.assertEqual(nodes["bare-node"], {"name": "bare-node", "ready": False, "capacity": {}, "allocatable": {}})
        self.assertEqual(nodes["odd-node"], {"name": "odd-node", "ready": False, "capacity": {}, "allocatable": {}})
        self.assertEqual(st["pods"]["x"], {"Unknown": 1})
        self.assertIn({"namespace": "x", "name": "bare", "desired": 1, "ready": 0}, st["deployments"])
        self.assertIn({"name": "bare-pv", "capacity": "", "phase": "", "storage_class": ""}, st["persistent_volumes"])

    def test_status_uses_the_kubeconfig_as_it_is_now(self):
        kc = self.write_kubeconfig("kc-copy")
        self.gedge_json("cluster", "register", "k1", "--kubeconfig", kc)
        # Credentials are read from the file at each use: a revoked token -> 6.
        self.write_kubeconfig("kc-copy", token="revoked-token")
        r = self.run_gedge("cluster", "status", "k1", "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertIn("401", r.err_json["message"])
        # The API server going away -> 5.
        self.write_kubeconfig("kc-copy")
        self.gedge_json("cluster", "status", "k1")
        self.stop_double(self.double)
        r = self.run_gedge("cluster", "status", "k1", "--timeout", "5", "-o", "json")
        self.assertEqual(r.rc, 5, r)
        # A deleted kubeconfig -> 4 with the path named.
        os.unlink(kc)
        r = self.run_gedge("cluster", "status", "k1", "-o", "json")
        self.assertEqual(r.rc, 4, r)
        self.assertIn(kc, r.err_json["message"])
        # Unknown cluster -> 4.
        self.assertEqual(self.run_gedge("cluster", "status", "nope").rc, 4)


    # ---- kubeconfig loading as client-go ---------------------------------------------------
    def kc_doc(self, name="kubeconfig"):
        with open(self.kc(name)) as f:
            return json.load(f)

    def write_doc(self, name, doc):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    def no_kubeconfig_env(self, **extra):
        """An environment where kubectl would find no kubeconfig: KUBECONFIG empty, a private
        empty HOME, not in a pod."""
        home = os.path.join(self.tmp, "emptyhome")
        os.makedirs(home, exist_ok=True)
        env = {"KUBECONFIG": "", "HOME": home, "KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""}
        env.update(extra)
        return env

    def test_kubeconfig_list_merged_as_client_go(self):
        # a.yaml: current-context "edge" whose cluster is defined in BOTH files (a's must win);
        # its user only in b.yaml. b.yaml sets another current-context (ignored: a's came first).
        base = self.kc_doc()
        cluster = base["clusters"][0]["cluster"]
        a = {"apiVersion": "v1", "kind": "Config", "current-context": "edge",
             "clusters": [{"name": "shared", "cluster": cluster}],
             "contexts": [{"name": "edge", "context": {"cluster": "shared", "user": "u", "namespace": "vision"}}]}
        b = {"apiVersion": "v1", "kind": "Config", "current-context": "other",
             "clusters": [{"name": "shared", "cluster": {"server": f"https://127.0.0.1:{closed_port()}",
                                                         "certificate-authority": cluster["certificate-authority"]}}],
             "users": [{"name": "u", "user": {"token": ADMIN_TOKEN}}],
             "contexts": [{"name": "other", "context": {"cluster": "shared", "user": "u"}}]}
        pa, pb = self.write_doc("a.yaml", a), self.write_doc("b.yaml", b)
        missing = os.path.join(self.tmp, "absent.yaml")  # skipped, as client-go does
        env = self.no_kubeconfig_env(KUBECONFIG=f"{pa}:{missing}:{pb}")
        r = self.run_gedge("cluster", "register", "m", "-o", "json", "--timeout", "10", env=env)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["source"], "KUBECONFIG")
        self.assertEqual(r.json["context"], "edge")
        self.assertEqual(r.json["kubeconfig_paths"], [pa, pb])
        self.assertEqual(r.json["kubeconfig"], f"{pa}:{pb}")
        self.assertEqual(r.json["api_server"], self.info["server"], "the first file's cluster wins")
        self.check_schema("cluster-register.schema.json", r.json)
        self.assertFalse(ADMIN_TOKEN.encode() in self.home_bytes(), "the token stays out of GEDGE_HOME")
        # Later uses merge the stored files again (the token comes from b.yaml), whatever the
        # environment says now.
        st = self.run_gedge("cluster", "status", "m", "-o", "json", env=self.no_kubeconfig_env())
        self.assertEqual(st.rc, 0, st)
        self.assertEqual(st.json["context"], "edge")
        # --context picks b's context (its cluster name resolves to a's "shared" entry: first wins).
        r = self.run_gedge("cluster", "register", "m2", "--context", "other", "-o", "json", env=env)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["api_server"], self.info["server"])

    def test_default_kubeconfig_in_home_and_in_cluster(self):
        # Nothing anywhere: a clear not-found (4) naming what was looked at.
        r = self.run_gedge("cluster", "register", "d", "-o", "json", env=self.no_kubeconfig_env())
        self.assertEqual(r.rc, 4, r)
        self.assertIn("~/.kube/config", r.err_json["message"])
        # ~/.kube/config in a private HOME.
        home = os.path.join(self.tmp, "userhome")  # not GEDGE_HOME (self.home)
        os.makedirs(os.path.join(home, ".kube"))
        shutil.copy(self.kubeconfig, os.path.join(home, ".kube", "config"))
        r = self.run_gedge("cluster", "register", "d", "-o", "json", env=self.no_kubeconfig_env(HOME=home))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["source"], "default")
        self.assertEqual(r.json["kubeconfig"], os.path.join(home, ".kube", "config"))
        # In a pod: the service account's token and CA, the API at KUBERNETES_SERVICE_HOST/PORT.
        sa = os.path.join(self.tmp, "serviceaccount")
        os.makedirs(sa)
        with open(os.path.join(sa, "token"), "w") as f:
            f.write(ADMIN_TOKEN + "\n")
        shutil.copy(os.path.join(self.ddir, "ca.crt"), os.path.join(sa, "ca.crt"))
        with open(os.path.join(sa, "namespace"), "w") as f:
            f.write("vision")
        pod = self.no_kubeconfig_env(KUBERNETES_SERVICE_HOST="127.0.0.1",
                                     KUBERNETES_SERVICE_PORT=str(self.info["port"]),
                                     GEDGE_K8S_SERVICEACCOUNT_DIR=sa)
        r = self.run_gedge("cluster", "register", "pod", "-o", "json", env=pod)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual((r.json["source"], r.json["kubeconfig"], r.json["kubeconfig_paths"]),
                         ("in-cluster", "in-cluster", []))
        self.assertEqual(r.json["api_server"], self.info["server"])
        self.assertFalse(ADMIN_TOKEN.encode() in self.home_bytes(), "the token stays out of GEDGE_HOME")
        self.assertEqual(self.run_gedge("cluster", "status", "pod", "-o", "json", env=pod).rc, 0)
        # The token is read at each use: a revoked one is refused (6).
        with open(os.path.join(sa, "token"), "w") as f:
            f.write("revoked\n")
        self.assertEqual(self.run_gedge("cluster", "status", "pod", "-o", "json", env=pod).rc, 6)

    def test_tls_server_name(self):
        open(os.path.join(self.ddir, "sni.log"), "w").close()
        r = self.run_gedge("cluster", "register", "t", "--kubeconfig", self.kc("kubeconfig-tlsname"), "-o", "json")
        self.assertEqual(r.rc, 0, r)
        with open(os.path.join(self.ddir, "sni.log")) as f:
            self.assertIn("api.double.test", f.read().split(), "the SNI is the tls-server-name")
        # The certificate does not carry wrong.double.test: refused as kubectl refuses it (6).
        r = self.run_gedge("cluster", "register", "w", "--kubeconfig", self.kc("kubeconfig-wrongname"), "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertIn("wrong.double.test", r.err_json["message"] + r.err_json.get("hint", ""))

    def test_proxy_url(self):
        # A dead proxy: unreachable (5), not a direct connection behind the user's back.
        doc = self.kc_doc()
        doc["clusters"][0]["cluster"]["proxy-url"] = f"http://127.0.0.1:{closed_port()}"
        r = self.run_gedge("cluster", "register", "p", "--kubeconfig", self.write_doc("dead.yaml", doc),
                           "--timeout", "10", "-o", "json")
        self.assertEqual(r.rc, 5, r)
        self.assertIn("proxy", r.err_json["message"])
        # A live CONNECT proxy sees the tunnel to the API server.
        log = os.path.join(self.tmp, "proxy.log")
        proxy = subprocess.Popen([sys.executable, PROXY, "--log", log], stdout=subprocess.PIPE, text=True)
        self.addCleanup(proxy.wait, 10)
        self.addCleanup(proxy.terminate)
        self.addCleanup(proxy.stdout.close)
        port = json.loads(proxy.stdout.readline())["port"]
        doc["clusters"][0]["cluster"]["proxy-url"] = f"http://127.0.0.1:{port}"
        live = self.write_doc("live.yaml", doc)
        r = self.run_gedge("cluster", "register", "p", "--kubeconfig", live, "-o", "json")
        self.assertEqual(r.rc, 0, r)
        with open(log) as f:
            self.assertIn(f"CONNECT 127.0.0.1:{self.info['port']}", f.read())
        # HTTPS_PROXY is not used for a loopback server (Go's rule), and proxy-url overrides it.
        r = self.run_gedge("cluster", "status", "p", "-o", "json",
                           env={"HTTPS_PROXY": f"http://127.0.0.1:{closed_port()}"})
        self.assertEqual(r.rc, 0, r)
        # Without proxy-url, HTTPS_PROXY is used as kubectl uses it: a server named api.double.test
        # (which only the proxy resolves) is reached through the proxy, SNI and name check intact.
        named = self.kc_doc()
        named["clusters"][0]["cluster"]["server"] = f"https://api.double.test:{self.info['port']}"
        open(log, "w").close()
        proxy2 = subprocess.Popen([sys.executable, PROXY, "--log", log, "--map", "api.double.test=127.0.0.1"],
                                  stdout=subprocess.PIPE, text=True)
        self.addCleanup(proxy2.wait, 10)
        self.addCleanup(proxy2.terminate)
        self.addCleanup(proxy2.stdout.close)
        port2 = json.loads(proxy2.stdout.readline())["port"]
        r = self.run_gedge("cluster", "register", "envproxy", "--kubeconfig", self.write_doc("named.yaml", named),
                           "-o", "json", env={"HTTPS_PROXY": f"http://127.0.0.1:{port2}", "NO_PROXY": "example.invalid"})
        self.assertEqual(r.rc, 0, r)
        with open(log) as f:
            self.assertIn(f"CONNECT api.double.test:{self.info['port']}", f.read())
        # An unsupported scheme is refused by name.
        doc["clusters"][0]["cluster"]["proxy-url"] = "ftp://127.0.0.1:21"
        r = self.run_gedge("cluster", "register", "q", "--kubeconfig", self.write_doc("ftp.yaml", doc), "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("proxy-url", r.err_json["message"])

    def test_fields_refused_by_name(self):
        doc = self.kc_doc()
        doc["clusters"][0]["cluster"]["compression"] = True  # not a kubeconfig field
        r = self.run_gedge("cluster", "register", "u", "--kubeconfig", self.write_doc("unk.yaml", doc), "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("'compression'", r.err_json["message"])
        self.assertIn("unk.yaml", r.err_json["message"])
        doc = self.kc_doc()
        doc["users"][0]["user"]["as"] = "admin"
        r = self.run_gedge("cluster", "register", "u", "--kubeconfig", self.write_doc("as.yaml", doc), "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("'as'", r.err_json["message"])
        # tokenFile: one trailing newline is trimmed; a second line (header injection) is refused.
        tok = os.path.join(self.tmp, "tok")
        doc = self.kc_doc()
        del doc["users"][0]["user"]["token"]
        doc["users"][0]["user"]["tokenFile"] = tok
        tf = self.write_doc("tf.yaml", doc)
        with open(tok, "w") as f:
            f.write(ADMIN_TOKEN + "\n")
        self.assertEqual(self.run_gedge("cluster", "register", "tf", "--kubeconfig", tf).rc, 0)
        with open(tok, "w") as f:
            f.write(ADMIN_TOKEN + "\r\nX-Injected: 1\n")
        r = self.run_gedge("cluster", "status", "tf", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("control characters", r.err_json["message"])
        # A bearer token over plain http is refused before anything is sent.
        doc = self.kc_doc()
        doc["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{closed_port()}"
        del doc["clusters"][0]["cluster"]["certificate-authority"]
        r = self.run_gedge("cluster", "register", "h", "--kubeconfig", self.write_doc("http.yaml", doc), "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("clear text", r.err_json["message"])
        self.assertNotIn(ADMIN_TOKEN, r.stderr)


    # ---- exec credential plugins -------------------------------------------------------------
    def exec_kubeconfig(self, name, api_version="client.authentication.k8s.io/v1", **env):
        doc = self.kc_doc()
        record = os.path.join(self.tmp, name + ".runs")
        env.setdefault("PLUGIN_TOKEN", ADMIN_TOKEN)
        doc["users"][0]["user"] = {"exec": {
            "apiVersion": api_version, "command": PLUGIN, "args": ["get-token", "--cluster", "double"],
            "interactiveMode": "Never", "provideClusterInfo": True,
            "env": [{"name": "PLUGIN_RECORD", "value": record}] + [{"name": k, "value": v} for k, v in env.items()]}}
        return self.write_doc(name + ".yaml", doc), record

    def runs(self, record):
        if not os.path.exists(record):
            return []
        with open(record) as f:
            return [json.loads(line) for line in f]

    def test_exec_plugin(self):
        for api in ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"):
            name = api.rsplit("/", 1)[1]
            kc, record = self.exec_kubeconfig(name, api)
            # stdin carries something the plugin must not see (interactiveMode: Never).
            r = self.run_gedge("cluster", "register", name, "--kubeconfig", kc, "-o", "json", input="do-not-read\n")
            self.assertEqual(r.rc, 0, r)
            runs = self.runs(record)
            self.assertEqual(len(runs), 1, runs)
            self.assertEqual(runs[0]["argv"], ["get-token", "--cluster", "double"])
            self.assertEqual(runs[0]["stdin"], "")
            self.assertEqual(runs[0]["info"]["apiVersion"], api)
            self.assertEqual(runs[0]["info"]["kind"], "ExecCredential")
            self.assertFalse(runs[0]["info"]["spec"]["interactive"])
            self.assertEqual(runs[0]["info"]["spec"]["cluster"]["server"], self.info["server"])
            # status makes many requests: the credential is cached for the run (one more run).
            st = self.run_gedge("cluster", "status", name, "-o", "json")
            self.assertEqual(st.rc, 0, st)
            self.assertEqual(len(self.runs(record)), 2)
        self.assertFalse(ADMIN_TOKEN.encode() in self.home_bytes(), "the plugin's token stays out of GEDGE_HOME")
        # A plugin that fails: exit 6 with its stderr; nothing registered.
        kc, record = self.exec_kubeconfig("failing", PLUGIN_FAIL="token expired at the IdP")
        r = self.run_gedge("cluster", "register", "f", "--kubeconfig", kc, "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertIn("token expired at the IdP", r.err_json["message"])
        self.assertEqual(len(self.runs(record)), 1)
        self.assertNotIn("f", [c["name"] for c in self.gedge_json("cluster", "ls")])
        # A plugin token the API refuses: run again once (as client-go), then 6.
        kc, record = self.exec_kubeconfig("refused", PLUGIN_TOKEN="revoked")
        r = self.run_gedge("cluster", "register", "x", "--kubeconfig", kc, "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertEqual(len(self.runs(record)), 2)


if __name__ == "__main__":
    unittest.main()
