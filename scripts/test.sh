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
passed=0 failed=0 skipped=0 status=0
for preset in ${RUNVM_TEST_PRESETS:-dev asan}; do
  echo "=== $preset build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset tests"
  log=$(mktemp)
  ctest --preset "$preset" -j "$jobs" | tee "$log" || status=1
  total=$(sed -n 's/.* tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -n1)
  bad=$(sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -n1)
  skip=$(grep -c '(Skipped)' "$log" || true)
  rm -f "$log"
  passed=$((passed + ${total:-0} - ${bad:-0} - skip))
  failed=$((failed + ${bad:-0}))
  skipped=$((skipped + skip))
done

echo "=== fuzzing (bounded)"
for target in qmp_stream agent_frame oci_spec config_toml; do
  scripts/fuzz.sh "$target" "${RUNVM_FUZZ_SECONDS:-40}" || { echo "fuzz: $target failed"; status=1; }
done

scripts/leak_check.sh compare "$snap" || status=1

# One closing line for the whole run (dev and asan tests together).
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
