#!/usr/bin/env bash
# Installs everything, builds and installs runvm, builds the guest, and runs the main job: for
# now `runvm check --boot` (can this host run sandboxes; it boots and stops a throwaway sandbox
# VM to prove it) and `runvm env` (the effective configuration).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
guest/build.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
cmake --install build/release --prefix /usr/local >/dev/null

echo "=== runvm --version"
/usr/local/bin/runvm --version
echo "=== runvm check --boot"
/usr/local/bin/runvm check --boot
echo "=== runvm env"
/usr/local/bin/runvm env
