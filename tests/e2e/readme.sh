#!/usr/bin/env bash
# The job in README.md compiles as shown and counts words correctly.
. "$(dirname "$0")/lib.sh"

root=$(pwd)
awk '/^```c$/ { on = 1; next } /^```$/ { if (on) exit } on' README.md >"$T/wc.c"
grep -q QUERN_JOB "$T/wc.c" || fail "no job found in README.md"
cc -O2 -Wall -Werror -shared -fPIC -I"$root/lib" "$T/wc.c" -o "$T/wc.so" ||
    fail "the README's job does not compile"
gen "$T/in" 2M 2
cd "$T"
"$QUERN" run --job ./wc.so --input ./in --output ./out -R 2 >run.log 2>&1 ||
    fail "run failed: $(cat run.log)"
cat out/part-* | sort | cmp - <(wordcount_ref in/*) || fail "wrong counts"
echo "ok: README job"
