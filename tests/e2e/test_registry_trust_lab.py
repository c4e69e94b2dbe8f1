# needs: lab
"""Registry trust on real devices (issue 16 item 1): `cluster build --registry` never turns TLS off
by itself. The lab has three registries on 10.213.0.1: plain HTTP (:5000), TLS with a certificate
from the lab's own CA (:5443) and the same with a login, answering 401 on /v2/ (:5444).

- TLS + --registry-ca: the build succeeds, every device gets the CA in
  /etc/containers/certs.d/HOST:PORT/ca.crt and a drop-in with insecure = false, and pulls the smoke
  image from that registry over verified TLS.
- TLS without --registry-ca: exit 6 with a --registry-ca hint; devices untouched.
- plain HTTP without --insecure-registry: exit 6; devices untouched.
- the 401 registry: TLS works (401 is an answer), so --registry-ca is enough: the build succeeds
  and the devices' smoke run reaches its /v2/ over TLS with the CA; without the CA it is refused
  like :5443.

Before the fix every one of these builds succeeded and wrote `insecure = true` on the devices."""

import unittest

from cluster_lab import REGISTRY, ClusterLabTest

DEVICES = ("edge1", "edge2")


class RegistryTrustTest(ClusterLabTest):
    def setUp(self):
        super().setUp()
        self.require_lab()
        lab = self.lab()
        if "tls_registry" not in lab:
            self.skipTest("the lab predates its TLS registries: run tests/lab/lab.sh up")
        self.tls = lab["tls_registry"]
        self.auth = lab["auth_registry"]
        self.ca = lab["registry_ca"]
        for n in DEVICES:
            self.add_device(n)

    def certs_dir(self, registry):
        return f"/etc/containers/certs.d/{registry}"

    def cleanup_device(self, cluster, registry):
        for n in DEVICES:
            self.cleanup_dropin(n, cluster)
            self.addCleanup(lambda n=n: self.ssh_host(n, "sudo", "rm", "-rf", self.certs_dir(registry), check=False))
            self.addCleanup(lambda n=n: self.ssh_host(
                n, "sudo", "podman", "rmi", "-f", f"{registry}/gedge/busybox:1.0", check=False))

    def assert_untouched(self, cluster, registry):
        for n in DEVICES:
            r = self.ssh_host(n, "sudo", "ls", self.dropin(cluster), self.certs_dir(registry), check=False)
            self.assertNotEqual(r.rc, 0, f"{n}: a refused build left files behind: {r.stdout}")
        self.assertEqual(self.gedge_json("cluster", "ls"), [], "a refused build must not record the cluster")

    def test_tls_registry_with_the_lab_ca(self):
        self.cleanup_device("e2e-tls", self.tls)
        image = f"{self.tls}/gedge/busybox:1.0"
        for n in DEVICES:  # the smoke run must pull it now, over TLS
            self.ssh_host(n, "sudo", "podman", "rmi", "-f", image, check=False)
            self.ssh_host(n, "sudo", "rm", "-rf", self.certs_dir(self.tls), check=False)

        # No CA: the certificate is unknown here, which is exit 6 with the hint, not plain HTTP.
        r = self.run_gedge("cluster", "build", "e2e-tls", "--profile", "containers", "--devices", ",".join(DEVICES),
                           "--registry", self.tls, "-o", "json", timeout=120)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("--registry-ca", r.err_json.get("hint", ""), r)
        self.assert_untouched("e2e-tls", self.tls)

        r = self.run_gedge("cluster", "build", "e2e-tls", "--profile", "containers", "--devices", ",".join(DEVICES),
                           "--registry", self.tls, "--registry-ca", self.ca, "--smoke-image", image, "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["state"], "ready", r.json)
        self.assertNotIn("insecure", r.stderr.lower(), "a verified registry must not warn")
        with open(self.ca) as f:
            ca = f.read()
        for n in DEVICES:
            self.assertEqual(self.by_name(r.json)[n]["state"], "ready")
            self.assertEqual(self.ssh_host(n, "sudo", "cat", f"{self.certs_dir(self.tls)}/ca.crt").strip(), ca.strip())
            text = self.ssh_host(n, "cat", self.dropin("e2e-tls"))
            self.assertIn(f'location = "{self.tls}"', text)
            self.assertIn("insecure = false", text)
            # The smoke run pulled it from the TLS registry; a second pull verifies again.
            self.ssh_host(n, "sudo", "podman", "image", "exists", image)
            self.ssh_host(n, "sudo", "podman", "pull", "-q", image, timeout=120)
        # Without the CA a device refuses that registry too (the CA is what made it work).
        self.ssh_host(DEVICES[0], "sudo", "mv", self.certs_dir(self.tls), "/root/gedge-e2e-certs")
        self.addCleanup(lambda: self.ssh_host(DEVICES[0], "sudo", "rm", "-rf", "/root/gedge-e2e-certs", check=False))
        bad = self.ssh_host(DEVICES[0], "sudo", "podman", "pull", "-q", image, check=False, timeout=120)
        self.assertNotEqual(bad.rc, 0, bad)
        self.assertIn("certificate", bad.stderr.lower(), bad)
        self.gedge_json("cluster", "rm", "e2e-tls", "--yes")

    def test_plain_registry_needs_insecure_registry(self):
        self.cleanup_device("e2e-plain", REGISTRY)
        r = self.run_gedge("cluster", "build", "e2e-plain", "--profile", "containers", "--devices", ",".join(DEVICES),
                           "--registry", REGISTRY, "-o", "json", timeout=120)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("plain HTTP", r.err_json["message"])
        self.assertIn("--insecure-registry", r.err_json.get("hint", ""))
        self.assert_untouched("e2e-plain", REGISTRY)
        # A CA does not make plain HTTP acceptable either.
        r = self.run_gedge("cluster", "build", "e2e-plain", "--profile", "containers", "--devices", ",".join(DEVICES),
                           "--registry", REGISTRY, "--registry-ca", self.ca, "-o", "json", timeout=120)
        self.assertEqual(r.rc, 6, r)
        self.assert_untouched("e2e-plain", REGISTRY)

    def test_authenticated_registry_counts_as_tls(self):
        self.cleanup_device("e2e-auth", self.auth)
        for n in DEVICES:
            self.ssh_host(n, "sudo", "rm", "-rf", self.certs_dir(self.auth), check=False)
        r = self.run_gedge("cluster", "build", "e2e-auth", "--profile", "containers", "--devices", ",".join(DEVICES),
                           "--registry", self.auth, "-o", "json", timeout=120)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("--registry-ca", r.err_json.get("hint", ""), r)
        self.assert_untouched("e2e-auth", self.auth)
        # With the CA: /v2/ answers 401 over verified TLS, here and on the devices (their smoke run
        # checks the registry through podman with the installed CA and no credentials).
        r = self.run_gedge("cluster", "build", "e2e-auth", "--profile", "containers", "--devices", ",".join(DEVICES),
                           "--registry", self.auth, "--registry-ca", self.ca, "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["state"], "ready", r.json)
        self.assertNotIn("insecure", r.stderr.lower(), "401 over verified TLS must not warn")
        for n in DEVICES:
            self.ssh_host(n, "sudo", "test", "-s", f"{self.certs_dir(self.auth)}/ca.crt")
            self.assertIn("insecure = false", self.ssh_host(n, "cat", self.dropin("e2e-auth")))
        self.gedge_json("cluster", "rm", "e2e-auth", "--yes")

if __name__ == "__main__":
    unittest.main()
