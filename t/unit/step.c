/* Unit tests for lib/step.c, and a driver for t/1110-store.bats.
 *
 * Without arguments: the step shim against a directory store, in this
 * process (output, log, exit status, signals, inputs in order while one
 * grows, failed and replaced inputs, SIGTERM passed on, orphans).
 *
 * With a command, a small tool over lib/step.c and lib/store.c, so the bats
 * file can run the shim as a process against a real Redis (what `dagrun
 * step` will be), and look at the store:
 *   step run --store S --run R --task T [--child N] [--attempt A] [--input KEY[@OFF+LEN]]... -- CMD
 *   step create S R [TTL]           start a run
 *   step write S R KEY ATTEMPT [STATUS|-]   stdin into KEY as it comes; finish
 *                                   with STATUS (0), or leave it unfinished
 *   step stat S R KEY               gen=G attempt=A size=N done=D status=S
 *   step cat S R KEY                what KEY holds so far
 *   step get S R NAME FIELD         a value
 *   step splice S R KEY             splice into KEY the finished outputs named
 *                                   on stdin, one a line, as they come */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "exitcode.h"
#include "step.h"
#include "store.h"
#include "unit.h"

static char tmp[256], spec[512];
static const char *runid = "run1";

static struct pl_art *open_store(const char *sp, const char *run, int create, long ttl)
{
	struct pl_art_opts o = { .spec = sp, .run = run, .create = create, .ttl = ttl };
	char err[512];
	int status;
	struct pl_art *s = pl_art_open(&o, err, sizeof err, &status);
	if (!s)
		fprintf(stderr, "step: %s\n", err);
	return s;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void ms(int n)
{
	struct timespec ts = { n / 1000, (n % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* What key holds (its current generation), and its state. */
static int content(struct pl_art *s, const char *key, struct pl_buf *b, struct pl_art_info *i)
{
	char buf[65536];
	ssize_t k;
	int rc = pl_art_stat(s, key, i);

	b->n = 0;
	if (rc)
		return rc;
	while ((k = pl_art_read(s, key, i->gen, (int64_t)b->n, buf, sizeof buf)) > 0)
		pl_buf_add(b, buf, (size_t)k);
	return k < 0 ? (int)k : 0;
}

static int holds(struct pl_art *s, const char *key, const char *want, int done, int status)
{
	struct pl_buf b = PL_BUF_INIT;
	struct pl_art_info i;
	int ok = content(s, key, &b, &i) == 0 && b.n == strlen(want) &&
		 (b.n == 0 || memcmp(b.p, want, b.n) == 0) && i.done == done &&
		 (!done || i.status == status);
	if (!ok)
		printf("#   %s holds '%.*s' (done %d, status %d)\n", key, (int)b.n, b.p ? b.p : "",
		       i.done, i.status);
	pl_buf_free(&b);
	return ok;
}

static int value_is(struct pl_art *s, const char *name, const char *field, const char *want)
{
	char *v = NULL;
	size_t n;
	int ok = pl_art_get(s, name, field, &v, &n) == 0 && strcmp(v, want) == 0;
	if (!ok)
		printf("#   %s %s is '%s', not '%s'\n", name, field, v ? v : "(none)", want);
	free(v);
	return ok;
}

/* "KEY" or "KEY@OFF+LEN" (at most 16 ranges at once: their keys live here) */
static void parse_input(const char *arg, struct pl_step_input *in)
{
	const char *at = strchr(arg, '@');
	in->key = arg;
	in->off = 0;
	in->len = -1;
	if (at) {
		static char keys[16][256];
		static int nk;
		char *k = keys[nk++ % 16];
		snprintf(k, 256, "%.*s", (int)(at - arg), arg);
		in->key = k;
		sscanf(at + 1, "%" SCNd64 "+%" SCNd64, &in->off, &in->len);
	}
}

static int step(const char *task, long child, int attempt, const char *cmd, const char *const *in,
		size_t nin, int log_fd, char *err)
{
	struct pl_step_input ins[8];
	for (size_t k = 0; k < nin; k++)
		parse_input(in[k], &ins[k]);
	struct pl_step o = { .store = spec, .run = runid, .task = task, .child = child,
			     .attempt = attempt, .cmd = cmd, .inputs = ins, .ninputs = nin,
			     .log_fd = log_fd, .kill_grace = 2 };
	return pl_step_run(&o, err, 512);
}

/* A process that starts writing key after delay ms, writes lines (pausing
 * ms between them), then ends with status (or, with status -1, leaves it
 * unfinished; with -2 starts attempt 2 after the lines). */
static pid_t writer(const char *key, const char *const *lines, int pause, int status, int delay)
{
	pid_t pid = fork();
	if (pid)
		return pid;
	ms(delay);
	struct pl_art *s = open_store(spec, runid, 0, 0);
	struct pl_art_writer *w = s ? pl_art_writer(s, key, 1) : NULL;
	int bad = !w;
	for (size_t k = 0; lines[k] && !bad; k++) {
		ms(pause);
		bad |= pl_art_append(w, lines[k], strlen(lines[k])) != 0;
	}
	if (status == -2) {
		ms(pause);
		struct pl_art_writer *w2 = pl_art_writer(s, key, 2);
		bad |= !w2 || pl_art_append(w2, "other\n", 6) != 0 || pl_art_finish(w2, 0) != 0;
	}
	if (w && status >= 0)
		bad |= pl_art_finish(w, status) != 0;
	else
		pl_art_abandon(w);
	pl_art_close(s);
	_exit(bad);
}

static int reaped_ok(pid_t pid)
{
	int st;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void offline(void)
{
	char err[512], logpath[600];
	struct pl_art *s;
	int rc, fd;

	snprintf(spec, sizeof spec, "%s/run", tmp);
	s = open_store(spec, runid, 1, 0);
	CHECK(s != NULL, "a run directory");
	if (!s)
		return;

	snprintf(logpath, sizeof logpath, "%s/stderr", tmp);
	fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
	rc = step("t", -1, 1, "printf 'a\\nb'; echo oops >&2; exit 3", NULL, 0, fd, err);
	CHECK(rc == 3 && !err[0], "exit status 3 is the step's: %d %s", rc, err);
	CHECK(holds(s, "t.out", "a\nb", 1, 3), "the output, done with status 3");
	CHECK(holds(s, "t.log", "oops\n", 1, 3), "stderr in the log key");
	char lb[64] = "";
	CHECK(pread(fd, lb, sizeof lb - 1, 0) == 5 && strcmp(lb, "oops\n") == 0,
	      "and on the shim's own stderr");
	close(fd);
	CHECK(value_is(s, "t", "exit", "3") && value_is(s, "t", "attempt", "1") &&
	      value_is(s, "t", "bytes", "3") && value_is(s, "t", "lines", "2"),
	      "values: exit, attempt, bytes and lines (the last without a newline)");

	rc = step("t", 4, 2, "echo partial; kill -KILL $$", NULL, 0, -1, err);
	CHECK(rc == 137, "death by SIGKILL is 137: %d", rc);
	CHECK(holds(s, "t/4.out", "partial\n", 1, 137) && value_is(s, "t/4", "signal", "9") &&
	      value_is(s, "t/4", "exit", "137") && value_is(s, "t/4", "attempt", "2"),
	      "a child's output, status and signal recorded");

	/* inputs in order: one done, one still being written */
	const char *a[] = { "a1\n", "a2\n", NULL }, *b[] = { "b1\n", "b2\n", "b3\n", NULL };
	pid_t pa = writer("a.out", a, 0, 0, 0);
	CHECK(reaped_ok(pa), "upstream a is done");
	pid_t pb = writer("b.out", b, 150, 0, 0);
	const char *ins[] = { "a.out", "b.out" };
	double t0 = now();
	rc = step("c", -1, 1, "cat; echo end", ins, 2, -1, err);
	CHECK(rc == 0 && holds(s, "c.out", "a1\na2\nb1\nb2\nb3\nend\n", 1, 0),
	      "stdin is the inputs in order, the second followed until it was done: %s", err);
	CHECK(now() - t0 >= 0.4, "it waited for the second upstream (%.2f s)", now() - t0);
	CHECK(reaped_ok(pb), "upstream b wrote");

	/* byte ranges: a fan-out child's batch of lines */
	const char *rg[] = { "a.out@3+3", "b.out@0+3", "a.out@6+0" };
	rc = step("c", 7, 1, "cat", rg, 3, -1, err);
	CHECK(rc == 0 && holds(s, "c/7.out", "a2\nb1\n", 1, 0), "inputs may be byte ranges: %s", err);
	const char *grow[] = { "x1\n", "x2\n", NULL };
	pid_t px = writer("x.out", grow, 100, -1, 0);	/* never finishes */
	const char *xin[] = { "x.out@0+3" };
	rc = step("c", 8, 1, "cat", xin, 1, -1, err);
	CHECK(rc == 0 && holds(s, "c/8.out", "x1\n", 1, 0),
	      "a range is read as soon as it is there, its writer still running");
	reaped_ok(px);
	const char *past[] = { "a.out@3+10" };
	rc = step("c", 9, 1, "cat", past, 1, -1, err);
	CHECK(rc == PL_EX_TEMPFAIL && strstr(err, "input 'a.out' ended at byte 6, before its range did (at 13)"),
	      "a range past a finished output's end stops the step: %s", err);

	/* an input whose writer has not started yet */
	const char *late[] = { "late\n", NULL };
	pid_t pn = writer("n.out", late, 0, 0, 300);
	const char *nin[] = { "n.out" };
	t0 = now();
	rc = step("d", -1, 1, "cat", nin, 1, -1, err);
	CHECK(rc == 0 && holds(s, "d.out", "late\n", 1, 0) && now() - t0 >= 0.25,
	      "an input whose writer has not started yet is waited for (%.2f s)", now() - t0);
	CHECK(reaped_ok(pn), "upstream n wrote");

	/* an input that fails: the command must not succeed on part of it */
	const char *f[] = { "f1\n", NULL };
	pid_t pf = writer("f.out", f, 100, 1, 0);
	const char *fin[] = { "f.out" };
	rc = step("e", -1, 1, "cat; sleep 5; echo never", fin, 1, -1, err);
	CHECK(rc == PL_EX_TEMPFAIL && strstr(err, "input 'f.out' failed (its writer ended with status 1)"),
	      "a failed input stops the step with 75: %s", err);
	struct pl_buf eb = PL_BUF_INIT;
	struct pl_art_info ei;
	/* what cat passed on before it was stopped: all of f1 or none of it */
	CHECK(content(s, "e.out", &eb, &ei) == 0 && ei.done && ei.status == PL_EX_TEMPFAIL &&
	      (eb.n == 0 || (eb.n == 3 && memcmp(eb.p, "f1\n", 3) == 0)) &&
	      value_is(s, "e", "exit", "75") && value_is(s, "e", "reason", err),
	      "and the output is done with 75, the reason recorded");
	pl_buf_free(&eb);
	reaped_ok(pf);

	/* an input replaced after part of it was read */
	const char *r[] = { "r1\n", NULL };
	pid_t pr = writer("r.out", r, 200, -2, 0);
	const char *rin[] = { "r.out" };
	rc = step("g", -1, 1, "cat", rin, 1, -1, err);
	CHECK(rc == PL_EX_TEMPFAIL && strstr(err, "input 'r.out' was replaced after 3 bytes"),
	      "an input replaced while read stops the step with 75: %s", err);
	reaped_ok(pr);

	/* SIGTERM passed on to the command's process group */
	pid_t killer = fork();
	if (killer == 0) {
		struct pl_art *ks = open_store(spec, runid, 0, 0);
		for (int k = 0; k < 500 && ks; k++) {
			if (holds(ks, "h.out", "ready\n", 0, 0)) {
				kill(getppid(), SIGTERM);
				_exit(0);
			}
			ms(10);
		}
		_exit(1);
	}
	rc = step("h", -1, 1, "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done",
		  NULL, 0, -1, err);
	CHECK(rc == 7 && holds(s, "h.out", "ready\ngot TERM\n", 1, 7),
	      "SIGTERM reaches the command, which ends as it chooses: %d", rc);
	CHECK(reaped_ok(killer), "the signal was sent once the command was ready");

	/* what the shell leaves behind does not hold the step */
	t0 = now();
	rc = step("o", -1, 1, "(sleep 30; echo late) & echo main", NULL, 0, -1, err);
	CHECK(rc == 0 && holds(s, "o.out", "main\n", 1, 0) && now() - t0 < 5,
	      "a background process left holding stdout is ended with the shell (%.2f s)", now() - t0);

	/* a command that does not read its (large) input */
	const char *big[] = { NULL, NULL };
	char *chunk = malloc(1 << 20);
	memset(chunk, 'x', 1 << 20);
	chunk[(1 << 20) - 1] = '\0';
	big[0] = chunk;
	pid_t pbig = writer("big.out", big, 0, 0, 0);
	reaped_ok(pbig);
	const char *bin[] = { "big.out" };
	rc = step("p", -1, 1, "echo ignored input", bin, 1, -1, err);
	CHECK(rc == 0 && holds(s, "p.out", "ignored input\n", 1, 0),
	      "a command that ignores its input ends normally");
	rc = step("q", -1, 1, "wc -c", bin, 1, -1, err);
	CHECK(rc == 0 && holds(s, "q.out", "1048575\n", 1, 0), "one that reads it gets every byte");
	free(chunk);

	/* a retried attempt replaces the first */
	rc = step("t", -1, 2, "echo second", NULL, 0, -1, err);
	CHECK(rc == 0 && holds(s, "t.out", "second\n", 1, 0) && value_is(s, "t", "attempt", "2") &&
	      value_is(s, "t", "exit", "0"), "attempt 2 replaces attempt 1's output and values");

	/* a directory is the run: its id only names Redis keys */
	char nowhere[600];
	snprintf(nowhere, sizeof nowhere, "%s/nowhere", tmp);
	struct pl_step o = { .store = nowhere, .run = runid, .task = "t", .child = -1,
			     .attempt = 1, .cmd = "true", .log_fd = -1 };
	rc = pl_step_run(&o, err, sizeof err);
	CHECK(rc == PL_EX_USAGE && strstr(err, "no run in"), "a run that is not there: 2: %s", err);
	o.store = spec;
	o.task = "../escape";
	rc = pl_step_run(&o, err, sizeof err);
	CHECK(rc == PL_EX_USAGE && strstr(err, "bad key"), "a task name that is no key: 2: %s", err);
	pl_art_close(s);
}

/* --- the driver ------------------------------------------------------------------ */

static int cmd_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "store", required_argument, NULL, 's' }, { "run", required_argument, NULL, 'r' },
		{ "task", required_argument, NULL, 't' }, { "child", required_argument, NULL, 'c' },
		{ "attempt", required_argument, NULL, 'a' }, { "input", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 }
	};
	struct pl_step o = { .child = -1, .attempt = 1, .log_fd = 2 };
	struct pl_step_input *in = calloc((size_t)argc, sizeof *in);
	char err[1024];
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': o.store = optarg; break;
		case 'r': o.run = optarg; break;
		case 't': o.task = optarg; break;
		case 'c': o.child = atol(optarg); break;
		case 'a': o.attempt = atoi(optarg); break;
		case 'i': parse_input(optarg, &in[o.ninputs++]); break;
		default: return 2;
		}
	}
	if (!o.store || !o.run || !o.task || optind != argc - 1) {
		fprintf(stderr, "usage: step run --store S --run R --task T [--child N] "
			"[--attempt A] [--input KEY[@OFF+LEN]]... -- CMD\n");
		return 2;
	}
	o.cmd = argv[optind];
	o.inputs = in;
	int rc = pl_step_run(&o, err, sizeof err);
	if (err[0])
		fprintf(stderr, "step: %s\n", err);
	free(in);
	return rc;
}

static int tool(int argc, char **argv)
{
	const char *c = argv[1];
	struct pl_art *s;
	struct pl_art_info i;
	int rc = 0;

	if (strcmp(c, "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (argc < 4)
		return 2;
	if (!(s = open_store(argv[2], argv[3], strcmp(c, "create") == 0,
			     strcmp(c, "create") == 0 && argc > 4 ? atol(argv[4]) : 0)))
		return 1;
	if (strcmp(c, "create") == 0) {
		/* nothing more */
	} else if (strcmp(c, "write") == 0 && argc >= 6) {
		struct pl_art_writer *w = pl_art_writer(s, argv[4], atoi(argv[5]));
		char buf[65536];
		ssize_t k;
		rc = !w;
		while (w && !rc && (k = read(0, buf, sizeof buf)) > 0)
			rc = pl_art_append(w, buf, (size_t)k) != 0;
		if (w && argc > 6 && strcmp(argv[6], "-") == 0)
			pl_art_abandon(w);
		else if (w)
			rc |= pl_art_finish(w, argc > 6 ? atoi(argv[6]) : 0) != 0;
	} else if (strcmp(c, "stat") == 0 && argc == 5) {
		rc = pl_art_stat(s, argv[4], &i) != 0;
		if (!rc)
			printf("gen=%llu attempt=%d size=%lld done=%d status=%d\n",
			       (unsigned long long)i.gen, i.attempt, (long long)i.size, i.done,
			       i.status);
	} else if (strcmp(c, "cat") == 0 && argc == 5) {
		struct pl_buf b = PL_BUF_INIT;
		rc = content(s, argv[4], &b, &i) != 0;
		if (!rc && b.n)
			fwrite(b.p, 1, b.n, stdout);
		pl_buf_free(&b);
	} else if (strcmp(c, "splice") == 0 && argc == 5) {
		struct pl_art_writer *w = pl_art_writer(s, argv[4], 1);
		char line[1100];
		rc = !w;
		while (w && !rc && fgets(line, sizeof line, stdin)) {
			line[strcspn(line, "\n")] = '\0';
			rc = pl_art_splice(w, line) != 0;
		}
		if (w)
			rc |= pl_art_finish(w, 0) != 0;
	} else if (strcmp(c, "get") == 0 && argc == 6) {
		char *v;
		size_t n;
		rc = pl_art_get(s, argv[4], argv[5], &v, &n) != 0;
		if (!rc) {
			fwrite(v, 1, n, stdout);
			putchar('\n');
			free(v);
		}
	} else {
		rc = 2;
	}
	if (rc == 1)
		fprintf(stderr, "step: %s\n", pl_art_errstr(s));
	pl_art_close(s);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		return tool(argc, argv);
	const char *t = getenv("TMPDIR");
	snprintf(tmp, sizeof tmp, "%s/step-unit.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmp)) {
		printf("not ok 1 - mkdtemp: %s\n1..1\n", strerror(errno));
		return 1;
	}
	offline();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmp);
	return done_testing();
}
