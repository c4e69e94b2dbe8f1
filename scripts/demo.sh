#!/bin/bash
# The README's demo command: installs what is needed, builds, brings up the local lab of real
# edge hosts and walks gedge through it: device → cluster → runtime → svc → sched → tune.
# Leaves the lab up (tear it down with: tests/lab/lab.sh down). Root only (namespaces, podman).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }
ip route show | grep -q '^unreachable 10.213.0.0/16' || ip route add unreachable 10.213.0.0/16
scripts/install-deps.sh
scripts/build.sh
tests/lab/lab.sh up
G=$PWD/build/cli/gedge
export GEDGE_HOME=${GEDGE_HOME:-/var/tmp/gedge-demo}
LAB=/run/gedge-lab/lab.json
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }
fp() { jq -r --arg n "$1" '.hosts[] | select(.name==$n) | .host_key_fingerprint' $LAB; }
addr() { jq -r --arg n "$1" '.hosts[] | select(.name==$n) | .address' $LAB; }
KEY=$(jq -r .key $LAB)

step "init" $G init
step "version" $G version
