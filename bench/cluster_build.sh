#!/bin/bash
# Build time of the containers profile vs number of devices, and gedge's overhead over the same
# playbook run with plain ansible-playbook on the same hosts (same inventory, vars and
# ansible.cfg that gedge wrote; stdout callback "minimal" instead of gedge's event callback).
# Needs the lab (tests/lab/lab.sh up).
#
# Usage: bench/cluster_build.sh [GEDGE_BIN] [RUNS]      (prints a markdown table; RUNS default 3)
#
# Hosts: 1 and 3 are the lab's full-OS hosts (edge1..3); 6 adds three netns hosts (h1..h3),
# which share /etc and /usr with the machine (the lab has only three full-OS hosts).
# "first build" creates a new cluster on hosts that already have podman (registry drop-in and
# smoke run are new); "re-run" is a converged run that changes nothing (gedge exits 0).
set -euo pipefail
GEDGE=$(realpath "${1:-${GEDGE_BIN:-$(dirname "$0")/../build/cli/gedge}}")
RUNS=${2:-3}
SRC=$(cd "$(dirname "$0")/.." && pwd)
LAB=/run/gedge-lab/lab.json
lab() { python3 -c "import json,sys;l=json.load(open('$LAB'));print(eval(sys.argv[1]))" "$1"; }
KEY=$(lab "l['key']")
USER_=$(lab "l['user']")
REG=$(lab "l['registry']")
KH=$(lab "l['known_hosts']")
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
export GEDGE_HOME=$TMP/home
"$GEDGE" init -q >/dev/null
hosts=(edge1 edge2 edge3 h1 h2 h3)
addr() { lab "[h for h in l['hosts'] if h['name']=='$1'][0]['address']"; }
for h in "${hosts[@]}"; do
  fp=$(lab "[h for h in l['hosts'] if h['name']=='$h'][0]['host_key_fingerprint']")
  "$GEDGE" device add "$h" --host "$(addr "$h")" --user "$USER_" --identity "$KEY" --host-key "$fp" -q >/dev/null
done
now() { date +%s.%N; }
median() { python3 -c "import statistics,sys;print(f'{statistics.median(map(float,sys.argv[1:])):.1f}')" "$@"; }
cleanup_hosts() {  # name count: remove the cluster's registry drop-in from its hosts
  for h in "${hosts[@]:0:$2}"; do
    ssh -i "$KEY" -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KH" \
      "$USER_@$(addr "$h")" sudo rm -f "/etc/containers/registries.conf.d/50-gedge-$1.conf"
  done
}
echo "| devices | gedge first build (s) | gedge re-run, no change (s, median of $RUNS) | plain ansible-playbook re-run (s, median of $RUNS) | gedge / plain |"
echo "|---|---|---|---|---|"
for n in 1 3 6; do
  devs=$(IFS=,; echo "${hosts[*]:0:$n}")
  name=bench$n
  t0=$(now); "$GEDGE" cluster build "$name" --devices "$devs" --registry "$REG" -q -o json >/dev/null; t1=$(now)
  first=$(python3 -c "print(f'{$t1-$t0:.1f}')")
  g=(); a=()
  for _ in $(seq "$RUNS"); do
    t0=$(now); "$GEDGE" cluster build "$name" -q -o json >/dev/null; t1=$(now)
    g+=("$(python3 -c "print($t1-$t0)")")
    run=$(ls -d "$GEDGE_HOME"/runs/"$name"-* | tail -1)
    t0=$(now)
    (cd "$run" && ANSIBLE_CONFIG=$run/ansible.cfg ANSIBLE_STDOUT_CALLBACK=minimal \
      ansible-playbook -i "$run/inventory.yml" -e "@$run/vars.json" --forks "$n" \
      "$SRC/playbooks/containers.yml" >/dev/null)
    t1=$(now)
    a+=("$(python3 -c "print($t1-$t0)")")
  done
  gm=$(median "${g[@]}"); am=$(median "${a[@]}")
  echo "| $n | $first | $gm | $am | $(python3 -c "print(f'{$gm/$am:.2f}')") |"
  "$GEDGE" cluster rm "$name" --yes -q >/dev/null
  cleanup_hosts "$name" "$n"
done
