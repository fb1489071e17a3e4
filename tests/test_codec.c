/*
 * test_codec.c -- block compression: round trips, corrupt input, names.
 */
#include "helpers.h"

#include "codec.h"
#include "util.h"

TestSuite(codec, .fini = qn_test_leak_check);

/* The codecs that compress. */
static const int s_ids[] = {QN_CODEC_ZLIB, QN_CODEC_LZ4, QN_CODEC_ZSTD};

/* Text-like bytes that compress, deterministic. */
static void s_fill_text(unsigned char *p, size_t n)
{
    static const char words[] = "the quick brown fox jumps over lazy dogs ";
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        if (i % 97 == 0)
            p[i] = (unsigned char)('A' + (x >> 16) % 26);
        else
            p[i] = (unsigned char)words[i % (sizeof words - 1)];
    }
}

/* Bytes that do not compress, deterministic. */
static void s_fill_noise(unsigned char *p, size_t n)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
}

/* A copy of n bytes in a buffer of exactly n bytes, so that AddressSanitizer
 * sees a read past the end of a block. */
static unsigned char *s_exact(const void *p, size_t n)
{
    unsigned char *q = malloc(n ? n : 1);
    if (n)
        memcpy(q, p, n);
    return q;
}

/*
 * Compress src with a new codec (id, level), check the codec id, decompress
 * with a second codec and compare. Returns the compressed size.
 */
static long s_round_trip(int id, int level, const unsigned char *src, size_t n,
                         int want_id)
{
    qn_codec *c = qn_codec_new(id, level);
    cr_assert_not_null(c, "codec %d level %d", id, level);
    cr_assert_eq(qn_codec_id(c), want_id, "codec %d level %d", id, level);
    size_t cap = qn_codec_bound(c, n);
    cr_assert_geq(cap, n, "bound below the input size");
    unsigned char *dst = malloc(cap ? cap : 1);
    long m = qn_codec_compress(c, src, n, dst, cap);
    cr_assert_geq(m, 0, "%s level %d: compress failed: %ld", qn_codec_name(id),
                  level, m);
    cr_assert_leq((size_t)m, cap);

    /* Any codec object decompresses every id: readers make a zlib one. */
    qn_codec *d = qn_codec_new(QN_CODEC_ZLIB, 1);
    unsigned char *z = s_exact(dst, (size_t)m);
    unsigned char *out = malloc(n ? n : 1);
    cr_assert_eq(qn_codec_decompress(d, qn_codec_id(c), z, (size_t)m, out, n),
                 0, "%s level %d: %zu bytes did not round trip",
                 qn_codec_name(id), level, n);
    cr_assert_arr_eq(out, src, n);
    free(out);
    free(z);
    free(dst);
    qn_codec_destroy(&d);
    qn_codec_destroy(&c);
    cr_assert_null(c, "destroy did not clear the pointer");
    return m;
}

Test(codec, zlib_round_trips_at_levels_1_and_9)
{
    size_t n = 200000;
    unsigned char *text = malloc(n), *noise = malloc(n);
    s_fill_text(text, n);
    s_fill_noise(noise, n);
    long l1 = s_round_trip(QN_CODEC_ZLIB, 1, text, n, QN_CODEC_ZLIB);
    long l9 = s_round_trip(QN_CODEC_ZLIB, 9, text, n, QN_CODEC_ZLIB);
    cr_expect_lt((size_t)l1, n / 4, "text did not compress at level 1");
    cr_expect_leq(l9, l1, "level 9 larger than level 1");
    s_round_trip(QN_CODEC_ZLIB, 1, noise, n, QN_CODEC_ZLIB);
    s_round_trip(QN_CODEC_ZLIB, 9, noise, n, QN_CODEC_ZLIB);
    s_round_trip(QN_CODEC_ZLIB, 6, (const unsigned char *)"x", 1,
                 QN_CODEC_ZLIB);
    s_round_trip(QN_CODEC_ZLIB, 6, text, 0, QN_CODEC_ZLIB);
    free(text);
    free(noise);
}

Test(codec, lz4_round_trips_text_noise_empty_and_one_byte)
{
    size_t n = 200000;
    unsigned char *text = malloc(n), *noise = malloc(n);
    s_fill_text(text, n);
    s_fill_noise(noise, n);
    long l1 = s_round_trip(QN_CODEC_LZ4, 1, text, n, QN_CODEC_LZ4);
    cr_expect_lt((size_t)l1, n / 4, "text did not compress");
    /* Fast mode has no better ratio to offer: every level is alike. */
    long l9 = s_round_trip(QN_CODEC_LZ4, 9, text, n, QN_CODEC_LZ4);
    cr_expect_eq(l9, l1, "level 9 differs from level 1");
    long m = s_round_trip(QN_CODEC_LZ4, 1, noise, n, QN_CODEC_LZ4);
    cr_expect_leq((size_t)m, n + n / 255 + 16);
    s_round_trip(QN_CODEC_LZ4, 1, (const unsigned char *)"x", 1, QN_CODEC_LZ4);
    s_round_trip(QN_CODEC_LZ4, 1, text, 0, QN_CODEC_LZ4);
    free(text);
    free(noise);
}

Test(codec, zstd_round_trips_text_noise_empty_and_one_byte)
{
    size_t n = 200000;
    unsigned char *text = malloc(n), *noise = malloc(n);
    s_fill_text(text, n);
    s_fill_noise(noise, n);
    long l1 = s_round_trip(QN_CODEC_ZSTD, 1, text, n, QN_CODEC_ZSTD);
    long l9 = s_round_trip(QN_CODEC_ZSTD, 9, text, n, QN_CODEC_ZSTD);
    cr_expect_lt((size_t)l1, n / 4, "text did not compress at level 1");
    cr_expect_leq(l9, l1, "level 9 larger than level 1");
    s_round_trip(QN_CODEC_ZSTD, 3, noise, n, QN_CODEC_ZSTD);
    s_round_trip(QN_CODEC_ZSTD, 3, (const unsigned char *)"x", 1,
                 QN_CODEC_ZSTD);
    s_round_trip(QN_CODEC_ZSTD, 3, text, 0, QN_CODEC_ZSTD);
    free(text);
    free(noise);
}

/* A block of several MiB, as a large record makes, half text, half noise. */
Test(codec, every_codec_round_trips_a_multi_mib_block)
{
    size_t n = 6 * 1024 * 1024 + 12345;
    unsigned char *p = malloc(n);
    s_fill_text(p, n / 2);
    s_fill_noise(p + n / 2, n - n / 2);
    for (size_t i = 0; i < QN_ARRAY_LEN(s_ids); i++) {
        long m = s_round_trip(s_ids[i], 1, p, n, s_ids[i]);
        cr_expect_lt((size_t)m, n, "%s did not compress",
                     qn_codec_name(s_ids[i]));
    }
    s_round_trip(QN_CODEC_ZSTD, 3, p, n, QN_CODEC_ZSTD);
    free(p);
}

Test(codec, level_0_stores_blocks_as_they_are)
{
    size_t n = 5000;
    unsigned char *text = malloc(n);
    s_fill_text(text, n);
    long m = s_round_trip(QN_CODEC_ZLIB, 0, text, n, QN_CODEC_NONE);
    cr_expect_eq(m, (long)n, "level 0 changed the size");
    m = s_round_trip(QN_CODEC_NONE, 0, text, n, QN_CODEC_NONE);
    cr_expect_eq(m, (long)n);
    m = s_round_trip(QN_CODEC_LZ4, 0, text, n, QN_CODEC_NONE);
    cr_expect_eq(m, (long)n);
    m = s_round_trip(QN_CODEC_ZSTD, 0, text, n, QN_CODEC_NONE);
    cr_expect_eq(m, (long)n);

    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 0);
    cr_assert_eq(qn_codec_bound(c, n), n);
    unsigned char *dst = malloc(n);
    cr_assert_eq(qn_codec_compress(c, text, n, dst, n), (long)n);
    cr_assert_arr_eq(dst, text, n, "level 0 changed the bytes");
    /* Too small an output buffer is an error, not an overflow. */
    cr_assert_lt(qn_codec_compress(c, text, n, dst, n - 1), 0);
    qn_codec_destroy(&c);
    free(dst);
    free(text);
}

/* The codec keeps its streams and contexts between blocks: many blocks in a
 * row through one compressor and one decompressor, for every codec, and one
 * decompressor taking blocks of every codec in turn. */
Test(codec, one_codec_handles_many_blocks)
{
    qn_codec *mixed = qn_codec_new(QN_CODEC_ZLIB, 1);
    for (size_t i = 0; i < QN_ARRAY_LEN(s_ids); i++) {
        int id = s_ids[i];
        qn_codec *c = qn_codec_new(id, 6);
        qn_codec *d = qn_codec_new(id, 6);
        unsigned char src[3000], dst[4000], out[3000];
        for (int b = 0; b < 50; b++) {
            size_t n = 1000 + (size_t)b * 40;
            if (b % 2)
                s_fill_noise(src, n);
            else
                s_fill_text(src, n);
            src[0] = (unsigned char)b;
            cr_assert_leq(qn_codec_bound(c, n), sizeof dst);
            long m = qn_codec_compress(c, src, n, dst, sizeof dst);
            cr_assert_gt(m, 0);
            cr_assert_eq(qn_codec_decompress(d, id, dst, (size_t)m, out, n), 0,
                         "%s block %d", qn_codec_name(id), b);
            cr_assert_arr_eq(out, src, n, "%s block %d", qn_codec_name(id), b);
            memset(out, 0, n);
            cr_assert_eq(qn_codec_decompress(mixed, id, dst, (size_t)m, out, n),
                         0, "%s block %d in the mixed decompressor",
                         qn_codec_name(id), b);
            cr_assert_arr_eq(out, src, n);
        }
        qn_codec_destroy(&c);
        qn_codec_destroy(&d);
    }
    qn_codec_destroy(&mixed);
}

/* A compressed block of text, and a decompressor, for the tests below. */
typedef struct {
    int id;
    unsigned char raw[20000];
    unsigned char z[25000];
    unsigned char out[20000];
    size_t zlen;
    qn_codec *d;
} s_block;

static s_block *s_block_new(int id)
{
    s_block *b = calloc(1, sizeof *b);
    b->id = id;
    s_fill_text(b->raw, sizeof b->raw);
    qn_codec *c = qn_codec_new(id, 6);
    long m = qn_codec_compress(c, b->raw, sizeof b->raw, b->z, sizeof b->z);
    cr_assert_gt(m, 0);
    b->zlen = (size_t)m;
    qn_codec_destroy(&c);
    b->d = qn_codec_new(QN_CODEC_ZLIB, 1);
    /* Sanity: the untouched block decompresses. */
    cr_assert_eq(
        qn_codec_decompress(b->d, id, b->z, b->zlen, b->out, sizeof b->raw), 0);
    return b;
}

static void s_block_free(s_block *b)
{
    qn_codec_destroy(&b->d);
    free(b);
}

/* Decompress zlen bytes of z into raw bytes, each in a buffer of exactly its
 * size, so that AddressSanitizer catches any access out of bounds. */
static int s_decode(s_block *b, const void *z, size_t zlen, size_t raw)
{
    unsigned char *in = s_exact(z, zlen);
    unsigned char *out = malloc(raw ? raw : 1);
    int rc = qn_codec_decompress(b->d, b->id, in, zlen, out, raw);
    if (rc == 0 && raw <= sizeof b->out)
        memcpy(b->out, out, raw);
    free(out);
    free(in);
    return rc;
}

Test(codec, truncated_stream_is_corrupt)
{
    for (size_t i = 0; i < QN_ARRAY_LEN(s_ids); i++) {
        s_block *b = s_block_new(s_ids[i]);
        const char *name = qn_codec_name(b->id);
        size_t cuts[] = {0, 1, 2, 5, b->zlen / 2, b->zlen - 2, b->zlen - 1};
        for (size_t j = 0; j < QN_ARRAY_LEN(cuts); j++)
            cr_expect_eq(s_decode(b, b->z, cuts[j], sizeof b->raw),
                         -QN_ECORRUPT,
                         "%s stream cut to %zu of %zu bytes accepted", name,
                         cuts[j], b->zlen);
        /* The codec still works after the failures. */
        cr_expect_eq(s_decode(b, b->z, b->zlen, sizeof b->raw), 0, "%s", name);
        cr_expect_arr_eq(b->out, b->raw, sizeof b->raw);
        s_block_free(b);
    }
}

Test(codec, corrupted_zlib_stream_is_corrupt)
{
    s_block *b = s_block_new(QN_CODEC_ZLIB);
    unsigned char *bad = malloc(b->zlen);
    /* Block type 3 is reserved in deflate: always a data error. */
    memcpy(bad, b->z, b->zlen);
    bad[0] |= 0x06;
    cr_expect_eq(s_decode(b, bad, b->zlen, sizeof b->raw), -QN_ECORRUPT);
    free(bad);
    s_block_free(b);
}

Test(codec, corrupted_zstd_stream_is_corrupt)
{
    s_block *b = s_block_new(QN_CODEC_ZSTD);
    unsigned char *bad = malloc(b->zlen + 16);
    /* A wrong magic number. */
    memcpy(bad, b->z, b->zlen);
    bad[0] ^= 0x01;
    cr_expect_eq(s_decode(b, bad, b->zlen, sizeof b->raw), -QN_ECORRUPT);
    /* A skippable frame (magic 0x184D2A50, 4 bytes of length, nothing in
     * it) in front of the real one. */
    static const unsigned char skip[8] = {0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0};
    memcpy(bad, skip, sizeof skip);
    memcpy(bad + sizeof skip, b->z, b->zlen);
    cr_expect_eq(s_decode(b, bad, b->zlen + sizeof skip, sizeof b->raw),
                 -QN_ECORRUPT, "skippable frame accepted");
    /* The frame twice: a valid stream, but of twice the size. */
    unsigned char *two = malloc(2 * b->zlen);
    memcpy(two, b->z, b->zlen);
    memcpy(two + b->zlen, b->z, b->zlen);
    cr_expect_eq(s_decode(b, two, 2 * b->zlen, 2 * sizeof b->raw), -QN_ECORRUPT,
                 "two frames accepted");
    free(two);
    free(bad);
    s_block_free(b);
}

Test(codec, corrupted_stream_is_corrupt)
{
    for (size_t i = 0; i < QN_ARRAY_LEN(s_ids); i++) {
        s_block *b = s_block_new(s_ids[i]);
        const char *name = qn_codec_name(b->id);
        unsigned char *bad = malloc(b->zlen);

        /* Random garbage of the same length. */
        s_fill_noise(bad, b->zlen);
        bad[0] = 0xff;
        cr_expect_eq(s_decode(b, bad, b->zlen, sizeof b->raw), -QN_ECORRUPT,
                     "%s: garbage accepted", name);

        /* Trailing bytes after the end of the stream. */
        unsigned char *longer = malloc(b->zlen + 3);
        memcpy(longer, b->z, b->zlen);
        memcpy(longer + b->zlen, "xyz", 3);
        cr_expect_eq(s_decode(b, longer, b->zlen + 3, sizeof b->raw),
                     -QN_ECORRUPT, "%s: trailing garbage accepted", name);
        free(longer);

        /* The stream is fine but the header claims another size. */
        cr_expect_eq(s_decode(b, b->z, b->zlen, sizeof b->raw - 1),
                     -QN_ECORRUPT, "%s: stream longer than its size accepted",
                     name);
        cr_expect_eq(s_decode(b, b->z, b->zlen, sizeof b->raw / 2),
                     -QN_ECORRUPT, "%s", name);
        cr_expect_eq(s_decode(b, b->z, b->zlen, 0), -QN_ECORRUPT, "%s", name);

        /* Decoded under the wrong codec id. */
        for (size_t j = 0; j < QN_ARRAY_LEN(s_ids); j++) {
            if (s_ids[j] == b->id)
                continue;
            cr_expect_eq(qn_codec_decompress(b->d, s_ids[j], b->z, b->zlen,
                                             b->out, sizeof b->raw),
                         -QN_ECORRUPT, "%s block read as %s", name,
                         qn_codec_name(s_ids[j]));
        }

        /* An unknown codec id. */
        cr_expect_eq(
            qn_codec_decompress(b->d, 7, b->z, b->zlen, b->out, sizeof b->raw),
            -QN_ECORRUPT);
        cr_expect_eq(qn_codec_decompress(b->d, QN_CODEC_COUNT, b->z, b->zlen,
                                         b->out, sizeof b->raw),
                     -QN_ECORRUPT);
        free(bad);
        s_block_free(b);
    }
}

/*
 * Every single-byte change to a block either decodes to the right size or is
 * refused; none reads or writes out of bounds (run under ASan to see). LZ4
 * has no checksum of its own, so a changed literal can decode: catching that
 * is the job of the block's CRC32 in ifile.c.
 */
Test(codec, damaged_bytes_never_crash)
{
    for (size_t i = 0; i < QN_ARRAY_LEN(s_ids); i++) {
        s_block *b = s_block_new(s_ids[i]);
        unsigned char *bad = malloc(b->zlen);
        int refused = 0;
        size_t step = b->zlen / 200 + 1;
        for (size_t at = 0; at < b->zlen; at += step) {
            static const unsigned char flips[] = {0x01, 0x80, 0xff};
            for (size_t f = 0; f < sizeof flips; f++) {
                memcpy(bad, b->z, b->zlen);
                bad[at] ^= flips[f];
                int rc = s_decode(b, bad, b->zlen, sizeof b->raw);
                cr_assert(rc == 0 || rc == -QN_ECORRUPT, "%s: rc %d",
                          qn_codec_name(b->id), rc);
                refused += rc != 0;
            }
        }
        cr_expect_gt(refused, 0, "%s refused no damaged block",
                     qn_codec_name(b->id));
        free(bad);
        s_block_free(b);
    }
}

Test(codec, raw_stream_shorter_than_its_size_is_corrupt)
{
    for (size_t i = 0; i < QN_ARRAY_LEN(s_ids); i++) {
        s_block *b = s_block_new(s_ids[i]);
        /* The out buffer is larger than the data: claim 100 more bytes. */
        cr_expect_eq(s_decode(b, b->z, b->zlen, sizeof b->raw + 1),
                     -QN_ECORRUPT, "%s", qn_codec_name(b->id));
        cr_expect_eq(s_decode(b, b->z, b->zlen, sizeof b->raw + 100),
                     -QN_ECORRUPT, "%s", qn_codec_name(b->id));
        s_block_free(b);
    }
    /* Stored blocks must be exactly their raw size. */
    s_block *b = s_block_new(QN_CODEC_ZLIB);
    unsigned char big[101];
    cr_expect_eq(
        qn_codec_decompress(b->d, QN_CODEC_NONE, b->raw, 100, big, 101),
        -QN_ECORRUPT);
    cr_expect_eq(
        qn_codec_decompress(b->d, QN_CODEC_NONE, b->raw, 100, big, 100), 0);
    cr_expect_arr_eq(big, b->raw, 100);
    s_block_free(b);
}

Test(codec, compress_into_too_small_a_buffer_fails)
{
    for (size_t i = 0; i < QN_ARRAY_LEN(s_ids); i++) {
        int id = s_ids[i];
        unsigned char src[4096], dst[64];
        s_fill_noise(src, sizeof src);
        qn_codec *c = qn_codec_new(id, 6);
        cr_expect_eq(qn_codec_compress(c, src, sizeof src, dst, sizeof dst),
                     -QN_EFULL, "%s", qn_codec_name(id));
        /* And the codec recovers for the next block. */
        unsigned char big[8192], out[4096];
        long m = qn_codec_compress(c, src, sizeof src, big, sizeof big);
        cr_assert_gt(m, 0);
        cr_assert_eq(
            qn_codec_decompress(c, id, big, (size_t)m, out, sizeof out), 0);
        cr_assert_arr_eq(out, src, sizeof src);
        qn_codec_destroy(&c);
    }
}

Test(codec, new_refuses_bad_ids_and_levels)
{
    cr_expect_null(qn_codec_new(QN_CODEC_COUNT, 1));
    cr_expect_null(qn_codec_new(-1, 1));
    cr_expect_null(qn_codec_new(QN_CODEC_ZLIB, 10));
    cr_expect_null(qn_codec_new(QN_CODEC_ZLIB, -1));
    cr_expect_null(qn_codec_new(QN_CODEC_LZ4, 10));
    cr_expect_null(qn_codec_new(QN_CODEC_ZSTD, 10));
    cr_expect_null(qn_codec_new(QN_CODEC_ZSTD, -1));
    qn_codec *c = NULL;
    qn_codec_destroy(&c); /* accepts NULL */
    cr_expect_null(c);
}

Test(codec, ids_in_block_headers_never_change)
{
    /* These numbers are on disk in every block: never renumber. */
    cr_expect_eq(QN_CODEC_NONE, 0);
    cr_expect_eq(QN_CODEC_ZLIB, 1);
    cr_expect_eq(QN_CODEC_LZ4, 2);
    cr_expect_eq(QN_CODEC_ZSTD, 3);
}

Test(codec, parse_accepts_every_codec)
{
    char why[128] = "untouched";
    cr_expect_eq(qn_codec_parse("zlib", why, sizeof why), QN_CODEC_ZLIB);
    cr_expect_eq(qn_codec_parse("none", why, sizeof why), QN_CODEC_NONE);
    cr_expect_eq(qn_codec_parse("lz4", why, sizeof why), QN_CODEC_LZ4);
    cr_expect_eq(qn_codec_parse("zstd", why, sizeof why), QN_CODEC_ZSTD);
    cr_expect_str_eq(why, "untouched");
}

Test(codec, parse_rejects_others_naming_the_supported_codecs)
{
    static const char *const bad[] = {"gzip", "ZLIB",  "",    "zlib ",
                                      "LZ4",  "lz4hc", "zst", "unknown"};
    for (size_t i = 0; i < QN_ARRAY_LEN(bad); i++) {
        char why[128] = "";
        cr_expect_eq(qn_codec_parse(bad[i], why, sizeof why), -1, "\"%s\"",
                     bad[i]);
        cr_expect(strstr(why, "zlib") && strstr(why, "lz4") &&
                      strstr(why, "zstd") && strstr(why, "none"),
                  "message does not name the codecs: %s", why);
        cr_expect(strstr(why, bad[i]), "message does not name \"%s\": %s",
                  bad[i], why);
    }
    /* A small message buffer is truncated, not overflowed. */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    cr_expect_eq(qn_codec_parse("gzip", tiny, sizeof tiny), -1);
    cr_expect_eq(tiny[sizeof tiny - 1], '\0');
}

Test(codec, names_its_ids)
{
    cr_expect_str_eq(qn_codec_name(QN_CODEC_NONE), "none");
    cr_expect_str_eq(qn_codec_name(QN_CODEC_ZLIB), "zlib");
    cr_expect_str_eq(qn_codec_name(QN_CODEC_LZ4), "lz4");
    cr_expect_str_eq(qn_codec_name(QN_CODEC_ZSTD), "zstd");
    cr_expect_str_eq(qn_codec_name(QN_CODEC_COUNT), "unknown");
    cr_expect_str_eq(qn_codec_name(42), "unknown");
    cr_expect_str_eq(qn_codec_name(-1), "unknown");
    /* Every name parses back to its id. */
    char why[128];
    for (int id = 0; id < QN_CODEC_COUNT; id++)
        cr_expect_eq(qn_codec_parse(qn_codec_name(id), why, sizeof why), id);
}
