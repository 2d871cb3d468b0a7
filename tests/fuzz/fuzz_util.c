/* Shared by the fuzz harnesses: aborting invariant checks, a guarded
 * mapping that stands for a session segment, a valid header written
 * field by field, an input cursor, and validators of the terminal, JSON
 * and Prometheus text the command prints, written apart from format.c and
 * prom.c so that they do not share their mistakes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_util.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#endif
#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) __asan_poison_memory_region((p), (n))
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\nFUZZ INVARIANT VIOLATED at %s:%d: %s\n  ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static size_t page_size(void)
{
	static size_t ps;

	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

static size_t pages_for(size_t size)
{
	size_t ps = page_size();

	return (size + ps - 1) / ps * ps;
}

void *fuzz_map(size_t size)
{
	size_t len = pages_for(size ? size : 1);
	char *base;

	/* One page more, made inaccessible: a read running off the end of
	 * the segment faults as it would past a real file's mapping. */
	base = mmap(NULL, len + page_size(), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	if (mprotect(base + len, page_size(), PROT_NONE) < 0) {
		munmap(base, len + page_size());
		return NULL;
	}
	/* The bytes of the last page past SIZE exist in memory but not in
	 * the segment: ASan reports any access to them. */
	if (len > size)
		POISON(base + size, len - size);
	return base;
}

void fuzz_unmap(void *base, size_t size)
{
	size_t len = pages_for(size ? size : 1);

	if (!base)
		return;
	/* The shadow outlives the mapping: clear it, or the next mapping at
	 * this address would be reported. */
	UNPOISON(base, len);
	munmap(base, len + page_size());
}

void fuzz_seg_init(struct seg_map *m, void *base, size_t size, uint32_t ring_capacity,
		   uint32_t ledger_capacity)
{
	static struct sockshim_header header;
	static uint32_t made_ring, made_ledger;
	struct seg_map tmp;
	char name[64], why[200];
	int rc;

	/* The header as the shim writes it, from seg_create itself, so that
	 * every field a new layout adds is filled in: made once, in a real
	 * session that is removed at once. */
	if (made_ring != ring_capacity || made_ledger != ledger_capacity) {
		snprintf(name, sizeof(name), "fuzz-header-%d", (int)getpid());
		seg_remove(name);
		rc = seg_create(name, ring_capacity, ledger_capacity, &tmp);
		FUZZ_CHECK(rc == 0, "cannot create session %s: %s", name, strerror(-rc));
		memcpy(&header, tmp.base, sizeof(header));
		seg_unmap(&tmp);
		seg_remove(name);
		made_ring = ring_capacity;
		made_ledger = ledger_capacity;
	}
	memcpy(base, &header, sizeof(header));
	memset(m, 0, sizeof(*m));
	m->base = base;
	m->size = size;
	rc = seg_validate(m, why, sizeof(why));
	FUZZ_CHECK(rc == 0, "the harness's own header is refused: %s", why);
}

static uint64_t take(struct fuzz_in *in, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (i < in->n)
			v |= (uint64_t)in->p[i] << (8 * i);
	n = n < in->n ? n : in->n;
	in->p += n;
	in->n -= n;
	return v;
}

uint64_t fuzz_u64(struct fuzz_in *in)
{
	return take(in, 8);
}

uint32_t fuzz_u32(struct fuzz_in *in)
{
	return (uint32_t)take(in, 4);
}

uint16_t fuzz_u16(struct fuzz_in *in)
{
	return (uint16_t)take(in, 2);
}

uint8_t fuzz_u8(struct fuzz_in *in)
{
	return (uint8_t)take(in, 1);
}

size_t fuzz_bytes(struct fuzz_in *in, void *dst, size_t n)
{
	size_t k = n < in->n ? n : in->n;

	if (k)
		memcpy(dst, in->p, k);
	if (n > k)
		memset((char *)dst + k, 0, n - k);
	in->p += k;
	in->n -= k;
	return k;
}

/* The code point of the valid UTF-8 sequence at S (N bytes left) in *CP
 * and its length, or 0 when it is not valid (overlong, surrogate, beyond
 * U+10FFFF, cut short). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t need, i;
	uint32_t v;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		need = 2;
		v = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		need = 3;
		v = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		need = 4;
		v = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if ((need == 2 && v < 0x80) || (need == 3 && v < 0x800) || (need == 4 && v < 0x10000) ||
	    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return need;
}

static size_t terminated_len(const char *s, size_t cap, const char *what)
{
	const char *nul = memchr(s, 0, cap);

	FUZZ_CHECK(nul, "%s: not NUL-terminated within its %zu bytes", what, cap);
	return (size_t)(nul - s);
}

void fuzz_check_terminal(const char *s, size_t cap, const char *what)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = terminated_len(s, cap, what), i = 0, k;
	uint32_t cp;

	while (i < n) {
		k = utf8_decode(u + i, n - i, &cp);
		FUZZ_CHECK(k, "%s: invalid UTF-8 at byte %zu of \"%s\"", what, i, s);
		FUZZ_CHECK(cp >= 0x20 && cp != 0x7f && (cp < 0x80 || cp > 0x9f),
			   "%s: control character U+%04X at byte %zu of \"%s\"", what, (unsigned)cp,
			   i, s);
		i += k;
	}
}

/* ---- A strict JSON validator (RFC 8259), for one line. ---- */

struct json {
	const unsigned char *s;
	size_t n, i;
	int depth;
};

#define JSON_MAX_DEPTH 32

static int json_value(struct json *j);

static void json_ws(struct json *j)
{
	while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
			       j->s[j->i] == '\r'))
		j->i++;
}

static int json_lit(struct json *j, const char *lit)
{
	size_t l = strlen(lit);

	if (j->n - j->i < l || memcmp(j->s + j->i, lit, l))
		return 0;
	j->i += l;
	return 1;
}

static int is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int json_string(struct json *j)
{
	uint32_t cp;
	size_t k;

	if (j->i >= j->n || j->s[j->i] != '"')
		return 0;
	j->i++;
	while (j->i < j->n) {
		unsigned char c = j->s[j->i];

		if (c == '"') {
			j->i++;
			return 1;
		}
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			if (++j->i >= j->n)
				return 0;
			c = j->s[j->i];
			if (c == 'u') {
				if (j->n - j->i < 5 || !is_hex(j->s[j->i + 1]) ||
				    !is_hex(j->s[j->i + 2]) || !is_hex(j->s[j->i + 3]) ||
				    !is_hex(j->s[j->i + 4]))
					return 0;
				j->i += 5;
				continue;
			}
			if (!strchr("\"\\/bfnrt", c))
				return 0;
			j->i++;
			continue;
		}
		k = utf8_decode(j->s + j->i, j->n - j->i, &cp);
		if (!k)
			return 0;
		j->i += k;
	}
	return 0;
}

static int json_digits(struct json *j)
{
	size_t start = j->i;

	while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9')
		j->i++;
	return j->i > start;
}

static int json_number(struct json *j)
{
	if (j->i < j->n && j->s[j->i] == '-')
		j->i++;
	if (j->i < j->n && j->s[j->i] == '0')
		j->i++;
	else if (!json_digits(j))
		return 0;
	if (j->i < j->n && j->s[j->i] == '.') {
		j->i++;
		if (!json_digits(j))
			return 0;
	}
	if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
		j->i++;
		if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-'))
			j->i++;
		if (!json_digits(j))
			return 0;
	}
	return 1;
}

static int json_container(struct json *j, unsigned char close, int object)
{
	j->i++;
	if (++j->depth > JSON_MAX_DEPTH)
		return 0;
	json_ws(j);
	if (j->i < j->n && j->s[j->i] == close) {
		j->i++;
		j->depth--;
		return 1;
	}
	for (;;) {
		if (object) {
			if (!json_string(j))
				return 0;
			json_ws(j);
			if (j->i >= j->n || j->s[j->i] != ':')
				return 0;
			j->i++;
		}
		if (!json_value(j))
			return 0;
		json_ws(j);
		if (j->i < j->n && j->s[j->i] == ',') {
			j->i++;
			json_ws(j);
			continue;
		}
		if (j->i < j->n && j->s[j->i] == close) {
			j->i++;
			j->depth--;
			return 1;
		}
		return 0;
	}
}

static int json_value(struct json *j)
{
	int ok;

	json_ws(j);
	if (j->i >= j->n)
		return 0;
	switch (j->s[j->i]) {
	case '{':
		ok = json_container(j, '}', 1);
		break;
	case '[':
		ok = json_container(j, ']', 0);
		break;
	case '"':
		ok = json_string(j);
		break;
	case 't':
		ok = json_lit(j, "true");
		break;
	case 'f':
		ok = json_lit(j, "false");
		break;
	case 'n':
		ok = json_lit(j, "null");
		break;
	default:
		ok = json_number(j);
		break;
	}
	json_ws(j);
	return ok;
}

void fuzz_check_json(const char *s, size_t cap, const char *what)
{
	struct json j = {(const unsigned char *)s, 0, 0, 0};

	j.n = terminated_len(s, cap, what);
	FUZZ_CHECK(j.n && s[0] == '{', "%s: not a JSON object: \"%s\"", what, s);
	FUZZ_CHECK(json_value(&j) && j.i == j.n, "%s: invalid JSON near byte %zu: \"%s\"", what,
		   j.i, s);
}

/* ---- A Prometheus text exposition (format 0.0.4). ---- */

static int metric_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* Parse the sample LINE: *SERIES_END after its name and labels, *VALUE
 * at its value. */
static void prom_sample_parse(const char *line, const char *what, size_t *series_end,
			      const char **value)
{
	const char *p = line;
	char *end;

	FUZZ_CHECK(metric_char(*p, 1), "%s: bad metric name in \"%s\"", what, line);
	while (metric_char(*p, 0))
		p++;
	if (*p == '{') {
		p++;
		while (*p != '}') {
			FUZZ_CHECK(metric_char(*p, 1) && *p != ':', "%s: bad label in \"%s\"", what,
				   line);
			while (metric_char(*p, 0) && *p != ':')
				p++;
			FUZZ_CHECK(p[0] == '=' && p[1] == '"', "%s: no label value in \"%s\"", what,
				   line);
			for (p += 2; *p != '"'; p++) {
				FUZZ_CHECK(*p, "%s: unterminated label value in \"%s\"", what, line);
				if (*p == '\\') {
					p++;
					FUZZ_CHECK(*p == '\\' || *p == '"' || *p == 'n',
						   "%s: bad escape in \"%s\"", what, line);
				}
			}
			p++;
			if (*p == ',')
				p++;
			else
				FUZZ_CHECK(*p == '}', "%s: labels not closed in \"%s\"", what, line);
		}
		p++;
	}
	*series_end = (size_t)(p - line);
	FUZZ_CHECK(*p == ' ', "%s: no value in \"%s\"", what, line);
	*value = ++p;
	if (!strcmp(p, "NaN") || !strcmp(p, "+Inf") || !strcmp(p, "-Inf"))
		return;
	(void)strtod(p, &end);
	FUZZ_CHECK(end != p && !*end, "%s: bad value in \"%s\"", what, line);
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void fuzz_check_prometheus(const char *exposition, size_t len, const char *what)
{
	char *text, *line, *next, **keys = NULL, bucket_prefix[1024] = "";
	unsigned long long v, last_bucket = 0, inf_bucket = 0;
	size_t nkeys = 0, cap = 0, end, plen, i;
	const char *value, *lep;
	int have_inf = 0;

	FUZZ_CHECK(len && exposition[len - 1] == '\n' && !memchr(exposition, 0, len),
		   "%s: not whole lines of text", what);
	text = malloc(len + 1);
	FUZZ_CHECK(text, "out of memory");
	memcpy(text, exposition, len);
	text[len] = 0;
	for (line = text; line < text + len; line = next) {
		next = strchr(line, '\n');
		*next++ = 0;
		fuzz_check_terminal(line, (size_t)(next - line), what);
		if (line[0] == '#') {
			FUZZ_CHECK(!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7),
				   "%s: comment \"%s\"", what, line);
			continue;
		}
		prom_sample_parse(line, what, &end, &value);
		if (nkeys == cap) {
			char **more;

			cap = cap ? 2 * cap : 256;
			more = realloc(keys, cap * sizeof(*keys));
			FUZZ_CHECK(more, "out of memory");
			keys = more;
		}
		keys[nkeys] = strndup(line, end);
		FUZZ_CHECK(keys[nkeys], "out of memory");
		nkeys++;
		/* Histograms: the cumulative buckets of one series never
		 * decrease, and _count is the +Inf bucket. */
		lep = strstr(line, ",le=\"");
		if (strstr(line, "_bucket{") && lep && lep < line + end) {
			plen = (size_t)(lep - line);
			v = strtoull(value, NULL, 10);
			if (plen < sizeof(bucket_prefix) && !strncmp(bucket_prefix, line, plen) &&
			    !bucket_prefix[plen])
				FUZZ_CHECK(v >= last_bucket, "%s: bucket decreases: \"%s\"", what, line);
			else if (plen < sizeof(bucket_prefix))
				snprintf(bucket_prefix, sizeof(bucket_prefix), "%.*s", (int)plen, line);
			last_bucket = v;
			if (!strncmp(lep, ",le=\"+Inf\"", 10)) {
				inf_bucket = v;
				have_inf = 1;
			}
		} else if (have_inf && strstr(line, "_count")) {
			FUZZ_CHECK(strtoull(value, NULL, 10) == inf_bucket,
				   "%s: _count is not the +Inf bucket: \"%s\"", what, line);
			have_inf = 0;
		}
	}
	/* Each series once: Prometheus rejects the samples of a repeated one. */
	qsort(keys, nkeys, sizeof(*keys), by_string);
	for (i = 1; i < nkeys; i++)
		FUZZ_CHECK(strcmp(keys[i - 1], keys[i]), "%s: series twice: %s", what, keys[i]);
	for (i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	free(text);
}
