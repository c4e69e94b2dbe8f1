#!/bin/bash
# Benchmark for `gedge runtime pack/push` (not a test). Usage:
#   bench/runtime_pack.sh GEDGE_BIN [SOURCE_DIR=/usr/lib] [LIMIT_MB=1024]
# Builds a tree from a copy of SOURCE_DIR (up to LIMIT_MB) plus a few generated files, then in one
# run measures: gedge pack vs `tar -cf - DIR | zstd -T0 -3`, re-pack of the unchanged tree and
# after one changed file (stat cache), bytes pushed (--to) for v2 after v1. With
# LAB_HOSTS="edge1 edge2 edge3" (lab up, run as root) it also times push v1 over SSH to the first
# host alone, then to all of them at once (fresh roots). Prints a Markdown table on stdout.
set -euo pipefail
G=${1:?usage: runtime_pack.sh GEDGE_BIN [SOURCE_DIR] [LIMIT_MB]}
SRC=${2:-/usr/lib}
LIMIT_MB=${3:-1024}
W=$(mktemp -d /var/tmp/gedge-bench-rt.XXXXXX)
LAB_HOSTS=${LAB_HOSTS:-}
RROOT=/var/tmp/gedge-bench-rt-$$
cleanup() {
  rm -rf "$W"
  for h in $LAB_HOSTS; do
    ssh -i "$LAB_KEY" -o UserKnownHostsFile=/run/gedge-lab/known_hosts -o BatchMode=yes "gedgetest@$(lab_addr "$h")" \
      sudo -n rm -rf "$RROOT-1" "$RROOT-n" >/dev/null 2>&1 || true
  done
}
lab_field() { python3 -c 'import json,sys; print([h[sys.argv[2]] for h in json.load(open("/run/gedge-lab/lab.json"))["hosts"] if h["name"] == sys.argv[1]][0])' "$1" "$2"; }
lab_addr() { lab_field "$1" address; }
LAB_KEY=$( [ -n "$LAB_HOSTS" ] && python3 -c 'import json; print(json.load(open("/run/gedge-lab/lab.json"))["key"])' || true)
trap cleanup EXIT
export GEDGE_HOME=$W/home NO_COLOR=1
"$G" init -q >/dev/null
mkdir -p "$W/tree/env"
# a copy of a real system directory, cut at LIMIT_MB (files in walk order)
( cd "$SRC" && find . -type f -size -64M -print0 ) |
  python3 -c '
import os, sys, shutil
src, dst, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]) << 20
total = 0
for p in sys.stdin.buffer.read().split(b"\0"):
    if not p: continue
    s = os.path.join(src.encode(), p)
    try: n = os.path.getsize(s)
    except OSError: continue
    if total + n > limit * 0.9: continue
    d = os.path.join(dst.encode(), p)
    os.makedirs(os.path.dirname(d), exist_ok=True)
    try: shutil.copy2(s, d)
    except OSError: continue
    total += n
' "$SRC" "$W/tree/env" "$LIMIT_MB"
# generated: a large incompressible file and a large compressible one (about 10 % of the tree)
head -c $((LIMIT_MB * 1024 * 1024 / 20)) /dev/urandom > "$W/tree/env/blob.bin"
python3 -c 'import sys; line = ("gedge runtime benchmark line %s\n" % sys.argv[1]).encode(); n = int(sys.argv[2]); open(sys.argv[3], "wb").write((line * (n // len(line) + 1))[:n])' "$W/tree/env" $((LIMIT_MB * 1024 * 1024 / 20)) "$W/tree/env/log.txt"
BYTES=$(du -sb "$W/tree" | cut -f1)
FILES=$(find "$W/tree" -type f | wc -l)
now() { date +%s.%N; }
# cpu CMD...: runs CMD, leaves its user+system CPU seconds in $CPU (robust under a loaded machine)
cpu() { /usr/bin/time -f "%U+%S" -o "$W/cpu.txt" "$@"; CPU=$(tail -1 "$W/cpu.txt" | bc); }
sleep 2  # files changed in the 2 s before a pack are never stat-cached (the copy just made them)
t0=$(now); tar -cf - -C "$W/tree" . | zstd -q -T0 -3 > "$W/tree.tar.zst"; t1=$(now)
TAR_S=$(echo "$t1 - $t0" | bc); TAR_B=$(stat -c %s "$W/tree.tar.zst")
t0=$(now); cpu "$G" runtime pack --name bench --component env="$W/tree/env" -o json > "$W/v1.json"; t1=$(now)
PACK_S=$(echo "$t1 - $t0" | bc); PACK_C=$CPU
STORE_B=$(du -sb "$GEDGE_HOME/runtimes/chunks" | cut -f1)
V1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$W/v1.json")
t0=$(now); "$G" runtime push "$V1" --to "$W/export" -o json > "$W/p1.json"; t1=$(now)
PUSH1_S=$(echo "$t1 - $t0" | bc)
# re-packs: median of 3 each (2 shared cores: single runs are noisy)
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
# repack3 OUT EDIT: 3 packs into $W/OUT, running `EDIT i` before each; medians in $RS (wall), $RC (CPU)
repack3() {
  local r=() c=() i
  for i in 1 2 3; do
    "$2" "$i"
    t0=$(now); cpu "$G" runtime pack --name bench --component env="$W/tree/env" -o json > "$W/$1"; t1=$(now)
    r+=("$(echo "$t1 - $t0" | bc)"); c+=("$CPU")
  done
  RS=$(median "${r[@]}"); RC=$(median "${c[@]}")
}
no_edit() { :; }
repack3 v1b.json no_edit; REPACK0_S=$RS; REPACK0_C=$RC
t0=$(now); "$G" runtime pack --name bench --component env="$W/tree/env" --no-cache -o json > "$W/v1c.json"; t1=$(now)
NOCACHE_S=$(echo "$t1 - $t0" | bc)
# one small file of the copied tree changed (a different edit each time)
SMALL=$(find "$W/tree/env" -type f -size -64k -size +1k | sort | sed -n 1p)
edit_small() { echo "changed $1" >> "$SMALL"; }
repack3 v2s.json edit_small; REPACKS_S=$RS; REPACKS_C=$RC
# the big relocated text file changed (5 % of the tree: the worst single file)
edit_big() { echo "changed $1 $(date)" >> "$W/tree/env/log.txt"; }
repack3 v2.json edit_big; REPACK_S=$RS; REPACK_C=$RC
V2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$W/v2.json")
t0=$(now); "$G" runtime push "$V2" --to "$W/export" -o json > "$W/p2.json"; t1=$(now)
PUSH2_S=$(echo "$t1 - $t0" | bc)
LAB1_S=0 LABN_S=0
if [ -n "$LAB_HOSTS" ]; then
  for h in $LAB_HOSTS; do
    "$G" device add "$h" --host "$(lab_addr "$h")" --user gedgetest --identity "$LAB_KEY" \
      --host-key "$(lab_field "$h" host_key_fingerprint)" -q >/dev/null
  done
  first=${LAB_HOSTS%% *}
  t0=$(now); "$G" runtime push "$V1" --device "$first" --root "$RROOT-1" -o json > "$W/lab1.json"; t1=$(now)
  LAB1_S=$(echo "$t1 - $t0" | bc)
  devs=(); for h in $LAB_HOSTS; do devs+=(--device "$h"); done
  t0=$(now); "$G" runtime push "$V1" "${devs[@]}" --root "$RROOT-n" -o json > "$W/labn.json"; t1=$(now)
  LABN_S=$(echo "$t1 - $t0" | bc)
fi
python3 - "$W" "$BYTES" "$FILES" "$TAR_S" "$TAR_B" "$PACK_S" "$STORE_B" "$REPACK_S" "$PUSH1_S" "$PUSH2_S" "$REPACK0_S" "$NOCACHE_S" "$LAB1_S" "$LABN_S" "$REPACKS_S" "$PACK_C" "$REPACK0_C" "$REPACKS_C" "$REPACK_C" <<'PY'
import json, os, sys
w, size, files, tar_s, tar_b, pack_s, store_b, repack_s, push1_s, push2_s, repack0_s, nocache_s, lab1_s, labn_s, repacks_s, pack_c, repack0_c, repacks_c, repack_c = sys.argv[1:]
pack_c, repack0_c, repacks_c, repack_c = map(float, (pack_c, repack0_c, repacks_c, repack_c))
size, files, tar_b, store_b = int(size), int(files), int(tar_b), int(store_b)
tar_s, pack_s, repack_s, push1_s, push2_s, repack0_s, nocache_s, lab1_s, labn_s, repacks_s = map(
    float, (tar_s, pack_s, repack_s, push1_s, push2_s, repack0_s, nocache_s, lab1_s, labn_s, repacks_s))
v2s = json.load(open(f"{w}/v2s.json"))
v1 = json.load(open(f"{w}/v1.json")); v2 = json.load(open(f"{w}/v2.json")); v1b = json.load(open(f"{w}/v1b.json"))
p1 = json.load(open(f"{w}/p1.json"))["targets"][0]; p2 = json.load(open(f"{w}/p2.json"))["targets"][0]
mb = 1 << 20
print(f"tree: {size/mb:.0f} MiB, {files} files")
print()
print("| measure | value |")
print("|---|---|")
print(f"| tar + zstd -T0 -3: time / size | {tar_s:.1f} s / {tar_b/mb:.0f} MiB (ratio {size/tar_b:.2f}) |")
print(f"| gedge pack: time / store size | {pack_s:.1f} s (CPU {pack_c:.1f} s) / {store_b/mb:.0f} MiB (ratio {size/store_b:.2f}, dedupe {v1['dedupe_ratio']:.2f}) |")
print(f"| gedge store vs tar.zst size | {tar_b/store_b:.2f} (goal >= 1.0) |")
print(f"| re-pack, nothing changed (stat cache), median of 3 | {repack0_s:.2f} s = {100*repack0_s/pack_s:.0f} % of first pack; CPU {repack0_c:.2f} s = {100*repack0_c/pack_c:.0f} %; {v1b['files_cached']} of {v1b['files']} files from the cache |")
print(f"| re-pack, nothing changed, --no-cache | {nocache_s:.1f} s = {100*nocache_s/pack_s:.0f} % of first pack |")
print(f"| re-pack after one small file changed (stat cache), median of 3 | {repacks_s:.2f} s = {100*repacks_s/pack_s:.0f} % of first pack (goal <= 10 %); CPU {repacks_c:.2f} s = {100*repacks_c/pack_c:.0f} %; {v2s['files_cached']} of {v2s['files']} files from the cache |")
print(f"| re-pack after the big relocated text file (5 % of the tree) changed, median of 3 | {repack_s:.2f} s = {100*repack_s/pack_s:.0f} % of first pack (goal <= 10 %); CPU {repack_c:.2f} s = {100*repack_c/pack_c:.0f} %; {v2['files_cached']} of {v2['files']} files from the cache |")
print(f"| push v1 --to | {push1_s:.1f} s, {p1['bytes_sent']/mb:.0f} MiB, {p1['chunks_sent']} chunks |")
print(f"| push v2 --to after v1 | {push2_s:.1f} s, {p2['bytes_sent']/mb:.2f} MiB = {100*p2['bytes_sent']/max(1,p1['bytes_sent']):.2f} % of v1 (goal <= 5 %), {p2['chunks_sent']} chunks sent, {p2['chunks_skipped']} skipped |")
if lab1_s:
    l1 = json.load(open(f"{w}/lab1.json"))["targets"]; ln = json.load(open(f"{w}/labn.json"))["targets"]
    def desc(ts):
        return ", ".join(f"{t['target']} {t['state']} {t['bytes_sent']/mb:.0f} MiB {'zstd' if t.get('compressed') else 'raw'}" for t in ts)
    print(f"| push v1 over SSH to 1 host | {lab1_s:.1f} s ({desc(l1)}) |")
    print(f"| push v1 over SSH to {len(ln)} hosts at once | {labn_s:.1f} s = {labn_s/lab1_s:.2f}x the 1-host time ({desc(ln)}) |")
PY
