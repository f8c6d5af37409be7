#include "textmetrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "buf.h"
#include "hash.h"
#include "utf8.h"

/* Checked against sacreBLEU 2.6.0, rouge-score 0.1.x with NLTK 3.8's
 * PorterStemmer, and CPython 3.11's str; the BLEU and chrF signatures carry
 * the sacreBLEU release, as sacreBLEU's own do. */
#define SACREBLEU_VERSION "2.6.0"

/* ------------------------------------------------------------------------
 * Python's str semantics, which every reference implementation relies on:
 * str.split()/strip() white space, str.lower(), and the \w of re.
 * ------------------------------------------------------------------------ */

/* str.isspace(): what str.split() with no argument splits on. */
static int py_space(uint32_t c)
{
	if (c < 0x80)
		return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
	return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
	       c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Byte length of the py_space character at p (valid UTF-8, n bytes left),
 * or 0: the 13a path splits UTF-8 in place rather than decoding it. */
static size_t ws_len_mb(const unsigned char *p, size_t n)
{
	if (p[0] == 0xC2)
		return n >= 2 && (p[1] == 0x85 || p[1] == 0xA0) ? 2 : 0;
	if (n < 3)
		return 0;
	if (p[0] == 0xE1)
		return p[1] == 0x9A && p[2] == 0x80 ? 3 : 0;
	if (p[0] == 0xE2) {
		if (p[1] == 0x80 && (p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF))
			return 3;
		return p[1] == 0x81 && p[2] == 0x9F ? 3 : 0;
	}
	if (p[0] == 0xE3)
		return p[1] == 0x80 && p[2] == 0x80 ? 3 : 0;
	return 0;
}

/* bits 0x09-0x0D and 0x1C-0x20: the ASCII white space of str.isspace() */
#define ASCII_WS 0x1F0003E00ull

static inline size_t ws_len(const unsigned char *p, size_t n)
{
	if (p[0] < 0x80)
		return p[0] < 64 ? (size_t)((ASCII_WS >> p[0]) & 1) : 0;
	return ws_len_mb(p, n);
}

/* re's \w on str patterns: str.isalnum() or '_', which is exactly the
 * general categories L* and N* (checked against CPython 3.11 over every
 * code point). */
static int py_word(uint32_t c)
{
	if (c < 0x80)
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		       c == '_';
	utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
	return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
	       (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

/* Unicode's Cased and Case_Ignorable, which str.lower() consults for the
 * final form of capital sigma. utf8proc has no such properties; these are
 * their definitions in DerivedCoreProperties.txt in terms of what it has:
 * Other_Lowercase and Other_Uppercase are the characters with a case
 * mapping, plus those listed (the ones that matter outside the case-
 * ignorable modifier letters). Checked against CPython 3.11's str.lower()
 * around every code point of Unicode 14. */
static int cased(uint32_t c)
{
	utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
	if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT)
		return 1;
	if (c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) ||
	    (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189))
		return 1;
	return utf8proc_tolower((utf8proc_int32_t)c) != (utf8proc_int32_t)c ||
	       utf8proc_toupper((utf8proc_int32_t)c) != (utf8proc_int32_t)c;
}

static int case_ignorable(uint32_t c)
{
	switch (c) {	/* Word_Break MidLetter, MidNumLet, Single_Quote */
	case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
	case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
	case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
		return 1;
	}
	utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
	return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
	       k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK;
}

/* Growable arrays of code points or ids; storage from pl_xrealloc. */
struct u32s {
	uint32_t *v;
	size_t n, cap;
};

static void u32_reserve(struct u32s *a, size_t extra)
{
	if (a->cap - a->n >= extra)
		return;
	size_t cap = a->cap ? a->cap : 64;
	while (cap - a->n < extra)
		cap *= 2;
	a->v = pl_xrealloc(a->v, cap * sizeof *a->v);
	a->cap = cap;
}

static inline void u32_push(struct u32s *a, uint32_t x)
{
	if (a->n == a->cap)
		u32_reserve(a, 1);
	a->v[a->n++] = x;
}

/* Python's final-sigma rule: a capital sigma after a cased letter (case-
 * ignorable characters skipped) and not before one becomes U+03C2. */
static uint32_t sigma(const uint32_t *s, size_t n, size_t i)
{
	size_t j = i;
	while (j > 0 && case_ignorable(s[j - 1]))
		j--;
	if (j == 0 || !cased(s[j - 1]))
		return 0x3C3;
	j = i + 1;
	while (j < n && case_ignorable(s[j]))
		j++;
	return j == n || !cased(s[j]) ? 0x3C2 : 0x3C3;
}

/* str.lower() of s[0..n), appended to out: the full lower-case mapping, in
 * which only U+0130 maps to two code points, plus the final sigma. */
static void py_lower(const uint32_t *s, size_t n, struct u32s *out)
{
	u32_reserve(out, n + 1);
	for (size_t i = 0; i < n; i++) {
		uint32_t c = s[i];
		if (c < 0x80) {
			out->v[out->n++] = c >= 'A' && c <= 'Z' ? c + 32 : c;
		} else if (c == 0x130) {
			u32_push(out, 'i');
			u32_push(out, 0x307);
		} else if (c == 0x3A3) {
			u32_push(out, sigma(s, n, i));
		} else {
			u32_push(out, (uint32_t)utf8proc_tolower((utf8proc_int32_t)c));
		}
	}
}

/* UTF-8 to code points, appended to out; each byte of an invalid sequence
 * becomes U+FFFD, as pl_utf8_repair does. */
static void decode(const char *s, size_t n, struct u32s *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	u32_reserve(out, n);
	while (i < n) {
		if (p[i] < 0x80) {
			out->v[out->n++] = p[i++];
			continue;
		}
		size_t l = pl_utf8_seq_valid(p + i, n - i);
		if (!l) {
			out->v[out->n++] = 0xFFFD;
			i++;
			continue;
		}
		uint32_t cp;
		pl_utf8_decode(s + i, &cp);
		out->v[out->n++] = cp;
		i += l;
	}
}

static void encode(const uint32_t *s, size_t n, struct pl_buf *out)
{
	pl_buf_reserve(out, 4 * n);
	for (size_t i = 0; i < n; i++)
		out->n += pl_utf8_encode(s[i], out->p + out->n);
}

/* ------------------------------------------------------------------------
 * Hash tables. Tokens are interned to small integer ids (exact comparison
 * of their bytes), and n-grams are counted in an open-addressing table
 * keyed by id sequences, so no n-gram is ever built as a string.
 * ------------------------------------------------------------------------ */


/* All of s[0..n), 0 < n <= 8, in one word, with loads that overlap rather
 * than a byte copy (which stalls the load that follows it). */
static inline uint64_t load_small(const unsigned char *s, size_t n)
{
	if (n >= 4) {
		uint32_t a, b;
		memcpy(&a, s, 4);
		memcpy(&b, s + n - 4, 4);
		return (uint64_t)a << 32 | b;
	}
	return (uint64_t)s[0] << 16 | (uint64_t)s[n >> 1] << 8 | s[n - 1];
}

/* A hash whose high bits index the intern table: one multiply for the
 * short tokens that make up most text. */
static uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h, w;

	if (n <= 8)
		return ((n ? load_small(s, n) : 0) ^ (uint64_t)n << 56) * 0x9e3779b97f4a7c15ull;
	h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
	for (size_t i = 0; i + 8 < n; i += 8) {
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	memcpy(&w, s + n - 8, 8);
	return pl_mix64((h ^ w) * 0x100000001b3ull) * 0x9e3779b97f4a7c15ull;
}

struct ient {
	uint64_t h;
	size_t off;		/* key bytes in intern.keys */
	uint32_t len, id;
	uint32_t gen;		/* in use if equal to intern.gen */
};

struct intern {
	struct ient *e;
	size_t cap, n;
	unsigned shift;		/* 64 - log2(cap) */
	uint32_t gen;
	struct pl_buf keys;
};

static void *xcalloc(size_t n, size_t size)
{
	void *p = pl_xmalloc(n * size);
	memset(p, 0, n * size);
	return p;
}

static void intern_grow(struct intern *t)
{
	size_t cap = t->cap ? t->cap * 2 : 256;
	unsigned shift = t->cap ? t->shift - 1 : 64 - 8;
	struct ient *e = xcalloc(cap, sizeof *e);

	for (size_t i = 0; i < t->cap; i++) {
		if (t->e[i].gen != t->gen)
			continue;
		size_t j = (size_t)(t->e[i].h >> shift);
		while (e[j].gen == t->gen)
			j = (j + 1) & (cap - 1);
		e[j] = t->e[i];
	}
	free(t->e);
	t->e = e;
	t->cap = cap;
	t->shift = shift;
}

/* Forget every key (in O(1): entries of older generations are free). */
static void intern_reset(struct intern *t)
{
	t->n = 0;
	t->keys.n = 0;
	if (++t->gen == 0) {
		memset(t->e, 0, t->cap * sizeof *t->e);
		t->gen = 1;
	}
}

static inline int same_bytes(const char *a, const void *b, size_t n)
{
	if (n && n <= 8)	/* most tokens: no call */
		return load_small((const unsigned char *)a, n) == load_small(b, n);
	return !memcmp(a, b, n);
}

static uint32_t intern_id(struct intern *t, const void *p, size_t len)
{
	if (2 * (t->n + 1) > t->cap)
		intern_grow(t);
	uint64_t h = hash_bytes(p, len);
	size_t j = (size_t)(h >> t->shift);
	for (;;) {
		struct ient *e = &t->e[j];
		if (e->gen != t->gen)
			break;
		if (e->h == h && e->len == len && same_bytes(t->keys.p + e->off, p, len))
			return e->id;
		j = (j + 1) & (t->cap - 1);
	}
	struct ient *e = &t->e[j];
	e->h = h;
	e->off = t->keys.n;
	e->len = (uint32_t)len;
	e->gen = t->gen;
	e->id = (uint32_t)t->n++;
	pl_buf_add(&t->keys, p, len);
	return e->id;
}

static void intern_free(struct intern *t)
{
	free(t->e);
	pl_buf_free(&t->keys);
	memset(t, 0, sizeof *t);
}

/* One n-gram: kind tells the order (and chrF's characters from words);
 * a, b and stamp are counters whose meaning each metric gives them. */
struct gram {
	uint64_t h;
	const uint32_t *k;
	uint32_t n, kind;
	uint32_t a, b, stamp;
};

struct gtab {
	uint32_t *slot;		/* index + 1 into e; 0 is free */
	struct gram *e;
	size_t mask, n;		/* the table in use is slot[0 .. mask] */
	size_t cap, ecap;	/* allocated */
};

/* Room for at most max distinct n-grams; the table never grows after. */
static void gtab_init(struct gtab *t, size_t max)
{
	size_t cap = 16;
	while (cap < 2 * max)
		cap *= 2;
	if (cap > t->cap) {
		free(t->slot);
		t->slot = pl_xmalloc(cap * sizeof *t->slot);
		t->cap = cap;
	}
	memset(t->slot, 0, cap * sizeof *t->slot);
	t->mask = cap - 1;
	if (max > t->ecap) {
		free(t->e);
		t->e = pl_xmalloc((max ? max : 1) * sizeof *t->e);
		t->ecap = max;
	}
	t->n = 0;
}

static void gtab_free(struct gtab *t)
{
	free(t->slot);
	free(t->e);
	memset(t, 0, sizeof *t);
}

static inline int same_syms(const uint32_t *a, const uint32_t *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

static struct gram *gtab_get(struct gtab *t, uint32_t kind, const uint32_t *k, uint32_t n,
			     uint64_t h)
{
	size_t j = (size_t)h & t->mask;
	for (;;) {
		uint32_t s = t->slot[j];
		if (!s)
			break;
		struct gram *g = &t->e[s - 1];
		if (g->h == h && g->n == n && g->kind == kind && same_syms(g->k, k, n))
			return g;
		j = (j + 1) & t->mask;
	}
	struct gram *g = &t->e[t->n];
	t->slot[j] = (uint32_t)++t->n;
	g->h = h;
	g->k = k;
	g->n = n;
	g->kind = kind;
	g->a = g->b = g->stamp = 0;
	return g;
}

static inline uint64_t hash_step(uint64_t h, uint32_t x)
{
	h = (h ^ x) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 31);
}

/* The hash of the n-gram of kind whose running hash over its symbols is h. */
static inline uint64_t hash_gram(uint64_t h, uint32_t kind, uint32_t n)
{
	return pl_mix64(h ^ ((uint64_t)kind << 40) ^ ((uint64_t)n << 56));
}

static size_t ngrams_upto(size_t len, int order)
{
	size_t s = 0;
	for (int n = 1; n <= order && (size_t)n <= len; n++)
		s += len - (size_t)n + 1;
	return s;
}

/* BLEU's n-gram slots, see ptab_get */
struct pslot {
	uint64_t key;
	uint32_t a, b, stamp, gen;
};

struct ptab {
	struct pslot *e;
	size_t cap;
	unsigned shift;
	uint32_t gen;
};

/* Scratch space of one call. One is kept between calls (taken and given
 * back atomically, so concurrent callers each get their own), because
 * allocating and touching fresh memory for every segment cost more than
 * scoring it. */
struct work {
	struct pl_buf b1, b2, b3;
	struct u32s c1, c2, c3;
	struct u32s sym;	/* symbols (ids or code points) of every text */
	struct u32s sym2;
	size_t *off, *off2;	/* text t is sym.v[off[t] .. off[t+1]) */
	size_t noff;
	struct intern in;
	struct gtab g;
	struct ptab p;
};

static _Atomic(struct work *) spare;

static void work_free(struct work *w)
{
	pl_buf_free(&w->b1);
	pl_buf_free(&w->b2);
	pl_buf_free(&w->b3);
	free(w->c1.v);
	free(w->c2.v);
	free(w->c3.v);
	free(w->sym.v);
	free(w->sym2.v);
	free(w->off);
	free(w->off2);
	intern_free(&w->in);
	gtab_free(&w->g);
	free(w->p.e);
	free(w);
}

static struct work *work_get(size_t ntexts)
{
	struct work *w = atomic_exchange(&spare, NULL);

	if (!w)
		w = xcalloc(1, sizeof *w);
	if (w->noff < ntexts + 1) {
		free(w->off);
		free(w->off2);
		w->noff = ntexts + 1;
		w->off = pl_xmalloc(w->noff * sizeof *w->off);
		w->off2 = pl_xmalloc(w->noff * sizeof *w->off2);
	}
	w->b1.n = w->b2.n = w->b3.n = 0;
	w->c1.n = w->c2.n = w->c3.n = w->sym.n = w->sym2.n = 0;
	intern_reset(&w->in);
	return w;
}

static void work_put(struct work *w)
{
	struct work *none = NULL;
	/* a huge item's buffers are not worth keeping */
	size_t held = w->b1.cap + w->b2.cap + w->b3.cap + 4 * (w->c1.cap + w->c2.cap + w->c3.cap + w->sym.cap +
						   w->sym2.cap) +
		      w->in.cap * sizeof *w->in.e + w->in.keys.cap + w->g.cap * sizeof *w->g.slot +
		      w->g.ecap * sizeof *w->g.e + w->p.cap * sizeof *w->p.e;
	if (held > ((size_t)16 << 20) || !atomic_compare_exchange_strong(&spare, &none, w))
		work_free(w);
}

/* s as valid UTF-8: itself, or a repaired copy in b. */
static const char *valid_utf8(const char *s, size_t *n, struct pl_buf *b)
{
	if (pl_utf8_valid_prefix(s, *n) == *n)
		return s;
	b->n = 0;
	pl_buf_reserve(b, 3 * *n + 1);
	*n = pl_utf8_repair(s, *n, b->p);
	b->n = *n;
	return b->p;
}

/* ------------------------------------------------------------------------
 * BLEU: sacreBLEU's BLEU with the 13a tokenizer.
 * ------------------------------------------------------------------------ */

#define BLEU_MAXORDER 8

enum smooth { SMOOTH_NONE, SMOOTH_FLOOR, SMOOTH_ADDK, SMOOTH_EXP };

struct bleu_cfg {
	int order;		/* max n-gram order (4) */
	int tok13a;		/* 1: 13a; 0: sacreBLEU's "none" (split only) */
	int lowercase;
};

/* The first occurrence of from (which starts with '&' or '<' or '-', rare
 * in text) in s[0..n), or NULL; memchr finds candidates faster than glibc's
 * general memmem on short needles. */
static const char *find(const char *s, size_t n, const char *from, size_t fl)
{
	const char *end = s + n, *q = s;
	while ((size_t)(end - q) >= fl && (q = memchr(q, from[0], (size_t)(end - q) - fl + 1))) {
		if (!memcmp(q + 1, from + 1, fl - 1))
			return q;
		q++;
	}
	return NULL;
}

/* Python's str.replace(from, to) on b, through scratch t; b is swapped. */
static void replace_all(struct pl_buf *b, struct pl_buf *t, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);
	const char *p = b->p, *end = b->p + b->n, *q;

	if (!b->n || !find(b->p, b->n, from, fl))
		return;
	t->n = 0;
	while ((q = find(p, (size_t)(end - p), from, fl))) {
		pl_buf_add(t, p, (size_t)(q - p));
		pl_buf_add(t, to, tl);
		p = q + fl;
	}
	pl_buf_add(t, p, (size_t)(end - p));
	struct pl_buf x = *b;
	*b = *t;
	*t = x;
}

/* The class [\{-\~\[-\` -\&\(-\+\:-\@\/] of 13a's first rule, as bit sets
 * over 0x00-0x3F and 0x40-0x7F. */
#define P13A_LO 0xFC008F7F00000000ull	/* 0x20-0x26 0x28-0x2B 0x2F 0x3A-0x3F */
#define P13A_HI 0x78000001F8000001ull	/* 0x40 0x5B-0x60 0x7B-0x7E */

static inline int p13a(unsigned char c)
{
	return c < 64 ? (int)((P13A_LO >> c) & 1) : c < 128 ? (int)((P13A_HI >> (c - 64)) & 1) : 0;
}

static inline int digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static inline size_t next_dotcomma(const unsigned char *s, size_t i, size_t n)
{
	while (i < n && s[i] != '.' && s[i] != ',')
		i++;
	return i;
}

static inline size_t next_dash(const unsigned char *s, size_t i, size_t n)
{
	const unsigned char *q = i < n ? memchr(s + i, '-', n - i) : NULL;
	return q ? (size_t)(q - s) : n;
}

static inline unsigned char *put(unsigned char *o, const unsigned char *s, size_t n)
{
	memcpy(o, s, n);
	return o + n;
}

/* 13a's regular expressions, each one re.sub (leftmost, non-overlapping
 * matches) in Python's order, on the bytes of b (swapped with scratch t):
 *   ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 '
 *   ([^0-9])([\.,]) -> '\1 \2 '
 *   ([\.,])([^0-9]) -> ' \1 \2'
 *   ([0-9])(-) -> '\1 \2 '
 * on UTF-8 bytes rather than code points: every pattern is ASCII, a
 * multi-byte character never matches [.,-0-9] in any of its bytes, and
 * [^0-9] matches its last byte exactly when it would match the character,
 * so the result is the same. */
static void rules_13a(struct pl_buf *b, struct pl_buf *t)
{
	const unsigned char *p = (const unsigned char *)b->p;
	size_t m = b->n, i, q, cur;
	unsigned char *o;
	struct pl_buf x;

	t->n = 0;
	pl_buf_reserve(t, 3 * m);
	o = (unsigned char *)t->p;
	for (i = 0; i < m; i++) {
		if (p13a(p[i])) {
			*o++ = ' ';
			*o++ = p[i];
			*o++ = ' ';
		} else {
			*o++ = p[i];
		}
	}
	t->n = (size_t)((char *)o - t->p);
	x = *b, *b = *t, *t = x;

	/* a match ends at each . or , */
	p = (const unsigned char *)b->p, m = b->n, cur = 0;
	t->n = 0;
	pl_buf_reserve(t, 2 * m);
	o = (unsigned char *)t->p;
	while ((q = next_dotcomma(p, cur + 1, m)) < m) {
		o = put(o, p + cur, q - cur);
		if (digit(p[q - 1])) {
			cur = q;	/* no match here, but the . may start one */
			continue;
		}
		*o++ = ' ';
		*o++ = p[q];
		*o++ = ' ';
		cur = q + 1;
	}
	o = put(o, p + cur, m - cur);
	t->n = (size_t)((char *)o - t->p);
	x = *b, *b = *t, *t = x;

	/* a match starts at each . or , */
	p = (const unsigned char *)b->p, m = b->n, cur = 0;
	t->n = 0;
	pl_buf_reserve(t, 2 * m);
	o = (unsigned char *)t->p;
	while ((q = next_dotcomma(p, cur, m)) + 1 < m) {
		if (digit(p[q + 1])) {
			o = put(o, p + cur, q + 1 - cur);
			cur = q + 1;
			continue;
		}
		o = put(o, p + cur, q - cur);
		*o++ = ' ';
		*o++ = p[q];
		*o++ = ' ';
		*o++ = p[q + 1];
		cur = q + 2;
	}
	o = put(o, p + cur, m - cur);
	t->n = (size_t)((char *)o - t->p);
	x = *b, *b = *t, *t = x;

	/* a match ends at each - */
	p = (const unsigned char *)b->p, m = b->n, cur = 0;
	t->n = 0;
	pl_buf_reserve(t, 2 * m);
	o = (unsigned char *)t->p;
	while ((q = next_dash(p, cur + 1, m)) < m) {
		o = put(o, p + cur, q - cur);
		if (digit(p[q - 1])) {
			*o++ = ' ';
			*o++ = '-';
			*o++ = ' ';
		} else {
			*o++ = '-';
		}
		cur = q + 1;
	}
	o = put(o, p + cur, m - cur);
	t->n = (size_t)((char *)o - t->p);
	x = *b, *b = *t, *t = x;
}

/* What each byte is to bleu_tokens: 0 nothing special, 1 a byte 13a's
 * rules act on (the class of the first rule but the space, and . , -),
 * 2 ASCII white space, 3 the lead byte of a possible non-ASCII white space
 * (U+0085 U+00A0 U+1680 U+2000-U+200A U+2028 U+2029 U+202F U+205F U+3000). */
static const unsigned char tok_class[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2,
	2, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1,
	1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1,
	1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Bit 7 set in each byte of x that is not an ASCII letter. A byte b is a
 * letter when b | 0x20 is in 0x61..0x7A; each test subtracts from a byte
 * with bit 7 set, so no borrow crosses into the next byte. */
static inline uint64_t nonletters(uint64_t x)
{
	const uint64_t hi = 0x8080808080808080ull;
	x |= 0x2020202020202020ull;
	uint64_t ge_a = (x | hi) - 0x6161616161616161ull;	/* bit 7: >= 'a' */
	uint64_t gt_z = (x | hi) - 0x7B7B7B7B7B7B7B7Bull;	/* bit 7: > 'z' */
	return (x | ~ge_a | gt_z) & hi;
}

/* Append to w->sym the ids of the tokens of s: sacreBLEU's BLEU
 * preprocessing (lower case if asked, rstrip) and tokenizer (13a, or with
 * tok13a 0 its "none", a split on white space).
 *
 * tokenizer_13a.py replaces <skipped>, "-\n", "\n" and four entities in
 * the line, then tokenizer_re.py applies its rules to " line " and splits
 * on white space. None of the rules matches two white space characters,
 * and each white space character takes part in at most one match of each
 * rule, so the rules act on every white space delimited word alone, as if
 * it stood between two spaces: a word without a byte they act on is a
 * token as it is, and only the others go through rules_13a. The result is
 * identical (checked against sacreBLEU on adversarial text), and most of
 * the line is never copied. */
static void bleu_tokens(struct work *w, const struct bleu_cfg *c, const char *s, size_t n)
{
	struct pl_buf *line = &w->b3;	/* rules_13a works in b1 and b2 */
	const unsigned char *p;
	size_t i;

	s = valid_utf8(s, &n, line);
	if (c->lowercase) {
		w->c1.n = w->c2.n = 0;
		decode(s, n, &w->c1);
		py_lower(w->c1.v, w->c1.n, &w->c2);
		line->n = 0;
		encode(w->c2.v, w->c2.n, line);
		s = line->p;
		n = line->n;
	}
	/* rstrip() */
	p = (const unsigned char *)s;
	while (n) {
		size_t last = n - 1;
		while (last > 0 && (p[last] & 0xC0) == 0x80)
			last--;
		if (ws_len(p + last, n - last) != n - last)
			break;
		n = last;
	}
	if (c->tok13a && n && (memchr(s, '<', n) || memchr(s, '\n', n) || memchr(s, '&', n))) {
		if (s != line->p) {
			line->n = 0;
			pl_buf_add(line, s, n);
		}
		line->n = n;
		replace_all(line, &w->b2, "<skipped>", "");
		replace_all(line, &w->b2, "-\n", "");
		for (char *q = line->p; (q = memchr(q, '\n', (size_t)(line->p + line->n - q)));)
			*q++ = ' ';
		if (line->n && memchr(line->p, '&', line->n)) {
			replace_all(line, &w->b2, "&quot;", "\"");
			replace_all(line, &w->b2, "&amp;", "&");
			replace_all(line, &w->b2, "&lt;", "<");
			replace_all(line, &w->b2, "&gt;", ">");
		}
		s = line->p;
		n = line->n;
	}

	struct pl_buf *b = &w->b1, *t = &w->b2;
	p = (const unsigned char *)s;
	for (i = 0; i < n;) {
		size_t l = ws_len(p + i, n - i);
		if (l) {
			i += l;
			continue;
		}
		size_t start = i, act = 0, first = 0, last = 0;
		int numeric = 1;	/* every such byte a . or , between digits */
		while (i + 8 <= n) {	/* runs of letters, eight bytes at a time */
			uint64_t x;
			memcpy(&x, p + i, 8);
			x = nonletters(x);
			if (x) {
				i += (size_t)__builtin_ctzll(x) / 8;
				break;
			}
			i += 8;
		}
		while (i < n) {
			unsigned k = tok_class[p[i]];
			if (k == 2 || (k == 3 && ws_len_mb(p + i, n - i)))
				break;
			if (k == 1) {
				if (!act++)
					first = i;
				last = i;
				numeric &= (p[i] == '.' || p[i] == ',') && i > start && digit(p[i - 1]) &&
					   i + 1 < n && digit(p[i + 1]);
			}
			i++;
		}
		size_t len = i - start;
		/* Words the rules leave whole: those without such bytes, those
		 * of one character (' c ' for c of the first rule's class, and
		 * ' . ', ' , ', ' - ' alike end as the single token), and
		 * numbers like 3.14 and 1,000 (the second and third rules need
		 * a non-digit beside the . or ,). */
		if (!act || !c->tok13a || len == 1 || numeric) {
			u32_push(&w->sym, intern_id(&w->in, p + start, len));
			continue;
		}
		/* One such byte, at the end of the word: the rules split it off
		 * (the first as class, the third as . or , before a space, the
		 * second and third cannot match inside the word), but for a -,
		 * which the fourth splits off only after a digit. */
		if (act == 1 && last == i - 1 && (p[last] != '-' || digit(p[last - 1]))) {
			u32_push(&w->sym, intern_id(&w->in, p + start, len - 1));
			u32_push(&w->sym, intern_id(&w->in, p + last, 1));
			continue;
		}
		/* One at the start: split off by the first rule, or as . or ,
		 * after a space by the second; a - stays (no digit before it). */
		if (act == 1 && first == start) {
			if (p[start] == '-') {
				u32_push(&w->sym, intern_id(&w->in, p + start, len));
			} else {
				u32_push(&w->sym, intern_id(&w->in, p + start, 1));
				u32_push(&w->sym, intern_id(&w->in, p + start + 1, len - 1));
			}
			continue;
		}
		b->n = 0;
		pl_buf_reserve(b, len + 2);
		b->p[0] = ' ';
		memcpy(b->p + 1, p + start, len);
		b->p[len + 1] = ' ';
		b->n = len + 2;
		rules_13a(b, t);
		for (size_t k = 0; k < b->n;) {
			if (b->p[k] == ' ') {
				k++;
				continue;
			}
			size_t a = k;
			while (k < b->n && b->p[k] != ' ')
				k++;
			u32_push(&w->sym, intern_id(&w->in, b->p + a, k - a));
		}
	}
}

/* BLEU's n-gram counts when every n-gram fits one 64-bit key exactly: up
 * to four ids of 16 bits (plus one, so that the key also tells the order).
 * The slots live in the table itself and are told apart from earlier
 * segments' by a generation number, so nothing is cleared between
 * segments: this is the hot path of corpus BLEU. */
static void ptab_init(struct ptab *t, size_t max)
{
	size_t cap = 16;
	unsigned bits = 4;
	while (cap < 2 * max)
		cap *= 2, bits++;
	if (cap > t->cap) {
		free(t->e);
		t->e = xcalloc(cap, sizeof *t->e);
		t->cap = cap;
		t->gen = 0;
	}
	if (++t->gen == 0) {
		memset(t->e, 0, t->cap * sizeof *t->e);
		t->gen = 1;
	}
	t->shift = 64 - bits;
}

static inline struct pslot *ptab_get(struct ptab *t, uint64_t key)
{
	size_t mask = ((size_t)1 << (64 - t->shift)) - 1;
	size_t j = (size_t)((key * 0x9e3779b97f4a7c15ull) >> t->shift);
	for (;;) {
		struct pslot *e = &t->e[j];
		if (e->gen != t->gen) {
			e->gen = t->gen;
			e->key = key;
			e->a = e->b = e->stamp = 0;
			return e;
		}
		if (e->key == key)
			return e;
		j = (j + 1) & mask;
	}
}

/* Counting, the same on either table: for the references b is the count
 * in the current one and a the most in any; for the hypothesis (stamp
 * UINT32_MAX) b is its count, a match while it stays within a. */
#define BLEU_COUNT(g, r, hyp, correct)                                  \
	do {                                                            \
		if ((g)->stamp != (r)) {                                \
			(g)->stamp = (r);                               \
			(g)->b = 0;                                     \
		}                                                       \
		if (hyp) {                                              \
			if (++(g)->b <= (g)->a)                         \
				(correct)++;                            \
		} else if (++(g)->b > (g)->a) {                         \
			(g)->a = (g)->b;                                \
		}                                                       \
	} while (0)

/* Every n-gram of ids[0..len) of orders FROM..order: h accumulated by STEP
 * over its ids, then GET finds its counter g and COUNT counts it. */
#define BLEU_LOOP(FROM, GET, COUNT, STEP)                                        \
	for (size_t i = 0; i < len; i++) {                                       \
		uint64_t h = 0;                                                  \
		for (int n = 1; n <= order && i + (size_t)n <= len; n++) {       \
			uint32_t id = ids[i + (size_t)n - 1];                    \
			STEP;                                                    \
			if (n < (FROM))                                          \
				continue;                                        \
			GET;                                                     \
			COUNT;                                                   \
		}                                                                \
	}

/* Statistics [hyp_len, ref_len, correct[order], total[order]]. */
static void bleu_stats(const struct bleu_cfg *c, const char *hyp, const char *const *refs,
		       size_t nrefs, double *st)
{
	size_t nt = nrefs + 1, occ = 0, correct[BLEU_MAXORDER] = { 0 };
	int order = c->order;
	struct work *w = work_get(nt);
	w->off[0] = 0;
	for (size_t t = 0; t < nt; t++) {
		const char *s = t == 0 ? hyp : refs[t - 1];
		bleu_tokens(w, c, s ? s : "", s ? strlen(s) : 0);
		w->off[t + 1] = w->sym.n;
		occ += ngrams_upto(w->off[t + 1] - w->off[t], order);
	}
	int packed = order <= 4 && w->in.n < 0xFFFF;
	if (packed) {
		/* unigrams by id: three counters per id, then the table for
		 * longer n-grams */
		w->c1.n = 0;
		u32_reserve(&w->c1, 3 * w->in.n);
		memset(w->c1.v, 0, 3 * w->in.n * sizeof *w->c1.v);
		occ -= w->sym.n;
		ptab_init(&w->p, occ);
	} else {
		gtab_init(&w->g, occ);
	}

	size_t hyp_len = w->off[1], ref_len = 0, best = SIZE_MAX;
	for (size_t r = 1; r < nt; r++) {
		size_t len = w->off[r + 1] - w->off[r];
		size_t diff = len > hyp_len ? len - hyp_len : hyp_len - len;
		if (diff < best || (diff == best && len < ref_len)) {
			best = diff;
			ref_len = len;
		}
	}
	/* the references (stamps 1..nrefs), then the hypothesis */
	for (size_t k = 1; k <= nt; k++) {
		size_t t = k % nt;
		const uint32_t *ids = w->sym.v + w->off[t];
		size_t len = w->off[t + 1] - w->off[t];
		if (packed) {
			uint32_t stamp = t ? (uint32_t)t : UINT32_MAX, *u = w->c1.v;
			for (size_t i = 0; i < len; i++) {	/* u[3id..]: a, b, stamp */
				uint32_t *g = u + 3 * (size_t)ids[i];
				if (g[2] != stamp) {
					g[2] = stamp;
					g[1] = 0;
				}
				if (!t) {
					if (++g[1] <= g[0])
						correct[0]++;
				} else if (++g[1] > g[0]) {
					g[0] = g[1];
				}
			}
		}
		if (packed && nt == 2) {	/* one reference: no stamps needed */
			BLEU_LOOP(2, struct pslot *g = ptab_get(&w->p, h),
				  if (t) g->a++; else if (++g->b <= g->a) correct[n - 1]++,
				  h |= (uint64_t)(id + 1) << (16 * (n - 1)));
		} else if (packed && t) {
			BLEU_LOOP(2, struct pslot *g = ptab_get(&w->p, h),
				  BLEU_COUNT(g, (uint32_t)t, 0, correct[n - 1]),
				  h |= (uint64_t)(id + 1) << (16 * (n - 1)));
		} else if (packed) {
			BLEU_LOOP(2, struct pslot *g = ptab_get(&w->p, h),
				  BLEU_COUNT(g, UINT32_MAX, 1, correct[n - 1]),
				  h |= (uint64_t)(id + 1) << (16 * (n - 1)));
		} else {
			BLEU_LOOP(1, struct gram *g = gtab_get(&w->g, (uint32_t)n, ids + i, (uint32_t)n,
							    hash_gram(h, (uint32_t)n, (uint32_t)n)),
				  BLEU_COUNT(g, t ? (uint32_t)t : UINT32_MAX, !t, correct[n - 1]),
				  h = hash_step(h, id));
		}
	}
	st[0] = (double)hyp_len;
	st[1] = (double)ref_len;
	for (int n = 1; n <= order; n++) {
		st[1 + n] = (double)correct[n - 1];
		st[1 + order + n] = hyp_len >= (size_t)n ? (double)(hyp_len - (size_t)n + 1) : 0;
	}
	work_put(w);
}

/* sacreBLEU's my_log: log with log(0) floored. */
static double my_log(double x)
{
	return x == 0.0 ? -9999999999.0 : log(x);
}

/* BLEU.compute_bleu from summed statistics, operation for operation. */
static double bleu_score(const double *st, int order, enum smooth sm, double sv, int effective)
{
	double sys_len = st[0], ref_len = st[1], correct[BLEU_MAXORDER], total[BLEU_MAXORDER];
	double prec[BLEU_MAXORDER] = { 0 }, bp = 1.0, smooth_mteval = 1.0, sum = 0.0;
	int any = 0, eff = order;

	for (int n = 0; n < order; n++) {
		correct[n] = st[2 + n];
		total[n] = st[2 + order + n];
		any |= correct[n] != 0;
	}
	if (sys_len < ref_len)
		bp = sys_len > 0 ? exp(1 - ref_len / sys_len) : 0.0;
	if (!any)
		return 0.0;
	for (int n = 1; n <= order; n++) {
		if (sm == SMOOTH_ADDK && n > 1) {
			correct[n - 1] += sv;
			total[n - 1] += sv;
		}
		if (total[n - 1] == 0)
			break;
		if (effective)
			eff = n;
		if (correct[n - 1] == 0) {
			if (sm == SMOOTH_EXP) {
				smooth_mteval *= 2;
				prec[n - 1] = 100. / (smooth_mteval * total[n - 1]);
			} else if (sm == SMOOTH_FLOOR) {
				prec[n - 1] = 100. * sv / total[n - 1];
			}
		} else {
			prec[n - 1] = 100. * correct[n - 1] / total[n - 1];
		}
	}
	for (int n = 0; n < eff; n++)
		sum += my_log(prec[n]);
	return bp * exp(sum / eff);
}

/* ------------------------------------------------------------------------
 * chrF and chrF++: sacreBLEU's CHRF.
 * ------------------------------------------------------------------------ */

#define CHRF_MAXORDER 16

struct chrf_cfg {
	int char_order, word_order;
	double beta;
	int whitespace;		/* keep white space in character n-grams */
	int eps;		/* chrF++.py's epsilon smoothing instead of the default */
	int lowercase;
};

/* string.punctuation, which CHRF._remove_punctuation splits off words */
static int py_punct(uint32_t c)
{
	return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
	       (c >= 0x7B && c <= 0x7E);
}

/* CHRF._compute_f_score, operation for operation. */
static double chrf_fscore(const double *st, int order, double beta, int eps_smoothing)
{
	const double eps = 1e-16, factor = beta * beta;
	double score = 0.0, avg_prec = 0.0, avg_rec = 0.0;
	int effective = 0;

	for (int i = 0; i < order; i++) {
		double n_hyp = st[3 * i], n_ref = st[3 * i + 1], n_match = st[3 * i + 2];
		double prec = n_hyp > 0 ? n_match / n_hyp : eps;
		double rec = n_ref > 0 ? n_match / n_ref : eps;
		double denom = factor * prec + rec;
		score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
		if (n_hyp > 0 && n_ref > 0) {
			avg_prec += prec;
			avg_rec += rec;
			effective++;
		}
	}
	if (eps_smoothing)
		return 100 * score / order;
	if (effective == 0) {
		avg_prec = avg_rec = 0.0;
	} else {
		avg_prec /= effective;
		avg_rec /= effective;
	}
	if (avg_prec + avg_rec != 0) {
		score = (1 + factor) * avg_prec * avg_rec;
		score /= factor * avg_prec + avg_rec;
		return 100 * score;
	}
	return 0.0;
}

/* Characters (w->sym) and words (w->sym2, as ids) of one text. */
static void chrf_text(struct work *w, const struct chrf_cfg *c, const char *s, size_t n)
{
	struct u32s *cp = &w->c2;

	w->c1.n = w->c2.n = 0;
	s = valid_utf8(s, &n, &w->b1);
	decode(s, n, c->lowercase ? &w->c1 : cp);
	if (c->lowercase)
		py_lower(w->c1.v, w->c1.n, cp);

	u32_reserve(&w->sym, cp->n);
	for (size_t i = 0; i < cp->n; i++)
		if (c->whitespace || !py_space(cp->v[i]))
			w->sym.v[w->sym.n++] = cp->v[i];
	if (!c->word_order)
		return;
	/* words: str.split(), then one punctuation character split off the
	 * end, or else off the start, of every word longer than one */
	for (size_t i = 0; i < cp->n;) {
		if (py_space(cp->v[i])) {
			i++;
			continue;
		}
		size_t a = i;
		while (i < cp->n && !py_space(cp->v[i]))
			i++;
		const uint32_t *wd = cp->v + a;
		size_t len = i - a;
		if (len > 1 && py_punct(wd[len - 1])) {
			u32_push(&w->sym2, intern_id(&w->in, wd, 4 * (len - 1)));
			u32_push(&w->sym2, intern_id(&w->in, wd + len - 1, 4));
		} else if (len > 1 && py_punct(wd[0])) {
			u32_push(&w->sym2, intern_id(&w->in, wd, 4));
			u32_push(&w->sym2, intern_id(&w->in, wd + 1, 4 * (len - 1)));
		} else {
			u32_push(&w->sym2, intern_id(&w->in, wd, 4 * len));
		}
	}
}

/* For each order (characters 1..char_order, then words 1..word_order):
 * [hypothesis n-grams, reference n-grams, matches] against the reference
 * with the best f-score. */
static void chrf_stats(const struct chrf_cfg *c, const char *hyp, const char *const *refs,
		       size_t nrefs, double *st)
{
	size_t nt = nrefs + 1, occ = 0;
	int order = c->char_order + c->word_order;
	double cur[3 * CHRF_MAXORDER], best_f = -1.0;
	struct work *w = work_get(nt);
	w->off[0] = w->off2[0] = 0;
	for (size_t t = 0; t < nt; t++) {
		const char *s = t == 0 ? hyp : refs[t - 1];
		chrf_text(w, c, s ? s : "", s ? strlen(s) : 0);
		w->off[t + 1] = w->sym.n;
		w->off2[t + 1] = w->sym2.n;
		occ += ngrams_upto(w->off[t + 1] - w->off[t], c->char_order);
		occ += ngrams_upto(w->off2[t + 1] - w->off2[t], c->word_order);
	}
	gtab_init(&w->g, occ);
	memset(st, 0, 3 * (size_t)order * sizeof *st);

	/* a: the hypothesis's count; b: the current reference's */
	double hyp_total[CHRF_MAXORDER] = { 0 };
	for (size_t t = 0; t < nt; t++) {
		double ref_total[CHRF_MAXORDER] = { 0 }, match[CHRF_MAXORDER] = { 0 };
		for (int kind = 0; kind < order; kind++) {
			int word = kind >= c->char_order;
			int n = word ? kind - c->char_order + 1 : kind + 1;
			const uint32_t *v = word ? w->sym2.v + w->off2[t] : w->sym.v + w->off[t];
			size_t len = word ? w->off2[t + 1] - w->off2[t] : w->off[t + 1] - w->off[t];
			for (size_t i = 0; i + (size_t)n <= len; i++) {
				uint64_t h = 0;
				for (int k = 0; k < n; k++)
					h = hash_step(h, v[i + (size_t)k]);
				struct gram *g = gtab_get(&w->g, (uint32_t)kind, v + i, (uint32_t)n,
							  hash_gram(h, (uint32_t)kind, (uint32_t)n));
				if (t == 0) {
					g->a++;
					hyp_total[kind]++;
					continue;
				}
				if (g->stamp != t) {
					g->stamp = (uint32_t)t;
					g->b = 0;
				}
				ref_total[kind]++;
				if (++g->b <= g->a)
					match[kind]++;
			}
		}
		if (t == 0)
			continue;
		for (int k = 0; k < order; k++) {
			/* sacreBLEU counts no hypothesis n-grams of an order the
			 * reference has none of */
			cur[3 * k] = ref_total[k] > 0 ? hyp_total[k] : 0;
			cur[3 * k + 1] = ref_total[k];
			cur[3 * k + 2] = match[k];
		}
		double f = chrf_fscore(cur, order, c->beta, c->eps);
		if (f > best_f) {
			best_f = f;
			memcpy(st, cur, 3 * (size_t)order * sizeof *st);
		}
	}
	work_put(w);
}

/* ------------------------------------------------------------------------
 * ROUGE: Google's rouge-score, its default tokenizer and NLTK's Porter
 * stemmer.
 * ------------------------------------------------------------------------ */

/* NLTK's PorterStemmer in its default NLTK_EXTENSIONS mode, which departs
 * from Porter's 1980 paper: irregular forms, "ies"/"ied" on four-letter
 * words, y->i only after a consonant that is not the whole stem, the
 * two-letter *o, bli->ble, fulli and logi. Written here because no Debian
 * C library implements this variant (libstemmer's "porter" is the original
 * algorithm and stems differently). w is ASCII lower case with room for one
 * more byte; returns the new length. */
static int pcons(const char *w, size_t i)
{
	switch (w[i]) {
	case 'a': case 'e': case 'i': case 'o': case 'u':
		return 0;
	case 'y':
		break;
	default:
		return 1;
	}
	/* y is a consonant at the start or after a vowel; in a run of y the
	 * answer alternates from the first */
	size_t j = i;
	while (j > 0 && w[j - 1] == 'y')
		j--;
	int first = j == 0 || !pcons(w, j - 1);
	return (i - j) % 2 ? !first : first;
}

/* The consonant flags of w[0..n) in one pass, for the measure (the number
 * of vowel-consonant transitions) and for "contains a vowel". */
static int pmeasure(const char *w, size_t n)
{
	int m = 0, prev = -1;
	for (size_t i = 0; i < n; i++) {
		int c = w[i] == 'y' ? i == 0 || !prev : pcons(w, i);
		if (prev == 0 && c == 1)
			m++;
		prev = c;
	}
	return m;
}

static int pvowel_in(const char *w, size_t n)
{
	int prev = -1;
	for (size_t i = 0; i < n; i++) {
		int c = w[i] == 'y' ? i == 0 || !prev : pcons(w, i);
		if (!c)
			return 1;
		prev = c;
	}
	return 0;
}

static int pends(const char *w, size_t n, const char *suf)
{
	size_t l = strlen(suf);
	return n >= l && !memcmp(w + n - l, suf, l);
}

static int pcvc(const char *w, size_t n)
{
	if (n >= 3 && pcons(w, n - 3) && !pcons(w, n - 2) && pcons(w, n - 1))
		return w[n - 1] != 'w' && w[n - 1] != 'x' && w[n - 1] != 'y';
	return n == 2 && !pcons(w, 0) && pcons(w, 1);
}

enum pcond { P_NONE, P_M0, P_M1, P_ION, P_LOGI };

struct prule {
	const char *suf, *rep;
	enum pcond cond;
};

/* The first rule whose suffix ends the word decides: applied if its
 * condition holds on the stem, and no later rule is tried either way. */
static size_t prules(char *w, size_t n, const struct prule *r, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		if (!pends(w, n, r[i].suf))
			continue;
		size_t s = n - strlen(r[i].suf);
		int ok;
		switch (r[i].cond) {
		case P_M0: ok = pmeasure(w, s) > 0; break;
		case P_M1: ok = pmeasure(w, s) > 1; break;
		case P_ION: ok = pmeasure(w, s) > 1 && s > 0 && (w[s - 1] == 's' || w[s - 1] == 't'); break;
		case P_LOGI: ok = pmeasure(w, n - 3) > 0; break;
		default: ok = 1;
		}
		if (!ok)
			return n;
		size_t l = strlen(r[i].rep);
		memcpy(w + s, r[i].rep, l);
		return s + l;
	}
	return n;
}

static size_t pstep2(char *w, size_t n)
{
	static const struct prule r[] = {
		{ "ational", "ate", P_M0 }, { "tional", "tion", P_M0 }, { "enci", "ence", P_M0 },
		{ "anci", "ance", P_M0 }, { "izer", "ize", P_M0 }, { "bli", "ble", P_M0 },
		{ "alli", "al", P_M0 }, { "entli", "ent", P_M0 }, { "eli", "e", P_M0 },
		{ "ousli", "ous", P_M0 }, { "ization", "ize", P_M0 }, { "ation", "ate", P_M0 },
		{ "ator", "ate", P_M0 }, { "alism", "al", P_M0 }, { "iveness", "ive", P_M0 },
		{ "fulness", "ful", P_M0 }, { "ousness", "ous", P_M0 }, { "aliti", "al", P_M0 },
		{ "iviti", "ive", P_M0 }, { "biliti", "ble", P_M0 }, { "fulli", "ful", P_M0 },
		{ "logi", "log", P_LOGI },
	};
	if (pends(w, n, "alli") && pmeasure(w, n - 4) > 0)
		return pstep2(w, n - 2);	/* alli -> al, then step 2 again */
	return prules(w, n, r, sizeof r / sizeof *r);
}

static size_t porter_stem(char *w, size_t n)
{
	static const char *const irregular[][2] = {
		{ "skies", "sky" }, { "sky", "sky" }, { "dying", "die" }, { "lying", "lie" },
		{ "tying", "tie" }, { "news", "news" }, { "innings", "inning" }, { "inning", "inning" },
		{ "outings", "outing" }, { "outing", "outing" }, { "cannings", "canning" },
		{ "canning", "canning" }, { "howe", "howe" }, { "proceed", "proceed" },
		{ "exceed", "exceed" }, { "succeed", "succeed" },
	};
	static const struct prule s1a[] = {
		{ "sses", "ss", P_NONE }, { "ies", "i", P_NONE }, { "ss", "ss", P_NONE }, { "s", "", P_NONE },
	};
	static const struct prule s3[] = {
		{ "icate", "ic", P_M0 }, { "ative", "", P_M0 }, { "alize", "al", P_M0 },
		{ "iciti", "ic", P_M0 }, { "ical", "ic", P_M0 }, { "ful", "", P_M0 }, { "ness", "", P_M0 },
	};
	static const struct prule s4[] = {
		{ "al", "", P_M1 }, { "ance", "", P_M1 }, { "ence", "", P_M1 }, { "er", "", P_M1 },
		{ "ic", "", P_M1 }, { "able", "", P_M1 }, { "ible", "", P_M1 }, { "ant", "", P_M1 },
		{ "ement", "", P_M1 }, { "ment", "", P_M1 }, { "ent", "", P_M1 }, { "ion", "", P_ION },
		{ "ou", "", P_M1 }, { "ism", "", P_M1 }, { "ate", "", P_M1 }, { "iti", "", P_M1 },
		{ "ous", "", P_M1 }, { "ive", "", P_M1 }, { "ize", "", P_M1 },
	};

	for (size_t i = 0; i < sizeof irregular / sizeof *irregular; i++) {
		if (strlen(irregular[i][0]) == n && !memcmp(w, irregular[i][0], n)) {
			n = strlen(irregular[i][1]);
			memcpy(w, irregular[i][1], n);
			return n;
		}
	}
	if (n <= 2)
		return n;

	/* step 1a */
	if (n == 4 && pends(w, n, "ies"))
		n = 3;	/* ies -> ie */
	else
		n = prules(w, n, s1a, sizeof s1a / sizeof *s1a);

	/* step 1b */
	if (pends(w, n, "ied")) {
		n = n == 4 ? n - 1 : n - 2;	/* ied -> ie in four letters, else -> i */
	} else if (pends(w, n, "eed")) {
		if (pmeasure(w, n - 3) > 0)
			n -= 1;
	} else {
		size_t s = 0;
		if (pends(w, n, "ed") && pvowel_in(w, n - 2))
			s = n - 2;
		else if (pends(w, n, "ing") && pvowel_in(w, n - 3))
			s = n - 3;
		if (s) {
			n = s;
			if (pends(w, n, "at") || pends(w, n, "bl") || pends(w, n, "iz")) {
				w[n++] = 'e';
			} else if (n >= 2 && w[n - 1] == w[n - 2] && pcons(w, n - 1)) {
				if (w[n - 1] != 'l' && w[n - 1] != 's' && w[n - 1] != 'z')
					n--;
			} else if (pmeasure(w, n) == 1 && pcvc(w, n)) {
				w[n++] = 'e';
			}
		}
	}

	/* step 1c */
	if (pends(w, n, "y") && n - 1 > 1 && pcons(w, n - 2))
		w[n - 1] = 'i';

	n = pstep2(w, n);
	n = prules(w, n, s3, sizeof s3 / sizeof *s3);
	n = prules(w, n, s4, sizeof s4 / sizeof *s4);

	/* step 5a */
	if (pends(w, n, "e")) {
		int m = pmeasure(w, n - 1);
		if (m > 1 || (m == 1 && !pcvc(w, n - 1)))
			n--;
	}
	/* step 5b */
	if (pends(w, n, "ll") && pmeasure(w, n - 1) > 1)
		n--;
	return n;
}

/* rouge-score's tokenize(): lower case, runs of [a-z0-9] (everything else
 * separates), stemmed when longer than three characters; ids to w->sym. */
static void rouge_tokens(struct work *w, const char *s, size_t n, int stem)
{
	w->c1.n = w->c2.n = 0;
	s = valid_utf8(s, &n, &w->b1);
	decode(s, n, &w->c1);
	py_lower(w->c1.v, w->c1.n, &w->c2);
	const uint32_t *v = w->c2.v;
	size_t len = w->c2.n;
	for (size_t i = 0; i < len;) {
		uint32_t ch = v[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) {
			i++;
			continue;
		}
		size_t a = i;
		while (i < len && ((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9')))
			i++;
		w->b2.n = 0;
		pl_buf_reserve(&w->b2, i - a + 2);
		for (size_t k = a; k < i; k++)
			w->b2.p[k - a] = (char)v[k];
		size_t tl = i - a;
		if (stem && tl > 3)
			tl = porter_stem(w->b2.p, tl);
		if (tl)
			u32_push(&w->sym, intern_id(&w->in, w->b2.p, tl));
	}
}

static double fmeasure(double p, double r)
{
	return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}

/* LCS length of a and b with one row of the table. */
static size_t lcs_len(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, struct u32s *row)
{
	row->n = 0;
	u32_reserve(row, nb + 1);
	uint32_t *r = row->v;
	memset(r, 0, (nb + 1) * sizeof *r);
	for (size_t i = 1; i <= na; i++) {
		uint32_t diag = 0;
		for (size_t j = 1; j <= nb; j++) {
			uint32_t up = r[j];
			r[j] = a[i - 1] == b[j - 1] ? diag + 1 : (up > r[j - 1] ? up : r[j - 1]);
			diag = up;
		}
	}
	return r[nb];
}

/* rouge-score's lcs_ind: the full table, then its backtrack (diagonal on a
 * match, else left only when strictly better than up), marking the indices
 * of ref it takes in mark. */
static void lcs_mark(const uint32_t *ref, size_t nr, const uint32_t *can, size_t nc,
		     struct u32s *tab, unsigned char *mark)
{
	size_t cols = nc + 1;
	tab->n = 0;
	u32_reserve(tab, (nr + 1) * cols);
	uint32_t *t = tab->v;
	memset(t, 0, cols * sizeof *t);
	for (size_t i = 1; i <= nr; i++) {
		t[i * cols] = 0;
		for (size_t j = 1; j <= nc; j++) {
			if (ref[i - 1] == can[j - 1]) {
				t[i * cols + j] = t[(i - 1) * cols + j - 1] + 1;
			} else {
				uint32_t up = t[(i - 1) * cols + j], left = t[i * cols + j - 1];
				t[i * cols + j] = up > left ? up : left;
			}
		}
	}
	size_t i = nr, j = nc;
	while (i > 0 && j > 0) {
		if (ref[i - 1] == can[j - 1]) {
			mark[i - 1] = 1;
			i--;
			j--;
		} else if (t[i * cols + j - 1] > t[(i - 1) * cols + j]) {
			j--;
		} else {
			i--;
		}
	}
}

/* Sentences of text for ROUGE-Lsum: split at "\n", empty ones dropped, each
 * tokenized onto w->sym; sentence k is w->sym.v[bounds[k] .. bounds[k+1]).
 * Returns the number of sentences. */
static size_t rouge_sents(struct work *w, const char *s, int stem, struct u32s *bounds)
{
	size_t n = strlen(s), count = 0;
	const char *p = s, *end = s + n;

	u32_push(bounds, (uint32_t)w->sym.n);
	while (p <= end) {
		const char *q = memchr(p, '\n', (size_t)(end - p));
		if (!q)
			q = end;
		if (q > p) {
			rouge_tokens(w, p, (size_t)(q - p), stem);
			u32_push(bounds, (uint32_t)w->sym.n);
			count++;
		}
		p = q + 1;
	}
	return count;
}

static double rouge_lsum(struct work *w, const char *tgt, const char *pred, int stem)
{
	struct u32s tb = { 0 }, pb = { 0 };
	size_t nt, np, m, n;
	double f = 0.0;

	w->sym.n = 0;
	nt = rouge_sents(w, tgt, stem, &tb);
	np = rouge_sents(w, pred, stem, &pb);
	m = tb.v[nt] - tb.v[0];
	n = pb.v[np] - pb.v[0];
	if (nt && np && m && n) {
		size_t nid = w->in.n;
		uint32_t *cnt_r = xcalloc(2 * nid + 1, sizeof *cnt_r), *cnt_c = cnt_r + nid;
		for (size_t i = tb.v[0]; i < tb.v[nt]; i++)
			cnt_r[w->sym.v[i]]++;
		for (size_t i = pb.v[0]; i < pb.v[np]; i++)
			cnt_c[w->sym.v[i]]++;
		size_t hits = 0;
		for (size_t k = 0; k < nt; k++) {
			const uint32_t *r = w->sym.v + tb.v[k];
			size_t nr = tb.v[k + 1] - tb.v[k];
			unsigned char *mark = xcalloc(nr + 1, 1);
			for (size_t c = 0; c < np; c++)
				lcs_mark(r, nr, w->sym.v + pb.v[c], pb.v[c + 1] - pb.v[c], &w->c3, mark);
			for (size_t i = 0; i < nr; i++) {
				uint32_t t = r[i];
				if (mark[i] && cnt_c[t] > 0 && cnt_r[t] > 0) {
					hits++;
					cnt_c[t]--;
					cnt_r[t]--;
				}
			}
			free(mark);
		}
		free(cnt_r);
		double recall = (double)hits / (double)m, precision = (double)hits / (double)n;
		f = fmeasure(precision, recall);
	}
	free(tb.v);
	free(pb.v);
	return f;
}

/* The F-measure of one ROUGE type for pred against one target. */
static double rouge_pair(struct work *w, enum pl_tm_metric m, const char *tgt, const char *pred,
			 int stem)
{
	if (m == PL_TM_ROUGELSUM)
		return rouge_lsum(w, tgt, pred, stem);

	w->sym.n = 0;
	rouge_tokens(w, tgt, strlen(tgt), stem);
	size_t nt = w->sym.n;
	rouge_tokens(w, pred, strlen(pred), stem);
	const uint32_t *t = w->sym.v, *p = w->sym.v + nt;
	size_t np = w->sym.n - nt;

	if (m == PL_TM_ROUGEL) {
		if (!nt || !np)
			return 0.0;
		size_t l = lcs_len(t, nt, p, np, &w->c3);
		return fmeasure((double)l / (double)np, (double)l / (double)nt);
	}

	uint32_t n = m == PL_TM_ROUGE1 ? 1 : 2;
	size_t tn = nt >= n ? nt - n + 1 : 0, pn = np >= n ? np - n + 1 : 0, overlap = 0;
	gtab_init(&w->g, tn + pn);
	for (size_t i = 0; i < tn; i++) {
		uint64_t h = 0;
		for (uint32_t k = 0; k < n; k++)
			h = hash_step(h, t[i + k]);
		gtab_get(&w->g, n, t + i, n, hash_gram(h, n, n))->b++;
	}
	for (size_t i = 0; i < pn; i++) {
		uint64_t h = 0;
		for (uint32_t k = 0; k < n; k++)
			h = hash_step(h, p[i + k]);
		struct gram *g = gtab_get(&w->g, n, p + i, n, hash_gram(h, n, n));
		if (++g->a <= g->b)
			overlap++;
	}
	double prec = (double)overlap / (double)(pn > 1 ? pn : 1);
	double rec = (double)overlap / (double)(tn > 1 ? tn : 1);
	return fmeasure(prec, rec);
}

/* ------------------------------------------------------------------------
 * SQuAD v1.1: evaluate-v1.1.py's normalize_answer, exact match and F1.
 * ------------------------------------------------------------------------ */

/* normalize_answer(s).split() as ids appended to w->sym: lower case,
 * string.punctuation removed, the words a/an/the (a whole \w run) replaced
 * by a space, then split on white space. */
static void squad_tokens(struct work *w, const char *s)
{
	size_t n = strlen(s);
	struct u32s *a = &w->c1, *b = &w->c2, *c = &w->c3;

	a->n = b->n = c->n = 0;
	s = valid_utf8(s, &n, &w->b1);
	decode(s, n, a);
	py_lower(a->v, a->n, b);
	a->n = 0;
	u32_reserve(a, b->n);
	for (size_t i = 0; i < b->n; i++)
		if (!(b->v[i] < 0x80 && py_punct(b->v[i])))
			a->v[a->n++] = b->v[i];
	/* \b(a|an|the)\b -> ' ' */
	u32_reserve(c, a->n);
	for (size_t i = 0; i < a->n;) {
		if (!py_word(a->v[i])) {
			c->v[c->n++] = a->v[i++];
			continue;
		}
		size_t st = i;
		while (i < a->n && py_word(a->v[i]))
			i++;
		size_t l = i - st;
		const uint32_t *x = a->v + st;
		int article = (l == 1 && x[0] == 'a') || (l == 2 && x[0] == 'a' && x[1] == 'n') ||
			      (l == 3 && x[0] == 't' && x[1] == 'h' && x[2] == 'e');
		if (article) {
			c->v[c->n++] = ' ';
		} else {
			memcpy(c->v + c->n, x, l * sizeof *x);
			c->n += l;
		}
	}
	for (size_t i = 0; i < c->n;) {
		if (py_space(c->v[i])) {
			i++;
			continue;
		}
		size_t st = i;
		while (i < c->n && !py_space(c->v[i]))
			i++;
		u32_push(&w->sym, intern_id(&w->in, c->v + st, 4 * (i - st)));
	}
}

static double squad_item(enum pl_tm_metric m, const char *pred, const char *const *refs,
			 size_t nrefs)
{
	double best = 0.0;
	struct work *w = work_get(nrefs + 1);
	squad_tokens(w, pred ? pred : "");
	size_t np = w->sym.n;
	w->off[0] = np;
	for (size_t r = 0; r < nrefs; r++) {
		squad_tokens(w, refs[r] ? refs[r] : "");
		w->off[r + 1] = w->sym.n;
	}
	size_t nid = w->in.n;
	uint32_t *cnt = pl_xmalloc((nid + 1) * sizeof *cnt);
	for (size_t r = 0; r < nrefs; r++) {
		const uint32_t *g = w->sym.v + w->off[r], *p = w->sym.v;
		size_t ng = w->off[r + 1] - w->off[r];
		double v;
		if (m == PL_TM_EXACT_MATCH) {
			v = ng == np && (!np || !memcmp(g, p, np * sizeof *p));
		} else {
			size_t same = 0;
			memset(cnt, 0, (nid + 1) * sizeof *cnt);
			for (size_t i = 0; i < ng; i++)
				cnt[g[i]]++;
			for (size_t i = 0; i < np; i++)
				if (cnt[p[i]]) {
					cnt[p[i]]--;
					same++;
				}
			if (!same) {
				v = 0.0;
			} else {
				double precision = 1.0 * (double)same / (double)np;
				double recall = 1.0 * (double)same / (double)ng;
				v = (2 * precision * recall) / (precision + recall);
			}
		}
		if (r == 0 || v > best)
			best = v;
	}
	free(cnt);
	work_put(w);
	return best;
}

/* ------------------------------------------------------------------------
 * The interface.
 * ------------------------------------------------------------------------ */

static const char *const names[PL_TM_NMETRICS] = {
	"bleu", "chrf", "chrf++", "rouge1", "rouge2", "rougeL", "rougeLsum", "exact_match", "f1",
};

const char *pl_tm_name(enum pl_tm_metric m)
{
	return (unsigned)m < PL_TM_NMETRICS ? names[m] : NULL;
}

int pl_tm_metric_of(const char *name)
{
	for (int i = 0; i < PL_TM_NMETRICS; i++)
		if (name && !strcmp(name, names[i]))
			return i;
	return -1;
}

size_t pl_tm_nstats(enum pl_tm_metric m)
{
	switch (m) {
	case PL_TM_BLEU: return 2 + 2 * 4;
	case PL_TM_CHRF: return 3 * 6;
	case PL_TM_CHRFPP: return 3 * (6 + 2);
	default: return 1;
	}
}

static struct bleu_cfg bleu_defaults(const struct pl_tm_opts *o)
{
	struct bleu_cfg c = { 4, 1, o && o->lowercase };
	return c;
}

static struct chrf_cfg chrf_defaults(enum pl_tm_metric m, const struct pl_tm_opts *o)
{
	struct chrf_cfg c = { 6, m == PL_TM_CHRFPP ? 2 : 0, 2.0, 0, 0, o && o->lowercase };
	return c;
}

void pl_tm_item(enum pl_tm_metric m, const struct pl_tm_opts *o, const char *hyp,
		const char *const *refs, size_t nrefs, double *stats)
{
	static const char *const none[1] = { "" };
	int stem = o && o->rouge_stem;

	if (!nrefs) {
		refs = none;
		nrefs = 1;
	}
	if (!hyp)
		hyp = "";
	switch (m) {
	case PL_TM_BLEU: {
		struct bleu_cfg c = bleu_defaults(o);
		bleu_stats(&c, hyp, refs, nrefs, stats);
		return;
	}
	case PL_TM_CHRF:
	case PL_TM_CHRFPP: {
		struct chrf_cfg c = chrf_defaults(m, o);
		chrf_stats(&c, hyp, refs, nrefs, stats);
		return;
	}
	case PL_TM_ROUGE1:
	case PL_TM_ROUGE2:
	case PL_TM_ROUGEL:
	case PL_TM_ROUGELSUM: {
		double best = 0.0;
		struct work *w = work_get(1);
		/* score_multi: the target with the highest F-measure */
		for (size_t r = 0; r < nrefs; r++) {
			double f = rouge_pair(w, m, refs[r] ? refs[r] : "", hyp, stem);
			if (r == 0 || f > best)
				best = f;
		}
		work_put(w);
		stats[0] = best;
		return;
	}
	case PL_TM_EXACT_MATCH:
	case PL_TM_F1:
		stats[0] = squad_item(m, hyp, refs, nrefs);
		return;
	default:
		return;
	}
}

double pl_tm_score(enum pl_tm_metric m, const struct pl_tm_opts *o, const double *sum,
		   size_t nitems)
{
	(void)o;
	switch (m) {
	case PL_TM_BLEU:
		return bleu_score(sum, 4, SMOOTH_EXP, 0.0, nitems == 1);
	case PL_TM_CHRF:
		return chrf_fscore(sum, 6, 2.0, 0);
	case PL_TM_CHRFPP:
		return chrf_fscore(sum, 8, 2.0, 0);
	default:
		return nitems ? sum[0] / (double)nitems : 0.0;
	}
}

void pl_tm_signature(enum pl_tm_metric m, const struct pl_tm_opts *o, size_t nrefs, char *out,
		     size_t n)
{
	char refs[24];
	const char *kase = o && o->lowercase ? "lc" : "mixed";

	if (!n)
		return;
	if (nrefs)
		snprintf(refs, sizeof refs, "%zu", nrefs);
	else
		snprintf(refs, sizeof refs, "var");
	switch (m) {
	case PL_TM_BLEU:
		snprintf(out, n, "nrefs:%s|case:%s|eff:no|tok:13a|smooth:exp|version:%s", refs, kase,
			 SACREBLEU_VERSION);
		break;
	case PL_TM_CHRF:
	case PL_TM_CHRFPP:
		snprintf(out, n, "nrefs:%s|case:%s|eff:yes|nc:6|nw:%d|space:no|version:%s", refs, kase,
			 m == PL_TM_CHRFPP ? 2 : 0, SACREBLEU_VERSION);
		break;
	case PL_TM_ROUGE1:
	case PL_TM_ROUGE2:
	case PL_TM_ROUGEL:
	case PL_TM_ROUGELSUM:
		snprintf(out, n, "rouge-score|stem:%s|tok:default", o && o->rouge_stem ? "yes" : "no");
		break;
	case PL_TM_EXACT_MATCH:
	case PL_TM_F1:
		snprintf(out, n, "squad-v1.1");
		break;
	default:
		out[0] = '\0';
	}
}
