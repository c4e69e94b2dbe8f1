#!/bin/bash
# Regenerates the files gedge generates from its own command tree (completions), and golden
# files when GEDGE_UPDATE_GOLDEN=1 is set for the unit tests. Review the diff before committing.
set -euo pipefail
cd "$(dirname "$0")/.."
G=${GEDGE_BIN:-build/cli/gedge}
"$G" completion bash > completions/gedge.bash
"$G" completion zsh > completions/_gedge
"$G" completion fish > completions/gedge.fish
echo "regenerated completions/ from $G"
