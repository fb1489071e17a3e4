#!/usr/bin/env bash
# A worker back after --dead-ms: the master had given it up and its maps
# run again, but the outputs it offers are taken back for the maps not
# made again yet. A worker stopped with SIGINT tells the master it is
# leaving: its running attempt runs elsewhere at once, long before
# --dead-ms, and started again it offers the outputs it kept.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 100 --dead-ms 1000 --task-timeout-ms 20000
start_workers 2 --slots 2
gen "$T/in" 64K 2
open_notify
counter() { jq -r --arg c "$2" '.counters[$c] // 0' "$1"; }
# alive ID: is worker ID alive, as the master lists it?
alive() {
    "$QUERN" workers --master "$MASTER" --json |
        jq -e --arg id "$1" 'any(.[]; .id == $id and .alive)' >/dev/null
}
worker_id() { sed -n 's/.*worker \(w-[^:]*\): joined.*/\1/p' "$T/$1.log" | head -n 1; }

# ---- back after --dead-ms ---------------------------------------------------
# 8 maps of about 100 records at 20 ms each: 2 s a map, so the maps run
# again one at a time (the other slot holds a reduce) far slower than the
# worker comes back.
submit_faulty --input "$T/in" --output "$T/out" --split-size 8K -R 2 \
    --arg sleep_ms=20 --arg reduce_sleep_ms=1 --arg "notify=$T/notify"
end=$((SECONDS + 60))
while [ $SECONDS -lt $end ]; do
    read -r -t 60 phase pid <&5 || fail "no reduce started"
    [ "$phase" = reduce ] && break
done
victim=${W[0]}
id=$(worker_id w1)
[ -n "$id" ] || fail "w1 never joined"
n=$(ls "$T/w1"/jobs/*/map-*/tmp/output.ifile 2>/dev/null | wc -l)
[ "$n" -ge 1 ] || fail "w1 holds no map output"
kill -9 "$victim"
forget_pid "$victim"
end=$((SECONDS + 10))
while alive "$id" && [ $SECONDS -lt $end ]; do sleep 0.1; done
alive "$id" && fail "the master did not give w1 up after --dead-ms"
start_worker w1
W[0]=${PIDS[-1]}
job_succeeds
check_wordcount "$T/out" 2 "$T"/in/*
taken=$(sed -n "s/.*worker $id offers [0-9]* map outputs: \([0-9]*\) taken back.*/\1/p" "$T/master.log" | tail -n 1)
[ -n "$taken" ] && [ "$taken" -ge 1 ] ||
    fail "none of the $n outputs w1 kept was taken back: $(grep -E 'offers|taken back' "$T/master.log")"
grep -q "map task [0-9]*: the output of attempt [0-9]* is on worker $id again; taken back" "$T/master.log" ||
    fail "no map_taken_back event"
echo "ok: w1, back after --dead-ms with $n map outputs, had $taken of them taken back"

# ---- SIGINT: leaving ---------------------------------------------------------
# A master that gives silent workers up only after 30 s, and two workers.
while read -r -t 0.2 _ _ <&5; do :; done
MASTER_LOG=master2 start_master --heartbeat-ms 100 --dead-ms 30000 --task-timeout-ms 30000
start_worker w3 --slots 2
start_worker w4 --slots 2
W=("${PIDS[-2]}" "${PIDS[-1]}")
# 4 maps of about 250 records at 8 ms each: 2 s a map.
start=$(date +%s%3N)
submit_faulty --input "$T/in" --output "$T/out2" --split-size 16K -R 2 \
    --arg sleep_ms=8 --arg "notify=$T/notify"
read -r -t 30 phase pid <&5 || fail "no map started"
leaver=$(ppid_of "$pid")
name=
[ "$leaver" = "${W[0]}" ] && name=w3
[ "$leaver" = "${W[1]}" ] && name=w4
[ -n "$name" ] || fail "map $pid runs under $leaver, not a worker"
id=$(worker_id "$name")
kill -INT "$leaver"
timeout 10 tail --pid="$leaver" -f /dev/null || fail "$name did not stop on SIGINT"
forget_pid "$leaver"
grep -q "worker $id left: it is stopping" "$T/master2.log" ||
    fail "the master did not hear $name leave: $(tail -n 5 "$T/master2.log")"
# Back again (the master counts it gone): what it kept is offered.
start_worker "$name"
job_succeeds
took=$(($(date +%s%3N) - start))
check_wordcount "$T/out2" 2 "$T"/in/*
[ "$took" -lt 15000 ] || fail "the job took $took ms: the attempt of the worker that left waited for --dead-ms (30 s)"
grep -q "worker $id: started again on $T/$name (incarnation [0-9]*)" "$T/$name.log" ||
    fail "$name did not come back as itself: $(tail -n 3 "$T/$name.log")"
"$QUERN" status "$ID" --master "$MASTER" --json >"$T/status2.json"
jq -e '[.failures[] | select(.reason | contains("was lost"))] | length >= 1' "$T/status2.json" >/dev/null ||
    fail "no attempt was lost with the worker that left: $(jq -c .failures "$T/status2.json")"
echo "ok: $name left on SIGINT; the job went on at once and finished in $took ms"
