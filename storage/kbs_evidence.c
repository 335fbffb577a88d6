/*
 * kbs_evidence.c: Trustee's "primary_evidence" JSON for SEV-SNP and TDX
 * (kbs_evidence.h), written field by field from the raw report or quote.
 * Trusts its inputs only for their length: they come from this machine's
 * attestation provider, and every offset below is inside the fixed
 * 1184-byte report.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "kbs_evidence.h"

/* SEV-SNP ATTESTATION_REPORT offsets (AMD SEV-SNP ABI, table "ATTESTATION_REPORT"). */
#define SNP_VERSION		0x000
#define SNP_GUEST_SVN		0x004
#define SNP_POLICY		0x008
#define SNP_FAMILY_ID		0x010
#define SNP_IMAGE_ID		0x020
#define SNP_VMPL		0x030
#define SNP_SIG_ALGO		0x034
#define SNP_CURRENT_TCB		0x038
#define SNP_PLAT_INFO		0x040
#define SNP_KEY_INFO		0x048
#define SNP_REPORT_DATA		0x050
#define SNP_MEASUREMENT		0x090
#define SNP_HOST_DATA		0x0C0
#define SNP_ID_KEY_DIGEST	0x0E0
#define SNP_AUTHOR_KEY_DIGEST	0x110
#define SNP_REPORT_ID		0x140
#define SNP_REPORT_ID_MA	0x160
#define SNP_REPORTED_TCB	0x180
#define SNP_CPUID_FAM		0x188
#define SNP_CPUID_MOD		0x189
#define SNP_CPUID_STEP		0x18A
#define SNP_CHIP_ID		0x1A0
#define SNP_COMMITTED_TCB	0x1E0
#define SNP_CURRENT_VER		0x1E8	/* build, minor, major */
#define SNP_COMMITTED_VER	0x1EC
#define SNP_LAUNCH_TCB		0x1F0
#define SNP_LAUNCH_MIT		0x1F8	/* version 5 */
#define SNP_CURRENT_MIT		0x200	/* version 5 */
#define SNP_SIG_R		0x2A0
#define SNP_SIG_S		0x2E8
#define SNP_SIG_PART_LEN	72

#define SNP_FAMILY_TURIN	0x1A

/* A bounded appender over the caller's buffer; sticky overflow. */
struct jout {
	char	*p;
	size_t	 cap, len;
	int	 over;
};

static void jout_printf(struct jout *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
jout_printf(struct jout *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->over)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->over = 1;
		return;
	}
	o->len += (size_t)n;
}

static void
jout_bytes(struct jout *o, const char *name, const uint8_t *b, size_t n)
{
	size_t i;

	jout_printf(o, "\"%s\":[", name);
	for (i = 0; i < n; i++)
		jout_printf(o, i ? ",%u" : "%u", b[i]);
	jout_printf(o, "]");
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/*
 * A TCB_VERSION as sev's TcbVersion: Milan and Genoa put bootloader, tee,
 * snp, microcode at bytes 0, 1, 6, 7 (no FMC); Turin puts fmc, bootloader,
 * tee, snp at bytes 0..3 and microcode at 7.
 */
static void
jout_tcb(struct jout *o, const char *name, const uint8_t *t, int turin)
{
	if (turin)
		jout_printf(o, "\"%s\":{\"fmc\":%u,\"bootloader\":%u,\"tee\":%u,\"snp\":%u,"
		    "\"microcode\":%u}", name, t[0], t[1], t[2], t[3], t[7]);
	else
		jout_printf(o, "\"%s\":{\"fmc\":null,\"bootloader\":%u,\"tee\":%u,\"snp\":%u,"
		    "\"microcode\":%u}", name, t[0], t[1], t[6], t[7]);
}

static void
jout_version(struct jout *o, const char *name, const uint8_t *v)
{
	jout_printf(o, "\"%s\":{\"major\":%u,\"minor\":%u,\"build\":%u}", name, v[2], v[1],
	    v[0]);
}

static int
jout_end(struct jout *o, size_t *len)
{
	if (o->over) {
		if (o->cap > 0)
			o->p[0] = '\0';
		*len = 0;
		return VTPM_E_TOOBIG;
	}
	*len = o->len;
	return 0;
}

static int
cert_type_ok(const char *t)
{
	return t != NULL && (strcmp(t, "VCEK") == 0 || strcmp(t, "VLEK") == 0 ||
	    strcmp(t, "ASK") == 0 || strcmp(t, "ARK") == 0);
}

int
kbs_evidence_snp_json(const uint8_t *r, size_t rlen, const struct kbs_snp_cert *certs,
    size_t ncerts, char *out, size_t cap, size_t *len)
{
	struct jout o = { .p = out, .cap = cap };
	uint32_t version;
	size_t i;
	int turin;

	*len = 0;
	if (out == NULL || cap == 0)
		return VTPM_E_TOOBIG;
	out[0] = '\0';
	if (r == NULL || rlen != KBS_SNP_REPORT_LEN || (ncerts > 0 && certs == NULL))
		return VTPM_E_INVAL;
	for (i = 0; i < ncerts; i++)
		if (!cert_type_ok(certs[i].type) || certs[i].der == NULL || certs[i].len == 0)
			return VTPM_E_INVAL;
	version = le32(r + SNP_VERSION);
	turin = version >= 3 && r[SNP_CPUID_FAM] == SNP_FAMILY_TURIN;

	jout_printf(&o, "{\"attestation_report\":{\"version\":%u,\"guest_svn\":%u,"
	    "\"policy\":%llu,", version, le32(r + SNP_GUEST_SVN),
	    (unsigned long long)le64(r + SNP_POLICY));
	jout_bytes(&o, "family_id", r + SNP_FAMILY_ID, 16);
	jout_printf(&o, ",");
	jout_bytes(&o, "image_id", r + SNP_IMAGE_ID, 16);
	jout_printf(&o, ",\"vmpl\":%u,\"sig_algo\":%u,", le32(r + SNP_VMPL),
	    le32(r + SNP_SIG_ALGO));
	jout_tcb(&o, "current_tcb", r + SNP_CURRENT_TCB, turin);
	jout_printf(&o, ",\"plat_info\":%llu,\"key_info\":%u,",
	    (unsigned long long)le64(r + SNP_PLAT_INFO), le32(r + SNP_KEY_INFO));
	jout_bytes(&o, "report_data", r + SNP_REPORT_DATA, 64);
	jout_printf(&o, ",");
	jout_bytes(&o, "measurement", r + SNP_MEASUREMENT, 48);
	jout_printf(&o, ",");
	jout_bytes(&o, "host_data", r + SNP_HOST_DATA, 32);
	jout_printf(&o, ",");
	jout_bytes(&o, "id_key_digest", r + SNP_ID_KEY_DIGEST, 48);
	jout_printf(&o, ",");
	jout_bytes(&o, "author_key_digest", r + SNP_AUTHOR_KEY_DIGEST, 48);
	jout_printf(&o, ",");
	jout_bytes(&o, "report_id", r + SNP_REPORT_ID, 32);
	jout_printf(&o, ",");
	jout_bytes(&o, "report_id_ma", r + SNP_REPORT_ID_MA, 32);
	jout_printf(&o, ",");
	jout_tcb(&o, "reported_tcb", r + SNP_REPORTED_TCB, turin);
	if (version >= 3)
		jout_printf(&o, ",\"cpuid_fam_id\":%u,\"cpuid_mod_id\":%u,\"cpuid_step\":%u,",
		    r[SNP_CPUID_FAM], r[SNP_CPUID_MOD], r[SNP_CPUID_STEP]);
	else
		jout_printf(&o, ",\"cpuid_fam_id\":null,\"cpuid_mod_id\":null,"
		    "\"cpuid_step\":null,");
	jout_bytes(&o, "chip_id", r + SNP_CHIP_ID, 64);
	jout_printf(&o, ",");
	jout_tcb(&o, "committed_tcb", r + SNP_COMMITTED_TCB, turin);
	jout_printf(&o, ",");
	jout_version(&o, "current", r + SNP_CURRENT_VER);
	jout_printf(&o, ",");
	jout_version(&o, "committed", r + SNP_COMMITTED_VER);
	jout_printf(&o, ",");
	jout_tcb(&o, "launch_tcb", r + SNP_LAUNCH_TCB, turin);
	if (version >= 5)
		jout_printf(&o, ",\"launch_mit_vector\":%llu,\"current_mit_vector\":%llu",
		    (unsigned long long)le64(r + SNP_LAUNCH_MIT),
		    (unsigned long long)le64(r + SNP_CURRENT_MIT));
	else
		jout_printf(&o, ",\"launch_mit_vector\":null,\"current_mit_vector\":null");
	jout_printf(&o, ",\"signature\":{");
	jout_bytes(&o, "r", r + SNP_SIG_R, SNP_SIG_PART_LEN);
	jout_printf(&o, ",");
	jout_bytes(&o, "s", r + SNP_SIG_S, SNP_SIG_PART_LEN);
	jout_printf(&o, "}},\"cert_chain\":");
	if (ncerts == 0) {
		jout_printf(&o, "null}");
		return jout_end(&o, len);
	}
	jout_printf(&o, "[");
	for (i = 0; i < ncerts; i++) {
		jout_printf(&o, "%s{\"cert_type\":\"%s\",", i ? "," : "", certs[i].type);
		jout_bytes(&o, "data", certs[i].der, certs[i].len);
		jout_printf(&o, "}");
	}
	jout_printf(&o, "]}");
	return jout_end(&o, len);
}

/* "name":"<standard base64 of b>" straight into the buffer. */
static void
jout_b64(struct jout *o, const char *name, const uint8_t *b, size_t n)
{
	size_t need = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);

	jout_printf(o, "\"%s\":\"", name);
	if (o->over || o->cap - o->len < need + 2) {
		o->over = 1;
		return;
	}
	sodium_bin2base64(o->p + o->len, need, b, n, sodium_base64_VARIANT_ORIGINAL);
	o->len += need - 1;
	jout_printf(o, "\"");
}

int
kbs_evidence_tdx_json(const uint8_t *quote, size_t qlen, const uint8_t *ccel,
    size_t ccel_len, char *out, size_t cap, size_t *len)
{
	struct jout o = { .p = out, .cap = cap };

	*len = 0;
	if (out == NULL || cap == 0)
		return VTPM_E_TOOBIG;
	out[0] = '\0';
	if (quote == NULL || qlen == 0 || (ccel == NULL && ccel_len != 0))
		return VTPM_E_INVAL;
	jout_printf(&o, "{");
	if (ccel != NULL && ccel_len > 0)
		jout_b64(&o, "cc_eventlog", ccel, ccel_len);
	else
		jout_printf(&o, "\"cc_eventlog\":null");
	jout_printf(&o, ",");
	jout_b64(&o, "quote", quote, qlen);
	jout_printf(&o, "}");
	return jout_end(&o, len);
}
