/* The Kubernetes executor (see exec_k8s.h). One attempt is one Pod. Nothing
 * here blocks on the API once the executor is made: creates, log fetches and
 * deletes are queued on the client (lib/kube.c) and their answers, like the
 * watch's events, are handled from pl_kube_step, which reap() runs after the
 * scheduler's poll woke on the client's descriptors or timer. So an attempt
 * is reported ended as soon as its Pod's terminal event and then its log
 * have arrived, with no polling interval anywhere.
 *
 * An attempt's life: CREATING (the create is in flight; the watch may see the
 * Pod first), LIVE (the Pod exists: created, found by a 409, or adopted from
 * the watch's objects on a resume), ENDING (its outcome is known and its log
 * is being fetched), DONE (queued for reap), REAPED (given back; freed once no
 * request of its is in flight). Requests hold a reference to their attempt,
 * so an answer never finds it freed. */
#include "exec_k8s.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "exitcode.h"
#include "fs.h"

#define CONTAINER "main"
#define LABEL_RUN "plumb.dev/run"
#define LABEL_TASK "plumb.dev/task"
#define LABEL_CHILD "plumb.dev/child"
#define LABEL_ATTEMPT "plumb.dev/attempt"
#define MAX_CREATES 3		/* a 409 whose GET finds nothing: create again, this often */
#define DRAIN_MS 5000		/* free(): how long queued deletes may take to go out */

/* What a Pod that never started exits with once its pending timeout has
 * passed: the container could not be run, as docker run says with 125. */
#define EXIT_NOT_STARTED 125
/* activeDeadlineSeconds passed: 124, as timeout(1) exits, so that it reads
 * differently from an OOM kill's 137. */
#define EXIT_DEADLINE 124

enum { A_CREATING, A_LIVE, A_ENDING, A_DONE, A_REAPED };

struct k8sx;

struct att {
	struct k8sx *x;
	long id;
	char pod[PL_KUBE_NAME_MAX + 1];
	void *token;
	char *log_path;		/* or NULL */
	json_t *manifest;	/* until the Pod is known to exist */
	int state, refs, sig, creates, snap_asked, snap_pending, have_snap;
	int await_snap;		/* settle once the snapshot is in: the Pod's own log is gone */
	int create_inflight;	/* a create of ours may still (re)make the Pod: */
	int del_pending;	/* so a delete waits for its answer, */
	long del_grace;		/* with this grace period */
	int counted_adopted;
	int kill_after_snap;	/* SIGTERM: delete once the snapshot is in */
	int killed;		/* deleted for a signal */
	int vanished;		/* ended by its deletion: nothing left to delete */
	int stuck_kill;		/* the pending timeout ended it: delete it whatever the policy */
	int watch_lost;		/* ended as the watch was given up: delete it, whatever the policy */
	unsigned long live_probe;	/* LISTs of our own sent before its Pod was known to exist */
	double stuck_since;	/* 0: not waiting on a reason that may never clear */
	char stuck_reason[64];
	char *stuck_msg;
	char phase[16];		/* last phase traced */
	struct pl_buf snap;	/* its log when it was signalled */
	struct pl_buf note;	/* dagrun's own lines for the log file */
	struct pl_xdone d;
	struct att *next;	/* in the done queue */
};

struct k8sx {
	struct pl_executor x;
	struct pl_exec_k8s_opts o;	/* strings below are ours */
	struct pl_kube *k;
	struct pl_kube_watch *w;	/* NULL once given up, until the next start */
	char *owner_uid;
	char cm_name[PL_KUBE_NAME_MAX + 1];
	char run_label[PL_KUBE_NAME_MAX + 1];
	char sel[PL_KUBE_NAME_MAX + 32];	/* the watch's label selector */
	/* the watch's failures since its last sign of life (see "the watch") */
	int wfail_perm;		/* permanent answers */
	unsigned long wfail_n;	/* all of them */
	double wfail_since;	/* when the first came; 0: none */
	struct pl_kube_err wfail_err;	/* the last */
	unsigned long wfail_reqs;	/* the watch's requests (connects + lists) then */
	unsigned long wgen;	/* watches started */
	int probing;		/* a LIST of our own is in flight (one at a time), */
	unsigned long probe_gen;	/* asked for watch wgen, */
	double probe_at;	/* then */
	unsigned long probe_seq;	/* LISTs sent */
	struct pl_kube_watch_stats wst;	/* of the watches given up */
	struct att **atts;	/* by id - 1 */
	size_t natts;
	json_t *byname;		/* Pod name -> id, for attempts not yet reaped */
	struct att *done, *done_tail;
	size_t nstuck, deleting;
	struct pl_exec_k8s_stats st;
	char **strs;		/* copies, freed with the executor */
	size_t nstrs;
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *keep(struct k8sx *x, const char *s)
{
	if (!s)
		return NULL;
	x->strs = pl_xrealloc(x->strs, (x->nstrs + 1) * sizeof *x->strs);
	return x->strs[x->nstrs++] = pl_xstrdup(s);
}

static const char *const *keepv(struct k8sx *x, const char *const *v)
{
	size_t n = 0;
	if (!v)
		return NULL;
	while (v[n])
		n++;
	const char **c = pl_xmalloc((n + 1) * sizeof *c);
	for (size_t i = 0; i < n; i++)
		c[i] = keep(x, v[i]);
	c[n] = NULL;
	x->strs = pl_xrealloc(x->strs, (x->nstrs + 1) * sizeof *x->strs);
	x->strs[x->nstrs++] = (char *)c;
	return c;
}

static void trace(struct k8sx *x, long id, const char *pod, const char *ev)
{
	if (x->o.trace)
		x->o.trace(x->o.trace_ud, id, pod, ev);
}

int pl_pod_gc_parse(const char *s, enum pl_pod_gc *out)
{
	if (!s)
		return -1;
	if (!strcmp(s, "on-success"))
		*out = PL_POD_GC_ON_SUCCESS;
	else if (!strcmp(s, "on-completion"))
		*out = PL_POD_GC_ON_COMPLETION;
	else if (!strcmp(s, "never"))
		*out = PL_POD_GC_NEVER;
	else
		return -1;
	return 0;
}

void pl_exec_k8s_opts_default(struct pl_exec_k8s_opts *o)
{
	memset(o, 0, sizeof *o);
	o->gc = PL_POD_GC_ON_SUCCESS;
	o->pending_timeout = 300;
	o->watch_fail_timeout = 300;
}

/* --- names and manifests ------------------------------------------------------ */

static int label_value_ok(const char *s)
{
	size_t n = strlen(s);
	if (n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && ((i == 0 || i == n - 1) || !strchr("-_.", c)))
			return 0;
	}
	return 1;
}

void pl_exec_k8s_label(const char *s, char out[PL_KUBE_NAME_MAX + 1])
{
	if (label_value_ok(s))
		snprintf(out, PL_KUBE_NAME_MAX + 1, "%s", s);
	else
		pl_kube_name(s, strlen(s), out);
}

/* '/' joins the parts because neither run ids nor task names may hold one, so
 * that no two attempts share the string; pl_kube_name then cleans it and adds
 * its hash, which keeps distinct strings apart after cleaning. */
void pl_exec_k8s_pod_name(const char *run_id, const char *task, long child, int attempt,
			  char out[PL_KUBE_NAME_MAX + 1])
{
	struct pl_buf b = PL_BUF_INIT;

	pl_buf_printf(&b, "%s/%s", run_id, task);
	if (child >= 0)
		pl_buf_printf(&b, "/%ld", child);
	pl_buf_printf(&b, "/%d", attempt);
	pl_kube_name(b.p, b.n, out);
	pl_buf_free(&b);
}

static void cm_name(const char *run_id, char out[PL_KUBE_NAME_MAX + 1])
{
	struct pl_buf b = PL_BUF_INIT;
	pl_buf_printf(&b, "plumb-run-%s", run_id);
	pl_kube_name(b.p, b.n, out);
	pl_buf_free(&b);
}

static const char *task_name(const struct pl_xspec *s)
{
	return s->task && s->task->name ? s->task->name : s->name;
}

/* Strings that are not UTF-8 cannot be sent: json_string refuses them, and
 * bad says so rather than the word going missing. */
static void push(json_t *a, int *bad, const char *s)
{
	json_t *v = json_string(s);
	if (!v)
		*bad = 1;
	else
		json_array_append_new(a, v);
}

static json_t *command(const struct pl_exec_k8s_opts *o, const struct pl_xspec *s, char *err,
		       size_t n, int *data)
{
	json_t *c = json_array();
	int bad = 0;

	if (o->step_argv) {
		for (size_t i = 0; o->step_argv[i]; i++)
			push(c, &bad, o->step_argv[i]);
	} else {
		if (!o->store || !*o->store) {
			snprintf(err, n, "the k8s executor needs an artifact store (--store)");
			goto fail;
		}
		if (!s->out_key || !s->log_key) {
			snprintf(err, n, "'%s': no output or log key for the k8s executor", s->name);
			goto fail;
		}
		push(c, &bad, o->dagrun ? o->dagrun : "dagrun");
		push(c, &bad, "step");
		push(c, &bad, "--store");
		push(c, &bad, o->store);
		push(c, &bad, "--run");
		push(c, &bad, s->run_id ? s->run_id : o->run_id);
		push(c, &bad, "--out");
		push(c, &bad, s->out_key);
		push(c, &bad, "--log");
		push(c, &bad, s->log_key);
		char at[32];
		snprintf(at, sizeof at, "%d", s->attempt > 0 ? s->attempt : 1);
		push(c, &bad, "--attempt");
		push(c, &bad, at);
		for (size_t i = 0; s->in_keys && s->in_keys[i]; i++) {
			push(c, &bad, "--in");
			push(c, &bad, s->in_keys[i]);
		}
		if (o->store_ttl > 0) {
			char t[32];
			snprintf(t, sizeof t, "%ld", o->store_ttl);
			push(c, &bad, "--ttl");
			push(c, &bad, t);
		}
		push(c, &bad, "--");
	}
	push(c, &bad, "/bin/sh");
	push(c, &bad, "-c");
	push(c, &bad, s->cmd);
	if (!bad)
		return c;
	snprintf(err, n, "'%s': the command line is not UTF-8, which Kubernetes requires", s->name);
	*data = 1;
fail:
	json_decref(c);
	return NULL;
}

/* The Pod for s, or NULL with err filled and *data set when the fault is in
 * this attempt's data (its command or environment) rather than in the
 * configuration. */
static json_t *build(const struct pl_exec_k8s_opts *o, const struct pl_xspec *s, const char *owner,
		     char *err, size_t n, int *data)
{
	const struct pl_k8s *t = s->task ? &s->task->k8s : NULL;
	const char *image = t && t->image ? t->image : o->image;
	const char *run = s->run_id ? s->run_id : o->run_id;
	char name[PL_KUBE_NAME_MAX + 1], lab[PL_KUBE_NAME_MAX + 1], num[32];
	json_t *pod, *meta, *labels, *spec, *ct, *cmd, *env;

	*data = 0;
	if (!run || !*run) {
		snprintf(err, n, "the k8s executor needs a run id");
		return NULL;
	}
	if (!image || !*image) {
		snprintf(err, n, "'%s': no container image (set the task's image or --image)", s->name);
		return NULL;
	}
	if (!(cmd = command(o, s, err, n, data)))
		return NULL;
	pl_exec_k8s_pod_name(run, task_name(s), s->child, s->attempt, name);
	labels = json_object();
	pl_exec_k8s_label(run, lab);
	json_object_set_new(labels, LABEL_RUN, json_string(lab));
	pl_exec_k8s_label(task_name(s), lab);
	json_object_set_new(labels, LABEL_TASK, json_string(lab));
	if (s->child >= 0) {
		snprintf(num, sizeof num, "%ld", s->child);
		json_object_set_new(labels, LABEL_CHILD, json_string(num));
	}
	snprintf(num, sizeof num, "%d", s->attempt);
	json_object_set_new(labels, LABEL_ATTEMPT, json_string(num));
	meta = json_pack("{s:s, s:o}", "name", name, "labels", labels);
	if (owner) {
		char cm[PL_KUBE_NAME_MAX + 1];
		cm_name(run, cm);
		json_object_set_new(meta, "ownerReferences",
				    json_pack("[{s:s, s:s, s:s, s:s}]", "apiVersion", "v1", "kind",
					      "ConfigMap", "name", cm, "uid", owner));
	}

	ct = json_pack("{s:s, s:s, s:o}", "name", CONTAINER, "image", image, "command", cmd);
	env = json_array();
	for (size_t i = 0; s->env && s->env[i]; i++) {
		const char *eq = strchr(s->env[i], '=');
		if (!eq)
			continue;
		json_t *e = json_pack("{s:s%, s:s}", "name", s->env[i], (size_t)(eq - s->env[i]),
				      "value", eq + 1);
		if (!e) {
			snprintf(err, n, "'%s': environment variable '%.*s' is not UTF-8, which "
				 "Kubernetes requires", s->name, (int)(eq - s->env[i]), s->env[i]);
			*data = 1;
			json_decref(env);
			json_decref(ct);
			json_decref(meta);
			return NULL;
		}
		json_array_append_new(env, e);
	}
	for (size_t i = 0; t && i < t->secrets.n; i++) {
		const char *v = t->secrets.v[i].val, *sl = strchr(v, '/');
		if (!sl) {
			snprintf(err, n, "'%s': secret '%s' is not SECRET-NAME/KEY", s->name, v);
			json_decref(env);
			json_decref(ct);
			json_decref(meta);
			return NULL;
		}
		json_array_append_new(env, json_pack("{s:s, s:{s:{s:s%, s:s}}}", "name",
						     t->secrets.v[i].key, "valueFrom", "secretKeyRef",
						     "name", v, (size_t)(sl - v), "key", sl + 1));
	}
	if (json_array_size(env))
		json_object_set_new(ct, "env", env);
	else
		json_decref(env);
	if (t && (t->cpu || t->memory || t->gpu > 0)) {
		json_t *lim = json_object(), *req = json_object();
		if (t->cpu) {
			json_object_set_new(lim, "cpu", json_string(t->cpu));
			json_object_set_new(req, "cpu", json_string(t->cpu));
		}
		if (t->memory) {
			json_object_set_new(lim, "memory", json_string(t->memory));
			json_object_set_new(req, "memory", json_string(t->memory));
		}
		if (t->gpu > 0) {
			/* an extended resource: limits alone, requests default to them */
			snprintf(num, sizeof num, "%ld", t->gpu);
			json_object_set_new(lim, "nvidia.com/gpu", json_string(num));
		}
		json_t *res = json_pack("{s:o}", "limits", lim);
		if (json_object_size(req))
			json_object_set_new(res, "requests", req);
		else
			json_decref(req);
		json_object_set_new(ct, "resources", res);
	}

	spec = json_pack("{s:s, s:[o]}", "restartPolicy", "Never", "containers", ct);
	if (t && t->node_selector.n) {
		json_t *ns = json_object();
		for (size_t i = 0; i < t->node_selector.n; i++)
			json_object_set_new(ns, t->node_selector.v[i].key,
					    json_string(t->node_selector.v[i].val));
		json_object_set_new(spec, "nodeSelector", ns);
	}
	if (t && t->ntol) {
		json_t *tl = json_array();
		for (size_t i = 0; i < t->ntol; i++) {
			json_t *e = json_object();
			const struct pl_toleration *q = &t->tol[i];
			if (q->key)
				json_object_set_new(e, "key", json_string(q->key));
			if (q->op)
				json_object_set_new(e, "operator", json_string(q->op));
			if (q->value)
				json_object_set_new(e, "value", json_string(q->value));
			if (q->effect)
				json_object_set_new(e, "effect", json_string(q->effect));
			json_array_append_new(tl, e);
		}
		json_object_set_new(spec, "tolerations", tl);
	}
	if (t && t->service_account) {
		json_object_set_new(spec, "serviceAccountName", json_string(t->service_account));
	} else {
		/* user code gets no API credentials unless the task asks for an account */
		json_object_set_new(spec, "automountServiceAccountToken", json_false());
	}
	if (s->timeout > 0) {
		double c = ceil(s->timeout);
		json_object_set_new(spec, "activeDeadlineSeconds",
				    json_integer(c > 2147483647.0 ? 2147483647 : (json_int_t)c));
	}
	if (o->pull_secrets && o->pull_secrets[0]) {
		json_t *ps = json_array();
		for (size_t i = 0; o->pull_secrets[i]; i++)
			json_array_append_new(ps, json_pack("{s:s}", "name", o->pull_secrets[i]));
		json_object_set_new(spec, "imagePullSecrets", ps);
	}
	pod = json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Pod", "metadata", meta,
			"spec", spec);
	if (!pod)
		snprintf(err, n, "'%s': the Pod cannot be built (a string is not UTF-8?)", s->name);
	return pod;
}

json_t *pl_exec_k8s_manifest(const struct pl_exec_k8s_opts *o, const struct pl_xspec *s,
			     const char *owner_uid, char *err, size_t n)
{
	int data;
	return build(o, s, owner_uid, err, n, &data);
}

/* --- attempts ------------------------------------------------------------------- */

static struct att *by_id(struct k8sx *x, long id)
{
	if (id < 1 || (size_t)id > x->natts)
		return NULL;
	return x->atts[id - 1];
}

static struct att *by_name(struct k8sx *x, const char *pod)
{
	json_t *v = pod ? json_object_get(x->byname, pod) : NULL;
	return v ? by_id(x, (long)json_integer_value(v)) : NULL;
}

static void att_free(struct att *a)
{
	if (a->x->atts[a->id - 1] == a)
		a->x->atts[a->id - 1] = NULL;
	json_decref(a->manifest);
	free(a->log_path);
	free(a->stuck_msg);
	pl_buf_free(&a->snap);
	pl_buf_free(&a->note);
	free(a);
}

/* A request of a's has been answered: 1 when a is gone and must not be used. */
static int unref(struct att *a)
{
	a->refs--;
	if (a->state == A_REAPED && a->refs == 0) {
		att_free(a);
		return 1;
	}
	return a->state == A_REAPED;
}

static void notef(struct att *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void notef(struct att *a, const char *fmt, ...)
{
	va_list ap;
	char line[1200];

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	pl_buf_printf(&a->note, "dagrun: pod %s: %s\n", a->pod, line);
}

static void append_log(struct att *a, const char *p, size_t n)
{
	int fd;

	if (!a->log_path || !n)
		return;
	fd = open(a->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		char dir[4096], failed[256];
		snprintf(dir, sizeof dir, "%s", a->log_path);
		char *sl = strrchr(dir, '/');
		if (sl && sl != dir) {
			*sl = '\0';
			if (pl_mkdir_p(dir, failed, sizeof failed) == 0)
				fd = open(a->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		}
	}
	if (fd < 0)
		return;	/* the attempt's outcome matters more than its log */
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		n -= (size_t)w;
	}
	close(fd);
}

static void del_done(void *ud, const struct pl_kube_resp *r)
{
	struct att *a = ud;
	struct k8sx *x = a->x;

	x->deleting--;
	x->st.deletes += !r->err;
	unref(a);
}

static void delete_pod(struct att *a, long grace)
{
	struct k8sx *x = a->x;
	struct pl_buf path = PL_BUF_INIT;
	char q[64];

	if (grace >= 0)
		snprintf(q, sizeof q, "gracePeriodSeconds=%ld", grace);
	pl_kube_path(x->k, &path, NULL, "pods", a->pod, NULL);
	a->refs++;
	x->deleting++;
	pl_kube_call(x->k, "DELETE", pl_buf_cstr(&path), grace >= 0 ? q : NULL, NULL, 0, del_done, a);
	pl_buf_free(&path);
}

/* Delete a's Pod, but not before its create is answered: a create retried
 * after a lost answer could make the Pod again once it is deleted. */
static void collect(struct att *a, long grace)
{
	if (a->create_inflight) {
		a->del_pending = 1;
		a->del_grace = grace;
	} else {
		delete_pod(a, grace);
	}
}

static void to_done(struct att *a)
{
	struct k8sx *x = a->x;

	a->state = A_DONE;
	a->next = NULL;
	if (x->done_tail)
		x->done_tail->next = a;
	else
		x->done = a;
	x->done_tail = a;
	x->st.ended++;
	trace(x, a->id, a->pod, "ended");
}

/* The log is in (or could not be had): write it, collect the Pod, report. */
static void settle(struct att *a, const struct pl_kube_resp *r)
{
	struct k8sx *x = a->x;
	int ok = a->d.code == 0 && !a->d.signaled;

	if (r && !r->err) {
		append_log(a, r->body, r->len);
		x->st.logs++;
	} else if (a->have_snap) {
		append_log(a, a->snap.p, a->snap.n);
	} else if (r) {
		x->st.log_errors++;
		notef(a, "no log: %s", r->err->message);
	} else if (a->vanished) {
		notef(a, "no log: it went with the Pod");
	}
	append_log(a, a->note.p, a->note.n);
	if (a->stuck_kill)
		collect(a, 0);
	else if (a->watch_lost)
		collect(a, -1);
	else if (!a->vanished && !a->killed &&
		 (x->o.gc == PL_POD_GC_ON_COMPLETION || (x->o.gc == PL_POD_GC_ON_SUCCESS && ok)))
		collect(a, -1);
	to_done(a);
}

static void log_done(void *ud, const struct pl_kube_resp *r)
{
	struct att *a = ud;

	if (unref(a) || a->state != A_ENDING)
		return;
	if (r->err && a->snap_pending)
		a->await_snap = 1;	/* its log went with it: the snapshot will do */
	else
		settle(a, r);
}

static void fetch_log(struct att *a, pl_kube_cb cb)
{
	struct pl_buf path = PL_BUF_INIT;

	pl_kube_path(a->x->k, &path, NULL, "pods", a->pod, "log");
	a->refs++;
	pl_kube_call(a->x->k, "GET", pl_buf_cstr(&path), NULL, NULL, 0, cb, a);
	pl_buf_free(&path);
}

/* The outcome is known (a->d): fetch the log, unless there is no Pod. */
static void ending(struct att *a, int have_pod)
{
	struct k8sx *x = a->x;

	if (a->stuck_since > 0) {
		a->stuck_since = 0;
		x->nstuck--;
	}
	json_decref(a->manifest);
	a->manifest = NULL;
	a->state = A_ENDING;
	if (have_pod)
		fetch_log(a, log_done);
	else if (a->snap_pending)
		a->await_snap = 1;
	else
		settle(a, NULL);
}

static void set_done(struct att *a, int code, int signaled, const char *reason)
{
	a->d.token = a->token;
	a->d.code = code;
	a->d.signaled = signaled;
	snprintf(a->d.reason, sizeof a->d.reason, "%s", reason ? reason : "");
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_t *container_status(json_t *status)
{
	json_t *a = json_object_get(status, "containerStatuses"), *c;
	size_t i;

	json_array_foreach(a, i, c) {
		const char *n = str(c, "name");
		if (n && !strcmp(n, CONTAINER))
			return c;
	}
	return json_array_get(a, 0);
}

/* Pod-level reasons for a Pod that was stopped from outside: running the
 * attempt again elsewhere may well succeed. */
static int lost_reason(const char *r)
{
	static const char *const lost[] = { "Evicted", "NodeLost", "Shutdown", "NodeShutdown",
		"Terminated", "Preempting", "UnexpectedAdmissionError", NULL };
	for (size_t i = 0; r && lost[i]; i++)
		if (!strcmp(r, lost[i]))
			return 1;
	return 0;
}

/* Why a Pod we did not delete was stopped: the DisruptionTarget condition
 * (Kubernetes 1.26 and later: eviction, preemption, taints, node shutdown),
 * else "Deleted" when it was being deleted; NULL when neither. */
static const char *disrupted(json_t *pod)
{
	json_t *conds = json_object_get(json_object_get(pod, "status"), "conditions"), *c;
	size_t i;

	json_array_foreach(conds, i, c) {
		const char *t = str(c, "type"), *s = str(c, "status"), *r = str(c, "reason");
		if (t && !strcmp(t, "DisruptionTarget") && s && !strcmp(s, "True"))
			return r && *r ? r : "DisruptionTarget";
	}
	if (str(json_object_get(pod, "metadata"), "deletionTimestamp"))
		return "Deleted";
	return NULL;
}

/* Waiting reasons that do not clear by themselves (or only by someone's
 * action): the pending timeout applies to them. */
static int stuck_reason(const char *r)
{
	static const char *const stuck[] = { "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull",
		"InvalidImageName", "CreateContainerConfigError", NULL };
	for (size_t i = 0; r && stuck[i]; i++)
		if (!strcmp(r, stuck[i]))
			return 1;
	return 0;
}

static void became_live(struct att *a);
static void snap_done(void *ud, const struct pl_kube_resp *r);
static void do_kill(struct att *a);

/* A state of a's Pod, from the watch or a GET; deleted: it is gone. */
static void pod_seen(struct att *a, json_t *pod, int deleted)
{
	struct k8sx *x = a->x;
	json_t *status = json_object_get(pod, "status"), *cs = container_status(status);
	json_t *term = json_object_get(json_object_get(cs, "state"), "terminated");
	json_t *wait = json_object_get(json_object_get(cs, "state"), "waiting");
	const char *phase = str(status, "phase"), *preason = str(status, "reason");

	if (a->state >= A_ENDING)
		return;
	if (!phase)
		phase = "";
	if (deleted)
		a->vanished = 1;
	else if (str(json_object_get(pod, "metadata"), "deletionTimestamp") && !a->snap_asked &&
		 a->state == A_LIVE) {
		/* someone else is deleting it (a drain, an eviction, the run's
		 * ConfigMap): keep its log, which goes with it */
		a->snap_asked = a->snap_pending = 1;
		fetch_log(a, snap_done);
	}
	if (a->state == A_CREATING && !deleted)
		became_live(a);
	if (*phase && strcmp(phase, a->phase)) {
		snprintf(a->phase, sizeof a->phase, "%s", phase);
		trace(x, a->id, a->pod, phase);
	}
	if (!strcmp(phase, "Succeeded")) {
		int code = term ? (int)json_integer_value(json_object_get(term, "exitCode")) : 0;
		set_done(a, code, 0, NULL);
	} else if (!strcmp(phase, "Failed")) {
		const char *treason = str(term, "reason"), *lost = lost_reason(preason) ? preason : NULL;
		int code = term ? (int)json_integer_value(json_object_get(term, "exitCode")) : 0;
		if (!lost && !a->sig)
			lost = disrupted(pod);	/* deleted, evicted or preempted by someone else */
		if (!lost && !a->sig && !term)
			lost = preason ? preason : "Failed";
		if (preason && !strcmp(preason, "DeadlineExceeded")) {
			set_done(a, EXIT_DEADLINE, 0, "DeadlineExceeded");
			notef(a, "DeadlineExceeded: %s", str(status, "message") ? str(status, "message") :
			      "active longer than activeDeadlineSeconds");
		} else if (lost) {
			set_done(a, PL_EX_SIGNAL + SIGKILL, 1, lost);
			if (!strcmp(lost, "Deleted"))
				notef(a, "deleted before it ended (by someone else, or with the run's "
				      "ConfigMap)");
			else
				notef(a, "%s%s%s", lost, str(status, "message") ? ": " : "",
				      str(status, "message") ? str(status, "message") : "");
		} else if (!term) {
			set_done(a, PL_EX_SIGNAL + a->sig, 1, NULL);
		} else if (treason && !strcmp(treason, "OOMKilled")) {
			set_done(a, PL_EX_SIGNAL + SIGKILL, 0, "OOMKilled");
			notef(a, "OOMKilled: the container went over its memory limit");
		} else {
			if (code == 0)
				code = 1;	/* Failed, whatever the container said */
			/* killed by our signal (the runtime says 128+n): as the local
			 * executor reports a process group it signalled */
			set_done(a, code, a->sig && code > PL_EX_SIGNAL,
				 treason && strcmp(treason, "Error") && strcmp(treason, "Completed") ?
				 treason : NULL);
			if (str(term, "message"))
				notef(a, "%s: %s", treason ? treason : "terminated", str(term, "message"));
		}
	} else if (preason && !strcmp(preason, "NodeLost")) {
		set_done(a, PL_EX_SIGNAL + SIGKILL, 1, "NodeLost");
		notef(a, "NodeLost: its node stopped answering");
	} else if (deleted) {
		if (a->sig) {
			set_done(a, PL_EX_SIGNAL + a->sig, 1, NULL);
		} else {
			set_done(a, PL_EX_SIGNAL + SIGKILL, 1, "Deleted");
			notef(a, "deleted before it ended (by someone else, or with the run's ConfigMap)");
		}
	} else {
		/* Pending or Running: is it waiting on something that will not clear? */
		const char *wr = str(wait, "reason");
		if (stuck_reason(wr) && x->o.pending_timeout >= 0) {
			if (a->stuck_since == 0) {
				a->stuck_since = mono();
				x->nstuck++;
				trace(x, a->id, a->pod, "stuck");
			}
			snprintf(a->stuck_reason, sizeof a->stuck_reason, "%s", wr);
			free(a->stuck_msg);
			a->stuck_msg = str(wait, "message") ? pl_xstrdup(str(wait, "message")) : NULL;
		} else if (a->stuck_since > 0) {
			a->stuck_since = 0;
			x->nstuck--;
		}
		return;
	}
	if (deleted)
		trace(x, a->id, a->pod, "Deleted");
	ending(a, !deleted);
}

static void snap_done(void *ud, const struct pl_kube_resp *r)
{
	struct att *a = ud;

	a->snap_pending = 0;
	if (unref(a))
		return;
	if (!r->err) {
		a->snap.n = 0;
		pl_buf_add(&a->snap, r->body, r->len);
		a->have_snap = 1;
	}
	if (a->kill_after_snap && a->state < A_ENDING)
		do_kill(a);
	if (a->await_snap && a->state == A_ENDING) {
		a->await_snap = 0;
		settle(a, NULL);
	}
}

static void do_kill(struct att *a)
{
	long grace = a->sig == SIGKILL ? 0 : a->x->o.grace_s > 0 ? a->x->o.grace_s : -1;

	a->kill_after_snap = 0;
	a->killed = 1;
	delete_pod(a, grace);	/* at once, and again should a create still in flight remake it */
	if (a->create_inflight) {
		a->del_pending = 1;
		a->del_grace = grace;
	}
}

/* Delete the Pod for a signal. Its log goes with it (a Pod is removed as
 * soon as its containers are stopped), so a snapshot of it is taken first:
 * before the delete for SIGTERM, alongside it for SIGKILL, which waits for
 * nothing. */
static void kill_pod(struct att *a)
{
	if (!a->snap_asked) {
		a->snap_asked = a->snap_pending = 1;
		fetch_log(a, snap_done);
		if (a->sig == SIGTERM) {
			a->kill_after_snap = 1;
			return;
		}
	}
	do_kill(a);
}

static void became_live(struct att *a)
{
	a->state = A_LIVE;
	a->live_probe = a->x->probe_seq;
	json_decref(a->manifest);
	a->manifest = NULL;
	if (a->sig)
		kill_pod(a);
}

static void create(struct att *a);

static void got_pod(void *ud, const struct pl_kube_resp *r)
{
	struct att *a = ud;

	if (unref(a) || a->state != A_CREATING)
		return;
	if (!r->err) {
		if (!a->counted_adopted) {
			a->counted_adopted = 1;
			a->x->st.adopted++;
			trace(a->x, a->id, a->pod, "adopted");
		}
		pod_seen(a, r->obj, 0);
	} else if (r->status == 404 && a->creates < MAX_CREATES) {
		create(a);	/* the 409 was for a Pod deleted since: none exists now */
	} else if (r->status == 404) {
		set_done(a, PL_EX_TEMPFAIL, 0, "AlreadyExists");
		notef(a, "its create keeps answering 409 AlreadyExists, yet no such Pod is found");
		ending(a, 0);
	} else {
		/* it exists (409) but cannot be read now: the watch will report it */
		became_live(a);
	}
}

static void created(void *ud, const struct pl_kube_resp *r)
{
	struct att *a = ud;
	struct k8sx *x = a->x;
	long id = a->id;

	a->create_inflight = 0;
	if (!r->err) {
		x->st.creates++;
		trace(x, id, a->pod, "created");
	} else if (r->status == 409) {
		/* a resume, or a create whose answer was lost and was sent again:
		 * the Pod exists, and it is this attempt's */
		x->st.conflicts++;
		if (!a->counted_adopted && a->state != A_CREATING) {
			a->counted_adopted = 1;
			x->st.adopted++;
			trace(x, id, a->pod, "adopted");
		}
	}
	if (a->del_pending && (!r->err || r->status == 409)) {
		a->del_pending = 0;
		delete_pod(a, a->del_grace);
	}
	if (unref(a) || a->state != A_CREATING)
		return;	/* the watch saw the Pod first, or it ended already */
	if (!r->err) {
		became_live(a);
	} else if (r->status == 409) {
		struct pl_buf path = PL_BUF_INIT;
		pl_kube_path(x->k, &path, NULL, "pods", a->pod, NULL);
		a->refs++;
		pl_kube_call(x->k, "GET", pl_buf_cstr(&path), NULL, NULL, 0, got_pod, a);
		pl_buf_free(&path);
	} else {
		set_done(a, pl_kube_exit_status(r->err), 0, r->err->reason);
		notef(a, "cannot create it: %s%s%ld%s", r->err->message, r->status ? " (HTTP " : "",
		      r->status, r->status ? ")" : "");
		ending(a, 0);
	}
}

static void create(struct att *a)
{
	a->creates++;
	a->create_inflight = 1;
	a->refs++;
	trace(a->x, a->id, a->pod, "create");
	pl_kube_pod_create_async(a->x->k, NULL, a->manifest, created, a);
}

/* --- the watch -------------------------------------------------------------------- */

/* lib/kube retries a failing watch for ever, so an attempt whose end can no
 * longer be seen would hang the run: the executor gives the watch up, in
 * one of two ways. A permanent answer (403: the Role lost its rights; 404;
 * 401 with credentials just read again) is given up at its
 * PL_EXEC_K8S_WATCH_TRIES-th. Any other failure is given up at a failure once
 * failures have gone on for o.watch_fail_timeout with no sign of life
 * between them. A sign of life is an event (a bookmark and a complete list
 * too: API servers send a bookmark about every minute), or a watch request
 * that ended with no failure reported (the server's timeoutSeconds). The
 * clock is read at failures, never on a timer: a connected, quiet watch is
 * not failing, however long it stays so. A connection error is the one
 * failure a healthy watch also has (a proxy dropping quiet connections), so
 * at the bound it is not given up at once: a LIST of the run's Pods of our
 * own asks the API first, and gives up only if that fails too. */

static void on_event(void *ud, const struct pl_kube_event *ev);

static void watch_reset(struct k8sx *x)
{
	x->wfail_perm = 0;
	x->wfail_n = 0;
	x->wfail_since = 0;
}

static void watch_start(struct k8sx *x)
{
	x->w = pl_kube_watch_new(x->k, NULL, "pods", x->sel, on_event, x);
	x->wgen++;
	x->wfail_reqs = 0;
	watch_reset(x);
}

/* A 4xx other than 408 Request Timeout, 410 Gone (lib/kube re-lists) and 429
 * Too Many Requests: asking again will not change the answer. */
static int permanent(long status)
{
	return status >= 400 && status <= 499 && status != 408 && status != 410 && status != 429;
}

/* An attempt whose end was awaited from a watch given up: it fails with the
 * watch's answer, and its Pod, which nothing watches now, is deleted so that
 * a retry never runs beside it. */
static void watch_lost(struct att *a, int code, const char *reason, const char *why)
{
	int have_pod = a->state == A_LIVE && !a->killed;

	if (a->sig)
		set_done(a, PL_EX_SIGNAL + a->sig, 1, reason);
	else
		set_done(a, code, 0, reason);
	a->watch_lost = !a->killed;	/* a killed one is being deleted already */
	notef(a, "%s; how the Pod ends cannot be seen, so it is %s", why,
	      a->killed ? "left to the delete already sent" : "deleted");
	ending(a, have_pod);	/* its log so far, when the API still gives it */
}

/* End every attempt that waits on the watch, and free it; the next start
 * watches anew. */
static void give_up(struct k8sx *x, int perm)
{
	const struct pl_kube_err *e = &x->wfail_err;
	char answer[128], reason[64], why[1400];
	struct pl_kube_watch_stats ws;
	int code = e->status == 401 || e->status == 403 ? PL_EX_USAGE : PL_EX_UNAVAILABLE;

	if (e->status)
		snprintf(answer, sizeof answer, "%ld %s", e->status, e->reason[0] ? e->reason : "error");
	else
		snprintf(answer, sizeof answer, "%s", e->reason[0] ? e->reason : "error");
	snprintf(reason, sizeof reason, "WatchFailed: %.50s", answer);
	/* the scheduler writes the reason into its journal's JSON as it is */
	for (char *p = reason; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :._/-", *p))
			*p = '_';
	if (perm)
		snprintf(why, sizeof why, "the watch of pods failed for good: %s: %s (%d such answers "
			 "in %.1f s)", answer, e->message, x->wfail_perm, mono() - x->wfail_since);
	else
		snprintf(why, sizeof why, "the watch of pods failed for good: %s: %s (failing for "
			 "%.0f s, %lu failures)", answer, e->message, mono() - x->wfail_since,
			 x->wfail_n);
	pl_kube_watch_stats(x->w, &ws);
	x->wst.lists += ws.lists;
	x->wst.connects += ws.connects;
	x->wst.gone += ws.gone;
	x->wst.events += ws.events;
	pl_kube_watch_free(x->w);	/* from its own callback too: lib/kube allows it */
	x->w = NULL;
	watch_reset(x);
	x->st.watch_giveups++;
	trace(x, 0, NULL, "watch-failed");
	for (size_t i = 0; i < x->natts; i++) {
		struct att *a = x->atts[i];
		if (a && (a->state == A_CREATING || a->state == A_LIVE))
			watch_lost(a, code, reason, why);
	}
}

/* The answer to our own LIST: a sign of life, which also tells how the
 * attempts' Pods are now (their changes may have been missed), or the
 * failure that gives the watch up, unless the watch showed life since. */
static void probe_done(void *ud, const struct pl_kube_resp *r)
{
	struct k8sx *x = ud;
	json_t *items, *pod, *listed;
	size_t i;

	x->probing = 0;
	if (!x->w || x->probe_gen != x->wgen)
		return;		/* the watch it asked about was given up */
	if (r->err) {
		if (!x->wfail_since || x->wfail_since > x->probe_at)
			return;
		x->wfail_n++;
		x->wfail_err = *r->err;
		give_up(x, 0);
		return;
	}
	watch_reset(x);
	items = json_object_get(r->obj, "items");
	listed = json_object();
	json_array_foreach(items, i, pod) {
		const char *name = str(json_object_get(pod, "metadata"), "name");
		struct att *a = by_name(x, name);
		if (!name)
			continue;
		json_object_set_new(listed, name, json_true());
		if (a)
			pod_seen(a, pod, 0);
	}
	/* a Pod that existed when the LIST was sent and is not listed is gone */
	for (i = 0; i < x->natts; i++) {
		struct att *a = x->atts[i];
		if (a && a->state == A_LIVE && a->live_probe < x->probe_seq &&
		    !json_object_get(listed, a->pod))
			pod_seen(a, NULL, 1);
	}
	json_decref(listed);
}

static void probe(struct k8sx *x)
{
	struct pl_buf path = PL_BUF_INIT, q = PL_BUF_INIT;
	char *e = curl_easy_escape(NULL, x->sel, 0);

	x->probing = 1;
	x->probe_gen = x->wgen;
	x->probe_at = mono();
	x->probe_seq++;
	x->st.watch_probes++;
	pl_kube_path(x->k, &path, NULL, "pods", NULL, NULL);
	pl_buf_printf(&q, "labelSelector=%s", e ? e : "");
	curl_free(e);
	pl_kube_call(x->k, "GET", pl_buf_cstr(&path), pl_buf_cstr(&q), NULL, 0, probe_done, x);
	pl_buf_free(&path);
	pl_buf_free(&q);
}

static void watch_failed(struct k8sx *x, const struct pl_kube_err *e)
{
	double now = mono();
	struct pl_kube_watch_stats ws;
	unsigned long reqs;

	/* each failure of a request is followed by one more request; two or
	 * more since the last failure: one of them ended well */
	pl_kube_watch_stats(x->w, &ws);
	reqs = ws.connects + ws.lists;
	if (x->wfail_since && reqs >= x->wfail_reqs + 2)
		watch_reset(x);
	x->wfail_reqs = reqs;
	if (!x->wfail_since)
		x->wfail_since = now;
	x->wfail_n++;
	if (e) {
		x->wfail_err = *e;
	} else {
		memset(&x->wfail_err, 0, sizeof x->wfail_err);
		snprintf(x->wfail_err.reason, sizeof x->wfail_err.reason, "BadResponse");
	}
	if (permanent(x->wfail_err.status))
		x->wfail_perm++;
	if (x->wfail_perm >= PL_EXEC_K8S_WATCH_TRIES)
		give_up(x, 1);
	else if (x->o.watch_fail_timeout > 0 && now - x->wfail_since >= x->o.watch_fail_timeout &&
		 !x->probing) {
		if (x->wfail_err.status == 0 && strcmp(x->wfail_err.reason, "BadResponse"))
			probe(x);
		else
			give_up(x, 0);
	}
}

static void on_event(void *ud, const struct pl_kube_event *ev)
{
	struct k8sx *x = ud;
	struct att *a;

	switch (ev->type) {
	case PL_KUBE_ADDED:
	case PL_KUBE_MODIFIED:
	case PL_KUBE_DELETED:
	case PL_KUBE_BOOKMARK:
	case PL_KUBE_SYNCED:
		watch_reset(x);	/* the watch works: its failures so far are forgiven */
		if (ev->type != PL_KUBE_BOOKMARK && ev->type != PL_KUBE_SYNCED &&
		    (a = by_name(x, ev->name)))
			pod_seen(a, ev->obj, ev->type == PL_KUBE_DELETED);
		break;
	case PL_KUBE_WATCH_ERROR:
		x->st.watch_errors++;
		trace(x, 0, NULL, "watch-error");
		watch_failed(x, ev->err);
		break;
	default:
		break;
	}
}

/* --- the seam ----------------------------------------------------------------------- */

static int k8s_start(struct pl_executor *xp, const struct pl_xspec *s, long *id, char *err,
		     size_t n)
{
	struct k8sx *x = (struct k8sx *)xp;
	struct att *a;
	json_t *pod, *known;
	int data;

	if (s->in_fd >= 0)
		close(s->in_fd);	/* input comes from the store */
	if (!(pod = build(&x->o, s, x->owner_uid, err, n, &data)) && !data)
		return -1;	/* the configuration: no attempt can run */
	a = pl_xmalloc(sizeof *a);
	memset(a, 0, sizeof *a);
	a->x = x;
	a->token = s->token;
	a->manifest = pod;
	pl_exec_k8s_pod_name(s->run_id ? s->run_id : x->o.run_id, task_name(s), s->child, s->attempt,
			     a->pod);
	if (by_name(x, a->pod)) {
		snprintf(err, n, "'%s': attempt %d is running already (pod %s)", s->name, s->attempt,
			 a->pod);
		json_decref(pod);
		free(a);
		return -1;
	}
	if (s->log_path) {
		a->log_path = pl_xstrdup(s->log_path);
	} else if (x->o.run_dir) {
		struct pl_buf b = PL_BUF_INIT;
		pl_buf_printf(&b, "%s/tasks/%s.log", x->o.run_dir, s->name);
		a->log_path = pl_xstrdup(pl_buf_cstr(&b));
		pl_buf_free(&b);
	}
	x->atts = pl_xrealloc(x->atts, (x->natts + 1) * sizeof *x->atts);
	x->atts[x->natts++] = a;
	a->id = (long)x->natts;
	json_object_set_new(x->byname, a->pod, json_integer(a->id));
	*id = a->id;
	if (!pod) {
		/* this attempt's data cannot be sent: it fails, the run goes on */
		set_done(a, PL_EX_DATAERR, 0, "NotUTF8");
		notef(a, "%s", err);
		ending(a, 0);
		return 0;
	}
	if (!x->w) {
		/* the last watch was given up: this attempt gets a new one (a
		 * retry, on_exit), and fails the same way if the API still fails */
		watch_start(x);
		trace(x, 0, NULL, "watch-started");
	}
	/* a resume: the watch knows the Pod already, so adopt it, create nothing */
	if ((known = json_object_get(pl_kube_watch_objects(x->w), a->pod))) {
		x->st.adopted++;
		a->counted_adopted = 1;
		trace(x, a->id, a->pod, "adopted");
		json_incref(known);
		pod_seen(a, known, 0);
		json_decref(known);
		return 0;
	}
	create(a);
	return 0;
}

static void k8s_signal(struct pl_executor *xp, long id, int sig)
{
	struct att *a = by_id((struct k8sx *)xp, id);

	if (!a || a->state >= A_ENDING)
		return;
	if (a->sig == SIGKILL || a->sig == sig)
		return;	/* already asked, or asked for more */
	a->sig = sig == SIGKILL ? SIGKILL : SIGTERM;
	if (a->state == A_LIVE)
		kill_pod(a);	/* else became_live does, once the create is answered */
}

static int k8s_fds(struct pl_executor *xp, struct pollfd *p, int max, int *timeout_ms)
{
	struct k8sx *x = (struct k8sx *)xp;
	fd_set r, w, e;
	int maxfd = -1, n = 0, full = 0;
	long t;

	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_ZERO(&e);
	pl_kube_fdset(x->k, &r, &w, &e, &maxfd);
	for (int fd = 0; fd <= maxfd; fd++) {
		short ev = (short)((FD_ISSET(fd, &r) ? POLLIN : 0) | (FD_ISSET(fd, &w) ? POLLOUT : 0) |
				   (FD_ISSET(fd, &e) ? POLLPRI : 0));
		if (!ev)
			continue;
		if (n == max) {
			full = 1;
			break;
		}
		p[n].fd = fd;
		p[n].events = ev;
		p[n].revents = 0;
		n++;
	}
	t = pl_kube_timeout(x->k);
	if (x->done)
		t = 0;
	else if (full && (t < 0 || t > 10))
		t = 10;		/* descriptors left out: look again soon */
	else if (maxfd < 0 && pl_kube_pending(x->k) && (t < 0 || t > 100))
		t = 100;	/* requests but no descriptor yet: curl_multi_fdset(3) says 100 ms */
	if (x->nstuck) {
		double now = mono(), first = -1;
		const char *key;
		json_t *v;
		json_object_foreach(x->byname, key, v) {
			struct att *a = by_id(x, (long)json_integer_value(v));
			if (a && a->stuck_since > 0 && (first < 0 || a->stuck_since < first))
				first = a->stuck_since;
		}
		if (first >= 0) {
			double left = first + x->o.pending_timeout - now;
			long ms = left <= 0 ? 0 : (long)ceil(left * 1000);
			if (t < 0 || ms < t)
				t = ms;
		}
	}
	if (t >= 0 && (*timeout_ms < 0 || t < *timeout_ms))
		*timeout_ms = t > 0x7fffffff ? 0x7fffffff : (int)t;
	return n;
}

static void pending_timeouts(struct k8sx *x)
{
	double now = mono();
	const char *key;
	json_t *v;

	json_object_foreach(x->byname, key, v) {
		struct att *a = by_id(x, (long)json_integer_value(v));
		if (!x->nstuck)
			break;
		if (!a || a->stuck_since <= 0 || a->state >= A_ENDING ||
		    now - a->stuck_since < x->o.pending_timeout)
			continue;
		set_done(a, EXIT_NOT_STARTED, 0, a->stuck_reason);
		notef(a, "%s for %.0f s, given up%s%s", a->stuck_reason, now - a->stuck_since,
		      a->stuck_msg ? ": " : "", a->stuck_msg ? a->stuck_msg : "");
		a->stuck_kill = 1;
		trace(x, a->id, a->pod, a->stuck_reason);
		ending(a, 1);
	}
}

static int k8s_reap(struct pl_executor *xp, struct pl_xdone *d, int max)
{
	struct k8sx *x = (struct k8sx *)xp;
	int k = 0;

	pl_kube_step(x->k, NULL, 0, 0);
	if (x->nstuck)
		pending_timeouts(x);
	while (k < max && x->done) {
		struct att *a = x->done;
		x->done = a->next;
		if (!x->done)
			x->done_tail = NULL;
		d[k++] = a->d;
		json_object_del(x->byname, a->pod);
		a->state = A_REAPED;
		if (a->refs == 0)
			att_free(a);
	}
	return k;
}

static void k8s_free(struct pl_executor *xp)
{
	struct k8sx *x = (struct k8sx *)xp;

	if (x->w)
		pl_kube_watch_free(x->w);
	/* deletes already decided on (collection, signals) go out; nothing new
	 * is started, and running Pods are left alone */
	double until = mono() + DRAIN_MS / 1000.0;
	while (x->k && x->deleting && mono() < until)
		pl_kube_step(x->k, NULL, 0, 100);
	pl_kube_free(x->k);
	for (size_t i = 0; i < x->natts; i++)
		if (x->atts[i])
			att_free(x->atts[i]);
	free(x->atts);
	json_decref(x->byname);
	free(x->owner_uid);
	for (size_t i = 0; i < x->nstrs; i++)
		free(x->strs[i]);
	free(x->strs);
	free(x);
}

void pl_exec_k8s_stats(struct pl_executor *xp, struct pl_exec_k8s_stats *s)
{
	struct k8sx *x = (struct k8sx *)xp;

	*s = x->st;
	s->watch = x->wst;
	if (x->w) {
		struct pl_kube_watch_stats ws;
		pl_kube_watch_stats(x->w, &ws);
		s->watch.lists += ws.lists;
		s->watch.connects += ws.connects;
		s->watch.gone += ws.gone;
		s->watch.events += ws.events;
	}
}

struct pl_kube *pl_exec_k8s_kube(struct pl_executor *xp)
{
	return ((struct k8sx *)xp)->k;
}

/* The run's ConfigMap, which owns its Pods: created, or found on a resume. */
static int owner(struct k8sx *x, char *err, size_t n)
{
	struct pl_kube_err ke;
	json_t *cm, *out = NULL;
	int rc;

	cm = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind",
		       "ConfigMap", "metadata", "name", x->cm_name, "labels", LABEL_RUN,
		       x->run_label, "data", "run-id", x->o.run_id);
	rc = pl_kube_configmap_create(x->k, NULL, cm, &out, &ke);
	json_decref(cm);
	if (rc && ke.status == 409)
		rc = pl_kube_configmap_get(x->k, NULL, x->cm_name, &out, &ke);
	if (rc) {
		snprintf(err, n, "configmap '%s' in namespace '%s' at %s: %s", x->cm_name,
			 pl_kube_namespace(x->k), pl_kube_server(x->k), ke.message);
		return -1;
	}
	const char *uid = str(json_object_get(out, "metadata"), "uid");
	if (!uid || !*uid) {
		snprintf(err, n, "configmap '%s': the server gave it no uid", x->cm_name);
		json_decref(out);
		return -1;
	}
	x->owner_uid = pl_xstrdup(uid);
	json_decref(out);
	return 0;
}

struct pl_executor *pl_exec_k8s_new(const struct pl_exec_k8s_opts *o, char *err, size_t n)
{
	struct pl_kube_config *c = NULL;
	struct pl_kube_err ke;
	struct pl_kube_opts ko;
	struct k8sx *x;
	int rc;

	if (!o->run_id || !*o->run_id) {
		snprintf(err, n, "the k8s executor needs a run id");
		return NULL;
	}
	if (o->in_cluster)
		rc = pl_kube_config_in_cluster(o->load.sa_dir, o->load.namespace, &c, &ke);
	else
		rc = pl_kube_config_load(&o->load, &c, &ke);
	if (rc) {
		snprintf(err, n, "kubernetes configuration: %s", ke.message);
		return NULL;
	}
	if (o->kube)
		ko = *o->kube;
	else
		pl_kube_opts_default(&ko);
	if (o->qps)
		ko.qps = o->qps < 0 ? 0 : o->qps;
	if (o->burst > 0)
		ko.burst = o->burst;

	x = pl_xmalloc(sizeof *x);
	memset(x, 0, sizeof *x);
	x->o = *o;
	memset(&x->o.load, 0, sizeof x->o.load);
	x->o.kube = NULL;
	x->o.run_id = keep(x, o->run_id);
	x->o.image = keep(x, o->image);
	x->o.store = keep(x, o->store);
	x->o.dagrun = keep(x, o->dagrun);
	x->o.run_dir = keep(x, o->run_dir);
	x->o.pull_secrets = keepv(x, o->pull_secrets);
	x->o.step_argv = keepv(x, o->step_argv);
	if (x->o.pending_timeout == 0)
		x->o.pending_timeout = 300;
	if (x->o.watch_fail_timeout == 0)
		x->o.watch_fail_timeout = 300;
	x->byname = json_object();
	x->k = pl_kube_new(c, &ko, &ke);
	pl_kube_config_free(c);
	if (!x->k) {
		snprintf(err, n, "kubernetes client: %s", ke.message);
		goto bad;
	}
	cm_name(o->run_id, x->cm_name);
	pl_exec_k8s_label(o->run_id, x->run_label);
	if (owner(x, err, n) < 0)
		goto bad;
	snprintf(x->sel, sizeof x->sel, LABEL_RUN "=%s", x->run_label);
	watch_start(x);
	x->x.name = "k8s";
	x->x.start = k8s_start;
	x->x.signal = k8s_signal;
	x->x.fds = k8s_fds;
	x->x.reap = k8s_reap;
	x->x.free = k8s_free;
	x->x.end_orphans = 0;
	return &x->x;
bad:
	k8s_free(&x->x);
	return NULL;
}
