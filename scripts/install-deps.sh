#!/usr/bin/env bash
# Install the Debian packages this project needs, if any are missing.
# Idempotent: with everything installed it only asks dpkg and exits.
set -euo pipefail

packages=(
    build-essential cmake ninja-build pkg-config python3
    libgtest-dev googletest libbenchmark-dev
    # libFuzzer, and the BPF tracer
    clang libclang-rt-14-dev bpftool libbpf-dev
    # plots
    gnuplot-nox
    liburing-dev
    # the runtime integration: wasm2c and its runtime, fibers
    wabt libboost-context-dev
    # the test guests: kernel source and build tools, QEMU, busybox
    linux-source-6.12 ccache flex bison bc libelf-dev libssl-dev
    cpio xz-utils file patch perl qemu-system-x86 busybox-static
    # the debug guest's kernel BTF, for madvisev-trace there
    pahole
    # the kselftest built as a 32-bit program too
    gcc-multilib
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
else
    sudo=
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
