/*
 * test_codec.c -- block compression: round trips, corrupt input, names.
 */
#include "helpers.h"

#include "codec.h"
#include "util.h"

TestSuite(codec, .fini = qn_test_leak_check);

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
    cr_assert_geq(m, 0, "compress failed: %ld", m);
    cr_assert_leq((size_t)m, cap);

    qn_codec *d = qn_codec_new(QN_CODEC_ZLIB, 1);
    unsigned char *out = malloc(n ? n : 1);
    cr_assert_eq(qn_codec_decompress(d, qn_codec_id(c), dst, (size_t)m, out, n),
                 0);
    cr_assert_arr_eq(out, src, n);
    free(out);
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

Test(codec, level_0_stores_blocks_as_they_are)
{
    size_t n = 5000;
    unsigned char *text = malloc(n);
    s_fill_text(text, n);
    long m = s_round_trip(QN_CODEC_ZLIB, 0, text, n, QN_CODEC_NONE);
    cr_expect_eq(m, (long)n, "level 0 changed the size");
    m = s_round_trip(QN_CODEC_NONE, 0, text, n, QN_CODEC_NONE);
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

/* The codec keeps its zlib streams between blocks: many blocks in a row
 * through one compressor and one decompressor. */
Test(codec, one_codec_handles_many_blocks)
{
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 6);
    qn_codec *d = qn_codec_new(QN_CODEC_ZLIB, 6);
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
        cr_assert_eq(
            qn_codec_decompress(d, QN_CODEC_ZLIB, dst, (size_t)m, out, n), 0,
            "block %d", b);
        cr_assert_arr_eq(out, src, n, "block %d", b);
    }
    qn_codec_destroy(&c);
    qn_codec_destroy(&d);
}

/* A compressed block of text, and a decompressor, for the tests below. */
typedef struct {
    unsigned char raw[20000];
    unsigned char z[25000];
    unsigned char out[20000];
    size_t zlen;
    qn_codec *d;
} s_block;

static s_block *s_block_new(void)
{
    s_block *b = calloc(1, sizeof *b);
    s_fill_text(b->raw, sizeof b->raw);
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 6);
    long m = qn_codec_compress(c, b->raw, sizeof b->raw, b->z, sizeof b->z);
    cr_assert_gt(m, 0);
    b->zlen = (size_t)m;
    qn_codec_destroy(&c);
    b->d = qn_codec_new(QN_CODEC_ZLIB, 1);
    /* Sanity: the untouched block decompresses. */
    cr_assert_eq(qn_codec_decompress(b->d, QN_CODEC_ZLIB, b->z, b->zlen, b->out,
                                     sizeof b->raw),
                 0);
    return b;
}

static void s_block_free(s_block *b)
{
    qn_codec_destroy(&b->d);
    free(b);
}

static int s_inflate(s_block *b, const void *z, size_t zlen, size_t raw)
{
    return qn_codec_decompress(b->d, QN_CODEC_ZLIB, z, zlen, b->out, raw);
}

Test(codec, truncated_stream_is_corrupt)
{
    s_block *b = s_block_new();
    size_t cuts[] = {0, 1, 2, b->zlen / 2, b->zlen - 2, b->zlen - 1};
    for (size_t i = 0; i < QN_ARRAY_LEN(cuts); i++)
        cr_expect_eq(s_inflate(b, b->z, cuts[i], sizeof b->raw), -QN_ECORRUPT,
                     "stream cut to %zu of %zu bytes accepted", cuts[i],
                     b->zlen);
    /* The codec still works after the failures. */
    cr_expect_eq(s_inflate(b, b->z, b->zlen, sizeof b->raw), 0);
    cr_expect_arr_eq(b->out, b->raw, sizeof b->raw);
    s_block_free(b);
}

Test(codec, corrupted_stream_is_corrupt)
{
    s_block *b = s_block_new();
    unsigned char *bad = malloc(b->zlen);

    /* Block type 3 is reserved in deflate: always a data error. */
    memcpy(bad, b->z, b->zlen);
    bad[0] |= 0x06;
    cr_expect_eq(s_inflate(b, bad, b->zlen, sizeof b->raw), -QN_ECORRUPT);

    /* Random garbage of the same length. */
    s_fill_noise(bad, b->zlen);
    bad[0] = 0xff;
    cr_expect_eq(s_inflate(b, bad, b->zlen, sizeof b->raw), -QN_ECORRUPT);

    /* Trailing bytes after the end of the stream. */
    unsigned char *longer = malloc(b->zlen + 3);
    memcpy(longer, b->z, b->zlen);
    memcpy(longer + b->zlen, "xyz", 3);
    cr_expect_eq(s_inflate(b, longer, b->zlen + 3, sizeof b->raw), -QN_ECORRUPT,
                 "trailing garbage accepted");
    free(longer);

    /* The stream is fine but the header claims another size. */
    cr_expect_eq(s_inflate(b, b->z, b->zlen, sizeof b->raw - 1), -QN_ECORRUPT,
                 "stream longer than its raw size accepted");
    cr_expect_eq(s_inflate(b, b->z, b->zlen, sizeof b->raw / 2), -QN_ECORRUPT);

    /* An unknown codec id. */
    cr_expect_eq(
        qn_codec_decompress(b->d, 7, b->z, b->zlen, b->out, sizeof b->raw),
        -QN_ECORRUPT);
    free(bad);
    s_block_free(b);
}

Test(codec, raw_stream_shorter_than_its_size_is_corrupt)
{
    s_block *b = s_block_new();
    /* The out buffer is larger than the data: claim 100 more bytes. */
    unsigned char *big = malloc(sizeof b->raw + 100);
    cr_expect_eq(qn_codec_decompress(b->d, QN_CODEC_ZLIB, b->z, b->zlen, big,
                                     sizeof b->raw + 100),
                 -QN_ECORRUPT);
    /* Stored blocks must be exactly their raw size. */
    cr_expect_eq(
        qn_codec_decompress(b->d, QN_CODEC_NONE, b->raw, 100, big, 101),
        -QN_ECORRUPT);
    cr_expect_eq(
        qn_codec_decompress(b->d, QN_CODEC_NONE, b->raw, 100, big, 100), 0);
    cr_expect_arr_eq(big, b->raw, 100);
    free(big);
    s_block_free(b);
}

Test(codec, compress_into_too_small_a_buffer_fails)
{
    unsigned char src[4096], dst[64];
    s_fill_noise(src, sizeof src);
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 6);
    cr_expect_lt(qn_codec_compress(c, src, sizeof src, dst, sizeof dst), 0);
    /* And the codec recovers for the next block. */
    unsigned char big[8192], out[4096];
    long m = qn_codec_compress(c, src, sizeof src, big, sizeof big);
    cr_assert_gt(m, 0);
    cr_assert_eq(
        qn_codec_decompress(c, QN_CODEC_ZLIB, big, (size_t)m, out, sizeof out),
        0);
    cr_assert_arr_eq(out, src, sizeof src);
    qn_codec_destroy(&c);
}

Test(codec, new_refuses_bad_ids_and_levels)
{
    cr_expect_null(qn_codec_new(2, 1));
    cr_expect_null(qn_codec_new(-1, 1));
    cr_expect_null(qn_codec_new(QN_CODEC_ZLIB, 10));
    cr_expect_null(qn_codec_new(QN_CODEC_ZLIB, -1));
    qn_codec *c = NULL;
    qn_codec_destroy(&c); /* accepts NULL */
    cr_expect_null(c);
}

Test(codec, parse_accepts_zlib_and_none)
{
    char why[128] = "untouched";
    cr_expect_eq(qn_codec_parse("zlib", why, sizeof why), QN_CODEC_ZLIB);
    cr_expect_eq(qn_codec_parse("none", why, sizeof why), QN_CODEC_NONE);
    cr_expect_str_eq(why, "untouched");
}

Test(codec, parse_rejects_others_naming_the_supported_codecs)
{
    static const char *const bad[] = {"lz4", "ZLIB", "", "zlib ", "gzip"};
    for (size_t i = 0; i < QN_ARRAY_LEN(bad); i++) {
        char why[128] = "";
        cr_expect_eq(qn_codec_parse(bad[i], why, sizeof why), -1, "\"%s\"",
                     bad[i]);
        cr_expect(strstr(why, "zlib") && strstr(why, "none"),
                  "message does not name the codecs: %s", why);
        cr_expect(strstr(why, bad[i]), "message does not name \"%s\": %s",
                  bad[i], why);
    }
    /* A small message buffer is truncated, not overflowed. */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    cr_expect_eq(qn_codec_parse("lz4", tiny, sizeof tiny), -1);
    cr_expect_eq(tiny[sizeof tiny - 1], '\0');
}

Test(codec, names_its_ids)
{
    cr_expect_str_eq(qn_codec_name(QN_CODEC_NONE), "none");
    cr_expect_str_eq(qn_codec_name(QN_CODEC_ZLIB), "zlib");
    cr_expect_str_eq(qn_codec_name(42), "unknown");
}
