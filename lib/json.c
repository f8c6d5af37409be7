#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "utf8.h"

/* A hand-written scanner instead of jansson on this path: jansson builds a
 * tree and re-serializes it, which made JSONL filters several times slower
 * than the work they do. jansson remains the library for configs, HTTP bodies
 * and scorecards. */

struct scan {
	const unsigned char *p, *end, *start;
	struct pl_jerr *e;
	int depth;
};

static int fail(struct scan *s, const unsigned char *at, const char *msg)
{
	if (s->e) {
		s->e->offset = (size_t)(at - s->start);
		snprintf(s->e->msg, sizeof s->e->msg, "%s", msg);
	}
	return -1;
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' ||
				  *s->p == '\r'))
		s->p++;
}

/* Byte classes inside a string: 0 plain ASCII, 1 quote, 2 backslash,
 * 3 control character, 4 start of a multi-byte sequence (or invalid). */
static unsigned char strclass[256];

__attribute__((constructor)) static void init_strclass(void)
{
	for (int c = 0; c < 256; c++)
		strclass[c] = c < 0x20 ? 3 : c == '"' ? 1 : c == '\\' ? 2 : c >= 0x80 ? 4 : 0;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* On entry s->p is just past the opening quote; on success just past the
 * closing one. *esc says whether a backslash escape was seen. */
static int scan_string(struct scan *s, int *esc)
{
	const unsigned char *p = s->p, *end = s->end;

	*esc = 0;
	for (;;) {
#ifdef __SSE2__
		/* Skip sixteen plain ASCII bytes at a time: no quote, no
		 * backslash, nothing below 0x20 and nothing above 0x7F. */
		const __m128i quote = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
		const __m128i lim = _mm_set1_epi8(0x1F);
		while (end - p >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)p);
			/* signed compare: bytes >= 0x80 are negative, so
			 * v <= 0x1F catches both control and non-ASCII */
			__m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
								_mm_cmpeq_epi8(v, bs)),
						   _mm_cmpgt_epi8(_mm_add_epi8(lim, _mm_set1_epi8(1)), v));
			int mask = _mm_movemask_epi8(bad);
			if (mask) {
				p += __builtin_ctz((unsigned)mask);
				break;
			}
			p += 16;
		}
#endif
		while (p < end && strclass[*p] == 0)
			p++;
		if (p >= end)
			return fail(s, p, "unterminated string");
		switch (strclass[*p]) {
		case 0:
			p++;
			break;
		case 1:
			s->p = p + 1;
			return 0;
		case 2:
			*esc = 1;
			if (p + 1 >= end)
				return fail(s, p, "unterminated string");
			switch (p[1]) {
			case '"': case '\\': case '/': case 'b': case 'f':
			case 'n': case 'r': case 't':
				p += 2;
				break;
			case 'u':
				if (end - p < 6 || hexval(p[2]) < 0 || hexval(p[3]) < 0 ||
				    hexval(p[4]) < 0 || hexval(p[5]) < 0)
					return fail(s, p, "invalid \\u escape");
				p += 6;
				break;
			default:
				return fail(s, p, "invalid escape");
			}
			break;
		case 3:
			return fail(s, p, "control character in string");
		case 4: {
			size_t l = pl_utf8_seq_valid(p, (size_t)(end - p));
			if (!l)
				return fail(s, p, "invalid UTF-8");
			p += l;
			break;
		}
		}
	}
}

static int scan_number(struct scan *s)
{
	const unsigned char *p = s->p, *end = s->end, *start = p;

	if (p < end && *p == '-')
		p++;
	if (p >= end || !(*p >= '0' && *p <= '9'))
		return fail(s, start, "invalid number");
	if (*p == '0')
		p++;
	else
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	if (p < end && *p == '.') {
		p++;
		if (p >= end || !(*p >= '0' && *p <= '9'))
			return fail(s, p, "invalid number");
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || !(*p >= '0' && *p <= '9'))
			return fail(s, p, "invalid number");
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	s->p = p;
	return 0;
}

static int scan_literal(struct scan *s, const char *word, size_t len)
{
	if ((size_t)(s->end - s->p) < len || memcmp(s->p, word, len) != 0)
		return fail(s, s->p, "invalid literal");
	s->p += len;
	return 0;
}

static int scan_value(struct scan *s, unsigned char *type);

static int scan_container(struct scan *s, int obj)
{
	const unsigned char close = obj ? '}' : ']';
	unsigned char t;
	int esc;

	if (++s->depth > PL_JSON_MAXDEPTH)
		return fail(s, s->p, "nesting too deep");
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;;) {
		if (obj) {
			if (s->p >= s->end || *s->p != '"')
				return fail(s, s->p, s->p >= s->end ? "unexpected end of input" :
					    "expected a string key");
			s->p++;
			if (scan_string(s, &esc) < 0)
				return -1;
			skip_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return fail(s, s->p, "expected ':'");
			s->p++;
			skip_ws(s);
		}
		if (scan_value(s, &t) < 0)
			return -1;
		skip_ws(s);
		if (s->p >= s->end)
			return fail(s, s->p, "unexpected end of input");
		if (*s->p == ',') {
			s->p++;
			skip_ws(s);
			continue;
		}
		if (*s->p == close) {
			s->p++;
			s->depth--;
			return 0;
		}
		return fail(s, s->p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int scan_value(struct scan *s, unsigned char *type)
{
	int esc;

	if (s->p >= s->end)
		return fail(s, s->p, "unexpected end of input");
	switch (*s->p) {
	case '{':
		*type = PL_JOBJ;
		return scan_container(s, 1);
	case '[':
		*type = PL_JARR;
		return scan_container(s, 0);
	case '"':
		*type = PL_JSTR;
		s->p++;
		return scan_string(s, &esc);
	case 't':
		*type = PL_JTRUE;
		return scan_literal(s, "true", 4);
	case 'f':
		*type = PL_JFALSE;
		return scan_literal(s, "false", 5);
	case 'n':
		*type = PL_JNULL;
		return scan_literal(s, "null", 4);
	default:
		*type = PL_JNUM;
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
			return scan_number(s);
		return fail(s, s->p, "unexpected character");
	}
}

int pl_json_validate(const char *str, size_t n, enum pl_jtype *type, struct pl_jerr *e)
{
	struct scan s = { (const unsigned char *)str, (const unsigned char *)str + n,
			  (const unsigned char *)str, e, 0 };
	unsigned char t;

	skip_ws(&s);
	if (scan_value(&s, &t) < 0)
		return -1;
	skip_ws(&s);
	if (s.p != s.end)
		return fail(&s, s.p, "trailing characters after the value");
	if (type)
		*type = (enum pl_jtype)t;
	return 0;
}

int pl_json_scan_object(const char *str, size_t n, struct pl_jobj *o, struct pl_jerr *e)
{
	struct scan s = { (const unsigned char *)str, (const unsigned char *)str + n,
			  (const unsigned char *)str, e, 1 };
	struct pl_jmember *m;
	int esc;

	o->n = 0;
	skip_ws(&s);
	if (s.p >= s.end)
		return fail(&s, s.p, "empty line");
	if (*s.p != '{')
		return fail(&s, s.p, "expected a JSON object");
	s.p++;
	skip_ws(&s);
	if (s.p < s.end && *s.p == '}') {
		s.p++;
		goto tail;
	}
	for (;;) {
		if (o->n == o->cap) {
			o->cap = o->cap ? o->cap * 2 : 16;
			o->m = pl_xrealloc(o->m, o->cap * sizeof *o->m);
		}
		m = &o->m[o->n];
		if (s.p >= s.end || *s.p != '"')
			return fail(&s, s.p, s.p >= s.end ? "unexpected end of input" :
				    "expected a string key");
		m->key = (const char *)++s.p;
		if (scan_string(&s, &esc) < 0)
			return -1;
		m->keylen = (size_t)((const char *)s.p - 1 - m->key);
		m->key_esc = (unsigned char)esc;
		skip_ws(&s);
		if (s.p >= s.end || *s.p != ':')
			return fail(&s, s.p, "expected ':'");
		s.p++;
		skip_ws(&s);
		m->val = (const char *)s.p;
		m->val_esc = 0;
		if (s.p < s.end && *s.p == '"') {
			m->type = PL_JSTR;
			s.p++;
			if (scan_string(&s, &esc) < 0)
				return -1;
			m->val_esc = (unsigned char)esc;
		} else if (scan_value(&s, &m->type) < 0) {
			return -1;
		}
		m->vallen = (size_t)((const char *)s.p - m->val);
		o->n++;
		skip_ws(&s);
		if (s.p >= s.end)
			return fail(&s, s.p, "unexpected end of input");
		if (*s.p == ',') {
			s.p++;
			skip_ws(&s);
			continue;
		}
		if (*s.p == '}') {
			s.p++;
			break;
		}
		return fail(&s, s.p, "expected ',' or '}'");
	}
tail:
	skip_ws(&s);
	if (s.p != s.end)
		return fail(&s, s.p, "trailing characters after the object");
	return 0;
}

void pl_jobj_free(struct pl_jobj *o)
{
	free(o->m);
	o->m = NULL;
	o->n = o->cap = 0;
}

static int key_equals(const struct pl_jmember *m, const char *key, size_t klen)
{
	if (!m->key_esc)
		return m->keylen == klen && memcmp(m->key, key, klen) == 0;
	/* rare: an escaped key ("\u0069d" is "id") is compared decoded */
	struct pl_buf b = PL_BUF_INIT;
	int eq = pl_json_str_decode(m->key, m->keylen, &b, PL_JSTR_REPLACE, NULL) == 0 &&
		 b.n == klen && memcmp(b.p, key, klen) == 0;
	pl_buf_free(&b);
	return eq;
}

int pl_jmember_key_is(const struct pl_jmember *m, const char *key)
{
	return key_equals(m, key, strlen(key));
}

const struct pl_jmember *pl_jobj_get(const struct pl_jobj *o, const char *key)
{
	size_t klen = strlen(key);

	for (size_t i = o->n; i-- > 0;)
		if (key_equals(&o->m[i], key, klen))
			return &o->m[i];
	return NULL;
}

int pl_json_str_decode(const char *raw, size_t n, struct pl_buf *out, int flags,
		       struct pl_jerr *e)
{
	const char *p = raw, *end = raw + n;

	pl_buf_reserve(out, n);
	while (p < end) {
		const char *bs = memchr(p, '\\', (size_t)(end - p));
		if (!bs) {
			pl_buf_add(out, p, (size_t)(end - p));
			break;
		}
		pl_buf_add(out, p, (size_t)(bs - p));
		p = bs + 1;
		char c = *p++;
		switch (c) {
		case 'b': pl_buf_addc(out, '\b'); break;
		case 'f': pl_buf_addc(out, '\f'); break;
		case 'n': pl_buf_addc(out, '\n'); break;
		case 'r': pl_buf_addc(out, '\r'); break;
		case 't': pl_buf_addc(out, '\t'); break;
		case 'u': {
			uint32_t cp = (uint32_t)(hexval((unsigned char)p[0]) << 12 |
						 hexval((unsigned char)p[1]) << 8 |
						 hexval((unsigned char)p[2]) << 4 |
						 hexval((unsigned char)p[3]));
			p += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' &&
			    p[1] == 'u') {
				uint32_t lo = (uint32_t)(hexval((unsigned char)p[2]) << 12 |
							 hexval((unsigned char)p[3]) << 8 |
							 hexval((unsigned char)p[4]) << 4 |
							 hexval((unsigned char)p[5]));
				if (lo >= 0xDC00 && lo <= 0xDFFF) {
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					p += 6;
				}
			}
			if (cp >= 0xD800 && cp <= 0xDFFF) {
				if (!(flags & PL_JSTR_REPLACE)) {
					if (e) {
						e->offset = (size_t)(bs - raw);
						snprintf(e->msg, sizeof e->msg,
							 "lone surrogate \\u%04X in string", cp);
					}
					return -1;
				}
				cp = 0xFFFD;
			}
			char u[4];
			pl_buf_add(out, u, pl_utf8_encode(cp, u));
			break;
		}
		default:	/* '"', '\\', '/' */
			pl_buf_addc(out, c);
			break;
		}
	}
	return 0;
}

int pl_jmember_str(const struct pl_jmember *m, struct pl_buf *scratch, const char **s,
		   size_t *n, int flags, struct pl_jerr *e)
{
	if (m->type != PL_JSTR) {
		if (e) {
			e->offset = 0;
			snprintf(e->msg, sizeof e->msg, "not a string");
		}
		return -1;
	}
	if (!m->val_esc) {
		*s = m->val + 1;
		*n = m->vallen - 2;
		return 0;
	}
	scratch->n = 0;
	if (pl_json_str_decode(m->val + 1, m->vallen - 2, scratch, flags, e) < 0)
		return -1;
	*s = scratch->p;
	*n = scratch->n;
	return 0;
}

int pl_jmember_i64(const struct pl_jmember *m, int64_t *v)
{
	char tmp[32], *endp;

	if (m->type != PL_JNUM || m->vallen >= sizeof tmp)
		return -1;
	memcpy(tmp, m->val, m->vallen);
	tmp[m->vallen] = '\0';
	errno = 0;
	long long x = strtoll(tmp, &endp, 10);
	if (errno || *endp)
		return -1;
	*v = x;
	return 0;
}

/* 0: copy as is; otherwise the character after the backslash ('u' for \u00XX). */
static const char escape_tab[256] = {
	'u','u','u','u','u','u','u','u','b','t','n','u','f','r','u','u',
	'u','u','u','u','u','u','u','u','u','u','u','u','u','u','u','u',
	0, 0, '"', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '\\', 0, 0, 0,
};

void pl_json_put_str(struct pl_buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n, *run;

	/* worst case every byte becomes \u00XX */
	pl_buf_reserve(b, n + 2);
	b->p[b->n++] = '"';
	while (p < end) {
		run = p;
#ifdef __SSE2__
		const __m128i quote = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
		while (end - p >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)p);
			/* control bytes are < 0x20 unsigned: (v & 0xE0) == 0 */
			__m128i ctl = _mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8((char)0xE0)),
						     _mm_setzero_si128());
			int mask = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(
				_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bs)), ctl));
			if (mask) {
				p += __builtin_ctz((unsigned)mask);
				goto found;
			}
			p += 16;
		}
#endif
		while (p < end && !escape_tab[*p])
			p++;
#ifdef __SSE2__
found:
#endif
		pl_buf_add(b, run, (size_t)(p - run));
		if (p >= end)
			break;
		char e = escape_tab[*p];
		if (e == 'u') {
			static const char hex[] = "0123456789abcdef";
			char u[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };
			pl_buf_add(b, u, 6);
		} else {
			char u[2] = { '\\', e };
			pl_buf_add(b, u, 2);
		}
		p++;
	}
	pl_buf_addc(b, '"');
}

void pl_json_put_member(struct pl_buf *b, const struct pl_jmember *m)
{
	pl_buf_reserve(b, m->keylen + m->vallen + 3);
	b->p[b->n++] = '"';
	memcpy(b->p + b->n, m->key, m->keylen);
	b->n += m->keylen;
	b->p[b->n++] = '"';
	b->p[b->n++] = ':';
	memcpy(b->p + b->n, m->val, m->vallen);
	b->n += m->vallen;
}

void pl_json_put_others(struct pl_buf *b, const struct pl_jobj *o, const char *const *skip)
{
	for (size_t i = 0; i < o->n; i++) {
		const struct pl_jmember *m = &o->m[i];
		int k = 0;
		while (skip[k] && !pl_jmember_key_is(m, skip[k]))
			k++;
		if (skip[k])
			continue;
		pl_buf_addc(b, ',');
		pl_json_put_member(b, m);
	}
}

/* Fixed-point printing instead of printf("%.8g"): writing 384 floats per
 * record through printf made embed spend most of its time formatting. */
static const double pow10tab[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
				   1e10, 1e11, 1e12, 1e13 };

static void put_float(struct pl_buf *b, float f)
{
	double x = f, ax = fabs(x);
	char tmp[40];
	int n = 0;

	if (!isfinite(x) || ax == 0) {
		pl_buf_addc(b, '0');
		return;
	}
	if (ax < 1e-5 || ax >= 1e7) {
		n = snprintf(tmp, sizeof tmp, "%.8g", x);
		pl_buf_add(b, tmp, (size_t)n);
		return;
	}
	int e = 0;	/* floor(log10(ax)), for ax in [1e-5, 1e7) */
	while (e < 7 && ax >= pow10tab[e + 1])
		e++;
	if (ax < 1) {
		e = -1;
		while (e > -5 && ax < 1.0 / pow10tab[-e])
			e--;
	}
	int dec = 7 - e;	/* digits after the point for 8 significant ones */
	uint64_t m = (uint64_t)llround(ax * pow10tab[dec]);
	uint64_t scale = (uint64_t)pow10tab[dec];
	uint64_t ip = m / scale, fp = m % scale;
	if (x < 0)
		tmp[n++] = '-';
	char digits[24];
	int k = 0;
	do {
		digits[k++] = (char)('0' + ip % 10);
		ip /= 10;
	} while (ip);
	while (k)
		tmp[n++] = digits[--k];
	if (fp) {
		while (fp % 10 == 0) {
			fp /= 10;
			dec--;
		}
		tmp[n++] = '.';
		for (int i = dec - 1; i >= 0; i--) {
			tmp[n + i] = (char)('0' + fp % 10);
			fp /= 10;
		}
		n += dec;
	}
	pl_buf_add(b, tmp, (size_t)n);
}

void pl_json_put_floats(struct pl_buf *b, const float *v, size_t n)
{
	pl_buf_reserve(b, n * 12 + 2);
	pl_buf_addc(b, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			pl_buf_addc(b, ',');
		put_float(b, v[i]);
	}
	pl_buf_addc(b, ']');
}
