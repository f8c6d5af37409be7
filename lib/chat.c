/* Chat completions: requests, replies, cache, and the ordered client (chat.h). */
#include "chat.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exitcode.h"
#include "hash.h"
#include "http.h"
#include "json.h"
#include "vcache.h"

#define CACHE_PREFIX "plumb:chat:"
/* bumped when the body, key or stored value change form, so old entries miss */
#define KEY_TAG "plumb-chat-v1"

struct slot {
	struct pl_chat *c;
	int done;
	double t0;
	unsigned char key[32];
	struct pl_buf store;	/* the reply's strings */
	struct pl_chat_reply r;
};

struct pl_chat {
	struct pl_chat_opts o;
	char *base_url, *api_key, *model, *stop[PL_CHAT_MAX_STOP];
	pl_chat_cb cb;
	void *ctx;
	struct pl_http *http;
	char url[2048];
	char *hdr[2];
	const char *headers[3];

	/* cache */
	struct pl_vcache *cache;	/* a directory or Redis (lib/vcache) */
	int use_cache;
	char warning[PL_CHAT_ERRLEN];

	/* replies not yet delivered, in submission order */
	struct slot **q;
	size_t qhead, qn, qcap;
	size_t next_seq;

	double next_start;	/* rate cap: the earliest time the next request may start */
	unsigned long long sent, hits, failed;
	struct pl_buf body, scratch;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pl_chat_opts_default(struct pl_chat_opts *o)
{
	memset(o, 0, sizeof *o);
	o->base_url = "https://api.openai.com/v1";
	o->concurrency = 4;
	o->timeout_ms = 600000;
	o->connect_timeout_ms = 10000;
	o->max_tries = 5;
}

/* --- requests ----------------------------------------------------------- */

void pl_chat_msg_add(struct pl_buf *msgs, const char *role, const char *content, size_t n)
{
	if (msgs->n == 0)
		pl_buf_addc(msgs, '[');
	else {
		msgs->n--;	/* reopen the array: drop its ']' */
		pl_buf_addc(msgs, ',');
	}
	pl_buf_adds(msgs, "{\"role\":");
	pl_json_put_str(msgs, role, strlen(role));
	pl_buf_adds(msgs, ",\"content\":");
	pl_json_put_str(msgs, content, n);
	pl_buf_add(msgs, "}]", 2);
}

int pl_chat_msgs_check(const char *json, size_t n, struct pl_buf *out, char *err)
{
	json_error_t je;
	json_t *a = json_loadb(json, n, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
	int status = -1;

	out->n = 0;
	if (!a) {
		snprintf(err, PL_CHAT_ERRLEN, "not JSON: %s", je.text);
		return -1;
	}
	if (!json_is_array(a) || json_array_size(a) == 0) {
		snprintf(err, PL_CHAT_ERRLEN, "is not a non-empty array");
		goto out;
	}
	pl_buf_addc(out, '[');
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *m = json_array_get(a, i);
		json_t *role = json_object_get(m, "role");
		json_t *content = json_object_get(m, "content");
		json_t *name = json_object_get(m, "name");
		if (!json_is_object(m)) {
			snprintf(err, PL_CHAT_ERRLEN, "[%zu] is not an object", i);
			goto out;
		}
		if (!json_is_string(role) || json_string_length(role) == 0) {
			snprintf(err, PL_CHAT_ERRLEN, "[%zu] has no \"role\" string", i);
			goto out;
		}
		const char *r = json_string_value(role);
		if (!content || (json_is_null(content) && strcmp(r, "assistant") != 0) ||
		    !(json_is_string(content) || json_is_array(content) || json_is_null(content))) {
			snprintf(err, PL_CHAT_ERRLEN, "[%zu] has no \"content\" string or array", i);
			goto out;
		}
		if (i)
			pl_buf_addc(out, ',');
		/* the same bytes pl_chat_msg_add writes, so that an "input" record and
		 * its "messages" twin share a cache entry */
		pl_buf_adds(out, "{\"role\":");
		pl_json_put_str(out, r, json_string_length(role));
		pl_buf_adds(out, ",\"content\":");
		if (json_is_string(content)) {
			pl_json_put_str(out, json_string_value(content), json_string_length(content));
		} else if (json_is_null(content)) {
			pl_buf_adds(out, "null");
		} else {
			char *s = json_dumps(content, JSON_COMPACT | JSON_SORT_KEYS);
			if (!s)
				pl_xmalloc(SIZE_MAX);
			pl_buf_adds(out, s);
			free(s);
		}
		if (json_is_string(name)) {
			pl_buf_adds(out, ",\"name\":");
			pl_json_put_str(out, json_string_value(name), json_string_length(name));
		}
		pl_buf_addc(out, '}');
	}
	pl_buf_addc(out, ']');
	status = 0;
out:
	json_decref(a);
	return status;
}

/* The shortest text of v that reads back as v, so the body is stable. */
static void put_double(struct pl_buf *b, double v)
{
	char s[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(s, sizeof s, "%.*g", prec, v);
		if (strtod(s, NULL) == v)
			break;
	}
	pl_buf_adds(b, s);
}

void pl_chat_body(const struct pl_chat_opts *o, const char *msgs, size_t n, struct pl_buf *out)
{
	out->n = 0;
	pl_buf_adds(out, "{\"model\":");
	pl_json_put_str(out, o->model, strlen(o->model));
	pl_buf_adds(out, ",\"messages\":");
	pl_buf_add(out, msgs, n);
	/* only what was asked for: every field a server does not know is one
	 * more way for "OpenAI-compatible" to fail, and unset means its default */
	if (o->has_temperature) {
		pl_buf_adds(out, ",\"temperature\":");
		put_double(out, o->temperature);
	}
	if (o->has_top_p) {
		pl_buf_adds(out, ",\"top_p\":");
		put_double(out, o->top_p);
	}
	if (o->max_tokens > 0) {
		pl_buf_adds(out, ",\"max_tokens\":");
		pl_buf_i64(out, o->max_tokens);
	}
	if (o->max_completion_tokens > 0) {
		pl_buf_adds(out, ",\"max_completion_tokens\":");
		pl_buf_i64(out, o->max_completion_tokens);
	}
	if (o->has_seed) {
		pl_buf_adds(out, ",\"seed\":");
		pl_buf_i64(out, o->seed);
	}
	if (o->nstop) {
		/* an array even for one: every server takes the array form */
		pl_buf_adds(out, ",\"stop\":[");
		for (size_t i = 0; i < o->nstop; i++) {
			if (i)
				pl_buf_addc(out, ',');
			pl_json_put_str(out, o->stop[i], strlen(o->stop[i]));
		}
		pl_buf_addc(out, ']');
	}
	pl_buf_addc(out, '}');
}

void pl_chat_key(const char *body, size_t n, unsigned char key[32])
{
	struct pl_sha256 h;
	pl_sha256_init(&h);
	pl_sha256_update(&h, KEY_TAG, sizeof KEY_TAG);	/* with its NUL */
	pl_sha256_update(&h, body, n);
	pl_sha256_final(&h, key);
}

void pl_chat_url(const char *base_url, char *out, size_t outlen)
{
	size_t n = strlen(base_url);
	while (n && base_url[n - 1] == '/')
		n--;
	snprintf(out, outlen, "%.*s/chat/completions", (int)n, base_url);
}

/* --- replies ------------------------------------------------------------ */

/* Append JSON text s[0..n) (already valid) without the whitespace between
 * tokens: "usage" is passed on as the server wrote it, and a reply printed
 * over several lines must still give a record on one line. */
static void put_compact(struct pl_buf *b, const char *s, size_t n)
{
	int in_str = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (in_str) {
			pl_buf_addc(b, ch);
			if (ch == '\\' && i + 1 < n)
				pl_buf_addc(b, s[++i]);
			else if (ch == '"')
				in_str = 0;
		} else if (ch == '"') {
			in_str = 1;
			pl_buf_addc(b, ch);
		} else if (ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t') {
			pl_buf_addc(b, ch);
		}
	}
}

static long long usage_count(json_t *usage, const char *name)
{
	json_t *v = json_object_get(usage, name);
	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

int pl_chat_parse(const char *body, size_t len, const char *model, struct pl_chat_reply *r,
		  struct pl_buf *store, char *err)
{
	json_error_t je;
	json_t *j = json_loadb(body, len, JSON_ALLOW_NUL, &je);
	struct pl_jobj top = { 0 };
	struct pl_jerr e;
	int status = -1;
	/* offsets into store, made pointers once it stops growing */
	size_t o_content, o_model, o_refusal = (size_t)-1, o_finish = (size_t)-1,
			    o_usage = (size_t)-1;

	store->n = 0;
	if (!j || !json_is_object(j)) {
		snprintf(err, PL_CHAT_ERRLEN, "reply is not a JSON object%s%s", j ? "" : ": ",
			 j ? "" : je.text);
		goto out;
	}
	json_t *choices = json_object_get(j, "choices");
	json_t *c0 = json_array_get(choices, 0);
	json_t *msg = json_object_get(c0, "message");
	if (!json_is_array(choices) || !json_is_object(c0) || !json_is_object(msg)) {
		snprintf(err, PL_CHAT_ERRLEN, "reply has no choices[0].message");
		goto out;
	}
	json_t *content = json_object_get(msg, "content");
	if (content && !json_is_string(content) && !json_is_null(content)) {
		snprintf(err, PL_CHAT_ERRLEN, "reply's message content is not a string");
		goto out;
	}
	r->ok = 1;
	/* null (or absent): a refusal, tool calls, or a reasoning model that
	 * spent its tokens thinking; the text is then empty */
	r->content_null = !json_is_string(content);
	o_content = store->n;
	if (json_is_string(content))
		pl_buf_add(store, json_string_value(content), json_string_length(content));
	r->len = store->n - o_content;
	pl_buf_addc(store, '\0');
	json_t *m = json_object_get(j, "model");
	o_model = store->n;
	pl_buf_adds(store, json_is_string(m) && json_string_length(m) ? json_string_value(m) : model);
	pl_buf_addc(store, '\0');
	json_t *refusal = json_object_get(msg, "refusal");
	if (json_is_string(refusal)) {
		o_refusal = store->n;
		pl_buf_add(store, json_string_value(refusal), json_string_length(refusal));
		pl_buf_addc(store, '\0');
	}
	json_t *fin = json_object_get(c0, "finish_reason");
	if (json_is_string(fin)) {
		o_finish = store->n;
		pl_buf_adds(store, json_string_value(fin));
		pl_buf_addc(store, '\0');
	}
	json_t *usage = json_object_get(j, "usage");
	r->prompt_tokens = usage_count(usage, "prompt_tokens");
	r->completion_tokens = usage_count(usage, "completion_tokens");
	r->total_tokens = usage_count(usage, "total_tokens");
	if (json_is_object(usage) && pl_json_scan_object(body, len, &top, &e) == 0) {
		const struct pl_jmember *u = pl_jobj_get(&top, "usage");
		if (u && u->type == PL_JOBJ) {
			o_usage = store->n;
			put_compact(store, u->val, u->vallen);
			r->usage_len = store->n - o_usage;
			pl_buf_addc(store, '\0');
		}
	}
	r->content = store->p + o_content;
	r->model = store->p + o_model;
	r->refusal = o_refusal != (size_t)-1 ? store->p + o_refusal : NULL;
	r->finish_reason = o_finish != (size_t)-1 ? store->p + o_finish : NULL;
	r->usage = o_usage != (size_t)-1 ? store->p + o_usage : NULL;
	status = 0;
out:
	if (status < 0)
		r->ok = 0;
	pl_jobj_free(&top);
	json_decref(j);
	return status;
}

/* --- cache -------------------------------------------------------------- */

static void cache_off(struct pl_chat *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void cache_off(struct pl_chat *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->warning, sizeof c->warning, fmt, ap);
	va_end(ap);
	c->use_cache = 0;
}

/* The stored value for key into out (reset): 1 found, 0 not. */
static int cache_get(struct pl_chat *c, const unsigned char key[32], struct pl_buf *out)
{
	char err[PL_VCACHE_ERRLEN];
	int found;

	out->n = 0;
	if (!c->use_cache)
		return 0;
	if ((found = pl_vcache_get_bytes(c->cache, key, out, err)) < 0)
		cache_off(c, "%s; going on without the cache", err);
	return found > 0;
}

static void cache_put(struct pl_chat *c, const unsigned char key[32], const char *v, size_t n)
{
	char err[PL_VCACHE_ERRLEN];

	if (c->use_cache && pl_vcache_put_bytes(c->cache, key, v, n, err) < 0)
		cache_off(c, "%s; going on without the cache", err);
}

/* A stored value is {"latency_ms":N,"response":{…the server's reply…}}: the
 * reply is kept whole and parsed as a fresh one would be. */
static int from_cache(struct pl_chat *c, struct slot *s, const char *v, size_t n)
{
	struct pl_jobj o = { 0 };
	struct pl_jerr e;
	char err[PL_CHAT_ERRLEN];
	int ok = 0;

	if (pl_json_scan_object(v, n, &o, &e) == 0) {
		const struct pl_jmember *lat = pl_jobj_get(&o, "latency_ms");
		const struct pl_jmember *resp = pl_jobj_get(&o, "response");
		if (lat && lat->type == PL_JNUM && resp && resp->type == PL_JOBJ &&
		    pl_chat_parse(resp->val, resp->vallen, c->model, &s->r, &s->store, err) == 0) {
			s->r.latency_ms = strtod(lat->val, NULL);
			s->r.cached = 1;
			ok = 1;
		}
	}
	pl_jobj_free(&o);
	return ok;	/* anything else is a miss, written again after the request */
}

/* --- the client --------------------------------------------------------- */

struct pl_chat *pl_chat_new(const struct pl_chat_opts *o, pl_chat_cb cb, void *ctx, char *err,
			    int *status)
{
	struct pl_chat *c;
	struct pl_http_opts ho;

	*status = PL_EX_USAGE;
	if (!o->model || !*o->model) {
		snprintf(err, PL_CHAT_ERRLEN, "no model given");
		return NULL;
	}
	if (!o->base_url || (strncmp(o->base_url, "http://", 7) != 0 &&
			     strncmp(o->base_url, "https://", 8) != 0)) {
		snprintf(err, PL_CHAT_ERRLEN, "base URL '%s' is not an http(s) URL",
			 o->base_url ? o->base_url : "");
		return NULL;
	}
	if (o->nstop > PL_CHAT_MAX_STOP) {
		snprintf(err, PL_CHAT_ERRLEN, "at most %d stop sequences", PL_CHAT_MAX_STOP);
		return NULL;
	}
	c = pl_xmalloc(sizeof *c);
	memset(c, 0, sizeof *c);
	c->o = *o;
	c->base_url = pl_xstrdup(o->base_url);
	c->model = pl_xstrdup(o->model);
	c->api_key = o->api_key && *o->api_key ? pl_xstrdup(o->api_key) : NULL;
	c->o.base_url = c->base_url;
	c->o.model = c->model;
	c->o.api_key = c->api_key;
	for (size_t i = 0; i < o->nstop; i++)
		c->o.stop[i] = c->stop[i] = pl_xstrdup(o->stop[i]);
	if (c->o.concurrency < 1)
		c->o.concurrency = 1;
	c->cb = cb;
	c->ctx = ctx;

	if (o->cache) {
		char cerr[PL_VCACHE_ERRLEN];
		int st = PL_EX_USAGE;
		if (!(c->cache = pl_vcache_open(o->cache, CACHE_PREFIX, o->cache_ttl_s, 5000, cerr,
						&st))) {
			snprintf(err, PL_CHAT_ERRLEN, "cache: %.400s", cerr);
			*status = st;
			goto fail;
		}
		c->use_cache = 1;
	}

	pl_http_opts_default(&ho);
	ho.parallel = c->o.concurrency;
	if (o->timeout_ms > 0)
		ho.timeout_ms = o->timeout_ms;
	if (o->connect_timeout_ms > 0)
		ho.connect_timeout_ms = o->connect_timeout_ms;
	if (o->max_tries > 0)
		ho.max_tries = o->max_tries;
	ho.insecure = o->insecure;
	c->http = pl_http_new(&ho);
	pl_chat_url(c->base_url, c->url, sizeof c->url);
	c->hdr[0] = pl_xstrdup("Content-Type: application/json");
	c->headers[0] = c->hdr[0];
	if (c->api_key) {
		struct pl_buf h = PL_BUF_INIT;
		pl_buf_printf(&h, "Authorization: Bearer %s", c->api_key);
		c->hdr[1] = pl_xstrdup(pl_buf_cstr(&h));
		pl_buf_free(&h);
		c->headers[1] = c->hdr[1];
	}
	return c;
fail:
	pl_chat_free(c);
	return NULL;
}

static void slot_free(struct slot *s)
{
	if (!s)
		return;
	pl_buf_free(&s->store);
	free(s);
}

void pl_chat_free(struct pl_chat *c)
{
	if (!c)
		return;
	pl_http_free(c->http);
	for (size_t i = c->qhead; i < c->qn; i++)
		slot_free(c->q[i]);
	free(c->q);
	if (c->cache)
		pl_vcache_close(c->cache);
	free(c->base_url);
	free(c->model);
	free(c->api_key);
	for (size_t i = 0; i < PL_CHAT_MAX_STOP; i++)
		free(c->stop[i]);
	free(c->hdr[0]);
	free(c->hdr[1]);
	pl_buf_free(&c->body);
	pl_buf_free(&c->scratch);
	free(c);
}

/* Hand every finished reply at the head of the queue to the callback. */
static void deliver(struct pl_chat *c)
{
	while (c->qhead < c->qn && c->q[c->qhead]->done) {
		struct slot *s = c->q[c->qhead];
		c->q[c->qhead++] = NULL;
		if (!s->r.ok && !s->r.abandoned)
			c->failed++;
		c->cb(c->ctx, &s->r);
		slot_free(s);
	}
	if (c->qhead == c->qn) {
		c->qhead = c->qn = 0;
	} else if (c->qhead > 1024 && c->qhead * 2 > c->qn) {
		memmove(c->q, c->q + c->qhead, (c->qn - c->qhead) * sizeof *c->q);
		c->qn -= c->qhead;
		c->qhead = 0;
	}
}

static void on_reply(void *ud, const struct pl_http_result *hr)
{
	struct slot *s = ud;
	struct pl_chat *c = s->c;
	struct pl_chat_reply *r = &s->r;
	char err[PL_CHAT_ERRLEN];

	r->latency_ms = (now() - s->t0) * 1000.0;
	r->tries = hr->tries;
	r->status = hr->status;
	s->done = 1;
	if (hr->status == 200) {
		if (pl_chat_parse(hr->body, hr->len, c->model, r, &s->store, err) == 0) {
			if (c->use_cache) {
				struct pl_buf *v = &c->scratch;
				v->n = 0;
				pl_buf_adds(v, "{\"latency_ms\":");
				put_double(v, round(r->latency_ms * 1000.0) / 1000.0);
				pl_buf_adds(v, ",\"response\":");
				put_compact(v, hr->body, hr->len);
				pl_buf_addc(v, '}');
				cache_put(c, s->key, v->p, v->n);
			}
			return;
		}
		r->status = 0;
		r->exit_status = PL_EX_UNAVAILABLE;
		snprintf(r->error, sizeof r->error, "bad reply: %.400s", err);
		return;
	}
	if (hr->status == 0) {
		r->exit_status = hr->permanent ? PL_EX_USAGE : PL_EX_UNAVAILABLE;
		r->config = hr->permanent;
		snprintf(r->error, sizeof r->error, "%.400s (after %d tr%s)", hr->err, hr->tries,
			 hr->tries == 1 ? "y" : "ies");
		return;
	}
	char line[400];
	pl_http_error_line(hr->body, hr->len, line, sizeof line);
	r->exit_status = pl_http_exit_status(hr->status);
	r->config = hr->status == 401 || hr->status == 403 || hr->status == 404;
	if (pl_http_retryable(hr->status))
		snprintf(r->error, sizeof r->error, "%ld: %s (after %d tr%s)", hr->status, line,
			 hr->tries, hr->tries == 1 ? "y" : "ies");
	else
		snprintf(r->error, sizeof r->error, "%ld: %s", hr->status, line);
}

/* Drive the transfers in flight once, without waiting. */
static void drive_once(struct pl_chat *c)
{
	pl_http_poll(c->http, 0);
	deliver(c);
}

/* The rate cap: a token bucket holding one token, refilled every 1/rps
 * seconds, so starts are spaced evenly and never come in a burst. The wait
 * is slept in short slices with the transfers in flight driven between
 * them, so requests already started are sent and their replies read (and
 * timed) as they come. */
static void rate_wait(struct pl_chat *c)
{
	if (c->o.rps <= 0)
		return;
	double t = now();
	while (t < c->next_start && !(c->o.stop_flag && *c->o.stop_flag)) {
		double d = c->next_start - t;
		if (d > 0.002)
			d = 0.002;
		struct timespec ts = { 0, (long)(d * 1e9) };
		nanosleep(&ts, NULL);	/* EINTR: look at the stop flag */
		if (pl_http_pending(c->http))
			drive_once(c);
		t = now();
	}
	c->next_start = (t > c->next_start ? t : c->next_start) + 1.0 / c->o.rps;
}

size_t pl_chat_submit(struct pl_chat *c, const char *msgs, size_t n, void *ud)
{
	struct slot *s = pl_xmalloc(sizeof *s);
	size_t seq = c->next_seq++;

	memset(s, 0, sizeof *s);
	s->c = c;
	s->r.seq = seq;
	s->r.ud = ud;
	s->r.prompt_tokens = s->r.completion_tokens = s->r.total_tokens = -1;
	if (c->qn == c->qcap) {
		c->qcap = c->qcap ? c->qcap * 2 : 256;
		c->q = pl_xrealloc(c->q, c->qcap * sizeof *c->q);
	}
	c->q[c->qn++] = s;

	pl_chat_body(&c->o, msgs, n, &c->body);
	if (c->use_cache) {
		pl_chat_key(c->body.p, c->body.n, s->key);
		if (cache_get(c, s->key, &c->scratch) &&
		    from_cache(c, s, c->scratch.p, c->scratch.n)) {
			s->done = 1;
			c->hits++;
			deliver(c);	/* which may free s */
			return seq;
		}
	}
	/* a free slot first, then the rate cap, so the time a request waits for
	 * either is not counted in its latency */
	while (pl_http_pending(c->http) >= (size_t)c->o.concurrency) {
		pl_http_wait(c->http, pl_http_pending(c->http) - 1);
		deliver(c);
	}
	rate_wait(c);
	if (c->o.stop_flag && *c->o.stop_flag) {
		s->done = 1;
		s->r.abandoned = 1;
		s->r.exit_status = PL_EX_TEMPFAIL;
		snprintf(s->r.error, sizeof s->r.error, "not sent: stopped");
		deliver(c);	/* which may free s */
		return seq;
	}
	s->t0 = now();
	c->sent++;
	pl_http_submit(c->http, "POST", c->url, c->headers, c->body.p, c->body.n, on_reply, s);
	deliver(c);
	return seq;
}

void pl_chat_wait(struct pl_chat *c, size_t n)
{
	deliver(c);
	while (c->qn - c->qhead > n && pl_http_pending(c->http)) {
		pl_http_wait(c->http, pl_http_pending(c->http) - 1);
		deliver(c);
	}
}

void pl_chat_wait_one(struct pl_chat *c)
{
	if (pl_http_pending(c->http))
		pl_http_wait(c->http, pl_http_pending(c->http) - 1);
	deliver(c);
}

size_t pl_chat_outstanding(const struct pl_chat *c)
{
	return c->qn - c->qhead;
}

void pl_chat_counts(const struct pl_chat *c, unsigned long long *sent, unsigned long long *hits,
		    unsigned long long *failed)
{
	if (sent)
		*sent = c->sent;
	if (hits)
		*hits = c->hits;
	if (failed)
		*failed = c->failed;
}

int pl_chat_warning(struct pl_chat *c, char out[PL_CHAT_ERRLEN])
{
	if (!c->warning[0])
		return 0;
	memcpy(out, c->warning, PL_CHAT_ERRLEN);
	c->warning[0] = '\0';
	return 1;
}
