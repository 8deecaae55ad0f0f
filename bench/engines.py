"""bench/run engines: what a user of an engine waits for, with runvm against runc in the same run.

  - CRI (containerd 1.6's plugin, as the kubelet calls it): RunPodSandbox + CreateContainer +
    StartContainer until ContainerStatus says running, with the RuntimeClass handler "runvm"
    against the handler "runc";
  - podman 4.3: `podman run --rm IMAGE true` with --runtime runvm against --runtime runc.

The VM boot (TCG here) is the expected difference; the figures are to read, not a goal ratio.
Usage: bench/engines.py RUNVM_BINARY GUEST_DIR RUNS  (bench/run engines calls it)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "engines"))
import image  # noqa: E402
from containerd import BUSYBOX, Containerd  # noqa: E402
from cri_client import Cri  # noqa: E402
RUNC = shutil.which("runc") or "/usr/sbin/runc"
# Both runtimes get limits within this host's hard limits (runc cannot raise them).
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def emit(figure, runvm, runc, runs, note=""):
    line = {"bench": "engines", "figure": figure,
            "runvm_ms": round(statistics.median(runvm), 1) if runvm else None,
            "floor_ms": round(statistics.median(runc), 1) if runc else None,
            "floor": "runc", "runs": runs}
    if runvm and runc:
        line["ratio"] = round(line["runvm_ms"] / line["floor_ms"], 2)
    if note:
        line["note"] = note
    print(json.dumps(line), flush=True)


def cri_pods(work, runvm, runs):
    # The sandbox's oom_score_adj (-998) cannot be set on every host (runc then fails); clamped,
    # for both runtimes alike.
    daemon = Containerd(work, handlers={"runc": "", "runvm": runvm}, default_handler="runc",
                        restrict_oom_score_adj=True)
    try:
        daemon.import_images("k8s.io")
        sock = daemon.socket
        cri = Cri(sock, work)
        pb = cri.pb
        figures, notes = {}, {}
        for handler in ("runvm", "runc"):
            samples = []
            for i in range(runs):
                ns = pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER)
                config = pb.PodSandboxConfig(
                    metadata=pb.PodSandboxMetadata(name=f"{handler}{i}", uid=f"u{handler}{i}",
                                                   namespace="bench"),
                    log_directory=f"{work}/logs",
                    linux=pb.LinuxPodSandboxConfig(
                        security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns)))
                container = pb.ContainerConfig(
                    metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=BUSYBOX),
                    command=["sleep", "1000"], log_path=f"c{i}.log",
                    linux=pb.LinuxContainerConfig(
                        security_context=pb.LinuxContainerSecurityContext(namespace_options=ns)))
                t0 = time.perf_counter()
                try:
                    pod = cri.RunPodSandbox(config=config, runtime_handler=handler).pod_sandbox_id
                    cid = cri.CreateContainer(pod_sandbox_id=pod, config=container,
                                              sandbox_config=config).container_id
                    cri.StartContainer(container_id=cid)
                    while cri.ContainerStatus(container_id=cid).status.state != pb.CONTAINER_RUNNING:
                        time.sleep(0.01)
                    samples.append((time.perf_counter() - t0) * 1000)
                except Exception as e:  # runc may not run on this host; say why
                    why = e.details() if hasattr(e, "details") else str(e)
                    notes[handler] = f"{handler} failed: {why}"
                    break
                finally:
                    for p in cri.ListPodSandbox().items:
                        cri.StopPodSandbox(pod_sandbox_id=p.id)
                        cri.RemovePodSandbox(pod_sandbox_id=p.id)
            figures[handler] = samples
        cri.close()
        emit("CRI RunPodSandbox+CreateContainer+StartContainer to running", figures["runvm"],
             figures["runc"], runs, "; ".join(notes.values()))
    finally:
        daemon.stop()


def podman_run(work, runvm, runs):
    base = ["podman", "--root", f"{work}/podman/root", "--runroot", f"{work}/podman/run",
            "--tmpdir", f"{work}/podman/tmp", "--storage-driver", "overlay",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    with open(f"{work}/rootfs.tar", "wb") as f:
        f.write(image.rootfs_tar())
    subprocess.run(base + ["import", f"{work}/rootfs.tar", BUSYBOX], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    figures, notes = {}, {}
    for name, runtime in (("runvm", runvm), ("runc", RUNC)):
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            r = subprocess.run(base + ["--runtime", runtime, "run", "--rm", "--network", "none",
                                       *ULIMITS, BUSYBOX, "true"], capture_output=True, text=True)
            if r.returncode != 0:
                notes[name] = f"{name} failed: {r.stderr.strip()[-200:]}"
                break
            samples.append((time.perf_counter() - t0) * 1000)
        figures[name] = samples
    emit("podman run --rm true", figures["runvm"], figures["runc"], runs,
         "; ".join(notes.values()))
    subprocess.run(base + ["rmi", "--all", "--force"], capture_output=True)
    subprocess.run(["umount", "-R", f"{work}/podman/root/overlay"], capture_output=True)


def main():
    runvm_binary, guest, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    work = tempfile.mkdtemp(prefix="runvm-bench.engines.", dir="/tmp")
    try:
        with open(f"{work}/configuration.toml", "w") as f:
            f.write(f'[hypervisor.qemu]\nkernel = "{guest}/vmlinuz"\ninitrd = "{guest}/initrd.img"\n'
                    'accelerator = "tcg"\ndefault_memory = 512\n')
        runvm = f"{work}/runvm"
        with open(runvm, "w") as f:
            f.write(f'#!/bin/sh\nexec {runvm_binary} --config {work}/configuration.toml "$@"\n')
        os.chmod(runvm, 0o755)
        cri_pods(work, runvm, runs)
        podman_run(work, runvm, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
