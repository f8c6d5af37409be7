/* The statistics behind evalscore's scorecards: a seeded random generator
 * for bootstrap resampling, resamples as item multiplicities, quantiles,
 * classification reports from a confusion matrix (as scikit-learn computes
 * them), confidence intervals and paired-bootstrap p-values (as sacreBLEU
 * computes them), and the retrieval metrics of one ranked query.
 *
 * The caller owns every array passed in and out; nothing here allocates
 * what the caller frees, prints or exits. */
#ifndef PL_EVSTATS_H
#define PL_EVSTATS_H

#include <stddef.h>
#include <stdint.h>

/* xoshiro256** seeded through splitmix64: the same seed gives the same
 * sequence on every machine. */
struct pl_ev_rng {
	uint64_t s[4];
};

void pl_ev_rng_seed(struct pl_ev_rng *r, uint64_t seed);
uint64_t pl_ev_rng_next(struct pl_ev_rng *r);
/* Uniform in [0, n), n >= 1, without modulo bias (Lemire's method). */
uint64_t pl_ev_rng_below(struct pl_ev_rng *r, uint64_t n);

/* One bootstrap resample of n items drawn with replacement, as
 * multiplicities: w[i] is how often item i was drawn (the w sum to n). */
void pl_ev_resample(struct pl_ev_rng *r, uint32_t *w, size_t n);

/* The q-quantile (0 <= q <= 1) of the multiset in which v[i] occurs w[i]
 * times (w NULL: once each), v sorted ascending, with linear interpolation
 * between the closest ranks: numpy's default, Hyndman and Fan's type 7.
 * NaN when the multiset is empty. */
double pl_ev_quantile(const double *v, const uint32_t *w, size_t n, double q);

/* The 95% interval of bootstrap scores as sacreBLEU's estimate_ci takes it:
 * with s sorted ascending (done here, in place), the (B/40)-th smallest and
 * the (B/40)-th largest, counting from 0. NaN scores (resamples without an
 * item the metric applies to) are left out, B counting only the others;
 * NaN bounds when none is left. */
void pl_ev_ci95(double *s, size_t B, double *lo, double *hi);

/* sacreBLEU's paired bootstrap p-value (--paired-bs): with d[b] =
 * |sys[b] - base[b]| over B resamples of the same items, the share of
 * d[b] - mean(d) that exceed |observed| (the difference of the real
 * scores), counted with +1 above and below: (c + 1) / (B + 1). Resamples
 * where either score is NaN are left out. NaN when none is left. */
double pl_ev_paired_p(const double *sys, const double *base, size_t B, double observed);

/* --- classification ----------------------------------------------------- */

enum pl_ev_avg { PL_EV_MACRO, PL_EV_MICRO, PL_EV_WEIGHTED };
enum pl_ev_score { PL_EV_PRECISION, PL_EV_RECALL, PL_EV_F1 };

/* cm is an L x L confusion matrix, cm[true * L + predicted], as
 * scikit-learn's confusion_matrix lays it out (counts may be weighted).
 *
 * Per-class precision, recall, F1 and support (true count) of class c. A
 * ratio whose denominator is 0 is 0, as scikit-learn's zero_division
 * default ("warn") gives. */
void pl_ev_class_prf(const double *cm, size_t L, size_t c, double *p, double *r, double *f1,
		     double *support);

/* The averaged score over the labels that occur (as a true or a predicted
 * label; scikit-learn's labels=None): macro, the unweighted mean; weighted,
 * the mean weighted by support; micro, from the pooled counts. NaN when no
 * label occurs. */
double pl_ev_prf(const double *cm, size_t L, enum pl_ev_score what, enum pl_ev_avg avg);

/* --- retrieval ---------------------------------------------------------- */

struct pl_ev_retrieval {
	double recall, precision, hit, rr, ndcg;
};

/* Metrics at cutoff k (0: the whole ranking) of one query, from rel[i] (1
 * when the i-th result, best first, is relevant; results already without
 * duplicates) and the number of relevant items nrel >= 1. Binary gain with
 * a log2(rank + 1) discount for nDCG; precision divides by k (by the
 * ranking's length when k is 0, 0 for an empty ranking), as trec_eval's
 * P@k; rr is the reciprocal rank of the first relevant result within k, or
 * 0. */
void pl_ev_retrieval(const unsigned char *rel, size_t n, size_t nrel, size_t k,
		     struct pl_ev_retrieval *out);

#endif
