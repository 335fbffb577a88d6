/*
 * endorse.h: endorsement in the parent: the vtpmd EK CA, EK certificates for
 * new instances, and the H-CRTM launch event measured into PCR 0
 * (docs/ENDORSEMENT.md). Only the parent holds the CA key: first derived
 * from the root key, then kept in the store wrapped by the root key (like a
 * data key), so that it survives root-key rotations.
 */
#ifndef VTPM_ENDORSE_H
#define VTPM_ENDORSE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "attest.h"
#include "ipc.h"
#include "store.h"
#include "vtpm_error.h"

#define HCRTM_EVENT_LEN	(15 + 1 + ATTEST_MEASUREMENT_LEN + ATTEST_HOST_DATA_LEN + \
			 ATTEST_LAUNCH_ID_LEN)

/*
 * The H-CRTM event for a launch: "vtpmd-launch-v1" (15 ASCII bytes) |
 * u8 tee | measurement[48] | host data[32] | launch id[32] (128 bytes).
 */
void hcrtm_event(const struct attest_claims *c, uint8_t out[HCRTM_EVENT_LEN]);

/*
 * Issues EK certificates for the EK public areas in an IPC_EK_PUBS body
 * (from a worker: untrusted) and writes the IPC_EK_CERTS body into out.
 * keys receives the EKs as SubjectPublicKeyInfo whenever the body parses,
 * even if no certificate could be issued.
 * Returns 0, VTPM_E_FORMAT (malformed: kill the worker), or another error
 * (no CA: the caller answers with empty certificates).
 */
int ekcert_issue(const char *instance, const uint8_t *body, size_t len,
    uint8_t *out, size_t cap, size_t *outlen, struct attest_ek_keys *keys) VTPM_WUR;

/*
 * The endorsement record of an instance, sealed as SEAL_BLOB_ENDORSEMENT
 * (generation SEAL_ENDORSEMENT_GEN) by its data key; plaintext:
 *   "VEK1" | u16 len | RSA EK SPKI | u16 len | ECC EK SPKI |
 *   u16 len | RSA EK certificate (DER; 0 = none) | u16 len | ECC EK certificate
 */
#define ENDORSE_PLAIN_MAX	(4 + 8 + 2 * ATTEST_EK_SPKI_MAX + 2 * IPC_EK_CERT_MAX)
#define ENDORSE_SEALED_MAX	(ENDORSE_PLAIN_MAX + SEAL_BLOB_OVERHEAD)

/*
 * Seals and commits (synchronously) the endorsement record of rec: keys
 * and the IPC_EK_CERTS body certs (4 zero bytes: no certificates).
 * Replaces any earlier one. Returns 0 or a VTPM_E_* code, logged here: the
 * TPM works without its record, so callers may go on.
 */
int endorse_record_store(const struct store_instance *rec, const uint8_t *dek,
    const struct attest_ek_keys *keys, const uint8_t *certs, size_t clen);

/*
 * The "endorsement" object of `vtpmctl show`: the EK public keys (PEM),
 * SHA-256 of their SPKI and of the certificates, and the EK binding report
 * data (docs/ENDORSEMENT.md); {"recorded": false, "why": ...} when the
 * instance has none or it cannot be opened. Never NULL.
 */
json_object *endorse_show_json(const struct store_instance *rec);

/* The CA certificate in PEM (caller frees), or NULL with a log line. */
char *ekca_pem(void);
/*
 * Report data binding vtpmd's evidence to the CA key:
 * SHA-512("vtpmd-ek-ca-v1" || DER SubjectPublicKeyInfo of the CA key).
 */
int ekca_report_data(uint8_t rd[ATTEST_REPORT_DATA_LEN]) VTPM_WUR;
/* Forgets the cached CA (the root key changed). */
void ekca_reset(void);
/*
 * Before a root-key rotation commits: wraps the CA key for new_kek too and
 * commits that, so the CA stays the same across the rotation (the old
 * root key's copy is left: the store may still be on it if the rotation
 * fails). Returns 0 or a VTPM_E_* code (logged): refuse the rotation then.
 */
int ekca_carry(const struct seal_kek *new_kek) VTPM_WUR;

#endif
