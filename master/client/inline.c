/*
 * inline.c -- see inline.h.
 */
#include "inline.h"

#include "compress.h"
#include "counters.h"
#include "layout.h"
#include "shipped.h"
#include "split.h"
#include "taskrun.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* A job run inline: its tasks' shared spec, where they work, and what
 * they have produced so far. */
typedef struct {
    const Quern__JobSpec *js;
    char id[32];        /* the job's id: inline-PID */
    qn_splits sp;       /* the maps' input splits */
    qn_buf dir;         /* the work dir, removed at the end */
    int made_dir;       /* it was made */
    int cwd;            /* the caller's working directory while tasks run
                           in the job's (-1: not entered) */
    Quern__TaskSpec ts; /* what every task shares */
    char **outs;        /* map i's output file (NULL: not done) */
    qn_range **parts;   /* map i's partitions' ranges */
    qn_counters totals; /* the tasks' counters, added up */
    size_t maps_run, reduces_run;
    char warning[512]; /* the first map's (binary input) */
} s_job;

/*
 * Run one task (ts) in this process, adding its counters to the job's. A
 * map fills parts; a reduce reads the maps' outputs named in the job.
 * Returns 0 or -1 with the reason in why.
 */
static int s_run_task(s_job *j, qn_range *parts, char *why, size_t cap)
{
    static qn_gasp gasp; /* no worker reads it */
    quern_task task = {.ctl = -1, .out_fd = -1, .gasp = &gasp};
    quern_task *t = &task;
    qn_task_init(t, &j->ts);
    if (j->ts.kind == QUERN__TASK_KIND__REDUCE) {
        t->local_maps = j->outs;
        t->local_parts = j->parts;
        t->nlocal = j->sp.n;
    }
    int rc = qn_taskrun_run(t, parts);
    qn_counters_fold(&j->totals, &t->counters);
    if (rc == 0 && !j->warning[0])
        memcpy(j->warning, t->warning, sizeof j->warning);
    if (rc < 0)
        snprintf(why, cap, "%.1000s", t->fail);
    t->spec = NULL; /* ours, not unpacked */
    qn_task_release(t);
    return rc;
}

/* --inline reads files and writes a folder, not datasets. 0, or -1 with
 * err. */
static int s_check_paths(const Quern__JobSpec *js, char *err, size_t errcap)
{
    if (js->output_dataset) {
        snprintf(err, errcap,
                 "--inline writes to a folder, not to dataset "
                 "%s: give --output a path (./%s)",
                 js->output, js->output);
        return -1;
    }
    for (size_t i = 0; i < js->n_inputs; i++) {
        if (!strchr(js->inputs[i]->given, '/')) {
            snprintf(err, errcap,
                     "--inline reads files, not dataset %s: give --input a "
                     "path",
                     js->inputs[i]->given);
            return -1;
        }
    }
    return 0;
}

/* The input splits, the output folder and a work dir. 0, or -1 with err
 * (j is released by the caller either way). */
static int s_prepare(s_job *j, char *err, size_t errcap)
{
    const Quern__JobSpec *js = j->js;
    const char **given = qn_calloc(js->n_inputs, sizeof *given);
    const char **paths = qn_calloc(js->n_inputs, sizeof *paths);
    for (size_t i = 0; i < js->n_inputs; i++) {
        given[i] = js->inputs[i]->given;
        paths[i] = js->inputs[i]->path;
    }
    qn_split_opts so = {
        .split_size = js->split_size,
        .whole = js->input_kind == QUERN__INPUT_KIND__WHOLE,
        .align =
            js->input_kind == QUERN__INPUT_KIND__FIXED ? js->record_size : 0,
    };
    int rc =
        qn_split_inputs(given, paths, js->n_inputs, &so, &j->sp, err, errcap);
    free(given);
    free(paths);
    if (rc == 0 && j->sp.n == 0) {
        snprintf(err, errcap, "the input holds no data");
        rc = -1;
    }
    if (rc == 0 && qn_output_dir_prepare(js->output, err, errcap) < 0)
        rc = -1;
    const char *tmp = getenv("TMPDIR");
    qn_buf_printf(&j->dir, "%s/quern-inline-XXXXXX",
                  tmp && *tmp ? tmp : "/tmp");
    if (rc == 0 && !mkdtemp(j->dir.data)) {
        snprintf(err, errcap, "cannot create a work dir in %s: %s",
                 tmp && *tmp ? tmp : "/tmp", strerror(errno));
        rc = -1;
    }
    j->made_dir = rc == 0;
    /* Absolute, since tasks run in a folder of their own (s_enter). */
    char abs[PATH_MAX];
    if (rc == 0 && realpath(j->dir.data, abs)) {
        j->dir.len = 0;
        qn_buf_printf(&j->dir, "%s", abs);
    }
    return rc;
}

/*
 * Tasks run in a working folder of their own, WORK/task, as on a worker
 * each attempt runs in its folder: the files the job ships (data[i] the
 * bytes of js->files[i]) cached in the work dir and placed there
 * (shipped.h), and this process moved into it until s_leave. 0, or -1
 * with err.
 */
static int s_enter(s_job *j, const ProtobufCBinaryData *data, char *err,
                   size_t errcap)
{
    const Quern__JobSpec *js = j->js;
    for (size_t i = 0; i < js->n_files; i++)
        if (qn_shipped_cache(j->dir.data, js->files[i]->hash, data[i].data,
                             data[i].len, err, errcap) < 0)
            return -1;
    qn_buf dir = {0};
    qn_buf_printf(&dir, "%s/task", j->dir.data);
    int fd = -1, rc = mkdir(dir.data, 0755) < 0 ? -1 : 0;
    if (rc == 0 && (fd = open(dir.data, O_RDONLY | O_DIRECTORY)) < 0)
        rc = -1;
    if (rc < 0)
        snprintf(err, errcap, "cannot make the tasks' folder %s: %s", dir.data,
                 strerror(errno));
    if (rc == 0)
        rc = qn_shipped_place(&j->ts, j->dir.data, fd, err, errcap);
    if (rc == 0 && (j->cwd = open(".", O_RDONLY | O_DIRECTORY)) < 0) {
        snprintf(err, errcap, "cannot open the working directory: %s",
                 strerror(errno));
        rc = -1;
    }
    if (rc == 0 && fchdir(fd) < 0) {
        snprintf(err, errcap, "cannot enter the tasks' folder %s: %s", dir.data,
                 strerror(errno));
        close(j->cwd);
        j->cwd = -1;
        rc = -1;
    }
    if (fd >= 0)
        close(fd);
    qn_buf_release(&dir);
    return rc;
}

/* Back to the caller's working directory, if s_enter left it. */
static void s_leave(s_job *j)
{
    if (j->cwd < 0)
        return;
    if (fchdir(j->cwd) < 0)
        fprintf(stderr, "quern: cannot return to the working directory: %s\n",
                strerror(errno));
    close(j->cwd);
    j->cwd = -1;
}

/* Run map i (its split's pieces as inputs). 0, or -1 with why. */
static int s_run_map(s_job *j, size_t i, char *why, size_t cap)
{
    const qn_split *s = &j->sp.splits[i];
    Quern__InputPiece *pieces = qn_calloc(s->n, sizeof *pieces);
    Quern__InputPiece **pp = qn_calloc(s->n, sizeof *pp);
    qn_task_spec_pieces(s, pieces, pp);
    j->ts.kind = QUERN__TASK_KIND__MAP;
    j->ts.task = (uint32_t)i;
    j->ts.inputs = pp;
    j->ts.n_inputs = s->n;
    j->parts[i] = qn_calloc(j->js->nreduce, sizeof *j->parts[i]);
    char msg[1100];
    j->maps_run++;
    int rc = s_run_task(j, j->parts[i], msg, sizeof msg);
    if (rc < 0) {
        snprintf(why, cap, "map %zu (%s at %llu) failed: %s", i,
                 s->pieces[0].name, (unsigned long long)s->pieces[0].offset,
                 msg);
    } else {
        qn_buf b = {0};
        qn_map_output_path(&b, j->dir.data, j->id, (unsigned)i, 1);
        j->outs[i] = b.data;
    }
    j->ts.inputs = NULL;
    j->ts.n_inputs = 0;
    free(pieces);
    free(pp);
    return rc;
}

/* Run reduce p and put its part file in place. 0, or -1 with why. */
static int s_run_reduce(s_job *j, unsigned p, char *why, size_t cap)
{
    j->ts.kind = QUERN__TASK_KIND__REDUCE;
    j->ts.task = p;
    char msg[1100];
    j->reduces_run++;
    if (s_run_task(j, NULL, msg, sizeof msg) < 0) {
        snprintf(why, cap, "reduce %u failed: %s", p, msg);
        return -1;
    }
    return qn_output_part_commit(j->js->output, j->id, p, 1,
                                 qn_compress_ext((int)j->js->output_codec), why,
                                 cap);
}

/* Every map, then every reduce, then the output's commit, each counted in
 * st as it is done. Returns 0, or -1 with why (the output cleaned). */
static int s_run_tasks(s_job *j, Quern__JobStatus *st, char *why, size_t cap)
{
    int rc = 0;
    for (size_t i = 0; i < j->sp.n && rc == 0; i++)
        if ((rc = s_run_map(j, i, why, cap)) == 0)
            st->maps_done++;
    for (unsigned p = 0; p < j->js->nreduce && rc == 0; p++)
        if ((rc = s_run_reduce(j, p, why, cap)) == 0)
            st->reduces_done++;
    if (rc == 0)
        rc = qn_output_dir_commit(j->js->output, why, cap);
    if (rc < 0)
        qn_output_dir_clean(j->js->output);
    return rc;
}

/* The job's counters, its attempts included, as the master reports them. */
static void s_status_counters(s_job *j, Quern__JobStatus *st)
{
    qn_counters_add(&j->totals, "", "map_attempts", (long long)j->maps_run);
    qn_counters_add(&j->totals, "", "reduce_attempts",
                    (long long)j->reduces_run);
    st->counters = qn_calloc(j->totals.n, sizeof *st->counters);
    for (size_t i = 0; i < j->totals.n; i++) {
        Quern__Counter *c = qn_malloc(sizeof *c);
        quern__counter__init(c);
        c->name = qn_strdup(j->totals.v[i].name);
        c->value = j->totals.v[i].value;
        st->counters[i] = c;
    }
    st->n_counters = j->totals.n;
}

/* The end state, as the master would report it. */
static void s_status_end(s_job *j, Quern__JobStatus *st, int failed,
                         const char *why, int64_t start)
{
    s_status_counters(j, st);
    st->state =
        failed ? QUERN__JOB_STATE__JOB_FAILED : QUERN__JOB_STATE__JOB_SUCCEEDED;
    free(st->error);
    st->error = qn_strdup(failed ? why : "");
    free(st->warning);
    st->warning = qn_strdup(j->warning);
    st->map_progress = st->maps ? (double)st->maps_done / st->maps : 1;
    st->reduce_progress =
        st->reduces ? (double)st->reduces_done / st->reduces : 1;
    st->elapsed_ms = (uint64_t)(qn_now_ms() - start);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        st->task_rss_peak = (uint64_t)ru.ru_maxrss * 1024;
}

static void s_job_release(s_job *j)
{
    for (size_t i = 0; i < j->sp.n && j->outs; i++) {
        free(j->outs[i]);
        free(j->parts[i]);
    }
    free(j->outs);
    free(j->parts);
    s_leave(j);
    if (j->made_dir)
        qn_rmtree(j->dir.data);
    qn_buf_release(&j->dir);
    qn_splits_release(&j->sp);
    qn_counters_release(&j->totals);
}

int qn_inline_run(const Quern__JobSpec *js, const ProtobufCBinaryData *files,
                  Quern__JobStatus *st, char *err, size_t errcap)
{
    quern__job_status__init(st);
    int64_t start = qn_now_ms();
    s_job j = {.js = js, .cwd = -1};
    snprintf(j.id, sizeof j.id, "inline-%d", (int)getpid());
    st->job_id = qn_strdup(j.id);
    st->name = qn_strdup(js->name);
    st->output = qn_strdup(js->output);
    st->error = qn_strdup("");
    st->warning = qn_strdup("");
    if (s_check_paths(js, err, errcap) < 0)
        return 2;
    if (s_prepare(&j, err, errcap) < 0) {
        s_job_release(&j);
        return 2;
    }
    st->submitted_at_ms = (uint64_t)qn_wall_ms();
    st->maps = (uint32_t)j.sp.n;
    st->reduces = js->nreduce;
    quern__task_spec__init(&j.ts);
    qn_task_spec_from_job(&j.ts, js);
    j.ts.job_id = j.id;
    j.ts.work_dir = j.dir.data;
    j.ts.attempt = 1;
    if (s_enter(&j, files, err, errcap) < 0) {
        s_job_release(&j);
        return 2;
    }
    j.outs = qn_calloc(j.sp.n, sizeof *j.outs);
    j.parts = qn_calloc(j.sp.n, sizeof *j.parts);
    char why[1200] = "";
    int failed = s_run_tasks(&j, st, why, sizeof why) < 0;
    s_status_end(&j, st, failed, why, start);
    s_job_release(&j);
    return failed ? 1 : 0;
}

void qn_inline_release(Quern__JobStatus *st)
{
    for (size_t i = 0; i < st->n_counters; i++) {
        free(st->counters[i]->name);
        free(st->counters[i]);
    }
    free(st->counters);
    free(st->job_id);
    free(st->name);
    free(st->output);
    free(st->error);
    free(st->warning);
    quern__job_status__init(st);
}
