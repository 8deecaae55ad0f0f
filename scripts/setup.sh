#!/usr/bin/env bash
# Installs everything runvm needs to build, test and run, from Debian's archive by package name.
# Idempotent: packages already installed are left as they are; apt-get update runs once per day.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang clang-format clang-tidy
  libclang-rt-14-dev git python3
  # libraries
  libabsl-dev nlohmann-json3-dev libgtest-dev libgmock-dev googletest libbenchmark-dev
  libseccomp-dev libcap-dev libnl-3-dev libnl-route-3-dev nettle-dev libselinux1-dev
  libtomlplusplus-dev libcli11-dev
  # runtime parts used by the guest builder and the tests
  qemu-system-x86 qemu-utils busybox-static cpio e2fsprogs iproute2 kmod procps util-linux
  dpkg-dev zstd
  # the engines the suite drives runvm through (tests/engines/), and runc for the benchmark's floor
  containerd podman conmon containernetworking-plugins runc
  python3-grpcio python3-protobuf protobuf-compiler
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  stamp=/var/lib/apt/periodic/runvm-update-stamp
  if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]; then
    $SUDO apt-get update -q
    $SUDO mkdir -p "$(dirname "$stamp")" && $SUDO touch "$stamp"
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The unprivileged user QEMU runs as once it has started (hypervisor_user, docs/security.md).
if ! getent passwd runvm-qemu > /dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin runvm-qemu
fi
