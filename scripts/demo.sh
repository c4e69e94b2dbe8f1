#!/bin/bash
# The README's demo command: installs what is needed, builds, brings up the local lab of real
# edge hosts and walks gedge through it: device → cluster → runtime → svc → sched → tune.
# Leaves the lab up (tear it down with: tests/lab/lab.sh down). Root only (namespaces, podman).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }
. scripts/guard-route.sh && gedge_guard_route   # before anything can use a lab address
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

U=$(jq -r .user $LAB)
export GEDGE_HOME
rm -rf "$GEDGE_HOME"   # a fresh demo inventory each run (the lab itself is kept warm)

step "init: inventory and gedge's own key" $G init
step "version" $G version

# --- device: pinned host keys, tokens, facts, fan-out ------------------------------------
for h in h1 h2 h3 edge1 edge2 edge3 far1; do
  case $h in far*) tier=neighbor;; *) tier=local;; esac
  step "device add $h" $G device add $h --host "$(addr $h)" --user "$U" --identity "$KEY" \
    --host-key "$(fp $h)" --label site=lab --tier $tier
done
step "device add by password bootstrap (installs gedge's key once)" \
  $G device add h6 --host "$(addr h6)" --user "$U" --host-key "$(fp h6)" \
  --password-file "$(jq -r .password_file $LAB)"
step "device ls" $G device ls
step "device check: host key, token, facts, round trip" $G device check --all
step "device exec on every device at once" $G device exec --all -- uname -r

# --- cluster: Ansible builds a container-host cluster with monitoring ---------------------
step "cluster build (containers profile, lab registry, node-exporter)" \
  $G cluster build demo --profile containers --devices edge1,edge2,edge3 \
  --registry 10.213.0.1:5000 --insecure-registry --monitoring
step "cluster build again: nothing changes" $G cluster build demo --profile containers \
  --devices edge1,edge2,edge3 --registry 10.213.0.1:5000 --insecure-registry --monitoring
step "cluster status: reachability and live node-exporter metrics" $G cluster status demo
step "cluster export as a Prometheus scrape config" $G cluster export demo --format prometheus

# --- runtime: a content-addressed bundle, pushed to the cluster, mounted into a container --
RT=/var/tmp/gedge-demo-rt
rm -rf $RT && mkdir -p $RT/env/bin
printf '#!/bin/sh\necho "hello from the gedge runtime at $GEDGE_DEMO_PREFIX"\n' > $RT/env/bin/greet
sed -i "s|\$GEDGE_DEMO_PREFIX|$RT/env|" $RT/env/bin/greet   # the build prefix, relocated by pack
chmod 755 $RT/env/bin/greet
step "runtime pack" $G runtime pack --name demo-rt --component env=$RT/env
step "runtime push to the cluster's hosts (only missing chunks)" \
  $G runtime push demo-rt --device edge1 --device edge2
step "runtime push again: nothing to send" $G runtime push demo-rt --device edge1 --device edge2
read -ra MOUNTS <<< "$($G runtime mounts demo-rt -o podman)"
step "run the bundle's program in a light container on edge1" \
  $G device exec edge1 --sudo -- podman run --rm "${MOUNTS[@]}" 10.213.0.1:5000/gedge/busybox:1.0 greet

# --- svc: the short schema, rendered and deployed ----------------------------------------
step "svc render (GS-Engine v1 short form -> Deployment + Service)" $G svc render examples/web.yaml
step "svc catalog: the images the lab registry offers" $G svc catalog --registry 10.213.0.1:5000 --plain-http
step "svc deploy: two replicas on two edge hosts (podman over SSH, waits for the port)" \
  $G svc deploy examples/demo-web.yaml --cluster demo
for h in $($G svc status demo-web -o json | jq -r '.replicas[].device'); do
  step "the service answers on $h" curl -fsS "http://$(addr $h):18080/"
done
step "svc deploy the same file again: nothing changes" $G svc deploy examples/demo-web.yaml --cluster demo
step "svc status: per replica, read live" $G svc status demo-web
step "runtime push to every member of the cluster" $G runtime push demo-rt --cluster demo
step "svc deploy a service whose program comes from the runtime bundle" \
  $G svc deploy examples/demo-runtime-svc.yaml --cluster demo
step "svc logs: the bundle's program ran inside the light container" $G svc logs demo-greeter --tail 5

# --- sched: placement ------------------------------------------------------------------------
step "sched place the YOLO pipeline jointly (offline world)" \
  $G sched place examples/yolo-pipeline.yaml --state examples/world.json --policy pipeline --explain
step "sched place per stage, GS low-latency, for comparison" \
  $G sched place examples/yolo-pipeline.yaml --state examples/world.json --policy low-latency
step "sched probe: round trips measured from h1 over SSH" $G sched probe --from h1
step "sched probe from edge1 to the demo cluster's members" $G sched probe --from edge1
step "sched place a 3-stage pipeline on the demo cluster and deploy it (--apply)" \
  $G sched place examples/demo-pipeline.yaml --policy pipeline --from edge1 --apply --cluster demo
step "svc ls: everything gedge deployed" $G svc ls

# --- tune: topology, a plan, a verified pin of a running container --------------------------
step "tune show (this machine)" $G tune show
step "tune plan near a GPU on a real two-socket machine's topology" \
  $G tune plan --cores 4 --near gpu0 --no-smt --topology tests/data/topologies/32em64t-2n8c2t-pci-normalio.xml
$G device exec edge1 --sudo -- podman rm -f gedge-demo-web >/dev/null 2>&1 || true
step "start a service container on edge1" $G device exec edge1 --sudo -- podman run -d \
  --name gedge-demo-web --label gedge-demo=1 10.213.0.1:5000/gedge/busybox:1.0 httpd -f -p 8080
step "tune pin that container to one core, read back from the kernel" \
  $G tune pin --cores 1 --device edge1 --container gedge-demo-web
$G device exec edge1 --sudo -- podman rm -f gedge-demo-web >/dev/null

printf '\n\033[1mdemo complete.\033[0m  inventory: %s   lab: tests/lab/lab.sh status | down\n' "$GEDGE_HOME"
