#!/usr/bin/env bash
# A worker killed (SIGKILL) while it runs a map attempt: the master declares
# it dead after --dead-ms, runs the lost map again elsewhere, and the output
# is the same as a sequential word count. The lost attempt's process does not
# outlive its worker.
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
# 4 maps of about 1,800 lines, 1 ms a line: the map phase lasts seconds.
gen "$T/in" 512K 4
mkfifo "$T/notify"
exec 5<>"$T/notify" # held open: attempts never block on it
timeout 60 "$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" \
    --input "$T/in" --output "$T/out" --split-size 128K -R 2 \
    --arg sleep_ms=1 --arg "notify=$T/notify" --wait >"$T/submit.log" 2>&1 &
sub=$!

# The first map attempt that is still running when we look: kill its worker.
victim= tpid=
end=$((SECONDS + 30))
while [ -z "$victim" ] && [ $SECONDS -lt $end ]; do
    read -r -t 30 phase pid <&5 || fail "no map attempt started"
    [ "$phase" = map ] || continue
    pp=$(ppid_of "$pid")
    for w in "${W[@]}"; do [ "$w" = "$pp" ] && victim=$w tpid=$pid; done
done
[ -n "$victim" ] || fail "found no worker running a map"
kill -9 "$victim"
forget_pid "$victim"
timeout 10 tail --pid="$tpid" -f /dev/null ||
    fail "map attempt $tpid outlived its killed worker $victim"

set +e
wait $sub
rc=$?
set -e
[ $rc = 0 ] || fail "the job did not succeed (exit $rc): $(cat "$T/submit.log")"
id=$(head -n 1 "$T/submit.log")
[ -e "$T/out/_SUCCESS" ] || fail "no _SUCCESS"
[ "$(ls "$T"/out/part-* | wc -l)" = 2 ] || fail "expected 2 part files: $(ls "$T/out")"
cat "$T"/out/part-* | sort >"$T/got"
wordcount_ref "$T"/in/* >"$T/want"
cmp -s "$T/got" "$T/want" || fail "output differs from the reference: $(diff "$T/want" "$T/got" | head -5)"

"$QUERN" status "$id" --master "$MASTER" --json >"$T/status.json"
lost=$(jq --arg w "-$victim-" '[.failures[] | select(.kind == "map" and (.worker | contains($w)))] | length' "$T/status.json")
[ "$lost" -ge 1 ] || fail "no failed map attempt on the killed worker: $(jq -c .failures "$T/status.json")"
grep -q "is dead" "$T/master.log" || fail "the master never declared the worker dead"
maps=$(jq .maps "$T/status.json")
ma=$(jq -e '.counters.map_attempts' "$T/status.json") ||
    fail "no map_attempts counter: $(jq -c .counters "$T/status.json")"
[ "$ma" -gt "$maps" ] || fail "map_attempts $ma, but $maps maps and one was lost"
echo "ok: a worker killed during a map ($victim) cost a re-run, not the answer ($ma attempts for $maps maps)"
