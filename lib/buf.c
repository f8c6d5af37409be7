#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "exitcode.h"

static void oom(size_t n)
{
	/* The one place library code ends the process: nothing sensible can
	 * follow a failed allocation in a filter, and every caller checking it
	 * would bury the logic. */
	char msg[96];
	int len = snprintf(msg, sizeof msg, "plumb: out of memory (%zu bytes)\n", n);
	if (len > 0)
		(void)!write(2, msg, (size_t)len);
	_exit(PL_EX_SOFTWARE);
}

void *pl_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *pl_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

char *pl_xstrdup(const char *s)
{
	return pl_xstrndup(s, strlen(s));
}

char *pl_xstrndup(const char *s, size_t n)
{
	char *d = pl_xmalloc(n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

void pl_buf_grow_(struct pl_buf *b, size_t extra)
{
	size_t cap = b->cap ? b->cap : 256;
	if (b->n + extra < b->n)
		oom(SIZE_MAX);
	while (cap - b->n < extra)
		cap *= 2;
	b->p = pl_xrealloc(b->p, cap);
	b->cap = cap;
}

void pl_buf_free(struct pl_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}

void pl_buf_printf(struct pl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((size_t)len >= b->cap - b->n) {
		pl_buf_reserve(b, (size_t)len + 1);
		va_start(ap, fmt);
		vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
	}
	b->n += (size_t)len;
}

void pl_buf_u64(struct pl_buf *b, uint64_t v)
{
	char tmp[24];
	int i = sizeof tmp;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	pl_buf_add(b, tmp + i, sizeof tmp - (size_t)i);
}

void pl_buf_i64(struct pl_buf *b, int64_t v)
{
	if (v < 0) {
		pl_buf_addc(b, '-');
		pl_buf_u64(b, (uint64_t)0 - (uint64_t)v);
	} else {
		pl_buf_u64(b, (uint64_t)v);
	}
}

const char *pl_buf_cstr(struct pl_buf *b)
{
	pl_buf_reserve(b, 1);
	b->p[b->n] = '\0';
	return b->p;
}
