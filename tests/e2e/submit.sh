#!/usr/bin/env bash
# Daemons started by hand: quern submit --wait, status, jobs, workers and
# cancel against them; an unreachable master.
. "$(dirname "$0")/lib.sh"
# The hanging plugin tells this test it started through a fifo outside any
# task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

gen "$T/in" 4M 2
wordcount_ref "$T"/in/* >"$T/want"
start_master
start_worker w1 --slots 2
start_worker w2

q() { "$QUERN" "$@" --master "$MASTER"; }

q submit --job "$JOBS/wordcount.so" --input "$T/in" --output "$T/out" -R 2 \
    --wait >"$T/submit.out" 2>"$T/submit.err" || fail "submit --wait failed: $(cat "$T/submit.err")"
id=$(head -n 1 "$T/submit.out")
[[ $id == job-* ]] || fail "submit printed '$id', not a job id"
grep -q "$id (wordcount) succeeded" "$T/submit.out" || fail "no result line"
cat "$T"/out/part-* | sort | cmp - "$T/want" || fail "output differs"

q status "$id" | grep -q "succeeded" || fail "status does not say succeeded"
q status "$id" --json >"$T/status.json"
grep -q '"state": "succeeded"' "$T/status.json" || fail "status --json: $(cat "$T/status.json")"
grep -q '"reduce_output_records": ' "$T/status.json" || fail "no counters in status --json"
q jobs | grep -q "^$id " || fail "quern jobs does not list $id"
[ "$(q workers --json | grep -c '"alive": true')" = 2 ] || fail "expected 2 live workers: $(q workers)"
q workers | grep -q 'slots 2' || fail "worker slots not shown"

# The same output folder again is refused before anything runs.
set +e
q submit --job "$JOBS/wordcount.so" --input "$T/in" --output "$T/out" >"$T/again.out" 2>&1
rc=$?
set -e
[ $rc = 2 ] || fail "resubmitting to a committed output exited $rc, not 2"
grep -q "already holds a committed job's output" "$T/again.out" || fail "$(cat "$T/again.out")"

# Cancel a job whose map hangs: its attempt is killed, no output is left.
mkfifo "$T/started"
id2=$(q submit --job "$TJOBS/faulty.so" --arg fail=hang --arg "fifo=$T/started" \
    --input "$T/in" --output "$T/out2")
read -r _ task_pid < <(timeout 20 head -n 1 "$T/started") || fail "the hanging attempt never started"
q cancel "$id2" | grep -q "cancelled" || fail "cancel failed"
timeout 10 tail --pid="$task_pid" -f /dev/null || fail "the cancelled attempt (pid $task_pid) still runs"
q status "$id2" | grep -q cancelled || fail "status does not say cancelled"
[ -z "$(ls -A "$T/out2" 2>/dev/null)" ] || fail "a cancelled job left output: $(ls "$T/out2")"
set +e
q cancel "$id2" >/dev/null 2>&1
[ $? = 2 ] || fail "cancelling an ended job should be a usage error"
q status job-999 >"$T/nojob" 2>&1
[ $? = 2 ] || fail "status of an unknown job should exit 2"
grep -q "no job job-999" "$T/nojob" || fail "$(cat "$T/nojob")"

# Nobody listens on this port: exit status 3 and a message saying so.
"$QUERN" status --master tcp://127.0.0.1:9 >"$T/unreach" 2>&1
rc=$?
set -e
[ $rc = 3 ] || fail "an unreachable master gave exit $rc, not 3"
grep -q "did not answer" "$T/unreach" || fail "$(cat "$T/unreach")"
echo "ok: submit, status, jobs, workers, cancel"
