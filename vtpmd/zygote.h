/*
 * zygote.h: the worker zygote. vtpmd fork+execs one `vtpmd --worker-zygote`
 * at start; it initialises libtpms and OpenSSL once (holding no key and no
 * guest state), drops privileges, and forks one worker per instance on the
 * parent's request. Workers then share its initialised pages copy-on-write
 * (a few hundred KiB each instead of ~1.2 MiB) and start in about a
 * millisecond instead of tens. Trade-off, stated in docs/DESIGN.md: all
 * workers share the zygote's address-space layout.
 */
#ifndef VTPM_ZYGOTE_H
#define VTPM_ZYGOTE_H

#include <stdint.h>
#include <sys/types.h>

/* Zygote role: returns the exit code. */
int zygote_main(uid_t uid, gid_t gid);

/* Parent side. */
int  zygote_start(void);			/* fork+exec the zygote; 0 or VTPM_E_IO */
int  zygote_spawn(int worker_fd, uint32_t *id);	/* ask for a worker on worker_fd (passed) */
void zygote_event(void);			/* EV_ZYGOTE readable */
int  zygote_reaped(pid_t pid);			/* 1 if pid was the zygote (it is restarted) */
void zygote_stop(void);

#endif
