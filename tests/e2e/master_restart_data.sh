#!/usr/bin/env bash
# Datasets across a master restart (--state-dir): a dataset put before the
# restart is listed after it with its shards and copies (the workers say
# again what they hold), a word count over it runs, and a dataset removed
# before the restart stays removed: a copy a worker still holds is
# deleted, not taken back.
. "$(dirname "$0")/lib.sh"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
EP=tcp://127.0.0.1:$port
MASTER=$EP
up() {
    "$BIN/quern-master" --listen "$EP" --http off --heartbeat-ms 200 --dead-ms 4000 \
        --state-dir "$T/state" >>"$T/master.log" 2>&1 &
    M=$!
    PIDS+=($M)
}
q() { timeout 20 "$QUERN" "$@" --master "$EP"; }

up
for i in 1 2; do start_worker "d$i" --data-dir "$T/data$i"; done
joined 2
gen "$T/in" 400K 4
q put "$T"/in/* --dataset words --replicas 2 --shard-size 64K 2>"$T/put.err" ||
    fail "put failed: $(cat "$T/put.err")"
q put "$T/in/$(ls "$T/in" | head -1)" --dataset gone --replicas 2 2>>"$T/put.err" ||
    fail "put of gone failed: $(cat "$T/put.err")"
shards=$(q ls words --json | jq '.shards')
# The workers are stopped meanwhile, so their copies of "gone" outlive
# its removal: they come back holding it.
for p in "${PIDS[@]}"; do [ "$p" = "$M" ] || { kill -INT "$p"; forget_pid "$p"; }; done
q rm gone >/dev/null || fail "rm gone failed"
kill -9 "$M"
forget_pid "$M"
up
for i in 1 2; do start_worker "d$i" --data-dir "$T/data$i"; done
# The workers tell what they hold as they join.
for _ in $(seq 100); do
    [ "$(q ls words --json 2>/dev/null | jq '.replicas' 2>/dev/null)" = 2 ] && break
    sleep 0.1
done
q ls words --json >"$T/ls.json"
[ "$(jq '.shards' "$T/ls.json")" = "$shards" ] && [ "$(jq '.replicas' "$T/ls.json")" = 2 ] ||
    fail "words after the restart: $(cat "$T/ls.json"), had $shards shards"
if q ls gone >/dev/null 2>&1; then fail "a dataset removed before the restart is back"; fi
for _ in $(seq 100); do
    [ -z "$(find "$T"/data1 "$T"/data2 -path '*gone*' -type f 2>/dev/null)" ] && break
    sleep 0.1
done
[ -z "$(find "$T"/data1 "$T"/data2 -path '*gone*' -type f 2>/dev/null)" ] ||
    fail "copies of the removed dataset were kept: $(find "$T"/data1 "$T"/data2 -path '*gone*')"
q submit --job "$JOBS/wordcount.so" --input words --output "$T/out" -R 2 --wait >"$T/job.log" 2>&1 ||
    fail "the word count over words failed: $(cat "$T/job.log")"
check_wordcount "$T/out" 2 "$T"/in/*
echo "ok: datasets kept across a master restart ($shards shards of words, gone stays gone)"
