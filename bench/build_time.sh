#!/bin/bash
# Cold build of the gedge binary (no ccache) with per-translation-unit timings (issue 12 item 6).
# Usage: bench/build_time.sh [BUILD_DIR] [extra cmake args]   (JOBS=2, TARGET=gedge by default)
# Prints the build's wall and CPU seconds, /proc/loadavg before and after, and the heaviest
# compiles by CPU time (user+sys of each compiler run, which a shared machine's load distorts far
# less than wall time). Each compile's row is kept in BUILD_DIR/tu-times.tsv.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=$(realpath -m "${1:-/tmp/gedge-build-time}")
shift || true
jobs=${JOBS:-2}
target=${TARGET:-gedge}
rm -rf "$dir"
mkdir -p "$dir"
log=$dir/tu-times.tsv
launcher=$dir/time-tu.sh
cat >"$launcher" <<'EOF'
#!/bin/bash
# Compiler launcher: runs the compile under /usr/bin/time, appending user, sys, wall, max RSS, -o.
out=-
prev=
for a in "$@"; do
  [[ $prev == -o ]] && out=$a
  prev=$a
done
exec /usr/bin/time -a -o "$GEDGE_TU_LOG" -f "%U	%S	%e	%M	$out" "$@"
EOF
chmod +x "$launcher"
export CCACHE_DISABLE=1 GEDGE_TU_LOG=$log
cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGEDGE_WERROR=ON \
  -DCMAKE_CXX_COMPILER_LAUNCHER="$launcher" -DCMAKE_C_COMPILER_LAUNCHER="$launcher" "$@" >/dev/null
echo "loadavg before: $(cat /proc/loadavg)"
/usr/bin/time -o "$dir/total.txt" -f "%e %U %S" ninja -C "$dir" -j"$jobs" "$target" >/dev/null
echo "loadavg after:  $(cat /proc/loadavg)"
read -r wall user sys <"$dir/total.txt"
echo "target $target, -j$jobs: wall ${wall} s, CPU ${user} s user + ${sys} s sys (compiles and link)"
awk -F'\t' '$5 != "-" && NF == 5 {n++; cpu += $1 + $2} END {printf "%d compiles, %.0f CPU s\n", n, cpu}' "$log"
echo "heaviest compiles (CPU s, wall s, peak RSS MiB, object):"
awk -F'\t' 'NF == 5 {printf "%7.1f %7.1f %6.0f  %s\n", $1 + $2, $3, $4 / 1024, $5}' "$log" |
  sort -rn | head -"${TOP:-15}"
