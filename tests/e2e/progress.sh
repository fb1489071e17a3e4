#!/usr/bin/env bash
# Steady slow work is not a hang: with a task timeout of 1.5 s, a map that
# takes 3 s over its records and a reduce that takes 3 s over the values of
# one key both report progress as they go and finish.
. "$(dirname "$0")/lib.sh"

start_master --task-timeout-ms 1500
start_worker w1
mkdir "$T/in"
for i in $(seq 300); do echo "k k k k k k k k k k"; done >"$T/in/keys.txt"
"$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" --arg sleep_ms=10 \
    --arg reduce_sleep_ms=1 --input "$T/in" --output "$T/out" --max-attempts 1 \
    --wait >"$T/run.log" 2>&1 || fail "slow job failed: $(cat "$T/run.log")"
[ "$(cat "$T/out/part-00000")" = "$(printf 'k\t3000')" ] || fail "wrong output: $(cat "$T/out/part-00000")"
echo "ok: slow map and slow reduce outlive a 1.5 s task timeout"
