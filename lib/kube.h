/* A Kubernetes REST client for what dagrun's k8s executor needs (core/v1 Pods,
 * their logs, ConfigMaps, and a LIST+WATCH of Pods), over libcurl's multi
 * interface and jansson, with no client library: kubeconfig and in-cluster
 * configuration, bearer tokens, token files, client certificates and exec
 * credential plugins, a client-side token-bucket rate limiter, retries with
 * Retry-After, and Kubernetes' Status objects turned into one error.
 *
 * Ownership: pl_kube_config_load and pl_kube_config_in_cluster allocate a
 * config that pl_kube_config_free releases; pl_kube_new copies what it needs
 * (the config may be freed at once) and pl_kube_free releases the client with
 * its requests and watches; a json_t given to a call is borrowed, a json_t
 * returned through an out-parameter is the caller's to json_decref, and
 * anything passed to a callback is borrowed for the callback's duration.
 * Nothing here prints or exits: calls return 0 or a PL_EX_* status and fill
 * the caller's struct pl_kube_err. */
#ifndef PL_KUBE_H
#define PL_KUBE_H

#include <jansson.h>
#include <poll.h>
#include <stddef.h>
#include <sys/select.h>
#include <time.h>

#include "buf.h"

#define PL_KUBE_NAME_MAX 63	/* a DNS-1123 label */

struct pl_kube_err {
	long status;		/* HTTP status; 0 when no response came or the failure is local */
	char reason[64];	/* the Status object's reason (NotFound, AlreadyExists, Gone,
				 * Invalid, Unauthorized, TooManyRequests...), or a local one:
				 * ConfigError, ExecError, ConnectionError, TLSError, BadResponse */
	char message[768];	/* one line, e.g. pods "x" already exists */
	int tries;		/* attempts made */
};

/* --- configuration ---------------------------------------------------------- */

struct pl_kube_exec {
	char *api_version;	/* client.authentication.k8s.io/v1 or v1beta1 */
	char *command;		/* a relative path with a '/' is made relative to its kubeconfig */
	char **args;		/* NULL-terminated */
	char **env;		/* NULL-terminated "NAME=value" */
	char *interactive_mode;	/* Never, IfAvailable, Always; required by v1 */
	char *install_hint;
	int provide_cluster_info;
};

struct pl_kube_config {
	char *server;		/* https://host:port, maybe with a path prefix */
	char *namespace;	/* "default" when nothing sets one */
	char *context, *cluster, *user;	/* kubeconfig names; NULL in-cluster */
	int insecure;		/* insecure-skip-tls-verify */
	char *ca_file;		/* certificate-authority (a path), or NULL */
	unsigned char *ca_data;	/* certificate-authority-data, decoded PEM */
	size_t ca_len;
	char *cert_file, *key_file;	/* client-certificate, client-key */
	unsigned char *cert_data, *key_data;	/* ...-data, decoded PEM */
	size_t cert_len, key_len;
	char *token;		/* a bearer token */
	char *token_file;	/* tokenFile, or the service-account token: re-read */
	struct pl_kube_exec *exec;	/* or NULL */
	int in_cluster;
};

struct pl_kube_load {
	const char *kubeconfig;	/* colon-separated list; NULL: $KUBECONFIG, else
				 * ~/.kube/config, else in-cluster when
				 * KUBERNETES_SERVICE_HOST is set */
	const char *context;	/* instead of current-context */
	const char *namespace;	/* instead of the context's namespace */
	const char *sa_dir;	/* in-cluster files; NULL for
				 * /var/run/secrets/kubernetes.io/serviceaccount */
};

/* Kubeconfig files are merged as kubectl merges them: the first file to set
 * current-context wins, and the first file to define a cluster, user or
 * context of a given name wins (the whole entry). Missing files in the list
 * are skipped; none at all is an error. Relative paths are relative to the
 * file that names them. */
int pl_kube_config_load(const struct pl_kube_load *l, struct pl_kube_config **out,
			struct pl_kube_err *err);
/* In a Pod: KUBERNETES_SERVICE_HOST and _PORT, sa_dir/token (re-read),
 * sa_dir/ca.crt and sa_dir/namespace; namespace, when not NULL, overrides. */
int pl_kube_config_in_cluster(const char *sa_dir, const char *namespace,
			      struct pl_kube_config **out, struct pl_kube_err *err);
void pl_kube_config_free(struct pl_kube_config *c);

/* --- the client --------------------------------------------------------------- */

struct pl_kube_opts {
	double qps;		/* requests a second, on average; default 20 (<= 0: no limit) */
	int burst;		/* tokens the bucket holds; default 30 */
	int max_tries;		/* attempts on 408, 429, 5xx and connection errors; default 5 */
	long backoff_ms;	/* first retry delay before jitter; default 200 ms */
	long backoff_max_ms;	/* default 10 s */
	long retry_after_max_ms;	/* cap on a server's Retry-After; default 60 s */
	long connect_timeout_ms;	/* default 10 s */
	long timeout_ms;	/* a whole request other than a watch; default 60 s */
	long token_reload_ms;	/* token files are re-read at least this often; default 60 s */
	long watch_timeout_s;	/* timeoutSeconds of each watch request; default 300 */
	long exec_timeout_ms;	/* an exec credential plugin's run; default 60 s */
	const char *field_validation;	/* on creates; default "Strict" ("" to send none) */
};

void pl_kube_opts_default(struct pl_kube_opts *o);

struct pl_kube;

struct pl_kube *pl_kube_new(const struct pl_kube_config *c, const struct pl_kube_opts *o,
			    struct pl_kube_err *err);
void pl_kube_free(struct pl_kube *k);
const char *pl_kube_namespace(const struct pl_kube *k);
const char *pl_kube_server(const struct pl_kube *k);

/* Counters, for tests and --verbose. */
struct pl_kube_stats {
	unsigned long requests;		/* HTTP requests sent, retries included */
	unsigned long retries;
	unsigned long exec_runs;	/* exec credential plugin runs */
	unsigned long token_reads;	/* token file reads */
	unsigned long rate_waits;	/* requests that waited for the rate limiter */
};
void pl_kube_stats(const struct pl_kube *k, struct pl_kube_stats *s);

/* --- asynchronous requests ------------------------------------------------------ */

struct pl_kube_resp {
	long status;		/* final HTTP status; 0 when none came */
	const char *body;	/* the response body */
	size_t len;
	json_t *obj;		/* the body parsed, when it is JSON; else NULL */
	const struct pl_kube_err *err;	/* NULL on success (2xx) */
};

typedef void (*pl_kube_cb)(void *ud, const struct pl_kube_resp *r);

/* Queue a request. path is absolute ("/api/v1/namespaces/ns/pods"); query is
 * already escaped ("labelSelector=app%3Dx") or NULL; body is JSON or NULL. The
 * request waits for the rate limiter, is retried by the policy (also a POST:
 * a create whose answer was lost may come back 409 AlreadyExists, which a
 * caller with deterministic names checks with a GET), and cb runs once with
 * the outcome from inside pl_kube_step, never inside this call. A callback
 * may queue requests and free watches; it must not free the client.
 * pl_kube_free abandons unfinished requests without calling their cb. */
void pl_kube_call(struct pl_kube *k, const char *method, const char *path, const char *query,
		  const char *body, size_t len, pl_kube_cb cb, void *ud);

/* Drive the client: wait at most timeout_ms (-1: until something happens) for
 * network activity, a timer, or one of the caller's nextra file descriptors
 * (their revents are filled in), then run every callback that is due. Returns
 * the number of requests not yet final plus active watches. */
int pl_kube_step(struct pl_kube *k, struct pollfd *extra, unsigned nextra, int timeout_ms);

/* For a caller's own select() loop: the descriptors curl waits on, and how
 * long the caller may wait (ms; -1 none due) before calling
 * pl_kube_step(k, NULL, 0, 0). */
void pl_kube_fdset(struct pl_kube *k, fd_set *r, fd_set *w, fd_set *e, int *maxfd);
long pl_kube_timeout(struct pl_kube *k);

/* Requests queued and not yet final (watches not counted). */
size_t pl_kube_pending(const struct pl_kube *k);

/* --- core/v1 helpers, synchronous ------------------------------------------------ */
/* Each drives pl_kube_step until its own request is final, so callbacks of
 * other requests and watch events may run inside it. ns NULL is the client's
 * namespace. On success *out (where there is one) is the object returned. */

int pl_kube_pod_create(struct pl_kube *k, const char *ns, json_t *pod, json_t **out,
		       struct pl_kube_err *err);
int pl_kube_pod_get(struct pl_kube *k, const char *ns, const char *name, json_t **out,
		    struct pl_kube_err *err);
/* grace_s < 0: the Pod's own terminationGracePeriodSeconds. */
int pl_kube_pod_delete(struct pl_kube *k, const char *ns, const char *name, long grace_s,
		       struct pl_kube_err *err);
/* A PodList of every Pod matching selector (NULL: all), pages followed. */
int pl_kube_pod_list(struct pl_kube *k, const char *ns, const char *selector, json_t **out,
		     struct pl_kube_err *err);
/* The log of a Pod's container (NULL: its only one), appended to out. */
int pl_kube_pod_log(struct pl_kube *k, const char *ns, const char *name, const char *container,
		    struct pl_buf *out, struct pl_kube_err *err);
int pl_kube_configmap_create(struct pl_kube *k, const char *ns, json_t *cm, json_t **out,
			     struct pl_kube_err *err);
int pl_kube_configmap_get(struct pl_kube *k, const char *ns, const char *name, json_t **out,
			  struct pl_kube_err *err);
int pl_kube_configmap_delete(struct pl_kube *k, const char *ns, const char *name,
			     struct pl_kube_err *err);

/* The same creates without waiting: cb runs from pl_kube_step. */
void pl_kube_pod_create_async(struct pl_kube *k, const char *ns, json_t *pod, pl_kube_cb cb,
			      void *ud);

/* "/api/v1/namespaces/NS/RESOURCE[/NAME[/SUB]]" with its parts escaped, into b. */
void pl_kube_path(struct pl_kube *k, struct pl_buf *b, const char *ns, const char *resource,
		  const char *name, const char *sub);

/* --- watching ---------------------------------------------------------------------- */

enum pl_kube_ev {
	PL_KUBE_ADDED,		/* new object (from the stream, or found by a list) */
	PL_KUBE_MODIFIED,
	PL_KUBE_DELETED,	/* also for an object a re-list no longer finds */
	PL_KUBE_BOOKMARK,	/* the server's progress mark; obj has only a resourceVersion */
	PL_KUBE_SYNCED,		/* a list is complete: the events above now describe every object */
	PL_KUBE_GONE,		/* 410: the resourceVersion expired; a re-list follows at once */
	PL_KUBE_WATCH_ERROR	/* a failure (err): the watch keeps trying with backoff */
};

struct pl_kube_event {
	enum pl_kube_ev type;
	json_t *obj;		/* the object (borrowed), or NULL */
	const char *name;	/* its metadata.name, or NULL */
	const struct pl_kube_err *err;	/* for GONE and WATCH_ERROR */
};

typedef void (*pl_kube_watch_cb)(void *ud, const struct pl_kube_event *ev);

struct pl_kube_watch;

/* LIST the resource ("pods") in ns with a label selector (NULL: all), then
 * WATCH from the list's resourceVersion with bookmarks. Every object found is
 * delivered (ADDED, then SYNCED), then each change as it arrives. A dropped
 * connection or an ended watch reconnects from the last resourceVersion seen;
 * a 410 Gone (the HTTP status, or an ERROR event in the stream) is reported
 * as GONE and followed by a re-list whose differences from what was known
 * come as ADDED, MODIFIED and DELETED, so no change is lost. cb may queue
 * requests and free watches, this one included. */
struct pl_kube_watch *pl_kube_watch_new(struct pl_kube *k, const char *ns, const char *resource,
					const char *selector, pl_kube_watch_cb cb, void *ud);
void pl_kube_watch_free(struct pl_kube_watch *w);
/* The objects the watch knows now, by name (borrowed; do not modify). */
json_t *pl_kube_watch_objects(struct pl_kube_watch *w);
const char *pl_kube_watch_rv(const struct pl_kube_watch *w);

struct pl_kube_watch_stats {
	unsigned long lists;		/* LISTs completed (the first one included) */
	unsigned long connects;		/* WATCH requests started */
	unsigned long gone;		/* 410s */
	unsigned long events;		/* events from the stream, bookmarks included */
};
void pl_kube_watch_stats(const struct pl_kube_watch *w, struct pl_kube_watch_stats *s);

/* --- names and small helpers --------------------------------------------------------- */

/* A deterministic Pod name from any string: lowercase letters, digits and '-',
 * starting and ending with a letter or digit, at most 63 bytes. A string that
 * already is one comes back as it is (returns 0); any other keeps a cleaned
 * prefix and gets '-' and 10 hex digits of its SHA-256 (returns 1), so two
 * different strings never share a name by cleaning alone. */
int pl_kube_name(const char *s, size_t len, char out[PL_KUBE_NAME_MAX + 1]);

/* RFC 3339 ("2026-01-02T15:04:05Z", fractions, offsets) to time_t; -1 if not. */
time_t pl_kube_time(const char *s);

/* The exit status for an error: 2 configuration (401, 403, bad config), 65
 * rejected input (400, 422, other 4xx), 69 unavailable, 75 temporary (429, 503). */
int pl_kube_exit_status(const struct pl_kube_err *e);

#endif
