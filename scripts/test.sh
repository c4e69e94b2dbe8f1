#!/bin/bash
# The README's test command: installs what is needed, builds, and runs the whole test suite —
# unit tests, end-to-end tests on the real lab (as root), then the unit tests again under
# AddressSanitizer + UBSan. This is what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
# The guard first: lab addresses never leave the machine, even before the lab exists.
if [ "$(id -u)" -eq 0 ]; then
  . scripts/guard-route.sh && gedge_guard_route
  scripts/install-deps.sh
fi
scripts/build.sh
rc=0
echo "== format check (scripts/check-format.sh) =="
# The tree is formatted with its .clang-format (clang-format 14); a difference fails the run.
scripts/check-format.sh || rc=1
if [ "$(id -u)" -eq 0 ]; then
  # The tests start from a fresh lab. One the demo left up still runs the demo's services, which
  # count as load on its devices and move the tests' placements; coming up from down takes seconds.
  tests/lab/lab.sh down >/dev/null 2>&1 || true
fi
echo "== ctest (unit + e2e + lab) =="
(cd build && ctest --output-on-failure --timeout 1500 -j1) || rc=$?
if [ "$(id -u)" -eq 0 ]; then
  echo "== lab teardown leaves nothing behind, and comes back =="
  tests/lab/lab.sh up >/dev/null   # ctest's fixture already took it down; the cycle starts from up
  (cd tests/e2e && GEDGE_LAB_CYCLE=1 GEDGE_SOURCE_DIR="$PWD/../.." /usr/bin/python3 -m unittest \
     test_lab.LabTest.test_zz_down_leaves_nothing_and_up_restores) || rc=$?
  # Always leave the lab down, even when a test failed before the fixture cleanup ran.
  tests/lab/lab.sh down >/dev/null 2>&1 || true
  tests/lab/check_clean.sh || rc=$?
fi
echo "== unit tests under ASan + UBSan =="
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGEDGE_WERROR=ON -DGEDGE_SANITIZE=ON >/dev/null
ninja -C build-asan $(ninja -C build-asan -t targets all | grep -o '^test_[a-z_]*:' | tr -d ':' | sort -u)
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest -L unit --output-on-failure -j2) || rc=$?
echo "scripts/test.sh: done in $(( $(date +%s) - t0 )) s, rc=$rc"
exit $rc
