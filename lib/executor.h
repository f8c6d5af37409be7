/* The seam between dagrun's scheduler (lib/runner.c) and what runs one
 * attempt of a task or of a fan-out child: local process groups
 * (pl_exec_local_new, lib/exec_local.c) or Kubernetes Pods. The scheduler
 * decides what runs, when, how often and for how long; an executor only
 * starts attempts, signals them and reports how they ended, so a new one
 * slots in without touching the scheduler.
 *
 * Ownership: the scheduler owns every spec it passes; an executor copies what
 * it keeps. Whoever made an executor releases it with x->free(x). Nothing
 * here prints or exits. */
#ifndef PL_EXECUTOR_H
#define PL_EXECUTOR_H

#include <poll.h>
#include <stddef.h>

#include "pipeline.h"

/* One attempt to start. */
struct pl_xspec {
	const struct pl_task *task;	/* image, resources and the other Kubernetes fields */
	const char *name;		/* "task" or "task/N", for messages and labels */
	long child;			/* -1 for the task itself */
	int attempt;			/* 1, 2, ... */
	const char *cmd;		/* the expanded run, a shell command */
	const char *const *env;		/* KEY=VALUE added to the environment; NULL-terminated */
	int in_fd;			/* standard input, or -1 for none; the executor closes it */
	const char *out_path;		/* standard output: created, truncated */
	const char *log_path;		/* standard error: appended */
	void *token;			/* given back when the attempt ends */
	/* For executors that run elsewhere (Kubernetes): the same through the
	 * run's artifact store (lib/store.h), which in_fd, out_path and
	 * log_path are not. in_keys are outputs read in order, each followed
	 * until it is done (NULL-terminated; NULL or empty: no input). */
	const char *const *in_keys;
	const char *out_key, *log_key;
	const char *run_id;
	double timeout;			/* seconds, 0: none (the scheduler enforces it too) */
};

/* How an attempt ended. */
struct pl_xdone {
	void *token;
	int code;		/* exit status, or 128+n after death by signal n */
	int signaled;		/* died of a signal (or, remotely, was lost): transient */
	char reason[64];	/* "" or why, such as "OOMKilled" */
};

struct pl_executor {
	const char *name;
	/* Start an attempt: 0 with *id set (the executor's handle for it), or -1
	 * with err (size n) filled. */
	int (*start)(struct pl_executor *x, const struct pl_xspec *s, long *id, char *err,
		     size_t n);
	/* Send sig (SIGTERM or SIGKILL) to the running attempt id. */
	void (*signal)(struct pl_executor *x, long id, int sig);
	/* Descriptors to poll for its events: at most max; returns how many.
	 * *timeout_ms may be lowered to when it next needs to run (a timer of
	 * its own); it is never raised. */
	int (*fds)(struct pl_executor *x, struct pollfd *p, int max, int *timeout_ms);
	/* After poll, whatever the revents: ended attempts into d (at most max);
	 * returns how many, 0 when none ended. Call again until it returns less
	 * than max. */
	int (*reap)(struct pl_executor *x, struct pl_xdone *d, int max);
	void (*free)(struct pl_executor *x);
	/* Whether a resumed run should end the attempts its journal shows
	 * running (local process groups: they died with dagrun or must); a
	 * remote executor adopts them instead (start finds them by name). */
	int end_orphans;
};

/* Process groups of "sh -c CMD" on this machine (a command with no shell
 * syntax is executed directly, as make does). The caller has blocked SIGCHLD;
 * children start with every signal unblocked and die with the caller.
 * Returns NULL with err filled. */
struct pl_executor *pl_exec_local_new(char *err, size_t n);

#endif
