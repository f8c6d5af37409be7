/* Pipeline files (docs/pipeline-format.7): pl_pipeline_load reads a YAML file
 * with libyaml, follows `uses:` along a search path, applies -p overrides,
 * lets tasks inherit `defaults`, and checks everything, collecting every
 * error found (not only the first) into a struct pl_perrs.
 *
 * Ownership: pl_pipeline_load returns a pipeline the caller frees with
 * pl_pipeline_free; every string and array in it belongs to it. The caller
 * owns the struct pl_perrs and frees its contents with pl_perrs_free.
 * Nothing here prints or exits. */
#ifndef PL_PIPELINE_H
#define PL_PIPELINE_H

#include <stddef.h>

struct pl_pos {
	const char *file;	/* owned by the pipeline (or by the errors list) */
	int line, col;		/* 1-based */
};

struct pl_perr {
	char *file;
	int line, col;
	char *msg;		/* lowercase, no full stop, subject in quotes */
};

struct pl_perrs {
	struct pl_perr *v;
	size_t n, cap;
};

void pl_perrs_free(struct pl_perrs *e);

enum pl_ptype { PL_PT_STRING, PL_PT_INT, PL_PT_NUMBER, PL_PT_BOOL, PL_PT_JSON };

struct pl_param {
	char *name, *help, *def;	/* def NULL: no default */
	char *value;			/* after -p and with:, or NULL if unset */
	int required;
	enum pl_ptype type;
	char **enumv;
	size_t nenum;
	struct pl_pos pos, def_pos;
};

struct pl_kv {
	char *key, *val;
	struct pl_pos pos;
};

struct pl_kvs {
	struct pl_kv *v;
	size_t n;
};

enum pl_retry_on { PL_RETRY_TRANSIENT, PL_RETRY_FAILURE, PL_RETRY_ALWAYS };

struct pl_retry {
	int set;
	long limit;			/* extra attempts */
	double backoff, factor, max;	/* seconds, multiplier, seconds (0: no cap) */
	enum pl_retry_on on;
};

struct pl_toleration {
	char *key, *op, *value, *effect;
};

struct pl_k8s {
	char *image, *cpu, *memory, *service_account;	/* NULL: unset */
	long gpu;					/* -1: unset */
	struct pl_kvs node_selector;
	struct pl_kvs secrets;		/* ENV: secret-name/key */
	struct pl_toleration *tol;
	size_t ntol;
	int tol_set;
};

enum pl_each_kind { PL_EACH_NONE, PL_EACH_TASK, PL_EACH_LIST, PL_EACH_TMPL, PL_EACH_RANGE };

struct pl_each {
	enum pl_each_kind kind;
	char *task;		/* PL_EACH_TASK: stream over its output lines */
	char **items;		/* PL_EACH_LIST: scalars as text, maps as JSON objects */
	size_t nitems;
	char *tmpl;		/* PL_EACH_TMPL: expands to a JSON array */
	long from, to, step;	/* PL_EACH_RANGE: from, from+step, ... < to */
	struct pl_pos pos;
};

enum pl_stdin_kind { PL_STDIN_NEEDS, PL_STDIN_NONE, PL_STDIN_LIST };

enum pl_output_kind { PL_OUTPUT_JSON, PL_OUTPUT_LAST, PL_OUTPUT_FIRST, PL_OUTPUT_ALL,
		      PL_OUTPUT_COUNT };

struct pl_output {
	char *name;
	enum pl_output_kind kind;
	char *field;		/* PL_OUTPUT_JSON: top-level field of the last JSON line */
};

struct pl_task {
	char *name;
	struct pl_pos pos;
	char *run, *depends, *when;			/* NULL: unset */
	char *parallelism, *batch;	/* a number or a template of params; NULL: unset */
	struct pl_pos run_pos, depends_pos, when_pos, parallelism_pos, batch_pos;
	char **needs;
	struct pl_pos *needs_pos;
	size_t nneeds;
	struct pl_each each;
	struct pl_retry retry;
	double timeout;		/* seconds; 0: none */
	struct pl_kvs env;
	enum pl_stdin_kind stdin_kind;
	char **stdin_tasks;
	struct pl_pos *stdin_pos;
	size_t nstdin;
	struct pl_output *outputs;
	size_t noutputs;
	int cache;		/* -1 unset, 0, 1 */
	double min_success;	/* -1 unset; else a count, or a fraction */
	int min_success_fraction;	/* written as 0.9, 1.0 or 90%: a fraction of the items */
	struct pl_k8s k8s;
	int from_template;	/* defined by a file this one uses */
};

struct pl_pipeline {
	char *name, *description;
	long parallelism;	/* whole pipeline; 0: unlimited */
	struct pl_param *params;
	size_t nparams;
	struct pl_task defaults;
	struct pl_task *tasks;	/* in file order */
	size_t ntasks;
	struct pl_task *on_exit;	/* or NULL */
	char **files;		/* every file read: positions point here */
	size_t nfiles;
};

struct pl_load_opts {
	const char *const *search;	/* directories for uses:, in order */
	size_t nsearch;
	const char *const *overrides;	/* "name=value" from -p */
	size_t noverrides;
};

/* Load and check path. Returns 0 with *out set, or -1 with errors appended
 * to errs; *out is then NULL. */
int pl_pipeline_load(const char *path, const struct pl_load_opts *o,
		     struct pl_pipeline **out, struct pl_perrs *errs);
void pl_pipeline_free(struct pl_pipeline *p);

/* The task named name, or NULL. */
struct pl_task *pl_pipeline_task(const struct pl_pipeline *p, const char *name);
/* The value of param name, or NULL. */
const char *pl_pipeline_param(const struct pl_pipeline *p, const char *name);

#endif
