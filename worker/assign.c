/*
 * assign.c -- see assign.h.
 */
#include "assign.h"

#include "attempts.h"
#include "layout.h"
#include "log.h"
#include "masterlink.h"
#include "sha256.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PLUGIN_RETRY_MS 5000 /* ask the master for a plugin again */

/* Take assignment i out of the list (the last takes its place). */
static void s_wait_remove(qn_worker *w, size_t i)
{
    assert(i < w->wait.n);
    quern__task_spec__free_unpacked(w->wait.v[i].spec, NULL);
    w->wait.v[i] = w->wait.v[--w->wait.n];
}

/* Fail an assignment that never started (its plugin could not be had). */
static void s_wait_fail(qn_worker *w, size_t i, Quern__TaskState state,
                        const char *why)
{
    const Quern__TaskSpec *sp = w->wait.v[i].spec;
    qn_attempt_ref a = {
        .kind = sp->kind, .task = sp->task, .attempt = sp->attempt};
    snprintf(a.job_id, sizeof a.job_id, "%s", sp->job_id);
    Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
    u.state = state;
    u.reason = (char *)why;
    qn_masterlink_update(w, &a, &u);
    s_wait_remove(w, i);
}

static void s_ask_plugin(qn_worker *w, const char *hash)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__PluginRequest r = QUERN__PLUGIN_REQUEST__INIT;
    r.worker_id = w->id;
    r.session = w->link.session;
    r.hash = (char *)hash;
    env.body_case = QUERN__ENVELOPE__BODY_PLUGIN_REQUEST;
    env.plugin_request = &r;
    qn_masterlink_send(w, &env);
}

void qn_assign_handle(qn_worker *w, Quern__Envelope *env, int64_t now)
{
    Quern__TaskSpec *spec = env->assign_task->spec;
    uint64_t epoch = env->assign_task->epoch;
    if (epoch && w->link.epoch && epoch < w->link.epoch) {
        qn_warn("worker %s: refused job %s task %u attempt %u from master "
                "epoch %llu: the master runs epoch %llu now",
                w->id, spec->job_id, spec->task, spec->attempt,
                (unsigned long long)epoch, (unsigned long long)w->link.epoch);
        return;
    }
    if (spec->kind == QUERN__TASK_KIND__COPY || !spec->plugin_hash[0]) {
        qn_attempts_start(w, spec);
        return;
    }
    qn_buf p = {0};
    qn_plugin_path(&p, w->work_dir, spec->plugin_hash);
    int have = access(p.data, R_OK) == 0;
    qn_buf_release(&p);
    if (have) {
        qn_attempts_start(w, spec);
        return;
    }
    int asked = 0;
    for (size_t i = 0; i < w->wait.n; i++) {
        const Quern__TaskSpec *o = w->wait.v[i].spec;
        if (strcmp(o->plugin_hash, spec->plugin_hash) == 0)
            asked = 1;
        if (strcmp(o->job_id, spec->job_id) == 0 && o->kind == spec->kind &&
            o->task == spec->task && o->attempt == spec->attempt)
            return; /* a duplicate assignment */
    }
    QN_GROW(w->wait.v, w->wait.cap, w->wait.n + 1);
    w->wait.v[w->wait.n++] = (qn_waiting){.spec = spec, .asked = now};
    env->assign_task->spec = NULL; /* ours now */
    if (!asked) {
        qn_debug("worker %s: fetching plugin %s from the master", w->id,
                 spec->plugin_hash);
        s_ask_plugin(w, spec->plugin_hash);
    }
}

void qn_assign_retry(qn_worker *w, int64_t now)
{
    for (size_t i = 0; i < w->wait.n; i++) {
        if (now - w->wait.v[i].asked < PLUGIN_RETRY_MS)
            continue;
        const char *hash = w->wait.v[i].spec->plugin_hash;
        for (size_t k = i; k < w->wait.n; k++)
            if (strcmp(w->wait.v[k].spec->plugin_hash, hash) == 0)
                w->wait.v[k].asked = now;
        s_ask_plugin(w, hash);
    }
}

void qn_assign_on_plugin(qn_worker *w, const Quern__PluginReply *r)
{
    char why[400] = "";
    if (r->error[0]) {
        snprintf(why, sizeof why, "the master cannot supply plugin %s: %s",
                 r->hash, r->error);
    } else {
        uint8_t d[32];
        char hex[65];
        qn_sha256(r->data.data, r->data.len, d);
        qn_sha256_hex(d, hex);
        if (strcmp(hex, r->hash) != 0) {
            snprintf(why, sizeof why,
                     "plugin %s arrived with SHA-256 %s; not used", r->hash,
                     hex);
        } else {
            qn_buf p = {0};
            qn_plugin_path(&p, w->work_dir, r->hash);
            int e = qn_write_file_atomic(p.data, r->data.data, r->data.len);
            if (e < 0)
                snprintf(why, sizeof why, "cannot store plugin in %s: %s",
                         p.data, strerror(-e));
            else
                qn_info("worker %s: cached plugin %s (%zu bytes)", w->id,
                        r->hash, r->data.len);
            qn_buf_release(&p);
        }
    }
    if (why[0])
        qn_warn("worker %s: %s", w->id, why);
    for (size_t i = 0; i < w->wait.n;) {
        if (strcmp(w->wait.v[i].spec->plugin_hash, r->hash) != 0) {
            i++;
        } else if (why[0]) {
            s_wait_fail(w, i, QUERN__TASK_STATE__FAILED, why);
        } else {
            qn_attempts_start(w, w->wait.v[i].spec);
            s_wait_remove(w, i);
        }
    }
}

int qn_assign_cancel(qn_worker *w, const Quern__AttemptRef *r)
{
    for (size_t i = 0; i < w->wait.n; i++) {
        const Quern__TaskSpec *sp = w->wait.v[i].spec;
        if (strcmp(sp->job_id, r->job_id) == 0 && sp->kind == r->kind &&
            sp->task == r->task && sp->attempt == r->attempt) {
            s_wait_fail(w, i, QUERN__TASK_STATE__KILLED,
                        "killed on the master's request");
            return 1;
        }
    }
    return 0;
}

void qn_assign_drop_job(qn_worker *w, const char *job_id)
{
    for (size_t i = 0; i < w->wait.n;) {
        if (!job_id || strcmp(w->wait.v[i].spec->job_id, job_id) == 0)
            s_wait_remove(w, i);
        else
            i++;
    }
}

void qn_assign_destroy(qn_worker *w)
{
    qn_assign_drop_job(w, NULL);
    free(w->wait.v);
    w->wait.v = NULL;
    w->wait.cap = 0;
}

int64_t qn_assign_next_retry(const qn_worker *w)
{
    return w->wait.n ? w->wait.v[0].asked + PLUGIN_RETRY_MS : INT64_MAX;
}
