/*
 * ifile.h -- Quern's intermediate data format.
 *
 * Records are key/value byte strings. They are stored in blocks; a block
 * holds whole records of one partition, compressed as one unit and checked
 * by a CRC32. A *block stream* is blocks back to back. An *intermediate
 * file* (ifile) is a block stream whose partitions follow each other in
 * order, then an index giving each partition's byte range, then a footer,
 * so a shuffle server can serve one partition without reading the others.
 *
 * Block (all integers little-endian):
 *   u32 magic "QBK1"  u8 codec  u8[3] zero  u32 raw_len  u32 stored_len
 *   u32 records  u32 crc32(the 20 bytes before it, then the payload)
 *   payload: stored_len bytes; decompressed, raw_len bytes of records:
 *   varint klen, varint vlen, key bytes, value bytes.
 * Index: per partition u64 offset, u64 length, u64 raw bytes, u64 records.
 * Footer (32 bytes): u32 magic "QIF1", u32 format 1, u32 partitions,
 *   u32 zero, u64 index offset, u32 crc32(index, first 24 footer bytes),
 *   u32 zero.
 *
 * Readers treat every byte as hostile: a bad magic, CRC, length or varint is
 * an error naming the file and the byte offset, never a crash.
 */
#ifndef QN_IFILE_H
#define QN_IFILE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define QN_BLOCK_HEADER 24                /* bytes in a block header */
#define QN_BLOCK_TARGET (64 * 1024)       /* raw bytes at which a block ends */
#define QN_BLOCK_MAX (64 * 1024 * 1024)   /* largest raw or stored block */
#define QN_RECORD_MAX (QN_BLOCK_MAX - 32) /* largest key + value */

/* Key order: <0, 0, >0 like memcmp. Same signature as quern_job.compare. */
typedef int (*qn_cmp_fn)(const void *a, size_t alen, const void *b,
                         size_t blen);

/* The default key order: bytewise, the shorter key first on ties. */
int qn_key_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* Totals kept by writers and the index. */
typedef struct qn_range {
    uint64_t offset;  /* first byte of the range in the file */
    uint64_t length;  /* stored (compressed) bytes, headers included */
    uint64_t raw;     /* record bytes before compression */
    uint64_t records; /* number of records */
} qn_range;

/* ---- block streams ------------------------------------------------------- */

typedef struct qn_blockwriter qn_blockwriter;

/*
 * A writer of blocks to fd, starting at the fd's current offset, using
 * codec c (borrowed). Writes are buffered in large chunks.
 */
qn_blockwriter *qn_blockwriter_new(int fd, qn_codec *c);

/* Add a record to the current block. Returns 0 or <0 (write error). */
int qn_blockwriter_add(qn_blockwriter *w, const void *key, size_t klen,
                       const void *val, size_t vlen);

/* End the current block (if any); it is written with the next chunk. */
int qn_blockwriter_end_block(qn_blockwriter *w);

/* End the current block (if any) and write everything buffered. */
int qn_blockwriter_flush(qn_blockwriter *w);

/* Totals since the writer was made; offset is where it started. */
qn_range qn_blockwriter_totals(const qn_blockwriter *w);

/* Free the writer (without flushing); accepts NULL, clears the pointer. */
void qn_blockwriter_destroy(qn_blockwriter **self_p);

/* Reads records from a byte range of a block stream. */
typedef struct qn_blockreader {
    int fd;
    const char *name;              /* file name for errors (borrowed) */
    uint64_t pos;                  /* next byte of the file to read */
    uint64_t end;                  /* end of the range */
    qn_codec *codec;               /* decompressor */
    char *io;                      /* read-ahead buffer */
    size_t io_cap, io_off, io_len; /* io holds file bytes [io_pos, +io_len) */
    uint64_t io_pos;
    char *raw; /* current block, decompressed */
    size_t raw_cap, raw_len, raw_off;
    uint64_t block_pos;  /* file offset of the current block */
    uint32_t block_left; /* records left in the current block */
    uint64_t raw_bytes;  /* raw bytes of blocks read so far */
    uint64_t stored_bytes;
    int failed; /* what the last failure returned (<0), 0 if none */
    char err[256];
} qn_blockreader;

/*
 * Start reading records from [off, off + len) of fd, which must hold whole
 * blocks. name is used in error messages. Returns 0 or -ENOMEM.
 */
int qn_blockreader_init(qn_blockreader *r, int fd, const char *name,
                        uint64_t off, uint64_t len);

/*
 * The next record: returns 1 and sets the pointers (valid until the next
 * call), 0 at the end of the range, <0 on a corrupt (-QN_ECORRUPT) or
 * unreadable block, with qn_blockreader_error() naming the file and offset
 * and r->failed holding the code.
 */
int qn_blockreader_next(qn_blockreader *r, const void **key, size_t *klen,
                        const void **val, size_t *vlen);

/* The last error message. */
const char *qn_blockreader_error(const qn_blockreader *r);

/* Free the reader's buffers (not its fd). */
void qn_blockreader_release(qn_blockreader *r);

/*
 * Check the block boundaries and CRCs of a complete block stream held in
 * memory. Returns the number of bytes of whole valid blocks at the start of
 * buf (so a caller can check data as it arrives), or <0 if a complete block
 * is corrupt, with a message in err.
 */
long qn_block_scan(const void *buf, size_t len, uint64_t *raw_out, char *err,
                   size_t errcap);

/* ---- intermediate files -------------------------------------------------- */

typedef struct qn_ifile_writer qn_ifile_writer;

/*
 * Create path (truncating it) for nparts partitions, compressing with c
 * (borrowed). Returns NULL and fills err on failure.
 */
qn_ifile_writer *qn_ifile_writer_new(const char *path, unsigned nparts,
                                     qn_codec *c, char *err, size_t errcap);

/*
 * Append a record to partition part. Partitions must come in
 * non-decreasing order, keys sorted within each. Returns 0 or <0.
 */
int qn_ifile_writer_add(qn_ifile_writer *w, unsigned part, const void *key,
                        size_t klen, const void *val, size_t vlen);

/*
 * Write the index and footer and close the file. When ranges is not NULL
 * it receives each partition's range (nparts entries). Returns 0 or <0
 * with a message in err; the writer is freed either way and *self_p
 * cleared. On failure the file is removed.
 */
int qn_ifile_writer_close(qn_ifile_writer **self_p, qn_range *ranges, char *err,
                          size_t errcap);

/* Abandon the file: close and remove it. Accepts NULL. */
void qn_ifile_writer_abort(qn_ifile_writer **self_p);

typedef struct qn_ifile qn_ifile;

/*
 * Open an intermediate file and check its footer and index. Returns NULL
 * and fills err (naming the file and what is wrong) on failure.
 */
qn_ifile *qn_ifile_open(const char *path, char *err, size_t errcap);

/* Number of partitions. */
unsigned qn_ifile_nparts(const qn_ifile *f);

/* The range of partition p (p < nparts). */
qn_range qn_ifile_range(const qn_ifile *f, unsigned p);

/* The open file descriptor (owned by f). */
int qn_ifile_fd(const qn_ifile *f);

/* The file's path. */
const char *qn_ifile_path(const qn_ifile *f);

/* Close and free; accepts NULL, clears the pointer. */
void qn_ifile_destroy(qn_ifile **self_p);

/* Varint helpers, exposed for the sort buffer and tests. */
size_t qn_varint_put(unsigned char *p, uint64_t v);
/* Decode at p (at most n bytes); returns bytes used or 0 if invalid. */
size_t qn_varint_get(const unsigned char *p, size_t n, uint64_t *v);

#endif
