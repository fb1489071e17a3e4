/*
 * shipped.h -- files shipped with a job (quern run|submit --file): the
 * names they may have, the cache of their bytes under a work dir
 * (WORK/files/HASH, layout.h), and placing them, read-only, in the
 * working directory of a map or reduce, where the job's code opens them
 * by name.
 *
 * A worker fills its cache from the master (worker/assign.c), `quern run
 * --inline` from the client's own copy; a task places what its spec lists
 * (qn_shipped_place), hard-linked from the cache when it can.
 */
#ifndef QN_SHIPPED_H
#define QN_SHIPPED_H

#include <stddef.h>

#include "quern.pb-c.h"

#define QN_SHIPPED_NAME_MAX 255 /* bytes of a shipped file's name */

/*
 * Is name one a shipped file may have in a task's folder: a plain file
 * name of 1 to QN_SHIPPED_NAME_MAX bytes, without '/' or control
 * characters, not starting with '.' (so neither "." nor ".."), and not
 * "tmp" (the folder's writable part, layout.h)?
 */
int qn_shipped_name_ok(const char *name);

/* Is hash a SHA-256 in hex, as the cache names files (64 of [0-9a-f])? */
int qn_shipped_hash_ok(const char *hash);

/* Is the shipped file with this hash in work_dir's cache? */
int qn_shipped_cached(const char *work_dir, const char *hash);

/*
 * Cache len bytes at data as the shipped file whose SHA-256 is hash:
 * checked against it, written to a temporary file in WORK/files (made
 * when missing), mode 0444, synced and renamed to WORK/files/HASH.
 * Returns 0, or -1 with err naming the file and what went wrong.
 */
int qn_shipped_cache(const char *work_dir, const char *hash, const void *data,
                     size_t len, char *err, size_t errcap);

/*
 * Place each of spec->files in the directory dirfd under its name, from
 * work_dir's cache: a hard link to WORK/files/HASH, or a copy where a
 * link is refused (EXDEV: another filesystem; EPERM: not the file's
 * owner, under protected_hardlinks), left mode 0444 either way; an entry
 * of that name already there is replaced. Returns 0, or -1 with err
 * naming the file that could not be placed and why.
 */
int qn_shipped_place(const Quern__TaskSpec *spec, const char *work_dir,
                     int dirfd, char *err, size_t errcap);

#endif
