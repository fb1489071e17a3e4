/*
 * broker.c -- see broker.h.
 */
#include "broker.h"

#include "maptask.h"
#include "reducetask.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define BROKER_MSG_MAX (256u << 20) /* a reply is far smaller */

/* ---- framing ------------------------------------------------------------- */

/* Send len bytes of msg, with fd attached when fd >= 0. 0 or -1. */
static int s_send(int sock, const void *msg, size_t len, int fd)
{
    uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 24)};
    struct iovec iov = {.iov_base = hdr, .iov_len = sizeof hdr};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctrl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&ctrl, 0, sizeof ctrl);
        mh.msg_control = ctrl.buf;
        mh.msg_controllen = sizeof ctrl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof hdr)
        return -1;
    return qn_write_all(sock, msg, len) < 0 ? -1 : 0;
}

/* Read exactly len bytes. 0, 1 at a clean end before any, -1. */
static int s_read_exact(int sock, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(sock, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 && got == 0 ? 1 : -1;
        got += (size_t)n;
    }
    return 0;
}

/* Receive one message into *msg (malloc'd, *len bytes) and, if one came
 * with it, a descriptor into *fd (else -1). 0, 1 at a clean end, -1. */
static int s_recv(int sock, uint8_t **msg, size_t *len, int *fd)
{
    uint8_t hdr[4];
    struct iovec iov = {.iov_base = hdr, .iov_len = sizeof hdr};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctrl;
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctrl.buf,
                        .msg_controllen = sizeof ctrl.buf};
    *fd = -1;
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        return 1;
    /* One descriptor is taken; any more sent along are closed. */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n > 0 && c;
         c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof got, sizeof got);
            if (*fd < 0)
                *fd = got;
            else
                close(got);
        }
    }
    if (n != (ssize_t)sizeof hdr)
        return -1;
    *len = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 |
           (size_t)hdr[3] << 24;
    if (*len > BROKER_MSG_MAX)
        return -1;
    *msg = qn_malloc(*len ? *len : 1);
    if (s_read_exact(sock, *msg, *len) != 0) {
        free(*msg);
        *msg = NULL;
        return -1;
    }
    return 0;
}

/* ---- the broker's side --------------------------------------------------- */

/* What t counted since the last reply, into r (names borrowed from t; the
 * caller zeroes the counters once sent). ptrs and cs hold t->counters.n
 * entries. */
static void s_counted(quern_task *t, Quern__Prefetched *r,
                      Quern__Counter **ptrs, Quern__Counter *cs)
{
    r->counters = ptrs;
    r->n_counters = qn_task_counters_wire(t, ptrs, cs);
}

/* The reply to a fetch: every segment, or the failure. */
static void s_fetch_reply(quern_task *t, Quern__Prefetched *r,
                          Quern__FetchedSegment ***segp)
{
    char **segs = NULL, **names = NULL;
    qn_fetched *from = NULL;
    size_t n = 0;
    if (qn_fetch_segments(t, &segs, &names, &from, &n) < 0)
        r->error = t->fail;
    Quern__FetchedSegment **v = qn_calloc(n + 1, sizeof *v);
    for (size_t i = 0; !r->error[0] && i < n; i++) {
        v[i] = qn_calloc(1, sizeof **v);
        quern__fetched_segment__init(v[i]);
        v[i]->path = segs[i];
        v[i]->name = names[i];
        v[i]->map = from[i].map;
        v[i]->attempt = from[i].attempt;
    }
    r->segments = v;
    r->n_segments = r->error[0] ? 0 : n;
    free(segs); /* the strings live until the broker exits */
    free(names);
    *segp = v;
}

/* A failed reduce's output file, which its sandbox keeps it from. */
static void s_drop_output(quern_task *t)
{
    qn_buf p = {0};
    qn_reduce_output_path(t->spec, &p);
    unlink(p.data);
    qn_buf_release(&p);
}

/* Serve requests on sock until the task closes its end; never returns. */
static void s_serve(quern_task *t, int sock)
{
    for (;;) {
        uint8_t *msg = NULL;
        size_t len = 0;
        int fd_in;
        int got = s_recv(sock, &msg, &len, &fd_in);
        if (fd_in >= 0)
            close(fd_in);
        if (got != 0)
            _exit(got == 1 ? 0 : 1);
        Quern__BrokerRequest *rq =
            quern__broker_request__unpack(NULL, len, msg);
        free(msg);
        if (!rq)
            _exit(1);
        Quern__Prefetched r = QUERN__PREFETCHED__INIT;
        Quern__FetchedSegment **segs = NULL;
        int fd = -1, local = 1;
        t->fail[0] = '\0';
        if (rq->drop_output && t->spec->kind == QUERN__TASK_KIND__REDUCE)
            s_drop_output(t);
        else if (rq->fetch && t->spec->kind == QUERN__TASK_KIND__REDUCE)
            s_fetch_reply(t, &r, &segs);
        else if (!rq->fetch && rq->piece < t->spec->n_inputs &&
                 t->spec->kind == QUERN__TASK_KIND__MAP)
            fd = qn_map_open_piece(t, rq->piece, &local);
        else
            qn_task_failf(t, "the broker was asked for what is not this "
                             "task's");
        if (!rq->fetch && !rq->drop_output)
            r.error = fd < 0 ? t->fail : (char *)"";
        r.local = local != 0;
        Quern__Counter **ptrs = qn_calloc(t->counters.n + 1, sizeof *ptrs);
        Quern__Counter *cs = qn_calloc(t->counters.n + 1, sizeof *cs);
        s_counted(t, &r, ptrs, cs);
        size_t n = quern__prefetched__get_packed_size(&r);
        uint8_t *out = qn_malloc(n ? n : 1);
        quern__prefetched__pack(&r, out);
        int sent = s_send(sock, out, n, fd);
        for (size_t i = 0; i < t->counters.n; i++)
            t->counters.v[i].value = 0; /* told */
        free(out);
        free(ptrs);
        free(cs);
        if (fd >= 0)
            close(fd);
        for (size_t i = 0; segs && i < r.n_segments; i++)
            free(segs[i]);
        free(segs);
        quern__broker_request__free_unpacked(rq, NULL);
        if (sent < 0)
            _exit(1);
    }
}

pid_t qn_broker_start(quern_task *t)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        qn_task_failf(t, "cannot start the task's broker: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        qn_task_failf(t, "cannot start the task's broker: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* it outlives no task */
        if (getppid() == 1)
            _exit(1);
        s_serve(t, sv[1]);
    }
    close(sv[1]);
    t->broker_fd = sv[0];
    t->open_piece = qn_broker_open;
    t->fetch = qn_broker_fetch;
    t->drop_output = qn_broker_drop_output;
    return pid;
}

/* ---- the task's side ----------------------------------------------------- */

/* Ask the broker; its reply into *r (caller frees), a descriptor into *fd
 * (may be NULL: none expected). 0, or -1 with t->fail set. */
static int s_ask(quern_task *t, const Quern__BrokerRequest *rq,
                 Quern__Prefetched **r, int *fd)
{
    size_t n = quern__broker_request__get_packed_size(rq);
    uint8_t *out = qn_malloc(n ? n : 1);
    quern__broker_request__pack(rq, out);
    int rc = s_send(t->broker_fd, out, n, -1);
    free(out);
    uint8_t *msg = NULL;
    size_t len = 0;
    int got_fd = -1;
    if (rc == 0)
        rc = s_recv(t->broker_fd, &msg, &len, &got_fd) == 0 ? 0 : -1;
    *r = rc == 0 ? quern__prefetched__unpack(NULL, len, msg) : NULL;
    free(msg);
    if (!*r) {
        if (got_fd >= 0)
            close(got_fd);
        return qn_task_failf(t, "the task's broker did not answer (it "
                                "died, or its reply was not readable)");
    }
    for (size_t i = 0; i < (*r)->n_counters; i++) {
        const Quern__Counter *c = (*r)->counters[i];
        size_t k = 0;
        while (k < t->counters.nfixed &&
               strcmp(t->counters.v[k].name, c->name) != 0)
            k++;
        if (k < t->counters.nfixed)
            t->counters.v[k].value += c->value;
        else
            qn_counters_add(&t->counters, "", c->name, c->value);
    }
    if (fd)
        *fd = got_fd;
    else if (got_fd >= 0)
        close(got_fd);
    if ((*r)->error[0]) {
        qn_task_failf(t, "%s", (*r)->error);
        return -1;
    }
    return 0;
}

int qn_broker_open(quern_task *t, size_t index, int *local)
{
    Quern__BrokerRequest rq = QUERN__BROKER_REQUEST__INIT;
    rq.piece = (uint32_t)index;
    Quern__Prefetched *r = NULL;
    int fd = -1;
    int rc = s_ask(t, &rq, &r, &fd);
    if (rc == 0 && fd < 0)
        rc = qn_task_failf(t,
                           "the task's broker sent no descriptor for "
                           "input %zu",
                           index);
    if (r)
        *local = r->local;
    if (r)
        quern__prefetched__free_unpacked(r, NULL);
    if (rc < 0 && fd >= 0)
        close(fd);
    return rc < 0 ? -1 : fd;
}

void qn_broker_drop_output(quern_task *t)
{
    Quern__BrokerRequest rq = QUERN__BROKER_REQUEST__INIT;
    rq.drop_output = 1;
    Quern__Prefetched *r = NULL;
    s_ask(t, &rq, &r, NULL);
    if (r)
        quern__prefetched__free_unpacked(r, NULL);
}

int qn_broker_fetch(quern_task *t, char ***segs, char ***names,
                    qn_fetched **from, size_t *nsegs)
{
    Quern__BrokerRequest rq = QUERN__BROKER_REQUEST__INIT;
    rq.fetch = 1;
    Quern__Prefetched *r = NULL;
    int rc = s_ask(t, &rq, &r, NULL);
    size_t n = rc == 0 ? r->n_segments : 0;
    *segs = qn_calloc(n + 1, sizeof **segs);
    *names = qn_calloc(n + 1, sizeof **names);
    *from = qn_calloc(n + 1, sizeof **from);
    for (size_t i = 0; i < n; i++) {
        const Quern__FetchedSegment *s = r->segments[i];
        (*segs)[i] = qn_strdup(s->path);
        (*names)[i] = qn_strdup(s->name);
        (*from)[i].path = qn_strdup(s->path);
        (*from)[i].map = s->map;
        (*from)[i].attempt = s->attempt;
    }
    *nsegs = n;
    if (r)
        quern__prefetched__free_unpacked(r, NULL);
    return rc;
}
