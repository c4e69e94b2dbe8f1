#!/bin/bash
# Configures and builds gedge into ./build (warnings are errors). Usage: scripts/build.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGEDGE_WERROR=ON "$@" >/dev/null
ninja -C build
