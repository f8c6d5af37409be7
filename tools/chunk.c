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
	"[--compat langchain] [--invalid-utf8 error|replace] [-v] [--quiet]\n"
	"[--keep-going] [--rejects file] [file ...]";

static const char help[] =
	"\nSplit document records into chunk records.\n\n"
	"  -s, --size N            chunk size in characters (PLUMB_CHUNK_SIZE, 1000)\n"
	"  -o, --overlap N         overlap in characters (PLUMB_CHUNK_OVERLAP; 200, or a\n"
	"                          fifth of the size when that is less)\n"
	"      --strategy S        recursive, markdown or fixed (PLUMB_CHUNK_STRATEGY)\n"
	"      --compat langchain  the chunks of LangChain's RecursiveCharacterTextSplitter\n"
	"      --invalid-utf8 M    error (default) or replace with U+FFFD (PLUMB_INVALID_UTF8)\n"
	"      --keep-going        report bad records and go on (PLUMB_KEEP_GOING)\n"
	"      --rejects FILE      also write bad records to FILE (PLUMB_REJECTS)\n"
	"  -v, --verbose           a summary on stderr at the end (PLUMB_VERBOSE)\n"
	"      --quiet             no progress line on a terminal\n"
	"  -h, --help              this text\n"
	"      --version           the version\n";

/* Fields of a document not copied into its chunks: those that become other
 * fields of a chunk or none, and those chunk writes itself, which replace the
 * document's own (a record never names a field twice: JSON readers differ on
 * which of two they take). markdown also writes "meta", handled apart. */
static const char *const consumed[] = {
	"id", "op", "text", "sha256", "size",
	"doc_id", "doc_sha256", "chunk", "start", "end", NULL
};

struct doc {
	const struct pl_rec *rec;
	const struct pl_jmember *id, *meta;
	char sha[PL_SHA256_HEX];	/* the record's sha256 in lower case, or the text's */
	const char *text;
	const unsigned char *skip;	/* per member of rec: not copied into chunks */
	unsigned long n;	/* chunks written */
	struct pl_splitter *sp;
	int headings;		/* markdown: put the heading path in meta */
};

static int replace_invalid;
static unsigned char *skipmask;
static size_t skipcap;
static struct pl_buf keybuf1, keybuf2;
static unsigned long long nchunked, nchunks, ndeleted;	/* for --verbose */
static struct pl_buf filebuf, fixbuf, strbuf;

static int is_consumed(const struct pl_jmember *m)
{
	for (int i = 0; consumed[i]; i++)
		if (pl_jmember_key_is(m, consumed[i]))
			return 1;
	return 0;
}

/* m's name, decoded when it has escapes ("\u0069d" is "id") */
static const char *key_of(const struct pl_jmember *m, struct pl_buf *b, size_t *n)
{
	if (!m->key_esc) {
		*n = m->keylen;
		return m->key;
	}
	b->n = 0;
	pl_json_str_decode(m->key, m->keylen, b, PL_JSTR_REPLACE, NULL);
	*n = b->n;
	return b->p;
}

/* Whether a later member of o has the same name as member i. */
static int named_again(const struct pl_jobj *o, size_t i)
{
	size_t n, k;
	const char *name = key_of(&o->m[i], &keybuf1, &n);

	for (size_t j = i + 1; j < o->n; j++) {
		const char *other = key_of(&o->m[j], &keybuf2, &k);
		if (k == n && memcmp(other, name, n) == 0)
			return 1;
	}
	return 0;
}

/* Which members of the document its chunks leave out: the consumed ones,
 * "meta" when markdown writes its own, and all but the last of a name the
 * document repeats (the one chunk itself reads, as a last-wins reader
 * would), so that no chunk names a field twice. Once per document: a few
 * members, compared pairwise. */
static const unsigned char *skip_members(const struct pl_jobj *o, int markdown)
{
	if (o->n > skipcap) {
		skipcap = o->n;
		skipmask = pl_xrealloc(skipmask, skipcap);
	}
	for (size_t i = 0; i < o->n; i++)
		skipmask[i] = is_consumed(&o->m[i]) ||
			      (markdown && pl_jmember_key_is(&o->m[i], "meta")) ||
			      named_again(o, i);
	return skipmask;
}

static void put_doc_id(const struct doc *d)
{
	/* the id's raw (escaped) form is valid string content: no decoding */
	pl_buf_add(&pl_out, d->id->val + 1, d->id->vallen - 2);
}

static void put_sha(const struct doc *d)
{
	pl_buf_addc(&pl_out, '"');
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
		if (d->skip[i])
			continue;
		pl_buf_addc(&pl_out, ',');
		pl_json_put_member(&pl_out, &o->m[i]);
	}
	pl_buf_addc(&pl_out, '}');
	pl_out_end();
	d->n++;
	nchunks++;
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

/* How much of a raw JSON value a message shows: up to 80 bytes, not ending
 * inside a UTF-8 character. */
static int shown_len(const char *v, size_t n)
{
	if (n <= 80)
		return (int)n;
	n = 80;
	while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
		n--;
	return (int)n;
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
		ndeleted++;
		return;
	}

	/* A given sha256 becomes doc_sha256, which the stores compare to find
	 * stale chunks: anything but a SHA-256 is bad input, as in discover-diff
	 * (64 hex digits in either case, written in lower case). */
	sm = pl_jobj_get(&rec->obj, "sha256");
	if (sm) {
		unsigned char raw[32];
		int shown = shown_len(sm->val, sm->vallen);
		const char *more = (size_t)shown < sm->vallen ? "..." : "";
		if (sm->type != PL_JSTR) {
			pl_input_reject(rec, "\"sha256\" is not a string: %.*s%s", shown, sm->val, more);
			return;
		}
		if (sm->val_esc || sm->vallen != 66 || pl_unhex(sm->val + 1, 64, raw) < 0) {
			pl_input_reject(rec, "\"sha256\" is not 64 hex digits: %.*s%s", shown, sm->val,
					more);
			return;
		}
		pl_hex(raw, 32, d.sha);
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

	if (!sm)
		pl_sha256_hex(text, n, d.sha);
	d.meta = pl_jobj_get(&rec->obj, "meta");
	if (markdown && d.meta && d.meta->type != PL_JOBJ) {
		pl_input_reject(rec, "\"meta\" is not an object");
		return;
	}
	d.text = text;
	d.skip = skip_members(&rec->obj, markdown);
	pl_split(sp, text, n, on_chunk, &d);

	pl_buf_add(&pl_out, "{\"op\":\"done\",\"doc_id\":\"", 23);
	put_doc_id(&d);
	pl_buf_add(&pl_out, "\",\"doc_sha256\":", 15);
	put_sha(&d);
	pl_buf_add(&pl_out, ",\"chunks\":", 10);
	pl_buf_u64(&pl_out, d.n);
	pl_buf_addc(&pl_out, '}');
	pl_out_end();
	nchunked++;
}

/* An option's value and where it came from, for messages that name what the
 * user actually set: the flag, its environment variable, or the default. */
struct setting {
	const char *val;
	const char *flag;	/* "--size" */
	const char *var;	/* "PLUMB_CHUNK_SIZE" */
	enum { FROM_DEFAULT, FROM_ENV, FROM_FLAG } from;
};

static void setting_init(struct setting *o, const char *flag, const char *var, const char *def)
{
	const char *v = pl_env(var, NULL);

	*o = (struct setting){ v ? v : def, flag, var, v ? FROM_ENV : FROM_DEFAULT };
}

static void setting_set(struct setting *o, const char *val)
{
	o->val = val;
	o->from = FROM_FLAG;
}

/* The name of what set it: "--size" or "PLUMB_CHUNK_SIZE" (the default is
 * always valid, so a bad value has one of these). */
static const char *setting_name(const struct setting *o)
{
	return o->from == FROM_ENV ? o->var : o->flag;
}

/* "--overlap (300)", "PLUMB_CHUNK_OVERLAP (300)" or "the default size (1000)" */
static const char *setting_describe(const struct setting *o, char *buf, size_t n)
{
	if (o->from == FROM_DEFAULT)
		snprintf(buf, n, "the default %s (%s)", o->flag + 2, o->val);
	else
		snprintf(buf, n, "%s (%s)", setting_name(o), o->val);
	return buf;
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
	struct setting osize, ooverlap, ostrategy, oinvalid;
	const char *compat = NULL;
	char d1[128], d2[128];
	long size, overlap;
	enum pl_split_strategy st;
	struct pl_splitter sp;
	struct pl_rec rec = { 0 };
	unsigned long long docs = 0, bytes = 0;
	int c;

	pl_init("chunk", usage, help);
	setting_init(&osize, "--size", "PLUMB_CHUNK_SIZE", "1000");
	setting_init(&ooverlap, "--overlap", "PLUMB_CHUNK_OVERLAP", "200");
	setting_init(&ostrategy, "--strategy", "PLUMB_CHUNK_STRATEGY", "recursive");
	setting_init(&oinvalid, "--invalid-utf8", "PLUMB_INVALID_UTF8", "error");
	while ((c = getopt_long(argc, argv, "s:o:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			setting_set(&osize, optarg);
			break;
		case 'o':
			setting_set(&ooverlap, optarg);
			break;
		case 'S':
			setting_set(&ostrategy, optarg);
			break;
		case 'C':
			compat = optarg;
			break;
		case 'U':
			setting_set(&oinvalid, optarg);
			break;
		default:
			pl_common_option(c, optarg);
		}
	}
	size = pl_parse_long(setting_name(&osize), osize.val, 1, 1L << 30);
	overlap = pl_parse_long(setting_name(&ooverlap), ooverlap.val, 0, 1L << 30);
	/* unless set, the overlap is 200 or a fifth of the size, whichever is
	 * less: "chunk -s 100" should work as typed */
	if (ooverlap.from == FROM_DEFAULT && overlap > size / 5)
		overlap = size / 5;
	if (strcmp(ostrategy.val, "recursive") == 0)
		st = PL_SPLIT_RECURSIVE;
	else if (strcmp(ostrategy.val, "markdown") == 0)
		st = PL_SPLIT_MARKDOWN;
	else if (strcmp(ostrategy.val, "fixed") == 0)
		st = PL_SPLIT_FIXED;
	else
		pl_usage_error("unknown %s '%s' (want recursive, markdown or fixed)",
			       setting_name(&ostrategy), ostrategy.val);
	if (compat) {
		if (strcmp(compat, "langchain") != 0)
			pl_usage_error("unknown --compat '%s' (want langchain)", compat);
		if (st != PL_SPLIT_RECURSIVE)
			pl_usage_error("--compat langchain goes with the recursive strategy, not %s%s%s",
				       setting_name(&ostrategy),
				       ostrategy.from == FROM_ENV ? "=" : " ", ostrategy.val);
		st = PL_SPLIT_LANGCHAIN;
	}
	if (strcmp(oinvalid.val, "replace") == 0)
		replace_invalid = 1;
	else if (strcmp(oinvalid.val, "error") != 0)
		pl_usage_error("unknown %s '%s' (want error or replace)", setting_name(&oinvalid),
			       oinvalid.val);
	if (overlap >= size)
		pl_usage_error("%s must be smaller than %s",
			       setting_describe(&ooverlap, d1, sizeof d1),
			       setting_describe(&osize, d2, sizeof d2));
	if (pl_splitter_init(&sp, st, (size_t)size, (size_t)overlap) < 0)
		pl_die(PL_EX_SOFTWARE, "cannot set up the splitter");

	pl_input_open(argc - optind, argv + optind);
	while (pl_input_next(&rec)) {
		chunk_doc(&rec, &sp, st == PL_SPLIT_MARKDOWN);
		docs++;
		bytes += rec.len;
		pl_progress(docs, bytes, "documents");
		if (pl_stop)
			pl_exit_signal();
	}
	pl_info("%llu document%s split into %llu chunk%s, %llu delete%s passed on", nchunked,
		nchunked == 1 ? "" : "s", nchunks, nchunks == 1 ? "" : "s", ndeleted,
		ndeleted == 1 ? "" : "s");
	pl_splitter_free(&sp);
	pl_jobj_free(&rec.obj);
	pl_buf_free(&filebuf);
	pl_buf_free(&fixbuf);
	pl_buf_free(&strbuf);
	pl_buf_free(&keybuf1);
	pl_buf_free(&keybuf2);
	free(skipmask);
	pl_finish();
}
