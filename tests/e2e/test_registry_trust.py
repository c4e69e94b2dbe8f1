"""cluster build's registry probe against real registries (issue 16 item 1), without the lab:
docker-registry on 127.0.0.1 with TLS from a CA made here, the same behind htpasswd (401 on
/v2/), and plain HTTP. The probe runs before any device is touched, so a registered device that
does not exist shows whether the build got past it (it then fails at that device's host key).

docker-registry answers a plain-HTTP request on its TLS port with 400; the probe took that for a
plain-HTTP registry ("speaks plain HTTP", the --insecure-registry hint) instead of a TLS registry
whose CA is unknown here. The lab test (test_registry_trust_lab) runs the same on devices."""

import os
import shutil
import socket
import subprocess
import sys
import time
import unittest

from gedge_e2e import GedgeTest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RegistryTrustTest(GedgeTest):
    def setUp(self):
        super().setUp()
        for tool in ("docker-registry", "openssl"):
            if not shutil.which(tool):
                self.skipTest(f"{tool} is not installed")
        d = os.path.join(self.tmp, "pki")
        os.makedirs(d)
        self.ca = os.path.join(d, "ca.crt")

        def ssl(*args):
            p = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=d, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)

        ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=gedge test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", "-keyout", "ca.key", "-out", "ca.crt")
        ssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "reg.key", "-out", "reg.csr")
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        ssl("x509", "-req", "-in", "reg.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "7", "-days", "2",
            "-extfile", "ext.cnf", "-out", "reg.crt")
        p = subprocess.run([sys.executable, "-W", "ignore", "-c",
                            "import crypt; print('gedge:' + crypt.crypt('pw', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest("no bcrypt for the htpasswd file (python's crypt module)")
        with open(os.path.join(d, "htpasswd"), "w") as f:
            f.write(p.stdout)
        tls = f"tls: {{certificate: {d}/reg.crt, key: {d}/reg.key}}"
        self.tls = self.start_registry("tls", tls)
        self.auth = self.start_registry("auth", tls, f"auth: {{htpasswd: {{realm: t, path: {d}/htpasswd}}}}\n")
        self.plain = self.start_registry("plain", "")
        with open(os.path.join(self.tmp, "inv.ini"), "w") as f:
            f.write("[edge]\nnowhere ansible_host=127.0.0.1 ansible_port=1\n")
        self.gedge_json("device", "import", os.path.join(self.tmp, "inv.ini"), "--no-connect")

    def start_registry(self, name, tls, extra=""):
        addr = f"127.0.0.1:{free_port()}"
        root = os.path.join(self.tmp, name)
        os.makedirs(root)
        cfg = os.path.join(root, "registry.yml")
        with open(cfg, "w") as f:
            f.write(f"version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {root}/data}}}}\n"
                    f"http: {{addr: \"{addr}\"{', ' + tls if tls else ''}}}\n{extra}")
        log = open(os.path.join(root, "log"), "w")
        self.addCleanup(log.close)
        p = subprocess.Popen(["docker-registry", "serve", cfg], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.addCleanup(p.wait)
        self.addCleanup(p.terminate)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", int(addr.split(":")[1]))) == 0:
                    return addr
            time.sleep(0.05)
        self.fail(f"docker-registry {name} did not start")

    def build(self, *flags):
        self.n = getattr(self, "n", 0) + 1  # each build its own cluster
        self.cluster = f"c{self.n}"
        return self.run_gedge("cluster", "build", self.cluster, "--profile", "containers", "--devices", "nowhere",
                              *flags, "-o", "json", timeout=60)

    def assert_refused(self, r, says, hint):
        self.assertEqual(r.rc, 6, r)
        self.assertIn(says, r.err_json["message"])
        self.assertIn(hint, r.err_json.get("hint", ""))
        self.assertEqual(self.run_gedge("cluster", "show", self.cluster).rc, 4, "a refused build must not record the cluster")

    def assert_past_probe(self, r, warns=None):
        # Past the probe: the build reached the (fake) device, which fails at its host key.
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(self.run_gedge("cluster", "show", self.cluster).rc, 0)
        self.assertIn("host key", r.err_json["message"])
        if warns:
            self.assertIn(warns, r.stderr)
        else:
            self.assertNotIn("insecure", r.stderr.lower(), r.stderr)

    def test_tls_registry_needs_its_ca_and_is_never_plain(self):
        r = self.build("--registry", self.tls)
        self.assert_refused(r, "TLS failed", "--registry-ca")
        self.assertNotIn("plain HTTP", r.err_json["message"])
        # Another CA is refused too.
        other = os.path.join(self.tmp, "other.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-subj", "/CN=other", "-keyout", os.path.join(self.tmp, "other.key"), "-out", other],
                       capture_output=True, check=True, timeout=60)
        self.assert_refused(self.build("--registry", self.tls, "--registry-ca", other), "TLS failed",
                            "that signed the registry's certificate")
        self.assert_past_probe(self.build("--registry", self.tls, "--registry-ca", self.ca))

    def test_401_over_tls_is_tls_working(self):
        self.assert_refused(self.build("--registry", self.auth), "TLS failed", "--registry-ca")
        self.assert_past_probe(self.build("--registry", self.auth, "--registry-ca", self.ca))

    def test_plain_http_only_with_insecure_registry(self):
        self.assert_refused(self.build("--registry", self.plain), "plain HTTP", "--insecure-registry")
        self.assert_refused(self.build("--registry", self.plain, "--registry-ca", self.ca), "plain HTTP",
                            "--insecure-registry")
        self.assert_past_probe(self.build("--registry", self.plain, "--insecure-registry"), warns="plain HTTP")


if __name__ == "__main__":
    unittest.main()
