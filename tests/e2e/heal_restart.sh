#!/usr/bin/env bash
# Re-replication across a master restart (--state-dir). Four workers hold
# a dataset with 2 copies; one holder is killed with SIGKILL and the master
# too, then the master starts again on its state dir. It has not heard
# from the dead worker, so it waits one --replica-timeout-ms after its
# start before it re-makes anything (the workers joining meanwhile are not
# mistaken for lost copies: nothing is copied while they say hello), and
# then every shard gets its 2 live copies back, exactly 2.
. "$(dirname "$0")/lib.sh"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MASTER=tcp://127.0.0.1:$port
up() {
    "$BIN/quern-master" --listen "$MASTER" --http off --heartbeat-ms 200 \
        --dead-ms 1500 --replica-timeout-ms 3000 --state-dir "$T/state" \
        >>"$T/master.log" 2>&1 &
    M=$!
    PIDS+=($M)
}
q() { timeout 20 "$QUERN" "$@" --master "$MASTER"; }

up
W=()
for i in 1 2 3 4; do
    start_worker "w$i" --data-dir "$T/data$i"
    W+=("${PIDS[-1]}")
done
joined 4
gen "$T/in" 24M 2
q put "$T"/in/* --dataset t --replicas 2 --shard-size 2M 2>"$T/put.err" ||
    fail "put failed: $(cat "$T/put.err")"
shards=$(q ls t --json | jq .shards)
held=$(find "$T/data1/t" -name 'part-*' ! -name '*.meta*' | wc -l)
[ "$held" -gt 0 ] || fail "w1 holds no shard of t"

kill -9 "${W[0]}"
forget_pid "${W[0]}"
kill -9 "$M"
forget_pid "$M"
up
restarted=$SECONDS
# The three live workers find the new master.
joined 3
end=$((SECONDS + 60))
ok=0
while [ $SECONDS -lt $end ]; do
    n=$(q ls t --json 2>/dev/null | jq '[.shard_list[] | select((.holders | length) == 2)] | length' 2>/dev/null || echo 0)
    if [ "$n" = "$shards" ]; then
        ok=1
        break
    fi
    sleep 0.2
done
[ $ok = 1 ] || fail "after the restart, not every shard got 2 live copies back: $(q ls t)"
took=$((SECONDS - restarted))
# The first copy after the restart came no sooner than 3 s after it, by
# the master's own log.
wait_ms=$(python3 - "$T/master.log" <<'PY'
import sys, datetime
starts, first = [], None
for line in open(sys.argv[1]):
    t = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
    if "master: listening on" in line:
        starts.append(t)
        first = None
    elif "copying shard" in line and first is None:
        first = t
print(int((first - starts[-1]).total_seconds() * 1000) if first and len(starts) > 1 else -1)
PY
)
# (It logs that it listens once it has read its state dir, a few ms
# after the wait began.)
[ "$wait_ms" -ge 2800 ] || fail "the restarted master copied shards $wait_ms ms after it started, inside its 3 s wait"
made=$(grep -c 'has a new copy of shard t/' "$T/master.log")
[ "$made" -ge "$held" ] || fail "$held copies were lost with w1, $made made"
echo "ok: after a master restart, $held copies lost with a worker were made again ($made copies), the first $wait_ms ms after it started; all in $took s"
