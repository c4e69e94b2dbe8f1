#!/usr/bin/env python3
"""@cert-authority in --known-hosts files against real sshd processes on 127.0.0.1 (no lab
needed; root and /usr/sbin/sshd are): a host whose host certificate the listed CA signed for the
name it is reached by is accepted with no per-host line (gedge gets past the host key to
authentication), and refused with exit 6, nothing stored, when it has no certificate, when the
certificate lists another name, when the CA is another, or when the CA is @revoked. The lab test
(test_ssh_field) does the same against lab hosts and logs in."""

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


class HostCertTest(GedgeTest):
    def setUp(self):
        super().setUp()
        if os.geteuid() != 0 or not os.access(SSHD, os.X_OK):
            self.skipTest("needs root and /usr/sbin/sshd")
        self.d = os.path.join(self.tmp, "sshd")
        os.makedirs(self.d, mode=0o700)
        os.makedirs("/run/sshd", exist_ok=True)
        self.keygen("-t", "ed25519", "-N", "", "-C", "test-ca", "-f", self.p("ca"))
        self.keygen("-t", "ed25519", "-N", "", "-C", "other-ca", "-f", self.p("other_ca"))

    def p(self, name):
        return os.path.join(self.d, name)

    def keygen(self, *args):
        r = run_cmd(["ssh-keygen", "-q", *args])
        self.assertEqual(r.rc, 0, r)

    def pub(self, name):
        with open(self.p(name) + ".pub") as f:
            return " ".join(f.read().split()[:2])

    def sshd(self, name, principals=None):
        """An sshd on 127.0.0.1:PORT with its own ed25519 host key, certified by the test CA
        for `principals` (none: no certificate). Returns (port, host key line)."""
        key = self.p(name + "_host")
        self.keygen("-t", "ed25519", "-N", "", "-f", key)
        cert = ""
        if principals:
            self.keygen("-s", self.p("ca"), "-h", "-I", name, "-n", principals, "-V", "-5m:+1h", key + ".pub")
            cert = f"HostCertificate {key}-cert.pub\n"
        port = free_port()
        conf = self.p(name + ".conf")
        with open(conf, "w") as f:
            f.write(f"ListenAddress 127.0.0.1:{port}\nHostKey {key}\n{cert}PidFile {self.p(name + '.pid')}\n"
                    "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                    f"AuthorizedKeysFile {self.p('none')}\n")
        log = open(self.p(name + ".log"), "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", conf], stdout=subprocess.DEVNULL, stderr=log)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.terminate)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        return port, self.pub(name + "_host")

    def known_hosts(self, text):
        path = os.path.join(self.tmp, "known_hosts_ca")
        with open(path, "w") as f:
            f.write(text)
        return path

    def add(self, name, host, kh, *extra):
        return self.run_gedge("device", "add", name, "--host", host, "--known-hosts", kh, "--timeout", "10",
                              *extra, "-o", "json")

    def test_certified_host_accepted_others_refused(self):
        good_port, good_key = self.sshd("good", "127.0.0.1")
        plain_port, _ = self.sshd("plain")
        ca = self.pub("ca")
        kh = self.known_hosts(f"# fleet CA\n@cert-authority [127.0.0.1]:*,[localhost]:* {ca}\n")

        # No certificate, under the CA's pattern: refused before any login, nothing stored.
        r = self.add("plain", f"nobody@127.0.0.1:{plain_port}", kh)
        self.assertEqual(r.rc, 6, r)
        self.assertEqual(r.err_json["error"], "host_key_mismatch")
        self.assertIn(f"not certified by the @cert-authority of {kh}:2", r.err_json["message"])
        self.assertIn("no certificate", r.err_json["message"])
        # Certified, but for 127.0.0.1 only: reached as localhost, OpenSSH's principal check refuses.
        r = self.add("byname", f"nobody@localhost:{good_port}", kh)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("not a listed principal", r.err_json["message"])
        # Signed by a CA the file does not list for the host.
        other = self.known_hosts(f"@cert-authority [127.0.0.1]:* {self.pub('other_ca')}\n")
        r = self.add("good", f"nobody@127.0.0.1:{good_port}", other)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("not by a CA listed for the host", r.err_json["message"])
        # The CA revoked.
        revoked = self.known_hosts(f"@cert-authority [127.0.0.1]:* {ca}\n@revoked * {ca}\n")
        r = self.add("good", f"nobody@127.0.0.1:{good_port}", revoked)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("revoked", r.err_json["message"])
        self.assertEqual(self.gedge_json("device", "ls"), [])

        # Certified for the name it is reached by: the host key is accepted with no per-host
        # line and gedge goes on to log in (which this sshd refuses: no key is authorized).
        kh = self.known_hosts(f"@cert-authority [127.0.0.1]:* {ca}\n")
        r = self.add("good", f"nobody@127.0.0.1:{good_port}", kh, "-v")
        self.assertEqual(r.err_json["error"], "auth_failed", r)
        self.assertIn("certified by CA", r.stderr)
        self.assertIn(good_key.split()[0], r.stderr)
        fp = run_cmd(["ssh-keygen", "-lf", self.p("good_host.pub")]).stdout.split()[1]
        self.assertIn(f"host key {fp} certified by CA", r.stderr)
        self.assertIn("matches the pin", r.stderr)  # the login connection checked the pinned key


if __name__ == "__main__":
    unittest.main()
