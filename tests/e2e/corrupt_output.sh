#!/usr/bin/env bash
# A finished map output corrupted on disk. Map 0 (fast) finishes while
# maps 1 and 2 (slow) hold both slots, so no reducer has fetched it yet;
# the test flips a byte in its first block. The reducer that fetches it
# finds the block's CRC wrong, the master runs map 0 again, and the job's
# output is right.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 100
start_workers 2 --slots 1
gen "$T/gen" 192K 3
mkdir "$T/in" "$T/once"
mv "$T/gen/text-000.txt" "$T/in/a-fast.txt"
mv "$T/gen/text-001.txt" "$T/in/slow-1.txt"
mv "$T/gen/text-002.txt" "$T/in/slow-2.txt"
open_notify
# One map per file; the first attempts of the slow ones sleep 2 ms a line.
submit_faulty --input "$T/in" --output "$T/out" --split-size 64K -R 2 \
    --no-speculation --arg slow_once="$T/once" --arg slow_match=slow \
    --arg slow_ms=2 --arg notify="$T/notify"
# The third map to start is map 2, in the slot map 0 left: map 0 is done.
for i in 1 2 3; do
    read -r -t 30 kind pid <&5 || fail "only $((i - 1)) map attempts started"
    [ "$kind" = map ] || fail "a $kind started before the third map"
done
out=$(find "$T"/w1 "$T"/w2 -path '*/map-00000-a1/tmp/output.ifile' | head -n 1)
[ -n "$out" ] || fail "no output of map 0 attempt 1"
size=$(stat -c %s "$out")
at=$((size / 4))
byte=$(od -An -tu1 -j "$at" -N 1 "$out" | tr -d ' ')
printf "$(printf '\\%03o' $(((byte + 1) % 256)))" |
    dd of="$out" bs=1 seek="$at" conv=notrunc status=none
[ "$(od -An -tu1 -j "$at" -N 1 "$out" | tr -d ' ')" != "$byte" ] ||
    fail "the byte at $at did not change"

job_succeeds
check_wordcount "$T/out" 2 "$T"/in/*
"$QUERN" status "$ID" --master "$MASTER" --json >"$T/status.json"
jq -e '.counters.maps_rerun >= 1 and .counters.map_attempts >= 4' \
    "$T/status.json" >/dev/null ||
    fail "map 0 did not run again: $(jq -c .counters "$T/status.json")"
grep -q "cannot fetch map 0 attempt 1 from worker w-.*: corrupt data: block CRC mismatch at byte" \
    "$T/master.log" || fail "no reducer reported map 0's output as corrupt"
grep -q "map task 0 runs again: the output of attempt 1 could not be fetched" \
    "$T/master.log" || fail "the master did not say why map 0 ran again"
echo "ok: a corrupt block of map 0's output ($size bytes, byte $at changed) was found by its reducer and map 0 ran again"
