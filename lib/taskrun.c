/*
 * taskrun.c -- see taskrun.h.
 */
#include "taskrun.h"

#include "confine.h"
#include "layout.h"
#include "log.h"
#include "maptask.h"
#include "reducetask.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* COPY: pull one shard into the file the worker named (output_dir). */
static int s_copy_run(quern_task *t)
{
    if (t->spec->n_inputs != 1 || !t->spec->output_dir[0])
        return qn_task_failf(t, "a copy needs one input and a destination");
    const Quern__InputPiece *pc = t->spec->inputs[0];
    uint64_t got = 0;
    if (qn_task_pull(t, pc, t->spec->output_dir, &got) < 0)
        return -1;
    t->out_size = got;
    t->out_crc = pc->crc;
    return 0;
}

int qn_taskrun_run(quern_task *t, qn_range *parts)
{
    if (t->spec->kind == QUERN__TASK_KIND__COPY)
        return s_copy_run(t);
    if (!t->codec)
        return qn_task_failf(t, "bad codec %u or level %u", t->spec->codec,
                             t->spec->compress_level);
    if (qn_task_load(t) < 0)
        return -1;
    if (t->spec->kind == QUERN__TASK_KIND__MAP)
        return qn_map_run(t, parts);
    return qn_reduce_run(t);
}

/* The page shared with the worker on QN_GASP_FD, or NULL without one. */
static qn_gasp *s_map_gasp(void)
{
    if (fcntl(QN_GASP_FD, F_GETFD) < 0)
        return NULL;
    void *g = mmap(NULL, sizeof(qn_gasp), PROT_READ | PROT_WRITE, MAP_SHARED,
                   QN_GASP_FD, 0);
    close(QN_GASP_FD);
    return g == MAP_FAILED ? NULL : g;
}

/*
 * A task in its sandbox names the files it writes relative to its folder
 * ("tmp/spill0"): in the failure it reports, those names are made whole
 * again, so that the job's error says where the file is.
 */
static void s_whole_paths(quern_task *t)
{
    if (t->scratch[0] == '/' || !t->fail[0])
        return;
    qn_buf dir = {0}, out = {0};
    const Quern__TaskSpec *sp = t->spec;
    qn_attempt_dir(&dir, sp->work_dir, sp->job_id,
                   sp->kind == QUERN__TASK_KIND__MAP, sp->task, sp->attempt);
    const char *tail = QN_ATTEMPT_TMP "/";
    size_t tl = strlen(tail);
    for (const char *p = t->fail; *p; p++) {
        int at_word = p == t->fail || strchr(" (\"'", p[-1]);
        if (at_word && strncmp(p, tail, tl) == 0)
            qn_buf_printf(&out, "%s/", dir.data);
        qn_buf_printf(&out, "%c", *p);
    }
    snprintf(t->fail, sizeof t->fail, "%s", out.data);
    qn_buf_release(&dir);
    qn_buf_release(&out);
}

int qn_taskrun_main(int ctl, int spec_fd)
{
    static qn_gasp no_gasp; /* when the worker gave none */
    quern_task task = {.ctl = ctl, .out_fd = -1, .gasp = s_map_gasp()};
    quern_task *t = &task;
    if (!t->gasp)
        t->gasp = &no_gasp;
    /* A task outlives neither its worker nor a worker killed with -9. */
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        return 3;
    t->spec = qn_task_read_spec(spec_fd);
    close(spec_fd);
    /* Programs a plugin runs must not hold the worker's channel open. */
    fcntl(ctl, F_SETFD, FD_CLOEXEC);
    if (!t->spec)
        return 2;
    qn_log_init("quern-task", QN_LOG_INFO);
    qn_task_init(t, t->spec);
    qn_range *parts = t->spec->kind == QUERN__TASK_KIND__MAP
                          ? qn_calloc(t->spec->nreduce, sizeof *parts)
                          : NULL;
    pid_t broker = 0;
    int rc = qn_task_confine(t, &broker);
    if (rc == 0)
        rc = qn_taskrun_run(t, parts);
    if (rc < 0)
        s_whole_paths(t);
    int sent = qn_task_report_end(t, rc, parts);
    if (rc < 0)
        fprintf(stderr, "task failed: %s\n", t->fail);
    free(parts);
    qn_task_release(t);
    if (broker > 0) { /* its channel may live on in the job's children */
        kill(broker, SIGKILL);
        waitpid(broker, NULL, 0);
    }
    return rc == 0 && sent == 0 ? 0 : 1;
}
