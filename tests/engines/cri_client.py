"""A CRI v1 client for the tests: cri.proto compiled with Debian's protoc, calls made with
grpcio over containerd's unix socket, the way the kubelet makes them."""
import importlib
import os
import subprocess
import sys

import grpc

_HERE = os.path.dirname(os.path.abspath(__file__))


def _messages(out_dir):
    subprocess.run(["protoc", f"--proto_path={_HERE}", f"--python_out={out_dir}", "cri.proto"],
                   check=True)
    sys.path.insert(0, out_dir)
    try:
        return importlib.import_module("cri_pb2")
    finally:
        sys.path.remove(out_dir)


class Cri:
    """cri.RunPodSandbox(config=..., runtime_handler=...) and so on: each RuntimeService method
    by name, taking the request's fields as keywords (and `deadline`, the call's own, in
    seconds) and returning the response message."""

    SERVICE = "/runtime.v1.RuntimeService/"

    def __init__(self, socket, work_dir, timeout=180):
        self.pb = _messages(work_dir)
        self.channel = grpc.insecure_channel("unix://" + socket)
        self.timeout = timeout

    def close(self):
        self.channel.close()

    def __getattr__(self, method):
        request_type = getattr(self.pb, method + "Request")
        response_type = getattr(self.pb, method + "Response")
        call = self.channel.unary_unary(self.SERVICE + method,
                                        request_serializer=request_type.SerializeToString,
                                        response_deserializer=response_type.FromString)

        # `deadline` is the call's own (seconds); a request's fields may be called timeout.
        def invoke(deadline=None, **fields):
            return call(request_type(**fields), timeout=deadline or self.timeout)

        return invoke
