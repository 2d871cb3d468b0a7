/* Doorbells: how a thread that waits in poll or select for a listener's
 * poll token it does not hold is woken when the token is handed to it,
 * and no other thread with it. serialize only. */
#ifndef SOCKSHIM_DOORBELL_H
#define SOCKSHIM_DOORBELL_H

#include <stdint.h>

/* Doorbells per listener: worker row R is rung through doorbell
 * R % DOORBELLS (rows are taken from 0, so a pool of up to this many
 * waiters has one each; more share, and a ring wakes those that share). */
#define DOORBELLS 8

/* Make the doorbells of listener REF (entry + 1) in this process, if it
 * has none: called by listen() in serialize mode, before the program
 * forks its workers, which inherit them. Nothing when they cannot be made
 * (descriptors short): waiters then wait in slices. */
void doorbell_make(uint32_t ref);

/* The descriptor of REF's doorbell for worker row ROW, or -1 when this
 * process has none (made elsewhere, exec'd since, or one of the set lost). */
int doorbell_fd(uint32_t ref, unsigned row);

/* Ring REF's doorbell for ROW. 0, or -1 when this process has none. */
int doorbell_ring(uint32_t ref, unsigned row);

/* A poll reported doorbell FD of REF readable: take its rings, if FD is
 * still ours (errno kept). */
void doorbell_drain(uint32_t ref, int fd);

/* This process closed its last descriptor of listener REF: close its
 * doorbells here. */
void doorbell_drop(uint32_t ref);

/* The program closed descriptor FD, or made it another file, and FD was
 * ours: forget the set it belonged to, and never use its numbers again. */
void doorbell_lost(int fd);

#endif
