#!/usr/bin/env bash
# Ctrl-C on `quern run` cancels the job and stops every process it started:
# the master, the workers and the running attempt, and leaves no output.
. "$(dirname "$0")/lib.sh"
# The hanging plugin tells this test it started through a fifo outside any
# task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

gen "$T/in" 1M 1
mkfifo "$T/started"
"$QUERN" run --job "$TJOBS/faulty.so" --arg fail=hang --arg "fifo=$T/started" \
    --input "$T/in" --output "$T/out" >"$T/run.log" 2>&1 &
qpid=$!
read -r _ task_pid < <(timeout 20 head -n 1 "$T/started") || fail "the attempt never started"
kill -INT $qpid
set +e
timeout 30 tail --pid=$qpid -f /dev/null || fail "quern run did not exit after SIGINT"
wait $qpid
rc=$?
set -e
[ $rc = 1 ] || fail "quern run exited $rc after SIGINT, not 1: $(cat "$T/run.log")"
grep -q "interrupted; cancelling" "$T/run.log" || fail "$(cat "$T/run.log")"
! kill -0 "$task_pid" 2>/dev/null || fail "the attempt (pid $task_pid) survived"
# Every daemon quern run starts carries its pid in QUERN_PARENT_PID.
left=$(grep -l "QUERN_PARENT_PID=$qpid" /proc/[0-9]*/environ 2>/dev/null || true)
[ -z "$left" ] || fail "processes left running: $left"
[ -z "$(ls -A "$T/out" 2>/dev/null)" ] || fail "output left: $(ls "$T/out")"
echo "ok: SIGINT cancels the job and stops every process"
