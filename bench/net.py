"""bench/run net: the pod network's throughput and latency, the container against the same
peer reaching a process in an identical namespace on the host (the floor), in one run.

A peer namespace holds a bridge (as the CNI bridge plugin's host side); two pod namespaces hang
off it by veth pairs, built the same way: the pod's (carried into a runvm VM by tcfilter) and
the floor's (a plain process listens there). Figures:
  - TCP stream: SIZE MiB from the peer to a listener, until the listener has it all (busybox nc
    in the container, in the floor namespace on the host);
  - round trip: busybox ping from the peer, the average of COUNT echoes.
TCG bounds the container's figures (every packet crosses the emulated virtio-net); read them,
they are no goal. Usage: bench/net.py RUNVM_BINARY GUEST_DIR RUNS  (bench/run net calls it)
"""
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SIZE_MIB = 16
COUNT = 20
PORT = 5201


def sh(*argv, check=True, **kw):
    return subprocess.run([str(a) for a in argv], check=check, capture_output=True, text=True,
                          **kw)


def emit(figure, runvm, floor, runs, unit="ms", extra=None):
    line = {"bench": "net", "figure": figure, "runvm_ms": round(statistics.median(runvm), 3),
            "floor_ms": round(statistics.median(floor), 3), "runs": runs}
    line["ratio"] = round(line["runvm_ms"] / line["floor_ms"], 2) if line["floor_ms"] else None
    if extra:
        line.update(extra)
    print(json.dumps(line), flush=True)


def in_ns(ns, *argv):
    return ["ip", "netns", "exec", ns, *argv]


def send(ns, address):
    """Seconds from connect to the listener's close, SIZE MiB sent from the peer `ns` (a child
    python in that namespace, so the socket lives there)."""
    code = (
        "import socket,sys,time\n"
        "data=b'x'*(%d<<20)\n"
        "for i in range(50):\n"
        "  try:\n"
        "    s=socket.create_connection(('%s',%d),timeout=10); break\n"
        "  except OSError: time.sleep(0.2)\n"
        "t=time.perf_counter(); s.sendall(data); s.shutdown(socket.SHUT_WR)\n"
        "s.settimeout(120)\n"
        "while s.recv(65536): pass\n"
        "print(time.perf_counter()-t)\n") % (SIZE_MIB, address, PORT)
    return float(sh(*in_ns(ns, "/usr/bin/python3", "-c", code), timeout=300).stdout.strip())


def ping_ms(ns, address):
    out = sh(*in_ns(ns, "busybox", "ping", "-q", "-c", COUNT, "-i", "0.1", "-W", "5", address),
             timeout=120).stdout
    return float(re.search(r"min/avg/max = [\d.]+/([\d.]+)/", out).group(1))


def main():
    runvm, guest, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    work = tempfile.mkdtemp(prefix="runvm-bench-net.", dir="/tmp")
    tag = os.getpid() % 100000
    peer, pod, bare = f"runvm-bpeer{tag}", f"runvm-bpod{tag}", f"runvm-bfloor{tag}"
    env = dict(os.environ, RUNVM_CONFIG=f"{work}/configuration.toml")
    root = f"{work}/root"
    cid = "0" * 48 + f"{tag:016x}"
    floor_listener = None
    try:
        with open(env["RUNVM_CONFIG"], "w") as f:
            f.write(f'[hypervisor.qemu]\nkernel = "{guest}/vmlinuz"\ninitrd = "{guest}/initrd.img"\n'
                    'accelerator = "tcg"\ndefault_memory = 512\n')
        for ns in (peer, pod, bare):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", peer, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", peer, "link", "set", "br0", "up")
        sh("ip", "-n", peer, "addr", "add", "10.216.0.1/24", "dev", "br0")
        for ns, host_end, last in ((pod, "vpod", 2), (bare, "vfloor", 3)):
            sh("ip", "-n", peer, "link", "add", host_end, "type", "veth", "peer", "name", "eth0",
               "netns", ns)
            sh("ip", "-n", peer, "link", "set", host_end, "master", "br0", "up")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "addr", "add", f"10.216.0.{last}/24", "dev", "eth0")
            sh("ip", "-n", ns, "route", "add", "default", "via", "10.216.0.1")
        # The container: a busybox bundle whose listener takes one stream after another.
        bundle = f"{work}/bundle"
        os.makedirs(f"{bundle}/rootfs/bin")
        shutil.copy("/bin/busybox", f"{bundle}/rootfs/bin/busybox")
        for d in ("proc", "sys", "dev", "tmp", "etc"):
            os.makedirs(f"{bundle}/rootfs/{d}", exist_ok=True)
        for applet in ("sh", "nc"):
            os.symlink("busybox", f"{bundle}/rootfs/bin/{applet}")
        sh(runvm, "spec", "--bundle", bundle)
        with open(f"{bundle}/config.json") as f:
            spec = json.load(f)
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["sh", "-c",
                                   f"while :; do nc -l -p {PORT} > /dev/null; done"]
        spec["process"]["env"] = ["PATH=/bin"]
        spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                       if n["type"] != "network"]
        spec["linux"]["namespaces"].append({"type": "network", "path": f"/run/netns/{pod}"})
        with open(f"{bundle}/config.json", "w") as f:
            json.dump(spec, f)
        subprocess.run([runvm, "--root", root, "run", "-d", "--bundle", bundle, cid], env=env,
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=180)
        floor_listener = subprocess.Popen(
            in_ns(bare, "sh", "-c", f"while :; do busybox nc -l -p {PORT} > /dev/null; done"))
        stream, stream_floor, rtt, rtt_floor = [], [], [], []
        ping_ms(peer, "10.216.0.2")  # ARP and the first packets out of the way
        for _ in range(runs):
            stream.append(send(peer, "10.216.0.2") * 1000)
            stream_floor.append(send(peer, "10.216.0.3") * 1000)
            rtt.append(ping_ms(peer, "10.216.0.2"))
            rtt_floor.append(ping_ms(peer, "10.216.0.3"))
        mib_s = lambda ms: round(SIZE_MIB / (statistics.median(ms) / 1000), 1)  # noqa: E731
        emit(f"TCP stream, {SIZE_MIB} MiB peer -> container (floor: -> a process in the same"
             " kind of namespace)", stream, stream_floor, runs,
             extra={"runvm_mib_s": mib_s(stream), "floor_mib_s": mib_s(stream_floor)})
        emit(f"round trip, ping from the peer (avg of {COUNT})", rtt, rtt_floor, runs)
    finally:
        if floor_listener:
            floor_listener.kill()
            floor_listener.wait()
        subprocess.run([runvm, "--root", root, "delete", "--force", cid], env=env,
                       capture_output=True)
        for ns in (pod, bare, peer):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
