"""Input files are bounded (issue 16 items 8 and 13): /dev/zero grew memory by ~100 MB/s, a FIFO
hung, a 100 MB state file was read whole. Every input file must be a regular file of bounded size;
`init --home` refuses to take over a non-empty directory that is not a gedge home; a 570-byte
topology XML cost 1 GB in hwloc before it was refused."""

import json
import os
import stat
import subprocess
import sys
import time

from gedge_e2e import GEDGE, GedgeTest, SOURCE_DIR

# Runs argv and prints its exit status, the largest resident set of it and its children (KiB),
# and its stderr's last line: the probe child hwloc ran in counts too.
MEASURE = """
import resource, subprocess, sys, json
p = subprocess.run(sys.argv[1:], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
print(json.dumps([p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  (p.stderr.strip().splitlines() or [""])[-1]]))
"""


class InputFilesTest(GedgeTest):
    def test_non_regular_and_oversized_input_files_are_refused(self):
        fifo = os.path.join(self.tmp, "fifo")
        os.mkfifo(fifo)
        big = os.path.join(self.tmp, "big.json")
        with open(big, "w") as f:
            f.write(" " * (17 << 20))
        web = os.path.join(SOURCE_DIR, "examples", "web.yaml")
        cases = [
            ("sched place --state /dev/zero", ["sched", "place", web, "--state", "/dev/zero"], "not a regular file"),
            ("sched place --state FIFO", ["sched", "place", web, "--state", fifo], "not a regular file"),
            ("sched place --state 17 MB", ["sched", "place", web, "--state", big], "bytes"),
            ("sched submit --state /dev/zero", ["sched", "submit", web, "--state", "/dev/zero"], "not a regular file"),
            ("device add --password-file /dev/zero",
             ["device", "add", "x", "--host", "127.0.0.1", "--port", "1", "--password-file", "/dev/zero"],
             "not a regular file"),
            ("device add --password-file FIFO",
             ["device", "add", "x", "--host", "127.0.0.1", "--port", "1", "--password-file", fifo],
             "not a regular file"),
        ]
        for name, argv, says in cases:
            with self.subTest(name):
                r = self.run_gedge(*argv, "-o", "json", timeout=20)
                self.assertEqual(r.rc, 2, r)
                self.assertIn(says, r.err_json["message"])

    def test_fifo_and_device_files_fail_fast_in_every_reader(self):
        fifo_dir = os.path.join(self.tmp, "fifos")
        os.makedirs(fifo_dir)
        fifo = os.path.join(fifo_dir, "topology.xml")  # .xml: --topology takes it as a file
        os.mkfifo(fifo)
        web = os.path.join(SOURCE_DIR, "examples", "web.yaml")
        cases = [
            ("--topology FIFO", ["tune", "show", "--topology", fifo], {}),
            ("--kubeconfig FIFO", ["cluster", "register", "k", "--kubeconfig", fifo], {}),
            ("--kubeconfig /dev/zero", ["cluster", "register", "k", "--kubeconfig", "/dev/zero"], {}),
            ("service file FIFO", ["sched", "place", fifo, "--state", web], {}),
            ("inventory FIFO", ["device", "import", fifo, "--no-connect"], {}),
            ("--placement FIFO", ["svc", "deploy", web, "--cluster", "c", "--placement", fifo], {}),
            ("--ssh-config FIFO (ssh -G waited for a writer)",
             ["--ssh-config", fifo, "device", "add", "x", "--host", "cam", "--accept-new"], {}),
            ("GEDGE_CONFIG FIFO (read at every start)", ["device", "ls"], {"GEDGE_CONFIG": fifo}),
            ("GEDGE_CONFIG /dev/zero", ["device", "ls"], {"GEDGE_CONFIG": "/dev/zero"}),
        ]
        for name, argv, env in cases:
            with self.subTest(name):
                t0 = time.monotonic()
                r = self.run_gedge(*argv, "-o", "json", timeout=20, env=env)
                self.assertLess(time.monotonic() - t0, 10, r)
                self.assertEqual(r.rc, 2, r)
                self.assertIn("is not a regular file", r.err_json["message"])
        # GEDGE_CONFIG=/dev/null stays the way to run without a config file.
        self.assertEqual(self.run_gedge("device", "ls", "-o", "json", env={"GEDGE_CONFIG": "/dev/null"}).rc, 0)

    def test_number_beyond_a_double_is_a_usage_error(self):
        # AFL++ (tests/fuzz/afl.sh): it aborted the harness and was exit 1 "internal" here.
        state = os.path.join(self.tmp, "big.json")
        with open(state, "w") as f:
            f.write("5555555E55555555555555555")
        r = self.run_gedge("sched", "place", os.path.join(SOURCE_DIR, "examples", "web.yaml"), "--state", state,
                           "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("number overflow", r.err_json["message"])

    def test_password_stdin_reads_a_bounded_line(self):
        # /dev/zero on stdin has no newline: the read stops after 4096 bytes (it grew without end).
        with open("/dev/zero", "rb") as zero:
            t0 = time.monotonic()
            p = subprocess.run([GEDGE, "device", "add", "x", "--host", "127.0.0.1", "--port", "1",
                                "--password-stdin", "-o", "json"], stdin=zero, capture_output=True,
                               text=True, env=self.env, timeout=20)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(p.returncode, 2, p)
        self.assertIn("longer than 4096 bytes", p.stderr)

    def test_hostile_topology_xml_is_refused_before_hwloc(self):
        # A PU at os_index 4000000000: hwloc sized its bitmaps by it (1 GB, over a second; 9 s on
        # a busy machine) before gedge's index check refused the loaded topology.
        xml = os.path.join(self.tmp, "huge-index.xml")
        with open(xml, "w") as f:
            f.write('<?xml version="1.0"?>\n<topology version="2.0">\n'
                    '<object type="Machine" os_index="0" cpuset="0x3" complete_cpuset="0x3" allowed_cpuset="0x3" '
                    'nodeset="0x1" complete_nodeset="0x1" allowed_nodeset="0x1" gp_index="1">\n'
                    '<object type="NUMANode" os_index="0" cpuset="0x3" complete_cpuset="0x3" nodeset="0x1" '
                    'complete_nodeset="0x1" gp_index="2"/>\n'
                    '<object type="PU" os_index="0" cpuset="0x1" complete_cpuset="0x1" nodeset="0x1" '
                    'complete_nodeset="0x1" gp_index="3"/>\n'
                    '<object type="PU" os_index="4000000000" cpuset="0x2" complete_cpuset="0x2" gp_index="10"/>\n'
                    '</object>\n</topology>\n')
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-c", MEASURE, GEDGE, "tune", "show", "--topology", xml, "-o", "json"],
                           capture_output=True, text=True, env=self.env, timeout=90)
        took = time.monotonic() - t0
        rc, maxrss_kib, last = json.loads(p.stdout)
        self.assertEqual(rc, 2, p)
        err = json.loads(last)
        self.assertIn(f"{xml}:6:", err["message"])
        self.assertIn('os_index="4000000000" is out of range', err["message"])
        self.assertLess(maxrss_kib, 300 * 1024, f"hwloc saw it: {maxrss_kib} KiB")
        self.assertLess(took, 5)

    def test_init_home_refuses_a_non_empty_foreign_directory(self):
        d = os.path.join(self.tmp, "projects")
        os.makedirs(d)
        with open(os.path.join(d, "notes.txt"), "w") as f:
            f.write("mine\n")
        os.chmod(d, 0o775)
        r = self.run_gedge("--home", d, "init", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("not empty", r.err_json["message"])
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o775, "the directory's mode was changed")
        self.assertFalse(os.path.exists(os.path.join(d, "gedge.db")))
        # an empty directory, and then the same gedge home again, are fine
        e = os.path.join(self.tmp, "empty")
        os.makedirs(e)
        self.assertEqual(self.run_gedge("--home", e, "init", "-o", "json").rc, 0)
        self.assertEqual(self.run_gedge("--home", e, "init", "-o", "json").rc, 0)
        self.assertEqual(stat.S_IMODE(os.stat(e).st_mode), 0o700)
