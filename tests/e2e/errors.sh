#!/usr/bin/env bash
# Usage errors exit 2 with a message naming the bad thing; plugins that
# crash, exit or fail cost attempts (the worker survives to run the next
# attempt) and the job fails with exit 1 and each attempt's reason.
. "$(dirname "$0")/lib.sh"

gen "$T/in" 1M 1
cd "$T"
mkdir full && touch full/x

# expect STATUS PATTERN quern-args...: exit status and a line of output.
expect() {
    local want=$1 pat=$2
    shift 2
    set +e
    "$QUERN" "$@" >out.txt 2>&1
    local rc=$?
    set -e
    [ $rc = "$want" ] || fail "quern $* exited $rc, not $want: $(cat out.txt)"
    grep -Eq -- "$pat" out.txt || fail "quern $*: no '$pat' in: $(cat out.txt)"
}

W=$JOBS/wordcount.so
expect 2 'usage: quern' 
expect 2 "unknown command 'frobnicate'" frobnicate
expect 2 '--job is required' run --input ./in --output ./o
expect 2 '--input is required' run --job "$W" --output ./o
expect 2 '--output is required' run --job "$W" --input ./in
expect 2 'give the plugin as a path' run --job wordcount.so --input ./in --output ./o
expect 2 'does not define quern_job_v1' run --job "$TJOBS/noentry.so" --input ./in --output ./o
expect 2 'built for plugin ABI 2, but this quern runs ABI 1' run --job "$TJOBS/badabi.so" --input ./in --output ./o
expect 2 'has no map function' run --job "$TJOBS/nomap.so" --input ./in --output ./o
expect 2 'has no reduce function' run --job "$TJOBS/noreduce.so" --input ./in --output ./o
# Shared objects for another machine, or not shared objects: refused from
# their ELF header, before anything of theirs is loaded.
elf_patch() { # FILE OFFSET BYTE...: a copy of wordcount.so with bytes changed
    local f=$1 off=$2 b
    cp "$W" "$f"
    shift 2
    for b in "$@"; do
        printf "$(printf '\\%03o' "$b")" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
        off=$((off + 1))
    done
}
elf_patch arm.so 18 183 0
expect 2 'not a shared object for this machine: built for ELF machine 183, this quern runs on x86-64 \(62\)' run --job ./arm.so --input ./in --output ./o
elf_patch elf32.so 4 1
expect 2 'not a shared object for this machine: it is 32-bit, this quern is 64-bit' run --job ./elf32.so --input ./in --output ./o
elf_patch exec.so 16 2 0
expect 2 'not a shared object \(ELF type 2\)' run --job ./exec.so --input ./in --output ./o
expect 2 'cannot load it as a shared object: not an ELF file' run --job /etc/hostname --input ./in --output ./o
expect 2 '-R must be a number of reducers from 1 to 100000' run --job "$W" --input ./in --output ./o -R 100001
expect 2 '--input ./nothere: No such file or directory' run --job "$W" --input ./nothere --output ./o
expect 2 'no file or folder ./nothere here' run --job "$W" --input nothere --output ./o
expect 2 'no file or folder ./a b here' run --job "$W" --input 'a b' --output ./o
expect 2 '-R must be a number of reducers from 1 to 100000' run --job "$W" --input ./in --output ./o -R 0
expect 2 "unknown option '--frob'" run --job "$W" --input ./in --output ./o --frob
expect 2 'supported codecs are zlib, lz4, zstd, none' run --job "$W" --input ./in --output ./o --codec gzip
expect 2 '--sort-mb must be from 1 to 4095' run --job "$W" --input ./in --output ./o --sort-mb 0
expect 2 '--arg takes NAME=VALUE' run --job "$W" --input ./in --output ./o --arg oops
expect 2 'exists and is not empty' run --job "$W" --input ./in --output ./full
[ ! -e o ] || fail "a refused job created its output folder"
# A plugin whose quern_job_v1 is an int: refused from the symbol's size,
# never read as a quern_job.
expect 2 'its quern_job_v1 is 4 bytes, too small to be a quern_job' run --job "$TJOBS/smalljob.so" --input ./in --output ./o

# What only the master can refuse: a job the quern command would not send,
# sent by tests/tools/hostile to a master of its own. Each refusal is one
# line; the master's checks read the plugin's bytes without loading them.
start_master
HOSTILE=$(dirname "$GENTEXT")/hostile
refused_by_master() { # PATTERN PLUGIN [codec99|notelf|relative]
    local pat=$1
    shift
    set +e
    "$HOSTILE" submit "$MASTER" "$1" "$T/in" "$T/om" "${@:2}" >out.txt 2>&1
    local rc=$?
    set -e
    [ $rc = 1 ] || fail "hostile submit $* exited $rc, not 1: $(cat out.txt)"
    grep -Eq -- "^refused: .*$pat" out.txt || fail "hostile submit $*: no '$pat' in: $(cat out.txt)"
    [ "$(wc -l <out.txt)" = 1 ] || fail "hostile submit $*: not one line: $(cat out.txt)"
}
# quern submit refuses what quern run refuses, with the same line, before
# anything reaches the master (but an output folder, which the master
# makes), and exits 2.
for args in "does not define quern_job_v1|$TJOBS/noentry.so" \
    "built for plugin ABI 2, but this quern runs ABI 1|$TJOBS/badabi.so" \
    "has no map function|$TJOBS/nomap.so" "has no reduce function|$TJOBS/noreduce.so" \
    "built for ELF machine 183, this quern runs on x86-64 \(62\)|./arm.so" \
    "too small to be a quern_job|$TJOBS/smalljob.so" \
    "not an ELF file|/etc/hostname"; do
    expect 2 "${args%%|*}" submit --master "$MASTER" --job "${args#*|}" --input ./in --output ./o
    ! grep -q 'the master refused' out.txt || fail "the master refused what quern submit should have: $(cat out.txt)"
done
expect 2 '-R must be a number of reducers from 1 to 100000' submit --master "$MASTER" --job "$W" --input ./in --output ./o -R 100001
expect 2 '--input ./nothere: No such file or directory' submit --master "$MASTER" --job "$W" --input ./nothere --output ./o
! grep -q 'the master refused' out.txt || fail "the master refused what quern submit should have: $(cat out.txt)"
# The output folder is the master's to make, and so to refuse.
expect 2 'the master refused the job: output .*/full exists and is not empty' submit --master "$MASTER" --job "$W" --input ./in --output ./full
[ ! -e o ] || fail "a refused submit created its output folder"
"$QUERN" jobs --master "$MASTER" --json >jobs.json
jq -e 'length == 0' jobs.json >/dev/null || fail "a refused submit reached the master: $(cat jobs.json)"

refused_by_master 'codec 99 is not one this quern knows \(zlib, lz4, zstd, none\)' "$W" codec99
refused_by_master 'plugin .*wordcount.so: cannot load it as a shared object: not an ELF file' "$W" notelf
refused_by_master 'input .*/in: its path relative/in is not absolute' "$W" relative
refused_by_master 'plugin .*noentry.so: not a Quern plugin: it does not define quern_job_v1' "$TJOBS/noentry.so"
refused_by_master 'plugin .*smalljob.so: its quern_job_v1 is 4 bytes, too small to be a quern_job' "$TJOBS/smalljob.so"
refused_by_master 'built for ELF machine 183, this quern runs on x86-64' "$T/arm.so"
[ ! -e "$T/om" ] || fail "a job the master refused created its output folder"
"$HOSTILE" submit "$MASTER" "$W" "$T/in" "$T/om" >out.txt 2>&1 || fail "the master refused a good job: $(cat out.txt)"
grep -q '^accepted job-' out.txt || fail "the master did not accept a good job: $(cat out.txt)"

# A plugin that crashes: every attempt is a failed attempt, the worker
# lives on (the second attempt ran after the first crashed), exit 1.
F=$TJOBS/faulty.so
expect 1 'map task 0 attempt 2 .*killed by signal 11' run --job "$F" --arg fail=segv --input ./in --output ./o1 --max-attempts 2
grep -q 'map task 0 attempt 1 .*killed by signal 11' out.txt || fail "attempt 1 missing: $(cat out.txt)"
grep -q 'failed 2 times' out.txt || fail "$(cat out.txt)"
expect 1 'killed by signal 6' run --job "$F" --arg fail=abort --input ./in --output ./o2 --max-attempts 1
expect 1 'exit code 7' run --job "$F" --arg fail=exit --input ./in --output ./o3 --max-attempts 1
expect 1 'failing on purpose at record 5 .*on the record at offset [1-9][0-9]* of ./in/text-000.txt' run --job "$F" --arg fail=error --arg at=5 --input ./in --output ./o4 --max-attempts 1
expect 1 'bad byte \? here' run --job "$F" --arg fail=binary --input ./in --output ./o8 --max-attempts 1
expect 1 'killed by signal 6 .*in the job.s setup\(\)' run --job "$F" --arg fail=abort --arg phase=setup --input ./in --output ./o5 --max-attempts 1
expect 1 'reduce task .*killed by signal 11' run --job "$F" --arg fail=segv --arg phase=reduce --input ./in --output ./o6 --max-attempts 1
# A failed job leaves none of the processes quern run started.
set +e
"$QUERN" run --job "$F" --arg fail=exit --input ./in --output ./o7 --max-attempts 1 >out.txt 2>&1 &
qpid=$!
wait $qpid
rc=$?
set -e
[ $rc = 1 ] || fail "a failing job exited $rc"
left=$(grep -l "QUERN_PARENT_PID=$qpid" /proc/[0-9]*/environ 2>/dev/null || true)
[ -z "$left" ] || fail "processes left after a failed job: $left"
for o in o1 o2 o3 o4 o5 o6 o7 o8; do
    [ -z "$(ls -A $o 2>/dev/null)" ] || fail "failed job left output in $o: $(ls $o)"
done
echo "ok: refusals and failing plugins"
