# needs: lab
"""gedge runtime push over SSH to two full-OS lab hosts, then a program from the bundle runs in a
podman container on one host with exactly the flags `runtime mounts -o podman` prints; a second
version with one changed file sends only the changed chunk. Also: push --cluster to edge1..edge3
(the cluster rows are written into the test's inventory directly: building a real containers
cluster is test_cluster's job and slow), zstd-compressed transfer where the target has the zstd
CLI (the netns hosts share the machine's /usr) and raw where it does not (the edge hosts), dry
runs that write nothing on the hosts, and a push cut by SIGINT that leaves nothing visible and
resumes."""

import datetime
import hashlib
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import time
import uuid

from gedge_e2e import GEDGE, GedgeTest
from test_runtime import build_tree


class RuntimeLabTest(GedgeTest):
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

    def test_modes_and_planted_links_on_device(self):
        """Issue 16 items 2 and 10 on a device (the materialiser runs as root there): a setuid and a
        world-writable file arrive read-only without those bits; a bundle dir and a store dir
        planted as links are never written through."""
        self.require_lab()
        self.add_device("edge1")
        root = self.new_root("edge1")
        victim = root + "-victim"
        self.addCleanup(self.ssh_host, "edge1", "sudo", "-n", "rm", "-rf", victim, check=False)
        env = os.path.join(self.tmp, "env")
        os.makedirs(os.path.join(env, "bin"))
        with open(os.path.join(env, "bin", "suid"), "w") as f:
            f.write("#!/bin/sh\nid\n")
        with open(os.path.join(env, "shared"), "w") as f:
            f.write("everyone writes\n")
        os.chmod(os.path.join(env, "bin", "suid"), 0o4755)
        os.chmod(os.path.join(env, "shared"), 0o666)
        v = self.gedge_json("runtime", "pack", "--name", "modes", "--component", f"env={env}")
        p = self.gedge_json("runtime", "push", v["id"], "--device", "edge1", "--root", root)["targets"][0]
        self.assertEqual(p["state"], "created", p)

        def modes(*paths):
            return self.ssh_host("edge1", "sudo", "-n", "stat", "-c", "%a", *paths).split()

        self.assertEqual(modes(f"{root}/{v['id']}/env/bin/suid", f"{root}/{v['id']}/env/shared"), ["555", "444"])
        objects = self.ssh_host("edge1", "sudo", "-n", "find", f"{root}/.gedge/rawobjects", "-type", "f",
                                "-perm", "/0222")
        self.assertEqual(objects.strip(), "", "objects must be read-only")

        # the bundle dir replaced by a link to another dir: the next push replaces the link
        self.ssh_host("edge1", "sudo", "-n", "sh", "-c",
                      f'mkdir -p "$1/env" && rm -rf "$2" && ln -s "$1" "$2"', "sh", victim, f"{root}/{v['id']}")
        p = self.gedge_json("runtime", "push", v["id"], "--device", "edge1", "--root", root)["targets"][0]
        self.assertEqual(p["state"], "created", p)
        self.assertEqual(self.ssh_host("edge1", "sudo", "-n", "find", victim, "-mindepth", "2").strip(), "")
        self.assertEqual(self.ssh_host("edge1", "sudo", "-n", "stat", "-c", "%F", f"{root}/{v['id']}").strip(),
                         "directory")

        # a store fan-out dir planted as a link: refused, nothing written there
        self.ssh_host("edge1", "sudo", "-n", "sh", "-c",
                      f'rm -rf "$2" "$3"/* && ln -s "$1" "$3/$4"', "sh", victim, f"{root}/{v['id']}",
                      f"{root}/.gedge/rawobjects", hashlib.sha256(b"everyone writes\n").hexdigest()[:2])
        r = self.run_gedge("runtime", "push", v["id"], "--device", "edge1", "--root", root, "-o", "json")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("refusing to follow", r.stderr)
        self.assertEqual(self.ssh_host("edge1", "sudo", "-n", "find", victim, "-mindepth", "2").strip(), "")

    def new_root(self, *hosts):
        root = f"/var/tmp/gedge-rt-e2e-{uuid.uuid4().hex[:8]}"
        for h in hosts:
            self.addCleanup(self.ssh_host, h, "sudo", "-n", "rm", "-rf", root, check=False)
        return root

    def add_cluster(self, name, members):
        """The rows `gedge cluster build` leaves for a ready cluster (see the migrations)."""
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        db = sqlite3.connect(os.path.join(self.home, "gedge.db"))
        with db:
            db.execute("INSERT INTO clusters (name, kind, profile, state, created_at, updated_at) "
                       "VALUES (?, 'devices', 'containers', 'ready', ?, ?)", (name, now, now))
            for m in members:
                db.execute("INSERT INTO cluster_members (cluster, device, state) VALUES (?, ?, 'ready')", (name, m))
        db.close()

    def has_zstd(self, host):
        return self.ssh_host(host, "sh", "-c", "command -v zstd || true").strip() != ""

    def test_push_cluster_three_hosts(self):
        self.require_lab()
        hosts = ["edge1", "edge2", "edge3"]
        for h in hosts:
            self.add_device(h)
        self.add_cluster("rtc", hosts)
        root = self.new_root(*hosts)
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        env, cuda = build_tree(src)
        args = ("--name", "clu", "--component", f"env={env}", "--component", f"cuda={cuda}")
        v1 = self.gedge_json("runtime", "pack", *args)

        # dry run: every chunk would go to every member, nothing is written there
        d = self.gedge_json("runtime", "push", v1["id"], "--cluster", "rtc", "--root", root, "--dry-run")
        self.assertTrue(d["dry_run"])
        self.assertEqual(sorted(t["target"] for t in d["targets"]), hosts)
        for t in d["targets"]:
            self.assertEqual((t["state"], t["chunks_sent"], len(t["chunks_to_send"])),
                             ("would_create", v1["chunks"], v1["chunks"]), t)
        for h in hosts:
            r = self.ssh_host(h, "sudo", "-n", "test", "-e", root, check=False)
            self.assertNotEqual(r.rc, 0, f"dry run created {root} on {h}")

        p = self.gedge_json("runtime", "push", v1["id"], "--cluster", "rtc", "--root", root, timeout=300)
        by = {t["target"]: t for t in p["targets"]}
        self.assertEqual(sorted(by), hosts)
        for h in hosts:
            t = by[h]
            self.assertEqual((t["state"], t["chunks_sent"], t["chunks_skipped"]), ("created", v1["chunks"], 0), t)
            self.assertEqual(t["compressed"], self.has_zstd(h))
            if not t["compressed"]:
                self.assertEqual(t["bytes_sent"], v1["bytes_unique"])
            self.assertEqual(self.remote_count(h, f"{root}/.gedge/rawchunks"), v1["chunks"])
            conf = self.ssh_host(h, "sudo", "-n", "cat", f"{root}/{v1['id']}/env/etc/greeting.conf")
            self.assertEqual(conf, "prefix=/opt/gedge/rt/clu/env\n")
            big = self.ssh_host(h, "sudo", "-n", "sha256sum", f"{root}/{v1['id']}/cuda/lib64/libcudart.so.12")
            with open(os.path.join(cuda, "lib64", "libcudart.so.12"), "rb") as f:
                self.assertEqual(big.split()[0], hashlib.sha256(f.read()).hexdigest())
        pushes = self.gedge_json("runtime", "show", v1["id"])["pushes"]
        self.assertEqual(sorted(x["target"] for x in pushes), hosts)

        # second push: nothing sent anywhere
        again = self.gedge_json("runtime", "push", v1["id"], "--cluster", "rtc", "--root", root, timeout=300)
        for t in again["targets"]:
            self.assertEqual((t["state"], t["chunks_sent"], t["bytes_sent"], t["chunks_skipped"]),
                             ("verified", 0, 0, v1["chunks"]), t)

        # v2 dry run names the one changed chunk per member and writes nothing
        with open(os.path.join(env, "etc", "greeting.conf"), "a") as f:
            f.write("v=2\n")
        v2 = self.gedge_json("runtime", "pack", *args)
        d2 = self.gedge_json("runtime", "push", v2["id"], "--cluster", "rtc", "--root", root, "--dry-run")
        for t in d2["targets"]:
            self.assertEqual((t["state"], t["chunks_sent"]), ("would_create", 1), t)
        for h in hosts:
            self.assertEqual(self.remote_count(h, f"{root}/.gedge/rawchunks"), v1["chunks"])
            r = self.ssh_host(h, "sudo", "-n", "test", "-e", f"{root}/{v2['id']}", check=False)
            self.assertNotEqual(r.rc, 0)

    def test_compressed_where_zstd_exists(self):
        """h1 (netns) shares the machine's /usr, where zstd is installed; edge1 has no zstd."""
        self.require_lab()
        if not self.has_zstd("h1"):
            self.skipTest("no zstd on h1")
        self.add_device("h1")
        self.add_device("edge1")
        env = os.path.join(self.tmp, "env")
        os.makedirs(env)
        with open(os.path.join(env, "log.txt"), "w") as f:
            for i in range(120000):
                f.write(f"line {i % 97} of a compressible runtime file\n")
        with open(os.path.join(env, "blob"), "wb") as f:
            f.write(os.urandom(1 << 20))
        v = self.gedge_json("runtime", "pack", "--name", "z", "--component", f"env={env}")
        root = self.new_root("h1", "edge1")
        p = self.gedge_json("runtime", "push", v["id"], "--device", "h1", "--device", "edge1", "--root", root)
        by = {t["target"]: t for t in p["targets"]}
        self.assertTrue(by["h1"]["compressed"])
        self.assertFalse(by["edge1"]["compressed"])
        self.assertEqual(by["edge1"]["bytes_sent"], v["bytes_unique"])
        self.assertLess(by["h1"]["bytes_sent"], v["bytes_unique"] * 0.6)
        for h in ("h1", "edge1"):
            self.assertEqual(by[h]["state"], "created")
            self.assertEqual(self.remote_count(h, f"{root}/.gedge/rawchunks"), v["chunks"])
            out = self.ssh_host(h, "sudo", "-n", "sha256sum", f"{root}/{v['id']}/env/log.txt")
            with open(os.path.join(env, "log.txt"), "rb") as f:
                self.assertEqual(out.split()[0], hashlib.sha256(f.read()).hexdigest())
        # the target's store holds plain chunks named by their hash
        for line in self.ssh_host("h1", "sudo", "-n", "sh", "-c",
                                  f"find {shlex.quote(root)}/.gedge/rawchunks -type f | xargs sha256sum").splitlines():
            digest, path = line.split()
            self.assertEqual(os.path.basename(path), digest)

    def test_interrupted_push_resumes(self):
        """SIGINT while chunks stream to h1 (its /var is this machine's, so the test watches the
        target store directly): exit 130, nothing visible, the next push sends only the rest."""
        self.require_lab()
        self.add_device("h1")
        env = os.path.join(self.tmp, "env")
        os.makedirs(env)
        for i in range(12):
            with open(os.path.join(env, f"blob{i}"), "wb") as f:
                f.write(os.urandom(16 << 20))
        v = self.gedge_json("runtime", "pack", "--name", "big", "--component", f"env={env}", timeout=300)
        root = self.new_root("h1")
        store = os.path.join(root, ".gedge", "rawchunks")

        def count():
            return sum(len(fs) for _, _, fs in os.walk(store))

        proc = subprocess.Popen([GEDGE, "runtime", "push", v["id"], "--device", "h1", "--root", root,
                                 "-o", "json"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while count() == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 130, (out, err))
        self.assertFalse(os.path.exists(os.path.join(root, v["id"])), "an interrupted push left a visible bundle")
        time.sleep(1)  # the remote side finishes writing what it received
        kept = count()
        self.assertGreater(kept, 0)
        self.assertLess(kept, v["chunks"])
        p = self.gedge_json("runtime", "push", v["id"], "--device", "h1", "--root", root, timeout=300)["targets"][0]
        self.assertEqual(p["state"], "created")
        self.assertEqual(p["chunks_skipped"], kept)
        self.assertEqual(p["chunks_sent"], v["chunks"] - kept)
        self.assertEqual(count(), v["chunks"])
        self.assertEqual(os.listdir(os.path.join(root, ".gedge", "tmp")), [])
        self.assertTrue(self.gedge_json("runtime", "verify", v["id"], "--device", "h1", "--root", root)["ok"])

    def test_push_progress_on_a_terminal(self):
        """push --device on a terminal: bytes sent of the payload, rate, ETA and devices done,
        never going back; nothing under -o json / -q or off a terminal."""
        self.require_lab()
        self.add_device("edge1")
        root = f"/var/tmp/gedge-rt-e2e-{uuid.uuid4().hex[:8]}"
        self.addCleanup(self.ssh_host, "edge1", "sudo", "-n", "rm", "-rf", root, check=False)
        tree = os.path.join(self.tmp, "big")
        os.makedirs(tree)
        for i in range(12):
            with open(os.path.join(tree, f"f{i:02}.bin"), "wb") as f:
                f.write(os.urandom(2 << 20))
        b = self.gedge_json("runtime", "pack", "--name", "big", "--component", f"env={tree}")
        rc, out = self.run_on_tty("runtime", "push", b["id"], "--device", "edge1", "--root", root)
        self.assertEqual(rc, 0, out)
        draws = self.progress_draws(out, "pushing (")
        self.assertTrue(draws, out)
        units = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
        done = []
        for d in draws:
            m = re.match(r"pushing \((\d)/1 devices done\) ([\d.]+) (\w+)/([\d.]+) (\w+)", d)
            self.assertTrue(m, d)
            sent, total = float(m.group(2)) * units[m.group(3)], float(m.group(4)) * units[m.group(5)]
            done.append(sent)
            self.assertGreaterEqual(total, 24 << 20, d)
            # While bytes remain, a draw that knows the rate says when it ends.
            if sent < total and re.search(r" [\d.]+ \w+/s", d):
                self.assertRegex(d, r" ETA \d+:\d\d$", draws)
            if d is draws[-1]:
                self.assertEqual(sent, total, d)
        self.assertEqual(done, sorted(done), "progress went backwards")
        self.assertTrue(draws[-1].startswith("pushing (1/1 devices done)"), draws)
        # -o json and -q on a terminal, and no terminal: no progress (another root: all is sent again).
        for i, extra in enumerate((["-o", "json"], ["-q"])):
            rc, out = self.run_on_tty("runtime", "push", b["id"], "--device", "edge1", "--root", f"{root}/{i}", *extra)
            self.assertEqual(rc, 0, out)
            self.assertNotIn("\x1b[K", out, extra)
        r = self.run_gedge("runtime", "push", b["id"], "--device", "edge1", "--root", f"{root}/2")
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("\x1b[K", r.stderr)
        self.assertNotIn("\r", r.stderr)

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
