/* Text splitting for chunk: recursive, markdown, fixed, and LangChain's
 * RecursiveCharacterTextSplitter exactly.
 *
 * A splitter works on one document's text (caller-owned, valid UTF-8) and
 * reports each chunk as a byte range [start, end) of that text through a
 * callback, in order; the chunk's text is always text[start..end). The
 * struct pl_splitter owns scratch arrays that pl_splitter_free releases. */
#ifndef PL_SPLIT_H
#define PL_SPLIT_H

#include <stddef.h>

enum pl_split_strategy {
	PL_SPLIT_RECURSIVE,	/* paragraphs, lines, sentences, words, characters */
	PL_SPLIT_MARKDOWN,	/* sections at headings; fenced code kept whole */
	PL_SPLIT_FIXED,		/* windows of exactly size code points */
	PL_SPLIT_LANGCHAIN	/* @langchain/textsplitters RecursiveCharacterTextSplitter */
};

struct pl_split_chunk {
	size_t start, end;	/* byte offsets into the text */
};

/* markdown: the heading path of a section, as byte ranges of the text */
struct pl_split_heading {
	size_t start, end;
};

typedef void (*pl_split_cb)(void *ctx, const struct pl_split_chunk *c);

struct pl_span {
	size_t start, end, len;	/* bytes, and length in the splitter's unit */
};

struct pl_splitter {
	enum pl_split_strategy strategy;
	size_t size, overlap;	/* in code points (UTF-16 units for LANGCHAIN) */

	/* markdown: the heading path of the section being split */
	struct pl_split_heading path[6];
	int depth;

	/* the merge window: pieces waiting to become a chunk */
	struct pl_span *win;
	size_t head, n, cap, total;

	/* markdown: fenced code blocks of the section being split */
	struct pl_span *code;
	size_t ncode, capcode;
};

/* Returns 0, or -1 when the sizes are unusable (overlap >= size, size 0). */
int pl_splitter_init(struct pl_splitter *s, enum pl_split_strategy strategy,
		     size_t size, size_t overlap);
void pl_splitter_free(struct pl_splitter *s);

/* Split text[0..n); calls cb once per chunk. For markdown, s->path and
 * s->depth hold the heading path of the chunk's section during the call. */
void pl_split(struct pl_splitter *s, const char *text, size_t n, pl_split_cb cb, void *ctx);

#endif
