#!/usr/bin/env bash
# A worker killed (SIGKILL) while it runs a reduce attempt: the reduce runs
# again elsewhere, the map outputs the dead worker held are recomputed, and
# the output is the same as a sequential word count. Nothing the killed
# attempt half wrote shows in the output folder.
. "$(dirname "$0")/lib.sh"

# ppid_of PID: the parent of a running process (an attempt's worker).
ppid_of() { ps -o ppid= -p "$1" 2>/dev/null | tr -d ' '; }

# forget_pid PID: a daemon killed on purpose; reap it, and keep cleanup
# from flagging its exit status.
forget_pid() {
    local p=$1 q keep=()
    for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    PIDS=("${keep[@]}")
    wait "$p" 2>/dev/null || true
}

start_master --heartbeat-ms 100 --dead-ms 1500 --task-timeout-ms 5000
W=()
for i in 1 2 3; do
    start_worker "w$i"
    W+=("${PIDS[-1]}")
done
# About 9,000 words over 4 reduces at 1 ms a value: 2 to 3 s a reduce.
gen "$T/in" 64K 2
mkfifo "$T/notify"
exec 5<>"$T/notify" # held open: attempts never block on it
timeout 60 "$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" \
    --input "$T/in" --output "$T/out" --split-size 16K -R 4 \
    --arg reduce_sleep_ms=1 --arg "notify=$T/notify" --wait >"$T/submit.log" 2>&1 &
sub=$!

# The first reduce attempt that is still running when we look: kill its
# worker.
victim= tpid=
end=$((SECONDS + 30))
while [ -z "$victim" ] && [ $SECONDS -lt $end ]; do
    read -r -t 30 phase pid <&5 || fail "no reduce attempt started"
    [ "$phase" = reduce ] || continue
    pp=$(ppid_of "$pid")
    for w in "${W[@]}"; do [ "$w" = "$pp" ] && victim=$w tpid=$pid; done
done
[ -n "$victim" ] || fail "found no worker running a reduce"
kill -9 "$victim"
forget_pid "$victim"
timeout 10 tail --pid="$tpid" -f /dev/null ||
    fail "reduce attempt $tpid outlived its killed worker $victim"

set +e
wait $sub
rc=$?
set -e
[ $rc = 0 ] || fail "the job did not succeed (exit $rc): $(cat "$T/submit.log")"
id=$(head -n 1 "$T/submit.log")
[ -e "$T/out/_SUCCESS" ] || fail "no _SUCCESS"
[ "$(ls -A "$T/out" | grep -vc -e '^part-' -e '^_SUCCESS$')" = 0 ] ||
    fail "stray files in the output: $(ls -A "$T/out")"
[ "$(ls "$T"/out/part-* | wc -l)" = 4 ] || fail "expected 4 part files: $(ls "$T/out")"
cat "$T"/out/part-* | sort >"$T/got"
wordcount_ref "$T"/in/* >"$T/want"
cmp -s "$T/got" "$T/want" || fail "output differs from the reference: $(diff "$T/want" "$T/got" | head -5)"

"$QUERN" status "$id" --master "$MASTER" --json >"$T/status.json"
lost=$(jq --arg w "-$victim-" '[.failures[] | select(.kind == "reduce" and (.worker | contains($w)))] | length' "$T/status.json")
[ "$lost" -ge 1 ] || fail "no failed reduce attempt on the killed worker: $(jq -c .failures "$T/status.json")"
ra=$(jq -e '.counters.reduce_attempts' "$T/status.json") ||
    fail "no reduce_attempts counter: $(jq -c .counters "$T/status.json")"
[ "$ra" -gt 4 ] || fail "reduce_attempts $ra, but 4 reduces and one was lost"
echo "ok: a worker killed during a reduce ($victim) cost a re-run, not the answer ($ra reduce attempts)"
