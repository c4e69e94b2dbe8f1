#!/usr/bin/env python3
"""@cert-authority in --known-hosts files against real sshd processes on 127.0.0.1 (no lab
needed; root and /usr/sbin/sshd are): a host whose host certificate the listed CA signed for the
name it is reached by is accepted with no per-host line (gedge gets past the host key to
authentication), and refused with exit 6, nothing stored, when it has no certificate, when the
certificate lists another name, when the CA is another, when the CA is @revoked, or when the
certificate expired or is not valid yet. A jump host is trusted through @cert-authority the same
way (an uncertified jump under the CA's pattern is exit 6). The lab test (test_ssh_field) does
the same against lab hosts and logs in."""

import os
import unittest

from gedge_e2e import GedgeTest, LocalSshdMixin, run_cmd


class HostCertTest(LocalSshdMixin, GedgeTest):
    def setUp(self):
        super().setUp()
        self.setup_sshd_dir()
        self.keygen("-t", "ed25519", "-N", "", "-C", "test-ca", "-f", self.p("ca"))
        self.keygen("-t", "ed25519", "-N", "", "-C", "other-ca", "-f", self.p("other_ca"))

    def sshd(self, name, principals=None, validity="-5m:+1h", authorized="none"):
        """An sshd with its own ed25519 host key, certified by the test CA for `principals`
        (none: no certificate) over `validity`; `authorized` names the AuthorizedKeysFile (in the
        test's directory). Returns (port, host key line)."""
        key = self.p(name + "_host")
        self.keygen("-t", "ed25519", "-N", "", "-f", key)
        cert = ""
        if principals:
            self.keygen("-s", self.p("ca"), "-h", "-I", name, "-n", principals, "-V", validity, key + ".pub")
            cert = f"HostCertificate {key}-cert.pub\n"
        port, _ = self.start_sshd(name, authorized, extra_conf=cert)
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
        fp = self.fingerprint("good_host")
        self.assertIn(f"host key {fp} certified by CA", r.stderr)
        self.assertIn("matches the pin", r.stderr)  # the login connection checked the pinned key

    def test_expired_host_certificate_refused(self):
        # Signed by the listed CA for the right name, but its validity ended yesterday.
        port, _ = self.sshd("expired", "127.0.0.1", validity="-2d:-1d")
        kh = self.known_hosts(f"@cert-authority [127.0.0.1]:* {self.pub('ca')}\n")
        r = self.add("expired", f"nobody@127.0.0.1:{port}", kh)
        self.assertEqual(r.rc, 6, r)
        self.assertEqual(r.err_json["error"], "host_key_mismatch")
        self.assertIn("not certified by the @cert-authority", r.err_json["message"])
        self.assertIn("expired", r.err_json["message"])
        # Not yet valid is refused the same way.
        port, _ = self.sshd("future", "127.0.0.1", validity="+1d:+2d")
        r = self.add("future", f"nobody@127.0.0.1:{port}", kh)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("not yet valid", r.err_json["message"])
        self.assertEqual(self.gedge_json("device", "ls"), [])

    def test_cert_authority_for_a_jump_host(self):
        # The jump host lets the test key forward (ssh -W) and nothing else is needed of it; the
        # device behind it authorizes no key, so the add ends at the device's login.
        self.keygen("-t", "ed25519", "-N", "", "-C", "test-user", "-f", self.p("user"))
        with open(self.p("authorized"), "w") as f:
            f.write(self.pub("user") + "\n")
        jump_port, jump_key = self.sshd("jump", "127.0.0.1", authorized="authorized")
        plain_jump_port, _ = self.sshd("plainjump", authorized="authorized")
        dev_port, dev_key = self.sshd("dev", "127.0.0.1")
        user = run_cmd(["id", "-un"]).stdout.strip()
        cfg = os.path.join(self.tmp, "ssh_config")
        with open(cfg, "w") as f:
            f.write(f"Host dev\n  HostName 127.0.0.1\n  Port {dev_port}\n  User nobody\n"
                    f"  ProxyJump {user}@127.0.0.1:{jump_port}\n"
                    f"Host dev-plain\n  HostName 127.0.0.1\n  Port {dev_port}\n  User nobody\n"
                    f"  ProxyJump {user}@127.0.0.1:{plain_jump_port}\n")
        kh = self.known_hosts(f"@cert-authority [127.0.0.1]:* {self.pub('ca')}\n")
        dev_fp = self.fingerprint("dev_host")
        jump_fp = self.fingerprint("jump_host")

        # An uncertified jump host under the CA's pattern: refused (6) naming the jump.
        r = self.run_gedge("--ssh-config", cfg, "device", "add", "dev", "--host", "dev-plain", "--identity",
                           self.p("user"), "--known-hosts", kh, "--host-key", dev_fp, "--timeout", "10",
                           "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertIn(f"jump host 127.0.0.1:{plain_jump_port}", r.err_json["message"])
        self.assertIn("not certified by the @cert-authority", r.err_json["message"])

        # The certified jump host is pinned by the CA; the device, certified too, is checked by
        # OpenSSH through that jump; gedge goes on to log in to the device (refused: no key).
        r = self.run_gedge("--ssh-config", cfg, "device", "add", "dev", "--host", "dev", "--identity",
                           self.p("user"), "--known-hosts", kh, "--timeout", "10", "-v", "-o", "json")
        self.assertEqual(r.err_json["error"], "auth_failed", r)
        self.assertIn(f"jump host 127.0.0.1: host key {jump_fp} certified by CA", r.stderr)
        self.assertIn(f"host key {dev_fp} certified by CA", r.stderr)
        self.assertIn(jump_key.split()[0], r.stderr)
        self.assertIn(dev_key.split()[0], r.stderr)
        self.assertEqual(self.gedge_json("device", "ls"), [])


if __name__ == "__main__":
    unittest.main()
