/* jpath: dotted paths into jansson values, shortest numbers, JSON and text out. */
#include <math.h>
#include <stdlib.h>

#include "jpath.h"
#include "unit.h"

static json_t *doc;

/* The text of the value at path, or "ERR: message". */
static const char *at(const char *path)
{
	static struct pl_buf b;
	struct pl_jpath_err e;
	json_t *v = pl_jpath_get(doc, path, strlen(path), &e);

	b.n = 0;
	if (v)
		pl_jpath_put_text(&b, v);
	else
		pl_buf_printf(&b, "ERR: %s", e.msg);
	return pl_buf_cstr(&b);
}

static const char *dbl(double d)
{
	static struct pl_buf b;
	b.n = 0;
	pl_jpath_put_double(&b, d);
	return pl_buf_cstr(&b);
}

static const char *json(const char *s)
{
	static struct pl_buf b;
	struct pl_jpath_err e;
	json_t *v = pl_jpath_load(s, strlen(s), &e);

	b.n = 0;
	if (!v)
		pl_buf_printf(&b, "ERR %zu: %s", e.col, e.msg);
	else
		pl_jpath_put_json(&b, v);
	json_decref(v);
	return pl_buf_cstr(&b);
}

static int check(const char *path)
{
	struct pl_jpath_err e;
	return pl_jpath_check(path, strlen(path), &e);
}

int main(void)
{
	static const char src[] =
		"{\"scorecard\":{\"suite\":\"squad/dev\",\"n\":200,\"metrics\":{"
		"\"exact_match\":{\"value\":0.81,\"ci\":[0.75,0.86]},\"recall@5\":{\"value\":1},"
		"\"a.b\":{\"value\":true},\"f1\":{\"value\":null}},\"regressions\":[\"f1\",\"bleu\"]},"
		"\"s\":\"line\\nbreak \\\"q\\\" \\u00e9\"}";
	struct pl_jpath_err e;

	doc = pl_jpath_load(src, strlen(src), &e);
	CHECK(doc != NULL, "the document loads");

	CHECK_STR(at("scorecard.suite"), "squad/dev", "a string is its contents");
	CHECK_STR(at("scorecard.n"), "200", "an integer");
	CHECK_STR(at("scorecard.metrics.exact_match.value"), "0.81", "a real, shortest");
	CHECK_STR(at("scorecard.metrics.exact_match.ci"), "[0.75,0.86]", "an array as JSON");
	CHECK_STR(at("scorecard.metrics.exact_match.ci.1"), "0.86", "an array element by index");
	CHECK_STR(at("scorecard.metrics.recall@5.value"), "1", "a name with '@'");
	CHECK_STR(at("scorecard.metrics.a\\.b.value"), "true", "an escaped dot in a name");
	CHECK_STR(at("scorecard.metrics.f1.value"), "null", "null as a word");
	CHECK_STR(at("scorecard.regressions.1"), "bleu", "the second element");
	CHECK_STR(at("s"), "line\nbreak \"q\" \xc3\xa9", "text is decoded");
	CHECK_STR(at("."), "{\"scorecard\":{\"suite\":\"squad/dev\",\"n\":200,\"metrics\":{"
		  "\"exact_match\":{\"value\":0.81,\"ci\":[0.75,0.86]},\"recall@5\":{\"value\":1},"
		  "\"a.b\":{\"value\":true},\"f1\":{\"value\":null}},\"regressions\":[\"f1\",\"bleu\"]},"
		  "\"s\":\"line\\nbreak \\\"q\\\" \xc3\xa9\"}", "'.' is the whole value, in order");

	CHECK_STR(at("nope"), "ERR: no member \"nope\"", "a missing top-level member");
	CHECK_STR(at("scorecard.metrics.acc.value"),
		  "ERR: no member \"acc\" in \"scorecard.metrics\"", "a missing nested member");
	CHECK_STR(at("scorecard.n.x"), "ERR: \"scorecard.n\" is a number, not an object or array",
		  "into a number");
	CHECK_STR(at("scorecard.regressions.5"),
		  "ERR: no element 5 in \"scorecard.regressions\", which has 2", "past an array's end");
	CHECK_STR(at("scorecard.regressions.x"),
		  "ERR: \"scorecard.regressions\" is an array and \"x\" is not an index",
		  "a name into an array");
	CHECK_STR(at("scorecard.regressions.01"),
		  "ERR: \"scorecard.regressions\" is an array and \"01\" is not an index",
		  "no leading zeros in an index");

	CHECK(check("a.b.c") == 0 && check(".") == 0 && check("a\\.b") == 0 && check("a\\\\") == 0,
	      "good paths");
	CHECK(check("") < 0 && check("a..b") < 0 && check(".a") < 0 && check("a.") < 0 &&
	      check("a\\") < 0 && check("a\\b") < 0, "bad paths");
	pl_jpath_check("a..b", 4, &e);
	CHECK_STR(e.msg, "empty member in path 'a..b'", "the message names the path");

	CHECK_STR(dbl(0.81), "0.81", "0.81");
	CHECK_STR(dbl(0.1 + 0.2), "0.30000000000000004", "a value that needs 17 digits");
	CHECK_STR(dbl(3), "3", "an integral double");
	CHECK_STR(dbl(1e-7), "1e-07", "small");
	CHECK_STR(dbl(1795354127), "1795354127", "a Unix time");
	CHECK_STR(dbl(-2.5), "-2.5", "negative");
	CHECK_STR(dbl(NAN), "NaN", "NaN as Prometheus spells it");
	CHECK_STR(dbl(INFINITY), "+Inf", "+Inf");
	CHECK_STR(dbl(-INFINITY), "-Inf", "-Inf");

	CHECK_STR(json("{\"a\":[1,2.50,\"x\\u0000y\"],\"b\":{}}"), "{\"a\":[1,2.5,\"x\\u0000y\"],\"b\":{}}",
		  "compact JSON, NUL kept");
	CHECK_STR(json("123456789012345678901234"), "1.2345678901234569e+23",
		  "an integer past 64 bits is read as a real");
	CHECK_STR(json("{\"a\":"), "ERR 6: unexpected token near end of file",
		  "a syntax error with its column");

	json_decref(doc);
	return done_testing();
}
