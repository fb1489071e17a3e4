#!/usr/bin/env bash
# Inverted index, checked against a short awk script.
. "$(dirname "$0")/lib.sh"

gen "$T/in" 6M 5 3
cd "$T"
# word -> sorted, de-duplicated list of the files it occurs in.
awk '{ for (i = 1; i <= NF; i++) print $i "\t" FILENAME }' ./in/* | sort -u |
    awk -F'\t' '$1 != w { if (NR > 1) print w "\t" l; w = $1; l = $2; next }
                { l = l "," $2 } END { print w "\t" l }' | sort >want

"$QUERN" run --job "$JOBS/invindex.so" --input ./in --output ./out -R 3 \
    --split-size 2M >run.log 2>&1 || fail "quern run failed: $(cat run.log)"
cat out/part-* | sort | cmp - want || fail "output differs from the awk index"
echo "ok: inverted index equals awk ($(wc -l <want) words)"
