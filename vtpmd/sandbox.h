/*
 * sandbox.h: how each vtpmd process limits itself.
 * Steps run in one fixed order and end in fatal() on failure.
 */
#ifndef VTPM_SANDBOX_H
#define VTPM_SANDBOX_H

/* Parent: no core dumps, not dumpable/ptraceable, key memory lockable. */
void sandbox_parent_enter(void);
/* Worker: the same plus no-new-privs, dropped privileges and seccomp. */
void sandbox_worker_enter(void);

#endif
