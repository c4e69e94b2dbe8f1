"""Kubernetes manifests wherever a service file is read (svc render, sched place/submit): YAML
streams, JSON objects and Lists, directories; the real demand placed; objects validated against
the official Kubernetes schemas (tests/k8s_validate)."""
import json
import os
import shutil
import unittest

from gedge_e2e import GedgeTest, SOURCE_DIR
from k8s_check import assert_valid_k8s

DATA = os.path.join(SOURCE_DIR, "tests", "data", "manifests")
MSA = os.path.join(DATA, "gs-msa")
GSCH = os.path.join(DATA, "gsch-service-pod.yaml")
WORLD = os.path.join(DATA, "world-msa.json")
MiB = 1024 * 1024


def world(nodes):
    return {"clusters": [{"name": "c", "nodes": nodes}], "latency_ms": {"intra_cluster": 0.5}}


class ManifestPlaceTest(GedgeTest):
    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text if isinstance(text, str) else json.dumps(text))
        return p

    def place(self, *args):
        return self.run_gedge("sched", "place", *args, "-o", "json")

    def test_service_then_pod_places_the_pod_with_its_real_demand(self):
        # Regression: the first document (a Service) was taken for the workload and "placed" as a
        # zero-resource stage named nginx-svc, exit 0.
        small = self.write("small.json", world([{"name": "n", "capacity": {"cpu": 2, "memory": "8Gi"}}]))
        r = self.place(GSCH, "--state", small, "--policy", "least-allocated")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("insufficient cpu", r.err_json["message"])
        self.assertIn("'nginx'", r.err_json["message"])
        big = self.write("big.json", world([{"name": "n", "capacity": {"cpu": 3, "memory": "2Gi"}}]))
        r = self.place(GSCH, "--state", big, "--policy", "least-allocated")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([(p["stage"], p["node"]) for p in r.json["placements"]], [("nginx", "n")])

    def test_file_without_workload_is_exit_2(self):
        p = self.write("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80}]\n")
        r = self.place(p, "--state", WORLD, "--policy", "least-allocated")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("no workload", r.err_json["message"])

    def test_unknown_kind_names_file_line_and_kind(self):
        p = self.write("w.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i}]\n"
                                 "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
        r = self.place(p, "--state", WORLD, "--policy", "least-allocated")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("w.yaml:8:", r.err_json["message"])
        self.assertIn("Widget", r.err_json["message"])
        big = self.write("big.json", world([{"name": "n", "capacity": {"cpu": 3, "memory": "2Gi"}}]))
        r = self.place(p, "--state", big, "--policy", "least-allocated", "--allow-unknown-kinds")
        self.assertEqual(r.rc, 0, r)

    def test_gs_msa_directory_places_each_stage_where_its_demand_fits(self):
        # Hand-computed (tests/data/manifests/world-msa.json): preprocess needs per replica
        # max(init 2 CPUs, 0.5 + 0.25 limit-as-request) = 2 CPUs and 1Gi + 64Mi, times 2 replicas:
        # 4 CPUs, 2176Mi -> only n-pre (n-small has 3.9 CPUs). inference needs 2 CPUs, 8Gi, 1 GPU
        # from its limits, accelerator=nvidia, tolerates gpu:NoSchedule -> only g1. postprocess
        # needs tier local|neighbor (required affinity) and tolerates nothing -> only n-small.
        for policy in ("least-allocated", "most-allocated"):
            r = self.place(MSA, "--state", WORLD, "--policy", policy)
            self.assertEqual(r.rc, 0, r)
            got = {p["stage"]: p["node"] for p in r.json["placements"]}
            self.assertEqual(got, {"preprocess": "n-pre", "inference": "g1", "postprocess": "n-small"}, policy)

    def test_one_byte_less_memory_and_the_stage_fits_nowhere(self):
        with open(WORLD) as f:
            w = json.load(f)
        w["clusters"][0]["nodes"][1]["capacity"]["memory"] = 2176 * MiB - 1
        p = self.write("w.json", w)
        r = self.place(MSA, "--state", p, "--policy", "least-allocated", "--explain")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("stage 'preprocess'", r.err_json["message"])

    def test_json_list_and_yaml_stream_read_the_same(self):
        r1 = self.place(MSA, "--state", WORLD, "--policy", "least-allocated")
        r = self.run_gedge("svc", "render", MSA, "-o", "json")
        self.assertEqual(r.rc, 0, r)
        lst = self.write("list.json", {"apiVersion": "v1", "kind": "List", "items": r.json})
        r2 = self.place(lst, "--state", WORLD, "--policy", "least-allocated")
        self.assertEqual(r2.rc, 0, r2)
        self.assertEqual(r1.json["placements"], r2.json["placements"])

    def test_gsch_config_env_chooses_policy_and_clusters(self):
        w = {"clusters": [{"name": "c1", "nodes": [{"name": "a", "capacity": {"cpu": 8, "memory": "8Gi"}}]},
                          {"name": "c2", "nodes": [{"name": "b", "capacity": {"cpu": 8, "memory": "8Gi"}}]},
                          {"name": "c3", "nodes": [{"name": "c", "capacity": {"cpu": 8, "memory": "8Gi"}}]}],
             "latency_ms": {"intra_cluster": 0.5, "links": [{"a": "cam", "b": "c1", "ms": 9},
                                                            {"a": "cam", "b": "c2", "ms": 5},
                                                            {"a": "cam", "b": "c3", "ms": 1}]}}
        ws = self.write("w.json", w)
        gsch = json.dumps({"type": "global", "targetClusters": "[c2,[c1,c3]]", "priority": "GSelectedCluster"})
        pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: c\n      image: i\n"
               "      env:\n        - name: gschConfig\n          value: '" + gsch + "'\n")
        p = self.write("p.yaml", pod)
        r = self.place(p, "--state", ws, "--from", "cam")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["policy"], "select-clusters")
        self.assertEqual(r.json["placements"][0]["cluster"], "c2")

    def test_gs_scheduler_policy_names_and_cluster_lists(self):
        w = {"clusters": [{"name": "c1", "nodes": [{"name": "a", "capacity": {"cpu": 8, "memory": "8Gi"}}]},
                          {"name": "c2", "nodes": [{"name": "b", "capacity": {"cpu": 8, "memory": "8Gi"}}]},
                          {"name": "c3", "nodes": [{"name": "c", "capacity": {"cpu": 8, "memory": "8Gi"}}]}],
             "latency_ms": {"intra_cluster": 0.5, "links": [{"a": "cam", "b": "c1", "ms": 9},
                                                            {"a": "cam", "b": "c2", "ms": 5},
                                                            {"a": "cam", "b": "c3", "ms": 1}]}}
        ws = self.write("w.json", w)
        for form in ('["c1", ["c2", "c3"]]', "['c1', ['c2', 'c3']]", "[c1,[c2,c3]]"):
            r = self.place(GSCH, "--state", ws, "--policy", "GSelectedCluster", "--clusters", form, "--from", "cam")
            self.assertEqual(r.rc, 0, (form, r))
            self.assertEqual(r.json["placements"][0]["cluster"], "c1", form)
        r = self.place(GSCH, "--state", ws, "--policy", "GLowLatencyPriority", "--from", "cam")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual((r.json["policy"], r.json["placements"][0]["cluster"]), ("low-latency", "c3"))
        for name in ("GMostRequestedPriority", "GMostRequestPriority"):
            r = self.place(GSCH, "--state", ws, "--policy", name)
            self.assertEqual((r.rc, r.json["policy"]), (0, "least-allocated"), r)
        r = self.place(GSCH, "--state", ws, "--policy", "GSelectedCluster", "--clusters", "__import__('os')")
        self.assertEqual(r.rc, 2, r)

    def test_request_file_maps_gs_scheduler_options(self):
        w = {"clusters": [{"name": "c1", "nodes": [{"name": "a", "capacity": {"cpu": 8, "memory": "8Gi"}}]},
                          {"name": "c2", "nodes": [{"name": "b", "capacity": {"cpu": 8, "memory": "8Gi"}}]}],
             "latency_ms": {"intra_cluster": 0.5}}
        ws = self.write("w.json", w)
        req = self.write("req.json", {"scope": "global", "priority": "GSelectedCluster",
                                      "option": {"mode": "node", "parameters": {"select_cluster": "c2", "select_node": "b"}}})
        r = self.place(GSCH, "--state", ws, "--request", req)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual((r.json["policy"], r.json["placements"][0]["node"]), ("node", "b"))

    def test_submit_queues_manifests_and_refuses_files_without_workload(self):
        r = self.run_gedge("sched", "submit", MSA, "--state", WORLD, "--policy", "least-allocated", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        r = self.run_gedge("sched", "run", "--once", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        got = {p["stage"]: p["node"] for p in r.json[0]["placements"]["placements"]}
        self.assertEqual(got, {"preprocess": "n-pre", "inference": "g1", "postprocess": "n-small"})
        p = self.write("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80}]\n")
        r = self.run_gedge("sched", "submit", p, "--state", WORLD, "-o", "json")
        self.assertEqual(r.rc, 2, r)
        r = self.run_gedge("sched", "ls", "-o", "json")
        self.assertEqual(len(r.json), 1, r)


class ManifestRenderTest(GedgeTest):
    def test_render_passes_objects_through_with_namespace_and_label(self):
        r = self.run_gedge("svc", "render", MSA, "-o", "json")
        self.assertEqual(r.rc, 0, r)
        kinds = [(d["kind"], d["metadata"]["name"]) for d in r.json]
        self.assertEqual(kinds, [("PersistentVolume", "pv-nfs"), ("PersistentVolumeClaim", "pvc-nfs"),
                                 ("Deployment", "preprocess"), ("Deployment", "inference"),
                                 ("Deployment", "postprocess"), ("Service", "front")])
        for d in r.json:
            self.assertEqual(d["metadata"]["labels"]["app.kubernetes.io/managed-by"], "gedge")
            self.assertEqual("namespace" in d["metadata"], d["kind"] != "PersistentVolume")
        assert_valid_k8s(self, r.json)

    def test_every_manifest_input_renders_valid_objects(self):
        for f in ("gsch-service-pod.yaml", "multus-sriov.yaml", "gs-msa"):
            r = self.run_gedge("svc", "render", os.path.join(DATA, f), "-o", "json")
            self.assertEqual(r.rc, 0, (f, r))
            with self.subTest(f):
                assert_valid_k8s(self, r.json)

    def test_invalid_utf8_nul_and_duplicate_keys_are_exit_2(self):
        cases = {"utf8.yaml": b"name: w\ncontainers: [\xff]\n", "nul.yaml": b"name: w\x00\n",
                 "dup.yaml": b"apiVersion: v1\nkind: Pod\nkind: Pod\n"}
        for name, data in cases.items():
            p = os.path.join(self.tmp, name)
            with open(p, "wb") as f:
                f.write(data)
            for argv in (("svc", "render", p), ("sched", "place", p, "--state", WORLD)):
                r = self.run_gedge(*argv, "-o", "json")
                self.assertEqual(r.rc, 2, (name, argv, r))
                self.assertIn(name, r.err_json["message"])

    def test_out_of_range_memory_is_exit_2_never_a_negative_flag(self):
        p = os.path.join(self.tmp, "big.yaml")
        with open(p, "w") as f:
            f.write("name: w\ncontainers:\n  - image: i:1\n    resources:\n      limits: {memory: 99999999999Ei}\n")
        r = self.run_gedge("svc", "render", p, "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("out of range", r.err_json["message"])

    def test_quantities_parse_the_same_in_svc_and_sched(self):
        for q, ok in (("512K", False), ("1e9", True), ("1.5Gi", True), ("250m", True), ("512k", True)):
            p = os.path.join(self.tmp, "q.yaml")
            with open(p, "w") as f:
                f.write(f"name: w\ncontainers:\n  - image: i:1\n    resources:\n      requests: {{memory: '{q}'}}\n"
                        f"      limits: {{memory: '{q}'}}\n")
            r1 = self.run_gedge("svc", "render", p, "-o", "json")
            r2 = self.run_gedge("sched", "place", p, "--state", WORLD, "--policy", "least-allocated", "-o", "json")
            self.assertEqual(r1.rc == 0, ok, (q, r1))
            self.assertEqual(r2.rc != 2, ok, (q, r2))


if __name__ == "__main__":
    unittest.main()
