/* Session segments: create under a private temporary name and link into
 * place, open with owner/mode/header checks. Shared by the shim and the
 * command; never aborts, returns -errno with a reason a person can act on. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sockshim/rawio.h"
#include "sockshim/seg_guard.h"
#include "sockshim/segment.h"
#include "sockshim/clock.h"

static void say(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

static int name_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

int seg_name_check(const char *name)
{
	size_t n;

	if (!name || !name[0] || name[0] == '.')
		return -EINVAL;
	for (n = 0; name[n]; n++)
		if (!name_char_ok((unsigned char)name[n]) || n >= SOCKSHIM_SESSION_MAX)
			return -EINVAL;
	return 0;
}

/* The mark of a mapped name: "-x" and the hash's 8 hex digits. */
#define MAP_HASH_DIGITS 8
#define MAP_SUFFIX_LEN (2 + MAP_HASH_DIGITS)

/* FNV-1a, 64 bits folded to 32: a fixed function of the bytes on every
 * host and build, so the shim and the command always agree. Not meant to
 * resist a chosen collision: whoever could choose one can write the
 * session anyway (same user). */
static uint32_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return (uint32_t)(h ^ (h >> 32));
}

int seg_name_map(const char *raw, char out[SEG_NAME_BUF])
{
	const size_t keep_max = SOCKSHIM_SESSION_MAX - MAP_SUFFIX_LEN;
	size_t i, n = 0;

	if (!raw)
		raw = "";
	if (seg_name_check(raw) == 0) {
		snprintf(out, SEG_NAME_BUF, "%s", raw);
		return 0;
	}
	for (i = 0; raw[i] && n < keep_max; i++) {
		unsigned char c = (unsigned char)raw[i];

		if (name_char_ok(c) && !(n == 0 && c == '.'))
			out[n++] = (char)c;
		else if (n == 0 || out[n - 1] != '_')
			out[n++] = '_';
	}
	if (n == 0)
		out[n++] = '_';
	snprintf(out + n, SEG_NAME_BUF - n, "-x%0*x", MAP_HASH_DIGITS, (unsigned)name_hash(raw));
	return 1;
}

int seg_path(char *buf, size_t len, uid_t uid, const char *name)
{
	int n = snprintf(buf, len, SOCKSHIM_SHM_DIR "/" SOCKSHIM_SHM_PREFIX "%u.%s",
			 (unsigned)uid, name);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static int64_t clock_ns(clockid_t id)
{
	return (int64_t)sockshim_clock_ns(id);
}

void seg_header_init(struct sockshim_header *h, const char *name, uint32_t ring_capacity,
		     uint32_t ledger_capacity)
{
	FILE *f;

	memset(h, 0, sizeof(*h));
	h->layout_version = SOCKSHIM_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	h->segment_size = sockshim_segment_size(ring_capacity, ledger_capacity);
	h->ring_offset = sizeof(*h);
	h->ring_capacity = ring_capacity;
	h->record_size = sizeof(struct sockshim_record);
	h->ledger_offset = sockshim_ledger_offset(ring_capacity);
	h->ledger_capacity = ledger_capacity;
	h->ledger_entry_size = sizeof(struct sockshim_sock);
	h->listeners_offset = sockshim_listeners_offset(ring_capacity, ledger_capacity);
	h->listeners_capacity = SOCKSHIM_LISTENERS;
	h->listener_entry_size = sizeof(struct sockshim_listener);
	h->procs_offset = sockshim_procs_offset(ring_capacity, ledger_capacity);
	h->procs_capacity = SOCKSHIM_PROCS;
	h->proc_entry_size = sizeof(struct sockshim_proc);
	h->pool_offset = sockshim_pool_offset(ring_capacity, ledger_capacity);
	h->pool_capacity = ledger_capacity;
	h->pooled_entry_size = sizeof(struct sockshim_pooled_holder);
	h->keys_offset = sockshim_keys_offset(ring_capacity, ledger_capacity);
	h->creator_pid = getpid();
	h->creator_uid = geteuid();
	h->created_realtime_ns = clock_ns(CLOCK_REALTIME);
	h->created_monotonic_ns = clock_ns(CLOCK_MONOTONIC);
	h->created_boottime_ns = clock_ns(CLOCK_BOOTTIME);
	snprintf(h->session, sizeof(h->session), "%s", name);
	f = fopen("/proc/self/comm", "re");
	if (f) {
		if (fgets(h->creator_comm, sizeof(h->creator_comm), f))
			h->creator_comm[strcspn(h->creator_comm, "\n")] = 0;
		fclose(f);
	}
	/* Last, so a reader of a torn copy never trusts it. */
	__atomic_store_n(&h->magic, SOCKSHIM_MAGIC, __ATOMIC_RELEASE);
}

int seg_create(const char *name, uint32_t ring_capacity, uint32_t ledger_capacity,
	       struct seg_map *out)
{
	char path[256], tmp[300];
	uint64_t size = sockshim_segment_size(ring_capacity, ledger_capacity);
	struct timespec now;
	void *base;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	if (seg_name_check(name) || !sockshim_ring_capacity_ok(ring_capacity) ||
	    !sockshim_ledger_capacity_ok(ledger_capacity))
		return -EINVAL;
	rc = seg_path(path, sizeof(path), geteuid(), name);
	if (rc)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d.%ld", path, (int)getpid(), (long)now.tv_nsec);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* umask may have taken bits away; the mode must be exactly 0600. */
	if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		goto out_unlink;
	}
	/* Reserve the pages now: a full /dev/shm is an error here, not a
	 * SIGBUS in the host later. */
	rc = posix_fallocate(fd, 0, (off_t)size);
	if (rc) {
		rc = -rc;
		goto out_unlink;
	}
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto out_unlink;
	}
	seg_guard_watch(base, size, name);
	seg_header_init(base, name, ring_capacity, ledger_capacity);
	if (link(tmp, path) < 0) {
		rc = -errno;
		seg_guard_unwatch(base);
		munmap(base, size);
		goto out_unlink;
	}
	unlink(tmp);
	rawio_close(fd);
	out->base = base;
	out->size = size;
	out->ring_capacity = ring_capacity;
	out->ring_offset = sizeof(struct sockshim_header);
	out->ledger_capacity = ledger_capacity;
	out->ledger_offset = sockshim_ledger_offset(ring_capacity);
	out->listeners_offset = sockshim_listeners_offset(ring_capacity, ledger_capacity);
	out->procs_offset = sockshim_procs_offset(ring_capacity, ledger_capacity);
	out->pool_offset = sockshim_pool_offset(ring_capacity, ledger_capacity);
	out->keys_offset = sockshim_keys_offset(ring_capacity, ledger_capacity);
	out->writable = 1;
	return 0;

out_unlink:
	unlink(tmp);
	rawio_close(fd);
	return rc;
}

int seg_validate(struct seg_map *m, char *why, size_t whylen)
{
	const struct sockshim_header *h = m->base;
	uint64_t magic, seg_size, ring_off, ledger_off;
	uint32_t cap, ledger_cap;

	if (m->size < sizeof(*h)) {
		say(why, whylen, "it is %zu bytes, smaller than a header", m->size);
		return -EPROTO;
	}
	magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
	if (magic != SOCKSHIM_MAGIC) {
		say(why, whylen, "it is not a sockshim segment (bad magic number)");
		return -EPROTO;
	}
	if (h->layout_version != SOCKSHIM_LAYOUT_VERSION) {
		say(why, whylen,
		    "its layout version is %u, this build reads version %u "
		    "(written by another sockshim version)",
		    h->layout_version, SOCKSHIM_LAYOUT_VERSION);
		return -EPROTO;
	}
	cap = h->ring_capacity;
	ring_off = h->ring_offset;
	ledger_cap = h->ledger_capacity;
	ledger_off = h->ledger_offset;
	seg_size = h->segment_size;
	if (h->header_size != sizeof(*h) || h->record_size != sizeof(struct sockshim_record) ||
	    h->ledger_entry_size != sizeof(struct sockshim_sock) || !sockshim_ring_capacity_ok(cap) ||
	    !sockshim_ledger_capacity_ok(ledger_cap) || ring_off != sizeof(*h) ||
	    ledger_off != sockshim_ledger_offset(cap) ||
	    h->listeners_offset != sockshim_listeners_offset(cap, ledger_cap) ||
	    h->listeners_capacity != SOCKSHIM_LISTENERS ||
	    h->listener_entry_size != sizeof(struct sockshim_listener) ||
	    h->procs_offset != sockshim_procs_offset(cap, ledger_cap) ||
	    h->procs_capacity != SOCKSHIM_PROCS || h->proc_entry_size != sizeof(struct sockshim_proc) ||
	    h->pool_offset != sockshim_pool_offset(cap, ledger_cap) || h->pool_capacity != ledger_cap ||
	    h->pooled_entry_size != sizeof(struct sockshim_pooled_holder) ||
	    h->keys_offset != sockshim_keys_offset(cap, ledger_cap) ||
	    seg_size != sockshim_segment_size(cap, ledger_cap)) {
		say(why, whylen, "its header is corrupt (sizes do not add up)");
		return -EPROTO;
	}
	if (seg_size > m->size) {
		say(why, whylen,
		    "it is %zu bytes, its header says %llu (truncated by someone?)", m->size,
		    (unsigned long long)seg_size);
		return -EPROTO;
	}
	m->ring_capacity = cap;
	m->ring_offset = ring_off;
	m->ledger_capacity = ledger_cap;
	m->ledger_offset = ledger_off;
	m->listeners_offset = sockshim_listeners_offset(cap, ledger_cap);
	m->procs_offset = sockshim_procs_offset(cap, ledger_cap);
	m->pool_offset = sockshim_pool_offset(cap, ledger_cap);
	m->keys_offset = sockshim_keys_offset(cap, ledger_cap);
	return 0;
}

/* Each check of a segment before joining it, in order, with the reason
 * it gives (about 85 lines: every refusal's message is next to its test). */
int seg_open(const char *name, int writable, struct seg_map *out, char *why,
	     size_t whylen)
{
	char path[256];
	struct stat st;
	void *base;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	if (seg_name_check(name)) {
		say(why, whylen, "\"%s\" is not a valid session name "
			"(letters, digits, '_', '-', '.'; at most %d)", name, SOCKSHIM_SESSION_MAX);
		return -EINVAL;
	}
	rc = seg_path(path, sizeof(path), geteuid(), name);
	if (rc)
		return rc;
	/* O_NONBLOCK: a FIFO put in our place (anyone can, in /dev/shm) must
	 * be refused below, not block a read-only open until a writer comes. */
	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		say(why, whylen, "cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		say(why, whylen, "%s is not a regular file", path);
		rc = -EPROTO;
		goto out;
	}
	if (st.st_uid != geteuid()) {
		say(why, whylen, "%s belongs to uid %u, not to you (uid %u)", path,
		    (unsigned)st.st_uid, (unsigned)geteuid());
		rc = -EPERM;
		goto out;
	}
	if ((st.st_mode & 07777) != 0600) {
		say(why, whylen, "%s has mode %04o, expected 0600", path,
		    (unsigned)(st.st_mode & 07777));
		rc = -EPERM;
		goto out;
	}
	if ((uint64_t)st.st_size < sizeof(struct sockshim_header) ||
	    (uint64_t)st.st_size > sockshim_segment_size(1u << SOCKSHIM_RING_MAX_SHIFT,
							  1u << SOCKSHIM_LEDGER_MAX_SHIFT)) {
		say(why, whylen, "%s has an impossible size (%lld bytes)", path,
		    (long long)st.st_size);
		rc = -EPROTO;
		goto out;
	}
	/* A writer touches every page sooner or later: pages the file lacks
	 * (a sparse copy, a hole punched) are reserved now, so that a full
	 * /dev/shm is a refusal here, not a SIGBUS in the host later. tmpfs
	 * counts allocated pages in st_blocks: a whole file costs no call. */
	if (writable && (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size) {
		rc = posix_fallocate(fd, 0, st.st_size);
		if (rc) {
			say(why, whylen, "%s lacks pages and they cannot be reserved: %s", path,
			    strerror(rc));
			rc = -rc;
			goto out;
		}
	}
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | (writable ? PROT_WRITE : 0),
		    MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		say(why, whylen, "cannot map %s: %s", path, strerror(errno));
		goto out;
	}
	/* From here on, the file shrinking under us costs the mapping, not
	 * the process (when its SIGBUS handler calls seg_guard_fault). */
	seg_guard_watch(base, (size_t)st.st_size, name);
	out->base = base;
	out->size = (size_t)st.st_size;
	out->writable = writable;
	rc = seg_validate(out, why, whylen);
	if (rc)
		seg_unmap(out);
out:
	rawio_close(fd);
	return rc;
}

void seg_unmap(struct seg_map *m)
{
	if (m->base) {
		seg_guard_unwatch(m->base);
		munmap(m->base, m->size);
	}
	memset(m, 0, sizeof(*m));
}

int seg_remove(const char *name)
{
	char path[256];
	int rc;

	if (seg_name_check(name))
		return -EINVAL;
	rc = seg_path(path, sizeof(path), geteuid(), name);
	if (rc)
		return rc;
	return unlink(path) < 0 ? -errno : 0;
}
