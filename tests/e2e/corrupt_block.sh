#!/usr/bin/env bash
# A finished map output damaged on disk where its CRCs cannot see it: the
# test rewrites a block, then its CRC over the header and payload as the
# map computed it. As in corrupt_output, map 0 (fast) finishes while maps
# 1 and 2 (slow) hold both slots, so no reducer has fetched it yet; the
# test then damages the last block of its output, once per job:
#   records  the header counts a record more than the block holds
#   payload  the payload does not decompress
#   rawlen   the header gives one raw byte more than the map wrote
# In the first two the blocks pass the reducer's checks when it fetches
# them; it finds the damage when it merges, fails its attempt naming the
# map output and the byte, and reports the output lost. In the third the
# block sizes do not add up to what the map reported, which the fetch
# finds. Either way the master runs map 0 again at once, and the job's
# output is right, with one attempt a task: the reduce that found the
# damage is not charged for it.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 100
start_workers 2 --slots 1
# Map 0's output is a few blocks (one reducer, one partition), so that
# the damaged one is not at byte 0; with --split-size 100K each file is one
# map.
gen "$T/gen" 128K 2
gen "$T/genf" 100K 1 2
mkdir "$T/in"
mv "$T/genf/text-000.txt" "$T/in/a-fast.txt"
mv "$T/gen/text-000.txt" "$T/in/slow-1.txt"
mv "$T/gen/text-001.txt" "$T/in/slow-2.txt"

# u LEN OFF: the little-endian integer of LEN bytes at byte OFF of $F.
u() { od -An -tu"$1" -j "$2" -N "$1" --endian=little "$F" | tr -d ' '; }

# bytes OFF LEN: LEN bytes at byte OFF of $F.
bytes() {
    dd if="$F" iflag=skip_bytes,count_bytes skip="$1" count="$2" bs=64K \
        status=none
}

# put OFF BYTE...: overwrite bytes of $F from byte OFF.
put() {
    local off=$1 s='' b
    shift
    for b in "$@"; do s+=$(printf '\\0%03o' "$b"); done
    printf '%b' "$s" | dd of="$F" bs=1 seek="$off" conv=notrunc status=none
}

put32() {
    put "$1" $(($2 & 255)) $(($2 >> 8 & 255)) $(($2 >> 16 & 255)) $(($2 >> 24))
}

# block_crc OFF: the CRC of the block at byte OFF of $F as lib/ifile.c
# computes it: CRC-32 of the header's first 20 bytes, then the payload
# (the CRC-32 a gzip trailer holds).
block_crc() {
    { bytes "$1" 20; bytes $(($1 + 24)) "$(u 4 $(($1 + 12)))"; } |
        gzip -c | tail -c 8 | od -An -tu4 -N 4 --endian=little | tr -d ' '
}

# run_case HOW: a job whose map 0 output has its last block damaged as
# HOW says (see the top), with the CRC made right again.
run_case() {
    local how=$1 i kind
    exec 5>&-
    rm -f "$T/notify"
    open_notify
    mkdir "$T/once-$how"
    touch "$T/before-$how"
    # One map per file; the first attempts of the slow ones sleep 2 ms a
    # line.
    submit_faulty --input "$T/in" --output "$T/out-$how" --split-size 100K \
        -R 1 --codec zlib --no-speculation --max-attempts 1 \
        --arg slow_once="$T/once-$how" \
        --arg slow_match=slow --arg slow_ms=2 --arg notify="$T/notify"
    # The third map to start is map 2, in the slot map 0 left: map 0 is done.
    for i in 1 2 3; do
        read -r -t 30 kind _ <&5 || fail "$how: only $((i - 1)) map attempts started"
        [ "$kind" = map ] || fail "$how: a $kind started before the third map"
    done
    F=$(find "$T"/w1 "$T"/w2 -path '*/map-00000-a1/tmp/output.ifile' \
        -newer "$T/before-$how" | head -n 1)
    [ -n "$F" ] || fail "$how: no output of map 0 attempt 1"

    # The footer says where the index is; the index, where the partition
    # is and its raw size; the blocks, where the next one is.
    local size idx poff plen raw at last=-1
    size=$(stat -c %s "$F")
    [ "$(u 4 $((size - 32)))" = 826689873 ] || fail "$how: no footer in $F" # "QIF1"
    idx=$(u 8 $((size - 16)))
    poff=$(u 8 "$idx")
    plen=$(u 8 $((idx + 8)))
    raw=$(u 8 $((idx + 16)))
    at=$poff
    while [ "$at" -lt $((poff + plen)) ]; do
        [ "$(u 4 "$at")" = 827015761 ] || fail "$how: no block at byte $at" # "QBK1"
        last=$at
        at=$((at + 24 + $(u 4 $((at + 12)))))
    done
    [ "$last" -gt "$poff" ] || fail "$how: map 0's output has only one block"
    [ "$(block_crc "$last")" = "$(u 4 $((last + 20)))" ] ||
        fail "$how: the test computes a CRC other than the block's"
    local rel=$((last - poff)) report reason=
    case $how in
    records)
        put32 $((last + 16)) $(($(u 4 $((last + 16))) + 1))
        reason="bad record in block at byte $rel"
        report="$reason, found when merging"
        ;;
    payload)
        [ "$(u 1 $((last + 4)))" = 1 ] || fail "$how: the block is not deflated"
        put $((last + 24)) 255 # a deflate block of reserved type
        reason="block does not decompress at byte $rel"
        report="$reason, found when merging"
        ;;
    rawlen)
        put32 $((last + 8)) $(($(u 4 $((last + 8))) + 1))
        report="its blocks hold $((raw + 1)) bytes of records, the map wrote $raw"
        ;;
    esac
    put32 $((last + 20)) "$(block_crc "$last")"

    job_succeeds
    check_wordcount "$T/out-$how" 1 "$T"/in/*
    local st="$T/status-$how.json"
    "$QUERN" status "$ID" --master "$MASTER" --json >"$st"
    jq -e '.counters.maps_rerun >= 1 and .counters.map_attempts >= 4' \
        "$st" >/dev/null ||
        fail "$how: map 0 did not run again: $(jq -c .counters "$st")"
    jq -e '[.failures[] | select(.kind == "map")] | length == 0' "$st" \
        >/dev/null || fail "$how: a map attempt failed: $(jq -c .failures "$st")"
    if [ -n "$reason" ]; then
        # The reduce attempt that found it says whose output, and where.
        local re="^map 0 attempt 1 output from worker w-[^:]+: $reason; reported lost, so that map 0 runs again"
        jq -e --arg re "$re" '[.failures[] | select(.kind == "reduce" and
                (.reason | test($re)))] | length >= 1' "$st" >/dev/null ||
            fail "$how: no reduce attempt failed with /$re/: $(jq -c '[.failures[] | .reason]' "$st")"
    else
        # Found as it was fetched: the reduce waited for map 0 to run again.
        jq -e '.failures | length == 0' "$st" >/dev/null ||
            fail "$how: an attempt failed: $(jq -c .failures "$st")"
    fi
    # The reducer charged it to map 0's output, which ran again for it.
    grep -q "job $ID reduce task 0 on worker w-.* cannot fetch map 0 attempt 1 from worker w-.*: corrupt data: $report" \
        "$T/master.log" || fail "$how: no reducer reported map 0's output as corrupt ($report)"
    grep -q "job $ID map task 0 runs again: the output of attempt 1 could not be fetched" \
        "$T/master.log" || fail "$how: the master did not say why map 0 ran again"
    echo "ok: $how: map 0's output ($size bytes) with its block at byte $rel damaged, the CRC right: charged to map 0, which ran again"
}

run_case records
run_case payload
run_case rawlen
