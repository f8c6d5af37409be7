/* The local runner of dagrun (docs/dagrun.1): runs a checked pipeline's tasks
 * and fan-out children as process groups of "sh -c RUN", in dependency order,
 * with gates, retries, timeouts, streamed fan-out, fan-in, resume and on_exit,
 * keeping its state in a run directory (an fsync'd JSON Lines journal, and
 * each task's and child's output and log files). The caller blocks SIGCHLD,
 * SIGINT and SIGTERM first: the runner waits for them with sigtimedwait.
 *
 * Ownership: the caller owns the pipeline and the options and frees them after
 * pl_run returns; nothing here allocates anything the caller must free.
 * Nothing here prints or exits: progress lines go to o->progress. */
#ifndef PL_RUNNER_H
#define PL_RUNNER_H

#include "pipeline.h"

struct pl_run_opts {
	const char *dir;	/* the run directory, created by pl_run */
	const char *id;		/* {{run.id}} */
	double kill_grace;	/* seconds between SIGTERM and SIGKILL */
	void (*progress)(void *ctx, const char *line);	/* or NULL */
	void *ctx;
	int resume;		/* finish the run in dir: keep what its journal says succeeded */
};

/* Run p. Returns 0 when the run succeeded, 1 when it failed, 128+n when
 * signal n interrupted it, or -1 with err (size n) filled when the run
 * directory could not be written. */
int pl_run(const struct pl_pipeline *p, const struct pl_run_opts *o, char *err, size_t n);

#endif
