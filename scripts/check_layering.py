#!/usr/bin/env python3
"""Fails when a layer includes a header from a layer it may not depend on.

Layers point one way: base <- proto <- persist <- devices <- hypervisor <- runtime, with network
(pod endpoints) beside hypervisor, above devices and below runtime; agent uses
only base and proto; hypervisor/qmp uses only base. Inside runtime the rooms point one way too:
config <- sandbox <- host <- oci <- cli (runtime/README.md). Headers are included by their path from the
repository root ("base/fd.h"), so the first path components name the layer. Tests and benchmarks
may include anything; no library code may include tests/.

Usage: check_layering.py ROOT      check the tree at ROOT
       check_layering.py --self-test
"""
import os
import re
import sys
import tempfile

# layer -> layers it may include (itself included)
ALLOWED = {
    "base": {"base"},
    "proto": {"base", "proto"},
    "persist": {"base", "proto", "persist"},
    "devices": {"base", "proto", "persist", "devices"},
    "network": {"base", "proto", "persist", "devices", "network"},
    "hypervisor/qmp": {"base", "hypervisor/qmp"},
    "hypervisor/qemu": {"base", "proto", "persist", "devices", "hypervisor/qmp", "hypervisor/qemu"},
    "hypervisor": {"base", "proto", "persist", "devices", "hypervisor/qmp", "hypervisor/qemu",
                   "hypervisor"},
    "runtime": {"base", "proto", "persist", "devices", "network", "hypervisor/qmp",
                "hypervisor/qemu", "hypervisor", "runtime"},
    "agent": {"base", "proto", "agent"},
}
# runtime's rooms, each above those before it.
RUNTIME_ROOMS = ["config", "sandbox", "host", "oci", "cli"]
for i, room in enumerate(RUNTIME_ROOMS):
    ALLOWED["runtime/" + room] = (ALLOWED["runtime"] - {"runtime"}) | {
        "runtime/" + r for r in RUNTIME_ROOMS[:i + 1]}
KNOWN = set(ALLOWED) | {"tests", "bench", "guest"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
SOURCE_EXT = (".h", ".hh", ".hpp", ".cc", ".cpp", ".c", ".in")


def layer_of(path):
    """The layer a repository-relative path belongs to, or None."""
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == "runtime" and parts[1] in RUNTIME_ROOMS:
        return "runtime/" + parts[1]
    if len(parts) >= 2 and parts[0] == "hypervisor" and parts[1] in ("qmp", "qemu") and \
            len(parts) > 2:
        return "hypervisor/" + parts[1]
    return parts[0] if parts[0] in KNOWN else None


def check(root):
    problems = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and
                       not (rel_dir == "." and d in ("build", "out"))]
        for name in filenames:
            if not name.endswith(SOURCE_EXT):
                continue
            rel = os.path.normpath(os.path.join(rel_dir, name))
            src_layer = layer_of(rel)
            if src_layer is None or src_layer in ("tests", "bench", "guest"):
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = layer_of(m.group(1))
                    if target is None:
                        continue
                    if target not in ALLOWED[src_layer]:
                        problems.append(f"{rel}:{lineno}: layer '{src_layer}' may not include "
                                        f"\"{m.group(1)}\" (layer '{target}')")
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as d:
        def write(rel, text):
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        write("base/ok.h", '#include "base/other.h"\n')
        write("runtime/ok.cc", '#include "hypervisor/qemu/x.h"\n#include "proto/c.h"\n')
        write("tests/unit/x_test.cc", '#include "runtime/cli/cli.h"\n')
        assert check(d) == [], check(d)
        write("base/bad.cc", '#include "base/ok.h"\n#include "runtime/cli/cli.h"\n')
        write("agent/bad.cc", '#include "hypervisor/qmp/client.h"\n')
        write("hypervisor/qmp/bad.cc", '#include "proto/config.h"\n')
        write("proto/bad.h", '#include "tests/testing/x.h"\n')
        write("runtime/sandbox/bad.cc", '#include "runtime/config/loader.h"\n'
              '#include "runtime/oci/containers.h"\n')
        got = sorted(check(d))
        want = sorted([
            "agent/bad.cc:1: layer 'agent' may not include \"hypervisor/qmp/client.h\" "
            "(layer 'hypervisor/qmp')",
            "base/bad.cc:2: layer 'base' may not include \"runtime/cli/cli.h\" "
            "(layer 'runtime/cli')",
            "hypervisor/qmp/bad.cc:1: layer 'hypervisor/qmp' may not include \"proto/config.h\" "
            "(layer 'proto')",
            "proto/bad.h:1: layer 'proto' may not include \"tests/testing/x.h\" (layer 'tests')",
            "runtime/sandbox/bad.cc:2: layer 'runtime/sandbox' may not include "
            "\"runtime/oci/containers.h\" (layer 'runtime/oci')",
        ])
        assert got == want, "\n".join(got)
    print("layering self-test: violations detected as expected")
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(argv[1])
    for p in problems:
        print(p)
    if problems:
        print(f"layering: {len(problems)} violation(s)")
        return 1
    print("layering: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
