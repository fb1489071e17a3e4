#!/usr/bin/env bash
# A hostile peer. While a job runs, tests/tools/hostile sends the master's
# port and a worker's shuffle port random frames, truncated envelopes,
# well-formed envelopes with absurd fields, other protocol versions,
# multipart garbage and oversized frames, for 20 seconds each; to the
# master also messages that speak for a live worker without its session
# (hellos, heartbeats listing none of its attempts, failures of the job's
# attempts, shard drops, plugin requests). The daemons
# stay up, the job's output is right, every kind of drop was counted (the
# master's by reason, the shuffle server's through its worker), and the
# logs say so in a few lines, not one per message.
. "$(dirname "$0")/lib.sh"

start_master --heartbeat-ms 200
start_workers 2
gen "$T/in" 256K 4
# About 25 s of work: 16 maps of ~300 lines at 10 ms a line, 4 at a time.
timeout 120 "$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" \
    --input "$T/in" --output "$T/out" --split-size 16K -R 2 --arg sleep_ms=10 \
    --wait >"$T/submit.log" 2>&1 &
SUB=$!
HOSTILE=$(dirname "$GENTEXT")/hostile
shuffle=$("$QUERN" workers --master "$MASTER" --json | jq -r '.[0].shuffle_endpoint')
[[ $shuffle == tcp://* ]] || fail "no shuffle endpoint: $shuffle"
victim=$("$QUERN" workers --master "$MASTER" --json | jq -r '.[0].id')
for _ in $(seq 100); do
    [ -s "$T/submit.log" ] && break
    sleep 0.1
done
job=$(head -n 1 "$T/submit.log")
[[ $job == job-* ]] || fail "no job id from submit: $(cat "$T/submit.log")"

"$HOSTILE" --endpoint "$MASTER" --seconds 20 --seed 7 --worker "$victim" \
    --job "$job" >"$T/h-master.out" &
H1=$!
"$HOSTILE" --endpoint "$shuffle" --seconds 20 --seed 8 >"$T/h-shuffle.out" &
H2=$!
wait $H1 || fail "hostile (master) exited $?"
wait $H2 || fail "hostile (shuffle) exited $?"
for f in h-master h-shuffle; do
    total=$(awk '$1 == "total" { print $2 }' "$T/$f.out")
    [ "${total:-0}" -ge 1000 ] || fail "$f sent only ${total:-0} messages: $(cat "$T/$f.out")"
    awk '$1 != "total" && $2 == 0 { bad = 1 } END { exit bad }' "$T/$f.out" ||
        fail "$f did not send every kind: $(cat "$T/$f.out")"
done
kill -0 "$SUB" 2>/dev/null || fail "the job ended during the 20 s attack: $(cat "$T/submit.log")"

rc=0
wait "$SUB" || rc=$?
[ $rc = 0 ] || fail "the job failed (exit $rc): $(cat "$T/submit.log")"
for p in "${PIDS[@]}"; do
    kill -0 "$p" 2>/dev/null || fail "daemon $p died"
done
check_wordcount "$T/out" 2 "$T"/in/*
"$QUERN" status "$job" --master "$MASTER" --json >"$T/status.json"
jq -e '.counters.map_attempts == .maps and .counters.reduce_attempts == 2' \
    "$T/status.json" >/dev/null ||
    fail "the attack changed the job's attempts: $(jq -c .counters "$T/status.json")"
# Its victim kept its place: same connection, never given up for dead.
"$QUERN" workers --master "$MASTER" --json >"$T/workers.json"
jq -e --arg v "$victim" --arg s "$shuffle" \
    '[.[] | select(.id == $v)] | length == 1 and .[0].shuffle_endpoint == $s and .[0].alive' \
    "$T/workers.json" >/dev/null || fail "worker $victim was disturbed: $(jq -c . "$T/workers.json")"

# The drop counters went up, each kind (the shuffle server's came with
# its worker's heartbeats, every 200 ms while the job still ran).
counted=
metric() { curl -sS --max-time 5 "${HTTP}metrics" | awk -v s="$1" '$1 == s { print $2 }'; }
for series in 'quern_messages_dropped_total{reason="malformed"}' \
    'quern_messages_dropped_total{reason="version"}' \
    'quern_messages_dropped_total{reason="invalid"}' \
    quern_shuffle_requests_dropped_total; do
    v=$(metric "$series")
    [ "${v:-0}" -gt 0 ] || fail "$series is ${v:-missing}"
    counted+=" $series=$v"
done
# One address asking too fast is held to its rate (2000 a second), and
# the master answers again once it slows down.
"$HOSTILE" --endpoint "$MASTER" --flood 20000 >"$T/flood.out" ||
    fail "the flood did not go out: $(cat "$T/flood.out")"
read -r _ sent _ answered <"$T/flood.out"
[ "$sent" = 20000 ] && [ "$answered" -ge 1000 ] && [ "$answered" -lt 15000 ] ||
    fail "20000 requests at once: $(cat "$T/flood.out")"
v=$(metric 'quern_messages_dropped_total{reason="rate"}')
[ "${v:-0}" -gt 0 ] || fail "20000 requests at once were not rate-limited: ${v:-missing}"
counted+=" quern_messages_dropped_total{reason=\"rate\"}=$v (of 20000 requests at once, $answered answered)"
answered=
for _ in 1 2 3 4 5; do
    if timeout 5 "$QUERN" jobs --master "$MASTER" >/dev/null 2>&1; then
        answered=1
        break
    fi
done
[ -n "$answered" ] || fail "the master did not answer after the flood"
# Logged once per peer a minute: a handful of lines for thousands of drops.
n=$(grep -c 'master: dropped a message from' "$T/master.log" || true)
[ "$n" -ge 1 ] && [ "$n" -le 4 ] || fail "the master logged $n drop lines"
n=$(cat "$T"/w*.log | grep -c 'shuffle: dropped a request from' || true)
[ "$n" -ge 1 ] && [ "$n" -le 4 ] || fail "the shuffle server logged $n drop lines"
echo "sent to the master: $(tr '\n' ' ' <"$T/h-master.out")"
echo "sent to the shuffle server: $(tr '\n' ' ' <"$T/h-shuffle.out")"
echo "counted:$counted"
echo "ok: 20 s of hostile traffic to the master and a shuffle server; job right, daemons up, drops counted"
