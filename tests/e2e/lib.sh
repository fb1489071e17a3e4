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
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        # SIGTERM stops the daemons; give each a bounded time, then kill.
        timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true
        # A daemon must stop cleanly (under ASan: without leaks).
        local st=0
        wait "$p" 2>/dev/null || st=$?
        if [ $st -ne 0 ] && [ $rc -eq 0 ]; then
            echo "FAIL: daemon pid $p exited with status $st on SIGTERM" >&2
            rc=1
        fi
    done
    if [ $rc -ne 0 ]; then
        echo "--- logs of the failed test ($T):"
        for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 30 "$f"; }; done
    fi
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# start_master: starts quern-master on a free loopback port; sets MASTER.
start_master() {
    mkfifo "$T/ready"
    "$BIN/quern-master" --listen 'tcp://127.0.0.1:*' --ready-fd 3 "$@" \
        3>"$T/ready" >>"$T/master.log" 2>&1 &
    PIDS+=($!)
    MASTER_PID=$!
    # The master writes its endpoint to the fifo once it listens.
    MASTER=$(timeout 10 head -n 1 "$T/ready") || fail "the master did not start"
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

# gen DIR SIZE FILES [SEED]: deterministic Zipf text.
gen() {
    "$GENTEXT" --out "$1" --size "$2" --files "$3" --seed "${4:-1}"
}

# wordcount_ref DIR...: "word<TAB>count", sorted, by sort | uniq -c.
wordcount_ref() {
    cat "$@" | tr -s ' \t' '\n\n' | grep -v '^$' | sort | uniq -c |
        awk '{print $2 "\t" $1}' | sort
}
