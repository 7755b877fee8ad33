#!/usr/bin/env bash
# seal_test.sh SEAL CC [MODULE.a ...]: the seal (cmake/seal-guest-code.sh)
# refuses module code that could step over a stack guard, and every
# module the build made is sealed.
#
# - A function with a 78 KiB frame (more than the 64 KiB guard), compiled
#   without -fstack-clash-protection, with -fno-stack-clash-protection,
#   and without the switches recorded: each refused, with its reason.
# - The same with the flag: sealed, every byte of its code in the guest
#   section and none left in .text.
# - Each MODULE.a given: its code lies only in the guest section.
# Exit 0 pass, 1 fail.
set -euo pipefail
seal=$1
cc=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat > "$tmp/big.c" <<'C'
/* A frame larger than the guard: its first write lands 78 KiB below. */
int big(int n) {
    volatile char frame[78 << 10];
    frame[0] = (char)n;
    frame[sizeof(frame) - 1] = (char)n;
    return frame[0] + frame[sizeof(frame) - 1];
}
C
code_sections() { # the sections of $1 that hold code
    readelf -SW "$1" | sed -n 's/^ *\[ *[0-9]*\] \([^ ]*\) .* \([A-Z]*X[A-Z]*\) .*/\1/p' | sort -u
}
refused() { # $1: flags, $2: the reason the seal must give
    # shellcheck disable=SC2086 # flags are words
    "$cc" -O2 -c $1 "$tmp/big.c" -o "$tmp/big.o"
    if sh "$seal" "$tmp/big.o" "$tmp/out.o" 2> "$tmp/err"; then
        fail "sealed an object built with '$1'"
    fi
    grep -q -- "$2" "$tmp/err" || fail "with '$1': said '$(cat "$tmp/err")', not '$2'"
    echo "refused ($1): $(cat "$tmp/err")"
}
refused "-frecord-gcc-switches" "not compiled with -fstack-clash-protection"
refused "-frecord-gcc-switches -fno-stack-clash-protection" "compiled with -fno-stack-clash-protection"
refused "-fstack-clash-protection" "no recorded compiler switches"

"$cc" -O2 -c -fstack-clash-protection -frecord-gcc-switches "$tmp/big.c" -o "$tmp/big.o"
sh "$seal" "$tmp/big.o" "$tmp/sealed.o" || fail "the protected object was not sealed"
[ "$(code_sections "$tmp/sealed.o")" = wasm_rt_pooled_guest_text ] ||
    fail "sealed object's code sections: $(code_sections "$tmp/sealed.o" | tr '\n' ' ')"
echo "sealed (-fstack-clash-protection -frecord-gcc-switches): code only in wasm_rt_pooled_guest_text"

for lib in "$@"; do
    mkdir -p "$tmp/x" && rm -f "$tmp/x"/*
    (cd "$tmp/x" && ar x "$lib")
    for o in "$tmp/x"/*.o; do
        [ "$(code_sections "$o")" = wasm_rt_pooled_guest_text ] ||
            fail "$(basename "$lib"): $(basename "$o") has code outside the guest section: $(code_sections "$o" | tr '\n' ' ')"
    done
    echo "$(basename "$lib"): sealed"
done
echo "PASS"
