#include "redisurl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "buf.h"

#define SCHEME "redis://"

/* Length of a URI scheme (RFC 3986: a letter, then letters, digits, '+', '-'
 * or '.') at the start of s followed by "://", or 0. */
static size_t scheme_len(const char *s)
{
	size_t n = 0;

	if (!((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z'))
		return 0;
	while (s[n] && (((s[n] | 0x20) >= 'a' && (s[n] | 0x20) <= 'z') ||
			(s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '-' || s[n] == '.'))
		n++;
	return strncmp(s + n, "://", 3) == 0 ? n : 0;
}

/* Any URL, not only redis://: a spec is a URL or a path, and a mistyped
 * or unsupported scheme (rediss://, reids://) must reach pl_redisurl_parse
 * and fail there instead of being taken as a path, which every caller would
 * then create as a file or a directory named "rediss:". "redis:" without
 * its slashes counts too, for the same reason. */
int pl_is_redis_url(const char *s)
{
	return scheme_len(s) > 0 || strncasecmp(s, "redis:", 6) == 0 ||
	       strncasecmp(s, "rediss:", 7) == 0;
}

static int hexdig(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decode s[0..n) into a new string, or NULL if an escape is bad. */
static char *pct_decode(const char *s, size_t n)
{
	char *out = pl_xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		if (i + 2 >= n) {
			free(out);
			return NULL;
		}
		int hi = hexdig(s[i + 1]), lo = hexdig(s[i + 2]);
		if (hi < 0 || lo < 0) {
			free(out);
			return NULL;
		}
		*o++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*o = '\0';
	return out;
}

static int parse_num(const char *s, size_t n, long min, long max, int *out)
{
	long v = 0;

	if (n == 0 || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

int pl_redisurl_parse(const char *url, struct pl_redisurl *u, char *err, size_t errlen)
{
	const char *rest, *at, *hp, *slash, *end, *colon;

	memset(u, 0, sizeof *u);
	u->port = 6379;
	if (strncasecmp(url, SCHEME, sizeof SCHEME - 1) != 0) {
		size_t n = scheme_len(url);
		/* the scheme alone: the rest may hold a password */
		if (n == 6 && strncasecmp(url, "rediss", 6) == 0)
			snprintf(err, errlen, "rediss:// (Redis over TLS) is not supported; use redis://, "
				 "through a TLS tunnel if the network is not trusted");
		else if (n)
			snprintf(err, errlen, "unsupported URL scheme '%.*s://': only redis:// is supported "
				 "(a path that looks like a URL can be written ./PATH)",
				 n > 20 ? 20 : (int)n, url);
		else
			snprintf(err, errlen, "a Redis URL starts with redis:// "
				 "(a path that looks like a URL can be written ./PATH)");
		return -1;
	}
	rest = url + sizeof SCHEME - 1;
	if (strchr(rest, '?') || strchr(rest, '#')) {
		snprintf(err, errlen, "query strings and fragments are not supported in a Redis URL");
		return -1;
	}
	/* a password may itself contain '@' or '/': the host starts after the last '@' */
	at = strrchr(rest, '@');
	hp = at ? at + 1 : rest;
	if (at) {
		colon = memchr(rest, ':', (size_t)(at - rest));
		if (!colon) {
			snprintf(err, errlen, "user name without a password in Redis URL");
			goto fail;
		}
		if (colon > rest && !(u->user = pct_decode(rest, (size_t)(colon - rest)))) {
			snprintf(err, errlen, "bad percent escape in Redis URL");
			goto fail;
		}
		if (!(u->password = pct_decode(colon + 1, (size_t)(at - colon - 1)))) {
			snprintf(err, errlen, "bad percent escape in Redis URL");
			goto fail;
		}
	}
	slash = strchr(hp, '/');
	end = slash ? slash : hp + strlen(hp);
	if (*hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(end - hp));
		if (!rb || rb == hp + 1) {
			snprintf(err, errlen, "bad IPv6 host in Redis URL");
			goto fail;
		}
		u->host = pl_xstrndup(hp + 1, (size_t)(rb - hp - 1));
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		if (!colon && rb + 1 != end) {
			snprintf(err, errlen, "bad IPv6 host in Redis URL");
			goto fail;
		}
	} else {
		colon = memchr(hp, ':', (size_t)(end - hp));
		size_t hl = (size_t)((colon ? colon : end) - hp);
		u->host = pl_xstrndup(hp, hl);
	}
	if (!*u->host) {
		snprintf(err, errlen, "missing host in Redis URL");
		goto fail;
	}
	if (colon && parse_num(colon + 1, (size_t)(end - colon - 1), 1, 65535, &u->port) < 0) {
		snprintf(err, errlen, "bad port in Redis URL");
		goto fail;
	}
	if (slash && slash[1] && parse_num(slash + 1, strlen(slash + 1), 0, 1000000, &u->db) < 0) {
		snprintf(err, errlen, "bad database number in Redis URL");
		goto fail;
	}
	return 0;
fail:
	pl_redisurl_free(u);
	return -1;
}

void pl_redisurl_free(struct pl_redisurl *u)
{
	free(u->host);
	free(u->user);
	free(u->password);
	memset(u, 0, sizeof *u);
}

void pl_redisurl_redact(const char *url, char *out, size_t outlen)
{
	const char *at, *colon, *rest;

	/* any URL: a mistyped scheme's password is still a password */
	if (!pl_is_redis_url(url) || !(at = strrchr(url, '@'))) {
		snprintf(out, outlen, "%s", url);
		return;
	}
	size_t n = scheme_len(url);
	rest = n ? url + n + 3 : strchr(url, ':') + 1;
	if (rest > at) {
		snprintf(out, outlen, "%s", url);
		return;
	}
	colon = memchr(rest, ':', (size_t)(at - rest));
	if (!colon) {
		snprintf(out, outlen, "%s", url);
		return;
	}
	snprintf(out, outlen, "%.*s:***%s", (int)(colon - url), url, at);
}

static redisReply *command(redisContext *c, int argc, const char **argv, char *err,
			   size_t errlen, int *config)
{
	redisReply *r = redisCommandArgv(c, argc, argv, NULL);

	if (!r) {
		snprintf(err, errlen, "%s", c->errstr[0] ? c->errstr : "connection lost");
		*config = 0;
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		/* the server's own words; they never echo the password back */
		snprintf(err, errlen, "%s: %.*s", argv[0], (int)r->len, r->str);
		*config = 1;
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

redisContext *pl_redis_connect(const struct pl_redisurl *u, int timeout_ms, char *err,
			       size_t errlen, int *config)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	redisContext *c;
	redisReply *r;
	int cfg = 0;

	c = redisConnectWithTimeout(u->host, u->port, tv);
	if (!c) {
		snprintf(err, errlen, "cannot allocate a Redis context");
		goto fail;
	}
	if (c->err) {
		snprintf(err, errlen, "%s", c->errstr);
		goto fail;
	}
	if (redisSetTimeout(c, tv) != REDIS_OK) {
		snprintf(err, errlen, "cannot set timeout: %s", c->errstr);
		goto fail;
	}
	if (u->password) {
		const char *argv[3] = { "AUTH", u->user ? u->user : u->password, u->password };
		if (!(r = command(c, u->user ? 3 : 2, argv, err, errlen, &cfg)))
			goto fail;
		freeReplyObject(r);
	}
	if (u->db) {
		char db[16];
		snprintf(db, sizeof db, "%d", u->db);
		const char *argv[2] = { "SELECT", db };
		if (!(r = command(c, 2, argv, err, errlen, &cfg)))
			goto fail;
		freeReplyObject(r);
	}
	return c;
fail:
	if (c)
		redisFree(c);
	if (config)
		*config = cfg;
	return NULL;
}
