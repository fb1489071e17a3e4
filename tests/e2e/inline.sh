#!/usr/bin/env bash
# quern run --inline: every map, combine and reduce in the quern process.
# Word count inline writes the same part files as a run on a local cluster
# and as mawk; it starts no process and opens no socket, and leaves no
# work dir behind; --json reports it as the master would. TeraSort inline
# equals LC_ALL=C sort. A plugin that fails (in a map, or in a reduce after
# others committed) leaves no part files and no _SUCCESS. Dataset names and
# a committed output folder are refused with exit 2.
. "$(dirname "$0")/lib.sh"

WC=$JOBS/wordcount.so
mkdir "$T/tmp"
# TMPDIR for the inline runs: whatever they leave shows up here.
INL_TMP=$T/tmp

# inline ARGS...: quern run --inline with TMPDIR=$INL_TMP, bounded.
inline() {
    TMPDIR=$INL_TMP timeout 60 "$QUERN" run --inline "$@"
}

# no_work_dir_left: the inline runs removed their temporary work dirs.
no_work_dir_left() {
    [ -z "$(ls -A "$INL_TMP")" ] || fail "left in TMPDIR: $(ls -A "$INL_TMP")"
}

# no_output OUT: no part files and no _SUCCESS in OUT (if it exists).
no_output() {
    [ ! -e "$1/_SUCCESS" ] || fail "_SUCCESS in $1 after a failed job"
    ! compgen -G "$1/part-*" >/dev/null ||
        fail "part files in $1 after a failed job: $(ls "$1")"
    [ ! -e "$1/_temporary" ] || fail "_temporary left in $1"
}

# ---- word count: inline = cluster = mawk --------------------------------------

gen "$T/in" 4M 4 3
cat "$T"/in/* | mawk '{ for (i = 1; i <= NF; i++) n[$i]++ }
    END { for (w in n) printf "%s\t%d\n", w, n[w] }' | sort >"$T/want"

"$QUERN" run --job "$WC" --input "$T/in" --output "$T/cl" -R 3 --workers 2 \
    --split-size 256K --json >"$T/cl.json" 2>"$T/cl.log" ||
    fail "quern run failed: $(cat "$T/cl.log")"
maps=$(jq -r .maps "$T/cl.json")
[ "$maps" -gt 4 ] || fail "expected several maps, the cluster ran $maps"

inline --job "$WC" --input "$T/in" --output "$T/inl" -R 3 --split-size 256K \
    >"$T/inl.out" 2>"$T/inl.log" ||
    fail "quern run --inline failed: $(cat "$T/inl.log" "$T/inl.out")"
grep -q "running wordcount inline, in this process: not in a sandbox" "$T/inl.log" ||
    fail "no word of running inline: $(cat "$T/inl.log")"
grep -q "succeeded" "$T/inl.out" || fail "$(cat "$T/inl.out")"
grep -q "$maps/$maps maps, 3/3 reduces done" "$T/inl.out" ||
    fail "expected $maps maps and 3 reduces: $(cat "$T/inl.out")"
[ -f "$T/inl/_SUCCESS" ] || fail "no _SUCCESS"
[ ! -e "$T/inl/_temporary" ] || fail "_temporary left behind"
[ "$(ls -A "$T/inl" | grep -vc -e '^part-0000[012]$' -e '^_SUCCESS$')" = 0 ] ||
    fail "expected part-00000..2 and _SUCCESS: $(ls -A "$T/inl")"
for p in part-00000 part-00001 part-00002; do
    [ -f "$T/inl/$p" ] || fail "no $p"
    # Same partitioner, same reduce: the same file as the cluster's.
    cmp -s "$T/inl/$p" "$T/cl/$p" || fail "$p differs from the cluster's"
done
cat "$T"/inl/part-* | sort | cmp -s - "$T/want" ||
    fail "inline output differs from mawk: $(cat "$T"/inl/part-* | sort |
        diff "$T/want" - | head -5)"
no_work_dir_left

# --json: the job's status as the master reports it.
inline --json --job "$WC" --input "$T/in" --output "$T/inl2" -R 3 \
    --split-size 256K >"$T/inl2.json" 2>"$T/inl2.log" ||
    fail "quern run --inline --json failed: $(cat "$T/inl2.log")"
jq -e --argjson m "$maps" '.state == "succeeded" and .maps == $m and
    .maps_done == $m and .reduces == 3 and .reduces_done == 3 and
    .counters.map_attempts == $m and .counters.reduce_attempts == 3 and
    .task_rss_peak_bytes > 0 and .error == null' "$T/inl2.json" >/dev/null ||
    fail "unexpected --json: $(jq -c '{state, error, maps, maps_done,
        reduces_done, task_rss_peak_bytes, counters}' "$T/inl2.json")"
cat "$T"/inl2/part-* | sort | cmp -s - "$T/want" || fail "--json run's output differs"
no_work_dir_left

# No child process, no socket: strace sees one execve (quern's own) and no
# clone, fork or socket. Without strace (or ptrace) this is not checked.
if command -v strace >/dev/null && strace -f -qq -e trace=none true 2>/dev/null; then
    # (LeakSanitizer cannot run under ptrace: under ASan, no leak check.)
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        TMPDIR=$INL_TMP timeout 60 strace -f -qq -o "$T/strace.out" \
        -e trace=execve,clone,clone3,fork,vfork,socket,socketpair \
        "$QUERN" run --inline --job "$WC" --input "$T/in" --output "$T/inl3" \
        -R 3 --split-size 256K >"$T/inl3.log" 2>&1 ||
        fail "quern run --inline under strace failed: $(cat "$T/inl3.log")"
    [ "$(grep -c 'execve(' "$T/strace.out")" = 1 ] ||
        fail "strace saw no execve, or more than one: $(head "$T/strace.out")"
    ! grep -E 'clone3?\(|fork\(' "$T/strace.out" ||
        fail "quern run --inline started a process or thread"
    ! grep -E 'socket(pair)?\(' "$T/strace.out" ||
        fail "quern run --inline opened a socket"
    cat "$T"/inl3/part-* | sort | cmp -s - "$T/want" || fail "traced run's output differs"
    no_work_dir_left
else
    echo "note: no usable strace; not checked that --inline starts no process"
fi

# ---- TeraSort inline ----------------------------------------------------------

mkdir "$T/ranges"
printf '%-1023s\n' '0 4000' '4000 4000' '8000 4000' >"$T/ranges/r"
inline --job "$JOBS/teragen.so" --input "$T/ranges" --output "$T/gen" -R 2 \
    --arg rows=12000 --split-size 1K >"$T/gen.log" 2>&1 ||
    fail "teragen inline: $(cat "$T/gen.log")"
[ "$(cat "$T"/gen/part-* | wc -c)" = 1200000 ] ||
    fail "teragen did not write 12000 records of 100 bytes"
head -c 300000 "$T/gen/part-00000" >"$T/tera-sample"
inline --job "$JOBS/terasort.so" --input "$T/gen" --output "$T/sorted" -R 3 \
    --file "$T/tera-sample" --arg sample=tera-sample --split-size 128K >"$T/sort.log" 2>&1 ||
    fail "terasort inline: $(cat "$T/sort.log")"
[ "$(ls "$T/sorted" | grep -c '^part-')" = 3 ] || fail "expected 3 part files"
cat "$T"/gen/part-* | LC_ALL=C sort >"$T/tsort.want"
cat "$T"/sorted/part-* | cmp -s - "$T/tsort.want" ||
    fail "terasort inline output differs from LC_ALL=C sort"
"$(cd "$BUILD/tests" && pwd)/teravalidate" --input "$T/gen" "$T/sorted" \
    >"$T/v.out" || fail "validator: $(cat "$T/v.out")"
grep -q "^ok: 12000 records in order" "$T/v.out" || fail "validator: $(cat "$T/v.out")"
no_work_dir_left

# ---- a plugin that fails ------------------------------------------------------

# In a map, after other maps wrote their outputs: the last file holds the
# poisoned line.
mkdir "$T/pin"
cp "$T"/in/* "$T/pin/"
printf 'one two\na POISONED line\nthree\n' >"$T/pin/zz-last.txt"
rc=0
inline --job "$TJOBS/faulty.so" --input "$T/pin" --output "$T/bad1" -R 3 \
    --split-size 256K --arg fail=error --arg poison=POISONED \
    >"$T/bad1.log" 2>&1 || rc=$?
[ $rc = 1 ] || fail "a failing map: exit $rc, not 1: $(cat "$T/bad1.log")"
grep -q "failed" "$T/bad1.log" || fail "no failure reported: $(cat "$T/bad1.log")"
grep -q "faulty: failing on purpose" "$T/bad1.log" ||
    fail "the plugin's reason is not printed: $(cat "$T/bad1.log")"
grep -Eq "map [0-9]+ \(.*/zz-last.txt at 0\) failed" "$T/bad1.log" ||
    fail "the failing map is not named: $(cat "$T/bad1.log")"
no_output "$T/bad1"
no_work_dir_left

# The same with --json: state failed, the reason in error.
rc=0
inline --json --job "$TJOBS/faulty.so" --input "$T/pin" --output "$T/bad2" \
    -R 3 --split-size 256K --arg fail=error --arg poison=POISONED \
    >"$T/bad2.json" 2>"$T/bad2.log" || rc=$?
[ $rc = 1 ] || fail "a failing map with --json: exit $rc, not 1"
jq -e '.state == "failed" and (.error | test("failing on purpose"))' \
    "$T/bad2.json" >/dev/null || fail "unexpected --json: $(cat "$T/bad2.json")"
no_output "$T/bad2"
no_work_dir_left

# In a reduce, after earlier reduces committed their part files: words
# that all hash to partition 2 of 3 (as the cluster run placed them), so
# reduces 0 and 1 have no key, succeed and commit, and reduce 2 fails.
mkdir "$T/rin"
mawk -F '\t' 'NR <= 50 { printf "%s ", $1 } END { print "" }' \
    "$T/cl/part-00002" >"$T/rin/words.txt"
rc=0
inline --job "$TJOBS/faulty.so" --input "$T/rin" --output "$T/bad3" -R 3 \
    --arg fail=error --arg phase=reduce >"$T/bad3.log" 2>&1 || rc=$?
[ $rc = 1 ] || fail "a failing reduce: exit $rc, not 1: $(cat "$T/bad3.log")"
grep -q "reduce 2 failed.*failing on purpose" "$T/bad3.log" ||
    fail "expected reduce 2 to fail: $(cat "$T/bad3.log")"
grep -q "tasks: *1/1 maps, 2/3 reduces done" "$T/bad3.log" ||
    fail "expected reduces 0 and 1 to be done: $(cat "$T/bad3.log")"
no_output "$T/bad3"
no_work_dir_left

# ---- refusals -------------------------------------------------------------------

# refused WHAT ARGS...: quern run --inline ARGS (run in $T, so a dataset
# name would land there) exits 2 with a message matching WHAT.
refused() {
    local what=$1 rc=0
    shift
    (cd "$T" && inline "$@") >"$T/ref.log" 2>&1 || rc=$?
    [ $rc = 2 ] || fail "exit $rc, not 2, for $*: $(cat "$T/ref.log")"
    grep -q -- "$what" "$T/ref.log" || fail "for $*: $(cat "$T/ref.log")"
}
refused "no file or folder ./words here" \
    --job "$WC" --input words --output "$T/ref1"
[ ! -e "$T/ref1" ] || fail "a refused job created its output folder"
# A bare name is a folder here, as in quern run.
(cd "$T" && inline --job "$WC" --input "$T/in" --output result) >"$T/ref.log" 2>&1 ||
    fail "--inline --output result failed: $(cat "$T/ref.log")"
[ -e "$T/result/_SUCCESS" ] || fail "--inline --output result wrote no ./result"
refused "already holds a committed job's output" \
    --job "$WC" --input "$T/in" --output "$T/inl"
# The committed output is untouched.
[ -f "$T/inl/_SUCCESS" ] || fail "a refused job removed _SUCCESS"
cat "$T"/inl/part-* | sort | cmp -s - "$T/want" || fail "a refused job changed $T/inl"
no_work_dir_left

echo "ok: --inline ($maps maps, R = 3) equals the cluster and mawk; terasort" \
    "inline equals sort; failures leave no output; refusals exit 2"
