#!/usr/bin/env bash
# Installs everything, builds and installs runvm, builds the guest, and runs the main job:
# `runvm check --boot` (can this host run sandboxes), `runvm env` (the effective configuration),
# a busybox container run in its own VM with `runvm run` (stdio piped, the workload's exit
# status), the lifecycle an engine drives (create, state, start, kill, delete), a pod (a sandbox
# container and a container sharing its VM: exec, ps, update by hotplug, pause/resume, events,
# list), a pod through containerd's CRI plugin (Kubernetes' path, runvm as the RuntimeClass
# handler) whose container reaches a peer on its CNI bridge and is reached by it, and a disk
# hot-plugged into a sandbox VM and out again.
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

echo "=== a container in a VM: runvm run, as an engine would call runc run"
work=$(mktemp -d /tmp/runvm-main.XXXXXX)
cleanup() {
  /usr/local/bin/runvm delete --force main-demo >/dev/null 2>&1 || true
  /usr/local/bin/runvm delete --force main-pod-app >/dev/null 2>&1 || true
  /usr/local/bin/runvm delete --force main-pod >/dev/null 2>&1 || true
  /usr/local/bin/runvm sandbox delete --force main-disk >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# A busybox bundle: runc's default config.json (runvm spec) with our own process.
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/"{proc,sys,dev,tmp,etc}
cp /bin/busybox "$work/bundle/rootfs/bin/"
for applet in sh echo uname cat grep sleep id hostname nproc; do
  ln -s busybox "$work/bundle/rootfs/bin/$applet"
done
(cd "$work/bundle" && /usr/local/bin/runvm spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c",
    "echo hello from $(hostname), a container in a VM; echo kernel: $(uname -r);"
    " grep -m1 -o 'hypervisor' /proc/cpuinfo; read line; echo stdin: $line; exit 3"]
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
echo "host kernel: $(uname -r)"
status=0
echo "piped from the host" | /usr/local/bin/runvm run --bundle "$work/bundle" main-demo || status=$?
echo "runvm run exited with $status (the workload's exit 3)"

echo "=== the lifecycle an engine drives: create, state, start, kill, state, delete"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["sh", "-c",
    "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done"]
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
/usr/local/bin/runvm create --bundle "$work/bundle" --pid-file "$work/pid" main-demo \
  < /dev/null > "$work/out" 2>&1
echo "created; pid file: $(cat "$work/pid") ($(cat /proc/"$(cat "$work/pid")"/comm))"
/usr/local/bin/runvm state main-demo | python3 -c 'import json,sys; s=json.load(sys.stdin); print("state:", s["status"], "pid", s["pid"])'
/usr/local/bin/runvm start main-demo
/usr/local/bin/runvm list
# TERM reaches a container's pid 1 only once it has a handler: wait until the trap is set.
for _ in $(seq 100); do grep -q ready "$work/out" && break; sleep 0.1; done
/usr/local/bin/runvm kill main-demo TERM
for _ in $(seq 50); do
  [ "$(/usr/local/bin/runvm state main-demo | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" = stopped ] && break
  sleep 0.2
done
/usr/local/bin/runvm state main-demo | python3 -c 'import json,sys; s=json.load(sys.stdin); print("state:", s["status"])'
echo "the container wrote: $(tr '\n' ' ' < "$work/out")"
/usr/local/bin/runvm delete main-demo
echo "container main-demo: created, started, signalled, stopped, deleted"

echo "=== a pod: a sandbox container and a container in one VM, as containerd's CRI runs them"
pod_bundle() {  # pod_bundle DIR TYPE ARGS-JSON
  mkdir -p "$1"
  cp -a "$work/bundle/rootfs" "$1/"
  python3 - "$work/bundle/config.json" "$1/config.json" "$2" "$3" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = json.loads(sys.argv[4])
c["annotations"] = {"io.kubernetes.cri.container-type": sys.argv[3],
                    "io.kubernetes.cri.sandbox-id": "main-pod"}
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY
}
pod_bundle "$work/pod" sandbox '["sleep", "100000"]'
pod_bundle "$work/app" container '["sh", "-c", "while :; do sleep 1; done"]'
for c in main-pod:pod main-pod-app:app; do
  /usr/local/bin/runvm create --bundle "$work/${c#*:}" "${c%%:*}" < /dev/null \
    > "$work/${c#*:}.out" 2>&1 || { cat "$work/${c#*:}.out"; exit 1; }
  /usr/local/bin/runvm start "${c%%:*}"
done
/usr/local/bin/runvm list
# QEMU is named after its sandbox (-name sandbox-ID); a zombie has no command line to match.
echo "qemu processes for the pod's two containers:" \
  "$(pgrep -c -f 'qemu-system.* -name sandbox-main-pod(-app)? ' || true)"
/usr/local/bin/runvm exec main-pod-app sh -c 'echo "in main-pod-app: nproc $(nproc),\
 $(grep MemTotal /proc/meminfo | tr -s " ")"'
echo "ps --format json (guest pids): $(/usr/local/bin/runvm ps --format json main-pod-app)"
echo '{"cpu": {"quota": 100000, "period": 100000}, "memory": {"limit": 268435456}}' |
  /usr/local/bin/runvm update --resources - main-pod-app
/usr/local/bin/runvm exec main-pod-app sh -c 'echo "after update: nproc $(nproc),\
 $(grep MemTotal /proc/meminfo | tr -s " "), cpu.max $(cat /sys/fs/cgroup/cpu.max)"'
/usr/local/bin/runvm pause main-pod-app
/usr/local/bin/runvm state main-pod-app | python3 -c 'import json,sys; print("state:", json.load(sys.stdin)["status"])'
/usr/local/bin/runvm resume main-pod-app
/usr/local/bin/runvm events --stats main-pod-app | python3 -c 'import json,sys
e = json.loads(sys.stdin.readline())
print("events --stats: memory usage", e["data"]["memory"]["usage"]["usage"], "bytes, pids",
      e["data"]["pids"]["current"])'
/usr/local/bin/runvm delete --force main-pod-app
/usr/local/bin/runvm delete --force main-pod
echo "pod main-pod: two containers in one VM, exec, ps, update, pause/resume, events, deleted"

echo "=== a pod through containerd's CRI plugin, as the kubelet runs it (RuntimeClass runvm), on its network"
/usr/bin/python3 scripts/cri_pod.py /usr/local/bin/runvm

echo "=== a sandbox VM's hot-plug: create, plug a disk, state, unplug, delete"
truncate -s 64M "$work/data.img"
/usr/local/bin/runvm sandbox create main-disk
/usr/local/bin/runvm sandbox plug disk main-disk "$work/data.img" > "$work/plugged.json"
device=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["id"])' \
  "$work/plugged.json")
echo "plugged $device"
/usr/local/bin/runvm sandbox unplug main-disk "$device"
/usr/local/bin/runvm sandbox delete main-disk --force
echo "sandbox main-disk: created, disk plugged and unplugged, deleted"
