#!/usr/bin/env bash
# make bench-faults: what losing a worker costs. A word count on a cluster
# of a master and three workers, run undisturbed and with one worker killed
# (kill -9) halfway through, alternately, on the same data; then the same
# word count with a worker killed in the reduce phase and started again 1 s
# later on its own work dir (it keeps its map outputs: no map may run
# again, and the job may take at most the time its lost attempts take to
# run again plus 2 s longer); then the chaos loop (tests/e2e/chaos.sh: one of three
# workers restarted every 2 to 4 s, a plugin failing a third of its maps),
# BENCH_CHAOS_RUNS times, each within 180 s. Prints each run's wall time,
# the medians and ratios, and writes the same as JSON to
# build/bench/faults.json.
#
#   BENCH_SIZE   text to count (default 400M, in 12 files)
#   BENCH_RUNS   runs of each kind (default 3)
#   BENCH_CHAOS_RUNS  chaos jobs (default 9; 0: none)
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
    for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
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
WORKERS=() WDIRS=()
start_worker() { # slot index [same: start it again on its work dir]
    [ "${2:-}" = same ] || WDIRS[$1]=$D/w$1.$RANDOM
    "$BIN/quern-worker" --master "$MASTER" --work-dir "${WDIRS[$1]}" \
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

# ---- a worker restarted in the reduce phase, on its own work dir -------------
# Each restarted run is compared with an undisturbed run watched the same
# way (a status request every 0.2 s: on two cores that costs the job).
now() { date +%s.%N; }
status() { "$BIN/quern" status "$1" --master "$MASTER" --json 2>/dev/null; }
# watched NAME KILL: runs the word count into out.NAME, watching it; with
# KILL set, kills worker KILL as soon as reduces run and starts it again
# on its work dir 1 s later. Sets ID, TOOK and (with KILL) TR, the time
# from submission to the kill.
watched() {
    local t0 st state killed= k=${2:-}
    rm -rf "$D/out.$1"
    t0=$(now)
    ID=$("$BIN/quern" submit --master "$MASTER" --job "$JOBS/wordcount.so" \
        --input "$D/in" --output "$D/out.$1" -R 3 --split-size 16M) ||
        { echo "bench-faults: submit failed"; exit 1; }
    TR=
    for _ in $(seq 1500); do
        st=$(status "$ID" | jq -r '"\(.state) \(.reduces_running)"')
        state=${st% *}
        [ "$state" = running ] || break
        if [ -n "$k" ] && [ -z "$killed" ] && [ "${st#* }" -gt 0 ]; then
            kill -9 "${WORKERS[$k]}"
            wait "${WORKERS[$k]}" 2>/dev/null || true
            TR=$(echo "$(now) - $t0" | bc)
            killed=1
            sleep 1 # the restart being measured comes 1 s later
            start_worker "$k" same
        fi
        sleep 0.2
    done
    TOOK=$(printf '%.3f' "$(echo "$(now) - $t0" | bc)")
    [ "$state" = succeeded ] || { echo "bench-faults: job $1: $state"; exit 1; }
    [ -z "$k" ] || [ -n "$killed" ] || { echo "bench-faults: job $1 ended before its reduce phase was seen"; exit 1; }
    cmp -s "$D/ref" <(sort "$D/out.$1"/part-*) || { echo "bench-faults: job $1 gave a different answer"; exit 1; }
}
watched_clean=() restarted=() lost_s=() growth=() rerun_total=0 restart_ok=1
for r in $(seq "$RUNS"); do
    watched "watched$r"
    watched_clean+=("$TOOK")
    k=$(((r - 1) % 3))
    watched "restart$r" "$k"
    t=$TOOK
    # What the lost attempts cost: their tasks ran again (at once, side by
    # side); the longest of those runs.
    lost=$("$BIN/quern" status "$ID" --tasks --master "$MASTER" --json |
        jq '[.failures[] | select(.reason | contains("restarted while it ran"))
             | {kind, task}] as $l
            | [.tasks[] | select({kind, task: .index} | IN($l[]))
               | .duration_ms] | (max // 0) / 1000')
    g=$(printf '%.3f' "$(echo "$t - ${watched_clean[-1]}" | bc)")
    rerun=$(status "$ID" | jq -r '.counters.maps_rerun // 0')
    rerun_total=$((rerun_total + rerun))
    restarted+=("$t") lost_s+=("$lost") growth+=("$g")
    [ "$(echo "$g <= $lost + 2" | bc)" = 1 ] && [ "$rerun" = 0 ] || restart_ok=0
    printf '  worker %d killed %.2f s in (reduces running), started again 1 s later, run %d: %.2f s, undisturbed %.2f s (%+.2f s; its lost attempts took %.2f s to run again), maps run again: %s\n' \
        "$k" "$TR" "$r" "$t" "${watched_clean[-1]}" "$g" "$lost" "$rerun"
done
mr=$(med "${restarted[@]}")

# ---- the chaos loop ------------------------------------------------------------
CHAOS_RUNS=${BENCH_CHAOS_RUNS:-9}
chaos=()
if [ "$CHAOS_RUNS" -gt 0 ]; then
    echo "bench-faults: $CHAOS_RUNS chaos runs (tests/e2e/chaos.sh)"
    CHAOS_RUNS=$CHAOS_RUNS BUILD=$BUILD "$(dirname "$0")/../e2e/chaos.sh" >"$D/chaos.log" 2>&1 ||
        { echo "bench-faults: the chaos loop failed:"; tail -n 20 "$D/chaos.log"; exit 1; }
    grep '^chaos run' "$D/chaos.log" | sed 's/^/  /'
    mapfile -t chaos < <(sed -n 's/^chaos run [0-9]*: exact in \([0-9.]*\) s.*/\1/p' "$D/chaos.log")
fi

printf 'bench-faults: %s of text, 3 workers, -R 3, --dead-ms %s\n' "$SIZE" "$DEAD"
printf '  undisturbed median %.2f s, one worker killed median %.2f s, ratio %.2f\n' "$mc" "$mk" "$ratio"
printf '  restarted in the reduce phase median %.2f s (watched undisturbed median %.2f s), maps run again %d: %s\n' "$mr" "$(med "${watched_clean[@]}")" "$rerun_total" \
    "$([ $restart_ok = 1 ] && echo "target met (no map again, at most lost attempts + 2 s)" || echo "TARGET MISSED")"
[ ${#chaos[@]} = 0 ] || printf '  chaos: %d of %d runs exact, slowest %.1f s (target: every one within 180 s)\n' \
    "${#chaos[@]}" "$CHAOS_RUNS" "$(printf '%s\n' "${chaos[@]}" | sort -n | tail -n 1)"
{
    printf '{"size": "%s", "dead_ms": %s, "heartbeat_ms": %s, ' "$SIZE" "$DEAD" "$HB"
    printf '"undisturbed_s": [%s], ' "$(IFS=,; echo "${clean[*]}")"
    printf '"killed_s": [%s], ' "$(IFS=,; echo "${killed[*]}")"
    printf '"ratio": %.3f, ' "$ratio"
    printf '"watched_undisturbed_s": [%s], "restarted_s": [%s], ' "$(IFS=,; echo "${watched_clean[*]}")" "$(IFS=,; echo "${restarted[*]}")"
    printf '"restart_growth_s": [%s], "restart_lost_s": [%s], ' "$(IFS=,; echo "${growth[*]}")" "$(IFS=,; echo "${lost_s[*]}")"
    printf '"restart_maps_rerun": %d, "restart_target_met": %s, ' "$rerun_total" "$([ $restart_ok = 1 ] && echo true || echo false)"
    printf '"chaos_s": [%s]}\n' "$(IFS=,; echo "${chaos[*]}")"
} >"$OUT/faults.json"
echo "bench-faults: wrote $OUT/faults.json"
[ $restart_ok = 1 ] || { echo "bench-faults: a restart missed its target"; exit 1; }
