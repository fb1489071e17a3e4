#!/usr/bin/env bash
# quern drain and undrain. Five workers hold a dataset of 12 shards with 2
# copies each, and a slow job runs. The worker running one of its maps is
# drained with --wait: it takes no new attempt; its map finishes there,
# and its output, which the job's reduces need, is served from it until
# the job is done (no map runs again); its shards are copied to other
# workers first, then dropped. `drain --wait` returns 0 only then: the job
# has succeeded and is exact, the worker holds no shard, every shard has
# 2 live copies. A job run while it is drained runs nothing there.
# Undrained, it takes attempts again.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 200 --dead-ms 5000
q() { timeout 20 "$QUERN" "$@" --master "$MASTER"; }
W=()
for i in 1 2 3 4 5; do
    start_worker "w$i" --slots 2 --data-dir "$T/data$i"
    W+=("${PIDS[-1]}")
done
joined 5
gen "$T/d" 24M 2 7
q put "$T"/d/* --dataset t --replicas 2 --shard-size 2M 2>"$T/put.err" ||
    fail "put failed: $(cat "$T/put.err")"
shards=$(q ls t --json | jq '.shards')
[ "$shards" -ge 10 ] || fail "expected 12 shards of 2 MiB, got $shards"
# copies: "index live-copies" for each shard of t.
copies() { q ls t --json | jq -r '.shard_list[] | "\(.index) \(.holders | length)"'; }
state_of() { worker_state "$1"; }
held_by() { shards_in "$1" t; }

# 4 maps of about 250 records at 8 ms each: 2 s a map.
gen "$T/in" 64K 4
open_notify
submit_faulty --input "$T/in" --output "$T/out" --split-size 16K -R 2 \
    --arg sleep_ms=8 --arg "notify=$T/notify"
map_on_holder t
victim=$VICTIM n=$VN
vid=$(worker_id_of "$victim")
[ -n "$vid" ] || fail "the master does not list worker pid $victim"
held=$(held_by "$n")

timeout 60 "$QUERN" drain "$vid" --wait --master "$MASTER" >"$T/drain.out" 2>"$T/drain.err" &
drain=$!
# While it drains, quern workers says so and what it waits for.
for _ in $(seq 100); do
    [ "$(state_of "$vid")" = draining ] && break
    sleep 0.05
done
q workers --json >"$T/workers1.json"
jq -e --arg id "$vid" '.[] | select(.id == $id) | .state == "draining" and
    (.drain_waits | test("attempt|map output|shard"))' "$T/workers1.json" >/dev/null ||
    fail "quern workers does not show $vid draining: $(jq -c --arg id "$vid" '.[] | select(.id == $id)' "$T/workers1.json")"
q workers | grep -A1 "^$vid " | grep -q "draining: waits for" ||
    fail "quern workers does not say what $vid waits for: $(q workers)"

rc=0
wait "$drain" || rc=$?
[ $rc = 0 ] || fail "quern drain --wait exited $rc: $(cat "$T/drain.err")"
grep -q "worker $vid is drained" "$T/drain.out" || fail "drain said: $(cat "$T/drain.out")"
# Its map output was needed until the reduces were done: the job is over.
[ "$(state_of "$vid")" = drained ] || fail "$vid is $(state_of "$vid") after drain --wait"
kill -0 "$SUB" 2>/dev/null && { wait "$SUB" || true; fail "drain --wait returned before the job that needed $vid's map output ended"; }
job_succeeds
check_wordcount "$T/out" 2 "$T"/in/*
q status "$ID" --json >"$T/status.json"
jq -e '(.counters.maps_rerun // 0) == 0' "$T/status.json" >/dev/null ||
    fail "maps ran again although $vid served its output: $(jq -c .counters "$T/status.json")"
# Its shards went elsewhere first: it holds none, every shard has 2.
[ "$(held_by "$n")" = 0 ] || fail "$vid still holds $(held_by "$n") shard files"
copies >"$T/copies"
[ "$(wc -l <"$T/copies")" = "$shards" ] || fail "ls lists $(wc -l <"$T/copies") shards of $shards"
awk '$2 != 2 { bad = 1 } END { exit bad }' "$T/copies" ||
    fail "not every shard has 2 live copies: $(tr '\n' ' ' <"$T/copies")"
q ls t --json | jq -e --arg id "$vid" '[.shard_list[].holders[] | select(. == $id)] | length == 0' >/dev/null ||
    fail "ls still names $vid a holder"
curl -sf "${HTTP}metrics" | grep -qx 'quern_workers{state="drained"} 1' ||
    fail "/metrics does not count the drained worker: $(curl -sf "${HTTP}metrics" | grep quern_workers)"
curl -sf "${HTTP}api/v1/cluster" | jq -e '.workers.drained == 1 and .workers.draining == 0' >/dev/null ||
    fail "/api/v1/cluster does not count the drained worker"
grep -q "worker $vid is draining" "$T/master.log" || fail "no worker_draining event"
grep -q "worker $vid is drained" "$T/master.log" || fail "no worker_drained event"

# Drained, it runs nothing: a word count of t runs on the other four.
q submit --job "$JOBS/wordcount.so" --input t --output "$T/out2" -R 3 --wait >"$T/job2.log" 2>&1 ||
    fail "the word count of t failed: $(cat "$T/job2.log")"
check_wordcount "$T/out2" 3 "$T"/d/*
ID2=$(head -n 1 "$T/job2.log")
q status "$ID2" --tasks --json >"$T/tasks2.json"
jq -e --arg id "$vid" '[.tasks[] | select(.worker == $id)] | length == 0' "$T/tasks2.json" >/dev/null ||
    fail "the drained worker $vid ran tasks of $ID2"

# A drain a client asked for stays when the worker restarts.
kill -INT "$victim"
forget_pid "$victim"
start_worker "w$n" --slots 2 --data-dir "$T/data$n"
for _ in $(seq 100); do
    grep -q "it stays draining" "$T/master.log" && break
    sleep 0.1
done
st=$(worker_state "$vid")
[ "$st" = drained ] || [ "$st" = draining ] || fail "$vid started again is $st, not draining"

# Undrained: it is back, and takes attempts (10 maps, 10 slots).
q undrain "$vid" >"$T/undrain.out" || fail "undrain failed"
[ "$(state_of "$vid")" = active ] || fail "$vid is $(state_of "$vid") after undrain"
gen "$T/in3" 40K 10 3
submit_faulty --input "$T/in3" --output "$T/out3" --split-size 8K -R 1 --arg sleep_ms=4
job_succeeds
check_wordcount "$T/out3" 1 "$T"/in3/*
q status "$ID" --tasks --json >"$T/tasks3.json"
jq -e --arg id "$vid" '[.tasks[] | select(.worker == $id)] | length >= 1' "$T/tasks3.json" >/dev/null ||
    fail "the undrained worker $vid ran none of $ID's tasks"
grep -q "worker $vid is back in service" "$T/master.log" || fail "no worker_undrained event"

# Errors name the bad thing.
rc=0
q drain w-nope >"$T/nope.out" 2>&1 || rc=$?
[ $rc = 2 ] || fail "drain of an unknown worker exited $rc"
grep -q "no worker w-nope" "$T/nope.out" || fail "drain of an unknown worker said: $(cat "$T/nope.out")"
echo "ok: $vid drained while a job ran ($held shards moved, its map output served, 0 maps re-run), ran nothing while drained, took work again once undrained"
