#!/bin/bash
# gedge lab: real edge hosts on this machine for end-to-end tests and the demo.
#
#   lab.sh up                       bring the lab up (idempotent; restores faults; ~2 s warm)
#   lab.sh down                     remove everything the lab made (the guard route stays)
#   lab.sh status                   one line per host; exit 1 when something is unhealthy
#   lab.sh env                      print /run/gedge-lab/lab.json
#   lab.sh fault HOST link-down|link-up|rekey|stop-sshd|start-sshd|reset-keys
#                                   (reset-keys: gedgetest's authorized_keys back to the lab key
#                                    only; none on h6 — for tests that installed other keys)
#   lab.sh delay FARHOST MS         change a far host's one-way delay live
#
# Address plan (all inside 10.213.0.0/16, which a guard route keeps on this machine):
#   bridge gedgebr0 10.213.0.1/24; registry 10.213.0.1:5000 (image 10.213.0.1:5000/gedge/busybox:1.0)
#   TLS registries 10.213.0.1:5443 (lab CA: /run/gedge-lab/registry-ca.crt) and 10.213.0.1:5444
#                (the same CA, and a login: 401 on /v2/); both serve the plain registry's images
#   netns hosts  h1..h8 = 10.213.0.11..18, h9..h150 = 10.213.0.109..250 (h$N -> .100+N)  LAB_NETNS (8)
#   full-OS      edge1..edge9 = 10.213.0.21..29 (podman systemd containers)              LAB_FULL  (3)
#   far hosts    far1..far9 = 10.213.0.31..39 (netns; ssh through a delay proxy)         LAB_FAR   (2)
#   LAB_FAR_DELAY_MS (25): one-way delay of the far hosts' proxy (SSH round trip +2x).
#   jump hosts   bast1 = 10.213.0.41 on gedgebr0 and 10.213.2.1 on gedgebr2 (a second bridge
#                with no address on this machine); inner1 = 10.213.2.10 on gedgebr2 only, so it is
#                reachable only through bast1 (ssh -W / ProxyJump)                      LAB_JUMP (1)
#                (lab.json lists them under "jump_hosts", not "hosts": nothing reaches inner1 directly)
#                Two hops: bast2 = 10.213.2.20 on gedgebr2 and 10.213.3.1 on gedgebr3 (a third
#                bridge with no address here), reachable only through bast1; inner2 = 10.213.3.10
#                on gedgebr3 only, reachable only through bast1 then bast2 (ProxyJump bast1,bast2).
#                Same kinds (bastion, inner) as bast1/inner1: older copies of this script keep
#                them; lab.json gives each its "jump" chain.
#   cert hosts   cert1 = 10.213.0.42: accepts only user certificates signed by the lab user CA
#                (lab.json "user_ca"; sign with ssh-keygen -s), no authorized_keys  LAB_CERT (1)
#                (listed under "cert_hosts")
#   host certs   hcert1 = 10.213.0.43: its host key is certified by the lab host CA (lab.json
#                "host_ca", made at `up`, never committed) for 10.213.0.43 and hcert1; hcert2 =
#                10.213.0.44: certified by the same CA for another name only (hcert-other.invalid)
#                (netns hosts listed under "host_cert_hosts", not "hosts")            LAB_HOSTCERT (1)
# h6 is the bootstrap-by-password host (no authorized_keys); h7 and h8 are reserved for faults.
# `up` never removes hosts: a lab brought up with more hosts keeps them until `down`, or until
# an `up` with LAB_SHRINK=1 (e.g. `LAB_SHRINK=1 lab.sh up` after a LAB_NETNS=32 benchmark).
#
# Files: /var/tmp/gedge-lab (cache, kept by `down`: lab key, password, debootstrap rootfs),
#        /run/gedge-lab (runtime: lab.json, known_hosts, per-host config/keys/pids),
#        /var/lib/gedge-lab (per-host podman stores, registry data; removed by `down`).
# Machine-wide set-up that `down` keeps (other podman users need it too): user gedgetest and its
# sudoers file, /etc/containers/containers.conf (sandbox ulimits), the registry drop-in, the
# hugetlb cgroup mount.
set -euo pipefail
# The lab's daemons (sshd, registry, holders, proxies) outlive this script: they must not inherit
# any descriptor the caller had open, or a caller's lock (`flock LOCK lab.sh up`) is held for as
# long as the lab runs. Only stdin/stdout/stderr go on.
for fd_path in /proc/$$/fd/*; do
  fd=${fd_path##*/}
  if [ "$fd" -gt 2 ] 2>/dev/null && [ "$fd" != 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done
unset fd fd_path

W=/var/tmp/gedge-lab
R=/run/gedge-lab
D=/var/lib/gedge-lab
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BR=gedgebr0
NET=gedge-lab-net
LABEL=gedge-lab
USER_NAME=gedgetest
REGISTRY=10.213.0.1:5000
TLS_REGISTRY=10.213.0.1:5443    # TLS, certificate signed by the lab's registry CA
AUTH_REGISTRY=10.213.0.1:5444   # TLS (lab CA) and a login: /v2/ answers 401
BB_LOCAL=localhost/gedge-lab/busybox:1.0
BB_REMOTE=$REGISTRY/gedge/busybox:1.0
EDGE_REPO=localhost/gedge-lab/edge-node
RECIPE=3   # bump when the full-OS image customisation changes (changes the image tag)
# Bump when only the image's content changes: the image is rebuilt under the same tag and running
# edge hosts on an older build are recreated once, while older copies of this script (other
# worktrees) see their tag still present and keep the hosts. 2: the prometheus server (issue 18).
CONTENT=2
LAB_NETNS=${LAB_NETNS:-8}
LAB_FULL=${LAB_FULL:-3}
LAB_FAR=${LAB_FAR:-2}
LAB_FAR_DELAY_MS=${LAB_FAR_DELAY_MS:-25}
LAB_JUMP=${LAB_JUMP:-1}
LAB_CERT=${LAB_CERT:-1}
LAB_HOSTCERT=${LAB_HOSTCERT:-1}
BR2=gedgebr2
BR3=gedgebr3
EDGE_PACKAGES=systemd,systemd-sysv,dbus,openssh-server,python3,sudo,iproute2,procps,podman,crun,netavark,iptables,ca-certificates,prometheus-node-exporter,prometheus

T0=$(date +%s%N)
ts() { local n; n=$(date +%s%N); printf '[%5d ms] %s\n' $(((n - T0) / 1000000)) "$*" >&2; }
die() { echo "lab.sh: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
  echo "lab.sh: must run as root; skipped (exit 77)" >&2; exit 77   # ctest: SKIP_RETURN_CODE 77
fi
need() {
  local c missing=()
  for c in ip nsenter unshare setsid flock ssh ssh-keygen sshpass /usr/sbin/sshd podman crun \
           docker-registry debootstrap curl /usr/bin/python3 /bin/busybox; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
  done
  [ ${#missing[@]} = 0 ] || die "missing commands: ${missing[*]} (apt-get install iproute2 util-linux \
openssh-client openssh-server sshpass podman crun netavark aardvark-dns catatonit iptables \
docker-registry debootstrap curl python3 busybox-static)"
}

# ---------------------------------------------------------------- address plan
plan() {   # prints "name kind address" for every configured host
  local i
  for i in $(seq 1 "$LAB_NETNS"); do
    if [ "$i" -le 8 ]; then echo "h$i netns 10.213.0.$((10 + i))"; else echo "h$i netns 10.213.0.$((100 + i))"; fi
  done
  for i in $(seq 1 "$LAB_FULL"); do echo "edge$i full 10.213.0.$((20 + i))"; done
  for i in $(seq 1 "$LAB_FAR"); do echo "far$i far 10.213.0.$((30 + i))"; done
  if [ "$LAB_JUMP" = 1 ]; then
    echo "bast1 bastion 10.213.0.41"; echo "inner1 inner 10.213.2.10"
    echo "bast2 bastion 10.213.2.20"; echo "inner2 inner 10.213.3.10"
  fi
  if [ "$LAB_CERT" = 1 ]; then echo "cert1 certuser 10.213.0.42"; fi
  # kind netns (older copies of this script know no other kind for them); the name says "hcert"
  if [ "$LAB_HOSTCERT" = 1 ]; then echo "hcert1 netns 10.213.0.43"; echo "hcert2 netns 10.213.0.44"; fi
}
check_counts() {
  [[ $LAB_NETNS =~ ^[0-9]+$ && $LAB_NETNS -le 150 ]] || die "LAB_NETNS must be 0..150"
  [[ $LAB_FULL =~ ^[0-9]+$ && $LAB_FULL -le 9 ]] || die "LAB_FULL must be 0..9"
  [[ $LAB_FAR =~ ^[0-9]+$ && $LAB_FAR -le 9 ]] || die "LAB_FAR must be 0..9"
  [[ $LAB_FAR_DELAY_MS =~ ^[0-9]+$ ]] || die "LAB_FAR_DELAY_MS must be a number of ms"
  [[ $LAB_JUMP =~ ^[01]$ ]] || die "LAB_JUMP must be 0 or 1"
  [[ $LAB_CERT =~ ^[01]$ ]] || die "LAB_CERT must be 0 or 1"
  [[ $LAB_HOSTCERT =~ ^[01]$ ]] || die "LAB_HOSTCERT must be 0 or 1"
}

hkind() { cat "$R/hosts/$1/kind" 2>/dev/null || die "no lab host '$1' (is the lab up?)"; }
pex() { podman exec "$@" 9>&-; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pidof_file() { cat "$1" 2>/dev/null || true; }

mirror() {
  local m
  m=$(awk '/^URIs:/{print $2}' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v -e security -e updates | grep '/debian/\?$' | head -n1 || true)
  [ -n "$m" ] || m=$(awk '$1=="deb"{print $2}' /etc/apt/sources.list 2>/dev/null | grep '/debian/\?$' | head -n1 || true)
  echo "${LAB_MIRROR:-${m:-http://deb.debian.org/debian}}"
}

# ---------------------------------------------------------------- machine set-up
# shellcheck source=../../scripts/guard-route.sh
. "$HERE/../../scripts/guard-route.sh"
guard_route() { gedge_guard_route; }

machine_setup() {
  mkdir -p "$W" "$R/hosts" "$D/hosts" /run/sshd
  chmod 700 "$W"; chmod 755 /run/sshd
  # crun needs hugetlb on a v1 hierarchy here (cgroup v1/v2 hybrid)
  if [ -d /sys/fs/cgroup ] && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
    mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb \
      || echo "lab.sh: warning: could not mount the hugetlb cgroup (crun may refuse to run)" >&2
  fi
  mkdir -p /etc/containers/registries.conf.d /etc/containers/networks
  # no CAP_SYS_RESOURCE: podman's default rlimits fail; nproc must stay <= 32768
  if ! grep -q 'nproc=32768' /etc/containers/containers.conf 2>/dev/null; then
    cat > /etc/containers/containers.conf <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "crun"
[network]
network_backend = "netavark"
EOF
  fi
  printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REGISTRY" > /etc/containers/registries.conf.d/gedge-lab.conf
  id "$USER_NAME" >/dev/null 2>&1 || useradd -m -s /bin/bash "$USER_NAME"
  echo "$USER_NAME ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/$USER_NAME; chmod 440 /etc/sudoers.d/$USER_NAME
  [ -f "$W/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C gedge-lab -f "$W/id_ed25519"
  [ -f "$W/user_ca" ] || ssh-keygen -q -t ed25519 -N '' -C gedge-lab-user-ca -f "$W/user_ca"
  chmod 600 "$W/user_ca"
  [ -f "$W/host_ca" ] || ssh-keygen -q -t ed25519 -N '' -C gedge-lab-host-ca -f "$W/host_ca"
  chmod 600 "$W/host_ca"
  if [ ! -s "$W/password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=\n' > "$W/password.tmp"; mv "$W/password.tmp" "$W/password")
  fi
  chmod 600 "$W/password" "$W/id_ed25519"
  # netns hosts share /etc/shadow with the machine: set the password once per password file
  local stamp; stamp=$(sha256sum < "$W/password" | cut -c1-16)
  if [ "$(cat "$W/password.applied" 2>/dev/null)" != "$stamp" ] || getent shadow "$USER_NAME" | cut -d: -f2 | grep '^[!*]' >/dev/null; then
    echo "$USER_NAME:$(cat "$W/password")" | chpasswd
    echo "$stamp" > "$W/password.applied"
  fi
  install -m 644 "$W/id_ed25519.pub" "$R/authorized_keys"
  install -m 644 "$W/user_ca.pub" "$R/user_ca.pub"
  install -m 644 "$W/host_ca.pub" "$R/host_ca.pub"
  install -m 755 "$HERE/delayproxy.py" "$R/delayproxy.py"
}

ensure_bridge() {
  ip link show $BR >/dev/null 2>&1 || ip link add $BR type bridge
  ip addr show dev $BR | grep 'inet 10.213.0.1/24' >/dev/null || ip addr add 10.213.0.1/24 dev $BR
  ip link set $BR up
  # The jump hosts' inner networks: bridges with no address here, so only bast1 reaches the
  # first (gedgebr2) and only bast2 the second (gedgebr3).
  if [ "$LAB_JUMP" = 1 ]; then
    ip link show $BR2 >/dev/null 2>&1 || ip link add $BR2 type bridge
    ip link set $BR2 up
    ip link show $BR3 >/dev/null 2>&1 || ip link add $BR3 type bridge
    ip link set $BR3 up
  fi
}

# ---------------------------------------------------------------- netns and far hosts
write_meta() {   # name kind address port
  local d=$R/hosts/$1
  mkdir -p "$d"
  echo "$2" > "$d/kind"; echo "$3" > "$d/address"; echo "$4" > "$d/port"
}

new_hostkey() {  # dir
  rm -f "$1/ssh_host_ed25519_key" "$1/ssh_host_ed25519_key.pub" "$1/ssh_host_ed25519_key-cert.pub"
  ssh-keygen -q -t ed25519 -N '' -C "gedge-lab-host" -f "$1/ssh_host_ed25519_key"
}

sign_hostcert() {  # name dir address: the lab host CA certifies an hcert host's key (hcert2: for another name)
  local principals="$3,$1"
  [ "$1" != hcert2 ] || principals=hcert-other.invalid
  ssh-keygen -q -s "$W/host_ca" -h -I "gedge-lab-$1" -n "$principals" -V -1d:+3650d "$2/ssh_host_ed25519_key.pub"
}

start_holder() {  # name  -> a process that owns the host's mount + UTS namespaces
  local name=$1 ns=gedge-lab-$1 d=$R/hosts/$1 auth=yes
  [ "$name" = h6 ] && auth=no
  mkdir -p "$D/hosts/$name/containers"
  rm -f "$d/holder.pid"
  setsid ip netns exec "$ns" unshare --uts /bin/bash -c "
    set -e
    hostname $name
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    if [ -d /sys/fs/cgroup ]; then
      mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
      grep ' /sys/fs/cgroup/' /proc/1/mounts | while read -r s m t o r; do mkdir -p \$m; mount -t \$t -o \$o \$s \$m || true; done
    fi
    mount -t tmpfs -o mode=755 tmpfs /home
    install -d -o $USER_NAME -g $USER_NAME -m 700 /home/$USER_NAME
    if [ $auth = yes ]; then
      install -d -o $USER_NAME -g $USER_NAME -m 700 /home/$USER_NAME/.ssh
      install -o $USER_NAME -g $USER_NAME -m 600 $R/authorized_keys /home/$USER_NAME/.ssh/authorized_keys
    fi
    mkdir -p /var/lib/containers /run/containers /run/libpod
    mount --bind $D/hosts/$name/containers /var/lib/containers
    mount -t tmpfs tmpfs /run/containers
    mount -t tmpfs tmpfs /run/libpod
    echo \$\$ > $d/holder.pid
    exec -a gedge-lab-holder-$name sleep infinity" </dev/null >"$d/holder.log" 2>&1 9>&- &
}

wait_holder() {  # name
  local d=$R/hosts/$1
  for _ in $(seq 1 250); do [ -s "$d/holder.pid" ] && return 0; sleep 0.02; done
  die "host $1: namespace holder did not start: $(cat "$d/holder.log")"
}

start_sshd() {  # name
  local name=$1 d=$R/hosts/$1 holder
  holder=$(pidof_file "$d/holder.pid")
  alive "$(pidof_file "$d/sshd.pid")" && return 0
  rm -f "$d/sshd.pid"
  nsenter -t "$holder" -m -u -n /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" 9>&-
  if [ "$(hkind "$name")" = far ] && ! alive "$(pidof_file "$d/proxy.pid")"; then
    nsenter -t "$holder" -n setsid /usr/bin/python3 "$R/delayproxy.py" "$(cat "$d/address")" 22 127.0.0.1 22 \
      "$d/delay_ms" "$d/proxy.pid" </dev/null >>"$d/proxy.log" 2>&1 9>&- &
  fi
}

stop_sshd() {  # name: stops the listening sshd (open sessions survive, as with a real sshd stop)
  local d=$R/hosts/$1 p f
  for f in "$d/sshd.pid" "$d/proxy.pid"; do
    p=$(pidof_file "$f")
    if alive "$p"; then kill "$p"; for _ in $(seq 1 50); do alive "$p" || break; sleep 0.02; done; fi
    rm -f "$f"
  done
}

sync_delay() {  # name kind: a far host's proxy gets LAB_FAR_DELAY_MS (undoes `lab.sh delay`)
  local d=$R/hosts/$1
  if [ "$2" = far ] && [ -f "$d/delay_ms" ] && [ "$(cat "$d/delay_ms")" != "$LAB_FAR_DELAY_MS" ]; then
    echo "$LAB_FAR_DELAY_MS" > "$d/delay_ms"
    ! alive "$(pidof_file "$d/proxy.pid")" || kill -HUP "$(cat "$d/proxy.pid")"
  fi
}

netns_healthy() {  # name kind: namespace, link, holder, sshd (and proxy) all there (no forks)
  local d=$R/hosts/$1
  [ -e "/run/netns/gedge-lab-$1" ] && [ "$(cat "/sys/class/net/glab-$1/operstate" 2>/dev/null)" = up ] \
    && alive "$(pidof_file "$d/holder.pid")" && alive "$(pidof_file "$d/sshd.pid")" \
    && { [ "$2" != far ] || alive "$(pidof_file "$d/proxy.pid")"; }
}

ensure_netns_host() {  # name kind address
  local name=$1 kind=$2 addr=$3 ns=gedge-lab-$1 veth=glab-$1 d=$R/hosts/$1 listen br=$BR leg2
  # bast2 and inner2 are told apart from bast1/inner1 by address (older copies of this script
  # know only the kinds bastion and inner)
  case $addr in 10.213.2.*) br=$BR2 ;; 10.213.3.*) br=$BR3 ;; esac
  sync_delay "$name" "$kind"
  ! netns_healthy "$name" "$kind" || return 0
  write_meta "$name" "$kind" "$addr" 22
  touch "$d/started"   # runs in a background job: cmd_up collects these markers
  [ -e "/run/netns/$ns" ] || ip netns add "$ns"
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip -n "$ns" link del eth0 2>/dev/null || true
    ip link add "$veth" type veth peer name eth0 netns "$ns"
  fi
  echo "$veth" > "$d/veth"
  unblackhole "$addr"
  ip link set "$veth" master $br up
  ip -n "$ns" addr show dev eth0 | grep "inet $addr/24" >/dev/null || ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  if [ "$kind" = bastion ]; then   # its second leg on the next inner network
    if [ "$br" = "$BR2" ]; then leg2="$BR3 10.213.3.1"; else leg2="$BR2 10.213.2.1"; fi
    if ! ip -n "$ns" link show eth1 >/dev/null 2>&1; then
      ip link del "glab2-$name" 2>/dev/null || true
      ip link add "glab2-$name" type veth peer name eth1 netns "$ns"
    fi
    ip link set "glab2-$name" master "${leg2% *}" up
    ip -n "$ns" addr show dev eth1 | grep "inet ${leg2#* }/24" >/dev/null || ip -n "$ns" addr add "${leg2#* }/24" dev eth1
    ip -n "$ns" link set eth1 up
  fi
  ip -n "$ns" link set lo up
  ip -n "$ns" link show eth0 | awk '/link\/ether/{print $2}' > "$d/mac"
  mkdir -p "/etc/netns/$ns"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n%s\t%s\n' "$name" "$addr" "$name" > "/etc/netns/$ns/hosts"
  : > "/etc/netns/$ns/resolv.conf"
  [ -f "$d/ssh_host_ed25519_key" ] || new_hostkey "$d"
  if [ "$kind" = far ]; then
    listen=127.0.0.1:22
    [ -f "$d/delay_ms" ] || echo "$LAB_FAR_DELAY_MS" > "$d/delay_ms"
  else
    listen=$addr:22
  fi
  local pwauth=yes extra=""
  if [ "$kind" = certuser ]; then   # user certificates from the lab user CA only
    pwauth=no; extra="TrustedUserCAKeys $R/user_ca.pub
AuthorizedKeysFile none"
  fi
  if [[ $name == hcert* ]]; then   # a host certificate from the lab host CA
    [ -f "$d/ssh_host_ed25519_key-cert.pub" ] || sign_hostcert "$name" "$d" "$addr"
    extra="HostCertificate $d/ssh_host_ed25519_key-cert.pub"
  fi
  cat > "$d/sshd_config" <<EOF
ListenAddress $listen
HostKey $d/ssh_host_ed25519_key
PidFile $d/sshd.pid
PubkeyAuthentication yes
PasswordAuthentication $pwauth
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 100:30:200
MaxSessions 50
Subsystem sftp internal-sftp
$extra
EOF
  if ! alive "$(pidof_file "$d/holder.pid")"; then
    stop_sshd "$name"   # an sshd from an old holder would run in a dead mount namespace
    start_holder "$name" # in the background: finish_netns_hosts waits for all holders at once
    PENDING+=("$name")
  else
    start_sshd "$name"
  fi
}

remove_host() {  # name: one host, as `down` removes all
  local name=$1 d=$R/hosts/$1 ns=gedge-lab-$1 pids holder sig
  if [ "$(cat "$d/kind")" = full ]; then
    podman rm -f -t 0 "gedge-lab-$name" >/dev/null 2>&1 || true
  else
    holder=$(pidof_file "$d/holder.pid")
    if alive "$holder" && grep -s '"id"' "$D/hosts/$name/containers/storage/overlay-containers/containers.json" >/dev/null; then
      nsenter -t "$holder" -m -u -n podman rm -af -t 0 >/dev/null 2>&1 || true
    fi
    for sig in TERM KILL; do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -z "$pids" ] || { kill -s $sig $pids 2>/dev/null || true; [ $sig = KILL ] || sleep 0.2; }
    done
    unblackhole "$(cat "$d/address")"
    ip link del "glab-$name" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  fi
  rm -rf "$d" "$D/hosts/$name"
  ts "removed $name"
}

finish_netns_hosts() {
  local name
  for name in "${PENDING[@]}"; do wait_holder "$name"; start_sshd "$name"; done
  PENDING=()
}

# ---------------------------------------------------------------- registry and images
ensure_registry() {
  if ! alive "$(pidof_file "$R/registry.pid")"; then
    mkdir -p "$D/registry"
    printf 'version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: "%s"}\n' \
      "$D/registry" "$REGISTRY" > "$R/registry.yml"
    setsid docker-registry serve "$R/registry.yml" </dev/null >"$R/registry.log" 2>&1 9>&- &
    echo $! > "$R/registry.pid"
    for _ in $(seq 1 100); do curl -sf "http://$REGISTRY/v2/" >/dev/null && break; sleep 0.05; done
  fi
  curl -sf "http://$REGISTRY/v2/" >/dev/null || die "registry did not start: $(cat "$R/registry.log")"
  if ! podman image exists $BB_LOCAL; then
    rm -rf "$W/bbroot"; mkdir -p "$W/bbroot/bin" "$W/bbroot/etc" "$W/bbroot/tmp"
    cp /bin/busybox "$W/bbroot/bin/busybox"
    local a
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$W/bbroot/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$W/bbroot/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$W/bbroot/etc/group"
    tar -C "$W/bbroot" -c . | podman import -q -c 'CMD ["/bin/sh"]' -c "LABEL $LABEL=1" - $BB_LOCAL >/dev/null
    ts "busybox image built"
  fi
  if ! curl -sf -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
       "http://$REGISTRY/v2/gedge/busybox/manifests/1.0"; then
    podman push -q --tls-verify=false $BB_LOCAL "docker://$BB_REMOTE"
    ts "busybox pushed to $BB_REMOTE"
  fi
}

# The TLS registries (issue 16): the lab's own CA signs a certificate for 10.213.0.1. Both serve
# the plain registry's storage read-only (no second push). TLS_REGISTRY answers /v2/ with 200 to
# a client that trusts the lab CA; AUTH_REGISTRY wants a login (htpasswd) and answers 401.
# The keys live in $R/tls (root, 0700, gone with `down`); only the CA certificate is shown.
ensure_lab_ca() {
  local t=$R/tls
  [ -s "$R/registry-ca.crt" ] && [ -s "$t/registry.crt" ] && [ -s "$t/htpasswd" ] && return 0
  rm -rf "$t"; mkdir -p "$t"; chmod 700 "$t"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=gedge lab registry CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$t/ca.key" -out "$t/ca.crt" 2>"$t/openssl.log" || return 1
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=10.213.0.1" \
    -keyout "$t/registry.key" -out "$t/registry.csr" 2>>"$t/openssl.log" || return 1
  printf 'subjectAltName=IP:10.213.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' > "$t/ext.cnf"
  openssl x509 -req -in "$t/registry.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 30 -extfile "$t/ext.cnf" -out "$t/registry.crt" 2>>"$t/openssl.log" || return 1
  (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=\n' > "$t/registry-password")
  /usr/bin/python3 -W ignore -c 'import crypt, sys
print("gedge:" + crypt.crypt(open(sys.argv[1]).read(), crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))' \
    "$t/registry-password" > "$t/htpasswd"
  install -m 644 "$t/ca.crt" "$R/registry-ca.crt"
}

start_tls_registry() {  # name addr [auth]
  local name=$1 addr=$2 auth=${3:-} t=$R/tls
  alive "$(pidof_file "$R/$name.pid")" && return 0
  {
    printf 'version: 0.1\nlog: {level: warn}\n'
    printf 'storage: {filesystem: {rootdirectory: %s}, maintenance: {readonly: {enabled: true}, uploadpurging: {enabled: false}}}\n' "$D/registry"
    printf 'http: {addr: "%s", tls: {certificate: %s, key: %s}}\n' "$addr" "$t/registry.crt" "$t/registry.key"
    [ -z "$auth" ] || printf 'auth: {htpasswd: {realm: gedge-lab, path: %s}}\n' "$t/htpasswd"
  } > "$R/$name.yml"
  setsid docker-registry serve "$R/$name.yml" </dev/null >"$R/$name.log" 2>&1 9>&- &
  echo $! > "$R/$name.pid"
}

tls_registry_answers() {  # addr code
  [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$R/registry-ca.crt" --max-time 2 "https://$1/v2/")" = "$2" ]
}

ensure_tls_registries() {  # not fatal: without them the lab works, lab.json omits them, their tests skip
  rm -f "$R/tls-registries"
  if ! ensure_lab_ca; then
    echo "lab.sh: warning: no lab registry CA (openssl: $(cat "$R/tls/openssl.log" 2>/dev/null)); no TLS registries" >&2
    return 0
  fi
  start_tls_registry registry-tls "$TLS_REGISTRY"
  start_tls_registry registry-auth "$AUTH_REGISTRY" auth
  local _
  for _ in $(seq 1 100); do
    if tls_registry_answers "$TLS_REGISTRY" 200 && tls_registry_answers "$AUTH_REGISTRY" 401; then
      touch "$R/tls-registries"; return 0
    fi
    sleep 0.05
  done
  echo "lab.sh: warning: the TLS registries did not start: $(tail -n 3 "$R/registry-tls.log" "$R/registry-auth.log" 2>/dev/null)" >&2
}

edge_tag() {
  { echo "$RECIPE"; cat "$W/id_ed25519.pub" "$W/password"; } | sha256sum | cut -c1-12
}

build_edge_image() {
  local tag=$1 E=$W/rootfs-edge
  # a rootfs cached by an older package list is made again (debootstrap only reads the list once)
  if [ -d "$E" ] && [ "$(cat "$E/.gedge-packages" 2>/dev/null)" != "$EDGE_PACKAGES" ]; then
    ts "the cached full-OS rootfs has another package list: debootstrap again"
    rm -rf "$E"
  fi
  if [ ! -d "$E" ]; then
    rm -rf "$E.tmp"
    ts "debootstrap of the full-OS image (about a minute, cached in $E)"
    debootstrap --variant=minbase --include=$EDGE_PACKAGES bookworm "$E.tmp" "$(mirror)" > "$W/debootstrap.log" 2>&1 \
      || die "debootstrap failed, see $W/debootstrap.log"
    echo "$EDGE_PACKAGES" > "$E.tmp/.gedge-packages"
    mv "$E.tmp" "$E"
    ts "debootstrap done"
  fi
  chroot "$E" sh -c "id $USER_NAME >/dev/null 2>&1 || useradd -m -s /bin/bash $USER_NAME"
  echo "$USER_NAME:$(cat "$W/password")" | chroot "$E" chpasswd
  install -d -m 700 "$E/home/$USER_NAME/.ssh"
  install -m 600 "$W/id_ed25519.pub" "$E/home/$USER_NAME/.ssh/authorized_keys"
  chroot "$E" chown -R $USER_NAME:$USER_NAME /home/$USER_NAME
  echo "$USER_NAME ALL=(ALL) NOPASSWD:ALL" > "$E/etc/sudoers.d/$USER_NAME"; chmod 440 "$E/etc/sudoers.d/$USER_NAME"
  rm -f "$E"/etc/ssh/ssh_host_*          # every container gets its own key, mounted at start
  mkdir -p "$E/etc/ssh/gedge-hostkeys"
  cat > "$E/etc/ssh/sshd_config.d/gedge-lab.conf" <<'EOF'
HostKey /etc/ssh/gedge-hostkeys/ssh_host_ed25519_key
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 50
EOF
  mkdir -p "$E/etc/containers/registries.conf.d"
  cp /etc/containers/containers.conf "$E/etc/containers/containers.conf"
  cp /etc/containers/registries.conf.d/gedge-lab.conf "$E/etc/containers/registries.conf.d/gedge-lab.conf"
  : > "$E/etc/resolv.conf"
  chroot "$E" systemctl enable ssh >/dev/null 2>&1
  chroot "$E" systemctl disable prometheus-node-exporter prometheus >/dev/null 2>&1 || true   # gedge's playbooks start them
  # units that only fail or wait in a container
  chroot "$E" systemctl mask systemd-networkd-wait-online.service systemd-timesyncd.service getty@tty1.service \
    apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
  tar -C "$E" --exclude=./.gedge-packages -c . | podman import -q -c 'CMD ["/sbin/init"]' -c "LABEL $LABEL=1" \
    -c "LABEL gedge-lab-content=$CONTENT" - "$EDGE_REPO:$tag" >/dev/null
  ts "full-OS image $EDGE_REPO:$tag built"
}

ensure_full_hosts() {
  [ "$LAB_FULL" -gt 0 ] || return 0
  local tag; tag=$(edge_tag)
  if ! podman image exists "$EDGE_REPO:$tag" \
     || [ "$(podman image inspect --format '{{index .Labels "gedge-lab-content"}}' "$EDGE_REPO:$tag" 2>/dev/null)" != "$CONTENT" ]; then
    build_edge_image "$tag"
  fi
  local want_id; want_id=$(podman image inspect --format '{{.Id}}' "$EDGE_REPO:$tag")
  cat > /etc/containers/networks/$NET.json <<EOF
{"name": "$NET", "id": "6765646765206c61620000000000000000000000000000000000000000000001",
 "driver": "bridge", "network_interface": "$BR", "created": "2026-01-01T00:00:00Z",
 "subnets": [{"subnet": "10.213.0.0/24", "gateway": "10.213.0.1"}], "labels": {"$LABEL": "1"},
 "ipv6_enabled": false, "internal": true, "dns_enabled": false, "ipam_options": {"driver": "host-local"}}
EOF
  local states line name kind addr c d st img started=0
  states=$(podman ps -a --filter label=$LABEL=1 --format '{{.Names}}|{{.State}}|{{.Image}}|{{.ImageID}}')
  while read -r name kind addr; do
    [ "$kind" = full ] || continue
    c=gedge-lab-$name d=$R/hosts/$name
    write_meta "$name" full "$addr" 22
    echo "$c" > "$d/container"
    mkdir -p "$d/hostkeys" "$D/hosts/$name/containers"
    [ -f "$d/hostkeys/ssh_host_ed25519_key" ] || new_hostkey "$d/hostkeys"
    line=$(awk -F'|' -v c="$c" '$1==c' <<<"$states")
    st=$(awk -F'|' '{print $2}' <<<"$line"); img=$(awk -F'|' '{print $3}' <<<"$line")
    if [ -n "$line" ] && { [ "$img" != "$EDGE_REPO:$tag" ] || [[ $want_id != "$(awk -F'|' '{print $4}' <<<"$line")"* ]]; }; then
      podman rm -f -t 0 "$c" >/dev/null; line=""
    fi
    if [ -z "$line" ]; then
      STARTED+=("$name")
      podman run -d --name "$c" --label $LABEL=1 --hostname "$name" --network $NET --ip "$addr" \
        --systemd=always --privileged --pull=never --dns=none \
        -v "$D/hosts/$name/containers:/var/lib/containers" -v "$d/hostkeys:/etc/ssh/gedge-hostkeys:ro" \
        "$EDGE_REPO:$tag" /sbin/init >/dev/null 9>&-
      started=1
    elif [[ $st != Up* && $st != running ]]; then
      STARTED+=("$name")
      podman start "$c" >/dev/null 9>&-; started=1
    fi
  done < <(plan)
  [ $started = 0 ] || ts "full-OS containers started"
  # veth and MAC of (re)started containers; restore a link-down fault (sshd: see cmd_up)
  local v
  while read -r name kind addr; do
    [ "$kind" = full ] || continue
    if [[ " ${STARTED[*]} " == *" $name "* ]] || [ ! -s "$R/hosts/$name/veth" ]; then
      full_veth "$name" > "$R/hosts/$name/veth" || true
      full_mac "$name" > "$R/hosts/$name/mac" || true
    fi
    v=$(cat "$R/hosts/$name/veth")
    if [ -n "$v" ] && [ "$(cat "/sys/class/net/$v/operstate" 2>/dev/null)" != up ]; then
      unblackhole "$addr"; ip link set "$v" up
    fi
  done < <(plan)
}

full_veth() {  # host-side veth of a full-OS container (by the peer ifindex of its eth0)
  local idx; idx=$(pex "gedge-lab-$1" cat /sys/class/net/eth0/iflink 2>/dev/null) || return 1
  ip -o link show | awk -F': ' -v i="$idx" '$1==i{split($2,a,"@"); print a[1]}'
}
full_mac() { pex "gedge-lab-$1" cat /sys/class/net/eth0/address 2>/dev/null; }

# ---------------------------------------------------------------- lab.json, readiness
write_lab_json() {
  /usr/bin/python3 - "$R" "$W" "$LAB_FAR_DELAY_MS" "$REGISTRY" "$BB_REMOTE" "$TLS_REGISTRY" "$AUTH_REGISTRY" <<'EOF'
import base64, hashlib, json, os, re, sys
R, W, delay, registry, image, tls_registry, auth_registry = sys.argv[1:8]
order = {"netns": 0, "full": 1, "far": 2, "bastion": 3, "inner": 4, "certuser": 5}
def rd(d, f, default=None):
    try:
        with open(os.path.join(d, f)) as fh: return fh.read().strip()
    except OSError: return default
hosts = []
for name in os.listdir(os.path.join(R, "hosts")):
    d = os.path.join(R, "hosts", name)
    kind = rd(d, "kind")
    if kind is None: continue
    keyd = os.path.join(d, "hostkeys") if kind == "full" else d
    pub = rd(keyd, "ssh_host_ed25519_key.pub")
    if pub is None: continue
    fp = "SHA256:" + base64.b64encode(hashlib.sha256(base64.b64decode(pub.split()[1])).digest()).decode().rstrip("=")
    h = {"name": name, "address": rd(d, "address"), "port": int(rd(d, "port", "22")), "kind": kind,
         "host_key": " ".join(pub.split()[:2]), "host_key_type": pub.split()[0],
         "host_key_fingerprint": fp, "bootstrap_only": name == "h6",
         "reserved_for_faults": name in ("h7", "h8"), "veth": rd(d, "veth")}
    if kind == "full": h["container"] = rd(d, "container")
    else: h["netns"] = "gedge-lab-" + name
    # the jump chain, outermost first ("" = reached directly)
    second = h["address"].startswith(("10.213.2.", "10.213.3."))
    if kind == "bastion": h["inner_address"] = "10.213.3.1" if second else "10.213.2.1"
    if kind in ("bastion", "inner") and second:
        h["jump"] = "bast1,bast2" if h["address"].startswith("10.213.3.") else "bast1"
    if kind == "far":
        h["delay_ms"] = int(rd(d, "delay_ms", delay)); h["sshd_inner"] = "127.0.0.1:22 (in its netns)"
    hosts.append(h)
hosts.sort(key=lambda h: (order[h["kind"]], int(re.sub(r"\D", "", h["name"]) or 0)))
jump_hosts = [h for h in hosts if h["kind"] in ("bastion", "inner")]
cert_hosts = [h for h in hosts if h["kind"] == "certuser"]
host_cert_hosts = [h for h in hosts if h["name"].startswith("hcert")]
for h in host_cert_hosts:
    h["principals"] = ["hcert-other.invalid"] if h["name"] == "hcert2" else [h["address"], h["name"]]
hosts = [h for h in hosts if h["kind"] not in ("bastion", "inner", "certuser") and not h["name"].startswith("hcert")]
lab = {"registry": registry, "image": image, "key": os.path.join(W, "id_ed25519"),

       "user": "gedgetest", "password_file": os.path.join(W, "password"),
       "far_delay_ms": int(delay), "bridge": "gedgebr0", "subnet": "10.213.0.0/24",
       "guard_route": "unreachable 10.213.0.0/16", "known_hosts": os.path.join(R, "known_hosts"),
       "notes": {"bootstrap_only": "h6: gedgetest has NO authorized_keys; log in with the password "
                                   "from password_file (bootstrap-by-password target)",
                 "reserved_for_faults": "h7, h8: only fault-injection tests use them, and restore them",
                 "far": "far hosts' sshd listens on 127.0.0.1:22 inside their netns; a delay proxy on "
                        "address:22 adds delay_ms each way",
                 "jump_hosts": "bast1 (bastion) is on both networks; inner1 (10.213.2.0/24) is reachable only "
                               "through it (ProxyJump); bast2 (10.213.2.20) only through bast1 and "
                               "inner2 (10.213.3.0/24) only through bast1 then bast2 ('jump' gives "
                               "each host's chain); not in 'hosts'",
                 "shared_fs": "netns/far hosts share /etc, /usr, /var with the machine (private /tmp, "
                              "/home, podman store); full hosts have their own root fs"},
       "hosts": hosts, "jump_hosts": jump_hosts, "cert_hosts": cert_hosts,
       "host_cert_hosts": host_cert_hosts, "host_ca": os.path.join(R, "host_ca.pub"),
       "user_ca": os.path.join(W, "user_ca")}
if os.path.exists(os.path.join(R, "tls-registries")):  # both answered at `up`
    lab.update(tls_registry=tls_registry, auth_registry=auth_registry,
               registry_ca=os.path.join(R, "registry-ca.crt"))
tmp = os.path.join(R, "lab.json.tmp")
with open(tmp, "w") as f: json.dump(lab, f, indent=2); f.write("\n")
os.replace(tmp, os.path.join(R, "lab.json"))
with open(os.path.join(R, "known_hosts.tmp"), "w") as f:
    for h in hosts + jump_hosts + cert_hosts + host_cert_hosts:  # lab.sh's own readiness check logs in to every one
        where = h["address"] if h["port"] == 22 else "[%s]:%d" % (h["address"], h["port"])
        f.write("%s,%s %s\n" % (h["name"], where, h["host_key"]))
os.replace(os.path.join(R, "known_hosts.tmp"), os.path.join(R, "known_hosts"))
EOF
  chmod 644 "$R/lab.json" "$R/known_hosts"
}

ssh_ready() {  # name address [tries]: a real login with the lab key (password for h6), strict host key
  local name=$1 addr=$2 tries=${3:-150} pre=()
  local opts=(-o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$R/known_hosts"
              -o GlobalKnownHostsFile=/dev/null -o "HostKeyAlias=$name" -o ConnectTimeout=2 -o LogLevel=ERROR)
  if [ "$name" = h6 ]; then
    pre=(sshpass -f "$W/password"); opts+=(-o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1)
  else
    opts+=(-o BatchMode=yes -i "$W/id_ed25519" -o IdentitiesOnly=yes)
  fi
  for _ in $(seq 1 "$tries"); do
    "${pre[@]}" ssh "${opts[@]}" "$USER_NAME@$addr" true </dev/null 2>/dev/null && return 0
    sleep 0.2
  done
  echo "lab.sh: host $name ($addr) does not answer ssh" >&2; return 1
}

banner_ok() {  # address: the TCP port answers with an SSH banner (an inner network: as its bastion sees it)
  local pre=()
  [[ $1 != 10.213.2.* ]] || pre=(ip netns exec gedge-lab-bast1)
  [[ $1 != 10.213.3.* ]] || pre=(ip netns exec gedge-lab-bast2)
  "${pre[@]}" timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/22" && read -r -t 3 l <&3 && [[ $l == SSH-* ]]' _ "$1" 2>/dev/null
}

wait_banner() {  # name: up to 30 s
  local a; a=$(cat "$R/hosts/$1/address")
  for _ in $(seq 1 150); do banner_ok "$a" && return 0; sleep 0.2; done
  echo "lab.sh: host $1 ($a) shows no SSH banner" >&2; return 1
}

wait_ready() {  # [names...] (default: all hosts of the lab)
  local pids=() name rc=0 p
  # shellcheck disable=SC2046  # host names have no spaces
  [ $# -gt 0 ] || set -- $(ls "$R/hosts")
  for name in "$@"; do ssh_ready "$name" "$(cat "$R/hosts/$name/address")" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}

# ---------------------------------------------------------------- verbs
# Every daemon and podman call started while the lock is held gets `9>&-`: conmon, sleep etc.
# would otherwise inherit the lock fd and hold the lock forever.
lock() { exec 9>"$W/lab.lock"; flock -w 600 9 || die "another lab.sh holds $W/lab.lock"; }

STARTED=()   # hosts (re)started by this run of `up`
PENDING=()   # netns hosts whose holder is starting (sshd not yet started)
cmd_up() {
  guard_route          # FIRST: 10.213.0.0/16 never leaves this machine, even without the bridge
  check_counts; need
  mkdir -p "$W"; lock
  machine_setup
  ensure_bridge
  ts "machine set-up and bridge"
  ensure_registry
  ensure_tls_registries
  ts "registries"
  ensure_full_hosts     # the containers boot (systemd) while the netns hosts are made
  local name kind addr planned d todo=() jobs=() j t
  while read -r name kind addr; do
    case $kind in netns|far|bastion|inner|certuser) todo+=("$name $kind $addr") ;; esac
  done < <(plan)
  # hosts that an earlier, larger `up` made (not in this plan): removed with LAB_SHRINK=1,
  # else kept and restored like the others
  planned=" $(plan | awk '{print $1}' | tr '\n' ' ')"
  for d in "$R"/hosts/*; do
    [ -d "$d" ] || continue
    name=${d##*/}; kind=$(cat "$d/kind")
    [[ $planned != *" $name "* ]] || continue
    if [ "${LAB_SHRINK:-0}" = 1 ]; then remove_host "$name"; continue; fi
    [ "$kind" = full ] || todo+=("$name $kind $(cat "$d/address")")
  done
  # namespaces one by one (`ip netns add` sets up /run/netns and is not safe in parallel),
  # then every host in its own background job
  rm -f "$R"/hosts/*/started
  for t in "${todo[@]}"; do
    name=${t%% *}; [ -e "/run/netns/gedge-lab-$name" ] || ip netns add "gedge-lab-$name"
  done
  for t in "${todo[@]}"; do
    # shellcheck disable=SC2086  # "name kind address"
    set -- $t
    if netns_healthy "$1" "$2"; then sync_delay "$1" "$2"; continue; fi
    ( ensure_netns_host "$1" "$2" "$3"; finish_netns_hosts ) & jobs+=($!)
  done
  for j in "${jobs[@]}"; do wait "$j" || die "a netns host failed to start (see above)"; done
  for d in "$R"/hosts/*; do [ ! -f "$d/started" ] || STARTED+=("${d##*/}"); done
  ts "netns and far hosts"
  write_lab_json
  # Every host must show an SSH banner (a full host whose sshd a fault stopped is restarted).
  # Of the hosts (re)started now, one per kind plus h6 (password) get a real login: the
  # configuration is the same template for all of a kind, and logins cost CPU on 2 cores.
  local login=() seen=" " k pids=() p
  for d in "$R"/hosts/*; do
    name=${d##*/}; k=$(cat "$d/kind")
    if [[ " ${STARTED[*]} " == *" $name "* ]]; then
      # (inner1, bast2 and inner2 are not reachable from here: their banner, seen from their
      # bastion, is their check)
      if [[ $k != inner && $k != certuser && $name != bast2 && ( $seen != *" $k "* || $name = h6 ) ]]; then login+=("$name"); seen+="$k "; fi
      wait_banner "$name" & pids+=($!)
    elif ! banner_ok "$(cat "$d/address")"; then
      [ "$k" != full ] || pex "gedge-lab-$name" systemctl start ssh
      [ "$k" = inner ] || [ "$k" = certuser ] || [ "$name" = bast2 ] || login+=("$name")
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || die "a host does not answer on port 22"; done
  [ ${#login[@]} = 0 ] || wait_ready "${login[@]}"
  ts "lab up: $(ls "$R/hosts" | wc -l) hosts answer ssh; $R/lab.json"
}

cmd_down() {
  guard_route
  mkdir -p "$W"; lock
  local ids ns p pids d name holder
  ids=$(podman ps -aq --filter label=$LABEL=1 2>/dev/null || true)
  [ -z "$ids" ] || podman rm -f -t 0 $ids >/dev/null 2>&1 || true
  # containers that tests started inside netns hosts live in that host's own store
  for d in "$R"/hosts/*; do
    [ -d "$d" ] || continue
    name=${d##*/}; holder=$(pidof_file "$d/holder.pid")
    if alive "$holder" && grep -qs '"id"' "$D/hosts/$name/containers/storage/overlay-containers/containers.json"; then
      nsenter -t "$holder" -m -u -n podman rm -af -t 0 >/dev/null 2>&1 || true
    fi
  done
  for sig in TERM KILL; do
    for ns in $(ip netns list | awk '/^gedge-lab-/{print $1}'); do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -z "$pids" ] || kill -s $sig $pids 2>/dev/null || true
    done
    for f in registry registry-tls registry-auth; do
      p=$(pidof_file "$R/$f.pid"); ! alive "$p" || kill -s $sig "$p" 2>/dev/null || true
    done
    [ $sig = KILL ] || sleep 0.3
  done
  for ns in $(ip netns list | awk '/^gedge-lab-/{print $1}'); do
    ip link del "glab-${ns#gedge-lab-}" 2>/dev/null || true
    ip netns del "$ns"
  done
  for p in $(ip -o link show | awk -F': ' '$2 ~ /^glab-/{split($2,a,"@"); print a[1]}'); do ip link del "$p" 2>/dev/null || true; done
  rm -rf /etc/netns/gedge-lab-*
  ip neigh flush dev $BR 2>/dev/null || true
  ip link del $BR 2>/dev/null || true
  ip link del $BR2 2>/dev/null || true
  ip link del $BR3 2>/dev/null || true
  rm -f /etc/containers/networks/$NET.json
  rm -rf "$R" "$D"
  ts "lab down"
}

cmd_status() {
  [ -f "$R/lab.json" ] || { echo "lab is down"; return 1; }
  local d name kind addr veth link sshd bad=0
  printf '%-8s %-6s %-14s %-6s %s\n' HOST KIND ADDRESS LINK SSHD
  for d in "$R"/hosts/*; do
    name=${d##*/}; kind=$(cat "$d/kind"); addr=$(cat "$d/address"); veth=$(cat "$d/veth" 2>/dev/null || true)
    link=$(ip -br link show "$veth" 2>/dev/null | awk '{print $2=="DOWN"?"down":"up"}'); link=${link:-none}
    if [ "$kind" = full ]; then
      pex "gedge-lab-$name" systemctl is-active -q ssh 2>/dev/null && sshd=running || sshd=stopped
    else
      alive "$(pidof_file "$d/sshd.pid")" && sshd=running || sshd=stopped
      [ "$kind" != far ] || alive "$(pidof_file "$d/proxy.pid")" || sshd="$sshd,proxy-stopped"
    fi
    [ "$link" = up ] && [ "$sshd" = running ] || bad=1
    printf '%-8s %-6s %-14s %-6s %s\n' "$name" "$kind" "$addr" "$link" "$sshd"
  done
  if curl -sf "http://$REGISTRY/v2/" >/dev/null; then echo "registry $REGISTRY up"; else echo "registry $REGISTRY DOWN"; bad=1; fi
  if [ -f "$R/tls-registries" ]; then   # started by `up` (an older lab.sh starts none)
    if tls_registry_answers "$TLS_REGISTRY" 200; then echo "registry $TLS_REGISTRY up (TLS)"; else echo "registry $TLS_REGISTRY DOWN"; bad=1; fi
    if tls_registry_answers "$AUTH_REGISTRY" 401; then echo "registry $AUTH_REGISTRY up (TLS, 401)"; else echo "registry $AUTH_REGISTRY DOWN"; bad=1; fi
  fi
  return $bad
}

unblackhole() {  # address: drop the permanent neighbour entries a link-down fault made
  local ns
  ip neigh show "$1" dev $BR 2>/dev/null | grep PERMANENT >/dev/null || return 0
  ip neigh del "$1" dev $BR 2>/dev/null || true
  for ns in $(ip netns list | awk '/^gedge-lab-/{print $1}'); do ip -n "$ns" neigh del "$1" dev eth0 2>/dev/null || true; done
}

cmd_fault() {
  local name=${1:-} what=${2:-} kind d addr veth mac ns
  [ -n "$name" ] && [ -n "$what" ] || die "usage: lab.sh fault HOST link-down|link-up|rekey|stop-sshd|start-sshd|reset-keys"
  guard_route; lock
  kind=$(hkind "$name"); d=$R/hosts/$name; addr=$(cat "$d/address")
  veth=$(cat "$d/veth" 2>/dev/null || true); mac=$(cat "$d/mac" 2>/dev/null || true)
  case $what in
    link-down)
      [ -n "$veth" ] || die "no veth known for $name"
      # a permanent neighbour entry makes connects hang (blackhole) instead of failing fast
      # with "no route to host" once ARP gives up
      # (here and in the other netns hosts, so host-to-host connects hang too)
      if [ -n "$mac" ]; then
        ip neigh replace "$addr" lladdr "$mac" dev $BR nud permanent
        for ns in $(ip netns list | awk '/^gedge-lab-/{print $1}'); do
          [ "$ns" = "gedge-lab-$name" ] || ip -n "$ns" neigh replace "$addr" lladdr "$mac" dev eth0 nud permanent 2>/dev/null || true
        done
      fi
      ip link set "$veth" down ;;
    link-up)
      [ -n "$veth" ] || die "no veth known for $name"
      ip link set "$veth" up
      unblackhole "$addr" ;;
    reset-keys)   # authorized_keys back to the lab's initial state (none on h6)
      local home=/home/$USER_NAME
      if [ "$kind" = full ]; then
        pex -i "gedge-lab-$name" sh -c "install -d -o $USER_NAME -g $USER_NAME -m 700 $home/.ssh &&
          cat > $home/.ssh/authorized_keys && chown $USER_NAME: $home/.ssh/authorized_keys &&
          chmod 600 $home/.ssh/authorized_keys" < "$R/authorized_keys"
      else
        nsenter -t "$(pidof_file "$d/holder.pid")" -m -u -n sh -c "rm -rf $home/.ssh
          if [ $name != h6 ]; then install -d -o $USER_NAME -g $USER_NAME -m 700 $home/.ssh
            install -o $USER_NAME -g $USER_NAME -m 600 $R/authorized_keys $home/.ssh/authorized_keys; fi"
      fi ;;
    stop-sshd)
      if [ "$kind" = full ]; then pex "gedge-lab-$name" systemctl stop ssh; else stop_sshd "$name"; fi ;;
    start-sshd)
      if [ "$kind" = full ]; then pex "gedge-lab-$name" systemctl start ssh; else start_sshd "$name"; fi
      case $addr in 10.213.2.* | 10.213.3.*) wait_banner "$name" ;; *) wait_ready "$name" ;; esac ;;
    rekey)
      if [ "$kind" = full ]; then
        new_hostkey "$d/hostkeys"
        pex "gedge-lab-$name" systemctl restart ssh
      else
        stop_sshd "$name"; new_hostkey "$d"
        [[ $name != hcert* ]] || sign_hostcert "$name" "$d" "$addr"
        start_sshd "$name"
      fi
      write_lab_json
      # hosts on an inner network: the banner as their bastion sees it (no login from here)
      case $addr in 10.213.2.* | 10.213.3.*) wait_banner "$name" ;; *) wait_ready "$name" ;; esac ;;
    *) die "unknown fault '$what' (link-down link-up rekey stop-sshd start-sshd reset-keys)" ;;
  esac
  echo "$name: $what"
}

cmd_delay() {
  local name=${1:-} ms=${2:-} d
  [ -n "$name" ] && [[ $ms =~ ^[0-9]+$ ]] || die "usage: lab.sh delay FARHOST MS"
  lock
  [ "$(hkind "$name")" = far ] || die "$name is not a far host"
  d=$R/hosts/$name
  echo "$ms" > "$d/delay_ms"
  alive "$(pidof_file "$d/proxy.pid")" && kill -HUP "$(cat "$d/proxy.pid")"
  write_lab_json
  echo "$name: delay ${ms} ms each way"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) [ -f "$R/lab.json" ] || die "lab is not up (run: $0 up)"; cat "$R/lab.json" ;;
  fault) shift; cmd_fault "$@" ;;
  delay) shift; cmd_delay "$@" ;;
  *) echo "usage: $0 up|down|status|env|fault HOST link-down|link-up|rekey|stop-sshd|start-sshd|reset-keys|delay HOST MS" >&2; exit 2 ;;
esac
