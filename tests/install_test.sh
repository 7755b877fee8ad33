#!/usr/bin/env bash
# install_test.sh BUILD_DIR: install the library into a scratch prefix and
# build two consumers against it: a C program through pkg-config (shared
# and static) and a C++ program through CMake's find_package(madvisev).
# Exit 0 pass, 1 fail.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" || fail "install: $(cat "$tmp/install.log")"
for f in include/madvisev.h include/madvisev.hpp lib/libmadvisev.so lib/libmadvisev.a \
         lib/pkgconfig/madvisev.pc lib/cmake/madvisev/madvisevConfig.cmake share/man/man3/madvisev.3; do
    [ -e "$tmp/prefix/$f" ] || fail "not installed: $f"
done

cat > "$tmp/consumer.c" <<'C'
#define _GNU_SOURCE /* MADV_*, MAP_ANONYMOUS */
#include <madvisev.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iovec iov[2] = { { p, ps }, { p + ps, ps } };
	memset(p, 1, 2 * ps);
	ssize_t n = madvisev(iov, 2, MADV_DONTNEED, 0);
	printf("%s %zd %d\n", madvisev_backend_name(), n, p[0] + p[ps]);
	return n == 2 * ps && p[0] == 0 && p[ps] == 0 ? 0 : 1;
}
C
export PKG_CONFIG_PATH=$tmp/prefix/lib/pkgconfig
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/c-shared" "$tmp/consumer.c" $(pkg-config --cflags --libs madvisev) ||
    fail "C consumer (shared) did not build"
LD_LIBRARY_PATH=$tmp/prefix/lib "$tmp/c-shared" || fail "C consumer (shared) failed"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/c-static" "$tmp/consumer.c" \
    $(pkg-config --cflags madvisev) "$tmp/prefix/lib/libmadvisev.a" \
    $(pkg-config --static --libs madvisev | sed 's/-lmadvisev//') ||
    fail "C consumer (static) did not build"
"$tmp/c-static" || fail "C consumer (static) failed"

mkdir -p "$tmp/cxx"
cat > "$tmp/cxx/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(consumer CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(madvisev REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE madvisev::madvisev)
CM
cat > "$tmp/cxx/main.cpp" <<'CPP'
#include <madvisev.hpp>
#include <sys/mman.h>
#include <unistd.h>
#include <cstdio>
#include <cstring>

int main() {
    const long ps = sysconf(_SC_PAGESIZE);
    auto *p = static_cast<char *>(
        mmap(nullptr, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    std::memset(p, 1, 2 * ps);
    madv::batch b;
    b.add(p, ps);
    b.add(p + ps, ps);
    madv::flush_result r = b.flush();
    std::printf("%s %zu\n", madv::backend_name(), r.bytes);
    return r && p[0] == 0 && p[ps] == 0 ? 0 : 1;
}
CPP
cmake -S "$tmp/cxx" -B "$tmp/cxx/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" > "$tmp/cxx.log" 2>&1 &&
    cmake --build "$tmp/cxx/build" >> "$tmp/cxx.log" 2>&1 || fail "C++ consumer did not build: $(tail -20 "$tmp/cxx.log")"
LD_LIBRARY_PATH=$tmp/prefix/lib "$tmp/cxx/build/consumer" || fail "C++ consumer failed"
echo "PASS: installed library used from C (pkg-config, shared and static) and C++ (CMake)"
