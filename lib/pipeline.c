/* Pipeline files: YAML to struct pl_pipeline, with every error collected
 * (see pipeline.h and docs/pipeline-format.7). */
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "buf.h"
#include "json.h"
#include "pipeline.h"
#include "tmpl.h"

#define MAX_USES_DEPTH 8

struct ld {
	struct pl_perrs *errs;
	const struct pl_load_opts *o;
	struct pl_pipeline *p;
	int uses_failed;	/* then references are not checked: they would all fail */
};

/* one parsed YAML file */
struct yf {
	struct ld *ld;
	yaml_document_t doc;
	const char *file;
};

/* --- errors -------------------------------------------------------------- */

static void adderr(struct ld *ld, struct pl_pos pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void adderr(struct ld *ld, struct pl_pos pos, const char *fmt, ...)
{
	struct pl_perrs *e = ld->errs;
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();	/* out of memory, as pl_xmalloc */
	va_end(ap);
	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 16;
		e->v = pl_xrealloc(e->v, e->cap * sizeof *e->v);
	}
	e->v[e->n].file = pl_xstrdup(pos.file ? pos.file : "-");
	e->v[e->n].line = pos.line;
	e->v[e->n].col = pos.col;
	e->v[e->n].msg = msg;
	e->n++;
}

void pl_perrs_free(struct pl_perrs *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].file);
		free(e->v[i].msg);
	}
	free(e->v);
	memset(e, 0, sizeof *e);
}

static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), d[64];

	if (lb >= 63 || la >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		d[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = d[0], tmp;
		d[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			tmp = d[j];
			size_t best = prev + (a[i - 1] != b[j - 1]);
			if (d[j] + 1 < best)
				best = d[j] + 1;
			if (d[j - 1] + 1 < best)
				best = d[j - 1] + 1;
			d[j] = best;
			prev = tmp;
		}
	}
	return d[lb];
}

/* " (did you mean 'x'?)" for the closest of names, or "" */
static const char *suggest(const char *word, const char *const *names, size_t n, char *buf,
			   size_t size)
{
	size_t best = 3, len = strlen(word);
	const char *pick = NULL;

	for (size_t i = 0; i < n; i++) {
		size_t d = distance(word, names[i]);
		if (d < best && d < len) {
			best = d;
			pick = names[i];
		}
	}
	if (!pick)
		return "";
	snprintf(buf, size, " (did you mean '%s'?)", pick);
	return buf;
}

/* --- YAML helpers -------------------------------------------------------- */

static struct pl_pos npos(struct yf *y, yaml_node_t *n)
{
	struct pl_pos p = { y->file, (int)n->start_mark.line + 1, (int)n->start_mark.column + 1 };
	return p;
}

/* Where the text of a scalar starts, for columns inside it. */
static struct pl_pos content_pos(struct yf *y, yaml_node_t *n)
{
	struct pl_pos p = npos(y, n);
	if (n->type == YAML_SCALAR_NODE && (n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
					     n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE))
		p.col++;
	if (n->type == YAML_SCALAR_NODE && (n->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
					     n->data.scalar.style == YAML_FOLDED_SCALAR_STYLE))
		p.col = -p.col;	/* no columns inside block scalars */
	return p;
}

/* The position of byte off of a string whose text starts at p. */
static struct pl_pos at(struct pl_pos p, const char *s, size_t off)
{
	if (p.col < 0) {
		p.col = -p.col;
		return p;
	}
	if (memchr(s, '\n', off))
		return p;
	p.col += (int)off;
	return p;
}

static yaml_node_t *node(struct yf *y, int id)
{
	return yaml_document_get_node(&y->doc, id);
}

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static const char *kind_name(yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE: return "a scalar";
	case YAML_SEQUENCE_NODE: return "a list";
	case YAML_MAPPING_NODE: return "a mapping";
	default: return "empty";
	}
}

static int want_map(struct yf *y, yaml_node_t *n, const char *what)
{
	if (n->type == YAML_MAPPING_NODE)
		return 1;
	adderr(y->ld, npos(y, n), "'%s' must be a mapping, not %s", what, kind_name(n));
	return 0;
}

#define FOR_PAIRS(n, pr) \
	for (yaml_node_pair_t *pr = (n)->data.mapping.pairs.start; pr < (n)->data.mapping.pairs.top; pr++)
#define FOR_ITEMS(n, it) \
	for (yaml_node_item_t *it = (n)->data.sequence.items.start; it < (n)->data.sequence.items.top; it++)

static int is_null(yaml_node_t *n)
{
	const char *s = scalar(n);
	return s && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0);
}

/* Unknown and duplicate keys of mapping n; returns 0 if any key is not a scalar. */
static void check_keys(struct yf *y, yaml_node_t *n, const char *what, const char *const *keys)
{
	size_t nkeys = 0;
	char buf[80];

	while (keys[nkeys])
		nkeys++;
	FOR_PAIRS(n, pr) {
		yaml_node_t *k = node(y, pr->key);
		const char *ks = scalar(k);
		if (!ks) {
			adderr(y->ld, npos(y, k), "a key in '%s' must be a scalar", what);
			continue;
		}
		for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < pr; q++) {
			const char *qs = scalar(node(y, q->key));
			if (qs && strcmp(qs, ks) == 0) {
				adderr(y->ld, npos(y, k), "duplicate key '%s' in '%s'", ks, what);
				break;
			}
		}
		if (!keys[0])
			continue;	/* any key */
		size_t i;
		for (i = 0; i < nkeys; i++)
			if (strcmp(keys[i], ks) == 0)
				break;
		if (i == nkeys)
			adderr(y->ld, npos(y, k), "unknown key '%s' in '%s'%s", ks, what,
			       suggest(ks, keys, nkeys, buf, sizeof buf));
	}
}

static yaml_node_t *get(struct yf *y, yaml_node_t *map, const char *key)
{
	yaml_node_t *v = NULL;

	if (map->type != YAML_MAPPING_NODE)
		return NULL;
	FOR_PAIRS(map, pr) {
		const char *ks = scalar(node(y, pr->key));
		if (ks && strcmp(ks, key) == 0 && !v)
			v = node(y, pr->value);
	}
	return v;
}

static char *get_str(struct yf *y, yaml_node_t *n, const char *what)
{
	const char *s = scalar(n);
	if (!s) {
		adderr(y->ld, npos(y, n), "'%s' must be a string, not %s", what, kind_name(n));
		return NULL;
	}
	return pl_xstrdup(s);
}

static int parse_long(const char *s, long *v)
{
	char *end;

	errno = 0;
	*v = strtol(s, &end, 10);
	return *s && !errno && !*end && !isspace((unsigned char)*s);
}

static int parse_double(const char *s, double *v)
{
	char *end;

	if (!*s || !(isdigit((unsigned char)*s) || strchr("+-.", *s)))
		return 0;
	errno = 0;
	*v = strtod(s, &end);
	return !errno && !*end;
}

static int get_long(struct yf *y, yaml_node_t *n, const char *what, long min, long *v)
{
	const char *s = scalar(n);
	if (!s || !parse_long(s, v) || *v < min) {
		adderr(y->ld, npos(y, n), "'%s' must be a whole number of at least %ld, not %s%s%s",
		       what, min, s ? "'" : "", s ? s : kind_name(n), s ? "'" : "");
		return 0;
	}
	return 1;
}

static int get_bool(struct yf *y, yaml_node_t *n, const char *what, int *v)
{
	const char *s = scalar(n);
	if (s && strcmp(s, "true") == 0)
		*v = 1;
	else if (s && strcmp(s, "false") == 0)
		*v = 0;
	else {
		adderr(y->ld, npos(y, n), "'%s' must be true or false", what);
		return 0;
	}
	return 1;
}

/* 1.5, 30s, 500ms, 5m, 2h */
static int parse_duration(const char *s, double *v)
{
	char *end;

	if (!*s || !(isdigit((unsigned char)*s) || *s == '.'))
		return 0;
	*v = strtod(s, &end);
	if (!*end || strcmp(end, "s") == 0)
		return 1;
	if (strcmp(end, "ms") == 0)
		*v /= 1000;
	else if (strcmp(end, "m") == 0)
		*v *= 60;
	else if (strcmp(end, "h") == 0)
		*v *= 3600;
	else
		return 0;
	return 1;
}

static int get_duration(struct yf *y, yaml_node_t *n, const char *what, double *v)
{
	const char *s = scalar(n);
	if (!s || !parse_duration(s, v)) {
		adderr(y->ld, npos(y, n), "'%s' must be a duration such as 30s, 500ms, 5m or 2h",
		       what);
		return 0;
	}
	return 1;
}

static int matches(const char *s, const char *pattern)
{
	regex_t re;
	int ok;

	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

/* The JSON form of a YAML node: plain scalars that look like numbers,
 * booleans or null stay bare. */
static void to_json(struct yf *y, yaml_node_t *n, struct pl_buf *b)
{
	const char *s = scalar(n);
	double d;
	int first = 1;

	if (s) {
		if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    (parse_double(s, &d) || !strcmp(s, "true") || !strcmp(s, "false") ||
		     !strcmp(s, "null")) && strcmp(s, ".") != 0 && !strchr(s, 'x') &&
		    !strstr(s, "inf") && !strstr(s, "nan"))
			pl_buf_adds(b, s);
		else
			pl_json_put_str(b, s, strlen(s));
	} else if (n->type == YAML_SEQUENCE_NODE) {
		pl_buf_addc(b, '[');
		FOR_ITEMS(n, it) {
			if (!first)
				pl_buf_addc(b, ',');
			first = 0;
			to_json(y, node(y, *it), b);
		}
		pl_buf_addc(b, ']');
	} else if (n->type == YAML_MAPPING_NODE) {
		pl_buf_addc(b, '{');
		FOR_PAIRS(n, pr) {
			const char *k = scalar(node(y, pr->key));
			if (!first)
				pl_buf_addc(b, ',');
			first = 0;
			pl_json_put_str(b, k ? k : "", k ? strlen(k) : 0);
			pl_buf_addc(b, ':');
			to_json(y, node(y, pr->value), b);
		}
		pl_buf_addc(b, '}');
	} else {
		pl_buf_adds(b, "null");
	}
}

/* A list of names: a sequence of scalars, or one scalar. */
static void get_names(struct yf *y, yaml_node_t *n, const char *what, char ***v,
		      struct pl_pos **pos, size_t *cnt)
{
	size_t k = 0, max = n->type == YAML_SEQUENCE_NODE ?
		(size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 1;

	*v = pl_xmalloc((max + 1) * sizeof **v);
	*pos = pl_xmalloc((max + 1) * sizeof **pos);
	if (scalar(n)) {
		(*v)[k] = pl_xstrdup(scalar(n));
		(*pos)[k++] = content_pos(y, n);
	} else if (n->type == YAML_SEQUENCE_NODE) {
		FOR_ITEMS(n, it) {
			yaml_node_t *m = node(y, *it);
			if (!scalar(m)) {
				adderr(y->ld, npos(y, m), "'%s' must list task names", what);
				continue;
			}
			(*v)[k] = pl_xstrdup(scalar(m));
			(*pos)[k++] = content_pos(y, m);
		}
	} else {
		adderr(y->ld, npos(y, n), "'%s' must be a list of task names", what);
	}
	*cnt = k;
}

static void get_kvs(struct yf *y, yaml_node_t *n, const char *what, struct pl_kvs *kv)
{
	if (!want_map(y, n, what))
		return;
	check_keys(y, n, what, (const char *const[]){ NULL });
	size_t max = n->data.mapping.pairs.top - n->data.mapping.pairs.start;
	kv->v = pl_xmalloc((max + 1) * sizeof *kv->v);
	FOR_PAIRS(n, pr) {
		yaml_node_t *k = node(y, pr->key), *v = node(y, pr->value);
		if (!scalar(k))
			continue;
		if (!scalar(v)) {
			adderr(y->ld, npos(y, v), "'%s.%s' must be a string, not %s", what,
			       scalar(k), kind_name(v));
			continue;
		}
		kv->v[kv->n].key = pl_xstrdup(scalar(k));
		kv->v[kv->n].val = pl_xstrdup(scalar(v));
		kv->v[kv->n].pos = content_pos(y, v);
		kv->n++;
	}
}

static void kvs_free(struct pl_kvs *kv)
{
	for (size_t i = 0; i < kv->n; i++) {
		free(kv->v[i].key);
		free(kv->v[i].val);
	}
	free(kv->v);
	memset(kv, 0, sizeof *kv);
}

/* --- tasks --------------------------------------------------------------- */

static const char *const task_keys[] = {
	"run", "needs", "depends", "when", "each", "batch", "parallelism", "retry",
	"timeout", "env", "stdin", "outputs", "cache", "min_success", "image", "resources",
	"node_selector", "tolerations", "service_account", "secrets", NULL
};
static const char *const defaults_keys[] = {
	"retry", "timeout", "env", "cache", "image", "resources", "node_selector",
	"tolerations", "service_account", "secrets", NULL
};
static const char *const on_exit_keys[] = {
	"run", "when", "retry", "timeout", "env", "outputs", "image", "resources",
	"node_selector", "tolerations", "service_account", "secrets", NULL
};

static void task_init(struct pl_task *t)
{
	memset(t, 0, sizeof *t);
	t->cache = -1;
	t->min_success = -1;
	t->k8s.gpu = -1;
}

static void task_free(struct pl_task *t)
{
	free(t->name);
	free(t->run);
	free(t->depends);
	free(t->when);
	free(t->parallelism);
	free(t->batch);
	for (size_t i = 0; i < t->nneeds; i++)
		free(t->needs[i]);
	free(t->needs);
	free(t->needs_pos);
	free(t->each.task);
	for (size_t i = 0; i < t->each.nitems; i++)
		free(t->each.items[i]);
	free(t->each.items);
	free(t->each.tmpl);
	kvs_free(&t->env);
	for (size_t i = 0; i < t->nstdin; i++)
		free(t->stdin_tasks[i]);
	free(t->stdin_tasks);
	free(t->stdin_pos);
	for (size_t i = 0; i < t->noutputs; i++) {
		free(t->outputs[i].name);
		free(t->outputs[i].field);
	}
	free(t->outputs);
	free(t->k8s.image);
	free(t->k8s.cpu);
	free(t->k8s.memory);
	free(t->k8s.service_account);
	kvs_free(&t->k8s.node_selector);
	kvs_free(&t->k8s.secrets);
	for (size_t i = 0; i < t->k8s.ntol; i++) {
		free(t->k8s.tol[i].key);
		free(t->k8s.tol[i].op);
		free(t->k8s.tol[i].value);
		free(t->k8s.tol[i].effect);
	}
	free(t->k8s.tol);
	task_init(t);
}

static void parse_retry(struct yf *y, yaml_node_t *n, struct pl_retry *r)
{
	static const char *const keys[] = { "limit", "backoff", "factor", "max", "on", NULL };
	yaml_node_t *v;

	r->set = 1;
	r->limit = 0;
	r->backoff = 1;
	r->factor = 2;
	r->max = 0;
	r->on = PL_RETRY_TRANSIENT;
	if (scalar(n)) {	/* retry: 3 */
		get_long(y, n, "retry", 0, &r->limit);
		return;
	}
	if (!want_map(y, n, "retry"))
		return;
	check_keys(y, n, "retry", keys);
	if ((v = get(y, n, "limit")))
		get_long(y, v, "retry.limit", 0, &r->limit);
	if ((v = get(y, n, "backoff")))
		get_duration(y, v, "retry.backoff", &r->backoff);
	if ((v = get(y, n, "max")))
		get_duration(y, v, "retry.max", &r->max);
	if ((v = get(y, n, "factor"))) {
		const char *s = scalar(v);
		if (!s || !parse_double(s, &r->factor) || r->factor < 1)
			adderr(y->ld, npos(y, v), "'retry.factor' must be a number of at least 1");
	}
	if ((v = get(y, n, "on"))) {
		const char *s = scalar(v);
		if (s && strcmp(s, "transient") == 0)
			r->on = PL_RETRY_TRANSIENT;
		else if (s && strcmp(s, "failure") == 0)
			r->on = PL_RETRY_FAILURE;
		else if (s && strcmp(s, "always") == 0)
			r->on = PL_RETRY_ALWAYS;
		else
			adderr(y->ld, npos(y, v), "'retry.on' must be transient, failure or always");
	}
}

static void parse_k8s(struct yf *y, yaml_node_t *n, struct pl_k8s *k)
{
	static const char *const res_keys[] = { "cpu", "memory", "gpu", NULL };
	static const char *const tol_keys[] = { "key", "operator", "value", "effect", NULL };
	yaml_node_t *v, *r;

	if ((v = get(y, n, "image")) && (k->image = get_str(y, v, "image")) && !*k->image)
		adderr(y->ld, npos(y, v), "'image' must not be empty");
	if ((v = get(y, n, "service_account")) &&
	    (k->service_account = get_str(y, v, "service_account")) &&
	    !matches(k->service_account, "^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"))
		adderr(y->ld, npos(y, v), "'service_account' must be a Kubernetes name "
		       "(lowercase letters, digits, '-' and '.'), not '%s'", k->service_account);
	if ((v = get(y, n, "resources")) && want_map(y, v, "resources")) {
		check_keys(y, v, "resources", res_keys);
		if ((r = get(y, v, "cpu")) && (k->cpu = get_str(y, r, "resources.cpu")) &&
		    !matches(k->cpu, "^([0-9]+(\\.[0-9]+)?|\\.[0-9]+|[0-9]+m)$"))
			adderr(y->ld, npos(y, r), "'resources.cpu' must be cores such as '2', '0.5' "
			       "or '500m', not '%s'", k->cpu);
		if ((r = get(y, v, "memory")) && (k->memory = get_str(y, r, "resources.memory")) &&
		    !matches(k->memory, "^[0-9]+(\\.[0-9]+)?([KMGTPE]i?|k)?$"))
			adderr(y->ld, npos(y, r), "'resources.memory' must be bytes such as '256Mi' "
			       "or '1Gi', not '%s'", k->memory);
		if ((r = get(y, v, "gpu")))
			get_long(y, r, "resources.gpu", 0, &k->gpu);
	}
	if ((v = get(y, n, "node_selector")))
		get_kvs(y, v, "node_selector", &k->node_selector);
	if ((v = get(y, n, "secrets"))) {
		get_kvs(y, v, "secrets", &k->secrets);
		for (size_t i = 0; i < k->secrets.n; i++) {
			struct pl_kv *kv = &k->secrets.v[i];
			if (!matches(kv->key, "^[A-Za-z_][A-Za-z0-9_]*$"))
				adderr(y->ld, kv->pos, "secret variable '%s' is not a valid "
				       "environment variable name", kv->key);
			if (!matches(kv->val, "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[-._a-zA-Z0-9]+$"))
				adderr(y->ld, kv->pos, "secret '%s' must be SECRET-NAME/KEY", kv->val);
		}
	}
	if ((v = get(y, n, "tolerations"))) {
		k->tol_set = 1;
		if (v->type != YAML_SEQUENCE_NODE) {
			adderr(y->ld, npos(y, v), "'tolerations' must be a list of mappings");
			return;
		}
		k->tol = pl_xmalloc((v->data.sequence.items.top - v->data.sequence.items.start + 1) *
				    sizeof *k->tol);
		FOR_ITEMS(v, it) {
			yaml_node_t *m = node(y, *it), *f;
			struct pl_toleration *t = &k->tol[k->ntol];
			if (!want_map(y, m, "tolerations"))
				continue;
			memset(t, 0, sizeof *t);
			k->ntol++;
			check_keys(y, m, "tolerations", tol_keys);
			if ((f = get(y, m, "key")))
				t->key = get_str(y, f, "tolerations.key");
			if ((f = get(y, m, "value")))
				t->value = get_str(y, f, "tolerations.value");
			if ((f = get(y, m, "operator")) && (t->op = get_str(y, f, "tolerations.operator")) &&
			    strcmp(t->op, "Exists") != 0 && strcmp(t->op, "Equal") != 0)
				adderr(y->ld, npos(y, f), "'tolerations.operator' must be Exists or "
				       "Equal, not '%s'", t->op);
			if (f && t->op && strcmp(t->op, "Exists") == 0 && t->value)
				adderr(y->ld, npos(y, f), "a toleration with operator Exists takes no value");
			if ((f = get(y, m, "effect")) && (t->effect = get_str(y, f, "tolerations.effect")) &&
			    strcmp(t->effect, "NoSchedule") != 0 &&
			    strcmp(t->effect, "PreferNoSchedule") != 0 &&
			    strcmp(t->effect, "NoExecute") != 0)
				adderr(y->ld, npos(y, f), "'tolerations.effect' must be NoSchedule, "
				       "PreferNoSchedule or NoExecute, not '%s'", t->effect);
		}
	}
}

static void parse_each(struct yf *y, yaml_node_t *n, struct pl_each *e)
{
	static const char *const range_keys[] = { "from", "to", "step", NULL };
	yaml_node_t *v;
	const char *s = scalar(n);

	e->pos = content_pos(y, n);
	if (s) {
		if (pl_tmpl_has(s)) {
			e->kind = PL_EACH_TMPL;
			e->tmpl = pl_xstrdup(s);
		} else {
			e->kind = PL_EACH_TASK;
			e->task = pl_xstrdup(s);
		}
	} else if (n->type == YAML_SEQUENCE_NODE) {
		struct pl_buf b = PL_BUF_INIT;
		e->kind = PL_EACH_LIST;
		e->items = pl_xmalloc((n->data.sequence.items.top - n->data.sequence.items.start + 1) *
				      sizeof *e->items);
		FOR_ITEMS(n, it) {
			yaml_node_t *m = node(y, *it);
			if (m->type == YAML_SEQUENCE_NODE) {
				adderr(y->ld, npos(y, m), "an item of 'each' must be a scalar or a mapping");
				continue;
			}
			b.n = 0;
			if (scalar(m))
				pl_buf_adds(&b, scalar(m));
			else
				to_json(y, m, &b);
			e->items[e->nitems++] = pl_xstrndup(b.p ? b.p : "", b.n);
		}
		pl_buf_free(&b);
	} else if (n->type == YAML_MAPPING_NODE) {
		e->kind = PL_EACH_RANGE;
		e->from = 0;
		e->step = 1;
		check_keys(y, n, "each", range_keys);
		if ((v = get(y, n, "from")))
			get_long(y, v, "each.from", -(1L << 40), &e->from);
		if ((v = get(y, n, "to")))
			get_long(y, v, "each.to", -(1L << 40), &e->to);
		else
			adderr(y->ld, npos(y, n), "a range in 'each' needs 'to'");
		if ((v = get(y, n, "step")) && get_long(y, v, "each.step", -(1L << 40), &e->step) &&
		    e->step == 0)
			adderr(y->ld, npos(y, v), "'each.step' must not be 0");
	}
}

static void parse_outputs(struct yf *y, yaml_node_t *n, struct pl_task *t)
{
	static const char *const keys[] = { "json", "lines", NULL };

	if (!want_map(y, n, "outputs"))
		return;
	check_keys(y, n, "outputs", (const char *const[]){ NULL });
	t->outputs = pl_xmalloc((n->data.mapping.pairs.top - n->data.mapping.pairs.start + 1) *
				sizeof *t->outputs);
	FOR_PAIRS(n, pr) {
		yaml_node_t *k = node(y, pr->key), *v = node(y, pr->value), *f;
		struct pl_output *o = &t->outputs[t->noutputs];
		if (!scalar(k) || !want_map(y, v, "outputs"))
			continue;
		check_keys(y, v, "outputs", keys);
		if (v->data.mapping.pairs.top - v->data.mapping.pairs.start != 1) {
			adderr(y->ld, npos(y, v), "output '%s' must have one of 'json' or 'lines'",
			       scalar(k));
			continue;
		}
		o->field = NULL;
		if ((f = get(y, v, "json"))) {
			o->kind = PL_OUTPUT_JSON;
			if (!(o->field = get_str(y, f, "outputs.json")))
				continue;
		} else if ((f = get(y, v, "lines"))) {
			const char *s = scalar(f);
			if (s && strcmp(s, "last") == 0)
				o->kind = PL_OUTPUT_LAST;
			else if (s && strcmp(s, "first") == 0)
				o->kind = PL_OUTPUT_FIRST;
			else if (s && strcmp(s, "all") == 0)
				o->kind = PL_OUTPUT_ALL;
			else if (s && strcmp(s, "count") == 0)
				o->kind = PL_OUTPUT_COUNT;
			else {
				adderr(y->ld, npos(y, f), "'outputs.lines' must be first, last, all "
				       "or count");
				continue;
			}
		} else {
			continue;
		}
		o->name = pl_xstrdup(scalar(k));
		t->noutputs++;
	}
}

/* a whole number of at least 1, or a template that gives one */
static char *get_count(struct yf *y, yaml_node_t *v, const char *what, struct pl_pos *pos)
{
	char *s = get_str(y, v, what);
	long x;

	if (!s)
		return NULL;
	*pos = content_pos(y, v);
	if (!pl_tmpl_has(s) && (!parse_long(s, &x) || x < 1))
		adderr(y->ld, npos(y, v), "'%s' must be a whole number of at least 1 or a "
		       "template, not '%s'", what, s);
	return s;
}

static void parse_task(struct yf *y, yaml_node_t *n, struct pl_task *t, const char *what,
		       const char *const *keys)
{
	yaml_node_t *v;

	if (!want_map(y, n, what))
		return;
	check_keys(y, n, what, keys);
	if ((v = get(y, n, "run")) && (t->run = get_str(y, v, "run")))
		t->run_pos = content_pos(y, v);
	if ((v = get(y, n, "depends")) && (t->depends = get_str(y, v, "depends")))
		t->depends_pos = content_pos(y, v);
	if ((v = get(y, n, "when")) && (t->when = get_str(y, v, "when")))
		t->when_pos = content_pos(y, v);
	if ((v = get(y, n, "needs")))
		get_names(y, v, "needs", &t->needs, &t->needs_pos, &t->nneeds);
	if ((v = get(y, n, "each")))
		parse_each(y, v, &t->each);
	if ((v = get(y, n, "batch")))
		t->batch = get_count(y, v, "batch", &t->batch_pos);
	if ((v = get(y, n, "parallelism")))
		t->parallelism = get_count(y, v, "parallelism", &t->parallelism_pos);
	if ((v = get(y, n, "retry")))
		parse_retry(y, v, &t->retry);
	if ((v = get(y, n, "timeout")))
		get_duration(y, v, "timeout", &t->timeout);
	if ((v = get(y, n, "env")))
		get_kvs(y, v, "env", &t->env);
	if ((v = get(y, n, "stdin"))) {
		if (scalar(v) && strcmp(scalar(v), "none") == 0) {
			t->stdin_kind = PL_STDIN_NONE;
		} else {
			t->stdin_kind = PL_STDIN_LIST;
			get_names(y, v, "stdin", &t->stdin_tasks, &t->stdin_pos, &t->nstdin);
		}
	}
	if ((v = get(y, n, "outputs")))
		parse_outputs(y, v, t);
	if ((v = get(y, n, "cache")))
		get_bool(y, v, "cache", &t->cache);
	if ((v = get(y, n, "min_success"))) {
		const char *s = scalar(v);
		double d;
		size_t len = s ? strlen(s) : 0;
		int pct = len && s[len - 1] == '%';
		char *tmp = s ? pl_xstrndup(s, len - pct) : NULL;
		if (!tmp || !parse_double(tmp, &d) || d <= 0 || (pct && d > 100) ||
		    (!pct && d > 1 && d != (long)d) || (!pct && d < 1 && !strchr(tmp, '.')))
			adderr(y->ld, npos(y, v), "'min_success' must be a count (3), a fraction "
			       "(0.9) or a percentage (90%%)");
		else {
			/* "1.0" and "100%" are all the items, "1" is one item */
			t->min_success = pct ? d / 100 : d;
			t->min_success_fraction = pct || strchr(tmp, '.') != NULL;
		}
		free(tmp);
	}
	parse_k8s(y, n, &t->k8s);
}

/* --- params -------------------------------------------------------------- */

static const char *const type_names[] = { "string", "int", "number", "bool", "json" };

static void param_free(struct pl_param *p)
{
	free(p->name);
	free(p->help);
	free(p->def);
	free(p->value);
	for (size_t i = 0; i < p->nenum; i++)
		free(p->enumv[i]);
	free(p->enumv);
}

static void parse_param(struct yf *y, yaml_node_t *k, yaml_node_t *n, struct pl_param *p)
{
	static const char *const keys[] = { "default", "help", "required", "type", "enum", NULL };
	struct pl_buf b = PL_BUF_INIT;
	yaml_node_t *v;

	memset(p, 0, sizeof *p);
	p->name = pl_xstrdup(scalar(k));
	p->pos = npos(y, k);
	if (!matches(p->name, "^[A-Za-z_][-A-Za-z0-9_]*$"))
		adderr(y->ld, p->pos, "bad param name '%s'", p->name);
	if (n->type != YAML_MAPPING_NODE) {	/* name: default */
		v = n;
		goto def;
	}
	check_keys(y, n, "params", keys);
	if ((v = get(y, n, "help")))
		p->help = get_str(y, v, "help");
	if ((v = get(y, n, "required")))
		get_bool(y, v, "required", &p->required);
	if ((v = get(y, n, "type"))) {
		const char *s = scalar(v);
		size_t i;
		for (i = 0; s && i < 5; i++)
			if (strcmp(s, type_names[i]) == 0)
				break;
		if (!s || i == 5)
			adderr(y->ld, npos(y, v), "'type' must be string, int, number, bool or json");
		else
			p->type = i;
	}
	if ((v = get(y, n, "enum"))) {
		if (v->type != YAML_SEQUENCE_NODE) {
			adderr(y->ld, npos(y, v), "'enum' must be a list of values");
		} else {
			p->enumv = pl_xmalloc((v->data.sequence.items.top -
					       v->data.sequence.items.start + 1) * sizeof *p->enumv);
			FOR_ITEMS(v, it) {
				yaml_node_t *m = node(y, *it);
				if (scalar(m))
					p->enumv[p->nenum++] = pl_xstrdup(scalar(m));
				else
					adderr(y->ld, npos(y, m), "'enum' values must be scalars");
			}
		}
	}
	v = get(y, n, "default");
def:
	if (v && !is_null(v)) {
		if (scalar(v)) {
			p->def = pl_xstrdup(scalar(v));
		} else {
			to_json(y, v, &b);
			p->def = pl_xstrndup(b.p, b.n);
			if (n->type != YAML_MAPPING_NODE || !get(y, n, "type"))
				p->type = PL_PT_JSON;
		}
		p->def_pos = npos(y, v);
	}
	pl_buf_free(&b);
}

/* NULL if value suits p, else what is wrong. */
static const char *param_check(const struct pl_param *p, const char *value, char *buf, size_t size)
{
	long l;
	double d;
	enum pl_jtype jt;
	struct pl_jerr je;

	switch (p->type) {
	case PL_PT_STRING:
		break;
	case PL_PT_INT:
		if (!parse_long(value, &l))
			return "an int";
		break;
	case PL_PT_NUMBER:
		if (!parse_double(value, &d))
			return "a number";
		break;
	case PL_PT_BOOL:
		if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
			return "true or false";
		break;
	case PL_PT_JSON:
		if (pl_json_validate(value, strlen(value), &jt, &je) < 0)
			return "JSON";
		break;
	}
	if (p->nenum) {
		size_t i, n = 0;
		for (i = 0; i < p->nenum; i++)
			if (strcmp(p->enumv[i], value) == 0)
				return NULL;
		n += snprintf(buf + n, size - n, "one of ");
		for (i = 0; i < p->nenum && n < size; i++)
			n += snprintf(buf + n, size - n, "%s%s", i ? ", " : "", p->enumv[i]);
		return buf;
	}
	return NULL;
}

/* --- files and uses ------------------------------------------------------ */

static const char *const top_keys[] = {
	"name", "description", "params", "defaults", "tasks", "on_exit", "uses", "with",
	"parallelism", NULL
};

static const char *keep_file(struct ld *ld, const char *path)
{
	struct pl_pipeline *p = ld->p;
	p->files = pl_xrealloc(p->files, (p->nfiles + 1) * sizeof *p->files);
	p->files[p->nfiles] = pl_xstrdup(path);
	return p->files[p->nfiles++];
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The file a `uses:` names, looked up beside the using file, then in each
 * search directory; NULL if none. */
static char *resolve(struct ld *ld, const char *from, const char *name)
{
	struct pl_buf b = PL_BUF_INIT;
	const char *slash = strrchr(from, '/');

	if (name[0] == '/')
		return exists(name) ? pl_xstrdup(name) : NULL;
	if (slash)
		pl_buf_add(&b, from, slash - from + 1);
	pl_buf_adds(&b, name);
	if (exists(pl_buf_cstr(&b)))
		return b.p;
	for (size_t i = 0; i < ld->o->nsearch; i++) {
		b.n = 0;
		pl_buf_printf(&b, "%s/%s", ld->o->search[i], name);
		if (exists(pl_buf_cstr(&b)))
			return b.p;
	}
	pl_buf_free(&b);
	return NULL;
}

static void merge_k8s(struct pl_k8s *dst, struct pl_k8s *src)
{
#define TAKE(f) do { if (src->f) { free(dst->f); dst->f = src->f; src->f = NULL; } } while (0)
	TAKE(image);
	TAKE(cpu);
	TAKE(memory);
	TAKE(service_account);
	if (src->gpu >= 0)
		dst->gpu = src->gpu;
	if (src->node_selector.n) {
		kvs_free(&dst->node_selector);
		dst->node_selector = src->node_selector;
		memset(&src->node_selector, 0, sizeof src->node_selector);
	}
	if (src->secrets.n) {
		kvs_free(&dst->secrets);
		dst->secrets = src->secrets;
		memset(&src->secrets, 0, sizeof src->secrets);
	}
	if (src->tol_set) {	/* swap, so src's free releases dst's old list */
		struct pl_toleration *t = dst->tol;
		size_t nt = dst->ntol;
		dst->tol = src->tol;
		dst->ntol = src->ntol;
		dst->tol_set = 1;
		src->tol = t;
		src->ntol = nt;
	}
#undef TAKE
}

static int load_file(struct ld *ld, const char *path, int depth, struct pl_pos from);

static void parse_doc(struct ld *ld, struct yf *y, int depth)
{
	struct pl_pipeline *p = ld->p;
	yaml_node_t *root = yaml_document_get_root_node(&y->doc), *v, *with;
	size_t template_params = 0;
	int uses_failed = 0;
	char buf[200];

	if (!root || is_null(root)) {
		adderr(ld, (struct pl_pos){ y->file, 1, 1 }, "empty pipeline file");
		return;
	}
	if (!want_map(y, root, "pipeline"))
		return;
	check_keys(y, root, "pipeline", top_keys);
	with = get(y, root, "with");
	if ((v = get(y, root, "uses"))) {
		const char *s = scalar(v);
		char *found = s ? resolve(ld, y->file, s) : NULL;
		if (!s)
			adderr(ld, npos(y, v), "'uses' must be a file name");
		else if (!found)
			adderr(ld, npos(y, v), "pipeline '%s' not found beside '%s' or in the search "
			       "path (-I, PLUMB_PIPELINES)", s, y->file);
		else if (depth >= MAX_USES_DEPTH)
			adderr(ld, npos(y, v), "'uses' nested too deep at '%s'", s);
		else
			uses_failed = load_file(ld, found, depth + 1, npos(y, v)) < 0;
		uses_failed |= !found || !s;
		ld->uses_failed |= uses_failed;
		free(found);
		for (size_t i = 0; i < p->ntasks; i++)
			p->tasks[i].from_template = 1;
		template_params = p->nparams;
	} else if (with) {
		adderr(ld, npos(y, with), "'with' needs 'uses'");
	}
	if (with && !uses_failed && want_map(y, with, "with")) {
		const char **names = pl_xmalloc((template_params + 1) * sizeof *names);
		for (size_t i = 0; i < template_params; i++)
			names[i] = p->params[i].name;
		check_keys(y, with, "with", (const char *const[]){ NULL });
		FOR_PAIRS(with, pr) {
			yaml_node_t *k = node(y, pr->key), *val = node(y, pr->value);
			const char *ks = scalar(k);
			size_t i;
			if (!ks)
				continue;
			for (i = 0; i < template_params; i++)
				if (strcmp(p->params[i].name, ks) == 0)
					break;
			if (i == template_params) {
				adderr(ld, npos(y, k), "unknown param '%s' in 'with'%s", ks,
				       suggest(ks, names, template_params, buf, sizeof buf));
				continue;
			}
			struct pl_buf b = PL_BUF_INIT;
			if (scalar(val))
				pl_buf_adds(&b, scalar(val));
			else
				to_json(y, val, &b);
			free(p->params[i].def);
			p->params[i].def = pl_xstrndup(b.p ? b.p : "", b.n);
			p->params[i].def_pos = npos(y, val);
			pl_buf_free(&b);
		}
		free(names);
	}
	if ((v = get(y, root, "name"))) {
		free(p->name);
		p->name = get_str(y, v, "name");
	}
	if ((v = get(y, root, "description"))) {
		free(p->description);
		p->description = get_str(y, v, "description");
	}
	if ((v = get(y, root, "parallelism")))
		get_long(y, v, "parallelism", 1, &p->parallelism);
	if ((v = get(y, root, "params")) && want_map(y, v, "params")) {
		check_keys(y, v, "params", (const char *const[]){ NULL });
		FOR_PAIRS(v, pr) {
			yaml_node_t *k = node(y, pr->key);
			size_t i;
			if (!scalar(k))
				continue;
			for (i = 0; i < p->nparams; i++)
				if (strcmp(p->params[i].name, scalar(k)) == 0)
					break;
			if (i < p->nparams) {
				if (i < template_params)
					adderr(ld, npos(y, k), "param '%s' is defined by the pipeline "
					       "this one uses (set it with 'with')", scalar(k));
				continue;
			}
			p->params = pl_xrealloc(p->params, (p->nparams + 1) * sizeof *p->params);
			parse_param(y, k, node(y, pr->value), &p->params[p->nparams++]);
		}
	}
	if ((v = get(y, root, "defaults"))) {
		struct pl_task d;
		task_init(&d);
		parse_task(y, v, &d, "defaults", defaults_keys);
		if (d.retry.set)
			p->defaults.retry = d.retry;
		if (d.timeout > 0)
			p->defaults.timeout = d.timeout;
		if (d.cache >= 0)
			p->defaults.cache = d.cache;
		if (d.env.n) {
			kvs_free(&p->defaults.env);
			p->defaults.env = d.env;
			memset(&d.env, 0, sizeof d.env);
		}
		merge_k8s(&p->defaults.k8s, &d.k8s);
		task_free(&d);
	}
	if ((v = get(y, root, "tasks")) && want_map(y, v, "tasks")) {
		check_keys(y, v, "tasks", (const char *const[]){ NULL });
		FOR_PAIRS(v, pr) {
			yaml_node_t *k = node(y, pr->key);
			const char *ks = scalar(k);
			struct pl_task *t;
			if (!ks)
				continue;
			if (!matches(ks, "^[A-Za-z0-9_][-A-Za-z0-9_]*$")) {
				adderr(ld, npos(y, k), "bad task name '%s' (letters, digits, '-' "
				       "and '_')", ks);
				continue;
			}
			if ((t = pl_pipeline_task(p, ks))) {
				if (!t->from_template)
					continue;	/* a duplicate key, reported */
				task_free(t);	/* the using file replaces a template's task */
			} else {
				p->tasks = pl_xrealloc(p->tasks, (p->ntasks + 1) * sizeof *p->tasks);
				t = &p->tasks[p->ntasks++];
			}
			task_init(t);
			t->name = pl_xstrdup(ks);
			t->pos = npos(y, k);
			parse_task(y, node(y, pr->value), t, ks, task_keys);
		}
	} else if (!v && !p->ntasks && !ld->uses_failed) {
		adderr(ld, npos(y, root), "a pipeline needs 'tasks'");
	}
	if ((v = get(y, root, "on_exit"))) {
		if (p->on_exit)
			task_free(p->on_exit);
		else
			p->on_exit = pl_xmalloc(sizeof *p->on_exit);
		task_init(p->on_exit);
		p->on_exit->name = pl_xstrdup("on_exit");
		p->on_exit->pos = npos(y, v);
		parse_task(y, v, p->on_exit, "on_exit", on_exit_keys);
	}
}

static int load_file(struct ld *ld, const char *path, int depth, struct pl_pos from)
{
	struct yf y = { .ld = ld };
	yaml_parser_t parser;
	FILE *f;
	int rc = -1;

	y.file = keep_file(ld, path);
	for (size_t i = 0; i + 1 < ld->p->nfiles; i++)
		if (strcmp(ld->p->files[i], path) == 0) {
			adderr(ld, from, "pipeline '%s' uses itself", path);
			return -1;
		}
	if (!(f = fopen(path, "r"))) {
		adderr(ld, from.file ? from : (struct pl_pos){ y.file, 0, 0 }, "cannot open '%s': %s",
		       path, strerror(errno));
		return -1;
	}
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &y.doc)) {
		struct pl_pos p = { y.file, (int)parser.problem_mark.line + 1,
				    (int)parser.problem_mark.column + 1 };
		adderr(ld, p, "yaml: %s%s%s", parser.problem ? parser.problem : "syntax error",
		       parser.context ? " " : "", parser.context ? parser.context : "");
		goto out;
	}
	parse_doc(ld, &y, depth);
	yaml_document_delete(&y.doc);
	rc = 0;
out:
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

/* --- checks after loading ------------------------------------------------ */

struct pl_task *pl_pipeline_task(const struct pl_pipeline *p, const char *name)
{
	for (size_t i = 0; i < p->ntasks; i++)
		if (p->tasks[i].name && strcmp(p->tasks[i].name, name) == 0)
			return &p->tasks[i];
	return NULL;
}

static struct pl_task *task_n(const struct pl_pipeline *p, const char *name, size_t n)
{
	for (size_t i = 0; i < p->ntasks; i++)
		if (p->tasks[i].name && strlen(p->tasks[i].name) == n &&
		    memcmp(p->tasks[i].name, name, n) == 0)
			return &p->tasks[i];
	return NULL;
}

const char *pl_pipeline_param(const struct pl_pipeline *p, const char *name)
{
	for (size_t i = 0; i < p->nparams; i++)
		if (strcmp(p->params[i].name, name) == 0)
			return p->params[i].value;
	return NULL;
}

static const char *task_suggest(const struct pl_pipeline *p, const char *name, size_t n,
				char *buf, size_t size)
{
	const char **names = pl_xmalloc((p->ntasks + 1) * sizeof *names);
	char *w = pl_xstrndup(name, n);
	const char *s;

	for (size_t i = 0; i < p->ntasks; i++)
		names[i] = p->tasks[i].name;
	s = suggest(w, names, p->ntasks, buf, size);
	free(names);
	free(w);
	return s;
}

static void apply_params(struct ld *ld)
{
	struct pl_pipeline *p = ld->p;
	const char **names = pl_xmalloc((p->nparams + 1) * sizeof *names);
	struct pl_pos top = { p->nfiles ? p->files[0] : "-", 1, 1 };
	char buf[300], sug[80];

	for (size_t i = 0; i < p->nparams; i++)
		names[i] = p->params[i].name;
	for (size_t i = 0; i < ld->o->noverrides; i++) {
		const char *kv = ld->o->overrides[i], *eqs = strchr(kv, '=');
		size_t j;
		if (!eqs) {
			adderr(ld, top, "-p '%s' must be NAME=VALUE", kv);
			continue;
		}
		for (j = 0; j < p->nparams; j++)
			if (strlen(p->params[j].name) == (size_t)(eqs - kv) &&
			    memcmp(p->params[j].name, kv, eqs - kv) == 0)
				break;
		if (j == p->nparams) {
			char *w = pl_xstrndup(kv, eqs - kv);
			adderr(ld, top, "-p '%s': unknown param '%s'%s", kv, w,
			       suggest(w, names, p->nparams, sug, sizeof sug));
			free(w);
			continue;
		}
		free(p->params[j].value);
		p->params[j].value = pl_xstrdup(eqs + 1);
	}
	for (size_t i = 0; i < p->nparams; i++) {
		struct pl_param *pa = &p->params[i];
		const char *what;
		int from_cli = pa->value != NULL;
		if (!pa->value && pa->def)
			pa->value = pl_xstrdup(pa->def);
		if (!pa->value) {
			if (pa->required)
				adderr(ld, pa->pos, "param '%s' is required (set it with -p %s=VALUE)",
				       pa->name, pa->name);
			continue;
		}
		if ((what = param_check(pa, pa->value, buf, sizeof buf))) {
			if (from_cli)
				adderr(ld, pa->pos, "-p '%s=%s': param '%s' must be %s", pa->name,
				       pa->value, pa->name, what);
			else
				adderr(ld, pa->def_pos.file ? pa->def_pos : pa->pos, "param '%s' must "
				       "be %s, not '%s'", pa->name, what, pa->value);
		}
	}
	free(names);
}

static void kvs_copy_missing(struct pl_kvs *dst, const struct pl_kvs *src)
{
	for (size_t i = 0; i < src->n; i++) {
		size_t j;
		for (j = 0; j < dst->n; j++)
			if (strcmp(dst->v[j].key, src->v[i].key) == 0)
				break;
		if (j < dst->n)
			continue;
		dst->v = pl_xrealloc(dst->v, (dst->n + 1) * sizeof *dst->v);
		dst->v[dst->n] = src->v[i];
		dst->v[dst->n].key = pl_xstrdup(src->v[i].key);
		dst->v[dst->n].val = pl_xstrdup(src->v[i].val);
		dst->n++;
	}
}

static void inherit(struct pl_task *t, const struct pl_task *d)
{
#define DUP(f) do { if (!t->k8s.f && d->k8s.f) t->k8s.f = pl_xstrdup(d->k8s.f); } while (0)
	if (!t->retry.set)
		t->retry = d->retry;
	if (t->timeout <= 0)
		t->timeout = d->timeout;
	if (t->cache < 0)
		t->cache = d->cache > 0;
	kvs_copy_missing(&t->env, &d->env);
	DUP(image);
	DUP(cpu);
	DUP(memory);
	DUP(service_account);
	if (t->k8s.gpu < 0)
		t->k8s.gpu = d->k8s.gpu;
	if (!t->k8s.node_selector.n)
		kvs_copy_missing(&t->k8s.node_selector, &d->k8s.node_selector);
	if (!t->k8s.secrets.n)
		kvs_copy_missing(&t->k8s.secrets, &d->k8s.secrets);
	if (!t->k8s.tol_set && d->k8s.ntol) {
		t->k8s.tol = pl_xmalloc(d->k8s.ntol * sizeof *t->k8s.tol);
		for (size_t i = 0; i < d->k8s.ntol; i++) {
			const struct pl_toleration *s = &d->k8s.tol[i];
			t->k8s.tol[i].key = s->key ? pl_xstrdup(s->key) : NULL;
			t->k8s.tol[i].op = s->op ? pl_xstrdup(s->op) : NULL;
			t->k8s.tol[i].value = s->value ? pl_xstrdup(s->value) : NULL;
			t->k8s.tol[i].effect = s->effect ? pl_xstrdup(s->effect) : NULL;
		}
		t->k8s.ntol = d->k8s.ntol;
	}
	t->k8s.tol_set = 1;
#undef DUP
}

/* The dependency graph: task index -> indices it waits for. */
struct graph {
	size_t **dep, *ndep;
};

static void add_edge(struct graph *g, size_t from, size_t to)
{
	for (size_t i = 0; i < g->ndep[from]; i++)
		if (g->dep[from][i] == to)
			return;
	g->dep[from] = pl_xrealloc(g->dep[from], (g->ndep[from] + 1) * sizeof **g->dep);
	g->dep[from][g->ndep[from]++] = to;
}

static int reaches(const struct pl_pipeline *p, const struct graph *g, size_t from, size_t to,
		   char *seen)
{
	if (seen[from])
		return 0;
	seen[from] = 1;
	for (size_t i = 0; i < g->ndep[from]; i++)
		if (g->dep[from][i] == to || reaches(p, g, g->dep[from][i], to, seen))
			return 1;
	return 0;
}

struct dctx {
	struct ld *ld;
	struct pl_pipeline *p;
	struct pl_task *t;
	struct graph *g;
	size_t self;
	const char *s;
	struct pl_pos pos;
	int on_exit, bad;
};

static int dep_ref(void *ctx, const char *task, size_t n, size_t col, struct pl_texpr_err *e)
{
	struct dctx *c = ctx;
	struct pl_task *u = task_n(c->p, task, n);
	char sug[80];

	if (!u) {
		adderr(c->ld, at(c->pos, c->s, col - 1), "unknown task '%.*s' in 'depends'%s",
		       (int)n, task, task_suggest(c->p, task, n, sug, sizeof sug));
		c->bad = 1;
	} else {
		add_edge(c->g, c->self, u - c->p->tasks);
	}
	return PL_OUT_SUCCEEDED;
}

/* Checks one {{ref}} and stands in for it with as many 'X' as it is long, so
 * that columns in a `when` stay those of the file. */
static int tmpl_ref(void *ctx, const char *ref, size_t n, size_t col, struct pl_buf *out,
		    struct pl_texpr_err *e)
{
	struct dctx *c = ctx;
	struct pl_tref r;
	struct pl_pos pos = at(c->pos, c->s, col - 1);
	const char *close = strstr(c->s + col - 1, "}}");
	char sug[80];

	for (const char *q = c->s + col - 1; q < close + 2; q++)
		pl_buf_addc(out, 'X');
	if (pl_tref_parse(ref, n, &r, e) < 0) {
		adderr(c->ld, pos, "%s", e->msg);
		return 0;
	}
	switch (r.kind) {
	case PL_TREF_PARAM: {
		size_t i;
		for (i = 0; i < c->p->nparams; i++)
			if (strlen(c->p->params[i].name) == r.alen &&
			    memcmp(c->p->params[i].name, r.a, r.alen) == 0)
				break;
		if (i == c->p->nparams) {
			const char **names = pl_xmalloc((c->p->nparams + 1) * sizeof *names);
			char *w = pl_xstrndup(r.a, r.alen);
			for (i = 0; i < c->p->nparams; i++)
				names[i] = c->p->params[i].name;
			adderr(c->ld, pos, "unknown param '%s'%s", w,
			       suggest(w, names, c->p->nparams, sug, sizeof sug));
			free(w);
			free(names);
		}
		break;
	}
	case PL_TREF_ITEM:
		if (!c->t || c->t->each.kind == PL_EACH_NONE)
			adderr(c->ld, pos, "'{{%.*s}}' outside a task with 'each'", (int)n, ref);
		break;
	case PL_TREF_OUTPUT:
	case PL_TREF_STATUS: {
		struct pl_task *u = task_n(c->p, r.a, r.alen);
		if (!u) {
			adderr(c->ld, pos, "unknown task '%.*s' in '{{%.*s}}'%s", (int)r.alen, r.a,
			       (int)n, ref, task_suggest(c->p, r.a, r.alen, sug, sizeof sug));
			break;
		}
		if (r.kind == PL_TREF_OUTPUT) {
			size_t i;
			for (i = 0; i < u->noutputs; i++)
				if (strlen(u->outputs[i].name) == r.blen &&
				    memcmp(u->outputs[i].name, r.b, r.blen) == 0)
					break;
			if (i == u->noutputs)
				adderr(c->ld, pos, "task '%s' has no output '%.*s'", u->name,
				       (int)r.blen, r.b);
		}
		if (c->on_exit || !c->t)
			break;
		size_t to = u - c->p->tasks;
		char *seen = calloc(c->p->ntasks, 1);
		if (to == c->self || !reaches(c->p, c->g, c->self, to, seen))
			adderr(c->ld, pos, "task '%s' uses '{{%.*s}}' but does not depend on '%s'",
			       c->t->name, (int)n, ref, u->name);
		free(seen);
		break;
	}
	case PL_TREF_RUN_ID:
		break;
	case PL_TREF_RUN_STATUS:
	case PL_TREF_RUN_FAILURES:
		if (!c->on_exit)
			adderr(c->ld, pos, "'{{%.*s}}' is only known in 'on_exit'", (int)n, ref);
		break;
	}
	return 0;
}

/* Check the templates of s; the text with placeholders goes to out. */
static int check_tmpl(struct dctx *c, const char *s, struct pl_pos pos, struct pl_buf *out)
{
	struct pl_texpr_err e = { 0 };

	c->s = s;
	c->pos = pos;
	out->n = 0;
	if (pl_tmpl_expand(s, tmpl_ref, c, out, &e) < 0) {
		adderr(c->ld, at(pos, s, e.col - 1), "%s", e.msg);
		return -1;
	}
	pl_buf_cstr(out);
	return 0;
}

/* params only: the expansion, for values known at lint time */
static int param_ref(void *ctx, const char *ref, size_t n, size_t col, struct pl_buf *out,
		     struct pl_texpr_err *e)
{
	struct pl_pipeline *p = ctx;
	struct pl_tref r;
	char name[128];

	if (pl_tref_parse(ref, n, &r, e) < 0 || r.kind != PL_TREF_PARAM || r.alen >= sizeof name)
		return -1;
	memcpy(name, r.a, r.alen);
	name[r.alen] = 0;
	const char *v = pl_pipeline_param(p, name);
	if (!v)
		return -1;
	pl_buf_adds(out, v);
	return 0;
}

static void check_count(struct dctx *c, struct pl_task *t, const char *what, const char *s,
			struct pl_pos pos)
{
	struct pl_buf b = PL_BUF_INIT;
	struct pl_texpr_err e = { 0 };
	long x;

	if (s && pl_tmpl_has(s) && check_tmpl(c, s, pos, &b) == 0) {
		b.n = 0;
		if (pl_tmpl_expand(s, param_ref, c->p, &b, &e) == 0 &&
		    (!parse_long(pl_buf_cstr(&b), &x) || x < 1))
			adderr(c->ld, pos, "'%s' of task '%s' must be a whole number of at least 1, "
			       "not '%s'", what, t->name, b.p);
	}
	pl_buf_free(&b);
}

static void check_task(struct dctx *c, struct pl_task *t)
{
	struct pl_buf b = PL_BUF_INIT;
	struct pl_texpr_err e = { 0 };
	int r;

	c->t = t;
	if (!t->run)
		adderr(c->ld, t->pos, "task '%s' has no 'run'", t->name);
	else
		check_tmpl(c, t->run, t->run_pos, &b);
	if (t->when && check_tmpl(c, t->when, t->when_pos, &b) == 0 &&
	    pl_when_eval(b.p, 1, &r, &e) < 0)
		adderr(c->ld, at(t->when_pos, t->when, e.col - 1), "bad 'when': %s", e.msg);
	check_count(c, t, "parallelism", t->parallelism, t->parallelism_pos);
	check_count(c, t, "batch", t->batch, t->batch_pos);
	for (size_t i = 0; i < t->env.n; i++)
		check_tmpl(c, t->env.v[i].val, t->env.v[i].pos, &b);
	if (t->each.kind == PL_EACH_TMPL && check_tmpl(c, t->each.tmpl, t->each.pos, &b) == 0) {
		enum pl_jtype jt;
		struct pl_jerr je;
		b.n = 0;
		if (pl_tmpl_expand(t->each.tmpl, param_ref, c->p, &b, &e) == 0 &&
		    (pl_json_validate(b.p ? b.p : "", b.n, &jt, &je) < 0 || jt != PL_JARR))
			adderr(c->ld, t->each.pos, "'each' of task '%s' must be a JSON array, "
			       "not '%s'", t->name, pl_buf_cstr(&b));
	}
	pl_buf_free(&b);
}

static void check_refs(struct ld *ld, struct graph *g)
{
	struct pl_pipeline *p = ld->p;
	char sug[80];

	for (size_t i = 0; i < p->ntasks; i++) {
		struct pl_task *t = &p->tasks[i];
		struct dctx c = { ld, p, t, g, i, NULL, { 0 }, 0, 0 };
		for (size_t j = 0; j < t->nneeds; j++) {
			struct pl_task *u = pl_pipeline_task(p, t->needs[j]);
			if (!u)
				adderr(ld, t->needs_pos[j], "unknown task '%s' in 'needs'%s",
				       t->needs[j], task_suggest(p, t->needs[j], strlen(t->needs[j]),
								 sug, sizeof sug));
			else
				add_edge(g, i, u - p->tasks);
		}
		if (t->each.kind == PL_EACH_TASK) {
			struct pl_task *u = pl_pipeline_task(p, t->each.task);
			if (!u)
				adderr(ld, t->each.pos, "unknown task '%s' in 'each'%s", t->each.task,
				       task_suggest(p, t->each.task, strlen(t->each.task), sug,
						    sizeof sug));
			else
				add_edge(g, i, u - p->tasks);
		}
		if (t->depends) {
			struct pl_texpr_err e = { 0 };
			int r;
			c.s = t->depends;
			c.pos = t->depends_pos;
			if (pl_depends_eval(t->depends, dep_ref, &c, &r, &e) < 0 && !c.bad)
				adderr(ld, at(t->depends_pos, t->depends, e.col - 1),
				       "bad 'depends': %s", e.msg);
		}
	}
	/* stdin names only tasks it waits for */
	for (size_t i = 0; i < p->ntasks; i++) {
		struct pl_task *t = &p->tasks[i];
		for (size_t j = 0; j < t->nstdin; j++) {
			struct pl_task *u = pl_pipeline_task(p, t->stdin_tasks[j]);
			size_t k;
			if (!u) {
				adderr(ld, t->stdin_pos[j], "unknown task '%s' in 'stdin'%s",
				       t->stdin_tasks[j], task_suggest(p, t->stdin_tasks[j],
					strlen(t->stdin_tasks[j]), sug, sizeof sug));
				continue;
			}
			for (k = 0; k < g->ndep[i]; k++)
				if (g->dep[i][k] == (size_t)(u - p->tasks))
					break;
			if (k == g->ndep[i])
				adderr(ld, t->stdin_pos[j], "task '%s' reads 'stdin' from '%s' but does "
				       "not wait for it (add it to 'needs')", t->name, u->name);
		}
	}
}

static void check_cycles(struct ld *ld, struct graph *g)
{
	struct pl_pipeline *p = ld->p;
	char *color = calloc(p->ntasks + 1, 1);
	size_t *stack = pl_xmalloc((p->ntasks + 1) * sizeof *stack), *edge;
	size_t sp;

	edge = calloc(p->ntasks + 1, sizeof *edge);
	for (size_t s = 0; s < p->ntasks; s++) {
		if (color[s])
			continue;
		sp = 0;
		stack[sp++] = s;
		color[s] = 1;
		while (sp) {
			size_t u = stack[sp - 1];
			if (edge[u] == g->ndep[u]) {
				color[u] = 2;
				sp--;
				continue;
			}
			size_t v = g->dep[u][edge[u]++];
			if (color[v] == 0) {
				color[v] = 1;
				stack[sp++] = v;
			} else if (color[v] == 1) {
				/* stack holds v ... u, each waiting for the next: print it
				 * in running order, from v's upstream to v */
				struct pl_buf b = PL_BUF_INIT;
				size_t k = sp;
				while (stack[k - 1] != v)
					k--;
				pl_buf_adds(&b, p->tasks[v].name);
				for (size_t j = sp; j-- > k - 1;)
					pl_buf_printf(&b, " -> %s", p->tasks[stack[j]].name);
				adderr(ld, p->tasks[v].pos, "cycle: %s", pl_buf_cstr(&b));
				pl_buf_free(&b);
			}
		}
	}
	free(color);
	free(stack);
	free(edge);
}

static void check(struct ld *ld)
{
	struct pl_pipeline *p = ld->p;
	struct graph g;

	g.dep = calloc(p->ntasks + 1, sizeof *g.dep);
	g.ndep = calloc(p->ntasks + 1, sizeof *g.ndep);
	apply_params(ld);
	for (size_t i = 0; i < p->ntasks; i++)
		inherit(&p->tasks[i], &p->defaults);
	if (p->on_exit)
		inherit(p->on_exit, &p->defaults);
	check_refs(ld, &g);
	check_cycles(ld, &g);
	for (size_t i = 0; i < p->ntasks; i++) {
		struct dctx c = { ld, p, NULL, &g, i, NULL, { 0 }, 0, 0 };
		check_task(&c, &p->tasks[i]);
	}
	if (p->on_exit) {
		struct dctx c = { ld, p, NULL, &g, 0, NULL, { 0 }, 1, 0 };
		check_task(&c, p->on_exit);
	}
	for (size_t i = 0; i < p->ntasks; i++)
		free(g.dep[i]);
	free(g.dep);
	free(g.ndep);
}

static int errcmp(const void *a, const void *b)
{
	const struct pl_perr *x = a, *y = b;
	int c = strcmp(x->file, y->file);
	if (c)
		return c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x < y ? -1 : x > y;
}

int pl_pipeline_load(const char *path, const struct pl_load_opts *o,
		     struct pl_pipeline **out, struct pl_perrs *errs)
{
	static const struct pl_load_opts none;
	struct pl_pipeline *p = calloc(1, sizeof *p);
	struct ld ld = { errs, o ? o : &none, p, 0 };
	size_t before = errs->n;

	if (!p)
		abort();
	task_init(&p->defaults);
	p->defaults.name = pl_xstrdup("defaults");
	if (load_file(&ld, path, 0, (struct pl_pos){ NULL, 0, 0 }) == 0 && !ld.uses_failed)
		check(&ld);
	/* sorted by position, but a file's errors stay together */
	if (errs->n > before) {
		/* stable: errcmp breaks ties by address, which is insertion order */
		qsort(errs->v + before, errs->n - before, sizeof *errs->v, errcmp);
		pl_pipeline_free(p);
		*out = NULL;
		return -1;
	}
	*out = p;
	return 0;
}

void pl_pipeline_free(struct pl_pipeline *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->description);
	for (size_t i = 0; i < p->nparams; i++)
		param_free(&p->params[i]);
	free(p->params);
	task_free(&p->defaults);
	for (size_t i = 0; i < p->ntasks; i++)
		task_free(&p->tasks[i]);
	free(p->tasks);
	if (p->on_exit) {
		task_free(p->on_exit);
		free(p->on_exit);
	}
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->files[i]);
	free(p->files);
	free(p);
}
