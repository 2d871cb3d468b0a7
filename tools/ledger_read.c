/* The ledger reader: copies each entry in use word by word (the shim
 * writes them with atomics, never under a lock), checks what it copied,
 * and indexes the result by inode. Also rebuilds inheritance paths from
 * the history steps. Never trusts a number from the segment unchecked. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bigmem.h"
#include "ledger_read.h"
#include "outbuf.h"

/* How often an entry that changed under the copy is copied again. */
#define COPY_TRIES 4
/* Holders and steps dated before the birth belong to an earlier socket
 * whose entry was reclaimed: the writer has not cleared them yet. A little
 * slack, in case the shim reads the clock once per item. */
#define BIRTH_SLACK_NS 1000000ULL

static const char *const born_names[SOCKSHIM_BORN_COUNT] = {
	[SOCKSHIM_BORN_UNKNOWN] = "unknown",       [SOCKSHIM_BORN_SOCKET] = "socket",
	[SOCKSHIM_BORN_ACCEPT] = "accept",         [SOCKSHIM_BORN_CONNECT] = "connect",
	[SOCKSHIM_BORN_SOCKETPAIR] = "socketpair", [SOCKSHIM_BORN_SCM_RIGHTS] = "scm_rights",
	[SOCKSHIM_BORN_INHERITED] = "inherited",
};

static const char *const born_verbs[SOCKSHIM_BORN_COUNT] = {
	[SOCKSHIM_BORN_UNKNOWN] = "first seen in",
	[SOCKSHIM_BORN_SOCKET] = "created by",
	[SOCKSHIM_BORN_ACCEPT] = "accepted by",
	[SOCKSHIM_BORN_CONNECT] = "connected by",
	[SOCKSHIM_BORN_SOCKETPAIR] = "made by socketpair in",
	[SOCKSHIM_BORN_SCM_RIGHTS] = "received over SCM_RIGHTS by",
	[SOCKSHIM_BORN_INHERITED] = "found open at start-up in",
};

static const char *const how_names[SOCKSHIM_HOW_COUNT] = {
	[SOCKSHIM_HOW_NONE] = "unknown", [SOCKSHIM_HOW_CREATED] = "created",
	[SOCKSHIM_HOW_DUP] = "dup",      [SOCKSHIM_HOW_FORK] = "fork",
	[SOCKSHIM_HOW_EXEC] = "exec",    [SOCKSHIM_HOW_SCM] = "scm_rights",
	[SOCKSHIM_HOW_INHERITED] = "inherited",
};

static const char *const op_names[SOCKSHIM_STEP_COUNT] = {
	[SOCKSHIM_STEP_NONE] = "none",   [SOCKSHIM_STEP_BORN] = "born",
	[SOCKSHIM_STEP_DUP] = "dup",     [SOCKSHIM_STEP_FORK] = "fork",
	[SOCKSHIM_STEP_EXEC] = "exec",   [SOCKSHIM_STEP_SCM] = "scm_rights",
	[SOCKSHIM_STEP_CLOSE] = "close", [SOCKSHIM_STEP_SHUTDOWN] = "shutdown",
	[SOCKSHIM_STEP_EOF] = "eof",     [SOCKSHIM_STEP_EXIT] = "exit",
	[SOCKSHIM_STEP_EPIPE] = "epipe",
};

const char *ledger_born_name(unsigned born)
{
	return born < SOCKSHIM_BORN_COUNT ? born_names[born] : NULL;
}

const char *ledger_born_verb(unsigned born)
{
	return born < SOCKSHIM_BORN_COUNT ? born_verbs[born] : born_verbs[0];
}

const char *ledger_how_name(unsigned how)
{
	return how < SOCKSHIM_HOW_COUNT ? how_names[how] : NULL;
}

const char *ledger_op_name(unsigned op)
{
	return op < SOCKSHIM_STEP_COUNT ? op_names[op] : NULL;
}

static int before_birth(uint64_t ts, uint64_t born_ns)
{
	return born_ns > BIRTH_SLACK_NS && ts < born_ns - BIRTH_SLACK_NS;
}

/* Copy holder H of a socket born at BORN_NS into D. 1 if it is a live
 * holder that can be right. */
static int holder_load(struct ledger_holder *d, const struct sockshim_holder *h, uint64_t born_ns)
{
	/* CLAIMED is a holder being written: not there yet. */
	if (h->state != SOCKSHIM_HOLDER_LIVE || h->pid <= 0 || h->fd < 0)
		return 0;
	if (before_birth(h->since_ns, born_ns))
		return 0;
	d->pid = h->pid;
	d->fd = h->fd;
	d->how = h->how < SOCKSHIM_HOW_COUNT ? h->how : SOCKSHIM_HOW_NONE;
	d->since_ns = h->since_ns;
	d->from_pid = h->from_pid;
	d->from_fd = h->from_fd;
	return 1;
}

static void load_holders(struct ledger_sock *out, const struct sockshim_sock *raw)
{
	unsigned i;

	out->nholders = 0;
	for (i = 0; i < SOCKSHIM_HOLDERS; i++)
		if (holder_load(&out->holders[out->nholders], &raw->holders[i], out->born_ns))
			out->nholders++;
}

/* The steps of RAW's socket: those whose index is in [steps_base,
 * steps_next) (an entry's history goes on over the sockets it has had),
 * oldest first, each with its seq counted from this socket's first step. */
static void load_steps(struct ledger_sock *out, const struct sockshim_sock *raw)
{
	struct ledger_step *v = out->steps, t;
	uint32_t base = raw->steps_base, written = sockshim_sock_steps(raw), top;
	unsigned i, j, n = 0;

	for (i = 0; i < SOCKSHIM_STEPS; i++) {
		const struct sockshim_step *st = &raw->steps[i];

		/* A slot holds index seq - 1 of this socket's: anything else is
		 * not its step (an older socket's, or one being written). */
		if (!st->seq || (st->seq - 1) % SOCKSHIM_STEPS != i || st->seq - 1 - base >= written)
			continue;
		if (st->op == SOCKSHIM_STEP_NONE || st->op >= SOCKSHIM_STEP_COUNT)
			continue;
		if (before_birth(st->ts_ns, out->born_ns))
			continue;
		v[n].seq = st->seq - base;
		v[n].op = st->op;
		v[n].via = st->via;
		v[n].ts_ns = st->ts_ns;
		v[n].pid = st->pid;
		v[n].fd = st->fd;
		v[n].arg = st->arg;
		memcpy(v[n].comm, st->comm, sizeof(st->comm));
		v[n].comm[sizeof(st->comm)] = 0;
		n++;
	}
	for (i = 1; i < n; i++) /* at most 16: insertion sort by seq */
		for (j = i; j > 0 && v[j - 1].seq > v[j].seq; j--) {
			t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	/* A slot whose new step is still being written shows the step from
	 * one lap before: older than the window, drop it. */
	top = n ? v[n - 1].seq : 0;
	for (i = 0; i < n && top - v[i].seq >= SOCKSHIM_STEPS; i++)
		;
	if (i) {
		memmove(v, v + i, (n - i) * sizeof(*v));
		n -= i;
	}
	out->nsteps = n;
	out->history_lost = n && (v[0].seq > 1 || v[n - 1].seq - v[0].seq + 1 != n);
	if (!n && written)
		out->history_lost = 1;
}

/* The last shutdown of RAW, if what is there can be one: a pid, a way
 * (SHUT_RD, SHUT_WR or SHUT_RDWR) and other holders that are pids. */
static void load_shutdown(struct ledger_shutdown *d, const struct sockshim_sock *raw)
{
	unsigned i;

	memset(d, 0, sizeof(*d));
	if (!raw->shut_ns || raw->shut_pid <= 0 || raw->shut_how < SHUT_RD ||
	    raw->shut_how > SHUT_RDWR)
		return;
	d->pid = raw->shut_pid;
	d->fd = raw->shut_fd;
	d->how = raw->shut_how;
	d->refs = raw->shut_refs;
	d->nothers = raw->shut_nothers;
	for (i = 0; i < SOCKSHIM_SHUT_OTHERS && i < d->nothers; i++) {
		if (raw->shut_others[i] <= 0)
			return; /* torn: not believed */
		d->others[d->nlisted++] = raw->shut_others[i];
	}
	d->callsite = raw->shut_callsite;
	d->callsite_offset = raw->shut_callsite_offset;
	memcpy(d->module, raw->shut_module, SOCKSHIM_MODULE_MAX);
	d->module[SOCKSHIM_MODULE_MAX] = 0;
	d->ns = raw->shut_ns;
}

int ledger_sock_load(struct ledger_sock *out, struct ledger_sock_room *room,
		     const struct sockshim_sock *raw, const struct sockshim_ledger_key *key)
{
	memset(out, 0, sizeof(*out));
	if (!sockshim_inode_in_use(key->inode))
		return -EINVAL;
	out->holders = room->holders;
	out->steps = room->steps;
	out->inode = key->inode;
	out->born_ns = raw->born_ns;
	out->born_pid = raw->born_pid;
	out->born_fd = raw->born_fd;
	out->born = raw->born < SOCKSHIM_BORN_COUNT ? raw->born : SOCKSHIM_BORN_UNKNOWN;
	out->family = raw->family;
	out->socktype = raw->socktype;
	out->flags = raw->flags;
	memcpy(out->local_ip, raw->local_ip, sizeof(out->local_ip));
	memcpy(out->peer_ip, raw->peer_ip, sizeof(out->peer_ip));
	out->local_port = raw->local_port;
	out->peer_port = raw->peer_port;
	out->refs = raw->refs;
	out->released_ns = key->released_ns;
	out->eof_ns = raw->eof_ns;
	out->eof_pid = raw->eof_pid;
	out->eof_fd = raw->eof_fd;
	out->last_read_ns = raw->last_read_ns;
	out->callsite = raw->callsite;
	out->callsite_offset = raw->callsite_offset;
	memcpy(out->callsite_module, raw->callsite_module, SOCKSHIM_MODULE_MAX);
	out->callsite_module[SOCKSHIM_MODULE_MAX] = 0;
	/* Cut to a step's length: one spelling of a name in every output. */
	memcpy(out->born_comm, raw->born_comm, LEDGER_COMM_MAX - 1);
	out->born_comm[LEDGER_COMM_MAX - 1] = 0;
	out->steps_next = sockshim_sock_steps(raw);
	out->noeffect_closes = raw->noeffect_closes;
	out->holder_overflow = raw->holder_overflow;
	out->pooled = raw->pooled;
	if (out->eof_ns == 0 || out->eof_pid <= 0) {
		out->eof_ns = 0;
		out->eof_pid = 0;
		out->eof_fd = -1;
	}
	load_shutdown(&out->shut, raw);
	load_holders(out, raw);
	load_steps(out, raw);
	return 0;
}

/* Copy words [FROM, TO) of entry E into DST. */
static void copy_words(struct sockshim_sock *dst, const struct sockshim_sock *e, size_t from,
		       size_t to)
{
	const sockshim_word *s = (const sockshim_word *)e;
	sockshim_word *d = (sockshim_word *)dst;
	size_t i;

	for (i = from; i < to; i++)
		d[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
}

/* Copy entry E word by word: the shim updates it with atomic stores, and
 * a plain memcpy would be a data race the compiler may tear further.
 * Of its history, only the slots of its socket's steps: a writer takes
 * its index from steps_next before it writes, so the steps from
 * steps_base to steps_next (as copied), the last SOCKSHIM_STEPS of them
 * at most (most sockets have two or three steps of sixteen, half of an
 * entry). The other slots are left empty. */
static void copy_entry(struct sockshim_sock *dst, const struct sockshim_sock *e)
{
	const size_t word = sizeof(sockshim_word);
	const size_t steps = offsetof(struct sockshim_sock, steps) / word;
	const size_t step_words = sizeof(struct sockshim_step) / word;
	uint32_t written, n;

	_Static_assert(offsetof(struct sockshim_sock, steps) % sizeof(sockshim_word) == 0 &&
			       sizeof(struct sockshim_step) % sizeof(sockshim_word) == 0,
		       "ledger entries and steps are whole words");
	copy_words(dst, e, 0, steps);
	memset(dst->steps, 0, sizeof(dst->steps));
	written = sockshim_sock_steps(dst);
	if (written > SOCKSHIM_STEPS)
		written = SOCKSHIM_STEPS;
	for (n = dst->steps_next - written; n != dst->steps_next; n++) {
		size_t at = steps + (n % SOCKSHIM_STEPS) * step_words;

		copy_words(dst, e, at, at + step_words);
	}
}

/* Copy entry E and its key K, whose inode read INO, into X, its holders
 * and steps into ROOM. 0, 1 when it went away or kept changing (counted
 * in S), or -EINVAL when it cannot be right. */
static int take(struct ledger_snap *s, const struct sockshim_sock *e,
		const struct sockshim_ledger_key *k, uint64_t ino, struct ledger_sock *x,
		struct ledger_sock_room *room)
{
	struct sockshim_sock raw;
	struct sockshim_ledger_key key;
	int t;

	for (t = 0; t < COPY_TRIES; t++) {
		copy_entry(&raw, e);
		key.released_ns = __atomic_load_n(&k->released_ns, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		/* A shutdown written meanwhile republishes shut_ns. */
		key.inode = __atomic_load_n(&k->inode, __ATOMIC_RELAXED);
		if (key.inode == ino && __atomic_load_n(&e->shut_ns, __ATOMIC_RELAXED) == raw.shut_ns)
			break;
		ino = __atomic_load_n(&k->inode, __ATOMIC_ACQUIRE);
		if (!sockshim_inode_in_use(ino))
			return 1;
	}
	if (t == COPY_TRIES) {
		s->unsettled++;
		return 1;
	}
	if (ledger_sock_load(x, room, &raw, &key)) {
		s->rejected++;
		return -EINVAL;
	}
	return 0;
}

/* The snapshot entry of ledger slot SLOT (the entries are in slot order),
 * or NULL. */
static struct ledger_sock *by_slot(struct ledger_snap *s, uint32_t slot)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid].slot == slot)
			return &s->v[mid];
		if (s->v[mid].slot < slot)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The holders in the shared pool (of sockets whose own slots were taken):
 * one scan of the pool, then each such socket gets one array, its own
 * holders and its pooled ones. 0 or -ENOMEM. */
static int add_pooled(const struct seg_map *m, struct ledger_snap *s)
{
	const struct sockshim_pooled_holder *pool = seg_pool(m);
	size_t i, total = 0, used = 0;
	unsigned *count;

	for (i = 0; i < s->n; i++)
		if (s->v[i].pooled)
			break;
	if (i == s->n || !m->pool_offset)
		return 0; /* the common case: nobody is pooled */
	count = calloc(s->n, sizeof(*count));
	if (!count)
		return -ENOMEM;
	for (i = 0; i < m->ledger_capacity; i++) {
		uint32_t ref = __atomic_load_n(&pool[i].ref, __ATOMIC_RELAXED);
		struct ledger_sock *x;

		if (__atomic_load_n(&pool[i].h.state, __ATOMIC_ACQUIRE) != SOCKSHIM_HOLDER_LIVE ||
		    !ref || ref > m->ledger_capacity || !(x = by_slot(s, ref - 1)))
			continue;
		count[x - s->v]++;
	}
	for (i = 0; i < s->n; i++)
		if (count[i])
			total += SOCKSHIM_HOLDERS + count[i];
	if (!total) {
		free(count);
		return 0;
	}
	s->pool_holders = calloc(total, sizeof(*s->pool_holders));
	if (!s->pool_holders) {
		free(count);
		return -ENOMEM;
	}
	for (i = 0; i < s->n; i++) {
		struct ledger_sock *x = &s->v[i];

		if (!count[i])
			continue;
		memcpy(&s->pool_holders[used], x->holders, x->nholders * sizeof(*x->holders));
		x->holders = &s->pool_holders[used];
		used += SOCKSHIM_HOLDERS + count[i];
		count[i] += SOCKSHIM_HOLDERS; /* now: the room of its array */
	}
	for (i = 0; i < m->ledger_capacity; i++) {
		struct sockshim_pooled_holder h;
		struct ledger_sock *x;

		h.ref = __atomic_load_n(&pool[i].ref, __ATOMIC_RELAXED);
		h.h = pool[i].h; /* a moment's copy: checked like any holder */
		if (!h.ref || h.ref > m->ledger_capacity || !(x = by_slot(s, h.ref - 1)) ||
		    !count[x - s->v] || x->nholders >= count[x - s->v])
			continue;
		if (holder_load(&x->holders[x->nholders], &h.h, x->born_ns))
			x->nholders++;
	}
	free(count);
	return 0;
}

int ledger_snapshot_some(const struct seg_map *m, struct ledger_snap *out,
			 int (*keep)(void *arg, uint64_t inode, int32_t refs), void *arg)
{
	const struct sockshim_header *h = seg_header(m);
	const struct sockshim_sock *table = seg_ledger(m);
	const struct sockshim_ledger_key *keys = seg_ledger_keys(m);
	uint32_t slot, *slots = NULL;
	size_t nslots = 0, held = 0, stepped = 0, i;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->capacity = m->ledger_capacity;
	out->created_real_ns = h->created_realtime_ns;
	out->created_mono_ns = h->created_monotonic_ns;
	out->created_boot_ns = h->created_boottime_ns;
	out->ledger_full = __atomic_load_n(&h->ledger_full, __ATOMIC_RELAXED);
	out->holder_overflow = __atomic_load_n(&h->holder_overflow, __ATOMIC_RELAXED);
	out->ledger_reclaimed = __atomic_load_n(&h->ledger_reclaimed, __ATOMIC_RELAXED);
	/* First the slots to copy (read in the index, and an entry's refs
	 * only when KEEP asks), so the copies go into one exact allocation. */
	slots = malloc((size_t)m->ledger_capacity * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (slot = 0; slot < m->ledger_capacity; slot++) {
		uint64_t ino = __atomic_load_n(&keys[slot].inode, __ATOMIC_ACQUIRE);

		if (!sockshim_inode_in_use(ino))
			continue;
		if (keep && !keep(arg, ino, __atomic_load_n(&table[slot].refs, __ATOMIC_RELAXED)))
			continue;
		slots[nslots++] = slot;
	}
	if (nslots) {
		out->v = big_calloc(nslots, sizeof(*out->v));
		out->holder_store = big_calloc(nslots * SOCKSHIM_HOLDERS, sizeof(*out->holder_store));
		out->step_store = big_calloc(nslots * SOCKSHIM_STEPS, sizeof(*out->step_store));
		if (!out->v || !out->holder_store || !out->step_store) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < nslots; i++) {
		const struct sockshim_sock *e = &table[slots[i]];
		const struct sockshim_ledger_key *k = &keys[slots[i]];
		uint64_t ino = __atomic_load_n(&k->inode, __ATOMIC_ACQUIRE);
		struct ledger_sock *x = &out->v[out->n];
		struct ledger_sock_room room;

		if (!sockshim_inode_in_use(ino))
			continue;
		if (take(out, e, k, ino, x, &room) == 0) {
			x->slot = slots[i];
			x->holders = memcpy(&out->holder_store[held], room.holders,
					    x->nholders * sizeof(*x->holders));
			x->steps = memcpy(&out->step_store[stepped], room.steps,
					  x->nsteps * sizeof(*x->steps));
			held += x->nholders;
			stepped += x->nsteps;
			out->n++;
		}
	}
	rc = add_pooled(m, out);
	if (rc)
		goto out;
	/* Index the entries by inode. A duplicate inode (a reclaim racing
	 * the copy) keeps the newer birth. */
	rc = flatidx_init(&out->by_inode, out->n);
	if (rc)
		goto out;
	for (i = 0; i < out->n; i++) {
		uint64_t hash = flatidx_hash_u64(out->v[i].inode);
		struct flatidx_walk w;
		uint32_t at;

		for (at = flatidx_first(&out->by_inode, hash, &w);
		     at != FLATIDX_END && out->v[at].inode != out->v[i].inode;
		     at = flatidx_next(&out->by_inode, &w))
			;
		if (at == FLATIDX_END) {
			flatidx_put(&out->by_inode, hash, (uint32_t)i);
			continue;
		}
		if (out->v[at].born_ns >= out->v[i].born_ns)
			out->rejected++;
		else
			flatidx_replace(&out->by_inode, &w, (uint32_t)i);
	}
out:
	free(slots);
	if (rc)
		ledger_snap_free(out);
	return rc;
}

int ledger_snapshot(const struct seg_map *m, struct ledger_snap *out)
{
	return ledger_snapshot_some(m, out, NULL, NULL);
}

void ledger_snap_free(struct ledger_snap *s)
{
	flatidx_free(&s->by_inode);
	free(s->pool_holders);
	free(s->holder_store);
	free(s->step_store);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

const struct ledger_sock *ledger_find(const struct ledger_snap *s, uint64_t inode)
{
	struct flatidx_walk w;
	uint32_t at;

	for (at = flatidx_first(&s->by_inode, flatidx_hash_u64(inode), &w); at != FLATIDX_END;
	     at = flatidx_next(&s->by_inode, &w))
		if (s->v[at].inode == inode)
			return &s->v[at];
	return NULL;
}

/* The same endpoint, an IPv4 address matching its IPv4-mapped form. */
static int same_ep(unsigned fa, const uint8_t *a, unsigned pa, unsigned fb, const uint8_t *b,
		   unsigned pb)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (pa != pb)
		return 0;
	if (fa == fb)
		return !memcmp(a, b, fa == AF_INET ? 4 : 16);
	if (fa == AF_INET6 && fb == AF_INET)
		return !memcmp(a, mapped, 12) && !memcmp(a + 12, b, 4);
	if (fa == AF_INET && fb == AF_INET6)
		return !memcmp(b, mapped, 12) && !memcmp(b + 12, a, 4);
	return 0;
}

int ledger_sock_is_peer(const struct ledger_sock *ls, unsigned family, const uint8_t *ip,
			unsigned port)
{
	return !(ls->flags & SOCKSHIM_FLAG_PEER_KNOWN) ||
	       (ls->family != AF_INET && ls->family != AF_INET6) ||
	       same_ep(ls->family, ls->peer_ip, ls->peer_port, family, ip, port);
}

static int add_hop(struct ledger_hop *hops, size_t max, size_t *n, const struct ledger_step *st)
{
	struct ledger_hop *h;

	if (*n >= max)
		return -ENOSPC;
	h = &hops[(*n)++];
	h->op = st->op;
	h->pid = st->pid;
	h->fd = st->fd;
	h->arg = st->arg;
	h->ts_ns = st->ts_ns;
	memcpy(h->comm, st->comm, sizeof(h->comm));
	return 0;
}

size_t ledger_path(const struct ledger_sock *s, pid_t pid, int fd, struct ledger_hop *hops,
		   size_t max, int *complete)
{
	pid_t cur_pid = pid;
	int cur_fd = fd; /* -1: any descriptor of cur_pid (after an SCM hop) */
	size_t n = 0, i, j;
	struct ledger_hop t;
	unsigned k;

	*complete = 0;
	/* Walk back from the holder: each step that made (cur_pid, cur_fd)
	 * names where it came from. */
	for (k = s->nsteps; k-- > 0 && !*complete;) {
		const struct ledger_step *st = &s->steps[k];
		int fd_ok = cur_fd < 0 || st->fd == cur_fd;

		switch (st->op) {
		case SOCKSHIM_STEP_BORN:
			if (st->pid == cur_pid && fd_ok) {
				if (add_hop(hops, max, &n, st))
					goto done;
				*complete = 1;
			}
			break;
		case SOCKSHIM_STEP_FORK:
			if (st->arg == cur_pid && fd_ok && st->pid > 0) {
				if (add_hop(hops, max, &n, st))
					goto done;
				cur_pid = st->pid;
				cur_fd = st->fd;
			}
			break;
		case SOCKSHIM_STEP_EXEC:
			if (st->pid == cur_pid && fd_ok && add_hop(hops, max, &n, st))
				goto done;
			break;
		case SOCKSHIM_STEP_DUP:
			if (st->pid == cur_pid && cur_fd >= 0 && st->arg == cur_fd) {
				if (add_hop(hops, max, &n, st))
					goto done;
				cur_fd = st->fd;
			}
			break;
		case SOCKSHIM_STEP_SCM:
			if (st->pid == cur_pid && fd_ok) {
				if (add_hop(hops, max, &n, st))
					goto done;
				if (st->arg <= 0) {
					/* Sender unknown: the path starts here, and if
					 * the ledger says the socket arrived so, that is
					 * its birth. */
					if (s->born == SOCKSHIM_BORN_SCM_RIGHTS &&
					    s->born_pid == st->pid && s->born_fd == st->fd) {
						hops[n - 1].op = SOCKSHIM_STEP_BORN;
						hops[n - 1].arg = SOCKSHIM_BORN_SCM_RIGHTS;
						*complete = 1;
					}
					goto done;
				}
				cur_pid = st->arg;
				cur_fd = -1;
			}
			break;
		default:
			break;
		}
	}
done:
	for (i = 0, j = n ? n - 1 : 0; i < j; i++, j--) {
		t = hops[i];
		hops[i] = hops[j];
		hops[j] = t;
	}
	return n;
}

/* "PID fd FD" */
static void pid_fd(struct fmt_buf *b, pid_t pid, int fd)
{
	ob_i64(b, pid);
	ob_put(b, " fd ", 4);
	ob_i64(b, fd);
}

static void hop_str(struct fmt_buf *b, const struct ledger_hop *h)
{
	switch (h->op) {
	case SOCKSHIM_STEP_BORN:
		ob_str(b, ledger_born_verb((unsigned)h->arg));
		ob_char(b, ' ');
		pid_fd(b, h->pid, h->fd);
		break;
	case SOCKSHIM_STEP_FORK:
		ob_put(b, "fork ", 5);
		ob_i64(b, h->arg);
		break;
	case SOCKSHIM_STEP_EXEC:
		ob_put(b, "exec ", 5);
		if (h->comm[0])
			ob_printable(b, h->comm, sizeof(h->comm));
		else
			ob_char(b, '?');
		break;
	case SOCKSHIM_STEP_DUP:
		ob_put(b, "dup to fd ", 10);
		ob_i64(b, h->arg);
		break;
	case SOCKSHIM_STEP_SCM:
		ob_put(b, "SCM_RIGHTS to ", 14);
		pid_fd(b, h->pid, h->fd);
		break;
	default:
		break;
	}
}

/* What the holder's own record says, when the history does not reach it. */
static void holder_hop_str(struct fmt_buf *b, const struct ledger_holder *h)
{
	switch (h->how) {
	case SOCKSHIM_HOW_FORK:
		fmt_append(b, "fork %d (from %d)", h->pid, h->from_pid);
		break;
	case SOCKSHIM_HOW_EXEC:
		fmt_append(b, "exec in %d", h->pid);
		break;
	case SOCKSHIM_HOW_DUP:
		fmt_append(b, "dup fd %d to fd %d in %d", h->from_fd, h->fd, h->pid);
		break;
	case SOCKSHIM_HOW_SCM:
		fmt_append(b, "SCM_RIGHTS from %d to %d fd %d", h->from_pid, h->pid, h->fd);
		break;
	case SOCKSHIM_HOW_INHERITED:
		fmt_append(b, "found open in %d fd %d", h->pid, h->fd);
		break;
	default:
		fmt_append(b, "held by %d fd %d", h->pid, h->fd);
		break;
	}
}

void ledger_path_str(struct fmt_buf *b, const struct ledger_sock *s, pid_t pid, int fd)
{
	struct ledger_hop hops[SOCKSHIM_STEPS];
	const struct ledger_holder *h;
	size_t n, i;
	int complete;

	n = ledger_path(s, pid, fd, hops, SOCKSHIM_STEPS, &complete);
	if (!complete) {
		/* The holder is the creator itself: nothing is missing. */
		if (!n && s->born_pid > 0 && s->born_pid == pid && s->born_fd == fd) {
			ob_str(b, ledger_born_verb(s->born));
			ob_char(b, ' ');
			pid_fd(b, pid, fd);
			return;
		}
		if (s->born_pid > 0) {
			ob_str(b, ledger_born_verb(s->born));
			ob_char(b, ' ');
			pid_fd(b, s->born_pid, s->born_fd);
			ob_put(b, " -> ", 4);
		}
		ob_put(b, "...", 3);
		if (!n) {
			h = ledger_holder_of(s, pid, fd);
			ob_put(b, " -> ", 4);
			if (h)
				holder_hop_str(b, h);
			else
				fmt_append(b, "held by %d fd %d", pid, fd);
			return;
		}
	}
	for (i = 0; i < n; i++) {
		if (i || !complete)
			ob_put(b, " -> ", 4);
		hop_str(b, &hops[i]);
	}
}

const char *ledger_comm_of(const struct ledger_sock *s, pid_t pid)
{
	unsigned k;

	for (k = s->nsteps; k-- > 0;)
		if (s->steps[k].pid == pid && s->steps[k].comm[0])
			return s->steps[k].comm;
	/* A child that never exec'ed has its parent's name. */
	for (k = s->nsteps; k-- > 0;)
		if (s->steps[k].op == SOCKSHIM_STEP_FORK && s->steps[k].arg == pid &&
		    s->steps[k].comm[0])
			return s->steps[k].comm;
	if (pid == s->born_pid && s->born_comm[0])
		return s->born_comm;
	return NULL;
}

const struct ledger_holder *ledger_holder_of(const struct ledger_sock *s, pid_t pid, int fd)
{
	unsigned i;

	for (i = 0; i < s->nholders; i++)
		if (s->holders[i].pid == pid && s->holders[i].fd == fd)
			return &s->holders[i];
	return NULL;
}

int ledger_realtime(const struct ledger_snap *s, uint64_t ts, int64_t *out)
{
	return fmt_realtime(out, ts, s->created_real_ns, s->created_mono_ns);
}

int ledger_boottime(const struct ledger_snap *s, uint64_t ts, int64_t *out)
{
	return fmt_realtime(out, ts, s->created_boot_ns, s->created_mono_ns);
}
