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
from containerd import BUSYBOX, Containerd, write_bridge_network  # noqa: E402
from cri_client import Cri  # noqa: E402


def main():
    runvm = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="runvm-main.cri.", dir="/tmp")
    netns = f"runvm-main-{os.getpid()}"
    daemon = None
    try:
        subprocess.run(["ip", "netns", "add", netns], check=True)
        write_bridge_network(f"{work}/cni", "runvm-main", "10.98.0.0/24", f"{work}/ipam")
        daemon = Containerd(work, handlers={"runvm": runvm}, cni_dir=f"{work}/cni", netns=netns)
        daemon.import_images("k8s.io")
        sock = daemon.socket
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
            command=["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
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
            daemon.stop()
        subprocess.run(["ip", "netns", "delete", netns], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
