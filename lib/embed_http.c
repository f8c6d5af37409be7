/* The OpenAI-compatible http embedding backend: POST {base}/embeddings with
 * {"model","input":[…]} (plus "dimensions" when asked), as OpenAI, vLLM,
 * text-embeddings-inference, Ollama's /v1 and llama.cpp's server accept. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "embed.h"
#include "exitcode.h"
#include "http.h"
#include "json.h"

struct pl_embed_http {
	struct pl_embed_opts o;
	struct pl_http *http;
	char url[2048];
	char hdr[2][600];
	const char *const *headers;
	struct pl_buf body, resp;
};

struct pl_embed_http *pl_embed_http_new(const struct pl_embed_opts *o, char *err);
void pl_embed_http_free(struct pl_embed_http *h);
int pl_embed_http_batch(struct pl_embed_http *h, const char *const *texts, const size_t *lens,
			size_t n, float **out, int *dim, char *err);

void pl_embed_http_url(const char *base_url, char *out, size_t outlen)
{
	size_t n = strlen(base_url);
	while (n && base_url[n - 1] == '/')
		n--;
	snprintf(out, outlen, "%.*s/embeddings", (int)n, base_url);
}

const char *const *pl_embed_http_headers(const struct pl_embed_opts *o, char hdr[2][600])
{
	static __thread const char *list[3];

	snprintf(hdr[0], 600, "Content-Type: application/json");
	list[0] = hdr[0];
	list[1] = list[2] = NULL;
	if (o->api_key && *o->api_key) {
		snprintf(hdr[1], 600, "Authorization: Bearer %s", o->api_key);
		list[1] = hdr[1];
	}
	return list;
}

void pl_embed_http_body(const struct pl_embed_opts *o, const char *const *texts,
			const size_t *lens, size_t n, struct pl_buf *out)
{
	out->n = 0;
	pl_buf_adds(out, "{\"model\":");
	pl_json_put_str(out, o->model, strlen(o->model));
	if (o->dim > 0) {
		pl_buf_adds(out, ",\"dimensions\":");
		pl_buf_u64(out, (uint64_t)o->dim);
	}
	/* no "encoding_format": float is OpenAI's default, and the fewer fields
	 * the more servers that call themselves compatible accept the request */
	pl_buf_adds(out, ",\"input\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			pl_buf_addc(out, ',');
		pl_json_put_str(out, texts[i], lens[i]);
	}
	pl_buf_add(out, "]}", 2);
}

int pl_embed_http_parse(const char *body, size_t len, size_t n, float **out, int *dim, char *err)
{
	json_error_t je;
	json_t *j = json_loadb(body, len, 0, &je), *data;
	int status = -1;

	if (!j) {
		snprintf(err, PL_EMBED_ERRLEN, "reply is not JSON: %s", je.text);
		return -1;
	}
	data = json_object_get(j, "data");
	if (!json_is_array(data) || json_array_size(data) != n) {
		snprintf(err, PL_EMBED_ERRLEN, "reply has %zu embeddings for %zu inputs",
			 json_is_array(data) ? json_array_size(data) : 0, n);
		goto out;
	}
	char *seen = calloc(n ? n : 1, 1);
	if (!seen)
		pl_xmalloc(SIZE_MAX);
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_array_get(data, i);
		json_t *emb = json_object_get(item, "embedding");
		json_t *idx = json_object_get(item, "index");
		/* "index" says which input; servers may answer out of order */
		size_t k = json_is_integer(idx) ? (size_t)json_integer_value(idx) : i;
		if (!json_is_array(emb) || k >= n || seen[k]) {
			snprintf(err, PL_EMBED_ERRLEN, "reply item %zu has no usable embedding", i);
			free(seen);
			goto out;
		}
		seen[k] = 1;
		int d = (int)json_array_size(emb);
		if (d == 0 || (*dim && d != *dim)) {
			snprintf(err, PL_EMBED_ERRLEN, "reply item %zu has %d dimensions, not %d", i, d,
				 *dim);
			free(seen);
			goto out;
		}
		if (!*dim) {
			*dim = d;
		}
		if (i == 0 || !*out)
			*out = pl_xrealloc(*out, n * (size_t)*dim * sizeof **out);
		float *v = *out + k * (size_t)*dim;
		for (int c = 0; c < d; c++) {
			json_t *x = json_array_get(emb, (size_t)c);
			if (!json_is_number(x)) {
				snprintf(err, PL_EMBED_ERRLEN, "reply item %zu holds a non-number", i);
				free(seen);
				goto out;
			}
			v[c] = (float)json_number_value(x);
		}
	}
	free(seen);
	status = 0;
out:
	json_decref(j);
	return status;
}

int pl_embed_http_refused(long status, const char *body, size_t len)
{
	char line[300];

	if (status == 400 || status == 413 || status == 422)
		return 1;
	if (status != 500)
		return 0;
	/* llama.cpp: "input (N tokens) is too large to process. increase the
	 * physical batch size"; an input over the context answers 400 */
	pl_http_error_line(body, len, line, sizeof line);
	return strstr(line, "too large to process") != NULL;
}

struct pl_embed_http *pl_embed_http_new(const struct pl_embed_opts *o, char *err)
{
	struct pl_embed_http *h;
	struct pl_http_opts ho;

	if (!o->model || !*o->model) {
		snprintf(err, PL_EMBED_ERRLEN, "the http backend needs a model (--model)");
		return NULL;
	}
	if (!o->base_url || strncmp(o->base_url, "http", 4) != 0) {
		snprintf(err, PL_EMBED_ERRLEN, "the http backend needs an http(s) base URL (--base-url)");
		return NULL;
	}
	h = pl_xmalloc(sizeof *h);
	memset(h, 0, sizeof *h);
	h->o = *o;
	pl_http_opts_default(&ho);
	ho.timeout_ms = o->timeout_ms;
	ho.connect_timeout_ms = o->connect_timeout_ms;
	ho.max_tries = o->max_tries;
	ho.insecure = o->insecure;
	ho.parallel = 1;
	ho.final = pl_embed_http_refused;
	h->http = pl_http_new(&ho);
	pl_embed_http_url(o->base_url, h->url, sizeof h->url);
	h->headers = pl_embed_http_headers(&h->o, h->hdr);
	return h;
}

void pl_embed_http_free(struct pl_embed_http *h)
{
	if (!h)
		return;
	pl_http_free(h->http);
	pl_buf_free(&h->body);
	pl_buf_free(&h->resp);
	free(h);
}

int pl_embed_http_batch(struct pl_embed_http *h, const char *const *texts, const size_t *lens,
			size_t n, float **out, int *dim, char *err)
{
	struct pl_http_result r;
	char url[2048], line[300];

	if (n == 0) {
		*dim = 0;
		return 0;
	}
	pl_embed_http_body(&h->o, texts, lens, n, &h->body);
	pl_http_request(h->http, "POST", h->url, h->headers, h->body.p, h->body.n, &r, &h->resp);
	pl_http_redact(h->url, url, sizeof url);
	if (r.status == 0) {
		snprintf(err, PL_EMBED_ERRLEN, "'%.200s': %.200s (after %d tries)", url, r.err, r.tries);
		return r.permanent ? PL_EX_USAGE : PL_EX_UNAVAILABLE;
	}
	if (r.status != 200) {
		pl_http_error_line(r.body, r.len, line, sizeof line);
		snprintf(err, PL_EMBED_ERRLEN, "'%.200s': %ld: %.280s", url, r.status, line);
		return pl_embed_http_refused(r.status, r.body, r.len) ? PL_EX_DATAERR :
									pl_http_exit_status(r.status);
	}
	*dim = 0;
	if (pl_embed_http_parse(r.body, r.len, n, out, dim, err) < 0)
		return PL_EX_UNAVAILABLE;
	return 0;
}
