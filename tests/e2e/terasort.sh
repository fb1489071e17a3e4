#!/usr/bin/env bash
# TeraSort: teragen makes 100-byte records deterministically; terasort,
# with its sampling partitioner, writes part files whose concatenation is
# LC_ALL=C sort of the input, byte for byte (QUERN_OUTPUT_RAW); the
# validator agrees; a plugin built before quern_job had `output` still
# writes key<TAB>value lines.
. "$(dirname "$0")/lib.sh"

VALIDATE=$(cd "$BUILD/tests" && pwd)/teravalidate
mkdir "$T/ranges" "$T/ranges3"
# One map per line: each line padded to the split size.
printf '%-1023s\n' '0 5000' '5000 5000' '10000 5000' '15000 5000' >"$T/ranges/r"
"$QUERN" run --job "$JOBS/teragen.so" --input "$T/ranges" --output "$T/gen" \
    -R 2 --arg rows=20000 --split-size 1K >"$T/gen.log" 2>&1 || fail "teragen: $(cat "$T/gen.log")"
[ "$(cat "$T"/gen/part-* | wc -c)" = 2000000 ] || fail "teragen did not write 20000 records of 100 bytes"
bad=$(cat "$T"/gen/part-* | awk 'length($0) != 99' | wc -l)
[ "$bad" = 0 ] || fail "$bad teragen lines are not 99 bytes and a newline"
# The same rows from other splits and reducers are the same bytes.
printf '%-1023s\n' '0 12000' '12000 8000' >"$T/ranges3/r"
"$QUERN" run --job "$JOBS/teragen.so" --input "$T/ranges3" --output "$T/gen3" \
    -R 3 --arg rows=20000 --split-size 1K >"$T/gen3.log" 2>&1 || fail "teragen: $(cat "$T/gen3.log")"
cmp -s <(cat "$T"/gen/part-*) <(cat "$T"/gen3/part-*) || fail "teragen is not deterministic"

# The sampling partitioner reads a sample of the input shipped with the job.
head -c 500000 "$T/gen/part-00000" >"$T/tera-sample"
"$QUERN" run --job "$JOBS/terasort.so" --input "$T/gen" --output "$T/sorted" -R 4 \
    --file "$T/tera-sample" --arg sample=tera-sample --split-size 256K >"$T/sort.log" 2>&1 || fail "terasort: $(cat "$T/sort.log")"
cat "$T"/gen/part-* | LC_ALL=C sort >"$T/want"
cat "$T"/sorted/part-* | cmp -s - "$T/want" || fail "terasort output differs from LC_ALL=C sort"
for p in "$T"/sorted/part-*; do
    # Sampled cut points: no partition empty, none with most of the data.
    size=$(stat -c %s "$p")
    [ "$size" -gt 200000 ] && [ "$size" -lt 1000000 ] || fail "$p holds $size bytes of 2000000"
done
"$VALIDATE" --input "$T/gen" "$T/sorted" >"$T/v.out" || fail "validator: $(cat "$T/v.out")"
grep -q "^ok: 20000 records in order" "$T/v.out" || fail "validator: $(cat "$T/v.out")"
# The validator is not a rubber stamp.
"$VALIDATE" "$T/gen" >"$T/v2.out" && fail "the validator accepted unsorted input"
grep -q "sorts before" "$T/v2.out" || fail "validator: $(cat "$T/v2.out")"

set +e
"$QUERN" run --job "$JOBS/terasort.so" --input "$T/gen" --output "$T/nosample" -R 2 \
    --max-attempts 1 >"$T/ns.log" 2>&1
rc=$?
set -e
[ $rc = 1 ] || fail "terasort without sample= exited $rc, not 1"
grep -q "terasort needs --arg sample=PATH" "$T/ns.log" || fail "$(cat "$T/ns.log")"

# A plugin with the shorter quern_job of before: lines as they were.
mkdir "$T/words"
printf 'a b a\nc a\n' >"$T/words/w.txt"
"$QUERN" run --job "$TJOBS/oldabi.so" --input "$T/words" --output "$T/old" \
    >"$T/old.log" 2>&1 || fail "old plugin: $(cat "$T/old.log")"
[ "$(cat "$T/old/part-00000")" = "$(printf 'a\t3\nb\t1\nc\t1')" ] ||
    fail "old plugin's output: $(od -c "$T/old/part-00000" | head)"
echo "ok: teragen is deterministic; terasort equals LC_ALL=C sort; the validator agrees"
