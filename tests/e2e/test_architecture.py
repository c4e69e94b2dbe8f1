"""ARCHITECTURE.md's module table declares the links that libgedge/CMakeLists.txt enforces.

The "links" column of the module table (gedge modules only; third-party libraries are ignored)
must equal the DEPS of each gedge_module() call, so the map cannot drift from the linker."""

import os
import re
import unittest

from gedge_e2e import SOURCE_DIR


def cmake_links():
    text = open(os.path.join(SOURCE_DIR, "libgedge", "CMakeLists.txt")).read()
    out = {}
    for m in re.finditer(r"^gedge_module\((\w+)([^)]*)\)", text, re.M):
        args = m.group(2).split()
        deps, on = set(), False
        for a in args:
            if a in ("DEPS", "LIBS"):
                on = a == "DEPS"
            elif on:
                deps.add(a.removeprefix("gedge_"))
        out[m.group(1)] = deps
    return out


def declared_links(modules):
    text = open(os.path.join(SOURCE_DIR, "ARCHITECTURE.md")).read()
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] not in modules:
            continue
        out[cells[0]] = {w for w in re.findall(r"\w+", cells[2]) if w in modules}
    return out


class ArchitectureTest(unittest.TestCase):
    def test_module_table_matches_cmake(self):
        real = cmake_links()
        self.assertIn("svc", real)
        declared = declared_links(set(real))
        self.assertEqual(set(declared), set(real), "every module has one row in ARCHITECTURE.md's table")
        for mod, deps in sorted(real.items()):
            self.assertEqual(declared[mod], deps, f"ARCHITECTURE.md: links of {mod}")

    def test_layer_map_names_every_link(self):
        # The drawn map lists each module's gedge links after an arrow: "svc ──► a, b, c".
        text = open(os.path.join(SOURCE_DIR, "ARCHITECTURE.md")).read()
        real = cmake_links()
        drawn = {}
        for m in re.finditer(r"^\s*(?:layer \d\s+)?(\w+) ─+► ([\w, ]+?)\s*$", text, re.M):
            drawn[m.group(1)] = {w.strip() for w in m.group(2).split(",")}
        for mod, deps in real.items():
            self.assertEqual(drawn.get(mod, set()), deps, f"ARCHITECTURE.md map: {mod}")


if __name__ == "__main__":
    unittest.main()
