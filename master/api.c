/*
 * api.c -- see api.h.
 */
#include "api.h"

#include "mstate.h"
#include "send.h"
#include "status.h"
#include "statusjson.h"
#include "util.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The page, compiled in from master/status.html (Makefile). */
extern const unsigned char qn_status_page[];
extern const size_t qn_status_page_len;

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

static json_t *s_api_job(qn_master *m, int jx, int64_t now)
{
    Quern__JobStatus st;
    qn_status_mem mem = {0};
    qn_status_job(m, jx, now, &st, &mem);
    json_t *o = qn_json_job(&st);
    qn_status_release(&mem);
    return o;
}

/*
 * A job's tasks, maps then reduces; only those whose state is named in
 * states ("pending,running", NULL: any), at most limit (0: no limit).
 */
static json_t *s_api_tasks(qn_master *m, int jx, const char *states,
                           unsigned long limit, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    json_t *a = json_array();
    unsigned long n = 0;
    for (int k = 0; k < 2; k++) {
        unsigned count = k ? j->nreduce : j->nmaps;
        for (unsigned i = 0; i < count && (!limit || n < limit); i++) {
            Quern__TaskInfo ti;
            qn_status_task(m, jx, (qn_kind)k, i, now, &ti);
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
    qn_workers_view v = {0};
    qn_status_workers(m, now, &v);
    json_t *a = json_array();
    for (size_t i = 0; i < v.n; i++)
        json_array_append_new(a, qn_json_worker(&v.wi[i]));
    qn_status_workers_release(&v);
    return a;
}

static json_t *s_api_cluster(qn_master *m, int64_t now)
{
    unsigned alive, dead, slots, busy, js[4], draining, drained;
    qn_workers_counts(&m->workers, &alive, &dead, &slots, &busy);
    qn_status_drain_counts(m, &draining, &drained);
    qn_jobs_by_state(&m->jobs, js);
    json_t *c = json_pack(
        "{s:s, s:i, s:{s:s, s:s, s:i, s:I, s:I}, s:I,"
        " s:{s:i, s:i, s:i, s:i}, s:{s:i, s:i, s:i}, s:{s:i, s:i, s:i, s:i},"
        " s:i, s:I, s:I}",
        "version", QN_VERSION, "protocol", QN_PROTOCOL_VERSION, "master",
        "endpoint", m->net.endpoint, "http",
        m->net.http ? qn_http_url(m->net.http) : "", "pid", (int)getpid(),
        "started_at_ms", (json_int_t)m->stats.start_wall, "uptime_ms",
        (json_int_t)(now - m->stats.start), "now_ms",
        (json_int_t)qn_master_wall(m, now), "workers", "alive", alive, "dead",
        dead, "draining", draining, "drained", drained, "slots", "total", slots,
        "busy", busy, "free", slots > busy ? slots - busy : 0, "jobs",
        "running", js[QUERN__JOB_STATE__JOB_RUNNING], "succeeded",
        js[QUERN__JOB_STATE__JOB_SUCCEEDED], "failed",
        js[QUERN__JOB_STATE__JOB_FAILED], "cancelled",
        js[QUERN__JOB_STATE__JOB_CANCELLED], "datasets", (int)m->data.cat.n,
        "messages_dropped", (json_int_t)m->net.drops.total, "heartbeats_missed",
        (json_int_t)m->stats.heartbeats_missed);
    /* Datasets' health: shards short of copies and the copies mending
     * them, as /metrics has them. */
    json_object_set_new(c, "replicas",
                        json_pack("{s:i, s:i, s:I, s:I, s:I, s:I}",
                                  "shards_under_replicated", (int)m->heal.under,
                                  "shards_lost", (int)m->heal.lost,
                                  "copies_in_flight", (json_int_t)m->heal.nbusy,
                                  "copies_made", (json_int_t)m->heal.copies,
                                  "bytes_copied", (json_int_t)m->heal.bytes,
                                  "scrub_errors", (json_int_t)m->heal.damaged));
    return c;
}

/* The sum of one counter over every job the master knows. */
static long long s_counter_sum(qn_master *m, const char *name)
{
    long long sum = 0;
    for (size_t i = 0; i < m->jobs.n; i++)
        sum = qn_sat_add(sum, qn_job_counter(&m->jobs.v[i], name));
    return sum;
}

static void s_metric(qn_buf *b, const char *name, const char *type,
                     const char *help)
{
    qn_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The gauges: workers, slots, jobs and tasks as they are now. */
static void s_metrics_gauges(qn_master *m, qn_buf *b)
{
    unsigned alive, dead, slots, busy, js[4], draining, drained;
    qn_workers_counts(&m->workers, &alive, &dead, &slots, &busy);
    qn_status_drain_counts(m, &draining, &drained);
    qn_jobs_by_state(&m->jobs, js);
    s_metric(b, "quern_workers", "gauge",
             "Workers known to the master (draining and drained are alive "
             "too).");
    qn_buf_printf(b, "quern_workers{state=\"alive\"} %u\n", alive);
    qn_buf_printf(b, "quern_workers{state=\"dead\"} %u\n", dead);
    qn_buf_printf(b, "quern_workers{state=\"draining\"} %u\n", draining);
    qn_buf_printf(b, "quern_workers{state=\"drained\"} %u\n", drained);
    s_metric(b, "quern_slots", "gauge", "Task slots of live workers.");
    qn_buf_printf(b, "quern_slots{state=\"busy\"} %u\n", busy);
    qn_buf_printf(b, "quern_slots{state=\"free\"} %u\n",
                  slots > busy ? slots - busy : 0);
    s_metric(b, "quern_jobs", "gauge", "Jobs by state.");
    static const char *const jn[] = {"running", "succeeded", "failed",
                                     "cancelled"};
    for (int i = 0; i < 4; i++)
        qn_buf_printf(b, "quern_jobs{state=\"%s\"} %u\n", jn[i], js[i]);
    /* Tasks of running jobs, by phase and state. */
    unsigned t[2][3] = {{0}};
    for (size_t i = 0; i < m->jobs.n; i++) {
        if (m->jobs.v[i].state != QUERN__JOB_STATE__JOB_RUNNING)
            continue;
        qn_job_info ji = qn_sched_job(m->sched, (int)i);
        t[0][1] += ji.maps_running;
        t[0][2] += ji.maps_done;
        t[0][0] += ji.maps - ji.maps_done - ji.maps_running;
        t[1][1] += ji.reduces_running;
        t[1][2] += ji.reduces_done;
        t[1][0] += ji.reduces - ji.reduces_done - ji.reduces_running;
    }
    s_metric(b, "quern_tasks", "gauge",
             "Tasks of running jobs by phase and state.");
    for (int k = 0; k < 2; k++)
        for (unsigned s = 0; s < 3; s++)
            qn_buf_printf(b, "quern_tasks{phase=\"%s\",state=\"%s\"} %u\n",
                          k ? "reduce" : "map", qn_task_state_name(s), t[k][s]);
}

/* Dataset shards short of copies, and the copies made to mend them. */
static void s_metrics_replicas(qn_master *m, qn_buf *b)
{
    s_metric(b, "quern_shards_under_replicated", "gauge",
             "Dataset shards with fewer live copies than they want.");
    qn_buf_printf(b, "quern_shards_under_replicated %u\n", m->heal.under);
    s_metric(b, "quern_shards_lost", "gauge",
             "Dataset shards with no live copy.");
    qn_buf_printf(b, "quern_shards_lost %u\n", m->heal.lost);
    s_metric(b, "quern_replica_copies_in_flight", "gauge",
             "Copies of dataset shards between workers under way.");
    qn_buf_printf(b, "quern_replica_copies_in_flight %zu\n", m->heal.nbusy);
    s_metric(b, "quern_replica_bytes_total", "counter",
             "Bytes of dataset shards copied to mend their copies.");
    qn_buf_printf(b, "quern_replica_bytes_total %llu\n",
                  (unsigned long long)m->heal.bytes);
    s_metric(b, "quern_replica_copies_total", "counter",
             "Copies of dataset shards made, failed, and dropped as surplus.");
    qn_buf_printf(b, "quern_replica_copies_total{result=\"made\"} %llu\n",
                  (unsigned long long)m->heal.copies);
    qn_buf_printf(b, "quern_replica_copies_total{result=\"failed\"} %llu\n",
                  (unsigned long long)m->heal.failures);
    qn_buf_printf(b, "quern_replica_copies_total{result=\"dropped\"} %llu\n",
                  (unsigned long long)m->heal.drops);
    s_metric(b, "quern_scrub_errors_total", "counter",
             "Copies of dataset shards workers found damaged (scrubbing, or "
             "a map reading one) and dropped.");
    qn_buf_printf(b, "quern_scrub_errors_total %llu\n",
                  (unsigned long long)m->heal.damaged);
}

/* The counters: attempts failed, shuffle bytes, heartbeats missed,
 * messages dropped. */
static void s_metrics_totals(qn_master *m, qn_buf *b)
{
    s_metric(b, "quern_attempts_failed_total", "counter",
             "Task attempts that failed, by phase and cause (the task's own "
             "failure, or lost with its worker or to a timeout).");
    for (int k = 0; k < 2; k++) {
        qn_buf_printf(b,
                      "quern_attempts_failed_total{phase=\"%s\",cause=\"task\"}"
                      " %llu\n",
                      k ? "reduce" : "map",
                      (unsigned long long)m->stats.attempts_failed[k]);
        qn_buf_printf(b,
                      "quern_attempts_failed_total{phase=\"%s\",cause=\"lost\"}"
                      " %llu\n",
                      k ? "reduce" : "map",
                      (unsigned long long)m->stats.attempts_lost[k]);
    }
    s_metric(b, "quern_shuffle_bytes_total", "counter",
             "Map output bytes reducers fetched: raw and as sent.");
    qn_buf_printf(b, "quern_shuffle_bytes_total{form=\"raw\"} %lld\n",
                  s_counter_sum(m, "shuffle_bytes_raw"));
    qn_buf_printf(b, "quern_shuffle_bytes_total{form=\"compressed\"} %lld\n",
                  s_counter_sum(m, "shuffle_bytes_compressed"));
    s_metric(b, "quern_heartbeats_missed_total", "counter",
             "Heartbeat intervals in which a live worker was not heard.");
    qn_buf_printf(b, "quern_heartbeats_missed_total %llu\n",
                  (unsigned long long)m->stats.heartbeats_missed);
    s_metric(b, "quern_messages_dropped_total", "counter",
             "Messages dropped: malformed, of another protocol version, "
             "invalid (ids, indexes, states the master does not know), or "
             "client requests over one address's rate.");
    for (size_t i = 0; i < QN_ARRAY_LEN(qn_drop_reasons); i++)
        qn_buf_printf(b, "quern_messages_dropped_total{reason=\"%s\"} %llu\n",
                      qn_drop_reasons[i],
                      (unsigned long long)m->net.drops.by_reason[i]);
    uint64_t sdrop = 0;
    for (int w = 0; w < m->workers.n; w++)
        sdrop += m->workers.v[w].shuffle_dropped;
    s_metric(b, "quern_shuffle_requests_dropped_total", "counter",
             "Requests the workers' shuffle servers dropped as malformed, of "
             "another protocol version, or not for them (as the workers last "
             "said).");
    qn_buf_printf(b, "quern_shuffle_requests_dropped_total %llu\n",
                  (unsigned long long)sdrop);
}

static void s_metrics(qn_master *m, qn_http_reply *out, int64_t now)
{
    qn_buf b = {0};
    s_metrics_gauges(m, &b);
    s_metrics_totals(m, &b);
    s_metrics_replicas(m, &b);
    s_metric(&b, "quern_uptime_seconds", "gauge",
             "Seconds since the master started.");
    qn_buf_printf(&b, "quern_uptime_seconds %.3f\n",
                  (double)(now - m->stats.start) / 1000);
    out->status = 200;
    out->type = "text/plain; version=0.0.4; charset=utf-8";
    out->body = b.data ? b.data : qn_strdup("");
    out->len = b.len;
}

/* Route a GET: the page, the API, metrics. */
void qn_api_on_http(void *ctx, const qn_http_req *req, qn_http_reply *out)
{
    qn_master *m = ctx;
    const char *path = qn_http_path(req);
    int64_t now = m->now; /* the loop turn's clock */
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
        s_json_reply(
            out, 200,
            qn_evring_json(&m->events, since ? strtoull(since, NULL, 10) : 0));
    } else if (strcmp(rest, "jobs") == 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < m->jobs.n; i++)
            json_array_append_new(a, s_api_job(m, (int)i, now));
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
        int jx = qn_jobs_find(&m->jobs, id);
        if (jx < 0) {
            s_json_error(out, 404, "no job %s", id);
        } else if (!slash) {
            s_json_reply(out, 200, s_api_job(m, jx, now));
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
