"""Helpers shared by the lab tests of `gedge cluster` (test_cluster.py, test_cluster_faults.py)."""

from gedge_e2e import GedgeTest

REGISTRY = "10.213.0.1:5000"


class ClusterLabTest(GedgeTest):
    def add_device(self, name):
        """`gedge device add` for lab host NAME with the lab key and its pinned host key."""
        h = self.lab_host(name)
        lab = self.lab()
        r = self.run_gedge("device", "add", name, "--host", h["address"], "--port", h["port"],
                           "--user", lab["user"], "--identity", lab["key"],
                           "--host-key", h["host_key_fingerprint"], "-o", "json")
        self.assertEqual(r.rc, 0, r)

    def dropin(self, cluster):
        """The registries.conf drop-in the containers profile writes for CLUSTER."""
        return f"/etc/containers/registries.conf.d/50-gedge-{cluster}.conf"

    def cleanup_dropin(self, host, cluster):
        self.addCleanup(lambda: self.ssh_host(host, "sudo", "rm", "-f", self.dropin(cluster), check=False))

    def by_name(self, result):
        """A build result's devices by name."""
        return {d["name"]: d for d in result["devices"]}
