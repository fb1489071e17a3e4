#!/usr/bin/env bash
# make bench-cluster: word count on a dataset with no shared filesystem.
# A master and 4 worker hosts in network namespaces (deploy/netns-cluster.sh);
# BENCH_CLUSTER_SIZE of Zipf text (default 1G) put with 2 replicas in 64 MiB
# shards, then word count on it. Prints the put and job wall times, the
# share of data-local maps, and the bytes that crossed between hosts (the
# hosts' interface counters) for the put and for the job. Root only.
set -euo pipefail
export LC_ALL=C
BUILD=${BUILD:-build}
BIN=$(cd "$BUILD/bin" && pwd)
JOBS=$(cd "$BUILD/jobs" && pwd)
NETNS=$(cd "$(dirname "$0")/../../deploy" && pwd)/netns-cluster.sh
SIZE=${BENCH_CLUSTER_SIZE:-1G}
NAME=qb$(($$ % 100000))
W=$(mktemp -d "${TMPDIR:-/tmp}/quern-bench-cluster-XXXXXX")
export QUERN_BIN=$BIN
cleanup() {
    "$NETNS" down --name "$NAME" >/dev/null 2>&1 || true
    rm -rf "$W"
}
trap cleanup EXIT
nc() { "$NETNS" --name "$NAME" "$@"; }
q() { nc exec client "$BIN/quern" "$@"; }
bridge() { nc bytes --json | jq '.bridge_bytes'; }
now() { date +%s.%N; }

echo "bench-cluster: generating $SIZE of Zipf text"
"$BUILD/tests/gentext" --out "$W/in" --size "$SIZE" --files 16 >/dev/null
nc up 4 --dir "$W/cluster" >"$W/up.log" 2>&1 || { cat "$W/up.log"; exit 1; }

b0=$(bridge); t0=$(now)
q put "$W"/in/* --dataset text --replicas 2 --shard-size 64M
t1=$(now); b1=$(bridge)
q submit --job "$JOBS/wordcount.so" --input text --output counts -R 4 --wait --json \
    >"$W/job.json" 2>"$W/job.err" || { cat "$W/job.err"; exit 1; }
t2=$(now); b2=$(bridge)
tail -n +2 "$W/job.json" >"$W/res.json"
loc=$(jq '.counters.data_local_maps' "$W/res.json")
rem=$(jq '.counters.remote_maps' "$W/res.json")
rb=$(jq '.counters.map_remote_bytes // 0' "$W/res.json")
bk=$(jq '.counters.backup_attempts // 0' "$W/res.json")
sh=$(jq '.counters.shuffle_bytes // .counters.shuffle_stored_bytes // 0' "$W/res.json")
input=$(du -sb "$W/in" | cut -f1)
printf '\ninput: %s bytes in 16 files; 4 worker hosts, 2 replicas, 64 MiB shards\n' "$input"
printf 'put:        %6.1f s   %12d bytes across hosts (%.2fx the input)\n' \
    "$(echo "$t1 - $t0" | bc)" $((b1 - b0)) "$(echo "($b1 - $b0) / $input" | bc -l)"
printf 'word count: %6.1f s   %12d bytes across hosts; map attempts: %d data-local, %d remote (%s%% local), %d of them backups; %d bytes streamed by the attempts whose output counted\n' \
    "$(echo "$t2 - $t1" | bc)" $((b2 - b1)) "$loc" "$rem" "$(echo "100 * $loc / ($loc + $rem)" | bc)" "$bk" "$rb"
grep -E "job-|shuffle:|locality:" "$W/job.err" | head -5 || true
