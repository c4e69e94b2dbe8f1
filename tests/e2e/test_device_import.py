#!/usr/bin/env python3
"""gedge device import without the lab: parse errors name FILE:LINE (exit 2, nothing stored),
unknown variables kept as labels, groups with :children expanded, --no-connect for 10 000 hosts
in one transaction (pinning the keys known_hosts files list for the hosts), and --group
selection."""

import os
import shutil
import time
import unittest

from gedge_e2e import GedgeTest, run_cmd

INVENTORY = """# a fleet as EVC keeps it
[cams]
cam1 ansible_host=10.213.0.11 ansible_user=pi zone=north
cam2 ansible_host=10.213.0.12:2222
[cams:vars]
model=imx477

[gpus]
jet1 ansible_host=10.213.0.13 ansible_port=2200 ansible_ssh_private_key_file=/keys/jet

[edge:children]
cams
gpus

[edge:vars]
site=plant7
ansible_user=ops
"""


class DeviceImportTest(GedgeTest):
    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_inventory_validated_by_ansible_then_recorded_with_groups_and_labels(self):
        inv = self.write("fleet.ini", INVENTORY.replace("10.213.0.12:2222", "10.213.0.12 ansible_port=2222"))
        if shutil.which("ansible-inventory"):
            r = run_cmd(["ansible-inventory", "-i", inv, "--list"])
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(sorted(r.json["edge"]["children"]), ["cams", "gpus"])
            self.assertEqual(r.json["_meta"]["hostvars"]["cam1"]["site"], "plant7")
        out = self.gedge_json("device", "import", inv, "--no-connect")
        self.assertEqual(out["summary"]["ok"], 3)
        devs = {d["name"]: d for d in self.gedge_json("device", "ls")}
        self.assertEqual(set(devs), {"cam1", "cam2", "jet1"})
        c1 = devs["cam1"]
        self.assertEqual((c1["host"], c1["port"], c1["user"], c1["status"]), ("10.213.0.11", 22, "pi", "unknown"))
        self.assertEqual(c1["labels"], {"zone": "north", "model": "imx477", "site": "plant7"})
        self.assertEqual(c1["groups"], ["cams", "edge"])
        self.assertEqual((devs["cam2"]["port"], devs["cam2"]["user"]), (2222, "ops"))
        self.assertEqual((devs["jet1"]["port"], devs["jet1"]["identity"]), (2200, "/keys/jet"))
        self.assertEqual(devs["jet1"]["groups"], ["edge", "gpus"])
        # --group selects through :children
        self.assertEqual([d["name"] for d in self.gedge_json("device", "ls", "--group", "edge")],
                         ["cam1", "cam2", "jet1"])
        self.assertEqual([d["name"] for d in self.gedge_json("device", "ls", "--group", "gpus")], ["jet1"])
        r = self.run_gedge("device", "check", "--group", "nope", "-o", "json")
        self.assertEqual(r.rc, 4, r)
        # importing again changes nothing
        again = self.gedge_json("device", "import", inv, "--no-connect")
        self.assertEqual([x["status"] for x in again["results"]], ["unchanged"] * 3)

    def test_no_connect_reads_an_address_as_device_add_does(self):
        inv = self.write("fleet.ini", INVENTORY)  # cam2 ansible_host=10.213.0.12:2222
        out = self.gedge_json("device", "import", inv, "--no-connect")
        self.assertEqual(out["summary"]["ok"], 3)
        devs = {d["name"]: d for d in self.gedge_json("device", "ls")}
        self.assertEqual((devs["cam2"]["host"], devs["cam2"]["port"]), ("10.213.0.12", 2222))
        bad = self.write("bad.ini", "[a]\nx ansible_host=10.213.0.9:2222 ansible_port=2200\n")
        r = self.run_gedge("device", "import", bad, "--no-connect", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("bad.ini:2", r.err_json["message"])

    def test_parse_errors_name_file_and_line_and_store_nothing(self):
        good = self.write("good.ini", "[a]\nh1 ansible_host=10.213.0.11\n")
        for text, line, what in [("[cams\nh1\n", 1, "malformed section"),
                                 ("[cams]\nh1\nh2 ansible_port=x\n", 3, "ansible_port"),
                                 ("[cams]\nweb[01:10]\n", 2, "host range")]:
            bad = self.write("bad.ini", text)
            r = self.run_gedge("device", "import", good, bad, "--no-connect", "-o", "json")
            self.assertEqual(r.rc, 2, r)
            self.assertIn(f"{bad}:{line}:", r.err_json["message"])
            self.assertIn(what, r.err_json["message"])
            self.assertEqual(self.gedge_json("device", "ls"), [])
        y = self.write("bad.yml", "all:\n  hosts:\n    h1:\n      ansible_port: [1]\n")
        r = self.run_gedge("device", "import", y, "--no-connect", "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIn(f"{y}:4", r.err_json["message"])

    def test_no_connect_records_ten_thousand_hosts_in_one_transaction(self):
        lines = ["[fleet]"] + [f"cam{i:05d} ansible_host=10.213.{i // 250 % 250}.{i % 250 + 1} rack=r{i % 40}"
                               for i in range(10000)]
        inv = self.write("big.ini", "\n".join(lines) + "\n")
        t0 = time.monotonic()
        out = self.gedge_json("device", "import", inv, "--no-connect", timeout=300)
        took = time.monotonic() - t0
        self.assertEqual(out["summary"]["ok"], 10000)
        self.assertLess(took, 60, f"10 000 hosts took {took:.1f} s")
        devs = self.gedge_json("device", "ls", "--group", "fleet", timeout=300)
        self.assertEqual(len(devs), 10000)
        self.assertEqual({d["status"] for d in devs}, {"unknown"})
        self.assertEqual(devs[123]["labels"], {"rack": "r3"})

    def test_ssh_config_hosts(self):
        cfg = self.write("fleet.sshconfig", "Host *\n  User ops\nHost gw-a gw-b\n  HostName 10.213.0.11\n")
        out = self.gedge_json("device", "import", cfg, "--format", "ssh-config", "--no-connect")
        self.assertEqual([r["device"] for r in out["results"]], ["gw-a", "gw-b"])
        devs = {d["name"]: d for d in self.gedge_json("device", "ls")}
        self.assertEqual((devs["gw-a"]["host"], devs["gw-a"]["user"]), ("10.213.0.11", "ops"))


    def keypair(self, name):
        key = os.path.join(self.tmp, name)
        r = run_cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
        self.assertEqual(r.rc, 0, r)
        with open(key + ".pub") as f:
            line = " ".join(f.read().split()[:2])
        fp = run_cmd(["ssh-keygen", "-lf", key + ".pub"]).stdout.split()[1]
        return line, fp

    def test_no_connect_pins_the_keys_known_hosts_files_list(self):
        (ka, fa), (kb, fb), (kc, _), (kd, _), (ke, _) = (self.keypair(n) for n in "abcde")
        kh = self.write("known_hosts", f"10.213.0.11 {ka}\n[10.213.0.12]:2222 {kb}\n"
                                       f"cam4 {kc}\n@revoked * {kc}\n"
                                       f"10.213.0.15 {kd}\n10.213.0.15 {ke}\n")
        r = run_cmd(["ssh-keygen", "-H", "-f", kh])  # hashed names, as ~/.ssh/known_hosts often is
        self.assertEqual(r.rc, 0, r)
        inv = self.write("hosts.ini", "[cams]\ncam1 ansible_host=10.213.0.11\n"
                                      "cam2 ansible_host=10.213.0.12 ansible_port=2222\n"
                                      "cam3 ansible_host=10.213.0.13\ncam4 ansible_host=10.213.0.14\n"
                                      "cam5 ansible_host=10.213.0.15\n")
        r = self.run_gedge("device", "import", inv, "--no-connect", "--known-hosts", kh, "-o", "json")
        self.assertEqual(r.rc, 3, r)  # cam5: two different keys listed, not recorded
        res = {x["device"]: x for x in r.json["results"]}
        self.assertEqual(res["cam1"]["status"], "recorded")
        self.assertIn(f"host key {fa} pinned from {kh}:", res["cam1"]["message"])
        self.assertIn(f"host key {fb} pinned from", res["cam2"]["message"])
        for absent in ("cam3", "cam4"):  # not listed, or listed with a revoked key
            self.assertEqual(res[absent]["status"], "recorded")
            self.assertIn("not pinned (status unknown)", res[absent]["message"])
        self.assertEqual(res["cam5"]["status"], "host_key_mismatch")
        self.assertIn("list different ssh-ed25519 keys", res["cam5"]["message"])
        self.assertEqual(r.json["summary"]["pinned_from_known_hosts"], 2)
        devs = {d["name"]: d for d in self.gedge_json("device", "ls")}
        self.assertEqual(set(devs), {"cam1", "cam2", "cam3", "cam4"})
        self.assertEqual(devs["cam1"]["host_key"], {"type": "ssh-ed25519", "fingerprint": fa})
        self.assertEqual(devs["cam2"]["host_key"], {"type": "ssh-ed25519", "fingerprint": fb})
        self.assertIsNone(devs["cam3"]["host_key"]["fingerprint"])
        self.assertEqual({d["status"] for d in devs.values()}, {"unknown"})
        with open(os.path.join(self.home, "known_hosts")) as f:
            lines = f.read().splitlines()
        self.assertIn(f"cam1 {ka}", lines)  # OpenSSH/Ansible check the same key (HostKeyAlias)
        self.assertIn(f"cam2 {kb}", lines)
        self.assertFalse([l for l in lines if l.startswith(("cam3 ", "cam4 "))])

        # The config's known_hosts_files, when no --known-hosts is given: an unpinned device
        # already recorded gets the key the file lists.
        kf, ff = self.keypair("f")
        self.write("kh2", f"10.213.0.13 {kf}\n")
        os.makedirs(os.path.join(self.tmp, "config", "gedge"))
        self.write(os.path.join("config", "gedge", "config.yaml"), f"known_hosts_files: [{self.tmp}/kh2]\n")
        r = self.run_gedge("device", "import", inv, "--no-connect", "-o", "json")
        res = {x["device"]: x for x in r.json["results"]}
        self.assertEqual(res["cam3"]["status"], "recorded")
        self.assertIn("already registered; host key", res["cam3"]["message"])
        self.assertEqual(res["cam1"]["status"], "unchanged")
        self.assertEqual(self.gedge_json("device", "show", "cam3")["host_key"]["fingerprint"], ff)

if __name__ == "__main__":
    unittest.main()
