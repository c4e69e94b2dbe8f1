#!/bin/bash
# Builds the .deb (cmake --build BUILD --target package), unpacks it into a clean directory tree
# with dpkg-deb -x and runs the packaged gedge from there: version, --help, its playbooks, man
# pages, completions and schemas, Depends from the shared libraries, a stripped binary.
# Usage: tests/package/test_deb.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
cmake --build "$build" --target package >"$build/package.log" 2>&1 || { tail -20 "$build/package.log"; fail "package target"; }
deb=$(ls -t "$build"/gedge_*.deb | head -1)
[[ -f $deb ]] || fail "no .deb in $build"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
g=$root/usr/bin/gedge

depends=$(dpkg-deb -f "$deb" Depends)
for lib in libssh libcurl libyaml-cpp libfmt libsqlite3 libhwloc libzstd libssl; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
[[ $(dpkg-deb -f "$deb" Recommends) == *ansible-core* ]] || fail "Recommends lacks ansible-core"
readelf -S "$g" | grep -q '\.debug_info' && fail "the packaged binary is not stripped"
size=$(stat -c %s "$g")
(( size < 40 * 1024 * 1024 )) || fail "packaged binary is $size bytes"

for f in usr/share/man/man1/gedge.1 usr/share/man/man1/gedge-device.1 usr/share/bash-completion/completions/gedge \
         usr/share/zsh/vendor-completions/_gedge usr/share/fish/vendor_completions.d/gedge.fish \
         usr/share/gedge/playbooks/containers.yml usr/share/gedge/schemas/ls.schema.json; do
  [[ -f $root/$f ]] || fail "missing $f"
done

home=$(mktemp -d -p "$root")
out=$(env -u GEDGE_PLAYBOOK_DIR GEDGE_HOME="$home" XDG_CONFIG_HOME="$home" "$g" version -o json)
python3 - "$out" "$root" <<'PY' || fail "gedge version from the package: $out"
import json, sys
v = json.loads(sys.argv[1])
assert v["version"] and v["commit"] and v["build_type"] and v["compiler"], v
for lib in ("openssl", "zstd", "libssh", "libcurl", "sqlite", "hwloc", "yaml-cpp", "fmt", "valijson"):
    assert v["libraries"].get(lib), lib
# the package's own playbooks, found next to the binary, not the source tree's
assert v["playbook_dir"] == sys.argv[2] + "/usr/share/gedge/playbooks", v["playbook_dir"]
PY
GEDGE_HOME="$home" "$g" --help | grep -q "Global\|Usage: gedge" || fail "gedge --help from the package"
"$g" --version | grep -q "^gedge " || fail "gedge --version"
echo "ok: $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB), binary $((size / 1024)) KiB"
