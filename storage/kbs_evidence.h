/*
 * kbs_evidence.h: the "primary_evidence" JSON that Trustee's attestation
 * service parses for tee "snp" and "tdx" (docs/KBS.md section 2).
 *
 *   snp: SnpEvidence {attestation_report, cert_chain}: the report as the
 *        virtee/sev crate (version 7) serialises AttestationReport with
 *        serde_json: every field of the 1184-byte report by name, byte
 *        arrays as arrays of integers, policy/plat_info/key_info as plain
 *        integers, TCB versions {fmc,bootloader,tee,snp,microcode} decoded by
 *        the processor generation (Turin: family 0x1A), version 3+ CPUID
 *        fields, version 5 mitigation vectors (else null), signature {r,s}
 *        as the 72 little-endian bytes each of the report. cert_chain is
 *        [{"cert_type":"VCEK"|"VLEK"|"ASK"|"ARK","data":[DER bytes]}], or
 *        null when there are no certificates (the verifier then fetches the
 *        VCEK itself).
 *   tdx: TdxEvidence {"cc_eventlog": standard base64 of the CCEL ACPI table
 *        data or null, "quote": standard base64 of the TD quote}.
 *
 * The inputs come from this machine's own attestation provider; they are
 * still length-checked. The text is written into the caller's buffer; no
 * allocation. Functions return 0, VTPM_E_INVAL (bad arguments, a report
 * that is not 1184 bytes, an unknown certificate type) or VTPM_E_TOOBIG
 * (cap too small); *len excludes the terminating NUL that is always written
 * when cap > 0.
 */
#ifndef VTPM_KBS_EVIDENCE_H
#define VTPM_KBS_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "vtpm_error.h"

#define KBS_SNP_REPORT_LEN	1184

struct kbs_snp_cert {
	const char	*type;		/* "VCEK", "VLEK", "ASK" or "ARK" */
	const uint8_t	*der;
	size_t		 len;
};

int kbs_evidence_snp_json(const uint8_t *report, size_t rlen,
    const struct kbs_snp_cert *certs, size_t ncerts, char *out, size_t cap,
    size_t *len) VTPM_WUR;

/* ccel may be NULL (cc_eventlog null). */
int kbs_evidence_tdx_json(const uint8_t *quote, size_t qlen, const uint8_t *ccel,
    size_t ccel_len, char *out, size_t cap, size_t *len) VTPM_WUR;

#endif
