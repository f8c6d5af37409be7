/* A small TAP producer for the C unit tests: CHECK(cond, name) prints one
 * "ok"/"not ok" line; done_testing() prints the plan and returns the status. */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_n, unit_failed;

#define CHECK(cond, ...) do { \
	int ok_ = !!(cond); \
	unit_n++; \
	if (ok_) { printf("ok %d - ", unit_n); } \
	else { unit_failed++; printf("not ok %d - ", unit_n); } \
	printf(__VA_ARGS__); \
	printf("\n"); \
	if (!ok_) printf("#   at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
} while (0)

#define CHECK_STR(got, want, ...) do { \
	const char *g_ = (got), *w_ = (want); \
	int eq_ = g_ && w_ && strcmp(g_, w_) == 0; \
	CHECK(eq_, __VA_ARGS__); \
	if (!eq_) printf("#   got '%s'\n#   want '%s'\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
} while (0)

static inline int done_testing(void)
{
	printf("1..%d\n", unit_n);
	return unit_failed ? 1 : 0;
}

#endif
