"""A private containerd for the engine tests, the main job and the engines benchmark: its own
root, state and sockets under a work directory, optionally with the CRI plugin (runtime
handlers of type io.containerd.runc.v2, each naming its BinaryName) and a CNI configuration,
optionally inside a network namespace (so that a CNI bridge exists only there)."""
import json
import os
import subprocess
import time

import image

BUSYBOX, PAUSE = "localhost/runvm-busybox:1", "localhost/runvm-pause:1"


def write_bridge_network(conf_dir, name, subnet, ipam_dir):
    """A CNI configuration for a bridge (made in the daemon's network namespace) with host-local
    addresses from `subnet` ("10.99.0.0/24") and a default route through the bridge."""
    os.makedirs(conf_dir, exist_ok=True)
    network = {"cniVersion": "0.4.0", "name": name, "plugins": [{
        "type": "bridge", "bridge": f"{name}0"[:15], "isGateway": True, "ipMasq": False,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": ipam_dir}}]}
    with open(f"{conf_dir}/10-{name}.conflist", "w") as f:
        json.dump(network, f)


class Containerd:
    def __init__(self, work, handlers=None, default_handler="runvm", cni_dir="",
                 restrict_oom_score_adj=False, netns=""):
        """handlers: runtime handler name -> BinaryName ("" for runc itself); None: no CRI."""
        self.work, self.socket = work, f"{work}/containerd.sock"
        lines = [
            "version = 2", f'root = "{work}/containerd-root"', f'state = "{work}/containerd-state"',
            'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs",'
            ' "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",'
            ' "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.opt"'
            + ("" if handlers else ', "io.containerd.grpc.v1.cri"') + "]",
            "[grpc]", f'  address = "{self.socket}"', "[ttrpc]", f'  address = "{self.socket}.ttrpc"']
        if handlers:
            cri = 'plugins."io.containerd.grpc.v1.cri"'
            lines += [f"[{cri}]", f'  sandbox_image = "{PAUSE}"',
                      '  stream_server_address = "127.0.0.1"', '  stream_server_port = "0"',
                      "  disable_apparmor = true",
                      f"  restrict_oom_score_adj = {str(restrict_oom_score_adj).lower()}",
                      f"[{cri}.containerd]", f'  default_runtime_name = "{default_handler}"']
            for name, binary in handlers.items():
                lines += [f"[{cri}.containerd.runtimes.{name}]",
                          '  runtime_type = "io.containerd.runc.v2"']
                if binary:
                    lines += [f"[{cri}.containerd.runtimes.{name}.options]",
                              f'  BinaryName = "{binary}"']
            if cni_dir:
                lines += [f"[{cri}.cni]", '  bin_dir = "/usr/lib/cni"', f'  conf_dir = "{cni_dir}"']
        with open(f"{work}/containerd.toml", "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(f"{work}/containerd.log", "w")
        argv = ["containerd", "--config", f"{work}/containerd.toml"]
        if netns:
            argv = ["nsenter", f"--net=/run/netns/{netns}"] + argv
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.socket):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"containerd did not start: see {work}/containerd.log")
            time.sleep(0.1)

    def ctr(self, namespace, *args, check=True, input=None, timeout=180):
        return subprocess.run(["ctr", "-a", self.socket, "-n", namespace, *args], check=check,
                              capture_output=True, text=True, input=input, timeout=timeout)

    def import_images(self, namespace, images=((BUSYBOX, ["sh"]),
                                               (PAUSE, ["sleep", "2147483647"]))):
        for n, (name, cmd) in enumerate(images):
            self.ctr(namespace, "images", "import",
                     image.oci_archive(f"{self.work}/image{n}.tar", name, cmd))

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
