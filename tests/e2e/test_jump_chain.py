#!/usr/bin/env python3
"""ProxyJump with two hops against real sshd processes on 127.0.0.1 (no lab needed; root and
/usr/sbin/sshd are): `ProxyJump j1,j2` pins each hop's key under its own alias, gedge reaches the
device through the nested ssh -W chain (the device's host key is read through both hops and the
login is attempted there), and a changed key on the middle hop is refused with exit 6 naming its
alias. The lab test (test_ssh_field) does the same on separate networks and logs in."""

import os
import unittest

from gedge_e2e import GedgeTest, LocalSshdMixin, run_cmd


class JumpChainTest(LocalSshdMixin, GedgeTest):
    def setUp(self):
        super().setUp()
        self.setup_sshd_dir()
        self.keygen("-t", "ed25519", "-N", "", "-C", "test-user", "-f", self.p("user"))
        with open(self.p("authorized"), "w") as f:
            f.write(self.pub("user") + "\n")

    def sshd(self, name, authorized, port=None):
        return self.start_sshd(name, authorized, port)

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
