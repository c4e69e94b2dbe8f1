#!/usr/bin/env python3
# needs: lab
"""Field-ready SSH (issue 13), end to end against the lab's real sshd hosts: an ssh config alias
with ProxyJump through the lab bastion resolved once (ssh -G) and stored, then exec, check,
cluster build and an exported inventory working with no ssh config present; HostKeyAlias-keyed
known_hosts; the jump host's key pinned; what the jump said on failure; an agent-only device
whose Ansible runs use the agent; trust from known_hosts files (hashed, @revoked, and
@cert-authority: a host certified by the lab host CA accepted, an uncertified one or one
certified for another name refused); two hops (ProxyJump bast1,bast2 to inner2), each hop pinned
under its own alias, through exec, check, cluster build and a plain `ansible -m ping`, and a
changed key on the middle hop refused."""

import os
import shutil
import subprocess
import tempfile
import unittest

from gedge_e2e import GedgeTest, run_cmd


class SshFieldTest(GedgeTest):
    def setUp(self):
        super().setUp()
        self.require_lab()

    def jump_host(self, kind):
        for h in self.lab().get("jump_hosts", []):
            if h["kind"] == kind:
                return h
        self.skipTest("the lab has no jump hosts (LAB_JUMP=0)")

    def write_config(self, text):
        path = os.path.join(self.tmp, "ssh_config")
        with open(path, "w") as f:
            f.write(text)
        return path

    def exec_json(self, *args, env=None):
        """`gedge device exec -o json ARGS...` (-o before the `--` that starts the command)."""
        r = self.run_gedge("device", "exec", "-o", "json", *args, env=env)
        self.assertEqual(r.rc, 0, r)
        return r.json

    def known_hosts_lines(self):
        with open(os.path.join(self.home, "known_hosts")) as f:
            return f.read().splitlines()

    def test_alias_with_proxyjump_then_exec_check_build_and_export_without_ssh_config(self):
        bast, inner = self.jump_host("bastion"), self.jump_host("inner")
        lab = self.lab()
        cfg = self.write_config(
            f"Host inner-cam\n  HostName {inner['address']}\n  User {lab['user']}\n"
            f"  IdentityFile {lab['key']}\n  ProxyJump jumpbox\n"
            f"Host jumpbox\n  HostName {bast['address']}\n  User {lab['user']}\n  IdentityFile {lab['key']}\n"
            f"Host inner-closed\n  HostName {inner['address']}\n  Port 2\n  User {lab['user']}\n"
            f"  IdentityFile {lab['key']}\n  ProxyJump jumpbox\n")
        # Nothing reaches the inner network directly.
        direct = self.run_gedge("device", "add", "direct", "--host", f"{lab['user']}@{inner['address']}",
                                "--identity", lab["key"], "--host-key", inner["host_key_fingerprint"],
                                "--timeout", "5", "-o", "json")
        self.assertEqual(direct.rc, 5, direct)

        # The device's key is pinned but the jump's is unknown: host_key (6), nothing stored.
        r = self.run_gedge("--ssh-config", cfg, "device", "add", "inner1", "--host", "inner-cam",
                           "--host-key", inner["host_key_fingerprint"], "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertIn("jump host", r.err_json["message"])
        self.assertIn(bast["host_key_fingerprint"], r.err_json["message"])
        self.assertEqual(self.gedge_json("device", "ls"), [])

        # The bastion registered with its pinned key: the jump is verified as that device.
        self.add_device_at("bast1", bast)
        r = self.run_gedge("device", "add", "inner1", "--host", "inner-cam",
                           "--host-key", inner["host_key_fingerprint"], "-o", "json",
                           env={"GEDGE_SSH_CONFIG": cfg})
        self.assertEqual(r.rc, 0, r)
        d = r.json
        self.assertEqual((d["host"], d["port"], d["user"]), (inner["address"], 22, lab["user"]))
        self.assertEqual(d["alias"], "inner-cam")
        self.assertEqual(d["identity"], lab["key"])
        self.assertEqual(d["auth"], "identity")
        self.assertEqual(d["proxy_jump"]["host"], bast["address"])
        self.assertEqual(d["proxy_jump"]["user"], lab["user"])
        self.assertEqual(d["proxy_jump"]["host_key"]["fingerprint"], bast["host_key_fingerprint"])
        self.assertEqual(d["facts"]["arch"], os.uname().machine)
        # gedge's known_hosts is keyed by HostKeyAlias: the device and its jump.
        lines = self.known_hosts_lines()
        self.assertIn(f"inner1 {inner['host_key']}", lines)
        self.assertIn(f"inner1/jump {bast['host_key']}", lines)

        # From now on no ssh config exists, not even ~/.ssh: the stored record is the truth.
        os.remove(cfg)
        bare = {"HOME": tempfile.mkdtemp(dir=self.tmp)}
        out = self.exec_json("inner1", "--", "hostname", env=bare)
        self.assertEqual(out["results"][0]["stdout"].strip(), "inner1")
        chk = self.gedge_json("device", "check", "inner1", env=bare)
        self.assertEqual(chk["results"][0]["status"], "ok")

        # Ansible (OpenSSH + ProxyCommand through the pinned jump, HostKeyAlias) builds it.
        r = self.run_gedge("cluster", "build", "jc", "--devices", "inner1", "-o", "json", env=bare, timeout=600)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["devices"][0]["state"], "ready", r)

        # The exported inventory works with plain ansible against gedge's known_hosts.
        if shutil.which("ansible"):
            inv = os.path.join(self.tmp, "inventory.yml")
            ex = self.run_gedge("cluster", "export", "jc", "--format", "ansible", env=bare)
            self.assertEqual(ex.rc, 0, ex)
            with open(inv, "w") as f:
                f.write(ex.stdout)
            e = dict(self.env, **bare, ANSIBLE_HOST_KEY_CHECKING="True")
            p = run_cmd(["ansible", "-i", inv, "all", "-m", "ansible.builtin.command", "-a", "hostname"],
                        env=e, timeout=120)
            self.assertEqual(p.rc, 0, p)
            self.assertIn("inner1", p.stdout)

        # What the jump said, when the device behind it refuses.
        r = self.run_gedge("--ssh-config", self.write_config(
            f"Host inner-closed\n  HostName {inner['address']}\n  Port 2\n  User {lab['user']}\n"
            f"  IdentityFile {lab['key']}\n  ProxyJump {lab['user']}@{bast['address']}\n"),
            "device", "add", "closed", "--host", "inner-closed", "--accept-new", "--timeout", "10", "-o", "json")
        self.assertEqual(r.rc, 5, r)
        self.assertIn("through jump host", r.err_json["message"])
        self.assertIn("Connection refused", r.err_json["message"])
        self.assertNotIn("closed", [x["name"] for x in self.gedge_json("device", "ls")])

    def test_rekey_of_a_bastion_moves_the_jump_pins_of_the_devices_behind_it(self):
        bast, inner = self.jump_host("bastion"), self.jump_host("inner")
        lab = self.lab()
        self.add_device_at("bast1", bast)
        cfg = self.write_config(f"Host inner-cam\n  HostName {inner['address']}\n  User {lab['user']}\n"
                                f"  IdentityFile {lab['key']}\n  ProxyJump {lab['user']}@{bast['address']}\n")
        r = self.run_gedge("--ssh-config", cfg, "device", "add", "inner1", "--host", "inner-cam",
                           "--host-key", inner["host_key_fingerprint"], "-o", "json")
        self.assertEqual(r.rc, 0, r)
        # The bastion is reinstalled: a new host key.
        r = self.lab_sh("fault", "bast1", "rekey")
        self.assertEqual(r.rc, 0, r)
        new = self.jump_host("bastion")
        self.assertNotEqual(new["host_key_fingerprint"], bast["host_key_fingerprint"])
        r = self.run_gedge("device", "exec", "-o", "json", "inner1", "--", "hostname")
        self.assertNotEqual(r.rc, 0, "the jump's new key must be refused until it is re-pinned")
        # One rekey of the bastion device re-pins the jump of every device behind it.
        r = self.run_gedge("device", "rekey", "bast1", "--host-key", new["host_key_fingerprint"], "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertIn(f"inner1/jump {new['host_key']}", self.known_hosts_lines())
        self.assertEqual(self.gedge_json("device", "show", "inner1")["proxy_jump"]["host_key"]["fingerprint"],
                         new["host_key_fingerprint"])
        out = self.exec_json("inner1", "--", "hostname")
        self.assertEqual(out["results"][0]["stdout"].strip(), "inner1")

    def jump_host_named(self, name):
        for h in self.lab().get("jump_hosts", []):
            if h["name"] == name:
                return h
        self.skipTest(f"the lab has no {name} (LAB_JUMP=0, or brought up by an older lab.sh)")

    def test_two_hops_each_pinned_exec_check_build_export_and_a_changed_middle_key(self):
        b1, b2, inner = (self.jump_host_named(n) for n in ("bast1", "bast2", "inner2"))
        self.assertEqual(inner["jump"], "bast1,bast2")
        lab = self.lab()
        u, key = lab["user"], lab["key"]
        cfg = self.write_config(
            f"Host b1\n  HostName {b1['address']}\n  User {u}\n  IdentityFile {key}\n"
            f"Host b2\n  HostName {b2['address']}\n  User {u}\n  IdentityFile {key}\n"
            f"Host b2-via-b1\n  HostName {b2['address']}\n  User {u}\n  IdentityFile {key}\n  ProxyJump b1\n"
            f"Host cam2\n  HostName {inner['address']}\n  User {u}\n  IdentityFile {key}\n  ProxyJump b1,b2\n"
            f"Host cam2-nested\n  HostName {inner['address']}\n  User {u}\n  IdentityFile {key}\n"
            f"  ProxyJump b2-via-b1\n")
        add_inner = ["--ssh-config", cfg, "device", "add", "inner2", "--host-key", inner["host_key_fingerprint"],
                     "--timeout", "15", "-o", "json", "--host"]
        # No hop's key is known: the first hop is refused (6), nothing stored.
        r = self.run_gedge(*add_inner, "cam2")
        self.assertEqual(r.rc, 6, r)
        self.assertIn(f"jump host {b1['address']}", r.err_json["message"])
        self.assertIn(b1["host_key_fingerprint"], r.err_json["message"])
        # bast1 registered: now the second hop's unknown key is refused, reached through bast1.
        self.add_device_at("bast1", b1)
        r = self.run_gedge(*add_inner, "cam2")
        self.assertEqual(r.rc, 6, r)
        self.assertIn(f"jump host {b2['address']}", r.err_json["message"])
        self.assertIn(b2["host_key_fingerprint"], r.err_json["message"])
        self.assertEqual([d["name"] for d in self.gedge_json("device", "ls")], ["bast1"])
        # bast2 registered as a device behind bast1 (one hop).
        r = self.run_gedge("--ssh-config", cfg, "device", "add", "bast2", "--host", "b2-via-b1",
                           "--host-key", b2["host_key_fingerprint"], "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["proxy_jump"]["host"], b1["address"])

        # The jump host's own ProxyJump comes before it (as OpenSSH does it) ...
        r = self.run_gedge(*add_inner, "cam2-nested", "-v")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("verified as device 'bast1'", r.stderr)
        self.assertIn("verified as device 'bast2'", r.stderr)
        self.assertEqual(r.json["proxy_jump"]["host"], b2["address"])
        self.assertEqual([h["host"] for h in r.json["proxy_jump"]["via"]], [b1["address"]])
        self.assertEqual(self.run_gedge("device", "rm", "inner2", "--yes").rc, 0)
        # ... and ProxyJump b1,b2 is the same chain; every hop is pinned under its own alias.
        r = self.run_gedge(*add_inner, "cam2")
        self.assertEqual(r.rc, 0, r)
        d = r.json
        self.assertEqual((d["host"], d["alias"]), (inner["address"], "cam2"))
        pj = d["proxy_jump"]
        self.assertEqual((pj["host"], pj["host_key"]["fingerprint"]), (b2["address"], b2["host_key_fingerprint"]))
        self.assertEqual([(h["host"], h["user"], h["host_key"]["fingerprint"]) for h in pj["via"]],
                         [(b1["address"], u, b1["host_key_fingerprint"])])
        self.assertEqual(d["facts"]["arch"], os.uname().machine)
        lines = self.known_hosts_lines()
        self.assertIn(f"inner2 {inner['host_key']}", lines)
        self.assertIn(f"inner2/jump {b2['host_key']}", lines)
        self.assertIn(f"inner2/jump-1 {b1['host_key']}", lines)

        # No ssh config from now on: the stored chain is the truth.
        os.remove(cfg)
        bare = {"HOME": tempfile.mkdtemp(dir=self.tmp)}
        out = self.exec_json("inner2", "--", "hostname", env=bare)
        self.assertEqual(out["results"][0]["stdout"].strip(), "inner2")
        chk = self.gedge_json("device", "check", "inner2", env=bare)
        self.assertEqual(chk["results"][0]["status"], "ok")

        # Ansible through nested ProxyCommands, each hop with its own HostKeyAlias.
        r = self.run_gedge("cluster", "build", "j2", "--devices", "inner2", "-o", "json", env=bare, timeout=600)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["devices"][0]["state"], "ready", r)
        ex = self.run_gedge("cluster", "export", "j2", "--format", "ansible", env=bare)
        self.assertEqual(ex.rc, 0, ex)
        self.assertIn("HostKeyAlias=inner2/jump-1", ex.stdout)
        inv = os.path.join(self.tmp, "inventory.yml")
        with open(inv, "w") as f:
            f.write(ex.stdout)
        ansible_env = dict(self.env, **bare, ANSIBLE_HOST_KEY_CHECKING="True")
        ping = ["ansible", "-i", inv, "all", "-m", "ansible.builtin.ping"]
        if shutil.which("ansible"):
            p = run_cmd(ping, env=ansible_env, timeout=120)
            self.assertEqual(p.rc, 0, p)
            self.assertIn("pong", p.stdout)

        # The middle hop is reinstalled: its new key is refused (6) by gedge and by Ansible.
        r = self.lab_sh("fault", "bast2", "rekey")
        self.assertEqual(r.rc, 0, r)
        new = self.jump_host_named("bast2")
        self.assertNotEqual(new["host_key_fingerprint"], b2["host_key_fingerprint"])
        r = self.run_gedge("device", "exec", "-o", "json", "inner2", "--", "hostname", env=bare)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("inner2/jump", r.stderr)
        if shutil.which("ansible"):
            # Another HOME: the first ping's ControlPersist master (~/.ansible/cp) would be reused.
            fresh = dict(ansible_env, HOME=tempfile.mkdtemp(dir=self.tmp))
            p = run_cmd(ping, env=fresh, timeout=120)
            # (the middle hop's ssh is two ProxyCommands down: its "Host key verification failed"
            # does not reach Ansible's message, only that the connection closed)
            self.assertNotEqual(p.rc, 0, p)
            self.assertIn("UNREACHABLE", p.stdout)
        # One rekey of bast2 re-pins the middle hop of every device behind it.
        r = self.run_gedge("device", "rekey", "bast2", "--host-key", new["host_key_fingerprint"], "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertIn(f"inner2/jump {new['host_key']}", self.known_hosts_lines())
        self.assertIn(f"inner2/jump-1 {b1['host_key']}", self.known_hosts_lines())
        out = self.exec_json("inner2", "--", "hostname", env=bare)
        self.assertEqual(out["results"][0]["stdout"].strip(), "inner2")

    def add_device_at(self, name, h):
        lab = self.lab()
        r = self.run_gedge("device", "add", name, "--host", f"{lab['user']}@{h['address']}:{h['port']}",
                           "--identity", lab["key"], "--host-key", h["host_key_fingerprint"], "-o", "json")
        self.assertEqual(r.rc, 0, r)
        return r.json

    def test_agent_only_device_builds_with_the_agent(self):
        host = "h5"
        h = self.lab_host(host)
        keydir = tempfile.mkdtemp(dir=self.tmp)
        key = os.path.join(keydir, "agent_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        sock = os.path.join(keydir, "agent.sock")
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
        self.addCleanup(agent.wait)
        self.addCleanup(agent.terminate)
        for _ in range(100):
            if os.path.exists(sock):
                break
            subprocess.run(["sleep", "0.05"])
        add = run_cmd(["ssh-add", key], env=dict(os.environ, SSH_AUTH_SOCK=sock))
        self.assertEqual(add.rc, 0, add)
        os.remove(key)  # only the agent holds it now
        # h5 accepts only the agent's key (the lab key is removed; restored by reset-keys).
        with open(key + ".pub") as f:
            pub = f.read()
        self.addCleanup(self.lab_sh, "fault", host, "reset-keys")
        self.ssh_host(host, "cat > ~/.ssh/authorized_keys", input=pub)
        self.assertNotEqual(self.ssh_host(host, "true", check=False).rc, 0, "the lab key must be refused now")

        with_agent = {"SSH_AUTH_SOCK": sock}
        d = self.gedge_json("device", "add", host, "--host", f"{self.lab()['user']}@{h['address']}",
                            "--host-key", h["host_key_fingerprint"], env=with_agent)
        self.assertEqual(d["auth"], "agent")
        self.assertIsNone(d["identity"])
        # Without the agent nothing logs in: the agent is what authenticates.
        r = self.run_gedge("device", "exec", "-o", "json", host, "--", "true", env={"SSH_AUTH_SOCK": ""})
        self.assertNotEqual(r.rc, 0, r)
        r = self.run_gedge("cluster", "build", "ag", "--devices", host, "-o", "json", env=with_agent, timeout=600)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["devices"][0]["state"], "ready", r)

    # --- device import, contacting the hosts ----------------------------------------------
    def test_import_contacts_hosts_in_parallel_one_bad_host_is_not_stored(self):
        lab = self.lab()
        h1, h2, h3, h4 = (self.lab_host(n) for n in ("h1", "h2", "h3", "h4"))
        inv = os.path.join(self.tmp, "fleet.ini")
        with open(inv, "w") as f:
            f.write(f"[cams]\nh1 ansible_host={h1['address']} zone=north\nh2 ansible_host={h2['address']}\n"
                    f"dead ansible_host={h4['address']} ansible_port=1\n"
                    f"[gpus]\nh3 ansible_host={h3['address']}\n"
                    f"[edge:children]\ncams\ngpus\n"
                    f"[edge:vars]\nansible_user={lab['user']}\nansible_ssh_private_key_file={lab['key']}\nsite=lab\n")
        if shutil.which("ansible-inventory"):
            p = run_cmd(["ansible-inventory", "-i", inv, "--list"])
            self.assertEqual(p.rc, 0, p)
            self.assertEqual(sorted(p.json["edge"]["children"]), ["cams", "gpus"])
        r = self.run_gedge("device", "import", inv, "--accept-new", "--timeout", "10", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 3, r)
        res = {x["device"]: x for x in r.json["results"]}
        self.assertEqual({n: res[n]["status"] for n in ("h1", "h2", "h3")}, {"h1": "ok", "h2": "ok", "h3": "ok"})
        self.assertEqual(res["dead"]["status"], "unreachable")
        self.assertEqual(res["dead"]["line"], 4)
        devs = {d["name"]: d for d in self.gedge_json("device", "ls")}
        self.assertEqual(set(devs), {"h1", "h2", "h3"}, "the host that failed is not stored")
        self.assertEqual(devs["h1"]["groups"], ["cams", "edge"])
        self.assertEqual(devs["h1"]["labels"], {"zone": "north", "site": "lab"})
        self.assertEqual(devs["h1"]["host_key"]["fingerprint"], h1["host_key_fingerprint"])
        self.assertEqual(devs["h1"]["status"], "ok")
        out = self.exec_json("--group", "edge", "--", "hostname")
        self.assertEqual(sorted(x["stdout"].strip() for x in out["results"]), ["h1", "h2", "h3"])
        chk = self.gedge_json("device", "check", "--group", "gpus")
        self.assertEqual([x["device"] for x in chk["results"]], ["h3"])
        # again: nothing changes for the stored hosts
        r = self.run_gedge("device", "import", inv, "--accept-new", "--timeout", "10", "-o", "json", timeout=300)
        self.assertEqual(r.rc, 3, r)
        self.assertEqual({x["device"]: x["status"] for x in r.json["results"] if x["device"] != "dead"},
                         {"h1": "unchanged", "h2": "unchanged", "h3": "unchanged"})

    # --- (c) trust from known_hosts files, user certificates ------------------------------
    def test_known_hosts_file_pins_hashed_and_refuses_a_different_or_revoked_key(self):
        lab = self.lab()
        h1, h2, h3, h4 = (self.lab_host(n) for n in ("h1", "h2", "h3", "h4"))
        kh = os.path.join(self.tmp, "operator_known_hosts")
        with open(kh, "w") as f:
            f.write(f"{h1['address']} {h1['host_key']}\n")
            f.write(f"{h2['address']} {h3['host_key']}\n")        # not h2's key
            f.write(f"@revoked * {h4['host_key']}\n")
            f.write(f"{h4['address']} {h4['host_key']}\n")
        subprocess.run(["ssh-keygen", "-H", "-f", kh], check=True, capture_output=True)  # hash the names
        with open(kh) as f:
            self.assertNotIn(h1["address"], f.read())
        base = ["--user", lab["user"], "--identity", lab["key"], "--known-hosts", kh, "-o", "json"]
        d = self.gedge_json("device", "add", "h1", "--host", h1["address"], *base[:-2])
        self.assertEqual(d["host_key"]["fingerprint"], h1["host_key_fingerprint"])
        r = self.run_gedge("device", "add", "h2", "--host", h2["address"], *base)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("lists a different", r.err_json["message"])
        r = self.run_gedge("device", "add", "h4", "--host", h4["address"], *base)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("revoked", r.err_json["message"])
        self.assertEqual([d["name"] for d in self.gedge_json("device", "ls")], ["h1"])

        # import: one host whose key differs from the file: exit 3, that host not stored
        inv = os.path.join(self.tmp, "hosts.ini")
        with open(inv, "w") as f:
            f.write(f"[cams]\nh1 ansible_host={h1['address']}\nh2 ansible_host={h2['address']}\n"
                    f"[cams:vars]\nansible_user={lab['user']}\nansible_ssh_private_key_file={lab['key']}\n")
        r = self.run_gedge("device", "import", inv, "--known-hosts", kh, "-o", "json")
        self.assertEqual(r.rc, 3, r)
        res = {x["device"]: x for x in r.json["results"]}
        self.assertIn(res["h1"]["status"], ("ok", "unchanged"))
        self.assertEqual(res["h2"]["status"], "host_key_mismatch")
        self.assertEqual([d["name"] for d in self.gedge_json("device", "ls")], ["h1"])

    def test_config_known_hosts_files_pin_like_the_flag(self):
        lab = self.lab()
        h1, h2 = self.lab_host("h1"), self.lab_host("h2")
        cfgdir = os.path.join(self.tmp, "config", "gedge")
        os.makedirs(cfgdir, exist_ok=True)
        with open(os.path.join(cfgdir, "fleet_known_hosts"), "w") as f:
            f.write(f"{h1['address']} {h1['host_key']}\n{h2['address']} {h1['host_key']}\n")
        with open(os.path.join(cfgdir, "config.yaml"), "w") as f:
            f.write("known_hosts_files:\n  - fleet_known_hosts   # next to this file\n")
        base = ["--user", lab["user"], "--identity", lab["key"]]
        d = self.gedge_json("device", "add", "h1", "--host", h1["address"], *base)
        self.assertEqual(d["host_key"]["fingerprint"], h1["host_key_fingerprint"])
        r = self.run_gedge("device", "add", "h2", "--host", h2["address"], *base, "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertIn("fleet_known_hosts:2 lists a different", r.err_json["message"])
        # --known-hosts replaces the configured list
        own = os.path.join(self.tmp, "h2_known_hosts")
        with open(own, "w") as f:
            f.write(f"{h2['address']} {h2['host_key']}\n")
        d = self.gedge_json("device", "add", "h2", "--host", h2["address"], *base, "--known-hosts", own)
        self.assertEqual(d["host_key"]["fingerprint"], h2["host_key_fingerprint"])

    def test_user_certificate_login(self):
        hosts = self.lab().get("cert_hosts", [])
        if not hosts:
            self.skipTest("the lab has no certificate host (LAB_CERT=0)")
        h = hosts[0]
        lab = self.lab()
        keydir = tempfile.mkdtemp(dir=self.tmp)
        key = os.path.join(keydir, "id_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        bare = os.path.join(tempfile.mkdtemp(dir=self.tmp), "id_ed25519")
        shutil.copy(key, bare)
        # without a certificate the host refuses the key
        r = self.run_gedge("device", "add", "nocert", "--host", f"{lab['user']}@{h['address']}", "--identity", bare,
                           "--host-key", h["host_key_fingerprint"], "-o", "json")
        self.assertEqual(r.rc, 6, r)
        subprocess.run(["ssh-keygen", "-q", "-s", lab["user_ca"], "-I", "gedge-e2e", "-n", lab["user"],
                        "-V", "-5m:+1h", key + ".pub"], check=True)
        d = self.gedge_json("device", "add", "cert1", "--host", f"{lab['user']}@{h['address']}", "--identity", key,
                            "--host-key", h["host_key_fingerprint"])
        self.assertEqual(d["certificate"], key + "-cert.pub")
        out = self.exec_json("cert1", "--", "hostname")
        self.assertEqual(out["results"][0]["stdout"].strip(), "cert1")

    # --- @cert-authority: host certificates from the lab host CA ---------------------------
    def host_cert_host(self, name):
        for h in self.lab().get("host_cert_hosts", []):
            if h["name"] == name:
                return h
        self.skipTest("the lab has no host-certificate hosts (LAB_HOSTCERT=0)")

    def test_cert_authority_pins_a_certified_host_and_refuses_the_rest(self):
        lab = self.lab()
        good, other = self.host_cert_host("hcert1"), self.host_cert_host("hcert2")
        plain = self.jump_host("bastion")  # 10.213.0.41: uncertified, under the same pattern
        self.assertTrue(plain["address"].startswith("10.213.0.4"))
        with open(lab["host_ca"]) as f:
            ca = " ".join(f.read().split()[:2])
        kh = os.path.join(self.tmp, "ca_known_hosts")
        with open(kh, "w") as f:
            f.write(f"# the fleet's host CA\n@cert-authority 10.213.0.4? {ca}\n")
        base = ["--user", lab["user"], "--identity", lab["key"], "--known-hosts", kh, "-o", "json"]

        # The CA revoked: nothing is trusted through it.
        revoked = os.path.join(self.tmp, "revoked_known_hosts")
        with open(revoked, "w") as f:
            f.write(f"@cert-authority 10.213.0.4? {ca}\n@revoked * {ca}\n")
        r = self.run_gedge("device", "add", "hcert1", "--host", good["address"], *base[:-4], "--known-hosts",
                           revoked, "-o", "json")
        self.assertEqual(r.rc, 6, r)
        self.assertIn("not certified", r.err_json["message"])
        self.assertIn("revoked", r.err_json["message"])

        # An uncertified host under the CA's pattern: refused (6), nothing stored.
        r = self.run_gedge("device", "add", "bast1", "--host", plain["address"], *base)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("not certified by the @cert-authority of " + kh + ":2", r.err_json["message"])
        # Certified by the CA, but for another name: OpenSSH's principal check refuses it.
        r = self.run_gedge("device", "add", "hcert2", "--host", other["address"], *base)
        self.assertEqual(r.rc, 6, r)
        self.assertIn("principal", r.err_json["message"])
        self.assertEqual(self.gedge_json("device", "ls"), [])
        kh_file = os.path.join(self.home, "known_hosts")
        self.assertFalse(os.path.exists(kh_file) and self.known_hosts_lines(), "nothing is pinned")

        # The certified host: accepted with no per-host pin, its plain key pinned.
        r = self.run_gedge("device", "add", "hcert1", "--host", good["address"], "-v", *base)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["host_key"]["fingerprint"], good["host_key_fingerprint"])
        self.assertIn("certified by CA", r.stderr)
        self.assertIn(f"hcert1 {good['host_key']}", self.known_hosts_lines())
        out = self.exec_json("hcert1", "--", "hostname")
        self.assertEqual(out["results"][0]["stdout"].strip(), "hcert1")

    # --- (d) -v levels ------------------------------------------------------------------------
    def test_verbose_levels_show_connection_kex_and_libssh_log(self):
        self.add_device("h1")
        quiet = self.run_gedge("device", "check", "h1", "-o", "json")
        self.assertEqual(quiet.rc, 0, quiet)
        self.assertNotIn("ssh h1:", quiet.stderr)
        v1 = self.run_gedge("device", "check", "h1", "-v", "-o", "json")
        self.assertEqual(v1.rc, 0, v1)
        self.assertIn("ssh h1: connecting to", v1.stderr)
        self.assertIn("matches the pin", v1.stderr)
        self.assertIn("authenticated as", v1.stderr)
        self.assertNotIn("key exchange", v1.stderr)
        v2 = self.run_gedge("device", "check", "h1", "-vv", "-o", "json")
        self.assertIn("key exchange", v2.stderr)
        self.assertIn("accepted", v2.stderr)
        self.assertNotIn("libssh:", v2.stderr)
        v3 = self.run_gedge("device", "check", "h1", "-vvv", "-o", "json")
        self.assertEqual(v3.rc, 0, v3)
        self.assertIn("libssh:", v3.stderr)
        self.assertIsNotNone(v3.json, "stdout stays clean JSON under -vvv")


if __name__ == "__main__":
    unittest.main()
