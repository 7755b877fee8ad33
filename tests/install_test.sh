#!/usr/bin/env bash
# install_test.sh SRC [GENERATOR]: build the library afresh the way a
# distribution package does (prefix /usr, the multiarch libdir), install it
# into a staging tree with DESTDIR, check every installed file, and build
# consumers against the staged tree as users do: a C11 program through
# pkg-config (shared, the same with PKG_CONFIG_SYSROOT_DIR, and --static)
# and a C++ program through CMake's find_package(madvisev) (shared and
# static), and runtime-integration/ on its own the same way (the pool, the
# runtime, its embedding example, which runs; nothing of libmadvisev's
# source tree used).  Then the tree is moved, and the C and C++ consumers
# are built again from the new place, as at the final location.  Each
# consumer zeroes pages.
# Exit 0 pass, 1 fail.
set -euo pipefail
src=$(cd "$1" && pwd)
gen=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
log_fail() { echo "FAIL: $1"; tail -n 40 "$2"; exit 1; }

multiarch=$(cc -print-multiarch 2> /dev/null || true)
libdir=lib/${multiarch:-x86_64-linux-gnu}
stage=$tmp/stage
build=$tmp/build

# The library, its tools and install rules; none of the tests.
echo "== configure and build (prefix /usr, libdir $libdir)"
cmake -S "$src" -B "$build" ${gen:+-G "$gen"} -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_LIBDIR="$libdir" -DMADVISEV_BUILD_TESTS=OFF \
    > "$tmp/configure.log" 2>&1 || log_fail "configure" "$tmp/configure.log"
cmake --build "$build" -j 2 --target madvisev madvisev_static madvisev-info madvisev-bench \
    > "$tmp/build.log" 2>&1 || log_fail "build" "$tmp/build.log"
DESTDIR=$stage cmake --install "$build" > "$tmp/install.log" 2>&1 || log_fail "install" "$tmp/install.log"
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:[A-Z]*=//p' "$build/CMakeCache.txt")
[ -n "$version" ] || fail "no project version in the cache"
soversion=${version%%.*}

# Every installed file, and nothing else.
echo "== installed files"
man=usr/share/man
{
    printf '%s\n' usr/bin/madvisev-bench usr/bin/madvisev-info \
        usr/include/madvisev.h usr/include/madvisev.hpp \
        "usr/$libdir/libmadvisev.a" "usr/$libdir/libmadvisev.so" \
        "usr/$libdir/libmadvisev.so.$soversion" "usr/$libdir/libmadvisev.so.$version" \
        "usr/$libdir/pkgconfig/madvisev.pc" \
        "usr/$libdir/cmake/madvisev/madvisevConfig.cmake" \
        "usr/$libdir/cmake/madvisev/madvisevConfigVersion.cmake" \
        "usr/$libdir/cmake/madvisev/madvisevTargets.cmake" \
        "usr/$libdir/cmake/madvisev/madvisevTargets-relwithdebinfo.cmake"
    for page in "$src"/libmadvisev/man/*.[0-9]; do
        p=$(basename "$page")
        echo "$man/man${p##*.}/$p"
    done
} | sort > "$tmp/want"
(cd "$stage" && find . \( -type f -o -type l \) | sed 's#^\./##' | sort) > "$tmp/have"
if ! cmp -s "$tmp/want" "$tmp/have"; then
    echo "missing:"; comm -23 "$tmp/want" "$tmp/have" | sed 's/^/  /'
    echo "unexpected:"; comm -13 "$tmp/want" "$tmp/have" | sed 's/^/  /'
    fail "the installed files are not the expected ones"
fi
sed 's/^/  /' "$tmp/have"

L=$stage/usr/$libdir
[ "$(readlink "$L/libmadvisev.so")" = "libmadvisev.so.$soversion" ] || fail "libmadvisev.so: not a link to .so.$soversion"
[ "$(readlink "$L/libmadvisev.so.$soversion")" = "libmadvisev.so.$version" ] ||
    fail "libmadvisev.so.$soversion: not a link to .so.$version"
for f in madvisev.h madvisev.hpp; do
    cmp -s "$stage/usr/include/$f" "$src/libmadvisev/include/$f" || fail "installed $f differs from the source"
done
for page in "$src"/libmadvisev/man/*.[0-9]; do
    p=$(basename "$page")
    cmp -s "$stage/$man/man${p##*.}/$p" "$page" || fail "installed $p differs from the source"
done

# The shared library: its exports, no liburing; nothing installed keeps a
# run path into the build tree.
# (A failure here is reported at the end, after the consumers.)
exports_ok=1
bash "$src/tests/package_test.sh" exports "$L/libmadvisev.so.$version" "$src/libmadvisev/src/libmadvisev.map" |
    sed 's/^/  /' || exports_ok=0
for f in "$L/libmadvisev.so.$version" "$stage"/usr/bin/*; do
    ! readelf -d "$f" | grep -Eq '\((RPATH|RUNPATH)\)' || fail "$f keeps a run path: $(readelf -d "$f" | grep PATH)"
done
readelf -d "$stage/usr/bin/madvisev-info" | grep -q "(NEEDED).*\[libmadvisev\.so\.$soversion\]" ||
    fail "madvisev-info does not use libmadvisev.so.$soversion"
LD_LIBRARY_PATH=$L "$stage/usr/bin/madvisev-info" > "$tmp/info.out" 2>&1 ||
    fail "installed madvisev-info: $(cat "$tmp/info.out")"
grep -q 'page zeroed' "$tmp/info.out" || fail "installed madvisev-info: $(cat "$tmp/info.out")"
"$stage/usr/bin/madvisev-bench" --help > /dev/null || fail "installed madvisev-bench --help"

# Each installed page, by name through the staged manual as man finds it
# (so each .so link resolves), renders without a warning; each libmadvisev
# page a SEE ALSO names is installed.
for page in "$stage/$man"/man*/*; do
    p=$(basename "$page")
    LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -M "$stage/$man" "${p##*.}" "${p%.*}" > "$tmp/page" 2> "$tmp/err" ||
        fail "man ${p##*.} ${p%.*}: $(cat "$tmp/err")"
    [ ! -s "$tmp/err" ] || fail "man ${p##*.} ${p%.*}: $(cat "$tmp/err")"
    grep -q "${p%.*}" "$tmp/page" || fail "man ${p##*.} ${p%.*} does not name ${p%.*}"
    sed -n '/^\.SH SEE ALSO/,/^\.SH/p' "$page" |
        sed -n 's/^\.BR \(madvisev[a-z_-]*\) (\([0-9]\)).*/\1 \2/p' |
        while read -r ref sec; do
            [ -f "$stage/$man/man$sec/$ref.$sec" ] || fail "$p: SEE ALSO names $ref($sec), which is not installed"
        done
done
echo "  man pages render, SEE ALSO resolves"

cat > "$tmp/consumer.c" <<'C'
#define _GNU_SOURCE /* MADV_*, MAP_ANONYMOUS */
#include <madvisev.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Dirty two pages, advise them away in one call, check that they read 0. */
static int zeroes(int backend)
{
	long ps = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	struct iovec iov[2] = { { p, ps }, { p + ps, ps } };
	memset(p, 1, 2 * ps);
	ssize_t n = madvisev_via(backend, iov, 2, MADV_DONTNEED, 0);
	int ok = n == 2 * ps && p[0] == 0 && p[ps] == 0;
	munmap(p, 2 * ps);
	return ok;
}

int main(void)
{
	printf("backend %s: ", madvisev_backend_name());
	if (!zeroes(MADVISEV_BACKEND_AUTO)) {
		printf("pages not zeroed\n");
		return 1;
	}
	/* io_uring, which the library loads on demand, works wherever it
	 * says it is available. */
	const char *why = NULL;
	int uring = madvisev_backend_probe(MADVISEV_BACKEND_IO_URING, &why);
	printf("zeroed; io_uring %s (%s)\n", uring == 1 ? "available" : "unavailable", why);
	return uring == 1 && !zeroes(MADVISEV_BACKEND_IO_URING) ? 1 : 0;
}
C
pc_dir() { echo "$1/usr/$libdir/pkgconfig"; }
PKG_CONFIG_PATH=$(pc_dir "$stage") pkg-config --validate madvisev || fail "pkg-config --validate madvisev"
[ "$(PKG_CONFIG_PATH=$(pc_dir "$stage") pkg-config --modversion madvisev)" = "$version" ] ||
    fail "madvisev.pc: not version $version"
cflags=(-std=c11 -Wall -Wextra -Werror)

# C: pkg-config, shared, straight from the staging tree and with the
# staging tree as sysroot.
c_shared() { # TREE NAME [ENV...]
    local tree=$1 name=$2
    shift 2
    local flags
    flags=$(env PKG_CONFIG_PATH="$(pc_dir "$tree")" "$@" pkg-config --cflags --libs madvisev) ||
        fail "$name: pkg-config"
    echo "  pkg-config --cflags --libs: $flags"
    # shellcheck disable=SC2086
    cc "${cflags[@]}" -o "$tmp/$name" "$tmp/consumer.c" $flags 2> "$tmp/cc.err" ||
        fail "$name did not build: $(cat "$tmp/cc.err")"
    readelf -d "$tmp/$name" | grep -q "(NEEDED).*\[libmadvisev\.so\.$soversion\]" ||
        fail "$name does not use libmadvisev.so.$soversion"
    LD_LIBRARY_PATH=$tree/usr/$libdir "$tmp/$name" || fail "$name failed"
}
echo "== C, pkg-config, shared"
c_shared "$stage" c-shared
echo "== C, pkg-config, shared, PKG_CONFIG_SYSROOT_DIR=\$DESTDIR"
c_shared "$stage" c-shared-sysroot PKG_CONFIG_SYSROOT_DIR="$stage"

echo "== C, pkg-config --static"
flags=$(PKG_CONFIG_PATH=$(pc_dir "$stage") pkg-config --static --cflags --libs madvisev) || fail "pkg-config --static"
echo "  pkg-config --static --cflags --libs: $flags"
# shellcheck disable=SC2086
cc "${cflags[@]}" -static -o "$tmp/c-static" "$tmp/consumer.c" $flags 2> "$tmp/cc.err" ||
    fail "C consumer (static) did not build: $(cat "$tmp/cc.err")"
# The only warning allowed: glibc's, about dlopen() (io_uring) in a static program.
grep -v "Using 'dlopen' in statically linked" "$tmp/cc.err" | grep -i warning && fail "static link warned"
readelf -d "$tmp/c-static" 2>&1 | grep -q 'no dynamic section' || fail "C consumer (static) is not static"
"$tmp/c-static" || fail "C consumer (static) failed"

# C++: CMake's find_package, the shared and the static library.
mkdir -p "$tmp/cxx"
# The version asked for is this build's major.minor: the package config
# takes SameMinorVersion.
cat > "$tmp/cxx/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(consumer CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(madvisev ${version%.*} REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE madvisev::madvisev)
add_executable(consumer-static main.cpp)
target_link_libraries(consumer-static PRIVATE madvisev::madvisev_static)
CM
cat > "$tmp/cxx/main.cpp" <<'CPP'
#include <madvisev.hpp>
#include <sys/mman.h>
#include <unistd.h>
#include <cstdio>
#include <cstring>
#include <span>

int main() {
    const long ps = sysconf(_SC_PAGESIZE);
    void *m = mmap(nullptr, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return 1;
    auto *p = static_cast<char *>(m);
    std::memset(p, 1, 2 * ps);
    const iovec ranges[] = {{p, size_t(ps)}, {p + ps, size_t(ps)}};
    auto r = madv::advise(std::span<const iovec>(ranges), MADV_DONTNEED);
    const bool ok = static_cast<bool>(r) && p[0] == 0 && p[ps] == 0;
    std::printf("backend %s: %s\n", madvisev_backend_name(), ok ? "zeroed" : "pages not zeroed");
    return ok ? 0 : 1;
}
CPP
cxx() { # TREE NAME
    local tree=$1 b=$tmp/cxx/$2
    if ! cmake -S "$tmp/cxx" -B "$b" ${gen:+-G "$gen"} -DCMAKE_PREFIX_PATH="$tree/usr" > "$tmp/cxx.log" 2>&1 ||
        ! cmake --build "$b" >> "$tmp/cxx.log" 2>&1; then
        log_fail "C++ consumer did not build" "$tmp/cxx.log"
    fi
    grep -q "madvisev_DIR:PATH=$tree/usr/$libdir/cmake/madvisev\$" "$b/CMakeCache.txt" ||
        fail "find_package found $(grep madvisev_DIR "$b/CMakeCache.txt")"
    readelf -d "$b/consumer" | grep -q "(NEEDED).*\[libmadvisev\.so\.$soversion\]" ||
        fail "consumer does not use libmadvisev.so.$soversion"
    ! readelf -d "$b/consumer-static" | grep -q "(NEEDED).*\[libmadvisev" ||
        fail "consumer-static uses the shared library"
    LD_LIBRARY_PATH=$tree/usr/$libdir "$b/consumer" || fail "C++ consumer (shared) failed"
    "$b/consumer-static" || fail "C++ consumer (static) failed"
}
echo "== C++, find_package(madvisev)"
cxx "$stage" staged

# C: a C-only project links the static library through find_package (the
# C++ runtime the library needs comes with the target), a MADVISEV_ZERO.
mkdir -p "$tmp/c"
cat > "$tmp/c/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(cconsumer C)
find_package(madvisev ${version%.*} REQUIRED)
add_executable(cconsumer main.c)
target_link_libraries(cconsumer PRIVATE madvisev::madvisev_static)
CM
cat > "$tmp/c/main.c" <<'C'
#include <madvisev.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
    long ps = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct iovec v;
    if (p == MAP_FAILED)
        return 1;
    memset(p, 7, (size_t)ps);
    v.iov_base = p;
    v.iov_len = (size_t)ps;
    if (madvisev(&v, 1, MADVISEV_ZERO, 0) != ps || p[0] != 0 || p[ps - 1] != 0)
        return 1;
    printf("C consumer (static): zeroed\n");
    return 0;
}
C
echo "== C, find_package(madvisev), the static library"
if ! cmake -S "$tmp/c" -B "$tmp/c/b" ${gen:+-G "$gen"} -DCMAKE_PREFIX_PATH="$stage/usr" > "$tmp/c.log" 2>&1 ||
    ! cmake --build "$tmp/c/b" >> "$tmp/c.log" 2>&1; then
    log_fail "C consumer of the static library did not build" "$tmp/c.log"
fi
"$tmp/c/b/cconsumer" || fail "C consumer (static) failed"

# The runtime layer as its author builds it: runtime-integration/ on its
# own (its standalone mode), against the staged library through
# find_package(madvisev): the pool, wasm-rt-pooled, the echo module and the
# C embedding example, which then runs.  Nothing of libmadvisev's source
# or build tree may reach that build: no path into it on a compile line or
# the example's link line, no header read from there (the compiler's own
# record of what each compilation read); madvisev.h and madvisev.hpp are
# the staged ones, libmadvisev.a too.
echo "== runtime-integration, standalone, find_package(madvisev)"
rt=$tmp/runtime
if ! cmake -S "$src/runtime-integration" -B "$rt" ${gen:+-G "$gen"} -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_PREFIX_PATH="$stage/usr" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON > "$tmp/runtime.log" 2>&1 ||
    ! cmake --build "$rt" -j 2 >> "$tmp/runtime.log" 2>&1; then
    log_fail "runtime-integration did not build against the staged library" "$tmp/runtime.log"
fi
grep -q "madvisev_DIR:PATH=$stage/usr/$libdir/cmake/madvisev\$" "$rt/CMakeCache.txt" ||
    fail "runtime-integration: find_package found $(grep madvisev_DIR "$rt/CMakeCache.txt")"
# The headers each compilation read: Ninja keeps them in its log, Make in
# a .d file beside each object.
make_prog=$(sed -n 's/^CMAKE_MAKE_PROGRAM:[A-Z]*=//p' "$rt/CMakeCache.txt")
if [ -f "$rt/build.ninja" ]; then
    "$make_prog" -C "$rt" -t deps > "$tmp/runtime.deps" || fail "runtime-integration: ninja -t deps"
    "$make_prog" -C "$rt" -t commands wasm-rt-pooled-embed | tail -n 1 > "$tmp/runtime.link"
else
    find "$rt" -name '*.o.d' -exec cat {} + > "$tmp/runtime.deps"
    cat "$rt/CMakeFiles/wasm-rt-pooled-embed.dir/link.txt" > "$tmp/runtime.link"
fi
[ -s "$tmp/runtime.deps" ] || fail "runtime-integration: no record of the headers read"
grep -qF "$stage/usr/$libdir/libmadvisev.a" "$tmp/runtime.link" ||
    fail "wasm-rt-pooled-embed is not linked with the staged libmadvisev.a: $(cat "$tmp/runtime.link")"
# Any path into libmadvisev's tree ($src written <src>, so that where the
# source lies does not matter; ../libmadvisev/ counts too).
used=$(cat "$rt/compile_commands.json" "$tmp/runtime.link" "$tmp/runtime.deps")
used=${used//"$src/"/<src>/}
leaks=$(grep -o '[^ "]*libmadvisev/[^ "]*' <<< "$used" | sort -u || true)
[ -z "$leaks" ] || fail "runtime-integration used libmadvisev's own tree, not the staged one:$(head -n 10 <<< "$leaks" | sed 's/^/ /' | tr '\n' ';')"
headers=$(tr -s ' \t\\' '\n' < "$tmp/runtime.deps" | grep -E '(^|/)madvisev\.(h|hpp)$' | sort -u || true)
[ "$headers" = "$(printf '%s\n' "$stage/usr/include/madvisev.h" "$stage/usr/include/madvisev.hpp")" ] ||
    fail "runtime-integration read madvisev.h and madvisev.hpp from elsewhere than $stage/usr/include:$(sed 's/^/ /' <<< "$headers" | tr '\n' ';')"
echo "  madvisev.h, madvisev.hpp and libmadvisev.a from the staged tree; no path into libmadvisev's sources"
! readelf -d "$rt/wasm-rt-pooled-embed" | grep -q "(NEEDED).*\[libmadvisev" ||
    fail "wasm-rt-pooled-embed uses the shared library"
"$rt/wasm-rt-pooled-embed" > "$tmp/embed.out" 2>&1 || fail "wasm-rt-pooled-embed failed: $(cat "$tmp/embed.out")"
grep -q "100 instances of echo" "$tmp/embed.out" || fail "wasm-rt-pooled-embed: $(cat "$tmp/embed.out")"
sed 's/^/  /' "$tmp/embed.out"

# The same tree elsewhere: nothing in it may name where it was staged.
echo "== moved"
mv "$stage" "$tmp/moved"
! grep -rlF "$stage" "$tmp/moved" || fail "files above name the staging directory"
c_shared "$tmp/moved" c-moved
cxx "$tmp/moved" moved

[ "$exports_ok" = 1 ] || fail "the installed library's exports (see above)"
echo "PASS: installed (prefix /usr, libdir $libdir) and used from C (pkg-config, shared and static)" \
     "and C++ (CMake, shared and static), staged and moved; runtime-integration built against it"
