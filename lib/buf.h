/* A growable byte buffer. The caller owns the struct; pl_buf_free releases its
 * storage. Allocation failure aborts the process (see pl_xmalloc): plumb treats
 * running out of memory as fatal, as git's xmalloc and jq's jv_mem_alloc do. */
#ifndef PL_BUF_H
#define PL_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct pl_buf {
	char *p;
	size_t n, cap;
};

#define PL_BUF_INIT { NULL, 0, 0 }

void *pl_xmalloc(size_t n);
void *pl_xrealloc(void *p, size_t n);
char *pl_xstrdup(const char *s);
char *pl_xstrndup(const char *s, size_t n);

void pl_buf_grow_(struct pl_buf *b, size_t need);
void pl_buf_free(struct pl_buf *b);
void pl_buf_printf(struct pl_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pl_buf_u64(struct pl_buf *b, uint64_t v);
void pl_buf_i64(struct pl_buf *b, int64_t v);
const char *pl_buf_cstr(struct pl_buf *b);	/* NUL-terminates without counting it */

static inline void pl_buf_reserve(struct pl_buf *b, size_t extra)
{
	if (b->cap - b->n < extra)
		pl_buf_grow_(b, extra);
}

static inline void pl_buf_add(struct pl_buf *b, const void *s, size_t n)
{
	if (!n)
		return;	/* s may be NULL then, which memcpy does not allow */
	pl_buf_reserve(b, n);
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static inline void pl_buf_addc(struct pl_buf *b, char c)
{
	pl_buf_reserve(b, 1);
	b->p[b->n++] = c;
}

static inline void pl_buf_adds(struct pl_buf *b, const char *s)
{
	pl_buf_add(b, s, strlen(s));
}

#endif
