/*
 * shipped.c -- see shipped.h.
 */
#include "shipped.h"

#include "layout.h"
#include "sha256.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int qn_shipped_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > QN_SHIPPED_NAME_MAX || name[0] == '.' ||
        strcmp(name, QN_ATTEMPT_TMP) == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p == '/' || *p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int qn_shipped_hash_ok(const char *hash)
{
    if (strlen(hash) != QN_SHA256_HEX - 1)
        return 0;
    for (const char *p = hash; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

int qn_shipped_cached(const char *work_dir, const char *hash)
{
    qn_buf p = {0};
    qn_shipped_path(&p, work_dir, hash);
    int ok = access(p.data, R_OK) == 0;
    qn_buf_release(&p);
    return ok;
}

/* Write len bytes to the new file fd, read-only for everyone, synced.
 * 0 or -errno. */
static int s_write_sealed(int fd, const void *data, size_t len)
{
    int rc = qn_write_all(fd, data, len);
    if (rc == 0 && fchmod(fd, 0444) < 0)
        rc = -errno;
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    return rc;
}

int qn_shipped_cache(const char *work_dir, const char *hash, const void *data,
                     size_t len, char *err, size_t errcap)
{
    uint8_t d[QN_SHA256_SIZE];
    char hex[QN_SHA256_HEX];
    qn_sha256(data, len, d);
    qn_sha256_hex(d, hex);
    if (!qn_shipped_hash_ok(hash) || strcmp(hex, hash) != 0) {
        snprintf(err, errcap,
                 "shipped file %.64s arrived with SHA-256 %s; not used", hash,
                 hex);
        return -1;
    }
    qn_buf path = {0}, tmp = {0};
    qn_shipped_path(&path, work_dir, hash);
    qn_buf_printf(&tmp, "%s/files", work_dir);
    int rc = qn_mkdirs(tmp.data, 0755);
    qn_buf_printf(&tmp, "/.%s.XXXXXX", hash);
    int fd = rc < 0 ? -1 : mkstemp(tmp.data);
    if (rc == 0 && fd < 0)
        rc = -errno;
    if (fd >= 0) {
        rc = s_write_sealed(fd, data, len);
        if (close(fd) < 0 && rc == 0)
            rc = -errno;
        if (rc == 0 && rename(tmp.data, path.data) < 0)
            rc = -errno;
        if (rc < 0)
            unlink(tmp.data);
    }
    if (rc < 0)
        snprintf(err, errcap, "cannot cache a shipped file as %s: %s",
                 path.data, strerror(-rc));
    qn_buf_release(&path);
    qn_buf_release(&tmp);
    return rc < 0 ? -1 : 0;
}

/* Copy the file src to a new entry name of dirfd. 0 or -errno (nothing
 * left behind). */
static int s_copy(const char *src, int dirfd, const char *name)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out =
        openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    int rc = out < 0 ? -errno : 0;
    char buf[65536];
    while (rc == 0) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        rc = qn_write_all(out, buf, (size_t)n);
    }
    if (rc == 0 && fchmod(out, 0444) < 0)
        rc = -errno;
    if (out >= 0 && close(out) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0 && out >= 0)
        unlinkat(dirfd, name, 0);
    close(in);
    return rc;
}

/* Hard-link src as name in dirfd (replacing what is there), or copy it
 * when the link is refused. 0 or -errno. */
static int s_link_or_copy(const char *src, int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
        return -errno;
    if (linkat(AT_FDCWD, src, dirfd, name, 0) == 0)
        return 0;
    if (errno == EXDEV || errno == EPERM)
        return s_copy(src, dirfd, name);
    return -errno;
}

/* Place shipped file f from cached copy src: linked or copied, then
 * checked (its size) and left read-only. 0, or -1 with err. */
static int s_place_one(const Quern__ShippedFile *f, const char *src, int dirfd,
                       char *err, size_t errcap)
{
    struct stat st;
    int rc = s_link_or_copy(src, dirfd, f->name);
    if (rc == 0 && fstatat(dirfd, f->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        rc = -errno;
    if (rc < 0) {
        snprintf(err, errcap, "cannot place shipped file %s (from %s): %s",
                 f->name, src, strerror(-rc));
        return -1;
    }
    if ((uint64_t)st.st_size != f->size) {
        snprintf(err, errcap,
                 "shipped file %s: its cached copy %s holds %llu bytes, not "
                 "the %llu shipped",
                 f->name, src, (unsigned long long)st.st_size,
                 (unsigned long long)f->size);
        return -1;
    }
    if ((st.st_mode & 07777) != 0444 && fchmodat(dirfd, f->name, 0444, 0) < 0) {
        snprintf(err, errcap, "cannot make shipped file %s read-only: %s",
                 f->name, strerror(errno));
        return -1;
    }
    return 0;
}

int qn_shipped_place(const Quern__TaskSpec *spec, const char *work_dir,
                     int dirfd, char *err, size_t errcap)
{
    qn_buf src = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < spec->n_files; i++) {
        const Quern__ShippedFile *f = spec->files[i];
        if (!qn_shipped_name_ok(f->name) || !qn_shipped_hash_ok(f->hash)) {
            snprintf(err, errcap,
                     "shipped file '%.255s' (SHA-256 '%.64s'): not a plain "
                     "file name and a hash",
                     f->name, f->hash);
            rc = -1;
            break;
        }
        qn_shipped_path(&src, work_dir, f->hash);
        rc = s_place_one(f, src.data, dirfd, err, errcap);
    }
    qn_buf_release(&src);
    return rc;
}
