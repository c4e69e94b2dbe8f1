#!/bin/bash
# Format check: clang-format 14 (--dry-run -Werror, the committed .clang-format) over the tracked
# C++ files. Prints the files that differ and exits 1 if there are any; -v prints clang-format's
# own diagnostics too. Fix with: git ls-files '*.cpp' '*.hpp' | xargs clang-format-14 -i
set -uo pipefail
cd "$(dirname "$0")/.."
verbose=0
[ "${1:-}" = "-v" ] && verbose=1
cf=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
if [ -z "$cf" ]; then
  echo "check-format: clang-format 14 not found (scripts/install-deps.sh installs it)" >&2
  exit 2
fi
case "$("$cf" --version)" in
  *" 14."*) ;;
  *) echo "check-format: $cf is not clang-format 14; results may differ" >&2 ;;
esac
bad=0
# schema_text.hpp is generated (gen_schema_header.sh): not hand-formatted.
while IFS= read -r -d '' f; do
  if [ "$verbose" = 1 ]; then
    "$cf" --dry-run -Werror "$f" || { echo "not formatted: $f"; bad=$((bad + 1)); }
  elif ! "$cf" --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f"
    bad=$((bad + 1))
  fi
done < <(git ls-files -z -- '*.cpp' '*.hpp' '*.h' ':!:libgedge/src/svc/schema_text.hpp')
if [ "$bad" -gt 0 ]; then
  echo "check-format: $bad file(s) differ from .clang-format" >&2
  exit 1
fi
echo "check-format: every tracked C++ file is formatted"
