/* timewait's model: the four-address index of the ledger, the groups of
 * TIME_WAIT sockets and their arithmetic. Pure: no I/O, no clock; every
 * input is passed in, so the unit tests drive it with made-up sockets. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tw_model.h"

/* A ledger entry by its four addresses. */
struct tw_tuple_ent {
	uint8_t key[36]; /* local ip, peer ip, local port, peer port */
	const struct ledger_sock *ls;
};

enum tw_side tw_side_of(unsigned born)
{
	if (born == SOCKSHIM_BORN_CONNECT)
		return TW_CLIENT;
	if (born == SOCKSHIM_BORN_ACCEPT)
		return TW_SERVER;
	return TW_OTHER;
}

const char *tw_side_name(enum tw_side side)
{
	return side == TW_CLIENT ? "client" : side == TW_SERVER ? "server" : "unknown";
}

const char *tw_remedy(enum tw_side side)
{
	switch (side) {
	case TW_CLIENT:
		return "this client closes first: reuse connections (keep-alive, a connection "
		       "pool) instead of one per request; net.ipv4.tcp_tw_reuse=1 lets outbound "
		       "connections take ports still in TIME_WAIT";
	case TW_SERVER:
		return "this server closes first: let the clients close first, or keep "
		       "connections alive (keep-alive) so that fewer are closed";
	default:
		return "this side closes first: reuse connections, or let the peer close first";
	}
}

void tw_norm_ip(uint8_t out[16], unsigned family, const uint8_t ip[16])
{
	if (family == AF_INET) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, ip, 4);
	} else {
		memcpy(out, ip, 16);
	}
}

void tw_gkey_make(struct tw_gkey *k, const struct ledger_sock *ls)
{
	enum tw_side side = tw_side_of(ls->born);

	memset(k, 0, sizeof(*k));
	k->side = side;
	tw_norm_ip(k->lip, ls->family, ls->local_ip);
	tw_norm_ip(k->pip, ls->family, ls->peer_ip);
	/* The fixed end keeps its port: a server's listening port, the
	 * service a client calls. */
	if (side != TW_CLIENT)
		k->lport = ls->local_port;
	if (side != TW_SERVER)
		k->pport = ls->peer_port;
	k->callsite = ls->callsite_offset ? ls->callsite_offset : ls->callsite;
	if (ls->callsite_offset)
		memcpy(k->module, ls->callsite_module, sizeof(ls->callsite_module) - 1);
}

double tw_rate(size_t births, uint64_t first_ns, uint64_t now_ns)
{
	uint64_t span;

	if (!births)
		return 0;
	span = now_ns > first_ns ? now_ns - first_ns : 0;
	if (span < TW_MIN_SPAN_NS)
		span = TW_MIN_SPAN_NS;
	if (span > TW_WINDOW_NS)
		span = TW_WINDOW_NS;
	return (double)births * (double)TW_NS_PER_SEC / (double)span;
}

double tw_port_share(size_t count, uint64_t range)
{
	return range ? (double)count / (double)range : 0;
}

/* Ports taken at time T (s) from now: the sockets already there that are
 * left, plus every new one, until the first new ones leave at 60 s. Find
 * the first T where that reaches RANGE, segment by segment between the
 * departures of the old ones. */
double tw_exhaustion_s(uint64_t range, double rate, const uint32_t *left_ms, size_t n)
{
	double lo, hi, t;
	size_t i;

	if (n >= range)
		return 0;
	if (rate <= 0)
		return -1;
	for (i = 0; i <= n; i++) {
		lo = i ? left_ms[i - 1] / 1000.0 : 0;
		hi = i < n ? left_ms[i] / 1000.0 : TW_LEN_MS / 1000.0;
		if (hi > TW_LEN_MS / 1000.0)
			hi = TW_LEN_MS / 1000.0;
		if (lo >= TW_LEN_MS / 1000.0)
			break;
		t = ((double)range - (double)(n - i)) / rate;
		if (t < lo)
			t = lo;
		if (t < hi || (i == n && t <= hi))
			return t;
	}
	return -1;
}

int tw_parse_port_range(const char *text, unsigned *lo, unsigned *hi)
{
	unsigned long a, b;
	char *end;

	a = strtoul(text, &end, 10);
	if (end == text || (*end != ' ' && *end != '\t'))
		return -EINVAL;
	text = end;
	b = strtoul(text, &end, 10);
	if (end == text || (*end && *end != '\n') || a > 65535 || b > 65535 || a > b)
		return -EINVAL;
	*lo = (unsigned)a;
	*hi = (unsigned)b;
	return 0;
}

void tw_model_init(struct tw_model *t)
{
	memset(t, 0, sizeof(*t));
}

void tw_model_free(struct tw_model *t)
{
	struct tw_group *g, *gn;
	struct tw_dest *d, *dn;

	flatidx_free(&t->by_tuple);
	HASH_CLEAR(hh, t->groups);
	HASH_CLEAR(hh, t->dests);
	free(t->tuple_pool);
	for (g = t->group_list; g; g = gn) {
		gn = g->next;
		free(g->pids);
		free(g);
	}
	for (d = t->dest_list; d; d = dn) {
		dn = d->next;
		free(d->left_ms);
		free(d);
	}
	free(t->sorted);
	tw_model_init(t);
}

static void tuple_key(uint8_t key[36], unsigned family, const uint8_t *lip, unsigned lport,
		      const uint8_t *pip, unsigned pport)
{
	tw_norm_ip(key, family, lip);
	tw_norm_ip(key + 16, family, pip);
	key[32] = (uint8_t)(lport >> 8);
	key[33] = (uint8_t)lport;
	key[34] = (uint8_t)(pport >> 8);
	key[35] = (uint8_t)pport;
}

static int addressed_tcp(const struct ledger_sock *ls)
{
	unsigned both = SOCKSHIM_FLAG_LOCAL_KNOWN | SOCKSHIM_FLAG_PEER_KNOWN;

	return ls->socktype == SOCK_STREAM && (ls->family == AF_INET || ls->family == AF_INET6) &&
	       (ls->flags & both) == both && ls->local_port && ls->peer_port;
}

/* The entry of KEY (36 bytes, hashed HASH), or NULL. */
static struct tw_tuple_ent *tuple_find(const struct tw_model *t, const uint8_t *key,
				       uint64_t hash)
{
	struct flatidx_walk w;
	uint32_t at;

	for (at = flatidx_first(&t->by_tuple, hash, &w); at != FLATIDX_END;
	     at = flatidx_next(&t->by_tuple, &w))
		if (!memcmp(t->tuple_pool[at].key, key, sizeof(t->tuple_pool[at].key)))
			return &t->tuple_pool[at];
	return NULL;
}

int tw_index(struct tw_model *t, const struct ledger_snap *snap)
{
	struct tw_tuple_ent *e;
	size_t i, n = 0;

	t->tuple_pool = calloc(snap->n ? snap->n : 1, sizeof(*t->tuple_pool));
	if (!t->tuple_pool || flatidx_init(&t->by_tuple, snap->n))
		return -ENOMEM;
	for (i = 0; i < snap->n; i++) {
		const struct ledger_sock *ls = &snap->v[i];
		uint8_t key[36];
		uint64_t hash;

		if (!addressed_tcp(ls))
			continue;
		tuple_key(key, ls->family, ls->local_ip, ls->local_port, ls->peer_ip,
			  ls->peer_port);
		hash = flatidx_hash_bytes(key, sizeof(key));
		e = tuple_find(t, key, hash);
		if (e) {
			if (ls->born_ns > e->ls->born_ns)
				e->ls = ls;
			continue;
		}
		e = &t->tuple_pool[n];
		memcpy(e->key, key, sizeof(key));
		e->ls = ls;
		flatidx_put(&t->by_tuple, hash, (uint32_t)n++);
	}
	return 0;
}

const struct ledger_sock *tw_match(const struct tw_model *t, const struct sockdiag_sock *k)
{
	struct tw_tuple_ent *e;
	uint8_t key[36];

	tuple_key(key, k->family, k->src, k->sport, k->dst, k->dport);
	e = tuple_find(t, key, flatidx_hash_bytes(key, sizeof(key)));
	return e ? e->ls : NULL;
}

/* Count K toward its destination. */
static int dest_add(struct tw_model *t, const struct sockdiag_sock *k)
{
	struct tw_dest *d;
	uint8_t key[34];

	tw_norm_ip(key, k->family, k->src);
	tw_norm_ip(key + 16, k->family, k->dst);
	key[32] = (uint8_t)(k->dport >> 8);
	key[33] = (uint8_t)k->dport;
	HASH_FIND(hh, t->dests, key, sizeof(key), d);
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d)
			return -ENOMEM;
		memcpy(d->key, key, sizeof(key));
		d->next = t->dest_list;
		t->dest_list = d;
		HASH_ADD(hh, t->dests, key, sizeof(d->key), d);
	}
	if (d->count == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 16;
		uint32_t *v = realloc(d->left_ms, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		d->left_ms = v;
		d->cap = cap;
	}
	d->left_ms[d->count++] = k->timer ? k->expires_ms : TW_LEN_MS;
	return 0;
}

static int pid_add(struct tw_group *g, const struct ledger_sock *ls)
{
	size_t i;

	for (i = 0; i < g->npids; i++) {
		if (g->pids[i].pid == ls->born_pid) {
			g->pids[i].count++;
			return 0;
		}
	}
	if (g->npids == g->pids_cap) {
		size_t cap = g->pids_cap ? 2 * g->pids_cap : 4;
		struct tw_pid *v = realloc(g->pids, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		g->pids = v;
		g->pids_cap = cap;
	}
	g->pids[g->npids].pid = ls->born_pid;
	g->pids[g->npids].count = 1;
	g->pids[g->npids].ls = ls;
	g->npids++;
	return 0;
}

int tw_add(struct tw_model *t, const struct sockdiag_sock *k, const struct ledger_sock *ls)
{
	struct tw_gkey key;
	struct tw_group *g;
	int rc = dest_add(t, k);

	if (rc)
		return rc;
	if (!ls) {
		t->unattributed++;
		return 0;
	}
	tw_gkey_make(&key, ls);
	HASH_FIND(hh, t->groups, &key, sizeof(key), g);
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g)
			return -ENOMEM;
		g->key = key;
		g->first = ls;
		g->next = t->group_list;
		t->group_list = g;
		HASH_ADD(hh, t->groups, key, sizeof(g->key), g);
		t->ngroups++;
	}
	g->count++;
	t->attributed++;
	return pid_add(g, ls);
}

static int by_count(const void *a, const void *b)
{
	const struct tw_group *x = *(struct tw_group *const *)a, *y = *(struct tw_group *const *)b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return memcmp(&x->key, &y->key, sizeof(x->key));
}

static int by_left(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Each group's births in the window: every entry of the ledger, held or
 * released, in TIME_WAIT or not (a port the kernel reused, a connection
 * still open). */
static void count_births(struct tw_model *t, const struct ledger_snap *snap, uint64_t now_ns)
{
	struct tw_gkey key;
	struct tw_group *g;
	unsigned sides = 0; /* bit per side some group has: others match none */
	size_t i;

	for (g = t->group_list; g; g = g->next)
		sides |= 1u << g->key.side;
	for (i = 0; i < snap->n; i++) {
		const struct ledger_sock *ls = &snap->v[i];

		if (!(sides & 1u << tw_side_of(ls->born)) || !addressed_tcp(ls) ||
		    ls->born_ns > now_ns || now_ns - ls->born_ns > TW_WINDOW_NS)
			continue;
		tw_gkey_make(&key, ls);
		HASH_FIND(hh, t->groups, &key, sizeof(key), g);
		if (!g)
			continue;
		if (!g->births || ls->born_ns < g->first_birth)
			g->first_birth = ls->born_ns;
		g->births++;
	}
}

static const struct tw_dest *dest_of(const struct tw_model *t, const struct tw_gkey *k)
{
	struct tw_dest *d;
	uint8_t key[34];

	memcpy(key, k->lip, 16);
	memcpy(key + 16, k->pip, 16);
	key[32] = (uint8_t)(k->pport >> 8);
	key[33] = (uint8_t)k->pport;
	HASH_FIND(hh, t->dests, key, sizeof(key), d);
	return d;
}

int tw_finish(struct tw_model *t, const struct ledger_snap *snap, uint64_t range,
	      uint64_t now_ns)
{
	struct tw_group *g;
	struct tw_dest *d;
	size_t n = 0;

	for (d = t->dest_list; d; d = d->next)
		if (d->count)
			qsort(d->left_ms, d->count, sizeof(*d->left_ms), by_left);
	count_births(t, snap, now_ns);
	t->sorted = calloc(t->ngroups ? t->ngroups : 1, sizeof(struct tw_group *));
	if (!t->sorted)
		return -ENOMEM;
	for (g = t->group_list; g; g = g->next) {
		g->rate = tw_rate(g->births, g->first_birth, now_ns);
		g->share = -1;
		g->exhaustion_s = -1;
		if (g->key.side == TW_CLIENT) {
			g->dest = dest_of(t, &g->key);
			if (g->dest) {
				g->share = tw_port_share(g->dest->count, range);
				g->exhaustion_s = tw_exhaustion_s(range, g->rate, g->dest->left_ms,
								  g->dest->count);
			}
		}
		t->sorted[n++] = g;
	}
	qsort(t->sorted, n, sizeof(struct tw_group *), by_count);
	return 0;
}
