/*
 * send.c -- see send.h.
 */
#include "send.h"

#include "log.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

const char *const qn_drop_reasons[5] = {"malformed", "version", "invalid",
                                        "rate", "epoch"};

/* Send one message already packed (b) to route. */
static void s_send_packed(qn_master *m, const char *route, size_t routelen,
                          const void *b, size_t len)
{
    if (zmq_send(m->net.sock, route, routelen, ZMQ_SNDMORE | ZMQ_DONTWAIT) <
            0 ||
        zmq_send(m->net.sock, b, len, ZMQ_DONTWAIT) < 0) {
        if (errno != EHOSTUNREACH)
            qn_warn("master: cannot send a held message: %s",
                    zmq_strerror(errno));
    }
}

void qn_send_envelope(qn_master *m, const char *route, size_t routelen,
                      Quern__Envelope *env)
{
    if (m->journal.holding) {
        /* After a change that must be on disk first: it goes with the
         * turn's commit (qn_send_flush). As length-prefixed route and
         * message. */
        qn_buf b = {0};
        if (qn_wire_pack(env, &b) < 0) {
            qn_warn("master: cannot pack %s", qn_wire_name(env));
            return;
        }
        uint32_t n[2] = {(uint32_t)routelen, (uint32_t)b.len};
        qn_buf_add(&m->held, n, sizeof n);
        qn_buf_add(&m->held, route, routelen);
        qn_buf_add(&m->held, b.data, b.len);
        qn_buf_release(&b);
        return;
    }
    int rc = qn_wire_send(m->net.sock, route, routelen, env, NULL, 0);
    if (rc < 0 && rc != -EHOSTUNREACH)
        qn_warn("master: cannot send %s: %s", qn_wire_name(env),
                zmq_strerror(-rc));
}

void qn_send_flush(qn_master *m, int ok)
{
    size_t off = 0;
    while (ok && off + 8 <= m->held.len) {
        uint32_t n[2];
        memcpy(n, m->held.data + off, sizeof n);
        off += sizeof n;
        s_send_packed(m, m->held.data + off, n[0], m->held.data + off + n[0],
                      n[1]);
        off += (size_t)n[0] + n[1];
    }
    if (!ok && m->held.len)
        qn_error("master: the state was not written: the messages that "
                 "depended on it are not sent");
    m->held.len = 0;
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
