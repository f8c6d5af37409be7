#include "qdrant.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exitcode.h"

/* Bodies of writes are built by hand (raw member bytes copied from the input
 * line); jansson only reads the small replies and builds query bodies' shells. */

struct pl_qdrant {
	struct pl_http *http;
	char *base;		/* URL without trailing '/', as given (credentials kept for libcurl) */
	char *shown;		/* the same without credentials, for messages */
	char *coll;		/* the collection name, percent-encoded for paths */
	char *name;		/* the collection name as given */
	char *hdr_key;		/* "api-key: ..." or NULL */
	const char *headers[3];
	struct pl_buf url, body, resp;
};

static const char *const dist_names[] = { "Cosine", "Dot", "Euclid", "Manhattan" };

int pl_qdrant_distance_parse(const char *s, enum pl_qdrant_distance *d)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, dist_names[i]) == 0) {
			*d = (enum pl_qdrant_distance)i;
			return 0;
		}
	return -1;
}

const char *pl_qdrant_distance_name(enum pl_qdrant_distance d)
{
	return (unsigned)d < 4 ? dist_names[d] : "?";
}

const char *pl_qdrant_reason(long status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "";
	}
}

int pl_qdrant_error(const struct pl_qdrant *q, const struct pl_http_result *r, char *err)
{
	char line[600];
	char tries[48] = "";
	int retried = r->status == 0 || pl_http_retryable(r->status);

	if (retried && r->tries > 1)
		snprintf(tries, sizeof tries, " (gave up after %d tries)", r->tries);
	if (r->status == 0) {
		snprintf(err, PL_QDRANT_ERRLEN, "qdrant: no response from %s: %s%s", q->shown,
			 r->err[0] ? r->err : "connection failed", tries);
		return r->permanent ? PL_EX_USAGE : PL_EX_UNAVAILABLE;
	}
	pl_http_error_line(r->body, r->len, line, sizeof line);
	const char *reason = pl_qdrant_reason(r->status);
	snprintf(err, PL_QDRANT_ERRLEN, "qdrant: %ld%s%s: %s%s", r->status, *reason ? " " : "", reason,
		 line[0] ? line : "(empty response)", tries);
	return pl_http_exit_status(r->status);
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == '/' || *p == '\\' || *p == 0x7f)
			return 0;
	return 1;
}

static char *pct_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct pl_buf b = PL_BUF_INIT;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			pl_buf_addc(&b, (char)*p);
		} else {
			pl_buf_addc(&b, '%');
			pl_buf_addc(&b, hex[*p >> 4]);
			pl_buf_addc(&b, hex[*p & 15]);
		}
	}
	pl_buf_cstr(&b);
	return b.p;
}

struct pl_qdrant *pl_qdrant_new(const struct pl_qdrant_opts *o, char *err)
{
	const char *url = o->url && *o->url ? o->url : PL_QDRANT_DEFAULT_URL;
	struct pl_qdrant *q;
	size_t n = strlen(url);
	char shown[1024];

	if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
		snprintf(err, PL_QDRANT_ERRLEN, "qdrant: '%.200s' is not an http:// or https:// URL", url);
		return NULL;
	}
	if (strchr(url, '?') || strchr(url, '#')) {
		snprintf(err, PL_QDRANT_ERRLEN, "qdrant: the URL must not have a query or fragment");
		return NULL;
	}
	if (!o->collection || !name_ok(o->collection)) {
		snprintf(err, PL_QDRANT_ERRLEN, "qdrant: '%.200s' is not a collection name "
			 "(1 to 255 bytes, no '/', '\\' or control characters)",
			 o->collection ? o->collection : "");
		return NULL;
	}
	if (o->api_key && (strchr(o->api_key, '\n') || strchr(o->api_key, '\r'))) {
		snprintf(err, PL_QDRANT_ERRLEN, "qdrant: the API key holds a line break");
		return NULL;
	}
	q = pl_xmalloc(sizeof *q);
	memset(q, 0, sizeof *q);
	while (n > 8 && url[n - 1] == '/')
		n--;
	q->base = pl_xstrndup(url, n);
	pl_http_redact(q->base, shown, sizeof shown);
	q->shown = pl_xstrdup(shown);
	q->name = pl_xstrdup(o->collection);
	q->coll = pct_encode(o->collection);
	q->headers[0] = "Content-Type: application/json";
	if (o->api_key && *o->api_key) {
		struct pl_buf h = PL_BUF_INIT;
		pl_buf_adds(&h, "api-key: ");
		pl_buf_adds(&h, o->api_key);
		pl_buf_cstr(&h);
		q->hdr_key = h.p;
		q->headers[1] = q->hdr_key;
	}
	q->http = pl_http_new(&o->http);
	/* pl_http_request copies replies into resp with pl_buf_add, which must
	 * not memcpy into a NULL buffer, even 0 bytes (UBSan) */
	pl_buf_reserve(&q->resp, 4096);
	return q;
}

void pl_qdrant_free(struct pl_qdrant *q)
{
	if (!q)
		return;
	pl_http_free(q->http);
	if (q->hdr_key) {
		/* the key should not linger in freed memory */
		memset(q->hdr_key, 0, strlen(q->hdr_key));
		free(q->hdr_key);
	}
	free(q->base);
	free(q->shown);
	free(q->coll);
	free(q->name);
	pl_buf_free(&q->url);
	pl_buf_free(&q->body);
	pl_buf_free(&q->resp);
	free(q);
}

const char *pl_qdrant_url(const struct pl_qdrant *q)
{
	return q->shown;
}

size_t pl_qdrant_pending(const struct pl_qdrant *q)
{
	return pl_http_pending(q->http);
}

void pl_qdrant_wait(struct pl_qdrant *q, size_t n)
{
	pl_http_wait(q->http, n);
}

/* base + "/collections/" + name + suffix, into q->url */
static const char *url_for(struct pl_qdrant *q, const char *suffix)
{
	q->url.n = 0;
	pl_buf_adds(&q->url, q->base);
	pl_buf_adds(&q->url, "/collections/");
	pl_buf_adds(&q->url, q->coll);
	pl_buf_adds(&q->url, suffix);
	return pl_buf_cstr(&q->url);
}

/* A reply's "result", or NULL with err filled. The caller decrefs the root. */
static json_t *parse_result(struct pl_qdrant *q, const char *body, size_t len, json_t **root,
			    char *err)
{
	json_error_t je;
	json_t *j = json_loadb(body, len, 0, &je);
	json_t *r = j ? json_object_get(j, "result") : NULL;

	*root = j;
	if (!r) {
		char line[200];
		pl_http_error_line(body, len, line, sizeof line);
		snprintf(err, PL_QDRANT_ERRLEN, "qdrant: unexpected reply from %s: %s", q->shown,
			 line[0] ? line : "(empty)");
	}
	return r;
}

/* A synchronous request to a collection path; on 2xx *root and *result are
 * set (decref root), else a PL_EX_* status with err. *status gets the HTTP status. */
static int sync_req(struct pl_qdrant *q, const char *method, const char *suffix, const char *body,
		    size_t len, long *status, json_t **root, json_t **result, char *err)
{
	struct pl_http_result r;

	*root = *result = NULL;
	pl_http_request(q->http, method, url_for(q, suffix), q->headers, body, len, &r, &q->resp);
	*status = r.status;
	if (r.status < 200 || r.status > 299)
		return pl_qdrant_error(q, &r, err);
	*result = parse_result(q, r.body, r.len, root, err);
	return *result ? 0 : PL_EX_UNAVAILABLE;
}

static void read_vector_params(json_t *v, struct pl_qdrant_info *info)
{
	json_t *size = json_object_get(v, "size"), *dist = json_object_get(v, "distance");

	if (json_is_integer(size)) {
		info->size = (long)json_integer_value(size);
		if (json_is_string(dist))
			pl_qdrant_distance_parse(json_string_value(dist), &info->distance);
	} else {
		info->named = 1;
		info->size = 0;
	}
}

int pl_qdrant_info(struct pl_qdrant *q, struct pl_qdrant_info *info, char *err)
{
	json_t *root, *res;
	long status;
	int rc;

	memset(info, 0, sizeof *info);
	info->points = -1;
	rc = sync_req(q, "GET", "", NULL, 0, &status, &root, &res, err);
	if (rc) {
		json_decref(root);
		return status == 404 ? 0 : rc;
	}
	info->exists = 1;
	json_t *vectors = json_object_get(json_object_get(json_object_get(res, "config"), "params"),
					  "vectors");
	if (json_is_object(vectors))
		read_vector_params(vectors, info);
	else
		info->named = 1;	/* no dense vectors at all (sparse only) */
	json_t *schema = json_object_get(res, "payload_schema");
	info->doc_id_index = json_object_get(schema, "doc_id") != NULL;
	json_t *pc = json_object_get(res, "points_count");
	if (json_is_integer(pc))
		info->points = (long long)json_integer_value(pc);
	json_decref(root);
	return 0;
}

/* The update result of a write: "completed" (wait=true) is the only success. */
static int check_update(struct pl_qdrant *q, const char *body, size_t len, char *err)
{
	json_t *root, *res = parse_result(q, body, len, &root, err);
	int rc = 0;

	if (!res) {
		rc = PL_EX_UNAVAILABLE;
	} else if (json_is_object(res)) {
		const char *st = json_string_value(json_object_get(res, "status"));
		if (st && strcmp(st, "completed") != 0) {
			snprintf(err, PL_QDRANT_ERRLEN, "qdrant: the write was not confirmed (status \"%s\")",
				 st);
			rc = PL_EX_TEMPFAIL;
		}
	}
	json_decref(root);
	return rc;
}

int pl_qdrant_create_index(struct pl_qdrant *q, const char *field, const char *schema, char *err)
{
	json_t *root, *res;
	long status;
	struct pl_buf b = PL_BUF_INIT;
	int rc;

	pl_buf_adds(&b, "{\"field_name\":");
	pl_json_put_str(&b, field, strlen(field));
	pl_buf_adds(&b, ",\"field_schema\":");
	pl_json_put_str(&b, schema, strlen(schema));
	pl_buf_addc(&b, '}');
	rc = sync_req(q, "PUT", "/index?wait=true", b.p, b.n, &status, &root, &res, err);
	json_decref(root);
	pl_buf_free(&b);
	return rc;
}

static int create(struct pl_qdrant *q, long size, enum pl_qdrant_distance d, long *status, char *err)
{
	json_t *root, *res;
	char body[128];
	int n = snprintf(body, sizeof body, "{\"vectors\":{\"size\":%ld,\"distance\":\"%s\"}}", size,
			 pl_qdrant_distance_name(d));
	int rc = sync_req(q, "PUT", "", body, (size_t)n, status, &root, &res, err);
	json_decref(root);
	return rc;
}

int pl_qdrant_ensure(struct pl_qdrant *q, long size, enum pl_qdrant_distance d,
		     int check_distance, struct pl_qdrant_info *info, int *created, char *err)
{
	long status;
	int rc;

	*created = 0;
	if ((rc = pl_qdrant_info(q, info, err)))
		return rc;
	if (!info->exists) {
		rc = create(q, size, d, &status, err);
		if (rc && status != 409)	/* 409: created meanwhile by someone else */
			return rc;
		*created = rc == 0;
		if ((rc = pl_qdrant_info(q, info, err)))
			return rc;
		if (!info->exists) {
			snprintf(err, PL_QDRANT_ERRLEN, "qdrant: collection \"%s\" was created but cannot be read",
				 q->name);
			return PL_EX_UNAVAILABLE;
		}
	}
	if (info->named) {
		snprintf(err, PL_QDRANT_ERRLEN, "qdrant: collection \"%s\" uses named vectors; "
			 "plumb writes one unnamed vector per point", q->name);
		return PL_EX_USAGE;
	}
	if (info->size != size) {
		snprintf(err, PL_QDRANT_ERRLEN, "qdrant: collection \"%s\" holds vectors of size %ld, "
			 "not %ld", q->name, info->size, size);
		return PL_EX_USAGE;
	}
	if (check_distance && info->distance != d) {
		snprintf(err, PL_QDRANT_ERRLEN, "qdrant: collection \"%s\" uses %s distance, not %s",
			 q->name, pl_qdrant_distance_name(info->distance), pl_qdrant_distance_name(d));
		return PL_EX_USAGE;
	}
	if (!info->doc_id_index) {
		if ((rc = pl_qdrant_create_index(q, "doc_id", "keyword", err)))
			return rc;
		info->doc_id_index = 1;
	}
	return 0;
}

int pl_qdrant_delete_collection(struct pl_qdrant *q, char *err)
{
	json_t *root, *res;
	long status;
	int rc = sync_req(q, "DELETE", "", NULL, 0, &status, &root, &res, err);
	json_decref(root);
	return rc && status == 404 ? 0 : rc;
}

static void put_match(struct pl_buf *b, const char *key, const char *v, size_t n)
{
	pl_buf_adds(b, "{\"key\":\"");
	pl_buf_adds(b, key);
	pl_buf_adds(b, "\",\"match\":{\"value\":");
	pl_json_put_str(b, v, n);
	pl_buf_adds(b, "}}");
}

int pl_qdrant_count(struct pl_qdrant *q, const char *doc_id, size_t n, unsigned long long *count,
		    char *err)
{
	struct pl_buf b = PL_BUF_INIT;
	json_t *root, *res;
	long status;
	int rc;

	pl_buf_adds(&b, "{\"exact\":true");
	if (doc_id) {
		pl_buf_adds(&b, ",\"filter\":{\"must\":[");
		put_match(&b, "doc_id", doc_id, n);
		pl_buf_adds(&b, "]}");
	}
	pl_buf_addc(&b, '}');
	rc = sync_req(q, "POST", "/points/count", b.p, b.n, &status, &root, &res, err);
	if (rc == 0) {
		json_t *c = json_object_get(res, "count");
		if (json_is_integer(c)) {
			*count = (unsigned long long)json_integer_value(c);
		} else {
			snprintf(err, PL_QDRANT_ERRLEN, "qdrant: unexpected reply to a count from %s", q->shown);
			rc = PL_EX_UNAVAILABLE;
		}
	}
	json_decref(root);
	pl_buf_free(&b);
	return rc;
}

/* --- writes ------------------------------------------------------------------ */

void pl_qdrant_points_begin(struct pl_buf *b)
{
	pl_buf_adds(b, "{\"points\":[");
}

void pl_qdrant_point(struct pl_buf *b, const char *uuid, const char *vec, size_t veclen,
		     const struct pl_jobj *rec, const struct pl_jmember *skip)
{
	int first = 1;

	if (b->n && b->p[b->n - 1] == '}')
		pl_buf_addc(b, ',');
	pl_buf_reserve(b, 48 + veclen + 16);
	pl_buf_add(b, "{\"id\":\"", 7);
	pl_buf_adds(b, uuid);
	pl_buf_add(b, "\",\"vector\":", 11);
	pl_buf_add(b, vec, veclen);
	pl_buf_add(b, ",\"payload\":{", 12);
	for (size_t i = 0; i < rec->n; i++) {
		const struct pl_jmember *m = &rec->m[i];
		if (m == skip)
			continue;
		if (!first)
			pl_buf_addc(b, ',');
		first = 0;
		pl_json_put_member(b, m);
	}
	pl_buf_add(b, "}}", 2);
}

void pl_qdrant_points_end(struct pl_buf *b)
{
	pl_buf_add(b, "]}", 2);
}

long pl_qdrant_vector_size(const char *raw, size_t n)
{
	const char *p = raw, *end = raw + n;
	long count = 0;

	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	if (p >= end || *p != '[')
		return -1;
	p++;
	for (;;) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
			p++;
		if (p >= end)
			return -1;
		if (*p == ']')
			return count;
		if (*p != '-' && (*p < '0' || *p > '9'))
			return -1;
		count++;
		/* a number holds no ',' or ']': skip to the next separator */
		while (p < end && *p != ',' && *p != ']')
			p++;
		if (p < end && *p == ',')
			p++;
	}
}

struct areq {
	struct pl_qdrant *q;
	pl_qdrant_cb cb;
	void *ud;
};

static void on_write(void *ud, const struct pl_http_result *r)
{
	struct areq *a = ud;
	char err[PL_QDRANT_ERRLEN];
	int rc;

	err[0] = '\0';
	if (r->status >= 200 && r->status <= 299)
		rc = check_update(a->q, r->body, r->len, err);
	else
		rc = pl_qdrant_error(a->q, r, err);
	a->cb(a->ud, rc, err);
	free(a);
}

static void submit_write(struct pl_qdrant *q, const char *method, const char *suffix, const char *body,
			 size_t len, pl_qdrant_cb cb, void *ud)
{
	struct areq *a = pl_xmalloc(sizeof *a);

	a->q = q;
	a->cb = cb;
	a->ud = ud;
	/* q->url is safe to pass: callbacks never build URLs */
	pl_http_submit(q->http, method, url_for(q, suffix), q->headers, body, len, on_write, a);
}

void pl_qdrant_upsert(struct pl_qdrant *q, const char *body, size_t len, pl_qdrant_cb cb, void *ud)
{
	submit_write(q, "PUT", "/points?wait=true", body, len, cb, ud);
}

void pl_qdrant_delete_doc(struct pl_qdrant *q, const char *doc_id, size_t n, const char *keep_sha,
			  size_t shan, int64_t chunks, pl_qdrant_cb cb, void *ud)
{
	struct pl_buf *b = &q->body;

	b->n = 0;
	pl_buf_adds(b, "{\"filter\":{\"must\":[");
	put_match(b, "doc_id", doc_id, n);
	pl_buf_addc(b, ']');
	if (keep_sha && chunks < 0) {
		pl_buf_adds(b, ",\"must_not\":[");
		put_match(b, "doc_sha256", keep_sha, shan);
		pl_buf_addc(b, ']');
	} else if (keep_sha) {
		/* doc_id = X and (doc_sha256 != sha or chunk >= chunks): Qdrant
		 * has no "or" but "should", and no "!=" but a nested must_not */
		pl_buf_adds(b, ",\"should\":[{\"must_not\":[");
		put_match(b, "doc_sha256", keep_sha, shan);
		pl_buf_adds(b, "]},{\"key\":\"chunk\",\"range\":{\"gte\":");
		pl_buf_i64(b, chunks);
		pl_buf_adds(b, "}}]");
	}
	pl_buf_adds(b, "}}");
	/* q->body is reused: pl_http_submit copies it, and no callback builds a body */
	submit_write(q, "POST", "/points/delete?wait=true", b->p, b->n, cb, ud);
}

void pl_qdrant_delete_ids(struct pl_qdrant *q, const char *const *ids, size_t n, pl_qdrant_cb cb,
			  void *ud)
{
	struct pl_buf b = PL_BUF_INIT;

	pl_buf_adds(&b, "{\"points\":[");
	for (size_t i = 0; i < n; i++) {
		const char *id = ids[i];
		size_t k = strspn(id, "0123456789");
		if (i)
			pl_buf_addc(&b, ',');
		if (k && id[k] == '\0')
			pl_buf_adds(&b, id);	/* an unsigned integer id */
		else
			pl_json_put_str(&b, id, strlen(id));
	}
	pl_buf_adds(&b, "]}");
	submit_write(q, "POST", "/points/delete?wait=true", b.p, b.n, cb, ud);
	pl_buf_free(&b);
}

/* --- queries ------------------------------------------------------------------ */

void pl_qdrant_hits_free(struct pl_qdrant_hits *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++) {
		free(h->hit[i].id);
		free(h->hit[i].doc_id);
		free(h->hit[i].payload);
	}
	free(h->hit);
	free(h->first);
	memset(h, 0, sizeof *h);
}

static void query_body(struct pl_buf *b, const float *vecs, size_t nq, size_t dim, int k,
		       int with_payload, const char *filter)
{
	char num[32];

	b->n = 0;
	pl_buf_adds(b, "{\"searches\":[");
	for (size_t i = 0; i < nq; i++) {
		if (i)
			pl_buf_addc(b, ',');
		pl_buf_adds(b, "{\"query\":[");
		for (size_t j = 0; j < dim; j++) {
			float f = vecs[i * dim + j];
			int len = snprintf(num, sizeof num, "%s%.9g", j ? "," : "",
					   f == f && f - f == 0 ? (double)f : 0.0);	/* no NaN or inf in JSON */
			pl_buf_add(b, num, (size_t)len);
		}
		pl_buf_adds(b, "],\"limit\":");
		pl_buf_u64(b, (uint64_t)(k > 0 ? k : 10));
		pl_buf_adds(b, with_payload ? ",\"with_payload\":true" :
			       ",\"with_payload\":[\"id\",\"doc_id\"]");
		if (filter && *filter) {
			pl_buf_adds(b, ",\"filter\":");
			pl_buf_adds(b, filter);
		}
		pl_buf_addc(b, '}');
	}
	pl_buf_adds(b, "]}");
}

static char *point_id(json_t *id)
{
	char num[32];

	if (json_is_string(id))
		return pl_xstrdup(json_string_value(id));
	if (json_is_integer(id)) {
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
		return pl_xstrdup(num);
	}
	return pl_xstrdup("");
}

/* Parse a query/batch reply into out. Returns 0, or PL_EX_UNAVAILABLE. */
static int parse_hits(struct pl_qdrant *q, const char *body, size_t len, size_t nq,
		      struct pl_qdrant_hits *out, int with_payload, char *err)
{
	json_t *root, *res = parse_result(q, body, len, &root, err);
	size_t total = 0, cap = 0, i;
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (!res) {
		json_decref(root);
		return PL_EX_UNAVAILABLE;
	}
	if (!json_is_array(res) || json_array_size(res) != nq) {
		snprintf(err, PL_QDRANT_ERRLEN, "qdrant: unexpected reply to a query from %s "
			 "(%zu results for %zu queries)", q->shown,
			 json_is_array(res) ? json_array_size(res) : (size_t)0, nq);
		json_decref(root);
		return PL_EX_UNAVAILABLE;
	}
	out->nq = nq;
	out->first = pl_xmalloc((nq + 1) * sizeof *out->first);
	for (i = 0; i < nq; i++) {
		json_t *pts = json_object_get(json_array_get(res, i), "points");
		size_t j;
		json_t *p;

		out->first[i] = total;
		if (!json_is_array(pts)) {
			snprintf(err, PL_QDRANT_ERRLEN, "qdrant: unexpected reply to a query from %s "
				 "(no \"points\")", q->shown);
			rc = PL_EX_UNAVAILABLE;
			break;
		}
		json_array_foreach(pts, j, p) {
			json_t *payload = json_object_get(p, "payload");
			json_t *rid = json_object_get(payload, "id");
			json_t *did = json_object_get(payload, "doc_id");
			struct pl_qdrant_hit *h;

			if (total == cap) {
				cap = cap ? 2 * cap : 64;
				out->hit = pl_xrealloc(out->hit, cap * sizeof *out->hit);
			}
			h = &out->hit[total++];
			memset(h, 0, sizeof *h);
			h->id = json_is_string(rid) ? pl_xstrdup(json_string_value(rid)) :
						      point_id(json_object_get(p, "id"));
			h->doc_id = json_is_string(did) ? pl_xstrdup(json_string_value(did)) : NULL;
			h->score = json_number_value(json_object_get(p, "score"));
			if (with_payload)
				h->payload = json_is_object(payload) ?
					json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY) :
					pl_xstrdup("{}");
		}
		out->n = total;
	}
	out->n = total;
	if (rc == 0)
		out->first[nq] = total;
	else
		pl_qdrant_hits_free(out);
	json_decref(root);
	return rc;
}

int pl_qdrant_query(struct pl_qdrant *q, const float *vecs, size_t nq, size_t dim, int k,
		    int with_payload, const char *filter, struct pl_qdrant_hits *out, char *err)
{
	struct pl_http_result r;
	struct pl_buf b = PL_BUF_INIT;
	int rc;

	memset(out, 0, sizeof *out);
	query_body(&b, vecs, nq, dim, k, with_payload, filter);
	pl_http_request(q->http, "POST", url_for(q, "/points/query/batch"), q->headers, b.p, b.n, &r,
			&q->resp);
	pl_buf_free(&b);
	if (r.status < 200 || r.status > 299)
		return pl_qdrant_error(q, &r, err);
	rc = parse_hits(q, r.body, r.len, nq, out, with_payload, err);
	return rc;
}

struct qreq {
	struct pl_qdrant *q;
	size_t nq;
	int with_payload;
	pl_qdrant_query_cb cb;
	void *ud;
};

static void on_query(void *ud, const struct pl_http_result *r)
{
	struct qreq *a = ud;
	char err[PL_QDRANT_ERRLEN];
	struct pl_qdrant_hits *h = NULL;
	int rc;

	err[0] = '\0';
	if (r->status >= 200 && r->status <= 299) {
		h = pl_xmalloc(sizeof *h);
		rc = parse_hits(a->q, r->body, r->len, a->nq, h, a->with_payload, err);
		if (rc) {
			free(h);
			h = NULL;
		}
	} else {
		rc = pl_qdrant_error(a->q, r, err);
	}
	a->cb(a->ud, rc, err, h);
	free(a);
}

void pl_qdrant_query_submit(struct pl_qdrant *q, const float *vecs, size_t nq, size_t dim, int k,
			    int with_payload, const char *filter, pl_qdrant_query_cb cb, void *ud)
{
	struct qreq *a = pl_xmalloc(sizeof *a);
	struct pl_buf b = PL_BUF_INIT;

	a->q = q;
	a->nq = nq;
	a->with_payload = with_payload;
	a->cb = cb;
	a->ud = ud;
	query_body(&b, vecs, nq, dim, k, with_payload, filter);
	pl_http_submit(q->http, "POST", url_for(q, "/points/query/batch"), q->headers, b.p, b.n,
		       on_query, a);
	pl_buf_free(&b);
}
