#!/usr/bin/env bash
# A master killed (SIGKILL) and started again on the same --state-dir and
# endpoint goes on with its job: in the map phase and in the reduce phase,
# and twice in a row. The attempts that were running are adopted, the maps
# that were done are not run again, the client that follows the job says
# the master is back, and the output and counters are exact. Finished jobs
# stay listed after restarts; a second master on the state dir, and a
# damaged state file, are refused with a message that says what to do.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    shuf -i 20000-60000 -n 1)
EP=tcp://127.0.0.1:$port
MASTER=$EP
STATE=$T/state
RUN=0

# master_up: (re)starts the master on $EP and $STATE; sets M.
master_up() {
    RUN=$((RUN + 1))
    "$BIN/quern-master" --listen "$EP" --http off --heartbeat-ms 200 \
        --dead-ms 4000 --state-dir "$STATE" >>"$T/master$RUN.log" 2>&1 &
    M=$!
    PIDS+=($M)
}

# master_kill: SIGKILL, as a crash would.
master_kill() {
    kill -9 "$M"
    forget_pid "$M"
}

# wait_notices PHASE N: reads notices on fd 5 until the Nth of PHASE.
wait_notices() {
    local want=$1 n=$2 seen=0 phase pid
    while [ $seen -lt "$n" ]; do
        read -r -t 30 phase pid <&5 || fail "only $seen $want attempts started"
        [ "$phase" = "$want" ] && seen=$((seen + 1))
    done
}

master_up
start_workers 2 --slots 2
# 8 maps of about 900 lines at 2 ms a line (about 2 s each), 4 at once.
gen "$T/in" 320K 8
open_notify
timeout 120 "$QUERN" submit --master "$EP" --job "$TJOBS/faulty.so" \
    --input "$T/in" --output "$T/out" --split-size 40K -R 2 --no-speculation \
    --arg sleep_ms=2 --arg reduce_sleep_ms=0 --arg "notify=$T/notify" \
    --wait >"$T/submit.log" 2>"$T/follow.log" &
SUB=$!

# The fifth map starts when the first is done: the master dies with maps
# done and maps running.
wait_notices map 5
master_kill
sleep 2 # the restart the measure asks for: 2 s later
master_up
# In the reduce phase, killed again.
wait_notices reduce 1
master_kill
sleep 1
master_up

rc=0
wait "$SUB" || rc=$?
[ $rc = 0 ] || fail "the job did not succeed across restarts (exit $rc): $(cat "$T/follow.log")"
ID=$(head -n 1 "$T/submit.log")
check_wordcount "$T/out" 2 "$T"/in/*
grep -q "is back; following $ID" "$T/follow.log" ||
    fail "the client did not say the master is back: $(cat "$T/follow.log")"

# Attempts running at the kill were adopted, and no done map ran again.
adopted=$(cat "$T"/master[23].log | grep -c "adopted after the restart" || true)
[ "$adopted" -ge 1 ] || fail "no attempt was adopted after the restarts"
# (A map not yet done may start again: its assignment can die with the
# master. A done one must not: its output would be "lost".)
if grep -h "map task [0-9]* runs again: the output" "$T"/master[23].log; then
    fail "a done map ran again after a restart"
fi
grep -q "of master epoch 1 (this is epoch 2)" "$T/master2.log" ||
    fail "no message of the old epoch was refused: $(grep -i epoch "$T/master2.log")"
"$QUERN" status "$ID" --master "$EP" --json >"$T/status.json"
[ "$(jq .counters.maps_rerun "$T/status.json")" = 0 ] || fail "maps ran again: $(jq -c .counters "$T/status.json")"
lines=$(cat "$T"/in/* | wc -l)
[ "$(jq .counters.map_input_records "$T/status.json")" = "$lines" ] ||
    fail "map input counted $(jq .counters.map_input_records "$T/status.json") records for $lines lines"

# History: the finished job is there after one more restart, as it ended.
master_kill
master_up
"$QUERN" jobs --master "$EP" >"$T/jobs.txt" || fail "quern jobs after a restart"
grep -q "$ID.*succeeded" "$T/jobs.txt" || fail "the job is not listed as succeeded: $(cat "$T/jobs.txt")"
"$QUERN" status "$ID" --master "$EP" --json >"$T/status2.json"
[ "$(jq .counters.map_input_records "$T/status2.json")" = "$lines" ] ||
    fail "the job's counters were not kept: $(jq -c .counters "$T/status2.json")"

# One master per state dir: the second one names the first one's pid.
set +e
"$BIN/quern-master" --listen 'tcp://127.0.0.1:*' --http off --state-dir "$STATE" >"$T/second.log" 2>&1
rc=$?
set -e
[ $rc != 0 ] && grep -q "in use by quern-master pid $M" "$T/second.log" ||
    fail "a second master on the state dir was not refused (exit $rc): $(cat "$T/second.log")"

# A damaged state file is refused, naming it and what to do.
master_kill
mkdir "$T/bad"
head -c 8192 /dev/urandom >"$T/bad/state.db"
set +e
"$BIN/quern-master" --listen 'tcp://127.0.0.1:*' --http off --state-dir "$T/bad" >"$T/bad.log" 2>&1
rc=$?
set -e
[ $rc != 0 ] && grep -q "$T/bad/state.db" "$T/bad.log" ||
    fail "a damaged state file was not refused (exit $rc): $(cat "$T/bad.log")"
echo "ok: job $ID went on across two master restarts ($adopted attempts adopted, no done map run again), its history kept"
