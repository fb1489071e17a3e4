/*
 * journal.c -- see journal.h.
 */
#include "journal.h"

#include "log.h"

static const char *const KIND_NAMES[QN_CHANGE_KINDS] = {
    "job_submitted",   "task_done",       "job_ended",       "output_committed",
    "dataset_created", "dataset_changed", "dataset_removed", "worker_known"};

const char *qn_journal_kind_name(qn_change_kind k)
{
    return k < QN_CHANGE_KINDS ? KIND_NAMES[k] : "?";
}

void qn_journal_note(qn_journal *jl, const qn_change *c)
{
    jl->seq++;
    jl->count[c->kind]++;
    qn_debug("master: change %llu: %s%s%s%s%s%s%s", (unsigned long long)jl->seq,
             qn_journal_kind_name(c->kind), c->job ? " job " : "",
             c->job ? c->job : "", c->dataset ? " dataset " : "",
             c->dataset ? c->dataset : "", c->worker ? " worker " : "",
             c->worker ? c->worker : "");
}
