/*
 * codec.h -- block compression for intermediate data.
 *
 * A codec object owns its compressor and decompressor state so that they are
 * allocated once per stream, not once per block.
 */
#ifndef QN_CODEC_H
#define QN_CODEC_H

#include <stddef.h>

/* Codec ids, as stored in every block header; never renumber. */
#define QN_CODEC_NONE 0  /* stored as is (compress level 0) */
#define QN_CODEC_ZLIB 1  /* raw deflate, zlib's default strategy */
#define QN_CODEC_LZ4 2   /* LZ4 block, fast mode (every level alike) */
#define QN_CODEC_ZSTD 3  /* one Zstandard frame, zstd level = our level */
#define QN_CODEC_COUNT 4 /* one past the highest id */

typedef struct qn_codec qn_codec;

/*
 * Parse a codec name given by a user ("zlib", "lz4", "zstd" or "none").
 * Returns the id, or -1 and fills why (cap bytes) with a message naming the
 * supported codecs.
 */
int qn_codec_parse(const char *name, char *why, size_t cap);

/* The name of a codec id ("zlib", "lz4", "zstd", "none", or "unknown"). */
const char *qn_codec_name(int id);

/*
 * A codec that compresses with id at level (0-9); NULL on a bad id or level.
 * Level 0 stores blocks as they are whatever the id. Any codec object can
 * decompress blocks of every id.
 */
qn_codec *qn_codec_new(int id, int level);

/* Free a codec; accepts NULL and clears the pointer. */
void qn_codec_destroy(qn_codec **self_p);

/* The id blocks written by this codec carry (NONE when level is 0). */
int qn_codec_id(const qn_codec *c);

/* The most bytes compressing n bytes can produce. */
size_t qn_codec_bound(const qn_codec *c, size_t n);

/*
 * Compress n bytes of src into dst (cap bytes, at least the bound).
 * Returns the compressed size, or -QN_EFULL when cap is too small,
 * -QN_ETOOBIG when n is more than the codec takes, -ENOMEM.
 */
long qn_codec_compress(qn_codec *c, const void *src, size_t n, void *dst,
                       size_t cap);

/*
 * Decompress a block written with codec id into exactly raw bytes at dst.
 * Returns 0, or -QN_ECORRUPT if the data is not one valid stream of exactly
 * that size (or id is unknown), or -ENOMEM. Never reads past src + n nor
 * writes past dst + raw, whatever the bytes.
 */
int qn_codec_decompress(qn_codec *c, int id, const void *src, size_t n,
                        void *dst, size_t raw);

#endif
