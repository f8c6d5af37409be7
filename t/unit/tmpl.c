/* tmpl: {{ref}} substitution, the `when` evaluator and `depends`. */
#include <stdlib.h>

#include "tmpl.h"
#include "unit.h"

static int lookup(void *ctx, const char *ref, size_t n, size_t col, struct pl_buf *out,
		  struct pl_texpr_err *e)
{
	struct pl_tref r;

	if (pl_tref_parse(ref, n, &r, e) < 0)
		return -1;
	if (r.kind == PL_TREF_OUTPUT)
		pl_buf_adds(out, "0.93");
	else if (r.kind == PL_TREF_PARAM)
		pl_buf_add(out, r.a, r.alen);
	else if (r.kind == PL_TREF_ITEM)
		pl_buf_adds(out, r.alen ? "field" : "it");
	else if (r.kind == PL_TREF_RUN_STATUS)
		pl_buf_adds(out, "Succeeded");
	else
		pl_buf_adds(out, "?");
	return 0;
}

static const char *expand(const char *s, struct pl_texpr_err *e)
{
	static struct pl_buf b;

	b.n = 0;
	if (pl_tmpl_expand(s, lookup, NULL, &b, e) < 0)
		return NULL;
	return pl_buf_cstr(&b);
}

/* 1 true, 0 false, -1 error */
static int when(const char *s)
{
	struct pl_texpr_err e;
	int r;

	return pl_when_eval(s, 0, &r, &e) < 0 ? -1 : r;
}

static size_t when_col(const char *s)
{
	struct pl_texpr_err e = { 0 };
	int r;

	return pl_when_eval(s, 0, &r, &e) < 0 ? e.col : 0;
}

/* outcomes: a Succeeded, b Failed, c Skipped, d Errored */
static int outcome(void *ctx, const char *t, size_t n, size_t col, struct pl_texpr_err *e)
{
	if (n != 1 || *t < 'a' || *t > 'd') {
		snprintf(e->msg, sizeof e->msg, "unknown task '%.*s'", (int)n, t);
		return -1;
	}
	return *t - 'a';
}

static int dep(const char *s)
{
	struct pl_texpr_err e;
	int r;

	return pl_depends_eval(s, outcome, NULL, &r, &e) < 0 ? -1 : r;
}

int main(void)
{
	struct pl_texpr_err e = { 0 };
	struct pl_tref r;

	CHECK_STR(expand("a {{params.x}} b {{ item }} {{item.f}}", &e), "a x b it field",
		  "params and item expand, spaces trimmed");
	CHECK_STR(expand("no templates", &e), "no templates", "plain text stays");
	CHECK_STR(expand("notify --text '{{\"{{\"}}scorecard.n}}' {{params.x}}", &e),
		  "notify --text '{{scorecard.n}}' x", "{{\"{{\"}} is a literal {{");
	CHECK(expand("x {{params.x", &e) == NULL && e.col == 3, "unclosed braces at column 3");
	CHECK(expand("{{ }}", &e) == NULL && e.col == 1, "empty reference");
	CHECK(expand("{{bogus.x}}", &e) == NULL && strstr(e.msg, "unknown namespace 'bogus'"),
	      "unknown namespace: %s", e.msg);
	CHECK(pl_tref_parse("tasks.t.outputs.acc", 19, &r, &e) == 0 && r.kind == PL_TREF_OUTPUT &&
	      r.alen == 1 && r.blen == 3, "tasks.T.outputs.X");
	CHECK(pl_tref_parse("tasks.t.status", 14, &r, &e) == 0 && r.kind == PL_TREF_STATUS,
	      "tasks.T.status");
	CHECK(pl_tref_parse("tasks.t.bogus", 13, &r, &e) < 0, "tasks.T.bogus is an error");
	CHECK(pl_tref_parse("run.failures", 12, &r, &e) == 0 && r.kind == PL_TREF_RUN_FAILURES,
	      "run.failures");
	CHECK(pl_tref_parse("run.nope", 8, &r, &e) < 0, "run.nope is an error");

	/* the quality gate of the seed */
	CHECK_STR(expand("{{tasks.evaluate.outputs.accuracy}} > 0.90", &e), "0.93 > 0.90",
		  "gate expands");
	CHECK(when("0.93 > 0.90") == 1, "0.93 > 0.90");
	CHECK(when("0.89 > 0.90") == 0, "0.89 > 0.90 is false");
	CHECK(when("0.9 == 0.90") == 1, "numbers compare as numbers");
	CHECK(when("10 > 9") == 1, "10 > 9 numerically");
	CHECK(when("'10' > '9'") == 1, "quoted numbers still compare as numbers (as Argo)");
	CHECK(when("abc < abd") == 1, "strings compare as strings");
	CHECK(when("10 > 9x") == 0, "number vs string compares as strings");
	CHECK(when("heads == heads") == 1, "bare words are strings");
	CHECK(when("\"a b\" == 'a b'") == 1, "quoted strings with spaces");
	CHECK(when("a != b") == 1, "!=");
	CHECK(when("2 <= 2 && 3 >= 4") == 0, "<= and >=");
	CHECK(when("true || false && false") == 1, "&& binds tighter than ||");
	CHECK(when("(true || false) && false") == 0, "parentheses");
	CHECK(when("!false && !(1 > 2)") == 1, "not");
	CHECK(when("!true || true") == 1, "! binds tighter than ||");
	CHECK(when("model-v2 =~ '^model-v[0-9]+$'") == 1, "regex match");
	CHECK(when("model-vX =~ '^model-v[0-9]+$'") == 0, "regex no match");
	CHECK(when("x =~ '('") == -1, "bad regex is an error");
	CHECK(when("true") == 1 && when("false") == 0, "booleans");
	CHECK(when("maybe") == -1, "a lone non-boolean is an error");
	CHECK(when_col("1 > ") == 5, "missing operand: column 5");
	CHECK(when_col("(1 > 2") == 1, "unbalanced '(' at column 1");
	CHECK(when_col("1 > 2)") == 6, "unbalanced ')' at column 6");
	CHECK(when_col("1 = 2") == 3, "'=' at column 3");
	CHECK(when_col("a & b") == 3, "'&' at column 3");
	CHECK(when_col("'abc") == 1, "unterminated string at column 1");
	CHECK(when_col("") == 1, "empty expression");
	CHECK(when_col("a == b c") == 8, "trailing word at column 8");
	{
		int res;
		CHECK(pl_when_eval("{x} > 1 && maybe", 1, &res, &e) == 0, "check mode accepts lone operands");
	}

	CHECK(dep("a") == 1, "plain task means Succeeded");
	CHECK(dep("a.Succeeded && b.Failed") == 1, "outcomes");
	CHECK(dep("c.Skipped && d.Errored") == 1, "skipped and errored");
	CHECK(dep("b") == 0, "b did not succeed");
	CHECK(dep("a.Succeeded && (b.Succeeded || c.Skipped)") == 1, "parentheses");
	CHECK(dep("b.Failed || a.Failed && c.Failed") == 1, "&& before ||");
	CHECK(dep("!b") == 1, "not");
	CHECK(dep("a.Done") == -1, "unknown outcome");
	CHECK(dep("a &&") == -1, "missing operand");
	CHECK(dep("z.Failed") == -1, "unknown task from the callback");
	{
		int res;
		CHECK(pl_depends_eval("a && a.Bogus", outcome, NULL, &res, &e) < 0 && e.col == 8,
		      "outcome error at its column (%zu)", e.col);
	}
	return done_testing();
}
