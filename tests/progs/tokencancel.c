/* A thread cancelled in a poll that waits for a listener whose poll token
 * another process holds (serialize: the listener's slot then holds the
 * thread's doorbell): the program's array must be its own again.
 *
 * The listener is made, a child waits for it in poll (and so takes the
 * token and keeps it); "port P child C" is printed and a line is read
 * from stdin (the test saw C take the token). Then a thread polls the
 * listener and a pipe, forever, and is cancelled 300 ms later; after the
 * join the array must read as it was written. Prints "slot FD EVENTS
 * REVENTS" and exits 0 when that is the listener, POLLIN, 0.
 *
 * alarm() bounds the run. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loopback.h"

static struct pollfd fds[2];

static void *poller(void *arg)
{
	(void)arg;
	for (;;)
		poll(fds, 2, -1);
	return NULL;
}

int main(void)
{
	const struct timespec pause = {0, 300 * 1000000L};
	uint16_t port;
	int lfd = loopback_listen(SOCK_NONBLOCK, 16, &port), p[2];
	char line[16];
	pthread_t t;
	pid_t child;

	alarm(20);
	if (lfd < 0 || pipe(p) < 0)
		return 2;
	child = fork();
	if (child == 0) {
		struct pollfd one = {.fd = lfd, .events = POLLIN};

		for (;;)
			poll(&one, 1, -1);
	}
	printf("port %u child %d\n", (unsigned)port, (int)child);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 3;
	fds[0].fd = lfd;
	fds[0].events = POLLIN;
	fds[1].fd = p[0];
	fds[1].events = POLLIN;
	if (pthread_create(&t, NULL, poller, NULL) != 0)
		return 4;
	nanosleep(&pause, NULL);
	pthread_cancel(t);
	pthread_join(t, NULL);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	printf("slot %d %d %d\n", fds[0].fd, fds[0].events, fds[0].revents);
	return fds[0].fd == lfd && fds[0].events == POLLIN && fds[0].revents == 0 ? 0 : 1;
}
