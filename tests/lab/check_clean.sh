#!/bin/bash
# Asserts that `lab.sh down` left nothing of the lab behind (run as root after `lab.sh down`).
# Prints every leftover and exits 1 if there is any; the guard route must still be there.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "check_clean.sh: must run as root" >&2; exit 1; }
bad=0
leftover() { echo "LEFTOVER: $*"; bad=1; }

ns=$(ip netns list | awk '/^gedge-lab-/{print $1}')
[ -z "$ns" ] || leftover "network namespaces: $ns"
links=$(ip -o link show | awk -F': ' '{split($2,a,"@"); print a[1]}' | grep -E '^(glab-|gedgebr0$)' || true)
[ -z "$links" ] || leftover "links: $links"
routes=$(ip route show table all | grep '10\.213\.' | grep -v '^unreachable 10.213.0.0/16' || true)
[ -z "$routes" ] || leftover "routes: $routes"
ip route show type unreachable | grep '^unreachable 10.213.0.0/16' >/dev/null || leftover "guard route 'unreachable 10.213.0.0/16' is missing"
neigh=$(ip neigh show | grep '^10\.213\.' || true)
[ -z "$neigh" ] || leftover "neighbour entries: $neigh"
ctrs=$(podman ps -a --filter label=gedge-lab=1 --format '{{.Names}}' 2>/dev/null || true)
[ -z "$ctrs" ] || leftover "containers: $ctrs"
[ ! -e /etc/containers/networks/gedge-lab-net.json ] || leftover "podman network gedge-lab-net"
mnts=$(grep -E 'gedge-lab|/run/netns/gedge' /proc/self/mountinfo || true)
[ -z "$mnts" ] || leftover "mounts: $mnts"
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" != $$ ] || continue
  # (the braces: a process that exits between the glob and the read makes the '<' itself fail)
  cmd=$({ tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null || true)
  case $cmd in
    *check_clean.sh*) ;;
    # lab daemons: sshd/registry (config under /run/gedge-lab), holders, proxies, container conmons
    */run/gedge-lab*|*gedge-lab-holder-*|*delayproxy.py*|*gedge-lab-edge*) leftover "process $pid: $cmd" ;;
  esac
done
listen=$(ss -Hltn 2>/dev/null | awk '{print $4}' | grep '^10\.213\.' || true)
[ -z "$listen" ] || leftover "listening sockets: $listen"
for f in /run/gedge-lab /var/lib/gedge-lab /etc/netns/gedge-lab-*; do
  [ ! -e "$f" ] || leftover "path $f"
done
if [ $bad = 0 ]; then echo "clean: nothing of the lab is left (guard route present)"; fi
exit $bad
