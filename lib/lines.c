#include "lines.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

#define READ_CHUNK (256 * 1024)

/* A directory opens for reading but fails at the first read(); refused here
 * instead, so that callers report it as a file that cannot be opened (a
 * usage error) rather than as a read error in the middle of the input. */
static int is_dir(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

int pl_lines_open(struct pl_lines *l, const char *path)
{
	int fd;

	if (strcmp(path, "-") == 0) {
		if (is_dir(0)) {
			errno = EISDIR;
			return -1;
		}
		pl_lines_fdopen(l, 0, "stdin");
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (is_dir(fd)) {
		close(fd);
		errno = EISDIR;
		return -1;
	}
	pl_lines_fdopen(l, fd, path);
	return 0;
}

void pl_lines_fdopen(struct pl_lines *l, int fd, const char *name)
{
	memset(l, 0, sizeof *l);
	l->fd = fd;
	l->name = pl_xstrdup(name);
}

size_t pl_lines_split(const char *buf, size_t n, size_t *next)
{
	const char *nl = memchr(buf, '\n', n);

	if (!nl) {
		*next = n;
		return n;
	}
	*next = (size_t)(nl - buf) + 1;
	return (size_t)(nl - buf);
}

static int would_block(int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	return poll(&pfd, 1, 0) == 0;
}

int pl_lines_next(struct pl_lines *l, const char **line, size_t *len)
{
	for (;;) {
		char *nl = l->end > l->scan ? memchr(l->buf + l->scan, '\n', l->end - l->scan) : NULL;
		if (nl || (l->eof && l->end > l->start)) {
			size_t stop = nl ? (size_t)(nl - l->buf) : l->end;
			*line = l->buf + l->start;
			*len = stop - l->start;
			if (*len && (*line)[*len - 1] == '\r')
				(*len)--;
			l->start = l->scan = nl ? stop + 1 : l->end;
			l->lineno++;
			return 1;
		}
		if (l->eof)
			return 0;
		l->scan = l->end;
		/* make room: move the partial line to the front, then grow */
		if (l->start > 0 && (l->start >= l->cap / 2 || l->cap - l->end < READ_CHUNK)) {
			memmove(l->buf, l->buf + l->start, l->end - l->start);
			l->end -= l->start;
			l->scan -= l->start;
			l->start = 0;
		}
		if (l->cap - l->end < READ_CHUNK) {
			size_t cap = l->cap ? l->cap : READ_CHUNK;
			while (cap - l->end < READ_CHUNK)
				cap *= 2;
			l->buf = pl_xrealloc(l->buf, cap);
			l->cap = cap;
		}
		/* Output waiting downstream must not sit in a buffer while we
		 * wait for more input: a streaming pipeline would stall. */
		if (l->before_block && would_block(l->fd))
			l->before_block();
		ssize_t r = read(l->fd, l->buf + l->end, l->cap - l->end);
		if (r < 0) {
			if (errno == EINTR && !(l->stop && *l->stop))
				continue;
			return -1;
		}
		if (r == 0)
			l->eof = 1;
		l->end += (size_t)r;
	}
}

void pl_lines_close(struct pl_lines *l)
{
	if (l->fd > 0)
		close(l->fd);
	free(l->buf);
	free(l->name);
	memset(l, 0, sizeof *l);
	l->fd = -1;
}
