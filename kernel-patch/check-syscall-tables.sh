#!/usr/bin/env bash
# check-syscall-tables.sh KERNEL_SRC [WORK_DIR]
#
# For a 6.12 source tree with the madvisev series applied, check every
# architecture's system call table the way the kernel build does.  For each
# architecture below whose (cross) compiler is installed it configures a
# defconfig in WORK_DIR/<arch> (O=, the source tree is left alone), runs
# `make prepare`, which runs scripts/checksyscalls.sh (the "missing-syscalls"
# check, and on mips its N32 and O32 passes), then `make headers`, and
# preprocesses <asm/unistd.h> from the installed headers for each user ABI
# of that architecture to read __NR_madvisev.
#
# Prints one line per architecture: "checked", "FAILED" or "no compiler".
# x86_64 and i386 use the host gcc; the others need Debian's cross
# compilers (gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf, ...).
# Exits 1 if any checked architecture warns "syscall madvisev not
# implemented", or if __NR_madvisev is missing or not the expected number
# for one of its ABIs; other checksyscalls warnings are printed, not fatal.
#
# Environment: JOBS (make -j, default 1), ARCHES (space-separated names
# from the table below to check only those), KEEP=1 to keep WORK_DIR.
set -euo pipefail

src=${1:?usage: check-syscall-tables.sh KERNEL_SRC [WORK_DIR]}
src=$(cd "$src" && pwd)
[ -f "$src/scripts/checksyscalls.sh" ] || { echo "$src: not a kernel tree" >&2; exit 2; }
if [ -n "${2:-}" ]; then
    work=$2
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/check-syscall-tables.XXXXXX)
    [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
fi
work=$(cd "$work" && pwd)
jobs=${JOBS:-1}

# name  ARCH  CROSS_COMPILE  config target  options to enable  ABI checks
# An ABI check is COMPILER_FLAGS=EXPECTED, the flags separated by commas
# ("-" for none); EXPECTED is the number the table must give __NR_madvisev
# for that ABI.  mips numbers each ABI inside a 1000-wide window from its
# own base (o32 4000, n64 5000, n32 6000), so madvisev is base + 999 there;
# alpha numbers new calls 110 above the shared numbering.  amd64 to s390x
# are Debian 12's release architectures, riscv64 is one from Debian 13 on
# and loong64 is not in Debian 12 (no cross compiler there); the rest are
# the other architectures Debian 12 has cross compilers for.  arc, csky,
# hexagon, nios2, openrisc, microblaze and xtensa have none.
table='
amd64     x86_64     -                         x86_64_defconfig   IA32_EMULATION,X86_X32_ABI  -m64=1000 -mx32=0x40000000+1000
i386      i386       -                         i386_defconfig     -                           -m32=1000
arm64     arm64      aarch64-linux-gnu-        defconfig          COMPAT                      -=1000
armel     arm        arm-linux-gnueabi-        multi_v5_defconfig -                           -=1000
armhf     arm        arm-linux-gnueabihf-      multi_v7_defconfig -                           -=1000
mips64el  mips       mips64el-linux-gnuabi64-  64r2el_defconfig   -                           -mabi=64=5000+999 -mabi=n32=6000+999 -mabi=32=4000+999
mipsel    mips       mipsel-linux-gnu-         32r2el_defconfig   -                           -mabi=32=4000+999
ppc64el   powerpc    powerpc64le-linux-gnu-    ppc64le_defconfig  COMPAT                      -=1000
s390x     s390       s390x-linux-gnu-          defconfig          COMPAT                      -m64=1000 -m31=1000
riscv64   riscv      riscv64-linux-gnu-        defconfig          COMPAT                      -=1000 -march=rv32ima,-mabi=ilp32=1000
loong64   loongarch  loongarch64-linux-gnu-    defconfig          -                           -=1000
alpha     alpha      alpha-linux-gnu-          defconfig          -                           -=1000+110
hppa      parisc     hppa-linux-gnu-           defconfig          -                           -=1000
m68k      m68k       m68k-linux-gnu-           defconfig          -                           -=1000
powerpc   powerpc    powerpc-linux-gnu-        pmac32_defconfig   -                           -=1000
sh4       sh         sh4-linux-gnu-            defconfig          -                           -=1000
sparc64   sparc      sparc64-linux-gnu-        sparc64_defconfig  COMPAT                      -m64=1000 -m32=1000
'

exec < /dev/null
failed=0
while read -r -u 3 name arch cross cfg opts abis; do
    [ -n "$name" ] || continue
    if [ -n "${ARCHES:-}" ] && [[ " $ARCHES " != *" $name "* ]]; then
        continue
    fi
    [ "$cross" = - ] && cross=
    cc=${cross}gcc
    if ! command -v "$cc" > /dev/null; then
        printf '%-9s no compiler (%s)\n' "$name" "$cc"
        continue
    fi
    out=$work/$name
    log=$out.log
    mk=(make -C "$src" O="$out" ARCH="$arch" CROSS_COMPILE="$cross" -j"$jobs")
    why=
    if ! "${mk[@]}" "$cfg" > "$log" 2>&1; then
        why="$cfg failed"
    else
        if [ "$opts" != - ]; then
            for o in ${opts//,/ }; do
                "$src/scripts/config" --file "$out/.config" -e "$o"
            done
            "${mk[@]}" olddefconfig >> "$log" 2>&1 || why="olddefconfig failed"
        fi
        if [ -z "$why" ]; then
            "${mk[@]}" prepare >> "$log" 2>&1 || why="make prepare failed"
        fi
        if [ -z "$why" ]; then
            "${mk[@]}" headers >> "$log" 2>&1 || why="make headers failed"
        fi
    fi
    if [ -n "$why" ]; then
        printf '%-9s FAILED: %s (see %s)\n' "$name" "$why" "$log"
        tail -n 20 "$log" | sed 's/^/    /'
        failed=1
        continue
    fi

    warn=$(grep -E 'warning: #warning syscall ' "$log" | sed 's/.*#warning //' | sort -u || true)
    if grep -q 'syscall madvisev not implemented' <<< "$warn"; then
        why="checksyscalls: madvisev not implemented"
    fi

    nrs=
    for a in $abis; do
        flags=${a%=*}
        want=$(( ${a##*=} ))
        [ "$flags" = - ] && flags=
        # shellcheck disable=SC2086 # flags are words for the compiler
        got=$(printf '#include <asm/unistd.h>\nmadvisev_nr=__NR_madvisev\n' |
              "$cc" ${flags//,/ } -E -P -nostdinc -I "$out/usr/include" -x c - 2>> "$log" |
              sed -n 's/^madvisev_nr=//p' | tr -d 'UL' || true)
        if ! [[ $got =~ ^[0-9a-fA-Fx()+\ ]+$ ]]; then
            why="${why:+$why; }__NR_madvisev undefined for ${flags:-default ABI}"
        elif got=$(( got )); [ "$got" != "$want" ]; then
            why="${why:+$why; }__NR_madvisev is $got, not $want, for ${flags:-default ABI}"
        fi
        nrs="$nrs ${flags:+${flags//,/ }:}$got"
    done

    enabled=
    if [ "$opts" != - ]; then
        for o in ${opts//,/ }; do
            grep -q "^CONFIG_$o=y" "$out/.config" && enabled="$enabled $o" || enabled="$enabled !$o"
        done
        enabled=" [${enabled# }]"
    fi
    if [ -n "$why" ]; then
        printf '%-9s FAILED: %s (%s%s)\n' "$name" "$why" "$cfg" "$enabled"
        failed=1
    else
        printf '%-9s checked: missing-syscalls clean for madvisev, __NR_madvisev%s (%s%s)\n' \
            "$name" "$nrs" "$cfg" "$enabled"
    fi
    if [ -n "$warn" ]; then
        while read -r w; do echo "    checksyscalls: $w"; done <<< "$warn"
    fi
done 3<<< "$table"

exit $failed
