#!/usr/bin/env bash
# Runs a libFuzzer target with clang for a bounded time, starting from its checked-in corpus
# (new inputs go to a scratch directory, not into the repository).
# Usage: scripts/fuzz.sh TARGET [SECONDS]     e.g. scripts/fuzz.sh qmp_stream 60
set -euo pipefail
cd "$(dirname "$0")/.."
target=$1
seconds=${2:-60}
declare -A sources=(
  [qmp_stream]="tests/fuzz/qmp_stream_fuzzer.cc hypervisor/qmp/protocol.cc"
  [agent_frame]="tests/fuzz/agent_frame_fuzzer.cc proto/agent_protocol.cc base/status.cc"
  [oci_spec]="tests/fuzz/oci_spec_fuzzer.cc proto/oci_spec.cc base/status.cc"
  [config_toml]="tests/fuzz/config_toml_fuzzer.cc runtime/config/loader.cc
    runtime/config/annotations.cc proto/config.cc proto/config_codec.cc proto/config_keys.cc
    base/file.cc base/fd.cc base/status.cc build/fuzz/packaged_config.cc"
)
[ -n "${sources[$target]:-}" ] || { echo "fuzz.sh: unknown target $target" >&2; exit 2; }

out=build/fuzz
mkdir -p "$out"
# The packaged default, compiled in as CMake does (runtime/CMakeLists.txt).
template=$(cat runtime/config/packaged_config.cc.in)
printf '%s\n' "${template/@RUNVM_PACKAGED_CONFIG@/$(cat configs/configuration.toml)}" \
  > "$out/packaged_config.cc"
bin="$out/${target}_fuzzer"
# abseil from Debian is built with GCC; its libraries link fine into a clang binary.
clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I. ${sources[$target]} -o "$bin" \
  $(pkg-config --libs absl_statusor absl_strings absl_status)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$bin" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$scratch" "tests/fuzz/corpus/$target" 2>&1 | tail -n 12
