/*
 * faultinj.c: an LD_PRELOAD shim that makes file system calls fail on demand,
 * for the fault-injection tests (tests/e2e/test_faults.sh). It wraps open,
 * read, write, pwrite, writev, pwritev, fsync, fdatasync and msync; a call on
 * a regular file whose path matches an active rule fails with that rule's
 * errno instead of running. Trusts its control file (written by the test).
 *
 * Environment:
 *   VTPM_FAULTINJ_CTL  the control file; re-read whenever it changes, so a
 *                      test switches faults on and off while the process
 *                      runs. Missing or empty: no faults. Unset: the shim
 *                      does nothing at all.
 *   VTPM_FAULTINJ_LOG  optional: one line per injected failure is appended
 *                      ("pid op errno path"), so a test can prove the fault
 *                      really happened.
 * Control file: one rule per line, '#' starts a comment:
 *   OP ERR [match=SUBSTRING] [after=N] [count=M] [maxoff=BYTES]
 *   OP     open, read, write (write, pwrite, writev, pwritev), fsync,
 *          fdatasync, msync, or sync (fsync, fdatasync and msync)
 *   ERR    EIO, ENOSPC, EDQUOT, EACCES, EROFS, or "lie": report success
 *          without doing anything (a disk that loses writes: tests use it
 *          to prove the checks can fail)
 *   match  only files whose path contains SUBSTRING (msync: ignored)
 *   after  let the first N matching calls through (counted from the time
 *          the control file last changed)
 *   count  fail at most M calls, then let calls through again (0: no limit)
 *   maxoff only pwrite/pwritev at file offsets below BYTES (LMDB writes its
 *          meta pages in the first two pages of data.mdb)
 * Processes started with --worker or --worker-zygote are left alone: the
 * faults are aimed at the daemon's store and keys, and the workers' sandbox
 * may forbid the calls the shim makes.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../preload.h"

#define MAX_RULES	16

enum op { OP_OPEN, OP_READ, OP_WRITE, OP_FSYNC, OP_FDATASYNC, OP_MSYNC, OP_NONE };
static const char *const op_names[] = { "open", "read", "write", "fsync", "fdatasync", "msync" };

struct rule {
	enum op	op;		/* OP_NONE with sync: fsync, fdatasync, msync */
	int	sync_all;
	int	err;		/* 0 = lie */
	char	match[256];
	long	after, count, maxoff;
	long	seen, failed;
};

static struct {
	int		 off;		/* unset or a worker: pass everything through */
	const char	*ctl;
	const char	*log;
	struct stat	 ctl_sb;	/* what the rules were read from */
	int		 loaded;
	struct rule	 rules[MAX_RULES];
	int		 nrules;
	pthread_mutex_t	 mu;
} F = { .mu = PTHREAD_MUTEX_INITIALIZER };

static __thread int in_shim;	/* the shim's own calls pass through */

typedef int (*open_fn)(const char *, int, ...);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef int (*sync_fn)(int);
typedef int (*msync_fn)(void *, size_t, int);

/* The next definition of name (libc's), looked up once. */
#define REAL(name, type)	static type real_##name;	\
	if (real_##name == NULL) real_##name = (type)dlsym(RTLD_NEXT, #name)

__attribute__((constructor)) static void
fi_init(void)
{
	F.ctl = getenv("VTPM_FAULTINJ_CTL");
	F.log = getenv("VTPM_FAULTINJ_LOG");
	if (F.ctl == NULL || F.ctl[0] == '\0') {
		F.off = 1;
		return;
	}
	if (preload_is_worker() == 1)
		F.off = 1;
}

static int
errno_of(const char *s)
{
	static const struct { const char *n; int e; } t[] = {
		{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT },
		{ "EACCES", EACCES }, { "EROFS", EROFS }, { "lie", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(s, t[i].n) == 0)
			return t[i].e;
	return -1;
}

/* Parses the control file (held in buf) into F.rules; bad lines are ignored. */
static void
fi_parse(char *buf)
{
	char *line, *save = NULL, *tok, *save2;
	struct rule r;
	size_t i;

	F.nrules = 0;
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (strchr(line, '#') != NULL)
			*strchr(line, '#') = '\0';
		memset(&r, 0, sizeof(r));
		r.op = OP_NONE;
		if ((tok = strtok_r(line, " \t", &save2)) == NULL)
			continue;
		if (strcmp(tok, "sync") == 0)
			r.sync_all = 1;
		for (i = 0; i < OP_NONE; i++)
			if (strcmp(tok, op_names[i]) == 0)
				r.op = (enum op)i;
		if (r.op == OP_NONE && !r.sync_all)
			continue;
		if ((tok = strtok_r(NULL, " \t", &save2)) == NULL || (r.err = errno_of(tok)) < 0)
			continue;
		while ((tok = strtok_r(NULL, " \t", &save2)) != NULL) {
			if (strncmp(tok, "match=", 6) == 0)
				snprintf(r.match, sizeof(r.match), "%s", tok + 6);
			else if (strncmp(tok, "after=", 6) == 0)
				r.after = atol(tok + 6);
			else if (strncmp(tok, "count=", 6) == 0)
				r.count = atol(tok + 6);
			else if (strncmp(tok, "maxoff=", 7) == 0)
				r.maxoff = atol(tok + 7);
		}
		if (F.nrules < MAX_RULES)
			F.rules[F.nrules++] = r;
	}
}

/* Re-reads the control file if it changed since the last look. Under F.mu. */
static void
fi_reload(void)
{
	char buf[4096];
	struct stat sb;
	ssize_t n;
	int fd;

	if (stat(F.ctl, &sb) != 0) {
		F.nrules = 0;
		F.loaded = 0;
		return;
	}
	if (F.loaded && sb.st_ino == F.ctl_sb.st_ino && sb.st_size == F.ctl_sb.st_size &&
	    sb.st_mtim.tv_sec == F.ctl_sb.st_mtim.tv_sec &&
	    sb.st_mtim.tv_nsec == F.ctl_sb.st_mtim.tv_nsec)
		return;
	F.ctl_sb = sb;
	F.loaded = 1;
	F.nrules = 0;
	if ((fd = (int)syscall(SYS_openat, AT_FDCWD, F.ctl, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	syscall(SYS_close, fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	fi_parse(buf);
}

static void
fi_log(enum op op, int err, const char *path)
{
	char line[512];
	int fd, n;

	if (F.log == NULL)
		return;
	n = snprintf(line, sizeof(line), "%d %s %s %s\n", (int)getpid(), op_names[op],
	    err == 0 ? "lie" : err == EIO ? "EIO" : err == ENOSPC ? "ENOSPC" :
	    err == EDQUOT ? "EDQUOT" : err == EACCES ? "EACCES" : "EROFS", path);
	if ((fd = (int)syscall(SYS_openat, AT_FDCWD, F.log,
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
		return;
	syscall(SYS_write, fd, line, (size_t)n);
	syscall(SYS_close, fd);
}

/*
 * Decides the fate of one call: -1 to run it, else the errno to fail it with
 * (0: pretend it succeeded). path NULL: look up fd's (regular files only).
 */
static int
fi_check(enum op op, int fd, const char *path, long off)
{
	char pbuf[512], link[64];
	struct stat sb;
	ssize_t n;
	int i, verdict = -1;

	if (F.off || in_shim)
		return -1;
	in_shim = 1;
	if (path == NULL && op != OP_MSYNC) {
		if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
			goto out;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		if ((n = readlink(link, pbuf, sizeof(pbuf) - 1)) <= 0)
			goto out;
		pbuf[n] = '\0';
		path = pbuf;
	}
	if (path == NULL)
		path = "(memory)";
	pthread_mutex_lock(&F.mu);
	fi_reload();
	for (i = 0; i < F.nrules; i++) {
		struct rule *r = &F.rules[i];

		if (r->sync_all ? op != OP_FSYNC && op != OP_FDATASYNC && op != OP_MSYNC :
		    r->op != op)
			continue;
		if (op != OP_MSYNC && r->match[0] != '\0' && strstr(path, r->match) == NULL)
			continue;
		if (r->maxoff > 0 && (off < 0 || off >= r->maxoff))
			continue;
		if (r->seen++ < r->after)
			continue;
		if (r->count > 0 && r->failed >= r->count)
			continue;
		r->failed++;
		verdict = r->err;
		break;
	}
	pthread_mutex_unlock(&F.mu);
	if (verdict >= 0)
		fi_log(op, verdict, path);
out:
	in_shim = 0;
	return verdict;
}

/* ---- the wrapped calls ------------------------------------------------ */

int
open(const char *path, int flags, ...)
{
	REAL(open, open_fn);
	mode_t mode = 0;
	va_list ap;
	int e;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if ((e = fi_check(OP_OPEN, -1, path, -1)) > 0) {
		errno = e;
		return -1;
	}
	return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

ssize_t
read(int fd, void *buf, size_t len)
{
	REAL(read, read_fn);
	int e;

	if ((e = fi_check(OP_READ, fd, NULL, -1)) > 0) {
		errno = e;
		return -1;
	}
	return real_read(fd, buf, len);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	REAL(write, write_fn);
	int e;

	if ((e = fi_check(OP_WRITE, fd, NULL, -1)) >= 0) {
		if (e == 0)
			return (ssize_t)len;
		errno = e;
		return -1;
	}
	return real_write(fd, buf, len);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	REAL(pwrite, pwrite_fn);
	int e;

	if ((e = fi_check(OP_WRITE, fd, NULL, (long)off)) >= 0) {
		if (e == 0)
			return (ssize_t)len;
		errno = e;
		return -1;
	}
	return real_pwrite(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off) __attribute__((alias("pwrite")));

static size_t
iov_len(const struct iovec *iov, int n)
{
	size_t t = 0;
	int i;

	for (i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

ssize_t
writev(int fd, const struct iovec *iov, int n)
{
	REAL(writev, writev_fn);
	int e;

	if ((e = fi_check(OP_WRITE, fd, NULL, -1)) >= 0) {
		if (e == 0)
			return (ssize_t)iov_len(iov, n);
		errno = e;
		return -1;
	}
	return real_writev(fd, iov, n);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	REAL(pwritev, pwritev_fn);
	int e;

	if ((e = fi_check(OP_WRITE, fd, NULL, (long)off)) >= 0) {
		if (e == 0)
			return (ssize_t)iov_len(iov, n);
		errno = e;
		return -1;
	}
	return real_pwritev(fd, iov, n, off);
}

int
fsync(int fd)
{
	REAL(fsync, sync_fn);
	int e;

	if ((e = fi_check(OP_FSYNC, fd, NULL, -1)) >= 0) {
		if (e == 0)
			return 0;
		errno = e;
		return -1;
	}
	return real_fsync(fd);
}

int
fdatasync(int fd)
{
	REAL(fdatasync, sync_fn);
	int e;

	if ((e = fi_check(OP_FDATASYNC, fd, NULL, -1)) >= 0) {
		if (e == 0)
			return 0;
		errno = e;
		return -1;
	}
	return real_fdatasync(fd);
}

int
msync(void *addr, size_t len, int flags)
{
	REAL(msync, msync_fn);
	int e;

	if ((e = fi_check(OP_MSYNC, -1, NULL, -1)) >= 0) {
		if (e == 0)
			return 0;
		errno = e;
		return -1;
	}
	return real_msync(addr, len, flags);
}
