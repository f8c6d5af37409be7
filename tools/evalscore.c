/* evalscore: score eval records, write per-item scores and a scorecard;
 * compare with a baseline scorecard and gate (docs/evalscore.1). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>

#include "chat.h"
#include "cli.h"
#include "evstats.h"
#include "textmetrics.h"

static const char usage[] =
	"evalscore -m METRIC[,METRIC...] [--pred FIELD] [--ref FIELD] [--id FIELD]\n"
	"[--assert TYPE:VALUE] [--rouge-stem] [--lowercase] [--match doc_id|id]\n"
	"[--rubric-cmd CMD] [--judge-model NAME] [--judge-prompt FILE] [--judge-scale MIN:MAX]\n"
	"[--judge-pattern ERE] [--base-url URL] [--api-key-file FILE] [--concurrency N]\n"
	"[--cache redis://...|DIR] [--timeout SECONDS] [--retries N]\n"
	"[--bootstrap N] [--seed N] [--baseline FILE] [--tolerance [METRIC=]X] [--alpha P]\n"
	"[--gate EXPR] [--suite NAME] [--model NAME] [--format json|table|markdown|prometheus]\n"
	"[--items] [--slim] [--skip-errors] [--keep-going] [--rejects FILE] [file ...]";

static const char help[] =
	"\nScore eval records (from infer or search): per-item scores with --items,\n"
	"then a scorecard with 95% bootstrap intervals, a baseline comparison and gates.\n\n"
	"  -m, --metrics LIST  metrics (PLUMB_EVAL_METRICS): exact_match f1 bleu chrf chrf++\n"
	"                      rouge1 rouge2 rougeL rougeLsum accuracy classification\n"
	"                      {precision,recall,f1}_{macro,micro,weighted} contains icontains\n"
	"                      regex json recall@K precision@K hit_rate@K mrr ndcg@K\n"
	"                      retrieval@K latency latency_pNN latency_mean tokens rubric judge\n"
	"  --pred FIELD        the prediction (PLUMB_EVAL_PRED, output)\n"
	"  --ref FIELD         the reference(s) (PLUMB_EVAL_REF; default the first of\n"
	"                      references, reference, answers, label)\n"
	"  --id FIELD          the item id (id)\n"
	"  --assert T:VALUE    a check for every record: contains, icontains, regex (ERE)\n"
	"  --rouge-stem        Porter-stem tokens for ROUGE; --lowercase: BLEU/chrF lowercased\n"
	"  --match KEY         retrieval: compare \"expected\" with hits' doc_id (default) or id\n"
	"  --rubric-cmd CMD    run CMD per record (the record on its stdin); it prints a score\n"
	"  --judge-model NAME  LLM-as-judge through a chat-completions server (PLUMB_JUDGE_MODEL)\n"
	"  --judge-prompt F    the judge's prompt template (PLUMB_JUDGE_PROMPT)\n"
	"  --judge-scale A:B   valid judge scores (1:5); --judge-pattern ERE extracts the score\n"
	"  --base-url URL      judge: the API root (OPENAI_BASE_URL, https://api.openai.com/v1)\n"
	"  --api-key-file F    judge: read the key from F (else OPENAI_API_KEY)\n"
	"  --concurrency N     judge: requests in flight (PLUMB_JUDGE_CONCURRENCY, 4)\n"
	"  --cache SPEC        judge: replies in redis://host:port[/db] or a directory (PLUMB_JUDGE_CACHE)\n"
	"  --timeout S, --retries N   judge: per request (PLUMB_TIMEOUT, 600) and tries (5)\n"
	"  --bootstrap N       resamples for intervals and the paired test (PLUMB_EVAL_BOOTSTRAP, 1000)\n"
	"  --seed N            of the resampling (PLUMB_EVAL_SEED, 12345)\n"
	"  --baseline FILE     a previous scorecard to compare with (PLUMB_EVAL_BASELINE)\n"
	"  --tolerance [M=]X   a drop a regression must exceed (PLUMB_EVAL_TOLERANCE, 0)\n"
	"  --alpha P           significance level of a regression (PLUMB_EVAL_ALPHA, 0.05)\n"
	"  --gate EXPR         e.g. 'exact_match>=0.9' or 'bleu.lo>30' (PLUMB_EVAL_GATES)\n"
	"  --suite NAME, --model NAME   labels of the scorecard (PLUMB_EVAL_SUITE, PLUMB_EVAL_MODEL)\n"
	"  --format F          json, table, markdown or prometheus (PLUMB_EVAL_FORMAT;\n"
	"                      table on a terminal, else json)\n"
	"  --items             a line of scores per record before the scorecard (json)\n"
	"  --slim              leave per-item statistics out of the scorecard\n"
	"  --skip-errors       leave out records with \"error\" (infer failures) instead of\n"
	"                      scoring them as empty outputs\n"
	"  --keep-going, --rejects FILE, -v, --quiet, -h, --help, --version: see plumb(7)\n";

/* --- metrics -------------------------------------------------------------- */

/* What a metric is made from: each family reads different fields. */
enum fam { F_TM, F_ACC, F_CLS, F_ASSERT, F_RET, F_LAT, F_TOK, F_RUBRIC, F_JUDGE };
/* How per-item statistics become a value. */
enum agg { A_TM, A_MEAN, A_SUM, A_QUANT, A_CLS };
enum { AS_CONTAINS, AS_ICONTAINS, AS_REGEX, AS_JSON, AS_N };
enum { R_RECALL, R_PRECISION, R_HIT, R_MRR, R_NDCG };

static const char *const assert_names[AS_N] = { "contains", "icontains", "regex", "json" };

/* Per-item statistics under one name: the unit a scorecard keeps per item
 * and a baseline is compared on. Several metrics may share one. */
struct col {
	char name[48];
	enum fam fam;
	size_t nstats;
	double *v;		/* items x nstats */
	unsigned char *has;	/* whether the item has statistics here */
};

struct metric {
	char name[48];
	enum fam fam;
	enum agg agg;
	size_t col;
	int tm;			/* enum pl_tm_metric */
	int sub;		/* the assertion type, retrieval measure, usage field
				 * or score*3+average */
	size_t k;		/* retrieval cutoff, 0 for all */
	double q;		/* quantile */
	int higher;		/* 1: higher is better, 0: lower is, -1: not compared */
	int has_tol;
	double tol;
	char sig[256];
	double value, lo, hi;
	size_t n;
	double *boot;
	/* baseline comparison */
	int cmp;		/* 1 compared, 0 not (why says why) */
	const char *why;
	double b_value, c_value, p, delta;
	int regression;
};

static struct col cols[32];
static size_t ncols;
static struct metric *metrics;
static size_t nmetrics;

/* --- options -------------------------------------------------------------- */

static const char *pred_field = "output", *ref_field, *id_field = "id";
static const char *expected_field = "expected", *hits_field = "hits", *match_key = "doc_id";
static struct pl_tm_opts tmo;
static long nboot = 1000;
static unsigned long long seed = 12345;
static double alpha = 0.05, tol_all;
static int want_items, slim, skip_errors, rejects_set;
static const char *suite, *model_opt, *baseline_path;
enum { FMT_JSON, FMT_TABLE, FMT_MD, FMT_PROM };
static int format;
static const char *rubric_cmd;

struct check {
	int type;
	char *value;
	regex_t re;
};
static struct check *gchecks;	/* --assert */
static size_t ngchecks;

struct gate {
	char *text;
	char name[48];
	int bound;		/* 0 value, 1 lower CI bound, 2 upper */
	char op[3];
	double want;
	struct metric *m;
	double got;
	int passed;
};
static struct gate *gates;
static size_t ngates;

struct tolspec {
	char name[48];
	double tol;
};
static struct tolspec *tols;
static size_t ntols;

/* judge */
static struct pl_chat_opts jo;
static struct pl_chat *chat;
static const char *judge_prompt_path;
static char *judge_prompt;
static double judge_min = 1, judge_max = 5;
static regex_t judge_re;
static int judge_re_groups;
static struct pl_buf jmsgs = PL_BUF_INIT;
static unsigned long judge_unparsed, judge_failed;

/* --- items ---------------------------------------------------------------- */

struct item {
	char *idjson;		/* the id as written out */
	char *idkey;		/* the id for matching: type and value */
	const char *file;
	unsigned long lineno;
	int pending;		/* a judge reply is outstanding */
	int failed;		/* infer's "error": scored as an empty answer */
	char *jreply, *jerr;	/* the judge's reply, and why it gave no score */
	char *reason;		/* the rubric's */
};

static struct item *items;
static size_t nitems, capitems, nwritten;
static unsigned long nerrors, nskipped_errors;

static char **models;		/* distinct "model" values of the records */
static size_t nmodels;
static int many_models;

static char **labels;		/* classification labels, interned */
static size_t nlabels, caplabels;
static int labels_numeric = 1;

static char **names;		/* input file names, for messages */
static size_t nnames;

/* ids: open addressing over item indices */
static size_t *idtab, idcap;

static locale_t utf8_locale;
static struct pl_buf tmp = PL_BUF_INIT;

static const char *intern_name(const char *name)
{
	for (size_t i = 0; i < nnames; i++)
		if (strcmp(names[i], name) == 0)
			return names[i];
	names = pl_xrealloc(names, (nnames + 1) * sizeof *names);
	return names[nnames++] = pl_xstrdup(name);
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* The item with key idkey, or SIZE_MAX. */
static size_t id_find(const char *key)
{
	if (!idcap)
		return SIZE_MAX;
	for (size_t h = hash_str(key) & (idcap - 1);; h = (h + 1) & (idcap - 1)) {
		if (idtab[h] == SIZE_MAX)
			return SIZE_MAX;
		if (strcmp(items[idtab[h]].idkey, key) == 0)
			return idtab[h];
	}
}

static void id_insert(size_t idx)
{
	if ((nitems + 1) * 2 > idcap) {
		size_t oc = idcap;
		size_t *old = idtab;
		idcap = idcap ? idcap * 2 : 1024;
		idtab = pl_xmalloc(idcap * sizeof *idtab);
		memset(idtab, 0xff, idcap * sizeof *idtab);
		for (size_t i = 0; i < oc; i++)
			if (old[i] != SIZE_MAX) {
				size_t h = hash_str(items[old[i]].idkey) & (idcap - 1);
				while (idtab[h] != SIZE_MAX)
					h = (h + 1) & (idcap - 1);
				idtab[h] = old[i];
			}
		free(old);
	}
	size_t h = hash_str(items[idx].idkey) & (idcap - 1);
	while (idtab[h] != SIZE_MAX)
		h = (h + 1) & (idcap - 1);
	idtab[h] = idx;
}

static int is_number_text(const char *s)
{
	char *end;
	if (!*s)
		return 0;
	errno = 0;
	double d = strtod(s, &end);
	return !*end && !errno && isfinite(d);
}

static size_t label_index(const char *s)
{
	for (size_t i = 0; i < nlabels; i++)
		if (strcmp(labels[i], s) == 0)
			return i;
	if (nlabels == caplabels) {
		caplabels = caplabels ? caplabels * 2 : 16;
		labels = pl_xrealloc(labels, caplabels * sizeof *labels);
	}
	if (!is_number_text(s))
		labels_numeric = 0;
	labels[nlabels] = pl_xstrdup(s);
	return nlabels++;
}

/* --- numbers out ---------------------------------------------------------- */

/* The shortest of %.15g and %.17g that reads back as v; null when not finite. */
static void put_num(struct pl_buf *b, double v)
{
	char s[40];
	if (!isfinite(v)) {
		pl_buf_adds(b, "null");
		return;
	}
	if (v == 0)
		v = 0;	/* no "-0" */
	snprintf(s, sizeof s, "%.15g", v);
	if (strtod(s, NULL) != v)
		snprintf(s, sizeof s, "%.17g", v);
	pl_buf_adds(b, s);
}

/* --- metric set ----------------------------------------------------------- */

static size_t col_get(const char *name, enum fam fam, size_t nstats)
{
	for (size_t i = 0; i < ncols; i++)
		if (strcmp(cols[i].name, name) == 0)
			return i;
	if (ncols == sizeof cols / sizeof cols[0])
		pl_usage_error("too many metrics");
	struct col *c = &cols[ncols];
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", name);
	c->fam = fam;
	c->nstats = nstats;
	return ncols++;
}

static struct metric *metric_find(const char *name)
{
	for (size_t i = 0; i < nmetrics; i++)
		if (strcmp(metrics[i].name, name) == 0)
			return &metrics[i];
	return NULL;
}

static struct metric *metric_new(const char *name, enum fam fam, enum agg agg)
{
	if (metric_find(name))
		return NULL;
	metrics = pl_xrealloc(metrics, (nmetrics + 1) * sizeof *metrics);
	struct metric *m = &metrics[nmetrics++];
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", name);
	m->fam = fam;
	m->agg = agg;
	m->higher = 1;
	m->value = m->lo = m->hi = NAN;
	return m;
}

static const char *const cls_names[3] = { "precision", "recall", "f1" };
static const char *const avg_names[3] = { "macro", "micro", "weighted" };
static const char *const ret_names[5] = { "recall", "precision", "hit_rate", "mrr", "ndcg" };
static const char *const tok_names[3] = { "prompt", "completion", "total" };

static int add_metric(const char *name);

static int add_retrieval(int which, size_t k)
{
	char nm[48];
	if (k)
		snprintf(nm, sizeof nm, "%s@%zu", ret_names[which], k);
	else
		snprintf(nm, sizeof nm, "%s", ret_names[which]);
	struct metric *m = metric_new(nm, F_RET, A_MEAN);
	if (m) {
		m->col = col_get(nm, F_RET, 1);
		m->sub = which;
		m->k = k;
	}
	return 0;
}

/* "name" or "name@K": which retrieval measure, and K (0: none given). */
static int parse_at(const char *name, const char *base, size_t *k)
{
	size_t n = strlen(base);
	if (strncmp(name, base, n) != 0)
		return 0;
	if (name[n] == 0) {
		*k = 0;
		return 1;
	}
	if (name[n] != '@')
		return 0;
	char *end;
	errno = 0;
	long v = strtol(name + n + 1, &end, 10);
	if (errno || *end || end == name + n + 1 || v < 1 || v > 100000)
		pl_usage_error("metric '%s': the cutoff after '@' must be a whole number from 1 to 100000",
			       name);
	*k = (size_t)v;
	return 1;
}

static int add_metric(const char *name)
{
	struct metric *m;
	size_t k;
	int t = pl_tm_metric_of(name);

	if (t >= 0) {
		if ((m = metric_new(name, F_TM, A_TM))) {
			m->tm = t;
			m->col = col_get(name, F_TM, pl_tm_nstats((enum pl_tm_metric)t));
		}
		return 0;
	}
	if (strcmp(name, "accuracy") == 0) {
		if ((m = metric_new(name, F_ACC, A_MEAN)))
			m->col = col_get("accuracy", F_ACC, 1);
		return 0;
	}
	if (strcmp(name, "classification") == 0) {
		add_metric("accuracy");
		for (int a = 0; a < 3; a++)
			for (int s = 0; s < 3; s++) {
				char nm[48];
				snprintf(nm, sizeof nm, "%s_%s", cls_names[s], avg_names[a]);
				add_metric(nm);
			}
		return 0;
	}
	for (int s = 0; s < 3; s++)
		for (int a = 0; a < 3; a++) {
			char nm[48];
			snprintf(nm, sizeof nm, "%s_%s", cls_names[s], avg_names[a]);
			if (strcmp(name, nm) == 0) {
				if ((m = metric_new(name, F_CLS, A_CLS))) {
					m->col = col_get("classification", F_CLS, 2);
					m->sub = s * 3 + a;
				}
				return 0;
			}
		}
	for (int a = 0; a < AS_N; a++)
		if (strcmp(name, assert_names[a]) == 0) {
			if ((m = metric_new(name, F_ASSERT, A_MEAN))) {
				m->col = col_get(name, F_ASSERT, 1);
				m->sub = a;
			}
			return 0;
		}
	if (parse_at(name, "retrieval", &k)) {
		for (int r = 0; r < 5; r++)
			add_retrieval(r, k);
		return 0;
	}
	if (parse_at(name, "hit", &k))	/* an alias */
		return add_retrieval(R_HIT, k);
	for (int r = 0; r < 5; r++)
		if (parse_at(name, ret_names[r], &k))
			return add_retrieval(r, k);
	if (strcmp(name, "latency") == 0) {
		add_metric("latency_p50");
		add_metric("latency_p90");
		add_metric("latency_p99");
		add_metric("latency_mean");
		return 0;
	}
	if (strcmp(name, "latency_mean") == 0) {
		if ((m = metric_new(name, F_LAT, A_MEAN))) {
			m->col = col_get("latency_ms", F_LAT, 1);
			m->higher = 0;
		}
		return 0;
	}
	if (strncmp(name, "latency_p", 9) == 0) {
		char *end;
		errno = 0;
		double q = strtod(name + 9, &end);
		if (errno || *end || end == name + 9 || !(q >= 0 && q <= 100) || name[9] == '-' ||
		    name[9] == '+')
			pl_usage_error("metric '%s': want latency_pNN with NN from 0 to 100", name);
		if ((m = metric_new(name, F_LAT, A_QUANT))) {
			m->col = col_get("latency_ms", F_LAT, 1);
			m->q = q / 100;
			m->higher = 0;
		}
		return 0;
	}
	if (strcmp(name, "tokens") == 0) {
		for (int i = 0; i < 3; i++) {
			char nm[48];
			snprintf(nm, sizeof nm, "tokens_%s", tok_names[i]);
			add_metric(nm);
		}
		return 0;
	}
	for (int i = 0; i < 3; i++) {
		char nm[48];
		snprintf(nm, sizeof nm, "tokens_%s", tok_names[i]);
		if (strcmp(name, nm) == 0) {
			if ((m = metric_new(name, F_TOK, A_SUM))) {
				m->col = col_get("usage", F_TOK, 3);
				m->sub = i;
				m->higher = -1;
			}
			return 0;
		}
	}
	if (strcmp(name, "rubric") == 0) {
		if ((m = metric_new(name, F_RUBRIC, A_MEAN)))
			m->col = col_get("rubric", F_RUBRIC, 1);
		return 0;
	}
	if (strcmp(name, "judge") == 0) {
		if ((m = metric_new(name, F_JUDGE, A_MEAN)))
			m->col = col_get("judge", F_JUDGE, 1);
		return 0;
	}
	return -1;
}

static void add_metric_list(const char *list)
{
	char *s = pl_xstrdup(list), *save = NULL;
	for (char *t = strtok_r(s, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
		if (add_metric(t) < 0)
			pl_usage_error("unknown metric '%s' (see evalscore --help)", t);
	free(s);
}

static int fam_used(enum fam f)
{
	for (size_t i = 0; i < nmetrics; i++)
		if (metrics[i].fam == f)
			return 1;
	return 0;
}

static void add_check(const char *spec)
{
	const char *colon = strchr(spec, ':');
	int type = -1;
	for (int a = 0; a < AS_N && colon; a++)
		if (strlen(assert_names[a]) == (size_t)(colon - spec) &&
		    strncmp(spec, assert_names[a], (size_t)(colon - spec)) == 0)
			type = a;
	if (type < 0 || type == AS_JSON)
		pl_usage_error("--assert '%s': want contains:TEXT, icontains:TEXT or regex:ERE", spec);
	gchecks = pl_xrealloc(gchecks, (ngchecks + 1) * sizeof *gchecks);
	struct check *c = &gchecks[ngchecks++];
	memset(c, 0, sizeof *c);
	c->type = type;
	c->value = pl_xstrdup(colon + 1);
	if (type == AS_REGEX) {
		int rc = regcomp(&c->re, c->value, REG_EXTENDED | REG_NOSUB);
		if (rc) {
			char e[200];
			regerror(rc, &c->re, e, sizeof e);
			pl_usage_error("--assert '%s': %s", spec, e);
		}
	}
	add_metric(assert_names[type]);
}

static void add_gate_list(const char *list)
{
	char *s = pl_xstrdup(list), *save = NULL;
	for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		struct gate g;
		memset(&g, 0, sizeof g);
		while (*t == ' ')
			t++;
		size_t nl = strcspn(t, "<>=! ");
		if (!nl || nl >= sizeof g.name)
			pl_usage_error("--gate '%s': want METRIC OP NUMBER, e.g. 'exact_match>=0.9'", t);
		memcpy(g.name, t, nl);
		char *dot = strrchr(g.name, '.');
		if (dot && (strcmp(dot, ".lo") == 0 || strcmp(dot, ".hi") == 0)) {
			g.bound = dot[1] == 'l' ? 1 : 2;
			*dot = 0;
		}
		const char *p = t + nl;
		while (*p == ' ')
			p++;
		static const char *const ops[] = { ">=", "<=", "==", "!=", ">", "<" };
		for (size_t i = 0; i < 6; i++)
			if (strncmp(p, ops[i], strlen(ops[i])) == 0) {
				strcpy(g.op, ops[i]);
				p += strlen(ops[i]);
				break;
			}
		char *end;
		errno = 0;
		g.want = strtod(p, &end);
		while (end && *end == ' ')
			end++;
		if (!g.op[0] || end == p || *end || errno || !isfinite(g.want))
			pl_usage_error("--gate '%s': want METRIC OP NUMBER with OP one of >= > <= < == !=",
				       t);
		size_t tl = strlen(t);
		while (tl && t[tl - 1] == ' ')
			tl--;
		g.text = pl_xstrndup(t, tl);
		gates = pl_xrealloc(gates, (ngates + 1) * sizeof *gates);
		gates[ngates++] = g;
	}
	free(s);
}

static void add_tol_list(const char *list)
{
	char *s = pl_xstrdup(list), *save = NULL;
	for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '='), *end;
		const char *num = eq ? eq + 1 : t;
		errno = 0;
		double v = strtod(num, &end);
		if (errno || end == num || *end || !(v >= 0) || !isfinite(v) ||
		    (eq && (eq == t || (size_t)(eq - t) >= sizeof tols->name)))
			pl_usage_error("--tolerance '%s': want X or METRIC=X with X >= 0", t);
		if (!eq) {
			tol_all = v;
			continue;
		}
		tols = pl_xrealloc(tols, (ntols + 1) * sizeof *tols);
		memset(&tols[ntols], 0, sizeof *tols);
		memcpy(tols[ntols].name, t, (size_t)(eq - t));
		tols[ntols++].tol = v;
	}
	free(s);
}

/* --- reading records ------------------------------------------------------ */

/* Everything one record contributes, gathered before any of it is kept, so
 * that a record rejected half-way leaves nothing behind. */
struct row {
	double *v;		/* ncols x PL_TM_MAXSTATS */
	unsigned char *has;
	char *pred;
	char **refs;
	size_t nrefs;
	char *reason;
	char *prompt;
};

static struct row row;
static size_t refs_max;		/* most references of an item, for signatures */

static void row_clear(void)
{
	free(row.pred);
	for (size_t i = 0; i < row.nrefs; i++)
		free(row.refs[i]);
	free(row.refs);
	free(row.reason);
	free(row.prompt);
	row.pred = row.reason = row.prompt = NULL;
	row.refs = NULL;
	row.nrefs = 0;
	memset(row.has, 0, ncols);
}

static double *row_stats(size_t col)
{
	row.has[col] = 1;
	return row.v + col * PL_TM_MAXSTATS;
}

/* The text of a scalar JSON value: a string decoded, a number, true or
 * false as written, null as "". NULL for an array or object. */
static char *member_text(const struct pl_jmember *m)
{
	struct pl_jerr e;
	const char *s;
	size_t n;

	switch (m->type) {
	case PL_JSTR:
		if (pl_jmember_str(m, &tmp, &s, &n, PL_JSTR_REPLACE, &e) < 0)
			return NULL;
		return pl_xstrndup(s, n);
	case PL_JNULL:
		return pl_xstrdup("");
	case PL_JNUM:
	case PL_JTRUE:
	case PL_JFALSE:
		return pl_xstrndup(m->val, m->vallen);
	default:
		return NULL;
	}
}

static char *jansson_text(const json_t *j)
{
	char b[64];
	switch (json_typeof(j)) {
	case JSON_STRING:
		return pl_xstrndup(json_string_value(j), json_string_length(j));
	case JSON_INTEGER:
		snprintf(b, sizeof b, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		return pl_xstrdup(b);
	case JSON_REAL:
		snprintf(b, sizeof b, "%.17g", json_real_value(j));
		return pl_xstrdup(b);
	case JSON_TRUE:
		return pl_xstrdup("true");
	case JSON_FALSE:
		return pl_xstrdup("false");
	default:
		return NULL;
	}
}

static json_t *member_json(const struct pl_jmember *m)
{
	return json_loadb(m->val, m->vallen, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
}

/* The references of a record into row.refs: a string (or number), an array
 * of them, or an object with "text" (the SQuAD answers of Hugging Face
 * datasets). Returns 0; -2 with why set when there are none, -1 when they
 * are malformed. */
static int get_refs(const struct pl_rec *rec, const char **why)
{
	static const char *const defaults[] = { "references", "reference", "answers", "label" };
	const struct pl_jmember *m = NULL;
	const char *name = ref_field;

	if (ref_field) {
		m = pl_jobj_get(&rec->obj, ref_field);
	} else {
		for (size_t i = 0; i < 4 && !m; i++)
			if ((m = pl_jobj_get(&rec->obj, defaults[i])))
				name = defaults[i];
	}
	if (!m) {
		tmp.n = 0;
		if (ref_field)
			pl_buf_printf(&tmp, "no \"%s\" field (the reference)", ref_field);
		else
			pl_buf_adds(&tmp, "no reference: none of \"references\", \"reference\", "
				    "\"answers\", \"label\" (--ref names another field)");
		*why = pl_xstrdup(pl_buf_cstr(&tmp));
		return -2;
	}
	if (m->type != PL_JARR && m->type != PL_JOBJ) {
		char *s = m->type == PL_JNULL ? NULL : member_text(m);
		if (!s)
			goto bad;
		row.refs = pl_xmalloc(sizeof *row.refs);
		row.refs[0] = s;
		row.nrefs = 1;
		return 0;
	}
	json_t *j = member_json(m), *arr = j;
	if (j && json_is_object(j))
		arr = json_object_get(j, "text");
	if (arr && json_is_string(arr)) {
		row.refs = pl_xmalloc(sizeof *row.refs);
		row.refs[0] = jansson_text(arr);
		row.nrefs = 1;
		json_decref(j);
		return 0;
	}
	if (!arr || !json_is_array(arr)) {
		json_decref(j);
		goto bad;
	}
	size_t n = json_array_size(arr);
	if (!n) {
		json_decref(j);
		tmp.n = 0;
		pl_buf_printf(&tmp, "\"%s\" is empty", name);
		*why = pl_xstrdup(pl_buf_cstr(&tmp));
		return -1;
	}
	row.refs = pl_xmalloc(n * sizeof *row.refs);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(arr, i);
		char *s = json_is_null(e) || json_is_array(e) || json_is_object(e) ? NULL
										   : jansson_text(e);
		if (!s) {
			json_decref(j);
			goto bad;
		}
		row.refs[row.nrefs++] = s;
	}
	json_decref(j);
	return 0;
bad:
	tmp.n = 0;
	pl_buf_printf(&tmp, "\"%s\" is not a string or an array of strings", name);
	*why = pl_xstrdup(pl_buf_cstr(&tmp));
	return -1;
}

static char *trimmed(const char *s)
{
	size_t n = strlen(s);
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	return pl_xstrndup(s, n);
}

/* Lower-cased with the full Unicode mapping of the C library's C.UTF-8
 * locale (so "É" matches "é"); ASCII only if that locale is missing. */
static char *lowered(const char *s)
{
	struct pl_buf b = PL_BUF_INIT;
	mbstate_t in, out;
	size_t n = strlen(s);

	memset(&in, 0, sizeof in);
	memset(&out, 0, sizeof out);
	if (!utf8_locale) {
		char *r = pl_xstrdup(s);
		for (char *p = r; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
		return r;
	}
	locale_t old = uselocale(utf8_locale);
	while (n) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s, n, &in);
		if (k == (size_t)-1 || k == (size_t)-2) {
			/* not UTF-8: the byte stays as it is */
			pl_buf_addc(&b, *s);
			memset(&in, 0, sizeof in);
			s++;
			n--;
			continue;
		}
		if (k == 0)
			k = 1;
		char mb[MB_LEN_MAX];
		size_t m = wcrtomb(mb, (wchar_t)towlower((wint_t)wc), &out);
		if (m == (size_t)-1)
			pl_buf_add(&b, s, k);
		else
			pl_buf_add(&b, mb, m);
		s += k;
		n -= k;
	}
	uselocale(old);
	pl_buf_addc(&b, 0);
	return b.p;
}

/* Whether output passes one check; -1 with why for a bad regular expression. */
static int check_one(int type, const char *out, const char *value, const regex_t *re,
		     const char **why)
{
	switch (type) {
	case AS_CONTAINS:
		return strstr(out, value) != NULL;
	case AS_ICONTAINS: {
		char *a = lowered(out), *b = lowered(value);
		int r = strstr(a, b) != NULL;
		free(a);
		free(b);
		return r;
	}
	case AS_REGEX: {
		regex_t own;
		if (!re) {
			int rc = regcomp(&own, value, REG_EXTENDED | REG_NOSUB);
			if (rc) {
				char e[200];
				regerror(rc, &own, e, sizeof e);
				tmp.n = 0;
				pl_buf_printf(&tmp, "regex '%.200s': %s", value, e);
				*why = pl_xstrdup(pl_buf_cstr(&tmp));
				return -1;
			}
			re = &own;
		}
		int r = regexec(re, out, 0, NULL, 0) == 0;
		if (re == &own)
			regfree(&own);
		return r;
	}
	}
	return 0;
}

/* An assertion metric for one record: every check of its type (from
 * --assert and the record's "assert") must pass; with none, any reference
 * must. Returns 0 or 1, or -1 with why. */
static int run_assert(const struct pl_rec *rec, int type, const char *out, json_t *recasserts,
		      const char **why)
{
	int nchecks = 0;

	if (type == AS_JSON) {
		struct pl_jerr e;
		enum pl_jtype t;
		return pl_json_validate(out, strlen(out), &t, &e) == 0;
	}
	for (size_t i = 0; i < ngchecks; i++) {
		if (gchecks[i].type != type)
			continue;
		nchecks++;
		int r = check_one(type, out, gchecks[i].value, &gchecks[i].re, why);
		if (r <= 0)
			return r;
	}
	size_t ia;
	json_t *a;
	json_array_foreach(recasserts, ia, a) {
		const char *t = json_string_value(json_object_get(a, "type"));
		if (!t || strcmp(t, assert_names[type]) != 0)
			continue;
		nchecks++;
		const char *v = json_string_value(json_object_get(a, "value"));
		int r = check_one(type, out, v, NULL, why);
		if (r <= 0)
			return r;
	}
	if (nchecks)
		return 1;
	if (!row.nrefs) {
		tmp.n = 0;
		pl_buf_printf(&tmp, "%s: no check to run (give --assert, an \"assert\" list or a "
			      "reference)", assert_names[type]);
		*why = pl_xstrdup(pl_buf_cstr(&tmp));
		return -1;
	}
	for (size_t i = 0; i < row.nrefs; i++) {
		int r = check_one(type, out, row.refs[i], NULL, why);
		if (r)
			return r;
	}
	return 0;
}

/* The record's "assert": an array of {"type","value"} with known types.
 * Returns the array (NULL if none), or sets why. */
static json_t *get_asserts(const struct pl_rec *rec, const char **why)
{
	const struct pl_jmember *m = pl_jobj_get(&rec->obj, "assert");
	if (!m)
		return NULL;
	json_t *j = member_json(m);
	size_t i;
	json_t *a;
	if (!j || !json_is_array(j))
		goto bad;
	json_array_foreach(j, i, a) {
		const char *t = json_string_value(json_object_get(a, "type"));
		json_t *v = json_object_get(a, "value");
		int known = 0;
		if (!json_is_object(a) || !t)
			goto bad;
		for (int k = 0; k < AS_N; k++)
			known |= strcmp(t, assert_names[k]) == 0;
		if (!known) {
			tmp.n = 0;
			pl_buf_printf(&tmp, "\"assert\": unknown type '%.100s' (want contains, "
				      "icontains, regex or json)", t);
			*why = pl_xstrdup(pl_buf_cstr(&tmp));
			json_decref(j);
			return NULL;
		}
		if (strcmp(t, "json") != 0 && !json_is_string(v)) {
			tmp.n = 0;
			pl_buf_printf(&tmp, "\"assert\": %s needs a string \"value\"", t);
			*why = pl_xstrdup(pl_buf_cstr(&tmp));
			json_decref(j);
			return NULL;
		}
	}
	return j;
bad:
	json_decref(j);
	*why = pl_xstrdup("\"assert\" is not an array of {\"type\",\"value\"} objects");
	return NULL;
}

/* Retrieval metrics of one search record into the row. */
static int run_retrieval(const struct pl_rec *rec, const char **why)
{
	const struct pl_jmember *em = pl_jobj_get(&rec->obj, expected_field);
	const struct pl_jmember *hm = pl_jobj_get(&rec->obj, hits_field);
	json_t *ej = NULL, *hj = NULL;
	unsigned char *rel = NULL;
	char **seen = NULL;
	size_t nseen = 0, nexp;
	int rc = -1;

	tmp.n = 0;
	if (!em) {
		pl_buf_printf(&tmp, "no \"%s\" field (the relevant ids retrieval is scored on)",
			      expected_field);
		goto out;
	}
	ej = member_json(em);
	if (!ej || !json_is_array(ej)) {
		pl_buf_printf(&tmp, "\"%s\" is not an array of strings", expected_field);
		goto out;
	}
	nexp = json_array_size(ej);
	for (size_t i = 0; i < nexp; i++)
		if (!json_is_string(json_array_get(ej, i))) {
			pl_buf_printf(&tmp, "\"%s\" is not an array of strings", expected_field);
			goto out;
		}
	if (!nexp) {
		pl_buf_printf(&tmp, "\"%s\" is empty", expected_field);
		goto out;
	}
	if (!hm) {
		pl_buf_printf(&tmp, "no \"%s\" field (search's results)", hits_field);
		goto out;
	}
	hj = member_json(hm);
	if (!hj || !json_is_array(hj)) {
		pl_buf_printf(&tmp, "\"%s\" is not an array of objects", hits_field);
		goto out;
	}
	size_t nh = json_array_size(hj), nr = 0, nrel = 0;
	/* distinct expected ids count, once each */
	for (size_t i = 0; i < nexp; i++) {
		const char *e = json_string_value(json_array_get(ej, i));
		int dup = 0;
		for (size_t j = 0; j < i && !dup; j++)
			dup = strcmp(e, json_string_value(json_array_get(ej, j))) == 0;
		nrel += !dup;
	}
	rel = pl_xmalloc(nh + 1);
	seen = pl_xmalloc((nh + 1) * sizeof *seen);
	for (size_t i = 0; i < nh; i++) {
		json_t *h = json_array_get(hj, i);
		if (!json_is_object(h)) {
			pl_buf_printf(&tmp, "\"%s\" is not an array of objects", hits_field);
			goto out;
		}
		json_t *key = json_object_get(h, match_key);
		const char *s = json_string_value(key);
		if (key && !json_is_null(key) && !s) {
			pl_buf_printf(&tmp, "\"%s\"[%zu].%s is not a string", hits_field, i, match_key);
			goto out;
		}
		if (s) {
			/* a document's later chunks are the same result again */
			int dup = 0;
			for (size_t j = 0; j < nseen && !dup; j++)
				dup = strcmp(seen[j], s) == 0;
			if (dup)
				continue;
			seen[nseen++] = (char *)s;
		}
		int r = 0;
		for (size_t j = 0; s && j < nexp && !r; j++)
			r = strcmp(s, json_string_value(json_array_get(ej, j))) == 0;
		rel[nr++] = (unsigned char)r;
	}
	for (size_t i = 0; i < nmetrics; i++) {
		struct metric *m = &metrics[i];
		struct pl_ev_retrieval r;
		if (m->fam != F_RET)
			continue;
		pl_ev_retrieval(rel, nr, nrel, m->k, &r);
		double v = m->sub == R_RECALL ? r.recall : m->sub == R_PRECISION ? r.precision
			 : m->sub == R_HIT ? r.hit : m->sub == R_MRR ? r.rr : r.ndcg;
		row_stats(m->col)[0] = v;
	}
	rc = 0;
out:
	if (rc < 0)
		*why = pl_xstrdup(pl_buf_cstr(&tmp));
	json_decref(ej);
	json_decref(hj);
	free(rel);
	free(seen);
	(void)rec;
	return rc;
}

static int get_number(const struct pl_rec *rec, const char *name, double *v, int *has,
		      const char **why)
{
	const struct pl_jmember *m = pl_jobj_get(&rec->obj, name);
	*has = 0;
	if (!m || m->type == PL_JNULL)
		return 0;
	char *end;
	if (m->type == PL_JNUM) {
		*v = strtod(m->val, &end);
		if (isfinite(*v) && *v >= 0) {
			*has = 1;
			return 0;
		}
	}
	tmp.n = 0;
	pl_buf_printf(&tmp, "\"%s\" is not a number of 0 or more", name);
	*why = pl_xstrdup(pl_buf_cstr(&tmp));
	return -1;
}

static int get_usage(const struct pl_rec *rec, double *u, int *has, const char **why)
{
	static const char *const fields[3] = { "prompt_tokens", "completion_tokens", "total_tokens" };
	const struct pl_jmember *m = pl_jobj_get(&rec->obj, "usage");
	*has = 0;
	if (!m || m->type == PL_JNULL)
		return 0;
	json_t *j = member_json(m);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		*why = pl_xstrdup("\"usage\" is not an object");
		return -1;
	}
	for (int i = 0; i < 3; i++) {
		json_t *v = json_object_get(j, fields[i]);
		if (!v || json_is_null(v)) {
			u[i] = i == 2 ? u[0] + u[1] : 0;	/* total: their sum when absent */
			continue;
		}
		if (!json_is_number(v) || json_number_value(v) < 0) {
			tmp.n = 0;
			pl_buf_printf(&tmp, "\"usage\".%s is not a number of 0 or more", fields[i]);
			*why = pl_xstrdup(pl_buf_cstr(&tmp));
			json_decref(j);
			return -1;
		}
		u[i] = json_number_value(v);
	}
	json_decref(j);
	*has = 1;
	return 0;
}

/* --- the rubric command --------------------------------------------------- */

/* Run the rubric command with line on its stdin; its stdout is a number or
 * a JSON object with a numeric "score" (and a "reason"). */
static int run_rubric(const char *line, size_t len, double *score, const char **why)
{
	int in[2], out[2], status;
	struct pl_buf got = PL_BUF_INIT;
	struct sigaction ign, old;
	pid_t pid;
	int rc = -1;

	tmp.n = 0;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		pl_die(PL_EX_SOFTWARE, "pipe:");
	pid = fork();
	if (pid < 0)
		pl_die(PL_EX_SOFTWARE, "fork:");
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		signal(SIGPIPE, SIG_DFL);
		execl("/bin/sh", "sh", "-c", rubric_cmd, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	/* a command that does not read its input must not kill us */
	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &old);
	size_t off = 0;
	struct pl_buf rec = PL_BUF_INIT;
	pl_buf_add(&rec, line, len);
	pl_buf_addc(&rec, '\n');
	int wfd = in[1], rfd = out[0];
	fcntl(wfd, F_SETFL, O_NONBLOCK);
	while (rfd >= 0) {
		struct pollfd p[2] = { { rfd, POLLIN, 0 }, { wfd, POLLOUT, 0 } };
		int np = wfd >= 0 ? 2 : 1;
		if (poll(p, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			pl_die(PL_EX_SOFTWARE, "poll:");
		}
		if (np == 2 && p[1].revents) {
			ssize_t w = write(wfd, rec.p + off, rec.n - off);
			if (w > 0)
				off += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || off == rec.n) {
				close(wfd);
				wfd = -1;
			}
		}
		if (p[0].revents) {
			char b[4096];
			ssize_t r = read(rfd, b, sizeof b);
			if (r > 0) {
				if (got.n < (1u << 20))
					pl_buf_add(&got, b, (size_t)r);
			} else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
				close(rfd);
				rfd = -1;
			}
		}
	}
	if (wfd >= 0)
		close(wfd);
	sigaction(SIGPIPE, &old, NULL);
	pl_buf_free(&rec);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			pl_die(PL_EX_SOFTWARE, "waitpid:");
	pl_buf_addc(&got, 0);
	char *t = trimmed(got.p);
	if (WIFSIGNALED(status)) {
		pl_buf_printf(&tmp, "--rubric-cmd was killed by signal %d", WTERMSIG(status));
		goto out;
	}
	if (WEXITSTATUS(status) != 0) {
		pl_buf_printf(&tmp, "--rubric-cmd exited with status %d", WEXITSTATUS(status));
		if (WEXITSTATUS(status) == 127)
			pl_buf_adds(&tmp, " (command not found?)");
		goto out;
	}
	char *end;
	if (t[0] == '{') {
		json_t *j = json_loads(t, 0, NULL), *s = json_object_get(j, "score");
		const char *reason = json_string_value(json_object_get(j, "reason"));
		if (json_is_number(s)) {
			*score = json_number_value(s);
			if (reason)
				row.reason = pl_xstrdup(reason);
			rc = 0;
		}
		json_decref(j);
	} else if (t[0]) {
		errno = 0;
		*score = strtod(t, &end);
		if (!*end && !errno && end != t)
			rc = 0;
	}
	if (rc == 0 && !isfinite(*score))
		rc = -1;
	if (rc < 0) {
		pl_buf_adds(&tmp, "--rubric-cmd printed no score: '");
		for (size_t i = 0; t[i] && i < 60; i++)
			pl_buf_addc(&tmp, t[i] == '\n' ? ' ' : t[i]);
		pl_buf_adds(&tmp, strlen(t) > 60 ? "...'" : "'");
		pl_buf_adds(&tmp, " (want a number, or {\"score\": number})");
	}
out:
	if (rc < 0)
		*why = pl_xstrdup(pl_buf_cstr(&tmp));
	free(t);
	pl_buf_free(&got);
	return rc;
}

/* --- LLM-as-judge --------------------------------------------------------- */

static const char default_judge_prompt[] =
	"You are grading an answer to a question against a reference answer.\n\n"
	"Question:\n{{input}}\n\n"
	"Reference answer:\n{{reference}}\n\n"
	"Answer to grade:\n{{output}}\n\n"
	"Rate how correct and complete the answer is compared with the reference, on a scale "
	"from 1 (wrong) to 5 (fully correct). Explain briefly, then give your rating on the last "
	"line in the form \"Score: N\".";

#define JUDGE_PATTERN \
	"[Ss][Cc][Oo][Rr][Ee][^0-9A-Za-z\n]{0,4}[:=][^0-9\n+-]{0,4}([-+]?[0-9]+(\\.[0-9]+)?)"

/* The prompt for one record: {{name}} is the record's field (a string
 * decoded, other values as JSON), {{output}} the prediction, {{reference}}
 * the references one a line, {{input}} the input or the messages. */
static int judge_render(const struct pl_rec *rec, const char **why)
{
	const char *p = judge_prompt;
	struct pl_buf b = PL_BUF_INIT;

	while (*p) {
		const char *o = strstr(p, "{{");
		const char *c = o ? strstr(o + 2, "}}") : NULL;
		if (!o || !c) {
			pl_buf_adds(&b, p);
			break;
		}
		pl_buf_add(&b, p, (size_t)(o - p));
		char name[128];
		const char *s = o + 2;
		while (*s == ' ')
			s++;
		size_t n = (size_t)(c - s);
		while (n && s[n - 1] == ' ')
			n--;
		snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), s);
		if (strcmp(name, "output") == 0 || strcmp(name, pred_field) == 0) {
			pl_buf_adds(&b, row.pred ? row.pred : "");
		} else if (strcmp(name, "reference") == 0 || strcmp(name, "references") == 0) {
			for (size_t i = 0; i < row.nrefs; i++) {
				if (i)
					pl_buf_addc(&b, '\n');
				pl_buf_adds(&b, row.refs[i]);
			}
		} else {
			const struct pl_jmember *m = pl_jobj_get(&rec->obj, name);
			if (!m && strcmp(name, "input") == 0 &&
			    (m = pl_jobj_get(&rec->obj, "messages")) && m->type == PL_JARR) {
				/* a conversation, one message a line */
				json_t *j = member_json(m), *msg;
				size_t i;
				json_array_foreach(j, i, msg) {
					const char *role = json_string_value(json_object_get(msg, "role"));
					const char *txt = json_string_value(json_object_get(msg, "content"));
					pl_buf_printf(&b, "%s%s: %s", i ? "\n" : "", role ? role : "?",
						      txt ? txt : "");
				}
				json_decref(j);
			} else if (!m) {
				tmp.n = 0;
				pl_buf_printf(&tmp, "judge prompt: no field \"%s\" for {{%s}}", name, name);
				*why = pl_xstrdup(pl_buf_cstr(&tmp));
				pl_buf_free(&b);
				return -1;
			} else if (m->type == PL_JSTR) {
				char *t = member_text(m);
				pl_buf_adds(&b, t ? t : "");
				free(t);
			} else {
				pl_buf_add(&b, m->val, m->vallen);
			}
		}
		p = c + 2;
	}
	pl_buf_addc(&b, 0);
	row.prompt = b.p;
	return 0;
}

/* The score in a judge's reply: the last match of the pattern (its first
 * group, or the whole match), else the whole reply if it is a number. */
static int judge_extract(const char *reply, double *score)
{
	regmatch_t mt[2];
	const char *p = reply, *last = NULL;
	size_t lastn = 0;
	int eflags = 0;

	while (*p && regexec(&judge_re, p, 2, mt, eflags) == 0) {
		regmatch_t g = judge_re_groups && mt[1].rm_so >= 0 ? mt[1] : mt[0];
		last = p + g.rm_so;
		lastn = (size_t)(g.rm_eo - g.rm_so);
		p += mt[0].rm_eo > 0 ? mt[0].rm_eo : 1;
		eflags = REG_NOTBOL;
	}
	char *t = last ? pl_xstrndup(last, lastn) : trimmed(reply), *end;
	errno = 0;
	*score = strtod(t, &end);
	int ok = end != t && !*end && !errno && isfinite(*score);
	free(t);
	return ok ? 0 : -1;
}

static void on_judge(void *ctx, const struct pl_chat_reply *r)
{
	size_t i = (size_t)(uintptr_t)r->ud;
	struct item *it = &items[i];
	struct col *c = &cols[metric_find("judge")->col];
	char e[PL_CHAT_ERRLEN + 64];

	(void)ctx;
	it->pending = 0;
	if (!r->ok) {
		if (r->config)
			pl_die(r->exit_status, "judge: %s", r->error);
		judge_failed++;
		snprintf(e, sizeof e, "request failed: %s", r->error);
		it->jerr = pl_xstrdup(e);
		pl_warn("%s:%lu: judge: %s", it->file, it->lineno, it->jerr);
		return;
	}
	it->jreply = pl_xstrndup(r->content, r->len);
	double s;
	if (judge_extract(it->jreply, &s) < 0) {
		judge_unparsed++;
		it->jerr = pl_xstrdup("no score in the reply");
	} else if (s < judge_min || s > judge_max) {
		judge_unparsed++;
		snprintf(e, sizeof e, "score %g is outside %g..%g", s, judge_min, judge_max);
		it->jerr = pl_xstrdup(e);
	} else {
		c->v[i * c->nstats] = s;
		c->has[i] = 1;
		return;
	}
	pl_warn("%s:%lu: judge: %s", it->file, it->lineno, it->jerr);
}

/* --- items: keeping and writing ------------------------------------------- */

static void put_item_scores(struct pl_buf *b, size_t i);

static void write_ready(void)
{
	if (!want_items) {
		nwritten = nitems;
		return;
	}
	while (nwritten < nitems && !items[nwritten].pending) {
		put_item_scores(&pl_out, nwritten++);
		pl_out_end();
	}
}

static void drain(void)
{
	if (chat)
		pl_chat_wait(chat, 0);
	write_ready();
}

static void keep_model(const struct pl_rec *rec)
{
	const struct pl_jmember *m = pl_jobj_get(&rec->obj, "model");
	if (!m || m->type != PL_JSTR || model_opt)
		return;
	char *s = member_text(m);
	if (!s)
		return;
	for (size_t i = 0; i < nmodels; i++)
		if (strcmp(models[i], s) == 0) {
			free(s);
			return;
		}
	if (nmodels == 8) {
		many_models = 1;
		free(s);
		return;
	}
	models = pl_xrealloc(models, (nmodels + 1) * sizeof *models);
	models[nmodels++] = s;
}

static void grow_items(void)
{
	if (nitems < capitems)
		return;
	capitems = capitems ? capitems * 2 : 256;
	items = pl_xrealloc(items, capitems * sizeof *items);
	for (size_t c = 0; c < ncols; c++) {
		cols[c].v = pl_xrealloc(cols[c].v, capitems * cols[c].nstats * sizeof *cols[c].v);
		cols[c].has = pl_xrealloc(cols[c].has, capitems);
	}
}

/* The id of a record: its key for matching and its JSON for output. */
static int get_id(const struct pl_rec *rec, char **key, char **js, const char **why)
{
	const struct pl_jmember *m = pl_jobj_get(&rec->obj, id_field);
	struct pl_buf b = PL_BUF_INIT;

	if (!m) {
		pl_buf_printf(&b, "#%zu", nitems + 1);
		*key = pl_xstrdup(pl_buf_cstr(&b));
		b.n = 0;
		pl_json_put_str(&b, *key, strlen(*key));
		*js = pl_xstrdup(pl_buf_cstr(&b));
		pl_buf_free(&b);
		return 0;
	}
	if (m->type == PL_JSTR) {
		char *s = member_text(m);
		pl_json_put_str(&b, s, strlen(s));
		*js = pl_xstrdup(pl_buf_cstr(&b));
		*key = s;
		pl_buf_free(&b);
		return 0;
	}
	if (m->type == PL_JNUM) {
		/* a number matches the same number written otherwise (1.0, 1) */
		double d = strtod(m->val, NULL);
		char s[64];
		if (d == floor(d) && fabs(d) < 9e15)
			snprintf(s, sizeof s, "\x01%.0f", d);
		else
			snprintf(s, sizeof s, "\x01%.17g", d);
		*key = pl_xstrdup(s);
		*js = pl_xstrndup(m->val, m->vallen);
		return 0;
	}
	tmp.n = 0;
	pl_buf_printf(&tmp, "\"%s\" is not a string or a number", id_field);
	*why = pl_xstrdup(pl_buf_cstr(&tmp));
	return -1;
}

static void take(const struct pl_rec *rec)
{
	const char *why = NULL;
	char *idkey = NULL, *idjson = NULL;
	json_t *recasserts = NULL;
	int need_pred = 0, need_refs = 0;

	row_clear();
	if (get_id(rec, &idkey, &idjson, &why) < 0)
		goto bad;
	size_t dup = id_find(idkey);
	if (dup != SIZE_MAX) {
		tmp.n = 0;
		pl_buf_printf(&tmp, "duplicate %s %s (first at %s:%lu)", id_field, idjson,
			      items[dup].file, items[dup].lineno);
		why = pl_xstrdup(pl_buf_cstr(&tmp));
		goto bad;
	}
	const struct pl_jmember *err = pl_jobj_get(&rec->obj, "error");
	const struct pl_jmember *pm = pl_jobj_get(&rec->obj, pred_field);
	int failed = err && err->type != PL_JNULL && (!pm || pm->type == PL_JNULL);
	if (failed && skip_errors) {
		nskipped_errors++;
		goto done;
	}
	for (size_t i = 0; i < nmetrics; i++) {
		enum fam f = metrics[i].fam;
		if (f == F_TM || f == F_ACC || f == F_CLS || f == F_ASSERT || f == F_JUDGE)
			need_pred = 1;
		if (f == F_TM || f == F_ACC || f == F_CLS)
			need_refs = 1;
	}
	if (need_pred) {
		if (failed) {
			row.pred = pl_xstrdup("");
		} else if (!pm) {
			tmp.n = 0;
			pl_buf_printf(&tmp, "no \"%s\" field (the prediction; --pred names another)",
				      pred_field);
			why = pl_xstrdup(pl_buf_cstr(&tmp));
			goto bad;
		} else if (!(row.pred = member_text(pm))) {
			tmp.n = 0;
			pl_buf_printf(&tmp, "\"%s\" is not a string", pred_field);
			why = pl_xstrdup(pl_buf_cstr(&tmp));
			goto bad;
		}
	}
	if (need_refs || fam_used(F_JUDGE) || fam_used(F_ASSERT)) {
		/* assertions and the judge use references when there are any */
		int r = get_refs(rec, &why);
		if (r == -1 || (r == -2 && need_refs))
			goto bad;
		if (r == -2) {
			free((char *)why);
			why = NULL;
		}
		if (row.nrefs > refs_max)
			refs_max = row.nrefs;
	}
	if (fam_used(F_ASSERT)) {
		recasserts = get_asserts(rec, &why);
		if (why)
			goto bad;
	}
	if (fam_used(F_RET) && run_retrieval(rec, &why) < 0)
		goto bad;
	for (size_t i = 0; i < ncols; i++) {
		struct col *c = &cols[i];
		switch (c->fam) {
		case F_TM: {
			int t = pl_tm_metric_of(c->name);
			pl_tm_item((enum pl_tm_metric)t, &tmo, row.pred, (const char *const *)row.refs,
				   row.nrefs, row_stats(i));
			break;
		}
		case F_ACC: {
			char *p = trimmed(row.pred);
			int ok = 0;
			for (size_t r = 0; r < row.nrefs && !ok; r++) {
				char *t = trimmed(row.refs[r]);
				ok = strcmp(p, t) == 0;
				free(t);
			}
			free(p);
			row_stats(i)[0] = ok;
			break;
		}
		case F_CLS: {
			if (row.nrefs != 1) {
				tmp.n = 0;
				pl_buf_printf(&tmp, "classification needs one true label, not %zu",
					      row.nrefs);
				why = pl_xstrdup(pl_buf_cstr(&tmp));
				goto bad;
			}
			char *g = trimmed(row.refs[0]), *p = trimmed(row.pred);
			double *s = row_stats(i);
			s[0] = (double)label_index(g);
			s[1] = (double)label_index(p);
			free(g);
			free(p);
			break;
		}
		case F_ASSERT: {
			int type = -1;
			for (int a = 0; a < AS_N; a++)
				if (strcmp(c->name, assert_names[a]) == 0)
					type = a;
			int r = run_assert(rec, type, row.pred, recasserts, &why);
			if (r < 0)
				goto bad;
			row_stats(i)[0] = r;
			break;
		}
		case F_RET:
			break;	/* all at once below */
		case F_LAT: {
			double v;
			int has;
			if (get_number(rec, "latency_ms", &v, &has, &why) < 0)
				goto bad;
			if (has)
				row_stats(i)[0] = v;
			break;
		}
		case F_TOK: {
			double u[3];
			int has;
			if (get_usage(rec, u, &has, &why) < 0)
				goto bad;
			if (has)
				memcpy(row_stats(i), u, sizeof u);
			break;
		}
		case F_JUDGE:
			if (judge_render(rec, &why) < 0)
				goto bad;
			break;
		case F_RUBRIC:
			break;	/* last: it is the slow one */
		}
	}
	for (size_t i = 0; i < ncols; i++) {
		double sc;
		if (cols[i].fam != F_RUBRIC)
			continue;
		if (run_rubric(rec->line, rec->len, &sc, &why) < 0)
			goto bad;
		row_stats(i)[0] = sc;
	}

	/* keep it */
	grow_items();
	size_t idx = nitems;
	struct item *it = &items[idx];
	memset(it, 0, sizeof *it);
	it->idkey = idkey;
	it->idjson = idjson;
	it->file = intern_name(rec->file);
	it->lineno = rec->lineno;
	it->reason = row.reason;
	row.reason = NULL;
	for (size_t c = 0; c < ncols; c++) {
		cols[c].has[idx] = row.has[c];
		memcpy(cols[c].v + idx * cols[c].nstats, row.v + c * PL_TM_MAXSTATS,
		       cols[c].nstats * sizeof(double));
	}
	nitems++;
	id_insert(idx);
	if (failed) {
		nerrors++;
		it->failed = 1;
	}
	keep_model(rec);
	if (row.prompt) {
		jmsgs.n = 0;
		pl_chat_msg_add(&jmsgs, "user", row.prompt, strlen(row.prompt));
		it->pending = 1;
		pl_chat_submit(chat, jmsgs.p, jmsgs.n, (void *)(uintptr_t)idx);
	}
	json_decref(recasserts);
	write_ready();
	return;
bad:
	pl_input_reject(rec, "%s", why);
done:
	free((char *)why);
	free(idkey);
	free(idjson);
	json_decref(recasserts);
}

/* --- aggregation ---------------------------------------------------------- */

/* A column's statistics for a set of items, in a fixed order; the values
 * of its present items sorted, for quantiles. */
struct view {
	double *v;
	unsigned char *has;
	size_t n, nstats;
	size_t *order;		/* present items by value */
	double *sorted;
	size_t nsorted;
};

static const double *sort_base;
static int by_value(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	double u = sort_base[x], w = sort_base[y];
	if (u != w)
		return u < w ? -1 : 1;
	return (x > y) - (x < y);
}

static void view_sort(struct view *w)
{
	w->order = pl_xmalloc((w->n + 1) * sizeof *w->order);
	w->sorted = pl_xmalloc((w->n + 1) * sizeof *w->sorted);
	w->nsorted = 0;
	for (size_t i = 0; i < w->n; i++)
		if (w->has[i])
			w->order[w->nsorted++] = i;
	double *first = pl_xmalloc((w->n + 1) * sizeof *first);
	for (size_t i = 0; i < w->n; i++)
		first[i] = w->v[i * w->nstats];
	sort_base = first;
	qsort(w->order, w->nsorted, sizeof *w->order, by_value);
	for (size_t j = 0; j < w->nsorted; j++)
		w->sorted[j] = first[w->order[j]];
	free(first);
}

/* The view of column c over items idx[0..n) (NULL: all items in order). */
static void view_of(struct view *w, const struct col *c, const size_t *idx, size_t n)
{
	memset(w, 0, sizeof *w);
	w->n = n;
	w->nstats = c->nstats;
	w->v = pl_xmalloc((n + 1) * c->nstats * sizeof *w->v);
	w->has = pl_xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t j = idx ? idx[i] : i;
		memcpy(w->v + i * c->nstats, c->v + j * c->nstats, c->nstats * sizeof *w->v);
		w->has[i] = c->has[j];
	}
	if (c->fam == F_LAT)
		view_sort(w);
}

static void view_free(struct view *w)
{
	free(w->v);
	free(w->has);
	free(w->order);
	free(w->sorted);
	memset(w, 0, sizeof *w);
}

static double *scratch;
static size_t scratch_n;
static uint32_t *wscratch;
static size_t wscratch_n;

/* The metric's value over the view with item multiplicities w (NULL: 1). */
static double aggregate(const struct metric *m, const struct view *vw, const uint32_t *w)
{
	size_t ns = vw->nstats;

	switch (m->agg) {
	case A_TM: {
		double sum[PL_TM_MAXSTATS] = { 0 };
		size_t cnt = 0;
		for (size_t i = 0; i < vw->n; i++) {
			uint32_t k = w ? w[i] : 1;
			if (!k || !vw->has[i])
				continue;
			const double *s = vw->v + i * ns;
			for (size_t j = 0; j < ns; j++)
				sum[j] += k * s[j];
			cnt += k;
		}
		return cnt ? pl_tm_score((enum pl_tm_metric)m->tm, &tmo, sum, cnt) : NAN;
	}
	case A_MEAN:
	case A_SUM: {
		double sum = 0, cnt = 0;
		size_t at = m->fam == F_TOK ? (size_t)m->sub : 0;
		for (size_t i = 0; i < vw->n; i++) {
			uint32_t k = w ? w[i] : 1;
			if (!k || !vw->has[i])
				continue;
			sum += k * vw->v[i * ns + at];
			cnt += k;
		}
		if (m->agg == A_SUM)
			return sum;
		return cnt ? sum / cnt : NAN;
	}
	case A_QUANT: {
		if (!w)
			return pl_ev_quantile(vw->sorted, NULL, vw->nsorted, m->q);
		if (wscratch_n < vw->nsorted + 1) {
			wscratch_n = vw->nsorted + 1;
			wscratch = pl_xrealloc(wscratch, wscratch_n * sizeof *wscratch);
		}
		for (size_t j = 0; j < vw->nsorted; j++)
			wscratch[j] = w[vw->order[j]];
		return pl_ev_quantile(vw->sorted, wscratch, vw->nsorted, m->q);
	}
	case A_CLS: {
		size_t L = nlabels ? nlabels : 1;
		if (scratch_n < L * L) {
			scratch_n = L * L;
			scratch = pl_xrealloc(scratch, scratch_n * sizeof *scratch);
		}
		memset(scratch, 0, L * L * sizeof *scratch);
		for (size_t i = 0; i < vw->n; i++) {
			uint32_t k = w ? w[i] : 1;
			if (!k || !vw->has[i])
				continue;
			size_t g = (size_t)vw->v[i * ns], p = (size_t)vw->v[i * ns + 1];
			scratch[g * L + p] += k;
		}
		return pl_ev_prf(scratch, L, (enum pl_ev_score)(m->sub / 3),
				 (enum pl_ev_avg)(m->sub % 3));
	}
	}
	return NAN;
}

static void score_all(void)
{
	struct view *views = pl_xmalloc((ncols + 1) * sizeof *views);
	uint32_t *w = pl_xmalloc((nitems + 1) * sizeof *w);
	struct pl_ev_rng rng;

	for (size_t c = 0; c < ncols; c++)
		view_of(&views[c], &cols[c], NULL, nitems);
	for (size_t i = 0; i < nmetrics; i++) {
		struct metric *m = &metrics[i];
		m->value = aggregate(m, &views[m->col], NULL);
		m->n = 0;
		for (size_t j = 0; j < nitems; j++)
			m->n += cols[m->col].has[j];
		m->boot = pl_xmalloc(((size_t)nboot + 1) * sizeof *m->boot);
	}
	pl_ev_rng_seed(&rng, seed);
	for (long b = 0; b < nboot && nitems; b++) {
		pl_ev_resample(&rng, w, nitems);
		for (size_t i = 0; i < nmetrics; i++)
			metrics[i].boot[b] = aggregate(&metrics[i], &views[metrics[i].col], w);
		if (pl_stop)
			pl_exit_signal();
	}
	for (size_t i = 0; i < nmetrics; i++) {
		struct metric *m = &metrics[i];
		if (nitems && nboot && m->n)
			pl_ev_ci95(m->boot, (size_t)nboot, &m->lo, &m->hi);
		free(m->boot);
		m->boot = NULL;
	}
	for (size_t c = 0; c < ncols; c++)
		view_free(&views[c]);
	free(views);
	free(w);
}

/* --- the baseline --------------------------------------------------------- */

static struct {
	size_t matched, only_current, only_baseline;
	json_t *sc;
} base;

/* The last non-blank line of path, parsed. */
static json_t *read_last_json(const char *path, unsigned long *lineno)
{
	struct pl_lines l;
	const char *line;
	size_t len;
	char *last = NULL;
	size_t lastlen = 0;
	int r;

	if (pl_lines_open(&l, path) < 0)
		pl_die(PL_EX_USAGE, "cannot open baseline '%s':", path);
	while ((r = pl_lines_next(&l, &line, &len)) == 1) {
		size_t k = 0;
		while (k < len && (line[k] == ' ' || line[k] == '\t'))
			k++;
		if (k == len)
			continue;
		free(last);
		last = pl_xstrndup(line, len);
		lastlen = len;
		*lineno = l.lineno;
	}
	if (r < 0)
		pl_die(PL_EX_USAGE, "cannot read baseline '%s':", path);
	pl_lines_close(&l);
	if (!last)
		pl_die(PL_EX_DATAERR, "%s: the baseline is empty", path);
	json_error_t je;
	json_t *j = json_loadb(last, lastlen, 0, &je);
	if (!j)
		pl_die(PL_EX_DATAERR, "%s:%lu: invalid JSON: %s (column %d)", path, *lineno, je.text,
		       je.column);
	free(last);
	return j;
}

static const char *metric_sig(const struct metric *m);

/* The key of a baseline item's id, as get_id makes it. */
static char *json_id_key(const json_t *id)
{
	char s[64];
	if (json_is_string(id))
		return pl_xstrndup(json_string_value(id), json_string_length(id));
	if (json_is_number(id)) {
		double d = json_number_value(id);
		if (d == floor(d) && fabs(d) < 9e15)
			snprintf(s, sizeof s, "\x01%.0f", d);
		else
			snprintf(s, sizeof s, "\x01%.17g", d);
		return pl_xstrdup(s);
	}
	return NULL;
}

static void compare_baseline(void)
{
	unsigned long ln = 0;
	json_t *root = read_last_json(baseline_path, &ln);
	json_t *sc = json_object_get(root, "scorecard");
	json_t *bitems = json_object_get(sc, "items"), *bm = json_object_get(sc, "metrics");

	if (!json_is_object(sc) || !json_is_object(bm))
		pl_die(PL_EX_DATAERR, "%s:%lu: not a scorecard (no \"scorecard\" with \"metrics\")",
		       baseline_path, ln);
	if (!json_is_array(bitems))
		pl_die(PL_EX_DATAERR, "%s:%lu: the scorecard has no per-item statistics (written with "
		       "--slim?), so it cannot be a baseline", baseline_path, ln);
	size_t nb = json_array_size(bitems);
	size_t *cur = pl_xmalloc((nitems + 1) * sizeof *cur), *bidx = pl_xmalloc((nb + 1) * sizeof *bidx);
	unsigned char *hit = pl_xmalloc(nitems + 1);
	memset(hit, 0, nitems + 1);
	for (size_t i = 0; i < nb; i++) {
		json_t *it = json_array_get(bitems, i);
		char *key = json_id_key(json_object_get(it, "id"));
		if (!key || !json_is_object(json_object_get(it, "stats")))
			pl_die(PL_EX_DATAERR, "%s:%lu: items[%zu] has no string or number \"id\" and "
			       "object \"stats\"", baseline_path, ln, i);
		size_t j = id_find(key);
		free(key);
		if (j == SIZE_MAX || hit[j]) {
			base.only_baseline += j == SIZE_MAX;
			continue;
		}
		hit[j] = 1;
		cur[base.matched] = j;
		bidx[base.matched++] = i;
	}
	base.only_current = nitems - base.matched;
	free(hit);
	if (!base.matched && nitems)
		pl_die(PL_EX_USAGE, "baseline '%s' has no item in common with this run (items are "
		       "matched by \"%s\")", baseline_path, id_field);
	if (base.only_current || base.only_baseline)
		pl_warn("baseline: %zu items matched by id; %zu only in this run and %zu only in the "
			"baseline are not compared", base.matched, base.only_current,
			base.only_baseline);

	/* the columns of the baseline, over the matched items in our order */
	struct col *bcols = pl_xmalloc((ncols + 1) * sizeof *bcols);
	struct view *cv = pl_xmalloc((ncols + 1) * sizeof *cv), *bv = pl_xmalloc((ncols + 1) * sizeof *bv);
	int *usable = pl_xmalloc((ncols + 1) * sizeof *usable);
	for (size_t c = 0; c < ncols; c++) {
		struct col *bc = &bcols[c];
		*bc = cols[c];
		bc->v = pl_xmalloc((base.matched + 1) * bc->nstats * sizeof *bc->v);
		bc->has = pl_xmalloc(base.matched + 1);
		usable[c] = 0;
		for (size_t i = 0; i < base.matched; i++) {
			json_t *st = json_object_get(json_object_get(json_array_get(bitems, bidx[i]),
								     "stats"), cols[c].name);
			bc->has[i] = 0;
			if (!st || json_is_null(st))
				continue;
			if (!json_is_array(st) || json_array_size(st) != bc->nstats)
				pl_die(PL_EX_DATAERR, "%s:%lu: items[%zu].stats.%s is not %zu statistics "
				       "as this run has", baseline_path, ln, bidx[i], cols[c].name,
				       bc->nstats);
			for (size_t k = 0; k < bc->nstats; k++) {
				json_t *x = json_array_get(st, k);
				if (cols[c].fam == F_CLS && json_is_string(x))
					bc->v[i * bc->nstats + k] = (double)label_index(json_string_value(x));
				else if (json_is_number(x) && cols[c].fam != F_CLS)
					bc->v[i * bc->nstats + k] = json_number_value(x);
				else
					pl_die(PL_EX_DATAERR, "%s:%lu: items[%zu].stats.%s holds a %s",
					       baseline_path, ln, bidx[i], cols[c].name,
					       json_is_string(x) ? "string" : "value of the wrong type");
			}
			bc->has[i] = 1;
			usable[c] = 1;
		}
		view_of(&cv[c], &cols[c], cur, base.matched);
		view_of(&bv[c], bc, NULL, base.matched);
	}

	size_t ncmp = 0;
	for (size_t i = 0; i < nmetrics; i++) {
		struct metric *m = &metrics[i];
		json_t *bmet = json_object_get(bm, m->name);
		m->cmp = 0;
		if (m->higher < 0) {
			m->why = "not a quality metric";
			continue;
		}
		if (!json_is_object(bmet) || !usable[m->col]) {
			m->why = "not in the baseline";
			continue;
		}
		const char *bsig = json_string_value(json_object_get(bmet, "signature"));
		const char *sig = metric_sig(m);
		if (sig && (!bsig || strcmp(sig, bsig) != 0)) {
			m->why = "the baseline's signature differs";
			pl_warn("baseline: %s not compared: signature '%s' here, '%s' there", m->name, sig,
				bsig ? bsig : "(none)");
			continue;
		}
		m->cmp = 1;
		ncmp++;
		m->c_value = aggregate(m, &cv[m->col], NULL);
		m->b_value = aggregate(m, &bv[m->col], NULL);
		m->delta = m->c_value - m->b_value;
		m->boot = pl_xmalloc(((size_t)nboot + 1) * 2 * sizeof *m->boot);
	}
	struct pl_ev_rng rng;
	uint32_t *w = pl_xmalloc((base.matched + 1) * sizeof *w);
	pl_ev_rng_seed(&rng, seed);
	for (long b = 0; b < nboot && ncmp; b++) {
		pl_ev_resample(&rng, w, base.matched);
		for (size_t i = 0; i < nmetrics; i++) {
			struct metric *m = &metrics[i];
			if (!m->cmp)
				continue;
			m->boot[b] = aggregate(m, &cv[m->col], w);
			m->boot[nboot + b] = aggregate(m, &bv[m->col], w);
		}
		if (pl_stop)
			pl_exit_signal();
	}
	for (size_t i = 0; i < nmetrics; i++) {
		struct metric *m = &metrics[i];
		if (!m->cmp)
			continue;
		double tol = m->has_tol ? m->tol : tol_all;
		double drop = m->higher ? m->b_value - m->c_value : m->c_value - m->b_value;
		m->p = nboot ? pl_ev_paired_p(m->boot, m->boot + nboot, (size_t)nboot, m->delta) : NAN;
		if (isnan(m->c_value) || isnan(m->b_value))
			m->regression = 0;
		else
			m->regression = drop > tol && (!nboot || m->p < alpha);
		free(m->boot);
		m->boot = NULL;
	}
	for (size_t c = 0; c < ncols; c++) {
		view_free(&cv[c]);
		view_free(&bv[c]);
		free(bcols[c].v);
		free(bcols[c].has);
	}
	free(bcols);
	free(cv);
	free(bv);
	free(usable);
	free(w);
	free(cur);
	free(bidx);
	base.sc = root;
}

/* --- gates ---------------------------------------------------------------- */

static int run_gates(void)
{
	int failed = 0;
	for (size_t i = 0; i < ngates; i++) {
		struct gate *g = &gates[i];
		double v = g->bound == 1 ? g->m->lo : g->bound == 2 ? g->m->hi : g->m->value;
		const char *o = g->op;
		int ok;
		g->got = v;
		if (isnan(v))
			ok = 0;
		else if (strcmp(o, ">=") == 0)
			ok = v >= g->want;
		else if (strcmp(o, "<=") == 0)
			ok = v <= g->want;
		else if (strcmp(o, ">") == 0)
			ok = v > g->want;
		else if (strcmp(o, "<") == 0)
			ok = v < g->want;
		else if (strcmp(o, "==") == 0)
			ok = v == g->want;
		else
			ok = v != g->want;
		g->passed = ok;
		failed += !ok;
	}
	return failed;
}

/* --- output --------------------------------------------------------------- */

static const char *metric_sig(const struct metric *m)
{
	if (m->fam != F_TM)
		return NULL;
	return m->sig;
}

/* nrefs in a signature is the most references an item had */
static void make_sigs(void)
{
	for (size_t i = 0; i < nmetrics; i++) {
		struct metric *m = &metrics[i];
		if (m->fam == F_TM)
			pl_tm_signature((enum pl_tm_metric)m->tm, &tmo, refs_max ? refs_max : 1, m->sig,
					sizeof m->sig);
	}
}

static void put_item_scores(struct pl_buf *b, size_t i)
{
	struct item *it = &items[i];
	int first = 1, lat = 0;

	pl_buf_addc(b, '{');
	pl_json_put_key(b, "id");
	pl_buf_adds(b, it->idjson);
	pl_buf_add(b, ",\"scores\":{", 11);
	for (size_t k = 0; k < nmetrics; k++) {
		struct metric *m = &metrics[k];
		struct col *c = &cols[m->col];
		const double *s = c->v + i * c->nstats;
		if (m->agg == A_CLS)
			continue;
		if (m->fam == F_LAT) {
			if (lat++)
				continue;
			if (!first)
				pl_buf_addc(b, ',');
			first = 0;
			pl_json_put_key(b, "latency_ms");
			put_num(b, c->has[i] ? s[0] : NAN);
			continue;
		}
		if (!first)
			pl_buf_addc(b, ',');
		first = 0;
		pl_json_put_str(b, m->name, strlen(m->name));
		pl_buf_addc(b, ':');
		if (!c->has[i])
			pl_buf_adds(b, "null");
		else if (m->agg == A_TM)
			put_num(b, pl_tm_score((enum pl_tm_metric)m->tm, &tmo, s, 1));
		else
			put_num(b, s[m->fam == F_TOK ? m->sub : 0]);
	}
	pl_buf_addc(b, '}');
	if (it->failed)
		pl_buf_adds(b, ",\"error\":true");
	for (size_t c = 0; c < ncols; c++)
		if (cols[c].fam == F_CLS && cols[c].has[i]) {
			const double *s = cols[c].v + i * 2;
			pl_buf_adds(b, ",\"label\":");
			pl_json_put_str(b, labels[(size_t)s[0]], strlen(labels[(size_t)s[0]]));
			pl_buf_adds(b, ",\"predicted\":");
			pl_json_put_str(b, labels[(size_t)s[1]], strlen(labels[(size_t)s[1]]));
		}
	if (it->reason) {
		pl_buf_adds(b, ",\"rubric_reason\":");
		pl_json_put_str(b, it->reason, strlen(it->reason));
	}
	if (it->jreply) {
		pl_buf_adds(b, ",\"judge_reply\":");
		pl_json_put_str(b, it->jreply, strlen(it->jreply));
	}
	if (it->jerr) {
		pl_buf_adds(b, ",\"judge_error\":");
		pl_json_put_str(b, it->jerr, strlen(it->jerr));
	}
	pl_buf_addc(b, '}');
}

static char *model_name(void)
{
	struct pl_buf b = PL_BUF_INIT;
	if (model_opt)
		return pl_xstrdup(model_opt);
	if (!nmodels)
		return NULL;
	for (size_t i = 0; i < nmodels; i++) {
		if (i)
			pl_buf_addc(&b, ',');
		pl_buf_adds(&b, models[i]);
	}
	if (many_models)
		pl_buf_adds(&b, ",...");
	pl_buf_addc(&b, 0);
	return b.p;
}

static void put_str_or_null(struct pl_buf *b, const char *s)
{
	if (s)
		pl_json_put_str(b, s, strlen(s));
	else
		pl_buf_adds(b, "null");
}

static size_t nregressions(void)
{
	size_t n = 0;
	for (size_t i = 0; i < nmetrics; i++)
		n += metrics[i].regression;
	return n;
}

static size_t ngates_failed(void)
{
	size_t n = 0;
	for (size_t i = 0; i < ngates; i++)
		n += !gates[i].passed;
	return n;
}

static const char *unit_of(const struct metric *m)
{
	if (m->fam == F_LAT)
		return "ms";
	if (m->fam == F_TOK)
		return "tokens";
	return NULL;
}

/* label order: numerically when every label is a number, as scikit-learn
 * sorts integer labels; else byte by byte (code point order) */
static int label_cmp(const void *a, const void *b)
{
	const char *x = labels[*(const size_t *)a], *y = labels[*(const size_t *)b];
	if (labels_numeric) {
		double u = strtod(x, NULL), v = strtod(y, NULL);
		if (u != v)
			return u < v ? -1 : 1;
	}
	return strcmp(x, y);
}

static void put_classification(struct pl_buf *b)
{
	size_t cc = SIZE_MAX;
	for (size_t c = 0; c < ncols; c++)
		if (cols[c].fam == F_CLS)
			cc = c;
	if (cc == SIZE_MAX)
		return;
	size_t L = nlabels, *ord = pl_xmalloc((L + 1) * sizeof *ord), nl = 0;
	double *cm = pl_xmalloc((L * L + 1) * sizeof *cm);
	memset(cm, 0, (L * L + 1) * sizeof *cm);
	for (size_t i = 0; i < nitems; i++)
		if (cols[cc].has[i])
			cm[(size_t)cols[cc].v[i * 2] * L + (size_t)cols[cc].v[i * 2 + 1]] += 1;
	/* the labels of this run (a baseline may have added others) */
	for (size_t l = 0; l < L; l++) {
		double any = 0;
		for (size_t j = 0; j < L; j++)
			any += cm[l * L + j] + cm[j * L + l];
		if (any > 0)
			ord[nl++] = l;
	}
	qsort(ord, nl, sizeof *ord, label_cmp);
	pl_buf_adds(b, ",\"classification\":{\"labels\":[");
	for (size_t i = 0; i < nl; i++) {
		if (i)
			pl_buf_addc(b, ',');
		pl_json_put_str(b, labels[ord[i]], strlen(labels[ord[i]]));
	}
	pl_buf_adds(b, "],\"confusion\":[");
	for (size_t i = 0; i < nl; i++) {
		pl_buf_adds(b, i ? ",[" : "[");
		for (size_t j = 0; j < nl; j++) {
			if (j)
				pl_buf_addc(b, ',');
			put_num(b, cm[ord[i] * L + ord[j]]);
		}
		pl_buf_addc(b, ']');
	}
	pl_buf_adds(b, "],\"per_class\":{");
	for (size_t i = 0; i < nl; i++) {
		double p, r, f, s;
		pl_ev_class_prf(cm, L, ord[i], &p, &r, &f, &s);
		if (i)
			pl_buf_addc(b, ',');
		pl_json_put_str(b, labels[ord[i]], strlen(labels[ord[i]]));
		pl_buf_adds(b, ":{\"precision\":");
		put_num(b, p);
		pl_buf_adds(b, ",\"recall\":");
		put_num(b, r);
		pl_buf_adds(b, ",\"f1\":");
		put_num(b, f);
		pl_buf_adds(b, ",\"support\":");
		put_num(b, s);
		pl_buf_addc(b, '}');
	}
	pl_buf_adds(b, "}}");
	free(ord);
	free(cm);
}

static void put_scorecard(struct pl_buf *b, int passed)
{
	char *model = model_name();

	pl_buf_adds(b, "{\"scorecard\":{\"suite\":");
	put_str_or_null(b, suite);
	pl_buf_adds(b, ",\"model\":");
	put_str_or_null(b, model);
	pl_buf_adds(b, ",\"n\":");
	pl_buf_u64(b, nitems);
	pl_buf_adds(b, ",\"errors\":");
	pl_buf_u64(b, nerrors);
	if (skip_errors) {
		pl_buf_adds(b, ",\"skipped_errors\":");
		pl_buf_u64(b, nskipped_errors);
	}
	pl_buf_adds(b, ",\"rejected\":");
	pl_buf_u64(b, pl_input_rejected());
	pl_buf_printf(b, ",\"signature\":\"evalscore|bootstrap:%ld|seed:%llu|ci:percentile|"
		      "version:%s\"", nboot, seed, PLUMB_VERSION);
	pl_buf_adds(b, ",\"metrics\":{");
	for (size_t i = 0; i < nmetrics; i++) {
		struct metric *m = &metrics[i];
		if (i)
			pl_buf_addc(b, ',');
		pl_json_put_str(b, m->name, strlen(m->name));
		pl_buf_adds(b, ":{\"value\":");
		put_num(b, m->value);
		pl_buf_adds(b, ",\"ci95\":");
		if (isnan(m->lo)) {
			pl_buf_adds(b, "null");
		} else {
			pl_buf_addc(b, '[');
			put_num(b, m->lo);
			pl_buf_addc(b, ',');
			put_num(b, m->hi);
			pl_buf_addc(b, ']');
		}
		pl_buf_adds(b, ",\"n\":");
		pl_buf_u64(b, m->n);
		pl_buf_adds(b, m->higher == 1 ? ",\"better\":\"higher\"" : m->higher == 0 ?
			    ",\"better\":\"lower\"" : ",\"better\":null");
		if (unit_of(m))
			pl_buf_printf(b, ",\"unit\":\"%s\"", unit_of(m));
		if (metric_sig(m)) {
			pl_buf_adds(b, ",\"signature\":");
			pl_json_put_str(b, m->sig, strlen(m->sig));
		}
		pl_buf_addc(b, '}');
	}
	pl_buf_addc(b, '}');
	put_classification(b);
	if (fam_used(F_JUDGE)) {
		pl_buf_printf(b, ",\"judge\":{\"model\":");
		put_str_or_null(b, jo.model);
		pl_buf_printf(b, ",\"scale\":[");
		put_num(b, judge_min);
		pl_buf_addc(b, ',');
		put_num(b, judge_max);
		pl_buf_printf(b, "],\"unparsed\":%lu,\"failed\":%lu,\"problems\":[", judge_unparsed,
			      judge_failed);
		int first = 1;
		for (size_t i = 0; i < nitems; i++) {
			if (!items[i].jerr)
				continue;
			pl_buf_adds(b, first ? "{\"id\":" : ",{\"id\":");
			first = 0;
			pl_buf_adds(b, items[i].idjson);
			pl_buf_adds(b, ",\"error\":");
			pl_json_put_str(b, items[i].jerr, strlen(items[i].jerr));
			pl_buf_adds(b, ",\"reply\":");
			put_str_or_null(b, items[i].jreply);
			pl_buf_addc(b, '}');
		}
		pl_buf_adds(b, "]}");
	}
	if (baseline_path) {
		pl_buf_adds(b, ",\"baseline\":{\"file\":");
		pl_json_put_str(b, baseline_path, strlen(baseline_path));
		json_t *bs = json_object_get(base.sc, "scorecard");
		pl_buf_adds(b, ",\"suite\":");
		put_str_or_null(b, json_string_value(json_object_get(bs, "suite")));
		pl_buf_adds(b, ",\"model\":");
		put_str_or_null(b, json_string_value(json_object_get(bs, "model")));
		pl_buf_printf(b, ",\"matched\":%zu,\"only_current\":%zu,\"only_baseline\":%zu", base.matched,
			      base.only_current, base.only_baseline);
		pl_buf_adds(b, ",\"alpha\":");
		put_num(b, alpha);
		pl_buf_adds(b, ",\"comparisons\":{");
		int first = 1;
		for (size_t i = 0; i < nmetrics; i++) {
			struct metric *m = &metrics[i];
			if (!first)
				pl_buf_addc(b, ',');
			first = 0;
			pl_json_put_str(b, m->name, strlen(m->name));
			if (!m->cmp) {
				pl_buf_adds(b, ":{\"compared\":false,\"why\":");
				put_str_or_null(b, m->why);
				pl_buf_addc(b, '}');
				continue;
			}
			pl_buf_adds(b, ":{\"compared\":true,\"baseline\":");
			put_num(b, m->b_value);
			pl_buf_adds(b, ",\"current\":");
			put_num(b, m->c_value);
			pl_buf_adds(b, ",\"delta\":");
			put_num(b, m->delta);
			pl_buf_adds(b, ",\"p_value\":");
			put_num(b, m->p);
			pl_buf_adds(b, ",\"tolerance\":");
			put_num(b, m->has_tol ? m->tol : tol_all);
			pl_buf_printf(b, ",\"regression\":%s}", m->regression ? "true" : "false");
		}
		pl_buf_adds(b, "}}");
	}
	pl_buf_adds(b, ",\"regressions\":[");
	int first = 1;
	for (size_t i = 0; i < nmetrics; i++) {
		struct metric *m = &metrics[i];
		if (!m->regression)
			continue;
		pl_buf_adds(b, first ? "{\"metric\":" : ",{\"metric\":");
		first = 0;
		pl_json_put_str(b, m->name, strlen(m->name));
		pl_buf_adds(b, ",\"baseline\":");
		put_num(b, m->b_value);
		pl_buf_adds(b, ",\"current\":");
		put_num(b, m->c_value);
		pl_buf_adds(b, ",\"delta\":");
		put_num(b, m->delta);
		pl_buf_adds(b, ",\"p_value\":");
		put_num(b, m->p);
		pl_buf_addc(b, '}');
	}
	pl_buf_adds(b, "],\"gates\":[");
	for (size_t i = 0; i < ngates; i++) {
		struct gate *g = &gates[i];
		pl_buf_adds(b, i ? ",{\"gate\":" : "{\"gate\":");
		pl_json_put_str(b, g->text, strlen(g->text));
		pl_buf_adds(b, ",\"metric\":");
		pl_json_put_str(b, g->name, strlen(g->name));
		pl_buf_adds(b, ",\"value\":");
		put_num(b, g->got);
		pl_buf_printf(b, ",\"passed\":%s}", g->passed ? "true" : "false");
	}
	pl_buf_printf(b, "],\"passed\":%s", passed ? "true" : "false");
	if (!slim) {
		pl_buf_adds(b, ",\"items\":[");
		for (size_t i = 0; i < nitems; i++) {
			pl_buf_adds(b, i ? ",{\"id\":" : "{\"id\":");
			pl_buf_adds(b, items[i].idjson);
			pl_buf_adds(b, ",\"stats\":{");
			for (size_t c = 0; c < ncols; c++) {
				const double *s = cols[c].v + i * cols[c].nstats;
				if (c)
					pl_buf_addc(b, ',');
				pl_json_put_str(b, cols[c].name, strlen(cols[c].name));
				pl_buf_addc(b, ':');
				if (!cols[c].has[i]) {
					pl_buf_adds(b, "null");
					continue;
				}
				pl_buf_addc(b, '[');
				for (size_t k = 0; k < cols[c].nstats; k++) {
					if (k)
						pl_buf_addc(b, ',');
					if (cols[c].fam == F_CLS)
						pl_json_put_str(b, labels[(size_t)s[k]],
								strlen(labels[(size_t)s[k]]));
					else
						put_num(b, s[k]);
				}
				pl_buf_addc(b, ']');
			}
			pl_buf_adds(b, "}}");
			if (b == &pl_out && pl_out.n >= 1 << 16)
				pl_out_flush();
		}
		pl_buf_addc(b, ']');
	}
	pl_buf_adds(b, "}}");
	free(model);
}

/* A number for people: 4 decimals for scores, 2 for BLEU/chrF (as
 * sacreBLEU prints), 1 for milliseconds, none for token counts. */
static void fmt_num(char *out, size_t n, const struct metric *m, double v)
{
	int d = 4;
	if (m->fam == F_TM && (m->tm == PL_TM_BLEU || m->tm == PL_TM_CHRF || m->tm == PL_TM_CHRFPP))
		d = 2;
	else if (m->fam == F_LAT)
		d = 1;
	else if (m->fam == F_TOK)
		d = 0;
	else if (m->fam == F_RUBRIC || m->fam == F_JUDGE)
		d = 3;
	if (isnan(v))
		snprintf(out, n, "-");
	else
		snprintf(out, n, "%.*f", d, v);
}

static void put_human(struct pl_buf *b, int md, int passed)
{
	char *model = model_name();
	char v[40], lo[40], hi[40], bv[40], dv[40];

	if (md) {
		pl_buf_printf(b, "**suite** %s · **model** %s · **n** %zu", suite ? suite : "-",
			      model ? model : "-", nitems);
	} else {
		pl_buf_printf(b, "suite %s   model %s   n %zu", suite ? suite : "-", model ? model : "-",
			      nitems);
	}
	if (nerrors)
		pl_buf_printf(b, md ? " · **errors** %lu" : "   errors %lu", nerrors);
	pl_buf_printf(b, md ? " · bootstrap %ld, seed %llu\n\n" : "   bootstrap %ld, seed %llu\n\n",
		      nboot, seed);
	if (md)
		pl_buf_printf(b, "| metric | value | 95%% CI | n |%s\n|---|---:|---|---:|%s\n",
			      baseline_path ? " baseline | delta | p | |" : "",
			      baseline_path ? "---:|---:|---:|---|" : "");
	else
		pl_buf_printf(b, "%-22s %10s  %-21s %6s%s\n", "metric", "value", "95% CI", "n",
			      baseline_path ? "   baseline      delta       p" : "");
	for (size_t i = 0; i < nmetrics; i++) {
		struct metric *m = &metrics[i];
		char ci[90];
		fmt_num(v, sizeof v, m, m->value);
		fmt_num(lo, sizeof lo, m, m->lo);
		fmt_num(hi, sizeof hi, m, m->hi);
		if (isnan(m->lo))
			snprintf(ci, sizeof ci, "-");
		else
			snprintf(ci, sizeof ci, "[%s, %s]", lo, hi);
		if (md)
			pl_buf_printf(b, "| %s | %s | %s | %zu |", m->name, v, ci, m->n);
		else
			pl_buf_printf(b, "%-22s %10s  %-21s %6zu", m->name, v, ci, m->n);
		if (baseline_path && m->cmp) {
			char p[20];
			fmt_num(bv, sizeof bv, m, m->b_value);
			fmt_num(dv + 1, sizeof dv - 1, m, m->delta);
			dv[0] = m->delta >= 0 ? '+' : ' ';
			snprintf(p, sizeof p, isnan(m->p) ? "-" : "%.4f", m->p);
			const char *d = dv[1] == '-' ? dv + 1 : dv;
			if (md)
				pl_buf_printf(b, " %s | %s | %s | %s |", bv, d, p,
					      m->regression ? "**regression**" : "");
			else
				pl_buf_printf(b, " %10s %10s  %6s%s", bv, d, p,
					      m->regression ? "  REGRESSION" : "");
		} else if (baseline_path) {
			if (md)
				pl_buf_printf(b, " - | - | - | %s |", m->why ? m->why : "");
			else
				pl_buf_printf(b, "   (%s)", m->why ? m->why : "not compared");
		}
		pl_buf_addc(b, '\n');
	}
	for (size_t i = 0; i < ngates; i++) {
		struct gate *g = &gates[i];
		fmt_num(v, sizeof v, g->m, g->got);
		pl_buf_printf(b, md ? "%s- gate `%s`: %s (%s)\n" : "%sgate %s: %s (%s)\n",
			      i ? "" : "\n", g->text, g->passed ? "passed" : "FAILED", v);
	}
	if (fam_used(F_JUDGE) && (judge_unparsed || judge_failed))
		pl_buf_printf(b, "\njudge: %lu replies without a usable score, %lu requests failed\n",
			      judge_unparsed, judge_failed);
	size_t nr = nregressions(), ng = ngates_failed();
	if (md)
		pl_buf_printf(b, "\n**%s**", passed ? "passed" : "FAILED");
	else
		pl_buf_printf(b, "\n%s", passed ? "passed" : "FAILED");
	if (!passed)
		pl_buf_printf(b, ": %zu regression%s, %zu gate%s failed", nr, nr == 1 ? "" : "s", ng,
			      ng == 1 ? "" : "s");
	pl_buf_addc(b, '\n');
	free(model);
}

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; "chrf++" becomes
 * chrf_pp, "recall@5" recall_at_5, anything else outside the set "_". */
static void prom_name(struct pl_buf *b, const char *name)
{
	for (const char *p = name; *p; p++) {
		if (*p == '+' && p[1] == '+') {
			pl_buf_adds(b, "_pp");
			p++;
		} else if (*p == '@') {
			pl_buf_adds(b, "_at_");
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || *p == '_') {
			pl_buf_addc(b, *p);
		} else {
			pl_buf_addc(b, '_');
		}
	}
}

static void prom_label_value(struct pl_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			pl_buf_addc(b, '\\');
		if (*s == '\n')
			pl_buf_adds(b, "\\n");
		else
			pl_buf_addc(b, *s);
	}
}

static void prom_sample(struct pl_buf *b, const char *name, const char *suffix, const char *what,
			const char *labels_text, double v)
{
	struct pl_buf nm = PL_BUF_INIT;
	pl_buf_adds(&nm, "plumb_eval_");
	prom_name(&nm, name);
	pl_buf_adds(&nm, suffix);
	pl_buf_addc(&nm, 0);
	pl_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s%s ", nm.p, what, nm.p, nm.p, labels_text);
	if (isnan(v))
		pl_buf_adds(b, "NaN");
	else
		put_num(b, v);
	pl_buf_addc(b, '\n');
	pl_buf_free(&nm);
}

static void put_prometheus(struct pl_buf *b, int passed)
{
	struct pl_buf lb = PL_BUF_INIT, hb = PL_BUF_INIT;
	char *model = model_name();

	pl_buf_addc(&lb, '{');
	pl_buf_adds(&lb, "suite=\"");
	prom_label_value(&lb, suite ? suite : "");
	pl_buf_adds(&lb, "\",model=\"");
	prom_label_value(&lb, model ? model : "");
	pl_buf_adds(&lb, "\"}");
	pl_buf_addc(&lb, 0);
	for (size_t i = 0; i < nmetrics; i++) {
		struct metric *m = &metrics[i];
		hb.n = 0;
		pl_buf_printf(&hb, "evalscore %s", m->name);
		pl_buf_addc(&hb, 0);
		prom_sample(b, m->name, "", hb.p, lb.p, m->value);
		hb.n = 0;
		pl_buf_printf(&hb, "evalscore %s, 95%% bootstrap interval, lower bound", m->name);
		pl_buf_addc(&hb, 0);
		prom_sample(b, m->name, "_ci95_low", hb.p, lb.p, m->lo);
		hb.n = 0;
		pl_buf_printf(&hb, "evalscore %s, 95%% bootstrap interval, upper bound", m->name);
		pl_buf_addc(&hb, 0);
		prom_sample(b, m->name, "_ci95_high", hb.p, lb.p, m->hi);
	}
	prom_sample(b, "items", "", "evalscore items scored", lb.p, (double)nitems);
	prom_sample(b, "regressions", "", "evalscore regressions against the baseline", lb.p,
		    (double)nregressions());
	prom_sample(b, "gates_failed", "", "evalscore gates that failed", lb.p,
		    (double)ngates_failed());
	prom_sample(b, "passed", "", "evalscore: 1 when no regression and every gate passed", lb.p,
		    passed);
	pl_buf_free(&lb);
	pl_buf_free(&hb);
	free(model);
}

/* --- main ----------------------------------------------------------------- */

static double parse_double(const char *opt, const char *s, double min, double max)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max))
		pl_usage_error("%s: '%s' is not a number from %g to %g", opt, s, min, max);
	return v;
}

static void setup_judge(const char *keyfile, const char *scale, const char *pattern)
{
	char err[PL_CHAT_ERRLEN];
	int st;

	if (!jo.model)
		pl_usage_error("the judge metric needs --judge-model (or PLUMB_JUDGE_MODEL)");
	if (strncmp(jo.base_url, "http://", 7) != 0 && strncmp(jo.base_url, "https://", 8) != 0)
		pl_usage_error("--base-url '%s' is not an http(s) URL", jo.base_url);
	if (scale) {
		char *end;
		errno = 0;
		judge_min = strtod(scale, &end);
		if (*end != ':' || errno)
			pl_usage_error("--judge-scale '%s': want MIN:MAX", scale);
		judge_max = parse_double("--judge-scale", end + 1, -1e300, 1e300);
		if (!(judge_min < judge_max))
			pl_usage_error("--judge-scale '%s': want MIN:MAX with MIN < MAX", scale);
	}
	int rc = regcomp(&judge_re, pattern ? pattern : JUDGE_PATTERN, REG_EXTENDED | REG_ICASE);
	if (rc) {
		regerror(rc, &judge_re, err, sizeof err);
		pl_usage_error("--judge-pattern '%s': %s", pattern, err);
	}
	judge_re_groups = judge_re.re_nsub > 0;
	judge_prompt = judge_prompt_path ? pl_read_file(judge_prompt_path, "judge prompt", NULL)
					 : pl_xstrdup(default_judge_prompt);
	if (keyfile)
		jo.api_key = pl_read_key_file(keyfile);
	/* a grade should not depend on sampling */
	jo.has_temperature = 1;
	jo.temperature = 0;
	jo.stop_flag = &pl_stop;
	chat = pl_chat_new(&jo, on_judge, NULL, err, &st);
	if (!chat)
		pl_die(st, "judge: %s", err);
}

int main(int argc, char **argv)
{
	enum { O_PRED = 0x2000, O_REF, O_ID, O_ASSERT, O_STEM, O_LOWER, O_MATCH, O_RUBRIC,
	       O_JMODEL, O_JPROMPT, O_JSCALE, O_JPATTERN, O_BASE, O_KEYFILE, O_CONC, O_CACHE,
	       O_TIMEOUT, O_RETRIES, O_BOOT, O_SEED, O_BASELINE, O_TOL, O_ALPHA, O_GATE, O_SUITE,
	       O_MODEL, O_FORMAT, O_ITEMS, O_SLIM, O_SKIPERR };
	static const struct option longopts[] = {
		{ "metrics", required_argument, NULL, 'm' },
		{ "pred", required_argument, NULL, O_PRED },
		{ "ref", required_argument, NULL, O_REF },
		{ "id", required_argument, NULL, O_ID },
		{ "assert", required_argument, NULL, O_ASSERT },
		{ "rouge-stem", no_argument, NULL, O_STEM },
		{ "lowercase", no_argument, NULL, O_LOWER },
		{ "match", required_argument, NULL, O_MATCH },
		{ "rubric-cmd", required_argument, NULL, O_RUBRIC },
		{ "judge-model", required_argument, NULL, O_JMODEL },
		{ "judge-prompt", required_argument, NULL, O_JPROMPT },
		{ "judge-scale", required_argument, NULL, O_JSCALE },
		{ "judge-pattern", required_argument, NULL, O_JPATTERN },
		{ "base-url", required_argument, NULL, O_BASE },
		{ "api-key-file", required_argument, NULL, O_KEYFILE },
		{ "concurrency", required_argument, NULL, O_CONC },
		{ "cache", required_argument, NULL, O_CACHE },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "bootstrap", required_argument, NULL, O_BOOT },
		{ "seed", required_argument, NULL, O_SEED },
		{ "baseline", required_argument, NULL, O_BASELINE },
		{ "tolerance", required_argument, NULL, O_TOL },
		{ "alpha", required_argument, NULL, O_ALPHA },
		{ "gate", required_argument, NULL, O_GATE },
		{ "suite", required_argument, NULL, O_SUITE },
		{ "model", required_argument, NULL, O_MODEL },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "items", no_argument, NULL, O_ITEMS },
		{ "slim", no_argument, NULL, O_SLIM },
		{ "skip-errors", no_argument, NULL, O_SKIPERR },
		PL_COMMON_LONGOPTS,
		{ 0 }
	};
	const char *fmt, *keyfile, *jscale = NULL, *jpattern = NULL, *env;
	int c, any_metric = 0, any_gate = 0, any_tol = 0, judge_flag = 0;
	struct pl_rec rec = { 0 };
	unsigned long long nrec = 0, bytes = 0;

	pl_init("evalscore", usage, help);
	pl_chat_opts_default(&jo);
	pred_field = pl_env("PLUMB_EVAL_PRED", "output");
	ref_field = pl_env("PLUMB_EVAL_REF", NULL);
	suite = pl_env("PLUMB_EVAL_SUITE", NULL);
	model_opt = pl_env("PLUMB_EVAL_MODEL", NULL);
	baseline_path = pl_env("PLUMB_EVAL_BASELINE", NULL);
	fmt = pl_env("PLUMB_EVAL_FORMAT", NULL);
	nboot = pl_env_long("PLUMB_EVAL_BOOTSTRAP", 1000);
	seed = (unsigned long long)pl_env_long("PLUMB_EVAL_SEED", 12345);
	env = pl_env("PLUMB_EVAL_ALPHA", NULL);
	if (env)
		alpha = parse_double("PLUMB_EVAL_ALPHA", env, 0, 1);
	jo.model = pl_env("PLUMB_JUDGE_MODEL", NULL);
	judge_prompt_path = pl_env("PLUMB_JUDGE_PROMPT", NULL);
	jo.base_url = pl_env("OPENAI_BASE_URL", "https://api.openai.com/v1");
	jo.api_key = pl_env("OPENAI_API_KEY", NULL);
	keyfile = pl_env("PLUMB_API_KEY_FILE", NULL);
	jo.concurrency = (int)pl_env_long("PLUMB_JUDGE_CONCURRENCY", 4);
	jo.cache = pl_env("PLUMB_JUDGE_CACHE", NULL);
	jo.timeout_ms = pl_env_long("PLUMB_TIMEOUT", 600) * 1000;
	rejects_set = pl_env("PLUMB_REJECTS", NULL) != NULL;
	while ((c = getopt_long(argc, argv, "m:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': add_metric_list(optarg); any_metric = 1; break;
		case O_PRED: pred_field = optarg; break;
		case O_REF: ref_field = optarg; break;
		case O_ID: id_field = optarg; break;
		case O_ASSERT: add_check(optarg); break;
		case O_STEM: tmo.rouge_stem = 1; break;
		case O_LOWER: tmo.lowercase = 1; break;
		case O_MATCH:
			if (strcmp(optarg, "doc_id") != 0 && strcmp(optarg, "id") != 0)
				pl_usage_error("--match '%s': want doc_id or id", optarg);
			match_key = optarg;
			break;
		case O_RUBRIC: rubric_cmd = optarg; break;
		case O_JMODEL: jo.model = optarg; judge_flag = 1; break;
		case O_JPROMPT: judge_prompt_path = optarg; break;
		case O_JSCALE: jscale = optarg; break;
		case O_JPATTERN: jpattern = optarg; break;
		case O_BASE: jo.base_url = optarg; break;
		case O_KEYFILE: keyfile = optarg; break;
		case O_CONC: jo.concurrency = (int)pl_parse_long("--concurrency", optarg, 1, 1024); break;
		case O_CACHE: jo.cache = optarg; break;
		case O_TIMEOUT:
			jo.timeout_ms = pl_parse_long("--timeout", optarg, 1, 86400) * 1000;
			break;
		case O_RETRIES: jo.max_tries = (int)pl_parse_long("--retries", optarg, 1, 100); break;
		case O_BOOT: nboot = pl_parse_long("--bootstrap", optarg, 0, 1000000); break;
		case O_SEED:
			seed = (unsigned long long)pl_parse_long("--seed", optarg, 0, 1L << 62);
			break;
		case O_BASELINE: baseline_path = optarg; break;
		case O_TOL: add_tol_list(optarg); any_tol = 1; break;
		case O_ALPHA: alpha = parse_double("--alpha", optarg, 0, 1); break;
		case O_GATE: add_gate_list(optarg); any_gate = 1; break;
		case O_SUITE: suite = optarg; break;
		case O_MODEL: model_opt = optarg; break;
		case O_FORMAT: fmt = optarg; break;
		case O_ITEMS: want_items = 1; break;
		case O_SLIM: slim = 1; break;
		case O_SKIPERR: skip_errors = 1; break;
		case PL_OPT_REJECTS: rejects_set = 1; pl_common_option(c, optarg); break;
		default: pl_common_option(c, optarg);
		}
	}
	if (nboot > 1000000)
		pl_usage_error("PLUMB_EVAL_BOOTSTRAP must be from 0 to 1000000");
	if (!any_metric && (env = pl_env("PLUMB_EVAL_METRICS", NULL)))
		add_metric_list(env);
	if (rubric_cmd)
		add_metric("rubric");
	if (judge_flag)
		add_metric("judge");
	if (!nmetrics)
		pl_usage_error("no metric: name some with -m (for example -m exact_match,f1)");
	if (metric_find("rubric") && !rubric_cmd)
		pl_usage_error("the rubric metric needs --rubric-cmd");
	if (!any_gate && (env = pl_env("PLUMB_EVAL_GATES", NULL)))
		add_gate_list(env);
	if (!any_tol && (env = pl_env("PLUMB_EVAL_TOLERANCE", NULL)))
		add_tol_list(env);
	for (size_t i = 0; i < ngates; i++) {
		gates[i].m = metric_find(gates[i].name);
		if (!gates[i].m)
			pl_usage_error("--gate '%s': '%s' is not one of the metrics computed", gates[i].text,
				       gates[i].name);
	}
	for (size_t i = 0; i < ntols; i++) {
		struct metric *m = metric_find(tols[i].name);
		if (!m)
			pl_usage_error("--tolerance: '%s' is not one of the metrics computed", tols[i].name);
		m->has_tol = 1;
		m->tol = tols[i].tol;
	}
	if (!fmt)
		format = isatty(1) && !want_items ? FMT_TABLE : FMT_JSON;
	else if (strcmp(fmt, "json") == 0)
		format = FMT_JSON;
	else if (strcmp(fmt, "table") == 0)
		format = FMT_TABLE;
	else if (strcmp(fmt, "markdown") == 0 || strcmp(fmt, "md") == 0)
		format = FMT_MD;
	else if (strcmp(fmt, "prometheus") == 0 || strcmp(fmt, "prom") == 0)
		format = FMT_PROM;
	else
		pl_usage_error("--format '%s': want json, table, markdown or prometheus", fmt);
	if (want_items && format != FMT_JSON)
		pl_usage_error("--items writes JSON lines: it goes with --format json only");
	if (metric_find("judge"))
		setup_judge(keyfile, jscale, jpattern);
	if (!suite && optind < argc && strcmp(argv[optind], "-") != 0) {
		/* the first input file's name, without directory and extension */
		const char *s = strrchr(argv[optind], '/');
		char *t = pl_xstrdup(s ? s + 1 : argv[optind]), *dot = strchr(t, '.');
		if (dot && dot != t)
			*dot = 0;
		suite = t;
	}
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	row.v = pl_xmalloc((ncols + 1) * PL_TM_MAXSTATS * sizeof *row.v);
	row.has = pl_xmalloc(ncols + 1);

	pl_input_open(argc - optind, argv + optind);
	pl_input_before_fatal(drain);
	while (pl_input_next(&rec)) {
		take(&rec);
		nrec++;
		bytes += rec.len;
		pl_progress(nrec, bytes, "records");
	}
	drain();
	pl_progress_done();
	if (pl_stop)
		pl_exit_signal();
	if (!nitems)
		pl_warn("no records to score");

	make_sigs();
	score_all();
	if (baseline_path)
		compare_baseline();
	size_t gfail = (size_t)run_gates();
	size_t nreg = nregressions();
	int passed = !gfail && !nreg;

	if (format == FMT_JSON)
		put_scorecard(&pl_out, passed);
	else if (format == FMT_PROM)
		put_prometheus(&pl_out, passed);
	else
		put_human(&pl_out, format == FMT_MD, passed);
	if (format == FMT_JSON)
		pl_out_end();
	for (size_t i = 0; i < nmetrics; i++)
		if (metrics[i].regression)
			pl_warn("regression: %s %.6g -> %.6g (p = %.4g)", metrics[i].name,
				metrics[i].b_value, metrics[i].c_value, metrics[i].p);
	for (size_t i = 0; i < ngates; i++)
		if (!gates[i].passed)
			pl_warn("gate failed: %s (%s is %.6g)", gates[i].text, gates[i].name, gates[i].got);
	if (chat)
		pl_chat_free(chat);
	if (passed || (pl_input_rejected() && !rejects_set))
		pl_finish();
	pl_out_flush();
	if (close(1) < 0 && errno != EBADF && errno != EINTR)
		pl_die(PL_EX_SOFTWARE, "write error on standard output:");
	exit(PL_EX_CHECK);
}
