#include "cli.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef PLUMB_VERSION
#define PLUMB_VERSION "0.0.0"
#endif

#define OUT_FLUSH_AT (64 * 1024)

const char *pl_prog = "plumb";
int pl_verbose, pl_quiet;
volatile int pl_stop;
struct pl_buf pl_out = PL_BUF_INIT;

static const char *usage_text, *help_text;
static int out_linebuf, out_failed;
static int keep_going;
static const char *rejects_path;
static FILE *rejects;
static void (*before_fatal)(void);

static struct {
	char **files;
	int nfiles, idx;
	struct pl_lines cur;
	int open;
	unsigned long bad;
} in;

static void vmsg(const char *fmt, va_list ap)
{
	int saved = errno;
	size_t len = strlen(fmt);
	char line[4096];
	int n;

	n = snprintf(line, sizeof line, "%s: ", pl_prog);
	n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	if (n >= (int)sizeof line)
		n = sizeof line - 1;
	if (len && fmt[len - 1] == ':')
		n += snprintf(line + n, sizeof line - (size_t)n, " %s", strerror(saved));
	if (n >= (int)sizeof line - 1)
		n = sizeof line - 2;
	line[n++] = '\n';
	/* one write, so lines from programs sharing stderr do not interleave */
	(void)!write(2, line, (size_t)n);
}

void pl_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void pl_info(const char *fmt, ...)
{
	va_list ap;
	if (!pl_verbose)
		return;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void pl_die(int code, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	/* everything before the failure reaches downstream */
	if (!out_failed)
		pl_out_flush();
	pl_progress_done();
	errno = saved;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	exit(code);
}

static void print_usage(FILE *f)
{
	const char *p = usage_text;
	int first = 1;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		fprintf(f, "%s%.*s\n", first ? "usage: " : "       ", (int)n, p);
		first = 0;
		p += n + (nl != NULL);
	}
}

void pl_usage_error(const char *fmt, ...)
{
	va_list ap;
	if (fmt) {
		va_start(ap, fmt);
		vmsg(fmt, ap);
		va_end(ap);
	}
	print_usage(stderr);
	fprintf(stderr, "Try '%s --help' for more information.\n", pl_prog);
	exit(PL_EX_USAGE);
}

static void on_signal(int sig)
{
	pl_stop = sig;
}

static void flush_before_block(void)
{
	pl_out_flush();
}

void pl_init(const char *prog, const char *usage, const char *help)
{
	struct sigaction sa;

	pl_prog = prog;
	usage_text = usage;
	help_text = help;
	out_linebuf = isatty(1);

	/* SIGPIPE keeps its default: a closed downstream ends us quietly. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND;	/* a second signal kills at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	const char *v = getenv("PLUMB_VERBOSE");
	pl_verbose = v && *v && strcmp(v, "0") != 0;
	v = getenv("PLUMB_KEEP_GOING");
	keep_going = v && *v && strcmp(v, "0") != 0;
	rejects_path = pl_env("PLUMB_REJECTS", NULL);
}

int pl_common_option(int c, const char *arg)
{
	switch (c) {
	case 'h':
		print_usage(stdout);
		if (help_text)
			fputs(help_text, stdout);
		printf("\nSee %s(1) for details. Exit status: 0 success, 1 check failed, "
		       "2 usage,\n65 bad input, 69 service unavailable, 70 internal, "
		       "75 temporary failure.\n", pl_prog);
		if (fflush(stdout) != 0 || ferror(stdout))
			exit(PL_EX_SOFTWARE);
		exit(0);
	case PL_OPT_VERSION:
		printf("%s (plumb) %s\n", pl_prog, PLUMB_VERSION);
		if (fflush(stdout) != 0)
			exit(PL_EX_SOFTWARE);
		exit(0);
	case 'v':
		pl_verbose = 1;
		return 1;
	case PL_OPT_QUIET:
		pl_quiet = 1;
		return 1;
	case PL_OPT_KEEP_GOING:
		keep_going = 1;
		return 1;
	case PL_OPT_REJECTS:
		rejects_path = arg;
		return 1;
	case '?':
		pl_usage_error(NULL);
	}
	return 0;
}

const char *pl_env(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && *v ? v : def;
}

long pl_parse_long(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		pl_usage_error("%s: '%s' is not a whole number from %ld to %ld", opt, s, min, max);
	return v;
}

long pl_env_long(const char *name, long def)
{
	const char *v = pl_env(name, NULL);
	return v ? pl_parse_long(name, v, 0, 1L << 40) : def;
}

/* s as it may appear in a message: itself when it is valid UTF-8 without
 * control characters, else with each invalid or control byte as \xNN (and
 * then '\' as \\, so the result reads one way only). A file name is bytes,
 * and printed raw it would garble the terminal or a log. The result lives
 * until the eighth call after this one; errno is kept, for pl_die's ':'. */
const char *pl_shown(const char *s)
{
	static struct pl_buf ring[8];
	static unsigned next;
	struct pl_buf *b = &ring[next++ % 8];
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i, k;
	int saved = errno, plain = 1;

	for (i = 0; i < n && plain; i += k)
		plain = (k = pl_utf8_seq_valid(p + i, n - i)) && p[i] >= 0x20 && p[i] != 0x7f;
	if (plain)
		return s;
	b->n = 0;
	for (i = 0; i < n; i += k) {
		k = pl_utf8_seq_valid(p + i, n - i);
		if (k && p[i] >= 0x20 && p[i] != 0x7f) {
			if (p[i] == '\\')
				pl_buf_addc(b, '\\');
			pl_buf_add(b, s + i, k);
		} else {
			pl_buf_printf(b, "\\x%02X", p[i]);
			k = 1;
		}
	}
	pl_buf_cstr(b);
	errno = saved;
	return b->p;
}

char *pl_read_file(const char *path, const char *what, size_t *n)
{
	struct pl_buf b = PL_BUF_INIT;
	char chunk[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		pl_die(PL_EX_USAGE, "cannot open %s '%s':", what, path);
	while ((r = read(fd, chunk, sizeof chunk)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			pl_die(PL_EX_USAGE, "cannot read %s '%s':", what, path);
		}
		pl_buf_add(&b, chunk, (size_t)r);
	}
	close(fd);
	if (n)
		*n = b.n;
	pl_buf_addc(&b, 0);
	return b.p;
}

char *pl_read_key_file(const char *path)
{
	char *s = pl_read_file(path, "key file", NULL);
	size_t n = strcspn(s, "\r\n");

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	s[n] = '\0';
	if (!n)
		pl_die(PL_EX_USAGE, "key file '%s' is empty", path);
	return s;
}

/* --- input -------------------------------------------------------------- */

void pl_input_open(int nfiles, char **files)
{
	static char *dash[] = { "-" };

	if (nfiles == 0) {
		files = dash;
		nfiles = 1;
	}
	in.files = files;
	in.nfiles = nfiles;
	in.idx = 0;
	if (rejects_path) {
		keep_going = 1;
		rejects = fopen(rejects_path, "a");
		if (!rejects)
			pl_die(PL_EX_USAGE, "cannot open rejects file '%s':", rejects_path);
	}
}

unsigned long pl_input_rejected(void)
{
	return in.bad;
}

static void vreject(const struct pl_rec *rec, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof msg, fmt, ap);
	in.bad++;
	if (!keep_going && before_fatal) {
		void (*fn)(void) = before_fatal;
		before_fatal = NULL;	/* once, even if fn itself finds bad input */
		fn();
	}
	if (!keep_going)
		pl_die(PL_EX_DATAERR, "%s:%lu: %s", pl_shown(rec->file), rec->lineno, msg);
	pl_warn("%s:%lu: %s", pl_shown(rec->file), rec->lineno, msg);
	if (rejects) {
		fwrite(rec->line, 1, rec->len, rejects);
		fputc('\n', rejects);
		if (fflush(rejects) != 0)
			pl_die(PL_EX_SOFTWARE, "cannot write rejects file '%s':", rejects_path);
	}
}

void pl_input_reject(const struct pl_rec *rec, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreject(rec, fmt, ap);
	va_end(ap);
}

static void reject_json(const struct pl_rec *rec, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreject(rec, fmt, ap);
	va_end(ap);
}

void pl_input_before_fatal(void (*fn)(void))
{
	before_fatal = fn;
}

int pl_keep_going(void)
{
	return keep_going || rejects_path;
}

void pl_input_attach(struct pl_lines *l)
{
	l->before_block = flush_before_block;
	l->stop = &pl_stop;
}

/* The next line of l: 1, or 0 at its end or on a signal. */
static int next_line_from(struct pl_lines *l, struct pl_rec *rec)
{
	if (pl_stop)
		return 0;
	int r = pl_lines_next(l, &rec->line, &rec->len);
	if (r < 0) {
		if (errno == EINTR && pl_stop)
			return 0;
		pl_die(PL_EX_SOFTWARE, "%s: read error:", pl_shown(l->name));
	}
	if (r == 0)
		return 0;
	rec->file = l->name;
	rec->lineno = l->lineno;
	return 1;
}

static int blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

int pl_input_next_from(struct pl_lines *l, struct pl_rec *rec)
{
	struct pl_jerr e;

	while (next_line_from(l, rec)) {
		if (blank(rec->line, rec->len))
			continue;	/* blank lines are not records */
		if (pl_json_scan_object(rec->line, rec->len, &rec->obj, &e) == 0)
			return 1;
		reject_json(rec, "invalid JSON: %s (column %zu)", e.msg, e.offset + 1);
	}
	return 0;
}

/* Across the input files: fn on the current reader, opening the next at the
 * end of each, and dying of a signal that arrived. */
static int next_across(struct pl_rec *rec, int (*fn)(struct pl_lines *, struct pl_rec *),
		       int die_on_stop)
{
	for (;;) {
		if (!in.open) {
			if (in.idx >= in.nfiles)
				return 0;
			const char *f = in.files[in.idx++];
			if (pl_lines_open(&in.cur, f) < 0)
				pl_die(PL_EX_USAGE, "cannot open '%s':", f);
			pl_input_attach(&in.cur);
			in.open = 1;
		}
		if (fn(&in.cur, rec))
			return 1;
		if (pl_stop) {
			if (die_on_stop)
				pl_exit_signal();
			return 0;
		}
		pl_lines_close(&in.cur);
		in.open = 0;
	}
}

int pl_input_next_line(struct pl_rec *rec)
{
	return next_across(rec, next_line_from, 1);
}

int pl_input_next(struct pl_rec *rec)
{
	return next_across(rec, pl_input_next_from, 1);
}

int pl_input_next_or_stop(struct pl_rec *rec)
{
	return next_across(rec, pl_input_next_from, 0);
}

/* --- output ------------------------------------------------------------- */

void pl_out_flush(void)
{
	size_t off = 0;

	while (off < pl_out.n) {
		ssize_t w = write(1, pl_out.p + off, pl_out.n - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			out_failed = 1;
			pl_die(PL_EX_SOFTWARE, "write error on standard output:");
		}
		off += (size_t)w;
	}
	pl_out.n = 0;
}

void pl_out_end(void)
{
	pl_buf_addc(&pl_out, '\n');
	if (out_linebuf || pl_out.n >= OUT_FLUSH_AT)
		pl_out_flush();
}

void pl_finish(void)
{
	pl_out_flush();
	pl_progress_done();
	/* close, not just flush: some file systems report errors only here */
	if (close(1) < 0 && errno != EBADF && errno != EINTR) {
		out_failed = 1;
		pl_die(PL_EX_SOFTWARE, "write error on standard output:");
	}
	if (rejects && fclose(rejects) != 0)
		pl_die(PL_EX_SOFTWARE, "cannot write rejects file '%s':", rejects_path);
	if (in.bad) {
		pl_warn("%lu bad input line%s %s", in.bad, in.bad == 1 ? "" : "s",
			rejects ? "written to the rejects file" : "skipped");
		if (!rejects)
			exit(PL_EX_DATAERR);
	}
	exit(0);
}

void pl_exit_signal(void)
{
	int sig = pl_stop;

	pl_out_flush();
	pl_progress_done();
	if (rejects)
		fflush(rejects);
	signal(sig, SIG_DFL);
	raise(sig);
	_exit(PL_EX_SIGNAL + sig);
}

/* --- progress ----------------------------------------------------------- */

static int progress_on = -1;
static double progress_start, progress_last;
static int progress_shown;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pl_progress(unsigned long long records, unsigned long long bytes, const char *what)
{
	if (progress_on < 0) {
		progress_on = isatty(2) && !pl_quiet;
		progress_start = progress_last = now();
	}
	if (!progress_on)
		return;
	double t = now();
	if (t - progress_last < 0.25)
		return;
	progress_last = t;
	double el = t - progress_start;
	fprintf(stderr, "\r%s: %llu %s, %.1f MB, %.0f/s, %.0fs  ", pl_prog, records, what,
		(double)bytes / 1e6, el > 0 ? (double)records / el : 0.0, el);
	progress_shown = 1;
}

void pl_progress_done(void)
{
	if (progress_shown) {
		fputs("\r\033[K", stderr);
		progress_shown = 0;
	}
}

int pl_need_str(const struct pl_rec *rec, const char *key, struct pl_buf *scratch, const char **s,
		size_t *n, const char *what)
{
	const struct pl_jmember *m = pl_jobj_get(&rec->obj, key);
	struct pl_jerr e;

	if (!m || m->type != PL_JSTR || m->vallen == 2) {
		pl_input_reject(rec, "%s has no \"%s\" string", what, key);
		return -1;
	}
	if (pl_jmember_str(m, scratch, s, n, 0, &e) < 0) {
		pl_input_reject(rec, "\"%s\": %s", key, e.msg);
		return -1;
	}
	return 0;
}
