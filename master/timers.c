/*
 * timers.c -- see timers.h.
 */
#include "timers.h"

#include "actions.h"
#include "datasets.h"
#include "drain.h"
#include "logs.h"
#include "replicas.h"
#include "status.h"
#include "util.h"

#include <stdlib.h>

int64_t qn_timers_next(const qn_master *m)
{
    int64_t due = qn_deadline_next(&m->due);
    int64_t sched = qn_sched_deadline(m->sched);
    return sched < due ? sched : due;
}

void qn_timers_run(qn_master *m, int64_t now)
{
    /* Pushes go last, so watchers see what this turn's deadlines did. */
    qn_due *push = NULL;
    size_t npush = 0, cap = 0;
    int puts = 0, logs = 0, heal = 0;
    qn_due d;
    while (qn_deadline_pop(&m->due, now, &d)) {
        switch (d.kind) {
        case QN_DUE_PUT: puts = 1; break;
        case QN_DUE_LOGS: logs = 1; break;
        case QN_DUE_HEAL: heal = 1; break;
        case QN_DUE_DRAIN: break; /* qn_drain_check, below, each turn */
        case QN_DUE_PUSH:
            QN_GROW(push, cap, npush + 1);
            push[npush++] = d;
            break;
        }
    }
    if (puts)
        qn_datasets_puts_check(m, now);
    if (logs)
        qn_logs_check(m, now);
    if (heal)
        qn_replicas_check(m, now);
    if (now >= qn_sched_deadline(m->sched)) {
        qn_sched_tick(m->sched, now);
        qn_actions_run(m, now);
    }
    qn_drain_check(m, now);
    for (size_t i = 0; i < npush; i++)
        qn_status_push_due(m, (int)push[i].key, push[i].at, now);
    free(push);
}
