#!/usr/bin/env bash
# Installs everything, builds and installs runvm, builds the guest, and runs the main job: for
# now `runvm check --boot` (can this host run sandboxes), `runvm env` (the effective
# configuration), and a sandbox VM's life: create it, hot-plug a disk into it, show its state
# as recorded, unplug the disk and delete the sandbox.
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

echo "=== a sandbox VM: create, hot-plug a disk, state, unplug, delete"
work=$(mktemp -d /tmp/runvm-main.XXXXXX)
trap '/usr/local/bin/runvm sandbox delete --force main-demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
truncate -s 64M "$work/data.img"
/usr/local/bin/runvm sandbox create main-demo
/usr/local/bin/runvm sandbox plug disk main-demo "$work/data.img"
/usr/local/bin/runvm sandbox list
/usr/local/bin/runvm sandbox state main-demo > "$work/state.json"
python3 - "$work/state.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"state: {s['id']} {s['status']}, QEMU pid {s['pid']}, run dir {s['record']['run_dir']}")
for d in s["devices"]:
    print(f"  device {d['id']} ({d['kind']}) at {d['guest_address']}: {d['source']}")
PY
device=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["devices"][0]["id"])' \
  "$work/state.json")
/usr/local/bin/runvm sandbox unplug main-demo "$device"
/usr/local/bin/runvm sandbox delete main-demo --force
echo "sandbox main-demo: created, disk plugged and unplugged, deleted"
