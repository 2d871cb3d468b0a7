/* Unit tests of tools/stats_table.c and tools/stats_json.c on listeners
 * made by hand: the poll token's figures (waits with it, hand-offs to a
 * waiting worker) where each output puts them, per listener. The whole
 * output is checked against a real segment by the integration tests
 * (test_stats.py); these pin what the printers do with each value. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "memstream.h"
#include "stats_print.h"

/* Listener E on 127.0.0.1:PORT in MODE, nobody holding anything, no
 * worker, the kernel not asked. */
static void entry_init(struct stats_entry *e, uint64_t inode, unsigned port, unsigned mode)
{
	memset(e, 0, sizeof(*e));
	e->s.inode = inode;
	e->s.family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", e->s.local_ip), 1);
	e->s.local_port = (uint16_t)port;
	e->s.mode = (uint16_t)mode;
	e->s.listen_backlog = SOCKSHIM_BACKLOG_UNKNOWN;
	e->closed = -1;
	stats_addr(e->addr, sizeof(e->addr), &e->s);
}

static void frame_init(struct stats_frame *f, struct stats_opts *o, struct stats_entry *v,
		       size_t n)
{
	memset(o, 0, sizeof(*o));
	o->session = "web";
	memset(f, 0, sizeof(*f));
	f->session = "web";
	f->o = o;
	f->v = v;
	f->n = n;
	f->now_ns = 1000000000;
}

/* Three listeners: a serialized poll pool whose token was handed over
 * (37 of 40 waits), one whose waits handed nothing over (a process
 * without doorbells), and one under observe (no token at all). */
static struct stats_entry *three_listeners(void)
{
	struct stats_entry *v = calloc(3, sizeof(*v));

	assert_non_null(v);
	entry_init(&v[0], 4242, 8080, SOCKSHIM_ACCEPT_SERIALIZE);
	v[0].s.token_waits = 40;
	v[0].s.token_handoffs = 37;
	entry_init(&v[1], 4343, 8081, SOCKSHIM_ACCEPT_SERIALIZE);
	v[1].s.token_waits = 3;
	entry_init(&v[2], 4444, 8082, SOCKSHIM_ACCEPT_OBSERVE);
	return v;
}

/* The block of the listener on PORT in TEXT, up to the next block. */
static char *block_of(const char *text, unsigned port)
{
	char head[64];
	const char *at, *end;
	char *b;

	snprintf(head, sizeof(head), "LISTENER 127.0.0.1:%u ", port);
	at = strstr(text, head);
	assert_non_null(at);
	end = strstr(at + 1, "\nLISTENER ");
	b = strndup(at, end ? (size_t)(end - at) + 1 : strlen(at));
	assert_non_null(b);
	return b;
}

static void test_table_token_handoffs(void **state)
{
	struct stats_entry *v = three_listeners();
	struct stats_opts o;
	struct stats_frame f;
	struct mem m;
	char *b;

	(void)state;
	frame_init(&f, &o, v, 3);
	mem_open(&m);
	stats_draw_table(m.f, &f);
	mem_text(&m);

	b = block_of(m.p, 8080);
	assert_non_null(strstr(b, "\n  gated by: the poll token (poll/select), 40 waits with it, "
				  "37 hand-offs to a waiting worker\n"));
	free(b);
	/* A token that was never handed over says so: 0. */
	b = block_of(m.p, 8081);
	assert_non_null(strstr(b, "\n  gated by: the poll token (poll/select), 3 waits with it, "
				  "0 hand-offs to a waiting worker\n"));
	free(b);
	/* Observe has no token: no gating line, no token figures. */
	b = block_of(m.p, 8082);
	assert_null(strstr(b, "gated by"));
	assert_null(strstr(b, "hand-off"));
	free(b);
	mem_close(&m);
	free(v);
}

static void test_json_token_handoffs(void **state)
{
	static const char *const want[] = {
		"\"poll_token_waits\":40,\"poll_token_handoffs\":37,",
		"\"poll_token_waits\":3,\"poll_token_handoffs\":0,",
		"\"poll_token_waits\":0,\"poll_token_handoffs\":0,",
	};
	struct stats_entry *v = three_listeners();
	struct stats_opts o;
	struct stats_frame f;
	struct mem m;
	size_t i;

	(void)state;
	frame_init(&f, &o, v, 3);
	o.format = FMT_JSON;
	for (i = 0; i < 3; i++) {
		const char *t;

		mem_open(&m);
		stats_json_listener(m.f, &f, &v[i]);
		t = mem_text(&m);
		/* One object on one line, the key once. */
		assert_int_equal(strchr(t, '\n') - t + 1, (long)strlen(t));
		assert_non_null(strstr(t, want[i]));
		assert_null(strstr(strstr(t, "poll_token_handoffs") + 1, "poll_token_handoffs"));
		mem_close(&m);
	}
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_token_handoffs),
		cmocka_unit_test(test_json_token_handoffs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
