/* The scheduler of dagrun (docs/dagrun.1): runs a checked pipeline's tasks
 * and fan-out children through an executor (lib/executor.h; local process
 * groups by default), in dependency order, with gates, retries, timeouts,
 * streamed fan-out, streamed fan-in, a cache, resume and on_exit, keeping its
 * state in a run directory: a JSON Lines journal (each event written at once,
 * fsync'd in groups), and each task's and child's output and log files. The
 * caller blocks SIGCHLD, SIGINT and SIGTERM first: the runner reads them from
 * signalfds.
 *
 * Ownership: the caller owns the pipeline, the options and any executor it
 * passes, and frees them after pl_run returns; nothing here allocates anything
 * the caller must free. Nothing here prints or exits: progress goes to the
 * callbacks. */
#ifndef PL_RUNNER_H
#define PL_RUNNER_H

#include "executor.h"
#include "pipeline.h"

/* A snapshot of one task for a progress display. */
struct pl_task_view {
	const char *name;
	const char *state;	/* Waiting, Running, Succeeded, Failed, Skipped, Errored */
	int fanout;
	long total;		/* children; -1 while a streamed fan-out may still grow */
	long done, ok, failed, running;
	double elapsed;		/* seconds since it started, or its run time once done */
};

struct pl_run_view {
	const struct pl_task_view *t;
	size_t n;
	double elapsed;
	int final;		/* the last call, after the run ended */
};

struct pl_run_opts {
	const char *dir;	/* the run directory, created by pl_run */
	const char *id;		/* {{run.id}} */
	double kill_grace;	/* seconds between SIGTERM and SIGKILL */
	/* a progress line; detail is 1 for per-child lines a display may omit */
	void (*progress)(void *ctx, int detail, const char *line);
	/* a snapshot of every task, at most four times a second and at the end */
	void (*tick)(void *ctx, const struct pl_run_view *v);
	void *ctx;
	int resume;		/* finish the run in dir: keep what its journal says succeeded */
	int events_fd;		/* also write each journal event here (not synced); -1: none */
	const char *cache_dir;	/* where `cache: true` keeps outputs; NULL: .plumb/cache */
	struct pl_executor *executor;	/* NULL: local processes */
	double sync_every;	/* most seconds an event waits for its fsync; 0: 0.05 */
	long fanout_parallelism;	/* children at once when nothing says; 0: CPUs */
	/* Outputs through an artifact store (lib/store.h, redis://...): every
	 * attempt runs under "dagrun step" (self: this program's path), reading
	 * its input from the store and writing its output there as it goes;
	 * the run directory keeps a copy of each task's output. NULL: files. */
	const char *store;
	long store_ttl;		/* seconds; 0: the store's default */
	const char *self;
};

/* Run p. Returns 0 when the run succeeded, 1 when it failed, 128+n when
 * signal n interrupted it, or -1 with err (size n) filled when the run
 * directory could not be written. */
int pl_run(const struct pl_pipeline *p, const struct pl_run_opts *o, char *err, size_t n);

#endif
