# needs: lab
"""gedge runtime push over SSH to two full-OS lab hosts, then a program from the bundle runs in a
podman container on one host with exactly the flags `runtime mounts -o podman` prints; a second
version with one changed file sends only the changed chunk."""

import os
import shlex
import uuid

from gedge_e2e import GedgeTest
from test_runtime import build_tree


class RuntimeLabTest(GedgeTest):
    def add_device(self, name):
        h = self.lab_host(name)
        lab = self.lab()
        r = self.run_gedge("device", "add", name, "--host", h["address"], "--port", h["port"], "--user", lab["user"],
                           "--identity", lab["key"], "--host-key", h["host_key_fingerprint"], "-o", "json")
        self.assertEqual(r.rc, 0, r)

    def remote_count(self, host, path):
        out = self.ssh_host(host, "sudo", "-n", "find", path, "-type", "f")
        return len([l for l in out.splitlines() if l.strip()])

    def test_push_two_hosts_and_run_in_podman(self):
        self.require_lab()
        hosts = ["edge1", "edge2"]
        for h in hosts:
            self.add_device(h)
        root = f"/var/tmp/gedge-rt-e2e-{uuid.uuid4().hex[:8]}"
        for h in hosts:
            self.addCleanup(self.ssh_host, h, "sudo", "-n", "rm", "-rf", root, check=False)
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        env, cuda = build_tree(src)
        v1 = self.gedge_json("runtime", "pack", "--name", "labdemo", "--component", f"env={env}",
                             "--component", f"cuda={cuda}")
        p = self.gedge_json("runtime", "push", v1["id"], "--device", "edge1", "--device", "edge2", "--root", root)
        by = {t["target"]: t for t in p["targets"]}
        for h in hosts:
            self.assertEqual(by[h]["state"], "created", by[h])
            self.assertEqual(by[h]["chunks_sent"], v1["chunks"])
            self.assertEqual(by[h]["chunks_skipped"], 0)
            self.assertEqual(self.remote_count(h, f"{root}/.gedge/rawchunks"), v1["chunks"])
            conf = self.ssh_host(h, "sudo", "-n", "cat", f"{root}/{v1['id']}/env/etc/greeting.conf")
            self.assertEqual(conf, "prefix=/opt/gedge/rt/labdemo/env\n")

        # again: nothing to send, everything verified
        again = self.gedge_json("runtime", "push", v1["id"], "--device", "edge1", "--root", root)["targets"][0]
        self.assertEqual((again["state"], again["chunks_sent"], again["bytes_sent"]), ("verified", 0, 0))

        # run from the bundle in a container with exactly the printed flags
        r = self.run_gedge("runtime", "mounts", v1["id"], "--root", root, "-o", "podman")
        self.assertEqual(r.rc, 0, r)
        flags = shlex.split(r.stdout)
        image = self.lab()["image"]
        out = self.ssh_host("edge1", "sudo", "-n", "podman", "run", "--rm", *flags, image, "sh", "-c", "greet",
                            timeout=180)
        self.assertEqual(out, "config=/opt/gedge/rt/labdemo/env/etc/greeting.conf "
                              "line=prefix=/opt/gedge/rt/labdemo/env\n")

        # a corrupted file on the device is found by verify and repaired by the next push
        self.ssh_host("edge2", "sudo", "-n", "sh", "-c", f"echo tampered > {root}/{v1['id']}/env/etc/greeting.conf")
        bad = self.run_gedge("runtime", "verify", v1["id"], "--device", "edge2", "--root", root, "-o", "json")
        self.assertEqual(bad.rc, 1, bad)
        self.assertIn("env/etc/greeting.conf", bad.json["bad_files"])
        fix = self.gedge_json("runtime", "push", v1["id"], "--device", "edge2", "--root", root)["targets"][0]
        self.assertEqual(fix["state"], "repaired")

        # v2: one changed file -> one chunk sent
        with open(os.path.join(env, "etc", "greeting.conf"), "a") as f:
            f.write("v=2\n")
        v2 = self.gedge_json("runtime", "pack", "--name", "labdemo", "--component", f"env={env}",
                             "--component", f"cuda={cuda}")
        before = self.remote_count("edge1", f"{root}/.gedge/rawchunks")
        p2 = self.gedge_json("runtime", "push", v2["id"], "--device", "edge1", "--root", root)["targets"][0]
        self.assertEqual(p2["chunks_sent"], 1)
        self.assertEqual(p2["chunks_skipped"], v2["chunks"] - 1)
        self.assertLess(p2["bytes_sent"], by["edge1"]["bytes_sent"] * 0.05)
        self.assertEqual(self.remote_count("edge1", f"{root}/.gedge/rawchunks"), before + 1)

    def test_unknown_device_is_reported_per_target(self):
        self.require_lab()
        self.add_device("edge1")
        env = os.path.join(self.tmp, "env")
        os.makedirs(env)
        with open(os.path.join(env, "f"), "w") as f:
            f.write("x\n")
        v = self.gedge_json("runtime", "pack", "--name", "tiny", "--component", f"env={env}")
        root = f"/var/tmp/gedge-rt-e2e-{uuid.uuid4().hex[:8]}"
        self.addCleanup(self.ssh_host, "edge1", "sudo", "-n", "rm", "-rf", root, check=False)
        r = self.run_gedge("runtime", "push", v["id"], "--device", "edge1", "--device", "nosuch", "--root", root,
                           "-o", "json")
        self.assertEqual(r.rc, 3, r)  # partial
        by = {t["target"]: t for t in r.json["targets"]}
        self.assertEqual(by["edge1"]["state"], "created")
        self.assertEqual(by["nosuch"]["state"], "failed")
