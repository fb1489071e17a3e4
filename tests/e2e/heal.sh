#!/usr/bin/env bash
# Datasets that heal. Five workers hold a 120 MiB dataset of 8 MiB shards
# with 2 copies each. One holder is killed with SIGKILL: once it has been
# gone --replica-timeout-ms (3 s here), the master has every shard it held
# copied from the other holder to a worker without one, and within 60 s of
# its death every shard has 2 live copies again. A second worker is then
# killed, and a word count over the dataset is exact. A third is drained
# while a job runs (quern drain --wait): it then holds no shard, every
# shard has 2 live copies, the job is exact. The first two workers come
# back with their copies: the surplus is dropped, and every shard ends
# with exactly 2 live copies.
. "$(dirname "$0")/lib.sh"

start_master --heartbeat-ms 200 --dead-ms 1500 --replica-timeout-ms 3000
q() { timeout 20 "$QUERN" "$@" --master "$MASTER"; }
W=()
for i in 1 2 3 4 5; do
    start_worker "w$i" --data-dir "$T/data$i"
    W+=("${PIDS[-1]}")
done
joined 5
gen "$T/in" 120M 4
q put "$T"/in/* --dataset t --replicas 2 --shard-size 8M 2>"$T/put.err" ||
    fail "put failed: $(cat "$T/put.err")"
q ls t --json >"$T/ls0.json"
shards=$(jq '.shards' "$T/ls0.json")
[ "$shards" -ge 14 ] || fail "expected 15 shards of 8 MiB, got $shards"

# copies: the live copies of each shard, one line "index count" each.
copies() { q ls t --json | jq -r '.shard_list[] | "\(.index) \(.holders | length)"'; }
# all_at N SECS: every shard has N live copies within SECS seconds.
all_at() {
    local end=$((SECONDS + $2))
    while [ $SECONDS -lt "$end" ]; do
        if copies >"$T/copies" 2>/dev/null &&
            [ "$(wc -l <"$T/copies")" = "$shards" ] &&
            ! awk -v n="$1" '$2 != n { bad = 1 } END { exit !bad }' "$T/copies"; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# The first worker holding a shard is the victim.
victim=""
for i in 1 2 3 4 5; do
    n=$(find "$T/data$i/t" -name 'part-*' ! -name '*.meta*' 2>/dev/null | wc -l)
    if [ "$n" -gt 0 ]; then
        victim=$i
        break
    fi
done
[ -n "$victim" ] || fail "no worker holds a shard of t"
held=$(find "$T/data$victim/t" -name 'part-*' ! -name '*.meta*' | wc -l)
kill -9 "${W[$((victim - 1))]}"
forget_pid "${W[$((victim - 1))]}"
killed_at=$SECONDS
# dead N: the master counts N dead workers (within 20 s).
dead() {
    for _ in $(seq 200); do
        [ "$(q workers --json 2>/dev/null | jq '[.[] | select(.alive | not)] | length' 2>/dev/null)" = "$1" ] && return 0
        sleep 0.1
    done
    fail "the master does not count $1 dead workers"
}
dead 1
# Its copies are not live any more: some shards have 1, and ls says so.
copies >"$T/copies"
grep -q ' 1$' "$T/copies" || fail "no shard lost a copy with worker $victim"
short=$(q ls t --json | jq .under_replicated)
[ "$short" = "$held" ] || fail "ls counts $short shards short of copies, $held were on the dead worker"
q ls | grep -Eq "^t +$shards +[0-9.]+ [KMG]iB +1 +$held +complete" ||
    fail "ls does not show t with $held shards short: $(q ls)"
all_at 2 60 || fail "60 s after worker $victim died, not every shard has 2 live copies: $(cat "$T/copies" | tr '\n' ' ')"
took=$((SECONDS - killed_at))
grep -q 'replica_made\|has a new copy of shard t/part-' "$T/master.log" ||
    fail "the master logged no copy made"
made=$(grep -c 'has a new copy of shard t/part-' "$T/master.log")
[ "$made" -ge "$held" ] || fail "$held shards were on the dead worker, $made copies made"

curl -sf "${HTTP}metrics" >"$T/metrics" || fail "no /metrics"
bytes=$(awk '$1 == "quern_replica_bytes_total" { print $2 }' "$T/metrics")
[ "${bytes:-0}" -ge $((held * 8000000)) ] ||
    fail "/metrics counts $bytes bytes re-replicated for $held shards of 8 MiB"
[ "$(q ls t --json | jq .under_replicated)" = 0 ] || fail "ls still counts shards short of copies"
curl -sf "${HTTP}api/v1/cluster" >"$T/cluster.json" || fail "no /api/v1/cluster"
jq -e --argjson b "$bytes" '.replicas.bytes_copied == $b and .replicas.shards_under_replicated == 0
    and .replicas.copies_made >= 1' "$T/cluster.json" >/dev/null ||
    fail "the page's JSON does not show the copies made: $(jq -c .replicas "$T/cluster.json")"
grep -qx 'quern_shards_under_replicated 0' "$T/metrics" ||
    fail "/metrics still counts shards under-replicated: $(grep under_repl "$T/metrics")"

# A second worker dies: each shard still has a live copy.
second=""
for i in 1 2 3 4 5; do
    [ "$i" = "$victim" ] && continue
    second=$i
    break
done
kill -9 "${W[$((second - 1))]}"
forget_pid "${W[$((second - 1))]}"
q submit --job "$JOBS/wordcount.so" --input t --output "$T/out" -R 3 --wait >"$T/job.log" 2>&1 ||
    fail "the word count after two workers died failed: $(cat "$T/job.log")"
check_wordcount "$T/out" 3 "$T"/in/*

# A third worker is drained while a job runs: `drain --wait` returns 0,
# the worker then holds no shard, every shard has 2 live copies (on the
# two others), and the job is exact.
third=""
for i in 1 2 3 4 5; do
    [ "$i" = "$victim" ] || [ "$i" = "$second" ] && continue
    if [ "$(shards_in "$i" t)" -gt 0 ]; then
        third=$i
        break
    fi
done
[ -n "$third" ] || fail "no third worker holds a shard"
tid=$(worker_id_of "${W[$((third - 1))]}")
q submit --job "$JOBS/wordcount.so" --input t --output "$T/out3" -R 3 --wait >"$T/job3.log" 2>&1 &
job3=$!
timeout 120 "$QUERN" drain "$tid" --wait --master "$MASTER" >"$T/drain.out" 2>"$T/drain.err" ||
    fail "drain --wait of $tid failed: $(cat "$T/drain.out" "$T/drain.err")"
wait "$job3" || fail "the word count during the drain failed: $(cat "$T/job3.log")"
check_wordcount "$T/out3" 3 "$T"/in/*
[ "$(shards_in "$third" t)" = 0 ] || fail "the drained $tid still holds $(shards_in "$third" t) shards"
all_at 2 10 || fail "after the drain, not every shard has 2 live copies: $(tr '\n' ' ' <"$T/copies")"
q undrain "$tid" >/dev/null || fail "undrain of $tid failed"

# Both come back with their copies: surplus copies are dropped, never
# below 2, and every shard ends with exactly 2.
start_worker "w$victim" --data-dir "$T/data$victim"
start_worker "w$second" --data-dir "$T/data$second"
# Once they are back, their hellos have listed their copies.
joined 5
all_at 2 60 || fail "the returned workers' surplus copies were not dropped: $(cat "$T/copies" | tr '\n' ' ')"
grep -q 'drops its copy of shard t/part-' "$T/master.log" ||
    fail "no surplus copy was dropped"
if grep -Eq '\([1-9][0-9]* have none\)' "$T/master.log"; then
    fail "a shard lost its last copy: $(grep -E 'have none' "$T/master.log" | head -3)"
fi
echo "ok: $held shards of a dead worker copied again in ${took} s ($made copies), word count exact after a second death and during a third's drain, surplus dropped on return"
