"""The cluster playbooks: ansible-lint (production profile) and ansible-playbook --syntax-check
for every profile, and the callback plugin loads. Needs no lab (ansible-core and ansible-lint,
Debian packages)."""

import os
import shutil
import subprocess
import tempfile
import unittest

SOURCE_DIR = os.environ.get(
    "GEDGE_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOKS = os.path.join(SOURCE_DIR, "playbooks")
PROFILES = ("containers.yml", "k3s.yml", "k8s.yml")
# Every playbook gedge runs: the profiles and the Prometheus server (--prometheus-on).
PLAYBOOK_FILES = PROFILES + ("prometheus.yml",)


def clean_env(tmp):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_ROLES_PATH=os.path.join(PLAYBOOKS, "roles"),
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(PLAYBOOKS, "callback_plugins"),
               ANSIBLE_LOCAL_TEMP=tmp, ANSIBLE_NOCOLOR="1", HOME=os.environ.get("HOME", tmp))
    return env


class PlaybookTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gedge-pb-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_ansible_lint(self):
        lint = shutil.which("ansible-lint")
        if not lint:
            self.skipTest("ansible-lint not installed (Debian package ansible-lint)")
        # The exact command CI runs:
        cmd = [lint, "--offline", "--profile", "production", "--nocolor", *PLAYBOOK_FILES]
        p = subprocess.run(cmd, cwd=PLAYBOOKS, capture_output=True, text=True, timeout=300,
                           env=clean_env(self.tmp))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_syntax_check_every_profile(self):
        if not shutil.which("ansible-playbook"):
            self.skipTest("ansible-playbook not installed (Debian package ansible-core)")
        inv = os.path.join(self.tmp, "inventory.yml")
        with open(inv, "w") as f:
            f.write("all:\n  children:\n    gedge_members:\n      hosts:\n        a: {}\n")
        for pb in PLAYBOOK_FILES:
            p = subprocess.run(["ansible-playbook", "-i", inv, "--syntax-check", pb], cwd=PLAYBOOKS,
                               capture_output=True, text=True, timeout=120, env=clean_env(self.tmp))
            self.assertEqual(p.returncode, 0, f"{pb}: {p.stdout}{p.stderr}")

    def test_callback_plugin_is_a_stdout_callback(self):
        if not shutil.which("ansible-doc"):
            self.skipTest("ansible-doc not installed")
        p = subprocess.run(["ansible-doc", "-t", "callback", "gedge_events"], capture_output=True,
                           text=True, timeout=120, env=clean_env(self.tmp))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("TYPE: stdout", p.stdout)
        self.assertIn("GEDGE_EVENTS_FD", p.stdout)


if __name__ == "__main__":
    unittest.main()
