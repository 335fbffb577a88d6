/*
 * sandbox.h: how each vtpmd process limits itself.
 * Steps run in one fixed order and end in fatal() on failure.
 */
#ifndef VTPM_SANDBOX_H
#define VTPM_SANDBOX_H

/* Parent: no core dumps, not dumpable/ptraceable, key memory lockable. */
void sandbox_parent_enter(void);
#include <sys/types.h>

/*
 * Worker: the same, then (when started as root) all groups dropped and
 * uid/gid switched to the given unprivileged ids ((uid_t)-1: keep), then
 * no-new-privs and the default-deny seccomp allow-list.
 */
void sandbox_worker_enter(uid_t uid, gid_t gid);
/*
 * Compiles the worker's allow-list to BPF once, so that workers forked
 * afterwards (from the zygote) load the same filter without compiling it
 * again. Optional: without it, sandbox_worker_enter() compiles the filter
 * itself. fatal() on failure.
 */
void sandbox_worker_prepare(void);
/*
 * The worker zygote: no core dumps, not dumpable, privileges dropped as for
 * workers, no-new-privs. No seccomp of its own (it must fork); each worker
 * loads its allow-list right after the fork.
 */
void sandbox_zygote_enter(uid_t uid, gid_t gid);

#endif
