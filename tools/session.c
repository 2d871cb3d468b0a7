/* Session names and read-only opening for the subcommands. seg_open does
 * the checking; this file turns its answer into a message with a fix, and
 * maps an invalid name as the shim does (seg_name_map). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"
#include "session.h"

/* Room for a session name (or 64 bytes of an invalid one), escaped. */
#define SHOWN_LEN (4 * 64 + 8)

void session_printable(char *buf, size_t len, const char *s)
{
	/* Each byte may take 4 ("\xff"); room is kept for "..." and NUL. */
	size_t max = len > 8 ? (len - 4) / 4 : 0;
	struct fmt_buf b;

	fmt_buf_init(&b, buf, len);
	ob_printable(&b, s, max);
	if (strnlen(s, max + 1) > max)
		fmt_append(&b, "...");
}

const char *session_choose(const char *opt)
{
	/* The mapped name must outlive the call: it is the session's name
	 * for the rest of the command (cmd_events asks twice). */
	static char mapped[SEG_NAME_BUF];
	static int said;
	const char *env = getenv("SOCKSHIM_SESSION"), *raw;
	char shown[SHOWN_LEN];

	if (opt)
		raw = opt;
	else if (env && env[0])
		raw = env;
	else
		return SOCKSHIM_DEFAULT_SESSION;
	if (seg_name_map(raw, mapped) == 0)
		return raw;
	if (!said) {
		said = 1;
		session_printable(shown, sizeof(shown), raw);
		fprintf(stderr,
			"sockshim: session name \"%s\"%s is not valid (" SEG_NAME_RULE
			"); using \"%s\"\n",
			shown, raw == opt ? "" : " (from $SOCKSHIM_SESSION)", mapped);
	}
	return mapped;
}

int session_check_name(const char *name)
{
	char shown[SHOWN_LEN];

	if (seg_name_check(name) == 0)
		return 0;
	session_printable(shown, sizeof(shown), name);
	fprintf(stderr, "sockshim: \"%s\" is not a valid session name (" SEG_NAME_RULE ")\n",
		shown);
	return -EINVAL;
}

int session_path(char *buf, size_t len, const char *name)
{
	return seg_path(buf, len, geteuid(), name);
}

int session_open(const char *name, struct seg_map *m)
{
	char path[256], why[512];
	struct stat st;
	int rc;

	rc = session_check_name(name);
	if (rc)
		return rc;
	rc = session_path(path, sizeof(path), name);
	if (rc) {
		fprintf(stderr, "sockshim: session name \"%s\" is too long\n", name);
		return rc;
	}
	why[0] = 0;
	rc = seg_open(name, 0, m, why, sizeof(why));
	switch (rc) {
	case 0:
		break;
	case -ENOENT:
		fprintf(stderr,
			"sockshim: session \"%s\" not found (no %s); start one with "
			"sockshim run --session %s -- CMD\n",
			name, path, name);
		break;
	case -EPERM:
	case -EACCES: /* another user's file, 0600: we cannot even open it */
		if (lstat(path, &st) == 0 && st.st_uid != geteuid())
			fprintf(stderr,
				"sockshim: refusing session \"%s\": %s belongs to uid %u, not "
				"to you (uid %u); have it removed (by its owner or root) or "
				"use another --session name\n",
				name, path, (unsigned)st.st_uid, (unsigned)geteuid());
		else if (rc == -EPERM)
			fprintf(stderr,
				"sockshim: refusing session \"%s\": %s; remove it with "
				"sockshim clean --session %s\n",
				name, why, name);
		else
			fprintf(stderr, "sockshim: cannot open session \"%s\": %s\n", name, why);
		break;
	case -ELOOP:
		fprintf(stderr,
			"sockshim: refusing session \"%s\": %s is a symbolic link, not a "
			"segment; remove it with sockshim clean --session %s\n",
			name, path, name);
		break;
	case -EPROTO:
		/* Name the file unless the reason already does. */
		fprintf(stderr, "sockshim: refusing session \"%s\"", name);
		if (!strstr(why, path))
			fprintf(stderr, " (%s)", path);
		fprintf(stderr, ": %s; remove it with sockshim clean --session %s\n", why, name);
		break;
	default:
		fprintf(stderr, "sockshim: cannot open session \"%s\": %s\n", name,
			why[0] ? why : strerror(-rc));
		break;
	}
	return rc;
}

int session_open_chosen(const char *opt, const char **name, struct seg_map *m)
{
	*name = session_choose(opt);
	return session_open(*name, m) ? EXIT_FAIL : EXIT_OK;
}
