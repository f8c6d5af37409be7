#include "embed.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hash.h"
#include "exitcode.h"
#include "utf8.h"

void pl_embed_opts_default(struct pl_embed_opts *o)
{
	memset(o, 0, sizeof *o);
	o->backend = PL_EMBED_HASH;
	o->dim = PL_EMBED_DEFAULT_DIM;
	o->batch = 128;
	o->batch_tokens = 100000;
	o->parallel = 4;
	o->max_input_tokens = 8191;
	o->timeout_ms = 60000;
	o->connect_timeout_ms = 10000;
	o->max_tries = 5;
}

/* ---- the hash backend ---------------------------------------------------- */

/* 64-bit FNV-1a, then a murmur3 finalizer to spread the bits: byte-wise, so
 * the same on every machine whatever its endianness. */
static uint64_t fnv(const unsigned char *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}


#define FNV_BASIS 0xcbf29ce484222325ull
/* feature kinds are hashed apart, and weighted */
#define KIND_WORD 1
#define KIND_BIGRAM 2
#define KIND_TRIGRAM 3
static const float kind_weight[] = { 0, 1.0f, 0.7f, 0.4f };

/* Feature counts in an open-addressing table: counting with a sort cost
 * embed two thirds of its time. The table and the accumulator are reused
 * from call to call (one set per thread). */
struct feats {
	uint64_t *key;
	uint32_t *count, *used;
	size_t cap, nused;
};

static __thread struct feats tls_feats;
static __thread double *tls_acc;
static __thread int tls_acc_dim;

static void feats_grow(struct feats *f)
{
	struct feats g = { 0 };
	g.cap = f->cap ? f->cap * 2 : 4096;
	g.key = pl_xmalloc(g.cap * sizeof *g.key);
	g.count = pl_xmalloc(g.cap * sizeof *g.count);
	g.used = pl_xmalloc(g.cap * sizeof *g.used);
	memset(g.count, 0, g.cap * sizeof *g.count);
	for (size_t i = 0; i < f->nused; i++) {
		uint32_t s = f->used[i];
		size_t j = (size_t)(f->key[s] >> 2) & (g.cap - 1);
		while (g.count[j])
			j = (j + 1) & (g.cap - 1);
		g.key[j] = f->key[s];
		g.count[j] = f->count[s];
		g.used[g.nused++] = (uint32_t)j;
	}
	free(f->key);
	free(f->count);
	free(f->used);
	*f = g;
}

static void add_feat(struct feats *f, uint64_t h, int kind)
{
	/* the kind in the low bits weighs the feature */
	uint64_t k = (pl_mix64(h ^ (uint64_t)kind * 0x9e3779b97f4a7c15ull) & ~3ull) | (uint64_t)kind;

	if ((f->nused + 1) * 2 > f->cap)
		feats_grow(f);
	size_t j = (size_t)(k >> 2) & (f->cap - 1);
	while (f->count[j] && f->key[j] != k)
		j = (j + 1) & (f->cap - 1);
	if (!f->count[j]) {
		f->key[j] = k;
		f->used[f->nused++] = (uint32_t)j;
	}
	f->count[j]++;
}

/* A word character: ASCII letters and digits, and every non-ASCII byte (so
 * accented and CJK text forms words too). */
static int wordc(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80;
}

void pl_embed_hash(const char *text, size_t n, int dim, float *out)
{
	const unsigned char *t = (const unsigned char *)text;
	struct feats *fp = &tls_feats;
	unsigned char word[256];
	uint64_t prev = 0;
	int have_prev = 0;

	if (tls_acc_dim < dim) {
		free(tls_acc);
		tls_acc = pl_xmalloc((size_t)dim * sizeof *tls_acc);
		tls_acc_dim = dim;
	}
	double *acc = tls_acc;
	memset(acc, 0, (size_t)dim * sizeof *acc);
	for (size_t i = 0; i < n;) {
		if (!wordc(t[i])) {
			i++;
			continue;
		}
		size_t len = 0;
		while (i < n && wordc(t[i])) {
			unsigned char c = t[i++];
			if (len < sizeof word - 2)
				word[1 + len++] = (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		/* a word cut by the length limit must not end inside a character */
		while (len && (word[len] & 0xC0) == 0x80 && pl_utf8_seq_valid(word + 1, len) < len)
			len--;
		uint64_t wh = fnv(word + 1, len, FNV_BASIS);
		add_feat(fp, wh, KIND_WORD);
		if (have_prev)
			add_feat(fp, fnv((const unsigned char *)&wh, 0, prev * 31 + wh), KIND_BIGRAM);
		prev = wh;
		have_prev = 1;
		/* character trigrams of "<word>", counted in code points */
		word[0] = '<';
		word[len + 1] = '>';
		size_t total = len + 2, a = 0;
		while (a < total) {
			size_t b = a, k = 0;
			while (b < total && k < 3) {
				b += pl_utf8_seqlen(word[b]);
				k++;
			}
			if (k < 3 || b > total)
				break;
			add_feat(fp, fnv(word + a, b - a, FNV_BASIS), KIND_TRIGRAM);
			a += pl_utf8_seqlen(word[a]);
		}
	}

	/* in the order features first appeared: the same sums on every run */
	for (size_t i = 0; i < fp->nused; i++) {
		uint32_t s = fp->used[i];
		uint64_t h = fp->key[s];
		uint32_t c = fp->count[s];
		double w = kind_weight[h & 3] * (c == 1 ? 1.0 : 1.0 + log((double)c));
		size_t slot = (size_t)((h >> 2) % (uint64_t)dim);
		acc[slot] += (h >> 63) ? -w : w;	/* signed hashing */
		fp->count[s] = 0;
	}
	fp->nused = 0;
	double norm = 0;
	for (int k = 0; k < dim; k++)
		norm += acc[k] * acc[k];
	norm = norm > 0 ? 1.0 / sqrt(norm) : 0;
	for (int k = 0; k < dim; k++)
		out[k] = (float)(acc[k] * norm);
}

/* ---- the embedder -------------------------------------------------------- */

struct pl_embedder {
	struct pl_embed_opts o;
	int dim;
	struct pl_embed_http *http;	/* the http backend's state */
};

/* the http backend lives in embed_http.c */
struct pl_embed_http *pl_embed_http_new(const struct pl_embed_opts *o, char *err);
void pl_embed_http_free(struct pl_embed_http *h);
int pl_embed_http_batch(struct pl_embed_http *h, const char *const *texts, const size_t *lens,
			size_t n, float **out, int *dim, char *err);

struct pl_embedder *pl_embedder_new(const struct pl_embed_opts *o, char *err)
{
	struct pl_embedder *e;

	if (o->backend == PL_EMBED_BERT) {
		snprintf(err, PL_EMBED_ERRLEN, "the bert backend is not built yet");
		return NULL;
	}
	if (o->backend == PL_EMBED_HASH && (o->dim < 1 || o->dim > 65536)) {
		snprintf(err, PL_EMBED_ERRLEN, "dimension %d is out of range (1 to 65536)", o->dim);
		return NULL;
	}
	e = pl_xmalloc(sizeof *e);
	memset(e, 0, sizeof *e);
	e->o = *o;
	if (o->backend == PL_EMBED_HASH) {
		e->dim = o->dim;
		return e;
	}
	e->http = pl_embed_http_new(o, err);
	if (!e->http) {
		free(e);
		return NULL;
	}
	return e;
}

void pl_embedder_free(struct pl_embedder *e)
{
	if (!e)
		return;
	if (e->http)
		pl_embed_http_free(e->http);
	free(e);
}

const char *pl_embedder_model(const struct pl_embedder *e)
{
	return e->o.backend == PL_EMBED_HASH ? PL_EMBED_HASH_MODEL : e->o.model;
}

int pl_embedder_dim(const struct pl_embedder *e)
{
	return e->dim;
}

int pl_embed_batch(struct pl_embedder *e, const char *const *texts, const size_t *lens, size_t n,
		   float **out, int *dim, char *err)
{
	if (e->o.backend == PL_EMBED_HASH) {
		*out = pl_xrealloc(*out, (n ? n : 1) * (size_t)e->dim * sizeof **out);
		for (size_t i = 0; i < n; i++)
			pl_embed_hash(texts[i], lens[i], e->dim, *out + i * (size_t)e->dim);
		*dim = e->dim;
		return 0;
	}
	int r = pl_embed_http_batch(e->http, texts, lens, n, out, dim, err);
	if (r == 0)
		e->dim = *dim;
	return r;
}
