/* pipeline: the model a valid file loads into (inheritance, each, outputs,
 * retry, Kubernetes fields, uses), and errors collected, not printed. */
#include <stdlib.h>

#include "pipeline.h"
#include "unit.h"

#define FX "t/fixtures/dagrun/"

int main(void)
{
	struct pl_perrs errs = { 0 };
	struct pl_pipeline *p = NULL;
	struct pl_task *t;

	CHECK(pl_pipeline_load(FX "forms.yaml", NULL, &p, &errs) == 0 && errs.n == 0,
	      "forms.yaml loads");
	if (!p)
		return done_testing();
	CHECK_STR(p->name, "forms", "name");
	CHECK(p->parallelism == 8, "pipeline parallelism");
	CHECK(p->ntasks == 7 && p->on_exit, "seven tasks and on_exit");
	t = pl_pipeline_task(p, "lines");
	CHECK(t && t->cache == 1 && t->retry.limit == 3 && t->retry.on == PL_RETRY_FAILURE &&
	      t->retry.backoff == 2 && t->retry.max == 60, "retry inherited from defaults");
	CHECK(t && t->timeout == 600, "timeout inherited: 10m is 600 s");
	CHECK(t && t->env.n == 1 && !strcmp(t->env.v[0].key, "LC_ALL"), "env inherited");
	CHECK(t && t->k8s.ntol == 1 && !strcmp(t->k8s.tol[0].effect, "NoSchedule") &&
	      !strcmp(t->k8s.service_account, "plumb-runner") && t->k8s.secrets.n == 1 &&
	      !strcmp(t->k8s.node_selector.v[0].val, "cpu"), "Kubernetes fields inherited");
	t = pl_pipeline_task(p, "list");
	CHECK(t && t->each.kind == PL_EACH_LIST && t->each.nitems == 2 &&
	      !strcmp(t->each.items[1], "green"), "each over a list of scalars");
	t = pl_pipeline_task(p, "maps");
	CHECK_STR(t && t->each.kind == PL_EACH_LIST ? t->each.items[0] : NULL,
		  "{\"name\":\"small\",\"size\":1}", "a map item is a JSON object");
	t = pl_pipeline_task(p, "range");
	CHECK(t && t->each.kind == PL_EACH_RANGE && t->each.from == 0 && t->each.to == 10 &&
	      t->each.step == 2 && t->min_success == 0.5, "each over a range, min_success fraction");
	t = pl_pipeline_task(p, "stream");
	CHECK(t && t->each.kind == PL_EACH_TASK && !strcmp(t->each.task, "lines") &&
	      !strcmp(t->batch, "2") && t->min_success == 2 && t->retry.limit == 1 &&
	      t->retry.on == PL_RETRY_TRANSIENT, "each over a task, retry: 1 replaces defaults");
	t = pl_pipeline_task(p, "gather");
	CHECK(t && t->stdin_kind == PL_STDIN_LIST && t->nstdin == 1 && t->timeout == 90 &&
	      !strcmp(t->k8s.cpu, "2") && t->k8s.gpu == 1 && t->noutputs == 2 &&
	      t->outputs[0].kind == PL_OUTPUT_COUNT && t->outputs[1].kind == PL_OUTPUT_LAST,
	      "stdin, outputs and resources of a task");
	t = pl_pipeline_task(p, "quiet");
	CHECK(t && t->stdin_kind == PL_STDIN_NONE && t->when, "stdin: none and when");
	pl_pipeline_free(p);

	const char *inc[] = { FX "lib" }, *ov[] = { "times=5", "greeting=yo" };
	struct pl_load_opts o = { inc, 1, ov, 2 };
	CHECK(pl_pipeline_load(FX "uses-ok.yaml", &o, &p, &errs) == 0, "uses loads");
	if (p) {
		CHECK_STR(pl_pipeline_param(p, "times"), "5", "-p wins over with:");
		CHECK_STR(pl_pipeline_param(p, "greeting"), "yo", "-p sets a template's param");
		t = pl_pipeline_task(p, "bye");
		CHECK_STR(t ? t->run : NULL, "echo goodbye", "the using file replaces a task");
		CHECK(p->ntasks == 3 && pl_pipeline_task(p, "extra"), "and adds one");
		pl_pipeline_free(p);
	}

	CHECK(pl_pipeline_load(FX "errors.yaml", NULL, &p, &errs) < 0 && !p && errs.n == 14,
	      "errors.yaml: 14 errors collected (%zu)", errs.n);
	CHECK(errs.n && errs.v[0].line == 4 && errs.v[0].col == 20 &&
	      !strcmp(errs.v[0].msg, "param 'count' must be an int, not 'ten'"), "first error");
	pl_perrs_free(&errs);
	return done_testing();
}
