/* Small file-system helpers for library code. They allocate nothing the
 * caller must free, and report failure through errno. */
#ifndef PL_FS_H
#define PL_FS_H

#include <stddef.h>

/* mkdir -p: create dir and any missing parents. Returns 0, or -1 with errno
 * set and the directory that could not be made copied into failed (size n). */
int pl_mkdir_p(const char *dir, char *failed, size_t n);

/* write(2) all n bytes, going on after EINTR and short writes. Returns 0,
 * or -1 with errno set. */
int pl_write_all(int fd, const void *p, size_t n);

#endif
