# needs: lab
"""Faults during `gedge cluster build` (containers profile, real ansible-playbook on the lab):
Ctrl-C mid-build (exit 130, journal kept, --resume finishes it), --max-fail stopping a build when
too many devices are unreachable, a device whose link drops mid-build (the others finish, exit 3
naming it, --resume completes it once it is back), a task failing on one host (exit 3, the
journal names the task, --resume after the fix), and a GEDGE_HOME whose path has spaces."""

import os
import signal
import subprocess
import time
import unittest

from cluster_lab import REGISTRY, ClusterLabTest
from gedge_e2e import GEDGE, Result


class ClusterFaultTest(ClusterLabTest):
    def link_down(self, host):
        self.addCleanup(lambda: self.lab_sh("fault", host, "link-up"))
        r = self.lab_sh("fault", host, "link-down")
        self.assertEqual(r.rc, 0, r)

    def link_up(self, host):
        r = self.lab_sh("fault", host, "link-up")
        self.assertEqual(r.rc, 0, r)

    def start_build(self, *args):
        """Starts `gedge cluster build ARGS -o json` in the background (own stdout/stderr)."""
        p = subprocess.Popen([GEDGE, "cluster", "build", *args, "-o", "json"], env=self.env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        self.addCleanup(lambda: (p.poll() is None and p.kill()))
        return p

    def finish(self, p, timeout=300):
        out, err = p.communicate(timeout=timeout)
        return Result(p.args, p.returncode, out, err)

    def wait_for_steps(self, p, cluster, device, at_least=1, timeout=180):
        """Polls the journal (cluster show) until DEVICE has journalled AT_LEAST steps."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if p.poll() is not None:
                self.fail(f"the build ended before {device} journalled a step: {p.communicate()}")
            r = self.run_gedge("cluster", "show", cluster, "-o", "json")
            if r.rc == 0 and r.json:
                for m in r.json["members"]:
                    if m["device"] == device and len(m.get("steps") or []) >= at_least:
                        return m["steps"]
            time.sleep(0.2)
        self.fail(f"{device} journalled no step in {timeout}s")

    def ansible_processes(self):
        """Processes whose command line mentions this test's GEDGE_HOME (ansible-playbook, ssh)."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if self.home in cmd and "ansible" in cmd:
                found.append((pid, cmd))
        return found

    # ---------------------------------------------------------------------------------------
    def test_ctrl_c_mid_build_then_resume(self):
        self.require_lab()
        for n in ("edge1", "h7"):
            self.add_device(n)
            self.cleanup_dropin(n, "e2e-int")
        # h7's link is down and the connect timeout long, so the build is certainly still running
        # (edge1 has done its first step, h7 is being waited for) when Ctrl-C comes.
        self.link_down("h7")
        p = self.start_build("e2e-int", "--profile", "containers", "--devices", "edge1,h7",
                             "--registry", REGISTRY, "--insecure-registry", "--timeout", "90")
        self.wait_for_steps(p, "e2e-int", "edge1")
        p.send_signal(signal.SIGINT)  # what Ctrl-C delivers to gedge
        r = self.finish(p)
        self.assertEqual(r.rc, 130, r)
        self.assertIsNotNone(r.err_json, r)
        self.assertEqual(r.err_json["code"], 130)
        # ansible-playbook and its ssh children were stopped with gedge.
        deadline = time.monotonic() + 15
        while self.ansible_processes() and time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertEqual(self.ansible_processes(), [])

        # The journal is kept and consistent: steps so far, and every unfinished device's last
        # row says it did not finish; the cluster is not ready.
        show = self.gedge_json("cluster", "show", "e2e-int")
        self.assertNotEqual(show["state"], "ready")
        members = {m["device"]: m for m in show["members"]}
        self.assertEqual(sorted(members), ["edge1", "h7"])
        for n in ("edge1", "h7"):
            self.assertEqual(members[n]["state"], "failed", members[n])
            steps = members[n]["steps"]
            self.assertTrue(steps, members[n])
            self.assertEqual((steps[-1]["step"], steps[-1]["status"]), ("not finished", "failed"), steps)
        self.assertTrue(any(s["status"] == "ok" for s in members["edge1"]["steps"]), members["edge1"])
        self.assertEqual(self.ssh_host("edge1", f"test -e {self.dropin('e2e-int')} && echo yes || echo no").strip(),
                         "no", "interrupted before the registry step")
        self.link_up("h7")

        # --resume runs exactly the unfinished devices and completes them.
        r = self.run_gedge("cluster", "build", "e2e-int", "--resume", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sorted(d["name"] for d in r.json["devices"]), ["edge1", "h7"])
        self.assertTrue(all(d["state"] == "ready" for d in r.json["devices"]), r.json)
        self.assertEqual(self.gedge_json("cluster", "show", "e2e-int")["state"], "ready")
        for n in ("edge1", "h7"):
            self.assertIn(f'location = "{REGISTRY}"', self.ssh_host(n, "cat", self.dropin("e2e-int")))
        r = self.run_gedge("cluster", "build", "e2e-int", "--resume", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertIsNone(r.json["run_id"], "nothing left to resume")

    def test_max_fail_stops_the_build(self):
        self.require_lab()
        for n in ("edge3", "h7", "h8"):
            self.add_device(n)
            self.cleanup_dropin(n, "e2e-mf")
        self.link_down("h7")
        self.link_down("h8")
        r = self.run_gedge("cluster", "build", "e2e-mf", "--devices", "edge3,h7,h8", "--registry", REGISTRY, "--insecure-registry",
                           "--max-fail", "1", "--timeout", "5", "-o", "json", timeout=300)
        devs = self.by_name(r.json)
        self.assertEqual(devs["h7"]["state"], "unreachable", r)
        self.assertEqual(devs["h8"]["state"], "unreachable", r)
        # Stopped: edge3 was not taken to the end (its run was cut when the limit was passed).
        self.assertNotEqual(devs["edge3"]["state"], "ready", r)
        self.assertEqual(devs["edge3"]["message"], "stopped before it finished")
        self.assertEqual(sorted(r.json["failed"]), ["edge3", "h7", "h8"])
        # No device succeeded, so this is a failure (1), not a partial result (3).
        self.assertEqual(r.rc, 1, r)
        msg = r.err_json["message"]
        self.assertIn("--max-fail", msg)
        self.assertIn("h7 (unreachable", msg)
        self.assertIn("h8 (unreachable", msg)
        self.assertNotEqual(self.ssh_host("edge3", f"test -e {self.dropin('e2e-mf')} && echo yes || echo no").strip(),
                            "yes", "the stopped build must not have reached the registry step on edge3")

        # A percentage: 2 of 3 failed is more than 50%: stopped too. With the links back,
        # --resume builds all three.
        self.link_up("h7")
        self.link_up("h8")
        r = self.run_gedge("cluster", "build", "e2e-mf", "--resume", "--max-fail", "50%", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sorted(d["name"] for d in r.json["devices"]), ["edge3", "h7", "h8"])
        self.assertTrue(all(d["state"] == "ready" for d in r.json["devices"]), r.json)
        for n in ("edge3", "h7", "h8"):
            self.assertIn(f'location = "{REGISTRY}"', self.ssh_host(n, "cat", self.dropin("e2e-mf")))
        # Bad values are usage errors.
        for bad in ("-1", "101%", "x", "1.5"):
            self.assertEqual(self.run_gedge("cluster", "build", "e2e-mf", "--max-fail", bad).rc, 2, bad)

    def test_link_drops_mid_build(self):
        self.require_lab()
        for n in ("edge2", "h8"):
            self.add_device(n)
            self.cleanup_dropin(n, "e2e-off")
        p = self.start_build("e2e-off", "--devices", "edge2,h8", "--registry", REGISTRY, "--insecure-registry", "--timeout", "5")
        self.wait_for_steps(p, "e2e-off", "h8")
        self.link_down("h8")
        r = self.finish(p)
        devs = self.by_name(r.json)
        if r.rc == 0 and devs["h8"]["state"] == "ready":
            self.skipTest("h8 finished its build before its link went down (machine too fast or too slow)")
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(devs["edge2"]["state"], "ready", r)
        self.assertEqual(devs["h8"]["state"], "unreachable", r)
        self.assertEqual(r.json["failed"], ["h8"])
        self.assertIn("h8 (unreachable", r.err_json["message"])
        self.assertIn(f'location = "{REGISTRY}"', self.ssh_host("edge2", "cat", self.dropin("e2e-off")))
        show = {m["device"]: m for m in self.gedge_json("cluster", "show", "e2e-off")["members"]}
        self.assertEqual(show["h8"]["state"], "unreachable")
        self.assertEqual(show["h8"]["steps"][-1]["status"], "unreachable")

        self.link_up("h8")
        r = self.run_gedge("cluster", "build", "e2e-off", "--resume", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([d["name"] for d in r.json["devices"]], ["h8"])
        self.assertEqual(r.json["devices"][0]["state"], "ready")
        self.assertIn(f'location = "{REGISTRY}"', self.ssh_host("h8", "cat", self.dropin("e2e-off")))

    def test_task_fails_on_one_host(self):
        self.require_lab()
        for n in ("edge1", "edge3"):
            self.add_device(n)
            self.cleanup_dropin(n, "e2e-task")
        # A directory where edge3's registry drop-in file must go: that one task fails there.
        blocker = self.dropin("e2e-task")
        self.addCleanup(lambda: self.ssh_host("edge3", "sudo", "rm", "-rf", blocker, check=False))
        self.ssh_host("edge3", "sudo", "mkdir", "-p", blocker)
        r = self.run_gedge("cluster", "build", "e2e-task", "--devices", "edge1,edge3", "--registry", REGISTRY, "--insecure-registry",
                           "-o", "json", timeout=300)
        self.assertEqual(r.rc, 3, r)
        devs = self.by_name(r.json)
        self.assertEqual(devs["edge1"]["state"], "ready", r)
        self.assertEqual(devs["edge3"]["state"], "failed", r)
        self.assertEqual(r.json["failed"], ["edge3"])
        self.assertIn(f'location = "{REGISTRY}"', self.ssh_host("edge1", "cat", blocker))
        show = {m["device"]: m for m in self.gedge_json("cluster", "show", "e2e-task")["members"]}
        failed_steps = [st for st in show["edge3"]["steps"] if st["status"] == "failed"]
        self.assertTrue(failed_steps, show["edge3"])
        self.assertIn("registr", failed_steps[-1]["step"].lower(), "the journal names the failing task")

        # The cause removed, --resume builds only edge3.
        self.ssh_host("edge3", "sudo", "rm", "-rf", blocker)
        r = self.run_gedge("cluster", "build", "e2e-task", "--resume", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([d["name"] for d in r.json["devices"]], ["edge3"])
        self.assertIn(f'location = "{REGISTRY}"', self.ssh_host("edge3", "cat", blocker))

    def test_gedge_home_with_spaces(self):
        """The generated inventory's ssh arguments survive a GEDGE_HOME with spaces (and a quote)."""
        self.require_lab()
        self.home = os.path.join(self.tmp, "my gedge's home")
        self.env["GEDGE_HOME"] = self.home
        self.assertEqual(self.run_gedge("init").rc, 0)
        self.add_device("edge1")
        self.cleanup_dropin("edge1", "e2e-sp")
        r = self.run_gedge("cluster", "build", "e2e-sp", "--devices", "edge1", "--registry", REGISTRY, "--insecure-registry",
                           "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.by_name(r.json)["edge1"]["state"], "ready")
        self.assertIn(f'location = "{REGISTRY}"', self.ssh_host("edge1", "cat", self.dropin("e2e-sp")))
        # The exported inventory works with plain ansible too (same quoting, gedge's known_hosts).
        inv = os.path.join(self.tmp, "inventory.yml")
        ex = self.run_gedge("cluster", "export", "e2e-sp", "--format", "ansible")
        self.assertEqual(ex.rc, 0, ex)
        with open(inv, "w") as f:
            f.write(ex.stdout)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update(ANSIBLE_LOCAL_TEMP=os.path.join(self.tmp, "ansible-tmp"), ANSIBLE_NOCOLOR="1")
        p = subprocess.run(["ansible", "-i", inv, "all", "-m", "ping"], env=env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS", p.stdout)


if __name__ == "__main__":
    unittest.main()
