# needs: lab
"""macvlan networks on a container-host cluster (the lab's full-OS hosts edge1..edge3): a manifest
whose pod selects a macvlan NetworkAttachmentDefinition of the same files, and a short-schema
service with the same network, become one podman macvlan network per device (parent eth0, the
hosts' link on gedgebr0) holding a distinct block of the subnet on each device. The downward
API's env (the replica's name, the device's name and address) arrives; the manifest's Service
targets the container's port. The replicas have
addresses in their device's block and reach each other over it; a re-deploy changes nothing;
`svc rm` of one service keeps the network the other still uses, and of the last removes it."""

import ipaddress
import json
import os

from cluster_lab import REGISTRY, ClusterLabTest

IMAGE = f"{REGISTRY}/gedge/busybox:1.0"
CLUSTER = "e2e-net"
HOSTS = ("edge1", "edge2", "edge3")
NAME = "e2e-net-web"
SHORT = "e2e-net-short"
PORT = 28093  # not used by other tests
SUBNET = "10.213.57.0/24"  # lab-only addresses; nothing routes them off gedgebr0
NAD = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
       "metadata": {"name": "cams"},
       "spec": {"config": json.dumps({"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0", "mode": "bridge",
                                      "ipam": {"type": "host-local", "subnet": SUBNET}})}}


def deployment(replicas=2):
    c = {"name": "web", "image": IMAGE, "command": ["sh", "-c"],
         "args": ["mkdir -p /www && hostname > /www/name && exec httpd -f -p 8080 -h /www"],
         "ports": [{"containerPort": 8080, "hostPort": PORT}],
         # the downward API: the replica's name, its device's name and address
         "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                 {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                 {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": NAME}},
                     "template": {"metadata": {"labels": {"app": NAME},
                                               "annotations": {"k8s.v1.cni.cncf.io/networks": "cams"}},
                                  "spec": {"containers": [c]}}}}


SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME},  # checked against the ports
           "spec": {"selector": {"app": NAME}, "ports": [{"port": 80, "targetPort": 8080}]}}


class NetworkLabTest(ClusterLabTest):
    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def podman(self, host, *argv, check=True):
        return self.ssh_host(host, "sudo", "-n", "podman", *argv, check=check, timeout=120)

    def networks(self, host):
        out = self.podman(host, "network", "ls", "--format", "{{.Name}}")
        return sorted(n for n in out.split() if n.startswith("gedge-net-"))

    def address(self, host, container, network):
        out = self.podman(host, "inspect", "--format",
                          "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}", container)
        nets = dict(kv.split("=", 1) for kv in out.split())
        self.assertIn("podman", nets, out)  # the default network stays: the ports are published there
        return ipaddress.ip_address(nets[network])

    def replica_ids(self, host):
        return sorted(self.podman(host, "ps", "-aq", "--no-trunc", "--filter", f"label=gedge.service={NAME}").split())

    def cleanup_host(self, host):
        for svc in (NAME, SHORT):
            out = self.podman(host, "ps", "-aq", "--filter", f"label=gedge.service={svc}", check=False)
            ids = out.stdout.split() if out.rc == 0 else []
            if ids:
                self.podman(host, "rm", "-f", *ids, check=False)
        out = self.podman(host, "network", "ls", "--format", "{{.Name}}", check=False)
        for n in (out.stdout.split() if out.rc == 0 else []):
            if n.startswith("gedge-net-"):
                self.podman(host, "network", "rm", "-f", n, check=False)
        self.ssh_host(host, "sudo", "-n", "rm", "-f", self.dropin(CLUSTER), check=False)

    def test_macvlan_network_on_container_hosts(self):
        self.require_lab()
        for h in HOSTS:
            self.add_device(h)
            self.addCleanup(self.cleanup_host, h)
        r = self.run_gedge("cluster", "build", CLUSTER, "--profile", "containers", "--devices", ",".join(HOSTS),
                           "--registry", REGISTRY, "--insecure-registry", "-o", "json", timeout=600)
        self.assertEqual(r.rc, 0, r)

        # The manifest: two replicas (host ports: one per device), each on the macvlan network.
        man = self.write("web.yaml", "\n---\n".join(json.dumps(d) for d in (NAD, SERVICE, deployment())) + "\n")
        d1 = self.gedge_json("svc", "deploy", man, "--cluster", CLUSTER, timeout=300)
        actions = [a for s in d1["services"] for a in s["actions"]]
        self.assertEqual(sorted((a["action"], a["state"]) for a in actions), [("create", "ok")] * 2, d1)
        net = None
        devs = sorted(a["device"] for a in actions)
        # the blocks: 3 members -> 4 blocks of /26, the i-th member (by name) the i-th block
        blocks = {h: ipaddress.ip_network(f"10.213.57.{64 * i}/26") for i, h in enumerate(HOSTS)}
        addrs = {}
        for dev in devs:
            nets = self.networks(dev)
            self.assertEqual(len(nets), 1, nets)
            if net:
                self.assertEqual(nets, [net], "one network: the same name on every device")
            net = nets[0]
            info = json.loads(self.podman(dev, "network", "inspect", net))[0]
            self.assertEqual(info["driver"], "macvlan")
            self.assertEqual(info["network_interface"], "eth0")
            self.assertEqual(info["labels"].get("gedge.managed"), "true")
            self.assertEqual(info["subnets"][0]["subnet"], SUBNET)
            replica = [c for c in self.podman(dev, "ps", "--format", "{{.Names}}").split() if c.startswith(f"gedge-{NAME}-")]
            self.assertEqual(len(replica), 1, replica)
            ip = self.address(dev, replica[0], net)
            self.assertIn(ip, ipaddress.ip_network(SUBNET))
            self.assertIn(ip, blocks[dev], f"{dev}'s replica has {ip}, outside its block {blocks[dev]}")
            addrs[dev] = ip
            env = dict(ln.split("=", 1) for ln in self.podman(dev, "exec", replica[0], "env").splitlines() if "=" in ln)
            self.assertEqual((env["POD"], env["NODE"], env["HOST"], env["NS"]),
                             (replica[0], dev, self.lab_host(dev)["address"], "default"), env)
        self.assertEqual(len(set(addrs.values())), 2, addrs)
        # the replicas reach each other over the macvlan network (the hosts' shared link)
        a, b = devs
        ra = [c for c in self.podman(a, "ps", "--format", "{{.Names}}").split() if c.startswith(f"gedge-{NAME}-")][0]
        rb = [c for c in self.podman(b, "ps", "--format", "{{.Names}}").split() if c.startswith(f"gedge-{NAME}-")][0]
        name_b = self.podman(b, "exec", rb, "hostname").strip()
        # (the lab image's static busybox wget crashes; nc speaks the request)
        got = self.podman(a, "exec", ra, "sh", "-c",
                          f"printf 'GET /name HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {addrs[b]} 8080")
        self.assertIn("200 OK", got, "the replica on the other device answers on its macvlan address")
        self.assertEqual(got.rstrip().splitlines()[-1], name_b, got)
        before = {d: self.replica_ids(d) for d in devs}

        # A short-schema service on the same network (same master and subnet): the same podman network.
        short = self.write("short.yaml",
                           f"name: {SHORT}\ncontainers:\n  - image: {IMAGE}\n    command: [sh, -c]\n"
                           f"    args: ['exec sleep 3600']\n"
                           f"networks: [{{name: cams, type: macvlan, master: eth0, subnet: {SUBNET}}}]\n")
        plans = [d for d in self.gedge_json("svc", "render", short) if d.get("apiVersion") == "gedge/v1"]
        self.assertEqual([n["name"] for n in plans[0]["spec"]["networks"]], [net], plans)
        d2 = self.gedge_json("svc", "deploy", short, "--cluster", CLUSTER, timeout=300)
        sdev = [a["device"] for s in d2["services"] for a in s["actions"]][0]
        self.assertEqual(self.networks(sdev), [net])
        ip = self.address(sdev, f"gedge-{SHORT}-0", net)
        self.assertIn(ip, blocks[sdev])

        # Re-deploy: a no-op (the same containers, the network untouched).
        d3 = self.gedge_json("svc", "deploy", man, "--cluster", CLUSTER, timeout=300)
        self.assertEqual({a["action"] for s in d3["services"] for a in s["actions"]}, {"unchanged"}, d3)
        self.assertEqual({d: self.replica_ids(d) for d in devs}, before)

        # rm of the manifest's service: the network stays where the short service still uses it.
        self.gedge_json("svc", "rm", NAME, "--cluster", CLUSTER, "--yes", timeout=300)
        for h in HOSTS:
            self.assertEqual(self.networks(h), [net] if h == sdev else [], h)
        # rm of the last one: no gedge network left anywhere.
        self.gedge_json("svc", "rm", SHORT, "--cluster", CLUSTER, "--yes", timeout=300)
        self.assertEqual({h: self.networks(h) for h in HOSTS}, {h: [] for h in HOSTS})
        self.assertEqual(self.gedge_json("svc", "ls", "--cluster", CLUSTER), [])
