#!/usr/bin/env bash
# machine-info.sh: the machine a benchmark ran on, as JSON on stdout.
set -euo pipefail
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
printf '{"cpu": "%s", "cores": %d, "kernel": "%s %s", "memory_gib": %d, "accelerator": "%s"}\n' \
    "${cpu//\"/}" "$(nproc)" "$(uname -s)" "$(uname -r)" \
    "$(( $(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1048576 ))" \
    "${MADVISEV_ACCELERATOR:-none}"
