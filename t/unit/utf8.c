/* Unit tests for lib/utf8.c and lib/hash.c. */
#include "hash.h"
#include "unit.h"
#include "utf8.h"

int main(void)
{
	const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";	/* a é € 😀 */
	char out[64], hex[PL_SHA256_HEX], uuid[PL_UUID_STR];

	CHECK(pl_utf8_count(s, strlen(s)) == 4, "counts code points");
	CHECK(pl_utf8_count_utf16(s, strlen(s)) == 5, "counts UTF-16 units like JavaScript");
	CHECK(pl_utf8_count("abcdefghijklmnopq\xc3\xa9", 19) == 18, "counts past the 8-byte fast path");
	CHECK(pl_utf8_valid_prefix(s, strlen(s)) == strlen(s), "accepts valid UTF-8");
	CHECK(pl_utf8_valid_prefix("abcdefghij\xff", 11) == 10, "stops at 0xFF");
	CHECK(pl_utf8_valid_prefix("ab\xe2\x82", 4) == 2, "stops at a truncated sequence");
	CHECK(pl_utf8_valid_prefix("\xed\xa0\x80", 3) == 0, "rejects an encoded surrogate");
	CHECK(pl_utf8_valid_prefix("\xe0\x80\xaf", 3) == 0, "rejects an overlong form");
	size_t n = pl_utf8_repair("a\xff" "b\xe2\x82", 5, out);
	CHECK(n == 11 && !memcmp(out, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd", 11),
	      "repairs each bad byte with U+FFFD");
	uint32_t cp;
	CHECK(pl_utf8_decode("\xf0\x9f\x98\x80", &cp) == 4 && cp == 0x1F600, "decodes a 4-byte sequence");
	CHECK(pl_utf8_encode(0x20AC, out) == 3 && !memcmp(out, "\xe2\x82\xac", 3), "encodes U+20AC");

	pl_sha256_hex("abc", 3, hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		  "SHA-256 of 'abc' (FIPS 180-2 test vector)");
	pl_sha256_hex("", 0, hex);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		  "SHA-256 of the empty string");
	struct pl_sha256 h;
	unsigned char d[32];
	pl_sha256_init(&h);
	pl_sha256_update(&h, "a", 1);
	pl_sha256_update(&h, "bc", 2);
	pl_sha256_final(&h, d);
	pl_hex(d, 32, hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		  "incremental SHA-256 agrees");
	pl_uuid5(PL_UUID_NS_DNS, "python.org", 10, uuid);
	CHECK_STR(uuid, "886313e1-3b8a-5372-9b90-0c9aee199e5d", "UUIDv5 of python.org in the DNS namespace");
	pl_uuid5(PL_UUID_NS_URL, "urn:plumb:record-id", 19, uuid);
	CHECK_STR(uuid, "c3af16aa-7183-587b-ac6c-a7527abcbe70", "plumb's namespace is uuid5(URL, urn:plumb:record-id)");
	unsigned char ns[16];
	CHECK(pl_unhex("c3af16aa7183587bac6ca7527abcbe70", 32, ns) == 0 && !memcmp(ns, PL_UUID_NS_PLUMB, 16),
	      "PL_UUID_NS_PLUMB holds those bytes");
	return done_testing();
}
