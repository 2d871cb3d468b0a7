/* `sockshim run`: creates (or joins) a session, starts CMD with the shim
 * preloaded, forwards termination signals to it, and exits as CMD did.
 * It fails open as the shim does: without a usable session CMD still
 * runs (unrecorded); only a bad command line or a broken installation
 * keeps CMD from starting. After CMD starts, its exit status is ours. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"
#include "interposable.h"
#include "session.h"
#include "shm_users.h"
#include "sockshim/config.h"

#ifndef SOCKSHIM_LIBDIR
#define SOCKSHIM_LIBDIR "/usr/local/lib/sockshim"
#endif

#define LIB_NAME "libsockshim.so"
/* What a shell returns when it cannot find or cannot execute a command. */
#define EXIT_NOT_FOUND 127
/* run's own failures, told apart from CMD's statuses as env(1) and
 * timeout(1) do. */
#define EXIT_RUN_FAILED 125
#define EXIT_CANNOT_EXEC 126
/* getopt_long's code for --strict, which has no short form. */
#define OPT_STRICT 0x100

struct run_opts {
	const char *session;
	uint32_t ring;
	int ring_given; /* --ring-events was on the command line */
	uint32_t max_sockets;
	const char *accept; /* --accept MODE, or NULL: as SOCKSHIM_ACCEPT says */
	int keep;
	int strict; /* no session: refuse (125) instead of running CMD unrecorded */
	char **cmd;
};

/* Signals we pass on to CMD: termination, and the ones servers use for
 * graceful stops and reloads (nginx QUIT/USR1/USR2, apache WINCH/USR1). */
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

static void usage(FILE *f)
{
	fputs("Usage: sockshim run [--session NAME] [--ring-events N] [--max-sockets N]\n"
	      "                    [--accept observe|serialize|off] [--keep] [--strict]\n"
	      "                    -- CMD [ARGS...]\n"
	      "\n"
	      "Run CMD with libsockshim.so preloaded; its processes record their socket\n"
	      "events into the session, which 'sockshim events' reads.\n"
	      "\n"
	      "  -s, --session NAME     the session (default: $SOCKSHIM_SESSION, else \"default\");\n"
	      "                         an invalid name is mapped to a valid one, as the\n"
	      "                         shim maps it, and the name used is said\n"
	      "  -n, --ring-events N    ring size in events: a power of two, 1024..4194304\n"
	      "                         (default: $SOCKSHIM_RING_EVENTS, else 65536)\n"
	      "  -m, --max-sockets N    sockets the ledger holds: a power of two, 256..1048576\n"
	      "                         (default: $SOCKSHIM_MAX_SOCKETS, else 16384)\n"
	      "  -a, --accept MODE      accept() across workers: observe (count, the default),\n"
	      "                         serialize (one waiter per listener), off\n"
	      "                         (default: $SOCKSHIM_ACCEPT, else observe)\n"
	      "  -k, --keep             keep the session after CMD exits\n"
	      "      --strict           refuse (exit 125, CMD not started) when the session\n"
	      "                         cannot be created or joined\n"
	      "  -h, --help             this text\n"
	      "\n"
	      "When the session cannot be created or joined (" SOCKSHIM_SHM_DIR " full, read-only\n"
	      "or missing; a segment in the way that cannot be used or replaced), CMD runs\n"
	      "anyway, without the shim and unrecorded, after one warning; --strict refuses\n"
	      "instead. A bad command line (exit 2) or a broken installation (libsockshim.so\n"
	      "not found or not preloadable: exit 125) always keeps CMD from starting.\n"
	      "\n"
	      "Exits with CMD's status (128+N if killed by signal N), 127 if CMD is not\n"
	      "found, 126 if it cannot be executed, 125 if sockshim fails before CMD starts.\n",
	      f);
}

#define bad_usage(...) (cli_usage_error("run", usage, __VA_ARGS__), EXIT_USAGE)

/* Room for a string from the environment or the command line (a path),
 * shown by printable(): 1024 bytes of it, escaped. */
#define SHOWN_LEN (4 * 1024 + 8)

/* S escaped for stderr (session_printable) in BUF, SHOWN_LEN bytes. */
static const char *printable(char buf[SHOWN_LEN], const char *s)
{
	session_printable(buf, SHOWN_LEN, s);
	return buf;
}

/* getenv for the sizes only: what else the environment sets is the
 * shim's to judge (and to warn about) in the program. */
static const char *size_env(const char *name)
{
	if (strcmp(name, "SOCKSHIM_RING_EVENTS") != 0 && strcmp(name, "SOCKSHIM_MAX_SOCKETS") != 0)
		return NULL;
	return getenv(name);
}

static int parse_opts(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
		{"session", required_argument, NULL, 's'},
		{"ring-events", required_argument, NULL, 'n'},
		{"max-sockets", required_argument, NULL, 'm'},
		{"accept", required_argument, NULL, 'a'},
		{"keep", no_argument, NULL, 'k'},
		{"strict", no_argument, NULL, OPT_STRICT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct shim_config env;
	char warn[512];
	uint32_t v32;
	int c;

	memset(o, 0, sizeof(*o));
	/* The sizes the environment asks for, read as the shim reads them. */
	if (config_parse(&env, size_env, warn, sizeof(warn)))
		fprintf(stderr, "sockshim: warning: %s\n", warn);
	o->ring = env.ring_capacity;
	o->max_sockets = env.ledger_capacity;
	opterr = 0;
	optind = 1;
	/* '+': options end at CMD, whose own options are not ours. */
	while ((c = getopt_long(argc, argv, "+:s:n:m:a:kh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->session = optarg;
			break;
		case 'n':
			if (config_parse_pow2(optarg, SOCKSHIM_RING_MIN_SHIFT,
					      SOCKSHIM_RING_MAX_SHIFT, &v32))
				return bad_usage("--ring-events must be a power of two in "
						 "%d..%d, not '%s'",
						 1 << SOCKSHIM_RING_MIN_SHIFT,
						 1 << SOCKSHIM_RING_MAX_SHIFT, optarg);
			o->ring = v32;
			o->ring_given = 1;
			break;
		case 'm':
			if (config_parse_pow2(optarg, SOCKSHIM_LEDGER_MIN_SHIFT,
					      SOCKSHIM_LEDGER_MAX_SHIFT, &v32))
				return bad_usage("--max-sockets must be a power of two in "
						 "%d..%d, not '%s'",
						 1 << SOCKSHIM_LEDGER_MIN_SHIFT,
						 1 << SOCKSHIM_LEDGER_MAX_SHIFT, optarg);
			o->max_sockets = v32;
			break;
		case 'a':
			if (strcmp(optarg, "observe") != 0 && strcmp(optarg, "serialize") != 0 &&
			    strcmp(optarg, "off") != 0)
				return bad_usage("--accept must be observe, serialize or off, not '%s'",
						 optarg);
			o->accept = optarg;
			break;
		case 'k':
			o->keep = 1;
			break;
		case OPT_STRICT:
			o->strict = 1;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			cli_bad_option("run", usage, c, argv);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return bad_usage("no command given; write it after '--'");
	o->cmd = argv + optind;
	return 0;
}

/* The shim's path: $SOCKSHIM_LIB, else next to our executable (build
 * tree), else ../lib/sockshim beside it (installed), else the configured
 * library directory. 0, or -ENOENT after saying where we looked. */
static int find_lib(char *out, size_t len)
{
	const char *env = getenv("SOCKSHIM_LIB");
	char exe[PATH_MAX], tried[3][PATH_MAX + 32], *dir, shown[SHOWN_LEN];
	ssize_t n;
	int i, count = 0;

	if (len < PATH_MAX) /* realpath's contract */
		return -EINVAL;
	if (env && env[0]) {
		if (!realpath(env, out) || access(out, R_OK) < 0) {
			fprintf(stderr,
				"sockshim: SOCKSHIM_LIB=%s: %s; point it at " LIB_NAME
				" or unset it\n",
				printable(shown, env), strerror(errno));
			return -ENOENT;
		}
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		dir = dirname(exe);
		snprintf(tried[count++], sizeof(tried[0]), "%s/" LIB_NAME, dir);
		snprintf(tried[count++], sizeof(tried[0]), "%s/../lib/sockshim/" LIB_NAME, dir);
	}
	snprintf(tried[count++], sizeof(tried[0]), SOCKSHIM_LIBDIR "/" LIB_NAME);
	for (i = 0; i < count; i++)
		if (access(tried[i], R_OK) == 0 && realpath(tried[i], out))
			return 0;
	fprintf(stderr, "sockshim: cannot find " LIB_NAME " (looked for");
	for (i = 0; i < count; i++)
		fprintf(stderr, "%s %s", i ? (i + 1 == count ? " and" : ",") : "", tried[i]);
	fprintf(stderr, "); build it with 'make', or set SOCKSHIM_LIB to its path\n");
	return -ENOENT;
}

/* 0 when LIB can go into LD_PRELOAD; else says why, -EINVAL. */
static int lib_preloadable(const char *lib)
{
	char shown[SHOWN_LEN];

	/* The loader splits LD_PRELOAD at blanks and colons. */
	if (!strpbrk(lib, ": \t"))
		return 0;
	fprintf(stderr,
		"sockshim: cannot preload %s: LD_PRELOAD cannot hold a path with "
		"spaces or colons; move or link it elsewhere and set SOCKSHIM_LIB\n",
		printable(shown, lib));
	return -EINVAL;
}

/* LD_PRELOAD = LIB (lib_preloadable), then whatever was preloaded
 * already; SOCKSHIM_* for the session NAME and the options. */
static int set_env(const char *lib, const struct run_opts *o, const char *name)
{
	const char *old = getenv("LD_PRELOAD");
	char ring[16], socks[16], *val = NULL;
	int rc = 0;

	if (old && old[0]) {
		if (asprintf(&val, "%s:%s", lib, old) < 0)
			return -ENOMEM;
	} else {
		val = strdup(lib);
		if (!val)
			return -ENOMEM;
	}
	/* The sizes in effect: a value we warned about is not warned about
	 * again by every process the command starts. */
	snprintf(ring, sizeof(ring), "%u", o->ring);
	snprintf(socks, sizeof(socks), "%u", o->max_sockets);
	if (setenv("LD_PRELOAD", val, 1) || setenv("SOCKSHIM_SESSION", name, 1) ||
	    setenv("SOCKSHIM_RING_EVENTS", ring, 1) || setenv("SOCKSHIM_MAX_SOCKETS", socks, 1) ||
	    (o->accept && setenv("SOCKSHIM_ACCEPT", o->accept, 1)))
		rc = -errno;
	free(val);
	return rc;
}

static void warn_interposable(const char *cmd)
{
	char file[SHOWN_LEN], interp[SHOWN_LEN];
	struct interp_report rep;
	unsigned bit;

	if (interp_check(cmd, getenv("PATH"), getuid(), getgid(), &rep))
		return; /* not found or unreadable: exec will say so */
	for (bit = 1; bit <= INTERP_GO; bit <<= 1) {
		if (!(rep.problems & bit))
			continue;
		if (rep.interp[0])
			fprintf(stderr,
				"sockshim: warning: %s runs %s, which %s\n",
				printable(file, rep.file), printable(interp, rep.interp),
				interp_problem_text(bit));
		else
			fprintf(stderr,
				"sockshim: warning: %s %s\n",
				printable(file, rep.file), interp_problem_text(bit));
	}
}

/* "2 processes (pids 10, 11)" into B. */
static void users_text(struct fmt_buf *b, int count, const pid_t pids[SHM_USERS_PIDS])
{
	int i;

	fmt_append(b, "%d process%s (pid%s ", count, count == 1 ? "" : "es",
		   count == 1 ? "" : "s");
	for (i = 0; i < count && i < SHM_USERS_PIDS; i++)
		fmt_append(b, "%s%d", i ? ", " : "", (int)pids[i]);
	fmt_append(b, "%s)", count > SHM_USERS_PIDS ? ", ..." : "");
}

static void say_users(int count, const pid_t pids[SHM_USERS_PIDS])
{
	char buf[256];
	struct fmt_buf b;

	fmt_buf_init(&b, buf, sizeof(buf));
	users_text(&b, count, pids);
	fputs(buf, stderr);
}

/* The fix when the session file cannot be created, for the errno. */
static const char *create_fix(int err)
{
	switch (err) {
	case EROFS:
		return "remount " SOCKSHIM_SHM_DIR " read-write";
	case ENOSPC:
	case EDQUOT:
		return "free space in " SOCKSHIM_SHM_DIR
		       " or use a smaller --ring-events or --max-sockets";
	case ENOENT:
	case ENOTDIR:
		return "mount a tmpfs on " SOCKSHIM_SHM_DIR;
	case EACCES:
	case EPERM:
		return "make " SOCKSHIM_SHM_DIR " writable for you (mode 1777)";
	default:
		return "check that " SOCKSHIM_SHM_DIR " is a writable tmpfs with room";
	}
}

/* Create session NAME, replace a stale one, or join one in use, and map
 * it into *HOLD. *CREATED tells whether it is ours to remove at exit.
 * 0, or -errno with WHY saying what failed, on which file, and the fix;
 * the caller decides whether CMD runs anyway. */
static int open_session(const char *name, const struct run_opts *o, int *created,
			struct seg_map *hold, struct fmt_buf *why)
{
	pid_t pids[SHM_USERS_PIDS];
	char path[256], reason[512];
	struct stat st;
	int rc, users, tries;

	*created = 0;
	session_path(path, sizeof(path), name);
	for (tries = 0; tries < 3; tries++) {
		rc = seg_create(name, o->ring, o->max_sockets, hold);
		if (rc == 0) {
			*created = 1;
			return 0;
		}
		if (rc != -EEXIST)
			break;
		users = shm_users_of_path(path, pids);
		if (users == -ENOENT)
			continue; /* removed meanwhile: create it again */
		if (users < 0) {
			fmt_append(why, "cannot tell who uses %s: %s; if nobody does, remove it "
				   "with sockshim clean --session %s --force",
				   path, strerror(-users), name);
			return users;
		}
		if (users > 0) {
			reason[0] = 0;
			rc = seg_open(name, 1, hold, reason, sizeof(reason));
			if (rc) {
				fmt_append(why, "%s is in use by ", path);
				users_text(why, users, pids);
				fmt_append(why, " and cannot be joined (%s); use another "
					   "--session, or stop them and remove it with "
					   "sockshim clean --session %s",
					   reason[0] ? reason : strerror(-rc), name);
				return rc;
			}
			fprintf(stderr, "sockshim: session \"%s\" is in use by ", name);
			say_users(users, pids);
			fprintf(stderr, "; attaching to it: events go into the same ring");
			if (o->ring_given && hold->ring_capacity != o->ring)
				fprintf(stderr, " of %u events (--ring-events ignored)",
					hold->ring_capacity);
			fprintf(stderr, "\n");
			return 0;
		}
		/* Left over by a run that ended without cleaning up. */
		rc = seg_remove(name);
		if (rc && rc != -ENOENT) {
			fmt_append(why, "cannot replace the unused %s: %s; ", path, strerror(-rc));
			if (lstat(path, &st) == 0 && st.st_uid != geteuid())
				fmt_append(why, "it belongs to uid %u: have it removed (by its "
					   "owner or root) or use another --session",
					   (unsigned)st.st_uid);
			else
				fmt_append(why, "remove it with sockshim clean --session %s",
					   name);
			return rc;
		}
	}
	fmt_append(why, "cannot create %s: %s; %s", path, strerror(-rc), create_fix(-rc));
	return rc;
}

/* Remove the session we created, unless other processes still use it
 * (CMD's daemonized children, a joined run): they would go on writing to
 * a segment no reader can open. */
static void close_session(const char *name, ino_t ino)
{
	pid_t pids[SHM_USERS_PIDS];
	char path[256];
	struct stat st;
	int users;

	session_path(path, sizeof(path), name);
	if (lstat(path, &st) < 0 || st.st_ino != ino)
		return; /* already removed, or replaced by someone else's */
	users = shm_users_of_path(path, pids);
	if (users > 0) {
		fprintf(stderr, "sockshim: keeping session \"%s\": still in use by ", name);
		say_users(users, pids);
		fprintf(stderr, "; remove it later with sockshim clean --session %s\n", name);
		return;
	}
	if (users == 0)
		seg_remove(name);
}

/* Whether to pass signal INFO on to CMD (PID). A terminal's ^C or hangup
 * (SI_KERNEL) already went to CMD if it shares our process group; a second
 * copy could make it quit without cleaning up. */
static int should_forward(const siginfo_t *info, pid_t pid)
{
	return !(info->si_code == SI_KERNEL && getpgid(pid) == getpgrp());
}

/* Wait for CMD (PID) with the forwarded signals and SIGCHLD blocked,
 * taking them one by one with sigwaitinfo: no handler, so no window in
 * which a signal is held back until CMD exits, or sent to a pid already
 * reaped and reused. Signals ignored when we started stay ignored (the
 * kernel drops them), as under a shell (nohup). Returns waitpid's result,
 * the status in *STATUS. */
static pid_t wait_forwarding(pid_t pid, const sigset_t *waitset, int *status)
{
	siginfo_t info;
	pid_t rc;
	int sig;

	for (;;) {
		rc = waitpid(pid, status, WNOHANG);
		if (rc != 0)
			return rc;
		sig = sigwaitinfo(waitset, &info);
		if (sig < 0 || sig == SIGCHLD)
			continue; /* EINTR, or a child changed state: look again */
		if (should_forward(&info, pid))
			kill(pid, sig);
	}
}

/* What exec said, as a shell says it; returns the shell's status. */
static int exec_failed(const char *cmd, int err)
{
	char interp[PATH_MAX], file[PATH_MAX], shown[SHOWN_LEN], shown_interp[SHOWN_LEN];

	printable(shown, cmd);
	if (err == ENOENT && interp_resolve(cmd, getenv("PATH"), file, sizeof(file)) == 0 &&
	    interp_script(file, getenv("PATH"), interp, sizeof(interp)) == -ENOENT) {
		fprintf(stderr, "sockshim: %s: bad interpreter %s: no such file\n", shown,
			printable(shown_interp, interp));
		return EXIT_CANNOT_EXEC;
	}
	if (err == ENOENT) {
		if (strchr(cmd, '/'))
			fprintf(stderr, "sockshim: %s: command not found (no such file)\n", shown);
		else
			fprintf(stderr, "sockshim: %s: command not found\n", shown);
		return EXIT_NOT_FOUND;
	}
	fprintf(stderr, "sockshim: %s: %s\n", shown, strerror(err));
	return EXIT_CANNOT_EXEC;
}

/* Fork and exec CMD; wait for it. Returns its shell-style exit status. */
static int spawn_and_wait(char **cmd)
{
	sigset_t block, saved;
	int pipefd[2], err = 0, status, rc;
	ssize_t n;
	pid_t pid;

	/* exec reports failure through a close-on-exec pipe: EOF means the
	 * new image is running. */
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		fprintf(stderr, "sockshim: cannot create a pipe: %s\n", strerror(errno));
		return EXIT_RUN_FAILED;
	}
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
		struct sigaction old;

		/* Ignored when we started (nohup): CMD inherits that, and a
		 * blocked signal would be queued for us, not dropped. */
		if (sigaction(forwarded[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		sigaddset(&block, forwarded[i]);
	}
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &saved);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		err = errno;
		sigprocmask(SIG_SETMASK, &saved, NULL);
		close(pipefd[0]);
		close(pipefd[1]);
		fprintf(stderr, "sockshim: cannot start %s: fork: %s\n", cmd[0], strerror(err));
		return EXIT_RUN_FAILED;
	}
	if (pid == 0) {
		close(pipefd[0]);
		sigprocmask(SIG_SETMASK, &saved, NULL);
		execvp(cmd[0], cmd);
		err = errno;
		if (write(pipefd[1], &err, sizeof(err)) < 0)
			_exit(EXIT_NOT_FOUND);
		_exit(EXIT_NOT_FOUND);
	}
	close(pipefd[1]);
	do
		n = read(pipefd[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);

	rc = wait_forwarding(pid, &block, &status);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (n == (ssize_t)sizeof(err))
		return exec_failed(cmd[0], err);
	if (rc < 0) {
		fprintf(stderr, "sockshim: cannot wait for %s: %s\n", cmd[0], strerror(errno));
		return EXIT_RUN_FAILED;
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* After CMD: let go of the session, and remove it if we created it
 * (INO: its file then), unless --keep. */
static void end_session(const char *name, const struct run_opts *o, struct seg_map *hold,
			int created, ino_t ino)
{
	seg_unmap(hold);
	if (created && !o->keep)
		close_session(name, ino);
	else if (created)
		fprintf(stderr,
			"sockshim: kept session \"%s\"; read it with sockshim events --session "
			"%s, remove it with sockshim clean --session %s\n",
			name, name, name);
}

int cmd_run(int argc, char **argv)
{
	char lib[PATH_MAX], path[256], why[1024], shown[SHOWN_LEN];
	struct run_opts o;
	struct seg_map hold;
	struct fmt_buf wb;
	struct stat st;
	const char *name;
	int rc, created = 0, status;

	rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	name = session_choose(o.session);
	/* A broken installation refuses, --strict or not: it is ours to fix,
	 * and a CMD that silently ran unrecorded every time would hide it. */
	if (find_lib(lib, sizeof(lib)) || lib_preloadable(lib))
		return EXIT_RUN_FAILED;
	/* Without a session, CMD fails open as the shim would: it runs, but
	 * without the shim (which would only find no session and warn
	 * again) and unrecorded; --strict refuses instead. Only the
	 * recording is lost, so the user's service still starts. */
	fmt_buf_init(&wb, why, sizeof(why));
	if (open_session(name, &o, &created, &hold, &wb)) {
		fprintf(stderr, "sockshim: session \"%s\" unusable: %s; %s %s%s\n", name, why,
			o.strict ? "not starting" : "running", printable(shown, o.cmd[0]),
			o.strict ? " (--strict)"
				 : " without the shim, unrecorded (--strict refuses instead)");
		return o.strict ? EXIT_RUN_FAILED : spawn_and_wait(o.cmd);
	}
	/* We keep the segment mapped (writable, as users map it; we never
	 * write) while CMD runs, so the session counts as in use: a
	 * concurrent run joins it and clean leaves it alone, even before
	 * CMD's shim has mapped it, or if it never does. */
	session_path(path, sizeof(path), name);
	if (lstat(path, &st) < 0)
		st.st_ino = 0;
	rc = set_env(lib, &o, name);
	if (rc) {
		fprintf(stderr, "sockshim: cannot set the environment of %s: %s\n",
			printable(shown, o.cmd[0]), strerror(-rc));
		end_session(name, &o, &hold, created, st.st_ino);
		return EXIT_RUN_FAILED;
	}
	warn_interposable(o.cmd[0]);

	status = spawn_and_wait(o.cmd);

	end_session(name, &o, &hold, created, st.st_ino);
	return status;
}
