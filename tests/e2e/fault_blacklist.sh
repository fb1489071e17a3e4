#!/usr/bin/env bash
# A bad worker: every attempt it runs fails (exit 7 at the first record),
# while the other worker is healthy. The master stops giving the bad worker
# this job's tasks after a few failures, so the job succeeds within
# --max-attempts 4 instead of burning every task's attempts there.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 100 --dead-ms 1500 --task-timeout-ms 5000
FAULTY_BAD=1 start_worker bad
badpid=${PIDS[-1]}
start_worker good
goodpid=${PIDS[-1]}
# Both must have joined before the job, or the good one could take it all.
ids=
for _ in $(seq 100); do
    ids=$("$QUERN" workers --master "$MASTER" --json | jq -r '.[] | select(.alive) | "\(.pid) \(.id)"')
    [ "$(printf '%s\n' "$ids" | grep -c .)" = 2 ] && break
    sleep 0.1
done
badid=$(printf '%s\n' "$ids" | awk -v p="$badpid" '$1 == p { print $2 }')
goodid=$(printf '%s\n' "$ids" | awk -v p="$goodpid" '$1 == p { print $2 }')
[ -n "$badid" ] && [ -n "$goodid" ] || fail "both workers did not join: $ids"

# 8 maps of about 230 lines, 1 ms a line, so neither worker can take them all
# before the other asks.
gen "$T/in" 128K 8
timeout 60 "$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" \
    --input "$T/in" --output "$T/out" --split-size 16K -R 2 \
    --max-attempts 4 --no-speculation --arg fail=exit --arg bad_env=FAULTY_BAD \
    --arg sleep_ms=1 --wait >"$T/submit.log" 2>&1 ||
    fail "the job with one bad worker failed: $(cat "$T/submit.log")"
[ -e "$T/out/_SUCCESS" ] || fail "no _SUCCESS"
cat "$T"/out/part-* | sort >"$T/got"
wordcount_ref "$T"/in/* >"$T/want"
cmp -s "$T/got" "$T/want" || fail "output differs from the reference: $(diff "$T/want" "$T/got" | head -5)"

"$QUERN" status "$(head -n 1 "$T/submit.log")" --master "$MASTER" --json >"$T/status.json"
onbad=$(jq --arg w "$badid" '[.failures[] | select(.worker == $w)] | length' "$T/status.json")
ongood=$(jq --arg w "$goodid" '[.failures[] | select(.worker == $w)] | length' "$T/status.json")
[ "$onbad" -ge 1 ] || fail "the bad worker failed nothing: is bad_env= doing anything?"
[ "$onbad" -le 3 ] || fail "the bad worker failed $onbad attempts; it should have stopped getting tasks by then"
[ "$ongood" = 0 ] || fail "the good worker failed $ongood attempts: $(jq -c .failures "$T/status.json")"
echo "ok: a bad worker failed $onbad attempts, then got no more of the job's tasks"
