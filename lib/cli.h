/* The conventions every plumb program shares (docs/plumb.7): messages, exit
 * statuses, signals, common options, the bad-input policy and checked output.
 *
 * This is the one lib/ module that prints and exits, by design: it is linked
 * only into programs and is how they all behave alike. Other modules return a
 * status and fill an error the caller owns. State here is per process. */
#ifndef PL_CLI_H
#define PL_CLI_H

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>

#include "buf.h"
#include "exitcode.h"
#include "json.h"
#include "lines.h"

extern const char *pl_prog;
extern int pl_verbose;

/* usage is the SYNOPSIS (one or more lines, without "usage: ");
 * help the option list printed after it by --help. */
void pl_init(const char *prog, const char *usage, const char *help);

/* "prog: msg"; a format ending in ':' gets ": strerror(errno)" appended.
 * die flushes the records written so far before exiting with code. */
void pl_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
void pl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pl_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));	/* with --verbose */
void pl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* getopt_long entries every program accepts, and their handler. */
enum { PL_OPT_VERSION = 0x1000, PL_OPT_KEEP_GOING, PL_OPT_REJECTS, PL_OPT_QUIET };
#define PL_COMMON_LONGOPTS \
	{ "help", no_argument, NULL, 'h' }, \
	{ "version", no_argument, NULL, PL_OPT_VERSION }, \
	{ "verbose", no_argument, NULL, 'v' }, \
	{ "quiet", no_argument, NULL, PL_OPT_QUIET }, \
	{ "keep-going", no_argument, NULL, PL_OPT_KEEP_GOING }, \
	{ "rejects", required_argument, NULL, PL_OPT_REJECTS }
/* Handles c if it is a common option (returns 1), else returns 0. '?' is a
 * usage error. */
int pl_common_option(int c, const char *arg);
extern int pl_quiet;

/* Environment defaults: the value of name if set and non-empty, else def. */
const char *pl_env(const char *name, const char *def);
long pl_env_long(const char *name, long def);
long pl_parse_long(const char *opt, const char *s, long min, long max);	/* or usage error */

/* s as it may appear in a message: itself when it is valid UTF-8 without
 * control characters, else with each invalid or control byte as \xNN (and
 * '\' as \\). Valid until the eighth call after; errno is kept. */
const char *pl_shown(const char *s);

/* A whole file given by an option (what: "template", "key file"), NUL
 * terminated, from pl_xmalloc, its length in *n unless n is NULL; a file that
 * cannot be read is a usage error. */
char *pl_read_file(const char *path, const char *what, size_t *n);
/* An API key kept in a file: its first line, trailing blanks cut; an empty
 * one is a usage error. */
char *pl_read_key_file(const char *path);

/* --- records in --------------------------------------------------------- */

struct pl_rec {
	const char *line;
	size_t len;
	const char *file;
	unsigned long lineno;
	struct pl_jobj obj;	/* top-level members of line */
};

/* The string member key of rec, decoded into scratch, in *s and *n; 0, or -1
 * after rejecting the record when it is absent, not a string or empty
 * ("WHAT has no "KEY" string", what being "record", "\"done\" marker"...). */
int pl_need_str(const struct pl_rec *rec, const char *key, struct pl_buf *scratch, const char **s,
		size_t *n, const char *what);

/* Input is the files named (or stdin when there are none); a bad line is
 * handled by the policy: stop (exit 65), or with --keep-going report and go
 * on, with --rejects also keep it. Returns 1 with rec filled, 0 at the end. */
void pl_input_open(int nfiles, char **files);
int pl_input_next(struct pl_rec *rec);
/* A record the program cannot use: same policy as malformed JSON. */
void pl_input_reject(const struct pl_rec *rec, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same, from one reader the program opened itself (pl_input_attach sets
 * it up to flush output before blocking and to stop on a signal). Returns 0
 * at the end of that reader, and also when SIGINT or SIGTERM arrived (pl_stop
 * set), so the program can finish its work before pl_exit_signal(). */
void pl_input_attach(struct pl_lines *l);
int pl_input_next_from(struct pl_lines *l, struct pl_rec *rec);
/* fn runs before a program stops for bad input (exit 65): --commit uses it
 * to record the good records it read before the bad one. */
void pl_input_before_fatal(void (*fn)(void));
/* Whether bad input is skipped (--keep-going, --rejects or their variables). */
int pl_keep_going(void);
/* As pl_input_next, but at SIGINT or SIGTERM it returns 0 with pl_stop set
 * instead of dying, so the program can finish work in flight first and then
 * call pl_exit_signal(). */
int pl_input_next_or_stop(struct pl_rec *rec);
/* Plain lines, without JSON parsing, under the same input rules. */
int pl_input_next_line(struct pl_rec *rec);
unsigned long pl_input_rejected(void);

/* --- records out -------------------------------------------------------- */

/* Build a record in pl_out, then pl_out_end() adds the newline and flushes by
 * the rules: per line on a terminal, else when the buffer is large or input
 * would block. pl_out_flush() marks a batch boundary. */
extern struct pl_buf pl_out;
void pl_out_end(void);
void pl_out_flush(void);

/* Flush and close stdout, report a write error (exit 70); then exit 65 if
 * --keep-going skipped bad lines without --rejects, else 0. */
void pl_finish(void) __attribute__((noreturn));

/* --- signals and progress ---------------------------------------------- */

/* Non-zero once SIGINT or SIGTERM arrived; the program should stop at the
 * next record boundary and call pl_exit_signal(). */
extern volatile int pl_stop;
void pl_exit_signal(void) __attribute__((noreturn));	/* flush, then die of the signal */

/* A progress line on stderr when it is a terminal: at most four a second. */
void pl_progress(unsigned long long records, unsigned long long bytes, const char *what);
void pl_progress_done(void);

#endif
