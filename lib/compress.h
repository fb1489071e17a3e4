/*
 * compress.h -- a job's output files, compressed as they are written.
 *
 * --output-codec gzip|zstd|bzip2|xz|lz4 makes each reduce write its part
 * file as one complete stream of that format (part-00000.gz, ...), which
 * the format's own tool reads back, and which Quern reads back as input
 * (decomp.h). The kinds are decomp.h's. Each codec runs at its tool's
 * default level (gzip 6, bzip2 9, xz 6, lz4's fast mode) but zstd, at 1:
 * on TeraSort's records it compresses at twice level 3's speed (430 MB/s
 * against 205 on this machine) and no larger.
 */
#ifndef QN_COMPRESS_H
#define QN_COMPRESS_H

#include <stddef.h>

#include "decomp.h"

/*
 * The kind a user's name gives ("gzip", "zstd", "bzip2", "xz", "lz4", or
 * "none" for QN_DECOMP_PLAIN), or -1 with why naming the choices.
 */
int qn_compress_parse(const char *name, char *why, size_t cap);

/* A part file's name ending for kind: ".gz", ".zst", ... ("" for plain). */
const char *qn_compress_ext(int kind);

typedef struct qn_compress qn_compress;

/* A stream of kind (not PLAIN) writing to fd; NULL with err on failure. */
qn_compress *qn_compress_new(int kind, int fd, char *err, size_t errcap);

/* Compress len bytes onto the stream. 0, or -errno (a write failed). */
int qn_compress_write(qn_compress *c, const void *data, size_t len);

/* End the stream: its last bytes and trailer written. 0 or -errno. */
int qn_compress_finish(qn_compress *c);

/* Free a stream; accepts NULL and clears the pointer. */
void qn_compress_destroy(qn_compress **self_p);

#endif
