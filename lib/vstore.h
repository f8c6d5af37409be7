/* The local vector store: a directory of immutable segment files (float32
 * vectors, then a table of point ids, doc ids and payloads), per-segment
 * deletion bitmaps, and a small MANIFEST naming the files of the current
 * version, replaced atomically. See docs/upsert-local.1 for the format.
 *
 * Ownership: pl_vs_open returns a snapshot (struct pl_vs) that pl_vs_close
 * frees; pl_vs_writer_open returns a writer that pl_vs_writer_close frees.
 * Row data (ids, payloads, vectors) point into a snapshot's mappings and
 * stay valid until it is closed. Nothing here prints or exits: calls return PL_VS_OK or a
 * negative PL_VS_E* status and fill the caller's char err[PL_VS_ERRLEN]. */
#ifndef PL_VSTORE_H
#define PL_VSTORE_H

#include <stddef.h>
#include <stdint.h>

#define PL_VS_ERRLEN 512
#define PL_VS_VERSION 1

enum {
	PL_VS_OK = 0,
	PL_VS_EIO = -1,		/* a file could not be read, written or synced */
	PL_VS_ECORRUPT = -2,	/* a store file is not what the manifest says */
	PL_VS_ENOSTORE = -3,	/* no store at that path */
	PL_VS_EBUSY = -4,	/* another writer holds the lock (no-wait mode) */
	PL_VS_EDIM = -5,	/* a vector of another dimension than the store's */
	PL_VS_EMODEL = -6,	/* a vector of another model than the store's */
	PL_VS_EINCOMPLETE = -7,	/* a done marker for a document whose chunks are missing */
	PL_VS_EINTR = -8,	/* waiting for the lock was interrupted by a signal */
	PL_VS_EACCES = -9	/* the store's path or files are not this user's to use
				 * (permissions, a read-only file system) */
};

/* The exit status (lib/exitcode.h) a program gives for status: 2 for a path
 * that holds or can hold no store or that this user may not use, 75 for a
 * store locked by another writer, else 70. */
int pl_vs_exit_status(int status);

/* One point, as stored: strings are raw UTF-8 (JSON-decoded), payload is
 * the record's JSON object without "vector". chunk is -1 when unknown. */
struct pl_vs_row {
	const char *id, *doc, *sha, *payload;
	size_t idlen, doclen, shalen, paylen;
	int64_t chunk;
	int has_doc;		/* the record had a "doc_id" */
};

/* One segment of a snapshot: rows vectors of dim floats, row-major. */
struct pl_vs_seg {
	uint64_t num;			/* the file number */
	size_t rows, dead;
	const float *vec;
	const unsigned char *dead_bits;	/* rows bits, 1 = deleted; NULL when none */
	const void *ents;		/* the row table */
	const char *blob;
	size_t bloblen;
	void *map, *delmap;		/* the mappings */
	size_t maplen, dellen;
};

struct pl_vs {
	char *dir;
	uint64_t generation;
	int dim;			/* 0 while the store is empty */
	char *model;			/* "" when unknown */
	size_t nseg;
	struct pl_vs_seg *seg;
	size_t rows, dead;		/* over all segments */
	uint64_t bytes;			/* of the files referenced */
};

static inline int pl_vs_is_dead(const struct pl_vs_seg *s, size_t row)
{
	return s->dead_bits && (s->dead_bits[row >> 3] >> (row & 7) & 1);
}

/* The point at row of segment s. */
void pl_vs_get_row(const struct pl_vs_seg *s, size_t row, struct pl_vs_row *r);

/* Open a consistent snapshot of the store in dir: the version its manifest
 * named when read, whatever writers do afterwards. PL_VS_ENOSTORE when dir
 * holds no store. */
int pl_vs_open(const char *dir, struct pl_vs **out, char *err);
void pl_vs_close(struct pl_vs *vs);

/* --- the writer --------------------------------------------------------- */

struct pl_vs_writer;

/* Lock dir (creating the store if it does not exist) and load it. With wait
 * zero a held lock gives PL_VS_EBUSY at once; else it waits, and returns
 * PL_VS_EINTR if *stop becomes non-zero meanwhile (stop may be NULL). Files
 * that the manifest does not name (left by a crash) are removed. */
int pl_vs_writer_open(const char *dir, int wait, volatile int *stop,
		      struct pl_vs_writer **out, char *err);
void pl_vs_writer_close(struct pl_vs_writer *w);

/* Add or overwrite (by id) a point; r->payload must be a JSON object.
 * Pending until the next commit. A vector of another dimension than the
 * store's is PL_VS_EDIM, of another model (model NULL: unknown, accepted)
 * PL_VS_EMODEL; the first point sets the store's dimension, the first with
 * a model its model. */
int pl_vs_put(struct pl_vs_writer *w, const struct pl_vs_row *r, const float *vec, int dim,
	      const char *model, size_t modellen, char *err);

/* A document's done marker: delete its stale points (those of another
 * doc_sha256, or, when chunks >= 0, of a chunk number >= chunks). When
 * chunks >= 0 and fewer than chunks points of this version are stored, it
 * changes nothing and returns PL_VS_EINCOMPLETE with *have set. *have is the
 * number of the document's points kept. */
int pl_vs_done(struct pl_vs_writer *w, const char *doc, size_t doclen, const char *sha,
	       size_t shalen, int64_t chunks, size_t *have, char *err);

/* Delete every point of doc; *n is how many there were. */
void pl_vs_delete_doc(struct pl_vs_writer *w, const char *doc, size_t doclen, size_t *n);

/* Points added since the last commit; whether anything at all changed since
 * (points, deletions, or a new store's first manifest). */
size_t pl_vs_pending(const struct pl_vs_writer *w);
int pl_vs_dirty(const struct pl_vs_writer *w);

/* Make every pending change durable: write and fsync the new segment and
 * deletion bitmaps, then replace the manifest atomically and fsync the
 * directory. Afterwards remove the files the new manifest no longer names.
 * After a failure the writer can only be closed. */
int pl_vs_commit(struct pl_vs_writer *w, char *err);

/* Compaction, each a commit of its own: pl_vs_compact merges everything
 * into one segment of live points; pl_vs_maybe_compact does what the policy
 * asks (all segments when over 30% of the rows are dead, else merging
 * segments of similar size when four or more have accumulated). *did says
 * whether anything was rewritten. Pending changes are committed first. */
int pl_vs_compact(struct pl_vs_writer *w, int *did, char *err);
int pl_vs_maybe_compact(struct pl_vs_writer *w, int *did, char *err);

/* --- vectors as JSON text ----------------------------------------------- */

/* Parse a JSON array of numbers (raw text s[0..n), already validated as
 * JSON) into *v, reallocated as needed (*cap floats). Returns the count, or
 * -1 with err naming the element that is not a number or does not fit a
 * float. The result equals strtof's for every element. */
long pl_vs_parse_floats(const char *s, size_t n, float **v, size_t *cap, char *err, size_t errlen);

/* A record's "vector" member m as floats, as above: the dimension (1 to
 * 65536), or -1 with err a message naming the field, for pl_input_reject. */
struct pl_jmember;
long pl_vs_vector_member(const struct pl_jmember *m, float **v, size_t *cap, char *err,
			 size_t errlen);

#endif
