#!/usr/bin/python3
"""The main job's Kubernetes step: a pod through containerd's CRI plugin with runvm as the
RuntimeClass handler (docs/engines.md), on a private containerd whose CNI bridge lives in a
network namespace made here. The pod's container reaches a peer over the pod's network (an HTTP
server on the bridge, in that namespace) and the peer reaches the pod. Prints what the kubelet
would see, removes everything; exits non-zero when a step fails.

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
    daemon = peer = cri = None
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
        # The pod's network: the CNI's address on the container's eth0, and a peer on the
        # bridge (an HTTP server in the namespace containerd and the bridge live in).
        with open(f"{work}/hello.txt", "w") as f:
            f.write("hello from the peer on the CNI bridge\n")
        peer = subprocess.Popen(
            ["ip", "netns", "exec", netns, "/usr/bin/python3", "-m", "http.server", "8080",
             "--bind", "10.98.0.1", "--directory", work],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = cri.ExecSync(container_id=cid, timeout=60, cmd=[
            "sh", "-c", "ip -o -4 addr show eth0 | awk '{print $2, $4}';"
            " for i in 1 2 3 4 5 6 7 8 9 10; do"
            " printf 'GET /hello.txt HTTP/1.0\\r\\n\\r\\n' | nc -w 5 10.98.0.1 8080 | tail -n 1 |"
            " grep . && exit 0; sleep 1; done; exit 1"])
        print(f"ExecSync (the pod's network): {r.stdout.decode().strip()} (exit {r.exit_code})")
        if r.exit_code != 0 or status.network.ip not in r.stdout.decode():
            raise SystemExit(f"the pod did not reach its peer: {r.stderr.decode()}")
        ping = subprocess.run(["ip", "netns", "exec", netns, "busybox", "ping", "-c", "3", "-W",
                               "5", status.network.ip], capture_output=True, text=True)
        print(f"the peer pings the pod at {status.network.ip}: "
              f"{ping.stdout.strip().splitlines()[-1] if ping.stdout.strip() else ping.stderr}")
        if ping.returncode != 0:
            raise SystemExit("the peer did not reach the pod")
        cri.StopContainer(container_id=cid, timeout=10)
        print(f"StopContainer: exit code {cri.ContainerStatus(container_id=cid).status.exit_code}")
        cri.RemoveContainer(container_id=cid)
        cri.StopPodSandbox(pod_sandbox_id=pod)
        cri.RemovePodSandbox(pod_sandbox_id=pod)
        print("StopPodSandbox + RemovePodSandbox: done")
    finally:
        if peer:
            peer.kill()
            peer.wait()
        if cri:
            # After a failed step too: no pod (VM, mounts, the CNI's namespace) outlives the job.
            try:
                for p in cri.ListPodSandbox().items:
                    cri.StopPodSandbox(pod_sandbox_id=p.id)
                    cri.RemovePodSandbox(pod_sandbox_id=p.id)
                cri.close()
            except Exception as e:  # noqa: BLE001 - the cause above is the one to report
                print(f"cleanup: {e}", file=sys.stderr)
        if daemon:
            daemon.stop()
        subprocess.run(["ip", "netns", "delete", netns], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
