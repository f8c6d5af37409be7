/* Unit tests for lib/lines.c: lines of any length, CRLF, no final newline,
 * and what cannot be opened. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "lines.h"
#include "unit.h"

static void feed(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

int main(void)
{
	char path[] = "/tmp/plumb-lines-XXXXXX";
	int fd = mkstemp(path);
	size_t big = 5 * 1024 * 1024 + 3;
	char *line = malloc(big);
	const char *l;
	size_t n;
	struct pl_lines r;

	memset(line, 'x', big);
	feed(fd, "one\r\ntwo\n\n", 10);
	feed(fd, line, big);
	feed(fd, "\nlast", 5);
	close(fd);

	CHECK(pl_lines_open(&r, path) == 0, "opens a file");
	CHECK(pl_lines_next(&r, &l, &n) == 1 && n == 3 && !memcmp(l, "one", 3) && r.lineno == 1,
	      "strips CRLF");
	CHECK(pl_lines_next(&r, &l, &n) == 1 && n == 3 && r.lineno == 2, "second line");
	CHECK(pl_lines_next(&r, &l, &n) == 1 && n == 0 && r.lineno == 3, "an empty line");
	CHECK(pl_lines_next(&r, &l, &n) == 1 && n == big && l[0] == 'x' && l[big - 1] == 'x',
	      "a 5 MB line whole");
	CHECK(pl_lines_next(&r, &l, &n) == 1 && n == 4 && !memcmp(l, "last", 4) && r.lineno == 5,
	      "a last line without newline");
	CHECK(pl_lines_next(&r, &l, &n) == 0, "then end of input");
	pl_lines_close(&r);
	unlink(path);
	CHECK(pl_lines_open(&r, "/nonexistent/x") < 0, "a missing file fails to open");

	/* A directory opens for reading but fails at read(): it must fail at
	 * open, so callers report a file that cannot be opened. */
	char dir[] = "/tmp/plumb-lines-dir-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "makes a directory");
	errno = 0;
	CHECK(pl_lines_open(&r, dir) < 0 && errno == EISDIR, "a directory is refused with EISDIR");
	int saved = dup(0), dfd = open(dir, O_RDONLY), nul = open("/dev/null", O_RDONLY);
	dup2(dfd, 0);
	errno = 0;
	CHECK(pl_lines_open(&r, "-") < 0 && errno == EISDIR, "so is standard input that is a directory");
	dup2(nul, 0);
	CHECK(pl_lines_open(&r, "-") == 0 && pl_lines_next(&r, &l, &n) == 0, "standard input opens");
	pl_lines_close(&r);
	dup2(saved, 0);
	close(saved);
	close(dfd);
	close(nul);
	rmdir(dir);

	size_t next;
	CHECK(pl_lines_split("ab\ncd", 5, &next) == 2 && next == 3, "split finds the newline");
	CHECK(pl_lines_split("abcd", 4, &next) == 4 && next == 4, "split without newline");
	free(line);
	return done_testing();
}
