"""What every engine test shares: the runvm under test, its configuration, the test's own
directory, the images, and the check that nothing is left behind.

Each test runs its engine's daemon privately (its own root, state, sockets and configuration in a
temporary directory); runvm is reached exactly the way that engine reaches a runtime binary.
The engine tests hold ctest's "engines" resource lock: one runs at a time, since the CRI plugin's
runtime root (/run/containerd/runc/k8s.io) is fixed by containerd.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

RUNVM = os.environ.get("RUNVM_BINARY", "")
GUEST_DIR = os.environ.get("RUNVM_GUEST_DIR", "/usr/local/share/runvm")


def sh(*argv, check=True, timeout=180, **kw):
    """Runs argv; returns the CompletedProcess (text). With check, a failure raises naming the
    command, its exit code and its output."""
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                       **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))}: exit {r.returncode}\n"
                             f"stdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def wait_for(what, predicate, timeout=60.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def processes_marked(prefixes):
    """Pids of processes that belong to a sandbox under one of `prefixes`: runvm marks QEMU,
    virtiofsd and the shims with RUNVM_SANDBOX_DIR=<root>/.vm/<digest>."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        for e in env:
            if e.startswith(b"RUNVM_SANDBOX_DIR=") and any(
                    e[len(b"RUNVM_SANDBOX_DIR="):].decode(errors="replace").startswith(p)
                    for p in prefixes):
                found.append(int(pid))
    return found


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def processes_with(needle):
    """Pids whose command line contains `needle`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        cmd = cmdline(pid)
        if needle in cmd and int(pid) != os.getpid():
            found.append((int(pid), cmd))
    return found


def mounts_under(prefixes):
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [m for m in points if any(m.startswith(p) for p in prefixes)]


def container_cgroups():
    """Host cgroup directories named for a container (a 64-hex id, podman's libpod-<id>): the
    leaves runvm makes from cgroupsPath. Parents such as /k8s.io stay, as runc leaves them."""
    found = set()
    for top in ("/sys/fs/cgroup",):
        for dirpath, dirnames, _ in os.walk(top):
            if dirpath.count("/") > 7:
                dirnames.clear()
                continue
            name = os.path.basename(dirpath)
            if re.search(r"[0-9a-f]{64}", name):
                found.add(dirpath)
    return found


class EngineTest(unittest.TestCase):
    """A temporary directory (under /tmp/runvm-test.*, which the suite's leak check watches), a
    runvm configuration for TCG guests, and a runvm command for the engine that loads it."""

    # Directories (runvm roots, engine state) whose content must be gone after the test.
    roots = ()

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        self.assertTrue(RUNVM and os.access(RUNVM, os.X_OK), f"RUNVM_BINARY {RUNVM!r}")
        self.assertTrue(os.access(f"{GUEST_DIR}/vmlinuz", os.R_OK),
                        "the guest is missing: run guest/build.sh")
        self.dir = tempfile.mkdtemp(prefix="runvm-test.engines.", dir="/tmp")
        self.config = os.path.join(self.dir, "configuration.toml")
        with open(self.config, "w") as f:
            f.write(f'[hypervisor.qemu]\nkernel = "{GUEST_DIR}/vmlinuz"\n'
                    f'initrd = "{GUEST_DIR}/initrd.img"\naccelerator = "tcg"\n'
                    'default_memory = 512\n')
        # The runtime binary an engine is given: runvm itself, with the test's configuration
        # (an installed runvm reads /etc/runvm/configuration.toml instead).
        self.runvm = os.path.join(self.dir, "runvm")
        with open(self.runvm, "w") as f:
            f.write(f'#!/bin/sh\nexec {RUNVM} --config {self.config} "$@"\n')
        os.chmod(self.runvm, 0o755)
        # A root shared with the rest of the host (podman's /run/runvm) is compared with what it
        # held before; one that was empty must be empty again, as runc leaves its own.
        self.cgroups_before = container_cgroups()
        self.roots_before = {r: set(os.listdir(r)) if os.path.isdir(r) else set()
                             for r in self.roots}

    def tearDown(self):
        if not hasattr(self, "dir"):
            return
        self.stop_engine()
        self.check_nothing_left()
        shutil.rmtree(self.dir, ignore_errors=True)

    def stop_engine(self):
        """The engine's own teardown (a subclass's): remove its containers, stop its daemon."""

    def check_nothing_left(self):
        roots = [os.path.join(r, "") for r in self.roots]
        # Helpers end a moment after the engine reports the container gone.
        leftover = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            leftover = processes_marked(roots + [self.dir])
            if not leftover:
                break
            time.sleep(0.2)
        for pid in leftover:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.assertEqual(leftover, [], "qemu, virtiofsd or shim processes were left behind")
        stray = [p for p in processes_with(self.dir) if "python" not in p[1]]
        for pid, _ in stray:  # reported below, and not left to disturb the next test
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.assertEqual(stray, [], f"processes of the test left behind: {stray}")
        self.assertEqual(mounts_under(roots + [self.dir]), [], "mounts left behind")
        self.assertEqual(sorted(container_cgroups() - self.cgroups_before), [],
                         "host cgroups of the test's containers left behind")
        for root in self.roots:
            left = set(os.listdir(root)) if os.path.isdir(root) else set()
            self.assertEqual(sorted(left - self.roots_before[root]), [],
                             f"{root} holds what the test made after its last delete")
