/*
 * attest.c: the evidence envelope, channel binding, and the simulated backend.
 * Trusts nothing in an envelope: it is parsed with the cursor and every
 * signature and binding is checked before any claim is returned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "attest.h"
#include "cursor.h"

#define EV_MAGIC	"VTEV"
#define EV_VERSION	1
#define SIM_MAGIC	"VTPMSIM1"
#define SIM_BODY_LEN	(8 + ATTEST_MEASUREMENT_LEN + ATTEST_HOST_DATA_LEN + \
			 ATTEST_LAUNCH_ID_LEN + ATTEST_REPORT_DATA_LEN)
#define SIM_REPORT_LEN	(SIM_BODY_LEN + crypto_sign_BYTES)
/* The simulated key is public by design: anyone can sign with it. */
#define SIM_SEED_LABEL	"vtpmd simulated attestation key - TEST ONLY - v1"

struct attest_provider {
	int	tee;
	uint8_t	measurement[ATTEST_MEASUREMENT_LEN];
	uint8_t	host_data[ATTEST_HOST_DATA_LEN];
	uint8_t	launch_id[ATTEST_LAUNCH_ID_LEN];
};

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

static void
sim_keypair(uint8_t pk[crypto_sign_PUBLICKEYBYTES], uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
	uint8_t seed[crypto_sign_SEEDBYTES];

	crypto_hash_sha256(seed, (const uint8_t *)SIM_SEED_LABEL, strlen(SIM_SEED_LABEL));
	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof(seed));
}

int
attest_provider_sim_new(const uint8_t meas[ATTEST_MEASUREMENT_LEN],
    const uint8_t host[ATTEST_HOST_DATA_LEN],
    const uint8_t launch[ATTEST_LAUNCH_ID_LEN], struct attest_provider **out)
{
	struct attest_provider *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return VTPM_E_NOMEM;
	p->tee = ATTEST_TEE_SIM;
	memcpy(p->measurement, meas, sizeof(p->measurement));
	memcpy(p->host_data, host, sizeof(p->host_data));
	memcpy(p->launch_id, launch, sizeof(p->launch_id));
	*out = p;
	return 0;
}

void
attest_provider_free(struct attest_provider *p)
{
	free(p);
}

int
attest_provider_tee(const struct attest_provider *p)
{
	return p->tee;
}

static int
sim_report_make(const struct attest_provider *p, const uint8_t rd[64],
    uint8_t report[SIM_REPORT_LEN])
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	struct wbuf w;
	size_t n;
	int rc;

	wbuf_init(&w, report, SIM_REPORT_LEN);
	wbuf_put_bytes(&w, SIM_MAGIC, 8);
	wbuf_put_bytes(&w, p->measurement, sizeof(p->measurement));
	wbuf_put_bytes(&w, p->host_data, sizeof(p->host_data));
	wbuf_put_bytes(&w, p->launch_id, sizeof(p->launch_id));
	wbuf_put_bytes(&w, rd, ATTEST_REPORT_DATA_LEN);
	if ((rc = wbuf_end(&w, &n)) != 0)
		return rc;
	sim_keypair(pk, sk);
	crypto_sign_detached(report + SIM_BODY_LEN, NULL, report, SIM_BODY_LEN, sk);
	sodium_memzero(sk, sizeof(sk));
	return 0;
}

int
attest_evidence_get(struct attest_provider *p, const uint8_t rd[ATTEST_REPORT_DATA_LEN],
    uint8_t *out, size_t cap, size_t *len)
{
	uint8_t report[SIM_REPORT_LEN];
	struct wbuf w;
	int rc;

	if (p->tee != ATTEST_TEE_SIM)
		return VTPM_E_UNSUPPORTED;
	if ((rc = sim_report_make(p, rd, report)) != 0)
		return rc;
	wbuf_init(&w, out, cap);
	wbuf_put_bytes(&w, EV_MAGIC, 4);
	wbuf_put_u8(&w, EV_VERSION);
	wbuf_put_u8(&w, (uint8_t)p->tee);
	wbuf_put_u16(&w, 0);
	wbuf_put_u32(&w, sizeof(report));
	wbuf_put_bytes(&w, report, sizeof(report));
	wbuf_put_u32(&w, 0);
	return wbuf_end(&w, len);
}

static int
sim_report_verify(const uint8_t *report, size_t len, struct attest_claims *c,
    char *why, size_t whylen)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	struct cursor cur;
	const uint8_t *sig;
	uint8_t magic[8];

	if (len != SIM_REPORT_LEN) {
		snprintf(why, whylen, "simulated report has %zu bytes, want %d",
		    len, SIM_REPORT_LEN);
		return VTPM_E_FORMAT;
	}
	cur_init(&cur, report, len);
	if (cur_get_bytes(&cur, magic, 8) != 0 ||
	    cur_get_bytes(&cur, c->measurement, sizeof(c->measurement)) != 0 ||
	    cur_get_bytes(&cur, c->host_data, sizeof(c->host_data)) != 0 ||
	    cur_get_bytes(&cur, c->launch_id, sizeof(c->launch_id)) != 0 ||
	    cur_get_bytes(&cur, c->report_data, sizeof(c->report_data)) != 0 ||
	    cur_get_ref(&cur, &sig, crypto_sign_BYTES) != 0 || cur_end(&cur) != 0) {
		snprintf(why, whylen, "simulated report truncated");
		return VTPM_E_FORMAT;
	}
	if (memcmp(magic, SIM_MAGIC, 8) != 0) {
		snprintf(why, whylen, "simulated report has a bad magic");
		return VTPM_E_FORMAT;
	}
	sim_keypair(pk, sk);
	sodium_memzero(sk, sizeof(sk));
	if (crypto_sign_verify_detached(sig, report, SIM_BODY_LEN, pk) != 0) {
		snprintf(why, whylen, "simulated report signature does not verify");
		return VTPM_E_EVIDENCE;
	}
	c->tee = ATTEST_TEE_SIM;
	return 0;
}

int
attest_evidence_verify(const struct attest_verify_cfg *cfg, const uint8_t *ev,
    size_t len, const uint8_t expect_rd[ATTEST_REPORT_DATA_LEN],
    struct attest_claims *claims, char *why, size_t whylen)
{
	struct attest_claims c;
	struct cursor cur;
	const uint8_t *report, *aux;
	uint8_t magic[4], version, tee;
	uint16_t reserved;
	uint32_t rlen, alen;
	size_t i;
	int rc;

	memset(&c, 0, sizeof(c));
	if (len > ATTEST_MAX_EVIDENCE) {
		snprintf(why, whylen, "evidence of %zu bytes is too large", len);
		return VTPM_E_TOOBIG;
	}
	cur_init(&cur, ev, len);
	if (cur_get_bytes(&cur, magic, 4) != 0 || cur_get_u8(&cur, &version) != 0 ||
	    cur_get_u8(&cur, &tee) != 0 || cur_get_u16(&cur, &reserved) != 0 ||
	    cur_get_u32(&cur, &rlen) != 0 || cur_get_ref(&cur, &report, rlen) != 0 ||
	    cur_get_u32(&cur, &alen) != 0 || cur_get_ref(&cur, &aux, alen) != 0 ||
	    cur_end(&cur) != 0) {
		snprintf(why, whylen, "evidence envelope is malformed");
		return VTPM_E_FORMAT;
	}
	if (memcmp(magic, EV_MAGIC, 4) != 0 || version != EV_VERSION || reserved != 0) {
		snprintf(why, whylen, "evidence envelope has a bad magic or version");
		return VTPM_E_FORMAT;
	}
	switch (tee) {
	case ATTEST_TEE_SIM:
		if (!cfg->av_allow_sim) {
			snprintf(why, whylen, "simulated evidence is not trusted "
			    "(needs --dev or --allow-sim-attestation)");
			return VTPM_E_UNSUPPORTED;
		}
		if (alen != 0) {
			snprintf(why, whylen, "simulated evidence carries aux data");
			return VTPM_E_FORMAT;
		}
		if ((rc = sim_report_verify(report, rlen, &c, why, whylen)) != 0)
			return rc;
		break;
	default:
		snprintf(why, whylen, "evidence of tee type %u is not supported", tee);
		return VTPM_E_UNSUPPORTED;
	}
	if (sodium_memcmp(c.report_data, expect_rd, ATTEST_REPORT_DATA_LEN) != 0) {
		snprintf(why, whylen, "report data does not match this session");
		return VTPM_E_BINDING;
	}
	if (cfg->av_nmeasurements > 0) {
		for (i = 0; i < cfg->av_nmeasurements; i++)
			if (memcmp(cfg->av_measurements[i], c.measurement,
			    ATTEST_MEASUREMENT_LEN) == 0)
				break;
		if (i == cfg->av_nmeasurements) {
			char hex[2 * ATTEST_MEASUREMENT_LEN + 1];

			attest_hex_encode(c.measurement, ATTEST_MEASUREMENT_LEN, hex);
			snprintf(why, whylen, "measurement %s is not pinned", hex);
			return VTPM_E_POLICY;
		}
	}
	*claims = c;
	return 0;
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
