#!/usr/bin/env bash
# Churn: three workers, one of them killed (SIGKILL) and started again on
# its work dir every 2 to 4 s, and a plugin whose map attempts exit or
# stall in a third of their calls. Each job still comes out exact, in
# bounded time: a restart costs only what ran, never the maps finished.
#
#   CHAOS_RUNS   jobs to run (default 1); each prints its time
#   CHAOS_LIMIT  seconds each may take (default 180)
. "$(dirname "$0")/lib.sh"

RUNS=${CHAOS_RUNS:-1}
LIMIT=${CHAOS_LIMIT:-180}
start_master --heartbeat-ms 100 --dead-ms 3000 --task-timeout-ms 2000
start_workers 3 --slots 2
gen "$T/in" 64K 2

times=()
for run in $(seq "$RUNS"); do
    rm -rf "$T/out"
    start=$(date +%s%3N)
    # 8 small maps (about 1 s each), 3 reduces (about 3 s each); a stalled
    # attempt is killed after 2 s without progress.
    timeout "$LIMIT" "$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" \
        --input "$T/in" --output "$T/out" --split-size 8K -R 3 \
        --max-attempts 10 --arg fail=exit_or_hang --arg prob=0.33 \
        --arg sleep_ms=8 --arg reduce_sleep_ms=1 \
        --wait >"$T/submit.log" 2>&1 &
    sub=$!
    restarts=0
    # Until the job ends: wait 2 to 4 s (or less, if it ends), then kill
    # a worker and start it again at once.
    while kill -0 $sub 2>/dev/null; do
        timeout $((2 + RANDOM % 3)) tail --pid=$sub -s 0.1 -f /dev/null 2>/dev/null || true
        kill -0 $sub 2>/dev/null || break
        k=$((RANDOM % 3))
        kill -9 "${W[$k]}"
        forget_pid "${W[$k]}"
        start_worker "w$((k + 1))" --slots 2
        W[$k]=${PIDS[-1]}
        restarts=$((restarts + 1))
    done
    rc=0
    wait $sub || rc=$?
    took=$(($(date +%s%3N) - start))
    [ $rc = 0 ] || fail "run $run did not succeed within $LIMIT s (exit $rc, $restarts restarts): $(tail -n 5 "$T/submit.log")"
    check_wordcount "$T/out" 3 "$T"/in/*
    id=$(head -n 1 "$T/submit.log")
    "$QUERN" status "$id" --master "$MASTER" --json >"$T/status.json"
    failed=$(jq -r '.counters.failed_attempts // 0' "$T/status.json")
    rerun=$(jq -r '.counters.maps_rerun // 0' "$T/status.json")
    printf 'chaos run %d: exact in %d.%03d s, %d worker restarts, %s failed attempts, %s maps run again\n' \
        "$run" $((took / 1000)) $((took % 1000)) "$restarts" "$failed" "$rerun"
    times+=("$took")
done
echo "ok: $RUNS chaos runs exact, times (ms): ${times[*]}"
