# needs: lab
"""gedge svc deploy to a container-host cluster built on the lab's full-OS hosts edge1..edge3:
real podman containers from the lab registry, real HTTP answers from the published ports, the
state of the hosts checked over SSH after every step.

One test method walks the whole life of a service (one cluster build is the expensive part):
catalog, deploy, idempotent re-deploy, rolling replace, a failing replacement rolled back, Ctrl-C
during a replace, status, logs, scale up and down, a device offline mid-deploy and the re-run that
completes, an image that is not in the registry (nothing left behind), a pipeline placed with
`gedge sched place --apply`, and rm."""

import json
import os
import signal
import subprocess
import time
import urllib.request

from cluster_lab import REGISTRY, ClusterLabTest
from gedge_e2e import GEDGE

IMAGE = f"{REGISTRY}/gedge/busybox:1.0"
CLUSTER = "e2e-svc"
HOSTS = ("edge1", "edge2", "edge3")
PORT = 28080  # not the demo's 18080: the demo leaves its services running


def web_yaml(msg, replicas=2, start_cmd=None, name="e2e-web"):
    start = start_cmd or (f"echo started $MSG; mkdir -p /www && echo $MSG > /www/index.html && "
                          f"exec httpd -f -p 8080 -h /www")
    return json.dumps({
        "name": name,
        "replicas": replicas,
        "containers": [{
            "name": "web",
            "image": IMAGE,
            "command": ["sh", "-c"],
            "args": [start],
            "env": [{"name": "MSG", "value": msg}],
            "ports": [{"containerPort": 8080, "externalPort": PORT}],
            "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "64Mi"}},
        }],
    })


def bg_yaml(msg, replicas=3):
    return json.dumps({
        "name": "e2e-bg", "replicas": replicas,
        "containers": [{"name": "bg", "image": IMAGE, "command": ["sh", "-c"],
                        "args": ["echo bg $MSG; exec sleep 100000"], "env": [{"name": "MSG", "value": msg}]}],
    })


PIPELINE = """kind: Pipeline
name: e2e-pipe
source: edge1
stages:
  - name: e2e-pre
    containers: [{name: pre, image: %(img)s, command: [sh, -c],
                  args: ["mkdir -p /w && echo pre > /w/index.html && exec httpd -f -p 8080 -h /w"],
                  ports: [{containerPort: 8080, externalPort: 28081}]}]
    resources: {cpu: 100m, memory: 32Mi}
    compute_ms: 8
    output_mb: 1.2
  - name: e2e-infer
    containers: [{name: infer, image: %(img)s, command: [sh, -c], args: ["exec sleep 100000"]}]
    resources: {cpu: 200m, memory: 64Mi}
    compute_ms: 25
    output_mb: 0.1
  - name: e2e-post
    containers: [{name: post, image: %(img)s, command: [sh, -c], args: ["exec sleep 100000"]}]
    resources: {cpu: 100m, memory: 32Mi}
    compute_ms: 5
""" % {"img": IMAGE}


class SvcDeployLabTest(ClusterLabTest):
    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def containers(self, host, service):
        """{name: {state, spec, replica}} of gedge containers of SERVICE on HOST (podman, read over SSH)."""
        out = self.ssh_host(host, "sudo", "-n", "podman", "ps", "-a", "--filter", f"label=gedge.service={service}",
                            "--format", "json")
        res = {}
        for c in json.loads(out or "[]"):
            res[c["Names"][0]] = {"state": c["State"], "spec": c["Labels"].get("gedge.spec"),
                                  "replica": c["Labels"].get("gedge.replica"), "id": c["Id"]}
        return res

    def all_containers(self, service):
        return {h: self.containers(h, service) for h in HOSTS}

    def http(self, host):
        addr = self.lab_host(host)["address"]
        with urllib.request.urlopen(f"http://{addr}:{PORT}/", timeout=5) as r:
            return r.read().decode().strip()

    def cleanup_host(self, host):
        for svc in ("e2e-web", "e2e-bg", "e2e-bad", "e2e-hot", "e2e-pre", "e2e-infer", "e2e-post"):
            out = self.ssh_host(host, "sudo", "-n", "podman", "ps", "-aq", "--filter", f"label=gedge.service={svc}",
                                check=False)
            ids = out.stdout.split() if out.rc == 0 else []
            if ids:
                self.ssh_host(host, "sudo", "-n", "podman", "rm", "-f", *ids, check=False, timeout=120)
        self.ssh_host(host, "sudo", "-n", "rm", "-f", self.dropin(CLUSTER), check=False)

    def by_replica(self, result, service):
        for s in result["services"]:
            if s["name"] == service:
                return {a["replica"]: a for a in s["actions"] if "replica" in a}
        self.fail(f"{service} not in {result}")

    def test_service_lifecycle(self):
        self.require_lab()
        for h in HOSTS:
            self.add_device(h)
            self.addCleanup(self.cleanup_host, h)
        self.addCleanup(self.lab_sh, "fault", "edge3", "link-up")
        r = self.run_gedge("cluster", "build", CLUSTER, "--profile", "containers", "--devices", ",".join(HOSTS),
                           "--registry", REGISTRY, "--insecure-registry", "-o", "json", timeout=600)
        self.assertEqual(r.rc, 0, r)

        # --- catalog: what the registry offers
        cat = self.gedge_json("svc", "catalog", "--registry", REGISTRY, "--plain-http")
        repos = {c["repository"]: c for c in cat}
        self.assertIn("gedge/busybox", repos)
        self.assertIn("1.0", repos["gedge/busybox"]["tags"])
        self.assertIn(IMAGE, repos["gedge/busybox"]["images"])

        # --- first deploy: two replicas on two different devices, answering HTTP
        v1 = self.write("web-v1.json", web_yaml("v1"))
        d1 = self.gedge_json("svc", "deploy", v1, "--cluster", CLUSTER, timeout=300)
        reps = self.by_replica(d1, "e2e-web")
        self.assertEqual(sorted(reps), [0, 1])
        self.assertEqual({a["action"] for a in reps.values()}, {"create"})
        self.assertEqual({a["state"] for a in reps.values()}, {"ok"})
        devs = {i: reps[i]["device"] for i in reps}
        self.assertNotEqual(devs[0], devs[1], "host ports: one replica per device")
        for i, dev in devs.items():
            self.assertEqual(self.http(dev), "v1")
            ctrs = self.containers(dev, "e2e-web")
            self.assertEqual(ctrs[f"gedge-e2e-web-{i}"]["state"], "running", ctrs)
            self.assertEqual(ctrs[f"gedge-e2e-web-{i}"]["replica"], str(i))
        ids_before = {dev: self.containers(dev, "e2e-web") for dev in devs.values()}

        # --- the same spec again changes nothing (same container ids)
        d2 = self.gedge_json("svc", "deploy", v1, "--cluster", CLUSTER, timeout=300)
        self.assertEqual({a["action"] for a in self.by_replica(d2, "e2e-web").values()}, {"unchanged"})
        for dev in devs.values():
            self.assertEqual(self.containers(dev, "e2e-web"), ids_before[dev])
        # On a terminal: the replicas done of all planned, counting up to 2/2.
        rc, tty = self.run_on_tty("svc", "deploy", v1, "--cluster", CLUSTER)
        self.assertEqual(rc, 0, tty)
        self.assertIn(f"cluster {CLUSTER}: replicas 2/2", tty)
        self.assertNotIn("replicas 3/2", tty)

        # --- dry run of a change: planned, nothing touched
        v2 = self.write("web-v2.json", web_yaml("v2"))
        dr = self.gedge_json("svc", "deploy", v2, "--cluster", CLUSTER, "--dry-run")
        self.assertTrue(dr["dry_run"])
        self.assertEqual({a["action"] for a in self.by_replica(dr, "e2e-web").values()}, {"replace"})
        for dev in devs.values():
            self.assertEqual(self.containers(dev, "e2e-web"), ids_before[dev])
            self.assertEqual(self.http(dev), "v1")

        # --- rolling replace to v2
        d3 = self.gedge_json("svc", "deploy", v2, "--cluster", CLUSTER, timeout=300)
        self.assertEqual({a["action"] for a in self.by_replica(d3, "e2e-web").values()}, {"replace"})
        for i, dev in devs.items():
            self.assertEqual(self.http(dev), "v2")
            names = sorted(self.containers(dev, "e2e-web"))
            self.assertEqual(names, [f"gedge-e2e-web-{i}"], "the old replica is removed after the swap")

        # --- a replacement that cannot start is rolled back; the rest keep the previous version
        bad = self.write("web-bad.json", web_yaml("v3", start_cmd="echo broken; exit 3"))
        r = self.run_gedge("svc", "deploy", bad, "--cluster", CLUSTER, "--timeout", "30", "-o", "json", timeout=300)
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn(r.rc, (1, 3), r)
        reps = self.by_replica(r.json, "e2e-web")
        self.assertEqual(reps[0]["state"], "failed", reps)
        self.assertIn("restored", reps[0]["error"])
        self.assertEqual(reps[1]["state"], "skipped", reps)
        for i, dev in devs.items():
            self.assertEqual(self.http(dev), "v2", "the previous version keeps serving")
            ctrs = self.containers(dev, "e2e-web")
            self.assertEqual(sorted(ctrs), [f"gedge-e2e-web-{i}"], ctrs)
            self.assertEqual(ctrs[f"gedge-e2e-web-{i}"]["state"], "running")

        # --- Ctrl-C during a replace: the old replica is restored, nothing else is left
        slow = self.write("web-slow.json", web_yaml("v4", start_cmd="sleep 20; exec httpd -f -p 8080 -h /"))
        p = subprocess.Popen([GEDGE, "svc", "deploy", slow, "--cluster", CLUSTER, "-o", "json"], env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # wait until the new container of replica 0 exists (the replace is under way)
        deadline = time.time() + 120
        while time.time() < deadline:
            if any(n.endswith("-gedge-old") for n in self.containers(devs[0], "e2e-web")):
                break
            time.sleep(0.3)
        else:
            p.kill()
            self.fail("the replace never started")
        time.sleep(2)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 130, (out, err))
        for i, dev in devs.items():
            ctrs = self.containers(dev, "e2e-web")
            self.assertEqual(sorted(ctrs), [f"gedge-e2e-web-{i}"], ctrs)
            self.assertEqual(ctrs[f"gedge-e2e-web-{i}"]["state"], "running")
            self.assertEqual(self.http(dev), "v2")

        # --- status and logs
        st = self.gedge_json("svc", "status", "e2e-web")
        self.assertEqual((st["desired"], st["ready"]), (2, 2))
        self.assertEqual(sorted((x["replica"], x["device"]) for x in st["replicas"]), sorted(devs.items()))
        for x in st["replicas"]:
            self.assertEqual(x["state"], "running")
            self.assertTrue(x["current"], x)
        lg = self.run_gedge("svc", "logs", "e2e-web", "--replica", "0", "--tail", "20")
        self.assertEqual(lg.rc, 0, lg)
        self.assertIn("started v2", lg.stdout)
        fp = subprocess.Popen([GEDGE, "svc", "logs", "e2e-web", "--replica", "0", "--follow"], env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = fp.stdout.readline()
        fp.send_signal(signal.SIGINT)
        fp.communicate(timeout=60)
        self.assertIn("started v2", first)
        self.assertEqual(fp.returncode, 130, "--follow streams until Ctrl-C")

        # --- scale to 3: the third device; back to 1: replicas 1 and 2 removed from the hosts
        s3 = self.gedge_json("svc", "scale", "e2e-web", "3", timeout=300)
        reps = self.by_replica(s3, "e2e-web")
        self.assertEqual(reps[2]["action"], "create")
        self.assertEqual(set(a["device"] for a in reps.values()), set(HOSTS))
        self.assertEqual(self.http(reps[2]["device"]), "v2")
        s1 = self.gedge_json("svc", "scale", "e2e-web", "1", timeout=300)
        self.assertTrue(any(a["action"] == "remove" for s in s1["services"] for a in s["actions"]))
        alive = {h: sorted(c) for h, c in self.all_containers("e2e-web").items() if c}
        self.assertEqual(alive, {devs[0]: ["gedge-e2e-web-0"]})
        ls = self.gedge_json("svc", "ls")
        self.assertEqual([(x["name"], x["replicas"], x["state"]) for x in ls], [("e2e-web", 1, "deployed")])

        # --- an image that is not in the registry: clear error, nothing deployed or recorded
        missing = json.loads(bg_yaml("x", replicas=2))
        missing["name"] = "e2e-bad"
        missing["containers"][0]["image"] = f"{REGISTRY}/gedge/not-there:9"
        mp = self.write("missing.json", json.dumps(missing))
        r = self.run_gedge("svc", "deploy", mp, "--cluster", CLUSTER, "-o", "json", timeout=300)
        self.assertEqual(r.rc, 4, r)
        self.assertIn("not-there", r.stderr)
        self.assertEqual({h: c for h, c in self.all_containers("e2e-bad").items() if c}, {})
        self.assertNotIn("e2e-bad", [x["name"] for x in self.gedge_json("svc", "ls")])

        # --- a registry that is down (nothing listens on its port): exit 5, nothing deployed
        down = dict(missing, containers=[dict(missing["containers"][0], image="10.213.0.1:5999/gedge/busybox:1.0")])
        r = self.run_gedge("svc", "deploy", self.write("down.json", json.dumps(down)), "--cluster", CLUSTER,
                           "-o", "json", timeout=300)
        self.assertEqual(r.rc, 5, r)
        self.assertIn("unreachable", r.stderr)
        self.assertEqual({h: c for h, c in self.all_containers("e2e-bad").items() if c}, {})

        # --- a device goes offline: the others converge (exit 3), the re-run completes
        bg1 = self.write("bg1.json", bg_yaml("one"))
        d = self.gedge_json("svc", "deploy", bg1, "--cluster", CLUSTER, timeout=300)
        where = {i: a["device"] for i, a in self.by_replica(d, "e2e-bg").items()}
        self.assertEqual(sorted(where.values()), sorted(HOSTS))
        r = self.lab_sh("fault", "edge3", "link-down")
        self.assertEqual(r.rc, 0, r)
        bg2 = self.write("bg2.json", bg_yaml("two"))
        r = self.run_gedge("--timeout", "5", "svc", "deploy", bg2, "--cluster", CLUSTER, "-o", "json", timeout=300)
        self.assertEqual(r.rc, 3, r)
        reps = self.by_replica(r.json, "e2e-bg")
        for i, dev in where.items():
            self.assertEqual(reps[i]["state"], "failed" if dev == "edge3" else "ok", reps)
        self.assertIn("edge3", r.stderr)
        r = self.lab_sh("fault", "edge3", "link-up")
        self.assertEqual(r.rc, 0, r)
        d = self.gedge_json("svc", "deploy", bg2, "--cluster", CLUSTER, timeout=300)
        reps = self.by_replica(d, "e2e-bg")
        for i, dev in where.items():
            self.assertEqual(reps[i]["action"], "replace" if dev == "edge3" else "unchanged", reps)
            self.assertEqual(reps[i]["state"], "ok")
        specs = {c["spec"] for h in HOSTS for c in self.containers(h, "e2e-bg").values()}
        self.assertEqual(len(specs), 1, "every replica runs the same spec after the re-run")

        # --- autoscale --once: a busy replica far above its CPU target is scaled out to max
        hot = self.write("hot.json", json.dumps({
            "name": "e2e-hot", "autoscale": {"min": 1, "max": 3, "cpu": 50},
            "containers": [{"name": "hot", "image": IMAGE, "command": ["sh", "-c"],
                            "args": ["while :; do :; done"],
                            "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}}}]}))
        self.gedge_json("svc", "deploy", hot, "--cluster", CLUSTER, timeout=300)
        time.sleep(3)
        a = self.gedge_json("svc", "autoscale", "--once", "--cluster", CLUSTER, timeout=300)
        dec = {x["name"]: x for x in a["services"]}
        self.assertEqual(set(dec), {"e2e-hot"}, "only services with autoscale are considered")
        self.assertGreater(dec["e2e-hot"]["cpu_percent"], 50 * 1.1, dec)
        self.assertEqual((dec["e2e-hot"]["desired"], dec["e2e-hot"]["action"]), (3, "scaled"), dec)
        running = [n for h in HOSTS for n, c in self.containers(h, "e2e-hot").items() if c["state"] == "running"]
        self.assertEqual(sorted(running), ["gedge-e2e-hot-0", "gedge-e2e-hot-1", "gedge-e2e-hot-2"])
        self.gedge_json("svc", "rm", "e2e-hot", "--yes", timeout=300)

        # --- a 3-stage pipeline placed by the scheduler and deployed with --apply
        pipe = self.write("pipe.yaml", PIPELINE)
        rtts = {x["to"]: x["rtt_ms"] for x in self.gedge_json("sched", "probe", "--from", "edge1")}
        self.assertTrue({"edge2", "edge3"} <= set(rtts), rtts)
        r = self.run_gedge("sched", "place", pipe, "--policy", "pipeline", "--from", "edge1", "--apply",
                           "--cluster", CLUSTER, "-o", "json", timeout=300)
        self.assertEqual(r.rc, 0, r)
        placed = {p["stage"]: p["node"] for p in r.json["placement"]["placements"]}
        self.assertEqual(sorted(placed), ["e2e-infer", "e2e-post", "e2e-pre"])
        for stage, node in placed.items():
            self.assertEqual(self.by_replica(r.json["deploy"], stage)[0]["device"], node)
            ctrs = self.containers(node, stage)
            self.assertEqual(ctrs[f"gedge-{stage}-0"]["state"], "running", ctrs)
        addr = self.lab_host(placed["e2e-pre"])["address"]
        with urllib.request.urlopen(f"http://{addr}:28081/", timeout=5) as resp:
            self.assertEqual(resp.read().decode().strip(), "pre", "the placed stage answers where it was placed")
        names = sorted(x["name"] for x in self.gedge_json("svc", "ls", "--cluster", CLUSTER))
        self.assertEqual(names, ["e2e-bg", "e2e-infer", "e2e-post", "e2e-pre", "e2e-web"])

        # --- rm removes exactly what gedge created
        for svc in ("e2e-web", "e2e-bg", "e2e-pre", "e2e-infer", "e2e-post"):
            rm = self.gedge_json("svc", "rm", svc, "--yes", timeout=300)
            self.assertTrue(all(x["state"] == "removed" for x in rm["removed"]), rm)
            self.assertEqual({h: c for h, c in self.all_containers(svc).items() if c}, {})
        self.assertEqual(self.gedge_json("svc", "ls"), [])
        r = self.run_gedge("svc", "status", "e2e-web")
        self.assertEqual(r.rc, 4, r)
