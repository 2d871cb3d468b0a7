/* Joins the accept lock's word with /proc: which process the thread it
 * names belongs to (the recorded holder, else /proc/TID/status), its name
 * and state. A stopped or dead holder is what a user needs to see first
 * when accepts stall. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lock_view.h"
#include "sockshim/thread_state.h"

static ssize_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

/* The process of thread TID (its Tgid), 0 unknown. */
static int tgid_of(int tid)
{
	char path[48], buf[1024], *p;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	p = strstr(buf, "\nTgid:");
	return p ? atoi(p + 6) : 0;
}

static void comm_of(char *buf, size_t len, int pid, int tid)
{
	char path[64];

	buf[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	if (read_file(path, buf, len) > 0)
		buf[strcspn(buf, "\n")] = 0;
}

void lock_view_read(struct lock_view *v, const struct stats_listener *s, uint64_t now_ns)
{
	memset(v, 0, sizeof(*v));
	v->word = s->lock_word;
	if (!v->word)
		return;
	if (!sockshim_lock_valid(v->word)) {
		v->state = LOCK_INVALID;
		return;
	}
	v->state = LOCK_HELD;
	v->tid = (int)sockshim_lock_tid(v->word);
	if (v->word & SOCKSHIM_LOCK_OWNER_DIED) {
		/* The kernel's mark: its holder (the last recorded) died
		 * holding it; the next waiter takes it over. */
		v->state = LOCK_ABANDONED;
		v->tid = s->holder_tid ? s->holder_tid : s->gone_holder_tid;
		v->pid = s->holder_tid ? s->holder_pid : s->gone_holder_pid;
		return;
	}
	/* The recorded holder is the word's thread unless the word changed
	 * under the record (overwritten, or a take-over in progress); one
	 * that ended holding it was moved aside (stats_retire_holder). */
	if (s->holder_tid == v->tid && s->holder_pid > 0) {
		v->pid = s->holder_pid;
		if (s->held_since_ns && s->held_since_ns <= now_ns)
			v->held_ns = now_ns - s->held_since_ns;
	} else if (s->gone_holder_tid == v->tid && s->gone_holder_pid > 0) {
		v->pid = s->gone_holder_pid;
	} else {
		v->pid = tgid_of(v->tid);
	}
	v->thread_state = thread_state(v->tid);
	if (thread_state_dead(v->thread_state)) {
		/* Killed holding the lock: nobody holds it now. */
		v->state = LOCK_ABANDONED;
		v->held_ns = 0;
		return;
	}
	if (v->pid)
		comm_of(v->comm, sizeof(v->comm), v->pid, v->tid);
	if (s->bypass_word && s->bypass_word == (uint32_t)v->tid) {
		v->bypassed = 1;
		v->bypass_reason = s->bypass_reason;
		if (s->bypass_since_ns && s->bypass_since_ns <= now_ns)
			v->bypassed_ns = now_ns - s->bypass_since_ns;
	}
}

const char *lock_view_state_name(int st)
{
	switch (st) {
	case 0:
		return "gone";
	case -1:
		return "state unknown";
	case 'R':
		return "running";
	case 'S':
		return "sleeping";
	case 'D':
		return "in uninterruptible sleep";
	case 'T':
		return "stopped";
	case 't':
		return "stopped by a tracer";
	case 'Z':
	case 'X':
		return "dead";
	default:
		return "in an unusual state";
	}
}
