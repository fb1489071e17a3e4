#!/usr/bin/env bash
# make bench-faults: what losing a worker costs. A word count on a cluster
# of a master and three workers, run undisturbed and with one worker killed
# (kill -9) halfway through, alternately, on the same data; prints each
# run's wall time, the medians and their ratio, and writes the same as JSON
# to build/bench/faults.json.
#
#   BENCH_SIZE   text to count (default 400M, in 12 files)
#   BENCH_RUNS   runs of each kind (default 3)
#   BENCH_DEAD_MS, BENCH_HEARTBEAT_MS   the master's detection settings
#                (default 2000 and 250)
set -euo pipefail
export LC_ALL=C
BUILD=${BUILD:-build}
SIZE=${BENCH_SIZE:-400M}
RUNS=${BENCH_RUNS:-3}
DEAD=${BENCH_DEAD_MS:-2000}
HB=${BENCH_HEARTBEAT_MS:-250}
BIN=$(cd "$BUILD/bin" && pwd)
JOBS=$(cd "$BUILD/jobs" && pwd)
GENTEXT=$(cd "$BUILD/tests" && pwd)/gentext
OUT=$BUILD/bench
mkdir -p "$OUT"
D=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/quern-bench-XXXXXX")
export TMPDIR=$D
PIDS=()
stop_all() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$D"
}
trap stop_all EXIT

echo "bench-faults: generating $SIZE of Zipf text in 12 files"
"$GENTEXT" --out "$D/in" --size "$SIZE" --files 12
cat "$D"/in/* >/dev/null

mkfifo "$D/ready"
"$BIN/quern-master" --listen 'tcp://127.0.0.1:*' --ready-fd 3 \
    --heartbeat-ms "$HB" --dead-ms "$DEAD" 3>"$D/ready" >>"$D/master.log" 2>&1 &
PIDS+=($!)
MASTER=$(timeout 10 head -n 1 "$D/ready")
WORKERS=()
start_worker() { # slot index
    "$BIN/quern-worker" --master "$MASTER" --work-dir "$D/w$1.$RANDOM" \
        >>"$D/worker$1.log" 2>&1 &
    PIDS+=($!)
    WORKERS[$1]=$!
}
for i in 0 1 2; do start_worker $i; done
# Joined: the master lists three live workers.
for _ in $(seq 100); do
    n=$("$BIN/quern" workers --master "$MASTER" --json 2>/dev/null |
        python3 -c 'import json,sys; print(sum(1 for w in json.load(sys.stdin) if w["alive"]))' 2>/dev/null || echo 0)
    [ "$n" -ge 3 ] && break
    sleep 0.1
done

# job NAME: runs the word count; prints its wall time in seconds.
job() {
    rm -rf "$D/out.$1"
    local t0 t1
    t0=$(date +%s.%N)
    "$BIN/quern" submit --master "$MASTER" --job "$JOBS/wordcount.so" \
        --input "$D/in" --output "$D/out.$1" -R 3 --split-size 16M --wait \
        --json >"$D/$1.json" 2>"$D/$1.err" || { echo "bench-faults: job $1 failed"; cat "$D/$1.err"; exit 1; }
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}
counter() { # file name
    tail -n +2 "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("counters",{}).get(sys.argv[1],0))' "$2" 2>/dev/null || echo "?"
}

clean=() killed=()
base=$(job warmup)
echo "bench-faults: warm-up run $base s"
sort "$D"/out.warmup/part-* >"$D/ref"
for r in $(seq "$RUNS"); do
    t=$(job "clean$r")
    clean+=("$t")
    echo "  undisturbed run $r: $t s"
    # The same job, with worker k killed halfway through (by the
    # undisturbed run's clock).
    k=$(((r - 1) % 3))
    half=$(echo "$t / 2" | bc -l)
    (
        sleep "$half"
        kill -9 "${WORKERS[$k]}" 2>/dev/null || true
    ) &
    killer=$!
    t=$(job "kill$r")
    wait $killer || true
    killed+=("$t")
    cmp -s "$D/ref" <(sort "$D"/out."kill$r"/part-*) || { echo "bench-faults: run $r with a worker killed gave a different answer"; exit 1; }
    echo "  worker killed at $(printf '%.1f' "$half") s, run $r: $t s" \
        "(maps run again: $(counter "$D/kill$r.json" maps_rerun)," \
        "failed attempts: $(counter "$D/kill$r.json" failed_attempts))"
    wait "${WORKERS[$k]}" 2>/dev/null || true
    start_worker $k
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
mc=$(med "${clean[@]}")
mk=$(med "${killed[@]}")
ratio=$(echo "$mk / $mc" | bc -l)
printf 'bench-faults: %s of text, 3 workers, -R 3, --dead-ms %s\n' "$SIZE" "$DEAD"
printf '  undisturbed median %.2f s, one worker killed median %.2f s, ratio %.2f\n' "$mc" "$mk" "$ratio"
{
    printf '{"size": "%s", "dead_ms": %s, "heartbeat_ms": %s, ' "$SIZE" "$DEAD" "$HB"
    printf '"undisturbed_s": [%s], ' "$(IFS=,; echo "${clean[*]}")"
    printf '"killed_s": [%s], ' "$(IFS=,; echo "${killed[*]}")"
    printf '"ratio": %.3f}\n' "$ratio"
} >"$OUT/faults.json"
echo "bench-faults: wrote $OUT/faults.json"
