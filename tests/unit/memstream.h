/* A memory stream the unit tests of the command's printers write to and
 * then read as a string. Include after <cmocka.h>. */
#ifndef SOCKSHIM_MEMSTREAM_H
#define SOCKSHIM_MEMSTREAM_H

#include <stdio.h>
#include <stdlib.h>

struct mem {
	FILE *f;
	char *p;
	size_t n;
};

static inline void mem_open(struct mem *m)
{
	m->p = NULL;
	m->n = 0;
	m->f = open_memstream(&m->p, &m->n);
	assert_non_null(m->f);
}

static inline const char *mem_text(struct mem *m)
{
	assert_int_equal(fflush(m->f), 0);
	return m->p;
}

static inline void mem_close(struct mem *m)
{
	fclose(m->f);
	free(m->p);
}

#endif
