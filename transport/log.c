/*
 * log.c: stderr logging with program, pid, level and function.
 * Trusts its callers not to pass secrets; formats nothing else.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_prog = "vtpm";
static char log_prefix[64];
static int log_level = LOG_LVL_INFO;

void
log_init(const char *prog, int level)
{
	log_prog = prog;
	log_level = level;
}

void
log_set_prefix(const char *prefix)
{
	snprintf(log_prefix, sizeof(log_prefix), "%s", prefix ? prefix : "");
}

int
log_get_level(void)
{
	return log_level;
}

void
vlog_msg(int level, int with_errno, const char *func, const char *fmt, va_list ap)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	char msg[1024];
	struct timespec ts;
	struct tm tm;
	int saved = errno;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d]%s%s: %s: %s: %s%s%s\n",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec / 1000000, log_prog, (int)getpid(),
	    log_prefix[0] ? " " : "", log_prefix, names[level], func, msg,
	    with_errno ? ": " : "", with_errno ? strerror(saved) : "");
	errno = saved;
}

void
log_msg(int level, int with_errno, const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_msg(level, with_errno, func, fmt, ap);
	va_end(ap);
}

void
fatal_msg(int with_errno, const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_msg(LOG_LVL_ERR, with_errno, func, fmt, ap);
	va_end(ap);
	exit(1);
}
