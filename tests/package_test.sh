#!/usr/bin/env bash
# package_test.sh CASE ARGS...: one check of how libmadvisev is packaged.
#   exports LIB MAP [HEADER]    the shared library LIB exports exactly the
#                               global symbols of the version script MAP, each
#                               in the version node that names it, and needs
#                               no liburing;
#                               MAP names every function HEADER declares
#   header_c11 SRC [KHDRS [KSRC]]
#                               madvisev.h compiles as strict C11 with
#                               -Wall -Wextra -Werror -pedantic, alone and
#                               beside the kernel's <linux/mman.h> (KHDRS:
#                               the patched kernel's installed headers; else
#                               KSRC/include/uapi/linux/mman.h, its source)
#   man_pages SRC               every man page renders without a warning, and
#                               every libmadvisev page a SEE ALSO names exists
# Exit 0 pass, 1 fail, 77 skip (liburing's convention).
set -u
case_name=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; exit 1; }

# "NAME NODE" for each name between "global:" and "local:" (or the end of
# its node) of a version script.
map_global_nodes() {
    sed 's#/\*.*\*/##; s#//.*##' "$1" |
        awk '/^[A-Za-z0-9_.]+ *\{/ { node = $1; sub(/\{.*/, "", node) }
             /global:/ { g = 1; next } /local:/ || /^ *\}/ { g = 0 }
             g { gsub(/[ \t;]/, ""); if ($0 != "") print $0, node }' |
        sort
}

map_globals() {
    map_global_nodes "$1" | cut -d' ' -f1
}

# The functions a header declares: "TYPE name(" at the start of a line.
header_functions() {
    sed -n 's/^[A-Za-z_].*[ *]\(madvisev[a-z_]*\)(.*/\1/p' "$1" | sort -u
}

case $case_name in
exports)
    lib=$1 map=$2 header=${3:-}
    [ -f "$lib" ] || fail "no library at $lib"
    nodes=$(sed -n 's/^\([A-Za-z0-9_.]*\) *{.*/\1/p' "$map")
    [ -n "$nodes" ] || fail "no version node in $map"
    map_globals "$map" > "$tmp/want"
    [ -s "$tmp/want" ] || fail "no global symbols in $map"
    problems=()
    if [ -n "$header" ]; then
        header_functions "$header" > "$tmp/declared"
        cmp -s "$tmp/want" "$tmp/declared" ||
            problems+=("$(basename "$map") and $(basename "$header") name different functions:$(diff "$tmp/want" "$tmp/declared" | sed -n 's/^</ map only:/p; s/^>/ header only:/p' | tr '\n' ';')")
    fi
    # Defined dynamic symbols, less the version node's own absolute symbol.
    readelf -W --dyn-syms "$lib" |
        awk '$1 ~ /^[0-9]+:$/ && $7 != "UND" && $8 != "" { print $8 }' > "$tmp/dynsyms"
    grep -vxF "$nodes" "$tmp/dynsyms" | sed 's/@.*//' | sort > "$tmp/have"
    echo "exported by $(basename "$lib") ($(wc -l < "$tmp/have")):"
    sed 's/^/  /' "$tmp/have"
    if ! cmp -s "$tmp/want" "$tmp/have"; then
        problems+=("the exports differ from $(basename "$map"):$(comm -23 "$tmp/want" "$tmp/have" | sed 's/^/ missing /' | tr '\n' ';')$(comm -13 "$tmp/want" "$tmp/have" | sed 's/^/ extra /' | tr '\n' ';')")
    fi
    # Each in its node, as the default version (name@@NODE).
    while read -r sym node; do
        if grep -qx "$sym" "$tmp/have" && ! grep -qx "$sym@@$node" "$tmp/dynsyms"; then
            problems+=("$sym is not $sym@@$node")
        fi
    done < <(map_global_nodes "$map")
    readelf -d "$lib" > "$tmp/dynamic"
    grep -q "(SONAME).*\[libmadvisev\.so\.[0-9]*\]" "$tmp/dynamic" || problems+=("no libmadvisev.so.N soname")
    echo "needed:"
    grep '(NEEDED)' "$tmp/dynamic" | sed 's/.*\[\(.*\)\]/  \1/'
    if grep '(NEEDED)' "$tmp/dynamic" | grep -q uring; then
        problems+=("the library needs liburing at run time (it should load it with dlopen)")
    fi
    # Undefined liburing functions would make every program that links
    # the library need liburing too.
    readelf -W --dyn-syms "$lib" | awk '$7 == "UND" { print $8 }' | grep -E '^_*io_uring' > "$tmp/uring" || true
    [ ! -s "$tmp/uring" ] || problems+=("liburing functions left undefined: $(sed 's/@.*//' "$tmp/uring" | tr '\n' ' ')")
    if [ ${#problems[@]} -gt 0 ]; then
        printf 'FAIL: %s\n' "${problems[@]}"
        exit 1
    fi
    echo "PASS: $(wc -l < "$tmp/want") symbols, each in its node ($(echo $nodes)), no liburing"
    ;;

header_c11)
    src=$1 khdrs=${2:-} ksrc=${3:-}
    inc=$src/libmadvisev/include
    ccs=(cc)
    command -v clang > /dev/null && ccs+=(clang)
    flags=(-std=c11 -Wall -Wextra -Werror -pedantic -c -o /dev/null)
    # The declarations used, so that a wrong prototype is an error too.
    body='
int use(void);
int use(void)
{
	struct iovec v = { 0, 0 };
	const char *why = 0;
	ssize_t (*via)(int, const struct iovec *, size_t, int, unsigned int) = madvisev_via;
	enum madvisev_backend b = MADVISEV_BACKEND_SEQUENTIAL;
	(void)via;
	(void)why;
	return (int)madvisev(&v, 1, 0, 0) + madvisev_backend() +
	       madvisev_backend_probe(b, &why) +
	       (madvisev_backend_str(MADVISEV_BACKEND_MAX) != 0) +
	       madvisev_backend_from_str(madvisev_backend_name()) + madvisev_zero_native() +
	       (int)madvisev(&v, 1, MADVISEV_ZERO, 0);
}'
    compile() { # NAME EXTRA-FLAGS... (the C file is $tmp/NAME.c)
        local name=$1
        shift
        for c in "${ccs[@]}"; do
            if ! "$c" "${flags[@]}" "$@" -I"$inc" "$tmp/$name.c" 2> "$tmp/err"; then
                echo "--- $name.c:"
                cat "$tmp/$name.c"
                echo "--- $c ${flags[*]} $* -I$inc:"
                cat "$tmp/err"
                fail "madvisev.h: $name does not compile cleanly with $c"
            fi
            echo "ok: $name ($c $*)"
        done
    }
    { printf '#include <sys/mman.h>\n#include <madvisev.h>\n'; echo "$body"; } > "$tmp/alone.c"
    compile alone
    compile alone -D_GNU_SOURCE
    { printf '#include <madvisev.h>\n'; echo "$body"; } > "$tmp/first.c"
    compile first
    # The uapi header before and after madvisev.h: the installed one, then
    # the patched kernel's, which defines MADVISEV_QUERY and
    # MADVISEV_QUERY_MAGIC; madvisev.h must spell them exactly as it does.
    # <sys/syscall.h> too: the patched kernel's <asm/unistd.h> numbers it.
    uapi='#include <linux/mman.h>\n#include <sys/syscall.h>\n'
    { printf '%b#include <madvisev.h>\n' "$uapi"; echo "$body"; } > "$tmp/uapi.c"
    { printf '#include <madvisev.h>\n%b' "$uapi"; echo "$body"; } > "$tmp/uapi_after.c"
    compile uapi -D_GNU_SOURCE
    compile uapi_after -D_GNU_SOURCE
    if { [ -z "$khdrs" ] || [ ! -f "$khdrs/linux/mman.h" ]; } && [ -n "$ksrc" ] &&
        [ -f "$ksrc/include/uapi/linux/mman.h" ]; then
        # Not installed (make vm-kernels does that): the source's header,
        # which only headers_install's include guard renaming separates
        # from the installed one, over the host's <asm/*.h>.
        echo "note: no patched kernel headers at '$khdrs'; using $ksrc/include/uapi/linux/mman.h"
        mkdir -p "$tmp/khdrs/linux"
        cp "$ksrc/include/uapi/linux/mman.h" "$tmp/khdrs/linux/mman.h"
        khdrs=$tmp/khdrs
    fi
    if [ -n "$khdrs" ] && [ -f "$khdrs/linux/mman.h" ]; then
        grep -q MADVISEV_QUERY "$khdrs/linux/mman.h" ||
            fail "$khdrs/linux/mman.h is not the patched kernel's (no MADVISEV_QUERY)"
        for f in uapi uapi_after; do
            cp "$tmp/$f.c" "$tmp/${f}_patched.c"
            compile "${f}_patched" -D_GNU_SOURCE -isystem "$khdrs"
            compile "${f}_patched" -isystem "$khdrs"
        done
        # Both define the same flag values.
        cat > "$tmp/same.c" <<'C'
#include <linux/mman.h>
#include <madvisev.h>
_Static_assert(MADVISEV_QUERY == 0x80000000U, "MADVISEV_QUERY");
_Static_assert(MADVISEV_QUERY_MAGIC == 0x4d414456, "MADVISEV_QUERY_MAGIC");
C
        compile same -isystem "$khdrs"
    else
        echo "note: the patched kernel's <linux/mman.h> is not at '${khdrs:-(none given)}'" \
             "nor in '${ksrc:-(none given)}' (make vm-kernels makes both): that variant is skipped"
    fi
    echo "PASS: madvisev.h is clean C11"
    ;;

man_pages)
    src=$1
    man=$src/libmadvisev/man
    if ! command -v man > /dev/null || ! command -v groff > /dev/null; then
        echo "SKIP: needs man (man-db) and groff"
        exit 77
    fi
    shopt -s nullglob
    n=0
    for page in "$man"/*.[0-9]; do
        name=$(basename "$page")
        if grep -q '^\.so ' "$page"; then
            # A link page: one line, to a page that exists in the same section.
            target=$(sed -n 's/^\.so //p' "$page")
            [ "$(wc -l < "$page")" -eq 1 ] || fail "$name: a .so page must be that one line"
            [ "$(dirname "$target")" = "man${name##*.}" ] || fail "$name: .so $target not in man${name##*.}/"
            [ -f "$man/$(basename "$target")" ] || fail "$name: .so to a missing page $target"
            n=$((n + 1))
            continue
        fi
        LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" > /dev/null 2> "$tmp/err" ||
            fail "$name: man failed: $(cat "$tmp/err")"
        [ ! -s "$tmp/err" ] || fail "$name: man --warnings: $(cat "$tmp/err")"
        groff -t -man -ww -z "$page" 2> "$tmp/err" || fail "$name: groff failed: $(cat "$tmp/err")"
        [ ! -s "$tmp/err" ] || fail "$name: groff -ww: $(cat "$tmp/err")"
        # Section and name in .TH match the file.
        th=$(awk '$1 == ".TH" { print tolower($2) "." $3; exit }' "$page")
        [ "$th" = "$(echo "$name" | tr '[:upper:]' '[:lower:]')" ] || fail "$name: .TH says $th"
        # Each libmadvisev page that SEE ALSO names exists.
        sed -n '/^\.SH SEE ALSO/,/^\.SH/p' "$page" |
            sed -n 's/^\.BR \(madvisev[a-z_-]*\) (\([0-9]\)).*/\1.\2/p' > "$tmp/refs"
        while read -r ref; do
            [ -f "$man/$ref" ] || fail "$name: SEE ALSO names $ref, which does not exist"
        done < "$tmp/refs"
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || fail "no man pages in $man"
    # Every function of the header has a page.
    for fn in $(header_functions "$src/libmadvisev/include/madvisev.h"); do
        [ -f "$man/$fn.3" ] || fail "madvisev.h declares $fn(), which has no page"
    done
    echo "PASS: $n pages"
    ;;

*)
    fail "unknown case $case_name"
    ;;
esac
