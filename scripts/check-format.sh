#!/usr/bin/env bash
# check-format.sh [--fix]: every C and C++ source the project owns laid out
# as clang-format lays it out.  The C programs written in the kernel's
# style follow .clang-format-c; everything else .clang-format.  The
# kernel series (kernel-patch/) is checkpatch's business, not this one's.
# Exit 0 clean, 1 with the files that are not (and how they differ).
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
case ${1:-} in
--fix) fix=1 ;;
'') ;;
*) echo "check-format: unknown argument '$1' (--fix or nothing)" >&2; exit 2 ;;
esac
command -v clang-format > /dev/null || {
    echo "check-format: no clang-format (scripts/install-deps.sh installs it)" >&2; exit 1; }

# git pathspecs: '*' crosses directories.
kernel_style=('tests/*.c' 'trace/*.c' 'trace/*.h' 'vm-images/*.c')
mapfile -t c_kernel < <(git ls-files -- "${kernel_style[@]}")
mapfile -t c_cpp < <(git ls-files -- '*.c' '*.cpp' '*.h' '*.hpp' ':!kernel-patch' \
    "${kernel_style[@]/#/:!}")
[ ${#c_kernel[@]} -gt 0 ] && [ ${#c_cpp[@]} -gt 0 ] || {
    echo "check-format: no sources found (not a checkout?)" >&2; exit 1; }

bad=0
check() { # STYLE FILE...
    local style=$1; shift
    local f
    for f in "$@"; do
        if [ $fix = 1 ]; then
            clang-format --style="$style" -i "$f"
        elif ! clang-format --style="$style" "$f" | diff -u --label "$f" --label "$f (clang-format)" "$f" - ; then
            bad=$((bad + 1))
        fi
    done
}
check file:.clang-format-c "${c_kernel[@]}"
check file "${c_cpp[@]}"
n=$(( ${#c_kernel[@]} + ${#c_cpp[@]} ))
if [ $bad -gt 0 ]; then
    echo "check-format: $bad of $n files differ from clang-format's layout (scripts/check-format.sh --fix)"
    exit 1
fi
echo "check-format: $n files as clang-format lays them out (${#c_kernel[@]} in the kernel's style)"
