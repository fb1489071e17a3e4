/*
 * master.c -- see master.h.
 *
 * One thread, one zmq_poll over the ROUTER socket that workers and clients
 * connect to and a signalfd. Every message becomes a scheduler event; after
 * each, the scheduler's actions are turned into messages. The poll timeout
 * is the nearest deadline: the scheduler's (heartbeats, task timeouts) or a
 * watching client's next status push.
 */
#include "mstate.h"
#include "timers.h"
#include "api.h"
#include "from_clients.h"
#include "from_workers.h"
#include "actions.h"
#include "plugins.h"
#include "logs.h"
#include "commit.h"
#include "datasets.h"
#include "status.h"
#include "workers.h"
#include "events.h"
#include "send.h"
#include "job.h"

#include "catalog.h"
#include "curve.h"
#include "droplog.h"
#include "http.h"
#include "ifile.h"
#include "jobspec.h"
#include "log.h"
#include "proc.h"
#include "ratelimit.h"
#include "sched.h"
#include "sha256.h"
#include "split.h"
#include "statusjson.h"
#include "util.h"
#include "wire.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* ---- helpers ------------------------------------------------------------- */

/*
 * Note an event: log it (one line, with the ids) and keep it for the
 * status page. jx, w: -1 if none; kind -1 for no task.
 */

/* ---- set-up -------------------------------------------------------------- */

qn_master *qn_master_new(const qn_master_config *cfg, char *err, size_t errcap)
{
    qn_master *m = qn_calloc(1, sizeof *m);
    m->cfg = *cfg;
    qn_droplog_init(&m->drops, "master", "dropped");
    qn_ratelimit_init(&m->rate, CLIENT_RATE, CLIENT_BURST);
    m->start = qn_now_ms();
    m->start_wall = qn_wall_ms();
    m->sigfd = qn_signals_open();
    if (m->sigfd < 0) {
        snprintf(err, errcap, "signalfd: %s", strerror(-m->sigfd));
        goto fail;
    }
    m->ctx = zmq_ctx_new();
    m->sock = qn_wire_socket(m->ctx, ZMQ_ROUTER);
    if (cfg->curve_secret) {
        if (qn_curve_load(&m->curve, cfg->curve_secret, cfg->curve_trusted,
                          NULL, err, errcap) < 0)
            goto fail;
        m->zap = qn_zap_new(m->ctx, &m->curve, "master", err, errcap);
        if (!m->zap)
            goto fail;
        if (qn_curve_server(m->sock, &m->curve) < 0) {
            snprintf(err, errcap, "cannot make %s a CURVE server", cfg->listen);
            goto fail;
        }
    }
    if (zmq_bind(m->sock, cfg->listen) < 0) {
        snprintf(err, errcap, "cannot listen on %s: %s", cfg->listen,
                 zmq_strerror(errno));
        goto fail;
    }
    size_t n = sizeof m->endpoint;
    zmq_getsockopt(m->sock, ZMQ_LAST_ENDPOINT, m->endpoint, &n);
    if (cfg->http && strcmp(cfg->http, "off") != 0) {
        m->http = qn_http_start(cfg->http, qn_api_on_http, m, err, errcap);
        if (!m->http)
            goto fail;
    }
    /* Job ids must not repeat across restarts of the master: a worker may
     * still hold files or attempts of an earlier run's "job-1". */
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint64_t seed = qn_random_u64();
    for (int i = 0; i < 4; i++, seed /= 36)
        m->tag[i] = digits[seed % 36];
    qn_sched_config sc = {.dead_ms = cfg->dead_ms,
                          .task_timeout_ms = cfg->task_timeout_ms,
                          .spec_min_ms = SPEC_MIN_MS,
                          .locality_wait_ms = cfg->locality_wait_ms,
                          .shard_wait_ms = cfg->shard_wait_ms};
    m->sched = qn_sched_new(&sc);
    qn_sched_set_locality(m->sched, qn_datasets_local, m);
    return m;
fail:
    qn_master_destroy(&m);
    return NULL;
}

void qn_master_destroy(qn_master **self_p)
{
    qn_master *m = *self_p;
    if (!m)
        return;
    for (int i = 0; i < m->njobs; i++)
        qn_job_release(&m->jobs[i]);
    free(m->jobs);
    for (int i = 0; i < m->nworkers; i++)
        free(m->workers[i].endpoint);
    free(m->workers);
    qn_sched_destroy(&m->sched);
    qn_catalog_release(&m->cat);
    for (size_t i = 0; i < m->ndropped_ds; i++)
        free(m->dropped_ds[i]);
    free(m->dropped_ds);
    for (size_t i = 0; i < m->nplugins; i++)
        free(m->plugins[i].data);
    free(m->plugins);
    free(m->puts);
    qn_http_stop(&m->http);
    for (size_t i = 0; i < m->nevents; i++)
        free(m->events[(m->event_head + i) % EVENTS_KEPT].msg);
    free(m->events);
    free(m->logs);
    qn_zap_destroy(&m->zap);
    qn_curve_release(&m->curve);
    if (m->sock)
        zmq_close(m->sock);
    if (m->ctx)
        zmq_ctx_term(m->ctx);
    if (m->sigfd >= 0)
        close(m->sigfd);
    qn_frames_release(&m->in);
    free(m);
    *self_p = NULL;
}

/* ---- job status ---------------------------------------------------------- */

/* ---- datasets ------------------------------------------------------------ */

/* ---- output commit ------------------------------------------------------- */

/* ---- actions ------------------------------------------------------------- */

/* ---- messages from workers ----------------------------------------------- */

/* ---- messages from clients ----------------------------------------------- */

/* ---- datasets: client requests ------------------------------------------- */

/* ---- the loop ------------------------------------------------------------ */

/* ---- the status page, the JSON API and metrics ----------------------------
 */

/* ---- quern logs: an attempt's stderr, fetched from its worker ------------ */

static void s_on_message(qn_master *m, int64_t now)
{
    Quern__Envelope *env;
    char err[256];
    uint32_t theirs = 0;
    int rc = qn_wire_decode(m->in.env.data, m->in.env.len, &env, &theirs, err,
                            sizeof err);
    if (rc == -QN_WIRE_EVERSION) {
        /* Never answer a refusal with one: two peers would trade them. */
        int refusal = env && env->body_case == QUERN__ENVELOPE__BODY_REFUSAL;
        qn_wire_free(env);
        Quern__Envelope e;
        Quern__Refusal r;
        qn_wire_refusal(&e, &r, theirs);
        if (!refusal)
            qn_send(m, m->in.id, m->in.idlen, &e);
        qn_drop(m, DROP_VERSION, err);
        return;
    }
    if (rc < 0) {
        qn_drop(m, DROP_MALFORMED, err);
        return;
    }
    if (qn_from_client_is_request(env->body_case) &&
        !qn_ratelimit_take(&m->rate, m->in.peer, now)) {
        snprintf(err, sizeof err,
                 "%s over the limit of %d client requests a second from one "
                 "address",
                 qn_wire_name(env), CLIENT_RATE);
        qn_drop(m, DROP_RATE, err);
        qn_wire_free(env);
        return;
    }
    switch (env->body_case) {
    case QUERN__ENVELOPE__BODY_WORKER_HELLO:
        qn_from_worker_hello(m, env->worker_hello, now);
        break;
    case QUERN__ENVELOPE__BODY_HEARTBEAT:
        qn_from_worker_heartbeat(m, env->heartbeat, now);
        break;
    case QUERN__ENVELOPE__BODY_TASK_UPDATE:
        qn_from_worker_task_update(m, env->task_update, now);
        break;
    case QUERN__ENVELOPE__BODY_SUBMIT_JOB:
        if (qn_jobs_running(m) >= MAX_RUNNING_JOBS) {
            snprintf(err, sizeof err,
                     "the master runs %d jobs, the most it takes at once; "
                     "submit again when one has finished",
                     MAX_RUNNING_JOBS);
            qn_from_client_submit_reply(m, NULL, err);
        } else {
            qn_from_client_submit(m, env->submit_job, now);
        }
        break;
    case QUERN__ENVELOPE__BODY_STATUS_REQUEST:
        qn_from_client_status(m, env->status_request);
        break;
    case QUERN__ENVELOPE__BODY_CANCEL_JOB:
        qn_from_client_cancel(m, env->cancel_job, now);
        break;
    case QUERN__ENVELOPE__BODY_WORKERS_REQUEST:
        qn_from_client_workers(m, now);
        break;
    case QUERN__ENVELOPE__BODY_DATA_REPORT:
        qn_from_worker_data_report(m, env->data_report, now);
        break;
    case QUERN__ENVELOPE__BODY_PLUGIN_REQUEST:
        qn_from_worker_plugin_request(m, env->plugin_request, now);
        break;
    case QUERN__ENVELOPE__BODY_PUT_REQUEST:
        qn_from_client_put(m, env->put_request, now);
        break;
    case QUERN__ENVELOPE__BODY_DATASETS_REQUEST:
        qn_from_client_datasets(m, env->datasets_request);
        break;
    case QUERN__ENVELOPE__BODY_DROP_DATASET:
        qn_from_client_drop(m, env->drop_dataset);
        break;
    case QUERN__ENVELOPE__BODY_LOGS_REQUEST:
        qn_logs_request(m, env->logs_request, now);
        break;
    case QUERN__ENVELOPE__BODY_LOGS_REPLY:
        qn_logs_reply(m, env->logs_reply);
        break;
    default: qn_drop(m, DROP_INVALID, "a message the master does not take");
    }
    qn_wire_free(env);
    qn_actions_run(m, now);
}

int qn_master_run(qn_master *m)
{
    qn_info("master: listening on %s", m->endpoint);
    if (m->http)
        qn_info("master: status page on %s", qn_http_url(m->http));
    if (m->cfg.ready_fd >= 0) {
        /* The endpoint, then the status page's URL ("-" if none). */
        qn_buf b = {0};
        qn_buf_printf(&b, "%s\n%s\n", m->endpoint,
                      m->http ? qn_http_url(m->http) : "-");
        qn_write_all(m->cfg.ready_fd, b.data, b.len);
        qn_buf_release(&b);
        close(m->cfg.ready_fd);
    }
    while (!m->stop) {
        zmq_pollitem_t items[4] = {
            {.socket = m->sock, .events = ZMQ_POLLIN},
            {.fd = m->sigfd, .events = ZMQ_POLLIN},
            {.socket = m->zap ? qn_zap_socket(m->zap) : NULL,
             .fd = -1,
             .events = m->zap ? ZMQ_POLLIN : 0},
            /* The status page: its sockets, all behind one epoll fd. */
            {.fd = m->http ? qn_http_fd(m->http) : -1,
             .events = m->http ? ZMQ_POLLIN : 0},
        };
        int64_t now = qn_now_ms();
        int64_t due = qn_sched_deadline(m->sched);
        int64_t push = qn_status_push_due(m);
        if (push < due)
            due = push;
        if (qn_datasets_puts_due(m) < due)
            due = qn_datasets_puts_due(m);
        if (qn_logs_due(m) < due)
            due = qn_logs_due(m);
        long timeout = -1;
        if (due != INT64_MAX)
            timeout = due > now ? (long)(due - now) : 0;
        long ht = m->http ? qn_http_timeout(m->http) : -1;
        if (ht >= 0 && (timeout < 0 || ht < timeout))
            timeout = ht;
        if (zmq_poll(items, m->http ? 4 : 3, timeout) < 0 && errno != EINTR) {
            qn_error("master: poll: %s", zmq_strerror(errno));
            return 1;
        }
        if (items[1].revents & ZMQ_POLLIN)
            qn_signals_read(m->sigfd, &m->stop, NULL);
        if (items[2].revents & ZMQ_POLLIN)
            qn_zap_handle(m->zap);
        if (items[0].revents & ZMQ_POLLIN) {
            for (int budget = 0; budget < 1000; budget++) {
                int r = qn_wire_recv(m->sock, 1, &m->in);
                if (r == 0)
                    break;
                if (r < 0) {
                    qn_drop(m, DROP_MALFORMED, "malformed multipart message");
                    continue;
                }
                s_on_message(m, qn_now_ms());
            }
        }
        /* Pages are served between messages, from the state as it is. */
        if (m->http)
            qn_http_run(m->http);
        qn_timers_run(m, qn_now_ms());
    }
    qn_info("master: stopping");
    return 0;
}

void qn_master_feed(qn_master *m, const char *peer, const void *id,
                    size_t idlen, const void *msg, size_t len, int64_t now)
{
    m->in.idlen = idlen < sizeof m->in.id ? idlen : sizeof m->in.id;
    memcpy(m->in.id, id, m->in.idlen);
    snprintf(m->in.peer, sizeof m->in.peer, "%s", peer ? peer : "");
    m->in.env.len = 0;
    qn_buf_add(&m->in.env, msg, len);
    m->in.data.len = 0;
    m->in.has_data = 0;
    s_on_message(m, now);
    qn_timers_run(m, now);
}
