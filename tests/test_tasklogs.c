/*
 * test_tasklogs.c -- the stderr a worker keeps of its attempts
 * (worker/tasklogs.c): sent for quern logs, and pruned to the newest
 * jobs' (and those still running here).
 */
#include "wfixture.h"

#include "../worker/tasklogs.h"

#include <fcntl.h>
#include <sys/stat.h>

TestSuite(tasklogs, .fini = qn_test_leak_check);

/* WORK/logs/job into a fresh string (made); free it. */
static char *job_logs(wfix *f, const char *job)
{
    qn_buf b = {0};
    qn_buf_printf(&b, "%s/logs/%s", f->w->work_dir, job);
    cr_assert_eq(qn_mkdirs(b.data, 0755), 0);
    return b.data;
}

static void write_log(wfix *f, const char *job, const char *name,
                      const char *text)
{
    char *dir = job_logs(f, job);
    qn_buf p = {0};
    qn_buf_printf(&p, "%s/%s", dir, name);
    cr_assert_eq(qn_write_file_atomic(p.data, text, strlen(text)), 0);
    qn_buf_release(&p);
    free(dir);
}

/* Ask for the stderr of job's reduce (or map) task 3 attempt 1. */
static Quern__Envelope *ask(wfix *f, const char *job, int reduce,
                            uint32_t max_bytes)
{
    Quern__LogsRequest rq = QUERN__LOGS_REQUEST__INIT;
    rq.request = 42;
    rq.job_id = (char *)job;
    rq.kind = reduce ? QUERN__TASK_KIND__REDUCE : QUERN__TASK_KIND__MAP;
    rq.task = 3;
    rq.attempt = 1;
    rq.max_bytes = max_bytes;
    qn_tasklogs_on_request(f->w, &rq);
    Quern__Envelope *env =
        wfix_next(f, QUERN__ENVELOPE__BODY_LOGS_REPLY, 10000);
    cr_assert_not_null(env, "no reply");
    cr_assert_eq(env->logs_reply->request, 42);
    cr_assert_str_eq(env->logs_reply->worker_id, f->w->id);
    return env;
}

Test(tasklogs, sends_an_attempts_stderr)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    write_log(&f, "job-1", "r-00003-a1.stderr", "reduce said this\n");
    write_log(&f, "job-1", "m-00003-a1.stderr", "map said that\n");
    Quern__Envelope *env = ask(&f, "job-1", 1, 0);
    const Quern__LogsReply *r = env->logs_reply;
    cr_assert_str_empty(r->error);
    cr_assert_eq(r->total_bytes, 17);
    cr_assert_eq(r->data.len, 17);
    cr_assert_eq(memcmp(r->data.data, "reduce said this\n", 17), 0);
    qn_wire_free(env);
    wfix_stop(&f);
}

Test(tasklogs, sends_the_last_bytes_when_asked_for_fewer)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    write_log(&f, "job-1", "m-00003-a1.stderr", "first line\nlast\n");
    Quern__Envelope *env = ask(&f, "job-1", 0, 5);
    const Quern__LogsReply *r = env->logs_reply;
    cr_assert_eq(r->total_bytes, 16);
    cr_assert_eq(r->data.len, 5);
    cr_assert_eq(memcmp(r->data.data, "last\n", 5), 0);
    qn_wire_free(env);
    wfix_stop(&f);
}

Test(tasklogs, says_when_it_keeps_none)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    Quern__Envelope *env = ask(&f, "job-9", 0, 0);
    cr_assert(strstr(env->logs_reply->error, "keeps no stderr for that "
                                             "attempt"),
              "%s", env->logs_reply->error);
    cr_assert_eq(env->logs_reply->data.len, 0);
    qn_wire_free(env);
    wfix_stop(&f);
}

Test(tasklogs, pruning_keeps_the_newest_jobs_and_those_running)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    /* 70 jobs, job-00 the oldest; job-02 still has an attempt here. */
    for (int i = 0; i < 70; i++) {
        char job[16];
        snprintf(job, sizeof job, "job-%02d", i);
        char *dir = job_logs(&f, job);
        struct timespec t[2] = {{1000000 + i, 0}, {1000000 + i, 0}};
        cr_assert_eq(utimensat(AT_FDCWD, dir, t, 0), 0);
        free(dir);
    }
    qn_attempt_ref live = {.kind = QUERN__TASK_KIND__MAP};
    snprintf(live.job_id, sizeof live.job_id, "job-02");
    qn_attempts_add(&f.w->att, &live);
    qn_tasklogs_prune(f.w);
    for (int i = 0; i < 70; i++) {
        qn_buf p = {0};
        qn_buf_printf(&p, "%s/logs/job-%02d", f.w->work_dir, i);
        int kept = access(p.data, F_OK) == 0;
        /* 69 candidates: the 5 oldest besides job-02 go. */
        int want = i == 2 || i >= 6;
        cr_assert_eq(kept, want, "job-%02d %s", i, kept ? "kept" : "gone");
        qn_buf_release(&p);
    }
    wfix_stop(&f);
}
