/* Naming and opening a session for the reading subcommands, with error
 * messages that name the session, the reason and the fix. */
#ifndef SOCKSHIM_SESSION_H
#define SOCKSHIM_SESSION_H

#include <stddef.h>

#include "sockshim/segment.h"

/* The session to use: OPT (from --session) if given, else
 * $SOCKSHIM_SESSION if set and not empty, else "default". An invalid name
 * is mapped by seg_name_map, as the shim maps it, and the command says
 * once on stderr which name it uses instead (the mapped name lives in a
 * static buffer: one session per command). Always a valid name. */
const char *session_choose(const char *opt);

/* S (a session name, or any string from the user or the environment) for
 * a message into BUF: control characters, backslash and bytes that are
 * not UTF-8 as \xHH (ob_printable). Cut, ending in "...", after as many
 * bytes as surely fit escaped: (LEN - 4) / 4. */
void session_printable(char *buf, size_t len, const char *s);

/* 0 when NAME is a valid session name; else says why on stderr, -EINVAL. */
int session_check_name(const char *name);

/* The path of this user's session NAME into BUF. 0 or -ENAMETOOLONG. */
int session_path(char *buf, size_t len, const char *name);

/* Open session NAME read-only. On failure, says on stderr what is wrong
 * and how to fix it, and returns -errno. */
int session_open(const char *name, struct seg_map *m);

/* What the reading subcommands do first: choose the session (OPT as for
 * session_choose) into *NAME and open it. EXIT_OK, or EXIT_FAIL after
 * saying why on stderr. */
int session_open_chosen(const char *opt, const char **name, struct seg_map *m);

#endif
