#!/usr/bin/env bash
# Two releases work together (protocol minor versions, wire.h): this
# release's master with the previous release's workers, the previous
# release's master with this release's workers, and a rolling upgrade
# while a job runs: the master (with --state-dir) restarted, then each
# worker of the previous release stopped and replaced by one of this
# release, in turn. Every job's output is exact. The previous release is
# built from git (make prev-release).
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off
PREV=$(cd "$BUILD/tests/prev/bin" && pwd)

# prev_worker NAME [ARGS...]: a worker of the previous release.
prev_worker() {
    local name=$1
    shift
    "$PREV/quern-worker" --master "$MASTER" --work-dir "$T/$name" "$@" \
        >>"$T/$name.log" 2>&1 &
    PIDS+=($!)
}

# wordcount NAME INPUT: a word count of INPUT into $T/NAME, checked.
wordcount() {
    timeout 60 "$QUERN" submit --master "$MASTER" --job "$JOBS/wordcount.so" \
        --input "$2" --output "$T/$1" -R 2 --wait >"$T/$1.log" 2>&1 ||
        fail "job $1 failed: $(cat "$T/$1.log")"
    check_wordcount "$T/$1" 2 "$2"/*
}

gen "$T/in" 200K 4
# This release's minor version, as wire.h sets it.
minor=$(awk '$2 == "QN_PROTOCOL_MINOR" { print $3 }' "$(dirname "$0")/../../lib/wire.h")
[ -n "$minor" ] || fail "no QN_PROTOCOL_MINOR in lib/wire.h"

# ---- this master, workers of the previous release ---------------------------
MASTER_LOG=new1 start_master --state-dir "$T/state1"
prev_worker p1
prev_worker p2
wordcount out1 "$T/in"
grep -q "speaks Quern protocol 1.0, this master 1.$minor: the two use 1.0" "$T/new1.log" ||
    fail "the master did not say which minor version it uses: $(grep -i protocol "$T/new1.log")"
kill "$MASTER_PID" "${PIDS[-1]}" "${PIDS[-2]}"
for p in "$MASTER_PID" "${PIDS[-1]}" "${PIDS[-2]}"; do forget_pid "$p"; done

# ---- the previous release's master, this release's workers ------------------
MASTER_LOG=old2 MASTER_BIN=$PREV/quern-master start_master
start_worker n1
start_worker n2
wordcount out2 "$T/in"
grep -q "the master speaks Quern protocol 1.0, this worker 1.$minor: the two use 1.0" "$T/n1.log" ||
    fail "the worker did not say which minor version it uses: $(grep -i protocol "$T/n1.log")"
kill "$MASTER_PID" "${PIDS[-1]}" "${PIDS[-2]}"
for p in "$MASTER_PID" "${PIDS[-1]}" "${PIDS[-2]}"; do forget_pid "$p"; done

# ---- a rolling upgrade while a job runs --------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
EP=tcp://127.0.0.1:$port
MASTER=$EP
up() {
    "$BIN/quern-master" --listen "$EP" --http off --heartbeat-ms 200 --dead-ms 2000 \
        --state-dir "$T/state3" >>"$T/master3.log" 2>&1 &
    M=$!
    PIDS+=($M)
}
up
prev_worker r1 --slots 2
R1=${PIDS[-1]}
prev_worker r2 --slots 2
R2=${PIDS[-1]}
gen "$T/in3" 320K 8
open_notify
timeout 120 "$QUERN" submit --master "$EP" --job "$TJOBS/faulty.so" \
    --input "$T/in3" --output "$T/out3" --split-size 40K -R 2 \
    --arg sleep_ms=2 --arg "notify=$T/notify" --wait >"$T/out3.log" 2>&1 &
SUB=$!
# next_map: the next map attempt has started.
next_map() {
    local phase pid
    while read -r -t 60 phase pid <&5; do [ "$phase" = map ] && return 0; done
    fail "no map attempt started"
}
next_map
kill "$M" # the master, restarted on this release (its state kept)
forget_pid "$M"
up
for old in "$R1" "$R2"; do
    next_map
    kill "$old" # stopped; a worker of this release takes its place
    forget_pid "$old"
    start_worker "n-$old" --slots 2
done
rc=0
wait "$SUB" || rc=$?
[ $rc = 0 ] || fail "the job did not survive the rolling upgrade (exit $rc): $(cat "$T/out3.log")"
check_wordcount "$T/out3" 2 "$T"/in3/*
echo "ok: two releases work together, and a job ran on through a rolling upgrade"
