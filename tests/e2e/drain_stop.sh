#!/usr/bin/env bash
# A drain's deadline, and SIGTERM. Four workers hold a dataset with 2
# copies. A worker running a slow map is drained with --deadline-ms 1000
# and told to stop (SIGTERM): a second later its attempt is killed and
# runs elsewhere (a loss, not a failure), the job is exact, and the worker
# stops once drained. Then a worker holding shards gets
# SIGTERM: it asks the master to drain it, its shards are copied to the
# others first, and it exits 0 once drained, long before its
# --stop-timeout-ms; every shard still has 2 live copies. Started again,
# it is back in service.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 200 --dead-ms 5000
q() { timeout 20 "$QUERN" "$@" --master "$MASTER"; }
W=()
for i in 1 2 3 4; do
    start_worker "w$i" --data-dir "$T/data$i" --stop-timeout-ms 60000
    W+=("${PIDS[-1]}")
done
joined 4
gen "$T/d" 12M 2 5
q put "$T"/d/* --dataset t --replicas 2 --shard-size 1M 2>"$T/put.err" ||
    fail "put failed: $(cat "$T/put.err")"
shards=$(q ls t --json | jq '.shards')
held_by() { shards_in "$1" t; }
all_two() {
    q ls t --json | jq -e --argjson n "$shards" \
        '[.shard_list[] | select((.holders | length) == 2)] | length == $n' >/dev/null
}

# ---- the deadline -----------------------------------------------------------
# 2 maps of about 500 records at 10 ms each: 5 s a map.
gen "$T/in" 64K 2
open_notify
submit_faulty --input "$T/in" --output "$T/out" --split-size 32K -R 1 \
    --arg sleep_ms=10 --arg "notify=$T/notify"
read -r -t 30 phase pid <&5 || fail "no map started"
[ "$phase" = map ] || fail "a $phase started first"
victim=$(ppid_of "$pid")
vid=$(worker_id_of "$victim")
[ -n "$vid" ] || fail "map $pid runs under $victim, which the master does not list"
start=$SECONDS
q drain "$vid" --deadline-ms 1000 >"$T/drain1.out" || fail "drain failed: $(cat "$T/drain1.out")"
grep -q "worker $vid is draining" "$T/drain1.out" || fail "drain said: $(cat "$T/drain1.out")"
# Told to stop while it drains: it stops once drained (the client's
# earlier deadline stands).
kill -TERM "$victim"
timeout 10 tail --pid="$pid" -f /dev/null || fail "the attempt $pid still runs 10 s after its worker's drain deadline"
moved=$((SECONDS - start))
[ "$moved" -lt 5 ] || fail "the attempt ran on to its end ($moved s), not to the deadline"
job_succeeds
check_wordcount "$T/out" 1 "$T"/in/*
grep -q "worker $vid is draining and its deadline passed: its 1 running attempt run elsewhere" "$T/master.log" ||
    fail "no drain_deadline event: $(grep -i drain "$T/master.log" | tail -3)"
q status "$ID" --json >"$T/status.json"
jq -e '[.failures[] | select(.reason | contains("is draining and its deadline passed"))] | length == 1' "$T/status.json" >/dev/null ||
    fail "the attempt moved by the deadline is not told: $(jq -c .failures "$T/status.json")"
q status "$ID" --tasks --json >"$T/tasks.json"
jq -e --arg id "$vid" '[.tasks[] | select(.worker == $id)] | length == 0' "$T/tasks.json" >/dev/null ||
    fail "a task's output stayed on the draining $vid: $(jq -c '[.tasks[] | {task, worker}]' "$T/tasks.json")"
timeout 30 tail --pid="$victim" -f /dev/null || fail "$vid, drained by a client and told to stop, did not stop"
st=0
wait "$victim" || st=$?
forget_pid "$victim"
[ $st = 0 ] || fail "$vid exited $st"
vn=
for i in 1 2 3 4; do
    if [ "${W[$((i - 1))]}" = "$victim" ]; then vn=$i; fi
done
grep -q "drained: nothing here is needed any more" "$T/w$vn.log" ||
    fail "$vid stopped without being drained: $(tail -n 3 "$T/w$vn.log")"

# ---- SIGTERM ----------------------------------------------------------------
stopper= n=
for i in 1 2 3 4; do
    [ "${W[$((i - 1))]}" = "$victim" ] && continue
    if [ "$(held_by "$i")" -gt 0 ]; then
        stopper=${W[$((i - 1))]} n=$i
        break
    fi
done
[ -n "$stopper" ] || fail "no other worker holds a shard"
sid=$(worker_id_of "$stopper")
held=$(held_by "$n")
start=$SECONDS
kill -TERM "$stopper"
timeout 30 tail --pid="$stopper" -f /dev/null || fail "$sid did not stop within 30 s of SIGTERM"
took=$((SECONDS - start))
st=0
wait "$stopper" || st=$?
forget_pid "$stopper"
[ $st = 0 ] || fail "$sid exited $st on SIGTERM"
grep -q "drained: nothing here is needed any more" "$T/w$n.log" ||
    fail "$sid stopped without being drained: $(tail -n 3 "$T/w$n.log")"
grep -q "worker $sid is drained" "$T/master.log" || fail "the master did not drain $sid"
grep -q "worker $sid left: it is stopping" "$T/master.log" || fail "the master did not hear $sid leave"
# Copies were made before it left: every shard has 2 live copies at once,
# without waiting for --replica-timeout-ms (10 minutes here).
all_two || fail "after $sid left, not every shard has 2 live copies: $(q ls t)"
q submit --job "$JOBS/wordcount.so" --input t --output "$T/out2" -R 2 --wait >"$T/job2.log" 2>&1 ||
    fail "the word count of t failed: $(cat "$T/job2.log")"
check_wordcount "$T/out2" 2 "$T"/d/*
# Started again on its work dir, it is the same worker, back in service:
# the drain was its old process's.
start_worker "w$n" --data-dir "$T/data$n"
for _ in $(seq 100); do
    [ "$(worker_state "$sid")" = active ] && break
    sleep 0.1
done
[ "$(worker_state "$sid")" = active ] || fail "$sid started again is $(worker_state "$sid"), not active"
echo "ok: the drain deadline moved a running attempt in $moved s; SIGTERM drained $sid ($held shards copied first) and it exited 0 in $took s"
