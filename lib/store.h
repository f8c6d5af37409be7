/* Ownership: pl_art_open allocates a store that pl_art_close frees;
 * pl_art_writer allocates a writer that pl_art_finish or pl_art_abandon
 * frees, before its store is closed; buffers passed in stay the caller's;
 * pl_art_get returns a string the caller frees. Nothing here prints or
 * exits: calls return a status (PL_ART_*), and pl_art_errstr says why the
 * last one failed.
 *
 * dagrun's artifact store ("art"): each task's and fan-out child's output
 * (and log), written as it is produced and read from any offset, while it
 * grows, by readers on this machine or on any other: in a run directory
 * (the layout dagrun has always used) or in Redis (redis://host:port[/db]).
 *
 * Keys name outputs relative to the run: "T.out", "T/3.out", "T.log". In a
 * directory, key K is the file DIR/tasks/K, with a sidecar DIR/tasks/K.meta
 * (generation, attempt, done, status), values in DIR/tasks/NAME.vals/FIELD,
 * and nothing expires; in Redis every key of run R starts with "plumb:{R}:"
 * (the braces keep a run's keys in one cluster slot) and lives ttl seconds
 * after it was last written (7 days unless set).
 *
 * A store is used by one thread at a time. In Redis it holds one connection
 * for commands and, once something is followed, one for subscriptions.
 *
 * Generations. Each writer that starts on a key opens a new generation of it
 * and replaces the one before, atomically for readers: a reader follows one
 * generation (pl_art_info.gen), sees every byte of it in order, and is told
 * PL_ART_REPLACED when a newer one took over (a retried attempt). A writer
 * that was replaced (a Pod thought lost) learns it at its next call and
 * removes what it wrote; it never touches the newer generation.
 *
 * Redis layout, and why (see store.c): an output is a series of chunk keys
 * of at most pl_art_chunk() bytes (Redis strings stop at 512 MB, and
 * bounded values keep the server's and every client's memory bounded), so a
 * read at any offset is one GETRANGE; a small hash per output holds its
 * current generation, size and "done" status, and every write updates chunk
 * and hash in one MULTI/EXEC, so readers never see data the size does not
 * cover. Readers wait on a pub/sub channel per key: pl_art_fd gives a
 * descriptor for poll(). */
#ifndef PL_STORE_H
#define PL_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PL_ART_TTL_DEFAULT (7L * 24 * 3600)	/* seconds */
#define PL_ART_CHUNK_DEFAULT 65520	/* bytes: with Redis's own header, one 64 KiB allocation */
#define PL_ART_RECHECK_MS 1000	/* poll at least this often, should a notification be lost */

enum {
	PL_ART_OK = 0,
	PL_ART_ERR = -1,	/* I/O, the server, or a bad argument: see pl_art_errstr */
	PL_ART_MISSING = -2,	/* no such output (yet) */
	PL_ART_REPLACED = -3,	/* a newer generation took over */
	PL_ART_GONE = -4	/* the run or part of the output expired or was deleted */
};

struct pl_art;
struct pl_art_writer;

struct pl_art_opts {
	const char *spec;	/* a run directory, or redis://[[user]:password@]host[:port][/db] */
	const char *run;	/* the run's id: Redis keys are named after it (a directory
				 * is the run itself) */
	long ttl;		/* Redis: seconds a key lives after its last write; 0: the run's
				 * (when it exists), else PL_ART_TTL_DEFAULT */
	int create;		/* start (or resume) the run; else it must exist */
	size_t chunk;		/* Redis: bytes per chunk for a new run; 0: the default */
	int timeout_ms;		/* Redis: connect and command timeout; 0: 5000 */
};

/* Open the store of a run. Returns NULL with err (size n) filled and *status
 * set to a PL_EX_* code: 2 for a bad spec, refused credentials or a run that
 * does not exist (never created, deleted, or expired), 69 when the server
 * cannot be reached. */
struct pl_art *pl_art_open(const struct pl_art_opts *o, char *err, size_t n, int *status);
void pl_art_close(struct pl_art *s);
const char *pl_art_errstr(const struct pl_art *s);
int pl_art_is_redis(const struct pl_art *s);
size_t pl_art_chunk(const struct pl_art *s);	/* Redis chunk size; 0 for a directory */
long pl_art_ttl(const struct pl_art *s);		/* 0 for a directory */

/* --- writing ------------------------------------------------------------ */

/* Start a new generation of key for attempt (1, 2, ...; kept for readers),
 * replacing what any earlier writer wrote. NULL on failure. */
struct pl_art_writer *pl_art_writer(struct pl_art *s, const char *key, int attempt);
/* Append n bytes: visible to readers when this returns. Returns PL_ART_OK,
 * PL_ART_REPLACED (the writer is then spent: abandon it) or PL_ART_ERR. */
int pl_art_append(struct pl_art_writer *w, const void *p, size_t n);
/* Append the whole of another output, which must be finished: in Redis by
 * reference (no byte is copied; the fan-in of a fan-out), in a directory by
 * copying. A writer either appends or splices, never both. */
int pl_art_splice(struct pl_art_writer *w, const char *key);
/* A directory writer's file, open for writing at its end, for a local
 * process to write into directly (pl_art_finish then takes the file's
 * size); -1 for Redis. */
int pl_art_writer_fd(const struct pl_art_writer *w);
/* Mark the generation done with status (the attempt's exit status) and free
 * w. Returns PL_ART_OK, PL_ART_REPLACED or PL_ART_ERR. */
int pl_art_finish(struct pl_art_writer *w, int status);
/* Free w without marking anything done (readers keep waiting for a newer
 * generation). */
void pl_art_abandon(struct pl_art_writer *w);

/* --- reading ------------------------------------------------------------ */

struct pl_art_info {
	uint64_t gen;		/* the generation readers should follow */
	int attempt;
	int64_t size;		/* bytes so far */
	int done;		/* the writer finished: size is final */
	int status;		/* when done: the status it finished with */
};

/* The current generation of key: size and done in one snapshot (never
 * "done" with a size that misses bytes). PL_ART_OK, PL_ART_MISSING,
 * PL_ART_GONE or PL_ART_ERR. */
int pl_art_stat(struct pl_art *s, const char *key, struct pl_art_info *i);
/* Up to n bytes of generation gen of key from off. Returns how many (fewer
 * than n when fewer are there, or at a chunk's or part's end: call again),
 * 0 when nothing lies at off yet (see pl_art_stat for whether more will
 * come), or PL_ART_REPLACED, PL_ART_MISSING, PL_ART_GONE, PL_ART_ERR. */
ssize_t pl_art_read(struct pl_art *s, const char *key, uint64_t gen, int64_t off, void *buf,
		      size_t n);

/* --- waiting for more --------------------------------------------------- */

/* Be woken when key changes: a pub/sub subscription (Redis) or an inotify
 * watch on its directory. Follow before the first pl_art_stat of a key, so
 * no change between the two goes unseen; this may consume notifications of
 * other keys, which pl_art_fd then reports as due at once. */
int pl_art_follow(struct pl_art *s, const char *key);
void pl_art_unfollow(struct pl_art *s, const char *key);
/* The descriptor to poll for POLLIN (-1 when none), and *timeout_ms lowered
 * to 0 when a notification is already waiting, else to PL_ART_RECHECK_MS:
 * after the wait, call pl_art_drain and stat what is followed. */
int pl_art_fd(struct pl_art *s, int *timeout_ms);
/* Consume notifications without blocking (reconnecting a subscription that
 * dropped). Returns 1 if any came (or may have been lost), else 0. */
int pl_art_drain(struct pl_art *s);
/* Both: block up to timeout_ms for a change. Returns 1 on a notification, 0
 * on the timeout. */
int pl_art_wait(struct pl_art *s, int timeout_ms);

/* --- small values, per task or child ("T", "T/3") ----------------------- */

/* field: letters, digits, '_', '-', '.'. Values may hold any bytes. */
int pl_art_set(struct pl_art *s, const char *name, const char *field, const void *val,
		 size_t len);
/* *val (NUL-terminated, the caller frees it) and *len; PL_ART_MISSING when
 * not set. */
int pl_art_get(struct pl_art *s, const char *name, const char *field, char **val,
		 size_t *len);

/* --- retention ---------------------------------------------------------- */

/* Redis: set the TTL of every key of the run again (a long run calls this now
 * and then; a writer refreshes its own keys as it writes). A directory: no-op. */
int pl_art_touch(struct pl_art *s);
/* Delete every key of the run (a directory: DIR/tasks). The store is then
 * spent: close it. */
int pl_art_delete(struct pl_art *s);

#endif
