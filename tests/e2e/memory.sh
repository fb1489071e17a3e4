#!/usr/bin/env bash
# Bounded memory: a job whose intermediate data is more than ten times its
# sort buffer keeps every task process and worker under --sort-mb + 64 MiB
# resident. Task peaks are the kernel's ru_maxrss of each attempt (wait4),
# worker peaks their own ru_maxrss, both reported in the job's result.
. "$(dirname "$0")/lib.sh"

gen "$T/in" 48M 3 5
SORT_MB=4
# grep '.' emits every line: intermediate data is the input and more.
"$QUERN" run --job "$JOBS/grep.so" --arg 'pattern=.' --input "$T/in" \
    --output "$T/out" -R 2 --sort-mb $SORT_MB --json >"$T/r.json" 2>"$T/r.log" ||
    fail "run failed: $(cat "$T/r.log")"
num() { grep -o "\"$1\": [0-9]*" "$T/r.json" | grep -o '[0-9]*$'; }
inter=$(num intermediate_bytes_raw)
task=$(num task_rss_peak_bytes)
worker=$(num worker_rss_peak_bytes)
limit=$(((SORT_MB + 64) << 20))
[ "$inter" -ge $((10 * (SORT_MB << 20))) ] || fail "intermediate data $inter is not 10x the buffer"
[ "$task" -gt 0 ] && [ "$task" -lt $limit ] || fail "task peak RSS $task >= $limit"
[ "$worker" -gt 0 ] && [ "$worker" -lt $limit ] || fail "worker peak RSS $worker >= $limit"
[ "$(cat "$T"/out/part-* | wc -l)" = "$(cat "$T"/in/* | grep -c .)" ] || fail "lines lost"
echo "ok: intermediate $((inter >> 20)) MiB with --sort-mb $SORT_MB; peak RSS task $((task >> 20)) MiB, worker $((worker >> 20)) MiB (limit $((limit >> 20)) MiB)"
