#!/usr/bin/env bash
# A hung attempt: the first attempt of one map hangs (in pause()) at its
# first record while its worker keeps heartbeating. After --task-timeout-ms
# without progress the master fails the attempt ("no progress"), the worker
# kills it, and the next attempt finishes the job.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 100 --dead-ms 1500 --task-timeout-ms 2000
start_worker w1
start_worker w2
gen "$T/in" 128K 4
mkdir "$T/once"
t0=$(date +%s%3N)
timeout 60 "$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" \
    --input "$T/in" --output "$T/out" --split-size 32K -R 2 --no-speculation \
    --arg fail=hang --arg "fail_once=$T/once" --arg fail_match=text-001 \
    --wait >"$T/submit.log" 2>&1 ||
    fail "the job with a hung attempt failed: $(cat "$T/submit.log")"
took=$(($(date +%s%3N) - t0))
[ -e "$T/out/_SUCCESS" ] || fail "no _SUCCESS"
cat "$T"/out/part-* | sort >"$T/got"
wordcount_ref "$T"/in/* >"$T/want"
cmp -s "$T/got" "$T/want" || fail "output differs from the reference: $(diff "$T/want" "$T/got" | head -5)"

[ "$(ls "$T/once" | wc -l)" = 1 ] || fail "expected one hung attempt, got: $(ls "$T/once")"
hung=$(cat "$T"/once/*)
"$QUERN" status "$(head -n 1 "$T/submit.log")" --master "$MASTER" --json >"$T/status.json"
[ "$(jq '[.failures[] | select(.kind == "map" and (.reason | test("no progress")))] | length' "$T/status.json")" = 1 ] ||
    fail "expected one map attempt failed for no progress: $(jq -c .failures "$T/status.json")"
[ "$took" -ge 2000 ] || fail "the job took $took ms, less than the task timeout it had to wait out"
[ "$took" -lt 20000 ] || fail "the job took $took ms with a 2 s task timeout"
timeout 10 tail --pid="$hung" -f /dev/null || fail "the hung attempt (pid $hung) was never killed"
echo "ok: a hung attempt timed out for no progress and ran again ($took ms)"
