/* dagrun: pipeline files (docs/dagrun.1, docs/pipeline-format.7). This
 * release has the front end: lint and graph. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pipeline.h"
#include "tmpl.h"

static const char usage[] =
	"dagrun lint FILE [-I dir] [-p name=value]...\n"
	"dagrun graph FILE [--format dot|mermaid] [-I dir] [-p name=value]...";

static const char help[] =
	"\nCheck a pipeline file, or draw its tasks and dependencies.\n\n"
	"  -I, --include DIR       look for 'uses:' files in DIR too (PLUMB_PIPELINES)\n"
	"  -p, --param NAME=VALUE  set a param\n"
	"  -f, --format F          graph as dot (default) or mermaid (PLUMB_GRAPH_FORMAT)\n"
	"  -v, --verbose           say more on stderr\n"
	"  -h, --help              this text\n"
	"      --version           the version\n";

enum edge_kind { E_NEEDS, E_EACH, E_DEPENDS, E_EXIT };

struct edge {
	size_t from, to;
	enum edge_kind kind;
};

struct edges {
	struct edge *v;
	size_t n;
	const struct pl_pipeline *p;
	size_t self;
};

static void add(struct edges *e, size_t from, size_t to, enum edge_kind kind)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->v[i].from == from && e->v[i].to == to)
			return;
	e->v = pl_xrealloc(e->v, (e->n + 1) * sizeof *e->v);
	e->v[e->n++] = (struct edge){ from, to, kind };
}

static int on_dep(void *ctx, const char *task, size_t n, size_t col, struct pl_texpr_err *err)
{
	struct edges *e = ctx;
	char *name = pl_xstrndup(task, n);
	const struct pl_task *t = pl_pipeline_task(e->p, name);

	if (t)
		add(e, t - e->p->tasks, e->self, E_DEPENDS);
	free(name);
	return PL_OUT_SUCCEEDED;
}

/* every dependency, from upstream to downstream; on_exit is index ntasks */
static void collect(const struct pl_pipeline *p, struct edges *e)
{
	struct pl_texpr_err err;
	int r;

	e->p = p;
	for (size_t i = 0; i < p->ntasks; i++) {
		const struct pl_task *t = &p->tasks[i], *u;
		e->self = i;
		if (t->each.kind == PL_EACH_TASK && (u = pl_pipeline_task(p, t->each.task)))
			add(e, u - p->tasks, i, E_EACH);
		for (size_t j = 0; j < t->nneeds; j++)
			if ((u = pl_pipeline_task(p, t->needs[j])))
				add(e, u - p->tasks, i, E_NEEDS);
		if (t->depends)
			pl_depends_eval(t->depends, on_dep, e, &r, &err);
	}
	if (!p->on_exit)
		return;
	for (size_t i = 0; i < p->ntasks; i++) {
		size_t j;
		for (j = 0; j < e->n; j++)
			if (e->v[j].from == i)
				break;
		if (j == e->n)
			add(e, i, p->ntasks, E_EXIT);
	}
}

static const char *fanout(const struct pl_task *t)
{
	static char buf[200];

	switch (t->each.kind) {
	case PL_EACH_TASK:
		snprintf(buf, sizeof buf, "each line of %s", t->each.task);
		return buf;
	case PL_EACH_LIST:
		snprintf(buf, sizeof buf, "each of %zu items", t->each.nitems);
		return buf;
	case PL_EACH_TMPL:
		return "each of a JSON array";
	case PL_EACH_RANGE:
		snprintf(buf, sizeof buf, "each of %ld..%ld", t->each.from, t->each.to);
		return buf;
	default:
		return NULL;
	}
}

/* a DOT or Mermaid quoted string: no quotes or backslashes inside */
static void put_label(const char *s)
{
	for (; *s; s++)
		putchar(*s == '"' || *s == '\\' ? '\'' : *s);
}

static void graph_dot(const struct pl_pipeline *p, const struct edges *e)
{
	static const char *const style[] = { "", " [style=bold, label=\"each\"]",
		" [style=dashed]", " [style=dotted]" };

	printf("digraph \"");
	put_label(p->name ? p->name : "pipeline");
	printf("\" {\n\trankdir=LR;\n\tnode [shape=box];\n");
	for (size_t i = 0; i < p->ntasks; i++) {
		const char *f = fanout(&p->tasks[i]);
		printf("\t\"%s\"", p->tasks[i].name);
		if (f) {
			printf(" [shape=box3d, label=\"%s\\n(", p->tasks[i].name);
			put_label(f);
			printf(")\"]");
		}
		printf(";\n");
	}
	if (p->on_exit)
		printf("\t\"on_exit\" [shape=octagon];\n");
	for (size_t i = 0; i < e->n; i++)
		printf("\t\"%s\" -> \"%s\"%s;\n", p->tasks[e->v[i].from].name,
		       e->v[i].to == p->ntasks ? "on_exit" : p->tasks[e->v[i].to].name,
		       style[e->v[i].kind]);
	printf("}\n");
}

static void graph_mermaid(const struct pl_pipeline *p, const struct edges *e)
{
	static const char *const arrow[] = { "-->", "==>|each|", "-.->", "-.-" };

	printf("flowchart LR\n");
	for (size_t i = 0; i < p->ntasks; i++) {
		const char *f = fanout(&p->tasks[i]);
		if (f) {
			printf("    t%zu[[\"%s (", i, p->tasks[i].name);
			put_label(f);
			printf(")\"]]\n");
		} else {
			printf("    t%zu[\"%s\"]\n", i, p->tasks[i].name);
		}
	}
	if (p->on_exit)
		printf("    t%zu{{\"on_exit\"}}\n", p->ntasks);
	for (size_t i = 0; i < e->n; i++)
		printf("    t%zu %s t%zu\n", e->v[i].from, arrow[e->v[i].kind], e->v[i].to);
}

static int str_in(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "include", required_argument, NULL, 'I' },
		{ "param", required_argument, NULL, 'p' },
		{ "format", required_argument, NULL, 'f' },
		PL_COMMON_LONGOPTS,
		{ 0 }
	};
	static const char *const later[] = { "run", "status", "logs", "list", "stop", "resume", NULL };
	/* static: still reachable when a usage error exits */
	static const char **search, **params;
	const char *format, *cmd, *file, *env;
	size_t nsearch = 0, nparams = 0;
	struct pl_perrs errs = { 0 };
	struct pl_pipeline *p = NULL;
	char *envcopy = NULL;
	int c;

	pl_init("dagrun", usage, help);
	format = pl_env("PLUMB_GRAPH_FORMAT", "dot");
	search = pl_xmalloc(argc * sizeof *search + sizeof *search);
	params = pl_xmalloc(argc * sizeof *params + sizeof *params);
	while ((c = getopt_long(argc, argv, "I:p:f:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'I':
			search[nsearch++] = optarg;
			break;
		case 'p':
			if (!strchr(optarg, '='))
				pl_usage_error("-p '%s': want name=value", optarg);
			params[nparams++] = optarg;
			break;
		case 'f':
			format = optarg;
			break;
		default:
			pl_common_option(c, optarg);
		}
	}
	if (optind >= argc)
		pl_usage_error("a subcommand is needed");
	cmd = argv[optind];
	if (str_in(cmd, later))
		pl_usage_error("'%s' is not available in this build yet", cmd);
	if (strcmp(cmd, "lint") != 0 && strcmp(cmd, "graph") != 0) {
		if (optind + 1 == argc && (strstr(cmd, ".yaml") || strstr(cmd, ".yml")))
			pl_usage_error("'run' is not available in this build yet");
		pl_usage_error("unknown subcommand '%s'", cmd);
	}
	if (optind + 2 != argc)
		pl_usage_error("'%s' takes one pipeline file", cmd);
	file = argv[optind + 1];
	if (strcmp(format, "dot") != 0 && strcmp(format, "mermaid") != 0)
		pl_usage_error("unknown --format '%s' (want dot or mermaid)", format);

	/* -I first, then PLUMB_PIPELINES, colon-separated */
	if ((env = pl_env("PLUMB_PIPELINES", NULL))) {
		envcopy = pl_xstrdup(env);
		size_t n = 1;
		for (const char *q = env; *q; q++)
			n += *q == ':';
		search = pl_xrealloc(search, (nsearch + n + 1) * sizeof *search);
		for (char *tok = strtok(envcopy, ":"); tok; tok = strtok(NULL, ":"))
			search[nsearch++] = tok;
	}
	struct pl_load_opts o = { search, nsearch, params, nparams };
	if (pl_pipeline_load(file, &o, &p, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++) {
			if (errs.v[i].line > 0)
				fprintf(stderr, "%s:%d:%d: %s\n", errs.v[i].file, errs.v[i].line,
					errs.v[i].col, errs.v[i].msg);
			else
				fprintf(stderr, "%s: %s\n", errs.v[i].file, errs.v[i].msg);
		}
		if (pl_verbose)
			pl_info("%zu error%s", errs.n, errs.n == 1 ? "" : "s");
		pl_perrs_free(&errs);
		exit(PL_EX_USAGE);
	}
	if (strcmp(cmd, "lint") == 0) {
		if (!pl_quiet)
			fprintf(stderr, "%s: ok\n", file);
	} else {
		struct edges e = { 0 };
		collect(p, &e);
		if (strcmp(format, "dot") == 0)
			graph_dot(p, &e);
		else
			graph_mermaid(p, &e);
		free(e.v);
	}
	pl_pipeline_free(p);
	free(search);
	free(params);
	free(envcopy);
	if (fflush(stdout) != 0)
		pl_die(PL_EX_SOFTWARE, "write error on standard output:");
	pl_finish();
}
