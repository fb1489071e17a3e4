#!/usr/bin/env bash
# make bench-master: what a master restart costs, and what keeping its
# state costs. Prints each figure with its target and writes them as JSON
# to build/bench/master.json; exits 1 if a target is missed.
#
# 1. Restart: a word count of BENCH_SIZE (about 15-20 s on 2 cores) on a
#    master with --state-dir and two workers, undisturbed, then with the
#    master killed (kill -9) at 40% of the undisturbed time and started
#    again 2 s later, then killed in the reduce phase and started again
#    2 s later. Each must finish with the undisturbed output, no map run
#    again, within 1.3x the undisturbed time plus the 2 s.
# 2. Store cost: a 1 GiB word count and the smallest job (one line), with
#    and without --state-dir, alternately: at most 5% and 10 ms more.
# 3. Load: a state dir with 1,000 finished jobs and a running job of
#    100,000 maps (half of them done) is loaded and a map assigned again
#    within 1 s of the master's start (--recovery-ms 10).
#
#   BENCH_SIZE   text for the restart runs (default 3G, in 24 files)
#   BENCH_RUNS   runs of each kind for the store cost (default 3)
set -euo pipefail
export LC_ALL=C
BUILD=${BUILD:-build}
SIZE=${BENCH_SIZE:-3G}
RUNS=${BENCH_RUNS:-3}
BIN=$(cd "$BUILD/bin" && pwd)
JOBS=$(cd "$BUILD/jobs" && pwd)
TOOLS=$(cd "$BUILD/tests" && pwd)
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
say() { echo "bench-master: $*"; }
now() { date +%s.%N; }
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
MISSED=0
check() { # name value op target
    if awk -v v="$2" -v t="$4" -v op="$3" 'BEGIN { exit !((op == "<=") ? v <= t : v >= t) }'; then
        printf '  %-46s %10s   target %s %s\n' "$1" "$2" "$3" "$4"
    else
        printf '  %-46s %10s   target %s %s   MISSED\n' "$1" "$2" "$3" "$4"
        MISSED=1
    fi
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
EP=tcp://127.0.0.1:$port
M=
# master_up [ARGS...]: the master on $EP (its log: master.log).
master_up() {
    mkfifo "$D/ready"
    "$BIN/quern-master" --listen "$EP" --http off --ready-fd 3 --heartbeat-ms 250 \
        --dead-ms 5000 "$@" 3>"$D/ready" >>"$D/master.log" 2>&1 &
    M=$!
    PIDS+=($M)
    timeout 20 head -n 1 "$D/ready" >/dev/null || fail "the master did not start"
    rm -f "$D/ready"
}
master_kill() { kill -9 "$M"; wait "$M" 2>/dev/null || true; }
master_stop() { kill "$M"; wait "$M" 2>/dev/null || true; }
for i in 1 2; do
    "$BIN/quern-worker" --master "$EP" --work-dir "$D/w$i" >>"$D/worker$i.log" 2>&1 &
    PIDS+=($!)
done

# job INPUT NAME: a word count; prints its wall time in seconds.
job() {
    rm -rf "$D/out.$2"
    local t0 t1
    t0=$(now)
    "$BIN/quern" submit --master "$EP" --job "$JOBS/wordcount.so" --input "$1" \
        --output "$D/out.$2" -R 2 --split-size 64M --wait --json \
        >"$D/$2.json" 2>"$D/$2.err" || fail "job $2 failed: $(tail -3 "$D/$2.err")"
    t1=$(now)
    echo "$t1 - $t0" | bc
}
counter() { tail -n +2 "$D/$1.json" | jq ".counters.$2"; }

# ---- 1. restarts -------------------------------------------------------------
say "generating $SIZE of Zipf text in 24 files"
"$TOOLS/gentext" --out "$D/big" --size "$SIZE" --files 24 >/dev/null
cat "$D"/big/* >/dev/null
master_up --state-dir "$D/state"
t_clean=$(job "$D/big" clean)
sort "$D"/out.clean/part-* >"$D/ref"
say "undisturbed: $t_clean s"

# restarted NAME: the job NAME ran to its end across restarts: its output
# is the undisturbed one's, and no map that was done ran again (the
# scheduler counts those in maps_rerun). Maps that had not finished may
# start again: an assignment sent just before the kill can die with the
# master. Sets STARTED_AGAIN to how many did.
restarted() {
    cmp -s "$D/ref" <(sort "$D"/out."$1"/part-*) || fail "$1: the output differs"
    local rerun
    rerun=$(counter "$1" maps_rerun)
    [ "$rerun" = 0 ] || fail "$1: $rerun done maps ran again after the restart"
    STARTED_AGAIN=$(grep -c "map task [0-9]* runs again" "$D/master.log" || true)
    cat "$D/master.log" >>"$D/master.log.all"
    : >"$D/master.log"
}
fail() {
    say "$*"
    mkdir -p "$OUT/master-logs"
    cp "$D"/*.log* "$D"/*.err "$OUT/master-logs/" 2>/dev/null || true
    say "logs kept in $OUT/master-logs"
    exit 1
}

: >"$D/master.log"
# killed NAME: the job NAME runs in the background (its time in NAME.t)
# while the caller waits for the moment, kills the master and starts it
# again 2 s later (the measure's 2 s); then its time.
start_killed() {
    (
        t0=$(now)
        job "$D/big" "$1" >/dev/null
        echo "$(now) - $t0" | bc >"$D/$1.t"
    ) &
    SUB=$!
}
# finish_killed NAME: kill, start again 2 s later (the measure's 2 s),
# wait for the job; its time in T_KILLED.
finish_killed() {
    master_kill
    sleep 2
    master_up --state-dir "$D/state"
    wait "$SUB" || fail "$1: the job failed across the restart"
    T_KILLED=$(cat "$D/$1.t")
}

at=$(echo "$t_clean * 0.4" | bc -l)
start_killed map
sleep "$at"
finish_killed map
t_map=$T_KILLED
restarted map
again_map=$STARTED_AGAIN
say "killed at $(printf '%.1f' "$at") s (map phase), restarted 2 s later: $t_map s" \
    "($again_map unfinished maps started again)"

# In the reduce phase: once every map is done and a reduce runs.
start_killed reduce
for _ in $(seq 1200); do
    id=$(head -n 1 "$D/reduce.json" 2>/dev/null || true)
    if [ -n "$id" ]; then
        st=$("$BIN/quern" status "$id" --master "$EP" --json 2>/dev/null || true)
        [ "$(jq -r '"\(.maps_done == .maps and .reduces_running > 0)"' <<<"${st:-{\}}" 2>/dev/null)" = true ] && break
    fi
    sleep 0.05
done
finish_killed reduce
t_red=$T_KILLED
restarted reduce
again_red=$STARTED_AGAIN
say "killed in the reduce phase, restarted 2 s later: $t_red s" \
    "($again_red unfinished maps started again)"
master_stop

# ---- 2. the store's cost -----------------------------------------------------
say "generating 1G of Zipf text in 12 files"
"$TOOLS/gentext" --out "$D/g1" --size 1G --files 12 >/dev/null
mkdir -p "$D/small"
echo "the smallest job" >"$D/small/one.txt"
with=() without=() swith=() swithout=()
for r in $(seq "$RUNS"); do
    for mode in with without; do
        if [ $mode = with ]; then master_up --state-dir "$D/state2"; else master_up; fi
        t=$(job "$D/g1" "g1$mode$r")
        s=()
        for k in $(seq 7); do s+=("$(job "$D/small" "s$mode$r$k")"); done
        sm=$(med "${s[@]}")
        if [ $mode = with ]; then
            with+=("$t")
            swith+=("$sm")
        else
            without+=("$t")
            swithout+=("$sm")
        fi
        master_stop
        say "run $r, $mode --state-dir: 1 GiB $t s, smallest job median $sm s"
    done
done
gw=$(med "${with[@]}")
gwo=$(med "${without[@]}")
sw=$(med "${swith[@]}")
swo=$(med "${swithout[@]}")

# ---- 3. loading a big state --------------------------------------------------
head -c 2000000 "$D/g1/$(ls "$D/g1" | head -1)" >"$D/bigjob.txt"
"$TOOLS/mkstate" "$D/state3" "$JOBS/wordcount.so" "$D/bigjob.txt" 1000 100000 50000 >/dev/null
t0=$(now)
master_up --state-dir "$D/state3" --recovery-ms 10
t_ready=$(echo "$(now) - $t0" | bc)
t_assigned=
for _ in $(seq 200); do
    if grep -q "job-big-1 map task [0-9]* runs again\|-> worker" "$D/master.log" ||
        [ "$("$BIN/quern" status job-big-1 --master "$EP" --json | jq .maps_running)" -gt 0 ]; then
        t_assigned=$(echo "$(now) - $t0" | bc)
        break
    fi
    sleep 0.02
done
loadline=$(grep "state in" "$D/master.log" | tail -1 | sed 's/.*master: //')
rss=$("$BIN/quern" status job-big-1 --master "$EP" --json | jq .master_rss_peak_bytes)
master_stop

echo
say "results"
check "restart in map phase: s over 1.3x clean + 2 s" "$t_map" "<=" "$(echo "$t_clean * 1.3 + 2" | bc -l | xargs printf '%.2f')"
check "restart in reduce phase: s over 1.3x clean + 2 s" "$t_red" "<=" "$(echo "$t_clean * 1.3 + 2" | bc -l | xargs printf '%.2f')"
ratio=$(echo "$gw / $gwo" | bc -l | xargs printf '%.3f')
check "1 GiB word count: --state-dir / none" "$ratio" "<=" 1.05
extra=$(echo "($sw - $swo) * 1000" | bc -l | xargs printf '%.1f')
check "smallest job: ms more with --state-dir" "$extra" "<=" 10
check "load 1000 jobs + 100k maps: s to a map assigned" "${t_assigned:-99}" "<=" 1.0
echo "  (clean $t_clean s; 1 GiB median $gw s with, $gwo s without; smallest" \
    "median $sw s with, $swo s without; master ready after $t_ready s: $loadline;" \
    "its peak RSS $rss bytes)"
{
    printf '{"size": "%s", "clean_s": %s, "map_restart_s": %s, "reduce_restart_s": %s, ' \
        "$SIZE" "$t_clean" "$t_map" "$t_red"
    printf '"gib_with_s": [%s], "gib_without_s": [%s], ' "$(IFS=,; echo "${with[*]}")" "$(IFS=,; echo "${without[*]}")"
    printf '"smallest_with_s": [%s], "smallest_without_s": [%s], ' "$(IFS=,; echo "${swith[*]}")" "$(IFS=,; echo "${swithout[*]}")"
    printf '"load_ready_s": %s, "load_assigned_s": %s}\n' "$t_ready" "${t_assigned:-null}"
} >"$OUT/master.json"
say "wrote $OUT/master.json"
exit $MISSED
