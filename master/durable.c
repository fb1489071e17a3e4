/*
 * durable.c -- see durable.h.
 */
#include "durable.h"

#include "decomp.h"
#include "log.h"
#include "statedb.h"
#include "status.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pack msg into a new buffer (*len bytes); the caller frees it. */
static uint8_t *s_pack(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = qn_malloc(*len ? *len : 1);
    protobuf_c_message_pack(msg, buf);
    return buf;
}

/* Note change c with msg as its record. */
static int s_note(qn_master *m, qn_change c, const ProtobufCMessage *msg)
{
    if (!m->journal.db) {
        /* Nothing is kept: the note is only counted. */
        return qn_journal_note(&m->journal, &c);
    }
    size_t len;
    uint8_t *buf = s_pack(msg, &len);
    c.body = buf;
    c.len = len;
    int rc = qn_journal_note(&m->journal, &c);
    free(buf);
    return rc;
}

/* ---- records ------------------------------------------------------------- */

/* Keep a blob of job jx (its plugin or a file it ships: data, len bytes,
 * with this hash) as its own. */
static int s_plugin(qn_master *m, int jx, const char *hash, const void *data,
                    size_t len)
{
    qn_job *j = &m->jobs.v[jx];
    Quern__PluginRecord pr = QUERN__PLUGIN_RECORD__INIT;
    pr.hash = (char *)hash;
    pr.data.data = (uint8_t *)data;
    pr.data.len = len;
    return s_note(
        m,
        (qn_change){.kind = QN_CHANGE_PLUGIN_KEPT, .job = j->id, .key = hash},
        &pr.base);
}

int qn_durable_job_submitted(qn_master *m, int jx, const void *plugin,
                             size_t len, const ProtobufCBinaryData *files)
{
    qn_job *j = &m->jobs.v[jx];
    Quern__JobRecord r = QUERN__JOB_RECORD__INIT;
    r.job_id = j->id;
    r.spec = j->spec;
    r.submitted_at_ms = (uint64_t)j->submit_wall;
    r.nmaps = j->nmaps;
    r.nreduce = j->nreduce;
    r.plugin_hash = j->plugin_hash;
    r.input_files = j->splits.files;
    r.input_bytes = j->splits.bytes;
    r.output_dataset = j->out.dataset;
    size_t n = m->journal.db ? j->splits.n : 0;
    Quern__SplitRecord *sr = qn_calloc(n + 1, sizeof *sr);
    Quern__SplitRecord **sp = qn_calloc(n + 1, sizeof *sp);
    for (size_t i = 0; i < n; i++) {
        const qn_split *s = &j->splits.splits[i];
        quern__split_record__init(&sr[i]);
        sr[i].pieces = qn_calloc(s->n + 1, sizeof *sr[i].pieces);
        Quern__InputPiece *pc = qn_calloc(s->n + 1, sizeof *pc);
        qn_task_spec_pieces(s, pc, sr[i].pieces);
        sr[i].n_pieces = s->n;
        sp[i] = &sr[i];
    }
    r.splits = sp;
    r.n_splits = n;
    int rc = s_note(
        m, (qn_change){.kind = QN_CHANGE_JOB_SUBMITTED, .job = j->id}, &r.base);
    for (size_t i = 0; i < n; i++) {
        free(sr[i].n_pieces ? sr[i].pieces[0] : NULL);
        free(sr[i].pieces);
    }
    free(sr);
    free(sp);
    if (rc == 0)
        rc = s_plugin(m, jx, j->plugin_hash, plugin, len);
    for (size_t i = 0; rc == 0 && i < j->spec->n_files; i++)
        rc = s_plugin(m, jx, j->spec->files[i]->hash, files[i].data,
                      files[i].len);
    /* On disk before the client is told the job's id, and follows it. */
    if (rc == 0)
        qn_journal_hold(&m->journal, "telling a client its job's id");
    return rc;
}

void qn_durable_task(qn_master *m, int jx, qn_kind kind, unsigned task,
                     const Quern__TaskUpdate *u)
{
    qn_job *j = &m->jobs.v[jx];
    Quern__TaskRecord r = QUERN__TASK_RECORD__INIT;
    r.kind = (Quern__TaskKind)kind;
    r.task = task;
    r.attempts = qn_sched_task(m->sched, jx, kind, task).attempts;
    r.done = (Quern__TaskUpdate *)u;
    s_note(m,
           (qn_change){.kind = u ? QN_CHANGE_TASK_DONE : QN_CHANGE_TASK_STARTED,
                       .job = j->id,
                       .worker = u ? u->worker_id : NULL,
                       .task_kind = kind,
                       .task = task,
                       .attempt = u && u->attempt ? u->attempt->attempt : 0},
           &r.base);
}

/* The blob with this hash, whose record went with ended job jx: kept
 * again as its own by another running job that uses it, if one does. */
static void s_blob_kept(qn_master *m, int jx, const char *hash, int64_t now)
{
    for (size_t i = 0; i < m->jobs.n; i++) {
        const qn_job *o = &m->jobs.v[i];
        if ((int)i == jx || o->state != QUERN__JOB_STATE__JOB_RUNNING ||
            !qn_job_uses_blob(o, hash))
            continue;
        const qn_plugin *p = qn_plugins_get(&m->plugins, hash, now);
        if (p)
            s_plugin(m, (int)i, hash, p->data, p->len);
        return;
    }
}

void qn_durable_job_ended(qn_master *m, int jx, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    Quern__JobRecord r = QUERN__JOB_RECORD__INIT;
    Quern__JobStatus st;
    qn_status_mem mem = {0};
    qn_status_job(m, jx, now, &st, &mem);
    r.job_id = j->id;
    r.spec = j->spec;
    r.submitted_at_ms = (uint64_t)j->submit_wall;
    r.nmaps = j->nmaps;
    r.nreduce = j->nreduce;
    r.plugin_hash = j->plugin_hash;
    r.ended = &st;
    s_note(m, (qn_change){.kind = QN_CHANGE_JOB_ENDED, .job = j->id}, &r.base);
    qn_status_release(&mem);
    if (!m->journal.db)
        return;
    /* Its plugin and files went with it; other running jobs may share
     * them. */
    s_blob_kept(m, jx, j->plugin_hash, now);
    for (size_t i = 0; i < j->spec->n_files; i++)
        s_blob_kept(m, jx, j->spec->files[i]->hash, now);
}

void qn_durable_dataset(qn_master *m, qn_change_kind kind, const char *name)
{
    Quern__DatasetRecord r = QUERN__DATASET_RECORD__INIT;
    r.name = (char *)name;
    const qn_dataset *d = qn_catalog_get(&m->data.cat, name);
    if (kind == QN_CHANGE_DATASET_REMOVED || !d) {
        r.removed = 1;
    } else {
        r.replicas = d->replicas;
        r.writer = d->writer ? d->writer : (char *)"";
        r.sealed = d->sealed;
        r.nshards = d->nshards;
    }
    s_note(m, (qn_change){.kind = kind, .dataset = name}, &r.base);
    /* On disk before workers are told to delete its shards. */
    if (kind == QN_CHANGE_DATASET_REMOVED)
        qn_journal_hold(&m->journal, "deleting a dataset's shards");
}

void qn_durable_worker(qn_master *m, int w)
{
    const qn_mworker *wk = &m->workers.v[w];
    Quern__WorkerRecord r = QUERN__WORKER_RECORD__INIT;
    r.worker_id = (char *)wk->id;
    r.host = (char *)wk->host;
    r.pid = wk->pid;
    r.slots = wk->slots;
    r.shuffle_endpoint = wk->endpoint;
    r.curve_public = (char *)wk->curve_public;
    r.has_data = wk->has_data;
    r.session = wk->session;
    r.minor = wk->minor;
    r.incarnation = wk->incarnation;
    r.draining = wk->draining;
    r.drain_by_client = wk->drain_client;
    if (wk->draining && wk->drain_deadline)
        r.drain_deadline = (uint64_t)qn_master_wall(m, wk->drain_deadline);
    s_note(m, (qn_change){.kind = QN_CHANGE_WORKER_KNOWN, .worker = wk->id},
           &r.base);
}

/* ---- loading ------------------------------------------------------------- */

/*
 * Records are unpacked into an arena, emptied before each record: a big
 * state is hundreds of thousands of small messages, and what is kept of
 * them is copied out. A request too big for the block gets a block of
 * its own; at the reset, the block grows to hold what the record took.
 */
typedef struct s_chunk {
    struct s_chunk *next;
    size_t cap, used;
    max_align_t data[];
} s_chunk;

typedef struct {
    s_chunk *head;
    size_t total; /* bytes handed out since the last reset */
    ProtobufCAllocator pa;
} s_arena;

static void *s_arena_alloc(void *ctx, size_t size)
{
    s_arena *a = ctx;
    size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    a->total += size;
    s_chunk *c = a->head;
    if (!c || c->used + size > c->cap) {
        size_t cap = size > 65536 ? size : 65536;
        c = qn_malloc(sizeof *c + cap);
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

static void s_arena_free(void *ctx, void *p)
{
    (void)ctx, (void)p; /* all of it goes at the next reset */
}

/* Forget what was handed out; keep one block big enough for it all. */
static void s_arena_reset(s_arena *a)
{
    size_t want = a->total;
    while (a->head && (a->head->next || a->head->cap < want)) {
        s_chunk *c = a->head;
        a->head = c->next;
        free(c);
    }
    if (!a->head && want) {
        a->head = qn_malloc(sizeof *a->head + want);
        a->head->cap = want;
        a->head->next = NULL;
    }
    if (a->head)
        a->head->used = 0;
    a->total = 0;
}

/* What a running job loads besides its record: its tasks. */
typedef struct {
    qn_task_restore *tr[2];
} s_loading;

typedef struct {
    qn_master *m;
    int64_t now;
    s_arena arena;   /* records are unpacked here */
    s_loading *jobs; /* [m->jobs.n], as jobs load */
    size_t cap;
    char *err;
    size_t errlen;
    unsigned running, history, tasks, workers, datasets, plugins;
    int last_job; /* the job whose task was loaded last, or -1 */
} s_load;

/* A record that cannot be read: the state is not what we wrote. */
static int s_bad(s_load *l, const char *what, const char *key)
{
    snprintf(l->err, l->errlen,
             "%s: the %s record '%s' cannot be read (the file is damaged, or "
             "not written by Quern); to start empty, move the state dir "
             "aside",
             qn_statedb_path(l->m->journal.db), what, key);
    return -1;
}

/* Worker w was draining, its running attempts due elsewhere at wall-clock
 * deadline_wall (0: past): drain.h goes on with it. */
static void s_draining(qn_master *m, int w, uint64_t deadline_wall, int64_t now)
{
    qn_mworker *wk = &m->workers.v[w];
    int64_t wall = qn_master_wall(m, now);
    wk->draining = 1;
    wk->drain_deadline = deadline_wall && (int64_t)deadline_wall > wall
                             ? now + ((int64_t)deadline_wall - wall)
                             : now;
    qn_deadline_add(&m->due, wk->drain_deadline, QN_DUE_DRAIN, (uint64_t)w);
    m->drain.any = 1;
}

static int s_load_worker(void *arg, const char *key, const char *job, int ended,
                         const void *blob, size_t len)
{
    (void)job, (void)ended;
    s_load *l = arg;
    Quern__WorkerRecord *r =
        quern__worker_record__unpack(NULL, len, (const uint8_t *)blob);
    if (!r || !r->worker_id[0])
        return s_bad(l, "worker", key);
    qn_mworker wk = {0};
    snprintf(wk.id, sizeof wk.id, "%s", r->worker_id);
    snprintf(wk.host, sizeof wk.host, "%s", r->host);
    wk.pid = r->pid;
    wk.slots = r->slots;
    wk.endpoint = r->shuffle_endpoint;
    wk.seen = l->now;
    wk.has_data = r->has_data;
    wk.session = r->session;
    wk.minor = r->minor;
    wk.incarnation = r->incarnation;
    snprintf(wk.curve_public, sizeof wk.curve_public, "%s", r->curve_public);
    /* It has until --dead-ms to come back, as if it had just been heard:
     * its map outputs count until then. It gets no work until it is
     * heard from. */
    wk.unheard = 1;
    wk.slots = 0;
    int w = qn_workers_join(&l->m->workers, l->now, &wk);
    l->m->workers.v[w].slots = r->slots;
    if (r->draining) {
        s_draining(l->m, w, r->drain_deadline, l->now);
        l->m->workers.v[w].drain_client = r->drain_by_client;
    }
    quern__worker_record__free_unpacked(r, NULL);
    l->workers++;
    return 0;
}

/* Every plugin loading is a running job's. */
static int s_busy(void *ctx, const char *hash)
{
    (void)ctx, (void)hash;
    return 1;
}

static int s_load_plugin(void *arg, const char *key, const char *job, int ended,
                         const void *blob, size_t len)
{
    (void)job, (void)ended;
    s_load *l = arg;
    Quern__PluginRecord *r =
        quern__plugin_record__unpack(NULL, len, (const uint8_t *)blob);
    if (!r)
        return s_bad(l, "plugin", key);
    char hex[QN_SHA256_HEX];
    qn_plugins_keep(&l->m->plugins, r->data.data, r->data.len, l->now, hex,
                    s_busy, NULL);
    int same = strcmp(hex, key) == 0;
    quern__plugin_record__free_unpacked(r, NULL);
    if (!same)
        return s_bad(l, "plugin", key);
    l->plugins++;
    return 0;
}

/* A map split from its record (strings copied). */
static void s_split_from(qn_split *sp, const Quern__SplitRecord *r)
{
    /* Exactly as many as it has: a big job has many splits. */
    sp->pieces = qn_calloc(r->n_pieces + 1, sizeof *sp->pieces);
    sp->cap = r->n_pieces + 1;
    for (size_t i = 0; i < r->n_pieces; i++) {
        const Quern__InputPiece *ip = r->pieces[i];
        qn_piece *pc = &sp->pieces[sp->n++];
        pc->path = qn_strdup(ip->path);
        pc->name = qn_strdup(ip->name);
        pc->offset = ip->offset;
        pc->length = ip->length;
        pc->file_size = ip->file_size;
        pc->codec = ip->codec < QN_DECOMP_COUNT ? (int)ip->codec : 0;
        pc->dataset = ip->dataset[0] ? qn_strdup(ip->dataset) : NULL;
        pc->shard = ip->shard;
        pc->crc = ip->crc;
        sp->bytes += ip->length;
    }
}

/* A finished job, as history: its summary, nothing to run. */
static void s_history(qn_job *j, const Quern__JobRecord *r, int64_t now)
{
    const Quern__JobStatus *st = r->ended;
    j->state = st->state;
    j->error = st->error[0] ? qn_strdup(st->error) : NULL;
    j->start = now - (int64_t)st->elapsed_ms;
    j->end = now;
    j->task_rss_peak = st->task_rss_peak;
    qn_job_trim(j);
    /* Per-task records for `status --tasks`: none kept, all empty. */
    for (int k = 0; k < 2; k++) {
        free(j->trec[k]);
        j->trec[k] =
            qn_calloc((k ? r->nreduce : r->nmaps) + 1, sizeof(qn_trec));
    }
    j->nmaps = r->nmaps;
    j->nreduce = r->nreduce;
    for (size_t i = 0; i < st->n_failures; i++) {
        const Quern__AttemptFailure *f = st->failures[i];
        qn_job_add_failure(j, (qn_kind)(f->kind == QUERN__TASK_KIND__REDUCE),
                           f->task, f->attempt, f->worker_id, f->reason,
                           f->stderr_tail, f->record_offset, f->shard);
    }
    for (size_t i = 0; i < st->n_skipped; i++) {
        QN_GROW(j->skipped, j->cap_skipped, j->nskipped + 1);
        j->skipped[j->nskipped++] =
            (qn_skipped){st->skipped[i]->map, qn_strdup(st->skipped[i]->shard),
                         st->skipped[i]->offset};
    }
    /* As they were (adding failures above counted them again). */
    for (size_t i = 0; i < st->n_counters; i++)
        qn_job_count(j, st->counters[i]->name,
                     st->counters[i]->value -
                         qn_job_counter(j, st->counters[i]->name));
}

static int s_load_job(void *arg, const char *key, const char *job, int ended,
                      const void *blob, size_t len)
{
    (void)job;
    s_load *l = arg;
    qn_master *m = l->m;
    s_arena_reset(&l->arena);
    Quern__JobRecord *r =
        quern__job_record__unpack(&l->arena.pa, len, (const uint8_t *)blob);
    if (!r || !r->spec || strcmp(r->job_id, key) != 0 || (ended && !r->ended) ||
        (!ended && r->n_splits != r->nmaps) || r->nmaps == 0 ||
        r->nreduce == 0 || strlen(r->job_id) >= sizeof m->jobs.v[0].id)
        return s_bad(l, "job", key);
    qn_splits splits = {0};
    if (!ended) {
        splits.splits = qn_calloc(r->n_splits + 1, sizeof *splits.splits);
        splits.cap = r->n_splits + 1;
    }
    for (size_t i = 0; !ended && i < r->n_splits; i++)
        s_split_from(qn_splits_add(&splits), r->splits[i]);
    splits.files = r->input_files;
    splits.bytes = r->input_bytes;
    int jx = (int)m->jobs.n;
    qn_job *j = qn_jobs_add(&m->jobs);
    /* The job keeps its spec: a copy of its own, out of the arena. */
    size_t speclen = quern__job_spec__get_packed_size(r->spec);
    uint8_t *buf = qn_malloc(speclen + 1);
    quern__job_spec__pack(r->spec, buf);
    Quern__JobSpec *spec = quern__job_spec__unpack(NULL, speclen, buf);
    free(buf);
    int64_t wall = qn_master_wall(m, l->now);
    int out_ds = r->output_dataset;
    qn_job_init(j, r->job_id, &spec, &splits, out_ds, l->now,
                (int64_t)r->submitted_at_ms);
    snprintf(j->plugin_hash, sizeof j->plugin_hash, "%s", r->plugin_hash);
    QN_GROW(l->jobs, l->cap, (size_t)jx + 1);
    memset(&l->jobs[jx], 0, sizeof l->jobs[jx]);
    if (ended) {
        s_history(j, r, l->now);
        l->history++;
    } else {
        /* Its clock goes on from its submission. */
        int64_t age = wall - (int64_t)r->submitted_at_ms;
        j->start = l->now - (age > 0 ? age : 0);
        for (int k = 0; k < 2; k++) {
            unsigned n = k ? j->nreduce : j->nmaps;
            l->jobs[jx].tr[k] = qn_calloc(n + 1, sizeof(qn_task_restore));
        }
        l->running++;
    }
    return 0;
}

static int s_load_task(void *arg, const char *key, const char *job, int ended,
                       const void *blob, size_t len)
{
    (void)ended;
    s_load *l = arg;
    /* A job's tasks come together: look its index up once. */
    int jx = l->last_job;
    if (!job || jx < 0 || strcmp(l->m->jobs.v[jx].id, job) != 0)
        jx = l->last_job = job ? qn_jobs_find(&l->m->jobs, job) : -1;
    if (jx < 0 || !l->jobs[jx].tr[0])
        return 0; /* a job that ended meanwhile */
    s_arena_reset(&l->arena);
    Quern__TaskRecord *r =
        quern__task_record__unpack(&l->arena.pa, len, (const uint8_t *)blob);
    const qn_job *j = &l->m->jobs.v[jx];
    int k = r && r->kind == QUERN__TASK_KIND__REDUCE;
    if (!r || r->kind > QUERN__TASK_KIND__REDUCE ||
        r->task >= (k ? j->nreduce : j->nmaps) ||
        (r->done && (!r->done->attempt || r->done->attempt->attempt == 0 ||
                     r->done->attempt->attempt > r->attempts ||
                     r->done->attempt->task != r->task ||
                     r->done->attempt->kind != r->kind ||
                     (!k && r->done->n_partitions != j->nreduce))))
        return s_bad(l, "task", key);
    s_loading *ld = &l->jobs[jx];
    qn_task_restore *tr = &ld->tr[k][r->task];
    tr->attempts = r->attempts;
    tr->done_worker = -1;
    tr->done_attempt = 0;
    if (r->done) {
        int w = qn_workers_find(&l->m->workers, r->done->worker_id);
        qn_job *jm = &l->m->jobs.v[jx];
        /* A map's output is only where its worker is (if it comes back);
         * a reduce's is in place already. */
        if (!k && w >= 0) {
            qn_job_map_done_update(jm, w, r->done);
        } else if (k) {
            for (size_t i = 0; i < r->done->n_counters; i++)
                qn_job_count(jm, r->done->counters[i]->name,
                             r->done->counters[i]->value);
        }
        if (w >= 0 || k) {
            tr->done_attempt = r->done->attempt->attempt;
            tr->done_worker = w;
        }
    }
    l->tasks++;
    return 0;
}

/* Running job jx, its record and tasks loaded: hand it to the scheduler,
 * and put its done tasks' outputs back. */
static int s_resume(s_load *l, int jx)
{
    qn_master *m = l->m;
    qn_job *j = &m->jobs.v[jx];
    s_loading *ld = &l->jobs[jx];
    int running = ld->tr[0] != NULL;
    int h = qn_sched_job_restore(
        m->sched, l->now, j->nmaps, j->nreduce,
        j->spec->max_attempts ? j->spec->max_attempts : 1,
        running                                       ? QN_JOB_RUNNING
        : j->state == QUERN__JOB_STATE__JOB_SUCCEEDED ? QN_JOB_DONE
        : j->state == QUERN__JOB_STATE__JOB_CANCELLED ? QN_JOB_CANCELLED
                                                      : QN_JOB_FAILED,
        ld->tr[0], ld->tr[1]);
    if (h != jx)
        return s_bad(l, "job", j->id);
    if (!running)
        return 0;
    qn_sched_job_speculate(m->sched, jx, j->spec->speculation);
    return 0;
}

static int s_load_dataset(void *arg, const char *key, const char *job,
                          int ended, const void *blob, size_t len)
{
    (void)job, (void)ended;
    s_load *l = arg;
    qn_master *m = l->m;
    Quern__DatasetRecord *r =
        quern__dataset_record__unpack(NULL, len, (const uint8_t *)blob);
    if (!r || strcmp(r->name, key) != 0) {
        if (r)
            quern__dataset_record__free_unpacked(r, NULL);
        return s_bad(l, "dataset", key);
    }
    if (r->removed) {
        QN_GROW(m->data.dropped, m->data.cap_dropped, m->data.ndropped + 1);
        m->data.dropped[m->data.ndropped++] = qn_strdup(r->name);
    } else {
        /* A put that was under way is not: its client is gone. */
        int w = r->writer[0] && qn_jobs_find(&m->jobs, r->writer) >= 0;
        qn_dataset *d = qn_catalog_create(&m->data.cat, r->name,
                                          w ? r->writer : NULL, r->replicas);
        if (d) {
            d->sealed = r->sealed;
            d->nshards = r->nshards;
        }
        l->datasets++;
    }
    quern__dataset_record__free_unpacked(r, NULL);
    return 0;
}

int qn_durable_load(qn_master *m, int64_t now, char *err, size_t errlen)
{
    if (!m->cfg.state_dir)
        return 0;
    if (qn_journal_open(&m->journal, m->cfg.state_dir, m->cfg.keep_jobs, err,
                        errlen) < 0)
        return -1;
    int64_t t0 = qn_now_ms();
    /* Workers first tell what they run; then the scheduler starts work. */
    qn_sched_hold(m->sched, now + m->cfg.recovery_ms);
    s_load l = {
        .m = m, .now = now, .err = err, .errlen = errlen, .last_job = -1};
    l.arena.pa = (ProtobufCAllocator){.alloc = s_arena_alloc,
                                      .free = s_arena_free,
                                      .allocator_data = &l.arena};
    static const struct {
        qn_rec_kind kind;
        qn_statedb_fn fn;
    } ORDER[] = {{QN_REC_WORKER, s_load_worker},
                 {QN_REC_PLUGIN, s_load_plugin},
                 {QN_REC_JOB, s_load_job},
                 {QN_REC_TASK, s_load_task},
                 {QN_REC_DATASET, s_load_dataset}};
    int rc = 0;
    char dberr[512];
    for (size_t i = 0; rc == 0 && i < QN_ARRAY_LEN(ORDER); i++) {
        rc = qn_statedb_each(m->journal.db, ORDER[i].kind, ORDER[i].fn, &l,
                             dberr, sizeof dberr);
        if (rc < 0 && !err[0])
            snprintf(err, errlen, "%s: %s", qn_statedb_path(m->journal.db),
                     dberr);
    }
    for (size_t jx = 0; rc == 0 && jx < m->jobs.n; jx++)
        rc = s_resume(&l, (int)jx);
    for (size_t jx = 0; jx < m->jobs.n && jx < l.cap; jx++)
        for (int k = 0; k < 2; k++)
            free(l.jobs[jx].tr[k]);
    free(l.jobs);
    s_arena_reset(&l.arena);
    free(l.arena.head);
    if (rc != 0)
        return -1;
    if (!l.running)
        qn_sched_hold(m->sched, 0); /* nothing to wait for */
    char wait[80] = "";
    if (l.running)
        snprintf(wait, sizeof wait, "; workers have %d ms to say what they run",
                 m->cfg.recovery_ms);
    qn_info("master: state in %s, epoch %llu: %u running jobs (%u tasks "
            "done or started), %u finished, %u workers, %u datasets, loaded "
            "in %lld ms%s",
            qn_statedb_path(m->journal.db),
            (unsigned long long)qn_journal_epoch(&m->journal), l.running,
            l.tasks, l.history, l.workers, l.datasets,
            (long long)(qn_now_ms() - t0), wait);
    return 0;
}
