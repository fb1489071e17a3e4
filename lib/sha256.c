/*
 * sha256.c -- SHA-256 and its hex form, from libsodium.
 *
 * Why libsodium rather than OpenSSL's libcrypto: libzmq already loads it
 * into every Quern process (for CURVE), so it adds no new library; its
 * state is a plain struct with no allocation, so the context stays on the
 * stack and no call here can fail. libcrypto's EVP interface allocates its
 * context (EVP_MD_CTX_new) and every step can fail, which would give these
 * functions error returns they do not have today. libcrypto's SHA-256 is
 * faster (SHA-NI), but Quern hashes only plugins, once per submission, so
 * that speed buys nothing here.
 *
 * No sodium_init() is needed: in libsodium 1.0.18 (Debian 12's)
 * crypto_hash_sha256_* is one portable implementation with no global state
 * and no CPU dispatch, and sodium_bin2hex is a plain loop.
 * sodium_init() only detects CPU features, seeds the random generator and
 * picks implementations of other primitives (Argon2, BLAKE2b, Poly1305,
 * X25519, ChaCha20, Salsa20). Not calling it keeps this module free of the
 * random generator's set-up, which aborts the process where it finds no
 * entropy source.
 */
#include "sha256.h"

#include <sodium.h>

_Static_assert(QN_SHA256_SIZE == crypto_hash_sha256_BYTES,
               "QN_SHA256_SIZE is libsodium's SHA-256 digest size");

void qn_sha256_init(qn_sha256_ctx *ctx)
{
    crypto_hash_sha256_init(&ctx->st);
}

void qn_sha256_update(qn_sha256_ctx *ctx, const void *data, size_t n)
{
    if (n == 0)
        return;
    crypto_hash_sha256_update(&ctx->st, data, n);
}

/* libsodium wipes the state itself once the digest is out. */
void qn_sha256_final(qn_sha256_ctx *ctx, uint8_t out[QN_SHA256_SIZE])
{
    crypto_hash_sha256_final(&ctx->st, out);
}

void qn_sha256(const void *data, size_t n, uint8_t out[QN_SHA256_SIZE])
{
    qn_sha256_ctx ctx;
    qn_sha256_init(&ctx);
    qn_sha256_update(&ctx, data, n);
    qn_sha256_final(&ctx, out);
}

void qn_sha256_hex(const uint8_t digest[QN_SHA256_SIZE],
                   char out[QN_SHA256_HEX])
{
    sodium_bin2hex(out, QN_SHA256_HEX, digest, QN_SHA256_SIZE);
}
