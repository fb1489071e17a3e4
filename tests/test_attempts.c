/*
 * test_attempts.c -- the attempts a worker runs (worker/attempts.c): the
 * table, and starting, cancelling and reaping task processes, with a
 * shell script standing in for quern-task and a fake master reading the
 * reports (wfixture.h).
 */
#include "wfixture.h"

#include "task.h"

#include <fcntl.h>
#include <signal.h>

TestSuite(attempts, .fini = qn_test_leak_check);

static qn_attempt_ref ref_of(const char *job, unsigned task, unsigned attempt)
{
    qn_attempt_ref r = {
        .kind = QUERN__TASK_KIND__MAP, .task = task, .attempt = attempt};
    snprintf(r.job_id, sizeof r.job_id, "%s", job);
    return r;
}

/* ---- the table ----------------------------------------------------------- */

Test(attempts, the_table_finds_each_attempt_by_its_name)
{
    qn_attempts tab = {0};
    for (unsigned i = 0; i < 20; i++) {
        qn_attempt_ref r = ref_of(i % 2 ? "job-b" : "job-a", i / 2, 1);
        qn_attempt *a = qn_attempts_add(&tab, &r);
        cr_assert_eq(a->st.fd, -1, "nothing running yet");
        cr_assert_eq(a->pid, 0);
    }
    cr_assert_eq(tab.n, 20);
    cr_assert_geq(tab.cap, 20);
    qn_attempt *a =
        qn_attempts_find(&tab, "job-b", QUERN__TASK_KIND__MAP, 3, 1);
    cr_assert_not_null(a);
    cr_assert_str_eq(a->ref.job_id, "job-b");
    cr_assert_eq(a->ref.task, 3);
    cr_assert_null(
        qn_attempts_find(&tab, "job-b", QUERN__TASK_KIND__MAP, 3, 2));
    cr_assert_null(
        qn_attempts_find(&tab, "job-b", QUERN__TASK_KIND__REDUCE, 3, 1));
    cr_assert_null(
        qn_attempts_find(&tab, "job-c", QUERN__TASK_KIND__MAP, 3, 1));
    qn_attempts_destroy(&tab);
    cr_assert_eq(tab.n, 0);
    cr_assert_null(tab.v);
}

Test(attempts, removing_one_keeps_the_others)
{
    qn_attempts tab = {0};
    for (unsigned i = 0; i < 5; i++) {
        qn_attempt_ref r = ref_of("job-a", i, 1);
        qn_attempt *a = qn_attempts_add(&tab, &r);
        a->stderr_path = qn_strdup("/nowhere"); /* freed by remove */
    }
    qn_attempts_remove(&tab, 1);
    cr_assert_eq(tab.n, 4);
    cr_assert_null(
        qn_attempts_find(&tab, "job-a", QUERN__TASK_KIND__MAP, 1, 1));
    for (unsigned i = 0; i < 5; i++)
        if (i != 1)
            cr_assert_not_null(
                qn_attempts_find(&tab, "job-a", QUERN__TASK_KIND__MAP, i, 1),
                "task %u", i);
    qn_attempts_destroy(&tab);
}

Test(attempts, killing_a_job_marks_only_its_attempts_cancelled)
{
    qn_attempts tab = {0};
    qn_attempt_ref a = ref_of("job-a", 0, 1), b = ref_of("job-b", 0, 1);
    qn_attempts_add(&tab, &a);
    qn_attempts_add(&tab, &b);
    qn_attempts_kill_job(&tab, "job-b");
    cr_assert_not(tab.v[0].cancelled);
    cr_assert(tab.v[1].cancelled);
    qn_attempts_kill_job(&tab, NULL);
    cr_assert(tab.v[0].cancelled);
    qn_attempts_destroy(&tab);
}

/* ---- task processes ------------------------------------------------------ */

/* The stand-in for quern-task: keeps its spec, says on stderr it ran,
 * sends what final.bin holds (if anything) and exits with 3 (0 after a
 * report), or sleeps when DIR/sleep exists. */
static const char *task_sh =
    "d=$(dirname \"$0\")\n"
    "cat <&4 >\"$d/spec.bin\"\n"
    "echo 'task ran' >&2\n"
    "if [ -f \"$d/sleep\" ]; then exec sleep 30; fi\n"
    "if [ -f \"$d/final.bin\" ]; then cat \"$d/final.bin\" >&3; exit 0; fi\n"
    "exit 3\n";

static void touch(wfix *f, const char *name, const void *data, size_t len)
{
    char *p = wfix_path(f, name);
    cr_assert_eq(qn_write_file_atomic(p, data, len), 0);
    free(p);
}

Test(attempts, a_task_gets_its_own_spec_and_its_end_is_reported)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){.task = task_sh});
    Quern__Envelope *as =
        wfix_assignment("job-1", QUERN__TASK_KIND__MAP, 4, 2, "abcd");
    qn_attempts_start(f.w, as->assign_task->spec);
    cr_assert_eq(f.w->att.n, 1);
    cr_assert_gt(f.w->att.v[0].pid, 0);
    wfix_reap_all(&f);

    Quern__Envelope *env = wfix_update(&f, "job-1", 4, 2);
    const Quern__TaskUpdate *u = env->task_update;
    cr_assert_eq(u->state, QUERN__TASK_STATE__FAILED);
    cr_assert_str_eq(u->reason, "task process exit code 3");
    cr_assert_eq(u->exit_code, 3);
    cr_assert_str_eq(u->stderr_tail, "task ran\n");
    qn_wire_free(env);

    /* What the task read on fd 4: the assignment, with the worker's own
     * facts; the assignment itself is as the master sent it. */
    char *p = wfix_path(&f, "spec.bin");
    int fd = open(p, O_RDONLY);
    cr_assert_geq(fd, 0);
    Quern__TaskSpec *got = qn_task_read_spec(fd);
    close(fd);
    free(p);
    cr_assert_not_null(got);
    cr_assert_str_eq(got->job_id, "job-1");
    cr_assert_str_eq(got->work_dir, f.w->work_dir);
    char want[4096];
    snprintf(want, sizeof want, "%s/plugins/abcd.so", f.w->work_dir);
    cr_assert_str_eq(got->plugin, want);
    cr_assert_str_eq(got->inputs[0]->path, "/data/in.txt");
    quern__task_spec__free_unpacked(got, NULL);
    cr_assert_str_eq(as->assign_task->spec->plugin, "/master/job.so");
    cr_assert_str_eq(as->assign_task->spec->work_dir, "");
    qn_wire_free(as);
    wfix_stop(&f);
}

Test(attempts, a_task_that_said_it_succeeded_and_exited_cleanly_succeeded)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){.task = task_sh});
    Quern__Envelope fin = QUERN__ENVELOPE__INIT;
    Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
    Quern__AttemptRef r = QUERN__ATTEMPT_REF__INIT;
    r.job_id = (char *)"job-1";
    u.attempt = &r;
    u.state = QUERN__TASK_STATE__SUCCEEDED;
    u.output_size = 1234;
    fin.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
    fin.task_update = &u;
    qn_buf b = {0};
    cr_assert_eq(qn_wire_append(&b, &fin), 0);
    touch(&f, "final.bin", b.data, b.len);
    qn_buf_release(&b);
    Quern__Envelope *as =
        wfix_assignment("job-1", QUERN__TASK_KIND__MAP, 0, 1, "");
    qn_attempts_start(f.w, as->assign_task->spec);
    qn_wire_free(as);
    wfix_reap_all(&f);
    Quern__Envelope *env = wfix_update(&f, "job-1", 0, 1);
    cr_assert_eq(env->task_update->state, QUERN__TASK_STATE__SUCCEEDED);
    cr_assert_eq(env->task_update->output_size, 1234);
    cr_assert_gt(env->task_update->rss_peak, 0, "the worker adds it");
    qn_wire_free(env);
    wfix_stop(&f);
}

Test(attempts, a_duplicate_assignment_starts_once_and_a_cancel_kills_it)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){.task = task_sh});
    touch(&f, "sleep", "", 0);
    Quern__Envelope *as =
        wfix_assignment("job-1", QUERN__TASK_KIND__MAP, 0, 1, "");
    qn_attempts_start(f.w, as->assign_task->spec);
    qn_attempts_start(f.w, as->assign_task->spec);
    cr_assert_eq(f.w->att.n, 1);
    Quern__AttemptRef r = wfix_ref("job-1", QUERN__TASK_KIND__MAP, 0, 1);
    qn_attempts_cancel(f.w, &r);
    wfix_reap_all(&f);
    Quern__Envelope *env = wfix_update(&f, "job-1", 0, 1);
    cr_assert_eq(env->task_update->state, QUERN__TASK_STATE__KILLED);
    cr_assert_str_eq(env->task_update->reason,
                     "killed on the master's request");
    cr_assert_eq(env->task_update->signal, SIGKILL);
    qn_wire_free(env);
    qn_wire_free(as);
    wfix_stop(&f);
}

Test(attempts, a_task_that_cannot_start_is_reported_failed_at_once)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){.task = task_sh});
    cr_assert_eq(unlink(f.task), 0);
    Quern__Envelope *as =
        wfix_assignment("job-1", QUERN__TASK_KIND__MAP, 0, 1, "");
    qn_attempts_start(f.w, as->assign_task->spec);
    qn_wire_free(as);
    cr_assert_eq(f.w->att.n, 0);
    Quern__Envelope *env = wfix_update(&f, "job-1", 0, 1);
    char want[256];
    snprintf(want, sizeof want, "worker %s: cannot start quern-task: %s",
             f.w->id, strerror(ENOENT));
    cr_assert_str_eq(env->task_update->reason, want);
    cr_assert_eq(env->task_update->state, QUERN__TASK_STATE__FAILED);
    qn_wire_free(env);
    wfix_stop(&f);
}

Test(attempts, a_copy_on_a_worker_without_datasets_is_refused)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){.task = task_sh});
    Quern__Envelope *as =
        wfix_assignment("job-1", QUERN__TASK_KIND__COPY, 0, 1, "");
    qn_attempts_start(f.w, as->assign_task->spec);
    qn_wire_free(as);
    cr_assert_eq(f.w->att.n, 0);
    Quern__Envelope *env = wfix_update(&f, "job-1", 0, 1);
    char want[256];
    snprintf(want, sizeof want,
             "worker %s: this worker keeps no datasets (it has no "
             "--data-dir)",
             f.w->id);
    cr_assert_str_eq(env->task_update->reason, want);
    qn_wire_free(env);
    wfix_stop(&f);
}

Test(attempts, map_locations_are_queued_for_a_running_reduce_only)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){.task = task_sh});
    touch(&f, "sleep", "", 0);
    Quern__Envelope *as =
        wfix_assignment("job-1", QUERN__TASK_KIND__REDUCE, 2, 1, "");
    qn_attempts_start(f.w, as->assign_task->spec);
    qn_wire_free(as);
    cr_assert_eq(f.w->att.n, 1);
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__MapLocations ml = QUERN__MAP_LOCATIONS__INIT;
    Quern__AttemptRef r = wfix_ref("job-1", QUERN__TASK_KIND__REDUCE, 2, 1);
    ml.reduce = &r;
    env.body_case = QUERN__ENVELOPE__BODY_MAP_LOCATIONS;
    env.map_locations = &ml;
    qn_attempts_on_locations(f.w, &env);
    /* The socket had room: all of it was written at once. */
    cr_assert_eq(f.w->att.v[0].out.len, 0);
    /* Another attempt's are dropped. */
    r.attempt = 2;
    qn_attempts_on_locations(f.w, &env);
    cr_assert_eq(f.w->att.v[0].out.len, 0);
    qn_attempts_kill_job(&f.w->att, "job-1");
    wfix_reap_all(&f);
    wfix_stop(&f);
}
