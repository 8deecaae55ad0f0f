"""podman 4.3 with runvm as its OCI runtime (containers.conf [engine.runtimes], --runtime), on
conmon, with a private storage root; every command a podman user types for a container."""
import os
import unittest

import harness
import image

IMAGE = "localhost/runvm-busybox:1"
RUNVM_ROOT = "/run/runvm"  # podman passes no --root: the runtime's default


class PodmanTest(harness.EngineTest):
    roots = (RUNVM_ROOT,)

    def setUp(self):
        super().setUp()
        d = self.dir
        os.makedirs(f"{d}/podman")
        with open(f"{d}/containers.conf", "w") as f:
            f.write(f'''[containers]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/podman/events.log"
runtime = "runvm"
[engine.runtimes]
runvm = ["{self.runvm}"]
''')
        self.env = dict(os.environ, CONTAINERS_CONF=f"{d}/containers.conf")
        self.base = ["podman", "--root", f"{d}/podman/root", "--runroot", f"{d}/podman/run",
                     "--tmpdir", f"{d}/podman/tmp", "--storage-driver", "overlay"]
        with open(f"{d}/rootfs.tar", "wb") as f:
            f.write(image.rootfs_tar())
        self.podman("import", "--change", 'CMD ["sh"]', f"{d}/rootfs.tar", IMAGE)

    def stop_engine(self):
        if hasattr(self, "base"):
            self.podman("rm", "--all", "--force", "--time", "0", check=False)
            self.podman("rmi", "--all", "--force", check=False)
            # podman's overlay storage leaves its own mount of the layer store.
            harness.sh("umount", "-R", f"{self.dir}/podman/root/overlay", check=False)

    def podman(self, *args, check=True, input=None, timeout=180):
        return harness.sh(*self.base, *args, check=check, env=self.env, input=input,
                          timeout=timeout)

    def in_a_terminal(self, *args):
        """podman under a pty (script(1)), as a user at a terminal runs it."""
        cmd = " ".join(f"'{a}'" for a in self.base + list(args))
        return harness.sh("script", "-qec", cmd, "/dev/null", check=False, env=self.env)

    def state(self, name):
        return self.podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}",
                           name).stdout.strip()

    def test_run_rm_gives_output_and_exit_code(self):
        r = self.podman("run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 5",
                        check=False)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (5, "out\n", "err\n"))
        self.assertEqual(self.podman("ps", "-aq").stdout, "")

    def test_stdin_with_i(self):
        r = self.podman("run", "--rm", "-i", IMAGE, "sh", "-c", "read x; echo got $x",
                        input="piped\n")
        self.assertEqual(r.stdout, "got piped\n")

    def test_terminal_with_run_t(self):
        r = self.in_a_terminal("run", "--rm", "-t", IMAGE, "sh", "-c", "tty; exit 3")
        self.assertEqual(r.returncode, 3)
        self.assertRegex(r.stdout, r"/dev/pts/\d+")

    def test_create_then_start_attached(self):
        self.podman("create", "--name", "c2", IMAGE, "sh", "-c", "echo started; exit 2")
        self.assertEqual(self.state("c2"), "created 0")
        r = self.podman("start", "-a", "c2", check=False)
        self.assertEqual((r.returncode, r.stdout), (2, "started\n"))
        self.assertEqual(self.state("c2"), "exited 2")
        self.podman("rm", "c2")

    def test_detached_container_through_exec_top_pause_stop_restart_kill_rm(self):
        self.podman("run", "-d", "--name", "d1", IMAGE, "sh", "-c",
                    'trap "echo term; exit 7" TERM; while :; do sleep 1; done')
        self.assertEqual(self.state("d1"), "running 0")
        self.assertIn("d1", self.podman("ps", "--format", "{{.Names}}").stdout.split())

        r = self.podman("exec", "d1", "sh", "-c", "echo in-exec; echo e >&2; exit 4", check=False)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (4, "in-exec\n", "e\n"))
        r = self.in_a_terminal("exec", "-t", "d1", "tty")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertRegex(r.stdout, r"/dev/pts/\d+")
        # top with ps(1)'s options runs ps in the container: the guest's processes, pid 1 the
        # workload (psgo's own descriptors would read the shim's host namespace instead).
        top = self.podman("top", "d1", "-ef").stdout
        self.assertRegex(top, r"\n\s*1\s+root\s+sh -c trap")
        self.assertNotIn("qemu", top)

        self.podman("pause", "d1")
        self.assertEqual(self.state("d1"), "paused 0")
        self.podman("unpause", "d1")
        self.assertEqual(self.state("d1"), "running 0")

        self.podman("stop", "-t", "20", "d1")  # TERM, trapped: the workload exits 7
        self.assertEqual(self.state("d1"), "exited 7")
        self.assertIn("term", self.podman("logs", "d1").stdout)

        self.podman("restart", "d1")
        self.assertEqual(self.state("d1"), "running 0")
        self.podman("kill", "d1")  # KILL
        harness.wait_for("d1 to exit", lambda: self.state("d1").startswith("exited"), 60)
        self.assertEqual(self.state("d1"), "exited 137")

        self.podman("start", "d1")
        self.podman("rm", "-f", "-t", "0", "d1")
        self.assertEqual(self.podman("ps", "-aq").stdout, "")

    def test_bridge_network_hostname_hosts_and_resolv_conf(self):
        """podman's own bridge network (its CNI backend), in a network namespace of the test's
        so that the bridge, its addresses and its firewall rules exist only there: the
        container has podman's address on eth0 and reaches the bridge; podman's hostname,
        /etc/hosts and /etc/resolv.conf are the container's."""
        ns = f"runvm-podman-{os.getpid()}"
        harness.sh("ip", "netns", "add", ns)
        try:
            harness.sh("ip", "-n", ns, "link", "set", "lo", "up")
            base = self.base
            # nsenter, not `ip netns exec`, which mounts a new /sys (and so hides the cgroups).
            self.base = ["nsenter", f"--net=/run/netns/{ns}"] + base
            try:
                r = self.podman(
                    "run", "--rm", "--network", "bridge", "--hostname", "web", IMAGE, "sh", "-c",
                    "hostname; echo $(cat /etc/hostname); grep -c web /etc/hosts; test -s /etc/resolv.conf"
                    " && echo resolv; ip -o -4 addr show eth0 | awk '{print $4}';"
                    " gw=$(ip route | awk '/^default/{print $3}'); ping -c 2 -W 5 $gw >/dev/null"
                    " && echo reached $gw", check=False, timeout=300)
            finally:
                self.base = base
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            lines = r.stdout.splitlines()
            self.assertEqual(lines[:2], ["web", "web"])
            self.assertGreaterEqual(int(lines[2]), 1, "web is not in /etc/hosts")
            self.assertEqual(lines[3], "resolv")
            self.assertRegex(lines[4], r"^10\.88\.\d+\.\d+/16$")
            self.assertRegex(lines[5], r"^reached 10\.88\.0\.1$")
        finally:
            harness.sh("ip", "netns", "delete", ns, check=False)


if __name__ == "__main__":
    unittest.main()
