#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
