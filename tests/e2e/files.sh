#!/usr/bin/env bash
# quern run|submit --file: a file shipped with a job is in the working
# folder of every map and reduce, read-only, under its base name: on a
# local cluster (quern run), on daemons started by hand (quern submit; the
# workers cache it by its SHA-256 in WORK/files, read-only), through a
# master killed and started again before any worker had fetched it, and
# inline (quern run --inline). A task whose file is not there fails saying
# so. A bad --file is refused before anything runs: exit 2, a message
# naming the file.
. "$(dirname "$0")/lib.sh"

S=$TJOBS/shipped.so
mkdir -p "$T/in" "$T/files/sub"
gen "$T/in" 64K 3
printf 'alpha\nbeta gamma\ndelta\n' >"$T/files/dict.txt"
printf 'not this one\n' >"$T/files/sub/dict.txt"
printf 'x\n' >"$T/files/.hidden"
sort -u "$T/files/dict.txt" >"$T/want"
hash=$(sha256sum "$T/files/dict.txt" | cut -d' ' -f1)
JOBARGS=(--job "$S" --input "$T/in" --arg file=dict.txt --no-speculation -R 2)

# counter JSON NAME: a counter of the job's result, 0 when absent.
counter() { jq -r --arg c "user.$2" '.counters[$c] // 0' "$1"; }

# check_job OUT JSON: OUT holds the shipped file's lines (the reduces'
# keys), and every map and reduce opened it and could not write it.
check_job() {
    local out=$1 json=$2 tasks
    [ -e "$out/_SUCCESS" ] || fail "no _SUCCESS in $out"
    cut -f1 "$out"/part-* | sort | cmp -s - "$T/want" ||
        fail "$out does not hold the shipped file's lines: $(cat "$out"/part-*)"
    tasks=$(jq '.maps + .reduces' "$json")
    [ "$(counter "$json" file_opened)" = "$tasks" ] ||
        fail "$(counter "$json" file_opened) of $tasks tasks found the file"
    [ "$(counter "$json" file_mode_writable)" = 0 ] ||
        fail "a task's copy of the shipped file is writable (mode not 0444)"
    # root opens any file for writing, whatever its mode.
    if [ "$(id -u)" != 0 ]; then
        [ "$(counter "$json" file_opened_for_writing)" = 0 ] ||
            fail "a task opened the shipped file for writing"
        [ "$(counter "$json" file_write_refused)" = "$tasks" ] ||
            fail "not every task was refused writing the file"
    fi
}

# cached_ok DIR: the worker work dir DIR caches the file, read-only, whole.
cached_ok() {
    local c=$1/files/$hash
    [ -f "$c" ] || return 1
    [ "$(stat -c %a "$c")" = 444 ] || fail "$c has mode $(stat -c %a "$c"), not 444"
    [ "$(sha256sum "$c" | cut -d' ' -f1)" = "$hash" ] || fail "$c holds other bytes"
}

# ---- quern run, on a local cluster, and --inline ------------------------------

"$QUERN" run "${JOBARGS[@]}" --output "$T/out-run" --file "$T/files/dict.txt" \
    --workers 2 --split-size 16K --json >"$T/run.json" 2>"$T/run.log" ||
    fail "quern run --file failed: $(cat "$T/run.log" "$T/run.json")"
[ "$(jq .maps "$T/run.json")" -gt 2 ] || fail "expected several maps"
check_job "$T/out-run" "$T/run.json"

# From another folder, with a relative path: the same.
(cd "$T/files" && timeout 60 "$QUERN" run --inline "${JOBARGS[@]}" \
    --output "$T/out-inline" --file ./dict.txt --split-size 16K --json \
    >"$T/inline.json" 2>"$T/inline.log") ||
    fail "quern run --inline --file failed: $(cat "$T/inline.log" "$T/inline.json")"
check_job "$T/out-inline" "$T/inline.json"
[ -z "$(ls -A "$T" | grep '^quern-inline')" ] || fail "--inline left its work dir"

# A file the task looks for that was not shipped: the attempt fails, saying so.
set +e
"$QUERN" run --job "$S" --input "$T/in" --arg file=absent.txt --max-attempts 1 \
    --output "$T/out-absent" --file "$T/files/dict.txt" >"$T/absent.log" 2>&1
rc=$?
set -e
[ $rc = 1 ] || fail "a job missing its file exited $rc, not 1: $(cat "$T/absent.log")"
grep -q "shipped: cannot open absent.txt in .*/jobs/job-.*/map-00000-a1: No such file" \
    "$T/absent.log" || fail "no clear reason: $(cat "$T/absent.log")"

# ---- quern submit, to daemons started by hand -----------------------------------

start_master
start_worker w1
start_worker w2
joined 2
q() { timeout 60 "$QUERN" "$@" --master "$MASTER"; }
q submit "${JOBARGS[@]}" --output "$T/out-submit" --file "$T/files/dict.txt" \
    --split-size 16K --wait >"$T/submit.out" 2>"$T/submit.err" ||
    fail "submit --file failed: $(cat "$T/submit.err" "$T/submit.out")"
id=$(head -n 1 "$T/submit.out")
q status "$id" --json >"$T/submit.json"
check_job "$T/out-submit" "$T/submit.json"
n=0
for w in w1 w2; do cached_ok "$T/$w" && n=$((n + 1)); done
[ $n -gt 0 ] || fail "no worker cached the file in WORK/files/$hash"

# ---- a master restarted before any worker fetched the file ----------------------

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    shuf -i 20000-60000 -n 1)
EP=tcp://127.0.0.1:$port
"$BIN/quern-master" --listen "$EP" --http off --state-dir "$T/state" \
    --recovery-ms 200 >>"$T/master-a.log" 2>&1 &
MA=$!
PIDS+=($MA)
# No worker yet: the job waits; its id is given once it is on disk.
id2=""
for _ in $(seq 50); do
    id2=$(timeout 10 "$QUERN" submit --master "$EP" "${JOBARGS[@]}" \
        --output "$T/out-restart" --file "$T/files/dict.txt" 2>"$T/sub2.err") && break
    sleep 0.2
done
[[ $id2 == job-* ]] || fail "submit to the master with a state dir failed: $(cat "$T/sub2.err")"
kill -9 "$MA"
forget_pid "$MA"
"$BIN/quern-master" --listen "$EP" --http off --state-dir "$T/state" \
    --recovery-ms 200 >>"$T/master-b.log" 2>&1 &
PIDS+=($!)
MASTER=$EP start_worker w3
state=""
for _ in $(seq 300); do
    state=$(timeout 10 "$QUERN" status "$id2" --json --master "$EP" 2>/dev/null |
        jq -r '.state' 2>/dev/null || true)
    case $state in succeeded | failed | cancelled) break ;; esac
    sleep 0.1
done
timeout 10 "$QUERN" status "$id2" --json --master "$EP" >"$T/restart.json"
[ "$state" = succeeded ] ||
    fail "the job after the restart: ${state:-no answer}: $(jq -r .error "$T/restart.json")"
check_job "$T/out-restart" "$T/restart.json"
cached_ok "$T/w3" || fail "w3 did not cache the file from the restarted master"

# ---- bad --file options: exit 2, naming the file --------------------------------

head -c $((16 << 20)) /dev/zero >"$T/files/big.bin"
cd "$T/files"
# refused WANT ARGS...: quern run and quern submit with ARGS exit 2
# saying WANT (a regular expression), and start nothing.
refused() {
    local want=$1 cmd rc
    shift
    for cmd in run submit; do
        set +e
        if [ $cmd = run ]; then
            timeout 30 "$QUERN" run "${JOBARGS[@]}" --output "$T/out-bad" "$@" >"$T/bad.log" 2>&1
        else
            q submit "${JOBARGS[@]}" --output "$T/out-bad" "$@" >"$T/bad.log" 2>&1
        fi
        rc=$?
        set -e
        [ $rc = 2 ] || fail "$cmd $* exited $rc, not 2: $(cat "$T/bad.log")"
        grep -Eq -- "$want" "$T/bad.log" || fail "$cmd $*: not '$want': $(cat "$T/bad.log")"
        [ ! -e "$T/out-bad" ] || fail "$cmd $* made its output folder"
    done
}
refused "--file ./nope.txt: cannot read it: No such file or directory" --file ./nope.txt
refused "--file ./sub: a folder" --file ./sub
refused "--file ./sub/: names a folder" --file ./sub/
refused "--file ./dict.txt and --file ./sub/dict.txt: both would be dict.txt" \
    --file ./dict.txt --file ./sub/dict.txt
refused "--file ./.hidden: '.hidden' is not a plain file name" --file ./.hidden
refused "--file \.: '\.' is not a plain file name" --file .
refused "--file \.\.: '\.\.' is not a plain file name" --file ..
refused "--file /dev/null: not a regular file" --file /dev/null
refused "--file ./big.bin: 16.0 MiB is too large: .* 15 MiB" --file ./big.bin
if [ "$(id -u)" != 0 ]; then
    cp dict.txt locked.txt && chmod 000 locked.txt
    refused "--file ./locked.txt: cannot read it: Permission denied" --file ./locked.txt
fi
echo "ok: --file on a local cluster, by submit, across a master restart, inline; bad ones refused"
