/* Lazy JSON: validate one JSON text and index the members of its top-level
 * object as byte ranges into the caller's buffer, without building a tree.
 * A filter that needs two fields reads them and copies the rest verbatim.
 *
 * Ownership: struct pl_jobj holds pointers into the caller's line and an array
 * it allocates; pl_jobj_free releases that array. The line must outlive every
 * member looked up in it. Nothing here prints or exits. */
#ifndef PL_JSON_H
#define PL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum pl_jtype {
	PL_JNULL, PL_JFALSE, PL_JTRUE, PL_JNUM, PL_JSTR, PL_JARR, PL_JOBJ
};

struct pl_jmember {
	const char *key;	/* raw key bytes between the quotes (maybe escaped) */
	size_t keylen;
	const char *val;	/* raw value bytes; for strings, including the quotes */
	size_t vallen;
	unsigned char type;	/* enum pl_jtype */
	unsigned char key_esc;	/* key contains a backslash escape */
	unsigned char val_esc;	/* string value contains a backslash escape */
};

struct pl_jobj {
	struct pl_jmember *m;
	size_t n, cap;
};

struct pl_jerr {
	size_t offset;		/* byte offset of the problem in the text */
	char msg[80];
};

#define PL_JSON_MAXDEPTH 512

/* Validate s[0..n) as exactly one JSON object (whitespace around it allowed)
 * and index its top-level members into o. Returns 0, or -1 with e filled. */
int pl_json_scan_object(const char *s, size_t n, struct pl_jobj *o, struct pl_jerr *e);

/* Validate s[0..n) as exactly one JSON value of any type. */
int pl_json_validate(const char *s, size_t n, enum pl_jtype *type, struct pl_jerr *e);

void pl_jobj_free(struct pl_jobj *o);

/* Whether m's key is key (escaped keys compared decoded). */
int pl_jmember_key_is(const struct pl_jmember *m, const char *key);

/* The last member named key, or NULL. */
const struct pl_jmember *pl_jobj_get(const struct pl_jobj *o, const char *key);

/* Decoding flags for pl_json_str_decode. */
#define PL_JSTR_REPLACE 1	/* lone surrogate escapes become U+FFFD instead of an error */

/* Append the decoded contents of a JSON string (raw bytes between the quotes,
 * already validated) to out. Returns 0, or -1 with e filled on a lone
 * surrogate escape (unless PL_JSTR_REPLACE). */
int pl_json_str_decode(const char *raw, size_t n, struct pl_buf *out, int flags,
		       struct pl_jerr *e);

/* The decoded string value of m: points into the line when it has no escapes,
 * else into scratch (reset first). Returns 0, or -1 if m is not a string or it
 * holds a lone surrogate. */
int pl_jmember_str(const struct pl_jmember *m, struct pl_buf *scratch,
		   const char **s, size_t *n, int flags, struct pl_jerr *e);

/* The value of m as a signed 64-bit integer. Returns 0, or -1 if it is not an
 * integral JSON number in range. */
int pl_jmember_i64(const struct pl_jmember *m, int64_t *v);

/* Append s[0..n) (valid UTF-8) as a quoted, escaped JSON string. */
void pl_json_put_str(struct pl_buf *b, const char *s, size_t n);

/* Append "key": with key a plain ASCII literal needing no escapes. */
static inline void pl_json_put_key(struct pl_buf *b, const char *key)
{
	pl_buf_addc(b, '"');
	pl_buf_adds(b, key);
	pl_buf_add(b, "\":", 2);
}

/* Append [v0,v1,…] with 8 significant digits per value (exact for the
 * vectors plumb stores, whose float32 values need at most 9), the same text on
 * every machine. Non-finite values are written as 0. */
void pl_json_put_floats(struct pl_buf *b, const float *v, size_t n);

/* Append a member's raw "key":value exactly as it appeared. */
void pl_json_put_member(struct pl_buf *b, const struct pl_jmember *m);

/* Append ',' and the raw member for each member of o whose key is not in
 * skip (NULL-terminated): what passes through when a program writes its own
 * fields. */
void pl_json_put_others(struct pl_buf *b, const struct pl_jobj *o, const char *const *skip);

#endif
