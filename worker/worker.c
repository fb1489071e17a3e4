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
#include "gasp.h"
#include "layout.h"
#include "log.h"
#include "masterlink.h"
#include "proc.h"
#include "sha256.h"
#include "shuffle.h"
#include "store.h"
#include "tasklogs.h"
#include "util.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define UPLOAD_IDLE_MS 120000 /* an upload silent this long is dropped */

/* ---- set-up -------------------------------------------------------------- */

qn_worker *qn_worker_new(const qn_worker_config *cfg, char *err, size_t errcap)
{
    qn_worker *w = qn_calloc(1, sizeof *w);
    w->cfg = *cfg;
    w->sigfd = -1;
    gethostname(w->host, sizeof w->host - 1);
    unsigned rnd = (unsigned)(qn_wall_ms() ^ ((int64_t)getpid() << 16));
    snprintf(w->id, sizeof w->id, "w-%.24s-%d-%04x", w->host, (int)getpid(),
             rnd & 0xffff);
    for (char *p = w->id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-'))
            *p = '-';

    if (cfg->task_bin) {
        w->task_bin = qn_strdup(cfg->task_bin);
    } else {
        char dir[PATH_MAX];
        if (qn_exe_dir(dir, sizeof dir) < 0) {
            snprintf(err, errcap, "cannot find my own executable");
            goto fail;
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
        goto fail;
    }

    if (cfg->work_dir) {
        int rc = qn_mkdirs(cfg->work_dir, 0755);
        /* Absolute, so task processes and logs name it unambiguously. */
        w->work_dir = rc == 0 ? realpath(cfg->work_dir, NULL) : NULL;
        if (!w->work_dir) {
            snprintf(err, errcap, "work dir %s: %s", cfg->work_dir,
                     strerror(rc < 0 ? -rc : errno));
            goto fail;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        qn_buf b = {0};
        qn_buf_printf(&b, "%s/quern-worker-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(b.data)) {
            snprintf(err, errcap, "cannot create a work dir %s: %s", b.data,
                     strerror(errno));
            qn_buf_release(&b);
            goto fail;
        }
        w->work_dir = b.data;
        w->own_work_dir = 1;
    }
    /* Map outputs of an earlier run are unknown to any master now. */
    {
        qn_buf jobs = {0};
        qn_buf_printf(&jobs, "%s/jobs", w->work_dir);
        qn_rmtree(jobs.data);
        qn_mkdirs(jobs.data, 0755);
        qn_buf_release(&jobs);
    }

    {
        qn_buf plugins = {0};
        qn_buf_printf(&plugins, "%s/plugins", w->work_dir);
        qn_mkdirs(plugins.data, 0755);
        qn_buf_release(&plugins);
    }
    if (cfg->data_dir) {
        w->store = qn_store_open(cfg->data_dir, err, errcap);
        if (!w->store)
            goto fail;
        qn_info("worker %s: %zu dataset shards in %s, checked", w->id,
                qn_store_count(w->store), qn_store_dir(w->store));
    }

    w->sigfd = qn_signals_open();
    if (w->sigfd < 0) {
        snprintf(err, errcap, "signalfd: %s", strerror(-w->sigfd));
        goto fail;
    }
    w->ctx = zmq_ctx_new();
    if (cfg->curve_secret) {
        if (qn_curve_load(&w->curve, cfg->curve_secret, cfg->curve_trusted,
                          cfg->curve_master, err, errcap) < 0)
            goto fail;
        if (!w->curve.master_key[0]) {
            snprintf(err, errcap,
                     "CURVE needs the master's public key: give "
                     "--curve-master FILE or put it in %s/master.pub",
                     cfg->curve_trusted ? cfg->curve_trusted
                                        : "the trusted "
                                          "dir");
            goto fail;
        }
        w->zap = qn_zap_new(w->ctx, &w->curve, "worker", err, errcap);
        if (!w->zap)
            goto fail;
    }
    if (qn_masterlink_open(w, err, errcap) < 0)
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

static void s_cancel(qn_worker *w, const Quern__AttemptRef *r)
{
    if (!qn_assign_cancel(w, r))
        qn_attempts_cancel(w, r);
}

static void s_job_end(qn_worker *w, const char *job_id)
{
    if (!qn_id_ok(job_id))
        return;
    qn_attempts_kill_job(&w->att, job_id);
    qn_assign_drop_job(w, job_id);
    qn_shuffle_forget_job(w->shuffle, job_id);
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
    qn_buf jobs = {0};
    qn_buf_printf(&jobs, "%s/jobs", w->work_dir);
    qn_rmtree(jobs.data);
    qn_mkdirs(jobs.data, 0755);
    qn_buf_release(&jobs);
}

/* ---- the loop ------------------------------------------------------------ */

/* A welcome: a new session, or word that the master does not know us. */
static void s_on_welcome(qn_worker *w, const Quern__WorkerWelcome *ww,
                         int64_t now)
{
    if (ww->rejoin) {
        qn_info("worker %s: the master does not know us (it may have "
                "restarted); dropping our attempts and map outputs "
                "and joining again",
                w->id);
        s_forget_everything(w);
        qn_masterlink_rejoin(w, now);
    } else if (!w->link.welcomed) {
        if (ww->reset) {
            qn_info("worker %s: the master had given us up for dead; "
                    "dropping our attempts and map outputs",
                    w->id);
            s_forget_everything(w);
        }
        qn_masterlink_joined(w, ww, now);
    }
}

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
        w->link.heard = now;
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
        case QUERN__ENVELOPE__BODY_MAP_LOCATIONS:
            qn_attempts_on_locations(w, env);
            break;
        case QUERN__ENVELOPE__BODY_LOGS_REQUEST:
            qn_tasklogs_on_request(w, env->logs_request);
            break;
        default:
            qn_warn("worker %s: unexpected %s from the master", w->id,
                    qn_wire_name(env));
        }
        qn_wire_free(env);
    }
}

int qn_worker_run(qn_worker *w)
{
    int64_t now = qn_now_ms();
    qn_masterlink_hello(w, now);
    zmq_pollitem_t *items = NULL;
    size_t cap = 0;
    while (!w->stop) {
        size_t n = 4 + w->att.n;
        if (n > cap) {
            cap = n * 2;
            items = qn_realloc(items, cap * sizeof *items);
        }
        memset(items, 0, n * sizeof *items);
        items[0].socket = w->link.sock;
        items[0].events = ZMQ_POLLIN;
        items[1].socket = qn_shuffle_socket(w->shuffle);
        items[1].events = ZMQ_POLLIN;
        items[2].fd = w->sigfd;
        items[2].events = ZMQ_POLLIN;
        items[3].socket = w->zap ? qn_zap_socket(w->zap) : NULL;
        items[3].fd = -1;
        items[3].events = w->zap ? ZMQ_POLLIN : 0;
        for (size_t i = 0; i < w->att.n; i++) {
            items[4 + i].fd = w->att.v[i].st.fd; /* -1 once closed: ignored */
            items[4 + i].events =
                w->att.v[i].st.fd < 0
                    ? 0
                    : ZMQ_POLLIN | (w->att.v[i].out.len > w->att.v[i].out_off
                                        ? ZMQ_POLLOUT
                                        : 0);
        }
        int64_t due =
            w->link.welcomed ? w->link.next_heartbeat : w->link.next_hello;
        if (w->cfg.task_mem_mb && w->att.n && w->att.next_mem_check < due)
            due = w->att.next_mem_check;
        if (qn_assign_next_retry(w) < due)
            due = qn_assign_next_retry(w);
        now = qn_now_ms();
        long timeout = due > now ? (long)(due - now) : 0;
        if (zmq_poll(items, (int)n, timeout) < 0 && errno != EINTR) {
            qn_error("worker %s: poll: %s", w->id, zmq_strerror(errno));
            free(items);
            return 1;
        }
        now = qn_now_ms();
        if (items[2].revents & ZMQ_POLLIN) {
            int child = 0;
            qn_signals_read(w->sigfd, &w->stop, &child);
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
        qn_attempts_check_memory(w, now);
        qn_assign_retry(w, now);
        if (w->store)
            qn_store_expire_uploads(w->store, now, UPLOAD_IDLE_MS);
        qn_masterlink_data_report(w);
        if (!w->link.welcomed && now >= w->link.next_hello)
            qn_masterlink_hello(w, now);
        if (w->link.welcomed && now >= w->link.next_heartbeat)
            qn_masterlink_heartbeat(w, now);
        qn_masterlink_check(w, now);
    }
    free(items);
    qn_info("worker %s: stopping", w->id);
    return 0;
}

void qn_worker_destroy(qn_worker **self_p)
{
    qn_worker *w = *self_p;
    if (!w)
        return;
    qn_attempts_destroy(&w->att);
    qn_assign_drop_job(w, NULL);
    free(w->wait.v);
    qn_shuffle_destroy(&w->shuffle);
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
    free(w->work_dir);
    free(w->task_bin);
    free(w);
    *self_p = NULL;
}
