#!/bin/bash
# Builds tests/fuzz/afl_loaders.cpp with AFL++'s GCC plugin (afl-g++-fast: g++ 12 itself, so
# libstdc++ 12's <expected> compiles) in build-afl/, seeds a corpus from the repository's own
# inputs (service/pipeline examples and goldens, the libFuzzer corpus, sched states, Kubernetes
# manifests, kubeconfigs; each prefixed with its loader's selector byte) and fuzzes for SECONDS
# (default 300). Prints afl-fuzz's execs and findings; crashes and hangs land in build-afl/out.
# Usage: tests/fuzz/afl.sh [SECONDS]   (needs: apt install afl++)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-300}
command -v afl-g++ >/dev/null || { echo "afl++ not found: apt install afl++" >&2; exit 77; }
# The GCC plugin (afl-g++-fast) first; Debian 12's afl++ 4.04c refuses gcc 12.2.0-14+deb12u1
# ("GCC and plugin have incompatible versions, expected GCC 12.2.0, is 12.2.0"), so then
# afl-g++ (GCC with afl-as instrumentation: still g++ 12, still libstdc++ 12's <expected>).
cc=afl-gcc-fast cxx=afl-g++-fast
printf 'int main() { return 0; }\n' > /tmp/afl-probe.$$.cpp
if ! AFL_QUIET=1 afl-g++-fast -o /tmp/afl-probe.$$ /tmp/afl-probe.$$.cpp >/dev/null 2>&1; then
  echo "afl-g++-fast cannot compile here (plugin/GCC version check); using afl-g++ (afl-as mode)" >&2
  cc=afl-gcc cxx=afl-g++
fi
rm -f /tmp/afl-probe.$$ /tmp/afl-probe.$$.cpp
export AFL_QUIET=1
CC=$cc CXX=$cxx cmake -S . -B build-afl -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGEDGE_AFL=ON >/dev/null
AFL_QUIET=1 nice -n 10 ninja -C build-afl -j"${JOBS:-2}" fuzz_afl_loaders
in=build-afl/corpus
rm -rf "$in" && mkdir -p "$in"
n=0
seed() {  # seed SELECTOR FILE...
  local sel=$1
  shift
  for f in "$@"; do
    [ -f "$f" ] && [ "$(stat -c %s "$f")" -lt 65536 ] || continue
    { printf "\\x$(printf %02x "$sel")"; cat "$f"; } > "$in/s$n"
    n=$((n + 1))
  done
}
printf '{"clusters": [{"name": "edge", "nodes": [{"name": "n1", "cpu": 4, "memory": "8Gi"}]}], "links": []}' \
  > build-afl/state.json
printf 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n' \
  > build-afl/kubeconfig
seed 0 examples/*.yaml tests/fuzz/corpus/svc/* tests/golden/svc/*[!t].yaml
seed 1 build-afl/state.json
seed 2 examples/*pipeline*.yaml
seed 3 tests/data/manifests/*.yaml
seed 4 build-afl/kubeconfig
[ "$n" -gt 0 ] || { echo "no seeds" >&2; exit 1; }
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
rm -rf build-afl/out
timeout --preserve-status $((secs + 60)) afl-fuzz -i "$in" -o build-afl/out -V "$secs" -t 2000 -m none \
  -- build-afl/tests/fuzz_afl_loaders >/dev/null || true
s=build-afl/out/default/fuzzer_stats
grep -E '^(execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|run_time|bitmap_cvg) ' "$s"
