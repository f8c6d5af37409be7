/* Unit tests for lib/exec_k8s.c, dagrun's Kubernetes executor. With no
 * arguments: Pod names, labels and manifests, offline.
 *
 * "exec_k8s live SCENARIO URL TLSDIR" drives the executor against
 * t/k8s-server.py (t/1120-exec-k8s.bats starts it with --tls-dir TLSDIR and
 * the bearer token "secret") the way the scheduler does: start, poll its
 * descriptors with its timeout, reap. Attempts run "/bin/sh -c CMD" without
 * the shim (step_argv is empty).
 *
 * "exec_k8s bench URL TLSDIR MODE N INFLIGHT QPS BURST" is t/bench/k8s.sh's
 * driver: keeps INFLIGHT attempts running and starts the next one as soon as
 * one ends, and prints what it measured. */
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exec_k8s.h"
#include "exitcode.h"
#include "unit.h"

static char tmp[256];

static const char *path_of(const char *name)
{
	static char p[8][512];
	static int i;
	i = (i + 1) % 8;
	snprintf(p[i], sizeof p[i], "%s/%s", tmp, name);
	return p[i];
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	struct pl_buf b = PL_BUF_INIT;
	char tmpb[4096];
	size_t n;
	if (!f)
		return pl_xstrdup("");
	while ((n = fread(tmpb, 1, sizeof tmpb, f)) > 0)
		pl_buf_add(&b, tmpb, n);
	fclose(f);
	pl_buf_cstr(&b);
	return b.p ? b.p : pl_xstrdup("");
}

static struct pl_task task(const char *name)
{
	struct pl_task t;
	memset(&t, 0, sizeof t);
	t.name = (char *)name;
	t.k8s.gpu = -1;
	t.cache = -1;
	return t;
}

static int dns1123(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* --- offline ----------------------------------------------------------------------- */

static void names(void)
{
	char a[64], b[64], c[64];

	pl_exec_k8s_pod_name("20260102T150405-42", "embed", 3, 1, a);
	pl_exec_k8s_pod_name("20260102T150405-42", "embed", 3, 1, b);
	CHECK(!strcmp(a, b) && dns1123(a), "names: deterministic and DNS-1123: %s", a);
	CHECK(!strncmp(a, "20260102t150405-42-embed-3-1-", 29), "names: readable prefix: %s", a);
	pl_exec_k8s_pod_name("20260102T150405-42", "embed", 3, 2, b);
	pl_exec_k8s_pod_name("20260102T150405-42", "embed", -1, 3, c);
	CHECK(strcmp(a, b) && strcmp(a, c) && strcmp(b, c), "names: attempt and child make distinct names");
	/* run "a-b" task "c" and run "a" task "b-c" would clean to the same words */
	pl_exec_k8s_pod_name("a-b", "c", -1, 1, a);
	pl_exec_k8s_pod_name("a", "b-c", -1, 1, b);
	CHECK(strcmp(a, b) && dns1123(a) && dns1123(b), "names: no two attempts share a name by "
	      "cleaning (%s, %s)", a, b);
	pl_exec_k8s_pod_name("x", "t", 1, 2, a);
	pl_exec_k8s_pod_name("x", "t-1", -1, 2, b);
	CHECK(strcmp(a, b), "names: a child is not a task with a number in its name");
	char longtask[200];
	memset(longtask, 'q', sizeof longtask - 1);
	longtask[sizeof longtask - 1] = '\0';
	pl_exec_k8s_pod_name("run", longtask, 123456, 99, a);
	CHECK(strlen(a) <= 63 && dns1123(a), "names: a long one is cut to 63 with a hash: %s", a);

	pl_exec_k8s_label("20260102T150405-42", a);
	CHECK_STR(a, "20260102T150405-42", "labels: a valid label value is kept");
	pl_exec_k8s_label("_task-", a);
	CHECK(dns1123(a) && strcmp(a, "_task-"), "labels: an invalid one is made valid: %s", a);
	pl_exec_k8s_label(longtask, a);
	CHECK(strlen(a) <= 63, "labels: at most 63 characters");

	enum pl_pod_gc gc = PL_POD_GC_NEVER;
	CHECK(pl_pod_gc_parse("on-success", &gc) == 0 && gc == PL_POD_GC_ON_SUCCESS &&
	      pl_pod_gc_parse("on-completion", &gc) == 0 && gc == PL_POD_GC_ON_COMPLETION &&
	      pl_pod_gc_parse("never", &gc) == 0 && gc == PL_POD_GC_NEVER &&
	      pl_pod_gc_parse("sometimes", &gc) == -1 && pl_pod_gc_parse(NULL, &gc) == -1,
	      "gc: on-success, on-completion, never; nothing else");
}

static const char *jstr(json_t *o, const char *path)
{
	/* a dotted path with [i] for arrays: "spec.containers[0].image" */
	char buf[256], *save = NULL;
	snprintf(buf, sizeof buf, "%s", path);
	for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save)) {
		char *br = strchr(t, '[');
		if (br) {
			*br = '\0';
			o = json_array_get(json_object_get(o, t), (size_t)atoi(br + 1));
		} else {
			o = json_object_get(o, t);
		}
	}
	static char out[4][512];
	static int i;
	i = (i + 1) % 4;
	if (json_is_string(o))
		snprintf(out[i], sizeof out[i], "%s", json_string_value(o));
	else if (o) {
		char *d = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		snprintf(out[i], sizeof out[i], "%s", d ? d : "");
		free(d);
	} else
		return NULL;
	return out[i];
}

static void manifests(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_task t = task("embed");
	char err[512];
	const char *env[] = { "PLUMB_RUN_ID=r1", "GREETING=a=b c", NULL };
	const char *ins[] = { "discover.out", "split/0.out", NULL };
	const char *pulls[] = { "regcred", NULL };
	struct pl_kv ns[] = { { "disktype", "ssd", { 0 } } };
	struct pl_kv sec[] = { { "API_KEY", "openai/key", { 0 } } };
	struct pl_toleration tol[] = { { "gpu", "Exists", NULL, "NoSchedule" },
				       { "team", "Equal", "ml", NULL } };
	struct pl_xspec s = { .task = &t, .name = "embed/3", .child = 3, .attempt = 2,
			      .cmd = "chunk | embed", .env = env, .in_fd = -1, .in_keys = ins,
			      .out_key = "embed/3.out", .log_key = "embed/3.log", .run_id = "r1",
			      .timeout = 2.5 };

	pl_exec_k8s_opts_default(&o);
	o.run_id = "r1";
	o.image = "plumb:latest";
	o.store = "redis://redis:6379/0";
	o.store_ttl = 86400;
	o.pull_secrets = pulls;
	t.k8s.cpu = "500m";
	t.k8s.memory = "256Mi";
	t.k8s.gpu = 1;
	t.k8s.node_selector.v = ns;
	t.k8s.node_selector.n = 1;
	t.k8s.secrets.v = sec;
	t.k8s.secrets.n = 1;
	t.k8s.tol = tol;
	t.k8s.ntol = 2;
	json_t *p = pl_exec_k8s_manifest(&o, &s, "uid-1", err, sizeof err);
	CHECK(p != NULL, "manifest: built (%s)", p ? "ok" : err);
	if (!p)
		return;
	char want[64];
	pl_exec_k8s_pod_name("r1", "embed", 3, 2, want);
	CHECK_STR(jstr(p, "metadata.name"), want, "manifest: the attempt's name");
	CHECK_STR(jstr(p, "metadata.labels"),
		  "{\"plumb.dev/attempt\":\"2\",\"plumb.dev/child\":\"3\",\"plumb.dev/run\":\"r1\","
		  "\"plumb.dev/task\":\"embed\"}", "manifest: labels run, task, child, attempt");
	CHECK_STR(jstr(p, "metadata.ownerReferences"),
		  "[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"plumb-run-r1\","
		  "\"uid\":\"uid-1\"}]", "manifest: owned by the run's ConfigMap");
	CHECK_STR(jstr(p, "spec.restartPolicy"), "Never", "manifest: restartPolicy Never");
	CHECK_STR(jstr(p, "spec.containers[0].image"), "plumb:latest", "manifest: --image by default");
	CHECK_STR(jstr(p, "spec.containers[0].command"),
		  "[\"dagrun\",\"step\",\"--store\",\"redis://redis:6379/0\",\"--run\",\"r1\","
		  "\"--out\",\"embed/3.out\",\"--log\",\"embed/3.log\",\"--attempt\",\"2\",\"--in\",\"discover.out\","
		  "\"--in\",\"split/0.out\",\"--ttl\",\"86400\",\"--\",\"/bin/sh\",\"-c\","
		  "\"chunk | embed\"]", "manifest: the shim's command line, exactly");
	CHECK_STR(jstr(p, "spec.containers[0].env"),
		  "[{\"name\":\"PLUMB_RUN_ID\",\"value\":\"r1\"},{\"name\":\"GREETING\","
		  "\"value\":\"a=b c\"},{\"name\":\"API_KEY\",\"valueFrom\":{\"secretKeyRef\":"
		  "{\"key\":\"key\",\"name\":\"openai\"}}}]", "manifest: env, and env from Secrets");
	CHECK_STR(jstr(p, "spec.containers[0].resources"),
		  "{\"limits\":{\"cpu\":\"500m\",\"memory\":\"256Mi\",\"nvidia.com/gpu\":\"1\"},"
		  "\"requests\":{\"cpu\":\"500m\",\"memory\":\"256Mi\"}}",
		  "manifest: requests = limits, GPUs as nvidia.com/gpu limits");
	CHECK_STR(jstr(p, "spec.nodeSelector"), "{\"disktype\":\"ssd\"}", "manifest: nodeSelector");
	CHECK_STR(jstr(p, "spec.tolerations"),
		  "[{\"effect\":\"NoSchedule\",\"key\":\"gpu\",\"operator\":\"Exists\"},"
		  "{\"key\":\"team\",\"operator\":\"Equal\",\"value\":\"ml\"}]", "manifest: tolerations");
	CHECK_STR(jstr(p, "spec.automountServiceAccountToken"), "false",
		  "manifest: no service-account token unless asked");
	CHECK(!jstr(p, "spec.serviceAccountName"), "manifest: and no service account");
	CHECK_STR(jstr(p, "spec.activeDeadlineSeconds"), "3", "manifest: activeDeadlineSeconds, "
		  "the timeout rounded up");
	CHECK_STR(jstr(p, "spec.imagePullSecrets"), "[{\"name\":\"regcred\"}]", "manifest: imagePullSecrets");
	json_decref(p);

	/* the task's image and account win; no ttl, a dagrun path, no input, no owner */
	t.k8s.image = "ghcr.io/x/plumb:1.2";
	t.k8s.service_account = "indexer";
	t.k8s.cpu = t.k8s.memory = NULL;
	t.k8s.gpu = -1;
	o.store_ttl = 0;
	o.dagrun = "/usr/local/bin/dagrun";
	s.in_keys = NULL;
	s.child = -1;
	s.name = "embed";
	s.timeout = 0;
	p = pl_exec_k8s_manifest(&o, &s, NULL, err, sizeof err);
	CHECK_STR(jstr(p, "spec.containers[0].image"), "ghcr.io/x/plumb:1.2", "manifest: the task's image wins");
	CHECK_STR(jstr(p, "spec.serviceAccountName"), "indexer", "manifest: serviceAccountName");
	CHECK(!jstr(p, "spec.automountServiceAccountToken"), "manifest: and its token mounted");
	CHECK(!jstr(p, "spec.containers[0].resources") && !jstr(p, "spec.activeDeadlineSeconds") &&
	      !jstr(p, "metadata.ownerReferences"),
	      "manifest: no resources, deadline or owner when none is given");
	CHECK(!strstr(jstr(p, "metadata.labels"), "child"), "manifest: no child label for a task");
	CHECK_STR(jstr(p, "spec.containers[0].command"),
		  "[\"/usr/local/bin/dagrun\",\"step\",\"--store\",\"redis://redis:6379/0\",\"--run\","
		  "\"r1\",\"--out\",\"embed/3.out\",\"--log\",\"embed/3.log\",\"--attempt\",\"2\",\"--\",\"/bin/sh\","
		  "\"-c\",\"chunk | embed\"]", "manifest: no --in, no --ttl; the dagrun path");
	json_decref(p);

	/* tests replace the shim */
	const char *none[] = { NULL };
	o.step_argv = none;
	p = pl_exec_k8s_manifest(&o, &s, NULL, err, sizeof err);
	CHECK_STR(jstr(p, "spec.containers[0].command"), "[\"/bin/sh\",\"-c\",\"chunk | embed\"]",
		  "manifest: step_argv replaces the shim");
	json_decref(p);
	o.step_argv = NULL;

	/* what cannot be sent: Kubernetes takes UTF-8 only */
	s.cmd = "echo \xff";
	CHECK(!pl_exec_k8s_manifest(&o, &s, NULL, err, sizeof err) && strstr(err, "not UTF-8"),
	      "manifest: a command that is not UTF-8: %s", err);
	s.cmd = "true";
	const char *badenv[] = { "OK=1", "X=\xfe", NULL };
	s.env = badenv;
	CHECK(!pl_exec_k8s_manifest(&o, &s, NULL, err, sizeof err) && strstr(err, "'X' is not UTF-8"),
	      "manifest: an environment variable that is not UTF-8: %s", err);
	s.env = env;

	/* what cannot be built */
	o.store = NULL;
	CHECK(!pl_exec_k8s_manifest(&o, &s, NULL, err, sizeof err) && strstr(err, "--store"),
	      "manifest: the shim needs a store: %s", err);
	o.store = "redis://r";
	t.k8s.image = NULL;
	o.image = NULL;
	CHECK(!pl_exec_k8s_manifest(&o, &s, NULL, err, sizeof err) && strstr(err, "no container image"),
	      "manifest: no image anywhere: %s", err);
}

/* --- live ----------------------------------------------------------------------------- */

static const char *srv, *tls;

static void ctl(const char *method, const char *path, const char *body)
{
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "curl -sf -k -X %s %s%s%s '%s%s' >/dev/null", method,
		 body ? "-H 'Content-Type: application/json' -d '" : "", body ? body : "", body ? "'" : "",
		 srv, path);
	if (system(cmd) != 0) {
		printf("# control request failed: %s\n", cmd);
		abort();
	}
}

static json_t *ctl_get(const char *path)
{
	char cmd[1024];
	struct pl_buf b = PL_BUF_INIT;
	char buf[65536];
	size_t n;
	snprintf(cmd, sizeof cmd, "curl -sf -k '%s%s'", srv, path);
	FILE *f = popen(cmd, "r");
	if (!f)
		abort();
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		pl_buf_add(&b, buf, n);
	pclose(f);
	json_t *j = json_loadb(b.p ? b.p : "", b.n, 0, NULL);
	pl_buf_free(&b);
	return j;
}

static long server_stat(const char *key)
{
	json_t *j = ctl_get("/__stats");
	long v = (long)json_integer_value(json_object_get(j, key));
	json_decref(j);
	return v;
}

/* the server's request log entries for creates of Pods (201), in arrival order */
static json_t *creates_logged(void)
{
	json_t *j = ctl_get("/__log"), *out = json_array(), *e;
	size_t i;
	json_array_foreach(json_object_get(j, "log"), i, e) {
		const char *m = json_string_value(json_object_get(e, "method"));
		const char *p = json_string_value(json_object_get(e, "path"));
		size_t pl = p ? strlen(p) : 0;
		if (m && !strcmp(m, "POST") && pl > 5 && !strcmp(p + pl - 5, "/pods"))
			json_array_append(out, e);
	}
	json_decref(j);
	return out;
}

static void kubeconfig(void)
{
	char kc[4096];
	snprintf(kc, sizeof kc,
		 "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n"
		 "  cluster:\n    server: %s\n    certificate-authority: %s/ca.crt\n"
		 "users:\n- name: me\n  user:\n    token: secret\n"
		 "contexts:\n- name: t\n  context: {cluster: t, user: me, namespace: unit}\n", srv, tls);
	FILE *f = fopen(path_of("kubeconfig"), "w");
	if (!f || fputs(kc, f) < 0 || fclose(f))
		abort();
}

/* a client of our own, for looking at what the executor did */
static struct pl_kube *checker(void)
{
	struct pl_kube_load l = { path_of("kubeconfig"), NULL, NULL, NULL };
	struct pl_kube_config *c = NULL;
	struct pl_kube_err err;
	if (pl_kube_config_load(&l, &c, &err)) {
		printf("# kubeconfig: %s\n", err.message);
		abort();
	}
	struct pl_kube *k = pl_kube_new(c, NULL, &err);
	pl_kube_config_free(c);
	return k;
}

/* what the trace callback saw, by attempt id */
#define MAXA 1100
static struct {
	char last[32];
	int running;
	double succeeded_at;	/* wall clock, when the executor acted on the event */
	char pod[64];
} tr[MAXA];
static unsigned long watch_errors_traced;

static void on_trace(void *ud, long id, const char *pod, const char *ev)
{
	if (id <= 0 || id >= MAXA) {
		watch_errors_traced += !strcmp(ev, "watch-error");
		return;
	}
	snprintf(tr[id].last, sizeof tr[id].last, "%s", ev);
	snprintf(tr[id].pod, sizeof tr[id].pod, "%s", pod);
	if (!strcmp(ev, "Running"))
		tr[id].running = 1;
	if (!strcmp(ev, "Succeeded"))
		tr[id].succeeded_at = wall();
}

static struct pl_kube_opts kopts;
static const char *no_shim[] = { NULL };

static void base_opts(struct pl_exec_k8s_opts *o, const char *run)
{
	pl_exec_k8s_opts_default(o);
	o->load.kubeconfig = path_of("kubeconfig");
	o->run_id = run;
	o->image = "plumb:test";
	o->step_argv = no_shim;
	o->run_dir = path_of(run);
	pl_kube_opts_default(&kopts);
	kopts.backoff_ms = 20;
	o->kube = &kopts;
	o->trace = on_trace;
	memset(tr, 0, sizeof tr);
}

static struct pl_executor *made(const struct pl_exec_k8s_opts *o)
{
	char err[1024];
	struct pl_executor *x = pl_exec_k8s_new(o, err, sizeof err);
	if (!x)
		printf("# pl_exec_k8s_new: %s\n", err);
	return x;
}

/* how each attempt ended, by token */
static struct {
	int ended;
	struct pl_xdone d;
	double at;		/* wall clock */
} res[MAXA];
static int nres;

static long start(struct pl_executor *x, struct pl_task *t, long child, int attempt, const char *cmd,
		  double timeout, int tok, const char *const *env)
{
	char name[256], err[1024];
	long id = -1;
	if (child >= 0)
		snprintf(name, sizeof name, "%s/%ld", t->name, child);
	else
		snprintf(name, sizeof name, "%s", t->name);
	struct pl_xspec s = { .task = t, .name = name, .child = child, .attempt = attempt, .cmd = cmd,
			      .env = env, .in_fd = -1, .token = (void *)(intptr_t)tok, .timeout = timeout };
	res[tok].ended = 0;
	if (x->start(x, &s, &id, err, sizeof err) < 0) {
		printf("# start %s: %s\n", name, err);
		return -1;
	}
	return id;
}

/* One round of the scheduler's loop: poll (at most base_ms, lowered by the
 * executor), then reap. Returns how many ended. */
static int round1(struct pl_executor *x, int base_ms)
{
	struct pollfd p[256];
	struct pl_xdone d[64];
	int ms = base_ms, n, k, got = 0;

	n = x->fds(x, p, 256, &ms);
	poll(p, (nfds_t)n, ms);
	do {
		k = x->reap(x, d, 64);
		for (int i = 0; i < k; i++) {
			int tok = (int)(intptr_t)d[i].token;
			res[tok].ended = 1;
			res[tok].d = d[i];
			res[tok].at = wall();
			nres++;
			got++;
		}
	} while (k == 64);
	return got;
}

/* Run the loop until the attempts with tokens [from, to) all ended, or secs. */
static int until_ended(struct pl_executor *x, int from, int to, double secs)
{
	double t0 = mono();
	for (;;) {
		int all = 1;
		for (int i = from; i < to; i++)
			all &= res[i].ended;
		if (all)
			return 1;
		if (mono() - t0 > secs)
			return 0;
		round1(x, 200);
	}
}

static void run_for(struct pl_executor *x, double secs)
{
	double t0 = mono();
	while (mono() - t0 < secs)
		round1(x, 50);
}

/* the loop runs until the executor's requests are all answered */
static void settle(struct pl_executor *x)
{
	double t0 = mono();
	while (pl_kube_pending(pl_exec_k8s_kube(x)) && mono() - t0 < 10)
		round1(x, 50);
}

static int until_running(struct pl_executor *x, long id, double secs)
{
	double t0 = mono();
	while (!tr[id].running && mono() - t0 < secs)
		round1(x, 100);
	return tr[id].running;
}

/* the Pod of (run, task, child, attempt): its phase, or "gone" (404) */
static const char *pod_state(struct pl_kube *kc, const char *run, const char *task, long child,
			     int attempt)
{
	static char out[4][600];
	static int i;
	char name[64];
	struct pl_kube_err err;
	json_t *p = NULL;
	i = (i + 1) % 4;
	pl_exec_k8s_pod_name(run, task, child, attempt, name);
	if (pl_kube_pod_get(kc, NULL, name, &p, &err))
		snprintf(out[i], sizeof out[i], "%s", err.status == 404 ? "gone" : err.reason);
	else
		snprintf(out[i], sizeof out[i], "%s", jstr(p, "status.phase"));
	json_decref(p);
	return out[i];
}

static char *task_log(const char *run, const char *name)
{
	char p[600];
	snprintf(p, sizeof p, "%s/tasks/%s.log", path_of(run), name);
	return slurp(p);
}

static void live_codes(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_task a = task("alpha"), b = task("beta"), f = task("fan");
	const char *env[] = { "GREETING=hello world", NULL };
	struct pl_exec_k8s_stats st;

	base_opts(&o, "r-codes");
	struct pl_executor *x = made(&o);
	CHECK(x != NULL, "codes: an executor against the test server");
	if (!x)
		return;
	CHECK(!strcmp(x->name, "k8s") && x->end_orphans == 0, "codes: named k8s; adopts, never ends orphans");
	start(x, &a, -1, 1, "echo \"$GREETING\"; echo to-stderr >&2", 0, 1, env);
	start(x, &b, -1, 1, "exit 3", 0, 2, NULL);
	for (int i = 0; i < 3; i++)
		start(x, &f, i, 1, i == 1 ? "echo child $((6 * 7)); exit 0" : "exit 0", 0, 3 + i, NULL);
	int all = until_ended(x, 1, 6, 20);
	CHECK(all, "codes: five attempts end");
	CHECK(res[1].d.code == 0 && !res[1].d.signaled && !res[1].d.reason[0] &&
	      (intptr_t)res[1].d.token == 1, "codes: exit 0, token given back");
	CHECK(res[2].d.code == 3 && !res[2].d.signaled && !res[2].d.reason[0],
	      "codes: exit 3 from containerStatuses (%d %s)", res[2].d.code, res[2].d.reason);
	CHECK(res[3].d.code == 0 && res[4].d.code == 0 && res[5].d.code == 0, "codes: fan-out children");

	char *log = task_log("r-codes", "alpha");
	CHECK(strstr(log, "hello world\n") && strstr(log, "to-stderr\n"),
	      "codes: the Pod's log (env, stdout and stderr) is in tasks/alpha.log: %s", log);
	free(log);
	log = task_log("r-codes", "fan/1");
	CHECK_STR(log, "child 42\n", "codes: a child's log is in tasks/fan/1.log");
	free(log);

	/* a second attempt of alpha appends to the same file */
	start(x, &a, -1, 2, "echo second attempt", 0, 6, NULL);
	until_ended(x, 6, 7, 10);
	log = task_log("r-codes", "alpha");
	CHECK(strstr(log, "hello world\n") && strstr(log, "second attempt\n") &&
	      strstr(log, "hello world") < strstr(log, "second attempt"),
	      "codes: attempt 2's log is appended after attempt 1's");
	free(log);

	/* on-success (the default): succeeded Pods deleted, failed ones kept */
	settle(x);
	struct pl_kube *kc = checker();
	CHECK_STR(pod_state(kc, "r-codes", "alpha", -1, 1), "gone", "gc on-success: a succeeded Pod is deleted");
	CHECK_STR(pod_state(kc, "r-codes", "fan", 2, 1), "gone", "gc on-success: a child's too");
	CHECK_STR(pod_state(kc, "r-codes", "beta", -1, 1), "Failed", "gc on-success: a failed Pod is kept");

	/* the log was fetched before the Pod was deleted */
	char pod[64];
	long nlog = 0, ndel = 0;
	pl_exec_k8s_pod_name("r-codes", "alpha", -1, 1, pod);
	json_t *lg = ctl_get("/__log"), *le;
	size_t i;
	json_array_foreach(json_object_get(lg, "log"), i, le) {
		const char *m = json_string_value(json_object_get(le, "method"));
		const char *p = json_string_value(json_object_get(le, "path"));
		const char *slash = p ? strrchr(p, '/') : NULL;
		long n = (long)json_integer_value(json_object_get(le, "n"));
		if (!m || !slash)
			continue;
		if (!strcmp(m, "GET") && !strcmp(slash, "/log") && slash - p > (long)strlen(pod) &&
		    !strncmp(slash - strlen(pod), pod, strlen(pod)))
			nlog = n;
		if (!strcmp(m, "DELETE") && !strcmp(slash + 1, pod))
			ndel = n;
	}
	json_decref(lg);
	CHECK(nlog > 0 && ndel > nlog, "codes: the log was fetched (request %ld) before the delete (%ld)",
	      nlog, ndel);

	/* the end is reported as soon as it happens: the loop waits up to 5 s a
	 * round, and the attempt must be reaped within 0.5 s of its process's end */
	char cmd[600];
	snprintf(cmd, sizeof cmd, "sleep 0.3; date +%%s.%%N > '%s'", path_of("ended"));
	start(x, &a, -1, 3, cmd, 0, 7, NULL);
	double t0 = mono();
	while (!res[7].ended && mono() - t0 < 10)
		round1(x, 5000);
	char *ended = slurp(path_of("ended"));
	double e = atof(ended);
	free(ended);
	CHECK(res[7].ended && e > 0 && res[7].at - e < 0.5 && res[7].at >= e,
	      "codes: reaped %.3f s after the process ended, with no polling interval", res[7].at - e);

	pl_exec_k8s_stats(x, &st);
	CHECK(st.creates == 7 && st.logs == 7 && st.log_errors == 0 && st.ended == 7,
	      "codes: 7 creates, 7 logs, 7 ended (%lu, %lu, %lu)", st.creates, st.logs, st.ended);
	CHECK(st.watch.lists == 1 && st.watch.connects == 1, "codes: one LIST and one WATCH for the run "
	      "(%lu, %lu)", st.watch.lists, st.watch.connects);
	x->free(x);
	pl_kube_free(kc);
}

static void live_gc(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_task t = task("t");
	const char *runs[] = { "r-gc-completion", "r-gc-never" };
	enum pl_pod_gc gcs[] = { PL_POD_GC_ON_COMPLETION, PL_POD_GC_NEVER };
	struct pl_kube *kc = checker();

	for (int i = 0; i < 2; i++) {
		base_opts(&o, runs[i]);
		o.gc = gcs[i];
		struct pl_executor *x = made(&o);
		if (!x)
			return;
		start(x, &t, 0, 1, "true", 0, 1, NULL);
		start(x, &t, 1, 1, "false", 0, 2, NULL);
		until_ended(x, 1, 3, 10);
		settle(x);
		CHECK(res[1].d.code == 0 && res[2].d.code == 1, "gc %s: exit 0 and 1", runs[i]);
		const char *ok = pod_state(kc, runs[i], "t", 0, 1), *bad = pod_state(kc, runs[i], "t", 1, 1);
		if (gcs[i] == PL_POD_GC_ON_COMPLETION)
			CHECK(!strcmp(ok, "gone") && !strcmp(bad, "gone"),
			      "gc on-completion: both Pods deleted (%s, %s)", ok, bad);
		else
			CHECK(!strcmp(ok, "Succeeded") && !strcmp(bad, "Failed"),
			      "gc never: both Pods kept (%s, %s)", ok, bad);
		x->free(x);
	}
	pl_kube_free(kc);
}

static int kube_sync(struct pl_kube *k, const char *method, const char *path, const char *body,
		     long *status);

static void live_outcomes(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_task oom = task("oomtask"), ev = task("evicttask"), dl = task("deadline"),
		pull = task("pulltask"), cfg = task("cfgtask"), sec = task("sectask");
	struct pl_kv miss[] = { { "P", "nosuch/p", { 0 } } };
	struct pl_kv have[] = { { "TOKEN", "creds/token", { 0 } } };
	struct pl_kube *kc = checker();
	long status = 0;

	ctl("POST", "/__faults", "[{\"pod\": \"oomtask\", \"outcome\": \"OOMKilled\"},"
	    "{\"pod\": \"evicttask\", \"outcome\": \"Evicted\"},"
	    "{\"pod\": \"pulltask\", \"outcome\": \"ImagePullBackOff\"}]");
	kube_sync(kc, "POST", "/api/v1/namespaces/unit/secrets",
		  "{\"metadata\":{\"name\":\"creds\"},\"stringData\":{\"token\":\"s3cr3t\"}}", &status);
	CHECK(status == 201, "outcomes: a Secret for the task (%ld)", status);
	cfg.k8s.secrets.v = miss;
	cfg.k8s.secrets.n = 1;
	sec.k8s.secrets.v = have;
	sec.k8s.secrets.n = 1;
	base_opts(&o, "r-out");
	o.pending_timeout = 0.6;
	struct pl_executor *x = made(&o);
	if (!x)
		return;
	start(x, &oom, -1, 1, "sleep 30", 0, 1, NULL);
	start(x, &ev, -1, 1, "sleep 30", 0, 2, NULL);
	start(x, &dl, -1, 1, "echo before the deadline; sleep 30", 1, 3, NULL);
	long pid = start(x, &pull, -1, 1, "echo never", 0, 4, NULL);
	start(x, &cfg, -1, 1, "echo $P", 0, 5, NULL);
	start(x, &sec, -1, 1, "echo token=$TOKEN", 0, 6, NULL);
	double t0 = mono();
	until_ended(x, 1, 7, 20);
	CHECK(res[1].d.code == 137 && !strcmp(res[1].d.reason, "OOMKilled") && !res[1].d.signaled,
	      "outcomes: OOMKilled is 137 with reason OOMKilled (%d %s)", res[1].d.code, res[1].d.reason);
	CHECK(res[2].d.code == 137 && res[2].d.signaled && !strcmp(res[2].d.reason, "Evicted"),
	      "outcomes: Evicted is transient (signaled) with reason Evicted (%d %d %s)", res[2].d.code,
	      res[2].d.signaled, res[2].d.reason);
	CHECK(res[3].d.code == 124 && !res[3].d.signaled && !strcmp(res[3].d.reason, "DeadlineExceeded"),
	      "outcomes: activeDeadlineSeconds is 124 with reason DeadlineExceeded (%d %s)", res[3].d.code,
	      res[3].d.reason);
	CHECK(res[4].d.code == 125 && !strcmp(res[4].d.reason, "ImagePullBackOff") &&
	      res[4].at - t0 >= 0.6 && tr[pid].last[0],
	      "outcomes: ImagePullBackOff fails after the pending timeout, 125 (%d %s, %.2f s)",
	      res[4].d.code, res[4].d.reason, res[4].at - t0);
	CHECK(res[5].d.code == 125 && !strcmp(res[5].d.reason, "CreateContainerConfigError"),
	      "outcomes: a missing Secret: CreateContainerConfigError after the pending timeout (%s)",
	      res[5].d.reason);
	CHECK(res[6].d.code == 0, "outcomes: env from a Secret");
	char *log = task_log("r-out", "sectask");
	CHECK_STR(log, "token=s3cr3t\n", "outcomes: the Secret's value reached the container");
	free(log);
	log = task_log("r-out", "pulltask");
	CHECK(strstr(log, "ImagePullBackOff for") && strstr(log, "Back-off pulling image \"plumb:test\""),
	      "outcomes: the log says why: %s", log);
	free(log);
	log = task_log("r-out", "deadline");
	CHECK(strstr(log, "before the deadline\n") && strstr(log, "DeadlineExceeded"),
	      "outcomes: a deadline's log, and why: %s", log);
	free(log);
	log = task_log("r-out", "oomtask");
	CHECK(strstr(log, "OOMKilled"), "outcomes: an OOM kill says so in the log");
	free(log);
	settle(x);
	CHECK_STR(pod_state(kc, "r-out", "pulltask", -1, 1), "gone",
		  "outcomes: a Pod past its pending timeout is deleted");
	CHECK_STR(pod_state(kc, "r-out", "cfgtask", -1, 1), "gone", "outcomes: that one too");
	CHECK_STR(pod_state(kc, "r-out", "oomtask", -1, 1), "Failed", "outcomes: failed ones are kept");
	x->free(x);
	pl_kube_free(kc);
}

static void live_signals(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_task t = task("sig");
	struct pl_kube *kc = checker();

	base_opts(&o, "r-sig");
	struct pl_executor *x = made(&o);
	if (!x)
		return;
	long a = start(x, &t, 0, 1, "echo started; sleep 30", 0, 1, NULL);
	long b = start(x, &t, 1, 1, "echo started; sleep 30", 0, 2, NULL);
	until_running(x, a, 10);
	until_running(x, b, 10);
	run_for(x, 0.3);
	double t0 = mono();
	x->signal(x, a, SIGTERM);
	x->signal(x, b, SIGKILL);
	until_ended(x, 1, 3, 15);
	CHECK(res[1].ended && res[1].d.code == 143 && res[1].d.signaled,
	      "signals: SIGTERM deletes the Pod; it ends as 143, signaled (%d %d %s)", res[1].d.code,
	      res[1].d.signaled, res[1].d.reason);
	CHECK(res[2].ended && res[2].d.code == 137 && res[2].d.signaled,
	      "signals: SIGKILL deletes it at once; 137, signaled (%d)", res[2].d.code);
	CHECK(mono() - t0 < 5, "signals: within the grace period, not after it (%.2f s)", mono() - t0);
	char *log = task_log("r-sig", "sig/0");
	CHECK(strstr(log, "started\n") != NULL, "signals: the log up to the signal is kept: %s", log);
	free(log);
	/* a signal while the create is still in flight: the Pod is deleted once it exists */
	long c = start(x, &t, 2, 1, "sleep 30", 0, 3, NULL);
	x->signal(x, c, SIGTERM);
	until_ended(x, 3, 4, 15);
	CHECK(res[3].ended && res[3].d.code == 143 && res[3].d.signaled,
	      "signals: a signal before the create's answer still ends it (%d)", res[3].d.code);
	settle(x);
	CHECK_STR(pod_state(kc, "r-sig", "sig", 2, 1), "gone", "signals: and its Pod is gone");
	x->signal(x, c, SIGKILL);	/* ended: ignored */
	x->signal(x, 9999, SIGKILL);	/* never ours: ignored */
	x->free(x);
	pl_kube_free(kc);
}

static void live_invalid(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_task t = task("bad"), ok = task("ok");

	base_opts(&o, "r-bad");
	struct pl_executor *x = made(&o);
	if (!x)
		return;
	t.k8s.memory = "1.5.5Gi";	/* not a quantity: the API server refuses the Pod */
	start(x, &t, -1, 1, "true", 0, 1, NULL);
	until_ended(x, 1, 2, 10);
	CHECK(res[1].ended && res[1].d.code == PL_EX_DATAERR && !strcmp(res[1].d.reason, "BadRequest"),
	      "invalid: a Pod the server refuses ends the attempt, 65 BadRequest (%d %s)", res[1].d.code,
	      res[1].d.reason);
	char *log = task_log("r-bad", "bad");
	CHECK(strstr(log, "cannot create it: Pod in version \"v1\" cannot be handled as a Pod: "
			  "quantities must match") && strstr(log, "(HTTP 400)"),
	      "invalid: the log says why: %s", log);
	free(log);
	ctl("POST", "/__faults", "{\"method\": \"POST\", \"path\": \"/pods\", \"status\": 403, "
	    "\"reason\": \"Forbidden\", \"message\": \"pods is forbidden: User cannot create resource\"}");
	start(x, &ok, -1, 1, "true", 0, 2, NULL);
	until_ended(x, 2, 3, 10);
	CHECK(res[2].ended && res[2].d.code == PL_EX_USAGE && !strcmp(res[2].d.reason, "Forbidden"),
	      "invalid: 403 is a configuration error, 2 Forbidden (%d %s)", res[2].d.code, res[2].d.reason);
	/* an attempt whose command cannot be sent fails alone */
	long id = start(x, &ok, 7, 1, "echo \xff", 0, 4, NULL);
	until_ended(x, 4, 5, 10);
	CHECK(id > 0 && res[4].ended && res[4].d.code == PL_EX_DATAERR && !strcmp(res[4].d.reason, "NotUTF8"),
	      "invalid: a command that is not UTF-8 fails its attempt, 65 NotUTF8 (%d %s)", res[4].d.code,
	      res[4].d.reason);
	/* and the executor goes on */
	start(x, &ok, -1, 2, "true", 0, 3, NULL);
	until_ended(x, 3, 4, 10);
	CHECK(res[3].ended && res[3].d.code == 0, "invalid: the next attempt runs");
	/* a configuration error is the caller's: start fails */
	struct pl_task noimg = task("noimg");
	char err[512];
	long nid;
	struct pl_xspec sp = { .task = &noimg, .name = "noimg", .child = -1, .attempt = 1, .cmd = "true",
			       .in_fd = -1 };
	x->free(x);
	base_opts(&o, "r-bad");
	o.image = NULL;
	x = made(&o);
	CHECK(x && x->start(x, &sp, &nid, err, sizeof err) == -1 && strstr(err, "no container image"),
	      "invalid: no image anywhere: start fails: %s", err);
	if (x)
		x->free(x);
}

static void live_adopt(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_exec_k8s_stats st;
	struct pl_task t = task("adopt");
	struct pl_kube *kc = checker();
	json_t *list = NULL;
	struct pl_kube_err err;

	/* a 409 for a Pod that does not exist: looked up, then created */
	base_opts(&o, "r-adopt");
	struct pl_executor *x = made(&o);
	if (!x)
		return;
	long created0 = server_stat("pods_created");
	ctl("POST", "/__faults", "{\"method\": \"POST\", \"path\": \"/pods\", \"status\": 409}");
	start(x, &t, -1, 1, "echo one", 0, 1, NULL);
	until_ended(x, 1, 2, 10);
	pl_exec_k8s_stats(x, &st);
	CHECK(res[1].ended && res[1].d.code == 0 && st.conflicts == 1 && st.creates == 1 && !st.adopted,
	      "adopt: a 409 whose GET finds nothing creates it then (%lu conflicts, %lu creates)",
	      st.conflicts, st.creates);
	CHECK(server_stat("pods_created") - created0 == 1, "adopt: one Pod at the server");

	/* a create whose answer is lost (the client times out) and is sent
	 * again: the server made the Pod, answers 409, and it is adopted */
	x->free(x);
	base_opts(&o, "r-adopt2");
	kopts.timeout_ms = 300;
	x = made(&o);
	if (!x)
		return;
	ctl("POST", "/__faults", "[{\"method\": \"POST\", \"path\": \"/pods\", \"delay\": 0.5},"
	    "{\"method\": \"POST\", \"path\": \"/pods\", \"delay\": 0.3, \"drop\": true}]");
	created0 = server_stat("pods_created");
	start(x, &t, -1, 1, "echo lost answer", 0, 2, NULL);
	until_ended(x, 2, 3, 10);
	settle(x);	/* the create's last answer may come after the Pod's end */
	pl_exec_k8s_stats(x, &st);
	CHECK(res[2].ended && res[2].d.code == 0 && st.conflicts == 1 && st.adopted == 1,
	      "adopt: a lost create answer: sent again, 409, and the Pod is taken as this attempt's "
	      "(%lu conflicts, %lu adopted)", st.conflicts, st.adopted);
	CHECK(server_stat("pods_created") - created0 == 1, "adopt: still one Pod at the server");
	pl_kube_pod_list(kc, NULL, "plumb.dev/run=r-adopt2", &list, &err);
	CHECK(json_array_size(json_object_get(list, "items")) == 0, "adopt: and it was collected after "
	      "the create's answer (no Pod made again behind the delete)");
	json_decref(list);
	list = NULL;
	char *log = task_log("r-adopt2", "adopt");
	CHECK_STR(log, "lost answer\n", "adopt: its log, once");
	free(log);
	x->free(x);

	/* a resume: dagrun dies while a Pod runs; the next executor of the run
	 * finds the ConfigMap, adopts the Pod and reports its end */
	base_opts(&o, "r-resume");
	x = made(&o);
	if (!x)
		return;
	long id = start(x, &t, 4, 1, "sleep 1; echo finished", 0, 3, NULL);
	until_running(x, id, 10);
	x->free(x);	/* leaves the Pod alone */
	created0 = server_stat("pods_created");
	base_opts(&o, "r-resume");
	x = made(&o);
	if (!x)
		return;
	run_for(x, 0.2);	/* the watch may know the Pod by now, or not: both work */
	start(x, &t, 4, 1, "sleep 1; echo finished", 0, 4, NULL);
	until_ended(x, 4, 5, 10);
	pl_exec_k8s_stats(x, &st);
	CHECK(res[4].ended && res[4].d.code == 0 && st.adopted == 1 && st.creates == 0,
	      "adopt: a resumed run adopts its running Pod, creates none (%lu adopted, %lu creates)",
	      st.adopted, st.creates);
	CHECK(server_stat("pods_created") == created0, "adopt: no second copy at the server");
	log = task_log("r-resume", "adopt/4");
	CHECK_STR(log, "finished\n", "adopt: the adopted Pod's log");
	free(log);
	/* a resumed run whose Pod ended while dagrun was away */
	id = start(x, &t, 5, 1, "echo early", 0, 5, NULL);
	until_ended(x, 5, 6, 10);
	x->free(x);
	base_opts(&o, "r-resume");
	o.gc = PL_POD_GC_NEVER;
	x = made(&o);
	start(x, &t, 5, 1, "echo early", 0, 6, NULL);
	/* on-success deleted it: created again, since it is gone */
	until_ended(x, 6, 7, 10);
	CHECK(res[6].ended && res[6].d.code == 0, "adopt: a Pod collected since is made again");
	long c5 = server_stat("pods_created");
	x->free(x);
	x = made(&o);
	start(x, &t, 5, 1, "echo early", 0, 7, NULL);
	until_ended(x, 7, 8, 10);
	settle(x);
	pl_exec_k8s_stats(x, &st);
	CHECK(res[7].ended && res[7].d.code == 0 && st.adopted == 1 && server_stat("pods_created") == c5,
	      "adopt: a Pod that ended while dagrun was away is adopted as ended");
	x->free(x);
	pl_kube_free(kc);
}

static void live_owner(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_task t = task("owned");
	struct pl_kube *kc = checker();
	struct pl_kube_err err;
	long ids[3];

	base_opts(&o, "r-owner");
	struct pl_executor *x = made(&o);
	if (!x)
		return;
	for (int i = 0; i < 3; i++)
		ids[i] = start(x, &t, i, 1, "trap 'sleep 0.3; exit 3' TERM; echo owned-start; sleep 30 & wait",
			       0, 1 + i, NULL);
	for (int i = 0; i < 3; i++)
		until_running(x, ids[i], 10);
	run_for(x, 0.3);
	CHECK(pl_kube_configmap_delete(kc, NULL, "plumb-run-r-owner", &err) == 0,
	      "owner: delete the run's ConfigMap");
	until_ended(x, 1, 4, 15);
	int ok = 1;
	for (int i = 1; i <= 3; i++)
		ok &= res[i].ended && res[i].d.signaled && res[i].d.code == 137 &&
		      !strcmp(res[i].d.reason, "Deleted");
	CHECK(ok, "owner: its Pods are collected; each attempt ends as lost (transient) (%d %d %s)",
	      res[1].d.code, res[1].d.signaled, res[1].d.reason);
	char *log = task_log("r-owner", "owned/0");
	CHECK(strstr(log, "owned-start\n") && strstr(log, "deleted before it ended"),
	      "owner: its log, taken when its deletion began, and why it ended: %s", log);
	free(log);
	x->free(x);
	pl_kube_free(kc);
}

static void live_watch(const char *fault, const char *what)
{
	struct pl_exec_k8s_opts o;
	struct pl_exec_k8s_stats st;
	struct pl_task t = task("w");

	base_opts(&o, "r-watch");
	ctl("POST", "/__faults", fault);	/* for the executor's first WATCH */
	struct pl_executor *x = made(&o);
	if (!x)
		return;
	for (int i = 0; i < 8; i++)
		start(x, &t, i, 1, "sleep 0.2", 0, 1 + i, NULL);
	int all = until_ended(x, 1, 9, 20);
	int ok = 1;
	for (int i = 1; i <= 8; i++)
		ok &= res[i].d.code == 0;
	pl_exec_k8s_stats(x, &st);
	CHECK(all && ok, "%s: every one of 8 attempts ends, exit 0", what);
	if (!strcmp(what, "gone"))
		CHECK(st.watch.gone >= 1 && st.watch.lists >= 2, "gone: the ERROR 410 re-listed "
		      "(%lu gone, %lu lists)", st.watch.gone, st.watch.lists);
	else
		CHECK(st.watch.connects >= 2 && st.watch.lists == 1, "drop: the dropped watch reconnected "
		      "(%lu connects, %lu lists)", st.watch.connects, st.watch.lists);
	x->free(x);
}

/* The run's Pods may no longer be listed or watched (the Role lost its
 * rights mid-run): every attempt in flight ends, failed, within a few tries. */
#define FORBIDDEN "{\"query\": \"labelSelector=plumb.dev\", \"status\": 403, \"times\": 0, " \
	"\"reason\": \"Forbidden\", \"message\": \"pods is forbidden: User \\\"system:" \
	"serviceaccount:unit:plumb-dagrun\\\" cannot watch resource \\\"pods\\\" in API group " \
	"\\\"\\\" in the namespace \\\"unit\\\"\"}"

/* nothing of the executor's is waiting: no request, no watch, no descriptor, no timer */
static int idle(struct pl_executor *x)
{
	struct pollfd p[64];
	int ms = -1;
	settle(x);
	int n = x->fds(x, p, 64, &ms);
	return n == 0 && ms < 0 && pl_kube_step(pl_exec_k8s_kube(x), NULL, 0, 0) == 0;
}

/* the loop runs until the Pod is gone, or secs */
static int until_gone(struct pl_executor *x, struct pl_kube *kc, const char *run, const char *task,
		      long child, int attempt, double secs)
{
	double t0 = mono();
	while (strcmp(pod_state(kc, run, task, child, attempt), "gone")) {
		if (mono() - t0 > secs)
			return 0;
		round1(x, 50);
	}
	return 1;
}

static void live_watchfail(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_exec_k8s_stats st;
	struct pl_task a = task("held"), b = task("late"), c = task("again");
	struct pl_kube *kc = checker();

	base_opts(&o, "r-wfail");
	watch_errors_traced = 0;
	struct pl_executor *x = made(&o);
	if (!x)
		return;
	long ida = start(x, &a, -1, 1, "echo held-started; sleep 60", 0, 1, NULL);
	CHECK(until_running(x, ida, 10), "watchfail: the attempt runs");
	/* the next create is slow to be answered: that attempt is in flight */
	ctl("POST", "/__faults", "{\"method\": \"POST\", \"path\": \"/pods\", \"delay\": 1.5}");
	start(x, &b, -1, 1, "echo late; sleep 60", 0, 2, NULL);
	run_for(x, 0.2);
	double t0 = mono();
	ctl("POST", "/__faults", FORBIDDEN);
	ctl("POST", "/__drop-watches", NULL);
	int all = until_ended(x, 1, 3, 20);
	double dt = mono() - t0;
	CHECK(all && dt < 5, "watchfail: a watch answered 403 ends both attempts in %.2f s", dt);
	CHECK(res[1].d.code == PL_EX_USAGE && !res[1].d.signaled &&
	      !strcmp(res[1].d.reason, "WatchFailed: 403 Forbidden"),
	      "watchfail: the running one failed, exit 2, reason '%s' (%d)", res[1].d.reason,
	      res[1].d.code);
	CHECK(res[2].d.code == PL_EX_USAGE && !strcmp(res[2].d.reason, "WatchFailed: 403 Forbidden"),
	      "watchfail: the one whose create was in flight too (%d %s)", res[2].d.code,
	      res[2].d.reason);
	char *log = task_log("r-wfail", "held");
	CHECK(strstr(log, "held-started\n") &&
	      strstr(log, "the watch of pods failed for good: 403 Forbidden: pods is forbidden: User "
		     "\"system:serviceaccount:unit:plumb-dagrun\" cannot watch resource \"pods\"") &&
	      strstr(log, "(3 such answers in ") && strstr(log, "it is deleted"),
	      "watchfail: its log so far, then why it ended: %s", log);
	free(log);
	pl_exec_k8s_stats(x, &st);
	CHECK(st.watch_giveups == 1 && st.watch_errors == 3 && watch_errors_traced == 3,
	      "watchfail: given up once, after 3 answers (%lu, %lu)", st.watch_giveups,
	      st.watch_errors);
	/* Pods nobody watches are not left running: the in-flight create's too */
	CHECK(until_gone(x, kc, "r-wfail", "held", -1, 1, 10) && until_gone(x, kc, "r-wfail", "late", -1, 1, 10),
	      "watchfail: their Pods are deleted (%s, %s)", pod_state(kc, "r-wfail", "held", -1, 1),
	      pod_state(kc, "r-wfail", "late", -1, 1));
	CHECK(idle(x), "watchfail: then nothing is left waiting: no request, watch, descriptor or timer");

	/* an attempt started afterwards (a retry, on_exit) watches anew: while
	 * the API still refuses, it fails the same way, as quickly */
	t0 = mono();
	start(x, &c, -1, 1, "sleep 60", 0, 3, NULL);
	all = until_ended(x, 3, 4, 20);
	dt = mono() - t0;
	CHECK(all && dt < 5 && res[3].d.code == PL_EX_USAGE &&
	      !strcmp(res[3].d.reason, "WatchFailed: 403 Forbidden"),
	      "watchfail: a later attempt tries a new watch, fails in %.2f s (%d %s)", dt, res[3].d.code,
	      res[3].d.reason);
	CHECK(until_gone(x, kc, "r-wfail", "again", -1, 1, 10), "watchfail: and its Pod is deleted");
	/* once the rights are back, one succeeds */
	ctl("DELETE", "/__faults", NULL);
	start(x, &c, -1, 2, "echo back", 0, 4, NULL);
	all = until_ended(x, 4, 5, 20);
	pl_exec_k8s_stats(x, &st);
	CHECK(all && res[4].d.code == 0 && st.watch_giveups == 2 && st.watch.lists >= 2,
	      "watchfail: with the rights back, the next attempt succeeds (%d; %lu give-ups, %lu lists)",
	      res[4].d.code, st.watch_giveups, st.watch.lists);
	x->free(x);
	pl_kube_free(kc);
}

/* Failures that are not permanent (500s) are given up once they have gone
 * on for the bound, o.watch_fail_timeout. */
static void live_watchtime(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_exec_k8s_stats st;
	struct pl_task a = task("held");

	base_opts(&o, "r-wtime");
	o.watch_fail_timeout = 1.0;
	struct pl_executor *x = made(&o);
	if (!x)
		return;
	long ida = start(x, &a, -1, 1, "sleep 60", 0, 1, NULL);
	CHECK(until_running(x, ida, 10), "watchtime: the attempt runs");
	ctl("POST", "/__faults", "{\"query\": \"watch=true\", \"status\": 500, \"times\": 0}");
	ctl("POST", "/__drop-watches", NULL);
	double t0 = mono();
	int all = until_ended(x, 1, 2, 20);
	double dt = mono() - t0;
	CHECK(all && dt >= 1.0 && dt < 6, "watchtime: 500s on the watch end the attempt after the "
	      "1 s bound, in %.2f s", dt);
	CHECK(res[1].d.code == PL_EX_UNAVAILABLE && !res[1].d.signaled &&
	      !strcmp(res[1].d.reason, "WatchFailed: 500 InternalError"),
	      "watchtime: exit 69, reason '%s' (%d)", res[1].d.reason, res[1].d.code);
	char *log = task_log("r-wtime", "held");
	CHECK(strstr(log, "the watch of pods failed for good: 500 InternalError: Internal error occurred: "
		     "injected fault (failing for "), "watchtime: why, in its log: %s", log);
	free(log);
	pl_exec_k8s_stats(x, &st);
	CHECK(st.watch_giveups == 1 && st.watch_errors >= 3, "watchtime: given up once, after %lu "
	      "failures", st.watch_errors);
	CHECK(idle(x), "watchtime: then nothing is left waiting");
	x->free(x);
}

/* Failures that stop are forgiven: an event (here a bookmark) resets both the
 * count of permanent answers and the clock, so bursts of them, each shorter
 * than the limits but together longer, end nothing. */
static void live_watchflap(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_exec_k8s_stats st;
	struct pl_task a = task("held");

	base_opts(&o, "r-wflap");
	o.watch_fail_timeout = 1.0;
	ctl("POST", "/__config", "{\"bookmark_interval\": 0.2}");
	struct pl_executor *x = made(&o);
	if (!x)
		return;
	long ida = start(x, &a, -1, 1, "sleep 3.5; echo held-done", 0, 1, NULL);
	CHECK(until_running(x, ida, 10), "watchflap: the attempt runs");
	const char *bursts[] = {
		"{\"query\": \"watch=true\", \"status\": 403, \"times\": 2}",
		"{\"query\": \"watch=true\", \"status\": 403, \"times\": 2}",
		"{\"query\": \"watch=true\", \"status\": 500, \"times\": 3}",
	};
	for (size_t i = 0; i < 3; i++) {
		ctl("POST", "/__faults", bursts[i]);
		ctl("POST", "/__drop-watches", NULL);
		run_for(x, 0.6);
	}
	int all = until_ended(x, 1, 2, 20);
	pl_exec_k8s_stats(x, &st);
	CHECK(all && res[1].d.code == 0 && !res[1].d.reason[0], "watchflap: the attempt ends as it "
	      "ran, exit 0 (%d %s)", res[1].d.code, res[1].d.reason);
	CHECK(st.watch_giveups == 0 && st.watch_errors >= 7, "watchflap: %lu failures in 1.8 s, four "
	      "of them 403s, given up %lu times", st.watch_errors, st.watch_giveups);
	char *log = task_log("r-wflap", "held");
	CHECK_STR(log, "held-done\n", "watchflap: its log is its own");
	free(log);
	x->free(x);
}

/* Connection errors: a healthy watch has them too (a proxy that drops its
 * connections), so at the bound the executor asks with a LIST of its own
 * first. Here every watch is dropped as soon as it is answered, but LISTs
 * work: nothing is given up, and the attempts' ends come from those LISTs.
 * Then LISTs are dropped too: that is given up. */
static void live_watchconn(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_exec_k8s_stats st;
	struct pl_task a = task("held");

	base_opts(&o, "r-wconn");
	o.watch_fail_timeout = 1.0;
	kopts.backoff_max_ms = 400;
	struct pl_executor *x = made(&o);
	if (!x)
		return;
	long ida = start(x, &a, -1, 1, "sleep 2; echo held-done; exit 4", 0, 1, NULL);
	CHECK(until_running(x, ida, 10), "watchconn: the attempt runs");
	ctl("POST", "/__faults", "{\"watch\": \"drop\", \"after\": 0, \"times\": 0}");
	ctl("POST", "/__drop-watches", NULL);
	int all = until_ended(x, 1, 2, 20);
	pl_exec_k8s_stats(x, &st);
	CHECK(all && res[1].d.code == 4 && !res[1].d.reason[0], "watchconn: every watch dropped, "
	      "yet the attempt's end is seen, exit 4 (%d %s)", res[1].d.code, res[1].d.reason);
	CHECK(st.watch_giveups == 0 && st.watch_probes >= 1 && st.watch_errors >= 4,
	      "watchconn: not given up: %lu LISTs of its own answered, after %lu failures",
	      st.watch_probes, st.watch_errors);
	char *log = task_log("r-wconn", "held");
	CHECK_STR(log, "held-done\n", "watchconn: and its log");
	free(log);

	/* the API drops everything about the run's Pods: LISTs too */
	long idb = start(x, &a, -1, 2, "sleep 60", 0, 2, NULL);
	CHECK(until_running(x, idb, 10), "watchconn: another attempt runs");
	ctl("POST", "/__faults", "{\"query\": \"labelSelector=plumb.dev\", \"drop\": true, \"times\": 0}");
	double t0 = mono();
	all = until_ended(x, 2, 3, 30);
	double dt = mono() - t0;
	pl_exec_k8s_stats(x, &st);
	CHECK(all && dt >= 1.0 && dt < 15 && res[2].d.code == PL_EX_UNAVAILABLE &&
	      !strcmp(res[2].d.reason, "WatchFailed: ConnectionError"),
	      "watchconn: with LISTs failing too it is given up in %.2f s (%d %s)", dt, res[2].d.code,
	      res[2].d.reason);
	CHECK(st.watch_giveups == 1, "watchconn: once");
	log = task_log("r-wconn", "held");
	CHECK(strstr(log, "the watch of pods failed for good: ConnectionError: ") != NULL,
	      "watchconn: why, in its log: %s", log);
	free(log);
	CHECK(idle(x), "watchconn: then nothing is left waiting");
	x->free(x);
}

static void live_retry(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_task t = task("r");

	base_opts(&o, "r-retry");
	struct pl_executor *x = made(&o);
	if (!x)
		return;
	ctl("POST", "/__faults", "{\"method\": \"POST\", \"path\": \"/pods\", \"status\": 429, "
	    "\"retry_after\": 1}");
	double t0 = mono();
	start(x, &t, -1, 1, "true", 0, 1, NULL);
	until_ended(x, 1, 2, 10);
	double dt = mono() - t0;
	json_t *cr = creates_logged(), *e;
	size_t i;
	struct pl_buf codes = PL_BUF_INIT;
	json_array_foreach(cr, i, e)
		pl_buf_printf(&codes, "%s%lld", i ? "," : "", (long long)json_integer_value(json_object_get(e, "status")));
	CHECK(res[1].ended && res[1].d.code == 0 && dt >= 0.95, "retry: a 429 waits its Retry-After "
	      "of 1 s (%.2f s), then the Pod is made", dt);
	CHECK_STR(pl_buf_cstr(&codes), "429,201", "retry: the server saw a 429 then a 201");
	pl_buf_free(&codes);
	json_decref(cr);
	x->free(x);
}

static void live_qps(void)
{
	struct pl_exec_k8s_opts o;
	struct pl_task t = task("q");
	const int n = 41;

	base_opts(&o, "r-qps");
	o.qps = 20;
	o.burst = 1;
	o.gc = PL_POD_GC_NEVER;
	struct pl_executor *x = made(&o);
	if (!x)
		return;
	run_for(x, 0.2);
	for (int i = 0; i < n; i++)
		start(x, &t, i, 1, "true", 0, 1 + i, NULL);
	until_ended(x, 1, n + 1, 30);
	json_t *cr = creates_logged();
	size_t m = json_array_size(cr);
	double first = json_real_value(json_object_get(json_array_get(cr, 0), "t"));
	double last = json_real_value(json_object_get(json_array_get(cr, m - 1), "t"));
	double rate = m > 1 ? (double)(m - 1) / (last - first) : 0;
	CHECK(m == (size_t)n && fabs(rate - 20) <= 2, "qps: %zu creates at %.2f a second against "
	      "--qps 20 (within 10%%)", m, rate);
	json_decref(cr);
	x->free(x);
}

struct sync_call {
	int done;
	long status;
};

static void sync_cb(void *ud, const struct pl_kube_resp *r)
{
	struct sync_call *s = ud;
	s->done = 1;
	s->status = r->status;
}

static int kube_sync(struct pl_kube *k, const char *method, const char *path, const char *body,
		     long *status)
{
	struct sync_call s = { 0, 0 };
	pl_kube_call(k, method, path, NULL, body, body ? strlen(body) : 0, sync_cb, &s);
	while (!s.done)
		pl_kube_step(k, NULL, 0, -1);
	*status = s.status;
	return 0;
}

static void live_config(void)
{
	struct pl_exec_k8s_opts o;
	char err[1024];

	base_opts(&o, "r-cfg");
	o.load.kubeconfig = path_of("no-such-kubeconfig");
	CHECK(!pl_exec_k8s_new(&o, err, sizeof err) && strstr(err, "kubernetes configuration"),
	      "config: no kubeconfig: %s", err);
	base_opts(&o, "");
	CHECK(!pl_exec_k8s_new(&o, err, sizeof err) && strstr(err, "run id"), "config: no run id: %s", err);
	base_opts(&o, "r-cfg");
	ctl("POST", "/__faults", "{\"method\": \"POST\", \"path\": \"/configmaps\", \"status\": 403, "
	    "\"reason\": \"Forbidden\", \"message\": \"configmaps is forbidden\"}");
	CHECK(!pl_exec_k8s_new(&o, err, sizeof err) && strstr(err, "configmaps is forbidden") &&
	      strstr(err, "plumb-run-r-cfg"), "config: the run's ConfigMap refused: %s", err);
	/* the ConfigMap exists already (a resume): found, same uid */
	struct pl_executor *x = made(&o);
	x->free(x);
	x = made(&o);
	CHECK(x != NULL, "config: a ConfigMap that exists is the run's");
	if (x)
		x->free(x);
}

static void live(const char *scenario, const char *url, const char *tlsdir)
{
	srv = url;
	tls = tlsdir;
	kubeconfig();
	ctl("POST", "/__reset", NULL);
	if (!strcmp(scenario, "codes"))
		live_codes();
	else if (!strcmp(scenario, "gc"))
		live_gc();
	else if (!strcmp(scenario, "outcomes"))
		live_outcomes();
	else if (!strcmp(scenario, "signals"))
		live_signals();
	else if (!strcmp(scenario, "invalid"))
		live_invalid();
	else if (!strcmp(scenario, "adopt"))
		live_adopt();
	else if (!strcmp(scenario, "owner"))
		live_owner();
	else if (!strcmp(scenario, "gone"))
		live_watch("{\"watch\": \"gone\", \"after\": 5}", "gone");
	else if (!strcmp(scenario, "drop"))
		live_watch("{\"watch\": \"drop\", \"after\": 5}", "drop");
	else if (!strcmp(scenario, "watchfail"))
		live_watchfail();
	else if (!strcmp(scenario, "watchtime"))
		live_watchtime();
	else if (!strcmp(scenario, "watchflap"))
		live_watchflap();
	else if (!strcmp(scenario, "watchconn"))
		live_watchconn();
	else if (!strcmp(scenario, "retry"))
		live_retry();
	else if (!strcmp(scenario, "qps"))
		live_qps();
	else if (!strcmp(scenario, "config"))
		live_config();
	else
		CHECK(0, "unknown scenario %s", scenario);
}

/* --- benchmark driver --------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* "latency": N attempts of "true", INFLIGHT at a time, each next one started
 * as soon as one ends; prints the median and p90 of (the server's arrival of
 * a create) - (when the executor acted on the Succeeded event of the attempt
 * whose end started it). "qps": N attempts started at once; prints the rate
 * of the creates' arrivals at the server. */
static int bench(const char *mode, long n, long inflight, double qps, int burst)
{
	struct pl_exec_k8s_opts o;
	struct pl_task t = task("bench");
	static double pred_at[MAXA];	/* by token: the predecessor's Succeeded time */
	static char podname[MAXA][64];
	static long ids[MAXA];	/* by token: the executor's id */
	int latency = !strcmp(mode, "latency");

	if (n >= MAXA - 1)
		n = MAXA - 2;
	base_opts(&o, latency ? "bench-latency" : "bench-qps");
	o.qps = qps;
	o.burst = burst;
	if (!latency)
		o.gc = PL_POD_GC_NEVER;	/* only the creates are measured: no deletes to wait for */
	struct pl_executor *x = made(&o);
	if (!x)
		return 1;
	run_for(x, 0.3);
	long next = 1, ended = 0, failed = 0;
	double t0 = wall();
	while (next <= n && (latency ? next <= inflight : 1)) {
		ids[next] = start(x, &t, next, 1, "true", 0, (int)next, NULL);
		pl_exec_k8s_pod_name(o.run_id, "bench", next, 1, podname[next]);
		pred_at[next] = 0;
		next++;
	}
	while (ended < n && wall() - t0 < 600) {
		struct pollfd p[256];
		struct pl_xdone d[64];
		int ms = 1000, k;
		int nf = x->fds(x, p, 256, &ms);
		poll(p, (nfds_t)nf, ms);
		do {
			k = x->reap(x, d, 64);
			for (int i = 0; i < k; i++) {
				int tok = (int)(intptr_t)d[i].token;
				ended++;
				failed += d[i].code != 0;
				if (latency && next <= n) {
					/* the attempt whose id is the token's ended: its event time */
					double seen = ids[tok] > 0 && ids[tok] < MAXA ? tr[ids[tok]].succeeded_at : 0;
					ids[next] = start(x, &t, next, 1, "true", 0, (int)next, NULL);
					pl_exec_k8s_pod_name(o.run_id, "bench", next, 1, podname[next]);
					pred_at[next] = seen;
					next++;
				}
			}
		} while (k == 64);
	}
	double total = wall() - t0;
	settle(x);
	json_t *cr = creates_logged(), *e;
	size_t i, m = json_array_size(cr);
	if (latency) {
		double *lat = pl_xmalloc((size_t)n * sizeof *lat);
		size_t nl = 0;
		json_array_foreach(cr, i, e) {
			const char *name = json_string_value(json_object_get(e, "name"));
			double at = json_real_value(json_object_get(e, "t"));
			for (long j = inflight + 1; name && j <= n; j++)
				if (!strcmp(podname[j], name) && pred_at[j] > 0) {
					lat[nl++] = (at - pred_at[j]) * 1000;
					break;
				}
		}
		qsort(lat, nl, sizeof *lat, cmp_double);
		printf("attempts %ld failed %ld seconds %.2f pods_per_s %.1f\n", n, failed, total, n / total);
		printf("samples %zu median_ms %.2f p90_ms %.2f max_ms %.2f\n", nl,
		       nl ? lat[nl / 2] : -1, nl ? lat[nl * 9 / 10] : -1, nl ? lat[nl - 1] : -1);
		free(lat);
	} else {
		double first = json_real_value(json_object_get(json_array_get(cr, 0), "t"));
		double last = json_real_value(json_object_get(json_array_get(cr, m - 1), "t"));
		printf("attempts %ld failed %ld seconds %.2f\n", n, failed, total);
		printf("creates %zu rate %.2f qps %.2f\n", m, m > 1 ? (double)(m - 1) / (last - first) : 0, qps);
	}
	json_decref(cr);
	x->free(x);
	return failed != 0 || ended != n;
}

int main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int rc = 0;
	snprintf(tmp, sizeof tmp, "%s/exec-k8s-unit.XXXXXX", base);
	if (!mkdtemp(tmp))
		abort();
	if (argc == 5 && !strcmp(argv[1], "live")) {
		live(argv[2], argv[3], argv[4]);
		rc = done_testing();
	} else if (argc == 9 && !strcmp(argv[1], "bench")) {
		srv = argv[2];
		tls = argv[3];
		kubeconfig();
		ctl("POST", "/__reset", NULL);
		rc = bench(argv[4], atol(argv[5]), atol(argv[6]), atof(argv[7]), atoi(argv[8]));
	} else {
		names();
		manifests();
		rc = done_testing();
	}
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd))
		printf("# could not remove %s\n", tmp);
	return rc;
}
