#!/usr/bin/env python3
# needs: lab
"""gedge device end to end, against the lab's real sshd hosts: add (host-key policy, password
bootstrap, token, facts), ls/show/rm/key, check (token, RTT, faults), exec (quoting, sudo,
partial failure), concurrency."""

import base64
import hashlib
import os
import sqlite3
import subprocess
import time
import unittest

from gedge_e2e import GEDGE, GedgeTest


class DeviceTest(GedgeTest):
    def setUp(self):
        super().setUp()
        self.require_lab()

    # --- helpers -----------------------------------------------------------------------
    def add(self, name, host=None, *extra, pin=True, identity=True):
        h = self.lab_host(host or name)
        args = ["device", "add", name, "--host", h["address"], "--user", self.lab()["user"]]
        if h["port"] != 22:
            args += ["--port", h["port"]]
        if identity:
            args += ["--identity", self.lab()["key"]]
        if pin:
            args += ["--host-key", h["host_key_fingerprint"]]
        return self.run_gedge(*args, *extra, "-o", "json")

    def add_ok(self, name, host=None, *extra, **kw):
        r = self.add(name, host, *extra, **kw)
        self.assertEqual(r.rc, 0, r)
        return r.json

    @staticmethod
    def read(path, mode="r"):
        with open(path, mode) as f:
            return f.read()

    def db_row(self, name):
        con = sqlite3.connect(os.path.join(self.home, "gedge.db"))
        con.row_factory = sqlite3.Row
        try:
            return con.execute("SELECT * FROM devices WHERE name = ?", (name,)).fetchone()
        finally:
            con.close()

    def results_by_device(self, data):
        return {r["device"]: r for r in data["results"]}

    def fault(self, host, what):
        r = self.lab_sh("fault", host, what)
        self.assertEqual(r.rc, 0, r)

    # --- add / ls / show / rm / key ----------------------------------------------------
    def test_add_pins_key_issues_token_collects_facts(self):
        d = self.add_ok("h1", None, "--label", "site=lab", "--label", "role=cam", "--tier", "local",
                        "--site", "rack1")
        h1 = self.lab_host("h1")
        self.assertEqual(d["name"], "h1")
        self.assertEqual(d["host"], h1["address"])
        self.assertEqual(d["port"], 22)
        self.assertEqual(d["user"], self.lab()["user"])
        self.assertEqual(d["host_key"]["fingerprint"], h1["host_key_fingerprint"])
        self.assertEqual(d["host_key"]["type"], h1["host_key_type"])
        self.assertEqual(d["labels"], {"site": "lab", "role": "cam"})
        self.assertEqual(d["tier"], "local")
        self.assertEqual(d["status"], "ok")
        # facts match the real host
        self.assertEqual(d["facts"]["arch"], self.ssh_host("h1", "uname -m").strip())
        self.assertEqual(d["facts"]["cpus"], int(self.ssh_host("h1", "nproc").strip()))
        self.assertEqual(d["facts"]["kernel"], self.ssh_host("h1", "uname -r").strip())
        mem_kb = int(self.ssh_host("h1", "awk '/MemTotal/{print $2}' /proc/meminfo").strip())
        self.assertEqual(d["facts"]["memory_bytes"], mem_kb * 1024)
        self.assertIsInstance(d["facts"]["gpus"], list)
        self.assertIn("os", d["facts"])
        # the token on the device: 0600, and only its hash in the inventory
        mode = self.ssh_host("h1", "stat -c %a ~/.config/gedge/device-token").strip()
        self.assertEqual(mode, "600")
        token = self.ssh_host("h1", "cat ~/.config/gedge/device-token").strip()
        self.assertGreaterEqual(len(token), 32)
        row = self.db_row("h1")
        self.assertEqual(row["token_hash"], hashlib.sha256(token.encode()).hexdigest())
        self.assertNotIn(token, self.read(os.path.join(self.home, "gedge.db"), "rb").decode("latin1"))
        # topology XML for `tune` when lstopo exists on the host
        has_lstopo = self.ssh_host("h1", "command -v lstopo-no-graphics || true").strip() != ""
        self.assertEqual(row["topology_xml"] is not None, has_lstopo)
        # known_hosts written in GEDGE_HOME
        kh = self.read(os.path.join(self.home, "known_hosts"))
        self.assertIn(f"h1 {h1['host_key']}", kh.splitlines())  # under its HostKeyAlias

        # re-add identical: no-op, exit 0
        r = self.add("h1", None, "--label", "site=lab", "--label", "role=cam", "--tier", "local")
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(r.json["changed"])
        self.assertEqual(self.ssh_host("h1", "cat ~/.config/gedge/device-token").strip(), token)
        # re-add with a different address: conflict (7) unless --force
        r = self.add("h1", "h2")
        self.assertEqual(r.rc, 7, r)
        self.assertEqual(r.err_json["error"], "conflict")

        # ls / filters / show
        self.add_ok("h2", None, "--label", "site=other")
        ls = self.gedge_json("device", "ls")
        self.assertEqual([x["name"] for x in ls], ["h1", "h2"])
        for key in ("name", "host", "port", "user", "tier", "site", "labels", "status", "last_seen",
                    "rtt_ms", "host_key", "facts"):
            self.assertIn(key, ls[0])
        for key in ("arch", "os", "kernel", "cpus", "memory_bytes", "disk_free_bytes", "gpus",
                    "container_runtime"):
            self.assertIn(key, ls[0]["facts"])
        self.assertEqual([x["name"] for x in self.gedge_json("device", "ls", "--label", "site=lab")], ["h1"])
        self.assertEqual([x["name"] for x in self.gedge_json("device", "ls", "--tier", "local")], ["h1"])
        self.assertEqual(self.gedge_json("device", "show", "h2")["host"], self.lab_host("h2")["address"])
        # bad input
        r = self.run_gedge("device", "show", "nope", "-o", "json")
        self.assertEqual(r.rc, 4, r)
        r = self.run_gedge("device", "ls", "--label", "bad label", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        r = self.run_gedge("device", "check", "nope", "-o", "json")
        self.assertEqual(r.rc, 4, r)
        # rm needs --yes without a TTY
        r = self.run_gedge("device", "rm", "h2", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        r = self.run_gedge("device", "rm", "h2", "--yes", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([x["name"] for x in self.gedge_json("device", "ls")], ["h1"])

    def test_key_prints_gedge_public_key(self):
        k = self.gedge_json("device", "key")
        pub = self.read(os.path.join(self.home, "id_ed25519.pub")).split()
        self.assertEqual(k["public_key"].split()[:2], pub[:2])
        self.assertTrue(k["fingerprint"].startswith("SHA256:"))

    def test_host_key_policy(self):
        h3 = self.lab_host("h3")
        # no policy and no TTY: exit 6 naming the presented fingerprint
        r = self.add("h3", pin=False)
        self.assertEqual(r.rc, 6, r)
        self.assertIn(h3["host_key_fingerprint"], r.err_json["message"] + r.err_json.get("hint", ""))
        self.assertEqual(self.gedge_json("device", "ls"), [])
        # wrong pinned fingerprint: exit 6
        r = self.run_gedge("device", "add", "h3", "--host", h3["address"], "--user", self.lab()["user"],
                           "--identity", self.lab()["key"], "--host-key",
                           self.lab_host("h4")["host_key_fingerprint"], "-o", "json")
        self.assertEqual(r.rc, 6, r)
        # --accept-new: trusted on first use, and the real key is what is pinned
        d = self.add_ok("h3", None, "--accept-new", pin=False)
        self.assertEqual(d["host_key"]["fingerprint"], h3["host_key_fingerprint"])

    def test_auth_failure_without_key(self):
        # gedge's own key is not authorized on h4 and no identity is given: exit 6 (auth)
        h4 = self.lab_host("h4")
        env = {"SSH_AUTH_SOCK": "", "HOME": self.tmp}
        r = self.run_gedge("device", "add", "h4", "--host", h4["address"], "--user", self.lab()["user"],
                           "--host-key", h4["host_key_fingerprint"], "-o", "json", env=env)
        self.assertEqual(r.rc, 6, r)
        self.assertEqual(r.err_json["error"], "auth_failed")

    # --- bootstrap -----------------------------------------------------------------------
    def test_bootstrap_with_password_installs_key_idempotently(self):
        h6 = self.lab_host("h6")
        gedge_key = os.path.join(self.home, "id_ed25519")
        pub = self.read(gedge_key + ".pub").split()
        pwfile = os.path.join(self.tmp, "pw")
        with open(pwfile, "w") as f:
            f.write(self.lab_password() + "\n")
        os.chmod(pwfile, 0o600)
        as_gedge = dict(ssh_opts=("-i", gedge_key))

        def cleanup():
            # remove gedge's key again (h6 is the bootstrap-only host)
            self.ssh_host("h6", f"sed -i '\\#{pub[1]}#d' ~/.ssh/authorized_keys", check=False, **as_gedge)
        self.addCleanup(cleanup)

        # wrong password: exit 6, nothing installed
        bad = os.path.join(self.tmp, "bad")
        with open(bad, "w") as f:
            f.write("not-the-password\n")
        r = self.run_gedge("device", "add", "h6", "--host", h6["address"], "--user", self.lab()["user"],
                           "--host-key", h6["host_key_fingerprint"], "--password-file", bad, "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertEqual(r.err_json["error"], "auth_failed")

        r = self.run_gedge("device", "add", "h6", "--host", h6["address"], "--user", self.lab()["user"],
                           "--host-key", h6["host_key_fingerprint"], "--password-file", pwfile, "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.json["bootstrapped"])
        self.assertNotIn(self.lab_password(), r.stdout + r.stderr)
        ak = self.ssh_host("h6", "cat ~/.ssh/authorized_keys", **as_gedge)
        self.assertEqual(sum(1 for line in ak.splitlines() if pub[1] in line), 1)
        modes = self.ssh_host("h6", "stat -c %a ~/.ssh ~/.ssh/authorized_keys", **as_gedge).split()
        self.assertEqual(modes, ["700", "600"])
        # the password never reached the log or the inventory
        for root, _, files in os.walk(self.home):
            for fn in files:
                with open(os.path.join(root, fn), "rb") as f:
                    self.assertNotIn(self.lab_password().encode(), f.read(), fn)

        # again from stdin under another home: idempotent (still exactly one line)
        self.run_gedge("device", "rm", "h6", "--yes")
        r = self.run_gedge("device", "add", "h6", "--host", h6["address"], "--user", self.lab()["user"],
                           "--host-key", h6["host_key_fingerprint"], "--password-stdin", "-o", "json",
                           input=self.lab_password() + "\n")
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(r.json["bootstrapped"])
        ak = self.ssh_host("h6", "cat ~/.ssh/authorized_keys", **as_gedge)
        self.assertEqual(sum(1 for line in ak.splitlines() if pub[1] in line), 1)
        # key login now works for gedge without a password
        r = self.run_gedge("device", "exec", "h6", "-o", "json", "--", "id", "-un")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["results"][0]["stdout"].strip(), self.lab()["user"])

    # --- exec ----------------------------------------------------------------------------
    def test_exec_quoting_sudo_and_exit_codes(self):
        for n in ("h1", "h2", "h3"):
            self.add_ok(n, None, "--label", "grp=a" if n != "h3" else "grp=b")
        hostile = "it's \"quoted\" $(touch /tmp/gedge-e2e-pwned) `id` ; &&"
        r = self.run_gedge("device", "exec", "--all", "-o", "json", "--",
                           "sh", "-c", 'printf "%s" "$1"; echo err >&2; exit 3', "x", hostile)
        self.assertEqual(r.rc, 1, r)  # every device ran it and failed: failure (1)
        res = self.results_by_device(r.json)
        self.assertEqual(sorted(res), ["h1", "h2", "h3"])
        for d in res.values():
            self.assertEqual(d["exit_code"], 3)
            self.assertEqual(d["stdout"], hostile)
            self.assertEqual(d["stderr"].strip(), "err")
            self.assertIsInstance(d["duration_ms"], int)
        self.assertEqual(r.json["summary"], {"ok": 0, "failed": 3, "unreachable": 0})
        self.assertEqual(self.ssh_host("h1", "test -e /tmp/gedge-e2e-pwned; echo $?").strip(), "1")

        r = self.run_gedge("device", "exec", "--label", "grp=a", "-o", "json", "--", "hostname")
        self.assertEqual(r.rc, 0, r)
        res = self.results_by_device(r.json)
        self.assertEqual(sorted(res), ["h1", "h2"])
        self.assertEqual(res["h1"]["stdout"].strip(), self.ssh_host("h1", "hostname").strip())

        r = self.run_gedge("device", "exec", "h3", "--sudo", "-o", "json", "--", "id", "-u")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["results"][0]["stdout"].strip(), "0")

        r = self.run_gedge("device", "exec", "h1", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        r = self.run_gedge("device", "exec", "nope", "-o", "json", "--", "true")
        self.assertEqual(r.rc, 4, r)

    def test_exec_output_that_is_not_utf8_is_carried_as_base64(self):
        self.add_ok("h1")
        r = self.run_gedge("device", "exec", "h1", "-o", "json", "--",
                           "sh", "-c", r"printf '\377\376ok'; printf 'caf\303\251\300' >&2")
        self.assertEqual(r.rc, 0, r)
        d = r.json["results"][0]
        self.assertEqual(base64.b64decode(d["stdout_base64"]), b"\xff\xfeok")
        self.assertEqual(d["stdout"], "\ufffd\ufffdok")
        self.assertEqual(base64.b64decode(d["stderr_base64"]), "café".encode() + b"\xc0")
        self.assertEqual(d["stderr"], "café\ufffd")
        r = self.run_gedge("device", "exec", "h1", "-o", "yaml", "--", "printf", r"\377")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("stdout_base64: /w==", r.stdout)

    # --- check ---------------------------------------------------------------------------
    def test_check_measures_rtt_over_ssh_and_refreshes(self):
        self.add_ok("h1")
        self.add_ok("far1")
        # check pins both keys in one rewrite of gedge's known_hosts: lines older gedge versions
        # keyed by address go, another line stays, each device's line is there once
        kh_file = os.path.join(self.home, "known_hosts")
        shows = {n: self.gedge_json("device", "show", n) for n in ("h1", "far1")}
        legacy = {n: d["host"] if d["port"] in (0, 22) else f"[{d['host']}]:{d['port']}"
                  for n, d in shows.items()}
        keys = {n: self.lab_host(n)["host_key"] for n in shows}
        with open(kh_file, "a") as f:
            for n in shows:
                f.write(f"{legacy[n]} {keys[n]}\n")
            f.write("other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther\n")
        r = self.run_gedge("device", "check", "--all", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        lines = self.read(kh_file).splitlines()
        for n in shows:
            self.assertEqual(lines.count(f"{n} {keys[n]}"), 1, lines)
            self.assertFalse([l for l in lines if l.split(" ")[0] == legacy[n]], lines)
        self.assertIn("other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther", lines)
        res = self.results_by_device(r.json)
        self.assertEqual(r.json["summary"], {"ok": 2, "failed": 0, "unreachable": 0})
        for d in res.values():
            self.assertEqual(d["status"], "ok")
            self.assertGreater(d["rtt_ms"], 0)
        # far1 sits behind a delay proxy adding far_delay_ms each way: RTT is at least that
        delay = self.lab_host("far1").get("delay_ms", self.lab().get("far_delay_ms", 0))
        self.assertGreaterEqual(res["far1"]["rtt_ms"], 2 * delay * 0.9)
        ls = {d["name"]: d for d in self.gedge_json("device", "ls")}
        self.assertIsNotNone(ls["far1"]["last_seen"])
        self.assertEqual(ls["far1"]["rtt_ms"], res["far1"]["rtt_ms"])
        for n in shows:  # the result's last_seen is the stored one
            self.assertEqual(res[n]["last_seen"], ls[n]["last_seen"])

    def test_same_machine_under_another_name_and_token_mismatch(self):
        # h8 is a fault host: its token is changed and restored here
        self.add_ok("h8")
        r = self.add("h8-again", "h8")
        self.assertEqual(r.rc, 7, r)
        self.assertIn("h8", r.err_json["message"])
        old = self.ssh_host("h8", "cat ~/.config/gedge/device-token").strip()
        self.addCleanup(self.ssh_host, "h8", f"printf '%s\\n' {old} > ~/.config/gedge/device-token",
                        check=False)
        # a swapped/reinstalled machine: token differs -> token_mismatch (exit 6)
        self.ssh_host("h8", "echo swapped > ~/.config/gedge/device-token")
        r = self.run_gedge("device", "check", "h8", "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertEqual(r.json["results"][0]["status"], "token_mismatch")
        self.assertEqual(self.gedge_json("device", "show", "h8")["status"], "token_mismatch")
        # --force takes the machine over under the new name with a fresh token
        self.ssh_host("h8", f"printf '%s\\n' {old} > ~/.config/gedge/device-token")
        r = self.add("h8-again", "h8", "--force")
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.json["token_issued"])
        r = self.run_gedge("device", "check", "h8", "h8-again", "-o", "json")
        self.assertEqual(r.rc, 3, r)
        res = self.results_by_device(r.json)
        self.assertEqual(res["h8"]["status"], "token_mismatch")
        self.assertEqual(res["h8-again"]["status"], "ok")

    # --- faults (h7, h8) -----------------------------------------------------------------
    def test_link_down_ends_within_timeout_and_partial_failure(self):
        self.add_ok("h1")
        self.add_ok("h7")
        self.addCleanup(self.lab_sh, "fault", "h7", "link-up")
        self.fault("h7", "link-down")
        # must end by itself within --timeout (the subprocess guard is far larger)
        r = self.run_gedge("device", "check", "h7", "--timeout", "3", "-o", "json", timeout=40)
        self.assertNotEqual(r.rc, 124, "gedge hung on a blackholed host")
        self.assertEqual(r.rc, 5, r)
        self.assertEqual(r.json["results"][0]["status"], "unreachable")
        r = self.run_gedge("device", "exec", "h1", "h7", "--timeout", "3", "-o", "json", "--", "true",
                           timeout=40)
        self.assertEqual(r.rc, 3, r)
        res = self.results_by_device(r.json)
        self.assertEqual(res["h1"]["status"], "ok")
        self.assertEqual(res["h7"]["status"], "unreachable")
        self.assertEqual(r.json["summary"], {"ok": 1, "failed": 0, "unreachable": 1})
        self.assertEqual(self.gedge_json("device", "show", "h7")["status"], "unreachable")

    def test_refused_connection_and_sshd_stopped_mid_fan_out(self):
        self.add_ok("h1")
        self.add_ok("h7")
        self.addCleanup(self.lab_sh, "fault", "h7", "start-sshd")
        # sshd stops while a fan-out is running on h7
        argv = [GEDGE, "device", "exec", "h1", "h7", "-o", "json", "--timeout", "20", "--",
                "sh", "-c", "sleep 2; echo done"]
        p = subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.8)
        self.fault("h7", "stop-sshd")
        out, err = p.communicate(timeout=60)
        self.assertIn(p.returncode, (0, 3), err)
        import json as _json
        res = self.results_by_device(_json.loads(out))
        self.assertEqual(res["h1"]["status"], "ok")
        self.assertIn(res["h7"]["status"], ("ok", "unreachable"))
        # with sshd down the connection is refused: unreachable (5)
        r = self.run_gedge("device", "check", "h7", "-o", "json", timeout=40)
        self.assertEqual(r.rc, 5, r)
        self.assertEqual(r.json["results"][0]["status"], "unreachable")

    def test_changed_host_key_refused_then_rekey(self):
        h8 = self.lab_host("h8")
        self.add_ok("h8")
        old_fp = h8["host_key_fingerprint"]
        self.fault("h8", "rekey")
        new_fp = self.lab_host("h8")["host_key_fingerprint"] if self.lab(reload=True) else None
        self.assertNotEqual(old_fp, new_fp)
        r = self.run_gedge("device", "check", "h8", "-o", "json")
        self.assertEqual(r.rc, 6, r)
        res = r.json["results"][0]
        self.assertEqual(res["status"], "host_key_mismatch")
        self.assertIn(old_fp, res["message"])
        self.assertIn(new_fp, res["message"])
        r = self.run_gedge("device", "exec", "h8", "-o", "json", "--", "true")
        self.assertEqual(r.rc, 6, r)
        # rekey without --yes and without a TTY refuses
        r = self.run_gedge("device", "rekey", "h8", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        r = self.run_gedge("device", "rekey", "h8", "--host-key", new_fp, "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["old"]["fingerprint"], old_fp)
        self.assertEqual(r.json["new"]["fingerprint"], new_fp)
        r = self.run_gedge("device", "check", "h8", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.gedge_json("device", "show", "h8")["host_key"]["fingerprint"], new_fp)

    def test_host_key_pins_are_per_address(self):
        """Issue 16 item 5: --accept-new trusted per device name. A new name at an address pinned by
        another device must present that device's key (a different one is exit 6, whatever the
        name), and the shared known_hosts line lives until the last device at the address goes."""
        kh_file = os.path.join(self.home, "known_hosts")
        h1 = self.lab_host("h1")
        self.add_ok("h1")
        # a second name for the same machine (--force: it takes the device token over)
        self.add_ok("h1-alias", "h1", "--force", pin=False)
        # each name has its line under its HostKeyAlias, with the address's one key
        names = lambda: {l.split(" ")[0]: l.split(" ", 1)[1] for l in self.read(kh_file).splitlines()}
        self.assertEqual(names()["h1"], h1["host_key"])
        self.assertEqual(names()["h1-alias"], h1["host_key"])
        self.gedge_json("device", "rm", "h1-alias", "--yes")
        self.assertNotIn("h1-alias", names())
        self.assertEqual(names()["h1"], h1["host_key"], "removing one device dropped the other's line")
        self.assertEqual(self.run_gedge("device", "check", "h1", "-o", "json").json["results"][0]["status"],
                         "token_mismatch")  # the alias took the token over; the host key still verifies
        self.gedge_json("device", "rm", "h1", "--yes")
        self.assertNotIn("h1", names())

        # h8 is pinned; then another machine (new host key, no device token) answers at its address
        self.add_ok("h8")
        pinned = self.read(kh_file)
        old_token = self.ssh_host("h8", "cat ~/.config/gedge/device-token").strip()
        self.addCleanup(self.ssh_host, "h8", f"printf '%s\\n' {old_token} > ~/.config/gedge/device-token",
                        check=False)
        self.fault("h8", "rekey")
        self.ssh_host("h8", "rm -f ~/.config/gedge/device-token")
        r = self.add("impostor", "h8", "--accept-new", pin=False)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("pinned by device 'h8'", r.err_json["message"])
        self.assertIn("gedge device rekey h8", r.err_json["hint"])
        r = self.add("impostor", "h8")  # --host-key with the new key: still not this address's pin
        self.assertEqual(r.rc, 6, r)
        self.assertEqual(self.read(kh_file), pinned)
        self.assertEqual([d["name"] for d in self.gedge_json("device", "ls")], ["h8"])

    # --- concurrency ---------------------------------------------------------------------
    def test_eight_concurrent_adds_lose_nothing(self):
        names = ["h1", "h2", "h3", "h4", "h5", "edge1", "edge2", "edge3"]
        procs = []
        for n in names:
            h = self.lab_host(n)
            argv = [GEDGE, "device", "add", n, "--host", h["address"], "--port", str(h["port"]),
                    "--user", self.lab()["user"], "--identity", self.lab()["key"],
                    "--host-key", h["host_key_fingerprint"], "-o", "json"]
            procs.append((n, subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True)))
        for n, p in procs:
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, f"{n}: {err}")
        ls = self.gedge_json("device", "ls")
        self.assertEqual(sorted(d["name"] for d in ls), sorted(names))
        kh = self.read(os.path.join(self.home, "known_hosts"))
        for n in names:
            self.assertIn(self.lab_host(n)["host_key"].split()[1], kh)
        r = self.run_gedge("device", "exec", "--all", "-o", "json", "--", "hostname")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["summary"]["ok"], len(names))


if __name__ == "__main__":
    unittest.main()
