/*
 * identity.c -- see identity.h.
 */
#include "identity.h"

#include "quern.pb-c.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#define ID_FILE_MAX 4096 /* a kept identity is far smaller */

/* Replace what ids may not hold (qn_id_ok) with '-'. */
static void s_sanitize(char *id)
{
    for (char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-'))
            *p = '-';
}

void qn_identity_fresh(const char *host, qn_identity *out)
{
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        rnd = (uint32_t)(qn_wall_ms() ^ ((int64_t)getpid() << 16));
    /* The pid of the process that made it stays in it across restarts:
     * it names the worker, not the process (see incarnation). */
    snprintf(out->id, sizeof out->id, "w-%.24s-%d-%04x", host, (int)getpid(),
             rnd & 0xffff);
    s_sanitize(out->id);
    out->incarnation = 1;
    out->lock_fd = -1;
}

/* Lock WORK/worker.lock for good (until exit) and write our pid in it;
 * -1 with err naming the holder when another process has it. */
static int s_lock(const char *work_dir, qn_identity *out, char *err,
                  size_t errcap)
{
    qn_buf p = {0};
    qn_buf_printf(&p, "%s/worker.lock", work_dir);
    int fd = open(p.data, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", p.data, strerror(errno));
        qn_buf_release(&p);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            snprintf(err, errcap,
                     "work dir %s is in use by another quern-worker (pid "
                     "%s); give each worker its own --work-dir",
                     work_dir, pid[0] ? pid : "unknown");
        else
            snprintf(err, errcap, "cannot lock %s: %s", p.data, strerror(e));
        close(fd);
        qn_buf_release(&p);
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    int rc =
        ftruncate(fd, 0) < 0 ? -errno : qn_pwrite_all(fd, pid, (size_t)len, 0);
    if (rc < 0) {
        snprintf(err, errcap, "cannot write %s: %s", p.data, strerror(-rc));
        close(fd);
        qn_buf_release(&p);
        return -1;
    }
    qn_buf_release(&p);
    out->lock_fd = fd;
    return 0;
}

/* The identity kept at path: 1 if read (into out), 0 if there is none,
 * -1 with err said if it is there but unreadable or damaged. */
static int s_read(const char *path, qn_identity *out, char *err, size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t buf[ID_FILE_MAX];
    ssize_t n = read(fd, buf, sizeof buf);
    int e = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(e));
        return -1;
    }
    Quern__WorkerIdentity *wi =
        n > 0 && n < (ssize_t)sizeof buf
            ? quern__worker_identity__unpack(NULL, (size_t)n, buf)
            : NULL;
    if (!wi || !qn_id_ok(wi->worker_id) ||
        strlen(wi->worker_id) >= sizeof out->id) {
        snprintf(err, errcap,
                 "%s is damaged (%zd bytes that are not a worker identity); "
                 "remove it to start as a new worker",
                 path, n);
        if (wi)
            quern__worker_identity__free_unpacked(wi, NULL);
        return -1;
    }
    snprintf(out->id, sizeof out->id, "%s", wi->worker_id);
    out->incarnation = wi->incarnation + 1;
    quern__worker_identity__free_unpacked(wi, NULL);
    return 1;
}

int qn_identity_take(const char *work_dir, const char *host, qn_identity *out,
                     char *err, size_t errcap)
{
    out->lock_fd = -1;
    if (s_lock(work_dir, out, err, errcap) < 0)
        return -1;
    qn_buf p = {0};
    qn_buf_printf(&p, "%s/worker.id", work_dir);
    int fd = out->lock_fd;
    int rc = s_read(p.data, out, err, errcap);
    if (rc == 0)
        qn_identity_fresh(host, out);
    out->lock_fd = fd;
    if (rc >= 0) {
        Quern__WorkerIdentity wi = QUERN__WORKER_IDENTITY__INIT;
        wi.worker_id = out->id;
        wi.incarnation = out->incarnation;
        uint8_t buf[ID_FILE_MAX];
        size_t n = quern__worker_identity__pack(&wi, buf);
        int e = qn_write_file_atomic(p.data, buf, n);
        if (e < 0) {
            snprintf(err, errcap, "cannot write %s: %s", p.data, strerror(-e));
            rc = -1;
        }
    }
    qn_buf_release(&p);
    if (rc < 0)
        qn_identity_release(out);
    return rc < 0 ? -1 : 0;
}

void qn_identity_release(qn_identity *id)
{
    if (id->lock_fd >= 0)
        close(id->lock_fd);
    id->lock_fd = -1;
}
