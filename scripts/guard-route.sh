# Sourced by scripts/demo.sh, scripts/test.sh and tests/lab/lab.sh (bash, root): the guard route
# that keeps every lab address (10.213.0.0/16) on this machine, added once.
#
# The check reads the whole route table into a variable instead of piping `ip route show` into
# `grep -q`: grep -q exits at its first match, ip then dies of SIGPIPE (141) on a long table, and
# under `set -o pipefail` the check reads as "absent", so the route was added twice
# ("RTNETLINK answers: File exists"). An add that loses a race with another adder is fine too.
gedge_guard_route_present() {
  local routes
  routes=$'\n'"$(ip route show type unreachable)"$'\n' || return 1
  [[ $routes == *$'\n''unreachable 10.213.0.0/16'[[:space:]]* ]]
}

gedge_guard_route() {
  gedge_guard_route_present && return 0
  ip route add unreachable 10.213.0.0/16 2>/dev/null || gedge_guard_route_present || {
    echo "could not add the guard route 'unreachable 10.213.0.0/16'" >&2
    return 1
  }
}
