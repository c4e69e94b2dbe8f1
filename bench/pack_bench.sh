#!/bin/bash
# `gedge runtime pack` against `tar -cf - | zstd -T0 -3` on the same tree in the same run
# (issue 17 item 1). Not a test. Usage:
#   bench/pack_bench.sh GEDGE_BIN [TREE=/work/benchdata/tree] [RUNS=3]
# TREE is a directory of real files, e.g. a copy of /usr/lib/x86_64-linux-gnu, /usr/lib/python3,
# /usr/share/doc and /usr/lib/gcc (~1.5 GB). It is only read, except one small file that gets a
# line appended before each re-pack and is put back (content and times) at the end.
# Each run, tar|zstd and gedge alternate: tar|zstd -> .tar.zst; gedge pack into an empty store
# (cold store, fresh GEDGE_HOME); one small file changed; gedge re-pack (stat cache).
# Prints medians, the throughput ratio (tar|zstd wall / pack wall: goal >= 1.0), store size vs
# .tar.zst (goal >= 1.0) and the re-pack as % of the first pack (goal <= 10 %), with the load.
# Env: GEDGE_PACK_ARGS adds flags to every pack (e.g. "-j 1"); KEEP=1 keeps the work dir;
# OLD_RM=1 deletes the previous run's store right before the next pack (see below).
set -euo pipefail
G=$(realpath "${1:?usage: pack_bench.sh GEDGE_BIN [TREE] [RUNS]}")
TREE=$(realpath "${2:-/work/benchdata/tree}")
RUNS=${3:-3}
W=$(mktemp -d /var/tmp/gedge-bench-pack.XXXXXX)
EDIT=$(find "$TREE" -type f -size -64k -size +1k | sort | sed -n 1p)
cp -p "$EDIT" "$W/edit.orig"
cleanup() {
  cp -p "$W/edit.orig" "$EDIT"
  [ "${KEEP:-0}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
export NO_COLOR=1
now() { date +%s.%N; }
# timed OUT CMD...: wall seconds appended to $OUT.wall, user+system CPU seconds to $OUT.cpu
timed() {
  local out=$1 t0 t1
  shift
  t0=$(now)
  /usr/bin/time -f "%U %S %M" -o "$W/t.txt" "$@"
  t1=$(now)
  echo "$t1 - $t0" | bc >> "$W/$out.wall"
  awk '{print $1 + $2}' "$W/t.txt" >> "$W/$out.cpu"
  awk '{print $3}' "$W/t.txt" >> "$W/$out.rss"
}
BYTES=$(du -sb "$TREE" | cut -f1)
FILES=$(find "$TREE" -type f | wc -l)
uptime | sed 's/.*load/load/' > "$W/load.txt"
for r in $(seq "$RUNS"); do
  cp -p "$W/edit.orig" "$EDIT"
  touch -d '-1 hour' "$EDIT"  # older than the stat cache's 2 s racy window
  timed tar bash -c 'tar -cf - -C "$1" . | zstd -q -T0 -3 > "$2"' _ "$TREE" "$W/tree.tar.zst"
  stat -c %s "$W/tree.tar.zst" >> "$W/tar.size"
  # A fresh home for each cold pack; the last run's is only moved aside, and deleted at the end:
  # on ext4 without a journal (this VM's /), a file created soon after many were deleted makes
  # the inode allocator skip every recently deleted inode (find_inode_bit -> recently_deleted,
  # up to 300 s), which cost the pack ~3.7 s of system time per run with the 20 000 chunk files
  # of the previous run deleted just before it (OLD_RM=1 does that, as the first version did).
  if [ "${OLD_RM:-0}" = 1 ]; then rm -rf "$W/home"; elif [ -d "$W/home" ]; then mv "$W/home" "$W/old.$r"; fi
  export GEDGE_HOME=$W/home
  "$G" init -q > /dev/null
  # shellcheck disable=SC2086
  timed pack "$G" runtime pack --name bench --component data="$TREE" ${GEDGE_PACK_ARGS:-} -o json \
    > "$W/v1.json" 2> "$W/pack.err"
  du -sb "$GEDGE_HOME/runtimes/chunks" | cut -f1 >> "$W/store.size"
  du -sB1 "$GEDGE_HOME/runtimes/chunks" | cut -f1 >> "$W/store.disk"
  find "$GEDGE_HOME/runtimes/chunks" -type f | wc -l >> "$W/store.files"
  echo "changed in run $r" >> "$EDIT"
  touch -d '-1 hour' "$EDIT"
  # shellcheck disable=SC2086
  timed repack "$G" runtime pack --name bench --component data="$TREE" ${GEDGE_PACK_ARGS:-} \
    -o json > "$W/v2.json" 2> "$W/pack.err"
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); assert v["files"] - v["files_cached"] == 1, v' \
    "$W/v2.json"
  uptime | sed 's/.*load/load/' >> "$W/load.txt"
done
python3 - "$W" "$BYTES" "$FILES" "$RUNS" "$TREE" <<'PY'
import json, statistics, sys
w, size, files, runs, tree = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def col(name):
    return [float(x) for x in open(f"{w}/{name}").read().split()]
med = statistics.median
mb = 1 << 20
tar_s, pack_s, repack_s = col("tar.wall"), col("pack.wall"), col("repack.wall")
tar_c, pack_c, repack_c = col("tar.cpu"), col("pack.cpu"), col("repack.cpu")
tar_b, store_b, disk_b = med(col("tar.size")), med(col("store.size")), med(col("store.disk"))
v1 = json.load(open(f"{w}/v1.json"))
ratio = [t / p for t, p in zip(tar_s, pack_s)]
rep = [100 * r / p for r, p in zip(repack_s, pack_s)]
repc = [100 * r / p for r, p in zip(repack_c, pack_c)]
fmt = lambda xs: " ".join(f"{x:.2f}" for x in xs)
print(f"tree: {tree}, {size/mb:.0f} MiB, {files} files; {runs} runs (tar|zstd and gedge alternate)")
print("load: " + " | ".join(l.strip() for l in open(f"{w}/load.txt")))
print()
print("| measure | median | runs |")
print("|---|---|---|")
print(f"| tar -c \\| zstd -T0 -3: wall / CPU | {med(tar_s):.2f} s / {med(tar_c):.2f} s | {fmt(tar_s)} |")
print(f"| gedge runtime pack (cold store): wall / CPU | {med(pack_s):.2f} s / {med(pack_c):.2f} s | {fmt(pack_s)} |")
print(f"| **pack throughput vs tar\\|zstd** (tar wall / pack wall; goal >= 1.0) | **{med(ratio):.2f}x** | {fmt(ratio)} |")
print(f"| CPU: tar\\|zstd / pack | {med(tar_c)/med(pack_c):.2f}x | |")
print(f"| .tar.zst size | {tar_b/mb:.1f} MiB (ratio {size/tar_b:.2f}) | |")
print(f"| gedge store: bytes / on disk / chunk files | {store_b/mb:.1f} MiB / {disk_b/mb:.1f} MiB / {int(med(col('store.files')))} | |")
print(f"| **store size vs .tar.zst** (tar.zst bytes / store bytes; goal >= 1.0) | **{tar_b/store_b:.3f}** | |")
print(f"| **re-pack after one small file changed**, % of first pack (goal <= 10 %) | **{med(rep):.1f} %** wall ({med(repack_s):.2f} s), {med(repc):.1f} % CPU | {fmt(rep)} |")
print(f"| gedge peak RSS: pack / re-pack | {med(col('pack.rss'))/1024:.0f} MiB / {med(col('repack.rss'))/1024:.0f} MiB | |")
print(f"| pack: chunks, dedupe ratio | {v1['chunks']}, {v1['dedupe_ratio']:.3f} | |")
PY
