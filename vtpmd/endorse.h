/*
 * endorse.h: endorsement in the parent: the vtpmd EK CA, EK certificates for
 * new instances, and the H-CRTM launch event measured into PCR 0
 * (docs/ENDORSEMENT.md). Only the parent holds the CA key; it is derived
 * from the root key and never stored.
 */
#ifndef VTPM_ENDORSE_H
#define VTPM_ENDORSE_H

#include <stddef.h>
#include <stdint.h>

#include "attest.h"
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
 * Returns 0, VTPM_E_FORMAT (malformed: kill the worker), or another error
 * (no CA: the caller answers with empty certificates).
 */
int ekcert_issue(const char *instance, const uint8_t *body, size_t len,
    uint8_t *out, size_t cap, size_t *outlen) VTPM_WUR;

/* The CA certificate in PEM (caller frees), or NULL with a log line. */
char *ekca_pem(void);
/*
 * Report data binding vtpmd's evidence to the CA key:
 * SHA-512("vtpmd-ek-ca-v1" || DER SubjectPublicKeyInfo of the CA key).
 */
int ekca_report_data(uint8_t rd[ATTEST_REPORT_DATA_LEN]) VTPM_WUR;
/* Forgets the cached CA (the root key changed). */
void ekca_reset(void);

#endif
