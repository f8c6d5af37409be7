/* infer: add a chat model's answer to every example record (docs/infer.1). */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"
#include "cli.h"
#include "http.h"
#include "tmpl.h"
#include "utf8.h"

static const char usage[] =
	"infer --model NAME [--base-url URL] [--api-key-file FILE] [--system TEXT]\n"
	"[--template FILE] [--temperature X] [--top-p X] [--max-tokens N]\n"
	"[--max-completion-tokens N] [--seed N] [--stop TEXT]... [--concurrency N] [--rps X]\n"
	"[--cache redis://...|DIR] [--cache-ttl SECONDS] [--timeout SECONDS] [--retries N]\n"
	"[--insecure] [--fail-on-error] [--keep-going] [--rejects FILE] [file ...]";

static const char help[] =
	"\nSend each record's \"input\" (or \"messages\") to a chat model; add \"output\".\n\n"
	"  --model NAME         the chat model (PLUMB_INFER_MODEL)\n"
	"  --base-url URL       the API root (OPENAI_BASE_URL, https://api.openai.com/v1)\n"
	"  --api-key-file F     read the key from F (PLUMB_API_KEY_FILE; else OPENAI_API_KEY)\n"
	"  --system TEXT        a system message before the user message\n"
	"  --template FILE      the user message, with {{field}} filled from the record\n"
	"  --temperature X      0 to 2; --top-p X: 0 to 1 (not sent unless given)\n"
	"  --max-tokens N       sent as max_tokens; --max-completion-tokens N as\n"
	"                       max_completion_tokens (OpenAI's reasoning models)\n"
	"  --seed N, --stop TEXT (up to 4)\n"
	"  --concurrency N      requests in flight (PLUMB_INFER_CONCURRENCY, 4)\n"
	"  --rps X              requests started per second at most (PLUMB_INFER_RPS)\n"
	"  --cache SPEC         reuse replies from redis://host:port[/db] or a directory\n"
	"                       (PLUMB_INFER_CACHE); --cache-ttl S (PLUMB_INFER_CACHE_TTL)\n"
	"  --timeout S          per request (PLUMB_TIMEOUT, 600); --retries N tries in all (5)\n"
	"  --insecure           do not verify the server's TLS certificate\n"
	"  --fail-on-error      exit non-zero if any request failed (records still written)\n"
	"  --keep-going, --rejects FILE, -v, --quiet, -h, --help, --version: see plumb(7)\n";

/* What infer adds; a record that already has any of them has them replaced. */
static const char *const added[] = { "output", "model", "latency_ms", "usage", "finish_reason",
				     "refusal", "cached", "error" };

struct item {
	char *line;
	size_t len;
	int rebuild;
};

static struct pl_chat *chat;
static const char *model, *system_msg;
static char *template;
static char shown_url[2048];
static int fail_on_error, fail_status;
static unsigned long long nwritten, nfailed, nbytes;
static struct pl_buf msgs = PL_BUF_INIT, text = PL_BUF_INIT, tmp = PL_BUF_INIT;

static void write_record(const struct item *it, const struct pl_chat_reply *r)
{
	if (!it->rebuild) {
		/* the record as it came, up to its closing brace */
		size_t end = it->len;
		while (end && it->line[end - 1] != '}')
			end--;
		pl_buf_add(&pl_out, it->line, end - 1);
		/* "{}" gets no comma before the first field */
		size_t k = end - 1;
		while (k > 0 && (it->line[k - 1] == ' ' || it->line[k - 1] == '\t'))
			k--;
		if (it->line[k - 1] != '{')
			pl_buf_addc(&pl_out, ',');
	} else {
		struct pl_jobj o = { 0 };
		struct pl_jerr e;
		pl_json_scan_object(it->line, it->len, &o, &e);
		pl_buf_addc(&pl_out, '{');
		for (size_t i = 0; i < o.n; i++) {
			int skip = 0;
			for (size_t k = 0; k < sizeof added / sizeof *added; k++)
				skip |= pl_jmember_key_is(&o.m[i], added[k]);
			if (skip)
				continue;
			pl_json_put_member(&pl_out, &o.m[i]);
			pl_buf_addc(&pl_out, ',');
		}
		pl_jobj_free(&o);
	}
	if (r->ok) {
		pl_json_put_key(&pl_out, "output");
		pl_json_put_str(&pl_out, r->content, r->len);
		pl_buf_addc(&pl_out, ',');
		pl_json_put_key(&pl_out, "model");
		pl_json_put_str(&pl_out, r->model, strlen(r->model));
	} else {
		pl_json_put_key(&pl_out, "error");
		pl_json_put_str(&pl_out, r->error, strlen(r->error));
		pl_buf_addc(&pl_out, ',');
		pl_json_put_key(&pl_out, "model");
		pl_json_put_str(&pl_out, model, strlen(model));
	}
	pl_buf_addc(&pl_out, ',');
	pl_json_put_key(&pl_out, "latency_ms");
	pl_buf_i64(&pl_out, (int64_t)llround(r->latency_ms));
	if (r->ok) {
		pl_buf_addc(&pl_out, ',');
		pl_json_put_key(&pl_out, "usage");
		if (r->usage)
			pl_buf_add(&pl_out, r->usage, r->usage_len);
		else
			pl_buf_adds(&pl_out, "null");
		if (r->finish_reason) {
			pl_buf_addc(&pl_out, ',');
			pl_json_put_key(&pl_out, "finish_reason");
			pl_json_put_str(&pl_out, r->finish_reason, strlen(r->finish_reason));
		}
		if (r->refusal) {
			pl_buf_addc(&pl_out, ',');
			pl_json_put_key(&pl_out, "refusal");
			pl_json_put_str(&pl_out, r->refusal, strlen(r->refusal));
		}
		if (r->cached)
			pl_buf_adds(&pl_out, ",\"cached\":true");
	}
	pl_buf_addc(&pl_out, '}');
	pl_out_end();
}

/* Replies arrive here in input order. */
static void on_reply(void *ctx, const struct pl_chat_reply *r)
{
	struct item *it = r->ud;
	char w[PL_CHAT_ERRLEN];

	if (pl_chat_warning(chat, w))
		pl_warn("cache: %s", w);
	if (r->abandoned) {
		/* never sent, after a signal: left for the next run, not written */
		free(it->line);
		free(it);
		return;
	}
	if (!r->ok && r->config)
		/* a wrong key, model or URL fails every request alike: stop now,
		 * everything before this record is already written */
		pl_die(PL_EX_USAGE, "'%s': %s", shown_url, r->error);
	if (!r->ok) {
		nfailed++;
		if (!fail_status)
			fail_status = r->exit_status;
		pl_info("request %zu failed: %s", r->seq + 1, r->error);
	}
	write_record(it, r);
	free(it->line);
	free(it);
	nwritten++;
	pl_progress(nwritten, nbytes, "records");
}

/* {{field}} or {{field.sub...}} of a template, from the record. */
static int fill(void *ctx, const char *ref, size_t n, size_t col, struct pl_buf *out,
		struct pl_texpr_err *e)
{
	const struct pl_rec *rec = ctx;
	struct pl_jobj o = { 0 };
	struct pl_jerr je;
	const struct pl_jmember *m = NULL;
	const struct pl_jobj *cur = &rec->obj;
	size_t i = 0;
	int status = -1;

	for (;;) {
		size_t j = i;
		while (j < n && ref[j] != '.')
			j++;
		char *name = pl_xstrndup(ref + i, j - i);
		m = pl_jobj_get(cur, name);
		free(name);
		if (!m || j == n)
			break;
		if (m->type != PL_JOBJ) {
			m = NULL;
			break;
		}
		/* descend: index the member's object (its bytes stay in the line) */
		struct pl_jobj sub = { 0 };
		pl_json_scan_object(m->val, m->vallen, &sub, &je);
		pl_jobj_free(&o);
		o = sub;
		cur = &o;
		i = j + 1;
	}
	if (!m) {
		snprintf(e->msg, sizeof e->msg, "template field \"%.*s\" is not in the record",
			 (int)(n > 100 ? 100 : n), ref);
		goto out;
	}
	if (m->type == PL_JSTR) {
		const char *s;
		size_t len;
		if (pl_jmember_str(m, &tmp, &s, &len, 0, &je) < 0) {
			snprintf(e->msg, sizeof e->msg, "template field \"%.*s\": %s",
				 (int)(n > 60 ? 60 : n), ref, je.msg);
			goto out;
		}
		pl_buf_add(out, s, len);
	} else {
		/* numbers, booleans, null, objects and arrays go in as their JSON text */
		pl_buf_add(out, m->val, m->vallen);
	}
	status = 0;
out:
	pl_jobj_free(&o);
	return status;
}

static int accept_any(void *ctx, const char *ref, size_t n, size_t col, struct pl_buf *out,
		      struct pl_texpr_err *e)
{
	return 0;
}

/* The messages of a record into msgs, or a reason it has none. */
static int build_messages(const struct pl_rec *rec, char *why, size_t whylen)
{
	const struct pl_jmember *m = pl_jobj_get(&rec->obj, "messages");
	struct pl_jerr e;
	struct pl_texpr_err te;
	char err[PL_CHAT_ERRLEN];
	const char *s;
	size_t n;

	msgs.n = 0;
	if (m) {
		if (pl_chat_msgs_check(m->val, m->vallen, &msgs, err) < 0) {
			snprintf(why, whylen, "\"messages\" %.400s", err);
			return -1;
		}
		return 0;
	}
	if (system_msg)
		pl_chat_msg_add(&msgs, "system", system_msg, strlen(system_msg));
	if (template) {
		text.n = 0;
		if (pl_tmpl_expand(template, fill, (void *)rec, &text, &te) < 0) {
			snprintf(why, whylen, "%s", te.msg);
			return -1;
		}
		pl_chat_msg_add(&msgs, "user", text.p ? text.p : "", text.n);
		return 0;
	}
	const struct pl_jmember *in = pl_jobj_get(&rec->obj, "input");
	if (!in) {
		snprintf(why, whylen, "the record has neither \"input\" nor \"messages\"");
		return -1;
	}
	if (in->type != PL_JSTR) {
		snprintf(why, whylen, "\"input\" is not a string");
		return -1;
	}
	if (pl_jmember_str(in, &tmp, &s, &n, 0, &e) < 0) {
		snprintf(why, whylen, "\"input\": %s", e.msg);
		return -1;
	}
	pl_chat_msg_add(&msgs, "user", s, n);
	return 0;
}

static void take(const struct pl_rec *rec)
{
	char why[PL_CHAT_ERRLEN];

	if (build_messages(rec, why, sizeof why) < 0) {
		pl_input_reject(rec, "%s", why);
		return;
	}
	struct item *it = pl_xmalloc(sizeof *it);
	it->line = pl_xstrndup(rec->line, rec->len);
	it->len = rec->len;
	it->rebuild = 0;
	for (size_t k = 0; k < sizeof added / sizeof *added; k++)
		if (pl_jobj_get(&rec->obj, added[k]))
			it->rebuild = 1;
	pl_chat_submit(chat, msgs.p, msgs.n, it);
}

static int would_block(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	return poll(&p, 1, 0) == 0;
}

/* Input would block: finish requests and write their records meanwhile, so
 * a slow producer still sees answers as they come. */
static struct pl_lines *in;

static void on_idle(void)
{
	pl_out_flush();
	while (pl_chat_outstanding(chat) && !pl_stop && would_block(in->fd)) {
		pl_chat_wait_one(chat);
		pl_out_flush();
	}
}

/* Before stopping for bad input: every record before it goes out first. */
static void drain(void)
{
	pl_chat_wait(chat, 0);
}

static char *load_template(const char *path)
{
	struct pl_buf out = PL_BUF_INIT;
	struct pl_texpr_err e;
	char *t = pl_read_file(path, "template", NULL);
	size_t n = strlen(t);

	if (memchr(t, '\0', n) != NULL || pl_utf8_valid_prefix(t, n) != n)
		pl_usage_error("template '%s' is not UTF-8 text", path);
	/* an editor's final newline is not part of the prompt */
	if (n && t[n - 1] == '\n')
		t[--n] = '\0';
	if (pl_tmpl_expand(t, accept_any, NULL, &out, &e) < 0) {
		size_t line = 1, col = 1;
		for (size_t i = 0; i + 1 < e.col && i < n; i++) {
			if (t[i] == '\n')
				line++, col = 1;
			else
				col++;
		}
		pl_usage_error("template '%s': line %zu, column %zu: %s", path, line, col, e.msg);
	}
	pl_buf_free(&out);
	return t;
}

static double parse_double(const char *opt, const char *s, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
		pl_usage_error("%s: '%s' is not a number from %g to %g", opt, s, min, max);
	return v;
}

int main(int argc, char **argv)
{
	enum { O_MODEL = 0x2000, O_BASE, O_KEYFILE, O_SYSTEM, O_TEMPLATE, O_TEMP, O_TOPP,
	       O_MAXTOK, O_MAXCTOK, O_SEED, O_STOP, O_CONC, O_RPS, O_CACHE, O_TTL, O_TIMEOUT,
	       O_RETRIES, O_INSECURE, O_FAIL };
	static const struct option longopts[] = {
		{ "model", required_argument, NULL, O_MODEL },
		{ "base-url", required_argument, NULL, O_BASE },
		{ "api-key-file", required_argument, NULL, O_KEYFILE },
		{ "system", required_argument, NULL, O_SYSTEM },
		{ "template", required_argument, NULL, O_TEMPLATE },
		{ "temperature", required_argument, NULL, O_TEMP },
		{ "top-p", required_argument, NULL, O_TOPP },
		{ "max-tokens", required_argument, NULL, O_MAXTOK },
		{ "max-completion-tokens", required_argument, NULL, O_MAXCTOK },
		{ "seed", required_argument, NULL, O_SEED },
		{ "stop", required_argument, NULL, O_STOP },
		{ "concurrency", required_argument, NULL, O_CONC },
		{ "rps", required_argument, NULL, O_RPS },
		{ "cache", required_argument, NULL, O_CACHE },
		{ "cache-ttl", required_argument, NULL, O_TTL },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "insecure", no_argument, NULL, O_INSECURE },
		{ "fail-on-error", no_argument, NULL, O_FAIL },
		PL_COMMON_LONGOPTS,
		{ 0 }
	};
	struct pl_chat_opts o;
	const char *keyfile, *template_path = NULL, *rps_s, *conc_s;
	char err[PL_CHAT_ERRLEN];
	struct pl_rec rec = { 0 };
	int c, st;

	pl_init("infer", usage, help);
	pl_chat_opts_default(&o);
	o.model = pl_env("PLUMB_INFER_MODEL", NULL);
	o.base_url = pl_env("OPENAI_BASE_URL", "https://api.openai.com/v1");
	o.api_key = pl_env("OPENAI_API_KEY", NULL);
	keyfile = pl_env("PLUMB_API_KEY_FILE", NULL);
	conc_s = pl_env("PLUMB_INFER_CONCURRENCY", NULL);
	rps_s = pl_env("PLUMB_INFER_RPS", NULL);
	o.cache = pl_env("PLUMB_INFER_CACHE", NULL);
	o.cache_ttl_s = pl_env_long("PLUMB_INFER_CACHE_TTL", 0);
	o.timeout_ms = pl_env_long("PLUMB_TIMEOUT", 600) * 1000;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case O_MODEL: o.model = optarg; break;
		case O_BASE: o.base_url = optarg; break;
		case O_KEYFILE: keyfile = optarg; break;
		case O_SYSTEM: system_msg = optarg; break;
		case O_TEMPLATE: template_path = optarg; break;
		case O_TEMP:
			o.has_temperature = 1;
			o.temperature = parse_double("--temperature", optarg, 0, 2);
			break;
		case O_TOPP:
			o.has_top_p = 1;
			o.top_p = parse_double("--top-p", optarg, 0, 1);
			break;
		case O_MAXTOK: o.max_tokens = pl_parse_long("--max-tokens", optarg, 1, 1L << 31); break;
		case O_MAXCTOK:
			o.max_completion_tokens =
				pl_parse_long("--max-completion-tokens", optarg, 1, 1L << 31);
			break;
		case O_SEED:
			o.has_seed = 1;
			o.seed = pl_parse_long("--seed", optarg, -(1L << 62), 1L << 62);
			break;
		case O_STOP:
			if (o.nstop == PL_CHAT_MAX_STOP)
				pl_usage_error("--stop: at most %d stop sequences", PL_CHAT_MAX_STOP);
			if (!*optarg)
				pl_usage_error("--stop: a stop sequence cannot be empty");
			o.stop[o.nstop++] = optarg;
			break;
		case O_CONC: conc_s = optarg; break;
		case O_RPS: rps_s = optarg; break;
		case O_CACHE: o.cache = optarg; break;
		case O_TTL: o.cache_ttl_s = pl_parse_long("--cache-ttl", optarg, 0, 1L << 31); break;
		case O_TIMEOUT:
			o.timeout_ms = pl_parse_long("--timeout", optarg, 1, 86400) * 1000;
			break;
		case O_RETRIES: o.max_tries = (int)pl_parse_long("--retries", optarg, 1, 100); break;
		case O_INSECURE: o.insecure = 1; break;
		case O_FAIL: fail_on_error = 1; break;
		default: pl_common_option(c, optarg);
		}
	}
	if (!o.model)
		pl_usage_error("no model: give --model (or PLUMB_INFER_MODEL)");
	if (strncmp(o.base_url, "http://", 7) != 0 && strncmp(o.base_url, "https://", 8) != 0)
		pl_usage_error("--base-url '%s' is not an http(s) URL", o.base_url);
	if (conc_s)
		o.concurrency = (int)pl_parse_long("--concurrency", conc_s, 1, 1024);
	if (rps_s)
		o.rps = parse_double("--rps", rps_s, 0.001, 1e6);
	if (system_msg && pl_utf8_valid_prefix(system_msg, strlen(system_msg)) != strlen(system_msg))
		pl_usage_error("--system is not UTF-8 text");
	for (size_t i = 0; i < o.nstop; i++)
		if (pl_utf8_valid_prefix(o.stop[i], strlen(o.stop[i])) != strlen(o.stop[i]))
			pl_usage_error("--stop is not UTF-8 text");
	if (template_path)
		template = load_template(template_path);
	if (keyfile)
		o.api_key = pl_read_key_file(keyfile);
	o.stop_flag = &pl_stop;
	model = o.model;
	pl_chat_url(o.base_url, err, sizeof err);
	pl_http_redact(err, shown_url, sizeof shown_url);

	chat = pl_chat_new(&o, on_reply, NULL, err, &st);
	if (!chat)
		pl_die(st, "%s", err);

	/* a signal stops the reading; requests in flight finish and are written */
	pl_input_before_fatal(drain);
	pl_input_open(argc - optind, argv + optind);	/* for the rejects file */
	if (argc == optind) {
		static char *dash[] = { "-" };
		argv = dash;
		argc = 1;
		optind = 0;
	}
	for (int i = optind; i < argc && !pl_stop; i++) {
		struct pl_lines l;
		if (pl_lines_open(&l, argv[i]) < 0)
			pl_die(PL_EX_USAGE, "cannot open '%s':", argv[i]);
		pl_input_attach(&l);
		l.before_block = on_idle;
		in = &l;
		while (pl_input_next_from(&l, &rec)) {
			nbytes += rec.len + 1;
			take(&rec);
		}
		pl_lines_close(&l);
		in = NULL;
	}
	pl_chat_wait(chat, 0);
	if (pl_stop)
		pl_exit_signal();

	unsigned long long sent, hits;
	pl_chat_counts(chat, &sent, &hits, NULL);
	pl_info("%llu records, %llu requests, %llu from the cache, %llu failed", nwritten, sent,
		hits, nfailed);
	pl_chat_free(chat);
	pl_jobj_free(&rec.obj);
	if (nfailed && !pl_quiet)
		pl_warn("%llu of %llu requests failed; their records have \"error\"", nfailed,
			nwritten);
	if (nfailed && fail_on_error) {
		pl_out_flush();
		pl_progress_done();
		if (close(1) < 0 && errno != EBADF && errno != EINTR)
			pl_die(PL_EX_SOFTWARE, "write error on standard output:");
		exit(fail_status ? fail_status : PL_EX_UNAVAILABLE);
	}
	pl_finish();
}
