#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

int pl_mkdir_p(const char *path, char *failed, size_t n)
{
	char *dir = pl_xstrdup(path);
	int status = 0;

	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (*dir && mkdir(dir, 0777) < 0 && errno != EEXIST) {
			int saved = errno;
			snprintf(failed, n, "%s", dir);
			errno = saved;
			status = -1;
			break;
		}
		*p = c;
		if (!c)
			break;
	}
	free(dir);
	return status;
}

int pl_write_all(int fd, const void *p, size_t n)
{
	const char *q = p;

	while (n > 0) {
		ssize_t k = write(fd, q, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (k == 0)
				errno = EIO;
			return -1;
		}
		q += k;
		n -= (size_t)k;
	}
	return 0;
}
