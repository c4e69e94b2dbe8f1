"""gedge svc render end to end: the built binary, real files, JSON output and exit codes."""
import base64
import json
import os
import subprocess
import tempfile
import unittest

from gedge_e2e import GEDGE, GedgeTest, SOURCE_DIR
from k8s_check import assert_valid_k8s

GOLDEN = os.path.join(SOURCE_DIR, "tests", "golden", "svc")


class SvcRenderTest(GedgeTest):
    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def test_render_json_kinds_and_defaults(self):
        r = self.run_gedge("svc", "render", os.path.join(GOLDEN, "v2-basic.yaml"), "-o", "json")
        self.assertEqual(r.rc, 0, r)
        kinds = [d["kind"] for d in r.json]
        self.assertEqual(kinds, ["Deployment", "Service", "ContainerHostPlan"])
        dep = r.json[0]
        c0 = dep["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(c0["name"], "web")
        self.assertEqual(c0["resources"]["requests"], {"cpu": "200m", "memory": "500Mi"})
        self.assertEqual(dep["spec"]["replicas"], 1)

    def test_render_yaml_matches_golden(self):
        for name in ("autoscale", "pipeline", "v1-short"):
            r = self.run_gedge("svc", "render", os.path.join(GOLDEN, name + ".yaml"))
            self.assertEqual(r.rc, 0, r)
            with open(os.path.join(GOLDEN, name + ".out.yaml")) as f:
                self.assertEqual(r.stdout, f.read(), name)

    def test_every_golden_render_passes_the_kubernetes_schemas(self):
        inputs = sorted(f for f in os.listdir(GOLDEN) if f.endswith((".yaml", ".json")) and ".out." not in f)
        self.assertTrue(inputs)
        for name in inputs:
            r = self.run_gedge("svc", "render", os.path.join(GOLDEN, name), "-o", "json")
            self.assertEqual(r.rc, 0, r)
            with self.subTest(name):
                assert_valid_k8s(self, r.json)

    def test_invalid_file_exit_2_with_line_and_path(self):
        p = self.write("app.yaml", "name: w\ncontainers:\n  - image: i:1\n    ports:\n"
                                   "      - containerPort: 80\n      - containerPort: eighty\n")
        r = self.run_gedge("svc", "render", p, "-o", "json")
        self.assertEqual(r.rc, 2, r)
        self.assertIsNotNone(r.err_json, r.stderr)
        self.assertIn("app.yaml:6: containers[0].ports[1].containerPort: expected integer",
                      r.err_json["message"])

    def test_cycle_and_unknown_field_exit_2(self):
        cyc = self.write("p.yaml", "kind: Pipeline\nname: p\nstages:\n"
                                   "  - {name: a, after: [b], containers: [i:1]}\n"
                                   "  - {name: b, containers: [i:1]}\n")
        r = self.run_gedge("svc", "render", cyc)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("cycle", r.stderr)
        unk = self.write("u.yaml", "name: w\ncontainers: [i:1]\nreplica: 2\n")
        r = self.run_gedge("svc", "render", unk)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("u.yaml:3: replica: unknown field", r.stderr)

    def test_30kb_patterned_string_exit_2_not_sigsegv(self):
        """Issue 16 item 3: std::regex inside valijson overflowed the stack on a 30 KB image, label
        or env name (exit 139); each is now refused by its maxLength first."""
        big = "a" * 30000
        for name, text, says in [
            ("image.yaml", f"name: w\ncontainers:\n  - image: {big}\n", "containers[0].image: longer than 1024"),
            ("short.yaml", f"name: w\ncontainers: [{big}]\n", "containers[0]: longer than 1024"),
            ("label.yaml", f"name: w\ncontainers: [i:1]\nlabels: {{app: {big}}}\n", "labels.app: longer than 63"),
            ("env.yaml", f"name: w\ncontainers:\n  - image: i:1\n    env: [{{name: {big}}}]\n", "name: longer than 256"),
        ]:
            with self.subTest(name):
                r = self.run_gedge("svc", "render", self.write(name, text), "-o", "json")
                self.assertEqual(r.rc, 2, r)
                self.assertIn(says, r.err_json["message"])

    def test_yaml_bomb_refused(self):
        lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
        prev = "a"
        for c in "bcdefghij":
            lines.append(f"{c}: &{c} [" + ", ".join([f"*{prev}"] * 10) + "]")
            prev = c
        p = self.write("bomb.yaml", "\n".join(lines) + "\n")
        r = self.run_gedge("svc", "render", p, timeout=60)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("nodes", r.stderr)

    def test_non_utf8_input_exit_2_naming_file_and_byte(self):
        """Bytes that are not UTF-8, in a file or its name, never end in "internal" under -o json:
        content is refused (exit 2) naming the file, line and byte offset; a name is carried."""
        svc = b"name: web\ncontainers:\n  - name: a\n    image: x\n    env:\n      - {name: A, value: \"caf\xe9\"}\n"
        cm = b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "\xff"}}\n'
        for name, data in (("svc.yaml", svc), ("cm.json", cm)):
            path = os.path.join(self.tmp, name)
            with open(path, "wb") as f:
                f.write(data)
            offset = data.index(b"\xe9" if name == "svc.yaml" else b"\xff") + 1
            line = data[:offset].count(b"\n") + 1
            for target in (path, self.tmp):  # the file, and a directory holding it
                r = self.run_gedge("-o", "json", "svc", "render", target)
                self.assertEqual(r.rc, 2, r)
                self.assertEqual(r.err_json["error"], "usage", r)
                self.assertIn(f"{path}:{line}: invalid UTF-8 (byte {offset})", r.err_json["message"])
            os.remove(path)
        # A file name that is not UTF-8: rendered, and a missing one is not_found (4), in JSON.
        good = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: ok\n"
        odd = os.path.join(os.fsencode(self.tmp), b"n\xfe.yaml")
        with open(odd, "wb") as f:
            f.write(good)
        p = subprocess.run([GEDGE, "-o", "json", "svc", "render", odd], capture_output=True, env=self.env, timeout=60)
        self.assertEqual(p.returncode, 0, p)
        self.assertEqual(json.loads(p.stdout)[0]["kind"], "ConfigMap")
        p = subprocess.run([GEDGE, "-o", "json", "svc", "render", odd + b".missing"], capture_output=True, env=self.env,
                           timeout=60)
        self.assertEqual(p.returncode, 4, p)
        err = json.loads(p.stderr.decode().strip().splitlines()[-1])
        self.assertEqual(err["error"], "not_found", err)
        self.assertIn(b"n\xfe.yaml.missing", base64.b64decode(err["message_base64"]))


if __name__ == "__main__":
    unittest.main()
