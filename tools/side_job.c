/* See side_job.h. A job that cannot get a thread runs when its result is
 * asked for, so a loader is never without it. */
#include <stdio.h>
#include <string.h>

#include "side_job.h"

void side_start(struct side_job *j, void *(*fn)(void *))
{
	j->fn = fn;
	j->rc = 0;
	j->done = 0;
	j->threaded = pthread_create(&j->thread, NULL, fn, j) == 0;
}

void side_finish(struct side_job *j)
{
	if (j->done)
		return;
	if (j->threaded)
		pthread_join(j->thread, NULL);
	else
		j->fn(j);
	j->done = 1;
}

void side_abandon(struct side_job *j)
{
	if (!j->done && j->threaded)
		pthread_join(j->thread, NULL);
	j->done = 1;
}

static void *scan_proc(void *arg)
{
	struct procfd_job *j = arg;

	j->side.rc = procfd_scan_shared(j->share, &j->pf);
	return NULL;
}

void procfd_job_start(struct procfd_job *j)
{
	j->pf = NULL;
	j->said = 0;
	/* Without it the scan reads alone. */
	if (procfd_share_new(&j->share))
		j->share = NULL;
	side_start(&j->side, scan_proc);
}

int procfd_job_finish(struct procfd_job *j, struct procfd **pf)
{
	/* The scan runs on its thread: this one, with nothing else to do
	 * until it ends, reads a share of its descriptors. */
	if (j->share && j->side.threaded && !j->side.done)
		procfd_help(j->share);
	side_finish(&j->side);
	procfd_share_free(j->share);
	j->share = NULL;
	if (j->pf) {
		*pf = j->pf;
		j->pf = NULL;
	}
	if (!j->side.rc || j->said)
		return 0;
	j->said = 1;
	fprintf(stderr, "sockshim: cannot scan /proc for socket descriptors: %s; is /proc mounted?\n",
		strerror(-j->side.rc));
	return j->side.rc;
}
