#!/usr/bin/env bash
# make bench: Quern against the tools people use instead, measured side by
# side in one run on generated data.
#
#   BENCH_SIZE   text to count (default 200M, in 8 files)
#   BENCH_RUNS   runs of each command (default 3; median and spread shown)
#   BENCH_TMP    where to put the data (default $TMPDIR or /tmp)
#
# Prints a table and writes the same as JSON to build/bench/results.json.
set -euo pipefail
export LC_ALL=C
BUILD=${BUILD:-build}
SIZE=${BENCH_SIZE:-200M}
RUNS=${BENCH_RUNS:-3}
BIN=$(cd "$BUILD/bin" && pwd)
JOBS=$(cd "$BUILD/jobs" && pwd)
GENTEXT=$(cd "$BUILD/tests" && pwd)/gentext
OUT=$BUILD/bench
mkdir -p "$OUT"
D=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/quern-bench-XXXXXX")
export TMPDIR=$D
trap 'rm -rf "$D"' EXIT
results=()

# measure NAME CMD...: runs CMD $RUNS times; records wall, CPU, peak RSS.
measure() {
    local name=$1
    shift
    local walls=() cpu=0 rss=0
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f '%e %U %S %M' -o "$D/time" "$@" >"$D/$name.out" 2>"$D/$name.err" ||
            { echo "bench: $name failed:"; cat "$D/$name.err"; exit 1; }
        read -r wall user sys maxkb <"$D/time"
        walls+=("$wall")
        cpu=$(echo "$user + $sys" | bc)
        [ "$maxkb" -gt "$rss" ] && rss=$maxkb
    done
    local sorted median lo hi
    sorted=$(printf '%s\n' "${walls[@]}" | sort -n)
    median=$(echo "$sorted" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    lo=$(echo "$sorted" | head -n 1)
    hi=$(echo "$sorted" | tail -n 1)
    results+=("$name $median $lo $hi $cpu $rss")
}

echo "bench: generating $SIZE of Zipf text in 8 files"
"$GENTEXT" --out "$D/in" --size "$SIZE" --files 8
bytes=$(cat "$D"/in/* | wc -c)
cat "$D"/in/* >/dev/null # the page cache holds it for every contender

# Word count: Quern (2 workers, R = 4) against mawk and sort | uniq -c.
quern_wc() {
    rm -rf "$D/qout"
    "$BIN/quern" run --job "$JOBS/wordcount.so" --input "$D/in" \
        --output "$D/qout" -R 4 --workers 2 --json
}
awk_wc() {
    cat "$D"/in/* | mawk '{ for (i = 1; i <= NF; i++) c[$i]++ }
        END { for (w in c) print w "\t" c[w] }'
}
sort_wc() {
    cat "$D"/in/* | tr -s ' \t' '\n\n' | grep -v '^$' | sort --parallel=2 |
        uniq -c
}
export D BIN JOBS
export -f quern_wc awk_wc sort_wc
measure quern-wordcount bash -c quern_wc
cp "$D/quern-wordcount.out" "$OUT/wordcount-job.json"
measure mawk-hash-count bash -c awk_wc
measure sort-uniq-c bash -c sort_wc
sort "$D/mawk-hash-count.out" >"$D/want"
cat "$D"/qout/part-* | sort | cmp - "$D/want" ||
    { echo "bench: Quern's word count differs from mawk's"; exit 1; }
num() { grep -o "\"$1\": [0-9]*" "$OUT/wordcount-job.json" | grep -o '[0-9]*$'; }
shuffle_raw=$(num shuffle_bytes_raw)
shuffle_z=$(num shuffle_bytes_compressed)
task_rss=$(num task_rss_peak_bytes)
worker_rss=$(num worker_rss_peak_bytes)

# Memory: intermediate data of more than ten times the sort buffer (grep
# '.' emits every line) with the default --sort-mb 64.
echo "bench: memory run, --sort-mb 64 with about 11 x 64 MiB of intermediate data"
rm -rf "$D/in"
"$GENTEXT" --out "$D/big" --size 704M --files 1 --seed 9
"$BIN/quern" run --job "$JOBS/grep.so" --arg 'pattern=.' --input "$D/big" \
    --output "$D/gout" -R 2 --split-size 1G --json >"$OUT/memory-job.json" 2>"$D/mem.err" ||
    { echo "bench: memory run failed"; cat "$D/mem.err"; exit 1; }
mnum() { grep -o "\"$1\": [0-9]*" "$OUT/memory-job.json" | grep -o '[0-9]*$'; }
m_inter=$(mnum intermediate_bytes_raw)
m_task=$(mnum task_rss_peak_bytes)
m_worker=$(mnum worker_rss_peak_bytes)

mib() { echo "scale=1; $1 / 1048576" | bc; }
{
    echo
    printf 'word count, %s MiB of text in 8 files (%s runs each, page cache warm)\n' \
        "$(mib "$bytes")" "$RUNS"
    printf '%-18s %9s %15s %9s %9s %10s %10s\n' command 'wall s' 'spread s' 'MB/s' 'CPU s' 'peak RSS' 'vs quern'
    qwall=$(echo "${results[0]}" | cut -d' ' -f2)
    for r in "${results[@]}"; do
        read -r name med lo hi cpu rss <<<"$r"
        printf '%-18s %9s %15s %9.1f %9s %9sM %9.2fx\n' "$name" "$med" "$lo-$hi" \
            "$(echo "$bytes / 1000000 / $med" | bc -l)" "$cpu" "$((rss / 1024))" \
            "$(echo "$med / $qwall" | bc -l)"
    done
    printf 'quern shuffle: %s MiB raw, %s MiB compressed over the sockets\n' \
        "$(mib "$shuffle_raw")" "$(mib "$shuffle_z")"
    printf 'quern peak RSS: task %s MiB, worker %s MiB\n' "$(mib "$task_rss")" "$(mib "$worker_rss")"
    echo
    printf 'memory, grep . with --sort-mb 64: intermediate %s MiB (%.1fx the buffer)\n' \
        "$(mib "$m_inter")" "$(echo "$m_inter / 67108864" | bc -l)"
    printf 'peak RSS: task %s MiB, worker %s MiB (bound: 64 + 64 = 128 MiB)\n' \
        "$(mib "$m_task")" "$(mib "$m_worker")"
} | tee "$OUT/results.txt"

{
    printf '{\n  "wordcount": {\n    "bytes": %s,\n    "runs": %s,\n    "commands": [\n' "$bytes" "$RUNS"
    n=${#results[@]}
    i=0
    for r in "${results[@]}"; do
        read -r name med lo hi cpu rss <<<"$r"
        i=$((i + 1))
        printf '      {"name": "%s", "wall_s_median": %s, "wall_s_min": %s, "wall_s_max": %s, "cpu_s_last": %s, "peak_rss_kib": %s}%s\n' \
            "$name" "$med" "$lo" "$hi" "$cpu" "$rss" "$([ $i -lt $n ] && echo ,)"
    done
    printf '    ],\n    "shuffle_bytes_raw": %s,\n    "shuffle_bytes_compressed": %s,\n' "$shuffle_raw" "$shuffle_z"
    printf '    "task_rss_peak_bytes": %s,\n    "worker_rss_peak_bytes": %s\n  },\n' "$task_rss" "$worker_rss"
    printf '  "memory": {"sort_mb": 64, "intermediate_bytes_raw": %s, "task_rss_peak_bytes": %s, "worker_rss_peak_bytes": %s}\n}\n' \
        "$m_inter" "$m_task" "$m_worker"
} >"$OUT/results.json"
echo "bench: results in $OUT/results.txt and $OUT/results.json"
