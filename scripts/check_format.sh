#!/usr/bin/env bash
# Fails when any C++ file differs from what the checked-in .clang-format makes of it.
# Usage: scripts/check_format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.cc' '*.h')
[ ${#files[@]} -gt 0 ] || exit 0
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/runvm-format.$$; then
  grep -E '^[^ ].*(warning|error):' /tmp/runvm-format.$$ | head -n 20
  echo "format: $(grep -c 'warning:\|error:' /tmp/runvm-format.$$) difference(s); run scripts/check_format.sh --fix"
  rm -f /tmp/runvm-format.$$
  exit 1
fi
rm -f /tmp/runvm-format.$$
echo "format: ok (${#files[@]} files)"
