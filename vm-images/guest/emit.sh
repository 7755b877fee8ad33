# emit NAME FILE: send FILE to the host as block NAME on the results channel
# ($MADVISEV_RESULTS, a serial port the kernel does not print to), framed
# so that the host (vm-images/guest-results.py) verifies it:
#   MADVISEV-BLOCK 1 NAME LENGTH SHA256 \n  FILE's bytes  MADVISEV-BLOCK-END NAME \n
# A block that cannot be sent sets fail=1 and says why on the console.
emit() {
    e_name=$1 e_file=$2
    if [ -z "$MADVISEV_RESULTS" ]; then
        echo "[guest] FAIL: block '$e_name': no results channel (madvisev.results=)"
        fail=1
        return 1
    fi
    if [ ! -f "$e_file" ]; then
        echo "[guest] FAIL: block '$e_name': $e_file was not written"
        fail=1
        return 1
    fi
    e_size=$(stat -c %s "$e_file")
    e_sum=$(sha256sum < "$e_file")
    e_sum=${e_sum%% *}
    if ! { printf 'MADVISEV-BLOCK 1 %s %s %s\n' "$e_name" "$e_size" "$e_sum" &&
        cat "$e_file" && printf 'MADVISEV-BLOCK-END %s\n' "$e_name"; } >> "$MADVISEV_RESULTS"; then
        echo "[guest] FAIL: block '$e_name': writing $MADVISEV_RESULTS failed"
        fail=1
        return 1
    fi
    echo "[guest] block '$e_name': $e_size bytes sent on $MADVISEV_RESULTS"
}
