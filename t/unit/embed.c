/* Unit tests for lib/embed.c (the hash backend) and lib/vcache.c (directory). */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "embed.h"
#include "unit.h"
#include "vcache.h"

static double dot(const float *a, const float *b, int n)
{
	double s = 0;
	for (int i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

int main(void)
{
	float a[384], b[384], c[384], z[384];
	const char *x = "How to install plumb on Debian";

	pl_embed_hash(x, strlen(x), 384, a);
	pl_embed_hash(x, strlen(x), 384, b);
	CHECK(!memcmp(a, b, sizeof a), "the same text gives the same vector");
	CHECK(fabs(dot(a, a, 384) - 1) < 1e-6, "vectors have unit length");
	pl_embed_hash("HOW TO INSTALL PLUMB ON DEBIAN", 30, 384, c);
	CHECK(fabs(dot(a, c, 384) - 1) < 1e-6, "case does not matter");
	pl_embed_hash("  ,;  ", 6, 384, z);
	CHECK(dot(z, z, 384) == 0, "a text without words is the zero vector");
	pl_embed_hash("installing plumb on a debian machine", 36, 384, b);
	pl_embed_hash("prometheus pushgateway metrics", 30, 384, c);
	CHECK(dot(a, b, 384) > 0.3 && dot(a, c, 384) < 0.1, "shared words bring vectors near");
	pl_embed_hash("caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac", 11, 384, b);
	CHECK(fabs(dot(b, b, 384) - 1) < 1e-6, "non-ASCII words embed");
	float small[3];
	pl_embed_hash(x, strlen(x), 3, small);
	CHECK(fabs(dot(small, small, 3) - 1) < 1e-6, "any dimension works");

	struct pl_embed_opts o;
	char err[PL_EMBED_ERRLEN];
	pl_embed_opts_default(&o);
	o.dim = 0;
	CHECK(pl_embedder_new(&o, err) == NULL && strstr(err, "out of range"), "dimension 0 is refused");
	o.backend = PL_EMBED_HTTP;
	CHECK(pl_embedder_new(&o, err) == NULL && strstr(err, "needs a model"), "http needs a model");

	char dir[] = "/tmp/plumb-vcache-XXXXXX";
	int st;
	char cerr[PL_VCACHE_ERRLEN], hit[2];
	mkdtemp(dir);
	struct pl_vcache *vc = pl_vcache_open(dir, NULL, 0, 1000, cerr, &st);
	unsigned char keys[2][32];
	pl_vcache_key("ns", 2, "one", 3, keys[0]);
	pl_vcache_key("ns", 2, "two", 3, keys[1]);
	float put[2][4] = { { 1, 2, 3, 4 }, { -1, 0.5f, 0, 1e-3f } }, got[2][4];
	int dim = 0;
	CHECK(vc && pl_vcache_get(vc, (const unsigned char(*)[32])keys, 2, &dim, 4, &got[0][0], hit, cerr) == 0 &&
	      !hit[0] && !hit[1], "an empty cache has no hits");
	CHECK(pl_vcache_put(vc, (const unsigned char(*)[32])keys, 1, 4, &put[0][0], cerr) == 0, "put");
	CHECK(pl_vcache_get(vc, (const unsigned char(*)[32])keys, 2, &dim, 4, &got[0][0], hit, cerr) == 0 &&
	      hit[0] && !hit[1] && dim == 4 && !memcmp(got[0], put[0], sizeof put[0]),
	      "a stored vector comes back bit for bit, and only it");
	dim = 8;
	CHECK(pl_vcache_get(vc, (const unsigned char(*)[32])keys, 1, &dim, 8, &got[0][0], hit, cerr) == 0 && !hit[0],
	      "a vector of another size is a miss");
	pl_vcache_close(vc);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK(system(cmd) == 0, "clean up");
	return done_testing();
}
