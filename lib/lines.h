/* Reading newline-terminated lines of any length from a file descriptor.
 *
 * The caller owns struct pl_lines; pl_lines_close frees its buffer and closes
 * the descriptor (unless it is stdin). A line returned by pl_lines_next stays
 * valid until the next call. The splitting itself is a pure function of the
 * bytes read (pl_lines_split), which the fuzz target drives directly. */
#ifndef PL_LINES_H
#define PL_LINES_H

#include <stddef.h>

struct pl_lines {
	int fd;
	char *name;		/* as shown in messages: the path, or "stdin" */
	char *buf;
	size_t cap, start, end, scan;
	unsigned long lineno;	/* of the line last returned, 1-based */
	int eof;
	void (*before_block)(void);	/* called before a read that would block */
	volatile int *stop;	/* when set and non-zero, EINTR ends the read */
};

/* Open path ("-" is stdin). Returns 0, or -1 with errno set; a directory
 * (also as stdin) is refused with EISDIR. */
int pl_lines_open(struct pl_lines *l, const char *path);

/* Use an open descriptor; name is copied. */
void pl_lines_fdopen(struct pl_lines *l, int fd, const char *name);

/* Next line without its "\n" (and without a "\r" before it). Returns 1 with
 * line and len set, 0 at end of input, -1 on a read error (errno set). */
int pl_lines_next(struct pl_lines *l, const char **line, size_t *len);

void pl_lines_close(struct pl_lines *l);

/* Split buf[0..n) at the first newline: returns the length of the line's
 * content and sets *next to the offset just past the newline, or returns n and
 * sets *next to n when there is no newline. */
size_t pl_lines_split(const char *buf, size_t n, size_t *next);

#endif
