/*
 * test_task.c -- pieces of the task runtime's core that need no plugin
 * (lib/task.c): the plan that merges sorted files in passes, and the copy
 * of a merge into a sink.
 */
#include "helpers.h"

#include "task.h"
#include "merge.h"
#include "util.h"

#include <fcntl.h>

TestSuite(task, .fini = qn_test_leak_check);

typedef struct {
    int steps;     /* merges done */
    size_t widest; /* most files merged at once */
    int fail_at;   /* fail this step (0: never) */
} plan_ctx;

/* A fake merge: the new "file" is the concatenation of the names. */
static char *s_concat(quern_task *t, char **paths, char **names, size_t n,
                      void *vctx)
{
    (void)t;
    (void)names;
    plan_ctx *c = vctx;
    if (++c->steps == c->fail_at)
        return NULL;
    if (n > c->widest)
        c->widest = n;
    qn_buf b = {0};
    for (size_t i = 0; i < n; i++)
        qn_buf_printf(&b, "%s%s", i ? "," : "", paths[i]);
    return b.data;
}

static char **s_items(size_t n)
{
    char **p = calloc(n, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        qn_buf b = {0};
        qn_buf_printf(&b, "%zu", i);
        p[i] = b.data;
    }
    return p;
}

/* The concatenation of all items, in order: what any plan must keep. */
static char *s_joined(char **p, size_t n)
{
    qn_buf b = {0};
    for (size_t i = 0; i < n; i++)
        qn_buf_printf(&b, "%s%s", i ? "," : "", p[i]);
    return b.data;
}

static void s_free_items(char **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i]);
    free(p);
}

Test(task, merge_plan_leaves_few_enough_untouched)
{
    quern_task t = {0};
    plan_ctx c = {0};
    size_t n = QN_MERGE_FANIN;
    char **p = s_items(n);
    cr_assert_eq(qn_task_merge_plan(&t, p, NULL, &n, s_concat, &c), 0);
    cr_assert_eq(c.steps, 0);
    cr_assert_eq(n, QN_MERGE_FANIN);
    s_free_items(p, n);
}

Test(task, merge_plan_merges_just_enough_when_a_little_over)
{
    quern_task t = {0};
    plan_ctx c = {0};
    size_t n = 40;
    char **p = s_items(n);
    char *want = s_joined(p, n);
    cr_assert_eq(qn_task_merge_plan(&t, p, NULL, &n, s_concat, &c), 0);
    /* One merge of the first 9 leaves exactly 32, the rest untouched. */
    cr_assert_eq(c.steps, 1);
    cr_assert_eq(c.widest, 9);
    cr_assert_eq(n, QN_MERGE_FANIN);
    char *got = s_joined(p, n);
    cr_assert_str_eq(got, want, "order must be kept");
    free(got);
    free(want);
    s_free_items(p, n);
}

Test(task, merge_plan_rewrites_each_file_few_times_when_far_over)
{
    quern_task t = {0};
    plan_ctx c = {0};
    size_t n = 5000;
    char **p = s_items(n);
    char *want = s_joined(p, n);
    cr_assert_eq(qn_task_merge_plan(&t, p, NULL, &n, s_concat, &c), 0);
    cr_assert_leq(n, QN_MERGE_FANIN);
    cr_assert_leq(c.widest, QN_MERGE_FANIN);
    /* Levels of 32: 5000 -> 157 -> 5; about n/31 merges, not n. */
    cr_assert_leq(c.steps, 5000 / 31 + 6, "%d merges", c.steps);
    char *got = s_joined(p, n);
    cr_assert_str_eq(got, want, "order must be kept");
    free(got);
    free(want);
    s_free_items(p, n);
}

Test(task, merge_plan_failure_leaves_arrays_whole)
{
    quern_task t = {0};
    plan_ctx c = {.fail_at = 2};
    size_t n = 100;
    char **p = s_items(n);
    char **names = s_items(n);
    cr_assert_eq(qn_task_merge_plan(&t, p, names, &n, s_concat, &c), -1);
    /* Merged-away entries are gone, the rest are still there to clean up. */
    cr_assert_lt(n, 100);
    for (size_t i = 0; i < n; i++)
        cr_assert_not_null(p[i]);
    s_free_items(p, n);
    s_free_items(names, n);
}

/* ---- qn_task_merge_copy -------------------------------------------------- */

/* Two sorted block streams in one file (odd and even numbers), and a
 * merge over them; free with s_merge_done. */
typedef struct {
    char *dir;
    int fd;
    qn_blockreader rd[2];
    qn_blockreader *src[2];
    qn_merge *m;
} two_streams;

static void s_two_streams(two_streams *s, int records)
{
    s->dir = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, s->dir, "streams");
    s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(s->fd, 0);
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 1);
    qn_range r[2];
    for (int k = 0; k < 2; k++) {
        qn_blockwriter *w = qn_blockwriter_new(s->fd, c);
        for (int i = k; i < records; i += 2) {
            char key[16];
            int n = snprintf(key, sizeof key, "%08d", i);
            cr_assert_eq(qn_blockwriter_add(w, key, (size_t)n, "v", 1), 0);
        }
        cr_assert_eq(qn_blockwriter_flush(w), 0);
        r[k] = qn_blockwriter_totals(w);
        qn_blockwriter_destroy(&w);
    }
    qn_codec_destroy(&c);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(qn_blockreader_init(&s->rd[k], s->fd, "streams",
                                         r[k].offset, r[k].length),
                     0);
        s->src[k] = &s->rd[k];
    }
    s->m = qn_merge_new(NULL, s->src, 2);
}

static void s_merge_done(two_streams *s)
{
    qn_merge_destroy(&s->m);
    for (int k = 0; k < 2; k++)
        qn_blockreader_release(&s->rd[k]);
    close(s->fd);
    qn_rmtree(s->dir);
    free(s->dir);
}

/* A sink that keeps the keys it is given, failing at the stop-th. */
typedef struct {
    qn_buf keys;
    int n, stop;
} key_sink;

static int s_keep_key(void *ctx, const void *key, size_t klen, const void *val,
                      size_t vlen)
{
    (void)val;
    (void)vlen;
    key_sink *k = ctx;
    if (++k->n == k->stop)
        return -7;
    qn_buf_add(&k->keys, key, klen);
    qn_buf_add(&k->keys, " ", 1);
    return 0;
}

Test(task, merge_copy_hands_every_record_over_in_order)
{
    quern_task t = {.ctl = -1};
    two_streams s;
    s_two_streams(&s, 1000);
    key_sink k = {0};
    cr_assert_eq(qn_task_merge_copy(&t, s.m, s_keep_key, &k), 0);
    cr_assert_eq(k.n, 1000);
    qn_buf want = {0};
    for (int i = 0; i < 1000; i++)
        qn_buf_printf(&want, "%08d ", i);
    cr_assert_eq(k.keys.len, want.len);
    cr_assert_eq(memcmp(k.keys.data, want.data, want.len), 0);
    qn_buf_release(&want);
    qn_buf_release(&k.keys);
    s_merge_done(&s);
}

Test(task, merge_copy_stops_at_the_sinks_error)
{
    quern_task t = {.ctl = -1};
    two_streams s;
    s_two_streams(&s, 100);
    key_sink k = {.stop = 3};
    cr_assert_eq(qn_task_merge_copy(&t, s.m, s_keep_key, &k), -7);
    cr_assert_eq(k.n, 3);
    cr_assert_eq(qn_merge_failed(s.m), -1, "the merge itself did not fail");
    /* The record the sink refused is still next. */
    const void *key, *val;
    size_t kl, vl;
    cr_assert_eq(qn_merge_peek(s.m, &key, &kl, &val, &vl), 1);
    cr_assert_eq(memcmp(key, "00000002", 8), 0);
    qn_buf_release(&k.keys);
    s_merge_done(&s);
}
