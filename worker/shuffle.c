/*
 * shuffle.c -- see shuffle.h.
 *
 * Each reply carries at most the bytes one request asked for (and at most
 * MAX_CHUNK), read with pread into a ZeroMQ message that is handed to the
 * socket without another copy. Open intermediate files are cached, a few
 * at a time, so a reducer's stream of requests does not reopen the file.
 */
#include "shuffle.h"

#include "curve.h"
#include "droplog.h"
#include "store.h"

#include "ifile.h"
#include "log.h"
#include "layout.h"
#include "util.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_CHUNK (1024 * 1024) /* most bytes sent per reply */
#define CACHE 32                /* open map outputs kept */

typedef struct {
    char *job_id;
    qn_ifile *f;
    uint64_t used; /* last use, for eviction */
} s_cached;

struct qn_shuffle {
    void *sock;
    char endpoint[256];
    char *work_dir;
    s_cached cache[CACHE];
    uint64_t clock;
    qn_shuffle_stats stats;
    qn_droplog drops; /* bad requests, counted and logged per peer */
    qn_store *store;

    qn_frames in;
};

qn_shuffle *qn_shuffle_new(void *ctx, const char *endpoint,
                           const char *work_dir, const qn_curve *curve,
                           char *err, size_t errcap)
{
    void *sock = qn_wire_socket(ctx, ZMQ_ROUTER);
    if (curve && curve->secret_key[0] && qn_curve_server(sock, curve) < 0) {
        snprintf(err, errcap, "cannot make the data server a CURVE server");
        zmq_close(sock);
        return NULL;
    }
    if (zmq_bind(sock, endpoint) < 0) {
        snprintf(err, errcap, "cannot listen for reducers on %s: %s", endpoint,
                 zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    qn_shuffle *s = qn_calloc(1, sizeof *s);
    qn_droplog_init(&s->drops, "shuffle", "dropped");
    s->sock = sock;
    size_t n = sizeof s->endpoint;
    zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, s->endpoint, &n);
    s->work_dir = qn_strdup(work_dir);
    return s;
}

void qn_shuffle_destroy(qn_shuffle **self_p)
{
    qn_shuffle *s = *self_p;
    if (!s)
        return;
    for (int i = 0; i < CACHE; i++) {
        qn_ifile_destroy(&s->cache[i].f);
        free(s->cache[i].job_id);
    }
    zmq_close(s->sock);
    qn_frames_release(&s->in);
    free(s->work_dir);
    free(s);
    *self_p = NULL;
}

void *qn_shuffle_socket(qn_shuffle *s)
{
    return s->sock;
}

const char *qn_shuffle_endpoint(const qn_shuffle *s)
{
    return s->endpoint;
}

qn_shuffle_stats qn_shuffle_get_stats(const qn_shuffle *s)
{
    return s->stats;
}

void qn_shuffle_forget_job(qn_shuffle *s, const char *job_id)
{
    for (int i = 0; i < CACHE; i++) {
        if (s->cache[i].f &&
            (!job_id || strcmp(s->cache[i].job_id, job_id) == 0)) {
            qn_ifile_destroy(&s->cache[i].f);
            free(s->cache[i].job_id);
            s->cache[i].job_id = NULL;
        }
    }
}

/* The open map output, from the cache or the disk; NULL with err. */
static qn_ifile *s_open(qn_shuffle *s, const char *job_id, unsigned map,
                        unsigned attempt, char *err, size_t errcap)
{
    qn_buf path = {0};
    qn_map_output_path(&path, s->work_dir, job_id, map, attempt);
    int victim = 0;
    for (int i = 0; i < CACHE; i++) {
        s_cached *c = &s->cache[i];
        if (c->f && strcmp(qn_ifile_path(c->f), path.data) == 0) {
            c->used = ++s->clock;
            qn_buf_release(&path);
            return c->f;
        }
        if (!c->f || (s->cache[victim].f && c->used < s->cache[victim].used))
            victim = i;
    }
    qn_ifile *f = qn_ifile_open(path.data, err, errcap);
    qn_buf_release(&path);
    if (!f)
        return NULL;
    s_cached *c = &s->cache[victim];
    qn_ifile_destroy(&c->f);
    free(c->job_id);
    c->f = f;
    c->job_id = qn_strdup(job_id);
    c->used = ++s->clock;
    return f;
}

/* Count a request dropped from the peer s->in came from, and log it (once
 * per peer a minute). */
static void s_drop(qn_shuffle *s, const char *why)
{
    qn_droplog_add(&s->drops, 0, s->in.peer, "a request", why);
    s->stats.dropped = s->drops.total;
}

static void s_reply_error(qn_shuffle *s, uint64_t id, const char *msg)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__FetchReply r = QUERN__FETCH_REPLY__INIT;
    r.request_id = id;
    r.error = (char *)msg;
    env.body_case = QUERN__ENVELOPE__BODY_FETCH_REPLY;
    env.fetch_reply = &r;
    qn_wire_send(s->sock, s->in.id, s->in.idlen, &env, NULL, 0);
}

static void s_free_chunk(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/*
 * Send a FetchReply and then n bytes of buf (taken over, not copied) to
 * the peer. Returns 0, or -1 if the peer's queue was full (dropped).
 */
static int s_send_chunk(qn_shuffle *s, uint64_t id, uint64_t offset,
                        uint64_t total, char *buf, size_t n)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__FetchReply rep = QUERN__FETCH_REPLY__INIT;
    rep.request_id = id;
    rep.offset = offset;
    rep.total = total;
    env.body_case = QUERN__ENVELOPE__BODY_FETCH_REPLY;
    env.fetch_reply = &rep;
    zmq_msg_t hdr, data;
    if (qn_wire_msg(&env, &hdr) < 0) {
        free(buf);
        return -1;
    }
    zmq_msg_init_data(&data, buf, n, s_free_chunk, NULL);
    if (zmq_send(s->sock, s->in.id, s->in.idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) <
            0 ||
        zmq_msg_send(&hdr, s->sock, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&hdr);
        zmq_msg_close(&data);
        s_drop(s, "reader's queue is full");
        return -1;
    }
    if (zmq_msg_send(&data, s->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&data);
        return -1;
    }
    return 0;
}

static void s_serve_shard(qn_shuffle *s, const Quern__ShardRead *rq)
{
    char err[600];
    const qn_shard *sh =
        s->store ? qn_store_find(s->store, rq->dataset, rq->index) : NULL;
    if (!sh) {
        snprintf(err, sizeof err, "no shard %s/%u here", rq->dataset,
                 rq->index);
        s_reply_error(s, rq->request_id, err);
        return;
    }
    if (rq->offset > sh->size) {
        s_reply_error(s, rq->request_id, "offset past the shard's end");
        return;
    }
    qn_buf p = {0};
    qn_store_path(s->store, rq->dataset, rq->index, &p);
    /* Opened per request: a shard dropped and written again is a new file. */
    int fd = open(p.data, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, sizeof err, "%s: %s", p.data, strerror(errno));
        qn_buf_release(&p);
        s_reply_error(s, rq->request_id, err);
        return;
    }
    uint64_t n = sh->size - rq->offset;
    if (n > rq->max_bytes)
        n = rq->max_bytes;
    if (n > MAX_CHUNK)
        n = MAX_CHUNK;
    char *buf = qn_malloc(n ? n : 1);
    int rc = qn_pread_all(fd, buf, n, rq->offset);
    close(fd);
    if (rc < 0) {
        free(buf);
        snprintf(err, sizeof err, "%s: read failed: %s", p.data,
                 qn_strerror(rc));
        qn_buf_release(&p);
        s_reply_error(s, rq->request_id, err);
        return;
    }
    qn_buf_release(&p);
    if (s_send_chunk(s, rq->request_id, rq->offset, sh->size, buf, n) == 0)
        s->stats.shard_bytes_sent += n;
}

static void s_accept_shard(qn_shuffle *s, const Quern__ShardWrite *wr)
{
    char err[700] = "";
    if (!s->store) {
        snprintf(err, sizeof err, "this worker keeps no datasets");
    } else if (qn_store_upload(s->store, wr->token, wr->dataset, wr->index,
                               wr->offset, s->in.data.data, s->in.data.len,
                               wr->last, wr->size, wr->crc, qn_now_ms(), err,
                               sizeof err) < 0) {
        qn_warn("shuffle: shard %s/%u: %s", wr->dataset, wr->index, err);
    } else {
        s->stats.shard_bytes_received += s->in.data.len;
        if (wr->last)
            qn_info("store: installed shard %s/%u (%llu bytes)", wr->dataset,
                    wr->index, (unsigned long long)wr->size);
    }
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__ShardWriteReply r = QUERN__SHARD_WRITE_REPLY__INIT;
    r.request_id = wr->request_id;
    r.error = err;
    env.body_case = QUERN__ENVELOPE__BODY_SHARD_WRITE_REPLY;
    env.shard_write_reply = &r;
    qn_wire_send(s->sock, s->in.id, s->in.idlen, &env, NULL, 0);
}

void qn_shuffle_set_store(qn_shuffle *s, qn_store *store)
{
    s->store = store;
}

static void s_serve(qn_shuffle *s, const Quern__FetchRequest *rq)
{
    char err[512];
    qn_ifile *f = s_open(s, rq->job_id, rq->map, rq->attempt, err, sizeof err);
    if (!f) {
        s_reply_error(s, rq->request_id, err);
        return;
    }
    if (rq->partition >= qn_ifile_nparts(f)) {
        snprintf(err, sizeof err, "partition %u out of range (%u)",
                 rq->partition, qn_ifile_nparts(f));
        s_reply_error(s, rq->request_id, err);
        return;
    }
    qn_range r = qn_ifile_range(f, rq->partition);
    if (rq->offset > r.length) {
        s_reply_error(s, rq->request_id, "offset past the partition's end");
        return;
    }
    uint64_t n = r.length - rq->offset;
    if (n > rq->max_bytes)
        n = rq->max_bytes;
    if (n > MAX_CHUNK)
        n = MAX_CHUNK;
    char *buf = qn_malloc(n ? n : 1);
    int rc = qn_pread_all(qn_ifile_fd(f), buf, n, r.offset + rq->offset);
    if (rc < 0) {
        free(buf);
        snprintf(err, sizeof err, "%s: read failed: %s", qn_ifile_path(f),
                 qn_strerror(rc));
        s_reply_error(s, rq->request_id, err);
        return;
    }
    /* The chunk goes out without another copy. */
    if (s_send_chunk(s, rq->request_id, rq->offset, r.length, buf, n) == 0)
        s->stats.bytes_sent += n;
}

void qn_shuffle_handle(qn_shuffle *s)
{
    for (int budget = 0; budget < 256; budget++) {
        int r = qn_wire_recv(s->sock, 1, &s->in);
        if (r == 0)
            return;
        if (r < 0) {
            s_drop(s, "malformed multipart message");
            continue;
        }
        s->stats.requests++;
        Quern__Envelope *env;
        char err[256];
        uint32_t theirs = 0;
        int rc = qn_wire_decode(s->in.env.data, s->in.env.len, &env, &theirs,
                                err, sizeof err);
        if (rc == -QN_WIRE_EVERSION) {
            qn_wire_free(env);
            Quern__Envelope e;
            Quern__Refusal ref;
            qn_wire_refusal(&e, &ref, theirs);
            qn_wire_send(s->sock, s->in.id, s->in.idlen, &e, NULL, 0);
            s_drop(s, err);
            continue;
        }
        if (rc < 0) {
            s_drop(s, err);
            continue;
        }
        if (env->body_case == QUERN__ENVELOPE__BODY_FETCH_REQUEST)
            s_serve(s, env->fetch_request);
        else if (env->body_case == QUERN__ENVELOPE__BODY_SHARD_READ)
            s_serve_shard(s, env->shard_read);
        else if (env->body_case == QUERN__ENVELOPE__BODY_SHARD_WRITE)
            s_accept_shard(s, env->shard_write);
        else
            s_drop(s, "not a fetch, read or write request");
        qn_wire_free(env);
    }
}
