/* Embedding backends shared by embed and search.
 *
 * pl_embed_hash is pure: text in, an L2-normalized vector of dim floats out,
 * identical on every machine. struct pl_embedder wraps a backend chosen by
 * options; pl_embedder_new allocates it and pl_embedder_free releases it.
 * Output vectors go into arrays the caller owns. Nothing here prints or exits:
 * errors come back in a caller's char err[PL_EMBED_ERRLEN]. */
#ifndef PL_EMBED_H
#define PL_EMBED_H

#include <stddef.h>

#include "buf.h"

#define PL_EMBED_ERRLEN 512
#define PL_EMBED_HASH_MODEL "plumb-hash-v1"
#define PL_EMBED_DEFAULT_DIM 384

enum pl_embed_backend { PL_EMBED_HASH, PL_EMBED_HTTP, PL_EMBED_BERT };

struct pl_embed_opts {
	enum pl_embed_backend backend;
	int dim;			/* hash: vector size; http: "dimensions" if > 0 */
	const char *model;		/* http: the model name sent to the server */
	const char *base_url;		/* http: e.g. https://api.openai.com/v1 */
	const char *api_key;		/* http: bearer token, or NULL */
	int batch;			/* http: inputs per request */
	size_t batch_tokens;		/* http: estimated tokens per request */
	int parallel;			/* http: requests in flight */
	int truncate;			/* http: cut inputs the server finds too long */
	size_t max_input_tokens;	/* http: with truncate, the cut (estimated tokens) */
	long timeout_ms, connect_timeout_ms;
	int max_tries;
	int insecure;			/* http: skip TLS verification */
};

void pl_embed_opts_default(struct pl_embed_opts *o);

/* The hash backend: word unigrams, word bigrams and character trigrams of the
 * lower-cased text, signed feature hashing into dim buckets, 1 + log(tf)
 * weights, L2 normalization. An empty text gives the zero vector. */
void pl_embed_hash(const char *text, size_t n, int dim, float *out);

struct pl_embedder;

/* Returns NULL with err filled when the options are unusable. */
struct pl_embedder *pl_embedder_new(const struct pl_embed_opts *o, char *err);
void pl_embedder_free(struct pl_embedder *e);

/* The model name written in records ("plumb-hash-v1", or the http model). */
const char *pl_embedder_model(const struct pl_embedder *e);
/* The vector size; for http known only after the first reply (0 before). */
int pl_embedder_dim(const struct pl_embedder *e);

/* Embed n texts synchronously into out (n * dim floats, dim as returned in
 * *dim). Returns 0, or a PL_EX_* exit status with err filled: 69 or 75 when
 * the service failed after retries, 65 when it rejected an input (err names
 * which), 2 for a configuration problem the server reported (401, 404). */
int pl_embed_batch(struct pl_embedder *e, const char *const *texts, const size_t *lens,
		   size_t n, float **out, int *dim, char *err);

/* --- the http backend's parts, for a caller that drives lib/http itself -- */

/* The JSON body of POST {base}/embeddings for n texts into out (reset). */
void pl_embed_http_body(const struct pl_embed_opts *o, const char *const *texts,
			const size_t *lens, size_t n, struct pl_buf *out);

/* The URL of the embeddings endpoint for base_url, into out (size outlen). */
void pl_embed_http_url(const char *base_url, char *out, size_t outlen);

/* NULL-terminated request headers (content type, and the bearer token when
 * there is a key), valid while o is; hdr holds their storage. */
const char *const *pl_embed_http_headers(const struct pl_embed_opts *o, char hdr[2][600]);

/* Parse a 200 reply for n inputs: vectors in input order into *out
 * (reallocated to n * dim floats), their size in *dim (which must equal a
 * non-zero *dim given). Returns 0, or -1 with err filled. */
int pl_embed_http_parse(const char *body, size_t len, size_t n, float **out, int *dim,
			char *err);

/* Whether an error reply refuses the request's inputs (too long, too many),
 * so that a smaller request may pass: 400, 413 and 422, and the 500 that
 * llama.cpp's server gives an input longer than its batch. Suits
 * pl_http_opts.final. */
int pl_embed_http_refused(long status, const char *body, size_t len);

#endif
