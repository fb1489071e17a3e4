/*
 * test_scrub.c -- the worker's background re-reading of its shards, on a
 * real store in a private temp dir, with a fake clock: a flipped byte is
 * found and the copy dropped as damaged, intact shards pass, the rate
 * paces the round, a shard asked for is read at once, a copy replaced
 * while it was read is not blamed, and a rate of 0 reads nothing.
 */
#include "helpers.h"

#include "../worker/scrub.h"
#include "../worker/store.h"

#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#include <zlib.h>

#define MB (1024 * 1024)

static char *dir;
static qn_store *st;
static qn_scrub *sc;

static void setup(void)
{
    dir = qn_test_tmpdir();
    char err[512] = "";
    st = qn_store_open(dir, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
}

static void teardown(void)
{
    qn_scrub_destroy(&sc);
    qn_store_destroy(&st);
    if (dir)
        qn_rmtree(dir);
    free(dir);
    dir = NULL;
    qn_test_leak_check();
}

TestSuite(scrub, .init = setup, .fini = teardown);

/* Shard index of dataset, len bytes of a pattern seeded by index. */
static void put_shard(const char *dataset, uint32_t index, size_t len)
{
    char *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)('a' + (i * 7 + index) % 26);
    uint32_t crc =
        (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)data, (uInt)len);
    char err[512] = "", token[32];
    snprintf(token, sizeof token, "t-%s-%u", dataset, index);
    cr_assert_eq(qn_store_upload(st, token, dataset, index, 0, data, len, 1,
                                 len, crc, 1000, err, sizeof err),
                 0, "%s", err);
    free(data);
}

/* Flip one byte of a shard's file at offset. */
static void flip(const char *dataset, uint32_t index, off_t offset)
{
    qn_buf p = {0};
    qn_store_path(st, dataset, index, &p);
    int fd = open(p.data, O_RDWR);
    cr_assert_geq(fd, 0);
    char c;
    cr_assert_eq(pread(fd, &c, 1, offset), 1);
    c ^= 0x20;
    cr_assert_eq(pwrite(fd, &c, 1, offset), 1);
    close(fd);
    qn_buf_release(&p);
}

/* Step at each due time until a damaged copy is found or steps run out;
 * returns the steps taken (-1: none found). *now advances. */
static int run_until_found(int64_t *now, int steps, char *why, size_t cap)
{
    for (int i = 0; i < steps; i++) {
        int64_t due = qn_scrub_due(sc);
        if (due == INT64_MAX)
            return -1;
        if (due > *now)
            *now = due;
        if (qn_scrub_step(sc, *now, why, cap))
            return i + 1;
    }
    return -1;
}

Test(scrub, a_flipped_byte_is_found_and_the_copy_dropped_as_damaged)
{
    put_shard("d", 0, 2 * MB + 100);
    put_shard("d", 1, 3 * MB);
    qn_shard *a, *r, *dmg;
    size_t na, nr, nd;
    qn_store_take_changes(st, &a, &na, &r, &nr);
    free(a);
    free(r);
    flip("d", 1, 2 * MB + 17);
    sc = qn_scrub_new(st, 8 * MB);
    int64_t now = 0;
    char why[200] = "";
    cr_assert_gt(run_until_found(&now, 50, why, sizeof why), 0,
                 "the flipped byte was not found");
    cr_assert(strstr(why, "CRC"), "why: %s", why);
    cr_assert_null(qn_store_find(st, "d", 1), "the damaged copy is kept");
    cr_assert_not_null(qn_store_find(st, "d", 0), "the intact one went");
    qn_store_take_damaged(st, &dmg, &nd);
    cr_assert_eq(nd, 1);
    cr_assert_str_eq(dmg[0].dataset, "d");
    cr_assert_eq(dmg[0].index, 1);
    free(dmg);
    qn_store_take_changes(st, &a, &na, &r, &nr);
    cr_assert_eq(nr, 1, "a damaged copy is reported removed too");
    free(a);
    free(r);
    cr_assert_eq(qn_scrub_damaged(sc), 1);
    /* The next round finds nothing more. */
    cr_assert_eq(run_until_found(&now, 20, why, sizeof why), -1);
}

Test(scrub, intact_shards_pass_and_the_rate_paces_the_round)
{
    put_shard("d", 0, 2 * MB);
    put_shard("e", 3, 2 * MB);
    sc = qn_scrub_new(st, 1 * MB);
    char why[200];
    cr_assert_eq(qn_scrub_due(sc), 0);
    cr_assert_eq(qn_scrub_step(sc, 0, why, sizeof why), 0);
    cr_assert_eq(qn_scrub_bytes(sc), (uint64_t)QN_SCRUB_CHUNK);
    /* 1 MiB read at 1 MiB/s: the next chunk is due a second later. */
    cr_assert_eq(qn_scrub_due(sc), 1000);
    cr_assert_eq(qn_scrub_step(sc, 999, why, sizeof why), 0);
    cr_assert_eq(qn_scrub_bytes(sc), (uint64_t)QN_SCRUB_CHUNK,
                 "read before it was due");
    int64_t now = 1000;
    cr_assert_eq(run_until_found(&now, 3, why, sizeof why), -1);
    cr_assert_eq(qn_scrub_bytes(sc), 4 * (uint64_t)MB, "one round is 4 MiB");
    cr_assert_eq(now, 3000, "4 MiB at 1 MiB/s: the last chunk at 3 s");
    cr_assert_eq(qn_scrub_damaged(sc), 0);
    cr_assert_not_null(qn_store_find(st, "d", 0));
    cr_assert_not_null(qn_store_find(st, "e", 3));
}

Test(scrub, a_shard_asked_for_is_read_at_once_ahead_of_the_round)
{
    put_shard("d", 0, 2 * MB);
    put_shard("d", 1, 2 * MB);
    /* A crawl: a chunk every 1024 s. */
    sc = qn_scrub_new(st, 1024);
    char why[200];
    cr_assert_eq(qn_scrub_step(sc, 0, why, sizeof why), 0); /* starts d/0 */
    flip("d", 1, 5);
    qn_scrub_soon(sc, "d", 1, 10);
    cr_assert_eq(qn_scrub_due(sc), 10);
    int64_t now = 10;
    int steps = run_until_found(&now, 10, why, sizeof why);
    cr_assert_eq(steps, 2, "d/1 read in two chunks, at once");
    cr_assert_eq(now, 10, "no waiting for the rate");
    cr_assert_null(qn_store_find(st, "d", 1));
}

Test(scrub, a_copy_replaced_while_it_is_read_is_not_blamed)
{
    put_shard("d", 0, 2 * MB);
    sc = qn_scrub_new(st, 1 * MB);
    char why[200];
    /* The copy being read goes bad, then is dropped and put again,
     * different, between two chunks: the new copy is not blamed. */
    flip("d", 0, MB + 10);
    cr_assert_eq(qn_scrub_step(sc, 0, why, sizeof why), 0);
    cr_assert_eq(qn_store_drop_shard(st, "d", 0), 1);
    put_shard("d", 0, MB + 3);
    int64_t now = 0;
    cr_assert_eq(run_until_found(&now, 6, why, sizeof why), -1);
    cr_assert_not_null(qn_store_find(st, "d", 0));
    cr_assert_eq(qn_scrub_damaged(sc), 0);
}

Test(scrub, a_rate_of_zero_reads_nothing)
{
    put_shard("d", 0, MB);
    flip("d", 0, 1);
    sc = qn_scrub_new(st, 0);
    char why[200];
    cr_assert_eq(qn_scrub_due(sc), INT64_MAX);
    cr_assert_eq(qn_scrub_step(sc, 1000000, why, sizeof why), 0);
    cr_assert_eq(qn_scrub_bytes(sc), 0);
    /* Asked for, it is still read: a map found it bad. */
    qn_scrub_soon(sc, "d", 0, 5);
    int64_t now = 5;
    cr_assert_gt(run_until_found(&now, 3, why, sizeof why), 0);
}
