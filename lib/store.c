/* dagrun's artifact store (store.h): a run directory or Redis.
 *
 * Redis layout, every key starting with P = "plumb:{RUN}:":
 *
 *   P run                 hash: chunk size, ttl, creation time: the run exists
 *   P m:KEY               hash of one output: g = its current generation, and
 *                         for generation G: aG attempt, sG size, dG status once
 *                         done, kG "c" when it is spliced from other outputs
 *   P c:KEY:G:I           bytes [I*chunk, (I+1)*chunk) of generation G
 *   P z:KEY:G             a spliced generation's parts: a sorted set scored by
 *                         the offset where each part starts, members
 *                         "SIZE GEN PARTKEY"
 *   P v:NAME              hash of small values (exit status, outputs)
 *   P n:KEY               pub/sub channel: KEY changed
 *
 * Why chunk keys written with APPEND rather than a list or a stream: an
 * offset maps to one key and one GETRANGE (a list or a stream would need an
 * index of entry offsets, or fixed-size entries, which streamed output does
 * not give), chunks grow in place as output trickles in, and every value
 * stays far below Redis's 512 MB cap. A chunk completed by several appends is
 * written once more whole with SET, so that Redis holds it in one exact
 * allocation instead of the doubled buffer APPEND leaves behind.
 *
 * Every write is one MULTI/EXEC that also sets sG and reads g back: readers
 * (who read sG and the chunks in one MULTI too) never see bytes the size does
 * not cover, and a writer whose generation was replaced learns it at once,
 * having written only keys of its own generation, which it then deletes.
 *
 * Why pub/sub for waiting: the scheduler's loop is poll()-based, and one
 * subscribed connection, whatever the number of keys followed, is just a
 * descriptor that becomes readable when a writer PUBLISHes; a lost message
 * costs at most PL_ART_RECHECK_MS, since readers re-check sizes anyway.
 * (BLPOP or XREAD BLOCK hold their connection until they return, so a poll()
 * loop would need one per wait besides the one for commands; keyspace
 * notifications need the server configured for them.)
 *
 * Connections that drop are made again and the command retried when that is
 * safe: reads always, appends after checking from the size whether the lost
 * transaction ran. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "exitcode.h"
#include "fs.h"
#include "redisurl.h"

#define MAX_PIECES 16		/* chunks written or read per transaction */
#define BATCH 512		/* commands per pipelined batch (refresh, delete) */
#define TRIES 3

struct follow {
	char *key;
	int wd;			/* directory: its inotify watch */
};

struct pl_art {
	char err[512];
	char *run;
	/* a directory */
	char *tasks;		/* DIR/tasks */
	int ifd;		/* inotify, made on the first follow */
	/* Redis */
	int redis;
	struct pl_redisurl url;
	char *shown;		/* the URL without its password, for messages */
	int timeout_ms;
	redisContext *rc;	/* commands */
	redisContext *sub;	/* subscriptions */
	int ioerr;		/* the last failure was the connection's */
	char *prefix;
	size_t plen, chunk;
	long ttl;
	struct pl_buf kb;	/* key names being built */
	/* the last part of a spliced output a read went to */
	char *cc_key, *cc_part;
	uint64_t cc_gen, cc_pgen;
	int64_t cc_start, cc_size;
	/* waiting */
	struct follow *fl;
	size_t nfl;
	int pending;
};

struct pl_art_writer {
	struct pl_art *s;
	char *key;
	int attempt;
	uint64_t gen;
	int64_t size;
	int mode;		/* 0 nothing yet, 1 appended, 2 spliced */
	int fd;			/* directory: the file */
	char *cur;		/* Redis: the current chunk's bytes so far */
	size_t curlen;
	double refreshed;	/* when every key of ours last had its TTL set */
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int fail(struct pl_art *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct pl_art *s, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	return rc;
}

const char *pl_art_errstr(const struct pl_art *s)
{
	return s->err;
}

int pl_art_is_redis(const struct pl_art *s)
{
	return s->redis;
}

size_t pl_art_chunk(const struct pl_art *s)
{
	return s->redis ? s->chunk : 0;
}

long pl_art_ttl(const struct pl_art *s)
{
	return s->redis ? s->ttl : 0;
}

/* A key: a relative path of non-empty components, none "." or "..", printable. */
static int bad_key(struct pl_art *s, const char *key)
{
	size_t n = strlen(key);
	const char *p = key;

	if (n == 0 || n > 1024 || key[0] == '/' || key[n - 1] == '/')
		return fail(s, PL_ART_ERR, "bad key '%.100s'", key);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return fail(s, PL_ART_ERR, "bad key: control character");
	while (*p) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return fail(s, PL_ART_ERR, "bad key '%.100s'", key);
		p += l + (e != NULL);
	}
	return 0;
}

static int bad_field(struct pl_art *s, const char *f)
{
	size_t n = strlen(f);

	if (n == 0 || n > 128 || strcmp(f, ".") == 0 || strcmp(f, "..") == 0)
		return fail(s, PL_ART_ERR, "bad field name '%.100s'", f);
	for (size_t i = 0; i < n; i++)
		if (!((f[i] >= 'a' && f[i] <= 'z') || (f[i] >= 'A' && f[i] <= 'Z') ||
		      (f[i] >= '0' && f[i] <= '9') || strchr("_-.", f[i])))
			return fail(s, PL_ART_ERR, "bad field name '%.100s'", f);
	return 0;
}

/* ===== Redis ============================================================== */

/* A key name in s->kb: the prefix, then fmt. Valid until the next call. */
static const char *kn(struct pl_art *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static const char *kn(struct pl_art *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	s->kb.n = 0;
	pl_buf_add(&s->kb, s->prefix, s->plen);
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	pl_buf_reserve(&s->kb, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s->kb.p + s->kb.n, (size_t)n + 1, fmt, ap);
	va_end(ap);
	s->kb.n += (size_t)n;
	return s->kb.p;
}

/* Make the command connection again, a few times over a second or so. */
static int reconnect(struct pl_art *s)
{
	char e[400];
	int config = 0;

	if (s->rc)
		redisFree(s->rc);
	s->rc = NULL;
	for (int i = 0; i < TRIES; i++) {
		if (i)
			sleep_ms(100 * i * i);
		s->rc = pl_redis_connect(&s->url, s->timeout_ms, e, sizeof e, &config);
		if (s->rc || config)
			break;
	}
	if (!s->rc) {
		fail(s, PL_ART_ERR, "redis %s: %s", s->shown, e);
		/* a context that fails every command, so callers need no NULL checks */
		if (!(s->rc = redisConnectUnix("/nonexistent/plumb-store")))
			abort();	/* out of memory, as pl_xmalloc treats it */
		return -1;
	}
	return 0;
}

/* Queue one command (hiredis copies its arguments now). */
#define Q(s, ...) redisAppendCommand((s)->rc, __VA_ARGS__)

/* Send MULTI, the nq commands queued after it and EXEC, and return EXEC's
 * reply (an array of nq replies), or NULL with the error set: s->ioerr says
 * whether the connection failed (it has then been made again, and whether
 * the commands ran is unknown). */
static redisReply *txn_end(struct pl_art *s, int nq)
{
	redisReply *r = NULL, *res = NULL;
	int bad = 0;

	s->ioerr = 0;
	Q(s, "EXEC");
	for (int i = 0; i < nq + 2; i++) {
		if (redisGetReply(s->rc, (void **)&r) != REDIS_OK) {
			fail(s, PL_ART_ERR, "redis %s: %s", s->shown,
			     s->rc->errstr[0] ? s->rc->errstr : "connection lost");
			if (res)
				freeReplyObject(res);
			s->ioerr = 1;
			char keep[sizeof s->err];
			memcpy(keep, s->err, sizeof keep);
			if (reconnect(s) == 0)
				memcpy(s->err, keep, sizeof keep);
			return NULL;
		}
		if (r->type == REDIS_REPLY_ERROR && !bad) {
			fail(s, PL_ART_ERR, "redis: %.*s", (int)r->len, r->str);
			bad = 1;
		}
		if (i == nq + 1 && r->type == REDIS_REPLY_ARRAY && !bad)
			res = r;
		else
			freeReplyObject(r);
	}
	if (!res) {
		if (!bad)
			fail(s, PL_ART_ERR, "redis: transaction failed");
		return NULL;
	}
	for (size_t i = 0; i < res->elements; i++)
		if (res->element[i]->type == REDIS_REPLY_ERROR) {
			fail(s, PL_ART_ERR, "redis: %.*s", (int)res->element[i]->len,
			     res->element[i]->str);
			freeReplyObject(res);
			return NULL;
		}
	return res;
}

static void txn_begin(struct pl_art *s)
{
	Q(s, "MULTI");
}

/* Read n pipelined replies, ignoring them but for errors. */
static int drain_replies(struct pl_art *s, int n)
{
	redisReply *r;
	int rc = 0;

	s->ioerr = 0;
	for (int i = 0; i < n; i++) {
		if (redisGetReply(s->rc, (void **)&r) != REDIS_OK) {
			fail(s, PL_ART_ERR, "redis %s: %s", s->shown,
			     s->rc->errstr[0] ? s->rc->errstr : "connection lost");
			s->ioerr = 1;
			reconnect(s);
			return -1;
		}
		if (r->type == REDIS_REPLY_ERROR && !rc)
			rc = fail(s, PL_ART_ERR, "redis: %.*s", (int)r->len, r->str);
		freeReplyObject(r);
	}
	return rc;
}

static int reply_u64(const redisReply *r, uint64_t *v)
{
	char *end;

	if (r->type == REDIS_REPLY_INTEGER) {
		*v = (uint64_t)r->integer;
		return 0;
	}
	if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20)
		return -1;
	errno = 0;
	*v = strtoull(r->str, &end, 10);
	return errno || end != r->str + r->len ? -1 : 0;
}

static int reply_i64(const redisReply *r, int64_t *v)
{
	uint64_t u;
	if (r->type == REDIS_REPLY_STRING && r->len && r->str[0] == '-') {
		char *end;
		errno = 0;
		long long x = strtoll(r->str, &end, 10);
		if (errno || end != r->str + r->len)
			return -1;
		*v = x;
		return 0;
	}
	if (reply_u64(r, &u) < 0 || u > INT64_MAX)
		return -1;
	*v = (int64_t)u;
	return 0;
}

static int64_t nchunks(const struct pl_art *s, int64_t size)
{
	return (size + (int64_t)s->chunk - 1) / (int64_t)s->chunk;
}

/* A field of a HGETALL reply, or NULL. */
static const redisReply *hfield(const redisReply *h, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
		if (h->element[i]->len == n && memcmp(h->element[i]->str, name, n) == 0)
			return h->element[i + 1];
	return NULL;
}

/* Whether the run's own hash is still there (0 gone, 1 there, -1 error). */
static int run_exists(struct pl_art *s)
{
	for (int t = 0; t < TRIES; t++) {
		const char *k = kn(s, "run");
		redisReply *r = redisCommand(s->rc, "EXISTS %b", k, s->kb.n);
		if (!r) {
			fail(s, PL_ART_ERR, "redis %s: %s", s->shown,
			     s->rc->errstr[0] ? s->rc->errstr : "connection lost");
			if (reconnect(s) < 0)
				return -1;
			continue;
		}
		int there = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
		freeReplyObject(r);
		return there;
	}
	return -1;
}

static int gone_or_missing(struct pl_art *s, const char *key)
{
	int e = run_exists(s);
	if (e < 0)
		return PL_ART_ERR;
	if (e == 0)
		return fail(s, PL_ART_GONE, "run '%s' is gone from %s (expired or deleted)", s->run,
			    s->shown);
	return fail(s, PL_ART_MISSING, "no output '%s' in run '%s'", key, s->run);
}

/* Delete generation gen of key: its chunks (the first n), fields and parts. */
static void drop_gen(struct pl_art *s, const char *key, uint64_t gen, int64_t n)
{
	int q = 0;
	for (int64_t i = 0; i < n; i++) {
		const char *k = kn(s, "c:%s:%" PRIu64 ":%" PRId64, key, gen, i);
		Q(s, "UNLINK %b", k, s->kb.n);
		if (++q == BATCH) {
			drain_replies(s, q);
			q = 0;
		}
	}
	const char *z = kn(s, "z:%s:%" PRIu64, key, gen);
	Q(s, "UNLINK %b", z, s->kb.n);
	char fa[32], fs[32], fd[32], fk[32];
	snprintf(fa, sizeof fa, "a%" PRIu64, gen);
	snprintf(fs, sizeof fs, "s%" PRIu64, gen);
	snprintf(fd, sizeof fd, "d%" PRIu64, gen);
	snprintf(fk, sizeof fk, "k%" PRIu64, gen);
	const char *m = kn(s, "m:%s", key);
	Q(s, "HDEL %b %s %s %s %s", m, s->kb.n, fa, fs, fd, fk);
	drain_replies(s, q + 2);
}

/* Set the TTL of every chunk of w's generation, and of its parts' keys. */
static int refresh(struct pl_art_writer *w)
{
	struct pl_art *s = w->s;
	int q = 0, rc = 0;

	w->refreshed = mono();
	if (w->mode != 2) {
		for (int64_t i = 0; i < nchunks(s, w->size); i++) {
			const char *k = kn(s, "c:%s:%" PRIu64 ":%" PRId64, w->key, w->gen, i);
			Q(s, "EXPIRE %b %ld", k, s->kb.n, s->ttl);
			if (++q == BATCH) {
				rc |= drain_replies(s, q);
				q = 0;
			}
		}
		return rc | drain_replies(s, q);
	}
	const char *z = kn(s, "z:%s:%" PRIu64, w->key, w->gen);
	redisReply *parts = redisCommand(s->rc, "ZRANGE %b 0 -1", z, s->kb.n);
	if (!parts || parts->type != REDIS_REPLY_ARRAY) {
		if (parts)
			freeReplyObject(parts);
		else
			reconnect(s);
		return fail(s, PL_ART_ERR, "redis: cannot list the parts of '%s'", w->key);
	}
	for (size_t p = 0; p < parts->elements; p++) {
		long long psize;
		unsigned long long pgen;
		int at = 0;
		const redisReply *e = parts->element[p];
		if (sscanf(e->str, "%lld %llu %n", &psize, &pgen, &at) != 2 || !at)
			continue;
		const char *pk = e->str + at;
		const char *m = kn(s, "m:%s", pk);
		Q(s, "EXPIRE %b %ld", m, s->kb.n, s->ttl);
		q++;
		for (int64_t i = 0; i < nchunks(s, psize); i++) {
			const char *k = kn(s, "c:%s:%llu:%" PRId64, pk, pgen, i);
			Q(s, "EXPIRE %b %ld", k, s->kb.n, s->ttl);
			if (++q == BATCH) {
				rc |= drain_replies(s, q);
				q = 0;
			}
		}
	}
	freeReplyObject(parts);
	return rc | drain_replies(s, q);
}

/* After a transaction of w's: is w's generation still the current one? */
static int check_gen(struct pl_art_writer *w, const redisReply *g)
{
	uint64_t cur;

	if (g->type == REDIS_REPLY_NIL) {
		drop_gen(w->s, w->key, w->gen, nchunks(w->s, w->size) + MAX_PIECES);
		return fail(w->s, PL_ART_GONE, "run '%s' is gone from %s (expired or deleted)",
			    w->s->run, w->s->shown);
	}
	if (reply_u64(g, &cur) < 0)
		return fail(w->s, PL_ART_ERR, "redis: bad generation of '%s'", w->key);
	if (cur != w->gen) {
		drop_gen(w->s, w->key, w->gen, nchunks(w->s, w->size) + MAX_PIECES);
		return fail(w->s, PL_ART_REPLACED, "'%s' was replaced by a newer writer", w->key);
	}
	return PL_ART_OK;
}

static struct pl_art_writer *redis_writer(struct pl_art *s, struct pl_art_writer *w)
{
	redisReply *r = NULL, *old;
	uint64_t g;

	/* a new generation: the old one's fields come back with it */
	for (int t = 0; t < TRIES && !r; t++) {
		txn_begin(s);
		const char *m = kn(s, "m:%s", w->key);
		Q(s, "HGETALL %b", m, s->kb.n);
		Q(s, "HINCRBY %b g 1", m, s->kb.n);
		const char *run = kn(s, "run");
		Q(s, "EXISTS %b", run, s->kb.n);
		r = txn_end(s, 3);
		if (!r && !s->ioerr)
			break;
	}
	if (!r)
		return NULL;
	old = r->element[0];
	if (r->element[2]->integer == 0) {
		/* the run is gone: take back the hash HINCRBY made */
		const char *m = kn(s, "m:%s", w->key);
		freeReplyObject(redisCommand(s->rc, "UNLINK %b", m, s->kb.n));
		freeReplyObject(r);
		fail(s, PL_ART_GONE, "run '%s' is gone from %s (expired or deleted)", s->run, s->shown);
		return NULL;
	}
	w->gen = g = (uint64_t)r->element[1]->integer;
	/* older generations to delete: those whose size the hash holds */
	uint64_t *olds = NULL;
	int64_t *osz = NULL;
	size_t nold = 0;
	for (size_t i = 0; old->type == REDIS_REPLY_ARRAY && i + 1 < old->elements; i += 2) {
		const redisReply *f = old->element[i];
		uint64_t h;
		int64_t sz;
		char *end;
		if (f->len < 2 || f->str[0] != 's')
			continue;
		errno = 0;
		h = strtoull(f->str + 1, &end, 10);
		if (errno || end != f->str + f->len || h >= g ||
		    reply_i64(old->element[i + 1], &sz) < 0)
			continue;
		olds = pl_xrealloc(olds, (nold + 1) * sizeof *olds);
		osz = pl_xrealloc(osz, (nold + 1) * sizeof *osz);
		olds[nold] = h;
		osz[nold++] = sz;
	}
	freeReplyObject(r);
	r = NULL;
	for (int t = 0; t < TRIES && !r; t++) {
		char fa[32], fs[32];
		snprintf(fa, sizeof fa, "a%" PRIu64, g);
		snprintf(fs, sizeof fs, "s%" PRIu64, g);
		txn_begin(s);
		const char *m = kn(s, "m:%s", w->key);
		Q(s, "HSET %b %s %d %s 0", m, s->kb.n, fa, w->attempt, fs);
		Q(s, "EXPIRE %b %ld", m, s->kb.n, s->ttl);
		const char *run = kn(s, "run");
		Q(s, "EXPIRE %b %ld", run, s->kb.n, s->ttl);
		const char *ch = kn(s, "n:%s", w->key);
		Q(s, "PUBLISH %b start", ch, s->kb.n);
		r = txn_end(s, 4);
		if (!r && !s->ioerr)
			break;
	}
	if (r)
		freeReplyObject(r);
	for (size_t i = 0; i < nold; i++)
		drop_gen(s, w->key, olds[i], nchunks(s, osz[i]));
	free(olds);
	free(osz);
	if (!r)
		return NULL;
	w->cur = pl_xmalloc(s->chunk);
	w->refreshed = mono();
	return w;
}

/* One transaction: up to MAX_PIECES chunks' worth of p. Returns how many
 * bytes went (0 < k <= n), or a PL_ART_* error. */
static ssize_t redis_append_some(struct pl_art_writer *w, const char *p, size_t n)
{
	struct pl_art *s = w->s;
	size_t C = s->chunk, took = 0;
	int64_t size = w->size;
	int nq = 0, pieces = 0;
	redisReply *r;
	char fs[32];

	snprintf(fs, sizeof fs, "s%" PRIu64, w->gen);
	for (int t = 0;; t++) {
		txn_begin(s);
		took = 0;
		nq = 0;
		size = w->size;
		for (pieces = 0; pieces < MAX_PIECES && took < n; pieces++) {
			int64_t i = size / (int64_t)C;
			size_t within = (size_t)(size % (int64_t)C), len = C - within;
			if (len > n - took)
				len = n - took;
			const char *k = kn(s, "c:%s:%" PRIu64 ":%" PRId64, w->key, w->gen, i);
			if (within > 0 && within + len == C) {
				/* completed after earlier appends: once more whole, exactly sized */
				memcpy(w->cur + within, p + took, len);
				Q(s, "SET %b %b EX %ld", k, s->kb.n, w->cur, C, s->ttl);
				nq++;
			} else {
				Q(s, "APPEND %b %b", k, s->kb.n, p + took, len);
				Q(s, "EXPIRE %b %ld", k, s->kb.n, s->ttl);
				nq += 2;
			}
			took += len;
			size += (int64_t)len;
		}
		const char *m = kn(s, "m:%s", w->key);
		Q(s, "HSET %b %s %lld", m, s->kb.n, fs, (long long)size);
		Q(s, "HGET %b g", m, s->kb.n);
		Q(s, "EXPIRE %b %ld", m, s->kb.n, s->ttl);
		const char *run = kn(s, "run");
		Q(s, "EXPIRE %b %ld", run, s->kb.n, s->ttl);
		const char *ch = kn(s, "n:%s", w->key);
		Q(s, "PUBLISH %b %lld", ch, s->kb.n, (long long)size);
		nq += 5;
		r = txn_end(s, nq);
		if (r || !s->ioerr || t + 1 == TRIES)
			break;
		/* the connection dropped: did the transaction run? the size says */
		const char *mm = kn(s, "m:%s", w->key);
		redisReply *h = redisCommand(s->rc, "HMGET %b g %s", mm, s->kb.n, fs);
		if (!h || h->type != REDIS_REPLY_ARRAY || h->elements != 2) {
			if (h)
				freeReplyObject(h);
			return PL_ART_ERR;
		}
		int64_t now_size = 0;
		uint64_t g = 0;
		int ok = reply_u64(h->element[0], &g) == 0 && g == w->gen &&
			 reply_i64(h->element[1], &now_size) == 0;
		freeReplyObject(h);
		if (!ok)
			return fail(s, PL_ART_REPLACED, "'%s' was replaced by a newer writer", w->key);
		if (now_size == size)
			goto applied;
		if (now_size != w->size)
			return fail(s, PL_ART_ERR, "'%s': size %lld after a lost write, expected %lld",
				    w->key, (long long)now_size, (long long)w->size);
	}
	if (!r)
		return PL_ART_ERR;
	int rc = check_gen(w, r->element[nq - 4]);
	freeReplyObject(r);
	if (rc)
		return rc;
applied:;
	/* keep the current chunk's bytes, for the SET that completes it */
	size_t within = (size_t)(w->size % (int64_t)C), left = took, off = 0;
	while (left) {
		size_t len = C - within < left ? C - within : left;
		if (within + len == C)
			w->curlen = 0;
		else {
			memcpy(w->cur + within, p + off, len);
			w->curlen = within + len;
		}
		off += len;
		left -= len;
		within = 0;
	}
	w->size = size;
	return (ssize_t)took;
}

/* Parse "SIZE GEN KEY". */
static int parse_part(const char *m, int64_t *size, uint64_t *gen, const char **key)
{
	long long sz;
	unsigned long long g;
	int at = 0;

	if (sscanf(m, "%lld %llu %n", &sz, &g, &at) != 2 || !at || !m[at])
		return -1;
	*size = sz;
	*gen = g;
	*key = m + at;
	return 0;
}

/* Fields of a generation in a HGETALL reply. */
static int gen_fields(const redisReply *h, struct pl_art_info *i, int *composite)
{
	const redisReply *f;
	char name[32];
	int64_t v;

	if (!(f = hfield(h, "g")) || reply_u64(f, &i->gen) < 0)
		return -1;
	snprintf(name, sizeof name, "a%" PRIu64, i->gen);
	i->attempt = (f = hfield(h, name)) && reply_i64(f, &v) == 0 ? (int)v : 0;
	snprintf(name, sizeof name, "s%" PRIu64, i->gen);
	i->size = (f = hfield(h, name)) && reply_i64(f, &v) == 0 ? v : 0;
	snprintf(name, sizeof name, "d%" PRIu64, i->gen);
	i->done = (f = hfield(h, name)) && reply_i64(f, &v) == 0;
	i->status = i->done ? (int)v : 0;
	snprintf(name, sizeof name, "k%" PRIu64, i->gen);
	*composite = (f = hfield(h, name)) && f->len == 1 && f->str[0] == 'c';
	return 0;
}

static int redis_stat(struct pl_art *s, const char *key, struct pl_art_info *i, int *composite)
{
	redisReply *r = NULL;

	for (int t = 0; t < TRIES && !r; t++) {
		txn_begin(s);
		const char *m = kn(s, "m:%s", key);
		Q(s, "HGETALL %b", m, s->kb.n);
		r = txn_end(s, 1);
		if (!r && !s->ioerr)
			break;
	}
	if (!r)
		return PL_ART_ERR;
	int bad = gen_fields(r->element[0], i, composite);
	int empty = r->element[0]->elements == 0;
	freeReplyObject(r);
	if (empty)
		return gone_or_missing(s, key);
	if (bad)
		return fail(s, PL_ART_ERR, "redis: output '%s' has no generation", key);
	return PL_ART_OK;
}

static ssize_t redis_read_plain(struct pl_art *s, const char *key, uint64_t gen, int64_t off,
				char *buf, size_t n, int *composite)
{
	size_t C = s->chunk;
	redisReply *r = NULL;
	char fs[32], fk[32];
	int64_t first = off / (int64_t)C, last;

	if (n > MAX_PIECES * C)
		n = MAX_PIECES * C;
	last = (off + (int64_t)n - 1) / (int64_t)C;
	snprintf(fs, sizeof fs, "s%" PRIu64, gen);
	snprintf(fk, sizeof fk, "k%" PRIu64, gen);
	for (int t = 0; t < TRIES && !r; t++) {
		txn_begin(s);
		const char *m = kn(s, "m:%s", key);
		Q(s, "HMGET %b g %s %s", m, s->kb.n, fs, fk);
		for (int64_t i = first; i <= last; i++) {
			int64_t from = i == first ? off % (int64_t)C : 0;
			int64_t to = i == last ? (off + (int64_t)n - 1) % (int64_t)C : (int64_t)C - 1;
			const char *k = kn(s, "c:%s:%" PRIu64 ":%" PRId64, key, gen, i);
			Q(s, "GETRANGE %b %lld %lld", k, s->kb.n, (long long)from, (long long)to);
		}
		r = txn_end(s, (int)(last - first) + 2);
		if (!r && !s->ioerr)
			break;
	}
	if (!r)
		return PL_ART_ERR;
	const redisReply *h = r->element[0];
	uint64_t g;
	int64_t size = 0;
	ssize_t rc;
	if (h->element[0]->type == REDIS_REPLY_NIL) {
		freeReplyObject(r);
		return gone_or_missing(s, key);
	}
	if (reply_u64(h->element[0], &g) < 0) {
		rc = fail(s, PL_ART_ERR, "redis: bad generation of '%s'", key);
		goto out;
	}
	if (g != gen) {
		rc = fail(s, PL_ART_REPLACED, "'%s' was replaced by a newer writer", key);
		goto out;
	}
	if (h->element[2]->type == REDIS_REPLY_STRING && h->element[2]->len == 1 &&
	    h->element[2]->str[0] == 'c') {
		*composite = 1;
		rc = 0;
		goto out;
	}
	if (h->element[1]->type != REDIS_REPLY_NIL && reply_i64(h->element[1], &size) < 0) {
		rc = fail(s, PL_ART_ERR, "redis: bad size of '%s'", key);
		goto out;
	}
	if (off >= size) {
		rc = 0;
		goto out;
	}
	size_t want = size - off < (int64_t)n ? (size_t)(size - off) : n, got = 0;
	for (size_t i = 1; i < r->elements && got < want; i++) {
		const redisReply *c = r->element[i];
		size_t k = c->len < want - got ? c->len : want - got;
		memcpy(buf + got, c->str, k);
		got += k;
		/* a chunk before the last read must be whole */
		if (c->len < (i == 1 ? C - (size_t)(off % (int64_t)C) : C) && got < want)
			break;
	}
	if (got < want)
		rc = fail(s, PL_ART_GONE, "'%s' lost bytes from %lld on (expired?)", key,
			  (long long)(off + (int64_t)got));
	else
		rc = (ssize_t)got;
out:
	freeReplyObject(r);
	return rc;
}

static ssize_t redis_read(struct pl_art *s, const char *key, uint64_t gen, int64_t off, char *buf,
			  size_t n)
{
	int composite = s->cc_key && s->cc_gen == gen && strcmp(s->cc_key, key) == 0;
	ssize_t k;

	if (!composite) {
		k = redis_read_plain(s, key, gen, off, buf, n, &composite);
		if (!composite)
			return k;
	}
	if (!(s->cc_key && s->cc_gen == gen && strcmp(s->cc_key, key) == 0 && off >= s->cc_start &&
	      off < s->cc_start + s->cc_size)) {
		/* which part holds off */
		redisReply *r = NULL;
		char fs[32];
		snprintf(fs, sizeof fs, "s%" PRIu64, gen);
		for (int t = 0; t < TRIES && !r; t++) {
			txn_begin(s);
			const char *m = kn(s, "m:%s", key);
			Q(s, "HMGET %b g %s", m, s->kb.n, fs);
			const char *z = kn(s, "z:%s:%" PRIu64, key, gen);
			Q(s, "ZREVRANGEBYSCORE %b %lld -inf WITHSCORES LIMIT 0 1", z, s->kb.n,
			  (long long)off);
			r = txn_end(s, 2);
			if (!r && !s->ioerr)
				break;
		}
		if (!r)
			return PL_ART_ERR;
		const redisReply *h = r->element[0], *z = r->element[1];
		uint64_t g;
		int64_t size = 0, psize, start;
		uint64_t pgen;
		const char *pk;
		if (h->element[0]->type == REDIS_REPLY_NIL) {
			freeReplyObject(r);
			return gone_or_missing(s, key);
		}
		if (reply_u64(h->element[0], &g) < 0 || g != gen) {
			freeReplyObject(r);
			return fail(s, PL_ART_REPLACED, "'%s' was replaced by a newer writer", key);
		}
		reply_i64(h->element[1], &size);
		if (off >= size) {
			freeReplyObject(r);
			return 0;
		}
		if (z->elements != 2 || parse_part(z->element[0]->str, &psize, &pgen, &pk) < 0 ||
		    reply_i64(z->element[1], &start) < 0 || off >= start + psize) {
			freeReplyObject(r);
			return fail(s, PL_ART_GONE, "'%s' lost its parts (expired?)", key);
		}
		free(s->cc_key);
		free(s->cc_part);
		s->cc_key = pl_xstrdup(key);
		s->cc_part = pl_xstrdup(pk);
		s->cc_gen = gen;
		s->cc_pgen = pgen;
		s->cc_start = start;
		s->cc_size = psize;
		freeReplyObject(r);
	}
	int64_t left = s->cc_start + s->cc_size - off;
	int nested = 0;
	char part[1100];
	snprintf(part, sizeof part, "%s", s->cc_part);
	k = redis_read_plain(s, part, s->cc_pgen, off - s->cc_start, buf,
			     (int64_t)n < left ? n : (size_t)left, &nested);
	if (k == 0 || k == PL_ART_REPLACED || k == PL_ART_MISSING || nested) {
		free(s->cc_key);
		s->cc_key = NULL;
		return fail(s, PL_ART_GONE, "part '%s' of '%s' is gone", part, key);
	}
	return k;
}

/* ===== directories ======================================================== */

struct dmeta {
	uint64_t gen;
	int attempt, done, status;
	int64_t size;
	unsigned long long dev, ino;
};

static void dpath(struct pl_art *s, const char *key, const char *ext, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s%s", s->tasks, key, ext);
}

static int read_meta(const char *path, struct dmeta *m)
{
	char buf[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t k;

	if (fd < 0)
		return -1;
	k = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (k <= 0)
		return -1;
	buf[k] = '\0';
	long long size;
	if (sscanf(buf, "plumb-store 1 %" SCNu64 " %d %d %d %lld %llu %llu", &m->gen, &m->attempt,
		   &m->done, &m->status, &size, &m->dev, &m->ino) != 7)
		return -1;
	m->size = size;
	return 0;
}

/* Write a file whole: to a temporary name, then renamed over path. */
static int write_file(const char *path, const void *p, size_t n)
{
	char tmp[4200];
	int fd, rc = -1;

	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return -1;
	const char *q = p;
	while (n > 0) {
		ssize_t k = write(fd, q, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			goto out;
		q += k;
		n -= (size_t)k;
	}
	if (close(fd) < 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	rc = rename(tmp, path);
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
	}
	return rc;
}

static int write_meta(const char *path, const struct dmeta *m)
{
	char buf[256];
	int n = snprintf(buf, sizeof buf, "plumb-store 1 %" PRIu64 " %d %d %d %lld %llu %llu\n",
			 m->gen, m->attempt, m->done, m->status, (long long)m->size, m->dev, m->ino);
	return write_file(path, buf, (size_t)n);
}

/* One lock per run for changing sidecars: writers are processes of one
 * machine. */
static int dlock(struct pl_art *s)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/.lock", s->tasks);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	return fd;
}

static void dunlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

static int mkparent(struct pl_art *s, const char *path)
{
	char dir[4200], failed[4200];
	snprintf(dir, sizeof dir, "%s", path);
	char *sl = strrchr(dir, '/');
	if (sl)
		*sl = '\0';
	if (pl_mkdir_p(dir, failed, sizeof failed) < 0)
		return fail(s, PL_ART_ERR, "cannot create '%s': %s", failed, strerror(errno));
	return 0;
}

static int tasks_gone(struct pl_art *s)
{
	struct stat st;
	if (stat(s->tasks, &st) == 0)
		return 0;
	return fail(s, PL_ART_GONE, "run directory '%s' is gone", s->tasks);
}

/* The file of key opened, with a sidecar that describes that very file.
 * Returns the descriptor, or a PL_ART_* error. */
static int dopen(struct pl_art *s, const char *key, struct dmeta *m, struct stat *st)
{
	char path[4200], meta[4200];

	dpath(s, key, "", path, sizeof path);
	dpath(s, key, ".meta", meta, sizeof meta);
	/* a writer starting renames the sidecar, then the file: retry while
	 * the two disagree */
	for (int t = 0; t < 2000; t++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno != ENOENT)
			return fail(s, PL_ART_ERR, "cannot open '%s': %s", path, strerror(errno));
		if (read_meta(meta, m) < 0) {
			if (fd >= 0)
				close(fd);
			if (tasks_gone(s))
				return PL_ART_GONE;
			return fail(s, PL_ART_MISSING, "no output '%s' in '%s'", key, s->tasks);
		}
		if (fd >= 0 && fstat(fd, st) == 0 && (unsigned long long)st->st_ino == m->ino &&
		    (unsigned long long)st->st_dev == m->dev)
			return fd;
		if (fd >= 0)
			close(fd);
		sleep_ms(1);
	}
	return fail(s, PL_ART_ERR, "'%s' does not match its sidecar", path);
}

static int dir_stat(struct pl_art *s, const char *key, struct pl_art_info *i)
{
	struct dmeta m;
	struct stat st;
	int fd = dopen(s, key, &m, &st);

	if (fd < 0)
		return fd;
	close(fd);
	i->gen = m.gen;
	i->attempt = m.attempt;
	i->done = m.done;
	i->status = m.status;
	i->size = m.done ? m.size : st.st_size;
	return PL_ART_OK;
}

static ssize_t dir_read(struct pl_art *s, const char *key, uint64_t gen, int64_t off, char *buf,
			size_t n)
{
	struct dmeta m;
	struct stat st;
	int fd = dopen(s, key, &m, &st);
	ssize_t k;

	if (fd < 0)
		return fd;
	if (m.gen != gen) {
		close(fd);
		return fail(s, PL_ART_REPLACED, "'%s' was replaced by a newer writer", key);
	}
	int64_t size = m.done ? m.size : st.st_size;
	if (off >= size) {
		close(fd);
		return 0;
	}
	if ((int64_t)n > size - off)
		n = (size_t)(size - off);
	while ((k = pread(fd, buf, n, off)) < 0 && errno == EINTR)
		;
	if (k < 0)
		fail(s, PL_ART_ERR, "cannot read '%s': %s", key, strerror(errno));
	close(fd);
	return k < 0 ? PL_ART_ERR : k;
}

static struct pl_art_writer *dir_writer(struct pl_art *s, struct pl_art_writer *w)
{
	char path[4200], meta[4200], tmp[4300];
	struct dmeta m = { 0 }, old;
	struct stat st;
	int lk;

	dpath(s, w->key, "", path, sizeof path);
	dpath(s, w->key, ".meta", meta, sizeof meta);
	if (tasks_gone(s) || mkparent(s, path) < 0)
		return NULL;
	if ((lk = dlock(s)) < 0) {
		fail(s, PL_ART_ERR, "cannot lock '%s': %s", s->tasks, strerror(errno));
		return NULL;
	}
	m.gen = read_meta(meta, &old) == 0 ? old.gen + 1 : 1;
	m.attempt = w->attempt;
	snprintf(tmp, sizeof tmp, "%s.%" PRIu64 ".new", path, m.gen);
	w->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0 || fstat(w->fd, &st) < 0) {
		fail(s, PL_ART_ERR, "cannot create '%s': %s", tmp, strerror(errno));
		goto fail;
	}
	m.dev = (unsigned long long)st.st_dev;
	m.ino = (unsigned long long)st.st_ino;
	w->gen = m.gen;
	/* sidecar first: a reader that sees the new sidecar with the old file
	 * waits for the file (dopen) */
	if (write_meta(meta, &m) < 0 || rename(tmp, path) < 0) {
		fail(s, PL_ART_ERR, "cannot write '%s': %s", path, strerror(errno));
		unlink(tmp);
		goto fail;
	}
	dunlock(lk);
	return w;
fail:
	dunlock(lk);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	return NULL;
}

static int dir_finish(struct pl_art_writer *w, int status)
{
	struct pl_art *s = w->s;
	char meta[4200];
	struct dmeta m;
	struct stat st;
	int lk, rc = PL_ART_OK;

	dpath(s, w->key, ".meta", meta, sizeof meta);
	if (fstat(w->fd, &st) < 0)
		return fail(s, PL_ART_ERR, "cannot stat '%s': %s", w->key, strerror(errno));
	if ((lk = dlock(s)) < 0)
		return tasks_gone(s) ? PL_ART_GONE :
			fail(s, PL_ART_ERR, "cannot lock '%s': %s", s->tasks, strerror(errno));
	if (read_meta(meta, &m) < 0 || m.gen != w->gen) {
		rc = fail(s, PL_ART_REPLACED, "'%s' was replaced by a newer writer", w->key);
	} else {
		m.done = 1;
		m.status = status;
		m.size = st.st_size;
		if (write_meta(meta, &m) < 0)
			rc = fail(s, PL_ART_ERR, "cannot write '%s': %s", meta, strerror(errno));
	}
	dunlock(lk);
	return rc;
}


static int dir_splice(struct pl_art_writer *w, const char *key, const struct pl_art_info *i)
{
	struct pl_art *s = w->s;
	struct dmeta m;
	struct stat st;
	int fd = dopen(s, key, &m, &st);
	int64_t left = i->size;
	loff_t off = 0;

	if (fd < 0)
		return fd;
	if (m.gen != i->gen) {
		close(fd);
		return fail(s, PL_ART_REPLACED, "'%s' was replaced while being spliced", key);
	}
	while (left > 0) {
		ssize_t k = copy_file_range(fd, &off, w->fd, NULL, (size_t)left, 0);
		if (k < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
			      errno == EOPNOTSUPP)) {
			char buf[65536];
			k = pread(fd, buf, left < (int64_t)sizeof buf ? (size_t)left : sizeof buf, off);
			if (k > 0 && pl_write_all(w->fd, buf, (size_t)k) < 0)
				k = -1;
			if (k > 0)
				off += k;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int e = errno;
			close(fd);
			return fail(s, PL_ART_ERR, "cannot copy '%s': %s", key,
				    k < 0 ? strerror(e) : "it is shorter than its size");
		}
		left -= k;
	}
	close(fd);
	w->size += i->size;
	return PL_ART_OK;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

/* ===== the API ============================================================ */

struct pl_art *pl_art_open(const struct pl_art_opts *o, char *err, size_t n, int *status)
{
	struct pl_art *s = calloc(1, sizeof *s);
	const char *run = o->run ? o->run : "";
	size_t rl = strlen(run);

	if (!s)
		abort();
	s->ifd = -1;
	*status = PL_EX_USAGE;
	if (rl == 0 || rl > 200) {
		snprintf(err, n, "bad run id '%.200s'", run);
		goto fail;
	}
	for (size_t i = 0; i < rl; i++)
		if ((unsigned char)run[i] < 0x20 || run[i] == 0x7f || strchr("/{}", run[i])) {
			snprintf(err, n, "bad run id '%.200s': '/', braces and control characters are not allowed", run);
			goto fail;
		}
	s->run = pl_xstrdup(run);
	if (!pl_is_redis_url(o->spec)) {
		char failed[4200];
		struct stat st;
		s->tasks = pl_xmalloc(strlen(o->spec) + 7);
		sprintf(s->tasks, "%s/tasks", o->spec);
		if (o->create && pl_mkdir_p(s->tasks, failed, sizeof failed) < 0) {
			snprintf(err, n, "cannot create '%s': %s", failed, strerror(errno));
			goto fail;
		}
		if (stat(s->tasks, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, n, "no run in '%s'", o->spec);
			goto fail;
		}
		return s;
	}

	char shown[1024];
	int config = 0;
	pl_redisurl_redact(o->spec, shown, sizeof shown);
	s->shown = pl_xstrdup(shown);
	if (pl_redisurl_parse(o->spec, &s->url, err, n) < 0)
		goto fail;
	s->redis = 1;
	s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	s->rc = pl_redis_connect(&s->url, s->timeout_ms, err, n, &config);
	if (!s->rc) {
		char e[400];
		snprintf(e, sizeof e, "%s", err);
		snprintf(err, n, "redis %s: %s", shown, e);
		*status = config ? PL_EX_USAGE : PL_EX_UNAVAILABLE;
		goto fail;
	}
	s->prefix = pl_xmalloc(rl + 16);
	s->plen = (size_t)sprintf(s->prefix, "plumb:{%s}:", run);

	size_t chunk = o->chunk ? o->chunk : PL_ART_CHUNK_DEFAULT;
	long ttl = o->ttl;
	redisReply *r = NULL;
	if (o->create) {
		if (ttl <= 0)
			ttl = PL_ART_TTL_DEFAULT;
		txn_begin(s);
		const char *k = kn(s, "run");
		Q(s, "HSETNX %b chunk %lld", k, s->kb.n, (long long)chunk);
		Q(s, "HSETNX %b created %lld", k, s->kb.n, (long long)time(NULL));
		Q(s, "HSET %b ttl %ld", k, s->kb.n, ttl);
		Q(s, "EXPIRE %b %ld", k, s->kb.n, ttl);
		Q(s, "HGETALL %b", k, s->kb.n);
		r = txn_end(s, 5);
	} else {
		txn_begin(s);
		const char *k = kn(s, "run");
		Q(s, "HGETALL %b", k, s->kb.n);
		r = txn_end(s, 1);
	}
	if (!r) {
		snprintf(err, n, "%s", s->err);
		*status = s->ioerr ? PL_EX_UNAVAILABLE : PL_EX_USAGE;
		goto fail;
	}
	const redisReply *h = r->element[r->elements - 1], *f;
	int64_t v;
	if (h->elements == 0) {
		snprintf(err, n, "no run '%s' in %s (never created, deleted or expired)", run, shown);
		freeReplyObject(r);
		goto fail;
	}
	if (!(f = hfield(h, "chunk")) || reply_i64(f, &v) < 0 || v < 1 || v > 64 * 1024 * 1024) {
		snprintf(err, n, "run '%s' in %s has a bad chunk size", run, shown);
		freeReplyObject(r);
		goto fail;
	}
	s->chunk = (size_t)v;
	if (ttl <= 0)
		ttl = (f = hfield(h, "ttl")) && reply_i64(f, &v) == 0 && v > 0 ? (long)v :
			PL_ART_TTL_DEFAULT;
	s->ttl = ttl;
	freeReplyObject(r);
	return s;
fail:
	pl_art_close(s);
	return NULL;
}

void pl_art_close(struct pl_art *s)
{
	if (!s)
		return;
	if (s->rc)
		redisFree(s->rc);
	if (s->sub)
		redisFree(s->sub);
	if (s->ifd >= 0)
		close(s->ifd);
	for (size_t i = 0; i < s->nfl; i++)
		free(s->fl[i].key);
	free(s->fl);
	pl_redisurl_free(&s->url);
	pl_buf_free(&s->kb);
	free(s->shown);
	free(s->prefix);
	free(s->run);
	free(s->tasks);
	free(s->cc_key);
	free(s->cc_part);
	free(s);
}

struct pl_art_writer *pl_art_writer(struct pl_art *s, const char *key, int attempt)
{
	struct pl_art_writer *w;

	if (bad_key(s, key))
		return NULL;
	w = calloc(1, sizeof *w);
	if (!w)
		abort();
	w->s = s;
	w->key = pl_xstrdup(key);
	w->attempt = attempt;
	w->fd = -1;
	if ((s->redis ? redis_writer(s, w) : dir_writer(s, w)) == NULL) {
		free(w->cur);
		free(w->key);
		free(w);
		return NULL;
	}
	return w;
}

int pl_art_writer_fd(const struct pl_art_writer *w)
{
	return w->fd;
}

int pl_art_append(struct pl_art_writer *w, const void *p, size_t n)
{
	struct pl_art *s = w->s;

	if (w->mode == 2)
		return fail(s, PL_ART_ERR, "'%s': cannot append to a spliced output", w->key);
	w->mode = 1;
	if (!s->redis) {
		if (pl_write_all(w->fd, p, n) < 0)
			return fail(s, PL_ART_ERR, "cannot write '%s': %s", w->key, strerror(errno));
		w->size += (int64_t)n;
		return PL_ART_OK;
	}
	const char *q = p;
	while (n > 0) {
		ssize_t k = redis_append_some(w, q, n);
		if (k < 0)
			return (int)k;
		q += k;
		n -= (size_t)k;
	}
	/* chunks written long ago would expire before the output is done */
	if (mono() - w->refreshed > (s->ttl / 4 > 1 ? s->ttl / 4 : 1))
		return refresh(w);
	return PL_ART_OK;
}

int pl_art_splice(struct pl_art_writer *w, const char *key)
{
	struct pl_art *s = w->s;
	struct pl_art_info i;
	int composite = 0, rc;

	if (w->mode == 1)
		return fail(s, PL_ART_ERR, "'%s': cannot splice into an output appended to", w->key);
	if (bad_key(s, key))
		return PL_ART_ERR;
	rc = s->redis ? redis_stat(s, key, &i, &composite) : dir_stat(s, key, &i);
	if (rc)
		return rc;
	if (!i.done)
		return fail(s, PL_ART_ERR, "cannot splice '%s' into '%s': it is not finished", key,
			    w->key);
	if (composite)
		return fail(s, PL_ART_ERR, "cannot splice '%s' into '%s': it is spliced itself", key,
			    w->key);
	w->mode = 2;
	if (!s->redis)
		return dir_splice(w, key, &i);
	if (i.size == 0)
		return PL_ART_OK;	/* nothing to read: and no two parts may start at one offset */

	redisReply *r = NULL;
	int64_t size = w->size + i.size;
	char fs[32], fk[32];
	snprintf(fs, sizeof fs, "s%" PRIu64, w->gen);
	snprintf(fk, sizeof fk, "k%" PRIu64, w->gen);
	char *member = pl_xmalloc(strlen(key) + 64);
	int ml = sprintf(member, "%lld %" PRIu64 " %s", (long long)i.size, i.gen, key);
	for (int t = 0; t < TRIES && !r; t++) {
		/* idempotent: the same member at the same score, the same size */
		txn_begin(s);
		const char *z = kn(s, "z:%s:%" PRIu64, w->key, w->gen);
		Q(s, "ZADD %b %lld %b", z, s->kb.n, (long long)w->size, member, (size_t)ml);
		Q(s, "EXPIRE %b %ld", z, s->kb.n, s->ttl);
		const char *pm = kn(s, "m:%s", key);
		Q(s, "EXPIRE %b %ld", pm, s->kb.n, s->ttl);
		const char *m = kn(s, "m:%s", w->key);
		Q(s, "HSET %b %s %lld %s c", m, s->kb.n, fs, (long long)size, fk);
		Q(s, "HGET %b g", m, s->kb.n);
		Q(s, "EXPIRE %b %ld", m, s->kb.n, s->ttl);
		const char *run = kn(s, "run");
		Q(s, "EXPIRE %b %ld", run, s->kb.n, s->ttl);
		const char *ch = kn(s, "n:%s", w->key);
		Q(s, "PUBLISH %b %lld", ch, s->kb.n, (long long)size);
		r = txn_end(s, 8);
		if (!r && !s->ioerr)
			break;
	}
	free(member);
	if (!r)
		return PL_ART_ERR;
	w->size = size;
	rc = check_gen(w, r->element[4]);
	freeReplyObject(r);
	if (rc == 0 && mono() - w->refreshed > (s->ttl / 4 > 1 ? s->ttl / 4 : 1))
		rc = refresh(w);
	return rc;
}

int pl_art_finish(struct pl_art_writer *w, int status)
{
	struct pl_art *s = w->s;
	int rc;

	if (!s->redis) {
		rc = dir_finish(w, status);
		pl_art_abandon(w);
		return rc;
	}
	redisReply *r = NULL;
	char fd[32], fs[32];
	snprintf(fd, sizeof fd, "d%" PRIu64, w->gen);
	snprintf(fs, sizeof fs, "s%" PRIu64, w->gen);
	for (int t = 0; t < TRIES && !r; t++) {
		txn_begin(s);
		const char *m = kn(s, "m:%s", w->key);
		Q(s, "HSET %b %s %lld %s %d", m, s->kb.n, fs, (long long)w->size, fd, status);
		Q(s, "HGET %b g", m, s->kb.n);
		Q(s, "EXPIRE %b %ld", m, s->kb.n, s->ttl);
		const char *run = kn(s, "run");
		Q(s, "EXPIRE %b %ld", run, s->kb.n, s->ttl);
		const char *ch = kn(s, "n:%s", w->key);
		Q(s, "PUBLISH %b done", ch, s->kb.n);
		r = txn_end(s, 5);
		if (!r && !s->ioerr)
			break;
	}
	if (!r) {
		pl_art_abandon(w);
		return PL_ART_ERR;
	}
	rc = check_gen(w, r->element[1]);
	freeReplyObject(r);
	if (rc == 0)
		rc = refresh(w);	/* the whole output now expires together */
	pl_art_abandon(w);
	return rc;
}

void pl_art_abandon(struct pl_art_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->cur);
	free(w->key);
	free(w);
}

int pl_art_stat(struct pl_art *s, const char *key, struct pl_art_info *i)
{
	int composite;

	memset(i, 0, sizeof *i);
	if (bad_key(s, key))
		return PL_ART_ERR;
	return s->redis ? redis_stat(s, key, i, &composite) : dir_stat(s, key, i);
}

ssize_t pl_art_read(struct pl_art *s, const char *key, uint64_t gen, int64_t off, void *buf,
		      size_t n)
{
	if (bad_key(s, key))
		return PL_ART_ERR;
	if (off < 0)
		return fail(s, PL_ART_ERR, "negative offset");
	if (n == 0)
		return 0;
	return s->redis ? redis_read(s, key, gen, off, buf, n) : dir_read(s, key, gen, off, buf, n);
}

/* --- waiting -------------------------------------------------------------- */

static void classify(struct pl_art *s, redisReply *r)
{
	if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
	    r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "message") == 0)
		s->pending = 1;
}

/* Subscribe to channel ch and wait for the server to confirm it. */
static int subscribe(struct pl_art *s, const char *ch, size_t n)
{
	redisReply *r;
	int done = 0;

	if (redisAppendCommand(s->sub, "SUBSCRIBE %b", ch, n) != REDIS_OK)
		return -1;
	while (!done)
		if (redisBufferWrite(s->sub, &done) != REDIS_OK)
			return -1;
	for (;;) {
		if (redisGetReply(s->sub, (void **)&r) != REDIS_OK)
			return -1;
		int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
			 r->element[0]->type == REDIS_REPLY_STRING &&
			 strcmp(r->element[0]->str, "subscribe") == 0 && r->element[1]->len == n &&
			 memcmp(r->element[1]->str, ch, n) == 0;
		classify(s, r);
		freeReplyObject(r);
		if (ok)
			break;
	}
	/* messages read along with the confirmation: poll() will not see them */
	for (;;) {
		r = NULL;
		if (redisGetReplyFromReader(s->sub, (void **)&r) != REDIS_OK)
			return -1;
		if (!r)
			return 0;
		classify(s, r);
		freeReplyObject(r);
	}
}

/* (Re)make the subscription connection with every followed key. */
static int sub_connect(struct pl_art *s)
{
	char e[400];
	int config = 0;

	if (s->sub)
		redisFree(s->sub);
	s->sub = pl_redis_connect(&s->url, s->timeout_ms, e, sizeof e, &config);
	if (!s->sub)
		return fail(s, PL_ART_ERR, "redis %s: %s", s->shown, e);
	for (size_t i = 0; i < s->nfl; i++) {
		const char *ch = kn(s, "n:%s", s->fl[i].key);
		if (subscribe(s, ch, s->kb.n) < 0) {
			fail(s, PL_ART_ERR, "redis %s: cannot subscribe: %s", s->shown,
			     s->sub->errstr[0] ? s->sub->errstr : "connection lost");
			redisFree(s->sub);
			s->sub = NULL;
			return PL_ART_ERR;
		}
	}
	return 0;
}

int pl_art_follow(struct pl_art *s, const char *key)
{
	if (bad_key(s, key))
		return PL_ART_ERR;
	for (size_t i = 0; i < s->nfl; i++)
		if (strcmp(s->fl[i].key, key) == 0)
			return 0;
	s->fl = pl_xrealloc(s->fl, (s->nfl + 1) * sizeof *s->fl);
	s->fl[s->nfl].key = pl_xstrdup(key);
	s->fl[s->nfl].wd = -1;
	s->nfl++;
	if (s->redis) {
		if (!s->sub) {
			s->pending = 1;	/* whatever happened before we listened */
			return sub_connect(s);
		}
		const char *ch = kn(s, "n:%s", key);
		if (subscribe(s, ch, s->kb.n) < 0) {
			s->pending = 1;
			return sub_connect(s);	/* and resubscribe everything */
		}
		return 0;
	}
	char path[4200], failed[4200];
	dpath(s, key, "", path, sizeof path);
	*strrchr(path, '/') = '\0';
	if (s->ifd < 0 && (s->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		return fail(s, PL_ART_ERR, "inotify: %s", strerror(errno));
	if (pl_mkdir_p(path, failed, sizeof failed) < 0)
		return fail(s, PL_ART_ERR, "cannot create '%s': %s", failed, strerror(errno));
	s->fl[s->nfl - 1].wd = inotify_add_watch(s->ifd, path, IN_MODIFY | IN_CLOSE_WRITE |
						 IN_MOVED_TO | IN_CREATE | IN_DELETE);
	if (s->fl[s->nfl - 1].wd < 0)
		return fail(s, PL_ART_ERR, "inotify '%s': %s", path, strerror(errno));
	return 0;
}

void pl_art_unfollow(struct pl_art *s, const char *key)
{
	size_t i;
	int wd, shared = 0;

	for (i = 0; i < s->nfl && strcmp(s->fl[i].key, key) != 0; i++)
		;
	if (i == s->nfl)
		return;
	wd = s->fl[i].wd;
	free(s->fl[i].key);
	s->fl[i] = s->fl[--s->nfl];
	if (s->redis) {
		if (s->sub) {
			/* the confirmation is read with the notifications */
			int done = 0;
			const char *ch = kn(s, "n:%s", key);
			redisAppendCommand(s->sub, "UNSUBSCRIBE %b", ch, s->kb.n);
			while (!done && redisBufferWrite(s->sub, &done) == REDIS_OK)
				;
		}
		return;
	}
	for (size_t j = 0; j < s->nfl; j++)
		shared |= s->fl[j].wd == wd;
	if (wd >= 0 && !shared)
		inotify_rm_watch(s->ifd, wd);
}

int pl_art_fd(struct pl_art *s, int *timeout_ms)
{
	int fd = s->redis ? (s->sub ? s->sub->fd : -1) : s->ifd;

	if (s->pending)
		*timeout_ms = 0;
	else if (*timeout_ms < 0 || *timeout_ms > PL_ART_RECHECK_MS)
		*timeout_ms = PL_ART_RECHECK_MS;
	return fd;
}

int pl_art_drain(struct pl_art *s)
{
	if (!s->redis) {
		char buf[4096];
		while (s->ifd >= 0 && read(s->ifd, buf, sizeof buf) > 0)
			s->pending = 1;
	} else if (s->sub) {
		struct pollfd p = { s->sub->fd, POLLIN, 0 };
		redisReply *r;
		int lost = 0;
		while (!lost && poll(&p, 1, 0) > 0) {
			if (redisBufferRead(s->sub) != REDIS_OK) {
				lost = 1;
				break;
			}
			for (;;) {
				r = NULL;
				if (redisGetReplyFromReader(s->sub, (void **)&r) != REDIS_OK) {
					lost = 1;
					break;
				}
				if (!r)
					break;
				classify(s, r);
				freeReplyObject(r);
			}
		}
		if (lost) {
			/* messages may be lost: wake the caller, and listen again */
			s->pending = 1;
			sub_connect(s);
		}
	}
	int p = s->pending;
	s->pending = 0;
	return p;
}

int pl_art_wait(struct pl_art *s, int timeout_ms)
{
	int t = timeout_ms;
	int fd = pl_art_fd(s, &t);

	if (t > timeout_ms && timeout_ms >= 0)
		t = timeout_ms;
	if (t > 0) {
		if (fd >= 0) {
			struct pollfd p = { fd, POLLIN, 0 };
			poll(&p, 1, t);
		} else {
			sleep_ms(t);
		}
	}
	return pl_art_drain(s);
}

/* --- values ---------------------------------------------------------------- */

int pl_art_set(struct pl_art *s, const char *name, const char *field, const void *val,
		 size_t len)
{
	if (bad_key(s, name) || bad_field(s, field))
		return PL_ART_ERR;
	if (!s->redis) {
		char path[4200];
		snprintf(path, sizeof path, "%s/%s.vals/%s", s->tasks, name, field);
		if (tasks_gone(s))
			return PL_ART_GONE;
		if (mkparent(s, path) < 0)
			return PL_ART_ERR;
		if (write_file(path, val, len) < 0)
			return fail(s, PL_ART_ERR, "cannot write '%s': %s", path, strerror(errno));
		return PL_ART_OK;
	}
	redisReply *r = NULL;
	for (int t = 0; t < TRIES && !r; t++) {
		txn_begin(s);
		const char *v = kn(s, "v:%s", name);
		Q(s, "HSET %b %s %b", v, s->kb.n, field, val, len);
		Q(s, "EXPIRE %b %ld", v, s->kb.n, s->ttl);
		const char *run = kn(s, "run");
		Q(s, "EXPIRE %b %ld", run, s->kb.n, s->ttl);
		r = txn_end(s, 3);
		if (!r && !s->ioerr)
			break;
	}
	if (!r)
		return PL_ART_ERR;
	int there = r->element[2]->integer;
	freeReplyObject(r);
	if (!there) {
		const char *v = kn(s, "v:%s", name);
		freeReplyObject(redisCommand(s->rc, "UNLINK %b", v, s->kb.n));
		return fail(s, PL_ART_GONE, "run '%s' is gone from %s (expired or deleted)", s->run,
			    s->shown);
	}
	return PL_ART_OK;
}

int pl_art_get(struct pl_art *s, const char *name, const char *field, char **val, size_t *len)
{
	*val = NULL;
	*len = 0;
	if (bad_key(s, name) || bad_field(s, field))
		return PL_ART_ERR;
	if (!s->redis) {
		char path[4200];
		struct pl_buf b = PL_BUF_INIT;
		char buf[65536];
		ssize_t k;
		snprintf(path, sizeof path, "%s/%s.vals/%s", s->tasks, name, field);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return errno == ENOENT ? (tasks_gone(s) ? PL_ART_GONE :
				fail(s, PL_ART_MISSING, "no value '%s' of '%s'", field, name)) :
				fail(s, PL_ART_ERR, "cannot open '%s': %s", path, strerror(errno));
		while ((k = read(fd, buf, sizeof buf)) > 0)
			pl_buf_add(&b, buf, (size_t)k);
		close(fd);
		if (k < 0) {
			pl_buf_free(&b);
			return fail(s, PL_ART_ERR, "cannot read '%s': %s", path, strerror(errno));
		}
		*len = b.n;
		pl_buf_cstr(&b);
		*val = b.p ? b.p : pl_xstrdup("");
		return PL_ART_OK;
	}
	redisReply *r = NULL;
	for (int t = 0; t < TRIES && !r; t++) {
		txn_begin(s);
		const char *v = kn(s, "v:%s", name);
		Q(s, "HGET %b %s", v, s->kb.n, field);
		const char *run = kn(s, "run");
		Q(s, "EXISTS %b", run, s->kb.n);
		r = txn_end(s, 2);
		if (!r && !s->ioerr)
			break;
	}
	if (!r)
		return PL_ART_ERR;
	int rc = PL_ART_OK;
	if (r->element[1]->integer == 0)
		rc = fail(s, PL_ART_GONE, "run '%s' is gone from %s (expired or deleted)", s->run,
			  s->shown);
	else if (r->element[0]->type != REDIS_REPLY_STRING)
		rc = fail(s, PL_ART_MISSING, "no value '%s' of '%s'", field, name);
	else {
		*len = r->element[0]->len;
		*val = pl_xmalloc(*len + 1);
		memcpy(*val, r->element[0]->str, *len);
		(*val)[*len] = '\0';
	}
	freeReplyObject(r);
	return rc;
}

/* --- retention ------------------------------------------------------------- */

/* Run cmd ("EXPIRE" or "UNLINK") on every key of the run, found with SCAN. */
static int every_key(struct pl_art *s, int del)
{
	struct pl_buf pat = PL_BUF_INIT;
	char cursor[32] = "0";
	int rc = 0;

	/* the run id is matched literally */
	for (size_t i = 0; i < s->plen; i++) {
		if (strchr("*?[]\\", s->prefix[i]))
			pl_buf_addc(&pat, '\\');
		pl_buf_addc(&pat, s->prefix[i]);
	}
	pl_buf_addc(&pat, '*');
	do {
		redisReply *r = redisCommand(s->rc, "SCAN %s MATCH %b COUNT 1000", cursor, pat.p, pat.n);
		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			rc = fail(s, PL_ART_ERR, "redis SCAN failed: %s",
				  r && r->type == REDIS_REPLY_ERROR ? r->str : s->rc->errstr);
			if (r)
				freeReplyObject(r);
			else
				reconnect(s);
			break;
		}
		snprintf(cursor, sizeof cursor, "%.*s", (int)r->element[0]->len, r->element[0]->str);
		const redisReply *keys = r->element[1];
		for (size_t i = 0; i < keys->elements; i++) {
			if (del)
				redisAppendCommand(s->rc, "UNLINK %b", keys->element[i]->str,
						   keys->element[i]->len);
			else
				redisAppendCommand(s->rc, "EXPIRE %b %ld", keys->element[i]->str,
						   keys->element[i]->len, s->ttl);
		}
		rc |= drain_replies(s, (int)keys->elements);
		freeReplyObject(r);
	} while (!rc && strcmp(cursor, "0") != 0);
	pl_buf_free(&pat);
	return rc;
}

int pl_art_touch(struct pl_art *s)
{
	return s->redis ? every_key(s, 0) : PL_ART_OK;
}

int pl_art_delete(struct pl_art *s)
{
	if (s->redis)
		return every_key(s, 1);
	if (nftw(s->tasks, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		return fail(s, PL_ART_ERR, "cannot delete '%s': %s", s->tasks, strerror(errno));
	return PL_ART_OK;
}
