/* Templates and expressions of pipeline files (docs/pipeline-format.7):
 * {{...}} substitution through a caller's lookup, the `when` evaluator
 * (comparisons, =~, &&, ||, !, parentheses, after substitution, as Argo's
 * `when`) and the `depends` evaluator over task outcomes.
 *
 * Ownership: the caller owns every buffer and error struct passed in; nothing
 * here allocates anything the caller must free. Nothing here prints or exits.
 * Columns in errors are 1-based byte offsets into the string given. */
#ifndef PL_TMPL_H
#define PL_TMPL_H

#include <stddef.h>

#include "buf.h"

struct pl_texpr_err {
	size_t col;		/* 1-based column of the problem in the string */
	char msg[160];
};

/* --- {{ref}} templates -------------------------------------------------- */

enum pl_tref_kind {
	PL_TREF_PARAM,		/* params.NAME (a = NAME) */
	PL_TREF_ITEM,		/* item, or item.FIELD (a = FIELD, empty for item) */
	PL_TREF_OUTPUT,		/* tasks.T.outputs.X (a = T, b = X) */
	PL_TREF_STATUS,		/* tasks.T.status (a = T) */
	PL_TREF_RUN_ID,		/* run.id */
	PL_TREF_RUN_STATUS,	/* run.status */
	PL_TREF_RUN_FAILURES	/* run.failures */
};

struct pl_tref {
	enum pl_tref_kind kind;
	const char *a, *b;	/* point into the reference; not NUL-terminated */
	size_t alen, blen;
};

/* Classify the reference ref[0..n) (the text between the braces, spaces
 * trimmed). Returns 0, or -1 with e->msg filled (e->col is left alone). */
int pl_tref_parse(const char *ref, size_t n, struct pl_tref *r, struct pl_texpr_err *e);

/* Called for each {{ref}} of a template: ref[0..n) is trimmed, col is the
 * column of its opening braces. Returns 0, or -1 to stop with e filled. */
typedef int (*pl_tmpl_fn)(void *ctx, const char *ref, size_t n, size_t col,
			  struct pl_buf *out, struct pl_texpr_err *e);

/* Append s with every {{ref}} replaced by what fn appends to out; {{"text"}}
 * is text (so {{"{{"}} writes a literal {{, for programs that have templates
 * of their own). Returns 0,
 * or -1 with e filled: an unclosed "{{", an empty reference, or fn's error. */
int pl_tmpl_expand(const char *s, pl_tmpl_fn fn, void *ctx, struct pl_buf *out,
		   struct pl_texpr_err *e);

/* Whether s contains "{{". */
int pl_tmpl_has(const char *s);

/* --- when ------------------------------------------------------------- */

/* Evaluate a substituted `when` expression. With check set, only the syntax
 * and the regular expressions are checked and a lone operand need not be
 * true or false (templates stand for values not known yet). Returns 0 with
 * *result 0 or 1, or -1 with e filled. */
int pl_when_eval(const char *expr, int check, int *result, struct pl_texpr_err *e);

/* --- depends ------------------------------------------------------------ */

enum pl_outcome {
	PL_OUT_SUCCEEDED, PL_OUT_FAILED, PL_OUT_SKIPPED, PL_OUT_ERRORED,
	PL_OUT_PENDING		/* not finished: every test on it is false */
};

/* The outcome of task[0..n) (referenced at column col), or -1 with e->msg
 * filled if there is no such task. */
typedef int (*pl_outcome_fn)(void *ctx, const char *task, size_t n, size_t col,
			     struct pl_texpr_err *e);

/* Evaluate a depends expression: TASK or TASK.Succeeded|Failed|Skipped|
 * Errored, with &&, ||, ! and parentheses; plain TASK means TASK.Succeeded.
 * fn is called for every reference, left to right, without short-circuit,
 * so a checker sees them all. Returns 0 with *result, or -1 with e filled. */
int pl_depends_eval(const char *expr, pl_outcome_fn fn, void *ctx, int *result,
		    struct pl_texpr_err *e);

#endif
