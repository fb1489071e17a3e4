#!/usr/bin/env bash
# Reduces start once no map waits for a slot, and fetch map outputs while
# the last maps still run. One map of six is a straggler (its first and
# only attempt, no speculation); the reduces start before it ends, learn
# where its output is when it is done (MapLocations: they end within a
# second or two of it, not after the 10 s a reducer waits before asking
# again), and the output is right. Nothing runs twice.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 100
start_workers 2 --slots 2
gen "$T/in" 96K 6
mkdir "$T/once"
# text-003's map sleeps 4 ms a record: about 2 s, while the others take
# a few ms each.
timeout 60 "$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" \
    --input "$T/in" --output "$T/out" --split-size 16K -R 2 --no-speculation \
    --arg slow_once="$T/once" --arg slow_match=text-003 --arg slow_ms=4 \
    --wait >"$T/submit.log" 2>&1 || fail "the job failed: $(cat "$T/submit.log")"
id=$(head -n 1 "$T/submit.log")
check_wordcount "$T/out" 2 "$T"/in/*

curl -sS --max-time 5 -o "$T/tasks.json" "${HTTP}api/v1/jobs/$id/tasks" ||
    fail "cannot read the job's tasks"
# The straggler: the map that ended last.
read -r slow slow_end < <(jq -r '[.[] | select(.kind == "map")] |
    max_by(.started_at_ms + .duration_ms) |
    "\(.index) \(.started_at_ms + .duration_ms)"' "$T/tasks.json")
jq -e --argjson e "$slow_end" '[.[] | select(.kind == "map")] |
    length == 6 and all(.attempts == 1) and
    ([.[] | select(.started_at_ms + .duration_ms < $e - 1000)] | length) == 5' \
    "$T/tasks.json" >/dev/null ||
    fail "expected six maps run once, five ending a second before the straggler: $(cat "$T/tasks.json")"
for r in 0 1; do
    jq -e --argjson r "$r" --argjson e "$slow_end" '.[] |
        select(.kind == "reduce" and .index == $r) |
        .attempts == 1 and .started_at_ms < $e - 1000' "$T/tasks.json" >/dev/null ||
        fail "reduce $r did not start while map $slow ran: $(cat "$T/tasks.json")"
    jq -e --argjson r "$r" --argjson e "$slow_end" '.[] |
        select(.kind == "reduce" and .index == $r) |
        .started_at_ms + .duration_ms < $e + 2000' "$T/tasks.json" >/dev/null ||
        fail "reduce $r was not told in time where map $slow's output is: $(cat "$T/tasks.json")"
done
"$QUERN" status "$id" --master "$MASTER" --json >"$T/status.json"
jq -e '.counters.map_attempts == 6 and .counters.reduce_attempts == 2' \
    "$T/status.json" >/dev/null || fail "attempts: $(jq -c .counters "$T/status.json")"
