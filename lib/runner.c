/* dagrun's scheduler. One poll loop: the executor's descriptors (child
 * exits), a signalfd for SIGINT and SIGTERM, and the pipes of streamed
 * inputs. The cost of an event is bounded by the number of tasks and of
 * attempts in flight, never by the number of children a fan-out has had: a
 * child that is done is 24 bytes and is not looked at again.
 *
 * Durability: every journal event is written at once (so it survives a kill
 * -9 of dagrun) and fsync'd in groups, at most sync_every seconds later (so a
 * power loss re-runs at most that much; see dagrun(1)). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fs.h"
#include "hash.h"
#include "json.h"
#include "runner.h"
#include "store.h"
#include "tmpl.h"

enum { S_WAIT, S_RUN, S_BACKOFF, S_DONE };

struct trun;

/* One fan-out child, for the whole run. */
struct kid {
	int64_t off;		/* each over a task: its lines' offset in that output;
				 * else the index of its first item */
	uint32_t len;		/* bytes of those lines, or its number of items */
	uint8_t state, out, attempt, cached;
	int32_t code;
};

/* An attempt in flight, or a task or child waiting to try again. */
struct job {
	struct trun *u;
	long kid;		/* -1: the task itself */
	int state;		/* S_RUN or S_BACKOFF */
	int attempt, timed_out, upstream_failed;
	long xid;		/* the executor's handle */
	double deadline, killat, next;
	int cache;		/* store the output under key when it succeeds */
	unsigned char key[32];
	struct feed *feed;	/* its streamed standard input, or NULL */
	int streaming;		/* started reading an upstream that still ran */
	int reread;		/* was run again once for a replaced input */
	size_t slot;		/* index in runner.jobs */
};

/* Standard input fed through a pipe from upstream outputs that are still
 * being written (a fan-in over a running fan-out), in order. */
struct feed {
	int fd;			/* the pipe's write end, non-blocking */
	struct trun **src;
	size_t nsrc, cur;
	int srcfd;
	off_t off;
	struct job *j;
	int blocked;		/* the pipe was full: wait for POLLOUT */
};

struct trun {
	const struct pl_task *t;
	int state;		/* S_WAIT, S_RUN, S_DONE */
	enum pl_outcome out;
	const char *why;	/* why it finished as it did, for the view */
	char **outv;		/* values of t->outputs */
	struct trun **deps;	/* tasks waited for */
	size_t ndeps;
	struct job *job;	/* a task without each: its attempt */
	double t_start, t_end;	/* when it started and ended (0: not yet) */
	int attempts;		/* a task without each: attempts started */
	int before;		/* resume: it succeeded in an earlier attempt at the run */
	uint8_t *kids_before;	/* resume: bit i for child i that succeeded before */
	size_t nkids_before;	/* bits */
	/* fan-out */
	struct kid *kids;
	size_t nkids, capkids, nextkid, ndone, nok, nfailed, running, frontier;
	char **items;		/* PL_EACH_LIST and PL_EACH_TMPL */
	size_t nitems, nextitem;
	long batch, par;
	int ended;		/* no more items will come */
	int outfd;		/* its output, assembled from its children's in item order */
	off_t outsize;
	/* PL_EACH_TASK: reading the upstream's output as it grows */
	struct trun *up;
	off_t offset, batchstart;
	long lines;		/* complete lines since batchstart */
	uint64_t up_attempt;	/* the upstream's attempt (store: generation) being read */
	struct pl_art_writer *aw;	/* store: its output, spliced from its children's */
	struct pl_sha256 seen;	/* [0, offset) */
	struct pl_sha256 given;	/* [0, batchstart): what children were given */
	struct pl_sha256 check;	/* a retried upstream's output, [0, checked) */
	off_t checked;
	int checking;
};

struct runner {
	const struct pl_pipeline *p;
	const struct pl_run_opts *o;
	struct pl_executor *x;
	struct trun *tr;	/* ntasks + 1: on_exit last */
	size_t n;
	int jfd, sfd, efd, interrupted, failures, signo, dirty;
	double last_sync, last_tick, t0, sync_every;
	const char *status;
	struct job **jobs;	/* in flight or backing off */
	size_t njobs, capjobs, running;
	struct feed **feeds;
	size_t nfeeds;
	const char *const *cur_items;	/* {{item}} of the child being expanded */
	const size_t *cur_lens;
	size_t cur_n;
	int cur_child;
	long fan_par;
	char *err;
	size_t errn;
	int fatal;
	struct pl_art *art;	/* --store, or NULL */
};

static const char *const outcome_name[] = { "Succeeded", "Failed", "Skipped", "Errored",
	"Pending" };

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress(struct runner *r, int detail, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void progress(struct runner *r, int detail, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!r->o->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	r->o->progress(r->o->ctx, detail, line);
}

static int fail(struct runner *r, const char *what, const char *path)
{
	snprintf(r->err, r->errn, "%s '%s': %s", what, path, strerror(errno));
	r->fatal = 1;
	return -1;
}


/* fsync the journal if an event waits for it and it is time (or force). */
static int sync_journal(struct runner *r, int force)
{
	double t;

	if (!r->dirty)
		return 0;
	t = now();
	if (!force && t - r->last_sync < r->sync_every)
		return 0;
	if (fdatasync(r->jfd) < 0) {
		snprintf(r->err, r->errn, "cannot write the journal: %s", strerror(errno));
		r->fatal = 1;
		return -1;
	}
	r->dirty = 0;
	r->last_sync = t;
	return 0;
}

/* One event: {"ts":...,"event":...,<rest>} and a newline. */
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
	if (pl_write_all(r->jfd, b.p, b.n) < 0) {
		snprintf(r->err, r->errn, "cannot write the journal: %s", strerror(errno));
		r->fatal = 1;
		rc = -1;
	}
	r->dirty = 1;
	/* a reader that went away must not stop the run */
	if (r->efd >= 0 && pl_write_all(r->efd, b.p, b.n) < 0)
		r->efd = -1;
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

static void job_name(const struct trun *u, long kid, char *buf, size_t n)
{
	if (kid < 0)
		snprintf(buf, n, "%s", u->t->name);
	else
		snprintf(buf, n, "%s/%ld", u->t->name, kid);
}

static void job_path(struct runner *r, const struct trun *u, long kid, const char *ext,
		     char *buf, size_t n)
{
	if (kid < 0)
		path_of(r, u->t->name, ext, buf, n);
	else
		snprintf(buf, n, "%s/tasks/%s/%ld.%s", r->o->dir, u->t->name, kid, ext);
}

static int is_exit(struct runner *r, const struct trun *u)
{
	return u == &r->tr[r->p->ntasks];
}

static int fanning(const struct trun *u)
{
	return u->t->each.kind != PL_EACH_NONE;
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
		pl_buf_adds(out, outcome_name[u->state == S_DONE ? u->out : PL_OUT_PENDING]);
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
		if (!r->cur_child) {
			snprintf(e->msg, sizeof e->msg, "'{{item}}' outside a task with 'each'");
			return -1;
		}
		for (size_t i = 0; i < r->cur_n; i++) {
			if (i)
				pl_buf_addc(out, '\n');
			if (!t.alen) {
				pl_buf_add(out, r->cur_items[i], r->cur_lens[i]);
				continue;
			}
			char *f = pl_xstrndup(t.a, t.alen);
			char *v = json_field(r->cur_items[i], r->cur_lens[i], f);
			pl_buf_adds(out, v);
			free(v);
			free(f);
		}
		return 0;
	}
	snprintf(e->msg, sizeof e->msg, "unknown reference '%.*s'", (int)n, ref);
	return -1;
}

/* Whether a template refers to task d's outputs or status. */
struct refscan {
	const char *task;
	int found;
};

static int scan_ref(void *ctx, const char *ref, size_t n, size_t col, struct pl_buf *out,
		    struct pl_texpr_err *e)
{
	struct refscan *s = ctx;
	struct pl_tref t;

	if (pl_tref_parse(ref, n, &t, e) == 0 &&
	    (t.kind == PL_TREF_OUTPUT || t.kind == PL_TREF_STATUS) &&
	    t.alen == strlen(s->task) && memcmp(t.a, s->task, t.alen) == 0)
		s->found = 1;
	return 0;
}

static int refers_to(const struct pl_task *t, const char *task)
{
	struct refscan s = { task, 0 };
	struct pl_buf b = PL_BUF_INIT;
	struct pl_texpr_err e;

	if (t->run)
		pl_tmpl_expand(t->run, scan_ref, &s, &b, &e);
	if (t->when)
		pl_tmpl_expand(t->when, scan_ref, &s, &b, &e);
	for (size_t i = 0; i < t->env.n; i++)
		pl_tmpl_expand(t->env.v[i].val, scan_ref, &s, &b, &e);
	pl_buf_free(&b);
	return s.found;
}

/* --- outputs --------------------------------------------------------------- */

/* A file's contents mapped read-only (or an empty string). */
struct map {
	const char *p;
	size_t n;
	void *m;
};

static void map_file(const char *path, struct map *mp)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	mp->p = "";
	mp->n = 0;
	mp->m = NULL;
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		void *m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m != MAP_FAILED) {
			mp->m = m;
			mp->p = m;
			mp->n = st.st_size;
		}
	}
	close(fd);
}

static void unmap_file(struct map *mp)
{
	if (mp->m)
		munmap(mp->m, mp->n);
}

/* The field of the last line of s[0..n) that is a JSON object. */
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

/* The named outputs, from the task's output file mapped (of any size: only
 * {lines: all} copies it). */
static void compute_outputs(struct runner *r, struct trun *u)
{
	char path[4096];
	struct map m;
	size_t body;
	const char *s;

	if (!u->t->noutputs)
		return;
	path_of(r, u->t->name, "out", path, sizeof path);
	map_file(path, &m);
	s = m.p;
	body = m.n > 0 && s[m.n - 1] == '\n' ? m.n - 1 : m.n;
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
			for (const char *q = s; (q = memchr(q, '\n', m.n - (q - s))); q++)
				lines++;
			if (m.n && s[m.n - 1] != '\n')
				lines++;
			u->outv[i] = pl_xmalloc(32);
			snprintf(u->outv[i], 32, "%zu", lines);
			break;
		}
	}
	unmap_file(&m);
}

/* --- the cache ------------------------------------------------------------- */

static const char *cache_dir(struct runner *r)
{
	return r->o->cache_dir ? r->o->cache_dir : ".plumb/cache";
}

static void cache_path(struct runner *r, const unsigned char key[32], char *buf, size_t n)
{
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	snprintf(buf, n, "%s/%.2s/%s", cache_dir(r), hex, hex);
}

static void hash_file(struct pl_sha256 *c, const char *path)
{
	struct map m;
	map_file(path, &m);
	pl_sha256_update(c, m.p, m.n);
	unmap_file(&m);
}

/* Copy the file from to the file to (created, truncated). */
static int copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	struct stat st;
	off_t left;

	if (in < 0)
		return -1;
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 ||
	    fstat(in, &st) < 0)
		goto out;
	for (left = st.st_size; left > 0;) {
		ssize_t k = copy_file_range(in, NULL, out, NULL, left, 0);
		if (k <= 0)
			goto out;
		left -= k;
	}
	rc = 0;
out:
	close(in);
	if (out >= 0 && close(out) < 0)
		rc = -1;
	return rc;
}

/* The cache key of an attempt: what it runs, its environment and its input. */
static void cache_key(const char *cmd, const char *const *env, const char *in, size_t inlen,
		      const char *const *in_paths, size_t nin, unsigned char key[32])
{
	struct pl_sha256 h, *c = &h;

	pl_sha256_init(c);
	pl_sha256_update(c, "plumb-dagrun-cache-v1", 22);
	pl_sha256_update(c, cmd, strlen(cmd) + 1);
	for (size_t i = 0; env && env[i]; i++)
		pl_sha256_update(c, env[i], strlen(env[i]) + 1);
	pl_sha256_update(c, "\0stdin", 6);
	pl_sha256_update(c, in, inlen);
	for (size_t i = 0; i < nin; i++)
		hash_file(c, in_paths[i]);
	pl_sha256_final(c, key);
}

/* Put out_path under key, atomically. Failure only loses the cache entry. */
static void cache_store(struct runner *r, const unsigned char key[32], const char *out_path)
{
	char path[4200], tmp[4300], dir[4200], failed[4200];

	cache_path(r, key, path, sizeof path);
	snprintf(dir, sizeof dir, "%s", path);
	*strrchr(dir, '/') = '\0';
	if (pl_mkdir_p(dir, failed, sizeof failed) < 0)
		return;
	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
	if (copy_file(out_path, tmp) < 0 || rename(tmp, path) < 0)
		unlink(tmp);
}

/* --- the artifact store ---------------------------------------------------- */

/* The store's key of a task's or child's output or log. */
static void art_key(const struct trun *u, long kid, const char *ext, char *buf, size_t n)
{
	if (kid < 0)
		snprintf(buf, n, "%s.%s", u->t->name, ext);
	else
		snprintf(buf, n, "%s/%ld.%s", u->t->name, kid, ext);
}

/* Copy the finished output key into the run directory's file path. */
static int art_mirror(struct runner *r, const char *key, const char *path)
{
	struct pl_art_info i;
	char buf[65536];
	int64_t off = 0;
	int fd, rc = -1;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return fail(r, "cannot create", path);
	if (pl_art_stat(r->art, key, &i) == PL_ART_OK) {
		while (off < i.size) {
			ssize_t k = pl_art_read(r->art, key, i.gen, off, buf, sizeof buf);
			if (k <= 0 || pl_write_all(fd, buf, k) < 0)
				goto out;
			off += k;
		}
	}
	rc = 0;
out:
	if (close(fd) < 0 || rc < 0) {
		snprintf(r->err, r->errn, "cannot copy '%s' from the store to '%s': %s", key, path,
			 pl_art_errstr(r->art));
		r->fatal = 1;
		return -1;
	}
	return 0;
}

/* Write data (or the file path) as a new finished generation of key. */
static int art_put(struct runner *r, const char *key, const char *data, size_t n,
		   const char *path)
{
	struct pl_art_writer *w = pl_art_writer(r->art, key, 1);
	struct map m = { 0 };
	int rc;

	if (!w)
		goto bad;
	if (path) {
		map_file(path, &m);
		data = m.p;
		n = m.n;
	}
	rc = n ? pl_art_append(w, data, n) : PL_ART_OK;
	unmap_file(&m);
	if (rc != PL_ART_OK) {
		pl_art_abandon(w);
		goto bad;
	}
	if (pl_art_finish(w, 0) == PL_ART_OK)
		return 0;
bad:
	snprintf(r->err, r->errn, "cannot write '%s' to the store: %s", key, pl_art_errstr(r->art));
	r->fatal = 1;
	return -1;
}

static void shell_quote(struct pl_buf *b, const char *s)
{
	pl_buf_addc(b, '\'');
	for (; *s; s++)
		if (*s == '\'')
			pl_buf_adds(b, "'\\''");
		else
			pl_buf_addc(b, *s);
	pl_buf_addc(b, '\'');
}

/* --- scheduling ------------------------------------------------------------ */

static int collect_dep(void *ctx, const char *task, size_t n, size_t col, struct pl_texpr_err *e)
{
	struct runner *r = ((void **)ctx)[0];
	struct trun *u = ((void **)ctx)[1], *d = find(r, task, n);

	if (!d)
		return PL_OUT_SUCCEEDED;
	for (size_t i = 0; i < u->ndeps; i++)
		if (u->deps[i] == d)
			return PL_OUT_SUCCEEDED;
	u->deps = pl_xrealloc(u->deps, (u->ndeps + 1) * sizeof *u->deps);
	u->deps[u->ndeps++] = d;
	return PL_OUT_SUCCEEDED;
}

static int outcome_of(void *ctx, const char *task, size_t n, size_t col, struct pl_texpr_err *e)
{
	struct trun *u = find(ctx, task, n);
	if (!u) {
		snprintf(e->msg, sizeof e->msg, "unknown task '%.*s'", (int)n, task);
		return -1;
	}
	return u->state == S_DONE ? (int)u->out : PL_OUT_PENDING;
}

/* The tasks whose output u reads on its standard input. */
static size_t stdin_sources(struct runner *r, const struct trun *u, struct trun **src)
{
	const struct pl_task *t = u->t;
	char **names = t->stdin_kind == PL_STDIN_LIST ? t->stdin_tasks : t->needs;
	size_t n = t->stdin_kind == PL_STDIN_LIST ? t->nstdin : t->nneeds, k = 0;

	if (t->stdin_kind == PL_STDIN_NONE || fanning(u))
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct trun *d = find(r, names[i], strlen(names[i]));
		if (d)
			src[k++] = d;
	}
	return k;
}

/* Whether u may read d's output while d still runs: d is a fan-out whose
 * output dagrun assembles in item order, and nothing about u needs d's end
 * (its outcome, its outputs, a cache key over its whole output). */
static int may_stream_from(struct runner *r, const struct trun *u, const struct trun *d)
{
	struct trun *src[64];
	size_t n;

	if (!fanning(d) || d->state != S_RUN || u->t->depends || u->t->cache == 1 ||
	    is_exit(r, u) || fanning(u) || u->t->nneeds > 64)
		return 0;
	n = stdin_sources(r, u, src);
	for (size_t i = 0; i < n; i++)
		if (src[i] == d)
			return !refers_to(u->t, d->t->name);
	return 0;
}

/* Whether u may start: every task it waits for is done, except the one a
 * fan-out streams over and the fan-outs it reads while they run. */
static int deps_done(struct runner *r, struct trun *u)
{
	for (size_t i = 0; i < u->ndeps; i++) {
		struct trun *d = u->deps[i];
		if (d->state == S_DONE)
			continue;
		if (u->t->each.kind == PL_EACH_TASK && d == u->up && d->state == S_RUN)
			continue;
		if (may_stream_from(r, u, d))
			continue;
		return 0;
	}
	return 1;
}

static void finish(struct runner *r, struct trun *u, enum pl_outcome out, const char *why)
{
	u->state = S_DONE;
	u->out = out;
	u->why = why;
	u->t_end = now();
	if ((out == PL_OUT_FAILED || out == PL_OUT_ERRORED) && !is_exit(r, u))
		r->failures++;
	if (out == PL_OUT_SUCCEEDED)
		compute_outputs(r, u);
	if (why) {
		journal(r, "task_finished", u->t->name, "\"status\":\"%s\",\"reason\":\"%s\"",
			outcome_name[out], why);
		progress(r, 0, "%s: %s (%s)", u->t->name, outcome_name[out], why);
	}
}

static void add_job(struct runner *r, struct job *j)
{
	if (r->njobs == r->capjobs) {
		r->capjobs = r->capjobs ? 2 * r->capjobs : 16;
		r->jobs = pl_xrealloc(r->jobs, r->capjobs * sizeof *r->jobs);
	}
	j->slot = r->njobs;
	r->jobs[r->njobs++] = j;
}

static void drop_job(struct runner *r, struct job *j)
{
	struct job *last = r->jobs[--r->njobs];
	r->jobs[j->slot] = last;
	last->slot = j->slot;
	if (j->u->job == j)
		j->u->job = NULL;
	free(j);
}

/* --- streamed standard input ---------------------------------------------- */

static void feed_close(struct runner *r, struct feed *f)
{
	for (size_t i = 0; i < r->nfeeds; i++)
		if (r->feeds[i] == f) {
			r->feeds[i] = r->feeds[--r->nfeeds];
			break;
		}
	if (f->fd >= 0)
		close(f->fd);
	if (f->srcfd >= 0)
		close(f->srcfd);
	if (f->j)
		f->j->feed = NULL;
	free(f->src);
	free(f);
}

/* Copy what the sources have that the reader has not had yet. */
static void feed_pump(struct runner *r, struct feed *f)
{
	char path[4096];

	f->blocked = 0;
	while (f->cur < f->nsrc) {
		struct trun *d = f->src[f->cur];
		int done = d->state == S_DONE;
		if (done && d->out != PL_OUT_SUCCEEDED) {
			/* its reader must not succeed on part of it */
			struct job *j = f->j;
			feed_close(r, f);
			if (j && j->state == S_RUN) {
				j->upstream_failed = 1;
				r->x->signal(r->x, j->xid, SIGTERM);
				j->killat = now() + r->o->kill_grace;
			}
			return;
		}
		off_t avail;
		struct stat st;
		if (f->srcfd < 0) {
			path_of(r, d->t->name, "out", path, sizeof path);
			f->srcfd = open(path, O_RDONLY | O_CLOEXEC);
			if (f->srcfd < 0) {
				if (!done)
					return;
				f->cur++;	/* no output at all: nothing to read */
				continue;
			}
		}
		avail = fanning(d) && !done ? d->outsize :
			fstat(f->srcfd, &st) == 0 ? st.st_size : 0;
		while (f->off < avail) {
			ssize_t k = sendfile(f->fd, f->srcfd, &f->off, avail - f->off);
			if (k < 0 && errno == EAGAIN) {
				f->blocked = 1;
				return;
			}
			if (k <= 0) {	/* the reader is gone (EPIPE): stop feeding it */
				feed_close(r, f);
				return;
			}
		}
		if (!done)
			return;
		close(f->srcfd);
		f->srcfd = -1;
		f->off = 0;
		f->cur++;
	}
	feed_close(r, f);	/* end of input */
}

/* --- starting attempts ----------------------------------------------------- */

/* The items of child k of u, for its input and {{item}}: pointers into buf
 * (filled here for lines of an upstream) or into u->items. */
static size_t kid_items(struct runner *r, struct trun *u, const struct kid *k, struct pl_buf *buf,
			const char ***items, size_t **lens)
{
	size_t n = 0;
	const struct pl_each *ea = &u->t->each;

	*items = NULL;
	*lens = NULL;
	if (ea->kind == PL_EACH_TASK) {
		char path[4096];
		int fd;
		path_of(r, u->up->t->name, "out", path, sizeof path);
		pl_buf_reserve(buf, k->len + 1);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
			ssize_t got = pread(fd, buf->p, k->len, k->off);
			buf->n = got > 0 ? (size_t)got : 0;
			close(fd);
		}
		size_t cap = 8;
		*items = pl_xmalloc(cap * sizeof **items);
		*lens = pl_xmalloc(cap * sizeof **lens);
		for (size_t b = 0; b < buf->n;) {
			const char *nl = memchr(buf->p + b, '\n', buf->n - b);
			size_t e = nl ? (size_t)(nl - buf->p) : buf->n;
			if (n == cap) {
				cap *= 2;
				*items = pl_xrealloc(*items, cap * sizeof **items);
				*lens = pl_xrealloc(*lens, cap * sizeof **lens);
			}
			(*items)[n] = buf->p + b;
			(*lens)[n++] = e - b;
			b = e + 1;
		}
		return n;
	}
	n = k->len;
	*items = pl_xmalloc((n + 1) * sizeof **items);
	*lens = pl_xmalloc((n + 1) * sizeof **lens);
	if (ea->kind == PL_EACH_RANGE) {
		pl_buf_reserve(buf, n * 24 + 1);	/* the numbers live in buf */
		for (size_t i = 0; i < n; i++) {
			long v = ea->from + (k->off + (long)i) * ea->step;
			(*items)[i] = buf->p + 24 * i;
			(*lens)[i] = snprintf(buf->p + 24 * i, 24, "%ld", v);
		}
		return n;
	}
	for (size_t i = 0; i < n; i++) {
		(*items)[i] = u->items[k->off + i];
		(*lens)[i] = strlen(u->items[k->off + i]);
	}
	return n;
}

/* Expand the command and environment of an attempt of u (child kid). */
static int expand(struct runner *r, struct trun *u, const char *name, struct pl_buf *cmd,
		  struct pl_buf *env)
{
	struct pl_texpr_err e = { 0 };

	if (pl_tmpl_expand(u->t->run ? u->t->run : "true", lookup, r, cmd, &e) < 0) {
		progress(r, 0, "%s: run: %s", name, e.msg);
		return -1;
	}
	for (size_t i = 0; i < u->t->env.n; i++) {
		pl_buf_adds(env, u->t->env.v[i].key);
		pl_buf_addc(env, '=');
		if (pl_tmpl_expand(u->t->env.v[i].val, lookup, r, env, &e) < 0) {
			progress(r, 0, "%s: env: %s", name, e.msg);
			return -1;
		}
		pl_buf_addc(env, '\0');
	}
	return 0;
}

/* Start (or retry) the attempt j. Returns 1 when it ran, 0 when it was
 * settled without running (a cache hit, a template error), -1 on a fatal
 * error. */
static int start(struct runner *r, struct job *j)
{
	struct trun *u = j->u;
	struct kid *k = j->kid >= 0 ? &u->kids[j->kid] : NULL;
	char name[300], out[4096], log[4096], in[4096], num[64];
	struct pl_buf cmd = PL_BUF_INIT, envb = PL_BUF_INIT, ib = PL_BUF_INIT, kin = PL_BUF_INIT;
	const char *envv[64 + 4];
	const char **items = NULL;
	size_t *lens = NULL, nitems = 0, nenv = 0;
	struct trun *src[64];
	const char *srcpaths[64];
	char srcbuf[64][4096];
	size_t nsrc = 0;
	int in_fd = -1, rc = -1, streamed = 0;
	char *inkeys[65];
	size_t ninkeys = 0;
	struct pl_buf shim = PL_BUF_INIT;

	job_name(u, j->kid, name, sizeof name);
	job_path(r, u, j->kid, "out", out, sizeof out);
	job_path(r, u, j->kid, "log", log, sizeof log);
	if (k) {
		nitems = kid_items(r, u, k, &ib, &items, &lens);
		r->cur_items = items;
		r->cur_lens = lens;
		r->cur_n = nitems;
		r->cur_child = 1;
	}
	int bad = expand(r, u, name, &cmd, &envb) < 0;
	r->cur_child = 0;
	if (bad) {
		rc = 0;
		if (k) {
			k->state = S_DONE;
			k->out = PL_OUT_ERRORED;
		} else {
			drop_job(r, j);
			finish(r, u, PL_OUT_ERRORED, "bad template");
		}
		goto settled;
	}
	for (size_t p = 0; p < envb.n && nenv < 64; p += strlen(envb.p + p) + 1)
		envv[nenv++] = envb.p + p;
	size_t nuser = nenv;	/* the task's own: what a cache key covers */
	char runid[600], task[400], child[64];
	snprintf(runid, sizeof runid, "PLUMB_RUN_ID=%s", r->o->id);
	snprintf(task, sizeof task, "PLUMB_TASK=%s", u->t->name);
	envv[nenv++] = runid;
	envv[nenv++] = task;
	if (k) {
		snprintf(child, sizeof child, "PLUMB_CHILD=%ld", j->kid);
		envv[nenv++] = child;
	}
	envv[nenv] = NULL;

	/* standard input: a child's items through a pipe that holds them all
	 * (no file to create: most of a short child's cost is the file system's),
	 * or a file when they are more than a pipe holds */
	if (k) {
		for (size_t i = 0; i < nitems; i++) {
			pl_buf_add(&kin, items[i], lens[i]);
			pl_buf_addc(&kin, '\n');
		}
		int pfd[2];
		if (r->art) {
			/* the store: lines of the upstream by range, else the items */
			char key[600];
			if (u->t->each.kind == PL_EACH_TASK) {
				snprintf(key, sizeof key, "%s.out@%lld+%u", u->up->t->name,
					 (long long)k->off, k->len);
			} else {
				art_key(u, j->kid, "in", key, sizeof key);
				if (art_put(r, key, kin.p, kin.n, NULL) < 0)
					goto out;
			}
			inkeys[ninkeys++] = pl_xstrdup(key);
		} else if (kin.n <= 65536 && pipe2(pfd, O_CLOEXEC) == 0) {
			if (fcntl(pfd[1], F_GETPIPE_SZ) >= (int)kin.n &&
			    pl_write_all(pfd[1], kin.p, kin.n) == 0) {
				in_fd = pfd[0];
			} else {
				close(pfd[0]);
			}
			close(pfd[1]);
		}
		if (in_fd < 0 && !r->art) {
			job_path(r, u, j->kid, "in", in, sizeof in);
			in_fd = open(in, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (in_fd < 0 || pl_write_all(in_fd, kin.p, kin.n) < 0) {
				fail(r, "cannot write", in);
				goto out;
			}
			lseek(in_fd, 0, SEEK_SET);
		}
	} else {
		size_t n = stdin_sources(r, u, src);
		for (size_t i = 0; i < n; i++) {
			path_of(r, src[i]->t->name, "out", srcbuf[i], sizeof srcbuf[i]);
			srcpaths[i] = srcbuf[i];
			streamed |= src[i]->state != S_DONE;
		}
		nsrc = n;
		j->streaming = streamed;
		if (r->art) {
			for (size_t i = 0; i < n; i++) {
				char key[600];
				art_key(src[i], -1, "out", key, sizeof key);
				inkeys[ninkeys++] = pl_xstrdup(key);
			}
		} else if (streamed || n > 1) {
			/* several outputs, or one still growing: through a pipe */
			int pfd[2];
			if (pipe2(pfd, O_CLOEXEC) < 0) {
				fail(r, "cannot make a pipe for", name);
				goto out;
			}
			fcntl(pfd[1], F_SETFL, O_NONBLOCK);
			struct feed *f = calloc(1, sizeof *f);
			f->fd = pfd[1];
			f->srcfd = -1;
			f->src = pl_xmalloc(n * sizeof *f->src);
			memcpy(f->src, src, n * sizeof *src);
			f->nsrc = n;
			f->j = j;
			j->feed = f;
			r->feeds = pl_xrealloc(r->feeds, (r->nfeeds + 1) * sizeof *r->feeds);
			r->feeds[r->nfeeds++] = f;
			in_fd = pfd[0];
		} else if (n == 1) {
			in_fd = open(srcpaths[0], O_RDONLY | O_CLOEXEC);
		}
	}

	/* the cache: the same command, environment and input succeeded before */
	if (u->t->cache == 1 && !streamed) {
		char cpath[4200];
		const char *saved = envv[nuser];
		envv[nuser] = NULL;
		cache_key(pl_buf_cstr(&cmd), envv, kin.p ? kin.p : "", kin.n, srcpaths, nsrc, j->key);
		envv[nuser] = saved;
		j->cache = 1;
		cache_path(r, j->key, cpath, sizeof cpath);
		char okey[600];
		art_key(u, j->kid, "out", okey, sizeof okey);
		if (access(cpath, R_OK) == 0 && copy_file(cpath, out) == 0 &&
		    (!r->art || art_put(r, okey, NULL, 0, out) == 0)) {
			if (in_fd >= 0)
				close(in_fd);
			in_fd = -1;
			j->attempt++;
			num[0] = '\0';
			if (k)
				snprintf(num, sizeof num, "\"child\":%ld,", j->kid);
			if (journal(r, "task_finished", u->t->name,
				    "%s\"status\":\"Succeeded\",\"exit\":0,\"attempt\":%d,\"cached\":true",
				    num, j->attempt) < 0)
				goto out;
			progress(r, k != NULL, "%s: Succeeded (cached)", name);
			rc = 0;
			if (k) {
				k->state = S_DONE;
				k->out = PL_OUT_SUCCEEDED;
				k->cached = 1;
				k->attempt = j->attempt;
			} else {
				drop_job(r, j);
				finish(r, u, PL_OUT_SUCCEEDED, NULL);
			}
			goto settled;
		}
	}

	j->attempt++;
	if (!k)
		u->attempts = j->attempt;
	char okey[600], lkey[600];
	art_key(u, j->kid, "out", okey, sizeof okey);
	art_key(u, j->kid, "log", lkey, sizeof lkey);
	inkeys[ninkeys] = NULL;
	struct pl_xspec s = { .task = u->t, .name = name, .child = j->kid, .attempt = j->attempt,
			      .cmd = pl_buf_cstr(&cmd), .env = envv, .in_fd = in_fd,
			      .out_path = out, .log_path = log, .token = j, .run_id = r->o->id,
			      .timeout = u->t->timeout };
	if (r->art) {
		s.in_keys = (const char *const *)inkeys;
		s.out_key = okey;
		s.log_key = lkey;
	}
	if (r->art && r->x->end_orphans) {
		/* a local process runs the step shim around the command */
		pl_buf_adds(&shim, "exec ");
		shell_quote(&shim, r->o->self ? r->o->self : "dagrun");
		pl_buf_adds(&shim, " step --store ");
		shell_quote(&shim, r->o->store);
		pl_buf_adds(&shim, " --run ");
		shell_quote(&shim, r->o->id);
		pl_buf_adds(&shim, " --task ");
		shell_quote(&shim, u->t->name);
		if (k)
			pl_buf_printf(&shim, " --child %ld", j->kid);
		pl_buf_printf(&shim, " --attempt %d", j->attempt);
		for (size_t i = 0; i < ninkeys; i++) {
			pl_buf_adds(&shim, " --input ");
			shell_quote(&shim, inkeys[i]);
		}
		pl_buf_adds(&shim, " -- ");
		shell_quote(&shim, pl_buf_cstr(&cmd));
		s.cmd = pl_buf_cstr(&shim);
	}
	in_fd = -1;	/* the executor's now */
	if (r->x->start(r->x, &s, &j->xid, r->err, r->errn) < 0) {
		r->fatal = 1;
		goto out;
	}
	if (k ? journal(r, "task_started", u->t->name, "\"child\":%ld,\"attempt\":%d,\"pid\":%ld",
			j->kid, j->attempt, j->xid) :
	    journal(r, "task_started", u->t->name, "\"attempt\":%d,\"pid\":%ld", j->attempt,
		    j->xid)) {
		r->x->signal(r->x, j->xid, SIGKILL);
		goto out;
	}
	j->state = S_RUN;
	j->timed_out = 0;
	j->deadline = u->t->timeout > 0 ? now() + u->t->timeout : 0;
	j->killat = 0;
	r->running++;
	if (k) {
		k->state = S_RUN;
		k->attempt = j->attempt;
		u->running++;
	}
	if (j->attempt == 1)
		progress(r, k != NULL, "%s: started", name);
	else
		progress(r, k != NULL, "%s: started (attempt %d)", name, j->attempt);
	rc = 1;
	goto out;
settled:
	if (k) {
		u->ndone++;
		u->nok += k->out == PL_OUT_SUCCEEDED;
		u->nfailed += k->out != PL_OUT_SUCCEEDED;
		if (j->feed)
			feed_close(r, j->feed);
		drop_job(r, j);
	}
out:
	if (in_fd >= 0)
		close(in_fd);
	free(items);
	free(lens);
	pl_buf_free(&ib);
	pl_buf_free(&kin);
	pl_buf_free(&shim);
	for (size_t i = 0; i < ninkeys; i++)
		free(inkeys[i]);
	pl_buf_free(&cmd);
	pl_buf_free(&envb);
	return r->fatal ? -1 : rc;
}

/* --- fan-out --------------------------------------------------------------- */

static void add_item(struct trun *u, char *it)
{
	if ((u->nitems & (u->nitems - 1)) == 0 || u->nitems == 0)
		u->items = pl_xrealloc(u->items, (u->nitems ? 2 * u->nitems : 1) * sizeof *u->items);
	u->items[u->nitems++] = it;
}

static struct kid *new_kid(struct trun *u)
{
	if (u->nkids == u->capkids) {
		u->capkids = u->capkids ? 2 * u->capkids : 64;
		u->kids = pl_xrealloc(u->kids, u->capkids * sizeof *u->kids);
	}
	struct kid *k = &u->kids[u->nkids++];
	memset(k, 0, sizeof *k);
	return k;
}

static int kid_before(const struct trun *u, size_t i)
{
	return i < u->nkids_before && (u->kids_before[i / 8] >> (i % 8) & 1);
}

/* The items of a fan-out that are known at its start, as children. Returns
 * 0, or -1 after a message when a template does not give a JSON array. */
static int static_kids(struct runner *r, struct trun *u)
{
	const struct pl_each *ea = &u->t->each;
	struct pl_buf b = PL_BUF_INIT;
	struct pl_texpr_err e = { 0 };
	json_error_t je;
	size_t total = 0;
	json_t *a;

	switch (ea->kind) {
	case PL_EACH_LIST:
		for (size_t i = 0; i < ea->nitems; i++)
			add_item(u, pl_xstrdup(ea->items[i]));
		total = u->nitems;
		break;
	case PL_EACH_RANGE:
		if (ea->step > 0 && ea->to > ea->from)
			total = (ea->to - ea->from + ea->step - 1) / ea->step;
		else if (ea->step < 0 && ea->to < ea->from)
			total = (ea->from - ea->to - ea->step - 1) / -ea->step;
		break;
	case PL_EACH_TMPL:
		if (pl_tmpl_expand(ea->tmpl, lookup, r, &b, &e) < 0 ||
		    !(a = json_loads(pl_buf_cstr(&b), JSON_DECODE_ANY, &je)) || !json_is_array(a)) {
			progress(r, 0, "%s: each: not a JSON array: %s", u->t->name, pl_buf_cstr(&b));
			pl_buf_free(&b);
			return -1;
		}
		for (size_t i = 0; i < json_array_size(a); i++) {
			json_t *v = json_array_get(a, i);
			add_item(u, json_is_string(v) ? pl_xstrdup(json_string_value(v)) :
				 json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
		}
		total = u->nitems;
		json_decref(a);
		pl_buf_free(&b);
		break;
	default:
		return 0;
	}
	for (size_t i = 0; i < total; i += u->batch) {
		struct kid *k = new_kid(u);
		k->off = i;
		k->len = total - i < (size_t)u->batch ? total - i : (size_t)u->batch;
	}
	u->ended = 1;
	return 0;
}

/* A child of the lines [batchstart, end) of the upstream's output. */
static void line_kid(struct trun *u, off_t end)
{
	struct kid *k = new_kid(u);
	k->off = u->batchstart;
	k->len = end - u->batchstart;
	u->batchstart = end;
	u->lines = 0;
	pl_sha256_copy(&u->given, &u->seen);
}

/* Read what the upstream of a streaming fan-out wrote since last time. A
 * retried upstream writes its output again: children already given lines
 * keep them if the new attempt writes the same bytes first, and the fan-out
 * fails if it does not. */
/* The upstream's output being read: a file, or a generation in the store. */
struct upsrc {
	struct runner *r;
	int fd;
	char key[600];
	uint64_t gen;
};

static ssize_t up_pread(struct upsrc *s, char *buf, size_t n, off_t off)
{
	if (!s->r->art)
		return pread(s->fd, buf, n, off);
	ssize_t k = pl_art_read(s->r->art, s->key, s->gen, off, buf, n);
	return k < 0 ? -1 : k;
}

static void read_stream(struct runner *r, struct trun *u)
{
	struct trun *up = u->up;
	int done = up->state == S_DONE;	/* before reading: nothing comes after */
	char path[4096], chunk[65536];
	struct upsrc src = { r, -1, "", 0 };
	uint64_t cur = up->attempts;
	ssize_t k;
	int fd = -1;

	if (r->art) {
		struct pl_art_info i;
		art_key(up, -1, "out", src.key, sizeof src.key);
		if (pl_art_stat(r->art, src.key, &i) != PL_ART_OK)
			goto end;
		cur = src.gen = i.gen;
	}
	if (cur != u->up_attempt) {
		/* a new attempt (it may even have ended by now): check it against
		 * what children were given */
		u->up_attempt = cur;
		if (u->batchstart > 0) {
			u->checking = 1;
			u->checked = 0;
			pl_sha256_free(&u->check);
			pl_sha256_init(&u->check);
		}
		u->offset = u->batchstart;
		u->lines = 0;
		pl_sha256_copy(&u->seen, &u->given);
	}
	path_of(r, up->t->name, "out", path, sizeof path);
	if (!r->art && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		goto end;
	src.fd = fd;
	if (u->checking) {
		while (u->checked < u->batchstart &&
		       (k = up_pread(&src, chunk, u->batchstart - u->checked < (off_t)sizeof chunk ?
				  (size_t)(u->batchstart - u->checked) : sizeof chunk,
				  u->checked)) > 0) {
			pl_sha256_update(&u->check, chunk, k);
			u->checked += k;
		}
		if (u->checked < u->batchstart) {
			if (fd >= 0)
				close(fd);
			if (done) {
				u->checking = 2;	/* shorter than what was given */
				u->ended = 1;
			}
			return;
		}
		unsigned char a[32], b[32];
		struct pl_sha256 g = { 0 };
		pl_sha256_copy(&g, &u->given);
		pl_sha256_final(&g, a);
		pl_sha256_final(&u->check, b);
		if (memcmp(a, b, 32) != 0) {
			if (fd >= 0)
				close(fd);
			u->checking = 2;
			u->ended = 1;
			return;
		}
		u->checking = 0;
	}
	while ((k = up_pread(&src, chunk, sizeof chunk, u->offset)) > 0) {
		ssize_t last = 0;
		for (ssize_t i = 0; i < k; i++) {
			if (chunk[i] != '\n')
				continue;
			if (++u->lines == u->batch) {
				pl_sha256_update(&u->seen, chunk + last, i + 1 - last);
				last = i + 1;
				line_kid(u, u->offset + i + 1);
			}
		}
		pl_sha256_update(&u->seen, chunk + last, k - last);
		u->offset += k;
	}
	if (fd >= 0)
		close(fd);
end:
	if (done) {
		/* the last lines, and a last line without a newline */
		if (up->out == PL_OUT_SUCCEEDED && u->offset > u->batchstart)
			line_kid(u, u->offset);
		u->ended = 1;
	}
}

/* Append the outputs of children that are done, in item order. */
static int assemble(struct runner *r, struct trun *u)
{
	char path[4096];
	struct stat st;

	while (u->frontier < u->nkids && u->kids[u->frontier].state == S_DONE) {
		struct kid *k = &u->kids[u->frontier];
		if (k->out == PL_OUT_SUCCEEDED && r->art) {
			char key[600];
			art_key(u, u->frontier, "out", key, sizeof key);
			if (pl_art_splice(u->aw, key) != PL_ART_OK) {
				snprintf(r->err, r->errn, "cannot splice '%s' in the store: %s", key,
					 pl_art_errstr(r->art));
				r->fatal = 1;
				return -1;
			}
		} else if (k->out == PL_OUT_SUCCEEDED) {
			job_path(r, u, u->frontier, "out", path, sizeof path);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0 && fstat(fd, &st) == 0) {
				off_t left = st.st_size;
				while (left > 0) {
					ssize_t n = copy_file_range(fd, NULL, u->outfd, NULL, left, 0);
					if (n <= 0) {
						close(fd);
						path_of(r, u->t->name, "out", path, sizeof path);
						return fail(r, "cannot write", path);
					}
					left -= n;
					u->outsize += n;
				}
			}
			if (fd >= 0)
				close(fd);
		}
		u->frontier++;
	}
	return 0;
}

/* The fan-out's end, when every child is done. */
static int fan_done(struct runner *r, struct trun *u)
{
	/* a fan-out over no items has nothing that failed: it succeeds */
	double need = u->nkids == 0 ? 0 : u->t->min_success < 0 ? u->nkids :
		u->t->min_success_fraction ? ceil(u->t->min_success * u->nkids - 1e-9) :
		u->t->min_success;
	const char *why = NULL;
	enum pl_outcome out = PL_OUT_SUCCEEDED;

	if (u->checking == 2) {
		out = PL_OUT_FAILED;
		why = "its upstream's retry wrote other lines than the children were given";
	} else if (r->interrupted || u->nok < need || (u->up && u->up->out != PL_OUT_SUCCEEDED)) {
		out = PL_OUT_FAILED;
	}
	if (close(u->outfd) < 0) {
		char path[4096];
		path_of(r, u->t->name, "out", path, sizeof path);
		return fail(r, "cannot write", path);
	}
	u->outfd = -1;
	if (r->art) {
		char key[600], path[4096];
		int st = pl_art_finish(u->aw, out == PL_OUT_SUCCEEDED ? 0 : 1);
		u->aw = NULL;
		art_key(u, -1, "out", key, sizeof key);
		path_of(r, u->t->name, "out", path, sizeof path);
		if (st != PL_ART_OK) {
			snprintf(r->err, r->errn, "cannot write '%s' to the store: %s", key,
				 pl_art_errstr(r->art));
			r->fatal = 1;
			return -1;
		}
		if (art_mirror(r, key, path) < 0)
			return -1;
	}
	/* readers that started on its output while it ran must not succeed on
	 * part of it */
	for (size_t i = 0; out != PL_OUT_SUCCEEDED && i < r->njobs; i++) {
		struct job *j = r->jobs[i];
		struct trun *src[64];
		size_t n;
		if (j->state != S_RUN || !j->streaming || j->upstream_failed)
			continue;
		n = stdin_sources(r, j->u, src);
		for (size_t q = 0; q < n; q++)
			if (src[q] == u) {
				j->upstream_failed = 1;
				if (j->feed)
					feed_close(r, j->feed);
				r->x->signal(r->x, j->xid, SIGTERM);
				j->killat = now() + r->o->kill_grace;
				break;
			}
	}
	if (journal(r, "task_finished", u->t->name,
		    "\"status\":\"%s\",\"children\":%zu,\"succeeded\":%zu", outcome_name[out],
		    u->nkids, u->nok) < 0)
		return -1;
	if (why)
		progress(r, 0, "%s: %s (%s)", u->t->name, outcome_name[out], why);
	else
		progress(r, 0, "%s: %s (%zu of %zu children succeeded)", u->t->name,
			 outcome_name[out], u->nok, u->nkids);
	finish(r, u, out, NULL);
	return 0;
}

/* --- outcomes -------------------------------------------------------------- */

static int retryable(const struct pl_retry *rt, int code, int signalled)
{
	if (rt->on != PL_RETRY_TRANSIENT)
		return 1;
	return signalled || code == 75 || code == 69;
}

static int reaped(struct runner *r, struct job *j, const struct pl_xdone *d)
{
	struct trun *u = j->u;
	struct kid *k = j->kid >= 0 ? &u->kids[j->kid] : NULL;
	const struct pl_retry *rt = &u->t->retry;
	int sig = d->signaled || j->timed_out;
	char name[300], child[40] = "", out[4096];
	double wait = 0;

	job_name(u, j->kid, name, sizeof name);
	if (k)
		snprintf(child, sizeof child, "\"child\":%ld,", j->kid);
	r->running--;
	if (k)
		u->running--;
	if (d->code == 0 && !j->timed_out && !j->upstream_failed) {
		if (journal(r, "task_finished", u->t->name,
			    "%s\"status\":\"Succeeded\",\"exit\":0,\"attempt\":%d", child,
			    j->attempt) < 0)
			return -1;
		progress(r, k != NULL, "%s: Succeeded", name);
		job_path(r, u, j->kid, "out", out, sizeof out);
		if (r->art && (!k || j->cache)) {
			/* the run directory's copy: for outputs, the cache, status */
			char key[600];
			art_key(u, j->kid, "out", key, sizeof key);
			if (art_mirror(r, key, out) < 0)
				return -1;
		}
		if (j->cache)
			cache_store(r, j->key, out);
		if (k) {
			k->state = S_DONE;
			k->out = PL_OUT_SUCCEEDED;
			u->ndone++;
			u->nok++;
			drop_job(r, j);
		} else {
			drop_job(r, j);
			finish(r, u, PL_OUT_SUCCEEDED, NULL);
		}
		return 0;
	}
	int again = !r->interrupted && !j->upstream_failed && j->attempt <= rt->limit &&
		retryable(rt, d->code, sig);
	/* through the store, a reader whose input was written again (a
	 * resumed fan-out assembles its output anew; the shim exits 75) reads
	 * the new one: once, whatever its retry policy says */
	if (!again && !r->interrupted && !j->upstream_failed && r->art && j->streaming &&
	    d->code == 75 && !j->reread) {
		j->reread = 1;
		again = 1;
	}
	if (again) {
		wait = rt->backoff * pow(rt->factor, j->attempt - 1);
		if (rt->max > 0 && wait > rt->max)
			wait = rt->max;
	}
	if (journal(r, "task_finished", u->t->name,
		    "%s\"status\":\"Failed\",\"exit\":%d,\"attempt\":%d%s%s%s%s%s", child, d->code,
		    j->attempt, j->timed_out ? ",\"timeout\":true" : "",
		    again ? ",\"retry\":true" : "", d->reason[0] ? ",\"reason\":\"" : "",
		    d->reason, d->reason[0] ? "\"" : "") < 0)
		return -1;
	if (j->upstream_failed)
		progress(r, 0, "%s: Failed (an upstream task it was reading failed)", name);
	else
		progress(r, 0, "%s: Failed (%s %d%s%s%s)%s", name,
			 d->signaled && !j->timed_out ? "signal" : "exit",
			 d->signaled && !j->timed_out ? d->code - 128 : d->code,
			 j->timed_out ? ", timed out" : "", d->reason[0] ? ", " : "", d->reason,
			 again ? ", retrying" : "");
	if (j->feed)
		feed_close(r, j->feed);
	if (again) {
		j->state = S_BACKOFF;
		j->next = now() + wait;
		if (k)
			k->state = S_BACKOFF;
		return 0;
	}
	if (k) {
		k->state = S_DONE;
		k->out = PL_OUT_FAILED;
		k->code = d->code;
		u->ndone++;
		u->nfailed++;
		drop_job(r, j);
	} else {
		drop_job(r, j);
		finish(r, u, PL_OUT_FAILED, NULL);
	}
	return 0;
}

/* --- resume ---------------------------------------------------------------- */

static void set_before(struct trun *u, size_t i)
{
	if (i >= u->nkids_before) {
		size_t bits = (i + 64) & ~(size_t)63;
		u->kids_before = pl_xrealloc(u->kids_before, bits / 8);
		memset(u->kids_before + u->nkids_before / 8, 0, (bits - u->nkids_before) / 8);
		u->nkids_before = bits;
	}
	u->kids_before[i / 8] |= 1 << (i % 8);
}

/* What succeeded before, from the journal; and the process groups of tasks
 * that were running when dagrun died, which are ended now. */
static int read_journal(struct runner *r)
{
	char path[4096], *line = NULL;
	size_t cap = 0, nrun = 0, caprun = 0;
	struct running_then {
		struct trun *u;
		long child, pid;
	} *run = NULL;
	FILE *f;

	snprintf(path, sizeof path, "%s/journal.jsonl", r->o->dir);
	if (!(f = fopen(path, "r")))
		return fail(r, "cannot read", path);
	while (getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, NULL);
		const char *ev = json_string_value(json_object_get(j, "event"));
		const char *task = json_string_value(json_object_get(j, "task"));
		const char *st = json_string_value(json_object_get(j, "status"));
		json_t *cj = json_object_get(j, "child");
		long child = cj ? (long)json_integer_value(cj) : -1;
		long pid = json_integer_value(json_object_get(j, "pid"));
		struct trun *u;
		if (!ev || !task || !(u = find(r, task, strlen(task))))
			goto next;
		if (strcmp(ev, "task_started") == 0 && pid > 1) {
			if (nrun == caprun) {
				caprun = caprun ? 2 * caprun : 16;
				run = pl_xrealloc(run, caprun * sizeof *run);
			}
			run[nrun].u = u;
			run[nrun].child = child;
			run[nrun++].pid = pid;
		} else if (strcmp(ev, "task_finished") == 0) {
			/* most recent first: that is where a finished one usually is */
			for (size_t i = nrun; i-- > 0;)
				if (run[i].u == u && run[i].child == child) {
					run[i] = run[--nrun];
					break;
				}
			if (st && strcmp(st, "Succeeded") == 0) {
				if (child >= 0)
					set_before(u, child);
				else
					u->before = 1;
			}
		}
next:
		json_decref(j);
	}
	free(line);
	fclose(f);
	/* started and never finished: the process groups dagrun left behind
	 * (a remote executor adopts its attempts instead) */
	for (size_t i = 0; r->x->end_orphans && i < nrun; i++)
		kill(-run[i].pid, SIGKILL);
	free(run);
	return 0;
}

/* --- the loop -------------------------------------------------------------- */

/* Decide what a task whose dependencies are done does: skip, error, or run.
 * Returns -1 on a fatal error, else 0. */
static int prepare(struct runner *r, struct trun *u)
{
	struct pl_buf b = PL_BUF_INIT;
	struct pl_texpr_err e = { 0 };
	int ok = 1;

	u->t_start = now();
	if (!is_exit(r, u) && u->before) {
		progress(r, 0, "%s: Succeeded before", u->t->name);
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
			struct trun *d = u->deps[i];
			if (d->state == S_DONE && d->out != PL_OUT_SUCCEEDED)
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
			progress(r, 0, "%s: when: %s", u->t->name, e.msg);
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
	if (fanning(u)) {
		char path[4096], failed[4096];
		snprintf(path, sizeof path, "%s/tasks/%s", r->o->dir, u->t->name);
		if (pl_mkdir_p(path, failed, sizeof failed) < 0)
			return fail(r, "cannot create", failed);
		path_of(r, u->t->name, "out", path, sizeof path);
		if ((u->outfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
			return fail(r, "cannot create", path);
		if (r->art) {
			char key[600];
			art_key(u, -1, "out", key, sizeof key);
			if (!(u->aw = pl_art_writer(r->art, key, 1))) {
				snprintf(r->err, r->errn, "cannot write '%s' to the store: %s", key,
					 pl_art_errstr(r->art));
				r->fatal = 1;
				return -1;
			}
		}
		u->batch = 1;
		if (u->t->batch) {
			struct pl_buf nb = PL_BUF_INIT;
			if (pl_tmpl_expand(u->t->batch, lookup, r, &nb, &e) == 0 &&
			    strtol(pl_buf_cstr(&nb), NULL, 10) > 0)
				u->batch = strtol(pl_buf_cstr(&nb), NULL, 10);
			pl_buf_free(&nb);
		}
		u->par = r->fan_par;
		if (u->t->parallelism) {
			struct pl_buf nb = PL_BUF_INIT;
			if (pl_tmpl_expand(u->t->parallelism, lookup, r, &nb, &e) == 0 &&
			    strtol(pl_buf_cstr(&nb), NULL, 10) > 0)
				u->par = strtol(pl_buf_cstr(&nb), NULL, 10);
			pl_buf_free(&nb);
		} else if (r->p->parallelism > 0) {
			u->par = r->p->parallelism;
		}
		if (static_kids(r, u) < 0) {
			close(u->outfd);
			u->outfd = -1;
			finish(r, u, PL_OUT_ERRORED, "bad each");
			return 0;
		}
		u->state = S_RUN;
		progress(r, 0, "%s: fanning out", u->t->name);
		return journal(r, "task_started", u->t->name, "\"fanout\":true");
	}
	u->state = S_RUN;
	struct job *j = calloc(1, sizeof *j);
	j->u = u;
	j->kid = -1;
	u->job = j;
	add_job(r, j);
	return start(r, j) < 0 ? -1 : 0;
}

/* Whether one more attempt of u may start now. */
static int room(struct runner *r, struct trun *u)
{
	if (r->p->parallelism > 0 && (long)r->running >= r->p->parallelism)
		return 0;
	return !fanning(u) || u->par <= 0 || (long)u->running < u->par;
}

/* Start what a running fan-out may start now. */
static int fan_step(struct runner *r, struct trun *u)
{
	if (u->up && !u->ended)
		read_stream(r, u);
	while (!r->interrupted && u->nextkid < u->nkids) {
		size_t i = u->nextkid;
		struct kid *k = &u->kids[i];
		char name[300];
		/* a streamed child's items are the same only if its upstream was kept */
		if ((!u->up || u->up->before) && kid_before(u, i)) {
			u->nextkid++;
			k->state = S_DONE;
			k->out = PL_OUT_SUCCEEDED;
			u->ndone++;
			u->nok++;
			job_name(u, i, name, sizeof name);
			progress(r, 1, "%s: Succeeded before", name);
			continue;
		}
		if (!room(r, u))
			break;
		u->nextkid++;
		struct job *j = calloc(1, sizeof *j);
		j->u = u;
		j->kid = i;
		add_job(r, j);
		if (start(r, j) < 0)
			return -1;
	}
	if (assemble(r, u) < 0)
		return -1;
	if (u->ended && u->nextkid == u->nkids && u->ndone == u->nkids && !u->running)
		return fan_done(r, u);
	if (r->interrupted && !u->running) {
		/* children never started will not be */
		u->nkids = u->nextkid;
		u->ended = 1;
		if (u->ndone == u->nkids)
			return fan_done(r, u);
	}
	return 0;
}

static void stop_all(struct runner *r)
{
	double t = now();
	for (size_t i = 0; i < r->njobs; i++) {
		struct job *j = r->jobs[i];
		if (j->state == S_RUN && !j->killat) {
			r->x->signal(r->x, j->xid, SIGTERM);
			j->killat = t + r->o->kill_grace;
		}
	}
}

/* Backing-off attempts that are due, or that an interrupt cancels. */
static int retry_due(struct runner *r)
{
	double t = now();

	for (size_t i = 0; i < r->njobs; i++) {
		struct job *j = r->jobs[i];
		struct trun *u = j->u;
		if (j->state != S_BACKOFF)
			continue;
		if (r->interrupted) {
			if (j->kid >= 0) {
				u->kids[j->kid].state = S_DONE;
				u->kids[j->kid].out = PL_OUT_FAILED;
				u->ndone++;
				u->nfailed++;
				drop_job(r, j);
			} else {
				drop_job(r, j);
				finish(r, u, PL_OUT_FAILED, "interrupted");
			}
			i--;
			continue;
		}
		if (t >= j->next && room(r, u)) {
			size_t before = r->njobs;
			if (start(r, j) < 0)
				return -1;
			if (r->njobs < before)
				i--;	/* settled without running: dropped from jobs */
		}
	}
	return 0;
}

static void view(struct runner *r, size_t beg, size_t end, int final)
{
	struct pl_task_view *v = pl_xmalloc((end - beg + 1) * sizeof *v);
	struct pl_run_view rv = { v, end - beg, now() - r->t0, final };
	static const char *const stname[] = { "Waiting", "Running", "Running", "" };

	for (size_t i = beg; i < end; i++) {
		struct trun *u = &r->tr[i];
		struct pl_task_view *w = &v[i - beg];
		w->name = u->t->name;
		w->state = u->state == S_DONE ? outcome_name[u->out] : stname[u->state];
		w->fanout = fanning(u);
		if (w->fanout) {
			w->total = u->ended ? (long)u->nkids : -1;
			w->done = u->ndone;
			w->ok = u->nok;
			w->failed = u->nfailed;
			w->running = u->running;
		} else {
			w->total = 1;
			w->done = u->state == S_DONE && u->out != PL_OUT_SKIPPED;
			w->ok = u->state == S_DONE && u->out == PL_OUT_SUCCEEDED;
			w->failed = u->state == S_DONE && (u->out == PL_OUT_FAILED ||
							    u->out == PL_OUT_ERRORED);
			w->running = u->job && u->job->state == S_RUN;
		}
		w->elapsed = !u->t_start ? 0 : (u->t_end ? u->t_end : now()) - u->t_start;
	}
	r->o->tick(r->o->ctx, &rv);
	free(v);
}

/* Wait for an event or the next deadline, then handle what came. */
static int wait_events(struct runner *r, double poll_s)
{
	double t = now(), next = t + poll_s;
	struct pollfd pf[512];
	struct pl_xdone d[64];
	int n = 0, nx, k;

	for (size_t i = 0; i < r->njobs; i++) {
		struct job *j = r->jobs[i];
		if (j->state == S_RUN && j->deadline && !j->timed_out && j->deadline < next)
			next = j->deadline;
		if (j->state == S_RUN && j->killat && j->killat < next)
			next = j->killat;
		if (j->state == S_BACKOFF && j->next < next)
			next = j->next;
	}
	if (r->dirty && r->last_sync + r->sync_every < next)
		next = r->last_sync + r->sync_every;
	pf[n].fd = r->sfd;
	pf[n++].events = POLLIN;
	int ms = next > t ? (int)ceil((next - t) * 1000) : 0;
	nx = r->x->fds(r->x, pf + n, 256, &ms);
	n += nx;
	for (size_t i = 0; i < r->nfeeds && n < (int)(sizeof pf / sizeof *pf); i++)
		if (r->feeds[i]->blocked) {
			pf[n].fd = r->feeds[i]->fd;
			pf[n++].events = POLLOUT;
		}
	if (poll(pf, n, ms) < 0 && errno != EINTR) {
		snprintf(r->err, r->errn, "poll: %s", strerror(errno));
		r->fatal = 1;
		return -1;
	}
	if (pf[0].revents & POLLIN) {
		struct signalfd_siginfo si;
		while (read(r->sfd, &si, sizeof si) == sizeof si)
			if (!r->interrupted) {
				r->interrupted = r->signo = si.ssi_signo;
				progress(r, 0, "interrupted: stopping");
				stop_all(r);
			}
	}
	do {
		k = r->x->reap(r->x, d, 64);
		for (int i = 0; i < k; i++)
			if (reaped(r, d[i].token, &d[i]) < 0)
				return -1;
	} while (k == 64);
	t = now();
	for (size_t i = 0; i < r->njobs; i++) {
		struct job *j = r->jobs[i];
		if (j->state != S_RUN)
			continue;
		if (j->deadline && !j->timed_out && t >= j->deadline) {
			j->timed_out = 1;
			r->x->signal(r->x, j->xid, SIGTERM);
			j->killat = t + r->o->kill_grace;
		} else if (j->killat && t >= j->killat) {
			r->x->signal(r->x, j->xid, SIGKILL);
			j->killat = t + 3600;
		}
	}
	return sync_journal(r, 0);
}

/* Run tasks [beg, end): the tasks, or on_exit alone. */
static int loop(struct runner *r, size_t beg, size_t end)
{
	for (;;) {
		int pending = 0, streaming = 0;
		for (size_t i = beg; i < end; i++) {
			struct trun *u = &r->tr[i];
			if (u->state == S_DONE)
				continue;
			pending = 1;
			if (u->state == S_WAIT && !r->interrupted && deps_done(r, u) && room(r, u) &&
			    prepare(r, u) < 0)
				return -1;
			if (u->state == S_RUN && fanning(u)) {
				if (fan_step(r, u) < 0)
					return -1;
				streaming |= u->state == S_RUN && u->up && !u->ended;
			}
		}
		if (retry_due(r) < 0)
			return -1;
		for (size_t i = r->nfeeds; i-- > 0;)
			if (i < r->nfeeds)
				feed_pump(r, r->feeds[i]);
		if (r->o->tick && now() - r->last_tick >= 0.25) {
			r->last_tick = now();
			view(r, beg, end, 0);
		}
		if (!pending)
			return 0;
		if (r->interrupted && !r->running) {
			int left = 0;
			for (size_t i = beg; i < end; i++)
				left |= r->tr[i].state == S_RUN && fanning(&r->tr[i]);
			if (!left)
				return 0;
			continue;
		}
		double poll_s = streaming ? 0.01 : r->o->tick ? 0.25 : 1;
		if (wait_events(r, poll_s) < 0)
			return -1;
	}
}

int pl_run(const struct pl_pipeline *p, const struct pl_run_opts *o, char *err, size_t errn)
{
	struct runner r = { .p = p, .o = o, .n = p->ntasks + 1, .jfd = -1, .sfd = -1,
			    .err = err, .errn = errn };
	char path[4096], failed[4096];
	struct pl_executor *own = NULL;
	sigset_t set;
	int rc = -1;

	r.t0 = now();
	r.efd = o->events_fd;
	r.sync_every = o->sync_every > 0 ? o->sync_every : 0.05;
	r.fan_par = o->fanout_parallelism > 0 ? o->fanout_parallelism :
		sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 2;
	snprintf(path, sizeof path, "%s/tasks", o->dir);
	if (pl_mkdir_p(path, failed, sizeof failed) < 0)
		return fail(&r, "cannot create", failed);
	snprintf(path, sizeof path, "%s/journal.jsonl", o->dir);
	if ((r.jfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		return fail(&r, "cannot create", path);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if ((r.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		fail(&r, "signalfd for", "SIGINT and SIGTERM");
		goto out;
	}
	if (o->store) {
		struct pl_art_opts ao = { .spec = o->store, .run = o->id, .ttl = o->store_ttl,
					  .create = 1 };
		int st;
		if (!(r.art = pl_art_open(&ao, err, errn, &st))) {
			rc = -1;
			goto out;
		}
	}
	if (!(r.x = o->executor)) {
		if (!(r.x = own = pl_exec_local_new(err, errn)))
			goto out;
	}
	snprintf(path, sizeof path, "%s/pid", o->dir);
	FILE *pf = fopen(path, "w");
	if (!pf || fprintf(pf, "%ld\n", (long)getpid()) < 0 || fclose(pf) != 0) {
		fail(&r, "cannot write", path);
		goto out;
	}
	r.tr = calloc(r.n, sizeof *r.tr);
	for (size_t i = 0; i < p->ntasks; i++) {
		r.tr[i].t = &p->tasks[i];
		r.tr[i].outfd = -1;
	}
	for (size_t i = 0; i < p->ntasks; i++) {
		struct trun *u = &r.tr[i];
		struct pl_texpr_err e;
		void *ctx[2] = { &r, u };
		int yes;
		for (size_t j = 0; j < u->t->nneeds; j++)
			collect_dep(ctx, u->t->needs[j], strlen(u->t->needs[j]), 0, &e);
		if (u->t->each.kind == PL_EACH_TASK) {
			collect_dep(ctx, u->t->each.task, strlen(u->t->each.task), 0, &e);
			u->up = find(&r, u->t->each.task, strlen(u->t->each.task));
			pl_sha256_init(&u->seen);
			pl_sha256_init(&u->given);
			u->up_attempt = 0;
		}
		if (u->t->depends)
			pl_depends_eval(u->t->depends, collect_dep, ctx, &yes, &e);
	}
	if (o->resume && read_journal(&r) < 0)
		goto out;
	{
		struct pl_buf b = PL_BUF_INIT;
		pl_json_put_str(&b, o->id, strlen(o->id));
		pl_buf_adds(&b, ",\"pipeline\":");
		pl_json_put_str(&b, p->name ? p->name : "", p->name ? strlen(p->name) : 0);
		int jr = journal(&r, o->resume ? "run_resumed" : "run_started", NULL,
				 "\"id\":%s,\"pid\":%ld,\"executor\":\"%s\"", pl_buf_cstr(&b),
				 (long)getpid(), r.x->name);
		pl_buf_free(&b);
		if (jr < 0 || sync_journal(&r, 1) < 0)
			goto out;
	}
	if (loop(&r, 0, p->ntasks) < 0)
		goto out;
	for (size_t i = 0; i < p->ntasks; i++)
		if (r.tr[i].state != S_DONE)
			finish(&r, &r.tr[i], PL_OUT_SKIPPED, "interrupted");
	r.status = r.interrupted ? "Interrupted" : r.failures ? "Failed" : "Succeeded";
	if (o->tick)
		view(&r, 0, p->ntasks, 0);
	if (p->on_exit) {
		r.tr[p->ntasks].t = p->on_exit;
		r.tr[p->ntasks].outfd = -1;
		r.interrupted = 0;	/* on_exit runs all the same */
		if (loop(&r, p->ntasks, p->ntasks + 1) < 0)
			goto out;
	}
	if (journal(&r, "run_finished", NULL, "\"status\":\"%s\",\"failures\":%d", r.status,
		    r.failures) < 0 || sync_journal(&r, 1) < 0)
		goto out;
	if (o->tick)
		view(&r, 0, r.tr[p->ntasks].t ? p->ntasks + 1 : p->ntasks, 1);
	progress(&r, 0, "run %s: %s", o->id, r.status);
	rc = r.signo ? 128 + r.signo : r.failures ? 1 : 0;
out:
	if (r.fatal && r.x)
		for (size_t i = 0; i < r.njobs; i++)
			if (r.jobs[i]->state == S_RUN)
				r.x->signal(r.x, r.jobs[i]->xid, SIGKILL);
	while (r.nfeeds)
		feed_close(&r, r.feeds[0]);
	for (size_t i = 0; i < r.njobs; i++)
		free(r.jobs[i]);
	free(r.jobs);
	free(r.feeds);
	if (r.tr) {
		for (size_t i = 0; i < r.n; i++) {
			struct trun *u = &r.tr[i];
			if (u->aw)
				pl_art_abandon(u->aw);
			if (u->outfd >= 0)
				close(u->outfd);
			free(u->kids);
			free(u->kids_before);
			for (size_t k = 0; k < u->nitems; k++)
				free(u->items[k]);
			free(u->items);
			for (size_t j = 0; u->outv && j < u->t->noutputs; j++)
				free(u->outv[j]);
			free(u->outv);
			free(u->deps);
			pl_sha256_free(&u->seen);
			pl_sha256_free(&u->given);
			pl_sha256_free(&u->check);
		}
		free(r.tr);
	}
	if (own)
		own->free(own);
	if (r.art)
		pl_art_close(r.art);
	if (r.sfd >= 0)
		close(r.sfd);
	if (r.jfd >= 0)
		close(r.jfd);
	return rc;
}
