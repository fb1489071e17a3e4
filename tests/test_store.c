/*
 * test_store.c -- a worker's shard store: uploads, checks at start-up,
 * sealing and dropping, in a private temp data dir per test.
 */
#include "helpers.h"

#include "../worker/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>

/* The test's data dir and store, removed by the fixture. */
static char *dir;
static qn_store *st;

static void setup(void)
{
    dir = qn_test_tmpdir();
}

static void teardown(void)
{
    qn_store_destroy(&st);
    if (dir)
        qn_rmtree(dir);
    free(dir);
    dir = NULL;
    qn_test_leak_check();
}

TestSuite(store, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------- */

static qn_store *open_store(void)
{
    char err[512] = "";
    cr_assert_null(st, "close the store first");
    st = qn_store_open(dir, err, sizeof err);
    cr_assert_not_null(st, "open %s: %s", dir, err);
    return st;
}

static void reopen_store(void)
{
    qn_store_destroy(&st);
    open_store();
}

static uint32_t crc_of(const void *p, size_t n)
{
    return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

/* Upload len bytes as shard index of dataset, in pieces of at most piece
 * bytes; must succeed. */
static void upload(const char *token, const char *dataset, uint32_t index,
                   const char *data, size_t len, size_t piece)
{
    char err[512] = "";
    uint32_t crc = crc_of(data, len);
    size_t off = 0;
    do {
        size_t n = len - off < piece ? len - off : piece;
        int last = off + n == len;
        int rc = qn_store_upload(st, token, dataset, index, off, data + off, n,
                                 last, len, crc, 1000, err, sizeof err);
        cr_assert_eq(rc, 0, "piece at %zu: %s", off, err);
        off += n;
    } while (off < len);
}

/* DIR/sub/name (sub may be NULL) into a fresh string; free it. */
static char *path_of(const char *sub, const char *name)
{
    char *p = malloc(4096);
    if (sub)
        snprintf(p, 4096, "%s/%s/%s", dir, sub, name);
    else
        snprintf(p, 4096, "%s/%s", dir, name);
    return p;
}

static int exists(const char *sub, const char *name)
{
    char *p = path_of(sub, name);
    struct stat sb;
    int ok = stat(p, &sb) == 0;
    free(p);
    return ok;
}

/* Entries in DIR/sub other than . and .. (-1 if it does not exist). */
static int entries(const char *sub)
{
    char *p = path_of(NULL, sub);
    DIR *d = opendir(p);
    free(p);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* The whole of DIR/sub/name; *len its size. Free the result. */
static char *slurp(const char *sub, const char *name, size_t *len)
{
    char *p = path_of(sub, name);
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f, "cannot open %s", p);
    free(p);
    char *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* Drain the store's changes: how many were added and removed, and the
 * lists if asked for (free them). */
static void changes(size_t *nadded, size_t *nremoved, qn_shard **added,
                    qn_shard **removed)
{
    qn_shard *a, *r;
    size_t na, nr;
    qn_store_take_changes(st, &a, &na, &r, &nr);
    if (nadded)
        *nadded = na;
    if (nremoved)
        *nremoved = nr;
    if (added)
        *added = a;
    else
        free(a);
    if (removed)
        *removed = r;
    else
        free(r);
}

static const char DATA0[] = "the first shard, uploaded in small pieces\n";
static const char DATA1[] = "a second shard of the same dataset\n";

/* ---- uploads ------------------------------------------------------------- */

Test(store, upload_in_pieces_is_installed_listed_and_announced)
{
    open_store();
    size_t n = strlen(DATA0);
    upload("tok-1", "logs", 0, DATA0, n, 7);
    cr_assert_eq(qn_store_count(st), 1);
    const qn_shard *sh = qn_store_find(st, "logs", 0);
    cr_assert_not_null(sh);
    cr_assert_str_eq(sh->dataset, "logs");
    cr_assert_eq(sh->index, 0);
    cr_assert_eq(sh->size, n);
    cr_assert_eq(sh->crc, crc_of(DATA0, n));
    cr_assert_not(sh->sealed);
    cr_assert_eq(qn_store_at(st, 0), sh);
    cr_assert_null(qn_store_at(st, 1));
    cr_assert_null(qn_store_find(st, "logs", 1));
    cr_assert_null(qn_store_find(st, "other", 0));

    qn_shard *added, *removed;
    size_t na, nr;
    changes(&na, &nr, &added, &removed);
    cr_assert_eq(na, 1);
    cr_assert_eq(nr, 0);
    cr_assert_str_eq(added[0].dataset, "logs");
    cr_assert_eq(added[0].index, 0);
    cr_assert_eq(added[0].size, n);
    cr_assert_eq(added[0].crc, crc_of(DATA0, n));
    free(added);
    free(removed);
    changes(&na, &nr, NULL, NULL);
    cr_assert_eq(na + nr, 0, "changes are announced once");

    size_t len;
    char *got = slurp("logs", "part-00000", &len);
    cr_assert_eq(len, n);
    cr_assert_arr_eq(got, DATA0, n);
    free(got);
    cr_assert(exists("logs", "part-00000.meta"));
    cr_assert_eq(entries("logs"), 2);
    cr_assert_eq(entries(".incoming"), 0, "the upload's temp file is left");

    qn_buf p = {0};
    qn_store_path(st, "logs", 0, &p);
    char *want = path_of("logs", "part-00000");
    char *real = realpath(want, NULL);
    cr_assert_str_eq(p.data, real);
    free(real);
    free(want);
    qn_buf_release(&p);
}

Test(store, two_uploads_at_once_do_not_mix)
{
    open_store();
    size_t n0 = strlen(DATA0), n1 = strlen(DATA1);
    char err[512];
    uint32_t c0 = crc_of(DATA0, n0), c1 = crc_of(DATA1, n1);
    cr_assert_eq(qn_store_upload(st, "a", "d", 0, 0, DATA0, 10, 0, n0, c0, 1,
                                 err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(qn_store_upload(st, "b", "d", 1, 0, DATA1, 4, 0, n1, c1, 1,
                                 err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(qn_store_upload(st, "a", "d", 0, 10, DATA0 + 10, n0 - 10, 1,
                                 n0, c0, 2, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(qn_store_upload(st, "b", "d", 1, 4, DATA1 + 4, n1 - 4, 1, n1,
                                 c1, 2, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(qn_store_count(st), 2);
    cr_assert_eq(qn_store_find(st, "d", 0)->crc, c0);
    cr_assert_eq(qn_store_find(st, "d", 1)->crc, c1);
    cr_assert_eq(entries(".incoming"), 0);
}

/* The last piece of an upload says size and crc; nothing is installed. */
static void expect_refused_last(uint64_t size, uint32_t crc)
{
    open_store();
    size_t n = strlen(DATA0);
    char err[512] = "";
    cr_assert_eq(qn_store_upload(st, "t", "logs", 0, 0, DATA0, 10, 0, size, crc,
                                 1, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(entries(".incoming"), 1, "the upload has a temp file");
    int rc = qn_store_upload(st, "t", "logs", 0, 10, DATA0 + 10, n - 10, 1,
                             size, crc, 2, err, sizeof err);
    cr_assert_eq(rc, -1);
    cr_assert_neq(err[0], '\0', "no message");
    cr_assert_eq(qn_store_count(st), 0);
    cr_assert_null(qn_store_find(st, "logs", 0));
    cr_assert_not(exists("logs", "part-00000"));
    cr_assert_not(exists("logs", "part-00000.meta"));
    cr_assert_leq(entries("logs"), 0);
    cr_assert_eq(entries(".incoming"), 0, "the refused upload is left");
    size_t na, nr;
    changes(&na, &nr, NULL, NULL);
    cr_assert_eq(na + nr, 0);
    /* It is over: another piece of it is unknown. */
    cr_assert_eq(qn_store_upload(st, "t", "logs", 0, n, "x", 1, 1, n + 1, 0, 3,
                                 err, sizeof err),
                 -1);
}

Test(store, upload_with_wrong_crc_is_refused_and_leaves_nothing)
{
    size_t n = strlen(DATA0);
    expect_refused_last(n, crc_of(DATA0, n) ^ 1);
}

Test(store, upload_with_wrong_size_is_refused_and_leaves_nothing)
{
    size_t n = strlen(DATA0);
    expect_refused_last(n + 1, crc_of(DATA0, n));
}

Test(store, piece_at_the_wrong_offset_is_refused)
{
    open_store();
    size_t n = strlen(DATA0);
    uint32_t crc = crc_of(DATA0, n);
    char err[512] = "";
    cr_assert_eq(qn_store_upload(st, "t", "d", 0, 0, DATA0, 8, 0, n, crc, 1,
                                 err, sizeof err),
                 0, "%s", err);
    err[0] = '\0';
    cr_assert_eq(qn_store_upload(st, "t", "d", 0, 5, DATA0 + 5, 8, 0, n, crc, 2,
                                 err, sizeof err),
                 -1, "a piece overlapping the last one was taken");
    cr_assert_neq(err[0], '\0');
    cr_assert_eq(entries(".incoming"), 0);
    /* The upload was abandoned: the right offset is now unknown too. */
    cr_assert_eq(qn_store_upload(st, "t", "d", 0, 8, DATA0 + 8, n - 8, 1, n,
                                 crc, 3, err, sizeof err),
                 -1);
    /* An upload nobody started cannot begin past 0. */
    cr_assert_eq(qn_store_upload(st, "u", "d", 0, 8, DATA0 + 8, n - 8, 1, n,
                                 crc, 3, err, sizeof err),
                 -1);
    /* A gap is refused as well. */
    cr_assert_eq(qn_store_upload(st, "v", "d", 0, 0, DATA0, 8, 0, n, crc, 4,
                                 err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(qn_store_upload(st, "v", "d", 0, 9, DATA0 + 9, n - 9, 1, n,
                                 crc, 5, err, sizeof err),
                 -1);
    cr_assert_eq(qn_store_count(st), 0);
    cr_assert_eq(entries(".incoming"), 0);
    cr_assert_not(exists("d", "part-00000"));
}

Test(store, install_checks_crc_and_removes_the_temp_file)
{
    open_store();
    size_t n = strlen(DATA1);
    qn_buf tmp = {0};
    qn_store_temp_path(st, "copy", &tmp);
    FILE *f = fopen(tmp.data, "wb");
    cr_assert_not_null(f, "%s", tmp.data);
    fwrite(DATA1, 1, n, f);
    fclose(f);
    qn_shard sh = {.index = 4, .size = n, .crc = crc_of(DATA1, n) ^ 0x100};
    snprintf(sh.dataset, sizeof sh.dataset, "d");
    char err[512] = "";
    cr_assert_eq(qn_store_install(st, tmp.data, &sh, 1, err, sizeof err), -1);
    cr_assert_eq(access(tmp.data, F_OK), -1, "temp file left");
    cr_assert_null(qn_store_find(st, "d", 4));
    cr_assert_not(exists("d", "part-00004"));

    f = fopen(tmp.data, "wb");
    fwrite(DATA1, 1, n, f);
    fclose(f);
    sh.crc = crc_of(DATA1, n);
    cr_assert_eq(qn_store_install(st, tmp.data, &sh, 1, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(access(tmp.data, F_OK), -1);
    cr_assert_not_null(qn_store_find(st, "d", 4));
    cr_assert(exists("d", "part-00004"));
    qn_buf_release(&tmp);
}

/* ---- start-up checks ----------------------------------------------------- */

Test(store, reopening_finds_and_announces_the_shards_again)
{
    open_store();
    upload("a", "logs", 0, DATA0, strlen(DATA0), 16);
    upload("b", "logs", 1, DATA1, strlen(DATA1), 100);
    reopen_store();
    cr_assert_eq(qn_store_count(st), 2);
    const qn_shard *sh = qn_store_find(st, "logs", 1);
    cr_assert_not_null(sh);
    cr_assert_eq(sh->size, strlen(DATA1));
    cr_assert_eq(sh->crc, crc_of(DATA1, strlen(DATA1)));
    cr_assert_not(sh->sealed);
    size_t na, nr;
    changes(&na, &nr, NULL, NULL);
    cr_assert_eq(na, 2, "a restarted worker announces what it holds");
    cr_assert_eq(nr, 0);
}

Test(store, shard_changed_on_disk_is_deleted_at_open)
{
    open_store();
    upload("a", "logs", 0, DATA0, strlen(DATA0), 16);
    upload("b", "logs", 1, DATA1, strlen(DATA1), 16);
    qn_store_destroy(&st);
    /* Flip one byte of shard 0 (same size, another CRC). */
    char *p = path_of("logs", "part-00000");
    int fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0, "%s", p);
    char c;
    cr_assert_eq(pread(fd, &c, 1, 3), 1);
    c ^= 0x20;
    cr_assert_eq(pwrite(fd, &c, 1, 3), 1);
    close(fd);
    free(p);

    open_store();
    cr_assert_eq(qn_store_count(st), 1);
    cr_assert_null(qn_store_find(st, "logs", 0));
    cr_assert_not_null(qn_store_find(st, "logs", 1));
    cr_assert_not(exists("logs", "part-00000"));
    cr_assert_not(exists("logs", "part-00000.meta"));
    qn_shard *added;
    size_t na, nr;
    changes(&na, &nr, &added, NULL);
    cr_assert_eq(na, 1);
    cr_assert_eq(added[0].index, 1, "the bad shard was announced");
    free(added);
}

Test(store, unfinished_upload_is_cleared_at_open)
{
    open_store();
    char err[512];
    cr_assert_eq(qn_store_upload(st, "t", "d", 0, 0, DATA0, 5, 0, 50, 0, 1, err,
                                 sizeof err),
                 0, "%s", err);
    /* A crash leaves its temp file behind: copy it aside as it was. */
    qn_buf tmp = {0};
    qn_store_temp_path(st, "left", &tmp);
    FILE *f = fopen(tmp.data, "wb");
    fwrite(DATA0, 1, 5, f);
    fclose(f);
    qn_buf_release(&tmp);
    qn_store_destroy(&st);
    open_store();
    cr_assert_eq(entries(".incoming"), 0);
    cr_assert_eq(qn_store_count(st), 0);
}

/* ---- seal and drop ------------------------------------------------------- */

Test(store, seal_marks_every_shard_of_the_dataset_and_survives_reopening)
{
    open_store();
    upload("a", "d", 0, DATA0, strlen(DATA0), 64);
    upload("b", "d", 1, DATA1, strlen(DATA1), 64);
    upload("c", "e", 0, DATA1, strlen(DATA1), 64);
    changes(NULL, NULL, NULL, NULL);
    size_t na, nr;
    qn_shard *added;
    cr_assert_eq(qn_store_seal(st, "d", 2), 2);
    for (uint32_t i = 0; i < 2; i++) {
        const qn_shard *sh = qn_store_find(st, "d", i);
        cr_assert(sh->sealed, "d/%u not sealed", i);
        cr_assert_eq(sh->nshards, 2);
    }
    cr_assert_not(qn_store_find(st, "e", 0)->sealed);
    changes(&na, &nr, &added, NULL);
    cr_assert_eq(na, 2, "a seal is announced as a change");
    cr_assert_eq(nr, 0);
    for (size_t i = 0; i < na; i++) {
        cr_assert_str_eq(added[i].dataset, "d");
        cr_assert(added[i].sealed);
        cr_assert_eq(added[i].nshards, 2);
    }
    free(added);
    /* Sealing again the same way changes nothing. */
    cr_assert_eq(qn_store_seal(st, "d", 2), 0);
    cr_assert_eq(qn_store_seal(st, "nope", 2), 0);
    changes(&na, &nr, NULL, NULL);
    cr_assert_eq(na + nr, 0);

    reopen_store();
    cr_assert_eq(qn_store_count(st), 3);
    for (uint32_t i = 0; i < 2; i++) {
        const qn_shard *sh = qn_store_find(st, "d", i);
        cr_assert_not_null(sh);
        cr_assert(sh->sealed, "d/%u forgot its seal", i);
        cr_assert_eq(sh->nshards, 2);
    }
    cr_assert_not(qn_store_find(st, "e", 0)->sealed);
}

Test(store, drop_removes_the_files_and_reports_them_removed)
{
    open_store();
    upload("a", "d", 0, DATA0, strlen(DATA0), 64);
    upload("b", "d", 1, DATA1, strlen(DATA1), 64);
    upload("c", "e", 0, DATA1, strlen(DATA1), 64);
    changes(NULL, NULL, NULL, NULL);
    cr_assert_eq(qn_store_drop(st, "d"), 2);
    cr_assert_eq(qn_store_count(st), 1);
    cr_assert_null(qn_store_find(st, "d", 0));
    cr_assert_null(qn_store_find(st, "d", 1));
    cr_assert_not_null(qn_store_find(st, "e", 0));
    cr_assert_eq(entries("d"), -1, "the dataset's folder is left");
    cr_assert(exists("e", "part-00000"));
    qn_shard *removed;
    size_t na, nr;
    changes(&na, &nr, NULL, &removed);
    cr_assert_eq(na, 0);
    cr_assert_eq(nr, 2);
    int seen[2] = {0, 0};
    for (size_t i = 0; i < nr; i++) {
        cr_assert_str_eq(removed[i].dataset, "d");
        cr_assert_lt(removed[i].index, 2);
        seen[removed[i].index]++;
    }
    cr_assert(seen[0] == 1 && seen[1] == 1);
    free(removed);
    cr_assert_eq(qn_store_drop(st, "d"), 0);
    reopen_store();
    cr_assert_eq(qn_store_count(st), 1);
}

Test(store, drop_before_the_add_was_announced_reports_only_the_removal)
{
    open_store();
    upload("a", "d", 0, DATA0, strlen(DATA0), 64);
    cr_assert_eq(qn_store_drop(st, "d"), 1);
    qn_shard *removed;
    size_t na, nr;
    changes(&na, &nr, NULL, &removed);
    cr_assert_eq(na, 0, "a dropped shard is announced as added");
    cr_assert_eq(nr, 1);
    cr_assert_str_eq(removed[0].dataset, "d");
    free(removed);
}

Test(store, drop_shard_removes_one_copy_and_keeps_the_rest)
{
    open_store();
    upload("a", "d", 0, DATA0, strlen(DATA0), 64);
    upload("b", "d", 1, DATA1, strlen(DATA1), 64);
    changes(NULL, NULL, NULL, NULL);
    cr_assert_eq(qn_store_drop_shard(st, "d", 1), 1);
    cr_assert_eq(qn_store_drop_shard(st, "d", 1), 0, "already gone");
    cr_assert_eq(qn_store_drop_shard(st, "d", 7), 0, "never held");
    cr_assert_not_null(qn_store_find(st, "d", 0));
    cr_assert_null(qn_store_find(st, "d", 1));
    cr_assert(exists("d", "part-00000"));
    cr_assert_not(exists("d", "part-00001"));
    cr_assert_not(exists("d", "part-00001.meta"));
    qn_shard *removed;
    size_t na, nr;
    changes(&na, &nr, NULL, &removed);
    cr_assert_eq(na, 0);
    cr_assert_eq(nr, 1);
    cr_assert_eq(removed[0].index, 1);
    free(removed);
    reopen_store();
    cr_assert_eq(qn_store_count(st), 1, "the drop is for good");
}

/* ---- qn_file_crc --------------------------------------------------------- */

Test(store, file_crc_matches_zlib)
{
    /* Larger than the function's read buffer, so it reads in pieces. */
    size_t n = 3 * 1024 * 1024 + 17;
    unsigned char *buf = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    char *p = path_of(NULL, "blob");
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
    uint64_t size = 0;
    uint32_t crc = 0;
    cr_assert_eq(qn_file_crc(p, &size, &crc), 0);
    cr_assert_eq(size, n);
    cr_assert_eq(crc, crc_of(buf, n));
    free(buf);

    /* An empty file. */
    f = fopen(p, "wb");
    fclose(f);
    cr_assert_eq(qn_file_crc(p, &size, &crc), 0);
    cr_assert_eq(size, 0);
    cr_assert_eq(crc, crc32(0L, Z_NULL, 0));
    free(p);

    p = path_of(NULL, "missing");
    cr_assert_eq(qn_file_crc(p, &size, &crc), -ENOENT);
    free(p);
}

/* A peer cannot hold more than QN_STORE_UPLOADS_MAX files open here. */
Test(store, uploads_at_once_are_bounded)
{
    open_store();
    size_t n = strlen(DATA0);
    uint32_t crc = crc_of(DATA0, n);
    char err[512], token[16];
    for (int i = 0; i < QN_STORE_UPLOADS_MAX; i++) {
        snprintf(token, sizeof token, "t%d", i);
        cr_assert_eq(qn_store_upload(st, token, "d", (uint32_t)i, 0, DATA0, 4,
                                     0, n, crc, 1, err, sizeof err),
                     0, "%s", err);
    }
    err[0] = '\0';
    cr_assert_eq(qn_store_upload(st, "one-more", "d", 999, 0, DATA0, 4, 0, n,
                                 crc, 1, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "uploads at once"), "%s", err);
    cr_assert_eq(entries(".incoming"), QN_STORE_UPLOADS_MAX);
    /* One finishes: there is room again. */
    cr_assert_eq(qn_store_upload(st, "t0", "d", 0, 4, DATA0 + 4, n - 4, 1, n,
                                 crc, 2, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(qn_store_upload(st, "one-more", "d", 999, 0, DATA0, 4, 0, n,
                                 crc, 3, err, sizeof err),
                 0, "%s", err);
}
