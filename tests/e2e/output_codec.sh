#!/usr/bin/env bash
# --output-codec: each reduce writes its part file as one complete stream
# of the format, named for it (part-00000.gz, .zst, .bz2, .xz, .lz4),
# which the format's own tool reads back to the job's plain output, on a
# local cluster and inline, and which a next job reads as compressed input.
# A dataset output stores its shards as they are (quern cat and quern get
# give them back plain), and submit says so.
. "$(dirname "$0")/lib.sh"

WC=$JOBS/wordcount.so
gen "$T/in" 256K 3
wordcount_ref "$T"/in/* >"$T/want"

# check CODEC EXT TOOL OUT: OUT holds two part files ending in EXT, which
# TOOL decompresses to the word count.
check() {
    local codec=$1 ext=$2 tool=$3 out=$4 f
    [ -e "$out/_SUCCESS" ] || fail "$codec: no _SUCCESS in $out"
    [ "$(ls "$out" | grep -c "^part-0000[01]$ext\$")" = 2 ] ||
        fail "$codec: expected part-00000$ext and part-00001$ext: $(ls "$out")"
    for f in "$out"/part-*; do
        $tool "$f" || fail "$codec: $tool cannot read $f"
    done | sort | cmp -s - "$T/want" ||
        fail "$codec: $tool of the part files is not the word count"
}

for c in "gzip .gz gzip -dc" "zstd .zst zstd -qdc" "bzip2 .bz2 bzip2 -dc" \
    "xz .xz xz -dc" "lz4 .lz4 lz4 -qdc"; do
    read -r codec ext tool <<<"$c"
    "$QUERN" run --job "$WC" --input "$T/in" --output "$T/out-$codec" -R 2 \
        --workers 2 --output-codec "$codec" >/dev/null 2>"$T/$codec.log" ||
        fail "--output-codec $codec failed: $(cat "$T/$codec.log")"
    check "$codec" "$ext" "$tool" "$T/out-$codec"
done

# Inline, and the output read back as the next job's (compressed) input.
"$QUERN" run --job "$WC" --input "$T/in" --output "$T/out-inline" -R 2 \
    --inline --output-codec zstd >/dev/null 2>&1 || fail "--inline --output-codec zstd failed"
check zstd .zst "zstd -qdc" "$T/out-inline"
"$QUERN" run --job "$JOBS/grep.so" --arg 'pattern=.' --input "$T/out-gzip" \
    --output "$T/again" -R 1 --workers 1 >/dev/null 2>"$T/again.log" ||
    fail "reading a gzip output back failed: $(cat "$T/again.log")"
cut -f2- "$T"/again/part-* | sort | cmp -s - "$T/want" ||
    fail "the gzip output read back as input is not the word count's lines"

# none is the default; anything else is refused before anything runs.
"$QUERN" run --job "$WC" --input "$T/in" --output "$T/out-none" -R 2 \
    --workers 1 --output-codec none >/dev/null 2>&1 || fail "--output-codec none failed"
[ "$(ls "$T/out-none" | grep -c '^part-0000[01]$')" = 2 ] ||
    fail "--output-codec none: expected plain part files: $(ls "$T/out-none")"
rc=0
"$QUERN" run --job "$WC" --input "$T/in" --output "$T/out-zip" --output-codec zip \
    >/dev/null 2>"$T/zip.log" || rc=$?
[ $rc = 2 ] && grep -q "output-codec: 'zip' is not gzip" "$T/zip.log" ||
    fail "--output-codec zip: exit $rc, $(cat "$T/zip.log")"

# A dataset output stores its shards as they are; cat and get give them
# back plain, and submit says the codec is a folder's.
start_master
start_worker w1 --data-dir "$T/data1"
joined 1 || fail "the worker did not join"
"$QUERN" submit --master "$MASTER" --job "$WC" --input "$T/in" --output counts \
    --output-replicas 1 -R 2 --output-codec gzip --wait >/dev/null 2>"$T/ds.log" ||
    fail "a dataset output with --output-codec failed: $(cat "$T/ds.log")"
grep -q -- '--output-codec gzip is for a folder.s part files: dataset counts stores its shards as they are' "$T/ds.log" ||
    fail "submit does not say the codec is a folder's: $(cat "$T/ds.log")"
"$QUERN" cat --master "$MASTER" counts | sort | cmp -s - "$T/want" ||
    fail "quern cat of the dataset output is not the word count"
"$QUERN" get --master "$MASTER" counts "$T/got" || fail "quern get counts failed"
cat "$T"/got/part-* | sort | cmp -s - "$T/want" ||
    fail "quern get of the dataset output is not the plain word count: $(ls "$T/got")"

echo "ok: --output-codec gzip, zstd, bzip2, xz and lz4 write streams their tools read; read back as input; datasets as they are"
