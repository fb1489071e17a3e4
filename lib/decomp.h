/*
 * decomp.h -- compressed input files, read decompressed.
 *
 * A file compressed with gzip, bzip2, xz, zstd or lz4 (frame format) is
 * known by its first bytes, never by its name, and read through the
 * codec's own library as one stream of bytes: concatenated members or
 * frames (pigz, `cat a.gz b.gz`, zstd's multi-frame files) follow one
 * another. A reader takes the compressed bytes [0, size) of a descriptor
 * with pread and treats every byte as hostile: damaged data, a stream cut
 * short and bytes after its end are errors naming the file and the
 * compressed offset, never bytes made up from garbage. Where the format
 * carries checksums (gzip's CRC-32, bzip2's block CRCs, xz's, and zstd's
 * and lz4's when written, as their tools do by default) they are checked.
 */
#ifndef QN_DECOMP_H
#define QN_DECOMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What a file's bytes are; never renumber (the wire carries them). */
typedef enum {
    QN_DECOMP_PLAIN = 0,
    QN_DECOMP_GZIP = 1,
    QN_DECOMP_BZIP2 = 2,
    QN_DECOMP_XZ = 3,
    QN_DECOMP_ZSTD = 4,
    QN_DECOMP_LZ4 = 5,
    QN_DECOMP_COUNT
} qn_decomp_kind;

/* Bytes of a file's start that qn_decomp_sniff looks at, at most. */
#define QN_DECOMP_SNIFF 16

/* What the first n bytes of a file say it is (PLAIN when none fits). */
qn_decomp_kind qn_decomp_sniff(const void *head, size_t n);

/*
 * The same for an open file, reading its first bytes with pread: 0, or
 * -errno (the reason the file could not be read).
 */
int qn_decomp_sniff_fd(int fd, qn_decomp_kind *kind);

/* "gzip", "bzip2", "xz", "zstd", "lz4", "plain" ("unknown" otherwise). */
const char *qn_decomp_name(qn_decomp_kind kind);

typedef struct qn_decomp qn_decomp;

/*
 * A reader of the kind's stream in the first size bytes of fd (borrowed,
 * read with pread from offset 0), named name in messages. NULL with a
 * message in err when the codec's state cannot be made.
 */
qn_decomp *qn_decomp_new(qn_decomp_kind kind, int fd, uint64_t size,
                         const char *name, char *err, size_t errcap);

/*
 * Up to cap decompressed bytes into buf. Returns how many (> 0), 0 once
 * the stream has ended exactly at size (and no byte follows it in the
 * file), or a negative error (-errno, -QN_ECORRUPT) with a message in err
 * naming the file and the compressed offset.
 */
ssize_t qn_decomp_read(qn_decomp *d, void *buf, size_t cap, char *err,
                       size_t errcap);

/* Compressed bytes consumed so far. */
uint64_t qn_decomp_offset(const qn_decomp *d);

/* Free a reader; accepts NULL and clears the pointer. */
void qn_decomp_destroy(qn_decomp **self_p);

#endif
