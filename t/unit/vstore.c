/* Unit tests for lib/vstore.c: the float parser, the writer (overwrites,
 * stale chunks, deletes, commits, compaction, crash leftovers, locking) and
 * snapshot readers. */
#include <dirent.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "unit.h"
#include "vstore.h"

#define DIM 8

static char err[PL_VS_ERRLEN];

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void vec_for(const char *id, int version, float *v)
{
	uint64_t h = 1469598103934665603ull + (uint64_t)version;
	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	for (int i = 0; i < DIM; i++) {
		h = h * 6364136223846793005ull + 1442695040888963407ull;
		v[i] = (float)((double)(h >> 40) / (double)(1ull << 24) - 0.5);
	}
}

/* Put chunk c of doc as version sha. */
static int put(struct pl_vs_writer *w, const char *doc, int c, const char *sha)
{
	char id[64], payload[256];
	float v[DIM];
	struct pl_vs_row r = { 0 };

	snprintf(id, sizeof id, "%s#%d", doc, c);
	snprintf(payload, sizeof payload, "{\"id\":\"%s\",\"doc_id\":\"%s\",\"doc_sha256\":\"%s\"}",
		 id, doc, sha);
	vec_for(id, sha[0], v);
	r.id = id;
	r.idlen = strlen(id);
	r.doc = doc;
	r.doclen = strlen(doc);
	r.has_doc = 1;
	r.sha = sha;
	r.shalen = strlen(sha);
	r.payload = payload;
	r.paylen = strlen(payload);
	r.chunk = c;
	return pl_vs_put(w, &r, v, DIM, "m", 1, err);
}

static int done(struct pl_vs_writer *w, const char *doc, const char *sha, int chunks, size_t *have)
{
	return pl_vs_done(w, doc, strlen(doc), sha, strlen(sha), chunks, have, err);
}

/* The live ids of a snapshot, sorted and joined with spaces, and a check
 * that no id is there twice and every vector is the one its id was put
 * with (version from the payload's sha). */
static char *live_ids(const struct pl_vs *vs, int *vectors_ok)
{
	struct pl_buf b = PL_BUF_INIT;
	char **ids = NULL;
	size_t n = 0;
	struct pl_vs_row r;

	*vectors_ok = 1;
	for (size_t s = 0; s < vs->nseg; s++)
		for (size_t i = 0; i < vs->seg[s].rows; i++) {
			if (pl_vs_is_dead(&vs->seg[s], i))
				continue;
			pl_vs_get_row(&vs->seg[s], i, &r);
			ids = pl_xrealloc(ids, (n + 1) * sizeof *ids);
			ids[n] = pl_xstrndup(r.id, r.idlen);
			float v[DIM];
			vec_for(ids[n], r.shalen ? r.sha[0] : 0, v);
			if (r.shalen && memcmp(v, vs->seg[s].vec + i * DIM, sizeof v) != 0)
				*vectors_ok = 0;
			n++;
		}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(ids[j], ids[i]) < 0) {
				char *t = ids[i];
				ids[i] = ids[j];
				ids[j] = t;
			}
	for (size_t i = 0; i < n; i++) {
		if (i && strcmp(ids[i], ids[i - 1]) == 0)
			pl_buf_adds(&b, "DUP ");
		pl_buf_printf(&b, "%s%s", i ? " " : "", ids[i]);
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	pl_buf_addc(&b, '\0');
	return b.p;
}

static char *reader_ids(const char *dir, int *ok)
{
	struct pl_vs *vs;
	if (pl_vs_open(dir, &vs, err) != PL_VS_OK)
		return pl_xstrdup(err);
	char *s = live_ids(vs, ok);
	pl_vs_close(vs);
	return s;
}

static int count_files(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)))
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	if (d)
		closedir(d);
	return n;
}

static void test_floats(void)
{
	float *v = NULL;
	size_t cap = 0;
	char e[128], s[64];
	long n;
	int bad = 0;

	n = pl_vs_parse_floats("[1, -2.5,3e2 ,0.125,-0,1E-3]", 28, &v, &cap, e, sizeof e);
	CHECK(n == 6 && v[0] == 1 && v[1] == -2.5f && v[2] == 300 && v[3] == 0.125f &&
	      v[4] == 0 && signbit(v[4]) && v[5] == 1e-3f, "parses plain numbers");
	CHECK(pl_vs_parse_floats("[]", 2, &v, &cap, e, sizeof e) == 0, "parses an empty array");
	CHECK(pl_vs_parse_floats("[1,\"x\"]", 7, &v, &cap, e, sizeof e) < 0 &&
	      strstr(e, "element 1 is not a number"), "rejects a string element (%s)", e);
	CHECK(pl_vs_parse_floats("[1e39]", 6, &v, &cap, e, sizeof e) < 0 &&
	      strstr(e, "out of the range"), "rejects a number too large for a float");
	CHECK(pl_vs_parse_floats("[1e-50]", 7, &v, &cap, e, sizeof e) == 1 && v[0] == 0,
	      "an underflow reads as zero, as strtof gives it");
	/* exactly what strtof gives, over many shapes of number */
	for (int i = 0; i < 200000; i++) {
		uint64_t r = rnd();
		float f;
		uint32_t bits = (uint32_t)r;
		memcpy(&f, &bits, sizeof f);
		if (!isfinite(f))
			continue;
		switch ((r >> 40) % 6) {
		case 0: snprintf(s, sizeof s, "%.9g", (double)f); break;
		case 1: snprintf(s, sizeof s, "%.6g", (double)f); break;
		case 2: snprintf(s, sizeof s, "%.8e", (double)f); break;
		case 3: snprintf(s, sizeof s, "%.17g", (double)f); break;
		case 4: snprintf(s, sizeof s, "%.3f", (double)f); break;
		default: snprintf(s, sizeof s, "%.12f", (double)f);
		}
		if (strtof(s, NULL) != strtof(s, NULL) || isinf(strtof(s, NULL)))
			continue;
		char arr[80];
		int len = snprintf(arr, sizeof arr, "[%s]", s);
		if (pl_vs_parse_floats(arr, (size_t)len, &v, &cap, e, sizeof e) != 1 ||
		    memcmp(&v[0], &(float){ strtof(s, NULL) }, sizeof(float)) != 0) {
			if (bad++ < 5)
				printf("# mismatch on %s: %.9g vs %.9g\n", s, (double)v[0],
				       (double)strtof(s, NULL));
		}
	}
	/* halfway cases between two floats, where a double rounding would err */
	for (int i = 0; i < 20000; i++) {
		float f = (float)((double)(rnd() >> 11) / (double)(1ull << 53) + 0.5);
		double mid = ((double)f + (double)nextafterf(f, 2.0f)) / 2;
		snprintf(s, sizeof s, "[%.17g]", mid);
		float want = strtof(s + 1, NULL);
		if (pl_vs_parse_floats(s, strlen(s), &v, &cap, e, sizeof e) != 1 || v[0] != want)
			bad++;
	}
	CHECK(bad == 0, "agrees with strtof on random and halfway values (%d mismatches)", bad);
	free(v);
}

static void test_writer(const char *base)
{
	char dir[512];
	struct pl_vs_writer *w, *w2;
	struct pl_vs *old, *vs;
	size_t have, n;
	char *ids;
	int ok, did;

	snprintf(dir, sizeof dir, "%s/store", base);
	CHECK(pl_vs_open(dir, &vs, err) == PL_VS_ENOSTORE, "no store yet: ENOSTORE (%s)", err);
	CHECK(pl_vs_writer_open(dir, 0, NULL, &w, err) == PL_VS_OK, "creates a store (%s)", err);
	CHECK(pl_vs_open(dir, &vs, err) == PL_VS_OK && vs->nseg == 0 && vs->dim == 0,
	      "a new store opens empty");
	pl_vs_close(vs);

	CHECK(pl_vs_writer_open(dir, 0, NULL, &w2, err) == PL_VS_EBUSY && strstr(err, "locked"),
	      "a second writer is refused without waiting (%s)", err);

	for (int c = 0; c < 3; c++)
		put(w, "a", c, "1");
	for (int c = 0; c < 2; c++)
		put(w, "b", c, "1");
	CHECK(pl_vs_pending(w) == 5 && pl_vs_dirty(w), "five points pending");
	CHECK(pl_vs_open(dir, &old, err) == PL_VS_OK && old->rows == 0,
	      "a reader sees nothing before the commit");
	CHECK(done(w, "a", "1", 3, &have) == PL_VS_OK && have == 3, "a is complete");
	CHECK(done(w, "b", "1", 3, &have) == PL_VS_EINCOMPLETE && have == 2 &&
	      strstr(err, "2 of its 3"), "b with a chunk missing is refused (%s)", err);
	CHECK(pl_vs_commit(w, err) == PL_VS_OK, "commits (%s)", err);
	CHECK(!pl_vs_dirty(w), "nothing pending after a commit");
	ids = reader_ids(dir, &ok);
	CHECK_STR(ids, "a#0 a#1 a#2 b#0 b#1", "a reader sees the commit");
	CHECK(ok, "with the vectors put");
	free(ids);
	ids = live_ids(old, &ok);
	CHECK_STR(ids, "", "an open snapshot still sees its own version");
	free(ids);
	pl_vs_close(old);

	/* overwrite by id, and a new version with fewer chunks */
	CHECK(pl_vs_open(dir, &old, err) == PL_VS_OK, "a reader opens generation %llu",
	      (unsigned long long)old->generation);
	put(w, "a", 0, "2");
	put(w, "a", 1, "2");
	CHECK(done(w, "a", "2", 2, &have) == PL_VS_OK && have == 2, "a shrinks to two chunks");
	put(w, "b", 1, "1");	/* the same again: an overwrite */
	pl_vs_delete_doc(w, "b", 1, &n);
	CHECK(n == 2, "deleting b removes its two points");
	pl_vs_delete_doc(w, "nope", 4, &n);
	CHECK(n == 0, "deleting an unknown document removes nothing");
	CHECK(pl_vs_commit(w, err) == PL_VS_OK, "commits again (%s)", err);
	ids = reader_ids(dir, &ok);
	CHECK_STR(ids, "a#0 a#1", "stale and deleted points are gone");
	CHECK(ok, "the new version's vectors are there");
	free(ids);
	ids = live_ids(old, &ok);
	CHECK_STR(ids, "a#0 a#1 a#2 b#0 b#1", "the older snapshot is unchanged");
	CHECK(ok, "and its vectors too");
	free(ids);

	/* same sha, fewer chunks: the chunk numbers say what is stale */
	put(w, "c", 0, "x");
	put(w, "c", 1, "x");
	put(w, "c", 2, "x");
	CHECK(done(w, "c", "x", 3, &have) == PL_VS_OK, "c has three chunks");
	CHECK(done(w, "c", "x", 1, &have) == PL_VS_OK && have == 1, "then c is re-chunked to one");
	CHECK(done(w, "c", "x", -1, &have) == PL_VS_OK && have == 1,
	      "a marker without a count keeps the version's points");
	CHECK(done(w, "zero", "e", 0, &have) == PL_VS_OK && have == 0,
	      "an empty document is complete");

	/* dimension and model */
	float v[DIM + 1] = { 0 };
	struct pl_vs_row r = { .id = "x", .idlen = 1, .payload = "{}", .paylen = 2, .chunk = -1 };
	CHECK(pl_vs_put(w, &r, v, DIM + 1, NULL, 0, err) == PL_VS_EDIM &&
	      strstr(err, "9 dimensions") && strstr(err, "holds 8"), "another dimension: EDIM (%s)",
	      err);
	CHECK(pl_vs_put(w, &r, v, DIM, "other", 5, err) == PL_VS_EMODEL && strstr(err, "\"m\""),
	      "another model: EMODEL (%s)", err);
	CHECK(pl_vs_put(w, &r, v, DIM, NULL, 0, err) == PL_VS_OK,
	      "a vector without a model is accepted");
	CHECK(pl_vs_commit(w, err) == PL_VS_OK, "commits (%s)", err);

	/* compaction keeps content; the old snapshot still reads after it */
	CHECK(pl_vs_open(dir, &vs, err) == PL_VS_OK, "a reader opens before compaction");
	char *before = live_ids(vs, &ok);
	CHECK(pl_vs_compact(w, &did, err) == PL_VS_OK && did, "compacts (%s)", err);
	ids = reader_ids(dir, &ok);
	CHECK_STR(ids, before, "compaction keeps every live point");
	CHECK(ok, "with its vector");
	free(ids);
	ids = live_ids(vs, &ok);
	CHECK_STR(ids, before, "a snapshot opened before compaction still reads");
	CHECK(ok, "its vectors too, from unlinked files");
	free(ids);
	free(before);
	pl_vs_close(vs);
	ids = live_ids(old, &ok);
	CHECK_STR(ids, "a#0 a#1 a#2 b#0 b#1", "so does one opened two versions ago");
	free(ids);
	pl_vs_close(old);
	CHECK(pl_vs_open(dir, &vs, err) == PL_VS_OK && vs->nseg == 1 && vs->dead == 0,
	      "one segment without deletions after compaction");
	pl_vs_close(vs);
	CHECK(count_files(dir, "seg-") == 1, "files of older versions are removed");
	CHECK(pl_vs_compact(w, &did, err) == PL_VS_OK && !did, "a compact store is left alone");
	pl_vs_writer_close(w);

	/* a crash's leftovers are removed by the next writer, and their file
	 * numbers are not reused */
	char path[600];
	snprintf(path, sizeof path, "%s/seg-000900", dir);
	int fd = open(path, O_WRONLY | O_CREAT, 0666);
	CHECK(fd >= 0 && write(fd, "partial", 7) == 7, "a partial segment is left behind");
	close(fd);
	snprintf(path, sizeof path, "%s/MANIFEST.tmp", dir);
	close(open(path, O_WRONLY | O_CREAT, 0666));
	snprintf(path, sizeof path, "%s/notes.txt", dir);
	close(open(path, O_WRONLY | O_CREAT, 0666));
	CHECK(pl_vs_writer_open(dir, 0, NULL, &w, err) == PL_VS_OK, "reopens (%s)", err);
	CHECK(count_files(dir, "seg-000900") == 0 && count_files(dir, "MANIFEST.tmp") == 0,
	      "leftovers are removed");
	CHECK(count_files(dir, "notes.txt") == 1, "files not of the store are left alone");
	put(w, "d", 0, "1");
	CHECK(pl_vs_commit(w, err) == PL_VS_OK && count_files(dir, "seg-000901") == 1,
	      "new files are numbered past the leftovers");
	ids = reader_ids(dir, &ok);
	CHECK(strstr(ids, "d#0") && strstr(ids, "a#0"), "the store reopened with its points");
	free(ids);
	pl_vs_writer_close(w);
}

static void test_policy(const char *base)
{
	char dir[512];
	struct pl_vs_writer *w;
	struct pl_vs *vs;
	int did, ok, any = 0;
	char doc[32];

	snprintf(dir, sizeof dir, "%s/policy", base);
	CHECK(pl_vs_writer_open(dir, 0, NULL, &w, err) == PL_VS_OK, "a second store (%s)", err);
	/* many small commits: segments merge four at a time */
	for (int i = 0; i < 64; i++) {
		snprintf(doc, sizeof doc, "p%d", i);
		put(w, doc, 0, "1");
		CHECK(pl_vs_maybe_compact(w, &did, err) == PL_VS_OK, "commit %d (%s)", i, err);
		any |= did;
	}
	CHECK(any, "small segments were merged");
	CHECK(pl_vs_open(dir, &vs, err) == PL_VS_OK && vs->nseg <= 6,
	      "64 commits leave few segments (%zu)", vs ? vs->nseg : 0);
	CHECK(vs && vs->rows == 64 && vs->dead == 0, "and all 64 points");
	pl_vs_close(vs);
	/* overwrite 30 of them (30 dead of 94 rows): past 30% dead, everything
	 * is rewritten */
	for (int i = 0; i < 30; i++) {
		snprintf(doc, sizeof doc, "p%d", i);
		put(w, doc, 0, "2");
	}
	CHECK(pl_vs_commit(w, err) == PL_VS_OK, "commits the overwrites");
	CHECK(pl_vs_open(dir, &vs, err) == PL_VS_OK && vs->dead > 0, "dead rows before (%zu)",
	      vs->dead);
	pl_vs_close(vs);
	CHECK(pl_vs_maybe_compact(w, &did, err) == PL_VS_OK && did, "the policy compacts");
	CHECK(pl_vs_open(dir, &vs, err) == PL_VS_OK && vs->dead == 0 && vs->rows == 64 &&
	      vs->nseg == 1, "no dead rows after (%zu rows, %zu segments)", vs->rows, vs->nseg);
	char *ids = live_ids(vs, &ok);
	CHECK(ok && !strstr(ids, "DUP"), "every point once, with its newest vector");
	free(ids);
	pl_vs_close(vs);
	pl_vs_writer_close(w);

	/* a directory with other files is not made a store */
	snprintf(dir, sizeof dir, "%s/other", base);
	mkdir(dir, 0777);
	char path[600];
	snprintf(path, sizeof path, "%s/precious.txt", dir);
	close(open(path, O_WRONLY | O_CREAT, 0666));
	CHECK(pl_vs_writer_open(dir, 0, NULL, &w, err) == PL_VS_ENOSTORE &&
	      strstr(err, "not empty"), "refuses a non-empty directory (%s)", err);
	CHECK(pl_vs_open(dir, &vs, err) == PL_VS_ENOSTORE && strstr(err, "no MANIFEST"),
	      "a reader says it is not a store (%s)", err);

	/* a damaged manifest */
	snprintf(path, sizeof path, "%s/MANIFEST", dir);
	int fd = open(path, O_WRONLY | O_CREAT, 0666);
	CHECK(write(fd, "{\"format\":\"plumb-vstore\"", 24) == 24, "writes a torn manifest");
	close(fd);
	CHECK(pl_vs_open(dir, &vs, err) == PL_VS_ECORRUPT && strstr(err, "invalid JSON"),
	      "a torn manifest is reported (%s)", err);

	/* a regular file, or a path under one, can be no store: the
	 * caller's configuration (exit 2), not an I/O error */
	CHECK(pl_vs_writer_open(path, 0, NULL, &w, err) == PL_VS_ENOSTORE &&
	      strstr(err, "Not a directory"), "a writer on a file: ENOSTORE (%s)", err);
	char sub[700];
	snprintf(sub, sizeof sub, "%s/sub", path);
	CHECK(pl_vs_writer_open(sub, 0, NULL, &w, err) == PL_VS_ENOSTORE &&
	      strstr(err, "cannot create directory"), "a writer under a file: ENOSTORE (%s)", err);
	CHECK(pl_vs_open(path, &vs, err) == PL_VS_ENOSTORE, "a reader on a file: ENOSTORE (%s)", err);
	CHECK(pl_vs_exit_status(PL_VS_ENOSTORE) == 2 && pl_vs_exit_status(PL_VS_EACCES) == 2 &&
	      pl_vs_exit_status(PL_VS_EBUSY) == 75 && pl_vs_exit_status(PL_VS_EIO) == 70 &&
	      pl_vs_exit_status(PL_VS_ECORRUPT) == 70 && pl_vs_exit_status(PL_VS_OK) == 0,
	      "exit statuses: 2 for a path that is no store or not ours, 75 busy, 70 else");
}

int main(void)
{
	char base[] = "/tmp/plumb-vstore-XXXXXX";

	CHECK(mkdtemp(base) != NULL, "a temp dir");
	test_floats();
	test_writer(base);
	test_policy(base);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	CHECK(system(cmd) == 0, "cleans up");
	return done_testing();
}
