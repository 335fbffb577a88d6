/*
 * attest.h: attestation evidence for the vtpmd channel, produced and verified.
 *
 * Each side of a channel sends one evidence envelope whose report data is
 * bound to the Noise handshake (attest_report_data()). A provider produces
 * evidence from the platform (configfs-tsm, /dev/sev-guest) or, for tests and
 * development only, a simulated backend; a verifier checks the envelope and
 * returns the verified claims. Identity and reset-versus-resume decisions are
 * taken only from claims returned by attest_evidence_verify().
 *
 * Envelope (all integers big-endian; docs/PROTOCOL.md):
 *   "VTEV" | u8 version (1) | u8 tee | u16 0 | u32 report_len | report |
 *   u32 aux_len | aux
 */
#ifndef VTPM_ATTEST_H
#define VTPM_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "vtpm_error.h"

#define ATTEST_REPORT_DATA_LEN	64
#define ATTEST_MEASUREMENT_LEN	48
#define ATTEST_HOST_DATA_LEN	32
#define ATTEST_LAUNCH_ID_LEN	32
#define ATTEST_MAX_EVIDENCE	16384

enum attest_tee {
	ATTEST_TEE_SIM = 1,	/* simulated: Ed25519 test key, never trusted by default */
	ATTEST_TEE_SNP = 2,
	ATTEST_TEE_TDX = 3,
};

enum attest_role { ATTEST_ROLE_GUEST = 0, ATTEST_ROLE_VTPMD = 1 };

/* Claims a verifier vouches for. */
struct attest_claims {
	uint8_t	tee;
	uint8_t	measurement[ATTEST_MEASUREMENT_LEN];
	uint8_t	host_data[ATTEST_HOST_DATA_LEN];
	uint8_t	launch_id[ATTEST_LAUNCH_ID_LEN];	/* distinguishes launches (SNP: REPORT_ID) */
	uint8_t	report_data[ATTEST_REPORT_DATA_LEN];
};

/*
 * report_data = SHA-512("vtpmd-attest-v1" || role || h), role the ASCII
 * string "guest" or "vtpmd", h the 32-byte Noise handshake hash.
 */
void attest_report_data(enum attest_role role, const uint8_t h[32],
    uint8_t out[ATTEST_REPORT_DATA_LEN]);

struct attest_provider;

/*
 * Simulated provider: signs the given claims with the built-in test key.
 * For development and tests only; verifiers refuse it unless allow_sim.
 */
int attest_provider_sim_new(const uint8_t meas[ATTEST_MEASUREMENT_LEN],
    const uint8_t host[ATTEST_HOST_DATA_LEN],
    const uint8_t launch[ATTEST_LAUNCH_ID_LEN],
    struct attest_provider **out) VTPM_WUR;
void attest_provider_free(struct attest_provider *p);
/* The tee of this provider's evidence. */
int attest_provider_tee(const struct attest_provider *p);

/*
 * Produces an evidence envelope carrying report_data into out (cap bytes).
 * Returns 0 and sets *len, VTPM_E_TOOBIG, or a provider error.
 */
int attest_evidence_get(struct attest_provider *p,
    const uint8_t report_data[ATTEST_REPORT_DATA_LEN],
    uint8_t *out, size_t cap, size_t *len) VTPM_WUR;

/* What a verifier accepts. */
struct attest_verify_cfg {
	int	av_allow_sim;		/* trust the built-in simulated test key */
	/* Pinned measurements the peer must have; none pinned accepts any. */
	const uint8_t (*av_measurements)[ATTEST_MEASUREMENT_LEN];
	size_t	av_nmeasurements;
};

/*
 * Verifies an envelope from an untrusted peer: format, signature, trust
 * anchor, then that its report data equals expect_rd (this session), then
 * the pinned measurements. On success fills *claims. On failure returns
 * VTPM_E_FORMAT, VTPM_E_EVIDENCE, VTPM_E_UNSUPPORTED (tee not trusted),
 * VTPM_E_BINDING or VTPM_E_POLICY and writes a one-line reason into why.
 */
int attest_evidence_verify(const struct attest_verify_cfg *cfg,
    const uint8_t *ev, size_t len,
    const uint8_t expect_rd[ATTEST_REPORT_DATA_LEN],
    struct attest_claims *claims, char *why, size_t whylen) VTPM_WUR;

/* Hex helpers shared by the command-line programs. */
int attest_hex_decode(const char *hex, uint8_t *out, size_t outlen) VTPM_WUR;
void attest_hex_encode(const uint8_t *in, size_t len, char *out /* 2*len+1 */);

#endif
