#!/usr/bin/env bash
# Installs everything, then runs the whole test suite: format and layering checks, the dev build
# and its tests, the asan (address + undefined) build and its tests, and the leak check.
# Usage: scripts/test.sh            (what .ci/run and README command 2 run)
#        RUNVM_TEST_PRESETS=dev scripts/test.sh   (one build only, for a quick local run)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
guest/build.sh

scripts/check_format.sh
python3 scripts/check_layering.py .

snap=$(mktemp)
trap 'rm -f "$snap"' EXIT
scripts/leak_check.sh snapshot "$snap"

jobs=$(nproc)
for preset in ${RUNVM_TEST_PRESETS:-dev asan}; do
  echo "=== $preset build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset tests"
  ctest --preset "$preset" -j "$jobs"
done

scripts/leak_check.sh compare "$snap"
