/* Unit tests for lib/textmetrics.c against the published test values of the
 * reference implementations: sacreBLEU's test suite (test_bleu.py,
 * test_sentence_bleu.py, test_chrf.py) and README, rouge-score's
 * rouge_scorer_test.py (whose Rouge155 values come from ROUGE-1.5.5 itself),
 * and the SQuAD v1.1 evaluation script's definitions worked by hand. The few
 * values marked "peer" were computed with sacreBLEU 2.6.0 or NLTK 3.8 where
 * no published value covers a behaviour.
 *
 * The library source is included, not linked, to reach the parameterized
 * internals (smoothing methods, n-gram orders, beta, epsilon smoothing,
 * tokenizers) that many published values were computed with; the public
 * interface fixes sacreBLEU's defaults, and is tested on its own too. */
#include "../../lib/textmetrics.c"

#include <math.h>

#include "unit.h"

#define N(a) (sizeof(a) / sizeof *(a))

static int near(double got, double want, double eps)
{
	int ok = fabs(got - want) <= eps;
	if (!ok)
		printf("#   got %.10f, want %.10f (within %g)\n", got, want, eps);
	return ok;
}

/* corpus score through the public interface; refs is row-major, nrefs a
 * row; the sums go to sum (pl_tm_nstats(m) doubles) if not NULL */
static double corpus(enum pl_tm_metric m, const struct pl_tm_opts *o, const char *const *hyps,
		     size_t n, const char *const *refs, size_t nrefs, double *sum)
{
	double st[PL_TM_MAXSTATS], local[PL_TM_MAXSTATS];
	if (!sum)
		sum = local;
	memset(sum, 0, pl_tm_nstats(m) * sizeof *sum);
	for (size_t i = 0; i < n; i++) {
		pl_tm_item(m, o, hyps[i], refs + i * nrefs, nrefs, st);
		for (size_t k = 0; k < pl_tm_nstats(m); k++)
			sum[k] += st[k];
	}
	return pl_tm_score(m, o, sum, n);
}

static double item(enum pl_tm_metric m, const struct pl_tm_opts *o, const char *hyp,
		   const char *const *refs, size_t nrefs)
{
	return corpus(m, o, &hyp, 1, refs, nrefs, NULL);
}

/* BLEU with sacreBLEU's other settings (raw_corpus_bleu, compute_bleu, ...) */
static double bleu_ex(const char *const *hyps, size_t n, const char *const *refs, size_t nrefs,
		      int order, int tok13a, enum smooth sm, double sv, int eff, double *sum)
{
	double st[2 + 2 * BLEU_MAXORDER], local[2 + 2 * BLEU_MAXORDER];
	struct bleu_cfg c = { order, tok13a, 0 };
	if (!sum)
		sum = local;
	memset(sum, 0, sizeof local);
	for (size_t i = 0; i < n; i++) {
		bleu_stats(&c, hyps[i], refs + i * nrefs, nrefs, st);
		for (int k = 0; k < 2 + 2 * order; k++)
			sum[k] += st[k];
	}
	return bleu_score(sum, order, sm, sv, eff);
}

static double chrf_ex(const char *const *hyps, size_t n, const char *const *refs, double beta,
		      int whitespace, int eps)
{
	double st[3 * CHRF_MAXORDER], sum[3 * CHRF_MAXORDER] = { 0 };
	struct chrf_cfg c = { 6, 0, beta, whitespace, eps, 0 };
	for (size_t i = 0; i < n; i++) {
		chrf_stats(&c, hyps[i], refs + i, 1, st);
		for (int k = 0; k < 18; k++)
			sum[k] += st[k];
	}
	return chrf_fscore(sum, 6, beta, eps);
}

/* the 13a tokens of s, joined by single spaces, into out */
static const char *tokens13a(const char *s, int lowercase, char *out, size_t cap)
{
	struct bleu_cfg c = { 4, 1, lowercase };
	struct work *w = work_get(1);
	size_t o = 0;

	bleu_tokens(w, &c, s, strlen(s));
	for (size_t k = 0; k < w->sym.n; k++) {
		for (size_t j = 0; j < w->in.cap; j++) {
			struct ient *e = &w->in.e[j];
			if (e->gen != w->in.gen || e->id != w->sym.v[k])
				continue;
			if (o + e->len + 2 < cap) {
				if (k)
					out[o++] = ' ';
				memcpy(out + o, w->in.keys.p + e->off, e->len);
				o += e->len;
			}
			break;
		}
	}
	out[o] = '\0';
	work_put(w);
	return out;
}

static const char *lower(const char *s, char *out)
{
	struct u32s a = { 0 }, b = { 0 };
	struct pl_buf o = PL_BUF_INIT;

	decode(s, strlen(s), &a);
	py_lower(a.v, a.n, &b);
	encode(b.v, b.n, &o);
	memcpy(out, o.p, o.n);
	out[o.n] = '\0';
	free(a.v);
	free(b.v);
	pl_buf_free(&o);
	return out;
}

/* sacreBLEU's README example, also test_bleu.py's _hyps/_refs */
static const char *const readme_hyps[] = {
	"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him.",
};
static const char *const readme_refs[] = {
	"The dog bit the man.", "The dog had bit the man.",
	"It was not unexpected.", "No one was surprised.",
	"The man bit him first.", "The man had bitten the dog.",
};

static void test_bleu(void)
{
	double sum[2 + 2 * BLEU_MAXORDER];
	char buf[64];

	CHECK(near(corpus(PL_TM_BLEU, NULL, readme_hyps, 3, readme_refs, 2, sum), 48.530827, 1e-6),
	      "bleu: README corpus example, two references (test_bleu.py: 48.530827)");
	CHECK(sum[0] == 17 && sum[1] == 18, "bleu: README hyp_len 17, ref_len 18");
	snprintf(buf, sizeof buf, "%.1f/%.1f/%.1f/%.1f", 100 * sum[2] / sum[6], 100 * sum[3] / sum[7],
		 100 * sum[4] / sum[8], 100 * sum[5] / sum[9]);
	CHECK_STR(buf, "82.4/50.0/45.5/37.5", "bleu: README precisions");

	static const char *const var_refs[] = {
		"", "The dog had bit the man.",
		"It was not unexpected.", "No one was surprised.",
		"The man bit him first.", "The man had bitten the dog.",
	};
	snprintf(buf, sizeof buf, "%.2f", corpus(PL_TM_BLEU, NULL, readme_hyps, 3, var_refs, 2, sum));
	CHECK_STR(buf, "29.44", "bleu: README, an empty reference counts (29.44)");
	CHECK(sum[1] == 19, "bleu: README empty-reference ref_len 19");

	static const char *const empty[] = { "", "", "" };
	CHECK(corpus(PL_TM_BLEU, NULL, empty, 3, readme_refs, 2, NULL) == 0.0,
	      "bleu: empty hypotheses score 0 and are not dropped");
	CHECK(near(bleu_ex(readme_hyps, 3, readme_refs, 2, 4, 0, SMOOTH_EXP, 0, 0, NULL), 49.1919566, 1e-6),
	      "bleu: tokenize none (test_bleu.py: 49.1919566)");
	CHECK(near(bleu_ex(readme_hyps, 3, readme_refs, 2, 4, 1, SMOOTH_NONE, 0, 0, NULL), 48.530827, 1e-6),
	      "bleu: smooth none (test_bleu.py: 48.530827)");
	static const char *const by_order[] = { "77.65", "60.50", "53.93", "48.53", "46.14", "43.28" };
	for (int order = 1; order <= 6; order++) {
		snprintf(buf, sizeof buf, "%.2f",
			 bleu_ex(readme_hyps, 3, readme_refs, 2, order, 1, SMOOTH_EXP, 0, 0, NULL));
		CHECK_STR(buf, by_order[order - 1], "bleu: max_ngram_order %d (test_bleu.py)", order);
	}

	/* raw_corpus_bleu: tokenize none, floor smoothing, effective order */
	static const char *const raw1h[] = { "this is a test", "another test" };
	static const char *const raw1r[] = { "ref1", "ref2" };
	CHECK(bleu_ex(raw1h, 2, raw1r, 1, 4, 0, SMOOTH_FLOOR, .01, 1, NULL) == 0.0,
	      "bleu: no matches score 0 (test_bleu.py #141)");
	static const char *const raw2[] = { "this is a test" };
	CHECK(near(bleu_ex(raw2, 1, raw2, 1, 4, 0, SMOOTH_FLOOR, .01, 1, NULL) / 100, 1.0, 1e-8),
	      "bleu: identical sentence scores 1.0");
	static const char *const raw3h[] = { "this is a fest" };
	CHECK(near(bleu_ex(raw3h, 1, raw2, 1, 4, 0, SMOOTH_FLOOR, .01, 1, NULL) / 100, 0.223606797749979, 1e-8),
	      "bleu: raw 'this is a fest' (test_bleu.py: 0.223606797749979)");
	static const char *const eo_h[] = { "test", "a test", "a little test" };
	static const char *const eo_r[] = { "a test" };
	static const double eo_v[] = { 0.3678794411714425, 1.0, 0.03218297948685433 };
	for (size_t i = 0; i < N(eo_h); i++)
		CHECK(near(bleu_ex(eo_h + i, 1, eo_r, 1, 4, 0, SMOOTH_FLOOR, .01, 1, NULL) / 100, eo_v[i], 1e-8),
		      "bleu: effective order '%s' (test_bleu.py)", eo_h[i]);
	static const char *const sth[] = { "am I am a character sequence" };
	static const char *const str[] = { "I am a symbol string sequence a a" };
	bleu_ex(sth, 1, str, 1, 4, 0, SMOOTH_FLOOR, .01, 1, sum);
	CHECK(sum[2] == 4 && sum[3] == 2 && sum[4] == 1 && sum[5] == 0 && sum[6] == 6 &&
	      sum[7] == 5 && sum[8] == 4 && sum[9] == 3,
	      "bleu: statistics [4 2 1 0] of [6 5 4 3] (test_bleu.py)");
	CHECK(bleu_ex(sth, 1, str, 1, 4, 0, SMOOTH_FLOOR, 0.0, 1, NULL) == 0.0, "bleu: floor 0 offset (test_bleu.py)");
	CHECK(near(bleu_ex(sth, 1, str, 1, 4, 0, SMOOTH_FLOOR, 0.1, 1, NULL) / 100, 0.1555722182, 1e-8),
	      "bleu: floor 0.1 offset (test_bleu.py: 0.1555722182)");

	/* compute_bleu on given statistics */
	double s1[10] = { 11, 11, 9, 7, 5, 3, 10, 8, 6, 4 };
	CHECK(near(bleu_score(s1, 4, SMOOTH_NONE, 0, 0) / 100, 0.8375922397, 1e-8),
	      "bleu: compute_bleu scoring (test_bleu.py: 0.8375922397)");
	CHECK(near(pl_tm_score(PL_TM_BLEU, NULL, s1, 2) / 100, 0.8375922397, 1e-8),
	      "bleu: pl_tm_score on summed statistics");
	static const double degen[][11] = {
		{ 0, 1, 0, 0, 0, 0, 4, 4, 2, 1, 0.0 },	/* sys_len, ref_len, correct, total, floor value */
		{ 14, 10, 0, 0, 0, 0, 10, 11, 12, 0, 0.0 },
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0 },
		{ 6, 6, 6, 5, 4, 0, 6, 5, 4, 3, 0.0 },
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.1 },
		{ 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0.01 },
	};
	for (size_t i = 0; i < N(degen); i++)
		CHECK(bleu_score(degen[i], 4, SMOOTH_FLOOR, degen[i][10], 0) == 0.0,
		      "bleu: degenerate statistics %zu score 0 (test_bleu.py)", i);

	/* test_sentence_bleu.py: sentence level, effective order */
	const char *ro_ref[] = { "produc\xc5\xa3ia de zah\xc4\x83r brut se exprim\xc4\x83 \xc3\xaen zah\xc4\x83r alb;" };
	const char *ro_sys[] = { "Produc\xc8\x9bia de zah\xc4\x83r prim\xc4\x83 va fi exprimat\xc4\x83 \xc3\xaen ceea "
				 "ce prive\xc8\x99te zah\xc4\x83rul alb;" };
	CHECK(near(item(PL_TM_BLEU, NULL, ro_sys[0], ro_ref, 1), 8.493, 1e-3),
	      "bleu: one item is sentence BLEU, exp smoothing, effective order (8.493)");
	struct { enum smooth sm; double v; int tok; double want; } sent[] = {
		{ SMOOTH_NONE, 0, 1, 0.0 }, { SMOOTH_FLOOR, 0.1, 1, 4.51688 }, { SMOOTH_FLOOR, 0.5, 1, 10.10 },
		{ SMOOTH_ADDK, 1, 1, 14.882 }, { SMOOTH_ADDK, 2, 1, 21.389 }, { SMOOTH_EXP, 0, 0, 7.347 },
	};
	for (size_t i = 0; i < N(sent); i++)
		CHECK(near(bleu_ex(ro_sys, 1, ro_ref, 1, 4, sent[i].tok, sent[i].sm, sent[i].v, 1, NULL),
			   sent[i].want, 1e-3),
		      "bleu: sentence smoothing %d value %g tokenizer %s (test_sentence_bleu.py: %g)",
		      (int)sent[i].sm, sent[i].v, sent[i].tok ? "13a" : "none", sent[i].want);
	const char *z_ref[] = { "okay thanks" };
	for (int sm = SMOOTH_NONE; sm <= SMOOTH_EXP; sm++)
		CHECK(bleu_ex((const char *const[]){ "this is a cat" }, 1, z_ref, 1, 4, 1, (enum smooth)sm,
			      sm == SMOOTH_ADDK ? 1 : 0.1, 1, NULL) == 0.0,
		      "bleu: no unigram match scores 0 with smoothing %d (test_sentence_bleu.py)", sm);

	/* lower case (peer): Unicode lower casing with the final sigma */
	struct pl_tm_opts lc = { 0, 1 };
	static const char *const lch[] = { "The DOG bit the Man .", "\xce\x9f\xce\x94\xce\x9f\xce\xa3" };
	static const char *const lcr[] = { "the dog bit the man.", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82" };
	CHECK(near(corpus(PL_TM_BLEU, &lc, lch, 2, lcr, 1, NULL), 100, 1e-9), "bleu: -lc, Greek final sigma (peer: 100)");
	CHECK(corpus(PL_TM_BLEU, NULL, lch, 2, lcr, 1, NULL) < 50, "bleu: case matters without -lc");

	/* the n-gram table for segments beyond 65535 distinct tokens */
	for (size_t len = 1000; len <= 70000; len += 69000) {
		struct pl_buf h = PL_BUF_INIT, r = PL_BUF_INIT;
		for (size_t i = 0; i < len; i++) {
			pl_buf_printf(&h, "w%zu ", i);
			pl_buf_printf(&r, "w%zu ", i == len / 2 ? len : i);
		}
		const char *hv[] = { pl_buf_cstr(&h) }, *rv[] = { pl_buf_cstr(&r) };
		double st[10];
		pl_tm_item(PL_TM_BLEU, NULL, hv[0], rv, 1, st);
		CHECK(st[0] == len && st[1] == len && st[2] == len - 1 && st[3] == len - 3 &&
		      st[4] == len - 5 && st[5] == len - 7 && st[9] == len - 3,
		      "bleu: %zu distinct tokens, one replaced: matches n-grams not covering it", len);
		pl_buf_free(&h);
		pl_buf_free(&r);
	}

	/* 13a tokenization (peer: sacreBLEU's Tokenizer13a on the same lines) */
	struct { const char *in, *want; } tok[] = {
		{ "Hello, world! It's 3.5-4 &amp; <skipped>x", "Hello , world ! It's 3.5 - 4 & x" },
		{ "AT&amp;T paid $1,000.50 (net) -- e-mail me@x.org.",
		  "AT & T paid $ 1,000.50 ( net ) -- e-mail me @ x . org ." },
		{ "a.b,c 5.,6 x.y-9-z", "a . b , c 5 . , 6 x . y-9 - z" },
		{ "&amp;lt; &quot;quoted&quot; line-\nbreak", "< \" quoted \" linebreak" },
		{ "\xc3\x9cn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9\xc2\xa0spaces\xe3\x80\x80" "and\xe2\x80\x89thin.",
		  "\xc3\x9cn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 spaces and thin ." },
		{ "  leading and trailing \t ", "leading and trailing" },
	};
	char out[256];
	for (size_t i = 0; i < N(tok); i++)
		CHECK_STR(tokens13a(tok[i].in, 0, out, sizeof out), tok[i].want, "13a: tokens of line %zu", i);
	char bad[16];
	CHECK_STR(tokens13a("caf\xff x", 0, out, sizeof out), strcpy(bad, "caf\xef\xbf\xbd x"),
		  "13a: an invalid byte is U+FFFD");
}

static void test_chrf(void)
{
	/* test_chrf.py test_cases: beta 3, epsilon smoothing */
	struct { const char *h[2], *r[2]; double want; } eps[] = {
		{ { "abcdefg" }, { "hijklmnop" }, 0.0 }, { { "a" }, { "b" }, 0.0 },
		{ { "" }, { "b" }, 0.0 }, { { "" }, { "ref" }, 0.0 }, { { "" }, { "reference" }, 0.0 },
		{ { "aa" }, { "ab" }, 8.3333 }, { { "a", "b" }, { "a", "c" }, 8.3333 },
		{ { "a" }, { "a" }, 16.6667 }, { { "a b c" }, { "a b c" }, 50.0 }, { { "a b c" }, { "abc" }, 50.0 },
		{ { " risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists ." },
		  { "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists ." },
		  63.361730 },
		{ { " Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. " },
		  { "Das Verh\xc3\xa4ltnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich." }, 64.1302698 },
		{ { "Niemand hat die Absicht, eine Mauer zu errichten" },
		  { "Niemand hat die Absicht, eine Mauer zu errichten" }, 100.0 },
	};
	for (size_t i = 0; i < N(eps); i++)
		CHECK(near(chrf_ex(eps[i].h, eps[i].h[1] ? 2 : 1, eps[i].r, 3, 0, 1), eps[i].want, 1e-4),
		      "chrf: beta 3, eps smoothing, case %zu (test_chrf.py: %g)", i, eps[i].want);

	/* test_chrf.py effective-order cases (sacreBLEU's default smoothing);
	 * precision equals recall in each, so they hold for beta 2 as well */
	struct { const char *h[2], *r[2]; double want; } eff[] = {
		{ { "a" }, { "a" }, 100.0 }, { { "" }, { "reference" }, 0.0 }, { { "a b c" }, { "a b c" }, 100.0 },
		{ { "a b c" }, { "abc" }, 100.0 }, { { "" }, { "c" }, 0.0 }, { { "a", "b" }, { "a", "c" }, 50.0 },
		{ { "aa" }, { "ab" }, 25.0 },
	};
	for (size_t i = 0; i < N(eff); i++) {
		size_t n = eff[i].h[1] ? 2 : 1;
		CHECK(near(chrf_ex(eff[i].h, n, eff[i].r, 3, 0, 0), eff[i].want, 1e-4),
		      "chrf: beta 3, effective order, case %zu (test_chrf.py: %g)", i, eff[i].want);
		CHECK(near(corpus(PL_TM_CHRF, NULL, eff[i].h, n, eff[i].r, 1, NULL), eff[i].want, 1e-4),
		      "chrf: defaults, case %zu (%g)", i, eff[i].want);
	}

	/* test_chrf.py keep-whitespace cases */
	const char *wsh[] = { "Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich.",
			      "risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists ." };
	const char *wsr[] = { "Das Verh\xc3\xa4ltnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.",
			      "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists ." };
	CHECK(near(chrf_ex(wsh, 1, wsr, 3, 1, 0), 67.3481606, 1e-4), "chrf: keep white space 1 (test_chrf.py: 67.3481606)");
	CHECK(near(chrf_ex(wsh + 1, 1, wsr + 1, 3, 1, 0), 65.2414427, 1e-4),
	      "chrf: keep white space 2 (test_chrf.py: 65.2414427)");

	/* test_chrf.py sentence level: beta 2, epsilon smoothing, Czech */
	const char *czh[] = {
		"Co n\xc3\xa1s nejv\xc3\xad" "c tr\xc3\xa1p\xc3\xad, proto\xc5\xbe" "e l\xc3\xa9ka\xc5\x99i si vyb\xc3\xadraj\xc3\xad, kdo bude \xc5\xbe\xc3\xadt a kdo zem\xc5\x99" "e.",
		"Nebo prost\xc4\x9b nemaj\xc3\xad vybaven\xc3\xad, kter\xc3\xa9 by jim pomohlo, uvedli l\xc3\xa9ka\xc5\x99i.",
		"Lapali po dechu, jejich \xc5\xbeivoty skon\xc4\x8dily d\xc5\x99\xc3\xadv, ne\xc5\xbe skute\xc4\x8dn\xc4\x9b za\xc4\x8d" "aly.",
	};
	const char *czr[] = {
		"Nejv\xc3\xad" "ce smutn\xc3\xad jsme z toho, \xc5\xbe" "e mus\xc3\xadme rozhodovat o tom, kdo bude \xc5\xbe\xc3\xadt a kdo zem\xc5\x99" "e.",
		"A n\xc4\x9bkdy nem\xc3\xa1me ani pot\xc5\x99" "ebn\xc3\xbd materi\xc3\xa1l, abychom jim pomohli, popsali l\xc3\xa9ka\xc5\x99i.",
		"Lapali po dechu a pak jejich \xc5\xbeivot skon\xc4\x8dil - d\xc5\x99\xc3\xadv, ne\xc5\xbe skute\xc4\x8dn\xc4\x9b mohl za\xc4\x8d\xc3\xadt, p\xc5\x99ipomn\xc4\x9bli.",
	};
	const double czv[] = { 39.14078509, 31.22557079, 57.15704367 };
	for (int i = 0; i < 3; i++)
		CHECK(near(chrf_ex(czh + i, 1, czr + i, 2, 0, 1), czv[i], 1e-4),
		      "chrf: sentence level, eps smoothing, Czech %d (test_chrf.py: %g)", i, czv[i]);

	char buf[32];
	snprintf(buf, sizeof buf, "%.2f", corpus(PL_TM_CHRF, NULL, readme_hyps, 3, readme_refs, 2, NULL));
	CHECK_STR(buf, "59.73", "chrf: README corpus example, two references (chrF2 = 59.73)");
	CHECK(near(corpus(PL_TM_CHRF, NULL, readme_hyps, 3, readme_refs, 2, NULL), 59.7275178268, 1e-9),
	      "chrf: README example to 1e-9 (peer)");
	CHECK(near(corpus(PL_TM_CHRFPP, NULL, readme_hyps, 3, readme_refs, 2, NULL), 59.1531044440, 1e-9),
	      "chrf++: README example (peer: 59.1531044440)");
	struct pl_tm_opts lc = { 0, 1 };
	const char *lch[] = { "\xce\x9f\xce\x94\xce\x9f\xce\xa3 Stra\xc3\x9f" "e" };
	const char *lcr[] = { "\xce\xbf\xce\xb4\xce\xbf\xcf\x82 STRASSE" };
	CHECK(near(item(PL_TM_CHRF, &lc, lch[0], lcr, 1), 66.2737264966, 1e-9), "chrf: -lc (peer: 66.2737264966)");

	/* chrF++ words: punctuation split off the end, else the start */
	double st[24];
	const char *pr[] = { "(hi) there!" };
	pl_tm_item(PL_TM_CHRFPP, NULL, "(hi) there!", pr, 1, st);
	CHECK(st[18] == 4 && st[19] == 4 && st[20] == 4 && st[21] == 3, "chrf++: '(hi) there!' is 4 words: (hi ) there !");
	CHECK(pl_tm_nstats(PL_TM_CHRF) == 18 && pl_tm_nstats(PL_TM_CHRFPP) == 24, "chrf: statistics sizes");
}

/* rouge_scorer_test.py's testdata/target.txt and prediction.txt, lines 1-2,
 * and pyrouge_files/{target,prediction}_multi.0.txt */
static const char *const rt[] = {
	"ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM EKBDXkME,yz'RBr q'wtion wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L\n",
	"KsJdPByEtAor fE-Qg Dpdbring cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMtion psing sbKao Q m qiing LMmer HqqLFXe,XPY,J XsurkMer ,ed nB'wH'bWVHjWFEing tQ.saefZwJtKrTlixYpMMsJing UCAPwNHeYVjDing c T BUySKtion gMPfJpwGw p'NvxAoping eu pBwMBKV'I DNxqelhu,PHPxDEq,mtion SN\n",
};
static const char *const rp[] = {
	"rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi\n",
	"n cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMer pstion sbKao Q m qier LMmed HqqLFXe,XPY,J XsurkMeo ,ed nB'wH'bWVHjWFEer tQ.saefZwJtKrTlixYpMMNJtion UCAPwNHeYVjD\n",
};
static const char rt_multi[] =
	"ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM EKBDXkME,yz'RBr q'wtion wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L\n"
	"KsJdPByEtAor fE-Qg Dpdbring cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMtion psing sbKao Q m qiing LMmer HqqLFXe,XPY,J XsurkMer ,ed nB'wH'bWVHjWFEing tQ.saefZwJtKrTlixYpMMsJing UCAPwNHeYVjDing c T BUySKtion gMPfJpwGw p'NvxAoping eu pBwMBKV'I DNxqelhu,PHPxDEq,mtion SN\n"
	"NhETebUbBk'er WOvoHMTjSRizKgH'vHiing Xu,hWxfs VkNE QhgKiLHE -HidivzoM.dO anhtion jbLQiSGDTCsuhREebUaKM dv J dVN tmbOT\n"
	"vMR HDm,xOAetion D,tion HJtodT.mHl UIv-p VjWH'BdyWjnfGU-OjT aEMdFICyLWfQMtion wEMfdOKing AwkeKbO 'DxqNOHBH qKtVvm OYJl mM\n";
static const char rp_multi[] =
	"rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi\n"
	"n cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMer pstion sbKao Q m qier LMmed HqqLFXe,XPY,J XsurkMeo ,ed nB'wH'bWVHjWFEer tQ.saefZwJtKrTlixYpMMNJtion UCAPwNHeYVjD\n"
	"xfs VkJE QhgKiLHE -HidivzoM.dO anhing jbLQiSGDTCsuhREebUaKM dv J\n"
	"VjWH'BdyWjnfGU-OjTNaEMdFICyLWfQMing wEMfdOKijg AwkeKbO 'DxqNO\n";

static double rouge(enum pl_tm_metric m, int stem, const char *target, const char *prediction)
{
	struct pl_tm_opts o = { stem, 0 };
	return item(m, &o, prediction, &target, 1);
}

static void test_rouge(void)
{
	CHECK(near(rouge(PL_TM_ROUGE1, 0, "testing one two", "testing"), 0.5, 1e-12), "rouge1: 'testing' of 'testing one two' (1/2)");
	for (int m = PL_TM_ROUGE1; m <= PL_TM_ROUGELSUM; m++)
		CHECK(rouge(m, 0, "testing one two", "") == 0.0, "%s: empty prediction scores 0", pl_tm_name(m));
	CHECK(near(rouge(PL_TM_ROUGE2, 0, "testing one two", "testing one"), 2.0 / 3, 1e-12), "rouge2: 2/3");
	CHECK(near(rouge(PL_TM_ROUGEL, 0, "testing one two", "testing one"), 0.8, 1e-12), "rougeL: consecutive 4/5");
	CHECK(near(rouge(PL_TM_ROUGEL, 0, "testing one two", "testing two"), 0.8, 1e-12), "rougeL: non-consecutive 4/5");

	/* against ROUGE-1.5.5 */
	CHECK(near(rouge(PL_TM_ROUGE1, 0, rt[0], rp[0]), 0.51163, 1e-5), "rouge1: Rouge155 line 1 (0.51163)");
	CHECK(near(rouge(PL_TM_ROUGE1, 0, rt[1], rp[1]), 0.50000, 1e-5), "rouge1: Rouge155 line 2 (0.50000)");
	CHECK(near(rouge(PL_TM_ROUGE1, 1, rt[0], rp[0]), 0.51163, 1e-5), "rouge1: stemmed Rouge155 line 1 (0.51163)");
	CHECK(near(rouge(PL_TM_ROUGE1, 1, rt[1], rp[1]), 0.52941, 1e-5), "rouge1: stemmed Rouge155 line 2 (0.52941)");
	CHECK(near(rouge(PL_TM_ROUGE2, 0, rt[0], rp[0]), 0.39024, 1e-5), "rouge2: Rouge155 line 1 (0.39024)");
	CHECK(near(rouge(PL_TM_ROUGE2, 0, rt[1], rp[1]), 0.36364, 1e-5), "rouge2: Rouge155 line 2 (0.36364)");
	CHECK(near(rouge(PL_TM_ROUGE2, 1, rt[0], rp[0]), 0.39024, 1e-5), "rouge2: stemmed Rouge155 line 1 (0.39024)");
	CHECK(near(rouge(PL_TM_ROUGE2, 1, rt[1], rp[1]), 0.36364, 1e-5), "rouge2: stemmed Rouge155 line 2 (0.36364)");
	CHECK(near(rouge(PL_TM_ROUGEL, 0, rt[0], rp[0]), 0.51163, 1e-5), "rougeL: Rouge155 line 1 (0.51163)");
	CHECK(near(rouge(PL_TM_ROUGEL, 0, rt[1], rp[1]), 0.50000, 1e-5), "rougeL: Rouge155 line 2 (0.50000)");
	CHECK(near(rouge(PL_TM_ROUGELSUM, 1, rt_multi, rp_multi), 0.47205, 1e-5),
	      "rougeLsum: stemmed Rouge155 multi-sentence (0.47205)");

	/* summary-level LCS, section 3.2 of the ROUGE paper */
	CHECK(near(rouge(PL_TM_ROUGELSUM, 0, "w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5"), 0.5333, 1e-4),
	      "rougeLsum: union LCS (0.5333)");
	CHECK(near(rouge(PL_TM_ROUGELSUM, 0, "a b c d", "c d\na b"), 1.0, 1e-12) &&
	      near(rouge(PL_TM_ROUGEL, 0, "a b c d", "c d\na b"), 0.5, 1e-12),
	      "rougeLsum: sentences in another order; rougeL: one sequence");
	CHECK(rouge(PL_TM_ROUGELSUM, 0, "", "w1") == 0.0, "rougeLsum: empty target");
	CHECK(rouge(PL_TM_ROUGELSUM, 0, "w1 w2 w3 w4 w5", "/") == 0.0, "rougeLsum: prediction of no tokens");

	/* several targets: score_multi's best F-measure; items average */
	const char *two[] = { "nothing here", "testing one two" };
	struct pl_tm_opts o = { 0, 0 };
	CHECK(near(item(PL_TM_ROUGE1, &o, "testing one", two, 2), 0.8, 1e-12), "rouge1: best of two targets");
	const char *hy[] = { "testing", "testing one" }, *tg[] = { "testing one two", "testing one two" };
	CHECK(near(corpus(PL_TM_ROUGE1, &o, hy, 2, tg, 1, NULL), 0.65, 1e-12), "rouge1: mean over items");

	/* the tokenizer: lower case, [a-z0-9] runs; U+0130 lowers to i + U+0307 */
	CHECK(near(rouge(PL_TM_ROUGE1, 0, "I stanbul", "\xc4\xb0stanbul"), 1.0, 1e-12),
	      "rouge1: tokenizer, Python's lower() of U+0130");
	CHECK(near(rouge(PL_TM_ROUGE1, 0, "caf", "Caf\xc3\xa9"), 1.0, 1e-12), "rouge1: non-ASCII letters separate");

	/* NLTK's PorterStemmer in NLTK_EXTENSIONS mode (peer: NLTK 3.8) */
	static const char *const stems[][2] = {
		{"caresses", "caress"}, {"ponies", "poni"}, {"ties", "tie"}, {"cats", "cat"}, {"feed", "feed"},
		{"agreed", "agre"}, {"plastered", "plaster"}, {"bled", "bled"}, {"motoring", "motor"},
		{"sing", "sing"}, {"conflated", "conflat"}, {"troubled", "troubl"}, {"sized", "size"},
		{"hopping", "hop"}, {"tanned", "tan"}, {"falling", "fall"}, {"hissing", "hiss"},
		{"fizzed", "fizz"}, {"failing", "fail"}, {"filing", "file"}, {"happy", "happi"}, {"sky", "sky"},
		{"skies", "sky"}, {"dying", "die"}, {"news", "news"}, {"relational", "relat"},
		{"conditional", "condit"}, {"rational", "ration"}, {"valenci", "valenc"}, {"hesitanci", "hesit"},
		{"digitizer", "digit"}, {"conformabli", "conform"}, {"radicalli", "radic"},
		{"differentli", "differ"}, {"vileli", "vile"}, {"analogousli", "analog"},
		{"vietnamization", "vietnam"}, {"predication", "predic"}, {"operator", "oper"},
		{"feudalism", "feudal"}, {"decisiveness", "decis"}, {"hopefulness", "hope"},
		{"callousness", "callous"}, {"formaliti", "formal"}, {"sensitiviti", "sensit"},
		{"sensibiliti", "sensibl"}, {"triplicate", "triplic"}, {"formative", "form"},
		{"formalize", "formal"}, {"electriciti", "electr"}, {"electrical", "electr"},
		{"hopeful", "hope"}, {"goodness", "good"}, {"revival", "reviv"}, {"allowance", "allow"},
		{"inference", "infer"}, {"airliner", "airlin"}, {"gyroscopic", "gyroscop"},
		{"adjustable", "adjust"}, {"defensible", "defens"}, {"irritant", "irrit"},
		{"replacement", "replac"}, {"adjustment", "adjust"}, {"dependent", "depend"},
		{"adoption", "adopt"}, {"homologou", "homolog"}, {"communism", "commun"},
		{"activate", "activ"}, {"angulariti", "angular"}, {"homologous", "homolog"},
		{"effective", "effect"}, {"bowdlerize", "bowdler"}, {"probate", "probat"}, {"rate", "rate"},
		{"cease", "ceas"}, {"controll", "control"}, {"roll", "roll"}, {"generously", "gener"},
		{"fulli", "fulli"}, {"analogi", "analog"}, {"cried", "cri"}, {"enjoy", "enjoy"},
		{"spy", "spi"}, {"syzygy", "syzygi"}, {"yyyy", "yyyi"},
	};
	int bad = 0;
	for (size_t i = 0; i < N(stems); i++) {
		char w[64];
		size_t n = strlen(stems[i][0]);
		memcpy(w, stems[i][0], n);
		n = porter_stem(w, n);
		w[n] = '\0';
		if (strcmp(w, stems[i][1])) {
			printf("#   stem('%s') = '%s', want '%s'\n", stems[i][0], w, stems[i][1]);
			bad++;
		}
	}
	CHECK(!bad, "porter: %zu words stem as NLTK 3.8 stems them", N(stems));
	CHECK(near(rouge(PL_TM_ROUGE1, 1, "the cats were running happily", "cat run happy"), 0.5, 1e-12),
	      "rouge1: stemming on (cat, run; happili is not happi)");
	CHECK(near(rouge(PL_TM_ROUGE1, 0, "the cats were running happily", "cat run happy"), 0.0, 1e-12),
	      "rouge1: stemming off");
}

static double squad(enum pl_tm_metric m, const char *pred, const char *gold)
{
	return item(m, NULL, pred, &gold, 1);
}

static void test_squad(void)
{
	/* normalize_answer: lower, drop string.punctuation, drop a/an/the, fix white space */
	CHECK(squad(PL_TM_EXACT_MATCH, "The  Quick, brown fox!", "quick brown fox") == 1.0, "em: normalization");
	CHECK(squad(PL_TM_EXACT_MATCH, "a cat", "the cat") == 1.0, "em: articles removed");
	CHECK(squad(PL_TM_EXACT_MATCH, "cats", "cat") == 0.0, "em: no stemming");
	CHECK(squad(PL_TM_EXACT_MATCH, "don't", "dont") == 1.0, "em: punctuation deleted, not spaced");
	CHECK(squad(PL_TM_EXACT_MATCH, "the-end", "theend") == 1.0, "em: punctuation removed before articles");
	CHECK(squad(PL_TM_EXACT_MATCH, "anthem", "anthem") == 1.0 && squad(PL_TM_EXACT_MATCH, "anthem", "them") == 0.0,
	      "em: an article only as a whole word");
	CHECK(squad(PL_TM_EXACT_MATCH, "th\xc3\xa9", "the") == 0.0, "em: 'th\xc3\xa9' is a word, not 'the' (Unicode \\w)");
	CHECK(squad(PL_TM_EXACT_MATCH, "the\xe2\x82\xac", "\xe2\x82\xac") == 1.0, "em: the before a symbol is an article");
	CHECK(squad(PL_TM_EXACT_MATCH, "\xc3\x89" "COLE", "\xc3\xa9" "cole") == 1.0, "em: Unicode lower case");
	CHECK(squad(PL_TM_EXACT_MATCH, "\xce\x9f\xce\x94\xce\x9f\xce\xa3", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82") == 1.0 &&
	      squad(PL_TM_EXACT_MATCH, "\xce\x9f\xce\x94\xce\x9f\xce\xa3", "\xce\xbf\xce\xb4\xce\xbf\xcf\x83") == 0.0,
	      "em: a final capital sigma lowers to the final form");
	CHECK(squad(PL_TM_EXACT_MATCH, "", "") == 1.0 && squad(PL_TM_F1, "", "") == 0.0,
	      "em/f1: empty against empty is a match, with F1 0 (v1.1)");
	CHECK(squad(PL_TM_EXACT_MATCH, "caf\xff", "caf\xef\xbf\xbd") == 1.0, "em: an invalid byte is U+FFFD");

	CHECK(near(squad(PL_TM_F1, "the cat sat on the mat", "a cat sat on a hat"), 0.75, 1e-12), "f1: 3 of 4 and 3 of 4");
	CHECK(near(squad(PL_TM_F1, "cat cat dog", "cat"), 0.5, 1e-12), "f1: counts clip (P 1/3, R 1)");
	CHECK(squad(PL_TM_F1, "blue", "whale") == 0.0, "f1: no overlap");
	CHECK(near(squad(PL_TM_F1, "cat\xc2\xa0" "dog", "cat dog"), 1.0, 1e-12), "f1: Unicode white space splits");
	const char *golds[] = { "whale", "the blue whale" };
	CHECK(near(item(PL_TM_F1, NULL, "blue whale", golds, 2), 1.0, 1e-12), "f1: max over references");
	CHECK(near(item(PL_TM_F1, NULL, "a blue whale", golds, 1), 2.0 / 3, 1e-12), "f1: first reference alone 2/3");
	CHECK(item(PL_TM_EXACT_MATCH, NULL, "Whale.", golds, 2) == 1.0, "em: max over references");
	const char *hy[] = { "yes", "no" }, *gd[] = { "yes", "maybe" };
	CHECK(near(corpus(PL_TM_EXACT_MATCH, NULL, hy, 2, gd, 1, NULL), 0.5, 1e-12), "em: mean over items");
}

static void test_interface(void)
{
	char sig[128], buf[64];
	struct pl_tm_opts lc = { 1, 1 };

	for (int m = 0; m < PL_TM_NMETRICS; m++)
		CHECK(pl_tm_metric_of(pl_tm_name(m)) == m, "names: %s round trip", pl_tm_name(m));
	CHECK(pl_tm_metric_of("rougeLSum") == -1 && pl_tm_metric_of("") == -1 && pl_tm_metric_of(NULL) == -1,
	      "names: unknown ones are -1");
	CHECK(pl_tm_name(PL_TM_NMETRICS) == NULL, "names: out of range is NULL");
	pl_tm_signature(PL_TM_BLEU, NULL, 2, sig, sizeof sig);
	CHECK_STR(sig, "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0", "signature: bleu");
	pl_tm_signature(PL_TM_BLEU, &lc, 0, sig, sizeof sig);
	CHECK_STR(sig, "nrefs:var|case:lc|eff:no|tok:13a|smooth:exp|version:2.6.0", "signature: bleu -lc, var refs");
	pl_tm_signature(PL_TM_CHRF, NULL, 1, sig, sizeof sig);
	CHECK_STR(sig, "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0", "signature: chrf");
	pl_tm_signature(PL_TM_CHRFPP, NULL, 1, sig, sizeof sig);
	CHECK_STR(sig, "nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0", "signature: chrf++");
	pl_tm_signature(PL_TM_ROUGEL, &lc, 1, sig, sizeof sig);
	CHECK_STR(sig, "rouge-score|stem:yes|tok:default", "signature: rouge");
	pl_tm_signature(PL_TM_F1, NULL, 1, sig, sizeof sig);
	CHECK_STR(sig, "squad-v1.1", "signature: squad");
	pl_tm_signature(PL_TM_BLEU, NULL, 1, sig, 8);
	CHECK_STR(sig, "nrefs:1", "signature: truncated to the buffer");
	CHECK(pl_tm_score(PL_TM_F1, NULL, (double[]){ 0 }, 0) == 0.0, "score: no items averages to 0");

	/* Python's str.lower() */
	CHECK_STR(lower("\xc4\xb0", buf), "i\xcc\x87", "lower: U+0130 is i and U+0307");
	CHECK_STR(lower("\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3\xce\x91 \xce\xa3", buf),
		  "\xce\xbf\xce\xb4\xce\xbf\xcf\x82 \xcf\x83\xce\xb1 \xcf\x83", "lower: capital sigma, final only after a letter");
	CHECK_STR(lower("A\xce\xa3'", buf), "a\xcf\x82'", "lower: a case-ignorable after a final sigma");
	CHECK_STR(lower("\xe2\x84\xaa\xe1\xba\x9e", buf), "k\xc3\x9f", "lower: Kelvin sign and capital sharp s");

	/* a NULL hypothesis or reference is empty, no references one empty */
	double st[PL_TM_MAXSTATS];
	const char *nul[] = { NULL };
	pl_tm_item(PL_TM_BLEU, NULL, NULL, nul, 1, st);
	CHECK(st[0] == 0 && st[1] == 0, "item: NULL texts are empty");
	pl_tm_item(PL_TM_F1, NULL, "x", NULL, 0, st);
	CHECK(st[0] == 0.0, "item: no reference is one empty reference");
}

int main(void)
{
	test_bleu();
	test_chrf();
	test_rouge();
	test_squad();
	test_interface();
	return done_testing();
}
