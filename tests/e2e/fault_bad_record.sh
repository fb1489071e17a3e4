#!/usr/bin/env bash
# A deterministic bad record: map crashes on one line every time. With
# --max-attempts 4 the job fails, and says which shard and byte offset
# killed it; with --skip-bad-records the job succeeds without that record,
# lists it under "skipped" and counts it in skipped_records.
. "$(dirname "$0")/lib.sh"

start_master --heartbeat-ms 100 --dead-ms 1500 --task-timeout-ms 5000
start_worker w1
start_worker w2
gen "$T/clean" 192K 3
cp -r "$T/clean" "$T/in"
# The poison line goes in as line 200 of text-001.txt; the reference is the
# input without it.
bad=$T/in/text-001.txt
awk 'NR == 200 { print "zebra XYZZY poisoned words" } { print }' "$T/clean/text-001.txt" >"$bad"
off=$(grep -b XYZZY "$bad" | cut -d: -f1)
[ "$(grep -c XYZZY "$bad")" = 1 ] && [ "$off" -gt 0 ] || fail "could not place the poison line"
wordcount_ref "$T"/clean/* >"$T/want"

submit() { # OUT [OPTIONS...]
    local out=$1
    shift
    timeout 60 "$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" \
        --input "$T/in" --output "$T/$out" -R 2 --no-speculation \
        --arg fail=segv --arg poison=XYZZY "$@" --wait >"$T/$out.log" 2>&1
}

# Without skipping: every attempt dies on the same line; the job fails and
# names the shard and the line's offset.
set +e
submit out1 --max-attempts 4
rc=$?
set -e
[ $rc = 1 ] || fail "a job with a poison record exited $rc, not 1: $(cat "$T/out1.log")"
grep -qF "$bad" "$T/out1.log" || fail "the failure does not name the shard $bad: $(cat "$T/out1.log")"
grep -Eq "(^|[^0-9])$off([^0-9]|$)" "$T/out1.log" || fail "the failure does not give offset $off: $(cat "$T/out1.log")"
id=$(head -n 1 "$T/out1.log")
"$QUERN" status "$id" --master "$MASTER" --json >"$T/status1.json"
[ "$(jq '[.failures[] | select(.kind == "map")] | length' "$T/status1.json")" = 4 ] ||
    fail "expected 4 failed map attempts: $(jq -c .failures "$T/status1.json")"
[ "$(jq --argjson o "$off" '[.failures[] | select(.record_offset != $o)] | length' "$T/status1.json")" = 0 ] ||
    fail "failed attempts do not all give record_offset $off: $(jq -c '[.failures[] | .record_offset]' "$T/status1.json")"
[ -z "$(ls -A "$T/out1" 2>/dev/null)" ] || fail "a failed job left output: $(ls "$T/out1")"

# Skipping: the job succeeds without exactly that record.
set +e
submit out2 --max-attempts 4 --skip-bad-records
rc=$?
set -e
[ $rc = 0 ] || fail "--skip-bad-records: the job exited $rc: $(cat "$T/out2.log")"
id=$(head -n 1 "$T/out2.log")
"$QUERN" status "$id" --master "$MASTER" --json >"$T/status2.json"
jq -e '.skipped' "$T/status2.json" >/dev/null || fail "no \"skipped\" in the status: $(cat "$T/status2.json")"
[ "$(jq '.skipped | length' "$T/status2.json")" = 1 ] || fail "expected one skipped record: $(jq -c .skipped "$T/status2.json")"
[ "$(jq '.skipped[0].offset' "$T/status2.json")" = "$off" ] ||
    fail "skipped offset is not $off: $(jq -c .skipped "$T/status2.json")"
jq -e --arg s "$bad" '.skipped[0].shard == $s' "$T/status2.json" >/dev/null ||
    fail "skipped shard is not $bad: $(jq -c .skipped "$T/status2.json")"
[ "$(jq '.counters.skipped_records' "$T/status2.json")" = 1 ] ||
    fail "skipped_records is not 1: $(jq -c .counters "$T/status2.json")"
cat "$T"/out2/part-* | sort >"$T/got"
cmp -s "$T/got" "$T/want" || fail "output differs from the input without the poison line: $(diff "$T/want" "$T/got" | head -5)"
echo "ok: a poison record at text-001.txt:$off fails the job, and is skipped with --skip-bad-records"
