/*
 * attest.c: the evidence envelope and its channel binding. Parses an
 * untrusted envelope with the cursor, hands the report to the SNP or TDX
 * verifier, and only then compares its report data with this session's and
 * the measurement with the pinned ones. No claim leaves before all of that.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "attest_int.h"
#include "cursor.h"

#define EV_MAGIC	"VTEV"
#define EV_VERSION	1

static const char tdx_label[] = "vtpmd-tdx-launch-v1";

void
attest_report_data(enum attest_role role, const uint8_t h[32],
    uint8_t out[ATTEST_REPORT_DATA_LEN])
{
	crypto_hash_sha512_state st;
	const char *r = role == ATTEST_ROLE_GUEST ? "guest" : "vtpmd";

	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, (const uint8_t *)"vtpmd-attest-v1", 15);
	crypto_hash_sha512_update(&st, (const uint8_t *)r, strlen(r));
	crypto_hash_sha512_update(&st, h, 32);
	crypto_hash_sha512_final(&st, out);
}

void
attest_tdx_report_data(const uint8_t rd[64], const uint8_t nonce[32], uint8_t out[64])
{
	crypto_hash_sha512_state st;

	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, (const uint8_t *)tdx_label, sizeof(tdx_label) - 1);
	crypto_hash_sha512_update(&st, rd, 64);
	crypto_hash_sha512_update(&st, nonce, 32);
	crypto_hash_sha512_final(&st, out);
}

int
attest_evidence_verify(const struct attest_verify_cfg *cfg, const uint8_t *ev,
    size_t len, const uint8_t expect_rd[ATTEST_REPORT_DATA_LEN],
    struct attest_claims *claims, char *why, size_t whylen)
{
	struct attest_claims c;
	struct cursor cur;
	const uint8_t *report, *aux;
	uint8_t magic[4], version, tee, want[64];
	uint16_t reserved;
	uint32_t rlen, alen;
	size_t i;
	int rc;

	memset(claims, 0, sizeof(*claims));
	if (len > ATTEST_MAX_EVIDENCE)
		return attest_fail(why, whylen, VTPM_E_TOOBIG,
		    "evidence of %zu bytes is too large", len);
	cur_init(&cur, ev, len);
	if (cur_get_bytes(&cur, magic, 4) != 0 || cur_get_u8(&cur, &version) != 0 ||
	    cur_get_u8(&cur, &tee) != 0 || cur_get_u16(&cur, &reserved) != 0 ||
	    cur_get_u32(&cur, &rlen) != 0 || cur_get_ref(&cur, &report, rlen) != 0 ||
	    cur_get_u32(&cur, &alen) != 0 || cur_get_ref(&cur, &aux, alen) != 0 ||
	    cur_end(&cur) != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT, "evidence envelope is malformed");
	if (memcmp(magic, EV_MAGIC, 4) != 0 || version != EV_VERSION || reserved != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "evidence envelope has a bad magic or version");
	switch (tee) {
	case ATTEST_TEE_SNP:
		if ((rc = attest_snp_verify(cfg, report, rlen, aux, alen, &c, why, whylen)) != 0)
			return rc;
		if (sodium_memcmp(c.report_data, expect_rd, ATTEST_REPORT_DATA_LEN) != 0)
			goto binding;
		break;
	case ATTEST_TEE_TDX:
		if (alen != ATTEST_TDX_NONCE_LEN)
			return attest_fail(why, whylen, VTPM_E_FORMAT,
			    "TDX evidence carries %u aux bytes, want the %d-byte launch nonce",
			    alen, ATTEST_TDX_NONCE_LEN);
		if ((rc = attest_tdx_verify(cfg, report, rlen, &c, why, whylen)) != 0)
			return rc;
		attest_tdx_report_data(expect_rd, aux, want);
		if (sodium_memcmp(c.tdx.report_data, want, sizeof(want)) != 0)
			goto binding;
		memcpy(c.launch_id, aux, ATTEST_LAUNCH_ID_LEN);
		memcpy(c.report_data, expect_rd, ATTEST_REPORT_DATA_LEN);
		break;
	case 1:
		return attest_fail(why, whylen, VTPM_E_UNSUPPORTED,
		    "evidence of tee type 1 (the old Ed25519 simulated format) is no longer "
		    "accepted: `sim` now sends SEV-SNP reports");
	default:
		return attest_fail(why, whylen, VTPM_E_UNSUPPORTED,
		    "evidence of tee type %u is not supported", tee);
	}
	c.flags |= ATTEST_CF_BOUND;
	if (cfg->av_nmeasurements > 0) {
		for (i = 0; i < cfg->av_nmeasurements; i++)
			if (memcmp(cfg->av_measurements[i], c.measurement,
			    ATTEST_MEASUREMENT_LEN) == 0)
				break;
		if (i == cfg->av_nmeasurements) {
			char hex[2 * ATTEST_MEASUREMENT_LEN + 1];

			attest_hex_encode(c.measurement, ATTEST_MEASUREMENT_LEN, hex);
			sodium_memzero(&c, sizeof(c));
			return attest_fail(why, whylen, VTPM_E_POLICY,
			    "measurement %s is not pinned", hex);
		}
	}
	*claims = c;
	return 0;
binding:
	sodium_memzero(&c, sizeof(c));
	return attest_fail(why, whylen, VTPM_E_BINDING,
	    "report data does not match this session (evidence from another session, "
	    "or replayed)");
}

int
attest_hex_decode(const char *hex, uint8_t *out, size_t outlen)
{
	size_t bin_len;
	const char *end;

	if (hex == NULL || strlen(hex) != 2 * outlen)
		return VTPM_E_INVAL;
	if (sodium_hex2bin(out, outlen, hex, strlen(hex), NULL, &bin_len, &end) != 0 ||
	    bin_len != outlen || *end != '\0')
		return VTPM_E_INVAL;
	return 0;
}

void
attest_hex_encode(const uint8_t *in, size_t len, char *out)
{
	sodium_bin2hex(out, 2 * len + 1, in, len);
}

const char *
attest_signer_name(int signer)
{
	switch (signer) {
	case ATTEST_SIGNER_VCEK: return "VCEK";
	case ATTEST_SIGNER_VLEK: return "VLEK";
	case ATTEST_SIGNER_PCK: return "PCK";
	default: return "none";
	}
}
