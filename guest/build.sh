#!/usr/bin/env bash
# Builds the default runvm guest from Debian packages, without touching the host's /boot or
# module tree. Into OUT (default /usr/local/share/runvm):
#   vmlinuz           the kernel of linux-image-cloud-amd64 (apt-get download + dpkg-deb -x)
#   initrd.img        busybox-static, guest/init, the agent (runvm-agent, linked statically here
#                     from agent/, proto/ and base/) and the modules the devices need, as a
#                     gzip'd newc cpio
#   rootfs.img        the same content as an ext4 image (4 KiB blocks, a multiple of 2 MiB) for
#                     the NVDIMM / virtio-blk image path
#   image-loader.img  a small initrd that loads the NVDIMM and virtio-blk drivers, mounts root=
#                     and switches to it (guest/image-loader-init)
# Usage: guest/build.sh [OUT]
# Reproducible (sorted archives, fixed timestamps and owners, gzip -n, fixed ext4 UUID and hash
# seed) and cached: nothing is rebuilt while the kernel package and the inputs are unchanged.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-/usr/local/share/runvm}
cache=${RUNVM_GUEST_CACHE:-/var/cache/runvm/guest}
mkdir -p "$out" "$cache"

# The modules, in load order (each with its dependencies first).
GUEST_MODULES="virtio_pci virtio_blk virtio_net virtio_console virtio_scsi sd_mod virtio_rng
  virtiofs libnvdimm nfit nd_btt nd_pmem virtio_mem"
LOADER_MODULES="virtio_pci virtio_blk libnvdimm nfit nd_btt nd_pmem"

resolve_kernel() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'
}
kpkg=$(resolve_kernel)
if [ -z "$kpkg" ]; then
  # Package lists missing or stale (a fresh machine whose other packages were already there).
  apt-get update -q >/dev/null
  kpkg=$(resolve_kernel)
fi
if [ -z "$kpkg" ]; then
  echo "guest/build.sh: cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2
  exit 1
fi
kver=$(apt-cache policy "$kpkg" | awk '/Candidate:/{print $2}')
src=$(cd "$here/.." && pwd)
# The agent's sources: everything the static link below compiles, and their headers (the proto/
# files the agent uses are named).
agent_proto=(agent_protocol io_frame oci_spec)
agent_sources=("$src"/agent/*.cc "$src"/base/*.cc)
agent_inputs=("$src"/agent/*.h "$src"/base/*.h)
for f in "${agent_proto[@]}"; do
  agent_sources+=("$src/proto/$f.cc")
  agent_inputs+=("$src/proto/$f.h")
done
agent_inputs+=("${agent_sources[@]}")
inputs=$(cat "$here/init" "$here/hotplug" "$here/image-loader-init" "$here/build.sh" /bin/busybox \
  "${agent_inputs[@]}" | sha256sum | cut -c1-16)
stamp="$kpkg $kver $inputs"
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
  echo "guest: up to date in $out ($kpkg $kver)"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

deb=$(ls "$cache/${kpkg}_"*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ] || ! dpkg-deb --info "$deb" >/dev/null 2>&1; then
  rm -f "$cache/${kpkg}_"*.deb
  (cd "$cache" && apt-get download "$kpkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  deb=$(ls "$cache/${kpkg}_"*.deb | head -n1)
fi
kroot="$work/kernel"
dpkg-deb -x "$deb" "$kroot"
release=$(ls "$kroot/lib/modules")
depmod -b "$kroot" "$release"

# populate ROOT INIT MODULES...: busybox, init, and the modules with their dependencies.
populate() {
  local root=$1 init=$2
  shift 2
  mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,mnt,etc/runvm,newroot}
  install -m 0755 /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  install -m 0755 "$init" "$root/init"
  install -m 0755 "$here/hotplug" "$root/bin/runvm-hotplug"
  : > "$root/etc/runvm/modules"
  for m in "$@"; do
    modprobe -d "$kroot" -S "$release" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
  done | awk '!seen[$0]++' | while read -r path; do
    rel=${path#"$kroot"}
    mkdir -p "$root$(dirname "$rel")"
    cp "$path" "$root$rel"
    echo "$rel" >> "$root/etc/runvm/modules"
  done
  find "$root" -exec touch -h -d @0 {} +
}

cpio_gz() {
  (cd "$1" && find . -print0 | LC_ALL=C sort -z |
    cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) | gzip -9 -n > "$2"
}

# The agent, static: the guest has no C++ runtime. (Debian's abseil CMake targets name shared
# libraries only, so this links through pkg-config.)
echo "guest: building runvm-agent (static)"
g++ -std=c++20 -O2 -s -static -I"$src" $(pkg-config --cflags libnl-route-3.0) "${agent_sources[@]}" \
  -o "$work/runvm-agent" \
  $(pkg-config --static --libs absl_statusor absl_status absl_strings absl_str_format absl_time \
    libseccomp libcap libnl-route-3.0) \
  2> >(grep -v -e "Using 'get.*' in statically linked" -e "in function" >&2)

populate "$work/guest" "$here/init" $GUEST_MODULES
install -m 0755 "$work/runvm-agent" "$work/guest/bin/runvm-agent"
touch -h -d @0 "$work/guest/bin/runvm-agent"
populate "$work/loader" "$here/image-loader-init" $LOADER_MODULES

install -m 0644 "$kroot/boot/vmlinuz-$release" "$out/vmlinuz.tmp"
cpio_gz "$work/guest" "$out/initrd.img.tmp"
cpio_gz "$work/loader" "$out/image-loader.img.tmp"
rm -f "$out/rootfs.img.tmp"
SOURCE_DATE_EPOCH=0 E2FSPROGS_FAKE_TIME=1 mkfs.ext4 -q -F -b 4096 -L runvm-root -U 6b7b3c1e-8f5a-4c3e-9d2b-000000000001 \
  -E hash_seed=6b7b3c1e-8f5a-4c3e-9d2b-000000000002,root_owner=0:0 -N 4096 \
  -d "$work/guest" "$out/rootfs.img.tmp" 64M
# mkfs copies each file's ctime (always "now") and atime: pin them so the image is reproducible.
(cd "$work/guest" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\.||' |
  while read -r f; do printf 'sif "%s" ctime 1\nsif "%s" atime 1\n' "$f" "$f"; done) > "$work/pin"
E2FSPROGS_FAKE_TIME=1 debugfs -w -f "$work/pin" "$out/rootfs.img.tmp" >/dev/null 2>&1

for f in vmlinuz initrd.img image-loader.img rootfs.img; do mv "$out/$f.tmp" "$out/$f"; done
echo "$stamp" > "$out/.stamp"
echo "guest: built $out/{vmlinuz,initrd.img,rootfs.img,image-loader.img} ($kpkg $kver, $release)"
