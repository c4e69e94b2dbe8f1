"""Input files are bounded (issue 16 items 8 and 13): /dev/zero grew memory by ~100 MB/s, a FIFO
hung, a 100 MB state file was read whole. Every input file must be a regular file of bounded size;
`init --home` refuses to take over a non-empty directory that is not a gedge home."""

import os
import stat

from gedge_e2e import GedgeTest, SOURCE_DIR


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
