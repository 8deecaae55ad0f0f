#!/usr/bin/python3
"""The main job's Kubernetes step: a pod through containerd's CRI plugin with runvm as the
RuntimeClass handler (docs/engines.md), on a private containerd whose CNI bridge lives in a
network namespace made here. Prints what the kubelet would see, removes everything.

Usage: scripts/cri_pod.py RUNVM_BINARY   (Debian's python3: grpcio and protobuf are its packages)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "engines"))
import image  # noqa: E402
from cri_client import Cri  # noqa: E402

BUSYBOX, PAUSE = "localhost/runvm-busybox:1", "localhost/runvm-pause:1"


def main():
    runvm = sys.argv[1]
    work = tempfile.mkdtemp(prefix="runvm-main.cri.", dir="/tmp")
    netns = f"runvm-main-{os.getpid()}"
    sock = f"{work}/containerd.sock"
    daemon = None
    try:
        subprocess.run(["ip", "netns", "add", netns], check=True)
        os.makedirs(f"{work}/cni")
        with open(f"{work}/cni/10-main.conflist", "w") as f:
            f.write('{"cniVersion": "0.4.0", "name": "runvm-main", "plugins": [{"type": "bridge",'
                    ' "bridge": "runvm-main0", "isGateway": true, "ipMasq": false, "ipam":'
                    ' {"type": "host-local", "ranges": [[{"subnet": "10.98.0.0/24"}]],'
                    f' "dataDir": "{work}/ipam"}}}}]}}\n')
        with open(f"{work}/containerd.toml", "w") as f:
            f.write(f'''version = 2
root = "{work}/root"
state = "{work}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.opt"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runvm"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runvm]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runvm.options]
        BinaryName = "{runvm}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{work}/cni"
''')
        log = open(f"{work}/containerd.log", "w")
        daemon = subprocess.Popen(["nsenter", f"--net=/run/netns/{netns}", "containerd",
                                   "--config", f"{work}/containerd.toml"],
                                  stdout=log, stderr=subprocess.STDOUT)
        while not os.path.exists(sock):
            time.sleep(0.1)
        for name, cmd in ((BUSYBOX, ["sh"]), (PAUSE, ["sleep", "2147483647"])):
            archive = image.oci_archive(f"{work}/{name[10:17]}.tar", name, cmd)
            subprocess.run(["ctr", "-a", sock, "-n", "k8s.io", "images", "import", archive],
                           check=True, stdout=subprocess.DEVNULL)
        cri = Cri(sock, work)
        pb = cri.pb
        ns = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER)
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="web", uid="main-web", namespace="default"),
            hostname="web", log_directory=f"{work}/logs",
            linux=pb.LinuxPodSandboxConfig(
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns)))
        t0 = time.monotonic()
        pod = cri.RunPodSandbox(config=config, runtime_handler="runvm").pod_sandbox_id
        status = cri.PodSandboxStatus(pod_sandbox_id=pod).status
        print(f"RunPodSandbox (runtime handler runvm): pod {pod[:12]}, "
              f"ready={status.state == pb.SANDBOX_READY}, CNI address {status.network.ip}, "
              f"{time.monotonic() - t0:.1f} s")
        container = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="app"), image=pb.ImageSpec(image=BUSYBOX),
            command=["sh", "-c", "echo app started; while :; do sleep 1; done"],
            log_path="app.log",
            linux=pb.LinuxContainerConfig(
                security_context=pb.LinuxContainerSecurityContext(namespace_options=ns),
                resources=pb.LinuxContainerResources(cpu_period=100000, cpu_quota=100000,
                                                     memory_limit_in_bytes=256 << 20)))
        cid = cri.CreateContainer(pod_sandbox_id=pod, config=container,
                                  sandbox_config=config).container_id
        cri.StartContainer(container_id=cid)
        state = cri.ContainerStatus(container_id=cid).status.state
        print(f"CreateContainer + StartContainer: {cid[:12]} "
              f"{pb.ContainerState.Name(state)}")
        r = cri.ExecSync(container_id=cid, timeout=30, cmd=[
            "sh", "-c", "echo kernel $(uname -r), $(nproc) vCPUs, memory.max"
            " $(cat /sys/fs/cgroup/memory.max), hostname $(hostname)"])
        print(f"ExecSync: {r.stdout.decode().strip()} (exit {r.exit_code})")
        print(f"host kernel: {os.uname().release}")
        cri.StopContainer(container_id=cid, timeout=10)
        print(f"StopContainer: exit code {cri.ContainerStatus(container_id=cid).status.exit_code}")
        cri.RemoveContainer(container_id=cid)
        cri.StopPodSandbox(pod_sandbox_id=pod)
        cri.RemovePodSandbox(pod_sandbox_id=pod)
        print("StopPodSandbox + RemovePodSandbox: done")
        cri.close()
    finally:
        if daemon:
            daemon.terminate()
            daemon.wait(30)
        subprocess.run(["ip", "netns", "delete", netns], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
