/*
 * test_sandbox.c: the worker's seccomp allow-list. Each case forks a child
 * that enters the worker sandbox exactly as a worker does and then makes
 * one call; the test asserts how the child ended (normal exit, or killed by
 * SIGSYS for a forbidden call).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

static int passed, failed;
static int sock_fd = -1;	/* a socket made before the sandbox, as the worker's session */
static int page_fd = -1;	/* a page sealed as the parent seals a worker's shared page */

enum expect { EXIT_OK, KILLED_SIGSYS };

static void
check(const char *what, void (*fn)(void), enum expect want)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		sandbox_worker_enter(65534, 65534);
		fn();
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		printf("FAIL - %s: fork/wait\n", what);
		failed++;
		return;
	}
	if (want == EXIT_OK && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("ok   - %s: allowed\n", what);
		passed++;
	} else if (want == KILLED_SIGSYS && WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
		printf("ok   - %s: killed by SIGSYS\n", what);
		passed++;
	} else {
		printf("FAIL - %s: status 0x%x (exited %d code %d, signaled %d sig %d)\n", what,
		    status, WIFEXITED(status), WEXITSTATUS(status), WIFSIGNALED(status),
		    WTERMSIG(status));
		failed++;
	}
}

static void
allowed_work(void)
{
	unsigned char buf[64];
	void *p;
	int fds[2];

	/* what a worker does: memory, randomness, time, its sockets */
	if (getrandom(buf, sizeof(buf), 0) != sizeof(buf))
		_exit(10);
	if ((p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
		_exit(11);
	memset(p, 1, 1 << 20);
	if (mprotect(p, 4096, PROT_READ) != 0 || munmap(p, 1 << 20) != 0)
		_exit(12);
	free(malloc(300000));
	(void)fds;
	if (write(2, "", 0) != 0)
		_exit(13);
	if (getuid() == 0 || geteuid() == 0)
		_exit(14);	/* privileges were not dropped */
}

static void
open_fails_cleanly(void)
{
	int fd = open("/etc/hostname", O_RDONLY);

	if (fd >= 0 || errno != EACCES)
		_exit(20);
}

static void
forbidden_socket(void)
{
	(void)socket(AF_INET, SOCK_STREAM, 0);
	_exit(30);
}

static void
forbidden_exec(void)
{
	char *argv[] = { "/bin/true", NULL };

	execv("/bin/true", argv);
	_exit(31);
}

/* The session socket's receive timeout: the one option a worker may set. */
static void
rcvtimeo_allowed(void)
{
	struct timeval tv = { 1, 0 };

	if (setsockopt(sock_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
		_exit(40);
}

static void
forbidden_sockopt(void)
{
	int v = 1 << 20;

	(void)setsockopt(sock_fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	_exit(41);
}

/* The shared page: readable; no way to a writable mapping of it. */
static void
shared_page_read_only(void)
{
	volatile uint64_t *p;

	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, page_fd, 0);
	if (p == MAP_FAILED || p[0] != 0x1122334455667788ULL)
		_exit(50);
	if (mprotect((void *)p, 4096, PROT_READ | PROT_WRITE) == 0)
		_exit(51);
	if (mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, page_fd, 0) != MAP_FAILED)
		_exit(52);
	if (write(page_fd, "x", 1) == 1)
		_exit(53);
}

#ifndef __SANITIZE_ADDRESS__	/* ASan's runtime needs these calls, so they are allowed there */
static void
forbidden_fork(void)
{
	(void)fork();
	_exit(32);
}

static void
forbidden_ptrace_self_dump(void)
{
	(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	_exit(33);
}
#endif

/*
 * A worker stopped and continued while it waits (a debugger, a cgroup
 * freezer, kill -STOP) resumes its poll() through restart_syscall.
 */
static void
check_stop_continue(void)
{
	const char *what = "SIGSTOP/SIGCONT during poll() (restart_syscall)";
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		sandbox_worker_enter(65534, 65534);
		(void)poll(NULL, 0, 500);
		_exit(0);
	}
	if (pid < 0) {
		printf("FAIL - %s: fork\n", what);
		failed++;
		return;
	}
	usleep(150000);
	kill(pid, SIGSTOP);
	usleep(100000);
	kill(pid, SIGCONT);
	if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("ok   - %s: resumed\n", what);
		passed++;
	} else {
		printf("FAIL - %s: status 0x%x\n", what, status);
		failed++;
	}
}

/* As instance.c makes a worker's shared page: written here, sealed. */
static int
make_page(void)
{
	uint64_t *p;
	int fd = memfd_create("test-page", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, 4096) != 0 ||
	    (p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
		return -1;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
	    F_SEAL_SEAL) != 0)
		return -1;
	p[0] = 0x1122334455667788ULL;	/* the writable mapping made first still works */
	return fd;
}

int
main(void)
{
	int sv[2], pass;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || (page_fd = make_page()) < 0) {
		printf("FAIL - set-up: socketpair or shared page\n");
		return 1;
	}
	sock_fd = sv[0];
	/* Twice: the filter compiled by each worker, then the one compiled ahead (zygote). */
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			sandbox_worker_prepare();
			printf("# the same with the filter compiled ahead (sandbox_worker_prepare)\n");
		}
		check("memory, randomness, time, write", allowed_work, EXIT_OK);
		check("setsockopt(SO_RCVTIMEO) on a session socket", rcvtimeo_allowed, EXIT_OK);
		check("setsockopt(SO_SNDBUF)", forbidden_sockopt, KILLED_SIGSYS);
		check("the shared page is read-only for good", shared_page_read_only, EXIT_OK);
		check("open() fails with EACCES, no kill", open_fails_cleanly, EXIT_OK);
		check_stop_continue();
		check("socket(AF_INET)", forbidden_socket, KILLED_SIGSYS);
		check("execve", forbidden_exec, KILLED_SIGSYS);
#ifndef __SANITIZE_ADDRESS__
		check("fork", forbidden_fork, KILLED_SIGSYS);
		check("prctl(PR_SET_DUMPABLE, 1)", forbidden_ptrace_self_dump, KILLED_SIGSYS);
#endif
	}
	printf("sandbox: %d passed, %d failed\n", passed, failed);
	return failed != 0;
}
