/*
 * worker.c -- see worker.h.
 *
 * One thread, one zmq_poll over: the DEALER socket to the master, the
 * shuffle server's ROUTER, a signalfd (SIGCHLD, SIGTERM, SIGINT), and the
 * control socketpair of every running attempt. Each part of the daemon's
 * state (wstate.h) has a module of its own; this file builds them, runs
 * the loop and hands each message from the master to the module it is
 * for.
 */
#include "worker.h"
#include "wstate.h"

#include "assign.h"
#include "attempts.h"
#include "curve.h"
#include "datacmd.h"
#include "identity.h"
#include "log.h"
#include "masterlink.h"
#include "proc.h"
#include "recovery.h"
#include "shuffle.h"
#include "scrub.h"
#include "store.h"
#include "tasklogs.h"
#include "util.h"
#include "wsandbox.h"
#include "wire.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define UPLOAD_IDLE_MS 120000 /* an upload silent this long is dropped */

/* ---- set-up -------------------------------------------------------------- */

/* quern-task: as configured, or in ../libexec next to this program. */
static int s_task_bin(qn_worker *w, char *err, size_t errcap)
{
    if (w->cfg.task_bin) {
        w->task_bin = qn_strdup(w->cfg.task_bin);
    } else {
        char dir[PATH_MAX];
        if (qn_exe_dir(dir, sizeof dir) < 0) {
            snprintf(err, errcap, "cannot find my own executable");
            return -1;
        }
        qn_buf b = {0};
        qn_buf_printf(&b, "%s/../libexec/quern-task", dir);
        w->task_bin = b.data;
    }
    if (access(w->task_bin, X_OK) < 0) {
        snprintf(err, errcap,
                 "task runner %s: %s (is Quern installed "
                 "completely?)",
                 w->task_bin, strerror(errno));
        return -1;
    }
    return 0;
}

/* WORK/sub made (when missing); emptied first when clear is set. */
static void s_subdir(const qn_worker *w, const char *sub, int clear)
{
    qn_buf p = {0};
    qn_buf_printf(&p, "%s/%s", w->work_dir, sub);
    if (clear)
        qn_rmtree(p.data);
    qn_mkdirs(p.data, 0755);
    qn_buf_release(&p);
}

/* The work dir: as configured (absolute, so task processes and logs name
 * it unambiguously), or a private one removed at exit. */
static int s_work_dir(qn_worker *w, char *err, size_t errcap)
{
    if (w->cfg.work_dir) {
        int rc = qn_mkdirs(w->cfg.work_dir, 0755);
        w->work_dir = rc == 0 ? realpath(w->cfg.work_dir, NULL) : NULL;
        if (!w->work_dir) {
            snprintf(err, errcap, "work dir %s: %s", w->cfg.work_dir,
                     strerror(rc < 0 ? -rc : errno));
            return -1;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        qn_buf b = {0};
        qn_buf_printf(&b, "%s/quern-worker-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(b.data)) {
            snprintf(err, errcap, "cannot create a work dir %s: %s", b.data,
                     strerror(errno));
            qn_buf_release(&b);
            return -1;
        }
        /* Absolute: a task works in a folder under it (taskrun.h). */
        w->work_dir = realpath(b.data, NULL);
        if (w->work_dir)
            qn_buf_release(&b);
        else
            w->work_dir = b.data;
        w->own_work_dir = 1;
    }
    s_subdir(w, "jobs", 0);
    s_subdir(w, "plugins", 0);
    return 0;
}

/*
 * Who we are: with a work dir of our own choosing, the worker kept there
 * (its id, the next incarnation), its map outputs offered again and the
 * rest of what the old process left deleted; else a new worker.
 */
static int s_identity(qn_worker *w, char *err, size_t errcap)
{
    gethostname(w->host, sizeof w->host - 1);
    qn_identity id;
    if (w->own_work_dir)
        qn_identity_fresh(w->host, &id);
    else if (qn_identity_take(w->work_dir, w->host, &id, err, errcap) < 0)
        return -1;
    snprintf(w->id, sizeof w->id, "%s", id.id);
    w->incarnation = id.incarnation;
    w->lock_fd = id.lock_fd;
    if (w->own_work_dir)
        return 0;
    qn_recovered got = qn_recovery_scan(w);
    if (w->incarnation > 1 || got.outputs + got.damaged + got.deleted > 0)
        qn_info(
            "worker %s: started again on %s (incarnation %llu): %zu finished "
            "map outputs of %zu jobs kept to offer the master, %zu damaged "
            "and %zu other leftovers deleted",
            w->id, w->work_dir, (unsigned long long)w->incarnation, got.outputs,
            got.jobs, got.damaged, got.deleted);
    return 0;
}

/* With --curve-secret: our keys, the master's, and the ZAP handler that
 * checks who connects to us. */
static int s_curve(qn_worker *w, char *err, size_t errcap)
{
    const qn_worker_config *cfg = &w->cfg;
    if (!cfg->curve_secret)
        return 0;
    if (qn_curve_load(&w->curve, cfg->curve_secret, cfg->curve_trusted,
                      cfg->curve_master, err, errcap) < 0)
        return -1;
    if (!w->curve.master_key[0]) {
        snprintf(err, errcap,
                 "CURVE needs the master's public key: give "
                 "--curve-master FILE or put it in %s/master.pub",
                 cfg->curve_trusted ? cfg->curve_trusted : "the trusted dir");
        return -1;
    }
    w->zap = qn_zap_new(w->ctx, &w->curve, "worker", err, errcap);
    return w->zap ? 0 : -1;
}

qn_worker *qn_worker_new(const qn_worker_config *cfg, char *err, size_t errcap)
{
    qn_worker *w = qn_calloc(1, sizeof *w);
    w->cfg = *cfg;
    w->sigfd = -1;
    w->lock_fd = -1;
    if (s_task_bin(w, err, errcap) < 0 || s_work_dir(w, err, errcap) < 0 ||
        s_identity(w, err, errcap) < 0 || qn_wsandbox_setup(w, err, errcap) < 0)
        goto fail;
    if (cfg->data_dir) {
        w->store = qn_store_open(cfg->data_dir, err, errcap);
        if (!w->store)
            goto fail;
        qn_info("worker %s: %zu dataset shards in %s, checked", w->id,
                qn_store_count(w->store), qn_store_dir(w->store));
        w->scrub = qn_scrub_new(w->store, cfg->scrub_rate);
    }
    w->sigfd = qn_signals_open();
    if (w->sigfd < 0) {
        snprintf(err, errcap, "signalfd: %s", strerror(-w->sigfd));
        goto fail;
    }
    w->ctx = zmq_ctx_new();
    if (s_curve(w, err, errcap) < 0 || qn_masterlink_open(w, err, errcap) < 0)
        goto fail;
    w->shuffle = qn_shuffle_new(
        w->ctx, cfg->shuffle ? cfg->shuffle : "tcp://127.0.0.1:*", w->work_dir,
        w->curve.secret_key[0] ? &w->curve : NULL, err, errcap);
    if (!w->shuffle)
        goto fail;
    qn_shuffle_set_store(w->shuffle, w->store);
    return w;
fail:
    qn_worker_destroy(&w);
    return NULL;
}

/* ---- the master's messages ---------------------------------------------- */

/* The master cancels an attempt, waiting for its plugin or running. */
static void s_cancel(qn_worker *w, const Quern__AttemptRef *r)
{
    if (!qn_assign_cancel(w, r))
        qn_attempts_cancel(w, r);
}

/* A job is over: kill what runs of it, drop what waits, forget its map
 * outputs and delete its files (its logs are pruned with the others'). */
static void s_job_end(qn_worker *w, const char *job_id)
{
    if (!qn_id_ok(job_id))
        return;
    qn_attempts_kill_job(&w->att, job_id);
    qn_assign_drop_job(w, job_id);
    qn_shuffle_forget_job(w->shuffle, job_id);
    qn_masterlink_forget(w, job_id);
    qn_tasklogs_prune(w);
    qn_buf dir = {0};
    qn_buf_printf(&dir, "%s/jobs/%s", w->work_dir, job_id);
    qn_rmtree(dir.data);
    if (w->store) {
        dir.len = 0;
        qn_buf_printf(&dir, "%s/.staging/%s", qn_store_dir(w->store), job_id);
        qn_rmtree(dir.data);
    }
    qn_buf_release(&dir);
}

/*
 * A master that does not know us knows none of our attempts or map
 * outputs either: kill the one, delete the other, so nothing of an earlier
 * master's jobs can be mistaken for the new master's.
 */
static void s_forget_everything(qn_worker *w)
{
    qn_attempts_kill_job(&w->att, NULL);
    qn_assign_drop_job(w, NULL);
    qn_shuffle_forget_job(w->shuffle, NULL);
    qn_masterlink_forget(w, NULL);
    s_subdir(w, "jobs", 1);
}

/*
 * A master that knows of worker incarnations (minor 2) takes back the map
 * outputs our hello offers that its jobs need and ends the jobs it does
 * not run: only our attempts are dropped. With an older one, everything.
 */
static void s_forget_for(qn_worker *w, unsigned minor, const char *why)
{
    if (minor >= 2) {
        qn_info("worker %s: %s; dropping our attempts and offering our map "
                "outputs",
                w->id, why);
        qn_attempts_kill_job(&w->att, NULL);
        qn_assign_drop_job(w, NULL);
        qn_masterlink_forget_reduces(w);
    } else {
        qn_info("worker %s: %s; dropping our attempts and map outputs", w->id,
                why);
        s_forget_everything(w);
    }
}

/* A welcome: a new session, or word that the master does not know us. */
static void s_on_welcome(qn_worker *w, const Quern__WorkerWelcome *ww,
                         int64_t now)
{
    if (ww->rejoin) {
        s_forget_for(w, w->link.minor ? w->link.minor - 1 : ww->minor,
                     "the master does not know us (it may have restarted), "
                     "joining again");
        qn_masterlink_rejoin(w, now);
    } else if (!w->link.welcomed) {
        if (ww->reset)
            s_forget_for(w, ww->minor, "the master had given us up for dead");
        qn_masterlink_joined(w, ww, now);
    } else if (ww->epoch && ww->epoch != w->link.epoch) {
        qn_masterlink_restarted(w, ww, now);
    }
}

/* Hand a message from the master to the module it is for. */
static void s_dispatch(qn_worker *w, Quern__Envelope *env, int64_t now)
{
    switch (env->body_case) {
    case QUERN__ENVELOPE__BODY_WORKER_WELCOME:
        s_on_welcome(w, env->worker_welcome, now);
        break;
    case QUERN__ENVELOPE__BODY_ASSIGN_TASK:
        qn_assign_handle(w, env, now);
        break;
    case QUERN__ENVELOPE__BODY_PLUGIN_REPLY:
        qn_assign_on_plugin(w, env->plugin_reply);
        break;
    case QUERN__ENVELOPE__BODY_DATA_COMMAND:
        qn_datacmd_handle(w, env->data_command);
        break;
    case QUERN__ENVELOPE__BODY_CANCEL_TASK:
        s_cancel(w, env->cancel_task->attempt);
        break;
    case QUERN__ENVELOPE__BODY_JOB_END:
        s_job_end(w, env->job_end->job_id);
        break;
    case QUERN__ENVELOPE__BODY_DROP_OUTPUTS:
        qn_recovery_drop(w, env->drop_outputs);
        break;
    case QUERN__ENVELOPE__BODY_MAP_LOCATIONS:
        qn_attempts_on_locations(w, env);
        break;
    case QUERN__ENVELOPE__BODY_LOGS_REQUEST:
        qn_tasklogs_on_request(w, env->logs_request);
        break;
    case QUERN__ENVELOPE__BODY_WORKER_DRAINED:
        if (w->leave_by) {
            qn_info("worker %s: drained: nothing here is needed any more",
                    w->id);
            w->stop = 1;
        }
        break;
    default:
        qn_warn("worker %s: unexpected %s from the master", w->id,
                qn_wire_name(env));
    }
}

/* Read what the master sent (at most 256 messages a turn, so the rest of
 * the loop is not starved): drop what is malformed, log a refusal, and
 * dispatch the rest. */
static void s_on_master(qn_worker *w, int64_t now)
{
    for (int budget = 0; budget < 256; budget++) {
        int r = qn_wire_recv(w->link.sock, 0, &w->link.in);
        if (r == 0)
            return;
        if (r < 0) {
            qn_warn("worker %s: dropped a malformed message from the master",
                    w->id);
            continue;
        }
        Quern__Envelope *env;
        char err[256];
        uint32_t theirs = 0;
        int rc = qn_wire_decode(w->link.in.env.data, w->link.in.env.len, &env,
                                &theirs, err, sizeof err);
        if (rc == -QN_WIRE_EVERSION) {
            qn_masterlink_refused(w, env, theirs, now);
            qn_wire_free(env);
            continue;
        }
        if (rc < 0) {
            qn_warn("worker %s: dropped a bad message from the master: %s",
                    w->id, err);
            continue;
        }
        qn_masterlink_heard(w, now);
        s_dispatch(w, env, now);
        qn_wire_free(env);
    }
}

/* ---- the loop ------------------------------------------------------------ */

/* What the loop polls: the master, the shuffle server, signals, the ZAP
 * handler, and each attempt's channel (for writing too when something is
 * queued for it). Returns how many items; *items grows as needed. */
static size_t s_poll_items(qn_worker *w, zmq_pollitem_t **items, size_t *cap)
{
    size_t n = 4 + w->att.n;
    QN_GROW(*items, *cap, n);
    zmq_pollitem_t *it = *items;
    memset(it, 0, n * sizeof *it);
    it[0].socket = w->link.sock;
    it[0].events = ZMQ_POLLIN;
    it[1].socket = qn_shuffle_socket(w->shuffle);
    it[1].events = ZMQ_POLLIN;
    it[2].fd = w->sigfd;
    it[2].events = ZMQ_POLLIN;
    it[3].socket = w->zap ? qn_zap_socket(w->zap) : NULL;
    it[3].fd = -1;
    it[3].events = w->zap ? ZMQ_POLLIN : 0;
    for (size_t i = 0; i < w->att.n; i++) {
        const qn_attempt *a = &w->att.v[i];
        it[4 + i].fd = a->st.fd; /* -1 once closed: ignored */
        if (a->st.fd >= 0)
            it[4 + i].events =
                ZMQ_POLLIN | (a->out.len > a->out_off ? ZMQ_POLLOUT : 0);
    }
    return n;
}

/* How long the poll may wait: until the nearest deadline. */
static long s_timeout(const qn_worker *w, int64_t now)
{
    int64_t due =
        w->link.welcomed ? w->link.next_heartbeat : w->link.next_hello;
    if (qn_wsandbox_cpu_due(w) < due)
        due = qn_wsandbox_cpu_due(w);
    if (w->cfg.task_mem_mb && w->att.n && w->att.next_mem_check < due)
        due = w->att.next_mem_check;
    if (qn_assign_next_retry(w) < due)
        due = qn_assign_next_retry(w);
    if (w->scrub && qn_scrub_due(w->scrub) < due)
        due = qn_scrub_due(w->scrub);
    if (w->leave_by && w->leave_by < due)
        due = w->leave_by;
    return due > now ? (long)(due - now) : 0;
}

/* SIGTERM: drain, then stop (a second one, SIGINT or SIGHUP: at once). */
static void s_on_stop_signal(qn_worker *w, int sig, int64_t now)
{
    if (sig != SIGTERM || w->leave_by || w->cfg.stop_timeout_ms <= 0 ||
        !qn_masterlink_drain_me(w)) {
        w->stop = 1;
        return;
    }
    w->leave_by = now + w->cfg.stop_timeout_ms;
    qn_info("worker %s: SIGTERM: stopping once drained, at the latest in "
            "%d ms (--stop-timeout-ms)",
            w->id, w->cfg.stop_timeout_ms);
}

/* Handle what the poll found ready. */
static void s_on_ready(qn_worker *w, const zmq_pollitem_t *items, int64_t now)
{
    if (items[2].revents & ZMQ_POLLIN) {
        int child = 0, sig = 0;
        qn_signals_read(w->sigfd, &sig, &child);
        if (sig)
            s_on_stop_signal(w, sig, now);
    }
    /* Attempts' channels before reaping, so reports come first. */
    size_t natt = w->att.n;
    for (size_t i = 0; i < natt && i < w->att.n; i++) {
        if (items[4 + i].revents & ZMQ_POLLOUT)
            qn_attempts_flush(&w->att.v[i]);
        if (items[4 + i].revents & ZMQ_POLLIN)
            qn_attempts_on_ctl(w, &w->att.v[i]);
    }
    if (items[3].revents & ZMQ_POLLIN)
        qn_zap_handle(w->zap);
    qn_attempts_reap(w);
    if (items[0].revents & ZMQ_POLLIN)
        s_on_master(w, now);
    if (items[1].revents & ZMQ_POLLIN)
        qn_shuffle_handle(w->shuffle);
}

/* What is due by the clock. */
static void s_on_time(qn_worker *w, int64_t now)
{
    qn_attempts_check_memory(w, now);
    qn_wsandbox_check_cpu(w, now);
    qn_assign_retry(w, now);
    if (w->store)
        qn_store_expire_uploads(w->store, now, UPLOAD_IDLE_MS);
    char why[200];
    if (w->scrub && qn_scrub_step(w->scrub, now, why, sizeof why))
        qn_warn("worker %s: scrubbing found a damaged shard copy (%s)", w->id,
                why);
    qn_masterlink_data_report(w);
    if (!w->link.welcomed && now >= w->link.next_hello)
        qn_masterlink_hello(w, now);
    if (w->link.welcomed && now >= w->link.next_heartbeat)
        qn_masterlink_heartbeat(w, now);
    qn_masterlink_check(w, now);
    if (qn_masterlink_grace_over(w, now))
        s_forget_everything(w);
    if (w->leave_by && now >= w->leave_by) {
        qn_warn("worker %s: not drained within --stop-timeout-ms %d; "
                "stopping anyway (the master runs and copies elsewhere what "
                "it still needed here)",
                w->id, w->cfg.stop_timeout_ms);
        w->stop = 1;
    }
}

int qn_worker_run(qn_worker *w)
{
    qn_masterlink_hello(w, qn_now_ms());
    zmq_pollitem_t *items = NULL;
    size_t cap = 0;
    while (!w->stop) {
        size_t n = s_poll_items(w, &items, &cap);
        long timeout = s_timeout(w, qn_now_ms());
        if (zmq_poll(items, (int)n, timeout) < 0 && errno != EINTR) {
            qn_error("worker %s: poll: %s", w->id, zmq_strerror(errno));
            free(items);
            return 1;
        }
        int64_t now = qn_now_ms();
        s_on_ready(w, items, now);
        s_on_time(w, now);
    }
    free(items);
    qn_masterlink_leaving(w);
    qn_info("worker %s: stopping", w->id);
    return 0;
}

void qn_worker_destroy(qn_worker **self_p)
{
    qn_worker *w = *self_p;
    if (!w)
        return;
    qn_attempts_destroy(&w->att);
    qn_assign_destroy(w);
    qn_shuffle_destroy(&w->shuffle);
    qn_scrub_destroy(&w->scrub);
    qn_store_destroy(&w->store);
    qn_zap_destroy(&w->zap);
    qn_masterlink_close(w);
    if (w->ctx)
        zmq_ctx_term(w->ctx);
    qn_curve_release(&w->curve);
    if (w->sigfd >= 0)
        close(w->sigfd);
    if (w->own_work_dir)
        qn_rmtree(w->work_dir);
    if (w->lock_fd >= 0)
        close(w->lock_fd);
    free(w->work_dir);
    free(w->task_bin);
    free(w);
    *self_p = NULL;
}
