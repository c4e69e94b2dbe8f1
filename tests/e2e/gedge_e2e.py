"""Shared helpers for gedge end-to-end tests (Python 3 stdlib only).

Usage in a test file ``tests/e2e/test_<name>.py`` (add ``# needs: lab`` as one of the
first lines when the test uses the lab hosts)::

    from gedge_e2e import GedgeTest

    class DeviceTest(GedgeTest):
        def test_add(self):
            self.require_lab()                      # skipTest unless root and the lab is up
            h1 = self.lab_host("h1")                # dict from /run/gedge-lab/lab.json
            lab = self.lab()
            r = self.run_gedge("device", "add", "h1", "--host", h1["address"], "--port", h1["port"],
                               "--user", lab["user"], "--identity", lab["key"],
                               "--host-key", h1["host_key_fingerprint"], "-o", "json")
            self.assertEqual(r.rc, 0, r.stderr)    # self.add_device("h1") does exactly this
            out = self.ssh_host("h1", "cat", "/etc/hostname")   # check the real host's state
            rc, data, stdout, stderr = self.run_gedge("device", "ls", "-o", "json")  # tuple form
            self.assertEqual([d["name"] for d in data], ["h1"])

Every test gets its own temporary ``GEDGE_HOME`` (and XDG dirs) on which ``gedge init`` has
already run; it is deleted after the test.  ``self.run("device", "list")`` runs gedge (unittest's
own ``run(result)`` is still honoured: a call with a TestResult or no argument goes to unittest);
``run_gedge`` / ``gedge`` are the same runner under unambiguous names.

Environment: ``GEDGE_BIN`` (the built binary, set by ctest), ``GEDGE_SOURCE_DIR`` (the source
tree; defaults to two levels above this file).
"""

import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

GEDGE = os.environ.get("GEDGE_BIN", "")
SOURCE_DIR = os.environ.get(
    "GEDGE_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAB_SH = os.path.join(SOURCE_DIR, "tests", "lab", "lab.sh")
LAB_JSON = "/run/gedge-lab/lab.json"


class Result:
    """Outcome of a command: rc, stdout, stderr (str), json (parsed stdout or None),
    err_json (the last stderr line parsed as JSON, or None).

    Also unpacks as a tuple: ``rc, data, stdout, stderr = r``."""

    def __init__(self, argv, rc, stdout, stderr):
        self.argv, self.rc, self.stdout, self.stderr = argv, rc, stdout, stderr
        self.json = _parse_json(stdout)
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        self.err_json = _parse_json(lines[-1]) if lines else None

    def __iter__(self):
        return iter((self.rc, self.json, self.stdout, self.stderr))

    def __repr__(self):
        return (f"Result(argv={self.argv!r}, rc={self.rc}, stdout={self.stdout[-2000:]!r}, "
                f"stderr={self.stderr[-2000:]!r})")


def _parse_json(text):
    if not text or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def run_cmd(argv, input=None, timeout=120, env=None):
    """Run argv (no shell) and return a Result; a timeout gives rc 124 (never raises).
    stdin is `input` (str) or /dev/null."""
    try:
        p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                           env=env, stdin=subprocess.DEVNULL if input is None else None)
        return Result(argv, p.returncode, p.stdout, p.stderr)
    except subprocess.TimeoutExpired as e:
        def s(x):
            return x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
        return Result(argv, 124, s(e.stdout), s(e.stderr) + f"\n[timed out after {timeout}s]")


def start_registry(addr, root, add_cleanup, htpasswd_file=None):
    """docker-registry serving ROOT on ADDR ("HOST:PORT"; loopback or the lab bridge), with basic
    auth from HTPASSWD_FILE when given; `add_cleanup` (a test's addCleanup or addClassCleanup)
    stops it. Returns once its /v2/ answers (a 401 included)."""
    import urllib.error
    import urllib.request
    cfg = os.path.join(root, "registry.yml")
    os.makedirs(root, exist_ok=True)
    with open(cfg, "w") as f:
        f.write(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\nhttp:\n  addr: {addr}\n")
        if htpasswd_file:
            f.write(f"auth:\n  htpasswd:\n    realm: gedge\n    path: {htpasswd_file}\n")
    log = open(os.path.join(root, "registry.log"), "w")
    add_cleanup(log.close)
    p = subprocess.Popen(["docker-registry", "serve", cfg], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    add_cleanup(p.wait)
    add_cleanup(p.terminate)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://{addr}/v2/", timeout=1)
            return
        except urllib.error.HTTPError:
            return  # 401: up, asking for credentials
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"docker-registry on {addr} did not start")


def load_lab():
    """The lab description (/run/gedge-lab/lab.json) as a dict, or None when the lab is not up."""
    try:
        with open(LAB_JSON) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_known_hosts(path, lab=None):
    """Write an OpenSSH known_hosts file for every lab host, keyed by host name (used with
    HostKeyAlias) and by address / [address]:port, from the host keys recorded in lab.json."""
    lab = lab or load_lab()
    with open(path, "w") as f:
        for h in lab["hosts"]:
            where = h["address"] if h["port"] == 22 else f"[{h['address']}]:{h['port']}"
            f.write(f"{h['name']},{where} {h['host_key']}\n")
    return path


def ssh_argv(host, lab, known_hosts, connect_timeout=5, extra_opts=()):
    """argv prefix for the system ssh client to a lab host (dict), strict host-key checking."""
    return ["ssh", "-i", lab["key"], "-p", str(host["port"]),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", f"HostKeyAlias={host['name']}",
            "-o", f"ConnectTimeout={connect_timeout}", "-o", "LogLevel=ERROR",
            *extra_opts, f"{lab['user']}@{host['address']}"]


SSHD = "/usr/sbin/sshd"


class LocalSshdMixin:
    """sshd processes on 127.0.0.1 for a GedgeTest that needs no lab (root and /usr/sbin/sshd):
    keys and configs live in the test's directory; every sshd is stopped at cleanup."""

    def setup_sshd_dir(self):
        if os.geteuid() != 0 or not os.access(SSHD, os.X_OK):
            self.skipTest("needs root and /usr/sbin/sshd")
        self.d = os.path.join(self.tmp, "sshd")
        os.makedirs(self.d, mode=0o700)
        os.makedirs("/run/sshd", exist_ok=True)

    def p(self, name):
        return os.path.join(self.d, name)

    def keygen(self, *args):
        r = run_cmd(["ssh-keygen", "-q", *args])
        self.assertEqual(r.rc, 0, r)

    def pub(self, name):
        with open(self.p(name) + ".pub") as f:
            return " ".join(f.read().split()[:2])

    def fingerprint(self, name):
        return run_cmd(["ssh-keygen", "-lf", self.p(name) + ".pub"]).stdout.split()[1]

    def start_sshd(self, name, authorized, port=None, extra_conf=""):
        """An sshd on 127.0.0.1:PORT (a free one unless given) with host key NAME_host (made when
        missing) and AuthorizedKeysFile AUTHORIZED (in the test's directory); EXTRA_CONF is added
        to its config. Returns (port, process)."""
        key = self.p(name + "_host")
        if not os.path.exists(key):
            self.keygen("-t", "ed25519", "-N", "", "-f", key)
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        conf = self.p(name + ".conf")
        with open(conf, "w") as f:
            f.write(f"ListenAddress 127.0.0.1:{port}\nHostKey {key}\n{extra_conf}PidFile {self.p(name + '.pid')}\n"
                    "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                    f"StrictModes no\nAuthorizedKeysFile {self.p(authorized)}\n")
        log = open(self.p(name + ".log"), "a")
        self.addCleanup(log.close)
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", conf], stdout=subprocess.DEVNULL, stderr=log)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.terminate)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        return port, proc


class GedgeTest(unittest.TestCase):
    """Base class: per-test GEDGE_HOME with `gedge init` done, gedge runner, lab helpers.

    Set ``INIT_HOME = False`` in a subclass that does not need the gedge binary at all."""

    INIT_HOME = True

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gedge-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.home = os.path.join(self.tmp, "home")
        self.env = dict(os.environ)
        self.env.update(GEDGE_HOME=self.home,
                        XDG_CONFIG_HOME=os.path.join(self.tmp, "config"),
                        XDG_DATA_HOME=os.path.join(self.tmp, "data"),
                        NO_COLOR="1")
        self._lab = None
        if self.INIT_HOME:
            self.assertTrue(GEDGE and os.access(GEDGE, os.X_OK),
                            f"GEDGE_BIN must name the built gedge binary (got {GEDGE!r})")
            r = self.run_gedge("init")
            self.assertEqual(r.rc, 0, f"gedge init failed: {r}")

    # --- gedge -------------------------------------------------------------------------
    def run_gedge(self, *args, input=None, timeout=120, env=None):
        """Run `gedge ARGS...` with this test's GEDGE_HOME; returns a Result."""
        e = dict(self.env)
        if env:
            e.update(env)
        return run_cmd([GEDGE, *map(str, args)], input=input, timeout=timeout, env=e)

    gedge = run_gedge

    def run_on_tty(self, *args, timeout=300):
        """Run `gedge ARGS...` with stdin, stdout and stderr on a pseudo-terminal; returns (rc, the
        terminal's text). Progress is drawn only there."""
        import pty
        import select
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(GEDGE, [GEDGE, *map(str, args)], self.env)
        out = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 5)
            if not r:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.close(fd)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), out.decode(errors="replace")

    @staticmethod
    def progress_draws(text, prefix):
        """The progress lines a terminal run drew that start with PREFIX, in order."""
        return [d[3:].rstrip("\n") for d in text.replace("\r\n", "\n").split("\r")
                if d.startswith("\x1b[K" + prefix)]

    def run(self, *args, **kw):
        """`self.run("device", "add", ...)` runs gedge (see run_gedge); unittest's own
        `run(result=None)` is dispatched to TestCase.run."""
        if not args or args[0] is None or isinstance(args[0], unittest.TestResult):
            return super().run(*args, **kw)
        return self.run_gedge(*args, **kw)

    def gedge_json(self, *args, **kw):
        """Run `gedge ARGS... -o json`, assert rc 0 and JSON stdout; return the parsed JSON."""
        r = self.run_gedge(*args, "-o", "json", **kw)
        self.assertEqual(r.rc, 0, r)
        self.assertIsNotNone(r.json, f"stdout is not JSON: {r}")
        return r.json

    # --- preconditions -----------------------------------------------------------------
    def require_root(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (the lab uses network namespaces, sshd and podman)")

    def require_lab(self):
        self.require_root()
        if self.lab() is None or not os.path.exists("/sys/class/net/gedgebr0"):
            self.skipTest(f"lab is not up ({LAB_JSON} or bridge gedgebr0 missing): "
                          f"run `{LAB_SH} up`")

    # --- lab ---------------------------------------------------------------------------
    def lab(self, reload=False):
        """The lab description (dict from lab.json) or None; reloaded after lab_sh()."""
        if self._lab is None or reload:
            self._lab = load_lab()
        return self._lab

    def lab_hosts(self, kind=None, include_reserved=False):
        """Lab hosts (lab.json dicts), optionally of one kind ("netns", "full", "far"), without
        the fault hosts (h7, h8) and the password-only host (h6) unless include_reserved."""
        return [h for h in self.lab()["hosts"]
                if (kind is None or h["kind"] == kind)
                and (include_reserved or not (h["reserved_for_faults"] or h["bootstrap_only"]))]

    def lab_host(self, name):
        """The lab.json entry of host NAME (keys: name address port kind host_key
        host_key_fingerprint host_key_type bootstrap_only reserved_for_faults)."""
        for h in self.lab()["hosts"]:
            if h["name"] == name:
                return h
        raise KeyError(f"no lab host {name!r}")

    def add_device(self, name):
        """`gedge device add` for lab host NAME with the lab key and its pinned host key."""
        h = self.lab_host(name)
        lab = self.lab()
        r = self.run_gedge("device", "add", name, "--host", h["address"], "--port", h["port"],
                           "--user", lab["user"], "--identity", lab["key"],
                           "--host-key", h["host_key_fingerprint"], "-o", "json")
        self.assertEqual(r.rc, 0, r)

    def lab_password(self):
        """The lab's password for user gedgetest (root-only file named in lab.json)."""
        with open(self.lab()["password_file"]) as f:
            return f.read().strip()

    def lab_sh(self, *args, timeout=300):
        """Run tests/lab/lab.sh ARGS...; returns a Result and reloads lab.json."""
        r = run_cmd([LAB_SH, *map(str, args)], timeout=timeout)
        self._lab = None
        return r

    def known_hosts(self):
        """Path of a known_hosts file built from the current lab.json (rebuilt each call)."""
        return write_known_hosts(os.path.join(self.tmp, "known_hosts"), self.lab(reload=True))

    def ssh_host(self, host, *argv, input=None, timeout=60, connect_timeout=5, check=True,
                 ssh_opts=()):
        """Run a command on lab host HOST (name or lab.json dict) as the lab user with the lab
        key, verifying its host key against lab.json.  One argument is passed as a remote
        shell command line; several are quoted as an argv.  check=True asserts rc 0 and
        returns stdout; check=False returns the Result."""
        if isinstance(host, str):
            host = self.lab_host(host)
        lab = self.lab()
        remote = argv[0] if len(argv) == 1 else shlex.join(map(str, argv))
        cmd = ssh_argv(host, lab, self.known_hosts(), connect_timeout, ssh_opts) + ["--", remote]
        r = run_cmd(cmd, input=input, timeout=timeout)
        if not check:
            return r
        self.assertEqual(r.rc, 0, f"ssh {host['name']} {remote!r} failed: {r}")
        return r.stdout
