#include "split.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "utf8.h"

/* memmem for plumb's separators: memchr finds the first byte, which is far
 * faster than glibc's general memmem on needles of one or two bytes. */
static const char *find(const char *h, size_t n, const char *needle, size_t k)
{
	const char *end = h + n, *p = h;

	if (k == 1)
		return memchr(h, needle[0], n);
	while ((size_t)(end - p) >= k && (p = memchr(p, needle[0], (size_t)(end - p - (ptrdiff_t)k + 1)))) {
		if (!memcmp(p + 1, needle + 1, k - 1))
			return p;
		p++;
	}
	return NULL;
}

struct run {
	struct pl_splitter *s;
	const char *t;
	pl_split_cb cb;
	void *ctx;
};

int pl_splitter_init(struct pl_splitter *s, enum pl_split_strategy strategy, size_t size,
		     size_t overlap)
{
	memset(s, 0, sizeof *s);
	if (size == 0 || overlap >= size)
		return -1;
	s->strategy = strategy;
	s->size = size;
	s->overlap = overlap;
	return 0;
}

void pl_splitter_free(struct pl_splitter *s)
{
	free(s->win);
	free(s->code);
	memset(s, 0, sizeof *s);
}

static size_t units(const struct pl_splitter *s, const char *p, size_t n)
{
	return s->strategy == PL_SPLIT_LANGCHAIN ? pl_utf8_count_utf16(p, n) : pl_utf8_count(p, n);
}

/* White space as JavaScript's String.prototype.trim sees it (WhiteSpace and
 * LineTerminator), so that --compat langchain trims exactly as it does. */
static int js_space(uint32_t c)
{
	switch (c) {
	case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20:
	case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F:
	case 0x205F: case 0x3000: case 0xFEFF:
		return 1;
	}
	return c >= 0x2000 && c <= 0x200A;
}

static void emit(struct run *r, size_t a, size_t b, int trim)
{
	const char *t = r->t;
	uint32_t cp;

	if (trim) {
		while (a < b) {
			size_t l = pl_utf8_decode(t + a, &cp);
			if (!js_space(cp))
				break;
			a += l;
		}
		while (b > a) {
			size_t k = b - 1;
			while (k > a && ((unsigned char)t[k] & 0xC0) == 0x80)
				k--;
			pl_utf8_decode(t + k, &cp);
			if (!js_space(cp))
				break;
			b = k;
		}
		if (a == b)
			return;	/* a chunk of nothing but white space is no chunk */
	}
	struct pl_split_chunk c = { a, b };
	r->cb(r->ctx, &c);
}

/* The merge window, LangChain's mergeSplits made streaming: pieces are pushed
 * one at a time and only those that can still reach a chunk are kept, so
 * memory stays bounded by the chunk size whatever the document's length. */
static void merge_push(struct run *r, size_t a, size_t b, size_t len, size_t core)
{
	struct pl_splitter *s = r->s;

	/* core is len without trailing white space, which trimming would drop
	 * were this piece to end a chunk (LangChain counts it: core == len) */
	if (s->total + core > s->size && s->n > s->head) {
		emit(r, s->win[s->head].start, s->win[s->n - 1].end, 1);
		while (s->total > s->overlap ||
		       (s->total + core > s->size && s->total > 0)) {
			s->total -= s->win[s->head].len;
			s->head++;
		}
	}
	if (s->head > 1024 && s->head * 2 > s->n) {
		memmove(s->win, s->win + s->head, (s->n - s->head) * sizeof *s->win);
		s->n -= s->head;
		s->head = 0;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->win = pl_xrealloc(s->win, s->cap * sizeof *s->win);
	}
	s->win[s->n++] = (struct pl_span){ a, b, len };
	s->total += len;
}

static void merge_end(struct run *r)
{
	struct pl_splitter *s = r->s;

	if (s->n > s->head)
		emit(r, s->win[s->head].start, s->win[s->n - 1].end, 1);
	s->n = s->head = s->total = 0;
}

/* ---- LangChain's RecursiveCharacterTextSplitter ---------------------------
 * Separators "\n\n", "\n", " ", "" with keepSeparator: a piece begins at every
 * position where the separator occurs (JavaScript's split on a lookahead,
 * which also splits between overlapping occurrences). Pieces shorter than the
 * size are merged in runs; a longer piece is split at the next separator.
 * One divergence: JavaScript's split("") yields UTF-16 units, so LangChain
 * can cut a character outside the BMP into two unpaired surrogates; here the
 * last level's pieces are whole characters (each still 2 units long), which
 * is LangChain's algorithm with split("") by code point, and from the first
 * cut on, that stretch's chunks can differ (docs/chunk.1; t/0201 checks it). */

static const char *const lc_seps[] = { "\n\n", "\n", " ", "" };

static void lc_split(struct run *r, size_t a, size_t b, int level)
{
	struct pl_splitter *s = r->s;
	const char *t = r->t;
	int chosen = 3, next = 0;
	size_t seplen = 0;

	for (int i = level; i < 4; i++) {
		size_t l = strlen(lc_seps[i]);
		if (l == 0) {
			chosen = i;
			break;
		}
		if (find(t + a, b - a, lc_seps[i], l)) {
			chosen = i;
			next = 1;
			seplen = l;
			break;
		}
	}

	size_t cur = a;
	while (cur < b) {
		size_t end;
		if (seplen) {
			const char *q = cur + 1 < b ? find(t + cur + 1, b - cur - 1, lc_seps[chosen],
							    seplen) : NULL;
			end = q ? (size_t)(q - t) : b;
		} else {
			end = cur + pl_utf8_seqlen((unsigned char)t[cur]);
		}
		size_t len = units(s, t + cur, end - cur);
		if (len < s->size) {
			merge_push(r, cur, end, len, len);
		} else {
			merge_end(r);
			if (next)
				lc_split(r, cur, end, chosen + 1);
			else
				emit(r, cur, end, 0);	/* pushed as is, untrimmed */
		}
		cur = end;
	}
	merge_end(r);
}

/* ---- plumb's recursive splitter -------------------------------------------
 * Levels: paragraphs, lines, sentences, clauses, words, characters. A
 * separator stays at the end of the piece before it, so chunks end at a
 * paragraph or sentence boundary and begin with content. Unlike LangChain,
 * pieces from every level feed one merge window, so the remainder of a long
 * paragraph joins the next paragraph instead of becoming a tiny chunk. */

enum { LV_PARA, LV_LINE, LV_SENT, LV_CLAUSE, LV_WORD, LV_CHAR };

/* End of the first separator of the level in t[a..b), or 0 if none. */
static size_t find_sep(const char *t, size_t a, size_t b, int level)
{
	const char *p, *q;

	switch (level) {
	case LV_PARA:
		p = find(t + a, b - a, "\n\n", 2);
		return p ? (size_t)(p - t) + 2 : 0;
	case LV_LINE:
		p = memchr(t + a, '\n', b - a);
		return p ? (size_t)(p - t) + 1 : 0;
	case LV_WORD:
		p = memchr(t + a, ' ', b - a);
		return p ? (size_t)(p - t) + 1 : 0;
	case LV_SENT:
	case LV_CLAUSE:
		for (p = t + a, q = t + b; p < q; p++) {
			unsigned char c = (unsigned char)*p;
			if (level == LV_SENT && (c == '.' || c == '!' || c == '?') &&
			    p + 1 < q && (p[1] == ' ' || p[1] == '\t'))
				return (size_t)(p - t) + 2;
			if (level == LV_CLAUSE && (c == ';' || c == ',' || c == ':') &&
			    p + 1 < q && p[1] == ' ')
				return (size_t)(p - t) + 2;
			/* ideographic full stop, fullwidth ! ? ; , */
			if (c == 0xE3 && q - p >= 3 && (unsigned char)p[1] == 0x80 &&
			    (unsigned char)p[2] == (level == LV_SENT ? 0x82 : 0x81))
				return (size_t)(p - t) + 3;
			if (c == 0xEF && q - p >= 3 && (unsigned char)p[1] == 0xBC) {
				unsigned char d = (unsigned char)p[2];
				if (level == LV_SENT ? (d == 0x81 || d == 0x9F) : (d == 0x9B || d == 0x8C))
					return (size_t)(p - t) + 3;
			}
		}
		return 0;
	}
	return 0;
}

static void atomize(struct run *r, size_t a, size_t b, int level)
{
	struct pl_splitter *s = r->s;
	const char *t = r->t;

	while (level < LV_CHAR && !find_sep(t, a, b, level))
		level++;
	size_t cur = a;
	while (cur < b) {
		size_t end;
		if (level == LV_CHAR) {
			end = cur + pl_utf8_seqlen((unsigned char)t[cur]);
			merge_push(r, cur, end, 1, t[cur] == ' ' || t[cur] == '\t' ? 0 : 1);
			cur = end;
			continue;
		}
		end = find_sep(t, cur, b, level);
		if (!end)
			end = b;
		size_t len = units(s, t + cur, end - cur), ws = 0;
		while (ws < end - cur && (t[end - 1 - ws] == ' ' || t[end - 1 - ws] == '\n' ||
					  t[end - 1 - ws] == '\t' || t[end - 1 - ws] == '\r'))
			ws++;
		if (len <= s->size)
			merge_push(r, cur, end, len, len - (ws < len ? ws : len));
		else
			atomize(r, cur, end, level + 1);
		cur = end;
	}
}

/* ---- markdown ------------------------------------------------------------ */

static size_t line_end(const char *t, size_t a, size_t n)
{
	const char *p = memchr(t + a, '\n', n - a);
	return p ? (size_t)(p - t) + 1 : n;
}

/* A fence line: up to three spaces, then three or more ` or ~. Returns the
 * fence length and sets *ch, or 0. */
static size_t fence(const char *t, size_t a, size_t e, char *ch)
{
	size_t i = a, k;
	while (i < e && i - a < 3 && t[i] == ' ')
		i++;
	if (i >= e || (t[i] != '`' && t[i] != '~'))
		return 0;
	for (k = i; k < e && t[k] == t[i]; k++)
		;
	if (k - i < 3)
		return 0;
	*ch = t[i];
	return k - i;
}

static int closes_fence(const char *t, size_t a, size_t e, char ch, size_t len)
{
	char c2;
	size_t l = fence(t, a, e, &c2);
	if (!l || c2 != ch || l < len)
		return 0;
	/* nothing but white space after a closing fence */
	size_t i = a;
	while (t[i] == ' ')
		i++;
	for (i += l; i < e; i++)
		if (t[i] != ' ' && t[i] != '\t' && t[i] != '\n' && t[i] != '\r')
			return 0;
	return 1;
}

/* An ATX heading line: returns its level (1-6) and the text range, or 0. */
static int heading(const char *t, size_t a, size_t e, size_t *hs, size_t *he)
{
	size_t i = a, k;
	while (i < e && i - a < 3 && t[i] == ' ')
		i++;
	for (k = i; k < e && t[k] == '#'; k++)
		;
	int level = (int)(k - i);
	if (level < 1 || level > 6)
		return 0;
	if (k < e && t[k] != ' ' && t[k] != '\t' && t[k] != '\n' && t[k] != '\r')
		return 0;
	while (k < e && (t[k] == ' ' || t[k] == '\t'))
		k++;
	size_t z = e;
	while (z > k && (t[z - 1] == '\n' || t[z - 1] == '\r' || t[z - 1] == ' ' || t[z - 1] == '\t'))
		z--;
	/* an optional closing run of #, preceded by a space */
	size_t y = z;
	while (y > k && t[y - 1] == '#')
		y--;
	if (y < z && (y == k || t[y - 1] == ' ' || t[y - 1] == '\t')) {
		z = y;
		while (z > k && (t[z - 1] == ' ' || t[z - 1] == '\t'))
			z--;
	}
	*hs = k;
	*he = z;
	return level;
}

static void md_section(struct run *r, size_t a, size_t b)
{
	struct pl_splitter *s = r->s;
	size_t cur = a;

	for (size_t i = 0; i <= s->ncode; i++) {
		size_t cs = i < s->ncode ? s->code[i].start : b;
		size_t ce = i < s->ncode ? s->code[i].end : b;
		if (cs > cur)
			atomize(r, cur, cs, LV_PARA);
		if (ce > cs) {
			size_t len = units(s, r->t + cs, ce - cs);
			if (len <= s->size)
				merge_push(r, cs, ce, len, len);	/* a code block stays whole */
			else
				atomize(r, cs, ce, LV_LINE);	/* too big alone: by lines */
		}
		cur = ce;
	}
	merge_end(r);
	s->ncode = 0;
}

static void md_split(struct run *r, size_t n)
{
	struct pl_splitter *s = r->s;
	const char *t = r->t;
	size_t sec = 0, a = 0;

	s->depth = 0;
	s->ncode = 0;
	while (a < n) {
		size_t e = line_end(t, a, n), hs, he;
		char ch;
		size_t fl = fence(t, a, e, &ch);
		if (fl) {
			size_t c = e;
			while (c < n) {
				size_t ce = line_end(t, c, n);
				if (closes_fence(t, c, ce, ch, fl)) {
					c = ce;
					break;
				}
				c = ce;
			}
			if (s->ncode == s->capcode) {
				s->capcode = s->capcode ? s->capcode * 2 : 8;
				s->code = pl_xrealloc(s->code, s->capcode * sizeof *s->code);
			}
			s->code[s->ncode++] = (struct pl_span){ a, c, 0 };
			a = c;
			continue;
		}
		int level = heading(t, a, e, &hs, &he);
		if (level) {
			if (a > sec)
				md_section(r, sec, a);
			sec = a;
			while (s->depth > 0 && s->depth >= level)
				s->depth--;
			/* skipped levels (# then ###) leave no empty entries */
			s->path[s->depth].start = hs;
			s->path[s->depth].end = he;
			s->depth++;
		}
		a = e;
	}
	if (n > sec)
		md_section(r, sec, n);
}

/* ---- fixed windows ------------------------------------------------------- */

static size_t advance(const char *t, size_t a, size_t n, size_t count)
{
	while (count-- && a < n)
		a += pl_utf8_seqlen((unsigned char)t[a]);
	return a < n ? a : n;
}

static void fixed_split(struct run *r, size_t n)
{
	struct pl_splitter *s = r->s;
	size_t a = 0;

	while (a < n) {
		size_t b = advance(r->t, a, n, s->size);
		emit(r, a, b, 0);
		if (b >= n)
			break;
		a = advance(r->t, a, n, s->size - s->overlap);
	}
}

void pl_split(struct pl_splitter *s, const char *text, size_t n, pl_split_cb cb, void *ctx)
{
	struct run r = { s, text, cb, ctx };

	s->n = s->head = s->total = 0;
	switch (s->strategy) {
	case PL_SPLIT_LANGCHAIN:
		if (n)
			lc_split(&r, 0, n, 0);
		break;
	case PL_SPLIT_RECURSIVE:
		if (n)
			atomize(&r, 0, n, LV_PARA);
		merge_end(&r);
		break;
	case PL_SPLIT_MARKDOWN:
		md_split(&r, n);
		break;
	case PL_SPLIT_FIXED:
		fixed_split(&r, n);
		break;
	}
}
