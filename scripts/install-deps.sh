#!/bin/bash
# Installs everything gedge needs to build, test and run its lab on Debian 12 (root).
# Idempotent: a second run only checks.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "install-deps.sh: run as root (apt-get)" >&2; exit 1; }
PKGS=(
  # build
  cmake ninja-build g++ pkg-config git ccache clang-format-14
  libcli11-dev libyaml-cpp-dev libssh-dev libcurl4-openssl-dev nlohmann-json3-dev libfmt-dev
  libsqlite3-dev libhwloc-dev hwloc doctest-dev libzstd-dev libssl-dev libvalijson-dev
  # the lab's real parts: sshd, sudo, Ansible, podman, a registry, node-exporter; prometheus for promtool
  openssh-server openssh-client sudo ansible-core ansible-lint sshpass
  podman netavark aardvark-dns catatonit iptables runc crun skopeo docker-registry busybox-static
  debootstrap prometheus-node-exporter prometheus iproute2 procps bc curl jq python3 python3-yaml openssl zstd
  # benchmarks' anchors
  pssh hyperfine
)
# tests: Kubernetes objects validated against the official OpenAPI schemas (tests/k8s_validate).
# Debian's nodejs + npm only where no node/npm is installed: a machine with NodeSource's nodejs
# (which bundles npm and conflicts with Debian's npm package) keeps its own.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PKGS+=(nodejs npm)
fi
missing=()
for p in "${PKGS[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all ${#PKGS[@]} packages present"
# The Kubernetes schema validator the tests use (npm kubernetes-models, pinned by its lock file);
# offline after this: the tests only run node on the installed tree.
K8S_VALIDATE="$(cd "$(dirname "$0")/.." && pwd)/tests/k8s_validate"
if [ ! -d "$K8S_VALIDATE/node_modules/kubernetes-models" ]; then
  echo "install-deps: npm ci in tests/k8s_validate"
  npm ci --prefix "$K8S_VALIDATE" --no-audit --no-fund --loglevel=error >/dev/null
fi
