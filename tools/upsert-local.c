/* upsert-local: store vector records in a local vector store (a directory)
 * and acknowledge each document once it is durably there (docs/upsert-local.1). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vstore.h"

static const char usage[] =
	"upsert-local [-b N] [--no-wait] [--keep-going] [--rejects file] DIR [file ...]\n"
	"upsert-local --compact [--no-wait] DIR\n"
	"upsert-local --stats DIR\n"
	"upsert-local --dump DIR";

static const char help[] =
	"\nStore vector records in DIR and write an ack for each document once its\n"
	"points are durably stored.\n\n"
	"  -b, --batch N       points per commit (PLUMB_BATCH, 1000)\n"
	"      --no-wait       exit 75 at once if another writer has the store (PLUMB_NO_WAIT)\n"
	"      --compact       merge the store's segments, dropping deleted points\n"
	"      --stats         print a summary of the store as JSON\n"
	"      --dump          write every point of the store as a vector record\n"
	"      --keep-going    report bad records and go on (PLUMB_KEEP_GOING)\n"
	"      --rejects FILE  also write bad records to FILE (PLUMB_REJECTS)\n"
	"  -v, --verbose, --quiet, -h, --help, --version: see plumb(7)\n"
	"DIR defaults to PLUMB_LOCAL_STORE.\n";

static struct pl_vs_writer *w;
static struct pl_buf acks = PL_BUF_INIT;	/* ack lines waiting for a commit */
static size_t nacks;
static long batch;
static const char *dir;
static char err[PL_VS_ERRLEN];

/* Make everything read so far durable, then write the acks it covers. */
static void commit(void)
{
	int status;

	if (pl_vs_dirty(w)) {
		status = pl_vs_commit(w, err);
		if (status)
			pl_die(pl_vs_exit_status(status), "%s", err);
	}
	if (nacks) {
		pl_buf_add(&pl_out, acks.p, acks.n);
		acks.n = 0;
		nacks = 0;
	}
	pl_out_flush();
}

static void commit_and_compact(void)
{
	int did, status;

	commit();
	status = pl_vs_maybe_compact(w, &did, err);
	if (status)
		pl_die(pl_vs_exit_status(status), "compaction: %s", err);
	if (did)
		pl_info("compacted '%s'", dir);
}

/* Input would block: acks waiting for a commit must not wait with it. */
static void before_block(void)
{
	if (nacks)
		commit();
	pl_out_flush();
}

/* Bad input stops the program: what came before it is stored and acked. */
static void before_fatal(void)
{
	if (w)
		commit();
}

/* A member's decoded string, or reject the record. */
static int str_member(const struct pl_rec *rec, const char *key, struct pl_buf *scratch,
		      const char **s, size_t *n, int required)
{
	const struct pl_jmember *m = pl_jobj_get(&rec->obj, key);
	struct pl_jerr e;

	if (!m) {
		if (required)
			pl_input_reject(rec, "record has no \"%s\"", key);
		*s = "";
		*n = 0;
		return 0;
	}
	if (m->type != PL_JSTR) {
		pl_input_reject(rec, "\"%s\" is not a string", key);
		return -1;
	}
	if (pl_jmember_str(m, scratch, s, n, 0, &e) < 0) {
		pl_input_reject(rec, "\"%s\": %s", key, e.msg);
		return -1;
	}
	return 1;
}

/* A done marker without doc_sha256 or chunks is bad input, not a document
 * of unknown version: taken as one, it deleted as stale the very points
 * just written, and acked the loss. */
static void take_done(const struct pl_rec *rec)
{
	static const char *const known[] = { "op", "doc_id", "doc_sha256", "chunks", NULL };
	static struct pl_buf sdoc, ssha;
	const struct pl_jmember *cm = pl_jobj_get(&rec->obj, "chunks");
	const char *d, *s;
	size_t dn, sn, have;
	int64_t nch;

	if (pl_need_str(rec, "doc_id", &sdoc, &d, &dn, "\"done\" marker") < 0 ||
	    pl_need_str(rec, "doc_sha256", &ssha, &s, &sn, "\"done\" marker") < 0)
		return;
	if (!cm || pl_jmember_i64(cm, &nch) < 0 || nch < 0) {
		pl_input_reject(rec, "\"done\" marker has no \"chunks\" count");
		return;
	}
	if (pl_vs_done(w, d, dn, s, sn, nch, &have, err) != PL_VS_OK) {
		pl_input_reject(rec, "%s in the store; not acknowledged", err);
		return;
	}
	pl_buf_adds(&acks, "{\"op\":\"indexed\",\"doc_id\":");
	pl_json_put_str(&acks, d, dn);
	pl_buf_adds(&acks, ",\"doc_sha256\":");
	pl_json_put_str(&acks, s, sn);
	pl_buf_adds(&acks, ",\"chunks\":");
	pl_buf_i64(&acks, nch);
	pl_json_put_others(&acks, &rec->obj, known);	/* as upsert-qdrant */
	pl_buf_add(&acks, "}\n", 2);
	nacks++;
}

static void take_delete(const struct pl_rec *rec)
{
	static const char *const known[] = { "op", "doc_id", NULL };
	static struct pl_buf sdoc;
	const char *d;
	size_t dn, n;

	if (pl_need_str(rec, "doc_id", &sdoc, &d, &dn, "\"delete\" record") < 0)
		return;
	pl_vs_delete_doc(w, d, dn, &n);
	pl_info("%s:%lu: deleted %zu points of \"%.*s\"", rec->file, rec->lineno, n,
		(int)(dn > 200 ? 200 : dn), d);
	pl_buf_adds(&acks, "{\"op\":\"deleted\",\"doc_id\":");
	pl_json_put_str(&acks, d, dn);
	pl_json_put_others(&acks, &rec->obj, known);	/* as upsert-qdrant */
	pl_buf_add(&acks, "}\n", 2);
	nacks++;
}

static void take_point(const struct pl_rec *rec, const struct pl_jmember *vec)
{
	static struct pl_buf sid, sdoc, ssha, smodel, payload;
	static float *v;
	static size_t vcap;
	const struct pl_jmember *chunk = pl_jobj_get(&rec->obj, "chunk");
	struct pl_vs_row r;
	const char *model;
	size_t modellen;
	char why[128];
	long dim;
	int has_model, status;

	memset(&r, 0, sizeof r);
	if (str_member(rec, "id", &sid, &r.id, &r.idlen, 1) <= 0)
		return;
	if (r.idlen == 0) {
		pl_input_reject(rec, "\"id\" is empty");
		return;
	}
	if ((r.has_doc = str_member(rec, "doc_id", &sdoc, &r.doc, &r.doclen, 0)) < 0 ||
	    str_member(rec, "doc_sha256", &ssha, &r.sha, &r.shalen, 0) < 0 ||
	    (has_model = str_member(rec, "model", &smodel, &model, &modellen, 0)) < 0)
		return;
	dim = pl_vs_vector_member(vec, &v, &vcap, why, sizeof why);
	if (dim < 0) {
		pl_input_reject(rec, "%s", why);
		return;
	}
	r.chunk = -1;
	if (chunk && (pl_jmember_i64(chunk, &r.chunk) < 0 || r.chunk < 0))
		r.chunk = -1;

	/* the payload: the record without its vector, members verbatim */
	payload.n = 0;
	pl_buf_addc(&payload, '{');
	for (size_t i = 0; i < rec->obj.n; i++) {
		const struct pl_jmember *m = &rec->obj.m[i];
		if (m == vec || pl_jmember_key_is(m, "vector"))
			continue;
		if (payload.n > 1)
			pl_buf_addc(&payload, ',');
		pl_json_put_member(&payload, m);
	}
	pl_buf_addc(&payload, '}');
	r.payload = payload.p;
	r.paylen = payload.n;

	status = pl_vs_put(w, &r, v, (int)dim, has_model ? model : NULL, modellen, err);
	if (status) {
		pl_input_reject(rec, "%s", err);
		return;
	}
	if (pl_vs_pending(w) >= (size_t)batch)
		commit_and_compact();
}

static void take(const struct pl_rec *rec)
{
	const struct pl_jmember *op = pl_jobj_get(&rec->obj, "op");
	const struct pl_jmember *vec = pl_jobj_get(&rec->obj, "vector");

	/* as in upsert-qdrant: a record with "op" is a marker, vector or not */
	if (op) {
		if (op->type == PL_JSTR && op->vallen == 6 && memcmp(op->val, "\"done\"", 6) == 0)
			take_done(rec);
		else if (op->type == PL_JSTR && op->vallen == 8 && memcmp(op->val, "\"delete\"", 8) == 0)
			take_delete(rec);
		else
			pl_input_reject(rec, "unknown op %.*s (want \"done\" or \"delete\")",
					(int)(op->vallen > 40 ? 40 : op->vallen), op->val);
		return;
	}
	if (!vec) {
		pl_input_reject(rec, "record has no \"vector\" (is embed missing from the pipeline?)");
		return;
	}
	take_point(rec, vec);
}

static struct pl_vs *open_reader(void)
{
	struct pl_vs *vs;
	int status = pl_vs_open(dir, &vs, err);

	if (status)
		pl_die(pl_vs_exit_status(status), "%s", err);
	return vs;
}

static void stats(void)
{
	struct pl_vs *vs = open_reader();

	pl_buf_adds(&pl_out, "{\"store\":");
	pl_json_put_str(&pl_out, dir, strlen(dir));
	pl_buf_printf(&pl_out, ",\"generation\":%llu,\"dim\":%d,\"model\":",
		      (unsigned long long)vs->generation, vs->dim);
	pl_json_put_str(&pl_out, vs->model, strlen(vs->model));
	pl_buf_printf(&pl_out, ",\"segments\":%zu,\"points\":%zu,\"live\":%zu,\"dead\":%zu,"
		      "\"bytes\":%llu}", vs->nseg, vs->rows, vs->rows - vs->dead, vs->dead,
		      (unsigned long long)vs->bytes);
	pl_out_end();
	pl_vs_close(vs);
}

static void dump(void)
{
	struct pl_vs *vs = open_reader();
	struct pl_vs_row r;
	char num[32];

	for (size_t s = 0; s < vs->nseg; s++) {
		const struct pl_vs_seg *seg = &vs->seg[s];
		for (size_t i = 0; i < seg->rows; i++) {
			if (pl_vs_is_dead(seg, i))
				continue;
			pl_vs_get_row(seg, i, &r);
			pl_buf_add(&pl_out, r.payload, r.paylen - 1);
			pl_buf_adds(&pl_out, ",\"vector\":[");
			const float *v = seg->vec + i * (size_t)vs->dim;
			for (int k = 0; k < vs->dim; k++) {
				int n = snprintf(num, sizeof num, "%s%.9g", k ? "," : "", (double)v[k]);
				pl_buf_add(&pl_out, num, (size_t)n);
			}
			pl_buf_add(&pl_out, "]}", 2);
			pl_out_end();
		}
	}
	pl_vs_close(vs);
}

int main(int argc, char **argv)
{
	enum { O_NOWAIT = 0x2000, O_COMPACT, O_STATS, O_DUMP };
	static const struct option longopts[] = {
		{ "batch", required_argument, NULL, 'b' },
		{ "no-wait", no_argument, NULL, O_NOWAIT },
		{ "compact", no_argument, NULL, O_COMPACT },
		{ "stats", no_argument, NULL, O_STATS },
		{ "dump", no_argument, NULL, O_DUMP },
		PL_COMMON_LONGOPTS,
		{ 0 }
	};
	struct pl_rec rec = { 0 };
	unsigned long long nrec = 0, bytes = 0;
	int c, no_wait, do_compact = 0, do_stats = 0, do_dump = 0, status;
	const char *v;

	pl_init("upsert-local", usage, help);
	batch = pl_env_long("PLUMB_BATCH", 1000);
	v = pl_env("PLUMB_NO_WAIT", NULL);
	no_wait = v && strcmp(v, "0") != 0;
	while ((c = getopt_long(argc, argv, "b:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': batch = pl_parse_long("--batch", optarg, 1, 1L << 24); break;
		case O_NOWAIT: no_wait = 1; break;
		case O_COMPACT: do_compact = 1; break;
		case O_STATS: do_stats = 1; break;
		case O_DUMP: do_dump = 1; break;
		default: pl_common_option(c, optarg);
		}
	}
	if (batch < 1 || batch > (1L << 24))
		pl_usage_error("PLUMB_BATCH must be from 1 to %ld", 1L << 24);
	if (optind < argc)
		dir = argv[optind++];
	else
		dir = pl_env("PLUMB_LOCAL_STORE", NULL);
	if (!dir)
		pl_usage_error("no store directory (give DIR, or set PLUMB_LOCAL_STORE)");
	if (do_dump + do_stats > 1 || (do_dump && do_compact))
		pl_usage_error("--dump goes alone, and --stats only with --compact");
	if ((do_compact || do_stats || do_dump) && optind < argc)
		pl_usage_error("--compact, --stats and --dump take no input files");

	if (do_stats && !do_compact) {
		stats();
		pl_finish();
	}
	if (do_dump) {
		dump();
		pl_finish();
	}

	pl_input_open(0, NULL);	/* sets up --rejects */
	status = pl_vs_writer_open(dir, 0, &pl_stop, &w, err);
	if (status == PL_VS_EBUSY && !no_wait) {
		if (!pl_quiet)
			pl_warn("store '%s' is in use by another writer; waiting", dir);
		status = pl_vs_writer_open(dir, 1, &pl_stop, &w, err);
	}
	if (status == PL_VS_EINTR)
		pl_exit_signal();
	if (status)
		pl_die(pl_vs_exit_status(status), "%s", err);

	if (do_compact) {
		int did;
		status = pl_vs_compact(w, &did, err);
		if (status)
			pl_die(pl_vs_exit_status(status), "compaction: %s", err);
		pl_vs_writer_close(w);
		w = NULL;
		if (do_stats)
			stats();
		pl_finish();
	}

	pl_input_before_fatal(before_fatal);
	int nfiles = argc - optind;
	char *dash[] = { "-" };
	char **files = nfiles ? argv + optind : dash;
	for (int i = 0; i < (nfiles ? nfiles : 1) && !pl_stop; i++) {
		struct pl_lines l;
		if (pl_lines_open(&l, files[i]) < 0) {
			commit();
			pl_die(PL_EX_USAGE, "cannot open '%s':", files[i]);
		}
		pl_input_attach(&l);
		l.before_block = before_block;
		while (pl_input_next_from(&l, &rec)) {
			take(&rec);
			nrec++;
			bytes += rec.len;
			pl_progress(nrec, bytes, "records");
			if (pl_stop)
				break;
		}
		pl_lines_close(&l);
	}
	if (pl_stop) {
		/* finish the commit under way and write the acks it covers */
		commit();
		pl_exit_signal();
	}
	commit_and_compact();
	pl_vs_writer_close(w);
	w = NULL;
	pl_jobj_free(&rec.obj);
	pl_buf_free(&acks);
	pl_finish();
}
