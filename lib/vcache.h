/* A cache of embedding vectors (and of other values: the _bytes calls), in Redis (redis://host:port[/db]) or in a
 * directory, keyed by the SHA-256 of backend, model, dimension and text.
 * pl_vcache_open allocates the cache and pl_vcache_close frees it; vectors go
 * into caller arrays. Values are float32 in little-endian byte order.
 * Nothing here prints or exits: errors fill the caller's err. */
#ifndef PL_VCACHE_H
#define PL_VCACHE_H

#include <stddef.h>

#define PL_VCACHE_ERRLEN 512

struct pl_vcache;

/* spec: a redis:// URL or a directory (created if missing). ttl_s: expiry of
 * Redis entries, 0 for none. Returns NULL with err and *status (a PL_EX_*
 * code: 2 for a bad spec or refused credentials, 69 for an unreachable
 * server) on failure. */
struct pl_vcache *pl_vcache_open(const char *spec, const char *prefix, long ttl_s,
				 int timeout_ms, char *err, int *status);
void pl_vcache_close(struct pl_vcache *c);

/* The key of a text under a namespace such as "hash\0plumb-hash-v1\0384". */
void pl_vcache_key(const char *ns, size_t nslen, const char *text, size_t n,
		   unsigned char key[32]);

/* Look up n keys: hit[i] is set to 1 and out[i * max_dim ...] filled for
 * each found. *dim of 0 is set from the first hit; entries of another size, or
 * larger than max_dim, are misses. out must hold n * max_dim floats. Returns 0, or -1 with
 * err filled (the cache should then be given up). */
int pl_vcache_get(struct pl_vcache *c, const unsigned char (*keys)[32], size_t n, int *dim,
		  int max_dim, float *out, char *hit, char *err);

/* Store n vectors of dim floats. Returns 0, or -1 with err filled. */
int pl_vcache_put(struct pl_vcache *c, const unsigned char (*keys)[32], size_t n, int dim,
		  const float *vecs, char *err);

/* Any value under a key (lib/chat keeps model replies so). get: 1 with out
 * reset and filled, 0 for a miss, -1 with err filled. put: 0, or -1. */
struct pl_buf;
int pl_vcache_get_bytes(struct pl_vcache *c, const unsigned char key[32], struct pl_buf *out,
			char *err);
int pl_vcache_put_bytes(struct pl_vcache *c, const unsigned char key[32], const void *v, size_t n,
			char *err);

#endif
