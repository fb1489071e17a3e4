/*
 * timers.c -- see timers.h.
 */
#include "timers.h"

#include "api.h"
#include "from_clients.h"
#include "from_workers.h"
#include "actions.h"
#include "plugins.h"
#include "logs.h"
#include "commit.h"
#include "datasets.h"
#include "status.h"
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

/* Whatever falls due by now: uploads and log requests that timed out, the
 * scheduler's deadlines, status pushed to the clients that watch a job. */
void qn_timers_run(qn_master *m, int64_t now)
{
    if (now >= qn_datasets_puts_due(m))
        qn_datasets_puts_check(m, now);
    if (now >= qn_logs_due(m))
        qn_logs_check(m, now);
    if (now >= qn_sched_deadline(m->sched)) {
        qn_sched_tick(m->sched, now);
        qn_actions_run(m, now);
    }
    for (int i = 0; i < m->njobs; i++) {
        qn_job *j = &m->jobs[i];
        if (j->nwatchers &&
            now >= j->last_push + (j->dirty ? PUSH_MIN_MS : PUSH_MAX_MS))
            qn_status_push(m, i, now);
    }
}
