/*
 * sha256.h -- SHA-256 (FIPS 180-4), one-shot and incremental.
 *
 * For fingerprints and content checks, not for secrets. The hashing is
 * libsodium's (sha256.c says why that library); the context wraps its
 * state, a plain struct, so it can live on the stack and needs no freeing.
 */
#ifndef QN_SHA256_H
#define QN_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include <sodium/crypto_hash_sha256.h>

#define QN_SHA256_SIZE 32  /* bytes in a digest */
#define QN_SHA256_BLOCK 64 /* bytes in one compression block */
#define QN_SHA256_HEX 65   /* hex text of a digest, with its NUL */

/* An incremental hash; fields are private to sha256.c. */
typedef struct qn_sha256_ctx {
    crypto_hash_sha256_state st; /* libsodium's running state */
} qn_sha256_ctx;

/* Start a new hash. */
void qn_sha256_init(qn_sha256_ctx *ctx);

/* Hash n more bytes (n may be 0, data may then be NULL). */
void qn_sha256_update(qn_sha256_ctx *ctx, const void *data, size_t n);

/*
 * Finish: write the digest to out and wipe the context. Call
 * qn_sha256_init again before reusing it.
 */
void qn_sha256_final(qn_sha256_ctx *ctx, uint8_t out[QN_SHA256_SIZE]);

/* The digest of n bytes at data, in one call (data may be NULL if n is 0). */
void qn_sha256(const void *data, size_t n, uint8_t out[QN_SHA256_SIZE]);

/* A digest as 64 lowercase hex digits and a NUL. */
void qn_sha256_hex(const uint8_t digest[QN_SHA256_SIZE],
                   char out[QN_SHA256_HEX]);

#endif
