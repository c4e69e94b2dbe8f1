#!/usr/bin/env python3
"""ProxyJump with two hops against real sshd processes on 127.0.0.1 (no lab needed; root and
/usr/sbin/sshd are): `ProxyJump j1,j2` pins each hop's key under its own alias, gedge reaches the
device through the nested ssh -W chain (the device's host key is read through both hops and the
login is attempted there), and a changed key on the middle hop is refused with exit 6 naming its
alias. The lab test (test_ssh_field) does the same on separate networks and logs in."""

import os
import socket
import subprocess
import time
import unittest

from gedge_e2e import GedgeTest, run_cmd

SSHD = "/usr/sbin/sshd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JumpChainTest(GedgeTest):
    def setUp(self):
        super().setUp()
        if os.geteuid() != 0 or not os.access(SSHD, os.X_OK):
            self.skipTest("needs root and /usr/sbin/sshd")
        self.d = os.path.join(self.tmp, "sshd")
        os.makedirs(self.d, mode=0o700)
        os.makedirs("/run/sshd", exist_ok=True)
        self.keygen("-t", "ed25519", "-N", "", "-C", "test-user", "-f", self.p("user"))
        with open(self.p("authorized"), "w") as f:
            f.write(self.pub("user") + "\n")

    def p(self, name):
        return os.path.join(self.d, name)

    def keygen(self, *args):
        r = run_cmd(["ssh-keygen", "-q", *args])
        self.assertEqual(r.rc, 0, r)

    def pub(self, name):
        with open(self.p(name) + ".pub") as f:
            return " ".join(f.read().split()[:2])

    def fingerprint(self, name):
        return run_cmd(["ssh-keygen", "-lf", self.p(name) + ".pub"]).stdout.split()[1]

    def sshd(self, name, authorized, port=None):
        """An sshd on 127.0.0.1:PORT with host key NAME_host (made once). Returns its port."""
        key = self.p(name + "_host")
        if not os.path.exists(key):
            self.keygen("-t", "ed25519", "-N", "", "-f", key)
        port = port or free_port()
        conf = self.p(name + ".conf")
        with open(conf, "w") as f:
            f.write(f"ListenAddress 127.0.0.1:{port}\nHostKey {key}\nPidFile {self.p(name + '.pid')}\n"
                    "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                    f"StrictModes no\nAuthorizedKeysFile {self.p(authorized)}\n")
        log = open(self.p(name + ".log"), "a")
        self.addCleanup(log.close)
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", conf], stdout=subprocess.DEVNULL, stderr=log)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.terminate)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        return port, proc

    def test_two_hops_pinned_each_and_a_changed_middle_key_refused(self):
        # j1 and j2 let the test key forward (ssh -W); the device authorizes no key, so every
        # add and exec ends at the device's login, after both hops and the device's host key.
        j1, _ = self.sshd("j1", "authorized")
        j2, j2proc = self.sshd("j2", "authorized")
        dev, _ = self.sshd("dev", "none")
        user = run_cmd(["id", "-un"]).stdout.strip()
        cfg = os.path.join(self.tmp, "ssh_config")
        with open(cfg, "w") as f:
            f.write(f"Host j1\n  HostName 127.0.0.1\n  Port {j1}\n  User {user}\n"
                    f"Host j2\n  HostName 127.0.0.1\n  Port {j2}\n  User {user}\n"
                    f"Host dev\n  HostName 127.0.0.1\n  Port {dev}\n  User nobody\n  ProxyJump j1,j2\n")
        base = ["--ssh-config", cfg, "device", "add", "dev", "--host", "dev", "--identity", self.p("user"),
                "--timeout", "10", "-o", "json"]
        # Unknown hop keys: the first hop is refused (6) before anything else.
        r = self.run_gedge(*base, "--host-key", self.fingerprint("dev_host"))
        self.assertEqual(r.rc, 6, r)
        self.assertIn(f"jump host 127.0.0.1:{j1}", r.err_json["message"])
        self.assertIn(self.fingerprint("j1_host"), r.err_json["message"])

        # Accepted on first use, hop by hop: the device's key is read through both hops and
        # gedge gets as far as the device's login (refused: no key is authorized there).
        r = self.run_gedge(*base, "--accept-new", "-vv")
        self.assertEqual(r.err_json["error"], "auth_failed", r)
        self.assertIn(f"through jump host {user}@127.0.0.1:{j1}", r.stderr)
        self.assertIn(f"then through jump host {user}@127.0.0.1:{j2}", r.stderr)
        self.assertIn("pinned as dev/jump-1", r.stderr)
        self.assertIn("pinned as dev/jump)", r.stderr)
        self.assertIn(self.fingerprint("dev_host"), r.stderr)  # the device's own key, through two hops

        # The operator's known_hosts lists every hop: each is pinned from it, probed through
        # the hops before it.
        kh = os.path.join(self.tmp, "known_hosts")
        with open(kh, "w") as f:
            f.write(f"[127.0.0.1]:{j1} {self.pub('j1_host')}\n[127.0.0.1]:{j2} {self.pub('j2_host')}\n"
                    f"[127.0.0.1]:{dev} {self.pub('dev_host')}\n")
        r = self.run_gedge(*base, "--known-hosts", kh, "-v")
        self.assertEqual(r.err_json["error"], "auth_failed", r)
        self.assertIn(f"host key {self.fingerprint('j2_host')} found in {kh}:2", r.stderr)

        # The middle hop gets a new key: refused (6) naming it, nothing stored.
        j2proc.terminate()
        j2proc.wait()
        os.remove(self.p("j2_host"))
        self.sshd("j2", "authorized", port=j2)
        r = self.run_gedge(*base, "--known-hosts", kh)
        self.assertEqual(r.rc, 6, r)
        self.assertIn(f"jump host 127.0.0.1:{j2}", r.err_json["message"])
        self.assertIn(f"{kh}:2 lists a different", r.err_json["message"])
        self.assertEqual(self.gedge_json("device", "ls"), [])


if __name__ == "__main__":
    unittest.main()
