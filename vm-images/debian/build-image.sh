#!/usr/bin/env bash
# build-image.sh OUT DEBDIR INITRAMFS INITRAMFS_61
#   A Debian 12 (bookworm) system on a raw ext4 disk image, OUT/debian12.img,
#   as an operator would set one up: debootstrap from Debian's archive
#   (MIRROR, default http://deb.debian.org/debian), Debian's own kernel
#   (linux-image-amd64) from the archive, then the .deb files in DEBDIR
#   (the madvisev kernels and the library; not -dbgsym, not
#   linux-libc-dev) installed with dpkg -i; systemd is
#   init.  The tests are the initramfs guests' own (/tests of INITRAMFS,
#   and the 6.1 series' kselftests from INITRAMFS_61 in /tests/6.1), run by
#   madvisev-job.service when the kernel command line names a job.  Each
#   kernel and its initrd are copied to OUT/boot for QEMU's -kernel and
#   -initrd (run-vm.sh -d).  The debootstrap result is kept in OUT as a
#   tarball and reused while the package list is the same.  Needs root.
set -euo pipefail
usage="usage: build-image.sh OUT DEBDIR INITRAMFS INITRAMFS_61"
out=${1:?$usage} debdir=${2:?$usage} initramfs=${3:?$usage} initramfs61=${4:?$usage}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
mirror=${MIRROR:-http://deb.debian.org/debian}
suite=bookworm
include=systemd,systemd-sysv,udev,kmod,initramfs-tools,zstd,procps,e2fsprogs,util-linux
[ "$(id -u)" = 0 ] || { echo "build-image.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap > /dev/null || { echo "build-image.sh: debootstrap missing (make deps)" >&2; exit 1; }
for f in "$initramfs" "$initramfs61"; do [ -r "$f" ] || { echo "build-image.sh: $f: not found" >&2; exit 1; }; done
initramfs=$(realpath "$initramfs") initramfs61=$(realpath "$initramfs61")
# The binary packages an operator installs: not the debug symbols, and
# not linux-libc-dev (the C library's kernel headers stay Debian's; the
# series' uapi is in each linux-headers package).
debs=()
for d in "$debdir"/*.deb; do
    case $(basename "$d") in *-dbgsym_*|linux-libc-dev_*) ;; *) debs+=("$d") ;; esac
done
[ ${#debs[@]} -gt 0 ] || { echo "build-image.sh: no .deb in $debdir (make debs)" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/build-image.log
: > "$log"
base=$out/debootstrap-$suite.tar
stamp="$suite $mirror $include"

if [ ! -s "$base" ] || [ "$(cat "$base.id" 2>/dev/null)" != "$stamp" ]; then
    step "debootstrap $suite (minbase + $include) from $mirror"
    rm -rf "$out/debootstrap.tmp" "$base"
    run_logged "$log" debootstrap --variant=minbase --include="$include" "$suite" "$out/debootstrap.tmp" "$mirror"
    tar -C "$out/debootstrap.tmp" -cf "$base.tmp" .
    rm -rf "$out/debootstrap.tmp"
    mv "$base.tmp" "$base"
    echo "$stamp" > "$base.id"
    step_done
fi

root=$out/rootfs
mounted=()
cleanup() {
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}" 2> /dev/null || umount -l "${mounted[i]}" || true; done
}
trap cleanup EXIT
step "root filesystem: the kernels and the library packages"
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" -xf "$base"
for m in proc sys dev; do
    case $m in
    proc) mount -t proc proc "$root/proc" ;;
    sys) mount -t sysfs sysfs "$root/sys" ;;
    dev) mount --bind /dev "$root/dev" ;;
    esac
    mounted+=("$root/$m")
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
echo "deb $mirror $suite main" > "$root/etc/apt/sources.list"
run_logged "$log" in_root apt-get update
# Debian's own kernel, for the comparison with the series.
run_logged "$log" in_root apt-get install -y --no-install-recommends linux-image-amd64
mkdir -p "$root/tmp/debs"
cp "${debs[@]}" "$root/tmp/debs/"
# The packages as an operator installs them; dpkg -i leaves what they
# depend on for apt to fetch.
if ! in_root sh -c 'dpkg -i /tmp/debs/*.deb' >> "$log" 2>&1; then
    run_logged "$log" in_root apt-get install -y -f --no-install-recommends
fi
for d in "${debs[@]}"; do
    pkg=$(dpkg-deb -f "$d" Package)
    in_root dpkg-query -W -f='${Status}\n' "$pkg" | grep -qx 'install ok installed' ||
        { echo "[vm-images] FAILED: $pkg is not installed in the image; see $log" >&2; exit 1; }
done
rm -rf "$root/tmp/debs" "$root/var/cache/apt/archives/"*.deb
step_done

step "root filesystem: tests, the job service, settings"
mkdir -p "$root/tests/6.1"
(cd "$root" && gzip -dc "$initramfs" | cpio -idm --quiet 'tests/*')
gzip -dc "$initramfs61" | (cd "$root/tests/6.1" && cpio -idm --quiet --no-absolute-filenames \
    'tests/madvisev-kselftest' 'tests/madvisev-kselftest-32' && mv tests/* . && rmdir tests)
install -m 644 "$here/madvisev-job.service" "$root/etc/systemd/system/"
ln -sf /etc/systemd/system/madvisev-job.service "$root/etc/systemd/system/multi-user.target.wants/"
echo debian12-madvisev > "$root/etc/hostname"
echo '/dev/vda / ext4 defaults 0 1' > "$root/etc/fstab"
# The tests' modules: zram for swap, and a RAM disk under device-mapper
# (dm-delay is loaded on demand) for the O_DIRECT-in-flight case.
printf "%s\n" zram brd dm_mod > "$root/etc/modules-load.d/madvisev-tests.conf"
# Nothing in the image needs the network.
rm -f "$root/etc/resolv.conf"
step_done

step "boot files and the disk image"
rm -rf "$out/boot"
mkdir -p "$out/boot"
cp "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* "$out/boot/"
ls "$out/boot" >> "$log"
for m in "${mounted[@]}"; do umount "$m"; done
mounted=()
rm -f "$out/debian12.img.tmp"
run_logged "$log" mkfs.ext4 -q -F -L debian12 -d "$root" "$out/debian12.img.tmp" 4G
mv "$out/debian12.img.tmp" "$out/debian12.img"
step_done
echo "[vm-images] $out/debian12.img; kernels in $out/boot:" $(cd "$out/boot" && ls vmlinuz-*)
