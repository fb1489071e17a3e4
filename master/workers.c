/*
 * workers.c -- see workers.h.
 */
#include "workers.h"

#include "events.h"
#include "send.h"
#include "job.h"
#include "catalog.h"
#include "curve.h"
#include "droplog.h"
#include "http.h"
#include "ifile.h"
#include "jobspec.h"
#include "log.h"
#include "proc.h"
#include "ratelimit.h"
#include "sched.h"
#include "sha256.h"
#include "split.h"
#include "statusjson.h"
#include "util.h"
#include "wire.h"
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

int qn_workers_find(qn_master *m, const char *id)
{
    /* Newest first: a worker that joined again has a new handle. */
    for (int i = m->nworkers - 1; i >= 0; i--)
        if (strcmp(m->workers[i].id, id) == 0)
            return i;
    return -1;
}

/* The handle of the live worker with this id, or -1. */
int qn_workers_alive_id(qn_master *m, const char *id)
{
    int w = qn_workers_find(m, id);
    return w >= 0 && qn_sched_worker_alive(m->sched, w) ? w : -1;
}

unsigned qn_workers_data_live(qn_master *m)
{
    unsigned n = 0;
    for (int w = 0; w < m->nworkers; w++)
        if (m->workers[w].has_data && qn_sched_worker_alive(m->sched, w))
            n++;
    return n;
}

/* Workers alive and dead, and the slots of the live ones, busy or not. */
void qn_workers_counts(qn_master *m, unsigned *alive, unsigned *dead,
                       unsigned *slots, unsigned *busy)
{
    *alive = *dead = *slots = *busy = 0;
    for (int w = 0; w < m->nworkers; w++) {
        if (!qn_sched_worker_alive(m->sched, w)) {
            (*dead)++;
            continue;
        }
        (*alive)++;
        *slots += m->workers[w].slots;
        *busy += qn_sched_worker_busy(m->sched, w);
    }
}

int qn_jobs_find(qn_master *m, const char *id)
{
    for (int i = 0; i < m->njobs; i++)
        if (strcmp(m->jobs[i].id, id) == 0)
            return i;
    return -1;
}

int qn_jobs_running(const qn_master *m)
{
    int n = 0;
    for (int i = 0; i < m->njobs; i++)
        n += m->jobs[i].state == QUERN__JOB_STATE__JOB_RUNNING;
    return n;
}

/* Jobs by state: [running, succeeded, failed, cancelled]. */
void qn_jobs_by_state(qn_master *m, unsigned out[4])
{
    memset(out, 0, 4 * sizeof *out);
    for (int i = 0; i < m->njobs; i++)
        if (m->jobs[i].state >= 0 && m->jobs[i].state < 4)
            out[m->jobs[i].state]++;
}
