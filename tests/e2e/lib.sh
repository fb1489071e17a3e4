# lib.sh -- shared by the end-to-end tests (sourced by bash).
#
# Each test gets a private folder $T, removed at exit; daemons it starts
# are recorded and stopped by pid at exit. Everything binds to loopback.
set -euo pipefail
export LC_ALL=C
BUILD=${BUILD:-build}
BIN=$(cd "$BUILD/bin" && pwd)
JOBS=$(cd "$BUILD/jobs" && pwd)
TJOBS=$(cd "$BUILD/tests/jobs" 2>/dev/null && pwd || echo "$BUILD/tests/jobs")
GENTEXT=$(cd "$BUILD/tests" && pwd)/gentext
QUERN=$BIN/quern
T=$(mktemp -d "${TMPDIR:-/tmp}/quern-e2e-XXXXXX")
export TMPDIR=$T # whatever quern run keeps goes away with the test
PIDS=()

cleanup() {
    local rc=$?
    # SIGINT: every daemon stops at once (SIGTERM would have each worker
    # drain first, with nowhere to drain to).
    for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        # Give each a bounded time, then kill.
        timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true
        # A daemon must stop cleanly (under ASan: without leaks).
        local st=0
        wait "$p" 2>/dev/null || st=$?
        if [ $st -ne 0 ] && [ $rc -eq 0 ]; then
            echo "FAIL: daemon pid $p exited with status $st on SIGINT" >&2
            rc=1
        fi
    done
    if [ $rc -ne 0 ]; then
        echo "--- logs of the failed test ($T):"
        for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 30 "$f"; }; done
    fi
    # KEEP_T=1 keeps the folder (and its logs) to look at.
    [ -n "${KEEP_T:-}" ] || rm -rf "$T"
    exit $rc
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# start_master: starts quern-master on a free loopback port, its status
# page on another; sets MASTER and HTTP (the page's URL, ending in /).
# MASTER_BIN may name another build's quern-master, MASTER_LOG its log.
start_master() {
    mkfifo "$T/ready"
    "${MASTER_BIN:-$BIN/quern-master}" --listen 'tcp://127.0.0.1:*' --http 127.0.0.1:0 \
        --ready-fd 3 "$@" 3>"$T/ready" >>"$T/${MASTER_LOG:-master}.log" 2>&1 &
    PIDS+=($!)
    MASTER_PID=$!
    # The master writes its endpoint and page URL to the fifo once it listens.
    local ready
    ready=$(timeout 10 head -n 2 "$T/ready") || fail "the master did not start"
    MASTER=$(sed -n 1p <<<"$ready")
    HTTP=$(sed -n 2p <<<"$ready")
    [ -n "$MASTER" ] || fail "the master did not start"
    rm -f "$T/ready"
}

# start_worker NAME [ARGS...]: starts a worker for $MASTER.
start_worker() {
    local name=$1
    shift
    "$BIN/quern-worker" --master "$MASTER" --work-dir "$T/$name" "$@" \
        >>"$T/$name.log" 2>&1 &
    PIDS+=($!)
}

# joined N: the master at $MASTER counts N live workers (within 20 s).
joined() {
    local _
    for _ in $(seq 200); do
        [ "$(timeout 20 "$QUERN" workers --json --master "$MASTER" 2>/dev/null |
            jq '[.[] | select(.alive)] | length' 2>/dev/null)" = "$1" ] && return 0
        sleep 0.1
    done
    fail "the master does not count $1 live workers"
}

# gen DIR SIZE FILES [SEED]: deterministic Zipf text.
gen() {
    "$GENTEXT" --out "$1" --size "$2" --files "$3" --seed "${4:-1}"
}

# wordcount_ref DIR...: "word<TAB>count", sorted, by sort | uniq -c.
wordcount_ref() {
    cat "$@" | tr -s ' \t' '\n\n' | grep -v '^$' | sort | uniq -c |
        awk '{print $2 "\t" $1}' | sort
}

# ---- for the fault tests -----------------------------------------------------

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

# start_workers N [ARGS...]: starts workers w1..wN; their pids go in W.
start_workers() {
    local n=$1 i
    shift
    W=()
    for i in $(seq "$n"); do
        start_worker "w$i" "$@"
        W+=("${PIDS[-1]}")
    done
}

# open_notify: a FIFO for faulty.so's notify= argument, held open on fd 5
# (read-write, so attempts never block on it); its path is $T/notify.
open_notify() {
    mkfifo "$T/notify"
    exec 5<>"$T/notify"
}

# kill_worker_running PHASE: reads "PHASE PID" notices on fd 5 until an
# attempt of PHASE runs under one of the workers in W, kills that worker
# with SIGKILL and checks the attempt dies with it. Sets VICTIM.
kill_worker_running() {
    local want=$1 phase pid pp w tpid= end=$((SECONDS + 30))
    VICTIM=
    while [ -z "$VICTIM" ] && [ $SECONDS -lt $end ]; do
        read -r -t 30 phase pid <&5 || fail "no $want attempt started"
        [ "$phase" = "$want" ] || continue
        pp=$(ppid_of "$pid")
        for w in "${W[@]}"; do [ "$w" = "$pp" ] && VICTIM=$w tpid=$pid; done
    done
    [ -n "$VICTIM" ] || fail "found no worker running a $want"
    kill -9 "$VICTIM"
    forget_pid "$VICTIM"
    timeout 10 tail --pid="$tpid" -f /dev/null ||
        fail "$want attempt $tpid outlived its killed worker $VICTIM"
}

# worker_id_of PID: the id the master lists for the worker with that pid.
worker_id_of() {
    timeout 20 "$QUERN" workers --json --master "$MASTER" |
        jq -r --argjson p "$1" '.[] | select(.pid == $p) | .id'
}

# worker_state ID: active, draining, drained or dead, as the master says
# (of its newest entry: a worker back after it left has a new one).
worker_state() {
    timeout 20 "$QUERN" workers --json --master "$MASTER" |
        jq -r --arg id "$1" '[.[] | select(.id == $id)] | last | .state'
}

# shards_in I DATASET: the shard files worker wI holds in $T/dataI.
shards_in() { find "$T/data$1/$2" -name 'part-*' ! -name '*.meta*' 2>/dev/null | wc -l; }

# map_on_holder DATASET: reads "PHASE PID" notices on fd 5 until a map
# runs under one of the workers in W (w1, w2, ... with data dirs
# $T/data1, ...) holding a shard of DATASET; sets VICTIM to that worker's
# pid and VN to its number.
map_on_holder() {
    local phase pid pp i end=$((SECONDS + 30))
    VICTIM= VN=
    while [ -z "$VICTIM" ] && [ $SECONDS -lt $end ]; do
        read -r -t 30 phase pid <&5 || fail "no map started"
        [ "$phase" = map ] || continue
        pp=$(ppid_of "$pid")
        for i in $(seq "${#W[@]}"); do
            if [ "${W[$((i - 1))]}" = "$pp" ] && [ "$(shards_in "$i" "$1")" -gt 0 ]; then
                VICTIM=$pp VN=$i
            fi
        done
    done
    [ -n "$VICTIM" ] || fail "no map ran on a worker holding a shard of $1"
}

# check_wordcount OUT PARTS INPUT...: OUT holds _SUCCESS, PARTS part files
# and nothing else, and their lines are the word count of the inputs.
check_wordcount() {
    local out=$1 parts=$2
    shift 2
    [ -e "$out/_SUCCESS" ] || fail "no _SUCCESS in $out"
    [ "$(ls -A "$out" | grep -vc -e '^part-' -e '^_SUCCESS$')" = 0 ] ||
        fail "stray files in the output: $(ls -A "$out")"
    [ "$(ls "$out"/part-* | wc -l)" = "$parts" ] ||
        fail "expected $parts part files: $(ls "$out")"
    cat "$out"/part-* | sort >"$T/got"
    wordcount_ref "$@" >"$T/want"
    cmp -s "$T/got" "$T/want" ||
        fail "output differs from the reference: $(diff "$T/want" "$T/got" | head -5)"
}

# submit_faulty ARGS...: submits tests/jobs/faulty.so with ARGS and follows
# it in the background (bounded to 60 s), output in $T/submit.log; sets SUB.
submit_faulty() {
    timeout 60 "$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" \
        "$@" --wait >"$T/submit.log" 2>&1 &
    SUB=$!
}

# job_succeeds: waits for the job submit_faulty started, which must
# succeed; sets ID to its job id.
job_succeeds() {
    local rc=0
    wait "$SUB" || rc=$?
    [ $rc = 0 ] || fail "the job did not succeed (exit $rc): $(cat "$T/submit.log")"
    ID=$(head -n 1 "$T/submit.log")
}
