#!/usr/bin/env bash
# make bench: Quern against the tools people use instead, measured side by
# side in one run on data generated for it, the same bytes every time.
#
#   BENCH_SIZE          text for word count and grep, and bytes of TeraSort
#                       records (default 1G; a number with K, M, G or T)
#   BENCH_RUNS          timed runs of each command (default 3)
#   BENCH_LATENCY_RUNS  runs of the smallest job (default 10)
#   BENCH_SANDBOX_PAIRS pairs of runs, sandbox on and off, of word count
#                       and TeraSort (default 8)
#   BENCH_TMP           where the data goes (default $TMPDIR or /tmp)
#
# The sections:
#   1. word count: Quern with 2 workers against mawk, sort | uniq -c and
#      quern run --inline (all in one process)
#   2. TeraSort: 100-byte records, against sort -S 4G --parallel=2, and
#      with its output compressed (--output-codec zstd)
#   3. grep for a rare pattern, against grep -E -c
#   4. the smallest job: one line, quern run start to exit
#   5. scaling: word count at BENCH_SIZE / 4, BENCH_SIZE and 4 x BENCH_SIZE
#   6. task start: 65 tasks one at a time, in the sandbox and outside it
#   7. the sandbox's cost: word count and TeraSort with tasks in their
#      sandbox and outside it (QUERN_SANDBOX=off), in pairs
#   8. compressed input: word count of the text as gzip -1 and zstd -3
#      files, against zcat and zstd -dc alone
#   then the memory run (grep '.' with --sort-mb 64 and ten times that of
#   intermediate data), the memory bounds of every Quern run, and the
#   targets, each met or not.
#
# Prints a table, also written to build/bench/results.txt; the same numbers
# are in build/bench/results.json, and each Quern run's job JSON is kept in
# build/bench/jobs/. Exits 1 when a command fails or outputs disagree; a
# missed target is reported, not an error.
set -euo pipefail
export LC_ALL=C

BUILD=${BUILD:-build}
SIZE=${BENCH_SIZE:-1G}
RUNS=${BENCH_RUNS:-3}
LAT_RUNS=${BENCH_LATENCY_RUNS:-10}
PAIRS=${BENCH_SANDBOX_PAIRS:-8}
# Quern's default --sort-mb (master/client/cli.c): the runs below use it, the memory
# run says so explicitly. The memory bounds are counted from it.
SORT_MB=64
# A rare word of gentext's vocabulary (tests/tools/gentext.c: word 49999 of
# 50000, "ta" "po" "del"), whole: about one line in 50000 has it.
PATTERN='(^|[[:space:]])tapodel([[:space:]]|$)'
# TeraSort's split size: a map's output sorts in one pass when it fits the
# --sort-mb buffer (each record takes 24 bytes more there), which 48M of
# 100-byte records does and the default 64M does not; at 256M on 2 cores
# 48M took 2.29 s, 64M 3.27 s (8 spills and merges), sort 2.71 s.
TERA_SPLIT=48M
MIB=1048576

fail() {
    echo "bench: $1" >&2
    [ -z "${2:-}" ] || tail -n 20 "$2" >&2
    exit 1
}

# bytes SIZE: SIZE (like 64M or 1G; K, M, G, T are powers of 1024) in bytes.
bytes() {
    local n=${1%[KkMmGgTt]} unit=${1##*[0-9]}
    [[ $n =~ ^[0-9]+$ ]] || return 1
    case $unit in
    '') echo "$n" ;;
    [Kk]) echo $((n << 10)) ;;
    [Mm]) echo $((n << 20)) ;;
    [Gg]) echo $((n << 30)) ;;
    [Tt]) echo $((n << 40)) ;;
    *) return 1 ;;
    esac
}

# gib BYTES: BYTES in GiB, one decimal, for messages.
gib() { echo "$(($1 / 1073741824)).$(($1 % 1073741824 * 10 / 1073741824))"; }

# free_bytes: bytes free on the file system that holds $D.
free_bytes() { df --output=avail -B1 "$D" | tail -n 1 | tr -d ' '; }

# warm FILE...: reads the files, so that the page cache holds them for
# every contender alike; prints their size in bytes.
warm() { cat "$@" | wc -c; }

if ! S=$(bytes "$SIZE") || [ "$S" -lt $MIB ]; then
    fail "BENCH_SIZE must be a size of at least 1M, like 256M or 1G, not '$SIZE'"
fi
[[ $RUNS =~ ^[1-9][0-9]?$ ]] || fail "BENCH_RUNS must be from 1 to 99, not '$RUNS'"
[[ $LAT_RUNS =~ ^[1-9][0-9]{0,2}$ ]] ||
    fail "BENCH_LATENCY_RUNS must be from 1 to 999, not '$LAT_RUNS'"
[[ $PAIRS =~ ^[1-9][0-9]?$ ]] ||
    fail "BENCH_SANDBOX_PAIRS must be from 1 to 99, not '$PAIRS'"
for tool in jq mawk /usr/bin/time; do
    command -v "$tool" >/dev/null || fail "$tool is missing (make bench installs it)"
done

BIN=$(cd "$BUILD/bin" && pwd)
JOBS=$(cd "$BUILD/jobs" && pwd)
TOOLS=$(cd "$BUILD/tests" && pwd)
mkdir -p "$BUILD/bench"
OUT=$(cd "$BUILD/bench" && pwd)
rm -rf "$OUT/jobs"
mkdir "$OUT/jobs"
D=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/quern-bench-XXXXXX")
D=$(cd "$D" && pwd) # Quern takes --output as a path only with a '/'
trap 'rm -rf "$D"' EXIT
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# sort's temporary files and Quern's worker folders go with the data.
export TMPDIR=$D
mkdir "$D/out" "$D/runs" "$D/cmd" "$D/sec"
: >"$D/quern-ids"

# Disk: the largest step before scaling is TeraSort (input, Quern's output,
# sort's output and the intermediate files), or the memory run's 704M in
# and out; scaling needs 4 x BENCH_SIZE of text.
need=$((S * 7 / 2 > 2048 * MIB ? S * 7 / 2 : 2048 * MIB))
need=$((need + 256 * MIB))
free=$(free_bytes)
[ "$free" -ge "$need" ] ||
    fail "not enough disk space in $D: the benchmarks need $(gib "$need") GiB free, there are $(gib "$free") GiB (set BENCH_TMP or a smaller BENCH_SIZE)"
scale_need=$((S * 4 * 11 / 10 + 256 * MIB))
[ "$free" -ge "$scale_need" ] ||
    echo "bench: warning: only $(gib "$free") GiB free in $D; the scaling run at 4 x $SIZE needs $(gib "$scale_need") GiB and will be skipped unless space frees up" >&2

# ---------------------------------------------------------------------------
# Measuring

# run_once ID KIND CMD...: runs CMD once and adds a line to
# $D/runs/ID.jsonl: wall seconds, CPU seconds (user + sys of CMD and all its
# descendants), peak RSS, and from a Quern run's JSON its peaks and shuffle
# bytes. KIND is quern (a quern run --json: its job JSON must say
# succeeded, and is kept in $OUT/jobs), inline (quern run --inline --json)
# or plain (a baseline). Removes $CLEAN, the command's output, first. CMD's
# stdout stays in $D/out/ID.
run_once() {
    local id=$1 kind=$2 runs=$D/runs/$1.jsonl i=1 t0 t1 user sys maxkb job
    shift 2
    [ ! -f "$runs" ] || i=$(($(wc -l <"$runs") + 1))
    echo "bench: $id, run $i" >&2
    [ -z "${CLEAN:-}" ] || rm -rf "$CLEAN"
    # The clock is the shell's: /usr/bin/time's own is in 10 ms steps, too
    # coarse for the smallest job. Its fork adds a millisecond.
    t0=${EPOCHREALTIME/./}
    /usr/bin/time -f '%U %S %M' -o "$D/time" "$@" >"$D/out/$id" 2>"$D/err" ||
        fail "$id failed (run $i):" "$D/err"
    t1=${EPOCHREALTIME/./}
    read -r user sys maxkb <"$D/time"
    job=/dev/null
    if [ "$kind" != plain ]; then
        job=$OUT/jobs/$id-$(printf %02d "$i").json
        cp "$D/out/$id" "$job"
        jq -e 'type == "object" and (.state // "succeeded") == "succeeded"' \
            "$job" >/dev/null 2>&1 ||
            fail "$id did not print a succeeded job's JSON (run $i)" "$D/err"
    fi
    jq -n -c --argjson us $((t1 - t0)) --argjson user "$user" \
        --argjson sys "$sys" --argjson kib "$maxkb" \
        --arg file "jobs/${job##*/}" --slurpfile job "$job" '
        ($job[0] // null) as $j
        | {wall_s: ($us / 1e6), cpu_s: ($user + $sys),
           time_max_rss_bytes: ($kib * 1024),
           job_json: (if $j then $file else null end),
           elapsed_ms: $j.elapsed_ms,
           master_rss_peak_bytes: $j.master_rss_peak_bytes,
           worker_rss_peak_bytes: $j.worker_rss_peak_bytes,
           task_rss_peak_bytes: $j.task_rss_peak_bytes,
           rss_peak_bytes: $j.rss_peak_bytes,
           intermediate_bytes_raw: $j.counters.intermediate_bytes_raw,
           shuffle_bytes_raw: $j.counters.shuffle_bytes_raw,
           shuffle_bytes_compressed: $j.counters.shuffle_bytes_compressed}' \
        >>"$runs"
}

# jq: the median of an array of numbers (null when empty).
JQ_MEDIAN='def median: sort | if length == 0 then null
    elif length % 2 == 1 then .[(length - 1) / 2]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;'

# summarise ID KIND LABEL: $D/cmd/ID.json from ID's runs: wall seconds
# (median, min, max), CPU seconds (median), peak RSS (the largest of the
# runs) and the last run's shuffle bytes.
summarise() {
    jq -s --arg id "$1" --arg kind "$2" --arg name "$3" "$JQ_MEDIAN"'
        # The largest of the runs, or null if a run did not report it.
        def peak(f): map(f) | if any(. == null) then null else max end;
        {id: $id, kind: $kind, name: $name,
         wall_s: {median: (map(.wall_s) | median),
                  min: (map(.wall_s) | min), max: (map(.wall_s) | max)},
         cpu_s: (map(.cpu_s) | median),
         rss_bytes: (if $kind == "quern" then
                         {master: peak(.master_rss_peak_bytes),
                          worker: peak(.worker_rss_peak_bytes),
                          task: peak(.task_rss_peak_bytes), process: null}
                     elif $kind == "inline" then
                         # One process: /usr/bin/time sees the same peak
                         # when the JSON does not say.
                         {master: null, worker: null, task: null,
                          process: peak(.rss_peak_bytes // .time_max_rss_bytes)}
                     else {master: null, worker: null, task: null,
                           process: peak(.time_max_rss_bytes)} end),
         intermediate_bytes_raw: last.intermediate_bytes_raw,
         shuffle_bytes_raw: last.shuffle_bytes_raw,
         shuffle_bytes_compressed: last.shuffle_bytes_compressed,
         runs: .}' "$D/runs/$1.jsonl" >"$D/cmd/$1.json"
    [ "$2" != quern ] || echo "$1" >>"$D/quern-ids"
}

# measure ID KIND LABEL CMD...: CMD's runs, one after the other: BENCH_RUNS
# of them, or MEASURE_RUNS when set (see run_once); then its summary.
measure() {
    local id=$1 kind=$2 label=$3 i
    shift 3
    for ((i = 1; i <= ${MEASURE_RUNS:-$RUNS}; i++)); do
        run_once "$id" "$kind" "$@"
    done
    summarise "$id" "$kind" "$label"
}

# not_measured ID KIND LABEL WHY: a command that could not run here.
not_measured() {
    jq -n --arg id "$1" --arg kind "$2" --arg name "$3" --arg why "$4" \
        '{id: $id, kind: $kind, name: $name, not_measured: $why}' >"$D/cmd/$1.json"
}

# section NAME BYTES EXTRA-JSON ID...: $D/sec/NAME.json, the commands ID...
# over BYTES of input, each with its throughput and its speedup (its median
# wall time over the first command's, Quern's), merged into EXTRA-JSON.
section() {
    local name=$1 nbytes=$2 extra=$3 files=() id
    shift 3
    for id in "$@"; do
        files+=("$D/cmd/$id.json")
    done
    jq -s --argjson bytes "$nbytes" --argjson extra "$extra" '
        .[0].wall_s.median as $q
        | $extra + {input_bytes: $bytes, commands: (to_entries | map(.value + {
            mb_per_s: (if .value.wall_s then $bytes / 1e6 / .value.wall_s.median
                       else null end),
            speedup: (if .key == 0 or .value.wall_s == null then null
                      else .value.wall_s.median / $q end)}))}' \
        "${files[@]}" >"$D/sec/$name.json"
}

# sorted_parts DIR: the part files' lines, sorted.
sorted_parts() { cat "$1"/part-* | sort; }

# sandbox_pairs ID OUT CMD...: the Quern run CMD (whose --output is OUT),
# BENCH_SANDBOX_PAIRS times with tasks in their sandbox (ID-sb, output in
# OUT) and outside it (ID-nosb, OUT-nosb), the two runs of a pair back to
# back and the order turned at each pair: on, off; off, on; ... This
# machine's speed wanders from one run to the next by more than the 2 % to
# be seen (TeraSort at 1G, 12 runs: 9.3 to 11.9 s), and the two runs of a
# pair share most of what it does; the cost is the median of the pairs'
# on / off ratios (see the targets).
sandbox_pairs() {
    local id=$1 out=$2 i a
    shift 2
    local cmd=("$@") off=("$@")
    for ((a = 0; a < ${#off[@]}; a++)); do
        [ "${off[a]}" != "$out" ] || off[a]=$out-nosb
    done
    for ((i = 1; i <= PAIRS; i++)); do
        if ((i % 2)); then
            CLEAN=$out run_once "$id-sb" quern env QUERN_SANDBOX=auto "${cmd[@]}"
            CLEAN=$out-nosb run_once "$id-nosb" quern env QUERN_SANDBOX=off "${off[@]}"
        else
            CLEAN=$out-nosb run_once "$id-nosb" quern env QUERN_SANDBOX=off "${off[@]}"
            CLEAN=$out run_once "$id-sb" quern env QUERN_SANDBOX=auto "${cmd[@]}"
        fi
    done
    summarise "$id-sb" quern "sandbox on, $PAIRS pairs"
    summarise "$id-nosb" quern 'sandbox off, in turns'
}

# ---------------------------------------------------------------------------
# 1. Word count

echo "bench: generating $SIZE of Zipf text in 8 files" >&2
"$TOOLS/gentext" --out "$D/text" --size "$S" --files 8
TEXT=("$D"/text/*)
text_bytes=$(warm "${TEXT[@]}")

# Does this quern have --inline? One tiny run says; "not supported" (exit 2)
# makes its row n/a, anything else unexpected fails the benchmark.
mkdir "$D/tiny"
printf 'a b a\n' >"$D/tiny/t.txt"
rc=0
"$BIN/quern" run --inline --job "$JOBS/wordcount.so" --input "$D/tiny" \
    --output "$D/tiny-out" -R 4 --json >"$D/tiny.json" 2>"$D/tiny.err" || rc=$?
if [ $rc = 0 ]; then
    [ "$(sorted_parts "$D/tiny-out")" = "$(printf 'a\t2\nb\t1')" ] ||
        fail "quern run --inline counted 'a b a' wrong: $(sorted_parts "$D/tiny-out")"
    inline=yes
elif [ $rc = 2 ] && grep -q 'not supported' "$D/tiny.err"; then
    inline=no
else
    fail "quern run --inline exited $rc:" "$D/tiny.err"
fi

# Contenders take turns, run by run, so that a change in what else the
# machine does falls on all of them alike.
for ((i = 1; i <= RUNS; i++)); do
    CLEAN=$D/wc-quern run_once wordcount quern \
        "$BIN/quern" run --job "$JOBS/wordcount.so" --input "$D/text" \
        --output "$D/wc-quern" -R 4 --workers 2 --json
    # shellcheck disable=SC2016 # mawk's and the inner shell's own variables
    run_once mawk plain \
        mawk '{ for (i = 1; i <= NF; i++) c[$i]++ }
            END { for (w in c) print w "\t" c[w] }' "${TEXT[@]}"
    run_once sort-uniq-c plain \
        bash -c 'set -o pipefail
            cat "$@" | tr -s " \t" "\n\n" | sort --parallel=2 | uniq -c' sh "${TEXT[@]}"
    [ $inline = no ] || CLEAN=$D/wc-inline run_once wordcount-inline inline \
        "$BIN/quern" run --inline --job "$JOBS/wordcount.so" --input "$D/text" \
        --output "$D/wc-inline" -R 4 --json
done
summarise wordcount quern 'quern, 2 workers'
summarise mawk plain 'mawk hash count'
summarise sort-uniq-c plain 'sort | uniq -c'
if [ $inline = yes ]; then
    summarise wordcount-inline inline 'quern --inline'
else
    not_measured wordcount-inline inline 'quern --inline' \
        'not supported by this quern (exit 2)'
fi
# 7. The sandbox's cost on word count, while the text is here.
sandbox_pairs wordcount "$D/wc-sb" \
    "$BIN/quern" run --job "$JOBS/wordcount.so" --input "$D/text" \
    --output "$D/wc-sb" -R 4 --workers 2 --json

sort "$D/out/mawk" >"$D/wc-want"
sorted_parts "$D/wc-quern" | cmp -s - "$D/wc-want" ||
    fail "Quern's word count differs from mawk's"
mawk '{ print $2 "\t" $1 }' "$D/out/sort-uniq-c" | sort | cmp -s - "$D/wc-want" ||
    fail "sort | uniq -c counted differently from mawk"
for out in "$D/wc-sb" "$D/wc-sb-nosb"; do
    sorted_parts "$out" | cmp -s - "$D/wc-want" ||
        fail "Quern's word count in $out (sandbox pairs) differs from mawk's"
done
if [ $inline = yes ]; then
    sorted_parts "$D/wc-inline" | cmp -s - "$D/wc-want" ||
        fail "quern run --inline's word count differs from mawk's"
fi
section wordcount "$text_bytes" \
    "$(jq -n --argjson runs "$RUNS" '{title: "word count", files: 8, runs: $runs}')" \
    wordcount mawk sort-uniq-c wordcount-inline wordcount-sb wordcount-nosb

# ---------------------------------------------------------------------------
# 3. grep for a rare pattern, over the same text (run before TeraSort so
# the text is generated once)

for ((i = 1; i <= RUNS; i++)); do
    # One reducer: the few matches end up in one sorted file.
    CLEAN=$D/grep-quern run_once grep quern \
        "$BIN/quern" run --job "$JOBS/grep.so" --arg "pattern=$PATTERN" \
        --input "$D/text" --output "$D/grep-quern" -R 1 --workers 2 --json
    # grep exits 1 when nothing matched: a count of 0, not a failure.
    # shellcheck disable=SC2016 # the inner shell's own variables
    run_once grep-E-c plain \
        bash -c 'p=$1
            shift
            grep -E -c -- "$p" "$@" || [ $? = 1 ]' sh "$PATTERN" "${TEXT[@]}"
done
summarise grep quern 'quern, 2 workers'
summarise grep-E-c plain 'grep -E -c'
want=$(mawk -F: '{ n += $NF } END { printf "%.0f", n }' "$D/out/grep-E-c")
got=$(cat "$D"/grep-quern/part-* | wc -l)
[ "$got" = "$want" ] ||
    fail "Quern's grep found $got lines matching $PATTERN, grep -E -c $want"
section grep "$text_bytes" \
    "$(jq -n --arg p "$PATTERN" --argjson m "$want" --argjson runs "$RUNS" \
        '{title: "grep", pattern: $p, matches: $m, runs: $runs}')" \
    grep grep-E-c

# ---------------------------------------------------------------------------
# 8. Compressed input: the same text as gzip -1 files and as zstd -3 files,
# word counted, against decompressing them alone (zcat and zstd -dc, a file
# per core at a time, to /dev/null); the plain count is section 1's.

echo "bench: compressing the text with gzip -1 and zstd -3" >&2
mkdir "$D/gz" "$D/zst"
# shellcheck disable=SC2016 # the inner shell's own variables
printf '%s\0' "${TEXT[@]}" | xargs -0 -n 1 -P 2 sh -c \
    'gzip -1 -c "$2" >"$0/${2##*/}.gz" && zstd -q -3 -c "$2" >"$1/${2##*/}.zst"' \
    "$D/gz" "$D/zst" || fail "could not compress the text"
for ((i = 1; i <= RUNS; i++)); do
    CLEAN=$D/wc-gz run_once wordcount-gzip quern \
        "$BIN/quern" run --job "$JOBS/wordcount.so" --input "$D/gz" \
        --output "$D/wc-gz" -R 4 --workers 2 --json
    # shellcheck disable=SC2016 # the inner shell's own variables
    run_once zcat plain bash -c \
        'printf "%s\0" "$@" | xargs -0 -n 1 -P 2 zcat >/dev/null' sh "$D"/gz/*
    CLEAN=$D/wc-zst run_once wordcount-zstd quern \
        "$BIN/quern" run --job "$JOBS/wordcount.so" --input "$D/zst" \
        --output "$D/wc-zst" -R 4 --workers 2 --json
    # shellcheck disable=SC2016 # the inner shell's own variables
    run_once zstd-dc plain bash -c \
        'printf "%s\0" "$@" | xargs -0 -n 1 -P 2 zstd -qdc >/dev/null' sh "$D"/zst/*
done
summarise wordcount-gzip quern 'quern, gzip -1 input'
summarise zcat plain 'zcat, 2 at a time'
summarise wordcount-zstd quern 'quern, zstd -3 input'
summarise zstd-dc plain 'zstd -dc, 2 at a time'
for out in "$D/wc-gz" "$D/wc-zst"; do
    sorted_parts "$out" | cmp -s - "$D/wc-want" ||
        fail "Quern's word count of compressed text ($out) differs from mawk's"
done
section compressed "$text_bytes" \
    "$(jq -n --argjson runs "$RUNS" --argjson gz "$(cat "$D"/gz/* | wc -c)" \
        --argjson zst "$(cat "$D"/zst/* | wc -c)" \
        '{title: "compressed input", gzip_bytes: $gz, zstd_bytes: $zst, runs: $runs}')" \
    wordcount-gzip zcat wordcount-zstd zstd-dc
rm -rf "$D/text" "$D/wc-quern" "$D/wc-inline" "$D/wc-sb" "$D/wc-sb-nosb" \
    "$D/grep-quern" "$D/gz" "$D/zst" "$D/wc-gz" "$D/wc-zst"

# ---------------------------------------------------------------------------
# 2. TeraSort

# teragen: one map per line of "FIRST COUNT", each line padded to the split
# size; the reduce writes the records, rows 0 to N - 1 in part-00000...
rows=$((S / 100))
echo "bench: generating $rows TeraSort records" >&2
mkdir "$D/ranges"
per=$((rows / 8))
for ((i = 0; i < 8; i++)); do
    count=$per
    [ $i -lt 7 ] || count=$((rows - 7 * per))
    [ "$count" -eq 0 ] || printf '%-1023s\n' "$((i * per)) $count"
done >"$D/ranges/r"
MEASURE_RUNS=1 CLEAN=$D/tera-in measure teragen quern 'teragen (data)' \
    "$BIN/quern" run --job "$JOBS/teragen.so" --input "$D/ranges" \
    --output "$D/tera-in" -R 8 --workers 2 --arg "rows=$rows" --split-size 1K --json
TERA=("$D"/tera-in/part-*)
tera_bytes=$(warm "${TERA[@]}")
[ "$tera_bytes" = $((rows * 100)) ] ||
    fail "teragen wrote $tera_bytes bytes, not $rows records of 100"

# The sampling partitioner's sample: 100,000 records shipped with the job.
head -c 10000000 "${TERA[0]}" >"$D/tera-sample"
for ((i = 1; i <= RUNS; i++)); do
    CLEAN=$D/tera-quern run_once terasort quern \
        "$BIN/quern" run --job "$JOBS/terasort.so" --input "$D/tera-in" \
        --output "$D/tera-quern" -R 4 --workers 2 --file "$D/tera-sample" \
        --arg sample=tera-sample \
        --split-size "$TERA_SPLIT" --json
    run_once sort-S4G plain sort -S 4G --parallel=2 -o "$D/tera-sort" "${TERA[@]}"
    # The same, its output compressed (--output-codec zstd).
    CLEAN=$D/tera-zst run_once terasort-zstd quern \
        "$BIN/quern" run --job "$JOBS/terasort.so" --input "$D/tera-in" \
        --output "$D/tera-zst" -R 4 --workers 2 --file "$D/tera-sample" \
        --arg sample=tera-sample --split-size "$TERA_SPLIT" \
        --output-codec zstd --json
done
summarise terasort quern 'quern, 2 workers'
summarise sort-S4G plain 'sort -S 4G --parallel=2'
summarise terasort-zstd quern 'quern, --output-codec zstd'
zstd -qdc "$D"/tera-zst/part-*.zst | cmp -s - "$D/tera-sort" ||
    fail "Quern's TeraSort output with --output-codec zstd does not decompress to sort's"
# 7. The sandbox's cost on TeraSort.
sandbox_pairs terasort "$D/tera-sb" \
    "$BIN/quern" run --job "$JOBS/terasort.so" --input "$D/tera-in" \
    --output "$D/tera-sb" -R 4 --workers 2 --file "$D/tera-sample" \
    --arg sample=tera-sample --split-size "$TERA_SPLIT" --json
cat "$D"/tera-quern/part-* | cmp -s - "$D/tera-sort" ||
    fail "Quern's TeraSort output differs from sort's"
if ! "$TOOLS/teravalidate" --input "$D/tera-in" "$D/tera-quern" >"$D/validate" 2>&1 ||
    ! grep -q '^ok' "$D/validate"; then
    fail "teravalidate does not accept Quern's TeraSort output:" "$D/validate"
fi
section terasort "$tera_bytes" \
    "$(jq -n --argjson r "$rows" --arg s "$TERA_SPLIT" --argjson runs "$RUNS" \
        '{title: "TeraSort", records: $r, split_size: $s, runs: $runs}')" \
    terasort sort-S4G terasort-zstd terasort-sb terasort-nosb
for out in "$D/tera-sb" "$D/tera-sb-nosb"; do
    cmp -s <(cat "$out"/part-*) "$D/tera-sort" ||
        fail "Quern's TeraSort output in $out (sandbox pairs) differs from sort's"
done
rm -rf "$D/tera-in" "$D/tera-quern" "$D/tera-sb" "$D/tera-sb-nosb" "$D/tera-sort" \
    "$D/tera-zst"

# ---------------------------------------------------------------------------
# 4. The smallest job

mkdir "$D/one"
printf 'the smallest job\n' >"$D/one/line.txt"
MEASURE_RUNS=$LAT_RUNS CLEAN=$D/one-out measure smallest-job quern \
    'quern run, one line' \
    "$BIN/quern" run --job "$JOBS/wordcount.so" --input "$D/one" \
    --output "$D/one-out" --json
[ "$(sorted_parts "$D/one-out")" = "$(printf 'job\t1\nsmallest\t1\nthe\t1')" ] ||
    fail "the smallest job counted wrong: $(sorted_parts "$D/one-out")"
section latency 17 \
    "$(jq -n --argjson runs "$LAT_RUNS" '{title: "smallest job", runs: $runs}')" \
    smallest-job

# ---------------------------------------------------------------------------
# 6. Task start: 64 maps of one small file each and a reduce, one at a time
# (one worker, one slot), with tasks in their sandbox and outside it; the
# difference over 65 tasks is what the sandbox adds to a task's start
# (the broker's fork, the walls, a message per input piece).

mkdir "$D/many"
for ((i = 0; i < 64; i++)); do
    printf '%0599d\n' "$i" >"$D/many/f$(printf %02d $i).txt"
done
for ((i = 1; i <= LAT_RUNS; i++)); do
    CLEAN=$D/many-out run_once taskstart quern \
        "$BIN/quern" run --job "$JOBS/wordcount.so" --input "$D/many" \
        --output "$D/many-out" -R 1 --workers 1 --slots 1 --split-size 1K --json
    CLEAN=$D/many-nosb run_once taskstart-nosb quern env QUERN_SANDBOX=off \
        "$BIN/quern" run --job "$JOBS/wordcount.so" --input "$D/many" \
        --output "$D/many-nosb" -R 1 --workers 1 --slots 1 --split-size 1K --json
done
[ "$(jq .counters.map_input_records "$D/out/taskstart")" = 64 ] ||
    fail "the task start job did not run 64 maps of a line each"
summarise taskstart quern 'sandbox on'
summarise taskstart-nosb quern 'sandbox off'
section taskstart 38400 \
    "$(jq -n --argjson runs "$LAT_RUNS" '{title: "task start", tasks: 65, runs: $runs}')" \
    taskstart taskstart-nosb

# ---------------------------------------------------------------------------
# Memory: grep '.' emits every line, so the intermediate data is more than
# ten times the 64 MiB sort buffer.

echo "bench: generating 704M of text for the memory run" >&2
"$TOOLS/gentext" --out "$D/big" --size 704M --files 1 --seed 9
big_bytes=$(warm "$D"/big/*)
MEASURE_RUNS=1 CLEAN=$D/mem-out measure memory-grep quern "grep '.', --sort-mb $SORT_MB" \
    "$BIN/quern" run --job "$JOBS/grep.so" --arg 'pattern=.' --input "$D/big" \
    --output "$D/mem-out" -R 2 --split-size 1G --sort-mb "$SORT_MB" --json
[ "$(cat "$D"/mem-out/part-* | wc -l)" = "$(cat "$D"/big/* | wc -l)" ] ||
    fail "the memory run's grep '.' did not output every line"
section memory "$big_bytes" \
    "$(jq -n --argjson mb "$SORT_MB" '{title: "memory", sort_mb: $mb, runs: 1}')" \
    memory-grep
rm -rf "$D/big" "$D/mem-out"

# ---------------------------------------------------------------------------
# 5. Scaling: word count at a quarter, one and four times BENCH_SIZE; the
# middle point is section 1's measurement.

scaling_skipped=null
points=()
for factor in 0.25 4; do
    if [ $factor = 0.25 ]; then
        nbytes=$((S / 4))
    else
        nbytes=$((S * 4))
    fi
    id=wordcount-${factor}x
    # Text, Quern's intermediate files (word count combines: small) and a
    # margin.
    need=$((nbytes * 11 / 10 + 256 * MIB))
    free=$(free_bytes)
    if [ "$free" -lt "$need" ]; then
        why="not enough disk space in $D for $factor x $SIZE: it needs $(gib "$need") GiB free, there are $(gib "$free") GiB"
        echo "bench: $why; skipping that point" >&2
        scaling_skipped=$(jq -n --arg w "$why" '$w')
        continue
    fi
    echo "bench: generating $factor x $SIZE of text for scaling" >&2
    "$TOOLS/gentext" --out "$D/scale" --size "$nbytes" --files 8
    nbytes=$(warm "$D"/scale/*)
    CLEAN=$D/scale-out measure "$id" quern "quern, $factor x" \
        "$BIN/quern" run --job "$JOBS/wordcount.so" --input "$D/scale" \
        --output "$D/scale-out" -R 4 --workers 2 --json
    # The counts add up to the words the maps saw.
    total=$(cat "$D"/scale-out/part-* | mawk -F'\t' '{ n += $2 } END { printf "%.0f", n }')
    [ "$total" = "$(jq .counters.map_output_records "$D/out/$id")" ] ||
        fail "the scaling run at $factor x counted $total words, its maps saw $(jq .counters.map_output_records "$D/out/$id")"
    points+=("$(jq -c --argjson f "$factor" --argjson b "$nbytes" \
        '{factor: $f, bytes: $b, id, wall_s}' "$D/cmd/$id.json")")
    rm -rf "$D/scale" "$D/scale-out"
done
points+=("$(jq -c --argjson b "$text_bytes" '{factor: 1, bytes: $b, id, wall_s}' \
    "$D/cmd/wordcount.json")")
printf '%s\n' "${points[@]}" | jq -s --argjson skipped "$scaling_skipped" '
    map(. + {s_per_gib: (.wall_s.median / (.bytes / 1073741824))})
    | sort_by(.factor) as $p
    | {title: "scaling", skipped: $skipped, points: $p,
       ratio: (if ($p | length) == 3 then $p[2].s_per_gib / $p[0].s_per_gib
               else null end)}' >"$D/sec/scaling.json"

# ---------------------------------------------------------------------------
# The results: memory bounds, targets, JSON, table

mapfile -t qids <"$D/quern-ids"
qfiles=()
for id in "${qids[@]}"; do
    qfiles+=("$D/cmd/$id.json")
done
jq -s --argjson mb "$SORT_MB" '
    (($mb + 64) * 1048576) as $bound
    | map(.rss_bytes as $r
        | [(if $r.master != null and $r.master >= 64 * 1048576 then "master"
            else empty end),
           (if $r.worker != null and $r.worker > $bound then "worker" else empty end),
           (if $r.task != null and $r.task > $bound then "task" else empty end)]
            as $over
        | {id, name, runs: (.runs | length), master: $r.master,
           worker: $r.worker, task: $r.task, sort_mb: $mb,
           worker_task_bound_bytes: $bound, master_bound_bytes: (64 * 1048576),
           exceeded: $over, ok: ($over | length == 0)})' \
    "${qfiles[@]}" >"$D/sec/bounds.json"

jq -n --arg size "$SIZE" --argjson bytes "$S" --argjson runs "$RUNS" \
    --argjson lat "$LAT_RUNS" --arg host "$(uname -srm)" --argjson cpus "$(nproc)" \
    --arg rev "$(git describe --always --dirty 2>/dev/null || echo unknown)" \
    --arg when "$started" \
    --slurpfile wc "$D/sec/wordcount.json" --slurpfile ts "$D/sec/terasort.json" \
    --slurpfile gr "$D/sec/grep.json" --slurpfile la "$D/sec/latency.json" \
    --slurpfile sc "$D/sec/scaling.json" --slurpfile me "$D/sec/memory.json" \
    --slurpfile bo "$D/sec/bounds.json" --slurpfile tk "$D/sec/taskstart.json" \
    --slurpfile cz "$D/sec/compressed.json" "$JQ_MEDIAN"'
    def cmd(s; id): s.commands[] | select(.id == id);
    # A target: met is null when its value could not be measured; d is
    # the decimals to show.
    def target(name; want; value; ok; d):
        {name: name, target: want, measured: value, decimals: d,
         met: (if value == null then null else (value | ok) end)};
    def inverse: if . == null then null else 1 / . end;
    # The sandbox pairs of a section: each pair'"'"'s on / off wall time,
    # and their median.
    def pairs(s; id):
        [cmd(s; id + "-sb").runs, cmd(s; id + "-nosb").runs] | transpose
        | map(.[0].wall_s / .[1].wall_s) | {ratios: ., median: median};
    {bench_size: $size, bench_size_bytes: $bytes, runs: $runs,
     latency_runs: $lat, host: $host, cpus: $cpus, quern: $rev, date: $when,
     wordcount: $wc[0], terasort: $ts[0], grep: $gr[0], latency: $la[0],
     scaling: $sc[0], memory: $me[0], memory_bounds: $bo[0], taskstart: $tk[0],
     compressed: $cz[0]}
    | .sandbox = {pairs: (cmd(.wordcount; "wordcount-sb").runs | length),
                  wordcount: pairs(.wordcount; "wordcount"),
                  terasort: pairs(.terasort; "terasort")}
    | . + {targets: [
        target("word count: mawk time / Quern time"; ">= 3.5";
               cmd(.wordcount; "mawk").speedup; . >= 3.5; 2),
        target("word count: sort | uniq -c time / Quern time"; ">= 10";
               cmd(.wordcount; "sort-uniq-c").speedup; . >= 10; 2),
        target("word count: --inline time / 2 workers time"; ">= 1.6";
               cmd(.wordcount; "wordcount-inline").speedup; . >= 1.6; 2),
        target("TeraSort: Quern time / sort time"; "<= 1.0";
               cmd(.terasort; "sort-S4G").speedup | inverse; . <= 1.0; 2),
        target("grep: Quern time / grep -E -c time"; "<= 3.0";
               cmd(.grep; "grep-E-c").speedup | inverse; . <= 3.0; 2),
        target("smallest job: median ms"; "< 300";
               .latency.commands[0].wall_s.median * 1000; . < 300; 0),
        target("sandbox: word count on / off, pair median"; "<= 1.02";
               .sandbox.wordcount.median; . <= 1.02; 3),
        target("sandbox: TeraSort on / off, pair median"; "<= 1.02";
               .sandbox.terasort.median; . <= 1.02; 3),
        target("gzip input: time / (zcat + plain count)"; "<= 1.0";
               cmd(.compressed; "wordcount-gzip").wall_s.median
               / (cmd(.compressed; "zcat").wall_s.median
                  + cmd(.wordcount; "wordcount").wall_s.median); . <= 1.0; 2),
        target("zstd input: time / (zstd -dc + plain count)"; "<= 1.0";
               cmd(.compressed; "wordcount-zstd").wall_s.median
               / (cmd(.compressed; "zstd-dc").wall_s.median
                  + cmd(.wordcount; "wordcount").wall_s.median); . <= 1.0; 2),
        target("TeraSort: --output-codec zstd time / plain"; "<= 1.15";
               cmd(.terasort; "terasort-zstd").speedup; . <= 1.15; 2),
        target("sandbox: ms added to a task start"; "<= 5";
               (.taskstart.commands[0].wall_s.median
                - .taskstart.commands[1].wall_s.median) * 1000 / .taskstart.tasks;
               . <= 5; 2),
        target("scaling: s/GiB at 4 x over 0.25 x"; "0.85 to 1.15";
               .scaling.ratio; . >= 0.85 and . <= 1.15; 2),
        target("memory bounds: Quern commands within them";
               "all \(.memory_bounds | length)";
               .memory_bounds | map(select(.ok)) | length;
               . == ($bo[0] | length); 0)]}' >"$OUT/results.json"

# The table, from results.json. jq formats the numbers (fixed decimals, "-"
# for a value not reported) and bash lays out the columns.
# shellcheck disable=SC2016 # jq's variables
JQDEFS='
    def fixed(d): if . == null then "-" else
        (. * pow(10; d) | round) as $n
        | ($n | fabs | tostring) as $s
        | (("0" * (d + 1 - ($s | length)) // "") + $s) as $s
        | (if d == 0 then $s else $s[0:($s | length) - d] + "." + $s[($s | length) - d:] end)
        | if $n < 0 then "-" + . else . end end;
    def mib: if . == null then null else . / 1048576 end;
    def spread: "\(.min | fixed(2))-\(.max | fixed(2))";'
R=$OUT/results.json

# row FIELD...: one line of a section's table.
row() {
    printf '%-24s %8s %12s %8s %8s %8s %7s %7s %7s %7s %9s %9s\n' "$@"
}

# rows SECTION: the section's commands, one line each.
rows() {
    row command 'wall s' 'min-max s' 'MB/s' speedup 'CPU s' \
        master worker task peak 'shuf raw' 'shuf z'
    jq -r "$JQDEFS"' .'"$1"'.commands[]
        | if .not_measured then [.name, "n/a: \(.not_measured)"]
          else [.name, (.wall_s.median | fixed(2)), (.wall_s | spread),
                (.mb_per_s | fixed(1)), (.speedup | fixed(2)), (.cpu_s | fixed(1)),
                (.rss_bytes.master | mib | fixed(1)), (.rss_bytes.worker | mib | fixed(1)),
                (.rss_bytes.task | mib | fixed(1)), (.rss_bytes.process | mib | fixed(1)),
                (.shuffle_bytes_raw | mib | fixed(1)),
                (.shuffle_bytes_compressed | mib | fixed(1))] end
        | @tsv' "$R" |
        while IFS=$'\t' read -r -a f; do
            if [ ${#f[@]} = 2 ]; then
                printf '%-24s %s\n' "${f[0]}" "${f[1]}"
            else
                row "${f[@]}"
            fi
        done
}

{
    jq -r '"Quern \(.quern), \(.host), \(.cpus) CPUs, started \(.date); BENCH_SIZE \(.bench_size), runs of each command: \(.runs), page cache warm"' "$R"
    echo "wall s: median of the runs, taken in turns; speedup: the command's median over Quern's (above 1: Quern is faster);"
    echo "CPU s: user + sys of the command and its descendants; RSS peaks in MiB: master, worker, task from the job's"
    echo "JSON, peak from /usr/bin/time (or --inline's own); shuffle MiB raw and compressed, from the job's counters"
    echo
    jq -r "$JQDEFS"' "1. word count, \(.wordcount.input_bytes | mib | fixed(1)) MiB of text in 8 files"' "$R"
    rows wordcount
    echo
    jq -r "$JQDEFS"' "2. TeraSort, \(.terasort.records) records of 100 bytes (\(.terasort.input_bytes | mib | fixed(1)) MiB), split size \(.terasort.split_size)"' "$R"
    rows terasort
    echo
    jq -r "$JQDEFS"' "3. grep -E \u0027\(.grep.pattern)\u0027, \(.grep.input_bytes | mib | fixed(1)) MiB of text: \(.grep.matches) lines match"' "$R"
    rows grep
    echo
    jq -r "$JQDEFS"' .compressed | "8. compressed input: the same text, \(.gzip_bytes | mib | fixed(1)) MiB as gzip -1, \(.zstd_bytes | mib | fixed(1)) MiB as zstd -3 (8 files each)"' "$R"
    rows compressed
    echo
    jq -r "$JQDEFS"' .latency.commands[0] as $c
        | "4. smallest job: word count of one line, quern run start to exit, \($c.runs | length) runs",
          "   median \($c.wall_s.median * 1000 | fixed(0)) ms, min-max \($c.wall_s.min * 1000 | fixed(0))-\($c.wall_s.max * 1000 | fixed(0)) ms, CPU \($c.cpu_s | fixed(2)) s, RSS MiB master \($c.rss_bytes.master | mib | fixed(1)), worker \($c.rss_bytes.worker | mib | fixed(1)), task \($c.rss_bytes.task | mib | fixed(1))"' "$R"
    echo
    jq -r "$JQDEFS"' .taskstart as $t | $t.commands as $c
        | "6. task start: 64 maps of one line and a reduce, one at a time, \($t.runs) runs",
          "   median \($c[0].wall_s.median | fixed(3)) s in the sandbox, \($c[1].wall_s.median | fixed(3)) s outside it: \(($c[0].wall_s.median - $c[1].wall_s.median) * 1000 / $t.tasks | fixed(2)) ms a task"' "$R"
    echo
    jq -r "$JQDEFS"' .sandbox as $s
        | def line(name; p): "   \(name): \(p.ratios | map(fixed(3)) | join(" ")); median \(p.median | fixed(3))";
          "7. the sandbox'"'"'s cost: \($s.pairs) pairs of runs in its sandbox and outside it, back to back, in turns",
          "   (rows above: sandbox on, sandbox off); each pair'"'"'s time on / off",
          line("word count"; $s.wordcount), line("TeraSort  "; $s.terasort)' "$R"
    echo
    jq -r "$JQDEFS"' .scaling
        | "5. scaling: Quern word count, 2 workers",
          "   size MiB     wall s    min-max s    s/GiB",
          (.points[] | "   \(.bytes | mib | fixed(1) | " " * (8 - length) + .) \(.wall_s.median | fixed(2) | " " * (10 - length) + .) \(.wall_s | spread | " " * (12 - length) + .) \(.s_per_gib | fixed(2) | " " * (8 - length) + .)\(if .factor == 1 then "   (section 1)" else "" end)"),
          (if .skipped then "   4 x: skipped: \(.skipped)" else empty end),
          "   s/GiB at 4 x over 0.25 x: \(.ratio | fixed(2))"' "$R"
    echo
    jq -r "$JQDEFS"' .memory as $m | $m.commands[0] as $c
        | (($m.sort_mb + 64) * 1048576) as $bound
        | "memory: grep \u0027.\u0027 over \($m.input_bytes | mib | fixed(1)) MiB with --sort-mb \($m.sort_mb), \($c.wall_s.median | fixed(1)) s",
          "   intermediate data \($c.intermediate_bytes_raw | mib | fixed(1)) MiB, \(if $c.intermediate_bytes_raw then $c.intermediate_bytes_raw / ($m.sort_mb * 1048576) | fixed(1) else "-" end) x the sort buffer",
          "   peak RSS MiB: task \($c.rss_bytes.task | mib | fixed(1)), worker \($c.rss_bytes.worker | mib | fixed(1)), master \($c.rss_bytes.master | mib | fixed(1)); bound for task and worker \($bound | mib | fixed(0)) MiB: \(if ([$c.rss_bytes.task, $c.rss_bytes.worker] | map(select(. != null and . > $bound)) | length) == 0 then "ok" else "EXCEEDED" end)"' "$R"
    echo
    jq -r "$JQDEFS"' "memory bounds, the largest of each command'"'"'s runs: worker and task at most --sort-mb + 64 = \(.memory_bounds[0].worker_task_bound_bytes | mib | fixed(0)) MiB, master under 64 MiB"' "$R"
    printf '   %-28s %5s %8s %8s %8s  %s\n' command runs master worker task result
    jq -r "$JQDEFS"' .memory_bounds[]
        | [.id, .runs, (.master | mib | fixed(1)), (.worker | mib | fixed(1)),
           (.task | mib | fixed(1)),
           (if .ok then "ok" else "EXCEEDED (\(.exceeded | join(", ")))" end)]
        | @tsv' "$R" |
        while IFS=$'\t' read -r id n m w t res; do
            printf '   %-28s %5s %8s %8s %8s  %s\n' "$id" "$n" "$m" "$w" "$t" "$res"
        done
    echo
    echo "targets"
    jq -r "$JQDEFS"' .targets[]
        | [.name, .target,
           (.decimals as $d | .measured | if . == null then "n/a" else fixed($d) end),
           (if .met == null then "not measured" elif .met then "met" else "NOT met" end)]
        | @tsv' "$R" |
        while IFS=$'\t' read -r name want got met; do
            printf '   %-46s %-14s %9s  %s\n' "$name" "$want" "$got" "$met"
        done
} | tee "$OUT/results.txt"
echo "bench: results in $OUT/results.txt and $OUT/results.json, job JSON in $OUT/jobs/"
