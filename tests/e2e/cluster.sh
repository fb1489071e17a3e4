#!/usr/bin/env bash
# Datasets on a cluster with no shared data: a master and four worker hosts,
# each in its own network namespace (deploy/netns-cluster.sh). Word count on
# a dataset put with two replicas (mostly data-local maps), a worker host cut
# off mid-job and let back in, every holder of a shard stopped.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "needs root for network namespaces"
NETNS=$(cd "$(dirname "$0")/../../deploy" && pwd)/netns-cluster.sh
NAME=qc$(($$ % 100000))
CDIR=$T/cluster
export QUERN_BIN=$BIN
# Fast failure detection, so the test does not wait long for it.
export MASTER_ARGS="--heartbeat-ms 300 --dead-ms 2000 --shard-wait-ms 3000 --locality-wait-ms 1000"

down() { "$NETNS" down --name "$NAME" >/dev/null 2>&1 || true; }
trap 'rc=$?; down; (exit $rc); cleanup' EXIT
nc() { "$NETNS" --name "$NAME" "$@"; }
q() { nc exec client "$QUERN" "$@"; }

nc up 4 --dir "$CDIR" >"$T/up.log" 2>&1 || { cat "$T/up.log"; fail "cluster did not come up"; }
cp "$CDIR"/*.log "$T/" 2>/dev/null || true

# ---- put, word count, data locality ------------------------------------------
gen "$T/in" 24M 6
q put "$T"/in/* --dataset words --replicas 2 --shard-size 2M 2>"$T/put.err" ||
    { cat "$T/put.err"; fail "put failed"; }
q ls words --json >"$T/ls.json"
shards=$(jq '.shards' "$T/ls.json")
[ "$shards" -ge 10 ] || fail "expected about 12 shards, got $shards"
[ "$(jq '[.shard_list[] | (.holders | length)] | min' "$T/ls.json")" = 2 ] ||
    fail "a shard has fewer than 2 copies: $(cat "$T/ls.json")"
# Every replica on distinct workers.
[ "$(jq '[.shard_list[] | (.holders | unique | length)] | min' "$T/ls.json")" = 2 ] ||
    fail "two copies of a shard on one worker"
# quern cat gives back the input, in order.
q cat words | cmp - <(cat "$T"/in/*) || fail "quern cat differs from the input"

q submit --job "$JOBS/wordcount.so" --input words --output counts -R 2 --wait --json \
    >"$T/job1.json" 2>"$T/job1.err" || { cat "$T/job1.err"; fail "word count on a dataset failed"; }
# submit prints the job id, then (with --wait --json) the result.
tail -n +2 "$T/job1.json" >"$T/res1.json"
local_maps=$(jq '.counters.data_local_maps' "$T/res1.json")
remote_maps=$(jq '.counters.remote_maps' "$T/res1.json")
echo "word count: $local_maps data-local maps, $remote_maps remote"
[ $((local_maps + remote_maps)) -eq "$shards" ] || fail "maps: $local_maps + $remote_maps != $shards"
[ $((local_maps * 4)) -ge $((shards * 3)) ] || fail "only $local_maps of $shards maps were data-local"
wordcount_ref "$T"/in/* >"$T/ref"
q cat counts | sort | cmp - "$T/ref" || fail "word count output differs from sort | uniq -c"
[ "$(q ls counts --json | jq '.replicas')" -ge 2 ] || fail "output shards have fewer than 2 copies"
# A job whose output dataset is already there is refused, and runs nothing.
rc=0
q submit --job "$JOBS/wordcount.so" --input words --output counts -R 2 >"$T/again.out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q '^quern: the master refused the job: dataset counts exists; quern rm counts first or choose another name$' "$T/again.out" ||
    fail "a job writing over dataset counts: exit $rc: $(cat "$T/again.out")"
[ "$(q jobs --json | jq length)" = 1 ] || fail "the refused job was taken: $(q jobs)"

# ---- a worker host cut off mid-job -------------------------------------------
# A slow job: 12 small shards, 5 ms per record.
awk 'BEGIN { for (i = 0; i < 6000; i++) printf "w%d x%d y\n", i % 97, i % 13 }' >"$T/slow.txt"
q put "$T/slow.txt" --dataset slow --replicas 2 --shard-size 5K 2>/dev/null || fail "put slow failed"
wordcount_ref "$T/slow.txt" >"$T/slow.ref"
q submit --job "$TJOBS/faulty.so" --arg sleep_ms=3 --input slow --output slowout -R 2 \
    --wait --json >"$T/job2.json" 2>"$T/job2.err" &
SUB=$!
# Cut w2 once the job has done some maps.
for _ in $(seq 1 200); do
    done_maps=$(q jobs --json 2>/dev/null | jq '[.[] | select(.state == "running") | .maps_done] | max // 0')
    [ "${done_maps:-0}" -ge 2 ] && break
    timeout 0.1 tail -f /dev/null || true
done
nc cut w2
timeout 120 tail --pid=$SUB -f /dev/null || fail "the job did not end after w2 was cut"
wait $SUB || { cat "$T/job2.err"; fail "the job failed after w2 was cut"; }
q cat slowout | sort | cmp - "$T/slow.ref" || fail "output after the cut differs"
q workers --json | jq -e '[.[] | select(.alive == false)] | length >= 1' >/dev/null ||
    fail "the cut worker was not declared dead"
nc restore w2
ok=0
for _ in $(seq 1 100); do
    if [ "$(q workers --json | jq '[.[] | select(.alive)] | length')" -ge 4 ]; then ok=1; break; fi
    timeout 0.2 tail -f /dev/null || true
done
[ $ok = 1 ] || fail "w2 did not rejoin after its network came back"

# ---- every holder of a shard stopped -------------------------------------------
holders=$(q ls words --json | jq -r '.shard_list[0].holders[]')
for h in $holders; do
    host=$(q workers --json | jq -r --arg id "$h" '[.[] | select(.id == $id and .alive)][0].shuffle_endpoint' |
        sed 's|tcp://[0-9]*\.[0-9]*\.[0-9]*\.\([0-9]*\):.*|\1|')
    [ -n "$host" ] || fail "no live worker $h"
    nc stop "w$((host - 10))" --now
done
rc=0
q submit --job "$JOBS/wordcount.so" --input words --output never -R 1 --wait \
    >"$T/job3.out" 2>"$T/job3.err" || rc=$?
[ $rc = 1 ] || fail "a job without any holder of a shard: exit $rc, expected 1"
# It names a shard whose every holder is stopped (part-00000, or another
# that happens to live on the same two workers).
named=$(grep -ho "no live worker holds words/part-[0-9]*" "$T/job3.out" "$T/job3.err" |
    head -n 1 | sed 's|.*part-0*\([0-9][0-9]*\)$|\1|; s|.*part-0*$|0|')
[ -n "$named" ] || fail "the failure does not name a shard: $(cat "$T/job3.out" "$T/job3.err")"
for h in $(jq -r --argjson i "$named" '.shard_list[$i].holders[]' "$T/ls.json"); do
    echo "$holders" | grep -qx "$h" || fail "shard $named named, but its holder $h was not stopped"
done
q ls | grep -q '^never ' && fail "the failed job left its output dataset behind"
echo "cluster: put, word count, cut/restore and lost shard all behaved"
