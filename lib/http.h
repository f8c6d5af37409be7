/* HTTP through libcurl's multi interface: several requests in flight, with
 * plumb's retry policy (DESIGN.md §2): timeouts on connect and on the whole
 * request; retries with exponential backoff and jitter on connection errors,
 * 408, 429 and 5xx, honouring Retry-After; a bounded number of tries.
 *
 * pl_http_new allocates the client and pl_http_free releases it. Requests,
 * their headers and bodies are copied at submission. A response body is the
 * client's, valid only during the completion callback (or copied out by
 * pl_http_request). Nothing here prints or exits. */
#ifndef PL_HTTP_H
#define PL_HTTP_H

#include <stddef.h>

#include "buf.h"

struct pl_http_opts {
	long connect_timeout_ms;	/* default 10 s */
	long timeout_ms;		/* whole request; default 60 s */
	int max_tries;			/* attempts in all; default 5 */
	long backoff_ms;		/* first retry delay before jitter; default 500 ms */
	long backoff_max_ms;		/* cap on a computed delay; default 30 s */
	long retry_after_max_ms;	/* cap on a server's Retry-After; default 120 s */
	int parallel;			/* requests in flight; default 4 */
	int insecure;			/* do not verify TLS peers */
	const char *ca_file;		/* extra CA bundle, or NULL */
	/* Whether a reply with a status plumb retries is final all the same
	 * (llama.cpp answers an input too long with a 500); NULL: none is. */
	int (*final)(long status, const char *body, size_t len);
};

void pl_http_opts_default(struct pl_http_opts *o);

struct pl_http_result {
	long status;		/* final HTTP status; 0 when no response came */
	const char *body;
	size_t len;
	int tries;
	int permanent;		/* status 0 for a reason retrying cannot mend (a bad URL,
				 * a TLS certificate that does not verify): configuration */
	char err[256];		/* when status is 0: what went wrong on the last try */
};

typedef void (*pl_http_cb)(void *ud, const struct pl_http_result *r);

struct pl_http;

struct pl_http *pl_http_new(const struct pl_http_opts *o);
void pl_http_free(struct pl_http *h);

/* Queue a request; cb runs once it is final (success, a status that is not
 * retried, or tries exhausted). headers: NULL-terminated "Name: value"
 * strings. Waits first while `parallel` requests are in flight, so callbacks
 * of earlier requests may run inside this call; a callback must not submit. */
void pl_http_submit(struct pl_http *h, const char *method, const char *url,
		    const char *const *headers, const char *body, size_t len,
		    pl_http_cb cb, void *ud);

/* Requests submitted and not yet final. */
size_t pl_http_pending(const struct pl_http *h);

/* Drive transfers once: start due retries, send and read what can be, run
 * the callbacks of requests that became final, waiting at most timeout_ms
 * (up to 1 s) for something to happen. */
void pl_http_poll(struct pl_http *h, long timeout_ms);

/* Drive transfers until at most n requests are pending. */
void pl_http_wait(struct pl_http *h, size_t n);

/* One request, synchronously: r is filled and r->body points into body. */
void pl_http_request(struct pl_http *h, const char *method, const char *url,
		     const char *const *headers, const char *req, size_t len,
		     struct pl_http_result *r, struct pl_buf *body);

/* Whether a status is one plumb retries: 408, 429 and 5xx. */
int pl_http_retryable(long status);

/* The exit status for a request that failed for good: 75 (temporary) for
 * 429 and 503, 69 (unavailable) for no response and other 5xx, 65 for 4xx
 * that reject the input, 2 for 401, 403 and 404 (configuration). */
int pl_http_exit_status(long status);

/* url with any user:password@ removed, for messages; into out (size n). */
void pl_http_redact(const char *url, char *out, size_t n);

/* A server's error body in one line (JSON "error" as a string,
 * "error.message", "status.error", "message" or "detail" when present, else
 * the body with newlines folded), at most n-1 bytes. */
void pl_http_error_line(const char *body, size_t len, char *out, size_t n);

#endif
