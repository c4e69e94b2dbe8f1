#!/usr/bin/env python3
"""Inventory benchmark (not a test): gedge's listing and selectors at N devices vs `sqlite3 -json`
on the same table, same run, interleaved, median of RUNS runs, with each command's peak RSS.

    bench/inventory_bench.py [GEDGE_BIN]        env: DEVICES (10000), RUNS (5)

Imports an N-host Ansible INI inventory (the shape of tests/e2e/test_device_import.py: one group,
an address and a `rack` variable kept as a label) with `device import --no-connect` into a
throwaway GEDGE_HOME, then times:
  device ls -o json              vs  sqlite3 -json 'SELECT * FROM devices ORDER BY name'
  device ls --label rack=r7 -o json  vs  the same SELECT with WHERE json_extract(labels,'$.rack')='r7'
  device ls --group fleet -o json    (every device; the group selector's cost)
  device show NAME -o json       vs  sqlite3 -json '... WHERE name = NAME'
Prints a markdown table (merge it into bench/RESULTS.md by hand).
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.dirname(here)
gedge = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GEDGE_BIN", os.path.join(src, "build/cli/gedge"))
n = int(os.environ.get("DEVICES", "10000"))
runs = int(os.environ.get("RUNS", "5"))
if not os.access(gedge, os.X_OK):
    sys.exit(f"gedge binary not found: {gedge}")
sqlite = shutil.which("sqlite3")
if not sqlite:
    sys.exit("sqlite3 (the command) is needed as the anchor: apt-get install sqlite3")


def timed(argv, env):
    """(seconds, peak RSS in MiB, stdout bytes) of one run; fails loudly on a non-zero exit."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            sys.exit(f"failed ({p.returncode}): {' '.join(argv)}\n{err.read().decode(errors='replace')}")
        size = out.tell()
        return dt, ru.ru_maxrss / 1024, size


def load():
    return open("/proc/loadavg").read().split()[0]


work = tempfile.mkdtemp(prefix="gedge-inv-bench-")
try:
    env = dict(os.environ, GEDGE_HOME=os.path.join(work, "home"))
    subprocess.run([gedge, "init", "-q"], env=env, check=True, stdout=subprocess.DEVNULL)
    inv = os.path.join(work, "fleet.ini")
    with open(inv, "w") as f:
        f.write("[fleet]\n")
        for i in range(n):
            f.write(f"cam{i:05d} ansible_host=10.213.{i // 250 % 250}.{i % 250 + 1} rack=r{i % 40}\n")
    t_import, rss_import, _ = timed([gedge, "device", "import", inv, "--no-connect", "-o", "json"], env)
    db = os.path.join(work, "home", "gedge.db")
    mid = f"cam{n // 2:05d}"
    cases = [
        ("device ls -o json", [gedge, "device", "ls", "-o", "json"],
         [sqlite, "-json", db, "SELECT * FROM devices ORDER BY name"]),
        ("device ls --label rack=r7 -o json", [gedge, "device", "ls", "--label", "rack=r7", "-o", "json"],
         [sqlite, "-json", db, "SELECT * FROM devices WHERE json_extract(labels, '$.rack') = 'r7' ORDER BY name"]),
        ("device ls --group fleet -o json", [gedge, "device", "ls", "--group", "fleet", "-o", "json"],
         [sqlite, "-json", db, "SELECT d.* FROM devices d, json_each(d.groups) g WHERE g.value = 'fleet' ORDER BY d.name"]),
        (f"device show {mid} -o json", [gedge, "device", "show", mid, "-o", "json"],
         [sqlite, "-json", db, f"SELECT * FROM devices WHERE name = '{mid}'"]),
    ]
    res = {name: {"g": [], "s": [], "rss": [], "bytes": None} for name, _, _ in cases}
    loads = [load()]
    for _ in range(runs):  # interleaved, so both sides see the same machine load
        for name, g, s in cases:
            tg, rss, size = timed(g, env)
            ts, _, _ = timed(s, env)
            res[name]["g"].append(tg)
            res[name]["s"].append(ts)
            res[name]["rss"].append(rss)
            res[name]["bytes"] = size
        loads.append(load())
    print(f"## gedge inventory benchmark: {n} devices\n")
    print(f"Measured {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, {os.cpu_count()} cores, "
          f"load average (1 min) during the runs: {', '.join(loads)}.\n")
    print(f"Command: `DEVICES={n} RUNS={runs} bench/inventory_bench.py`\n")
    print(f"`device import --no-connect` of {n} hosts: {t_import:.2f} s, peak RSS {rss_import:.0f} MiB\n")
    print(f"| command | gedge median of {runs} (s) | sqlite3 -json median (s) | gedge / sqlite3 | gedge peak RSS (MiB) | output bytes |")
    print("|---|---|---|---|---|---|")
    for name, _, _ in cases:
        r = res[name]
        g, s = statistics.median(r["g"]), statistics.median(r["s"])
        print(f"| `{name}` | {g:.3f} | {s:.3f} | {g / s:.1f}x | {max(r['rss']):.0f} | {r['bytes']} |")
    print("\nRaw seconds:")
    for name, _, _ in cases:
        r = res[name]
        print(f"- {name}: gedge {' '.join(f'{x:.3f}' for x in r['g'])}; sqlite3 {' '.join(f'{x:.3f}' for x in r['s'])}")
finally:
    shutil.rmtree(work, ignore_errors=True)
