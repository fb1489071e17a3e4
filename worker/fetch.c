/*
 * fetch.c -- the reducer's side of the shuffle.
 *
 * For every map output holding data for this partition, the reducer asks
 * the map's shuffle server for the partition's bytes in chunks and writes
 * them to a local segment file. Requests are credit-based: at most
 * PER_MAP_WINDOW chunks outstanding per map output and MAX_INFLIGHT in all,
 * so a server only sends what was asked for and a slow reducer holds its
 * senders back instead of filling memory. All servers are fetched from
 * concurrently in one poll loop.
 */
#include "task.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define CHUNK (256 * 1024)     /* bytes asked for per request */
#define PER_MAP_WINDOW 2       /* requests outstanding per map output */
#define MAX_INFLIGHT 16        /* requests outstanding in all */
#define FETCH_TIMEOUT_MS 60000 /* a server silent this long has failed */

typedef struct {
    char *endpoint;
    void *sock;
    unsigned inflight;
    int64_t last_heard;
} s_peer;

typedef struct {
    const Quern__MapOutput *mo;
    s_peer *peer;
    char *path;
    int fd;
    uint64_t total, asked, got;
    unsigned inflight;
} s_seg;

static s_peer *s_peer_for(s_peer *peers, size_t *npeers, void *ctx,
                          const char *endpoint)
{
    for (size_t i = 0; i < *npeers; i++)
        if (strcmp(peers[i].endpoint, endpoint) == 0)
            return &peers[i];
    s_peer *p = &peers[(*npeers)++];
    p->endpoint = qn_strdup(endpoint);
    p->sock = qn_wire_socket(ctx, ZMQ_DEALER);
    if (zmq_connect(p->sock, endpoint) < 0) {
        zmq_close(p->sock);
        p->sock = NULL;
    }
    return p;
}

static int s_ask(quern_task *t, s_seg *segs, size_t i)
{
    s_seg *s = &segs[i];
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__FetchRequest rq = QUERN__FETCH_REQUEST__INIT;
    uint64_t n = s->total - s->asked;
    if (n > CHUNK)
        n = CHUNK;
    rq.job_id = t->spec->job_id;
    rq.map = s->mo->map;
    rq.attempt = s->mo->attempt;
    rq.partition = t->spec->task;
    rq.offset = s->asked;
    rq.max_bytes = (uint32_t)n;
    rq.request_id = ((uint64_t)i << 40) | (s->asked / CHUNK);
    env.body_case = QUERN__ENVELOPE__BODY_FETCH_REQUEST;
    env.fetch_request = &rq;
    int rc = qn_wire_send(s->peer->sock, NULL, 0, &env, NULL, 0);
    if (rc < 0)
        return qn_task_failf(t, "cannot ask %s for map %u: %s",
                             s->peer->endpoint, s->mo->map, zmq_strerror(-rc));
    if (s->peer->inflight == 0)
        s->peer->last_heard = qn_now_ms();
    s->asked += n;
    s->inflight++;
    s->peer->inflight++;
    return 0;
}

/* Handle one reply from peer p. Returns 0 or -1 (t->fail set). */
static int s_on_reply(quern_task *t, s_peer *p, s_seg *segs, size_t nsegs,
                      qn_frames *f, uint64_t *received)
{
    Quern__Envelope *env;
    char err[256];
    uint32_t theirs = 0;
    int rc =
        qn_wire_decode(f->env.data, f->env.len, &env, &theirs, err, sizeof err);
    if (rc == -QN_WIRE_EVERSION) {
        qn_wire_free(env);
        return qn_task_failf(t,
                             "shuffle server %s speaks protocol version %u, "
                             "this task speaks %u",
                             p->endpoint, theirs, QN_PROTOCOL_VERSION);
    }
    if (rc < 0 || env->body_case != QUERN__ENVELOPE__BODY_FETCH_REPLY) {
        qn_wire_free(env);
        return qn_task_failf(t, "bad reply from shuffle server %s: %s",
                             p->endpoint, rc < 0 ? err : "unexpected message");
    }
    Quern__FetchReply *r = env->fetch_reply;
    size_t i = (size_t)(r->request_id >> 40);
    rc = 0;
    if (i >= nsegs || segs[i].peer != p) {
        rc = qn_task_failf(t,
                           "shuffle server %s answered a request never "
                           "made",
                           p->endpoint);
    } else if (r->error[0]) {
        rc = qn_task_failf(t,
                           "fetching map %u attempt %u from %s (worker "
                           "%s): %s",
                           segs[i].mo->map, segs[i].mo->attempt, p->endpoint,
                           segs[i].mo->worker_id, r->error);
    } else if (r->total != segs[i].total || !f->has_data ||
               r->offset + f->data.len > segs[i].total ||
               (f->data.len == 0 && r->offset < segs[i].total)) {
        rc = qn_task_failf(t,
                           "map %u output from %s does not match its "
                           "announced size (%llu bytes)",
                           segs[i].mo->map, p->endpoint,
                           (unsigned long long)segs[i].total);
    } else {
        s_seg *s = &segs[i];
        /* Opened on the first chunk and closed on the last, so a reducer
         * of thousands of maps holds a handful of files open. */
        if (s->fd < 0)
            s->fd =
                open(s->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ssize_t w = s->fd < 0 ? -1
                              : pwrite(s->fd, f->data.data, f->data.len,
                                       (off_t)r->offset);
        if (w != (ssize_t)f->data.len)
            rc = qn_task_failf(t, "writing %s: %s", s->path,
                               w < 0 ? strerror(errno) : "short write");
        s->got += f->data.len;
        if (rc == 0 && s->got == s->total) {
            if (close(s->fd) < 0)
                rc = qn_task_failf(t, "writing %s: %s", s->path,
                                   strerror(errno));
            s->fd = -1;
        }
        s->inflight--;
        p->inflight--;
        p->last_heard = qn_now_ms();
        *received += f->data.len;
        qn_task_count(t, QN_C_SHUFFLE_STORED, (long long)f->data.len);
    }
    qn_wire_free(env);
    return rc;
}

int qn_fetch_all(quern_task *t, char ***out, char ***out_names, size_t *nout)
{
    Quern__TaskSpec *sp = t->spec;
    size_t n = sp->n_map_outputs;
    s_seg *segs = qn_calloc(n ? n : 1, sizeof *segs);
    s_peer *peers = qn_calloc(n ? n : 1, sizeof *peers);
    size_t nsegs = 0, npeers = 0;
    void *ctx = zmq_ctx_new();
    zmq_pollitem_t *items = NULL;
    qn_frames f = {0};
    qn_buf dir = {0};
    uint64_t total = 0, received = 0;
    int rc = 0;

    qn_task_path(t, &dir, "reduce-%05u-a%u", sp->task, sp->attempt);
    int e = qn_mkdirs(dir.data, 0755);
    if (e < 0)
        rc = qn_task_failf(t, "cannot create %s: %s", dir.data, strerror(-e));
    for (size_t i = 0; i < n && rc == 0; i++) {
        const Quern__MapOutput *mo = sp->map_outputs[i];
        if (mo->bytes == 0)
            continue; /* nothing for this partition */
        s_seg *s = &segs[nsegs];
        s->mo = mo;
        s->total = mo->bytes;
        s->peer = s_peer_for(peers, &npeers, ctx, mo->endpoint);
        if (!s->peer->sock) {
            rc = qn_task_failf(t, "bad shuffle endpoint '%s' for map %u",
                               mo->endpoint, mo->map);
            break;
        }
        qn_buf p = {0};
        qn_buf_printf(&p, "%s/seg-%05u", dir.data, mo->map);
        s->path = p.data;
        s->fd = -1;
        nsegs++;
        total += s->total;
    }

    items = qn_calloc(npeers ? npeers : 1, sizeof *items);
    unsigned inflight = 0;
    size_t next = 0; /* first segment that may still need asking */
    while (rc == 0 && received < total) {
        /* Spend credit on the earliest segments first. */
        for (size_t i = next; i < nsegs && inflight < MAX_INFLIGHT; i++) {
            s_seg *s = &segs[i];
            while (rc == 0 && s->asked < s->total &&
                   s->inflight < PER_MAP_WINDOW && inflight < MAX_INFLIGHT) {
                rc = s_ask(t, segs, i);
                inflight++;
            }
            if (i == next && s->asked == s->total)
                next++;
        }
        if (rc < 0)
            break;
        for (size_t i = 0; i < npeers; i++) {
            items[i].socket = peers[i].sock;
            items[i].events = ZMQ_POLLIN;
            items[i].revents = 0;
        }
        if (zmq_poll(items, (int)npeers, 1000) < 0 && errno != EINTR) {
            rc = qn_task_failf(t, "poll: %s", zmq_strerror(errno));
            break;
        }
        for (size_t i = 0; i < npeers && rc == 0; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            int r;
            while (rc == 0 && (r = qn_wire_recv(peers[i].sock, 0, &f)) != 0) {
                if (r < 0) {
                    rc = qn_task_failf(t, "malformed message from %s",
                                       peers[i].endpoint);
                    break;
                }
                unsigned before = peers[i].inflight;
                rc = s_on_reply(t, &peers[i], segs, nsegs, &f, &received);
                if (peers[i].inflight < before)
                    inflight--;
            }
        }
        int64_t now = qn_now_ms();
        for (size_t i = 0; i < npeers && rc == 0; i++) {
            if (peers[i].inflight &&
                now - peers[i].last_heard > FETCH_TIMEOUT_MS)
                rc = qn_task_failf(t,
                                   "shuffle server %s did not answer for "
                                   "%d s",
                                   peers[i].endpoint, FETCH_TIMEOUT_MS / 1000);
        }
        qn_task_progress(t, total ? (double)received / (double)total / 3 : 0,
                         0);
    }

    char **paths = qn_calloc(nsegs ? nsegs : 1, sizeof *paths);
    char **names = qn_calloc(nsegs ? nsegs : 1, sizeof *names);
    for (size_t i = 0; i < nsegs; i++) {
        if (segs[i].fd >= 0)
            close(segs[i].fd); /* only after a failure */
        paths[i] = segs[i].path;
        qn_buf name = {0};
        qn_buf_printf(&name, "map %u attempt %u output from worker %s",
                      segs[i].mo->map, segs[i].mo->attempt,
                      segs[i].mo->worker_id);
        names[i] = name.data;
    }
    for (size_t i = 0; i < npeers; i++) {
        if (peers[i].sock)
            zmq_close(peers[i].sock);
        free(peers[i].endpoint);
    }
    zmq_ctx_term(ctx);
    free(items);
    free(segs);
    free(peers);
    qn_frames_release(&f);
    qn_buf_release(&dir);
    *out = paths;
    *out_names = names;
    *nout = nsegs;
    return rc;
}
