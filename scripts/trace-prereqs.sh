#!/usr/bin/env bash
# trace-prereqs.sh [--bins DIR]: can madvisev-trace be built on this machine?
# Asked by make's recipes, after `deps` has installed what it installs (a
# decision taken when make reads the Makefile would predate the packages).
#
# What trace/CMakeLists.txt needs: the running kernel's BTF for vmlinux.h,
# bpftool, clang and libbpf.  scripts/install-deps.sh installs the last
# three, so only the BTF may legitimately be missing:
#   exit 0  buildable; with --bins DIR, print DIR/trace/madvisev-trace and
#           DIR/trace/trace-child (the binaries the guests need)
#   exit 1  not buildable: one line on stdout says why (no BTF)
#   exit 2  BTF is here but a tool install-deps.sh installs is missing: the
#           tracer should build and cannot; one line on stderr
# MADVISEV_BTF (default /sys/kernel/btf/vmlinux) and BPFTOOL (default: found
# on PATH, /usr/sbin, /sbin) stand in for the real ones in checks of this
# script.
set -u
bins=
if [ "${1:-}" = --bins ]; then
    bins=${2:?usage: trace-prereqs.sh [--bins DIR]}
fi
btf=${MADVISEV_BTF:-/sys/kernel/btf/vmlinux}
if [ ! -r "$btf" ]; then
    echo "no kernel BTF here ($btf) to build madvisev-trace"
    exit 1
fi
missing=()
bpftool=${BPFTOOL:-$(PATH=$PATH:/usr/sbin:/sbin command -v bpftool)}
[ -n "$bpftool" ] && [ -x "$bpftool" ] || missing+=(bpftool)
command -v clang > /dev/null || missing+=(clang)
pkg-config --exists libbpf 2> /dev/null || missing+=("libbpf (pkg-config)")
if [ ${#missing[@]} -gt 0 ]; then
    echo "trace-prereqs: this kernel has BTF ($btf) but ${missing[*]} missing:" \
        "madvisev-trace cannot be built (scripts/install-deps.sh should have installed it)" >&2
    exit 2
fi
if [ -n "$bins" ]; then
    echo "$bins/trace/madvisev-trace $bins/trace/trace-child"
fi
exit 0
