#!/usr/bin/env bash
# Damaged copies are found and replaced. (1) Three workers scrub their
# shards at 64 MiB/s; a byte is flipped in one copy on w1: w1 finds it,
# drops it and tells the master, which has a good copy made, so the shard
# has 2 live copies again and the dataset reads back as it was put.
# (2) Scrubbing off (--scrub-rate 0), a byte flipped in every copy w1
# holds: the maps that read them on w1 fail, w1 checks those copies at
# once, drops them, and they are made again from w2's; the word count over
# the dataset is exact.
. "$(dirname "$0")/lib.sh"

start_master --heartbeat-ms 200 --dead-ms 1500 --replica-timeout-ms 3000
q() { timeout 60 "$QUERN" "$@" --master "$MASTER"; }
# flip FILE OFFSET: invert one byte's case bit in place.
flip() {
    python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0x20]))' "$1" "$2"
}
# all_two NAME SECS: every shard of NAME has 2 live copies within SECS.
all_two() {
    local end=$((SECONDS + $2))
    while [ $SECONDS -lt "$end" ]; do
        [ "$(q ls "$1" --json 2>/dev/null | jq '[.shard_list[] | select((.holders | length) != 2)] | length' 2>/dev/null)" = 0 ] && return 0
        sleep 0.2
    done
    return 1
}

# ---- (1) background scrubbing ---------------------------------------------------
for i in 1 2 3; do start_worker "w$i" --data-dir "$T/data$i" --scrub-rate 64; done
joined 3
gen "$T/in" 16M 2
cat "$T"/in/* | md5sum >"$T/want.md5"
q put "$T"/in/* --dataset t --replicas 2 --shard-size 2M 2>"$T/put.err" ||
    fail "put failed: $(cat "$T/put.err")"
victim=$(find "$T/data1/t" -name 'part-*' ! -name '*.meta*' | sort | head -1)
[ -n "$victim" ] || fail "w1 holds no shard of t"
shard=$(basename "$victim")
flip "$victim" 1000
for _ in $(seq 300); do
    grep -q "found its copy of shard t/$shard damaged" "$T/master.log" && break
    sleep 0.1
done
grep -q "found its copy of shard t/$shard damaged" "$T/master.log" ||
    fail "the flipped byte in w1's t/$shard was not found in 30 s"
all_two t 30 || fail "t/$shard did not get its second copy back: $(q ls t)"
q cat t | md5sum >"$T/got.md5"
cmp -s "$T/want.md5" "$T/got.md5" || fail "t does not read back as it was put"
curl -sf "${HTTP}metrics" | grep -qx 'quern_scrub_errors_total 1' ||
    fail "/metrics does not count one scrub error: $(curl -sf "${HTTP}metrics" | grep scrub)"

# ---- (2) a map reads a damaged copy -----------------------------------------
for p in "${PIDS[@]}"; do [ "$p" = "$MASTER_PID" ] || { kill -INT "$p"; forget_pid "$p"; }; done
PIDS=("$MASTER_PID")
start_worker w4 --data-dir "$T/data4" --scrub-rate 0
start_worker w5 --data-dir "$T/data5" --scrub-rate 0
joined 2
q put "$T"/in/* --dataset u --replicas 2 --shard-size 2M 2>"$T/put.err" ||
    fail "put of u failed: $(cat "$T/put.err")"
n=0
for f in $(find "$T/data4/u" -name 'part-*' ! -name '*.meta*'); do
    flip "$f" 77
    n=$((n + 1))
done
[ "$n" -ge 8 ] || fail "w4 holds $n shards of u, not all 8"
before=$(grep -c 'found its copy of shard u/' "$T/master.log" || true)
q submit --job "$JOBS/wordcount.so" --input u --output "$T/out" -R 2 --max-attempts 4 --wait >"$T/job.log" 2>&1 ||
    fail "the word count over damaged copies failed: $(cat "$T/job.log")"
check_wordcount "$T/out" 2 "$T"/in/*
found=$(grep -c 'found its copy of shard u/' "$T/master.log" || true)
[ "$found" -gt "$before" ] || fail "no map's damaged copy was reported"
all_two u 30 || fail "u's dropped copies were not made again: $(q ls u)"
echo "ok: scrubbing found a flipped byte in t/$shard and it was copied again; maps that read $found damaged copies of u had them replaced; word count exact"
