/* dagrun's Kubernetes executor: each attempt of a task or of a fan-out child
 * is a Pod created through the API (lib/kube.h), watched with one LIST+WATCH
 * of the run's Pods, and reported ended from its Succeeded or Failed event,
 * after its log has been fetched into the run directory. Behind the same seam
 * as the local executor (lib/executor.h).
 *
 * Ownership: pl_exec_k8s_new copies what it keeps of the options (strings and
 * lists may be freed after the call); the executor is released with
 * x->free(x). pl_exec_k8s_manifest returns a Pod the caller json_decrefs.
 * Nothing here prints or exits. */
#ifndef PL_EXEC_K8S_H
#define PL_EXEC_K8S_H

#include <jansson.h>

#include "executor.h"
#include "kube.h"

/* What happens to a Pod once its attempt ended. A Pod that outlived its
 * pending timeout is deleted whatever the policy (the kubelet would retry
 * its image pull for ever). */
enum pl_pod_gc {
	PL_POD_GC_ON_SUCCESS,	/* the default: delete Pods that succeeded, keep failed ones */
	PL_POD_GC_ON_COMPLETION,	/* delete every ended Pod */
	PL_POD_GC_NEVER
};

/* "on-success", "on-completion" or "never": 0, else -1. */
int pl_pod_gc_parse(const char *s, enum pl_pod_gc *out);

struct pl_exec_k8s_opts {
	/* the cluster */
	struct pl_kube_load load;	/* kubeconfig list, context, namespace (see kube.h) */
	int in_cluster;		/* use the Pod's service account even when a kubeconfig exists */
	double qps;		/* requests a second; 0: 20 (<0: no limit) */
	int burst;		/* 0: 30 */
	const struct pl_kube_opts *kube;	/* the client's other options; NULL: defaults */

	/* the Pods */
	const char *run_id;	/* required: names, labels and the run's ConfigMap */
	const char *image;	/* when the task names none */
	const char *store;	/* the artifact store, passed to the shim (--store) */
	long store_ttl;		/* seconds, passed to the shim (--ttl); 0: not passed */
	const char *dagrun;	/* the dagrun binary in the image; NULL: "dagrun" */
	const char *const *pull_secrets;	/* imagePullSecrets; NULL-terminated, or NULL */
	enum pl_pod_gc gc;
	double pending_timeout;	/* seconds a Pod may wait in ImagePullBackOff, ErrImagePull,
				 * ErrImageNeverPull, InvalidImageName or
				 * CreateContainerConfigError; 0: 300, < 0: for ever */
	long grace_s;		/* SIGTERM's grace period in seconds; 0: the Pod's own
				 * (SIGKILL deletes with none) */
	/* The watch of the run's Pods is given up (see pl_exec_k8s_new) after
	 * PL_EXEC_K8S_WATCH_TRIES permanent answers, or at a failure once
	 * failures have gone on this many seconds with no sign of life between
	 * them; 0: 300, < 0: only for permanent answers. */
	double watch_fail_timeout;
	/* Where logs go when a spec has no log_path: DIR/tasks/NAME.log (NAME is
	 * "task" or "task/N"), appended; NULL: nowhere. */
	const char *run_dir;
	/* Tests: the words before "/bin/sh -c COMMAND" instead of the shim
	 * ("dagrun step --store ... --"); an empty list runs the shell alone. */
	const char *const *step_argv;
	/* Called as things happen, for --verbose and benchmarks: event is
	 * "create" (queued), "created" (201), "adopted" (the Pod existed),
	 * a phase ("Pending", "Running", "Succeeded", "Failed"), "Deleted",
	 * "stuck" (waiting on ImagePullBackOff...), that reason again when the
	 * pending timeout ends it, "ended" (queued for reap); or, with id 0
	 * and pod NULL, "watch-error", "watch-failed" (given up) and
	 * "watch-started" (a new LIST+WATCH for an attempt started after). */
	void (*trace)(void *ud, long id, const char *pod, const char *event);
	void *trace_ud;
};

void pl_exec_k8s_opts_default(struct pl_exec_k8s_opts *o);

/* Permanent answers (a 4xx other than 408, 410 and 429: 401 once lib/kube
 * has refreshed the credentials, 403, 404) the watch may get before it is
 * given up, with no event between them. */
#define PL_EXEC_K8S_WATCH_TRIES 3

/* Connect, create (or find) the run's ConfigMap and start watching the
 * run's Pods. Returns NULL with err (size n) filled.
 *
 * How attempts end (struct pl_xdone):
 *   Succeeded, or Failed with an exit code   code = containerStatuses' exitCode
 *   OOMKilled                                137, reason "OOMKilled"
 *   activeDeadlineSeconds passed             124 (as timeout(1)), reason "DeadlineExceeded"
 *   Evicted, NodeLost, Shutdown..., a        137, signaled (transient), reason the
 *     DisruptionTarget condition, or the       Pod's reason, the condition's, or
 *     Pod deleted by someone else              "Deleted"
 *   stuck past the pending timeout           125 (never ran), reason the waiting reason
 *   the create refused for good              pl_kube_exit_status (2 for 401/403, 65 for
 *                                            400/422, 69, 75), reason the Status reason
 *   command or env not UTF-8                 65, reason "NotUTF8"
 *   deleted for our signal n                 the container's code, or 128+n; signaled
 *                                            when above 128
 *   the watch of the run's Pods given up     2 for 401/403, else 69 (a signalled one:
 *                                            128+n, signaled), reason "WatchFailed:
 *                                            403 Forbidden" (the HTTP status and the
 *                                            Status reason); its Pod is deleted
 * Each time the Pod's log, or dagrun's note of why there is none, is
 * appended to the attempt's log file first. start() fails (-1) only for a
 * configuration error: no image, no store, no run id.
 *
 * The watch is given up when it keeps failing: lib/kube retries it for ever,
 * so without this an attempt whose end can no longer be seen would hang the
 * run. Every attempt whose end was awaited from it ends then, and the watch
 * is freed; an attempt started later starts a new LIST+WATCH, with a new
 * count, so a retry or on_exit is a real new try. A sign of life (an event,
 * a bookmark, a complete list, a watch request that ended well) resets the
 * count and the clock; a connection error at the bound is checked with a
 * LIST of the run's Pods first (exec_k8s.c says why). */
struct pl_executor *pl_exec_k8s_new(const struct pl_exec_k8s_opts *o, char *err, size_t n);

/* --- for tests and dry runs --- */

/* The Pod name of an attempt: deterministic, DNS-1123, at most 63 bytes. */
void pl_exec_k8s_pod_name(const char *run_id, const char *task, long child, int attempt,
			  char out[PL_KUBE_NAME_MAX + 1]);

/* A label value for any string: itself when it is one, else pl_kube_name's. */
void pl_exec_k8s_label(const char *s, char out[PL_KUBE_NAME_MAX + 1]);

/* The Pod start would create for spec (owner_uid NULL: no ownerReference),
 * or NULL with err filled. */
json_t *pl_exec_k8s_manifest(const struct pl_exec_k8s_opts *o, const struct pl_xspec *s,
			     const char *owner_uid, char *err, size_t n);

/* Counters, for tests. */
struct pl_exec_k8s_stats {
	unsigned long creates, adopted, conflicts, deletes, logs, log_errors, ended;
	unsigned long watch_errors;
	unsigned long watch_giveups;	/* the watch given up for failing */
	unsigned long watch_probes;	/* LISTs of our own, asked before giving up on a connection error */
	struct pl_kube_watch_stats watch;	/* of the run's LIST+WATCHes, summed */
};
void pl_exec_k8s_stats(struct pl_executor *x, struct pl_exec_k8s_stats *s);
/* The client, for tests that read its own counters. */
struct pl_kube *pl_exec_k8s_kube(struct pl_executor *x);

#endif
