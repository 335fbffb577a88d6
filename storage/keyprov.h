/*
 * keyprov.h: where the store's root key (KEK) comes from.
 *
 * A key provider is named by a spec string "scheme:argument":
 *   file:PATH   DEVELOPMENT ONLY: a file of exactly 32 raw key bytes, mode
 *               0600 or stricter (no group or other permission bits).
 *               version = 1; it has no other versions.
 *   kbs:URL     a Trustee KBS (RCAR protocol 0.4.0; docs/KBS.md): the key is
 *               released after attestation, as the resource
 *               cfg->kc_resource ("REPO/TYPE/TAG"). URL is https://HOST[:PORT]
 *               (http:// only with kc_allow_http).
 * Providers sit behind a small vtable, so adding one is adding a scheme.
 *
 * Root-key versions (kbs:): the resource REPO/TYPE/TAG is the current root
 * key and REPO/TYPE/TAG.vN (optional) is version N. A resource holds either
 * exactly 32 raw bytes (version 1 at TAG, N at TAG.vN) or the JSON object
 *   {"version": N, "key": "<standard base64 of 32 bytes>"}
 * with 1 <= N <= 4294967295 (at TAG.vN, N must match). Rotation: publish
 * the new version at TAG (and TAG.vN), keep the old one at TAG.vOLD until
 * every vtpmd using it has rotated (vtpmctl rotate-key).
 *
 * The provider hands out the key in sodium_malloc() memory, read-only; the
 * caller owns it and frees it with seal_kek_free(). Nothing here logs a key
 * byte; the kbs provider parses the released resource by hand inside guarded
 * memory so no key byte reaches an ordinary heap buffer.
 *
 * Threads: a struct keyprov is used by one thread at a time, except
 * keyprov_abort(), which any thread may call. The kbs provider loads libcurl
 * with dlopen() at keyprov_open_config() (so vtpmd's workers never map it);
 * call that before starting other threads.
 */
#ifndef VTPM_KEYPROV_H
#define VTPM_KEYPROV_H

#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "vtpm_error.h"

#define KEYPROV_REPORT_DATA_LEN	64
#define KEYPROV_EVIDENCE_MAX	(256 * 1024)	/* evidence JSON text */
#define KEYPROV_WHY_LEN		256

struct keyprov;		/* opaque */

/*
 * Produces the TEE evidence JSON object ("primary_evidence") for tee with
 * report_data: for snp and tdx the 64 bytes are the report data; for
 * "sample" only the first 48 (the SHA-384 digest) count, see
 * keyprov_kbs_sample_evidence(). Writes JSON text into out[0..cap) and sets
 * *len. Called from the thread that calls keyprov_get_root(). Returns 0 or a
 * negative VTPM_E_* code.
 */
typedef int (*keyprov_evidence_fn)(void *arg, const char *tee,
    const uint8_t report_data[KEYPROV_REPORT_DATA_LEN], char *out, size_t cap,
    size_t *len);

/* TEE key types for kc_tee_key (the JWE key management of the response). */
#define KEYPROV_TEE_KEY_EC	0	/* EC P-256, ECDH-ES+A256KW (default) */
#define KEYPROV_TEE_KEY_RSA	1	/* RSA 3072, RSA-OAEP-256 */

struct keyprov_config {
	const char		*kc_spec;	/* "file:PATH" or "kbs:URL" */
	int			 kc_create_dev;	/* file: create a missing key file */
	/* kbs: only */
	const char		*kc_resource;	/* "REPO/TYPE/TAG" */
	const char		*kc_ca_file;	/* PEM CA bundle; NULL = system default */
	int			 kc_allow_http;	/* permit kbs:http:// */
	const char		*kc_tee;	/* "sample", "snp", "tdx", ... */
	int			 kc_tee_key;	/* KEYPROV_TEE_KEY_* */
	keyprov_evidence_fn	 kc_evidence;
	void			*kc_evidence_arg;
	int			 kc_timeout_ms;	/* per HTTP request; 0 = 15000 */
};

/*
 * Opens the provider named by cfg->kc_spec and checks what it can without
 * fetching (file: the file exists, is a regular file, is not open to group
 * or others, and holds exactly 32 bytes; kbs: the URL, resource path, tee
 * and evidence callback are well-formed, the CA file is readable, libcurl
 * loads). The config's strings are copied.
 *   file: kc_create_dev: if the file is missing, creates it (O_EXCL, mode
 *         0600, fsync of file and directory) from randombytes and logs that
 *         it is a development key. Never set this in production.
 *   out   set to the provider, owned by the caller (keyprov_close()).
 * Returns 0; VTPM_E_INVAL (malformed spec or config, or a bad key file;
 * logged); VTPM_E_NOTFOUND (no key file and kc_create_dev not set; logged);
 * VTPM_E_UNSUPPORTED (unknown scheme, or libcurl cannot be loaded; logged);
 * VTPM_E_IO (system call failed; logged with errno); VTPM_E_NOMEM;
 * VTPM_E_CRYPTO.
 */
int keyprov_open_config(const struct keyprov_config *cfg, struct keyprov **out)
    VTPM_WUR;

/* keyprov_open_config() with only kc_spec and kc_create_dev set. */
int keyprov_open(const char *spec, int create_dev, struct keyprov **out) VTPM_WUR;

/*
 * Fetches the current root key: *out is a new read-only struct seal_kek
 * (kid derived, version set) owned by the caller; free it with
 * seal_kek_free(). Each call re-reads the source (kbs: a new attested
 * session). On failure keyprov_last_error() says why in one line.
 * Returns 0; the codes of keyprov_open_config() except VTPM_E_UNSUPPORTED;
 * and for kbs: VTPM_E_IO (broker unreachable, TLS failure, HTTP error),
 * VTPM_E_TIMEOUT, VTPM_E_POLICY (the broker refused attestation or the
 * resource; its error type and detail are in keyprov_last_error()),
 * VTPM_E_NOTFOUND (no such resource), VTPM_E_FORMAT (garbage from the
 * broker), VTPM_E_AUTH (the JWE does not decrypt), VTPM_E_UNSUPPORTED
 * (protocol features we do not speak), VTPM_E_AGAIN (keyprov_abort()).
 */
int keyprov_get_root(struct keyprov *kp, struct seal_kek **out) VTPM_WUR;

/*
 * As keyprov_get_root() for one version (kbs: resource TAG.vN; file:
 * version 1 only, else VTPM_E_NOTFOUND).
 */
int keyprov_get_version(struct keyprov *kp, uint32_t version, struct seal_kek **out)
    VTPM_WUR;

/*
 * As keyprov_get_root() for another resource of the same broker, in one
 * attested session of its own: kbs: REPO/TYPE/TAG (same rules and the same
 * resource format as the root key; "version" is the resource's). Used for
 * the migration key (docs/OPERATIONS.md). file: VTPM_E_UNSUPPORTED.
 * Returns 0 or the codes of keyprov_get_root(); VTPM_E_INVAL for a
 * malformed resource path.
 */
int keyprov_get_resource(struct keyprov *kp, const char *resource, struct seal_kek **out)
    VTPM_WUR;

/* 1 if s is a well-formed kbs resource path REPO/TYPE/TAG (Trustee's rule). */
int keyprov_resource_ok(const char *s);

/* One line on the last failure of this provider ("" if none). Holds no secret. */
const char *keyprov_last_error(const struct keyprov *kp);

/* Makes a fetch in progress on another thread fail soon with VTPM_E_AGAIN. */
void keyprov_abort(struct keyprov *kp);

/* The spec the provider was opened with, for logs (holds no secret). */
const char *keyprov_spec(const struct keyprov *kp);

/* 1 for a development-only provider (file:). */
int keyprov_is_dev(const struct keyprov *kp);

/* Closes the provider. NULL is a no-op. Keys already handed out stay valid. */
void keyprov_close(struct keyprov *kp);

/*
 * A keyprov_evidence_fn for Trustee's "sample" TEE (simulated attestation):
 * {"svn":"1","report_data":"<standard base64 of report_data[0..48)>"}.
 * It proves nothing; a broker accepts it only with its sample verifier.
 */
int keyprov_kbs_sample_evidence(void *arg, const char *tee,
    const uint8_t report_data[KEYPROV_REPORT_DATA_LEN], char *out, size_t cap,
    size_t *len);

/*
 * Parses a released root-key resource (untrusted bytes, in guarded memory)
 * as described above. want_version 0 means "the current key" (raw bytes are
 * version 1); otherwise the resource was fetched as version want_version.
 * On success *out is a new read-only KEK. Returns 0, VTPM_E_FORMAT (with a
 * reason in why) or VTPM_E_NOMEM. Exposed for the unit tests.
 */
int keyprov_kbs_parse_resource(const uint8_t *res, size_t len, uint32_t want_version,
    struct seal_kek **out, char *why, size_t whylen) VTPM_WUR;

#endif
