/* push-prom: push an evaluation scorecard to a Prometheus Pushgateway as
 * gauges (docs/push-prom.1). */
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "http.h"
#include "jpath.h"
#include "utf8.h"

static const char usage[] =
	"push-prom [--url URL] [--job NAME] [--label NAME=VALUE]... [--group-by LIST]\n"
	"[--suite NAME] [--model NAME] [--scorecard PATH] [--key FIELD=PATH]...\n"
	"[--timeout SECONDS] [--retries N] [--insecure] [--keep-going] [--rejects FILE] [file ...]";

static const char help_text[] =
	"\nPush the scorecard on the last input line to a Prometheus Pushgateway.\n\n"
	"  --url URL          the Pushgateway's root (PUSHGATEWAY_URL)\n"
	"  --job NAME         the job of the group (PUSHGATEWAY_JOB, plumb_eval)\n"
	"  --label N=V        one more grouping label (repeatable)\n"
	"  --group-by LIST    scorecard labels in the grouping key: suite, model (suite)\n"
	"  --suite NAME       the suite label, instead of the scorecard's (PLUMB_EVAL_SUITE)\n"
	"  --model NAME       the model label, instead of the scorecard's (PLUMB_EVAL_MODEL)\n"
	"  --scorecard PATH   where the scorecard is in the last line (scorecard; . for all)\n"
	"  --key FIELD=PATH   where a field is in the scorecard or in a metric: suite, model,\n"
	"                     n, metrics, passed, regressions, gates, value, ci\n"
	"  --timeout S        per request (PLUMB_TIMEOUT, 60); --retries N tries in all (5)\n"
	"  --insecure         do not verify the Pushgateway's TLS certificate\n"
	"  --keep-going, --rejects FILE, -v, --quiet, -h, --help, --version: see plumb(7)\n";

#define PREFIX "plumb_eval_"
#define MAX_LABELS 64
#define LAST_SUCCESS PREFIX "last_success_timestamp_seconds"

/* Where each field is: in the scorecard (suite .. gates) or in a metric's
 * object (value, ci). ci has two defaults: evalscore(1)'s "ci95" and the
 * shorter "ci". */
enum { F_SUITE, F_MODEL, F_N, F_METRICS, F_PASSED, F_REGRESSIONS, F_GATES, F_VALUE, F_CI,
       NFIELDS };
static const char *const field_name[NFIELDS] = {
	"suite", "model", "n", "metrics", "passed", "regressions", "gates", "value", "ci"
};
static const char *field_path[NFIELDS] = {
	"suite", "model", "n", "metrics", "passed", "regressions", "gates", "value", NULL
};
static const char *const ci_defaults[] = { "ci95", "ci" };

struct label {
	const char *name, *value;	/* a --label: name allocated, value in argv */
};

struct gauge {
	char *name;
	char *help;
	double value;
	char *from;		/* the scorecard metric it came from, for messages */
};

static struct label *labels;	/* --label, in order */
static size_t nlabels;
static int group_suite = 1, group_model;
static struct gauge *gauges;
static size_t ngauges;

/* The last record, kept: the input reader reuses its buffers. */
static struct pl_buf last = PL_BUF_INIT;
static char *last_file;
static unsigned long last_lineno;

static void bad_scorecard(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Bad input at the scorecard's line: the usual policy, and nothing pushed. */
static void bad_scorecard(const char *fmt, ...)
{
	struct pl_rec rec = { .line = last.p, .len = last.n, .file = last_file,
			      .lineno = last_lineno };
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pl_input_reject(&rec, "%s", msg);
	pl_die(PL_EX_DATAERR, "nothing pushed: the scorecard on the last line is bad");
}

/* Label names as Prometheus defines them; names starting "__" are its own. */
static int label_name_ok(const char *s, size_t n)
{
	if (!n || (n >= 2 && s[0] == '_' && s[1] == '_'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		      (i && c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

static void add_gauge(const char *name, const char *help, double v, const char *from)
{
	for (size_t i = 0; i < ngauges; i++)
		if (strcmp(gauges[i].name, name) == 0) {
			if (from && gauges[i].from)
				bad_scorecard("metrics \"%s\" and \"%s\" both become the gauge \"%s\"",
					      gauges[i].from, from, name);
			bad_scorecard("metric \"%s\" becomes the gauge \"%s\", which push-prom "
				      "writes itself", from ? from : gauges[i].from, name);
		}
	gauges = pl_xrealloc(gauges, (ngauges + 1) * sizeof *gauges);
	gauges[ngauges].name = pl_xstrdup(name);
	gauges[ngauges].help = pl_xstrdup(help);
	gauges[ngauges].value = v;
	gauges[ngauges].from = from ? pl_xstrdup(from) : NULL;
	ngauges++;
}

/* A metric's name as a Prometheus metric name, as evalscore --format
 * prometheus makes it, so that both give the same series: letters, digits
 * and '_' stay, "++" becomes "_pp" (chrf++), '@' "_at_" (recall@5), every
 * other byte '_'. */
static void metric_name(struct pl_buf *b, const char *m, const char *suffix)
{
	b->n = 0;
	pl_buf_adds(b, PREFIX);
	for (const char *p = m; *p; p++) {
		char c = *p;
		if (c == '+' && p[1] == '+') {
			pl_buf_adds(b, "_pp");
			p++;
		} else if (c == '@') {
			pl_buf_adds(b, "_at_");
		} else {
			int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				 (c >= '0' && c <= '9') || c == '_';
			pl_buf_addc(b, ok ? c : '_');
		}
	}
	pl_buf_adds(b, suffix);
	pl_buf_cstr(b);
}

/* A number, or NaN for null (a metric evalscore could not compute); 0 with
 * *v set, -1 for anything else. */
static int number(const json_t *j, double *v)
{
	if (json_is_number(j)) {
		*v = json_number_value(j);
		return 0;
	}
	if (json_is_null(j)) {
		*v = NAN;
		return 0;
	}
	return -1;
}

static json_t *field(json_t *in, int f)
{
	struct pl_jpath_err e;
	json_t *v;
	const char *p = field_path[f];

	if (!p) {	/* ci: the first of its defaults present */
		for (size_t i = 0; i < sizeof ci_defaults / sizeof *ci_defaults; i++)
			if ((v = json_object_get(in, ci_defaults[i])))
				return v;
		return NULL;
	}
	v = pl_jpath_get(in, p, strlen(p), &e);
	return v;
}

static void take_metric(const char *m, json_t *j, struct pl_buf *name, struct pl_buf *help)
{
	double v, lo, hi;
	json_t *val = j, *ci = NULL;

	if (json_is_object(j)) {
		val = field(j, F_VALUE);
		if (!val)
			bad_scorecard("metric \"%s\" has no \"%s\"", m, field_path[F_VALUE]);
		ci = field(j, F_CI);
	}
	if (number(val, &v) < 0)
		bad_scorecard("metric \"%s\": the value is %s, not a number", m,
			      pl_jpath_type_name(val));
	metric_name(name, m, "");
	help->n = 0;
	pl_buf_printf(help, "evalscore %s", m);
	add_gauge(name->p, pl_buf_cstr(help), v, m);
	if (!ci)
		return;
	/* null: no interval could be computed; NaN bounds, as evalscore writes */
	if (json_is_null(ci))
		lo = hi = NAN;
	else if (!json_is_array(ci) || json_array_size(ci) != 2 ||
		 number(json_array_get(ci, 0), &lo) < 0 || number(json_array_get(ci, 1), &hi) < 0)
		bad_scorecard("metric \"%s\": the confidence interval is not [low, high]", m);
	metric_name(name, m, "_ci95_low");
	help->n = 0;
	pl_buf_printf(help, "evalscore %s, 95%% bootstrap interval, lower bound", m);
	add_gauge(name->p, pl_buf_cstr(help), lo, m);
	metric_name(name, m, "_ci95_high");
	help->n = 0;
	pl_buf_printf(help, "evalscore %s, 95%% bootstrap interval, upper bound", m);
	add_gauge(name->p, pl_buf_cstr(help), hi, m);
}

/* A string field of the scorecard, the flag's value winning; "" if neither. */
static const char *string_field(json_t *sc, int f, const char *flag)
{
	json_t *v;

	if (flag)
		return flag;
	v = field(sc, f);
	if (!v || json_is_null(v))
		return "";
	if (!json_is_string(v))
		bad_scorecard("the scorecard's \"%s\" is %s, not a string", field_path[f],
			      pl_jpath_type_name(v));
	return json_string_value(v);
}

/* Whether the run passed: "passed" if the scorecard has it, else no
 * regression listed and no gate failed. */
static int take_scorecard(json_t *sc, int *passed)
{
	struct pl_buf name = PL_BUF_INIT, help = PL_BUF_INIT;
	json_t *metrics, *n, *pass, *regr, *gates, *v;
	const char *key;
	size_t gates_failed = 0;

	metrics = field(sc, F_METRICS);
	if (!metrics)
		bad_scorecard("the scorecard has no \"%s\"", field_path[F_METRICS]);
	if (!json_is_object(metrics))
		bad_scorecard("the scorecard's \"%s\" is %s, not an object",
			      field_path[F_METRICS], pl_jpath_type_name(metrics));
	json_object_foreach(metrics, key, v) {
		if (!*key)
			bad_scorecard("a metric has an empty name");
		take_metric(key, v, &name, &help);
	}
	n = field(sc, F_N);
	if (n) {
		double d;
		if (number(n, &d) < 0)
			bad_scorecard("the scorecard's \"%s\" is %s, not a number", field_path[F_N],
				      pl_jpath_type_name(n));
		add_gauge(PREFIX "items", "evalscore items scored", d, NULL);
	}
	regr = field(sc, F_REGRESSIONS);
	if (regr && !json_is_array(regr) && !json_is_null(regr))
		bad_scorecard("the scorecard's \"%s\" is %s, not an array",
			      field_path[F_REGRESSIONS], pl_jpath_type_name(regr));
	if (regr && json_is_array(regr))
		add_gauge(PREFIX "regressions", "evalscore regressions against the baseline",
			  (double)json_array_size(regr), NULL);
	gates = field(sc, F_GATES);
	if (gates && !json_is_array(gates) && !json_is_null(gates))
		bad_scorecard("the scorecard's \"%s\" is %s, not an array", field_path[F_GATES],
			      pl_jpath_type_name(gates));
	if (gates && json_is_array(gates)) {
		/* evalscore's gates: {"gate","metric","value","passed"} */
		size_t i;
		json_t *g;
		json_array_foreach(gates, i, g) {
			if (!json_is_boolean(json_object_get(g, "passed")))
				bad_scorecard("gate %zu of the scorecard has no \"passed\" true or false",
					      i + 1);
			gates_failed += json_is_false(json_object_get(g, "passed"));
		}
		add_gauge(PREFIX "gates_failed", "evalscore gates that failed", (double)gates_failed,
			  NULL);
	}
	pass = field(sc, F_PASSED);
	if (pass && !json_is_boolean(pass))
		bad_scorecard("the scorecard's \"%s\" is %s, not true or false",
			      field_path[F_PASSED], pl_jpath_type_name(pass));
	*passed = pass ? json_is_true(pass) : !json_array_size(regr) && !gates_failed;
	add_gauge(PREFIX "passed", "evalscore: 1 when no regression and every gate passed",
		  *passed, NULL);
	pl_buf_free(&name);
	pl_buf_free(&help);
	return 0;
}

/* --- the request ----------------------------------------------------------- */

/* One part of the grouping key's path: plain when it is made of characters
 * that need no encoding, else through the Pushgateway's "@base64" form
 * (RFC 4648 URL-safe alphabet), which is the only way for a "/" or an empty
 * value, and simplest for everything else. */
static void put_pair(struct pl_buf *url, const char *name, const char *value)
{
	size_t n = strlen(value);
	int plain = n && strcmp(value, ".") != 0 && strcmp(value, "..") != 0;

	for (size_t i = 0; plain && i < n; i++) {
		char c = value[i];
		plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '_' || c == '.' || c == '~';
	}
	pl_buf_addc(url, '/');
	pl_buf_adds(url, name);
	if (plain) {
		pl_buf_addc(url, '/');
		pl_buf_adds(url, value);
		return;
	}
	pl_buf_adds(url, "@base64/");
	if (!n) {
		pl_buf_addc(url, '=');	/* the README's spelling of an empty value */
		return;
	}
	pl_buf_reserve(url, 4 * ((n + 2) / 3) + 1);
	int k = EVP_EncodeBlock((unsigned char *)url->p + url->n, (const unsigned char *)value, (int)n);
	for (int i = 0; i < k; i++) {
		char *c = url->p + url->n + i;
		if (*c == '+')
			*c = '-';
		else if (*c == '/')
			*c = '_';
	}
	url->n += (size_t)k;
}

static void put_label_value(struct pl_buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			pl_buf_addc(b, '\\');
		if (*v == '\n')
			pl_buf_adds(b, "\\n");
		else
			pl_buf_addc(b, *v);
	}
}

/* The text exposition format, version 0.0.4. */
static void put_body(struct pl_buf *b, const char *suite, const char *model)
{
	for (size_t i = 0; i < ngauges; i++) {
		const struct gauge *g = &gauges[i];
		pl_buf_printf(b, "# HELP %s ", g->name);
		for (const char *p = g->help; *p; p++) {
			if (*p == '\\')
				pl_buf_adds(b, "\\\\");
			else if (*p == '\n')
				pl_buf_adds(b, "\\n");
			else
				pl_buf_addc(b, *p);
		}
		pl_buf_printf(b, "\n# TYPE %s gauge\n%s{suite=\"", g->name, g->name);
		put_label_value(b, suite);
		pl_buf_adds(b, "\",model=\"");
		put_label_value(b, model);
		pl_buf_adds(b, "\"} ");
		pl_jpath_put_double(b, g->value);
		pl_buf_addc(b, '\n');
	}
}

/* The last-success time already on the Pushgateway for this group, which a
 * failed run keeps: a PUT replaces the whole group, and a failure must not
 * erase when the suite last passed. Returns 1 with *t set, 0 if there is
 * none, -1 if the Pushgateway could not be asked (err filled). */
static int previous_success(struct pl_http *h, const char *base, const struct label *key,
			    size_t nkey, double *t, long *status, char *err, size_t errlen)
{
	struct pl_http_result r;
	struct pl_buf url = PL_BUF_INIT, body = PL_BUF_INIT;
	struct pl_jpath_err e;
	json_t *root = NULL, *g;
	size_t i;
	int found = 0;

	pl_buf_printf(&url, "%s/api/v1/metrics", base);
	pl_http_request(h, "GET", pl_buf_cstr(&url), NULL, NULL, 0, &r, &body);
	*status = r.status;
	if (r.status != 200) {
		if (r.status == 0)
			snprintf(err, errlen, "%s (after %d tries)", r.err, r.tries);
		else
			snprintf(err, errlen, "GET /api/v1/metrics: %ld", r.status);
		found = -1;
		goto out;
	}
	root = pl_jpath_load(body.p, body.n, &e);
	json_array_foreach(json_object_get(root, "data"), i, g) {
		json_t *gl = json_object_get(g, "labels");
		int same = json_is_object(gl) && json_object_size(gl) == nkey;
		for (size_t k = 0; same && k < nkey; k++) {
			json_t *v = json_object_get(gl, key[k].name);
			same = json_is_string(v) && strcmp(json_string_value(v), key[k].value) == 0;
		}
		if (!same)
			continue;
		json_t *m = json_object_get(json_object_get(g, LAST_SUCCESS), "metrics");
		json_t *v = json_object_get(json_array_get(m, 0), "value");
		char *end;
		if (json_is_string(v)) {
			*t = strtod(json_string_value(v), &end);
			found = end != json_string_value(v) && !*end;
		}
		break;
	}
out:
	json_decref(root);
	pl_buf_free(&url);
	pl_buf_free(&body);
	return found;
}

static void http_fail(const char *shown, const struct pl_http_result *r)
{
	char line[300];

	if (r->status == 0)
		pl_die(r->permanent ? PL_EX_USAGE : PL_EX_UNAVAILABLE, "'%s': %s (after %d tries)",
		       shown, r->err, r->tries);
	pl_http_error_line(r->body, r->len, line, sizeof line);
	pl_die(pl_http_exit_status(r->status), "'%s': %ld: %s", shown, r->status, line);
}

static void add_label(const char *arg)
{
	const char *eq = strchr(arg, '=');

	if (!eq || !label_name_ok(arg, (size_t)(eq - arg)))
		pl_usage_error("--label '%s': want NAME=VALUE, NAME made of letters, digits "
			       "and '_', not starting with a digit or \"__\"", arg);
	if ((size_t)(eq - arg) == 3 && strncmp(arg, "job", 3) == 0)
		pl_usage_error("--label '%s': the job is set with --job", arg);
	for (size_t i = 0; i < nlabels; i++)
		if (strlen(labels[i].name) == (size_t)(eq - arg) &&
		    strncmp(labels[i].name, arg, (size_t)(eq - arg)) == 0)
			pl_usage_error("--label '%.*s' given twice", (int)(eq - arg), arg);
	if (pl_utf8_valid_prefix(eq + 1, strlen(eq + 1)) != strlen(eq + 1))
		pl_usage_error("--label '%.*s': the value is not UTF-8", (int)(eq - arg), arg);
	if (nlabels == MAX_LABELS)
		pl_usage_error("at most %d --label options", MAX_LABELS);
	labels = pl_xrealloc(labels, (nlabels + 1) * sizeof *labels);
	labels[nlabels].name = pl_xstrndup(arg, (size_t)(eq - arg));
	labels[nlabels].value = eq + 1;
	nlabels++;
}

static void set_key(const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct pl_jpath_err e;

	for (int f = 0; eq && f < NFIELDS; f++)
		if (strlen(field_name[f]) == (size_t)(eq - arg) &&
		    strncmp(field_name[f], arg, (size_t)(eq - arg)) == 0) {
			if (pl_jpath_check(eq + 1, strlen(eq + 1), &e) < 0)
				pl_usage_error("--key %s: %s", arg, e.msg);
			if (f == F_CI && strchr(eq + 1, '.'))
				pl_usage_error("--key %s: ci is a member of the metric's object", arg);
			field_path[f] = eq + 1;
			return;
		}
	pl_usage_error("--key '%s': want FIELD=PATH, FIELD one of suite, model, n, metrics, "
		       "passed, regressions, gates, value, ci", arg);
}

static void set_group_by(const char *list)
{
	const char *p = list;

	group_suite = group_model = 0;
	while (*p) {
		size_t n = strcspn(p, ", ");
		if (n == 5 && strncmp(p, "suite", 5) == 0)
			group_suite = 1;
		else if (n == 5 && strncmp(p, "model", 5) == 0)
			group_model = 1;
		else if (n)
			pl_usage_error("--group-by: '%.*s' is not suite or model", (int)n, p);
		p += n;
		p += strspn(p, ", ");
	}
}

static int labelled(const char *name)
{
	for (size_t i = 0; i < nlabels; i++)
		if (strcmp(labels[i].name, name) == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_URL = 0x2000, O_JOB, O_LABEL, O_GROUP, O_SUITE, O_MODEL, O_SCORECARD, O_KEY,
	       O_TIMEOUT, O_RETRIES, O_INSECURE };
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, O_URL },
		{ "job", required_argument, NULL, O_JOB },
		{ "label", required_argument, NULL, O_LABEL },
		{ "group-by", required_argument, NULL, O_GROUP },
		{ "suite", required_argument, NULL, O_SUITE },
		{ "model", required_argument, NULL, O_MODEL },
		{ "scorecard", required_argument, NULL, O_SCORECARD },
		{ "key", required_argument, NULL, O_KEY },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "insecure", no_argument, NULL, O_INSECURE },
		PL_COMMON_LONGOPTS,
		{ 0 }
	};
	const char *url, *job, *suite, *model, *scpath;
	struct pl_http_opts ho;
	struct pl_rec rec = { 0 };
	struct pl_jpath_err e;
	int c, passed;

	pl_init("push-prom", usage, help_text);
	pl_http_opts_default(&ho);
	url = pl_env("PUSHGATEWAY_URL", NULL);
	job = pl_env("PUSHGATEWAY_JOB", "plumb_eval");
	suite = pl_env("PLUMB_EVAL_SUITE", NULL);
	model = pl_env("PLUMB_EVAL_MODEL", NULL);
	scpath = "scorecard";
	ho.timeout_ms = pl_env_long("PLUMB_TIMEOUT", 60) * 1000;
	ho.parallel = 1;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case O_URL: url = optarg; break;
		case O_JOB: job = optarg; break;
		case O_LABEL: add_label(optarg); break;
		case O_GROUP: set_group_by(optarg); break;
		case O_SUITE: suite = optarg; break;
		case O_MODEL: model = optarg; break;
		case O_SCORECARD: scpath = optarg; break;
		case O_KEY: set_key(optarg); break;
		case O_TIMEOUT:
			ho.timeout_ms = pl_parse_long("--timeout", optarg, 1, 86400) * 1000;
			break;
		case O_RETRIES: ho.max_tries = (int)pl_parse_long("--retries", optarg, 1, 100); break;
		case O_INSECURE: ho.insecure = 1; break;
		default: pl_common_option(c, optarg);
		}
	}
	if (!url)
		pl_usage_error("no Pushgateway: give --url or set PUSHGATEWAY_URL");
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		pl_usage_error("--url '%s' is not an http(s) URL", url);
	if (strstr(url, "/metrics/"))
		pl_usage_error("--url is the Pushgateway's root, without /metrics/job/...");
	if (!*job)
		pl_usage_error("--job must not be empty");
	if (pl_utf8_valid_prefix(job, strlen(job)) != strlen(job) ||
	    (suite && pl_utf8_valid_prefix(suite, strlen(suite)) != strlen(suite)) ||
	    (model && pl_utf8_valid_prefix(model, strlen(model)) != strlen(model)))
		pl_usage_error("--job, --suite and --model must be UTF-8");
	if (pl_jpath_check(scpath, strlen(scpath), &e) < 0)
		pl_usage_error("--scorecard: %s", e.msg);

	/* the scorecard is the last line; the lines before it (evalscore --items)
	 * are only checked */
	pl_input_open(argc - optind, argv + optind);
	while (pl_input_next(&rec)) {
		last.n = 0;
		pl_buf_add(&last, rec.line, rec.len);
		if (!last_file || strcmp(last_file, rec.file) != 0) {
			free(last_file);
			last_file = pl_xstrdup(rec.file);
		}
		last_lineno = rec.lineno;
	}
	pl_jobj_free(&rec.obj);
	if (!last_file)
		pl_die(PL_EX_DATAERR, "no input: want a scorecard on the last line");

	json_t *root = pl_jpath_load(last.p, last.n, &e);
	if (!root)
		bad_scorecard("invalid JSON: %s (column %zu)", e.msg, e.col);
	json_t *sc = pl_jpath_get(root, scpath, strlen(scpath), &e);
	if (!sc)
		bad_scorecard("not a scorecard: %s", e.msg);
	if (!json_is_object(sc))
		bad_scorecard("\"%s\" is %s, not an object", scpath, pl_jpath_type_name(sc));
	suite = string_field(sc, F_SUITE, suite);
	model = string_field(sc, F_MODEL, model);
	take_scorecard(sc, &passed);

	/* the grouping key: job, suite and model as --group-by says (a --label
	 * of the same name wins), then the --label labels */
	struct label key[3 + MAX_LABELS];
	struct pl_buf base = PL_BUF_INIT, purl = PL_BUF_INIT, body = PL_BUF_INIT;
	size_t nkey = 0;
	pl_buf_add(&base, url, strlen(url));
	while (base.n && base.p[base.n - 1] == '/')
		base.n--;
	pl_buf_cstr(&base);
	pl_buf_printf(&purl, "%s/metrics", base.p);
	key[nkey++] = (struct label){ "job", job };
	if (group_suite && !labelled("suite"))
		key[nkey++] = (struct label){ "suite", suite };
	if (group_model && !labelled("model"))
		key[nkey++] = (struct label){ "model", model };
	for (size_t i = 0; i < nlabels; i++)
		key[nkey++] = (struct label){ labels[i].name, labels[i].value };
	for (size_t i = 0; i < nkey; i++)
		put_pair(&purl, key[i].name, key[i].value);
	pl_buf_cstr(&purl);

	char shown[4096];
	struct pl_http *h = pl_http_new(&ho);
	pl_http_redact(purl.p, shown, sizeof shown);
	if (passed) {
		add_gauge(LAST_SUCCESS, "Unix time of the last evaluation run that passed",
			  (double)time(NULL), NULL);
	} else {
		double t;
		long st;
		char err[512];
		int r = previous_success(h, base.p, key, nkey, &t, &st, err, sizeof err);
		if (r > 0)
			add_gauge(LAST_SUCCESS, "Unix time of the last evaluation run that passed",
				  t, NULL);
		else if (r < 0 && st == 0)
			pl_die(PL_EX_UNAVAILABLE, "'%s': %s", shown, err);
		else if (r < 0)
			pl_warn("cannot read the last-success time to keep it: %s", err);
	}
	put_body(&body, suite, model);
	pl_info("PUT '%s': %zu gauges%s", shown, ngauges, passed ? "" : " (the run failed)");

	static const char *const headers[] = {
		"Content-Type: text/plain; version=0.0.4; charset=utf-8", NULL
	};
	struct pl_http_result r;
	struct pl_buf resp = PL_BUF_INIT;
	pl_http_request(h, "PUT", purl.p, headers, body.p, body.n, &r, &resp);
	if (r.status != 200 && r.status != 202)
		http_fail(shown, &r);
	pl_info("pushed %zu gauges (%d tr%s)", ngauges, r.tries, r.tries == 1 ? "y" : "ies");

	pl_http_free(h);
	json_decref(root);
	pl_buf_free(&resp);
	pl_buf_free(&body);
	pl_buf_free(&purl);
	pl_buf_free(&base);
	pl_buf_free(&last);
	for (size_t i = 0; i < ngauges; i++) {
		free(gauges[i].name);
		free(gauges[i].help);
		free(gauges[i].from);
	}
	free(gauges);
	for (size_t i = 0; i < nlabels; i++)
		free((char *)labels[i].name);
	free(labels);
	free(last_file);
	pl_finish();
}
