"""The foundation, end to end: init, version, errors and exit codes, man pages and completions
checked against the command tree."""
import json
import os
import re
import sqlite3
import shutil
import stat
import subprocess
import unittest

from gedge_e2e import GEDGE, SOURCE_DIR, GedgeTest, run_cmd


def read(path):
    with open(path) as f:
        return f.read()


def tree():
    out = subprocess.run([GEDGE, "__tree"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def nouns():
    return {s["name"]: s for s in tree()["subcommands"]}


class InitTest(GedgeTest):
    def test_init_creates_private_home_db_and_key(self):
        st = os.stat(self.home)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        for f in ("gedge.db", "id_ed25519", "id_ed25519.pub"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.home, f)).st_mode), 0o600, f)
        with open(os.path.join(self.home, "id_ed25519.pub")) as f:
            self.assertTrue(f.read().startswith("ssh-ed25519 "))
        # the key is a real OpenSSH key: ssh-keygen derives the same fingerprint gedge reports
        r = self.run_gedge("init", "-o", "json")
        fp = subprocess.run(["ssh-keygen", "-lf", os.path.join(self.home, "id_ed25519")],
                            capture_output=True, text=True, check=True).stdout.split()[1]
        self.assertEqual(r.json["key_fingerprint"], fp)

    def test_init_twice_changes_nothing(self):
        key = read(os.path.join(self.home, "id_ed25519"))
        r = self.run_gedge("init", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(r.json["changed"])
        self.assertEqual(read(os.path.join(self.home, "id_ed25519")), key)

    def test_home_flag_beats_environment(self):
        other = os.path.join(self.tmp, "other")
        r = self.run_gedge("--home", other, "init", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.json["home"], other)
        self.assertTrue(os.path.exists(os.path.join(other, "gedge.db")))

    def test_database_from_newer_gedge_is_refused(self):
        db = sqlite3.connect(os.path.join(self.home, "gedge.db"))
        db.execute("PRAGMA user_version=999")
        db.commit()
        db.close()
        r = self.run_gedge("init", "-o", "json")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("newer", r.err_json["message"])
        db = sqlite3.connect(os.path.join(self.home, "gedge.db"))
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 999)

    def test_log_file_is_written_without_secrets(self):
        self.run_gedge("init")
        log = os.path.join(self.home, "log", "gedge.log")
        self.assertTrue(os.path.exists(log))
        self.assertNotIn("PRIVATE KEY", read(log))


class VersionAndErrorsTest(GedgeTest):
    def test_version_json(self):
        r = self.run_gedge("version", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.json["version"], r"^\d+\.\d+\.\d+$")
        self.assertIn("commit", r.json)
        for lib in ("cli11", "yaml-cpp", "libssh", "libcurl", "nlohmann_json", "fmt", "sqlite", "hwloc"):
            self.assertTrue(r.json["libraries"].get(lib), lib)

    def test_version_reports_build_time_commit_build_type_compiler_and_libraries(self):
        r = self.run_gedge("version", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        for lib in ("openssl", "zstd", "valijson"):
            self.assertTrue(r.json["libraries"].get(lib), lib)
        self.assertTrue(r.json["build_type"])
        self.assertRegex(r.json["compiler"], r"^(gcc|clang) \d")
        self.assertIn("ansible_core", r.json)
        if shutil.which("ansible-playbook"):
            self.assertRegex(r.json["ansible_core"], r"^\d+\.\d+")
        # git describe of the tree at build time: HEAD's, so a rebuild after a commit reports it
        head = subprocess.run(["git", "-C", SOURCE_DIR, "describe", "--always", "--abbrev=12"],
                              capture_output=True, text=True)
        if head.returncode == 0:
            self.assertEqual(r.json["commit"].removesuffix("-dirty"), head.stdout.strip())
        self.assertRegex(self.run_gedge("--version").stdout, rf"^gedge \S+ \({re.escape(r.json['commit'])}\)")

    def test_a_binary_outside_the_tree_finds_playbooks(self):
        # GEDGE_PLAYBOOK_DIR, then <exe>/../share/gedge/playbooks, then the install prefix, then
        # the source tree recorded at configure time (a build directory anywhere).
        prefix = os.path.join(self.tmp, "prefix")
        os.makedirs(os.path.join(prefix, "bin"))
        exe = os.path.join(prefix, "bin", "gedge")
        try:
            os.link(GEDGE, exe)
        except OSError:
            shutil.copy2(GEDGE, exe)
        env = {k: v for k, v in self.env.items() if k != "GEDGE_PLAYBOOK_DIR"}
        def where(extra=None):
            r = run_cmd([exe, "version", "-o", "json"], env={**env, **(extra or {})})
            self.assertEqual(r.rc, 0, r)
            return r.json["playbook_dir"]
        found = where()
        self.assertTrue(found and os.path.exists(os.path.join(found, "containers.yml")), found)
        self.assertTrue(found in ("/usr/local/share/gedge/playbooks", "/usr/share/gedge/playbooks")
                        or os.path.samefile(found, os.path.join(SOURCE_DIR, "playbooks")), found)
        share = os.path.join(prefix, "share", "gedge", "playbooks")
        os.makedirs(share)
        with open(os.path.join(share, "containers.yml"), "w") as f:
            f.write("---\n")
        self.assertEqual(where(), share)
        mine = os.path.join(self.tmp, "mine")
        os.makedirs(mine)
        with open(os.path.join(mine, "containers.yml"), "w") as f:
            f.write("---\n")
        self.assertEqual(where({"GEDGE_PLAYBOOK_DIR": mine}), mine)
        self.assertIsNone(where({"GEDGE_PLAYBOOK_DIR": self.tmp}))  # named, but empty: not found

    def test_version_yaml_and_table(self):
        r = self.run_gedge("version", "-o", "yaml")
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.stdout, r"(?m)^version: ")
        r = self.run_gedge("version")
        self.assertRegex(r.stdout, r"(?m)^version:\s+\d")

    def test_parse_errors_exit_2_with_json_error_on_stderr(self):
        for argv in (["no-such-noun"], ["--parallel", "0", "version"], ["--color", "purple", "version"]):
            r = self.run_gedge("-o", "json", *argv)
            self.assertEqual(r.rc, 2, r)
            self.assertEqual(r.err_json["error"], "usage")
            self.assertEqual(r.err_json["code"], 2)
            self.assertEqual(r.stdout, "")

    def test_argv_that_is_not_utf8_gives_a_json_error_not_an_abort(self):
        bad = os.fsdecode(b"cam-\xff")
        for argv in (["device", "show", bad], [bad], ["device", "ls", "--tier", bad]):
            r = self.run_gedge("-o", "json", *argv)
            self.assertIn(r.rc, (2, 4), r)
            self.assertNotEqual(r.err_json["error"], "internal", r)
            self.assertIn("\ufffd", r.err_json["message"] + r.err_json.get("hint", ""), r)

    def test_unknown_output_format_is_usage_error(self):
        r = self.run_gedge("-o", "xml", "version")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("unknown output format", r.stderr)

    def test_help_is_exit_0_and_lists_every_noun(self):
        r = self.run_gedge("--help")
        self.assertEqual(r.rc, 0)
        for noun in ("init", "device", "cluster", "runtime", "svc", "sched", "tune", "completion", "version"):
            self.assertRegex(r.stdout, rf"(?m)^\s+{noun}\s")

    def test_every_verb_has_help_with_examples(self):
        for noun, spec in nouns().items():
            for verb in spec["subcommands"] or [None]:
                argv = [noun] + ([verb["name"]] if verb else []) + ["--help"]
                r = self.run_gedge(*argv)
                self.assertEqual(r.rc, 0, r)
                if verb or noun in ("init", "version", "completion"):
                    self.assertIn("Examples:", r.stdout, " ".join(argv))

    def test_config_file_sets_default_output(self):
        cfg = os.path.join(self.tmp, "config", "gedge")
        os.makedirs(cfg)
        with open(os.path.join(cfg, "config.yaml"), "w") as f:
            f.write("output: json\n")
        r = self.run_gedge("version")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("libraries", r.json)

    def write_config(self, text, path=None):
        path = path or os.path.join(self.tmp, "config", "gedge", "config.yaml")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_unknown_config_key_warns_and_the_rest_applies(self):
        self.write_config("output: json\nfrobnicate: 3\n")
        r = self.run_gedge("version")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("libraries", r.json)  # output: json still applied
        self.assertRegex(r.stderr, r"warning: .*config.yaml:2: unknown key 'frobnicate'")

    def test_bad_config_values_exit_2_naming_file_line_and_key(self):
        for text, line, key in (("color: purple\n", 1, "color"), ("output: json\ntimeout: -5\n", 2, "timeout"),
                                ("parallel: 0\n", 1, "parallel"), ("output: xml\n", 1, "output"),
                                ("known_hosts_files: ~/.ssh/known_hosts\n", 1, "known_hosts_files"),
                                ("output: json\nknown_hosts_files:\n  - /nonexistent/known_hosts\n", 3,
                                 "known_hosts_files")):
            self.write_config(text)
            r = self.run_gedge("version")
            self.assertEqual(r.rc, 2, (text, r))
            self.assertIn(f"config.yaml:{line}: {key}:", r.stderr)
            self.assertEqual(r.stdout, "")
            r = self.run_gedge("-o", "json", "version")
            self.assertEqual(r.rc, 2, r)
            self.assertEqual(r.err_json["error"], "usage")
            self.assertIn(f"config.yaml:{line}: {key}:", r.err_json["message"])

    def test_config_output_leaves_raw_artefacts_alone(self):
        self.write_config("output: json\n")
        r = self.run_gedge("device", "key")
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.stdout.startswith("ssh-ed25519 "), r)
        r = self.run_gedge("svc", "render", os.path.join(SOURCE_DIR, "examples", "web.yaml"))
        self.assertEqual(r.rc, 0, r)
        self.assertIsNone(r.json, "svc render must stay YAML")
        self.assertRegex(r.stdout, r"(?m)^kind: ")
        r = self.run_gedge("completion", "bash")
        self.assertIn("complete -F _gedge gedge", r.stdout)
        # state-showing verbs follow it; -o still wins everywhere
        self.assertIsInstance(self.run_gedge("device", "ls").json, list)
        self.assertIn("public_key", self.run_gedge("device", "key", "-o", "json").json)
        self.assertRegex(self.run_gedge("version", "-o", "table").stdout, r"(?m)^version:\s")

    def test_gedge_config_names_another_file(self):
        other = self.write_config("output: yaml\n", os.path.join(self.tmp, "elsewhere.yaml"))
        self.write_config("output: json\n")
        r = self.run_gedge("version", env={**self.env, "GEDGE_CONFIG": other})
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.stdout, r"(?m)^version: ")
        r = self.run_gedge("version", env={**self.env, "GEDGE_CONFIG": os.path.join(self.tmp, "missing.yaml")})
        self.assertEqual(r.rc, 2, r)
        self.assertIn("GEDGE_CONFIG names", r.stderr)


class LsShapeTest(GedgeTest):
    """Every `ls` prints one shape (schemas/ls.schema.json): a bare array of objects with a key."""

    def check_shape(self, noun, items):
        schema = json.loads(read(os.path.join(SOURCE_DIR, "schemas", "ls.schema.json")))
        self.assertEqual(schema["type"], "array")
        self.assertIsInstance(items, list, f"{noun} ls -o json must be an array")
        for item in items:
            self.assertIsInstance(item, dict, noun)
            self.assertTrue(any(all(k in item for k in alt["required"]) for alt in schema["items"]["anyOf"]),
                            f"{noun} ls item without name or id: {item}")

    def test_every_noun_with_ls_prints_a_bare_array(self):
        with_ls = [n for n, spec in nouns().items() if any(v["name"] == "ls" for v in spec["subcommands"])]
        self.assertEqual(sorted(with_ls), ["cluster", "device", "runtime", "sched", "svc"])
        for noun in with_ls:
            r = self.run_gedge(noun, "ls", "-o", "json")
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.json, [], noun)
            self.check_shape(noun, r.json)
        tree_dir = os.path.join(self.tmp, "tree")
        os.makedirs(os.path.join(tree_dir, "bin"))
        with open(os.path.join(tree_dir, "bin", "tool"), "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        r = self.run_gedge("runtime", "pack", "--name", "one", "--component", f"env={tree_dir}", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        r = self.run_gedge("runtime", "ls", "-o", "json")
        self.assertEqual([b["name"] for b in r.json], ["one"])
        self.check_shape("runtime", r.json)


class HelpTest(GedgeTest):
    """Help as git and kubectl give it: usage for a bare command, `help`, suggestions for typos."""

    def test_bare_gedge_and_bare_noun_print_usage_and_exit_2(self):
        r = self.run_gedge()
        self.assertEqual(r.rc, 2, r)
        self.assertIn("Usage:", r.stderr)
        self.assertRegex(r.stderr, r"(?m)^\s+device\s")
        self.assertIn("error: no command given", r.stderr)
        r = self.run_gedge("device")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("Usage: gedge device", r.stderr)
        self.assertRegex(r.stderr, r"(?m)^\s+exec\s")
        self.assertIn("'gedge device' needs a verb", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_help_verb_prints_the_page_and_exits_0(self):
        for argv, usage in ((["help"], "Usage: gedge"), (["help", "device"], "Usage: gedge device"),
                            (["device", "help"], "Usage: gedge device"),
                            (["help", "device", "ls"], "Usage: gedge device ls"),
                            (["-o", "json", "help", "runtime", "push"], "Usage: gedge runtime push")):
            r = self.run_gedge(*argv)
            self.assertEqual(r.rc, 0, r)
            self.assertIn(usage, r.stdout, argv)
        self.assertEqual(self.run_gedge("help", "device", "ls").stdout,
                         self.run_gedge("device", "ls", "--help").stdout)

    def test_typos_suggest_the_nearest_noun_or_verb(self):
        for argv, best in ((["devcie", "ls"], "device"), (["device", "lst"], "ls"),
                           (["runtim", "ls"], "runtime"), (["help", "clustr"], "cluster"),
                           (["svc", "deplyo"], "deploy"), (["-q", "--home", "/nowhere", "device", "lst"], "ls")):
            r = self.run_gedge(*argv)
            self.assertEqual(r.rc, 2, r)
            self.assertIn(f"did you mean '{best}'?", r.stderr, argv)
            r = self.run_gedge("-o", "json", *argv)
            self.assertEqual(r.rc, 2, r)
            self.assertEqual(r.err_json["error"], "usage", r)
            self.assertIn(f"did you mean '{best}'?", r.err_json["hint"], argv)
        r = self.run_gedge("zzzzzzzz")
        self.assertEqual(r.rc, 2, r)
        self.assertNotIn("did you mean", r.stderr)
        self.assertIn("unknown command 'zzzzzzzz'", r.stderr)

    def test_usage_errors_are_json_under_o_json_wherever_o_stands(self):
        for argv in (["-o", "json"], ["-o", "json", "device"], ["device", "-o", "json"],
                     ["device", "ls", "--no-such-flag", "-o", "json"], ["--output=json", "devcie"],
                     ["device", "show", "-o", "json"]):
            r = self.run_gedge(*argv)
            self.assertEqual(r.rc, 2, r)
            self.assertEqual(r.err_json["error"], "usage", r)
            self.assertEqual(r.stdout, "")
            self.assertEqual(len([ln for ln in r.stderr.splitlines() if ln.strip()]), 1, r)

    def test_version_flag(self):
        r = self.run_gedge("--version")
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.stdout, r"^gedge \d+\.\d+\.\d+ ")

    def test_every_help_page_lists_the_global_flags(self):
        for noun, spec in nouns().items():
            if noun.startswith("__"):
                continue
            for verb in spec["subcommands"] or [None]:
                argv = [noun] + ([verb["name"]] if verb else []) + ["--help"]
                out = self.run_gedge(*argv).stdout
                self.assertIn("Global flags:", out, argv)
                for flag in ("--output", "--quiet", "--home", "--timeout", "--parallel", "--color"):
                    self.assertIn(flag, out.split("Global flags:")[1], argv)


class InterruptTest(GedgeTest):
    def test_ctrl_c_mid_run_exits_130_with_a_clear_error(self):
        import signal
        import time
        p = subprocess.Popen([GEDGE, "-o", "json", "tune", "bench", "--runs", "5", "--cpuset", "0",
                              "--", "sleep", "3"], env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 130, err)
        self.assertEqual(json.loads(err.strip().splitlines()[-1])["error"], "interrupted")


class DocsMatchTreeTest(GedgeTest):
    """Completions and man pages are checked against the live command tree."""

    def test_committed_completions_match_generated(self):
        files = {"bash": "gedge.bash", "zsh": "_gedge", "fish": "gedge.fish"}
        for shell, name in files.items():
            r = self.run_gedge("completion", shell)
            self.assertEqual(r.rc, 0, r)
            with open(os.path.join(SOURCE_DIR, "completions", name)) as f:
                self.assertEqual(f.read(), r.stdout,
                                 f"completions/{name} is stale: run scripts/update-generated.sh")

    def test_bash_completion_completes_verbs_and_flags(self):
        script = os.path.join(SOURCE_DIR, "completions", "gedge.bash")
        def complete(words):
            prog = (f'source {script}; COMP_WORDS=({GEDGE} {words}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); '
                    '_gedge; printf "%s\\n" "${COMPREPLY[@]}"')
            return subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=self.env).stdout.split()
        self.assertIn("device", complete("''"))
        self.assertIn("--output", complete("--"))
        self.assertEqual(complete("-q devi"), ["device"])  # a flag before the noun is skipped
        for noun, spec in nouns().items():
            for verb in spec["subcommands"]:
                self.assertIn(verb["name"], complete(f"{noun} ''"), noun)
                for opt in verb["options"]:
                    if opt["name"] != "--help":
                        self.assertIn(opt["name"], complete(f"{noun} {verb['name']} --"))

    def add_device_rows(self, *names):
        db = sqlite3.connect(os.path.join(self.home, "gedge.db"))
        for n in names:
            db.execute("INSERT INTO devices (name, host, user, created_at, updated_at) "
                       "VALUES (?, '10.213.0.9', 'u', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')", (n,))
        db.commit()
        db.close()

    def complete(self, *words):
        r = self.run_gedge("__complete", *words)
        self.assertEqual(r.rc, 0, r)
        return [ln.split("\t")[0] for ln in r.stdout.splitlines()], r.stdout

    def test_dynamic_completion_offers_inventory_names_and_flag_values(self):
        self.add_device_rows("cam-1", "cam-2", "gw")
        self.assertEqual(self.complete("device", "show", "")[0], ["cam-1", "cam-2", "gw"])
        self.assertEqual(self.complete("device", "exec", "ca")[0], ["cam-1", "cam-2"])
        self.assertEqual(self.complete("runtime", "verify", "--device", "")[0], ["cam-1", "cam-2", "gw"])
        self.assertEqual(self.complete("device", "ls", "--tier", "")[0], ["local", "neighbor", "cloud"])
        self.assertEqual(self.complete("--color", "")[0], ["auto", "always", "never"])
        self.assertEqual(self.complete("version", "-o", "")[0], ["table", "json", "yaml"])
        self.assertIn("k8s", self.complete("runtime", "mounts", "x", "-o", "")[0])
        self.assertIn("prometheus-rules", self.complete("cluster", "export", "lab", "--format", "")[0])
        self.assertIn("k3s", self.complete("cluster", "build", "lab", "--profile", "")[0])
        self.assertIn("pipeline", self.complete("sched", "place", "f.yaml", "--policy", "")[0])
        self.assertEqual(self.complete("completion", "")[0], ["bash", "zsh", "fish"])
        self.assertEqual(self.complete("svc", "render", "")[0], [])  # a file: the shell completes it
        self.assertEqual(self.complete("device", "add", "x", "--identity", "")[0], [])
        self.assertEqual(self.complete("device", "exec", "gw", "--", "")[0], [])
        # nouns with descriptions (zsh and fish show them); hidden commands are not offered
        names, text = self.complete("")
        self.assertIn("device", names)
        self.assertIn("help", names)
        self.assertNotIn("__tree", names)
        self.assertIn("device\tRegister, check and command edge devices over SSH", text)
        self.assertIn("--label", self.complete("device", "ls", "--")[0])
        self.assertIn("--home", self.complete("device", "ls", "--")[0])
        # another home, given on the command line, is the one read
        other = os.path.join(self.tmp, "other")
        self.assertEqual(self.run_gedge("--home", other, "init").rc, 0)
        self.assertEqual(self.complete("--home", other, "device", "show", "")[0], [])
        # runtimes by name and by short id
        tree_dir = os.path.join(self.tmp, "tree")
        os.makedirs(tree_dir)
        with open(os.path.join(tree_dir, "f"), "w") as f:
            f.write("x")
        r = self.run_gedge("runtime", "pack", "--name", "demo", "--component", f"env={tree_dir}", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sorted(self.complete("runtime", "push", "")[0]), sorted(["demo", r.json["id"][:12]]))

    def test_bash_script_completes_device_names_through_gedge(self):
        self.add_device_rows("cam-1", "gw")
        script = os.path.join(SOURCE_DIR, "completions", "gedge.bash")
        prog = (f'source {script}; COMP_WORDS=({GEDGE} device show ""); COMP_CWORD=3; _gedge; '
                'printf "%s\\n" "${COMPREPLY[@]}"')
        out = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=self.env).stdout.split()
        self.assertEqual(out, ["cam-1", "gw"])

    def test_zsh_and_fish_scripts_show_descriptions_from_gedge(self):
        zsh = self.run_gedge("completion", "zsh").stdout
        self.assertIn("__complete", zsh)
        self.assertIn("_describe", zsh)
        fish = self.run_gedge("completion", "fish").stdout
        self.assertIn("__complete", fish)
        for shell in ("zsh", "fish"):
            if shutil.which(shell) is None:
                continue
            script = os.path.join(SOURCE_DIR, "completions", "_gedge" if shell == "zsh" else "gedge.fish")
            r = subprocess.run([shell, "-n", script], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_man_pages_cover_every_noun_verb_and_flag(self):
        main = read(os.path.join(SOURCE_DIR, "man", "gedge.1"))
        root = tree()
        for opt in root["options"]:
            if opt["name"] != "--help":
                self.assertIn(opt["name"].replace("-", r"\-"), main, opt["name"])
        for noun, spec in nouns().items():
            if noun.startswith("__"):
                continue
            self.assertIn(f".B {noun}", main, noun)
            if not spec["subcommands"]:
                continue
            page = os.path.join(SOURCE_DIR, "man", f"gedge-{noun}.1")
            self.assertTrue(os.path.exists(page), f"man/gedge-{noun}.1 missing")
            text = read(page).replace(r"\-", "-")
            self.assertIn("EXIT STATUS", text, page)
            for verb in spec["subcommands"]:
                self.assertRegex(text, rf"\b{re.escape(verb['name'])}\b", f"{noun} {verb['name']}")
                for opt in verb["options"]:
                    if opt["name"] != "--help":
                        self.assertIn(opt["name"], text, f"{noun} {verb['name']} {opt['name']}")


if __name__ == "__main__":
    unittest.main()
