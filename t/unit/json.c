/* Unit tests for lib/json.c: the lazy scanner, string decoding and encoding. */
#include <math.h>
#include <stdlib.h>

#include "json.h"
#include "unit.h"

static int scan(const char *s, struct pl_jobj *o, struct pl_jerr *e)
{
	return pl_json_scan_object(s, strlen(s), o, e);
}

static void bad(const char *s, size_t col, const char *msg)
{
	struct pl_jobj o = { 0 };
	struct pl_jerr e = { 0 };
	int r = scan(s, &o, &e);
	CHECK(r < 0 && e.offset + 1 == col && strstr(e.msg, msg),
	      "rejects %s at column %zu (%s) [got column %zu: %s]", s, col, msg, e.offset + 1, e.msg);
	pl_jobj_free(&o);
}

static void good(const char *s)
{
	struct pl_jobj o = { 0 };
	struct pl_jerr e = { 0 };
	CHECK(scan(s, &o, &e) == 0, "accepts %s (%s)", s, e.msg);
	pl_jobj_free(&o);
}

int main(void)
{
	struct pl_jobj o = { 0 };
	struct pl_jerr e;
	struct pl_buf b = PL_BUF_INIT;
	const struct pl_jmember *m;
	const char *s;
	size_t n;
	int64_t v;

	const char *line = " {\"id\":\"a\\/b\",\"n\":-12,\"meta\":{\"x\":[1,2.5e3,true,null]},"
			   "\"t\":\"caf\xc3\xa9\\n\\u00e9\\ud83d\\ude00\", \"id\" : \"last\"} ";
	CHECK(scan(line, &o, &e) == 0, "scans a mixed object");
	CHECK(o.n == 5, "indexes five top-level members (got %zu)", o.n);
	m = pl_jobj_get(&o, "id");
	CHECK(m && pl_jmember_str(m, &b, &s, &n, 0, &e) == 0 && n == 4 && !memcmp(s, "last", 4),
	      "a duplicate key gives the last value");
	m = pl_jobj_get(&o, "meta");
	CHECK(m && m->type == PL_JOBJ && m->vallen == strlen("{\"x\":[1,2.5e3,true,null]}"),
	      "a nested object is one raw range");
	m = pl_jobj_get(&o, "n");
	CHECK(m && pl_jmember_i64(m, &v) == 0 && v == -12, "reads an integer");
	m = pl_jobj_get(&o, "t");
	CHECK(m && pl_jmember_str(m, &b, &s, &n, 0, &e) == 0 &&
	      n == strlen("caf\xc3\xa9\n\xc3\xa9\xf0\x9f\x98\x80") &&
	      !memcmp(s, "caf\xc3\xa9\n\xc3\xa9\xf0\x9f\x98\x80", n),
	      "decodes escapes and surrogate pairs");
	CHECK(pl_jobj_get(&o, "missing") == NULL, "a missing key is NULL");

	CHECK(scan("{\"\\u0069d\":1}", &o, &e) == 0 && pl_jobj_get(&o, "id"), "finds an escaped key");
	CHECK(scan("{\"t\":\"\\ud800x\"}", &o, &e) == 0, "a lone surrogate escape scans");
	m = pl_jobj_get(&o, "t");
	CHECK(pl_jmember_str(m, &b, &s, &n, 0, &e) < 0 && strstr(e.msg, "lone surrogate"),
	      "but does not decode");
	CHECK(pl_jmember_str(m, &b, &s, &n, PL_JSTR_REPLACE, &e) == 0 && n == 4 &&
	      !memcmp(s, "\xef\xbf\xbdx", 4), "unless replaced by U+FFFD");

	good("{}");
	good("{\"a\":[]}");
	good("{\"a\":[{},[],\"\",0,-0.5,1E+2]}");
	good("{\"a\":\"\xf4\x8f\xbf\xbf\"}");
	bad("", 1, "empty line");
	bad("[1]", 1, "expected a JSON object");
	bad("{\"a\":1,}", 8, "expected a string key");
	bad("{\"a\" 1}", 6, "expected ':'");
	bad("{\"a\":01}", 7, "expected ','");
	bad("{\"a\":1.}", 8, "invalid number");
	bad("{\"a\":tru}", 6, "invalid literal");
	bad("{\"a\":\"x", 8, "unterminated string");
	bad("{\"a\":\"\\x\"}", 7, "invalid escape");
	bad("{\"a\":\"\\u12g4\"}", 7, "invalid \\u escape");
	bad("{\"a\":\"\x01\"}", 7, "control character");
	bad("{\"a\":\"\xc3\x28\"}", 7, "invalid UTF-8");
	bad("{\"a\":\"\xed\xa0\x80\"}", 7, "invalid UTF-8");
	bad("{\"a\":\"\xc0\xaf\"}", 7, "invalid UTF-8");
	bad("{\"a\":\"\xf4\x90\x80\x80\"}", 7, "invalid UTF-8");
	bad("{\"a\":1} x", 9, "trailing characters");
	bad("{\"a\":1", 7, "unexpected end");

	/* nesting past the limit is an error, not a stack overflow */
	size_t depth = PL_JSON_MAXDEPTH + 10;
	char *deep = malloc(depth * 2 + 16);
	strcpy(deep, "{\"a\":");
	for (size_t i = 0; i < depth; i++)
		strcat(deep, "[");
	CHECK(scan(deep, &o, &e) < 0 && strstr(e.msg, "too deep"), "limits nesting depth");
	free(deep);

	/* encoding */
	b.n = 0;
	pl_json_put_str(&b, "a\"b\\c\n\x01\x1f/\xc3\xa9 long enough to use the wide path \"", strlen("a\"b\\c\n\x01\x1f/\xc3\xa9 long enough to use the wide path \""));
	CHECK_STR(pl_buf_cstr(&b), "\"a\\\"b\\\\c\\n\\u0001\\u001f/\xc3\xa9 long enough to use the wide path \\\"\"",
		  "escapes quotes, backslashes and control characters");

	/* round trip: every byte value that may appear in a string */
	struct pl_buf raw = PL_BUF_INIT, enc = PL_BUF_INIT, dec = PL_BUF_INIT;
	for (int c = 1; c < 128; c++)
		pl_buf_addc(&raw, (char)c);
	pl_buf_adds(&raw, "\xe2\x82\xac\xf0\x9f\x98\x80");
	pl_buf_addc(&enc, '{');
	pl_json_put_key(&enc, "s");
	pl_json_put_str(&enc, raw.p, raw.n);
	pl_buf_addc(&enc, '}');
	CHECK(pl_json_scan_object(enc.p, enc.n, &o, &e) == 0, "encoded output scans");
	m = pl_jobj_get(&o, "s");
	CHECK(m && pl_jmember_str(m, &dec, &s, &n, 0, &e) == 0 && n == raw.n && !memcmp(s, raw.p, n),
	      "and decodes to the same bytes");

	/* floats: 8 significant digits, and they read back to the same float32 */
	float fv[] = { 0.0f, 1.0f, -0.5f, 0.123456789f, -0.0001234f, 123456.7f, 3e-7f, 2.5e9f, 0.1f };
	b.n = 0;
	pl_json_put_floats(&b, fv, sizeof fv / sizeof fv[0]);
	CHECK_STR(pl_buf_cstr(&b), "[0,1,-0.5,0.12345679,-0.00012339999,123456.7,3.0000001e-07,2.5e+09,0.1]",
		  "writes floats with 8 significant digits");
	int roundtrip = 1;
	for (int i = 0; i < 100000; i++) {
		float x = (float)(i - 50000) / 37171.0f, y;
		b.n = 0;
		pl_json_put_floats(&b, &x, 1);
		sscanf(pl_buf_cstr(&b) + 1, "%f", &y);
		if (fabsf(x - y) > fabsf(x) * 1e-7f)
			roundtrip = 0;
	}
	CHECK(roundtrip, "written floats read back within 1e-7 relative");

	enum pl_jtype t;
	CHECK(pl_json_validate(" 12 ", 4, &t, &e) == 0 && t == PL_JNUM, "validates a bare number");
	CHECK(pl_json_validate("[1,", 3, &t, &e) < 0, "rejects a truncated array");

	pl_buf_free(&b);
	pl_buf_free(&raw);
	pl_buf_free(&enc);
	pl_buf_free(&dec);
	pl_jobj_free(&o);
	return done_testing();
}
