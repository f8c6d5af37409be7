/* Unit tests for lib/topk.c: the k best rows by inner product, against a
 * naive reference, across segments, deletions, ties, thread counts and
 * query blocks. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "buf.h"
#include "topk.h"
#include "unit.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) / (double)(1ull << 53)) - 0.5f;
}

/* ids order by (segment, row): the tie-break of these tests */
static int tie(void *ctx, uint32_t sa, uint32_t ra, uint32_t sb, uint32_t rb)
{
	(void)ctx;
	if (sa != sb)
		return sa < sb ? -1 : 1;
	return ra < rb ? -1 : ra > rb;
}

struct ref {
	float score;
	uint32_t seg, row;
};

static int ref_cmp(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return tie(NULL, x->seg, x->row, y->seg, y->row);
}

/* Compare pl_topk_search with sorting every live row by its score, computed
 * the same way (float dot products may differ in the last bit from sgemm's,
 * so a different order is accepted only between near-equal scores). */
static int check(const struct pl_topk_seg *segs, size_t nseg, int dim, const float *q, size_t nq,
		 size_t k, int threads, int exact_ties)
{
	size_t total = 0;
	for (size_t s = 0; s < nseg; s++)
		total += segs[s].rows;
	struct ref *all = pl_xmalloc((total + 1) * sizeof *all);
	struct pl_topk_hit *out = pl_xmalloc(nq * k * sizeof *out);
	size_t *nout = pl_xmalloc(nq * sizeof *nout);
	char err[100];
	int bad = 0;

	pl_topk_search(segs, nseg, dim, q, nq, k, threads, tie, NULL, out, nout, err, sizeof err);
	for (size_t i = 0; i < nq; i++) {
		size_t n = 0;
		for (size_t s = 0; s < nseg; s++)
			for (size_t r = 0; r < segs[s].rows; r++) {
				if (segs[s].dead && (segs[s].dead[r >> 3] >> (r & 7) & 1))
					continue;
				double d = 0;
				for (int c = 0; c < dim; c++)
					d += (double)q[i * dim + c] * segs[s].vec[r * dim + c];
				all[n++] = (struct ref){ (float)d, (uint32_t)s, (uint32_t)r };
			}
		qsort(all, n, sizeof *all, ref_cmp);
		size_t want = n < k ? n : k;
		if (nout[i] != want) {
			bad++;
			continue;
		}
		for (size_t j = 0; j < want; j++) {
			const struct pl_topk_hit *h = &out[i * k + j];
			if (h->seg == all[j].seg && h->row == all[j].row)
				continue;
			if (!exact_ties && fabsf(h->score - all[j].score) < 1e-5f)
				continue;
			if (bad++ < 3)
				printf("#   query %zu rank %zu: got %u/%u %.9g, want %u/%u %.9g\n", i, j,
				       h->seg, h->row, (double)h->score, all[j].seg, all[j].row,
				       (double)all[j].score);
		}
	}
	free(all);
	free(out);
	free(nout);
	return bad;
}

int main(void)
{
	enum { DIM = 24 };
	size_t rows[] = { 1, 1500, 3000, 37, 0 };
	struct pl_topk_seg segs[5];
	float *vec[5], *q;
	unsigned char *dead[5];
	size_t nq = 600;

	for (int s = 0; s < 5; s++) {
		vec[s] = pl_xmalloc((rows[s] + 1) * DIM * sizeof(float));
		for (size_t i = 0; i < rows[s] * DIM; i++)
			vec[s][i] = frand();
		dead[s] = calloc((rows[s] + 8) / 8, 1);
		segs[s] = (struct pl_topk_seg){ vec[s], rows[s], NULL };
	}
	q = pl_xmalloc(nq * DIM * sizeof *q);
	for (size_t i = 0; i < nq * DIM; i++)
		q[i] = frand();

	CHECK(check(segs, 5, DIM, q, 5, 10, 1, 0) == 0, "k=10, one thread, five queries");
	CHECK(check(segs, 5, DIM, q, nq, 10, 3, 0) == 0, "k=10, three threads, 600 queries");
	CHECK(check(segs, 5, DIM, q, 300, 1, 2, 0) == 0, "k=1");
	CHECK(check(segs, 1, DIM, q, 7, 5, 2, 0) == 0, "k beyond a one-row store gives one");
	CHECK(check(segs, 5, DIM, q, 3, 5000, 2, 0) == 0, "k beyond every row gives them all");

	/* deleted rows never come back */
	for (int s = 1; s < 4; s++) {
		for (size_t r = 0; r < rows[s]; r += 3)
			dead[s][r >> 3] |= (unsigned char)(1u << (r & 7));
		segs[s].dead = dead[s];
	}
	CHECK(check(segs, 5, DIM, q, 200, 20, 2, 0) == 0, "deleted rows are skipped");
	segs[0].dead = dead[0];
	dead[0][0] = 1;
	CHECK(check(segs, 1, DIM, q, 4, 3, 2, 0) == 0, "a store with nothing live gives nothing");

	/* equal scores rank by id (here: segment, then row), on every thread count */
	for (size_t r = 0; r < rows[2]; r++)
		for (int c = 0; c < DIM; c++)
			vec[2][r * DIM + c] = (float)((r % 4) == 0) * (c == 0 ? 0.5f : 0.0f);
	for (size_t r = 0; r < rows[1]; r++)
		for (int c = 0; c < DIM; c++)
			vec[1][r * DIM + c] = (float)((r % 7) == 0) * (c == 0 ? 0.5f : 0.0f);
	float one[DIM] = { 1.0f };
	segs[1].dead = segs[2].dead = NULL;
	CHECK(check(segs, 5, DIM, one, 1, 50, 1, 1) == 0, "ties rank by id (one thread)");
	CHECK(check(segs, 5, DIM, one, 1, 50, 4, 1) == 0, "ties rank by id (four threads)");
	float zero[DIM] = { 0 };
	CHECK(check(segs, 5, DIM, zero, 1, 7, 3, 1) == 0, "a zero query ranks everything by id");

	for (int s = 0; s < 5; s++) {
		free(vec[s]);
		free(dead[s]);
	}
	free(q);
	return done_testing();
}
