/*
 * worker.h: the per-instance TPM worker role of vtpmd (vtpmd --worker).
 * It hosts libtpms for exactly one instance and talks to the parent on fd 3
 * (IPC, ipc.h) and to its guest on the session fd the parent hands over.
 */
#ifndef VTPM_WORKER_H
#define VTPM_WORKER_H

#define WORKER_IPC_FD	3

#include <sys/types.h>

/*
 * Runs the worker until the parent stops it or goes away; returns the exit
 * code. uid/gid: the unprivileged ids to switch to when started as root.
 */
int worker_main(uid_t uid, gid_t gid);
/* The two halves of worker_main(), for the zygote (zygote.c). */
void worker_lib_init(int warm);
int worker_run(uid_t uid, gid_t gid);

#endif
