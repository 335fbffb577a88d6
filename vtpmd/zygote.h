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
/*
 * A worker's IPC socketpair with the parent's socket options on sv[0]
 * (the parent's end); sv[1] goes to the worker. 0 or VTPM_E_IO.
 */
int  zygote_socketpair(int sv[2]);
int  zygote_spawn(int worker_fd, uint32_t *id);	/* ask for a worker on worker_fd (passed) */

/*
 * Spare workers (--worker-spares N, at most ZYGOTE_SPARES_MAX): forked by the
 * zygote ahead of need and already sandboxed, each waiting for its IPC_INIT
 * exactly like a worker spawned at attach time. zygote_take() hands one out
 * for good: *fd is the parent's end of its IPC socket (the caller owns it),
 * *id its spawn id, *pid its pid or -1 if ZYG_SPAWNED has not come yet (then
 * inst_spawned() gets it). Returns 0, or VTPM_E_AGAIN when none is ready
 * (spawn one with zygote_spawn()). A spare whose socket shows EOF or data
 * is dropped, never handed out. zygote_spares_fill() asks the zygote for
 * replacements up to the configured number; zygote_spares() counts them.
 */
#define ZYGOTE_SPARES_MAX	16
int  zygote_take(int *fd, uint32_t *id, pid_t *pid);
void zygote_spares_fill(void);
int  zygote_spares(void);
void zygote_event(void);			/* EV_ZYGOTE readable */
int  zygote_reaped(pid_t pid);			/* 1 if pid was the zygote (it is restarted) */
void zygote_stop(void);

#endif
