#!/bin/sh
# make demo: word count over a generated sample on a local cluster (one
# master, two workers on loopback), then the ten most frequent words.
set -eu
BUILD=${BUILD:-build}
dir=$BUILD/demo
rm -rf "$dir"
mkdir -p "$dir"
echo "demo: generating 64 MiB of sample text in $dir/input"
"$BUILD/tests/gentext" --out "$dir/input" --size 64M --files 4
echo "demo: quern run --job $BUILD/jobs/wordcount.so --input $dir/input --output $dir/output -R 2 --workers 2 --split-size 16M"
"$BUILD/bin/quern" run --job "$BUILD/jobs/wordcount.so" --input "$dir/input" \
    --output "$dir/output" -R 2 --workers 2 --split-size 16M
echo
echo "demo: the ten most frequent words (word, count):"
cat "$dir"/output/part-* | LC_ALL=C sort -t "$(printf '\t')" -k2,2nr -k1,1 | head -n 10
