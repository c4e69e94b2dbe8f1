"""gedge runtime end to end, on this machine: a realistic tree (venv-like env with a script and a
config holding the build prefix, a shared library and a program built here with the prefix
compiled in, a fake CUDA dir with a real-format version.json) is packed, verified, pushed into a
directory, and the program is run from the bundle mounted at its prefix in a private mount
namespace using the env wiring from `runtime mounts`; then the bad-input and fault cases."""

import hashlib
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import tempfile
import time
import unittest

from gedge_e2e import GEDGE, GedgeTest

GREET_LIB = r"""
#include <stdio.h>
extern "C" const char* greet_config_path() { return "@PREFIX@/etc/greeting.conf"; }
"""

GREET_MAIN = r"""
#include <stdio.h>
extern "C" const char* greet_config_path();
int main() {
  const char* p = greet_config_path();
  FILE* f = fopen(p, "r");
  if (!f) { printf("cannot open %s\n", p); return 3; }
  char buf[256] = {0};
  fgets(buf, sizeof buf, f);
  printf("config=%s line=%s", p, buf);
  return 0;
}
"""

VERSION_JSON = {
    "cuda": {"name": "CUDA SDK", "version": "12.2.2"},
    "cuda_cudart": {"name": "CUDA Runtime (cudart)", "version": "12.2.140"},
    "cuda_nvcc": {"name": "CUDA NVCC", "version": "12.2.140"},
}


def build_tree(base):
    """Builds env/ and cuda/ under base; returns (env, cuda)."""
    env = os.path.join(base, "env")
    cuda = os.path.join(base, "cuda")
    for d in ("bin", "lib", "etc", "lib/python3.11/site-packages", "empty"):
        os.makedirs(os.path.join(env, d), exist_ok=True)
    with open(os.path.join(env, "pyvenv.cfg"), "w") as f:
        f.write(f"home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n")
    script = os.path.join(env, "bin", "hello")
    with open(script, "w") as f:
        f.write(f"#!{env}/bin/sh\necho hello from {env}\n")
    os.chmod(script, 0o755)
    with open(os.path.join(env, "etc", "greeting.conf"), "w") as f:
        f.write(f"prefix={env}\n")
    src = os.path.join(base, "build")
    os.makedirs(src)
    with open(os.path.join(src, "greet.cpp"), "w") as f:
        f.write(GREET_LIB.replace("@PREFIX@", env))
    with open(os.path.join(src, "main.cpp"), "w") as f:
        f.write(GREET_MAIN)
    lib = os.path.join(env, "lib", "libgreet.so")
    subprocess.run(["g++", "-shared", "-fPIC", "-o", lib, os.path.join(src, "greet.cpp")], check=True)
    prog = os.path.join(env, "bin", "greet")
    # The ELF interpreter lives in the bundle too, so the program runs in an image without libc.
    subprocess.run(["g++", "-o", prog, os.path.join(src, "main.cpp"), "-L", os.path.join(env, "lib"),
                    "-lgreet", "-Wl,--as-needed", f"-Wl,--dynamic-linker={env}/lib/ld-linux-x86-64.so.2"],
                   check=True)
    ldd = subprocess.run(["ldd", prog], capture_output=True, text=True,
                         env=dict(os.environ, LD_LIBRARY_PATH=os.path.join(env, "lib"))).stdout
    for line in ldd.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/") and not path.startswith(env) and os.path.exists(path):
            shutil.copy2(os.path.realpath(path), os.path.join(env, "lib", os.path.basename(path)))
    real_ld = "/lib64/ld-linux-x86-64.so.2"
    shutil.copy2(os.path.realpath(real_ld), os.path.join(env, "lib", "ld-linux-x86-64.so.2"))
    # links: a relative one, an absolute one into the tree (relocated), one leaving it
    os.symlink("libgreet.so", os.path.join(env, "lib", "libgreet.so.1"))
    os.symlink(os.path.join(env, "etc", "greeting.conf"), os.path.join(env, "etc", "abs-link"))
    os.symlink("/etc/hostname", os.path.join(env, "etc", "outside"))
    os.link(os.path.join(env, "etc", "greeting.conf"), os.path.join(env, "etc", "hard.conf"))
    os.makedirs(os.path.join(cuda, "bin"))
    os.makedirs(os.path.join(cuda, "lib64"))
    with open(os.path.join(cuda, "version.json"), "w") as f:
        json.dump(VERSION_JSON, f, indent=3)
    with open(os.path.join(cuda, "lib64", "libcudart.so.12"), "wb") as f:
        f.write(os.urandom(3 << 20))
    return env, cuda


def run_in_bundle(bundle_dir, prefix, mounts_json, argv):
    """Runs argv with the bundle bind-mounted at its prefix in a private mount namespace
    (a tmpfs over /opt, so the host is untouched), using the env from `runtime mounts -o json`."""
    script = ("set -e; mount --make-rprivate /; mount -t tmpfs gedge-test /opt; "
              'mkdir -p "$1"; mount --bind -o ro "$2" "$1"; shift 2; exec env -i "$@"')
    env_args = [f"{k}={v}" for k, v in mounts_json["env"].items()]
    return subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", prefix, bundle_dir,
                           *env_args, *argv], capture_output=True, text=True, timeout=60)


class RuntimeTest(GedgeTest):
    def setUp(self):
        super().setUp()
        self.src = os.path.join(self.tmp, "src")
        os.makedirs(self.src)

    def pack(self, *args, expect=0):
        r = self.run_gedge("runtime", "pack", *args, "-o", "json")
        self.assertEqual(r.rc, expect, r)
        return r

    def test_pack_push_run(self):
        env, cuda = build_tree(self.src)
        r = self.pack("--name", "demo", "--component", f"env={env}", "--component", f"cuda={cuda}", "-j", "2")
        j = r.json
        for k in ("id", "name", "files", "bytes_read", "bytes_stored", "dedupe_ratio"):
            self.assertIn(k, j)
        self.assertEqual(j["name"], "demo")
        self.assertEqual(j["versions"]["cuda"], "12.2.2")
        self.assertEqual(j["versions"]["python"], "3.11.2")
        self.assertEqual(j["requires"]["cuda_driver_min"], "535.54.03")
        self.assertIn("env/bin/hello", j["relocated"])
        self.assertIn("env/etc/greeting.conf", j["relocated"])
        self.assertIn("env/lib/libgreet.so", j["relocated"])
        self.assertIn("env/bin/greet", j["relocated"])
        self.assertEqual(len(j["outside_links"]), 1)
        self.assertGreater(j["bytes_stored"], 0)
        self.assertEqual(j["env"]["PATH"], ["/opt/gedge/rt/demo/env/bin", "/opt/gedge/rt/demo/cuda/bin"])
        self.assertIn("/opt/gedge/rt/demo/env/lib", j["env"]["LD_LIBRARY_PATH"])
        self.assertEqual(j["env"]["CUDA_HOME"], "/opt/gedge/rt/demo/cuda")
        chunks_dir = os.path.join(self.home, "runtimes", "chunks")
        stored = sum(len(fs) for _, _, fs in os.walk(chunks_dir))
        self.assertEqual(stored, j["chunks"])

        # same input -> same id, nothing new stored
        again = self.pack("--name", "demo", "--component", f"env={env}", "--component", f"cuda={cuda}").json
        self.assertEqual(again["id"], j["id"])
        self.assertEqual(again["bytes_stored"], 0)

        ls = self.gedge_json("runtime", "ls")
        self.assertEqual([b["id"] for b in ls], [j["id"]])
        show = self.gedge_json("runtime", "show", j["id"][:10])
        self.assertEqual(show["versions"]["cuda"], "12.2.2")
        v = self.gedge_json("runtime", "verify", "demo")
        self.assertTrue(v["ok"])

        target = os.path.join(self.tmp, "export")
        p = self.gedge_json("runtime", "push", "demo", "--to", target)["targets"][0]
        self.assertEqual(p["state"], "created")
        self.assertEqual(p["chunks_sent"], j["chunks"])
        bundle = os.path.join(target, j["id"])
        with open(os.path.join(bundle, "env", "bin", "hello")) as f:
            self.assertEqual(f.readline(), "#!/opt/gedge/rt/demo/env/bin/sh\n")
        self.assertEqual(os.readlink(os.path.join(bundle, "env", "etc", "abs-link")),
                         "/opt/gedge/rt/demo/env/etc/greeting.conf")
        self.assertEqual(os.readlink(os.path.join(bundle, "env", "etc", "outside")), "/etc/hostname")
        self.assertTrue(os.path.isdir(os.path.join(bundle, "env", "empty")))
        self.assertEqual(os.stat(os.path.join(bundle, "env", "bin", "greet")).st_mode & 0o777, 0o555)  # read-only
        st1 = os.stat(os.path.join(bundle, "env", "etc", "greeting.conf"))
        st2 = os.stat(os.path.join(bundle, "env", "etc", "hard.conf"))
        self.assertEqual(st1.st_ino, st2.st_ino)
        with open(os.path.join(bundle, "env", "lib", "libgreet.so"), "rb") as f:
            data = f.read()
        self.assertNotIn(env.encode(), data)
        self.assertIn(b"/opt/gedge/rt/demo/env/etc/greeting.conf\0", data)

        p2 = self.gedge_json("runtime", "push", "demo", "--to", target)["targets"][0]
        self.assertEqual((p2["state"], p2["chunks_sent"], p2["bytes_sent"]), ("verified", 0, 0))

        mounts = self.gedge_json("runtime", "mounts", "demo", "--root", target)
        self.assertEqual(mounts["mount_path"], "/opt/gedge/rt/demo")
        self.assertEqual(mounts["host_path"], bundle)
        podman = self.run_gedge("runtime", "mounts", "demo", "--root", target, "-o", "podman")
        self.assertEqual(podman.rc, 0, podman)
        words = shlex.split(podman.stdout)
        self.assertEqual(words[:2], ["-v", f"{bundle}:/opt/gedge/rt/demo:ro"])
        self.assertIn("LD_LIBRARY_PATH=" + mounts["env"]["LD_LIBRARY_PATH"], words)
        k8s = self.run_gedge("runtime", "mounts", "demo", "-o", "k8s", "--pvc", "rt", "--sub-path", "runtimes")
        self.assertEqual(k8s.rc, 0, k8s)
        self.assertIn(f"subPath: runtimes/{j['id']}", k8s.stdout)
        sh = self.run_gedge("runtime", "mounts", "demo", "-o", "sh")
        self.assertIn("export PATH=/opt/gedge/rt/demo/env/bin:/opt/gedge/rt/demo/cuda/bin${PATH:+:$PATH}", sh.stdout)

        if os.geteuid() == 0 and shutil.which("unshare"):
            out = run_in_bundle(bundle, "/opt/gedge/rt/demo", mounts, ["greet"])
            self.assertEqual(out.returncode, 0, out)
            self.assertEqual(out.stdout, "config=/opt/gedge/rt/demo/env/etc/greeting.conf "
                                         "line=prefix=/opt/gedge/rt/demo/env\n")

        # a corrupted file on the target is found by verify --to and repaired by the next push
        conf = os.path.join(bundle, "env", "etc", "greeting.conf")
        os.chmod(conf, 0o644)  # files arrive read-only
        with open(conf, "w") as f:
            f.write("tampered\n")
        bad = self.run_gedge("runtime", "verify", "demo", "--to", target, "-o", "json")
        self.assertEqual(bad.rc, 1, bad)
        self.assertIn("env/etc/greeting.conf", bad.json["bad_files"])
        fix = self.gedge_json("runtime", "push", "demo", "--to", target)["targets"][0]
        self.assertEqual(fix["state"], "repaired")
        with open(conf) as f:
            self.assertEqual(f.read(), "prefix=/opt/gedge/rt/demo/env\n")

    def test_v2_pushes_only_changed_chunks(self):
        env, cuda = build_tree(self.src)
        v1 = self.pack("--name", "app", "--component", f"env={env}", "--component", f"cuda={cuda}").json
        target = os.path.join(self.tmp, "export")
        p1 = self.gedge_json("runtime", "push", v1["id"], "--to", target)["targets"][0]
        with open(os.path.join(env, "etc", "greeting.conf"), "a") as f:
            f.write("changed=1\n")
        v2 = self.pack("--name", "app", "--component", f"env={env}", "--component", f"cuda={cuda}").json
        self.assertNotEqual(v1["id"], v2["id"])
        self.assertEqual(v2["chunks_new"], 1)  # the file and its hardlink share one chunk
        store = os.path.join(target, ".gedge", "chunks")
        before = sum(len(fs) for _, _, fs in os.walk(store))
        p2 = self.gedge_json("runtime", "push", v2["id"], "--to", target)["targets"][0]
        after = sum(len(fs) for _, _, fs in os.walk(store))
        self.assertEqual(p2["chunks_sent"], 1)
        self.assertEqual(after - before, 1)
        self.assertEqual(p2["chunks_skipped"], v2["chunks"] - 1)
        self.assertLess(p2["bytes_sent"], p1["bytes_sent"] * 0.05)
        # unchanged files of v1 and v2 share inodes on the target
        a = os.stat(os.path.join(target, v1["id"], "cuda", "lib64", "libcudart.so.12"))
        b = os.stat(os.path.join(target, v2["id"], "cuda", "lib64", "libcudart.so.12"))
        self.assertEqual(a.st_ino, b.st_ino)
        # gc keeps every referenced chunk
        g = self.gedge_json("runtime", "gc")
        self.assertEqual(g["removed"], 0)
        self.assertTrue(self.gedge_json("runtime", "verify", v1["id"])["ok"])

    def test_resume_after_interrupted_push(self):
        env, cuda = build_tree(self.src)
        j = self.pack("--name", "r", "--component", f"env={env}", "--component", f"cuda={cuda}").json
        target = os.path.join(self.tmp, "export")
        self.gedge_json("runtime", "push", "r", "--to", target)
        # Simulate a push cut off after sending part of the chunks: no visible bundle, half a store.
        shutil.rmtree(os.path.join(target, j["id"]))
        shutil.rmtree(os.path.join(target, ".gedge", "objects"))
        names = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(target, ".gedge", "chunks")) for f in fs)
        removed = names[: len(names) // 2]
        for n in removed:
            os.unlink(n)
        p = self.gedge_json("runtime", "push", "r", "--to", target)["targets"][0]
        self.assertEqual(p["state"], "created")
        self.assertEqual(p["chunks_sent"], len(removed))
        self.assertEqual(p["chunks_skipped"], len(names) - len(removed))

    def test_corrupted_chunk_is_named(self):
        env, cuda = build_tree(self.src)
        j = self.pack("--name", "c", "--component", f"env={env}").json
        chunks_dir = os.path.join(self.home, "runtimes", "chunks")
        victim = sorted(f for _, _, fs in os.walk(chunks_dir) for f in fs)[0]
        with open(os.path.join(chunks_dir, victim[:2], victim), "r+b") as f:
            f.seek(6)
            f.write(b"\xff\xff\xff")
        r = self.run_gedge("runtime", "verify", j["id"], "-o", "json")
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.json["corrupted"], [victim])
        self.assertIn(victim[:16], r.err_json["message"])

    def test_bad_input(self):
        env = os.path.join(self.src, "env")
        os.makedirs(os.path.join(env, "bin"))
        with open(os.path.join(env, "bin", "ok"), "w") as f:
            f.write("ok\n")
        with self.subTest("fifo refused"):
            os.mkfifo(os.path.join(env, "pipe"))
            r = self.pack("--name", "x", "--component", f"env={env}", expect=2)
            self.assertIn("fifo", r.err_json["message"])
            os.unlink(os.path.join(env, "pipe"))
        with self.subTest("non-UTF-8 name refused, newline kept"):
            bad = os.path.join(env.encode(), b"bad\xffname")
            open(bad, "wb").close()
            r = self.pack("--name", "x", "--component", f"env={env}", expect=2)
            self.assertIn("bad\\xffname", r.err_json["message"])
            os.unlink(bad)
            with open(os.path.join(env, "new\nline"), "w") as f:
                f.write("x")
            j = self.pack("--name", "x", "--component", f"env={env}").json
            target = os.path.join(self.tmp, "t1")
            self.gedge_json("runtime", "push", j["id"], "--to", target)
            self.assertTrue(os.path.exists(os.path.join(target, j["id"], "env", "new\nline")))
        with self.subTest("symlink loop recorded, not followed"):
            os.symlink("loop-b", os.path.join(env, "loop-a"))
            os.symlink("loop-a", os.path.join(env, "loop-b"))
            j = self.pack("--name", "loop", "--component", f"env={env}").json
            self.assertEqual(j["symlinks"], 2)
        with self.subTest("prefix too long for a binary"):
            with open(os.path.join(env, "bin", "tool"), "wb") as f:
                f.write(b"\x7fELF\0" + env.encode() + b"/lib\0")
            r = self.pack("--name", "long", "--component", f"env={env}", "--prefix", "/opt/" + "p" * 200, expect=2)
            self.assertIn("env/bin/tool", r.err_json["message"])
            self.assertIn("shorter --prefix", r.err_json["hint"])
        with self.subTest("manifest from a newer gedge"):
            j = self.pack("--name", "newer", "--component", f"env={env}").json
            db = sqlite3.connect(os.path.join(self.home, "gedge.db"))
            m = json.loads(db.execute("SELECT manifest FROM runtimes WHERE id=?", (j["id"],)).fetchone()[0])
            m["format"] = 99
            db.execute("UPDATE runtimes SET manifest=? WHERE id=?", (json.dumps(m), j["id"]))
            db.commit()
            db.close()
            r = self.run_gedge("runtime", "show", j["id"], "-o", "json")
            self.assertEqual(r.rc, 1, r)
            self.assertIn("newer than this gedge", r.err_json["message"])
            g = self.run_gedge("runtime", "gc", "-o", "json")
            self.assertEqual(g.rc, 1, g)  # gc refuses rather than drop chunks it cannot account for
        with self.subTest("unknown bundle"):
            r = self.run_gedge("runtime", "show", "nope", "-o", "json")
            self.assertEqual(r.rc, 4, r)

    def test_special_modes_and_planted_links(self):
        """Issue 16 items 2 and 10: a setuid file and a world-writable file in the packed tree
        arrive without those bits (read-only), unless packed with --keep-special-modes; a manifest
        path leaving the bundle is refused; a link planted in the --to target is never followed."""
        env = os.path.join(self.src, "env")
        os.makedirs(os.path.join(env, "bin"))
        os.makedirs(os.path.join(env, "etc"))
        suid, shared = os.path.join(env, "bin", "suid"), os.path.join(env, "etc", "shared")
        with open(suid, "w") as f:
            f.write("#!/bin/sh\nid\n")
        with open(shared, "w") as f:
            f.write("everyone writes\n")
        os.chmod(suid, 0o4755)
        os.chmod(shared, 0o666)
        j = self.pack("--name", "modes", "--component", f"env={env}").json
        self.assertEqual(len(j["modes_stripped"]), 2, j)
        self.assertIn("warning", self.pack("--name", "modes", "--component", f"env={env}").stderr)
        target = os.path.join(self.tmp, "modes-target")
        p = self.gedge_json("runtime", "push", "modes", "--to", target)["targets"][0]
        self.assertEqual(p["state"], "created")
        bundle = os.path.join(target, j["id"], "env")
        self.assertEqual(os.stat(os.path.join(bundle, "bin", "suid")).st_mode & 0o7777, 0o555)
        self.assertEqual(os.stat(os.path.join(bundle, "etc", "shared")).st_mode & 0o7777, 0o444)
        for d, _, fs in os.walk(os.path.join(target, ".gedge", "objects")):
            for f in fs:
                self.assertEqual(os.stat(os.path.join(d, f)).st_mode & 0o222, 0, f)

        kept = self.pack("--name", "modes-kept", "--component", f"env={env}", "--keep-special-modes").json
        self.assertEqual(kept["modes_stripped"], [])
        self.assertTrue(kept["keep_special_modes"])
        m = self.run_gedge("runtime", "show", "modes-kept", "--manifest")
        self.assertTrue(json.loads(m.stdout)["keep_special_modes"])
        self.gedge_json("runtime", "push", "modes-kept", "--to", target)
        self.assertEqual(os.stat(os.path.join(target, kept["id"], "env", "bin", "suid")).st_mode & 0o7777, 0o4555)

        # the bundle dir is a link to somewhere else: replaced, the link's target untouched
        victim = os.path.join(self.tmp, "victim")
        os.makedirs(os.path.join(victim, "env", "etc"))
        shutil.rmtree(os.path.join(target, j["id"]))
        os.symlink(victim, os.path.join(target, j["id"]))
        p = self.gedge_json("runtime", "push", "modes", "--to", target)["targets"][0]
        self.assertEqual(p["state"], "created")
        self.assertFalse(os.path.islink(os.path.join(target, j["id"])))
        self.assertEqual(os.listdir(os.path.join(victim, "env", "etc")), [])

        # an object fan-out dir planted as a link in a fresh target: refused, nothing written there
        t2 = os.path.join(self.tmp, "t2")
        os.makedirs(os.path.join(t2, ".gedge", "objects"))
        sha = [e for e in json.loads(self.run_gedge("runtime", "show", "modes", "--manifest").stdout)["entries"]
               if e["path"] == "env/etc/shared"][0]["sha256"]
        victim2 = os.path.join(self.tmp, "victim2")
        os.makedirs(victim2)
        os.symlink(victim2, os.path.join(t2, ".gedge", "objects", sha[:2]))
        r = self.run_gedge("runtime", "push", "modes", "--to", t2, "-o", "json")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("symbolic link", r.stderr)
        self.assertEqual(os.listdir(victim2), [])

        # a manifest path leaving the bundle: refused on load, before anything is written
        db = sqlite3.connect(os.path.join(self.home, "gedge.db"))
        man = json.loads(db.execute("SELECT manifest FROM runtimes WHERE id=?", (j["id"],)).fetchone()[0])
        for e in man["entries"]:
            if e["path"] == "env/etc/shared":
                e["path"] = "env/../../escaped"
        db.execute("UPDATE runtimes SET manifest=? WHERE id=?", (json.dumps(man), j["id"]))
        db.commit()
        db.close()
        t3 = os.path.join(self.tmp, "t3")
        r = self.run_gedge("runtime", "push", j["id"], "--to", t3, "-o", "json")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("env/../../escaped", r.err_json["message"])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "escaped")))

    def test_unreadable_file(self):
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            self.skipTest("needs root to run gedge as an unprivileged user")
        base = tempfile.mkdtemp(prefix="gedge-unread-")
        self.addCleanup(shutil.rmtree, base, True)
        os.chmod(base, 0o755)
        env = os.path.join(base, "env")
        os.makedirs(env)
        with open(os.path.join(env, "secret"), "w") as f:
            f.write("x")
        os.chmod(os.path.join(env, "secret"), 0)
        home = os.path.join(base, "home")
        os.makedirs(home)
        os.chown(home, 65534, 65534)
        e = dict(self.env, GEDGE_HOME=home, HOME=home, XDG_CONFIG_HOME=os.path.join(home, "cfg"),
                 XDG_DATA_HOME=os.path.join(home, "data"))
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", os.environ["GEDGE_BIN"]]
        subprocess.run(argv + ["init"], env=e, capture_output=True, check=True)
        p = subprocess.run(argv + ["runtime", "pack", "--name", "u", "--component", f"env={env}", "-o", "json"],
                           env=e, capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p)
        err = json.loads(p.stderr.strip().splitlines()[-1])
        self.assertIn("secret", err["message"])
        self.assertIn("Permission denied", err["message"])

    def files_under(self, d):
        return sorted(os.path.join(a, f) for a, _, fs in os.walk(d) for f in fs) if os.path.exists(d) else []

    def test_pack_dry_run_writes_nothing(self):
        env, cuda = build_tree(self.src)
        args = ("--name", "dry", "--component", f"env={env}", "--component", f"cuda={cuda}")
        rt = os.path.join(self.home, "runtimes")
        before = self.files_under(rt)
        d = self.pack(*args, "--dry-run").json
        self.assertTrue(d["dry_run"])
        self.assertEqual(self.files_under(rt), before, "a dry run must not write the store, lock or cache")
        self.assertEqual(self.gedge_json("runtime", "ls"), [])
        self.assertGreater(d["files"], 5)
        self.assertGreater(d["bytes_read"], 3 << 20)
        self.assertEqual(d["chunks_new"], d["chunks"])
        self.assertGreater(d["bytes_new"], 3 << 20)
        self.assertEqual(d["bytes_stored"], 0)
        # the real pack stores exactly what the dry run announced, under the same id
        r = self.pack(*args).json
        self.assertEqual((r["id"], r["chunks_new"], r["bytes_new"]), (d["id"], d["chunks_new"], d["bytes_new"]))
        self.assertEqual(len(self.files_under(os.path.join(rt, "chunks"))), r["chunks"])
        again = self.pack(*args, "--dry-run").json
        self.assertEqual((again["chunks_new"], again["created"]), (0, False))

    def test_push_dry_run_writes_nothing(self):
        env, cuda = build_tree(self.src)
        args = ("--name", "pd", "--component", f"env={env}", "--component", f"cuda={cuda}")
        v1 = self.pack(*args).json
        target = os.path.join(self.tmp, "export")
        d = self.gedge_json("runtime", "push", v1["id"], "--to", target, "--dry-run")
        self.assertTrue(d["dry_run"])
        t = d["targets"][0]
        self.assertEqual((t["state"], t["chunks_sent"], t["chunks_skipped"]), ("would_create", v1["chunks"], 0))
        self.assertEqual(len(t["chunks_to_send"]), v1["chunks"])
        self.assertFalse(os.path.exists(target), "a dry run must not create the target")
        self.assertEqual(self.gedge_json("runtime", "show", v1["id"])["pushes"], [])
        p1 = self.gedge_json("runtime", "push", v1["id"], "--to", target)["targets"][0]
        self.assertEqual(p1["bytes_sent"], t["bytes_sent"])
        # v2: the dry run names exactly the chunk the real push then sends
        with open(os.path.join(env, "etc", "greeting.conf"), "a") as f:
            f.write("changed=1\n")
        v2 = self.pack(*args).json
        listing = self.files_under(target)
        d2 = self.gedge_json("runtime", "push", v2["id"], "--to", target, "--dry-run")["targets"][0]
        self.assertEqual(self.files_under(target), listing, "a dry run must not write the target")
        self.assertEqual((d2["state"], d2["chunks_sent"]), ("would_create", 1))
        store = os.path.join(target, ".gedge", "chunks")
        before = set(os.path.basename(f) for f in self.files_under(store))
        p2 = self.gedge_json("runtime", "push", v2["id"], "--to", target)["targets"][0]
        after = set(os.path.basename(f) for f in self.files_under(store))
        self.assertEqual(sorted(after - before), d2["chunks_to_send"])
        self.assertEqual(p2["chunks_sent"], 1)
        d3 = self.gedge_json("runtime", "push", v2["id"], "--to", target, "--dry-run")["targets"][0]
        self.assertEqual((d3["state"], d3["chunks_sent"], d3["chunks_to_send"]), ("would_verify", 0, []))

    def test_repack_uses_stat_cache(self):
        env, cuda = build_tree(self.src)
        time.sleep(2.2)  # files changed in the last 2 s are never cached (same-tick changes)
        args = ("--name", "sc", "--component", f"env={env}", "--component", f"cuda={cuda}")
        v1 = self.pack(*args).json
        self.assertEqual(v1["files_cached"], 0)
        self.assertTrue(os.path.exists(os.path.join(self.home, "runtimes", "statcache")))
        again = self.pack(*args).json
        self.assertEqual(again["id"], v1["id"])
        self.assertEqual(again["files_cached"], v1["files"])
        self.assertEqual(again["bytes_read"], v1["bytes_read"])
        # same size, same mtime, new content: the ctime differs, so the file is read again
        vj = os.path.join(cuda, "version.json")
        st = os.stat(vj)
        with open(vj, "rb") as f:
            old = f.read()
        new = old.replace(b"12.2.2", b"12.3.0")
        self.assertEqual(len(new), len(old))
        with open(vj, "wb") as f:
            f.write(new)
        os.utime(vj, ns=(st.st_atime_ns, st.st_mtime_ns))
        v2 = self.pack(*args).json
        self.assertNotEqual(v2["id"], v1["id"])
        self.assertEqual(v2["files_cached"], v1["files"] - 1)
        m = self.gedge_json("runtime", "show", v2["id"], "--manifest")
        ent = [e for e in m["entries"] if e["path"] == "cuda/version.json"][0]
        self.assertEqual(ent["sha256"], hashlib.sha256(new).hexdigest())
        # --no-cache reads everything and gives the same bundle
        nc = self.pack(*args, "--no-cache").json
        self.assertEqual((nc["id"], nc["files_cached"]), (v2["id"], 0))
        # chunks removed from the store (as gc would) are not trusted from the cache
        shutil.rmtree(os.path.join(self.home, "runtimes", "chunks"))
        v3 = self.pack(*args).json
        self.assertEqual(v3["id"], v2["id"])
        self.assertEqual(v3["files_cached"], 0)
        self.assertTrue(self.gedge_json("runtime", "verify", v3["id"])["ok"])

    def assert_named_by_chunks(self, entry, read):
        """Manifest format 2: each chunk's id is the SHA-256 of its bytes (read(n) gives the next n
        bytes of the file) and a file of several chunks is named by its chunk list."""
        self.assertGreater(len(entry["chunks"]), 1)
        for c in entry["chunks"]:
            self.assertEqual(hashlib.sha256(read(c["size"])).hexdigest(), c["sha256"])
        self.assertEqual(len(read(1)), 0)
        listing = "gedge-chunks\n" + "".join(c["sha256"] + "\n" for c in entry["chunks"])
        self.assertEqual(entry["sha256"], hashlib.sha256(listing.encode()).hexdigest())

    def test_large_file_is_streamed(self):
        """A file much larger than pack's read buffer is streamed (a 3 GB file once needed 3.1 GB):
        pack's peak RSS stays far below the file's size, and its hash, chunks, a relocated large
        text file and a push round trip are all right."""
        env = os.path.join(self.src, "env")
        os.makedirs(env)
        big = os.path.join(env, "big.bin")
        size = 768 << 20
        middle = os.urandom(3 << 20)
        with open(big, "wb") as f:  # sparse: cheap to make, 768 MiB to read
            f.write(b"\x7fELF\0")
            f.seek(size // 2)
            f.write(middle)
            f.truncate(size)
        # a large text file holding the source prefix: relocated while streamed
        line = f"prefix={env}/lib and {env}2 untouched\n".encode()
        text = line * ((24 << 20) // len(line))
        with open(os.path.join(env, "big.txt"), "wb") as f:
            f.write(text)
        out_path = os.path.join(self.tmp, "pack.json")
        with open(out_path, "wb") as out, open(out_path + ".err", "wb") as err:
            p = subprocess.Popen([GEDGE, "runtime", "pack", "--name", "big", "--component", f"env={env}",
                                  "-j", "2", "-o", "json"], env=self.env, stdout=out, stderr=err)
            _, status, usage = os.wait4(p.pid, 0)  # this child's own peak RSS
            p.returncode = os.waitstatus_to_exitcode(status)
        with open(out_path + ".err") as f:
            self.assertEqual(p.returncode, 0, f.read())
        with open(out_path) as f:
            j = json.load(f)
        peak = usage.ru_maxrss << 10
        self.assertLess(peak, 200 << 20, f"peak RSS {peak >> 20} MiB for a {size >> 20} MiB file")
        m = self.gedge_json("runtime", "show", j["id"], "--manifest")
        ents = {e["path"]: e for e in m["entries"]}
        with open(big, "rb") as f:
            self.assert_named_by_chunks(ents["env/big.bin"], lambda n: f.read(n))
        self.assertEqual(sum(c["size"] for c in ents["env/big.bin"]["chunks"]), size)
        want = text.replace(f"{env}/lib".encode(), b"/opt/gedge/rt/big/env/lib")
        self.assertIn("env/big.txt", j["relocated"])
        rest = memoryview(want)
        def take(n):
            nonlocal rest
            piece, rest = rest[:n], rest[n:]
            return piece
        self.assert_named_by_chunks(ents["env/big.txt"], take)
        self.assertEqual(ents["env/big.txt"]["size"], len(want))
        dest = os.path.join(self.tmp, "out")
        self.gedge_json("runtime", "push", j["id"], "--to", dest)
        got = os.path.join(dest, j["id"], "env", "big.txt")
        with open(got, "rb") as f:
            self.assertEqual(f.read(), want)

    def test_target_disk_full(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a small tmpfs")
        env = os.path.join(self.src, "env")
        os.makedirs(env)
        with open(os.path.join(env, "big"), "wb") as f:
            f.write(os.urandom(6 << 20))
        j = self.pack("--name", "full", "--component", f"env={env}").json
        target = os.path.join(self.tmp, "tiny")
        os.makedirs(target)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "gedge-test-full", target], check=True)
        self.addCleanup(subprocess.run, ["umount", target])
        r = self.run_gedge("runtime", "push", j["id"], "--to", target, "-o", "json")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("No space left on device", r.err_json["message"])
        self.assertFalse(os.path.exists(os.path.join(target, j["id"])))  # nothing half-visible
        self.assertEqual(os.listdir(os.path.join(target, ".gedge", "tmp")), [])


class RuntimeRmTest(GedgeTest):
    """runtime rm by id or name, --keep N, then gc frees exactly the chunks nothing references."""

    def pack_version(self, name, content):
        tree = os.path.join(self.tmp, f"tree-{name}-{len(content)}")
        os.makedirs(os.path.join(tree, "lib"), exist_ok=True)
        with open(os.path.join(tree, "lib", "data.bin"), "wb") as f:
            f.write(content)
        r = self.run_gedge("runtime", "pack", "--name", name, "--component", f"env={tree}", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        return r.json["id"]

    def chunk_count(self):
        store = os.path.join(self.home, "runtimes", "chunks")
        return sum(len(files) for _, _, files in os.walk(store))

    def test_rm_keep_then_gc_frees_only_unreferenced_chunks(self):
        ids = [self.pack_version("app", os.urandom(300_000 + i)) for i in range(3)]  # oldest first
        other = self.pack_version("other", os.urandom(200_000))
        before = self.chunk_count()
        # without --yes and no terminal: refused, nothing removed
        r = self.run_gedge("runtime", "rm", "app", "--keep", "1", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertEqual(len(self.gedge_json("runtime", "ls")), 4)
        r = self.run_gedge("runtime", "rm", "app", "--keep", "1", "--dry-run", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.json["dry_run"])
        self.assertEqual([b["id"] for b in r.json["removed"]], [ids[1], ids[0]])
        self.assertEqual(len(self.gedge_json("runtime", "ls")), 4)
        r = self.run_gedge("runtime", "rm", "app", "--keep", "1", "--yes", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([b["id"] for b in r.json["removed"]], [ids[1], ids[0]])
        self.assertEqual([b["id"] for b in r.json["kept"]], [ids[2]])
        self.assertEqual(sorted(b["id"] for b in self.gedge_json("runtime", "ls")), sorted([ids[2], other]))
        self.assertEqual(self.chunk_count(), before, "rm forgets bundles; only gc deletes chunks")
        g = self.gedge_json("runtime", "gc")
        self.assertGreater(g["removed"], 0)
        self.assertLess(self.chunk_count(), before)
        for ref in ("app", other):  # what stays still verifies: no referenced chunk was freed
            v = self.run_gedge("runtime", "verify", ref, "-o", "json")
            self.assertEqual(v.rc, 0, v)
            self.assertTrue(v.json["ok"], v)
        # by id prefix, then the name is gone entirely
        r = self.run_gedge("runtime", "rm", other[:12], "--yes", "-o", "json")
        self.assertEqual([b["id"] for b in r.json["removed"]], [other])
        r = self.run_gedge("runtime", "rm", "app", "--yes", "-o", "json")
        self.assertEqual([b["id"] for b in r.json["removed"]], [ids[2]])
        self.assertEqual(self.gedge_json("runtime", "ls"), [])
        self.gedge_json("runtime", "gc")
        self.assertEqual(self.chunk_count(), 0)

    def test_rm_of_what_is_not_there(self):
        r = self.run_gedge("runtime", "rm", "nope", "--yes", "-o", "json")
        self.assertEqual(r.rc, 4, r)
        self.assertEqual(r.err_json["error"], "not_found")
        r = self.run_gedge("runtime", "rm", "nope", "--yes", "--ignore-not-found", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["removed"], [])
        self.assertFalse(r.json["changed"])
        for argv in (["device", "rm", "nope"], ["cluster", "rm", "nope"], ["svc", "rm", "nope"]):
            r = self.run_gedge(*argv, "--yes", "-o", "json")
            self.assertEqual(r.rc, 4, (argv, r))
            r = self.run_gedge(*argv, "--yes", "--ignore-not-found", "-o", "json")
            self.assertEqual(r.rc, 0, (argv, r))
            self.assertFalse(r.json["changed"], argv)


class ProgressTest(GedgeTest):
    """pack shows bytes, rate and ETA on a terminal, never going back; nothing off a terminal or
    under -q / -o json."""

    def make_tree(self):
        tree = os.path.join(self.tmp, "big")
        os.makedirs(tree)
        for i in range(24):
            with open(os.path.join(tree, f"f{i:02}.bin"), "wb") as f:
                f.write(os.urandom(2 << 20))
        return tree

    def test_pack_progress_has_bytes_rate_eta_and_is_monotonic(self):
        tree = self.make_tree()
        rc, out = self.run_on_tty("runtime", "pack", "--name", "big", "--component", f"env={tree}", "-j", "2",
                                  "--no-cache")
        self.assertEqual(rc, 0, out)
        draws = [d for d in out.replace("\r\n", "\n").split("\r") if d.startswith("\x1b[Kpacking ")]
        self.assertTrue(draws, out)
        units = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
        done = []
        for d in draws:
            m = re.match(r"\x1b\[Kpacking ([\d.]+) (\w+)/([\d.]+) (\w+)", d)
            self.assertTrue(m, d)
            done.append(float(m.group(1)) * units[m.group(2)])
            self.assertEqual(float(m.group(3)) * units[m.group(4)], 48 << 20, d)
        self.assertEqual(done, sorted(done), "progress went backwards")
        self.assertEqual(done[-1], 48 << 20)
        self.assertTrue(any(re.search(r" [\d.]+ \w+/s", d) for d in draws), draws)
        # Before the end, a draw that knows the rate (after the first 50 ms) also says when it ends;
        # a fast machine may finish before any such draw (first draw: no rate yet; last: done).
        for d in draws[:-1]:
            if re.search(r" [\d.]+ \w+/s", d):
                self.assertRegex(d, r" ETA \d+:\d\d$", draws)
        self.assertNotIn(" ETA ", draws[-1], "nothing left to wait for at the end")
        # -q and -o json: no progress even on a terminal
        for extra in (["-q"], ["-o", "json"]):
            rc, out = self.run_on_tty("runtime", "pack", "--name", "big2", "--component", f"env={tree}", "--no-cache",
                                      *extra)
            self.assertEqual(rc, 0, out)
            self.assertNotIn("\x1b[K", out, extra)

    def test_no_progress_off_a_terminal(self):
        tree = self.make_tree()
        r = self.run_gedge("runtime", "pack", "--name", "big", "--component", f"env={tree}", "--no-cache")
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("\x1b[K", r.stderr)
        self.assertNotIn("\r", r.stderr)


if __name__ == "__main__":
    unittest.main()
