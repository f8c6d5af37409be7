/* The local runner: one process group per task attempt, one event loop that
 * waits for SIGCHLD, SIGINT and SIGTERM with sigtimedwait (the caller blocks
 * them; see pl_run), and a journal written and fsync'd line by line. */
#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fs.h"
#include "json.h"
#include "runner.h"
#include "tmpl.h"

enum { T_WAIT, T_RUN, T_BACKOFF, T_DONE };

struct trun;

/* One process to run: a task, or one child of a fan-out task. */
struct job {
	struct trun *u;
	long idx;		/* child number, or -1 for the task itself */
	int state;
	enum pl_outcome out;
	int attempt, code, timed_out;
	pid_t pid;
	double deadline, killat, next;
	char *cmd;
	struct pl_buf env;	/* NUL-separated KEY=VALUE */
	char **items;		/* a child's items */
	size_t nitems;
};

struct trun {
	const struct pl_task *t;
	int state;		/* T_WAIT, T_RUN (running or fanning out), T_DONE */
	enum pl_outcome out;
	struct job job;		/* a task without each */
	char **outv;		/* values of t->outputs */
	char **deps;		/* tasks waited for */
	size_t ndeps;
	/* fan-out */
	struct job **kids;
	size_t nkids;
	char **items;		/* items not yet given to a child */
	size_t nitems, nextitem;
	long batch, par;
	int ended;		/* no more items will come */
	int before;		/* resume: succeeded in an earlier attempt at the run */
	off_t offset;		/* PL_EACH_TASK: bytes of the upstream's output read */
	struct pl_buf partial;	/* PL_EACH_TASK: an unfinished last line */
};

struct runner {
	const struct pl_pipeline *p;
	const struct pl_run_opts *o;
	struct trun *tr;	/* ntasks + 1: on_exit last */
	size_t n;
	int jfd, interrupted, failures, signo;
	const char *status;
	struct job *cur;	/* whose {{item}} templates are expanded for */
	char **done;		/* resume: "task" and "task/N" that succeeded, sorted */
	size_t ndone;
	char *err;
	size_t errn;
};

static const char *const outcome_name[] = { "Succeeded", "Failed", "Skipped", "Errored",
	"Pending" };

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress(struct runner *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void progress(struct runner *r, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!r->o->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	r->o->progress(r->o->ctx, line);
}

static int fail(struct runner *r, const char *what, const char *path)
{
	snprintf(r->err, r->errn, "%s '%s': %s", what, path, strerror(errno));
	return -1;
}

/* One event: {"ts":...,"event":...,<rest>} and a newline, then fsync. */
static int journal(struct runner *r, const char *event, const char *task, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int journal(struct runner *r, const char *event, const char *task, const char *fmt, ...)
{
	struct pl_buf b = PL_BUF_INIT;
	struct timespec ts;
	char tail[512];
	va_list ap;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	pl_buf_printf(&b, "{\"ts\":%lld.%03ld,\"event\":\"%s\"", (long long)ts.tv_sec,
		      ts.tv_nsec / 1000000, event);
	if (task) {
		pl_buf_adds(&b, ",\"task\":");
		pl_json_put_str(&b, task, strlen(task));
	}
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(tail, sizeof tail, fmt, ap);
		va_end(ap);
		pl_buf_adds(&b, ",");
		pl_buf_adds(&b, tail);
	}
	pl_buf_adds(&b, "}\n");
	if (write(r->jfd, b.p, b.n) != (ssize_t)b.n || fsync(r->jfd) < 0) {
		snprintf(r->err, r->errn, "cannot write the journal: %s", strerror(errno));
		rc = -1;
	}
	pl_buf_free(&b);
	return rc;
}

static struct trun *find(struct runner *r, const char *name, size_t n)
{
	for (size_t i = 0; i < r->p->ntasks; i++)
		if (strlen(r->tr[i].t->name) == n && memcmp(r->tr[i].t->name, name, n) == 0)
			return &r->tr[i];
	return NULL;
}

static void path_of(struct runner *r, const char *task, const char *ext, char *buf, size_t n)
{
	snprintf(buf, n, "%s/tasks/%s.%s", r->o->dir, task, ext);
}

/* --- templates ------------------------------------------------------------- */

static char *json_field(const char *s, size_t n, const char *field);

static int lookup(void *ctx, const char *ref, size_t n, size_t col, struct pl_buf *out,
		  struct pl_texpr_err *e)
{
	struct runner *r = ctx;
	struct pl_tref t;
	struct trun *u;

	if (pl_tref_parse(ref, n, &t, e) < 0)
		return -1;
	switch (t.kind) {
	case PL_TREF_PARAM:
		for (size_t i = 0; i < r->p->nparams; i++) {
			const struct pl_param *q = &r->p->params[i];
			if (strlen(q->name) == t.alen && memcmp(q->name, t.a, t.alen) == 0) {
				const char *v = q->value ? q->value : q->def;
				if (v)
					pl_buf_adds(out, v);
				return 0;
			}
		}
		snprintf(e->msg, sizeof e->msg, "unknown param '%.*s'", (int)t.alen, t.a);
		return -1;
	case PL_TREF_OUTPUT:
		if (!(u = find(r, t.a, t.alen)))
			break;
		for (size_t i = 0; i < u->t->noutputs; i++)
			if (strlen(u->t->outputs[i].name) == t.blen &&
			    memcmp(u->t->outputs[i].name, t.b, t.blen) == 0) {
				if (u->outv && u->outv[i])
					pl_buf_adds(out, u->outv[i]);
				return 0;
			}
		break;
	case PL_TREF_STATUS:
		if (!(u = find(r, t.a, t.alen)))
			break;
		pl_buf_adds(out, outcome_name[u->state == T_DONE ? u->out : PL_OUT_PENDING]);
		return 0;
	case PL_TREF_RUN_ID:
		pl_buf_adds(out, r->o->id);
		return 0;
	case PL_TREF_RUN_STATUS:
		pl_buf_adds(out, r->status ? r->status : "Running");
		return 0;
	case PL_TREF_RUN_FAILURES:
		pl_buf_printf(out, "%d", r->failures);
		return 0;
	case PL_TREF_ITEM:
		if (!r->cur || r->cur->idx < 0) {
			snprintf(e->msg, sizeof e->msg, "'{{item}}' outside a task with 'each'");
			return -1;
		}
		for (size_t i = 0; i < r->cur->nitems; i++) {
			const char *it = r->cur->items[i];
			if (i)
				pl_buf_addc(out, '\n');
			if (!t.alen) {
				pl_buf_adds(out, it);
				continue;
			}
			char *f = pl_xstrndup(t.a, t.alen);
			char *v = json_field(it, strlen(it), f);
			pl_buf_adds(out, v);
			free(v);
			free(f);
		}
		return 0;
	}
	snprintf(e->msg, sizeof e->msg, "unknown reference '%.*s'", (int)n, ref);
	return -1;
}

/* --- outputs --------------------------------------------------------------- */

static char *read_all(const char *path, size_t *len)
{
	struct pl_buf b = PL_BUF_INIT;
	char chunk[65536];
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		while ((k = read(fd, chunk, sizeof chunk)) > 0)
			pl_buf_add(&b, chunk, k);
		close(fd);
	}
	pl_buf_cstr(&b);
	*len = b.n;
	return b.p ? b.p : pl_xstrdup("");
}

static char *json_field(const char *s, size_t n, const char *field)
{
	size_t end = n;

	while (end > 0) {
		size_t beg = end;
		while (beg > 0 && s[beg - 1] != '\n')
			beg--;
		struct pl_jobj o = { 0 };
		struct pl_jerr e;
		if (beg < end && pl_json_scan_object(s + beg, end - beg, &o, &e) == 0) {
			const struct pl_jmember *m = pl_jobj_get(&o, field);
			char *v = NULL;
			if (m) {
				struct pl_buf sb = PL_BUF_INIT;
				const char *sv;
				size_t sn;
				if (pl_jmember_str(m, &sb, &sv, &sn, PL_JSTR_REPLACE, &e) == 0)
					v = pl_xstrndup(sv, sn);
				else
					v = pl_xstrndup(m->val, m->vallen);
				pl_buf_free(&sb);
			}
			pl_jobj_free(&o);
			return v ? v : pl_xstrdup("");
		}
		pl_jobj_free(&o);
		end = beg > 0 ? beg - 1 : 0;
	}
	return pl_xstrdup("");
}

static void compute_outputs(struct runner *r, struct trun *u)
{
	char path[4096];
	size_t n, body;
	char *s;

	if (!u->t->noutputs)
		return;
	path_of(r, u->t->name, "out", path, sizeof path);
	s = read_all(path, &n);
	body = n > 0 && s[n - 1] == '\n' ? n - 1 : n;
	u->outv = pl_xmalloc(u->t->noutputs * sizeof *u->outv);
	for (size_t i = 0; i < u->t->noutputs; i++) {
		const struct pl_output *o = &u->t->outputs[i];
		const char *nl;
		size_t lines = 0, b;
		switch (o->kind) {
		case PL_OUTPUT_JSON:
			u->outv[i] = json_field(s, body, o->field);
			break;
		case PL_OUTPUT_FIRST:
			nl = memchr(s, '\n', body);
			u->outv[i] = pl_xstrndup(s, nl ? (size_t)(nl - s) : body);
			break;
		case PL_OUTPUT_LAST:
			for (b = body; b > 0 && s[b - 1] != '\n'; b--)
				;
			u->outv[i] = pl_xstrndup(s + b, body - b);
			break;
		case PL_OUTPUT_ALL:
			u->outv[i] = pl_xstrndup(s, body);
			break;
		case PL_OUTPUT_COUNT:
			for (size_t k = 0; k < n; k++)
				lines += s[k] == '\n';
			if (n && s[n - 1] != '\n')
				lines++;
			u->outv[i] = pl_xmalloc(32);
			snprintf(u->outv[i], 32, "%zu", lines);
			break;
		}
	}
	free(s);
}

/* --- scheduling ------------------------------------------------------------ */

static int collect_dep(void *ctx, const char *task, size_t n, size_t col, struct pl_texpr_err *e)
{
	struct trun *u = ctx;
	u->deps = pl_xrealloc(u->deps, (u->ndeps + 1) * sizeof *u->deps);
	u->deps[u->ndeps++] = pl_xstrndup(task, n);
	return PL_OUT_SUCCEEDED;
}

static int outcome_of(void *ctx, const char *task, size_t n, size_t col, struct pl_texpr_err *e)
{
	struct trun *u = find(ctx, task, n);
	if (!u) {
		snprintf(e->msg, sizeof e->msg, "unknown task '%.*s'", (int)n, task);
		return -1;
	}
	return u->state == T_DONE ? (int)u->out : PL_OUT_PENDING;
}

static int streams(const struct trun *u)
{
	return u->t->each.kind == PL_EACH_TASK;
}

/* Whether u may start: every task it waits for is done, except the one a
 * streaming fan-out reads, which need only have started. */
static int deps_done(struct runner *r, struct trun *u)
{
	for (size_t i = 0; i < u->ndeps; i++) {
		struct trun *d = find(r, u->deps[i], strlen(u->deps[i]));
		if (!d || d->state == T_DONE)
			continue;
		/* a retry would write the upstream's output again: wait for it then */
		if (streams(u) && strcmp(d->t->name, u->t->each.task) == 0 && d->state == T_RUN &&
		    d->t->retry.limit == 0)
			continue;
		return 0;
	}
	return 1;
}

static void job_name(const struct job *j, char *buf, size_t n)
{
	if (j->idx < 0)
		snprintf(buf, n, "%s", j->u->t->name);
	else
		snprintf(buf, n, "%s/%ld", j->u->t->name, j->idx);
}

static void job_path(struct runner *r, const struct job *j, const char *ext, char *buf, size_t n)
{
	if (j->idx < 0)
		path_of(r, j->u->t->name, ext, buf, n);
	else
		snprintf(buf, n, "%s/tasks/%s/%ld.%s", r->o->dir, j->u->t->name, j->idx, ext);
}

static int is_exit(struct runner *r, const struct trun *u)
{
	return u == &r->tr[r->p->ntasks];
}

static void finish(struct runner *r, struct trun *u, enum pl_outcome out, const char *why)
{
	u->state = T_DONE;
	u->out = out;
	if ((out == PL_OUT_FAILED || out == PL_OUT_ERRORED) && !is_exit(r, u))
		r->failures++;
	if (out == PL_OUT_SUCCEEDED)
		compute_outputs(r, u);
	if (why) {
		journal(r, "task_finished", u->t->name, "\"status\":\"%s\",\"reason\":\"%s\"",
			outcome_name[out], why);
		progress(r, "%s: %s (%s)", u->t->name, outcome_name[out], why);
	}
}

/* The stdin of j: a child's items, or /dev/null, one upstream output file, or
 * several joined into tasks/NAME.in. Returns an fd, or -1 with errno set. */
static int open_stdin(struct runner *r, struct job *j)
{
	const struct pl_task *t = j->u->t;
	char **src = t->stdin_kind == PL_STDIN_LIST ? t->stdin_tasks : t->needs;
	size_t nsrc = t->stdin_kind == PL_STDIN_LIST ? t->nstdin : t->nneeds;
	char path[4096], in[4096];
	int fd;

	if (j->idx >= 0) {
		struct pl_buf b = PL_BUF_INIT;
		for (size_t i = 0; i < j->nitems; i++) {
			pl_buf_adds(&b, j->items[i]);
			pl_buf_addc(&b, '\n');
		}
		job_path(r, j, "in", in, sizeof in);
		fd = open(in, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0 && b.n && write(fd, b.p, b.n) != (ssize_t)b.n) {
			close(fd);
			fd = -1;
		}
		pl_buf_free(&b);
		if (fd >= 0)
			lseek(fd, 0, SEEK_SET);
		return fd;
	}
	if (t->stdin_kind == PL_STDIN_NONE || nsrc == 0)
		return open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nsrc == 1) {
		path_of(r, src[0], "out", path, sizeof path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		return fd < 0 && errno == ENOENT ? open("/dev/null", O_RDONLY | O_CLOEXEC) : fd;
	}
	path_of(r, t->name, "in", in, sizeof in);
	if ((fd = open(in, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return -1;
	for (size_t i = 0; i < nsrc; i++) {
		size_t n;
		path_of(r, src[i], "out", path, sizeof path);
		char *s = read_all(path, &n);
		if (n && write(fd, s, n) != (ssize_t)n) {
			free(s);
			close(fd);
			return -1;
		}
		free(s);
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int start(struct runner *r, struct job *j)
{
	char out[4096], log[4096], name[300];
	int ifd, ofd, lfd;
	pid_t pid;

	job_name(j, name, sizeof name);
	job_path(r, j, "out", out, sizeof out);
	job_path(r, j, "log", log, sizeof log);
	if ((ifd = open_stdin(r, j)) < 0)
		return fail(r, "cannot open the input of", name);
	if ((ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 ||
	    (lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		return fail(r, "cannot create", ofd < 0 ? out : log);
	j->attempt++;
	pid = fork();
	if (pid < 0)
		return fail(r, "cannot fork for", name);
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* dagrun killed: resume runs it again */
		dup2(ifd, 0);
		dup2(ofd, 1);
		dup2(lfd, 2);
		for (size_t k = 0; k < j->env.n; k += strlen(j->env.p + k) + 1)
			putenv(j->env.p + k);
		setenv("PLUMB_RUN_ID", r->o->id, 1);
		execl("/bin/sh", "sh", "-c", j->cmd, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	close(ifd);
	close(ofd);
	close(lfd);
	if (j->idx < 0 ? journal(r, "task_started", j->u->t->name, "\"attempt\":%d,\"pid\":%ld",
				 j->attempt, (long)pid) :
	    journal(r, "task_started", j->u->t->name, "\"child\":%ld,\"attempt\":%d,\"pid\":%ld",
		    j->idx, j->attempt, (long)pid)) {
		kill(-pid, SIGKILL);
		return -1;
	}
	j->pid = pid;
	j->state = T_RUN;
	j->timed_out = 0;
	j->deadline = j->u->t->timeout > 0 ? now() + j->u->t->timeout : 0;
	j->killat = 0;
	if (j->attempt == 1)
		progress(r, "%s: started", name);
	else
		progress(r, "%s: started (attempt %d)", name, j->attempt);
	return 0;
}

/* Expand j's command and environment. Returns 0, or -1 after a message. */
static int expand_job(struct runner *r, struct job *j)
{
	struct pl_buf b = PL_BUF_INIT;
	struct pl_texpr_err e = { 0 };
	char name[300];
	int rc = -1;

	job_name(j, name, sizeof name);
	r->cur = j;
	if (pl_tmpl_expand(j->u->t->run ? j->u->t->run : "true", lookup, r, &b, &e) < 0) {
		progress(r, "%s: run: %s", name, e.msg);
		goto out;
	}
	j->cmd = pl_xstrdup(pl_buf_cstr(&b));
	for (size_t i = 0; i < j->u->t->env.n; i++) {
		pl_buf_adds(&j->env, j->u->t->env.v[i].key);
		pl_buf_addc(&j->env, '=');
		if (pl_tmpl_expand(j->u->t->env.v[i].val, lookup, r, &j->env, &e) < 0) {
			progress(r, "%s: env: %s", name, e.msg);
			goto out;
		}
		pl_buf_addc(&j->env, '\0');
	}
	rc = 0;
out:
	r->cur = NULL;
	pl_buf_free(&b);
	return rc;
}

/* A number or a template of params, such as batch and parallelism. */
static long count_of(struct runner *r, const char *s, long def)
{
	struct pl_buf b = PL_BUF_INIT;
	struct pl_texpr_err e;
	long v = def;

	if (s && pl_tmpl_expand(s, lookup, r, &b, &e) == 0)
		v = strtol(pl_buf_cstr(&b), NULL, 10);
	pl_buf_free(&b);
	return v > 0 ? v : def;
}

static void add_item(struct trun *u, char *it)
{
	u->items = pl_xrealloc(u->items, (u->nitems + 1) * sizeof *u->items);
	u->items[u->nitems++] = it;
}

/* The items of a fan-out that are known at its start. Returns 0, or -1 after a
 * message when a template does not give a JSON array. */
static int static_items(struct runner *r, struct trun *u)
{
	const struct pl_each *ea = &u->t->each;
	struct pl_buf b = PL_BUF_INIT;
	struct pl_texpr_err e = { 0 };
	json_error_t je;
	json_t *a;

	switch (ea->kind) {
	case PL_EACH_LIST:
		for (size_t i = 0; i < ea->nitems; i++)
			add_item(u, pl_xstrdup(ea->items[i]));
		break;
	case PL_EACH_RANGE:
		for (long v = ea->from; ea->step > 0 ? v < ea->to : v > ea->to; v += ea->step) {
			char *it = pl_xmalloc(24);
			snprintf(it, 24, "%ld", v);
			add_item(u, it);
		}
		break;
	case PL_EACH_TMPL:
		if (pl_tmpl_expand(ea->tmpl, lookup, r, &b, &e) < 0 ||
		    !(a = json_loads(pl_buf_cstr(&b), JSON_DECODE_ANY, &je)) || !json_is_array(a)) {
			progress(r, "%s: each: not a JSON array: %s", u->t->name, pl_buf_cstr(&b));
			pl_buf_free(&b);
			return -1;
		}
		for (size_t i = 0; i < json_array_size(a); i++) {
			json_t *v = json_array_get(a, i);
			add_item(u, json_is_string(v) ? pl_xstrdup(json_string_value(v)) :
				 json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
		}
		json_decref(a);
		pl_buf_free(&b);
		break;
	default:
		break;
	}
	if (ea->kind != PL_EACH_TASK)
		u->ended = 1;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether the journal of the run being resumed says name succeeded. */
static int done_before(struct runner *r, const char *name)
{
	return r->ndone && bsearch(&name, r->done, r->ndone, sizeof *r->done, cmp_str);
}

/* Resume: what succeeded before, from the journal; and the process groups
 * of tasks that were running when dagrun died, which are ended now. */
static int read_journal(struct runner *r)
{
	char path[4096], *line = NULL, **run = NULL;
	size_t cap = 0, nrun = 0;
	long *runpid = NULL;
	FILE *f;

	snprintf(path, sizeof path, "%s/journal.jsonl", r->o->dir);
	if (!(f = fopen(path, "r")))
		return fail(r, "cannot read", path);
	while (getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, NULL);
		const char *ev = json_string_value(json_object_get(j, "event"));
		const char *task = json_string_value(json_object_get(j, "task"));
		const char *st = json_string_value(json_object_get(j, "status"));
		json_t *child = json_object_get(j, "child");
		long pid = json_integer_value(json_object_get(j, "pid"));
		char name[4200];
		if (!ev || !task)
			goto next;
		if (child)
			snprintf(name, sizeof name, "%s/%lld", task,
				 (long long)json_integer_value(child));
		else
			snprintf(name, sizeof name, "%s", task);
		if (strcmp(ev, "task_started") == 0 && pid > 1) {
			run = pl_xrealloc(run, (nrun + 1) * sizeof *run);
			runpid = pl_xrealloc(runpid, (nrun + 1) * sizeof *runpid);
			run[nrun] = pl_xstrdup(name);
			runpid[nrun++] = pid;
		} else if (strcmp(ev, "task_finished") == 0) {
			for (size_t i = 0; i < nrun; i++)
				if (runpid[i] && strcmp(run[i], name) == 0)
					runpid[i] = 0;
		}
		if (st && strcmp(ev, "task_finished") == 0 && strcmp(st, "Succeeded") == 0) {
			r->done = pl_xrealloc(r->done, (r->ndone + 1) * sizeof *r->done);
			r->done[r->ndone++] = pl_xstrdup(name);
		}
next:
		json_decref(j);
	}
	free(line);
	fclose(f);
	/* started and never finished: the process groups dagrun left behind */
	for (size_t i = 0; i < nrun; i++) {
		if (runpid[i])
			kill(-runpid[i], SIGKILL);
		free(run[i]);
	}
	free(run);
	free(runpid);
	if (r->ndone)
		qsort(r->done, r->ndone, sizeof *r->done, cmp_str);
	return 0;
}

/* Decide what a task whose dependencies are done does: skip, error, or run.
 * Returns -1 on a journal error, else 0. */
static int prepare(struct runner *r, struct trun *u)
{
	struct pl_buf b = PL_BUF_INIT;
	struct pl_texpr_err e = { 0 };
	int ok = 1;

	if (!is_exit(r, u) && done_before(r, u->t->name)) {
		u->before = 1;
		progress(r, "%s: Succeeded before", u->t->name);
		finish(r, u, PL_OUT_SUCCEEDED, NULL);
		return 0;
	}
	if (u->t->depends) {
		if (pl_depends_eval(u->t->depends, outcome_of, r, &ok, &e) < 0) {
			finish(r, u, PL_OUT_ERRORED, "bad depends");
			return 0;
		}
	} else {
		for (size_t i = 0; i < u->ndeps; i++) {
			struct trun *d = find(r, u->deps[i], strlen(u->deps[i]));
			if (d && d->state == T_DONE && d->out != PL_OUT_SUCCEEDED)
				ok = 0;
		}
	}
	if (!ok) {
		finish(r, u, PL_OUT_SKIPPED, u->t->depends ? "depends is false" :
		       "an upstream task did not succeed");
		return 0;
	}
	if (u->t->when) {
		int yes;
		if (pl_tmpl_expand(u->t->when, lookup, r, &b, &e) < 0 ||
		    pl_when_eval(pl_buf_cstr(&b), 0, &yes, &e) < 0) {
			progress(r, "%s: when: %s", u->t->name, e.msg);
			pl_buf_free(&b);
			finish(r, u, PL_OUT_ERRORED, "bad when");
			return 0;
		}
		pl_buf_free(&b);
		if (!yes) {
			finish(r, u, PL_OUT_SKIPPED, "when is false");
			return 0;
		}
	}
	if (u->t->each.kind != PL_EACH_NONE) {
		char path[4096], failed[4096];
		snprintf(path, sizeof path, "%s/tasks/%s", r->o->dir, u->t->name);
		if (pl_mkdir_p(path, failed, sizeof failed) < 0)
			return fail(r, "cannot create", failed);
		u->batch = count_of(r, u->t->batch, 1);
		u->par = count_of(r, u->t->parallelism, 0);
		if (static_items(r, u) < 0) {
			finish(r, u, PL_OUT_ERRORED, "bad each");
			return 0;
		}
		u->state = T_RUN;
		progress(r, "%s: fanning out", u->t->name);
		return journal(r, "task_started", u->t->name, "\"fanout\":true");
	}
	u->job.u = u;
	u->job.idx = -1;
	if (expand_job(r, &u->job) < 0) {
		finish(r, u, PL_OUT_ERRORED, "bad template");
		return 0;
	}
	u->state = T_RUN;
	return start(r, &u->job);
}

static int retryable(const struct pl_retry *rt, int code, int signalled)
{
	if (rt->on != PL_RETRY_TRANSIENT)
		return 1;
	return signalled || code == 75 || code == 69;
}

static int reaped(struct runner *r, struct job *j, int status)
{
	int sig = WIFSIGNALED(status);
	const struct pl_retry *rt = &j->u->t->retry;
	char name[300], child[40] = "";
	double wait = 0;

	job_name(j, name, sizeof name);
	if (j->idx >= 0)
		snprintf(child, sizeof child, "\"child\":%ld,", j->idx);
	j->code = sig ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
	j->pid = 0;
	if (j->timed_out)
		sig = 1;
	if (j->code == 0 && !j->timed_out) {
		if (journal(r, "task_finished", j->u->t->name,
			    "%s\"status\":\"Succeeded\",\"exit\":0,\"attempt\":%d", child,
			    j->attempt) < 0)
			return -1;
		progress(r, "%s: Succeeded", name);
		j->state = T_DONE;
		j->out = PL_OUT_SUCCEEDED;
		if (j->idx < 0)
			finish(r, j->u, PL_OUT_SUCCEEDED, NULL);
		return 0;
	}
	int again = !r->interrupted && j->attempt <= rt->limit && retryable(rt, j->code, sig);
	if (again) {
		wait = rt->backoff * pow(rt->factor, j->attempt - 1);
		if (rt->max > 0 && wait > rt->max)
			wait = rt->max;
	}
	if (journal(r, "task_finished", j->u->t->name,
		    "%s\"status\":\"Failed\",\"exit\":%d,\"attempt\":%d%s%s", child, j->code,
		    j->attempt, j->timed_out ? ",\"timeout\":true" : "",
		    again ? ",\"retry\":true" : "") < 0)
		return -1;
	progress(r, "%s: Failed (%s %d%s)%s", name, sig && !j->timed_out ? "signal" : "exit",
		 sig && !j->timed_out ? j->code - 128 : j->code, j->timed_out ? ", timed out" : "",
		 again ? ", retrying" : "");
	if (again) {
		j->state = T_BACKOFF;
		j->next = now() + wait;
	} else {
		j->state = T_DONE;
		j->out = PL_OUT_FAILED;
		if (j->idx < 0)
			finish(r, j->u, PL_OUT_FAILED, NULL);
	}
	return 0;
}

/* Every job, in a fixed order: fn returns -1 to stop. */
#define EACH_JOB(r, j, body) do { \
	for (size_t i_ = 0; i_ <= (r)->p->ntasks; i_++) { \
		struct trun *u_ = &(r)->tr[i_]; \
		if (!u_->t) \
			continue; \
		if (u_->t->each.kind == PL_EACH_NONE) { \
			struct job *j = &u_->job; \
			if (j->u) { body } \
		} else { \
			for (size_t k_ = 0; k_ < u_->nkids; k_++) { \
				struct job *j = u_->kids[k_]; \
				body \
			} \
		} \
	} \
} while (0)

static int running(struct runner *r)
{
	int k = 0;
	EACH_JOB(r, j, k += j->state == T_RUN;);
	return k;
}

static void stop_all(struct runner *r)
{
	double t = now();
	EACH_JOB(r, j, if (j->state == T_RUN && !j->killat) {
		kill(-j->pid, SIGTERM);
		j->killat = t + r->o->kill_grace;
	});
}

/* Wait for a signal or the next deadline, then reap and enforce timeouts. */
static int wait_events(struct runner *r, double poll)
{
	double t = now(), next = t + poll;
	struct timespec ts;
	sigset_t set;
	siginfo_t si;
	int st, sig, rc = 0;
	pid_t pid;

	EACH_JOB(r, j, {
		if (j->state == T_RUN && j->deadline && !j->timed_out && j->deadline < next)
			next = j->deadline;
		if (j->state == T_RUN && j->killat && j->killat < next)
			next = j->killat;
		if (j->state == T_BACKOFF && j->next < next)
			next = j->next;
	});
	if (next > t) {
		double d = next - t;
		ts.tv_sec = (time_t)d;
		ts.tv_nsec = (long)((d - ts.tv_sec) * 1e9);
		sigemptyset(&set);
		sigaddset(&set, SIGCHLD);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sig = sigtimedwait(&set, &si, &ts);
		if ((sig == SIGINT || sig == SIGTERM) && !r->interrupted) {
			r->interrupted = r->signo = sig;
			progress(r, "interrupted: stopping");
			stop_all(r);
		}
	}
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		EACH_JOB(r, j, if (j->state == T_RUN && j->pid == pid && reaped(r, j, st) < 0)
			rc = -1;);
	t = now();
	EACH_JOB(r, j, if (j->state == T_RUN) {
		if (j->deadline && !j->timed_out && t >= j->deadline) {
			j->timed_out = 1;
			kill(-j->pid, SIGTERM);
			j->killat = t + r->o->kill_grace;
		} else if (j->killat && t >= j->killat) {
			kill(-j->pid, SIGKILL);
			j->killat = t + 3600;
		}
	});
	return rc;
}

/* Read what the upstream of a streaming fan-out wrote since last time. */
static void read_stream(struct runner *r, struct trun *u)
{
	struct trun *up = find(r, u->t->each.task, strlen(u->t->each.task));
	int done = up->state == T_DONE;	/* before reading: nothing comes after */
	char path[4096], chunk[65536];
	ssize_t k;
	int fd;

	path_of(r, up->t->name, "out", path, sizeof path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		while ((k = pread(fd, chunk, sizeof chunk, u->offset)) > 0) {
			u->offset += k;
			for (ssize_t i = 0; i < k; i++) {
				if (chunk[i] != '\n') {
					pl_buf_addc(&u->partial, chunk[i]);
					continue;
				}
				add_item(u, pl_xstrndup(u->partial.p ? u->partial.p : "",
							u->partial.n));
				u->partial.n = 0;
			}
		}
		close(fd);
	}
	if (done) {
		if (up->out == PL_OUT_SUCCEEDED && u->partial.n)
			add_item(u, pl_xstrndup(u->partial.p, u->partial.n));
		u->partial.n = 0;
		u->ended = 1;
	}
}

/* Make children of the items there are; finish the task when all are done. */
static int fan_out(struct runner *r, struct trun *u)
{
	struct trun *up = streams(u) ? find(r, u->t->each.task, strlen(u->t->each.task)) : NULL;
	size_t ok = 0, done = 0;

	if (streams(u) && !u->ended)
		read_stream(r, u);
	while (!r->interrupted && u->nitems - u->nextitem >= (u->ended ? 1 : (size_t)u->batch)) {
		struct job *j = calloc(1, sizeof *j);
		size_t n = u->nitems - u->nextitem;
		j->u = u;
		j->idx = u->nkids;
		j->nitems = n < (size_t)u->batch ? n : (size_t)u->batch;
		j->items = pl_xmalloc(j->nitems * sizeof *j->items);
		memcpy(j->items, u->items + u->nextitem, j->nitems * sizeof *j->items);
		u->nextitem += j->nitems;
		u->kids = pl_xrealloc(u->kids, (u->nkids + 1) * sizeof *u->kids);
		u->kids[u->nkids++] = j;
		char name[300];
		job_name(j, name, sizeof name);
		/* a streamed child's items are the same only if its upstream was kept */
		if ((!up || up->before) && done_before(r, name)) {
			j->state = T_DONE;
			j->out = PL_OUT_SUCCEEDED;
			progress(r, "%s: Succeeded before", name);
		} else if (expand_job(r, j) < 0) {
			j->state = T_DONE;
			j->out = PL_OUT_ERRORED;
		}
	}
	for (size_t i = 0; i < u->nkids; i++) {
		done += u->kids[i]->state == T_DONE;
		ok += u->kids[i]->state == T_DONE && u->kids[i]->out == PL_OUT_SUCCEEDED;
	}
	if (!(u->ended || r->interrupted) || done < u->nkids)
		return 0;
	/* fan-in: the task's output is its children's, in item order */
	char path[4096], kid[4096];
	path_of(r, u->t->name, "out", path, sizeof path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(r, "cannot create", path);
	for (size_t i = 0; i < u->nkids; i++) {
		size_t n;
		job_path(r, u->kids[i], "out", kid, sizeof kid);
		char *s = read_all(kid, &n);
		if (n && write(fd, s, n) != (ssize_t)n) {
			free(s);
			close(fd);
			return fail(r, "cannot write", path);
		}
		free(s);
	}
	if (close(fd) < 0)
		return fail(r, "cannot write", path);
	/* a fan-out over no items has nothing that failed: it succeeds */
	double need = u->nkids == 0 ? 0 : u->t->min_success < 0 ? u->nkids :
		u->t->min_success_fraction ? ceil(u->t->min_success * u->nkids - 1e-9) :
		u->t->min_success;
	enum pl_outcome out = ok >= need && !r->interrupted &&
		(!up || up->out == PL_OUT_SUCCEEDED) ? PL_OUT_SUCCEEDED : PL_OUT_FAILED;
	if (journal(r, "task_finished", u->t->name,
		    "\"status\":\"%s\",\"children\":%zu,\"succeeded\":%zu", outcome_name[out],
		    u->nkids, ok) < 0)
		return -1;
	progress(r, "%s: %s (%zu of %zu children succeeded)", u->t->name, outcome_name[out], ok,
		 u->nkids);
	finish(r, u, out, NULL);
	return 0;
}

/* Whether a job of u may start under the pipeline's and u's parallelism. */
static int room(struct runner *r, struct trun *u, int *total)
{
	if (r->p->parallelism > 0 && *total >= r->p->parallelism)
		return 0;
	if (u->par > 0) {
		long k = 0;
		for (size_t i = 0; i < u->nkids; i++)
			k += u->kids[i]->state == T_RUN;
		if (k >= u->par)
			return 0;
	}
	return 1;
}

/* Run tasks [beg, end): the tasks, or on_exit alone. */
static int loop(struct runner *r, size_t beg, size_t end)
{
	for (;;) {
		int pending = 0, streaming = 0, total = running(r);
		for (size_t i = beg; i < end; i++) {
			struct trun *u = &r->tr[i];
			if (u->state == T_DONE)
				continue;
			pending = 1;
			if (u->state == T_WAIT && !r->interrupted && deps_done(r, u) &&
			    room(r, u, &total)) {
				if (prepare(r, u) < 0)
					return -1;
				total = running(r);
			}
			if (u->state == T_RUN && u->t->each.kind != PL_EACH_NONE) {
				if (fan_out(r, u) < 0)
					return -1;
				streaming |= u->state == T_RUN && !u->ended;
				for (size_t k = 0; k < u->nkids; k++) {
					struct job *j = u->kids[k];
					if ((j->state == T_BACKOFF || j->state == T_WAIT) &&
					    r->interrupted) {
						j->state = T_DONE;
						j->out = PL_OUT_FAILED;
					}
					if (r->interrupted || !room(r, u, &total))
						continue;
					if ((j->state == T_WAIT && !j->attempt) ||
					    (j->state == T_BACKOFF && now() >= j->next)) {
						if (start(r, j) < 0)
							return -1;
						total++;
					}
				}
				if (u->state == T_RUN && fan_out(r, u) < 0)
					return -1;
			} else if (u->state == T_RUN && u->job.state == T_BACKOFF) {
				if (r->interrupted)
					finish(r, u, PL_OUT_FAILED, "interrupted");
				else if (now() >= u->job.next && room(r, u, &total)) {
					if (start(r, &u->job) < 0)
						return -1;
					total++;
				}
			}
		}
		if (!pending || (r->interrupted && !running(r)))
			return 0;
		if (wait_events(r, streaming ? 0.01 : 1) < 0)
			return -1;
	}
}

int pl_run(const struct pl_pipeline *p, const struct pl_run_opts *o, char *err, size_t errn)
{
	struct runner r = { .p = p, .o = o, .n = p->ntasks + 1, .jfd = -1, .err = err,
			    .errn = errn };
	char path[4096], failed[4096];
	int rc = -1;

	snprintf(path, sizeof path, "%s/tasks", o->dir);
	if (pl_mkdir_p(path, failed, sizeof failed) < 0)
		return fail(&r, "cannot create", failed);
	snprintf(path, sizeof path, "%s/journal.jsonl", o->dir);
	if ((r.jfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		return fail(&r, "cannot create", path);
	snprintf(path, sizeof path, "%s/pid", o->dir);
	FILE *pf = fopen(path, "w");
	if (!pf || fprintf(pf, "%ld\n", (long)getpid()) < 0 || fclose(pf) != 0) {
		fail(&r, "cannot write", path);
		goto out;
	}
	r.tr = pl_xmalloc(r.n * sizeof *r.tr);
	memset(r.tr, 0, r.n * sizeof *r.tr);
	for (size_t i = 0; i < p->ntasks; i++) {
		struct trun *u = &r.tr[i];
		struct pl_texpr_err e;
		int yes;
		u->t = &p->tasks[i];
		for (size_t j = 0; j < u->t->nneeds; j++)
			collect_dep(u, u->t->needs[j], strlen(u->t->needs[j]), 0, &e);
		if (u->t->each.kind == PL_EACH_TASK)
			collect_dep(u, u->t->each.task, strlen(u->t->each.task), 0, &e);
		if (u->t->depends)
			pl_depends_eval(u->t->depends, collect_dep, u, &yes, &e);
	}
	if (o->resume && read_journal(&r) < 0)
		goto out;
	{
		struct pl_buf b = PL_BUF_INIT;
		pl_json_put_str(&b, o->id, strlen(o->id));
		pl_buf_adds(&b, ",\"pipeline\":");
		pl_json_put_str(&b, p->name ? p->name : "", p->name ? strlen(p->name) : 0);
		int jr = journal(&r, o->resume ? "run_resumed" : "run_started", NULL, "\"id\":%s,\"pid\":%ld", pl_buf_cstr(&b),
				 (long)getpid());
		pl_buf_free(&b);
		if (jr < 0)
			goto out;
	}
	if (loop(&r, 0, p->ntasks) < 0)
		goto out;
	for (size_t i = 0; i < p->ntasks; i++)
		if (r.tr[i].state != T_DONE)
			finish(&r, &r.tr[i], PL_OUT_SKIPPED, "interrupted");
	r.status = r.interrupted ? "Interrupted" : r.failures ? "Failed" : "Succeeded";
	if (p->on_exit) {
		r.tr[p->ntasks].t = p->on_exit;
		r.interrupted = 0;	/* on_exit runs all the same */
		if (loop(&r, p->ntasks, p->ntasks + 1) < 0)
			goto out;
	}
	if (journal(&r, "run_finished", NULL, "\"status\":\"%s\",\"failures\":%d", r.status,
		    r.failures) < 0)
		goto out;
	progress(&r, "run %s: %s", o->id, r.status);
	rc = r.signo ? 128 + r.signo : r.failures ? 1 : 0;
out:
	if (r.tr) {
		EACH_JOB(&r, j, if (j->state == T_RUN) kill(-j->pid, SIGKILL););
		for (size_t i = 0; i < r.n; i++) {
			struct trun *u = &r.tr[i];
			free(u->job.cmd);
			pl_buf_free(&u->job.env);
			for (size_t k = 0; k < u->nkids; k++) {
				free(u->kids[k]->cmd);
				free(u->kids[k]->items);
				pl_buf_free(&u->kids[k]->env);
				free(u->kids[k]);
			}
			free(u->kids);
			for (size_t k = 0; k < u->nitems; k++)
				free(u->items[k]);
			free(u->items);
			pl_buf_free(&u->partial);
			for (size_t j = 0; u->outv && j < u->t->noutputs; j++)
				free(u->outv[j]);
			free(u->outv);
			for (size_t j = 0; j < u->ndeps; j++)
				free(u->deps[j]);
			free(u->deps);
		}
		free(r.tr);
	}
	for (size_t i = 0; i < r.ndone; i++)
		free(r.done[i]);
	free(r.done);
	close(r.jfd);
	return rc;
}
