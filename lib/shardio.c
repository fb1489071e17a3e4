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

/*
 * Read from one source starting at *off, continuing the CRC in *crc.
 * Returns 0 when the shard is complete, -1 with why otherwise.
 */
static int s_from(void *ctx, const qn_curve *curve, const qn_source *src,
                  const qn_shard_want *w, int fd, int stall_ms, uint64_t *off,
                  uint32_t *crc, char *why, size_t cap)
{
    void *sock = qn_wire_socket(ctx, ZMQ_DEALER);
    if (!sock) {
        snprintf(why, cap, "cannot make a socket");
        return -1;
    }
    if (curve && curve->secret_key[0] &&
        qn_curve_client(sock, curve, src->curve_public) < 0) {
        snprintf(why, cap, "cannot set up CURVE");
        zmq_close(sock);
        return -1;
    }
    if (zmq_connect(sock, src->endpoint) < 0) {
        snprintf(why, cap, "cannot connect to %s: %s", src->endpoint,
                 zmq_strerror(errno));
        zmq_close(sock);
        return -1;
    }
    qn_frames in = {0};
    uint64_t asked = *off; /* end of what was requested */
    uint64_t next_id = 1, first_id = 1;
    int rc = -1;
    for (;;) {
        while (asked < w->size && next_id - first_id < WINDOW) {
            Quern__Envelope env = QUERN__ENVELOPE__INIT;
            Quern__ShardRead rq = QUERN__SHARD_READ__INIT;
            rq.dataset = (char *)w->dataset;
            rq.index = w->index;
            rq.offset = asked;
            uint64_t n = w->size - asked;
            rq.max_bytes = n > CHUNK ? CHUNK : (uint32_t)n;
            rq.request_id = next_id++;
            env.body_case = QUERN__ENVELOPE__BODY_SHARD_READ;
            env.shard_read = &rq;
            if (qn_wire_send(sock, NULL, 0, &env, NULL, 0) < 0) {
                snprintf(why, cap, "cannot send to %s", src->endpoint);
                goto done;
            }
            asked += rq.max_bytes;
        }
        if (*off >= w->size && next_id == first_id)
            break;
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
        int p = zmq_poll(&it, 1, stall_ms);
        if (p < 0 && errno == EINTR)
            continue;
        if (p <= 0) {
            snprintf(why, cap, "%s did not answer for %d ms", src->endpoint,
                     stall_ms);
            goto done;
        }
        int r = qn_wire_recv(sock, 0, &in);
        if (r <= 0)
            continue;
        Quern__Envelope *env;
        char err[256];
        if (qn_wire_decode(in.env.data, in.env.len, &env, NULL, err,
                           sizeof err) < 0) {
            snprintf(why, cap, "%s sent a bad message: %s", src->endpoint, err);
            goto done;
        }
        if (env->body_case != QUERN__ENVELOPE__BODY_FETCH_REPLY) {
            if (env->body_case == QUERN__ENVELOPE__BODY_REFUSAL)
                snprintf(why, cap, "%s", env->refusal->reason);
            else
                snprintf(why, cap, "%s sent %s", src->endpoint,
                         qn_wire_name(env));
            qn_wire_free(env);
            goto done;
        }
        const Quern__FetchReply *fr = env->fetch_reply;
        if (fr->request_id != first_id) {
            qn_wire_free(env); /* an answer to an earlier connection */
            continue;
        }
        first_id++;
        if (fr->error[0]) {
            snprintf(why, cap, "%s", fr->error);
            qn_wire_free(env);
            goto done;
        }
        if (fr->offset != *off || fr->total != w->size ||
            *off + in.data.len > w->size ||
            (in.data.len == 0 && *off < w->size)) {
            snprintf(why, cap,
                     "%s answered with %zu bytes at offset %llu of %llu; "
                     "expected offset %llu of %llu",
                     src->endpoint, in.data.len, (unsigned long long)fr->offset,
                     (unsigned long long)fr->total, (unsigned long long)*off,
                     (unsigned long long)w->size);
            qn_wire_free(env);
            goto done;
        }
        qn_wire_free(env);
        int e = qn_write_all(fd, in.data.data, in.data.len);
        if (e < 0) {
            snprintf(why, cap, "cannot write: %s", strerror(-e));
            rc = -2; /* our side: no other source helps */
            goto done;
        }
        *crc = (uint32_t)crc32(*crc, (const Bytef *)in.data.data,
                               (uInt)in.data.len);
        *off += in.data.len;
    }
    rc = 0;
done:
    qn_frames_release(&in);
    zmq_close(sock);
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
