/* notify: post a message, filled in from the JSON input, to a webhook
 * (Slack-compatible by default) (docs/notify.1). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "http.h"
#include "jpath.h"
#include "tmpl.h"
#include "utf8.h"

static const char usage[] =
	"notify [--url URL | --url-env NAME] (--text TEMPLATE | --text-file FILE |\n"
	"--raw TEMPLATE | --raw-file FILE) [--each] [--dry-run] [--timeout SECONDS]\n"
	"[--retries N] [--insecure] [--keep-going] [--rejects FILE] [file ...]";

static const char help_text[] =
	"\nPost a message to a webhook, its {{path}} placeholders filled from the last\n"
	"input record (or from each, with --each).\n\n"
	"  --url URL          the webhook (NOTIFY_URL); its path is never printed\n"
	"  --url-env NAME     take the webhook from the environment variable NAME\n"
	"  --text TEMPLATE    post {\"text\": TEMPLATE filled in} (Slack's incoming webhooks)\n"
	"  --text-file FILE   the same, the template read from FILE\n"
	"  --raw TEMPLATE     post TEMPLATE filled in, which must give JSON, as it is\n"
	"  --raw-file FILE    the same, the template read from FILE\n"
	"  --each             one message per input record, not one for the last\n"
	"  --dry-run          write the messages to standard output instead of posting them\n"
	"  --timeout S        per request (PLUMB_TIMEOUT, 60); --retries N tries in all (5)\n"
	"  --insecure         do not verify the webhook's TLS certificate\n"
	"  --keep-going, --rejects FILE, -v, --quiet, -h, --help, --version: see plumb(7)\n";

static const char *tmpl;	/* the template */
static const char *tmpl_opt;	/* the option that gave it, for messages */
static int raw, each, dry_run, has_refs;
static const char *url;
static char shown[512];		/* url with its path hidden */
static struct pl_http *http;
static struct pl_buf body = PL_BUF_INIT, resp = PL_BUF_INIT, scratch = PL_BUF_INIT;
static unsigned long posted;

/* The webhook's URL as messages show it: scheme, host and port. The rest,
 * and any user:password, stay hidden, because the path of a Slack (or
 * Teams, or Discord) webhook is its secret. */
static void hide_path(const char *u, char *out, size_t n)
{
	const char *s = strstr(u, "://");
	const char *host = s ? s + 3 : u;
	size_t end = strcspn(host, "/?#");
	const char *at = memchr(host, '@', end);

	if (at) {
		end -= (size_t)(at + 1 - host);
		host = at + 1;
	}
	snprintf(out, n, "%.*s%.*s%s", (int)(s ? s + 3 - u : 0), u, (int)end, host,
		 host[end] ? "/..." : "");
}

/* --- templates ------------------------------------------------------------- */

struct fill {
	json_t *root;		/* the record; NULL when checking the template */
	char why[600];		/* what the record lacks */
};

/* Whether column col (1-based) of the raw template lies inside a JSON string:
 * a placeholder there is filled with escaped text, elsewhere with JSON. */
static int in_string(size_t col)
{
	int in = 0;

	for (size_t i = 0; i + 1 < col && tmpl[i]; i++) {
		if (tmpl[i] == '{' && tmpl[i + 1] == '{') {
			const char *close = strstr(tmpl + i + 2, "}}");
			if (!close)
				break;
			i = (size_t)(close - tmpl) + 1;
		} else if (in && tmpl[i] == '\\' && tmpl[i + 1]) {
			i++;
		} else if (tmpl[i] == '"') {
			in = !in;
		}
	}
	return in;
}

/* A printf conversion for one number: %[flags][width][.precision] then one
 * of f, e, E, g, G, each flag at most once; checked here because it goes to
 * snprintf. At most 12 bytes. */
static int format_ok(const char *f, size_t n)
{
	size_t i = 1, k;

	if (n < 2 || f[0] != '%')
		return 0;
	while (i < n && f[i] && strchr("-+ 0#", f[i]) && !memchr(f + 1, f[i], i - 1))
		i++;
	for (k = 0; i < n && isdigit((unsigned char)f[i]); i++, k++)
		;
	if (k > 2)
		return 0;
	if (i < n && f[i] == '.') {
		for (i++, k = 0; i < n && isdigit((unsigned char)f[i]); i++, k++)
			;
		if (k > 2)
			return 0;
	}
	return i + 1 == n && strchr("feEgG", f[i]);
}

static int fill_ref(void *ctx, const char *ref, size_t n, size_t col, struct pl_buf *out,
		    struct pl_texpr_err *e)
{
	struct fill *f = ctx;
	struct pl_jpath_err je;
	const char *bar = memchr(ref, '|', n);
	size_t pn = bar ? (size_t)(bar - ref) : n;
	const char *fmt = NULL;
	size_t fn = 0;
	int str = raw && in_string(col);
	json_t *v;

	if (bar) {
		fmt = bar + 1;
		fn = n - pn - 1;
		while (fn && isspace((unsigned char)*fmt))
			fmt++, fn--;
		while (pn && isspace((unsigned char)ref[pn - 1]))
			pn--;
		if (!format_ok(fmt, fn)) {
			e->col = col;
			snprintf(e->msg, sizeof e->msg, "'%.*s' is not a number format such as %%.3f",
				 (int)fn, fmt);
			return -1;
		}
	}
	if (pl_jpath_check(ref, pn, &je) < 0) {
		e->col = col;
		snprintf(e->msg, sizeof e->msg, "%.150s", je.msg);
		return -1;
	}
	if (!f->root) {
		/* checking: a stand-in that is valid JSON in either place */
		pl_buf_adds(out, str || fmt ? "0" : "\"\"");
		return 0;
	}
	v = pl_jpath_get(f->root, ref, pn, &je);
	if (!v || (fmt && !json_is_number(v))) {
		snprintf(f->why, sizeof f->why, "{{%.*s}}: %s", (int)(n < 200 ? n : 200), ref,
			 v ? "not a number" : je.msg);
		return -1;
	}
	if (fmt) {
		/* %-+ 0#99.99f of the largest double: 410 bytes */
		char spec[16], num[512];
		snprintf(spec, sizeof spec, "%.*s", (int)fn, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(num, sizeof num, spec, json_number_value(v));	/* checked by format_ok */
#pragma GCC diagnostic pop
		pl_buf_adds(out, num);
	} else if (str) {
		/* the text escaped for the inside of a JSON string */
		scratch.n = 0;
		pl_jpath_put_text(&scratch, v);
		size_t at = out->n;
		pl_json_put_str(out, scratch.p, scratch.n);
		memmove(out->p + at, out->p + at + 1, out->n - at - 2);
		out->n -= 2;
	} else if (raw) {
		pl_jpath_put_json(out, v);
	} else {
		pl_jpath_put_text(out, v);
	}
	return 0;
}

/* Fill the template from root into body as the message to send. Returns 0,
 * or -1 with why filled (a path the record lacks, or JSON the raw template
 * did not give). */
static int make_body(json_t *root, char *why, size_t whylen)
{
	struct fill f = { root, "" };
	struct pl_texpr_err e;
	struct pl_buf text = PL_BUF_INIT;
	int rc = -1;

	body.n = 0;
	if (pl_tmpl_expand(tmpl, fill_ref, &f, raw ? &body : &text, &e) < 0) {
		snprintf(why, whylen, "%s", f.why[0] ? f.why : e.msg);
		goto out;
	}
	if (raw) {
		struct pl_jpath_err je;
		json_t *j = pl_jpath_load(body.p, body.n, &je);
		if (!j) {
			snprintf(why, whylen, "%s gave invalid JSON: %s (column %zu)", tmpl_opt, je.msg,
				 je.col);
			goto out;
		}
		json_decref(j);
	} else {
		/* the template is UTF-8 and jansson's strings are, so the text is too */
		pl_buf_adds(&body, "{\"text\":");
		pl_json_put_str(&body, text.p, text.n);
		pl_buf_addc(&body, '}');
	}
	rc = 0;
out:
	pl_buf_free(&text);
	return rc;
}

/* --- posting --------------------------------------------------------------- */

/* Post body; rec (may be NULL) is what it was made from. */
static void post(const struct pl_rec *rec)
{
	static const char *const headers[] = { "Content-Type: application/json", NULL };
	struct pl_http_result r;
	char line[300];

	if (dry_run) {
		/* the body is one line of JSON: the default is built so, and a raw
		 * template's newlines are whitespace between JSON tokens */
		for (size_t i = 0; i < body.n; i++)
			if (body.p[i] == '\n' || body.p[i] == '\r')
				body.p[i] = ' ';
		pl_buf_add(&pl_out, body.p, body.n);
		pl_out_end();
		return;
	}
	pl_http_request(http, "POST", url, headers, body.p, body.n, &r, &resp);
	if (r.status >= 200 && r.status < 300) {
		posted++;
		pl_info("posted to '%s': %ld (%d tr%s)", shown, r.status, r.tries,
			r.tries == 1 ? "y" : "ies");
		return;
	}
	if (r.status == 0)
		pl_die(r.permanent ? PL_EX_USAGE : PL_EX_UNAVAILABLE, "'%s': %s (after %d tries)",
		       shown, r.err, r.tries);
	pl_http_error_line(r.body, r.len, line, sizeof line);
	if ((r.status == 400 || r.status == 413 || r.status == 422) && rec) {
		/* the webhook refused this message: bad input at its record */
		pl_input_reject(rec, "the webhook refused the message: %ld: %s", r.status, line);
		return;
	}
	/* 410: Slack's channel_is_archived, which only configuration mends */
	pl_die(r.status == 410 ? PL_EX_USAGE : pl_http_exit_status(r.status), "'%s': %ld: %s",
	       shown, r.status, line);
}

static void notify(const struct pl_rec *rec)
{
	json_t *root = NULL;
	struct pl_jpath_err je;
	char why[600];

	if (has_refs) {
		root = pl_jpath_load(rec->line, rec->len, &je);
		if (!root) {
			pl_input_reject(rec, "invalid JSON: %s (column %zu)", je.msg, je.col);
			return;
		}
	}
	if (make_body(root, why, sizeof why) < 0)
		pl_input_reject(rec, "%s", why);
	else
		post(rec);
	json_decref(root);
}

static char *read_template(const char *path)
{
	size_t n;
	char *t = pl_read_file(path, "template", &n);

	if (memchr(t, '\0', n))
		pl_usage_error("template '%s' contains a NUL byte", path);
	/* a file's last newline ends its last line; it is not part of the message */
	while (n && (t[n - 1] == '\n' || t[n - 1] == '\r'))
		t[--n] = '\0';
	return t;
}

static void set_template(const char *opt, const char *arg, int is_raw, int is_file)
{
	if (tmpl)
		pl_usage_error("give one of --text, --text-file, --raw and --raw-file");
	tmpl_opt = opt;
	raw = is_raw;
	tmpl = is_file ? read_template(arg) : arg;
}

int main(int argc, char **argv)
{
	enum { O_URL = 0x2000, O_URL_ENV, O_TEXT, O_TEXT_FILE, O_RAW, O_RAW_FILE, O_EACH, O_DRY,
	       O_TIMEOUT, O_RETRIES, O_INSECURE };
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, O_URL },
		{ "url-env", required_argument, NULL, O_URL_ENV },
		{ "text", required_argument, NULL, O_TEXT },
		{ "text-file", required_argument, NULL, O_TEXT_FILE },
		{ "raw", required_argument, NULL, O_RAW },
		{ "raw-file", required_argument, NULL, O_RAW_FILE },
		{ "each", no_argument, NULL, O_EACH },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "insecure", no_argument, NULL, O_INSECURE },
		PL_COMMON_LONGOPTS,
		{ 0 }
	};
	const char *url_opt = NULL, *url_env = NULL;
	struct pl_http_opts ho;
	struct pl_texpr_err e;
	struct pl_rec rec = { 0 };
	struct pl_buf last = PL_BUF_INIT;
	char *last_file = NULL;
	unsigned long last_lineno = 0;
	int c;

	pl_init("notify", usage, help_text);
	pl_http_opts_default(&ho);
	ho.timeout_ms = pl_env_long("PLUMB_TIMEOUT", 60) * 1000;
	ho.parallel = 1;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case O_URL: url_opt = optarg; break;
		case O_URL_ENV: url_env = optarg; break;
		case O_TEXT: set_template("--text", optarg, 0, 0); break;
		case O_TEXT_FILE: set_template("--text-file", optarg, 0, 1); break;
		case O_RAW: set_template("--raw", optarg, 1, 0); break;
		case O_RAW_FILE: set_template("--raw-file", optarg, 1, 1); break;
		case O_EACH: each = 1; break;
		case O_DRY: dry_run = 1; break;
		case O_TIMEOUT:
			ho.timeout_ms = pl_parse_long("--timeout", optarg, 1, 86400) * 1000;
			break;
		case O_RETRIES: ho.max_tries = (int)pl_parse_long("--retries", optarg, 1, 100); break;
		case O_INSECURE: ho.insecure = 1; break;
		default: pl_common_option(c, optarg);
		}
	}
	if (!tmpl)
		pl_usage_error("no message: give --text, --text-file, --raw or --raw-file");
	if (url_opt && url_env)
		pl_usage_error("give --url or --url-env, not both");
	if (url_env) {
		url = pl_env(url_env, NULL);
		if (!url)
			pl_usage_error("--url-env: the environment variable '%s' is not set", url_env);
	} else {
		url = url_opt ? url_opt : pl_env("NOTIFY_URL", NULL);
	}
	if (!url && !dry_run)
		pl_usage_error("no webhook: give --url, --url-env NAME or set NOTIFY_URL");
	if (url) {
		hide_path(url, shown, sizeof shown);
		if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
			pl_usage_error("the webhook '%s' is not an http(s) URL", shown);
	}
	if (pl_utf8_valid_prefix(tmpl, strlen(tmpl)) != strlen(tmpl))
		pl_usage_error("%s: the template is not UTF-8", tmpl_opt);
	/* the template's mistakes are found now, before any input is read */
	struct fill check = { NULL, "" };
	body.n = 0;
	if (pl_tmpl_expand(tmpl, fill_ref, &check, &body, &e) < 0)
		pl_usage_error("%s: column %zu: %s", tmpl_opt, e.col, e.msg);
	if (raw) {
		struct pl_jpath_err je;
		json_t *j = pl_jpath_load(body.p, body.n, &je);
		if (!j)
			pl_usage_error("%s: the template does not give JSON: %s", tmpl_opt, je.msg);
		json_decref(j);
	}
	has_refs = pl_tmpl_has(tmpl);
	if (!dry_run)
		http = pl_http_new(&ho);

	pl_input_open(argc - optind, argv + optind);
	while (pl_input_next(&rec)) {
		if (each) {
			notify(&rec);
			continue;
		}
		last.n = 0;
		pl_buf_add(&last, rec.line, rec.len);
		if (!last_file || strcmp(last_file, rec.file) != 0) {
			free(last_file);
			last_file = pl_xstrdup(rec.file);
		}
		last_lineno = rec.lineno;
	}
	if (!each && last_file) {
		struct pl_rec lr = { .line = last.p, .len = last.n, .file = last_file,
				     .lineno = last_lineno };
		notify(&lr);
	} else if (!each && has_refs) {
		pl_die(PL_EX_DATAERR, "no input record to fill the template from");
	} else if (!each) {
		char why[600];
		if (make_body(NULL, why, sizeof why) < 0)
			pl_die(PL_EX_USAGE, "%s", why);
		post(NULL);
	}
	pl_info("%lu message%s posted", posted, posted == 1 ? "" : "s");
	pl_http_free(http);
	pl_jobj_free(&rec.obj);
	pl_buf_free(&last);
	pl_buf_free(&body);
	pl_buf_free(&resp);
	pl_buf_free(&scratch);
	free(last_file);
	pl_finish();
}
