/* embed: add "vector" and "model" to every record that has "text" (docs/embed.1). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "embed.h"
#include "http.h"
#include "vcache.h"

static const char usage[] =
	"embed [--backend hash|http] [--dim N] [--model NAME] [--base-url URL]\n"
	"[--api-key-file FILE] [--batch N] [--batch-tokens N] [--parallel N] [--truncate]\n"
	"[--cache redis://...|DIR] [--cache-ttl SECONDS] [--timeout SECONDS] [--retries N]\n"
	"[--insecure] [--keep-going] [--rejects FILE] [file ...]";

static const char help[] =
	"\nAdd an embedding vector to every record that has \"text\".\n\n"
	"  --backend B        hash (built in, the default) or http (PLUMB_EMBED_BACKEND)\n"
	"  --dim N            hash: vector size (384); http: ask for N dimensions (PLUMB_EMBED_DIM)\n"
	"  --model NAME       http: the embedding model (PLUMB_EMBED_MODEL)\n"
	"  --base-url URL     http: the API root (OPENAI_BASE_URL, https://api.openai.com/v1)\n"
	"  --api-key-file F   http: read the key from F (else OPENAI_API_KEY)\n"
	"  --batch N          inputs per request (PLUMB_EMBED_BATCH, 128; at most 2048)\n"
	"  --batch-tokens N   estimated tokens per request (PLUMB_EMBED_BATCH_TOKENS, 100000)\n"
	"  --parallel N       requests in flight (PLUMB_EMBED_PARALLEL, 4)\n"
	"  --truncate         shorten an input the server rejects, instead of failing it\n"
	"  --cache SPEC       reuse vectors from redis://host:port[/db] or a directory (PLUMB_EMBED_CACHE)\n"
	"  --cache-ttl S      expiry of Redis cache entries in seconds (PLUMB_EMBED_CACHE_TTL)\n"
	"  --timeout S        per request (PLUMB_TIMEOUT, 60); --retries N tries in all (5)\n"
	"  --insecure         do not verify the server's TLS certificate\n"
	"  --keep-going, --rejects FILE, -v, --quiet, -h, --help, --version: see plumb(7)\n";

enum { ST_WAIT, ST_DONE, ST_REJECT };

struct item {
	char *line;
	size_t len;
	const char *file;
	unsigned long lineno;
	int has_text, state, halved, rebuild;
	char *text;
	size_t tlen;
	float *vec;
	char *why;		/* ST_REJECT: the message */
	unsigned char key[32];
};

/* A rejected batch sent again as two halves. When both are accepted, it was
 * the batch that was too big, not an input in it (text-embeddings-inference
 * takes 32 inputs a request unless told otherwise): later batches are cut to
 * the size that went through. */
struct split {
	size_t n;		/* inputs in the rejected batch */
	int left, ok;		/* halves not yet answered; halves accepted */
};

struct batch {
	struct item **it;
	size_t n;
	struct split *from;	/* the split that made this batch, or NULL */
	long status;		/* a failure to handle in the main loop */
	int permanent;		/* status 0 that retrying cannot mend */
	int refused;		/* the server refused the batch's inputs */
	char err[320];
	struct batch *next;
};

static struct pl_embed_opts eo;
static struct pl_embedder *hasher;
static struct pl_http *http;
static struct pl_vcache *cache;
static char url[2048], hdr[2][600], ns[600];
static const char *const *headers;
static size_t nslen;
static int dim;			/* of every vector written; 0 until known */
static const char *model;
static int truncate_inputs;
static int server_ok;		/* the server has taken a request */

static struct item **queue;	/* records in input order, not yet written */
static size_t qhead, qn, qcap;
static struct item **pend;	/* texts waiting to be sent */
static size_t npend, pend_tokens;
static struct batch *failed;
static struct pl_buf body = PL_BUF_INIT, tmp = PL_BUF_INIT;
static char **names;		/* input file names, kept for messages */
static size_t nnames;

/* OpenAI counts tokens with a tokenizer plumb does not carry; three bytes a
 * token overestimates English and code, which keeps batches under the limit. */
static size_t est_tokens(size_t bytes)
{
	return bytes / 3 + 1;
}

static void item_free(struct item *it)
{
	free(it->line);
	free(it->text);
	free(it->vec);
	free(it->why);
	free(it);
}

static void fatal_flush(void);

static void set_vector(struct item *it, const float *v, int d)
{
	if (eo.dim && d != eo.dim) {
		/* a server that ignores "dimensions" answers with the model's own */
		fatal_flush();
		pl_die(PL_EX_USAGE, "asked for %d dimensions (--dim), the server answered with %d: "
		       "it does not shorten vectors for this model; leave --dim out", eo.dim, d);
	}
	if (!dim) {
		dim = d;
	} else if (d != dim) {
		fatal_flush();
		pl_die(PL_EX_UNAVAILABLE, "the server answered with %d dimensions after %d", d, dim);
	}
	it->vec = pl_xmalloc((size_t)d * sizeof *it->vec);
	memcpy(it->vec, v, (size_t)d * sizeof *it->vec);
	it->state = ST_DONE;
}

static void write_item(struct item *it)
{
	if (!it->has_text) {
		pl_buf_add(&pl_out, it->line, it->len);
		pl_out_end();
		return;
	}
	if (!it->rebuild) {
		/* the record as it came, up to its closing brace */
		size_t end = it->len;
		while (end && it->line[end - 1] != '}')
			end--;
		pl_buf_add(&pl_out, it->line, end - 1);
		pl_buf_addc(&pl_out, ',');
	} else {
		/* it had "vector" or "model" already: those are replaced */
		struct pl_jobj o = { 0 };
		struct pl_jerr e;
		pl_json_scan_object(it->line, it->len, &o, &e);
		pl_buf_addc(&pl_out, '{');
		for (size_t i = 0; i < o.n; i++) {
			if (pl_jmember_key_is(&o.m[i], "vector") || pl_jmember_key_is(&o.m[i], "model"))
				continue;
			pl_json_put_member(&pl_out, &o.m[i]);
			pl_buf_addc(&pl_out, ',');
		}
		pl_jobj_free(&o);
	}
	pl_json_put_key(&pl_out, "vector");
	pl_json_put_floats(&pl_out, it->vec, (size_t)dim);
	pl_buf_addc(&pl_out, ',');
	pl_json_put_key(&pl_out, "model");
	pl_json_put_str(&pl_out, model, strlen(model));
	if (it->halved) {
		pl_buf_adds(&pl_out, ",\"truncated\":true");
	}
	pl_buf_addc(&pl_out, '}');
	pl_out_end();
}

/* Write every finished record at the head of the queue, in input order. */
static void flush_queue(void)
{
	while (qhead < qn && queue[qhead]->state != ST_WAIT) {
		struct item *it = queue[qhead];
		if (it->state == ST_REJECT) {
			struct pl_rec rec = { .line = it->line, .len = it->len, .file = it->file,
					      .lineno = it->lineno };
			pl_input_reject(&rec, "%s", it->why);
		} else {
			write_item(it);
		}
		item_free(it);
		queue[qhead++] = NULL;
	}
	if (qhead == qn)
		qhead = qn = 0;
	else if (qhead > 1024 && qhead * 2 > qn) {
		memmove(queue, queue + qhead, (qn - qhead) * sizeof *queue);
		qn -= qhead;
		qhead = 0;
	}
}

/* Before dying of a service failure: what finished in order still goes out. */
static void fatal_flush(void)
{
	while (qhead < qn && queue[qhead]->state == ST_DONE) {
		write_item(queue[qhead]);
		item_free(queue[qhead]);
		qhead++;
	}
}

static void cache_put(struct item **it, size_t n)
{
	char err[PL_VCACHE_ERRLEN];
	unsigned char(*keys)[32];
	float *v;

	if (!cache || !n)
		return;
	keys = pl_xmalloc(n * sizeof *keys);
	v = pl_xmalloc(n * (size_t)dim * sizeof *v);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		/* the vector of a truncated text is not the text's: a later run
		 * without --truncate must be refused as this one was */
		if (it[i]->halved)
			continue;
		memcpy(keys[k], it[i]->key, 32);
		memcpy(v + k * (size_t)dim, it[i]->vec, (size_t)dim * sizeof *v);
		k++;
	}
	if (k && pl_vcache_put(cache, (const unsigned char(*)[32])keys, k, dim, v, err) < 0) {
		pl_warn("cache: %s; going on without it", err);
		pl_vcache_close(cache);
		cache = NULL;
	}
	free(keys);
	free(v);
}

static void half_answered(struct split *s, int ok)
{
	s->ok += ok;
	if (--s->left)
		return;
	size_t took = s->n - s->n / 2;
	if (s->ok == 2 && took < (size_t)eo.batch) {
		pl_warn("the server refused a batch of %zu inputs and took %zu: sending at most %zu "
			"a request from now on (--batch)", s->n, took, took);
		eo.batch = (int)took;
	}
	free(s);
}

static void on_reply(void *ud, const struct pl_http_result *r)
{
	struct batch *b = ud;
	float *v = NULL;
	int d = dim;
	char err[PL_EMBED_ERRLEN];

	if (r->status == 200) {
		if (pl_embed_http_parse(r->body, r->len, b->n, &v, &d, err) == 0) {
			for (size_t i = 0; i < b->n; i++)
				set_vector(b->it[i], v + i * (size_t)d, d);
			free(v);
			cache_put(b->it, b->n);
			server_ok = 1;
			if (b->from)
				half_answered(b->from, 1);
			free(b->it);
			free(b);
			return;
		}
		free(v);
		b->status = 0;
		snprintf(b->err, sizeof b->err, "%.300s", err);
	} else {
		b->status = r->status;
		b->permanent = r->permanent;
		b->refused = pl_embed_http_refused(r->status, r->body, r->len);
		if (r->status == 0)
			snprintf(b->err, sizeof b->err, "%.200s (after %d tries)", r->err, r->tries);
		else {
			char line[300];
			pl_http_error_line(r->body, r->len, line, sizeof line);
			snprintf(b->err, sizeof b->err, "%ld: %.300s", r->status, line);
		}
	}
	/* decided in the main loop, which may submit again */
	b->next = failed;
	failed = b;
}

static void send(struct item **it, size_t n, struct split *from)
{
	struct batch *b = pl_xmalloc(sizeof *b);
	const char **texts = pl_xmalloc(n * sizeof *texts);
	size_t *lens = pl_xmalloc(n * sizeof *lens);

	memset(b, 0, sizeof *b);
	b->it = pl_xmalloc(n * sizeof *b->it);
	memcpy(b->it, it, n * sizeof *it);
	b->n = n;
	b->from = from;
	for (size_t i = 0; i < n; i++) {
		texts[i] = it[i]->text;
		lens[i] = it[i]->tlen;
	}
	pl_embed_http_body(&eo, texts, lens, n, &body);
	free(texts);
	free(lens);
	pl_http_submit(http, "POST", url, headers, body.p, body.n, on_reply, b);
}

/* Cut an input the server found too long to half, at a space if one is near. */
static int halve(struct item *it)
{
	size_t cut = it->tlen / 2;
	if (cut == 0 || it->halved >= 16)
		return 0;
	while (cut > 0 && ((unsigned char)it->text[cut] & 0xC0) == 0x80)
		cut--;
	for (size_t k = cut; k > cut / 2; k--)
		if (it->text[k] == ' ' || it->text[k] == '\n') {
			cut = k;
			break;
		}
	if (cut == 0)
		return 0;
	it->tlen = cut;
	it->halved++;
	return 1;
}

/* Before taking a refusal as one of an input, while no request has been
 * taken: send one word. A server that refuses that too refuses the request
 * (a "dimensions" the model lacks, say), and splitting the batch down to
 * every input would blame them all. */
static void probe(const struct batch *b, const char *shown)
{
	static const char word[] = "plumb";
	const char *texts[1] = { word };
	size_t lens[1] = { sizeof word - 1 };
	struct pl_buf req = PL_BUF_INIT, resp = PL_BUF_INIT;
	struct pl_http_result r;

	pl_embed_http_body(&eo, texts, lens, 1, &req);
	pl_http_request(http, "POST", url, headers, req.p, req.n, &r, &resp);
	if (r.status == 200) {
		server_ok = 1;
	} else if (pl_embed_http_refused(r.status, r.body, r.len)) {
		fatal_flush();
		pl_die(PL_EX_USAGE, "'%s': %s (a request of one word is refused as well: it is the "
		       "request, not an input; check --model, --dim and --base-url)", shown, b->err);
	}
	pl_buf_free(&req);
	pl_buf_free(&resp);
}

static void handle_failures(void)
{
	while (failed) {
		struct batch *b = failed;
		failed = b->next;
		char shown[2048];
		pl_http_redact(url, shown, sizeof shown);
		long st = b->status;
		if (b->from)
			half_answered(b->from, 0);
		if (b->refused && !server_ok)
			probe(b, shown);
		if (b->refused) {
			/* the server refused an input: find which by halving the batch */
			if (b->n > 1) {
				size_t h = b->n / 2;
				struct split *sp = pl_xmalloc(sizeof *sp);
				*sp = (struct split){ b->n, 2, 0 };
				send(b->it, h, sp);
				send(b->it + h, b->n - h, sp);
			} else if (truncate_inputs && halve(b->it[0])) {
				send(b->it, 1, NULL);
			} else {
				struct item *it = b->it[0];
				it->state = ST_REJECT;
				tmp.n = 0;
				pl_buf_printf(&tmp, "the embedding server rejected \"text\": %s", b->err);
				if (!truncate_inputs)
					pl_buf_adds(&tmp, " (--truncate shortens such inputs)");
				it->why = pl_xstrdup(pl_buf_cstr(&tmp));
			}
		} else {
			fatal_flush();
			if (st == 0 && !strchr(b->err, '('))
				pl_die(PL_EX_UNAVAILABLE, "'%s': bad reply: %s", shown, b->err);
			pl_die(b->permanent ? PL_EX_USAGE : pl_http_exit_status(st), "'%s': %s", shown,
			       b->err);
		}
		free(b->it);
		free(b);
	}
}

/* Vectors for the texts waiting: from the cache, else the backend. */
static void dispatch(void)
{
	size_t n = npend, miss = 0;

	if (!n)
		return;
	if (cache) {
		unsigned char(*keys)[32] = pl_xmalloc(n * sizeof *keys);
		int maxd = dim ? dim : 8192;
		float *v = pl_xmalloc(n * (size_t)maxd * sizeof *v);
		char *hit = pl_xmalloc(n), err[PL_VCACHE_ERRLEN];
		int d = dim;
		for (size_t i = 0; i < n; i++)
			memcpy(keys[i], pend[i]->key, 32);
		if (pl_vcache_get(cache, (const unsigned char(*)[32])keys, n, &d, maxd, v, hit, err) < 0) {
			pl_warn("cache: %s; going on without it", err);
			pl_vcache_close(cache);
			cache = NULL;
			memset(hit, 0, n);
		}
		for (size_t i = 0; i < n; i++) {
			if (hit[i])
				set_vector(pend[i], v + i * (size_t)maxd, d);
			else
				pend[miss++] = pend[i];
		}
		free(keys);
		free(v);
		free(hit);
	} else {
		miss = n;
	}
	npend = pend_tokens = 0;
	if (!miss)
		return;
	if (hasher) {
		float *v = NULL;
		int d;
		char err[PL_EMBED_ERRLEN];
		const char **texts = pl_xmalloc(miss * sizeof *texts);
		size_t *lens = pl_xmalloc(miss * sizeof *lens);
		for (size_t i = 0; i < miss; i++) {
			texts[i] = pend[i]->text;
			lens[i] = pend[i]->tlen;
		}
		pl_embed_batch(hasher, texts, lens, miss, &v, &d, err);
		for (size_t i = 0; i < miss; i++)
			set_vector(pend[i], v + i * (size_t)d, d);
		cache_put(pend, miss);
		free(v);
		free(texts);
		free(lens);
		return;
	}
	send(pend, miss, NULL);
	handle_failures();
}

/* Before stopping for bad input: every record before it goes out first. */
static void drain(void)
{
	dispatch();
	while (http && (pl_http_pending(http) || failed)) {
		pl_http_wait(http, pl_http_pending(http) ? pl_http_pending(http) - 1 : 0);
		handle_failures();
		flush_queue();
	}
	flush_queue();
}

static void push(struct item *it)
{
	if (qn == qcap) {
		qcap = qcap ? qcap * 2 : 1024;
		queue = pl_xrealloc(queue, qcap * sizeof *queue);
	}
	queue[qn++] = it;
}

static const char *intern_name(const char *name)
{
	for (size_t i = 0; i < nnames; i++)
		if (strcmp(names[i], name) == 0)
			return names[i];
	names = pl_xrealloc(names, (nnames + 1) * sizeof *names);
	return names[nnames++] = pl_xstrdup(name);
}

static void take(const struct pl_rec *rec)
{
	const struct pl_jmember *t = pl_jobj_get(&rec->obj, "text");
	struct pl_jerr e;
	const char *s;
	size_t n;

	if (t && t->type != PL_JSTR) {
		pl_input_reject(rec, "\"text\" is not a string");
		return;
	}
	if (t) {
		if (pl_jmember_str(t, &tmp, &s, &n, 0, &e) < 0) {
			pl_input_reject(rec, "\"text\": %s", e.msg);
			return;
		}
		size_t k = 0;
		while (k < n && (s[k] == ' ' || s[k] == '\n' || s[k] == '\t' || s[k] == '\r'))
			k++;
		if (k == n) {
			pl_input_reject(rec, "\"text\" is empty");
			return;
		}
	}
	struct item *it = pl_xmalloc(sizeof *it);
	memset(it, 0, sizeof *it);
	it->line = pl_xstrndup(rec->line, rec->len);
	it->len = rec->len;
	it->file = intern_name(rec->file);
	it->lineno = rec->lineno;
	if (!t) {
		it->state = ST_DONE;	/* markers and other records pass through */
		push(it);
		return;
	}
	it->has_text = 1;
	it->rebuild = pl_jobj_get(&rec->obj, "vector") || pl_jobj_get(&rec->obj, "model");
	it->text = pl_xstrndup(s, n);
	it->tlen = n;
	if (cache)
		pl_vcache_key(ns, nslen, s, n, it->key);
	push(it);
	pend[npend++] = it;
	pend_tokens += est_tokens(n);
	if (npend >= (size_t)eo.batch || pend_tokens >= eo.batch_tokens)
		dispatch();
}

int main(int argc, char **argv)
{
	enum { O_BACKEND = 0x2000, O_DIM, O_MODEL, O_BASE, O_KEYFILE, O_BATCH, O_BTOK, O_PAR,
	       O_TRUNC, O_CACHE, O_TTL, O_TIMEOUT, O_RETRIES, O_INSECURE };
	static const struct option longopts[] = {
		{ "backend", required_argument, NULL, O_BACKEND },
		{ "dim", required_argument, NULL, O_DIM },
		{ "model", required_argument, NULL, O_MODEL },
		{ "base-url", required_argument, NULL, O_BASE },
		{ "api-key-file", required_argument, NULL, O_KEYFILE },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "batch-tokens", required_argument, NULL, O_BTOK },
		{ "parallel", required_argument, NULL, O_PAR },
		{ "truncate", no_argument, NULL, O_TRUNC },
		{ "cache", required_argument, NULL, O_CACHE },
		{ "cache-ttl", required_argument, NULL, O_TTL },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "insecure", no_argument, NULL, O_INSECURE },
		PL_COMMON_LONGOPTS,
		{ 0 }
	};
	const char *backend, *keyfile, *cache_spec, *dim_s, *dim_from = "PLUMB_EMBED_DIM";
	long ttl;
	char err[PL_EMBED_ERRLEN];
	struct pl_rec rec = { 0 };
	unsigned long long nrec = 0, bytes = 0;
	int c;

	pl_init("embed", usage, help);
	pl_embed_opts_default(&eo);
	backend = pl_env("PLUMB_EMBED_BACKEND", "hash");
	dim_s = pl_env("PLUMB_EMBED_DIM", NULL);
	eo.model = pl_env("PLUMB_EMBED_MODEL", NULL);
	eo.base_url = pl_env("OPENAI_BASE_URL", "https://api.openai.com/v1");
	eo.api_key = pl_env("OPENAI_API_KEY", NULL);
	keyfile = pl_env("PLUMB_API_KEY_FILE", NULL);
	eo.batch = (int)pl_env_long("PLUMB_EMBED_BATCH", 128);
	eo.batch_tokens = (size_t)pl_env_long("PLUMB_EMBED_BATCH_TOKENS", 100000);
	eo.parallel = (int)pl_env_long("PLUMB_EMBED_PARALLEL", 4);
	cache_spec = pl_env("PLUMB_EMBED_CACHE", NULL);
	ttl = pl_env_long("PLUMB_EMBED_CACHE_TTL", 0);
	eo.timeout_ms = pl_env_long("PLUMB_TIMEOUT", 60) * 1000;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case O_BACKEND: backend = optarg; break;
		case O_DIM: dim_s = optarg; dim_from = "--dim"; break;
		case O_MODEL: eo.model = optarg; break;
		case O_BASE: eo.base_url = optarg; break;
		case O_KEYFILE: keyfile = optarg; break;
		case O_BATCH: eo.batch = (int)pl_parse_long("--batch", optarg, 1, 2048); break;
		case O_BTOK:
			eo.batch_tokens = (size_t)pl_parse_long("--batch-tokens", optarg, 1, 300000);
			break;
		case O_PAR: eo.parallel = (int)pl_parse_long("--parallel", optarg, 1, 256); break;
		case O_TRUNC: truncate_inputs = 1; break;
		case O_CACHE: cache_spec = optarg; break;
		case O_TTL: ttl = pl_parse_long("--cache-ttl", optarg, 0, 1L << 31); break;
		case O_TIMEOUT:
			eo.timeout_ms = pl_parse_long("--timeout", optarg, 1, 86400) * 1000;
			break;
		case O_RETRIES: eo.max_tries = (int)pl_parse_long("--retries", optarg, 1, 100); break;
		case O_INSECURE: eo.insecure = 1; break;
		default: pl_common_option(c, optarg);
		}
	}
	if (eo.batch < 1 || eo.batch > 2048)
		pl_usage_error("PLUMB_EMBED_BATCH must be from 1 to 2048");
	if (eo.batch_tokens < 1 || eo.batch_tokens > 300000)
		pl_usage_error("PLUMB_EMBED_BATCH_TOKENS must be from 1 to 300000");
	if (eo.parallel < 1 || eo.parallel > 256)
		pl_usage_error("PLUMB_EMBED_PARALLEL must be from 1 to 256");
	if (strcmp(backend, "hash") == 0) {
		eo.backend = PL_EMBED_HASH;
		eo.dim = dim_s ? (int)pl_parse_long(dim_from, dim_s, 1, 65536) : PL_EMBED_DEFAULT_DIM;
	} else if (strcmp(backend, "http") == 0) {
		eo.backend = PL_EMBED_HTTP;
		eo.dim = dim_s ? (int)pl_parse_long(dim_from, dim_s, 1, 65536) : 0;
		if (!eo.model)
			pl_usage_error("--backend http needs --model (or PLUMB_EMBED_MODEL)");
		if (strncmp(eo.base_url, "http://", 7) != 0 && strncmp(eo.base_url, "https://", 8) != 0)
			pl_usage_error("--base-url '%s' is not an http(s) URL", eo.base_url);
		if (keyfile)
			eo.api_key = pl_read_key_file(keyfile);
	} else if (strcmp(backend, "bert") == 0) {
		pl_usage_error("the bert backend (a local model file) is not in this release");
	} else {
		pl_usage_error("unknown backend '%s' (want hash or http)", backend);
	}

	if (eo.backend == PL_EMBED_HASH) {
		hasher = pl_embedder_new(&eo, err);
		if (!hasher)
			pl_usage_error("%s", err);
		model = PL_EMBED_HASH_MODEL;
	} else {
		struct pl_http_opts ho;
		pl_http_opts_default(&ho);
		ho.timeout_ms = eo.timeout_ms;
		ho.max_tries = eo.max_tries;
		ho.parallel = eo.parallel;
		ho.insecure = eo.insecure;
		ho.final = pl_embed_http_refused;
		http = pl_http_new(&ho);
		pl_embed_http_url(eo.base_url, url, sizeof url);
		headers = pl_embed_http_headers(&eo, hdr);
		model = eo.model;
	}
	nslen = (size_t)snprintf(ns, sizeof ns, "%s%c%s%c%d", backend, 0, model, 0, eo.dim);
	if (cache_spec) {
		int st;
		char cerr[PL_VCACHE_ERRLEN];
		cache = pl_vcache_open(cache_spec, "plumb:vec:", ttl, 5000, cerr, &st);
		if (!cache)
			pl_die(st, "cache: %s", cerr);
	}
	pend = pl_xmalloc((size_t)eo.batch * sizeof *pend);

	/* a signal lets requests in flight finish, and their records out */
	pl_input_open(argc - optind, argv + optind);
	pl_input_before_fatal(drain);
	while (pl_input_next_or_stop(&rec)) {
		take(&rec);
		flush_queue();
		nrec++;
		bytes += rec.len;
		pl_progress(nrec, bytes, "records");
	}
	drain();
	if (pl_stop)
		pl_exit_signal();
	pl_embedder_free(hasher);
	pl_http_free(http);
	pl_vcache_close(cache);
	pl_jobj_free(&rec.obj);
	pl_finish();
}
