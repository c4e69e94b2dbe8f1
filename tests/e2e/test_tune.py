"""gedge tune on this machine and on stored topologies: show, plan (expected answers from
hwloc-calc, not from gedge), pin a command / a running multi-threaded process with the kernel's
view read back from /proc, bench, and bad input."""

import json
import os
import subprocess
import sys
import time
import unittest

from gedge_e2e import GedgeTest, SOURCE_DIR

TOPOS = os.path.join(SOURCE_DIR, "tests", "data", "topologies")
NORMALIO = os.path.join(TOPOS, "32em64t-2n8c2t-pci-normalio.xml")
FOURNODE = os.path.join(TOPOS, "96em64t-4n4d3ca2co-pci.xml")
SYN = "pack:2 numa:2 core:8 pu:2"


def calc(*args):
    return subprocess.run(["hwloc-calc", *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def expand(lst):
    """'2-5,8' -> {2,3,4,5,8}"""
    out = set()
    for item in filter(None, lst.split(",")):
        lo, _, hi = item.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def proc_cpus(pid, tid=None):
    path = f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status"
    with open(path) as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return expand(line.split(":", 1)[1].strip())
    return None


class TuneShow(GedgeTest):
    def test_local_machine(self):
        j = self.gedge_json("tune", "show")
        self.assertTrue(j["this_system"])
        self.assertEqual(j["counts"]["pus"], int(calc("--number-of", "pu", "all")))
        self.assertEqual(j["counts"]["cores"], int(calc("--number-of", "core", "all")))
        self.assertEqual(len(j["pus"]), j["counts"]["pus"])
        self.assertEqual(expand(j["allowed_cpuset"]), os.sched_getaffinity(0))
        for pu in j["pus"]:
            self.assertIn("logical", pu)
            self.assertIn("os", pu)
        for n in j["numa_nodes"]:
            self.assertGreater(n["memory_bytes"], 0)

    def test_xml_with_io_devices(self):
        j = self.gedge_json("tune", "show", "--topology", NORMALIO)
        self.assertFalse(j["this_system"])
        cuda = [d for d in j["io_devices"] if d["name"] == "cuda0"]
        self.assertEqual(len(cuda), 1)
        self.assertEqual(expand(cuda[0]["local_cpuset"]),
                         expand(calc("--input", NORMALIO, "os=cuda0", "-I", "pu", "--po")))
        kinds = {d["kind"] for d in j["io_devices"]}
        self.assertTrue({"nic", "block", "coproc"} <= kinds, kinds)

    def test_synthetic(self):
        j = self.gedge_json("tune", "show", "--topology", SYN)
        self.assertEqual(j["counts"]["numa_nodes"], int(calc("--input", SYN, "--number-of", "numa", "all")))
        self.assertEqual(j["counts"]["pus"], int(calc("--input", SYN, "--number-of", "pu", "all")))


class TunePlan(GedgeTest):
    def test_near_gpu(self):
        j = self.gedge_json("tune", "plan", "--cores", "4", "--near", "cuda0", "--no-smt",
                            "--topology", NORMALIO)
        cores = calc("--input", NORMALIO, "os=cuda0", "-I", "core").split(",")[:4]
        want = calc("--input", NORMALIO, "--no-smt", *[f"core:{c}" for c in cores], "-I", "pu", "--po")
        self.assertEqual(expand(j["cpuset"]), expand(want))
        self.assertEqual(expand(j["memory_nodes"]),
                         expand(calc("--input", NORMALIO, "os=cuda0", "-I", "numa", "--po")))
        self.assertTrue(any("near" in w for w in j["why"]))

    def test_scatter_synthetic_and_backends(self):
        j = self.gedge_json("tune", "plan", "--cores", "4", "--policy", "scatter", "--topology", FOURNODE)
        firsts = [calc("--input", FOURNODE, f"numa:{k}", "-I", "core").split(",")[0] for k in range(4)]
        want = calc("--input", FOURNODE, *[f"core:{c}" for c in firsts], "-I", "pu", "--po")
        self.assertEqual(expand(j["cpuset"]), expand(want))
        self.assertEqual(len(expand(j["memory_nodes"])), 4)
        j = self.gedge_json("tune", "plan", "--cores", "2", "--numa", "3", "--topology", SYN)
        r = self.gedge("tune", "plan", "--cores", "2", "--numa", "3", "--topology", SYN, "-o", "podman")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.stdout.strip(), f"--cpuset-cpus={j['cpuset']} --cpuset-mems=3")
        r = self.gedge("tune", "plan", "--cores", "2", "--numa", "3", "--topology", SYN, "-o", "systemd")
        self.assertIn(f"AllowedCPUs={j['cpuset']}\n", r.stdout)
        self.assertIn("AllowedMemoryNodes=3\n", r.stdout)
        r = self.gedge("tune", "plan", "--cores", "2", "--topology", SYN, "-o", "k8s")
        self.assertIn('cpu: "4"', r.stdout)  # 2 cores x 2 PUs
        self.assertIn("cpuManagerPolicy: static", r.stdout)

    def test_bad_input(self):
        r = self.gedge("tune", "plan", "--cores", "4", "--near", "gpu9", "--topology", NORMALIO, "-o", "json")
        self.assertEqual(r.rc, 4, r)
        self.assertIn("cuda0", r.err_json["hint"])
        n = int(calc("--number-of", "core", "all"))
        r = self.gedge("tune", "plan", "--cores", str(n + 1), "-o", "json")
        self.assertEqual(r.rc, 1, r)
        self.assertIn(f"{n} of {n}", r.err_json["message"])
        r = self.gedge("tune", "plan", "--cpuset", "1-", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertEqual(r.err_json["error"], "usage")
        r = self.gedge("tune", "plan", "--cpuset", "0,4096", "-o", "json")
        self.assertEqual(r.rc, 2, r)

    def test_hostile_xml(self):
        with open(os.path.join(TOPOS, "16em64t-4s2c2t.xml")) as f:
            text = f.read()
        cases = {
            # hwloc 2.9's own lstopo segfaults on this one-letter edit
            "crash.xml": text.replace('complete_cpuset="0x00000001"', 'coplete_cpuset="0x00000001"', 1),
            "junk.xml": "\x00\xff not xml at all",
            "trunc.xml": text[: len(text) // 3],
            "entity.xml": '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaa">]><topology/>',
        }
        for name, body in cases.items():
            path = os.path.join(self.tmp, name)
            with open(path, "w") as f:
                f.write(body)
            r = self.gedge("tune", "show", "--topology", path, "-o", "json")
            self.assertEqual(r.rc, 2, f"{name}: {r}")
            self.assertEqual(r.err_json["error"], "usage", name)
        r = self.gedge("tune", "show", "--topology", "core:100000 pu:100000", "-o", "json")
        self.assertEqual(r.rc, 2, r)


class TunePin(GedgeTest):
    def setUp(self):
        super().setUp()
        self.allowed = sorted(os.sched_getaffinity(0))
        if len(self.allowed) < 2:
            self.skipTest("needs at least 2 allowed CPUs")
        self.last = self.allowed[-1]

    def test_pin_command(self):
        r = self.gedge("tune", "pin", "--cpuset", str(self.last), "-o", "json", "--",
                       sys.executable, "-c",
                       "import os; print(sorted(os.sched_getaffinity(0)));"
                       "print(open('/proc/self/status').read())")
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.stdout.startswith(f"[{self.last}]"), r.stdout)
        self.assertIn(f"Cpus_allowed_list:\t{self.last}\n", r.stdout)
        rec = json.loads(r.stderr.strip().splitlines()[0])
        self.assertEqual(rec["applied"]["cpus_allowed_list"], str(self.last))
        self.assertEqual(rec["cpuset"], str(self.last))

    def test_pin_command_membind(self):
        r = self.gedge("tune", "pin", "--cores", "1", "--membind", "-o", "json", "--",
                       "grep", "-E", "Cpus_allowed_list|Mems_allowed_list", "/proc/self/status")
        self.assertEqual(r.rc, 0, r)
        rec = json.loads(r.stderr.strip().splitlines()[0])
        self.assertIn(f"Cpus_allowed_list:\t{rec['cpuset']}", r.stdout)
        self.assertEqual(rec["applied"]["membind_nodes"], rec["memory_nodes"])

    def test_pin_running_threads(self):
        code = ("import threading, time\n"
                "ev = threading.Event()\n"
                "ts = [threading.Thread(target=ev.wait) for _ in range(4)]\n"
                "[t.start() for t in ts]\n"
                "print('ready', flush=True)\n"
                "time.sleep(60)\n")
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        self.addCleanup(p.wait)
        self.addCleanup(p.kill)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        j = self.gedge_json("tune", "pin", "--cpuset", str(self.last), "--pid", str(p.pid))
        tids = os.listdir(f"/proc/{p.pid}/task")
        self.assertEqual(len(tids), 5)
        for tid in tids:
            self.assertEqual(proc_cpus(p.pid, tid), {self.last}, tid)
        self.assertEqual(len(j["applied"]["threads"]), 5)
        # move it elsewhere through the planner: one core, excluding the current one
        j = self.gedge_json("tune", "pin", "--cores", "1", "--exclude", str(self.last), "--pid", str(p.pid))
        for tid in os.listdir(f"/proc/{p.pid}/task"):
            self.assertEqual(proc_cpus(p.pid, tid), expand(j["cpuset"]))
        self.assertNotIn(self.last, expand(j["cpuset"]))

    def test_pid_that_exits(self):
        p = subprocess.Popen([sys.executable, "-c",
                              "import threading,time\n"
                              "for i in range(40): threading.Thread(target=time.sleep, args=(0.01,)).start()\n"
                              "time.sleep(0.3)\n"])
        pid = p.pid
        seen = set()
        deadline = time.time() + 10
        while p.poll() is None and time.time() < deadline:
            r = self.gedge("tune", "pin", "--cpuset", str(self.last), "--pid", str(pid), "-o", "json")
            self.assertIn(r.rc, (0, 4), r)
            seen.add(r.rc)
        p.wait()
        r = self.gedge("tune", "pin", "--cpuset", str(self.last), "--pid", str(pid), "-o", "json")
        self.assertEqual(r.rc, 4, r)
        self.assertEqual(r.err_json["error"], "not_found")

    def test_pin_bad_targets(self):
        r = self.gedge("tune", "pin", "--cpuset", "0", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        r = self.gedge("tune", "pin", "--cpuset", "0-1-2", "--pid", str(os.getpid()), "-o", "json")
        self.assertEqual(r.rc, 2, r)
        r = self.gedge("tune", "pin", "--cpuset", "0", "--", "/nonexistent/binary")
        self.assertEqual(r.rc, 4, r)


class TuneBench(GedgeTest):
    def test_bench_ab(self):
        r = self.gedge("tune", "bench", "--runs", "3", "--warmup", "0", "--cores", "1", "-o", "json",
                       "--", "sh", "-c", "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done")
        self.assertEqual(r.rc, 0, r)
        j = r.json
        self.assertEqual(len(j["unpinned"]["samples_s"]), 3)
        self.assertEqual(len(j["pinned"]["samples_s"]), 3)
        self.assertEqual(expand(j["baseline_cpuset"]), os.sched_getaffinity(0))
        self.assertGreater(j["speedup"], 0)
        self.assertEqual(len(j["speedup_ci95"]), 2)
        self.assertIn("cpuset", j["plan"])
        r = self.gedge("tune", "bench", "--runs", "2", "--cores", "1", "-o", "json", "--", "false")
        self.assertEqual(r.rc, 1, r)


if __name__ == "__main__":
    unittest.main()
