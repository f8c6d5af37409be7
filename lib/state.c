#include "state.h"
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "json.h"
#include "lines.h"
#include "redisurl.h"

/* --- the table ------------------------------------------------------------ */

/* Entries sit densely in ent[0..n); the hash index maps a slot to an entry
 * number plus one (0 is empty), 4 bytes a slot, so the sparse part of the
 * table costs little and iteration touches no empty slots. */

void pl_state_init(struct pl_state *st)
{
	memset(st, 0, sizeof *st);
}

void pl_state_free(struct pl_state *st)
{
	free(st->ent);
	free(st->idx);
	pl_buf_free(&st->arena);
	memset(st, 0, sizeof *st);
}

/* FNV-1a, folded to 32 bits: ids are short paths, and this is cheap and good
 * enough for them with linear probing. */
static uint32_t hash_id(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return (uint32_t)(h ^ (h >> 32));
}

/* The slot holding id, or the empty slot where it would go. */
static size_t find_slot(const struct pl_state *st, const char *id, size_t len, uint32_t h)
{
	size_t mask = st->cap - 1, i = h & mask;

	for (;;) {
		uint32_t k = st->idx[i];
		if (!k)
			return i;
		const struct pl_state_ent *e = &st->ent[k - 1];
		if (e->hash == h && e->len == len && memcmp(st->arena.p + e->off, id, len) == 0)
			return i;
		i = (i + 1) & mask;
	}
}

static void grow_index(struct pl_state *st)
{
	size_t ncap = st->cap ? st->cap * 2 : 64, mask = ncap - 1;

	free(st->idx);
	st->idx = pl_xmalloc(ncap * sizeof *st->idx);
	memset(st->idx, 0, ncap * sizeof *st->idx);
	st->cap = ncap;
	for (size_t k = 0; k < st->n; k++) {
		size_t j = st->ent[k].hash & mask;
		while (st->idx[j])
			j = (j + 1) & mask;
		st->idx[j] = (uint32_t)(k + 1);
	}
}

struct pl_state_ent *pl_state_get(const struct pl_state *st, const char *id, size_t len)
{
	if (!st->cap)
		return NULL;
	uint32_t k = st->idx[find_slot(st, id, len, hash_id(id, len))];
	return k ? &st->ent[k - 1] : NULL;
}

struct pl_state_ent *pl_state_put(struct pl_state *st, const char *id, size_t len, int *created)
{
	uint32_t h = hash_id(id, len);
	size_t i;

	/* keep the load at or under 3/4 so probe runs stay short */
	if ((st->n + 1) * 4 > st->cap * 3)
		grow_index(st);
	i = find_slot(st, id, len, h);
	if (created)
		*created = !st->idx[i];
	if (st->idx[i])
		return &st->ent[st->idx[i] - 1];
	if (st->n == st->entcap) {
		st->entcap = st->entcap ? st->entcap * 2 : 64;
		st->ent = pl_xrealloc(st->ent, st->entcap * sizeof *st->ent);
	}
	struct pl_state_ent *e = &st->ent[st->n];
	memset(e, 0, sizeof *e);
	e->off = st->arena.n;
	pl_buf_add(&st->arena, id, len);
	pl_buf_addc(&st->arena, '\0');
	e->len = (uint32_t)len;
	e->hash = h;
	e->flags = PL_ENT_USED;
	st->idx[i] = (uint32_t)++st->n;
	return e;
}

int pl_state_del(struct pl_state *st, const char *id, size_t len)
{
	size_t mask, i, j;
	uint32_t k;

	if (!st->cap)
		return 0;
	i = find_slot(st, id, len, hash_id(id, len));
	if (!(k = st->idx[i]))
		return 0;
	/* Backward-shift deletion: pull later slots of the probe run back into
	 * the hole, so lookups need no tombstones. */
	mask = st->cap - 1;
	j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!st->idx[j])
			break;
		size_t home = st->ent[st->idx[j] - 1].hash & mask;
		int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (stays)
			continue;
		st->idx[i] = st->idx[j];
		i = j;
	}
	st->idx[i] = 0;
	/* Keep ent dense: the last entry moves into the freed place. Its id's
	 * bytes stay in the arena until the table is freed. */
	if (k != st->n) {
		st->ent[k - 1] = st->ent[st->n - 1];
		j = st->ent[k - 1].hash & mask;
		while (st->idx[j] != st->n)
			j = (j + 1) & mask;
		st->idx[j] = k;
	}
	st->n--;
	return 1;
}

static int cmp_ent(const void *a, const void *b, void *arg)
{
	const char *base = arg;
	const struct pl_state_ent *x = *(struct pl_state_ent *const *)a;
	const struct pl_state_ent *y = *(struct pl_state_ent *const *)b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(base + x->off, base + y->off, n);

	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

struct pl_state_ent **pl_state_sorted(const struct pl_state *st, size_t *n)
{
	struct pl_state_ent **v = pl_xmalloc((st->n ? st->n : 1) * sizeof *v);

	for (size_t i = 0; i < st->n; i++)
		v[i] = &st->ent[i];
	if (st->n)
		qsort_r(v, st->n, sizeof *v, cmp_ent, st->arena.p);
	*n = st->n;
	return v;
}

static void copy_stat(struct pl_state_ent *to, const struct pl_state_ent *from)
{
	to->size = from->size;
	to->mtime_ns = from->mtime_ns;
	to->ino = from->ino;
	to->flags |= PL_ENT_STAT;
}

static void clear_stat(struct pl_state_ent *e)
{
	e->size = e->mtime_ns = 0;
	e->ino = 0;
	e->flags &= ~PL_ENT_STAT;
}

void pl_state_apply(struct pl_state *st, const struct pl_state *acks,
		    const struct pl_state *pending, struct pl_commit_stats *cs)
{
	memset(cs, 0, sizeof *cs);
	for (size_t i = 0; i < acks->n; i++) {
		const struct pl_state_ent *a = &acks->ent[i];
		const char *id = pl_state_id(acks, a);
		if (a->flags & PL_ENT_DELETED) {
			pl_state_del(st, id, a->len);
			cs->deleted++;
			continue;
		}
		int created;
		struct pl_state_ent *e = pl_state_put(st, id, a->len, &created);
		const struct pl_state_ent *p = pl_state_get(pending, id, a->len);
		int had_same = !created && memcmp(e->sha, a->sha, 32) == 0;
		memcpy(e->sha, a->sha, 32);
		if (p && (p->flags & PL_ENT_STAT) && memcmp(p->sha, a->sha, 32) == 0)
			copy_stat(e, p);
		else if (!had_same)
			/* the content indexed was not the content seen at any
			 * known stat: hash it again next time */
			clear_stat(e);
		e->flags |= PL_ENT_DIRTY;
		cs->indexed++;
	}
	for (size_t i = 0; i < pending->n; i++) {
		const struct pl_state_ent *p = &pending->ent[i];
		if (!(p->flags & PL_ENT_STAT))
			continue;
		const char *id = pl_state_id(pending, p);
		if (pl_state_get(acks, id, p->len))
			continue;
		struct pl_state_ent *e = pl_state_get(st, id, p->len);
		if (!e || memcmp(e->sha, p->sha, 32) != 0 || pl_state_same_stat(e, p))
			continue;
		copy_stat(e, p);
		e->flags |= PL_ENT_DIRTY;
		cs->refreshed++;
	}
}

int pl_pending_resolved(const struct pl_state *pending, const struct pl_state_ent *p,
			const struct pl_state *acks, const struct pl_state *st)
{
	const char *id = pl_state_id(pending, p);
	const struct pl_state_ent *a = pl_state_get(acks, id, p->len);
	const struct pl_state_ent *e = pl_state_get(st, id, p->len);

	if (a && (a->flags & PL_ENT_DELETED))
		return 1;
	return e && memcmp(e->sha, p->sha, 32) == 0;
}

/* Remove from pending what a commit resolved; returns how many. */
static size_t prune_pending(struct pl_state *pending, const struct pl_state *acks,
			    const struct pl_state *st)
{
	struct pl_state keep;
	size_t dropped = 0;

	pl_state_init(&keep);
	for (size_t i = 0; i < pending->n; i++) {
		const struct pl_state_ent *p = &pending->ent[i];
		if (pl_pending_resolved(pending, p, acks, st)) {
			dropped++;
			continue;
		}
		struct pl_state_ent *k = pl_state_put(&keep, pl_state_id(pending, p), p->len, NULL);
		memcpy(k->sha, p->sha, 32);
		if (p->flags & PL_ENT_STAT)
			copy_stat(k, p);
	}
	pl_state_free(pending);
	*pending = keep;
	return dropped;
}

/* --- entries as text ------------------------------------------------------- */

void pl_state_ent_encode(const struct pl_state_ent *e, struct pl_buf *out)
{
	char hex[PL_SHA256_HEX];

	pl_hex(e->sha, 32, hex);
	pl_buf_add(out, hex, 64);
	if (e->flags & PL_ENT_STAT) {
		pl_buf_addc(out, ' ');
		pl_buf_i64(out, e->size);
		pl_buf_addc(out, ' ');
		pl_buf_i64(out, e->mtime_ns);
		pl_buf_addc(out, ' ');
		pl_buf_u64(out, e->ino);
	}
}

/* Parse an unsigned decimal s[0..n) (at most 20 digits) into *v. */
static int parse_u64(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0;

	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

static int parse_i64(const char *s, size_t n, int64_t *v)
{
	uint64_t x;
	int neg = n > 0 && s[0] == '-';

	if (parse_u64(s + neg, n - (size_t)neg, &x) < 0 || x > (uint64_t)INT64_MAX)
		return -1;
	*v = neg ? -(int64_t)x : (int64_t)x;
	return 0;
}

int pl_state_ent_decode(struct pl_state_ent *e, const char *s, size_t n)
{
	const char *f[3], *end = s + n, *p;
	size_t fl[3];

	if (n < 64 || pl_unhex(s, 64, e->sha) < 0)
		return -1;
	e->flags &= ~PL_ENT_STAT;
	if (n == 64)
		return 0;
	p = s + 64;
	for (int i = 0; i < 3; i++) {
		if (p >= end || *p != ' ')
			return -1;
		f[i] = ++p;
		while (p < end && *p != ' ')
			p++;
		fl[i] = (size_t)(p - f[i]);
	}
	if (p != end || parse_i64(f[0], fl[0], &e->size) < 0 ||
	    parse_i64(f[1], fl[1], &e->mtime_ns) < 0 || parse_u64(f[2], fl[2], &e->ino) < 0)
		return -1;
	e->flags |= PL_ENT_STAT;
	return 0;
}

/* --- the file format ------------------------------------------------------- */

static int set_err(char *err, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_err(char *err, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, PL_STATE_ERRLEN, fmt, ap);
	va_end(ap);
	return status;
}

static int member_str(const struct pl_jobj *o, const char *key, struct pl_buf *scratch,
		      const char **s, size_t *n)
{
	const struct pl_jmember *m = pl_jobj_get(o, key);
	return m ? pl_jmember_str(m, scratch, s, n, 0, NULL) : -1;
}

static int member_u64(const struct pl_jobj *o, const char *key, uint64_t *v)
{
	const struct pl_jmember *m = pl_jobj_get(o, key);
	return m && m->type == PL_JNUM ? parse_u64(m->val, m->vallen, v) : -1;
}

static int member_i64(const struct pl_jobj *o, const char *key, int64_t *v)
{
	const struct pl_jmember *m = pl_jobj_get(o, key);
	return m && m->type == PL_JNUM ? parse_i64(m->val, m->vallen, v) : -1;
}

static int read_header(const struct pl_jobj *o, const char *kind, uint64_t *count,
		       struct pl_buf *scratch, const char **what)
{
	const char *s;
	size_t n;
	uint64_t v;

	if (member_str(o, "format", scratch, &s, &n) < 0 || n != 11 ||
	    memcmp(s, "plumb-state", 11) != 0) {
		*what = "not a plumb state file (no \"format\":\"plumb-state\" header)";
		return -1;
	}
	if (member_u64(o, "version", &v) < 0 || v != PL_STATE_VERSION) {
		*what = "unsupported state format version";
		return -1;
	}
	if (member_str(o, "kind", scratch, &s, &n) < 0 || n != strlen(kind) ||
	    memcmp(s, kind, n) != 0) {
		*what = strcmp(kind, "state") == 0 ? "not a state file (wrong \"kind\")" :
			"not a pending file (wrong \"kind\")";
		return -1;
	}
	if (member_u64(o, "count", count) < 0) {
		*what = "header without a \"count\"";
		return -1;
	}
	return 0;
}

static int read_entry(struct pl_state *st, const struct pl_jobj *o, struct pl_buf *scratch,
		      const char **what)
{
	const char *id;
	size_t idn;
	int created;
	struct pl_state_ent tmp;
	int nstat;

	if (member_str(o, "id", scratch, &id, &idn) < 0 || idn == 0) {
		*what = "missing or bad \"id\"";
		return -1;
	}
	memset(&tmp, 0, sizeof tmp);
	nstat = (pl_jobj_get(o, "size") != NULL) + (pl_jobj_get(o, "mtime_ns") != NULL) +
		(pl_jobj_get(o, "ino") != NULL);
	if (nstat != 0 && (nstat != 3 || member_i64(o, "size", &tmp.size) < 0 ||
			   member_i64(o, "mtime_ns", &tmp.mtime_ns) < 0 ||
			   member_u64(o, "ino", &tmp.ino) < 0)) {
		*what = "bad \"size\", \"mtime_ns\" or \"ino\"";
		return -1;
	}
	const struct pl_jmember *m = pl_jobj_get(o, "sha256");
	if (!m || m->type != PL_JSTR || m->val_esc || m->vallen != 66 ||
	    pl_unhex(m->val + 1, 64, tmp.sha) < 0) {
		*what = "missing or bad \"sha256\"";
		return -1;
	}
	struct pl_state_ent *e = pl_state_put(st, id, idn, &created);
	if (!created) {
		*what = "duplicate id";
		return -1;
	}
	memcpy(e->sha, tmp.sha, 32);
	if (nstat) {
		e->size = tmp.size;
		e->mtime_ns = tmp.mtime_ns;
		e->ino = tmp.ino;
		e->flags |= PL_ENT_STAT;
	}
	return 0;
}

int pl_state_read_file(struct pl_state *st, const char *path, const char *kind, char *err)
{
	struct pl_lines l;
	struct pl_jobj o = { 0 };
	struct pl_jerr je;
	struct pl_buf scratch = PL_BUF_INIT;
	const char *line, *what;
	size_t len;
	uint64_t count = 0, seen = 0;
	int r, status = PL_ST_OK, header = 0;

	if (pl_lines_open(&l, path) < 0) {
		if (errno == ENOENT)
			return PL_ST_OK;
		return set_err(err, errno == EISDIR ? PL_ST_ECONFIG : PL_ST_EIO, "cannot open '%s': %s",
			       path, strerror(errno));
	}
	while ((r = pl_lines_next(&l, &line, &len)) == 1) {
		if (pl_json_scan_object(line, len, &o, &je) < 0) {
			status = set_err(err, PL_ST_EDATA, "%s:%lu: invalid JSON: %s (column %zu)",
					 path, l.lineno, je.msg, je.offset + 1);
			goto out;
		}
		if (!header) {
			if (read_header(&o, kind, &count, &scratch, &what) < 0) {
				status = set_err(err, PL_ST_EDATA, "%s:%lu: %s", path, l.lineno, what);
				goto out;
			}
			header = 1;
			continue;
		}
		if (read_entry(st, &o, &scratch, &what) < 0) {
			status = set_err(err, PL_ST_EDATA, "%s:%lu: %s", path, l.lineno, what);
			goto out;
		}
		seen++;
	}
	if (r < 0) {
		/* a directory where the state file should be is a wrong --state */
		status = set_err(err, errno == EISDIR ? PL_ST_ECONFIG : PL_ST_EIO,
				 "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	/* the count makes a truncated file detectable even at a line boundary */
	if (!header)
		status = set_err(err, PL_ST_EDATA, "%s: empty state file (no header line)", path);
	else if (seen != count)
		status = set_err(err, PL_ST_EDATA,
				 "%s: truncated state file (%llu records, header says %llu)",
				 path, (unsigned long long)seen, (unsigned long long)count);
out:
	pl_lines_close(&l);
	pl_jobj_free(&o);
	pl_buf_free(&scratch);
	return status;
}


static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return pl_xstrdup(".");
	if (slash == path)
		return pl_xstrdup("/");
	return pl_xstrndup(path, (size_t)(slash - path));
}

static int fsync_dir(const char *path)
{
	char *dir = dir_of(path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = -1;

	free(dir);
	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

int pl_state_write_file(const struct pl_state *st, const char *path, const char *tmp,
			const char *kind, char *err)
{
	struct pl_buf b = PL_BUF_INIT;
	struct pl_state_ent **v;
	size_t n;
	int fd, status = PL_ST_OK;
	char hex[PL_SHA256_HEX];

	v = pl_state_sorted(st, &n);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		status = set_err(err, PL_ST_EIO, "cannot create '%s': %s", tmp, strerror(errno));
		goto out;
	}
	pl_buf_printf(&b, "{\"format\":\"plumb-state\",\"version\":%d,\"kind\":\"%s\",\"count\":%zu}\n",
		      PL_STATE_VERSION, kind, n);
	for (size_t i = 0; i < n; i++) {
		const struct pl_state_ent *e = v[i];
		pl_buf_adds(&b, "{\"id\":");
		pl_json_put_str(&b, pl_state_id(st, e), e->len);
		pl_hex(e->sha, 32, hex);
		pl_buf_adds(&b, ",\"sha256\":\"");
		pl_buf_add(&b, hex, 64);
		pl_buf_addc(&b, '"');
		if (e->flags & PL_ENT_STAT) {
			pl_buf_adds(&b, ",\"size\":");
			pl_buf_i64(&b, e->size);
			pl_buf_adds(&b, ",\"mtime_ns\":");
			pl_buf_i64(&b, e->mtime_ns);
			pl_buf_adds(&b, ",\"ino\":");
			pl_buf_u64(&b, e->ino);
		}
		pl_buf_add(&b, "}\n", 2);
		if (b.n >= 1 << 20) {
			if (pl_write_all(fd, b.p, b.n) < 0)
				goto write_error;
			b.n = 0;
		}
	}
	if (pl_write_all(fd, b.p, b.n) < 0 || fsync(fd) < 0)
		goto write_error;
	if (close(fd) < 0) {
		fd = -1;
		goto write_error;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		status = set_err(err, PL_ST_EIO, "cannot rename '%s' to '%s': %s", tmp, path,
				 strerror(errno));
		unlink(tmp);
		goto out;
	}
	/* the rename is durable only once the directory is */
	if (fsync_dir(path) < 0)
		status = set_err(err, PL_ST_EIO, "cannot sync the directory of '%s': %s", path,
				 strerror(errno));
	goto out;
write_error:
	status = set_err(err, PL_ST_EIO, "cannot write '%s': %s", tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
	fd = -1;
	unlink(tmp);
out:
	free(v);
	pl_buf_free(&b);
	return status;
}

/* --- stores ------------------------------------------------------------------ */

struct pl_store {
	int redis;
	char *name;
	/* a file store */
	char *path, *pending, *lock, *tmp, *pending_tmp;
	/* a Redis store */
	struct pl_redisurl url;
	redisContext *c;
	int timeout_ms;
	char *k_docs, *k_pending, *k_version;
};

static char *concat(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *s = pl_xmalloc(na + nb + 1);

	memcpy(s, a, na);
	memcpy(s + na, b, nb + 1);
	return s;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

#define CONNECT_TRIES 3

/* Connect on first use, not at open: a commit may read acks for hours, and
 * an idle connection made at the start could be dropped by then. */
static int redis_connect(struct pl_store *s, char *err)
{
	char e[PL_STATE_ERRLEN];
	int config = 0;

	if (s->c)
		return PL_ST_OK;
	for (int i = 0; i < CONNECT_TRIES; i++) {
		if (i)
			sleep_ms((100L << i) + rand() % 100);
		s->c = pl_redis_connect(&s->url, s->timeout_ms, e, sizeof e, &config);
		if (s->c || config)
			break;
	}
	if (!s->c)
		return set_err(err, config ? PL_ST_ECONFIG : PL_ST_EUNAVAIL, "redis '%s': %s",
			       s->name, e);
	return PL_ST_OK;
}

int pl_store_open(struct pl_store **out, const char *spec, const char *prefix, int timeout_ms,
		  char *err)
{
	struct pl_store *s = pl_xmalloc(sizeof *s);
	char redacted[1024], e[PL_STATE_ERRLEN];

	memset(s, 0, sizeof *s);
	*out = s;
	if (pl_is_redis_url(spec)) {
		s->redis = 1;
		s->timeout_ms = timeout_ms;
		pl_redisurl_redact(spec, redacted, sizeof redacted);
		s->name = pl_xstrdup(redacted);
		if (pl_redisurl_parse(spec, &s->url, e, sizeof e) < 0)
			return set_err(err, PL_ST_ECONFIG, "'%s': %s", s->name, e);
		s->k_docs = concat(prefix, "docs");
		s->k_pending = concat(prefix, "pending");
		s->k_version = concat(prefix, "version");
		return PL_ST_OK;
	}
	s->name = pl_xstrdup(spec);
	if (!*spec || spec[strlen(spec) - 1] == '/')
		return set_err(err, PL_ST_ECONFIG, "state '%s' must name a file", spec);
	s->path = pl_xstrdup(spec);
	s->pending = concat(spec, ".pending");
	s->lock = concat(spec, ".lock");
	s->tmp = concat(spec, ".tmp");
	s->pending_tmp = concat(spec, ".pending.tmp");
	return PL_ST_OK;
}

const char *pl_store_name(const struct pl_store *s)
{
	return s->name;
}

void pl_store_close(struct pl_store *s)
{
	if (!s)
		return;
	if (s->c)
		redisFree(s->c);
	pl_redisurl_free(&s->url);
	free(s->name);
	free(s->path);
	free(s->pending);
	free(s->lock);
	free(s->tmp);
	free(s->pending_tmp);
	free(s->k_docs);
	free(s->k_pending);
	free(s->k_version);
	free(s);
}

/* mkdir -p for the directory holding path. */
static int make_parent(const char *path, char *err)
{
	char *dir = dir_of(path), failed[4096];
	int status = PL_ST_OK;

	if (pl_mkdir_p(dir, failed, sizeof failed) < 0)
		status = set_err(err, PL_ST_EIO, "cannot create directory '%s': %s", failed,
				 strerror(errno));
	free(dir);
	return status;
}

static int lock_store(struct pl_store *s, int *fd, char *err)
{
	int status = make_parent(s->path, err);

	if (status)
		return status;
	*fd = open(s->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (*fd < 0)
		return set_err(err, PL_ST_EIO, "cannot open lock file '%s': %s", s->lock,
			       strerror(errno));
	/* blocks while another commit holds it; the kernel drops the lock of a
	 * process that dies, so a crash never leaves it stuck */
	while (flock(*fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		status = set_err(err, PL_ST_EIO, "cannot lock '%s': %s", s->lock, strerror(errno));
		close(*fd);
		*fd = -1;
		return status;
	}
	return PL_ST_OK;
}

static int redis_fail(struct pl_store *s, char *err, redisReply *r, const char *what)
{
	if (!r)
		return set_err(err, PL_ST_EUNAVAIL, "redis '%s': %s: %s", s->name, what,
			       s->c->errstr[0] ? s->c->errstr : "connection lost");
	set_err(err, PL_ST_ESERVICE, "redis '%s': %s: %.*s", s->name, what, (int)r->len, r->str);
	freeReplyObject(r);
	return PL_ST_ESERVICE;
}

/* A reply that is missing (connection trouble), an error, or not of the
 * type expected; frees it. */
static int bad_reply(struct pl_store *s, char *err, redisReply *r, const char *what)
{
	if (!r || r->type == REDIS_REPLY_ERROR)
		return redis_fail(s, err, r, what);
	freeReplyObject(r);
	return set_err(err, PL_ST_ESERVICE, "redis '%s': %s: unexpected reply", s->name, what);
}

/* Read a whole hash with HSCAN into st. */
static int redis_read_hash(struct pl_store *s, const char *key, struct pl_state *st, char *err)
{
	char cursor[32] = "0";

	do {
		const char *argv[6] = { "HSCAN", key, cursor, "COUNT", "1000" };
		redisReply *r = redisCommandArgv(s->c, 5, argv, NULL);
		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY || r->element[0]->len >= sizeof cursor)
			return bad_reply(s, err, r, "HSCAN");
		memcpy(cursor, r->element[0]->str, r->element[0]->len);
		cursor[r->element[0]->len] = '\0';
		redisReply *kv = r->element[1];
		for (size_t i = 0; i + 1 < kv->elements; i += 2) {
			redisReply *f = kv->element[i], *v = kv->element[i + 1];
			struct pl_state_ent tmp;
			memset(&tmp, 0, sizeof tmp);
			if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
			    f->len == 0 || pl_state_ent_decode(&tmp, v->str, v->len) < 0) {
				set_err(err, PL_ST_EDATA, "redis '%s': key '%s': bad entry for '%.*s'",
					s->name, key, (int)(f->len > 200 ? 200 : f->len), f->str);
				freeReplyObject(r);
				return PL_ST_EDATA;
			}
			struct pl_state_ent *e = pl_state_put(st, f->str, f->len, NULL);
			memcpy(e->sha, tmp.sha, 32);
			if (tmp.flags & PL_ENT_STAT)
				copy_stat(e, &tmp);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	return PL_ST_OK;
}

static int redis_check_version(struct pl_store *s, char *err)
{
	const char *argv[2] = { "GET", s->k_version };
	redisReply *r = redisCommandArgv(s->c, 2, argv, NULL);
	int status = PL_ST_OK;

	if (!r || r->type == REDIS_REPLY_ERROR)
		return redis_fail(s, err, r, "GET");
	if (r->type == REDIS_REPLY_STRING && !(r->len == 1 && r->str[0] == '0' + PL_STATE_VERSION))
		status = set_err(err, PL_ST_EDATA, "redis '%s': key '%s': unsupported state version '%.*s'",
				 s->name, s->k_version, (int)(r->len > 20 ? 20 : r->len), r->str);
	freeReplyObject(r);
	return status;
}

int pl_store_load(struct pl_store *s, struct pl_state *st, char *err)
{
	int status;

	if (!s->redis)
		return pl_state_read_file(st, s->path, "state", err);
	if ((status = redis_connect(s, err)) || (status = redis_check_version(s, err)))
		return status;
	return redis_read_hash(s, s->k_docs, st, err);
}

/* Commands are appended (pipelined) and their replies read back in groups,
 * so a large state costs round trips per thousand entries, not per entry. */
struct pipe {
	struct pl_store *s;
	size_t queued;		/* commands sent whose replies are unread */
	struct pl_buf data;	/* the current command's arguments, back to back */
	size_t *off, nargs, cap;
	int in_multi;
};

static void arg_add(struct pipe *p, const char *s, size_t n)
{
	if (p->nargs == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->off = pl_xrealloc(p->off, (p->cap + 1) * sizeof *p->off);
	}
	if (p->nargs == 0)
		p->data.n = 0;
	p->off[p->nargs++] = p->data.n;
	pl_buf_add(&p->data, s, n);
	p->off[p->nargs] = p->data.n;
}

static void arg_adds(struct pipe *p, const char *s)
{
	arg_add(p, s, strlen(s));
}

/* Read replies until at most keep are outstanding; any error fails. */
static int pipe_drain(struct pipe *p, size_t keep, char *err)
{
	while (p->queued > keep) {
		void *rv = NULL;
		if (redisGetReply(p->s->c, &rv) != REDIS_OK)
			return redis_fail(p->s, err, NULL, "pipeline");
		redisReply *r = rv;
		p->queued--;
		if (r->type == REDIS_REPLY_ERROR)
			return redis_fail(p->s, err, r, "pipeline");
		freeReplyObject(r);
	}
	return PL_ST_OK;
}

static int pipe_send(struct pipe *p, char *err)
{
	const char **argv = pl_xmalloc(p->nargs * sizeof *argv);
	size_t *lens = pl_xmalloc(p->nargs * sizeof *lens);
	int r;

	for (size_t i = 0; i < p->nargs; i++) {
		argv[i] = p->data.p + p->off[i];
		lens[i] = p->off[i + 1] - p->off[i];
	}
	r = redisAppendCommandArgv(p->s->c, (int)p->nargs, argv, lens);
	free(argv);
	free(lens);
	p->nargs = 0;
	if (r != REDIS_OK)
		return redis_fail(p->s, err, NULL, "send");
	p->queued++;
	if (p->queued >= 512)
		return pipe_drain(p, 0, err);
	return PL_ST_OK;
}

static void pipe_free(struct pipe *p)
{
	pl_buf_free(&p->data);
	free(p->off);
}

/* Send EXEC, read every reply before it, then its own: *aborted is set when
 * a WATCHed key changed and nothing was done. */
static int pipe_exec(struct pipe *p, int *aborted, char *err)
{
	void *rv = NULL;
	int status;

	*aborted = 0;
	if (redisAppendCommand(p->s->c, "EXEC") != REDIS_OK)
		return redis_fail(p->s, err, NULL, "send");
	if ((status = pipe_drain(p, 0, err)))
		return status;
	if (redisGetReply(p->s->c, &rv) != REDIS_OK)
		return redis_fail(p->s, err, NULL, "EXEC");
	redisReply *r = rv;
	if (r->type == REDIS_REPLY_NIL) {
		*aborted = 1;
	} else if (r->type != REDIS_REPLY_ARRAY) {
		return bad_reply(p->s, err, r, "EXEC");
	} else {
		for (size_t i = 0; i < r->elements && !status; i++)
			if (r->element[i]->type == REDIS_REPLY_ERROR)
				status = set_err(err, PL_ST_ESERVICE, "redis '%s': EXEC: %.*s",
						 p->s->name, (int)r->element[i]->len,
						 r->element[i]->str);
	}
	freeReplyObject(r);
	return status;
}

#define BATCH 500	/* fields per HSET, HDEL or HMGET */

/* HSET key with the encoded entries v[0..n), in batches. */
static int pipe_hset(struct pipe *p, const char *key, const struct pl_state *st,
		     struct pl_state_ent **v, size_t n, char *err)
{
	struct pl_buf val = PL_BUF_INIT;
	int status = PL_ST_OK;

	for (size_t i = 0; i < n && !status; i += BATCH) {
		arg_adds(p, "HSET");
		arg_adds(p, key);
		for (size_t j = i; j < n && j < i + BATCH; j++) {
			arg_add(p, pl_state_id(st, v[j]), v[j]->len);
			val.n = 0;
			pl_state_ent_encode(v[j], &val);
			arg_add(p, val.p, val.n);
		}
		status = pipe_send(p, err);
	}
	pl_buf_free(&val);
	return status;
}

int pl_store_load_pending(struct pl_store *s, struct pl_state *pending, char *err)
{
	int status;

	if (!s->redis)
		return pl_state_read_file(pending, s->pending, "pending", err);
	if ((status = redis_connect(s, err)) || (status = redis_check_version(s, err)))
		return status;
	return redis_read_hash(s, s->k_pending, pending, err);
}

int pl_store_put_pending(struct pl_store *s, const struct pl_state *pending, char *err)
{
	struct pl_state_ent **v;
	size_t n;
	int status, lockfd = -1;

	if (!s->redis) {
		if ((status = lock_store(s, &lockfd, err)))
			return status;
		status = pl_state_write_file(pending, s->pending, s->pending_tmp, "pending", err);
		close(lockfd);
		return status;
	}

	if ((status = redis_connect(s, err)))
		return status;
	/* Build the new pending hash under a temporary key and RENAME it into
	 * place, so a reader sees the old record or the new one; the expiry
	 * cleans up after a run killed half way. */
	struct pipe p = { s, 0, PL_BUF_INIT, NULL, 0, 0, 0 };
	char tmpkey[512];
	v = pl_state_sorted(pending, &n);
	snprintf(tmpkey, sizeof tmpkey, "%s.tmp.%ld.%d", s->k_pending, (long)getpid(), rand());
	if (n == 0) {
		arg_adds(&p, "DEL");
		arg_adds(&p, s->k_pending);
		status = pipe_send(&p, err);
	} else {
		arg_adds(&p, "DEL");
		arg_adds(&p, tmpkey);
		status = pipe_send(&p, err);
		if (!status)
			status = pipe_hset(&p, tmpkey, pending, v, n < BATCH ? n : BATCH, err);
		if (!status) {
			arg_adds(&p, "EXPIRE");
			arg_adds(&p, tmpkey);
			arg_adds(&p, "3600");
			status = pipe_send(&p, err);
		}
		if (!status && n > BATCH)
			status = pipe_hset(&p, tmpkey, pending, v + BATCH, n - BATCH, err);
		const char *cmds[][3] = { { "MULTI" }, { "RENAME", tmpkey, s->k_pending },
					  { "PERSIST", s->k_pending } };
		const int argc[] = { 1, 3, 2 };
		for (int i = 0; i < 3 && !status; i++) {
			for (int j = 0; j < argc[i]; j++)
				arg_adds(&p, cmds[i][j]);
			status = pipe_send(&p, err);
		}
		int aborted;
		if (!status)
			status = pipe_exec(&p, &aborted, err);
	}
	if (!status)
		status = pipe_drain(&p, 0, err);
	pipe_free(&p);
	free(v);
	return status;
}

static int file_commit(struct pl_store *s, const struct pl_state *acks,
		       struct pl_commit_stats *cs, char *err)
{
	struct pl_state st, pending;
	int status, lockfd;

	if ((status = lock_store(s, &lockfd, err)))
		return status;
	/* Re-read under the lock: a commit that finished while we waited is
	 * in the file now, and we build on it instead of overwriting it. */
	pl_state_init(&st);
	pl_state_init(&pending);
	if (!(status = pl_state_read_file(&st, s->path, "state", err)) &&
	    !(status = pl_state_read_file(&pending, s->pending, "pending", err))) {
		pl_state_apply(&st, acks, &pending, cs);
		status = pl_state_write_file(&st, s->path, s->tmp, "state", err);
		/* state first: a crash between the two leaves a pending entry
		 * that the next run finds resolved, never the reverse */
		if (!status && prune_pending(&pending, acks, &st))
			status = pl_state_write_file(&pending, s->pending, s->pending_tmp, "pending",
						     err);
	}
	close(lockfd);
	pl_state_free(&st);
	pl_state_free(&pending);
	return status;
}

/* HMGET the ids in want from the docs hash into cur. */
static int redis_read_some(struct pl_store *s, const struct pl_state *want, struct pl_state *cur,
			   char *err)
{
	struct pl_state_ent **v;
	size_t n;
	int status = PL_ST_OK;

	v = pl_state_sorted(want, &n);
	for (size_t i = 0; i < n && !status; i += BATCH) {
		size_t m = n - i < BATCH ? n - i : BATCH;
		const char **argv = pl_xmalloc((m + 2) * sizeof *argv);
		size_t *lens = pl_xmalloc((m + 2) * sizeof *lens);
		argv[0] = "HMGET";
		lens[0] = 5;
		argv[1] = s->k_docs;
		lens[1] = strlen(s->k_docs);
		for (size_t j = 0; j < m; j++) {
			argv[j + 2] = pl_state_id(want, v[i + j]);
			lens[j + 2] = v[i + j]->len;
		}
		redisReply *r = redisCommandArgv(s->c, (int)m + 2, argv, lens);
		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != m) {
			status = bad_reply(s, err, r, "HMGET");
		} else {
			for (size_t j = 0; j < m; j++) {
				redisReply *x = r->element[j];
				if (x->type != REDIS_REPLY_STRING)
					continue;
				struct pl_state_ent tmp;
				memset(&tmp, 0, sizeof tmp);
				if (pl_state_ent_decode(&tmp, x->str, x->len) < 0) {
					status = set_err(err, PL_ST_EDATA, "redis '%s': bad entry for '%s'",
							 s->name, argv[j + 2]);
					break;
				}
				struct pl_state_ent *e = pl_state_put(cur, argv[j + 2], lens[j + 2], NULL);
				memcpy(e->sha, tmp.sha, 32);
				if (tmp.flags & PL_ENT_STAT)
					copy_stat(e, &tmp);
			}
			freeReplyObject(r);
		}
		free(argv);
		free(lens);
	}
	free(v);
	return status;
}

#define COMMIT_TRIES 50

/* HDEL each field of ARGV's (field, value) pairs whose value is unchanged. */
#define PENDING_CAS_DEL                                                        \
	"for i = 1, #ARGV, 2 do "                                              \
	"if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then "         \
	"redis.call('HDEL', KEYS[1], ARGV[i]) end end return 0"

static int redis_commit(struct pl_store *s, const struct pl_state *acks,
			struct pl_commit_stats *cs, char *err)
{
	struct pl_state pending, want, cur;
	struct pl_state_ent **v = NULL;
	size_t n;
	int status;

	pl_state_init(&pending);
	pl_state_init(&want);
	if ((status = redis_check_version(s, err)) ||
	    (status = redis_read_hash(s, s->k_pending, &pending, err)))
		goto out;

	/* The entries whose outcome depends on the stored state: refreshes,
	 * and acks without a matching pending stat (which keep a stat only if
	 * the stored sha already equals theirs). Acks alone are blind field
	 * writes and need no reads, so concurrent commits never conflict. */
	for (size_t i = 0; i < pending.n; i++) {
		const struct pl_state_ent *p = &pending.ent[i];
		if (!pl_state_get(acks, pl_state_id(&pending, p), p->len))
			pl_state_put(&want, pl_state_id(&pending, p), p->len, NULL);
	}
	for (size_t i = 0; i < acks->n; i++) {
		const struct pl_state_ent *a = &acks->ent[i];
		if (a->flags & PL_ENT_DELETED)
			continue;
		const struct pl_state_ent *p = pl_state_get(&pending, pl_state_id(acks, a), a->len);
		if (!p || !(p->flags & PL_ENT_STAT) || memcmp(p->sha, a->sha, 32) != 0)
			pl_state_put(&want, pl_state_id(acks, a), a->len, NULL);
	}

	for (int attempt = 0; attempt < COMMIT_TRIES; attempt++) {
		struct pipe p = { s, 0, PL_BUF_INIT, NULL, 0, 0, 0 };
		if (attempt)
			sleep_ms(5 + rand() % (10 * attempt + 10));
		pl_state_init(&cur);
		if (want.n) {
			/* optimistic: EXEC fails if another commit touched
			 * the hash between our reads and our writes */
			const char *argv[2] = { "WATCH", s->k_docs };
			redisReply *r = redisCommandArgv(s->c, 2, argv, NULL);
			if (!r || r->type == REDIS_REPLY_ERROR) {
				status = redis_fail(s, err, r, "WATCH");
				pl_state_free(&cur);
				goto out;
			}
			freeReplyObject(r);
			if ((status = redis_read_some(s, &want, &cur, err))) {
				pl_state_free(&cur);
				goto out;
			}
		}
		pl_state_apply(&cur, acks, &pending, cs);

		arg_adds(&p, "MULTI");
		status = pipe_send(&p, err);
		/* deletes: every deleted ack, in batches of fields */
		free(v);
		v = pl_state_sorted(acks, &n);
		for (size_t i = 0; i < n && !status;) {
			size_t k = 0;
			for (; i < n && k < BATCH; i++) {
				if (!(v[i]->flags & PL_ENT_DELETED))
					continue;
				if (!k) {
					arg_adds(&p, "HDEL");
					arg_adds(&p, s->k_docs);
				}
				arg_add(&p, pl_state_id(acks, v[i]), v[i]->len);
				k++;
			}
			if (k)
				status = pipe_send(&p, err);
		}
		free(v);
		v = pl_state_sorted(&cur, &n);
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (v[i]->flags & PL_ENT_DIRTY)
				v[k++] = v[i];
		if (!status)
			status = pipe_hset(&p, s->k_docs, &cur, v, k, err);
		/* and the pending entries this commit resolves, each only if it
		 * still holds what we read: a discover-diff run may have
		 * replaced the pending hash since, with a newer entry for the
		 * same document that this commit does not resolve. Redis has
		 * no conditional HDEL, hence the script. */
		struct pl_buf val = PL_BUF_INIT;
		for (size_t i = 0; i < pending.n && !status;) {
			size_t k2 = 0;
			for (; i < pending.n && k2 < BATCH; i++) {
				const struct pl_state_ent *pe = &pending.ent[i];
				if (!pl_pending_resolved(&pending, pe, acks, &cur))
					continue;
				if (!k2) {
					arg_adds(&p, "EVAL");
					arg_adds(&p, PENDING_CAS_DEL);
					arg_adds(&p, "1");
					arg_adds(&p, s->k_pending);
				}
				arg_add(&p, pl_state_id(&pending, pe), pe->len);
				val.n = 0;
				pl_state_ent_encode(pe, &val);
				arg_add(&p, val.p, val.n);
				k2++;
			}
			if (k2)
				status = pipe_send(&p, err);
		}
		pl_buf_free(&val);
		if (!status) {
			arg_adds(&p, "SET");
			arg_adds(&p, s->k_version);
			char ver[16];
			snprintf(ver, sizeof ver, "%d", PL_STATE_VERSION);
			arg_adds(&p, ver);
			status = pipe_send(&p, err);
		}
		int aborted = 0;
		if (!status)
			status = pipe_exec(&p, &aborted, err);
		pipe_free(&p);
		pl_state_free(&cur);
		if (status || !aborted)
			goto out;
	}
	status = set_err(err, PL_ST_EBUSY, "redis '%s': gave up after %d conflicting concurrent commits",
			 s->name, COMMIT_TRIES);
out:
	free(v);
	pl_state_free(&pending);
	pl_state_free(&want);
	return status;
}

int pl_store_commit(struct pl_store *s, const struct pl_state *acks, struct pl_commit_stats *cs,
		    char *err)
{
	int status;

	if (!s->redis)
		return file_commit(s, acks, cs, err);
	if ((status = redis_connect(s, err)))
		return status;
	return redis_commit(s, acks, cs, err);
}
