/* libFuzzer target (make fuzz): split arbitrary bytes into lines and scan each
 * as a JSONL record; every member found must lie inside its line, and every
 * string member must decode. The reader is a pure function of these bytes. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "json.h"
#include "lines.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pl_jobj o;
	static struct pl_buf b;
	const char *p = (const char *)data;
	size_t off = 0;

	while (off < size) {
		size_t next, len = pl_lines_split(p + off, size - off, &next);
		const char *line = p + off;
		struct pl_jerr e;
		if (pl_json_scan_object(line, len, &o, &e) == 0) {
			for (size_t i = 0; i < o.n; i++) {
				const struct pl_jmember *m = &o.m[i];
				assert(m->key >= line && m->key + m->keylen <= line + len);
				assert(m->val >= line && m->val + m->vallen <= line + len);
				if (m->type == PL_JSTR) {
					const char *s;
					size_t n;
					if (pl_jmember_str(m, &b, &s, &n, PL_JSTR_REPLACE, &e) == 0)
						assert(pl_utf8_valid_prefix(s, n) == n);
				}
			}
		} else {
			assert(e.offset <= len);
		}
		off += next;
	}
	return 0;
}
