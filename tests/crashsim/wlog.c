/*
 * wlog.c: an LD_PRELOAD shim that records every write, sync and truncate a
 * process makes on the files under one directory, for the power-loss
 * simulation (tests/crashsim/crashimg.c, vtpm-torture --mode power).
 *
 * kill -9 keeps the page cache, so it cannot show what a power cut does to
 * writes that were never synced. This shim lets the calls run unchanged and
 * appends what they did to a log (format: wlog.h); crashimg.c then replays a
 * subset of them onto a copy of the directory. Trusts its environment (it is
 * a test tool):
 *   VTPM_WLOG      the log file (appended; O_APPEND keeps records whole
 *                  across threads). Unset: the shim does nothing at all.
 *   VTPM_WLOG_DIR  the directory whose files are recorded (absolute).
 * Processes started with --worker or --worker-zygote are left alone, as in
 * tests/faultinj: workers write no files and their sandbox forbids ours.
 * Renames and unlinks are not recorded: the store creates its files before
 * the copy is taken and only writes into them afterwards (crashimg.c says
 * what that assumes).
 */
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../preload.h"
#include "wlog.h"

#define MAX_FD		4096
#define MAX_FILES	256

static struct {
	int		 on;
	int		 logfd;
	char		 dir[1024];
	size_t		 dirlen;
	pthread_mutex_t	 mu;
	uint32_t	 fd_file[MAX_FD];	/* 0: not recorded; else file id */
	uint8_t		 fd_dsync[MAX_FD];
	uint8_t		 fd_append[MAX_FD];
	char		*files[MAX_FILES + 1];	/* id -> relative path */
	uint32_t	 nfiles;
} L = { .logfd = -1, .mu = PTHREAD_MUTEX_INITIALIZER };

#define REAL(name)	static __typeof__(name) *real_##name;	\
	if (real_##name == NULL) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((constructor)) static void
wl_init(void)
{
	const char *log = getenv("VTPM_WLOG"), *dir = getenv("VTPM_WLOG_DIR");
	int fd;

	if (log == NULL || dir == NULL || dir[0] != '/' || strlen(dir) >= sizeof(L.dir) - 1)
		return;
	if (preload_is_worker() != 0)
		return;
	L.logfd = (int)syscall(SYS_openat, AT_FDCWD, log,
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (L.logfd < 0)
		return;
	/* keep the log fd out of the range the program uses for its own files */
	fd = (int)syscall(SYS_fcntl, L.logfd, F_DUPFD_CLOEXEC, 900);
	if (fd >= 0) {
		syscall(SYS_close, L.logfd);
		L.logfd = fd;
	}
	snprintf(L.dir, sizeof(L.dir), "%s/", dir);
	while (L.dirlen = strlen(L.dir), L.dirlen > 1 && L.dir[L.dirlen - 2] == '/')
		L.dir[L.dirlen - 1] = '\0';
	L.on = 1;
}

/* Appends one record (header and up to two data pieces). Holds L.mu. */
static void
emit(uint8_t op, uint8_t flags, uint32_t file, uint64_t t0, uint64_t t1, uint64_t off,
    const struct iovec *data, int ndata)
{
	struct iovec iov[1 + IOV_MAX / 2];
	struct wlog_rec r;
	int i, n = 1;

	memset(&r, 0, sizeof(r));
	r.magic = WLOG_MAGIC;
	r.op = op;
	r.flags = flags;
	r.file = file;
	r.t0 = t0;
	r.t1 = t1;
	r.off = off;
	iov[0].iov_base = &r;
	iov[0].iov_len = sizeof(r);
	for (i = 0; i < ndata && n < (int)(sizeof(iov) / sizeof(iov[0])); i++) {
		r.dlen += data[i].iov_len;
		iov[n++] = data[i];
	}
	/* one writev per record: O_APPEND keeps it whole against other threads */
	(void)syscall(SYS_writev, L.logfd, iov, n);
}

/* The file id for an absolute path under the directory, or 0. Holds L.mu. */
static uint32_t
file_id(const char *path)
{
	const char *rel;
	uint32_t i;
	struct iovec v;

	if (strncmp(path, L.dir, L.dirlen) != 0)
		return 0;
	rel = path + L.dirlen;
	for (i = 1; i <= L.nfiles; i++)
		if (strcmp(L.files[i], rel) == 0)
			return i;
	if (L.nfiles == MAX_FILES || (L.files[L.nfiles + 1] = strdup(rel)) == NULL)
		return 0;
	L.nfiles++;
	v.iov_base = (void *)rel;
	v.iov_len = strlen(rel);
	emit(WLOG_PATH, 0, L.nfiles, 0, 0, 0, &v, 1);
	return L.nfiles;
}

static void
note_open(int dirfd, const char *path, int flags, int fd)
{
	char abs[2048], cwd[1024];
	uint32_t id;

	if (!L.on || fd < 0 || fd >= MAX_FD || path == NULL)
		return;
	if (path[0] == '/') {
		snprintf(abs, sizeof(abs), "%s", path);
	} else if (dirfd == AT_FDCWD && getcwd(cwd, sizeof(cwd)) != NULL) {
		snprintf(abs, sizeof(abs), "%s/%s", cwd, path);
	} else {
		return;		/* relative to another directory fd: not used by the store */
	}
	pthread_mutex_lock(&L.mu);
	id = (flags & (O_WRONLY | O_RDWR)) ? file_id(abs) : 0;
	L.fd_file[fd] = id;
	L.fd_dsync[fd] = (flags & (O_SYNC | O_DSYNC)) != 0;
	L.fd_append[fd] = (flags & O_APPEND) != 0;
	pthread_mutex_unlock(&L.mu);
}

static uint32_t
fd_file(int fd)
{
	return L.on && fd >= 0 && fd < MAX_FD ? L.fd_file[fd] : 0;
}

static void
note_write(int fd, uint64_t off, const struct iovec *iov, int n, ssize_t done,
    uint64_t t0)
{
	struct iovec part[IOV_MAX / 2];
	size_t left = done > 0 ? (size_t)done : 0;
	uint64_t t1 = now_ns();
	int i, k = 0;
	uint32_t id;

	if ((id = fd_file(fd)) == 0 || left == 0)
		return;
	/* only the bytes the call reports written */
	for (i = 0; i < n && left > 0 && k < (int)(sizeof(part) / sizeof(part[0])); i++) {
		part[k].iov_base = iov[i].iov_base;
		part[k].iov_len = iov[i].iov_len < left ? iov[i].iov_len : left;
		left -= part[k].iov_len;
		k++;
	}
	pthread_mutex_lock(&L.mu);
	emit(WLOG_WRITE, L.fd_dsync[fd] ? WLOG_F_DSYNC : 0, id, t0, t1, off, part, k);
	pthread_mutex_unlock(&L.mu);
}

static void
note_simple(int fd, uint8_t op, uint64_t t0, uint64_t off)
{
	uint64_t t1 = now_ns();
	uint32_t id;

	if ((id = fd_file(fd)) == 0)
		return;
	pthread_mutex_lock(&L.mu);
	emit(op, 0, id, t0, t1, off, NULL, 0);
	pthread_mutex_unlock(&L.mu);
}

/* ---------- the wrapped calls ---------- */

static int
open_flags_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, int) : 0;
}

int
open(const char *path, int flags, ...)
{
	va_list ap;
	int mode, fd;
	REAL(open);

	va_start(ap, flags);
	mode = open_flags_mode(flags, ap);
	va_end(ap);
	fd = real_open(path, flags, mode);
	note_open(AT_FDCWD, path, flags, fd);
	return fd;
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	int mode, fd;
	REAL(openat);

	va_start(ap, flags);
	mode = open_flags_mode(flags, ap);
	va_end(ap);
	fd = real_openat(dirfd, path, flags, mode);
	note_open(dirfd, path, flags, fd);
	return fd;
}

int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int
close(int fd)
{
	REAL(close);

	if (L.on && fd >= 0 && fd < MAX_FD) {
		pthread_mutex_lock(&L.mu);
		L.fd_file[fd] = 0;
		L.fd_dsync[fd] = 0;
		L.fd_append[fd] = 0;
		pthread_mutex_unlock(&L.mu);
	}
	return real_close(fd);
}

/* Where write() or writev() on fd will land: the end with O_APPEND. */
static uint64_t
cur_off(int fd)
{
	struct stat st;
	off_t o;

	if (L.fd_append[fd])
		return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	o = (off_t)syscall(SYS_lseek, fd, 0, SEEK_CUR);

	return o < 0 ? 0 : (uint64_t)o;
}

ssize_t
write(int fd, const void *buf, size_t n)
{
	struct iovec v = { (void *)buf, n };
	uint64_t t0 = now_ns(), off = fd_file(fd) ? cur_off(fd) : 0;
	ssize_t r;
	REAL(write);

	r = real_write(fd, buf, n);
	note_write(fd, off, &v, 1, r, t0);
	return r;
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct iovec v = { (void *)buf, n };
	uint64_t t0 = now_ns();
	ssize_t r;
	REAL(pwrite);

	r = real_pwrite(fd, buf, n, off);
	note_write(fd, (uint64_t)off, &v, 1, r, t0);
	return r;
}

ssize_t pwrite64(int, const void *, size_t, off_t) __attribute__((alias("pwrite")));

ssize_t
writev(int fd, const struct iovec *iov, int n)
{
	uint64_t t0 = now_ns(), off = fd_file(fd) ? cur_off(fd) : 0;
	ssize_t r;
	REAL(writev);

	r = real_writev(fd, iov, n);
	note_write(fd, off, iov, n, r, t0);
	return r;
}

ssize_t
pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	uint64_t t0 = now_ns();
	ssize_t r;
	REAL(pwritev);

	r = real_pwritev(fd, iov, n, off);
	note_write(fd, (uint64_t)off, iov, n, r, t0);
	return r;
}

ssize_t pwritev64(int, const struct iovec *, int, off_t) __attribute__((alias("pwritev")));

int
fsync(int fd)
{
	uint64_t t0 = now_ns();
	int r;
	REAL(fsync);

	r = real_fsync(fd);
	if (r == 0)
		note_simple(fd, WLOG_SYNC, t0, 0);
	return r;
}

int
fdatasync(int fd)
{
	uint64_t t0 = now_ns();
	int r;
	REAL(fdatasync);

	r = real_fdatasync(fd);
	if (r == 0)
		note_simple(fd, WLOG_SYNC, t0, 0);
	return r;
}

int
ftruncate(int fd, off_t len)
{
	uint64_t t0 = now_ns();
	int r;
	REAL(ftruncate);

	r = real_ftruncate(fd, len);
	if (r == 0)
		note_simple(fd, WLOG_TRUNC, t0, (uint64_t)len);
	return r;
}

int ftruncate64(int, off_t) __attribute__((alias("ftruncate")));

/* Growing a file by fallocate is recorded as a truncate to the new size. */
static void
note_grow(int fd, uint64_t t0, uint64_t end)
{
	struct stat st;

	if (fd_file(fd) && fstat(fd, &st) == 0 && (uint64_t)st.st_size >= end)
		note_simple(fd, WLOG_TRUNC, t0, (uint64_t)st.st_size);
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	uint64_t t0 = now_ns();
	int r;
	REAL(fallocate);

	r = real_fallocate(fd, mode, off, len);
	if (r == 0 && mode == 0)
		note_grow(fd, t0, (uint64_t)(off + len));
	return r;
}

int fallocate64(int, int, off_t, off_t) __attribute__((alias("fallocate")));

int
posix_fallocate(int fd, off_t off, off_t len)
{
	uint64_t t0 = now_ns();
	int r;
	REAL(posix_fallocate);

	r = real_posix_fallocate(fd, off, len);
	if (r == 0)
		note_grow(fd, t0, (uint64_t)(off + len));
	return r;
}

int posix_fallocate64(int, off_t, off_t) __attribute__((alias("posix_fallocate")));
