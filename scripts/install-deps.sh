#!/usr/bin/env bash
# Install the Debian packages this project needs, if any are missing, and
# the Rust toolchain peers/wasmtime-bench is built with (rustup).
# Idempotent: with everything installed it only asks dpkg and rustup and exits.
#
#   install-deps.sh [--arm64-busybox DIR]
#     --arm64-busybox DIR: also put Debian's static arm64 busybox (package
#     busybox-static:arm64) at DIR/busybox, for the arm64 guest's initramfs.
#     The host keeps its own busybox-static: the arm64 package cannot be
#     installed beside it (same files), so it is downloaded (apt-get
#     download, after `dpkg --add-architecture arm64`) and unpacked with
#     dpkg-deb into DIR, again only when DIR holds no busybox or one of
#     another version than the archive's.
set -euo pipefail

busybox_arm64_dir=
while [ $# -gt 0 ]; do
    case $1 in
    --arm64-busybox)
        [ $# -ge 2 ] || { echo "install-deps: --arm64-busybox needs a directory" >&2; exit 2; }
        busybox_arm64_dir=$2
        shift 2 ;;
    *) echo "install-deps: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

packages=(
    build-essential cmake ninja-build pkg-config python3
    libgtest-dev googletest libbenchmark-dev
    # libFuzzer, and the BPF tracer
    clang libclang-rt-14-dev bpftool libbpf-dev
    # the C and C++ sources' layout (scripts/check-format.sh)
    clang-format
    # plots
    gnuplot-nox
    liburing-dev
    # the runtime integration: wasm2c and its runtime, fibers
    wabt libboost-context-dev
    # its WASI programs in C: clang's wasm32-wasi target needs wasi-libc,
    # the wasm32 compiler-rt builtins and lld (wasm-ld)
    wasi-libc libclang-rt-14-dev-wasm32 lld
    # the test guests: kernel sources (6.12 and 6.1) and build tools, QEMU, busybox
    linux-source-6.12 linux-source-6.1 ccache flex bison bc libelf-dev libssl-dev
    cpio xz-utils file patch perl qemu-system-x86 busybox-static
    # the debug guest's kernel BTF, for madvisev-trace there
    pahole
    # the kselftest built as a 32-bit program too: gcc-12-multilib, not the
    # gcc-multilib metapackage, which conflicts with every cross gcc
    # (gcc-aarch64-linux-gnu below) and adds only /usr/include/asm, which
    # the kselftest takes from the kernel's uapi headers (-isystem)
    gcc-12-multilib
    # the arm64 guest: the kernel and the kselftest cross-built, and QEMU
    # (qemu-system-aarch64); its busybox: --arm64-busybox
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm
    # rustup's download, for peers/wasmtime-bench's toolchain
    curl ca-certificates
    # the Debian packages of libmadvisev (scripts/build-debs.sh; no fakeroot:
    # debian/control says Rules-Requires-Root: no) and scripts/test-debs.sh's man -w
    debhelper dpkg-dev lintian man-db
    # make debs' kernel packages start from Debian's own config of each
    # version (make bindeb-pkg needs kmod and rsync); make image bootstraps
    # a Debian 12 system from the archive
    linux-config-6.12 linux-config-6.1 kmod rsync debootstrap e2fsprogs
)

if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
else
    sudo=
fi
export DEBIAN_FRONTEND=noninteractive
updated=0
apt_update() {
    [ "$updated" = 1 ] && return
    $sudo apt-get update -qq
    updated=1
}

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    apt_update
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Rust for peers/wasmtime-bench: rustup and the toolchain its
# rust-toolchain.toml names (Debian 12's cargo is older than Wasmtime's
# minimum).  rustup from its own site when the machine has none.
rust_toolchain=$(sed -n 's/^channel = "\(.*\)"$/\1/p' "$(dirname "$0")/../peers/wasmtime-bench/rust-toolchain.toml")
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v rustup > /dev/null; then
    echo "install-deps: installing rustup (https://static.rust-lang.org)"
    tmp_rustup=$(mktemp -d)
    curl -sSfL -o "$tmp_rustup/rustup-init" \
        https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init
    chmod +x "$tmp_rustup/rustup-init"
    "$tmp_rustup/rustup-init" -y -q --no-modify-path --profile minimal --default-toolchain none
    rm -rf "$tmp_rustup"
fi
if ! rustup run "$rust_toolchain" cargo --version > /dev/null 2>&1 ||
    ! rustup run "$rust_toolchain" cargo clippy --version > /dev/null 2>&1; then
    echo "install-deps: installing Rust $rust_toolchain (rustup)"
    rustup toolchain install "$rust_toolchain" --profile minimal -c rustfmt -c clippy
fi

[ -n "$busybox_arm64_dir" ] || exit 0

# Debian's busybox-static for arm64, unpacked into $busybox_arm64_dir.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "install-deps: adding the arm64 architecture to dpkg (for busybox-static:arm64)"
    $sudo dpkg --add-architecture arm64
    updated=0
    apt_update
fi
candidate() {
    apt-cache policy busybox-static:arm64 2>/dev/null | sed -n 's/^ *Candidate: //p'
}
version=$(candidate)
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    # The architecture is there but apt has no arm64 lists yet.
    apt_update
    version=$(candidate)
fi
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    echo "install-deps: no busybox-static:arm64 in the archive apt knows" >&2
    exit 1
fi
dir=$busybox_arm64_dir
if [ -x "$dir/busybox" ] && [ "$(cat "$dir/busybox.version" 2>/dev/null)" = "$version" ]; then
    exit 0
fi
echo "install-deps: busybox-static:arm64 $version into $dir"
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt downloads as user _apt where it can write, as root where it cannot;
# the directory is made writable for it so that it says nothing.
chmod 777 "$tmp"
(cd "$tmp" && apt-get download -qq "busybox-static:arm64=$version")
dpkg-deb -x "$tmp"/busybox-static_*_arm64.deb "$tmp/root"
bin=$tmp/root/bin/busybox
if ! file -L "$bin" | grep -q 'ARM aarch64.*statically linked'; then
    echo "install-deps: $bin is not a static arm64 program: $(file -L "$bin")" >&2
    exit 1
fi
install -m 755 "$bin" "$dir/busybox"
echo "$version" > "$dir/busybox.version"
