/*
 * datacmd.c -- see datacmd.h.
 */
#include "datacmd.h"

#include "log.h"
#include "masterlink.h"
#include "store.h"
#include "util.h"

#include <stdio.h>

/* Tell the master a COMMIT failed, so its job fails saying why instead of
 * waiting for a shard that will never be announced. */
static void s_commit_failed(qn_worker *w, const Quern__DataCommand *c,
                            const char *why)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__DataReport dr = QUERN__DATA_REPORT__INIT;
    Quern__CommitFailure cf = QUERN__COMMIT_FAILURE__INIT;
    Quern__CommitFailure *cfp = &cf;
    cf.dataset = c->dataset;
    cf.index = c->index;
    cf.job_id = c->job_id;
    cf.reason = (char *)why;
    dr.worker_id = w->id;
    dr.session = w->link.session;
    dr.failed = &cfp;
    dr.n_failed = 1;
    env.body_case = QUERN__ENVELOPE__BODY_DATA_REPORT;
    env.data_report = &dr;
    qn_masterlink_send(w, &env);
}

void qn_datacmd_handle(qn_worker *w, const Quern__DataCommand *c)
{
    if (!w->store) {
        qn_warn("worker %s: the master sent a dataset command, but this "
                "worker has no --data-dir",
                w->id);
        return;
    }
    switch (c->op) {
    case QUERN__DATA_COMMAND__OP__SEAL:
        qn_store_seal(w->store, c->dataset, c->nshards);
        break;
    case QUERN__DATA_COMMAND__OP__DROP: {
        size_t n = qn_store_drop(w->store, c->dataset);
        if (n)
            qn_info("worker %s: dropped %zu shards of %s", w->id, n,
                    c->dataset);
        break;
    }
    case QUERN__DATA_COMMAND__OP__DROP_SHARD:
        if (qn_store_drop_shard(w->store, c->dataset, c->index))
            qn_info("worker %s: dropped its copy of shard %s/part-%05u", w->id,
                    c->dataset, c->index);
        break;
    case QUERN__DATA_COMMAND__OP__COMMIT: {
        qn_buf from = {0};
        qn_buf_printf(&from, "%s/.staging/%s/_temporary/%s/part-%05u.a%u",
                      qn_store_dir(w->store), c->job_id, c->job_id, c->index,
                      c->attempt);
        qn_shard sh = {.index = c->index, .size = c->size, .crc = c->crc};
        snprintf(sh.dataset, sizeof sh.dataset, "%s", c->dataset);
        char err[700];
        if (qn_store_install(w->store, from.data, &sh, 1, err, sizeof err) <
            0) {
            qn_warn("worker %s: job %s output: %s", w->id, c->job_id, err);
            s_commit_failed(w, c, err);
        }
        qn_buf_release(&from);
        break;
    }
    default:
        qn_warn("worker %s: unknown dataset command %d", w->id, (int)c->op);
    }
}
