/*
 * log.h: one logging style for every vtpmd program (OpenBSD daemons' model).
 *
 * Lines go to stderr as "<prog>[pid]: <level>: <func>: <message>".
 * log_warn() appends strerror(errno); log_warnx() does not. fatal()/fatalx()
 * are for the process's own broken invariants only: they log and exit(1).
 * Never pass secrets to any of these.
 */
#ifndef VTPM_LOG_H
#define VTPM_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *prog, int level);
void log_set_prefix(const char *prefix);	/* e.g. the instance name in a worker */
int  log_get_level(void);

void vlog_msg(int level, int with_errno, const char *func, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
void log_msg(int level, int with_errno, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fatal_msg(int with_errno, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define log_warn(...)	log_msg(LOG_LVL_WARN, 1, __func__, __VA_ARGS__)
#define log_warnx(...)	log_msg(LOG_LVL_WARN, 0, __func__, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, 0, __func__, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LVL_DEBUG, 0, __func__, __VA_ARGS__)
#define fatal(...)	fatal_msg(1, __func__, __VA_ARGS__)
#define fatalx(...)	fatal_msg(0, __func__, __VA_ARGS__)

#endif
