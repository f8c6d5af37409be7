/* Ownership: the caller owns the options and everything they point to, and
 * pl_step_run allocates nothing the caller must free; it prints nothing and
 * never exits: it returns the status the step should exit with and fills
 * err when the failure was the shim's own.
 *
 * The in-Pod step shim (`dagrun step`): runs one attempt of a task or of a
 * fan-out child with its standard input read from the artifact store
 * (lib/store.h) and its output written there as it is produced. */
#ifndef PL_STEP_H
#define PL_STEP_H

#include <stddef.h>
#include <stdint.h>

/* One source of standard input: a key of the store, or a byte range of it
 * (the lines of a fan-out child's batch in its upstream's output). */
struct pl_step_input {
	const char *key;
	int64_t off;		/* from this byte */
	int64_t len;		/* this many bytes; -1: to the output's end */
};

struct pl_step {
	const char *store;	/* a run directory or a redis:// URL (lib/store.h) */
	const char *run;	/* the run's id; the run must exist in the store */
	const char *task;
	long child;		/* the fan-out child's number, or -1 for the task itself */
	int attempt;		/* 1, 2, ... */
	const char *cmd;	/* run with /bin/sh -c */
	const struct pl_step_input *inputs;	/* read in order as standard input */
	size_t ninputs;		/* 0: standard input is /dev/null */
	int log_fd;		/* the command's stderr is also copied here (its own
				 * stderr, for kubectl logs); -1: not copied */
	int timeout_ms;		/* Redis connect and command timeout; 0: the store's default */
	double kill_grace;	/* seconds from SIGTERM to SIGKILL when the shim itself
				 * stops the command; 0: 10 */
};

/* Run the step. Its output goes to key NAME.out and its stderr to NAME.log,
 * where NAME is "task" or "task/child", each a new generation for this
 * attempt, streamed as the command writes them. Each input is followed until
 * its writer finishes or its range is all there (so a step may read an
 * upstream that is still running); one that is replaced after part of it was
 * read, or that finishes with a status other than 0 or shorter than the
 * range, stops the command. At the end the values of
 * NAME (pl_art_set) get "exit", "attempt", "bytes" and "lines" (and
 * "signal" or "reason" when there is one), then the output is marked done
 * with the exit status.
 *
 * For its duration it blocks SIGCHLD, SIGINT, SIGTERM and SIGHUP and ignores
 * SIGPIPE, restoring both after. SIGINT, SIGTERM and SIGHUP are passed on to
 * the command's process group. It reaps every child of the process (it may
 * be a container's PID 1); when the command's shell exits, what is left of
 * its process group is killed, as the end of a container would.
 *
 * Returns the command's exit status (128+n after death by signal n), or with
 * err (size n) filled: 2 when the store or the run cannot be used as given,
 * 69 when the store failed, 75 when an input failed or was replaced (the
 * scheduler decides about retrying), 70 when the command could not start. */
int pl_step_run(const struct pl_step *o, char *err, size_t n);

#endif
