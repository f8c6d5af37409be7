/* Templates, `when` and `depends` (see tmpl.h). */
#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl.h"

static int err(struct pl_texpr_err *e, size_t col, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int err(struct pl_texpr_err *e, size_t col, const char *fmt, ...)
{
	va_list ap;

	e->col = col;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

static int is_ident(const char *s, size_t n)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

/* The next dot-separated part of ref[*i..n). */
static int part(const char *ref, size_t n, size_t *i, const char **p, size_t *len)
{
	size_t j = *i;

	if (j > n)
		return 0;
	while (j < n && ref[j] != '.')
		j++;
	*p = ref + *i;
	*len = j - *i;
	*i = j + 1;
	return 1;
}

static int eq(const char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

int pl_tref_parse(const char *ref, size_t n, struct pl_tref *r, struct pl_texpr_err *e)
{
	const char *p[5] = { 0 };
	size_t len[5] = { 0 }, i = 0, k = 0;

	while (k < 5 && part(ref, n, &i, &p[k], &len[k]))
		k++;
	if (k == 5 || (k && i <= n))
		return err(e, e->col, "reference '%.*s' has too many parts", (int)n, ref);
	for (size_t j = 0; j < k; j++)
		if (!is_ident(p[j], len[j]))
			return err(e, e->col, "bad reference '%.*s'", (int)n, ref);
	memset(r, 0, sizeof *r);
	if (eq(p[0], len[0], "params")) {
		if (k != 2)
			return err(e, e->col, "bad reference '%.*s' (want params.NAME)", (int)n, ref);
		r->kind = PL_TREF_PARAM;
		r->a = p[1], r->alen = len[1];
	} else if (eq(p[0], len[0], "item")) {
		if (k > 2)
			return err(e, e->col, "bad reference '%.*s' (want item or item.FIELD)",
				   (int)n, ref);
		r->kind = PL_TREF_ITEM;
		r->a = k == 2 ? p[1] : "", r->alen = k == 2 ? len[1] : 0;
	} else if (eq(p[0], len[0], "tasks")) {
		if (k == 3 && eq(p[2], len[2], "status"))
			r->kind = PL_TREF_STATUS;
		else if (k == 4 && eq(p[2], len[2], "outputs"))
			r->kind = PL_TREF_OUTPUT;
		else
			return err(e, e->col, "bad reference '%.*s' (want tasks.T.outputs.NAME "
				   "or tasks.T.status)", (int)n, ref);
		r->a = p[1], r->alen = len[1];
		if (k == 4)
			r->b = p[3], r->blen = len[3];
	} else if (eq(p[0], len[0], "run")) {
		if (k == 2 && eq(p[1], len[1], "id"))
			r->kind = PL_TREF_RUN_ID;
		else if (k == 2 && eq(p[1], len[1], "status"))
			r->kind = PL_TREF_RUN_STATUS;
		else if (k == 2 && eq(p[1], len[1], "failures"))
			r->kind = PL_TREF_RUN_FAILURES;
		else
			return err(e, e->col, "bad reference '%.*s' (want run.id, run.status "
				   "or run.failures)", (int)n, ref);
	} else {
		return err(e, e->col, "unknown namespace '%.*s' in '%.*s' (want params, item, "
			   "tasks or run)", (int)len[0], p[0], (int)n, ref);
	}
	return 0;
}

int pl_tmpl_has(const char *s)
{
	return strstr(s, "{{") != NULL;
}

int pl_tmpl_expand(const char *s, pl_tmpl_fn fn, void *ctx, struct pl_buf *out,
		   struct pl_texpr_err *e)
{
	const char *p = s, *open, *close;

	while ((open = strstr(p, "{{"))) {
		pl_buf_add(out, p, open - p);
		close = strstr(open + 2, "}}");
		if (!close)
			return err(e, open - s + 1, "unclosed '{{'");
		const char *a = open + 2, *b = close;
		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		if (a == b)
			return err(e, open - s + 1, "empty reference '{{}}'");
		if (b - a >= 2 && *a == '"' && b[-1] == '"' && !memchr(a + 1, '"', b - a - 2)) {
			/* {{"text"}} is text: how to write a literal {{ */
			pl_buf_add(out, a + 1, b - a - 2);
			p = close + 2;
			continue;
		}
		if (memchr(a, '{', b - a))
			return err(e, open - s + 1, "unclosed '{{'");
		if (fn(ctx, a, b - a, open - s + 1, out, e) < 0)
			return -1;
		p = close + 2;
	}
	pl_buf_adds(out, p);
	return 0;
}

/* --- expressions --------------------------------------------------------- */

enum tok { T_END, T_LP, T_RP, T_NOT, T_AND, T_OR, T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE,
	   T_MATCH, T_WORD, T_STR };

struct lex {
	const char *s;
	size_t pos;		/* of the current token */
	size_t next;		/* just after it */
	enum tok t;
	struct pl_buf val;	/* T_WORD, T_STR: the text (decoded) */
	int check;
	pl_outcome_fn fn;
	void *ctx;
	struct pl_texpr_err *e;
};

static int lex_next(struct lex *l)
{
	const char *s = l->s;
	size_t i = l->next;

	while (s[i] && isspace((unsigned char)s[i]))
		i++;
	l->pos = i;
	l->val.n = 0;
	switch (s[i]) {
	case 0: l->t = T_END; l->next = i; return 0;
	case '(': l->t = T_LP; l->next = i + 1; return 0;
	case ')': l->t = T_RP; l->next = i + 1; return 0;
	case '&':
		if (s[i + 1] != '&')
			return err(l->e, i + 1, "'&' where '&&' was expected");
		l->t = T_AND; l->next = i + 2; return 0;
	case '|':
		if (s[i + 1] != '|')
			return err(l->e, i + 1, "'|' where '||' was expected");
		l->t = T_OR; l->next = i + 2; return 0;
	case '!':
		if (s[i + 1] == '=') { l->t = T_NE; l->next = i + 2; return 0; }
		l->t = T_NOT; l->next = i + 1; return 0;
	case '=':
		if (s[i + 1] == '=') { l->t = T_EQ; l->next = i + 2; return 0; }
		if (s[i + 1] == '~') { l->t = T_MATCH; l->next = i + 2; return 0; }
		return err(l->e, i + 1, "'=' where '==' or '=~' was expected");
	case '<':
		if (s[i + 1] == '=') { l->t = T_LE; l->next = i + 2; return 0; }
		l->t = T_LT; l->next = i + 1; return 0;
	case '>':
		if (s[i + 1] == '=') { l->t = T_GE; l->next = i + 2; return 0; }
		l->t = T_GT; l->next = i + 1; return 0;
	case '"': case '\'': {
		char q = s[i];
		size_t j = i + 1;
		for (; s[j] && s[j] != q; j++) {
			if (s[j] == '\\' && s[j + 1])
				j++;
			pl_buf_addc(&l->val, s[j]);
		}
		if (!s[j])
			return err(l->e, i + 1, "unterminated string");
		l->t = T_STR; l->next = j + 1; return 0;
	}
	}
	size_t j = i;
	while (s[j] && !isspace((unsigned char)s[j]) && !strchr("()&|!=<>\"'", s[j]))
		j++;
	pl_buf_add(&l->val, s + i, j - i);
	l->t = T_WORD;
	l->next = j;
	return 0;
}

static const char *tok_name(const struct lex *l)
{
	static const char *const names[] = { "end of expression", "'('", "')'", "'!'", "'&&'",
		"'||'", "'=='", "'!='", "'<'", "'<='", "'>'", "'>='", "'=~'", "a word", "a string" };
	return names[l->t];
}

/* A value: a boolean (b >= 0) or a string. */
struct val {
	int b;
	char *s;
	size_t col;
};

static int parse_number(const char *s, double *d)
{
	char *end;

	if (!*s || !(isdigit((unsigned char)*s) || strchr("+-.", *s)))
		return 0;
	*d = strtod(s, &end);
	return end != s && *end == 0;
}

static int compare(struct lex *l, enum tok op, struct val *a, struct val *b, size_t opcol)
{
	double x, y;
	int c;

	if (op == T_MATCH) {
		regex_t re;
		int rc = regcomp(&re, b->s, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char buf[100];
			regerror(rc, &re, buf, sizeof buf);
			return err(l->e, b->col, "bad regular expression '%s': %s", b->s, buf);
		}
		c = regexec(&re, a->s, 0, NULL, 0) == 0;
		regfree(&re);
		return c;
	}
	if (parse_number(a->s, &x) && parse_number(b->s, &y))
		c = x < y ? -1 : x > y;
	else
		c = strcmp(a->s, b->s);
	switch (op) {
	case T_EQ: return c == 0;
	case T_NE: return c != 0;
	case T_LT: return c < 0;
	case T_LE: return c <= 0;
	case T_GT: return c > 0;
	case T_GE: return c >= 0;
	default: return err(l->e, opcol, "internal: bad operator");
	}
}

static int when_or(struct lex *l, int *r);

static int operand(struct lex *l, struct val *v)
{
	if (l->t != T_WORD && l->t != T_STR)
		return err(l->e, l->pos + 1, "expected a value, found %s", tok_name(l));
	v->s = pl_xstrndup(l->val.p, l->val.n);
	v->col = l->pos + 1;
	v->b = -1;
	if (l->t == T_WORD && strcmp(v->s, "true") == 0)
		v->b = 1;
	else if (l->t == T_WORD && strcmp(v->s, "false") == 0)
		v->b = 0;
	return lex_next(l);
}

/* primary: '(' or ')' | '!' primary | value [op value] */
static int when_unary(struct lex *l, int *r)
{
	struct val a = { 0 }, b = { 0 };
	int rc;

	if (l->t == T_NOT) {
		if (lex_next(l) < 0 || when_unary(l, r) < 0)
			return -1;
		*r = !*r;
		return 0;
	}
	if (l->t == T_LP) {
		size_t col = l->pos + 1;
		if (lex_next(l) < 0 || when_or(l, r) < 0)
			return -1;
		if (l->t != T_RP)
			return err(l->e, col, "unbalanced '('");
		return lex_next(l);
	}
	if (operand(l, &a) < 0)
		goto fail;
	if (l->t >= T_EQ && l->t <= T_MATCH) {
		enum tok op = l->t;
		size_t opcol = l->pos + 1;
		if (lex_next(l) < 0 || operand(l, &b) < 0)
			goto fail;
		rc = compare(l, op, &a, &b, opcol);
		if (rc < 0)
			goto fail;
		*r = l->check ? 1 : rc;
	} else if (a.b >= 0) {
		*r = a.b;
	} else if (l->check) {
		*r = 1;
	} else {
		err(l->e, a.col, "'%s' is not true or false", a.s);
		goto fail;
	}
	free(a.s);
	free(b.s);
	return 0;
fail:
	free(a.s);
	free(b.s);
	return -1;
}

static int when_and(struct lex *l, int *r)
{
	int y;

	if (when_unary(l, r) < 0)
		return -1;
	while (l->t == T_AND) {
		if (lex_next(l) < 0 || when_unary(l, &y) < 0)
			return -1;
		*r = *r && y;
	}
	return 0;
}

static int when_or(struct lex *l, int *r)
{
	int y;

	if (when_and(l, r) < 0)
		return -1;
	while (l->t == T_OR) {
		if (lex_next(l) < 0 || when_and(l, &y) < 0)
			return -1;
		*r = *r || y;
	}
	return 0;
}

static int run_expr(struct lex *l, int (*top)(struct lex *, int *), int *result)
{
	int rc = -1;

	if (lex_next(l) < 0)
		goto out;
	if (l->t == T_END) {
		err(l->e, 1, "empty expression");
		goto out;
	}
	if (top(l, result) < 0)
		goto out;
	if (l->t != T_END) {
		if (l->t == T_RP)
			err(l->e, l->pos + 1, "unbalanced ')'");
		else
			err(l->e, l->pos + 1, "unexpected %s", tok_name(l));
		goto out;
	}
	rc = 0;
out:
	pl_buf_free(&l->val);
	return rc;
}

int pl_when_eval(const char *expr, int check, int *result, struct pl_texpr_err *e)
{
	struct lex l = { .s = expr, .check = check, .e = e };

	return run_expr(&l, when_or, result);
}

/* --- depends ------------------------------------------------------------- */

static int dep_or(struct lex *l, int *r);

static int dep_unary(struct lex *l, int *r)
{
	static const char *const outcomes[] = { "Succeeded", "Failed", "Skipped", "Errored" };

	if (l->t == T_NOT) {
		if (lex_next(l) < 0 || dep_unary(l, r) < 0)
			return -1;
		*r = !*r;
		return 0;
	}
	if (l->t == T_LP) {
		size_t col = l->pos + 1;
		if (lex_next(l) < 0 || dep_or(l, r) < 0)
			return -1;
		if (l->t != T_RP)
			return err(l->e, col, "unbalanced '('");
		return lex_next(l);
	}
	if (l->t != T_WORD)
		return err(l->e, l->pos + 1, "expected a task, found %s", tok_name(l));
	const char *w = l->val.p, *dot = memchr(w, '.', l->val.n);
	size_t tlen = dot ? (size_t)(dot - w) : l->val.n;
	int want = PL_OUT_SUCCEEDED;
	if (dot) {
		size_t olen = l->val.n - tlen - 1;
		want = -1;
		for (int i = 0; i < 4; i++)
			if (eq(dot + 1, olen, outcomes[i]))
				want = i;
		if (want < 0)
			return err(l->e, l->pos + tlen + 2, "unknown outcome '%.*s' (want Succeeded, "
				   "Failed, Skipped or Errored)", (int)olen, dot + 1);
	}
	if (!is_ident(w, tlen))
		return err(l->e, l->pos + 1, "bad task name '%.*s'", (int)tlen, w);
	l->e->col = l->pos + 1;
	int got = l->fn(l->ctx, w, tlen, l->pos + 1, l->e);
	if (got < 0)
		return -1;
	*r = got == want;
	return lex_next(l);
}

static int dep_and(struct lex *l, int *r)
{
	int y;

	if (dep_unary(l, r) < 0)
		return -1;
	while (l->t == T_AND) {
		if (lex_next(l) < 0 || dep_unary(l, &y) < 0)
			return -1;
		*r = *r && y;
	}
	return 0;
}

static int dep_or(struct lex *l, int *r)
{
	int y;

	if (dep_and(l, r) < 0)
		return -1;
	while (l->t == T_OR) {
		if (lex_next(l) < 0 || dep_and(l, &y) < 0)
			return -1;
		*r = *r || y;
	}
	return 0;
}

int pl_depends_eval(const char *expr, pl_outcome_fn fn, void *ctx, int *result,
		    struct pl_texpr_err *e)
{
	struct lex l = { .s = expr, .fn = fn, .ctx = ctx, .e = e };

	return run_expr(&l, dep_or, result);
}
