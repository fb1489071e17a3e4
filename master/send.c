/*
 * send.c -- see send.h.
 */
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

const char *const qn_drop_reasons[4] = {"malformed", "version", "invalid",
                                        "rate"};

void qn_send(qn_master *m, const char *route, size_t routelen,
             Quern__Envelope *env)
{
    int rc = qn_wire_send(m->sock, route, routelen, env, NULL, 0);
    if (rc < 0 && rc != -EHOSTUNREACH)
        qn_warn("master: cannot send %s: %s", qn_wire_name(env),
                zmq_strerror(-rc));
}

/* Count a message dropped from the peer m->in came from, and log it (once
 * per peer a minute). It changes nothing else. */
void qn_drop(qn_master *m, unsigned reason, const char *why)
{
    qn_droplog_add(&m->drops, reason, m->in.peer, "a message", why);
}

void qn_send_welcome(qn_master *m, const char *route, size_t routelen,
                     const char *id, int rejoin, int reset, uint64_t session)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__WorkerWelcome wl = QUERN__WORKER_WELCOME__INIT;
    wl.worker_id = (char *)id;
    wl.heartbeat_ms = (uint32_t)m->cfg.heartbeat_ms;
    wl.rejoin = rejoin;
    wl.reset = reset;
    wl.session = session;
    env.body_case = QUERN__ENVELOPE__BODY_WORKER_WELCOME;
    env.worker_welcome = &wl;
    qn_send(m, route, routelen, &env);
}

/* Replies to worker w go where its current message came from. */
void qn_route_here(qn_master *m, int w)
{
    memcpy(m->workers[w].route, m->in.id, m->in.idlen);
    m->workers[w].routelen = m->in.idlen;
}

void qn_send_data_cmd(qn_master *m, int w, Quern__DataCommand *c)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_DATA_COMMAND;
    env.data_command = c;
    qn_send(m, m->workers[w].route, m->workers[w].routelen, &env);
}
