/*
 * fetch.c -- the reducer's side of the shuffle.
 *
 * For every map output holding data for this partition, the reducer asks
 * the map's shuffle server for the partition's bytes in chunks and writes
 * them to a local segment file. Requests are credit-based: at most
 * PER_MAP_WINDOW chunks outstanding per map output and MAX_INFLIGHT in all,
 * so a server only sends what was asked for and a slow reducer holds its
 * senders back instead of filling memory. All servers are fetched from
 * concurrently in one poll loop, which also reads the worker's channel.
 *
 * Faults: a server silent for STALL_MS, an error reply, or a segment whose
 * blocks fail their CRC check or do not add up to the raw size the map
 * reported is reported to the master (through the worker) as a fetch
 * failure. The segment then waits: for a new location
 * (the master runs the map again and the worker passes the new place on),
 * or RETRY_MS, after which it is fetched again from the start. Replies
 * from before a restart carry an older generation and are dropped, so one
 * segment never mixes bytes of two attempts. Records are not decoded here
 * (that would cost every reduce a second decompression of its input): one
 * that turns out corrupt when merged is charged to its map output then, by
 * reducetask.c, with the qn_fetched entries qn_fetch_segments returns.
 *
 * Reduces start while the last maps still run: a map not done yet comes
 * as attempt 0, and its segment waits for the location the master sends
 * when the map is done (asking again every ASK_MS, in case it was lost).
 * Outputs already there are fetched meanwhile.
 */
#include "fetch.h"

#include "curve.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define CHUNK (256 * 1024) /* bytes asked for per request */
#define PER_MAP_WINDOW 2   /* requests outstanding per map output */
#define MAX_INFLIGHT 16    /* requests outstanding in all */
#define STALL_MS 5000      /* a server silent this long has failed */
#define RETRY_MS 2000      /* wait after a failure before trying again */
#define ASK_MS 10000       /* ask again where a map not done yet is */
#define VERIFY_BUF (1024 * 1024)

enum { SEG_FETCHING, SEG_WAITING, SEG_DONE };
#define NO_PEER SIZE_MAX /* a segment whose map is not done yet */

typedef struct {
    char *endpoint;
    char *key; /* its CURVE public key, or "" */
    void *sock;
    unsigned inflight;
    int64_t last_heard;
    int broken; /* went silent: reconnect before asking again */
} s_peer;

typedef struct {
    unsigned map, attempt;
    char *worker_id;
    uint64_t incarnation; /* of the worker process holding it (0: unsaid) */
    size_t peer;          /* index into the peer table */
    char *path;
    int fd;
    uint64_t total, asked, got;
    uint64_t raw; /* record bytes the map reported (0: not told) */
    unsigned inflight;
    uint64_t at[PER_MAP_WINDOW]; /* offsets asked for, not answered yet */
    unsigned gen;                /* bumped on every restart */
    int state;
    int64_t retry_at;
} s_seg;

typedef struct {
    quern_task *t;
    void *ctx;
    s_peer *peers;
    size_t npeers, cap_peers;
    s_seg *segs;
    size_t nsegs;
    unsigned inflight;
    size_t nwaiting;       /* segments in SEG_WAITING */
    qn_stream ctl;         /* the worker's channel: new map locations */
    zmq_pollitem_t *items; /* the poll set: peers, then ctl */
    size_t cap_items;
    qn_frames fr; /* a reply being read */
} s_fetch;

static void s_set_state(s_fetch *f, s_seg *s, int state)
{
    if (s->state == SEG_WAITING) {
        assert(f->nwaiting > 0);
        f->nwaiting--;
    }
    if (state == SEG_WAITING)
        f->nwaiting++;
    s->state = state;
}

static size_t s_peer_for(s_fetch *f, const char *endpoint, const char *key)
{
    for (size_t i = 0; i < f->npeers; i++)
        if (strcmp(f->peers[i].endpoint, endpoint) == 0)
            return i;
    QN_GROW(f->peers, f->cap_peers, f->npeers + 1);
    s_peer *p = &f->peers[f->npeers];
    memset(p, 0, sizeof *p);
    p->endpoint = qn_strdup(endpoint);
    p->key = qn_strdup(key);
    return f->npeers++;
}

static void s_seg_reset(s_fetch *f, s_seg *s);

/*
 * (Re)connect peer pi: a fresh socket drops requests queued for it, and
 * segments fetching from it start again.
 */
static int s_connect(s_fetch *f, size_t pi)
{
    s_peer *p = &f->peers[pi];
    for (size_t i = 0; i < f->nsegs; i++)
        if (f->segs[i].peer == pi && f->segs[i].state == SEG_FETCHING)
            s_seg_reset(f, &f->segs[i]);
    if (p->sock)
        zmq_close(p->sock);
    p->broken = 0;
    p->sock = qn_wire_socket(f->ctx, ZMQ_DEALER);
    if (f->t->curve && f->t->curve->secret_key[0] &&
        qn_curve_client(p->sock, f->t->curve, p->key) < 0) {
        zmq_close(p->sock);
        p->sock = NULL;
        return qn_task_failf(f->t, "cannot use CURVE with %s", p->endpoint);
    }
    if (zmq_connect(p->sock, p->endpoint) < 0) {
        zmq_close(p->sock);
        p->sock = NULL;
        return qn_task_failf(f->t, "bad shuffle endpoint '%s'", p->endpoint);
    }
    p->inflight = 0;
    p->last_heard = qn_now_ms();
    return 0;
}

/* Forget what segment i asked for and fetched; it starts again. */
static void s_seg_reset(s_fetch *f, s_seg *s)
{
    /* A server's and the fetch's requests in flight are the sums of their
     * segments'. */
    if (s->peer != NO_PEER) {
        s_peer *p = &f->peers[s->peer];
        assert(p->inflight >= s->inflight);
        p->inflight -= s->inflight;
    }
    assert(f->inflight >= s->inflight);
    f->inflight -= s->inflight;
    s->inflight = 0;
    for (size_t k = 0; k < PER_MAP_WINDOW; k++)
        s->at[k] = UINT64_MAX;
    /* What it fetched is fetched again: count it once. */
    qn_task_count(f->t, QN_C_SHUFFLE_STORED, -(long long)s->got);
    s->asked = s->got = 0;
    s->gen++;
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    unlink(s->path);
    s_set_state(f, s, s->total ? SEG_FETCHING : SEG_DONE);
}

/* Report segment s's map output as failed and wait before trying again. */
static int s_seg_failed(s_fetch *f, s_seg *s, int lost, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int s_seg_failed(s_fetch *f, s_seg *s, int lost, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fetch of map %u attempt %u from worker %s failed: %s\n",
            s->map, s->attempt, s->worker_id, why);
    s_seg_reset(f, s);
    s_set_state(f, s, SEG_WAITING);
    s->retry_at = qn_now_ms() + RETRY_MS;
    if (qn_task_fetch_failed(f->t, s->map, s->attempt, s->incarnation, lost,
                             why) < 0)
        return qn_task_failf(f->t, "the worker is gone");
    return 0;
}

/*
 * Check the CRC of every block of a fetched segment and, unless want_raw is
 * 0, that their raw sizes add up to it (a block dropped, with the map's
 * index rewritten to match, is not a short answer). 0, or -1 + err.
 */
static int s_verify(const char *path, uint64_t want_raw, char *err,
                    size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    qn_buf b = {0};
    uint64_t base = 0, raw = 0;
    int rc = 0;
    for (;;) {
        if (qn_buf_reserve(&b, VERIFY_BUF) < 0) {
            snprintf(err, errcap, "out of memory");
            rc = -1;
            break;
        }
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errcap, "reading %s: %s", path, strerror(errno));
            rc = -1;
            break;
        }
        b.len += (size_t)n;
        char why[200];
        long ok = qn_block_scan(b.data, b.len, &raw, why, sizeof why);
        if (ok < 0) {
            snprintf(err, errcap, "%s (%llu bytes into the partition)", why,
                     (unsigned long long)base);
            rc = -1;
            break;
        }
        memmove(b.data, b.data + ok, b.len - (size_t)ok);
        b.len -= (size_t)ok;
        base += (uint64_t)ok;
        if (n == 0) {
            if (b.len) {
                snprintf(err, errcap, "a truncated block at byte %llu",
                         (unsigned long long)base);
                rc = -1;
            } else if (want_raw && raw != want_raw) {
                snprintf(err, errcap,
                         "its blocks hold %llu bytes of records, the map "
                         "wrote %llu",
                         (unsigned long long)raw, (unsigned long long)want_raw);
                rc = -1;
            }
            break;
        }
    }
    qn_buf_release(&b);
    close(fd);
    return rc;
}

static int s_ask(s_fetch *f, size_t i)
{
    quern_task *t = f->t;
    s_seg *s = &f->segs[i];
    s_peer *p = &f->peers[s->peer];
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__FetchRequest rq = QUERN__FETCH_REQUEST__INIT;
    uint64_t n = s->total - s->asked;
    if (n > CHUNK)
        n = CHUNK;
    rq.job_id = t->spec->job_id;
    rq.map = s->map;
    rq.attempt = s->attempt;
    rq.partition = t->spec->task;
    rq.offset = s->asked;
    rq.max_bytes = (uint32_t)n;
    rq.request_id = ((uint64_t)i << 40) | ((uint64_t)(s->gen & 0xffff) << 24) |
                    ((s->asked / CHUNK) & 0xffffff);
    env.body_case = QUERN__ENVELOPE__BODY_FETCH_REQUEST;
    env.fetch_request = &rq;
    int rc = qn_wire_send(p->sock, NULL, 0, &env, NULL, 0);
    if (rc == -EAGAIN)
        return 1; /* its queue is full: the stall check will tell */
    if (rc < 0)
        return qn_task_failf(t, "cannot ask %s for map %u: %s", p->endpoint,
                             s->map, zmq_strerror(-rc));
    if (p->inflight == 0)
        p->last_heard = qn_now_ms();
    for (size_t k = 0; k < PER_MAP_WINDOW; k++) {
        if (s->at[k] == UINT64_MAX) {
            s->at[k] = s->asked;
            break;
        }
    }
    s->asked += n;
    s->inflight++;
    p->inflight++;
    f->inflight++;
    return 0;
}

/* Segment s got its last byte: check it. Returns 0 or -1 (t->fail). */
static int s_seg_complete(s_fetch *f, s_seg *s)
{
    if (close(s->fd) < 0) {
        s->fd = -1;
        return qn_task_failf(f->t, "writing %s: %s", s->path, strerror(errno));
    }
    s->fd = -1;
    char err[512];
    if (s_verify(s->path, s->raw, err, sizeof err) < 0)
        return s_seg_failed(f, s, 1, "corrupt data: %s", err);
    s_set_state(f, s, SEG_DONE);
    return 0;
}

/*
 * The answer r (data: its bytes) to a request of segment s from peer p,
 * which was in flight: an error, a chunk of the wrong size, or bytes for
 * the segment file. Returns 0 or -1 (t->fail set).
 */
static int s_on_chunk(s_fetch *f, s_peer *p, s_seg *s,
                      const Quern__FetchReply *r, const qn_frames *fr)
{
    if (r->error[0])
        return s_seg_failed(f, s, 0, "%s answered: %s", p->endpoint, r->error);
    uint64_t want = s->total - r->offset < CHUNK ? s->total - r->offset : CHUNK;
    if (r->total != s->total || !fr->has_data || fr->data.len != want)
        return s_seg_failed(f, s, 1,
                            "%s sent a reply that does not match the "
                            "announced size (%llu bytes)",
                            p->endpoint, (unsigned long long)s->total);
    /* Opened on the first chunk and closed on the last, so a reducer of
     * thousands of maps holds a handful of files open. */
    if (s->fd < 0) {
        /* In the task's tmp/, where its code may have left anything: a
         * new file of our own, never one found there (nor a link). */
        unlink(s->path);
        s->fd =
            open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                 0644);
    }
    int e = s->fd < 0
                ? -errno
                : qn_pwrite_all(s->fd, fr->data.data, fr->data.len, r->offset);
    int rc = 0;
    if (e < 0)
        rc = qn_task_failf(f->t, "writing %s: %s", s->path, strerror(-e));
    s->got += fr->data.len;
    qn_task_count(f->t, QN_C_SHUFFLE_STORED, (long long)fr->data.len);
    if (rc == 0 && s->got == s->total)
        rc = s_seg_complete(f, s);
    return rc;
}

/*
 * The segment and window slot a reply from peer pi answers: only a
 * request in flight, once (a repeated or misplaced answer would corrupt
 * the segment or keep it from ending), and not one from before a restart
 * of the segment. NULL when it answers nothing.
 */
static s_seg *s_answered(s_fetch *f, size_t pi, const Quern__FetchReply *r,
                         size_t *slot)
{
    size_t i = (size_t)(r->request_id >> 40);
    unsigned gen = (unsigned)(r->request_id >> 24) & 0xffff;
    s_seg *s = i < f->nsegs ? &f->segs[i] : NULL;
    if (!s || s->peer != pi || (s->gen & 0xffff) != gen ||
        s->state != SEG_FETCHING || s->inflight == 0)
        return NULL;
    for (*slot = 0; *slot < PER_MAP_WINDOW; (*slot)++)
        if (s->at[*slot] == r->offset)
            return s;
    return NULL;
}

/* Handle one reply from peer pi. Returns 0 or -1 (t->fail set). */
static int s_on_reply(s_fetch *f, size_t pi, qn_frames *fr)
{
    s_peer *p = &f->peers[pi];
    Quern__Envelope *env;
    char err[256];
    uint32_t theirs = 0;
    int rc = qn_wire_decode(fr->env.data, fr->env.len, &env, &theirs, err,
                            sizeof err);
    if (rc == -QN_WIRE_EVERSION) {
        qn_wire_free(env);
        return qn_task_failf(f->t,
                             "shuffle server %s speaks protocol version %u, "
                             "this task speaks %u",
                             p->endpoint, theirs, QN_PROTOCOL_VERSION);
    }
    size_t slot = 0;
    s_seg *s = rc == 0 && env->body_case == QUERN__ENVELOPE__BODY_FETCH_REPLY
                   ? s_answered(f, pi, env->fetch_reply, &slot)
                   : NULL;
    rc = 0;
    if (s) {
        s->at[slot] = UINT64_MAX;
        p->last_heard = qn_now_ms();
        assert(p->inflight > 0 && f->inflight > 0);
        s->inflight--;
        p->inflight--;
        f->inflight--;
        rc = s_on_chunk(f, p, s, env->fetch_reply, fr);
    }
    qn_wire_free(env); /* not an answer to anything: dropped */
    return rc;
}

/*
 * New locations from the master, through the worker: a map done since the
 * reduce started, one that ran again, or one whose worker restarted (the
 * same attempt's output, served by a new process, maybe at a new place:
 * what was asked of the old one is asked again). A segment fetched and
 * checked already is kept whatever came of its map since.
 */
static void s_on_locations(s_fetch *f, const Quern__MapLocations *ml)
{
    for (size_t k = 0; k < ml->n_outputs; k++) {
        const Quern__MapOutput *mo = ml->outputs[k];
        for (size_t i = 0; i < f->nsegs; i++) {
            s_seg *s = &f->segs[i];
            if (s->map != mo->map)
                continue;
            int moved =
                s->attempt == mo->attempt && mo->incarnation != s->incarnation;
            if (s->attempt == mo->attempt && !moved)
                break;
            if (s->state == SEG_DONE && s->total)
                break; /* already have it, checked */
            s_seg_reset(f, s);
            /* A map that ran again is news; one done for the first time
             * since the reduce started is not. */
            if (moved)
                fprintf(stderr,
                        "map %u: worker %s restarted; fetching attempt %u "
                        "from it again at %s\n",
                        mo->map, mo->worker_id, mo->attempt, mo->endpoint);
            else if (s->attempt)
                fprintf(stderr, "map %u: fetching attempt %u from worker %s\n",
                        mo->map, mo->attempt, mo->worker_id);
            s->attempt = mo->attempt;
            s->incarnation = mo->incarnation;
            free(s->worker_id);
            s->worker_id = qn_strdup(mo->worker_id);
            s->total = mo->bytes;
            s->raw = mo->raw_bytes;
            s->peer = s_peer_for(f, mo->endpoint, mo->curve_public);
            s_set_state(f, s, s->total ? SEG_FETCHING : SEG_DONE);
            break;
        }
    }
}

/* Read the worker's channel. Returns 0 or -1 (t->fail). */
static int s_on_ctl(s_fetch *f)
{
    int rc = qn_stream_read(&f->ctl);
    for (;;) {
        Quern__Envelope *env = NULL;
        char err[256];
        int r = qn_stream_next(&f->ctl, &env, err, sizeof err);
        if (r < 0)
            return qn_task_failf(f->t, "bad message from the worker: %s", err);
        if (r == 0)
            break;
        if (env->body_case == QUERN__ENVELOPE__BODY_MAP_LOCATIONS)
            s_on_locations(f, env->map_locations);
        qn_wire_free(env);
    }
    if (rc < 0 || f->ctl.eof)
        return qn_task_failf(f->t, "the worker is gone");
    return 0;
}

const qn_fetched *qn_fetched_find(const qn_fetched *from, size_t n,
                                  const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(from[i].path, path) == 0)
            return &from[i];
    return NULL;
}

void qn_fetched_free(qn_fetched **from_p, size_t n)
{
    qn_fetched *from = *from_p;
    if (!from)
        return;
    for (size_t i = 0; i < n; i++)
        free(from[i].path);
    free(from);
    *from_p = NULL;
}

/* ---- the fetch ----------------------------------------------------------- */

/*
 * A segment for each map output with data for this partition, in map
 * order, in dir; a map not done yet (attempt 0) waits for its place.
 */
static void s_add_segments(s_fetch *f, const char *dir)
{
    const Quern__TaskSpec *sp = f->t->spec;
    for (size_t i = 0; i < sp->n_map_outputs; i++) {
        const Quern__MapOutput *mo = sp->map_outputs[i];
        if (mo->attempt && mo->bytes == 0)
            continue; /* nothing for this partition */
        s_seg *s = &f->segs[f->nsegs++];
        s->map = mo->map;
        s->attempt = mo->attempt;
        s->worker_id = qn_strdup(mo->worker_id);
        s->incarnation = mo->incarnation;
        s->total = mo->bytes;
        s->raw = mo->raw_bytes;
        s->peer = mo->attempt ? s_peer_for(f, mo->endpoint, mo->curve_public)
                              : NO_PEER;
        qn_buf p = {0};
        qn_buf_printf(&p, "%s/seg-%05u", dir, mo->map);
        s->path = p.data;
        s->fd = -1;
        for (size_t k = 0; k < PER_MAP_WINDOW; k++)
            s->at[k] = UINT64_MAX;
        if (mo->attempt) {
            s->state = SEG_FETCHING;
        } else {
            /* Not done yet: wait for its place (the master sends it). */
            s->retry_at = qn_now_ms() + ASK_MS;
            s_set_state(f, s, SEG_WAITING);
        }
    }
}

/*
 * Segments from next on whose wait is over: one whose map is not done yet
 * asks the master again where it is (its place should have come when it
 * was done; that word may have been lost); another starts again from the
 * start. Returns 0 or -1 (t->fail).
 */
static int s_wake_waiting(s_fetch *f, size_t next, int64_t now)
{
    for (size_t i = next; f->nwaiting && i < f->nsegs; i++) {
        s_seg *s = &f->segs[i];
        if (s->state != SEG_WAITING || now < s->retry_at)
            continue;
        if (s->attempt == 0) {
            s->retry_at = now + ASK_MS;
            if (qn_task_fetch_failed(f->t, s->map, 0, 0, 0, "not done yet") < 0)
                return qn_task_failf(f->t, "the worker is gone");
        } else {
            fprintf(stderr, "map %u: trying attempt %u on %s again\n", s->map,
                    s->attempt, f->peers[s->peer].endpoint);
            s_seg_reset(f, s);
        }
    }
    return 0;
}

/* Ask for chunks, spending credit on the earliest segments first (from
 * next on), connecting to their servers as needed. 0 or -1 (t->fail). */
static int s_ask_more(s_fetch *f, size_t next)
{
    for (size_t i = next; i < f->nsegs && f->inflight < MAX_INFLIGHT; i++) {
        s_seg *s = &f->segs[i];
        if (s->state != SEG_FETCHING)
            continue;
        if ((!f->peers[s->peer].sock || f->peers[s->peer].broken) &&
            s_connect(f, s->peer) < 0)
            return -1;
        while (s->asked < s->total && s->inflight < PER_MAP_WINDOW &&
               f->inflight < MAX_INFLIGHT) {
            int r = s_ask(f, i);
            if (r < 0)
                return -1;
            if (r > 0)
                break;
        }
    }
    return 0;
}

/*
 * Wait (up to 500 ms) for replies from the servers and word from the
 * worker, and handle them. Returns 0 or -1 (t->fail).
 */
static int s_poll_once(s_fetch *f)
{
    size_t npeers = f->npeers; /* a location read below may add more */
    QN_GROW(f->items, f->cap_items, npeers + 1);
    memset(f->items, 0, (npeers + 1) * sizeof *f->items);
    for (size_t i = 0; i < npeers; i++) {
        f->items[i].socket = f->peers[i].sock;
        f->items[i].fd = -1;
        f->items[i].events = f->peers[i].sock ? ZMQ_POLLIN : 0;
    }
    f->items[npeers].fd = f->t->ctl;
    f->items[npeers].events = ZMQ_POLLIN;
    if (zmq_poll(f->items, (int)npeers + 1, 500) < 0 && errno != EINTR)
        return qn_task_failf(f->t, "poll: %s", zmq_strerror(errno));
    int rc = 0;
    if (f->items[npeers].revents & ZMQ_POLLIN)
        rc = s_on_ctl(f);
    for (size_t i = 0; i < npeers && rc == 0; i++) {
        if (!(f->items[i].revents & ZMQ_POLLIN))
            continue;
        int r;
        while (rc == 0 &&
               (r = qn_wire_recv(f->peers[i].sock, 0, &f->fr)) != 0) {
            if (r < 0)
                continue; /* malformed: dropped */
            rc = s_on_reply(f, i, &f->fr);
        }
    }
    return rc;
}

/*
 * Servers with requests out and silent for STALL_MS have failed: the
 * segments they left waiting (from next on) are reported, and the server
 * is connected to again before it is asked anything more. 0 or -1.
 */
static int s_check_stalls(s_fetch *f, size_t next, int64_t now)
{
    for (size_t i = 0; i < f->npeers; i++) {
        s_peer *p = &f->peers[i];
        if (!p->inflight || now - p->last_heard < STALL_MS)
            continue;
        /* Only segments it left waiting are reported; the others start
         * again on a fresh connection. */
        for (size_t k = next; k < f->nsegs; k++) {
            s_seg *s = &f->segs[k];
            if (s->peer == i && s->state == SEG_FETCHING && s->inflight > 0 &&
                s_seg_failed(f, s, 0, "%s did not answer for %d s", p->endpoint,
                             STALL_MS / 1000) < 0)
                return -1;
        }
        p->inflight = 0;
        p->broken = 1;
    }
    return 0;
}

/* Tell the worker how far the fetch is (a third of the reduce's work),
 * about once a second even while waiting: waiting for a map to run again
 * is not a hang. */
static void s_progress(s_fetch *f)
{
    if (!qn_task_report_due(f->t))
        return;
    uint64_t total = 0, got = 0;
    for (size_t i = 0; i < f->nsegs; i++) {
        total += f->segs[i].total;
        got += f->segs[i].state == SEG_DONE ? f->segs[i].total : f->segs[i].got;
    }
    qn_task_progress(f->t, total ? (double)got / (double)total / 3 : 0, 0);
}

/* Fetch until every segment is done or something fails. 0 or -1. */
static int s_run(s_fetch *f)
{
    size_t next = 0; /* segments before it are done */
    int64_t last_stall_check = qn_now_ms();
    for (;;) {
        while (next < f->nsegs && f->segs[next].state == SEG_DONE)
            next++;
        if (next == f->nsegs)
            return 0;
        if (s_wake_waiting(f, next, qn_now_ms()) < 0 || s_ask_more(f, next) < 0)
            return -1;
        int rc = s_poll_once(f);
        int64_t now = qn_now_ms();
        if (rc == 0 && now - last_stall_check >= 250) {
            last_stall_check = now;
            rc = s_check_stalls(f, next, now);
        }
        s_progress(f);
        if (rc < 0)
            return -1;
    }
}

/* Hand the segments' paths, names and origins to the caller (from may be
 * NULL), their count into *nout, and free the rest of f. A segment with
 * nothing in it has no file and is left out. */
static void s_finish(s_fetch *f, char ***out, char ***out_names,
                     qn_fetched **out_from, size_t *nout)
{
    size_t n = f->nsegs ? f->nsegs : 1;
    char **paths = qn_calloc(n, sizeof *paths);
    char **names = qn_calloc(n, sizeof *names);
    qn_fetched *from = out_from ? qn_calloc(n, sizeof *from) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < f->nsegs; i++) {
        s_seg *s = &f->segs[i];
        if (s->fd >= 0)
            close(s->fd); /* only after a failure */
        if (s->state == SEG_DONE && s->total == 0) {
            /* A map that was not done when the fetch began, and wrote
             * nothing for this partition: no file was made. */
            free(s->path);
            free(s->worker_id);
            continue;
        }
        paths[k] = s->path;
        if (from)
            from[k] = (qn_fetched){qn_strdup(s->path), s->map, s->attempt};
        qn_buf name = {0};
        qn_buf_printf(&name, "map %u attempt %u output from worker %s", s->map,
                      s->attempt, s->worker_id);
        names[k++] = name.data;
        free(s->worker_id);
    }
    *nout = k;
    for (size_t i = 0; i < f->npeers; i++) {
        if (f->peers[i].sock)
            zmq_close(f->peers[i].sock);
        free(f->peers[i].endpoint);
        free(f->peers[i].key);
    }
    zmq_ctx_term(f->ctx);
    free(f->items);
    free(f->segs);
    free(f->peers);
    qn_buf_release(&f->ctl.in);
    qn_frames_release(&f->fr);
    *out = paths;
    *out_names = names;
    if (out_from)
        *out_from = from;
}

int qn_fetch_segments(quern_task *t, char ***out, char ***out_names,
                      qn_fetched **out_from, size_t *nout)
{
    Quern__TaskSpec *sp = t->spec;
    *out = *out_names = NULL;
    if (out_from)
        *out_from = NULL;
    *nout = 0;
    if (sp->curve_secret[0]) {
        char cerr[600];
        if (!qn_task_zmq(t, cerr, sizeof cerr)) /* loads t->curve */
            return qn_task_failf(t, "%s", cerr);
    }
    s_fetch f = {.t = t, .ctl = {.fd = t->ctl}};
    f.segs =
        qn_calloc(sp->n_map_outputs ? sp->n_map_outputs : 1, sizeof *f.segs);
    f.ctx = zmq_ctx_new();
    qn_buf dir = {0};
    qn_buf_printf(&dir, "%s", t->scratch);
    int e = qn_mkdirs(dir.data, 0755);
    int rc =
        e < 0 ? qn_task_failf(t, "cannot create %s: %s", dir.data, strerror(-e))
              : 0;
    if (rc == 0) {
        s_add_segments(&f, dir.data);
        rc = s_run(&f);
    }
    qn_buf_release(&dir);
    s_finish(&f, out, out_names, out_from, nout);
    return rc;
}
