#!/usr/bin/env bash
# A drain across a master restart (--state-dir). Three workers hold a
# dataset with 2 copies, and a slow job runs. The worker running one of
# its maps is drained, and the master is killed with SIGKILL and started
# again on its state dir (with the default --replica-timeout-ms of 10
# minutes). The restarted master knows the worker is draining: it gives
# it no attempt, copies its shards elsewhere at once (not after the
# timeout), keeps its map output served, and `quern drain --wait` returns
# once the job is done; the job is exact and every shard has 2 copies off
# the drained worker.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MASTER=tcp://127.0.0.1:$port
up() {
    "$BIN/quern-master" --listen "$MASTER" --http off --heartbeat-ms 200 \
        --dead-ms 5000 --state-dir "$T/state" >>"$T/master.log" 2>&1 &
    M=$!
    PIDS+=($M)
}
q() { timeout 20 "$QUERN" "$@" --master "$MASTER"; }
state_of() { worker_state "$1"; }
held_by() { shards_in "$1" t; }

up
W=()
for i in 1 2 3; do
    start_worker "w$i" --slots 2 --data-dir "$T/data$i" --log-level debug
    W+=("${PIDS[-1]}")
done
joined 3
gen "$T/d" 12M 2 9
q put "$T"/d/* --dataset t --replicas 2 --shard-size 1M 2>"$T/put.err" ||
    fail "put failed: $(cat "$T/put.err")"
shards=$(q ls t --json | jq '.shards')

# 4 maps of about 500 records at 8 ms each: 4 s a map, on 6 slots.
gen "$T/in" 128K 4
open_notify
submit_faulty --input "$T/in" --output "$T/out" --split-size 32K -R 2 \
    --arg sleep_ms=8 --arg "notify=$T/notify"
map_on_holder t
victim=$VICTIM n=$VN
vid=$(worker_id_of "$victim")
q drain "$vid" >"$T/drain1.out" || fail "drain failed: $(cat "$T/drain1.out")"
# What its log holds now: it starts no attempt after this.
off=$(stat -c %s "$T/w$n.log")
kill -9 "$M"
forget_pid "$M"
up
restarted=$SECONDS
joined 3
[ "$(state_of "$vid")" = draining ] || [ "$(state_of "$vid")" = drained ] ||
    fail "after the restart $vid is $(state_of "$vid"), not draining"
timeout 60 "$QUERN" drain "$vid" --wait --master "$MASTER" >"$T/drain2.out" 2>"$T/drain2.err" ||
    fail "drain --wait after the restart failed: $(cat "$T/drain2.out" "$T/drain2.err")"
took=$((SECONDS - restarted))
[ "$took" -lt 60 ] || fail "the drain took $took s after the restart"
job_succeeds
check_wordcount "$T/out" 2 "$T"/in/*
[ "$(held_by "$n")" = 0 ] || fail "$vid still holds $(held_by "$n") shard files"
q ls t --json >"$T/ls.json"
jq -e --argjson n "$shards" --arg id "$vid" '[.shard_list[] | select((.holders | length) == 2 and
    (.holders | index($id) | not))] | length == $n' "$T/ls.json" >/dev/null ||
    fail "not every shard has 2 live copies off $vid: $(jq -c '.shard_list' "$T/ls.json")"
# Neither master gave it an attempt once it drained.
if tail -c +$((off + 1)) "$T/w$n.log" | grep -q "started job"; then
    fail "the draining $vid started attempts: $(tail -c +$((off + 1)) "$T/w$n.log" | grep "started job")"
fi
grep -q "the master at $MASTER restarted\|joined the master" "$T/w$n.log" || fail "$vid did not rejoin"
echo "ok: $vid stayed draining across a master restart and was drained $took s after it; no attempt started there, job exact, every shard has 2 copies elsewhere"
