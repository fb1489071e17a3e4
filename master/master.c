/*
 * master.c -- see master.h.
 *
 * One thread, one zmq_poll over the ROUTER socket that workers and clients
 * connect to, a signalfd, the ZAP handler's socket (with CURVE) and the
 * status page's sockets. The clock is read once per turn of the loop and
 * passed down. Each message goes to the module that takes its kind
 * (from_workers.h, from_clients.h); the scheduler's actions it caused are
 * then carried out (actions.h). The poll timeout is the nearest deadline
 * (timers.h).
 */
#include "master.h"

#include "actions.h"
#include "api.h"
#include "datasets.h"
#include "durable.h"
#include "from_clients.h"
#include "from_workers.h"
#include "drain.h"
#include "replicas.h"
#include "log.h"
#include "mstate.h"
#include "proc.h"
#include "send.h"
#include "timers.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define SPEC_MIN_MS 1000  /* no backup for an attempt younger than this */
#define CLIENT_RATE 2000  /* client requests a second from one address */
#define CLIENT_BURST 4000 /* ... and at once, after a quiet spell */
#define RECV_BUDGET 1000  /* messages taken in one turn of the loop */

/* The socket, the ZAP handler and the status page. 0, or -1 with err. */
static int s_listen(qn_master *m, char *err, size_t errcap)
{
    const qn_master_config *cfg = &m->cfg;
    m->net.sigfd = qn_signals_open();
    if (m->net.sigfd < 0) {
        snprintf(err, errcap, "signalfd: %s", strerror(-m->net.sigfd));
        return -1;
    }
    m->net.ctx = zmq_ctx_new();
    m->net.sock = qn_wire_socket(m->net.ctx, ZMQ_ROUTER);
    if (cfg->curve_secret) {
        if (qn_curve_load(&m->net.curve, cfg->curve_secret, cfg->curve_trusted,
                          NULL, err, errcap) < 0)
            return -1;
        m->net.zap =
            qn_zap_new(m->net.ctx, &m->net.curve, "master", err, errcap);
        if (!m->net.zap)
            return -1;
        if (qn_curve_server(m->net.sock, &m->net.curve) < 0) {
            snprintf(err, errcap, "cannot make %s a CURVE server", cfg->listen);
            return -1;
        }
    }
    if (zmq_bind(m->net.sock, cfg->listen) < 0) {
        snprintf(err, errcap, "cannot listen on %s: %s", cfg->listen,
                 zmq_strerror(errno));
        return -1;
    }
    size_t n = sizeof m->net.endpoint;
    zmq_getsockopt(m->net.sock, ZMQ_LAST_ENDPOINT, m->net.endpoint, &n);
    if (cfg->http && strcmp(cfg->http, "off") != 0) {
        m->net.http = qn_http_start(cfg->http, qn_api_on_http, m, err, errcap);
        if (!m->net.http)
            return -1;
    }
    return 0;
}

qn_master *qn_master_new(const qn_master_config *cfg, char *err, size_t errcap)
{
    qn_master *m = qn_calloc(1, sizeof *m);
    m->cfg = *cfg;
    if (m->cfg.replica_timeout_ms <= 0)
        m->cfg.replica_timeout_ms = 600000;
    if (!m->cfg.replica_copies)
        m->cfg.replica_copies = 2;
    m->net.sigfd = -1;
    qn_sched_config sc = {.dead_ms = cfg->dead_ms,
                          .task_timeout_ms = cfg->task_timeout_ms,
                          .spec_min_ms = SPEC_MIN_MS,
                          .locality_wait_ms = cfg->locality_wait_ms,
                          .shard_wait_ms = cfg->shard_wait_ms};
    m->sched = qn_sched_new(&sc);
    qn_sched_set_locality(m->sched, qn_datasets_local, m);
    qn_workers_init(&m->workers, m->sched);
    qn_droplog_init(&m->net.drops, "master", "dropped");
    qn_ratelimit_init(&m->net.rate, CLIENT_RATE, CLIENT_BURST);
    m->stats.start = m->now = qn_now_ms();
    m->stats.start_wall = qn_wall_ms();
    /* Job ids must not repeat across restarts of the master: a worker may
     * still hold files or attempts of an earlier run's "job-1". */
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint64_t seed = qn_random_u64();
    for (int i = 0; i < 4; i++, seed /= 36)
        m->tag[i] = digits[seed % 36];
    /* The state dir first: a second master on it is refused before it
     * takes the endpoint. */
    if (qn_durable_load(m, m->now, err, errcap) < 0 ||
        s_listen(m, err, errcap) < 0) {
        qn_master_destroy(&m);
        return NULL;
    }
    return m;
}

void qn_master_destroy(qn_master **self_p)
{
    qn_master *m = *self_p;
    if (!m)
        return;
    qn_journal_close(&m->journal);
    qn_jobs_release(&m->jobs);
    qn_workers_release(&m->workers);
    qn_sched_destroy(&m->sched);
    qn_catalog_release(&m->data.cat);
    for (size_t i = 0; i < m->data.ndropped; i++)
        free(m->data.dropped[i]);
    free(m->data.dropped);
    free(m->data.puts);
    qn_replicas_release(m);
    qn_drain_release(m);
    qn_plugins_release(&m->plugins);
    qn_http_stop(&m->net.http);
    qn_evring_release(&m->events);
    free(m->logs.v);
    qn_deadline_release(&m->due);
    qn_zap_destroy(&m->net.zap);
    qn_curve_release(&m->net.curve);
    if (m->net.sock)
        zmq_close(m->net.sock);
    if (m->net.ctx)
        zmq_ctx_term(m->net.ctx);
    if (m->net.sigfd >= 0)
        close(m->net.sigfd);
    qn_frames_release(&m->net.in);
    qn_buf_release(&m->held);
    free(m);
    *self_p = NULL;
}

/* A peer of another protocol version: refuse it (never a refusal with
 * one: two peers would trade them). */
static void s_refuse(qn_master *m, Quern__Envelope *env, uint32_t theirs,
                     const char *why)
{
    int refusal = env && env->body_case == QUERN__ENVELOPE__BODY_REFUSAL;
    qn_wire_free(env);
    Quern__Envelope e;
    Quern__Refusal r;
    qn_wire_refusal(&e, &r, theirs);
    if (!refusal)
        qn_send_envelope(m, m->net.in.id, m->net.in.idlen, &e);
    qn_drop(m, DROP_VERSION, why);
}

/* Handle the message in m->net.in at now: decode, check, hand it to the
 * module that takes its kind, then carry out the scheduler's actions. */
static void s_on_message(qn_master *m, int64_t now)
{
    Quern__Envelope *env;
    char err[256];
    uint32_t theirs = 0;
    int rc = qn_wire_decode(m->net.in.env.data, m->net.in.env.len, &env,
                            &theirs, err, sizeof err);
    if (rc == -QN_WIRE_EVERSION) {
        s_refuse(m, env, theirs, err);
        return;
    }
    if (rc < 0) {
        qn_drop(m, DROP_MALFORMED, err);
        return;
    }
    if (qn_from_client_is_request(env->body_case) &&
        !qn_ratelimit_take(&m->net.rate, m->net.in.peer, now)) {
        snprintf(err, sizeof err,
                 "%s over the limit of %d client requests a second from one "
                 "address",
                 qn_wire_name(env), CLIENT_RATE);
        qn_drop(m, DROP_RATE, err);
        qn_wire_free(env);
        return;
    }
    if (!qn_from_worker(m, env, now) && !qn_from_client(m, env, now))
        qn_drop(m, DROP_INVALID, "a message the master does not take");
    qn_wire_free(env);
    qn_actions_run(m, now);
}

/* Tell whoever started us where we listen: the endpoint, then the status
 * page's URL ("-" if none). */
static void s_ready(qn_master *m)
{
    qn_info("master: listening on %s", m->net.endpoint);
    if (m->net.http)
        qn_info("master: status page on %s", qn_http_url(m->net.http));
    if (!m->cfg.state_dir)
        qn_warn("master: jobs are kept in memory only: a restart of this "
                "master loses them and their history (--state-dir keeps "
                "them)");
    if (m->cfg.ready_fd < 0)
        return;
    qn_buf b = {0};
    qn_buf_printf(&b, "%s\n%s\n", m->net.endpoint,
                  m->net.http ? qn_http_url(m->net.http) : "-");
    qn_write_all(m->cfg.ready_fd, b.data, b.len);
    qn_buf_release(&b);
    close(m->cfg.ready_fd);
}

/* How long the poll may wait at now: until the nearest deadline, or the
 * status page's own (ms; -1: no limit). */
static long s_timeout(const qn_master *m, int64_t now)
{
    int64_t due = qn_timers_next(m);
    long timeout = -1;
    if (due != INT64_MAX)
        timeout = due > now ? (long)(due - now) : 0;
    long ht = m->net.http ? qn_http_timeout(m->net.http) : -1;
    if (ht >= 0 && (timeout < 0 || ht < timeout))
        timeout = ht;
    return timeout;
}

/* Take up to RECV_BUDGET waiting messages, each at now. */
static void s_receive(qn_master *m, int64_t now)
{
    for (int budget = 0; budget < RECV_BUDGET; budget++) {
        int r = qn_wire_recv(m->net.sock, 1, &m->net.in);
        if (r == 0)
            break;
        if (r < 0) {
            qn_drop(m, DROP_MALFORMED, "malformed multipart message");
            continue;
        }
        s_on_message(m, now);
    }
}

/*
 * What changed this turn goes to disk in one transaction, then the
 * messages that waited for it go. A master that cannot write its state
 * stops: it could not keep what it tells. 0, or -1 to stop.
 */
static int s_end_turn(qn_master *m)
{
    int rc = qn_journal_turn(&m->journal);
    qn_send_flush(m, rc == 0);
    if (rc < 0)
        qn_error("master: stopping: the state dir %s cannot be written "
                 "(a full disk?); started again on it, the master goes on "
                 "from what was written",
                 m->cfg.state_dir);
    return rc;
}

int qn_master_run(qn_master *m)
{
    s_ready(m);
    int64_t now = qn_now_ms();
    while (!m->stop) {
        zmq_pollitem_t items[4] = {
            {.socket = m->net.sock, .events = ZMQ_POLLIN},
            {.fd = m->net.sigfd, .events = ZMQ_POLLIN},
            {.socket = m->net.zap ? qn_zap_socket(m->net.zap) : NULL,
             .fd = -1,
             .events = m->net.zap ? ZMQ_POLLIN : 0},
            /* The status page: its sockets, all behind one epoll fd. */
            {.fd = m->net.http ? qn_http_fd(m->net.http) : -1,
             .events = m->net.http ? ZMQ_POLLIN : 0},
        };
        if (zmq_poll(items, m->net.http ? 4 : 3, s_timeout(m, now)) < 0 &&
            errno != EINTR) {
            qn_error("master: poll: %s", zmq_strerror(errno));
            return 1;
        }
        m->now = now = qn_now_ms(); /* this turn's clock */
        if (items[1].revents & ZMQ_POLLIN)
            qn_signals_read(m->net.sigfd, &m->stop, NULL);
        if (items[2].revents & ZMQ_POLLIN)
            qn_zap_handle(m->net.zap);
        if (items[0].revents & ZMQ_POLLIN)
            s_receive(m, now);
        /* Pages are served between messages, from the state as it is. */
        if (m->net.http)
            qn_http_run(m->net.http);
        qn_timers_run(m, now);
        if (s_end_turn(m) < 0)
            return 1;
    }
    qn_info("master: stopping");
    return 0;
}

void qn_master_feed(qn_master *m, const char *peer, const void *id,
                    size_t idlen, const void *msg, size_t len, int64_t now)
{
    qn_frames *in = &m->net.in;
    in->idlen = idlen < sizeof in->id ? idlen : sizeof in->id;
    memcpy(in->id, id, in->idlen);
    snprintf(in->peer, sizeof in->peer, "%s", peer ? peer : "");
    in->env.len = 0;
    qn_buf_add(&in->env, msg, len);
    in->data.len = 0;
    in->has_data = 0;
    m->now = now;
    s_on_message(m, now);
    qn_timers_run(m, now);
    (void)s_end_turn(m);
}

void qn_master_tick(qn_master *m, int64_t now)
{
    m->now = now;
    qn_timers_run(m, now);
    (void)s_end_turn(m);
}
