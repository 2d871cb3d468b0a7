/* make bench (accept): the session's listener counters, summed over its
 * listeners, on one line of "name value" pairs for bench_accept.sh to take
 * differences of. Reads the segment read-only and checks what it reads;
 * stands in for `sockshim stats --json` where that is not built.
 * Usage: bench_accept_probe SESSION */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sockshim/layout.h"

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

int main(int argc, char **argv)
{
	const struct sockshim_header *h;
	const struct sockshim_listener *t;
	uint64_t calls = 0, accepts = 0, spurious = 0, empty = 0, wakeups = 0, locks = 0,
		 contended = 0, end;
	char path[256];
	struct stat st;
	unsigned i, n = 0;
	void *base;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: bench_accept_probe SESSION\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/%s%u.%s", SOCKSHIM_SHM_DIR, SOCKSHIM_SHM_PREFIX,
		 (unsigned)getuid(), argv[1]);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "bench_accept_probe: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if ((uint64_t)st.st_size < sizeof(*h)) {
		fprintf(stderr, "bench_accept_probe: %s: too short for a header\n", path);
		return 1;
	}
	base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		fprintf(stderr, "bench_accept_probe: mmap %s: %s\n", path, strerror(errno));
		return 1;
	}
	h = base;
	end = h->listeners_offset + (uint64_t)h->listeners_capacity * sizeof(*t);
	if (h->magic != SOCKSHIM_MAGIC || h->layout_version != SOCKSHIM_LAYOUT_VERSION ||
	    h->listener_entry_size != sizeof(*t) || h->listeners_offset % 64 ||
	    !h->listeners_offset || end < h->listeners_offset || end > (uint64_t)st.st_size) {
		fprintf(stderr, "bench_accept_probe: %s: not a layout-%u segment with a listener "
				"table\n", path, SOCKSHIM_LAYOUT_VERSION);
		return 1;
	}
	t = (const void *)((const char *)base + h->listeners_offset);
	for (i = 0; i < h->listeners_capacity; i++) {
		uint64_t inode = load(&t[i].inode);

		/* Unused, or being filled in by its claimer: not a listener yet. */
		if (!sockshim_inode_in_use(inode))
			continue;
		n++;
		calls += load(&t[i].accept_calls);
		accepts += load(&t[i].accepts);
		spurious += load(&t[i].spurious);
		empty += load(&t[i].empty);
		wakeups += load(&t[i].wakeups);
		locks += load(&t[i].lock_acquisitions);
		contended += load(&t[i].lock_contended);
	}
	printf("listeners %u accept_calls %llu accepts %llu spurious %llu empty %llu wakeups %llu "
	       "lock_acquisitions %llu lock_contended %llu\n",
	       n, (unsigned long long)calls, (unsigned long long)accepts,
	       (unsigned long long)spurious, (unsigned long long)empty,
	       (unsigned long long)wakeups, (unsigned long long)locks,
	       (unsigned long long)contended);
	return 0;
}
