"""containerd 1.6's own client: `ctr run --runc-binary runvm`, through the io.containerd.runc.v2
shim, with containerd's ids for execs and a private daemon. (ctr 1.6 has no `update`; the CRI
test updates resources.)"""
import os
import random
import unittest

import harness
from containerd import Containerd

IMAGE = "docker.io/library/runvm-busybox:1"


def hex64():
    return "%064x" % random.getrandbits(256)


class CtrTest(harness.EngineTest):
    def setUp(self):
        self.namespace = f"runvm-ctr-{os.getpid()}"
        # The runc shim's runtime root for this namespace: runvm's state root.
        self.roots = (f"/run/containerd/runc/{self.namespace}",)
        super().setUp()
        d = self.dir
        self.containerd = Containerd(d)
        self.containerd.import_images(self.namespace, ((IMAGE, ["sh"]),))
        self.socket = self.containerd.socket

    def stop_engine(self):
        if not hasattr(self, "containerd"):
            return
        try:
            for cid in self.ctr("containers", "ls", "-q", check=False).stdout.split():
                self.ctr("tasks", "kill", "-s", "KILL", cid, check=False)
                self.ctr("tasks", "delete", "-f", cid, check=False)
                self.ctr("containers", "delete", cid, check=False)
        finally:
            self.containerd.stop()
            harness.sh("rmdir", self.roots[0], check=False)

    def ctr(self, *args, check=True, input=None):
        return harness.sh("ctr", "-a", self.socket, "-n", self.namespace, *args, check=check,
                          input=input)

    def run_args(self, *flags):
        return ["run", "--runc-binary", self.runvm, *flags, IMAGE]

    def task_status(self, cid):
        for line in self.ctr("tasks", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields[0] == cid:
                return fields[2]
        return None

    def test_run_rm_with_a_64_hex_id(self):
        r = self.ctr(*self.run_args("--rm"), hex64(), "sh", "-c", "echo out; uname -r; exit 3",
                     check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "out")
        self.assertNotEqual(lines[1], os.uname().release, "the guest's kernel, not the host's")
        self.assertEqual(self.ctr("containers", "ls", "-q").stdout, "")

    def test_run_with_a_terminal_returns(self):
        cmd = " ".join(["ctr", "-a", self.socket, "-n", self.namespace,
                        *self.run_args("--rm", "-t"), hex64(), "sh", "-c", "'tty; exit 4'"])
        r = harness.sh("script", "-qec", cmd, "/dev/null", check=False, timeout=120)
        self.assertEqual(r.returncode, 4, r.stdout)
        self.assertRegex(r.stdout, r"/dev/pts/\d+")

    def test_detached_task_through_exec_ps_pause_metrics_kill_delete(self):
        cid = hex64()
        self.ctr(*self.run_args("-d"), cid, "sh", "-c",
                 'trap "exit 7" TERM; while :; do sleep 1; done')
        self.assertEqual(self.task_status(cid), "RUNNING")
        r = self.ctr("tasks", "exec", "--exec-id", hex64(), cid, "sh", "-c",
                     "echo in-exec; exit 6", check=False)
        self.assertEqual((r.returncode, r.stdout), (6, "in-exec\n"))
        cmd = " ".join(["ctr", "-a", self.socket, "-n", self.namespace, "tasks", "exec", "-t",
                        "--exec-id", hex64(), cid, "tty"])
        r = harness.sh("script", "-qec", cmd, "/dev/null", check=False, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertRegex(r.stdout, r"/dev/pts/\d+")
        # ps: the container's processes by the guest's pids (the shell and, mostly, its sleep).
        ps = self.ctr("tasks", "ps", cid).stdout.split()
        self.assertEqual(ps[:2], ["PID", "INFO"])
        pids = ps[2::2]
        self.assertTrue(pids and all(p.isdigit() and int(p) > 1 for p in pids), ps)

        self.ctr("tasks", "pause", cid)
        self.assertEqual(self.task_status(cid), "PAUSED")
        self.ctr("tasks", "resume", cid)
        self.assertEqual(self.task_status(cid), "RUNNING")
        metrics = self.ctr("tasks", "metrics", cid).stdout
        self.assertIn(cid, metrics)

        self.ctr("tasks", "kill", cid)  # TERM: the trap exits 7
        harness.wait_for("the task to stop", lambda: self.task_status(cid) == "STOPPED", 60)
        r = self.ctr("tasks", "delete", cid)
        self.assertIn("exit code 7", r.stderr)
        self.ctr("containers", "delete", cid)
        self.assertEqual(self.ctr("containers", "ls", "-q").stdout, "")


if __name__ == "__main__":
    unittest.main()
