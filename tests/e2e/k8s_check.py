"""Validate Kubernetes objects in e2e tests with tests/k8s_validate (npm kubernetes-models).

    from k8s_check import assert_valid_k8s
    assert_valid_k8s(self, objects)            # list of dicts (or one dict)

Fails the test (never skips) when the validator is not installed: run scripts/install-deps.sh
or `npm ci --prefix tests/k8s_validate`.
"""

import json
import os
import shutil
import subprocess

from gedge_e2e import SOURCE_DIR

VALIDATOR_DIR = os.path.join(SOURCE_DIR, "tests", "k8s_validate")


def validate_k8s(objects, allow_unknown_kinds=False):
    """Returns (rc, stderr): 0 valid, 1 invalid, 2 unreadable or a kind without a schema."""
    node = shutil.which("node") or shutil.which("nodejs")
    if not node or not os.path.isdir(os.path.join(VALIDATOR_DIR, "node_modules", "kubernetes-models")):
        return 3, ("tests/k8s_validate is not installed: run scripts/install-deps.sh "
                   "(or npm ci --prefix tests/k8s_validate)")
    argv = [node, os.path.join(VALIDATOR_DIR, "validate.js")]
    if allow_unknown_kinds:
        argv.append("--allow-unknown-kinds")
    p = subprocess.run(argv, input=json.dumps(objects), capture_output=True, text=True, timeout=120)
    return p.returncode, p.stderr


def assert_valid_k8s(test, objects, allow_unknown_kinds=False):
    rc, err = validate_k8s(objects, allow_unknown_kinds)
    test.assertEqual(rc, 0, f"Kubernetes schema validation failed:\n{err}")
