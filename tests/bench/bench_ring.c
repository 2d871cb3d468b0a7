/* Ring throughput: append cost with one and two writer threads, and how
 * many records per second the reader drains. Links the shim's producer and
 * the command's reader directly; prints "name value" lines. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"
#include "ring_reader.h"

static struct seg_map seg;
static long per_writer;
static int go;
static int with_clock; /* 1: time-stamp each record as the shim does */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* What the shim does per event: (stamp the time,) append. */
static void *writer(void *arg)
{
	struct sockshim_record r;
	struct timespec ts;
	double *ns = arg, t0;

	memset(&r, 0, sizeof(r));
	r.type = SOCKSHIM_EV_CLOSE;
	r.pid = getpid();
	while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE)) {
	}
	t0 = now_ns();
	for (long i = 0; i < per_writer; i++) {
		if (with_clock) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			r.ts_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		}
		r.fd = (int)i;
		ring_append(&seg, &r);
	}
	*ns = (now_ns() - t0) / per_writer;
	return NULL;
}

static double run_writers(int n, int clock)
{
	pthread_t t[8];
	double ns[8], worst = 0;

	go = 0;
	with_clock = clock;
	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, writer, &ns[i]);
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		if (ns[i] > worst)
			worst = ns[i];
	}
	return worst;
}

static double reader_rate(void)
{
	struct ring_reader rd;
	struct sockshim_record out;
	double t0, total = 0, secs;
	uint64_t lost;
	char kind;

	run_writers(1, 0); /* a full ring to read */
	t0 = now_ns();
	for (int round = 0; round < 20; round++) {
		ring_reader_init(&rd, &seg, 1);
		while (ring_reader_next(&rd, &out, &lost, &kind, 0) == RING_RECORD)
			total++;
	}
	secs = (now_ns() - t0) / 1e9;
	return total / secs;
}

int main(int argc, char **argv)
{
	char name[64];
	double one, two, one_c, two_c;

	per_writer = argc > 1 ? atol(argv[1]) : 2000000;
	snprintf(name, sizeof(name), "bench-ring-%d", (int)getpid());
	if (seg_create(name, 1u << SOCKSHIM_RING_DEFAULT_SHIFT, SOCKSHIM_LEDGER_DEFAULT, &seg)) {
		perror("seg_create");
		return 1;
	}
	run_writers(1, 0); /* warm the pages */
	one = run_writers(1, 0);
	two = run_writers(2, 0);
	one_c = run_writers(1, 1);
	two_c = run_writers(2, 1);
	printf("append_ns_1_writer %.1f\n", one);
	printf("append_ns_2_writers %.1f\n", two);
	printf("append_with_clock_ns_1_writer %.1f\n", one_c);
	printf("append_with_clock_ns_2_writers %.1f\n", two_c);
	printf("reader_events_per_s %.0f\n", reader_rate());
	seg_remove(name);
	return 0;
}
