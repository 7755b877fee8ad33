#!/usr/bin/env bash
# phase-times.sh mark NAME | report: the wall time of make test's phases.
#   mark NAME  appends "START NAME END" to the log: START is the top-level
#              make's start (MADVISEV_MAKE_START, exported by the Makefile,
#              the same in every sub-make), END now.
#   report     prints this run's phases in the order they ended, each with
#              the time since the one before (the first: since make
#              started), and the total.
# The log is $PHASE_LOG (default build/phase-times.log).
set -euo pipefail
log=${PHASE_LOG:-build/phase-times.log}
start=${MADVISEV_MAKE_START:?MADVISEV_MAKE_START is not set (run through make)}
case ${1:-} in
mark)
    mkdir -p "$(dirname "$log")"
    echo "$start ${2:?usage: phase-times.sh mark NAME} $(date +%s)" >> "$log"
    ;;
report)
    [ -r "$log" ] || { echo "phase-times: no $log"; exit 0; }
    awk -v start="$start" 'BEGIN { n = 0 }
        $1 == start { name[n] = $2; end[n] = $3; n++ }
        END {
            if (n == 0) { print "phase-times: no phase of this run"; exit }
            printf "| phase | wall time | ended at |\n|---|---|---|\n"
            prev = start
            for (i = 0; i < n; i++) {
                d = end[i] - prev
                printf "| %s | %d:%02d | %d:%02d |\n", name[i], d / 60, d % 60,
                    (end[i] - start) / 60, (end[i] - start) % 60
                prev = end[i]
            }
            t = end[n - 1] - start
            printf "| **total** | **%d:%02d** | |\n", t / 60, t % 60
        }' "$log"
    ;;
*) echo "usage: phase-times.sh mark NAME | report" >&2; exit 2 ;;
esac
