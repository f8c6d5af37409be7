/* UTF-8 helpers on caller-owned byte ranges; nothing here allocates.
 *
 * These are hand-written rather than taken from utf8proc because they sit on
 * chunk's hot path: counting code points and UTF-16 units over every piece at
 * every level of the recursive splitter, where a per-code-point library call
 * would cost more than the whole split. Normalization and classification, if
 * ever needed, belong to utf8proc. */
#ifndef PL_UTF8_H
#define PL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the longest valid UTF-8 prefix of s[0..n); equals n when all of it
 * is valid. Rejects overlong forms, surrogates and code points past U+10FFFF. */
size_t pl_utf8_valid_prefix(const char *s, size_t n);

/* Number of code points in s[0..n), which must be valid UTF-8. */
size_t pl_utf8_count(const char *s, size_t n);

/* Number of UTF-16 code units (JavaScript's String length) of s[0..n). */
size_t pl_utf8_count_utf16(const char *s, size_t n);

/* Byte length of the sequence starting with lead byte c (1 for a stray byte). */
static inline size_t pl_utf8_seqlen(unsigned char c)
{
	return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Length of the valid sequence at s (n bytes available), or 0 if invalid.
 * Rejects overlong forms, surrogates and code points past U+10FFFF. */
static inline size_t pl_utf8_seq_valid(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0;
	if (c < 0xE0) {
		if (n < 2 || (s[1] & 0xC0) != 0x80)
			return 0;
		return 2;
	}
	if (c < 0xF0) {
		if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && s[1] < 0xA0)
			return 0;	/* overlong */
		if (c == 0xED && s[1] >= 0xA0)
			return 0;	/* surrogate */
		return 3;
	}
	if (c < 0xF5) {
		if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
		    (s[3] & 0xC0) != 0x80)
			return 0;
		if (c == 0xF0 && s[1] < 0x90)
			return 0;	/* overlong */
		if (c == 0xF4 && s[1] >= 0x90)
			return 0;	/* past U+10FFFF */
		return 4;
	}
	return 0;
}

/* Decode the code point at s (valid UTF-8) and return its byte length. */
size_t pl_utf8_decode(const char *s, uint32_t *cp);

/* Encode cp as UTF-8 into out (4 bytes of room) and return the length. */
size_t pl_utf8_encode(uint32_t cp, char *out);

/* Copy s[0..n) to out replacing every invalid sequence by U+FFFD; out needs
 * 3*n bytes of room. Returns the length written. */
size_t pl_utf8_repair(const char *s, size_t n, char *out);

#endif
