/*
 * journal.c -- see journal.h.
 */
#include "journal.h"

#include "log.h"
#include "statedb.h"

#include <stdio.h>

static const char *const KIND_NAMES[QN_CHANGE_KINDS] = {
    "job_submitted",   "task_started",    "task_done",
    "job_ended",       "dataset_created", "dataset_changed",
    "dataset_removed", "worker_known",    "plugin_kept"};

const char *qn_journal_kind_name(qn_change_kind k)
{
    return k < QN_CHANGE_KINDS ? KIND_NAMES[k] : "?";
}

int qn_journal_open(qn_journal *jl, const char *dir, size_t keep_jobs,
                    char *err, size_t errlen)
{
    jl->db = qn_statedb_open(dir, err, errlen);
    jl->keep_jobs = keep_jobs;
    return jl->db ? 0 : -1;
}

void qn_journal_close(qn_journal *jl)
{
    if (!jl->db)
        return;
    (void)qn_journal_turn(jl);
    qn_statedb_destroy(&jl->db);
}

uint64_t qn_journal_epoch(const qn_journal *jl)
{
    return jl->db ? qn_statedb_epoch(jl->db) : 0;
}

/* The record a change writes: its kind and key (in buf). */
static qn_rec_kind s_record(const qn_change *c, char *buf, size_t cap,
                            const char **key)
{
    switch (c->kind) {
    case QN_CHANGE_TASK_STARTED:
    case QN_CHANGE_TASK_DONE:
        snprintf(buf, cap, "%s/%c/%u", c->job, c->task_kind ? 'r' : 'm',
                 c->task);
        *key = buf;
        return QN_REC_TASK;
    case QN_CHANGE_DATASET_CREATED:
    case QN_CHANGE_DATASET_CHANGED:
    case QN_CHANGE_DATASET_REMOVED: *key = c->dataset; return QN_REC_DATASET;
    case QN_CHANGE_WORKER_KNOWN: *key = c->worker; return QN_REC_WORKER;
    case QN_CHANGE_PLUGIN_KEPT: *key = c->key; return QN_REC_PLUGIN;
    default: *key = c->job; return QN_REC_JOB;
    }
}

/* A write to the state failed: say so, naming the file. */
static int s_failed(qn_journal *jl, const char *what, const char *err)
{
    jl->failures++;
    qn_error("master: cannot %s in %s: %s", what, qn_statedb_path(jl->db), err);
    return -1;
}

int qn_journal_note(qn_journal *jl, const qn_change *c)
{
    jl->seq++;
    jl->count[c->kind]++;
    qn_debug("master: change %llu: %s%s%s%s%s%s%s", (unsigned long long)jl->seq,
             qn_journal_kind_name(c->kind), c->job ? " job " : "",
             c->job ? c->job : "", c->dataset ? " dataset " : "",
             c->dataset ? c->dataset : "", c->worker ? " worker " : "",
             c->worker ? c->worker : "");
    if (!jl->db)
        return 0;
    char buf[160], err[512];
    const char *key;
    qn_rec_kind rk = s_record(c, buf, sizeof buf, &key);
    int ended = c->kind == QN_CHANGE_JOB_ENDED;
    if (qn_statedb_put(jl->db, rk, key, c->job, ended, c->body, c->len, err,
                       sizeof err) < 0)
        return s_failed(jl, "write a record", err);
    if (c->kind == QN_CHANGE_JOB_ENDED) {
        /* History keeps the job's summary; its tasks and plugin were for
         * running it. */
        if (qn_statedb_del_job(jl->db, QN_REC_TASK, c->job, err, sizeof err) <
                0 ||
            qn_statedb_del_job(jl->db, QN_REC_PLUGIN, c->job, err, sizeof err) <
                0)
            return s_failed(jl, "drop an ended job's tasks", err);
        jl->ended++;
    }
    return 0;
}

void qn_journal_hold(qn_journal *jl, const char *before)
{
    if (!jl->db)
        return;
    if (!jl->holding)
        qn_debug("master: messages wait for the state on disk before %s",
                 before);
    jl->holding = 1;
}

int qn_journal_turn(qn_journal *jl)
{
    if (!jl->db)
        return 0;
    jl->holding = 0;
    char err[512];
    if (jl->ended) {
        jl->ended = 0;
        long n = qn_statedb_prune(jl->db, jl->keep_jobs, err, sizeof err);
        if (n < 0)
            s_failed(jl, "prune old jobs", err);
        else if (n > 0)
            qn_info("master: dropped the %ld oldest finished jobs from %s "
                    "(--keep-jobs %zu)",
                    n, qn_statedb_path(jl->db), jl->keep_jobs);
    }
    if (qn_statedb_pending(jl->db) == 0)
        return 0;
    if (qn_statedb_commit(jl->db, err, sizeof err) < 0)
        return s_failed(jl, "commit this turn's changes", err);
    jl->commits++;
    return 0;
}
