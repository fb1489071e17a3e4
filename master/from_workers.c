/*
 * from_workers.c -- see from_workers.h.
 */
#include "from_workers.h"

#include "actions.h"
#include "commit.h"
#include "datasets.h"
#include "drain.h"
#include "durable.h"
#include "events.h"
#include "log.h"
#include "replicas.h"
#include "logs.h"
#include "send.h"
#include "status.h"
#include "task_updates.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- membership ---------------------------------------------------------- */

static void s_welcome(qn_master *m, const char *id, int rejoin, int reset,
                      uint64_t session)
{
    Quern__WorkerWelcome wl = QUERN__WORKER_WELCOME__INIT;
    int w = qn_workers_find(&m->workers, id);
    /* The minor version the two use: the lower one (wire.h). */
    wl.minor = w >= 0 && !rejoin ? m->workers.v[w].minor : QN_PROTOCOL_MINOR;
    wl.worker_id = (char *)id;
    wl.heartbeat_ms = (uint32_t)m->cfg.heartbeat_ms;
    wl.rejoin = rejoin;
    wl.reset = reset;
    wl.session = session;
    wl.epoch = qn_journal_epoch(&m->journal);
    qn_send_reply(m, QUERN__ENVELOPE__BODY_WORKER_WELCOME, &wl);
}

/* Worker w was heard from at now (a restored one may have work again). */
static void s_heard(qn_master *m, int w, int64_t now)
{
    qn_mworker *wk = &m->workers.v[w];
    wk->seen = now;
    if (wk->unheard) {
        wk->unheard = 0;
        qn_sched_worker_slots(m->sched, now, w,
                              qn_workers_usable_slots(&m->workers, w));
    }
}

/* Is the message being handled from worker w's connection? */
static int s_on_route(const qn_master *m, int w)
{
    const qn_mworker *wk = &m->workers.v[w];
    return wk->routelen == m->net.in.idlen &&
           memcmp(wk->route, m->net.in.id, m->net.in.idlen) == 0;
}

/* Replies to worker w go where the message being handled came from. */
static void s_route_here(qn_master *m, int w)
{
    memcpy(m->workers.v[w].route, m->net.in.id, m->net.in.idlen);
    m->workers.v[w].routelen = m->net.in.idlen;
}

/* The protocol minor version worker w uses with us, from its hello. */
static void s_minor(qn_master *m, int w, uint32_t theirs)
{
    qn_mworker *wk = &m->workers.v[w];
    wk->minor = theirs < QN_PROTOCOL_MINOR ? theirs : QN_PROTOCOL_MINOR;
    if (theirs != QN_PROTOCOL_MINOR)
        qn_info("master: worker %s speaks Quern protocol %u.%u, this master "
                "%u.%u: the two use %u.%u",
                wk->id, QN_PROTOCOL_VERSION, theirs, QN_PROTOCOL_VERSION,
                QN_PROTOCOL_MINOR, QN_PROTOCOL_VERSION, wk->minor);
}

/* What worker w holds, as its hello lists it, replaces what was known. */
static void s_holdings(qn_master *m, int w, const Quern__WorkerHello *h,
                       int64_t now)
{
    qn_catalog_forget_worker(&m->data.cat, m->workers.v[w].id);
    for (size_t i = 0; i < h->n_shards; i++)
        qn_datasets_hold(m, w, h->shards[i]);
    qn_commit_data_changed(m, now);
}

/* A live worker says hello again: it missed our welcome, or its
 * connection is new. */
static void s_hello_again(qn_master *m, int w, const Quern__WorkerHello *h,
                          int64_t now)
{
    /* Only the worker itself can say so: on the connection we know, or
     * with the session we gave it. Anyone else claiming its id would take
     * its traffic and rewrite what it holds. */
    qn_mworker *wk = &m->workers.v[w];
    if (!s_on_route(m, w) && h->session != wk->session) {
        char why[200];
        snprintf(why, sizeof why,
                 "a hello for worker %s, which is alive on another "
                 "connection, without its session (is another process "
                 "using its id?)",
                 wk->id);
        qn_drop(m, DROP_INVALID, why);
        return;
    }
    s_route_here(m, w);
    qn_sched_worker_seen(m->sched, now, w);
    if (h->minor != wk->minor)
        s_minor(m, w, h->minor);
    s_welcome(m, h->worker_id, 0, 0, wk->session);
    if (wk->unheard && h->slots)
        wk->slots = h->slots; /* as it runs now */
    s_heard(m, w, now);
    s_holdings(m, w, h, now);
}

/* Does hello h offer the output of attempt of job's map task? */
static int s_offered(const Quern__WorkerHello *h, const char *job,
                     unsigned task, unsigned attempt)
{
    for (size_t i = 0; i < h->n_finished; i++) {
        const Quern__AttemptRef *r = h->finished[i]->attempt;
        if (r->task == task && r->attempt == attempt &&
            strcmp(r->job_id, job) == 0)
            return 1;
    }
    return 0;
}

/*
 * The map outputs worker w's hello offers: taken back where a running job
 * still needs them (task_updates.h); the worker deletes those no job
 * needs, and the files of a job not running here, which is ended there.
 */
static void s_take_back(qn_master *m, int w, const Quern__WorkerHello *h,
                        int64_t now)
{
    unsigned n[4] = {0};
    Quern__AttemptRef **drop = qn_calloc(h->n_finished + 1, sizeof *drop);
    size_t ndrop = 0;
    for (size_t i = 0; i < h->n_finished; i++) {
        const Quern__TaskUpdate *u = h->finished[i];
        int r = qn_task_take_back(m, w, u, now);
        n[r]++;
        if (r == QN_TAKE_UNNEEDED)
            drop[ndrop++] = u->attempt;
        if (r != QN_TAKE_JOB_OVER)
            continue;
        int told = 0; /* once per job */
        for (size_t k = 0; k < i && !told; k++)
            told = strcmp(h->finished[k]->attempt->job_id,
                          u->attempt->job_id) == 0;
        if (told)
            continue;
        Quern__JobEnd je = QUERN__JOB_END__INIT;
        je.job_id = u->attempt->job_id;
        qn_send_worker(m, w, QUERN__ENVELOPE__BODY_JOB_END, &je);
    }
    if (ndrop) {
        Quern__DropOutputs d = QUERN__DROP_OUTPUTS__INIT;
        d.outputs = drop;
        d.n_outputs = ndrop;
        qn_send_worker(m, w, QUERN__ENVELOPE__BODY_DROP_OUTPUTS, &d);
    }
    free(drop);
    if (h->n_finished)
        qn_info("master: worker %s offers %zu map outputs: %u taken back, %u "
                "in use already, %u not needed, %u of jobs not running",
                h->worker_id, h->n_finished, n[QN_TAKE_TAKEN], n[QN_TAKE_KEPT],
                n[QN_TAKE_UNNEEDED], n[QN_TAKE_JOB_OVER]);
}

/*
 * Is hello h, which claims to be a restart of live worker w, from it: the
 * same address (a copy of its work dir on another machine is not), and
 * its CURVE key if it had one? Without CURVE nothing is proof of who a
 * peer is; with it, only the holder of the worker's key can be it.
 */
static int s_same_worker(const qn_master *m, int w, const Quern__WorkerHello *h)
{
    const qn_mworker *wk = &m->workers.v[w];
    if (wk->curve_public[0] && strcmp(wk->curve_public, h->curve_public) != 0)
        return 0;
    return !wk->peer[0] || strcmp(wk->peer, m->net.in.peer) == 0;
}

/*
 * Worker w's process restarted: a hello with a greater incarnation than
 * the one we know, while w still counts as alive. It is the same worker:
 * the map outputs it kept are taken back (those it did not keep run
 * again), what its old process ran is lost and runs again at once, and
 * running reduces are told where its outputs are now. Its new session
 * fences off anything the old process still had on its way, and a drain
 * it asked for as it stopped (SIGTERM) is over. */
static void s_restarted(qn_master *m, int w, const Quern__WorkerHello *h,
                        int64_t now)
{
    qn_mworker *wk = &m->workers.v[w];
    uint64_t was = wk->incarnation;
    s_route_here(m, w);
    snprintf(wk->peer, sizeof wk->peer, "%s", m->net.in.peer);
    wk->incarnation = h->incarnation;
    wk->pid = h->pid;
    snprintf(wk->host, sizeof wk->host, "%s", h->host);
    free(wk->endpoint);
    wk->endpoint = qn_strdup(h->shuffle_endpoint);
    qn_workers_abilities(wk, h);
    wk->session = qn_random_u64();
    snprintf(wk->curve_public, sizeof wk->curve_public, "%s", h->curve_public);
    wk->hb_seq = 0; /* a new process counts its heartbeats from 1 */
    wk->hb_last = 0;
    wk->drain_asked = 0; /* the new process has not asked */
    if (wk->draining && !wk->drain_client) {
        /* Its old process asked to be drained as it stopped; started
         * again, it is back in service (a drain a client asked for
         * stays). */
        wk->draining = wk->drained = 0;
        wk->drain_deadline = 0;
        qn_info("master: worker %s is back in service: the drain its old "
                "process asked for as it stopped is over",
                wk->id);
    }
    s_minor(m, w, h->minor);
    qn_sched_worker_seen(m->sched, now, w);
    /* Welcome first, so it arrives before any assignment. */
    s_welcome(m, h->worker_id, 0, 0, wk->session);
    qn_event(m, now, QN_LOG_WARN, "worker_restarted", -1, -1, 0, 0, w,
             "worker %s restarted (incarnation %llu, was %llu) with %u slots, "
             "shuffle on %s, offering %zu map outputs",
             wk->id, (unsigned long long)h->incarnation,
             (unsigned long long)was, h->slots, wk->endpoint, h->n_finished);
    /* All of it as one event: nothing starts in its old process's slots.
     * What it kept is taken back before what it ran is lost, so a success
     * not heard before the restart counts. */
    qn_sched_batch(m->sched, now, 1);
    s_take_back(m, w, h, now);
    for (size_t jx = 0; jx < m->jobs.n; jx++) {
        const qn_job *j = &m->jobs.v[jx];
        if (j->state != QUERN__JOB_STATE__JOB_RUNNING || !j->outs)
            continue;
        for (unsigned t = 0; t < j->nmaps; t++) {
            qn_task_info ti = qn_sched_task(m->sched, (int)jx, QN_MAP, t);
            if (ti.state == QN_TASK_DONE && ti.worker == w &&
                !s_offered(h, j->id, t, ti.attempt))
                qn_sched_map_not_kept(m->sched, now, (int)jx, t, ti.attempt);
        }
    }
    qn_sched_worker_restarted(m->sched, now, w);
    wk = &m->workers.v[w];
    wk->slots = h->slots;
    wk->unheard = 0;
    wk->seen = now;
    qn_sched_worker_slots(m->sched, now, w,
                          qn_workers_usable_slots(&m->workers, w));
    qn_sched_batch(m->sched, now, 0);
    qn_durable_worker(m, w);
    /* Its old process's copies died with it. */
    qn_replicas_worker_gone(m, w, now);
    s_holdings(m, w, h, now);
    qn_task_relocate(m, w);
}

/* A worker joins (as new, if it was given up for dead before: reset). */
static void s_join(qn_master *m, const Quern__WorkerHello *h, int reset,
                   int64_t now)
{
    qn_mworker wk = {0};
    snprintf(wk.id, sizeof wk.id, "%s", h->worker_id);
    snprintf(wk.host, sizeof wk.host, "%s", h->host);
    wk.pid = h->pid;
    wk.slots = h->slots;
    wk.endpoint = h->shuffle_endpoint;
    memcpy(wk.route, m->net.in.id, m->net.in.idlen);
    wk.routelen = m->net.in.idlen;
    wk.seen = now;
    qn_workers_abilities(&wk, h);
    wk.session = qn_random_u64();
    wk.incarnation = h->incarnation;
    snprintf(wk.peer, sizeof wk.peer, "%s", m->net.in.peer);
    snprintf(wk.curve_public, sizeof wk.curve_public, "%s", h->curve_public);
    /* Back after it left or was lost: a drain a client asked for stays
     * until undrain. */
    int old = qn_workers_find(&m->workers, h->worker_id);
    if (old >= 0 && m->workers.v[old].draining &&
        m->workers.v[old].drain_client) {
        wk.draining = wk.drain_client = 1;
        wk.drain_deadline = now;
        m->drain.any = 1;
    }
    /* Nothing starts until the outputs it offers are taken back: a map it
     * holds is not given to it to make again meanwhile. */
    qn_sched_batch(m->sched, now, 1);
    int w = qn_workers_join(&m->workers, now, &wk);
    s_minor(m, w, h->minor);
    qn_durable_worker(m, w);
    /* Welcome first, so it arrives before any assignment. */
    s_welcome(m, h->worker_id, 0, reset, wk.session);
    qn_catalog_forget_worker(&m->data.cat, wk.id);
    for (size_t i = 0; i < h->n_shards; i++)
        qn_datasets_hold(m, w, h->shards[i]);
    const qn_mworker *e = &m->workers.v[w];
    qn_event(m, now, QN_LOG_INFO, "worker_joined", -1, -1, 0, 0, w,
             "worker %s joined from %s with %u slots, shuffle on %s%s, "
             "holding %zu dataset shards%s",
             e->id, e->host, e->slots, e->endpoint,
             h->has_data ? "" : " (no data dir)", h->n_shards,
             e->draining ? "; it stays draining (quern undrain puts it back)"
                         : "");
    s_take_back(m, w, h, now);
    qn_sched_batch(m->sched, now, 0);
    qn_commit_data_changed(m, now);
}

static void s_hello(qn_master *m, const Quern__WorkerHello *h, int64_t now)
{
    int w = qn_workers_find(&m->workers, h->worker_id);
    if (w >= 0 && qn_workers_alive(&m->workers, w) &&
        m->workers.v[w].incarnation && h->incarnation &&
        h->incarnation > m->workers.v[w].incarnation) {
        if (s_same_worker(m, w, h)) {
            s_restarted(m, w, h, now);
            return;
        }
        qn_warn("master: a hello for worker %s, incarnation %llu, from %s, "
                "which is not where it was (%s) or with another CURVE key: "
                "not taken as its restart (it may join when the worker is "
                "given up after --dead-ms)",
                h->worker_id, (unsigned long long)h->incarnation,
                m->net.in.peer[0] ? m->net.in.peer : "an unknown address",
                m->workers.v[w].peer[0] ? m->workers.v[w].peer : "unknown");
    }
    if (w >= 0 && qn_workers_alive(&m->workers, w) && m->workers.v[w].unheard &&
        h->session != m->workers.v[w].session) {
        /* Restored from the state dir, but another master welcomed it
         * since (its session is not ours): what it runs and holds is that
         * master's. It joins as new, dropping all that; what it held for
         * us runs again. */
        qn_info("master: worker %s comes back from another master's "
                "session; it joins as new",
                h->worker_id);
        qn_sched_worker_leave(m->sched, now, w);
    }
    if (w >= 0 && qn_workers_alive(&m->workers, w)) {
        s_hello_again(m, w, h, now);
        return;
    }
    if (qn_workers_live(&m->workers) >= QN_FROM_WORKERS_MAX_LIVE) {
        char why[120];
        snprintf(why, sizeof why,
                 "a hello from worker %s, one too many (the master takes %d "
                 "at once)",
                 h->worker_id, QN_FROM_WORKERS_MAX_LIVE);
        qn_drop(m, DROP_INVALID, why);
        return;
    }
    /* Given up for dead before (w >= 0): it joins as new, and drops what
     * it ran and holds, which this master has already replaced. */
    s_join(m, h, w >= 0, now);
}

/*
 * The worker a message claims to come from, or -1: unknown or given up
 * for dead (it is asked to join again), or not holding the worker's
 * session (dropped, unless it is an older membership's: late, not
 * hostile). With route set, replies to it go where this message came from.
 */
static int s_known(qn_master *m, const char *id, uint64_t session, int64_t now,
                   int route)
{
    int w = qn_workers_find(&m->workers, id);
    if (w >= 0 && session != m->workers.v[w].session &&
        qn_workers_alive(&m->workers, w)) {
        for (int old = w - 1; old >= 0; old--)
            if (strcmp(m->workers.v[old].id, id) == 0 &&
                m->workers.v[old].session == session) {
                qn_debug("master: a late message from worker %s's earlier "
                         "membership; ignored",
                         id);
                return -1;
            }
        char why[160];
        snprintf(why, sizeof why, "a message for worker %s without its session",
                 id);
        qn_drop(m, DROP_INVALID, why);
        /* Restored from the state dir and welcomed by another master
         * since: it is told to join again (and joins as new, s_hello),
         * rather than wait to notice that nobody answers. */
        if (m->workers.v[w].unheard)
            s_welcome(m, id, 1, 0, 0);
        return -1;
    }
    if (w < 0 || qn_sched_worker_seen(m->sched, now, w) < 0) {
        s_welcome(m, id, 1, 0, 0);
        return -1;
    }
    if (route)
        s_route_here(m, w);
    s_heard(m, w, now);
    return w;
}

/* ---- heartbeats ---------------------------------------------------------- */

/* Does heartbeat hb list attempt a (of job id)? */
static int s_listed(const Quern__Heartbeat *hb, const qn_attempt_ref *a,
                    const char *job)
{
    for (size_t k = 0; k < hb->n_running; k++) {
        const Quern__AttemptRef *r = hb->running[k];
        if (r->task == a->task && r->attempt == a->attempt &&
            r->kind == (Quern__TaskKind)a->kind && strcmp(r->job_id, job) == 0)
            return 1;
    }
    return 0;
}

/* An attempt running on worker w for a while that its heartbeat does not
 * list never reached it, or its end never reached us: lost, not failed. */
static void s_vanished(qn_master *m, int w, const Quern__Heartbeat *hb,
                       int64_t now)
{
    qn_attempt_ref mine[256];
    unsigned n = qn_sched_worker_attempts(m->sched, w, mine, 256);
    int64_t grace = 3 * (int64_t)m->cfg.heartbeat_ms;
    if (grace < 2000)
        grace = 2000;
    for (unsigned i = 0; i < n; i++)
        if (now - mine[i].started >= grace &&
            !s_listed(hb, &mine[i], m->jobs.v[mine[i].job].id))
            qn_sched_vanished(m->sched, now, mine[i].job, mine[i].kind,
                              mine[i].task, mine[i].attempt);
}

/* An attempt worker w runs that is not current here (given up on, or of a
 * job this master never ran) only wastes a slot: kill it, unless an
 * earlier run of this master started it (it is adopted). Said once per
 * heartbeat, however many it lists. */
static void s_cancel_stale(qn_master *m, int w, const Quern__Heartbeat *hb,
                           int64_t now)
{
    const qn_mworker *wk = &m->workers.v[w];
    unsigned stale = 0;
    for (size_t i = 0; i < hb->n_running; i++) {
        const Quern__AttemptRef *r = hb->running[i];
        int jx = qn_jobs_find(&m->jobs, r->job_id);
        qn_kind kind = r->kind == QUERN__TASK_KIND__REDUCE ? QN_REDUCE : QN_MAP;
        if (jx >= 0 && qn_sched_attempt_worker(m->sched, jx, kind, r->task,
                                               r->attempt) == w)
            continue;
        /* One an earlier run of this master started is taken as it is. */
        if (jx >= 0 && r->kind <= QUERN__TASK_KIND__REDUCE &&
            qn_task_adopt(m, w, jx, kind, r->task, r->attempt, now))
            continue;
        Quern__CancelTask ct = QUERN__CANCEL_TASK__INIT;
        ct.attempt = (Quern__AttemptRef *)r;
        qn_send_worker(m, w, QUERN__ENVELOPE__BODY_CANCEL_TASK, &ct);
        if (stale++ == 0)
            qn_info("master: worker %s runs %s %s task %u attempt %u, which "
                    "is not current; cancelling it",
                    wk->id, r->job_id, qn_kind_name(kind), r->task, r->attempt);
    }
    if (stale > 1)
        qn_info("master: worker %s: cancelled %u more attempts that are not "
                "current",
                wk->id, stale - 1);
}

/* Count the heartbeat intervals that passed without one from wk, now that
 * one came (a late one is missed). */
static void s_count_missed(qn_master *m, qn_mworker *wk, int64_t now)
{
    int64_t hb_ms = m->cfg.heartbeat_ms > 0 ? m->cfg.heartbeat_ms : 1000;
    if (wk->hb_last && now - wk->hb_last > hb_ms + hb_ms / 2)
        m->stats.heartbeats_missed +=
            (uint64_t)((now - wk->hb_last + hb_ms / 2) / hb_ms - 1);
    wk->hb_last = now;
}

static void s_heartbeat(qn_master *m, const Quern__Heartbeat *hb, int64_t now)
{
    int w = s_known(m, hb->worker_id, hb->session, now, 0);
    if (w < 0)
        return;
    qn_mworker *wk = &m->workers.v[w];
    if (hb->seq && hb->seq <= wk->hb_seq) {
        /* Queued across a reconnect and delivered late: what it says
         * about attempts is old news. (It still shows the worker lives.) */
        qn_debug("master: worker %s: ignoring heartbeat %llu, older than "
                 "%llu",
                 wk->id, (unsigned long long)hb->seq,
                 (unsigned long long)wk->hb_seq);
        return;
    }
    wk->hb_seq = hb->seq;
    s_count_missed(m, wk, now);
    s_route_here(m, w); /* a fresh message: its connection is current */
    /* The answer tells the worker its master is still there. */
    s_welcome(m, wk->id, 0, 0, wk->session);
    s_vanished(m, w, hb, now);
    if (hb->rss_peak > wk->rss_peak)
        wk->rss_peak = hb->rss_peak;
    if (hb->shuffle_dropped > wk->shuffle_dropped)
        wk->shuffle_dropped = hb->shuffle_dropped;
    for (size_t i = 0; i < hb->n_work; i++) {
        const Quern__AttemptRef *r = hb->work[i]->attempt;
        int jx = qn_jobs_find(&m->jobs, r->job_id);
        if (jx < 0 || r->kind > QUERN__TASK_KIND__REDUCE)
            continue;
        qn_sched_work(m->sched, now, jx, (qn_kind)r->kind, r->task, r->attempt,
                      hb->work[i]->records + hb->work[i]->bytes);
    }
    s_cancel_stale(m, w, hb, now);
}

/* ---- data, plugins, logs ------------------------------------------------- */

/*
 * Worker w could not install a reduce's output as its dataset shard (a
 * full disk, say). The reduce is done and its staged output gone, so the
 * job fails saying why rather than wait for a shard that never comes.
 */
static void s_commit_failure(qn_master *m, int w,
                             const Quern__CommitFailure *cf, int64_t now)
{
    int jx = qn_jobs_find(&m->jobs, cf->job_id);
    qn_job *j = jx >= 0 ? &m->jobs.v[jx] : NULL;
    qn_task_info ti = {.worker = -1};
    if (j && cf->index < j->nreduce)
        ti = qn_sched_task(m->sched, jx, QN_REDUCE, cf->index);
    /* Only a COMMIT we sent can fail: one for a reduce done on w. */
    if (!j || !j->out.dataset || ti.state != QN_TASK_DONE || ti.worker != w ||
        strcmp(j->spec->output, cf->dataset) != 0) {
        qn_drop(m, DROP_INVALID, "a commit failure for no output it holds");
        return;
    }
    if (j->state != QUERN__JOB_STATE__JOB_RUNNING)
        return;
    char msg[1200];
    snprintf(msg, sizeof msg,
             "worker %s could not install output shard %u of %s: %s",
             m->workers.v[w].id, cf->index, cf->dataset, cf->reason);
    /* Other reduces may still run: the scheduler lets the job go too (and
     * its attempts are killed), or it would go on acting for a job whose
     * tasks are gone. (Found by fuzz_master.) */
    if (qn_sched_job_cancel(m->sched, now, jx) == 0)
        qn_actions_run(m, now);
    qn_commit_job_end(m, jx, QUERN__JOB_STATE__JOB_FAILED, msg, now);
}

static void s_data_report(qn_master *m, const Quern__DataReport *dr,
                          int64_t now)
{
    int w = s_known(m, dr->worker_id, dr->session, now, 1);
    if (w < 0)
        return;
    for (size_t i = 0; i < dr->n_added; i++)
        qn_datasets_hold(m, w, dr->added[i]);
    for (size_t i = 0; i < dr->n_removed; i++)
        qn_datasets_unhold(m, w, dr->removed[i]->dataset,
                           dr->removed[i]->index);
    for (size_t i = 0; i < dr->n_failed; i++)
        s_commit_failure(m, w, dr->failed[i], now);
    for (size_t i = 0; i < dr->n_damaged; i++) {
        m->heal.damaged++;
        qn_event(m, now, QN_LOG_WARN, "scrub_error", -1, -1, 0, 0, w,
                 "worker %s found its copy of shard %s/part-%05u damaged and "
                 "dropped it; a good copy is made from another",
                 m->workers.v[w].id, dr->damaged[i]->dataset,
                 dr->damaged[i]->index);
    }
    qn_commit_data_changed(m, now);
}

static void s_plugin_request(qn_master *m, const Quern__PluginRequest *pr,
                             int64_t now)
{
    /* A job's code and files go only to the workers that run it. */
    int w = s_known(m, pr->worker_id, pr->session, now, 0);
    if (w < 0)
        return;
    Quern__PluginReply r = QUERN__PLUGIN_REPLY__INIT;
    r.hash = pr->hash;
    r.error = (char *)"no running job has a plugin or file with that hash";
    const qn_plugin *p = qn_plugins_get(&m->plugins, pr->hash, now);
    if (p) {
        r.data.data = p->data;
        r.data.len = p->len;
        r.error = (char *)"";
    }
    qn_send_reply(m, QUERN__ENVELOPE__BODY_PLUGIN_REPLY, &r);
}

/*
 * A message from a worker that speaks of an older run of this master
 * (epoch, set; 0: a worker that does not say) is refused: what it says
 * of attempts was said to a master that is gone. A known worker's
 * heartbeat is answered with a welcome, from which it learns that the
 * master restarted and tells everything again. Returns 1 if refused.
 */
static int s_old_epoch(qn_master *m, const char *id, uint64_t session,
                       uint64_t epoch, const char *what, int heartbeat)
{
    uint64_t mine = qn_journal_epoch(&m->journal);
    if (!epoch || epoch >= mine)
        return 0;
    char why[200];
    snprintf(why, sizeof why,
             "a %s from worker %s of master epoch %llu (this "
             "is epoch %llu)",
             what, id, (unsigned long long)epoch, (unsigned long long)mine);
    qn_drop(m, DROP_EPOCH, why);
    int w = qn_workers_find(&m->workers, id);
    if (heartbeat && w >= 0 && qn_workers_alive(&m->workers, w) &&
        m->workers.v[w].session == session)
        s_welcome(m, id, 0, 0, session);
    else if (heartbeat && w >= 0 && qn_workers_alive(&m->workers, w) &&
             m->workers.v[w].unheard)
        s_welcome(m, id, 1, 0, 0); /* welcomed elsewhere since: rejoin */
    return 1;
}

/* A worker stops on purpose: what it runs runs elsewhere now, not after
 * --dead-ms, and its map outputs are made again (it offers them if it
 * comes back). */
static void s_leaving(qn_master *m, const Quern__WorkerLeaving *wl, int64_t now)
{
    int w = s_known(m, wl->worker_id, wl->session, now, 0);
    if (w < 0)
        return;
    qn_mworker *wk = &m->workers.v[w];
    if (wl->incarnation != wk->incarnation) {
        qn_drop(m, DROP_INVALID, "a goodbye from another incarnation");
        return;
    }
    wk->left = 1;
    qn_sched_worker_leave(m->sched, now, w);
}

/* A worker told to stop asks to be drained first. */
static void s_drain(qn_master *m, const Quern__WorkerDrain *wd, int64_t now)
{
    int w = s_known(m, wd->worker_id, wd->session, now, 0);
    if (w < 0)
        return;
    if (wd->incarnation != m->workers.v[w].incarnation) {
        qn_drop(m, DROP_INVALID, "a drain request from another incarnation");
        return;
    }
    qn_drain_worker_asks(m, w, wd->deadline_ms, now);
}

int qn_from_worker(qn_master *m, const Quern__Envelope *env, int64_t now)
{
    const Quern__Heartbeat *hb = env->heartbeat;
    const Quern__TaskUpdate *tu = env->task_update;
    if ((env->body_case == QUERN__ENVELOPE__BODY_HEARTBEAT &&
         s_old_epoch(m, hb->worker_id, hb->session, hb->epoch, "heartbeat",
                     1)) ||
        (env->body_case == QUERN__ENVELOPE__BODY_TASK_UPDATE &&
         s_old_epoch(m, tu->worker_id, tu->session, tu->epoch, "task update",
                     0)))
        return 1;
    switch (env->body_case) {
    case QUERN__ENVELOPE__BODY_WORKER_HELLO:
        s_hello(m, env->worker_hello, now);
        return 1;
    case QUERN__ENVELOPE__BODY_HEARTBEAT:
        s_heartbeat(m, env->heartbeat, now);
        return 1;
    case QUERN__ENVELOPE__BODY_TASK_UPDATE: {
        const Quern__TaskUpdate *u = env->task_update;
        int w = s_known(m, u->worker_id, u->session, now, 1);
        if (w >= 0)
            qn_task_update(m, w, u, now);
        return 1;
    }
    case QUERN__ENVELOPE__BODY_DATA_REPORT:
        s_data_report(m, env->data_report, now);
        return 1;
    case QUERN__ENVELOPE__BODY_PLUGIN_REQUEST:
        s_plugin_request(m, env->plugin_request, now);
        return 1;
    case QUERN__ENVELOPE__BODY_LOGS_REPLY:
        qn_logs_reply(m, env->logs_reply);
        return 1;
    case QUERN__ENVELOPE__BODY_WORKER_LEAVING:
        s_leaving(m, env->worker_leaving, now);
        return 1;
    case QUERN__ENVELOPE__BODY_WORKER_DRAIN:
        s_drain(m, env->worker_drain, now);
        return 1;
    default: return 0;
    }
}
