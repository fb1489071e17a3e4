#!/usr/bin/env bash
# quern cancel on a running job, after some reduces committed their part
# files: the client waiting on the job exits 1, every attempt is killed,
# and no part-* file and no _SUCCESS are left behind.
. "$(dirname "$0")/lib.sh"

start_master --heartbeat-ms 200
start_workers 2
gen "$T/in" 64K 2
# 3 reduces on 2 slots, each 1 ms a value: about 3 s apiece, so when the
# first is done the third still runs.
"$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" --input "$T/in" \
    --output "$T/out" -R 3 --arg reduce_sleep_ms=1 --wait >"$T/wait.log" 2>&1 &
waiter=$!
id=
end=$((SECONDS + 10))
until [ -n "$id" ]; do
    id=$(head -n 1 "$T/wait.log" 2>/dev/null | grep -E '^job-' || true)
    [ $SECONDS -lt $end ] || fail "no job id from submit: $(cat "$T/wait.log")"
    [ -n "$id" ] || sleep 0.1
done
end=$((SECONDS + 60))
until curl -sS --max-time 5 "${HTTP}api/v1/jobs/$id" >"$T/job.json" &&
    jq -e '.reduces_done >= 1' "$T/job.json" >/dev/null; do
    jq -e '.state == "running"' "$T/job.json" >/dev/null ||
        fail "the job ended before it could be cancelled: $(cat "$T/job.json")"
    [ $SECONDS -lt $end ] || fail "no reduce finished in 60 s: $(cat "$T/job.json")"
    sleep 0.2
done
ls "$T/out"/part-* >/dev/null 2>&1 || fail "no part file was committed before the cancel"

"$QUERN" cancel "$id" --master "$MASTER" --json >"$T/cancel.json" ||
    fail "quern cancel failed: $(cat "$T/cancel.json")"
jq -e --arg id "$id" '.id == $id and .cancelled == true and .error == null' \
    "$T/cancel.json" >/dev/null || fail "cancel --json: $(cat "$T/cancel.json")"

set +e
timeout 20 tail --pid=$waiter -f /dev/null
wait $waiter
rc=$?
set -e
[ $rc = 1 ] || fail "the waiting client exited $rc, not 1: $(cat "$T/wait.log")"
grep -q cancelled "$T/wait.log" || fail "the waiting client did not say cancelled: $(cat "$T/wait.log")"

left=$(ls -A "$T/out" 2>/dev/null | grep -E '^(part-|_SUCCESS)' || true)
[ -z "$left" ] || fail "left behind in the output: $left"
"$QUERN" status "$id" --master "$MASTER" --json | jq -e '.state == "cancelled"' >/dev/null ||
    fail "quern status does not say cancelled"
# The attempts were killed: no task process is left under a worker.
kids() { for w in "${W[@]}"; do ps -o pid= --ppid "$w" || true; done; }
end=$((SECONDS + 10))
while [ -n "$(kids)" ]; do
    [ $SECONDS -lt $end ] || fail "attempts still running after the cancel: $(kids)"
    sleep 0.1
done
curl -sS --max-time 5 "${HTTP}api/v1/workers" | jq -e 'all(.[]; .busy == 0)' >/dev/null ||
    fail "the master still counts attempts running"
# A second cancel is an error that says why.
set +e
"$QUERN" cancel "$id" --master "$MASTER" >"$T/again.log" 2>&1
rc=$?
set -e
[ $rc = 2 ] || fail "cancelling again exited $rc, not 2"
grep -q "already ended" "$T/again.log" || fail "$(cat "$T/again.log")"
echo "ok: cancel kills the job's attempts, the waiter exits 1, no output is left"
