#!/usr/bin/env bash
# Word count with `quern run` (a real master and 2 workers on loopback,
# R = 3), checked against `sort | uniq -c`; then the same input with a
# tiny sort buffer, so maps spill dozens of runs and merge them in passes.
. "$(dirname "$0")/lib.sh"

gen "$T/in" 24M 6
wordcount_ref "$T"/in/* >"$T/want"

"$QUERN" run --job "$JOBS/wordcount.so" --input "$T/in" --output "$T/out" \
    -R 3 --workers 2 --split-size 6M >"$T/run.log" 2>&1 ||
    fail "quern run failed: $(cat "$T/run.log")"
[ -f "$T/out/_SUCCESS" ] || fail "no _SUCCESS"
[ "$(ls "$T/out" | grep -c '^part-')" = 3 ] || fail "expected 3 part files"
[ ! -e "$T/out/_temporary" ] || fail "_temporary left behind"
cat "$T"/out/part-* | sort | cmp - "$T/want" || fail "output differs from sort | uniq -c"
grep -Eq '6/6 maps, 3/3 reduces done' "$T/run.log" || fail "expected 6 maps: $(cat "$T/run.log")"
# The shuffle figures are printed, and compression did something.
raw=$(sed -n 's/.*shuffle: *\([0-9.]*\) \([KMG]*i*B\) raw.*/\1 \2/p' "$T/run.log")
[ -n "$raw" ] || fail "no shuffle line in: $(cat "$T/run.log")"

"$QUERN" run --job "$JOBS/wordcount.so" --input "$T/in" --output "$T/out2" \
    -R 2 --workers 2 --split-size 12M --sort-mb 1 --json >"$T/run2.json" \
    2>"$T/run2.log" || fail "quern run --sort-mb 1 failed: $(cat "$T/run2.log")"
cat "$T"/out2/part-* | sort | cmp - "$T/want" || fail "spilled output differs"
spills=$(grep -o '"spills": [0-9]*' "$T/run2.json" | grep -o '[0-9]*$')
[ "$spills" -gt 64 ] || fail "expected many spills with --sort-mb 1, got $spills"
echo "ok: word count equals sort | uniq -c ($(wc -l <"$T/want") words, $spills spills)"
