/* The program's own SIGBUS handling is its own, with or without the shim
 * (which keeps the kernel's SIGBUS action while a segment is mapped): its
 * handler gets its faults with the right address, the default and ignored
 * dispositions still end it on a fault, sigaction and signal report what
 * it set, blocking SIGBUS shows in the mask it reads back, SA_RESETHAND
 * and sent signals behave. Run with and without LD_PRELOAD: both must
 * pass. Each test runs in a child of its own (dispositions are process
 * wide). With SIGBUSCHECK_SESSION_FILE (the session's segment, under the
 * shim), one more test blocks SIGBUS, truncates that file and goes on
 * creating sockets: the shim must survive a fault it cannot see blocked. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static sigjmp_buf back;
static volatile sig_atomic_t calls;
static void *volatile fault_addr;
static volatile int fault_code;

/* A mapping of a file cut short: touching it raises SIGBUS (BUS_ADRERR). */
static char *doomed_page(void)
{
	char path[] = "/tmp/sigbuscheck.XXXXXX";
	int fd = mkstemp(path);
	char *p;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(ftruncate(fd, 4096), 0);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	assert_int_equal(ftruncate(fd, 0), 0);
	close(fd);
	return p;
}

static void on_bus_jump(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	assert_int_equal(sig, SIGBUS);
	calls++;
	fault_addr = si->si_addr;
	fault_code = si->si_code;
	siglongjmp(back, 1);
}

static void on_bus_count(int sig)
{
	(void)sig;
	calls++;
}

/* Run FN in a child; return its wait status. */
static int in_child(void (*fn)(void))
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		/* As a program starts: not cmocka's crash handler. */
		signal(SIGBUS, SIG_DFL);
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void expect_clean_exit(void (*fn)(void))
{
	int status = in_child(fn);

	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("child ended with status %#x", status);
}

static void expect_killed_by_sigbus(void (*fn)(void))
{
	int status = in_child(fn);

	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGBUS)
		fail_msg("child ended with status %#x, not by SIGBUS", status);
}

static void own_handler(void)
{
	struct sigaction sa;
	char *p = doomed_page();

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_bus_jump;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0)
		_exit(2);
	if (!sigsetjmp(back, 1))
		p[100] = 1;
	if (calls != 1 || fault_addr != p + 100 || fault_code != BUS_ADRERR)
		_exit(3);
}

static void test_own_handler_gets_its_fault(void **state)
{
	(void)state;
	expect_clean_exit(own_handler);
}

static void default_disposition(void)
{
	doomed_page()[0] = 1;
	_exit(0); /* not reached */
}

static void test_default_disposition_ends_it(void **state)
{
	(void)state;
	expect_killed_by_sigbus(default_disposition);
}

static void ignored_disposition(void)
{
	signal(SIGBUS, SIG_IGN);
	doomed_page()[0] = 1;
	_exit(0); /* not reached: the kernel does not ignore a fault */
}

static void test_ignored_fault_still_ends_it(void **state)
{
	(void)state;
	expect_killed_by_sigbus(ignored_disposition);
}

static void reports(void)
{
	struct sigaction sa, old, again;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_bus_jump;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR1);
	if (sigaction(SIGBUS, NULL, &old) < 0 || old.sa_handler != SIG_DFL)
		_exit(2);
	if (sigaction(SIGBUS, &sa, &old) < 0 || old.sa_handler != SIG_DFL)
		_exit(3);
	if (sigaction(SIGBUS, NULL, &again) < 0 || again.sa_sigaction != on_bus_jump ||
	    (again.sa_flags & (SA_SIGINFO | SA_RESTART | SA_NODEFER | SA_ONSTACK)) !=
		    (SA_SIGINFO | SA_RESTART) ||
	    !sigismember(&again.sa_mask, SIGUSR1) || sigismember(&again.sa_mask, SIGUSR2))
		_exit(4);
	/* signal() answers with the action before it (the same pointer). */
	{
		sighandler_t before = signal(SIGBUS, on_bus_count);

		if (memcmp(&before, &(void (*)(int, siginfo_t *, void *)){on_bus_jump},
			   sizeof(before)))
			_exit(5);
	}
	if (signal(SIGBUS, SIG_DFL) != on_bus_count)
		_exit(6);
	if (sigaction(SIGBUS, NULL, &again) < 0 || again.sa_handler != SIG_DFL)
		_exit(8);
}

static void test_sigaction_and_signal_report_its_own(void **state)
{
	(void)state;
	expect_clean_exit(reports);
}

static void mask(void)
{
	sigset_t bus, cur;

	sigemptyset(&bus);
	sigaddset(&bus, SIGBUS);
	if (sigprocmask(SIG_BLOCK, &bus, NULL) || sigprocmask(SIG_BLOCK, NULL, &cur) ||
	    !sigismember(&cur, SIGBUS))
		_exit(2);
	if (pthread_sigmask(SIG_UNBLOCK, &bus, &cur) || !sigismember(&cur, SIGBUS))
		_exit(3);
	if (pthread_sigmask(SIG_BLOCK, NULL, &cur) || sigismember(&cur, SIGBUS))
		_exit(4);
	/* A sent SIGBUS reaches its handler. */
	signal(SIGBUS, on_bus_count);
	raise(SIGBUS);
	if (calls != 1)
		_exit(5);
}

static void test_mask_reports_its_own(void **state)
{
	(void)state;
	expect_clean_exit(mask);
}

static void resethand(void)
{
	struct sigaction sa, now;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_bus_count;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	raise(SIGBUS);
	if (calls != 1 || sigaction(SIGBUS, NULL, &now) || now.sa_handler != SIG_DFL)
		_exit(2);
	raise(SIGBUS); /* default now: ends it */
	_exit(0);
}

static void test_resethand_then_default(void **state)
{
	(void)state;
	expect_killed_by_sigbus(resethand);
}

static void sent_default(void)
{
	raise(SIGBUS);
	_exit(0);
}

static void test_sent_sigbus_default_ends_it(void **state)
{
	(void)state;
	expect_killed_by_sigbus(sent_default);
}

/* Under the shim with a session: SIGBUS blocked, the session's file cut to
 * nothing under us, and sockets go on being made and closed. */
static void truncated_session(void)
{
	const char *path = getenv("SIGBUSCHECK_SESSION_FILE");
	sigset_t bus, cur;
	int i;

	sigemptyset(&bus);
	sigaddset(&bus, SIGBUS);
	pthread_sigmask(SIG_BLOCK, &bus, NULL);
	if (truncate(path, 0) < 0)
		_exit(2);
	for (i = 0; i < 10; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    listen(fd, 4) || close(fd))
			_exit(3);
	}
	if (pthread_sigmask(SIG_BLOCK, NULL, &cur) || !sigismember(&cur, SIGBUS))
		_exit(4);
}

static void test_session_truncated_with_sigbus_blocked(void **state)
{
	(void)state;
	if (!getenv("SIGBUSCHECK_SESSION_FILE"))
		skip();
	expect_clean_exit(truncated_session);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_handler_gets_its_fault),
		cmocka_unit_test(test_default_disposition_ends_it),
		cmocka_unit_test(test_ignored_fault_still_ends_it),
		cmocka_unit_test(test_sigaction_and_signal_report_its_own),
		cmocka_unit_test(test_mask_reports_its_own),
		cmocka_unit_test(test_resethand_then_default),
		cmocka_unit_test(test_sent_sigbus_default_ends_it),
		cmocka_unit_test(test_session_truncated_with_sigbus_blocked),
	};

	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
