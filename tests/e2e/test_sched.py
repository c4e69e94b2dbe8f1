"""gedge sched end to end: the binary with --state worlds, -o json, the durable queue.

The pipeline's answer is checked against an independent brute-force written here in Python
with the cost model of the issue, so a wrong optimiser or a wrong cost model fails.
"""

import itertools
import json
import os
import time
import sqlite3
import socket
import subprocess

from gedge_e2e import GEDGE, GedgeTest

GIB = 1024 ** 3

YOLO = """kind: Pipeline
name: yolo
source: cam-1
stages:
  - name: pre
    containers: [10.213.0.1:5000/yolo/pre:1]
    resources: {cpu: 500m, memory: 512Mi}
    compute_ms: 8
    output_mb: 1.2
  - name: infer
    containers: [10.213.0.1:5000/yolo/infer:1]
    resources: {cpu: 2, memory: 4Gi, gpu: 1}
    compute_ms: {gpu: 25, cpu: 400}
    output_mb: 0.1
  - name: post
    containers: [10.213.0.1:5000/yolo/post:1]
    resources: {cpu: 500m, memory: 256Mi}
    compute_ms: 5
"""

WEB = """name: web
containers:
  - image: 10.213.0.1:5000/gedge/busybox:1.0
    resources: {requests: {cpu: 1, memory: 256Mi}}
"""

HUGE = """name: huge
containers:
  - image: 10.213.0.1:5000/gedge/busybox:1.0
    resources: {requests: {cpu: 500, memory: 1Gi}}
"""


def world():
    def node(name, cpu, mem, gpu, ucpu=0, umem=0, ugpu=0, ready=True):
        return {"name": name, "ready": ready,
                "capacity": {"cpu": cpu, "memory": f"{mem}Gi", "gpu": gpu},
                "allocated": {"cpu": ucpu, "memory": f"{umem}Gi", "gpu": ugpu}}
    return {
        "clusters": [
            {"name": "edge-a", "tier": "local",
             "nodes": [node("n1", 4, 8, 0, 1, 2), node("n2", 4, 8, 0, 3.5, 7), node("n3", 4, 8, 0, ready=False)]},
            {"name": "edge-b", "tier": "neighbor", "nodes": [node("g1", 8, 16, 1, 2, 4)]},
            {"name": "cloud", "tier": "cloud", "nodes": [node("c1", 32, 128, 4, 8, 32), node("c2", 32, 128, 4)]},
        ],
        "latency_ms": {"intra_cluster": 0.3, "links": [
            {"a": "cam-1", "b": "edge-a", "ms": 2.0}, {"a": "cam-1", "b": "edge-b", "ms": 7.0},
            {"a": "cam-1", "b": "cloud", "ms": 45.0}, {"a": "cam-1", "b": "edge-a/n1", "ms": 1.2},
            {"a": "edge-a", "b": "edge-b", "ms": 4.0}, {"a": "edge-a", "b": "cloud", "ms": 40.0},
            {"a": "edge-b", "b": "cloud", "ms": 35.0}]},
        "bandwidth_mbps": {"intra_cluster": 10000, "links": [
            {"a": "edge-a", "b": "edge-b", "mbps": 1000}, {"a": "edge-a", "b": "cloud", "mbps": 200},
            {"a": "edge-b", "b": "cloud", "mbps": 200}]},
    }


def brute_force(w, stages, source):
    """Independent oracle: every (node, variant) per stage, capacity-checked, issue's cost model."""
    nodes = [(c["name"], n) for c in w["clusters"] for n in c["nodes"]]

    def q(v):
        if isinstance(v, str) and v.endswith("Gi"):
            return float(v[:-2]) * GIB
        if isinstance(v, str) and v.endswith("Mi"):
            return float(v[:-2]) * 1024 ** 2
        if isinstance(v, str) and v.endswith("m"):
            return float(v[:-1]) / 1000
        return float(v)

    def link(table, a, b):
        def expand(e):
            return [e, e.split("/")[0]] if "/" in e else [e]
        if a == b:
            return 0.0
        fa, fb = expand(a), expand(b)
        for s in range(3):
            for i in range(len(fa)):
                j = s - i
                if j < 0 or j >= len(fb) or fa[i] == fb[j]:
                    continue
                for l in table["links"]:
                    if {l["a"], l["b"]} == {fa[i], fb[j]}:
                        return l.get("ms", l.get("mbps"))
        if "/" in a and "/" in b and a.split("/")[0] == b.split("/")[0]:
            return table["intra_cluster"]
        return None

    options = []
    for st in stages:
        opts = []
        for cname, n in nodes:
            if not n.get("ready", True):
                continue
            variants = []
            if "compute_gpu" in st:
                variants = [(True, st["compute_gpu"], 1), (False, st["compute_cpu"], 0)]
            else:
                variants = [(st["gpu"] > 0, st["compute"], st["gpu"])]
            for gpu, ms, g in variants:
                opts.append((f"{cname}/{n['name']}", n, gpu, ms, (st["cpu"], st["mem"], g)))
        options.append(opts)
    best = None
    for combo in itertools.product(*options):
        used = {}
        ok = True
        for nid, n, gpu, ms, need in combo:
            u = used.setdefault(nid, [q(n["allocated"]["cpu"]), q(n["allocated"]["memory"]), n["allocated"]["gpu"]])
            u[0] += need[0]; u[1] += need[1]; u[2] += need[2]
            cap = n["capacity"]
            if u[0] > q(cap["cpu"]) + 1e-9 or u[1] > q(cap["memory"]) + 1e-9 or u[2] > cap["gpu"] + 1e-9:
                ok = False
        if not ok:
            continue
        e2e = link(w["latency_ms"], source, combo[0][0])
        for k, (nid, n, gpu, ms, need) in enumerate(combo):
            e2e += ms
            if k + 1 < len(combo) and combo[k + 1][0] != nid:
                nxt = combo[k + 1][0]
                e2e += link(w["latency_ms"], nid, nxt)
                e2e += stages[k]["out"] * 8000 / link(w["bandwidth_mbps"], nid, nxt)
        if best is None or e2e < best:
            best = e2e
    return best


YOLO_STAGES = [
    {"cpu": 0.5, "mem": 512 * 1024 ** 2, "gpu": 0, "compute": 8, "out": 1.2},
    {"cpu": 2, "mem": 4 * GIB, "gpu": 1, "compute_gpu": 25, "compute_cpu": 400, "out": 0.1},
    {"cpu": 0.5, "mem": 256 * 1024 ** 2, "gpu": 0, "compute": 5, "out": 0},
]


class SchedTest(GedgeTest):
    def setUp(self):
        super().setUp()
        self.yolo = self.write("yolo.yaml", YOLO)
        self.web = self.write("web.yaml", WEB)
        self.huge = self.write("huge.yaml", HUGE)
        self.state = self.write("world.json", json.dumps(world()))

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def place(self, *args):
        return self.run_gedge("sched", "place", *args, "-o", "json")

    # --- place ----------------------------------------------------------------------
    def test_pipeline_is_the_optimum(self):
        r = self.place(self.yolo, "--state", self.state)
        self.assertEqual(r.rc, 0, r)
        out = r.json
        self.assertEqual(out["policy"], "pipeline")
        self.assertEqual(out["source"], "cam-1")
        self.assertEqual([p["stage"] for p in out["placements"]], ["pre", "infer", "post"])
        for p in out["placements"]:
            self.assertEqual(set(p), {"stage", "cluster", "node", "gpu", "score", "terms"})
            self.assertNotEqual((p["cluster"], p["node"]), ("edge-a", "n3"))  # not ready
        oracle = brute_force(world(), YOLO_STAGES, "cam-1")
        self.assertAlmostEqual(out["e2e_ms"], oracle, places=2)
        # e2e_ms is the sum of the per-stage terms for a chain
        total = sum(p["terms"]["compute_ms"] + p["terms"]["link_ms"] + p["terms"]["transfer_ms"]
                    for p in out["placements"])
        self.assertAlmostEqual(out["e2e_ms"], total, places=2)
        self.assertTrue(any(r["node"] == "n3" and r["reason"] == "not ready" for r in out["rejected"]))

    def test_every_policy_reports_e2e_and_pipeline_is_best(self):
        best = self.place(self.yolo, "--state", self.state).json["e2e_ms"]
        for args in (["--policy", "low-latency"], ["--policy", "least-allocated"],
                     ["--policy", "most-allocated"],
                     ["--policy", "select-clusters", "--clusters", '["edge-a", ["edge-b", "cloud"]]'],
                     ["--policy", "node", "--node", "cloud/c2"]):
            r = self.place(self.yolo, "--state", self.state, *args)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.json["policy"], args[1])
            self.assertIsInstance(r.json["e2e_ms"], float, r.json)
            self.assertGreaterEqual(r.json["e2e_ms"] + 1e-9, best, args)
        r = self.place(self.yolo, "--state", self.state, "--policy", "node", "--node", "cloud/c2")
        self.assertEqual({(p["cluster"], p["node"]) for p in r.json["placements"]}, {("cloud", "c2")})

    def test_low_latency_and_levels(self):
        r = self.place(self.web, "--state", self.state, "--policy", "low-latency", "--from", "cam-1")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual((r.json["placements"][0]["cluster"], r.json["placements"][0]["node"]), ("edge-a", "n1"))
        # first level cannot hold a GPU request: falls through to the nested level, ranked by RTT
        gpu = self.write("gpu.yaml", WEB.replace("memory: 256Mi}", "memory: 256Mi, nvidia.com/gpu: 1}"))
        r = self.place(gpu, "--state", self.state, "--policy", "select-clusters",
                       "--clusters", '["edge-a", ["cloud", "edge-b"]]', "--from", "cam-1")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["placements"][0]["cluster"], "edge-b")
        self.assertEqual(r.json["placements"][0]["terms"]["level"], 2)

    def test_deterministic_output(self):
        a = self.run_gedge("sched", "place", self.yolo, "--state", self.state, "--explain", "-o", "json")
        b = self.run_gedge("sched", "place", self.yolo, "--state", self.state, "--explain", "-o", "json")
        self.assertEqual(a.rc, 0, a)
        self.assertEqual(a.stdout, b.stdout)

    def test_explain(self):
        r = self.place(self.yolo, "--state", self.state, "--explain")
        self.assertEqual(r.rc, 0, r)
        cands = r.json["candidates"]
        self.assertTrue(all({"stage", "cluster", "node", "score", "terms"} <= set(c) for c in cands))
        infer = [c for c in cands if c["stage"] == "infer"]
        self.assertTrue(any(c["terms"]["gpu"] for c in infer))
        t = self.run_gedge("sched", "place", self.yolo, "--state", self.state, "--explain")
        self.assertEqual(t.rc, 0, t)
        self.assertIn("nodes fit stage 'infer'", t.stdout)
        self.assertIn("1 not ready", t.stdout)

    def test_explain_ranking_is_data(self):
        r = self.place(self.web, "--state", self.state, "--policy", "least-allocated", "--explain")
        self.assertEqual(r.rc, 0, r)
        (st,) = r.json["explain"]["stages"]
        self.assertEqual((st["stage"], st["fit"], st["total"]), ("web", 4, 6))  # n2 has 0.5 cpu free, n3 is down
        self.assertEqual(st["rejected_by"], [{"reason": "insufficient cpu", "nodes": 1}, {"reason": "not ready", "nodes": 1}])
        self.assertEqual(len(st["ranking"]), 4)
        scores = [c["score"] for c in st["ranking"]]
        self.assertEqual(scores, sorted(scores, reverse=True), "least-allocated ranks the emptiest first")
        self.assertEqual((st["ranking"][0]["cluster"], st["ranking"][0]["node"]),
                         (r.json["placements"][0]["cluster"], r.json["placements"][0]["node"]))
        r = self.place(self.web, "--state", self.state, "--policy", "low-latency", "--from", "cam-1", "--explain")
        rtts = [c["terms"]["rtt_ms"] for c in r.json["explain"]["stages"][0]["ranking"]]
        self.assertEqual(rtts, sorted(rtts), "low-latency ranks the nearest first")

    def test_explain_when_nothing_fits_names_every_failing_filter(self):
        r = self.place(self.huge, "--state", self.state, "--policy", "least-allocated", "--explain")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("0/6 nodes fit stage 'huge'", r.err_json["message"])
        self.assertIsNotNone(r.json, "the explanation is printed, on stdout, when nothing fits")
        self.assertFalse(r.json["placed"])
        (st,) = r.json["stages"]
        self.assertEqual((st["fit"], st["total"]), (0, 6))
        nodes = {(n["cluster"], n["node"]): n["reasons"] for n in st["nodes"]}
        self.assertEqual(len(nodes), 6)
        # n3 is not ready AND too small: both named (the placement itself stops at the first)
        self.assertEqual(nodes[("edge-a", "n3")], ["not ready", "insufficient cpu"])
        self.assertEqual(nodes[("cloud", "c2")], ["insufficient cpu"])
        t = self.run_gedge("sched", "place", self.huge, "--state", self.state, "--policy", "least-allocated", "--explain")
        self.assertEqual(t.rc, 1)
        self.assertIn("0/6 nodes fit stage 'huge'", t.stdout)
        self.assertRegex(t.stdout, r"edge-a +n3 +false +not ready,insufficient cpu")

    # --- bad input ------------------------------------------------------------------
    def test_fits_nowhere_exits_1_with_summary(self):
        r = self.place(self.huge, "--state", self.state, "--policy", "least-allocated")
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.stdout, "")
        self.assertIn("0/6 nodes fit stage 'huge'", r.err_json["message"])
        self.assertIn("5 insufficient cpu", r.err_json["message"])
        self.assertIn("1 not ready", r.err_json["message"])

    def test_bad_flags(self):
        cases = [
            (["--policy", "fastest"], 2),
            (["--policy", "select-clusters", "--clusters", '["nowhere"]'], 4),
            (["--policy", "select-clusters", "--clusters", "[edge-a, cloud"], 2),  # the bare form is accepted; unclosed is not
            (["--policy", "select-clusters", "--clusters", "__import__('os').system('touch /tmp/x')"], 2),
            (["--policy", "select-clusters"], 2),
            (["--policy", "node", "--node", "edge-a/zz"], 4),
            (["--policy", "node"], 2),
            (["--policy", "least-allocated", "--weights", "cpu=lots"], 2),
        ]
        for args, rc in cases:
            r = self.place(self.web, "--state", self.state, "--from", "cam-1", *args)
            self.assertEqual(r.rc, rc, (args, r))
            self.assertIsNotNone(r.err_json, r)

    def test_bad_state_files(self):
        def broken(mutate):
            w = world()
            mutate(w)
            return json.dumps(w)
        cases = {
            "negative": broken(lambda w: w["clusters"][0]["nodes"][0]["capacity"].update(cpu=-4)),
            "unknown-field": broken(lambda w: w["clusters"][0].update(region="x")),
            "huge": broken(lambda w: w["clusters"][0]["nodes"][0]["capacity"].update(gpu=1e300)),
            "nan": json.dumps(world()).replace('"gpu": 4}', '"gpu": NaN}', 1),
            "missing-link": broken(lambda w: w["latency_ms"]["links"].pop()),  # edge-b <-> cloud
            "unknown-node": broken(lambda w: w["latency_ms"]["links"].append({"a": "cam-1", "b": "cloud/zz", "ms": 1})),
        }
        for name, text in cases.items():
            path = self.write(f"{name}.json", text)
            r = self.place(self.yolo, "--state", path)
            self.assertEqual(r.rc, 2, (name, r))
            self.assertTrue(r.err_json and r.err_json["message"], (name, r))
        r = self.place(self.yolo, "--state", os.path.join(self.tmp, "missing-link.json"))
        self.assertIn("no latency link between clusters 'cloud' and 'edge-b'", r.err_json["message"])
        bad = self.write("cycle.yaml", "kind: Pipeline\nstages:\n - {name: a, after: [b]}\n - {name: b, after: [a]}\n")
        self.assertEqual(self.place(bad, "--state", self.state).rc, 2)

    # --- the queue ------------------------------------------------------------------
    def submit(self, path, *args):
        r = self.run_gedge("sched", "submit", path, "--state", self.state, *args, "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["state"], "enqueued")
        return r.json["id"]

    def ls(self, *args):
        return {row["id"]: row for row in self.gedge_json("sched", "ls", *args)}

    def test_queue_lifecycle(self):
        a = self.submit(self.yolo)
        b = self.submit(self.web, "--policy", "low-latency", "--from", "cam-1")
        c = self.submit(self.web, "--policy", "least-allocated")
        self.assertEqual({r["state"] for r in self.ls().values()}, {"enqueued"})
        self.assertEqual(self.gedge_json("sched", "cancel", str(c))["state"], "canceled")
        self.assertEqual(self.run_gedge("sched", "cancel", str(c), "-o", "json").rc, 0)  # idempotent
        r = self.run_gedge("sched", "run", "--once", "--max", "1", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([x["id"] for x in r.json], [a])
        self.assertEqual(r.json[0]["state"], "completed")
        self.assertEqual(len(r.json[0]["placements"]["placements"]), 3)
        r = self.run_gedge("sched", "run", "--once", "-o", "json")
        self.assertEqual([x["id"] for x in r.json], [b])
        rows = self.ls()
        self.assertEqual((rows[a]["state"], rows[b]["state"], rows[c]["state"]), ("completed", "completed", "canceled"))
        self.assertEqual(list(self.ls("--state", "canceled")), [c])
        self.assertEqual(self.run_gedge("sched", "cancel", str(a), "-o", "json").rc, 7)
        self.assertEqual(self.run_gedge("sched", "cancel", "999", "-o", "json").rc, 4)
        self.assertEqual(self.run_gedge("sched", "ls", "--state", "bogus", "-o", "json").rc, 2)
        r = self.run_gedge("sched", "run", "--once", "-o", "json")
        self.assertEqual((r.rc, r.json), (0, []))
        # a file that can never be valid is refused at submit
        bad = self.write("bad.yaml", "kind: Pipeline\nstages: [\n")
        self.assertEqual(self.run_gedge("sched", "submit", bad, "-o", "json").rc, 2)

    def test_failures_requeue_then_front_then_failed(self):
        def run1(rc=0):
            r = self.run_gedge("sched", "run", "--once", "--max", "1", "--retry-now", "-o", "json")
            self.assertEqual(r.rc, rc, r)
            self.assertEqual(len(r.json), 1, r)
            return r.json[0]
        bad = self.submit(self.huge)
        g1 = self.submit(self.web, "--policy", "least-allocated")
        r = run1()
        self.assertEqual((r["id"], r["state"], r["attempts"]), (bad, "enqueued", 1))
        self.assertIn("0/6 nodes fit stage 'huge'", r["error"])
        r = run1()  # 1-2 failures: back of the queue, so g1 goes first
        self.assertEqual((r["id"], r["state"]), (g1, "completed"))
        r = run1()
        self.assertEqual((r["id"], r["attempts"]), (bad, 2))
        g2 = self.submit(self.web, "--policy", "least-allocated")
        g3 = self.submit(self.web, "--policy", "least-allocated")
        r = run1()
        self.assertEqual((r["id"], r["attempts"]), (bad, 3))
        r = run1()  # more than 2 failures: front of the queue, before g2 and g3
        self.assertEqual((r["id"], r["attempts"], r["state"]), (bad, 4, "enqueued"))
        r = run1()
        self.assertEqual((r["id"], r["attempts"], r["state"]), (bad, 5, "enqueued"))
        r = run1(rc=3)  # more than 5: failed for good, and the run says so
        self.assertEqual((r["id"], r["attempts"], r["state"]), (bad, 6, "failed"))
        rows = self.gedge_json("sched", "run", "--once")
        self.assertEqual([(x["id"], x["state"]) for x in rows], [(g2, "completed"), (g3, "completed")])
        self.assertEqual(list(self.ls("--state", "failed")), [bad])

    def test_one_run_takes_a_request_once_and_backs_off(self):
        bad = self.submit(self.huge)
        good = self.submit(self.web, "--policy", "least-allocated")
        r = self.run_gedge("sched", "run", "--once", "-o", "json")
        self.assertEqual(r.rc, 0, r)  # re-queued, not failed for good
        self.assertEqual(sorted((x["id"], x["state"], x["attempts"]) for x in r.json),
                         sorted([(bad, "enqueued", 1), (good, "completed", 0)]), "each request once per run")
        r = self.run_gedge("sched", "run", "--once", "-o", "json")
        self.assertEqual((r.rc, r.json), (0, []), "the re-queued request waits out its backoff")
        self.assertEqual(self.ls()[bad]["attempts"], 1)
        r = self.run_gedge("sched", "run", "--once", "--retry-now", "-o", "json")
        self.assertEqual([(x["id"], x["attempts"]) for x in r.json], [(bad, 2)])

    def test_submit_validates_like_place_and_nothing_is_queued(self):
        for args, rc, what in [(["--policy", "select-clusters", "--clusters", "[nowhere]"], 4, "nowhere"),
                               (["--policy", "node", "--node", "edge-a/ghost"], 4, "edge-a/ghost"),
                               (["--policy", "low-latency", "--from", "ghost-cam"], 4, "ghost-cam"),
                               (["--policy", "low-latency"], 2, "source"),
                               (["--policy", "least-allocated", "--weights", "cpu=x"], 2, "weights")]:
            r = self.run_gedge("sched", "submit", self.web, "--state", self.state, *args, "-o", "json")
            self.assertEqual(r.rc, rc, (args, r))
            self.assertIn(what, r.err_json["message"], args)
        self.assertEqual(self.ls(), {}, "nothing queued")
        r = self.run_gedge("sched", "submit", self.web, *["--policy", "low-latency", "--from", "ghost"], "-o", "json")
        self.assertEqual(r.rc, 4, r)  # the inventory's world too (no --state)
        self.assertEqual(self.ls(), {})

    def test_permanent_error_fails_at_once_and_weights_reach_the_queue(self):
        with open(self.state) as f:
            world = json.load(f)
        state2 = os.path.join(self.tmp, "shrinking.json")
        with open(state2, "w") as f:
            json.dump(world, f)
        first = world["clusters"][0]["name"]
        r = self.run_gedge("sched", "submit", self.web, "--state", state2, "--policy", "select-clusters",
                           "--clusters", f"[{first}]", "--rank", "least-allocated", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        gone = r.json["id"]
        # the world loses the cluster the request names: a permanent error, failed at the first try
        world2 = dict(world, clusters=world["clusters"][1:])
        for table in ("latency_ms", "bandwidth_mbps"):
            world2[table] = dict(world[table], links=[l for l in world[table]["links"]
                                                      if first not in (l["a"].split("/")[0], l["b"].split("/")[0])])
        with open(state2, "w") as f:
            json.dump(world2, f)
        r = self.run_gedge("sched", "run", "--once", "-o", "json")
        self.assertEqual(r.rc, 3, r)
        self.assertEqual([(x["id"], x["state"], x["attempts"]) for x in r.json], [(gone, "failed", 1)])
        self.assertIn(first, r.json[0]["error"])
        self.assertIn("1 of 1 requests", r.err_json["message"])
        # --weights are kept with the request and used by the run (most-allocated with gpu weight 0
        # and a huge cpu weight prefers the busiest cpu node, as place does with the same flags)
        args = ["--policy", "most-allocated", "--weights", "cpu=1000,memory=0,gpu=0"]
        placed = self.gedge_json("sched", "place", self.web, "--state", self.state, *args)
        qid = self.submit(self.web, *args)
        row = [x for x in self.gedge_json("sched", "run", "--once") if x["id"] == qid][0]
        self.assertEqual(row["placements"]["placements"], placed["placements"])
        default = self.gedge_json("sched", "place", self.web, "--state", self.state, "--policy", "most-allocated")
        self.assertNotEqual(default["placements"], placed["placements"], "the weights must change the result")

    @staticmethod
    def runner_of(pid):
        """The lease identity gedge records for a runner process (sched::runner_identity)."""
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        start = stat[stat.rfind(")") + 2:].split()[19]  # field 22
        return {"host": socket.gethostname(), "boot_id": boot, "pid": pid, "start": start}

    def lease(self, qid, state, runner, claimed_by):
        db = sqlite3.connect(os.path.join(self.home, "gedge.db"))
        with db:
            db.execute("UPDATE sched_requests SET state = ?, claimed_by = ?, claimed_at = updated_at, runner = ? "
                       "WHERE id = ?", (state, claimed_by, json.dumps(runner), qid))
        db.close()

    def test_killed_runner_claims_are_requeued_and_nothing_runs_twice(self):
        """Issue 16 item 7: a runner killed while holding requests left them dispatched/scheduling
        for ever. Each claim now records a lease (claimed_at, host, boot id, PID, start time); the
        next `sched run` re-queues a dead runner's claims and leaves a live runner's alone."""
        ids = [self.submit(self.web, "--policy", "least-allocated") for _ in range(30)]
        # a real runner, SIGKILLed mid-queue
        p = subprocess.Popen([GEDGE, "sched", "run", "--once", "-o", "json"], env=self.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        p.kill()
        p.wait()
        # runners held by processes we control: one killed, one alive, one whose PID was reused
        dead = subprocess.Popen(["sleep", "600"])
        dead_runner = self.runner_of(dead.pid)
        dead.kill()
        dead.wait()
        alive = subprocess.Popen(["sleep", "600"])
        self.addCleanup(alive.wait)
        self.addCleanup(alive.kill)
        reused = dict(self.runner_of(alive.pid), start="1")  # same PID, another start time
        extra = [self.submit(self.web, "--policy", "least-allocated") for _ in range(4)]
        self.lease(extra[0], "scheduling", dead_runner, f"pid-{dead_runner['pid']}")
        self.lease(extra[1], "dispatched", dead_runner, f"pid-{dead_runner['pid']}")
        self.lease(extra[2], "scheduling", self.runner_of(alive.pid), "live")
        self.lease(extra[3], "scheduling", reused, "reused")
        before = self.ls()
        done_before = {i for i, r in before.items() if r["state"] == "completed"}
        self.assertEqual(before[extra[2]]["runner"]["pid"], alive.pid)

        r = self.run_gedge("sched", "run", "--once", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        ran = [row["id"] for row in r.json]
        self.assertEqual(len(ran), len(set(ran)))
        self.assertFalse(done_before & set(ran), "a completed request ran again")
        rows = self.ls()
        for i in ids + [extra[0], extra[1], extra[3]]:
            self.assertEqual(rows[i]["state"], "completed", (i, rows[i]))
        self.assertIn(extra[0], ran)
        self.assertIn(extra[1], ran)
        self.assertIn(extra[3], ran)
        self.assertEqual(rows[extra[2]]["state"], "scheduling", "a live runner's claim was taken")
        self.assertNotIn(extra[2], ran)
        self.assertNotEqual(rows[extra[0]]["runner"]["pid"], dead_runner["pid"])  # the runner that completed it

        alive.kill()
        alive.wait()
        r = self.run_gedge("sched", "run", "--once", "-o", "json")
        self.assertEqual([row["id"] for row in r.json], [extra[2]])
        self.assertEqual(self.ls()[extra[2]]["state"], "completed")

    def test_two_concurrent_runners_never_share_a_request(self):
        ids = [self.submit(self.web, "--policy", "least-allocated") for _ in range(24)]
        procs = [subprocess.Popen([GEDGE, "sched", "run", "--once", "-o", "json"], env=self.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, err)
        got = [[row["id"] for row in json.loads(out)] for out, _ in outs]
        self.assertEqual(sorted(got[0] + got[1]), sorted(ids), "every request processed exactly once")
        self.assertFalse(set(got[0]) & set(got[1]))
        rows = self.ls()
        self.assertEqual({rows[i]["state"] for i in ids}, {"completed"})
        self.assertTrue(all(rows[i]["attempts"] == 0 for i in ids))
