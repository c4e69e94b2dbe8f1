#!/usr/bin/env bash
# Fan-out benchmark (not a test): `gedge device exec --all -- true` vs `ansible -m command -a true
# -f N` vs `parallel-ssh -p N`, on N lab netns hosts, same run, median of RUNS runs, gedge's peak
# RSS, plus the floor (one system-ssh handshake + exec, times hosts / cores). One table row set per
# size in SIZES.
#
#   bench/device_fanout.sh [GEDGE_BIN]
#   env: SIZES ("32"; e.g. "32 64 128 256"), RUNS (5), ANSIBLE_RUNS (RUNS; Ansible at 128+ forks
#        takes minutes and GiBs per run; 0 skips it), ANSIBLE_FORKS (N; caps -f), HOSTS (old name
#        for a single size)
# Per size it also runs gedge once more (untimed) to sample its peak open descriptors and threads
# from /proc, takes gedge's own CPU time (user+system) per host, and times two gedge processes run
# at once on the two halves of the hosts (two controllers on this one machine).
#
# The lab has at most 150 netns hosts (tests/lab/lab.sh); a size above the usable hosts registers
# each host again under a second name ("<name>-b", same address and pinned key) so every tool
# makes that many separate SSH connections (each one its own sshd child). Brings the lab up with
# enough netns hosts (LAB_NETNS, never tears it down: `LAB_SHRINK=1 tests/lab/lab.sh up` does),
# registers the hosts once in a throwaway GEDGE_HOME and copies it per size, and writes
# bench/results-device.md (merged into bench/RESULTS.md by hand). Run it under the lab lock.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
GEDGE=${1:-${GEDGE_BIN:-$src/build/cli/gedge}}
RUNS=${RUNS:-5}
SIZES=${SIZES:-${HOSTS:-32}}
ANSIBLE_RUNS=${ANSIBLE_RUNS:-$RUNS}
ANSIBLE_FORKS=${ANSIBLE_FORKS:-0}
LAB=$src/tests/lab/lab.sh
[ -x "$GEDGE" ] || { echo "gedge binary not found: $GEDGE" >&2; exit 2; }
max=0
for n in $SIZES; do [ "$n" -gt "$max" ] && max=$n; done
real=$((max > 147 ? 147 : max))  # usable netns hosts: h6 (password-only), h7/h8 (faults) skipped

LAB_NETNS=$((real + 3)) "$LAB" up >/dev/null
lab_json=/run/gedge-lab/lab.json
work=$(mktemp -d /tmp/gedge-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT

python3 - "$lab_json" "$real" "$max" "$work" <<'EOF'
import json, sys
lab = json.load(open(sys.argv[1])); real = int(sys.argv[2]); n = int(sys.argv[3]); work = sys.argv[4]
hosts = [h for h in lab["hosts"] if h["kind"] == "netns" and h["name"] not in ("h6", "h7", "h8")][:real]
if len(hosts) < real:
    sys.exit(f"only {len(hosts)} usable netns hosts in the lab")
with open(f"{work}/hosts.tsv", "w") as f:  # name, address, port spelling for pssh, fingerprint
    for i in range(n):
        h = hosts[i % real]
        again = i >= real
        f.write(f"{h['name']}{'-b' if again else ''}\t{h['address']}\t{h['address']}{':22' if again else ''}"
                f"\t{h['host_key_fingerprint']}\n")
with open(f"{work}/known_hosts", "w") as f:
    for h in hosts:
        f.write(f"{h['address']} {h['host_key']}\n")
EOF
key=$(python3 -c "import json;print(json.load(open('$lab_json'))['key'])")
user=$(python3 -c "import json;print(json.load(open('$lab_json'))['user'])")

# Register every host once (16 at a time), then one GEDGE_HOME per size holding its first N.
export GEDGE_HOME=$work/home
"$GEDGE" init -q >/dev/null
head -n "$real" "$work/hosts.tsv" | cut -f1,2,4 | xargs -P 16 -L 1 sh -c \
  '"$0" device add "$3" --host "$4" --user "$1" --identity "$2" --host-key "$5" -q -o json >/dev/null' \
  "$GEDGE" "$user" "$key"
# The second names: a copy of the first name's row (adding the same machine again is refused).
tail -n +"$((real + 1))" "$work/hosts.tsv" | cut -f1 > "$work/again"
python3 - "$GEDGE_HOME/gedge.db" "$work/again" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
cols = ", ".join(r[1] for r in db.execute("PRAGMA table_info(devices)") if r[1] != "name")
for name in open(sys.argv[2]).read().split():
    db.execute(f"INSERT INTO devices (name, {cols}) SELECT ?, {cols} FROM devices WHERE name = ?",
               (name, name[:-2]))
db.commit()
EOF
count=$("$GEDGE" device ls -o json | python3 -c 'import json,sys;print(len(json.load(sys.stdin)))')
[ "$count" = "$max" ] || { echo "registered $count of $max hosts" >&2; exit 1; }

sshopts="-i $key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$work/known_hosts -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR"
export ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_SSH_ARGS="$sshopts" ANSIBLE_PRIVATE_KEY_FILE=$key
export ANSIBLE_REMOTE_USER=$user ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_NOCOLOR=1
export ANSIBLE_LOCAL_TEMP=$work/ansible-tmp ANSIBLE_SSH_CONTROL_PATH_DIR=$work/cp
first=$(head -n1 "$work/hosts.tsv" | cut -f2)
cmd_one=(ssh $sshopts "$user@$first" true)

timeit() {  # prints seconds for one run of "$@" (fails loudly on a non-zero exit)
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/last.err" || { echo "failed: $*" >&2; cat "$work/last.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print($t1 - $t0)"
}
median() {
  [ $# -gt 0 ] || { echo nan; return; }
  python3 -c 'import statistics,sys;print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"
}
# peak_fds CMD...: runs CMD, samples /proc/PID/fd and Threads every 5 ms; prints "FDS THREADS"
peak_fds() {
  python3 - "$@" <<'PY'
import os, subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
fds = thr = 0
while p.poll() is None:
    try:
        fds = max(fds, len(os.listdir(f"/proc/{p.pid}/fd")))
        for line in open(f"/proc/{p.pid}/status"):
            if line.startswith("Threads:"):
                thr = max(thr, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.005)
print(fds, thr)
PY
}
cores=$(nproc)
rows=""
raw=""
scale=""
for n in $SIZES; do
  home=$work/home-$n
  cp -a "$work/home" "$home"
  head -n "$n" "$work/hosts.tsv" | cut -f1 > "$work/keep-$n"
  python3 - "$home/gedge.db" "$work/keep-$n" <<'EOF'
import sqlite3, sys
keep = [l.strip() for l in open(sys.argv[2]) if l.strip()]
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TEMP TABLE keep(name TEXT PRIMARY KEY)")
db.executemany("INSERT INTO keep VALUES (?)", [(k,) for k in keep])
db.execute("DELETE FROM devices WHERE name NOT IN (SELECT name FROM keep)")
db.commit()
EOF
  head -n "$n" "$work/hosts.tsv" | cut -f3 > "$work/pssh-$n"
  { echo "[all]"; head -n "$n" "$work/hosts.tsv" | awk -F'\t' '{print $1" ansible_host="$2}'; } > "$work/inv-$n.ini"
  cmd_gedge=(env GEDGE_HOME="$home" /usr/bin/time -f "%M %U %S" -o "$work/rss" "$GEDGE" device exec --all -q -o json --parallel "$n" -- true)
  forks=$n
  [ "$ANSIBLE_FORKS" -gt 0 ] && [ "$ANSIBLE_FORKS" -lt "$n" ] && forks=$ANSIBLE_FORKS
  cmd_ansible=(ansible all -i "$work/inv-$n.ini" -m command -a true -f "$forks")
  half=$((n / 2))
  mapfile -t names < <(head -n "$n" "$work/hosts.tsv" | cut -f1)
  cmd_shard1=(env GEDGE_HOME="$home" "$GEDGE" device exec -q -o json --parallel "$half" "${names[@]:0:$half}" -- true)
  cmd_shard2=(env GEDGE_HOME="$home" "$GEDGE" device exec -q -o json --parallel "$((n - half))" "${names[@]:$half}" -- true)
  shards() { "${cmd_shard1[@]}" >/dev/null & local p1=$!; "${cmd_shard2[@]}" >/dev/null || return 1; wait "$p1"; }
  cmd_pssh=(parallel-ssh -h "$work/pssh-$n" -l "$user" -p "$n" -t 120 -x "$sshopts" true)
  tg=(); ta=(); tp=(); to=(); rss=(); cpu=(); ts=()
  load0=$(cut -d' ' -f1 /proc/loadavg)
  for i in $(seq 1 "$RUNS"); do  # interleaved, so all tools see the same machine load
    tg+=("$(timeit "${cmd_gedge[@]}")"); rss+=("$(tail -n1 "$work/rss" | cut -d' ' -f1)")
    cpu+=("$(tail -n1 "$work/rss" | awk '{print $2 + $3}')")
    ts+=("$(timeit shards)")
    [ "$i" -le "$ANSIBLE_RUNS" ] && ta+=("$(timeit "${cmd_ansible[@]}")")
    tp+=("$(timeit "${cmd_pssh[@]}")")
    to+=("$(timeit "${cmd_one[@]}")")
  done
  load1=$(cut -d' ' -f1 /proc/loadavg)
  read -r pfd pthr < <(peak_fds env GEDGE_HOME="$home" "$GEDGE" device exec --all -q -o json --parallel "$n" -- true)
  mg=$(median "${tg[@]}"); ma=$(median "${ta[@]}"); mp=$(median "${tp[@]}"); mo=$(median "${to[@]}")
  mc=$(median "${cpu[@]}"); msh=$(median "${ts[@]}")
  scale+="| $n | $(python3 -c "import sys; g,c,s=map(float,sys.argv[1:4]); n=int(sys.argv[4]); print(f'{1000*c/n:.1f} | {n/c:.0f} | {s:.3f} ({g/s:.2f}x one controller)')" "$mg" "$mc" "$msh" "$n") | $pfd | $pthr | $(ulimit -n) |"$'\n'
  mr=$(python3 -c 'import sys;print(max(int(x) for x in sys.argv[1:]))' "${rss[@]}")
  rows+=$(python3 - "$mg" "$ma" "$mp" "$mo" "$n" "$cores" "$mr" "$load0" "$load1" "$RUNS" "$ANSIBLE_RUNS" <<'EOF'
import sys
g, a, p, o = map(float, sys.argv[1:5]); n, cores, rss = map(int, sys.argv[5:8])
runs, aruns = sys.argv[10], sys.argv[11]
floor = o * n / cores
ans = "not run" if a != a else f"{a:.3f} ({a / g:.1f}x, {aruns} runs)"
print(f"| {n} | {g:.3f} | {rss / 1024:.1f} | {p:.3f} ({p / g:.1f}x) | {ans} "
      f"| {floor:.3f} | {n / g:.0f} | {sys.argv[8]} -> {sys.argv[9]} |")
EOF
)$'\n'
  raw+="- $n hosts: gedge ${tg[*]}; gedge peak RSS KiB ${rss[*]}; gedge CPU s ${cpu[*]}; two halves at once ${ts[*]}; ansible (-f $forks) ${ta[*]:-}; pssh ${tp[*]}; one ssh ${to[*]}"$'\n'
  rm -rf "$home"
done
header="| hosts | gedge exec median (s) | gedge peak RSS (MiB) | parallel-ssh -p N (gedge faster by) | ansible -f N (gedge faster by) | floor: one ssh x N / $cores cores (s) | gedge hosts/s | load avg (1 min) before -> after |"
report=$(printf '%s\n|---|---|---|---|---|---|---|---|\n%s' "$header" "$rows")
sheader="| hosts | gedge CPU per host (ms) | hosts/s per busy core | two gedge on the halves at once (s) | peak fds | peak threads | ulimit -n |"
report+=$'\n\n'$(printf '%s\n|---|---|---|---|---|---|---|\n%s' "$sheader" "$scale")
echo "$report"
{
  echo "# gedge device fan-out benchmark"
  echo
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $cores cores ($(uname -r)), lab netns hosts"
  echo "(sshd per host, ed25519 host keys, strict host-key checking for every tool), runs interleaved,"
  echo "medians of $RUNS runs (Ansible: $ANSIBLE_RUNS). Sizes above $real register each host twice."
  echo
  echo "Command: \`SIZES=\"$SIZES\" RUNS=$RUNS ANSIBLE_RUNS=$ANSIBLE_RUNS bench/device_fanout.sh\`"
  echo
  echo "$report"
  echo
  echo "Raw seconds:"
  echo
  printf '%s' "$raw"
  echo
  echo "Ansible runs with its defaults (ControlPersist multiplexing on, so runs after the first"
  echo "reuse master connections); parallel-ssh spawns one system ssh per host; gedge makes one"
  echo "libssh connection per host on a thread pool of --parallel N threads."
} > "$here/results-device.md"
echo "wrote $here/results-device.md"
