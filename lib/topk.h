/* Exact top-k by inner product: blocks of queries times blocks of stored
 * vectors with OpenBLAS sgemm, and a small heap per query, on several
 * threads. The caller owns every array passed in and out; nothing here
 * allocates anything that outlives a call, prints or exits. */
#ifndef PL_TOPK_H
#define PL_TOPK_H

#include <stddef.h>
#include <stdint.h>

/* A run of stored vectors: rows of dim floats, row-major; dead (a bitmap,
 * bit row set when deleted) may be NULL. */
struct pl_topk_seg {
	const float *vec;
	size_t rows;
	const unsigned char *dead;
};

struct pl_topk_hit {
	float score;
	uint32_t seg, row;
};

/* Among equal scores, whether (sa, ra) ranks before (sb, rb): negative if
 * so, positive if after, 0 never for two different rows. Called from several
 * threads at once. */
typedef int (*pl_topk_tie_fn)(void *ctx, uint32_t sa, uint32_t ra, uint32_t sb, uint32_t rb);

/* For each of the nq queries (rows of q, dim floats each), the k best live
 * rows, best first, into out[i * k ...]; nout[i] is how many (fewer than k
 * only when fewer rows are live). threads <= 0 means one per available CPU.
 * Returns 0; -1 is reserved for failures (err filled), of which there are
 * none yet: without the threads asked for, it runs on fewer. */
int pl_topk_search(const struct pl_topk_seg *segs, size_t nseg, int dim, const float *q,
		   size_t nq, size_t k, int threads, pl_topk_tie_fn tie, void *ctx,
		   struct pl_topk_hit *out, size_t *nout, char *err, size_t errlen);

/* The number of CPUs this process may run on. */
int pl_topk_cpus(void);

#endif
