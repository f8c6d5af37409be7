/* Exact top-k (see topk.h). The work is cut into units of one block of
 * queries times one block of stored vectors; each thread takes units in turn,
 * computes the block's scores with a single-threaded sgemm into a buffer that
 * fits its L2 cache, and feeds them to its own heaps, one per query. At the
 * end the threads' heaps are merged. Splitting the stored vectors between
 * threads (rather than one multi-threaded sgemm, then a parallel selection)
 * keeps each block of scores in the cache of the core that made it. */
#include "topk.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define QBLOCK 256	/* queries per sgemm */
#define VBLOCK 2048	/* stored vectors per sgemm: 256 x 2048 scores are 2 MB */

struct job {
	const struct pl_topk_seg *segs;
	int dim;
	const float *q;
	size_t nq, k, nqb;
	pl_topk_tie_fn tie;
	void *ctx;
	const uint32_t *useg;	/* per vector block: its segment and first row */
	const size_t *ustart;
	size_t nvb, nunits;
	size_t next;		/* the next unit to take (atomic) */
};

struct worker {
	struct job *j;
	struct pl_topk_hit *heap;	/* nq heaps of k */
	size_t *n;
	float *scores;
	pthread_t tid;
};

/* Whether a ranks below b: a lower score, or an equal one and a later id. */
static inline int worse(const struct job *j, const struct pl_topk_hit *a,
			const struct pl_topk_hit *b)
{
	if (a->score != b->score)
		return a->score < b->score;
	return j->tie(j->ctx, a->seg, a->row, b->seg, b->row) > 0;
}

/* A min-heap on rank: h[0] is the worst of the best k so far. */
static void sift_down(const struct job *j, struct pl_topk_hit *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, c = l;
		if (l >= n)
			break;
		if (l + 1 < n && worse(j, &h[l + 1], &h[l]))
			c = l + 1;
		if (!worse(j, &h[c], &h[i]))
			break;
		struct pl_topk_hit t = h[c];
		h[c] = h[i];
		h[i] = t;
		i = c;
	}
}

static void push(const struct job *j, struct pl_topk_hit *h, size_t *n, size_t k,
		 const struct pl_topk_hit *x)
{
	if (*n < k) {
		size_t i = (*n)++;
		h[i] = *x;
		while (i > 0 && worse(j, &h[i], &h[(i - 1) / 2])) {
			struct pl_topk_hit t = h[i];
			h[i] = h[(i - 1) / 2];
			h[(i - 1) / 2] = t;
			i = (i - 1) / 2;
		}
	} else if (worse(j, &h[0], x)) {
		h[0] = *x;
		sift_down(j, h, *n, 0);
	}
}

static void run_unit(struct worker *w, size_t u)
{
	const struct job *j = w->j;
	size_t vb = u / j->nqb, qb = (u % j->nqb) * QBLOCK;
	const struct pl_topk_seg *s = &j->segs[j->useg[vb]];
	size_t start = j->ustart[vb];
	size_t n = s->rows - start < VBLOCK ? s->rows - start : VBLOCK;
	size_t m = j->nq - qb < QBLOCK ? j->nq - qb : QBLOCK;
	uint32_t seg = j->useg[vb];

	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, j->dim, 1.0f,
		    j->q + qb * (size_t)j->dim, j->dim, s->vec + start * (size_t)j->dim, j->dim,
		    0.0f, w->scores, (int)n);
	for (size_t i = 0; i < m; i++) {
		const float *row = w->scores + i * n;
		struct pl_topk_hit *h = w->heap + (qb + i) * j->k;
		size_t *hn = &w->n[qb + i];
		float thr = *hn < j->k ? -INFINITY : h[0].score;
		for (size_t c = 0; c < n; c++) {
			if (row[c] < thr)
				continue;	/* the common case: not among the best */
			size_t r = start + c;
			if (s->dead && (s->dead[r >> 3] >> (r & 7) & 1))
				continue;
			struct pl_topk_hit x = { row[c], seg, (uint32_t)r };
			push(j, h, hn, j->k, &x);
			thr = *hn < j->k ? -INFINITY : h[0].score;
		}
	}
}

static void *work(void *arg)
{
	struct worker *w = arg;
	size_t u;

	while ((u = __atomic_fetch_add(&w->j->next, 1, __ATOMIC_RELAXED)) < w->j->nunits)
		run_unit(w, u);
	return NULL;
}

int pl_topk_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	return 1;
}

int pl_topk_search(const struct pl_topk_seg *segs, size_t nseg, int dim, const float *q,
		   size_t nq, size_t k, int threads, pl_topk_tie_fn tie, void *ctx,
		   struct pl_topk_hit *out, size_t *nout, char *err, size_t errlen)
{
	struct job j;
	struct worker *w = NULL;
	uint32_t *useg = NULL;
	size_t *ustart = NULL, nvb = 0, nw, started = 0;
	memset(nout, 0, nq * sizeof *nout);
	if (!nq || !k)
		return 0;
	for (size_t s = 0; s < nseg; s++)
		nvb += (segs[s].rows + VBLOCK - 1) / VBLOCK;
	if (!nvb)
		return 0;
	useg = pl_xmalloc(nvb * sizeof *useg);
	ustart = pl_xmalloc(nvb * sizeof *ustart);
	nvb = 0;
	for (size_t s = 0; s < nseg; s++)
		for (size_t r = 0; r < segs[s].rows; r += VBLOCK) {
			useg[nvb] = (uint32_t)s;
			ustart[nvb++] = r;
		}

	memset(&j, 0, sizeof j);
	j.segs = segs;
	j.dim = dim;
	j.q = q;
	j.nq = nq;
	j.k = k;
	j.nqb = (nq + QBLOCK - 1) / QBLOCK;
	j.tie = tie;
	j.ctx = ctx;
	j.useg = useg;
	j.ustart = ustart;
	j.nvb = nvb;
	j.nunits = nvb * j.nqb;

	if (threads <= 0)
		threads = pl_topk_cpus();
	nw = (size_t)threads < j.nunits ? (size_t)threads : j.nunits;
	/* our threads are the parallelism: OpenBLAS's own would fight them */
	openblas_set_num_threads(1);

	w = pl_xmalloc(nw * sizeof *w);
	for (size_t i = 0; i < nw; i++) {
		w[i].j = &j;
		w[i].heap = pl_xmalloc(nq * k * sizeof *w[i].heap);
		w[i].n = pl_xmalloc(nq * sizeof *w[i].n);
		memset(w[i].n, 0, nq * sizeof *w[i].n);
		w[i].scores = pl_xmalloc((size_t)QBLOCK * VBLOCK * sizeof *w[i].scores);
	}
	for (started = 1; started < nw; started++) {
		/* without a thread, the others do its share */
		if (pthread_create(&w[started].tid, NULL, work, &w[started]) != 0)
			break;
	}
	work(&w[0]);	/* the calling thread works too; the others finish the rest */
	for (size_t i = 1; i < started; i++)
		pthread_join(w[i].tid, NULL);

	/* merge the threads' heaps, then sort each best first */
	for (size_t i = 0; i < nq; i++) {
		struct pl_topk_hit *h = out + i * k;
		size_t n = 0;
		for (size_t t = 0; t < nw; t++)
			for (size_t c = 0; c < w[t].n[i]; c++)
				push(&j, h, &n, k, &w[t].heap[i * k + c]);
		nout[i] = n;
		while (n > 1) {
			struct pl_topk_hit x = h[0];
			h[0] = h[--n];
			h[n] = x;
			sift_down(&j, h, n, 0);
		}
	}
	for (size_t i = 0; i < nw; i++) {
		free(w[i].heap);
		free(w[i].n);
		free(w[i].scores);
	}
	free(w);
	free(useg);
	free(ustart);
	return 0;
}
