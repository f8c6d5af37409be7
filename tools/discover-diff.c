/* discover-diff: the documents that changed since the last successful run
 * (docs/discover-diff.1). A run compares directory trees and manifests with
 * the stored state and writes upsert and delete records; --commit reads the
 * acks of the indexing pipeline and records exactly those documents. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "hash.h"
#include "json.h"
#include "lines.h"
#include "redisurl.h"
#include "state.h"
#include "utf8.h"

static const char usage_text[] =
	"discover-diff [-q] [-v] [--state STATE] [--state-prefix PREFIX]\n"
	"    [--timeout SECONDS] [--include GLOB]... [--exclude GLOB]... [--hidden]\n"
	"    [--follow] [--all] [--rehash] [--keep-going] [--rejects FILE] SOURCE...\n"
	"discover-diff --commit [-q] [-v] [--state STATE] [--state-prefix PREFIX]\n"
	"    [--timeout SECONDS] [--keep-going] [--rejects FILE] [ACKFILE...]";

static const char help_text[] =
	"\n"
	"SOURCE is a directory (walked) or a manifest of JSON Lines (- is stdin).\n"
	"\n"
	"  --state STATE         state file, or redis://[:password@]host[:port][/db]\n"
	"                        (PLUMB_STATE; no other URL scheme, no TLS); without\n"
	"                        one every document is new\n"
	"  --state-prefix PREFIX Redis key prefix (PLUMB_STATE_PREFIX, plumb:state:)\n"
	"  --include GLOB        only files matching GLOB (repeatable; PLUMB_INCLUDE)\n"
	"  --exclude GLOB        skip files and directories matching GLOB (PLUMB_EXCLUDE)\n"
	"  --hidden              walk dotfiles and dot-directories too (PLUMB_HIDDEN=1)\n"
	"  --follow              follow symbolic links to directories (PLUMB_FOLLOW=1)\n"
	"  --all                 write unchanged documents too (PLUMB_ALL=1)\n"
	"  --rehash              read every file, trusting no size and mtime (PLUMB_REHASH=1)\n"
	"  --timeout SECONDS     Redis connect and command timeout (PLUMB_TIMEOUT, 10)\n"
	"  --commit              record the documents acked on the input as done\n"
	"  --keep-going          report unreadable files and bad lines and go on\n"
	"  --rejects FILE        append bad manifest or ack lines to FILE\n"
	"  -q, --quiet           no summary line on stderr\n"
	"  -v, --verbose         say what is skipped and why\n"
	"  -h, --help, --version\n";

#define RACY_NS 2000000000LL	/* an mtime this close to "now" is not trusted */
#define MAX_ID 65536

enum { OPT_STATE = 0x100, OPT_PREFIX, OPT_INCLUDE, OPT_EXCLUDE, OPT_HIDDEN, OPT_FOLLOW,
       OPT_ALL, OPT_REHASH, OPT_COMMIT, OPT_TIMEOUT };

static struct {
	const char *state, *prefix;
	char **include, **exclude;
	size_t ninclude, nexclude;
	int hidden, follow, all, rehash, commit;
	long timeout_s;
} opt;

struct source {
	const char *arg;
	int is_dir;
};

static struct source *srcs;
static int nsrcs;

static struct pl_store *store;
/* An id found this run has a non-zero aux, in state if it is there, else in
 * fresh: the number of its struct origin plus one. */
static struct pl_state state;	/* the committed state */
static struct pl_state fresh;	/* ids found this run that the state lacks */
static struct origin {
	uint32_t src, line;	/* line 0 for a file found in a directory */
} *origins;
static size_t norigins, origcap;
static struct pl_state pending;	/* observations for the commit: id -> sha at a stat */
/* The last run's pending record: documents it wrote out whose acks may never
 * have been committed, so the store may hold them unknown to the state. */
static struct pl_state prev;
static char **held;		/* prefixes of unreadable directories: no deletes under them */
static size_t nheld;
static int hold_all;		/* a bad manifest line: any id might be missing */
static unsigned long n_new, n_changed, n_unchanged, n_deleted, n_errors;

static int truthy(const char *name)
{
	const char *v = pl_env(name, NULL);
	return v && strcmp(v, "0") != 0;
}

static void add_glob(char ***v, size_t *n, const char *g)
{
	*v = pl_xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = (char *)g;
}

/* Patterns from the environment, separated by white space. */
static void env_globs(const char *name, char ***v, size_t *n)
{
	const char *e = pl_env(name, NULL);
	char *s, *tok, *save;

	if (!e)
		return;
	s = pl_xstrdup(e);	/* kept: the patterns point into it */
	for (tok = strtok_r(s, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
		add_glob(v, n, tok);
}

static void store_die(int status, const char *err)
{
	/* indexed by -PL_ST_E*: config, data, local I/O, unreachable, error
	 * reply, conflicting commits */
	static const int code[] = { 0, PL_EX_USAGE, PL_EX_DATAERR, PL_EX_SOFTWARE,
				    PL_EX_UNAVAILABLE, PL_EX_UNAVAILABLE, PL_EX_TEMPFAIL };
	pl_die(code[-status], "%s", err);
}

/* --- bad input ---------------------------------------------------------- */

/* A file or directory that could not be read: stop (exit 65), or with
 * --keep-going report it, go on, and exit 65 at the end. */
static void bad_file(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad_file(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!pl_keep_going())
		pl_die(PL_EX_DATAERR, "%s", msg);
	pl_warn("%s", msg);
	n_errors++;
}

/* --- globs ----------------------------------------------------------------- */

/* Match path segment by segment; a "**" segment matches any number of them. */
static int match_segs(const char *p, const char *s)
{
	if (p[0] == '*' && p[1] == '*' && (p[2] == '/' || !p[2])) {
		const char *rest = p[2] ? p + 3 : p + 2;
		if (!*rest)
			return 1;
		for (const char *q = s;;) {
			if (match_segs(rest, q))
				return 1;
			if (!(q = strchr(q, '/')))
				return 0;
			q++;
		}
	}
	const char *pe = strchr(p, '/'), *se = strchr(s, '/');
	size_t pn = pe ? (size_t)(pe - p) : strlen(p), sn = se ? (size_t)(se - s) : strlen(s);
	char *ps = pl_xstrndup(p, pn), *ss = pl_xstrndup(s, sn);
	int ok = fnmatch(ps, ss, 0) == 0;

	free(ps);
	free(ss);
	if (!ok)
		return 0;
	if (!pe)
		return !se;
	if (!se)
		return strcmp(pe + 1, "**") == 0;
	return match_segs(pe + 1, se + 1);
}

/* A glob without '/' matches the base name at any depth; with one, the
 * whole relative path (a leading '/' only anchors, as it would anyway). */
static int glob_match(const char *g, const char *rel)
{
	if (!strchr(g, '/')) {
		const char *base = strrchr(rel, '/');
		return fnmatch(g, base ? base + 1 : rel, 0) == 0;
	}
	return match_segs(g[0] == '/' ? g + 1 : g, rel);
}

static int any_match(char **v, size_t n, const char *rel)
{
	for (size_t i = 0; i < n; i++)
		if (glob_match(v[i], rel))
			return 1;
	return 0;
}

/* --- documents ------------------------------------------------------------ */

/* Where an id was first found, for the duplicate message. */
static void describe(const struct origin *o, const char *id, size_t len, struct pl_buf *out)
{
	const struct source *src = &srcs[o->src];

	out->n = 0;
	if (src->is_dir) {
		size_t n = strlen(src->arg);
		pl_buf_adds(out, src->arg);
		if (n && src->arg[n - 1] != '/')
			pl_buf_addc(out, '/');
		pl_buf_add(out, id, len);
	} else {
		pl_buf_printf(out, "%s:%lu", strcmp(src->arg, "-") ? src->arg : "stdin",
			      (unsigned long)o->line);
	}
	pl_buf_cstr(out);
}

static struct pl_state_ent *found(const char *id, size_t len)
{
	struct pl_state_ent *e = pl_state_get(&state, id, len);
	return e ? e : pl_state_get(&fresh, id, len);
}

/* Record id as found: 1, or 0 if another source gave it first (with *first
 * describing that one). */
static int see(const char *id, size_t len, int src, unsigned long line, struct pl_buf *first)
{
	struct pl_state_ent *e = pl_state_get(&state, id, len);

	if (!e)
		e = pl_state_put(&fresh, id, len, NULL);
	if (e->aux) {
		describe(&origins[e->aux - 1], id, len, first);
		return 0;
	}
	if (norigins == origcap) {
		origcap = origcap ? origcap * 2 : 1024;
		origins = pl_xrealloc(origins, origcap * sizeof *origins);
	}
	origins[norigins].src = (uint32_t)src;
	origins[norigins].line = (uint32_t)line;
	e->aux = (uint32_t)++norigins;
	return 1;
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

enum { DOC_UNCHANGED, DOC_NEW, DOC_CHANGED };

/* What a run saw of one document. */
struct obs {
	struct pl_state_ent ent;	/* sha, and the stat when it can be trusted */
	int64_t size;
};

static int classify(const char *id, size_t len, const unsigned char sha[32])
{
	const struct pl_state_ent *e = pl_state_get(&state, id, len);

	if (!e)
		return DOC_NEW;
	if (memcmp(e->sha, sha, 32) != 0)
		return DOC_CHANGED;
	/* as committed, but an uncommitted run may have stored another version
	 * since: write it out again, so the store is brought back */
	const struct pl_state_ent *p = pl_state_get(&prev, id, len);
	return p && memcmp(p->sha, sha, 32) != 0 ? DOC_CHANGED : DOC_UNCHANGED;
}

/* Observe the file at path for document id: trust the state's sha when size,
 * mtime and inode are what it recorded, else read it. pre is its stat if the
 * caller has one. Returns a DOC_* value, or -1 with *why set (errno, or
 * EISDIR/EINVAL for not a regular file). */
static int observe_file(const char *path, const struct stat *pre, const char *id, size_t len,
			struct obs *o, int *why)
{
	static unsigned char *blk;
	enum { BLK = 1 << 20 };
	const struct pl_state_ent *e = pl_state_get(&state, id, len);
	struct stat st, st2;
	struct pl_sha256 h;
	int64_t got = 0;
	int fd;

	memset(o, 0, sizeof *o);
	if (pre) {
		st = *pre;
	} else if (stat(path, &st) < 0) {
		*why = errno;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		return -1;
	}
	if (!opt.rehash && e && (e->flags & PL_ENT_STAT) && e->size == (int64_t)st.st_size &&
	    e->mtime_ns == mtime_ns(&st) && e->ino == (uint64_t)st.st_ino) {
		o->ent = *e;
		o->size = e->size;
		return DOC_UNCHANGED;
	}
	/* O_NONBLOCK: a FIFO swapped in since the stat must not hang us */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		*why = errno;
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = errno ? errno : EINVAL;
		close(fd);
		return -1;
	}
	if (!blk)
		blk = pl_xmalloc(BLK);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	pl_sha256_init(&h);
	for (;;) {
		ssize_t r = read(fd, blk, BLK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*why = errno;
			pl_sha256_final(&h, o->ent.sha);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		pl_sha256_update(&h, blk, (size_t)r);
		got += r;
	}
	pl_sha256_final(&h, o->ent.sha);
	o->size = got;
	/* Trust the stat only if the file held still while we read it and
	 * its mtime is old enough that a later write must show in it (git's
	 * "racy" rule); otherwise the next run reads it again. */
	if (fstat(fd, &st2) == 0 && st2.st_size == st.st_size && got == (int64_t)st.st_size &&
	    mtime_ns(&st2) == mtime_ns(&st) && mtime_ns(&st) + RACY_NS <= now_ns()) {
		o->ent.size = got;
		o->ent.mtime_ns = mtime_ns(&st);
		o->ent.ino = (uint64_t)st.st_ino;
		o->ent.flags = PL_ENT_STAT;
	}
	close(fd);
	return classify(id, len, o->ent.sha);
}

/* Keep what was seen for the commit: always for a document written out,
 * and for an unchanged one when its stat differs from the state's. */
static void note_pending(const char *id, size_t len, const struct obs *o, int emitted)
{
	if (!store || (!emitted && !(o->ent.flags & PL_ENT_STAT)))
		return;
	if (!emitted) {
		const struct pl_state_ent *e = pl_state_get(&state, id, len);
		if (e && pl_state_same_stat(e, &o->ent))
			return;
	}
	struct pl_state_ent *p = pl_state_put(&pending, id, len, NULL);
	memcpy(p->sha, o->ent.sha, 32);
	if (o->ent.flags & PL_ENT_STAT) {
		p->size = o->ent.size;
		p->mtime_ns = o->ent.mtime_ns;
		p->ino = o->ent.ino;
		p->flags |= PL_ENT_STAT;
	} else {
		/* written out without a stat (inline text): remembered all the
		 * same, in case its ack never comes */
		p->flags &= ~PL_ENT_STAT;
	}
}

static int count(int kind)
{
	switch (kind) {
	case DOC_NEW: n_new++; return 1;
	case DOC_CHANGED: n_changed++; return 1;
	default: n_unchanged++; return opt.all;
	}
}

static void put_sha_size(const unsigned char sha[32], int64_t size, int with_size)
{
	char hex[PL_SHA256_HEX];

	pl_hex(sha, 32, hex);
	pl_buf_adds(&pl_out, ",\"sha256\":\"");
	pl_buf_add(&pl_out, hex, 64);
	pl_buf_addc(&pl_out, '"');
	if (with_size) {
		pl_buf_adds(&pl_out, ",\"size\":");
		pl_buf_i64(&pl_out, size);
	}
}

static const char *errmsg(int why)
{
	return why == EINVAL ? "not a regular file" : strerror(why);
}

/* --- directories ---------------------------------------------------------- */

struct dent {
	char *key;		/* the name, with a '/' after a directory: sorting by
				 * it orders the whole walk by relative path */
	size_t namelen;
	int dir;
	struct stat st;		/* a link's target's */
};

struct chain {
	dev_t dev;
	ino_t ino;
	const struct chain *up;
};

static int cmp_dent(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->key, ((const struct dent *)b)->key);
}

static void hold(const char *rel)
{
	if (!*rel) {
		hold_all = 1;
		return;
	}
	held = pl_xrealloc(held, (nheld + 1) * sizeof *held);
	size_t n = strlen(rel);
	held[nheld] = pl_xmalloc(n + 2);
	memcpy(held[nheld], rel, n);
	memcpy(held[nheld] + n, "/", 2);
	nheld++;
}

static void walk_file(int src, const char *path, const char *rel, const struct stat *st)
{
	size_t len = strlen(rel), plen = strlen(path);
	struct pl_buf first = PL_BUF_INIT;
	struct obs o;
	int kind, why;

	if (pl_utf8_valid_prefix(path, plen) != plen) {
		bad_file("'%s': file name is not valid UTF-8", pl_shown(path));
		return;
	}
	if (!see(rel, len, src, 0, &first)) {
		bad_file("'%s': duplicate id '%s' (also from '%s')", pl_shown(path), pl_shown(rel), pl_shown(first.p));
		pl_buf_free(&first);
		return;
	}
	kind = observe_file(path, st, rel, len, &o, &why);
	if (kind < 0) {
		if (why == ENOENT) {
			/* gone since the directory was read: it is deleted */
			found(rel, len)->aux = 0;
			return;
		}
		bad_file("'%s': %s", pl_shown(path), errmsg(why));
		return;
	}
	int emit = count(kind);
	note_pending(rel, len, &o, emit);
	if (!emit)
		return;
	pl_buf_adds(&pl_out, "{\"id\":");
	pl_json_put_str(&pl_out, rel, len);
	pl_buf_adds(&pl_out, ",\"op\":\"upsert\",\"path\":");
	pl_json_put_str(&pl_out, path, plen);
	put_sha_size(o.ent.sha, o.size, 1);
	pl_buf_addc(&pl_out, '}');
	pl_out_end();
}

/* Walk the directory at path (whose id prefix starts at path + relat). */
static void walk_dir(int src, struct pl_buf *path, size_t relat, const struct chain *up)
{
	struct dent *v = NULL;
	size_t n = 0, cap = 0, base;
	struct dirent *d;
	struct stat st;
	DIR *dir;
	int fd;

	pl_buf_cstr(path);
	const char *rel0 = path->n > relat ? path->p + relat : "";
	fd = open(path->p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (e == ENOENT)
			return;	/* gone since its parent was read */
		hold(rel0);
		errno = e;
		bad_file("'%s': %s", pl_shown(path->p), strerror(e));
		return;
	}
	for (;;) {
		errno = 0;
		if (!(d = readdir(dir))) {
			if (errno) {
				hold(rel0);
				bad_file("'%s': %s", pl_shown(path->p), strerror(errno));
			}
			break;
		}
		const char *name = d->d_name;
		if (name[0] == '.' && (!opt.hidden || !name[1] || (name[1] == '.' && !name[2])))
			continue;
		int isdir = 0;
		if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT) {
				/* not knowing what it is, keep everything here */
				hold(rel0);
				bad_file("'%s/%s': %s", pl_shown(path->p), pl_shown(name), strerror(errno));
			}
			continue;
		}
		if (S_ISLNK(st.st_mode)) {
			if (fstatat(fd, name, &st, 0) < 0) {
				if (errno == EACCES) {
					hold(rel0);
					bad_file("'%s/%s': %s", pl_shown(path->p), pl_shown(name), strerror(errno));
				} else
					pl_warn("'%s/%s': broken symbolic link, skipped", pl_shown(path->p), pl_shown(name));
				continue;
			}
			if (S_ISDIR(st.st_mode) && !opt.follow) {
				pl_info("'%s/%s': symbolic link to a directory, not followed",
					pl_shown(path->p), pl_shown(name));
				continue;
			}
		}
		if (S_ISDIR(st.st_mode)) {
			isdir = 1;
		} else if (!S_ISREG(st.st_mode)) {
			pl_info("'%s/%s': not a regular file, skipped", pl_shown(path->p), pl_shown(name));
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = pl_xrealloc(v, cap * sizeof *v);
		}
		size_t nl = strlen(name);
		v[n].key = pl_xmalloc(nl + 2);
		memcpy(v[n].key, name, nl);
		v[n].key[nl] = isdir ? '/' : '\0';
		v[n].key[nl + 1] = '\0';
		v[n].namelen = nl;
		v[n].dir = isdir;
		v[n].st = st;
		n++;
	}
	closedir(dir);
	if (n)
		qsort(v, n, sizeof *v, cmp_dent);

	base = path->n;
	for (size_t i = 0; i < n; i++) {
		if (pl_stop)
			pl_exit_signal();
		path->n = base;
		if (base && path->p[base - 1] != '/')
			pl_buf_addc(path, '/');
		pl_buf_add(path, v[i].key, v[i].namelen);
		pl_buf_cstr(path);
		const char *rel = path->p + relat;
		if (opt.nexclude && any_match(opt.exclude, opt.nexclude, rel)) {
			pl_info("'%s': excluded", pl_shown(path->p));
			continue;
		}
		if (!v[i].dir) {
			if (opt.ninclude && !any_match(opt.include, opt.ninclude, rel))
				continue;
			walk_file(src, path->p, rel, &v[i].st);
			continue;
		}
		/* only a followed link can lead back up */
		const struct chain *c;
		for (c = up; c; c = c->up)
			if (c->dev == v[i].st.st_dev && c->ino == v[i].st.st_ino)
				break;
		if (c) {
			pl_warn("'%s': symbolic link loop, not followed", pl_shown(path->p));
			continue;
		}
		struct chain me = { v[i].st.st_dev, v[i].st.st_ino, up };
		walk_dir(src, path, relat, &me);
	}
	path->n = base;
	for (size_t i = 0; i < n; i++)
		free(v[i].key);
	free(v);
}

static void walk(int src)
{
	struct pl_buf path = PL_BUF_INIT;
	const char *root = srcs[src].arg;
	size_t n = strlen(root);
	struct stat st;

	pl_buf_adds(&path, root);
	if (stat(root, &st) < 0)
		pl_die(PL_EX_USAGE, "'%s':", pl_shown(root));
	struct chain top = { st.st_dev, st.st_ino, NULL };
	walk_dir(src, &path, n && root[n - 1] == '/' ? n : n + 1, &top);
	pl_buf_free(&path);
}

/* --- manifests and acks ----------------------------------------------------- */

static void open_input(struct pl_lines *l, const char *f)
{
	if (pl_lines_open(l, f) < 0)
		pl_die(PL_EX_USAGE, "cannot open '%s':", pl_shown(f));
	pl_input_attach(l);
}

/* A string member decoded into its own buffer: 1 if present and a string,
 * 0 if absent, -1 if present but not a string, -2 if it is not valid Unicode
 * (a lone surrogate escape; *why says which). */
static int get_str(const struct pl_jobj *o, const char *key, struct pl_buf *out,
		   struct pl_jerr *why)
{
	const struct pl_jmember *m = pl_jobj_get(o, key);

	if (!m)
		return 0;
	out->n = 0;
	pl_buf_reserve(out, 1);	/* never NULL, even for "" */
	if (m->type != PL_JSTR)
		return -1;
	if (!m->val_esc) {
		pl_buf_add(out, m->val + 1, m->vallen - 2);
	} else if (pl_json_str_decode(m->val + 1, m->vallen - 2, out, 0, why) < 0) {
		return -2;
	}
	pl_buf_cstr(out);
	return 1;
}

/* Why a string member is unusable, from get_str's r < 0. */
static const char *str_problem(int r, const char *key, const struct pl_jerr *why)
{
	static char msg[sizeof why->msg + 64];

	if (r == -1)
		snprintf(msg, sizeof msg, "'%s' is not a string", key);
	else
		snprintf(msg, sizeof msg, "'%s' is not valid Unicode: %s", key, why->msg);
	return msg;
}

/* A "sha256" member as 32 bytes: 1, 0 if absent, -1 if not 64 hex digits. */
static int get_sha(const struct pl_jobj *o, const char *key, unsigned char sha[32])
{
	const struct pl_jmember *m = pl_jobj_get(o, key);

	if (!m)
		return 0;
	if (m->type != PL_JSTR || m->val_esc || m->vallen != 66 ||
	    pl_unhex(m->val + 1, 64, sha) < 0)
		return -1;
	return 1;
}

static void manifest_reject(const struct pl_rec *rec, const char *msg)
{
	/* its id is unknown or unusable, so any state id might be this one */
	hold_all = 1;
	pl_input_reject(rec, "%s", msg);
}

/* The members a manifest record's own values are read from; all others pass
 * through verbatim. "op" is among them only to be refused. */
static const char *const consumed[] = { "id", "op", "path", "text", "sha256", "size" };
#define NCONSUMED (sizeof consumed / sizeof *consumed)

/* A consumed member that appears twice (JSON leaves which one counts open,
 * and either way the other would vanish unseen), "id" before any other; or
 * NULL. */
static const char *dup_consumed(const struct pl_jobj *o)
{
	unsigned seen[NCONSUMED] = { 0 };

	for (size_t i = 0; i < o->n; i++)
		for (size_t k = 0; k < NCONSUMED; k++)
			if (pl_jmember_key_is(&o->m[i], consumed[k]))
				seen[k]++;
	for (size_t k = 0; k < NCONSUMED; k++)
		if (seen[k] > 1)
			return consumed[k];
	return NULL;
}

static void manifest_record(int src, const char *mdir, const struct pl_rec *rec)
{
	static struct pl_buf id, text, path, first;
	const struct pl_jobj *o = &rec->obj;
	const struct pl_jmember *sizem;
	const char *dup = dup_consumed(o);
	unsigned char given[32];
	struct pl_jerr why;
	struct obs ob;
	int64_t size;
	int r, has_text, has_path, has_sha, kind, ferr;

	if (dup && strcmp(dup, "id") == 0) {
		manifest_reject(rec, "'id' given twice");
		return;
	}
	if ((r = get_str(o, "id", &id, &why)) <= 0 || id.n == 0 || id.n > MAX_ID) {
		manifest_reject(rec, r == 0 ? "missing field 'id'" : r < 0 ? str_problem(r, "id", &why) :
				id.n == 0 ? "empty 'id'" : "'id' is too long");
		return;
	}
	if (!see(id.p, id.n, src, rec->lineno, &first)) {
		pl_input_reject(rec, "duplicate id '%s' (also from '%s')", pl_shown(id.p), pl_shown(first.p));
		return;
	}
	/* From here on the id is known: a bad record keeps it from deletion. */
	if (pl_jobj_get(o, "op")) {
		/* a manifest lists what exists; taking a delete here would make
		 * a document vanish on a say-so that no later run repeats */
		pl_input_reject(rec, "'op' is not allowed in a manifest: deletes are found, not "
				"given (leave the document out, and a run whose sources all "
				"read without error reports it deleted)");
		return;
	}
	if (dup) {
		pl_input_reject(rec, "'%s' given twice", dup);
		return;
	}
	has_text = get_str(o, "text", &text, &why);
	if (has_text < 0) {
		pl_input_reject(rec, "%s", str_problem(has_text, "text", &why));
		return;
	}
	has_path = get_str(o, "path", &path, &why);
	if (has_path < 0) {
		pl_input_reject(rec, "%s", str_problem(has_path, "path", &why));
		return;
	}
	has_sha = get_sha(o, "sha256", given);
	if (has_sha < 0 || (has_text && has_path) || (!has_text && !has_path)) {
		pl_input_reject(rec, "%s", has_sha < 0 ? "'sha256' is not 64 hex digits" :
				has_text ? "both 'path' and 'text'" : "needs 'path' or 'text'");
		return;
	}
	if ((sizem = pl_jobj_get(o, "size")) && (pl_jmember_i64(sizem, &size) < 0 || size < 0)) {
		pl_input_reject(rec, "'size' is not a whole number of bytes");
		return;
	}
	memset(&ob, 0, sizeof ob);
	if (has_path && path.n == 0) {
		pl_input_reject(rec, "empty 'path'");
		return;
	}
	if (has_path && path.p[0] != '/' && mdir) {
		/* relative to the manifest, so the output path works from here */
		struct pl_buf t = PL_BUF_INIT;
		pl_buf_reserve(&t, 1);
		pl_buf_adds(&t, mdir);
		pl_buf_addc(&t, '/');
		pl_buf_add(&t, path.p, path.n);
		path.n = 0;
		pl_buf_add(&path, t.p, t.n);
		pl_buf_cstr(&path);
		pl_buf_free(&t);
	}
	if (has_sha) {
		memcpy(ob.ent.sha, given, 32);
		ob.size = has_text ? (int64_t)text.n : -1;
		kind = classify(id.p, id.n, given);
	} else if (has_text) {
		pl_sha256_raw(text.p, text.n, ob.ent.sha);
		ob.size = (int64_t)text.n;
		kind = classify(id.p, id.n, ob.ent.sha);
	} else {
		kind = observe_file(path.p, NULL, id.p, id.n, &ob, &ferr);
		if (kind < 0) {
			bad_file("%s:%lu: '%s': %s", pl_shown(rec->file), rec->lineno, pl_shown(path.p), errmsg(ferr));
			return;
		}
	}
	int emit = count(kind);
	note_pending(id.p, id.n, &ob, emit);
	if (!emit)
		return;
	/* our fields first, then the record's own in their order, verbatim */
	const struct pl_jmember *idm = pl_jobj_get(o, "id");
	pl_buf_addc(&pl_out, '{');
	pl_json_put_member(&pl_out, idm);
	pl_buf_adds(&pl_out, ",\"op\":\"upsert\"");
	if (has_path) {
		pl_buf_adds(&pl_out, ",\"path\":");
		pl_json_put_str(&pl_out, path.p, path.n);
	} else {
		pl_buf_addc(&pl_out, ',');
		pl_json_put_member(&pl_out, pl_jobj_get(o, "text"));
	}
	put_sha_size(ob.ent.sha, ob.size, ob.size >= 0);
	for (size_t i = 0; i < o->n; i++) {
		const struct pl_jmember *m = &o->m[i];
		if (pl_jmember_key_is(m, "id") || pl_jmember_key_is(m, "path") ||
		    pl_jmember_key_is(m, "text") || pl_jmember_key_is(m, "sha256") ||
		    (ob.size >= 0 && pl_jmember_key_is(m, "size")))
			continue;	/* written above; a given size replaced by the measured one */
		pl_buf_addc(&pl_out, ',');
		pl_json_put_member(&pl_out, m);
	}
	pl_buf_addc(&pl_out, '}');
	pl_out_end();
}

static void read_manifest(int src)
{
	const char *arg = srcs[src].arg;
	struct pl_lines l;
	struct pl_rec rec;
	char *mdir = NULL;
	const char *slash = strrchr(arg, '/');

	memset(&rec, 0, sizeof rec);
	if (strcmp(arg, "-") != 0 && slash)
		mdir = slash == arg ? pl_xstrdup("") : pl_xstrndup(arg, (size_t)(slash - arg));
	open_input(&l, arg);
	unsigned long bad = pl_input_rejected();
	while (pl_input_next_from(&l, &rec))
		manifest_record(src, mdir, &rec);
	if (pl_input_rejected() != bad)
		hold_all = 1;	/* a bad line's id is unknown: it may be any state id */
	if (pl_stop)
		pl_exit_signal();
	pl_lines_close(&l);
	pl_jobj_free(&rec.obj);
	free(mdir);
}

/* --- the two modes ------------------------------------------------------------ */

static int is_held(const char *id)
{
	for (size_t i = 0; i < nheld; i++)
		if (strncmp(id, held[i], strlen(held[i])) == 0)
			return 1;
	return 0;
}

static void write_deletes(void)
{
	struct pl_state_ent **v;
	size_t n;
	unsigned long withheld = 0;

	v = pl_state_sorted(&state, &n);
	for (size_t i = 0; i < n; i++) {
		const char *id = pl_state_id(&state, v[i]);
		if (v[i]->aux)
			continue;
		if (hold_all || is_held(id)) {
			withheld++;
			continue;
		}
		pl_buf_adds(&pl_out, "{\"id\":");
		pl_json_put_str(&pl_out, id, v[i]->len);
		pl_buf_adds(&pl_out, ",\"op\":\"delete\"}");
		pl_out_end();
		n_deleted++;
	}
	/* Documents a crashed run wrote out but never committed: if they are
	 * gone now, the store may still hold them, so they are deleted too; and
	 * whatever is still unresolved is remembered for the next run. */
	for (size_t i = 0; i < prev.n; i++) {
		const struct pl_state_ent *p = &prev.ent[i];
		const char *id = pl_state_id(&prev, p);
		const struct pl_state_ent *e = pl_state_get(&state, id, p->len);
		const struct pl_state_ent *f = found(id, p->len);
		if ((f && f->aux) || (e && memcmp(e->sha, p->sha, 32) == 0))
			continue;	/* seen this run, or resolved by a commit */
		struct pl_state_ent *k = pl_state_put(&pending, id, p->len, NULL);
		memcpy(k->sha, p->sha, 32);
		if (e)
			continue;	/* in the state: deleted above if it is gone */
		if (hold_all || is_held(id)) {
			withheld++;
			continue;
		}
		pl_buf_adds(&pl_out, "{\"id\":");
		pl_json_put_str(&pl_out, id, p->len);
		pl_buf_adds(&pl_out, ",\"op\":\"delete\"}");
		pl_out_end();
		n_deleted++;
	}
	if (withheld)
		pl_warn("%lu document%s not found, but not reported deleted: %s", withheld,
			withheld == 1 ? "" : "s",
			hold_all ? "a manifest had bad lines" : "their directory could not be read");
	free(v);
}

static void run_diff(void)
{
	char err[PL_STATE_ERRLEN];
	int status;

	if (store && ((status = pl_store_load(store, &state, err)) ||
		      (status = pl_store_load_pending(store, &prev, err))))
		store_die(status, err);
	for (int i = 0; i < nsrcs; i++) {
		if (srcs[i].is_dir)
			walk(i);
		else
			read_manifest(i);
	}
	if (pl_stop)
		pl_exit_signal();
	write_deletes();
	/* before our output ends: a commit downstream reads it at its EOF */
	if (store && (status = pl_store_put_pending(store, &pending, err)))
		store_die(status, err);
	if (!pl_quiet)
		pl_warn("%lu new, %lu changed, %lu deleted, %lu unchanged", n_new, n_changed,
			n_deleted, n_unchanged);
	if (n_errors)
		pl_die(PL_EX_DATAERR, "%lu file%s or director%s could not be read", n_errors,
		       n_errors == 1 ? "" : "s", n_errors == 1 ? "y" : "ies");
	pl_finish();
}

static struct pl_state acks;
static unsigned long n_other;

static void commit(void)
{
	struct pl_commit_stats cs;
	char err[PL_STATE_ERRLEN];
	int status;

	if ((status = pl_store_commit(store, &acks, &cs, err)))
		store_die(status, err);
	if (pl_quiet && !n_other)
		return;
	/* other records are reported even with --quiet: they were not acks,
	 * and nothing may vanish without a word */
	char other[64] = "";
	if (n_other)
		snprintf(other, sizeof other, "; %lu other record%s ignored", n_other,
			 n_other == 1 ? "" : "s");
	pl_warn("committed %lu indexed, %lu deleted, %lu stat refresh%s%s", cs.indexed,
		cs.deleted, cs.refreshed, cs.refreshed == 1 ? "" : "es", other);
}

static void read_acks(struct pl_lines *l)
{
	static struct pl_buf op, id;
	struct pl_rec rec = { 0 };
	unsigned char sha[32];
	struct pl_jerr why;

	while (pl_input_next_from(l, &rec)) {
		int isidx = 0;
		if (get_str(&rec.obj, "op", &op, &why) <= 0 ||
		    (!(isidx = strcmp(op.p, "indexed") == 0) && strcmp(op.p, "deleted") != 0)) {
			n_other++;
			continue;
		}
		int ri = get_str(&rec.obj, "doc_id", &id, &why);
		if (ri <= 0 || id.n == 0 || id.n > MAX_ID) {
			if (ri == -2)
				pl_input_reject(&rec, "%s ack with a 'doc_id' that is not valid "
						"Unicode: %s", op.p, why.msg);
			else
				pl_input_reject(&rec, "%s ack %s", op.p, ri == 0 ? "without 'doc_id'" :
						"with a bad 'doc_id'");
			continue;
		}
		int rs = isidx ? get_sha(&rec.obj, "doc_sha256", sha) : 0;
		if (isidx && rs <= 0) {
			pl_input_reject(&rec, "indexed ack %s", rs == 0 ? "without 'doc_sha256'" :
				"with a 'doc_sha256' that is not 64 hex digits");
			continue;
		}
		/* the last ack for an id wins */
		struct pl_state_ent *e = pl_state_put(&acks, id.p, id.n, NULL);
		if (isidx) {
			memcpy(e->sha, sha, 32);
			e->flags &= ~PL_ENT_DELETED;
		} else {
			e->flags |= PL_ENT_DELETED;
		}
	}
	pl_jobj_free(&rec.obj);
}

static void run_commit(int nfiles, char **files)
{
	static char *dash[] = { "-" };
	struct pl_lines l;

	if (nfiles == 0) {
		files = dash;
		nfiles = 1;
	}
	/* a bad ack stops the run with 65, but the good acks before it are
	 * committed first: they are true, and dropping them only costs a
	 * re-index */
	pl_input_before_fatal(commit);
	for (int i = 0; i < nfiles && !pl_stop; i++) {
		open_input(&l, files[i]);
		read_acks(&l);
		pl_lines_close(&l);
	}
	/* on SIGINT or SIGTERM too: what was acked is done */
	commit();
	if (pl_stop)
		pl_exit_signal();
	pl_finish();
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		PL_COMMON_LONGOPTS,
		{ "state", required_argument, NULL, OPT_STATE },
		{ "state-prefix", required_argument, NULL, OPT_PREFIX },
		{ "include", required_argument, NULL, OPT_INCLUDE },
		{ "exclude", required_argument, NULL, OPT_EXCLUDE },
		{ "hidden", no_argument, NULL, OPT_HIDDEN },
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "rehash", no_argument, NULL, OPT_REHASH },
		{ "commit", no_argument, NULL, OPT_COMMIT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ NULL, 0, NULL, 0 }
	};
	char err[PL_STATE_ERRLEN];
	int c, status;

	pl_init("discover-diff", usage_text, help_text);
	opt.hidden = truthy("PLUMB_HIDDEN");
	opt.follow = truthy("PLUMB_FOLLOW");
	opt.all = truthy("PLUMB_ALL");
	opt.rehash = truthy("PLUMB_REHASH");
	opt.state = pl_env("PLUMB_STATE", NULL);
	opt.prefix = pl_env("PLUMB_STATE_PREFIX", "plumb:state:");
	opt.timeout_s = 10;
	if (pl_env("PLUMB_TIMEOUT", NULL))
		opt.timeout_s = pl_parse_long("PLUMB_TIMEOUT", pl_env("PLUMB_TIMEOUT", NULL), 1, 3600);
	while ((c = getopt_long(argc, argv, "hvq", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_STATE: opt.state = optarg; break;
		case OPT_PREFIX: opt.prefix = optarg; break;
		case OPT_INCLUDE: add_glob(&opt.include, &opt.ninclude, optarg); break;
		case OPT_EXCLUDE: add_glob(&opt.exclude, &opt.nexclude, optarg); break;
		case OPT_HIDDEN: opt.hidden = 1; break;
		case OPT_FOLLOW: opt.follow = 1; break;
		case OPT_ALL: opt.all = 1; break;
		case OPT_REHASH: opt.rehash = 1; break;
		case OPT_COMMIT: opt.commit = 1; break;
		case OPT_TIMEOUT: opt.timeout_s = pl_parse_long("--timeout", optarg, 1, 3600); break;
		case 'q': pl_common_option(PL_OPT_QUIET, optarg); break;
		default:
			if (!pl_common_option(c, optarg))
				pl_usage_error(NULL);
		}
	}
	if (!opt.ninclude)
		env_globs("PLUMB_INCLUDE", &opt.include, &opt.ninclude);
	if (!opt.nexclude)
		env_globs("PLUMB_EXCLUDE", &opt.exclude, &opt.nexclude);
	argc -= optind;
	argv += optind;

	if (opt.commit) {
		if (!opt.state)
			pl_usage_error("--commit needs --state (or PLUMB_STATE)");
		for (int i = 0; i < argc; i++) {
			struct stat st;
			if (strcmp(argv[i], "-") == 0)
				continue;
			if (stat(argv[i], &st) < 0)
				pl_die(PL_EX_USAGE, "'%s':", pl_shown(argv[i]));
			if (S_ISDIR(st.st_mode))
				pl_usage_error("'%s' is a directory; --commit reads ack files", pl_shown(argv[i]));
		}
	} else {
		if (argc == 0)
			pl_usage_error("no source given (a directory, a manifest, or - for stdin)");
		srcs = pl_xmalloc((size_t)argc * sizeof *srcs);
		int dash = 0;
		for (int i = 0; i < argc; i++) {
			struct stat st;
			srcs[i].arg = argv[i];
			srcs[i].is_dir = 0;
			if (strcmp(argv[i], "-") == 0) {
				if (dash++)
					pl_usage_error("stdin (-) given twice");
				continue;
			}
			if (stat(argv[i], &st) < 0)
				pl_die(PL_EX_USAGE, "'%s':", pl_shown(argv[i]));
			srcs[i].is_dir = S_ISDIR(st.st_mode);
		}
		nsrcs = argc;
	}
	if (opt.state && !pl_is_redis_url(opt.state)) {
		/* said here, before any I/O, whatever a read of it would report */
		struct stat st;
		if (stat(opt.state, &st) == 0 && S_ISDIR(st.st_mode))
			pl_die(PL_EX_USAGE, "state '%s' is a directory; it must name a file "
			       "(or be a redis:// URL)", pl_shown(opt.state));
	}
	if (opt.state && (status = pl_store_open(&store, opt.state, opt.prefix,
						 (int)opt.timeout_s * 1000, err)))
		store_die(status, err);
	srand((unsigned)(getpid() ^ time(NULL)));

	pl_input_open(0, NULL);	/* for --rejects; records are read here */
	pl_state_init(&state);
	pl_state_init(&fresh);
	pl_state_init(&pending);
	pl_state_init(&prev);
	pl_state_init(&acks);
	if (opt.commit)
		run_commit(argc, argv);
	run_diff();
}
