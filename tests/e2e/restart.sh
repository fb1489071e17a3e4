#!/usr/bin/env bash
# A master restarted on the same port: its workers join it again, drop the
# attempts and map outputs of the old master's jobs, and the new master's
# jobs come out right (job ids differ from the old master's).
. "$(dirname "$0")/lib.sh"
# The hanging plugin tells this test it started through a fifo outside any
# task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    shuf -i 20000-60000 -n 1)
EP=tcp://127.0.0.1:$port
"$BIN/quern-master" --listen "$EP" --http off --heartbeat-ms 200 >>"$T/master1.log" 2>&1 &
m1=$!
PIDS+=($m1)
MASTER=$EP
start_worker w1
mkdir "$T/in"
for i in $(seq 50); do echo "apple apple apple"; done >"$T/in/a.txt"
mkfifo "$T/started"
id1=$("$QUERN" submit --master "$EP" --job "$TJOBS/faulty.so" --arg fail=hang \
    --arg "fifo=$T/started" --input "$T/in" --output "$T/out1") || fail "submit to the first master"
read -r _ task_pid < <(timeout 20 head -n 1 "$T/started") || fail "the attempt never started"

kill -9 $m1
set +e
wait $m1 2>/dev/null
set -e
PIDS=("${PIDS[@]/$m1/}") # stopped here, not at the end
PIDS=($(printf '%s\n' "${PIDS[@]}" | grep .))
"$BIN/quern-master" --listen "$EP" --http off --heartbeat-ms 200 >>"$T/master2.log" 2>&1 &
PIDS+=($!)
# The worker learns the new master does not know it and kills the old
# master's attempt.
timeout 20 tail --pid="$task_pid" -f /dev/null || fail "the old master's attempt still runs"

mkdir "$T/in2"
for i in $(seq 50); do echo "zebra zebra zebra"; done >"$T/in2/z.txt"
"$QUERN" submit --master "$EP" --job "$TJOBS/faulty.so" --input "$T/in2" \
    --output "$T/out2" --wait >"$T/run2.log" 2>&1 || fail "job on the new master: $(cat "$T/run2.log")"
id2=$(head -n 1 "$T/run2.log")
[ "$id1" != "$id2" ] || fail "the new master reused job id $id1"
[ "$(cat "$T"/out2/part-*)" = "$(printf 'zebra\t150')" ] || fail "wrong output: $(cat "$T"/out2/part-*)"
echo "ok: a restarted master's jobs are not confused with the old one's ($id1, $id2)"
