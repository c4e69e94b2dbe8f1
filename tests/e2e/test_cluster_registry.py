# needs: lab
"""cluster build against an operator's registry that does not hold gedge's lab image: without
--smoke-image the devices check what the registry offers (its /v2/ over the configured transport,
the catalog's first image pulled), so the build passes; a registry that does not answer from the
devices fails their smoke run (exit 1: every device failed), naming it. The second registry is docker-registry on the lab bridge
(10.213.0.1:5001), started and stopped by the test."""

import re
import shutil
import subprocess
import tempfile
import unittest

from cluster_lab import ClusterLabTest
from gedge_e2e import start_registry

OTHER = "10.213.0.1:5001"
NOBODY = "10.213.0.1:5009"  # nothing listens there


class RegistrySmokeLabTest(ClusterLabTest):
    def start_other_registry(self):
        d = tempfile.mkdtemp(prefix="gedge-reg-")
        self.addCleanup(shutil.rmtree, d, True)
        start_registry(OTHER, d, self.addCleanup)
        # The lab's busybox under another name: no gedge/busybox in this registry.
        src = self.lab()["image"].replace(self.lab()["registry"] + "/gedge/", "localhost/gedge-lab/")
        p = subprocess.run(["podman", "push", "--quiet", "--tls-verify=false", src, f"{OTHER}/other/tiny:2.0"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_build_without_smoke_image_on_a_registry_without_gedge_image(self):
        self.require_lab()
        self.start_other_registry()
        self.add_device("edge1")
        self.cleanup_dropin("edge1", "e2e-rg")
        image = f"{OTHER}/other/tiny:2.0"
        self.addCleanup(lambda: self.ssh_host("edge1", "sudo", "podman", "rmi", "-f", image, check=False))

        # On a terminal: per task, the hosts that answered it of those still in the run.
        rc, out = self.run_on_tty("cluster", "build", "e2e-rg", "--devices", "edge1", "--registry", OTHER,
                                  "--insecure-registry", timeout=300)
        self.assertEqual(rc, 0, out)
        draws = self.progress_draws(out, "cluster e2e-rg: task ")
        self.assertTrue(draws, out)
        tasks = []
        for d in draws:
            m = re.fullmatch(r"cluster e2e-rg: task (\d+) \((.+)\): hosts ([01])/1", d)
            self.assertTrue(m, d)
            tasks.append(int(m.group(1)))
        self.assertEqual(tasks, sorted(tasks), draws)
        self.assertTrue(any(d.endswith("Pull the catalog's image): hosts 1/1") for d in draws), draws)
        self.assertEqual(self.gedge_json("cluster", "show", "e2e-rg")["state"], "ready")
        self.ssh_host("edge1", "sudo", "podman", "image", "exists", image)
        steps = [s["step"] for s in self.gedge_json("cluster", "show", "e2e-rg")["members"][0]["steps"]]
        self.assertIn("smoke_test : Pull the catalog's image", steps)
        self.assertNotIn("smoke_test : Pull the smoke image", steps)

        # A registry that does not answer from the devices fails their smoke run (exit 1: every device failed), naming it.
        # Off a terminal: the failure is said, no progress is drawn.
        r = self.run_gedge("cluster", "build", "e2e-rg", "--registry", NOBODY, "--insecure-registry", timeout=300)
        self.assertEqual(r.rc, 1, r)  # every device failed: a failure, not a partial result (3)
        self.assertIn(f"edge1: failed: smoke_test : Fail when the registry does not answer: the device cannot reach {NOBODY}/v2/",
                      r.stderr)
        self.assertNotIn("\x1b[K", r.stderr)
        self.assertNotIn("\r", r.stderr)
        member = self.gedge_json("cluster", "show", "e2e-rg")["members"][0]
        self.assertEqual(member["state"], "failed", member)
        self.gedge_json("cluster", "rm", "e2e-rg", "--yes")


if __name__ == "__main__":
    unittest.main()
