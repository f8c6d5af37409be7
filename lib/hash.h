/* Content hashes and deterministic ids, through OpenSSL's libcrypto.
 * All output goes to caller-provided arrays; nothing allocates but the
 * incremental context, which pl_sha256_final (or pl_sha256_free) frees. */
#ifndef PL_HASH_H
#define PL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define PL_SHA256_HEX 65	/* 64 hex digits and a NUL */
#define PL_UUID_STR 37		/* 36 characters and a NUL */

struct pl_sha256 {
	void *ctx;		/* EVP_MD_CTX */
};

void pl_sha256_init(struct pl_sha256 *h);
void pl_sha256_update(struct pl_sha256 *h, const void *p, size_t n);
void pl_sha256_final(struct pl_sha256 *h, unsigned char out[32]);
/* dst (initialized or not, but not holding a context it owns elsewhere)
 * becomes a copy of src's state; the digest of a copy leaves src going on. */
void pl_sha256_copy(struct pl_sha256 *dst, const struct pl_sha256 *src);
/* Drop a context without its digest (NULL ctx: nothing). */
void pl_sha256_free(struct pl_sha256 *h);

void pl_sha256_raw(const void *p, size_t n, unsigned char out[32]);
void pl_sha256_hex(const void *p, size_t n, char out[PL_SHA256_HEX]);
void pl_hex(const unsigned char *p, size_t n, char *out);	/* out: 2n+1 bytes */
int pl_unhex(const char *s, size_t n, unsigned char *out);	/* 0, or -1 if not hex */

/* RFC 9562 UUID version 5 (SHA-1 of namespace and name). */
extern const unsigned char PL_UUID_NS_DNS[16], PL_UUID_NS_URL[16];
extern const unsigned char PL_UUID_NS_PLUMB[16];	/* plumb's own: record ids */
void pl_uuid5(const unsigned char ns[16], const void *name, size_t n, char out[PL_UUID_STR]);

/* MurmurHash3's 64-bit finalizer: every input bit reaches every output bit.
 * For hash tables and feature hashing, not for anything secret. */
static inline uint64_t pl_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

#endif
