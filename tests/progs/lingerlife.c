/* A server that holds each connection a known time, for the lifetime and
 * CLOSE_WAIT histograms and the abortive close:
 *
 *     lingerlife N RESETS
 *
 * listens on 127.0.0.1, prints "port P", then serves N connections one
 * after the other: reads each until the peer's EOF (the client closes at
 * once), holds it in CLOSE_WAIT for 10 ms (even ones) or 100 ms (odd
 * ones), and closes it; the first RESETS of them with SO_LINGER {1, 0}
 * set just before (the close resets them). Prints "done" and waits for a
 * signal (alarm() bounds it), its listener still open. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "loopback.h"

#define LIFETIME_S 120
#define SHORT_MS 10
#define LONG_MS 100

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};

	while (nanosleep(&ts, &ts) < 0)
		;
}

int main(int argc, char **argv)
{
	struct linger reset = {1, 0};
	int l, c, i, n, resets;
	uint16_t port;
	char buf[64];

	if (argc != 3 || (n = atoi(argv[1])) <= 0 || (resets = atoi(argv[2])) < 0) {
		fprintf(stderr, "usage: lingerlife N RESETS\n");
		return 2;
	}
	alarm(LIFETIME_S);
	l = loopback_listen(0, n, &port);
	if (l < 0) {
		perror("lingerlife: listen");
		return 1;
	}
	printf("port %u\n", port);
	fflush(stdout);
	for (i = 0; i < n; i++) {
		c = accept(l, NULL, NULL);
		if (c < 0) {
			perror("lingerlife: accept");
			return 1;
		}
		while (read(c, buf, sizeof(buf)) > 0)
			;
		sleep_ms(i % 2 ? LONG_MS : SHORT_MS);
		if (i < resets && setsockopt(c, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)) < 0) {
			perror("lingerlife: setsockopt");
			return 1;
		}
		close(c);
	}
	printf("done\n");
	fflush(stdout);
	pause();
	return 0;
}
