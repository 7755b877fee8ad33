# Shared helpers of the vm-images scripts: timed, named steps whose
# failure says which step broke and which log to read.
step_start=0
step_name=
step() {
    step_name=$1
    step_start=$(date +%s)
    echo "[vm-images] $step_name ..."
}
step_done() {
    echo "[vm-images] $step_name: done in $(( $(date +%s) - step_start ))s"
}
# run_logged LOG CMD...: run a command with its output in LOG; on failure
# name the step and show the end of the log.
run_logged() {
    local log=$1
    shift
    if ! "$@" >> "$log" 2>&1; then
        echo "[vm-images] FAILED: $step_name (command: $*)" >&2
        echo "[vm-images] last lines of $log:" >&2
        tail -n 25 "$log" >&2
        exit 1
    fi
}
