#!/usr/bin/env bash
# A full disk, in each place a task writes: its map output, its spills,
# its reduce output. Worker w1's work dir is a 1 MiB tmpfs in a mount
# namespace of its own; the job's map outputs (grep '.' keeps every line)
# do not fit there, nor, with --sort-mb 1, the runs a map spills. Then w3
# sees the job's output folder as a 1 MiB tmpfs, where no reduce's output
# fits. Each time the attempts on the full disk fail with a reason that
# says so and leave no partial file behind; each task that failed there
# runs again on w2 (with two attempts a task, a second failure on the full
# disk would fail the job); the job finishes, and its output is right.
. "$(dirname "$0")/lib.sh"

# on_tmpfs DIR NAME ARGS...: starts a worker NAME with ARGS that sees DIR as
# a 1 MiB tmpfs. unshare execs the shell, which execs the worker: the pid
# is the worker's, and the mount goes when it exits.
on_tmpfs() {
    local dir=$1 name=$2
    shift 2
    unshare --mount --propagation private sh -c \
        'mount -t tmpfs -o size=1m quern-test-full "$1" && shift && exec "$@"' sh \
        "$dir" "$BIN/quern-worker" --master "$MASTER" --slots 1 "$@" \
        >>"$T/$name.log" 2>&1 &
    PIDS+=($!)
}

# grep_job OUT ARGS...: grep '.' over ./in into OUT, which must succeed
# with what grep -b finds; its status goes in $T/OUT.json.
grep_job() {
    local out=$1
    shift
    timeout 120 "$QUERN" submit --master "$MASTER" --job "$JOBS/grep.so" \
        --arg pattern=. --input ./in --output "./$out" -R 2 --codec none \
        --max-attempts 2 "$@" --wait >"$T/submit.log" 2>&1 ||
        fail "the job failed: $(cat "$T/submit.log")"
    cat "$out"/part-* | sort >got
    cmp -s got want || fail "$out differs from grep -b's"
    "$QUERN" status "$(head -n 1 "$T/submit.log")" --master "$MASTER" --json \
        >"$T/$out.json"
}

# failed_for JSON WHERE WHAT: at least one attempt failed; every failure
# was on one worker, writing a file under WHERE on a full disk; one at
# least wrote WHAT (a pattern); and no task failed twice: each ran again
# on w2. Prints how many failed.
failed_for() {
    local failed
    failed=$(jq '.counters.failed_attempts // 0' "$1")
    [ "$failed" -ge 1 ] || fail "no attempt failed on the full disk: $(jq -c .counters "$1")"
    jq -e --arg w "$2" --argjson n "$failed" \
        '[.failures[] | select(.reason | contains($w + "/") and
            contains(": No space left on device"))] | length == $n' "$1" >/dev/null ||
        fail "a failure does not say the disk is full under $2: $(jq -c '[.failures[].reason]' "$1")"
    jq -e --arg p "$3" '[.failures[] | select(.reason | test($p))] | length >= 1' "$1" >/dev/null ||
        fail "no failure writing $3: $(jq -c '[.failures[].reason]' "$1")"
    jq -e '[.failures[].worker] | unique | length == 1' "$1" >/dev/null &&
        jq -e '[.failures[] | "\(.kind) \(.task)"] | length == (unique | length)' "$1" >/dev/null ||
        fail "a task failed twice, or on w2: $(jq -c '[.failures[] | [.task_name, .worker, .reason]]' "$1")"
    echo "$failed"
}

# no_partial PID DIR: no file is left in DIR as worker PID sees it,
# through its own mount namespace (/proc/PID/root), where DIR is the
# tmpfs, not the empty folder under it. The failed attempts' stderr
# (logs/), the plugins/ cache and the worker's identity (worker.id,
# worker.lock) are meant to stay.
no_partial() {
    local left
    [ "$(stat -f -c %T "/proc/$1/root$2")" = tmpfs ] || fail "$2 is no tmpfs for worker $1"
    left=$(find "/proc/$1/root$2" -type f -not -path '*/logs/*' -not -path '*/plugins/*' \
        -not -name worker.id -not -name worker.lock | head -n 3) ||
        fail "cannot look into $2 as worker $1 sees it"
    [ -z "$left" ] || fail "partial files left on the full disk: $left"
}

# alive_pids JSON: within 10 s, the live workers other than w2 are the
# ones whose pids JSON lists (the master's view, in $T/workers.json).
alive_pids() {
    local i
    for i in $(seq 50); do
        "$QUERN" workers --master "$MASTER" --json >"$T/workers.json"
        jq -e --argjson want "$1" --argjson w2 "$W2" \
            '[.[] | select(.alive and .pid != $w2) | .pid] | sort == ($want | sort)' \
            "$T/workers.json" >/dev/null && return 0
        sleep 0.2
    done
    return 1
}

start_master --heartbeat-ms 100 --dead-ms 1000
mkdir "$T/w1"
on_tmpfs "$T/w1" w1 --work-dir "$T/w1"
W1=${PIDS[-1]}
start_worker w2 --slots 1
W2=${PIDS[-1]}
gen "$T/in" 4M 2
cd "$T"
grep -b . ./in/* | sed 's/^\([^:]*:[0-9]*\):/\1\t/' | sort >want

# Map outputs: 1 MiB splits give map outputs of over 1 MiB.
grep_job out --split-size 1M
n1=$(failed_for "$T/out.json" "$T/w1" '/map-[0-9]+-a[0-9]+/tmp/output\.ifile\.tmp: ')
no_partial "$W1" "$T/w1"

# Spills: a 1 MiB sort buffer spills runs of up to 1 MiB from 2 MiB splits;
# at most one fits.
grep_job out2 --split-size 2M --sort-mb 1
n2=$(failed_for "$T/out2.json" "$T/w1" '/map-[0-9]+-a[0-9]+/tmp/spill[0-9]+: write failed: ')
jq -e '.counters.spills >= 1' "$T/out2.json" >/dev/null ||
    fail "no map spilled: $(jq -c .counters "$T/out2.json")"
no_partial "$W1" "$T/w1"

# Reduce output: w3 sees the output folder as a full disk. Four reduces
# on two one-slot workers: w3 runs at least one.
# w1 goes first, and the master knows it is gone before the job starts.
kill -INT "$W1"
forget_pid "$W1"
alive_pids '[]' || fail "w1 was not given up for dead in 10 s: $(jq -c . "$T/workers.json")"
mkdir "$T/out3"
on_tmpfs "$T/out3" w3 --work-dir "$T/w3"
W3=${PIDS[-1]}
# Both w2 and w3 are in before the job starts, so each takes reduces.
alive_pids "[$W3]" || fail "w3 did not join in 10 s: $(jq -c . "$T/workers.json")"
grep_job out3 -R 4
n3=$(failed_for "$T/out3.json" "$T/out3" '/_temporary/job-[^/]+/part-[0-9]+\.a[0-9]+: ')
jq -e '[.failures[].kind] | unique == ["reduce"]' "$T/out3.json" >/dev/null ||
    fail "not only reduces failed: $(jq -c '[.failures[] | [.task_name, .reason]]' "$T/out3.json")"
no_partial "$W3" "$T/out3"
echo "ok: attempts failed on a full disk, saying so, and the jobs finished on w2:" \
    "$n1 for map outputs, $n2 for spills, $n3 for reduce outputs"
