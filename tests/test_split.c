/*
 * test_split.c -- cutting input files and folders into map splits.
 *
 * Each test works in its own temp folder, made by the fixture and removed
 * after it.
 */
#include "helpers.h"

#include "split.h"
#include "util.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

static char *tmp;    /* this test's private folder */
static qn_splits ss; /* this test's result, released by the fixture */

static void setup(void)
{
    tmp = qn_test_tmpdir();
    memset(&ss, 0, sizeof ss);
}

static void teardown(void)
{
    qn_splits_release(&ss);
    if (tmp) {
        qn_rmtree(tmp);
        free(tmp);
        tmp = NULL;
    }
    qn_test_leak_check();
}

TestSuite(split, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------- */

/* tmp/rel, in one of a few static buffers (nothing to free). */
static const char *at(const char *rel)
{
    static char bufs[8][4096];
    static unsigned next;
    char *b = bufs[next++ % 8];
    int n = snprintf(b, sizeof bufs[0], "%s/%s", tmp, rel);
    cr_assert(n > 0 && (size_t)n < sizeof bufs[0], "path too long");
    return b;
}

/* Create tmp/rel with size bytes (lines of text, so it looks like input). */
static void make_file(const char *rel, size_t size)
{
    const char *p = at(rel);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f, "cannot create %s", p);
    for (size_t i = 0; i < size; i++)
        fputc(i % 16 == 15 ? '\n' : 'a' + (int)(i % 26), f);
    cr_assert_eq(fclose(f), 0);
}

static void make_dir(const char *rel)
{
    const char *p = at(rel);
    cr_assert_eq(mkdir(p, 0755), 0, "cannot create %s", p);
}

/* Split one input, given as `given` and found at tmp/rel. */
static int split_one(const char *given, const char *rel, const qn_split_opts *o,
                     qn_splits *out, char *err, size_t errcap)
{
    const char *g[1] = {given};
    const char *ps[1] = {at(rel)};
    return qn_split_inputs(g, ps, 1, o, out, err, errcap);
}

/*
 * The pieces of every split that read file `name` cover [0, size) exactly:
 * in order, no gap, no overlap. Returns how many pieces there were.
 */
static size_t check_covers(const qn_splits *r, const char *name, uint64_t size)
{
    uint64_t next = 0;
    size_t pieces = 0;
    for (size_t i = 0; i < r->n; i++) {
        const qn_split *sp = &r->splits[i];
        for (size_t k = 0; k < sp->n; k++) {
            const qn_piece *p = &sp->pieces[k];
            if (strcmp(p->name, name) != 0)
                continue;
            cr_assert_eq(p->offset, next,
                         "%s: piece at %llu, expected %llu (gap or overlap)",
                         name, (unsigned long long)p->offset,
                         (unsigned long long)next);
            cr_assert_eq(p->file_size, size);
            cr_assert_gt(p->length, 0, "%s: empty piece at %llu", name,
                         (unsigned long long)p->offset);
            next = p->offset + p->length;
            pieces++;
        }
    }
    cr_assert_eq(next, size, "%s: pieces end at %llu of %llu", name,
                 (unsigned long long)next, (unsigned long long)size);
    return pieces;
}

/* Each split's byte count is the sum of its pieces; the total too. */
static void check_sums(const qn_splits *r)
{
    uint64_t total = 0;
    for (size_t i = 0; i < r->n; i++) {
        const qn_split *sp = &r->splits[i];
        cr_assert_gt(sp->n, 0, "split %zu has no pieces", i);
        uint64_t b = 0;
        for (size_t k = 0; k < sp->n; k++)
            b += sp->pieces[k].length;
        cr_assert_eq(sp->bytes, b, "split %zu bytes", i);
        total += b;
    }
    cr_assert_eq(r->bytes, total);
}

/* ---- cutting large files ------------------------------------------------- */

Test(split, large_file_is_cut_into_exact_ranges)
{
    make_file("big", 1234);
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(split_one("big", "big", &o, &ss, err, sizeof err), 0, "%s",
                 err);
    /* 12 full ranges of 100, then 34 bytes (over a tenth: its own map). */
    cr_assert_eq(ss.n, 13);
    cr_assert_eq(check_covers(&ss, "big", 1234), 13);
    for (size_t i = 0; i < ss.n; i++) {
        cr_assert_eq(ss.splits[i].n, 1, "a cut file's range is alone");
        cr_assert_eq(ss.splits[i].pieces[0].offset, 100 * i);
        cr_assert_eq(ss.splits[i].pieces[0].length, i < 12 ? 100 : 34);
    }
    check_sums(&ss);
    cr_assert_eq(ss.bytes, 1234);
    cr_assert_eq(ss.files, 1);
    qn_splits_release(&ss);
    cr_assert_eq(ss.n, 0);
    cr_assert_null(ss.splits);
}

/* More splits than allowed is refused before they are made: a tiny
 * --split-size over a huge file cannot exhaust the master's memory. */
Test(split, too_many_splits_are_refused_before_they_are_made)
{
    make_file("big", 1234);
    make_file("small", 10);
    char err[256] = "";
    qn_split_opts o = {.split_size = 100, .max_splits = 13};
    cr_assert_eq(split_one("big", "big", &o, &ss, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(ss.n, 13);
    qn_splits_release(&ss);
    o.max_splits = 12;
    cr_assert_eq(split_one("big", "big", &o, &ss, err, sizeof err), -1);
    cr_assert(strstr(err, "more than 12 map tasks") &&
                  strstr(err, "--split-size"),
              "%s", err);
    cr_assert_eq(ss.n, 0);
    /* A file of 10^12 bytes (sparse) split in bytes: refused at once. */
    o = (qn_split_opts){.split_size = 1, .max_splits = 1000000};
    int fd = open(at("huge"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)1000000000000LL), 0);
    close(fd);
    cr_assert_eq(split_one("huge", "huge", &o, &ss, err, sizeof err), -1);
    cr_assert(strstr(err, "more than 1000000 map tasks"), "%s", err);
    /* The limit counts across inputs. */
    const char *g[2] = {"big", "small"};
    const char *ps[2] = {at("big"), at("small")};
    o = (qn_split_opts){.split_size = 100, .max_splits = 13};
    cr_assert_eq(qn_split_inputs(g, ps, 2, &o, &ss, err, sizeof err), -1);
    o.max_splits = 14;
    cr_assert_eq(qn_split_inputs(g, ps, 2, &o, &ss, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(ss.n, 14);
    qn_splits_release(&ss);
}

Test(split, small_last_piece_joins_the_one_before)
{
    make_file("f", 1005);
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(split_one("f", "f", &o, &ss, err, sizeof err), 0, "%s", err);
    /* 5 bytes is under a tenth of 100: the last map reads 105. */
    cr_assert_eq(ss.n, 10);
    cr_assert_eq(check_covers(&ss, "f", 1005), 10);
    cr_assert_eq(ss.splits[9].pieces[0].offset, 900);
    cr_assert_eq(ss.splits[9].pieces[0].length, 105);
    check_sums(&ss);
    qn_splits_release(&ss);
}

Test(split, tail_of_a_tenth_or_more_is_its_own_piece)
{
    make_file("f", 1010);
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(split_one("f", "f", &o, &ss, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ss.n, 11);
    cr_assert_eq(check_covers(&ss, "f", 1010), 11);
    cr_assert_eq(ss.splits[10].pieces[0].length, 10);
    qn_splits_release(&ss);
}

Test(split, file_of_exactly_split_size_is_one_piece)
{
    make_file("f", 100);
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(split_one("f", "f", &o, &ss, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ss.n, 1);
    cr_assert_eq(ss.splits[0].n, 1);
    cr_assert_eq(ss.splits[0].pieces[0].offset, 0);
    cr_assert_eq(ss.splits[0].pieces[0].length, 100);
    qn_splits_release(&ss);
}

Test(split, cut_ranges_cover_many_sizes_exactly)
{
    static const size_t sizes[] = {101, 109, 110, 111,  199, 200,
                                   209, 210, 999, 1000, 4321};
    qn_split_opts o = {.split_size = 100};
    for (size_t i = 0; i < QN_ARRAY_LEN(sizes); i++) {
        char name[32];
        snprintf(name, sizeof name, "f%zu", sizes[i]);
        make_file(name, sizes[i]);
        char err[256] = "";
        cr_assert_eq(split_one(name, name, &o, &ss, err, sizeof err), 0, "%s",
                     err);
        check_covers(&ss, name, sizes[i]);
        check_sums(&ss);
        for (size_t k = 0; k < ss.n; k++) {
            uint64_t len = ss.splits[k].pieces[0].length;
            cr_assert_geq(len, 10, "%s: a %llu-byte map", name,
                          (unsigned long long)len);
            cr_assert_lt(len, 110, "%s: a %llu-byte map", name,
                         (unsigned long long)len);
        }
        qn_splits_release(&ss);
    }
}

/* ---- grouping small files ------------------------------------------------ */

Test(split, small_files_are_grouped_up_to_split_size)
{
    make_dir("in");
    make_file("in/a", 30);
    make_file("in/b", 30);
    make_file("in/c", 40); /* a+b+c = 100: exactly full */
    make_file("in/d", 30);
    make_file("in/e", 80); /* d+e = 110: too much */
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(split_one("in", "in", &o, &ss, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ss.n, 3);
    cr_assert_eq(ss.splits[0].n, 3);
    cr_assert_str_eq(ss.splits[0].pieces[0].name, "in/a");
    cr_assert_str_eq(ss.splits[0].pieces[1].name, "in/b");
    cr_assert_str_eq(ss.splits[0].pieces[2].name, "in/c");
    cr_assert_eq(ss.splits[0].bytes, 100);
    cr_assert_eq(ss.splits[1].n, 1);
    cr_assert_str_eq(ss.splits[1].pieces[0].name, "in/d");
    cr_assert_eq(ss.splits[2].n, 1);
    cr_assert_str_eq(ss.splits[2].pieces[0].name, "in/e");
    for (size_t i = 0; i < ss.n; i++) {
        for (size_t k = 0; k < ss.splits[i].n; k++) {
            const qn_piece *p = &ss.splits[i].pieces[k];
            cr_assert_eq(p->offset, 0, "small files are read whole");
            cr_assert_eq(p->length, p->file_size);
        }
    }
    check_sums(&ss);
    cr_assert_eq(ss.files, 5);
    cr_assert_eq(ss.bytes, 210);
    qn_splits_release(&ss);
}

Test(split, small_files_are_not_grouped_across_a_cut_file)
{
    make_dir("in");
    make_file("in/a", 10);
    make_file("in/b", 250);
    make_file("in/c", 10);
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(split_one("in", "in", &o, &ss, err, sizeof err), 0, "%s", err);
    /* [a] [b 0-100] [b 100-200] [b 200-250] [c] */
    cr_assert_eq(ss.n, 5);
    cr_assert_str_eq(ss.splits[0].pieces[0].name, "in/a");
    cr_assert_eq(ss.splits[0].n, 1);
    cr_assert_eq(check_covers(&ss, "in/b", 250), 3);
    cr_assert_str_eq(ss.splits[4].pieces[0].name, "in/c");
    cr_assert_eq(ss.splits[4].n, 1);
    check_sums(&ss);
    qn_splits_release(&ss);
}

/* ---- folders and names --------------------------------------------------- */

Test(split, folder_files_come_in_name_order_skipping_hidden_and_underscore)
{
    make_dir("in");
    make_file("in/b.txt", 5);
    make_file("in/a.txt", 5);
    make_file("in/c.txt", 5);
    make_file("in/B.txt", 5);
    make_file("in/.hidden", 5);
    make_file("in/_SUCCESS", 5);
    make_file("in/_tmp.part", 5);
    make_dir("in/sub"); /* folders inside are not read */
    make_file("in/sub/x", 5);
    qn_split_opts o = {.split_size = 1000};
    char err[256] = "";
    cr_assert_eq(split_one("in", "in", &o, &ss, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ss.n, 1);
    static const char *const want[] = {"in/B.txt", "in/a.txt", "in/b.txt",
                                       "in/c.txt"};
    cr_assert_eq(ss.splits[0].n, QN_ARRAY_LEN(want));
    for (size_t i = 0; i < QN_ARRAY_LEN(want); i++)
        cr_assert_str_eq(ss.splits[0].pieces[i].name, want[i]);
    cr_assert_eq(ss.files, 4);
    cr_assert_eq(ss.bytes, 20);
    qn_splits_release(&ss);
}

Test(split, shard_name_is_folder_as_given_plus_file_name)
{
    make_dir("data");
    make_file("data/part-1", 7);
    qn_split_opts o = {.split_size = 1000};
    char err[256] = "";

    /* The user wrote a relative path; the map sees it, not ours. */
    cr_assert_eq(split_one("some/where/data", "data", &o, &ss, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(ss.n, 1);
    cr_assert_eq(ss.splits[0].n, 1);
    cr_assert_str_eq(ss.splits[0].pieces[0].name, "some/where/data/part-1");
    const char *abs = at("data/part-1");
    cr_assert_str_eq(ss.splits[0].pieces[0].path, abs);
    qn_splits_release(&ss);

    /* A trailing slash does not double. */
    cr_assert_eq(split_one("data/", "data", &o, &ss, err, sizeof err), 0, "%s",
                 err);
    cr_assert_str_eq(ss.splits[0].pieces[0].name, "data/part-1");
    qn_splits_release(&ss);
}

Test(split, file_input_keeps_its_name_as_given)
{
    make_file("words.txt", 12);
    qn_split_opts o = {.split_size = 1000};
    char err[256] = "";
    cr_assert_eq(
        split_one("./x/words.txt", "words.txt", &o, &ss, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(ss.n, 1);
    cr_assert_str_eq(ss.splits[0].pieces[0].name, "./x/words.txt");
    cr_assert_str_eq(ss.splits[0].pieces[0].path, at("words.txt"));
    cr_assert_eq(ss.splits[0].pieces[0].file_size, 12);
    qn_splits_release(&ss);
}

Test(split, several_inputs_keep_their_order_and_totals)
{
    make_file("z-first", 40);
    make_dir("d");
    make_file("d/one", 50);
    make_file("d/two", 300);
    make_file("a-last", 20);
    const char *given[3] = {"z-first", "d", "a-last"};
    const char *paths[3] = {at("z-first"), at("d"), at("a-last")};
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(qn_split_inputs(given, paths, 3, &o, &ss, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(ss.files, 4);
    cr_assert_eq(ss.bytes, 410);
    /* [z-first d/one] [d/two x3] [a-last] */
    cr_assert_eq(ss.n, 5);
    cr_assert_eq(ss.splits[0].n, 2);
    cr_assert_str_eq(ss.splits[0].pieces[0].name, "z-first");
    cr_assert_str_eq(ss.splits[0].pieces[1].name, "d/one");
    cr_assert_eq(check_covers(&ss, "d/two", 300), 3);
    cr_assert_str_eq(ss.splits[4].pieces[0].name, "a-last");
    check_sums(&ss);
    qn_splits_release(&ss);
}

/* ---- record formats ------------------------------------------------------ */

Test(split, whole_never_cuts_a_file)
{
    make_dir("in");
    make_file("in/a", 30);
    make_file("in/b", 1000);
    make_file("in/c", 30);
    make_file("in/d", 30);
    qn_split_opts o = {.split_size = 100, .whole = 1};
    char err[256] = "";
    cr_assert_eq(split_one("in", "in", &o, &ss, err, sizeof err), 0, "%s", err);
    size_t pieces = 0;
    for (size_t i = 0; i < ss.n; i++) {
        for (size_t k = 0; k < ss.splits[i].n; k++) {
            const qn_piece *p = &ss.splits[i].pieces[k];
            cr_assert_eq(p->offset, 0, "%s cut at %llu", p->name,
                         (unsigned long long)p->offset);
            cr_assert_eq(p->length, p->file_size, "%s cut", p->name);
            pieces++;
        }
    }
    cr_assert_eq(pieces, 4, "one piece per file");
    cr_assert_eq(check_covers(&ss, "in/b", 1000), 1);
    /* Small files are still grouped. */
    cr_assert_str_eq(ss.splits[ss.n - 1].pieces[0].name, "in/c");
    cr_assert_eq(ss.splits[ss.n - 1].n, 2);
    check_sums(&ss);
    cr_assert_eq(ss.bytes, 1090);
    qn_splits_release(&ss);
}

Test(split, a_compressed_file_is_never_cut_and_is_marked)
{
    make_dir("in");
    make_file("in/a.txt", 1000);
    /* gzip's first bytes, and more: the splitter reads only those; a
     * plain file named .gz is plain. */
    const char *gz = at("in/b.log");
    FILE *f = fopen(gz, "wb");
    cr_assert_not_null(f);
    fputs("\x1f\x8b\x08", f);
    for (int i = 0; i < 997; i++)
        fputc(i & 0xff, f);
    cr_assert_eq(fclose(f), 0);
    make_file("in/c.gz", 1000);
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(split_one("in", "in", &o, &ss, err, sizeof err), 0, "%s", err);
    cr_assert_eq(check_covers(&ss, "in/a.txt", 1000), 10);
    cr_assert_eq(check_covers(&ss, "in/b.log", 1000), 1);
    cr_assert_eq(check_covers(&ss, "in/c.gz", 1000), 10);
    for (size_t i = 0; i < ss.n; i++)
        for (size_t k = 0; k < ss.splits[i].n; k++) {
            const qn_piece *p = &ss.splits[i].pieces[k];
            cr_assert_eq(p->codec, strcmp(p->name, "in/b.log") ? 0 : 1,
                         "%s: codec %d", p->name, p->codec);
        }
    check_sums(&ss);
    qn_splits_release(&ss);
}

Test(split, align_cuts_at_multiples_of_record_size)
{
    make_file("rec", 1000);
    qn_split_opts o = {.split_size = 100, .align = 30};
    char err[256] = "";
    cr_assert_eq(split_one("rec", "rec", &o, &ss, err, sizeof err), 0, "%s",
                 err);
    check_covers(&ss, "rec", 1000);
    cr_assert_gt(ss.n, 1, "a 1000-byte file with 100-byte splits is cut");
    for (size_t i = 0; i < ss.n; i++) {
        const qn_piece *p = &ss.splits[i].pieces[0];
        cr_assert_eq(p->offset % 30, 0, "cut at %llu, inside a record",
                     (unsigned long long)p->offset);
        if (p->offset + p->length < p->file_size)
            cr_assert_eq(p->length % 30, 0);
    }
    check_sums(&ss);
    qn_splits_release(&ss);
}

/* ---- errors -------------------------------------------------------------- */

Test(split, missing_input_fails_naming_it)
{
    make_file("here", 10);
    const char *given[2] = {"here", "in/not-here"};
    const char *paths[2] = {at("here"), at("not-here")};
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(qn_split_inputs(given, paths, 2, &o, &ss, err, sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "in/not-here"), "error: %s", err);
    cr_assert_not_null(strstr(err, "No such file"), "error: %s", err);
    cr_assert_eq(ss.n, 0);
    cr_assert_null(ss.splits);
    qn_splits_release(&ss); /* harmless on a failed result */
}

Test(split, empty_folder_is_an_error)
{
    make_dir("empty");
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(split_one("my/empty", "empty", &o, &ss, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "my/empty"), "error: %s", err);
    cr_assert_not_null(strstr(err, "no files"), "error: %s", err);
    cr_assert_eq(ss.n, 0);
    cr_assert_null(ss.splits);
}

Test(split, folder_of_only_hidden_files_is_an_error)
{
    make_dir("in");
    make_file("in/.x", 10);
    make_file("in/_SUCCESS", 0);
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(split_one("only-hidden", "in", &o, &ss, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "only-hidden"), "error: %s", err);
    cr_assert_not_null(strstr(err, "no files"), "error: %s", err);
    cr_assert_eq(ss.n, 0);
}

Test(split, special_file_is_refused)
{
    cr_assert_eq(mkfifo(at("fifo"), 0600), 0);
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(split_one("fifo", "fifo", &o, &ss, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "fifo"), "error: %s", err);
    cr_assert_eq(ss.n, 0);
}

Test(split, file_name_that_is_not_utf8_is_refused_by_name)
{
    make_dir("in");
    make_file("in/caf\xe9.txt", 10);
    qn_split_opts o = {.split_size = 100};
    char err[256] = "";
    cr_assert_eq(split_one("in", "in", &o, &ss, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "caf?.txt"), "error: %s", err);
    cr_assert_not_null(strstr(err, "not valid UTF-8"), "error: %s", err);
    cr_assert_eq(ss.n, 0);
}
