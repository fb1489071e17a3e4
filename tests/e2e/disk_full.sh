#!/usr/bin/env bash
# A full disk. Worker w1's work dir is a 1 MiB tmpfs in a mount namespace
# of its own; the job's map outputs (grep '.' keeps every line) do not fit
# there. Its attempts fail with a reason that says the disk is full and
# leave no partial file behind; each task that failed there runs again on
# w2 (with two attempts a task, a second failure on w1 would fail the
# job); the job finishes, and its output is right.
. "$(dirname "$0")/lib.sh"

start_master --heartbeat-ms 100
mkdir "$T/w1"
# unshare execs the shell, which execs the worker: the pid is the worker's,
# and the mount goes when it exits.
unshare --mount --propagation private sh -c \
    'mount -t tmpfs -o size=1m quern-test-full "$1" && shift && exec "$@"' sh \
    "$T/w1" "$BIN/quern-worker" --master "$MASTER" --work-dir "$T/w1" --slots 1 \
    >>"$T/w1.log" 2>&1 &
PIDS+=($!)
start_worker w2 --slots 1
gen "$T/in" 4M 2
cd "$T"
timeout 120 "$QUERN" submit --master "$MASTER" --job "$JOBS/grep.so" \
    --arg pattern=. --input ./in --output ./out --split-size 1M -R 2 \
    --codec none --max-attempts 2 --wait >"$T/submit.log" 2>&1 ||
    fail "the job failed: $(cat "$T/submit.log")"
cat out/part-* | sort >got
grep -b . ./in/* | sed 's/^\([^:]*:[0-9]*\):/\1\t/' | sort >want
cmp -s got want || fail "the output differs from grep -b's"

# w1's attempts failed for the disk, and said so.
id=$(head -n 1 "$T/submit.log")
"$QUERN" status "$id" --master "$MASTER" --json >"$T/status.json"
failed=$(jq '.counters.failed_attempts // 0' "$T/status.json")
[ "$failed" -ge 1 ] || fail "no attempt failed on the full disk: $(jq -c .counters "$T/status.json")"
jq -e '[.failures[] | select(.reason | test("No space left on device"))] | length >= 1' \
    "$T/status.json" >/dev/null ||
    fail "no failure says the disk is full: $(jq -c .failures "$T/status.json")"
# Every failure was w1's full disk, on one worker, and no task failed
# twice: each ran again on w2.
jq -e '[.failures[].worker] | unique | length == 1' "$T/status.json" >/dev/null &&
    jq -e '[.failures[] | "\(.kind) \(.task)"] | length == (unique | length)' \
        "$T/status.json" >/dev/null ||
    fail "a task failed twice, or on w2: $(jq -c '[.failures[] | [.task_name, .worker, .reason]]' "$T/status.json")"
# Nothing half-written is left on w1 (its mount is still there: w1 runs).
left=$(find "$T/w1" -type f \( -name '*.ifile' -o -name '*.spill*' -o -name '*.tmp' \) | head -n 3)
[ -z "$left" ] || fail "partial files left on the full disk: $left"
echo "ok: $failed attempts failed on a full disk, saying so; the job finished on w2"
