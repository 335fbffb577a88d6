/*
 * vtpm_error.h: the one error space of every vtpmd library folder.
 *
 * Library functions return 0 on success or a negative VTPM_E_* code; a few
 * return a positive count. vtpm_strerror() names every code. Codes never
 * overlap errno: where errno applies the function says so and leaves it set.
 */
#ifndef VTPM_ERROR_H
#define VTPM_ERROR_H

enum vtpm_err {
	VTPM_OK            = 0,
	VTPM_E_NOMEM       = -1001, /* allocation failed */
	VTPM_E_IO          = -1002, /* system call failed; errno is set */
	VTPM_E_SHORT       = -1003, /* input ended before the field */
	VTPM_E_TRAILING    = -1004, /* bytes left after the last field */
	VTPM_E_TOOBIG      = -1005, /* length above the allowed maximum */
	VTPM_E_FORMAT      = -1006, /* malformed input (bad tag, version, value) */
	VTPM_E_AUTH        = -1007, /* authentication tag or signature did not verify */
	VTPM_E_CRYPTO      = -1008, /* a cryptographic primitive failed */
	VTPM_E_PROTO       = -1009, /* message not allowed in this state */
	VTPM_E_CLOSED      = -1010, /* peer closed the connection */
	VTPM_E_NOTFOUND    = -1011, /* no such record */
	VTPM_E_EXISTS      = -1012, /* record exists already */
	VTPM_E_BUSY        = -1013, /* in use (e.g. a live session, a lock held) */
	VTPM_E_STORE       = -1014, /* storage backend failed */
	VTPM_E_STORE_FULL  = -1015, /* storage backend is out of space */
	VTPM_E_WRONG_KEY   = -1016, /* key does not open this store */
	VTPM_E_ROLLBACK    = -1017, /* generation older than expected */
	VTPM_E_POLICY      = -1018, /* attestation claims not allowed by policy */
	VTPM_E_EVIDENCE    = -1019, /* evidence did not verify */
	VTPM_E_BINDING     = -1020, /* evidence not bound to this session */
	VTPM_E_TIMEOUT     = -1021, /* deadline passed */
	VTPM_E_INVAL       = -1022, /* invalid argument or configuration */
	VTPM_E_FENCED      = -1023, /* instance was exported or is owned elsewhere */
	VTPM_E_AGAIN       = -1024, /* not ready yet; try again */
	VTPM_E_UNSUPPORTED = -1025, /* feature not available here */
};

/* Returns a static string for a VTPM_E_* code, or strerror() for a positive errno. */
const char *vtpm_strerror(int err);

#define VTPM_WUR __attribute__((warn_unused_result))

#endif
