#!/bin/bash
# Build time of the containers profile vs number of devices, and gedge's overhead over the same
# playbook run with plain ansible-playbook on the same hosts. Needs the lab (tests/lab/lab.sh up).
# Usage: bench/cluster_build.sh [GEDGE_BIN]     (prints a markdown table)
set -euo pipefail
GEDGE=${1:-${GEDGE_BIN:-$(dirname "$0")/../build/cli/gedge}}
SRC=$(cd "$(dirname "$0")/.." && pwd)
LAB=/run/gedge-lab/lab.json
KEY=$(python3 -c "import json;print(json.load(open('$LAB'))['key'])")
USER_=$(python3 -c "import json;print(json.load(open('$LAB'))['user'])")
REG=$(python3 -c "import json;print(json.load(open('$LAB'))['registry'])")
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
export GEDGE_HOME=$TMP/home
"$GEDGE" init -q >/dev/null
hosts=(edge1 edge2 edge3)
for h in "${hosts[@]}"; do
  read -r addr fp < <(python3 -c "import json;h=[x for x in json.load(open('$LAB'))['hosts'] if x['name']=='$h'][0];print(h['address'],h['host_key_fingerprint'])")
  "$GEDGE" device add "$h" --host "$addr" --user "$USER_" --identity "$KEY" --host-key "$fp" -q >/dev/null
done
now() { date +%s.%N; }
echo "| devices | gedge cluster build (s) | gedge re-run, no change (s) | plain ansible-playbook re-run (s) | ratio |"
echo "|---|---|---|---|---|"
for n in 1 3; do
  devs=$(IFS=,; echo "${hosts[*]:0:$n}")
  name=bench$n
  t0=$(now); "$GEDGE" cluster build "$name" --devices "$devs" --registry "$REG" -q -o json >/dev/null; t1=$(now)
  "$GEDGE" cluster build "$name" -q -o json >/dev/null; t2=$(now)
  run=$(ls -d "$GEDGE_HOME"/runs/"$name"-* | tail -1)
  t3=$(now)
  ANSIBLE_CONFIG=$run/ansible.cfg ANSIBLE_STDOUT_CALLBACK=minimal ansible-playbook -i "$run/inventory.yml" \
    -e "@$run/vars.json" "$SRC/playbooks/containers.yml" >/dev/null
  t4=$(now)
  python3 -c "print(f'| $n | {($t1-$t0):.1f} | {($t2-$t1):.1f} | {($t4-$t3):.1f} | {($t2-$t1)/($t4-$t3):.2f} |')"
  "$GEDGE" cluster rm "$name" --yes -q >/dev/null
  for h in "${hosts[@]:0:$n}"; do
    ssh -i "$KEY" -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/run/gedge-lab/known_hosts \
      "$USER_@$(python3 -c "import json;print([x for x in json.load(open('$LAB'))['hosts'] if x['name']=='$h'][0]['address'])")" \
      sudo rm -f "/etc/containers/registries.conf.d/50-gedge-$name.conf"
  done
done
