/*
 * preload.h: shared by the LD_PRELOAD shims of the tests (tests/faultinj,
 * tests/crashsim). Header-only: each shim is one shared object built on its
 * own. Uses raw syscalls, as it runs in a constructor before the shim's own
 * wrappers are ready.
 */
#ifndef VTPM_TEST_PRELOAD_H
#define VTPM_TEST_PRELOAD_H

#include <sys/syscall.h>

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/*
 * 1 if this process is a vtpmd worker or the worker zygote, which the shims
 * leave alone (they write no files, and their sandbox forbids the shims'
 * calls); 0 if not; -1 if /proc/self/cmdline cannot be read.
 */
static int
preload_is_worker(void)
{
	char buf[4096];
	ssize_t n, i;
	int fd;

	if ((fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/cmdline", O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	syscall(SYS_close, fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
		if (strcmp(buf + i, "--worker") == 0 || strcmp(buf + i, "--worker-zygote") == 0)
			return 1;
	return 0;
}

#endif
