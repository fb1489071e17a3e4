#!/usr/bin/env bash
# A worker killed (SIGKILL) while it runs a reduce attempt: the reduce runs
# again elsewhere, the map outputs the dead worker held are recomputed, and
# the output is the same as a sequential word count. Nothing the killed
# attempt half wrote shows in the output folder.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 100 --dead-ms 1500 --task-timeout-ms 5000
start_workers 3
# About 9,000 words over 4 reduces at 1 ms a value: 2 to 3 s a reduce.
gen "$T/in" 64K 2
open_notify
submit_faulty \
    --input "$T/in" --output "$T/out" --split-size 16K -R 4 \
    --arg reduce_sleep_ms=1 --arg "notify=$T/notify"

# The first reduce attempt still running when we look: kill its worker.
kill_worker_running reduce
victim=$VICTIM

job_succeeds
id=$ID
check_wordcount "$T/out" 4 "$T"/in/*

"$QUERN" status "$id" --master "$MASTER" --json >"$T/status.json"
lost=$(jq --arg w "-$victim-" '[.failures[] | select(.kind == "reduce" and (.worker | contains($w)))] | length' "$T/status.json")
[ "$lost" -ge 1 ] || fail "no failed reduce attempt on the killed worker: $(jq -c .failures "$T/status.json")"
ra=$(jq -e '.counters.reduce_attempts' "$T/status.json") ||
    fail "no reduce_attempts counter: $(jq -c .counters "$T/status.json")"
[ "$ra" -gt 4 ] || fail "reduce_attempts $ra, but 4 reduces and one was lost"
echo "ok: a worker killed during a reduce ($victim) cost a re-run, not the answer ($ra reduce attempts)"
