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
 *   0x01  IPC_INIT          P>W  (first message, once)                          u32 flags | u32 pcr_banks | u8 nlen | name |
 *                                                                               u32 plen | permall | u32 vlen | volatile
 *   0x02  IPC_READY         W>P  STARTING (once)                                u8 how | u32 tpm_rc
 *   0x03  IPC_STORE         W>P  STARTING, ACTIVE, STOPPING; one outstanding;   u8 blob_type | u32 len | blob
 *                                VOLATILE only in STOPPING
 *   0x04  IPC_STORE_ACK     P>W  answers IPC_STORE                              i32 result (0 = durable) |
 *                                                                               u64 generation now durable (0 on failure)
 *   0x05  IPC_SESSION       P>W  IDLE; carries the guest fd (SCM_RIGHTS)        u32 flags | u8 how | u8 nlen | name |
 *                                                                               tx key[32] | u64 tx n | rx key[32] | u64 rx n |
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
#define IPC_MAX_MSG	(IPC_MAX_BLOB + 512)
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

#endif
