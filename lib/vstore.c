/* The local vector store (see vstore.h, and docs/upsert-local.1 for the
 * format). Segment and deletion files are written once, fsync'd, and never
 * changed; a version of the store is the set of files its MANIFEST names, and
 * a new version becomes current by renaming a new MANIFEST over the old one.
 * Readers map the files a manifest names and keep them mapped, so a writer
 * may unlink them afterwards (Linux keeps an unlinked file's pages while a
 * mapping exists); a reader that finds a named file already gone re-reads the
 * manifest, which has then changed. */
#include "vstore.h"
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "exitcode.h"
#include "json.h"

#define SEG_MAGIC "PLVSSEG1"
#define DEL_MAGIC "PLVSDEL1"
#define BOM 0x01020304u
#define MANIFEST "MANIFEST"
#define MANIFEST_TMP "MANIFEST.tmp"
#define LOCKFILE "LOCK"
#define OPEN_TRIES 200

/* At the start of a segment file. Native byte order; bom tells. */
struct seg_hdr {
	char magic[8];
	uint32_t bom, version;
	uint32_t dim, flags;
	uint64_t rows;
	uint64_t vec_off, ent_off, blob_off, blob_len;
};

/* One per row, after the vectors. The id, doc id, sha and payload follow
 * each other in the blob from off. */
struct ent {
	uint64_t off;
	uint32_t idlen, doclen, shalen, paylen;
	int32_t chunk;
	uint32_t flags;
};
#define ENT_HAS_DOC 1u

struct del_hdr {
	char magic[8];
	uint32_t bom, version;
	uint64_t rows, dead;
};

_Static_assert(sizeof(struct seg_hdr) == 64, "segment header is 64 bytes");
_Static_assert(sizeof(struct ent) == 32, "row entry is 32 bytes");
_Static_assert(sizeof(struct del_hdr) == 32, "deletion header is 32 bytes");

static int set_err(char *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_err(char *err, int status, const char *fmt, ...)
{
	va_list ap;
	if (err) {
		va_start(ap, fmt);
		vsnprintf(err, PL_VS_ERRLEN, fmt, ap);
		va_end(ap);
	}
	return status;
}

/* The status of a failure to open or create one of the store's paths: a
 * path that can name no store, or one this user may not use, is the
 * caller's configuration to fix; anything else is an I/O error. */
static int open_status(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
	case ELOOP:
	case ENAMETOOLONG:
		return PL_VS_ENOSTORE;
	case EACCES:
	case EPERM:
	case EROFS:
		return PL_VS_EACCES;
	default:
		return PL_VS_EIO;
	}
}

int pl_vs_exit_status(int status)
{
	switch (status) {
	case PL_VS_OK:
		return PL_EX_OK;
	case PL_VS_ENOSTORE:
	case PL_VS_EACCES:
		return PL_EX_USAGE;
	case PL_VS_EBUSY:
		return PL_EX_TEMPFAIL;
	default:
		return PL_EX_SOFTWARE;
	}
}

static void seg_name(char *out, size_t n, uint64_t num)
{
	snprintf(out, n, "seg-%06llu", (unsigned long long)num);
}

static void del_name(char *out, size_t n, uint64_t num, uint64_t gen)
{
	snprintf(out, n, "seg-%06llu.del-%06llu", (unsigned long long)num, (unsigned long long)gen);
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

void pl_vs_get_row(const struct pl_vs_seg *s, size_t row, struct pl_vs_row *r)
{
	const struct ent *e = (const struct ent *)s->ents + row;
	const char *p = s->blob + e->off;

	r->id = p;
	r->idlen = e->idlen;
	r->doc = p += e->idlen;
	r->doclen = e->doclen;
	r->sha = p += e->doclen;
	r->shalen = e->shalen;
	r->payload = p + e->shalen;
	r->paylen = e->paylen;
	r->chunk = e->chunk;
	r->has_doc = (e->flags & ENT_HAS_DOC) != 0;
}

/* --- the manifest ------------------------------------------------------- */

struct mseg {
	uint64_t num, rows, dead, del_gen;	/* del_gen 0: no deletions file */
};

struct manifest {
	uint64_t generation, next_file;
	int dim;
	char *model;
	struct mseg *seg;
	size_t nseg;
};

static void manifest_free(struct manifest *m)
{
	free(m->model);
	free(m->seg);
	memset(m, 0, sizeof *m);
}

static int read_all(int fd, struct pl_buf *b)
{
	for (;;) {
		pl_buf_reserve(b, 65536);
		ssize_t r = read(fd, b->p + b->n, b->cap - b->n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return 0;
		b->n += (size_t)r;
	}
}

static int get_u64(json_t *o, const char *key, uint64_t *v)
{
	json_t *x = json_object_get(o, key);
	if (!json_is_integer(x) || json_integer_value(x) < 0)
		return -1;
	*v = (uint64_t)json_integer_value(x);
	return 0;
}

/* Read and parse dir's manifest. PL_VS_ENOSTORE when there is none. */
static int manifest_read(int dirfd, const char *dir, struct manifest *m, char *err)
{
	struct pl_buf b = PL_BUF_INIT;
	json_error_t je;
	json_t *root = NULL, *segs, *x;
	int fd, status = PL_VS_OK;
	uint64_t dim;

	memset(m, 0, sizeof *m);
	fd = openat(dirfd, MANIFEST, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return set_err(err, PL_VS_ENOSTORE, "'%s' is not a plumb vector store (no %s)",
				       dir, MANIFEST);
		return set_err(err, open_status(errno), "cannot open '%s/%s': %s", dir, MANIFEST,
			       strerror(errno));
	}
	if (read_all(fd, &b) < 0) {
		status = set_err(err, PL_VS_EIO, "cannot read '%s/%s': %s", dir, MANIFEST,
				 strerror(errno));
		goto out;
	}
	root = json_loadb(b.p ? b.p : "", b.n, 0, &je);
	if (!root) {
		status = set_err(err, PL_VS_ECORRUPT, "'%s/%s': invalid JSON: %s", dir, MANIFEST,
				 je.text);
		goto out;
	}
	x = json_object_get(root, "format");
	if (!json_is_string(x) || strcmp(json_string_value(x), "plumb-vstore") != 0) {
		status = set_err(err, PL_VS_ECORRUPT, "'%s/%s' is not a plumb vector store manifest",
				 dir, MANIFEST);
		goto out;
	}
	uint64_t version;
	if (get_u64(root, "version", &version) < 0 || version != PL_VS_VERSION) {
		status = set_err(err, PL_VS_ECORRUPT, "'%s/%s': unsupported store version", dir,
				 MANIFEST);
		goto out;
	}
	x = json_object_get(root, "model");
	segs = json_object_get(root, "segments");
	if (get_u64(root, "generation", &m->generation) < 0 ||
	    get_u64(root, "next_file", &m->next_file) < 0 || get_u64(root, "dim", &dim) < 0 ||
	    dim > 65536 || !json_is_string(x) || !json_is_array(segs)) {
		status = set_err(err, PL_VS_ECORRUPT, "'%s/%s': a field is missing or malformed",
				 dir, MANIFEST);
		goto out;
	}
	m->dim = (int)dim;
	m->model = pl_xstrdup(json_string_value(x));
	m->nseg = json_array_size(segs);
	m->seg = pl_xmalloc((m->nseg ? m->nseg : 1) * sizeof *m->seg);
	for (size_t i = 0; i < m->nseg; i++) {
		json_t *s = json_array_get(segs, i);
		struct mseg *ms = &m->seg[i];
		if (get_u64(s, "num", &ms->num) < 0 || get_u64(s, "rows", &ms->rows) < 0 ||
		    get_u64(s, "dead", &ms->dead) < 0 || get_u64(s, "del_gen", &ms->del_gen) < 0 ||
		    ms->dead > ms->rows || (ms->dead && !ms->del_gen) || ms->num >= m->next_file ||
		    (ms->rows && !m->dim)) {
			status = set_err(err, PL_VS_ECORRUPT, "'%s/%s': segment %zu is malformed",
					 dir, MANIFEST, i);
			goto out;
		}
	}
out:
	if (status)
		manifest_free(m);
	json_decref(root);
	pl_buf_free(&b);
	close(fd);
	return status;
}

static void manifest_json(struct pl_buf *b, const struct manifest *m)
{
	char name[64];

	pl_buf_printf(b, "{\"format\":\"plumb-vstore\",\"version\":%d,\"generation\":%llu,"
		      "\"dim\":%d,\"model\":", PL_VS_VERSION, (unsigned long long)m->generation,
		      m->dim);
	pl_json_put_str(b, m->model, strlen(m->model));
	pl_buf_printf(b, ",\"next_file\":%llu,\"segments\":[", (unsigned long long)m->next_file);
	for (size_t i = 0; i < m->nseg; i++) {
		const struct mseg *s = &m->seg[i];
		seg_name(name, sizeof name, s->num);
		pl_buf_printf(b, "%s\n{\"file\":\"%s\",\"num\":%llu,\"rows\":%llu,\"dead\":%llu,",
			      i ? "," : "", name, (unsigned long long)s->num,
			      (unsigned long long)s->rows, (unsigned long long)s->dead);
		if (s->del_gen) {
			del_name(name, sizeof name, s->num, s->del_gen);
			pl_buf_printf(b, "\"del\":\"%s\",", name);
		}
		pl_buf_printf(b, "\"del_gen\":%llu}", (unsigned long long)s->del_gen);
	}
	pl_buf_adds(b, "]}\n");
}

/* --- mapping the files of a version ------------------------------------- */

static int map_file(int dirfd, const char *dir, const char *name, void **map, size_t *len,
		    char *err)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	*map = NULL;
	*len = 0;
	if (fd < 0)
		return set_err(err, errno == ENOENT ? PL_VS_ENOSTORE :
			       errno == EACCES || errno == EPERM ? PL_VS_EACCES : PL_VS_EIO,
			       "cannot open '%s/%s': %s", dir, name, strerror(errno));
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return set_err(err, PL_VS_EIO, "cannot stat '%s/%s': %s", dir, name, strerror(e));
	}
	*len = (size_t)st.st_size;
	if (*len) {
		*map = mmap(NULL, *len, PROT_READ, MAP_SHARED, fd, 0);
		if (*map == MAP_FAILED) {
			int e = errno;
			*map = NULL;
			close(fd);
			return set_err(err, PL_VS_EIO, "cannot map '%s/%s': %s", dir, name,
				       strerror(e));
		}
	}
	close(fd);
	return PL_VS_OK;
}

static void seg_unmap(struct pl_vs_seg *s)
{
	if (s->map)
		munmap(s->map, s->maplen);
	if (s->delmap)
		munmap(s->delmap, s->dellen);
	s->map = s->delmap = NULL;
}

static size_t popcount_bits(const unsigned char *b, size_t rows)
{
	size_t n = 0;
	for (size_t i = 0; i < rows / 8; i++)
		n += (size_t)__builtin_popcount(b[i]);
	for (size_t r = rows & ~(size_t)7; r < rows; r++)
		n += b[r >> 3] >> (r & 7) & 1;
	return n;
}

/* Map segment ms of a version and check it against the manifest. */
static int seg_load(int dirfd, const char *dir, const struct mseg *ms, int dim,
		    struct pl_vs_seg *s, char *err)
{
	char name[64];
	const struct seg_hdr *h;
	int status;

	memset(s, 0, sizeof *s);
	s->num = ms->num;
	seg_name(name, sizeof name, ms->num);
	status = map_file(dirfd, dir, name, &s->map, &s->maplen, err);
	if (status)
		return status;
	h = s->map;
	size_t vbytes = (size_t)ms->rows * (size_t)dim * sizeof(float);
	if (s->maplen < sizeof *h || memcmp(h->magic, SEG_MAGIC, 8) != 0 || h->bom != BOM ||
	    h->version != PL_VS_VERSION || h->dim != (uint32_t)dim || h->rows != ms->rows ||
	    h->vec_off != sizeof *h || h->ent_off != align8(sizeof *h + vbytes) ||
	    h->blob_off != h->ent_off + ms->rows * sizeof(struct ent) ||
	    h->blob_off + h->blob_len != s->maplen)
		goto corrupt;
	s->rows = (size_t)ms->rows;
	s->vec = (const float *)((const char *)s->map + h->vec_off);
	s->ents = (const char *)s->map + h->ent_off;
	s->blob = (const char *)s->map + h->blob_off;
	s->bloblen = (size_t)h->blob_len;
	for (size_t i = 0; i < s->rows; i++) {
		const struct ent *e = (const struct ent *)s->ents + i;
		uint64_t len = (uint64_t)e->idlen + e->doclen + e->shalen + e->paylen;
		if (e->off > s->bloblen || len > s->bloblen - e->off)
			goto corrupt;
	}
	if (ms->del_gen) {
		const struct del_hdr *d;
		del_name(name, sizeof name, ms->num, ms->del_gen);
		status = map_file(dirfd, dir, name, &s->delmap, &s->dellen, err);
		if (status) {
			seg_unmap(s);
			return status;
		}
		d = s->delmap;
		if (s->dellen != sizeof *d + (s->rows + 7) / 8 || memcmp(d->magic, DEL_MAGIC, 8) ||
		    d->bom != BOM || d->version != PL_VS_VERSION || d->rows != ms->rows ||
		    d->dead != ms->dead)
			goto corrupt;
		s->dead_bits = (const unsigned char *)(d + 1);
		if (popcount_bits(s->dead_bits, s->rows) != ms->dead)
			goto corrupt;
		s->dead = (size_t)ms->dead;
	}
	return PL_VS_OK;
corrupt:
	seg_unmap(s);
	return set_err(err, PL_VS_ECORRUPT, "'%s/%s' does not match the store's manifest", dir,
		       name);
}

static void vs_free(struct pl_vs *vs)
{
	for (size_t i = 0; i < vs->nseg; i++)
		seg_unmap(&vs->seg[i]);
	free(vs->seg);
	free(vs->model);
	free(vs->dir);
	free(vs);
}

/* Map every file of manifest m into a new snapshot. */
static int vs_load(int dirfd, const char *dir, const struct manifest *m, struct pl_vs **out,
		   char *err)
{
	struct pl_vs *vs = pl_xmalloc(sizeof *vs);
	int status = PL_VS_OK;

	memset(vs, 0, sizeof *vs);
	vs->dir = pl_xstrdup(dir);
	vs->generation = m->generation;
	vs->dim = m->dim;
	vs->model = pl_xstrdup(m->model);
	vs->seg = pl_xmalloc((m->nseg ? m->nseg : 1) * sizeof *vs->seg);
	for (size_t i = 0; i < m->nseg; i++) {
		status = seg_load(dirfd, dir, &m->seg[i], m->dim, &vs->seg[i], err);
		if (status)
			break;
		vs->nseg++;
		vs->rows += vs->seg[i].rows;
		vs->dead += vs->seg[i].dead;
		vs->bytes += vs->seg[i].maplen + vs->seg[i].dellen;
	}
	if (status) {
		vs_free(vs);
		return status;
	}
	*out = vs;
	return PL_VS_OK;
}

int pl_vs_open(const char *dir, struct pl_vs **out, char *err)
{
	struct manifest m, again;
	int status = PL_VS_OK;
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*out = NULL;
	if (dirfd < 0)
		return set_err(err, open_status(errno), "cannot open store '%s': %s", dir,
			       strerror(errno));
	for (int tries = 0;; tries++) {
		status = manifest_read(dirfd, dir, &m, err);
		if (status)
			break;
		uint64_t gen = m.generation;
		status = vs_load(dirfd, dir, &m, out, err);
		manifest_free(&m);
		if (status != PL_VS_ENOSTORE)
			break;
		/* A file went away: a writer replaced this version meanwhile,
		 * unless the manifest is still the same, and then the store is
		 * damaged. */
		if (manifest_read(dirfd, dir, &again, NULL) == PL_VS_OK) {
			int same = again.generation == gen;
			manifest_free(&again);
			if (same) {
				status = PL_VS_ECORRUPT;
				break;
			}
		}
		if (tries == OPEN_TRIES) {
			status = set_err(err, PL_VS_EBUSY,
					 "store '%s' kept changing while being opened", dir);
			break;
		}
		struct timespec ts = { 0, 1000000L * (tries < 20 ? tries : 20) };
		nanosleep(&ts, NULL);
	}
	close(dirfd);
	return status;
}

void pl_vs_close(struct pl_vs *vs)
{
	if (vs)
		vs_free(vs);
}

/* --- the writer --------------------------------------------------------- */

struct slot {
	struct pl_vs_seg s;		/* s.ents, s.blob, s.vec: mapped, or the buffers below */
	int live;			/* named by the manifest, or pending */
	int pending;			/* the in-memory segment of uncommitted points */
	int dirty;			/* dead bits changed since the last commit */
	uint64_t del_gen;		/* of the deletions file in the manifest, or 0 */
	unsigned char *bits;		/* dead bits (s.dead_bits points here) */
	uint32_t *row_pt;		/* the point of each row */
	size_t cap;			/* rows of room in the pending buffers */
	float *pvec;
	struct ent *pent;
	struct pl_buf pblob;
};

struct pt {
	uint32_t slot, row, hash, dead;
};

struct doc {
	size_t off;			/* name in docnames */
	uint32_t len, hash;
	uint32_t *pts;
	size_t n, cap;
};

/* Open addressing, linear probing: 0 empty, else index + 1. */
struct map {
	uint32_t *v;
	size_t cap, n;
};

struct pl_vs_writer {
	char *dir;
	int dirfd, lockfd;
	uint64_t generation, next_file;
	int dim;
	char *model;
	int meta_dirty;
	struct slot *slots;
	size_t nslots, slotcap;
	long pend;			/* the pending slot, or -1 */
	struct pt *pts;
	size_t npts, ptcap;
	struct map ids, docmap;
	struct doc *docs;
	size_t ndocs, doccap;
	struct pl_buf docnames;
};

static uint32_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 32;
	return (uint32_t)h;
}

static void row_of(const struct pl_vs_writer *w, uint32_t pt, struct pl_vs_row *r)
{
	pl_vs_get_row(&w->slots[w->pts[pt].slot].s, w->pts[pt].row, r);
}

static int pt_is(const struct pl_vs_writer *w, uint32_t pt, const char *id, size_t len)
{
	struct pl_vs_row r;
	row_of(w, pt, &r);
	return r.idlen == len && memcmp(r.id, id, len) == 0;
}

static int doc_is(const struct pl_vs_writer *w, uint32_t d, const char *name, size_t len)
{
	return w->docs[d].len == len && memcmp(w->docnames.p + w->docs[d].off, name, len) == 0;
}

/* The slot of id (or doc) in the map: where it is, or the empty one where it
 * would go. */
static size_t id_slot(const struct pl_vs_writer *w, const char *id, size_t len, uint32_t h)
{
	size_t mask = w->ids.cap - 1, i = h & mask;
	while (w->ids.v[i]) {
		uint32_t p = w->ids.v[i] - 1;
		if (w->pts[p].hash == h && pt_is(w, p, id, len))
			break;
		i = (i + 1) & mask;
	}
	return i;
}

static size_t doc_slot(const struct pl_vs_writer *w, const char *name, size_t len, uint32_t h)
{
	size_t mask = w->docmap.cap - 1, i = h & mask;
	while (w->docmap.v[i]) {
		uint32_t d = w->docmap.v[i] - 1;
		if (w->docs[d].hash == h && doc_is(w, d, name, len))
			break;
		i = (i + 1) & mask;
	}
	return i;
}

static void map_grow(struct map *m, uint32_t (*hash_of)(const struct pl_vs_writer *, uint32_t),
		     const struct pl_vs_writer *w)
{
	if ((m->n + 1) * 2 <= m->cap)
		return;
	size_t cap = m->cap ? m->cap * 2 : 1024;
	uint32_t *v = calloc(cap, sizeof *v);
	if (!v)
		pl_xmalloc(SIZE_MAX);	/* the out-of-memory path */
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->v[i])
			continue;
		size_t j = hash_of(w, m->v[i] - 1) & (cap - 1);
		while (v[j])
			j = (j + 1) & (cap - 1);
		v[j] = m->v[i];
	}
	free(m->v);
	m->v = v;
	m->cap = cap;
}

static uint32_t pt_hash(const struct pl_vs_writer *w, uint32_t p)
{
	return w->pts[p].hash;
}

static uint32_t doc_hash(const struct pl_vs_writer *w, uint32_t d)
{
	return w->docs[d].hash;
}

/* Remove point p from the id map. It is found by value, so its row need not
 * be readable; the entries after it shift back (linear probing). */
static void ids_remove(struct pl_vs_writer *w, uint32_t p)
{
	size_t mask = w->ids.cap - 1, i = w->pts[p].hash & mask, j;
	uint32_t *v = w->ids.v;

	while (v[i] != p + 1) {
		if (!v[i])
			return;
		i = (i + 1) & mask;
	}
	for (j = i;;) {
		j = (j + 1) & mask;
		if (!v[j])
			break;
		size_t home = w->pts[v[j] - 1].hash & mask;
		/* the entry at j may fill the hole at i unless its home lies
		 * cyclically in (i, j] */
		int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			v[i] = v[j];
			i = j;
		}
	}
	v[i] = 0;
	w->ids.n--;
}

/* Delete point p. in_map: remove it from the id map too (else the caller
 * puts a new point in its place there). */
static void kill_pt(struct pl_vs_writer *w, uint32_t p, int in_map)
{
	struct pt *t = &w->pts[p];
	struct slot *s = &w->slots[t->slot];

	if (t->dead)
		return;
	t->dead = 1;
	s->bits[t->row >> 3] |= (unsigned char)(1u << (t->row & 7));
	s->s.dead++;
	s->dirty = 1;
	if (in_map)
		ids_remove(w, p);
}

static uint32_t doc_get(struct pl_vs_writer *w, const char *name, size_t len, int create)
{
	uint32_t h = hash_bytes(name, len);
	size_t i;

	if (!w->docmap.cap) {
		if (!create)
			return UINT32_MAX;
		map_grow(&w->docmap, doc_hash, w);
	}
	i = doc_slot(w, name, len, h);
	if (w->docmap.v[i])
		return w->docmap.v[i] - 1;
	if (!create)
		return UINT32_MAX;
	if (w->ndocs == w->doccap) {
		w->doccap = w->doccap ? w->doccap * 2 : 256;
		w->docs = pl_xrealloc(w->docs, w->doccap * sizeof *w->docs);
	}
	struct doc *d = &w->docs[w->ndocs];
	memset(d, 0, sizeof *d);
	d->off = w->docnames.n;
	d->len = (uint32_t)len;
	d->hash = h;
	pl_buf_add(&w->docnames, name, len);
	if ((w->docmap.n + 1) * 2 > w->docmap.cap) {
		map_grow(&w->docmap, doc_hash, w);
		i = doc_slot(w, name, len, h);
	}
	w->docmap.v[i] = (uint32_t)++w->ndocs;
	w->docmap.n++;
	return (uint32_t)(w->ndocs - 1);
}

static void doc_add_pt(struct pl_vs_writer *w, uint32_t p)
{
	struct pl_vs_row r;
	row_of(w, p, &r);
	if (!r.has_doc)
		return;
	uint32_t di = doc_get(w, r.doc, r.doclen, 1);	/* may move w->docs */
	struct doc *d = &w->docs[di];
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->pts = pl_xrealloc(d->pts, d->cap * sizeof *d->pts);
	}
	d->pts[d->n++] = p;
}

/* Register row of slot as a new live point, replacing a live one of the
 * same id. */
static void add_pt(struct pl_vs_writer *w, uint32_t slot, uint32_t row)
{
	struct pl_vs_row r;
	struct slot *s = &w->slots[slot];
	size_t i;

	pl_vs_get_row(&s->s, row, &r);
	if (w->npts == w->ptcap) {
		w->ptcap = w->ptcap ? w->ptcap * 2 : 1024;
		w->pts = pl_xrealloc(w->pts, w->ptcap * sizeof *w->pts);
	}
	uint32_t p = (uint32_t)w->npts++;
	w->pts[p] = (struct pt){ slot, row, hash_bytes(r.id, r.idlen), 0 };
	s->row_pt[row] = p;
	map_grow(&w->ids, pt_hash, w);
	i = id_slot(w, r.id, r.idlen, w->pts[p].hash);
	if (w->ids.v[i])
		kill_pt(w, w->ids.v[i] - 1, 0);	/* an overwrite: p takes its place */
	else
		w->ids.n++;
	w->ids.v[i] = p + 1;
	doc_add_pt(w, p);
}

static struct slot *new_slot(struct pl_vs_writer *w, uint32_t *idx)
{
	if (w->nslots == w->slotcap) {
		w->slotcap = w->slotcap ? w->slotcap * 2 : 16;
		w->slots = pl_xrealloc(w->slots, w->slotcap * sizeof *w->slots);
	}
	*idx = (uint32_t)w->nslots;
	struct slot *s = &w->slots[w->nslots++];
	memset(s, 0, sizeof *s);
	s->live = 1;
	return s;
}

static void slot_free(struct slot *s)
{
	seg_unmap(&s->s);
	free(s->bits);
	free(s->row_pt);
	free(s->pvec);
	free(s->pent);
	pl_buf_free(&s->pblob);
	s->bits = NULL;
	s->row_pt = NULL;
	s->pvec = NULL;
	s->pent = NULL;
	s->live = s->pending = 0;
}

/* Take over a mapped segment as a slot with its own copy of the dead bits. */
static uint32_t adopt_seg(struct pl_vs_writer *w, struct pl_vs_seg *seg, uint64_t del_gen)
{
	uint32_t idx;
	struct slot *s = new_slot(w, &idx);
	size_t nb = (seg->rows + 7) / 8;

	s->s = *seg;
	s->del_gen = del_gen;
	s->bits = calloc(nb ? nb : 1, 1);
	s->row_pt = pl_xmalloc((seg->rows ? seg->rows : 1) * sizeof *s->row_pt);
	if (!s->bits)
		pl_xmalloc(SIZE_MAX);
	if (seg->dead_bits)
		memcpy(s->bits, seg->dead_bits, nb);
	if (s->s.delmap)
		munmap(s->s.delmap, s->s.dellen);
	s->s.delmap = NULL;
	s->s.dellen = 0;
	s->s.dead_bits = s->bits;
	return idx;
}

static int fsync_dir(struct pl_vs_writer *w, char *err)
{
	if (fsync(w->dirfd) < 0)
		return set_err(err, PL_VS_EIO, "cannot sync directory '%s': %s", w->dir,
			       strerror(errno));
	return PL_VS_OK;
}

#define WF_BUF (1u << 20)

/* Buffered output to a new file. */
struct wfile {
	int fd;
	const char *dir, *name;
	struct pl_buf b;
	int failed;
	int err_no;
};

static void wf_write(struct wfile *f, const char *p, size_t n)
{
	while (!f->failed && n) {
		ssize_t r = write(f->fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			f->failed = 1;
			f->err_no = errno;
			break;
		}
		p += r;
		n -= (size_t)r;
	}
}

static void wf_flush(struct wfile *f)
{
	wf_write(f, f->b.p, f->b.n);
	f->b.n = 0;
}

static void wf_put(struct wfile *f, const void *p, size_t n)
{
	if (f->b.n + n > WF_BUF)
		wf_flush(f);
	if (n >= WF_BUF)
		wf_write(f, p, n);
	else
		pl_buf_add(&f->b, p, n);
}

static int wf_open(struct wfile *f, struct pl_vs_writer *w, const char *name, char *err)
{
	memset(f, 0, sizeof *f);
	f->dir = w->dir;
	f->name = name;
	f->fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (f->fd < 0)
		return set_err(err, open_status(errno), "cannot create '%s/%s': %s", w->dir, name,
			       strerror(errno));
	return PL_VS_OK;
}

/* Flush, fsync and close. */
static int wf_close(struct wfile *f, char *err)
{
	wf_flush(f);
	pl_buf_free(&f->b);
	if (!f->failed && fsync(f->fd) < 0) {
		f->failed = 1;
		f->err_no = errno;
	}
	if (close(f->fd) < 0 && !f->failed) {
		f->failed = 1;
		f->err_no = errno;
	}
	if (f->failed)
		return set_err(err, PL_VS_EIO, "cannot write '%s/%s': %s", f->dir, f->name,
			       strerror(f->err_no));
	return PL_VS_OK;
}

struct src {
	uint32_t slot, row;
};

/* Write rows (live points of existing slots) as segment number num, map it
 * as a new slot and move the points there. Returns the status; *idx is the
 * new slot. */
static int write_segment(struct pl_vs_writer *w, uint64_t num, const struct src *rows,
			 size_t n, uint32_t *idx, char *err)
{
	char name[64];
	struct wfile f;
	struct seg_hdr h;
	struct pl_vs_row r;
	size_t vrow = (size_t)w->dim * sizeof(float);
	uint64_t blob = 0;
	int status;

	for (size_t i = 0; i < n; i++) {
		pl_vs_get_row(&w->slots[rows[i].slot].s, rows[i].row, &r);
		blob += r.idlen + r.doclen + r.shalen + r.paylen;
	}
	memset(&h, 0, sizeof h);
	memcpy(h.magic, SEG_MAGIC, 8);
	h.bom = BOM;
	h.version = PL_VS_VERSION;
	h.dim = (uint32_t)w->dim;
	h.rows = n;
	h.vec_off = sizeof h;
	h.ent_off = align8(sizeof h + n * vrow);
	h.blob_off = h.ent_off + n * sizeof(struct ent);
	h.blob_len = blob;

	seg_name(name, sizeof name, num);
	status = wf_open(&f, w, name, err);
	if (status)
		return status;
	wf_put(&f, &h, sizeof h);
	for (size_t i = 0; i < n; i++)
		wf_put(&f, w->slots[rows[i].slot].s.vec + (size_t)rows[i].row * (size_t)w->dim, vrow);
	static const char zero[8];
	wf_put(&f, zero, h.ent_off - (sizeof h + n * vrow));
	blob = 0;
	for (size_t i = 0; i < n; i++) {
		const struct ent *src = (const struct ent *)w->slots[rows[i].slot].s.ents + rows[i].row;
		struct ent e = *src;
		e.off = blob;
		blob += (uint64_t)e.idlen + e.doclen + e.shalen + e.paylen;
		wf_put(&f, &e, sizeof e);
	}
	for (size_t i = 0; i < n; i++) {
		pl_vs_get_row(&w->slots[rows[i].slot].s, rows[i].row, &r);
		wf_put(&f, r.id, r.idlen + r.doclen + r.shalen + r.paylen);
	}
	status = wf_close(&f, err);
	if (status) {
		unlinkat(w->dirfd, name, 0);
		return status;
	}

	struct mseg ms = { num, n, 0, 0 };
	struct pl_vs_seg seg;
	status = seg_load(w->dirfd, w->dir, &ms, w->dim, &seg, err);
	if (status)
		return status;
	*idx = adopt_seg(w, &seg, 0);
	for (size_t i = 0; i < n; i++) {
		uint32_t p = w->slots[rows[i].slot].row_pt[rows[i].row];
		w->pts[p].slot = *idx;
		w->pts[p].row = (uint32_t)i;
		w->slots[*idx].row_pt[i] = p;
	}
	return PL_VS_OK;
}

static int write_del(struct pl_vs_writer *w, struct slot *s, uint64_t gen, char *err)
{
	char name[64];
	struct wfile f;
	struct del_hdr d;
	int status;

	memset(&d, 0, sizeof d);
	memcpy(d.magic, DEL_MAGIC, 8);
	d.bom = BOM;
	d.version = PL_VS_VERSION;
	d.rows = s->s.rows;
	d.dead = s->s.dead;
	del_name(name, sizeof name, s->s.num, gen);
	status = wf_open(&f, w, name, err);
	if (status)
		return status;
	wf_put(&f, &d, sizeof d);
	wf_put(&f, s->bits, (s->s.rows + 7) / 8);
	status = wf_close(&f, err);
	if (status)
		unlinkat(w->dirfd, name, 0);
	return status;
}

static void unlink_name(struct pl_vs_writer *w, const char *name)
{
	/* a leftover costs only space; the next writer removes it */
	(void)unlinkat(w->dirfd, name, 0);
}

static int is_store_file(const char *name)
{
	return strncmp(name, "seg-", 4) == 0 || strncmp(name, MANIFEST_TMP, strlen(MANIFEST_TMP)) == 0;
}

/* Make the manifest name the live slots, as generation gen. */
static int write_manifest(struct pl_vs_writer *w, uint64_t gen, char *err)
{
	struct manifest m;
	struct pl_buf b = PL_BUF_INIT;
	struct wfile f;
	int status;

	memset(&m, 0, sizeof m);
	m.generation = gen;
	m.next_file = w->next_file;
	m.dim = w->dim;
	m.model = w->model;
	m.seg = pl_xmalloc((w->nslots ? w->nslots : 1) * sizeof *m.seg);
	for (size_t i = 0; i < w->nslots; i++) {
		struct slot *s = &w->slots[i];
		if (!s->live || s->pending)
			continue;
		m.seg[m.nseg++] = (struct mseg){ s->s.num, s->s.rows, s->s.dead, s->del_gen };
	}
	manifest_json(&b, &m);
	free(m.seg);

	status = wf_open(&f, w, MANIFEST_TMP, err);
	if (status)
		goto out;
	wf_put(&f, b.p, b.n);
	status = wf_close(&f, err);
	if (status)
		goto out;
	if (renameat(w->dirfd, MANIFEST_TMP, w->dirfd, MANIFEST) < 0) {
		status = set_err(err, PL_VS_EIO, "cannot rename '%s/%s': %s", w->dir, MANIFEST_TMP,
				 strerror(errno));
		goto out;
	}
	/* the new version is durable once the directory is */
	status = fsync_dir(w, err);
	if (status == PL_VS_OK)
		w->generation = gen;
out:
	pl_buf_free(&b);
	return status;
}

/* After a commit: drop slots that left the manifest, with their files. */
static void retire_slots(struct pl_vs_writer *w, const uint64_t *old_del, size_t nold)
{
	char name[64];
	for (size_t i = 0; i < nold; i += 2) {
		del_name(name, sizeof name, old_del[i], old_del[i + 1]);
		unlink_name(w, name);
	}
	for (size_t i = 0; i < w->nslots; i++) {
		struct slot *s = &w->slots[i];
		if (s->live || !s->s.map)
			continue;
		seg_name(name, sizeof name, s->s.num);
		unlink_name(w, name);
		if (s->del_gen) {
			del_name(name, sizeof name, s->s.num, s->del_gen);
			unlink_name(w, name);
		}
		slot_free(s);
	}
}

size_t pl_vs_pending(const struct pl_vs_writer *w)
{
	return w->pend >= 0 ? w->slots[w->pend].s.rows : 0;
}

int pl_vs_dirty(const struct pl_vs_writer *w)
{
	if (w->meta_dirty || pl_vs_pending(w))
		return 1;
	for (size_t i = 0; i < w->nslots; i++)
		if (w->slots[i].live && w->slots[i].dirty)
			return 1;
	return 0;
}

int pl_vs_commit(struct pl_vs_writer *w, char *err)
{
	uint64_t gen = w->generation + 1;
	uint64_t *old_del = NULL;
	size_t nold = 0;
	int status = PL_VS_OK;

	if (!pl_vs_dirty(w))
		return PL_VS_OK;
	if (w->pend >= 0) {
		struct slot *p = &w->slots[w->pend];
		struct src *rows = pl_xmalloc((p->s.rows ? p->s.rows : 1) * sizeof *rows);
		size_t n = 0;
		uint32_t idx;
		for (size_t r = 0; r < p->s.rows; r++)
			if (!pl_vs_is_dead(&p->s, r))
				rows[n++] = (struct src){ (uint32_t)w->pend, (uint32_t)r };
		if (n)
			status = write_segment(w, w->next_file++, rows, n, &idx, err);
		free(rows);
		if (status)
			return status;
		slot_free(&w->slots[w->pend]);
		w->pend = -1;
	}
	old_del = pl_xmalloc(2 * (w->nslots + 1) * sizeof *old_del);
	for (size_t i = 0; i < w->nslots && status == PL_VS_OK; i++) {
		struct slot *s = &w->slots[i];
		if (!s->live || !s->dirty)
			continue;
		if (s->s.dead == s->s.rows) {
			s->live = 0;	/* nothing left: leaves the manifest */
			continue;
		}
		status = write_del(w, s, gen, err);
		if (status)
			break;
		if (s->del_gen) {
			old_del[nold++] = s->s.num;
			old_del[nold++] = s->del_gen;
		}
		s->del_gen = gen;
		s->dirty = 0;
	}
	if (status == PL_VS_OK)
		status = fsync_dir(w, err);	/* the new files exist before the manifest names them */
	if (status == PL_VS_OK)
		status = write_manifest(w, gen, err);
	if (status == PL_VS_OK) {
		w->meta_dirty = 0;
		retire_slots(w, old_del, nold);
	}
	free(old_del);
	return status;
}

/* Merge the live rows of the slots marked in take into one new segment. */
static int merge(struct pl_vs_writer *w, const unsigned char *take, char *err)
{
	size_t n = 0, cap = 0;
	struct src *rows = NULL;
	uint32_t idx;
	int status;

	for (size_t i = 0; i < w->nslots; i++)
		if (take[i])
			cap += w->slots[i].s.rows - w->slots[i].s.dead;
	rows = pl_xmalloc((cap ? cap : 1) * sizeof *rows);
	for (size_t i = 0; i < w->nslots; i++) {
		if (!take[i])
			continue;
		for (size_t r = 0; r < w->slots[i].s.rows; r++)
			if (!pl_vs_is_dead(&w->slots[i].s, r))
				rows[n++] = (struct src){ (uint32_t)i, (uint32_t)r };
	}
	status = PL_VS_OK;
	size_t nbefore = w->nslots;
	if (n)
		status = write_segment(w, w->next_file++, rows, n, &idx, err);
	free(rows);
	if (status)
		return status;
	for (size_t i = 0; i < nbefore; i++)
		if (take[i])
			w->slots[i].live = 0;
	status = fsync_dir(w, err);
	if (status == PL_VS_OK)
		status = write_manifest(w, w->generation + 1, err);
	if (status == PL_VS_OK)
		retire_slots(w, NULL, 0);
	return status;
}

int pl_vs_compact(struct pl_vs_writer *w, int *did, char *err)
{
	int status = pl_vs_commit(w, err);
	size_t nlive = 0, ndead = 0;

	*did = 0;
	if (status)
		return status;
	for (size_t i = 0; i < w->nslots; i++)
		if (w->slots[i].live) {
			nlive++;
			ndead += w->slots[i].s.dead;
		}
	if (nlive <= 1 && ndead == 0)
		return PL_VS_OK;
	unsigned char *take = calloc(w->nslots + 1, 1);
	if (!take)
		pl_xmalloc(SIZE_MAX);
	for (size_t i = 0; i < w->nslots; i++)
		take[i] = (unsigned char)w->slots[i].live;
	status = merge(w, take, err);
	free(take);
	*did = status == PL_VS_OK;
	return status;
}

static int tier(size_t rows)
{
	int t = 0;
	while (rows >= 4) {
		rows /= 4;
		t++;
	}
	return t;
}

int pl_vs_maybe_compact(struct pl_vs_writer *w, int *did, char *err)
{
	int status = pl_vs_commit(w, err);

	*did = 0;
	while (status == PL_VS_OK) {
		size_t rows = 0, dead = 0, count[40] = { 0 };
		int t;
		for (size_t i = 0; i < w->nslots; i++) {
			if (!w->slots[i].live)
				continue;
			rows += w->slots[i].s.rows;
			dead += w->slots[i].s.dead;
			count[tier(w->slots[i].s.rows - w->slots[i].s.dead)]++;
		}
		if (rows && dead * 10 > rows * 3) {
			int full;
			status = pl_vs_compact(w, &full, err);
			*did |= full;
			break;
		}
		for (t = 0; t < 40 && count[t] < 4; t++)
			;
		if (t == 40)
			break;
		/* four segments of about the same size become one: each point
		 * is rewritten about log4(points) times in all */
		unsigned char *take = calloc(w->nslots + 1, 1);
		if (!take)
			pl_xmalloc(SIZE_MAX);
		for (size_t i = 0; i < w->nslots; i++)
			take[i] = w->slots[i].live && tier(w->slots[i].s.rows - w->slots[i].s.dead) == t;
		status = merge(w, take, err);
		free(take);
		*did = 1;
	}
	return status;
}

/* Remove what a crashed writer left: files of ours the manifest does not
 * name. Raise next_file past every number seen. */
static void cleanup(struct pl_vs_writer *w)
{
	DIR *d;
	struct dirent *de;
	int fd = dup(w->dirfd);

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		unsigned long long num = 0, gen = 0;
		int keep = 0;
		if (!is_store_file(de->d_name))
			continue;
		if (sscanf(de->d_name, "seg-%llu", &num) == 1 && num >= w->next_file)
			w->next_file = num + 1;
		int nf = sscanf(de->d_name, "seg-%llu.del-%llu", &num, &gen);
		for (size_t i = 0; i < w->nslots && !keep; i++) {
			const struct slot *s = &w->slots[i];
			char name[64];
			seg_name(name, sizeof name, s->s.num);
			if (strcmp(name, de->d_name) == 0)
				keep = 1;
			if (s->del_gen && nf == 2) {
				del_name(name, sizeof name, s->s.num, s->del_gen);
				if (strcmp(name, de->d_name) == 0)
					keep = 1;
			}
		}
		if (!keep)
			unlink_name(w, de->d_name);
	}
	closedir(d);
}

/* Whether dir holds nothing but what a store would (for a new store). */
static int dir_is_clean(int dirfd)
{
	DIR *d;
	struct dirent *de;
	int fd = dup(dirfd), clean = 1;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, LOCKFILE) && !is_store_file(de->d_name))
			clean = 0;
	closedir(d);
	return clean;
}

static int mkdirs(const char *path, char *err)
{
	char failed[4096];

	if (pl_mkdir_p(path, failed, sizeof failed) < 0)
		return set_err(err, open_status(errno), "cannot create directory '%s': %s", failed,
			       strerror(errno));
	return PL_VS_OK;
}

int pl_vs_writer_open(const char *dir, int wait, volatile int *stop, struct pl_vs_writer **out,
		      char *err)
{
	struct pl_vs_writer *w = pl_xmalloc(sizeof *w);
	struct manifest m;
	struct pl_vs *vs = NULL;
	int status;

	*out = NULL;
	memset(w, 0, sizeof *w);
	w->dir = pl_xstrdup(dir);
	w->dirfd = w->lockfd = -1;
	w->pend = -1;
	w->model = pl_xstrdup("");
	memset(&m, 0, sizeof m);

	status = mkdirs(dir, err);
	if (status)
		goto fail;
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		status = set_err(err, open_status(errno), "cannot open store '%s': %s", dir,
				 strerror(errno));
		goto fail;
	}
	/* say so now, not at the first commit with input read */
	if (faccessat(w->dirfd, ".", W_OK, AT_EACCESS) < 0) {
		status = set_err(err, open_status(errno), "cannot write store '%s': %s", dir,
				 strerror(errno));
		goto fail;
	}
	/* not even a lock file in a directory that is someone else's */
	if (faccessat(w->dirfd, MANIFEST, F_OK, 0) < 0 && !dir_is_clean(w->dirfd)) {
		status = set_err(err, PL_VS_ENOSTORE,
				 "'%s' is not empty and holds no plumb vector store", dir);
		goto fail;
	}
	w->lockfd = openat(w->dirfd, LOCKFILE, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (w->lockfd < 0) {
		status = set_err(err, open_status(errno), "cannot open '%s/%s': %s", dir, LOCKFILE,
				 strerror(errno));
		goto fail;
	}
	/* the kernel drops the lock of a process that dies: a crash never
	 * leaves the store locked */
	while (flock(w->lockfd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR && !(stop && *stop))
			continue;
		if (errno == EINTR)
			status = set_err(err, PL_VS_EINTR, "interrupted while waiting for store '%s'",
					 dir);
		else if (errno == EWOULDBLOCK)
			status = set_err(err, PL_VS_EBUSY,
					 "store '%s' is locked by another writer", dir);
		else
			status = set_err(err, PL_VS_EIO, "cannot lock '%s/%s': %s", dir, LOCKFILE,
					 strerror(errno));
		goto fail;
	}

	status = manifest_read(w->dirfd, dir, &m, err);
	if (status == PL_VS_ENOSTORE) {
		if (!dir_is_clean(w->dirfd)) {
			status = set_err(err, PL_VS_ENOSTORE,
					 "'%s' is not empty and holds no plumb vector store", dir);
			goto fail;
		}
		w->generation = 0;
		w->next_file = 1;
		w->meta_dirty = 1;	/* a new store: its first manifest */
		cleanup(w);
		status = pl_vs_commit(w, err);
		if (status)
			goto fail;
		*out = w;
		return PL_VS_OK;
	}
	if (status)
		goto fail;
	status = vs_load(w->dirfd, dir, &m, &vs, err);
	if (status) {
		if (status == PL_VS_ENOSTORE)
			status = PL_VS_ECORRUPT;	/* no other writer: a named file is missing */
		goto fail;
	}
	w->generation = m.generation;
	w->next_file = m.next_file;
	w->dim = m.dim;
	free(w->model);
	w->model = pl_xstrdup(m.model);
	for (size_t i = 0; i < vs->nseg; i++) {
		uint32_t idx = adopt_seg(w, &vs->seg[i], m.seg[i].del_gen);
		struct slot *s = &w->slots[idx];
		for (size_t r = 0; r < s->s.rows; r++) {
			if (pl_vs_is_dead(&s->s, r))
				continue;
			add_pt(w, idx, (uint32_t)r);
			s = &w->slots[idx];
		}
	}
	vs->nseg = 0;	/* the slots own the mappings now */
	vs_free(vs);
	manifest_free(&m);
	cleanup(w);
	*out = w;
	return PL_VS_OK;
fail:
	manifest_free(&m);
	pl_vs_writer_close(w);
	return status;
}

void pl_vs_writer_close(struct pl_vs_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->nslots; i++)
		slot_free(&w->slots[i]);
	free(w->slots);
	free(w->pts);
	free(w->ids.v);
	free(w->docmap.v);
	for (size_t i = 0; i < w->ndocs; i++)
		free(w->docs[i].pts);
	free(w->docs);
	pl_buf_free(&w->docnames);
	free(w->model);
	if (w->lockfd >= 0)
		close(w->lockfd);	/* releases the lock */
	if (w->dirfd >= 0)
		close(w->dirfd);
	free(w->dir);
	free(w);
}

/* Whether a vector of dim floats from model (NULL: unknown) may go in. */
static int check(struct pl_vs_writer *w, int dim, const char *model, size_t modellen, char *err)
{
	if (w->dim && dim != w->dim)
		return set_err(err, PL_VS_EDIM, "vector has %d dimensions, the store '%s' holds %d",
			       dim, w->dir, w->dim);
	if (model && *w->model && (strlen(w->model) != modellen || memcmp(w->model, model, modellen)))
		return set_err(err, PL_VS_EMODEL,
			       "model \"%.*s\" is not the store's (\"%s\"): use another store for it",
			       (int)(modellen > 200 ? 200 : modellen), model, w->model);
	return PL_VS_OK;
}

static struct slot *pending_slot(struct pl_vs_writer *w)
{
	if (w->pend < 0) {
		uint32_t idx;
		struct slot *s = new_slot(w, &idx);
		s->pending = 1;
		w->pend = idx;
	}
	return &w->slots[w->pend];
}

int pl_vs_put(struct pl_vs_writer *w, const struct pl_vs_row *r, const float *vec, int dim,
	      const char *model, size_t modellen, char *err)
{
	int status = check(w, dim, model, modellen, err);
	struct slot *s;

	if (status)
		return status;
	if (r->idlen > UINT32_MAX || r->doclen > UINT32_MAX || r->shalen > UINT32_MAX ||
	    r->paylen > UINT32_MAX)
		return set_err(err, PL_VS_EDIM, "record is too large for the store");
	if (!w->dim) {
		w->dim = dim;
		w->meta_dirty = 1;
	}
	if (model && modellen && !*w->model) {
		free(w->model);
		w->model = pl_xstrndup(model, modellen);
		w->meta_dirty = 1;
	}
	s = pending_slot(w);
	size_t row = s->s.rows;
	if (row == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		s->pvec = pl_xrealloc(s->pvec, cap * (size_t)w->dim * sizeof *s->pvec);
		s->pent = pl_xrealloc(s->pent, cap * sizeof *s->pent);
		s->row_pt = pl_xrealloc(s->row_pt, cap * sizeof *s->row_pt);
		s->bits = pl_xrealloc(s->bits, (cap + 7) / 8);
		memset(s->bits + (s->cap + 7) / 8, 0, (cap + 7) / 8 - (s->cap + 7) / 8);
		s->cap = cap;
	}
	memcpy(s->pvec + row * (size_t)w->dim, vec, (size_t)w->dim * sizeof *vec);
	struct ent *e = &s->pent[row];
	e->off = s->pblob.n;
	e->idlen = (uint32_t)r->idlen;
	e->doclen = (uint32_t)r->doclen;
	e->shalen = (uint32_t)r->shalen;
	e->paylen = (uint32_t)r->paylen;
	e->chunk = r->chunk >= 0 && r->chunk <= INT32_MAX ? (int32_t)r->chunk : -1;
	e->flags = r->has_doc ? ENT_HAS_DOC : 0;
	/* absent strings may be NULL */
	const char *part[] = { r->id, r->doc, r->sha, r->payload };
	size_t len[] = { r->idlen, r->doclen, r->shalen, r->paylen };
	for (int i = 0; i < 4; i++)
		if (len[i])
			pl_buf_add(&s->pblob, part[i], len[i]);
	s->s.vec = s->pvec;
	s->s.ents = s->pent;
	s->s.blob = s->pblob.p;
	s->s.bloblen = s->pblob.n;
	s->s.dead_bits = s->bits;
	s->s.rows = row + 1;
	add_pt(w, (uint32_t)w->pend, (uint32_t)row);
	return PL_VS_OK;
}

/* The live points of a document, pruning the dead from its list. */
static struct doc *doc_live(struct pl_vs_writer *w, const char *name, size_t len)
{
	uint32_t di = doc_get(w, name, len, 0);
	struct doc *d;
	size_t n = 0;

	if (di == UINT32_MAX)
		return NULL;
	d = &w->docs[di];
	for (size_t i = 0; i < d->n; i++)
		if (!w->pts[d->pts[i]].dead)
			d->pts[n++] = d->pts[i];
	d->n = n;
	return d;
}

int pl_vs_done(struct pl_vs_writer *w, const char *doc, size_t doclen, const char *sha,
	       size_t shalen, int64_t chunks, size_t *have, char *err)
{
	struct doc *d = doc_live(w, doc, doclen);
	struct pl_vs_row r;
	size_t keep = 0;

	*have = 0;
	for (size_t i = 0; d && i < d->n; i++) {
		row_of(w, d->pts[i], &r);
		if (r.shalen == shalen && memcmp(r.sha, sha, shalen) == 0 &&
		    !(chunks >= 0 && r.chunk >= chunks))
			keep++;
	}
	*have = keep;
	if (chunks >= 0 && keep < (uint64_t)chunks)
		return set_err(err, PL_VS_EINCOMPLETE, "document \"%.*s\" has %zu of its %lld chunks",
			       (int)(doclen > 200 ? 200 : doclen), doc, keep, (long long)chunks);
	for (size_t i = 0; d && i < d->n; i++) {
		row_of(w, d->pts[i], &r);
		if (!(r.shalen == shalen && memcmp(r.sha, sha, shalen) == 0 &&
		      !(chunks >= 0 && r.chunk >= chunks)))
			kill_pt(w, d->pts[i], 1);
	}
	if (d)
		doc_live(w, doc, doclen);
	return PL_VS_OK;
}

void pl_vs_delete_doc(struct pl_vs_writer *w, const char *doc, size_t doclen, size_t *n)
{
	struct doc *d = doc_live(w, doc, doclen);

	*n = d ? d->n : 0;
	for (size_t i = 0; d && i < d->n; i++)
		kill_pt(w, d->pts[i], 1);
	if (d)
		d->n = 0;
}

/* --- vectors as JSON text ----------------------------------------------- */

static const double pow10_tab[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

/* One JSON number at s (end e): the float, exactly as strtof would give it.
 * Returns the end of the number, or NULL when it is out of float range. */
static const char *parse_num(const char *s, const char *e, float *out)
{
	const char *p = s;
	uint64_t m = 0;
	int neg = 0, digits = 0, exp10 = 0, dropped = 0;

	if (p < e && *p == '-') {
		neg = 1;
		p++;
	}
	for (; p < e && *p >= '0' && *p <= '9'; p++) {
		if (digits < 19) {
			m = m * 10 + (uint64_t)(*p - '0');
			if (m)
				digits++;
		} else {
			dropped++;
		}
	}
	exp10 = dropped;
	if (p < e && *p == '.') {
		for (p++; p < e && *p >= '0' && *p <= '9'; p++) {
			if (digits < 19) {
				m = m * 10 + (uint64_t)(*p - '0');
				if (m)
					digits++;
				exp10--;
			} else if (*p != '0') {
				dropped++;
			}
		}
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		int eneg = 0, ev = 0;
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			eneg = *p++ == '-';
		for (; p < e && *p >= '0' && *p <= '9'; p++)
			if (ev < 100000)
				ev = ev * 10 + (*p - '0');
		exp10 += eneg ? -ev : ev;
	}
	if (m == 0) {
		*out = neg ? -0.0f : 0.0f;
		return p;
	}
	if (!dropped && m < (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
		/* one correctly rounded double operation on exact operands */
		double d = exp10 < 0 ? (double)m / pow10_tab[-exp10] : (double)m * pow10_tab[exp10];
		uint64_t bits;
		memcpy(&bits, &d, sizeof bits);
		/* rounding that double to float is right unless it sits exactly
		 * halfway between two floats, or is a subnormal float */
		if (d >= FLT_MIN && (bits & 0x1fffffffu) != 0x10000000u) {
			float f = (float)d;
			if (isinf(f))
				return NULL;
			*out = neg ? -f : f;
			return p;
		}
	}
	char tmp[128], *end;
	size_t len = (size_t)(p - s);
	char *buf = len < sizeof tmp ? tmp : pl_xmalloc(len + 1);
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	float f = strtof(buf, &end);
	int range = errno == ERANGE && isinf(f);
	if (buf != tmp)
		free(buf);
	if (range)
		return NULL;
	*out = f;
	return p;
}

long pl_vs_parse_floats(const char *s, size_t n, float **v, size_t *cap, char *err, size_t errlen)
{
	const char *p = s, *e = s + n;
	size_t k = 0;

	while (p < e && *p != '[')
		p++;
	if (p == e) {
		snprintf(err, errlen, "not an array");
		return -1;
	}
	p++;
	for (;;) {
		while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
			p++;
		if (p < e && *p == ']')
			break;
		if (p < e && *p == ',') {
			p++;
			continue;
		}
		if (p == e || !(*p == '-' || (*p >= '0' && *p <= '9'))) {
			snprintf(err, errlen, "element %zu is not a number", k);
			return -1;
		}
		if (k == *cap) {
			*cap = *cap ? *cap * 2 : 1024;
			*v = pl_xrealloc(*v, *cap * sizeof **v);
		}
		p = parse_num(p, e, &(*v)[k]);
		if (!p) {
			snprintf(err, errlen, "element %zu is out of the range of a float", k);
			return -1;
		}
		k++;
	}
	return (long)k;
}

long pl_vs_vector_member(const struct pl_jmember *m, float **v, size_t *cap, char *err,
			 size_t errlen)
{
	char why[200];
	long dim;

	if (m->type != PL_JARR) {
		snprintf(err, errlen, "\"vector\" is not an array");
		return -1;
	}
	dim = pl_vs_parse_floats(m->val, m->vallen, v, cap, why, sizeof why);
	if (dim < 0) {
		snprintf(err, errlen, "\"vector\": %s", why);
		return -1;
	}
	if (dim == 0 || dim > 65536) {
		snprintf(err, errlen, "\"vector\" has %ld elements (want 1 to 65536)", dim);
		return -1;
	}
	return dim;
}
