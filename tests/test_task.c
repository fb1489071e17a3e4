/*
 * test_task.c -- pieces of the task runner that need no plugin: the plan
 * that merges sorted files in passes (lib/task.c).
 */
#include "helpers.h"

#include "task.h"
#include "merge.h"
#include "util.h"

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
