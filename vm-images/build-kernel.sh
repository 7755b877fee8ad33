#!/usr/bin/env bash
# build-kernel.sh VARIANT OUT
#   Build the guest kernel VARIANT (patched | unpatched | debug |
#   patched-arm64 | patched-6.1) under OUT, out of tree (O=), with ccache,
#   from Debian's linux-source-6.12 tarball (linux-source-6.1 for
#   patched-6.1) and the config fragments in vm-images/config:
#   guest.config, the version's (linux-6.12.config, linux-6.1.config), then
#   the architecture's (x86_64.config, arm64.config).
#   The patched kernels have kernel-patch/*.patch (but the cover letter)
#   applied with patch -p1, patched-6.1 the 6.1 series,
#   kernel-patch/6.1/*.patch;
#   debug is the patched source with config/debug.config and
#   config/trace.config (BTF, BPF, tracepoints, kprobes: madvisev-trace
#   runs there) on top.  patched-arm64 is the patched source cross-built
#   for arm64 (aarch64-linux-gnu-gcc) from its own copy of the patched
#   tree, so that it never disturbs the x86 kernels' trees.  Result:
#   OUT/obj-VARIANT/arch/x86/boot/bzImage (arch/arm64/boot/Image for
#   patched-arm64), and OUT/obj-VARIANT/usr/include with the uapi headers.
#   deb and deb-6.1 are the patched 6.12 and 6.1 sources built as Debian
#   packages (make bindeb-pkg): from Debian's own cloud-amd64 config for
#   that version (package linux-config-VERSION), with config/deb.config on
#   top and the modules trimmed to those config/deb-modules.lsmod names
#   (make localmodconfig); the packages land in OUT/debs.
#   KERNEL_JOBS: make's -j (default: nproc).
set -euo pipefail
usage="usage: build-kernel.sh patched|unpatched|debug|patched-arm64|patched-6.1|deb|deb-6.1 OUT"
variant=${1:?$usage}
out=${2:?$usage}
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
# shellcheck source=lib.sh
. "$here/lib.sh"

# source_variant: the source tree (OUT/src-NAME); tree_objs: the object
# trees built from it, removed when it is made anew.  The debug kernel is
# built from the patched source tree.  version: the Linux release, which
# picks the tarball, the series and a config fragment.
version=6.12
case $variant in
patched|debug|deb) source_variant=patched tree_objs="obj-patched obj-debug obj-deb" arch=x86_64 ;;
unpatched) source_variant=unpatched tree_objs='' arch=x86_64 ;;
patched-arm64) source_variant=patched-arm64 tree_objs=obj-patched-arm64 arch=arm64 ;;
patched-6.1|deb-6.1) source_variant=patched-6.1 tree_objs="obj-patched-6.1 obj-deb-6.1" arch=x86_64 version=6.1 ;;
*) echo "build-kernel.sh: unknown variant '$variant'" >&2; exit 2 ;;
esac
patched=1
if [ "$variant" = unpatched ]; then patched=0; fi
# What each architecture builds, and with which compiler.
case $arch in
x86_64) cross='' image=arch/x86/boot/bzImage ;;
arm64)
    cross=aarch64-linux-gnu- image=arch/arm64/boot/Image
    command -v "${cross}gcc" > /dev/null ||
        { echo "build-kernel.sh: ${cross}gcc missing (package gcc-aarch64-linux-gnu)" >&2; exit 1; }
    ;;
esac
jobs=${KERNEL_JOBS:-$(nproc)}
if [ "$version" = 6.12 ]; then
    tarball=${LINUX_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
    patch_dir=$top/kernel-patch
    pristine_name=src-unpatched
else
    tarball=${LINUX_TARBALL_6_1:-/usr/src/linux-source-6.1.tar.xz}
    patch_dir=$top/kernel-patch/6.1
    pristine_name=src-unpatched-6.1
fi
[ -r "$tarball" ] || { echo "build-kernel.sh: $tarball missing (package linux-source-$version)" >&2; exit 1; }
fragments=("$here/config/guest.config" "$here/config/linux-$version.config" "$here/config/$arch.config")
if [ "$variant" = debug ]; then fragments+=("$here/config/debug.config" "$here/config/trace.config"); fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
pristine=$out/$pristine_name
src=$out/src-$source_variant
obj=$out/obj-$variant
log=$out/build-$variant.log
: > "$log"

# The series in order; the cover letter (0000-cover-letter.patch) is text.
series=()
for p in "$patch_dir"/*.patch; do
    [ "$(basename "$p")" = 0000-cover-letter.patch ] || series+=("$p")
done

# What the source tree is made of; a change to any of it rebuilds the tree.
inputs_id() {
    {
        stat -c '%n %s %Y' "$tarball"
        if [ "$patched" = 1 ]; then cat "${series[@]}"; fi
    } | sha256sum | cut -c1-16
}
id=$(inputs_id)

if [ ! -f "$pristine/.madvisev-extracted" ] || [ "$(cat "$pristine/.madvisev-extracted")" != "$(stat -c '%n %s %Y' "$tarball")" ]; then
    step "extract $(basename "$tarball")"
    rm -rf "$pristine" "$out/extract.tmp"
    mkdir -p "$out/extract.tmp"
    run_logged "$log" tar -xf "$tarball" -C "$out/extract.tmp"
    mv "$out/extract.tmp"/linux-source-* "$pristine"
    rmdir "$out/extract.tmp"
    stat -c '%n %s %Y' "$tarball" > "$pristine/.madvisev-extracted"
    step_done
fi

if [ "$patched" = 1 ] && [ "$(cat "$src/.madvisev-id" 2>/dev/null)" != "$id" ]; then
    step "apply kernel-patch/*.patch"
    rm -rf "$src"
    # Hard links share the pristine files; patch(1) writes new files, so
    # the pristine tree stays untouched.
    cp -al "$pristine" "$src"
    for p in "${series[@]}"; do
        echo "  $(basename "$p")"
        run_logged "$log" patch -p1 --forward --batch -d "$src" -i "$p"
    done
    echo "$id" > "$src/.madvisev-id"
    for o in $tree_objs; do rm -rf "${out:?}/$o"; done # new sources: no stale objects
    step_done
fi

# Every option that $1 (a regex over "CONFIG_X=value" lines) picks from
# the fragments after it must be set so in the built .config: a fragment's
# wish that Kconfig quietly dropped fails the build here.
require_options() {
    local pattern=$1 missing
    shift
    missing=$(cat "$@" | grep -E "$pattern" | while read -r opt; do
        grep -qx "$opt" "$obj/.config" || echo "$opt"
    done)
    if [ -n "$missing" ]; then
        echo "[vm-images] FAILED: configure: options not set in $obj/.config:" $missing >&2
        exit 1
    fi
}

case $variant in deb|deb-6.1)
    # A Debian package of the patched kernel, configured as Debian
    # configures its cloud kernel for this version.
    debian_config=/usr/src/linux-config-$version/config.amd64_none_cloud-amd64.xz
    [ -r "$debian_config" ] ||
        { echo "build-kernel.sh: $debian_config missing (package linux-config-$version)" >&2; exit 1; }
    step "configure $variant kernel (Debian's cloud-amd64 config + deb.config, localmodconfig)"
    mkdir -p "$obj"
    kmake() { make -C "$src" O="$obj" ARCH="$arch" "$@"; }
    if [ ! -f "$obj/.config" ] || [ "$here/config/deb.config" -nt "$obj/.config" ] ||
        [ "$here/config/deb-modules.lsmod" -nt "$obj/.config" ] || [ "$debian_config" -nt "$obj/.config" ]; then
        xz -dc "$debian_config" > "$obj/.config"
        run_logged "$log" "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$here/config/deb.config"
        run_logged "$log" kmake olddefconfig
        run_logged "$log" kmake LSMOD="$here/config/deb-modules.lsmod" localmodconfig < /dev/null
    fi
    require_options '^CONFIG_[A-Z0-9_]+=' "$here/config/deb.config"
    step_done
    release=$(kmake -s kernelrelease)
    step "build $variant kernel packages ($release, make -j$jobs bindeb-pkg, ccache)"
    export CCACHE_BASEDIR=$out CCACHE_NOHASHDIR=1
    export DEBFULLNAME="madvisev developers" DEBEMAIL=madvisev@example.org
    rm -f "$out"/linux-*"$release"*.deb "$out"/linux-libc-dev_*"$release"*.deb
    run_logged "$log" kmake -j"$jobs" CC="ccache gcc" KDEB_PKGVERSION="$release-1" bindeb-pkg
    mkdir -p "$out/debs"
    mv "$out"/linux-*_"$release-1"_*.deb "$out"/linux-*_"$release-1"_*.changes "$out"/linux-*_"$release-1"_*.buildinfo \
        "$out/debs/" 2>/dev/null || true
    step_done
    ls "$out/debs/"*"$release"* | sed 's/^/[vm-images] /'
    exit 0
    ;;
esac

step "configure $variant kernel (tinyconfig + ${fragments[*]##*/})"
mkdir -p "$obj"
kmake() { make -C "$src" O="$obj" ARCH="$arch" ${cross:+CROSS_COMPILE="$cross"} "$@"; }
stale=0
[ -f "$obj/.config" ] || stale=1
for f in "${fragments[@]}"; do
    if [ "$f" -nt "$obj/.config" ]; then stale=1; fi
done
if [ $stale = 1 ]; then
    run_logged "$log" kmake tinyconfig
    run_logged "$log" "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "${fragments[@]}"
    run_logged "$log" kmake olddefconfig
fi
# Every option the fragments ask for must have survived olddefconfig.
require_options '^CONFIG_[A-Z0-9_]+=y' "${fragments[@]}"
step_done

step "build $variant kernel (make -j$jobs $(basename "$image"), ccache)"
export CCACHE_BASEDIR=$out
# The debug kernel compiles with -g, and ccache then hashes the build
# directory too; without this another checkout would rebuild it all.
export CCACHE_NOHASHDIR=1
run_logged "$log" kmake -j"$jobs" CC="ccache ${cross}gcc" "$(basename "$image")"
run_logged "$log" kmake headers # uapi headers in $obj/usr/include
step_done
echo "[vm-images] $obj/$image"
