/* Chat completions against an OpenAI-compatible POST {base}/chat/completions
 * (OpenAI, vLLM, Ollama's /v1, llama.cpp's server): request bodies from
 * messages and sampling options, replies parsed, cache keys, and a client
 * that sends many requests at once (lib/http: concurrency, retries,
 * Retry-After), at most so many a second, through a cache, and hands the
 * replies back in the order the requests were submitted.
 *
 * Ownership: pl_chat_new allocates the client and pl_chat_free releases it;
 * options and messages are copied at submission. A reply passed to the
 * callback, and every string in it, is the client's and valid only during
 * the callback. Buffers passed in are the caller's. Nothing here prints or
 * exits: errors fill a caller's char err[PL_CHAT_ERRLEN] or the reply. */
#ifndef PL_CHAT_H
#define PL_CHAT_H

#include <stddef.h>

#include "buf.h"

#define PL_CHAT_ERRLEN 512
#define PL_CHAT_MAX_STOP 4	/* OpenAI takes up to 4 stop sequences */

struct pl_chat_opts {
	const char *base_url;	/* API root, e.g. https://api.openai.com/v1 */
	const char *api_key;	/* bearer token, or NULL for none */
	const char *model;	/* required */

	/* sampling: each is sent only when set, so a server's defaults apply */
	int has_temperature;
	double temperature;
	int has_top_p;
	double top_p;
	long max_tokens;		/* > 0: sent as "max_tokens" */
	long max_completion_tokens;	/* > 0: sent as "max_completion_tokens" */
	int has_seed;
	long long seed;
	const char *stop[PL_CHAT_MAX_STOP];
	size_t nstop;

	/* transport */
	int concurrency;	/* requests in flight; default 4 */
	double rps;		/* requests started per second at most; 0: no cap */
	long timeout_ms;	/* whole request; default 600 s (a long answer is slow) */
	long connect_timeout_ms;	/* default 10 s */
	int max_tries;		/* attempts in all; default 5 */
	int insecure;		/* do not verify TLS peers */
	volatile int *stop_flag;	/* when set and non-zero (a signal arrived), no
					 * request starts: one that waited is abandoned */

	/* cache of successful replies; errors are never stored */
	const char *cache;	/* redis://host:port[/db], a directory, or NULL */
	long cache_ttl_s;	/* expiry of Redis entries; 0: none */
};

void pl_chat_opts_default(struct pl_chat_opts *o);

/* One request's outcome, in submission order. */
struct pl_chat_reply {
	size_t seq;		/* the request's number, from 0 in submission order */
	void *ud;		/* as given to pl_chat_submit */
	int ok;			/* 1: a usable 200 reply (fields below "failure" unset) */

	/* success */
	const char *content;	/* the first choice's message content, "" when null */
	size_t len;
	int content_null;	/* the server sent "content": null */
	const char *refusal;	/* the message's "refusal" string, or NULL */
	const char *model;	/* the model the reply names, else the one asked for */
	const char *finish_reason;	/* or NULL */
	const char *usage;	/* the reply's "usage" object as compact JSON, or NULL */
	size_t usage_len;
	long long prompt_tokens, completion_tokens, total_tokens;	/* -1: not given */
	int cached;		/* answered from the cache (latency_ms is the original) */

	/* both */
	double latency_ms;	/* first try sent to final reply, retries included */
	int tries;		/* HTTP attempts; 0 for a cache hit */

	/* failure */
	long status;		/* final HTTP status; 0 when none came or it was unusable */
	int exit_status;	/* the PL_EX_* status this failure stands for (65, 69, 75, 2) */
	int config;		/* a configuration error (401, 403, 404, a bad URL, a TLS
				 * certificate): every request will fail alike */
	int abandoned;		/* not sent: the stop flag was set while it waited for a
				 * free slot or the rate cap */
	char error[PL_CHAT_ERRLEN];	/* one line, without the key */
};

typedef void (*pl_chat_cb)(void *ctx, const struct pl_chat_reply *r);

struct pl_chat;

/* A client for o (copied). Replies go to cb(ctx, reply), one per submitted
 * request, in submission order, from inside pl_chat_submit and pl_chat_wait;
 * cb must not call pl_chat_submit. Returns NULL with err and *status (a
 * PL_EX_* code: 2 for bad options or a cache that refuses its credentials,
 * 69 for a cache that cannot be reached; cache errors start "cache: ") on
 * failure. */
struct pl_chat *pl_chat_new(const struct pl_chat_opts *o, pl_chat_cb cb, void *ctx, char *err,
			    int *status);

/* Releases the client; requests still in flight are abandoned without a
 * callback (call pl_chat_wait(c, 0) first to have them). */
void pl_chat_free(struct pl_chat *c);

/* Send one request whose messages are msgs[0..n), a JSON array as built by
 * pl_chat_msg_add or checked by pl_chat_msgs_check. A cached reply needs no
 * request. Waits first while `concurrency` requests are in flight and for
 * the rate cap, delivering earlier replies meanwhile. Returns the request's
 * seq. */
size_t pl_chat_submit(struct pl_chat *c, const char *msgs, size_t n, void *ud);

/* Drive requests and deliver replies until at most n submitted requests
 * are not yet delivered; pl_chat_wait(c, 0) delivers every one. */
void pl_chat_wait(struct pl_chat *c, size_t n);

/* Drive requests until one more finishes (at once when none is in flight),
 * delivering the replies that are then due: for a program whose input would
 * block, so replies are written while it waits for more. */
void pl_chat_wait_one(struct pl_chat *c);

/* Submitted requests whose reply is not yet delivered. */
size_t pl_chat_outstanding(const struct pl_chat *c);

/* Counts so far: requests sent (first tries, not retries), cache hits,
 * failures delivered. Any pointer may be NULL. */
void pl_chat_counts(const struct pl_chat *c, unsigned long long *sent,
		    unsigned long long *hits, unsigned long long *failed);

/* A problem with the cache since the last call (the cache is then given up
 * and requests go on without it): 1 with the message in out, else 0. */
int pl_chat_warning(struct pl_chat *c, char out[PL_CHAT_ERRLEN]);

/* --- the parts, for tests and for callers that drive lib/http alone ----- */

/* Append {"role":role,"content":content[0..n)} (content valid UTF-8) to the
 * JSON array in msgs; an empty buffer starts the array, which is complete
 * after every call. */
void pl_chat_msg_add(struct pl_buf *msgs, const char *role, const char *content, size_t n);

/* Check a "messages" value json[0..n) (a non-empty array of objects, each
 * with a non-empty string "role" and a "content" that is a string, an array
 * of content parts, or null for an assistant) and write its canonical form
 * to out (reset): each message as {"role","content"} plus "name" when it is
 * a string, other members left out. Returns 0, or -1 with err filled. */
int pl_chat_msgs_check(const char *json, size_t n, struct pl_buf *out, char *err);

/* The request body for msgs under o into out (reset): model, messages, and
 * the sampling options that are set, always in the same order and form, so
 * equal requests give equal bytes. */
void pl_chat_body(const struct pl_chat_opts *o, const char *msgs, size_t n, struct pl_buf *out);

/* The cache key of a request body from pl_chat_body: SHA-256 of a version
 * tag and the body, hence of model, options and messages. */
void pl_chat_key(const char *body, size_t n, unsigned char key[32]);

/* URL of the endpoint for base_url ({base}/chat/completions) into out. */
void pl_chat_url(const char *base_url, char *out, size_t outlen);

/* Parse a 200 reply body[0..len): fills the success fields of r, whose
 * strings then point into store (reset first); r->model falls back to
 * model. Returns 0, or -1 with err filled when the reply is not a chat
 * completion with a first choice and a message. */
int pl_chat_parse(const char *body, size_t len, const char *model, struct pl_chat_reply *r,
		  struct pl_buf *store, char *err);

#endif
