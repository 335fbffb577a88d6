/*
 * ipc.h: the processes of vtpmd and the messages they may exchange.
 *
 * Processes and their powers (the one table; docs/DESIGN.md repeats it):
 *
 *   process        started by            holds                                  may
 *   -------------  --------------------  -------------------------------------  --------------------------------
 *   vtpmd parent   operator / systemd    listeners, admin socket, root key,     accept, handshake, verify
 *                                        instance data keys, the store (LMDB    evidence, seal/commit state,
 *                                        or etcd), policy, its own attestation  spawn and kill workers
 *   (its etcd      the parent, with      its curl handle and the lease ID       renew the lease every TTL/3 over
 *   keepalive      --store etcd: only    (no key, no state)                     etcd's gateway; grant a new one if
 *   thread)                                                                     etcd lost it; touches nothing else
 *   vtpmd worker   parent: fork+exec     ONE guest's TPM state in plaintext     run libtpms, serve its guest's
 *   (one per       of vtpmd --worker     (libtpms singleton), that session's    session directly (single hop),
 *   attached                             channel cipher states                  ask the parent to store blobs
 *   instance)                                                                   (never sees keys or the store)
 *   vtpm-guest     guest init / systemd  its channel keys, the guest's          attest, attach, relay TPM
 *                                        evidence provider; no TPM state        commands from local clients
 *
 * IPC between parent and worker: one SOCK_SEQPACKET socketpair per worker,
 * one message per packet: u8 type | u8 0 | u16 0 | body. Every body has an
 * exact layout checked with the cursor (exact end). Integers big-endian.
 *
 *   type  name              dir  worker state(s) in which it is allowed         body
 *   ----  ----------------  ---  ---------------------------------------------  -----------------------------------------
 *   0x01  IPC_INIT          P>W  (first message, once); carries the worker's    u32 flags | u32 pcr_banks | u8 nlen | name |
 *                                shared page (SCM_RIGHTS, see below)            u32 plen | permall | u32 vlen | volatile
 *   0x02  IPC_READY         W>P  STARTING (once)                                u8 how | u32 tpm_rc
 *   0x03  IPC_STORE         W>P  STARTING, ACTIVE, STOPPING; one outstanding    u8 blob_type | u32 len | blob
 *                                store of either kind; VOLATILE only in
 *                                STOPPING
 *   0x04  IPC_STORE_ACK     P>W  answers IPC_STORE                              i32 result (0 = durable) |
 *                                                                               u64 generation now durable (0 on failure)
 *   0x05  IPC_SESSION       P>W  IDLE; carries the guest fd (SCM_RIGHTS),       u32 flags | u8 how | u8 nlen | name |
 *                                made blocking (the parent keeps a dup)         tx key[32] | u64 tx n | rx key[32] | u64 rx n |
 *                                                                               u16 elen | H-CRTM launch event
 *   0x06  IPC_SESSION_END   W>P  ACTIVE, STOPPING                               u8 reason
 *   0x07  IPC_KICK          P>W  ACTIVE (end the session, keep the TPM)         -
 *   0x08  IPC_STOP          P>W  IDLE, ACTIVE (save volatile state and exit)    -
 *   0x09  IPC_STOPPED       W>P  STOPPING (once; the worker then exits)         u8 saved
 *   0x0a  IPC_EK_PUBS       W>P  STARTING, at manufacture (once)                u16 len | RSA EK TPMT_PUBLIC |
 *                                                                               u16 len | ECC EK TPMT_PUBLIC
 *   0x0b  IPC_EK_CERTS      P>W  answers IPC_EK_PUBS                            u16 len | RSA EK cert (DER) |
 *                                                                               u16 len | ECC EK cert (DER); 0 = none
 *   0x0c  IPC_STATS         W>P  ACTIVE, STOPPING; after a command at most      u32 TPM commands since the last report
 *                                once a second, and before IPC_SESSION_END      (metrics; the count is not trusted for
 *                                                                               anything else)
 *   0x0d  IPC_STORE_RSP     W>P  ACTIVE, STOPPING; one outstanding store of     u64 generation | u16 flen | frames |
 *                                either kind; a guest command changed the       u32 len | permanent-state blob
 *                                permanent state: store it, then send frames
 *   0x0e  IPC_RSP_ACK       P>W  answers IPC_STORE_RSP only if it failed or     i32 result (0 = durable) |
 *                                its frames did not all leave (else the shared  u64 generation now durable (0 on failure) |
 *                                page tells)                                    u16 tlen | the frames' unsent tail
 *
 * Durable responses (IPC_STORE_RSP). A guest command that changes the TPM's
 * permanent state is answered only once that state is durable. The worker
 * does not wait for that: it encrypts the response as usual -- preceded by
 * MSG_STATE_GEN for the generation the store will get, in a freshness
 * session -- and hands the frames, without writing them, to the parent
 * together with the blob. The parent seals and group-commits the blob,
 * checks that generation is the one it assigned (else: failure), and after
 * the commit writes the frames to the guest itself, on its own dup of the
 * session fd (non-blocking). Then it publishes the store in the worker's
 * shared page; the worker checks the page before it serves the next guest
 * message, and sleeps on the page's futex word only if the store is not
 * decided yet -- a guest that pipelines. If the frames did not all fit in
 * the socket, the parent sends their tail back in IPC_RSP_ACK and the worker
 * writes it. On a failed commit the parent wipes the frames and answers
 * IPC_RSP_ACK(failure); the worker restores its last durable state and
 * answers TPM_RC_NV_UNAVAILABLE itself, with the tx nonce rewound to the
 * one the wiped frames used. The success frames and the failure frame share
 * nonces, but exactly one of them ever leaves vtpmd, so no nonce repeats on
 * the wire. Stores outside a guest command (manufacture, Startup after a
 * power-on, volatile state at stop) use IPC_STORE/IPC_STORE_ACK.
 *
 * The shared page (struct ipc_shared): a memfd the parent creates per
 * worker, maps writable and seals (no shrink, no grow, no future write)
 * before passing it with IPC_INIT; the worker maps it read-only and cannot
 * gain write access. Only the parent writes it:
 *
 *   offset  field      meaning
 *   0       decided    u32 futex word: the number (low 32 bits) of the last
 *                      IPC_STORE_RSP whose outcome is known -- in done_seq
 *                      or in an IPC_RSP_ACK, both written before it (release
 *                      ordering); the parent wakes sleepers after each change
 *   8       done_seq   u64: the number of the last IPC_STORE_RSP (the
 *                      worker's n-th is n, from 1) that is durable and whose
 *                      frames all left
 *   16      next_gen   u64: the generation the instance's next store gets
 *
 * A worker that fakes a done_seq to itself only misleads itself.
 *
 * When the parent sends IPC_STOP (or IPC_KICK) to a worker with a session,
 * it also shuts down the reading side of its dup of the session socket: a
 * worker blocked in read() on its guest wakes with end-of-file and checks
 * its IPC before taking that as the guest hanging up.
 *
 * The parent and the worker zygote (zygote.h) use the same packet format
 * on their own socketpair:
 *
 *   0x20  ZYG_SPAWN         P>Z  any time, also for spares (zygote.h);        u32 spawn id
 *                                carries the new worker's IPC fd
 *   0x21  ZYG_SPAWNED       Z>P  answers ZYG_SPAWN                            u32 spawn id | u32 pid (0: fork failed)
 *   0x22  ZYG_EXITED        Z>P  a worker exited                              u32 pid | u32 wait status
 *
 * Anything else -- unknown type, wrong state, wrong length, a second
 * outstanding store -- gets the worker killed and logged; only its guest
 * notices.
 */
#ifndef VTPM_IPC_H
#define VTPM_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "vtpm_error.h"

enum ipc_type {
	IPC_INIT	= 0x01,
	IPC_READY	= 0x02,
	IPC_STORE	= 0x03,
	IPC_STORE_ACK	= 0x04,
	IPC_SESSION	= 0x05,
	IPC_SESSION_END	= 0x06,
	IPC_KICK	= 0x07,
	IPC_STOP	= 0x08,
	IPC_STOPPED	= 0x09,
	ZYG_SPAWN	= 0x20,
	ZYG_SPAWNED	= 0x21,
	ZYG_EXITED	= 0x22,
	IPC_EK_PUBS	= 0x0a,
	IPC_EK_CERTS	= 0x0b,
	IPC_STATS	= 0x0c,
	IPC_STORE_RSP	= 0x0d,
	IPC_RSP_ACK	= 0x0e,
};

/* The H-CRTM launch event vtpmd hashes into PCR 0 (docs/ENDORSEMENT.md). */
#define HCRTM_EVENT_MAX		256
#define IPC_EK_PUB_MAX		1024
#define IPC_EK_CERT_MAX		2048

/* IPC_INIT flags */
#define IPC_INIT_F_MANUFACTURE	0x1	/* no permanent state yet: manufacture */

/* IPC_STORE blob types (the same values as the sealed-blob types in storage/) */
#define IPC_BLOB_PERMANENT	1
#define IPC_BLOB_VOLATILE	2

/* IPC_SESSION flags */
#define IPC_SESS_F_POWER_CYCLE	0x1	/* new launch: reset the TPM first */
#define IPC_SESS_F_AUTO_STARTUP	0x2	/* send TPM2_Startup(CLEAR) after power-on */
#define IPC_SESS_F_FRESHNESS	0x4	/* send MSG_STATE_GEN when a store is durable */

/* IPC_SESSION_END reasons */
enum ipc_end_reason {
	END_PEER_CLOSED	= 1,
	END_BAD_FRAME	= 2,	/* decrypt/format failure: tampering or bug */
	END_DETACH	= 3,	/* orderly CTRL_DETACH */
	END_KICKED	= 4,
	END_IO		= 5,
};

/* A worker's state as the parent sees it (bit positions for the table). */
enum ipc_worker_state {
	IPC_WS_STARTING	= 0,
	IPC_WS_IDLE	= 1,
	IPC_WS_ACTIVE	= 2,
	IPC_WS_STOPPING	= 3,
	IPC_WS_DEAD	= 4,
};

/* Blob sizes: libtpms permanent state is at most ~140 KiB. */
#define IPC_MAX_BLOB	(192 * 1024)
/* Frames in an IPC_STORE_RSP: MSG_STATE_GEN and a response of up to 8 KiB. */
#define IPC_MAX_HELD	8448
#define IPC_MAX_HELD_FRAMES	2
#define IPC_MAX_MSG	(IPC_MAX_BLOB + IPC_MAX_HELD + 512)

/* The worker's shared page (see above); naturally aligned u64 words. */
struct ipc_shared {
	uint32_t	decided;
	uint32_t	pad;
	uint64_t	done_seq;
	uint64_t	next_gen;
};
#define IPC_SHARED_LEN	4096
#define IPC_HDR_LEN	4

/*
 * Sends one message; if pass_fd >= 0 it travels with it (SCM_RIGHTS).
 * Returns 0, VTPM_E_CLOSED or VTPM_E_IO.
 */
int ipc_send(int sock, uint8_t type, const void *body, size_t len, int pass_fd) VTPM_WUR;
/* Same, with the body gathered from two pieces (header fields + blob). */
int ipc_send2(int sock, uint8_t type, const void *a, size_t alen,
    const void *b, size_t blen, int pass_fd) VTPM_WUR;
/*
 * Receives one message into buf (cap >= IPC_MAX_MSG recommended): type, body
 * pointer into buf and body length. *fd_out gets a passed fd or -1 (a passed
 * fd on a message that should carry none is closed and VTPM_E_PROTO returned).
 * Returns 0, VTPM_E_AGAIN (non-blocking, nothing there), VTPM_E_CLOSED,
 * VTPM_E_FORMAT (short header, truncated packet), VTPM_E_IO.
 */
int ipc_recv(int sock, uint8_t *buf, size_t cap, uint8_t *type,
    const uint8_t **body, size_t *blen, int *fd_out) VTPM_WUR;

/*
 * The permission table for messages a worker sends (the untrusted
 * direction): 0 if a message of this type and body length is allowed while
 * the worker is in state ws, else VTPM_E_PROTO (unknown type, wrong state)
 * or VTPM_E_FORMAT (wrong length). Type-specific rules beyond the table
 * (one outstanding store, VOLATILE only while stopping) are checked by
 * ipc_parse_store() and the caller.
 */
int ipc_worker_msg_allowed(uint8_t type, enum ipc_worker_state ws, size_t len) VTPM_WUR;

/*
 * Parses an IPC_STORE body: u8 blob_type | u32 len | blob, exactly. Points
 * *blob into body. Returns 0, VTPM_E_FORMAT or VTPM_E_PROTO (a VOLATILE blob
 * outside STOPPING, an unknown blob type, an empty or oversized blob).
 */
int ipc_parse_store(const uint8_t *body, size_t len, enum ipc_worker_state ws,
    uint8_t *btype, const uint8_t **blob, size_t *blen) VTPM_WUR;

/*
 * Parses an IPC_STORE_RSP body: u64 generation | u16 flen | frames | u32 len
 * | blob, exactly; the frames must be 1 to IPC_MAX_HELD_FRAMES whole
 * channel frames (u16 length >= 1 | bytes) ending exactly at flen. Points
 * *frames and *blob into body. Returns 0 or VTPM_E_FORMAT (also for a zero
 * generation, an empty or oversized blob or frame area).
 */
int ipc_parse_store_rsp(const uint8_t *body, size_t len, uint64_t *gen,
    const uint8_t **frames, size_t *flen, const uint8_t **blob, size_t *blen) VTPM_WUR;

#endif
