/* Corpus BLEU through lib/textmetrics, for the BLEU benchmark: what
 * "sacrebleu REF... -i HYP -b -w 4" computes, from files of one segment a
 * line (split at "\n" only, as sacreBLEU reads them).
 * usage: bleu HYP REF... -> prints the score with four decimals */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "textmetrics.h"

struct lines {
	char **v;
	size_t n;
};

/* The lines of a whole file, split in place at "\n". */
static int slurp(const char *path, struct lines *l)
{
	FILE *f = fopen(path, "r");
	struct pl_buf b = PL_BUF_INIT;
	size_t got, cap = 0;

	if (!f) {
		perror(path);
		return -1;
	}
	do {
		pl_buf_reserve(&b, 1 << 20);
		got = fread(b.p + b.n, 1, b.cap - b.n, f);
		b.n += got;
	} while (got);
	if (ferror(f)) {
		perror(path);
		return -1;
	}
	fclose(f);
	pl_buf_addc(&b, '\n');	/* a last line without one */
	for (char *p = b.p, *end = b.p + b.n - 1; p < end;) {
		char *q = memchr(p, '\n', (size_t)(end + 1 - p));
		*q = '\0';
		if (l->n == cap) {
			cap = cap ? 2 * cap : 1024;
			l->v = pl_xrealloc(l->v, cap * sizeof *l->v);
		}
		l->v[l->n++] = p;
		p = q + 1;
	}
	return 0;	/* the buffer lives as long as the process */
}

int main(int argc, char **argv)
{
	struct lines hyp = { 0 }, *refs;
	size_t nrefs = (size_t)argc - 2;
	double sum[PL_TM_MAXSTATS] = { 0 }, st[PL_TM_MAXSTATS];
	size_t ns = pl_tm_nstats(PL_TM_BLEU);
	const char **r;
	struct pl_tm_opts o = { 0, 0 };

	if (argc < 3) {
		fprintf(stderr, "usage: bleu HYP REF...\n");
		return 2;
	}
	refs = calloc(nrefs, sizeof *refs);
	r = calloc(nrefs, sizeof *r);
	if (!refs || !r || slurp(argv[1], &hyp))
		return 1;
	for (size_t k = 0; k < nrefs; k++) {
		if (slurp(argv[2 + k], &refs[k]))
			return 1;
		if (refs[k].n != hyp.n) {
			fprintf(stderr, "bleu: %s: %zu lines, the hypotheses %zu\n", argv[2 + k],
				refs[k].n, hyp.n);
			return 1;
		}
	}
	for (size_t i = 0; i < hyp.n; i++) {
		for (size_t k = 0; k < nrefs; k++)
			r[k] = refs[k].v[i];
		pl_tm_item(PL_TM_BLEU, &o, hyp.v[i], r, nrefs, st);
		for (size_t k = 0; k < ns; k++)
			sum[k] += st[k];
	}
	printf("%.4f\n", pl_tm_score(PL_TM_BLEU, &o, sum, hyp.n));
	return fflush(stdout) || ferror(stdout);
}
