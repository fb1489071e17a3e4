/*
 * inline.c -- see inline.h.
 */
#include "inline.h"

#include "split.h"
#include "taskrun.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

/* Add v to the job's counter called name. */
static void s_count(Quern__JobStatus *st, const char *name, long long v)
{
    for (size_t i = 0; i < st->n_counters; i++) {
        if (strcmp(st->counters[i]->name, name) == 0) {
            st->counters[i]->value += v;
            return;
        }
    }
    st->counters =
        qn_realloc(st->counters, (st->n_counters + 1) * sizeof *st->counters);
    Quern__Counter *c = qn_malloc(sizeof *c);
    quern__counter__init(c);
    c->name = qn_strdup(name);
    c->value = v;
    st->counters[st->n_counters++] = c;
}

/*
 * Run one task in this process. A reduce reads the maps' outputs named in
 * maps. Returns 0 or -1 with the reason in why.
 */
static int s_run_task(Quern__TaskSpec *ts, qn_range *parts, char **maps,
                      qn_range **map_parts, size_t nmaps, Quern__JobStatus *st,
                      char *why, size_t cap)
{
    static qn_gasp gasp; /* no worker reads it */
    quern_task task = {.ctl = -1, .out_fd = -1, .gasp = &gasp};
    quern_task *t = &task;
    qn_task_init(t, ts);
    t->local_maps = maps;
    t->local_parts = map_parts;
    t->nlocal = nmaps;
    int rc = qn_taskrun_run(t, parts);
    for (size_t i = 0; i < t->counters.n; i++)
        s_count(st, t->counters.v[i].name, t->counters.v[i].value);
    if (rc < 0)
        snprintf(why, cap, "%s", t->fail);
    t->spec = NULL; /* ours, not unpacked */
    qn_task_release(t);
    return rc;
}

static int64_t s_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int qn_inline_run(const Quern__JobSpec *js, Quern__JobStatus *st, char *err,
                  size_t errcap)
{
    quern__job_status__init(st);
    int64_t start = qn_now_ms();
    char id[32];
    snprintf(id, sizeof id, "inline-%d", (int)getpid());
    st->job_id = qn_strdup(id);
    st->name = qn_strdup(js->name);
    st->output = qn_strdup(js->output);
    st->error = qn_strdup("");
    if (js->output_dataset) {
        snprintf(err, errcap,
                 "--inline writes to a folder, not to dataset "
                 "%s: give --output a path (./%s)",
                 js->output, js->output);
        return 2;
    }
    const char **given = qn_calloc(js->n_inputs, sizeof *given);
    const char **paths = qn_calloc(js->n_inputs, sizeof *paths);
    for (size_t i = 0; i < js->n_inputs; i++) {
        given[i] = js->inputs[i]->given;
        paths[i] = js->inputs[i]->path;
        if (!strchr(given[i], '/')) {
            snprintf(err, errcap,
                     "--inline reads files, not dataset %s: give --input a "
                     "path",
                     given[i]);
            free(given);
            free(paths);
            return 2;
        }
    }
    qn_split_opts so = {
        .split_size = js->split_size,
        .whole = js->input_kind == QUERN__INPUT_KIND__WHOLE,
        .align =
            js->input_kind == QUERN__INPUT_KIND__FIXED ? js->record_size : 0,
    };
    qn_splits sp;
    memset(&sp, 0, sizeof sp);
    int rc = qn_split_inputs(given, paths, js->n_inputs, &so, &sp, err, errcap);
    free(given);
    free(paths);
    if (rc == 0 && sp.n == 0) {
        snprintf(err, errcap, "the input holds no data");
        rc = -1;
    }
    if (rc == 0 && qn_output_dir_prepare(js->output, err, errcap) < 0)
        rc = -1;
    qn_buf dir = {0};
    const char *tmp = getenv("TMPDIR");
    qn_buf_printf(&dir, "%s/quern-inline-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (rc == 0 && !mkdtemp(dir.data)) {
        snprintf(err, errcap, "cannot create a work dir in %s: %s",
                 tmp && *tmp ? tmp : "/tmp", strerror(errno));
        rc = -1;
    }
    if (rc < 0) {
        qn_splits_release(&sp);
        qn_buf_release(&dir);
        return 2;
    }

    st->submitted_at_ms = (uint64_t)s_wall_ms();
    st->maps = (uint32_t)sp.n;
    st->reduces = js->nreduce;

    Quern__TaskSpec ts = QUERN__TASK_SPEC__INIT;
    qn_task_spec_from_job(&ts, js);
    ts.job_id = id;
    ts.work_dir = dir.data;
    ts.attempt = 1;

    char why[1200] = "";
    char **outs = qn_calloc(sp.n, sizeof *outs);
    qn_range **parts = qn_calloc(sp.n, sizeof *parts);
    int failed = 0;
    size_t map_runs = 0, reduce_runs = 0;
    for (size_t i = 0; i < sp.n && !failed; i++) {
        const qn_split *s = &sp.splits[i];
        Quern__InputPiece *pieces = qn_calloc(s->n, sizeof *pieces);
        Quern__InputPiece **pp = qn_calloc(s->n, sizeof *pp);
        for (size_t k = 0; k < s->n; k++) {
            quern__input_piece__init(&pieces[k]);
            pieces[k].path = s->pieces[k].path;
            pieces[k].name = s->pieces[k].name;
            pieces[k].offset = s->pieces[k].offset;
            pieces[k].length = s->pieces[k].length;
            pieces[k].file_size = s->pieces[k].file_size;
            pp[k] = &pieces[k];
        }
        ts.kind = QUERN__TASK_KIND__MAP;
        ts.task = (uint32_t)i;
        ts.inputs = pp;
        ts.n_inputs = s->n;
        parts[i] = qn_calloc(js->nreduce, sizeof *parts[i]);
        char msg[1100];
        map_runs++;
        if (s_run_task(&ts, parts[i], NULL, NULL, 0, st, msg, sizeof msg) < 0) {
            snprintf(why, sizeof why, "map %zu (%s at %llu) failed: %s", i,
                     s->pieces[0].name, (unsigned long long)s->pieces[0].offset,
                     msg);
            failed = 1;
        } else {
            qn_buf b = {0};
            qn_map_output_path(&b, dir.data, id, (unsigned)i, 1);
            outs[i] = b.data;
            st->maps_done++;
        }
        free(pieces);
        free(pp);
    }
    ts.inputs = NULL;
    ts.n_inputs = 0;
    for (unsigned p = 0; p < js->nreduce && !failed; p++) {
        ts.kind = QUERN__TASK_KIND__REDUCE;
        ts.task = p;
        char msg[1100];
        reduce_runs++;
        if (s_run_task(&ts, NULL, outs, parts, sp.n, st, msg, sizeof msg) < 0) {
            snprintf(why, sizeof why, "reduce %u failed: %s", p, msg);
            failed = 1;
        } else if (qn_output_part_commit(js->output, id, p, 1, why,
                                         sizeof why) < 0) {
            failed = 1;
        } else {
            st->reduces_done++;
        }
    }
    if (!failed && qn_output_dir_commit(js->output, why, sizeof why) < 0)
        failed = 1;
    if (failed)
        qn_output_dir_clean(js->output);
    s_count(st, "map_attempts", (long long)map_runs);
    s_count(st, "reduce_attempts", (long long)reduce_runs);

    st->state =
        failed ? QUERN__JOB_STATE__JOB_FAILED : QUERN__JOB_STATE__JOB_SUCCEEDED;
    free(st->error);
    st->error = qn_strdup(failed ? why : "");
    st->map_progress = st->maps ? (double)st->maps_done / st->maps : 1;
    st->reduce_progress =
        st->reduces ? (double)st->reduces_done / st->reduces : 1;
    st->elapsed_ms = (uint64_t)(qn_now_ms() - start);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        st->task_rss_peak = (uint64_t)ru.ru_maxrss * 1024;
    for (size_t i = 0; i < sp.n; i++) {
        free(outs[i]);
        free(parts[i]);
    }
    free(outs);
    free(parts);
    qn_rmtree(dir.data);
    qn_buf_release(&dir);
    qn_splits_release(&sp);
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
    quern__job_status__init(st);
}
