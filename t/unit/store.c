/* Unit tests for lib/store.c. Without arguments: the directory backend, in
 * a temporary directory. "live URL [TEST...]" (t/1110-store.bats, against a
 * real redis-server): the same tests through Redis, and those only Redis
 * has: chunk sizes, TTLs, expiry, reconnection, a 100 MB output. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "exitcode.h"
#include "redisurl.h"
#include "store.h"
#include "unit.h"

#ifdef __SANITIZE_ADDRESS__
/* freed memory stays in ASan's quarantine (256 MB by default): keep it small
 * so that the resident-memory bound below measures the store, not ASan */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=4:thread_local_quarantine_size_kb=64";
}
#endif

static const char *url;		/* NULL: directories */
static char tmp[256];
static int runs;
static char runid[64], spec[512];
static redisContext *ctl;	/* live: our own connection, to look at the keys */

/* A new run: its id and spec. */
static void new_run(void)
{
	snprintf(runid, sizeof runid, "unit-%ld-%d", (long)getpid(), ++runs);
	if (url)
		snprintf(spec, sizeof spec, "%s", url);
	else
		snprintf(spec, sizeof spec, "%s/%s", tmp, runid);
}

static struct pl_art *open_run(int create, size_t chunk, long ttl)
{
	struct pl_art_opts o = { .spec = spec, .run = runid, .create = create, .chunk = chunk,
				   .ttl = ttl };
	char err[512];
	int status;
	struct pl_art *s = pl_art_open(&o, err, sizeof err, &status);
	if (!s)
		printf("# open: %s\n", err);
	return s;
}

/* xorshift64*: the same bytes for the same seed, without keeping them */
static uint64_t rnd_state;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 2685821657736338717ULL;
}

struct gen {
	uint64_t st;
	uint64_t word;
	int left;
};

static void gen_bytes(struct gen *g, char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!g->left) {
			g->st ^= g->st >> 12;
			g->st ^= g->st << 25;
			g->st ^= g->st >> 27;
			g->word = g->st * 2685821657736338717ULL;
			g->left = 8;
		}
		p[i] = (char)(g->word & 0xff);
		g->word >>= 8;
		g->left--;
	}
}

/* Everything of generation gen of key from 0, read in pieces of n. */
static ssize_t read_all(struct pl_art *s, const char *key, uint64_t gen, size_t n,
			struct pl_buf *b)
{
	char *buf = pl_xmalloc(n);
	ssize_t k;

	b->n = 0;
	while ((k = pl_art_read(s, key, gen, (int64_t)b->n, buf, n)) > 0)
		pl_buf_add(b, buf, (size_t)k);
	free(buf);
	return k < 0 ? k : (ssize_t)b->n;
}

static int is(const struct pl_buf *b, const char *want)
{
	size_t n = strlen(want);
	return b->n == n && memcmp(b->p, want, n) == 0;
}

/* live: the keys of the current run matching a pattern after its prefix */
static redisReply *keys(const char *pat)
{
	return redisCommand(ctl, "KEYS plumb:{%s}:%s", runid, pat);
}

/* --- tests for both backends ------------------------------------------------ */

static void t_basics(void)
{
	struct pl_art_info i;
	struct pl_buf b = PL_BUF_INIT;
	char buf[16];

	new_run();
	struct pl_art *s = open_run(1, 0, 0);
	CHECK(s != NULL, "basics: a new run");
	if (!s)
		return;
	CHECK(pl_art_stat(s, "t.out", &i) == PL_ART_MISSING, "basics: no output yet");
	CHECK(strstr(pl_art_errstr(s), "no output 't.out'"), "basics: says so: %s",
	      pl_art_errstr(s));
	struct pl_art_writer *w = pl_art_writer(s, "t.out", 1);
	CHECK(w != NULL, "basics: a writer");
	CHECK(pl_art_stat(s, "t.out", &i) == 0 && i.attempt == 1 && i.size == 0 && !i.done,
	      "basics: started, empty, not done");
	uint64_t gen = i.gen;
	CHECK(pl_art_append(w, "hello ", 6) == 0, "basics: append");
	CHECK(pl_art_stat(s, "t.out", &i) == 0 && i.size == 6 && !i.done && i.gen == gen,
	      "basics: visible at once: size 6");
	CHECK(pl_art_read(s, "t.out", gen, 2, buf, 3) == 3 && memcmp(buf, "llo", 3) == 0,
	      "basics: read from an offset");
	CHECK(pl_art_read(s, "t.out", gen, 6, buf, 3) == 0, "basics: nothing at the end yet");
	CHECK(pl_art_append(w, "world\n", 6) == 0 && pl_art_append(w, "", 0) == 0,
	      "basics: append more, and nothing");
	CHECK(pl_art_finish(w, 0) == 0, "basics: finish");
	CHECK(pl_art_stat(s, "t.out", &i) == 0 && i.size == 12 && i.done && i.status == 0,
	      "basics: done, status 0, size 12");
	CHECK(read_all(s, "t.out", gen, 5, &b) == 12 && is(&b, "hello world\n"),
	      "basics: read back in pieces of 5");
	CHECK(pl_art_read(s, "t.out", gen, 100, buf, 3) == 0, "basics: past the end: 0");
	CHECK(pl_art_read(s, "t.out", gen, -1, buf, 3) == PL_ART_ERR, "basics: negative offset");

	/* a failed writer's status */
	w = pl_art_writer(s, "u/0.out", 2);
	CHECK(w && pl_art_append(w, "x", 1) == 0 && pl_art_finish(w, 137) == 0 &&
	      pl_art_stat(s, "u/0.out", &i) == 0 && i.done && i.status == 137 && i.attempt == 2,
	      "basics: a child's output, done with status 137 at attempt 2");
	if (!url) {
		struct stat st;
		char path[700];
		snprintf(path, sizeof path, "%s/tasks/t.out", spec);
		CHECK(stat(path, &st) == 0 && st.st_size == 12, "basics: the run directory's layout: tasks/t.out");
	} else {
		redisReply *r = redisCommand(ctl, "HGET plumb:{%s}:run chunk", runid);
		CHECK(r && r->type == REDIS_REPLY_STRING && atoi(r->str) == PL_ART_CHUNK_DEFAULT,
		      "basics: the run records its chunk size");
		freeReplyObject(r);
		r = keys("c:t.out:*");
		CHECK(r && r->elements == 1, "basics: one chunk key");
		freeReplyObject(r);
	}
	pl_buf_free(&b);
	pl_art_close(s);
}

/* Random appends against a copy in memory, then random reads. */
static void t_pieces(void)
{
	struct pl_buf ref = PL_BUF_INIT, b = PL_BUF_INIT;
	struct pl_art_info i;
	char buf[200], data[64];
	int ok = 1;

	new_run();
	struct pl_art *s = open_run(1, 7, 0);	/* tiny chunks: every boundary case */
	if (!s) {
		CHECK(0, "pieces: open");
		return;
	}
	struct pl_art_writer *w = pl_art_writer(s, "p.out", 1);
	rnd_state = 42;
	for (int k = 0; k < 300 && w; k++) {
		size_t n = rnd() % 40;
		for (size_t j = 0; j < n; j++)
			data[j] = (char)('a' + rnd() % 26);
		ok &= pl_art_append(w, data, n) == 0;
		pl_buf_add(&ref, data, n);
		if (k % 50 == 0) {
			/* while it grows: everything so far, and nothing more */
			pl_art_stat(s, "p.out", &i);
			ok &= i.size == (int64_t)ref.n;
			ok &= read_all(s, "p.out", i.gen, 1 + rnd() % 30, &b) == (ssize_t)ref.n &&
			      (ref.n == 0 || memcmp(b.p, ref.p, ref.n) == 0);
		}
	}
	CHECK(w && ok, "pieces: 300 appends of 0-39 bytes, read back while growing (%zu bytes)", ref.n);
	CHECK(w && pl_art_finish(w, 0) == 0, "pieces: finish");
	CHECK(pl_art_stat(s, "p.out", &i) == 0 && i.size == (int64_t)ref.n && i.done,
	      "pieces: final size");
	ok = 1;
	for (int k = 0; k < 500; k++) {
		int64_t off = (int64_t)(rnd() % (ref.n + 10));
		size_t n = 1 + rnd() % sizeof buf;
		ssize_t got = pl_art_read(s, "p.out", i.gen, off, buf, n);
		ssize_t avail = off >= (int64_t)ref.n ? 0 : (ssize_t)ref.n - off;
		if (got < 0 || got > (ssize_t)n || (avail > 0 && got == 0) || got > avail ||
		    memcmp(buf, ref.p + (off < (int64_t)ref.n ? off : 0), (size_t)got) != 0) {
			printf("# read at %lld of %zu: %zd, %zd there\n", (long long)off, n, got, avail);
			ok = 0;
		}
	}
	CHECK(ok, "pieces: 500 reads at random offsets and sizes match");
	if (url) {
		redisReply *r = keys("c:p.out:*");
		int small = r && r->elements > 0;
		for (size_t k = 0; small && k < r->elements; k++) {
			redisReply *l = redisCommand(ctl, "STRLEN %s", r->element[k]->str);
			small = l && l->integer <= 7;
			freeReplyObject(l);
		}
		CHECK(small && r->elements == (ref.n + 6) / 7, "pieces: %zu chunk keys, none longer than 7 bytes",
		      r ? r->elements : 0);
		freeReplyObject(r);
	}
	pl_buf_free(&ref);
	pl_buf_free(&b);
	pl_art_close(s);
}

static void t_replace(void)
{
	struct pl_art_info i;
	struct pl_buf b = PL_BUF_INIT;
	char buf[8];

	new_run();
	struct pl_art *s = open_run(1, 4, 0);
	if (!s) {
		CHECK(0, "replace: open");
		return;
	}
	struct pl_art_writer *w1 = pl_art_writer(s, "r.out", 1);
	CHECK(w1 && pl_art_append(w1, "first attempt\n", 14) == 0, "replace: attempt 1 writes");
	pl_art_stat(s, "r.out", &i);
	uint64_t g1 = i.gen;
	CHECK(pl_art_read(s, "r.out", g1, 0, buf, 4) == 4 && memcmp(buf, "firs", 4) == 0,
	      "replace: a reader has read part of it");
	struct pl_art_writer *w2 = pl_art_writer(s, "r.out", 2);
	CHECK(w2 != NULL, "replace: attempt 2 starts");
	CHECK(pl_art_read(s, "r.out", g1, 4, buf, 5) == PL_ART_REPLACED,
	      "replace: the reader of attempt 1 is told it was replaced");
	CHECK(pl_art_stat(s, "r.out", &i) == 0 && i.gen > g1 && i.attempt == 2 && i.size == 0 &&
	      !i.done, "replace: attempt 2 is current, empty");
	uint64_t g2 = i.gen;
	CHECK(pl_art_append(w2, "second\n", 7) == 0, "replace: attempt 2 writes");
	if (url) {
		redisReply *r = keys("c:r.out:1:*");
		CHECK(r && r->elements == 0, "replace: attempt 1's chunks are deleted");
		freeReplyObject(r);
		/* attempt 1 still running somewhere (a Pod thought lost) */
		CHECK(pl_art_append(w1, "more from 1\n", 12) == PL_ART_REPLACED,
		      "replace: the old writer learns it was replaced");
		CHECK(strstr(pl_art_errstr(s), "replaced by a newer writer"), "replace: says so");
		pl_art_abandon(w1);
		r = keys("c:r.out:1:*");
		CHECK(r && r->elements == 0, "replace: and removed what it wrote");
		freeReplyObject(r);
	} else {
		/* the old writer's file is no longer the output's */
		CHECK(pl_art_append(w1, "more from 1\n", 12) == 0, "replace: the old writer writes into nothing");
		CHECK(pl_art_finish(w1, 0) == PL_ART_REPLACED, "replace: and cannot finish");
		CHECK(strstr(pl_art_errstr(s), "replaced by a newer writer"), "replace: says so");
	}
	CHECK(pl_art_finish(w2, 0) == 0 && pl_art_stat(s, "r.out", &i) == 0 && i.gen == g2 &&
	      i.done && i.size == 7, "replace: attempt 2 finishes alone");
	CHECK(read_all(s, "r.out", g2, 3, &b) == 7 && is(&b, "second\n"),
	      "replace: readers see attempt 2's bytes only");
	/* a writer of the same attempt again (dagrun resumed) is a new generation too */
	struct pl_art_writer *w3 = pl_art_writer(s, "r.out", 2);
	CHECK(w3 && pl_art_stat(s, "r.out", &i) == 0 && i.gen > g2 && i.size == 0,
	      "replace: the same attempt again starts afresh");
	pl_art_abandon(w3);
	pl_buf_free(&b);
	pl_art_close(s);
}

static void t_values(void)
{
	char *v = NULL;
	size_t n = 0;

	new_run();
	struct pl_art *s = open_run(1, 0, 0);
	if (!s) {
		CHECK(0, "values: open");
		return;
	}
	CHECK(pl_art_get(s, "t", "exit", &v, &n) == PL_ART_MISSING && !v, "values: none yet");
	CHECK(pl_art_set(s, "t", "exit", "0", 1) == 0, "values: set");
	CHECK(pl_art_get(s, "t", "exit", &v, &n) == 0 && n == 1 && strcmp(v, "0") == 0,
	      "values: get");
	free(v);
	CHECK(pl_art_set(s, "t/3", "accuracy", "a\0b\n", 4) == 0 &&
	      pl_art_get(s, "t/3", "accuracy", &v, &n) == 0 && n == 4 && memcmp(v, "a\0b\n", 4) == 0,
	      "values: any bytes, per child");
	free(v);
	CHECK(pl_art_set(s, "t", "exit", "137", 3) == 0 && pl_art_get(s, "t", "exit", &v, &n) == 0 &&
	      strcmp(v, "137") == 0, "values: overwritten");
	free(v);
	CHECK(pl_art_set(s, "t", "bad field", "1", 1) == PL_ART_ERR &&
	      strstr(pl_art_errstr(s), "bad field name 'bad field'"), "values: field names are checked");
	CHECK(pl_art_set(s, "t", "", "1", 1) == PL_ART_ERR, "values: empty field name");
	pl_art_close(s);
}

static void t_splice(void)
{
	struct pl_art_info i;
	struct pl_buf b = PL_BUF_INIT;
	const char *parts[] = { "part zero\n", "", "two: a longer part, over several chunks\n", "3\n" };
	char key[32], buf[64];
	int ok = 1;

	new_run();
	struct pl_art *s = open_run(1, 5, 0);
	if (!s) {
		CHECK(0, "splice: open");
		return;
	}
	for (int k = 0; k < 4; k++) {
		snprintf(key, sizeof key, "f/%d.out", k);
		struct pl_art_writer *w = pl_art_writer(s, key, 1);
		ok &= w && pl_art_append(w, parts[k], strlen(parts[k])) == 0 &&
		      pl_art_finish(w, 0) == 0;
	}
	CHECK(ok, "splice: four children, one empty");
	struct pl_art_writer *c = pl_art_writer(s, "g/0.out", 1);
	pl_art_append(c, "unfinished", 10);
	struct pl_art_writer *f = pl_art_writer(s, "f.out", 1);
	CHECK(f && pl_art_splice(f, "f/0.out") == 0, "splice: the first part");
	pl_art_stat(s, "f.out", &i);
	CHECK(i.size == 10 && !i.done && read_all(s, "f.out", i.gen, 64, &b) == 10 &&
	      is(&b, parts[0]), "splice: readable at once, while the fan-in goes on");
	CHECK(pl_art_splice(f, "g/0.out") == PL_ART_ERR &&
	      strstr(pl_art_errstr(s), "it is not finished"), "splice: an unfinished output is refused");
	CHECK(pl_art_splice(f, "nope.out") == PL_ART_MISSING, "splice: a missing output");
	CHECK(pl_art_append(f, "x", 1) == PL_ART_ERR, "splice: no appending to a spliced output");
	ok = 1;
	for (int k = 1; k < 4; k++) {
		snprintf(key, sizeof key, "f/%d.out", k);
		ok &= pl_art_splice(f, key) == 0;
	}
	CHECK(ok && pl_art_finish(f, 0) == 0, "splice: the rest, in order, and done");
	pl_art_abandon(c);
	struct pl_buf want = PL_BUF_INIT;
	for (int k = 0; k < 4; k++)
		pl_buf_adds(&want, parts[k]);
	pl_art_stat(s, "f.out", &i);
	CHECK(i.done && i.size == (int64_t)want.n, "splice: the size is the sum");
	CHECK(read_all(s, "f.out", i.gen, 3, &b) == (ssize_t)want.n && memcmp(b.p, want.p, want.n) == 0,
	      "splice: read in pieces of 3: the children in order");
	ok = 1;
	for (int64_t off = 0; off <= (int64_t)want.n; off++) {
		ssize_t k = pl_art_read(s, "f.out", i.gen, off, buf, sizeof buf);
		ok &= k >= 0 && (off == (int64_t)want.n ? k == 0 : k > 0) &&
		      memcmp(buf, want.p + off, (size_t)k) == 0;
	}
	CHECK(ok, "splice: from every offset");
	if (url) {
		struct pl_art_writer *f2 = pl_art_writer(s, "h.out", 1);
		CHECK(pl_art_splice(f2, "f.out") == PL_ART_ERR && strstr(pl_art_errstr(s), "spliced itself"),
		      "splice: a spliced output is not spliced again");
		pl_art_abandon(f2);
		redisReply *r = keys("c:f.out:*");
		CHECK(r && r->elements == 0, "splice: by reference: no chunk of its own");
		freeReplyObject(r);
	} else {
		char path[700];
		struct stat st;
		snprintf(path, sizeof path, "%s/tasks/f.out", spec);
		CHECK(stat(path, &st) == 0 && st.st_size == (off_t)want.n, "splice: copied into tasks/f.out");
	}
	pl_buf_free(&want);
	pl_buf_free(&b);
	pl_art_close(s);
}

/* A reader following a writer (another process) that is still writing. */
static void t_follow(void)
{
	struct pl_art_info i;
	struct pl_buf b = PL_BUF_INIT;
	char buf[4096];
	int seen_growing = 0, wakes = 0, polled = 0;
	pid_t pid;

	new_run();
	struct pl_art *s = open_run(1, 16, 0);
	if (!s) {
		CHECK(0, "follow: open");
		return;
	}
	CHECK(pl_art_follow(s, "w.out") == 0, "follow: before the writer exists");
	if ((pid = fork()) == 0) {
		struct pl_art *ws = open_run(0, 0, 0);
		struct pl_art_writer *w = ws ? pl_art_writer(ws, "w.out", 1) : NULL;
		int bad = !w;
		for (int k = 0; k < 30 && !bad; k++) {
			char line[32];
			int n = snprintf(line, sizeof line, "line %d\n", k);
			struct timespec ts = { 0, 15 * 1000000L };
			bad |= pl_art_append(w, line, (size_t)n) != 0;
			nanosleep(&ts, NULL);
		}
		bad |= !w || pl_art_finish(w, 0) != 0;
		pl_art_close(ws);
		_exit(bad);
	}
	double t0 = (double)time(NULL);
	for (;;) {
		int rc = pl_art_stat(s, "w.out", &i);
		if (rc == 0) {
			ssize_t k;
			while ((k = pl_art_read(s, "w.out", i.gen, (int64_t)b.n, buf, sizeof buf)) > 0)
				pl_buf_add(&b, buf, (size_t)k);
			if (!i.done && b.n > 0)
				seen_growing = 1;
			if (i.done && (int64_t)b.n == i.size)
				break;
		}
		if (time(NULL) - t0 > 20)
			break;
		/* half the time through the descriptor, as a poll() loop would */
		if (wakes % 2) {
			int timeout = 5000;
			int fd = pl_art_fd(s, &timeout);
			struct pollfd p = { fd, POLLIN, 0 };
			polled |= fd >= 0 && timeout <= PL_ART_RECHECK_MS;
			poll(&p, fd >= 0, timeout);
			pl_art_drain(s);
		} else {
			pl_art_wait(s, 5000);
		}
		wakes++;
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "follow: the writer wrote 30 lines");
	struct pl_buf want = PL_BUF_INIT;
	for (int k = 0; k < 30; k++)
		pl_buf_printf(&want, "line %d\n", k);
	CHECK(b.n == want.n && memcmp(b.p, want.p, want.n) == 0, "follow: the reader got every line in order");
	CHECK(seen_growing, "follow: and read lines before the writer finished");
	CHECK(polled, "follow: through a descriptor poll() can wait on");
	/* woken by changes, not spinning: about one wake per append */
	CHECK(wakes >= 3 && wakes <= 100, "follow: %d wake-ups for 30 appends", wakes);
	pl_art_unfollow(s, "w.out");
	pl_buf_free(&want);
	pl_buf_free(&b);
	pl_art_close(s);
}

static void t_keys(void)
{
	const char *bad[] = { "", "/abs.out", "a//b.out", "../x.out", "a/./b.out", "a/..", "dir/",
			      "tab\there" };
	struct pl_art_info i;
	int ok = 1;

	new_run();
	struct pl_art *s = open_run(1, 0, 0);
	if (!s) {
		CHECK(0, "keys: open");
		return;
	}
	for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
		ok &= pl_art_writer(s, bad[k], 1) == NULL && pl_art_stat(s, bad[k], &i) == PL_ART_ERR;
		ok &= strstr(pl_art_errstr(s), "bad key") != NULL;
	}
	CHECK(ok, "keys: absolute, empty, '.', '..' and control characters are refused");
	struct pl_art_writer *w = pl_art_writer(s, "deep/er/key with space.log", 1);
	CHECK(w && pl_art_finish(w, 0) == 0 && pl_art_stat(s, "deep/er/key with space.log", &i) == 0,
	      "keys: nested names and spaces are fine");
	pl_art_close(s);
}

static void t_delete(void)
{
	struct pl_art_info i;

	new_run();
	struct pl_art *s = open_run(1, 0, 0);
	if (!s) {
		CHECK(0, "delete: open");
		return;
	}
	struct pl_art_writer *w = pl_art_writer(s, "d.out", 1);
	pl_art_append(w, "x", 1);
	pl_art_finish(w, 0);
	pl_art_set(s, "d", "exit", "0", 1);
	CHECK(pl_art_delete(s) == 0, "delete: the run");
	CHECK(pl_art_stat(s, "d.out", &i) == PL_ART_GONE && strstr(pl_art_errstr(s), "gone"),
	      "delete: its outputs are gone: %s", pl_art_errstr(s));
	pl_art_close(s);
	CHECK(open_run(0, 0, 0) == NULL, "delete: the run cannot be opened");
	if (url) {
		redisReply *r = keys("*");
		CHECK(r && r->elements == 0, "delete: no key is left");
		freeReplyObject(r);
	}
}

static void t_missing_run(void)
{
	struct pl_art_opts o = { .run = "never-made" };
	char err[512];
	int status = 0;

	new_run();
	o.spec = spec;
	CHECK(pl_art_open(&o, err, sizeof err, &status) == NULL && status == PL_EX_USAGE,
	      "missing run: a configuration error");
	CHECK(strstr(err, url ? "no run 'never-made' in redis://" : "no run in '"), "missing run: %s", err);
	o.run = "a/b";
	o.create = 1;
	CHECK(pl_art_open(&o, err, sizeof err, &status) == NULL && status == PL_EX_USAGE &&
	      strstr(err, "bad run id 'a/b'"), "missing run: bad run ids: %s", err);
	o.run = "";
	CHECK(pl_art_open(&o, err, sizeof err, &status) == NULL && strstr(err, "bad run id"),
	      "missing run: an empty run id");
}

/* --- Redis only ---------------------------------------------------------------- */

static long ttl_of(const char *key)
{
	redisReply *r = redisCommand(ctl, "TTL %s", key);
	long t = r && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -3;
	freeReplyObject(r);
	return t;
}

static void t_ttl(void)
{
	new_run();
	struct pl_art *s = open_run(1, 8, 1000);
	if (!s) {
		CHECK(0, "ttl: open");
		return;
	}
	CHECK(pl_art_ttl(s) == 1000, "ttl: as asked");
	struct pl_art_writer *w = pl_art_writer(s, "a.out", 1);
	pl_art_append(w, "0123456789abcdefghij", 20);
	pl_art_finish(w, 0);
	w = pl_art_writer(s, "a.log", 1);	/* left unfinished */
	pl_art_append(w, "log", 3);
	struct pl_art_writer *f = pl_art_writer(s, "f.out", 1);
	pl_art_splice(f, "a.out");
	pl_art_finish(f, 0);
	pl_art_set(s, "a", "exit", "0", 1);
	redisReply *r = keys("*");
	int ok = r && r->elements >= 8;
	for (size_t k = 0; ok && k < r->elements; k++) {
		long t = ttl_of(r->element[k]->str);
		if (t <= 0 || t > 1000) {
			printf("# %s: ttl %ld\n", r->element[k]->str, t);
			ok = 0;
		}
	}
	CHECK(ok, "ttl: every one of the run's %zu keys expires within 1000 s", r ? r->elements : 0);
	freeReplyObject(r);

	/* a second handle (the shim) takes the run's TTL */
	struct pl_art *s2 = open_run(0, 0, 0);
	CHECK(s2 && pl_art_ttl(s2) == 1000 && pl_art_chunk(s2) == 8,
	      "ttl: a handle on the existing run takes its TTL and chunk size");
	pl_art_close(s2);

	/* touch sets them all again */
	char k0[200];
	snprintf(k0, sizeof k0, "plumb:{%s}:c:a.out:1:0", runid);
	freeReplyObject(redisCommand(ctl, "EXPIRE %s 5", k0));
	CHECK(ttl_of(k0) <= 5 && pl_art_touch(s) == 0 && ttl_of(k0) > 900, "ttl: touch sets them again");
	pl_art_abandon(w);
	pl_art_close(s);
}

/* Keys written long ago are refreshed while the writer goes on. */
static void t_refresh(void)
{
	new_run();
	struct pl_art *s = open_run(1, 4, 8);	/* refreshed every 8/4 = 2 s */
	if (!s) {
		CHECK(0, "refresh: open");
		return;
	}
	struct pl_art_writer *w = pl_art_writer(s, "slow.out", 1);
	char k0[200];
	snprintf(k0, sizeof k0, "plumb:{%s}:c:slow.out:1:0", runid);
	pl_art_append(w, "abcd", 4);
	sleep(3);
	long before = ttl_of(k0);
	pl_art_append(w, "efgh", 4);
	CHECK(before <= 5 && ttl_of(k0) >= 7, "refresh: the first chunk's TTL (%ld s left) set again by a later append",
	      before);
	pl_art_abandon(w);
	pl_art_close(s);
}

static void t_expiry(void)
{
	struct pl_art_info i;
	char buf[8], *v;
	size_t n;

	new_run();
	struct pl_art *s = open_run(1, 0, 1);
	if (!s) {
		CHECK(0, "expiry: open");
		return;
	}
	struct pl_art_writer *w = pl_art_writer(s, "e.out", 1);
	pl_art_append(w, "soon gone", 9);
	pl_art_set(s, "e", "exit", "0", 1);
	pl_art_stat(s, "e.out", &i);
	sleep(2);
	CHECK(open_run(0, 0, 0) == NULL, "expiry: an expired run cannot be opened");
	CHECK(pl_art_stat(s, "e.out", &i) == PL_ART_GONE &&
	      strstr(pl_art_errstr(s), "is gone from redis://"), "expiry: stat: %s", pl_art_errstr(s));
	CHECK(pl_art_read(s, "e.out", i.gen, 0, buf, sizeof buf) == PL_ART_GONE, "expiry: read: gone");
	CHECK(pl_art_get(s, "e", "exit", &v, &n) == PL_ART_GONE, "expiry: values: gone");
	CHECK(pl_art_append(w, "more", 4) == PL_ART_GONE, "expiry: the writer: gone");
	pl_art_abandon(w);
	CHECK(pl_art_writer(s, "f.out", 1) == NULL && strstr(pl_art_errstr(s), "gone"),
	      "expiry: no new writer");
	redisReply *r = keys("*");
	CHECK(r && r->elements == 0, "expiry: and they left nothing behind");
	freeReplyObject(r);
	pl_art_close(s);
}

/* The server drops our connections: the store connects again. */
static void t_reconnect(void)
{
	struct pl_art_info i;
	struct pl_buf b = PL_BUF_INIT;

	new_run();
	struct pl_art *s = open_run(1, 4, 0);
	struct pl_art *other = open_run(0, 0, 0);
	if (!s || !other) {
		CHECK(0, "reconnect: open");
		return;
	}
	struct pl_art_writer *w = pl_art_writer(s, "k.out", 1);
	pl_art_append(w, "before ", 7);
	pl_art_follow(other, "k.out");
	pl_art_drain(other);
	redisReply *r = redisCommand(ctl, "CLIENT KILL TYPE normal SKIPME yes");
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer >= 2, "reconnect: %lld connections killed",
	      r ? r->integer : -1);
	freeReplyObject(r);
	r = redisCommand(ctl, "CLIENT KILL TYPE pubsub");
	freeReplyObject(r);
	CHECK(pl_art_append(w, "after\n", 6) == 0, "reconnect: the writer goes on");
	CHECK(pl_art_wait(other, 3000) == 1, "reconnect: a follower whose subscription dropped is woken");
	CHECK(pl_art_stat(other, "k.out", &i) == 0 && i.size == 13, "reconnect: and sees the new size");
	CHECK(pl_art_finish(w, 0) == 0, "reconnect: finish");
	pl_art_stat(other, "k.out", &i);
	CHECK(read_all(other, "k.out", i.gen, 5, &b) == 13 && is(&b, "before after\n"),
	      "reconnect: nothing lost, nothing twice");
	pl_buf_free(&b);
	pl_art_close(other);
	pl_art_close(s);
}

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static long long used_memory(void)
{
	redisReply *r = redisCommand(ctl, "INFO memory");
	const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "used_memory:") : NULL;
	long long v = p ? atoll(p + 12) : -1;
	freeReplyObject(r);
	return v;
}

/* 100 MB through the store: in pieces of up to 256 KiB, read back in 1 MiB. */
static void t_big(void)
{
	const int64_t total = 100LL * 1000 * 1000;
	const size_t maxpiece = 256 * 1024, rbuf = 1024 * 1024;
	struct pl_art_info i;
	struct gen wg = { 7, 0, 0 }, rg = { 7, 0, 0 };
	char *piece = pl_xmalloc(maxpiece), *buf = pl_xmalloc(rbuf), *want = pl_xmalloc(rbuf);
	int64_t written = 0, got = 0;
	int ok = 1;

	new_run();
	long rss0 = maxrss_kb();
	long long mem0 = used_memory();
	struct pl_art *s = open_run(1, 0, 0);
	if (!s) {
		CHECK(0, "big: open");
		return;
	}
	struct pl_art_writer *w = pl_art_writer(s, "big.out", 1);
	rnd_state = 99;
	while (w && ok && written < total) {
		size_t n = 1 + rnd() % maxpiece;
		if ((int64_t)n > total - written)
			n = (size_t)(total - written);
		gen_bytes(&wg, piece, n);
		ok = pl_art_append(w, piece, n) == 0;
		written += (int64_t)n;
	}
	CHECK(ok && pl_art_finish(w, 0) == 0, "big: 100 MB written in pieces of up to 256 KiB");
	CHECK(pl_art_stat(s, "big.out", &i) == 0 && i.size == total && i.done, "big: its size");
	long long mem1 = used_memory();
	while (ok && got < total) {
		ssize_t k = pl_art_read(s, "big.out", i.gen, got, buf, rbuf);
		if (k <= 0) {
			printf("# read at %lld: %zd %s\n", (long long)got, k, pl_art_errstr(s));
			ok = 0;
			break;
		}
		gen_bytes(&rg, want, (size_t)k);
		ok = memcmp(buf, want, (size_t)k) == 0;
		got += k;
	}
	CHECK(ok && got == total, "big: read back byte for byte");
	long grew = maxrss_kb() - rss0;
	CHECK(grew < 32 * 1024, "big: the client's resident memory grew by %ld KiB, far below the output's size",
	      grew);
	/* every chunk is at most the chunk size, and there are just enough */
	redisReply *r = keys("c:big.out:*");
	size_t nk = r ? r->elements : 0, bad = 0;
	for (size_t k = 0; k < nk; k += 1) {
		redisAppendCommand(ctl, "STRLEN %s", r->element[k]->str);
	}
	for (size_t k = 0; k < nk; k++) {
		redisReply *l;
		if (redisGetReply(ctl, (void **)&l) != REDIS_OK)
			break;
		bad += l->integer > PL_ART_CHUNK_DEFAULT;
		freeReplyObject(l);
	}
	freeReplyObject(r);
	CHECK(nk == (size_t)((total + PL_ART_CHUNK_DEFAULT - 1) / PL_ART_CHUNK_DEFAULT) && bad == 0,
	      "big: %zu chunk keys, none over %d bytes", nk, PL_ART_CHUNK_DEFAULT);
	/* chunks built by several appends are rewritten whole: Redis holds about
	 * the output's size, not the doubled buffers APPEND leaves */
	double ratio = (double)(mem1 - mem0) / (double)total;
	CHECK(mem0 > 0 && ratio < 1.15, "big: Redis holds %.3f bytes per output byte", ratio);
	pl_art_delete(s);
	pl_art_close(s);
	free(piece);
	free(buf);
	free(want);
}

static void t_open_errors(void)
{
	struct pl_art_opts o = { .run = "r", .create = 1 };
	char err[512];
	int status = 0;

	o.spec = "redis://127.0.0.1:notaport";
	CHECK(pl_art_open(&o, err, sizeof err, &status) == NULL && status == PL_EX_USAGE &&
	      strstr(err, "bad port"), "open: a bad URL is a configuration error: %s", err);
	o.spec = "redis://127.0.0.1:1";
	o.timeout_ms = 500;
	CHECK(pl_art_open(&o, err, sizeof err, &status) == NULL && status == PL_EX_UNAVAILABLE &&
	      strstr(err, "redis redis://127.0.0.1:1: "), "open: an unreachable server is unavailable: %s", err);
	o.spec = "redis://:secret@127.0.0.1:1";
	CHECK(pl_art_open(&o, err, sizeof err, &status) == NULL && !strstr(err, "secret"),
	      "open: the password is never shown: %s", err);
}

static const struct {
	const char *name;
	void (*fn)(void);
	int live_only;
} tests[] = {
	{ "basics", t_basics, 0 }, { "pieces", t_pieces, 0 }, { "replace", t_replace, 0 },
	{ "values", t_values, 0 }, { "splice", t_splice, 0 }, { "follow", t_follow, 0 },
	{ "keys", t_keys, 0 }, { "delete", t_delete, 0 }, { "missing-run", t_missing_run, 0 },
	{ "ttl", t_ttl, 1 }, { "refresh", t_refresh, 1 }, { "expiry", t_expiry, 1 },
	{ "reconnect", t_reconnect, 1 }, { "big", t_big, 1 }, { "open-errors", t_open_errors, 1 },
};

int main(int argc, char **argv)
{
	size_t nt = sizeof tests / sizeof *tests;
	int first = 1;

	signal(SIGPIPE, SIG_IGN);
	if (argc > 2 && strcmp(argv[1], "live") == 0) {
		struct pl_redisurl u;
		char err[512];
		url = argv[2];
		first = 3;
		if (pl_redisurl_parse(url, &u, err, sizeof err) < 0 ||
		    !(ctl = pl_redis_connect(&u, 5000, err, sizeof err, NULL))) {
			printf("not ok 1 - connect to %s: %s\n1..1\n", url, err);
			return 1;
		}
		pl_redisurl_free(&u);
	} else {
		const char *t = getenv("TMPDIR");
		snprintf(tmp, sizeof tmp, "%s/store-unit.XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(tmp)) {
			printf("not ok 1 - mkdtemp: %s\n1..1\n", strerror(errno));
			return 1;
		}
	}
	for (size_t k = 0; k < nt; k++) {
		int run = argc <= first;
		for (int a = first; a < argc; a++)
			run |= strcmp(argv[a], tests[k].name) == 0;
		if (run && (url || !tests[k].live_only))
			tests[k].fn();
	}
	if (ctl)
		redisFree(ctl);
	if (!url) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", tmp);
	}
	return done_testing();
}
