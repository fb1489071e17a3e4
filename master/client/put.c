/*
 * put.c -- `quern put` (dataset.h).
 *
 * put reads its files once, front to back, through one buffer: a shard
 * is cut at the first record boundary past --shard-size and streamed, a
 * chunk at a time, to each of the workers the master picked for it, with
 * a few chunks outstanding per worker (each worker acknowledges every
 * chunk; that is the flow control). A worker checks the shard's size and
 * CRC before it installs and announces it; the master seals the dataset
 * once every shard has its copies.
 *
 * A worker that fails while it takes a shard (its connection closes, it
 * errs, or it stops acknowledging) is dropped from that shard and avoided
 * for the rest of the put; the shard goes on to its other workers and the
 * master makes up the missing copy before it seals. When every worker of
 * a shard fails, the shard is placed again and written again from where
 * it began in its file: put reads files, which it can read again.
 */
#include "dataset.h"

#include "curve.h"
#include "decomp.h"
#include "util.h"
#include "wire.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zmq.h>

#define CHUNK (1024 * 1024)  /* bytes per ShardWrite */
#define WINDOW 4             /* chunks outstanding per worker */
#define WORKER_WAIT_MS 30000 /* a worker silent this long fails the put */
#define CALL_MS 10000        /* a master request */
#define COMMIT_MS 40000      /* the master seals once shards are announced */
#define MAX_TARGETS 16
#define AGAIN_MAX 8    /* times one put writes a shard again */
#define PUT_AGAIN (-1) /* every worker of the shard failed */

typedef struct {
    char *endpoint;
    void *sock;
    void *monitor; /* says when sock's connection closes */
} s_conn;

typedef struct {
    size_t conn; /* index into s_put.conns (which may move) */
    char id[72];
    unsigned outstanding;
} s_target;

typedef struct {
    qn_client *c;
    const qn_curve *curve;
    const qn_put_opts *o;
    s_conn *conns;
    size_t nconns, cap_conns;
    int open; /* a shard is being written */
    uint32_t index;
    uint64_t size;
    uint32_t crc;
    char token[48];
    s_target t[MAX_TARGETS];
    unsigned nt;
    uint64_t next_req;
    uint64_t total;
    qn_frames in;
    char err[1200];
    char **avoid; /* workers that failed: not asked again */
    size_t navoid, cap_avoid;
    /* Where the bytes being fed come from, and where the open shard
     * began: file index and offset. */
    size_t file;
    const char *base;
    uint64_t base_off;
    size_t mark_file;
    uint64_t mark_off;
} s_put;

static int s_usage_err(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "quern: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return QN_EXIT_USAGE;
}

/* The index of a connection to ds (made on first use), or -1. */
static long s_connect(s_put *p, const Quern__DataSource *ds)
{
    for (size_t i = 0; i < p->nconns; i++)
        if (strcmp(p->conns[i].endpoint, ds->endpoint) == 0)
            return (long)i;
    void *sock = qn_wire_socket(qn_client_ctx(p->c), ZMQ_DEALER);
    if (!sock)
        return -1;
    if ((p->curve && p->curve->secret_key[0] &&
         qn_curve_client(sock, p->curve, ds->curve_public) < 0) ||
        zmq_connect(sock, ds->endpoint) < 0) {
        zmq_close(sock);
        return -1;
    }
    /* A worker killed mid-shard closes its connection: the monitor says
     * so at once, rather than after WORKER_WAIT_MS of silence. */
    char mon[64];
    snprintf(mon, sizeof mon, "inproc://quern-put-%p-%zu", (void *)p,
             p->nconns);
    void *ms = NULL;
    if (zmq_socket_monitor(sock, mon, ZMQ_EVENT_DISCONNECTED) == 0 &&
        (ms = zmq_socket(qn_client_ctx(p->c), ZMQ_PAIR)) != NULL &&
        zmq_connect(ms, mon) < 0) {
        zmq_close(ms);
        ms = NULL;
    }
    QN_GROW(p->conns, p->cap_conns, p->nconns + 1);
    s_conn *cn = &p->conns[p->nconns];
    cn->endpoint = qn_strdup(ds->endpoint);
    cn->sock = sock;
    cn->monitor = ms;
    return (long)p->nconns++;
}

static int s_put_call(s_put *p, Quern__PutRequest *rq, int ms,
                      Quern__Envelope **reply)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_PUT_REQUEST;
    env.put_request = rq;
    int rc =
        qn_client_ask(p->c, &env, QUERN__ENVELOPE__BODY_PUT_REPLY, ms, reply);
    if (rc == 0 && (*reply)->put_reply->error[0]) {
        snprintf(p->err, sizeof p->err, "%s", (*reply)->put_reply->error);
        qn_wire_free(*reply);
        *reply = NULL;
        return QN_EXIT_USAGE;
    }
    if (rc != 0)
        snprintf(p->err, sizeof p->err, "the master did not answer");
    return rc;
}

/* Ask the master where the next shard goes. */
static int s_place(s_put *p)
{
    Quern__PutRequest rq = QUERN__PUT_REQUEST__INIT;
    rq.op = QUERN__PUT_REQUEST__OP__PLACE;
    rq.dataset = (char *)p->o->dataset;
    rq.index = p->index;
    rq.avoid = p->avoid;
    rq.n_avoid = p->navoid;
    Quern__Envelope *reply;
    int rc = s_put_call(p, &rq, CALL_MS, &reply);
    if (rc != 0) {
        /* Say which workers failed it, when some did. */
        size_t len = strlen(p->err);
        for (size_t i = 0; i < p->navoid && len < sizeof p->err; i++)
            len += (size_t)snprintf(p->err + len, sizeof p->err - len, "%s%s%s",
                                    i ? ", " : " (workers that failed: ",
                                    p->avoid[i], i + 1 == p->navoid ? ")" : "");
        return rc;
    }
    const Quern__PutReply *r = reply->put_reply;
    p->nt = 0;
    for (size_t i = 0; i < r->n_targets && p->nt < MAX_TARGETS; i++) {
        long cn = s_connect(p, r->targets[i]);
        if (cn < 0) {
            snprintf(p->err, sizeof p->err, "cannot connect to worker %s at %s",
                     r->targets[i]->worker_id, r->targets[i]->endpoint);
            qn_wire_free(reply);
            return QN_EXIT_UNREACHABLE;
        }
        s_target *t = &p->t[p->nt++];
        t->conn = (size_t)cn;
        t->outstanding = 0;
        snprintf(t->id, sizeof t->id, "%s", r->targets[i]->worker_id);
    }
    qn_wire_free(reply);
    if (p->nt < p->o->replicas && !p->navoid)
        fprintf(stderr,
                "quern: shard %u gets %u of %u copies: only %u live workers "
                "keep datasets\n",
                p->index, p->nt, p->o->replicas, p->nt);
    snprintf(p->token, sizeof p->token, "put-%llx-%x-%u",
             (unsigned long long)qn_wall_ms(), (unsigned)getpid(), p->index);
    p->open = 1;
    p->size = 0;
    p->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    return 0;
}

#define TARGET_LOST (-2) /* s_ack: the target failed (why in p->err) */

/* Read what a connection's monitor says (its events are not needed,
 * only that one came). */
static void s_monitor_drain(void *monitor)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    while (zmq_msg_recv(&msg, monitor, ZMQ_DONTWAIT) >= 0)
        ;
    zmq_msg_close(&msg);
}

/* Wait for one acknowledgement from target t. Returns 0, TARGET_LOST, or
 * an exit status. */
static int s_ack(s_put *p, s_target *t)
{
    /* Called only for a chunk sent and not yet acknowledged. */
    assert(t->outstanding > 0 && t->conn < p->nconns);
    s_conn *cn = &p->conns[t->conn];
    int64_t deadline = qn_now_ms() + WORKER_WAIT_MS;
    for (;;) {
        int64_t left = deadline - qn_now_ms();
        if (left <= 0) {
            snprintf(p->err, sizeof p->err,
                     "worker %s (%s) did not acknowledge shard %u for %d s",
                     t->id, cn->endpoint, p->index, WORKER_WAIT_MS / 1000);
            return TARGET_LOST;
        }
        zmq_pollitem_t it[2] = {{.socket = cn->sock, .events = ZMQ_POLLIN},
                                {.socket = cn->monitor, .events = ZMQ_POLLIN}};
        if (zmq_poll(it, cn->monitor ? 2 : 1, (long)left) <= 0)
            continue;
        if (cn->monitor && (it[1].revents & ZMQ_POLLIN)) {
            s_monitor_drain(cn->monitor);
            snprintf(p->err, sizeof p->err,
                     "worker %s (%s) closed its connection while it took "
                     "shard %u",
                     t->id, cn->endpoint, p->index);
            return TARGET_LOST;
        }
        if (!(it[0].revents & ZMQ_POLLIN) ||
            qn_wire_recv(cn->sock, 0, &p->in) <= 0)
            continue;
        Quern__Envelope *env;
        char err[256];
        if (qn_wire_decode(p->in.env.data, p->in.env.len, &env, NULL, err,
                           sizeof err) < 0)
            continue;
        if (env->body_case == QUERN__ENVELOPE__BODY_SHARD_WRITE_REPLY) {
            int bad = env->shard_write_reply->error[0] != 0;
            if (bad)
                snprintf(p->err, sizeof p->err, "worker %s: %s", t->id,
                         env->shard_write_reply->error);
            qn_wire_free(env);
            t->outstanding--;
            return bad ? TARGET_LOST : 0;
        }
        if (env->body_case == QUERN__ENVELOPE__BODY_REFUSAL) {
            snprintf(p->err, sizeof p->err, "worker %s: %s", t->id,
                     env->refusal->reason);
            qn_wire_free(env);
            return QN_EXIT_USAGE;
        }
        qn_wire_free(env);
    }
}

/* Target i failed (why in p->err): the shard goes on without it, and the
 * put asks it for nothing more. Returns 0, or PUT_AGAIN when no target
 * of the shard is left. */
static int s_lose(s_put *p, unsigned i)
{
    QN_GROW(p->avoid, p->cap_avoid, p->navoid + 1);
    p->avoid[p->navoid++] = qn_strdup(p->t[i].id);
    memmove(&p->t[i], &p->t[i + 1], (p->nt - i - 1) * sizeof *p->t);
    p->nt--;
    if (p->nt == 0)
        return PUT_AGAIN;
    fprintf(stderr,
            "quern: %s; shard %u goes on to its other %u worker%s, and the "
            "master makes up the copy\n",
            p->err, p->index, p->nt, p->nt == 1 ? "" : "s");
    return 0;
}

/* Send one chunk (len bytes at offset; end: the shard's last) to target
 * t. 0, TARGET_LOST or an exit status. */
static int s_send(s_put *p, s_target *t, const char *data, size_t len,
                  uint64_t offset, int end)
{
    int rc = 0;
    while (t->outstanding >= WINDOW)
        if ((rc = s_ack(p, t)) != 0)
            return rc;
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__ShardWrite w = QUERN__SHARD_WRITE__INIT;
    w.token = p->token;
    w.dataset = (char *)p->o->dataset;
    w.index = p->index;
    w.offset = offset;
    w.last = end;
    w.size = p->size;
    w.crc = p->crc;
    w.request_id = ++p->next_req;
    env.body_case = QUERN__ENVELOPE__BODY_SHARD_WRITE;
    env.shard_write = &w;
    rc = qn_wire_send(p->conns[t->conn].sock, NULL, 0, &env, data ? data : "",
                      len);
    if (rc < 0) {
        snprintf(p->err, sizeof p->err, "cannot send to worker %s: %s", t->id,
                 zmq_strerror(-rc));
        return TARGET_LOST;
    }
    t->outstanding++;
    return 0;
}

/* Send len bytes of the open shard to every target (last: it ends).
 * 0, PUT_AGAIN, or an exit status. */
static int s_write(s_put *p, const char *data, size_t len, int last)
{
    assert(p->open); /* s_place opened the shard */
    while (len > 0 || last) {
        size_t n = len > CHUNK ? CHUNK : len;
        int end = last && n == len;
        uint64_t offset = p->size;
        if (n) /* crc32() of a NULL buffer is its initial value */
            p->crc = (uint32_t)crc32(p->crc, (const Bytef *)data, (uInt)n);
        p->size += n;
        for (unsigned i = 0; i < p->nt; i++) {
            int rc = s_send(p, &p->t[i], data, n, offset, end);
            if (rc == TARGET_LOST && (rc = s_lose(p, i--)) == 0)
                continue;
            if (rc)
                return rc;
        }
        p->total += n;
        data += n;
        len -= n;
        if (end)
            break;
    }
    if (!last)
        return 0;
    /* The shard is complete once every copy is acknowledged. */
    for (unsigned i = 0; i < p->nt; i++)
        while (p->t[i].outstanding > 0) {
            int rc = s_ack(p, &p->t[i]);
            if (rc == TARGET_LOST) {
                if ((rc = s_lose(p, i--)) != 0)
                    return rc;
                break;
            }
            if (rc)
                return rc;
        }
    p->open = 0;
    p->index++;
    return 0;
}

/* Feed bytes of the input; shards are cut at record boundaries. */
static int s_feed(s_put *p, const char *data, size_t len)
{
    const qn_put_opts *o = p->o;
    while (len > 0) {
        int rc;
        if (!p->open) {
            p->mark_file = p->file;
            p->mark_off = p->base_off + (uint64_t)(data - p->base);
            if ((rc = s_place(p)) != 0)
                return rc;
        }
        if (o->whole)
            return s_write(p, data, len, 0);
        uint64_t room = o->shard_size > p->size ? o->shard_size - p->size : 0;
        if (o->record_size) {
            /* Fixed records: shards hold a whole number of them. */
            uint64_t cut = o->shard_size / o->record_size * o->record_size;
            if (cut == 0)
                cut = o->record_size;
            room = cut > p->size ? cut - p->size : 0;
            size_t n = len < room ? len : (size_t)room;
            if ((rc = s_write(p, data, n, n == room)) != 0)
                return rc;
            data += n;
            len -= n;
            continue;
        }
        if (len <= room) {
            return s_write(p, data, len, 0);
        }
        size_t from = room ? (size_t)room - 1 : 0;
        const char *nl = memchr(data + from, '\n', len - from);
        if (!nl)
            return s_write(p, data, len, 0); /* the record goes on */
        size_t n = (size_t)(nl - data) + 1;
        if ((rc = s_write(p, data, n, 1)) != 0)
            return rc;
        data += n;
        len -= n;
    }
    return 0;
}

/*
 * The next bytes of a file being put, up to CHUNK: its own, or for a
 * compressed file (decomp.h) its decompressed ones. 0 at the end, or
 * -1 with the reason in p->err.
 */
static ssize_t s_next(s_put *p, int fd, qn_decomp *dec, const char *path,
                      char *buf)
{
    if (dec)
        return qn_decomp_read(dec, buf, CHUNK, p->err, sizeof p->err);
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            snprintf(p->err, sizeof p->err, "reading %s: %s", path,
                     strerror(errno));
        return n;
    }
}

/* Put file number idx (path) from offset from on (of its decompressed
 * bytes, when it is compressed). 0, PUT_AGAIN or an exit status. */
static int s_put_file(s_put *p, size_t idx, const char *path, uint64_t from,
                      char *buf)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    qn_decomp_kind kind = QN_DECOMP_PLAIN;
    struct stat st;
    int e = fd < 0 ? errno : fstat(fd, &st) < 0 ? errno : 0;
    if (e == 0)
        e = -qn_decomp_sniff_fd(fd, &kind);
    qn_decomp *dec = NULL;
    if (e == 0 && kind != QN_DECOMP_PLAIN &&
        !(dec = qn_decomp_new(kind, fd, (uint64_t)st.st_size, path, p->err,
                              sizeof p->err)))
        e = ENOMEM;
    else if (e == 0 && !dec && from && lseek(fd, (off_t)from, SEEK_SET) < 0)
        e = errno;
    if (e) {
        if (!dec && e != ENOMEM)
            snprintf(p->err, sizeof p->err, "%s: %s", path, strerror(e));
        if (fd >= 0)
            close(fd);
        return QN_EXIT_USAGE;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    char last = '\n';
    uint64_t bytes = 0, skip = dec ? from : 0;
    int rc = 0;
    p->file = idx;
    if (!dec)
        bytes = from;
    for (;;) {
        ssize_t n = s_next(p, fd, dec, path, buf);
        if (n < 0) {
            rc = QN_EXIT_USAGE;
            break;
        }
        if (n == 0)
            break;
        if (skip) {
            /* Written before, by a shard that is being written again. */
            size_t k = (uint64_t)n < skip ? (size_t)n : (size_t)skip;
            skip -= k;
            bytes += k;
            memmove(buf, buf + k, (size_t)n - k);
            if ((n -= (ssize_t)k) == 0)
                continue;
        }
        last = buf[n - 1];
        p->base = buf;
        p->base_off = bytes;
        bytes += (uint64_t)n;
        if ((rc = s_feed(p, buf, (size_t)n)) != 0)
            break;
    }
    qn_decomp_destroy(&dec);
    close(fd);
    if (rc == 0 && skip) {
        snprintf(p->err, sizeof p->err,
                 "%s is shorter than when it was first read (it changed "
                 "while being put)",
                 path);
        rc = QN_EXIT_USAGE;
    }
    if (rc)
        return rc;
    if (p->o->record_size && bytes % p->o->record_size) {
        snprintf(p->err, sizeof p->err,
                 "%s holds %llu bytes, not a whole number of %llu-byte "
                 "records",
                 path, (unsigned long long)bytes,
                 (unsigned long long)p->o->record_size);
        return QN_EXIT_USAGE;
    }
    if (p->o->whole) {
        if (!p->open) {
            p->mark_file = idx;
            p->mark_off = 0;
            if ((rc = s_place(p)) != 0)
                return rc;
        }
        return s_write(p, NULL, 0, 1);
    }
    /* Lines do not run on from one file into the next. */
    if (!p->o->record_size && last != '\n') {
        p->base = "\n";
        p->base_off = bytes;
        return s_feed(p, p->base, 1);
    }
    return 0;
}

/* Are the files there, and files? 0, or an exit status (said). */
static int s_check_files(const char *const *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(files[i], &st) < 0)
            return s_usage_err("%s: %s", files[i], strerror(errno));
        if (!S_ISREG(st.st_mode))
            return s_usage_err("%s is not a file%s", files[i],
                               S_ISDIR(st.st_mode) ? " (give the files in it)"
                                                   : "");
    }
    return 0;
}

/* Begin, commit or abort the put with the master: 0 or an exit status
 * (why in p->err). */
static int s_put_op(s_put *p, Quern__PutRequest__Op op, int ms)
{
    Quern__PutRequest rq = QUERN__PUT_REQUEST__INIT;
    rq.op = op;
    rq.dataset = (char *)p->o->dataset;
    if (op == QUERN__PUT_REQUEST__OP__BEGIN)
        rq.replicas = p->o->replicas;
    if (op == QUERN__PUT_REQUEST__OP__COMMIT)
        rq.nshards = p->index;
    Quern__Envelope *reply = NULL;
    int rc = s_put_call(p, &rq, ms, &reply);
    if (rc == 0)
        qn_wire_free(reply);
    return rc;
}

/* Close the connections to the workers; free what the put holds. */
static void s_put_release(s_put *p)
{
    for (size_t i = 0; i < p->nconns; i++) {
        zmq_close(p->conns[i].sock);
        if (p->conns[i].monitor)
            zmq_close(p->conns[i].monitor);
        free(p->conns[i].endpoint);
    }
    free(p->conns);
    for (size_t i = 0; i < p->navoid; i++)
        free(p->avoid[i]);
    free(p->avoid);
    qn_frames_release(&p->in);
}

int qn_dataset_put(qn_client *c, const qn_curve *curve, const qn_put_opts *o,
                   const char *const *files, size_t n)
{
    s_put p = {.c = c, .curve = curve, .o = o};
    int rc = s_check_files(files, n);
    if (rc != 0)
        return rc;
    int64_t start = qn_now_ms();
    rc = s_put_op(&p, QUERN__PUT_REQUEST__OP__BEGIN, CALL_MS);
    if (rc != 0) {
        fprintf(stderr, "quern: put %s: %s\n", o->dataset, p.err);
        return rc;
    }
    char *buf = qn_malloc(CHUNK);
    size_t fi = 0;
    uint64_t from = 0;
    for (unsigned again = 0;; again++) {
        while (rc == 0 && fi < n) {
            rc = s_put_file(&p, fi, files[fi], from, buf);
            if (rc == 0) {
                fi++;
                from = 0;
            }
        }
        if (rc == 0 && p.open)
            rc = s_write(&p, NULL, 0, 1);
        if (rc != PUT_AGAIN)
            break;
        if (again == AGAIN_MAX) {
            rc = QN_EXIT_UNREACHABLE;
            break;
        }
        /* Every worker of the shard failed: it starts again where it
         * began, on workers the master picks among the others. */
        fprintf(stderr, "quern: %s; shard %u is written again elsewhere\n",
                p.err, p.index);
        p.total -= p.size;
        p.open = 0;
        fi = p.mark_file;
        from = p.mark_off;
        rc = 0;
    }
    free(buf);
    if (rc == 0)
        rc = s_put_op(&p, QUERN__PUT_REQUEST__OP__COMMIT, COMMIT_MS);
    if (rc != 0) {
        fprintf(stderr, "quern: put %s failed: %s; nothing was kept\n",
                o->dataset, p.err);
        s_put_op(&p, QUERN__PUT_REQUEST__OP__ABORT, CALL_MS);
    } else {
        double s = (double)(qn_now_ms() - start) / 1000;
        char sz[32];
        fprintf(stderr,
                "quern: put %s: %u shards, %s, %u copies each, in %.1f s "
                "(%.1f MiB/s)\n",
                o->dataset, p.index, qn_fmt_bytes(p.total, sz, sizeof sz),
                o->replicas, s, s > 0 ? (double)p.total / s / 1048576 : 0);
    }
    s_put_release(&p);
    return rc;
}
