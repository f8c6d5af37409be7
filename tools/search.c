/* search: the k nearest stored points to each query record, from a local
 * vector store or a Qdrant collection (docs/search.1). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "embed.h"
#include "qdrant.h"
#include "topk.h"
#include "vstore.h"

static const char usage[] =
	"search [--local DIR | --qdrant URL -c COLLECTION] [-k N] [--payload | --fields LIST]\n"
	"[--backend hash|http] [--dim N] [--model NAME] [--base-url URL] [--api-key-file FILE]\n"
	"[--timeout SECONDS] [--insecure] [--threads N] [--keep-going] [--rejects file] [file ...]";

static const char help[] =
	"\nFind the k stored points nearest to each query record (\"vector\", or \"text\"\n"
	"embedded as embed(1) would), and write the query back with \"hits\".\n\n"
	"      --local DIR     the vector store written by upsert-local (PLUMB_LOCAL_STORE)\n"
	"      --qdrant URL    a Qdrant server instead (QDRANT_URL; key: QDRANT_API_KEY)\n"
	"  -c, --collection C  the Qdrant collection (PLUMB_COLLECTION)\n"
	"  -k N                hits per query (PLUMB_SEARCH_K, 10)\n"
	"      --payload       add each hit's whole payload (PLUMB_SEARCH_PAYLOAD=1)\n"
	"      --fields LIST   add these payload fields, e.g. text,meta (PLUMB_SEARCH_FIELDS)\n"
	"      --backend B     embed text queries with hash or http (PLUMB_EMBED_BACKEND)\n"
	"      --dim N         hash: vector size (default: the store's) (PLUMB_EMBED_DIM)\n"
	"      --model NAME    http: the embedding model (PLUMB_EMBED_MODEL)\n"
	"      --base-url URL  http: the API root (OPENAI_BASE_URL)\n"
	"      --api-key-file F  http: the API key's file (PLUMB_API_KEY_FILE; else OPENAI_API_KEY)\n"
	"      --timeout S     per request, to Qdrant and the embedding server (PLUMB_TIMEOUT, 60)\n"
	"      --insecure      do not verify TLS certificates (Qdrant and the embedding server)\n"
	"      --threads N     search threads (PLUMB_THREADS; default: one per CPU)\n"
	"      --keep-going, --rejects FILE, -v, --quiet, -h, --help, --version: see plumb(7)\n";

#define QBATCH 256	/* queries per block: one sgemm pass over the store */
#define HITS_MAX (1 << 20)	/* hits per block: fewer queries per block for a large k */

/* --- backends ----------------------------------------------------------- */

/* A hit as any backend gives it: id and doc are raw UTF-8, payload a JSON
 * object (or NULL), all valid until the backend's next query. */
struct hit {
	double score;
	const char *id, *doc, *payload;
	size_t idlen, doclen, paylen;
	int has_doc;
};

/* A store to search. query fills hits[i * k ...] and n[i] for each of the
 * nq query vectors (dim floats each), best first; it returns 0, or an exit
 * status with err filled. A Qdrant backend fits the same shape. */
struct backend {
	void *h;
	int dim;		/* of the stored vectors; 0 when unknown or empty */
	const char *model;	/* of the stored vectors; "" when unknown */
	int (*query)(void *h, const float *q, size_t nq, int dim, size_t k, struct hit *hits,
		     size_t *n, char *err, size_t errlen);
	void (*close)(void *h);
};

struct local {
	struct pl_vs *vs;
	struct pl_topk_seg *segs;
	struct pl_topk_hit *th;
	size_t thcap;
	int threads;
};

/* Equal scores rank by id, bytewise: the same order on every run. */
static int local_tie(void *ctx, uint32_t sa, uint32_t ra, uint32_t sb, uint32_t rb)
{
	const struct pl_vs *vs = ctx;
	struct pl_vs_row a, b;

	pl_vs_get_row(&vs->seg[sa], ra, &a);
	pl_vs_get_row(&vs->seg[sb], rb, &b);
	int c = memcmp(a.id, b.id, a.idlen < b.idlen ? a.idlen : b.idlen);
	if (c)
		return c;
	return a.idlen < b.idlen ? -1 : a.idlen > b.idlen;
}

static int local_query(void *h, const float *q, size_t nq, int dim, size_t k, struct hit *hits,
		       size_t *n, char *err, size_t errlen)
{
	struct local *l = h;
	struct pl_vs_row r;

	if (nq * k > l->thcap) {
		l->thcap = nq * k;
		l->th = pl_xrealloc(l->th, l->thcap * sizeof *l->th);
	}
	if (pl_topk_search(l->segs, l->vs->nseg, dim, q, nq, k, l->threads, local_tie, l->vs,
			   l->th, n, err, errlen) < 0)
		return PL_EX_SOFTWARE;
	for (size_t i = 0; i < nq * k; i++) {
		if (i % k >= n[i / k])
			continue;
		const struct pl_topk_hit *t = &l->th[i];
		pl_vs_get_row(&l->vs->seg[t->seg], t->row, &r);
		hits[i] = (struct hit){ t->score, r.id, r.doc, r.payload, r.idlen, r.doclen,
					r.paylen, r.has_doc };
	}
	return 0;
}

static void local_close(void *h)
{
	struct local *l = h;
	pl_vs_close(l->vs);
	free(l->segs);
	free(l->th);
	free(l);
}

static void local_open(struct backend *b, const char *dir, int threads)
{
	struct local *l = pl_xmalloc(sizeof *l);
	char err[PL_VS_ERRLEN];
	int status;

	memset(l, 0, sizeof *l);
	status = pl_vs_open(dir, &l->vs, err);
	if (status) {
		free(l);
		pl_die(pl_vs_exit_status(status), "%s", err);
	}
	l->threads = threads;
	l->segs = pl_xmalloc((l->vs->nseg ? l->vs->nseg : 1) * sizeof *l->segs);
	for (size_t i = 0; i < l->vs->nseg; i++)
		l->segs[i] = (struct pl_topk_seg){ l->vs->seg[i].vec, l->vs->seg[i].rows,
						   l->vs->seg[i].dead_bits };
	pl_info("store '%s': generation %llu, %zu live points of dimension %d in %zu segments",
		dir, (unsigned long long)l->vs->generation, l->vs->rows - l->vs->dead, l->vs->dim,
		l->vs->nseg);
	b->h = l;
	b->dim = l->vs->rows > l->vs->dead ? l->vs->dim : 0;
	b->model = l->vs->model;
	b->query = local_query;
	b->close = local_close;
}

struct remote {
	struct pl_qdrant *q;
	struct pl_qdrant_hits hits;
	int with_payload;
};

static int remote_query(void *h, const float *q, size_t nq, int dim, size_t k, struct hit *hits,
			size_t *n, char *err, size_t errlen)
{
	struct remote *r = h;
	char qerr[PL_QDRANT_ERRLEN];
	int status;

	pl_qdrant_hits_free(&r->hits);
	memset(&r->hits, 0, sizeof r->hits);
	status = pl_qdrant_query(r->q, q, nq, (size_t)dim, (int)k, r->with_payload, NULL, &r->hits,
				 qerr);
	if (status) {
		snprintf(err, errlen, "%s", qerr);
		return status;
	}
	for (size_t i = 0; i < nq; i++) {
		size_t first = r->hits.first[i], m = r->hits.first[i + 1] - first;
		n[i] = m < k ? m : k;
		for (size_t j = 0; j < n[i]; j++) {
			const struct pl_qdrant_hit *x = &r->hits.hit[first + j];
			hits[i * k + j] = (struct hit){ x->score, x->id, x->doc_id ? x->doc_id : "",
							x->payload, strlen(x->id),
							x->doc_id ? strlen(x->doc_id) : 0,
							x->payload ? strlen(x->payload) : 0, x->doc_id != NULL };
		}
	}
	return 0;
}

static void remote_close(void *h)
{
	struct remote *r = h;
	pl_qdrant_hits_free(&r->hits);
	pl_qdrant_free(r->q);
	free(r);
}

static void remote_open(struct backend *b, const struct pl_qdrant_opts *o, int with_payload)
{
	struct remote *r = pl_xmalloc(sizeof *r);
	struct pl_qdrant_info info;
	char err[PL_QDRANT_ERRLEN];
	int status;

	memset(r, 0, sizeof *r);
	r->with_payload = with_payload;
	r->q = pl_qdrant_new(o, err);
	status = r->q ? pl_qdrant_info(r->q, &info, err) : PL_EX_USAGE;
	if (!status && !info.exists) {
		snprintf(err, sizeof err, "no collection \"%s\" at %s", o->collection,
			 pl_qdrant_url(r->q));
		status = PL_EX_USAGE;
	} else if (!status && info.named) {
		snprintf(err, sizeof err, "collection \"%s\" uses named vectors; search queries one "
			 "unnamed vector", o->collection);
		status = PL_EX_USAGE;
	}
	if (status) {
		remote_close(r);
		pl_die(status, "%s", err);
	}
	pl_info("collection \"%s\" at %s: size %ld, %s distance", o->collection,
		pl_qdrant_url(r->q), info.size, pl_qdrant_distance_name(info.distance));
	b->h = r;
	b->dim = info.points == 0 ? 0 : (int)info.size;
	b->model = "";
	b->query = remote_query;
	b->close = remote_close;
}

/* --- queries ------------------------------------------------------------ */

struct query {
	size_t off, len;	/* the line, in block.lines */
	unsigned long lineno;
	long vec;		/* row in block.vecs, or -1: embed text */
	size_t toff, tlen;	/* the decoded text, in block.texts */
};

static struct {
	struct query q[QBATCH];
	size_t n;
	const char *file;
	struct pl_buf lines, texts;
	float *vecs;		/* QBATCH rows of dim */
	size_t veccap;
} block;

static size_t qbatch;	/* queries per block: QBATCH, less for a large k */
static struct backend be;
static struct pl_embed_opts eo;
static struct pl_embedder *embedder;
static const char *fields;	/* comma-separated, or NULL */
static int want_payload;
static size_t k;
static int qdim;		/* the dimension of query vectors: the store's */
static unsigned long canaries, misses;
static float *scratch;
static struct hit *hits;
static size_t *nhits;

/* The shortest text that reads back as the same float. */
static void put_score(struct pl_buf *b, double score)
{
	float f = (float)score;
	char tmp[32];
	int n = 0;

	for (int prec = 6; prec <= 9; prec++) {
		n = snprintf(tmp, sizeof tmp, "%.*g", prec, (double)f);
		if (strtof(tmp, NULL) == f)
			break;
	}
	pl_buf_add(b, tmp, (size_t)n);
}

/* The payload members named in fields, as an object. */
static void put_fields(struct pl_buf *b, const struct hit *h)
{
	static struct pl_jobj o;
	struct pl_jerr e;
	int first = 1;

	pl_buf_addc(b, '{');
	if (pl_json_scan_object(h->payload, h->paylen, &o, &e) == 0) {
		for (const char *f = fields; *f;) {
			size_t n = strcspn(f, ",");
			for (size_t i = o.n; i-- > 0;) {
				const struct pl_jmember *m = &o.m[i];
				if (m->keylen == n && memcmp(m->key, f, n) == 0) {
					if (!first)
						pl_buf_addc(b, ',');
					pl_json_put_member(b, m);
					first = 0;
					break;
				}
			}
			f += n + (f[n] == ',');
		}
	}
	pl_buf_addc(b, '}');
}

static int doc_is(const struct hit *h, const char *s, size_t n)
{
	return h->has_doc && h->doclen == n && memcmp(h->doc, s, n) == 0;
}

/* Check the query's "expected" doc ids against its hits. */
static void check_canary(const struct query *q, const struct pl_jobj *o, const struct hit *hs,
			 size_t nh)
{
	static struct pl_buf want, name;
	const struct pl_jmember *exp = pl_jobj_get(o, "expected");
	const struct pl_jmember *id = pl_jobj_get(o, "id");
	const char *s;
	size_t n;
	struct pl_jerr e;

	if (!exp)
		return;
	canaries++;
	name.n = 0;
	if (id && id->type == PL_JSTR) {
		pl_buf_adds(&name, "canary ");
		pl_buf_add(&name, id->val, id->vallen);
	} else {
		pl_buf_adds(&name, "canary");
	}
	/* the array holds only strings (checked when read) */
	const char *p = exp->val + 1, *end = exp->val + exp->vallen - 1;
	int missed = 0;
	while (p < end) {
		while (p < end && *p != '"')
			p++;
		if (p >= end)
			break;
		const char *q0 = p++;
		while (p < end && *p != '"')
			p += *p == '\\' ? 2 : 1;
		struct pl_jmember m = { 0 };
		m.val = q0;
		m.vallen = (size_t)(p + 1 - q0);
		m.type = PL_JSTR;
		m.val_esc = memchr(q0, '\\', m.vallen) != NULL;
		p++;
		if (pl_jmember_str(&m, &want, &s, &n, PL_JSTR_REPLACE, &e) < 0)
			continue;
		size_t i;
		for (i = 0; i < nh && !doc_is(&hs[i], s, n); i++)
			;
		if (i == nh) {
			pl_warn("%s:%lu: %.*s missed \"%.*s\" (top %zu)", block.file, q->lineno,
				(int)name.n, name.p, (int)m.vallen - 2, m.val + 1, k);
			missed = 1;
		}
	}
	misses += (unsigned long)missed;
}

static void write_query(const struct query *q, const struct hit *hs, size_t nh)
{
	static struct pl_jobj o;
	struct pl_jerr e;
	const char *line = block.lines.p + q->off;
	int first = 1;

	/* the line was scanned when read: this cannot fail */
	pl_json_scan_object(line, q->len, &o, &e);
	pl_buf_addc(&pl_out, '{');
	for (size_t i = 0; i < o.n; i++) {
		if (pl_jmember_key_is(&o.m[i], "hits"))
			continue;	/* replaced */
		if (!first)
			pl_buf_addc(&pl_out, ',');
		pl_json_put_member(&pl_out, &o.m[i]);
		first = 0;
	}
	if (!first)
		pl_buf_addc(&pl_out, ',');
	pl_buf_adds(&pl_out, "\"hits\":[");
	for (size_t i = 0; i < nh; i++) {
		const struct hit *h = &hs[i];
		pl_buf_adds(&pl_out, i ? ",{\"id\":" : "{\"id\":");
		pl_json_put_str(&pl_out, h->id, h->idlen);
		pl_buf_adds(&pl_out, ",\"doc_id\":");
		if (h->has_doc)
			pl_json_put_str(&pl_out, h->doc, h->doclen);
		else
			pl_buf_adds(&pl_out, "null");
		pl_buf_adds(&pl_out, ",\"score\":");
		put_score(&pl_out, h->score);
		if (h->payload && want_payload) {
			pl_buf_adds(&pl_out, ",\"payload\":");
			pl_buf_add(&pl_out, h->payload, h->paylen);
		} else if (h->payload && fields) {
			pl_buf_adds(&pl_out, ",\"payload\":");
			put_fields(&pl_out, h);
		}
		pl_buf_addc(&pl_out, '}');
	}
	pl_buf_adds(&pl_out, "]}");
	pl_out_end();
	check_canary(q, &o, hs, nh);
}

/* Embed the block's text queries into their rows of block.vecs. */
static void embed_texts(void)
{
	static const char **texts;
	static size_t *lens, *rows;
	size_t n = 0;
	char err[PL_EMBED_ERRLEN];
	int dim = 0, status;

	if (!texts) {
		texts = pl_xmalloc(QBATCH * sizeof *texts);
		lens = pl_xmalloc(QBATCH * sizeof *lens);
		rows = pl_xmalloc(QBATCH * sizeof *rows);
	}
	for (size_t i = 0; i < block.n; i++) {
		if (block.q[i].vec >= 0)
			continue;
		texts[n] = block.texts.p + block.q[i].toff;
		lens[n] = block.q[i].tlen;
		rows[n++] = i;
	}
	if (!n)
		return;
	if (!embedder) {
		embedder = pl_embedder_new(&eo, err);
		if (!embedder)
			pl_die(PL_EX_USAGE, "%s", err);
	}
	status = pl_embed_batch(embedder, texts, lens, n, &scratch, &dim, err);
	if (status)
		pl_die(status, "embedding queries: %s", err);
	const char *model = pl_embedder_model(embedder);
	if (*be.model && model && strcmp(model, be.model) != 0)
		pl_die(PL_EX_USAGE, "the store holds vectors of model \"%s\", but queries would be "
		       "embedded with \"%s\"", be.model, model);
	if (be.dim && dim != be.dim)
		pl_die(PL_EX_USAGE, "queries are embedded with %d dimensions, the store holds %d",
		       dim, be.dim);
	for (size_t i = 0; i < n; i++)
		memcpy(block.vecs + rows[i] * (size_t)qdim, scratch + i * (size_t)dim,
		       (size_t)qdim * sizeof(float));
}

static void run_block(void)
{
	char err[PL_EMBED_ERRLEN];

	if (!block.n)
		return;
	if (be.dim) {
		embed_texts();
		int status = be.query(be.h, block.vecs, block.n, qdim, k, hits, nhits, err,
				      sizeof err);
		if (status)
			pl_die(status, "%s", err);
	} else {
		memset(nhits, 0, block.n * sizeof *nhits);	/* an empty store */
	}
	for (size_t i = 0; i < block.n; i++)
		write_query(&block.q[i], hits + i * k, nhits[i]);
	block.n = 0;
	block.lines.n = 0;
	block.texts.n = 0;
	pl_out_flush();
}

static void take(const struct pl_rec *rec)
{
	static float *v;
	static size_t vcap;
	static struct pl_buf tmp;
	const struct pl_jmember *vec = pl_jobj_get(&rec->obj, "vector");
	const struct pl_jmember *text = pl_jobj_get(&rec->obj, "text");
	const struct pl_jmember *exp = pl_jobj_get(&rec->obj, "expected");
	struct query *q = &block.q[block.n];
	struct pl_jerr e;
	char why[128];

	if (exp) {
		enum pl_jtype t;
		int ok = exp->type == PL_JARR;
		/* an array of strings: every element starts with a quote */
		for (const char *p = exp->val + 1; ok && p < exp->val + exp->vallen - 1; p++) {
			if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',')
				continue;
			if (*p != '"') {
				ok = 0;
				break;
			}
			const char *s = p++;
			while (*p != '"')
				p += *p == '\\' ? 2 : 1;
			ok = pl_json_validate(s, (size_t)(p + 1 - s), &t, &e) == 0 && t == PL_JSTR;
		}
		if (!ok) {
			pl_input_reject(rec, "\"expected\" is not an array of doc ids");
			return;
		}
	}
	q->vec = block.n;
	if (vec) {
		long dim = pl_vs_vector_member(vec, &v, &vcap, why, sizeof why);
		if (dim < 0) {
			pl_input_reject(rec, "%s", why);
			return;
		}
		if (be.dim && dim != be.dim) {
			pl_input_reject(rec, "\"vector\" has %ld dimensions, the store holds %d", dim,
					be.dim);
			return;
		}
		if (be.dim)
			memcpy(block.vecs + block.n * (size_t)qdim, v, (size_t)qdim * sizeof *v);
	} else if (text && text->type == PL_JSTR) {
		const char *s;
		size_t n;
		if (pl_jmember_str(text, &tmp, &s, &n, 0, &e) < 0) {
			pl_input_reject(rec, "\"text\": %s", e.msg);
			return;
		}
		q->vec = -1;
		q->toff = block.texts.n;
		q->tlen = n;
		pl_buf_add(&block.texts, s, n);
	} else {
		pl_input_reject(rec, "query has neither \"vector\" nor \"text\"");
		return;
	}
	q->off = block.lines.n;
	q->len = rec->len;
	q->lineno = rec->lineno;
	pl_buf_add(&block.lines, rec->line, rec->len);
	if (++block.n == qbatch)
		run_block();
}

/* Input would block: answer the queries read so far now. */
static void before_block(void)
{
	run_block();
	pl_out_flush();
}

static void finish(void)
{
	if (!misses)
		pl_finish();
	pl_out_flush();
	if (close(1) < 0 && errno != EBADF && errno != EINTR)
		pl_die(PL_EX_SOFTWARE, "write error on standard output:");
	pl_warn("%lu of %lu canaries missed", misses, canaries);
	exit(PL_EX_CHECK);
}

int main(int argc, char **argv)
{
	enum { O_LOCAL = 0x2000, O_QDRANT, O_PAYLOAD, O_FIELDS, O_BACKEND, O_DIM, O_MODEL,
	       O_BASE, O_THREADS, O_KEYFILE, O_TIMEOUT, O_INSECURE };
	static const struct option longopts[] = {
		{ "local", required_argument, NULL, O_LOCAL },
		{ "qdrant", required_argument, NULL, O_QDRANT },
		{ "collection", required_argument, NULL, 'c' },
		{ "payload", no_argument, NULL, O_PAYLOAD },
		{ "fields", required_argument, NULL, O_FIELDS },
		{ "backend", required_argument, NULL, O_BACKEND },
		{ "dim", required_argument, NULL, O_DIM },
		{ "model", required_argument, NULL, O_MODEL },
		{ "base-url", required_argument, NULL, O_BASE },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "api-key-file", required_argument, NULL, O_KEYFILE },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "insecure", no_argument, NULL, O_INSECURE },
		PL_COMMON_LONGOPTS,
		{ 0 }
	};
	const char *dir, *qdrant = NULL, *backend, *dim_s, *keyfile, *timeout_s, *timeout_from;
	struct pl_qdrant_opts qo;
	struct pl_rec rec = { 0 };
	unsigned long long nrec = 0, bytes = 0;
	long threads;
	int c, local = 0;

	pl_init("search", usage, help);
	pl_embed_opts_default(&eo);
	dir = pl_env("PLUMB_LOCAL_STORE", NULL);
	memset(&qo, 0, sizeof qo);
	pl_http_opts_default(&qo.http);
	qo.api_key = pl_env("QDRANT_API_KEY", NULL);
	qo.collection = pl_env("PLUMB_COLLECTION", NULL);
	k = (size_t)pl_env_long("PLUMB_SEARCH_K", 10);
	const char *v = pl_env("PLUMB_SEARCH_PAYLOAD", NULL);
	want_payload = v && strcmp(v, "0") != 0;
	fields = pl_env("PLUMB_SEARCH_FIELDS", NULL);
	backend = pl_env("PLUMB_EMBED_BACKEND", "hash");
	dim_s = pl_env("PLUMB_EMBED_DIM", NULL);
	eo.model = pl_env("PLUMB_EMBED_MODEL", NULL);
	eo.base_url = pl_env("OPENAI_BASE_URL", "https://api.openai.com/v1");
	eo.api_key = pl_env("OPENAI_API_KEY", NULL);
	keyfile = pl_env("PLUMB_API_KEY_FILE", NULL);
	timeout_s = pl_env("PLUMB_TIMEOUT", NULL);
	timeout_from = "PLUMB_TIMEOUT";
	threads = pl_env_long("PLUMB_THREADS", 0);
	while ((c = getopt_long(argc, argv, "c:k:vh", longopts, NULL)) != -1) {
		switch (c) {
		case O_LOCAL: dir = optarg; local = 1; break;
		case O_QDRANT: qdrant = optarg; break;
		case 'c': qo.collection = optarg; break;
		case 'k': k = (size_t)pl_parse_long("-k", optarg, 1, 100000); break;
		case O_PAYLOAD: want_payload = 1; break;
		case O_FIELDS: fields = optarg; break;
		case O_BACKEND: backend = optarg; break;
		case O_DIM: dim_s = optarg; break;
		case O_MODEL: eo.model = optarg; break;
		case O_BASE: eo.base_url = optarg; break;
		case O_THREADS: threads = pl_parse_long("--threads", optarg, 1, 1024); break;
		case O_KEYFILE: keyfile = optarg; break;
		case O_TIMEOUT: timeout_s = optarg; timeout_from = "--timeout"; break;
		case O_INSECURE: eo.insecure = qo.http.insecure = 1; break;
		default: pl_common_option(c, optarg);
		}
	}
	if (k < 1 || k > 100000)
		pl_usage_error("PLUMB_SEARCH_K must be from 1 to 100000");
	if (want_payload && fields)
		pl_usage_error("--payload and --fields exclude each other");
	if (fields && !*fields)
		fields = NULL;
	/* flags choose the store; else PLUMB_LOCAL_STORE, else a collection */
	if (qdrant && local)
		pl_usage_error("--local and --qdrant exclude each other");
	if (!qdrant && !dir && qo.collection)
		qdrant = pl_env("QDRANT_URL", PL_QDRANT_DEFAULT_URL);
	if (qdrant && !qo.collection)
		pl_usage_error("--qdrant needs --collection (or PLUMB_COLLECTION)");
	if (!qdrant && !dir)
		pl_usage_error("no store (give --local DIR or --qdrant URL, or set PLUMB_LOCAL_STORE)");
	qo.url = qdrant;
	if (timeout_s)
		eo.timeout_ms = qo.http.timeout_ms =
			pl_parse_long(timeout_from, timeout_s, 1, 86400) * 1000;
	if (strcmp(backend, "hash") == 0) {
		eo.backend = PL_EMBED_HASH;
	} else if (strcmp(backend, "http") == 0) {
		eo.backend = PL_EMBED_HTTP;
		if (!eo.model)
			pl_usage_error("--backend http needs --model (or PLUMB_EMBED_MODEL)");
		if (keyfile)
			eo.api_key = pl_read_key_file(keyfile);
	} else {
		pl_usage_error("unknown backend '%s' (want hash or http)", backend);
	}
	eo.dim = dim_s ? (int)pl_parse_long("--dim", dim_s, 1, 65536) : 0;

	pl_input_open(0, NULL);	/* sets up --rejects */
	if (qdrant)
		remote_open(&be, &qo, want_payload || fields);
	else
		local_open(&be, dir, (int)threads);
	qdim = be.dim;
	if (eo.backend == PL_EMBED_HASH && !eo.dim)
		eo.dim = be.dim ? be.dim : PL_EMBED_DEFAULT_DIM;
	qbatch = HITS_MAX / k < QBATCH ? (HITS_MAX / k ? HITS_MAX / k : 1) : QBATCH;
	block.vecs = pl_xmalloc(qbatch * (size_t)(qdim ? qdim : 1) * sizeof *block.vecs);
	hits = pl_xmalloc(qbatch * k * sizeof *hits);
	nhits = pl_xmalloc(qbatch * sizeof *nhits);

	/* bad input stops the program: the queries before it are answered */
	pl_input_before_fatal(run_block);
	int nfiles = argc - optind;
	char *dash[] = { "-" };
	char **files = nfiles ? argv + optind : dash;
	for (int i = 0; i < (nfiles ? nfiles : 1) && !pl_stop; i++) {
		struct pl_lines l;
		if (pl_lines_open(&l, files[i]) < 0)
			pl_die(PL_EX_USAGE, "cannot open '%s':", files[i]);
		pl_input_attach(&l);
		l.before_block = before_block;
		block.file = l.name;
		while (pl_input_next_from(&l, &rec)) {
			take(&rec);
			nrec++;
			bytes += rec.len;
			pl_progress(nrec, bytes, "queries");
		}
		run_block();	/* its queries name this file in messages */
		pl_lines_close(&l);
	}
	if (pl_stop)
		pl_exit_signal();
	be.close(be.h);
	pl_embedder_free(embedder);
	pl_jobj_free(&rec.obj);
	free(block.vecs);
	free(hits);
	free(nhits);
	free(scratch);
	finish();
}
