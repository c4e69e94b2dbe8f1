"""The cluster playbooks: ansible-lint (production profile) and ansible-playbook --syntax-check
for every profile, the callback plugin loads, and the registry smoke run against real registries on
loopback. Needs no lab (ansible-core and ansible-lint, Debian packages; podman and docker-registry
for the smoke run)."""

import base64
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import unittest
import warnings

from gedge_e2e import start_registry

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


class SmokeRoleTest(unittest.TestCase):
    """The smoke_test role without --smoke-image, run for real on this machine (connection local)
    against docker-registry on loopback: what any registry offers is checked as podman sees it
    (registries.conf, auth file). The smallest catalog image is pulled; an empty catalog, or one
    refused for want of credentials, still passes; rejected credentials and a registry that does
    not answer fail, saying so. podman's configuration and store are temporary files."""

    PORTS = {"open": 15991, "auth": 15992, "empty": 15993, "down": 15994}

    @classmethod
    def setUpClass(cls):
        for tool in ("ansible-playbook", "podman", "docker-registry"):
            if not shutil.which(tool):
                raise unittest.SkipTest(f"{tool} not installed")
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (podman with a temporary store)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import crypt  # bcrypt for the registry's htpasswd (Python < 3.13)
            htpasswd = "u:" + crypt.crypt("pw", crypt.mksalt(crypt.METHOD_BLOWFISH))
        except (ImportError, ValueError, TypeError):
            raise unittest.SkipTest("no bcrypt in Python's crypt module")
        cls.tmp = t = tempfile.mkdtemp(prefix="gedge-smoke-")
        cls.addClassCleanup(shutil.rmtree, t, True)
        with open(f"{t}/registries.conf", "w") as f:
            for port in cls.PORTS.values():
                f.write(f'[[registry]]\nlocation = "127.0.0.1:{port}"\ninsecure = true\n')
        with open(f"{t}/storage.conf", "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{t}/store"\nrunroot = "{t}/run"\n')
        cls.auth = f"{t}/auth.json"
        cls.set_auth({})
        cls.env = clean_env(t)
        cls.env.update(CONTAINERS_REGISTRIES_CONF=f"{t}/registries.conf", CONTAINERS_STORAGE_CONF=f"{t}/storage.conf",
                       REGISTRY_AUTH_FILE=cls.auth, ANSIBLE_LOCALHOST_WARNING="false")
        with open(f"{t}/htpasswd", "w") as f:
            f.write(htpasswd + "\n")
        for name in ("open", "auth", "empty"):
            cls.start_registry(name)
        # A tiny image and a bigger one (256 KiB that gzip cannot shrink). The open registry lists
        # the bigger one first (aa/), the tiny one last (zz/); the one that asks for credentials
        # holds the tiny one.
        for name, data in (("tiny", b"gedge smoke\n"), ("big", os.urandom(256 * 1024))):
            layer = f"{t}/{name}.tar"
            with tarfile.open(layer, "w") as tar:
                info = tarfile.TarInfo("hello.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            cls.podman("import", layer, f"localhost/{name}:1")
        for image, repo in (("tiny", "zz/last:3"), ("big", "aa/first:2"), ("big", "mm/middle:latest")):
            cls.podman("push", "--quiet", f"localhost/{image}:1", f"127.0.0.1:{cls.PORTS['open']}/{repo}")
        cls.set_auth({"u": "u", "pw": "pw", "port": cls.PORTS["auth"]})
        cls.podman("push", "--quiet", "localhost/tiny:1", f"127.0.0.1:{cls.PORTS['auth']}/bb/only:latest")
        cls.podman("rmi", "localhost/tiny:1", "localhost/big:1")

    def setUp(self):
        self.set_auth({})

    @classmethod
    def podman(cls, *args):
        p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, env=cls.env)
        if p.returncode != 0:
            raise AssertionError(f"podman {args}: {p.stderr}")
        return p.stdout

    @classmethod
    def set_auth(cls, creds):
        auths = {}
        if creds:
            token = base64.b64encode(f"{creds['u']}:{creds['pw']}".encode()).decode()
            auths[f"127.0.0.1:{creds['port']}"] = {"auth": token}
        with open(cls.auth, "w") as f:
            json.dump({"auths": auths}, f)

    @classmethod
    def start_registry(cls, name):
        start_registry(f"127.0.0.1:{cls.PORTS[name]}", f"{cls.tmp}/reg-{name}", cls.addClassCleanup,
                       f"{cls.tmp}/htpasswd" if name == "auth" else None)

    def smoke(self, name):
        pb = f"{self.tmp}/smoke.yml"
        with open(pb, "w") as f:
            f.write("- name: Smoke\n  hosts: localhost\n  connection: local\n  gather_facts: false\n"
                    "  roles:\n    - role: smoke_test\n")
        p = subprocess.run(["ansible-playbook", "-i", "localhost,", pb, "-e", f"gedge_registry=127.0.0.1:{self.PORTS[name]}"],
                           capture_output=True, text=True, timeout=300, env=self.env)
        return p.returncode, p.stdout + p.stderr

    def images(self):
        return set(self.podman("images", "--format", "{{.Repository}}:{{.Tag}}").split())

    def test_the_smallest_catalog_image_is_pulled(self):
        # The catalog lists aa/first, mm/middle, zz/last; the manifests say zz/last is the smallest.
        rc, out = self.smoke("open")
        self.assertEqual(rc, 0, out)
        port = self.PORTS['open']
        pulled = {i for i in self.images() if f"127.0.0.1:{port}/" in i}
        self.assertEqual(pulled, {f"127.0.0.1:{port}/zz/last:3"}, out)
        # Again: nothing to pull, nothing changed.
        rc, out = self.smoke("open")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"changed=0\b")

    def test_an_empty_catalog_passes(self):
        rc, out = self.smoke("empty")
        self.assertEqual(rc, 0, out)
        self.assertEqual({i for i in self.images() if str(self.PORTS["empty"]) in i}, set())

    def test_credentials_as_configured(self):
        port = self.PORTS["auth"]
        # None configured: the 401 is the registry answering; its catalog is not read.
        rc, out = self.smoke("auth")
        self.assertEqual(rc, 0, out)
        self.assertNotIn(f"127.0.0.1:{port}/bb/only:latest", self.images())
        # Valid ones: the catalog is read with them and its image pulled.
        self.set_auth({"u": "u", "pw": "pw", "port": port})
        rc, out = self.smoke("auth")
        self.assertEqual(rc, 0, out)
        self.assertIn(f"127.0.0.1:{port}/bb/only:latest", self.images())
        # Rejected ones fail, saying so.
        self.set_auth({"u": "u", "pw": "wrong", "port": port})
        rc, out = self.smoke("auth")
        self.assertNotEqual(rc, 0, out)
        self.assertIn(f"the registry 127.0.0.1:{port} rejects the device's credentials", out)

    def test_a_registry_that_does_not_answer_fails(self):
        rc, out = self.smoke("down")
        self.assertNotEqual(rc, 0, out)
        self.assertIn(f"the device cannot reach 127.0.0.1:{self.PORTS['down']}/v2/", out)


if __name__ == "__main__":
    unittest.main()
