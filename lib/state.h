/* Document state: for each document id, the sha256 of the content last
 * indexed, and the size, mtime and inode it had then (so an unchanged file
 * need not be read again), kept in a file or in Redis.
 *
 * Ownership: the caller owns struct pl_state (pl_state_init, pl_state_free),
 * which owns its entries, its index and the arena holding its ids; an entry
 * pointer stays valid only until the next pl_state_put or pl_state_del on the
 * same table. A struct pl_store comes from pl_store_open and goes to
 * pl_store_close. Nothing here prints or exits: calls return PL_ST_OK or a
 * negative PL_ST_E* status and fill the caller's char err[PL_STATE_ERRLEN]. */
#ifndef PL_STATE_H
#define PL_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PL_STATE_ERRLEN 256
#define PL_STATE_VERSION 1

enum {
	PL_ST_OK = 0,
	PL_ST_ECONFIG = -1,	/* bad state location, URL or credentials */
	PL_ST_EDATA = -2,	/* a state or pending record is malformed */
	PL_ST_EIO = -3,		/* a local file could not be read or written */
	PL_ST_EUNAVAIL = -4,	/* the Redis server could not be reached or timed out */
	PL_ST_ESERVICE = -5,	/* the Redis server answered with an error */
	PL_ST_EBUSY = -6	/* concurrent commits kept conflicting; try again later */
};

/* Entry flags. */
#define PL_ENT_USED 1u		/* set on every entry of a table */
#define PL_ENT_STAT 2u		/* size, mtime_ns and ino are valid */
#define PL_ENT_DELETED 4u	/* in a set of acks: the document was deleted */
#define PL_ENT_DIRTY 8u		/* changed by pl_state_apply */

struct pl_state_ent {
	size_t off;		/* the id: arena.p + off, len bytes, then a NUL */
	uint32_t len, hash;
	uint32_t flags, aux;	/* aux is the caller's */
	int64_t size, mtime_ns;
	uint64_t ino;
	unsigned char sha[32];
};

/* An open-addressing (linear probing) hash index over a dense array of
 * entries: iterate with for (i = 0; i < st->n; i++) st->ent[i], in no
 * particular order. At most 2^32 - 1 entries. */
struct pl_state {
	struct pl_state_ent *ent;
	size_t n, entcap;
	uint32_t *idx;		/* cap slots: 0 empty, else entry number + 1 */
	size_t cap;		/* 0 or a power of two */
	struct pl_buf arena;
};

void pl_state_init(struct pl_state *st);
void pl_state_free(struct pl_state *st);

struct pl_state_ent *pl_state_get(const struct pl_state *st, const char *id, size_t len);
/* The entry for id, added (zeroed but for the id) if absent; *created (if not
 * NULL) says which. */
struct pl_state_ent *pl_state_put(struct pl_state *st, const char *id, size_t len, int *created);
/* Returns 1 if id was there and is gone, 0 if it was not there. */
int pl_state_del(struct pl_state *st, const char *id, size_t len);

static inline const char *pl_state_id(const struct pl_state *st, const struct pl_state_ent *e)
{
	return st->arena.p + e->off;
}

static inline int pl_state_same_stat(const struct pl_state_ent *a, const struct pl_state_ent *b)
{
	return (a->flags & PL_ENT_STAT) && (b->flags & PL_ENT_STAT) && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ino == b->ino;
}

/* The used entries sorted by id (bytewise), as a malloc'd array of pointers
 * into st that the caller frees; *n is their number. */
struct pl_state_ent **pl_state_sorted(const struct pl_state *st, size_t *n);

/* Apply a commit to st. acks maps id to an indexed sha (or PL_ENT_DELETED);
 * pending maps id to the sha a run observed at a stat (PL_ENT_STAT). An
 * indexed id takes the ack's sha, with the pending stat when the pending sha
 * equals it, else keeping its own stat if its sha was already the ack's, else
 * no stat; a deleted id goes. An id without an ack takes the pending stat when
 * its sha equals the pending sha (a refresh). Changed entries get
 * PL_ENT_DIRTY. */
struct pl_commit_stats {
	unsigned long indexed, deleted, refreshed;
};
void pl_state_apply(struct pl_state *st, const struct pl_state *acks,
		    const struct pl_state *pending, struct pl_commit_stats *cs);

/* Whether pending entry p no longer needs remembering after a commit of acks
 * gave state st: its document was deleted, or st holds the sha p saw. Until
 * then discover-diff treats p's document as possibly stored in that version,
 * which is what makes a crash between storing and committing safe. */
int pl_pending_resolved(const struct pl_state *pending, const struct pl_state_ent *p,
			const struct pl_state *acks, const struct pl_state *st);

/* --- the file format -------------------------------------------------------
 * JSON Lines: a header {"format":"plumb-state","version":1,"kind":KIND,
 * "count":N}, then N records sorted by id:
 * {"id":"a.md","sha256":"<hex>","size":5,"mtime_ns":...,"ino":...}
 * (the last three only with PL_ENT_STAT). */

/* Read path into st (which should be empty). A missing file is an empty
 * state. kind is "state" or "pending"; a file of another kind is an error. */
int pl_state_read_file(struct pl_state *st, const char *path, const char *kind, char *err);

/* Replace path atomically: write tmp (in the same directory), fsync it,
 * rename it over path, fsync the directory. */
int pl_state_write_file(const struct pl_state *st, const char *path, const char *tmp,
			const char *kind, char *err);

/* One entry as Redis stores it: "<hex>" or "<hex> size mtime_ns ino". */
void pl_state_ent_encode(const struct pl_state_ent *e, struct pl_buf *out);
int pl_state_ent_decode(struct pl_state_ent *e, const char *s, size_t n);

/* --- stores ---------------------------------------------------------------
 * spec is a file path, or redis://... with keys PREFIX "docs" (hash: id ->
 * entry), PREFIX "pending" (hash) and PREFIX "version". A file store keeps
 * the pending record in PATH.pending and serializes writers with flock on
 * PATH.lock. */
struct pl_store;

/* Only parses spec (a Redis store connects on first use, retrying a few
 * times, with timeout_ms on the connection and on every command). *out is
 * set even on failure, for pl_store_close. */
int pl_store_open(struct pl_store **out, const char *spec, const char *prefix, int timeout_ms,
		  char *err);
/* The committed state, into st (empty). */
int pl_store_load(struct pl_store *s, struct pl_state *st, char *err);
/* The pending record of the last run, into pending (empty). */
int pl_store_load_pending(struct pl_store *s, struct pl_state *pending, char *err);
/* Replace the pending record with pending. */
int pl_store_put_pending(struct pl_store *s, const struct pl_state *pending, char *err);
/* Apply acks (see pl_state_apply) to the stored state, without losing the
 * updates of a concurrent commit, and drop from the pending record what the
 * commit resolved (see pl_pending_resolved). */
int pl_store_commit(struct pl_store *s, const struct pl_state *acks, struct pl_commit_stats *cs,
		    char *err);
/* How the store is named in messages (any password hidden). */
const char *pl_store_name(const struct pl_store *s);
void pl_store_close(struct pl_store *s);

#endif
