#!/usr/bin/env bash
# Two releases meet. The programs built again to speak protocol version 2
# ($BUILD/tests/v2, make other-version) talk to this release's: a worker
# to a master, a client to a master, a master to a worker. Each is refused
# with a reason that names both versions, and both sides log it: the
# refusing side once a minute per address, the refused worker once however
# often it says hello again. The refused worker never joins, the master
# goes on running jobs on the workers of its own release, and a client of
# the other release exits 2 saying what to do.
. "$(dirname "$0")/lib.sh"
V2=$(cd "$BUILD/tests/v2/bin" && pwd)

# wait_line FILE PATTERN: FILE gets a line matching PATTERN within 20 s.
wait_line() {
    local end=$((SECONDS + 20))
    until grep -q -e "$2" "$1" 2>/dev/null; do
        [ $SECONDS -lt $end ] || fail "no line '$2' in $1 within 20 s: $(tail -n 5 "$1" 2>&1)"
        sleep 0.1
    done
}
metric() {
    { curl -sS --max-time 5 "${HTTP}metrics" || true; } | awk -v s="$1" '$1 == s { print $2 }'
}
version_drops='quern_messages_dropped_total{reason="version"}'

# ---- a worker of version 2 and a master of version 1 ----------------------
start_master --heartbeat-ms 100
start_worker w1
"$V2/quern-worker" --master "$MASTER" --work-dir "$T/w2" >>"$T/w2.log" 2>&1 &
PIDS+=($!)
W2=$!
wait_line "$T/w2.log" 'the master refused us'
grep -q 'refused: you speak Quern protocol version 2, this peer speaks version 1' "$T/w2.log" ||
    fail "the worker's refusal does not name both versions: $(grep refused "$T/w2.log")"
# It says hello again with backoff (after 1, 2, 4 s): wait for three
# refusals in all, then each side has said so once.
n=0
for _ in $(seq 100); do
    n=$(metric "$version_drops")
    [ "${n:-0}" -ge 3 ] && break
    sleep 0.2
done
[ "${n:-0}" -ge 3 ] || fail "the master refused the worker ${n:-0} times in 20 s"
n=$(grep -c 'dropped a message from 127.0.0.1: peer speaks protocol version 2, this is 1' "$T/master.log" || true)
[ "$n" = 1 ] || fail "the master logged the other version $n times: $(grep dropped "$T/master.log")"
n=$(grep -c 'the master refused us' "$T/w2.log" || true)
[ "$n" = 1 ] || fail "the refused worker logged $n lines for its refusals"
"$QUERN" workers --master "$MASTER" --json >"$T/workers.json"
jq -e 'length == 1' "$T/workers.json" >/dev/null ||
    fail "a worker of another version joined: $(jq -c '[.[].id]' "$T/workers.json")"

# The cluster runs jobs on the worker of its own release all the while.
gen "$T/in" 64K 2
timeout 60 "$QUERN" submit --master "$MASTER" --job "$JOBS/wordcount.so" \
    --input "$T/in" --output "$T/out" -R 2 --wait >"$T/submit.log" 2>&1 ||
    fail "the job failed beside a refused worker: $(cat "$T/submit.log")"
check_wordcount "$T/out" 2 "$T"/in/*

# ---- a client of version 2 ------------------------------------------------
# (The worker of version 2 goes first, so that only the client counts.)
kill "$W2"
forget_pid "$W2"
before=$(metric "$version_drops")
rc=0
"$V2/quern" jobs --master "$MASTER" >"$T/v2.out" 2>&1 || rc=$?
[ $rc = 2 ] || fail "a client of another version exited $rc: $(cat "$T/v2.out")"
grep -q "the master at $MASTER speaks Quern protocol version 1 and this client speaks 2; use the quern command of the same release" "$T/v2.out" ||
    fail "the client's refusal: $(cat "$T/v2.out")"
[ "$(metric "$version_drops")" -gt "${before:-0}" ] ||
    fail "the master did not count the client's request as another version's"

# ---- a master of version 2 and a worker of version 1 ----------------------
MASTER_BIN=$V2/quern-master MASTER_LOG=master2 start_master --heartbeat-ms 100
start_worker w3
wait_line "$T/w3.log" 'the master refused us'
grep -q 'refused: you speak Quern protocol version 1, this peer speaks version 2' "$T/w3.log" ||
    fail "the worker's refusal does not name both versions: $(grep refused "$T/w3.log")"
wait_line "$T/master2.log" 'dropped a message from 127.0.0.1: peer speaks protocol version 1, this is 2'
jq -e 'length == 0' <("$V2/quern" workers --master "$MASTER" --json) >/dev/null ||
    fail "a worker of another version joined the version 2 master"
echo "ok: versions 1 and 2 refuse each other, naming both, and each side logs it once"
