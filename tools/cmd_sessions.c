/* `sockshim sessions` lists this user's segments with their health and
 * users; `sockshim clean` removes the ones no process maps. A bad segment
 * is listed with its problem, never trusted beyond seg_open's checks. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"
#include "session.h"
#include "shm_users.h"
#include "sockshim/clock.h"

/* One file of ours in /dev/shm. NAME is what follows "sockshim.<uid>.". */
struct seg_file {
	char name[256];
	char path[512];
	pid_t tmp_pid; /* a creator's temporary file: its pid, else 0 */
};

/* What sessions prints about one segment. */
struct seg_info {
	struct stat st;
	int stat_ok;
	const char *status; /* "ok", "corrupt", "wrong_owner", ... */
	char problem[512];  /* a sentence when status is not "ok" */
	int have_header;
	uint32_t ring;
	uint64_t events;
	int32_t creator_pid;
	char creator_comm[17];
	int64_t created_real_ns;
	int procs;
	pid_t pids[SHM_USERS_PIDS];
};

/* seg_create's temporary name is "<path>.tmp.<pid>.<nanoseconds>". */
static pid_t tmp_leftover_pid(const char *name)
{
	const char *t = NULL, *p;
	char *end;
	long pid;

	for (p = strstr(name, ".tmp."); p; p = strstr(p + 1, ".tmp."))
		t = p;
	if (!t || t == name)
		return 0;
	pid = strtol(t + 5, &end, 10);
	if (end == t + 5 || *end != '.' || pid <= 0 || !end[1])
		return 0;
	for (p = end + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return (pid_t)pid;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct seg_file *)a)->name, ((const struct seg_file *)b)->name);
}

/* This user's files in /dev/shm, sorted by name. 0 or -errno. */
static int list_files(struct seg_file **out, size_t *n)
{
	char prefix[64];
	struct seg_file *v = NULL, *grown;
	size_t cap = 0, len = 0, plen;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	*out = NULL;
	*n = 0;
	plen = (size_t)snprintf(prefix, sizeof(prefix), SOCKSHIM_SHM_PREFIX "%u.",
				(unsigned)geteuid());
	d = opendir(SOCKSHIM_SHM_DIR);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, plen) != 0 || !de->d_name[plen])
			continue;
		if (len == cap) {
			cap = cap ? 2 * cap : 16;
			grown = realloc(v, cap * sizeof(*v));
			if (!grown) {
				rc = -ENOMEM;
				goto out;
			}
			v = grown;
		}
		snprintf(v[len].name, sizeof(v[len].name), "%s", de->d_name + plen);
		snprintf(v[len].path, sizeof(v[len].path), SOCKSHIM_SHM_DIR "/%s", de->d_name);
		v[len].tmp_pid = tmp_leftover_pid(v[len].name);
		len++;
	}
	if (len)
		qsort(v, len, sizeof(*v), by_name);
out:
	closedir(d);
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*n = len;
	return 0;
}

static void set_problem(struct seg_info *si, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_problem(struct seg_info *si, const char *status, const char *fmt, ...)
{
	va_list ap;

	si->status = status;
	va_start(ap, fmt);
	vsnprintf(si->problem, sizeof(si->problem), fmt, ap);
	va_end(ap);
}

/* Fill SI for F: file checks first, so seg_open's reason is needed only
 * for what it alone can tell (the header). */
static void inspect(const struct seg_file *f, const struct shm_users *users,
		    struct seg_info *si)
{
	char why[512];
	struct seg_map m;
	int rc;

	memset(si, 0, sizeof(*si));
	si->status = "ok";
	if (lstat(f->path, &si->st) < 0) {
		set_problem(si, "gone", "removed while we looked (%s)", strerror(errno));
		return;
	}
	si->stat_ok = 1;
	si->procs = shm_users_count(users, si->st.st_dev, si->st.st_ino, si->pids);
	if (seg_name_check(f->name)) {
		set_problem(si, "bad_name", "not a valid session name");
		return;
	}
	if (!S_ISREG(si->st.st_mode)) {
		set_problem(si, "not_regular", "not a regular file");
		return;
	}
	if (si->st.st_uid != geteuid()) {
		set_problem(si, "wrong_owner", "belongs to uid %u, not to you",
			    (unsigned)si->st.st_uid);
		return;
	}
	if ((si->st.st_mode & 07777) != 0600) {
		set_problem(si, "wrong_mode", "mode %04o, expected 0600",
			    (unsigned)(si->st.st_mode & 07777));
		return;
	}
	why[0] = 0;
	rc = seg_open(f->name, 0, &m, why, sizeof(why));
	if (rc == -EPROTO && strstr(why, "layout version")) {
		set_problem(si, "other_version", "%s", why);
		return;
	}
	if (rc) {
		set_problem(si, rc == -EPROTO ? "corrupt" : "unreadable", "%s",
			    why[0] ? why : strerror(-rc));
		return;
	}
	/* Copied once: the header may change under us. */
	si->have_header = 1;
	si->ring = m.ring_capacity;
	si->events = __atomic_load_n(&seg_header(&m)->ring_head, __ATOMIC_RELAXED);
	si->creator_pid = seg_header(&m)->creator_pid;
	memcpy(si->creator_comm, seg_header(&m)->creator_comm, 16);
	si->creator_comm[16] = 0;
	si->created_real_ns = seg_header(&m)->created_realtime_ns;
	/* Any value another process wrote: one before the epoch or from the
	 * far future is "unknown", not a subtraction that overflows. */
	if (si->created_real_ns < 0 || si->created_real_ns > INT64_MAX / 2)
		si->created_real_ns = 0;
	seg_unmap(&m);
}


/* The table's columns: SESSION and CREATOR as wide as the widest. */
#define SESS_FMT "%-*s %6s %8s %10s %-*s %7s %5s %s\n"

struct sess_widths {
	int name, creator;
};

/* Columns S takes on a terminal: its UTF-8 characters (printable). */
static int columns(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static void row_texts(const struct seg_file *f, const struct seg_info *si, char *name,
		      size_t name_len, char *creator, size_t creator_len)
{
	struct fmt_buf b;

	fmt_buf_init(&b, name, name_len);
	ob_printable(&b, f->name, sizeof(f->name));
	fmt_buf_init(&b, creator, creator_len);
	if (!si->have_header) {
		ob_char(&b, '-');
		return;
	}
	fmt_append(&b, "%d/", si->creator_pid);
	ob_printable(&b, si->creator_comm, sizeof(si->creator_comm));
}

static void widen(struct sess_widths *w, const struct seg_file *f, const struct seg_info *si)
{
	char name[300], creator[64];

	row_texts(f, si, name, sizeof(name), creator, sizeof(creator));
	if (columns(name) > w->name)
		w->name = columns(name);
	if (columns(creator) > w->creator)
		w->creator = columns(creator);
}

/* printf's width counts bytes: pad S to W columns however many bytes. */
static int pad_of(const char *s, int w)
{
	return w + (int)strlen(s) - columns(s);
}

static void print_row(const struct seg_file *f, const struct seg_info *si, int64_t now,
		      const struct sess_widths *w)
{
	char size[16] = "-", ring[16] = "-", events[24] = "-", creator[64];
	char age[16] = "-", procs[16] = "-", status[600], name[300];

	row_texts(f, si, name, sizeof(name), creator, sizeof(creator));
	if (si->stat_ok) {
		fmt_size(size, sizeof(size), (uint64_t)si->st.st_size);
		snprintf(procs, sizeof(procs), "%d", si->procs);
	}
	if (si->have_header) {
		snprintf(ring, sizeof(ring), "%u", si->ring);
		snprintf(events, sizeof(events), "%llu", (unsigned long long)si->events);
		fmt_age(age, sizeof(age), (now - si->created_real_ns) / 1000000000);
	}
	if (!strcmp(si->status, "ok"))
		snprintf(status, sizeof(status), "ok");
	else
		snprintf(status, sizeof(status), "%s: %s", si->status, si->problem);
	printf(SESS_FMT, pad_of(name, w->name), name, size, ring, events,
	       pad_of(creator, w->creator), creator, age, procs, status);
}

static void print_json(const struct seg_file *f, const struct seg_info *si, int64_t now)
{
	char line[FMT_LINE_MAX + 1024];
	struct fmt_buf b;
	int i;

	fmt_buf_init(&b, line, sizeof(line));
	fmt_append(&b, "{\"session\":");
	ob_json_str(&b, f->name, sizeof(f->name));
	fmt_append(&b, ",\"path\":");
	ob_json_str(&b, f->path, sizeof(f->path));
	if (si->stat_ok)
		fmt_append(&b, ",\"size\":%lld", (long long)si->st.st_size);
	else
		fmt_append(&b, ",\"size\":null");
	if (si->have_header) {
		fmt_append(&b, ",\"ring\":%u,\"events\":%llu,\"creator_pid\":%d,\"creator_comm\":",
			   si->ring, (unsigned long long)si->events, si->creator_pid);
		ob_json_str(&b, si->creator_comm, sizeof(si->creator_comm));
		ob_str(&b, ",\"created\":");
		ob_json_time(&b, si->created_real_ns);
		fmt_append(&b, ",\"age_s\":%lld", (long long)((now - si->created_real_ns) / 1000000000));
	} else {
		fmt_append(&b, ",\"ring\":null,\"events\":null,\"creator_pid\":null,"
			       "\"creator_comm\":null,\"created\":null,\"age_s\":null");
	}
	fmt_append(&b, ",\"procs\":%d,\"pids\":[", si->procs);
	for (i = 0; i < si->procs && i < SHM_USERS_PIDS; i++)
		fmt_append(&b, "%s%d", i ? "," : "", (int)si->pids[i]);
	fmt_append(&b, "],\"status\":\"%s\",\"problem\":", si->status);
	if (strcmp(si->status, "ok") != 0)
		ob_json_str(&b, si->problem, sizeof(si->problem));
	else
		fmt_append(&b, "null");
	fmt_append(&b, "}");
	puts(line);
}

static void sessions_usage(FILE *f)
{
	fputs("Usage: sockshim sessions [--json]\n"
	      "\n"
	      "List your sessions (segments in " SOCKSHIM_SHM_DIR "), with the processes\n"
	      "that use them and any problem found.\n"
	      "\n"
	      "  -j, --json   one JSON object per line instead of a table\n"
	      "  -h, --help   this text\n",
	      f);
}

static void clean_usage(FILE *f)
{
	fputs("Usage: sockshim clean --session NAME [--force]\n"
	      "       sockshim clean --all\n"
	      "\n"
	      "Remove sessions that no live process maps any more.\n"
	      "\n"
	      "  -s, --session NAME  remove this session; refused while in use\n"
	      "      --force         with --session: remove it even while in use\n"
	      "  -a, --all           remove every one of your sessions not in use\n"
	      "  -h, --help          this text\n",
	      f);
}

int cmd_sessions(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct shm_users *users = NULL;
	struct seg_file *files = NULL;
	struct seg_info *infos = NULL;
	struct sess_widths w = {7, 7}; /* "SESSION", "CREATOR" */
	int64_t now = (int64_t)sockshim_clock_ns(CLOCK_REALTIME);
	int json = 0, c, rc, shown = 0;
	size_t n = 0, i;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'h':
			sessions_usage(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option("sessions", sessions_usage, c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("sessions", sessions_usage, "unexpected argument '%s'",
				       argv[optind]);
	rc = list_files(&files, &n);
	if (rc) {
		fprintf(stderr, "sockshim: cannot list " SOCKSHIM_SHM_DIR ": %s\n", strerror(-rc));
		return EXIT_FAIL;
	}
	rc = shm_users_scan(&users);
	if (rc) {
		fprintf(stderr, "sockshim: cannot scan /proc: %s\n", strerror(-rc));
		rc = EXIT_FAIL;
		goto out;
	}
	infos = calloc(n ? n : 1, sizeof(*infos));
	if (!infos) {
		fprintf(stderr, "sockshim: out of memory\n");
		rc = EXIT_FAIL;
		goto out;
	}
	/* Every row first: the widths are the widest's. */
	for (i = 0; i < n; i++) {
		if (files[i].tmp_pid)
			continue; /* a creation in progress, or a crashed one: see clean */
		inspect(&files[i], users, &infos[i]);
		widen(&w, &files[i], &infos[i]);
	}
	for (i = 0; i < n; i++) {
		if (files[i].tmp_pid)
			continue;
		if (!json && !shown)
			printf(SESS_FMT, w.name, "SESSION", "SIZE", "RING", "EVENTS", w.creator,
			       "CREATOR", "AGE", "PROCS", "STATUS");
		if (json)
			print_json(&files[i], &infos[i], now);
		else
			print_row(&files[i], &infos[i], now, &w);
		shown++;
	}
	if (!shown && !json)
		fprintf(stderr, "sockshim: no sessions; start one with sockshim run -- CMD\n");
	rc = EXIT_OK;
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "sockshim: cannot write the list: %s\n", strerror(errno));
		rc = EXIT_FAIL;
	}
out:
	free(infos);
	shm_users_free(users);
	free(files);
	return rc;
}

static void say_pids(char *buf, size_t len, int count, const pid_t pids[SHM_USERS_PIDS])
{
	struct fmt_buf b;
	int i;

	fmt_buf_init(&b, buf, len);
	fmt_append(&b, "%d process%s (pid%s ", count, count == 1 ? "" : "es",
		   count == 1 ? "" : "s");
	for (i = 0; i < count && i < SHM_USERS_PIDS; i++)
		fmt_append(&b, "%s%d", i ? ", " : "", (int)pids[i]);
	fmt_append(&b, "%s)", count > SHM_USERS_PIDS ? ", ..." : "");
}

static int clean_one(const char *name, int force)
{
	char path[256], users[256];
	pid_t pids[SHM_USERS_PIDS];
	int count;

	if (session_check_name(name))
		return EXIT_USAGE;
	if (session_path(path, sizeof(path), name)) {
		fprintf(stderr, "sockshim: session name \"%s\" is too long\n", name);
		return EXIT_USAGE;
	}
	count = shm_users_of_path(path, pids);
	if (count == -ENOENT) {
		fprintf(stderr, "sockshim: session \"%s\" not found (no %s); nothing to clean\n",
			name, path);
		return EXIT_FAIL;
	}
	if (count < 0) {
		fprintf(stderr, "sockshim: cannot check who uses %s: %s\n", path,
			strerror(-count));
		return EXIT_FAIL;
	}
	if (count > 0) {
		say_pids(users, sizeof(users), count, pids);
		if (!force) {
			fprintf(stderr,
				"sockshim: session \"%s\" is in use by %s; stop them first, or "
				"remove it anyway with sockshim clean --session %s --force\n",
				name, users, name);
			return EXIT_FAIL;
		}
		fprintf(stderr,
			"sockshim: warning: session \"%s\" is in use by %s; they keep writing "
			"to the removed segment, which no reader can open any more\n",
			name, users);
	}
	if (unlink(path) < 0) {
		fprintf(stderr, "sockshim: cannot remove %s: %s", path, strerror(errno));
		if (errno == EPERM || errno == EACCES)
			fprintf(stderr, "; only its owner or root can remove it");
		fprintf(stderr, "\n");
		return EXIT_FAIL;
	}
	printf("removed session \"%s\" (%s)\n", name, path);
	return EXIT_OK;
}

/* A temporary file whose creator is still alive is a creation in progress. */
static int creator_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

static int clean_all(void)
{
	struct shm_users *users = NULL;
	struct seg_file *files = NULL;
	pid_t pids[SHM_USERS_PIDS];
	char who[256], name[300];
	struct fmt_buf b;
	struct stat st;
	int rc, count, removed = 0, failed = 0;
	size_t n = 0, i;

	rc = list_files(&files, &n);
	if (rc) {
		fprintf(stderr, "sockshim: cannot list " SOCKSHIM_SHM_DIR ": %s\n", strerror(-rc));
		return EXIT_FAIL;
	}
	rc = shm_users_scan(&users);
	if (rc) {
		fprintf(stderr, "sockshim: cannot scan /proc: %s\n", strerror(-rc));
		rc = EXIT_FAIL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct seg_file *f = &files[i];

		fmt_buf_init(&b, name, sizeof(name));
		ob_printable(&b, f->name, sizeof(f->name));
		if (lstat(f->path, &st) < 0)
			continue; /* removed by someone else meanwhile */
		if (f->tmp_pid && creator_alive(f->tmp_pid))
			continue;
		count = shm_users_count(users, st.st_dev, st.st_ino, pids);
		if (count > 0) {
			say_pids(who, sizeof(who), count, pids);
			printf("kept session \"%s\": in use by %s\n", name, who);
			continue;
		}
		/* Someone else's file under our name: not ours to delete in bulk. */
		if (st.st_uid != geteuid()) {
			printf("skipped %s: it belongs to uid %u; ", f->path, (unsigned)st.st_uid);
			if (geteuid() == 0 && !f->tmp_pid)
				printf("remove it with sockshim clean --session %s if you are "
				       "sure\n",
				       name);
			else
				printf("only its owner or root can remove it\n");
			continue;
		}
		if (unlink(f->path) < 0) {
			fprintf(stderr, "sockshim: cannot remove %s: %s\n", f->path,
				strerror(errno));
			failed++;
			continue;
		}
		if (f->tmp_pid)
			printf("removed %s (left over by process %d, which died creating it)\n",
			       f->path, (int)f->tmp_pid);
		else
			printf("removed session \"%s\" (%s)\n", name, f->path);
		removed++;
	}
	if (!removed && !failed)
		printf("nothing to clean\n");
	rc = failed ? EXIT_FAIL : EXIT_OK;
out:
	shm_users_free(users);
	free(files);
	return rc;
}

int cmd_clean(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"session", required_argument, NULL, 's'},
		{"all", no_argument, NULL, 'a'},
		{"force", no_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *name = NULL;
	int all = 0, force = 0, c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":s:ah", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			name = optarg;
			break;
		case 'a':
			all = 1;
			break;
		case 'F':
			force = 1;
			break;
		case 'h':
			clean_usage(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option("clean", clean_usage, c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("clean", clean_usage, "unexpected argument '%s'",
				       argv[optind]);
	if (!name == !all)
		return cli_usage_error("clean", clean_usage,
				       "give either --session NAME or --all");
	if (force && all)
		return cli_usage_error("clean", clean_usage,
				       "--force works only with --session NAME");
	/* An invalid name means the session the shim maps it to. */
	return name ? clean_one(session_choose(name), force) : clean_all();
}
