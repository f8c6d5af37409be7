/* chunk: split document records into chunk records (docs/chunk.1). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "hash.h"
#include "split.h"
#include "utf8.h"

static const char usage[] =
	"chunk [-s size] [-o overlap] [--strategy recursive|markdown|fixed]\n"
	"[--compat langchain] [--invalid-utf8 error|replace] [--keep-going]\n"
	"[--rejects file] [file ...]";

static const char help[] =
	"\nSplit document records into chunk records.\n\n"
	"  -s, --size N            chunk size in characters (PLUMB_CHUNK_SIZE, 1000)\n"
	"  -o, --overlap N         overlap in characters (PLUMB_CHUNK_OVERLAP, 200)\n"
	"      --strategy S        recursive, markdown or fixed (PLUMB_CHUNK_STRATEGY)\n"
	"      --compat langchain  the chunks of LangChain's RecursiveCharacterTextSplitter\n"
	"      --invalid-utf8 M    error (default) or replace with U+FFFD (PLUMB_INVALID_UTF8)\n"
	"      --keep-going        report bad records and go on (PLUMB_KEEP_GOING)\n"
	"      --rejects FILE      also write bad records to FILE (PLUMB_REJECTS)\n"
	"  -v, --verbose           say more on stderr\n"
	"  -h, --help              this text\n"
	"      --version           the version\n";

/* Fields of a document that become other fields of a chunk, or none. */
static const char *const consumed[] = { "id", "op", "text", "sha256", "size", NULL };

struct doc {
	const struct pl_rec *rec;
	const struct pl_jmember *id, *meta;
	char sha[PL_SHA256_HEX];
	const char *sha_raw;	/* the record's own sha256, escaped form */
	size_t sha_len;
	const char *text;
	unsigned long n;	/* chunks written */
	struct pl_splitter *sp;
	int headings;		/* markdown: put the heading path in meta */
};

static int replace_invalid;
static struct pl_buf filebuf, fixbuf, strbuf;

static int is_consumed(const struct pl_jmember *m)
{
	for (int i = 0; consumed[i]; i++)
		if (pl_jmember_key_is(m, consumed[i]))
			return 1;
	return 0;
}

static void put_doc_id(const struct doc *d)
{
	/* the id's raw (escaped) form is valid string content: no decoding */
	pl_buf_add(&pl_out, d->id->val + 1, d->id->vallen - 2);
}

static void put_sha(const struct doc *d)
{
	pl_buf_addc(&pl_out, '"');
	if (d->sha_raw)
		pl_buf_add(&pl_out, d->sha_raw, d->sha_len);
	else
		pl_buf_add(&pl_out, d->sha, 64);
	pl_buf_addc(&pl_out, '"');
}

/* meta with the heading path first; an existing "headings" key is replaced */
static void put_meta_headings(const struct doc *d)
{
	struct pl_splitter *sp = d->sp;
	struct pl_jobj inner = { 0 };
	struct pl_jerr e;

	pl_json_put_key(&pl_out, "meta");
	pl_buf_add(&pl_out, "{\"headings\":[", 13);
	for (int i = 0; i < sp->depth; i++) {
		if (i)
			pl_buf_addc(&pl_out, ',');
		pl_json_put_str(&pl_out, d->text + sp->path[i].start,
				sp->path[i].end - sp->path[i].start);
	}
	pl_buf_addc(&pl_out, ']');
	if (d->meta && pl_json_scan_object(d->meta->val, d->meta->vallen, &inner, &e) == 0) {
		for (size_t i = 0; i < inner.n; i++) {
			const struct pl_jmember *m = &inner.m[i];
			if (pl_jmember_key_is(m, "headings"))
				continue;
			pl_buf_addc(&pl_out, ',');
			pl_json_put_member(&pl_out, m);
		}
	}
	pl_jobj_free(&inner);
	pl_buf_addc(&pl_out, '}');
}

static void on_chunk(void *ctx, const struct pl_split_chunk *c)
{
	struct doc *d = ctx;
	const struct pl_jobj *o = &d->rec->obj;

	pl_buf_add(&pl_out, "{\"id\":\"", 7);
	put_doc_id(d);
	pl_buf_addc(&pl_out, '#');
	pl_buf_u64(&pl_out, d->n);
	pl_buf_add(&pl_out, "\",\"doc_id\":\"", 12);
	put_doc_id(d);
	pl_buf_add(&pl_out, "\",\"doc_sha256\":", 15);
	put_sha(d);
	pl_buf_add(&pl_out, ",\"chunk\":", 9);
	pl_buf_u64(&pl_out, d->n);
	pl_buf_add(&pl_out, ",\"start\":", 9);
	pl_buf_u64(&pl_out, c->start);
	pl_buf_add(&pl_out, ",\"end\":", 7);
	pl_buf_u64(&pl_out, c->end);
	pl_buf_add(&pl_out, ",\"text\":", 8);
	pl_json_put_str(&pl_out, d->text + c->start, c->end - c->start);
	if (d->headings) {
		pl_buf_addc(&pl_out, ',');
		put_meta_headings(d);
	}
	for (size_t i = 0; i < o->n; i++) {
		const struct pl_jmember *m = &o->m[i];
		if (is_consumed(m) || (d->headings && m == d->meta))
			continue;
		pl_buf_addc(&pl_out, ',');
		pl_json_put_member(&pl_out, m);
	}
	pl_buf_addc(&pl_out, '}');
	pl_out_end();
	d->n++;
}

/* Read the whole file at path into filebuf. Returns 0, or -1 with errno. */
static int slurp(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		errno = EISDIR;
		return -1;
	}
	filebuf.n = 0;
	pl_buf_reserve(&filebuf, st.st_size > 0 ? (size_t)st.st_size + 1 : 65536);
	for (;;) {
		if (filebuf.cap - filebuf.n < 65536)
			pl_buf_reserve(&filebuf, 65536);
		ssize_t r = read(fd, filebuf.p + filebuf.n, filebuf.cap - filebuf.n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		if (r == 0)
			break;
		filebuf.n += (size_t)r;
	}
	close(fd);
	return 0;
}

static int member_is(const struct pl_jmember *m, const char *s)
{
	size_t n = strlen(s);
	return m && m->type == PL_JSTR && m->vallen == n + 2 && !memcmp(m->val + 1, s, n);
}

static void chunk_doc(const struct pl_rec *rec, struct pl_splitter *sp, int markdown)
{
	struct doc d = { .rec = rec, .sp = sp, .headings = markdown };
	const struct pl_jmember *op = pl_jobj_get(&rec->obj, "op");
	const struct pl_jmember *tm, *pm, *sm;
	struct pl_jerr e;
	const char *text;
	size_t n;

	d.id = pl_jobj_get(&rec->obj, "id");
	if (op && !member_is(op, "upsert") && !member_is(op, "delete")) {
		pl_input_reject(rec, "unknown op %.*s (want \"upsert\" or \"delete\")",
				(int)(op->vallen > 40 ? 40 : op->vallen), op->val);
		return;
	}
	if (!d.id || d.id->type != PL_JSTR || d.id->vallen == 2) {
		pl_input_reject(rec, "document has no \"id\" string");
		return;
	}
	if (op && member_is(op, "delete")) {
		pl_buf_add(&pl_out, "{\"op\":\"delete\",\"doc_id\":\"", 25);
		put_doc_id(&d);
		pl_buf_add(&pl_out, "\"}", 2);
		pl_out_end();
		return;
	}

	tm = pl_jobj_get(&rec->obj, "text");
	pm = pl_jobj_get(&rec->obj, "path");
	if (tm) {
		if (pl_jmember_str(tm, &strbuf, &text, &n, replace_invalid ? PL_JSTR_REPLACE : 0,
				   &e) < 0) {
			pl_input_reject(rec, "\"text\": %s", e.msg);
			return;
		}
	} else if (pm) {
		const char *path;
		size_t plen;
		if (pl_jmember_str(pm, &strbuf, &path, &plen, 0, &e) < 0 || memchr(path, 0, plen)) {
			pl_input_reject(rec, "\"path\" is not a file name");
			return;
		}
		char *p = pl_xstrndup(path, plen);
		if (slurp(p) < 0) {
			pl_input_reject(rec, "cannot read '%s': %s", p, strerror(errno));
			free(p);
			return;
		}
		text = filebuf.p;
		n = filebuf.n;
		size_t ok = pl_utf8_valid_prefix(text, n);
		if (ok < n) {
			if (!replace_invalid) {
				pl_input_reject(rec, "'%s': invalid UTF-8 at byte %zu "
						"(--invalid-utf8 replace to substitute U+FFFD)", p, ok);
				free(p);
				return;
			}
			fixbuf.n = 0;
			pl_buf_reserve(&fixbuf, 3 * n);
			fixbuf.n = pl_utf8_repair(text, n, fixbuf.p);
			text = fixbuf.p;
			n = fixbuf.n;
		}
		free(p);
	} else {
		pl_input_reject(rec, "document %.*s has neither \"text\" nor \"path\"",
				(int)d.id->vallen, d.id->val);
		return;
	}

	sm = pl_jobj_get(&rec->obj, "sha256");
	if (sm && sm->type == PL_JSTR && !sm->val_esc && sm->vallen > 2) {
		d.sha_raw = sm->val + 1;
		d.sha_len = sm->vallen - 2;
	} else {
		pl_sha256_hex(text, n, d.sha);
	}
	d.meta = pl_jobj_get(&rec->obj, "meta");
	if (markdown && d.meta && d.meta->type != PL_JOBJ) {
		pl_input_reject(rec, "\"meta\" is not an object");
		return;
	}
	d.text = text;
	pl_split(sp, text, n, on_chunk, &d);

	pl_buf_add(&pl_out, "{\"op\":\"done\",\"doc_id\":\"", 23);
	put_doc_id(&d);
	pl_buf_add(&pl_out, "\",\"doc_sha256\":", 15);
	put_sha(&d);
	pl_buf_add(&pl_out, ",\"chunks\":", 10);
	pl_buf_u64(&pl_out, d.n);
	pl_buf_addc(&pl_out, '}');
	pl_out_end();
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "overlap", required_argument, NULL, 'o' },
		{ "strategy", required_argument, NULL, 'S' },
		{ "compat", required_argument, NULL, 'C' },
		{ "invalid-utf8", required_argument, NULL, 'U' },
		PL_COMMON_LONGOPTS,
		{ 0 }
	};
	const char *strategy, *compat = NULL, *invalid;
	long size, overlap;
	enum pl_split_strategy st;
	struct pl_splitter sp;
	struct pl_rec rec = { 0 };
	unsigned long long docs = 0, bytes = 0;
	int c;

	pl_init("chunk", usage, help);
	size = pl_env_long("PLUMB_CHUNK_SIZE", 1000);
	overlap = pl_env_long("PLUMB_CHUNK_OVERLAP", 200);
	strategy = pl_env("PLUMB_CHUNK_STRATEGY", "recursive");
	invalid = pl_env("PLUMB_INVALID_UTF8", "error");
	while ((c = getopt_long(argc, argv, "s:o:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			size = pl_parse_long("--size", optarg, 1, 1L << 30);
			break;
		case 'o':
			overlap = pl_parse_long("--overlap", optarg, 0, 1L << 30);
			break;
		case 'S':
			strategy = optarg;
			break;
		case 'C':
			compat = optarg;
			break;
		case 'U':
			invalid = optarg;
			break;
		default:
			pl_common_option(c, optarg);
		}
	}
	if (strcmp(strategy, "recursive") == 0)
		st = PL_SPLIT_RECURSIVE;
	else if (strcmp(strategy, "markdown") == 0)
		st = PL_SPLIT_MARKDOWN;
	else if (strcmp(strategy, "fixed") == 0)
		st = PL_SPLIT_FIXED;
	else
		pl_usage_error("unknown strategy '%s' (want recursive, markdown or fixed)", strategy);
	if (compat) {
		if (strcmp(compat, "langchain") != 0)
			pl_usage_error("unknown --compat '%s' (want langchain)", compat);
		if (st != PL_SPLIT_RECURSIVE)
			pl_usage_error("--compat langchain goes with the recursive strategy");
		st = PL_SPLIT_LANGCHAIN;
	}
	if (strcmp(invalid, "replace") == 0)
		replace_invalid = 1;
	else if (strcmp(invalid, "error") != 0)
		pl_usage_error("unknown --invalid-utf8 '%s' (want error or replace)", invalid);
	if (size < 1)
		pl_usage_error("--size must be at least 1");
	if (overlap >= size)
		pl_usage_error("--overlap (%ld) must be smaller than --size (%ld)", overlap, size);
	if (pl_splitter_init(&sp, st, (size_t)size, (size_t)overlap) < 0)
		pl_usage_error("bad --size or --overlap");

	pl_input_open(argc - optind, argv + optind);
	while (pl_input_next(&rec)) {
		chunk_doc(&rec, &sp, st == PL_SPLIT_MARKDOWN);
		docs++;
		bytes += rec.len;
		pl_progress(docs, bytes, "documents");
		if (pl_stop)
			pl_exit_signal();
	}
	pl_splitter_free(&sp);
	pl_jobj_free(&rec.obj);
	pl_buf_free(&filebuf);
	pl_buf_free(&fixbuf);
	pl_buf_free(&strbuf);
	pl_finish();
}
