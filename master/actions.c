/*
 * actions.c -- see actions.h.
 */
#include "actions.h"

#include "commit.h"
#include "datasets.h"
#include "durable.h"
#include "events.h"
#include "log.h"
#include "logs.h"
#include "replicas.h"
#include "send.h"
#include "status.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>

/* The parts of an AssignTask that point into arrays of their own. */
typedef struct {
    Quern__InputPiece *pieces, **pp;
    Quern__DataSource **srcs; /* [npieces]: each piece's sources */
    size_t npieces;
    Quern__SkipRecord *skips, **skp;
    Quern__MapOutput *outs, **op;
} s_assign_mem;

static void s_assign_mem_free(s_assign_mem *am)
{
    for (size_t i = 0; i < am->npieces; i++) {
        free(am->srcs[i]);
        free(am->pieces[i].sources);
    }
    free(am->srcs);
    free(am->pieces);
    free(am->pp);
    free(am->skips);
    free(am->skp);
    free(am->outs);
    free(am->op);
}

/* A map's inputs into ts: its split's pieces, a dataset shard's with the
 * live workers that hold it. */
static void s_map_inputs(qn_master *m, const qn_job *j, unsigned task,
                         Quern__TaskSpec *ts, s_assign_mem *am)
{
    const qn_split *sp = &j->splits.splits[task];
    am->npieces = sp->n;
    am->pieces = qn_calloc(sp->n, sizeof *am->pieces);
    am->pp = qn_calloc(sp->n, sizeof *am->pp);
    am->srcs = qn_calloc(sp->n, sizeof *am->srcs);
    qn_task_spec_pieces(sp, am->pieces, am->pp);
    for (size_t i = 0; i < sp->n; i++) {
        Quern__InputPiece *ip = &am->pieces[i];
        const qn_piece *pc = &sp->pieces[i];
        qn_dataset *d =
            pc->dataset ? qn_catalog_get(&m->data.cat, pc->dataset) : NULL;
        if (d) {
            ip->n_sources = qn_datasets_sources(m, d, pc->shard, &am->srcs[i],
                                                &ip->sources);
        } else if (pc->dataset) {
            /* Removed since the job started: its map fails saying so. */
            ip->dataset = (char *)"";
            ip->shard = 0;
            ip->crc = 0;
        }
    }
    ts->inputs = am->pp;
    ts->n_inputs = sp->n;
}

/* The records a map skips (--skip-bad-records): those that crashed
 * QN_JOB_SKIP_AFTER attempts. */
static void s_map_skips(const qn_job *j, unsigned task, Quern__TaskSpec *ts,
                        s_assign_mem *am)
{
    const qn_mapout *mo = &j->outs[task];
    if (!j->spec->skip_bad_records || !mo->ncrashes)
        return;
    am->skips = qn_calloc(mo->ncrashes, sizeof *am->skips);
    am->skp = qn_calloc(mo->ncrashes, sizeof *am->skp);
    for (size_t i = 0; i < mo->ncrashes; i++) {
        if (mo->crashes[i].crashes < QN_JOB_SKIP_AFTER)
            continue;
        Quern__SkipRecord *sr = &am->skips[ts->n_skip];
        quern__skip_record__init(sr);
        sr->piece = mo->crashes[i].piece;
        sr->offset = mo->crashes[i].offset;
        am->skp[ts->n_skip++] = sr;
    }
    ts->skip = am->skp;
}

/* A reduce's inputs into ts: where each done map's output for its
 * partition is. A map not done yet (reduces start while the last maps
 * run, or it runs again) is listed with attempt 0: its place is sent when
 * it is done. */
static void s_reduce_inputs(qn_master *m, int jx, unsigned task,
                            Quern__TaskSpec *ts, s_assign_mem *am)
{
    const qn_job *j = &m->jobs.v[jx];
    am->outs = qn_calloc(j->nmaps, sizeof *am->outs);
    am->op = qn_calloc(j->nmaps, sizeof *am->op);
    for (unsigned i = 0; i < j->nmaps; i++) {
        const qn_mapout *mo = &j->outs[i];
        Quern__MapOutput *out = &am->outs[i];
        quern__map_output__init(out);
        out->map = i;
        am->op[i] = out;
        if (qn_sched_task(m->sched, jx, QN_MAP, i).state != QN_TASK_DONE)
            continue;
        const qn_mworker *mw = &m->workers.v[mo->worker];
        out->attempt = mo->attempt;
        out->endpoint = mw->endpoint;
        out->worker_id = (char *)mw->id;
        out->curve_public = (char *)mw->curve_public;
        out->incarnation = mw->incarnation;
        out->bytes = mo->parts[task].bytes;
        out->raw_bytes = mo->parts[task].raw_bytes;
    }
    ts->map_outputs = am->op;
    ts->n_map_outputs = j->nmaps;
}

/* Note an attempt started: its record, counters and event. */
static void s_started(qn_master *m, const qn_action *a, int64_t now)
{
    qn_job *j = &m->jobs.v[a->job];
    const char *wid = m->workers.v[a->worker].id;
    const char *kind = qn_kind_name(a->kind);
    if (!a->backup)
        j->progress[a->kind][a->task] = 0;
    qn_status_dirty(m, a->job);
    qn_job_count(j, a->kind == QN_MAP ? "map_attempts" : "reduce_attempts", 1);
    qn_job_attempt_start(j, a->kind, a->task, a->attempt, a->worker, a->local,
                         now, qn_master_wall(m, now));
    if (a->backup) {
        qn_job_count(j, "backup_attempts", 1);
        qn_event(m, now, QN_LOG_INFO, "backup_launched", a->job, (int)a->kind,
                 a->task, a->attempt, a->worker,
                 "job %s %s task %u is slow: backup attempt %u on worker %s",
                 j->id, kind, a->task, a->attempt, wid);
    } else if (a->attempt > 1) {
        qn_event(m, now, QN_LOG_INFO, "task_rerun", a->job, (int)a->kind,
                 a->task, a->attempt, a->worker,
                 "job %s %s task %u runs again: attempt %u on worker %s", j->id,
                 kind, a->task, a->attempt, wid);
    } else {
        qn_debug("master: job %s %s task %u attempt %u -> worker %s", j->id,
                 kind, a->task, a->attempt, wid);
    }
    if (a->kind == QN_MAP && a->local != QN_LOC_ANY)
        qn_job_count(j, a->local ? "data_local_maps" : "remote_maps", 1);
}

/* Start an attempt on its worker. */
static void s_assign(qn_master *m, const qn_action *a, int64_t now)
{
    qn_job *j = &m->jobs.v[a->job];
    Quern__TaskSpec ts = QUERN__TASK_SPEC__INIT;
    ts.job_id = j->id;
    ts.kind = (Quern__TaskKind)a->kind;
    ts.task = a->task;
    ts.attempt = a->attempt;
    qn_task_spec_from_job(&ts, j->spec);
    ts.plugin_hash = j->plugin_hash;
    ts.task_timeout_ms = (uint32_t)m->cfg.task_timeout_ms;
    if (j->out.dataset)
        ts.output_dataset = j->spec->output;
    s_assign_mem am = {0};
    if (a->kind == QN_MAP) {
        s_map_inputs(m, j, a->task, &ts, &am);
        s_map_skips(j, a->task, &ts, &am);
    } else {
        s_reduce_inputs(m, a->job, a->task, &ts, &am);
    }
    Quern__AssignTask at = QUERN__ASSIGN_TASK__INIT;
    at.spec = &ts;
    at.epoch = qn_journal_epoch(&m->journal);
    qn_send_worker(m, a->worker, QUERN__ENVELOPE__BODY_ASSIGN_TASK, &at);
    s_assign_mem_free(&am);
    s_started(m, a, now);
}

/* Kill an attempt on its worker. */
static void s_cancel(qn_master *m, const qn_action *a, int64_t now)
{
    qn_job *j = &m->jobs.v[a->job];
    Quern__CancelTask ct = QUERN__CANCEL_TASK__INIT;
    Quern__AttemptRef ref = QUERN__ATTEMPT_REF__INIT;
    ref.job_id = j->id;
    ref.kind = (Quern__TaskKind)a->kind;
    ref.task = a->task;
    ref.attempt = a->attempt;
    ct.attempt = &ref;
    qn_send_worker(m, a->worker, QUERN__ENVELOPE__BODY_CANCEL_TASK, &ct);
    qn_job_arec_end(j, a->kind, a->task, a->attempt, now);
    if (a->reason != QN_CANCEL_JOB_END)
        qn_job_count(j, "killed_attempts", 1);
    if (a->reason == QN_CANCEL_PREEMPTED)
        qn_info("master: job %s reduce task %u attempt %u on worker "
                "%s makes room for a map that must run again",
                j->id, a->task, a->attempt, m->workers.v[a->worker].id);
    if (a->reason == QN_CANCEL_LOST_RACE)
        qn_info("master: job %s %s task %u attempt %u on worker %s "
                "lost the race to another attempt: cancelled",
                j->id, qn_kind_name(a->kind), a->task, a->attempt,
                m->workers.v[a->worker].id);
}

/* An attempt failed without a report: its worker died, it timed out, or
 * its worker does not have it. */
static void s_lost(qn_master *m, const qn_action *a, int64_t now)
{
    qn_job *j = &m->jobs.v[a->job];
    const char *wid = m->workers.v[a->worker].id;
    char why[256];
    if (a->reason == QN_LOST_WORKER_DEAD)
        snprintf(why, sizeof why, "worker %s was lost", wid);
    else if (a->reason == QN_LOST_VANISHED)
        snprintf(why, sizeof why,
                 "worker %s does not run it (a message was lost on the way)",
                 wid);
    else if (a->reason == QN_LOST_RESTARTED)
        snprintf(why, sizeof why, "worker %s restarted while it ran", wid);
    else if (a->reason == QN_LOST_DRAINED)
        snprintf(why, sizeof why,
                 "worker %s is draining and its deadline passed: it runs "
                 "elsewhere",
                 wid);
    else
        snprintf(why, sizeof why,
                 "no progress for %d ms (--task-timeout-ms): killed",
                 m->cfg.task_timeout_ms);
    qn_event(m, now, QN_LOG_WARN, "attempt_lost", a->job, (int)a->kind, a->task,
             a->attempt, a->worker, "job %s %s task %u attempt %u failed: %s",
             j->id, qn_kind_name(a->kind), a->task, a->attempt, why);
    qn_job_arec_end(j, a->kind, a->task, a->attempt, now);
    m->stats.attempts_lost[a->kind]++;
    qn_job_add_failure(j, a->kind, a->task, a->attempt, wid, why, NULL, 0,
                       NULL);
    qn_status_dirty(m, a->job);
}

/* A worker was declared dead, or left. */
static void s_worker_dead(qn_master *m, const qn_action *a, int64_t now)
{
    qn_mworker *wk = &m->workers.v[a->worker];
    wk->gone = now;
    if (wk->left) {
        qn_event(m, now, QN_LOG_INFO, "worker_left", -1, -1, 0, 0, a->worker,
                 "worker %s left: it is stopping; what it ran runs elsewhere",
                 wk->id);
    } else {
        qn_event(m, now, QN_LOG_WARN, "worker_lost", -1, -1, 0, 0, a->worker,
                 "worker %s is dead (silent for %d ms)", wk->id,
                 m->cfg.dead_ms);
        if (m->cfg.heartbeat_ms > 0)
            m->stats.heartbeats_missed +=
                (uint64_t)(m->cfg.dead_ms / m->cfg.heartbeat_ms);
    }
    qn_logs_worker_gone(m, a->worker);
    for (size_t jx = 0; jx < m->jobs.n; jx++)
        if (m->jobs.v[jx].out.committing)
            qn_commit_replicate(m, (int)jx, now);
    qn_replicas_worker_gone(m, a->worker, now);
}

/* A map's output is gone: take back what its attempt added to counters. */
static void s_map_rerun(qn_master *m, const qn_action *a, int64_t now)
{
    qn_job *j = &m->jobs.v[a->job];
    qn_job_map_lost(j, a->task);
    qn_job_count(j, "maps_rerun", 1);
    qn_event(m, now, QN_LOG_WARN, "map_rerun", a->job, QN_MAP, a->task,
             a->attempt, j->outs[a->task].worker,
             "job %s map task %u runs again: the output of attempt %u %s",
             j->id, a->task, a->attempt,
             a->reason == QN_RERUN_DEAD ? "was on a worker that was lost"
             : a->reason == QN_RERUN_NOT_KEPT
                 ? "is not among what its worker kept when it restarted"
                 : "could not be fetched");
    qn_status_dirty(m, a->job);
}

/* A task ran out of attempts (or its input of holders): the job fails. */
static void s_job_failed(qn_master *m, const qn_action *a, int64_t now)
{
    qn_job *j = &m->jobs.v[a->job];
    const char *last = qn_job_last_failure(j, a->kind, a->task);
    qn_task_info ti = qn_sched_task(m->sched, a->job, a->kind, a->task);
    char msg[1200];
    if (a->reason == QN_FAIL_NO_HOLDER)
        snprintf(msg, sizeof msg,
                 "no live worker holds %s, the input of map task %u, "
                 "for %d ms (--shard-wait-ms); start a worker that "
                 "holds it, then run the job again",
                 qn_job_shard(j, a->task, 0), a->task, m->cfg.shard_wait_ms);
    else if (ti.failures >= j->spec->max_attempts)
        snprintf(msg, sizeof msg,
                 "%s task %u failed %u times (the --max-attempts "
                 "limit); last: %s",
                 qn_kind_name(a->kind), a->task, ti.failures, last);
    else
        snprintf(msg, sizeof msg,
                 "%s task %u lost %u attempts with their workers; last: %s",
                 qn_kind_name(a->kind), a->task, ti.losses, last);
    qn_commit_job_end(m, a->job, QUERN__JOB_STATE__JOB_FAILED, msg, now);
}

/* Carry out one action. */
static void s_run(qn_master *m, const qn_action *a, int64_t now)
{
    switch (a->act) {
    case QN_ACT_ASSIGN: s_assign(m, a, now); break;
    case QN_ACT_CANCEL: s_cancel(m, a, now); break;
    case QN_ACT_ATTEMPT_LOST: s_lost(m, a, now); break;
    case QN_ACT_WORKER_DEAD: s_worker_dead(m, a, now); break;
    case QN_ACT_MAP_RERUN: s_map_rerun(m, a, now); break;
    case QN_ACT_JOB_DONE: qn_commit_job_done(m, a->job, now); break;
    case QN_ACT_JOB_FAILED: s_job_failed(m, a, now); break;
    }
}

void qn_actions_run(qn_master *m, int64_t now)
{
    qn_action a, *batch = NULL;
    size_t n, cap = 0;
    for (;;) {
        for (n = 0; qn_sched_next_action(m->sched, &a); n++) {
            QN_GROW(batch, cap, n + 1);
            batch[n] = a;
        }
        if (n == 0)
            break;
        /* Attempt numbers are on disk before any is sent: a restarted
         * master must not give a number out twice, or two attempts would
         * write the same temporary output. */
        int assigns = 0;
        for (size_t i = 0; i < n; i++)
            if (batch[i].act == QN_ACT_ASSIGN) {
                qn_durable_task(m, batch[i].job, batch[i].kind, batch[i].task,
                                NULL);
                assigns = 1;
            }
        if (assigns)
            qn_journal_hold(&m->journal, "starting attempts");
        for (size_t i = 0; i < n; i++)
            s_run(m, &batch[i], now);
    }
    free(batch);
}
