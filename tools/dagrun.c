/* dagrun: pipeline files (docs/dagrun.1, docs/pipeline-format.7): lint,
 * graph, and runs through the scheduler (lib/runner.c) with the local
 * executor; the run directory's readers (status, logs, list) and a progress
 * display. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "exec_k8s.h"
#include "fs.h"
#include "pipeline.h"
#include "runner.h"
#include "step.h"
#include "tmpl.h"

static const char usage[] =
	"dagrun [run] FILE [-I dir] [-p name=value]... [--run-id ID] [--runs-dir DIR]\n"
	"       [--events FILE] [--cache-dir DIR] [--store redis://...] [--store-ttl S]\n"
	"dagrun lint FILE [-I dir] [-p name=value]...\n"
	"dagrun graph FILE [--format dot|mermaid] [-I dir] [-p name=value]...\n"
	"dagrun status [RUN] | logs RUN TASK[/N] | list | stop RUN | resume RUN [--runs-dir DIR]\n"
	"dagrun step --store SPEC --run ID --task T [--child N] [--attempt A]\n"
	"       [--input KEY[@OFF+LEN]]... -- COMMAND";

static const char help[] =
	"\nRun a pipeline file's tasks as local processes, check it, or draw it.\n\n"
	"  -I, --include DIR       look for 'uses:' files in DIR too (PLUMB_PIPELINES)\n"
	"  -p, --param NAME=VALUE  set a param\n"
	"  -f, --format F          graph as dot (default) or mermaid (PLUMB_GRAPH_FORMAT)\n"
	"      --runs-dir DIR      keep runs in DIR/RUN-ID (PLUMB_RUNS_DIR; .plumb/runs)\n"
	"      --run-id ID         name the run ID (default: time and process id)\n"
	"      --events FILE       also write the journal's events to FILE, - for stdout\n"
	"                          (PLUMB_EVENTS)\n"
	"      --cache-dir DIR     outputs of tasks with cache: true (PLUMB_CACHE_DIR;\n"
	"                          .plumb/cache)\n"
	"      --executor E        local (default) or k8s: each attempt a Pod (PLUMB_EXECUTOR);\n"
	"                          --image, --namespace, --context, --pod-gc, --qps, --burst,\n"
	"                          --pending-timeout, --watch-fail-timeout: see dagrun(1)\n"
	"      --store URL         outputs through Redis, each attempt under 'dagrun step'\n"
	"                          (PLUMB_STORE); --store-ttl S: their life (PLUMB_STORE_TTL)\n"
	"      --quiet             no progress lines from run, no ok from lint\n"
	"  -v, --verbose           say more on stderr\n"
	"  -h, --help              this text\n"
	"      --version           the version\n";

enum edge_kind { E_NEEDS, E_EACH, E_DEPENDS, E_EXIT };

struct edge {
	size_t from, to;
	enum edge_kind kind;
};

struct edges {
	struct edge *v;
	size_t n;
	const struct pl_pipeline *p;
	size_t self;
};

static void add(struct edges *e, size_t from, size_t to, enum edge_kind kind)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->v[i].from == from && e->v[i].to == to)
			return;
	e->v = pl_xrealloc(e->v, (e->n + 1) * sizeof *e->v);
	e->v[e->n++] = (struct edge){ from, to, kind };
}

static int on_dep(void *ctx, const char *task, size_t n, size_t col, struct pl_texpr_err *err)
{
	struct edges *e = ctx;
	char *name = pl_xstrndup(task, n);
	const struct pl_task *t = pl_pipeline_task(e->p, name);

	if (t)
		add(e, t - e->p->tasks, e->self, E_DEPENDS);
	free(name);
	return PL_OUT_SUCCEEDED;
}

/* every dependency, from upstream to downstream; on_exit is index ntasks */
static void collect(const struct pl_pipeline *p, struct edges *e)
{
	struct pl_texpr_err err;
	int r;

	e->p = p;
	for (size_t i = 0; i < p->ntasks; i++) {
		const struct pl_task *t = &p->tasks[i], *u;
		e->self = i;
		if (t->each.kind == PL_EACH_TASK && (u = pl_pipeline_task(p, t->each.task)))
			add(e, u - p->tasks, i, E_EACH);
		for (size_t j = 0; j < t->nneeds; j++)
			if ((u = pl_pipeline_task(p, t->needs[j])))
				add(e, u - p->tasks, i, E_NEEDS);
		if (t->depends)
			pl_depends_eval(t->depends, on_dep, e, &r, &err);
	}
	if (!p->on_exit)
		return;
	for (size_t i = 0; i < p->ntasks; i++) {
		size_t j;
		for (j = 0; j < e->n; j++)
			if (e->v[j].from == i)
				break;
		if (j == e->n)
			add(e, i, p->ntasks, E_EXIT);
	}
}

static const char *fanout(const struct pl_task *t)
{
	static char buf[200];

	switch (t->each.kind) {
	case PL_EACH_TASK:
		snprintf(buf, sizeof buf, "each line of %s", t->each.task);
		return buf;
	case PL_EACH_LIST:
		snprintf(buf, sizeof buf, "each of %zu items", t->each.nitems);
		return buf;
	case PL_EACH_TMPL:
		return "each of a JSON array";
	case PL_EACH_RANGE:
		snprintf(buf, sizeof buf, "each of %ld..%ld", t->each.from, t->each.to);
		return buf;
	default:
		return NULL;
	}
}

/* a DOT or Mermaid quoted string: no quotes or backslashes inside */
static void put_label(const char *s)
{
	for (; *s; s++)
		putchar(*s == '"' || *s == '\\' ? '\'' : *s);
}

static void graph_dot(const struct pl_pipeline *p, const struct edges *e)
{
	static const char *const style[] = { "", " [style=bold, label=\"each\"]",
		" [style=dashed]", " [style=dotted]" };

	printf("digraph \"");
	put_label(p->name ? p->name : "pipeline");
	printf("\" {\n\trankdir=LR;\n\tnode [shape=box];\n");
	for (size_t i = 0; i < p->ntasks; i++) {
		const char *f = fanout(&p->tasks[i]);
		printf("\t\"%s\"", p->tasks[i].name);
		if (f) {
			printf(" [shape=box3d, label=\"%s\\n(", p->tasks[i].name);
			put_label(f);
			printf(")\"]");
		}
		printf(";\n");
	}
	if (p->on_exit)
		printf("\t\"on_exit\" [shape=octagon];\n");
	for (size_t i = 0; i < e->n; i++)
		printf("\t\"%s\" -> \"%s\"%s;\n", p->tasks[e->v[i].from].name,
		       e->v[i].to == p->ntasks ? "on_exit" : p->tasks[e->v[i].to].name,
		       style[e->v[i].kind]);
	printf("}\n");
}

static void graph_mermaid(const struct pl_pipeline *p, const struct edges *e)
{
	static const char *const arrow[] = { "-->", "==>|each|", "-.->", "-.-" };

	printf("flowchart LR\n");
	for (size_t i = 0; i < p->ntasks; i++) {
		const char *f = fanout(&p->tasks[i]);
		if (f) {
			printf("    t%zu[[\"%s (", i, p->tasks[i].name);
			put_label(f);
			printf(")\"]]\n");
		} else {
			printf("    t%zu[\"%s\"]\n", i, p->tasks[i].name);
		}
	}
	if (p->on_exit)
		printf("    t%zu{{\"on_exit\"}}\n", p->ntasks);
	for (size_t i = 0; i < e->n; i++)
		printf("    t%zu %s t%zu\n", e->v[i].from, arrow[e->v[i].kind], e->v[i].to);
}

/* Load and check file, or print its errors and exit 2. */
static struct pl_pipeline *load(const char *file, const char *const *search, size_t nsearch,
				const char *const *params, size_t nparams)
{
	struct pl_load_opts o = { search, nsearch, params, nparams };
	struct pl_perrs errs = { 0 };
	struct pl_pipeline *p;

	if (pl_pipeline_load(file, &o, &p, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++) {
			if (errs.v[i].line > 0)
				fprintf(stderr, "%s:%d:%d: %s\n", errs.v[i].file, errs.v[i].line,
					errs.v[i].col, errs.v[i].msg);
			else
				fprintf(stderr, "%s: %s\n", errs.v[i].file, errs.v[i].msg);
		}
		if (pl_verbose)
			pl_info("%zu error%s", errs.n, errs.n == 1 ? "" : "s");
		pl_perrs_free(&errs);
		exit(PL_EX_USAGE);
	}
	return p;
}

/* Progress on stderr: on a terminal, a table of the tasks redrawn in place
 * with the lines that matter above it; else plain lines. */
struct display {
	int tty;
	int drawn;		/* lines of the table on the screen */
};

static void undraw(struct display *d)
{
	if (d->drawn)
		fprintf(stderr, "\r\033[%dA\033[J", d->drawn);
	d->drawn = 0;
}

static void progress_line(void *ctx, int detail, const char *line)
{
	struct display *d = ctx;

	if (pl_quiet || (d->tty && detail))
		return;
	undraw(d);
	fprintf(stderr, "dagrun: %s\n", line);
}

static void fmt_secs(char *buf, size_t n, double s)
{
	if (s < 60)
		snprintf(buf, n, "%.1fs", s);
	else if (s < 3600)
		snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
	else
		snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s / 60 % 60);
}

static void progress_table(void *ctx, const struct pl_run_view *v)
{
	struct display *d = ctx;
	char el[32], total[32];
	int w = 4;

	if (pl_quiet || !d->tty)
		return;
	for (size_t i = 0; i < v->n; i++)
		if ((int)strlen(v->t[i].name) > w)
			w = strlen(v->t[i].name);
	undraw(d);
	for (size_t i = 0; i < v->n; i++) {
		const struct pl_task_view *t = &v->t[i];
		fmt_secs(el, sizeof el, t->elapsed);
		if (t->total < 0)
			snprintf(total, sizeof total, "?");
		else
			snprintf(total, sizeof total, "%ld", t->total);
		fprintf(stderr, "  %-*s %-9s", w, t->name, t->state);
		if (t->fanout) {
			fprintf(stderr, " %ld/%s done, %ld running, %ld failed", t->done, total,
				t->running, t->failed);
			if (t->elapsed > 0 && t->done)
				fprintf(stderr, ", %.1f/s", t->done / t->elapsed);
		}
		if (t->elapsed > 0)
			fprintf(stderr, "  %s", el);
		fputs("\033[K\n", stderr);
	}
	fmt_secs(el, sizeof el, v->elapsed);
	fprintf(stderr, "  elapsed %s\033[K\n", el);
	d->drawn = v->n + 1;
	if (v->final)
		d->drawn = 0;	/* the last table stays */
	fflush(stderr);
}

struct how {
	const char *file;
	const char *const *search, *const *params;
	size_t nsearch, nparams;
};

static json_t *strings(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* Run p in dir, a new run or (resume) one to finish; returns the exit status. */
static const char *events_path, *cache_dir, *store;
static long store_ttl;
/* --executor k8s */
static const char *executor = "local", *image, *kcontext, *knamespace, *pod_gc;
static double kqps, pending_timeout, watch_fail_timeout;
static const char *pull_secrets[17];
static size_t npull;
static long kburst;

static int run(const struct pl_pipeline *p, const char *dir, const char *id,
	       const struct how *h, int resume)
{
	char err[4096 + 200], failed[4096], path[4200], cwd[4096];
	struct display d = { isatty(2) && !getenv("PLUMB_NO_TABLE"), 0 };
	struct pl_run_opts o = { .dir = dir, .id = id, .kill_grace = 3, .progress = progress_line,
				 .tick = d.tty ? progress_table : NULL, .ctx = &d,
				 .resume = resume, .events_fd = -1, .cache_dir = cache_dir,
				 .store = store, .store_ttl = store_ttl };
	static char self[4096];
	ssize_t sn = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sn > 0) {
		self[sn] = '\0';
		o.self = self;
	}
	sigset_t set;
	int rc;

	if (events_path && strcmp(events_path, "-") == 0) {
		o.events_fd = 1;
	} else if (events_path &&
		   (o.events_fd = open(events_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
				       0644)) < 0) {
		pl_die(PL_EX_USAGE, "cannot open '%s':", events_path);
	}
	if (getenv("PLUMB_JOURNAL_SYNC"))
		o.sync_every = atof(getenv("PLUMB_JOURNAL_SYNC"));
	if (getenv("PLUMB_FANOUT_PARALLELISM"))
		o.fanout_parallelism = atol(getenv("PLUMB_FANOUT_PARALLELISM"));
	if (getenv("PLUMB_KILL_GRACE"))
		o.kill_grace = atof(getenv("PLUMB_KILL_GRACE"));
	if (pl_mkdir_p(dir, failed, sizeof failed) < 0)
		pl_die(PL_EX_SOFTWARE, "cannot create '%s':", failed);
	if (!resume) {
		/* how to load the pipeline again for resume */
		json_t *j = json_object();
		if (!getcwd(cwd, sizeof cwd))
			pl_die(PL_EX_SOFTWARE, "getcwd:");
		json_object_set_new(j, "file", json_string(h->file));
		json_object_set_new(j, "cwd", json_string(cwd));
		json_object_set_new(j, "params", strings(h->params, h->nparams));
		json_object_set_new(j, "search", strings(h->search, h->nsearch));
		if (store)
			json_object_set_new(j, "store", json_string(store));
		if (store_ttl)
			json_object_set_new(j, "store_ttl", json_integer(store_ttl));
		json_object_set_new(j, "executor", json_string(executor));
		if (image)
			json_object_set_new(j, "image", json_string(image));
		if (knamespace)
			json_object_set_new(j, "namespace", json_string(knamespace));
		if (kcontext)
			json_object_set_new(j, "context", json_string(kcontext));
		snprintf(path, sizeof path, "%s/run.json", dir);
		if (json_dump_file(j, path, JSON_COMPACT) < 0)
			pl_die(PL_EX_SOFTWARE, "cannot write '%s'", path);
		json_decref(j);
	}
	/* the runner waits for these with sigtimedwait */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);	/* a reader that goes away is an error, not a death */
	struct pl_executor *x = NULL;
	if (strcmp(executor, "k8s") == 0) {
		struct pl_exec_k8s_opts ko;
		pl_exec_k8s_opts_default(&ko);
		ko.load.context = kcontext;
		ko.load.namespace = knamespace;
		ko.run_id = id;
		ko.image = image;
		ko.store = store;
		ko.store_ttl = store_ttl;
		ko.run_dir = dir;
		ko.pull_secrets = npull ? pull_secrets : NULL;
		if (kqps)
			ko.qps = kqps;
		if (kburst)
			ko.burst = kburst;
		if (pending_timeout)
			ko.pending_timeout = pending_timeout;
		if (watch_fail_timeout)
			ko.watch_fail_timeout = watch_fail_timeout;
		if (pod_gc && pl_pod_gc_parse(pod_gc, &ko.gc) < 0)
			pl_usage_error("--pod-gc '%s': want on-success, on-completion or never", pod_gc);
		if (!(x = pl_exec_k8s_new(&ko, err, sizeof err)))
			pl_die(PL_EX_USAGE, "k8s: %s", err);
		o.executor = x;
	}
	rc = pl_run(p, &o, err, sizeof err);
	if (x)
		x->free(x);
	if (rc < 0)
		pl_die(PL_EX_SOFTWARE, "run '%s': %s", id, err);
	if (o.events_fd > 1)
		close(o.events_fd);
	return rc;
}

static const char *new_run_dir(const char *runs, const char *id, char *dir, size_t n)
{
	static char idbuf[64];
	struct stat st;

	if (!id) {
		time_t t = time(NULL);
		struct tm tm;
		gmtime_r(&t, &tm);
		snprintf(idbuf, sizeof idbuf, "%04d%02d%02dT%02d%02d%02d-%ld", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (long)getpid());
		id = idbuf;
	}
	if (!*id || strchr(id, '/') || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		pl_die(PL_EX_USAGE, "bad run id '%s'", id);
	if ((size_t)snprintf(dir, n, "%s/%s", runs, id) >= n)
		pl_die(PL_EX_USAGE, "run directory name too long");
	if (stat(dir, &st) == 0)
		pl_die(PL_EX_USAGE, "run '%s' exists in '%s'", id, runs);
	return id;
}

/* --- reading runs ---------------------------------------------------------- */

struct tstat {
	char *name, *status;
	long exit, attempt, children, succeeded;
};

struct rstat {
	char *id, *status, *pipeline;
	long pid, failures;
	struct tstat *t;
	size_t nt;
};

static int alive(long pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static void str_set(char **dst, const char *s)
{
	free(*dst);
	*dst = pl_xstrdup(s ? s : "");
}

/* The state of run dir from its journal; 0, or -1 if it has none. */
static int read_run(const char *dir, const char *id, struct rstat *rs)
{
	char path[4200], *line = NULL;
	size_t cap = 0;
	FILE *f;

	memset(rs, 0, sizeof *rs);
	snprintf(path, sizeof path, "%s/journal.jsonl", dir);
	if (!(f = fopen(path, "r")))
		return -1;
	rs->id = pl_xstrdup(id);
	rs->status = pl_xstrdup("Running");
	rs->pipeline = pl_xstrdup("");
	while (getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, NULL);
		const char *ev = json_string_value(json_object_get(j, "event"));
		const char *task = json_string_value(json_object_get(j, "task"));
		const char *st = json_string_value(json_object_get(j, "status"));
		struct tstat *t = NULL;
		if (!ev)
			goto next;
		if (strcmp(ev, "run_started") == 0 || strcmp(ev, "run_resumed") == 0) {
			str_set(&rs->status, "Running");
			rs->pid = json_integer_value(json_object_get(j, "pid"));
			if (json_object_get(j, "pipeline"))
				str_set(&rs->pipeline, json_string_value(json_object_get(j, "pipeline")));
		} else if (strcmp(ev, "run_finished") == 0) {
			str_set(&rs->status, st);
			rs->failures = json_integer_value(json_object_get(j, "failures"));
		}
		if (!task)
			goto next;
		for (size_t i = 0; i < rs->nt; i++)
			if (strcmp(rs->t[i].name, task) == 0)
				t = &rs->t[i];
		if (!t) {
			rs->t = pl_xrealloc(rs->t, (rs->nt + 1) * sizeof *rs->t);
			t = &rs->t[rs->nt++];
			memset(t, 0, sizeof *t);
			t->name = pl_xstrdup(task);
			t->status = pl_xstrdup("Running");
			t->exit = -1;
		}
		if (json_object_get(j, "child")) {
			if (strcmp(ev, "task_finished") == 0 && !json_object_get(j, "retry"))
				t->succeeded += st && strcmp(st, "Succeeded") == 0;
			if (strcmp(ev, "task_started") == 0 &&
			    json_integer_value(json_object_get(j, "child")) + 1 > t->children)
				t->children = json_integer_value(json_object_get(j, "child")) + 1;
			goto next;
		}
		if (strcmp(ev, "task_started") == 0) {
			str_set(&t->status, "Running");
			if (json_object_get(j, "attempt"))
				t->attempt = json_integer_value(json_object_get(j, "attempt"));
		} else if (strcmp(ev, "task_finished") == 0) {
			str_set(&t->status, json_object_get(j, "retry") ? "Retrying" : st);
			if (json_object_get(j, "exit"))
				t->exit = json_integer_value(json_object_get(j, "exit"));
		}
next:
		json_decref(j);
	}
	free(line);
	fclose(f);
	if (strcmp(rs->status, "Running") == 0 && !alive(rs->pid))
		str_set(&rs->status, "Stopped");
	return 0;
}

static void free_run(struct rstat *rs)
{
	for (size_t i = 0; i < rs->nt; i++) {
		free(rs->t[i].name);
		free(rs->t[i].status);
	}
	free(rs->t);
	free(rs->id);
	free(rs->status);
	free(rs->pipeline);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The runs in runs, sorted by name (their default ids sort by time). */
static char **run_ids(const char *runs, size_t *n)
{
	DIR *d = opendir(runs);
	struct dirent *e;
	char **v = NULL;

	*n = 0;
	if (!d)
		return NULL;
	while ((e = readdir(d))) {
		char path[4200];
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s/journal.jsonl", runs, e->d_name);
		if (stat(path, &st) < 0)
			continue;
		v = pl_xrealloc(v, (*n + 1) * sizeof *v);
		v[(*n)++] = pl_xstrdup(e->d_name);
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof *v, by_name);
	return v;
}

static const char *run_dir(const char *runs, const char *id, char *dir, size_t n)
{
	struct stat st;

	if (!*id || strchr(id, '/') || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		pl_die(PL_EX_USAGE, "bad run id '%s'", id);
	snprintf(dir, n, "%s/%s", runs, id);
	snprintf(dir + strlen(dir), n - strlen(dir), "/journal.jsonl");
	if (stat(dir, &st) < 0)
		pl_die(PL_EX_USAGE, "no run '%s' in '%s'", id, runs);
	snprintf(dir, n, "%s/%s", runs, id);
	return dir;
}

static int cmd_list(const char *runs)
{
	size_t n;
	char **ids = run_ids(runs, &n), dir[4200];

	for (size_t i = 0; i < n; i++) {
		struct rstat rs;
		snprintf(dir, sizeof dir, "%s/%s", runs, ids[i]);
		if (read_run(dir, ids[i], &rs) == 0) {
			printf("%s\t%s\t%s\n", rs.id, rs.status, rs.pipeline);
			free_run(&rs);
		}
		free(ids[i]);
	}
	free(ids);
	return 0;
}

static int cmd_status(const char *runs, const char *id)
{
	char dir[4200];
	struct rstat rs;
	size_t n;
	char **ids = NULL;

	if (!id) {
		ids = run_ids(runs, &n);
		if (!n)
			pl_die(PL_EX_USAGE, "no runs in '%s'", runs);
		id = ids[n - 1];
	}
	run_dir(runs, id, dir, sizeof dir);
	read_run(dir, id, &rs);
	printf("run %s %s", rs.id, rs.status);
	if (strcmp(rs.status, "Running") != 0 && strcmp(rs.status, "Stopped") != 0)
		printf(" failures %ld", rs.failures);
	printf("\n");
	for (size_t i = 0; i < rs.nt; i++) {
		const struct tstat *t = &rs.t[i];
		printf("%s %s", t->name, t->status);
		if (t->children)
			printf(" children %ld/%ld", t->succeeded, t->children);
		else if (t->exit >= 0)
			printf(" exit %ld attempts %ld", t->exit, t->attempt);
		printf("\n");
	}
	free_run(&rs);
	for (size_t i = 0; ids && i < n; i++)
		free(ids[i]);
	free(ids);
	return 0;
}

static int cmd_logs(const char *runs, const char *id, const char *task)
{
	char dir[4200], path[8600], buf[65536];
	const char *slash = strchr(task, '/');
	size_t k;
	FILE *f;

	run_dir(runs, id, dir, sizeof dir);
	if (!*task || task[0] == '.' || (slash && strchr(slash + 1, '/')))
		pl_die(PL_EX_USAGE, "bad task '%s'", task);
	snprintf(path, sizeof path, "%s/tasks/%s.log", dir, task);
	if (!(f = fopen(path, "r")))
		pl_die(PL_EX_USAGE, "no log of '%s' in run '%s'", task, id);
	while ((k = fread(buf, 1, sizeof buf, f)) > 0)
		fwrite(buf, 1, k, stdout);
	fclose(f);
	return 0;
}

static int cmd_stop(const char *runs, const char *id)
{
	char dir[4200];
	struct rstat rs;

	run_dir(runs, id, dir, sizeof dir);
	read_run(dir, id, &rs);
	if (strcmp(rs.status, "Running") != 0) {
		pl_warn("run '%s' is not running (%s)", id, rs.status);
		free_run(&rs);
		return PL_EX_CHECK;
	}
	if (kill(rs.pid, SIGTERM) < 0)
		pl_die(PL_EX_SOFTWARE, "cannot signal process %ld:", rs.pid);
	free_run(&rs);
	return 0;
}

static const char **json_strings(json_t *a, size_t *n)
{
	const char **v = pl_xmalloc((json_array_size(a) + 1) * sizeof *v);
	*n = json_array_size(a);
	for (size_t i = 0; i < *n; i++)
		v[i] = json_string_value(json_array_get(a, i));
	return v;
}

static int cmd_resume(const char *runs, const char *id)
{
	char dir[4200], abs[PATH_MAX], path[8600];
	struct rstat rs;
	struct how h = { 0 };
	json_t *j;
	int rc;

	run_dir(runs, id, dir, sizeof dir);
	read_run(dir, id, &rs);
	if (strcmp(rs.status, "Running") == 0)
		pl_die(PL_EX_USAGE, "run '%s' is still running (process %ld)", id, rs.pid);
	free_run(&rs);
	snprintf(path, sizeof path, "%s/run.json", dir);
	if (!(j = json_load_file(path, 0, NULL)) || !realpath(dir, abs))
		pl_die(PL_EX_USAGE, "cannot read '%s'", path);
	if (chdir(json_string_value(json_object_get(j, "cwd"))) < 0)
		pl_die(PL_EX_USAGE, "cannot go back to '%s':",
		       json_string_value(json_object_get(j, "cwd")));
	h.file = json_string_value(json_object_get(j, "file"));
	h.search = json_strings(json_object_get(j, "search"), &h.nsearch);
	h.params = json_strings(json_object_get(j, "params"), &h.nparams);
	if (json_string_value(json_object_get(j, "store")) && !store)
		store = json_string_value(json_object_get(j, "store"));
	if (json_integer_value(json_object_get(j, "store_ttl")) && !store_ttl)
		store_ttl = json_integer_value(json_object_get(j, "store_ttl"));
	/* the same executor, where the run's Pods are */
	if (json_string_value(json_object_get(j, "executor")))
		executor = json_string_value(json_object_get(j, "executor"));
	if (json_string_value(json_object_get(j, "image")) && !image)
		image = json_string_value(json_object_get(j, "image"));
	if (json_string_value(json_object_get(j, "namespace")) && !knamespace)
		knamespace = json_string_value(json_object_get(j, "namespace"));
	if (json_string_value(json_object_get(j, "context")) && !kcontext)
		kcontext = json_string_value(json_object_get(j, "context"));
	struct pl_pipeline *p = load(h.file, h.search, h.nsearch, h.params, h.nparams);
	rc = run(p, abs, id, &h, 1);
	pl_pipeline_free(p);
	free((void *)h.search);
	free((void *)h.params);
	json_decref(j);
	return rc;
}

static int str_in(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* "KEY" or "KEY@OFF+LEN": a byte range of an output */
static void parse_input(char *arg, struct pl_step_input *in)
{
	char *at = strrchr(arg, '@'), *end;

	in->key = arg;
	in->off = 0;
	in->len = -1;
	if (!at)
		return;
	*at = '\0';
	in->off = strtoll(at + 1, &end, 10);
	if (*end != '+' || in->off < 0)
		pl_usage_error("--input '%s@%s': want KEY@OFFSET+LENGTH", arg, at + 1);
	in->len = strtoll(end + 1, &end, 10);
	if (*end || in->len < 0)
		pl_usage_error("--input '%s@%s': want KEY@OFFSET+LENGTH", arg, at + 1);
}

/* dagrun step: one attempt with its input and output in the run's store
 * (lib/step.h): what each Pod of the Kubernetes executor runs. */
static int cmd_step(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "store", required_argument, NULL, 's' },
		{ "run", required_argument, NULL, 'r' },
		{ "task", required_argument, NULL, 't' },
		{ "child", required_argument, NULL, 'c' },
		{ "attempt", required_argument, NULL, 'a' },
		{ "input", required_argument, NULL, 'i' },
		/* the executor's spelling: --out T.out or T/N.out names the task
		 * and child; the log key follows from it; the run has its TTL */
		{ "in", required_argument, NULL, 'i' },
		{ "out", required_argument, NULL, 'o' },
		{ "log", required_argument, NULL, 'l' },
		{ "ttl", required_argument, NULL, 'x' },
		PL_COMMON_LONGOPTS,
		{ 0 }
	};
	struct pl_step o = { .child = -1, .attempt = 1, .log_fd = 2 };
	char *outtask = NULL;
	struct pl_step_input *in = pl_xmalloc((argc + 1) * sizeof *in);
	char err[1024] = "";
	const char *child = pl_env("PLUMB_CHILD", NULL);
	int c;

	o.store = pl_env("PLUMB_STORE", NULL);
	o.run = pl_env("PLUMB_RUN_ID", NULL);
	o.task = pl_env("PLUMB_TASK", NULL);
	if (child)
		o.child = pl_parse_long("PLUMB_CHILD", child, 0, 1L << 40);
	optind = 1;
	while ((c = getopt_long(argc, argv, "+vh", lo, NULL)) != -1) {
		switch (c) {
		case 's': o.store = optarg; break;
		case 'r': o.run = optarg; break;
		case 't': o.task = optarg; break;
		case 'c': o.child = pl_parse_long("--child", optarg, 0, 1L << 40); break;
		case 'a': o.attempt = (int)pl_parse_long("--attempt", optarg, 1, 1000000); break;
		case 'i': parse_input(optarg, &in[o.ninputs++]); break;
		case 'o': {
			char *dot = strrchr(optarg, '.'), *slash;
			if (!dot || strcmp(dot, ".out") != 0)
				pl_usage_error("--out '%s': want TASK.out or TASK/N.out", optarg);
			free(outtask);
			outtask = pl_xstrndup(optarg, dot - optarg);
			if ((slash = strchr(outtask, '/'))) {
				*slash = '\0';
				o.child = pl_parse_long("--out", slash + 1, 0, 1L << 40);
			}
			o.task = outtask;
			break;
		}
		case 'l':
		case 'x':
			break;
		default: pl_common_option(c, optarg);
		}
	}
	if (!o.store || !o.run || !o.task)
		pl_usage_error("step needs --store, --run and --task (or PLUMB_STORE, "
			       "PLUMB_RUN_ID, PLUMB_TASK)");
	/* the command: one string for /bin/sh -c, or "/bin/sh -c STRING" */
	if (argc - optind == 3 && strcmp(argv[optind + 1], "-c") == 0 &&
	    (strcmp(argv[optind], "/bin/sh") == 0 || strcmp(argv[optind], "sh") == 0))
		o.cmd = argv[optind + 2];
	else if (argc - optind == 1)
		o.cmd = argv[optind];
	else
		pl_usage_error("step takes one command (a string for /bin/sh -c)");
	o.inputs = in;
	int rc = pl_step_run(&o, err, sizeof err);
	if (*err && o.child >= 0)
		fprintf(stderr, "dagrun: step %s/%ld: %s\n", o.task, o.child, err);
	else if (*err)
		fprintf(stderr, "dagrun: step %s: %s\n", o.task, err);
	free(in);
	free(outtask);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "include", required_argument, NULL, 'I' },
		{ "param", required_argument, NULL, 'p' },
		{ "format", required_argument, NULL, 'f' },
		{ "runs-dir", required_argument, NULL, 'R' },
		{ "run-id", required_argument, NULL, 'U' },
		{ "events", required_argument, NULL, 'E' },
		{ "cache-dir", required_argument, NULL, 'C' },
		{ "store", required_argument, NULL, 'S' },
		{ "store-ttl", required_argument, NULL, 'T' },
		{ "executor", required_argument, NULL, 'X' },
		{ "image", required_argument, NULL, 0x3001 },
		{ "context", required_argument, NULL, 0x3002 },
		{ "namespace", required_argument, NULL, 0x3003 },
		{ "pod-gc", required_argument, NULL, 0x3004 },
		{ "qps", required_argument, NULL, 0x3005 },
		{ "burst", required_argument, NULL, 0x3006 },
		{ "pending-timeout", required_argument, NULL, 0x3007 },
		{ "image-pull-secret", required_argument, NULL, 0x3008 },
		{ "watch-fail-timeout", required_argument, NULL, 0x3009 },
		PL_COMMON_LONGOPTS,
		{ 0 }
	};
	static const char *const runcmds[] = { "status", "logs", "list", "stop", "resume", NULL };
	/* static: still reachable when a usage error exits */
	static const char **search, **params;
	const char *format, *cmd, *file, *env, *runs, *run_id = NULL;
	size_t nsearch = 0, nparams = 0;
	struct pl_pipeline *p = NULL;
	char *envcopy = NULL;
	int c;

	pl_init("dagrun", usage, help);
	if (argc > 1 && strcmp(argv[1], "step") == 0)
		exit(cmd_step(argc - 1, argv + 1));
	format = pl_env("PLUMB_GRAPH_FORMAT", "dot");
	runs = pl_env("PLUMB_RUNS_DIR", ".plumb/runs");
	events_path = pl_env("PLUMB_EVENTS", NULL);
	cache_dir = pl_env("PLUMB_CACHE_DIR", NULL);
	store = pl_env("PLUMB_STORE", NULL);
	executor = pl_env("PLUMB_EXECUTOR", "local");
	image = pl_env("PLUMB_IMAGE", NULL);
	knamespace = pl_env("PLUMB_NAMESPACE", NULL);
	pod_gc = pl_env("PLUMB_POD_GC", NULL);
	store_ttl = pl_env_long("PLUMB_STORE_TTL", 0);
	if ((env = pl_env("PLUMB_WATCH_FAIL_TIMEOUT", NULL)) &&
	    !((watch_fail_timeout = atof(env)) > 0 && watch_fail_timeout < 1e9))
		pl_usage_error("PLUMB_WATCH_FAIL_TIMEOUT '%s': want seconds", env);
	search = pl_xmalloc(argc * sizeof *search + sizeof *search);
	params = pl_xmalloc(argc * sizeof *params + sizeof *params);
	while ((c = getopt_long(argc, argv, "I:p:f:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'I':
			search[nsearch++] = optarg;
			break;
		case 'p':
			if (!strchr(optarg, '='))
				pl_usage_error("-p '%s': want name=value", optarg);
			params[nparams++] = optarg;
			break;
		case 'f':
			format = optarg;
			break;
		case 'R':
			runs = optarg;
			break;
		case 'U':
			run_id = optarg;
			break;
		case 'E':
			events_path = optarg;
			break;
		case 'C':
			cache_dir = optarg;
			break;
		case 'S':
			store = optarg;
			break;
		case 'T':
			store_ttl = pl_parse_long("--store-ttl", optarg, 1, 1L << 40);
			break;
		case 'X':
			executor = optarg;
			break;
		case 0x3001:
			image = optarg;
			break;
		case 0x3002:
			kcontext = optarg;
			break;
		case 0x3003:
			knamespace = optarg;
			break;
		case 0x3004:
			pod_gc = optarg;
			break;
		case 0x3005:
			kqps = atof(optarg);
			if (kqps <= 0)
				pl_usage_error("--qps '%s': want a positive number", optarg);
			break;
		case 0x3006:
			kburst = pl_parse_long("--burst", optarg, 1, 100000);
			break;
		case 0x3008:
			if (npull == 16)
				pl_usage_error("--image-pull-secret: at most 16");
			pull_secrets[npull++] = optarg;
			break;
		case 0x3007:
			pending_timeout = atof(optarg);
			if (pending_timeout <= 0)
				pl_usage_error("--pending-timeout '%s': want seconds", optarg);
			break;
		case 0x3009:
			watch_fail_timeout = atof(optarg);
			if (!(watch_fail_timeout > 0 && watch_fail_timeout < 1e9))
				pl_usage_error("--watch-fail-timeout '%s': want seconds", optarg);
			break;
		default:
			pl_common_option(c, optarg);
		}
	}
	if (optind >= argc)
		pl_usage_error("a subcommand is needed");
	cmd = argv[optind];
	if (str_in(cmd, runcmds)) {
		int nargs = argc - optind - 1;
		char **args = argv + optind + 1;
		if (strcmp(cmd, "list") == 0 && nargs == 0)
			exit(cmd_list(runs));
		if (strcmp(cmd, "status") == 0 && nargs <= 1)
			exit(cmd_status(runs, nargs ? args[0] : NULL));
		if (strcmp(cmd, "logs") == 0 && nargs == 2)
			exit(cmd_logs(runs, args[0], args[1]));
		if (strcmp(cmd, "stop") == 0 && nargs == 1)
			exit(cmd_stop(runs, args[0]));
		if (strcmp(cmd, "resume") == 0 && nargs == 1)
			exit(cmd_resume(runs, args[0]));
		pl_usage_error("wrong arguments for '%s'", cmd);
	}
	if (strcmp(cmd, "lint") != 0 && strcmp(cmd, "graph") != 0 && strcmp(cmd, "run") != 0) {
		if (optind + 1 == argc && (strstr(cmd, ".yaml") || strstr(cmd, ".yml")))
			cmd = "run", optind--;
		else
			pl_usage_error("unknown subcommand '%s'", cmd);
	}
	if (optind + 2 != argc)
		pl_usage_error("'%s' takes one pipeline file", cmd);
	file = argv[optind + 1];
	if (strcmp(executor, "local") != 0 && strcmp(executor, "k8s") != 0)
		pl_usage_error("--executor '%s': want local or k8s", executor);
	if (strcmp(executor, "k8s") == 0 && !store)
		pl_usage_error("--executor k8s needs --store redis://... (Pods share no files)");
	if (store && strncmp(store, "redis://", 8) != 0)
		pl_usage_error("--store '%s': want redis://host[:port][/db]", store);
	if (strcmp(format, "dot") != 0 && strcmp(format, "mermaid") != 0)
		pl_usage_error("unknown --format '%s' (want dot or mermaid)", format);

	/* -I first, then PLUMB_PIPELINES, colon-separated */
	if ((env = pl_env("PLUMB_PIPELINES", NULL))) {
		envcopy = pl_xstrdup(env);
		size_t n = 1;
		for (const char *q = env; *q; q++)
			n += *q == ':';
		search = pl_xrealloc(search, (nsearch + n + 1) * sizeof *search);
		for (char *tok = strtok(envcopy, ":"); tok; tok = strtok(NULL, ":"))
			search[nsearch++] = tok;
	}
	p = load(file, search, nsearch, params, nparams);
	if (strcmp(cmd, "run") == 0) {
		char dir[4200];
		struct how h = { file, search, params, nsearch, nparams };
		run_id = new_run_dir(runs, run_id, dir, sizeof dir);
		int rc = run(p, dir, run_id, &h, 0);
		pl_pipeline_free(p);
		free(search);
		free(params);
		free(envcopy);
		exit(rc);
	} else if (strcmp(cmd, "lint") == 0) {
		if (!pl_quiet)
			fprintf(stderr, "%s: ok\n", file);
	} else {
		struct edges e = { 0 };
		collect(p, &e);
		if (strcmp(format, "dot") == 0)
			graph_dot(p, &e);
		else
			graph_mermaid(p, &e);
		free(e.v);
	}
	pl_pipeline_free(p);
	free(search);
	free(params);
	free(envcopy);
	if (fflush(stdout) != 0)
		pl_die(PL_EX_SOFTWARE, "write error on standard output:");
	pl_finish();
}
