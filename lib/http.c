#include "http.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "exitcode.h"

#ifndef PLUMB_VERSION
#define PLUMB_VERSION "0.0.0"
#endif

struct req {
	struct pl_http *h;
	CURL *e;
	char *method, *url, *body;
	size_t len;
	struct curl_slist *hdrs;
	pl_http_cb cb;
	void *ud;
	int tries;
	long retry_after_ms;	/* from the last response, or -1 */
	double due;		/* when waiting to retry */
	struct pl_buf resp;
	char errbuf[CURL_ERROR_SIZE];
	struct req *next;
};

struct pl_http {
	struct pl_http_opts o;
	CURLM *m;
	size_t pending;		/* submitted, not final */
	size_t active;		/* in the multi handle now */
	struct req *waiting;	/* waiting to retry */
	unsigned long long rng;
};

static int curl_ready;

void pl_http_opts_default(struct pl_http_opts *o)
{
	memset(o, 0, sizeof *o);
	o->connect_timeout_ms = 10000;
	o->timeout_ms = 60000;
	o->max_tries = 5;
	o->backoff_ms = 500;
	o->backoff_max_ms = 30000;
	o->retry_after_max_ms = 120000;
	o->parallel = 4;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct pl_http *pl_http_new(const struct pl_http_opts *o)
{
	struct pl_http *h = pl_xmalloc(sizeof *h);

	if (!curl_ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		curl_ready = 1;
	}
	memset(h, 0, sizeof *h);
	h->o = *o;
	if (h->o.parallel < 1)
		h->o.parallel = 1;
	if (h->o.max_tries < 1)
		h->o.max_tries = 1;
	h->m = curl_multi_init();
	if (!h->m)
		pl_xmalloc(SIZE_MAX);
	/* keep connections to the server open between requests */
	curl_multi_setopt(h->m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->o.parallel);
	h->rng = (unsigned long long)time(NULL) ^ (unsigned long long)(uintptr_t)h;
	return h;
}

static void req_free(struct req *r)
{
	if (r->e)
		curl_easy_cleanup(r->e);
	curl_slist_free_all(r->hdrs);
	free(r->method);
	free(r->url);
	free(r->body);
	pl_buf_free(&r->resp);
	free(r);
}

void pl_http_free(struct pl_http *h)
{
	if (!h)
		return;
	/* abandon whatever is unfinished: a caller that wanted it waited */
	while (h->waiting) {
		struct req *r = h->waiting;
		h->waiting = r->next;
		req_free(r);
	}
	curl_multi_cleanup(h->m);
	free(h);
}

int pl_http_retryable(long status)
{
	return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

int pl_http_exit_status(long status)
{
	if (status == 429 || status == 503)
		return PL_EX_TEMPFAIL;
	if (status == 0 || status >= 500)
		return PL_EX_UNAVAILABLE;
	if (status == 401 || status == 403 || status == 404)
		return PL_EX_USAGE;
	return PL_EX_DATAERR;
}

void pl_http_redact(const char *url, char *out, size_t n)
{
	const char *scheme = strstr(url, "://");
	const char *start = scheme ? scheme + 3 : url;
	const char *slash = strchr(start, '/');
	const char *at = strchr(start, '@');

	if (at && (!slash || at < slash))
		snprintf(out, n, "%.*s%s", (int)(start - url), url, at + 1);
	else
		snprintf(out, n, "%s", url);
}

void pl_http_error_line(const char *body, size_t len, char *out, size_t n)
{
	json_error_t je;
	json_t *j = json_loadb(body, len, 0, &je);
	const char *msg = NULL;

	if (j) {
		json_t *e = json_object_get(j, "error");
		json_t *s = json_object_get(j, "status");
		if (json_is_string(e))
			msg = json_string_value(e);
		else if (json_is_object(e) && json_is_string(json_object_get(e, "message")))
			msg = json_string_value(json_object_get(e, "message"));
		else if (json_is_object(s) && json_is_string(json_object_get(s, "error")))
			msg = json_string_value(json_object_get(s, "error"));
		/* vLLM's and text-embeddings-inference's OpenAI routes; FastAPI */
		else if (json_is_string(json_object_get(j, "message")))
			msg = json_string_value(json_object_get(j, "message"));
		else if (json_is_string(json_object_get(j, "detail")))
			msg = json_string_value(json_object_get(j, "detail"));
	}
	if (msg) {
		snprintf(out, n, "%s", msg);
	} else {
		size_t k = 0;
		for (size_t i = 0; i < len && k + 1 < n; i++)
			out[k++] = body[i] == '\n' || body[i] == '\r' || body[i] == '\t' ? ' ' : body[i];
		out[k] = '\0';
	}
	json_decref(j);
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct req *r = ud;
	pl_buf_add(&r->resp, p, size * nmemb);
	return size * nmemb;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct req *r = ud;
	size_t n = size * nmemb;

	if (n > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
		char v[128];
		size_t k = n - 12 < sizeof v - 1 ? n - 12 : sizeof v - 1;
		memcpy(v, p + 12, k);
		v[k] = '\0';
		char *s = v;
		while (*s == ' ' || *s == '\t')
			s++;
		char *end;
		double secs = strtod(s, &end);
		if (end != s && (*end == '\0' || *end == '\r' || *end == '\n' || *end == ' ')) {
			r->retry_after_ms = secs < 0 ? 0 : (long)(secs * 1000);
		} else {
			/* an HTTP-date */
			time_t t = curl_getdate(s, NULL);
			if (t > 0) {
				double d = difftime(t, time(NULL));
				r->retry_after_ms = d > 0 ? (long)(d * 1000) : 0;
			}
		}
	}
	return n;
}

static void start(struct pl_http *h, struct req *r)
{
	if (!r->e) {
		r->e = curl_easy_init();
		if (!r->e)
			pl_xmalloc(SIZE_MAX);
	} else {
		curl_easy_reset(r->e);
	}
	CURL *e = r->e;
	r->resp.n = 0;
	r->retry_after_ms = -1;
	r->errbuf[0] = '\0';
	r->tries++;
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	if (r->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
	} else if (strcmp(r->method, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->o.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->o.timeout_ms);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "plumb/" PLUMB_VERSION);
	if (h->o.insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (h->o.ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, h->o.ca_file);
	curl_multi_add_handle(h->m, e);
	h->active++;
}

/* Errors worth another try: the network, not the request. */
static int transient(CURLcode c)
{
	switch (c) {
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_LOGIN_DENIED:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return 0;
	default:
		return 1;
	}
}

static double jitter(struct pl_http *h)
{
	/* xorshift: no need for more than spreading retries apart */
	h->rng ^= h->rng << 13;
	h->rng ^= h->rng >> 7;
	h->rng ^= h->rng << 17;
	return 0.5 + 0.5 * (double)(h->rng >> 11) / (double)(1ull << 53);
}

static void finish(struct pl_http *h, struct req *r, CURLcode c)
{
	long status = 0;
	struct pl_http_result res;

	curl_multi_remove_handle(h->m, r->e);
	h->active--;
	if (c == CURLE_OK)
		curl_easy_getinfo(r->e, CURLINFO_RESPONSE_CODE, &status);
	int again = c == CURLE_OK ? pl_http_retryable(status) : transient(c);
	if (again && c == CURLE_OK && h->o.final && h->o.final(status, r->resp.p, r->resp.n))
		again = 0;
	if (again && r->tries < h->o.max_tries) {
		long delay;
		if (r->retry_after_ms >= 0 && status) {
			delay = r->retry_after_ms < h->o.retry_after_max_ms ? r->retry_after_ms :
									     h->o.retry_after_max_ms;
		} else {
			double d = (double)h->o.backoff_ms;
			for (int i = 1; i < r->tries && d < (double)h->o.backoff_max_ms; i++)
				d *= 2;
			if (d > (double)h->o.backoff_max_ms)
				d = (double)h->o.backoff_max_ms;
			delay = (long)(d * jitter(h));
		}
		r->due = now() + (double)delay / 1000.0;
		r->next = h->waiting;
		h->waiting = r;
		return;
	}
	memset(&res, 0, sizeof res);
	res.status = status;
	res.tries = r->tries;
	res.body = r->resp.p ? r->resp.p : "";
	res.len = r->resp.n;
	if (c != CURLE_OK) {
		snprintf(res.err, sizeof res.err, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(c));
		res.permanent = !transient(c);
	}
	h->pending--;
	r->cb(r->ud, &res);
	req_free(r);
}

/* One round: start due retries, move transfers, finish what is done; wait
 * at most cap_ms for something to happen. */
static void step_for(struct pl_http *h, int cap_ms)
{
	double t = now(), next = 0;
	struct req **pp = &h->waiting;
	int running;

	while (*pp) {
		struct req *r = *pp;
		if (r->due <= t && h->active < (size_t)h->o.parallel) {
			*pp = r->next;
			start(h, r);
		} else {
			if (!next || r->due < next)
				next = r->due;
			pp = &r->next;
		}
	}
	curl_multi_perform(h->m, &running);
	CURLMsg *msg;
	int left, progress = 0;
	while ((msg = curl_multi_info_read(h->m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct req *r;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		finish(h, r, msg->data.result);
		progress = 1;
	}
	/* a finished request frees a slot: return so the caller fills it now,
	 * rather than after waiting for the next reply */
	if (h->pending == 0 || progress)
		return;
	int wait_ms = cap_ms;
	if (next) {
		double d = (next - now()) * 1000;
		wait_ms = d < 0 ? 0 : d < cap_ms ? (int)d + 1 : cap_ms;
	}
	if (h->active)
		curl_multi_poll(h->m, NULL, 0, wait_ms, NULL);
	else if (wait_ms > 0) {
		struct timespec ts = { wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

size_t pl_http_pending(const struct pl_http *h)
{
	return h->pending;
}

static void step(struct pl_http *h)
{
	step_for(h, 1000);
}

void pl_http_poll(struct pl_http *h, long timeout_ms)
{
	if (h->pending)
		step_for(h, timeout_ms < 0 ? 0 : timeout_ms > 1000 ? 1000 : (int)timeout_ms);
}

void pl_http_wait(struct pl_http *h, size_t n)
{
	while (h->pending > n)
		step(h);
}

void pl_http_submit(struct pl_http *h, const char *method, const char *url,
		    const char *const *headers, const char *body, size_t len, pl_http_cb cb, void *ud)
{
	struct req *r;

	while (h->pending >= (size_t)h->o.parallel)
		step(h);
	r = pl_xmalloc(sizeof *r);
	memset(r, 0, sizeof *r);
	r->h = h;
	r->method = pl_xstrdup(method);
	r->url = pl_xstrdup(url);
	if (body) {
		r->body = pl_xmalloc(len + 1);
		memcpy(r->body, body, len);
		r->body[len] = '\0';
		r->len = len;
	}
	for (size_t i = 0; headers && headers[i]; i++) {
		struct curl_slist *l = curl_slist_append(r->hdrs, headers[i]);
		if (!l)
			pl_xmalloc(SIZE_MAX);
		r->hdrs = l;
	}
	/* no "Expect: 100-continue": it costs a round trip per POST, waiting
	 * for an interim reply that some servers never send */
	struct curl_slist *l = curl_slist_append(r->hdrs, "Expect:");
	if (!l)
		pl_xmalloc(SIZE_MAX);
	r->hdrs = l;
	r->cb = cb;
	r->ud = ud;
	h->pending++;
	start(h, r);
	int running;
	curl_multi_perform(h->m, &running);
}

struct sync {
	struct pl_http_result *r;
	struct pl_buf *body;
	int done;
};

static void sync_done(void *ud, const struct pl_http_result *res)
{
	struct sync *s = ud;
	*s->r = *res;
	s->body->n = 0;
	pl_buf_add(s->body, res->body, res->len);
	pl_buf_cstr(s->body);
	s->r->body = s->body->p;
	s->done = 1;
}

void pl_http_request(struct pl_http *h, const char *method, const char *url,
		     const char *const *headers, const char *req, size_t len,
		     struct pl_http_result *r, struct pl_buf *body)
{
	struct sync s = { r, body, 0 };

	pl_http_submit(h, method, url, headers, req, len, sync_done, &s);
	while (!s.done)
		step(h);
}
