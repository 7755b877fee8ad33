#!/bin/sh
# seal-guest-code.sh IN.o OUT.o: make a compiled wasm2c module an object
# wasm-rt-pooled will run.
#
# - It must have been compiled with -fstack-clash-protection (recorded in
#   the object by -frecord-gcc-switches): without it a frame larger than
#   the stack guard can step over the guard into the neighbouring slot's
#   stack.  Refused otherwise.
# - All its code moves into one section, wasm_rt_pooled_guest_text.  The
#   runtime turns a fault into a guest's trap only when the faulting
#   instruction lies in that section: a fault in host code (a WASI call,
#   malloc) is the host's bug and must not be jumped out of.
set -eu
in=$1
out=$2
fail() {
    echo "seal-guest-code: $in: $*" >&2
    exit 1
}
switches=$(readelf -p .GCC.command.line "$in" 2>/dev/null || true)
[ -n "$switches" ] || fail "no recorded compiler switches: compile with -frecord-gcc-switches"
case "$switches" in
*-fno-stack-clash-protection*) fail "compiled with -fno-stack-clash-protection" ;;
*-fstack-clash-protection*) ;;
*) fail "not compiled with -fstack-clash-protection: a frame could step over the stack guard" ;;
esac
renames=
for s in $(readelf -SW "$in" | sed -n 's/^ *\[ *[0-9]*\] \([^ ]*\) .* \([A-Z]*X[A-Z]*\) .*/\1/p'); do
    renames="$renames --rename-section $s=wasm_rt_pooled_guest_text"
done
[ -n "$renames" ] || fail "no code in the object"
# shellcheck disable=SC2086 # one word per option
objcopy $renames "$in" "$out"
