/*
 * send.c -- see send.h.
 */
#include "send.h"

#include "log.h"

#include <errno.h>
#include <zmq.h>

const char *const qn_drop_reasons[5] = {"malformed", "version", "invalid",
                                        "rate", "epoch"};

void qn_send_envelope(qn_master *m, const char *route, size_t routelen,
                      Quern__Envelope *env)
{
    int rc = qn_wire_send(m->net.sock, route, routelen, env, NULL, 0);
    if (rc < 0 && rc != -EHOSTUNREACH)
        qn_warn("master: cannot send %s: %s", qn_wire_name(env),
                zmq_strerror(-rc));
}

void qn_send(qn_master *m, const char *route, size_t routelen,
             Quern__Envelope__BodyCase body_case, void *body)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    env.body_case = body_case;
    /* The body is one member of a union of pointers to message structs,
     * which all have the same representation (C11 6.2.5): storing
     * through any one of them sets the one body_case names. */
    env.refusal = body;
    qn_send_envelope(m, route, routelen, &env);
}

void qn_send_reply(qn_master *m, Quern__Envelope__BodyCase body_case,
                   void *body)
{
    qn_send(m, m->net.in.id, m->net.in.idlen, body_case, body);
}

void qn_send_worker(qn_master *m, int w, Quern__Envelope__BodyCase body_case,
                    void *body)
{
    const qn_mworker *wk = &m->workers.v[w];
    qn_send(m, wk->route, wk->routelen, body_case, body);
}

void qn_drop(qn_master *m, unsigned reason, const char *why)
{
    qn_droplog_add(&m->net.drops, reason, m->net.in.peer, "a message", why);
}
