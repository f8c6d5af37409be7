/* Dotted paths into JSON values held by jansson ("scorecard.metrics.f1.value",
 * "regressions.0"), and writing those values back out as JSON or as text with
 * numbers in their shortest exact form. push-prom and notify share it.
 *
 * Ownership: pl_jpath_load returns a new reference the caller releases with
 * json_decref; pl_jpath_get returns a borrowed one, valid while its root
 * lives. The caller owns every buffer and error struct. Nothing here prints
 * or exits. */
#ifndef PL_JPATH_H
#define PL_JPATH_H

#include <stddef.h>

#include <jansson.h>

#include "buf.h"

struct pl_jpath_err {
	size_t col;		/* pl_jpath_load: 1-based column of the problem */
	char msg[256];
};

/* Path syntax: members separated by '.', where a member that is all digits
 * also indexes an array; "\." is a dot and "\\" a backslash inside a name;
 * "." alone is the whole value. Returns 0, or -1 with e->msg filled (an empty
 * member, a lone backslash). */
int pl_jpath_check(const char *path, size_t n, struct pl_jpath_err *e);

/* The value at path[0..n) in root, or NULL with e->msg saying which member is
 * missing or which value is not an object or array ('no member "acc" in
 * "scorecard.metrics"'). */
json_t *pl_jpath_get(json_t *root, const char *path, size_t n, struct pl_jpath_err *e);

/* Parse s[0..n) as one JSON value. Integers too large for 64 bits are read as
 * reals rather than refused, and "\u0000" is allowed. Returns the value, or
 * NULL with e filled. */
json_t *pl_jpath_load(const char *s, size_t n, struct pl_jpath_err *e);

/* Append d in the shortest form that reads back as the same double ("0.81",
 * "3", "1e-07"); NaN and infinities as "NaN", "+Inf" and "-Inf", Prometheus's
 * spellings (JSON has none). */
void pl_jpath_put_double(struct pl_buf *b, double d);

/* Append v as compact JSON, numbers as pl_jpath_put_double writes them. */
void pl_jpath_put_json(struct pl_buf *b, const json_t *v);

/* Append v as text: a string's contents, a number as above, true, false or
 * null as those words, an array or object as compact JSON. */
void pl_jpath_put_text(struct pl_buf *b, const json_t *v);

/* "an object", "a string", ...: for messages. */
const char *pl_jpath_type_name(const json_t *v);

#endif
