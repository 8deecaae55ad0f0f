#!/usr/bin/env bash
# Builds the default runvm guest from Debian packages, without touching the host's /boot or
# module tree:
#   OUT/vmlinuz     the kernel of linux-image-cloud-amd64 (apt-get download + dpkg-deb -x)
#   OUT/initrd.img  busybox-static plus guest/init, as a reproducible gzip'd newc cpio
# Usage: guest/build.sh [OUT]   (default /usr/local/share/runvm)
# Cached: nothing is rebuilt while the kernel package version and the inputs are unchanged.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-/usr/local/share/runvm}
cache=${RUNVM_GUEST_CACHE:-/var/cache/runvm/guest}
mkdir -p "$out" "$cache"

kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
if [ -z "$kpkg" ]; then
  echo "guest/build.sh: cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2
  exit 1
fi
kver=$(apt-cache policy "$kpkg" | awk '/Candidate:/{print $2}')
inputs=$(cat "$here/init" "$here/build.sh" /bin/busybox | sha256sum | cut -c1-16)
stamp="$kpkg $kver $inputs"
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] &&
   [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ]; then
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
dpkg-deb -x "$deb" "$work/kernel"
install -m 0644 "$work/kernel/boot/vmlinuz-"* "$out/vmlinuz.tmp"

root="$work/initrd"
mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,mnt,etc}
install -m 0755 /bin/busybox "$root/bin/busybox"
install -m 0755 "$here/init" "$root/init"
# Reproducible archive: fixed order, owners and timestamps; gzip without a name or time.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
  cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) | gzip -9 -n > "$out/initrd.img.tmp"

mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.img.tmp" "$out/initrd.img"
echo "$stamp" > "$out/.stamp"
echo "guest: built $out/vmlinuz and $out/initrd.img ($kpkg $kver)"
