# needs: lab
"""gedge tune on a lab full-OS host: the device's topology, a plan for it, and a podman container
pinned over SSH, checked against what the device's kernel reports for the container's process
and against the inventory's pins table."""

import os
import sqlite3
import unittest
import uuid

from gedge_e2e import GedgeTest
from test_tune import expand

HOST = "edge3"


class TuneLab(GedgeTest):
    def setUp(self):
        super().setUp()
        self.require_lab()
        h = self.lab_host(HOST)
        r = self.gedge("device", "add", HOST, "--host", h["address"], "--user", self.lab()["user"],
                       "--identity", self.lab()["key"], "--host-key", h["host_key_fingerprint"],
                       "-o", "json", timeout=180)
        self.assertEqual(r.rc, 0, r)
        self.name = f"gedge-tune-{uuid.uuid4().hex[:8]}"
        image = self.lab()["image"]
        self.ssh_host(HOST, "sudo", "-n", "podman", "run", "-d", "--name", self.name, image,
                      "sleep", "3600", timeout=180)
        self.addCleanup(self.ssh_host, HOST, "sudo", "-n", "podman", "rm", "-f", "-t", "0", self.name,
                        check=False, timeout=120)

    def kernel_cpus(self):
        pid = self.ssh_host(HOST, "sudo", "-n", "podman", "inspect", "--format", "{{.State.Pid}}",
                            self.name).strip()
        status = self.ssh_host(HOST, "cat", f"/proc/{pid}/status")
        line = [ln for ln in status.splitlines() if ln.startswith("Cpus_allowed_list:")][0]
        return expand(line.split(":", 1)[1].strip())

    def test_show_plan_and_pin_container(self):
        online = expand(self.ssh_host(HOST, "cat", "/sys/devices/system/cpu/online").strip())
        show = self.gedge_json("tune", "show", "--device", HOST, timeout=120)
        self.assertEqual(expand(show["cpuset"]), online)
        if len(online) < 2:
            self.skipTest("device has a single CPU")
        target = max(online)
        # dry run changes nothing on the device
        before = self.kernel_cpus()
        dry = self.gedge_json("tune", "pin", "--cpuset", str(target), "--device", HOST,
                              "--container", self.name, "--dry-run", timeout=120)
        self.assertEqual(dry["would_run"][:4], ["sudo", "-n", "podman", "update"])
        self.assertEqual(self.kernel_cpus(), before)
        # the real pin: read back from the device's kernel, recorded in the inventory
        j = self.gedge_json("tune", "pin", "--cpuset", str(target), "--device", HOST,
                            "--container", self.name, timeout=180)
        self.assertEqual(j["cpuset"], str(target))
        self.assertEqual(self.kernel_cpus(), {target})
        self.assertEqual(j["applied"]["cpus_allowed_list"], str(target))
        db = sqlite3.connect(os.path.join(self.home, "gedge.db"))
        rows = db.execute("SELECT cpuset FROM pins WHERE device=? AND owner=?", (HOST, self.name)).fetchall()
        db.close()
        self.assertEqual(rows, [(str(target),)])
        # the planner now avoids that PU for other work on the device
        plan = self.gedge_json("tune", "plan", "--cores", "1", "--device", HOST, timeout=120)
        self.assertNotIn(target, expand(plan["cpuset"]))
        # pinning through the planner, the container's own pin does not block it
        j = self.gedge_json("tune", "pin", "--cores", "1", "--exclude", str(target), "--device", HOST,
                            "--container", self.name, timeout=180)
        self.assertEqual(self.kernel_cpus(), expand(j["cpuset"]))
        self.assertNotIn(target, self.kernel_cpus())

    def test_unknown_container(self):
        r = self.gedge("tune", "pin", "--cpuset", "0", "--device", HOST, "--container", "no-such-ctr-x",
                       "-o", "json", timeout=120)
        self.assertEqual(r.rc, 4, r)


if __name__ == "__main__":
    unittest.main()
