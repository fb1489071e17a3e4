/*
 * test_sha256.c -- SHA-256 against the FIPS 180-4 / NIST example vectors,
 * and the incremental API against the one-shot one.
 */
#include "helpers.h"

#include "sha256.h"

TestSuite(sha256, .fini = qn_test_leak_check);

/* The hex digest of n bytes at data, through the one-shot API. */
static void s_hex_of(const void *data, size_t n, char hex[QN_SHA256_HEX])
{
    uint8_t d[QN_SHA256_SIZE];
    qn_sha256(data, n, d);
    qn_sha256_hex(d, hex);
}

Test(sha256, hashes_the_empty_string)
{
    char hex[QN_SHA256_HEX];
    s_hex_of("", 0, hex);
    cr_assert_str_eq(
        hex,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    s_hex_of(NULL, 0, hex);
    cr_assert_str_eq(
        hex,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(sha256, hashes_abc)
{
    char hex[QN_SHA256_HEX];
    s_hex_of("abc", 3, hex);
    cr_assert_str_eq(
        hex,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* 56 bytes: the padding does not fit in the first block, so the length
 * goes into a second one. */
Test(sha256, hashes_the_448_bit_message)
{
    static const char msg[] =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char hex[QN_SHA256_HEX];
    cr_assert_eq(strlen(msg), 56);
    s_hex_of(msg, strlen(msg), hex);
    cr_assert_str_eq(
        hex,
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* 112 bytes: two blocks of message, then a block of padding. */
Test(sha256, hashes_the_896_bit_message)
{
    static const char msg[] = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklm"
                              "ghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                              "mnopqrstnopqrstu";
    char hex[QN_SHA256_HEX];
    cr_assert_eq(strlen(msg), 112);
    s_hex_of(msg, strlen(msg), hex);
    cr_assert_str_eq(
        hex,
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

Test(sha256, hashes_a_million_a_in_odd_pieces)
{
    char piece[1000];
    memset(piece, 'a', sizeof piece);
    qn_sha256_ctx ctx;
    qn_sha256_init(&ctx);
    size_t left = 1000000, step = 1;
    while (left > 0) {
        /* Piece sizes 1, 4, 9, ... 997 in turn: rarely a block multiple. */
        size_t n = (step * step) % 997 + 1;
        if (n > left)
            n = left;
        qn_sha256_update(&ctx, piece, n);
        left -= n;
        step++;
    }
    uint8_t d[QN_SHA256_SIZE];
    char hex[QN_SHA256_HEX];
    qn_sha256_final(&ctx, d);
    qn_sha256_hex(d, hex);
    cr_assert_str_eq(
        hex,
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Deterministic noise. */
static void s_fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 32);
    }
}

/* Every length from 0 to 200 (around one, two and three blocks), split at
 * every offset, and also split in three around the block edge. */
Test(sha256, incremental_equals_one_shot_at_every_split)
{
    uint8_t buf[200];
    s_fill(buf, sizeof buf, 0x5eed);
    for (size_t len = 0; len <= sizeof buf; len++) {
        uint8_t want[QN_SHA256_SIZE];
        qn_sha256(buf, len, want);
        for (size_t cut = 0; cut <= len; cut++) {
            qn_sha256_ctx ctx;
            uint8_t got[QN_SHA256_SIZE];
            qn_sha256_init(&ctx);
            qn_sha256_update(&ctx, buf, cut);
            qn_sha256_update(&ctx, buf + cut, len - cut);
            qn_sha256_final(&ctx, got);
            cr_assert_arr_eq(got, want, sizeof want, "len %zu cut %zu", len,
                             cut);

            size_t cut2 = cut + (len - cut) / 2;
            qn_sha256_init(&ctx);
            qn_sha256_update(&ctx, buf, cut);
            qn_sha256_update(&ctx, buf + cut, cut2 - cut);
            qn_sha256_update(&ctx, NULL, 0);
            qn_sha256_update(&ctx, buf + cut2, len - cut2);
            qn_sha256_final(&ctx, got);
            cr_assert_arr_eq(got, want, sizeof want, "len %zu cuts %zu %zu",
                             len, cut, cut2);
        }
    }
}

/* Byte at a time is the extreme case of the above, over a larger input. */
Test(sha256, byte_at_a_time_equals_one_shot)
{
    uint8_t buf[4099];
    s_fill(buf, sizeof buf, 42);
    uint8_t want[QN_SHA256_SIZE], got[QN_SHA256_SIZE];
    qn_sha256(buf, sizeof buf, want);
    qn_sha256_ctx ctx;
    qn_sha256_init(&ctx);
    for (size_t i = 0; i < sizeof buf; i++)
        qn_sha256_update(&ctx, buf + i, 1);
    qn_sha256_final(&ctx, got);
    cr_assert_arr_eq(got, want, sizeof want);
}

/* sha256.h promises that final leaves nothing of the input behind. */
Test(sha256, final_wipes_the_context)
{
    static const uint8_t zero[sizeof(qn_sha256_ctx)];
    qn_sha256_ctx ctx;
    uint8_t d[QN_SHA256_SIZE];
    qn_sha256_init(&ctx);
    qn_sha256_update(&ctx, "secret plugin bytes", 19);
    qn_sha256_final(&ctx, d);
    cr_assert_arr_eq(&ctx, zero, sizeof zero);
}

Test(sha256, hex_is_lowercase_and_terminated)
{
    uint8_t d[QN_SHA256_SIZE];
    for (int i = 0; i < QN_SHA256_SIZE; i++)
        d[i] = (uint8_t)(i * 17 + 0x0f);
    char hex[QN_SHA256_HEX];
    memset(hex, 'X', sizeof hex);
    qn_sha256_hex(d, hex);
    cr_assert_eq(strlen(hex), 64);
    cr_assert_eq(strncmp(hex, "0f20314253", 10), 0, "got %s", hex);
    for (int i = 0; i < 64; i++)
        cr_assert(strchr("0123456789abcdef", hex[i]) != NULL);
}
