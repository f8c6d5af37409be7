#include "vcache.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "exitcode.h"
#include "hash.h"
#include "redisurl.h"

struct pl_vcache {
	redisContext *r;
	char *dir;
	char *prefix;
	long ttl;
};

struct pl_vcache *pl_vcache_open(const char *spec, const char *prefix, long ttl_s, int timeout_ms,
				 char *err, int *status)
{
	struct pl_vcache *c = pl_xmalloc(sizeof *c);

	memset(c, 0, sizeof *c);
	c->ttl = ttl_s;
	c->prefix = pl_xstrdup(prefix ? prefix : "plumb:vec:");
	if (pl_is_redis_url(spec)) {
		struct pl_redisurl u;
		int config = 0;
		if (pl_redisurl_parse(spec, &u, err, PL_VCACHE_ERRLEN) < 0) {
			*status = PL_EX_USAGE;
			goto fail;
		}
		c->r = pl_redis_connect(&u, timeout_ms, err, PL_VCACHE_ERRLEN, &config);
		pl_redisurl_free(&u);
		if (!c->r) {
			*status = config ? PL_EX_USAGE : PL_EX_UNAVAILABLE;
			goto fail;
		}
		return c;
	}
	if (mkdir(spec, 0777) < 0 && errno != EEXIST) {
		snprintf(err, PL_VCACHE_ERRLEN, "cannot create directory '%.300s': %s", spec,
			 strerror(errno));
		*status = PL_EX_USAGE;
		goto fail;
	}
	c->dir = pl_xstrdup(spec);
	return c;
fail:
	free(c->prefix);
	free(c);
	return NULL;
}

void pl_vcache_close(struct pl_vcache *c)
{
	if (!c)
		return;
	if (c->r)
		redisFree(c->r);
	free(c->dir);
	free(c->prefix);
	free(c);
}

void pl_vcache_key(const char *ns, size_t nslen, const char *text, size_t n, unsigned char key[32])
{
	struct pl_sha256 h;
	pl_sha256_init(&h);
	pl_sha256_update(&h, ns, nslen);
	pl_sha256_update(&h, "\0", 1);
	pl_sha256_update(&h, text, n);
	pl_sha256_final(&h, key);
}

/* The cache stores little-endian float32; this machine's order is checked
 * once, and big-endian machines swap. */
static void to_le(const float *v, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &v[i], 4);
		out[4 * i] = (unsigned char)u;
		out[4 * i + 1] = (unsigned char)(u >> 8);
		out[4 * i + 2] = (unsigned char)(u >> 16);
		out[4 * i + 3] = (unsigned char)(u >> 24);
	}
}

static void from_le(const unsigned char *p, size_t n, float *v)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
			     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
		memcpy(&v[i], &u, 4);
	}
}

static int accept_value(const unsigned char *p, size_t len, int *dim, int max_dim, float *out)
{
	if (len == 0 || len % 4)
		return 0;
	int d = (int)(len / 4);
	if ((*dim && d != *dim) || (!*dim && d > max_dim))
		return 0;
	*dim = d;
	from_le(p, (size_t)d, out);
	return 1;
}

static void dir_path(const struct pl_vcache *c, const unsigned char key[32], char *path, size_t n,
		     int sub)
{
	char hex[65];
	pl_hex(key, 32, hex);
	if (sub)
		snprintf(path, n, "%s/%.2s", c->dir, hex);
	else
		snprintf(path, n, "%s/%.2s/%s", c->dir, hex, hex + 2);
}

int pl_vcache_get(struct pl_vcache *c, const unsigned char (*keys)[32], size_t n, int *dim,
		  int max_dim, float *out, char *hit, char *err)
{
	memset(hit, 0, n);
	if (c->dir) {
		unsigned char *buf = pl_xmalloc((size_t)max_dim * 4 + 1);
		for (size_t i = 0; i < n; i++) {
			char path[4200];
			dir_path(c, keys[i], path, sizeof path, 0);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			ssize_t r = read(fd, buf, (size_t)max_dim * 4 + 1);
			close(fd);
			/* a short or odd file is a miss, to be written again */
			if (r > 0)
				hit[i] = (char)accept_value(buf, (size_t)r, dim, max_dim,
							    out + i * (size_t)max_dim);
		}
		free(buf);
		return 0;
	}
	/* one MGET per call: the batch is the caller's */
	const char **argv = pl_xmalloc((n + 1) * sizeof *argv);
	size_t *argl = pl_xmalloc((n + 1) * sizeof *argl);
	struct pl_buf names = PL_BUF_INIT;
	size_t plen = strlen(c->prefix);
	int status = 0;

	argv[0] = "MGET";
	argl[0] = 4;
	pl_buf_reserve(&names, n * (plen + 64));
	for (size_t i = 0; i < n; i++) {
		char hex[65];
		pl_hex(keys[i], 32, hex);
		pl_buf_add(&names, c->prefix, plen);
		pl_buf_add(&names, hex, 64);
	}
	for (size_t i = 0; i < n; i++) {
		argv[i + 1] = names.p + i * (plen + 64);
		argl[i + 1] = plen + 64;
	}
	redisReply *rep = redisCommandArgv(c->r, (int)n + 1, argv, argl);
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != n) {
		snprintf(err, PL_VCACHE_ERRLEN, "redis MGET failed: %s",
			 rep && rep->type == REDIS_REPLY_ERROR ? rep->str : c->r->errstr);
		status = -1;
	} else {
		for (size_t i = 0; i < n; i++) {
			redisReply *e = rep->element[i];
			if (e->type == REDIS_REPLY_STRING)
				hit[i] = (char)accept_value((const unsigned char *)e->str, e->len, dim,
							    max_dim,
							    out + i * (size_t)max_dim);
		}
	}
	if (rep)
		freeReplyObject(rep);
	free(argv);
	free(argl);
	pl_buf_free(&names);
	return status;
}

int pl_vcache_put(struct pl_vcache *c, const unsigned char (*keys)[32], size_t n, int dim,
		  const float *vecs, char *err)
{
	unsigned char *buf = pl_xmalloc((size_t)dim * 4);
	int status = 0;

	if (c->dir) {
		for (size_t i = 0; i < n && !status; i++) {
			char sub[4200], path[4200], tmp[4300];
			dir_path(c, keys[i], sub, sizeof sub, 1);
			dir_path(c, keys[i], path, sizeof path, 0);
			mkdir(sub, 0777);
			snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
			to_le(vecs + i * (size_t)dim, (size_t)dim, buf);
			/* write then rename, so a reader never sees half a vector */
			int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
			if (fd < 0 || write(fd, buf, (size_t)dim * 4) != (ssize_t)dim * 4 ||
			    close(fd) < 0 || rename(tmp, path) < 0) {
				snprintf(err, PL_VCACHE_ERRLEN, "cannot write cache file '%.300s': %s", path,
					 strerror(errno));
				unlink(tmp);
				status = -1;
			}
		}
		free(buf);
		return status;
	}
	size_t plen = strlen(c->prefix);
	char *name = pl_xmalloc(plen + 65);
	memcpy(name, c->prefix, plen);
	for (size_t i = 0; i < n; i++) {
		pl_hex(keys[i], 32, name + plen);
		to_le(vecs + i * (size_t)dim, (size_t)dim, buf);
		int r = c->ttl > 0 ?
			redisAppendCommand(c->r, "SET %b %b EX %ld", name, plen + 64, buf,
					   (size_t)dim * 4, c->ttl) :
			redisAppendCommand(c->r, "SET %b %b", name, plen + 64, buf, (size_t)dim * 4);
		if (r != REDIS_OK) {
			status = -1;
			break;
		}
	}
	/* pipelined: read every reply, so the connection stays in step */
	for (size_t i = 0; i < n; i++) {
		redisReply *rep = NULL;
		if (redisGetReply(c->r, (void **)&rep) != REDIS_OK) {
			snprintf(err, PL_VCACHE_ERRLEN, "redis SET failed: %s", c->r->errstr);
			status = -1;
			break;
		}
		if (rep->type == REDIS_REPLY_ERROR && !status) {
			snprintf(err, PL_VCACHE_ERRLEN, "redis SET failed: %s", rep->str);
			status = -1;
		}
		freeReplyObject(rep);
	}
	free(name);
	free(buf);
	return status;
}

/* --- any bytes under a key (the replies of lib/chat) ------------------- */

int pl_vcache_get_bytes(struct pl_vcache *c, const unsigned char key[32], struct pl_buf *out,
			char *err)
{
	out->n = 0;
	if (c->dir) {
		char path[4200], chunk[65536];
		ssize_t k;
		int fd;
		dir_path(c, key, path, sizeof path, 0);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return 0;
		while ((k = read(fd, chunk, sizeof chunk)) > 0)
			pl_buf_add(out, chunk, (size_t)k);
		close(fd);
		return k == 0 && out->n > 0;	/* a file that cannot be read is a miss */
	}
	size_t plen = strlen(c->prefix);
	char *name = pl_xmalloc(plen + 65);
	int found = 0;
	memcpy(name, c->prefix, plen);
	pl_hex(key, 32, name + plen);
	redisReply *rep = redisCommand(c->r, "GET %b", name, plen + 64);
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		snprintf(err, PL_VCACHE_ERRLEN, "redis GET failed: %s", rep ? rep->str : c->r->errstr);
		found = -1;
	} else if (rep->type == REDIS_REPLY_STRING) {
		pl_buf_add(out, rep->str, rep->len);
		found = 1;
	}
	if (rep)
		freeReplyObject(rep);
	free(name);
	return found;
}

int pl_vcache_put_bytes(struct pl_vcache *c, const unsigned char key[32], const void *v, size_t n,
			char *err)
{
	if (c->dir) {
		char sub[4200], path[4200], tmp[4300];
		dir_path(c, key, sub, sizeof sub, 1);
		dir_path(c, key, path, sizeof path, 0);
		mkdir(sub, 0777);
		snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
		/* write then rename, so a reader never sees half a value */
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (fd < 0 || write(fd, v, n) != (ssize_t)n || close(fd) < 0 || rename(tmp, path) < 0) {
			snprintf(err, PL_VCACHE_ERRLEN, "cannot write cache file '%.300s': %s", path,
				 strerror(errno));
			unlink(tmp);
			return -1;
		}
		return 0;
	}
	size_t plen = strlen(c->prefix);
	char *name = pl_xmalloc(plen + 65);
	int rc = 0;
	memcpy(name, c->prefix, plen);
	pl_hex(key, 32, name + plen);
	redisReply *rep = c->ttl > 0 ?
		redisCommand(c->r, "SET %b %b EX %ld", name, plen + 64, v, n, c->ttl) :
		redisCommand(c->r, "SET %b %b", name, plen + 64, v, n);
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		snprintf(err, PL_VCACHE_ERRLEN, "redis SET failed: %s", rep ? rep->str : c->r->errstr);
		rc = -1;
	}
	if (rep)
		freeReplyObject(rep);
	free(name);
	return rc;
}
