/*
 * sandbox.c: process self-limitation for the parent and the workers.
 * Steps run in one fixed order; each ends in fatal() on failure.
 * Trusts nothing: a worker's allow-list is default-deny (kill the process).
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <grp.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include "log.h"
#include "sandbox.h"

static void
sandbox_common(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		fatal("setrlimit(RLIMIT_CORE)");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		fatal("prctl(PR_SET_DUMPABLE)");
}

void
sandbox_parent_enter(void)
{
	sandbox_common();
}

/*
 * What a worker may do after start-up: its IPC socket and its guest's
 * session (read, write, poll, sendmsg/recvmsg, and the session socket's
 * receive timeout), memory management (libtpms,
 * OpenSSL, libsodium guarded pages), time and randomness, and exit.
 * Opening files fails with EACCES (OpenSSL probes its configuration);
 * anything else kills the process (SIGSYS), and the parent logs it.
 */
static const int worker_allowed[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(close), SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(mprotect), SCMP_SYS(madvise), SCMP_SYS(mlock), SCMP_SYS(munlock),
	SCMP_SYS(getrandom), SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(nanosleep),
	SCMP_SYS(futex), SCMP_SYS(sched_yield), SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(getppid), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
	SCMP_SYS(getegid), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	/* resumes a wait interrupted by SIGSTOP/SIGCONT (debugger, cgroup freezer) */
	SCMP_SYS(restart_syscall),
	SCMP_SYS(exit), SCMP_SYS(exit_group),
#ifdef __SANITIZE_ADDRESS__
	/* AddressSanitizer's runtime, for `make asan check` only. */
	SCMP_SYS(sigaltstack), SCMP_SYS(rt_sigaction), SCMP_SYS(prctl),
	SCMP_SYS(readlink), SCMP_SYS(sched_getaffinity), SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64), SCMP_SYS(uname), SCMP_SYS(tgkill), SCMP_SYS(getpgid),
	SCMP_SYS(pipe2), SCMP_SYS(wait4), SCMP_SYS(clone), SCMP_SYS(set_robust_list),
#endif
};

static void
sandbox_drop_privileges(uid_t uid, gid_t gid)
{
	if (uid == (uid_t)-1 || getuid() != 0)
		return;
	if (setgroups(0, NULL) != 0)
		fatal("setgroups");
	if (setresgid(gid, gid, gid) != 0)
		fatal("setresgid(%u)", (unsigned)gid);
	if (setresuid(uid, uid, uid) != 0)
		fatal("setresuid(%u)", (unsigned)uid);
	if (setuid(0) == 0)
		fatalx("privileges were not dropped");
	/* A credential change clears the parent-death signal: set it again. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		fatal("prctl(PR_SET_PDEATHSIG)");
	if (getppid() == 1)
		_exit(2);	/* the parent is already gone */
}

void
sandbox_zygote_enter(uid_t uid, gid_t gid)
{
	sandbox_common();
	sandbox_drop_privileges(uid, gid);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
}

/* The worker allow-list as a libseccomp filter (caller releases it). */
static scmp_filter_ctx
worker_filter_build(void)
{
	scmp_filter_ctx ctx;
	size_t i;
	int rc;

	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		fatalx("seccomp_init failed");
	for (i = 0; i < sizeof(worker_allowed) / sizeof(worker_allowed[0]); i++) {
		if (worker_allowed[i] < 0)	/* not on this architecture */
			continue;
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, worker_allowed[i], 0)) != 0)
			fatalx("seccomp_rule_add(%d): %d", worker_allowed[i], rc);
	}
	/*
	 * setsockopt() only for the session socket's receive timeout (the
	 * worker sleeps in read() on it, waking after a quiet second while it
	 * has commands to report); any other option kills the process.
	 */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 2,
	    SCMP_A1(SCMP_CMP_EQ, SOL_SOCKET), SCMP_A2(SCMP_CMP_EQ, SO_RCVTIMEO))) != 0)
		fatalx("seccomp_rule_add(setsockopt): %d", rc);
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0)) != 0 ||
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0)) != 0)
		fatalx("seccomp_rule_add(open): %d", rc);
	return ctx;
}

/*
 * The same filter compiled once to BPF by sandbox_worker_prepare(): a
 * worker forked afterwards only loads it (libseccomp's compilation costs
 * about 2 ms of CPU per worker). Read-only after preparation.
 */
static struct sock_filter *worker_bpf;
static unsigned short worker_bpf_len;

void
sandbox_worker_prepare(void)
{
	scmp_filter_ctx ctx = worker_filter_build();
	struct sock_filter *prog;
	off_t size;
	int fd, rc;

	if ((fd = memfd_create("vtpmd-seccomp", MFD_CLOEXEC)) < 0)
		fatal("memfd_create");
	if ((rc = seccomp_export_bpf(ctx, fd)) != 0)
		fatalx("seccomp_export_bpf: %d", rc);
	seccomp_release(ctx);
	if ((size = lseek(fd, 0, SEEK_END)) <= 0 ||
	    size % (off_t)sizeof(struct sock_filter) != 0 ||
	    size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS)
		fatalx("seccomp filter of %lld bytes", (long long)size);
	if ((prog = malloc((size_t)size)) == NULL)
		fatalx("out of memory");
	if (pread(fd, prog, (size_t)size, 0) != size)
		fatal("pread(seccomp filter)");
	close(fd);
	worker_bpf = prog;
	worker_bpf_len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
}

void
sandbox_worker_enter(uid_t uid, gid_t gid)
{
	scmp_filter_ctx ctx;
	int rc;

	sandbox_common();
	sandbox_drop_privileges(uid, gid);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	if (worker_bpf != NULL) {
		struct sock_fprog fprog = { .len = worker_bpf_len, .filter = worker_bpf };

		/* what seccomp_load() does with libseccomp's default attributes */
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0)
			fatal("seccomp(SECCOMP_SET_MODE_FILTER)");
		return;
	}
	ctx = worker_filter_build();
	if ((rc = seccomp_load(ctx)) != 0)
		fatalx("seccomp_load: %d", rc);
	seccomp_release(ctx);
}
