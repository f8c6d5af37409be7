/* A client for Qdrant's REST API (OpenAPI v1.19) over lib/http: collections,
 * payload indexes, point upserts and deletes, counts, and batched queries.
 *
 * pl_qdrant_new allocates the client and pl_qdrant_free releases it. Request
 * bodies are copied at submission. Query results (struct pl_qdrant_hits) are
 * allocated here and released by the caller with pl_qdrant_hits_free. Nothing
 * here prints or exits: calls return 0 or a PL_EX_* exit status and fill the
 * caller's char err[PL_QDRANT_ERRLEN] with one line, e.g.
 * "qdrant: 400 Bad Request: Wrong input: Vector dimension error: expected dim: 384, got 3". */
#ifndef PL_QDRANT_H
#define PL_QDRANT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"
#include "json.h"

#define PL_QDRANT_ERRLEN 1024
#define PL_QDRANT_DEFAULT_URL "http://localhost:6333"

enum pl_qdrant_distance { PL_QDRANT_COSINE, PL_QDRANT_DOT, PL_QDRANT_EUCLID, PL_QDRANT_MANHATTAN };

/* "cosine", "dot", "euclid", "manhattan" in any case; 0, or -1 if unknown. */
int pl_qdrant_distance_parse(const char *s, enum pl_qdrant_distance *d);
/* Qdrant's own spelling: "Cosine", "Dot", "Euclid", "Manhattan". */
const char *pl_qdrant_distance_name(enum pl_qdrant_distance d);

struct pl_qdrant_opts {
	const char *url;		/* e.g. http://localhost:6333 (a path prefix is kept) */
	const char *api_key;		/* sent as the "api-key" header; NULL or "" for none */
	const char *collection;
	struct pl_http_opts http;	/* timeouts, tries, parallel, TLS */
};

struct pl_qdrant;

/* Returns NULL with err filled when the URL or the collection name is unusable. */
struct pl_qdrant *pl_qdrant_new(const struct pl_qdrant_opts *o, char *err);
void pl_qdrant_free(struct pl_qdrant *q);

/* The base URL without credentials, for messages. */
const char *pl_qdrant_url(const struct pl_qdrant *q);

/* --- collections (synchronous) ------------------------------------------- */

struct pl_qdrant_info {
	int exists;
	long size;			/* vector size; 0 if the collection uses named vectors */
	enum pl_qdrant_distance distance;
	int named;			/* named vectors: plumb writes one unnamed vector */
	int doc_id_index;		/* a payload index on "doc_id" exists */
	long long points;		/* points_count, or -1 when not reported */
};

/* GET /collections/{name}; a missing collection is exists = 0, not an error. */
int pl_qdrant_info(struct pl_qdrant *q, struct pl_qdrant_info *info, char *err);

/* Make the collection usable for vectors of size: create it (PUT) when it
 * does not exist (a concurrent creator's 409 is fine), check size (and the
 * distance when check_distance), and create a keyword index on "doc_id" when
 * missing. *created tells whether this call created it. A size or distance
 * that disagrees, or named vectors, is PL_EX_USAGE. info is filled. */
int pl_qdrant_ensure(struct pl_qdrant *q, long size, enum pl_qdrant_distance d,
		     int check_distance, struct pl_qdrant_info *info, int *created, char *err);

/* PUT /collections/{name}/index: a payload index (schema e.g. "keyword"). */
int pl_qdrant_create_index(struct pl_qdrant *q, const char *field, const char *schema, char *err);

/* DELETE /collections/{name}; a missing collection is not an error. */
int pl_qdrant_delete_collection(struct pl_qdrant *q, char *err);

/* POST /collections/{name}/points/count (exact): all points, or those of one
 * doc_id (doc_id[0..n), decoded) when doc_id is not NULL. */
int pl_qdrant_count(struct pl_qdrant *q, const char *doc_id, size_t n, unsigned long long *count,
		    char *err);

/* --- writes (asynchronous, several in flight) ------------------------------ */

/* Runs once a request is final: status 0, or a PL_EX_* exit status with err
 * (valid during the call only). A callback must not submit requests. */
typedef void (*pl_qdrant_cb)(void *ud, int status, const char *err);

/* An upsert body: begin, one pl_qdrant_point per point, end. */
void pl_qdrant_points_begin(struct pl_buf *b);
/* A point with id uuid, the raw JSON array vec[0..veclen) as its vector, and
 * as its payload every top-level member of rec except skip (the vector), each
 * copied verbatim. */
void pl_qdrant_point(struct pl_buf *b, const char *uuid, const char *vec, size_t veclen,
		     const struct pl_jobj *rec, const struct pl_jmember *skip);
void pl_qdrant_points_end(struct pl_buf *b);

/* The number of elements of a raw JSON array that holds only numbers, or -1
 * when it is not one (raw must be valid JSON, as the lazy scanner leaves it). */
long pl_qdrant_vector_size(const char *raw, size_t n);

/* PUT /collections/{name}/points?wait=true with a body made as above. */
void pl_qdrant_upsert(struct pl_qdrant *q, const char *body, size_t len, pl_qdrant_cb cb, void *ud);

/* POST /collections/{name}/points/delete?wait=true with a filter: the points
 * whose payload "doc_id" is doc_id[0..n) (all of a document's), or when
 * keep_sha is not NULL only its stale chunks: those whose "doc_sha256" is not
 * keep_sha[0..shan), or whose "chunk" number is chunks or more (chunks >= 0:
 * a document re-chunked into fewer chunks keeps its doc_sha256). Strings are
 * decoded (not JSON-escaped). */
void pl_qdrant_delete_doc(struct pl_qdrant *q, const char *doc_id, size_t n, const char *keep_sha,
			  size_t shan, int64_t chunks, pl_qdrant_cb cb, void *ud);

/* The same by point ids (UUIDs or unsigned integers, as strings). */
void pl_qdrant_delete_ids(struct pl_qdrant *q, const char *const *ids, size_t n, pl_qdrant_cb cb,
			  void *ud);

/* Requests submitted and not yet final; drive transfers until at most n are. */
size_t pl_qdrant_pending(const struct pl_qdrant *q);
void pl_qdrant_wait(struct pl_qdrant *q, size_t n);

/* --- queries ------------------------------------------------------------------ */

struct pl_qdrant_hit {
	char *id;		/* the payload's "id" (the record id), else the point id */
	char *doc_id;		/* the payload's "doc_id", or NULL */
	double score;		/* Cosine and Dot: similarity, higher is nearer;
				 * Euclid and Manhattan: distance, lower is nearer */
	char *payload;		/* with_payload: the payload as a JSON object, else NULL */
};

struct pl_qdrant_hits {
	size_t nq;		/* queries */
	size_t *first;		/* hits of query i: hit[first[i]] .. hit[first[i + 1] - 1] */
	struct pl_qdrant_hit *hit;
	size_t n;
};

void pl_qdrant_hits_free(struct pl_qdrant_hits *h);

/* POST /collections/{name}/points/query/batch: the k nearest points to each
 * of nq query vectors (vecs: nq * dim floats), best first, as Qdrant ranks
 * them. with_payload asks for whole payloads; without it only "id" and
 * "doc_id" are fetched. filter is a raw JSON Qdrant filter object applied to
 * every query, or NULL. Synchronous; out is filled on success. */
int pl_qdrant_query(struct pl_qdrant *q, const float *vecs, size_t nq, size_t dim, int k,
		    int with_payload, const char *filter, struct pl_qdrant_hits *out, char *err);

/* The same, asynchronous: cb gets the hits (it owns them: pl_qdrant_hits_free)
 * or, when status is not 0, NULL and err. */
typedef void (*pl_qdrant_query_cb)(void *ud, int status, const char *err, struct pl_qdrant_hits *hits);
void pl_qdrant_query_submit(struct pl_qdrant *q, const float *vecs, size_t nq, size_t dim, int k,
			    int with_payload, const char *filter, pl_qdrant_query_cb cb, void *ud);

/* --- helpers (exposed for tests) -------------------------------------------- */

/* One line for a final HTTP result: "qdrant: 400 Bad Request: <error>" or
 * "qdrant: no response from URL: <reason>", with "(gave up after N tries)"
 * when it was retried. Returns the PL_EX_* status for it. */
int pl_qdrant_error(const struct pl_qdrant *q, const struct pl_http_result *r, char *err);

/* The standard reason phrase of an HTTP status ("Bad Request"), or "". */
const char *pl_qdrant_reason(long status);

#endif
