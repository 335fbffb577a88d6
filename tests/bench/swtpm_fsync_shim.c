/*
 * swtpm_fsync_shim.c: LD_PRELOAD shim that makes Debian's swtpm 0.7.1
 * durable the way upstream swtpm is (src/swtpm/swtpm_nvstore_dir.c on
 * master: write the temporary state file, fsync it, close, rename over the
 * state file, fsync the directory). swtpm 0.7.1 does the same minus both
 * fsyncs, and every state store ends in rename(tmp, state); so this shim
 * wraps rename(): fsync(tmp) (reopened: fsync flushes the inode whichever
 * descriptor asks), the real rename, fsync(directory of the target).
 * The extra open+close per store costs microseconds against milliseconds
 * of flushes. `make bench` checks with strace that it fires: 2 fsyncs and
 * 1 rename per NV_Increment. Benchmarks only; trusts its caller.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int rename(const char *oldpath, const char *newpath);

static void
fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		(void)close(fd);
	}
}

int
rename(const char *oldpath, const char *newpath)
{
	static int (*real_rename)(const char *, const char *);
	char dir[4096];
	const char *slash;
	int rc;

	if (real_rename == NULL &&
	    (real_rename = (int (*)(const char *, const char *))dlsym(RTLD_NEXT,
	    "rename")) == NULL)
		return -1;
	fsync_path(oldpath, O_RDONLY);
	rc = real_rename(oldpath, newpath);
	if (rc != 0)
		return rc;
	slash = strrchr(newpath, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == newpath)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - newpath), newpath);
	fsync_path(dir, O_RDONLY | O_DIRECTORY);
	return 0;
}
