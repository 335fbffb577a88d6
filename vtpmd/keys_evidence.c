/*
 * keys_evidence.c: the evidence vtpmd shows the key broker (docs/KBS.md):
 * which Trustee TEE it attests as (--kbs-tee), and that TEE's
 * "primary_evidence" JSON for a given REPORT_DATA, produced by an
 * attestation provider of its own (the channel's V->attester is used by
 * the event loop; this one only by the key fetch thread). Trusts the
 * provider's envelope for form only: it is parsed with the cursor.
 *
 *   --kbs-tee   attestation backend   TEE sent    evidence
 *   auto        sim                   sample      {"svn","report_data"} (proves nothing)
 *   auto        snp / tdx / auto      snp / tdx   SnpEvidence / TdxEvidence
 *   snp         sim or snp            snp         SnpEvidence (sim: TEST chain)
 *   tdx         tdx                   tdx         TdxEvidence
 *   sample      any                   sample      development only
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cursor.h"
#include "kbs_evidence.h"
#include "keyprov.h"
#include "log.h"
#include "ops.h"
#include "parent.h"

#define CCEL_PATH	"/sys/firmware/acpi/tables/data/CCEL"
#define CCEL_MAX	(128 * 1024)	/* base64 of it must fit KEYPROV_EVIDENCE_MAX */

static struct attest_provider *kev_prov;	/* snp/tdx only */
static char kev_tee[16];

static int
kev_open_provider(char *why, size_t whylen)
{
	struct attest_provider_opts o;

	memset(&o, 0, sizeof(o));
	o.ap_kind = V->cfg.attestation;
	memcpy(o.ap_sim_measurement, V->cfg.sim_measurement, sizeof(o.ap_sim_measurement));
	memcpy(o.ap_sim_host_data, V->cfg.sim_host_data, sizeof(o.ap_sim_host_data));
	memcpy(o.ap_sim_launch_id, V->cfg.sim_launch_id, sizeof(o.ap_sim_launch_id));
	return attest_provider_open(&o, &kev_prov, why, whylen);
}

const char *
keys_evidence_tee(char *why, size_t whylen)
{
	const char *want = V->cfg.kbs_tee != NULL ? V->cfg.kbs_tee : "auto";
	const char *have;
	int sim = strcmp(V->cfg.attestation, "sim") == 0;

	if (kev_tee[0] != '\0')
		return kev_tee;
	if (strcmp(want, "sample") == 0 || (strcmp(want, "auto") == 0 && sim)) {
		snprintf(kev_tee, sizeof(kev_tee), "sample");
		return kev_tee;
	}
	if (strcmp(want, "auto") != 0 && strcmp(want, "snp") != 0 && strcmp(want, "tdx") != 0) {
		snprintf(why, whylen, "--kbs-tee %s: want auto, snp, tdx or sample", want);
		return NULL;
	}
	if (kev_prov == NULL && kev_open_provider(why, whylen) != 0)
		return NULL;
	have = attest_provider_tee(kev_prov) == ATTEST_TEE_TDX ? "tdx" : "snp";
	if (strcmp(want, "auto") != 0 && strcmp(want, have) != 0) {
		snprintf(why, whylen, "--kbs-tee %s: the attestation backend (%s) makes %s "
		    "evidence", want, attest_provider_name(kev_prov), have);
		attest_provider_free(kev_prov);
		kev_prov = NULL;
		return NULL;
	}
	snprintf(kev_tee, sizeof(kev_tee), "%s", have);
	return kev_tee;
}

void
keys_evidence_close(void)
{
	attest_provider_free(kev_prov);
	kev_prov = NULL;
	kev_tee[0] = '\0';
}

/* The CCEL ACPI table data, if this guest has one; NULL otherwise. */
static uint8_t *
kev_read_ccel(size_t *len)
{
	uint8_t *buf;
	ssize_t n;
	size_t have = 0;
	int fd;

	*len = 0;
	if ((fd = open(CCEL_PATH, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	if ((buf = malloc(CCEL_MAX)) == NULL) {
		close(fd);
		return NULL;
	}
	while (have < CCEL_MAX) {
		n = read(fd, buf + have, CCEL_MAX - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	if (have == 0 || have == CCEL_MAX) {
		if (have == CCEL_MAX)
			log_warnx("kbs: %s is larger than %d bytes; sending no event log",
			    CCEL_PATH, CCEL_MAX);
		free(buf);
		return NULL;
	}
	*len = have;
	return buf;
}

/* attest.h's envelope: "VTEV" | u8 1 | u8 tee | u16 0 | u32 n | report | u32 n | aux. */
static int
kev_envelope(const uint8_t *ev, size_t len, uint8_t *tee, const uint8_t **rep,
    size_t *rlen, const uint8_t **aux, size_t *alen)
{
	struct cursor c;
	const uint8_t *magic;
	uint8_t ver;
	uint16_t zero;
	uint32_t n1, n2;

	cur_init(&c, ev, len);
	if (cur_get_ref(&c, &magic, 4) != 0 || memcmp(magic, "VTEV", 4) != 0 ||
	    cur_get_u8(&c, &ver) != 0 || ver != 1 || cur_get_u8(&c, tee) != 0 ||
	    cur_get_u16(&c, &zero) != 0 || zero != 0 ||
	    cur_get_u32(&c, &n1) != 0 || cur_get_ref(&c, rep, n1) != 0 ||
	    cur_get_u32(&c, &n2) != 0 || cur_get_ref(&c, aux, n2) != 0 || cur_end(&c) != 0)
		return VTPM_E_FORMAT;
	*rlen = n1;
	*alen = n2;
	return 0;
}

int
keys_evidence(void *arg, const char *tee, const uint8_t rd[KEYPROV_REPORT_DATA_LEN],
    char *out, size_t cap, size_t *len)
{
	struct attest_cert_table t;
	struct kbs_snp_cert certs[4];
	const uint8_t *rep, *aux;
	uint8_t *ev = NULL, *ccel = NULL, etee;
	size_t evlen, rlen, alen, ccel_len, n = 0;
	char why[ATTEST_WHY_LEN];
	int rc;

	*len = 0;
	if (strcmp(tee, "sample") == 0)
		return keyprov_kbs_sample_evidence(arg, tee, rd, out, cap, len);
	if (kev_prov == NULL)
		return VTPM_E_UNSUPPORTED;
	if ((ev = malloc(ATTEST_MAX_EVIDENCE)) == NULL)
		return VTPM_E_NOMEM;
	if ((rc = attest_evidence_get_raw(kev_prov, rd, ev, ATTEST_MAX_EVIDENCE, &evlen)) != 0) {
		log_warnx("kbs: no %s evidence from %s: %s", tee, attest_provider_name(kev_prov),
		    attest_provider_error(kev_prov));
		goto done;
	}
	if ((rc = kev_envelope(ev, evlen, &etee, &rep, &rlen, &aux, &alen)) != 0) {
		log_warnx("kbs: the attestation provider's evidence is malformed");
		goto done;
	}
	if (strcmp(tee, "snp") == 0 && etee == ATTEST_TEE_SNP) {
		if (alen > 0) {
			if ((rc = attest_cert_table_parse(aux, alen, &t, why, sizeof(why))) != 0) {
				log_warnx("kbs: SNP certificate table: %s", why);
				goto done;
			}
			if (t.vcek != NULL)
				certs[n++] = (struct kbs_snp_cert){ "VCEK", t.vcek, t.vcek_len };
			if (t.vlek != NULL)
				certs[n++] = (struct kbs_snp_cert){ "VLEK", t.vlek, t.vlek_len };
			if (t.ask != NULL)
				certs[n++] = (struct kbs_snp_cert){ "ASK", t.ask, t.ask_len };
			if (t.ark != NULL)
				certs[n++] = (struct kbs_snp_cert){ "ARK", t.ark, t.ark_len };
		}
		rc = kbs_evidence_snp_json(rep, rlen, certs, n, out, cap, len);
	} else if (strcmp(tee, "tdx") == 0 && etee == ATTEST_TEE_TDX) {
		ccel = kev_read_ccel(&ccel_len);
		rc = kbs_evidence_tdx_json(rep, rlen, ccel, ccel_len, out, cap, len);
	} else {
		log_warnx("kbs: tee %s, but the provider made evidence of tee %u", tee, etee);
		rc = VTPM_E_UNSUPPORTED;
	}
done:
	free(ccel);
	free(ev);
	return rc;
}
