#!/usr/bin/env bash
# Compressed input, and lines as Windows writes them. A file compressed
# with gzip, bzip2, xz, zstd or lz4 is known by its first bytes, whatever
# its name, and read decompressed: a word count over each codec's files,
# over a folder mixing them with plain ones, over files of several gzip
# members and zstd frames, run on a local cluster and inline, equals the
# count of the plain text. quern put of a compressed file stores its
# records (quern cat gives them back). A truncated gzip file and a damaged
# zstd frame fail the job naming the file and the offset, with no output.
# CRLF lines count as LF ones; --keep-cr keeps the \r.
. "$(dirname "$0")/lib.sh"

WC=$JOBS/wordcount.so
for tool in gzip bzip2 xz zstd lz4; do
    command -v $tool >/dev/null || fail "$tool is missing (make test installs it)"
done

gen "$T/plain" 512K 4
wordcount_ref "$T"/plain/* >"$T/want"

# pack CODEC DIR: every plain file compressed with CODEC into DIR, under
# names that say nothing of it.
pack() {
    local codec=$1 dir=$2 f
    mkdir -p "$dir"
    for f in "$T"/plain/*; do
        case $codec in
        gzip) gzip -1 -c "$f" ;;
        bzip2) bzip2 -c "$f" ;;
        xz) xz -c "$f" ;;
        zstd) zstd -q -3 -c "$f" ;;
        lz4) lz4 -q -c "$f" ;;
        esac >"$dir/$(basename "$f" .txt).$codec-data"
    done
}

# count OUT ARGS...: a word count of ARGS' inputs into OUT, which must
# equal the plain text's; the job's JSON in OUT.json.
count() {
    local out=$1
    shift
    "$QUERN" run --job "$WC" --output "$out" -R 2 --workers 2 --json "$@" \
        >"$out.json" 2>"$out.log" || fail "word count of $* failed: $(cat "$out.log")"
    cat "$out"/part-* | sort | cmp -s - "$T/want" ||
        fail "word count of $* differs from the plain text's: $(cat "$out"/part-* | sort | diff - "$T/want" | head -5)"
}

for codec in gzip bzip2 xz zstd lz4; do
    pack $codec "$T/$codec"
    # Each file is larger than a split, and is still one map: a
    # compressed file is never cut.
    count "$T/out-$codec" --input "$T/$codec" --split-size 16K
    [ "$(jq .maps "$T/out-$codec.json")" = 4 ] ||
        fail "$codec: expected 4 maps, one per file, got $(jq .maps "$T/out-$codec.json")"
done

# A folder of plain and compressed files together, and a plain file named
# as if compressed.
mkdir "$T/mixed"
cp "$T/plain/text-000.txt" "$T/mixed/a.gz"
cp "$T/gzip/text-001.gzip-data" "$T/mixed/b.txt"
cp "$T/xz/text-002.xz-data" "$T/mixed/c"
cp "$T/plain/text-003.txt" "$T/mixed/d.zst"
count "$T/out-mixed" --input "$T/mixed" --split-size 64K
count "$T/out-inline" --input "$T/mixed" --inline

# Several members and frames in one file: pigz, `cat a.gz b.gz`, zstd -B.
mkdir "$T/multi"
cat "$T/gzip/text-000.gzip-data" "$T/gzip/text-001.gzip-data" >"$T/multi/ab.gz"
zstd -q -c "$T/plain/text-002.txt" >"$T/multi/c.zst"
zstd -q -c "$T/plain/text-003.txt" >>"$T/multi/c.zst"
count "$T/out-multi" --input "$T/multi"

# ---- damaged files: the job fails, naming the file and the offset -----------

# fails_naming OUT WHAT INPUT...: a word count of INPUT fails (exit 1),
# its error names WHAT and an offset, and OUT holds no part file.
fails_naming() {
    local out=$1 what=$2 rc=0
    shift 2
    "$QUERN" run --job "$WC" --output "$out" -R 1 --workers 1 --max-attempts 1 \
        --input "$@" >"$out.log" 2>&1 || rc=$?
    [ $rc = 1 ] || fail "a job over $what exited $rc, not 1: $(cat "$out.log")"
    grep -q "$what.*offset [0-9]" "$out.log" ||
        fail "the error does not name $what and an offset: $(cat "$out.log")"
    ! ls "$out"/part-* >/dev/null 2>&1 || fail "a failed job left part files in $out"
}

mkdir "$T/trunc" "$T/bad"
size=$(stat -c %s "$T/gzip/text-000.gzip-data")
head -c $((size - 20)) "$T/gzip/text-000.gzip-data" >"$T/trunc/cut.gz"
fails_naming "$T/out-trunc" "cut.gz: its gzip data is cut short" "$T/trunc"
grep -q 'truncated' "$T/out-trunc.log" || fail "the error does not say truncated: $(cat "$T/out-trunc.log")"
cp "$T/zstd/text-001.zstd-data" "$T/bad/frame.zst"
size=$(stat -c %s "$T/bad/frame.zst")
printf '\xff\xff\xff\xff' | dd of="$T/bad/frame.zst" bs=1 seek=$((size / 2)) conv=notrunc status=none
fails_naming "$T/out-bad" "frame.zst: its zstd data is damaged" "$T/bad"

# ---- quern put of compressed files: their records, stored as shards -------

start_master
start_worker w1 --data-dir "$T/data1"
start_worker w2 --data-dir "$T/data2"
joined 2 || fail "the workers did not join"
"$QUERN" put --master "$MASTER" --dataset books --replicas 1 --shard-size 64K \
    "$T/gzip/text-000.gzip-data" "$T/bzip2/text-001.bzip2-data" \
    "$T/plain/text-002.txt" "$T/lz4/text-003.lz4-data" 2>"$T/put.log" ||
    fail "quern put of compressed files failed: $(cat "$T/put.log")"
"$QUERN" cat --master "$MASTER" books >"$T/books" || fail "quern cat books failed"
cat "$T"/plain/* | cmp -s - "$T/books" ||
    fail "quern cat of a put of compressed files does not give their text back"
"$QUERN" put --master "$MASTER" --dataset broken "$T/trunc/cut.gz" \
    >"$T/put-bad.log" 2>&1 && fail "quern put of a truncated gzip file succeeded"
grep -q 'cut.gz: its gzip data is cut short at offset' "$T/put-bad.log" ||
    fail "quern put does not name the truncated file: $(cat "$T/put-bad.log")"

# ---- lines as Windows writes them -------------------------------------------

mkdir "$T/crlf" "$T/lf"
printf 'bar foo\r\nbar\r\n\r\nbaz bar\r\nlone\rcr\n' >"$T/crlf/w.txt"
printf 'bar foo\nbar\n\nbaz bar\nlone\rcr\n' >"$T/lf/u.txt"
wordcount_ref "$T/lf/u.txt" >"$T/want"
count "$T/out-crlf" --input "$T/crlf"
gzip -c "$T/crlf/w.txt" >"$T/crlf/w.txt.gz" && rm "$T/crlf/w.txt"
count "$T/out-crlfgz" --input "$T/crlf"
"$QUERN" run --job "$WC" --output "$T/out-keep" --input "$T/crlf" --keep-cr \
    >/dev/null 2>&1 || fail "--keep-cr failed"
grep -q $'^bar\r\t2$' "$T"/out-keep/part-* ||
    fail "--keep-cr did not keep the carriage returns: $(cat -A "$T"/out-keep/part-*)"

# ---- binary where lines are expected: the job goes on, and says so once -----

mkdir "$T/bin"
cp "$T/plain/text-000.txt" "$T/bin/a.txt"
{ printf 'head\n'; head -c 3000 "$T/plain/text-001.txt"; printf 'x\0y\n'; } >"$T/bin/b.dat"
"$QUERN" run --job "$WC" --input "$T/bin" --output "$T/out-bin" --workers 2 \
    >"$T/bin.log" 2>&1 || fail "a job over a binary file failed: $(cat "$T/bin.log")"
grep -q "warning:    input $T/bin/b.dat looks binary: a NUL byte at offset 3006" "$T/bin.log" ||
    fail "no warning of the binary input in the result: $(cat "$T/bin.log")"
[ "$(grep -c 'looks binary' "$T/bin.log")" = 1 ] || fail "the warning is not said once"
"$QUERN" run --job "$WC" --input "$T/bin" --output "$T/out-bin2" --inline --json \
    >"$T/bin.json" 2>/dev/null || fail "--inline over a binary file failed"
jq -e '.warning | test("b.dat looks binary")' "$T/bin.json" >/dev/null ||
    fail "--inline --json has no warning: $(jq .warning "$T/bin.json")"
[ "$(jq .warning "$T/out-mixed.json")" = null ] || fail "a text job has a warning: $(jq .warning "$T/out-mixed.json")"

echo "ok: gzip, bzip2, xz, zstd and lz4 input by their bytes, mixed, multi-member, inline and put; truncated and damaged files named; CRLF lines; binary input said"
