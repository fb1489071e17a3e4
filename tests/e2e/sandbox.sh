#!/usr/bin/env bash
# Every task in a sandbox. A hostile job (tests/jobs/probe.c) tries, from
# map and from reduce, each thing a task must not do: read the worker's
# CURVE key, /etc/shadow, a file no job was given, the worker's files and
# environment; write outside its folder; connect to the master; signal the
# worker; ptrace, unshare, bpf, keyctl. At --sandbox auto and require every
# probe is denied; with --sandbox off every one gets through (so each probe
# can tell), and the job succeeds at each level. No descriptor but its own
# reaches a task; a worker running as root runs tasks as --task-user
# (default nobody); a task touching 2 GiB under a 256 MiB cap fails naming
# memory and its worker lives. CURVE is on, so the broker's fetches (the
# only part of a task that holds a key) are exercised too.
. "$(dirname "$0")/lib.sh"
unset QUERN_SANDBOX
[ "$(id -u)" = 0 ] || fail "needs root: tasks run as another user only under a root worker"

K=$T/keys
mkdir -p "$K/trusted"
for n in master w1 w2 client; do
    "$QUERN" keygen "$K/$n" >/dev/null || fail "keygen $n"
    cp "$K/$n.pub" "$K/trusted/"
done
start_master --curve-secret "$K/master.key" --curve-trusted "$K/trusted" --heartbeat-ms 200
CK=(--curve-secret "$K/client.key" --curve-master "$K/master.pub")
qc() { timeout 120 "$QUERN" "$1" --master "$MASTER" "${CK[@]}" "${@:2}"; }
# joined N, with the client's key.
joined() {
    local _
    for _ in $(seq 200); do
        [ "$(qc workers --json 2>/dev/null | jq '[.[] | select(.alive)] | length')" = "$1" ] && return 0
        sleep 0.1
    done
    fail "the master does not count $1 live workers"
}
port=${MASTER##*:}
mkdir "$T/in"
for i in 1 2 3; do printf 'a b\nc d\n' >"$T/in/f$i.txt"; done
echo "no job was given this" >"$T/secret.txt"
echo "shipped with the job" >"$T/dict.txt"

# workers LEVEL [ARGS...]: two workers at --sandbox LEVEL, with CURVE and a
# marker in their environment.
workers() {
    local level=$1 i
    shift
    W=()
    for i in 1 2; do
        QUERN_PROBE_MARKER=leaked start_worker "w$i" --sandbox "$level" \
            --curve-secret "$K/w$i.key" --curve-trusted "$K/trusted" \
            --curve-master "$K/master.pub" "$@"
        W+=("${PIDS[-1]}")
    done
    joined 2
}
stop_workers() {
    local p
    for p in "${W[@]}"; do
        kill -INT "$p"
        forget_pid "$p"
    done
    joined 0
}

# probe LEVEL: run the hostile job; its report in $T/probe-LEVEL.txt.
probe() {
    local out=$T/out-$1
    qc submit --job "$TJOBS/probe.so" --input "$T/in" --output "$out" -R 2 \
        --split-size 1K --arg "key=$K/w1.key" --arg "secret=$T/secret.txt" \
        --arg "workdir=$T/w1" --arg "outdir=$out" --arg "master=$port" \
        --file "$T/dict.txt" --arg shipped=dict.txt \
        --wait >"$T/submit-$1.log" 2>&1 || fail "$1: the job failed: $(cat "$T/submit-$1.log")"
    cat "$out"/part-* | sort >"$T/probe-$1.txt"
    [ -z "$(ls "$out" | grep -v '^part-\|^_SUCCESS$')" ] || fail "$1: files left in the output: $(ls "$out")"
}

# Every probe, from map and from reduce, reported RESULT (denied|allowed);
# the ok- probes always allowed.
expect() {
    local level=$1 want=$2 phase name line n=0
    for phase in map reduce; do
        while read -r name; do
            line=$(grep -P "^$phase $name\t" "$T/probe-$level.txt" | head -n 1)
            [ -n "$line" ] || fail "$level: no $phase report of $name"
            case $name in
            ok-*) [[ $line == *$'\t'allowed* ]] || fail "$level: $phase could not do what a task may: $line" ;;
            *) [[ $line == *$'\t'$want* ]] || fail "$level: $phase $name is not $want: $line" ;;
            esac
            n=$((n + 1))
        done < <(grep -oP '^map \K[a-z-]+(?=\t)' "$T/probe-$level.txt" | grep -vx uid)
    done
    echo "$level: $n probes $want"
}

# Off first: each probe shows it can get through.
workers off
qc workers --json | jq -e '[.[] | select(.alive)][0].sandbox.level == "off" and ([.[] | select(.alive)][0].sandbox.layers | length) == 0' >/dev/null ||
    fail "off: workers --json: $(qc workers --json | jq -c '.[0].sandbox')"
probe off
expect off allowed
grep -qP "^map uid\t0$" "$T/probe-off.txt" || fail "off: tasks of a root worker should run as root: $(grep uid "$T/probe-off.txt")"
stop_workers

for level in auto require; do
    workers $level
    qc workers --json | jq -e --arg l $level '[.[] | select(.alive)][0].sandbox as $s | $s.level == $l and $s.task_user == "nobody" and
        ($s.layers | index("landlock-fs") and index("landlock-net") and index("seccomp") and index("task-user"))' >/dev/null ||
        fail "$level: workers --json: $(qc workers --json | jq -c '.[0].sandbox')"
    qc workers | grep -q "sandbox $level: .*tasks as nobody" || fail "$level: quern workers: $(qc workers)"
    probe $level
    expect $level denied
    grep -qP "^(map|reduce) uid\t$(id -u nobody)$" "$T/probe-$level.txt" || fail "$level: not run as nobody: $(grep uid "$T/probe-$level.txt")"
    # No descriptor of the worker's: stdin/out/err, the worker's channel,
    # the broker's, the plugin, its stderr log, and its own input or output.
    bad=$(grep -P '^(map|reduce) fd \d+\t' "$T/probe-$level.txt" | grep -vP '\t(/dev/null|socket:\[\d+\]|.*/plugins/[0-9a-f]+\.so|.*/logs/job-[^/]+/[mr]-\d+-a\d+\.stderr|.*/in/f\d\.txt|.*/(map|reduce)-\d+-a\d+/tmp/[^/]+|.*/_temporary/job-[^/]+/part-\d+\.a\d+)$' || true)
    [ -z "$bad" ] || fail "$level: a descriptor a task was not given: $bad"
    nsock=$(grep -cP '^map fd \d+\tsocket:' "$T/probe-$level.txt" || true)
    [ "$nsock" -le 2 ] || fail "$level: $nsock sockets in a map: $(grep -P '^map fd' "$T/probe-$level.txt")"
    stop_workers
done

# Another task user; root is refused.
workers auto --task-user daemon
probe user
grep -qP "^reduce uid\t$(id -u daemon)$" "$T/probe-user.txt" || fail "--task-user daemon: $(grep uid "$T/probe-user.txt")"
stop_workers
rc=0
"$BIN/quern-worker" --master "$MASTER" --work-dir "$T/wr" --task-user root >"$T/root.log" 2>&1 || rc=$?
[ $rc != 0 ] && grep -q "task-user root: is root" "$T/root.log" || fail "--task-user root: exit $rc: $(cat "$T/root.log")"

# 2 GiB touched under a 256 MiB cap: the attempt fails naming memory, the
# worker lives.
workers auto --task-mem-mb 256
rc=0
qc submit --job "$TJOBS/probe.so" --input "$T/in/f1.txt" --output "$T/out-hog" \
    --arg hog=2048 --max-attempts 1 --wait >"$T/hog.log" 2>&1 || rc=$?
[ $rc = 1 ] || fail "the memory hog's job exited $rc: $(cat "$T/hog.log")"
grep -q "memory is capped at 256 MiB" "$T/hog.log" || fail "the failure does not name memory: $(cat "$T/hog.log")"
grep -m1 "memory is capped" "$T/hog.log"
for p in "${W[@]}"; do kill -0 "$p" || fail "a worker died with its task"; done
joined 2
echo "ok: every probe denied at auto and require, allowed when off; no descriptor leaked; tasks as nobody/daemon; a memory hog fails naming memory"
