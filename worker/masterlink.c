/*
 * masterlink.c -- see masterlink.h.
 */
#include "masterlink.h"

#include "curve.h"
#include "log.h"
#include "shuffle.h"
#include "store.h"
#include "util.h"
#include "wsandbox.h"
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zmq.h>

#define HELLO_RETRY_MS 1000    /* first wait for a welcome */
#define HELLO_RETRY_MAX 8000   /* backoff cap */
#define REFUSED_LOG_MS 60000   /* a version refusal is logged once a minute */
#define MASTER_SILENT_BEATS 5  /* heartbeats unanswered: the master is gone */
#define MASTER_SILENT_MIN 3000 /* ... but never less than this (ms) */
#define HELLO_OFFER_MAX (8 << 20) /* bytes of map outputs a hello offers */
#define LEAVING_LINGER_MS 2000    /* how long the goodbye may take to go */

int qn_masterlink_open(qn_worker *w, char *err, size_t errcap)
{
    w->link.sock = qn_wire_socket(w->ctx, ZMQ_DEALER);
    if (w->curve.secret_key[0] &&
        qn_curve_client(w->link.sock, &w->curve, w->curve.master_key) < 0) {
        snprintf(err, errcap, "cannot set up CURVE to the master");
        return -1;
    }
    if (zmq_connect(w->link.sock, w->cfg.master) < 0) {
        snprintf(err, errcap, "bad master endpoint '%s': %s", w->cfg.master,
                 zmq_strerror(errno));
        return -1;
    }
    w->link.heartbeat_ms = 1000;
    w->link.hello_backoff = HELLO_RETRY_MS;
    return 0;
}

void qn_masterlink_close(qn_worker *w)
{
    qn_masterlink_forget(w, NULL);
    if (w->link.sock)
        zmq_close(w->link.sock);
    w->link.sock = NULL;
    qn_frames_release(&w->link.in);
}

void qn_masterlink_send(qn_worker *w, Quern__Envelope *env)
{
    int rc = qn_wire_send(w->link.sock, NULL, 0, env, NULL, 0);
    if (rc < 0)
        qn_warn("worker %s: cannot send %s to the master: %s", w->id,
                qn_wire_name(env), zmq_strerror(-rc));
}

static void s_shard_info(Quern__ShardInfo *m, const qn_shard *sh)
{
    quern__shard_info__init(m);
    m->dataset = (char *)sh->dataset;
    m->index = sh->index;
    m->size = sh->size;
    m->crc = sh->crc;
    m->sealed = sh->sealed;
    m->nshards = sh->nshards;
}

void qn_masterlink_data_report(qn_worker *w)
{
    if (!w->store || !w->link.welcomed)
        return; /* kept for the next hello or report */
    qn_shard *a, *r, *d;
    size_t na, nr, nd;
    qn_store_take_changes(w->store, &a, &na, &r, &nr);
    qn_store_take_damaged(w->store, &d, &nd);
    if (na + nr + nd > 0) {
        Quern__Envelope env = QUERN__ENVELOPE__INIT;
        Quern__DataReport dr = QUERN__DATA_REPORT__INIT;
        Quern__ShardInfo *si = qn_calloc(na + nr + nd, sizeof *si);
        Quern__ShardInfo **ap = qn_calloc(na + 1, sizeof *ap);
        Quern__ShardInfo **rp = qn_calloc(nr + 1, sizeof *rp);
        Quern__ShardInfo **dp = qn_calloc(nd + 1, sizeof *dp);
        for (size_t i = 0; i < nd; i++) {
            s_shard_info(&si[na + nr + i], &d[i]);
            dp[i] = &si[na + nr + i];
        }
        dr.damaged = dp;
        dr.n_damaged = nd;
        for (size_t i = 0; i < na; i++) {
            s_shard_info(&si[i], &a[i]);
            ap[i] = &si[i];
        }
        for (size_t i = 0; i < nr; i++) {
            s_shard_info(&si[na + i], &r[i]);
            rp[i] = &si[na + i];
        }
        dr.worker_id = w->id;
        dr.session = w->link.session;
        dr.added = ap;
        dr.n_added = na;
        dr.removed = rp;
        dr.n_removed = nr;
        env.body_case = QUERN__ENVELOPE__BODY_DATA_REPORT;
        env.data_report = &dr;
        qn_masterlink_send(w, &env);
        free(si);
        free(ap);
        free(rp);
        free(dp);
    }
    free(a);
    free(r);
    free(d);
}

/* The finished map outputs we hold, as told, for the hello (up to
 * HELLO_OFFER_MAX bytes of them; the rest are not offered): *n updates,
 * each to be freed with the array. */
static Quern__TaskUpdate **s_finished(qn_worker *w, size_t *n)
{
    Quern__TaskUpdate **v = qn_calloc(w->link.ntold + 1, sizeof *v);
    size_t bytes = 0;
    *n = 0;
    for (size_t i = 0; i < w->link.ntold; i++) {
        const qn_told *t = &w->link.told[i];
        if (t->ref.kind != QUERN__TASK_KIND__MAP)
            continue;
        if (bytes + t->len > HELLO_OFFER_MAX) {
            qn_warn("worker %s: offering %zu of our map outputs to the "
                    "master, not all: a hello holds at most %d bytes of them",
                    w->id, *n, HELLO_OFFER_MAX);
            break;
        }
        Quern__TaskUpdate *u =
            quern__task_update__unpack(NULL, t->len, t->update);
        if (!u)
            continue;
        bytes += t->len;
        v[(*n)++] = u;
    }
    return v;
}

void qn_masterlink_hello(qn_worker *w, int64_t now)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__WorkerHello h = QUERN__WORKER_HELLO__INIT;
    h.worker_id = w->id;
    h.slots = w->cfg.slots;
    h.shuffle_endpoint = (char *)qn_shuffle_endpoint(w->shuffle);
    h.host = w->host;
    h.pid = (uint32_t)getpid();
    h.curve_public = w->curve.public_key;
    h.has_data = w->store != NULL;
    h.session = w->link.session;
    h.minor = QN_PROTOCOL_MINOR;
    h.incarnation = w->incarnation;
    h.finished = s_finished(w, &h.n_finished);
    qn_wsandbox_names sbn;
    qn_wsandbox_hello(w, &h, &sbn);
    size_t ns = w->store ? qn_store_count(w->store) : 0;
    Quern__ShardInfo *si = qn_calloc(ns + 1, sizeof *si);
    Quern__ShardInfo **sp = qn_calloc(ns + 1, sizeof *sp);
    for (size_t i = 0; i < ns; i++) {
        s_shard_info(&si[i], qn_store_at(w->store, i));
        sp[i] = &si[i];
    }
    h.shards = sp;
    h.n_shards = ns;
    env.body_case = QUERN__ENVELOPE__BODY_WORKER_HELLO;
    env.worker_hello = &h;
    qn_masterlink_send(w, &env);
    free(si);
    free(sp);
    for (size_t i = 0; i < h.n_finished; i++)
        quern__task_update__free_unpacked(h.finished[i], NULL);
    free(h.finished);
    if (w->store) {
        /* The hello lists everything: earlier changes are in it. */
        qn_shard *a, *r;
        size_t na, nr;
        qn_store_take_changes(w->store, &a, &na, &r, &nr);
        free(a);
        free(r);
    }
    w->link.next_hello = now + w->link.hello_backoff;
    if (w->link.hello_backoff < HELLO_RETRY_MAX)
        w->link.hello_backoff *= 2;
}

void qn_masterlink_heartbeat(qn_worker *w, int64_t now)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__Heartbeat hb = QUERN__HEARTBEAT__INIT;
    size_t nrefs = w->att.n + w->wait.n;
    Quern__AttemptRef *refs = qn_calloc(nrefs + 1, sizeof *refs);
    Quern__AttemptRef **ptrs = qn_calloc(nrefs + 1, sizeof *ptrs);
    Quern__AttemptWork *work = qn_calloc(w->att.n + 1, sizeof *work);
    Quern__AttemptWork **wptrs = qn_calloc(w->att.n + 1, sizeof *wptrs);
    size_t nrun = 0;
    for (size_t i = 0; i < w->att.n; i++) {
        if (w->att.v[i].ref.kind == QUERN__TASK_KIND__COPY)
            continue; /* the worker's own business, not a task's */
        quern__attempt_ref__init(&refs[nrun]);
        refs[nrun].job_id = w->att.v[i].ref.job_id;
        refs[nrun].kind = w->att.v[i].ref.kind;
        refs[nrun].task = w->att.v[i].ref.task;
        refs[nrun].attempt = w->att.v[i].ref.attempt;
        ptrs[nrun] = &refs[nrun];
        quern__attempt_work__init(&work[nrun]);
        work[nrun].attempt = &refs[nrun];
        work[nrun].records = w->att.v[i].records;
        work[nrun].bytes = w->att.v[i].bytes;
        wptrs[nrun] = &work[nrun];
        nrun++;
    }
    /* Assignments waiting for their plugin run, as far as the master is
     * concerned. */
    for (size_t i = 0; i < w->wait.n; i++) {
        Quern__AttemptRef *r = &refs[nrun + i];
        quern__attempt_ref__init(r);
        r->job_id = w->wait.v[i].spec->job_id;
        r->kind = w->wait.v[i].spec->kind;
        r->task = w->wait.v[i].spec->task;
        r->attempt = w->wait.v[i].spec->attempt;
        ptrs[nrun + i] = r;
    }
    hb.worker_id = w->id;
    hb.session = w->link.session;
    hb.running = ptrs;
    hb.n_running = nrun + w->wait.n;
    hb.work = wptrs;
    hb.n_work = nrun;
    hb.seq = ++w->link.heartbeat_seq;
    hb.epoch = w->link.epoch;
    hb.shuffle_dropped = qn_shuffle_get_stats(w->shuffle).dropped;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    hb.rss_peak = (uint64_t)ru.ru_maxrss * 1024;
    env.body_case = QUERN__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    qn_masterlink_send(w, &env);
    free(refs);
    free(ptrs);
    free(work);
    free(wptrs);
    w->link.next_heartbeat = now + w->link.heartbeat_ms;
}

void qn_masterlink_update(qn_worker *w, const qn_attempt_ref *r,
                          const Quern__TaskUpdate *u)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__AttemptRef ref;
    qn_attempt_ref_wire(&ref, r);
    /* A copy of the update, which names the attempt and us: the caller's
     * is left as it was. */
    Quern__TaskUpdate mine = *u;
    mine.attempt = &ref;
    mine.worker_id = w->id;
    mine.session = w->link.session;
    mine.epoch = w->link.epoch;
    env.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
    env.task_update = &mine;
    qn_masterlink_send(w, &env);
}

/*
 * The master speaks another protocol version. Our hello goes on being
 * retried (the master may be upgraded to match), so say so at once and
 * then once a minute, with how often it was said in between.
 */
void qn_masterlink_refused(qn_worker *w, const Quern__Envelope *env,
                           uint32_t theirs, int64_t now)
{
    if (w->link.refused_logged &&
        now - w->link.refused_logged < REFUSED_LOG_MS) {
        w->link.refused_quiet++;
        return;
    }
    char more[64] = "";
    if (w->link.refused_quiet)
        snprintf(more, sizeof more, " (and %u times since the last line)",
                 w->link.refused_quiet);
    if (env && env->body_case == QUERN__ENVELOPE__BODY_REFUSAL)
        qn_error("worker %s: the master refused us: %s%s", w->id,
                 env->refusal->reason, more);
    else
        qn_error("worker %s: the master speaks protocol version %u, this "
                 "worker speaks %u%s",
                 w->id, theirs, QN_PROTOCOL_VERSION, more);
    w->link.refused_logged = now;
    w->link.refused_quiet = 0;
}

/*
 * The master answers every heartbeat. When it has not for a while it is
 * gone (or the network is): drop what is queued for it on a fresh socket
 * and say hello again, with backoff, until a master welcomes us.
 */
void qn_masterlink_check(qn_worker *w, int64_t now)
{
    int64_t silent = (int64_t)w->link.heartbeat_ms * MASTER_SILENT_BEATS;
    if (silent < MASTER_SILENT_MIN)
        silent = MASTER_SILENT_MIN;
    if (!w->link.welcomed || now - w->link.heard < silent)
        return;
    qn_warn("worker %s: the master at %s has not answered for %lld ms; "
            "connecting again",
            w->id, w->cfg.master, (long long)(now - w->link.heard));
    void *sock = qn_wire_socket(w->ctx, ZMQ_DEALER);
    if (sock && w->curve.secret_key[0])
        qn_curve_client(sock, &w->curve, w->curve.master_key);
    if (!sock || zmq_connect(sock, w->cfg.master) < 0) {
        if (sock)
            zmq_close(sock);
        w->link.heard = now; /* try again later */
        return;
    }
    zmq_close(w->link.sock);
    w->link.sock = sock;
    w->link.welcomed = 0;
    w->link.lost_since = w->link.heard;
    w->link.heard = now;
    w->link.hello_backoff = HELLO_RETRY_MS;
    qn_masterlink_hello(w, now);
}

void qn_masterlink_heard(qn_worker *w, int64_t now)
{
    w->link.heard = now;
}

void qn_masterlink_rejoin(qn_worker *w, int64_t now)
{
    w->link.welcomed = 0;
    w->link.session = 0;
    w->link.hello_backoff = HELLO_RETRY_MS;
    qn_masterlink_hello(w, now);
}

void qn_masterlink_told(qn_worker *w, const qn_attempt_ref *r,
                        const Quern__TaskUpdate *u)
{
    QN_GROW(w->link.told, w->link.cap_told, w->link.ntold + 1);
    qn_told *t = &w->link.told[w->link.ntold++];
    t->ref = *r;
    t->len = quern__task_update__get_packed_size(u);
    t->update = qn_malloc(t->len ? t->len : 1);
    quern__task_update__pack(u, t->update);
}

void qn_masterlink_forget(qn_worker *w, const char *job_id)
{
    size_t k = 0;
    for (size_t i = 0; i < w->link.ntold; i++) {
        qn_told *t = &w->link.told[i];
        if (!job_id || strcmp(t->ref.job_id, job_id) == 0)
            free(t->update);
        else
            w->link.told[k++] = *t;
    }
    w->link.ntold = k;
    if (!job_id) {
        free(w->link.told);
        w->link.told = NULL;
        w->link.cap_told = 0;
    }
}

void qn_masterlink_forget_one(qn_worker *w, const qn_attempt_ref *r)
{
    for (size_t i = 0; i < w->link.ntold; i++) {
        qn_told *t = &w->link.told[i];
        if (t->ref.kind == r->kind && t->ref.task == r->task &&
            t->ref.attempt == r->attempt &&
            strcmp(t->ref.job_id, r->job_id) == 0) {
            free(t->update);
            w->link.told[i] = w->link.told[--w->link.ntold];
            return;
        }
    }
}

void qn_masterlink_forget_reduces(qn_worker *w)
{
    size_t k = 0;
    for (size_t i = 0; i < w->link.ntold; i++) {
        qn_told *t = &w->link.told[i];
        if (t->ref.kind != QUERN__TASK_KIND__MAP)
            free(t->update);
        else
            w->link.told[k++] = *t;
    }
    w->link.ntold = k;
}

void qn_masterlink_leaving(qn_worker *w)
{
    if (!w->link.welcomed || w->link.minor < 3)
        return; /* a master before minor 2 would not know the message */
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__WorkerLeaving wl = QUERN__WORKER_LEAVING__INIT;
    wl.worker_id = w->id;
    wl.session = w->link.session;
    wl.incarnation = w->incarnation;
    env.body_case = QUERN__ENVELOPE__BODY_WORKER_LEAVING;
    env.worker_leaving = &wl;
    /* Closing the socket waits this long for it to go out. */
    int linger = LEAVING_LINGER_MS;
    zmq_setsockopt(w->link.sock, ZMQ_LINGER, &linger, sizeof linger);
    qn_masterlink_send(w, &env);
    qn_info("worker %s: told the master at %s we are leaving", w->id,
            w->cfg.master);
}

/* Tell a restarted master again of every success it may not have kept. */
static void s_tell_again(qn_worker *w)
{
    for (size_t i = 0; i < w->link.ntold; i++) {
        const qn_told *t = &w->link.told[i];
        Quern__TaskUpdate *u =
            quern__task_update__unpack(NULL, t->len, t->update);
        if (!u)
            continue;
        qn_masterlink_update(w, &t->ref, u);
        quern__task_update__free_unpacked(u, NULL);
    }
    if (w->link.ntold)
        qn_info("worker %s: told the restarted master again of %zu finished "
                "attempts",
                w->id, w->link.ntold);
}

void qn_masterlink_restarted(qn_worker *w, const Quern__WorkerWelcome *ww,
                             int64_t now)
{
    qn_info("worker %s: the master at %s restarted (epoch %llu, was %llu); "
            "telling it what we run and hold",
            w->id, w->cfg.master, (unsigned long long)ww->epoch,
            (unsigned long long)w->link.epoch);
    w->link.welcomed = 0;
    w->link.hello_backoff = HELLO_RETRY_MS;
    qn_masterlink_hello(w, now);
}

int qn_masterlink_grace_over(qn_worker *w, int64_t now)
{
    if (!w->link.lost_since || w->cfg.master_grace_ms <= 0 ||
        now - w->link.lost_since < w->cfg.master_grace_ms)
        return 0;
    qn_warn("worker %s: the master at %s has been away %lld ms, longer than "
            "--master-grace-ms %d; dropping our attempts and map outputs",
            w->id, w->cfg.master, (long long)(now - w->link.lost_since),
            w->cfg.master_grace_ms);
    w->link.lost_since = 0;
    return 1;
}

void qn_masterlink_joined(qn_worker *w, const Quern__WorkerWelcome *ww,
                          int64_t now)
{
    int restarted = w->link.epoch && ww->epoch != w->link.epoch;
    w->link.epoch = ww->epoch;
    if (ww->minor != QN_PROTOCOL_MINOR && ww->minor + 1 != w->link.minor)
        qn_info("worker %s: the master speaks Quern protocol %u.%u, this "
                "worker %u.%u: the two use %u.%u",
                w->id, QN_PROTOCOL_VERSION, ww->minor, QN_PROTOCOL_VERSION,
                QN_PROTOCOL_MINOR, QN_PROTOCOL_VERSION, ww->minor);
    w->link.minor = ww->minor + 1;
    w->link.lost_since = 0;
    w->link.session = ww->session;
    w->link.welcomed = 1;
    w->link.heard = now;
    w->link.refused_logged = 0; /* a later refusal is news again */
    w->link.refused_quiet = 0;
    w->link.hello_backoff = HELLO_RETRY_MS;
    if (ww->heartbeat_ms >= 10)
        w->link.heartbeat_ms = ww->heartbeat_ms;
    qn_info("worker %s: joined the master at %s with %u slots, "
            "shuffle on %s",
            w->id, w->cfg.master, w->cfg.slots,
            qn_shuffle_endpoint(w->shuffle));
    qn_masterlink_heartbeat(w, now);
    if (restarted)
        s_tell_again(w);
    if (w->leave_by) /* a new master (or session): ask it again */
        qn_masterlink_drain_me(w);
}

int qn_masterlink_drain_me(qn_worker *w)
{
    if (!w->link.welcomed || w->link.minor < 5)
        return 0; /* a master before minor 4 would not know the message */
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__WorkerDrain wd = QUERN__WORKER_DRAIN__INIT;
    wd.worker_id = w->id;
    wd.session = w->link.session;
    wd.incarnation = w->incarnation;
    wd.deadline_ms = (uint32_t)(w->cfg.stop_timeout_ms / 2);
    if (!wd.deadline_ms)
        wd.deadline_ms = 1;
    env.body_case = QUERN__ENVELOPE__BODY_WORKER_DRAIN;
    env.worker_drain = &wd;
    qn_masterlink_send(w, &env);
    qn_info("worker %s: asked the master at %s to drain us before we stop",
            w->id, w->cfg.master);
    return 1;
}
