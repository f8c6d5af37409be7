/* The JSONL reader's hot path against jansson on the same file, in one run:
 * read every line, find "id" and "text", decode "text", and write the record
 * back out with one field added (what a filter does). plumb's way scans
 * lazily and copies untouched members verbatim; jansson's parses the whole
 * tree and dumps it again.
 * usage: jsonscan FILE -> prints "plumb_seconds jansson_seconds bytes" */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "lines.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile size_t sink;

int main(int argc, char **argv)
{
	struct pl_lines l;
	const char *line;
	size_t len, bytes = 0;
	struct pl_jobj o = { 0 };
	struct pl_jerr e;
	struct pl_buf out = PL_BUF_INIT, scratch = PL_BUF_INIT;
	double t0, t_plumb, t_jansson;

	if (argc != 2 || pl_lines_open(&l, argv[1]) < 0)
		return 2;
	t0 = now();
	while (pl_lines_next(&l, &line, &len) == 1) {
		const char *s;
		size_t n;
		bytes += len + 1;
		if (pl_json_scan_object(line, len, &o, &e) < 0)
			return 1;
		const struct pl_jmember *id = pl_jobj_get(&o, "id"), *text = pl_jobj_get(&o, "text");
		if (!id || !text || pl_jmember_str(text, &scratch, &s, &n, 0, &e) < 0)
			return 1;
		out.n = 0;
		pl_buf_addc(&out, '{');
		for (size_t i = 0; i < o.n; i++) {
			pl_json_put_member(&out, &o.m[i]);
			pl_buf_addc(&out, ',');
		}
		pl_buf_adds(&out, "\"seen\":true}\n");
		sink += out.n + n;
	}
	t_plumb = now() - t0;
	pl_lines_close(&l);

	pl_lines_open(&l, argv[1]);
	t0 = now();
	while (pl_lines_next(&l, &line, &len) == 1) {
		json_error_t je;
		json_t *j = json_loadb(line, len, 0, &je);
		if (!j)
			return 1;
		const char *s = json_string_value(json_object_get(j, "text"));
		if (!s || !json_object_get(j, "id"))
			return 1;
		json_object_set_new(j, "seen", json_true());
		char *d = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		sink += strlen(d) + strlen(s);
		free(d);
		json_decref(j);
	}
	t_jansson = now() - t0;
	pl_lines_close(&l);
	printf("%.4f %.4f %zu\n", t_plumb, t_jansson, bytes);
	pl_jobj_free(&o);
	pl_buf_free(&out);
	pl_buf_free(&scratch);
	return 0;
}
