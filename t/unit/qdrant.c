/* Unit tests for lib/qdrant.c: request bodies, vector checks, error lines.
 * Given a URL (t/0500-upsert-qdrant.bats passes the test server's), it also
 * drives the client against that server: collections, writes, counts and the
 * batched query that search uses. */
#include <stdlib.h>

#include "exitcode.h"
#include "hash.h"
#include "qdrant.h"
#include "unit.h"

static void offline(void)
{
	struct pl_buf b = PL_BUF_INIT;
	struct pl_jobj o = { 0 };
	struct pl_jerr e;
	enum pl_qdrant_distance d;
	char err[PL_QDRANT_ERRLEN];
	const char *rec = "{\"id\":\"a#0\",\"vector\":[1, -2.5e-3 ,3],\"doc_id\":\"a\",\"m\":{\"k\":[1,\"\\u00e9\"]}}";

	CHECK(pl_qdrant_vector_size("[1,2,3]", 7) == 3, "vector size 3");
	CHECK(pl_qdrant_vector_size(" [ -1.5e3 , 0 ]", 15) == 2, "vector size with spaces and exponents");
	CHECK(pl_qdrant_vector_size("[]", 2) == 0, "empty vector");
	CHECK(pl_qdrant_vector_size("[1,\"2\"]", 7) == -1, "a string in a vector");
	CHECK(pl_qdrant_vector_size("[1,[2]]", 7) == -1, "a nested array in a vector");
	CHECK(pl_qdrant_vector_size("[null]", 6) == -1, "null in a vector");
	CHECK(pl_qdrant_vector_size("{}", 2) == -1, "an object is no vector");

	CHECK(pl_qdrant_distance_parse("cosine", &d) == 0 && d == PL_QDRANT_COSINE, "cosine");
	CHECK(pl_qdrant_distance_parse("DOT", &d) == 0 && d == PL_QDRANT_DOT, "DOT");
	CHECK(pl_qdrant_distance_parse("Euclid", &d) == 0 && d == PL_QDRANT_EUCLID, "Euclid");
	CHECK(pl_qdrant_distance_parse("l2", &d) < 0, "l2 is unknown");
	CHECK_STR(pl_qdrant_distance_name(PL_QDRANT_MANHATTAN), "Manhattan", "Qdrant's spelling");

	/* a point's payload is the record without its vector, bytes verbatim */
	CHECK(pl_json_scan_object(rec, strlen(rec), &o, &e) == 0, "record scans");
	const struct pl_jmember *vec = pl_jobj_get(&o, "vector");
	pl_qdrant_points_begin(&b);
	pl_qdrant_point(&b, "8defa4a7-4644-5fb1-8537-22c28803b7f9", vec->val, vec->vallen, &o, vec);
	pl_qdrant_point(&b, "00000000-0000-5000-8000-000000000000", vec->val, vec->vallen, &o, vec);
	pl_qdrant_points_end(&b);
	CHECK_STR(pl_buf_cstr(&b),
		  "{\"points\":[{\"id\":\"8defa4a7-4644-5fb1-8537-22c28803b7f9\",\"vector\":[1, -2.5e-3 ,3],"
		  "\"payload\":{\"id\":\"a#0\",\"doc_id\":\"a\",\"m\":{\"k\":[1,\"\\u00e9\"]}}},"
		  "{\"id\":\"00000000-0000-5000-8000-000000000000\",\"vector\":[1, -2.5e-3 ,3],"
		  "\"payload\":{\"id\":\"a#0\",\"doc_id\":\"a\",\"m\":{\"k\":[1,\"\\u00e9\"]}}}]}",
		  "upsert body of two points");
	pl_jobj_free(&o);
	pl_buf_free(&b);

	CHECK_STR(pl_qdrant_reason(429), "Too Many Requests", "reason of 429");
	CHECK_STR(pl_qdrant_reason(299), "", "no reason for 299");

	struct pl_qdrant_opts qo = { 0 };
	pl_http_opts_default(&qo.http);
	qo.collection = "docs";
	qo.url = "ftp://x";
	CHECK(pl_qdrant_new(&qo, err) == NULL && strstr(err, "not an http:// or https:// URL"),
	      "refuses a URL that is not http(s): %s", err);
	qo.url = "http://u:secret@localhost:6333///";
	qo.collection = "a/b";
	CHECK(pl_qdrant_new(&qo, err) == NULL && strstr(err, "'a/b' is not a collection name"),
	      "refuses a collection name with '/': %s", err);
	qo.collection = "docs";
	struct pl_qdrant *q = pl_qdrant_new(&qo, err);
	CHECK(q != NULL, "a client");
	CHECK_STR(pl_qdrant_url(q), "http://localhost:6333", "credentials and trailing '/' not shown");

	struct pl_http_result r = { 0 };
	const char *body = "{\"status\":{\"error\":\"Wrong input: Vector dimension error: expected dim: 384, got 3\"},\"time\":0.1}";
	r.status = 400;
	r.body = body;
	r.len = strlen(body);
	r.tries = 1;
	CHECK(pl_qdrant_error(q, &r, err) == PL_EX_DATAERR, "400 is bad input");
	CHECK_STR(err, "qdrant: 400 Bad Request: Wrong input: Vector dimension error: expected dim: 384, got 3",
		  "a 400 in one line");
	body = "line one\nline two";
	r.status = 503;
	r.body = body;
	r.len = strlen(body);
	r.tries = 3;
	CHECK(pl_qdrant_error(q, &r, err) == PL_EX_TEMPFAIL, "503 is temporary");
	CHECK_STR(err, "qdrant: 503 Service Unavailable: line one line two (gave up after 3 tries)",
		  "a 503 folded into one line, with its tries");
	r.status = 0;
	r.len = 0;
	r.body = "";
	snprintf(r.err, sizeof r.err, "Connection refused");
	CHECK(pl_qdrant_error(q, &r, err) == PL_EX_UNAVAILABLE, "no response is unavailable");
	CHECK_STR(err, "qdrant: no response from http://localhost:6333: Connection refused (gave up after 3 tries)",
		  "no response, without credentials");
	r.status = 401;
	r.tries = 1;
	body = "Must provide an API key or an Authorization bearer token";
	r.body = body;
	r.len = strlen(body);
	CHECK(pl_qdrant_error(q, &r, err) == PL_EX_USAGE, "401 is configuration");
	CHECK_STR(err, "qdrant: 401 Unauthorized: Must provide an API key or an Authorization bearer token",
		  "a plain-text 401");
	pl_qdrant_free(q);
}

/* --- live: against a server at a URL --------------------------------------------- */

static int last_rc = -1;
static char last_err[PL_QDRANT_ERRLEN];

static void on_done(void *ud, int rc, const char *err)
{
	int *calls = ud;
	(*calls)++;
	last_rc = rc;
	snprintf(last_err, sizeof last_err, "%s", err);
}

static struct pl_qdrant_hits *async_hits;
static int async_rc = -1;

static void on_hits(void *ud, int rc, const char *err, struct pl_qdrant_hits *h)
{
	async_rc = rc;
	async_hits = h;
}

static void put_point(struct pl_buf *b, const char *rec)
{
	struct pl_jobj o = { 0 };
	struct pl_jerr e;
	const struct pl_jmember *id, *vec;
	char uuid[PL_UUID_STR];

	if (pl_json_scan_object(rec, strlen(rec), &o, &e) < 0)
		abort();
	id = pl_jobj_get(&o, "id");
	vec = pl_jobj_get(&o, "vector");
	pl_uuid5(PL_UUID_NS_PLUMB, id->val + 1, id->vallen - 2, uuid);
	pl_qdrant_point(b, uuid, vec->val, vec->vallen, &o, vec);
	pl_jobj_free(&o);
}

static void live(const char *url)
{
	struct pl_qdrant_opts qo = { 0 };
	struct pl_qdrant_info info;
	struct pl_qdrant_hits hits;
	struct pl_buf b = PL_BUF_INIT;
	char err[PL_QDRANT_ERRLEN];
	unsigned long long n = 0;
	int created, calls = 0, rc;

	pl_http_opts_default(&qo.http);
	qo.http.max_tries = 2;
	qo.http.backoff_ms = 10;
	qo.url = url;
	qo.collection = "unit test é";
	struct pl_qdrant *q = pl_qdrant_new(&qo, err);
	CHECK(q != NULL, "live: a client for %s", url);

	CHECK(pl_qdrant_delete_collection(q, err) == 0, "live: deleting a missing collection is fine");
	CHECK(pl_qdrant_info(q, &info, err) == 0 && !info.exists, "live: no collection yet");
	rc = pl_qdrant_ensure(q, 3, PL_QDRANT_DOT, 1, &info, &created, err);
	CHECK(rc == 0 && created && info.exists && info.size == 3 && info.distance == PL_QDRANT_DOT &&
	      info.doc_id_index && info.points == 0, "live: ensure creates it, with the doc_id index (%s)",
	      rc ? err : "ok");
	rc = pl_qdrant_ensure(q, 3, PL_QDRANT_DOT, 1, &info, &created, err);
	CHECK(rc == 0 && !created, "live: ensure again is a no-op");
	rc = pl_qdrant_ensure(q, 4, PL_QDRANT_DOT, 1, &info, &created, err);
	CHECK(rc == PL_EX_USAGE, "live: another size is a configuration error");
	CHECK_STR(err, "qdrant: collection \"unit test é\" holds vectors of size 3, not 4", "live: and says so");
	rc = pl_qdrant_ensure(q, 3, PL_QDRANT_COSINE, 1, &info, &created, err);
	CHECK(rc == PL_EX_USAGE && strstr(err, "uses Dot distance, not Cosine"), "live: so is another distance");

	pl_qdrant_points_begin(&b);
	put_point(&b, "{\"id\":\"a#0\",\"doc_id\":\"a\",\"doc_sha256\":\"s1\",\"chunk\":0,\"text\":\"alpha\",\"vector\":[1,0,0]}");
	put_point(&b, "{\"id\":\"a#1\",\"doc_id\":\"a\",\"doc_sha256\":\"s1\",\"chunk\":1,\"text\":\"beta\",\"vector\":[0,1,0]}");
	put_point(&b, "{\"id\":\"b#0\",\"doc_id\":\"b\",\"doc_sha256\":\"s2\",\"chunk\":0,\"text\":\"gamma\",\"vector\":[0.9,0.1,0]}");
	put_point(&b, "{\"id\":\"a#2\",\"doc_id\":\"a\",\"doc_sha256\":\"old\",\"chunk\":2,\"text\":\"stale\",\"vector\":[0,0,1]}");
	pl_qdrant_points_end(&b);
	pl_qdrant_upsert(q, b.p, b.n, on_done, &calls);
	pl_qdrant_wait(q, 0);
	CHECK(calls == 1 && last_rc == 0, "live: upsert of 4 points (%s)", last_err);
	CHECK(pl_qdrant_count(q, NULL, 0, &n, err) == 0 && n == 4, "live: 4 points");
	CHECK(pl_qdrant_count(q, "a", 1, &n, err) == 0 && n == 3, "live: 3 of document a");

	float qv[6] = { 1, 0, 0, 0, 1, 0 };
	rc = pl_qdrant_query(q, qv, 2, 3, 2, 0, NULL, &hits, err);
	CHECK(rc == 0 && hits.nq == 2 && hits.n == 4 && hits.first[0] == 0 && hits.first[1] == 2 &&
	      hits.first[2] == 4, "live: 2 queries, 2 hits each (%s)", rc ? err : "ok");
	if (rc == 0 && hits.n == 4) {
		CHECK_STR(hits.hit[0].id, "a#0", "live: nearest to [1,0,0] is a#0");
		CHECK_STR(hits.hit[0].doc_id, "a", "live: with its doc_id");
		CHECK(hits.hit[0].score > 0.99 && hits.hit[1].score < hits.hit[0].score, "live: scores descend");
		CHECK_STR(hits.hit[1].id, "b#0", "live: then b#0");
		CHECK(hits.hit[0].payload == NULL, "live: no payload unless asked");
		CHECK_STR(hits.hit[2].id, "a#1", "live: nearest to [0,1,0] is a#1");
	}
	pl_qdrant_hits_free(&hits);
	rc = pl_qdrant_query(q, qv, 1, 3, 10, 1,
			     "{\"must\":[{\"key\":\"doc_id\",\"match\":{\"value\":\"b\"}}]}", &hits, err);
	CHECK(rc == 0 && hits.n == 1 && hits.hit[0].payload &&
	      strstr(hits.hit[0].payload, "\"text\":\"gamma\"") && !strstr(hits.hit[0].payload, "vector"),
	      "live: a filter, and the payload when asked (%s)", rc ? err : hits.n ? hits.hit[0].payload : "");
	pl_qdrant_hits_free(&hits);
	rc = pl_qdrant_query(q, qv, 1, 2, 10, 0, NULL, &hits, err);
	CHECK(rc == PL_EX_DATAERR, "live: a query of the wrong size is bad input");
	CHECK_STR(err, "qdrant: 400 Bad Request: Wrong input: Vector dimension error: expected dim: 3, got 2",
		  "live: Qdrant's error in one line");

	pl_qdrant_query_submit(q, qv + 3, 1, 3, 1, 1, NULL, on_hits, NULL);
	pl_qdrant_wait(q, 0);
	CHECK(async_rc == 0 && async_hits && async_hits->n == 1 && strcmp(async_hits->hit[0].id, "a#1") == 0,
	      "live: an asynchronous query");
	pl_qdrant_hits_free(async_hits);
	free(async_hits);

	/* a document's stale points: same doc_id, another doc_sha256 */
	pl_qdrant_delete_doc(q, "a", 1, "s1", 2, 2, on_done, &calls);
	pl_qdrant_wait(q, 0);
	CHECK(calls == 2 && last_rc == 0, "live: delete stale points of a (%s)", last_err);
	CHECK(pl_qdrant_count(q, "a", 1, &n, err) == 0 && n == 2, "live: a keeps its 2 current points");
	/* and, the doc_sha256 the same, chunks past the count (re-chunked shorter) */
	pl_qdrant_delete_doc(q, "a", 1, "s1", 2, 1, on_done, &calls);
	pl_qdrant_wait(q, 0);
	CHECK(calls == 3 && last_rc == 0 && pl_qdrant_count(q, "a", 1, &n, err) == 0 && n == 1 &&
	      pl_qdrant_count(q, NULL, 0, &n, err) == 0 && n == 2,
	      "live: a re-chunked into 1 chunk keeps only a#0 (%s)", last_err);
	char idb[PL_UUID_STR];
	pl_uuid5(PL_UUID_NS_PLUMB, "b#0", 3, idb);
	const char *ids[] = { idb };
	pl_qdrant_delete_ids(q, ids, 1, on_done, &calls);
	pl_qdrant_wait(q, 0);
	CHECK(calls == 4 && last_rc == 0 && pl_qdrant_count(q, NULL, 0, &n, err) == 0 && n == 1,
	      "live: delete by id");
	pl_qdrant_delete_doc(q, "a", 1, NULL, 0, -1, on_done, &calls);
	pl_qdrant_wait(q, 0);
	CHECK(calls == 5 && last_rc == 0 && pl_qdrant_count(q, NULL, 0, &n, err) == 0 && n == 0,
	      "live: delete a whole document");

	CHECK(pl_qdrant_delete_collection(q, err) == 0 && pl_qdrant_info(q, &info, err) == 0 &&
	      !info.exists, "live: delete the collection");
	pl_qdrant_upsert(q, b.p, b.n, on_done, &calls);
	pl_qdrant_wait(q, 0);
	CHECK(last_rc == PL_EX_USAGE && strstr(last_err, "qdrant: 404 Not Found: Not found: Collection `unit test é` doesn't exist!"),
	      "live: writing to a missing collection: %s", last_err);
	pl_buf_free(&b);
	pl_qdrant_free(q);
}

int main(int argc, char **argv)
{
	offline();
	if (argc > 1)
		live(argv[1]);
	return done_testing();
}
