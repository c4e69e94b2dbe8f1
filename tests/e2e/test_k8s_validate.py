"""The Kubernetes schema validator the tests rely on (tests/k8s_validate) really rejects invalid
objects: a validator that passed everything would make every 'renders valid objects' test empty."""
import os
import unittest

import yaml

from gedge_e2e import SOURCE_DIR
from k8s_check import validate_k8s

GOLDEN = os.path.join(SOURCE_DIR, "tests", "golden", "svc")


def deployment(**container):
    c = {"name": "a", "image": "busybox:1"}
    c.update(container)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [c]}}}}


class K8sValidateTest(unittest.TestCase):
    def test_valid_objects_pass(self):
        rc, err = validate_k8s([deployment(resources={"limits": {"cpu": "500m", "memory": "1.5Gi"}})])
        self.assertEqual(rc, 0, err)

    def test_bad_quantity_type_and_missing_field_fail(self):
        rc, err = validate_k8s([deployment(resources={"limits": {"cpu": "1x"}})])
        self.assertEqual(rc, 1, err)
        self.assertIn("quantity", err)
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"ports": [{"port": "eighty"}]}}
        rc, err = validate_k8s([svc])
        self.assertEqual(rc, 1, err)
        self.assertIn("Service/s", err)
        rc, err = validate_k8s([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}])
        self.assertEqual(rc, 1, err)

    def test_unknown_kind_needs_the_flag_and_nad_is_checked(self):
        cr = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
        self.assertEqual(validate_k8s([cr])[0], 2)
        self.assertEqual(validate_k8s([cr], allow_unknown_kinds=True)[0], 0)
        nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
               "metadata": {"name": "cams"}, "spec": {"config": '{"cniVersion": "0.3.1", "type": "macvlan"}'}}
        self.assertEqual(validate_k8s([nad])[0], 0)
        nad["spec"]["config"] = "{not json"
        self.assertEqual(validate_k8s([nad])[0], 1)

    def test_vpa_is_checked_against_its_crd_schema(self):
        vpa = {"apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler", "metadata": {"name": "v"},
               "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                        "updatePolicy": {"updateMode": "Recreate"}}}
        self.assertEqual(validate_k8s([vpa])[0], 0)
        for bad, word in ((("updatePolicy", {"updateMode": "auto"}), "updateMode"),
                          (("targetRef", {"kind": "Deployment"}), "targetRef.name"),
                          (("resourcePolicy", {"containerPolicies": [{"maxAllowed": {"cpu": "2 cores"}}]}), "quantity"),
                          (("updatePolciy", {}), "updatePolciy")):
            doc = {**vpa, "spec": {**vpa["spec"], bad[0]: bad[1]}}
            rc, err = validate_k8s([doc])
            self.assertEqual(rc, 1, (bad, err))
            self.assertIn(word, err)

    def test_committed_golden_renders_are_valid(self):
        manifests = os.path.join(os.path.dirname(GOLDEN), "manifests")
        files = [os.path.join(GOLDEN, n) for n in sorted(os.listdir(GOLDEN))]
        files += [os.path.join(manifests, n) for n in sorted(os.listdir(manifests))]
        for name in files:
            if not name.endswith(".out.yaml"):
                continue
            with open(name) as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
            with self.subTest(name):
                rc, err = validate_k8s(docs)
                self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    unittest.main()
