#!/bin/bash
# The guard-route check under `set -o pipefail` with a long route table (a fake `ip` on PATH):
# present → never added again; absent → added exactly once. Also proves the old pattern
# (`ip route show | grep -q`) misreads the long table, and that no script still uses it.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir "$T/bin"
# The fake: `route show` prints the guard (if $T/present exists) first, then 30000 other routes
# (1.4 MB, far more than a pipe buffer); `route add` logs the call and fails like the kernel when present.
cat > "$T/bin/ip" <<FAKE
#!/bin/bash
if [ "\$1 \$2" = "route show" ]; then
  # \$T/race: another adder wins between this read (which still misses it) and our add
  if [ -e $T/race ]; then rm -f $T/race; touch $T/present; exit 0; fi
  exec awk -v p="\$( [ -e $T/present ] && echo 1 )" 'BEGIN {
    if (p) print "unreachable 10.213.0.0/16 "
    for (i = 0; i < 30000; i++) printf "10.%d.%d.0/24 via 10.0.0.1 dev eth0 proto static\n", int(i/256)%256, i%256 }'
elif [ "\$1 \$2" = "route add" ]; then
  echo "\$*" >> $T/adds
  if [ -e $T/present ]; then echo "RTNETLINK answers: File exists" >&2; exit 2; fi
  touch $T/present
fi
FAKE
chmod +x "$T/bin/ip"
export PATH="$T/bin:$PATH"
fail() { echo "FAIL: $*" >&2; exit 1; }
adds() { [ -e "$T/adds" ] && wc -l < "$T/adds" || echo 0; }

# shellcheck source=../../scripts/guard-route.sh
. "$SRC/scripts/guard-route.sh"

# 1. The old pattern really is broken under pipefail on this table (so this test can catch it).
touch "$T/present"
if ip route show | grep -q '^unreachable 10.213.0.0/16'; then
  old=found
else
  old=missed
fi
[ "$old" = missed ] || echo "note: the old pattern happened to survive (pipe timing)" >&2

# 2. Present: the guard is seen, nothing added, twice in a row.
gedge_guard_route_present || fail "a present guard route was not seen"
gedge_guard_route || fail "gedge_guard_route failed with the route present"
gedge_guard_route || fail "gedge_guard_route failed the second time"
[ "$(adds)" -eq 0 ] || fail "the guard was added although present: $(cat "$T/adds")"

# 3. Absent: added exactly once, then seen.
rm -f "$T/present"
! gedge_guard_route_present || fail "an absent guard route was seen"
gedge_guard_route || fail "gedge_guard_route failed to add the route"
gedge_guard_route || fail "gedge_guard_route failed after adding"
[ "$(adds)" -eq 1 ] || fail "expected exactly one add, got $(adds)"

# 4. A lost race (another adder got in between the check and the add) is not an error.
rm -f "$T/present" "$T/adds"
touch "$T/race"
gedge_guard_route || fail "gedge_guard_route failed when the route appeared meanwhile"
[ "$(adds)" -eq 1 ] || fail "expected one (failed) add in the race, got $(adds)"

# 5. No script pipes `ip route show` into an early-exiting reader any more.
if grep -rnE 'ip route show[^|]*\|[^|]*grep -[a-zA-Z]*q' "$SRC/scripts" "$SRC/tests/lab" "$SRC/bench" \
     --include='*.sh'; then
  fail "a script still pipes 'ip route show' into grep -q (SIGPIPE under pipefail)"
fi
echo "guard route: ok (old pattern under pipefail: $old)"
