#!/usr/bin/env bash
# A worker killed (SIGKILL) while it runs a map attempt: the master declares
# it dead after --dead-ms, runs the lost map again elsewhere, and the output
# is the same as a sequential word count. The lost attempt's process does not
# outlive its worker.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 100 --dead-ms 1500 --task-timeout-ms 5000
start_workers 3
# 4 maps of about 1,800 lines, 1 ms a line: the map phase lasts seconds.
gen "$T/in" 512K 4
open_notify
submit_faulty \
    --input "$T/in" --output "$T/out" --split-size 128K -R 2 \
    --arg sleep_ms=1 --arg "notify=$T/notify"

# The first map attempt still running when we look: kill its worker.
kill_worker_running map
victim=$VICTIM

job_succeeds
id=$ID
check_wordcount "$T/out" 2 "$T"/in/*

"$QUERN" status "$id" --master "$MASTER" --json >"$T/status.json"
lost=$(jq --arg w "-$victim-" '[.failures[] | select(.kind == "map" and (.worker | contains($w)))] | length' "$T/status.json")
[ "$lost" -ge 1 ] || fail "no failed map attempt on the killed worker: $(jq -c .failures "$T/status.json")"
grep -q "is dead" "$T/master.log" || fail "the master never declared the worker dead"
maps=$(jq .maps "$T/status.json")
ma=$(jq -e '.counters.map_attempts' "$T/status.json") ||
    fail "no map_attempts counter: $(jq -c .counters "$T/status.json")"
[ "$ma" -gt "$maps" ] || fail "map_attempts $ma, but $maps maps and one was lost"
echo "ok: a worker killed during a map ($victim) cost a re-run, not the answer ($ma attempts for $maps maps)"
