/*
 * test_outcome.c -- what a worker reports of an attempt that ended
 * without success (worker/outcome.c): the cause, the last gasp, how the
 * process ended and the tail of its stderr.
 */
#include "helpers.h"

#include "../worker/outcome.h"

#include <signal.h>

/* A worker and one of its attempts, a map of two pieces whose stderr is
 * a file in a private folder. */
typedef struct {
    char *dir;
    qn_worker w;
    qn_attempt a;
    qn_gasp gasp;
    char *shards[2];
    Quern__Envelope env; /* the task's last word, when it said one */
    Quern__TaskUpdate fin;
    qn_outcome o;
} fixture;

static fixture fx;

static void setup(void)
{
    memset(&fx, 0, sizeof fx);
    fx.dir = qn_test_tmpdir();
    snprintf(fx.w.id, sizeof fx.w.id, "w-test");
    fx.w.cfg.task_mem_mb = 64;
    snprintf(fx.a.ref.job_id, sizeof fx.a.ref.job_id, "job-1");
    fx.a.ref.task = 3;
    fx.a.ref.attempt = 1;
    fx.a.gasp = &fx.gasp;
    fx.shards[0] = (char *)"a.txt";
    fx.shards[1] = (char *)"b.txt";
    fx.a.shards = fx.shards;
    fx.a.nshards = 2;
    qn_buf p = {0};
    qn_buf_printf(&p, "%s/m-00003-a1.stderr", fx.dir);
    fx.a.stderr_path = p.data;
}

static void teardown(void)
{
    qn_outcome_release(&fx.o);
    free(fx.a.stderr_path);
    qn_rmtree(fx.dir);
    free(fx.dir);
    qn_test_leak_check();
}

TestSuite(outcome, .init = setup, .fini = teardown);

/* The task's last word: state, and reason when not NULL. */
static void task_said(Quern__TaskState state, const char *reason)
{
    quern__envelope__init(&fx.env);
    quern__task_update__init(&fx.fin);
    fx.fin.state = state;
    if (reason)
        fx.fin.reason = (char *)reason;
    fx.fin.record_offset = 5;
    fx.env.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
    fx.env.task_update = &fx.fin;
    fx.a.final = &fx.env;
}

static const Quern__TaskUpdate *fail(int status, const char *install_err)
{
    qn_outcome_failure(&fx.o, &fx.w, &fx.a, status, 7 << 20, install_err);
    cr_assert_eq(fx.o.u.reason, fx.o.reason.data);
    cr_assert_eq(fx.o.u.rss_peak, 7 << 20);
    return &fx.o.u;
}

#define EXITED(code) ((code) << 8)

Test(outcome, a_cancelled_attempt_is_killed_whatever_it_was_doing)
{
    fx.a.cancelled = 1;
    fx.gasp.in_record = 1;
    fx.gasp.phase = QN_PHASE_SETUP;
    const Quern__TaskUpdate *u = fail(SIGKILL, "");
    cr_assert_eq(u->state, QUERN__TASK_STATE__KILLED);
    cr_assert_str_eq(u->reason, "killed on the master's request");
    cr_assert_not(u->in_record);
    cr_assert_eq(u->signal, SIGKILL);
    cr_assert_eq(u->exit_code, -1);
}

Test(outcome, over_the_memory_cap_names_the_cap)
{
    fx.a.mem_killed = 100ull << 20;
    const Quern__TaskUpdate *u = fail(SIGKILL, "");
    cr_assert_eq(u->state, QUERN__TASK_STATE__FAILED);
    cr_assert_str_eq(u->reason,
                     "killed by worker w-test: its resident memory reached "
                     "100 MiB, over the cap of 64 MiB (--task-mem-mb)");
}

Test(outcome, the_tasks_own_reason_comes_with_how_its_process_ended)
{
    task_said(QUERN__TASK_STATE__FAILED, "map returned 2");
    const Quern__TaskUpdate *u = fail(EXITED(1), "");
    cr_assert_eq(u->state, QUERN__TASK_STATE__FAILED);
    cr_assert_str_eq(u->reason, "map returned 2 (task process exit code 1)");
    cr_assert_eq(u->exit_code, 1);
    cr_assert_eq(u->signal, 0);
    cr_assert_eq(u->record_offset, 5, "the task's own offset");
}

Test(outcome, a_copy_not_installed_says_why_instead_of_its_success)
{
    task_said(QUERN__TASK_STATE__SUCCEEDED, NULL);
    const Quern__TaskUpdate *u = fail(EXITED(0), "shard x/1 arrived short");
    cr_assert_eq(u->state, QUERN__TASK_STATE__FAILED);
    cr_assert_str_eq(u->reason, "shard x/1 arrived short");
}

Test(outcome, a_malformed_report_is_the_reason_when_the_task_gave_none)
{
    fx.a.bad_msg = (char *)"the task sent a malformed report (bad length)";
    const Quern__TaskUpdate *u = fail(EXITED(0), "");
    cr_assert_str_eq(u->reason, "the task sent a malformed report (bad "
                                "length) (task process exit code 0)");
}

Test(outcome, a_crash_in_map_names_the_record_it_was_in)
{
    fx.gasp.in_record = 1;
    fx.gasp.piece = 1;
    fx.gasp.offset = 77;
    const Quern__TaskUpdate *u = fail(SIGSEGV, "");
    char want[256];
    snprintf(want, sizeof want,
             "task process killed by signal %d (%s) in map() on the record "
             "at offset 77 of b.txt",
             SIGSEGV, strsignal(SIGSEGV));
    cr_assert_str_eq(u->reason, want);
    cr_assert(u->in_record);
    cr_assert_eq(u->input_piece, 1);
    cr_assert_eq(u->record_offset, 77);
    cr_assert_eq(u->signal, SIGSEGV);
}

Test(outcome, a_record_the_task_named_is_not_named_twice)
{
    task_said(QUERN__TASK_STATE__FAILED, "map returned 1 at offset 77 of b");
    fx.gasp.in_record = 1;
    fx.gasp.piece = 1;
    fx.gasp.offset = 77;
    const Quern__TaskUpdate *u = fail(EXITED(1), "");
    cr_assert_str_eq(u->reason,
                     "map returned 1 at offset 77 of b (task process exit "
                     "code 1)");
    cr_assert(u->in_record);
}

Test(outcome, a_piece_out_of_range_in_the_gasp_is_not_believed)
{
    fx.gasp.in_record = 1;
    fx.gasp.piece = 2;
    const Quern__TaskUpdate *u = fail(SIGSEGV, "");
    cr_assert_not(u->in_record);
    cr_assert_null(strstr(u->reason, "in map()"));
}

Test(outcome, a_silent_death_outside_map_says_which_phase)
{
    fx.gasp.phase = QN_PHASE_SETUP;
    const Quern__TaskUpdate *u = fail(SIGABRT, "");
    cr_assert(strstr(u->reason, " in the job's setup()"), "%s", u->reason);
    qn_outcome_release(&fx.o);
    fx.gasp.phase = QN_PHASE_LOADING;
    u = fail(SIGABRT, "");
    cr_assert(strstr(u->reason, " while loading the plugin (in its "
                                "constructors)"),
              "%s", u->reason);
    qn_outcome_release(&fx.o);
    /* A task that said why is believed over its phase. */
    task_said(QUERN__TASK_STATE__FAILED, "setup failed");
    u = fail(EXITED(1), "");
    cr_assert_str_eq(u->reason, "setup failed (task process exit code 1)");
}

Test(outcome, sends_the_end_of_stderr_as_text)
{
    char buf[3000];
    memset(buf, 'x', sizeof buf);
    memcpy(buf + sizeof buf - 6, "a\0b\xffz\n", 6);
    FILE *f = fopen(fx.a.stderr_path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, sizeof buf, f), sizeof buf);
    fclose(f);
    const Quern__TaskUpdate *u = fail(EXITED(1), "");
    cr_assert_eq(strlen(u->stderr_tail), 2048);
    cr_assert_str_eq(u->stderr_tail + 2048 - 6, "a?b?z\n");
}

Test(outcome, no_stderr_file_sends_an_empty_tail)
{
    const Quern__TaskUpdate *u = fail(EXITED(1), "");
    cr_assert_str_eq(u->stderr_tail, "");
    cr_assert_str_eq(u->reason, "task process exit code 1");
}
