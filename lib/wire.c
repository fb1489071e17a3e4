/*
 * wire.c -- see wire.h.
 */
#include "wire.h"

#include "shipped.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_DEPTH 8 /* deepest message nesting accepted */

/* ---- validation ---------------------------------------------------------- */

/*
 * Walk every field of m: strings must be UTF-8, nesting bounded. Works from
 * the descriptors, so new messages and fields are covered without code.
 */
static const char *s_walk(const ProtobufCMessage *m, int depth)
{
    if (depth > MAX_DEPTH)
        return "message nested too deeply";
    /* protobuf-c keeps a field numbered 0 (never valid) as unknown when
     * its tag is spelled in more than one byte, and then writes it so that
     * it refuses its own output: a message forwarded as it came would
     * break at the next hop. (Found by make fuzz.) */
    for (size_t i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return "a field numbered 0";
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING &&
            f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
            if (which != f->id)
                continue;
        }
        size_t n = 1;
        void *const *items = (void *const *)(base + f->offset);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(base + f->quantifier_offset);
            items = *(void *const *const *)(base + f->offset);
        }
        for (size_t k = 0; k < n; k++) {
            if (!items[k])
                continue;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                if (!qn_utf8_valid(items[k]))
                    return "string is not UTF-8";
            } else {
                const char *why = s_walk(items[k], depth + 1);
                if (why)
                    return why;
            }
        }
    }
    return NULL;
}

/* A dataset shard's place, as a peer describes it: within the limits. */
static const char *s_shard_check(const Quern__ShardInfo *sh)
{
    if (!qn_id_ok(sh->dataset))
        return "bad dataset";
    if (sh->index >= QN_SHARDS_MAX)
        return "shard index out of range";
    if (sh->sealed && (sh->nshards == 0 || sh->nshards > QN_SHARDS_MAX ||
                       sh->index >= sh->nshards))
        return "sealed with a shard count out of range";
    return NULL;
}

/* A worker's hello: its id, slots, shards and the map outputs it offers
 * within the limits. */
static const char *s_check_hello(const Quern__WorkerHello *h)
{
    if (!qn_id_ok(h->worker_id))
        return "worker_hello: bad worker_id";
    if (h->slots == 0 || h->slots > 1024)
        return "worker_hello: slots out of range";
    for (size_t i = 0; i < h->n_shards; i++)
        if (s_shard_check(h->shards[i]))
            return "worker_hello: bad shard";
    for (size_t i = 0; i < h->n_finished; i++) {
        const Quern__TaskUpdate *u = h->finished[i];
        if (!u->attempt || !qn_id_ok(u->attempt->job_id) ||
            u->attempt->kind != QUERN__TASK_KIND__MAP ||
            u->state != QUERN__TASK_STATE__SUCCEEDED)
            return "worker_hello: bad finished map output";
    }
    return NULL;
}

/* What is wrong with a data report, or NULL. */
static const char *s_data_report_check(const Quern__DataReport *dr)
{
    if (!qn_id_ok(dr->worker_id))
        return "data_report: bad worker_id";
    for (size_t i = 0; i < dr->n_added; i++)
        if (s_shard_check(dr->added[i]))
            return "data_report: bad shard";
    for (size_t i = 0; i < dr->n_removed; i++)
        if (s_shard_check(dr->removed[i]))
            return "data_report: bad shard";
    for (size_t i = 0; i < dr->n_damaged; i++)
        if (s_shard_check(dr->damaged[i]))
            return "data_report: bad shard";
    for (size_t i = 0; i < dr->n_failed; i++)
        if (!qn_id_ok(dr->failed[i]->dataset) ||
            !qn_id_ok(dr->failed[i]->job_id) ||
            dr->failed[i]->index >= QN_SHARDS_MAX)
            return "data_report: bad commit failure";
    return NULL;
}

/* The files a task spec ships: names a folder can hold, hashes the cache
 * can name. */
static int s_files_ok(const Quern__TaskSpec *ts)
{
    for (size_t i = 0; i < ts->n_files; i++)
        if (!qn_shipped_name_ok(ts->files[i]->name) ||
            !qn_shipped_hash_ok(ts->files[i]->hash))
            return 0;
    return 1;
}

/* Checks beyond well-formedness: the parts each message cannot do without. */
static const char *s_check(const Quern__Envelope *e)
{
    switch (e->body_case) {
    case QUERN__ENVELOPE__BODY__NOT_SET: return "envelope has no message";
    case QUERN__ENVELOPE__BODY_WORKER_HELLO:
        return s_check_hello(e->worker_hello);
    case QUERN__ENVELOPE__BODY_DROP_OUTPUTS:
        for (size_t i = 0; i < e->drop_outputs->n_outputs; i++)
            if (!qn_id_ok(e->drop_outputs->outputs[i]->job_id))
                return "drop_outputs: bad job_id";
        return NULL;
    case QUERN__ENVELOPE__BODY_WORKER_LEAVING:
        return qn_id_ok(e->worker_leaving->worker_id)
                   ? NULL
                   : "worker_leaving: bad worker_id";
    case QUERN__ENVELOPE__BODY_HEARTBEAT:
        if (!qn_id_ok(e->heartbeat->worker_id))
            return "heartbeat: bad worker_id";
        if (e->heartbeat->n_running > QN_HEARTBEAT_ATTEMPTS_MAX ||
            e->heartbeat->n_work > QN_HEARTBEAT_ATTEMPTS_MAX)
            return "heartbeat: more attempts than a worker can run";
        for (size_t i = 0; i < e->heartbeat->n_work; i++)
            if (!e->heartbeat->work[i]->attempt)
                return "heartbeat: work without an attempt";
        return NULL;
    case QUERN__ENVELOPE__BODY_MAP_LOCATIONS:
        return e->map_locations->reduce ? NULL : "map_locations: no reduce";
    case QUERN__ENVELOPE__BODY_ASSIGN_TASK:
        if (!e->assign_task->spec)
            return "assign_task: no spec";
        if (!s_files_ok(e->assign_task->spec))
            return "assign_task: bad shipped file";
        return qn_id_ok(e->assign_task->spec->job_id)
                   ? NULL
                   : "assign_task: bad job_id";
    case QUERN__ENVELOPE__BODY_TASK_SPEC:
        if (!qn_id_ok(e->task_spec->job_id))
            return "task_spec: bad job_id";
        if (!s_files_ok(e->task_spec))
            return "task_spec: bad shipped file";
        if (e->task_spec->nreduce == 0)
            return "task_spec: no reducers";
        return NULL;
    case QUERN__ENVELOPE__BODY_CANCEL_TASK:
        if (!e->cancel_task->attempt)
            return "cancel_task: no attempt";
        return NULL;
    case QUERN__ENVELOPE__BODY_TASK_UPDATE:
        if (!e->task_update->attempt)
            return "task_update: no attempt";
        return NULL;
    case QUERN__ENVELOPE__BODY_SUBMIT_JOB:
        return e->submit_job->spec ? NULL : "submit_job: no spec";
    case QUERN__ENVELOPE__BODY_FETCH_REQUEST:
        return qn_id_ok(e->fetch_request->job_id) ? NULL
                                                  : "fetch_request: bad job_id";
    case QUERN__ENVELOPE__BODY_SHARD_READ:
        return qn_id_ok(e->shard_read->dataset) ? NULL
                                                : "shard_read: bad dataset";
    case QUERN__ENVELOPE__BODY_SHARD_WRITE:
        if (!qn_id_ok(e->shard_write->dataset))
            return "shard_write: bad dataset";
        if (e->shard_write->index >= QN_SHARDS_MAX)
            return "shard_write: shard index out of range";
        return qn_id_ok(e->shard_write->token) ? NULL
                                               : "shard_write: bad token";
    case QUERN__ENVELOPE__BODY_DATA_REPORT:
        return s_data_report_check(e->data_report);
    case QUERN__ENVELOPE__BODY_DATA_COMMAND:
        if (!qn_id_ok(e->data_command->dataset))
            return "data_command: bad dataset";
        if (e->data_command->op == QUERN__DATA_COMMAND__OP__COMMIT &&
            !qn_id_ok(e->data_command->job_id))
            return "data_command: bad job_id";
        return NULL;
    case QUERN__ENVELOPE__BODY_PLUGIN_REQUEST:
        return qn_id_ok(e->plugin_request->worker_id) &&
                       qn_id_ok(e->plugin_request->hash)
                   ? NULL
                   : "plugin_request: bad worker_id or hash";
    case QUERN__ENVELOPE__BODY_LOGS_REQUEST:
        if (!qn_id_ok(e->logs_request->job_id))
            return "logs_request: bad job_id";
        if (e->logs_request->kind != QUERN__TASK_KIND__MAP &&
            e->logs_request->kind != QUERN__TASK_KIND__REDUCE)
            return "logs_request: not a map or reduce task";
        return NULL;
    default: return NULL;
    }
}

int qn_version_print(const char *prog)
{
    printf("%s %s (protocol %d.%d)\n", prog, QN_VERSION, QN_PROTOCOL_VERSION,
           QN_PROTOCOL_MINOR);
    return 0;
}

void qn_task_spec_from_job(Quern__TaskSpec *ts, const Quern__JobSpec *js)
{
    ts->plugin = js->plugin;
    ts->args = js->args;
    ts->n_args = js->n_args;
    ts->nreduce = js->nreduce;
    ts->sort_mb = js->sort_mb;
    ts->compress_level = js->compress_level;
    ts->codec = js->codec;
    ts->input_kind = js->input_kind;
    ts->record_size = js->record_size;
    ts->output_dir = js->output;
    ts->files = js->files;
    ts->n_files = js->n_files;
    ts->keep_cr = js->keep_cr;
    /* A dataset's shards are stored as they are: the codec is a folder's. */
    ts->output_codec = js->output_dataset ? 0 : js->output_codec;
}

void qn_task_spec_pieces(const qn_split *sp, Quern__InputPiece *pieces,
                         Quern__InputPiece **ptrs)
{
    for (size_t i = 0; i < sp->n; i++) {
        const qn_piece *pc = &sp->pieces[i];
        Quern__InputPiece *ip = &pieces[i];
        quern__input_piece__init(ip);
        ip->path = pc->path;
        ip->name = pc->name;
        ip->offset = pc->offset;
        ip->length = pc->length;
        ip->file_size = pc->file_size;
        ip->codec = (uint32_t)pc->codec;
        if (pc->dataset) {
            ip->dataset = pc->dataset;
            ip->shard = pc->shard;
            ip->crc = pc->crc;
        }
        ptrs[i] = ip;
    }
}

int qn_wire_decode(const void *buf, size_t len, Quern__Envelope **out,
                   uint32_t *their_version, char *err, size_t errcap)
{
    *out = NULL;
    if (len > QN_MSG_MAX) {
        snprintf(err, errcap, "message of %zu bytes exceeds the limit", len);
        return -QN_ECORRUPT;
    }
    Quern__Envelope *e = quern__envelope__unpack(NULL, len, buf);
    if (!e) {
        snprintf(err, errcap, "not a Quern message (%zu bytes)", len);
        return -QN_ECORRUPT;
    }
    if (e->version == 0) {
        quern__envelope__free_unpacked(e, NULL);
        snprintf(err, errcap, "not a Quern message: no protocol version");
        return -QN_ECORRUPT;
    }
    if (e->version != QN_PROTOCOL_VERSION) {
        uint32_t v = e->version;
        if (their_version)
            *their_version = v;
        snprintf(err, errcap, "peer speaks protocol version %u, this is %u", v,
                 QN_PROTOCOL_VERSION);
        /* A refusal is understood whatever the version (if well-formed). */
        if (e->body_case == QUERN__ENVELOPE__BODY_REFUSAL &&
            !s_walk(&e->base, 0)) {
            *out = e;
            return -QN_WIRE_EVERSION;
        }
        quern__envelope__free_unpacked(e, NULL);
        return -QN_WIRE_EVERSION;
    }
    const char *why = s_walk(&e->base, 0);
    if (!why)
        why = s_check(e);
    if (why) {
        snprintf(err, errcap, "%s", why);
        quern__envelope__free_unpacked(e, NULL);
        return -QN_ECORRUPT;
    }
    *out = e;
    return 0;
}

void qn_wire_free(Quern__Envelope *env)
{
    if (env)
        quern__envelope__free_unpacked(env, NULL);
}

const char *qn_wire_name(const Quern__Envelope *env)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
        &quern__envelope__descriptor, env->body_case);
    return f ? f->name : "nothing";
}

int qn_wire_pack(Quern__Envelope *env, qn_buf *b)
{
    env->version = QN_PROTOCOL_VERSION;
    size_t n = quern__envelope__get_packed_size(env);
    b->len = 0;
    if (qn_buf_reserve(b, n + 1) < 0)
        return -ENOMEM;
    quern__envelope__pack(env, (uint8_t *)b->data);
    b->len = n;
    return 0;
}

void qn_wire_refusal(Quern__Envelope *env, Quern__Refusal *r,
                     uint32_t their_version)
{
    static char reason[160];
    quern__refusal__init(r);
    r->my_version = QN_PROTOCOL_VERSION;
    r->your_version = their_version;
    snprintf(reason, sizeof reason,
             "refused: you speak Quern protocol version %u, this peer speaks "
             "version %u; run the same Quern release on both sides",
             their_version, QN_PROTOCOL_VERSION);
    r->reason = reason;
    quern__envelope__init(env);
    env->body_case = QUERN__ENVELOPE__BODY_REFUSAL;
    env->refusal = r;
}

/* ---- ZeroMQ -------------------------------------------------------------- */

void *qn_wire_socket(void *ctx, int type)
{
    void *sock = zmq_socket(ctx, type);
    if (!sock)
        return NULL;
    int zero = 0;
    int64_t max = QN_MSG_MAX;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max);
    return sock;
}

int qn_wire_msg(Quern__Envelope *env, zmq_msg_t *msg)
{
    env->version = QN_PROTOCOL_VERSION;
    size_t n = quern__envelope__get_packed_size(env);
    if (zmq_msg_init_size(msg, n) < 0)
        return -errno;
    quern__envelope__pack(env, zmq_msg_data(msg));
    return 0;
}

int qn_wire_send(void *sock, const void *id, size_t idlen, Quern__Envelope *env,
                 const void *data, size_t dlen)
{
    zmq_msg_t msg;
    int rc = qn_wire_msg(env, &msg);
    if (rc < 0)
        return rc;
    if (id && zmq_send(sock, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&msg);
        return -e;
    }
    int flags = ZMQ_DONTWAIT | (data ? ZMQ_SNDMORE : 0);
    if (zmq_msg_send(&msg, sock, flags) < 0) {
        int e = errno;
        zmq_msg_close(&msg);
        return -e;
    }
    if (data && zmq_send(sock, data, dlen, ZMQ_DONTWAIT) < 0)
        return -errno;
    return 0;
}

static int s_more(void *sock)
{
    int more = 0;
    size_t sz = sizeof more;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
    return more;
}

/* Receive one frame into b (or discard it when b is NULL). */
/* Receive one frame into b (NULL: discard it); with f, note the sender's
 * address, as ZeroMQ knows it, in f->peer. */
static int s_recv_frame(void *sock, qn_buf *b, int flags, qn_frames *f)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, sock, flags) < 0) {
        int e = errno;
        zmq_msg_close(&m);
        return -e;
    }
    if (f) {
        const char *a = zmq_msg_gets(&m, "Peer-Address");
        snprintf(f->peer, sizeof f->peer, "%s", a ? a : "");
    }
    int rc = 0;
    if (b) {
        b->len = 0;
        rc = qn_buf_add(b, zmq_msg_data(&m), zmq_msg_size(&m));
    }
    zmq_msg_close(&m);
    return rc;
}

int qn_wire_recv(void *sock, int router, qn_frames *f)
{
    f->idlen = 0;
    f->has_data = 0;
    f->peer[0] = '\0';
    f->env.len = 0;
    f->data.len = 0;
    if (router) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return errno == EAGAIN ? 0 : -1;
        }
        size_t n = zmq_msg_size(&m);
        if (n > sizeof f->id)
            n = sizeof f->id; /* ROUTER ids are at most 255 bytes */
        memcpy(f->id, zmq_msg_data(&m), n);
        f->idlen = n;
        zmq_msg_close(&m);
        if (!s_more(sock))
            return -1;
        if (s_recv_frame(sock, &f->env, 0, f) < 0)
            return -1;
    } else {
        int rc = s_recv_frame(sock, &f->env, ZMQ_DONTWAIT, f);
        if (rc == -EAGAIN)
            return 0;
        if (rc < 0)
            return -1;
    }
    if (s_more(sock)) {
        if (s_recv_frame(sock, &f->data, 0, NULL) < 0)
            return -1;
        f->has_data = 1;
    }
    int extra = 0;
    while (s_more(sock)) {
        s_recv_frame(sock, NULL, 0, NULL);
        extra = 1;
    }
    return extra ? -1 : 1;
}

void qn_frames_release(qn_frames *f)
{
    qn_buf_release(&f->env);
    qn_buf_release(&f->data);
}

/* ---- stream descriptors -------------------------------------------------- */

int qn_wire_append(qn_buf *b, Quern__Envelope *env)
{
    env->version = QN_PROTOCOL_VERSION;
    size_t n = quern__envelope__get_packed_size(env);
    if (n > QN_MSG_MAX || qn_buf_reserve(b, n + 4) < 0)
        return -QN_ETOOBIG;
    unsigned char *p = (unsigned char *)b->data + b->len;
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(n >> (8 * i));
    quern__envelope__pack(env, p + 4);
    b->len += n + 4;
    return 0;
}

int qn_wire_write_fd(int fd, Quern__Envelope *env)
{
    qn_buf b = {0};
    int rc = qn_wire_append(&b, env);
    if (rc == 0)
        rc = qn_write_all(fd, b.data, b.len);
    qn_buf_release(&b);
    return rc;
}

int qn_stream_read(qn_stream *s)
{
    if (s->off > 0) {
        memmove(s->in.data, s->in.data + s->off, s->in.len - s->off);
        s->in.len -= s->off;
        s->off = 0;
    }
    if (qn_buf_reserve(&s->in, 64 * 1024) < 0)
        return -ENOMEM;
    /* One read per call: the descriptor may be blocking (the task's end). */
    for (;;) {
        ssize_t n = read(s->fd, s->in.data + s->in.len, s->in.cap - s->in.len);
        if (n > 0) {
            s->in.len += (size_t)n;
            return (int)n;
        }
        if (n == 0) {
            s->eof = 1;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -errno;
    }
}

int qn_stream_next(qn_stream *s, Quern__Envelope **out, char *err,
                   size_t errcap)
{
    size_t avail = s->in.len - s->off;
    if (avail < 4)
        return 0;
    const unsigned char *p = (unsigned char *)s->in.data + s->off;
    size_t n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 |
               (size_t)p[3] << 24;
    if (n > QN_MSG_MAX) {
        snprintf(err, errcap, "frame of %zu bytes exceeds the limit", n);
        return -QN_ECORRUPT;
    }
    if (avail - 4 < n)
        return 0;
    int rc = qn_wire_decode(p + 4, n, out, NULL, err, errcap);
    s->off += 4 + n;
    if (s->off == s->in.len)
        s->in.len = s->off = 0;
    if (rc < 0) {
        qn_wire_free(*out);
        *out = NULL;
        return rc;
    }
    return 1;
}
