/*
 * rm.h: vtpm-guest's resource manager for the local socket (what
 * /dev/tpmrm0 and tpm2-abrmd do): each client connection gets its own
 * transient objects and sessions, kept out of the TPM between its commands
 * (ContextSave + FlushContext for objects, ContextSave for sessions) and
 * loaded again before the commands that name them. Transient handles are
 * virtual (per connection), session handles keep the TPM's values but are
 * usable only by the connection that owns them. docs/GUEST-DRIVER.md
 * section 5 describes the rules.
 *
 * The RM never talks to vtpmd itself: the caller passes a function that
 * runs one TPM command (so the unit test and the fuzzer drive it with a
 * fake TPM). Everything it reads from a client or from the TPM goes
 * through the cursor; nothing here trusts a length it did not check.
 * One thread: no locking.
 */
#ifndef VTPM_RM_H
#define VTPM_RM_H

#include <stddef.h>
#include <stdint.h>

#include "vtpm_error.h"

#define RM_MAX_OBJECTS	32	/* transient objects per connection */
#define RM_MAX_SESSIONS	8	/* sessions per connection */
#define RM_MAX_ORPHANS	4	/* sessions whose context a closed client kept */
#define RM_RSP_MAX	4096	/* largest TPM response the RM handles */

/* TPM 2.0 response codes the RM answers with itself (Part 2, 6.6). */
#define RM_RC_SUCCESS		0x000U
#define RM_RC_BAD_TAG		0x01EU
#define RM_RC_HANDLE		0x08BU	/* + RM_RC_H/P/S + n << 8 */
#define RM_RC_INSUFFICIENT	0x09AU
#define RM_RC_FAILURE		0x101U
#define RM_RC_COMMAND_CODE	0x143U
#define RM_RC_AUTHSIZE		0x144U
#define RM_RC_AUTH_CONTEXT	0x145U
#define RM_RC_CONTEXT_GAP	0x901U
#define RM_RC_OBJECT_MEMORY	0x902U
#define RM_RC_SESSION_HANDLES	0x905U
#define RM_RC_REFERENCE_H0	0x910U
#define RM_RC_P			0x040U	/* the error is about a parameter */
#define RM_RC_S			0x800U	/* ... about a session */

/*
 * The caller's way to the TPM: runs one command (10..4096 bytes, size field
 * checked) and puts the response (10..cap bytes, size field equal to its
 * length) in rsp, *rlen. Returns 0, or -1 when the TPM could not be reached
 * or the command's fate is unknown.
 */
typedef int (*rm_tpm_fn)(void *arg, const uint8_t *cmd, size_t len,
    uint8_t *rsp, size_t cap, size_t *rlen);

struct rm_conn;

/* A new connection's state (no objects), or NULL (out of memory). */
struct rm_conn *rm_conn_new(void);

/*
 * rm_conn_close: the client is gone. Flushes every session it owns and
 * every object still loaded for it, frees the saved contexts and c. A
 * session whose context the client saved itself (ContextSave) is kept for
 * another client to ContextLoad, at most RM_MAX_ORPHANS of them (the oldest
 * is flushed). c may be NULL.
 */
void rm_conn_close(struct rm_conn *c, rm_tpm_fn tpm, void *arg);

/*
 * rm_command: runs one client command (len bytes, 10..4096, size field
 * already checked) through the RM: checks the handles it names, loads the
 * objects and sessions, runs it, saves them again and rewrites handles.
 * Puts the response for the client in rsp (cap >= RM_RSP_MAX) and *rlen:
 * the TPM's, or one of the RM's own errors (10 bytes, RM_RC_*). Returns 0,
 * or -1 when the TPM could not be reached (the client gets "TPM
 * unavailable"; its command may have run).
 */
int rm_command(struct rm_conn *c, const uint8_t *cmd, size_t len,
    uint8_t *rsp, size_t cap, size_t *rlen, rm_tpm_fn tpm, void *arg) VTPM_WUR;

/*
 * rm_cc_info: for command code cc, the number of handles in its handle
 * area (*nh, 0..3) and in its response (*rh, 0..1), from TPM 2.0 Part 3.
 * Returns 0, or VTPM_E_NOTFOUND for a code the RM does not know (the
 * client gets TPM_RC_COMMAND_CODE).
 */
int rm_cc_info(uint32_t cc, unsigned *nh, unsigned *rh) VTPM_WUR;

/* Number of objects / sessions c owns (for tests). */
int rm_conn_objects(const struct rm_conn *c);
int rm_conn_sessions(const struct rm_conn *c);

#endif
