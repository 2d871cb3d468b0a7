/* A part of a report's loading that needs nothing from the rest (a scan
 * of /proc, a copy of the ledger), run on a thread of its own while the
 * loader does the other parts, or in place when no thread can be made.
 * The loaders of closewait and conns use it; the /proc scan is the job
 * they share. */
#ifndef SOCKSHIM_SIDE_JOB_H
#define SOCKSHIM_SIDE_JOB_H

#include <pthread.h>

#include "procfd.h"

/* The first member of a job's own struct: FN gets that struct. */
struct side_job {
	void *(*fn)(void *);
	pthread_t thread;
	int threaded;
	int done;
	int rc; /* what the job says: 0 or -errno */
};

void side_start(struct side_job *j, void *(*fn)(void *));
/* Its result: waited for on its thread, or done here. Once. */
void side_finish(struct side_job *j);
/* Loading failed: only wait for the thread, if it runs. */
void side_abandon(struct side_job *j);

/* procfd_scan on the side: PF is the scan once finished (side.rc 0).
 * The thread that asks for it helps it to its end (procfd_help). */
struct procfd_job {
	struct side_job side; /* first */
	struct procfd_share *share; /* NULL: the scan reads alone */
	struct procfd *pf;
	int said; /* its error was said */
};

void procfd_job_start(struct procfd_job *j);
/* Help the scan and wait for it; the scan, once, into *PF. 0, or its -errno said on
 * stderr (once: a second call returns 0). */
int procfd_job_finish(struct procfd_job *j, struct procfd **pf);

#endif
