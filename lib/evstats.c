#include "evstats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void pl_ev_rng_seed(struct pl_ev_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t pl_ev_rng_next(struct pl_ev_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

uint64_t pl_ev_rng_below(struct pl_ev_rng *r, uint64_t n)
{
	/* Lemire, "Fast random integer generation in an interval" (2019) */
	unsigned __int128 m = (unsigned __int128)pl_ev_rng_next(r) * n;
	uint64_t low = (uint64_t)m;
	if (low < n) {
		uint64_t t = -n % n;
		while (low < t) {
			m = (unsigned __int128)pl_ev_rng_next(r) * n;
			low = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

void pl_ev_resample(struct pl_ev_rng *r, uint32_t *w, size_t n)
{
	memset(w, 0, n * sizeof *w);
	for (size_t i = 0; i < n; i++)
		w[pl_ev_rng_below(r, n)]++;
}

/* The value at 0-based position pos of the expanded multiset. */
static double at_rank(const double *v, const uint32_t *w, size_t n, uint64_t pos, size_t *from,
		      uint64_t *before)
{
	size_t i = *from;
	uint64_t seen = *before;
	for (; i < n; i++) {
		uint64_t c = w ? w[i] : 1;
		if (pos < seen + c)
			break;
		seen += c;
	}
	*from = i;
	*before = seen;
	return i < n ? v[i] : v[n - 1];
}

double pl_ev_quantile(const double *v, const uint32_t *w, size_t n, double q)
{
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += w ? w[i] : 1;
	if (!total)
		return NAN;
	double h = (double)(total - 1) * q;
	double fl = floor(h);
	uint64_t lo = (uint64_t)fl;
	size_t from = 0;
	uint64_t before = 0;
	double a = at_rank(v, w, n, lo, &from, &before);
	if (lo + 1 >= total || h == fl)
		return a;
	double b = at_rank(v, w, n, lo + 1, &from, &before);
	/* numpy's _lerp: exact at both ends */
	double t = h - fl;
	return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	if (isnan(a) || isnan(b))
		return isnan(a) - isnan(b);
	return (a > b) - (a < b);
}

void pl_ev_ci95(double *s, size_t B, double *lo, double *hi)
{
	qsort(s, B, sizeof *s, cmp_double);
	while (B && isnan(s[B - 1]))
		B--;
	if (!B) {
		*lo = *hi = NAN;
		return;
	}
	size_t l = B / 40, u = B - l - 1;
	*lo = s[l];
	*hi = s[u];
}

double pl_ev_paired_p(const double *sys, const double *base, size_t B, double observed)
{
	double mean = 0;
	size_t c = 0, n = 0;

	for (size_t b = 0; b < B; b++)
		if (!isnan(sys[b]) && !isnan(base[b])) {
			mean += fabs(sys[b] - base[b]);
			n++;
		}
	if (!n || isnan(observed))
		return NAN;
	mean /= (double)n;
	for (size_t b = 0; b < B; b++)
		if (!isnan(sys[b]) && !isnan(base[b]) && fabs(sys[b] - base[b]) - mean > fabs(observed))
			c++;
	return (double)(c + 1) / (double)(n + 1);
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

static void class_counts(const double *cm, size_t L, size_t c, double *tp, double *fp, double *fn)
{
	double row = 0, col = 0;
	for (size_t j = 0; j < L; j++) {
		row += cm[c * L + j];
		col += cm[j * L + c];
	}
	*tp = cm[c * L + c];
	*fn = row - *tp;
	*fp = col - *tp;
}

static double fscore(double p, double r)
{
	return p + r > 0 ? 2 * p * r / (p + r) : 0;
}

void pl_ev_class_prf(const double *cm, size_t L, size_t c, double *p, double *r, double *f1,
		     double *support)
{
	double tp, fp, fn;
	class_counts(cm, L, c, &tp, &fp, &fn);
	*p = ratio(tp, tp + fp);
	*r = ratio(tp, tp + fn);
	*f1 = fscore(*p, *r);
	*support = tp + fn;
}

static double pick(enum pl_ev_score what, double p, double r, double f)
{
	return what == PL_EV_PRECISION ? p : what == PL_EV_RECALL ? r : f;
}

double pl_ev_prf(const double *cm, size_t L, enum pl_ev_score what, enum pl_ev_avg avg)
{
	double sum = 0, wsum = 0, TP = 0, FP = 0, FN = 0;
	size_t nlab = 0;

	for (size_t c = 0; c < L; c++) {
		double tp, fp, fn;
		class_counts(cm, L, c, &tp, &fp, &fn);
		if (tp + fp + fn == 0)
			continue;	/* not a label of this sample */
		nlab++;
		TP += tp;
		FP += fp;
		FN += fn;
		double p = ratio(tp, tp + fp), r = ratio(tp, tp + fn), f = fscore(p, r);
		double s = pick(what, p, r, f);
		if (avg == PL_EV_WEIGHTED) {
			sum += s * (tp + fn);
			wsum += tp + fn;
		} else {
			sum += s;
		}
	}
	if (!nlab)
		return NAN;
	if (avg == PL_EV_MICRO) {
		double p = ratio(TP, TP + FP), r = ratio(TP, TP + FN);
		return pick(what, p, r, fscore(p, r));
	}
	if (avg == PL_EV_WEIGHTED)
		return ratio(sum, wsum);
	return sum / (double)nlab;
}

void pl_ev_retrieval(const unsigned char *rel, size_t n, size_t nrel, size_t k,
		     struct pl_ev_retrieval *out)
{
	size_t cut = k && k < n ? k : n, found = 0;
	double dcg = 0, idcg = 0;

	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < cut; i++) {
		if (!rel[i])
			continue;
		found++;
		dcg += 1 / log2((double)i + 2);
		if (out->rr == 0)
			out->rr = 1 / ((double)i + 1);
	}
	size_t ideal = k && k < nrel ? k : nrel;
	for (size_t i = 0; i < ideal; i++)
		idcg += 1 / log2((double)i + 2);
	out->recall = nrel ? (double)found / (double)nrel : 0;
	out->hit = found > 0;
	size_t denom = k ? k : n;
	out->precision = denom ? (double)found / (double)denom : 0;
	out->ndcg = idcg > 0 ? dcg / idcg : 0;
}
