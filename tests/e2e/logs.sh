#!/usr/bin/env bash
# quern logs JOB TASK [--attempt N]: the stderr of an attempt, fetched
# through the master from the worker that ran it, after the job failed;
# wrong tasks and attempts are refused with a message that says why.
. "$(dirname "$0")/lib.sh"

start_master
# One slot each: m0 holds one (both its attempts), r0 the other from the
# start (no map waits for a slot), so r1 never starts.
start_workers 2 --slots 1
gen "$T/in" 16K 1
set +e
"$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" --input "$T/in" \
    --output "$T/out" -R 2 --max-attempts 2 --arg fail=error \
    --arg say=hello-from-setup --wait >"$T/run.log" 2>&1
rc=$?
set -e
[ $rc = 1 ] || fail "the failing job exited $rc, not 1: $(cat "$T/run.log")"
id=$(head -n 1 "$T/run.log")

for a in 1 2; do
    "$QUERN" logs "$id" m0 --attempt $a --master "$MASTER" >"$T/a$a.out" 2>"$T/a$a.err" ||
        fail "quern logs --attempt $a: $(cat "$T/a$a.err")"
    grep -q "^faulty: hello-from-setup (pid [0-9]*)$" "$T/a$a.out" ||
        fail "attempt $a's stderr: $(cat "$T/a$a.out")"
    grep -q "stderr of m0 attempt $a (on w-" "$T/a$a.err" || fail "header: $(cat "$T/a$a.err")"
done
cmp -s "$T/a1.out" "$T/a2.out" && fail "attempts 1 and 2 show the same stderr (same pid?)"
# The latest attempt by default; --json says which.
"$QUERN" logs "$id" map-0 --master "$MASTER" --json >"$T/latest.json"
jq -e --arg id "$id" '.job == $id and .task == "m0" and .attempt == 2 and
    (.worker | startswith("w-")) and (.stderr | test("hello-from-setup")) and
    .truncated == false and .total_bytes == (.stderr | length)' "$T/latest.json" >/dev/null ||
    fail "logs --json: $(cat "$T/latest.json")"

refused() { # WANT-TEXT ARGS...: quern logs exits 2 saying WANT-TEXT
    local want=$1 rc
    shift
    set +e
    "$QUERN" logs "$@" --master "$MASTER" >"$T/r.out" 2>&1
    rc=$?
    set -e
    [ $rc = 2 ] || fail "quern logs $* exited $rc, not 2: $(cat "$T/r.out")"
    grep -q -- "$want" "$T/r.out" || fail "quern logs $*: $(cat "$T/r.out")"
}
refused "is not a task" "$id" x1
refused "there is no m7" "$id" m7
refused "has no attempt 9" "$id" m0 --attempt 9
refused "has not started" "$id" r1
refused "no job job-nope" job-nope m0
echo "ok: quern logs shows each attempt's stderr and refuses what is not there"
