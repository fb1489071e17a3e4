/*
 * taskrun.c -- see taskrun.h.
 */
#include "taskrun.h"

#include "layout.h"
#include "log.h"
#include "maptask.h"
#include "reducetask.h"
#include "shipped.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
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
 * A map or reduce works in its attempt's folder (layout.h), the job's
 * shipped files placed in it (shipped.h), so the job's code opens them
 * by name: the folder made, filled and entered. 0, or -1 with t->fail.
 */
static int s_enter_workdir(quern_task *t)
{
    const Quern__TaskSpec *sp = t->spec;
    if (sp->kind != QUERN__TASK_KIND__MAP &&
        sp->kind != QUERN__TASK_KIND__REDUCE)
        return 0;
    if (sp->work_dir[0] != '/')
        return qn_task_failf(t, "its work dir '%s' is not an absolute path",
                             sp->work_dir);
    qn_buf dir = {0};
    qn_attempt_dir(&dir, sp->work_dir, sp->job_id,
                   sp->kind == QUERN__TASK_KIND__MAP, sp->task, sp->attempt);
    int e = qn_mkdirs(dir.data, 0755);
    int fd = e < 0 ? -1 : open(dir.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char why[900] = "";
    if (e == 0 && fd < 0)
        e = -errno;
    if (e < 0)
        snprintf(why, sizeof why, "cannot make its folder: %s", strerror(-e));
    else if (qn_shipped_place(sp, sp->work_dir, fd, why, sizeof why) == 0 &&
             fchdir(fd) < 0)
        snprintf(why, sizeof why, "cannot enter it: %s", strerror(errno));
    if (fd >= 0)
        close(fd);
    if (why[0])
        qn_task_failf(t, "working folder %s: %s", dir.data, why);
    qn_buf_release(&dir);
    return why[0] ? -1 : 0;
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
    int rc = s_enter_workdir(t) < 0 ? -1 : qn_taskrun_run(t, parts);
    int sent = qn_task_report_end(t, rc, parts);
    if (rc < 0)
        fprintf(stderr, "task failed: %s\n", t->fail);
    free(parts);
    qn_task_release(t);
    return rc == 0 && sent == 0 ? 0 : 1;
}
