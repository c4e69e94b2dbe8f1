# needs: lab
"""Fleet monitoring on the lab's full-OS hosts: `cluster build --monitoring --prometheus-on edge1`
runs the Debian Prometheus server on edge1 with gedge's alert rules and a file_sd target file
gedge keeps; Prometheus scrapes every member with gedge's labels; join and leave rewrite the
target file (picked up without a reload or restart); the exported rules and target file pass
promtool; `cluster status -o json` reads its averages from Prometheus; rm removes the file."""

import json
import os
import shutil
import subprocess
import time
import unittest
import urllib.request

from cluster_lab import ClusterLabTest

SOURCE_DIR = os.environ.get(
    "GEDGE_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCHEMAS = os.path.join(SOURCE_DIR, "schemas")
CLUSTER = "e2e-mon18"  # unique to these tests: other lab tests build their own clusters on edge1..3
TARGETS = f"/etc/prometheus/gedge/targets/{CLUSTER}.json"


class ClusterMonitoringTest(ClusterLabTest):
    def prom(self, path):
        url = f"http://{self.lab_host('edge1')['address']}:9090{path}"
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)

    def gedge_targets(self):
        """Prometheus' active targets of this test's cluster, by gedge_device."""
        out = {}
        for t in self.prom("/api/v1/targets?state=active")["data"]["activeTargets"]:
            if t["labels"].get("gedge_cluster") == CLUSTER:
                out[t["labels"]["gedge_device"]] = t
        return out

    def wait_for(self, what, check, timeout=90, interval=2):
        """Polls check() until it returns a truthy value; returns (value, seconds waited)."""
        t0 = time.monotonic()
        while True:
            v = check()
            if v:
                return v, time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                self.fail(f"{what}: not within {timeout} s")
            time.sleep(interval)

    def check_schema(self, name, doc):
        try:
            import jsonschema
        except ImportError:
            return
        with open(os.path.join(SCHEMAS, name)) as f:
            jsonschema.validate(doc, json.load(f))

    def prometheus_pid(self):
        return self.ssh_host("edge1", "systemctl", "show", "-p", "MainPID", "--value", "prometheus").strip()

    def test_prometheus_on_a_member(self):
        self.require_lab()
        for n in ("edge1", "edge3"):
            self.add_device(n)
        # edge2 with a site, a tier and a label: they become target labels.
        h, lab = self.lab_host("edge2"), self.lab()
        r = self.run_gedge("device", "add", "edge2", "--host", h["address"], "--port", h["port"],
                           "--user", lab["user"], "--identity", lab["key"], "--host-key", h["host_key_fingerprint"],
                           "--site", "lab-b", "--tier", "local", "--label", "rack=r7", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        # The server and our file are not ours to leave behind on a shared host.
        self.addCleanup(lambda: self.ssh_host(
            "edge1", f"sudo rm -f {TARGETS}; sudo systemctl disable --now prometheus", check=False))

        r = self.run_gedge("cluster", "build", CLUSTER, "--profile", "containers", "--devices", "edge1,edge2",
                           "--monitoring", "--prometheus-on", "edge1", "-o", "json", timeout=600)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["state"], "ready")
        prom = r.json["prometheus"]
        self.assertEqual((prom["host"], prom["state"]), ("edge1", "ready"), prom)
        self.assertEqual(prom["url"], f"http://{self.lab_host('edge1')['address']}:9090")
        self.assertTrue(prom["targets_file"]["synced"], prom)
        self.assertEqual(prom["targets_file"]["targets"], 2)
        self.assertEqual(self.ssh_host("edge1", "systemctl", "is-active", "prometheus").strip(), "active")
        self.assertEqual(self.ssh_host("edge1", "systemctl", "is-enabled", "prometheus").strip(), "enabled")
        self.assertEqual(self.gedge_json("cluster", "show", CLUSTER)["prometheus"], "edge1")

        # The target file on edge1 is gedge's: both members with gedge's labels.
        sd = json.loads(self.ssh_host("edge1", "cat", TARGETS))
        self.assertEqual(sorted(t["labels"]["gedge_device"] for t in sd), ["edge1", "edge2"])
        for t in sd:
            addr = self.lab_host(t["labels"]["gedge_device"])["address"]
            self.assertEqual(t["targets"], [f"{addr}:9100"])
            self.assertEqual(t["labels"]["gedge_cluster"], CLUSTER)

        # Prometheus scrapes every member, up, with gedge's labels; the rules are loaded.
        targets, waited = self.wait_for("both members up in Prometheus", lambda: (
            lambda t: t if sorted(t) == ["edge1", "edge2"] and all(x["health"] == "up" for x in t.values()) else None
        )(self.gedge_targets()))
        print(f"\n  members up in Prometheus {waited:.1f} s after the build")
        for dev, t in targets.items():
            self.assertEqual(t["labels"]["job"], "gedge")
            self.assertEqual(t["labels"]["gedge_cluster"], CLUSTER)
            self.assertEqual(t["labels"]["gedge_device"], dev)
        e2 = targets["edge2"]["labels"]
        self.assertEqual((e2.get("site"), e2.get("tier"), e2.get("rack")), ("lab-b", "local", "r7"), e2)
        rules = self.prom("/api/v1/rules")["data"]["groups"]
        names = {r["name"] for g in rules for r in g["rules"]}
        for a in ("GedgeDeviceDown", "GedgeDiskNearlyFull", "GedgeMemoryPressure", "GedgeNodeExporterMissing"):
            self.assertIn(a, names)

        # Exports: promtool accepts the rules, and a configuration that uses the target file.
        promtool = shutil.which("promtool")
        if promtool:
            d = os.path.join(self.tmp, "prom")
            os.makedirs(d)
            rules_txt = self.run_gedge("cluster", "export", CLUSTER, "--format", "prometheus-rules")
            self.assertEqual(rules_txt.rc, 0, rules_txt)
            with open(os.path.join(d, "gedge.rules.yml"), "w") as f:
                f.write(rules_txt.stdout)
            p = subprocess.run([promtool, "check", "rules", os.path.join(d, "gedge.rules.yml")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            sd_txt = self.run_gedge("cluster", "export", CLUSTER, "--format", "prometheus-sd")
            self.assertEqual(sd_txt.rc, 0, sd_txt)
            self.assertEqual(json.loads(sd_txt.stdout), sd)
            with open(os.path.join(d, "targets.json"), "w") as f:
                f.write(sd_txt.stdout)
            with open(os.path.join(d, "prometheus.yml"), "w") as f:
                f.write("rule_files: [gedge.rules.yml]\nscrape_configs:\n  - job_name: gedge\n"
                        "    file_sd_configs:\n      - files: [targets.json]\n")
            p = subprocess.run([promtool, "check", "config", os.path.join(d, "prometheus.yml")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        # join: the new member is scraped without a reload or restart of the server.
        pid = self.prometheus_pid()
        r = self.run_gedge("cluster", "join", CLUSTER, "edge3", "-o", "json", timeout=600)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.json["prometheus"]["targets_file"]["synced"], r.json)
        _, waited = self.wait_for("edge3 up in Prometheus", lambda: (
            self.gedge_targets().get("edge3", {}).get("health") == "up"))
        print(f"  joined member up in Prometheus {waited:.1f} s after join")

        # status reads the averages from Prometheus (the 5-minute CPU rate needs two scrapes). The
        # hour's series is a range query evaluated at the last whole second, a moment before the
        # instant queries' "now": for a member that joined a minute ago it can still miss the
        # second scrape the instant rate already has, so both are waited for.
        def status_ready():
            st = self.gedge_json("cluster", "status", CLUSTER, timeout=120)
            ok = all(m["metrics"] and m["metrics"]["cpu_busy_percent"] is not None
                     and m["metrics"]["cpu_busy_percent_1h"][-1] is not None for m in st["members"])
            return st if ok else None
        st, _ = self.wait_for("cpu averages in status", status_ready, timeout=120, interval=5)
        self.check_schema("cluster-status.schema.json", st)
        self.assertEqual(st["source"], "prometheus")
        self.assertEqual(st["prometheus"]["host"], "edge1")
        self.assertEqual(sorted(m["device"] for m in st["members"]), ["edge1", "edge2", "edge3"])
        for m in st["members"]:
            self.assertTrue(m["up"], m)
            self.assertTrue(m["reachable"], m)
            met = m["metrics"]
            self.assertEqual(met["window"], "5m")
            self.assertGreaterEqual(met["cpu_busy_percent"], 0)
            self.assertLessEqual(met["cpu_busy_percent"], 100)
            self.assertGreater(met["cpus"], 0)
            self.assertGreater(met["memory_total_bytes"], 0)
            self.assertGreater(met["memory_used_bytes"], 0)
            self.assertLessEqual(met["memory_used_bytes"], met["memory_total_bytes"])
            self.assertGreater(met["disk_free_bytes"], 0)
            self.assertIsNotNone(met["load1"])
            self.assertEqual(len(met["cpu_busy_percent_1h"]), 30)
            self.assertIsNotNone(met["cpu_busy_percent_1h"][-1], met["cpu_busy_percent_1h"])
        # The table (not a TTY here) names its source.
        r = self.run_gedge("cluster", "status", CLUSTER, timeout=120)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("from Prometheus at", r.stdout)

        # leave: the target goes from Prometheus within a minute, without a reload or restart.
        t0 = time.monotonic()
        r = self.gedge_json("cluster", "leave", CLUSTER, "edge3")
        self.assertTrue(r["prometheus"]["synced"], r)
        self.assertEqual(r["prometheus"]["targets"], 2)
        _, waited = self.wait_for("edge3 gone from Prometheus", lambda: "edge3" not in self.gedge_targets(),
                                  timeout=60, interval=1)
        print(f"  left member gone from Prometheus {time.monotonic() - t0:.1f} s after leave")
        self.assertEqual(self.prometheus_pid(), pid, "the server was restarted")
        self.assertEqual(sorted(t["labels"]["gedge_device"] for t in json.loads(self.ssh_host("edge1", "cat", TARGETS))),
                         ["edge1", "edge2"])

        # A second build converges: nothing changes on the Prometheus host either.
        r = self.run_gedge("cluster", "build", CLUSTER, "-o", "json", timeout=600)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["prometheus"]["changed"], [], r.json["prometheus"])

        # rm: the target file goes; Prometheus stops scraping the cluster.
        r = self.gedge_json("cluster", "rm", CLUSTER, "--yes")
        self.assertTrue(r["prometheus"]["synced"], r)
        self.assertEqual(self.ssh_host("edge1", f"test -e {TARGETS} && echo yes || echo no").strip(), "no")
        self.wait_for("cluster gone from Prometheus", lambda: not self.gedge_targets(), timeout=60, interval=1)

    def test_status_without_an_answering_server_falls_back_to_live_scrapes(self):
        self.require_lab()
        self.add_device("edge2")
        # edge2 runs no Prometheus server: the build's server step fails (exit 3 naming it), the
        # member itself is ready, and status reads the member live with the server's error.
        r = self.run_gedge("cluster", "build", CLUSTER + "b", "--devices", "edge2", "--prometheus-on", "edge2",
                           "-o", "json", env={"GEDGE_PLAYBOOK_DIR": self.broken_playbooks()}, timeout=600)
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(r.json["devices"][0]["state"], "ready")
        self.assertEqual(r.json["prometheus"]["state"], "failed")
        self.assertIn("Prometheus server on edge2", r.err_json["message"])
        st = self.run_gedge("cluster", "status", CLUSTER + "b", "-o", "json", timeout=120)
        self.assertEqual(st.rc, 0, st)
        self.assertEqual(st.json["source"], "scrape")
        self.assertIn("error", st.json["prometheus"])
        self.assertTrue(st.json["members"][0]["reachable"])
        self.assertIsNotNone(st.json["members"][0]["metrics"])
        self.check_schema("cluster-status.schema.json", st.json)
        self.gedge_json("cluster", "rm", CLUSTER + "b", "--yes")

    def broken_playbooks(self):
        """A copy of playbooks/ whose Prometheus role fails before touching the host."""
        d = os.path.join(self.tmp, "playbooks")
        shutil.copytree(os.path.join(SOURCE_DIR, "playbooks"), d)
        with open(os.path.join(d, "roles/prometheus_server/tasks/main.yml"), "w") as f:
            f.write("---\n- name: Refuse\n  ansible.builtin.fail:\n    msg: refused by the test\n")
        return d


if __name__ == "__main__":
    unittest.main()
