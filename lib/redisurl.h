/* Redis URLs, redis://[[user]:password@]host[:port][/db], and connections to
 * the server they name.
 *
 * Ownership: pl_redisurl_parse fills a caller-owned struct and allocates its
 * strings; pl_redisurl_free releases them. pl_redis_connect returns a hiredis
 * context that the caller frees with redisFree. Nothing here prints or exits:
 * failures return -1 or NULL and fill the caller's err buffer, which never
 * contains the password. */
#ifndef PL_REDISURL_H
#define PL_REDISURL_H

#include <stddef.h>

#include <hiredis/hiredis.h>

struct pl_redisurl {
	char *host;
	int port;		/* 6379 unless given */
	int db;			/* 0 unless given */
	char *user;		/* NULL: no user name (plain AUTH password) */
	char *password;		/* NULL: no AUTH */
};

/* Non-zero if s is a URL rather than a path: it starts with any scheme and
 * "://" (RFC 3986 syntax), or with "redis:" or "rediss:". Callers send such a
 * spec to pl_redisurl_parse, which takes only redis:// (in any case) and says
 * why another is not supported (rediss://, Redis over TLS, is not), so a
 * mistyped URL is an error and never a file or directory name; a path that
 * looks like a URL is written ./NAME. */
int pl_is_redis_url(const char *s);

/* Parse url into u. Returns 0, or -1 with err filled. User name and password
 * may be percent-encoded; an IPv6 host goes in brackets. */
int pl_redisurl_parse(const char *url, struct pl_redisurl *u, char *err, size_t errlen);

void pl_redisurl_free(struct pl_redisurl *u);

/* url with any password replaced by "***", for messages. */
void pl_redisurl_redact(const char *url, char *out, size_t outlen);

/* Connect within timeout_ms, set the same timeout on every later command,
 * then AUTH and SELECT as u says. Returns the context, or NULL with err
 * filled and *config (if not NULL) set to 1 when the server refused the
 * credentials or the database (running again will not help) and 0 when it
 * could not be reached or did not answer. */
redisContext *pl_redis_connect(const struct pl_redisurl *u, int timeout_ms, char *err,
			       size_t errlen, int *config);

#endif
