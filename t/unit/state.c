/* Unit tests for lib/state.c (the table, commits, the file format, the file
 * store) and lib/redisurl.c (parsing; connections are tested by the bats
 * suite against a real redis-server). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "redisurl.h"
#include "state.h"
#include "unit.h"

static char tmpdir[] = "/tmp/plumb-state-XXXXXX";

static void idof(char *buf, size_t n, int i)
{
	snprintf(buf, n, "dir%d/doc-%d.md", i % 17, i);
}

static void sha_of(int i, unsigned char sha[32])
{
	char s[32];
	snprintf(s, sizeof s, "content %d", i);
	pl_sha256_raw(s, strlen(s), sha);
}

static void table_tests(void)
{
	struct pl_state st;
	char id[64];
	int created, ok;
	const int N = 20000;

	pl_state_init(&st);
	CHECK(pl_state_get(&st, "x", 1) == NULL, "get on an empty table");
	CHECK(pl_state_del(&st, "x", 1) == 0, "del on an empty table");

	ok = 1;
	for (int i = 0; i < N; i++) {
		idof(id, sizeof id, i);
		struct pl_state_ent *e = pl_state_put(&st, id, strlen(id), &created);
		ok &= created;
		sha_of(i, e->sha);
		e->aux = (uint32_t)i;
	}
	CHECK(ok && st.n == (size_t)N, "put %d distinct ids", N);
	CHECK(st.cap >= st.n * 4 / 3 && (st.cap & (st.cap - 1)) == 0,
	      "load factor at most 3/4, power-of-two capacity");

	idof(id, sizeof id, 7);
	pl_state_put(&st, id, strlen(id), &created);
	CHECK(!created && st.n == (size_t)N, "put of an existing id finds it");

	ok = 1;
	for (int i = 0; i < N; i++) {
		unsigned char sha[32];
		idof(id, sizeof id, i);
		struct pl_state_ent *e = pl_state_get(&st, id, strlen(id));
		sha_of(i, sha);
		ok &= e && e->aux == (uint32_t)i && memcmp(e->sha, sha, 32) == 0 &&
		      strcmp(pl_state_id(&st, e), id) == 0;
	}
	CHECK(ok, "every id found with its digest");
	CHECK(pl_state_get(&st, "dir0/doc-0.m", 12) == NULL, "a prefix of an id is not found");

	/* delete every third id; backward shifting must keep the rest findable */
	ok = 1;
	for (int i = 0; i < N; i += 3) {
		idof(id, sizeof id, i);
		ok &= pl_state_del(&st, id, strlen(id)) == 1;
	}
	CHECK(ok, "deletes report success");
	ok = 1;
	for (int i = 0; i < N; i++) {
		idof(id, sizeof id, i);
		struct pl_state_ent *e = pl_state_get(&st, id, strlen(id));
		ok &= (i % 3 == 0) ? e == NULL : (e && e->aux == (uint32_t)i);
	}
	CHECK(ok, "after deletes: deleted ids gone, all others still found");
	CHECK(st.n == (size_t)(N - (N + 2) / 3), "count after deletes");
	idof(id, sizeof id, 0);
	CHECK(pl_state_del(&st, id, strlen(id)) == 0, "deleting twice reports not found");

	size_t n;
	struct pl_state_ent **v = pl_state_sorted(&st, &n);
	ok = n == st.n;
	for (size_t i = 1; i < n && ok; i++)
		ok = strcmp(pl_state_id(&st, v[i - 1]), pl_state_id(&st, v[i])) < 0;
	CHECK(ok, "sorted gives every entry in byte order");
	free(v);
	pl_state_free(&st);

	/* random puts and deletes against a plain array */
	pl_state_init(&st);
	static unsigned char present[5000];
	memset(present, 0, sizeof present);
	srand(42);
	ok = 1;
	for (int step = 0; step < 200000 && ok; step++) {
		int i = rand() % 5000;
		idof(id, sizeof id, i);
		if (rand() % 3) {
			struct pl_state_ent *e = pl_state_put(&st, id, strlen(id), &created);
			ok &= created == !present[i];
			e->aux = (uint32_t)i;
			present[i] = 1;
		} else {
			ok &= pl_state_del(&st, id, strlen(id)) == present[i];
			present[i] = 0;
		}
	}
	size_t npresent = 0;
	for (int i = 0; i < 5000; i++) {
		idof(id, sizeof id, i);
		struct pl_state_ent *e = pl_state_get(&st, id, strlen(id));
		ok &= present[i] ? (e && e->aux == (uint32_t)i) : e == NULL;
		npresent += present[i];
	}
	CHECK(ok && st.n == npresent, "200000 random puts and deletes agree with a plain array");
	pl_state_free(&st);

	/* ids with NUL bytes and ids that are prefixes of each other */
	pl_state_init(&st);
	pl_state_put(&st, "a\0b", 3, NULL);
	pl_state_put(&st, "a", 1, NULL);
	pl_state_put(&st, "a/", 2, NULL);
	pl_state_put(&st, "a.md", 4, NULL);
	CHECK(st.n == 4 && pl_state_get(&st, "a\0b", 3) && !pl_state_get(&st, "a\0c", 3),
	      "ids are byte strings, NUL included");
	v = pl_state_sorted(&st, &n);
	CHECK(n == 4 && v[0]->len == 1 && v[1]->len == 3 && strcmp(pl_state_id(&st, v[2]), "a.md") == 0 &&
	      strcmp(pl_state_id(&st, v[3]), "a/") == 0, "shorter id first, then bytewise");
	free(v);
	pl_state_free(&st);
}

static struct pl_state_ent *put_sha(struct pl_state *st, const char *id, int content)
{
	struct pl_state_ent *e = pl_state_put(st, id, strlen(id), NULL);
	sha_of(content, e->sha);
	return e;
}

static void set_stat(struct pl_state_ent *e, int64_t size, int64_t mtime, uint64_t ino)
{
	e->size = size;
	e->mtime_ns = mtime;
	e->ino = ino;
	e->flags |= PL_ENT_STAT;
}

static void apply_tests(void)
{
	struct pl_state st, acks, pending;
	struct pl_commit_stats cs;
	struct pl_state_ent *e;
	unsigned char sha[32];

	pl_state_init(&st);
	pl_state_init(&acks);
	pl_state_init(&pending);
	set_stat(put_sha(&st, "keep", 1), 10, 100, 1);
	set_stat(put_sha(&st, "changed", 2), 20, 200, 2);
	set_stat(put_sha(&st, "gone", 3), 30, 300, 3);
	put_sha(&st, "refresh", 4);			/* no stat: was racy */
	set_stat(put_sha(&st, "stale-refresh", 5), 50, 500, 5);
	set_stat(put_sha(&st, "same-again", 6), 60, 600, 6);

	put_sha(&acks, "changed", 22);
	put_sha(&acks, "new", 7);
	put_sha(&acks, "new-racy", 8);
	put_sha(&acks, "new-other", 9);
	put_sha(&acks, "same-again", 6);
	pl_state_put(&acks, "gone", 4, NULL)->flags |= PL_ENT_DELETED;
	pl_state_put(&acks, "never-there", 11, NULL)->flags |= PL_ENT_DELETED;

	set_stat(put_sha(&pending, "changed", 22), 21, 201, 2);
	set_stat(put_sha(&pending, "new", 7), 70, 700, 7);
	put_sha(&pending, "new-racy", 8);		/* seen racy: no stat */
	set_stat(put_sha(&pending, "new-other", 99), 90, 900, 9);	/* another content */
	set_stat(put_sha(&pending, "refresh", 4), 40, 400, 4);
	set_stat(put_sha(&pending, "stale-refresh", 55), 51, 501, 5);
	set_stat(put_sha(&pending, "unacked-new", 12), 1, 1, 12);

	pl_state_apply(&st, &acks, &pending, &cs);
	CHECK(cs.indexed == 5 && cs.deleted == 2 && cs.refreshed == 1, "commit counts (%lu %lu %lu)",
	      cs.indexed, cs.deleted, cs.refreshed);
	e = pl_state_get(&st, "keep", 4);
	CHECK(e && e->size == 10 && !(e->flags & PL_ENT_DIRTY), "an unacked id is untouched");
	e = pl_state_get(&st, "changed", 7);
	sha_of(22, sha);
	CHECK(e && !memcmp(e->sha, sha, 32) && e->size == 21 && e->mtime_ns == 201 &&
	      (e->flags & PL_ENT_DIRTY), "acked change takes the pending stat");
	CHECK(!pl_state_get(&st, "gone", 4) && !pl_state_get(&st, "never-there", 11),
	      "deleted acks remove ids");
	e = pl_state_get(&st, "new", 3);
	CHECK(e && (e->flags & PL_ENT_STAT) && e->ino == 7, "acked new id with pending stat");
	e = pl_state_get(&st, "new-racy", 8);
	CHECK(e && !(e->flags & PL_ENT_STAT), "acked id whose pending had no stat: none");
	e = pl_state_get(&st, "new-other", 9);
	sha_of(9, sha);
	CHECK(e && !memcmp(e->sha, sha, 32) && !(e->flags & PL_ENT_STAT),
	      "pending sha differs from the ack: no stat, rehash next time");
	e = pl_state_get(&st, "refresh", 7);
	CHECK(e && (e->flags & PL_ENT_STAT) && e->size == 40 && (e->flags & PL_ENT_DIRTY),
	      "a refresh with the same sha applies");
	e = pl_state_get(&st, "stale-refresh", 13);
	CHECK(e && e->size == 50 && !(e->flags & PL_ENT_DIRTY), "a refresh with another sha does not");
	CHECK(!pl_state_get(&st, "unacked-new", 11), "pending alone adds nothing");
	e = pl_state_get(&st, "same-again", 10);
	CHECK(e && (e->flags & PL_ENT_STAT) && e->size == 60, "re-acked same sha keeps its stat");
	pl_state_free(&st);
	pl_state_free(&acks);
	pl_state_free(&pending);
}

static void encode_tests(void)
{
	struct pl_state_ent e, d;
	struct pl_buf b = PL_BUF_INIT;

	memset(&e, 0, sizeof e);
	sha_of(1, e.sha);
	pl_state_ent_encode(&e, &b);
	memset(&d, 0, sizeof d);
	CHECK(b.n == 64 && pl_state_ent_decode(&d, b.p, b.n) == 0 && !memcmp(d.sha, e.sha, 32) &&
	      !(d.flags & PL_ENT_STAT), "encode and decode without stat");
	set_stat(&e, 12345, 1700000000123456789LL, 18446744073709551615ULL);
	b.n = 0;
	pl_state_ent_encode(&e, &b);
	CHECK(pl_state_ent_decode(&d, b.p, b.n) == 0 && pl_state_same_stat(&d, &e),
	      "encode and decode with stat (inode 2^64-1)");
	CHECK(pl_state_ent_decode(&d, b.p, 63) < 0, "short digest rejected");
	CHECK(pl_state_ent_decode(&d, b.p, b.n - 1) == 0 && d.ino != e.ino, "a shorter inode parses");
	b.n = 0;
	pl_buf_adds(&b, "zz");
	CHECK(pl_state_ent_decode(&d, b.p, b.n) < 0, "garbage rejected");
	pl_buf_free(&b);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

static void file_tests(void)
{
	char path[256], tmp[256], err[PL_STATE_ERRLEN];
	struct pl_state st, back;
	int ok;

	snprintf(path, sizeof path, "%s/state", tmpdir);
	snprintf(tmp, sizeof tmp, "%s/state.tmp", tmpdir);
	pl_state_init(&st);
	CHECK(pl_state_read_file(&st, path, "state", err) == PL_ST_OK && st.n == 0,
	      "a missing state file is an empty state");
	for (int i = 0; i < 5000; i++) {
		char id[64];
		idof(id, sizeof id, i);
		struct pl_state_ent *e = put_sha(&st, id, i);
		if (i % 2)
			set_stat(e, i, (int64_t)i * 1000000007LL, (uint64_t)i * 3);
	}
	put_sha(&st, "quote\"and\\back\nslash \xc3\xa9", 5);
	CHECK(pl_state_write_file(&st, path, tmp, "state", err) == PL_ST_OK, "write a state file");
	CHECK(access(tmp, F_OK) != 0, "the temp file is renamed away");
	pl_state_init(&back);
	CHECK(pl_state_read_file(&back, path, "state", err) == PL_ST_OK, "read it back (%s)",
	      err);
	ok = back.n == st.n;
	for (size_t i = 0; i < st.n && ok; i++) {
		const struct pl_state_ent *a = &st.ent[i], *b;
		b = pl_state_get(&back, pl_state_id(&st, a), a->len);
		ok = b && !memcmp(a->sha, b->sha, 32) &&
		     ((a->flags & PL_ENT_STAT) ? pl_state_same_stat(a, b) : !(b->flags & PL_ENT_STAT));
	}
	CHECK(ok, "round trip keeps every id, digest and stat");
	pl_state_free(&back);

	pl_state_init(&back);
	CHECK(pl_state_read_file(&back, path, "pending", err) == PL_ST_EDATA &&
	      strstr(err, "kind"), "a state file is not a pending file");
	pl_state_free(&back);

	/* truncated at a line boundary: caught by the header's count */
	FILE *f = fopen(path, "r");
	FILE *g = fopen(tmp, "w");
	char line[512];
	for (int i = 0; i < 100 && fgets(line, sizeof line, f); i++)
		fputs(line, g);
	fclose(f);
	fclose(g);
	pl_state_init(&back);
	CHECK(pl_state_read_file(&back, tmp, "state", err) == PL_ST_EDATA &&
	      strstr(err, "truncated"), "a truncated file is detected (%s)", err);
	pl_state_free(&back);

	const char *hdr = "{\"format\":\"plumb-state\",\"version\":1,\"kind\":\"state\",\"count\":1}\n";
	char text[1024];
	struct {
		const char *body, *want;
	} bad[] = {
		{ "{\"id\":\"a\",\"sha256\":\"xx\"}\n", ":2: missing or bad \"sha256\"" },
		{ "{\"id\":\"a\"\n", ":2: invalid JSON" },
		{ "{\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\n",
		  ":2: missing or bad \"id\"" },
		{ "{\"id\":\"a\",\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"size\":1}\n",
		  ":2: bad \"size\"" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text, "%s%s", hdr, bad[i].body);
		write_text(tmp, text);
		pl_state_init(&back);
		CHECK(pl_state_read_file(&back, tmp, "state", err) == PL_ST_EDATA &&
		      strstr(err, bad[i].want), "bad record %zu: %s", i, err);
		pl_state_free(&back);
	}
	write_text(tmp, "{\"format\":\"plumb-state\",\"version\":2,\"kind\":\"state\",\"count\":0}\n");
	pl_state_init(&back);
	CHECK(pl_state_read_file(&back, tmp, "state", err) == PL_ST_EDATA && strstr(err, "version"),
	      "a newer format version is refused");
	pl_state_free(&back);
	write_text(tmp, "");
	pl_state_init(&back);
	CHECK(pl_state_read_file(&back, tmp, "state", err) == PL_ST_EDATA, "an empty file is refused");
	pl_state_free(&back);
	snprintf(text, sizeof text, "%s%s%s", "{\"format\":\"plumb-state\",\"version\":1,\"kind\":\"state\",\"count\":2}\n",
		 "{\"id\":\"a\",\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\n",
		 "{\"id\":\"a\",\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\n");
	write_text(tmp, text);
	pl_state_init(&back);
	CHECK(pl_state_read_file(&back, tmp, "state", err) == PL_ST_EDATA && strstr(err, "duplicate"),
	      "a duplicate id is refused");
	pl_state_free(&back);

	snprintf(tmp, sizeof tmp, "%s/no/such/dir/state.tmp", tmpdir);
	CHECK(pl_state_write_file(&st, path, tmp, "state", err) == PL_ST_EIO && strstr(err, "cannot create"),
	      "an unwritable temp file is an I/O error");
	pl_state_free(&st);
}

static void store_tests(void)
{
	char spec[200], err[PL_STATE_ERRLEN], pend[300];
	struct pl_store *s;
	struct pl_state st, acks, pending;
	struct pl_commit_stats cs;
	struct stat sb;

	snprintf(spec, sizeof spec, "%s/sub/dir/state", tmpdir);
	CHECK(pl_store_open(&s, spec, "ignored:", 1000, err) == PL_ST_OK, "open a file store");
	CHECK(strcmp(pl_store_name(s), spec) == 0, "its name is the path");
	pl_state_init(&st);
	CHECK(pl_store_load(s, &st, err) == PL_ST_OK && st.n == 0, "load of a new store is empty");

	pl_state_init(&pending);
	set_stat(put_sha(&pending, "a", 1), 1, 1, 1);
	set_stat(put_sha(&pending, "b", 2), 2, 2, 2);
	CHECK(pl_store_put_pending(s, &pending, err) == PL_ST_OK, "put pending creates directories");
	snprintf(pend, sizeof pend, "%s.pending", spec);
	CHECK(stat(pend, &sb) == 0, "pending is STATE.pending");

	pl_state_init(&acks);
	put_sha(&acks, "a", 1);
	CHECK(pl_store_commit(s, &acks, &cs, err) == PL_ST_OK && cs.indexed == 1, "commit one ack");
	pl_state_free(&acks);
	pl_state_init(&acks);
	put_sha(&acks, "b", 2);
	CHECK(pl_store_commit(s, &acks, &cs, err) == PL_ST_OK, "a second commit");
	CHECK(pl_store_load(s, &st, err) == PL_ST_OK && st.n == 2 &&
	      (pl_state_get(&st, "a", 1)->flags & PL_ENT_STAT) &&
	      pl_state_get(&st, "b", 1)->ino == 2, "both commits are in the state, with stats");
	pl_store_close(s);

	CHECK(pl_store_open(&s, "dir/", "p:", 1000, err) == PL_ST_ECONFIG, "a path ending in / is refused");
	pl_store_close(s);
	CHECK(pl_store_open(&s, "redis://h:99999", "p:", 1000, err) == PL_ST_ECONFIG &&
	      strstr(err, "port"), "a bad Redis URL is a config error");
	pl_store_close(s);
	pl_state_free(&st);
	pl_state_free(&acks);
	pl_state_free(&pending);
}

static void url_tests(void)
{
	struct pl_redisurl u;
	char err[256], red[256];

	CHECK(pl_redisurl_parse("redis://localhost", &u, err, sizeof err) == 0 &&
	      strcmp(u.host, "localhost") == 0 && u.port == 6379 && u.db == 0 && !u.password,
	      "host only");
	pl_redisurl_free(&u);
	CHECK(pl_redisurl_parse("redis://:s3cr%40t@10.0.0.1:6380/3", &u, err, sizeof err) == 0 &&
	      strcmp(u.host, "10.0.0.1") == 0 && u.port == 6380 && u.db == 3 && !u.user &&
	      strcmp(u.password, "s3cr@t") == 0, "password, port, db, percent escape");
	pl_redisurl_free(&u);
	CHECK(pl_redisurl_parse("redis://bob:pw@h/", &u, err, sizeof err) == 0 &&
	      strcmp(u.user, "bob") == 0 && strcmp(u.password, "pw") == 0 && u.db == 0,
	      "user and password, empty db");
	pl_redisurl_free(&u);
	CHECK(pl_redisurl_parse("redis://[::1]:7000/1", &u, err, sizeof err) == 0 &&
	      strcmp(u.host, "::1") == 0 && u.port == 7000 && u.db == 1, "IPv6 host");
	pl_redisurl_free(&u);
	CHECK(pl_redisurl_parse("redis://p@ss@host", &u, err, sizeof err) < 0, "user without password");
	CHECK(pl_redisurl_parse("http://h", &u, err, sizeof err) < 0, "other scheme");
	CHECK(pl_redisurl_parse("redis://", &u, err, sizeof err) < 0, "no host");
	CHECK(pl_redisurl_parse("redis://h:0", &u, err, sizeof err) < 0, "port 0");
	CHECK(pl_redisurl_parse("redis://h/x", &u, err, sizeof err) < 0, "db not a number");
	CHECK(pl_redisurl_parse("redis://h?db=1", &u, err, sizeof err) < 0, "query string");
	CHECK(pl_redisurl_parse("redis://:%zz@h", &u, err, sizeof err) < 0, "bad escape");
	CHECK(pl_redisurl_parse("redis://:%4@h", &u, err, sizeof err) < 0, "short escape");
	pl_redisurl_redact("redis://:hunter2@h:1/2", red, sizeof red);
	CHECK_STR(red, "redis://:***@h:1/2", "redact hides the password");
	pl_redisurl_redact("redis://u:hunter2@h", red, sizeof red);
	CHECK_STR(red, "redis://u:***@h", "redact keeps the user");
	pl_redisurl_redact("redis://h:1", red, sizeof red);
	CHECK_STR(red, "redis://h:1", "nothing to redact");
}

int main(void)
{
	char cmd[300];

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	table_tests();
	apply_tests();
	encode_tests();
	file_tests();
	store_tests();
	url_tests();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	return done_testing();
}
