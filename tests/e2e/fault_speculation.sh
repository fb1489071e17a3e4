#!/usr/bin/env bash
# Speculative execution. (a) With --no-speculation and no faults, every
# task runs exactly once: map_attempts == maps, reduce_attempts == R,
# backup_attempts == 0. (b) With speculation (the default), a straggler --
# the first attempt of one map, 100 times slower than the rest -- gets a
# backup near the end of the map phase; the backup wins, and the job
# finishes long before the straggler alone would have.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 100 --dead-ms 1500 --task-timeout-ms 60000
for i in 1 2 3; do start_worker "w$i"; done
# 6 maps of about 230 lines.
gen "$T/in" 96K 6
wordcount_ref "$T"/in/* >"$T/want"

check_output() { # OUT
    [ -e "$T/$1/_SUCCESS" ] || fail "no _SUCCESS in $1"
    cat "$T/$1"/part-* | sort >"$T/got"
    cmp -s "$T/got" "$T/want" || fail "$1 differs from the reference: $(diff "$T/want" "$T/got" | head -5)"
}
# counter STATUS-FILE NAME: the counter's value. The master gives every job
# each attempt counter, 0 when nothing happened, so a missing one fails.
counter() {
    jq -e --arg n "$2" '.counters[$n]' "$1" ||
        fail "no counter $2 in the status (it should be there, 0 or not): $(jq -c .counters "$1")"
}

# (a) No faults, no speculation: one attempt per task.
timeout 60 "$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" \
    --input "$T/in" --output "$T/out1" --split-size 16K -R 3 \
    --no-speculation --arg sleep_ms=1 --wait >"$T/a.log" 2>&1 ||
    fail "the job without speculation failed: $(cat "$T/a.log")"
check_output out1
"$QUERN" status "$(head -n 1 "$T/a.log")" --master "$MASTER" --json >"$T/a.json"
maps=$(jq .maps "$T/a.json")
[ "$maps" -ge 6 ] || fail "expected at least 6 maps, got $maps"
ma=$(counter "$T/a.json" map_attempts)
ra=$(counter "$T/a.json" reduce_attempts)
ba=$(counter "$T/a.json" backup_attempts)
[ "$ma" = "$maps" ] || fail "map_attempts $ma for $maps maps without faults or speculation"
[ "$ra" = 3 ] || fail "reduce_attempts $ra for 3 reduces without faults or speculation"
[ "$ba" = 0 ] || fail "backup_attempts $ba with --no-speculation"

# (b) The first attempt of text-002's map sleeps 100 ms a line: about 23 s
# alone. The other maps take a quarter of a second.
mkdir "$T/slow"
t0=$(date +%s%3N)
timeout 60 "$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" \
    --input "$T/in" --output "$T/out2" --split-size 16K -R 3 \
    --arg sleep_ms=1 --arg "slow_once=$T/slow" --arg slow_match=text-002 \
    --arg slow_ms=100 --wait >"$T/b.log" 2>&1 ||
    fail "the job with a straggler failed: $(cat "$T/b.log")"
took=$(($(date +%s%3N) - t0))
check_output out2
[ "$(ls "$T/slow" | wc -l)" = 1 ] || fail "expected one straggler, got: $(ls "$T/slow")"
straggler=$(cat "$T"/slow/*)
"$QUERN" status "$(head -n 1 "$T/b.log")" --master "$MASTER" --json >"$T/b.json"
ba=$(counter "$T/b.json" backup_attempts)
[ "$ba" -ge 1 ] || fail "no backup attempt for a straggler (job took $took ms)"
[ "$took" -lt 12000 ] || fail "the job took $took ms: the straggler was not backed up in time"
timeout 10 tail --pid="$straggler" -f /dev/null ||
    fail "the straggler (pid $straggler) still runs after its backup won"
echo "ok: one attempt per task without speculation; a straggler backed up ($ba backups, $took ms)"
