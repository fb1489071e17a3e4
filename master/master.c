/*
 * master.c -- see master.h.
 *
 * One thread, one zmq_poll over the ROUTER socket that workers and clients
 * connect to and a signalfd. Every message becomes a scheduler event; after
 * each, the scheduler's actions are turned into messages. The poll timeout
 * is the nearest deadline: the scheduler's (heartbeats, task timeouts) or a
 * watching client's next status push.
 */
#include "master.h"

#include "catalog.h"
#include "curve.h"
#include "droplog.h"
#include "http.h"
#include "ifile.h"
#include "jobspec.h"
#include "log.h"
#include "proc.h"
#include "ratelimit.h"
#include "sched.h"
#include "sha256.h"
#include "split.h"
#include "statusjson.h"
#include "util.h"
#include "wire.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_MAPS 100000     /* map tasks per job (a reduce lists them all) */
#define MAX_WATCHERS 64     /* clients following one job */
#define PUSH_MIN_MS 250     /* status pushes at most this often */
#define PUSH_MAX_MS 1000    /* ... and at least this often */
#define MAX_FAILURES 64     /* failure reports kept per job */
#define MAX_COUNTERS 512    /* distinct counter names per job */
#define MAX_SKIPPED 1000    /* skipped records listed per job */
#define FETCH_REPORTS 3     /* fetch failures before a map runs again */
#define SKIP_AFTER 2        /* crashes on a record before it is skipped */
#define SPEC_MIN_MS 1000    /* no backup for an attempt younger than this */
#define MAX_REPLICAS 16     /* copies of a dataset shard at most */
#define COPY_TRIES 3        /* failed copies of an output shard accepted */
#define PUT_COMMIT_MS 30000 /* a put's shards must all be announced by then */
#define PLUGINS_KEPT 16     /* plugins kept when no running job uses them */
#define EVENTS_KEPT 1000    /* recent events kept for the status page */
#define LOGS_MAX 1048576    /* bytes of an attempt's stderr sent at most */
#define LOGS_WAIT_MS                                                           \
    4000                 /* a worker must answer a logs request by then        \
                            (before the client gives up: 5 s) */
#define MAX_LOG_WAITS 64 /* logs requests in flight */

/* What one client or peer may take of the master. */
#define MAX_RUNNING_JOBS 256  /* jobs running at once */
#define MAX_LIVE_WORKERS 4096 /* workers alive at once */
#define CLIENT_RATE 2000      /* client requests a second from one address */
#define CLIENT_BURST 4000     /* ... and at once, after a quiet spell */

/* The page, compiled in from master/status.html (Makefile). */
extern const unsigned char qn_status_page[];
extern const size_t qn_status_page_len;

typedef struct {
    char id[72];
    char host[128];
    unsigned pid, slots;
    char *endpoint;  /* shuffle server */
    char route[256]; /* ZeroMQ routing id of its connection */
    size_t routelen;
    uint64_t rss_peak;
    uint64_t shuffle_dropped; /* its shuffle server's drops, as it said */
    int64_t seen;
    unsigned failures;
    uint64_t hb_seq; /* the newest heartbeat's sequence number */
    int64_t hb_last; /* when the newest heartbeat came */
    char curve_public[QN_CURVE_Z85];
    int has_data;     /* it keeps datasets */
    unsigned placed;  /* shards of puts placed on it (for spreading) */
    uint64_t session; /* the secret its welcome carried: its messages
                       * carry it back, so no other peer speaks for it */
} s_worker;

/* A plugin sent by a client, kept by content hash for workers to fetch. */
typedef struct {
    char hash[QN_SHA256_HEX];
    uint8_t *data;
    size_t len;
    int64_t used;
} s_plugin;

/* A put waiting for its shards to be announced before it is sealed. */
typedef struct {
    char dataset[72];
    char route[256];
    size_t routelen;
    uint32_t nshards;
    int64_t deadline;
} s_put_wait;

/* A record map() died in, and how many attempts it took down. */
typedef struct {
    uint32_t piece;
    uint64_t offset;
    unsigned crashes;
} s_crash;

typedef struct {
    unsigned attempt;
    int worker;
    Quern__PartitionInfo *parts; /* [nreduce]; bytes/raw/records */
    long long *cv; /* what the attempt added to each job counter */
    size_t ncv;
    unsigned reports; /* fetch failures reported against this output */
    s_crash *crashes;
    size_t ncrashes;
} s_mapout;

typedef struct {
    char *name;
    long long value;
} s_counter;

/* One attempt of a task, for the status page and quern logs. */
typedef struct {
    unsigned attempt;
    int worker;
    int local;          /* maps: 1, 0 or QN_LOC_ANY */
    int blamed;         /* reduces: it reported a map output corrupt */
    int64_t start, end; /* monotonic ms; end 0 while it runs */
    int64_t start_wall; /* unix ms */
} s_arec;

typedef struct {
    s_arec *a;
    unsigned n;
} s_trec;

/* Something an operator wants to see in the log of recent events. */
typedef struct {
    uint64_t seq;
    int64_t wall; /* unix ms */
    int level;    /* enum qn_log_level */
    const char *kind;
    char job[32];
    char task[24];
    unsigned attempt;
    char worker[72];
    char *msg;
} s_evrec;

/* A client waiting for an attempt's stderr from a worker. */
typedef struct {
    uint64_t id;
    char route[256];
    size_t routelen;
    int worker;
    int64_t deadline;
} s_logs_wait;

typedef struct {
    char route[256];
    size_t routelen;
} s_route;

typedef struct {
    char id[32];
    Quern__JobSpec *spec; /* private copy */
    qn_splits splits;
    unsigned nmaps, nreduce;
    s_mapout *outs;      /* [nmaps] */
    double *progress[2]; /* running attempts' progress, per task */
    s_counter *counters;
    size_t ncounters;
    Quern__AttemptFailure *failures;
    size_t nfailures;
    Quern__SkippedRecord *skipped;
    size_t nskipped;
    int state; /* Quern__JobState */
    char *error;
    int64_t start, end; /* monotonic ms */
    uint64_t task_rss_peak;
    s_route *watchers;
    size_t nwatchers;
    int dirty;
    int64_t last_push;
    char plugin_hash[QN_SHA256_HEX];
    int out_dataset;       /* output is a dataset (spec->output its name) */
    unsigned out_replicas; /* copies of each output shard wanted */
    int committing;        /* reduces done; copying output shards */
    int *part_copy;        /* [nreduce] worker copying it now, or -1 */
    unsigned *part_copy_fails;
    unsigned copy_seq;
    s_trec *trec[2];     /* [nmaps], [nreduce]: every attempt started */
    int64_t submit_wall; /* unix ms */
} s_job;

struct qn_master {
    qn_master_config cfg;
    void *ctx, *sock;
    char endpoint[256];
    int sigfd;
    int stop;
    qn_sched *sched;
    s_worker *workers; /* indexed by scheduler handle */
    int nworkers;
    s_job *jobs; /* indexed by scheduler handle */
    int njobs;
    char tag[8]; /* this master run's part of job ids */
    qn_frames in;
    qn_droplog drops;  /* messages dropped, by reason (DROP_*) */
    qn_ratelimit rate; /* client requests, per address */
    qn_catalog cat;
    char **dropped_ds; /* datasets removed: copies that turn up are dropped */
    size_t ndropped_ds;
    s_plugin *plugins;
    size_t nplugins;
    s_put_wait *puts;
    size_t nputs;
    qn_curve curve;
    qn_zap *zap;
    qn_http *http;
    int64_t start, start_wall;
    s_evrec *events; /* a ring of EVENTS_KEPT */
    size_t nevents, event_head;
    uint64_t event_seq;
    uint64_t heartbeats_missed;
    uint64_t attempts_failed[2], attempts_lost[2];
    s_logs_wait *logs;
    size_t nlogs;
    uint64_t logs_seq;
};

/* ---- helpers ------------------------------------------------------------- */

static void s_send(qn_master *m, const char *route, size_t routelen,
                   Quern__Envelope *env)
{
    int rc = qn_wire_send(m->sock, route, routelen, env, NULL, 0);
    if (rc < 0 && rc != -EHOSTUNREACH)
        qn_warn("master: cannot send %s: %s", qn_wire_name(env),
                zmq_strerror(-rc));
}

/* Why a message was dropped: the reason label of /metrics. */
enum { DROP_MALFORMED, DROP_VERSION, DROP_INVALID, DROP_RATE };
static const char *const DROP_REASONS[] = {"malformed", "version", "invalid",
                                           "rate"};

/* Count a message dropped from the peer m->in came from, and log it (once
 * per peer a minute). It changes nothing else. */
static void s_drop(qn_master *m, unsigned reason, const char *why)
{
    qn_droplog_add(&m->drops, reason, m->in.peer, "a message", why);
}

static int s_worker_by_id(qn_master *m, const char *id)
{
    /* Newest first: a worker that joined again has a new handle. */
    for (int i = m->nworkers - 1; i >= 0; i--)
        if (strcmp(m->workers[i].id, id) == 0)
            return i;
    return -1;
}

static int s_job_by_id(qn_master *m, const char *id)
{
    for (int i = 0; i < m->njobs; i++)
        if (strcmp(m->jobs[i].id, id) == 0)
            return i;
    return -1;
}

static const char *s_kind(qn_kind k)
{
    return k == QN_MAP ? "map" : "reduce";
}

/* Add v to a job counter; returns the counter's index. */
static size_t s_count(s_job *j, const char *name, long long v)
{
    for (size_t i = 0; i < j->ncounters; i++) {
        if (strcmp(j->counters[i].name, name) == 0) {
            j->counters[i].value = qn_sat_add(j->counters[i].value, v);
            return i;
        }
    }
    if (j->ncounters >= MAX_COUNTERS)
        return SIZE_MAX; /* a plugin inventing names without end */
    j->counters =
        qn_realloc(j->counters, (j->ncounters + 1) * sizeof *j->counters);
    j->counters[j->ncounters++] = (s_counter){qn_strdup(name), v};
    return j->ncounters - 1;
}

/* The name of input piece `piece` of map task `map`, or "". */
static const char *s_shard(const s_job *j, unsigned map, uint32_t piece)
{
    if (!j->splits.splits || map >= j->splits.n ||
        piece >= j->splits.splits[map].n)
        return "";
    return j->splits.splits[map].pieces[piece].name;
}

static void s_add_failure(s_job *j, qn_kind kind, unsigned task,
                          unsigned attempt, const char *worker,
                          const char *reason, const char *tail, uint64_t offset,
                          const char *shard)
{
    s_count(j, "failed_attempts", 1);
    if (j->nfailures == MAX_FAILURES) {
        /* Keep the newest. */
        Quern__AttemptFailure *f = &j->failures[0];
        free(f->worker_id);
        free(f->reason);
        free(f->stderr_tail);
        free(f->shard);
        memmove(j->failures, j->failures + 1,
                (MAX_FAILURES - 1) * sizeof *j->failures);
        j->nfailures--;
    }
    j->failures =
        qn_realloc(j->failures, (j->nfailures + 1) * sizeof *j->failures);
    Quern__AttemptFailure *f = &j->failures[j->nfailures++];
    quern__attempt_failure__init(f);
    f->kind = (Quern__TaskKind)kind;
    f->task = task;
    f->attempt = attempt;
    f->worker_id = qn_strdup(worker);
    f->reason = qn_strdup(reason);
    f->stderr_tail = qn_strdup(tail ? tail : "");
    f->record_offset = offset;
    f->shard = qn_strdup(shard ? shard : "");
}

/*
 * Note an event: log it (one line, with the ids) and keep it for the
 * status page. jx, w: -1 if none; kind -1 for no task.
 */
static void s_event(qn_master *m, int level, const char *what, int jx, int kind,
                    unsigned task, unsigned attempt, int w, const char *fmt,
                    ...) __attribute__((format(printf, 9, 10)));
static void s_event(qn_master *m, int level, const char *what, int jx, int kind,
                    unsigned task, unsigned attempt, int w, const char *fmt,
                    ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    qn_utf8_sanitize(msg); /* a cut may split a character */
    qn_log((enum qn_log_level)level, "master: %s", msg);
    if (!m->events)
        m->events = qn_calloc(EVENTS_KEPT, sizeof *m->events);
    s_evrec *e;
    if (m->nevents < EVENTS_KEPT) {
        e = &m->events[(m->event_head + m->nevents++) % EVENTS_KEPT];
    } else {
        e = &m->events[m->event_head];
        m->event_head = (m->event_head + 1) % EVENTS_KEPT;
        free(e->msg);
    }
    memset(e, 0, sizeof *e);
    e->seq = ++m->event_seq;
    e->wall = qn_wall_ms();
    e->level = level;
    e->kind = what;
    if (jx >= 0)
        snprintf(e->job, sizeof e->job, "%s", m->jobs[jx].id);
    if (kind >= 0)
        qn_task_name(e->task, sizeof e->task,
                     kind == QN_REDUCE ? QUERN__TASK_KIND__REDUCE
                                       : QUERN__TASK_KIND__MAP,
                     task);
    e->attempt = attempt;
    if (w >= 0)
        snprintf(e->worker, sizeof e->worker, "%s", m->workers[w].id);
    e->msg = qn_strdup(msg);
}

/* The record of attempt of a task, or NULL. */
static s_arec *s_arec_find(s_job *j, qn_kind kind, unsigned task,
                           unsigned attempt)
{
    if (!j->trec[kind])
        return NULL;
    s_trec *t = &j->trec[kind][task];
    for (unsigned i = t->n; i-- > 0;)
        if (t->a[i].attempt == attempt)
            return &t->a[i];
    return NULL;
}

/* An attempt ended (any way): its duration stops growing. */
static void s_arec_end(s_job *j, qn_kind kind, unsigned task, unsigned attempt,
                       int64_t now)
{
    s_arec *r = s_arec_find(j, kind, task, attempt);
    if (r && !r->end)
        r->end = now;
}

/* ---- set-up -------------------------------------------------------------- */

static int s_local(void *ctx, int job, unsigned map, int worker);

static void s_on_http(void *ctx, const qn_http_req *req, qn_http_reply *out);

qn_master *qn_master_new(const qn_master_config *cfg, char *err, size_t errcap)
{
    qn_master *m = qn_calloc(1, sizeof *m);
    m->cfg = *cfg;
    qn_droplog_init(&m->drops, "master", "dropped");
    qn_ratelimit_init(&m->rate, CLIENT_RATE, CLIENT_BURST);
    m->start = qn_now_ms();
    m->start_wall = qn_wall_ms();
    m->sigfd = qn_signals_open();
    if (m->sigfd < 0) {
        snprintf(err, errcap, "signalfd: %s", strerror(-m->sigfd));
        goto fail;
    }
    m->ctx = zmq_ctx_new();
    m->sock = qn_wire_socket(m->ctx, ZMQ_ROUTER);
    if (cfg->curve_secret) {
        if (qn_curve_load(&m->curve, cfg->curve_secret, cfg->curve_trusted,
                          NULL, err, errcap) < 0)
            goto fail;
        m->zap = qn_zap_new(m->ctx, &m->curve, "master", err, errcap);
        if (!m->zap)
            goto fail;
        if (qn_curve_server(m->sock, &m->curve) < 0) {
            snprintf(err, errcap, "cannot make %s a CURVE server", cfg->listen);
            goto fail;
        }
    }
    if (zmq_bind(m->sock, cfg->listen) < 0) {
        snprintf(err, errcap, "cannot listen on %s: %s", cfg->listen,
                 zmq_strerror(errno));
        goto fail;
    }
    size_t n = sizeof m->endpoint;
    zmq_getsockopt(m->sock, ZMQ_LAST_ENDPOINT, m->endpoint, &n);
    if (cfg->http && strcmp(cfg->http, "off") != 0) {
        m->http = qn_http_start(cfg->http, s_on_http, m, err, errcap);
        if (!m->http)
            goto fail;
    }
    /* Job ids must not repeat across restarts of the master: a worker may
     * still hold files or attempts of an earlier run's "job-1". */
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint64_t seed = qn_random_u64();
    for (int i = 0; i < 4; i++, seed /= 36)
        m->tag[i] = digits[seed % 36];
    qn_sched_config sc = {.dead_ms = cfg->dead_ms,
                          .task_timeout_ms = cfg->task_timeout_ms,
                          .spec_min_ms = SPEC_MIN_MS,
                          .locality_wait_ms = cfg->locality_wait_ms,
                          .shard_wait_ms = cfg->shard_wait_ms};
    m->sched = qn_sched_new(&sc);
    qn_sched_set_locality(m->sched, s_local, m);
    return m;
fail:
    qn_master_destroy(&m);
    return NULL;
}

static void s_outs_free(s_job *j)
{
    for (unsigned i = 0; i < j->nmaps && j->outs; i++) {
        free(j->outs[i].parts);
        free(j->outs[i].cv);
        free(j->outs[i].crashes);
    }
    free(j->outs);
    j->outs = NULL;
}

static void s_job_free(s_job *j)
{
    if (j->spec)
        quern__job_spec__free_unpacked(j->spec, NULL);
    qn_splits_release(&j->splits);
    s_outs_free(j);
    free(j->progress[0]);
    free(j->progress[1]);
    for (size_t i = 0; i < j->ncounters; i++)
        free(j->counters[i].name);
    free(j->counters);
    for (size_t i = 0; i < j->nfailures; i++) {
        free(j->failures[i].worker_id);
        free(j->failures[i].reason);
        free(j->failures[i].stderr_tail);
        free(j->failures[i].shard);
    }
    free(j->failures);
    for (size_t i = 0; i < j->nskipped; i++)
        free(j->skipped[i].shard);
    free(j->skipped);
    free(j->error);
    free(j->watchers);
    free(j->part_copy);
    free(j->part_copy_fails);
    for (int k = 0; k < 2; k++) {
        unsigned n = k ? j->nreduce : j->nmaps;
        for (unsigned i = 0; j->trec[k] && i < n; i++)
            free(j->trec[k][i].a);
        free(j->trec[k]);
    }
}

void qn_master_destroy(qn_master **self_p)
{
    qn_master *m = *self_p;
    if (!m)
        return;
    for (int i = 0; i < m->njobs; i++)
        s_job_free(&m->jobs[i]);
    free(m->jobs);
    for (int i = 0; i < m->nworkers; i++)
        free(m->workers[i].endpoint);
    free(m->workers);
    qn_sched_destroy(&m->sched);
    qn_catalog_release(&m->cat);
    for (size_t i = 0; i < m->ndropped_ds; i++)
        free(m->dropped_ds[i]);
    free(m->dropped_ds);
    for (size_t i = 0; i < m->nplugins; i++)
        free(m->plugins[i].data);
    free(m->plugins);
    free(m->puts);
    qn_http_stop(&m->http);
    for (size_t i = 0; i < m->nevents; i++)
        free(m->events[(m->event_head + i) % EVENTS_KEPT].msg);
    free(m->events);
    free(m->logs);
    qn_zap_destroy(&m->zap);
    qn_curve_release(&m->curve);
    if (m->sock)
        zmq_close(m->sock);
    if (m->ctx)
        zmq_ctx_term(m->ctx);
    if (m->sigfd >= 0)
        close(m->sigfd);
    qn_frames_release(&m->in);
    free(m);
    *self_p = NULL;
}

/* ---- job status ---------------------------------------------------------- */

/*
 * Fill st from job j. Strings and arrays point into j or into the arrays
 * passed in, which the caller frees with s_status_release.
 */
typedef struct {
    Quern__Counter *cs;
    Quern__Counter **cp;
    Quern__AttemptFailure **fp;
    Quern__SkippedRecord **sp;
    Quern__TaskInfo *ts;
    Quern__TaskInfo **tp;
} s_status_mem;

/* One task as shown to users; its strings point into m. */
static void s_task_info(qn_master *m, int jx, qn_kind kind, unsigned task,
                        int64_t now, Quern__TaskInfo *out)
{
    s_job *j = &m->jobs[jx];
    qn_task_info ti = qn_sched_task(m->sched, jx, kind, task);
    quern__task_info__init(out);
    out->kind =
        kind == QN_REDUCE ? QUERN__TASK_KIND__REDUCE : QUERN__TASK_KIND__MAP;
    out->index = task;
    out->state = ti.state == QN_TASK_DONE      ? 2
                 : ti.state == QN_TASK_RUNNING ? 1
                                               : 0;
    out->attempts = ti.attempts;
    out->failures = ti.failures;
    out->running = ti.running;
    out->locality = -2;
    out->worker_id = (char *)"";
    out->shard = (char *)"";
    if (kind == QN_MAP && j->splits.splits && task < j->splits.n &&
        j->splits.splits[task].n)
        out->shard = j->splits.splits[task].pieces[0].name;
    if (ti.state == QN_TASK_DONE)
        out->progress = 1;
    else if (ti.state == QN_TASK_RUNNING && j->progress[kind])
        out->progress = j->progress[kind][task];
    /* The attempt that counts: the oldest running one, or the winner; a
     * pending task shows its last attempt, if any. */
    unsigned attempt = ti.state == QN_TASK_PENDING ? 0 : ti.attempt;
    s_arec *r = NULL;
    if (attempt)
        r = s_arec_find(j, kind, task, attempt);
    else if (j->trec[kind] && j->trec[kind][task].n)
        r = &j->trec[kind][task].a[j->trec[kind][task].n - 1];
    if (!r)
        return;
    out->attempt = r->attempt;
    if (r->worker >= 0 && r->worker < m->nworkers)
        out->worker_id = m->workers[r->worker].id;
    if (kind == QN_MAP)
        out->locality = r->local;
    out->started_at_ms = (uint64_t)r->start_wall;
    int64_t end = r->end ? r->end : (j->end ? j->end : now);
    out->duration_ms = end > r->start ? (uint64_t)(end - r->start) : 0;
}

static void s_status(qn_master *m, int jx, Quern__JobStatus *st,
                     s_status_mem *mem)
{
    s_job *j = &m->jobs[jx];
    qn_job_info info = qn_sched_job(m->sched, jx);
    quern__job_status__init(st);
    st->job_id = j->id;
    st->name = j->spec->name;
    st->state = (Quern__JobState)j->state;
    st->maps = info.maps;
    st->maps_done = info.maps_done;
    st->maps_running = info.maps_running;
    st->reduces = info.reduces;
    st->reduces_done = info.reduces_done;
    st->reduces_running = info.reduces_running;
    for (int k = 0; k < 2; k++) {
        unsigned n = k ? j->nreduce : j->nmaps;
        double sum = 0;
        for (unsigned i = 0; i < n; i++) {
            qn_task_info ti = qn_sched_task(m->sched, jx, (qn_kind)k, i);
            if (ti.state == QN_TASK_DONE)
                sum += 1;
            else if (ti.state == QN_TASK_RUNNING)
                sum += j->progress[k][i];
        }
        if (k == 0)
            st->map_progress = n ? sum / n : 1;
        else
            st->reduce_progress = n ? sum / n : 1;
    }
    int64_t end = j->end ? j->end : qn_now_ms();
    st->elapsed_ms = (uint64_t)(end - j->start);
    mem->cs = qn_calloc(j->ncounters + 1, sizeof *mem->cs);
    mem->cp = qn_calloc(j->ncounters + 1, sizeof *mem->cp);
    for (size_t i = 0; i < j->ncounters; i++) {
        quern__counter__init(&mem->cs[i]);
        mem->cs[i].name = j->counters[i].name;
        mem->cs[i].value = j->counters[i].value;
        mem->cp[i] = &mem->cs[i];
    }
    st->counters = mem->cp;
    st->n_counters = j->ncounters;
    st->error = j->error ? j->error : (char *)"";
    mem->fp = qn_calloc(j->nfailures + 1, sizeof *mem->fp);
    for (size_t i = 0; i < j->nfailures; i++)
        mem->fp[i] = &j->failures[i];
    st->failures = mem->fp;
    st->n_failures = j->nfailures;
    st->task_rss_peak = j->task_rss_peak;
    uint64_t wpeak = 0;
    for (int w = 0; w < m->nworkers; w++)
        if (m->workers[w].rss_peak > wpeak)
            wpeak = m->workers[w].rss_peak;
    st->worker_rss_peak = wpeak;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        st->master_rss_peak = (uint64_t)ru.ru_maxrss * 1024;
    st->output = j->spec->output;
    mem->sp = qn_calloc(j->nskipped + 1, sizeof *mem->sp);
    for (size_t i = 0; i < j->nskipped; i++)
        mem->sp[i] = &j->skipped[i];
    st->skipped = mem->sp;
    st->n_skipped = j->nskipped;
    st->submitted_at_ms = (uint64_t)j->submit_wall;
}

/* With tasks: each task of job jx in st (after s_status). */
static void s_status_tasks(qn_master *m, int jx, Quern__JobStatus *st,
                           s_status_mem *mem, int64_t now)
{
    s_job *j = &m->jobs[jx];
    size_t n = (size_t)j->nmaps + j->nreduce;
    mem->ts = qn_calloc(n + 1, sizeof *mem->ts);
    mem->tp = qn_calloc(n + 1, sizeof *mem->tp);
    for (size_t i = 0; i < n; i++) {
        qn_kind k = i < j->nmaps ? QN_MAP : QN_REDUCE;
        unsigned t = (unsigned)(i < j->nmaps ? i : i - j->nmaps);
        s_task_info(m, jx, k, t, now, &mem->ts[i]);
        mem->tp[i] = &mem->ts[i];
    }
    st->tasks = mem->tp;
    st->n_tasks = n;
}

static void s_status_release(s_status_mem *mem)
{
    free(mem->cs);
    free(mem->cp);
    free(mem->fp);
    free(mem->sp);
    free(mem->ts);
    free(mem->tp);
}

/* Send the status of job jx (all when jx < 0, none with an error), with
 * each task's if tasks is set. */
static void s_send_status(qn_master *m, const char *route, size_t routelen,
                          int jx, const char *error, int tasks)
{
    int from = jx < 0 ? 0 : jx, to = jx < 0 ? m->njobs : jx + 1;
    if (error)
        from = to = 0;
    size_t n = (size_t)(to - from);
    Quern__JobStatus *st = qn_calloc(n + 1, sizeof *st);
    Quern__JobStatus **sp = qn_calloc(n + 1, sizeof *sp);
    s_status_mem *mem = qn_calloc(n + 1, sizeof *mem);
    for (int i = from; i < to; i++) {
        s_status(m, i, &st[i - from], &mem[i - from]);
        if (tasks)
            s_status_tasks(m, i, &st[i - from], &mem[i - from], qn_now_ms());
        sp[i - from] = &st[i - from];
    }
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__StatusReply r = QUERN__STATUS_REPLY__INIT;
    r.jobs = sp;
    r.n_jobs = n;
    if (error)
        r.error = (char *)error;
    env.body_case = QUERN__ENVELOPE__BODY_STATUS_REPLY;
    env.status_reply = &r;
    s_send(m, route, routelen, &env);
    for (size_t i = 0; i < n; i++)
        s_status_release(&mem[i]);
    free(mem);
    free(st);
    free(sp);
}

static void s_watch(s_job *j, const char *route, size_t routelen)
{
    for (size_t i = 0; i < j->nwatchers; i++)
        if (j->watchers[i].routelen == routelen &&
            memcmp(j->watchers[i].route, route, routelen) == 0)
            return;
    if (j->nwatchers == MAX_WATCHERS)
        return;
    j->watchers =
        qn_realloc(j->watchers, (j->nwatchers + 1) * sizeof *j->watchers);
    s_route *r = &j->watchers[j->nwatchers++];
    memcpy(r->route, route, routelen);
    r->routelen = routelen;
}

static void s_push(qn_master *m, int jx, int64_t now)
{
    s_job *j = &m->jobs[jx];
    for (size_t i = 0; i < j->nwatchers; i++)
        s_send_status(m, j->watchers[i].route, j->watchers[i].routelen, jx,
                      NULL, 0);
    j->dirty = 0;
    j->last_push = now;
    if (j->state != QUERN__JOB_STATE__JOB_RUNNING) {
        free(j->watchers);
        j->watchers = NULL;
        j->nwatchers = 0;
    }
}

/* ---- datasets ------------------------------------------------------------ */

/* The handle of the live worker with this id, or -1. */
static int s_alive_id(qn_master *m, const char *id)
{
    int w = s_worker_by_id(m, id);
    return w >= 0 && qn_sched_worker_alive(m->sched, w) ? w : -1;
}

static unsigned s_live_copies(qn_master *m, const qn_dataset *d, uint32_t i)
{
    const qn_cshard *sh = qn_catalog_shard(d, i);
    unsigned n = 0;
    for (size_t k = 0; sh && k < sh->nholders; k++)
        if (s_alive_id(m, sh->holders[k]) >= 0)
            n++;
    return n;
}

static unsigned s_data_workers(qn_master *m)
{
    unsigned n = 0;
    for (int w = 0; w < m->nworkers; w++)
        if (m->workers[w].has_data && qn_sched_worker_alive(m->sched, w))
            n++;
    return n;
}

/* Copies a shard can have: replicas, or as many live data workers. */
static unsigned s_copies_wanted(qn_master *m, unsigned replicas)
{
    unsigned have = s_data_workers(m);
    unsigned want = replicas < have ? replicas : have;
    return want ? want : 1;
}

/*
 * The live holders of shard i of d as DataSources, in *src (pointing into
 * m's workers; free the two arrays). Returns how many.
 */
static size_t s_sources(qn_master *m, const qn_dataset *d, uint32_t i,
                        Quern__DataSource **src, Quern__DataSource ***ptrs)
{
    const qn_cshard *sh = qn_catalog_shard(d, i);
    size_t n = sh ? sh->nholders : 0;
    *src = qn_calloc(n + 1, sizeof **src);
    *ptrs = qn_calloc(n + 1, sizeof **ptrs);
    size_t got = 0;
    for (size_t k = 0; k < n; k++) {
        int w = s_alive_id(m, sh->holders[k]);
        if (w < 0)
            continue;
        Quern__DataSource *ds = &(*src)[got];
        quern__data_source__init(ds);
        ds->endpoint = m->workers[w].endpoint;
        ds->worker_id = m->workers[w].id;
        ds->curve_public = m->workers[w].curve_public;
        (*ptrs)[got++] = ds;
    }
    return got;
}

static void s_data_cmd(qn_master *m, int w, Quern__DataCommand *c)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_DATA_COMMAND;
    env.data_command = c;
    s_send(m, m->workers[w].route, m->workers[w].routelen, &env);
}

static int s_tombstoned(qn_master *m, const char *name)
{
    for (size_t i = 0; i < m->ndropped_ds; i++)
        if (strcmp(m->dropped_ds[i], name) == 0)
            return 1;
    return 0;
}

static void s_untombstone(qn_master *m, const char *name)
{
    for (size_t i = 0; i < m->ndropped_ds; i++) {
        if (strcmp(m->dropped_ds[i], name) == 0) {
            free(m->dropped_ds[i]);
            m->dropped_ds[i] = m->dropped_ds[--m->ndropped_ds];
            return;
        }
    }
}

/* Delete a dataset on every live worker and forget it; copies on workers
 * that come back later are deleted when they announce them. */
static void s_drop_everywhere(qn_master *m, const char *name)
{
    Quern__DataCommand c = QUERN__DATA_COMMAND__INIT;
    c.op = QUERN__DATA_COMMAND__OP__DROP;
    c.dataset = (char *)name;
    for (int w = 0; w < m->nworkers; w++)
        if (m->workers[w].has_data && qn_sched_worker_alive(m->sched, w))
            s_data_cmd(m, w, &c);
    if (!s_tombstoned(m, name)) {
        m->dropped_ds = qn_realloc(m->dropped_ds, (m->ndropped_ds + 1) *
                                                      sizeof *m->dropped_ds);
        m->dropped_ds[m->ndropped_ds++] = qn_strdup(name);
    }
    qn_catalog_remove(&m->cat, name);
}

/* Mark d complete with nshards on every live holder and here. */
static void s_seal(qn_master *m, qn_dataset *d, uint32_t nshards)
{
    Quern__DataCommand c = QUERN__DATA_COMMAND__INIT;
    c.op = QUERN__DATA_COMMAND__OP__SEAL;
    c.dataset = d->name;
    c.nshards = nshards;
    for (int w = 0; w < m->nworkers; w++) {
        if (!m->workers[w].has_data || !qn_sched_worker_alive(m->sched, w))
            continue;
        for (uint32_t i = 0; i < nshards; i++) {
            if (qn_catalog_holds(d, i, m->workers[w].id)) {
                s_data_cmd(m, w, &c);
                break;
            }
        }
    }
    d->sealed = 1;
    d->nshards = nshards;
    free(d->writer);
    d->writer = NULL;
}

/* A worker announces a copy of a shard. */
static void s_hold(qn_master *m, int w, const Quern__ShardInfo *si)
{
    if (s_tombstoned(m, si->dataset)) {
        Quern__DataCommand c = QUERN__DATA_COMMAND__INIT;
        c.op = QUERN__DATA_COMMAND__OP__DROP;
        c.dataset = si->dataset;
        s_data_cmd(m, w, &c);
        return;
    }
    if (qn_catalog_hold(&m->cat, m->workers[w].id, si->dataset, si->index,
                        si->size, si->crc, si->sealed, si->nshards) < 0)
        qn_warn("master: worker %s holds shard %s/%u with %llu bytes and CRC "
                "%08x, which differs from the other copies; not used",
                m->workers[w].id, si->dataset, si->index,
                (unsigned long long)si->size, si->crc);
}

/* Is map task `map` of job `job` data-local on worker? (sched.h) */
static int s_local(void *ctx, int job, unsigned map, int worker)
{
    qn_master *m = ctx;
    if (job < 0 || job >= m->njobs)
        return QN_LOC_ANY;
    s_job *j = &m->jobs[job];
    if (!j->splits.splits || map >= j->splits.n)
        return QN_LOC_ANY;
    const qn_split *sp = &j->splits.splits[map];
    int any = 1;
    for (size_t i = 0; i < sp->n; i++) {
        const qn_piece *pc = &sp->pieces[i];
        if (!pc->dataset)
            continue;
        any = 0;
        qn_dataset *d = qn_catalog_get(&m->cat, pc->dataset);
        if (worker < 0 || worker >= m->nworkers || !d ||
            !qn_catalog_holds(d, pc->shard, m->workers[worker].id))
            return 0;
    }
    return any ? QN_LOC_ANY : 1;
}

static void s_job_finished(qn_master *m, int jx, int state, const char *error,
                           int64_t now);

/*
 * A job writing a dataset has finished its reduces: copy each output
 * shard until it has out_replicas live copies (or as many as there are
 * live workers keeping data), then seal the dataset and succeed.
 */
static void s_replicate(qn_master *m, int jx, int64_t now)
{
    s_job *j = &m->jobs[jx];
    if (!j->committing || j->state != QUERN__JOB_STATE__JOB_RUNNING)
        return;
    qn_dataset *d = qn_catalog_get(&m->cat, j->spec->output);
    unsigned want = s_copies_wanted(m, j->out_replicas);
    int complete = 1;
    for (unsigned p = 0; p < j->nreduce; p++) {
        unsigned live = d ? s_live_copies(m, d, p) : 0;
        if (live >= want || (live >= 1 && j->part_copy_fails[p] >= COPY_TRIES))
            continue;
        complete = 0;
        if (live == 0) {
            qn_task_info ti = qn_sched_task(m->sched, jx, QN_REDUCE, p);
            if (ti.worker >= 0 && qn_sched_worker_alive(m->sched, ti.worker))
                continue; /* its worker has not announced it yet */
            char msg[300];
            snprintf(msg, sizeof msg,
                     "output shard %u of %s was lost with worker %s before it "
                     "was copied; run the job again",
                     p, j->spec->output,
                     ti.worker >= 0 ? m->workers[ti.worker].id : "?");
            s_job_finished(m, jx, QUERN__JOB_STATE__JOB_FAILED, msg, now);
            return;
        }
        if (j->part_copy[p] >= 0 &&
            qn_sched_worker_alive(m->sched, j->part_copy[p]))
            continue; /* a copy is on its way */
        /* The live data worker without a copy that holds the fewest. */
        int target = -1;
        size_t best = SIZE_MAX;
        for (int w = 0; w < m->nworkers; w++) {
            if (!m->workers[w].has_data ||
                !qn_sched_worker_alive(m->sched, w) ||
                qn_catalog_holds(d, p, m->workers[w].id))
                continue;
            size_t load = m->workers[w].placed;
            if (load < best) {
                best = load;
                target = w;
            }
        }
        if (target < 0)
            continue;
        m->workers[target].placed++;
        j->part_copy[p] = target;
        const qn_cshard *sh = qn_catalog_shard(d, p);
        Quern__DataSource *src, **sp;
        size_t ns = s_sources(m, d, p, &src, &sp);
        Quern__InputPiece pc = QUERN__INPUT_PIECE__INIT;
        Quern__InputPiece *pcp = &pc;
        char name[100];
        snprintf(name, sizeof name, "%s/part-%05u", d->name, p);
        pc.name = name;
        pc.dataset = d->name;
        pc.shard = p;
        pc.crc = sh->crc;
        pc.length = pc.file_size = sh->size;
        pc.sources = sp;
        pc.n_sources = ns;
        Quern__TaskSpec ts = QUERN__TASK_SPEC__INIT;
        ts.job_id = j->id;
        ts.kind = QUERN__TASK_KIND__COPY;
        ts.task = p;
        ts.attempt = ++j->copy_seq;
        ts.nreduce = 1;
        ts.inputs = &pcp;
        ts.n_inputs = 1;
        Quern__AssignTask at = QUERN__ASSIGN_TASK__INIT;
        at.spec = &ts;
        Quern__Envelope env = QUERN__ENVELOPE__INIT;
        env.body_case = QUERN__ENVELOPE__BODY_ASSIGN_TASK;
        env.assign_task = &at;
        s_send(m, m->workers[target].route, m->workers[target].routelen, &env);
        qn_info("master: job %s copies output shard %s/part-%05u to worker %s",
                j->id, d->name, p, m->workers[target].id);
        free(src);
        free(sp);
    }
    if (!complete)
        return;
    s_seal(m, d, j->nreduce);
    s_job_finished(m, jx, QUERN__JOB_STATE__JOB_SUCCEEDED, NULL, now);
}

static void s_put_reply(qn_master *m, const char *route, size_t routelen,
                        const char *error, Quern__DataSource **targets,
                        size_t n)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__PutReply r = QUERN__PUT_REPLY__INIT;
    r.error = (char *)(error ? error : "");
    r.targets = targets;
    r.n_targets = n;
    env.body_case = QUERN__ENVELOPE__BODY_PUT_REPLY;
    env.put_reply = &r;
    s_send(m, route, routelen, &env);
}

/*
 * Can put of d with nshards be sealed? 1 yes, 0 not yet, -1 never (why
 * says so).
 */
static int s_put_ready(qn_master *m, qn_dataset *d, uint32_t nshards, char *why,
                       size_t cap)
{
    unsigned want = s_copies_wanted(m, d->replicas);
    if (d->nslots > nshards) {
        snprintf(why, cap, "workers hold shard %u, past the %u the put wrote",
                 d->nslots - 1, nshards);
        return -1;
    }
    for (uint32_t i = 0; i < nshards; i++) {
        unsigned live = s_live_copies(m, d, i);
        if (live < want) {
            snprintf(why, cap, "shard %u has %u of %u copies", i, live, want);
            return 0;
        }
    }
    return 1;
}

/* Seal the puts whose shards have all been announced (or time out). */
static void s_puts_check(qn_master *m, int64_t now)
{
    for (size_t i = 0; i < m->nputs;) {
        s_put_wait *pw = &m->puts[i];
        qn_dataset *d = qn_catalog_get(&m->cat, pw->dataset);
        char why[300] = "", msg[600];
        int r = d ? s_put_ready(m, d, pw->nshards, why, sizeof why) : -1;
        if (r == 0 && now < pw->deadline) {
            i++;
            continue;
        }
        if (r == 1) {
            s_seal(m, d, pw->nshards);
            qn_info("master: dataset %s is complete: %u shards, %llu bytes",
                    d->name, pw->nshards,
                    (unsigned long long)qn_catalog_bytes(d));
            s_put_reply(m, pw->route, pw->routelen, NULL, NULL, 0);
        } else {
            snprintf(msg, sizeof msg, "dataset %s cannot be completed: %s",
                     pw->dataset, d ? why : "it was removed");
            s_put_reply(m, pw->route, pw->routelen, msg, NULL, 0);
        }
        m->puts[i] = m->puts[--m->nputs];
    }
}

static int64_t s_puts_due(qn_master *m)
{
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < m->nputs; i++)
        if (m->puts[i].deadline < due)
            due = m->puts[i].deadline;
    return due;
}

/* Something changed in what workers hold: see who was waiting on it. */
static void s_data_changed(qn_master *m, int64_t now)
{
    qn_sched_locality_changed(m->sched, now);
    s_puts_check(m, now);
    for (int jx = 0; jx < m->njobs; jx++)
        if (m->jobs[jx].committing)
            s_replicate(m, jx, now);
}

/* ---- output commit ------------------------------------------------------- */

/* Remove what a job that did not succeed left in its output folder. */
/* Tell every live worker to drop the job's intermediate files. */
static void s_job_end_broadcast(qn_master *m, s_job *j)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__JobEnd je = QUERN__JOB_END__INIT;
    je.job_id = j->id;
    env.body_case = QUERN__ENVELOPE__BODY_JOB_END;
    env.job_end = &je;
    for (int w = 0; w < m->nworkers; w++)
        if (qn_sched_worker_alive(m->sched, w))
            s_send(m, m->workers[w].route, m->workers[w].routelen, &env);
}

static void s_job_finished(qn_master *m, int jx, int state, const char *error,
                           int64_t now)
{
    s_job *j = &m->jobs[jx];
    j->state = state;
    j->end = now;
    if (state == QUERN__JOB_STATE__JOB_SUCCEEDED)
        s_event(m, QN_LOG_INFO, "job_succeeded", jx, -1, 0, 0, -1,
                "job %s succeeded in %.1f s; output in %s%s", j->id,
                (double)(now - j->start) / 1000,
                j->out_dataset ? "dataset " : "", j->spec->output);
    else if (state == QUERN__JOB_STATE__JOB_CANCELLED)
        s_event(m, QN_LOG_WARN, "job_cancelled", jx, -1, 0, 0, -1,
                "job %s cancelled: %s", j->id, error ? error : "");
    else
        s_event(m, QN_LOG_ERROR, "job_failed", jx, -1, 0, 0, -1,
                "job %s failed: %s", j->id, error ? error : "");
    free(j->error);
    j->error = error ? qn_strdup(error) : NULL;
    j->committing = 0;
    if (state != QUERN__JOB_STATE__JOB_SUCCEEDED && j->out_dataset) {
        qn_dataset *d = qn_catalog_get(&m->cat, j->spec->output);
        if (d && d->writer && strcmp(d->writer, j->id) == 0)
            s_drop_everywhere(m, j->spec->output);
    } else if (state != QUERN__JOB_STATE__JOB_SUCCEEDED) {
        qn_output_dir_clean(j->spec->output);
    }
    s_job_end_broadcast(m, j);
    s_push(m, jx, now);
    /* Keep a summary; what scheduling needed can go. */
    s_outs_free(j);
    qn_splits_release(&j->splits);
    for (int k = 0; k < 2; k++) {
        free(j->progress[k]);
        j->progress[k] = NULL;
    }
}

static void s_commit(qn_master *m, int jx, int64_t now)
{
    s_job *j = &m->jobs[jx];
    char why[600];
    if (qn_output_dir_commit(j->spec->output, why, sizeof why) < 0)
        s_job_finished(m, jx, QUERN__JOB_STATE__JOB_FAILED, why, now);
    else
        s_job_finished(m, jx, QUERN__JOB_STATE__JOB_SUCCEEDED, NULL, now);
}

/* ---- actions ------------------------------------------------------------- */

static void s_assign(qn_master *m, const qn_action *a)
{
    s_job *j = &m->jobs[a->job];
    s_worker *w = &m->workers[a->worker];
    const Quern__JobSpec *js = j->spec;
    Quern__TaskSpec ts = QUERN__TASK_SPEC__INIT;
    ts.job_id = j->id;
    ts.kind = (Quern__TaskKind)a->kind;
    ts.task = a->task;
    ts.attempt = a->attempt;
    qn_task_spec_from_job(&ts, js);
    ts.plugin_hash = j->plugin_hash;
    if (j->out_dataset)
        ts.output_dataset = js->output;

    Quern__InputPiece *pieces = NULL, **pp = NULL;
    Quern__DataSource **srcs = NULL;
    Quern__MapOutput *outs = NULL, **op = NULL;
    Quern__SkipRecord *skips = NULL, **skp = NULL;
    if (a->kind == QN_MAP) {
        const qn_split *sp = &j->splits.splits[a->task];
        pieces = qn_calloc(sp->n, sizeof *pieces);
        pp = qn_calloc(sp->n, sizeof *pp);
        srcs = qn_calloc(sp->n, sizeof *srcs);
        for (size_t i = 0; i < sp->n; i++) {
            quern__input_piece__init(&pieces[i]);
            pieces[i].path = sp->pieces[i].path;
            pieces[i].name = sp->pieces[i].name;
            pieces[i].offset = sp->pieces[i].offset;
            pieces[i].length = sp->pieces[i].length;
            pieces[i].file_size = sp->pieces[i].file_size;
            qn_dataset *d = sp->pieces[i].dataset
                                ? qn_catalog_get(&m->cat, sp->pieces[i].dataset)
                                : NULL;
            if (d) {
                pieces[i].dataset = d->name;
                pieces[i].shard = sp->pieces[i].shard;
                pieces[i].crc = sp->pieces[i].crc;
                pieces[i].n_sources = s_sources(m, d, sp->pieces[i].shard,
                                                &srcs[i], &pieces[i].sources);
            }
            pp[i] = &pieces[i];
        }
        ts.inputs = pp;
        ts.n_inputs = sp->n;
        const s_mapout *mo = &j->outs[a->task];
        if (js->skip_bad_records && mo->ncrashes) {
            skips = qn_calloc(mo->ncrashes, sizeof *skips);
            skp = qn_calloc(mo->ncrashes, sizeof *skp);
            for (size_t i = 0; i < mo->ncrashes; i++) {
                if (mo->crashes[i].crashes < SKIP_AFTER)
                    continue;
                quern__skip_record__init(&skips[ts.n_skip]);
                skips[ts.n_skip].piece = mo->crashes[i].piece;
                skips[ts.n_skip].offset = mo->crashes[i].offset;
                skp[ts.n_skip] = &skips[ts.n_skip];
                ts.n_skip++;
            }
            ts.skip = skp;
        }
    } else {
        outs = qn_calloc(j->nmaps, sizeof *outs);
        op = qn_calloc(j->nmaps, sizeof *op);
        for (unsigned i = 0; i < j->nmaps; i++) {
            const s_mapout *mo = &j->outs[i];
            quern__map_output__init(&outs[i]);
            outs[i].map = i;
            op[i] = &outs[i];
            /* Not done yet (reduces start while the last maps run, or it
             * runs again): attempt 0, its place is sent when it is done. */
            if (qn_sched_task(m->sched, a->job, QN_MAP, i).state !=
                QN_TASK_DONE)
                continue;
            const s_worker *mw = &m->workers[mo->worker];
            outs[i].attempt = mo->attempt;
            outs[i].endpoint = mw->endpoint;
            outs[i].worker_id = (char *)mw->id;
            outs[i].curve_public = (char *)mw->curve_public;
            outs[i].bytes = mo->parts[a->task].bytes;
            outs[i].raw_bytes = mo->parts[a->task].raw_bytes;
        }
        ts.map_outputs = op;
        ts.n_map_outputs = j->nmaps;
    }
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__AssignTask at = QUERN__ASSIGN_TASK__INIT;
    at.spec = &ts;
    env.body_case = QUERN__ENVELOPE__BODY_ASSIGN_TASK;
    env.assign_task = &at;
    s_send(m, w->route, w->routelen, &env);
    if (!a->backup)
        j->progress[a->kind][a->task] = 0;
    j->dirty = 1;
    s_count(j, a->kind == QN_MAP ? "map_attempts" : "reduce_attempts", 1);
    s_trec *tr = &j->trec[a->kind][a->task];
    tr->a = qn_realloc(tr->a, (tr->n + 1) * sizeof *tr->a);
    tr->a[tr->n++] = (s_arec){.attempt = a->attempt,
                              .worker = a->worker,
                              .local = a->local,
                              .start = qn_now_ms(),
                              .start_wall = qn_wall_ms()};
    if (a->backup) {
        s_count(j, "backup_attempts", 1);
        s_event(m, QN_LOG_INFO, "backup_launched", a->job, (int)a->kind,
                a->task, a->attempt, a->worker,
                "job %s %s task %u is slow: backup attempt %u on worker %s",
                j->id, s_kind(a->kind), a->task, a->attempt, w->id);
    } else if (a->attempt > 1) {
        s_event(m, QN_LOG_INFO, "task_rerun", a->job, (int)a->kind, a->task,
                a->attempt, a->worker,
                "job %s %s task %u runs again: attempt %u on worker %s", j->id,
                s_kind(a->kind), a->task, a->attempt, w->id);
    } else {
        qn_debug("master: job %s %s task %u attempt %u -> worker %s", j->id,
                 s_kind(a->kind), a->task, a->attempt, w->id);
    }
    if (a->kind == QN_MAP && a->local != QN_LOC_ANY)
        s_count(j, a->local ? "data_local_maps" : "remote_maps", 1);
    for (size_t i = 0; srcs && i < j->splits.splits[a->task].n; i++) {
        free(srcs[i]);
        free(pieces[i].sources);
    }
    free(srcs);
    free(skips);
    free(skp);
    free(pieces);
    free(pp);
    free(outs);
    free(op);
}

static void s_cancel_attempt(qn_master *m, const qn_action *a)
{
    s_job *j = &m->jobs[a->job];
    s_worker *w = &m->workers[a->worker];
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__CancelTask ct = QUERN__CANCEL_TASK__INIT;
    Quern__AttemptRef ref = QUERN__ATTEMPT_REF__INIT;
    ref.job_id = j->id;
    ref.kind = (Quern__TaskKind)a->kind;
    ref.task = a->task;
    ref.attempt = a->attempt;
    ct.attempt = &ref;
    env.body_case = QUERN__ENVELOPE__BODY_CANCEL_TASK;
    env.cancel_task = &ct;
    s_send(m, w->route, w->routelen, &env);
}

/* A map's output is gone: take back what its attempt added to counters. */
static void s_map_rerun(qn_master *m, const qn_action *a)
{
    s_job *j = &m->jobs[a->job];
    s_mapout *mo = &j->outs[a->task];
    for (size_t i = 0; i < mo->ncv && i < j->ncounters; i++)
        j->counters[i].value =
            mo->cv[i] == LLONG_MIN
                ? qn_sat_add(j->counters[i].value, LLONG_MAX)
                : qn_sat_add(j->counters[i].value, -mo->cv[i]);
    free(mo->cv);
    mo->cv = NULL;
    mo->ncv = 0;
    mo->reports = 0;
    s_count(j, "maps_rerun", 1);
    s_event(m, QN_LOG_WARN, "map_rerun", a->job, QN_MAP, a->task, a->attempt,
            mo->worker,
            "job %s map task %u runs again: the output of attempt %u %s", j->id,
            a->task, a->attempt,
            a->reason ? "was on a worker that was lost"
                      : "could not be fetched");
    j->dirty = 1;
}

static void s_logs_worker_gone(qn_master *m, int w);

static void s_actions(qn_master *m, int64_t now)
{
    qn_action a;
    while (qn_sched_next_action(m->sched, &a)) {
        switch (a.act) {
        case QN_ACT_ASSIGN: s_assign(m, &a); break;
        case QN_ACT_CANCEL:
            s_cancel_attempt(m, &a);
            s_arec_end(&m->jobs[a.job], a.kind, a.task, a.attempt, now);
            if (a.reason != QN_CANCEL_JOB_END)
                s_count(&m->jobs[a.job], "killed_attempts", 1);
            if (a.reason == QN_CANCEL_PREEMPTED)
                qn_info("master: job %s reduce task %u attempt %u on worker "
                        "%s makes room for a map that must run again",
                        m->jobs[a.job].id, a.task, a.attempt,
                        m->workers[a.worker].id);
            if (a.reason == QN_CANCEL_LOST_RACE)
                qn_info("master: job %s %s task %u attempt %u on worker %s "
                        "lost the race to another attempt: cancelled",
                        m->jobs[a.job].id, s_kind(a.kind), a.task, a.attempt,
                        m->workers[a.worker].id);
            break;
        case QN_ACT_ATTEMPT_LOST: {
            s_job *j = &m->jobs[a.job];
            char why[256];
            if (a.reason == QN_LOST_WORKER_DEAD)
                snprintf(why, sizeof why, "worker %s was lost",
                         m->workers[a.worker].id);
            else if (a.reason == QN_LOST_VANISHED)
                snprintf(why, sizeof why,
                         "worker %s does not run it (a message was lost on "
                         "the way)",
                         m->workers[a.worker].id);
            else
                snprintf(why, sizeof why,
                         "no progress for %d ms (--task-timeout-ms): killed",
                         m->cfg.task_timeout_ms);
            s_event(m, QN_LOG_WARN, "attempt_lost", a.job, (int)a.kind, a.task,
                    a.attempt, a.worker,
                    "job %s %s task %u attempt %u failed: %s", j->id,
                    s_kind(a.kind), a.task, a.attempt, why);
            s_arec_end(j, a.kind, a.task, a.attempt, now);
            m->attempts_lost[a.kind]++;
            s_add_failure(j, a.kind, a.task, a.attempt, m->workers[a.worker].id,
                          why, NULL, 0, NULL);
            j->dirty = 1;
            break;
        }
        case QN_ACT_WORKER_DEAD:
            s_event(m, QN_LOG_WARN, "worker_lost", -1, -1, 0, 0, a.worker,
                    "worker %s is dead (silent for %d ms)",
                    m->workers[a.worker].id, m->cfg.dead_ms);
            if (m->cfg.heartbeat_ms > 0)
                m->heartbeats_missed +=
                    (uint64_t)(m->cfg.dead_ms / m->cfg.heartbeat_ms);
            s_logs_worker_gone(m, a.worker);
            for (int jx = 0; jx < m->njobs; jx++)
                if (m->jobs[jx].committing)
                    s_replicate(m, jx, now);
            break;
        case QN_ACT_MAP_RERUN: s_map_rerun(m, &a); break;
        case QN_ACT_JOB_DONE:
            if (m->jobs[a.job].out_dataset) {
                m->jobs[a.job].committing = 1;
                s_replicate(m, a.job, now);
            } else {
                s_commit(m, a.job, now);
            }
            break;
        case QN_ACT_JOB_FAILED: {
            s_job *j = &m->jobs[a.job];
            const char *last = "";
            for (size_t i = j->nfailures; i-- > 0;) {
                if (j->failures[i].kind == (Quern__TaskKind)a.kind &&
                    j->failures[i].task == a.task) {
                    last = j->failures[i].reason;
                    break;
                }
            }
            qn_task_info ti = qn_sched_task(m->sched, a.job, a.kind, a.task);
            char msg[1200];
            if (a.reason == QN_FAIL_NO_HOLDER)
                snprintf(msg, sizeof msg,
                         "no live worker holds %s, the input of map task %u, "
                         "for %d ms (--shard-wait-ms); start a worker that "
                         "holds it, then run the job again",
                         s_shard(j, a.task, 0), a.task, m->cfg.shard_wait_ms);
            else if (ti.failures >= j->spec->max_attempts)
                snprintf(msg, sizeof msg,
                         "%s task %u failed %u times (the --max-attempts "
                         "limit); last: %s",
                         s_kind(a.kind), a.task, ti.failures, last);
            else
                snprintf(msg, sizeof msg,
                         "%s task %u lost %u attempts with their workers; "
                         "last: %s",
                         s_kind(a.kind), a.task, ti.losses, last);
            s_job_finished(m, a.job, QUERN__JOB_STATE__JOB_FAILED, msg, now);
            break;
        }
        }
    }
}

/* ---- messages from workers ----------------------------------------------- */

static void s_welcome(qn_master *m, const char *route, size_t routelen,
                      const char *id, int rejoin, int reset, uint64_t session)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__WorkerWelcome wl = QUERN__WORKER_WELCOME__INIT;
    wl.worker_id = (char *)id;
    wl.heartbeat_ms = (uint32_t)m->cfg.heartbeat_ms;
    wl.rejoin = rejoin;
    wl.reset = reset;
    wl.session = session;
    env.body_case = QUERN__ENVELOPE__BODY_WORKER_WELCOME;
    env.worker_welcome = &wl;
    s_send(m, route, routelen, &env);
}

/* Replies to worker w go where its current message came from. */
static void s_route_here(qn_master *m, int w)
{
    memcpy(m->workers[w].route, m->in.id, m->in.idlen);
    m->workers[w].routelen = m->in.idlen;
}

static void s_on_hello(qn_master *m, const Quern__WorkerHello *h, int64_t now)
{
    int w = s_worker_by_id(m, h->worker_id);
    if (w >= 0 && qn_sched_worker_alive(m->sched, w)) {
        /* It missed our welcome, or its connection is new. Only the
         * worker itself can say so: on the connection we know, or with
         * the session we gave it. Anyone else claiming its id would take
         * its traffic and rewrite what it holds. */
        s_worker *wk = &m->workers[w];
        int same = wk->routelen == m->in.idlen &&
                   memcmp(wk->route, m->in.id, m->in.idlen) == 0;
        if (!same && h->session != wk->session) {
            char why[200];
            snprintf(why, sizeof why,
                     "a hello for worker %s, which is alive on another "
                     "connection, without its session (is another process "
                     "using its id?)",
                     wk->id);
            s_drop(m, DROP_INVALID, why);
            return;
        }
        s_route_here(m, w);
        qn_sched_worker_seen(m->sched, now, w);
        s_welcome(m, m->in.id, m->in.idlen, h->worker_id, 0, 0, wk->session);
        qn_catalog_forget_worker(&m->cat, h->worker_id);
        for (size_t i = 0; i < h->n_shards; i++)
            s_hold(m, w, h->shards[i]);
        s_data_changed(m, now);
        return;
    }
    int live = 0;
    for (int i = 0; i < m->nworkers; i++)
        live += qn_sched_worker_alive(m->sched, i);
    if (live >= MAX_LIVE_WORKERS) {
        char why[120];
        snprintf(why, sizeof why,
                 "a hello from worker %s, one too many (the master takes %d "
                 "at once)",
                 h->worker_id, MAX_LIVE_WORKERS);
        s_drop(m, DROP_INVALID, why);
        return;
    }
    /* Given up for dead before (w >= 0): it joins as new, and drops what
     * it ran and holds, which this master has already replaced. */
    int reset = w >= 0;
    m->workers =
        qn_realloc(m->workers, (size_t)(m->nworkers + 1) * sizeof *m->workers);
    s_worker *wk = &m->workers[m->nworkers++];
    memset(wk, 0, sizeof *wk);
    snprintf(wk->id, sizeof wk->id, "%s", h->worker_id);
    snprintf(wk->host, sizeof wk->host, "%s", h->host);
    wk->pid = h->pid;
    wk->slots = h->slots;
    wk->endpoint = qn_strdup(h->shuffle_endpoint);
    memcpy(wk->route, m->in.id, m->in.idlen);
    wk->routelen = m->in.idlen;
    wk->seen = now;
    wk->has_data = h->has_data;
    wk->session = qn_random_u64();
    snprintf(wk->curve_public, sizeof wk->curve_public, "%s", h->curve_public);
    /* Welcome first, so it arrives before any assignment. */
    s_welcome(m, m->in.id, m->in.idlen, h->worker_id, 0, reset, wk->session);
    /* What it holds, as of now, replaces what we knew of it. */
    qn_catalog_forget_worker(&m->cat, h->worker_id);
    int handle = qn_sched_worker_join(m->sched, now, h->slots);
    if (handle != m->nworkers - 1)
        qn_error("master: scheduler handle %d for worker %s is out of step",
                 handle, h->worker_id);
    for (size_t i = 0; i < h->n_shards; i++)
        s_hold(m, handle, h->shards[i]);
    s_event(m, QN_LOG_INFO, "worker_joined", -1, -1, 0, 0, handle,
            "worker %s joined from %s with %u slots, shuffle on %s%s, "
            "holding %zu dataset shards",
            m->workers[handle].id, m->workers[handle].host,
            m->workers[handle].slots, m->workers[handle].endpoint,
            h->has_data ? "" : " (no data dir)", h->n_shards);
    s_data_changed(m, now);
}

/*
 * The worker a message claims to come from, or -1: unknown or given up
 * for dead (it is asked to join again), or not holding the worker's
 * session (dropped, unless it is an older membership's: late, not
 * hostile). With route set, replies to it go where this message came from.
 */
static int s_known_worker(qn_master *m, const char *id, uint64_t session,
                          int64_t now, int route)
{
    int w = s_worker_by_id(m, id);
    if (w >= 0 && session != m->workers[w].session &&
        qn_sched_worker_alive(m->sched, w)) {
        for (int old = w - 1; old >= 0; old--)
            if (strcmp(m->workers[old].id, id) == 0 &&
                m->workers[old].session == session) {
                qn_debug("master: a late message from worker %s's earlier "
                         "membership; ignored",
                         id);
                return -1;
            }
        char why[160];
        snprintf(why, sizeof why, "a message for worker %s without its session",
                 id);
        s_drop(m, DROP_INVALID, why);
        return -1;
    }
    if (w < 0 || qn_sched_worker_seen(m->sched, now, w) < 0) {
        s_welcome(m, m->in.id, m->in.idlen, id, 1, 0, 0);
        return -1;
    }
    if (route)
        s_route_here(m, w);
    m->workers[w].seen = now;
    return w;
}

static void s_on_heartbeat(qn_master *m, const Quern__Heartbeat *hb,
                           int64_t now)
{
    int w = s_known_worker(m, hb->worker_id, hb->session, now, 0);
    if (w < 0)
        return;
    s_worker *wk = &m->workers[w];
    if (hb->seq && hb->seq <= wk->hb_seq) {
        /* Queued across a reconnect and delivered late: what it says
         * about attempts is old news. (It still shows the worker lives.) */
        qn_debug("master: worker %s: ignoring heartbeat %llu, older than "
                 "%llu",
                 wk->id, (unsigned long long)hb->seq,
                 (unsigned long long)wk->hb_seq);
        return;
    }
    wk->hb_seq = hb->seq;
    /* Intervals that passed without a heartbeat (a late one is missed). */
    int64_t hb_ms = m->cfg.heartbeat_ms > 0 ? m->cfg.heartbeat_ms : 1000;
    if (wk->hb_last && now - wk->hb_last > hb_ms + hb_ms / 2)
        m->heartbeats_missed +=
            (uint64_t)((now - wk->hb_last + hb_ms / 2) / hb_ms - 1);
    wk->hb_last = now;
    s_route_here(m, w); /* a fresh message: its connection is current */
    /* The answer tells the worker its master is still there. */
    s_welcome(m, wk->route, wk->routelen, wk->id, 0, 0, wk->session);
    /* An attempt running here for a while that the worker does not list
     * never reached it, or its end never reached us: lost, not failed. */
    qn_attempt_ref mine[256];
    unsigned n = qn_sched_worker_attempts(m->sched, w, mine, 256);
    int64_t grace = 3 * (int64_t)m->cfg.heartbeat_ms;
    if (grace < 2000)
        grace = 2000;
    for (unsigned i = 0; i < n; i++) {
        if (now - mine[i].started < grace)
            continue;
        const char *job = m->jobs[mine[i].job].id;
        int listed = 0;
        for (size_t k = 0; k < hb->n_running && !listed; k++) {
            const Quern__AttemptRef *r = hb->running[k];
            listed = r->task == mine[i].task && r->attempt == mine[i].attempt &&
                     r->kind == (Quern__TaskKind)mine[i].kind &&
                     strcmp(r->job_id, job) == 0;
        }
        if (!listed)
            qn_sched_vanished(m->sched, now, mine[i].job, mine[i].kind,
                              mine[i].task, mine[i].attempt);
    }
    if (hb->rss_peak > wk->rss_peak)
        wk->rss_peak = hb->rss_peak;
    if (hb->shuffle_dropped > wk->shuffle_dropped)
        wk->shuffle_dropped = hb->shuffle_dropped;
    for (size_t i = 0; i < hb->n_work; i++) {
        const Quern__AttemptRef *r = hb->work[i]->attempt;
        int jx = s_job_by_id(m, r->job_id);
        if (jx < 0 || r->kind > QUERN__TASK_KIND__REDUCE)
            continue;
        qn_sched_work(m->sched, now, jx, (qn_kind)r->kind, r->task, r->attempt,
                      hb->work[i]->records + hb->work[i]->bytes);
    }
    /* An attempt the worker runs that is not current here (given up on,
     * or of a job this master never ran) only wastes a slot: kill it.
     * Said once per heartbeat, however many it lists. */
    unsigned stale = 0;
    for (size_t i = 0; i < hb->n_running; i++) {
        const Quern__AttemptRef *r = hb->running[i];
        int jx = s_job_by_id(m, r->job_id);
        qn_kind kind = r->kind == QUERN__TASK_KIND__REDUCE ? QN_REDUCE : QN_MAP;
        if (jx >= 0 && qn_sched_attempt_worker(m->sched, jx, kind, r->task,
                                               r->attempt) == w)
            continue;
        Quern__Envelope env = QUERN__ENVELOPE__INIT;
        Quern__CancelTask ct = QUERN__CANCEL_TASK__INIT;
        ct.attempt = (Quern__AttemptRef *)r;
        env.body_case = QUERN__ENVELOPE__BODY_CANCEL_TASK;
        env.cancel_task = &ct;
        s_send(m, wk->route, wk->routelen, &env);
        if (stale++ == 0)
            qn_info("master: worker %s runs %s %s task %u attempt %u, which "
                    "is not current; cancelling it",
                    wk->id, r->job_id, s_kind(kind), r->task, r->attempt);
    }
    if (stale > 1)
        qn_info("master: worker %s: cancelled %u more attempts that are not "
                "current",
                wk->id, stale - 1);
}

/*
 * Tell running reduce attempts of job jx (only the one named by to, if
 * set) where map task's output now is.
 */
static void s_send_location(qn_master *m, int jx, unsigned task,
                            const Quern__AttemptRef *to)
{
    s_job *j = &m->jobs[jx];
    const s_mapout *mo = &j->outs[task];
    Quern__MapOutput out = QUERN__MAP_OUTPUT__INIT;
    Quern__MapOutput *op = &out;
    out.map = task;
    out.attempt = mo->attempt;
    out.endpoint = m->workers[mo->worker].endpoint;
    out.worker_id = m->workers[mo->worker].id;
    out.curve_public = m->workers[mo->worker].curve_public;
    for (unsigned r = 0; r < j->nreduce; r++) {
        unsigned atts[QN_SCHED_MAX_RUNNING];
        int ws[QN_SCHED_MAX_RUNNING];
        unsigned n = qn_sched_running(m->sched, jx, QN_REDUCE, r, atts, ws);
        for (unsigned k = 0; k < n; k++) {
            if (to && (to->task != r || to->attempt != atts[k]))
                continue;
            Quern__AttemptRef ref = QUERN__ATTEMPT_REF__INIT;
            ref.job_id = j->id;
            ref.kind = QUERN__TASK_KIND__REDUCE;
            ref.task = r;
            ref.attempt = atts[k];
            out.bytes = mo->parts[r].bytes;
            out.raw_bytes = mo->parts[r].raw_bytes;
            Quern__MapLocations ml = QUERN__MAP_LOCATIONS__INIT;
            ml.reduce = &ref;
            ml.outputs = &op;
            ml.n_outputs = 1;
            Quern__Envelope env = QUERN__ENVELOPE__INIT;
            env.body_case = QUERN__ENVELOPE__BODY_MAP_LOCATIONS;
            env.map_locations = &ml;
            s_send(m, m->workers[ws[k]].route, m->workers[ws[k]].routelen,
                   &env);
        }
    }
}

/*
 * A current reduce attempt (ref, on worker rw) of running job jx could not
 * fetch a map output.
 */
static void s_on_fetch_failure(qn_master *m, int jx, int rw,
                               const Quern__AttemptRef *ref,
                               const Quern__FetchFailure *ff, int64_t now)
{
    s_job *j = &m->jobs[jx];
    const char *reducer = m->workers[rw].id;
    unsigned rtask = ref->task;
    if (ff->map >= j->nmaps || !j->outs) {
        s_drop(m, DROP_INVALID, "fetch failure for a map out of range");
        return;
    }
    qn_task_info ti = qn_sched_task(m->sched, jx, QN_MAP, ff->map);
    if (ti.state != QN_TASK_DONE)
        return; /* running again: its new place is sent when it is done */
    if (ti.attempt != ff->attempt) {
        /* It tries an older output: our word of the new one was lost. */
        s_send_location(m, jx, ff->map, ref);
        return;
    }
    s_mapout *mo = &j->outs[ff->map];
    mo->reports++;
    qn_job_info info = qn_sched_job(m->sched, jx);
    unsigned undone = info.reduces - info.reduces_done;
    unsigned limit = (undone + 1) / 2;
    if (limit > FETCH_REPORTS)
        limit = FETCH_REPORTS;
    if (limit < 1)
        limit = 1;
    qn_warn("master: job %s reduce task %u on worker %s cannot fetch map %u "
            "attempt %u from worker %s: %s (report %u of %u)",
            j->id, rtask, reducer, ff->map, ff->attempt,
            m->workers[mo->worker].id, ff->reason, mo->reports, limit);
    if (ff->lost) {
        /* Its input was bad: if it fails now, that is not its fault. */
        s_arec *ra = s_arec_find(j, QN_REDUCE, rtask, ref->attempt);
        if (ra)
            ra->blamed = 1;
    }
    if (ff->lost || mo->reports >= limit)
        qn_sched_map_lost(m->sched, now, jx, ff->map, ff->attempt);
}

/* Remember the record a map attempt died in, for --skip-bad-records. */
static void s_note_crash(s_job *j, unsigned task, const Quern__TaskUpdate *u)
{
    s_mapout *mo = &j->outs[task];
    for (size_t i = 0; i < mo->ncrashes; i++) {
        if (mo->crashes[i].piece == u->input_piece &&
            mo->crashes[i].offset == u->record_offset) {
            mo->crashes[i].crashes++;
            return;
        }
    }
    if (mo->ncrashes >= 64)
        return; /* a map that crashes everywhere is not a bad record */
    mo->crashes =
        qn_realloc(mo->crashes, (mo->ncrashes + 1) * sizeof *mo->crashes);
    mo->crashes[mo->ncrashes++] =
        (s_crash){u->input_piece, u->record_offset, 1};
}

/* A map attempt that skipped records succeeded: list them in the job. */
static void s_note_skipped(s_job *j, unsigned task)
{
    const s_mapout *mo = &j->outs[task];
    for (size_t i = 0; i < mo->ncrashes; i++) {
        const s_crash *c = &mo->crashes[i];
        if (c->crashes < SKIP_AFTER || j->nskipped >= MAX_SKIPPED)
            continue;
        const char *shard = s_shard(j, task, c->piece);
        int seen = 0;
        for (size_t k = 0; k < j->nskipped && !seen; k++)
            seen = j->skipped[k].map == task &&
                   j->skipped[k].offset == c->offset &&
                   strcmp(j->skipped[k].shard, shard) == 0;
        if (seen)
            continue;
        j->skipped =
            qn_realloc(j->skipped, (j->nskipped + 1) * sizeof *j->skipped);
        Quern__SkippedRecord *sr = &j->skipped[j->nskipped++];
        quern__skipped_record__init(sr);
        sr->map = task;
        sr->shard = qn_strdup(shard);
        sr->offset = c->offset;
        qn_warn("master: job %s map task %u skipped the record at offset %llu "
                "of %s, which crashed %u attempts",
                j->id, task, (unsigned long long)c->offset, shard, c->crashes);
    }
}

/* A copy of an output shard (s_replicate) ended, or reports progress. */
static void s_on_copy_update(qn_master *m, int jx, int w,
                             const Quern__TaskUpdate *u, int64_t now)
{
    s_job *j = &m->jobs[jx];
    unsigned p = u->attempt->task;
    if (!j->committing || p >= j->nreduce ||
        u->state == QUERN__TASK_STATE__RUNNING)
        return;
    if (j->part_copy[p] == w)
        j->part_copy[p] = -1;
    if (u->state != QUERN__TASK_STATE__SUCCEEDED) {
        j->part_copy_fails[p]++;
        qn_warn("master: job %s: copying output shard %u to worker %s "
                "failed: %s",
                j->id, p, m->workers[w].id, u->reason);
    }
    s_replicate(m, jx, now);
}

static void s_on_task_update(qn_master *m, const Quern__TaskUpdate *u,
                             int64_t now)
{
    int w = s_known_worker(m, u->worker_id, u->session, now, 1);
    if (w < 0)
        return;
    const Quern__AttemptRef *r = u->attempt;
    int jx = s_job_by_id(m, r->job_id);
    if (jx < 0 || (r->kind != QUERN__TASK_KIND__MAP &&
                   r->kind != QUERN__TASK_KIND__REDUCE &&
                   r->kind != QUERN__TASK_KIND__COPY)) {
        s_drop(m, DROP_INVALID, "task update for an unknown job or task kind");
        return;
    }
    s_job *j = &m->jobs[jx];
    if (r->kind == QUERN__TASK_KIND__COPY) {
        s_on_copy_update(m, jx, w, u, now);
        return;
    }
    qn_kind kind = (qn_kind)r->kind;
    unsigned n = kind == QN_MAP ? j->nmaps : j->nreduce;
    if (r->task >= n) {
        s_drop(m, DROP_INVALID, "task update for a task out of range");
        return;
    }
    int current =
        qn_sched_attempt_worker(m->sched, jx, kind, r->task, r->attempt) == w;
    switch (u->state) {
    case QUERN__TASK_STATE__RUNNING:
        if (current) {
            qn_sched_progress(m->sched, now, jx, kind, r->task, r->attempt);
            double p = u->progress;
            if (p >= 0 && p <= 1) {
                qn_sched_fraction(m->sched, jx, kind, r->task, r->attempt, p);
                if (p > j->progress[kind][r->task])
                    j->progress[kind][r->task] = p;
            }
            j->dirty = 1;
        }
        if (kind == QN_REDUCE && current &&
            j->state == QUERN__JOB_STATE__JOB_RUNNING)
            for (size_t i = 0; i < u->n_fetch_failures; i++)
                s_on_fetch_failure(m, jx, w, r, u->fetch_failures[i], now);
        break;
    case QUERN__TASK_STATE__SUCCEEDED:
        if (!current) {
            qn_info("master: job %s ignores a success of %s task %u attempt "
                    "%u on worker %s: that attempt is not current",
                    j->id, s_kind(kind), r->task, r->attempt, u->worker_id);
            break;
        }
        if (kind == QN_MAP && u->n_partitions != j->nreduce) {
            s_add_failure(j, kind, r->task, r->attempt, u->worker_id,
                          "map reported the wrong number of partitions", NULL,
                          0, NULL);
            m->attempts_failed[kind]++;
            s_arec_end(j, kind, r->task, r->attempt, now);
            qn_sched_failed(m->sched, now, jx, kind, r->task, r->attempt);
            break;
        }
        if (kind == QN_REDUCE && j->out_dataset) {
            /* The worker installs it as a shard and announces it. */
            Quern__DataCommand c = QUERN__DATA_COMMAND__INIT;
            c.op = QUERN__DATA_COMMAND__OP__COMMIT;
            c.dataset = j->spec->output;
            c.index = r->task;
            c.job_id = j->id;
            c.attempt = r->attempt;
            c.size = u->output_size;
            c.crc = u->output_crc;
            s_data_cmd(m, w, &c);
        } else if (kind == QN_REDUCE) {
            char why[1200];
            if (qn_output_part_commit(j->spec->output, j->id, r->task,
                                      r->attempt, why, sizeof why) < 0) {
                qn_warn("master: job %s reduce task %u attempt %u: %s", j->id,
                        r->task, r->attempt, why);
                s_add_failure(j, kind, r->task, r->attempt, u->worker_id, why,
                              NULL, 0, NULL);
                m->attempts_failed[kind]++;
                s_arec_end(j, kind, r->task, r->attempt, now);
                qn_sched_failed(m->sched, now, jx, kind, r->task, r->attempt);
                break;
            }
        }
        if (kind == QN_MAP) {
            s_mapout *mo = &j->outs[r->task];
            mo->attempt = r->attempt;
            mo->worker = w;
            mo->reports = 0;
            for (unsigned p = 0; p < j->nreduce; p++) {
                quern__partition_info__init(&mo->parts[p]);
                mo->parts[p].bytes = u->partitions[p]->bytes;
                mo->parts[p].raw_bytes = u->partitions[p]->raw_bytes;
                mo->parts[p].records = u->partitions[p]->records;
            }
            /* Kept per map, so a map run again is not counted twice. */
            for (size_t i = 0; i < u->n_counters; i++) {
                size_t c =
                    s_count(j, u->counters[i]->name, u->counters[i]->value);
                if (c == SIZE_MAX)
                    continue;
                if (c >= mo->ncv) {
                    mo->cv = qn_realloc(mo->cv, (c + 1) * sizeof *mo->cv);
                    memset(mo->cv + mo->ncv, 0,
                           (c + 1 - mo->ncv) * sizeof *mo->cv);
                    mo->ncv = c + 1;
                }
                mo->cv[c] = qn_sat_add(mo->cv[c], u->counters[i]->value);
            }
            if (j->spec->skip_bad_records)
                s_note_skipped(j, r->task);
        } else {
            for (size_t i = 0; i < u->n_counters; i++)
                s_count(j, u->counters[i]->name, u->counters[i]->value);
        }
        if (u->rss_peak > j->task_rss_peak)
            j->task_rss_peak = u->rss_peak;
        qn_job_info before = qn_sched_job(m->sched, jx);
        s_arec_end(j, kind, r->task, r->attempt, now);
        qn_sched_done(m->sched, now, jx, kind, r->task, r->attempt);
        /* A map run again while reduces wait for it: say where it is. */
        if (kind == QN_MAP && before.reduces_running > 0 &&
            m->jobs[jx].state == QUERN__JOB_STATE__JOB_RUNNING)
            s_send_location(m, jx, r->task, NULL);
        j->dirty = 1;
        break;
    case QUERN__TASK_STATE__FAILED:
    case QUERN__TASK_STATE__KILLED:
        if (!current) {
            /* Killed on request is expected; anything else is news. */
            if (u->state == QUERN__TASK_STATE__KILLED)
                qn_debug("master: job %s %s task %u attempt %u was killed",
                         j->id, s_kind(kind), r->task, r->attempt);
            else
                qn_info("master: job %s ignores the failure of %s task %u "
                        "attempt %u on worker %s: that attempt is not current",
                        j->id, s_kind(kind), r->task, r->attempt, u->worker_id);
            break;
        }
        s_event(m, QN_LOG_WARN, "attempt_failed", jx, (int)kind, r->task,
                r->attempt, w,
                "job %s %s task %u attempt %u failed on worker %s: %s", j->id,
                s_kind(kind), r->task, r->attempt, u->worker_id, u->reason);
        m->attempts_failed[kind]++;
        s_arec_end(j, kind, r->task, r->attempt, now);
        const char *shard = NULL;
        if (kind == QN_MAP && u->in_record) {
            shard = s_shard(j, r->task, u->input_piece);
            s_note_crash(j, r->task, u);
        }
        s_add_failure(j, kind, r->task, r->attempt, u->worker_id, u->reason,
                      u->stderr_tail, u->record_offset, shard);
        const s_arec *ra = s_arec_find(j, kind, r->task, r->attempt);
        if (ra && ra->blamed && u->state == QUERN__TASK_STATE__FAILED) {
            /* A map output it read was corrupt, and that map runs again:
             * neither the reduce nor its worker is to blame. */
            qn_sched_spoiled(m->sched, now, jx, kind, r->task, r->attempt);
        } else {
            m->workers[w].failures++;
            qn_sched_failed(m->sched, now, jx, kind, r->task, r->attempt);
        }
        j->dirty = 1;
        break;
    default: s_drop(m, DROP_INVALID, "task update with an unknown state");
    }
}

/*
 * Worker w could not install a reduce's output as its dataset shard (a
 * full disk, say). The reduce is done and its staged output gone, so the
 * job fails saying why rather than wait for a shard that never comes.
 */
static void s_on_commit_failure(qn_master *m, int w,
                                const Quern__CommitFailure *cf, int64_t now)
{
    int jx = s_job_by_id(m, cf->job_id);
    s_job *j = jx >= 0 ? &m->jobs[jx] : NULL;
    qn_task_info ti = {.worker = -1};
    if (j && cf->index < j->nreduce)
        ti = qn_sched_task(m->sched, jx, QN_REDUCE, cf->index);
    /* Only a COMMIT we sent can fail: one for a reduce done on w. */
    if (!j || !j->out_dataset || ti.state != QN_TASK_DONE || ti.worker != w ||
        strcmp(j->spec->output, cf->dataset) != 0) {
        s_drop(m, DROP_INVALID, "a commit failure for no output it holds");
        return;
    }
    if (j->state != QUERN__JOB_STATE__JOB_RUNNING)
        return;
    char msg[1200];
    snprintf(msg, sizeof msg,
             "worker %s could not install output shard %u of %s: %s",
             m->workers[w].id, cf->index, cf->dataset, cf->reason);
    /* Other reduces may still run: the scheduler lets the job go too (and
     * its attempts are killed), or it would go on acting for a job whose
     * tasks are gone. (Found by fuzz_master.) */
    if (qn_sched_job_cancel(m->sched, now, jx) == 0)
        s_actions(m, now);
    s_job_finished(m, jx, QUERN__JOB_STATE__JOB_FAILED, msg, now);
}

static void s_on_data_report(qn_master *m, const Quern__DataReport *dr,
                             int64_t now)
{
    int w = s_known_worker(m, dr->worker_id, dr->session, now, 1);
    if (w < 0)
        return;
    for (size_t i = 0; i < dr->n_added; i++)
        s_hold(m, w, dr->added[i]);
    for (size_t i = 0; i < dr->n_removed; i++)
        qn_catalog_unhold(&m->cat, dr->worker_id, dr->removed[i]->dataset,
                          dr->removed[i]->index);
    for (size_t i = 0; i < dr->n_failed; i++)
        s_on_commit_failure(m, w, dr->failed[i], now);
    s_data_changed(m, now);
}

static void s_on_plugin_request(qn_master *m, const Quern__PluginRequest *pr,
                                int64_t now)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__PluginReply r = QUERN__PLUGIN_REPLY__INIT;
    /* A job's code goes only to the workers that run it. */
    int w = s_known_worker(m, pr->worker_id, pr->session, now, 0);
    if (w < 0)
        return;
    r.hash = pr->hash;
    r.error = (char *)"no job uses a plugin with that hash";
    for (size_t i = 0; i < m->nplugins; i++) {
        if (strcmp(m->plugins[i].hash, pr->hash) == 0) {
            r.data.data = m->plugins[i].data;
            r.data.len = m->plugins[i].len;
            r.error = (char *)"";
            m->plugins[i].used = now;
            break;
        }
    }
    env.body_case = QUERN__ENVELOPE__BODY_PLUGIN_REPLY;
    env.plugin_reply = &r;
    s_send(m, m->in.id, m->in.idlen, &env);
}

/* ---- messages from clients ----------------------------------------------- */

static void s_submit_reply(qn_master *m, const char *id, const char *error)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__SubmitReply r = QUERN__SUBMIT_REPLY__INIT;
    r.job_id = (char *)(id ? id : "");
    r.error = (char *)(error ? error : "");
    env.body_case = QUERN__ENVELOPE__BODY_SUBMIT_REPLY;
    env.submit_reply = &r;
    s_send(m, m->in.id, m->in.idlen, &env);
}

/* Is an input or output a dataset name (no '/') rather than a path? */
static int s_is_dataset(const char *given)
{
    return !strchr(given, '/');
}

/* Keep a plugin's bytes by hash (once); its hash into hex. */
static void s_plugin_keep(qn_master *m, const uint8_t *data, size_t len,
                          int64_t now, char hex[QN_SHA256_HEX])
{
    uint8_t d[QN_SHA256_SIZE];
    qn_sha256(data, len, d);
    qn_sha256_hex(d, hex);
    for (size_t i = 0; i < m->nplugins; i++) {
        if (strcmp(m->plugins[i].hash, hex) == 0) {
            m->plugins[i].used = now;
            return;
        }
    }
    /* Past the limit, forget the least recently used plugin no running
     * job needs. */
    if (m->nplugins >= PLUGINS_KEPT) {
        size_t victim = SIZE_MAX;
        for (size_t i = 0; i < m->nplugins; i++) {
            int busy = 0;
            for (int j = 0; j < m->njobs; j++)
                busy |= m->jobs[j].state == QUERN__JOB_STATE__JOB_RUNNING &&
                        strcmp(m->jobs[j].plugin_hash, m->plugins[i].hash) == 0;
            if (!busy && (victim == SIZE_MAX ||
                          m->plugins[i].used < m->plugins[victim].used))
                victim = i;
        }
        if (victim != SIZE_MAX) {
            free(m->plugins[victim].data);
            m->plugins[victim] = m->plugins[--m->nplugins];
        }
    }
    m->plugins = qn_realloc(m->plugins, (m->nplugins + 1) * sizeof *m->plugins);
    s_plugin *p = &m->plugins[m->nplugins++];
    snprintf(p->hash, sizeof p->hash, "%s", hex);
    p->data = qn_malloc(len ? len : 1);
    memcpy(p->data, data, len);
    p->len = len;
    p->used = now;
}

/*
 * Splits for the dataset inputs of a job, appended to out (one map per
 * shard). Returns 0, or -1 with err naming the dataset or shard.
 */
static int s_dataset_splits(qn_master *m, const Quern__JobSpec *in,
                            qn_splits *out, char *err, size_t errcap)
{
    for (size_t i = 0; i < in->n_inputs; i++) {
        const char *name = in->inputs[i]->given;
        if (!s_is_dataset(name))
            continue;
        qn_dataset *d = qn_catalog_get(&m->cat, name);
        if (!d) {
            snprintf(err, errcap, "no dataset %s (quern ls lists them)", name);
            return -1;
        }
        if (!d->sealed) {
            snprintf(err, errcap,
                     "dataset %s is not complete (it is being written, or "
                     "its writer stopped: quern rm it)",
                     name);
            return -1;
        }
        out->files++;
        for (uint32_t k = 0; k < d->nshards; k++) {
            const qn_cshard *sh = qn_catalog_shard(d, k);
            if (!sh) {
                snprintf(err, errcap,
                         "shard %s/part-%05u has no copy on any worker the "
                         "master knows; start a worker that holds it",
                         name, k);
                return -1;
            }
            out->splits =
                qn_realloc(out->splits, (out->n + 1) * sizeof *out->splits);
            qn_split *sp = &out->splits[out->n++];
            sp->pieces = qn_calloc(1, sizeof *sp->pieces);
            sp->n = 1;
            sp->bytes = sh->size;
            qn_piece *pc = &sp->pieces[0];
            qn_buf nm = {0};
            qn_buf_printf(&nm, "%s/part-%05u", name, k);
            pc->name = nm.data;
            pc->path = qn_strdup("");
            pc->offset = 0;
            pc->length = pc->file_size = sh->size;
            pc->dataset = qn_strdup(name);
            pc->shard = k;
            pc->crc = sh->crc;
            out->bytes += sh->size;
        }
    }
    return 0;
}

static void s_on_submit(qn_master *m, const Quern__SubmitJob *sj, int64_t now)
{
    const Quern__JobSpec *in = sj->spec;
    char err[1024];
    /* What the job says of itself first (jobspec.h), then the cluster. */
    if (qn_jobspec_check(in, sj->plugin_data.data, sj->plugin_data.len, err,
                         sizeof err) < 0) {
        s_submit_reply(m, NULL, err);
        return;
    }
    int out_ds = s_is_dataset(in->output);
    if (out_ds) {
        qn_dataset *d = qn_catalog_get(&m->cat, in->output);
        if (d)
            snprintf(err, sizeof err,
                     "dataset %s exists; quern rm %s first or choose "
                     "another name",
                     in->output, in->output);
        else if (s_data_workers(m) == 0)
            snprintf(err, sizeof err,
                     "output %s is a dataset, but no live worker keeps "
                     "datasets (start workers with --data-dir)",
                     in->output);
        else
            err[0] = 0;
        for (int w = 0; !err[0] && w < m->nworkers; w++)
            if (qn_sched_worker_alive(m->sched, w) && !m->workers[w].has_data)
                snprintf(err, sizeof err,
                         "output %s is a dataset, but worker %s keeps no "
                         "datasets (no --data-dir); write to a folder instead",
                         in->output, m->workers[w].id);
        if (err[0]) {
            s_submit_reply(m, NULL, err);
            return;
        }
    }
    size_t npaths = 0;
    const char **given = qn_calloc(in->n_inputs, sizeof *given);
    const char **paths = qn_calloc(in->n_inputs, sizeof *paths);
    for (size_t i = 0; i < in->n_inputs; i++) {
        if (s_is_dataset(in->inputs[i]->given))
            continue;
        given[npaths] = in->inputs[i]->given;
        paths[npaths++] = in->inputs[i]->path;
    }
    qn_split_opts so = {
        .split_size = in->split_size,
        .whole = in->input_kind == QUERN__INPUT_KIND__WHOLE,
        .align =
            in->input_kind == QUERN__INPUT_KIND__FIXED ? in->record_size : 0,
        .max_splits = MAX_MAPS,
    };
    qn_splits splits;
    memset(&splits, 0, sizeof splits);
    int rc = npaths ? qn_split_inputs(given, paths, npaths, &so, &splits, err,
                                      sizeof err)
                    : 0;
    free(given);
    free(paths);
    if (rc == 0)
        rc = s_dataset_splits(m, in, &splits, err, sizeof err);
    if (rc == 0 && splits.n == 0) {
        snprintf(err, sizeof err, "the input holds no data");
        rc = -1;
    }
    if (rc < 0) {
        qn_splits_release(&splits);
        s_submit_reply(m, NULL, err);
        return;
    }
    if (splits.n > MAX_MAPS) {
        snprintf(err, sizeof err,
                 "the input makes %zu map tasks, over the limit of %d; raise "
                 "--split-size",
                 splits.n, MAX_MAPS);
        qn_splits_release(&splits);
        s_submit_reply(m, NULL, err);
        return;
    }
    for (int i = 0; i < m->njobs && !out_ds; i++) {
        if (m->jobs[i].state == QUERN__JOB_STATE__JOB_RUNNING &&
            strcmp(m->jobs[i].spec->output, in->output) == 0) {
            qn_splits_release(&splits);
            snprintf(err, sizeof err,
                     "output %s is being written by %s; choose another "
                     "folder",
                     in->output, m->jobs[i].id);
            s_submit_reply(m, NULL, err);
            return;
        }
    }
    if (!out_ds && qn_output_dir_prepare(in->output, err, sizeof err) < 0) {
        qn_splits_release(&splits);
        s_submit_reply(m, NULL, err);
        return;
    }

    m->jobs = qn_realloc(m->jobs, (size_t)(m->njobs + 1) * sizeof *m->jobs);
    int jx = m->njobs++;
    s_job *j = &m->jobs[jx];
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "job-%s-%d", m->tag, jx + 1);
    /* A private copy of the spec: pack and unpack. */
    size_t n = quern__job_spec__get_packed_size(in);
    uint8_t *buf = qn_malloc(n ? n : 1);
    quern__job_spec__pack(in, buf);
    j->spec = quern__job_spec__unpack(NULL, n, buf);
    free(buf);
    j->splits = splits;
    j->nmaps = (unsigned)splits.n;
    j->nreduce = in->nreduce;
    s_plugin_keep(m, sj->plugin_data.data, sj->plugin_data.len, now,
                  j->plugin_hash);
    if (out_ds) {
        j->out_dataset = 1;
        j->out_replicas = in->output_replicas ? in->output_replicas : 2;
        s_untombstone(m, in->output);
        qn_catalog_create(&m->cat, in->output, j->id, j->out_replicas);
        j->part_copy = qn_calloc(j->nreduce, sizeof *j->part_copy);
        j->part_copy_fails = qn_calloc(j->nreduce, sizeof *j->part_copy_fails);
        for (unsigned p = 0; p < j->nreduce; p++)
            j->part_copy[p] = -1;
    }
    j->outs = qn_calloc(j->nmaps, sizeof *j->outs);
    for (unsigned i = 0; i < j->nmaps; i++)
        j->outs[i].parts = qn_calloc(j->nreduce, sizeof(Quern__PartitionInfo));
    j->progress[0] = qn_calloc(j->nmaps, sizeof(double));
    j->progress[1] = qn_calloc(j->nreduce, sizeof(double));
    j->trec[0] = qn_calloc(j->nmaps, sizeof(s_trec));
    j->trec[1] = qn_calloc(j->nreduce, sizeof(s_trec));
    j->state = QUERN__JOB_STATE__JOB_RUNNING;
    j->start = now;
    j->submit_wall = qn_wall_ms();
    /* Shown from the start, 0 or not, so readers can rely on them. */
    static const char *const faults[] = {
        "map_attempts",    "reduce_attempts", "failed_attempts",
        "killed_attempts", "backup_attempts", "maps_rerun",
        "skipped_records", "data_local_maps", "remote_maps"};
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++)
        s_count(j, faults[i], 0);
    j->last_push = now;
    if (sj->watch)
        s_watch(j, m->in.id, m->in.idlen);
    char size[32];
    s_event(m, QN_LOG_INFO, "job_submitted", jx, -1, 0, 0, -1,
            "job %s (%s) submitted: %zu files, %s, %u maps, %u reduces", j->id,
            j->spec->name, splits.files,
            qn_fmt_bytes(splits.bytes, size, sizeof size), j->nmaps,
            j->nreduce);
    s_submit_reply(m, j->id, NULL);
    int handle =
        qn_sched_job_add(m->sched, now, j->nmaps, j->nreduce, in->max_attempts);
    if (handle != jx)
        qn_error("master: scheduler handle %d for job %s is out of step",
                 handle, j->id);
    qn_sched_job_speculate(m->sched, handle, in->speculation);
}

static void s_on_status(qn_master *m, const Quern__StatusRequest *rq)
{
    if (!rq->job_id[0]) {
        s_send_status(m, m->in.id, m->in.idlen, -1, NULL,
                      0); /* tasks: one job's */
        return;
    }
    int jx = s_job_by_id(m, rq->job_id);
    if (jx < 0) {
        char err[200];
        snprintf(err, sizeof err, "no job %s (quern jobs lists them)",
                 rq->job_id);
        s_send_status(m, m->in.id, m->in.idlen, 0, err, 0);
        return;
    }
    if (rq->watch && m->jobs[jx].state == QUERN__JOB_STATE__JOB_RUNNING)
        s_watch(&m->jobs[jx], m->in.id, m->in.idlen);
    s_send_status(m, m->in.id, m->in.idlen, jx, NULL, rq->tasks);
}

static void s_on_cancel(qn_master *m, const Quern__CancelJob *c, int64_t now)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__CancelReply r = QUERN__CANCEL_REPLY__INIT;
    char err[200] = "";
    int jx = s_job_by_id(m, c->job_id);
    if (jx < 0)
        snprintf(err, sizeof err, "no job %s (quern jobs lists them)",
                 c->job_id);
    else if (qn_sched_job_cancel(m->sched, now, jx) < 0)
        snprintf(err, sizeof err, "job %s has already ended", c->job_id);
    r.error = err;
    env.body_case = QUERN__ENVELOPE__BODY_CANCEL_REPLY;
    env.cancel_reply = &r;
    s_send(m, m->in.id, m->in.idlen, &env);
    if (!err[0]) {
        s_actions(m, now); /* the kills go out before the job is closed */
        s_job_finished(m, jx, QUERN__JOB_STATE__JOB_CANCELLED,
                       "cancelled on request", now);
    }
}

/* Every worker as shown to users, in wi[nworkers] (refs: a block to free). */
static void s_workers_fill(qn_master *m, int64_t now, Quern__WorkerInfo *wi,
                           Quern__WorkerInfo **wp, void **mem)
{
    size_t n = (size_t)m->nworkers;
    size_t nrefs = 0;
    for (size_t i = 0; i < n; i++)
        nrefs += qn_sched_worker_busy(m->sched, (int)i);
    /* One block: the refs, then pointers to them. */
    Quern__AttemptRef *refs = qn_calloc(nrefs + 1, sizeof *refs + sizeof refs);
    Quern__AttemptRef **rp = (Quern__AttemptRef **)(refs + nrefs + 1);
    *mem = refs;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        s_worker *w = &m->workers[i];
        quern__worker_info__init(&wi[i]);
        wi[i].worker_id = w->id;
        wi[i].host = w->host;
        wi[i].pid = w->pid;
        wi[i].slots = w->slots;
        wi[i].busy = qn_sched_worker_busy(m->sched, (int)i);
        wi[i].alive = qn_sched_worker_alive(m->sched, (int)i);
        wi[i].heartbeat_age_ms = (uint64_t)(now - w->seen);
        wi[i].shuffle_endpoint = w->endpoint;
        wi[i].failures = w->failures;
        for (size_t d = 0; d < m->cat.n; d++) {
            const qn_dataset *ds = &m->cat.ds[d];
            for (uint32_t k = 0; k < ds->nslots; k++) {
                if (qn_catalog_holds(ds, k, w->id)) {
                    wi[i].shards++;
                    wi[i].shard_bytes += ds->shards[k].size;
                }
            }
        }
        wi[i].rss_peak = w->rss_peak;
        qn_attempt_ref run[64];
        unsigned nr = qn_sched_worker_attempts(m->sched, (int)i, run, 64);
        wi[i].running = rp + used;
        for (unsigned k = 0; k < nr && used < nrefs; k++) {
            Quern__AttemptRef *r = &refs[used];
            quern__attempt_ref__init(r);
            r->job_id = m->jobs[run[k].job].id;
            r->kind = run[k].kind == QN_REDUCE ? QUERN__TASK_KIND__REDUCE
                                               : QUERN__TASK_KIND__MAP;
            r->task = run[k].task;
            r->attempt = run[k].attempt;
            rp[used++] = r;
            wi[i].n_running++;
        }
        wp[i] = &wi[i];
    }
}

static void s_on_workers(qn_master *m, int64_t now)
{
    size_t n = (size_t)m->nworkers;
    Quern__WorkerInfo *wi = qn_calloc(n + 1, sizeof *wi);
    Quern__WorkerInfo **wp = qn_calloc(n + 1, sizeof *wp);
    void *mem = NULL;
    s_workers_fill(m, now, wi, wp, &mem);
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__WorkersReply r = QUERN__WORKERS_REPLY__INIT;
    r.workers = wp;
    r.n_workers = n;
    env.body_case = QUERN__ENVELOPE__BODY_WORKERS_REPLY;
    env.workers_reply = &r;
    s_send(m, m->in.id, m->in.idlen, &env);
    free(mem);
    free(wi);
    free(wp);
}

/* ---- datasets: client requests ------------------------------------------- */

static void s_on_put(qn_master *m, const Quern__PutRequest *rq, int64_t now)
{
    char err[400] = "";
    qn_dataset *d = qn_catalog_get(&m->cat, rq->dataset);
    switch (rq->op) {
    case QUERN__PUT_REQUEST__OP__BEGIN:
        if (!qn_id_ok(rq->dataset))
            snprintf(err, sizeof err,
                     "'%s' is not a dataset name: use up to 64 letters, "
                     "digits, '.', '_' and '-', not starting with '.'",
                     rq->dataset);
        else if (rq->replicas < 1 || rq->replicas > MAX_REPLICAS)
            snprintf(err, sizeof err, "--replicas must be 1 to %d",
                     MAX_REPLICAS);
        else if (d)
            snprintf(err, sizeof err,
                     "dataset %s exists%s; quern rm %s first or choose "
                     "another name",
                     rq->dataset, d->writer ? " (it is being written)" : "",
                     rq->dataset);
        else if (s_data_workers(m) == 0)
            snprintf(err, sizeof err,
                     "no live worker keeps datasets (start workers with "
                     "--data-dir)");
        else {
            s_untombstone(m, rq->dataset);
            qn_catalog_create(&m->cat, rq->dataset, "put", rq->replicas);
            qn_info("master: put of dataset %s begins (%u replicas)",
                    rq->dataset, rq->replicas);
        }
        s_put_reply(m, m->in.id, m->in.idlen, err, NULL, 0);
        return;
    case QUERN__PUT_REQUEST__OP__PLACE: {
        if (!d || !d->writer || strcmp(d->writer, "put") != 0) {
            snprintf(err, sizeof err, "no put of %s is under way", rq->dataset);
            s_put_reply(m, m->in.id, m->in.idlen, err, NULL, 0);
            return;
        }
        /* The live data workers holding the fewest shards, distinct. */
        int chosen[MAX_REPLICAS];
        unsigned n = 0;
        while (n < d->replicas) {
            int best = -1;
            for (int w = 0; w < m->nworkers; w++) {
                s_worker *wk = &m->workers[w];
                if (!wk->has_data || !qn_sched_worker_alive(m->sched, w))
                    continue;
                int skip = 0;
                for (unsigned k = 0; k < n; k++)
                    skip |= chosen[k] == w;
                for (size_t k = 0; k < rq->n_avoid; k++)
                    skip |= strcmp(rq->avoid[k], wk->id) == 0;
                if (skip)
                    continue;
                if (best < 0 || wk->placed < m->workers[best].placed)
                    best = w;
            }
            if (best < 0)
                break;
            chosen[n++] = best;
            m->workers[best].placed++;
        }
        if (n == 0) {
            s_put_reply(m, m->in.id, m->in.idlen,
                        "no live worker that keeps datasets is left to take "
                        "this shard",
                        NULL, 0);
            return;
        }
        Quern__DataSource ds[MAX_REPLICAS], *dp[MAX_REPLICAS];
        for (unsigned k = 0; k < n; k++) {
            quern__data_source__init(&ds[k]);
            ds[k].endpoint = m->workers[chosen[k]].endpoint;
            ds[k].worker_id = m->workers[chosen[k]].id;
            ds[k].curve_public = m->workers[chosen[k]].curve_public;
            dp[k] = &ds[k];
        }
        s_put_reply(m, m->in.id, m->in.idlen, NULL, dp, n);
        return;
    }
    case QUERN__PUT_REQUEST__OP__COMMIT:
        if (!d || !d->writer || strcmp(d->writer, "put") != 0) {
            snprintf(err, sizeof err, "no put of %s is under way", rq->dataset);
            s_put_reply(m, m->in.id, m->in.idlen, err, NULL, 0);
            return;
        }
        m->puts = qn_realloc(m->puts, (m->nputs + 1) * sizeof *m->puts);
        s_put_wait *pw = &m->puts[m->nputs++];
        memset(pw, 0, sizeof *pw);
        snprintf(pw->dataset, sizeof pw->dataset, "%s", rq->dataset);
        memcpy(pw->route, m->in.id, m->in.idlen);
        pw->routelen = m->in.idlen;
        pw->nshards = rq->nshards;
        pw->deadline = now + PUT_COMMIT_MS;
        s_puts_check(m, now);
        return;
    case QUERN__PUT_REQUEST__OP__ABORT:
        if (d && d->writer && strcmp(d->writer, "put") == 0) {
            qn_info("master: put of dataset %s abandoned; dropping its shards",
                    rq->dataset);
            s_drop_everywhere(m, rq->dataset);
        }
        s_put_reply(m, m->in.id, m->in.idlen, NULL, NULL, 0);
        return;
    default: s_put_reply(m, m->in.id, m->in.idlen, "unknown put step", NULL, 0);
    }
}

static void s_dataset_info(qn_master *m, qn_dataset *d, Quern__DatasetInfo *di)
{
    quern__dataset_info__init(di);
    di->name = d->name;
    di->sealed = d->sealed;
    uint32_t n = d->sealed ? d->nshards : 0;
    if (!d->sealed)
        for (uint32_t i = 0; i < d->nslots; i++)
            n += d->shards[i].known;
    di->nshards = n;
    di->bytes = qn_catalog_bytes(d);
    di->writer = d->writer ? d->writer : (char *)"";
    unsigned fewest = UINT32_MAX;
    uint32_t upto = d->sealed ? d->nshards : d->nslots;
    for (uint32_t i = 0; i < upto; i++) {
        unsigned live = s_live_copies(m, d, i);
        if (live < fewest)
            fewest = live;
    }
    di->replicas = upto ? fewest : 0;
}

static void s_on_datasets(qn_master *m, const Quern__DatasetsRequest *rq)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__DatasetsReply r = QUERN__DATASETS_REPLY__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_DATASETS_REPLY;
    env.datasets_reply = &r;
    char err[300];
    if (!rq->dataset[0]) {
        Quern__DatasetInfo *di = qn_calloc(m->cat.n + 1, sizeof *di);
        Quern__DatasetInfo **dp = qn_calloc(m->cat.n + 1, sizeof *dp);
        for (size_t i = 0; i < m->cat.n; i++) {
            s_dataset_info(m, &m->cat.ds[i], &di[i]);
            dp[i] = &di[i];
        }
        r.datasets = dp;
        r.n_datasets = m->cat.n;
        s_send(m, m->in.id, m->in.idlen, &env);
        free(di);
        free(dp);
        return;
    }
    qn_dataset *d = qn_catalog_get(&m->cat, rq->dataset);
    if (!d) {
        snprintf(err, sizeof err, "no dataset %s (quern ls lists them)",
                 rq->dataset);
        r.error = err;
        s_send(m, m->in.id, m->in.idlen, &env);
        return;
    }
    Quern__DatasetInfo di;
    Quern__DatasetInfo *dip = &di;
    s_dataset_info(m, d, &di);
    uint32_t n = d->sealed ? d->nshards : d->nslots;
    Quern__ShardLocation *sl = qn_calloc(n + 1, sizeof *sl);
    Quern__ShardLocation **slp = qn_calloc(n + 1, sizeof *slp);
    Quern__DataSource **srcs = qn_calloc(n + 1, sizeof *srcs);
    for (uint32_t i = 0; i < n; i++) {
        quern__shard_location__init(&sl[i]);
        sl[i].index = i;
        const qn_cshard *sh = qn_catalog_shard(d, i);
        if (sh) {
            sl[i].size = sh->size;
            sl[i].crc = sh->crc;
        }
        sl[i].n_holders = s_sources(m, d, i, &srcs[i], &sl[i].holders);
        slp[i] = &sl[i];
    }
    di.shards = slp;
    di.n_shards = n;
    r.datasets = &dip;
    r.n_datasets = 1;
    s_send(m, m->in.id, m->in.idlen, &env);
    for (uint32_t i = 0; i < n; i++) {
        free(srcs[i]);
        free(sl[i].holders);
    }
    free(srcs);
    free(sl);
    free(slp);
}

static void s_on_drop(qn_master *m, const Quern__DropDataset *rq)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__DropReply r = QUERN__DROP_REPLY__INIT;
    char err[300] = "";
    qn_dataset *d = qn_catalog_get(&m->cat, rq->dataset);
    if (!d) {
        snprintf(err, sizeof err, "no dataset %s (quern ls lists them)",
                 rq->dataset);
    } else if (d->writer && strcmp(d->writer, "put") != 0 &&
               s_job_by_id(m, d->writer) >= 0 &&
               m->jobs[s_job_by_id(m, d->writer)].state ==
                   QUERN__JOB_STATE__JOB_RUNNING) {
        snprintf(err, sizeof err,
                 "dataset %s is being written by job %s; quern cancel %s "
                 "first",
                 rq->dataset, d->writer, d->writer);
    } else {
        qn_info("master: dataset %s removed", rq->dataset);
        s_drop_everywhere(m, rq->dataset);
    }
    r.error = err;
    env.body_case = QUERN__ENVELOPE__BODY_DROP_REPLY;
    env.drop_reply = &r;
    s_send(m, m->in.id, m->in.idlen, &env);
}

/* ---- the loop ------------------------------------------------------------ */

/* ---- the status page, the JSON API and metrics ----------------------------
 */

/* Hand a JSON value to the HTTP server as the reply (steals the ref). */
static void s_json_reply(qn_http_reply *out, unsigned status, json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(1) | JSON_ENSURE_ASCII);
    json_decref(v);
    out->status = status;
    out->type = "application/json";
    if (!text) {
        qn_http_text(out, 500, "application/json", "{}\n", 3);
        return;
    }
    size_t len = strlen(text);
    out->body = qn_malloc(len + 2);
    memcpy(out->body, text, len);
    out->body[len] = '\n';
    out->body[len + 1] = '\0';
    out->len = len + 1;
    free(text);
}

static void s_json_error(qn_http_reply *out, unsigned status, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));
static void s_json_error(qn_http_reply *out, unsigned status, const char *fmt,
                         ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s_json_reply(out, status, json_pack("{s:s}", "error", msg));
}

static json_t *s_api_job(qn_master *m, int jx)
{
    Quern__JobStatus st;
    s_status_mem mem = {0};
    s_status(m, jx, &st, &mem);
    json_t *o = qn_json_job(&st);
    s_status_release(&mem);
    return o;
}

/*
 * A job's tasks, maps then reduces; only those whose state is named in
 * states ("pending,running", NULL: any), at most limit (0: no limit).
 */
static json_t *s_api_tasks(qn_master *m, int jx, const char *states,
                           unsigned long limit, int64_t now)
{
    s_job *j = &m->jobs[jx];
    json_t *a = json_array();
    unsigned long n = 0;
    for (int k = 0; k < 2; k++) {
        unsigned count = k ? j->nreduce : j->nmaps;
        for (unsigned i = 0; i < count && (!limit || n < limit); i++) {
            Quern__TaskInfo ti;
            s_task_info(m, jx, (qn_kind)k, i, now, &ti);
            if (states && !strstr(states, qn_task_state_name(ti.state)))
                continue;
            json_array_append_new(a, qn_json_task(&ti));
            n++;
        }
    }
    return a;
}

static json_t *s_api_workers(qn_master *m, int64_t now)
{
    size_t n = (size_t)m->nworkers;
    Quern__WorkerInfo *wi = qn_calloc(n + 1, sizeof *wi);
    Quern__WorkerInfo **wp = qn_calloc(n + 1, sizeof *wp);
    void *mem = NULL;
    s_workers_fill(m, now, wi, wp, &mem);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, qn_json_worker(&wi[i]));
    free(mem);
    free(wi);
    free(wp);
    return a;
}

/* Jobs by state: [running, succeeded, failed, cancelled]. */
static void s_jobs_by_state(qn_master *m, unsigned out[4])
{
    memset(out, 0, 4 * sizeof *out);
    for (int i = 0; i < m->njobs; i++)
        if (m->jobs[i].state >= 0 && m->jobs[i].state < 4)
            out[m->jobs[i].state]++;
}

/* Workers alive and dead, and the slots of the live ones, busy or not. */
static void s_worker_counts(qn_master *m, unsigned *alive, unsigned *dead,
                            unsigned *slots, unsigned *busy)
{
    *alive = *dead = *slots = *busy = 0;
    for (int w = 0; w < m->nworkers; w++) {
        if (!qn_sched_worker_alive(m->sched, w)) {
            (*dead)++;
            continue;
        }
        (*alive)++;
        *slots += m->workers[w].slots;
        *busy += qn_sched_worker_busy(m->sched, w);
    }
}

static json_t *s_api_cluster(qn_master *m, int64_t now)
{
    unsigned alive, dead, slots, busy, js[4];
    s_worker_counts(m, &alive, &dead, &slots, &busy);
    s_jobs_by_state(m, js);
    return json_pack(
        "{s:s, s:i, s:{s:s, s:s, s:i, s:I, s:I}, s:I,"
        " s:{s:i, s:i}, s:{s:i, s:i, s:i}, s:{s:i, s:i, s:i, s:i},"
        " s:i, s:I, s:I}",
        "version", QN_VERSION, "protocol", QN_PROTOCOL_VERSION, "master",
        "endpoint", m->endpoint, "http", m->http ? qn_http_url(m->http) : "",
        "pid", (int)getpid(), "started_at_ms", (json_int_t)m->start_wall,
        "uptime_ms", (json_int_t)(now - m->start), "now_ms",
        (json_int_t)qn_wall_ms(), "workers", "alive", alive, "dead", dead,
        "slots", "total", slots, "busy", busy, "free",
        slots > busy ? slots - busy : 0, "jobs", "running",
        js[QUERN__JOB_STATE__JOB_RUNNING], "succeeded",
        js[QUERN__JOB_STATE__JOB_SUCCEEDED], "failed",
        js[QUERN__JOB_STATE__JOB_FAILED], "cancelled",
        js[QUERN__JOB_STATE__JOB_CANCELLED], "datasets", (int)m->cat.n,
        "messages_dropped", (json_int_t)m->drops.total, "heartbeats_missed",
        (json_int_t)m->heartbeats_missed);
}

static json_t *s_api_events(qn_master *m, uint64_t since)
{
    json_t *a = json_array();
    for (size_t i = 0; i < m->nevents; i++) {
        const s_evrec *e = &m->events[(m->event_head + i) % EVENTS_KEPT];
        if (e->seq <= since)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
        json_object_set_new(o, "time_ms", json_integer(e->wall));
        json_object_set_new(
            o, "level",
            json_string(qn_log_level_name((enum qn_log_level)e->level)));
        json_object_set_new(o, "kind", json_string(e->kind));
        json_object_set_new(o, "job",
                            e->job[0] ? json_string(e->job) : json_null());
        json_object_set_new(o, "task",
                            e->task[0] ? json_string(e->task) : json_null());
        json_object_set_new(
            o, "attempt", e->attempt ? json_integer(e->attempt) : json_null());
        json_object_set_new(
            o, "worker", e->worker[0] ? json_string(e->worker) : json_null());
        json_object_set_new(o, "message", json_string(e->msg));
        json_array_append_new(a, o);
    }
    return a;
}

/* The sum of one counter over every job the master knows. */
static long long s_counter_sum(qn_master *m, const char *name)
{
    long long sum = 0;
    for (int i = 0; i < m->njobs; i++)
        for (size_t c = 0; c < m->jobs[i].ncounters; c++)
            if (strcmp(m->jobs[i].counters[c].name, name) == 0)
                sum = qn_sat_add(sum, m->jobs[i].counters[c].value);
    return sum;
}

static void s_metric(qn_buf *b, const char *name, const char *type,
                     const char *help)
{
    qn_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void s_metrics(qn_master *m, qn_http_reply *out, int64_t now)
{
    qn_buf b = {0};
    unsigned alive, dead, slots, busy, js[4];
    s_worker_counts(m, &alive, &dead, &slots, &busy);
    s_jobs_by_state(m, js);
    s_metric(&b, "quern_workers", "gauge", "Workers known to the master.");
    qn_buf_printf(&b, "quern_workers{state=\"alive\"} %u\n", alive);
    qn_buf_printf(&b, "quern_workers{state=\"dead\"} %u\n", dead);
    s_metric(&b, "quern_slots", "gauge", "Task slots of live workers.");
    qn_buf_printf(&b, "quern_slots{state=\"busy\"} %u\n", busy);
    qn_buf_printf(&b, "quern_slots{state=\"free\"} %u\n",
                  slots > busy ? slots - busy : 0);
    s_metric(&b, "quern_jobs", "gauge", "Jobs by state.");
    static const char *const jn[] = {"running", "succeeded", "failed",
                                     "cancelled"};
    for (int i = 0; i < 4; i++)
        qn_buf_printf(&b, "quern_jobs{state=\"%s\"} %u\n", jn[i], js[i]);
    /* Tasks of running jobs, by phase and state. */
    unsigned t[2][3] = {{0}};
    for (int i = 0; i < m->njobs; i++) {
        if (m->jobs[i].state != QUERN__JOB_STATE__JOB_RUNNING)
            continue;
        qn_job_info ji = qn_sched_job(m->sched, i);
        t[0][1] += ji.maps_running;
        t[0][2] += ji.maps_done;
        t[0][0] += ji.maps - ji.maps_done - ji.maps_running;
        t[1][1] += ji.reduces_running;
        t[1][2] += ji.reduces_done;
        t[1][0] += ji.reduces - ji.reduces_done - ji.reduces_running;
    }
    s_metric(&b, "quern_tasks", "gauge",
             "Tasks of running jobs by phase and state.");
    for (int k = 0; k < 2; k++)
        for (unsigned s = 0; s < 3; s++)
            qn_buf_printf(&b, "quern_tasks{phase=\"%s\",state=\"%s\"} %u\n",
                          k ? "reduce" : "map", qn_task_state_name(s), t[k][s]);
    s_metric(&b, "quern_attempts_failed_total", "counter",
             "Task attempts that failed, by phase and cause (the task's own "
             "failure, or lost with its worker or to a timeout).");
    for (int k = 0; k < 2; k++) {
        qn_buf_printf(&b,
                      "quern_attempts_failed_total{phase=\"%s\",cause=\"task\"}"
                      " %llu\n",
                      k ? "reduce" : "map",
                      (unsigned long long)m->attempts_failed[k]);
        qn_buf_printf(&b,
                      "quern_attempts_failed_total{phase=\"%s\",cause=\"lost\"}"
                      " %llu\n",
                      k ? "reduce" : "map",
                      (unsigned long long)m->attempts_lost[k]);
    }
    s_metric(&b, "quern_shuffle_bytes_total", "counter",
             "Map output bytes reducers fetched: raw and as sent.");
    qn_buf_printf(&b, "quern_shuffle_bytes_total{form=\"raw\"} %lld\n",
                  s_counter_sum(m, "shuffle_bytes_raw"));
    qn_buf_printf(&b, "quern_shuffle_bytes_total{form=\"compressed\"} %lld\n",
                  s_counter_sum(m, "shuffle_bytes_compressed"));
    s_metric(&b, "quern_heartbeats_missed_total", "counter",
             "Heartbeat intervals in which a live worker was not heard.");
    qn_buf_printf(&b, "quern_heartbeats_missed_total %llu\n",
                  (unsigned long long)m->heartbeats_missed);
    s_metric(&b, "quern_messages_dropped_total", "counter",
             "Messages dropped: malformed, of another protocol version, "
             "invalid (ids, indexes, states the master does not know), or "
             "client requests over one address's rate.");
    for (size_t i = 0; i < QN_ARRAY_LEN(DROP_REASONS); i++)
        qn_buf_printf(&b, "quern_messages_dropped_total{reason=\"%s\"} %llu\n",
                      DROP_REASONS[i],
                      (unsigned long long)m->drops.by_reason[i]);
    uint64_t sdrop = 0;
    for (int w = 0; w < m->nworkers; w++)
        sdrop += m->workers[w].shuffle_dropped;
    s_metric(&b, "quern_shuffle_requests_dropped_total", "counter",
             "Requests the workers' shuffle servers dropped as malformed, of "
             "another protocol version, or not for them (as the workers last "
             "said).");
    qn_buf_printf(&b, "quern_shuffle_requests_dropped_total %llu\n",
                  (unsigned long long)sdrop);
    s_metric(&b, "quern_uptime_seconds", "gauge",
             "Seconds since the master started.");
    qn_buf_printf(&b, "quern_uptime_seconds %.3f\n",
                  (double)(now - m->start) / 1000);
    out->status = 200;
    out->type = "text/plain; version=0.0.4; charset=utf-8";
    out->body = b.data ? b.data : qn_strdup("");
    out->len = b.len;
}

/* Route a GET: the page, the API, metrics. */
static void s_on_http(void *ctx, const qn_http_req *req, qn_http_reply *out)
{
    qn_master *m = ctx;
    const char *path = qn_http_path(req);
    int64_t now = qn_now_ms();
    static const char api[] = "/api/v1/";
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        qn_http_text(out, 200, "text/html; charset=utf-8",
                     (const char *)qn_status_page, qn_status_page_len);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        s_metrics(m, out, now);
        return;
    }
    if (strncmp(path, api, sizeof api - 1) != 0) {
        static const char nf[] = "not found: see / for the page, /api/v1/ "
                                 "for JSON, /metrics for Prometheus\n";
        qn_http_text(out, 404, "text/plain; charset=utf-8", nf, sizeof nf - 1);
        return;
    }
    const char *rest = path + sizeof api - 1;
    if (strcmp(rest, "cluster") == 0) {
        s_json_reply(out, 200, s_api_cluster(m, now));
    } else if (strcmp(rest, "workers") == 0) {
        s_json_reply(out, 200, s_api_workers(m, now));
    } else if (strcmp(rest, "events") == 0) {
        const char *since = qn_http_query(req, "since");
        s_json_reply(out, 200,
                     s_api_events(m, since ? strtoull(since, NULL, 10) : 0));
    } else if (strcmp(rest, "jobs") == 0) {
        json_t *a = json_array();
        for (int i = 0; i < m->njobs; i++)
            json_array_append_new(a, s_api_job(m, i));
        s_json_reply(out, 200, a);
    } else if (strncmp(rest, "jobs/", 5) == 0) {
        char id[64];
        const char *slash = strchr(rest + 5, '/');
        size_t len = slash ? (size_t)(slash - rest - 5) : strlen(rest + 5);
        if (len >= sizeof id) {
            s_json_error(out, 404, "no such job");
            return;
        }
        memcpy(id, rest + 5, len);
        id[len] = '\0';
        qn_utf8_sanitize(id); /* it goes back in the JSON error */
        int jx = s_job_by_id(m, id);
        if (jx < 0) {
            s_json_error(out, 404, "no job %s", id);
        } else if (!slash) {
            s_json_reply(out, 200, s_api_job(m, jx));
        } else if (strcmp(slash, "/tasks") == 0) {
            const char *lim = qn_http_query(req, "limit");
            s_json_reply(out, 200,
                         s_api_tasks(m, jx, qn_http_query(req, "state"),
                                     lim ? strtoul(lim, NULL, 10) : 0, now));
        } else {
            s_json_error(out, 404, "not found: /api/v1/jobs/%s/...", id);
        }
    } else {
        s_json_error(out, 404,
                     "not found: the API has cluster, workers, jobs, "
                     "jobs/ID, jobs/ID/tasks and events");
    }
}

/* ---- quern logs: an attempt's stderr, fetched from its worker ------------ */

static void s_logs_answer(qn_master *m, const char *route, size_t routelen,
                          const Quern__LogsReply *r, const char *error)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__LogsReply lr = QUERN__LOGS_REPLY__INIT;
    if (r)
        lr = *r;
    lr.request = 0;
    if (error)
        lr.error = (char *)error;
    env.body_case = QUERN__ENVELOPE__BODY_LOGS_REPLY;
    env.logs_reply = &lr;
    s_send(m, route, routelen, &env);
}

static void s_on_logs_request(qn_master *m, const Quern__LogsRequest *rq,
                              int64_t now)
{
    char err[400];
    int jx = s_job_by_id(m, rq->job_id);
    qn_kind kind = rq->kind == QUERN__TASK_KIND__REDUCE ? QN_REDUCE : QN_MAP;
    char tn[24];
    qn_task_name(tn, sizeof tn, rq->kind, rq->task);
    if (jx < 0) {
        snprintf(err, sizeof err, "no job %s (quern jobs lists them)",
                 rq->job_id);
        s_logs_answer(m, m->in.id, m->in.idlen, NULL, err);
        return;
    }
    s_job *j = &m->jobs[jx];
    unsigned n = kind == QN_MAP ? j->nmaps : j->nreduce;
    if (rq->task >= n) {
        snprintf(err, sizeof err,
                 "job %s has %u %s tasks (%s0 to %s%u); there is no %s", j->id,
                 n, s_kind(kind), kind == QN_MAP ? "m" : "r",
                 kind == QN_MAP ? "m" : "r", n ? n - 1 : 0, tn);
        s_logs_answer(m, m->in.id, m->in.idlen, NULL, err);
        return;
    }
    s_trec *t = &j->trec[kind][rq->task];
    s_arec *r = NULL;
    if (!rq->attempt && t->n)
        r = &t->a[t->n - 1];
    else if (rq->attempt)
        r = s_arec_find(j, kind, rq->task, rq->attempt);
    if (!r) {
        if (t->n)
            snprintf(err, sizeof err,
                     "%s of job %s has no attempt %u: it had %u (--attempt 1 "
                     "to %u)",
                     tn, j->id, rq->attempt, t->n, t->a[t->n - 1].attempt);
        else
            snprintf(err, sizeof err, "%s of job %s has not started yet", tn,
                     j->id);
        s_logs_answer(m, m->in.id, m->in.idlen, NULL, err);
        return;
    }
    s_worker *w = &m->workers[r->worker];
    if (!qn_sched_worker_alive(m->sched, r->worker)) {
        snprintf(err, sizeof err,
                 "attempt %u of %s ran on worker %s, which is gone (lost or "
                 "left); its stderr went with it. quern status %s shows the "
                 "tail of each failed attempt's stderr",
                 r->attempt, tn, w->id, j->id);
        s_logs_answer(m, m->in.id, m->in.idlen, NULL, err);
        return;
    }
    if (m->nlogs == MAX_LOG_WAITS) {
        s_logs_answer(m, m->in.id, m->in.idlen, NULL,
                      "too many logs requests in flight; try again");
        return;
    }
    m->logs = qn_realloc(m->logs, (m->nlogs + 1) * sizeof *m->logs);
    s_logs_wait *lw = &m->logs[m->nlogs++];
    lw->id = ++m->logs_seq;
    memcpy(lw->route, m->in.id, m->in.idlen);
    lw->routelen = m->in.idlen;
    lw->worker = r->worker;
    lw->deadline = now + LOGS_WAIT_MS;
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__LogsRequest fw = *rq;
    fw.attempt = r->attempt;
    fw.request = lw->id;
    fw.worker_id = w->id;
    fw.max_bytes =
        rq->max_bytes && rq->max_bytes < LOGS_MAX ? rq->max_bytes : LOGS_MAX;
    env.body_case = QUERN__ENVELOPE__BODY_LOGS_REQUEST;
    env.logs_request = &fw;
    s_send(m, w->route, w->routelen, &env);
}

static void s_on_logs_reply(qn_master *m, const Quern__LogsReply *r)
{
    for (size_t i = 0; i < m->nlogs; i++) {
        s_logs_wait *lw = &m->logs[i];
        if (lw->id != r->request)
            continue;
        const s_worker *w = &m->workers[lw->worker];
        if (strcmp(w->id, r->worker_id) != 0 || w->routelen != m->in.idlen ||
            memcmp(w->route, m->in.id, m->in.idlen) != 0) {
            s_drop(m, DROP_INVALID,
                   "logs reply from another peer than the worker asked");
            return;
        }
        s_logs_answer(m, lw->route, lw->routelen, r, NULL);
        m->logs[i] = m->logs[--m->nlogs];
        return;
    }
    qn_debug("master: a logs reply nobody waits for (late?)");
}

/* Answer the logs requests waiting for worker w, which is gone. */
static void s_logs_worker_gone(qn_master *m, int w)
{
    for (size_t i = 0; i < m->nlogs;) {
        s_logs_wait *lw = &m->logs[i];
        if (lw->worker != w) {
            i++;
            continue;
        }
        char err[200];
        snprintf(err, sizeof err,
                 "worker %s was lost before it sent the log; its stderr went "
                 "with it",
                 m->workers[w].id);
        s_logs_answer(m, lw->route, lw->routelen, NULL, err);
        m->logs[i] = m->logs[--m->nlogs];
    }
}

/* Answer the logs requests whose worker did not answer in time. */
static void s_logs_check(qn_master *m, int64_t now)
{
    for (size_t i = 0; i < m->nlogs;) {
        s_logs_wait *lw = &m->logs[i];
        if (now < lw->deadline) {
            i++;
            continue;
        }
        char err[200];
        snprintf(err, sizeof err,
                 "worker %s did not send the log within %d s; try again",
                 m->workers[lw->worker].id, LOGS_WAIT_MS / 1000);
        s_logs_answer(m, lw->route, lw->routelen, NULL, err);
        m->logs[i] = m->logs[--m->nlogs];
    }
}

static int64_t s_logs_due(qn_master *m)
{
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < m->nlogs; i++)
        if (m->logs[i].deadline < due)
            due = m->logs[i].deadline;
    return due;
}

/* Is a message of this kind a client's request (rate-limited per
 * address), rather than a worker's? */
static int s_client_request(Quern__Envelope__BodyCase c)
{
    switch (c) {
    case QUERN__ENVELOPE__BODY_SUBMIT_JOB:
    case QUERN__ENVELOPE__BODY_STATUS_REQUEST:
    case QUERN__ENVELOPE__BODY_CANCEL_JOB:
    case QUERN__ENVELOPE__BODY_WORKERS_REQUEST:
    case QUERN__ENVELOPE__BODY_PUT_REQUEST:
    case QUERN__ENVELOPE__BODY_DATASETS_REQUEST:
    case QUERN__ENVELOPE__BODY_DROP_DATASET:
    case QUERN__ENVELOPE__BODY_LOGS_REQUEST: return 1;
    default: return 0;
    }
}

static int s_running_jobs(const qn_master *m)
{
    int n = 0;
    for (int i = 0; i < m->njobs; i++)
        n += m->jobs[i].state == QUERN__JOB_STATE__JOB_RUNNING;
    return n;
}

static void s_on_message(qn_master *m, int64_t now)
{
    Quern__Envelope *env;
    char err[256];
    uint32_t theirs = 0;
    int rc = qn_wire_decode(m->in.env.data, m->in.env.len, &env, &theirs, err,
                            sizeof err);
    if (rc == -QN_WIRE_EVERSION) {
        /* Never answer a refusal with one: two peers would trade them. */
        int refusal = env && env->body_case == QUERN__ENVELOPE__BODY_REFUSAL;
        qn_wire_free(env);
        Quern__Envelope e;
        Quern__Refusal r;
        qn_wire_refusal(&e, &r, theirs);
        if (!refusal)
            s_send(m, m->in.id, m->in.idlen, &e);
        s_drop(m, DROP_VERSION, err);
        return;
    }
    if (rc < 0) {
        s_drop(m, DROP_MALFORMED, err);
        return;
    }
    if (s_client_request(env->body_case) &&
        !qn_ratelimit_take(&m->rate, m->in.peer, now)) {
        snprintf(err, sizeof err,
                 "%s over the limit of %d client requests a second from one "
                 "address",
                 qn_wire_name(env), CLIENT_RATE);
        s_drop(m, DROP_RATE, err);
        qn_wire_free(env);
        return;
    }
    switch (env->body_case) {
    case QUERN__ENVELOPE__BODY_WORKER_HELLO:
        s_on_hello(m, env->worker_hello, now);
        break;
    case QUERN__ENVELOPE__BODY_HEARTBEAT:
        s_on_heartbeat(m, env->heartbeat, now);
        break;
    case QUERN__ENVELOPE__BODY_TASK_UPDATE:
        s_on_task_update(m, env->task_update, now);
        break;
    case QUERN__ENVELOPE__BODY_SUBMIT_JOB:
        if (s_running_jobs(m) >= MAX_RUNNING_JOBS) {
            snprintf(err, sizeof err,
                     "the master runs %d jobs, the most it takes at once; "
                     "submit again when one has finished",
                     MAX_RUNNING_JOBS);
            s_submit_reply(m, NULL, err);
        } else {
            s_on_submit(m, env->submit_job, now);
        }
        break;
    case QUERN__ENVELOPE__BODY_STATUS_REQUEST:
        s_on_status(m, env->status_request);
        break;
    case QUERN__ENVELOPE__BODY_CANCEL_JOB:
        s_on_cancel(m, env->cancel_job, now);
        break;
    case QUERN__ENVELOPE__BODY_WORKERS_REQUEST: s_on_workers(m, now); break;
    case QUERN__ENVELOPE__BODY_DATA_REPORT:
        s_on_data_report(m, env->data_report, now);
        break;
    case QUERN__ENVELOPE__BODY_PLUGIN_REQUEST:
        s_on_plugin_request(m, env->plugin_request, now);
        break;
    case QUERN__ENVELOPE__BODY_PUT_REQUEST:
        s_on_put(m, env->put_request, now);
        break;
    case QUERN__ENVELOPE__BODY_DATASETS_REQUEST:
        s_on_datasets(m, env->datasets_request);
        break;
    case QUERN__ENVELOPE__BODY_DROP_DATASET:
        s_on_drop(m, env->drop_dataset);
        break;
    case QUERN__ENVELOPE__BODY_LOGS_REQUEST:
        s_on_logs_request(m, env->logs_request, now);
        break;
    case QUERN__ENVELOPE__BODY_LOGS_REPLY:
        s_on_logs_reply(m, env->logs_reply);
        break;
    default: s_drop(m, DROP_INVALID, "a message the master does not take");
    }
    qn_wire_free(env);
    s_actions(m, now);
}

/* When the next status push is due (INT64_MAX if nobody watches). */
static int64_t s_push_due(qn_master *m)
{
    int64_t due = INT64_MAX;
    for (int i = 0; i < m->njobs; i++) {
        s_job *j = &m->jobs[i];
        if (!j->nwatchers)
            continue;
        int64_t d = j->last_push + (j->dirty ? PUSH_MIN_MS : PUSH_MAX_MS);
        if (d < due)
            due = d;
    }
    return due;
}

/* Whatever falls due by now: uploads and log requests that timed out, the
 * scheduler's deadlines, status pushed to the clients that watch a job. */
static void s_timers(qn_master *m, int64_t now)
{
    if (now >= s_puts_due(m))
        s_puts_check(m, now);
    if (now >= s_logs_due(m))
        s_logs_check(m, now);
    if (now >= qn_sched_deadline(m->sched)) {
        qn_sched_tick(m->sched, now);
        s_actions(m, now);
    }
    for (int i = 0; i < m->njobs; i++) {
        s_job *j = &m->jobs[i];
        if (j->nwatchers &&
            now >= j->last_push + (j->dirty ? PUSH_MIN_MS : PUSH_MAX_MS))
            s_push(m, i, now);
    }
}

int qn_master_run(qn_master *m)
{
    qn_info("master: listening on %s", m->endpoint);
    if (m->http)
        qn_info("master: status page on %s", qn_http_url(m->http));
    if (m->cfg.ready_fd >= 0) {
        /* The endpoint, then the status page's URL ("-" if none). */
        qn_buf b = {0};
        qn_buf_printf(&b, "%s\n%s\n", m->endpoint,
                      m->http ? qn_http_url(m->http) : "-");
        qn_write_all(m->cfg.ready_fd, b.data, b.len);
        qn_buf_release(&b);
        close(m->cfg.ready_fd);
    }
    while (!m->stop) {
        zmq_pollitem_t items[4] = {
            {.socket = m->sock, .events = ZMQ_POLLIN},
            {.fd = m->sigfd, .events = ZMQ_POLLIN},
            {.socket = m->zap ? qn_zap_socket(m->zap) : NULL,
             .fd = -1,
             .events = m->zap ? ZMQ_POLLIN : 0},
            /* The status page: its sockets, all behind one epoll fd. */
            {.fd = m->http ? qn_http_fd(m->http) : -1,
             .events = m->http ? ZMQ_POLLIN : 0},
        };
        int64_t now = qn_now_ms();
        int64_t due = qn_sched_deadline(m->sched);
        int64_t push = s_push_due(m);
        if (push < due)
            due = push;
        if (s_puts_due(m) < due)
            due = s_puts_due(m);
        if (s_logs_due(m) < due)
            due = s_logs_due(m);
        long timeout = -1;
        if (due != INT64_MAX)
            timeout = due > now ? (long)(due - now) : 0;
        long ht = m->http ? qn_http_timeout(m->http) : -1;
        if (ht >= 0 && (timeout < 0 || ht < timeout))
            timeout = ht;
        if (zmq_poll(items, m->http ? 4 : 3, timeout) < 0 && errno != EINTR) {
            qn_error("master: poll: %s", zmq_strerror(errno));
            return 1;
        }
        if (items[1].revents & ZMQ_POLLIN)
            qn_signals_read(m->sigfd, &m->stop, NULL);
        if (items[2].revents & ZMQ_POLLIN)
            qn_zap_handle(m->zap);
        if (items[0].revents & ZMQ_POLLIN) {
            for (int budget = 0; budget < 1000; budget++) {
                int r = qn_wire_recv(m->sock, 1, &m->in);
                if (r == 0)
                    break;
                if (r < 0) {
                    s_drop(m, DROP_MALFORMED, "malformed multipart message");
                    continue;
                }
                s_on_message(m, qn_now_ms());
            }
        }
        /* Pages are served between messages, from the state as it is. */
        if (m->http)
            qn_http_run(m->http);
        s_timers(m, qn_now_ms());
    }
    qn_info("master: stopping");
    return 0;
}

void qn_master_feed(qn_master *m, const char *peer, const void *id,
                    size_t idlen, const void *msg, size_t len, int64_t now)
{
    m->in.idlen = idlen < sizeof m->in.id ? idlen : sizeof m->in.id;
    memcpy(m->in.id, id, m->in.idlen);
    snprintf(m->in.peer, sizeof m->in.peer, "%s", peer ? peer : "");
    m->in.env.len = 0;
    qn_buf_add(&m->in.env, msg, len);
    m->in.data.len = 0;
    m->in.has_data = 0;
    s_on_message(m, now);
    s_timers(m, now);
}
