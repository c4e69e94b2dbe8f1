# needs: lab
"""gedge cluster on the lab's full-OS hosts: build a containers cluster with monitoring for real
(ansible-playbook over SSH with verified host keys), read live node-exporter metrics, re-run with
no change, join and leave, an unreachable member (exit 3) finished by --resume, and k3s
artifacts that fail early without touching the devices."""

import json
import os
import tempfile
import unittest
import urllib.request

from cluster_lab import REGISTRY, ClusterLabTest


class ClusterTest(ClusterLabTest):
    def test_containers_cluster_with_monitoring(self):
        self.require_lab()
        for n in ("edge1", "edge2", "edge3"):
            self.add_device(n)
            self.cleanup_dropin(n, "e2e-ct")

        # A dry run changes nothing and says so per device.
        r = self.run_gedge("cluster", "build", "e2e-ct", "--profile", "containers",
                           "--devices", "edge1,edge2", "--registry", REGISTRY, "--insecure-registry", "--monitoring",
                           "--dry-run", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.json["dry_run"])
        self.assertEqual(sorted(self.by_name(r.json)), ["edge1", "edge2"])
        ls = self.gedge_json("cluster", "ls")
        self.assertEqual(ls, [], "a dry run must not create the cluster")

        r = self.run_gedge("cluster", "build", "e2e-ct", "--profile", "containers",
                           "--devices", "edge1,edge2", "--registry", REGISTRY, "--insecure-registry", "--monitoring",
                           "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        devs = self.by_name(r.json)
        self.assertEqual(r.json["state"], "ready")
        for n in ("edge1", "edge2"):
            self.assertEqual(devs[n]["state"], "ready", devs[n])
            addr = self.lab_host(n)["address"]
            self.assertEqual(devs[n]["metrics_url"], f"http://{addr}:9100/metrics")
            # The real hosts: registry drop-in, node-exporter active and answering.
            text = self.ssh_host(n, "cat", self.dropin("e2e-ct"))
            self.assertIn(f'location = "{REGISTRY}"', text)
            self.assertIn("insecure = true", text)
            self.assertEqual(self.ssh_host(n, "systemctl", "is-active", "prometheus-node-exporter").strip(),
                             "active")
            self.assertEqual(self.ssh_host(n, "systemctl", "is-enabled", "prometheus-node-exporter").strip(),
                             "enabled")
            with urllib.request.urlopen(devs[n]["metrics_url"], timeout=10) as resp:
                self.assertIn(b"node_cpu_seconds_total", resp.read())
            self.ssh_host(n, "sudo", "podman", "image", "exists", f"{REGISTRY}/gedge/busybox:1.0")

        # The journal: every step per host, ending with the completion marker.
        show = self.gedge_json("cluster", "show", "e2e-ct")
        for m in show["members"]:
            self.assertEqual(m["state"], "ready")
            self.assertEqual(m["steps"][-1]["step"], "build complete")
            self.assertTrue(any(s["status"] in ("ok", "changed") and "podman" in s["step"].lower()
                                for s in m["steps"]), m["steps"])

        # join provisions the new device only.
        r = self.run_gedge("cluster", "join", "e2e-ct", "edge3", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([d["name"] for d in r.json["devices"]], ["edge3"])
        self.assertIn(f'location = "{REGISTRY}"', self.ssh_host("edge3", "cat", self.dropin("e2e-ct")))

        # Re-running the finished build changes nothing and exits 0.
        r = self.run_gedge("cluster", "build", "e2e-ct", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["changed"], 0, r.json)
        self.assertEqual(sorted(self.by_name(r.json)), ["edge1", "edge2", "edge3"])

        # Live status: reachability and node-exporter metrics read now.
        st = self.gedge_json("cluster", "status", "e2e-ct", timeout=120)
        self.assertEqual(len(st["members"]), 3)
        for m in st["members"]:
            self.assertTrue(m["reachable"], m)
            met = m["metrics"]
            self.assertIsNotNone(met, m)
            self.assertGreaterEqual(met["cpu_busy_percent"], 0)
            self.assertLessEqual(met["cpu_busy_percent"], 100)
            self.assertGreater(met["memory_total_bytes"], 0)
            self.assertLessEqual(met["memory_used_bytes"], met["memory_total_bytes"])
            self.assertIsNotNone(met["load1"])
            self.assertGreaterEqual(met["disk_free_bytes"], 0)

        # Exports: the Prometheus block names every endpoint; the Ansible inventory checks keys.
        prom = self.run_gedge("cluster", "export", "e2e-ct", "--format", "prometheus")
        self.assertEqual(prom.rc, 0, prom)
        for n in ("edge1", "edge2", "edge3"):
            self.assertIn(f"{self.lab_host(n)['address']}:9100", prom.stdout)
        inv = self.run_gedge("cluster", "export", "e2e-ct", "--format", "ansible")
        self.assertEqual(inv.rc, 0, inv)
        self.assertIn("StrictHostKeyChecking=yes", inv.stdout)
        self.assertIn(os.path.join(self.home, "known_hosts"), inv.stdout)

        # A device in another cluster is a conflict (7); unknown device 4; unknown profile 2.
        self.assertEqual(self.run_gedge("cluster", "build", "other", "--devices", "edge1").rc, 7)
        self.assertEqual(self.run_gedge("cluster", "build", "other", "--devices", "nope").rc, 4)
        self.assertEqual(self.run_gedge("cluster", "build", "other", "--profile", "swarm",
                                        "--devices", "edge1").rc, 2)

        # leave, then rm.
        r = self.gedge_json("cluster", "leave", "e2e-ct", "edge3")
        self.assertEqual(r["members"], 2)
        self.assertEqual([m["device"] for m in self.gedge_json("cluster", "show", "e2e-ct")["members"]],
                         ["edge1", "edge2"])
        self.assertEqual(self.run_gedge("cluster", "rm", "e2e-ct").rc, 2, "rm without --yes off a TTY")
        self.gedge_json("cluster", "rm", "e2e-ct", "--yes")
        self.assertEqual(self.gedge_json("cluster", "ls"), [])

    def test_unreachable_member_then_resume(self):
        self.require_lab()
        for n in ("edge2", "h7"):
            self.add_device(n)
            self.cleanup_dropin(n, "e2e-rs")
        r = self.lab_sh("fault", "h7", "link-down")
        self.assertEqual(r.rc, 0, r)
        self.addCleanup(lambda: self.lab_sh("fault", "h7", "link-up"))
        r = self.run_gedge("cluster", "build", "e2e-rs", "--devices", "edge2,h7", "--registry", REGISTRY, "--insecure-registry",
                           "--timeout", "5", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 3, r)
        devs = self.by_name(r.json)
        self.assertEqual(devs["edge2"]["state"], "ready")
        self.assertEqual(devs["h7"]["state"], "unreachable")
        self.assertEqual(r.json["failed"], ["h7"])
        self.assertIn("h7", r.err_json["message"] if r.err_json else r.stderr)
        self.assertIn(f'location = "{REGISTRY}"', self.ssh_host("edge2", "cat", self.dropin("e2e-rs")))

        self.assertEqual(self.lab_sh("fault", "h7", "link-up").rc, 0)
        r = self.run_gedge("cluster", "build", "e2e-rs", "--resume", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([d["name"] for d in r.json["devices"]], ["h7"], "resume runs only the failed device")
        self.assertEqual(r.json["devices"][0]["state"], "ready")
        self.assertIn(f'location = "{REGISTRY}"', self.ssh_host("h7", "cat", self.dropin("e2e-rs")))
        # Nothing left to resume.
        r = self.run_gedge("cluster", "build", "e2e-rs", "--resume", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertIsNone(r.json["run_id"])
        self.assertEqual(self.gedge_json("cluster", "show", "e2e-rs")["state"], "ready")

    def test_k3s_artifacts_fail_early(self):
        self.require_lab()
        self.add_device("edge1")
        art = tempfile.mkdtemp(dir=self.tmp)
        # No --artifacts at all: a usage error naming the flag, before anything else.
        for extra in ([], ["--dry-run"]):
            r = self.run_gedge("cluster", "build", "k3", "--profile", "k3s", "--devices", "edge1", *extra,
                               "-o", "json")
            self.assertEqual(r.rc, 2, r)
            self.assertIn("--artifacts", r.err_json["message"])
        self.assertEqual(self.gedge_json("cluster", "ls"), [])
        # Missing: an empty directory is refused before any device is touched.
        r = self.run_gedge("cluster", "build", "k3", "--profile", "k3s", "--devices", "edge1",
                           "--artifacts", art, "-o", "json")
        self.assertEqual(r.rc, 4, r)
        self.assertIn("no k3s binary", r.err_json["message"])
        # Wrong architecture: an arm64 ELF named k3s-arm64 for an x86_64 device fails in the
        # preflight play, before any change.
        elf = bytearray(64)
        elf[0:4] = b"\x7fELF"
        elf[18] = 0xB7  # EM_AARCH64
        with open(os.path.join(art, "k3s-arm64"), "wb") as f:
            f.write(elf)
        with open(os.path.join(art, "k3s-airgap-images-arm64.tar.zst"), "wb") as f:
            f.write(b"x")
        r = self.run_gedge("cluster", "build", "k3", "--profile", "k3s", "--devices", "edge1",
                           "--artifacts", art, "-o", "json", timeout=300)
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(r.json["devices"][0]["failed_step"], "Check artifacts for this architecture")
        self.assertIn("no k3s artifacts for x86_64", r.json["devices"][0]["message"])
        self.assertEqual(r.json["changed"], 0)
        self.assertEqual(self.ssh_host("edge1", "test -e /usr/local/bin/k3s && echo yes || echo no").strip(), "no")

    def test_k3s_dry_run_plans_without_changing(self):
        """k3s cannot run here; its dry run (Ansible check mode) still plans every step, with an
        x86-64 ELF standing in for the k3s binary, and changes nothing."""
        self.require_lab()
        self.add_device("edge1")
        art = tempfile.mkdtemp(dir=self.tmp)
        with open("/bin/true", "rb") as src, open(os.path.join(art, "k3s"), "wb") as dst:
            dst.write(src.read())
        with open(os.path.join(art, "k3s-airgap-images-amd64.tar.zst"), "wb") as f:
            f.write(b"not really images")
        r = self.run_gedge("cluster", "build", "k3", "--profile", "k3s", "--devices", "edge1",
                           "--artifacts", art, "--dry-run", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.json["dry_run"])
        dev = r.json["devices"][0]
        self.assertEqual((dev["name"], dev["state"]), ("edge1", "planned"))
        steps = [p["step"] for p in dev["plan"] if p["action"] == "would change"]
        self.assertIn("k3s_airgap : Copy the k3s binary", steps)
        self.assertIn("k3s_airgap : Copy the airgap images", steps)
        self.assertEqual(self.gedge_json("cluster", "ls"), [])
        self.assertEqual(self.ssh_host("edge1", "test -e /usr/local/bin/k3s && echo yes || echo no").strip(), "no")

    def test_k8s_dry_run_plans_without_changing(self):
        """kubeadm cannot run here; its dry run plans the package installation (probed, no
        python3-apt needed on the device), the node preparation and kubeadm init, and changes nothing."""
        self.require_lab()
        self.add_device("edge1")
        r = self.run_gedge("cluster", "build", "k8", "--profile", "k8s", "--devices", "edge1",
                           "--dry-run", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        dev = r.json["devices"][0]
        self.assertEqual(dev["state"], "planned", dev)
        steps = [p["step"] for p in dev["plan"]]
        self.assertIn("kubeadm : Plan the installation of kubeadm, kubelet, kubectl and containerd", steps)
        self.assertIn("kubeadm : Write the sysctl drop-in", steps)
        self.assertIn("kubeadm : Initialise the control plane", steps)
        self.assertEqual(self.gedge_json("cluster", "ls"), [])
        self.assertEqual(self.ssh_host("edge1", "test -e /etc/sysctl.d/90-gedge-kubeadm.conf && echo yes || echo no")
                         .strip(), "no")


if __name__ == "__main__":
    unittest.main()
