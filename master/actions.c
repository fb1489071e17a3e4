/*
 * actions.c -- see actions.h.
 */
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

void qn_actions_assign(qn_master *m, const qn_action *a)
{
    qn_job *j = &m->jobs[a->job];
    qn_mworker *w = &m->workers[a->worker];
    const Quern__JobSpec *js = j->spec;
    Quern__TaskSpec ts = QUERN__TASK_SPEC__INIT;
    ts.job_id = j->id;
    ts.kind = (Quern__TaskKind)a->kind;
    ts.task = a->task;
    ts.attempt = a->attempt;
    qn_task_spec_from_job(&ts, js);
    ts.plugin_hash = j->plugin_hash;
    if (j->out_dataset)
        ts.output_dataset = js->output;

    Quern__InputPiece *pieces = NULL, **pp = NULL;
    Quern__DataSource **srcs = NULL;
    Quern__MapOutput *outs = NULL, **op = NULL;
    Quern__SkipRecord *skips = NULL, **skp = NULL;
    if (a->kind == QN_MAP) {
        const qn_split *sp = &j->splits.splits[a->task];
        pieces = qn_calloc(sp->n, sizeof *pieces);
        pp = qn_calloc(sp->n, sizeof *pp);
        srcs = qn_calloc(sp->n, sizeof *srcs);
        for (size_t i = 0; i < sp->n; i++) {
            quern__input_piece__init(&pieces[i]);
            pieces[i].path = sp->pieces[i].path;
            pieces[i].name = sp->pieces[i].name;
            pieces[i].offset = sp->pieces[i].offset;
            pieces[i].length = sp->pieces[i].length;
            pieces[i].file_size = sp->pieces[i].file_size;
            qn_dataset *d = sp->pieces[i].dataset
                                ? qn_catalog_get(&m->cat, sp->pieces[i].dataset)
                                : NULL;
            if (d) {
                pieces[i].dataset = d->name;
                pieces[i].shard = sp->pieces[i].shard;
                pieces[i].crc = sp->pieces[i].crc;
                pieces[i].n_sources = qn_datasets_sources(
                    m, d, sp->pieces[i].shard, &srcs[i], &pieces[i].sources);
            }
            pp[i] = &pieces[i];
        }
        ts.inputs = pp;
        ts.n_inputs = sp->n;
        const qn_mapout *mo = &j->outs[a->task];
        if (js->skip_bad_records && mo->ncrashes) {
            skips = qn_calloc(mo->ncrashes, sizeof *skips);
            skp = qn_calloc(mo->ncrashes, sizeof *skp);
            for (size_t i = 0; i < mo->ncrashes; i++) {
                if (mo->crashes[i].crashes < SKIP_AFTER)
                    continue;
                quern__skip_record__init(&skips[ts.n_skip]);
                skips[ts.n_skip].piece = mo->crashes[i].piece;
                skips[ts.n_skip].offset = mo->crashes[i].offset;
                skp[ts.n_skip] = &skips[ts.n_skip];
                ts.n_skip++;
            }
            ts.skip = skp;
        }
    } else {
        outs = qn_calloc(j->nmaps, sizeof *outs);
        op = qn_calloc(j->nmaps, sizeof *op);
        for (unsigned i = 0; i < j->nmaps; i++) {
            const qn_mapout *mo = &j->outs[i];
            quern__map_output__init(&outs[i]);
            outs[i].map = i;
            op[i] = &outs[i];
            /* Not done yet (reduces start while the last maps run, or it
             * runs again): attempt 0, its place is sent when it is done. */
            if (qn_sched_task(m->sched, a->job, QN_MAP, i).state !=
                QN_TASK_DONE)
                continue;
            const qn_mworker *mw = &m->workers[mo->worker];
            outs[i].attempt = mo->attempt;
            outs[i].endpoint = mw->endpoint;
            outs[i].worker_id = (char *)mw->id;
            outs[i].curve_public = (char *)mw->curve_public;
            outs[i].bytes = mo->parts[a->task].bytes;
            outs[i].raw_bytes = mo->parts[a->task].raw_bytes;
        }
        ts.map_outputs = op;
        ts.n_map_outputs = j->nmaps;
    }
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__AssignTask at = QUERN__ASSIGN_TASK__INIT;
    at.spec = &ts;
    env.body_case = QUERN__ENVELOPE__BODY_ASSIGN_TASK;
    env.assign_task = &at;
    qn_send(m, w->route, w->routelen, &env);
    if (!a->backup)
        j->progress[a->kind][a->task] = 0;
    j->dirty = 1;
    qn_job_count(j, a->kind == QN_MAP ? "map_attempts" : "reduce_attempts", 1);
    qn_trec *tr = &j->trec[a->kind][a->task];
    tr->a = qn_realloc(tr->a, (tr->n + 1) * sizeof *tr->a);
    tr->a[tr->n++] = (qn_arec){.attempt = a->attempt,
                               .worker = a->worker,
                               .local = a->local,
                               .start = qn_now_ms(),
                               .start_wall = qn_wall_ms()};
    if (a->backup) {
        qn_job_count(j, "backup_attempts", 1);
        qn_event(m, QN_LOG_INFO, "backup_launched", a->job, (int)a->kind,
                 a->task, a->attempt, a->worker,
                 "job %s %s task %u is slow: backup attempt %u on worker %s",
                 j->id, qn_kind_name(a->kind), a->task, a->attempt, w->id);
    } else if (a->attempt > 1) {
        qn_event(m, QN_LOG_INFO, "task_rerun", a->job, (int)a->kind, a->task,
                 a->attempt, a->worker,
                 "job %s %s task %u runs again: attempt %u on worker %s", j->id,
                 qn_kind_name(a->kind), a->task, a->attempt, w->id);
    } else {
        qn_debug("master: job %s %s task %u attempt %u -> worker %s", j->id,
                 qn_kind_name(a->kind), a->task, a->attempt, w->id);
    }
    if (a->kind == QN_MAP && a->local != QN_LOC_ANY)
        qn_job_count(j, a->local ? "data_local_maps" : "remote_maps", 1);
    for (size_t i = 0; srcs && i < j->splits.splits[a->task].n; i++) {
        free(srcs[i]);
        free(pieces[i].sources);
    }
    free(srcs);
    free(skips);
    free(skp);
    free(pieces);
    free(pp);
    free(outs);
    free(op);
}

void qn_actions_cancel(qn_master *m, const qn_action *a)
{
    qn_job *j = &m->jobs[a->job];
    qn_mworker *w = &m->workers[a->worker];
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__CancelTask ct = QUERN__CANCEL_TASK__INIT;
    Quern__AttemptRef ref = QUERN__ATTEMPT_REF__INIT;
    ref.job_id = j->id;
    ref.kind = (Quern__TaskKind)a->kind;
    ref.task = a->task;
    ref.attempt = a->attempt;
    ct.attempt = &ref;
    env.body_case = QUERN__ENVELOPE__BODY_CANCEL_TASK;
    env.cancel_task = &ct;
    qn_send(m, w->route, w->routelen, &env);
}

/* A map's output is gone: take back what its attempt added to counters. */
void qn_actions_map_rerun(qn_master *m, const qn_action *a)
{
    qn_job *j = &m->jobs[a->job];
    qn_mapout *mo = &j->outs[a->task];
    for (size_t i = 0; i < mo->ncv && i < j->ncounters; i++)
        j->counters[i].value =
            mo->cv[i] == LLONG_MIN
                ? qn_sat_add(j->counters[i].value, LLONG_MAX)
                : qn_sat_add(j->counters[i].value, -mo->cv[i]);
    free(mo->cv);
    mo->cv = NULL;
    mo->ncv = 0;
    mo->reports = 0;
    qn_job_count(j, "maps_rerun", 1);
    qn_event(m, QN_LOG_WARN, "map_rerun", a->job, QN_MAP, a->task, a->attempt,
             mo->worker,
             "job %s map task %u runs again: the output of attempt %u %s",
             j->id, a->task, a->attempt,
             a->reason ? "was on a worker that was lost"
                       : "could not be fetched");
    j->dirty = 1;
}

void qn_actions_run(qn_master *m, int64_t now)
{
    qn_action a;
    while (qn_sched_next_action(m->sched, &a)) {
        switch (a.act) {
        case QN_ACT_ASSIGN: qn_actions_assign(m, &a); break;
        case QN_ACT_CANCEL:
            qn_actions_cancel(m, &a);
            qn_job_arec_end(&m->jobs[a.job], a.kind, a.task, a.attempt, now);
            if (a.reason != QN_CANCEL_JOB_END)
                qn_job_count(&m->jobs[a.job], "killed_attempts", 1);
            if (a.reason == QN_CANCEL_PREEMPTED)
                qn_info("master: job %s reduce task %u attempt %u on worker "
                        "%s makes room for a map that must run again",
                        m->jobs[a.job].id, a.task, a.attempt,
                        m->workers[a.worker].id);
            if (a.reason == QN_CANCEL_LOST_RACE)
                qn_info("master: job %s %s task %u attempt %u on worker %s "
                        "lost the race to another attempt: cancelled",
                        m->jobs[a.job].id, qn_kind_name(a.kind), a.task,
                        a.attempt, m->workers[a.worker].id);
            break;
        case QN_ACT_ATTEMPT_LOST: {
            qn_job *j = &m->jobs[a.job];
            char why[256];
            if (a.reason == QN_LOST_WORKER_DEAD)
                snprintf(why, sizeof why, "worker %s was lost",
                         m->workers[a.worker].id);
            else if (a.reason == QN_LOST_VANISHED)
                snprintf(why, sizeof why,
                         "worker %s does not run it (a message was lost on "
                         "the way)",
                         m->workers[a.worker].id);
            else
                snprintf(why, sizeof why,
                         "no progress for %d ms (--task-timeout-ms): killed",
                         m->cfg.task_timeout_ms);
            qn_event(m, QN_LOG_WARN, "attempt_lost", a.job, (int)a.kind, a.task,
                     a.attempt, a.worker,
                     "job %s %s task %u attempt %u failed: %s", j->id,
                     qn_kind_name(a.kind), a.task, a.attempt, why);
            qn_job_arec_end(j, a.kind, a.task, a.attempt, now);
            m->attempts_lost[a.kind]++;
            qn_job_add_failure(j, a.kind, a.task, a.attempt,
                               m->workers[a.worker].id, why, NULL, 0, NULL);
            j->dirty = 1;
            break;
        }
        case QN_ACT_WORKER_DEAD:
            qn_event(m, QN_LOG_WARN, "worker_lost", -1, -1, 0, 0, a.worker,
                     "worker %s is dead (silent for %d ms)",
                     m->workers[a.worker].id, m->cfg.dead_ms);
            if (m->cfg.heartbeat_ms > 0)
                m->heartbeats_missed +=
                    (uint64_t)(m->cfg.dead_ms / m->cfg.heartbeat_ms);
            qn_logs_worker_gone(m, a.worker);
            for (int jx = 0; jx < m->njobs; jx++)
                if (m->jobs[jx].committing)
                    qn_commit_replicate(m, jx, now);
            break;
        case QN_ACT_MAP_RERUN: qn_actions_map_rerun(m, &a); break;
        case QN_ACT_JOB_DONE:
            if (m->jobs[a.job].out_dataset) {
                m->jobs[a.job].committing = 1;
                qn_commit_replicate(m, a.job, now);
            } else {
                qn_commit_output(m, a.job, now);
            }
            break;
        case QN_ACT_JOB_FAILED: {
            qn_job *j = &m->jobs[a.job];
            const char *last = "";
            for (size_t i = j->nfailures; i-- > 0;) {
                if (j->failures[i].kind == (Quern__TaskKind)a.kind &&
                    j->failures[i].task == a.task) {
                    last = j->failures[i].reason;
                    break;
                }
            }
            qn_task_info ti = qn_sched_task(m->sched, a.job, a.kind, a.task);
            char msg[1200];
            if (a.reason == QN_FAIL_NO_HOLDER)
                snprintf(msg, sizeof msg,
                         "no live worker holds %s, the input of map task %u, "
                         "for %d ms (--shard-wait-ms); start a worker that "
                         "holds it, then run the job again",
                         qn_job_shard(j, a.task, 0), a.task,
                         m->cfg.shard_wait_ms);
            else if (ti.failures >= j->spec->max_attempts)
                snprintf(msg, sizeof msg,
                         "%s task %u failed %u times (the --max-attempts "
                         "limit); last: %s",
                         qn_kind_name(a.kind), a.task, ti.failures, last);
            else
                snprintf(msg, sizeof msg,
                         "%s task %u lost %u attempts with their workers; "
                         "last: %s",
                         qn_kind_name(a.kind), a.task, ti.losses, last);
            qn_commit_job_finished(m, a.job, QUERN__JOB_STATE__JOB_FAILED, msg,
                                   now);
            break;
        }
        }
    }
}
