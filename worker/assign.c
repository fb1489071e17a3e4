/*
 * assign.c -- see assign.h.
 */
#include "assign.h"

#include "attempts.h"
#include "layout.h"
#include "log.h"
#include "masterlink.h"
#include "sha256.h"
#include "shipped.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PLUGIN_RETRY_MS 5000 /* ask the master for a plugin or file again */

/* Take assignment i out of the list (the last takes its place). */
static void s_wait_remove(qn_worker *w, size_t i)
{
    assert(i < w->wait.n);
    quern__task_spec__free_unpacked(w->wait.v[i].spec, NULL);
    w->wait.v[i] = w->wait.v[--w->wait.n];
}

/* Fail an assignment that never started (its plugin or a file it ships
 * could not be had). */
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

/* Is the plugin with this hash in the cache? */
static int s_plugin_cached(const qn_worker *w, const char *hash)
{
    qn_buf p = {0};
    qn_plugin_path(&p, w->work_dir, hash);
    int have = access(p.data, R_OK) == 0;
    qn_buf_release(&p);
    return have;
}

/*
 * The blobs an assignment needs and the cache lacks, in turn: its plugin,
 * then each file it ships. Returns the hash of the one after the first
 * `skip` of them (so `for (k = 0; (h = s_missing(w, sp, k)); k++)` walks
 * them all), or NULL.
 */
static const char *s_missing(const qn_worker *w, const Quern__TaskSpec *sp,
                             size_t skip)
{
    if (sp->plugin_hash[0] && !s_plugin_cached(w, sp->plugin_hash) &&
        skip-- == 0)
        return sp->plugin_hash;
    for (size_t i = 0; i < sp->n_files; i++)
        if (!qn_shipped_cached(w->work_dir, sp->files[i]->hash) && skip-- == 0)
            return sp->files[i]->hash;
    return NULL;
}

/* Is the k-th missing blob of sp one of the k before it (the same bytes
 * as its plugin and a file, or as two files)? */
static int s_missing_before(const qn_worker *w, const Quern__TaskSpec *sp,
                            size_t k, const char *hash)
{
    for (size_t i = 0; i < k; i++)
        if (strcmp(s_missing(w, sp, i), hash) == 0)
            return 1;
    return 0;
}

/* Does the assignment need the blob with this hash: as its plugin
 * (returns "plugin") or as a file it ships (its name)? NULL if not. */
static const char *s_needs(const Quern__TaskSpec *sp, const char *hash)
{
    if (strcmp(sp->plugin_hash, hash) == 0)
        return "plugin";
    for (size_t i = 0; i < sp->n_files; i++)
        if (strcmp(sp->files[i]->hash, hash) == 0)
            return sp->files[i]->name;
    return NULL;
}

/* Does a waiting assignment other than `but` need this hash (so it was
 * asked for already)? */
static int s_waited_for(const qn_worker *w, const char *hash, size_t but)
{
    for (size_t i = 0; i < w->wait.n; i++)
        if (i != but && s_needs(w->wait.v[i].spec, hash))
            return 1;
    return 0;
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
    if (spec->kind == QUERN__TASK_KIND__COPY || !s_missing(w, spec, 0)) {
        qn_attempts_start(w, spec);
        return;
    }
    for (size_t i = 0; i < w->wait.n; i++) {
        const Quern__TaskSpec *o = w->wait.v[i].spec;
        if (strcmp(o->job_id, spec->job_id) == 0 && o->kind == spec->kind &&
            o->task == spec->task && o->attempt == spec->attempt)
            return; /* a duplicate assignment */
    }
    QN_GROW(w->wait.v, w->wait.cap, w->wait.n + 1);
    w->wait.v[w->wait.n++] = (qn_waiting){.spec = spec, .asked = now};
    env->assign_task->spec = NULL; /* ours now */
    const char *hash;
    for (size_t k = 0; (hash = s_missing(w, spec, k)); k++) {
        if (s_missing_before(w, spec, k, hash) ||
            s_waited_for(w, hash, w->wait.n - 1))
            continue; /* asked for already */
        qn_debug("worker %s: fetching %s %s from the master", w->id,
                 s_needs(spec, hash), hash);
        s_ask_plugin(w, hash);
    }
}

void qn_assign_retry(qn_worker *w, int64_t now)
{
    for (size_t i = 0; i < w->wait.n; i++) {
        if (now - w->wait.v[i].asked < PLUGIN_RETRY_MS)
            continue;
        const char *hash;
        for (size_t k = 0; (hash = s_missing(w, w->wait.v[i].spec, k)); k++) {
            if (s_missing_before(w, w->wait.v[i].spec, k, hash))
                continue;
            for (size_t j = i; j < w->wait.n; j++)
                if (s_needs(w->wait.v[j].spec, hash))
                    w->wait.v[j].asked = now;
            s_ask_plugin(w, hash);
        }
    }
}

/*
 * Cache the blob of reply r as what the waiting assignments need it for:
 * a plugin, a shipped file, or both. Returns NULL, or why it cannot be
 * used (in why).
 */
static const char *s_store(qn_worker *w, const Quern__PluginReply *r, char *why,
                           size_t cap)
{
    int as_plugin = 0, as_file = 0;
    for (size_t i = 0; i < w->wait.n; i++) {
        const Quern__TaskSpec *sp = w->wait.v[i].spec;
        as_plugin |= strcmp(sp->plugin_hash, r->hash) == 0;
        for (size_t k = 0; k < sp->n_files; k++)
            as_file |= strcmp(sp->files[k]->hash, r->hash) == 0;
    }
    if (!as_plugin && !as_file)
        return NULL; /* nobody waits for it any more */
    uint8_t d[32];
    char hex[65];
    qn_sha256(r->data.data, r->data.len, d);
    qn_sha256_hex(d, hex);
    if (strcmp(hex, r->hash) != 0) {
        snprintf(why, cap, "%s arrived with SHA-256 %s; not used", r->hash,
                 hex);
        return why;
    }
    if (as_plugin) {
        qn_buf p = {0};
        qn_plugin_path(&p, w->work_dir, r->hash);
        int e = qn_write_file_atomic(p.data, r->data.data, r->data.len);
        if (e < 0)
            snprintf(why, cap, "cannot store it in %s: %s", p.data,
                     strerror(-e));
        qn_buf_release(&p);
        if (e < 0)
            return why;
    }
    if (as_file && qn_shipped_cache(w->work_dir, r->hash, r->data.data,
                                    r->data.len, why, cap) < 0)
        return why;
    qn_info("worker %s: cached %s%s%s %s (%zu bytes)", w->id,
            as_plugin ? "plugin" : "", as_plugin && as_file ? " and " : "",
            as_file ? "shipped file" : "", r->hash, r->data.len);
    return NULL;
}

void qn_assign_on_plugin(qn_worker *w, const Quern__PluginReply *r)
{
    char why[400] = "";
    const char *bad = r->error[0] ? r->error : s_store(w, r, why, sizeof why);
    if (bad)
        qn_warn("worker %s: cannot have %s from the master: %s", w->id, r->hash,
                bad);
    for (size_t i = 0; i < w->wait.n;) {
        const Quern__TaskSpec *sp = w->wait.v[i].spec;
        const char *what = s_needs(sp, r->hash);
        if (what && bad) {
            char msg[600];
            if (strcmp(sp->plugin_hash, r->hash) == 0)
                snprintf(msg, sizeof msg,
                         "the master cannot supply plugin %s: %s", r->hash,
                         bad);
            else
                snprintf(msg, sizeof msg,
                         "the master cannot supply file %s (SHA-256 %s) "
                         "shipped with the job: %s",
                         what, r->hash, bad);
            s_wait_fail(w, i, QUERN__TASK_STATE__FAILED, msg);
        } else if (what && !s_missing(w, sp, 0)) {
            qn_attempts_start(w, sp);
            s_wait_remove(w, i);
        } else {
            i++;
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
