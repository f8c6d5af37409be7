#include "kube.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>

#include "exitcode.h"
#include "hash.h"

#ifndef PLUMB_VERSION
#define PLUMB_VERSION "0.0.0"
#endif

extern char **environ;

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

static void seterr(struct pl_kube_err *e, long status, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void seterr(struct pl_kube_err *e, long status, const char *reason, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return;
	e->status = status;
	snprintf(e->reason, sizeof e->reason, "%s", reason);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	for (char *p = e->message; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *xstrdup0(const char *s)
{
	return s ? pl_xstrdup(s) : NULL;
}

/* The whole of a file, NUL-terminated (n excludes it); NULL with errno set. */
static char *slurp(const char *path, size_t *n)
{
	struct pl_buf b = PL_BUF_INIT;
	char tmp[8192];
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	while ((r = read(fd, tmp, sizeof tmp)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int saved = errno;
			close(fd);
			pl_buf_free(&b);
			errno = saved;
			return NULL;
		}
		pl_buf_add(&b, tmp, (size_t)r);
	}
	close(fd);
	pl_buf_cstr(&b);
	if (n)
		*n = b.n;
	return b.p ? b.p : pl_xstrdup("");
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	size_t i = strspn(s, " \t\r\n");
	if (i)
		memmove(s, s + i, n - i + 1);
}

/* Standard base64 (kubeconfig's *-data fields) through libcrypto, which the
 * project links already; EVP_DecodeBlock counts padding as output bytes, so
 * those are taken off. */
static unsigned char *b64decode(const char *s, size_t *out_len)
{
	struct pl_buf clean = PL_BUF_INIT;
	for (const char *p = s; *p; p++)
		if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t')
			pl_buf_addc(&clean, *p);
	if (clean.n % 4) {
		pl_buf_free(&clean);
		return NULL;
	}
	unsigned char *out = pl_xmalloc(clean.n / 4 * 3 + 1);
	int n = clean.n ? EVP_DecodeBlock(out, (const unsigned char *)clean.p, (int)clean.n) : 0;
	if (n < 0) {
		free(out);
		pl_buf_free(&clean);
		return NULL;
	}
	if (clean.n >= 1 && clean.p[clean.n - 1] == '=')
		n--;
	if (clean.n >= 2 && clean.p[clean.n - 2] == '=')
		n--;
	out[n] = '\0';
	*out_len = (size_t)n;
	pl_buf_free(&clean);
	return out;
}

static char *b64encode(const unsigned char *p, size_t n)
{
	char *out = pl_xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* Hand-written because none of the allowed libraries parses RFC 3339, and
 * strptime(3) takes neither fractional seconds nor "+hh:mm" offsets. */
time_t pl_kube_time(const char *s)
{
	int Y, M, D, h, m, sec, n = 0;
	struct tm tm;

	if (!s || sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 || !n)
		return -1;
	const char *p = s + n;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om, k = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5)
			return -1;
		off = (oh * 60L + om) * 60L * (*p == '-' ? -1 : 1);
		p += 1 + k;
	} else {
		return -1;
	}
	if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	return timegm(&tm) - off;
}

/* --- kubeconfig -------------------------------------------------------------- */

struct kc_cluster {
	char *name, *server, *ca, *ca_data;
	int insecure;
};

struct kc_user {
	char *name, *token, *token_file, *cert, *key, *cert_data, *key_data;
	struct pl_kube_exec *exec;
};

struct kc_context {
	char *name, *cluster, *user, *ns;
};

struct kc {
	struct kc_cluster *cl;
	struct kc_user *us;
	struct kc_context *cx;
	size_t ncl, nus, ncx;
	char *current;
	struct pl_kube_err *err;
	const char *file;
	char *dir;		/* of the file being read, for relative paths */
};

static void exec_free(struct pl_kube_exec *x)
{
	if (!x)
		return;
	free(x->api_version);
	free(x->command);
	for (char **p = x->args; p && *p; p++)
		free(*p);
	free(x->args);
	for (char **p = x->env; p && *p; p++)
		free(*p);
	free(x->env);
	free(x->interactive_mode);
	free(x->install_hint);
	free(x);
}

static void kc_free(struct kc *c)
{
	for (size_t i = 0; i < c->ncl; i++) {
		free(c->cl[i].name);
		free(c->cl[i].server);
		free(c->cl[i].ca);
		free(c->cl[i].ca_data);
	}
	for (size_t i = 0; i < c->nus; i++) {
		struct kc_user *u = &c->us[i];
		free(u->name);
		free(u->token);
		free(u->token_file);
		free(u->cert);
		free(u->key);
		free(u->cert_data);
		free(u->key_data);
		exec_free(u->exec);
	}
	for (size_t i = 0; i < c->ncx; i++) {
		free(c->cx[i].name);
		free(c->cx[i].cluster);
		free(c->cx[i].user);
		free(c->cx[i].ns);
	}
	free(c->cl);
	free(c->us);
	free(c->cx);
	free(c->current);
	free(c->dir);
}

static yaml_node_t *ynode(yaml_document_t *d, int id)
{
	return yaml_document_get_node(d, id);
}

static yaml_node_t *yget(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = ynode(d, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
			return ynode(d, p->value);
	}
	return NULL;
}

static int ynull(yaml_node_t *n)
{
	if (!n)
		return 1;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	const char *v = (char *)n->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* A string member, or NULL when absent, null or empty (kubectl treats an empty
 * string as unset). A member that is not a scalar is an error (-1). */
static int ystr(struct kc *c, yaml_document_t *d, yaml_node_t *map, const char *key, char **out)
{
	yaml_node_t *n = yget(d, map, key);
	*out = NULL;
	if (ynull(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE) {
		seterr(c->err, 0, "ConfigError", "kubeconfig %s:%zu: \"%s\" must be a string", c->file,
		       n->start_mark.line + 1, key);
		return -1;
	}
	if (*n->data.scalar.value)
		*out = pl_xstrdup((char *)n->data.scalar.value);
	return 0;
}

/* dir/path, without a leading "./" of path; frees path. */
static char *relative_to(const char *dir, char *path)
{
	struct pl_buf b = PL_BUF_INIT;
	const char *p = path;
	char *r;

	while (p[0] == '.' && p[1] == '/')
		p += 2;
	pl_buf_printf(&b, "%s/%s", dir, p);
	r = pl_xstrdup(pl_buf_cstr(&b));
	pl_buf_free(&b);
	free(path);
	return r;
}

/* A path member, made absolute against the kubeconfig's directory. */
static int ypath(struct kc *c, yaml_document_t *d, yaml_node_t *map, const char *key, char **out)
{
	if (ystr(c, d, map, key, out) < 0)
		return -1;
	if (*out && (*out)[0] != '/' && c->dir)
		*out = relative_to(c->dir, *out);
	return 0;
}

static int ybool(yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return 0;
	const char *v = (char *)n->data.scalar.value;
	return !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on");
}

/* The entries of a list of {name: N, KEY: {...}}; calls fn for names not seen. */
typedef int (*kc_entry_fn)(struct kc *c, yaml_document_t *d, const char *name, yaml_node_t *body);

static int kc_seen(struct kc *c, const char *list, const char *name)
{
	if (!strcmp(list, "clusters")) {
		for (size_t i = 0; i < c->ncl; i++)
			if (!strcmp(c->cl[i].name, name))
				return 1;
	} else if (!strcmp(list, "users")) {
		for (size_t i = 0; i < c->nus; i++)
			if (!strcmp(c->us[i].name, name))
				return 1;
	} else {
		for (size_t i = 0; i < c->ncx; i++)
			if (!strcmp(c->cx[i].name, name))
				return 1;
	}
	return 0;
}

static int kc_cluster(struct kc *c, yaml_document_t *d, const char *name, yaml_node_t *b)
{
	struct kc_cluster x = { 0 };
	if (ystr(c, d, b, "server", &x.server) < 0 || ypath(c, d, b, "certificate-authority", &x.ca) < 0 ||
	    ystr(c, d, b, "certificate-authority-data", &x.ca_data) < 0)
		goto bad;
	x.insecure = ybool(yget(d, b, "insecure-skip-tls-verify"));
	x.name = pl_xstrdup(name);
	c->cl = pl_xrealloc(c->cl, (c->ncl + 1) * sizeof *c->cl);
	c->cl[c->ncl++] = x;
	return 0;
bad:
	free(x.server);
	free(x.ca);
	free(x.ca_data);
	return -1;
}

static char **ystrlist(struct kc *c, yaml_document_t *d, yaml_node_t *seq, const char *what)
{
	size_t n = 0;
	char **v;

	if (ynull(seq)) {
		v = pl_xmalloc(sizeof *v);
		v[0] = NULL;
		return v;
	}
	if (seq->type != YAML_SEQUENCE_NODE) {
		seterr(c->err, 0, "ConfigError", "kubeconfig %s:%zu: \"%s\" must be a list", c->file,
		       seq->start_mark.line + 1, what);
		return NULL;
	}
	v = pl_xmalloc(((size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start) + 1) * sizeof *v);
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *e = ynode(d, *it);
		if (!e || e->type != YAML_SCALAR_NODE) {
			seterr(c->err, 0, "ConfigError", "kubeconfig %s:%zu: \"%s\" must be a list of strings",
			       c->file, seq->start_mark.line + 1, what);
			v[n] = NULL;
			for (char **p = v; *p; p++)
				free(*p);
			free(v);
			return NULL;
		}
		v[n++] = pl_xstrdup((char *)e->data.scalar.value);
	}
	v[n] = NULL;
	return v;
}

static struct pl_kube_exec *kc_exec(struct kc *c, yaml_document_t *d, yaml_node_t *x)
{
	struct pl_kube_exec *e = pl_xmalloc(sizeof *e);
	yaml_node_t *env = yget(d, x, "env");
	size_t n = 0;

	memset(e, 0, sizeof *e);
	if (ystr(c, d, x, "apiVersion", &e->api_version) < 0 || ystr(c, d, x, "command", &e->command) < 0 ||
	    ystr(c, d, x, "interactiveMode", &e->interactive_mode) < 0 ||
	    ystr(c, d, x, "installHint", &e->install_hint) < 0)
		goto bad;
	if (!(e->args = ystrlist(c, d, yget(d, x, "args"), "args")))
		goto bad;
	e->provide_cluster_info = ybool(yget(d, x, "provideClusterInfo"));
	if (!e->command) {
		seterr(c->err, 0, "ConfigError", "kubeconfig %s:%zu: exec needs a command", c->file,
		       x->start_mark.line + 1);
		goto bad;
	}
	/* client-go resolves a command given as a relative path with a '/'
	 * against the kubeconfig's directory, and looks a bare name up in PATH */
	if (e->command[0] != '/' && strchr(e->command, '/') && c->dir)
		e->command = relative_to(c->dir, e->command);
	e->env = pl_xmalloc(sizeof(char *));
	e->env[0] = NULL;
	if (!ynull(env)) {
		if (env->type != YAML_SEQUENCE_NODE)
			goto badenv;
		for (yaml_node_item_t *it = env->data.sequence.items.start; it < env->data.sequence.items.top; it++) {
			char *name = NULL, *value = NULL;
			yaml_node_t *kv = ynode(d, *it);
			if (!kv || kv->type != YAML_MAPPING_NODE || ystr(c, d, kv, "name", &name) < 0 ||
			    ystr(c, d, kv, "value", &value) < 0 || !name) {
				free(name);
				free(value);
				goto badenv;
			}
			struct pl_buf b = PL_BUF_INIT;
			pl_buf_printf(&b, "%s=%s", name, value ? value : "");
			e->env = pl_xrealloc(e->env, (n + 2) * sizeof(char *));
			e->env[n++] = pl_xstrdup(pl_buf_cstr(&b));
			e->env[n] = NULL;
			pl_buf_free(&b);
			free(name);
			free(value);
		}
	}
	return e;
badenv:
	seterr(c->err, 0, "ConfigError", "kubeconfig %s:%zu: exec env must be a list of {name, value}",
	       c->file, env->start_mark.line + 1);
bad:
	exec_free(e);
	return NULL;
}

static int kc_user(struct kc *c, yaml_document_t *d, const char *name, yaml_node_t *b)
{
	struct kc_user u = { 0 };
	yaml_node_t *x = yget(d, b, "exec");

	if (ystr(c, d, b, "token", &u.token) < 0 || ypath(c, d, b, "tokenFile", &u.token_file) < 0 ||
	    ypath(c, d, b, "client-certificate", &u.cert) < 0 || ypath(c, d, b, "client-key", &u.key) < 0 ||
	    ystr(c, d, b, "client-certificate-data", &u.cert_data) < 0 ||
	    ystr(c, d, b, "client-key-data", &u.key_data) < 0)
		goto bad;
	if (!ynull(x) && !(u.exec = kc_exec(c, d, x)))
		goto bad;
	u.name = pl_xstrdup(name);
	c->us = pl_xrealloc(c->us, (c->nus + 1) * sizeof *c->us);
	c->us[c->nus++] = u;
	return 0;
bad:
	free(u.token);
	free(u.token_file);
	free(u.cert);
	free(u.key);
	free(u.cert_data);
	free(u.key_data);
	return -1;
}

static int kc_context(struct kc *c, yaml_document_t *d, const char *name, yaml_node_t *b)
{
	struct kc_context x = { 0 };
	if (ystr(c, d, b, "cluster", &x.cluster) < 0 || ystr(c, d, b, "user", &x.user) < 0 ||
	    ystr(c, d, b, "namespace", &x.ns) < 0) {
		free(x.cluster);
		free(x.user);
		free(x.ns);
		return -1;
	}
	x.name = pl_xstrdup(name);
	c->cx = pl_xrealloc(c->cx, (c->ncx + 1) * sizeof *c->cx);
	c->cx[c->ncx++] = x;
	return 0;
}

static int kc_list(struct kc *c, yaml_document_t *d, yaml_node_t *root, const char *list,
		   const char *body_key, kc_entry_fn fn)
{
	yaml_node_t *seq = yget(d, root, list);
	if (ynull(seq))
		return 0;
	if (seq->type != YAML_SEQUENCE_NODE) {
		seterr(c->err, 0, "ConfigError", "kubeconfig %s:%zu: \"%s\" must be a list", c->file,
		       seq->start_mark.line + 1, list);
		return -1;
	}
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *e = ynode(d, *it);
		char *name = NULL;
		if (!e || e->type != YAML_MAPPING_NODE || ystr(c, d, e, "name", &name) < 0 || !name) {
			free(name);
			seterr(c->err, 0, "ConfigError", "kubeconfig %s:%zu: an entry of \"%s\" needs a name",
			       c->file, e ? e->start_mark.line + 1 : 0, list);
			return -1;
		}
		yaml_node_t *b = yget(d, e, body_key);
		int rc = 0;
		if (!kc_seen(c, list, name)) {
			if (!ynull(b) && b->type != YAML_MAPPING_NODE) {
				seterr(c->err, 0, "ConfigError", "kubeconfig %s:%zu: \"%s\" of %s \"%s\" must be a map",
				       c->file, b->start_mark.line + 1, body_key, list, name);
				rc = -1;
			} else {
				rc = fn(c, d, name, b);
			}
		}
		free(name);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Read one kubeconfig file into the merge; 1 if it does not exist. */
static int kc_read(struct kc *c, const char *file)
{
	yaml_parser_t p;
	yaml_document_t d;
	size_t n;
	char *text = slurp(file, &n);
	int rc = -1;

	if (!text) {
		if (errno == ENOENT)
			return 1;
		seterr(c->err, 0, "ConfigError", "kubeconfig %s: %s", file, strerror(errno));
		return -1;
	}
	c->file = file;
	free(c->dir);
	const char *slash = strrchr(file, '/');
	c->dir = slash ? pl_xstrndup(file, slash == file ? 1 : (size_t)(slash - file)) : pl_xstrdup(".");
	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, n);
	if (!yaml_parser_load(&p, &d)) {
		seterr(c->err, 0, "ConfigError", "kubeconfig %s:%zu:%zu: %s", file, p.problem_mark.line + 1,
		       p.problem_mark.column + 1, p.problem ? p.problem : "invalid YAML");
		yaml_parser_delete(&p);
		free(text);
		return -1;
	}
	yaml_node_t *root = yaml_document_get_root_node(&d);
	if (!root || ynull(root)) {
		rc = 0;	/* an empty file adds nothing, as for kubectl */
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		seterr(c->err, 0, "ConfigError", "kubeconfig %s: not a map", file);
		goto out;
	}
	char *cur = NULL;
	if (ystr(c, &d, root, "current-context", &cur) < 0)
		goto out;
	if (!c->current)
		c->current = cur;
	else
		free(cur);
	if (kc_list(c, &d, root, "clusters", "cluster", kc_cluster) < 0 ||
	    kc_list(c, &d, root, "users", "user", kc_user) < 0 ||
	    kc_list(c, &d, root, "contexts", "context", kc_context) < 0)
		goto out;
	rc = 0;
out:
	yaml_document_delete(&d);
	yaml_parser_delete(&p);
	free(text);
	return rc;
}

void pl_kube_config_free(struct pl_kube_config *c)
{
	if (!c)
		return;
	free(c->server);
	free(c->namespace);
	free(c->context);
	free(c->cluster);
	free(c->user);
	free(c->ca_file);
	free(c->ca_data);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_data);
	free(c->key_data);
	free(c->token);
	free(c->token_file);
	exec_free(c->exec);
	free(c);
}

static struct pl_kube_config *config_new(void)
{
	struct pl_kube_config *c = pl_xmalloc(sizeof *c);
	memset(c, 0, sizeof *c);
	return c;
}

static int decode_field(struct pl_kube_err *err, const char *what, const char *name, const char *b64,
			unsigned char **out, size_t *len)
{
	if (!b64)
		return 0;
	if (!(*out = b64decode(b64, len))) {
		seterr(err, 0, "ConfigError", "kubeconfig: %s of \"%s\" is not base64", what, name);
		return -1;
	}
	return 0;
}

static struct pl_kube_exec *exec_dup(const struct pl_kube_exec *x)
{
	struct pl_kube_exec *e;
	size_t n;

	if (!x)
		return NULL;
	e = pl_xmalloc(sizeof *e);
	e->api_version = xstrdup0(x->api_version);
	e->command = xstrdup0(x->command);
	e->interactive_mode = xstrdup0(x->interactive_mode);
	e->install_hint = xstrdup0(x->install_hint);
	e->provide_cluster_info = x->provide_cluster_info;
	for (n = 0; x->args && x->args[n]; n++)
		;
	e->args = pl_xmalloc((n + 1) * sizeof(char *));
	for (size_t i = 0; i < n; i++)
		e->args[i] = pl_xstrdup(x->args[i]);
	e->args[n] = NULL;
	for (n = 0; x->env && x->env[n]; n++)
		;
	e->env = pl_xmalloc((n + 1) * sizeof(char *));
	for (size_t i = 0; i < n; i++)
		e->env[i] = pl_xstrdup(x->env[i]);
	e->env[n] = NULL;
	return e;
}

static int config_from_kc(struct kc *c, const struct pl_kube_load *l, struct pl_kube_config **out,
			  struct pl_kube_err *err)
{
	const char *ctxname = l->context && *l->context ? l->context : c->current;
	struct kc_context *cx = NULL;
	struct kc_cluster *cl = NULL;
	struct kc_user *us = NULL;

	if (!ctxname) {
		seterr(err, 0, "ConfigError", "kubeconfig: no current-context is set and no context was given");
		return PL_EX_USAGE;
	}
	for (size_t i = 0; i < c->ncx; i++)
		if (!strcmp(c->cx[i].name, ctxname))
			cx = &c->cx[i];
	if (!cx) {
		seterr(err, 0, "ConfigError", "kubeconfig: context \"%s\" does not exist", ctxname);
		return PL_EX_USAGE;
	}
	for (size_t i = 0; cx->cluster && i < c->ncl; i++)
		if (!strcmp(c->cl[i].name, cx->cluster))
			cl = &c->cl[i];
	if (!cl) {
		seterr(err, 0, "ConfigError", "kubeconfig: cluster \"%s\" of context \"%s\" does not exist",
		       cx->cluster ? cx->cluster : "", ctxname);
		return PL_EX_USAGE;
	}
	if (!cl->server) {
		seterr(err, 0, "ConfigError", "kubeconfig: cluster \"%s\" has no server", cl->name);
		return PL_EX_USAGE;
	}
	for (size_t i = 0; cx->user && i < c->nus; i++)
		if (!strcmp(c->us[i].name, cx->user))
			us = &c->us[i];
	if (cx->user && !us) {
		seterr(err, 0, "ConfigError", "kubeconfig: user \"%s\" of context \"%s\" does not exist",
		       cx->user, ctxname);
		return PL_EX_USAGE;
	}

	struct pl_kube_config *k = config_new();
	k->server = pl_xstrdup(cl->server);
	size_t sl = strlen(k->server);
	while (sl > 0 && k->server[sl - 1] == '/')
		k->server[--sl] = '\0';
	k->namespace = pl_xstrdup(l->namespace && *l->namespace ? l->namespace : cx->ns ? cx->ns : "default");
	k->context = pl_xstrdup(ctxname);
	k->cluster = pl_xstrdup(cl->name);
	k->user = xstrdup0(cx->user);
	k->insecure = cl->insecure;
	k->ca_file = xstrdup0(cl->ca);
	if (decode_field(err, "certificate-authority-data", cl->name, cl->ca_data, &k->ca_data, &k->ca_len) < 0)
		goto bad;
	if (us) {
		k->token = xstrdup0(us->token);
		k->token_file = xstrdup0(us->token_file);
		k->cert_file = xstrdup0(us->cert);
		k->key_file = xstrdup0(us->key);
		if (decode_field(err, "client-certificate-data", us->name, us->cert_data, &k->cert_data,
				 &k->cert_len) < 0 ||
		    decode_field(err, "client-key-data", us->name, us->key_data, &k->key_data, &k->key_len) < 0)
			goto bad;
		k->exec = exec_dup(us->exec);
	}
	if ((k->cert_file || k->cert_data) != (k->key_file || k->key_data)) {
		seterr(err, 0, "ConfigError", "kubeconfig: user \"%s\" has a client certificate without a key "
		       "or a key without a certificate", us ? us->name : "");
		goto bad;
	}
	if (k->exec) {
		const char *v = k->exec->api_version;
		if (!v || (strcmp(v, "client.authentication.k8s.io/v1") &&
			   strcmp(v, "client.authentication.k8s.io/v1beta1"))) {
			seterr(err, 0, "ConfigError", "kubeconfig: exec plugin of user \"%s\": apiVersion \"%s\" is "
			       "not client.authentication.k8s.io/v1 or v1beta1", us->name, v ? v : "");
			goto bad;
		}
		const char *im = k->exec->interactive_mode;
		if (!im && !strcmp(v, "client.authentication.k8s.io/v1")) {
			seterr(err, 0, "ConfigError", "kubeconfig: interactiveMode must be specified for user \"%s\" "
			       "to use exec authentication plugin", us->name);
			goto bad;
		}
		if (im && strcmp(im, "Never") && strcmp(im, "IfAvailable") && strcmp(im, "Always")) {
			seterr(err, 0, "ConfigError", "kubeconfig: exec plugin of user \"%s\": invalid "
			       "interactiveMode \"%s\"", us->name, im);
			goto bad;
		}
		if (im && !strcmp(im, "Always")) {
			seterr(err, 0, "ConfigError", "kubeconfig: exec plugin of user \"%s\" wants interactiveMode "
			       "Always, and plumb runs it without a terminal", us->name);
			goto bad;
		}
	}
	*out = k;
	return 0;
bad:
	pl_kube_config_free(k);
	return PL_EX_USAGE;
}

int pl_kube_config_in_cluster(const char *sa_dir, const char *namespace, struct pl_kube_config **out,
			      struct pl_kube_err *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	struct pl_buf b = PL_BUF_INIT;
	struct stat st;

	*out = NULL;
	if (!sa_dir)
		sa_dir = SA_DIR;
	if (!host || !*host || !port || !*port) {
		seterr(err, 0, "ConfigError", "not in a cluster: KUBERNETES_SERVICE_HOST and "
		       "KUBERNETES_SERVICE_PORT must be set");
		return PL_EX_USAGE;
	}
	struct pl_kube_config *c = config_new();
	c->in_cluster = 1;
	/* an IPv6 literal needs brackets in a URL (net.JoinHostPort) */
	if (strchr(host, ':') && host[0] != '[')
		pl_buf_printf(&b, "https://[%s]:%s", host, port);
	else
		pl_buf_printf(&b, "https://%s:%s", host, port);
	c->server = pl_xstrdup(pl_buf_cstr(&b));
	b.n = 0;
	pl_buf_printf(&b, "%s/token", sa_dir);
	char *tok = slurp(pl_buf_cstr(&b), NULL);
	if (!tok) {
		seterr(err, 0, "ConfigError", "in-cluster: %s: %s", pl_buf_cstr(&b), strerror(errno));
		goto bad;
	}
	free(tok);
	c->token_file = pl_xstrdup(pl_buf_cstr(&b));
	b.n = 0;
	pl_buf_printf(&b, "%s/ca.crt", sa_dir);
	if (stat(pl_buf_cstr(&b), &st) == 0)
		c->ca_file = pl_xstrdup(pl_buf_cstr(&b));
	b.n = 0;
	pl_buf_printf(&b, "%s/namespace", sa_dir);
	char *ns = slurp(pl_buf_cstr(&b), NULL);
	if (ns)
		trim(ns);
	if (namespace && *namespace) {
		c->namespace = pl_xstrdup(namespace);
		free(ns);
	} else if (ns && *ns) {
		c->namespace = ns;
	} else {
		free(ns);
		c->namespace = pl_xstrdup("default");
	}
	pl_buf_free(&b);
	*out = c;
	return 0;
bad:
	pl_buf_free(&b);
	pl_kube_config_free(c);
	return PL_EX_USAGE;
}

int pl_kube_config_load(const struct pl_kube_load *l, struct pl_kube_config **out, struct pl_kube_err *err)
{
	static const struct pl_kube_load none;
	struct kc c;
	struct pl_buf home = PL_BUF_INIT;
	const char *list;
	int rc = PL_EX_USAGE, found = 0;

	if (!l)
		l = &none;
	*out = NULL;
	memset(&c, 0, sizeof c);
	c.err = err;
	list = l->kubeconfig && *l->kubeconfig ? l->kubeconfig : getenv("KUBECONFIG");
	if (!list || !*list) {
		const char *h = getenv("HOME");
		struct stat st;
		pl_buf_printf(&home, "%s/.kube/config", h ? h : "");
		if (!h || stat(pl_buf_cstr(&home), &st) < 0) {
			const char *host = getenv("KUBERNETES_SERVICE_HOST");
			pl_buf_free(&home);
			if (host && *host)
				return pl_kube_config_in_cluster(l->sa_dir, l->namespace, out, err);
			seterr(err, 0, "ConfigError", "no kubeconfig: KUBECONFIG is not set, ~/.kube/config does "
			       "not exist, and this is not a Pod (KUBERNETES_SERVICE_HOST is not set)");
			return PL_EX_USAGE;
		}
		list = pl_buf_cstr(&home);
	}
	char *files = pl_xstrdup(list);
	for (char *save = NULL, *f = strtok_r(files, ":", &save); f; f = strtok_r(NULL, ":", &save)) {
		int r = kc_read(&c, f);
		if (r < 0)
			goto out;
		found += r == 0;
	}
	if (!found) {
		seterr(err, 0, "ConfigError", "kubeconfig: none of %s exists", list);
		goto out;
	}
	rc = config_from_kc(&c, l, out, err);
out:
	free(files);
	pl_buf_free(&home);
	kc_free(&c);
	return rc;
}

/* --- names ---------------------------------------------------------------------- */

int pl_kube_name(const char *s, size_t len, char out[PL_KUBE_NAME_MAX + 1])
{
	size_t n = 0;
	int valid = len > 0 && len <= PL_KUBE_NAME_MAX;
	char hex[PL_SHA256_HEX];

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
			valid = 0;
	}
	if (valid && s[0] != '-' && s[len - 1] != '-') {
		memcpy(out, s, len);
		out[len] = '\0';
		return 0;
	}
	/* a cleaned prefix: letters lowercased, anything else one '-' */
	const size_t keep = PL_KUBE_NAME_MAX - 11;
	for (size_t i = 0; i < len && n < keep; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
			out[n++] = (char)ch;
		else if (n > 0 && out[n - 1] != '-')
			out[n++] = '-';
	}
	while (n > 0 && out[n - 1] == '-')
		n--;
	pl_sha256_hex(s, len, hex);
	if (n > 0)
		out[n++] = '-';
	memcpy(out + n, hex, 10);
	out[n + 10] = '\0';
	return 1;
}

int pl_kube_exit_status(const struct pl_kube_err *e)
{
	if (!strcmp(e->reason, "ConfigError") || !strcmp(e->reason, "TLSError") ||
	    !strcmp(e->reason, "ExecError"))
		return PL_EX_USAGE;
	if (e->status == 0)
		return PL_EX_UNAVAILABLE;
	if (e->status == 429 || e->status == 503)
		return PL_EX_TEMPFAIL;
	if (e->status >= 500)
		return PL_EX_UNAVAILABLE;
	if (e->status == 401 || e->status == 403)
		return PL_EX_USAGE;
	return PL_EX_DATAERR;
}

/* --- the client ------------------------------------------------------------------ */

struct req {
	struct pl_kube *k;
	CURL *e;
	char *method, *url, *body;
	size_t len;
	struct curl_slist *hdrs;
	pl_kube_cb cb;
	void *ud;
	struct pl_kube_watch *w;	/* set for a watch's stream */
	int tries, auth_retried, waited;
	long retry_after_ms;		/* from the last response, or -1 */
	double due;			/* when delayed */
	struct pl_buf resp;
	int json;			/* Content-Type application/json */
	char errbuf[CURL_ERROR_SIZE];
	struct req *next;
};

struct pl_kube {
	struct pl_kube_opts o;
	char *server, *ns, *field_validation;
	int insecure;
	char *ca_file, *cert_file, *key_file;
	unsigned char *ca_data, *cert_data, *key_data;
	size_t ca_len, cert_len, key_len;
	char *token, *token_file, *file_token;
	double token_at;
	struct pl_kube_exec *exec;
	char *exec_token, *exec_cert, *exec_key;
	time_t exec_expiry;		/* 0: none given */
	int exec_have;
	CURLM *m;
	struct req *ready, *ready_tail;	/* waiting for the rate limiter */
	struct req *delayed;		/* waiting to retry */
	struct req *running;		/* in the multi handle */
	size_t pending;			/* calls not yet final */
	double tokens, refilled;
	struct pl_kube_watch *watches;
	struct pl_kube_stats st;
	unsigned long long rng;
	int in_step;		/* completions being handled: reaping waits */
};

enum { W_IDLE, W_LISTING, W_WATCHING, W_WAITING };

struct pl_kube_watch {
	struct pl_kube *k;
	char *ns, *resource, *selector;
	pl_kube_watch_cb cb;
	void *ud;
	json_t *objs;		/* name -> object */
	json_t *listing;	/* during a list: what it found so far */
	char *rv, *cont;
	int phase, fails, dead, in_cb, gone, list_pending, stream_err;
	unsigned long conn_events;	/* events on the current connection */
	struct req *r;		/* the stream, while one is open or queued */
	double due;		/* W_WAITING: when to go on */
	int relist_next;	/* after waiting: list (1) or watch (0) */
	struct pl_buf line;
	struct pl_kube_watch_stats st;
	struct pl_kube_watch *next;
};

static int curl_ready;

void pl_kube_opts_default(struct pl_kube_opts *o)
{
	memset(o, 0, sizeof *o);
	o->qps = 20;
	o->burst = 30;
	o->max_tries = 5;
	o->backoff_ms = 200;
	o->backoff_max_ms = 10000;
	o->retry_after_max_ms = 60000;
	o->connect_timeout_ms = 10000;
	o->timeout_ms = 60000;
	o->token_reload_ms = 60000;
	o->watch_timeout_s = 300;
	o->exec_timeout_ms = 60000;
	o->field_validation = "Strict";
}

static unsigned char *memdup(const unsigned char *p, size_t n)
{
	unsigned char *q;
	if (!p)
		return NULL;
	q = pl_xmalloc(n + 1);
	memcpy(q, p, n);
	q[n] = '\0';
	return q;
}

struct pl_kube *pl_kube_new(const struct pl_kube_config *c, const struct pl_kube_opts *o,
			    struct pl_kube_err *err)
{
	struct pl_kube_opts def;
	struct pl_kube *k;

	if (!o) {
		pl_kube_opts_default(&def);
		o = &def;
	}
	if (!c->server || (strncmp(c->server, "https://", 8) && strncmp(c->server, "http://", 7))) {
		seterr(err, 0, "ConfigError", "server \"%s\" is not an https:// or http:// URL",
		       c->server ? c->server : "");
		return NULL;
	}
	if (!curl_ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		curl_ready = 1;
	}
	k = pl_xmalloc(sizeof *k);
	memset(k, 0, sizeof *k);
	k->o = *o;
	if (k->o.max_tries < 1)
		k->o.max_tries = 1;
	if (k->o.burst < 1)
		k->o.burst = 1;
	k->field_validation = xstrdup0(o->field_validation);
	k->o.field_validation = NULL;
	k->server = pl_xstrdup(c->server);
	k->ns = pl_xstrdup(c->namespace ? c->namespace : "default");
	k->insecure = c->insecure;
	k->ca_file = xstrdup0(c->ca_file);
	k->cert_file = xstrdup0(c->cert_file);
	k->key_file = xstrdup0(c->key_file);
	k->ca_data = memdup(c->ca_data, c->ca_len);
	k->ca_len = c->ca_len;
	k->cert_data = memdup(c->cert_data, c->cert_len);
	k->cert_len = c->cert_len;
	k->key_data = memdup(c->key_data, c->key_len);
	k->key_len = c->key_len;
	k->token = xstrdup0(c->token);
	k->token_file = xstrdup0(c->token_file);
	k->token_at = -1e18;
	k->exec = exec_dup(c->exec);
	k->m = curl_multi_init();
	if (!k->m)
		pl_xmalloc(SIZE_MAX);
	k->tokens = k->o.burst;
	k->refilled = now();
	k->rng = (unsigned long long)time(NULL) ^ (unsigned long long)(uintptr_t)k;
	return k;
}

const char *pl_kube_namespace(const struct pl_kube *k)
{
	return k->ns;
}

const char *pl_kube_server(const struct pl_kube *k)
{
	return k->server;
}

void pl_kube_stats(const struct pl_kube *k, struct pl_kube_stats *s)
{
	*s = k->st;
}

size_t pl_kube_pending(const struct pl_kube *k)
{
	return k->pending;
}

static void req_free(struct req *r)
{
	if (r->e)
		curl_easy_cleanup(r->e);
	curl_slist_free_all(r->hdrs);
	free(r->method);
	free(r->url);
	free(r->body);
	pl_buf_free(&r->resp);
	free(r);
}

static void watch_destroy(struct pl_kube_watch *w);

static void unlink_req(struct req **head, struct req *r)
{
	for (struct req **p = head; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			return;
		}
}

void pl_kube_free(struct pl_kube *k)
{
	struct req *r;

	if (!k)
		return;
	while (k->watches) {
		struct pl_kube_watch *w = k->watches;
		k->watches = w->next;
		watch_destroy(w);
	}
	while ((r = k->running)) {
		k->running = r->next;
		curl_multi_remove_handle(k->m, r->e);
		req_free(r);
	}
	while ((r = k->ready)) {
		k->ready = r->next;
		req_free(r);
	}
	while ((r = k->delayed)) {
		k->delayed = r->next;
		req_free(r);
	}
	curl_multi_cleanup(k->m);
	free(k->server);
	free(k->ns);
	free(k->field_validation);
	free(k->ca_file);
	free(k->cert_file);
	free(k->key_file);
	free(k->ca_data);
	free(k->cert_data);
	free(k->key_data);
	free(k->token);
	free(k->token_file);
	free(k->file_token);
	exec_free(k->exec);
	free(k->exec_token);
	free(k->exec_cert);
	free(k->exec_key);
	free(k);
}

static unsigned long long rnd(struct pl_kube *k)
{
	k->rng ^= k->rng << 13;
	k->rng ^= k->rng >> 7;
	k->rng ^= k->rng << 17;
	return k->rng;
}

/* exponential, with "equal jitter": half fixed, half random */
static long backoff(struct pl_kube *k, int attempt)
{
	double d = (double)k->o.backoff_ms;
	for (int i = 1; i < attempt && d < (double)k->o.backoff_max_ms; i++)
		d *= 2;
	if (d > (double)k->o.backoff_max_ms)
		d = (double)k->o.backoff_max_ms;
	return (long)(d / 2 + (double)(rnd(k) % 1000) / 1000.0 * d / 2);
}

static void ready_push(struct pl_kube *k, struct req *r)
{
	r->next = NULL;
	if (k->ready_tail)
		k->ready_tail->next = r;
	else
		k->ready = r;
	k->ready_tail = r;
}

static struct req *req_new(struct pl_kube *k, const char *method, const char *path, const char *query,
			   const char *body, size_t len)
{
	struct req *r = pl_xmalloc(sizeof *r);
	struct pl_buf u = PL_BUF_INIT;

	memset(r, 0, sizeof *r);
	r->k = k;
	r->method = pl_xstrdup(method);
	pl_buf_adds(&u, k->server);
	pl_buf_adds(&u, path);
	if (query && *query) {
		pl_buf_addc(&u, '?');
		pl_buf_adds(&u, query);
	}
	r->url = pl_xstrdup(pl_buf_cstr(&u));
	pl_buf_free(&u);
	if (body) {
		r->body = pl_xmalloc(len + 1);
		memcpy(r->body, body, len);
		r->body[len] = '\0';
		r->len = len;
	}
	r->retry_after_ms = -1;
	return r;
}

void pl_kube_call(struct pl_kube *k, const char *method, const char *path, const char *query,
		  const char *body, size_t len, pl_kube_cb cb, void *ud)
{
	struct req *r = req_new(k, method, path, query, body, len);
	r->cb = cb;
	r->ud = ud;
	k->pending++;
	ready_push(k, r);
}

/* --- credentials --- */

static void add_env(char ***envp, size_t *n, const char *kv)
{
	size_t name = strcspn(kv, "=");
	for (size_t i = 0; i < *n; i++)
		if (!strncmp((*envp)[i], kv, name) && (*envp)[i][name] == '=') {
			(*envp)[i] = (char *)kv;
			return;
		}
	*envp = pl_xrealloc(*envp, (*n + 2) * sizeof(char *));
	(*envp)[(*n)++] = (char *)kv;
	(*envp)[*n] = NULL;
}

static char *exec_info(struct pl_kube *k)
{
	json_t *spec = json_pack("{s:b}", "interactive", 0);
	if (k->exec->provide_cluster_info) {
		json_t *cl = json_pack("{s:s, s:b}", "server", k->server, "insecure-skip-tls-verify", k->insecure);
		unsigned char *ca = k->ca_data;
		size_t n = k->ca_len;
		char *file = NULL;
		if (!ca && k->ca_file)
			ca = (unsigned char *)(file = slurp(k->ca_file, &n));
		if (ca) {
			char *b = b64encode(ca, n);
			json_object_set_new(cl, "certificate-authority-data", json_string(b));
			free(b);
		}
		free(file);
		json_object_set_new(spec, "cluster", cl);
	}
	json_t *o = json_pack("{s:s, s:s, s:o}", "apiVersion", k->exec->api_version, "kind", "ExecCredential",
			      "spec", spec);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* Run the exec credential plugin and keep what it returns. */
static int run_exec(struct pl_kube *k, struct pl_kube_err *err)
{
	struct pl_kube_exec *x = k->exec;
	int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	char **envp = NULL, **argv = NULL;
	size_t nenv = 0, nargs = 0;
	struct pl_buf o = PL_BUF_INIT, e = PL_BUF_INIT, info = PL_BUF_INIT;
	pid_t pid;
	int rc = PL_EX_USAGE, status = 0, fa_init = 0;
	json_t *j = NULL;
	char *infojson = NULL;

	k->st.exec_runs++;
	for (char **p = environ; *p; p++)
		add_env(&envp, &nenv, *p);
	for (char **p = x->env; p && *p; p++)
		add_env(&envp, &nenv, *p);
	infojson = exec_info(k);
	pl_buf_printf(&info, "KUBERNETES_EXEC_INFO=%s", infojson);
	add_env(&envp, &nenv, pl_buf_cstr(&info));
	if (!envp) {
		envp = pl_xmalloc(sizeof(char *));
		envp[0] = NULL;
	}
	argv = pl_xmalloc(sizeof(char *) * 2);
	argv[nargs++] = x->command;
	for (char **p = x->args; p && *p; p++) {
		argv = pl_xrealloc(argv, (nargs + 2) * sizeof(char *));
		argv[nargs++] = *p;
	}
	argv[nargs] = NULL;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		seterr(err, 0, "ExecError", "exec plugin: pipe: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	fa_init = 1;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	int se = posix_spawnp(&pid, x->command, &fa, NULL, argv, envp);
	close(out[1]);
	close(errp[1]);
	out[1] = errp[1] = -1;
	if (se) {
		seterr(err, 0, "ExecError", "exec plugin: cannot run \"%s\": %s%s%s", x->command, strerror(se),
		       x->install_hint ? ": " : "", x->install_hint ? x->install_hint : "");
		goto out;
	}
	double deadline = now() + (double)k->o.exec_timeout_ms / 1000.0;
	int open_fds = 2, timed_out = 0;
	while (open_fds > 0) {
		struct pollfd pf[2] = { { out[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
		double left = deadline - now();
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		int pr = poll(pf, 2, (int)(left * 1000) + 1);
		if (pr < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			int fd = i ? errp[0] : out[0];
			if (fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[4096];
			ssize_t nr = read(fd, buf, sizeof buf);
			if (nr > 0) {
				pl_buf_add(i ? &e : &o, buf, (size_t)nr);
			} else if (nr == 0 || errno != EINTR) {
				close(fd);
				if (i)
					errp[0] = -1;
				else
					out[0] = -1;
				open_fds--;
			}
		}
	}
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		seterr(err, 0, "ExecError", "exec plugin \"%s\" did not finish in %ld ms", x->command,
		       k->o.exec_timeout_ms);
		rc = PL_EX_UNAVAILABLE;
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char *msg = (char *)pl_buf_cstr(&e);
		trim(msg);
		seterr(err, 0, "ExecError", "exec plugin \"%s\" failed (%s %d)%s%.300s", x->command,
		       WIFEXITED(status) ? "exit status" : "signal",
		       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), *msg ? ": " : "", msg);
		rc = PL_EX_UNAVAILABLE;
		goto out;
	}
	json_error_t je;
	j = json_loadb(o.p ? o.p : "", o.n, 0, &je);
	json_t *st = j ? json_object_get(j, "status") : NULL;
	const char *av = j ? json_string_value(json_object_get(j, "apiVersion")) : NULL;
	const char *kind = j ? json_string_value(json_object_get(j, "kind")) : NULL;
	if (!json_is_object(j)) {
		seterr(err, 0, "ExecError", "exec plugin \"%s\": its output is not JSON: %s", x->command, je.text);
		goto out;
	}
	if (!av || strcmp(av, x->api_version)) {
		seterr(err, 0, "ExecError", "exec plugin \"%s\": apiVersion \"%s\" of its reply is not \"%s\"",
		       x->command, av ? av : "", x->api_version);
		goto out;
	}
	if (!kind || strcmp(kind, "ExecCredential")) {
		seterr(err, 0, "ExecError", "exec plugin \"%s\": its reply is a \"%s\", not an ExecCredential",
		       x->command, kind ? kind : "");
		goto out;
	}
	if (!json_is_object(st)) {
		seterr(err, 0, "ExecError", "exec plugin \"%s\": its reply has no status", x->command);
		goto out;
	}
	const char *tok = json_string_value(json_object_get(st, "token"));
	const char *cert = json_string_value(json_object_get(st, "clientCertificateData"));
	const char *key = json_string_value(json_object_get(st, "clientKeyData"));
	const char *exp = json_string_value(json_object_get(st, "expirationTimestamp"));
	if (tok && !*tok)
		tok = NULL;
	if ((cert && *cert) != (key && *key)) {
		seterr(err, 0, "ExecError", "exec plugin \"%s\": clientCertificateData and clientKeyData come "
		       "together", x->command);
		goto out;
	}
	if (!tok && !(cert && *cert)) {
		seterr(err, 0, "ExecError", "exec plugin \"%s\": its reply has neither a token nor a client "
		       "certificate", x->command);
		goto out;
	}
	time_t expiry = 0;
	if (exp && *exp && (expiry = pl_kube_time(exp)) < 0) {
		seterr(err, 0, "ExecError", "exec plugin \"%s\": expirationTimestamp \"%s\" is not RFC 3339",
		       x->command, exp);
		goto out;
	}
	free(k->exec_token);
	free(k->exec_cert);
	free(k->exec_key);
	k->exec_token = xstrdup0(tok);
	k->exec_cert = cert && *cert ? pl_xstrdup(cert) : NULL;
	k->exec_key = key && *key ? pl_xstrdup(key) : NULL;
	k->exec_expiry = expiry;
	k->exec_have = 1;
	rc = 0;
out:
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	json_decref(j);
	free(infojson);
	free(envp);
	free(argv);
	pl_buf_free(&o);
	pl_buf_free(&e);
	pl_buf_free(&info);
	return rc;
}

/* Make the credentials current: the exec plugin's until they expire, a token
 * file's re-read when older than token_reload_ms. */
static int credentials(struct pl_kube *k, struct pl_kube_err *err)
{
	if (k->exec && (!k->exec_have || (k->exec_expiry && time(NULL) >= k->exec_expiry))) {
		int rc = run_exec(k, err);
		if (rc)
			return rc;
	}
	if (k->token_file && (!k->file_token || (now() - k->token_at) * 1000 >= (double)k->o.token_reload_ms)) {
		char *t = slurp(k->token_file, NULL);
		k->st.token_reads++;
		if (!t) {
			if (!k->file_token) {
				seterr(err, 0, "ConfigError", "token file %s: %s", k->token_file, strerror(errno));
				return PL_EX_USAGE;
			}
			/* a rotation in progress: the last token read is still the best guess */
		} else {
			trim(t);
			free(k->file_token);
			k->file_token = t;
			k->token_at = now();
		}
	}
	return 0;
}

/* After a 401: whether fresh credentials could help, and forget the old ones. */
static int refresh_credentials(struct pl_kube *k)
{
	if (k->exec) {
		k->exec_have = 0;
		return 1;
	}
	if (k->token_file) {
		k->token_at = -1e18;
		return 1;
	}
	return 0;
}

/* --- transfers --- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud);
static size_t on_stream(char *p, size_t size, size_t nmemb, void *ud);

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct req *r = ud;
	size_t n = size * nmemb;

	if (n > 5 && !strncasecmp(p, "HTTP/", 5)) {
		/* a new response (after a 100 Continue, say): forget the last one's headers */
		r->retry_after_ms = -1;
		r->json = 0;
	} else if (n > 12 && !strncasecmp(p, "retry-after:", 12)) {
		char v[128];
		size_t len = n - 12 < sizeof v - 1 ? n - 12 : sizeof v - 1;
		memcpy(v, p + 12, len);
		v[len] = '\0';
		trim(v);
		char *end;
		double secs = strtod(v, &end);
		if (end != v && !*end) {
			r->retry_after_ms = secs < 0 ? 0 : (long)(secs * 1000);
		} else {
			time_t t = curl_getdate(v, NULL);
			if (t > 0) {
				double d = difftime(t, time(NULL));
				r->retry_after_ms = d > 0 ? (long)(d * 1000) : 0;
			}
		}
	} else if (n > 13 && !strncasecmp(p, "content-type:", 13)) {
		const char *v = p + 13;
		while (*v == ' ' || *v == '\t')
			v++;
		r->json = !strncasecmp(v, "application/json", 16);
	}
	return n;
}

static struct curl_slist *add_header(struct curl_slist *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static struct curl_slist *add_header(struct curl_slist *l, const char *fmt, ...)
{
	char h[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h, sizeof h, fmt, ap);
	va_end(ap);
	struct curl_slist *n = curl_slist_append(l, h);
	if (!n)
		pl_xmalloc(SIZE_MAX);
	return n;
}

static void blob(CURL *e, CURLoption opt, const void *p, size_t n)
{
	struct curl_blob b = { (void *)p, n, CURL_BLOB_COPY };
	curl_easy_setopt(e, opt, &b);
}

static void finish(struct pl_kube *k, struct req *r, long status, const struct pl_kube_err *lerr);
static void watch_stream_failed(struct pl_kube_watch *w, struct req *r, const struct pl_kube_err *e);

/* Start a request now; a credential failure ends it at once. */
static void start(struct pl_kube *k, struct req *r)
{
	struct pl_kube_err err;
	int rc = credentials(k, &err);

	if (rc) {
		err.tries = r->tries;
		if (r->w)
			watch_stream_failed(r->w, r, &err);
		else
			finish(k, r, 0, &err);
		return;
	}
	if (!r->e) {
		r->e = curl_easy_init();
		if (!r->e)
			pl_xmalloc(SIZE_MAX);
	} else {
		curl_easy_reset(r->e);
	}
	CURL *e = r->e;
	r->resp.n = 0;
	r->retry_after_ms = -1;
	r->json = 0;
	r->errbuf[0] = '\0';
	r->tries++;
	k->st.requests++;
	curl_slist_free_all(r->hdrs);
	r->hdrs = add_header(NULL, "Accept: application/json");
	if (r->body)
		r->hdrs = add_header(r->hdrs, "Content-Type: application/json");
	const char *tok = k->exec ? k->exec_token : k->token_file ? k->file_token : k->token;
	if (tok && *tok)
		r->hdrs = add_header(r->hdrs, "Authorization: Bearer %s", tok);
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	if (r->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
	} else if (!strcmp(r->method, "GET")) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, r->w ? on_stream : on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, k->o.connect_timeout_ms);
	/* a watch lasts as long as the server keeps it (timeoutSeconds), plus slack */
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->w ? (k->o.watch_timeout_s + 30) * 1000L : k->o.timeout_ms);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "plumb/" PLUMB_VERSION);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (k->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (k->ca_data || k->ca_file) {
		/* the cluster's CA alone, as client-go trusts it */
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
		if (k->ca_data)
			blob(e, CURLOPT_CAINFO_BLOB, k->ca_data, k->ca_len);
		else
			curl_easy_setopt(e, CURLOPT_CAINFO, k->ca_file);
	}
	if (k->exec && k->exec_cert) {
		blob(e, CURLOPT_SSLCERT_BLOB, k->exec_cert, strlen(k->exec_cert));
		blob(e, CURLOPT_SSLKEY_BLOB, k->exec_key, strlen(k->exec_key));
	} else if (k->cert_data) {
		blob(e, CURLOPT_SSLCERT_BLOB, k->cert_data, k->cert_len);
		blob(e, CURLOPT_SSLKEY_BLOB, k->key_data, k->key_len);
	} else if (k->cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, k->cert_file);
		curl_easy_setopt(e, CURLOPT_SSLKEY, k->key_file);
	}
	if (k->exec_cert || k->cert_data || k->cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	curl_multi_add_handle(k->m, e);
	r->next = k->running;
	k->running = r;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct req *r = ud;
	pl_buf_add(&r->resp, p, size * nmemb);
	return size * nmemb;
}

static const char *status_reason(long s)
{
	switch (s) {
	case 400: return "BadRequest";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "NotFound";
	case 405: return "MethodNotAllowed";
	case 406: return "NotAcceptable";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 415: return "UnsupportedMediaType";
	case 422: return "Invalid";
	case 429: return "TooManyRequests";
	case 500: return "InternalError";
	case 503: return "ServiceUnavailable";
	case 504: return "Timeout";
	default: return s >= 500 ? "InternalError" : "Unknown";
	}
}

/* The error of a response: the Status object's reason and message when the
 * body is one, else the body in one line. */
static void status_err(struct pl_kube_err *err, long status, json_t *obj, const char *body, size_t len)
{
	const char *reason = NULL, *msg = NULL;
	if (json_is_object(obj)) {
		reason = json_string_value(json_object_get(obj, "reason"));
		msg = json_string_value(json_object_get(obj, "message"));
	}
	if (msg)
		seterr(err, status, reason && *reason ? reason : status_reason(status), "%s", msg);
	else
		seterr(err, status, reason && *reason ? reason : status_reason(status), "%.*s",
		       (int)(len > 300 ? 300 : len), body ? body : "");
}

static int permanent_curl_error(CURLcode c)
{
	switch (c) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return 1;
	default:
		return 0;
	}
}

static int retryable(long status)
{
	return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

/* The end of a non-watch request: the callback, then the request is gone. */
static void finish(struct pl_kube *k, struct req *r, long status, const struct pl_kube_err *lerr)
{
	struct pl_kube_resp resp = { 0 };
	struct pl_kube_err err;
	json_t *obj = NULL;

	resp.status = status;
	resp.body = r->resp.p ? pl_buf_cstr(&r->resp) : "";
	resp.len = r->resp.n;
	if (r->resp.n && (r->json || r->resp.p[0] == '{' || r->resp.p[0] == '['))
		obj = json_loadb(r->resp.p, r->resp.n, 0, NULL);
	resp.obj = obj;
	if (lerr) {
		err = *lerr;
		resp.err = &err;
	} else if (status < 200 || status > 299) {
		status_err(&err, status, obj, r->resp.p, r->resp.n);
		resp.err = &err;
	}
	if (resp.err)
		err.tries = r->tries;
	if (r->cb)
		r->cb(r->ud, &resp);
	json_decref(obj);
	k->pending--;
	req_free(r);
}

static void delay(struct pl_kube *k, struct req *r, long ms)
{
	r->due = now() + (double)ms / 1000.0;
	r->next = k->delayed;
	k->delayed = r;
	k->st.retries++;
}

static void watch_stream_done(struct pl_kube_watch *w, struct req *r, CURLcode rc, long status);

static void complete(struct pl_kube *k, struct req *r, CURLcode rc)
{
	long status = 0;
	struct pl_kube_err err;

	unlink_req(&k->running, r);
	curl_multi_remove_handle(k->m, r->e);
	if (rc == CURLE_OK)
		curl_easy_getinfo(r->e, CURLINFO_RESPONSE_CODE, &status);
	if (r->w) {
		watch_stream_done(r->w, r, rc, status);
		return;
	}
	if (rc != CURLE_OK) {
		int perm = permanent_curl_error(rc);
		if (!perm && r->tries < k->o.max_tries) {
			delay(k, r, backoff(k, r->tries));
			return;
		}
		seterr(&err, 0, perm ? "TLSError" : "ConnectionError", "%s: %s%s", k->server,
		       r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc), perm ? "" : " (retries exhausted)");
		if (perm && rc != CURLE_PEER_FAILED_VERIFICATION && rc != CURLE_SSL_CERTPROBLEM &&
		    rc != CURLE_SSL_CACERT_BADFILE && rc != CURLE_SSL_CIPHER)
			snprintf(err.reason, sizeof err.reason, "ConfigError");
		finish(k, r, 0, &err);
		return;
	}
	if (status == 401 && !r->auth_retried && refresh_credentials(k)) {
		r->auth_retried = 1;
		r->tries--;	/* a fresh credential is not a retry */
		r->next = k->ready;
		k->ready = r;
		if (!k->ready_tail)
			k->ready_tail = r;
		return;
	}
	if (retryable(status) && r->tries < k->o.max_tries) {
		long ms = r->retry_after_ms >= 0 ? r->retry_after_ms : backoff(k, r->tries);
		if (ms > k->o.retry_after_max_ms)
			ms = k->o.retry_after_max_ms;
		delay(k, r, ms);
		return;
	}
	finish(k, r, status, NULL);
}

static void watch_due(struct pl_kube *k, double t);

/* Move due retries to the queue and start what the rate limiter allows. */
static void pump(struct pl_kube *k)
{
	double t = now();

	for (struct req **p = &k->delayed; *p;) {
		struct req *r = *p;
		if (r->due <= t) {
			*p = r->next;
			ready_push(k, r);
		} else {
			p = &r->next;
		}
	}
	watch_due(k, t);
	if (k->o.qps > 0) {
		k->tokens += (t - k->refilled) * k->o.qps;
		if (k->tokens > k->o.burst)
			k->tokens = k->o.burst;
	}
	k->refilled = t;
	while (k->ready) {
		struct req *r = k->ready;
		if (k->o.qps > 0) {
			if (k->tokens < 1) {
				if (!r->waited)
					k->st.rate_waits++;
				r->waited = 1;
				break;
			}
			k->tokens -= 1;
		}
		k->ready = r->next;
		if (!k->ready)
			k->ready_tail = NULL;
		start(k, r);
	}
}

/* Milliseconds until the next timer of ours (rate limiter, retry, watch), -1 none. */
static long next_timer(struct pl_kube *k)
{
	double t = now(), best = -1;

	if (k->ready && k->o.qps > 0) {
		double d = k->tokens >= 1 ? 0 : (1 - k->tokens) / k->o.qps;
		best = d;
	} else if (k->ready) {
		best = 0;
	}
	for (struct req *r = k->delayed; r; r = r->next) {
		double d = r->due - t;
		if (best < 0 || d < best)
			best = d;
	}
	for (struct pl_kube_watch *w = k->watches; w; w = w->next)
		if (w->phase == W_WAITING && !w->dead) {
			double d = w->due - t;
			if (best < 0 || d < best)
				best = d;
		}
	if (best < 0)
		return -1;
	if (best <= 0)
		return 0;
	return (long)(best * 1000) + 1;
}

long pl_kube_timeout(struct pl_kube *k)
{
	long ct = -1, tt = next_timer(k);
	curl_multi_timeout(k->m, &ct);
	if (ct < 0)
		return tt;
	if (tt < 0)
		return ct;
	return ct < tt ? ct : tt;
}

void pl_kube_fdset(struct pl_kube *k, fd_set *r, fd_set *w, fd_set *e, int *maxfd)
{
	curl_multi_fdset(k->m, r, w, e, maxfd);
}

static int live_watches(struct pl_kube *k)
{
	int n = 0;
	for (struct pl_kube_watch *w = k->watches; w; w = w->next)
		n += !w->dead;
	return n;
}

static void reap_watches(struct pl_kube *k);

int pl_kube_step(struct pl_kube *k, struct pollfd *extra, unsigned nextra, int timeout_ms)
{
	struct curl_waitfd wf[16];
	struct curl_waitfd *wfd = nextra <= 16 ? wf : pl_xmalloc(nextra * sizeof *wfd);
	int running, n, numfds;
	long wait;
	CURLMsg *msg;

	pump(k);
	wait = pl_kube_timeout(k);
	if (timeout_ms >= 0 && (wait < 0 || wait > timeout_ms))
		wait = timeout_ms;
	if (wait < 0) {
		if (!k->running && !nextra) {
			/* nothing could ever wake us */
			if (wfd != wf)
				free(wfd);
			return (int)k->pending + live_watches(k);
		}
		wait = 60000;
	}
	for (unsigned i = 0; i < nextra; i++) {
		wfd[i].fd = extra[i].fd;
		wfd[i].events = (short)(((extra[i].events & POLLIN) ? CURL_WAIT_POLLIN : 0) |
					((extra[i].events & POLLPRI) ? CURL_WAIT_POLLPRI : 0) |
					((extra[i].events & POLLOUT) ? CURL_WAIT_POLLOUT : 0));
		wfd[i].revents = 0;
	}
	curl_multi_poll(k->m, nextra ? wfd : NULL, nextra, (int)(wait > INT32_MAX ? INT32_MAX : wait), &numfds);
	for (unsigned i = 0; i < nextra; i++)
		extra[i].revents = (short)(((wfd[i].revents & CURL_WAIT_POLLIN) ? POLLIN : 0) |
					   ((wfd[i].revents & CURL_WAIT_POLLPRI) ? POLLPRI : 0) |
					   ((wfd[i].revents & CURL_WAIT_POLLOUT) ? POLLOUT : 0));
	if (wfd != wf)
		free(wfd);
	k->in_step = 1;
	curl_multi_perform(k->m, &running);
	while ((msg = curl_multi_info_read(k->m, &n))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct req *r = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		complete(k, r, msg->data.result);
	}
	k->in_step = 0;
	reap_watches(k);
	pump(k);
	return (int)k->pending + live_watches(k);
}

/* --- watches -------------------------------------------------------------------------- */

static char *esc(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *r;
	if (!e)
		pl_xmalloc(SIZE_MAX);
	r = pl_xstrdup(e);
	curl_free(e);
	return r;
}

void pl_kube_path(struct pl_kube *k, struct pl_buf *b, const char *ns, const char *resource,
		  const char *name, const char *sub)
{
	char *e = esc(ns ? ns : k->ns);
	pl_buf_printf(b, "/api/v1/namespaces/%s/%s", e, resource);
	free(e);
	if (name) {
		e = esc(name);
		pl_buf_printf(b, "/%s", e);
		free(e);
	}
	if (sub)
		pl_buf_printf(b, "/%s", sub);
}

static const char *meta(json_t *o, const char *key)
{
	return json_string_value(json_object_get(json_object_get(o, "metadata"), key));
}

static int emit(struct pl_kube_watch *w, enum pl_kube_ev t, json_t *obj, const char *name,
		const struct pl_kube_err *err)
{
	struct pl_kube_event ev = { t, obj, name, err };
	w->in_cb++;
	w->cb(w->ud, &ev);
	w->in_cb--;
	return w->dead;
}

static void set_rv(struct pl_kube_watch *w, const char *rv)
{
	if (rv && *rv) {
		free(w->rv);
		w->rv = pl_xstrdup(rv);
	}
}

static void watch_wait(struct pl_kube_watch *w, long ms, int relist)
{
	w->phase = W_WAITING;
	w->due = now() + (double)ms / 1000.0;
	w->relist_next = relist;
}

static void list_done(void *ud, const struct pl_kube_resp *r);

static void list_start(struct pl_kube_watch *w)
{
	struct pl_buf path = PL_BUF_INIT, q = PL_BUF_INIT;

	w->phase = W_LISTING;
	w->list_pending = 1;
	if (!w->listing)
		w->listing = json_object();
	pl_kube_path(w->k, &path, w->ns, w->resource, NULL, NULL);
	pl_buf_adds(&q, "limit=500");
	if (w->selector) {
		char *e = esc(w->selector);
		pl_buf_printf(&q, "&labelSelector=%s", e);
		free(e);
	}
	if (w->cont) {
		char *e = esc(w->cont);
		pl_buf_printf(&q, "&continue=%s", e);
		free(e);
	}
	pl_kube_call(w->k, "GET", pl_buf_cstr(&path), pl_buf_cstr(&q), NULL, 0, list_done, w);
	pl_buf_free(&path);
	pl_buf_free(&q);
}

static void watch_connect(struct pl_kube_watch *w)
{
	struct pl_buf path = PL_BUF_INIT, q = PL_BUF_INIT;

	w->phase = W_WATCHING;
	w->gone = 0;
	w->stream_err = 0;
	w->conn_events = 0;
	w->line.n = 0;
	pl_kube_path(w->k, &path, w->ns, w->resource, NULL, NULL);
	pl_buf_printf(&q, "watch=true&allowWatchBookmarks=true&timeoutSeconds=%ld", w->k->o.watch_timeout_s);
	if (w->rv)
		pl_buf_printf(&q, "&resourceVersion=%s", w->rv);
	if (w->selector) {
		char *e = esc(w->selector);
		pl_buf_printf(&q, "&labelSelector=%s", e);
		free(e);
	}
	w->r = req_new(w->k, "GET", pl_buf_cstr(&path), pl_buf_cstr(&q), NULL, 0);
	w->r->w = w;
	ready_push(w->k, w->r);
	w->st.connects++;
	pl_buf_free(&path);
	pl_buf_free(&q);
}

static void list_done(void *ud, const struct pl_kube_resp *r)
{
	struct pl_kube_watch *w = ud;
	json_t *old = NULL, *o;
	const char *name;

	w->list_pending = 0;
	if (w->dead)
		return;
	if (r->err) {
		int expired = r->status == 410 && w->cont;
		free(w->cont);
		w->cont = NULL;
		json_decref(w->listing);
		w->listing = NULL;
		if (expired) {
			/* the continue token outlived its snapshot: list again from the start */
			list_start(w);
			return;
		}
		w->fails++;
		if (emit(w, PL_KUBE_WATCH_ERROR, NULL, NULL, r->err))
			return;
		watch_wait(w, backoff(w->k, w->fails), 1);
		return;
	}
	json_t *items = json_object_get(r->obj, "items");
	if (!json_is_array(items) && !json_is_null(items) && items) {
		struct pl_kube_err e;
		seterr(&e, r->status, "BadResponse", "list of %s: no items", w->resource);
		w->fails++;
		json_decref(w->listing);
		w->listing = NULL;
		if (!emit(w, PL_KUBE_WATCH_ERROR, NULL, NULL, &e))
			watch_wait(w, backoff(w->k, w->fails), 1);
		return;
	}
	size_t i;
	json_array_foreach(items, i, o) {
		const char *n = meta(o, "name");
		if (n)
			json_object_set(w->listing, n, o);
	}
	const char *cont = meta(r->obj, "continue");
	free(w->cont);
	w->cont = NULL;
	if (cont && *cont) {
		w->cont = pl_xstrdup(cont);
		list_start(w);
		return;
	}
	old = w->objs;
	w->objs = w->listing;
	w->listing = NULL;
	w->st.lists++;
	set_rv(w, meta(r->obj, "resourceVersion"));
	json_object_foreach(w->objs, name, o) {
		json_t *was = json_object_get(old, name);
		const char *a = was ? meta(was, "resourceVersion") : NULL, *b = meta(o, "resourceVersion");
		if (!was) {
			if (emit(w, PL_KUBE_ADDED, o, name, NULL))
				goto out;
		} else if (!a || !b || strcmp(a, b)) {
			if (emit(w, PL_KUBE_MODIFIED, o, name, NULL))
				goto out;
		}
	}
	json_object_foreach(old, name, o) {
		if (!json_object_get(w->objs, name) && emit(w, PL_KUBE_DELETED, o, name, NULL))
			goto out;
	}
	if (emit(w, PL_KUBE_SYNCED, NULL, NULL, NULL))
		goto out;
	w->fails = 0;
	watch_connect(w);
out:
	json_decref(old);
}

/* One line of a watch stream; -1 ends the connection. */
static int watch_line(struct pl_kube_watch *w, const char *p, size_t n)
{
	json_error_t je;
	json_t *j;
	int rc = 0;

	while (n && (p[n - 1] == '\r' || p[n - 1] == ' '))
		n--;
	if (!n)
		return 0;
	j = json_loadb(p, n, 0, &je);
	const char *type = json_string_value(json_object_get(j, "type"));
	json_t *obj = json_object_get(j, "object");
	if (!type || !json_is_object(obj)) {
		struct pl_kube_err e;
		seterr(&e, 200, "BadResponse", "watch of %s: not an event: %.200s", w->resource, p);
		w->stream_err = 1;
		emit(w, PL_KUBE_WATCH_ERROR, NULL, NULL, &e);
		json_decref(j);
		return -1;
	}
	w->st.events++;
	w->conn_events++;
	w->fails = 0;
	const char *name = meta(obj, "name");
	if (!strcmp(type, "ERROR")) {
		struct pl_kube_err e;
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		status_err(&e, (long)code, obj, p, n);
		if (code == 410) {
			w->gone = 1;
			w->st.gone++;
			emit(w, PL_KUBE_GONE, obj, NULL, &e);
		} else {
			w->stream_err = 1;
			emit(w, PL_KUBE_WATCH_ERROR, obj, NULL, &e);
		}
		rc = -1;
	} else if (!strcmp(type, "BOOKMARK")) {
		set_rv(w, meta(obj, "resourceVersion"));
		rc = emit(w, PL_KUBE_BOOKMARK, obj, NULL, NULL) ? -1 : 0;
	} else if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED") || !strcmp(type, "DELETED")) {
		set_rv(w, meta(obj, "resourceVersion"));
		enum pl_kube_ev t = type[0] == 'A' ? PL_KUBE_ADDED : type[0] == 'M' ? PL_KUBE_MODIFIED : PL_KUBE_DELETED;
		if (name) {
			if (t == PL_KUBE_DELETED)
				json_object_del(w->objs, name);
			else
				json_object_set(w->objs, name, obj);
		}
		rc = emit(w, t, obj, name, NULL) ? -1 : 0;
	}
	json_decref(j);
	return rc;
}

static size_t on_stream(char *p, size_t size, size_t nmemb, void *ud)
{
	struct req *r = ud;
	struct pl_kube_watch *w = r->w;
	size_t n = size * nmemb, off = 0;
	long status = 0;

	if (w->dead)
		return 0;
	curl_easy_getinfo(r->e, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		pl_buf_add(&r->resp, p, n);	/* an error's body */
		return n;
	}
	pl_buf_add(&w->line, p, n);
	for (;;) {
		char *nl = memchr(w->line.p + off, '\n', w->line.n - off);
		if (!nl)
			break;
		if (watch_line(w, w->line.p + off, (size_t)(nl - (w->line.p + off))) < 0)
			return 0;
		off = (size_t)(nl - w->line.p) + 1;
	}
	memmove(w->line.p, w->line.p + off, w->line.n - off);
	w->line.n -= off;
	return n;
}

static void watch_stream_failed(struct pl_kube_watch *w, struct req *r, const struct pl_kube_err *e)
{
	w->r = NULL;
	req_free(r);
	w->fails++;
	if (emit(w, PL_KUBE_WATCH_ERROR, NULL, NULL, e))
		return;
	watch_wait(w, backoff(w->k, w->fails), 0);
}

static void watch_stream_done(struct pl_kube_watch *w, struct req *r, CURLcode rc, long status)
{
	struct pl_kube *k = w->k;
	struct pl_kube_err e;
	json_t *obj = NULL;
	long ms;
	int report;

	w->r = NULL;
	if (w->dead) {
		req_free(r);
		return;
	}
	if (rc == CURLE_OK && status == 410 && !w->gone) {
		obj = json_loadb(r->resp.p ? r->resp.p : "", r->resp.n, 0, NULL);
		status_err(&e, 410, obj, r->resp.p, r->resp.n);
		json_decref(obj);
		w->gone = 1;
		w->st.gone++;
		if (emit(w, PL_KUBE_GONE, NULL, NULL, &e)) {
			req_free(r);
			return;
		}
	}
	if (w->gone) {
		req_free(r);
		list_start(w);
		return;
	}
	if (rc == CURLE_OK && status == 200 && !w->stream_err) {
		/* the server ended the watch (timeoutSeconds): go on where it stopped */
		req_free(r);
		watch_connect(w);
		return;
	}
	if (rc == CURLE_OK && status == 401 && !r->auth_retried && refresh_credentials(k)) {
		r->auth_retried = 1;
		r->resp.n = 0;
		w->r = r;
		ready_push(k, r);
		return;
	}
	w->fails++;
	report = 1;
	if (w->stream_err) {
		report = 0;	/* the ERROR event was reported as it came */
		w->stream_err = 0;
	} else if (rc != CURLE_OK) {
		seterr(&e, 0, "ConnectionError", "watch of %s: %s", w->resource,
		       r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
		/* a connection that carried events and then dropped is routine */
		report = w->fails > 2 || permanent_curl_error(rc);
	} else {
		obj = json_loadb(r->resp.p ? r->resp.p : "", r->resp.n, 0, NULL);
		status_err(&e, status, obj, r->resp.p, r->resp.n);
		json_decref(obj);
	}
	e.tries = w->fails;
	if (w->fails == 1 && rc != CURLE_OK && !permanent_curl_error(rc))
		ms = 0;
	else
		ms = backoff(k, w->fails);
	if (rc == CURLE_OK && r->retry_after_ms >= 0)
		ms = r->retry_after_ms < k->o.retry_after_max_ms ? r->retry_after_ms : k->o.retry_after_max_ms;
	req_free(r);
	if (report && emit(w, PL_KUBE_WATCH_ERROR, NULL, NULL, &e))
		return;
	watch_wait(w, ms, 0);
}

static void watch_due(struct pl_kube *k, double t)
{
	for (struct pl_kube_watch *w = k->watches; w; w = w->next) {
		if (w->dead || w->phase != W_WAITING || w->due > t)
			continue;
		if (w->relist_next)
			list_start(w);
		else
			watch_connect(w);
	}
}

struct pl_kube_watch *pl_kube_watch_new(struct pl_kube *k, const char *ns, const char *resource,
					const char *selector, pl_kube_watch_cb cb, void *ud)
{
	struct pl_kube_watch *w = pl_xmalloc(sizeof *w);

	memset(w, 0, sizeof *w);
	w->k = k;
	w->ns = pl_xstrdup(ns ? ns : k->ns);
	w->resource = pl_xstrdup(resource);
	w->selector = selector && *selector ? pl_xstrdup(selector) : NULL;
	w->cb = cb;
	w->ud = ud;
	w->objs = json_object();
	w->next = k->watches;
	k->watches = w;
	list_start(w);
	return w;
}

/* Take the watch's stream out of whichever list holds it. */
static void watch_drop_req(struct pl_kube_watch *w)
{
	struct pl_kube *k = w->k;
	struct req *r = w->r;

	if (!r)
		return;
	for (struct req *x = k->running; x; x = x->next)
		if (x == r) {
			unlink_req(&k->running, r);
			curl_multi_remove_handle(k->m, r->e);
			goto done;
		}
	for (struct req *x = k->delayed; x; x = x->next)
		if (x == r) {
			unlink_req(&k->delayed, r);
			goto done;
		}
	unlink_req(&k->ready, r);
	k->ready_tail = NULL;
	for (struct req *x = k->ready; x; x = x->next)
		k->ready_tail = x;
done:
	req_free(r);
	w->r = NULL;
}

static void watch_destroy(struct pl_kube_watch *w)
{
	watch_drop_req(w);
	json_decref(w->objs);
	json_decref(w->listing);
	free(w->ns);
	free(w->resource);
	free(w->selector);
	free(w->rv);
	free(w->cont);
	pl_buf_free(&w->line);
	free(w);
}

static void reap_watches(struct pl_kube *k)
{
	for (struct pl_kube_watch **p = &k->watches; *p;) {
		struct pl_kube_watch *w = *p;
		if (w->dead && !w->in_cb && !w->list_pending && !k->in_step) {
			*p = w->next;
			watch_destroy(w);
		} else {
			p = &w->next;
		}
	}
}

void pl_kube_watch_free(struct pl_kube_watch *w)
{
	if (!w)
		return;
	w->dead = 1;
	/* while completions are handled, a stream's handle may still have a
	 * message queued: pl_kube_step reaps it once they are done */
	if (!w->in_cb && !w->k->in_step)
		reap_watches(w->k);
}

json_t *pl_kube_watch_objects(struct pl_kube_watch *w)
{
	return w->objs;
}

const char *pl_kube_watch_rv(const struct pl_kube_watch *w)
{
	return w->rv ? w->rv : "";
}

void pl_kube_watch_stats(const struct pl_kube_watch *w, struct pl_kube_watch_stats *s)
{
	*s = w->st;
}

/* --- synchronous helpers ---------------------------------------------------------------- */

struct sync {
	int done, rc;
	json_t *obj;
	struct pl_buf body;
	struct pl_kube_err err;
};

static void sync_cb(void *ud, const struct pl_kube_resp *r)
{
	struct sync *s = ud;
	s->done = 1;
	s->obj = json_incref(r->obj);
	pl_buf_add(&s->body, r->body, r->len);
	if (r->err) {
		s->err = *r->err;
		s->rc = pl_kube_exit_status(r->err);
	}
}

static int sync_call(struct pl_kube *k, const char *method, const char *path, const char *query,
		     json_t *body, struct sync *s, struct pl_kube_err *err)
{
	char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;

	memset(s, 0, sizeof *s);
	if (body && !b) {
		seterr(err, 0, "BadRequest", "the object cannot be serialized as JSON");
		return PL_EX_DATAERR;
	}
	pl_kube_call(k, method, path, query, b, b ? strlen(b) : 0, sync_cb, s);
	free(b);
	while (!s->done)
		pl_kube_step(k, NULL, 0, -1);
	if (s->rc && err)
		*err = s->err;
	return s->rc;
}

static int simple(struct pl_kube *k, const char *method, const char *ns, const char *resource,
		  const char *name, const char *query, json_t *body, json_t **out, struct pl_kube_err *err)
{
	struct pl_buf path = PL_BUF_INIT;
	struct sync s;
	int rc;

	if (out)
		*out = NULL;
	pl_kube_path(k, &path, ns, resource, name, NULL);
	rc = sync_call(k, method, pl_buf_cstr(&path), query, body, &s, err);
	if (!rc && out)
		*out = json_incref(s.obj);
	json_decref(s.obj);
	pl_buf_free(&s.body);
	pl_buf_free(&path);
	return rc;
}

static const char *create_query(struct pl_kube *k, struct pl_buf *q)
{
	if (!k->field_validation || !*k->field_validation)
		return NULL;
	pl_buf_printf(q, "fieldValidation=%s", k->field_validation);
	return pl_buf_cstr(q);
}

int pl_kube_pod_create(struct pl_kube *k, const char *ns, json_t *pod, json_t **out, struct pl_kube_err *err)
{
	struct pl_buf q = PL_BUF_INIT;
	int rc = simple(k, "POST", ns, "pods", NULL, create_query(k, &q), pod, out, err);
	pl_buf_free(&q);
	return rc;
}

void pl_kube_pod_create_async(struct pl_kube *k, const char *ns, json_t *pod, pl_kube_cb cb, void *ud)
{
	struct pl_buf path = PL_BUF_INIT, q = PL_BUF_INIT;
	char *b = json_dumps(pod, JSON_COMPACT);

	pl_kube_path(k, &path, ns, "pods", NULL, NULL);
	pl_kube_call(k, "POST", pl_buf_cstr(&path), create_query(k, &q), b ? b : "{}", b ? strlen(b) : 2, cb, ud);
	free(b);
	pl_buf_free(&path);
	pl_buf_free(&q);
}

int pl_kube_pod_get(struct pl_kube *k, const char *ns, const char *name, json_t **out, struct pl_kube_err *err)
{
	return simple(k, "GET", ns, "pods", name, NULL, NULL, out, err);
}

int pl_kube_pod_delete(struct pl_kube *k, const char *ns, const char *name, long grace_s,
		       struct pl_kube_err *err)
{
	char q[64];
	if (grace_s >= 0)
		snprintf(q, sizeof q, "gracePeriodSeconds=%ld", grace_s);
	return simple(k, "DELETE", ns, "pods", name, grace_s >= 0 ? q : NULL, NULL, NULL, err);
}

int pl_kube_pod_list(struct pl_kube *k, const char *ns, const char *selector, json_t **out,
		     struct pl_kube_err *err)
{
	struct pl_buf path = PL_BUF_INIT, q = PL_BUF_INIT;
	json_t *all = NULL, *items = json_array();
	char *cont = NULL;
	int rc;

	*out = NULL;
	pl_kube_path(k, &path, ns, "pods", NULL, NULL);
	for (;;) {
		struct sync s;
		q.n = 0;
		pl_buf_adds(&q, "limit=500");
		if (selector && *selector) {
			char *e = esc(selector);
			pl_buf_printf(&q, "&labelSelector=%s", e);
			free(e);
		}
		if (cont) {
			char *e = esc(cont);
			pl_buf_printf(&q, "&continue=%s", e);
			free(e);
		}
		rc = sync_call(k, "GET", pl_buf_cstr(&path), pl_buf_cstr(&q), NULL, &s, err);
		pl_buf_free(&s.body);
		if (rc) {
			json_decref(s.obj);
			break;
		}
		if (!json_is_object(s.obj) || !json_is_array(json_object_get(s.obj, "items"))) {
			seterr(err, 200, "BadResponse", "list of pods: the answer is not a PodList");
			json_decref(s.obj);
			rc = PL_EX_UNAVAILABLE;
			break;
		}
		json_array_extend(items, json_object_get(s.obj, "items"));
		const char *c = meta(s.obj, "continue");
		free(cont);
		cont = c && *c ? pl_xstrdup(c) : NULL;
		if (!cont) {
			all = s.obj;
			json_object_set(all, "items", items);
			json_object_del(json_object_get(all, "metadata"), "continue");
			*out = all;
			break;
		}
		json_decref(s.obj);
	}
	json_decref(items);
	free(cont);
	pl_buf_free(&path);
	pl_buf_free(&q);
	return rc;
}

int pl_kube_pod_log(struct pl_kube *k, const char *ns, const char *name, const char *container,
		    struct pl_buf *out, struct pl_kube_err *err)
{
	struct pl_buf path = PL_BUF_INIT, q = PL_BUF_INIT;
	struct sync s;
	int rc;

	pl_kube_path(k, &path, ns, "pods", name, "log");
	if (container) {
		char *e = esc(container);
		pl_buf_printf(&q, "container=%s", e);
		free(e);
	}
	rc = sync_call(k, "GET", pl_buf_cstr(&path), container ? pl_buf_cstr(&q) : NULL, NULL, &s, err);
	if (!rc)
		pl_buf_add(out, s.body.p, s.body.n);
	json_decref(s.obj);
	pl_buf_free(&s.body);
	pl_buf_free(&path);
	pl_buf_free(&q);
	return rc;
}

int pl_kube_configmap_create(struct pl_kube *k, const char *ns, json_t *cm, json_t **out,
			     struct pl_kube_err *err)
{
	struct pl_buf q = PL_BUF_INIT;
	int rc = simple(k, "POST", ns, "configmaps", NULL, create_query(k, &q), cm, out, err);
	pl_buf_free(&q);
	return rc;
}

int pl_kube_configmap_get(struct pl_kube *k, const char *ns, const char *name, json_t **out,
			  struct pl_kube_err *err)
{
	return simple(k, "GET", ns, "configmaps", name, NULL, NULL, out, err);
}

int pl_kube_configmap_delete(struct pl_kube *k, const char *ns, const char *name, struct pl_kube_err *err)
{
	return simple(k, "DELETE", ns, "configmaps", name, NULL, NULL, NULL, err);
}
