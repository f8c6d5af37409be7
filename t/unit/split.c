/* Unit tests for lib/split.c: each strategy on small texts with known chunks.
 * The LangChain cases are outputs of @langchain/textsplitters 1.0.2. */
#include <stdlib.h>

#include "buf.h"
#include "split.h"
#include "unit.h"

struct got {
	const char *text;
	struct pl_splitter *s;
	struct pl_buf all;	/* chunks joined by '|', headings in [] */
};

static void cb(void *ctx, const struct pl_split_chunk *c)
{
	struct got *g = ctx;
	if (g->all.n)
		pl_buf_addc(&g->all, '|');
	pl_buf_add(&g->all, g->text + c->start, c->end - c->start);
	if (g->s->strategy == PL_SPLIT_MARKDOWN) {
		pl_buf_addc(&g->all, '[');
		for (int i = 0; i < g->s->depth; i++) {
			if (i)
				pl_buf_addc(&g->all, '/');
			pl_buf_add(&g->all, g->text + g->s->path[i].start,
				   g->s->path[i].end - g->s->path[i].start);
		}
		pl_buf_addc(&g->all, ']');
	}
}

static void split_is(enum pl_split_strategy st, size_t size, size_t overlap, const char *text,
		     const char *want, const char *name)
{
	struct pl_splitter s;
	struct got g = { text, &s, PL_BUF_INIT };

	pl_splitter_init(&s, st, size, overlap);
	pl_split(&s, text, strlen(text), cb, &g);
	CHECK_STR(pl_buf_cstr(&g.all), want, "%s", name);
	pl_buf_free(&g.all);
	pl_splitter_free(&s);
}

int main(void)
{
	struct pl_splitter s;

	CHECK(pl_splitter_init(&s, PL_SPLIT_RECURSIVE, 10, 10) < 0, "overlap must be below size");
	CHECK(pl_splitter_init(&s, PL_SPLIT_RECURSIVE, 0, 0) < 0, "size must be positive");

	split_is(PL_SPLIT_LANGCHAIN, 10, 3, "a\n\n\n\nb hello world foo bar baz\xc2\xa0qux\xe2\x80\xa8zz",
		 "a|b hello|world foo|bar|baz\xc2\xa0qux\xe2\x80\xa8z|x\xe2\x80\xa8zz",
		 "langchain: overlapping separators, unicode spaces kept inside, trimmed at ends");
	split_is(PL_SPLIT_LANGCHAIN, 1, 0, "ab c", "a|b| |c",
		 "langchain: a piece as long as the size is pushed untrimmed");
	split_is(PL_SPLIT_LANGCHAIN, 5, 0, "", "", "langchain: no text, no chunks");

	split_is(PL_SPLIT_RECURSIVE, 30, 0, "First paragraph here.\n\nSecond one. It has two sentences.",
		 "First paragraph here.|Second one.|It has two sentences.",
		 "recursive: paragraphs, then sentences");
	split_is(PL_SPLIT_RECURSIVE, 10, 0, "one two three four five six",
		 "one two|three four|five six", "recursive: trailing spaces do not count against the size");
	split_is(PL_SPLIT_RECURSIVE, 9, 4, "aaa bbb ccc ddd", "aaa bbb|bbb ccc|ccc ddd",
		 "recursive: overlap repeats whole words");
	split_is(PL_SPLIT_RECURSIVE, 4, 0, "abcdefghij", "abcd|efgh|ij", "recursive: characters last");
	split_is(PL_SPLIT_RECURSIVE, 100, 0, "  \n\n \t ", "", "recursive: white space alone is no chunk");

	split_is(PL_SPLIT_FIXED, 4, 1, "abcdefghij", "abcd|defg|ghij", "fixed: exact windows with overlap");
	split_is(PL_SPLIT_FIXED, 3, 0, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "\xc3\xa9\xc3\xa9\xc3\xa9|\xc3\xa9",
		 "fixed: counts code points");

	split_is(PL_SPLIT_MARKDOWN, 100, 0,
		 "intro\n# A\ntext a\n## B\n```\n# no\n```\n# C ##\nc\n",
		 "intro[]|# A\ntext a[A]|## B\n```\n# no\n```[A/B]|# C ##\nc[C]",
		 "markdown: sections, heading paths, closing hashes, fences");
	split_is(PL_SPLIT_MARKDOWN, 12, 0, "# T\n```\nline one\nline two\n```\n",
		 "# T\n```[T]|line one[T]|line two\n```[T]",
		 "markdown: a code block longer than the size is split at lines");
	split_is(PL_SPLIT_MARKDOWN, 100, 0, "~~~\n# in\n", "~~~\n# in[]",
		 "markdown: an unclosed fence runs to the end");
	return done_testing();
}
