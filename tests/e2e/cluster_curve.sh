#!/usr/bin/env bash
# CURVE on a netns cluster: every socket requires a trusted key. A client
# with the cluster's client key works; one without a key cannot talk to
# the master; a worker whose key is not trusted cannot join, and the
# master logs the refusal with the worker's address.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "needs root for network namespaces"
NETNS=$(cd "$(dirname "$0")/../../deploy" && pwd)/netns-cluster.sh
NAME=qk$(($$ % 100000))
CDIR=$T/cluster
export QUERN_BIN=$BIN
export MASTER_ARGS="--heartbeat-ms 300 --dead-ms 2000"
ROGUE=
down() {
    [ -n "$ROGUE" ] && kill "$ROGUE" 2>/dev/null && timeout 10 tail --pid="$ROGUE" -f /dev/null
    "$NETNS" down --name "$NAME" >/dev/null 2>&1 || true
}
trap 'rc=$?; down; (exit $rc); cleanup' EXIT
nc() { "$NETNS" --name "$NAME" "$@"; }

nc up 2 --curve --dir "$CDIR" >"$T/up.log" 2>&1 || { cat "$T/up.log"; fail "cluster did not come up with CURVE"; }
eval "$(nc env)"
KEYS=(--curve-secret "$CDIR/keys/client.key" --curve-master "$CDIR/keys/master.pub")

# With the client key: datasets and jobs work over CURVE (the workers'
# data servers too: put, the maps reading shards, cat).
printf 'a b a\nc a b\n' >"$T/in.txt"
nc exec client "$QUERN" put "$T/in.txt" --dataset tiny --replicas 2 "${KEYS[@]}" ||
    fail "put over CURVE failed"
nc exec client "$QUERN" submit --job "$JOBS/wordcount.so" --input tiny --output tinyc \
    --wait "${KEYS[@]}" >"$T/job.out" 2>&1 || { cat "$T/job.out"; fail "a job over CURVE failed"; }
[ "$(nc exec client "$QUERN" cat tinyc "${KEYS[@]}" | sort | tr '\t\n' ' |')" = "a 3|b 2|c 1|" ] ||
    fail "wrong word count over CURVE"

# Without a key: the master does not answer (exit 3, and the hint).
rc=0
nc exec client "$QUERN" workers >"$T/nokey.out" 2>&1 || rc=$?
[ $rc = 3 ] || fail "a client without a key: exit $rc, expected 3: $(cat "$T/nokey.out")"
grep -q "CURVE" "$T/nokey.out" || fail "no hint about CURVE: $(cat "$T/nokey.out")"

# A worker with a key the cluster does not trust.
"$QUERN" keygen "$T/rogue" >/dev/null
ip netns exec "$NAME-client" "$BIN/quern-worker" --master "$MASTER" \
    --shuffle "tcp://$(ip -n "$NAME-client" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1):7079" \
    --curve-secret "$T/rogue.key" --curve-trusted "$CDIR/keys/trusted" \
    --work-dir "$T/rogue-work" >"$T/rogue.log" 2>&1 &
ROGUE=$!
client_ip=$(ip -n "$NAME-client" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
seen=0
for _ in $(seq 1 100); do
    if grep -q "refused.*$client_ip" "$CDIR/master.log"; then seen=1; break; fi
    timeout 0.1 tail -f /dev/null || true
done
[ $seen = 1 ] || fail "the master did not log refusing the untrusted worker from $client_ip"
n=$(nc exec client "$QUERN" workers --json "${KEYS[@]}" | jq 'length')
[ "$n" = 2 ] || fail "$n workers listed; the untrusted one must not be among them"
grep -m1 "refused" "$CDIR/master.log"
echo "curve: trusted peers work, an untrusted worker and a keyless client are refused"
