#!/usr/bin/env bash
# A put that loses a worker completes. (1) Four workers, 2 copies: a
# worker is killed with SIGKILL mid-put; the put carries on with the other
# copy of the shard it was taking, asks the dead worker for nothing more,
# and succeeds; the master makes up every missing copy before it seals, so
# every shard has 2 live copies and the dataset reads back byte for byte.
# (2) One copy, and a worker whose data dir fills up after one shard: the
# shard it fails is written again on the other worker, and the put
# succeeds. (3) When no worker is left to take a shard, the put fails and
# says so, keeping nothing.
. "$(dirname "$0")/lib.sh"

start_master --heartbeat-ms 200 --dead-ms 1500 --replica-timeout-ms 3000
q() { timeout 60 "$QUERN" "$@" --master "$MASTER"; }
# installed NAME: shards worker NAME has installed so far.
installed() { grep -c 'installed shard' "$T/$1.log" 2>/dev/null || true; }

W=()
for i in 1 2 3 4; do
    start_worker "w$i" --data-dir "$T/data$i"
    W+=("${PIDS[-1]}")
done
joined 4
gen "$T/in" 48M 2
cat "$T"/in/* | md5sum >"$T/want.md5"

# ---- (1) a worker killed mid-put --------------------------------------------
q put "$T"/in/* --dataset t --replicas 2 --shard-size 2M >"$T/put1.out" 2>"$T/put1.err" &
put=$!
# Once the workers have taken a few shards, kill the one that took most.
victim=""
for _ in $(seq 300); do
    best=0
    for i in 1 2 3 4; do
        n=$(installed "w$i")
        if [ "$n" -gt "$best" ]; then
            best=$n
            victim=$i
        fi
    done
    [ "$best" -ge 3 ] && break
    sleep 0.02
done
[ -n "$victim" ] || fail "no worker installed a shard"
kill -9 "${W[$((victim - 1))]}"
forget_pid "${W[$((victim - 1))]}"
rc=0
wait "$put" || rc=$?
[ $rc = 0 ] || fail "the put that lost worker $victim failed ($rc): $(cat "$T/put1.err")"
[ "$(q ls t --json | jq -r .state)" = complete ] || fail "t is not complete"
# It was killed while the put ran: the put noticed (or the kill came after
# the last shard it took, which the log would show).
grep -q 'goes on to its other' "$T/put1.err" ||
    echo "note: worker $victim was killed after its last shard of the put"
q ls t --json >"$T/ls.json"
short=$(jq '[.shard_list[] | select((.holders | length) != 2)] | length' "$T/ls.json")
[ "$short" = 0 ] || fail "$short shards of t do not have 2 live copies: $(jq -c '.shard_list[] | [.index, .holders]' "$T/ls.json")"
q cat t | md5sum >"$T/got.md5"
cmp -s "$T/want.md5" "$T/got.md5" || fail "t does not read back as what was put"

# ---- (2) a worker whose disk fills up mid-put, one copy ---------------------
# Only two live workers: a normal one and one whose data dir is a 3 MiB
# tmpfs (in a mount namespace of its own): it takes one 2 MiB shard, then
# fails the next one.
for i in 1 2 3 4; do
    [ "$i" = "$victim" ] && continue
    kill -INT "${W[$((i - 1))]}"
    forget_pid "${W[$((i - 1))]}"
done
mkdir -p "$T/tiny"
unshare --mount --propagation private sh -c \
    'mount -t tmpfs -o size=3m quern-test-full "$1" && shift && exec "$@"' sh \
    "$T/tiny" "$BIN/quern-worker" --master "$MASTER" --work-dir "$T/tw" \
    --data-dir "$T/tiny" >>"$T/tiny.log" 2>&1 &
PIDS+=($!)
start_worker w5 --data-dir "$T/data5"
joined 2
q put "$T"/in/* --dataset u --replicas 1 --shard-size 2M >"$T/put2.out" 2>"$T/put2.err" ||
    fail "the put with a full disk failed: $(cat "$T/put2.err")"
grep -q 'is written again elsewhere' "$T/put2.err" ||
    fail "the put did not write a failed shard again: $(cat "$T/put2.err")"
q cat u | md5sum >"$T/got.md5"
cmp -s "$T/want.md5" "$T/got.md5" || fail "u does not read back as what was put"

# ---- (3) nowhere left to put a shard ----------------------------------------
kill -INT "${PIDS[-1]}"
forget_pid "${PIDS[-1]}"
joined 1
rc=0
q put "$T"/in/* --dataset v --replicas 1 --shard-size 2M >"$T/put3.out" 2>"$T/put3.err" || rc=$?
[ $rc != 0 ] || fail "a put with nowhere to go succeeded"
grep -q 'no live worker that keeps datasets is left' "$T/put3.err" ||
    fail "the failed put did not say why: $(cat "$T/put3.err")"
if q ls v >/dev/null 2>&1; then fail "the failed put kept dataset v"; fi
echo "ok: a put survived worker $victim killed mid-way and a full disk; with nowhere to go it failed saying so"
