#!/usr/bin/env bash
# grep for a rare pattern, checked against `grep -b -E` (which prints each
# match's byte offset, the offset Quern's grep puts in its key).
. "$(dirname "$0")/lib.sh"

gen "$T/in" 12M 4 7
pat='(^| )tinta( |$)|marmar'
cd "$T"
grep -b -E "$pat" ./in/* | sed 's/^\([^:]*:[0-9]*\):/\1\t/' | sort >want
[ "$(wc -l <want)" -gt 10 ] || fail "the pattern should match a few lines"

"$QUERN" run --job "$JOBS/grep.so" --arg "pattern=$pat" --input ./in \
    --output ./out -R 3 --split-size 1M >run.log 2>&1 || fail "quern run failed: $(cat run.log)"
cat out/part-* | sort | cmp - want || fail "output differs from grep -b"
# Each partition is in (shard, numeric offset) order: the job's compare.
for p in out/part-*; do
    awk -F'\t' '{ split($1, a, ":"); print a[1] "\t" a[2] }' "$p" >order
    sort -t"$(printf '\t')" -k1,1 -k2,2n -c order || fail "$p is not in shard, offset order"
done
# The plain-text prefilter (the text every match must contain) never
# drops a match: patterns where a naive one would.
i=0
for p in '(^| )tinta( |$)' 'ti(n|r)ta' 'tin?ta' 'ti{1,2}nta' 'tin.a' '\<tinta' \
    'ti[^]x]ta' 'ta ti' 'mar+mar'; do
    i=$((i + 1))
    n=$(cat ./in/* | { grep -c -E "$p" || true; })
    "$QUERN" run --job "$JOBS/grep.so" --arg "pattern=$p" --input ./in \
        --output "./p$i" --split-size 4M >"p$i.log" 2>&1 || fail "quern run '$p': $(cat "p$i.log")"
    [ "$(cat "p$i"/part-* | wc -l)" = "$n" ] || fail "'$p': $(cat "p$i"/part-* | wc -l) lines, grep -c says $n"
done
# A bad pattern is the job's own error, reported with the reason.
if "$QUERN" run --job "$JOBS/grep.so" --arg 'pattern=(' --input ./in \
    --output ./bad --max-attempts 1 >bad.log 2>&1; then
    fail "a bad pattern should fail the job"
fi
grep -q "bad pattern" bad.log || fail "the reason is not shown: $(cat bad.log)"
[ ! -e bad/part-00000 ] || fail "a failed job left output"
echo "ok: grep equals grep -b -E ($(wc -l <want) lines)"
