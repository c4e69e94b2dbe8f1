"""Helpers shared by the lab tests that build device clusters (test_cluster*.py, test_svc_deploy.py)."""

from gedge_e2e import GedgeTest

REGISTRY = "10.213.0.1:5000"


class ClusterLabTest(GedgeTest):
    def dropin(self, cluster):
        """The registries.conf drop-in the containers profile writes for CLUSTER."""
        return f"/etc/containers/registries.conf.d/50-gedge-{cluster}.conf"

    def cleanup_dropin(self, host, cluster):
        self.addCleanup(lambda: self.ssh_host(host, "sudo", "rm", "-f", self.dropin(cluster), check=False))

    def by_name(self, result):
        """A build result's devices by name."""
        return {d["name"]: d for d in result["devices"]}
