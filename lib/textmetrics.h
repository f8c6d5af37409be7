/* Reference-based text metrics, computed as their reference implementations
 * do: sacreBLEU's corpus BLEU (13a tokenizer, exp smoothing) and chrF/chrF++
 * (beta 2, char order 6, word order 0 or 2), Google rouge-score's ROUGE-1,
 * ROUGE-2, ROUGE-L and ROUGE-Lsum (its tokenizer, optional Porter stemming),
 * and the SQuAD v1.1 script's exact match and F1 (its normalization, max over
 * references).
 *
 * Every metric is a vector of sufficient statistics per item that add up
 * over a corpus, and a score computed from a sum: corpus BLEU and chrF from
 * summed n-gram counts, the averaged metrics (ROUGE, EM, F1) from summed
 * per-item scores. Bootstrap resampling therefore only sums statistics.
 *
 * The caller owns every array; nothing here allocates what the caller frees,
 * prints or exits (running out of memory ends the process, as pl_xmalloc
 * does). Texts are UTF-8 (each invalid byte is taken as U+FFFD); lower
 * casing, white space and \w are Python's (str.lower(), str.split(), re),
 * through utf8proc, so non-ASCII text scores as the Python tools score it.
 * The functions are safe to call from several threads at once.
 *
 * Statistics of one item, as pl_tm_item writes them:
 *   bleu       [hyp_len, ref_len, matches 1..4, totals 1..4] (sacreBLEU's
 *              order); ref_len is the closest reference length, the shorter
 *              on a tie
 *   chrf       [hyp, ref, matches] n-gram counts for character orders 1..6,
 *   chrf++     then (chrF++) word orders 1..2, against the reference with
 *              the best chrF of the item
 *   others     [the item's score]: for ROUGE the best F-measure over the
 *              references (rouge-score's score_multi), for exact_match and
 *              f1 the best over the references, as the SQuAD script takes */
#ifndef PL_TEXTMETRICS_H
#define PL_TEXTMETRICS_H

#include <stddef.h>

enum pl_tm_metric {
	PL_TM_BLEU,		/* 0..100, as sacreBLEU prints it */
	PL_TM_CHRF,		/* 0..100, chrF2 (word order 0) */
	PL_TM_CHRFPP,		/* 0..100, chrF++ (word order 2) */
	PL_TM_ROUGE1,		/* 0..1, F-measure, mean over items */
	PL_TM_ROUGE2,
	PL_TM_ROUGEL,
	PL_TM_ROUGELSUM,	/* summary-level LCS; sentences split at newlines */
	PL_TM_EXACT_MATCH,	/* 0..1, mean over items */
	PL_TM_F1,		/* 0..1, SQuAD token F1, mean over items */
	PL_TM_NMETRICS
};

struct pl_tm_opts {
	int rouge_stem;		/* Porter-stem tokens for ROUGE (rouge-score's use_stemmer) */
	int lowercase;		/* BLEU/chrF: sacreBLEU's -lc; default 0 */
};

/* "bleu", "chrf", "chrf++", "rouge1", "rouge2", "rougeL", "rougeLsum",
 * "exact_match", "f1"; and back. pl_tm_metric_of returns -1 for others. */
const char *pl_tm_name(enum pl_tm_metric m);
int pl_tm_metric_of(const char *name);

/* The number of doubles of statistics one item has for m. At most
 * PL_TM_MAXSTATS. */
#define PL_TM_MAXSTATS 64
size_t pl_tm_nstats(enum pl_tm_metric m);

/* The statistics of one item: hyp against nrefs references (nrefs >= 1;
 * 0 is taken as one empty reference; a NULL string as an empty one),
 * written to stats[0 .. pl_tm_nstats(m)). */
void pl_tm_item(enum pl_tm_metric m, const struct pl_tm_opts *o, const char *hyp,
		const char *const *refs, size_t nrefs, double *stats);

/* The corpus score from statistics summed over nitems items (for one item:
 * that item's own score, sentence-level with the same smoothing).
 *
 * BLEU over nitems > 1 is sacreBLEU's corpus_score (exp smoothing, no
 * effective order). With nitems == 1 it is its sentence-level BLEU, as
 * sacrebleu.sentence_bleu() computes it: exp smoothing with effective
 * order, so that orders the hypothesis is too short to have are left out
 * rather than zeroing the score (sacreBLEU recommends this for sentences;
 * it is what evalscore's per-item BLEU wants). A one-segment corpus scored
 * with the sacrebleu command therefore differs when the hypothesis has
 * fewer than four tokens. chrF is the same at both levels. The averaged
 * metrics are sum[0] / nitems, and 0 for nitems == 0. */
double pl_tm_score(enum pl_tm_metric m, const struct pl_tm_opts *o, const double *sum,
		   size_t nitems);

/* sacreBLEU-style signature into out (size n), for example
 * "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0" for BLEU and
 * "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0" for chrF
 * (version: the sacreBLEU release reproduced); for ROUGE
 * "rouge-score|stem:no|tok:default", for EM/F1 "squad-v1.1". The number of
 * references is that of the corpus scored; 0 writes "var", sacreBLEU's word
 * for a number that varies between segments. */
void pl_tm_signature(enum pl_tm_metric m, const struct pl_tm_opts *o, size_t nrefs,
		     char *out, size_t n);

#endif
