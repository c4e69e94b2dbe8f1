# needs: lab
"""A Kubernetes Deployment manifest deployed to a container-host cluster on the lab's full-OS
hosts (edge1..edge3): it answers on its port, an env value full of quotes and $() arrives byte
for byte, a re-deploy changes nothing, `svc rm` leaves nothing; fields podman cannot honour are
refused (exit 2) before anything runs."""

import base64
import json
import os
import urllib.request

from cluster_lab import REGISTRY, ClusterLabTest

IMAGE = f"{REGISTRY}/gedge/busybox:1.0"
CLUSTER = "e2e-man"
HOSTS = ("edge1", "edge2", "edge3")
NAME = "e2e-man-web"
PORT = 28090  # not used by other tests
TRICKY = "it's \"quoted\" 'twice' $(id) `uname` $HOME ${PATH} ; | & \\ \\n $$(x) ünï"

CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-cfg"},
             "data": {"tricky": TRICKY, "app.conf": "listen = 8080\n# \"quoted\" $(x)\n"},
             "binaryData": {"blob.bin": base64.b64encode(bytes(range(256))).decode()}}
SECRET_VALUE = "lab-s3cr3t-4e1d\n\x01\xff-end"
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-creds"},
          "data": {"token": base64.b64encode(SECRET_VALUE.encode()).decode()}}
FILE_VOLUMES = {
    "volumes": [{"name": "cfg", "configMap": {"name": "web-cfg", "items": [{"key": "app.conf", "path": "app.conf"},
                                                                           {"key": "blob.bin", "path": "b/blob.bin"}]}},
                {"name": "creds", "secret": {"secretName": "web-creds"}}],
    "mounts": [{"name": "cfg", "mountPath": "/www/cfg"}, {"name": "creds", "mountPath": "/www/creds"},
               {"name": "cfg", "mountPath": "/www/single.conf", "subPath": "app.conf"}]}


def deployment(port=PORT, extra_container=None, files=False):
    c = {"name": "web", "image": IMAGE, "command": ["sh", "-c"],
         "args": ["mkdir -p /www && printf '%s' \"$TRICKY\" > /www/env && printf '%s' \"$FROM_CM\" > /www/cm && "
                  "{ [ -z \"${FROM_SECRET+x}\" ] || printf '%s' \"$FROM_SECRET\" > /www/sec; } && "
                  "exec httpd -f -p 8080 -h /www"],
         "env": [{"name": "TRICKY", "value": TRICKY},
                 {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "web-cfg", "key": "tricky"}}}],
         "ports": [{"containerPort": 8080, "hostPort": port}],
         "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "64Mi"}}}
    c.update(extra_container or {})
    pod = {"containers": [c]}
    if files:
        c["env"].append({"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "web-creds", "key": "token"}}})
        c["volumeMounts"] = FILE_VOLUMES["mounts"]
        pod["volumes"] = FILE_VOLUMES["volumes"]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": NAME}},
                     "template": {"metadata": {"labels": {"app": NAME}}, "spec": pod}}}


class ManifestDeployLabTest(ClusterLabTest):
    def write(self, name, docs):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write("\n---\n".join(json.dumps(d) for d in docs) + "\n")
        return p

    def containers(self, host):
        out = self.ssh_host(host, "sudo", "-n", "podman", "ps", "-a", "--filter", f"label=gedge.service={NAME}",
                            "--format", "json")
        return {c["Names"][0]: c["Id"] for c in json.loads(out or "[]")}

    def cleanup_host(self, host):
        out = self.ssh_host(host, "sudo", "-n", "podman", "ps", "-aq", "--filter", f"label=gedge.service={NAME}",
                            check=False)
        ids = out.stdout.split() if out.rc == 0 else []
        if ids:
            self.ssh_host(host, "sudo", "-n", "podman", "rm", "-f", *ids, check=False, timeout=120)
        self.ssh_host(host, "sudo", "-n", "rm", "-f", self.dropin(CLUSTER), check=False)
        self.ssh_host(host, "sudo", "-n", "rm", "-rf", f"/var/lib/gedge/svc/{NAME}", check=False)
        out = self.ssh_host(host, "sudo", "-n", "podman", "secret", "ls", "--format", "{{.Name}}", check=False)
        left = [s for s in out.stdout.split() if s.startswith(f"gedge-{NAME}-")] if out.rc == 0 else []
        if left:
            self.ssh_host(host, "sudo", "-n", "podman", "secret", "rm", *left, check=False)

    def test_deployment_manifest_on_container_hosts(self):
        self.require_lab()
        for h in HOSTS:
            self.add_device(h)
            self.addCleanup(self.cleanup_host, h)
        r = self.run_gedge("cluster", "build", CLUSTER, "--profile", "containers", "--devices", ",".join(HOSTS),
                           "--registry", REGISTRY, "--insecure-registry", "-o", "json", timeout=600)
        self.assertEqual(r.rc, 0, r)

        # Refused before anything runs: a probe podman cannot honour, named with file, line, path.
        bad = self.write("bad.yaml", [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                                       "spec": {"ports": [{"port": 80}]}},
                                      deployment(extra_container={"livenessProbe": {"tcpSocket": {"port": 8080}}})])
        r = self.run_gedge("svc", "deploy", bad, "--cluster", CLUSTER, "-o", "json", timeout=300)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("bad.yaml:3: spec.template.spec.containers[0].livenessProbe", r.err_json["message"])
        self.assertEqual({h: self.containers(h) for h in HOSTS}, {h: {} for h in HOSTS})

        # Deploy: it answers on its port, the env value arrives byte for byte.
        good = self.write("web.yaml", [CONFIGMAP, SECRET, deployment(files=True)])
        d1 = self.gedge_json("svc", "deploy", good, "--cluster", CLUSTER, timeout=300)
        actions = [a for s in d1["services"] for a in s["actions"]]
        self.assertEqual([(a["action"], a["state"]) for a in actions], [("create", "ok")], d1)
        dev = actions[0]["device"]
        addr = self.lab_host(dev)["address"]
        with urllib.request.urlopen(f"http://{addr}:{PORT}/env", timeout=10) as resp:
            self.assertEqual(resp.read().decode(), TRICKY)
        with urllib.request.urlopen(f"http://{addr}:{PORT}/cm", timeout=10) as resp:
            self.assertEqual(resp.read().decode(), TRICKY, "env valueFrom a ConfigMap of the same files")
        # ConfigMap and Secret volumes: files on the device, served byte for byte from the mounts
        for path, want in (("cfg/app.conf", CONFIGMAP["data"]["app.conf"].encode()),
                           ("cfg/b/blob.bin", bytes(range(256))), ("creds/token", SECRET_VALUE.encode()),
                           ("single.conf", CONFIGMAP["data"]["app.conf"].encode())):  # a subPath mount
            with urllib.request.urlopen(f"http://{addr}:{PORT}/{path}", timeout=10) as resp:
                self.assertEqual(resp.read(), want, path)
        modes = self.ssh_host(dev, "sudo", "-n", "find", f"/var/lib/gedge/svc/{NAME}", "-type", "f", "-printf",
                              "%P %m %u\\n")
        got = {ln.split(" ", 1)[0].split("/", 1)[1]: ln.split(" ", 1)[1] for ln in modes.strip().splitlines()}
        self.assertEqual(got, {"app.conf": "644 root", "b/blob.bin": "644 root", "token": "600 root"}, modes)
        # env secretKeyRef: a podman secret, the value byte for byte in the container's environment
        with urllib.request.urlopen(f"http://{addr}:{PORT}/sec", timeout=10) as resp:
            self.assertEqual(resp.read(), SECRET_VALUE.encode(), "env valueFrom a Secret of the same files")
        secrets = self.ssh_host(dev, "sudo", "-n", "podman", "secret", "ls", "--format", "{{.Name}}").split()
        mine = [s for s in secrets if s.startswith(f"gedge-{NAME}-")]
        self.assertEqual(len(mine), 1, secrets)
        # the Secret's value is nowhere but in its file and podman's secret store: not in podman's
        # argv, the processes' command lines, the journal, the record or the log
        cmd = self.ssh_host(dev, "sudo", "-n", "podman", "inspect", "--format", "{{.Config.CreateCommand}}",
                            f"gedge-{NAME}-0")
        self.assertNotIn("s3cr3t", cmd)
        self.assertIn(f"{mine[0]},type=env,target=FROM_SECRET", cmd)
        self.assertNotIn("s3cr3t", self.ssh_host(dev, "sudo", "-n", "ps", "-eo", "args"))
        journal = self.ssh_host(dev, "sudo", "-n", "journalctl", "--no-pager", "-q", check=False)
        self.assertEqual(journal.rc, 0, journal)
        self.assertNotIn("s3cr3t", journal.stdout)
        for root, _, names in os.walk(self.home):
            for n in names:
                with open(os.path.join(root, n), "rb") as fh:
                    self.assertNotIn(b"lab-s3cr3t", fh.read(), os.path.join(root, n))
        before = self.containers(dev)
        self.assertEqual(list(before), [f"gedge-{NAME}-0"])

        # Re-deploy: a no-op (same container).
        d2 = self.gedge_json("svc", "deploy", good, "--cluster", CLUSTER, timeout=300)
        self.assertEqual({a["action"] for s in d2["services"] for a in s["actions"]}, {"unchanged"})
        self.assertEqual(self.containers(dev), before)
        ls = self.gedge_json("svc", "ls", "--cluster", CLUSTER)
        self.assertEqual([s["name"] for s in ls], [NAME])

        # scale onto a second device: the ConfigMap/Secret contents are not recorded, so scale
        # without the manifests is exit 2 before anything changes; with --file they are written.
        r = self.run_gedge("svc", "scale", NAME, "2", "--cluster", CLUSTER, "-o", "json", timeout=300)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("needs its ConfigMap/Secret contents there", r.err_json["message"])
        self.assertIn("--file", r.err_json.get("hint", ""))
        self.assertEqual(sum(len(self.containers(h)) for h in HOSTS), 1)
        changed = self.write("changed.yaml", [dict(CONFIGMAP, data=dict(CONFIGMAP["data"], tricky="other")), SECRET,
                                              deployment(files=True)])
        r = self.run_gedge("svc", "scale", NAME, "2", "--cluster", CLUSTER, "--file", changed, "-o", "json",
                           timeout=300)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("is not what was deployed", r.err_json["message"])
        d4 = self.gedge_json("svc", "scale", NAME, "2", "--cluster", CLUSTER, "--file", good, timeout=300)
        acts = {a["replica"]: a for s in d4["services"] for a in s["actions"]}
        self.assertEqual((acts[0]["action"], acts[1]["action"], acts[1]["state"]), ("unchanged", "create", "ok"), d4)
        dev2 = acts[1]["device"]
        self.assertNotEqual(dev2, dev)
        addr2 = self.lab_host(dev2)["address"]
        for path, want in (("cfg/app.conf", CONFIGMAP["data"]["app.conf"].encode()),
                           ("sec", SECRET_VALUE.encode()), ("cm", TRICKY.encode())):
            with urllib.request.urlopen(f"http://{addr2}:{PORT}/{path}", timeout=10) as resp:
                self.assertEqual(resp.read(), want, path)
        self.gedge_json("svc", "scale", NAME, "1", "--cluster", CLUSTER, timeout=300)  # back: nothing needed

        # rm leaves nothing: no container on any host, no record.
        self.gedge_json("svc", "rm", NAME, "--cluster", CLUSTER, "--yes", timeout=300)
        self.assertEqual({h: self.containers(h) for h in HOSTS}, {h: {} for h in HOSTS})
        self.assertEqual(self.gedge_json("svc", "ls", "--cluster", CLUSTER), [])
        gone = self.ssh_host(dev, "sudo", "-n", "test", "-e", f"/var/lib/gedge/svc/{NAME}", check=False)
        self.assertNotEqual(gone.rc, 0, "svc rm removes the ConfigMap and Secret files")
        secrets = self.ssh_host(dev, "sudo", "-n", "podman", "secret", "ls", "--format", "{{.Name}}").split()
        self.assertEqual([s for s in secrets if s.startswith(f"gedge-{NAME}-")], [], "svc rm removes its secrets")
