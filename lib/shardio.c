/*
 * shardio.c -- see shardio.h.
 */
#include "shardio.h"

#include "curve.h"
#include "util.h"
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zmq.h>

#define CHUNK (1024 * 1024) /* bytes asked for per request */
#define WINDOW 4            /* requests outstanding */

/* A read of one shard from one source, under way. */
typedef struct {
    void *sock;
    const qn_source *src;
    const qn_shard_want *w;
    int fd;
    uint64_t *off;              /* bytes written so far */
    uint32_t *crc;              /* their CRC */
    uint64_t asked;             /* end of what was requested */
    uint64_t next_id, first_id; /* requests sent, and the oldest unanswered */
    qn_frames in;
} s_pull;

/* A DEALER connected to src (with CURVE when curve has keys), or NULL
 * with why. */
static void *s_connect(void *ctx, const qn_curve *curve, const qn_source *src,
                       char *why, size_t cap)
{
    void *sock = qn_wire_socket(ctx, ZMQ_DEALER);
    if (!sock) {
        snprintf(why, cap, "cannot make a socket");
        return NULL;
    }
    if (curve && curve->secret_key[0] &&
        qn_curve_client(sock, curve, src->curve_public) < 0) {
        snprintf(why, cap, "cannot set up CURVE");
        zmq_close(sock);
        return NULL;
    }
    if (zmq_connect(sock, src->endpoint) < 0) {
        snprintf(why, cap, "cannot connect to %s: %s", src->endpoint,
                 zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

/* Keep WINDOW requests of CHUNK bytes outstanding. 0, or -1 with why. */
static int s_ask(s_pull *p, char *why, size_t cap)
{
    while (p->asked < p->w->size && p->next_id - p->first_id < WINDOW) {
        Quern__Envelope env = QUERN__ENVELOPE__INIT;
        Quern__ShardRead rq = QUERN__SHARD_READ__INIT;
        rq.dataset = (char *)p->w->dataset;
        rq.index = p->w->index;
        rq.offset = p->asked;
        uint64_t n = p->w->size - p->asked;
        rq.max_bytes = n > CHUNK ? CHUNK : (uint32_t)n;
        rq.request_id = p->next_id++;
        env.body_case = QUERN__ENVELOPE__BODY_SHARD_READ;
        env.shard_read = &rq;
        if (qn_wire_send(p->sock, NULL, 0, &env, NULL, 0) < 0) {
            snprintf(why, cap, "cannot send to %s", p->src->endpoint);
            return -1;
        }
        p->asked += rq.max_bytes;
    }
    return 0;
}

/* Is fr, with p->in's data, the answer the oldest request wants? 1 yes,
 * -1 no (why says how). */
static int s_check_reply(s_pull *p, const Quern__FetchReply *fr, char *why,
                         size_t cap)
{
    size_t len = p->in.data.len;
    p->first_id++;
    if (fr->error[0]) {
        snprintf(why, cap, "%s", fr->error);
        return -1;
    }
    if (fr->offset != *p->off || fr->total != p->w->size ||
        *p->off + len > p->w->size || (len == 0 && *p->off < p->w->size)) {
        snprintf(why, cap,
                 "%s answered with %zu bytes at offset %llu of %llu; "
                 "expected offset %llu of %llu",
                 p->src->endpoint, len, (unsigned long long)fr->offset,
                 (unsigned long long)fr->total, (unsigned long long)*p->off,
                 (unsigned long long)p->w->size);
        return -1;
    }
    return 1;
}

/*
 * Check the reply in p->in to the oldest request and write its bytes.
 * Returns 0 (taken, or an answer to an earlier connection, ignored), -1
 * with why when the source failed, or -2 when writing failed (our side:
 * no other source helps).
 */
static int s_take(s_pull *p, char *why, size_t cap)
{
    const char *ep = p->src->endpoint;
    Quern__Envelope *env;
    char err[256];
    if (qn_wire_decode(p->in.env.data, p->in.env.len, &env, NULL, err,
                       sizeof err) < 0) {
        snprintf(why, cap, "%s sent a bad message: %s", ep, err);
        return -1;
    }
    int rc = -1;
    const Quern__FetchReply *fr = env->fetch_reply;
    if (env->body_case == QUERN__ENVELOPE__BODY_REFUSAL)
        snprintf(why, cap, "%s", env->refusal->reason);
    else if (env->body_case != QUERN__ENVELOPE__BODY_FETCH_REPLY)
        snprintf(why, cap, "%s sent %s", ep, qn_wire_name(env));
    else if (fr->request_id != p->first_id)
        rc = 0; /* an answer to an earlier connection */
    else
        rc = s_check_reply(p, fr, why, cap);
    qn_wire_free(env);
    if (rc <= 0)
        return rc;
    size_t len = p->in.data.len;
    int e = qn_write_all(p->fd, p->in.data.data, len);
    if (e < 0) {
        snprintf(why, cap, "cannot write: %s", strerror(-e));
        return -2;
    }
    *p->crc =
        (uint32_t)crc32(*p->crc, (const Bytef *)p->in.data.data, (uInt)len);
    *p->off += len;
    return 0;
}

/*
 * Read from one source starting at *off, continuing the CRC in *crc.
 * Returns 0 when the shard is complete, -1 with why otherwise (-2 when
 * the failure is on our side).
 */
static int s_from(void *ctx, const qn_curve *curve, const qn_source *src,
                  const qn_shard_want *w, int fd, int stall_ms, uint64_t *off,
                  uint32_t *crc, char *why, size_t cap)
{
    s_pull p = {.src = src,
                .w = w,
                .fd = fd,
                .off = off,
                .crc = crc,
                .asked = *off,
                .next_id = 1,
                .first_id = 1};
    p.sock = s_connect(ctx, curve, src, why, cap);
    if (!p.sock)
        return -1;
    int rc = 0;
    while (rc == 0) {
        if ((rc = s_ask(&p, why, cap)) < 0)
            break;
        if (*off >= w->size && p.next_id == p.first_id)
            break; /* complete */
        zmq_pollitem_t it = {.socket = p.sock, .events = ZMQ_POLLIN};
        int n = zmq_poll(&it, 1, stall_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, cap, "%s did not answer for %d ms", src->endpoint,
                     stall_ms);
            rc = -1;
        } else if (qn_wire_recv(p.sock, 0, &p.in) > 0) {
            rc = s_take(&p, why, cap);
        }
    }
    qn_frames_release(&p.in);
    zmq_close(p.sock);
    return rc;
}

int qn_shard_pull(void *zmq_ctx, const qn_curve *curve, const qn_source *src,
                  size_t n, const qn_shard_want *want, int fd, int stall_ms,
                  uint64_t *got, char *err, size_t errcap)
{
    qn_buf why_all = {0};
    uint64_t off = 0;
    uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
    int rc = -1;
    if (n == 0)
        qn_buf_printf(&why_all, "no live worker holds it");
    for (size_t i = 0; i < n; i++) {
        char why[600];
        int r = s_from(zmq_ctx, curve, &src[i], want, fd, stall_ms, &off, &crc,
                       why, sizeof why);
        if (r == 0) {
            rc = 0;
            break;
        }
        qn_buf_printf(&why_all, "%s%s: %s", why_all.len ? "; " : "",
                      src[i].worker_id, why);
        if (r == -2)
            break;
    }
    if (rc == 0 && crc != want->crc) {
        qn_buf_printf(&why_all, "its bytes have CRC %08x, not %08x", crc,
                      want->crc);
        rc = -1;
    }
    if (rc < 0)
        snprintf(err, errcap, "cannot read shard %s/%u: %s", want->dataset,
                 want->index, why_all.data ? why_all.data : "");
    if (got)
        *got = off;
    qn_buf_release(&why_all);
    return rc;
}
