/*
 * store.c -- see store.h.
 */
#include "store.h"

#include "log.h"
#include "quern.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CRC_BUF (1024 * 1024)

typedef struct {
    char token[72];
    char *path;
    int fd;
    char dataset[72];
    uint32_t index;
    uint64_t offset; /* bytes written so far */
    uint32_t crc;
    int64_t used;
} s_upload;

struct qn_store {
    char *dir;
    qn_shard *shards;
    size_t n, cap;
    s_upload *ups;
    size_t nups, cap_ups;
    qn_shard *added, *removed; /* changes not yet taken */
    size_t nadded, cap_added, nremoved, cap_removed;
    qn_shard *damaged; /* dropped as damaged, not yet taken */
    size_t ndamaged, cap_damaged;
    unsigned seq; /* for temp names */
};

int qn_file_crc(const char *path, uint64_t *size, uint32_t *crc)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    unsigned char *buf = qn_malloc(CRC_BUF);
    uLong c = crc32(0L, Z_NULL, 0);
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t got = read(fd, buf, CRC_BUF);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            break;
        }
        if (got == 0)
            break;
        c = crc32(c, buf, (uInt)got);
        total += (uint64_t)got;
    }
    free(buf);
    close(fd);
    *size = total;
    *crc = (uint32_t)c;
    return rc;
}

static void s_meta_path(const qn_store *s, const char *dataset, uint32_t index,
                        qn_buf *out)
{
    out->len = 0;
    qn_buf_printf(out, "%s/%s/part-%05u.meta", s->dir, dataset, index);
}

void qn_store_path(const qn_store *s, const char *dataset, uint32_t index,
                   qn_buf *out)
{
    out->len = 0;
    qn_buf_printf(out, "%s/%s/part-%05u", s->dir, dataset, index);
}

void qn_store_temp_path(qn_store *s, const char *what, qn_buf *out)
{
    out->len = 0;
    qn_buf_printf(out, "%s/.incoming/%s.%d.%u", s->dir, what, (int)getpid(),
                  ++s->seq);
}

static int s_write_meta(const qn_store *s, const qn_shard *sh)
{
    Quern__ShardInfo m = QUERN__SHARD_INFO__INIT;
    m.dataset = (char *)sh->dataset;
    m.index = sh->index;
    m.size = sh->size;
    m.crc = sh->crc;
    m.sealed = sh->sealed;
    m.nshards = sh->nshards;
    size_t n = quern__shard_info__get_packed_size(&m);
    uint8_t *buf = qn_malloc(n + 1);
    quern__shard_info__pack(&m, buf);
    qn_buf p = {0};
    s_meta_path(s, sh->dataset, sh->index, &p);
    int rc = qn_write_file_atomic(p.data, buf, n);
    qn_buf_release(&p);
    free(buf);
    return rc;
}

static void s_note(qn_shard **list, size_t *n, size_t *cap, const qn_shard *sh)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*list)[i].dataset, sh->dataset) == 0 &&
            (*list)[i].index == sh->index) {
            (*list)[i] = *sh;
            return;
        }
    }
    QN_GROW(*list, *cap, *n + 1);
    (*list)[(*n)++] = *sh;
}

static void s_unnote(qn_shard *list, size_t *n, const qn_shard *sh)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(list[i].dataset, sh->dataset) == 0 &&
            list[i].index == sh->index) {
            list[i] = list[--*n];
            return;
        }
    }
}

static qn_shard *s_find(qn_store *s, const char *dataset, uint32_t index)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->shards[i].index == index &&
            strcmp(s->shards[i].dataset, dataset) == 0)
            return &s->shards[i];
    return NULL;
}

static void s_add(qn_store *s, const qn_shard *sh)
{
    qn_shard *have = s_find(s, sh->dataset, sh->index);
    if (!have) {
        QN_GROW(s->shards, s->cap, s->n + 1);
        have = &s->shards[s->n++];
    }
    *have = *sh;
    s_unnote(s->removed, &s->nremoved, sh);
    s_note(&s->added, &s->nadded, &s->cap_added, sh);
}

int qn_store_meta_parse(const void *buf, size_t len, const char *dataset,
                        uint32_t index, qn_shard *sh, char *why, size_t cap)
{
    Quern__ShardInfo *m =
        len > 0 && len < QN_STORE_META_MAX
            ? quern__shard_info__unpack(NULL, len, (const uint8_t *)buf)
            : NULL;
    if (!m) {
        snprintf(why, cap, "%zu bytes that are not a shard's description", len);
        return -1;
    }
    int rc = -1;
    if (strcmp(m->dataset, dataset) != 0 || m->index != index) {
        snprintf(why, cap, "it names another shard");
        goto done;
    }
    memset(sh, 0, sizeof *sh);
    snprintf(sh->dataset, sizeof sh->dataset, "%s", dataset);
    sh->index = index;
    sh->size = m->size;
    sh->crc = m->crc;
    sh->sealed = m->sealed;
    sh->nshards = m->nshards;
    rc = 0;
done:
    quern__shard_info__free_unpacked(m, NULL);
    return rc;
}

/* Read and check one installed shard; 0 and fills sh, or -1 with why. */
static int s_check(qn_store *s, const char *dataset, const char *name,
                   qn_shard *sh, char *why, size_t cap)
{
    unsigned index;
    char extra;
    if (sscanf(name, "part-%5u%c", &index, &extra) != 1 || strlen(name) != 10) {
        snprintf(why, cap, "not a shard name");
        return -1;
    }
    qn_buf mp = {0}, fp = {0};
    s_meta_path(s, dataset, index, &mp);
    qn_store_path(s, dataset, index, &fp);
    int rc = -1;
    uint8_t buf[QN_STORE_META_MAX];
    int fd = open(mp.data, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (fd >= 0)
        close(fd);
    char mwhy[200];
    if (got <= 0) {
        snprintf(why, cap, "its description %s is missing or unreadable",
                 mp.data);
        goto done;
    }
    if (qn_store_meta_parse(buf, (size_t)got, dataset, index, sh, mwhy,
                            sizeof mwhy) < 0) {
        snprintf(why, cap, "its description %s is unusable: %s", mp.data, mwhy);
        goto done;
    }
    uint64_t size;
    uint32_t crc;
    int e = qn_file_crc(fp.data, &size, &crc);
    if (e < 0) {
        snprintf(why, cap, "cannot read it: %s", strerror(-e));
        goto done;
    }
    if (size != sh->size || crc != sh->crc) {
        snprintf(why, cap,
                 "it holds %llu bytes with CRC %08x; its description says "
                 "%llu bytes with CRC %08x",
                 (unsigned long long)size, crc, (unsigned long long)sh->size,
                 sh->crc);
        goto done;
    }
    rc = 0;
done:
    qn_buf_release(&mp);
    qn_buf_release(&fp);
    return rc;
}

static void s_scan_dataset(qn_store *s, const char *dataset)
{
    qn_buf d = {0};
    qn_buf_printf(&d, "%s/%s", s->dir, dataset);
    DIR *dir = opendir(d.data);
    if (!dir) {
        qn_buf_release(&d);
        return;
    }
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.' || strstr(e->d_name, ".meta"))
            continue;
        qn_shard sh;
        char why[400];
        if (s_check(s, dataset, e->d_name, &sh, why, sizeof why) == 0) {
            s_add(s, &sh);
            continue;
        }
        qn_warn("store: %s/%s is not announced and is deleted: %s", d.data,
                e->d_name, why);
        qn_buf f = {0};
        qn_buf_printf(&f, "%s/%s", d.data, e->d_name);
        unlink(f.data);
        qn_buf_printf(&f, ".meta");
        unlink(f.data);
        qn_buf_release(&f);
    }
    closedir(dir);
    rmdir(d.data); /* if nothing is left */
    qn_buf_release(&d);
}

qn_store *qn_store_open(const char *dir, char *err, size_t errcap)
{
    int rc = qn_mkdirs(dir, 0755);
    char *abs = rc == 0 ? realpath(dir, NULL) : NULL;
    if (!abs) {
        snprintf(err, errcap, "data dir %s: %s", dir,
                 strerror(rc < 0 ? -rc : errno));
        return NULL;
    }
    qn_store *s = qn_calloc(1, sizeof *s);
    s->dir = abs;
    qn_buf p = {0};
    /* Unfinished uploads, copies and reduce outputs of an earlier run. */
    const char *scratch[] = {".incoming", ".staging"};
    for (size_t i = 0; i < 2; i++) {
        p.len = 0;
        qn_buf_printf(&p, "%s/%s", abs, scratch[i]);
        qn_rmtree(p.data);
        if ((rc = qn_mkdirs(p.data, 0755)) < 0) {
            snprintf(err, errcap, "data dir %s: cannot create %s: %s", dir,
                     p.data, strerror(-rc));
            qn_buf_release(&p);
            qn_store_destroy(&s);
            return NULL;
        }
    }
    qn_buf_release(&p);
    DIR *d = opendir(abs);
    if (!d) {
        snprintf(err, errcap, "data dir %s: %s", dir, strerror(errno));
        qn_store_destroy(&s);
        return NULL;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (qn_id_ok(e->d_name))
            s_scan_dataset(s, e->d_name);
    closedir(d);
    return s;
}

void qn_store_destroy(qn_store **self_p)
{
    qn_store *s = *self_p;
    if (!s)
        return;
    for (size_t i = 0; i < s->nups; i++) {
        close(s->ups[i].fd);
        unlink(s->ups[i].path);
        free(s->ups[i].path);
    }
    free(s->ups);
    free(s->shards);
    free(s->added);
    free(s->removed);
    free(s->damaged);
    free(s->dir);
    free(s);
    *self_p = NULL;
}

const char *qn_store_dir(const qn_store *s)
{
    return s->dir;
}

size_t qn_store_count(const qn_store *s)
{
    return s->n;
}

const qn_shard *qn_store_at(const qn_store *s, size_t i)
{
    return i < s->n ? &s->shards[i] : NULL;
}

const qn_shard *qn_store_find(const qn_store *s, const char *dataset,
                              uint32_t index)
{
    return s_find((qn_store *)s, dataset, index);
}

int qn_store_install(qn_store *s, const char *tmp, const qn_shard *sh,
                     int check_crc, char *err, size_t errcap)
{
    qn_buf dir = {0}, to = {0};
    int rc = -1;
    uint64_t size = 0;
    uint32_t crc = sh->crc;
    struct stat st;
    if (check_crc) {
        int e = qn_file_crc(tmp, &size, &crc);
        if (e < 0) {
            snprintf(err, errcap, "cannot read %s: %s", tmp, strerror(-e));
            goto done;
        }
    } else if (stat(tmp, &st) == 0) {
        size = (uint64_t)st.st_size;
    } else {
        snprintf(err, errcap, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    if (size != sh->size || crc != sh->crc) {
        snprintf(err, errcap,
                 "shard %s/%u arrived with %llu bytes and CRC %08x, not %llu "
                 "bytes and CRC %08x",
                 sh->dataset, sh->index, (unsigned long long)size, crc,
                 (unsigned long long)sh->size, sh->crc);
        goto done;
    }
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    qn_buf_printf(&dir, "%s/%s", s->dir, sh->dataset);
    int e = qn_mkdirs(dir.data, 0755);
    if (e == 0)
        e = s_write_meta(s, sh);
    qn_store_path(s, sh->dataset, sh->index, &to);
    if (e == 0 && rename(tmp, to.data) < 0)
        e = -errno;
    if (e == 0)
        e = qn_fsync_dir(dir.data);
    if (e < 0) {
        snprintf(err, errcap, "cannot install shard %s/%u in %s: %s",
                 sh->dataset, sh->index, dir.data, strerror(-e));
        goto done;
    }
    s_add(s, sh);
    rc = 0;
done:
    unlink(tmp);
    qn_buf_release(&dir);
    qn_buf_release(&to);
    return rc;
}

size_t qn_store_seal(qn_store *s, const char *dataset, uint32_t nshards)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        qn_shard *sh = &s->shards[i];
        if (strcmp(sh->dataset, dataset) != 0 ||
            (sh->sealed && sh->nshards == nshards))
            continue;
        sh->sealed = 1;
        sh->nshards = nshards;
        if (s_write_meta(s, sh) < 0)
            qn_warn("store: cannot mark %s/%u sealed", dataset, sh->index);
        s_note(&s->added, &s->nadded, &s->cap_added, sh);
        n++;
    }
    return n;
}

/* Delete the shards of dataset (every one when index is -1). */
static size_t s_drop(qn_store *s, const char *dataset, int64_t index)
{
    size_t n = 0;
    qn_buf p = {0};
    for (size_t i = 0; i < s->n;) {
        qn_shard *sh = &s->shards[i];
        if (strcmp(sh->dataset, dataset) != 0 ||
            (index >= 0 && sh->index != (uint32_t)index)) {
            i++;
            continue;
        }
        qn_store_path(s, dataset, sh->index, &p);
        unlink(p.data);
        s_meta_path(s, dataset, sh->index, &p);
        unlink(p.data);
        s_unnote(s->added, &s->nadded, sh);
        s_note(&s->removed, &s->nremoved, &s->cap_removed, sh);
        s->shards[i] = s->shards[--s->n];
        n++;
    }
    /* Gone only when it is empty. */
    p.len = 0;
    qn_buf_printf(&p, "%s/%s", s->dir, dataset);
    rmdir(p.data);
    qn_buf_release(&p);
    return n;
}

size_t qn_store_drop(qn_store *s, const char *dataset)
{
    return s_drop(s, dataset, -1);
}

int qn_store_drop_shard(qn_store *s, const char *dataset, uint32_t index)
{
    return s_drop(s, dataset, index) > 0;
}

int qn_store_drop_damaged(qn_store *s, const char *dataset, uint32_t index,
                          const char *why)
{
    const qn_shard *sh = qn_store_find(s, dataset, index);
    if (!sh)
        return 0;
    qn_shard copy = *sh;
    qn_warn("store: shard %s/%u is damaged (%s); dropped", dataset, index, why);
    s_drop(s, dataset, index);
    s_note(&s->damaged, &s->ndamaged, &s->cap_damaged, &copy);
    return 1;
}

void qn_store_take_damaged(qn_store *s, qn_shard **damaged, size_t *n)
{
    *damaged = s->damaged;
    *n = s->ndamaged;
    s->damaged = NULL;
    s->ndamaged = s->cap_damaged = 0;
}

static void s_upload_end(qn_store *s, size_t i)
{
    s_upload *u = &s->ups[i];
    if (u->fd >= 0)
        close(u->fd);
    unlink(u->path);
    free(u->path);
    s->ups[i] = s->ups[--s->nups];
}

/*
 * Take a chunk of a put's upload: open the upload at offset 0, check the
 * offset follows what came before, write it, and with last check size and
 * CRC and install the file as the shard (store.h).
 */
int qn_store_upload(qn_store *s, const char *token, const char *dataset,
                    uint32_t index, uint64_t offset, const void *data,
                    size_t len, int last, uint64_t size, uint32_t crc,
                    int64_t now, char *err, size_t errcap)
{
    size_t i;
    for (i = 0; i < s->nups; i++)
        if (strcmp(s->ups[i].token, token) == 0)
            break;
    if (i == s->nups) {
        if (offset != 0) {
            snprintf(err, errcap,
                     "upload %s of %s/%u is unknown here (this worker may "
                     "have restarted); start it again",
                     token, dataset, index);
            return -1;
        }
        if (s->nups >= QN_STORE_UPLOADS_MAX) {
            /* Each holds a file open: a peer must not use up our fds. */
            snprintf(err, errcap,
                     "upload of %s/%u refused: this worker takes %d uploads "
                     "at once; try again when one has finished",
                     dataset, index, QN_STORE_UPLOADS_MAX);
            return -1;
        }
        QN_GROW(s->ups, s->cap_ups, s->nups + 1);
        s_upload *u = &s->ups[s->nups];
        memset(u, 0, sizeof *u);
        snprintf(u->token, sizeof u->token, "%s", token);
        snprintf(u->dataset, sizeof u->dataset, "%s", dataset);
        u->index = index;
        u->crc = (uint32_t)crc32(0L, Z_NULL, 0);
        qn_buf p = {0};
        qn_store_temp_path(s, dataset, &p);
        u->path = p.data;
        u->fd = open(u->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (u->fd < 0) {
            snprintf(err, errcap, "cannot create %s: %s", u->path,
                     strerror(errno));
            free(u->path);
            return -1;
        }
        s->nups++;
    }
    s_upload *u = &s->ups[i];
    if (strcmp(u->dataset, dataset) != 0 || u->index != index ||
        offset != u->offset) {
        snprintf(err, errcap,
                 "upload %s of %s/%u: a piece at offset %llu arrived, "
                 "expected %llu",
                 token, dataset, index, (unsigned long long)offset,
                 (unsigned long long)u->offset);
        s_upload_end(s, i);
        return -1;
    }
    int e = qn_write_all(u->fd, data, len);
    if (e < 0) {
        snprintf(err, errcap, "cannot write %s: %s", u->path, strerror(-e));
        s_upload_end(s, i);
        return -1;
    }
    u->crc = (uint32_t)crc32(u->crc, data, (uInt)len);
    u->offset += len;
    u->used = now;
    if (!last)
        return 0;
    close(u->fd);
    u->fd = -1;
    if (u->offset != size || u->crc != crc) {
        snprintf(err, errcap,
                 "shard %s/%u arrived with %llu bytes and CRC %08x, the "
                 "sender says %llu bytes and CRC %08x",
                 dataset, index, (unsigned long long)u->offset, u->crc,
                 (unsigned long long)size, crc);
        s_upload_end(s, i);
        return -1;
    }
    qn_shard sh = {.index = index, .size = size, .crc = crc};
    snprintf(sh.dataset, sizeof sh.dataset, "%s", dataset);
    int rc = qn_store_install(s, u->path, &sh, 0, err, errcap);
    s_upload_end(s, i);
    return rc;
}

void qn_store_expire_uploads(qn_store *s, int64_t now, int64_t idle_ms)
{
    for (size_t i = 0; i < s->nups;) {
        if (now - s->ups[i].used > idle_ms) {
            qn_warn("store: upload of %s/%u stalled at %llu bytes; dropped",
                    s->ups[i].dataset, s->ups[i].index,
                    (unsigned long long)s->ups[i].offset);
            s_upload_end(s, i);
        } else {
            i++;
        }
    }
}

void qn_store_take_changes(qn_store *s, qn_shard **added, size_t *nadded,
                           qn_shard **removed, size_t *nremoved)
{
    *added = s->added;
    *nadded = s->nadded;
    *removed = s->removed;
    *nremoved = s->nremoved;
    s->added = s->removed = NULL;
    s->nadded = s->nremoved = 0;
    s->cap_added = s->cap_removed = 0; /* the arrays are the caller's now */
}
