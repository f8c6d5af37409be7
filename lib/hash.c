#include "hash.h"

#include <openssl/evp.h>
#include <stdio.h>

#include "buf.h"

const unsigned char PL_UUID_NS_DNS[16] = {
	0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
	0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8 };
const unsigned char PL_UUID_NS_URL[16] = {
	0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
	0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8 };
/* uuid5(NS_URL, "urn:plumb:record-id"); fixed forever so ids stay stable */
const unsigned char PL_UUID_NS_PLUMB[16] = {	/* c3af16aa-7183-587b-ac6c-a7527abcbe70 */
	0xc3, 0xaf, 0x16, 0xaa, 0x71, 0x83, 0x58, 0x7b,
	0xac, 0x6c, 0xa7, 0x52, 0x7a, 0xbc, 0xbe, 0x70 };

void pl_sha256_init(struct pl_sha256 *h)
{
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))
		pl_xmalloc(SIZE_MAX);	/* only fails for want of memory */
}

void pl_sha256_update(struct pl_sha256 *h, const void *p, size_t n)
{
	EVP_DigestUpdate(h->ctx, p, n);
}

void pl_sha256_final(struct pl_sha256 *h, unsigned char out[32])
{
	unsigned int len = 32;
	EVP_DigestFinal_ex(h->ctx, out, &len);
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

void pl_sha256_copy(struct pl_sha256 *dst, const struct pl_sha256 *src)
{
	if (!dst->ctx && !(dst->ctx = EVP_MD_CTX_new()))
		pl_xmalloc(SIZE_MAX);
	if (!EVP_MD_CTX_copy_ex(dst->ctx, src->ctx))
		pl_xmalloc(SIZE_MAX);
}

void pl_sha256_free(struct pl_sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

void pl_sha256_raw(const void *p, size_t n, unsigned char out[32])
{
	unsigned int len = 32;
	EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

void pl_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* hex digit values, -1 for anything else: a table, since a state of 100,000
 * documents decodes six million digits at load */
static signed char nibtab[256];

__attribute__((constructor)) static void init_nibtab(void)
{
	for (int c = 0; c < 256; c++)
		nibtab[c] = (signed char)(c >= '0' && c <= '9' ? c - '0' :
					  c >= 'a' && c <= 'f' ? c - 'a' + 10 :
					  c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1);
}

int pl_unhex(const char *s, size_t n, unsigned char *out)
{
	const unsigned char *p = (const unsigned char *)s;

	if (n % 2)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = nibtab[p[2 * i]], lo = nibtab[p[2 * i + 1]];
		if ((hi | lo) < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

void pl_sha256_hex(const void *p, size_t n, char out[PL_SHA256_HEX])
{
	unsigned char d[32];
	pl_sha256_raw(p, n, d);
	pl_hex(d, 32, out);
}

void pl_uuid5(const unsigned char ns[16], const void *name, size_t n, char out[PL_UUID_STR])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int len;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (!c)
		pl_xmalloc(SIZE_MAX);
	EVP_DigestInit_ex(c, EVP_sha1(), NULL);
	EVP_DigestUpdate(c, ns, 16);
	EVP_DigestUpdate(c, name, n);
	EVP_DigestFinal_ex(c, d, &len);
	EVP_MD_CTX_free(c);
	d[6] = (unsigned char)((d[6] & 0x0F) | 0x50);
	d[8] = (unsigned char)((d[8] & 0x3F) | 0x80);
	snprintf(out, PL_UUID_STR,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10],
		 d[11], d[12], d[13], d[14], d[15]);
}
