/* upsert-qdrant: write vector records to Qdrant as points, delete the stale
 * points of each document, and acknowledge documents in input order
 * (docs/upsert-qdrant.1). */
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "hash.h"
#include "qdrant.h"

static const char usage[] =
	"upsert-qdrant -c collection [--url url] [--api-key key]\n"
	"[--distance cosine|dot|euclid|manhattan] [-b batch] [-p parallel]\n"
	"[--timeout seconds] [--connect-timeout seconds] [--retries n]\n"
	"[--retry-delay seconds] [--insecure] [--cacert file]\n"
	"[--hold-deletes seconds] [--keep-going] [--rejects file] [file ...]";

static const char help[] =
	"\nWrite vector records to a Qdrant collection; write an ack per document.\n\n"
	"  -c, --collection NAME     the collection (PLUMB_COLLECTION; required)\n"
	"      --url URL             Qdrant's REST URL (QDRANT_URL, http://localhost:6333)\n"
	"      --api-key KEY         sent as the api-key header (QDRANT_API_KEY)\n"
	"      --distance D          for a new collection: cosine (default), dot, euclid\n"
	"                            or manhattan (PLUMB_QDRANT_DISTANCE)\n"
	"  -b, --batch N             points per request (PLUMB_QDRANT_BATCH, 128)\n"
	"  -p, --parallel N          requests in flight (PLUMB_QDRANT_PARALLEL, 4)\n"
	"      --timeout S           seconds for a whole request (PLUMB_TIMEOUT, 60)\n"
	"      --connect-timeout S   seconds to connect (PLUMB_CONNECT_TIMEOUT, 10)\n"
	"      --retries N           tries per request, in all (PLUMB_RETRIES, 5)\n"
	"      --retry-delay S       first retry delay, doubled each time (PLUMB_RETRY_DELAY, 0.5)\n"
	"      --insecure            do not verify TLS certificates (PLUMB_INSECURE=1)\n"
	"      --cacert FILE         trust the CA certificates in FILE, not the system's\n"
	"                            (PLUMB_CACERT)\n"
	"      --hold-deletes S      the longest deletes wait for a first vector to check\n"
	"                            the collection (PLUMB_QDRANT_HOLD_DELETES, 60; 0: none)\n"
	"      --keep-going          report bad records and go on (PLUMB_KEEP_GOING)\n"
	"      --rejects FILE        also write bad records to FILE (PLUMB_REJECTS)\n"
	"  -v, --verbose             say more on stderr (never the API key)\n"
	"  -h, --help                this text\n"
	"      --version             the version\n";

/* Qdrant refuses bodies over 32 MB by default; stay well below */
#define MAX_BODY (16u << 20)

enum kind { K_INDEX, K_DELETE };
enum state {
	S_OPEN,		/* taking chunks; no marker yet */
	S_CLOSED,	/* marker read; waiting for its points to be written */
	S_DELETING,	/* stale (or all) points being deleted */
	S_DONE,		/* ready to acknowledge */
	S_SKIP		/* finished without an ack (inconsistent input) */
};

/* One document's passage: from its first chunk (or marker) to its ack. */
struct doc {
	char *id;		/* decoded doc_id */
	size_t idlen;
	char *sha;		/* the marker's doc_sha256, decoded */
	size_t shalen;
	char *chunk_sha;	/* doc_sha256 of its first chunk */
	size_t chunk_shalen;
	char *extra;		/* the marker's other members, raw, each after a ',' */
	int64_t chunks;		/* the marker's count */
	unsigned long npoints;	/* chunks taken */
	unsigned long pending;	/* of those, not yet confirmed written */
	unsigned char kind, state, mixed;
	unsigned char whole;	/* K_INDEX: the marker found every chunk of its version */
	struct doc *next;	/* in the ack queue */
	struct doc *hnext;	/* in the map */
};

/* Points of one request, as runs of consecutive points of one document. */
struct batch {
	struct run {
		struct doc *d;
		unsigned long n;
	} *runs;
	size_t nruns, cap;
	unsigned long npoints;
};

static struct pl_qdrant *q;
static const char *collection;
static struct pl_qdrant_info info;
static int coll_exists, coll_ready, dist_given;
/* Until the first vector has been checked against the collection, nothing is
 * written: a collection of another size is most likely another model's or
 * another project's, and a delete must not reach it either. Deletes (and
 * documents without chunks) wait for that vector, or the end of the input, or
 * at most hold_ms from the first of them, so that a stream of deletes alone
 * that never ends is still acknowledged. */
static int gate_open;
static long hold_ms = 60000;
static int64_t hold_until;	/* monotonic ms; 0 until something waits */
static long dim;
static enum pl_qdrant_distance dist = PL_QDRANT_COSINE;
static unsigned long batch_max = 128;

static struct pl_buf body;
static struct batch *cur;
static struct doc *qhead, *qtail;	/* acks to write, in input order */
static struct doc **ready;		/* closed docs whose points are all written */
static size_t nready, ready_head, ready_cap;
static struct doc **map;		/* latest passage of each doc_id */
static size_t map_cap, map_n;
static struct pl_lines *in;

static int fatal_rc;
static char fatal_msg[PL_QDRANT_ERRLEN];
static unsigned long long n_points, n_requests, n_indexed, n_deleted, n_skipped;
static struct pl_buf s_id, s_doc, s_sha;	/* decoding scratch */

/* --- the map from doc_id to its latest passage --------------------------------- */

static size_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 32));
}

static struct doc **map_slot(const char *id, size_t n)
{
	struct doc **pp = &map[hash(id, n) & (map_cap - 1)];
	while (*pp && ((*pp)->idlen != n || memcmp((*pp)->id, id, n) != 0))
		pp = &(*pp)->hnext;
	return pp;
}

static struct doc *map_get(const char *id, size_t n)
{
	return *map_slot(id, n);
}

static void map_grow(void)
{
	size_t old = map_cap;
	struct doc **o = map;

	map_cap = old ? 2 * old : 1024;
	map = pl_xmalloc(map_cap * sizeof *map);
	memset(map, 0, map_cap * sizeof *map);
	for (size_t i = 0; i < old; i++)
		for (struct doc *d = o[i], *nx; d; d = nx) {
			nx = d->hnext;
			struct doc **pp = &map[hash(d->id, d->idlen) & (map_cap - 1)];
			d->hnext = *pp;
			*pp = d;
		}
	free(o);
}

/* d becomes the latest passage of its doc_id, replacing any other */
static void map_put(struct doc *d)
{
	if (map_n + 1 > map_cap / 2)
		map_grow();
	struct doc **pp = map_slot(d->id, d->idlen);
	if (*pp) {
		d->hnext = (*pp)->hnext;
		(*pp)->hnext = NULL;
	} else {
		d->hnext = NULL;
		map_n++;
	}
	*pp = d;
}

/* Remove d if it is still the latest passage of its doc_id. */
static void map_del(struct doc *d)
{
	struct doc **pp = map_slot(d->id, d->idlen);
	if (*pp == d) {
		*pp = d->hnext;
		map_n--;
	}
}

/* --- passages ------------------------------------------------------------------ */

static struct doc *doc_new(const char *id, size_t n, enum kind k)
{
	struct doc *d = pl_xmalloc(sizeof *d);
	memset(d, 0, sizeof *d);
	d->id = pl_xstrndup(id, n);
	d->idlen = n;
	d->kind = (unsigned char)k;
	d->state = S_OPEN;
	map_put(d);
	return d;
}

static void doc_free(struct doc *d)
{
	map_del(d);
	free(d->id);
	free(d->sha);
	free(d->chunk_sha);
	free(d->extra);
	free(d);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ready_push(struct doc *d)
{
	if (!gate_open && !hold_until)
		hold_until = now_ms() + hold_ms;
	if (nready == ready_cap) {
		if (ready_head) {
			memmove(ready, ready + ready_head, (nready - ready_head) * sizeof *ready);
			nready -= ready_head;
			ready_head = 0;
		}
		if (nready == ready_cap) {
			ready_cap = ready_cap ? 2 * ready_cap : 256;
			ready = pl_xrealloc(ready, ready_cap * sizeof *ready);
		}
	}
	ready[nready++] = d;
}

static void queue_push(struct doc *d)
{
	d->next = NULL;
	if (qtail)
		qtail->next = d;
	else
		qhead = d;
	qtail = d;
}

/* --- requests and their completions ---------------------------------------------- */

static void set_fatal(int rc, const char *err)
{
	if (!fatal_rc) {
		fatal_rc = rc;
		snprintf(fatal_msg, sizeof fatal_msg, "%s", err);
	}
}

static void on_upsert(void *ud, int rc, const char *err)
{
	struct batch *b = ud;

	if (rc) {
		set_fatal(rc, err);
	} else {
		for (size_t i = 0; i < b->nruns; i++) {
			struct doc *d = b->runs[i].d;
			d->pending -= b->runs[i].n;
			if (d->pending == 0 && d->state == S_CLOSED)
				ready_push(d);
		}
		n_points += b->npoints;
	}
	free(b->runs);
	free(b);
}

static void on_delete(void *ud, int rc, const char *err)
{
	struct doc *d = ud;

	if (rc)
		set_fatal(rc, err);
	else
		d->state = S_DONE;
}

static struct batch *batch_new(void)
{
	struct batch *b = pl_xmalloc(sizeof *b);
	memset(b, 0, sizeof *b);
	return b;
}

static void flush_batch(void)
{
	struct batch *b = cur;

	if (!b->npoints || fatal_rc)
		return;
	pl_qdrant_points_end(&body);
	pl_info("PUT %s/collections/%s/points: %lu points, %zu bytes", pl_qdrant_url(q), collection,
		b->npoints, body.n);
	cur = batch_new();
	n_requests++;
	pl_qdrant_upsert(q, body.p, body.n, on_upsert, b);
	body.n = 0;
	pl_qdrant_points_begin(&body);
}

static void write_ack(const struct doc *d)
{
	if (d->kind == K_INDEX) {
		pl_buf_add(&pl_out, "{\"op\":\"indexed\",\"doc_id\":", 25);
		pl_json_put_str(&pl_out, d->id, d->idlen);
		pl_buf_add(&pl_out, ",\"doc_sha256\":", 14);
		pl_json_put_str(&pl_out, d->sha, d->shalen);
		pl_buf_add(&pl_out, ",\"chunks\":", 10);
		pl_buf_i64(&pl_out, d->chunks);
		n_indexed++;
	} else {
		pl_buf_add(&pl_out, "{\"op\":\"deleted\",\"doc_id\":", 25);
		pl_json_put_str(&pl_out, d->id, d->idlen);
		n_deleted++;
	}
	if (d->extra)
		pl_buf_adds(&pl_out, d->extra);
	pl_buf_addc(&pl_out, '}');
	pl_out_end();
}

/* Write the acks that are due, in input order. */
static void emit_acks(void)
{
	int any = 0;

	while (qhead && (qhead->state == S_DONE || qhead->state == S_SKIP)) {
		struct doc *d = qhead;
		qhead = d->next;
		if (!qhead)
			qtail = NULL;
		if (d->state == S_DONE) {
			write_ack(d);
			any = 1;
		}
		doc_free(d);
	}
	if (any)
		pl_out_flush();
}

static void check_fatal(void)
{
	if (fatal_rc) {
		emit_acks();
		pl_die(fatal_rc, "%s", fatal_msg);
	}
}

static int same(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && memcmp(a, b, an) == 0;
}

/* Whether d, its marker just read, is whole: every chunk the marker counts,
 * of the marker's version. An ack tells discover-diff the document is stored
 * whole, so one that is not is bad input at its marker, as in upsert-local;
 * its points are written all the same, and the next run finds it again. */
static int doc_whole(const struct doc *d, const struct pl_rec *marker)
{
	if ((int64_t)d->npoints != d->chunks) {
		pl_input_reject(marker, "document \"%s\" has %lu of its %lld chunks", d->id,
				d->npoints, (long long)d->chunks);
		return 0;
	}
	if (d->npoints && (d->mixed || !same(d->chunk_sha, d->chunk_shalen, d->sha, d->shalen))) {
		pl_input_reject(marker, "document \"%s\": the doc_sha256 of its chunks is not its "
				"marker's", d->id);
		return 0;
	}
	return 1;
}

/* All points of d are written: delete what it replaces. */
static void finish_doc(struct doc *d)
{
	if (d->kind == K_INDEX && !d->whole) {
		d->state = S_SKIP;
		n_skipped++;
		return;
	}
	if (!coll_exists) {
		d->state = S_DONE;	/* no collection, nothing to delete */
		return;
	}
	d->state = S_DELETING;
	n_requests++;
	if (d->kind == K_INDEX) {
		pl_info("deleting points of \"%s\" other than its %lld chunks of doc_sha256 %s", d->id,
			(long long)d->chunks, d->sha);
		pl_qdrant_delete_doc(q, d->id, d->idlen, d->sha, d->shalen, d->chunks, on_delete, d);
	} else {
		pl_info("deleting points of \"%s\"", d->id);
		pl_qdrant_delete_doc(q, d->id, d->idlen, NULL, 0, -1, on_delete, d);
	}
}

/* Submit the deletes that are due and write the acks that are. Callbacks only
 * mark; this is where their consequences run. */
static void advance(void)
{
	for (;;) {
		check_fatal();
		if (ready_head == nready || !gate_open)
			break;
		struct doc *d = ready[ready_head++];
		if (ready_head == nready)
			ready_head = nready = 0;
		finish_doc(d);
	}
	emit_acks();
}

/* Writes may start: the first vector matched the collection, or the input
 * ended, or deletes waited long enough (see gate_open). */
static void gate(void)
{
	gate_open = 1;
}

/* Documents are ready to be finished but wait for the gate. */
static int holding(void)
{
	return !gate_open && ready_head < nready;
}

static void check_hold(void)
{
	if (holding() && now_ms() >= hold_until) {
		pl_info("no vector within %g s: deleting without checking the collection's vector size",
			hold_ms / 1000.0);
		gate();
	}
}

static int pending(void)
{
	return pl_qdrant_pending(q) != 0;
}

static void wait_one(void)
{
	pl_qdrant_wait(q, pl_qdrant_pending(q) - 1);
}

/* Write everything taken so far and wait for all of it. */
static void drain(void)
{
	gate();
	flush_batch();
	for (;;) {
		advance();
		if (!pending())
			break;
		wait_one();
	}
}

/* Whether an earlier passage of doc_id has a write in flight, or one still to
 * send, that a new passage could race with: points not yet written, or a
 * delete not yet done. Earlier passages are in the ack queue once closed,
 * and the latest one, while open, is in the map. */
static int busy(const char *id, size_t n)
{
	struct doc *d = map_get(id, n);

	if (d && d->state == S_OPEN && d->pending)
		return 1;
	for (d = qhead; d; d = d->next)
		if (d->state != S_DONE && d->state != S_SKIP && same(d->id, d->idlen, id, n))
			return 1;
	return 0;
}

/* Wait until no earlier passage of doc_id can race with a new one. Behind a
 * closed gate nothing has been sent: passages that wait there have no points
 * (deletes, empty documents), and their deletes may run in any order; one
 * with points opens the gate first, and then waits for them all here. */
static void settle(const char *id, size_t n)
{
	if (!gate_open)
		return;
	flush_batch();
	for (;;) {
		advance();
		if (!busy(id, n))
			return;
		if (!pending())
			pl_die(PL_EX_SOFTWARE, "internal error: document \"%s\" waits for nothing", id);
		wait_one();
	}
}

static int would_block(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	return poll(&p, 1, 0) == 0;
}

/* Wait at most ms for input on fd: 1 if none came, 0 if some did (or a
 * signal). */
static int no_input_for(int fd, int64_t ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	return poll(&p, 1, ms <= 0 ? 0 : ms > INT_MAX ? INT_MAX : (int)ms) == 0;
}

/* SIGINT or SIGTERM: stop reading, let the requests in flight finish (and the
 * deletes of documents they complete), write those acks, die of the signal.
 * Deletes that wait for the gate are abandoned: the next run finds them. */
static void finish_signal(void)
{
	for (;;) {
		advance();
		if (!pending())
			break;
		wait_one();
	}
	pl_exit_signal();
}

/* Input would block: send what we have, and use the wait to finish requests
 * and write acks, so a slow producer still sees its documents acknowledged.
 * The gate stays as it is: a pause upstream is no reason to write before the
 * first vector is checked, except when deletes have waited for it too long. */
static void on_idle(void)
{
	flush_batch();
	for (;;) {
		check_hold();
		advance();
		if (pl_stop)
			break;
		if (pending()) {
			if (!would_block(in->fd))
				break;
			wait_one();
		} else if (!holding() || !no_input_for(in->fd, hold_until - now_ms())) {
			break;
		}
	}
	pl_out_flush();
	if (pl_stop)
		finish_signal();
}

/* Before exit 65 on a bad record: everything before it is written and acked. */
static void before_bad_input_exit(void)
{
	drain();
	pl_out_flush();
}

/* --- records ---------------------------------------------------------------------- */

static void open_collection(long size, const struct pl_rec *rec)
{
	char err[PL_QDRANT_ERRLEN];
	int created = 0, rc;

	if (info.exists) {
		if (info.named)
			pl_die(PL_EX_USAGE, "collection \"%s\" uses named vectors; upsert-qdrant writes "
			       "one unnamed vector per point", collection);
		if (info.size != size)
			pl_die(PL_EX_USAGE, "collection \"%s\" holds vectors of size %ld, but %s:%lu has "
			       "a vector of size %ld (another model?)", collection, info.size, rec->file,
			       rec->lineno, size);
		if (dist_given && info.distance != dist)
			pl_die(PL_EX_USAGE, "collection \"%s\" uses %s distance, not %s (--distance)",
			       collection, pl_qdrant_distance_name(info.distance),
			       pl_qdrant_distance_name(dist));
		if (!info.doc_id_index) {
			if ((rc = pl_qdrant_create_index(q, "doc_id", "keyword", err)))
				pl_die(rc, "%s", err);
			pl_info("created a keyword index on doc_id in \"%s\"", collection);
		}
	} else {
		if ((rc = pl_qdrant_ensure(q, size, dist, dist_given, &info, &created, err)))
			pl_die(rc, "%s", err);
		if (created)
			pl_info("created collection \"%s\" (size %ld, %s) with a keyword index on doc_id",
				collection, size, pl_qdrant_distance_name(dist));
	}
	dim = size;
	coll_exists = coll_ready = 1;
	gate();
}

static void take_chunk(const struct pl_rec *rec, const struct pl_jmember *vec)
{
	const char *id, *docid, *sha;
	size_t idn, docn, shan;
	char uuid[PL_UUID_STR];
	long size;

	if (pl_need_str(rec, "id", &s_id, &id, &idn, "record") < 0 ||
	    pl_need_str(rec, "doc_id", &s_doc, &docid, &docn, "record") < 0 ||
	    pl_need_str(rec, "doc_sha256", &s_sha, &sha, &shan, "record") < 0)
		return;
	size = vec->type == PL_JARR ? pl_qdrant_vector_size(vec->val, vec->vallen) : -1;
	if (size < 0) {
		pl_input_reject(rec, "\"vector\" is not an array of numbers");
		return;
	}
	if (size == 0) {
		pl_input_reject(rec, "\"vector\" is empty");
		return;
	}
	if (!coll_ready)
		open_collection(size, rec);
	else if (size != dim) {
		pl_input_reject(rec, "vector of size %ld; the collection \"%s\" holds size %ld", size,
				collection, dim);
		return;
	}

	struct doc *d = map_get(docid, docn);
	if (!d || d->state != S_OPEN) {
		/* a new passage of a document still being written: its
		 * stale-point delete must not meet our new points */
		if (d)
			settle(docid, docn);
		d = doc_new(docid, docn, K_INDEX);
	}
	if (d->npoints == 0) {
		free(d->chunk_sha);
		d->chunk_sha = pl_xstrndup(sha, shan);
		d->chunk_shalen = shan;
	} else if (!same(d->chunk_sha, d->chunk_shalen, sha, shan)) {
		d->mixed = 1;
	}

	pl_uuid5(PL_UUID_NS_PLUMB, id, idn, uuid);
	pl_qdrant_point(&body, uuid, vec->val, vec->vallen, &rec->obj, vec);
	struct batch *b = cur;
	if (b->nruns && b->runs[b->nruns - 1].d == d) {
		b->runs[b->nruns - 1].n++;
	} else {
		if (b->nruns == b->cap) {
			b->cap = b->cap ? 2 * b->cap : 16;
			b->runs = pl_xrealloc(b->runs, b->cap * sizeof *b->runs);
		}
		b->runs[b->nruns].d = d;
		b->runs[b->nruns++].n = 1;
	}
	b->npoints++;
	d->npoints++;
	d->pending++;
	if (b->npoints >= batch_max || body.n >= MAX_BODY)
		flush_batch();
}

/* The members of a marker other than those named, raw, each after a ',' */
static char *extra_members(const struct pl_rec *rec, const char *const *known)
{
	struct pl_buf b = PL_BUF_INIT;

	pl_json_put_others(&b, &rec->obj, known);
	if (!b.n)
		return NULL;
	pl_buf_cstr(&b);
	return b.p;
}

static void take_done(const struct pl_rec *rec)
{
	static const char *const known[] = { "op", "doc_id", "doc_sha256", "chunks", NULL };
	const struct pl_jmember *cm = pl_jobj_get(&rec->obj, "chunks");
	const char *docid, *sha;
	size_t docn, shan;
	int64_t chunks;

	if (pl_need_str(rec, "doc_id", &s_doc, &docid, &docn, "\"done\" marker") < 0 ||
	    pl_need_str(rec, "doc_sha256", &s_sha, &sha, &shan, "\"done\" marker") < 0)
		return;
	if (!cm || pl_jmember_i64(cm, &chunks) < 0 || chunks < 0) {
		pl_input_reject(rec, "\"done\" marker has no \"chunks\" count");
		return;
	}
	struct doc *d = map_get(docid, docn);
	if (!d || d->state != S_OPEN) {
		if (d)
			settle(docid, docn);
		d = doc_new(docid, docn, K_INDEX);	/* a document without chunks */
	}
	d->sha = pl_xstrndup(sha, shan);
	d->shalen = shan;
	d->chunks = chunks;
	d->extra = extra_members(rec, known);
	d->whole = (unsigned char)doc_whole(d, rec);
	d->state = S_CLOSED;
	queue_push(d);
	if (d->pending == 0)
		ready_push(d);
}

static void take_delete(const struct pl_rec *rec)
{
	static const char *const known[] = { "op", "doc_id", NULL };
	const char *docid;
	size_t docn;

	if (pl_need_str(rec, "doc_id", &s_doc, &docid, &docn, "\"delete\" record") < 0)
		return;
	struct doc *d = map_get(docid, docn);
	if (d) {
		settle(docid, docn);
		d = map_get(docid, docn);
		if (d && d->state == S_OPEN) {
			/* chunks without their marker, superseded: never acked */
			pl_info("document \"%s\" deleted before its \"done\" marker", d->id);
			doc_free(d);
		}
	}
	d = doc_new(docid, docn, K_DELETE);
	d->extra = extra_members(rec, known);
	d->state = S_CLOSED;
	queue_push(d);
	ready_push(d);
}

static void take(const struct pl_rec *rec)
{
	const struct pl_jmember *op = pl_jobj_get(&rec->obj, "op");
	const struct pl_jmember *vec;

	if (op) {
		if (op->type == PL_JSTR && op->vallen == 6 && memcmp(op->val, "\"done\"", 6) == 0)
			take_done(rec);
		else if (op->type == PL_JSTR && op->vallen == 8 && memcmp(op->val, "\"delete\"", 8) == 0)
			take_delete(rec);
		else
			pl_input_reject(rec, "unknown op %.*s (want \"done\" or \"delete\")",
					(int)(op->vallen > 40 ? 40 : op->vallen), op->val);
		return;
	}
	vec = pl_jobj_get(&rec->obj, "vector");
	if (!vec) {
		pl_input_reject(rec, "record has no \"vector\" (is embed missing from the pipeline?)");
		return;
	}
	take_chunk(rec, vec);
}

/* --- options ----------------------------------------------------------------------- */

static long parse_seconds(const char *opt, const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0.001 && v <= 86400))
		pl_usage_error("%s: '%s' is not a number of seconds from 0.001 to 86400", opt, s);
	return (long)(v * 1000 + 0.5);
}

/* --hold-deletes: 0 is allowed (no hold), unlike the timeouts */
static long parse_hold(const char *opt, const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0 && v <= 86400))
		pl_usage_error("%s: '%s' is not a number of seconds from 0 to 86400", opt, s);
	return (long)(v * 1000 + 0.5);
}

static int env_flag(const char *name)
{
	const char *v = pl_env(name, NULL);
	return v && strcmp(v, "0") != 0;
}

int main(int argc, char **argv)
{
	enum { O_URL = 0x100, O_KEY, O_DIST, O_TIMEOUT, O_CTIMEOUT, O_TRIES, O_DELAY, O_INSECURE,
	       O_CACERT, O_HOLD };
	static const struct option longopts[] = {
		{ "collection", required_argument, NULL, 'c' },
		{ "url", required_argument, NULL, O_URL },
		{ "api-key", required_argument, NULL, O_KEY },
		{ "distance", required_argument, NULL, O_DIST },
		{ "batch", required_argument, NULL, 'b' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "connect-timeout", required_argument, NULL, O_CTIMEOUT },
		{ "retries", required_argument, NULL, O_TRIES },
		{ "retry-delay", required_argument, NULL, O_DELAY },
		{ "insecure", no_argument, NULL, O_INSECURE },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ "hold-deletes", required_argument, NULL, O_HOLD },
		PL_COMMON_LONGOPTS,
		{ 0 }
	};
	struct pl_qdrant_opts qo;
	const char *distance, *v;
	char err[PL_QDRANT_ERRLEN];
	struct pl_rec rec = { 0 };
	struct pl_lines l;
	unsigned long long records = 0, bytes = 0;
	int c, rc;

	pl_init("upsert-qdrant", usage, help);
	memset(&qo, 0, sizeof qo);
	pl_http_opts_default(&qo.http);
	qo.url = pl_env("QDRANT_URL", PL_QDRANT_DEFAULT_URL);
	qo.api_key = pl_env("QDRANT_API_KEY", NULL);
	collection = pl_env("PLUMB_COLLECTION", NULL);
	distance = pl_env("PLUMB_QDRANT_DISTANCE", NULL);
	if ((v = pl_env("PLUMB_QDRANT_BATCH", NULL)))
		batch_max = (unsigned long)pl_parse_long("PLUMB_QDRANT_BATCH", v, 1, 100000);
	if ((v = pl_env("PLUMB_QDRANT_PARALLEL", NULL)))
		qo.http.parallel = (int)pl_parse_long("PLUMB_QDRANT_PARALLEL", v, 1, 256);
	if ((v = pl_env("PLUMB_TIMEOUT", NULL)))
		qo.http.timeout_ms = parse_seconds("PLUMB_TIMEOUT", v);
	if ((v = pl_env("PLUMB_CONNECT_TIMEOUT", NULL)))
		qo.http.connect_timeout_ms = parse_seconds("PLUMB_CONNECT_TIMEOUT", v);
	if ((v = pl_env("PLUMB_RETRIES", NULL)))
		qo.http.max_tries = (int)pl_parse_long("PLUMB_RETRIES", v, 1, 100);
	if ((v = pl_env("PLUMB_RETRY_DELAY", NULL)))
		qo.http.backoff_ms = parse_seconds("PLUMB_RETRY_DELAY", v);
	qo.http.insecure = env_flag("PLUMB_INSECURE");
	qo.http.ca_file = pl_env("PLUMB_CACERT", NULL);
	if ((v = pl_env("PLUMB_QDRANT_HOLD_DELETES", NULL)))
		hold_ms = parse_hold("PLUMB_QDRANT_HOLD_DELETES", v);
	while ((c = getopt_long(argc, argv, "c:b:p:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			collection = optarg;
			break;
		case O_URL:
			qo.url = optarg;
			break;
		case O_KEY:
			qo.api_key = optarg;
			break;
		case O_DIST:
			distance = optarg;
			break;
		case 'b':
			batch_max = (unsigned long)pl_parse_long("--batch", optarg, 1, 100000);
			break;
		case 'p':
			qo.http.parallel = (int)pl_parse_long("--parallel", optarg, 1, 256);
			break;
		case O_TIMEOUT:
			qo.http.timeout_ms = parse_seconds("--timeout", optarg);
			break;
		case O_CTIMEOUT:
			qo.http.connect_timeout_ms = parse_seconds("--connect-timeout", optarg);
			break;
		case O_TRIES:
			qo.http.max_tries = (int)pl_parse_long("--retries", optarg, 1, 100);
			break;
		case O_DELAY:
			qo.http.backoff_ms = parse_seconds("--retry-delay", optarg);
			break;
		case O_INSECURE:
			qo.http.insecure = 1;
			break;
		case O_CACERT:
			qo.http.ca_file = optarg;
			break;
		case O_HOLD:
			hold_ms = parse_hold("--hold-deletes", optarg);
			break;
		default:
			pl_common_option(c, optarg);
		}
	}
	if (!collection || !*collection)
		pl_usage_error("a collection is required (--collection or PLUMB_COLLECTION)");
	if (distance) {
		if (pl_qdrant_distance_parse(distance, &dist) < 0)
			pl_usage_error("unknown distance '%s' (want cosine, dot, euclid or manhattan)",
				       distance);
		dist_given = 1;
	}
	qo.collection = collection;
	if (!(q = pl_qdrant_new(&qo, err)))
		pl_usage_error("%s", err + strlen("qdrant: "));

	if ((rc = pl_qdrant_info(q, &info, err)))
		pl_die(rc, "%s", err);
	coll_exists = info.exists;
	/* without a collection a delete writes nothing, so it need not wait */
	if (!coll_exists || hold_ms == 0)
		gate();
	if (info.exists)
		pl_info("collection \"%s\" at %s: vectors of size %ld, %s, %lld points", collection,
			pl_qdrant_url(q), info.size, pl_qdrant_distance_name(info.distance), info.points);
	else
		pl_info("collection \"%s\" at %s does not exist yet", collection, pl_qdrant_url(q));

	cur = batch_new();
	pl_qdrant_points_begin(&body);
	map_grow();
	pl_input_before_fatal(before_bad_input_exit);
	/* for the rejects file; the files are read here, each with on_idle */
	pl_input_open(argc - optind, argv + optind);
	if (argc == optind) {
		static char *dash[] = { "-" };
		argv = dash;
		argc = 1;
		optind = 0;
	}
	for (int i = optind; i < argc && !pl_stop; i++) {
		if (pl_lines_open(&l, argv[i]) < 0)
			pl_die(PL_EX_USAGE, "cannot open '%s':", argv[i]);
		pl_input_attach(&l);
		l.before_block = on_idle;
		in = &l;
		while (pl_input_next_from(&l, &rec)) {
			take(&rec);
			check_hold();
			advance();
			records++;
			bytes += rec.len;
			pl_progress(records, bytes, "records");
		}
		pl_lines_close(&l);
	}
	if (pl_stop)
		finish_signal();
	drain();
	for (size_t i = 0; i < map_cap; i++)
		for (struct doc *d = map[i]; d; d = d->hnext)
			if (d->state == S_OPEN)
				pl_info("document \"%s\" had no \"done\" marker: written, not acknowledged",
					d->id);
	pl_info("%llu points written in %llu requests; %llu documents indexed, %llu deleted, "
		"%llu not acknowledged", n_points, n_requests, n_indexed, n_deleted, n_skipped);
	pl_jobj_free(&rec.obj);
	pl_qdrant_free(q);
	pl_buf_free(&body);
	pl_finish();
}
