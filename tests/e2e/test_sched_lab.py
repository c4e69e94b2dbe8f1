# needs: lab
"""gedge sched on the lab: `sched probe` measures over SSH from a device that a far host (behind
the lab's userspace delay) is slower, and low-latency and pipeline then choose the near host.

The two clusters are written straight into the inventory (the rows `gedge cluster build`
records), so this test does not depend on Ansible runs; devices are registered with the real
`gedge device add` (facts come from the hosts)."""

import os
import sqlite3

from gedge_e2e import GedgeTest

WEB = """name: web
containers:
  - image: 10.213.0.1:5000/gedge/busybox:1.0
    resources: {requests: {cpu: 500m, memory: 64Mi}}
"""

PIPE = """kind: Pipeline
name: two
stages:
  - name: a
    containers: [10.213.0.1:5000/gedge/busybox:1.0]
    resources: {cpu: 250m, memory: 32Mi}
    compute_ms: 1
    output_mb: 0.1
  - name: b
    containers: [10.213.0.1:5000/gedge/busybox:1.0]
    resources: {cpu: 250m, memory: 32Mi}
    compute_ms: 1
"""


class SchedLabTest(GedgeTest):
    def setUp(self):
        super().setUp()
        self.require_lab()

    def add(self, name):
        lab, h = self.lab(), self.lab_host(name)
        r = self.run_gedge("device", "add", name, "--host", h["address"], "--port", str(h["port"]),
                           "--user", lab["user"], "--identity", lab["key"], "--accept-new", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertGreater(r.json["facts"]["cpus"], 0)

    def test_probe_then_low_latency_and_pipeline_choose_the_near_host(self):
        for name in ("h1", "h2", "far1"):
            self.add(name)
        db = sqlite3.connect(os.path.join(self.home, "gedge.db"))
        with db:
            for name, tier in (("near", "local"), ("far", "cloud")):
                db.execute("INSERT INTO clusters (name, kind, profile, tier, state, created_at, updated_at) "
                           "VALUES (?, 'devices', 'containers', ?, 'ready', 'now', 'now')", (name, tier))
            db.execute("INSERT INTO cluster_members (cluster, device, state) VALUES ('near', 'h2', 'ready'), "
                       "('far', 'far1', 'ready')")
        db.close()
        # Before probing, a latency policy has no RTTs to go on: a clear error, not a guess.
        web = os.path.join(self.tmp, "web.yaml")
        with open(web, "w") as f:
            f.write(WEB)
        r = self.run_gedge("sched", "place", web, "--policy", "low-latency", "--from", "h1", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("no latency link", r.err_json["message"])

        rows = self.gedge_json("sched", "probe", "--from", "h1")
        rtt = {row["to"]: row["rtt_ms"] for row in rows}
        self.assertEqual(set(rtt), {"h2", "far1"})
        self.assertGreater(rtt["far1"], rtt["h2"], "the far host (behind the delay) must measure slower")
        db = sqlite3.connect(os.path.join(self.home, "gedge.db"))
        stored = dict(db.execute("SELECT dst, ms FROM rtts WHERE src = 'h1'").fetchall())
        db.close()
        self.assertEqual(set(stored), {"h2", "far1"})

        r = self.gedge_json("sched", "place", web, "--policy", "low-latency", "--from", "h1")
        self.assertEqual((r["placements"][0]["cluster"], r["placements"][0]["node"]), ("near", "h2"))
        self.assertAlmostEqual(r["e2e_ms"], stored["h2"], places=2)
        # A pipeline may split across clusters, so it needs near <-> far too: measure it.
        self.gedge_json("sched", "probe", "--from", "h2", "--to", "far1")
        pipe = os.path.join(self.tmp, "pipe.yaml")
        with open(pipe, "w") as f:
            f.write(PIPE)
        r = self.gedge_json("sched", "place", pipe, "--policy", "pipeline", "--from", "h1")
        self.assertEqual({(p["cluster"], p["node"]) for p in r["placements"]}, {("near", "h2")})
        # least-allocated ignores latency: its e2e is never better than pipeline's
        r2 = self.gedge_json("sched", "place", pipe, "--policy", "least-allocated", "--from", "h1")
        self.assertGreaterEqual(r2["e2e_ms"] + 1e-9, r["e2e_ms"])
