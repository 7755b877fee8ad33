#!/usr/bin/env bash
# test-debs.sh DEBDIR: install the packages scripts/build-debs.sh put in
# DEBDIR (libmadvisev0, libmadvisev-dev, madvisev-tools) on this machine,
# use them as their users would, and remove them again, also on failure.
#   - pkg-config --cflags --libs madvisev, from the packaged madvisev.pc;
#   - a C program including <madvisev.h>, built with pkg-config's flags
#     against the installed shared library, zeroes a dirty page;
#   - a CMake project with find_package(madvisev REQUIRED) links each target
#     the package exports (madvisev::madvisev, madvisev::madvisev_static)
#     into a C++20 program using <madvisev.hpp>, which zeroes a page;
#   - madvisev-info runs and its call zeroes a page; madvisev-bench --help;
#   - man -w finds every packaged page (madvisev.3 and the others).
# Each check also makes sure it used the packaged files, not a copy
# elsewhere (/usr/local, say).  Needs root (dpkg), a C/C++ compiler, cmake,
# pkg-config and man-db.  Refuses to run if any of the packages is already
# installed, so that the machine is left as it was found.
# Exit 0 pass, 1 fail, 2 usage.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DEBDIR" >&2
    exit 2
fi
dir=$1
pkgs=(libmadvisev0 libmadvisev-dev madvisev-tools)
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "needs root, for dpkg -i"
debs=()
for p in "${pkgs[@]}"; do
    shopt -s nullglob
    found=("$dir/${p}_"*.deb)
    shopt -u nullglob
    [ ${#found[@]} -eq 1 ] || fail "want one ${p}_*.deb in $dir, found ${#found[@]}"
    debs+=("${found[0]}")
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    case $status in
    '' | not-installed) ;;
    *) fail "$p is already on this machine ($status): remove it first" ;;
    esac
done
version=$(dpkg-deb -f "${debs[0]}" Version)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=/usr/lib/$multiarch

tmp=$(mktemp -d)
cleanup() {
    echo "== dpkg --purge ${pkgs[*]}"
    local rc=0
    dpkg --purge "${pkgs[@]}" > "$tmp/purge.log" 2>&1 ||
        { rc=1; cat "$tmp/purge.log" >&2; echo "FAIL: dpkg --purge" >&2; }
    rm -rf "$tmp"
    [ "$rc" -eq 0 ] || exit 1
}
trap cleanup EXIT

echo "== dpkg -i ${debs[*]##*/}"
dpkg -i "${debs[@]}" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "dpkg -i"; }

# A program that links libmadvisev.so.0 must find the packaged one.
uses_packaged_lib() {
    local so
    so=$(ldd "$1" | sed -n 's/^\s*libmadvisev\.so\.0 => \(\S*\).*/\1/p')
    [ "$(readlink -f "$so")" = "$(readlink -f "$libdir/libmadvisev.so.0")" ] ||
        fail "$1 uses '${so:-no libmadvisev.so.0}', not $libdir/libmadvisev.so.0"
}

echo "== pkg-config"
flags=$(pkg-config --cflags --libs madvisev) || fail "pkg-config --cflags --libs madvisev"
echo "  pkg-config --cflags --libs madvisev: $flags"
[ "$(pkg-config --variable=pcfiledir madvisev)" = "$libdir/pkgconfig" ] ||
    fail "pkg-config reads madvisev.pc from $(pkg-config --variable=pcfiledir madvisev), not $libdir/pkgconfig"
[ "$(pkg-config --modversion madvisev)" = "$version" ] ||
    fail "pkg-config --modversion: $(pkg-config --modversion madvisev), the package is $version"

# Dirty a page, advise it away with one madvisev() call, check it reads 0.
cat > "$tmp/consumer.c" <<'EOF'
#define _GNU_SOURCE /* MADV_DONTNEED, MAP_ANONYMOUS */
#include <madvisev.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct iovec iov = { p, (size_t)page };
    if (p == MAP_FAILED)
        return 1;
    p[0] = 1;
    if (madvisev(&iov, 1, MADV_DONTNEED, 0) != page || p[0] != 0) {
        perror("madvisev");
        return 1;
    }
    printf("C: page zeroed through %s\n", madvisev_backend_name());
    return 0;
}
EOF
echo "== C program, pkg-config flags"
# shellcheck disable=SC2086 # the flags are words
cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags madvisev) -o "$tmp/consumer-c" \
    "$tmp/consumer.c" $(pkg-config --libs madvisev) || fail "the C program does not build"
uses_packaged_lib "$tmp/consumer-c"
"$tmp/consumer-c" > "$tmp/c.out" 2>&1 || { cat "$tmp/c.out" >&2; fail "the C program"; }
sed 's/^/  /' "$tmp/c.out"

echo "== CMake project, find_package(madvisev)"
exported=$(sed -n 's/^add_library(\(madvisev::[A-Za-z_]*\) .*/\1/p' "$libdir/cmake/madvisev/madvisevTargets.cmake" | sort | tr '\n' ' ')
echo "  exported targets: $exported"
[ "$exported" = "madvisev::madvisev madvisev::madvisev_static " ] ||
    fail "madvisevTargets.cmake exports '$exported'"
mkdir "$tmp/cmake"
cat > "$tmp/cmake/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(consumer LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
find_package(madvisev REQUIRED)
add_executable(x main.cpp)
target_link_libraries(x madvisev::madvisev)
add_executable(x_static main.cpp)
target_link_libraries(x_static madvisev::madvisev_static)
EOF
cat > "$tmp/cmake/main.cpp" <<'EOF'
#include <madvisev.hpp>

#include <cstdio>
#include <sys/mman.h>
#include <unistd.h>

int main() {
    const long page = sysconf(_SC_PAGESIZE);
    auto *p = static_cast<char *>(
        mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED)
        return 1;
    p[0] = p[page] = 1;
    const iovec v[] = {{p, static_cast<size_t>(page)}, {p + page, static_cast<size_t>(page)}};
    madv::flush_result r = madv::advise(v, MADV_DONTNEED);
    if (!r || r.ranges != 2 || p[0] != 0 || p[page] != 0)
        return 1;
    std::printf("C++: 2 pages zeroed through %s\n", madvisev_backend_name());
    return 0;
}
EOF
cmake -S "$tmp/cmake" -B "$tmp/cmake/build" > "$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log" >&2; fail "the CMake project does not configure"; }
found=$(sed -n 's/^madvisev_DIR:PATH=//p' "$tmp/cmake/build/CMakeCache.txt")
[ "$found" = "$libdir/cmake/madvisev" ] || fail "find_package found madvisev in '$found'"
cmake --build "$tmp/cmake/build" >> "$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log" >&2; fail "the CMake project does not build"; }
uses_packaged_lib "$tmp/cmake/build/x"
! ldd "$tmp/cmake/build/x_static" | grep -q libmadvisev || fail "x_static links libmadvisev.so"
for x in x x_static; do
    "$tmp/cmake/build/$x" > "$tmp/$x.out" 2>&1 || { cat "$tmp/$x.out" >&2; fail "the CMake project's $x"; }
    sed "s/^/  $x: /" "$tmp/$x.out"
done

echo "== madvisev-info, madvisev-bench"
[ "$(command -v madvisev-info)" = /usr/bin/madvisev-info ] || fail "madvisev-info is $(command -v madvisev-info)"
uses_packaged_lib /usr/bin/madvisev-info
madvisev-info > "$tmp/info.out" 2>&1 || { cat "$tmp/info.out" >&2; fail "madvisev-info"; }
sed 's/^/  /' "$tmp/info.out"
grep -q 'page zeroed' "$tmp/info.out" || fail "madvisev-info did not zero its page"
madvisev-bench --help > /dev/null || fail "madvisev-bench --help"

echo "== man pages"
for f in $(dpkg -L libmadvisev-dev madvisev-tools | grep '^/usr/share/man/man'); do
    [ -f "$f" ] || continue # the directories
    page=$(basename "$f" .gz)
    where=$(man -w "$page") || fail "man -w $page finds nothing"
    # man -w names the file a link page resolves to; so does readlink -f.
    [ "$where" = "$(readlink -f "$f")" ] || fail "man -w $page: $where, not $f"
done
echo "  man -w madvisev.3: $(man -w madvisev.3)"
echo "  every packaged page found"

echo "PASS"
