/* Unit tests for lib/kube.c: kubeconfig merging, in-cluster configuration,
 * exec credential plugins and their cache, the rate limiter, Pod names and
 * timestamps, all with temp files and no server.
 *
 * "kube live SCENARIO URL TLSDIR" drives the client against t/k8s-server.py
 * (t/1100-kube.bats starts it with --tls-dir TLSDIR and the bearer token
 * "secret"): Pods and ConfigMaps, the watch with 410s and dropped streams,
 * Retry-After, the rate limiter, and every way of authenticating. */
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "kube.h"
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

static void put(const char *name, const char *text)
{
	FILE *f = fopen(path_of(name), "w");
	if (!f || fputs(text, f) < 0 || fclose(f))
		abort();
}

static void putx(const char *name, const char *text)
{
	put(name, text);
	chmod(path_of(name), 0755);
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_lines(const char *name)
{
	FILE *f = fopen(path_of(name), "r");
	int n = 0, c;
	if (!f)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static struct pl_kube_config *load(const char *kubeconfig, const char *context, const char *ns,
				   struct pl_kube_err *err)
{
	struct pl_kube_load l = { kubeconfig, context, ns, NULL };
	struct pl_kube_config *c = NULL;
	memset(err, 0, sizeof *err);
	if (pl_kube_config_load(&l, &c, err))
		return NULL;
	return c;
}

/* --- offline ---------------------------------------------------------------------- */

static void merge(void)
{
	struct pl_kube_err err;
	struct pl_kube_config *c;
	char list[2048];

	mkdir(path_of("a"), 0755);
	mkdir(path_of("b"), 0755);
	put("a/config",
	    "apiVersion: v1\nkind: Config\ncurrent-context: first\n"
	    "clusters:\n- name: shared\n  cluster:\n    server: https://a.example:6443/\n"
	    "    certificate-authority: ca.pem\n"
	    "users:\n- name: alice\n  user:\n    token: from-a\n"
	    "- name: files\n  user:\n    client-certificate: certs/me.crt\n    client-key: /abs/me.key\n"
	    "contexts:\n- name: first\n  context:\n    cluster: shared\n    user: alice\n"
	    "    namespace: team-a\n");
	put("b/config",
	    "apiVersion: v1\nkind: Config\ncurrent-context: second\n"
	    "clusters:\n- name: shared\n  cluster:\n    server: https://b.example:6443\n"
	    "- name: only-b\n  cluster:\n    server: https://c.example\n    insecure-skip-tls-verify: true\n"
	    "    certificate-authority-data: aGVsbG8gY2E=\n"
	    "users:\n- name: alice\n  user:\n    token: from-b\n"
	    "- name: bob\n  user:\n    tokenFile: tok\n"
	    "- name: datauser\n  user:\n    client-certificate-data: Y2VydA==\n    client-key-data: a2V5\n"
	    "contexts:\n- name: first\n  context:\n    cluster: only-b\n    user: bob\n"
	    "- name: second\n  context:\n    cluster: only-b\n    user: alice\n"
	    "- name: third\n  context:\n    cluster: shared\n    user: bob\n"
	    "- name: fourth\n  context:\n    cluster: only-b\n    user: datauser\n");

	snprintf(list, sizeof list, "%s:%s:%s", path_of("a/config"), path_of("missing"), path_of("b/config"));
	c = load(list, NULL, NULL, &err);
	CHECK(c != NULL, "merge: two files and a missing one load (%s)", err.message);
	if (!c)
		return;
	CHECK_STR(c->context, "first", "merge: the first file's current-context wins");
	CHECK_STR(c->server, "https://a.example:6443", "merge: the first file's cluster of a name wins, "
		  "trailing '/' dropped");
	CHECK_STR(c->token, "from-a", "merge: the first file's user of a name wins");
	CHECK_STR(c->namespace, "team-a", "merge: the context's namespace");
	CHECK_STR(c->ca_file, path_of("a/ca.pem"), "merge: a relative path is relative to its file");
	pl_kube_config_free(c);

	c = load(list, "third", "override", &err);
	CHECK(c && !strcmp(c->server, "https://a.example:6443") && c->token_file &&
	      !strcmp(c->token_file, path_of("b/tok")) && !strcmp(c->namespace, "override"),
	      "merge: a context from the second file uses the first file's cluster; its user's "
	      "tokenFile is relative to the second; the namespace is overridden");
	pl_kube_config_free(c);

	c = load(list, "fourth", NULL, &err);
	CHECK(c && c->insecure && c->ca_len == 8 && !memcmp(c->ca_data, "hello ca", 8) &&
	      c->cert_len == 4 && !memcmp(c->cert_data, "cert", 4) && c->key_len == 3 &&
	      !strcmp(c->namespace, "default"),
	      "merge: insecure-skip-tls-verify, *-data decoded, namespace defaults to \"default\"");
	pl_kube_config_free(c);

	snprintf(list, sizeof list, "%s:%s", path_of("b/config"), path_of("a/config"));
	c = load(list, NULL, NULL, &err);
	CHECK(c && !strcmp(c->context, "second") && !strcmp(c->server, "https://c.example") &&
	      !strcmp(c->token, "from-b"), "merge: the other order, the other winners");
	pl_kube_config_free(c);
	c = load(list, "first", NULL, &err);
	CHECK(c && !strcmp(c->server, "https://c.example") && c->token_file,
	      "merge: a context of the same name comes whole from the first file that has it");
	pl_kube_config_free(c);

	setenv("KUBECONFIG", list, 1);
	c = load(NULL, NULL, NULL, &err);
	CHECK(c && !strcmp(c->context, "second"), "merge: KUBECONFIG is read when no list is given");
	pl_kube_config_free(c);
	unsetenv("KUBECONFIG");

	c = load(list, "nope", NULL, &err);
	CHECK(!c && !strcmp(err.reason, "ConfigError") && strstr(err.message, "context \"nope\" does not exist"),
	      "merge: an unknown context: %s", err.message);
	c = load(path_of("missing"), NULL, NULL, &err);
	CHECK(!c && strstr(err.message, "none of"), "merge: no file at all is an error: %s", err.message);

	put("bad1", "clusters:\n- name: x\n  cluster: {server: [1, 2]}\n");
	c = load(path_of("bad1"), NULL, NULL, &err);
	CHECK(!c && strstr(err.message, "bad1:3: \"server\" must be a string"), "bad: %s", err.message);
	put("bad2", "current-context: x\nclusters: [\n");
	c = load(path_of("bad2"), NULL, NULL, &err);
	CHECK(!c && strstr(err.message, "bad2:") && strstr(err.message, "kubeconfig"), "bad YAML: %s", err.message);
	put("bad3", "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://x', "
	    "certificate-authority-data: 'not base64!'}\ncontexts:\n- name: x\n  context: {cluster: c}\n");
	c = load(path_of("bad3"), NULL, NULL, &err);
	CHECK(!c && strstr(err.message, "certificate-authority-data of \"c\" is not base64"), "bad: %s", err.message);
	put("bad4", "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://x'}\n"
	    "users:\n- name: u\n  user: {client-certificate: /a.crt}\ncontexts:\n- name: x\n"
	    "  context: {cluster: c, user: u}\n");
	c = load(path_of("bad4"), NULL, NULL, &err);
	CHECK(!c && strstr(err.message, "without a key"), "a certificate needs its key: %s", err.message);
	put("bad5", "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://x'}\n"
	    "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
	    "      command: get-token\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n");
	c = load(path_of("bad5"), NULL, NULL, &err);
	CHECK(!c && strstr(err.message, "interactiveMode must be specified for user \"u\""),
	      "exec v1 needs interactiveMode: %s", err.message);
	put("bad6", "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://x'}\n"
	    "contexts:\n- name: x\n  context: {cluster: c, user: ghost}\n");
	c = load(path_of("bad6"), NULL, NULL, &err);
	CHECK(!c && strstr(err.message, "user \"ghost\" of context \"x\" does not exist"), "missing user: %s",
	      err.message);

	put("exec.yaml", "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://x'}\n"
	    "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
	    "      command: ./bin/plugin\n      args: [get, --now]\n      env: [{name: A, value: '1'}]\n"
	    "      interactiveMode: Never\n      provideClusterInfo: true\n"
	    "contexts:\n- name: x\n  context: {cluster: c, user: u}\n");
	c = load(path_of("exec.yaml"), NULL, NULL, &err);
	CHECK(c && c->exec && !strcmp(c->exec->command, path_of("bin/plugin")) && c->exec->args[0] &&
	      !strcmp(c->exec->args[1], "--now") && !c->exec->args[2] && !strcmp(c->exec->env[0], "A=1") &&
	      c->exec->provide_cluster_info, "exec: command made relative to the file, args, env");
	pl_kube_config_free(c);
}

static void in_cluster(void)
{
	struct pl_kube_err err;
	struct pl_kube_config *c = NULL;

	mkdir(path_of("sa"), 0755);
	put("sa/token", "sa-token\n");
	put("sa/ca.crt", "pem");
	put("sa/namespace", "jobs\n");
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	CHECK(pl_kube_config_in_cluster(path_of("sa"), NULL, &c, &err) == 0 && c &&
	      !strcmp(c->server, "https://[fd00::1]:443"), "in-cluster: an IPv6 host in brackets");
	CHECK(c && !strcmp(c->namespace, "jobs") && !strcmp(c->token_file, path_of("sa/token")) &&
	      !strcmp(c->ca_file, path_of("sa/ca.crt")) && c->in_cluster,
	      "in-cluster: namespace, token file and CA from the service-account directory");
	pl_kube_config_free(c);
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	CHECK(pl_kube_config_in_cluster(path_of("sa"), "other", &c, &err) == 0 &&
	      !strcmp(c->server, "https://10.0.0.1:443") && !strcmp(c->namespace, "other"),
	      "in-cluster: IPv4, and a namespace override");
	pl_kube_config_free(c);

	/* with no kubeconfig anywhere, the loader falls back to in-cluster */
	char home[600];
	snprintf(home, sizeof home, "%s/emptyhome", tmp);
	mkdir(home, 0755);
	setenv("HOME", home, 1);
	unsetenv("KUBECONFIG");
	struct pl_kube_load l = { NULL, NULL, NULL, path_of("sa") };
	CHECK(pl_kube_config_load(&l, &c, &err) == 0 && c && c->in_cluster, "in-cluster: the loader's fallback");
	pl_kube_config_free(c);
	CHECK(pl_kube_config_in_cluster(path_of("nosuch"), NULL, &c, &err) == PL_EX_USAGE && !c &&
	      strstr(err.message, "nosuch/token"), "in-cluster: no token file: %s", err.message);
	unsetenv("KUBERNETES_SERVICE_HOST");
	CHECK(pl_kube_config_in_cluster(path_of("sa"), NULL, &c, &err) == PL_EX_USAGE &&
	      strstr(err.message, "KUBERNETES_SERVICE_HOST"), "in-cluster: outside a Pod: %s", err.message);
	CHECK(pl_kube_config_load(&l, &c, &err) == PL_EX_USAGE && strstr(err.message, "no kubeconfig"),
	      "no configuration at all: %s", err.message);
}

static void names(void)
{
	char out[PL_KUBE_NAME_MAX + 1], again[PL_KUBE_NAME_MAX + 1];
	const char *ok = "rag-index-embed-0042";
	const char *valid = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
	(void)valid;

	CHECK(pl_kube_name(ok, strlen(ok), out) == 0 && !strcmp(out, ok), "name: a valid name is kept");
	CHECK(pl_kube_name("Rag_Index.embed", 15, out) == 1, "name: an altered name is flagged");
	CHECK(!strncmp(out, "rag-index-embed-", 16) && strlen(out) == 26, "name: cleaned prefix and hash: %s", out);
	pl_kube_name("rag_index.embed", 15, again);
	CHECK(strcmp(out, again) != 0, "name: two strings that clean alike get different names");
	pl_kube_name("Rag_Index.embed", 15, again);
	CHECK_STR(again, out, "name: deterministic");
	char longname[200];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	CHECK(pl_kube_name(longname, strlen(longname), out) == 1 && strlen(out) == 63,
	      "name: a long name is cut to 63 with its hash");
	CHECK(out[62] != '-' && out[0] != '-', "name: starts and ends alphanumeric");
	longname[63] = '\0';
	CHECK(pl_kube_name(longname, 63, out) == 0, "name: 63 characters is still fine");
	memset(longname, 'a', 60);
	memcpy(longname + 50, "-----------------", 13);
	longname[70] = '\0';
	pl_kube_name(longname, 70, out);
	CHECK(!strstr(out, "--") && strlen(out) <= 63, "name: no run of '-' at the cut: %s", out);
	CHECK(pl_kube_name("---", 3, out) == 1 && strlen(out) == 10 && out[0] != '-', "name: nothing left but the hash: %s", out);
	CHECK(pl_kube_name("", 0, out) == 1 && strlen(out) == 10, "name: empty gets a hash");
	CHECK(pl_kube_name("é-task", strlen("é-task"), out) == 1 && !strncmp(out, "task-", 5),
	      "name: non-ASCII dropped: %s", out);
	int all_ok = 1;
	for (const char *p = out; *p; p++)
		all_ok &= (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-';
	CHECK(all_ok, "name: only [a-z0-9-]");
}

static void times(void)
{
	CHECK(pl_kube_time("1970-01-01T00:00:10Z") == 10, "time: Z");
	CHECK(pl_kube_time("2026-11-22T13:00:00.123456789Z") == 1795352400, "time: fractions");
	CHECK(pl_kube_time("2026-11-22T15:00:00+02:00") == 1795352400, "time: an offset");
	CHECK(pl_kube_time("2026-11-22T10:30:00-02:30") == 1795352400, "time: a negative offset");
	CHECK(pl_kube_time("2026-11-22 13:00:00") == -1, "time: no zone is refused");
	CHECK(pl_kube_time("yesterday") == -1, "time: not a time");
	CHECK(pl_kube_time("2026-13-01T00:00:00Z") == -1, "time: month 13");
}

#define EXEC_KC \
	"current-context: x\nclusters:\n- name: c\n  cluster: {server: '%s', %s}\n" \
	"users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n" \
	"      command: %s\n      interactiveMode: IfAvailable\n      provideClusterInfo: true\n" \
	"      env: [{name: PLUGIN_DIR, value: '%s'}]\n" \
	"contexts:\n- name: x\n  context: {cluster: c, user: u}\n"

/* An exec plugin that counts its runs, keeps its KUBERNETES_EXEC_INFO, and
 * answers with the token in $PLUGIN_DIR/plugin-token, expiring in
 * $PLUGIN_DIR/plugin-ttl seconds (none when the file is empty). */
static void write_plugin(void)
{
	putx("plugin",
	     "#!/bin/sh\n"
	     "echo run >> \"$PLUGIN_DIR/plugin-runs\"\n"
	     "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$PLUGIN_DIR/plugin-info\"\n"
	     "tok=$(cat \"$PLUGIN_DIR/plugin-token\")\n"
	     "ttl=$(cat \"$PLUGIN_DIR/plugin-ttl\" 2>/dev/null)\n"
	     "exp=\n"
	     "[ -n \"$ttl\" ] && exp=$(date -u -d \"@$(( $(date +%s) + ttl ))\" +%Y-%m-%dT%H:%M:%SZ)\n"
	     "if [ -n \"$exp\" ]; then\n"
	     "  printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
	     "\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"%s\"}}' \"$tok\" \"$exp\"\n"
	     "else\n"
	     "  printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
	     "\"status\":{\"token\":\"%s\"}}' \"$tok\"\n"
	     "fi\n");
}

static struct pl_kube *exec_client(const char *server, const char *cluster_extra, const char *plugin,
				   struct pl_kube_opts *o, struct pl_kube_err *err)
{
	char kc[4096];
	struct pl_kube_config *c;
	struct pl_kube *k;

	snprintf(kc, sizeof kc, EXEC_KC, server, cluster_extra, plugin, tmp);
	put("exec-kubeconfig", kc);
	c = load(path_of("exec-kubeconfig"), NULL, NULL, err);
	if (!c)
		return NULL;
	k = pl_kube_new(c, o, err);
	pl_kube_config_free(c);
	return k;
}

static void exec_offline(void)
{
	struct pl_kube_err err;
	struct pl_kube_opts o;
	struct pl_kube_stats st;
	json_t *pod = NULL;

	pl_kube_opts_default(&o);
	o.max_tries = 1;
	o.qps = 0;
	write_plugin();
	put("plugin-token", "tok-1");
	put("plugin-ttl", "100");
	unlink(path_of("plugin-runs"));
	/* nothing listens on port 9 of loopback: each request fails at once, after
	 * the credentials were made ready */
	struct pl_kube *k = exec_client("https://127.0.0.1:9", "insecure-skip-tls-verify: true",
					path_of("plugin"), &o, &err);
	CHECK(k != NULL, "exec: a client (%s)", err.message);
	if (!k)
		return;
	for (int i = 0; i < 3; i++)
		pl_kube_pod_get(k, NULL, "p", &pod, &err);
	CHECK(!strcmp(err.reason, "ConnectionError"), "exec: no server: %s", err.message);
	pl_kube_stats(k, &st);
	CHECK(st.exec_runs == 1 && count_lines("plugin-runs") == 1, "exec: one run for three requests before "
	      "it expires (%lu)", st.exec_runs);
	FILE *f = fopen(path_of("plugin-info"), "r");
	char info[1024] = "";
	if (f) {
		if (!fgets(info, sizeof info, f))
			info[0] = '\0';
		fclose(f);
	}
	CHECK(strstr(info, "\"kind\":\"ExecCredential\"") && strstr(info, "\"interactive\":false") &&
	      strstr(info, "\"apiVersion\":\"client.authentication.k8s.io/v1\"") &&
	      strstr(info, "\"server\":\"https://127.0.0.1:9\"") && strstr(info, "\"insecure-skip-tls-verify\":true"),
	      "exec: KUBERNETES_EXEC_INFO with the spec and, asked for, the cluster: %s", info);
	pl_kube_free(k);

	put("plugin-ttl", "-5");	/* expired as it is made */
	unlink(path_of("plugin-runs"));
	k = exec_client("https://127.0.0.1:9", "insecure-skip-tls-verify: true", path_of("plugin"), &o, &err);
	for (int i = 0; i < 3; i++)
		pl_kube_pod_get(k, NULL, "p", &pod, &err);
	pl_kube_stats(k, &st);
	CHECK(st.exec_runs == 3, "exec: an expired credential is made again for every request (%lu)", st.exec_runs);
	pl_kube_free(k);

	put("plugin-ttl", "");
	unlink(path_of("plugin-runs"));
	k = exec_client("https://127.0.0.1:9", "insecure-skip-tls-verify: true", path_of("plugin"), &o, &err);
	for (int i = 0; i < 3; i++)
		pl_kube_pod_get(k, NULL, "p", &pod, &err);
	pl_kube_stats(k, &st);
	CHECK(st.exec_runs == 1, "exec: without expirationTimestamp it is kept (%lu)", st.exec_runs);
	pl_kube_free(k);

	putx("badplugin", "#!/bin/sh\necho 'token service down' >&2\nexit 3\n");
	k = exec_client("https://127.0.0.1:9", "insecure-skip-tls-verify: true", path_of("badplugin"), &o, &err);
	CHECK(pl_kube_pod_get(k, NULL, "p", &pod, &err) == PL_EX_USAGE && !strcmp(err.reason, "ExecError") &&
	      strstr(err.message, "exit status 3") && strstr(err.message, "token service down"),
	      "exec: a failing plugin, with its stderr: %s", err.message);
	pl_kube_free(k);
	putx("badplugin", "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
	     "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"x\"}}'\n");
	k = exec_client("https://127.0.0.1:9", "insecure-skip-tls-verify: true", path_of("badplugin"), &o, &err);
	CHECK(pl_kube_pod_get(k, NULL, "p", &pod, &err) && strstr(err.message, "apiVersion"),
	      "exec: a reply of another apiVersion: %s", err.message);
	pl_kube_free(k);
	putx("badplugin", "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
	     "\"kind\":\"ExecCredential\",\"status\":{}}'\n");
	k = exec_client("https://127.0.0.1:9", "insecure-skip-tls-verify: true", path_of("badplugin"), &o, &err);
	CHECK(pl_kube_pod_get(k, NULL, "p", &pod, &err) && strstr(err.message, "neither a token nor"),
	      "exec: a reply without credentials: %s", err.message);
	pl_kube_free(k);
	k = exec_client("https://127.0.0.1:9", "insecure-skip-tls-verify: true", "/no/such/plugin", &o, &err);
	CHECK(pl_kube_pod_get(k, NULL, "p", &pod, &err) && strstr(err.message, "cannot run \"/no/such/plugin\""),
	      "exec: a plugin that is not there: %s", err.message);
	pl_kube_free(k);
}

static int calls_done;

static void count_cb(void *ud, const struct pl_kube_resp *r)
{
	calls_done++;
}

static void limiter(void)
{
	struct pl_kube_config c = { 0 };
	struct pl_kube_opts o;
	struct pl_kube_err err;
	struct pl_kube_stats st;

	pl_kube_opts_default(&o);
	o.qps = 50;
	o.burst = 5;
	o.max_tries = 1;
	c.server = "http://127.0.0.1:9";
	c.namespace = "default";
	struct pl_kube *k = pl_kube_new(&c, &o, &err);
	double t0 = mono();
	for (int i = 0; i < 30; i++)
		pl_kube_call(k, "GET", "/api/v1/namespaces/default/pods", NULL, NULL, 0, count_cb, NULL);
	while (pl_kube_step(k, NULL, 0, -1) > 0)
		;
	double dt = mono() - t0;
	pl_kube_stats(k, &st);
	/* 5 at once from the burst, then 25 at 50 a second: 0.5 s */
	CHECK(calls_done == 30 && dt > 0.45 && dt < 0.7, "limiter: 30 requests at qps 50, burst 5 take %.3f s", dt);
	CHECK(st.rate_waits == 25, "limiter: 25 of them waited (%lu)", st.rate_waits);
	pl_kube_free(k);

	c.server = "ftp://x";
	CHECK(pl_kube_new(&c, &o, &err) == NULL && strstr(err.message, "not an https://"), "a server URL that is not http(s)");

	/* the caller's descriptors wake pl_kube_step */
	int p[2];
	if (pipe(p))
		abort();
	c.server = "http://127.0.0.1:9";
	k = pl_kube_new(&c, &o, &err);
	struct pollfd pf = { p[0], POLLIN, 0 };
	t0 = mono();
	if (write(p[1], "x", 1) != 1)
		abort();
	pl_kube_step(k, &pf, 1, 5000);
	CHECK((pf.revents & POLLIN) && mono() - t0 < 1, "step: returns when the caller's descriptor is ready");
	pf.revents = 0;
	char ch;
	if (read(p[0], &ch, 1) != 1)
		abort();
	t0 = mono();
	pl_kube_step(k, &pf, 1, 200);
	CHECK(!pf.revents && mono() - t0 >= 0.19, "step: and waits the timeout when nothing happens");
	close(p[0]);
	close(p[1]);
	pl_kube_free(k);
}

/* --- live ---------------------------------------------------------------------------- */

static const char *srv, *tls;

static const char *tlsf(const char *f)
{
	static char p[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof p[i], "%s/%s", tls, f);
	return p[i];
}

static void ctl(const char *method, const char *path, const char *body)
{
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "curl -sf -k -X %s %s%s%s%s '%s%s' >/dev/null", method,
		 body ? "-H 'Content-Type: application/json' -d '" : "", body ? body : "", body ? "'" : "", "",
		 srv, path);
	if (system(cmd) != 0) {
		printf("# control request failed: %s\n", cmd);
		abort();
	}
}

/* A client from a kubeconfig whose user is the given YAML (indented by 4). */
static struct pl_kube *client(const char *user_yaml, const char *cluster_yaml, struct pl_kube_opts *o)
{
	char kc[8192];
	struct pl_kube_err err;
	struct pl_kube_config *c;
	struct pl_kube *k;
	struct pl_kube_opts def;

	if (!o) {
		pl_kube_opts_default(&def);
		def.backoff_ms = 20;
		o = &def;
	}
	snprintf(kc, sizeof kc, "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n"
		 "  cluster:\n    server: %s\n%s\nusers:\n- name: me\n  user:\n%s\ncontexts:\n- name: test\n"
		 "  context: {cluster: test, user: me, namespace: unit}\n", srv,
		 cluster_yaml ? cluster_yaml : "", user_yaml);
	put("live-kubeconfig", kc);
	c = load(path_of("live-kubeconfig"), NULL, NULL, &err);
	if (!c) {
		printf("# kubeconfig: %s\n", err.message);
		return NULL;
	}
	k = pl_kube_new(c, o, &err);
	pl_kube_config_free(c);
	return k;
}

static char ca_yaml[1024], cert_yaml[1024];

static json_t *pod_manifest(const char *name, const char *app, const char *cmd)
{
	json_t *p = json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s}}, s:{s:s, s:[{s:s, s:s, s:[s, s, s]}]}}",
			      "apiVersion", "v1", "kind", "Pod",
			      "metadata", "name", name, "labels", "app", app, "plumb.dev/run", "r1",
			      "spec", "restartPolicy", "Never", "containers", "name", "main", "image", "plumb:test",
			      "command", "sh", "-c", cmd);
	return p;
}

static const char *phase(json_t *pod)
{
	const char *s = json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
	return s ? s : "";
}

static void live_crud(void)
{
	struct pl_kube_err err;
	json_t *out = NULL, *p;
	struct pl_buf log = PL_BUF_INIT;
	int rc;

	struct pl_kube *k = client(cert_yaml, ca_yaml, NULL);
	CHECK(k != NULL, "crud: a client with a client certificate");
	if (!k)
		return;
	p = pod_manifest("hello-1", "a", "echo hello $POD; echo oops >&2");
	json_array_append_new(json_object_get(json_array_get(json_object_get(json_object_get(p, "spec"),
		"containers"), 0), "command"), json_string(""));
	json_object_set_new(json_array_get(json_object_get(json_object_get(p, "spec"), "containers"), 0), "env",
			    json_pack("[{s:s, s:{s:{s:s}}}]", "name", "POD", "valueFrom", "fieldRef", "fieldPath",
				      "metadata.name"));
	rc = pl_kube_pod_create(k, NULL, p, &out, &err);
	CHECK(rc == 0 && out && json_string_value(json_object_get(json_object_get(out, "metadata"), "uid")),
	      "crud: create a Pod, the server's object comes back (%s)", rc ? err.message : "ok");
	json_decref(out);
	rc = pl_kube_pod_create(k, NULL, p, &out, &err);
	CHECK(rc == PL_EX_DATAERR && err.status == 409 && !strcmp(err.reason, "AlreadyExists") &&
	      !strcmp(err.message, "pods \"hello-1\" already exists"), "crud: again: 409 AlreadyExists: %s", err.message);
	json_decref(p);
	for (int i = 2; i <= 3; i++) {
		char name[32];
		snprintf(name, sizeof name, "hello-%d", i);
		p = pod_manifest(name, i == 2 ? "a" : "b", "exit 0");
		rc = pl_kube_pod_create(k, NULL, p, NULL, &err);
		json_decref(p);
	}
	double t0 = mono();
	do {
		json_decref(out);
		out = NULL;
		pl_kube_pod_get(k, NULL, "hello-1", &out, &err);
	} while (strcmp(phase(out), "Succeeded") && mono() - t0 < 10 && !usleep(20000));
	CHECK_STR(phase(out), "Succeeded", "crud: get: the Pod ran and Succeeded");
	json_decref(out);
	rc = pl_kube_pod_log(k, NULL, "hello-1", NULL, &log, &err);
	CHECK(rc == 0 && strstr(pl_buf_cstr(&log), "hello hello-1") && strstr(pl_buf_cstr(&log), "oops"),
	      "crud: its log, stdout and stderr, env from fieldRef: %s", pl_buf_cstr(&log));
	rc = pl_kube_pod_list(k, NULL, "app=a", &out, &err);
	CHECK(rc == 0 && json_array_size(json_object_get(out, "items")) == 2, "crud: list with app=a: 2 Pods");
	json_decref(out);
	rc = pl_kube_pod_list(k, NULL, "app in (a,b),plumb.dev/run=r1", &out, &err);
	CHECK(rc == 0 && json_array_size(json_object_get(out, "items")) == 3, "crud: list with in and =: 3 Pods");
	json_decref(out);
	rc = pl_kube_pod_list(k, NULL, "app notin (a)", &out, &err);
	CHECK(rc == 0 && json_array_size(json_object_get(out, "items")) == 1, "crud: list with notin: 1 Pod");
	json_decref(out);
	rc = pl_kube_pod_list(k, NULL, "app=(", &out, &err);
	CHECK(rc == PL_EX_DATAERR && err.status == 400, "crud: a bad selector is a 400: %s", err.message);
	CHECK(pl_kube_pod_delete(k, NULL, "hello-1", -1, &err) == 0, "crud: delete");
	rc = pl_kube_pod_get(k, NULL, "hello-1", &out, &err);
	CHECK(rc == PL_EX_DATAERR && err.status == 404 && !strcmp(err.reason, "NotFound") &&
	      !strcmp(err.message, "pods \"hello-1\" not found"), "crud: then 404 NotFound: %s", err.message);
	CHECK(pl_kube_pod_delete(k, NULL, "hello-1", -1, &err) && err.status == 404, "crud: delete twice: 404");

	p = pod_manifest("Bad_Name", "a", "true");
	json_object_set_new(json_object_get(p, "spec"), "restartPolicy", json_string("Sometimes"));
	rc = pl_kube_pod_create(k, NULL, p, NULL, &err);
	CHECK(rc == PL_EX_DATAERR && err.status == 422 && !strcmp(err.reason, "Invalid") &&
	      strstr(err.message, "Pod \"Bad_Name\" is invalid") && strstr(err.message, "spec.restartPolicy"),
	      "crud: an invalid Pod: 422 Invalid: %.120s", err.message);
	json_decref(p);
	p = pod_manifest("strict", "a", "true");
	json_object_set_new(json_object_get(p, "spec"), "restartPolicyy", json_string("Never"));
	rc = pl_kube_pod_create(k, NULL, p, NULL, &err);
	CHECK(rc == PL_EX_DATAERR && err.status == 400 && strstr(err.message, "unknown field \"spec.restartPolicyy\""),
	      "crud: creates ask fieldValidation=Strict, so a typo is refused: %s", err.message);
	json_decref(p);

	/* a ConfigMap that owns the run's Pods */
	json_t *cm = json_pack("{s:{s:s}, s:{s:s}}", "metadata", "name", "run-r1", "data", "k", "v");
	rc = pl_kube_configmap_create(k, NULL, cm, &out, &err);
	json_decref(cm);
	CHECK(rc == 0, "crud: create a ConfigMap (%s)", rc ? err.message : "ok");
	const char *uid = json_string_value(json_object_get(json_object_get(out, "metadata"), "uid"));
	for (int i = 0; i < 2; i++) {
		char name[32];
		snprintf(name, sizeof name, "owned-%d", i);
		p = pod_manifest(name, "owned", "sleep 30");
		json_object_set_new(json_object_get(p, "metadata"), "ownerReferences",
				    json_pack("[{s:s, s:s, s:s, s:s}]", "apiVersion", "v1", "kind", "ConfigMap",
					      "name", "run-r1", "uid", uid));
		rc = pl_kube_pod_create(k, NULL, p, NULL, &err);
		json_decref(p);
	}
	json_decref(out);
	CHECK(pl_kube_configmap_get(k, NULL, "run-r1", &out, &err) == 0 &&
	      !strcmp(json_string_value(json_object_get(json_object_get(out, "data"), "k")), "v"), "crud: get it");
	json_decref(out);
	CHECK(pl_kube_configmap_delete(k, NULL, "run-r1", &err) == 0, "crud: delete it");
	t0 = mono();
	size_t left;
	do {
		pl_kube_pod_list(k, NULL, "app=owned", &out, &err);
		left = json_array_size(json_object_get(out, "items"));
		json_decref(out);
	} while (left && mono() - t0 < 10 && !usleep(50000));
	CHECK(left == 0, "crud: and its Pods are collected (after SIGTERM) in %.2f s", mono() - t0);
	CHECK(pl_kube_configmap_get(k, NULL, "run-r1", &out, &err) && err.status == 404,
	      "crud: the ConfigMap is gone: %s", err.message);
	pl_buf_free(&log);
	pl_kube_free(k);
}

struct seen {
	int added, modified, deleted, synced, gone, errors, bookmarks;
	char done[64][64];	/* names seen Succeeded */
	int ndone;
	double last_event;
};

static void on_event(void *ud, const struct pl_kube_event *ev)
{
	struct seen *s = ud;
	s->last_event = mono();
	switch (ev->type) {
	case PL_KUBE_ADDED: s->added++; break;
	case PL_KUBE_MODIFIED: s->modified++; break;
	case PL_KUBE_DELETED: s->deleted++; break;
	case PL_KUBE_SYNCED: s->synced++; break;
	case PL_KUBE_GONE: s->gone++; break;
	case PL_KUBE_BOOKMARK: s->bookmarks++; break;
	case PL_KUBE_WATCH_ERROR:
		s->errors++;
		printf("# watch error: %ld %s: %s\n", ev->err->status, ev->err->reason, ev->err->message);
		break;
	}
	if (ev->obj && ev->name && !strcmp(phase(ev->obj), "Succeeded") && ev->type != PL_KUBE_DELETED) {
		for (int i = 0; i < s->ndone; i++)
			if (!strcmp(s->done[i], ev->name))
				return;
		if (s->ndone < 64)
			snprintf(s->done[s->ndone++], 64, "%s", ev->name);
	}
}

/* Create n Pods named PREFIX-i labelled app=APP that run cmd, then step until
 * the watch has seen every one Succeeded (or 15 s). */
static int run_pods(struct pl_kube *k, struct seen *s, const char *prefix, const char *app, int n,
		    const char *cmd)
{
	struct pl_kube_err err;
	for (int i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof name, "%s-%d", prefix, i);
		json_t *p = pod_manifest(name, app, cmd);
		if (pl_kube_pod_create(k, NULL, p, NULL, &err))
			printf("# create %s: %s\n", name, err.message);
		json_decref(p);
	}
	double t0 = mono();
	int got = 0;
	while (mono() - t0 < 15) {
		got = 0;
		for (int i = 0; i < n; i++) {
			char name[64];
			snprintf(name, sizeof name, "%s-%d", prefix, i);
			for (int j = 0; j < s->ndone; j++)
				got += !strcmp(s->done[j], name);
		}
		if (got == n)
			break;
		pl_kube_step(k, NULL, 0, 100);
	}
	return got;
}

static struct pl_kube *token_client(void)
{
	return client("    token: secret", ca_yaml, NULL);
}

static struct pl_kube_watch *self_w;
static int self_events;

/* frees its own watch at the first event of the kind asked for */
static void free_self(void *ud, const struct pl_kube_event *ev)
{
	self_events++;
	if ((int)ev->type == *(int *)ud && self_w) {
		pl_kube_watch_free(self_w);
		self_w = NULL;
	}
}

static void live_watch(void)
{
	struct seen s = { 0 };
	struct pl_kube_watch_stats ws;
	struct pl_kube *k = token_client();
	struct pl_kube_err err;

	/* one Pod exists before the watch: the list delivers it */
	json_t *p = pod_manifest("before", "w", "true");
	pl_kube_pod_create(k, NULL, p, NULL, &err);
	json_decref(p);
	p = pod_manifest("other-app", "x", "true");
	pl_kube_pod_create(k, NULL, p, NULL, &err);
	json_decref(p);
	struct pl_kube_watch *w = pl_kube_watch_new(k, NULL, "pods", "app=w", on_event, &s);
	double t0 = mono();
	while (!s.synced && mono() - t0 < 5)
		pl_kube_step(k, NULL, 0, 100);
	CHECK(s.synced == 1 && s.added == 1, "watch: the list delivers the existing Pod, then SYNCED");
	int n = run_pods(k, &s, "w", "w", 5, "sleep 0.1");
	CHECK(n >= 5, "watch: 5 Pods seen Succeeded through the watch (%d)", n);
	pl_kube_watch_stats(w, &ws);
	CHECK(ws.lists == 1 && ws.connects == 1 && ws.gone == 0, "watch: one list and one watch (%lu, %lu)",
	      ws.lists, ws.connects);
	CHECK(json_object_size(pl_kube_watch_objects(w)) == 6, "watch: it knows the 6 Pods of app=w only");
	CHECK(atol(pl_kube_watch_rv(w)) > 0, "watch: and a resourceVersion");
	/* a delete comes as a DELETED event */
	pl_kube_pod_delete(k, NULL, "w-0", -1, &err);
	t0 = mono();
	while (!s.deleted && mono() - t0 < 5)
		pl_kube_step(k, NULL, 0, 100);
	CHECK(s.deleted == 1 && !json_object_get(pl_kube_watch_objects(w), "w-0"), "watch: DELETED");

	/* events are delivered as they happen: the Pod writes the time it ends,
	 * and its Succeeded event must come soon after, though each step may
	 * wait up to 3 s */
	char cmd[600];
	snprintf(cmd, sizeof cmd, "sleep 0.3; date +%%s.%%N > '%s'", path_of("ended"));
	p = pod_manifest("prompt", "w", cmd);
	pl_kube_pod_create(k, NULL, p, NULL, &err);
	json_decref(p);
	int before = s.ndone;
	t0 = mono();
	while (strcmp(s.done[s.ndone ? s.ndone - 1 : 0], "prompt") && mono() - t0 < 5)
		pl_kube_step(k, NULL, 0, 3000);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double seen_at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9, ended = 0;
	FILE *f = fopen(path_of("ended"), "r");
	if (!f || fscanf(f, "%lf", &ended) != 1)
		ended = 0;
	if (f)
		fclose(f);
	CHECK(s.ndone > before && !strcmp(s.done[s.ndone - 1], "prompt") && ended > 0 && seen_at - ended < 0.5 &&
	      seen_at >= ended,
	      "watch: a Pod's end reaches the caller %.3f s after it happened", seen_at - ended);

	/* a callback may free its watch: at the end of a list, and in the middle
	 * of a stream (the sanitizer build checks that nothing is touched after) */
	int when = PL_KUBE_SYNCED;
	self_events = 0;
	self_w = pl_kube_watch_new(k, NULL, "pods", "app=w", free_self, &when);
	t0 = mono();
	while (self_w && mono() - t0 < 5)
		pl_kube_step(k, NULL, 0, 100);
	CHECK(!self_w && self_events == 7, "watch: freed by its callback at SYNCED (%d events)", self_events);
	when = PL_KUBE_MODIFIED;
	self_events = 0;
	self_w = pl_kube_watch_new(k, NULL, "pods", "app=w", free_self, &when);
	p = pod_manifest("freer", "w", "true");
	pl_kube_pod_create(k, NULL, p, NULL, &err);
	json_decref(p);
	t0 = mono();
	while (self_w && mono() - t0 < 5)
		pl_kube_step(k, NULL, 0, 100);
	int at_free = self_events;
	t0 = mono();
	while (mono() - t0 < 0.5)
		pl_kube_step(k, NULL, 0, 100);
	CHECK(!self_w && self_events == at_free, "watch: freed by its callback in the middle of a stream, "
	      "no event after (%d)", self_events);

	/* bookmarks, when the server sends them */
	ctl("POST", "/__config", "{\"bookmark_interval\": 0.2}");
	pl_kube_watch_free(w);
	memset(&s, 0, sizeof s);
	w = pl_kube_watch_new(k, NULL, "pods", "app=w", on_event, &s);
	t0 = mono();
	while (s.bookmarks < 2 && mono() - t0 < 5)
		pl_kube_step(k, NULL, 0, 100);
	CHECK(s.bookmarks >= 2, "watch: BOOKMARK events (%d)", s.bookmarks);
	pl_kube_watch_free(w);
	pl_kube_free(k);
}

static void live_gone(void)
{
	struct seen s = { 0 };
	struct pl_kube_watch_stats ws;
	struct pl_kube *k = token_client();

	struct pl_kube_watch *w = pl_kube_watch_new(k, NULL, "pods", "app=g", on_event, &s);
	double t0 = mono();
	while (!s.synced && mono() - t0 < 5)
		pl_kube_step(k, NULL, 0, 100);
	/* after 2 events the server ends the stream with an ERROR 410 */
	ctl("POST", "/__faults", "{\"watch\": \"gone\", \"after\": 2}");
	int n = run_pods(k, &s, "g", "g", 6, "true");
	pl_kube_watch_stats(w, &ws);
	CHECK(s.gone == 1 && ws.gone == 1, "gone: the ERROR 410 event is reported as GONE (%d)", s.gone);
	CHECK(ws.lists == 2 && s.synced == 2, "gone: and a re-list follows (%lu lists)", ws.lists);
	CHECK(n == 6, "gone: no Pod's end is lost across it: all 6 seen Succeeded (%d)", n);
	CHECK(json_object_size(pl_kube_watch_objects(w)) == 6, "gone: the watch knows all 6");

	/* 410 as the HTTP status of the watch request, when the stream is renewed */
	struct pl_kube_err err;
	unsigned long gone0 = ws.gone, lists0 = ws.lists;
	ctl("POST", "/__faults", "{\"query\": \"watch=true\", \"status\": 410}");
	ctl("POST", "/__drop-watches", NULL);
	t0 = mono();
	while (mono() - t0 < 5 && s.synced < 3)
		pl_kube_step(k, NULL, 0, 100);
	pl_kube_watch_stats(w, &ws);
	CHECK(ws.gone == gone0 + 1 && ws.lists == lists0 + 1, "gone: a 410 status on the watch request re-lists too "
	      "(%lu gone, %lu lists)", ws.gone, ws.lists);
	s.ndone = 0;
	n = run_pods(k, &s, "h", "g", 3, "true");
	CHECK(n == 3, "gone: and the watch goes on (%d)", n);

	/* the history is compacted while the stream is down: the reconnect from
	 * the old resourceVersion meets an ERROR 410, and the re-list reports
	 * what happened meanwhile */
	int deleted0 = s.deleted;
	gone0 = ws.gone;
	lists0 = ws.lists;
	ctl("POST", "/__faults", "{\"query\": \"watch=true\", \"delay\": 1}");
	ctl("POST", "/__drop-watches", NULL);
	t0 = mono();
	while (mono() - t0 < 0.3)
		pl_kube_step(k, NULL, 0, 50);
	CHECK(pl_kube_pod_delete(k, NULL, "g-1", 0, &err) == 0, "gone: a Pod deleted while the watch is down");
	ctl("POST", "/__compact", NULL);
	t0 = mono();
	while (mono() - t0 < 5 && s.deleted == deleted0)
		pl_kube_step(k, NULL, 0, 100);
	pl_kube_watch_stats(w, &ws);
	CHECK(ws.gone == gone0 + 1 && ws.lists == lists0 + 1, "gone: the compacted resourceVersion is a 410 and a "
	      "re-list (%lu gone, %lu lists)", ws.gone, ws.lists);
	CHECK(s.deleted == deleted0 + 1 && !json_object_get(pl_kube_watch_objects(w), "g-1"),
	      "gone: the re-list reports the Pod deleted meanwhile as DELETED");
	pl_kube_watch_free(w);
	pl_kube_free(k);
}

static void live_drop(void)
{
	struct seen s = { 0 };
	struct pl_kube_watch_stats ws;
	struct pl_kube *k = token_client();

	struct pl_kube_watch *w = pl_kube_watch_new(k, NULL, "pods", "app=d", on_event, &s);
	double t0 = mono();
	while (!s.synced && mono() - t0 < 5)
		pl_kube_step(k, NULL, 0, 100);
	ctl("POST", "/__faults", "{\"watch\": \"drop\", \"after\": 3}");
	int n = run_pods(k, &s, "d", "d", 5, "true");
	pl_kube_watch_stats(w, &ws);
	CHECK(n == 5, "drop: every Pod seen Succeeded (%d)", n);
	CHECK(ws.connects >= 2 && ws.lists == 1 && s.gone == 0,
	      "drop: a dropped stream reconnects from its resourceVersion without a re-list (%lu connects, %lu lists)",
	      ws.connects, ws.lists);
	CHECK(s.errors == 0, "drop: one drop is routine, not an error");
	pl_kube_watch_free(w);

	/* a server that ends the watch (timeoutSeconds) is rejoined as well */
	struct pl_kube_opts o;
	pl_kube_opts_default(&o);
	o.watch_timeout_s = 1;
	pl_kube_free(k);
	k = client("    token: secret", ca_yaml, &o);
	memset(&s, 0, sizeof s);
	w = pl_kube_watch_new(k, NULL, "pods", "app=d2", on_event, &s);
	t0 = mono();
	while (mono() - t0 < 2.5)
		pl_kube_step(k, NULL, 0, 100);
	n = run_pods(k, &s, "e", "d2", 2, "true");
	pl_kube_watch_stats(w, &ws);
	CHECK(ws.connects >= 3 && ws.lists == 1 && n == 2, "drop: watches that time out are renewed (%lu connects)",
	      ws.connects);
	pl_kube_watch_free(w);
	pl_kube_free(k);
}

static void live_retry(void)
{
	struct pl_kube_err err;
	struct pl_kube_stats st;
	json_t *out = NULL;
	struct pl_kube_opts o;

	pl_kube_opts_default(&o);
	o.backoff_ms = 50;
	struct pl_kube *k = client("    token: secret", ca_yaml, &o);
	json_t *p = pod_manifest("r-1", "r", "true");
	pl_kube_pod_create(k, NULL, p, NULL, &err);
	json_decref(p);
	ctl("POST", "/__faults", "{\"method\": \"GET\", \"path\": \"/pods/r-1\", \"status\": 429, \"retry_after\": 1}");
	double t0 = mono();
	int rc = pl_kube_pod_get(k, NULL, "r-1", &out, &err);
	double dt = mono() - t0;
	pl_kube_stats(k, &st);
	CHECK(rc == 0 && dt >= 0.95 && dt < 2 && st.retries == 1, "retry: a 429 waits its Retry-After of 1 s (%.2f s)", dt);
	json_decref(out);
	ctl("POST", "/__faults", "{\"method\": \"GET\", \"path\": \"/pods/r-1\", \"status\": 500, \"times\": 2}");
	rc = pl_kube_pod_get(k, NULL, "r-1", &out, &err);
	pl_kube_stats(k, &st);
	CHECK(rc == 0 && st.retries == 3, "retry: 500s are retried with backoff (%lu retries)", st.retries);
	json_decref(out);
	ctl("POST", "/__faults", "{\"method\": \"GET\", \"path\": \"/pods/r-1\", \"status\": 503, \"times\": 0}");
	rc = pl_kube_pod_get(k, NULL, "r-1", &out, &err);
	CHECK(rc == PL_EX_TEMPFAIL && err.status == 503 && err.tries == 5,
	      "retry: tries are bounded (%d), then 503 is temporary: %s", err.tries, err.message);
	ctl("DELETE", "/__faults", NULL);
	ctl("POST", "/__faults", "{\"method\": \"GET\", \"path\": \"/pods/r-1\", \"drop\": true}");
	rc = pl_kube_pod_get(k, NULL, "r-1", &out, &err);
	CHECK(rc == 0, "retry: a dropped connection is retried");
	json_decref(out);
	ctl("POST", "/__faults", "{\"method\": \"POST\", \"path\": \"/pods\", \"status\": 409}");
	p = pod_manifest("r-2", "r", "true");
	rc = pl_kube_pod_create(k, NULL, p, NULL, &err);
	CHECK(rc == PL_EX_DATAERR && err.status == 409 && !strcmp(err.reason, "AlreadyExists"),
	      "retry: a 409 on create is not retried, it says AlreadyExists");
	json_decref(p);
	pl_kube_free(k);
}

static int created_ok;

static void created(void *ud, const struct pl_kube_resp *r)
{
	created_ok += r->err == NULL;
	if (r->err)
		printf("# create: %s\n", r->err->message);
}

static void live_qps(void)
{
	struct pl_kube_opts o;
	pl_kube_opts_default(&o);
	o.qps = 20;
	o.burst = 1;
	struct pl_kube *k = client("    token: secret", ca_yaml, &o);
	const int n = 41;
	double t0 = mono();
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "q-%d", i);
		json_t *p = json_pack("{s:{s:s}, s:{s:s, s:[{s:s, s:s}]}}", "metadata", "name", name,
				      "spec", "restartPolicy", "Never", "containers", "name", "c", "image", "x");
		pl_kube_pod_create_async(k, NULL, p, created, NULL);
		json_decref(p);
	}
	while (pl_kube_pending(k))
		pl_kube_step(k, NULL, 0, -1);
	double dt = mono() - t0, rate = (n - 1) / dt;
	CHECK(created_ok == n, "qps: %d Pods created", created_ok);
	CHECK(fabs(rate - 20) <= 2, "qps: at %.2f a second against a limit of 20 (within 10%%)", rate);
	printf("# qps: %d creates in %.3f s\n", n, dt);
	pl_kube_free(k);
}

static void live_auth(void)
{
	struct pl_kube_err err;
	struct pl_kube_stats st;
	json_t *out = NULL;
	struct pl_kube *k;
	char y[4096];
	int rc;

	k = client("    token: wrong", ca_yaml, NULL);
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	CHECK(rc == PL_EX_USAGE && err.status == 401 && !strcmp(err.reason, "Unauthorized"),
	      "auth: a wrong token: 401 Unauthorized, a configuration error");
	pl_kube_free(k);
	k = client("    {}", ca_yaml, NULL);
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	CHECK(rc == PL_EX_USAGE && err.status == 401, "auth: no credentials at all: 401");
	pl_kube_free(k);

	/* data forms of the CA and the client certificate */
	snprintf(y, sizeof y, "    client-certificate-data: %s\n    client-key-data: %s", getenv("CLIENT_CRT_B64"),
		 getenv("CLIENT_KEY_B64"));
	char cay[4096];
	snprintf(cay, sizeof cay, "    certificate-authority-data: %s", getenv("CA_B64"));
	k = client(y, cay, NULL);
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	CHECK(rc == 0, "auth: certificate-authority-data and client-certificate-data (%s)", rc ? err.message : "ok");
	json_decref(out);
	pl_kube_free(k);

	/* TLS that must fail */
	snprintf(cay, sizeof cay, "    certificate-authority: %s", tlsf("other-ca.crt"));
	k = client("    token: secret", cay, NULL);
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	CHECK(rc == PL_EX_USAGE && !strcmp(err.reason, "TLSError") && err.tries == 1,
	      "auth: a server certificate from another CA is refused at once: %s", err.message);
	pl_kube_free(k);
	k = client("    token: secret", "    insecure-skip-tls-verify: true", NULL);
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	CHECK(rc == 0, "auth: unless insecure-skip-tls-verify");
	json_decref(out);
	pl_kube_free(k);
	snprintf(y, sizeof y, "    client-certificate: %s\n    client-key: %s", tlsf("stranger.crt"),
		 tlsf("stranger.key"));
	k = client(y, ca_yaml, NULL);
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	CHECK(rc != 0 && err.status == 0, "auth: a client certificate of another CA is refused: %s", err.message);
	pl_kube_free(k);

	/* a token file: read again at once on a 401 */
	put("tokfile", "t1\n");
	ctl("POST", "/__config", "{\"tokens\": {\"t1\": \"one\", \"secret\": \"admin\"}}");
	struct pl_kube_opts o;
	pl_kube_opts_default(&o);
	snprintf(y, sizeof y, "    tokenFile: %s", path_of("tokfile"));
	k = client(y, ca_yaml, &o);
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	json_decref(out);
	CHECK(rc == 0, "auth: tokenFile (%s)", rc ? err.message : "ok");
	put("tokfile", "t2\n");
	ctl("POST", "/__config", "{\"tokens\": {\"t2\": \"two\"}}");
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	json_decref(out);
	pl_kube_stats(k, &st);
	CHECK(rc == 0 && st.token_reads == 2 && st.requests == 3,
	      "auth: a rotated token file is read again after a 401, and the request retried once (%lu reads, %lu requests)",
	      st.token_reads, st.requests);
	pl_kube_free(k);

	/* and read again once older than token_reload_ms, without a 401 */
	o.token_reload_ms = 300;
	k = client(y, ca_yaml, &o);
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	json_decref(out);
	put("tokfile", "t3\n");
	ctl("POST", "/__config", "{\"tokens\": {\"t2\": \"two\", \"t3\": \"three\"}}");
	rc |= pl_kube_pod_list(k, NULL, NULL, &out, &err);
	json_decref(out);
	pl_kube_stats(k, &st);
	CHECK(rc == 0 && st.token_reads == 1, "auth: not before (%lu reads)", st.token_reads);
	usleep(350000);
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	json_decref(out);
	pl_kube_stats(k, &st);
	CHECK(rc == 0 && st.token_reads == 2 && st.requests == 3,
	      "auth: re-read once older than token_reload_ms (%lu reads, %lu requests)", st.token_reads, st.requests);
	pl_kube_free(k);
}

static void live_incluster(void)
{
	struct pl_kube_err err;
	struct pl_kube *k = NULL;
	json_t *out = NULL;
	char cmd[1200];
	int rc;

	mkdir(path_of("sa"), 0755);
	put("sa/token", "secret\n");
	put("sa/namespace", "in-pod\n");
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", tlsf("ca.crt"), path_of("sa/ca.crt"));
	if (system(cmd))
		abort();
	struct pl_kube_config *c = NULL;
	rc = pl_kube_config_in_cluster(path_of("sa"), NULL, &c, &err);
	CHECK(rc == 0, "in-cluster: configuration for %s (%s)", c ? c->server : "?", rc ? err.message : "ok");
	k = rc ? NULL : pl_kube_new(c, NULL, &err);
	pl_kube_config_free(c);
	json_t *p = pod_manifest("in-cluster", "ic", "true");
	rc = k ? pl_kube_pod_create(k, NULL, p, &out, &err) : -1;
	CHECK(rc == 0 && !strcmp(json_string_value(json_object_get(json_object_get(out, "metadata"), "namespace")),
				 "in-pod"), "in-cluster: token, CA and namespace from the service-account files (%s)",
	      rc ? err.message : "ok");
	json_decref(out);
	json_decref(p);
	pl_kube_free(k);
}

static void live_exec(void)
{
	struct pl_kube_err err;
	struct pl_kube_stats st;
	struct pl_kube_opts o;
	json_t *out = NULL;
	int rc;

	write_plugin();
	put("plugin-token", "e1");
	put("plugin-ttl", "2");
	unlink(path_of("plugin-runs"));
	ctl("POST", "/__config", "{\"tokens\": {\"e1\": \"exec-one\", \"e2\": \"exec-two\"}}");
	pl_kube_opts_default(&o);
	char cay[600];
	snprintf(cay, sizeof cay, "certificate-authority: '%s'", tlsf("ca.crt"));
	struct pl_kube *k = exec_client(srv, cay, path_of("plugin"), &o, &err);
	CHECK(k != NULL, "exec: a client (%s)", err.message);
	if (!k)
		return;
	int ok = 0;
	for (int i = 0; i < 5; i++) {
		rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
		ok += rc == 0;
		json_decref(out);
	}
	pl_kube_stats(k, &st);
	CHECK(ok == 5 && st.exec_runs == 1 && count_lines("plugin-runs") == 1,
	      "exec: 5 requests, one plugin run (%lu) while the credential lives", st.exec_runs);
	usleep(2100000);
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	json_decref(out);
	pl_kube_stats(k, &st);
	CHECK(rc == 0 && st.exec_runs == 2, "exec: run again once expirationTimestamp passed (%lu)", st.exec_runs);
	/* the server stops taking e1 before it expires: the 401 runs the plugin again */
	put("plugin-ttl", "600");
	put("plugin-token", "e2");
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	json_decref(out);
	ctl("POST", "/__config", "{\"tokens\": {\"e3\": \"exec-three\"}}");
	put("plugin-token", "e3");
	pl_kube_stats(k, &st);
	unsigned long runs = st.exec_runs, reqs = st.requests;
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	json_decref(out);
	pl_kube_stats(k, &st);
	CHECK(rc == 0 && st.exec_runs == runs + 1 && st.requests == reqs + 2,
	      "exec: a 401 runs the plugin again and retries once (%lu runs, %lu requests)", st.exec_runs - runs,
	      st.requests - reqs);
	ctl("POST", "/__config", "{\"tokens\": {}}");
	runs = st.exec_runs;
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	pl_kube_stats(k, &st);
	CHECK(rc == PL_EX_USAGE && err.status == 401 && st.exec_runs == runs + 1,
	      "exec: only once: a second 401 is the answer");
	pl_kube_free(k);

	/* a plugin that answers with a client certificate */
	char script[2048];
	snprintf(script, sizeof script,
		 "#!/bin/sh\npython3 -c 'import json,sys; print(json.dumps({\"apiVersion\": "
		 "\"client.authentication.k8s.io/v1\", \"kind\": \"ExecCredential\", \"status\": "
		 "{\"clientCertificateData\": open(sys.argv[1]).read(), \"clientKeyData\": open(sys.argv[2]).read()}}))' "
		 "'%s' '%s'\n", tlsf("client.crt"), tlsf("client.key"));
	putx("certplugin", script);
	k = exec_client(srv, cay, path_of("certplugin"), &o, &err);
	rc = pl_kube_pod_list(k, NULL, NULL, &out, &err);
	json_decref(out);
	CHECK(rc == 0, "exec: clientCertificateData and clientKeyData from the plugin (%s)", rc ? err.message : "ok");
	pl_kube_free(k);
}

static void live(const char *scenario, const char *url, const char *tlsdir)
{
	srv = url;
	tls = tlsdir;
	snprintf(ca_yaml, sizeof ca_yaml, "    certificate-authority: %s", tlsf("ca.crt"));
	snprintf(cert_yaml, sizeof cert_yaml, "    client-certificate: %s\n    client-key: %s", tlsf("client.crt"),
		 tlsf("client.key"));
	ctl("POST", "/__reset", NULL);
	if (!strcmp(scenario, "crud"))
		live_crud();
	else if (!strcmp(scenario, "watch"))
		live_watch();
	else if (!strcmp(scenario, "gone"))
		live_gone();
	else if (!strcmp(scenario, "drop"))
		live_drop();
	else if (!strcmp(scenario, "retry"))
		live_retry();
	else if (!strcmp(scenario, "qps"))
		live_qps();
	else if (!strcmp(scenario, "auth"))
		live_auth();
	else if (!strcmp(scenario, "exec"))
		live_exec();
	else if (!strcmp(scenario, "incluster"))
		live_incluster();
	else
		CHECK(0, "unknown scenario %s", scenario);
}

int main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmp, sizeof tmp, "%s/kube-unit.XXXXXX", base);
	if (!mkdtemp(tmp))
		abort();
	if (argc == 5 && !strcmp(argv[1], "live")) {
		live(argv[2], argv[3], argv[4]);
	} else {
		merge();
		in_cluster();
		names();
		times();
		exec_offline();
		limiter();
	}
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd))
		printf("# could not remove %s\n", tmp);
	return done_testing();
}
