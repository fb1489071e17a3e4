/*
 * test_recovery.c -- what a worker keeps across its own restarts: who it
 * is (worker/identity.c: WORK/worker.id under WORK/worker.lock) and the
 * map outputs it finished (worker/recovery.c: WORK/jobs/JOB/map-*.done
 * beside each output, scanned at start: kept and offered, or deleted).
 */
#include "wfixture.h"

#include "../worker/identity.h"
#include "../worker/recovery.h"
#include "ifile.h"
#include "layout.h"

#include <dirent.h>
#include <errno.h>
#include <sys/file.h>

TestSuite(recovery, .fini = qn_test_leak_check);
TestSuite(identity, .fini = qn_test_leak_check);

#define NPARTS 2

/* ---- helpers ------------------------------------------------------------- */

/* Does path exist? */
static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* WORK/jobs/job[/name] into a fresh string; free it. */
static char *jpath(wfix *f, const char *job, const char *name)
{
    qn_buf b = {0};
    qn_buf_printf(&b, "%s/jobs/%s", f->w->work_dir, job);
    if (name)
        qn_buf_printf(&b, "/%s", name);
    return b.data;
}

/* Make WORK/jobs/job. */
static void make_job_dir(wfix *f, const char *job)
{
    char *d = jpath(f, job, NULL);
    cr_assert_eq(qn_mkdirs(d, 0755), 0);
    free(d);
}

/* Write WORK/jobs/job/name holding text (its folder is made). */
static void put_file(wfix *f, const char *job, const char *name,
                     const char *text)
{
    char *p = jpath(f, job, name);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    cr_assert_eq(qn_mkdirs(p, 0755), 0);
    *slash = '/';
    cr_assert_eq(qn_write_file_atomic(p, text, strlen(text)), 0);
    free(p);
}

/* The output's and the update's paths. */
static char *out_path(wfix *f, const char *job, unsigned map, unsigned att)
{
    qn_buf b = {0};
    qn_map_output_path(&b, f->w->work_dir, job, map, att);
    return b.data;
}

static char *done_path(wfix *f, const char *job, unsigned map, unsigned att)
{
    qn_buf b = {0};
    qn_map_done_path(&b, f->w->work_dir, job, map, att);
    return b.data;
}

/* Write a real map output of job's map attempt (NPARTS partitions of a
 * few records each) with the ifile writer; its ranges into ranges. */
static void write_output(wfix *f, const char *job, unsigned map, unsigned att,
                         qn_range ranges[NPARTS])
{
    make_job_dir(f, job);
    char *path = out_path(f, job, map, att);
    char *slash = strrchr(path, '/');
    *slash = '\0'; /* the attempt's folder, too */
    cr_assert_eq(qn_mkdirs(path, 0755), 0);
    *slash = '/';
    char err[512] = "";
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 1);
    qn_ifile_writer *w = qn_ifile_writer_new(path, NPARTS, c, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    for (unsigned p = 0; p < NPARTS; p++)
        for (unsigned i = 0; i < 3 + p; i++) {
            char key[32], val[32];
            int kl = snprintf(key, sizeof key, "key-%u-%02u", p, i);
            int vl = snprintf(val, sizeof val, "value %u of map %u", i, map);
            cr_assert_eq(
                qn_ifile_writer_add(w, p, key, (size_t)kl, val, (size_t)vl), 0);
        }
    cr_assert_eq(qn_ifile_writer_close(&w, ranges, err, sizeof err), 0, "%s",
                 err);
    qn_codec_destroy(&c);
    free(path);
}

/* A SUCCEEDED update of a map attempt, with its partitions as ranges
 * say; it points into itself, so do not copy it once built. */
typedef struct {
    Quern__TaskUpdate u;
    Quern__AttemptRef ref;
    Quern__PartitionInfo pi[NPARTS];
    Quern__PartitionInfo *pp[NPARTS];
} upd;

static void upd_init(upd *d, const char *job, unsigned map, unsigned att,
                     const qn_range ranges[NPARTS])
{
    quern__task_update__init(&d->u);
    d->ref = wfix_ref(job, QUERN__TASK_KIND__MAP, map, att);
    d->u.worker_id = (char *)"w-test";
    d->u.attempt = &d->ref;
    d->u.state = QUERN__TASK_STATE__SUCCEEDED;
    d->u.progress = 1.0;
    for (unsigned p = 0; p < NPARTS; p++) {
        quern__partition_info__init(&d->pi[p]);
        d->pi[p].bytes = ranges[p].length;
        d->pi[p].raw_bytes = ranges[p].raw;
        d->pi[p].records = ranges[p].records;
        d->pp[p] = &d->pi[p];
    }
    d->u.partitions = d->pp;
    d->u.n_partitions = NPARTS;
}

/* Keep u as is (its own attempt ref) as the update of job's map attempt,
 * bypassing qn_recovery_note. */
static void write_done(wfix *f, const char *job, unsigned map, unsigned att,
                       const Quern__TaskUpdate *u)
{
    make_job_dir(f, job);
    size_t n = quern__task_update__get_packed_size(u);
    uint8_t *buf = malloc(n ? n : 1);
    quern__task_update__pack(u, buf);
    char *p = done_path(f, job, map, att);
    cr_assert_eq(qn_write_file_atomic(p, buf, n), 0);
    free(p);
    free(buf);
}

/* A finished output of job's map attempt, with its true update kept. */
static void finished(wfix *f, const char *job, unsigned map, unsigned att)
{
    qn_range r[NPARTS];
    write_output(f, job, map, att, r);
    upd d;
    upd_init(&d, job, map, att, r);
    write_done(f, job, map, att, &d.u);
}

/* The told entry of job's map attempt, or NULL. */
static const qn_told *told(wfix *f, const char *job, unsigned map, unsigned att)
{
    for (size_t i = 0; i < f->w->link.ntold; i++) {
        const qn_told *t = &f->w->link.told[i];
        if (strcmp(t->ref.job_id, job) == 0 && t->ref.task == map &&
            t->ref.attempt == att)
            return t;
    }
    return NULL;
}

/* Both files of job's map attempt are there (1) or both gone (0). */
static void assert_output(wfix *f, const char *job, unsigned map, unsigned att,
                          int there)
{
    char *o = out_path(f, job, map, att), *d = done_path(f, job, map, att);
    cr_assert_eq(exists(o), there, "%s %s", o, there ? "gone" : "left");
    cr_assert_eq(exists(d), there, "%s %s", d, there ? "gone" : "left");
    free(o);
    free(d);
}

static void assert_job_dir(wfix *f, const char *job, int there)
{
    char *d = jpath(f, job, NULL);
    cr_assert_eq(exists(d), there, "%s %s", d, there ? "gone" : "left");
    free(d);
}

/* ---- recovery: the scan -------------------------------------------------- */

Test(recovery, keeps_and_offers_a_finished_output)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    cr_assert_eq(f.w->link.ntold, 0);
    qn_range r[NPARTS];
    write_output(&f, "job-1", 3, 2, r);
    upd d;
    upd_init(&d, "job-1", 3, 2, r);
    write_done(&f, "job-1", 3, 2, &d.u);

    qn_recovered got = qn_recovery_scan(f.w);
    cr_assert_eq(got.outputs, 1);
    cr_assert_eq(got.jobs, 1);
    cr_assert_eq(got.damaged, 0);
    cr_assert_eq(got.deleted, 0);
    assert_output(&f, "job-1", 3, 2, 1);

    cr_assert_eq(f.w->link.ntold, 1);
    const qn_told *t = &f.w->link.told[0];
    cr_assert_str_eq(t->ref.job_id, "job-1");
    cr_assert_eq(t->ref.kind, QUERN__TASK_KIND__MAP);
    cr_assert_eq(t->ref.task, 3);
    cr_assert_eq(t->ref.attempt, 2);
    Quern__TaskUpdate *u = quern__task_update__unpack(NULL, t->len, t->update);
    cr_assert_not_null(u);
    cr_assert_eq(u->state, QUERN__TASK_STATE__SUCCEEDED);
    cr_assert_str_eq(u->attempt->job_id, "job-1");
    cr_assert_eq(u->attempt->task, 3);
    cr_assert_eq(u->attempt->attempt, 2);
    cr_assert_eq(u->n_partitions, NPARTS);
    for (unsigned p = 0; p < NPARTS; p++) {
        cr_assert_eq(u->partitions[p]->bytes, r[p].length);
        cr_assert_eq(u->partitions[p]->raw_bytes, r[p].raw);
        cr_assert_eq(u->partitions[p]->records, r[p].records);
        cr_assert_eq(r[p].records, 3 + p);
    }
    quern__task_update__free_unpacked(u, NULL);
    wfix_stop(&f);
}

Test(recovery, counts_outputs_of_several_jobs)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    finished(&f, "job-1", 0, 1);
    finished(&f, "job-1", 1, 3);
    finished(&f, "job-2", 0, 1);
    qn_recovered got = qn_recovery_scan(f.w);
    cr_assert_eq(got.outputs, 3);
    cr_assert_eq(got.jobs, 2);
    cr_assert_eq(got.damaged, 0);
    cr_assert_eq(got.deleted, 0);
    cr_assert_eq(f.w->link.ntold, 3);
    cr_assert_not_null(told(&f, "job-1", 0, 1));
    cr_assert_not_null(told(&f, "job-1", 1, 3));
    cr_assert_not_null(told(&f, "job-2", 0, 1));
    wfix_stop(&f);
}

Test(recovery, deletes_a_truncated_output_and_its_update)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    /* One alone in its job, one beside an output kept. */
    finished(&f, "job-1", 4, 1);
    finished(&f, "job-2", 4, 1);
    finished(&f, "job-2", 5, 1);
    const char *jobs[] = {"job-1", "job-2"};
    for (size_t i = 0; i < QN_ARRAY_LEN(jobs); i++) {
        char *o = out_path(&f, jobs[i], 4, 1);
        struct stat st;
        cr_assert_eq(stat(o, &st), 0);
        cr_assert_eq(truncate(o, st.st_size - 5), 0);
        free(o);
    }

    qn_recovered got = qn_recovery_scan(f.w);
    cr_assert_eq(got.outputs, 1);
    cr_assert_eq(got.jobs, 1);
    cr_assert_eq(got.damaged, 2);
    cr_assert_eq(f.w->link.ntold, 1);
    cr_assert_not_null(told(&f, "job-2", 5, 1));
    assert_output(&f, "job-1", 4, 1, 0);
    assert_job_dir(&f, "job-1", 0);
    assert_output(&f, "job-2", 4, 1, 0);
    assert_output(&f, "job-2", 5, 1, 1);
    wfix_stop(&f);
}

Test(recovery, deletes_outputs_whose_update_disagrees_with_the_index)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    /* map 1: bytes, 2: raw bytes, 3: records of partition 1 are off. */
    for (unsigned map = 1; map <= 3; map++) {
        qn_range r[NPARTS];
        write_output(&f, "job-1", map, 1, r);
        upd d;
        upd_init(&d, "job-1", map, 1, r);
        if (map == 1)
            d.pi[1].bytes++;
        else if (map == 2)
            d.pi[1].raw_bytes--;
        else
            d.pi[1].records++;
        write_done(&f, "job-1", map, 1, &d.u);
    }
    finished(&f, "job-1", 9, 1); /* an honest one beside them */

    qn_recovered got = qn_recovery_scan(f.w);
    cr_assert_eq(got.outputs, 1);
    cr_assert_eq(got.jobs, 1);
    cr_assert_eq(got.damaged, 3);
    cr_assert_eq(f.w->link.ntold, 1);
    cr_assert_not_null(told(&f, "job-1", 9, 1));
    for (unsigned map = 1; map <= 3; map++)
        assert_output(&f, "job-1", map, 1, 0);
    assert_output(&f, "job-1", 9, 1, 1);
    wfix_stop(&f);
}

Test(recovery, deletes_outputs_whose_update_is_of_another_attempt)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    /* map 1: another job, 2: another task, 3: another attempt, 4: a
     * reduce, 5: not SUCCEEDED, 6: one partition fewer, 7: not an
     * update at all, 8: an empty file. */
    for (unsigned map = 1; map <= 8; map++) {
        qn_range r[NPARTS];
        write_output(&f, "job-1", map, 1, r);
        upd d;
        upd_init(&d, "job-1", map, 1, r);
        switch (map) {
        case 1: d.ref.job_id = (char *)"job-2"; break;
        case 2: d.ref.task = 77; break;
        case 3: d.ref.attempt = 2; break;
        case 4: d.ref.kind = QUERN__TASK_KIND__REDUCE; break;
        case 5: d.u.state = QUERN__TASK_STATE__FAILED; break;
        case 6: d.u.n_partitions = NPARTS - 1; break;
        }
        if (map <= 6) {
            write_done(&f, "job-1", map, 1, &d.u);
        } else {
            char name[64];
            snprintf(name, sizeof name, "map-%05u-a1.done", map);
            put_file(&f, "job-1", name, map == 7 ? "\xff\xff\xff\xff" : "");
        }
    }
    finished(&f, "job-1", 9, 1); /* an honest one beside them */
    qn_recovered got = qn_recovery_scan(f.w);
    cr_assert_eq(got.outputs, 1);
    cr_assert_eq(got.damaged, 8);
    cr_assert_eq(f.w->link.ntold, 1);
    cr_assert_not_null(told(&f, "job-1", 9, 1));
    for (unsigned map = 1; map <= 8; map++)
        assert_output(&f, "job-1", map, 1, 0);
    assert_output(&f, "job-1", 9, 1, 1);
    wfix_stop(&f);
}

Test(recovery, deletes_an_output_without_update_and_an_update_without_output)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    qn_range r[NPARTS];
    write_output(&f, "job-1", 1, 1, r); /* never told: no .done */
    upd d;
    upd_init(&d, "job-1", 2, 1, r);
    write_done(&f, "job-1", 2, 1, &d.u); /* its output is gone */
    finished(&f, "job-2", 2, 1);
    char *o = out_path(&f, "job-2", 2, 1);
    cr_assert_eq(unlink(o), 0); /* same, beside a kept output */
    free(o);
    finished(&f, "job-2", 5, 1);
    write_output(&f, "job-2", 7, 1, r); /* no .done, beside a kept output */

    qn_recovered got = qn_recovery_scan(f.w);
    cr_assert_eq(got.outputs, 1);
    cr_assert_eq(got.jobs, 1);
    cr_assert_eq(got.damaged, 2); /* the outputs without their update */
    assert_output(&f, "job-1", 1, 1, 0);
    assert_output(&f, "job-1", 2, 1, 0);
    assert_job_dir(&f, "job-1", 0);
    assert_output(&f, "job-2", 2, 1, 0);
    assert_output(&f, "job-2", 7, 1, 0);
    assert_output(&f, "job-2", 5, 1, 1);
    cr_assert_eq(f.w->link.ntold, 1);
    cr_assert_not_null(told(&f, "job-2", 5, 1));
    wfix_stop(&f);
}

Test(recovery, deletes_leftovers_and_folders_with_nothing_kept)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    finished(&f, "job-1", 3, 1);
    put_file(&f, "job-1", "map-00003-a2.spill0", "spilled");
    put_file(&f, "job-1", "map-00004-a1.ifile.tmp", "half written");
    put_file(&f, "job-1", "reduce-00001-a1/merge-0", "merged");
    put_file(&f, "job-1", "reduce-00001-a1/merge-1", "merged");
    put_file(&f, "job-1", "map-00005-a0.ifile", "attempt 0");
    put_file(&f, "job-2", "map-00001-a1.spill0", "spilled");
    put_file(&f, "job-2", "reduce-00000-a1/merge-0", "merged");
    put_file(&f, "bad name", "map-00001-a1.ifile", "not a job");
    char *stray = jpath(&f, "stray", NULL); /* a file, not a folder */
    cr_assert_eq(qn_write_file_atomic(stray, "x", 1), 0);

    qn_recovered got = qn_recovery_scan(f.w);
    cr_assert_eq(got.outputs, 1);
    cr_assert_eq(got.jobs, 1);
    cr_assert_eq(got.damaged, 0);
    /* job-1: spill, .tmp, reduce folder, attempt 0; job-2: spill,
     * reduce folder; "bad name"; stray. */
    cr_assert_eq(got.deleted, 8, "deleted %zu", got.deleted);

    /* job-1 keeps only its finished output. */
    assert_job_dir(&f, "job-1", 1);
    assert_output(&f, "job-1", 3, 1, 1);
    char *dir = jpath(&f, "job-1", NULL);
    size_t n = 0;
    DIR *dp = opendir(dir);
    cr_assert_not_null(dp);
    struct dirent *e;
    while ((e = readdir(dp)))
        if (e->d_name[0] != '.')
            n++;
    closedir(dp);
    cr_assert_eq(n, 2, "job-1 holds %zu entries", n);
    free(dir);

    assert_job_dir(&f, "job-2", 0);
    assert_job_dir(&f, "bad name", 0);
    cr_assert_not(exists(stray));
    free(stray);
    cr_assert_eq(f.w->link.ntold, 1);
    wfix_stop(&f);
}

Test(recovery, an_empty_jobs_folder_finds_nothing)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    qn_recovered got = qn_recovery_scan(f.w);
    cr_assert_eq(got.outputs + got.jobs + got.damaged + got.deleted, 0);
    cr_assert_eq(f.w->link.ntold, 0);
    wfix_stop(&f);
}

/* ---- recovery: note and drop --------------------------------------------- */

Test(recovery, a_noted_update_names_the_attempt_as_run_and_is_scanned_back)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    qn_range r[NPARTS];
    write_output(&f, "job-1", 6, 2, r);
    upd d;
    upd_init(&d, "job-1", 6, 2, r);
    /* The task lies about who it is; the worker knows what it ran. */
    d.ref.job_id = (char *)"job-9";
    d.ref.kind = QUERN__TASK_KIND__REDUCE;
    d.ref.task = 44;
    d.ref.attempt = 5;
    qn_attempt_ref ran = {
        .kind = QUERN__TASK_KIND__MAP, .task = 6, .attempt = 2};
    snprintf(ran.job_id, sizeof ran.job_id, "job-1");
    cr_assert_eq(qn_recovery_note(f.w, &ran, &d.u), 0);
    /* The caller's update is left as it was. */
    cr_assert_str_eq(d.u.attempt->job_id, "job-9");

    char *dp = done_path(&f, "job-1", 6, 2);
    size_t len = 0;
    FILE *fp = fopen(dp, "rb");
    cr_assert_not_null(fp, "%s not written", dp);
    uint8_t buf[4096];
    len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    free(dp);
    Quern__TaskUpdate *u = quern__task_update__unpack(NULL, len, buf);
    cr_assert_not_null(u);
    cr_assert_str_eq(u->attempt->job_id, "job-1");
    cr_assert_eq(u->attempt->kind, QUERN__TASK_KIND__MAP);
    cr_assert_eq(u->attempt->task, 6);
    cr_assert_eq(u->attempt->attempt, 2);
    cr_assert_eq(u->state, QUERN__TASK_STATE__SUCCEEDED);
    cr_assert_eq(u->n_partitions, NPARTS);
    quern__task_update__free_unpacked(u, NULL);

    qn_recovered got = qn_recovery_scan(f.w);
    cr_assert_eq(got.outputs, 1);
    cr_assert_eq(got.damaged, 0);
    const qn_told *t = told(&f, "job-1", 6, 2);
    cr_assert_not_null(t);
    cr_assert_eq(t->ref.kind, QUERN__TASK_KIND__MAP);
    u = quern__task_update__unpack(NULL, t->len, t->update);
    cr_assert_not_null(u);
    cr_assert_str_eq(u->attempt->job_id, "job-1");
    cr_assert_eq(u->attempt->task, 6);
    quern__task_update__free_unpacked(u, NULL);
    assert_output(&f, "job-1", 6, 2, 1);
    wfix_stop(&f);
}

Test(recovery, note_fails_without_the_jobs_folder)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    qn_range r[NPARTS] = {{0}};
    upd d;
    upd_init(&d, "job-1", 1, 1, r);
    qn_attempt_ref ran = {
        .kind = QUERN__TASK_KIND__MAP, .task = 1, .attempt = 1};
    snprintf(ran.job_id, sizeof ran.job_id, "job-1");
    cr_assert_eq(qn_recovery_note(f.w, &ran, &d.u), -1);
    assert_job_dir(&f, "job-1", 0);
    wfix_stop(&f);
}

Test(recovery, drop_deletes_exactly_the_outputs_named)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    finished(&f, "job-1", 1, 1);
    finished(&f, "job-1", 2, 1);
    finished(&f, "job-1", 1, 2);
    finished(&f, "job-2", 1, 1);
    qn_recovered got = qn_recovery_scan(f.w);
    cr_assert_eq(got.outputs, 4);
    cr_assert_eq(f.w->link.ntold, 4);

    Quern__AttemptRef a = wfix_ref("job-1", QUERN__TASK_KIND__MAP, 1, 1);
    Quern__AttemptRef reduce =
        wfix_ref("job-1", QUERN__TASK_KIND__REDUCE, 2, 1);
    Quern__AttemptRef bad = wfix_ref("../job-2", QUERN__TASK_KIND__MAP, 1, 1);
    Quern__AttemptRef gone = wfix_ref("job-3", QUERN__TASK_KIND__MAP, 1, 1);
    Quern__AttemptRef *refs[] = {&a, &reduce, &bad, &gone};
    Quern__DropOutputs drop = QUERN__DROP_OUTPUTS__INIT;
    drop.outputs = refs;
    drop.n_outputs = QN_ARRAY_LEN(refs);
    qn_recovery_drop(f.w, &drop);

    assert_output(&f, "job-1", 1, 1, 0);
    assert_output(&f, "job-1", 2, 1, 1); /* named only as a reduce */
    assert_output(&f, "job-1", 1, 2, 1); /* another attempt */
    assert_output(&f, "job-2", 1, 1, 1); /* named by a bad id */
    cr_assert_eq(f.w->link.ntold, 3);
    cr_assert_null(told(&f, "job-1", 1, 1));
    cr_assert_not_null(told(&f, "job-1", 2, 1));
    cr_assert_not_null(told(&f, "job-1", 1, 2));
    cr_assert_not_null(told(&f, "job-2", 1, 1));
    wfix_stop(&f);
}

/* ---- a worker started again on its work dir ------------------------------ */

Test(recovery, a_worker_restarted_on_its_work_dir_is_the_same_worker)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    char id[QN_WORKER_ID_MAX];
    snprintf(id, sizeof id, "%s", f.w->id);
    cr_assert_eq(f.w->incarnation, 1);
    cr_assert_geq(f.w->lock_fd, 0);
    finished(&f, "job-1", 2, 1);
    put_file(&f, "job-1", "map-00003-a1.spill0", "spilled");
    char *work = qn_strdup(f.w->work_dir);
    qn_worker_destroy(&f.w);

    for (uint64_t inc = 2; inc <= 3; inc++) {
        qn_worker_config cfg = {.master = f.endpoint,
                                .slots = 2,
                                .work_dir = work,
                                .task_bin = f.task};
        char err[512] = "";
        f.w = qn_worker_new(&cfg, err, sizeof err);
        cr_assert_not_null(f.w, "%s", err);
        cr_assert_str_eq(f.w->id, id);
        cr_assert_eq(f.w->incarnation, inc);
        cr_assert_eq(f.w->link.ntold, 1);
        cr_assert_not_null(told(&f, "job-1", 2, 1));
        assert_output(&f, "job-1", 2, 1, 1);
        char *spill = jpath(&f, "job-1", "map-00003-a1.spill0");
        cr_assert_not(exists(spill));
        free(spill);
        if (inc < 3)
            qn_worker_destroy(&f.w);
    }
    free(work);
    wfix_stop(&f);
}

/* ---- identity ------------------------------------------------------------ */

/* DIR/name's bytes (at most cap - 1, NUL-terminated); how many. */
static size_t slurp(const char *dir, const char *name, char *buf, size_t cap)
{
    char p[4096];
    qn_test_join(p, sizeof p, dir, name);
    FILE *fp = fopen(p, "rb");
    cr_assert_not_null(fp, "cannot open %s", p);
    size_t n = fread(buf, 1, cap - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return n;
}

Test(identity, is_kept_and_taken_again_with_the_next_incarnation)
{
    char *dir = qn_test_tmpdir();
    char err[512] = "";
    qn_identity a;
    cr_assert_eq(qn_identity_take(dir, "node7", &a, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(a.incarnation, 1);
    cr_assert_geq(a.lock_fd, 0);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "w-node7-%d-", (int)getpid());
    cr_assert_eq(strncmp(a.id, prefix, strlen(prefix)), 0, "id %s", a.id);
    cr_assert_eq(strlen(a.id), strlen(prefix) + 4, "id %s", a.id);
    cr_assert(qn_id_ok(a.id));

    /* The lock holds our pid; the id file holds the identity. */
    char buf[4096];
    slurp(dir, "worker.lock", buf, sizeof buf);
    char pid[32];
    snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    cr_assert_str_eq(buf, pid);
    size_t n = slurp(dir, "worker.id", buf, sizeof buf);
    Quern__WorkerIdentity *wi =
        quern__worker_identity__unpack(NULL, n, (uint8_t *)buf);
    cr_assert_not_null(wi);
    cr_assert_str_eq(wi->worker_id, a.id);
    cr_assert_eq(wi->incarnation, 1);
    quern__worker_identity__free_unpacked(wi, NULL);
    qn_identity_release(&a);
    cr_assert_eq(a.lock_fd, -1);
    qn_identity_release(&a); /* twice is fine */

    for (uint64_t inc = 2; inc <= 3; inc++) {
        qn_identity b;
        cr_assert_eq(qn_identity_take(dir, "other-host", &b, err, sizeof err),
                     0, "%s", err);
        cr_assert_str_eq(b.id, a.id);
        cr_assert_eq(b.incarnation, inc);
        n = slurp(dir, "worker.id", buf, sizeof buf);
        wi = quern__worker_identity__unpack(NULL, n, (uint8_t *)buf);
        cr_assert_not_null(wi);
        cr_assert_str_eq(wi->worker_id, a.id);
        cr_assert_eq(wi->incarnation, inc);
        quern__worker_identity__free_unpacked(wi, NULL);
        qn_identity_release(&b);
    }
    qn_rmtree(dir);
    free(dir);
}

Test(identity, a_work_dir_in_use_is_refused_naming_its_holder)
{
    char *dir = qn_test_tmpdir();
    char err[512] = "";
    qn_identity a, b;
    cr_assert_eq(qn_identity_take(dir, "h", &a, err, sizeof err), 0, "%s", err);
    /* flock is per open file description: a second open in this process
     * conflicts as another process's would. */
    char lock[4096];
    qn_test_join(lock, sizeof lock, dir, "worker.lock");
    int fd = open(lock, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(flock(fd, LOCK_EX | LOCK_NB), -1);
    cr_assert_eq(errno, EWOULDBLOCK);
    close(fd);

    err[0] = '\0';
    cr_assert_eq(qn_identity_take(dir, "h", &b, err, sizeof err), -1);
    cr_assert_eq(b.lock_fd, -1);
    char want[128];
    snprintf(want, sizeof want, "in use by another quern-worker (pid %d)",
             (int)getpid());
    cr_assert(strstr(err, want), "err: %s", err);
    cr_assert(strstr(err, dir), "err: %s", err);

    /* The refused take changed nothing; once let go, the dir is free. */
    qn_identity_release(&a);
    cr_assert_eq(qn_identity_take(dir, "h", &b, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(b.id, a.id);
    cr_assert_eq(b.incarnation, 2);
    qn_identity_release(&b);
    qn_rmtree(dir);
    free(dir);
}

Test(identity, a_running_workers_dir_is_refused)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    char err[512] = "";
    qn_identity b;
    cr_assert_eq(qn_identity_take(f.w->work_dir, "h", &b, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "(pid %d)", (int)getpid());
    cr_assert(strstr(err, want), "err: %s", err);
    char buf[4096];
    size_t n = slurp(f.w->work_dir, "worker.id", buf, sizeof buf);
    Quern__WorkerIdentity *wi =
        quern__worker_identity__unpack(NULL, n, (uint8_t *)buf);
    cr_assert_not_null(wi);
    cr_assert_str_eq(wi->worker_id, f.w->id);
    cr_assert_eq(wi->incarnation, f.w->incarnation);
    quern__worker_identity__free_unpacked(wi, NULL);
    wfix_stop(&f);
}

Test(identity, a_damaged_id_file_is_refused)
{
    char *dir = qn_test_tmpdir();
    char p[4096], err[512] = "";
    qn_test_join(p, sizeof p, dir, "worker.id");
    /* Garbage, then a well-formed identity whose id is no id. */
    Quern__WorkerIdentity bad = QUERN__WORKER_IDENTITY__INIT;
    bad.worker_id = (char *)"../escape";
    bad.incarnation = 4;
    uint8_t packed[256];
    size_t plen = quern__worker_identity__pack(&bad, packed);
    const struct {
        const void *data;
        size_t len;
    } cases[] = {
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12},
        {packed, plen},
    };
    for (size_t i = 0; i < QN_ARRAY_LEN(cases); i++) {
        cr_assert_eq(qn_write_file_atomic(p, cases[i].data, cases[i].len), 0);
        qn_identity a;
        err[0] = '\0';
        cr_assert_eq(qn_identity_take(dir, "h", &a, err, sizeof err), -1,
                     "case %zu", i);
        cr_assert_eq(a.lock_fd, -1);
        cr_assert(strstr(err, p), "err: %s", err);
        cr_assert(strstr(err, "damaged"), "err: %s", err);
        /* The file is left for someone to look at, and the lock let go. */
        cr_assert(exists(p));
        char lock[4096];
        qn_test_join(lock, sizeof lock, dir, "worker.lock");
        int fd = open(lock, O_RDWR);
        cr_assert_geq(fd, 0);
        cr_assert_eq(flock(fd, LOCK_EX | LOCK_NB), 0, "lock kept, case %zu", i);
        close(fd);
    }
    /* Removed, the dir is taken by a new worker. */
    cr_assert_eq(unlink(p), 0);
    qn_identity a;
    cr_assert_eq(qn_identity_take(dir, "h", &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(a.incarnation, 1);
    qn_identity_release(&a);
    qn_rmtree(dir);
    free(dir);
}

Test(identity, a_fresh_identity_is_new_and_holds_no_lock)
{
    qn_identity a, b;
    qn_identity_fresh("my.host_name", &a);
    qn_identity_fresh("my.host_name", &b);
    cr_assert_eq(a.incarnation, 1);
    cr_assert_eq(a.lock_fd, -1);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "w-my-host-name-%d-", (int)getpid());
    cr_assert_eq(strncmp(a.id, prefix, strlen(prefix)), 0, "id %s", a.id);
    cr_assert(qn_id_ok(a.id));
    cr_assert(qn_id_ok(b.id));
    qn_identity_release(&a); /* never taken: fine */
    cr_assert_eq(a.lock_fd, -1);
}
