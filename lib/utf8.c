#include "utf8.h"

#include <string.h>

size_t pl_utf8_valid_prefix(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		/* ASCII runs dominate real text: test eight bytes at a time. */
		while (i + 8 <= n) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			if (w & 0x8080808080808080ull)
				break;
			i += 8;
		}
		if (i >= n)
			break;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t l = pl_utf8_seq_valid(p + i, n - i);
		if (!l)
			return i;
		i += l;
	}
	return n;
}

size_t pl_utf8_count(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, cont = 0;

	/* A code point is every byte that is not a continuation byte. */
	while (i + 8 <= n) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (w & 0x8080808080808080ull) {
			/* continuation bytes are 10xxxxxx: bit7 set and bit6 clear;
			 * sum the flags with a multiply, not popcount, which the
			 * x86-64 baseline lacks and libgcc does slowly */
			uint64_t c = (w & ~(w << 1) & 0x8080808080808080ull) >> 7;
			cont += (size_t)((c * 0x0101010101010101ull) >> 56);
		}
		i += 8;
	}
	for (; i < n; i++)
		cont += (p[i] & 0xC0) == 0x80;
	return n - cont;
}

size_t pl_utf8_count_utf16(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t astral = 0;

	/* Four-byte sequences are the code points that take two UTF-16 units. */
	for (size_t i = 0; i < n; i++)
		astral += p[i] >= 0xF0;
	return pl_utf8_count(s, n) + astral;
}

size_t pl_utf8_decode(const char *s, uint32_t *cp)
{
	const unsigned char *p = (const unsigned char *)s;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] < 0xE0) {
		*cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
		return 2;
	}
	if (p[0] < 0xF0) {
		*cp = (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 |
		      (p[2] & 0x3F);
		return 3;
	}
	*cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
	      (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
	return 4;
}

size_t pl_utf8_encode(uint32_t cp, char *out)
{
	unsigned char *o = (unsigned char *)out;

	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

size_t pl_utf8_repair(const char *s, size_t n, char *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0;

	while (i < n) {
		size_t l = pl_utf8_seq_valid(p + i, n - i);
		if (l) {
			memcpy(out + o, s + i, l);
			o += l;
			i += l;
		} else {
			/* one U+FFFD per invalid byte, as a decoder that resyncs
			 * at the next byte does */
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	return o;
}
