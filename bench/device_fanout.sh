#!/usr/bin/env bash
# Fan-out benchmark (not a test): `gedge device exec --all -- true` vs `ansible -m command -a true
# -f 32` vs `parallel-ssh -p 32`, on the same 32 lab netns hosts, same run, median of RUNS runs,
# plus the floor (one system-ssh handshake + exec, times hosts / cores).
#
#   bench/device_fanout.sh [GEDGE_BIN]          env: RUNS (5), HOSTS (32)
#
# Brings the lab up with enough netns hosts (LAB_NETNS, never tears it down), registers the hosts
# in a throwaway GEDGE_HOME, and writes bench/results-device.md (merged into bench/RESULTS.md by hand).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
GEDGE=${1:-${GEDGE_BIN:-$src/build/cli/gedge}}
RUNS=${RUNS:-5}
HOSTS=${HOSTS:-32}
LAB=$src/tests/lab/lab.sh
[ -x "$GEDGE" ] || { echo "gedge binary not found: $GEDGE" >&2; exit 2; }

# h6 (password-only) and h7/h8 (fault hosts) are skipped, so ask for 3 more.
LAB_NETNS=$((HOSTS + 3)) "$LAB" up >/dev/null
lab_json=/run/gedge-lab/lab.json
work=$(mktemp -d /tmp/gedge-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT

python3 - "$lab_json" "$HOSTS" "$work" <<'EOF'
import json, sys
lab = json.load(open(sys.argv[1])); n = int(sys.argv[2]); work = sys.argv[3]
hosts = [h for h in lab["hosts"] if h["kind"] == "netns" and h["name"] not in ("h6", "h7", "h8")][:n]
if len(hosts) < n:
    sys.exit(f"only {len(hosts)} usable netns hosts in the lab")
with open(f"{work}/hosts.tsv", "w") as f:
    for h in hosts:
        f.write(f"{h['name']}\t{h['address']}\t{h['host_key_fingerprint']}\n")
with open(f"{work}/pssh_hosts", "w") as f:
    for h in hosts:
        f.write(f"{h['address']}\n")
with open(f"{work}/known_hosts", "w") as f:
    for h in hosts:
        f.write(f"{h['address']} {h['host_key']}\n")
with open(f"{work}/inventory.ini", "w") as f:
    f.write("[all]\n")
    for h in hosts:
        f.write(f"{h['name']} ansible_host={h['address']}\n")
EOF
key=$(python3 -c "import json;print(json.load(open('$lab_json'))['key'])")
user=$(python3 -c "import json;print(json.load(open('$lab_json'))['user'])")

export GEDGE_HOME=$work/home
"$GEDGE" init -q >/dev/null
while IFS=$'\t' read -r name addr fp; do
  "$GEDGE" device add "$name" --host "$addr" --user "$user" --identity "$key" --host-key "$fp" -q -o json >/dev/null &
done < "$work/hosts.tsv"
wait
count=$("$GEDGE" device ls -o json | python3 -c 'import json,sys;print(len(json.load(sys.stdin)))')
[ "$count" = "$HOSTS" ] || { echo "registered $count of $HOSTS hosts" >&2; exit 1; }

sshopts="-i $key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$work/known_hosts -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR"
export ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_SSH_ARGS="$sshopts" ANSIBLE_PRIVATE_KEY_FILE=$key
export ANSIBLE_REMOTE_USER=$user ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_NOCOLOR=1
export ANSIBLE_LOCAL_TEMP=$work/ansible-tmp ANSIBLE_SSH_CONTROL_PATH_DIR=$work/cp

cmd_gedge=("$GEDGE" device exec --all -q -o json --parallel "$HOSTS" -- true)
cmd_ansible=(ansible all -i "$work/inventory.ini" -m command -a true -f "$HOSTS")
cmd_pssh=(parallel-ssh -h "$work/pssh_hosts" -l "$user" -p "$HOSTS" -t 60 -x "$sshopts" true)
first=$(head -n1 "$work/pssh_hosts")
cmd_one=(ssh $sshopts "$user@$first" true)

timeit() {  # prints seconds for one run of "$@" (fails loudly on a non-zero exit)
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/last.err" || { echo "failed: $*" >&2; cat "$work/last.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print($t1 - $t0)"
}
median() { python3 -c 'import statistics,sys;print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

declare -a tg ta tp to
for i in $(seq 1 "$RUNS"); do  # interleaved, so all three see the same machine load
  tg+=("$(timeit "${cmd_gedge[@]}")")
  ta+=("$(timeit "${cmd_ansible[@]}")")
  tp+=("$(timeit "${cmd_pssh[@]}")")
  to+=("$(timeit "${cmd_one[@]}")")
done
mg=$(median "${tg[@]}"); ma=$(median "${ta[@]}"); mp=$(median "${tp[@]}"); mo=$(median "${to[@]}")
cores=$(nproc)
report=$(python3 - "$mg" "$ma" "$mp" "$mo" "$HOSTS" "$cores" "$RUNS" <<'EOF'
import sys
g, a, p, o = map(float, sys.argv[1:5]); n, cores, runs = map(int, sys.argv[5:8])
floor = o * n / cores
print(f"| tool | median of {runs} runs (s) | gedge is faster by |")
print("|---|---|---|")
print(f"| gedge device exec --all -- true | {g:.3f} | 1.0x |")
print(f"| ansible all -m command -a true -f {n} | {a:.3f} | {a/g:.1f}x |")
print(f"| parallel-ssh -p {n} true | {p:.3f} | {p/g:.1f}x |")
print(f"| floor: one `ssh host true` ({o:.3f} s) x {n} hosts / {cores} cores | {floor:.3f} | {floor/g:.2f}x |")
EOF
)
echo "$report"
{
  echo "# gedge device fan-out benchmark"
  echo
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(uname -r)), $HOSTS lab netns hosts"
  echo "(sshd per host, ed25519 host keys, strict host-key checking for every tool), runs interleaved."
  echo
  echo "Command: \`RUNS=$RUNS HOSTS=$HOSTS bench/device_fanout.sh\`"
  echo
  echo "$report"
  echo
  echo "Raw seconds: gedge ${tg[*]}; ansible ${ta[*]}; pssh ${tp[*]}; one ssh ${to[*]}"
  echo
  echo "Ansible runs with its defaults (ControlPersist multiplexing on, so runs after the first"
  echo "reuse master connections); parallel-ssh spawns one system ssh per host; gedge makes one"
  echo "libssh connection per host on a thread pool."
} > "$here/results-device.md"
echo "wrote $here/results-device.md"
