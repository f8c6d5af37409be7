#include "jpath.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static int fail(struct pl_jpath_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct pl_jpath_err *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* The member of path[*i..n) up to the next unescaped dot, unescaped into
 * name; *i moves past the dot. Returns 1, 0 at the end, -1 on bad syntax. */
static int member(const char *path, size_t n, size_t *i, struct pl_buf *name,
		  struct pl_jpath_err *e)
{
	size_t j = *i;

	if (j > n)
		return 0;
	name->n = 0;
	for (; j < n && path[j] != '.'; j++) {
		if (path[j] == '\\') {
			if (j + 1 >= n || (path[j + 1] != '.' && path[j + 1] != '\\'))
				return fail(e, "'\\' in path '%.*s' must come before '.' or '\\'",
					    (int)n, path);
			j++;
		}
		pl_buf_addc(name, path[j]);
	}
	if (!name->n)
		return fail(e, "empty member in path '%.*s'", (int)n, path);
	*i = j + 1;
	return 1;
}

static int is_root(const char *path, size_t n)
{
	return n == 1 && path[0] == '.';
}

int pl_jpath_check(const char *path, size_t n, struct pl_jpath_err *e)
{
	struct pl_buf name = PL_BUF_INIT;
	size_t i = 0;
	int r;

	if (is_root(path, n))
		return 0;
	if (n == 0)
		return fail(e, "empty path");
	while ((r = member(path, n, &i, &name, e)) > 0)
		;
	pl_buf_free(&name);
	return r;
}

const char *pl_jpath_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* An array index: digits only, without leading zeros. */
static int index_of(const char *s, size_t n, size_t *idx)
{
	size_t v = 0;

	if (!n || n > 9 || (n > 1 && s[0] == '0'))
		return 0;
	for (size_t k = 0; k < n; k++) {
		if (s[k] < '0' || s[k] > '9')
			return 0;
		v = v * 10 + (size_t)(s[k] - '0');
	}
	*idx = v;
	return 1;
}

json_t *pl_jpath_get(json_t *root, const char *path, size_t n, struct pl_jpath_err *e)
{
	struct pl_buf name = PL_BUF_INIT;
	json_t *v = root;
	size_t i = 0, start = 0;
	int r;

	if (is_root(path, n))
		return root;
	if (n == 0) {
		fail(e, "empty path");
		return NULL;
	}
	/* start: where the member being looked up begins, so that path[0..start-1)
	 * names the value it is looked up in */
	while ((r = member(path, n, &i, &name, e)) > 0) {
		const char *nm = pl_buf_cstr(&name);
		int in = (int)(start ? start - 1 : 0);
		size_t idx;
		json_t *next = NULL;

		if (json_is_object(v)) {
			next = json_object_getn(v, name.p, name.n);
			if (!next) {
				if (start)
					fail(e, "no member \"%s\" in \"%.*s\"", nm, in, path);
				else
					fail(e, "no member \"%s\"", nm);
			}
		} else if (json_is_array(v)) {
			if (!index_of(name.p, name.n, &idx))
				fail(e, "\"%.*s\" is an array and \"%s\" is not an index", in, path, nm);
			else if (!(next = json_array_get(v, idx)))
				fail(e, "no element %zu in \"%.*s\", which has %zu", idx, in, path,
				     json_array_size(v));
		} else if (start) {
			fail(e, "\"%.*s\" is %s, not an object or array", in, path,
			     pl_jpath_type_name(v));
		} else {
			fail(e, "the value is %s, not an object or array", pl_jpath_type_name(v));
		}
		if (!next) {
			pl_buf_free(&name);
			return NULL;
		}
		v = next;
		start = i;
	}
	pl_buf_free(&name);
	return r < 0 ? NULL : v;
}

json_t *pl_jpath_load(const char *s, size_t n, struct pl_jpath_err *e)
{
	json_error_t je;
	json_t *v = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);

	/* jansson refuses integers past 64 bits; a reader of metrics would rather
	 * have them approximately, as every JSON reader in JavaScript does */
	if (!v && json_error_code(&je) == json_error_numeric_overflow)
		v = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
	if (!v) {
		e->col = (size_t)je.position + 1;
		fail(e, "%s", je.text);
	}
	return v;
}

void pl_jpath_put_double(struct pl_buf *b, double d)
{
	char s[40];

	if (isnan(d)) {
		pl_buf_adds(b, "NaN");
		return;
	}
	if (isinf(d)) {
		pl_buf_adds(b, d > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* jansson writes reals with 17 significant digits, so 0.81 would come out
	 * as 0.81000000000000005: take the fewest digits that read back exactly */
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(s, sizeof s, "%.*g", prec, d);
		if (strtod(s, NULL) == d)
			break;
	}
	pl_buf_adds(b, s);
}

void pl_jpath_put_json(struct pl_buf *b, const json_t *v)
{
	size_t i, klen;
	const char *key;
	json_t *x;

	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		int first = 1;
		pl_buf_addc(b, '{');
		json_object_keylen_foreach((json_t *)v, key, klen, x) {
			if (!first)
				pl_buf_addc(b, ',');
			first = 0;
			pl_json_put_str(b, key, klen);
			pl_buf_addc(b, ':');
			pl_jpath_put_json(b, x);
		}
		pl_buf_addc(b, '}');
		break;
	}
	case JSON_ARRAY:
		pl_buf_addc(b, '[');
		json_array_foreach(v, i, x) {
			if (i)
				pl_buf_addc(b, ',');
			pl_jpath_put_json(b, x);
		}
		pl_buf_addc(b, ']');
		break;
	case JSON_STRING:
		pl_json_put_str(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		pl_buf_i64(b, (int64_t)json_integer_value(v));
		break;
	case JSON_REAL:
		pl_jpath_put_double(b, json_real_value(v));
		break;
	case JSON_TRUE: pl_buf_adds(b, "true"); break;
	case JSON_FALSE: pl_buf_adds(b, "false"); break;
	default: pl_buf_adds(b, "null");
	}
}

void pl_jpath_put_text(struct pl_buf *b, const json_t *v)
{
	if (json_is_string(v))
		pl_buf_add(b, json_string_value(v), json_string_length(v));
	else
		pl_jpath_put_json(b, v);
}
