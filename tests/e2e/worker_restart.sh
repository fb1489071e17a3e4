#!/usr/bin/env bash
# A worker killed (SIGKILL) and started again on the same work dir comes
# back as itself (its id, incarnation 2) with the map outputs it had
# finished: killed in the reduce phase, no map runs again; killed in the
# map phase, only what it was running runs again. A map output damaged
# while it was down is deleted and that map alone runs again. A second
# worker on a work dir in use refuses, naming the first one's pid.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 100 --dead-ms 8000 --task-timeout-ms 20000
start_workers 3 --slots 2
gen "$T/in" 64K 2
open_notify

# name_of PID: which of w1..w3 has that pid (W holds them in order).
name_of() {
    local i
    for i in "${!W[@]}"; do [ "${W[$i]}" = "$1" ] && { echo "w$((i + 1))"; return; }; done
    fail "pid $1 is none of the workers"
}
# restart NAME: starts worker NAME again on its work dir; W follows.
restart() {
    start_worker "$1"
    W[${1#w} - 1]=${PIDS[-1]}
}
counter() { jq -r --arg c "$2" '.counters[$c] // 0' "$1"; }
# drain: forget the notices of the jobs before (bounded: 0.2 s of quiet).
drain() { while read -r -t 0.2 _ _ <&5; do :; done; }

# ---- two workers on one work dir --------------------------------------------
set +e
timeout 10 "$BIN/quern-worker" --master "$MASTER" --work-dir "$T/w1" >"$T/second.log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "a second worker on w1's work dir started"
grep -q "work dir $T/w1 is in use by another quern-worker (pid ${W[0]})" "$T/second.log" ||
    fail "the refusal does not name the first worker's pid ${W[0]}: $(cat "$T/second.log")"
echo "ok: a second worker on a work dir in use refuses, naming pid ${W[0]}"

# ---- killed in the reduce phase, started again 1 s later --------------------
# About 9,000 words over 4 reduces at 1 ms a value: 2 to 3 s a reduce.
# Every worker ran maps (8 maps, 6 slots): the victim holds outputs.
submit_faulty --input "$T/in" --output "$T/out" --split-size 16K -R 4 \
    --arg reduce_sleep_ms=1 --arg "notify=$T/notify"
kill_worker_running reduce
name=$(name_of "$VICTIM")
sleep 1 # the restart the test is about
restart "$name"
job_succeeds
check_wordcount "$T/out" 4 "$T"/in/*
"$QUERN" status "$ID" --master "$MASTER" --json >"$T/status.json"
[ "$(counter "$T/status.json" maps_rerun)" = 0 ] ||
    fail "maps ran again after a restart: $(jq -c .counters "$T/status.json")"
kept=$(sed -n 's/.*(incarnation 2): \([0-9]*\) finished map outputs.*/\1/p' "$T/$name.log" | tail -n 1)
[ -n "$kept" ] && [ "$kept" -ge 1 ] || fail "the restarted worker kept no map outputs: $(grep -i 'started again' "$T/$name.log")"
grep -q "worker w-[^ ]* restarted (incarnation 2, was 1)" "$T/master.log" ||
    fail "the master did not see a restart: $(grep -i 'worker' "$T/master.log" | tail -n 5)"
lost=$(jq '[.failures[] | select(.reason | contains("restarted while it ran"))] | length' "$T/status.json")
[ "$lost" -ge 1 ] || fail "the reduce that ran on the victim was not lost to the restart: $(jq -c .failures "$T/status.json")"
echo "ok: $name killed in the reduce phase and started again kept $kept map outputs; no map ran again"

# ---- killed in the map phase ------------------------------------------------
drain
# 16 maps of about 4 KiB at 2 ms a record: each takes a second or so.
submit_faulty --input "$T/in" --output "$T/out2" --split-size 8K -R 2 \
    --arg sleep_ms=2 --arg "notify=$T/notify"
# A worker that has finished a map (its second map attempt starts).
declare -A seen=()
victim=
end=$((SECONDS + 30))
while [ -z "$victim" ] && [ $SECONDS -lt $end ]; do
    read -r -t 30 phase pid <&5 || fail "no map started"
    [ "$phase" = map ] || continue
    pp=$(ppid_of "$pid")
    [ -n "$pp" ] || continue
    seen[$pp]=$((${seen[$pp]:-0} + 1))
    [ "${seen[$pp]}" -ge 3 ] && victim=$pp
done
[ -n "$victim" ] || fail "no worker started a third map"
name=$(name_of "$victim")
kill -9 "$victim"
forget_pid "$victim"
restart "$name"
job_succeeds
check_wordcount "$T/out2" 2 "$T"/in/*
"$QUERN" status "$ID" --master "$MASTER" --json >"$T/status2.json"
[ "$(counter "$T/status2.json" maps_rerun)" = 0 ] ||
    fail "maps ran again after a restart in the map phase: $(jq -c .counters "$T/status2.json")"
lost=$(jq '[.failures[] | select(.kind == "map" and (.reason | contains("restarted while it ran")))] | length' "$T/status2.json")
[ "$lost" -ge 1 ] || fail "no map attempt was lost to the restart: $(jq -c .failures "$T/status2.json")"
echo "ok: $name killed in the map phase: $lost running map attempts ran again, no finished map did"

# ---- a map output damaged while its worker was down -------------------------
drain
submit_faulty --input "$T/in" --output "$T/out3" --split-size 16K -R 4 \
    --arg reduce_sleep_ms=1 --arg "notify=$T/notify"
# Once a reduce runs (every map is done), a worker holding map outputs.
read_reduce() {
    local phase pid end=$((SECONDS + 30))
    while [ $SECONDS -lt $end ]; do
        read -r -t 30 phase pid <&5 || break
        [ "$phase" = reduce ] && return 0
    done
    fail "no reduce started"
}
read_reduce
victim_out= name=
for w in w1 w2 w3; do
    # Only this job's folders are left: the others ended.
    f=$(ls "$T/$w"/jobs/*/map-*/tmp/output.ifile 2>/dev/null | head -n 1 || true)
    [ -n "$f" ] && { victim_out=$f name=$w; break; }
done
[ -n "$victim_out" ] || fail "no worker holds a map output"
victim=${W[${name#w} - 1]}
kill -9 "$victim"
forget_pid "$victim"
truncate -s -10 "$victim_out"
restart "$name"
job_succeeds
check_wordcount "$T/out3" 4 "$T"/in/*
"$QUERN" status "$ID" --master "$MASTER" --json >"$T/status3.json"
[ "$(counter "$T/status3.json" maps_rerun)" = 1 ] ||
    fail "not exactly the damaged map ran again: $(jq -c .counters "$T/status3.json")"
grep -q "deleting map output $victim_out" "$T/$name.log" ||
    fail "the worker did not say it deleted the damaged output: $(grep -i delet "$T/$name.log")"
[ ! -e "$victim_out" ] || fail "the damaged output is still there"
echo "ok: a map output damaged while $name was down was deleted and its map alone ran again"
