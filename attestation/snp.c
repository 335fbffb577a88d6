/*
 * snp.c: the AMD SEV-SNP verifier: ATTESTATION_REPORT versions 2..5 read
 * with the cursor, the GHCB certificate table, the VCEK/VLEK -> ASK/ASVK ->
 * pinned ARK chain, the VCEK's hwID and SPL extensions against the report,
 * and the ECDSA P-384 signature. Every byte of a report, a table and a
 * certificate is untrusted until the signature and the chain have verified.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <sodium.h>

#include "attest_int.h"
#include "cursor.h"

/* GHCB spec 4.1.8.1 GUIDs, RFC 4122 byte order (as AMD's sev-guest tool and
 * go-sev-guest write them). The mixed-endian order is accepted too. */
const uint8_t snp_guid_vcek[16] = { 0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
	0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd };
const uint8_t snp_guid_vlek[16] = { 0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
	0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1 };
const uint8_t snp_guid_ask[16] = { 0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
	0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82 };
const uint8_t snp_guid_ark[16] = { 0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
	0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae };

#define CT_ENTRY_LEN	24
#define CT_MAX_ENTRIES	32
#define CERT_MAX	(64 * 1024)
#define CACHE_MAX_FILES	64

#define OID_PRODUCT	"1.3.6.1.4.1.3704.1.2"
#define OID_BL_SPL	"1.3.6.1.4.1.3704.1.3.1"
#define OID_TEE_SPL	"1.3.6.1.4.1.3704.1.3.2"
#define OID_SNP_SPL	"1.3.6.1.4.1.3704.1.3.3"
#define OID_UCODE_SPL	"1.3.6.1.4.1.3704.1.3.8"
#define OID_FMC_SPL	"1.3.6.1.4.1.3704.1.3.9"
#define OID_HWID	"1.3.6.1.4.1.3704.1.4"
#define OID_CSP_ID	"1.3.6.1.4.1.3704.1.5"

static const char *const builtin_inters[] = {
	"amdroots/milan_ask.pem", "amdroots/milan_asvk.pem",
	"amdroots/genoa_ask.pem", "amdroots/genoa_asvk.pem",
	"amdroots/turin_ask.pem", "amdroots/turin_asvk.pem",
	"testchain/ask.pem",
};
static const char *const builtin_roots[] = {
	"amdroots/milan_ark.pem", "amdroots/genoa_ark.pem", "amdroots/turin_ark.pem",
	"testchain/ark.pem",
};

/* ---- the report -------------------------------------------------------- */

void
snp_tcb_decode(const uint8_t raw[8], int turin, struct attest_snp_tcb *t)
{
	memcpy(t->raw, raw, 8);
	if (turin) {
		t->fmc = raw[0];
		t->bootloader = raw[1];
		t->tee = raw[2];
		t->snp = raw[3];
		t->microcode = raw[7];
	} else {
		t->fmc = 0;
		t->bootloader = raw[0];
		t->tee = raw[1];
		t->snp = raw[6];
		t->microcode = raw[7];
	}
}

static int
all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* The generation's TCB layout: CPUID family for v3+, else the v2 heuristic. */
static int
snp_layout_turin(const struct attest_snp_claims *s)
{
	if (s->version >= 3)
		return s->cpuid_fam >= 0x1A;
	/* v2 has no CPUID: Turin CHIP_IDs use only their first 8 bytes. */
	return all_bytes(s->chip_id + 8, sizeof(s->chip_id) - 8, 0) &&
	    !all_bytes(s->chip_id, 8, 0);
}

int
snp_report_parse(const uint8_t *buf, size_t len, struct attest_claims *c,
    char *why, size_t whylen)
{
	struct attest_snp_claims *s = &c->snp;
	uint8_t cur_tcb[8], rep_tcb[8], com_tcb[8], lau_tcb[8], rsvd[4];
	const uint8_t *reserved = NULL, *sig_r = NULL, *sig_s = NULL;
	uint32_t reserved0;
	struct cursor cur;
	size_t nres;
	int turin;

	memset(c, 0, sizeof(*c));
	if (len != ATTEST_SNP_REPORT_LEN)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "SNP report has %zu bytes, want %d", len, ATTEST_SNP_REPORT_LEN);
	cur_init(&cur, buf, len);
	if (cur_get_u32_le(&cur, &s->version) != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT, "SNP report truncated");
	if (s->version < 2 || s->version > 5)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "SNP report version %u is not supported (2..5)", s->version);
	/* Each getter is sticky: one check at the end covers them all. */
	(void)(cur_get_u32_le(&cur, &s->guest_svn) ||
	    cur_get_u64_le(&cur, &s->policy) ||
	    cur_get_bytes(&cur, s->family_id, 16) ||
	    cur_get_bytes(&cur, s->image_id, 16) ||
	    cur_get_u32_le(&cur, &s->vmpl) ||
	    cur_get_u32_le(&cur, &s->sig_algo) ||
	    cur_get_bytes(&cur, cur_tcb, 8) ||
	    cur_get_u64_le(&cur, &s->platform_info) ||
	    cur_get_u32_le(&cur, &s->key_info) ||
	    cur_get_u32_le(&cur, &reserved0) ||
	    cur_get_bytes(&cur, c->report_data, 64) ||
	    cur_get_bytes(&cur, c->measurement, 48) ||
	    cur_get_bytes(&cur, c->host_data, 32) ||
	    cur_get_bytes(&cur, s->id_key_digest, 48) ||
	    cur_get_bytes(&cur, s->author_key_digest, 48) ||
	    cur_get_bytes(&cur, s->report_id, 32) ||
	    cur_get_bytes(&cur, s->report_id_ma, 32) ||
	    cur_get_bytes(&cur, rep_tcb, 8));
	if (s->version >= 3) {
		(void)(cur_get_u8(&cur, &s->cpuid_fam) || cur_get_u8(&cur, &s->cpuid_mod) ||
		    cur_get_u8(&cur, &s->cpuid_step) || cur_get_ref(&cur, &reserved, 21));
		nres = 21;
	} else {
		if (cur_get_ref(&cur, &reserved, 24) != 0)
			reserved = NULL;
		nres = 24;
	}
	if (cur.c_err == 0 && reserved != NULL && !all_bytes(reserved, nres, 0))
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "SNP report reserved bytes at 0x%x are not zero", 0x18B + (s->version < 3 ? -3 : 0));
	(void)(cur_get_bytes(&cur, s->chip_id, 64) ||
	    cur_get_bytes(&cur, com_tcb, 8) ||
	    cur_get_u8(&cur, &s->current_build) || cur_get_u8(&cur, &s->current_minor) ||
	    cur_get_u8(&cur, &s->current_major) || cur_get_u8(&cur, &rsvd[0]) ||
	    cur_get_u8(&cur, &s->committed_build) || cur_get_u8(&cur, &s->committed_minor) ||
	    cur_get_u8(&cur, &s->committed_major) || cur_get_u8(&cur, &rsvd[1]) ||
	    cur_get_bytes(&cur, lau_tcb, 8));
	if (s->version >= 5) {
		(void)(cur_get_u64_le(&cur, &s->launch_mit_vector) ||
		    cur_get_u64_le(&cur, &s->current_mit_vector) ||
		    cur_get_ref(&cur, &reserved, 152));
	} else if (cur_get_ref(&cur, &reserved, 168) != 0) {
		reserved = NULL;	/* the sticky error is reported by cur_end() */
	}
	(void)(cur_get_ref(&cur, &sig_r, 72) || cur_get_ref(&cur, &sig_s, 72) ||
	    cur_skip(&cur, 368));
	if (cur_end(&cur) != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT, "SNP report layout error");
	if (s->sig_algo != 1)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "SNP report signature algorithm %u is not ECDSA P-384 SHA-384 (1)",
		    s->sig_algo);
	if (reserved0 != 0 || rsvd[0] != 0 || rsvd[1] != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "SNP report reserved fields are not zero");
	if (!(s->policy & (1ULL << 17)))
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "SNP report POLICY bit 17 (reserved, must be 1) is 0");
	if (s->policy >> 26)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "SNP report POLICY 0x%llx sets reserved bits 63:26",
		    (unsigned long long)s->policy);
	if (s->key_info >> 5)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "SNP report KEY_INFO 0x%x sets reserved bits 31:5", s->key_info);
	if (s->vmpl > 3)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "SNP report VMPL %u is not 0..3 (a host-requested report?)", s->vmpl);
	if (!all_bytes(sig_r + 48, 24, 0) || !all_bytes(sig_s + 48, 24, 0))
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "SNP report signature R or S is longer than 48 bytes");
	turin = snp_layout_turin(s);
	snp_tcb_decode(cur_tcb, turin, &s->current_tcb);
	snp_tcb_decode(rep_tcb, turin, &s->reported_tcb);
	snp_tcb_decode(com_tcb, turin, &s->committed_tcb);
	snp_tcb_decode(lau_tcb, turin, &s->launch_tcb);
	c->tee = ATTEST_TEE_SNP;
	c->flags = turin ? ATTEST_CF_TURIN_LAYOUT : 0;
	memcpy(c->launch_id, s->report_id, sizeof(c->launch_id));
	if (!all_bytes(s->report_id_ma, 32, 0xFF))
		c->flags |= ATTEST_CF_MIGRATION_AGENT;
	c->debug = (s->policy & ATTEST_SNP_POLICY_DEBUG) != 0;
	switch ((s->key_info >> 2) & 7) {
	case 0: c->signer = ATTEST_SIGNER_VCEK; break;
	case 1: c->signer = ATTEST_SIGNER_VLEK; break;
	case 7:
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "SNP report is unsigned (KEY_INFO SIGNING_KEY 7)");
	default:
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "SNP report KEY_INFO SIGNING_KEY %u is reserved", (s->key_info >> 2) & 7);
	}
	return 0;
}

/* ---- the certificate table -------------------------------------------- */

/* The mixed-endian (Microsoft GUID) layout of an RFC 4122 GUID. */
static int
guid_eq(const uint8_t *wire, const uint8_t rfc[16])
{
	uint8_t m[16];

	if (memcmp(wire, rfc, 16) == 0)
		return 1;
	m[0] = rfc[3]; m[1] = rfc[2]; m[2] = rfc[1]; m[3] = rfc[0];
	m[4] = rfc[5]; m[5] = rfc[4];
	m[6] = rfc[7]; m[7] = rfc[6];
	memcpy(m + 8, rfc + 8, 8);
	return memcmp(wire, m, 16) == 0;
}

int
attest_cert_table_parse(const uint8_t *buf, size_t len, struct attest_cert_table *t,
    char *why, size_t whylen)
{
	static const struct { const uint8_t *guid; const char *name; } known[] = {
		{ snp_guid_vcek, "VCEK" }, { snp_guid_vlek, "VLEK" },
		{ snp_guid_ask, "ASK" }, { snp_guid_ark, "ARK" },
	};
	const uint8_t **slot[4];
	size_t *slot_len[4];
	struct cursor cur;
	const uint8_t *guid;
	uint32_t off[CT_MAX_ENTRIES], n[CT_MAX_ENTRIES];
	int kind[CT_MAX_ENTRIES];
	unsigned i, j, count = 0;
	size_t hdr;

	memset(t, 0, sizeof(*t));
	slot[0] = &t->vcek; slot_len[0] = &t->vcek_len;
	slot[1] = &t->vlek; slot_len[1] = &t->vlek_len;
	slot[2] = &t->ask; slot_len[2] = &t->ask_len;
	slot[3] = &t->ark; slot_len[3] = &t->ark_len;
	if (len == 0)
		return 0;	/* the host supplied no certificates */
	cur_init(&cur, buf, len);
	for (;;) {
		uint32_t eoff, elen;

		if (cur_get_ref(&cur, &guid, 16) != 0 || cur_get_u32_le(&cur, &eoff) != 0 ||
		    cur_get_u32_le(&cur, &elen) != 0)
			return attest_fail(why, whylen, VTPM_E_FORMAT,
			    "certificate table: entry %u truncated (no all-zero terminator)", count);
		if (all_bytes(guid, 16, 0)) {
			if (eoff != 0 || elen != 0)
				return attest_fail(why, whylen, VTPM_E_FORMAT,
				    "certificate table: entry %u has a zero GUID but offset %u "
				    "length %u", count, eoff, elen);
			break;
		}
		if (count == CT_MAX_ENTRIES)
			return attest_fail(why, whylen, VTPM_E_FORMAT,
			    "certificate table: more than %d entries", CT_MAX_ENTRIES);
		off[count] = eoff;
		n[count] = elen;
		kind[count] = -1;
		for (j = 0; j < 4; j++)
			if (guid_eq(guid, known[j].guid))
				kind[count] = (int)j;
		count++;
	}
	hdr = (size_t)(count + 1) * CT_ENTRY_LEN;
	for (i = 0; i < count; i++) {
		if (n[i] == 0)
			return attest_fail(why, whylen, VTPM_E_FORMAT,
			    "certificate table: entry %u is empty", i);
		if (off[i] < hdr || off[i] > len || n[i] > len - off[i])
			return attest_fail(why, whylen, VTPM_E_FORMAT,
			    "certificate table: entry %u (offset %u, length %u) lies outside "
			    "the %zu-byte certificate area after the %zu-byte table", i, off[i],
			    n[i], len, hdr);
		if (kind[i] < 0)
			continue;
		if (*slot[kind[i]] != NULL)
			return attest_fail(why, whylen, VTPM_E_FORMAT,
			    "certificate table: two %s entries", known[kind[i]].name);
		*slot[kind[i]] = buf + off[i];
		*slot_len[kind[i]] = n[i];
	}
	t->nentries = count;
	return 0;
}

int
snp_cert_table_build(const struct snp_table_entry *e, size_t n, uint8_t *out,
    size_t cap, size_t *len)
{
	struct wbuf w;
	size_t i, off = (n + 1) * CT_ENTRY_LEN;

	wbuf_init(&w, out, cap);
	for (i = 0; i < n; i++) {
		wbuf_put_bytes(&w, e[i].guid, 16);
		wbuf_put_u32_le(&w, (uint32_t)off);
		wbuf_put_u32_le(&w, (uint32_t)e[i].len);
		off += e[i].len;
	}
	wbuf_put_bytes(&w, (const uint8_t[CT_ENTRY_LEN]){ 0 }, CT_ENTRY_LEN);
	for (i = 0; i < n; i++)
		wbuf_put_bytes(&w, e[i].data, e[i].len);
	return wbuf_end(&w, len);
}

/* ---- VCEK extensions --------------------------------------------------- */

static int
ext_spl(X509 *leaf, const char *oid, const char *name, const char *role, int *val,
    char *why, size_t whylen)
{
	const uint8_t *d, *p;
	ASN1_INTEGER *ai;
	int64_t v;
	size_t n;
	int rc;

	rc = x509_ext_by_oid(leaf, oid, &d, &n);
	if (rc == VTPM_E_NOTFOUND) {
		*val = -1;
		return 0;
	}
	if (rc != 0)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s has two %s extensions", role, name);
	p = d;
	ai = n < 16 ? d2i_ASN1_INTEGER(NULL, &p, (long)n) : NULL;
	if (ai == NULL || p != d + n || ASN1_INTEGER_get_int64(&v, ai) != 1 || v < 0 || v > 255) {
		ASN1_INTEGER_free(ai);
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s %s extension is not a DER INTEGER 0..255", role, name);
	}
	ASN1_INTEGER_free(ai);
	*val = (int)v;
	return 0;
}

static void
ext_product(X509 *leaf, char *out, size_t cap)
{
	const uint8_t *d, *p;
	ASN1_IA5STRING *s;
	size_t n, i, k = 0;

	out[0] = '\0';
	if (x509_ext_by_oid(leaf, OID_PRODUCT, &d, &n) != 0)
		return;
	p = d;
	if ((s = n < 256 ? d2i_ASN1_IA5STRING(NULL, &p, (long)n) : NULL) == NULL) {
		ERR_clear_error();
		return;
	}
	for (i = 0; i < (size_t)ASN1_STRING_length(s) && k + 1 < cap; i++) {
		uint8_t ch = ASN1_STRING_get0_data(s)[i];

		out[k++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[k] = '\0';
	ASN1_STRING_free(s);
}

/* hwID: raw 64 (or Turin 8) octets, or those wrapped in a DER OCTET STRING. */
static int
check_hwid(X509 *leaf, const struct attest_snp_claims *s, char *why, size_t whylen)
{
	const uint8_t *d, *p, *id;
	ASN1_OCTET_STRING *os = NULL;
	size_t n, idlen;
	char want[2 * 64 + 1], got[2 * 64 + 1];
	int rc;

	rc = x509_ext_by_oid(leaf, OID_HWID, &d, &n);
	if (rc == VTPM_E_NOTFOUND)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "VCEK has no hwID extension (1.3.6.1.4.1.3704.1.4): is it a VLEK?");
	if (rc != 0)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE, "VCEK has two hwID extensions");
	if (n == 64 || n == 8) {
		id = d;
		idlen = n;
	} else {
		p = d;
		os = n > 2 && d[0] == 0x04 ? d2i_ASN1_OCTET_STRING(NULL, &p, (long)n) : NULL;
		if (os == NULL || p != d + n ||
		    (ASN1_STRING_length(os) != 64 && ASN1_STRING_length(os) != 8)) {
			ASN1_OCTET_STRING_free(os);
			return attest_fail(why, whylen, VTPM_E_EVIDENCE,
			    "VCEK hwID extension has an unexpected encoding (%zu bytes)", n);
		}
		id = ASN1_STRING_get0_data(os);
		idlen = (size_t)ASN1_STRING_length(os);
	}
	if (all_bytes(s->chip_id, sizeof(s->chip_id), 0)) {
		ASN1_OCTET_STRING_free(os);
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "report CHIP_ID is masked (all zero): the VCEK cannot be tied to this chip");
	}
	if (memcmp(id, s->chip_id, idlen) != 0 ||
	    !all_bytes(s->chip_id + idlen, sizeof(s->chip_id) - idlen, 0)) {
		attest_hex_encode(id, idlen > 16 ? 16 : idlen, want);
		attest_hex_encode(s->chip_id, 16, got);
		ASN1_OCTET_STRING_free(os);
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "VCEK hwID %s... is another chip than the report's CHIP_ID %s...",
		    want, got);
	}
	ASN1_OCTET_STRING_free(os);
	return 0;
}

static int
check_spls(X509 *leaf, const char *role, const struct attest_snp_tcb *t, int turin,
    char *why, size_t whylen)
{
	static const struct { const char *oid, *name, *field; } spl[] = {
		{ OID_BL_SPL, "blSPL", "boot loader" },
		{ OID_TEE_SPL, "teeSPL", "tee" },
		{ OID_SNP_SPL, "snpSPL", "snp" },
		{ OID_UCODE_SPL, "ucodeSPL", "microcode" },
		{ OID_FMC_SPL, "fmcSPL", "fmc" },
	};
	int want[5], got = -1, i, rc;

	want[0] = t->bootloader;
	want[1] = t->tee;
	want[2] = t->snp;
	want[3] = t->microcode;
	want[4] = t->fmc;
	for (i = 0; i < 5; i++) {
		if ((rc = ext_spl(leaf, spl[i].oid, spl[i].name, role, &got, why, whylen)) != 0)
			return rc;
		if (i == 4 && !turin)
			continue;	/* no FMC before Turin */
		if (got < 0)
			return attest_fail(why, whylen, VTPM_E_EVIDENCE,
			    "%s has no %s extension%s", role, spl[i].name,
			    i == 4 ? " but the report uses the Turin TCB layout" : "");
		if (got != want[i])
			return attest_fail(why, whylen, VTPM_E_EVIDENCE,
			    "%s %s %d does not match REPORTED_TCB %s %d: the certificate is "
			    "for another TCB", role, spl[i].name, got, spl[i].field, want[i]);
	}
	return 0;
}

/* ---- the chain --------------------------------------------------------- */

struct cand {
	X509	*x;
	const char *src;	/* where it came from, for messages */
	int	supplied;	/* from the peer or the operator, not built in */
};

struct chainset {
	struct cand leaf[CACHE_MAX_FILES];
	int	nleaf;
	struct cand inter[CACHE_MAX_FILES + 16];
	int	ninter;
	struct cand root[CACHE_MAX_FILES + 16];
	int	nroot;
	char	cache_path[1024];
};

static void
chainset_free(struct chainset *cs)
{
	int i;

	for (i = 0; i < cs->nleaf; i++)
		X509_free(cs->leaf[i].x);
	for (i = 0; i < cs->ninter; i++)
		X509_free(cs->inter[i].x);
	for (i = 0; i < cs->nroot; i++)
		X509_free(cs->root[i].x);
	free(cs);
}

/* Adds an intermediate or root (by self-signature); takes x. */
static void
chainset_add_ca(struct chainset *cs, X509 *x, const char *src, int supplied)
{
	if (x509_is_self_signed(x)) {
		if (cs->nroot < (int)(sizeof(cs->root) / sizeof(cs->root[0]))) {
			cs->root[cs->nroot++] = (struct cand){ x, src, supplied };
			return;
		}
	} else if (cs->ninter < (int)(sizeof(cs->inter) / sizeof(cs->inter[0]))) {
		cs->inter[cs->ninter++] = (struct cand){ x, src, supplied };
		return;
	}
	X509_free(x);
}

static int
chainset_add_bundle(struct chainset *cs, const uint8_t *buf, size_t len, const char *src)
{
	STACK_OF(X509) *sk = x509_bundle_from_bytes(buf, len);

	if (sk == NULL)
		return -1;
	while (sk_X509_num(sk) > 0)
		chainset_add_ca(cs, sk_X509_shift(sk), src, 1);
	sk_X509_free(sk);
	return 0;
}

static X509 *
load_cert_file(const char *path)
{
	uint8_t *buf;
	size_t len;
	X509 *x;

	if (attest_read_file(path, CERT_MAX, &buf, &len) != 0)
		return NULL;
	x = x509_from_bytes(buf, len);
	free(buf);
	return x;
}

/* Every regular file in dir/sub, handed to fn; at most CACHE_MAX_FILES. */
static void
cache_scan(struct chainset *cs, const char *dir, const char *sub, int leaves)
{
	char path[1024];
	struct dirent *de;
	uint8_t *buf;
	size_t len;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL && n < CACHE_MAX_FILES) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, de->d_name);
		if (attest_read_file(path, CERT_MAX, &buf, &len) != 0)
			continue;
		n++;
		if (leaves) {
			X509 *x = x509_from_bytes(buf, len);

			if (x != NULL && cs->nleaf < CACHE_MAX_FILES)
				cs->leaf[cs->nleaf++] = (struct cand){ x, "the cache", 1 };
			else
				X509_free(x);
		} else {
			(void)chainset_add_bundle(cs, buf, len, "the cache");
		}
		free(buf);
	}
	closedir(d);
}

/* The CA among the candidates that issued child; its index or -1 with why. */
static int
find_issuer(struct cand *c, int n, X509 *child, const char *crole, const char *irole,
    char *why, size_t whylen)
{
	char first[ATTEST_WHY_LEN] = "", ccn[64], icn[256];
	int i, named = 0;

	for (i = 0; i < n; i++) {
		if (X509_check_issued(c[i].x, child) != X509_V_OK)
			continue;
		named++;
		if (x509_check_issued_by(child, crole, c[i].x, irole, NID_rsassaPss,
		    named == 1 ? first : NULL, named == 1 ? sizeof(first) : 0) == 0)
			return i;
	}
	ERR_clear_error();
	if (named > 0) {
		snprintf(why, whylen, "%s", first);
		return -1;
	}
	x509_cn(child, ccn, sizeof(ccn));
	if (X509_NAME_get_text_by_NID(X509_get_issuer_name(child), NID_commonName, icn,
	    sizeof(icn)) < 0)
		snprintf(icn, sizeof(icn), "?");
	ERR_clear_error();
	snprintf(why, whylen, "no %s certificate for %s '%s' (issuer '%s') in the "
	    "evidence, the chain, the cache or the built-in AMD certificates",
	    irole, crole, ccn, icn);
	return -1;
}

/* Is this root trusted? Pinned AMD ARK, or the test ARK when allowed. */
static int
root_trusted(X509 *root, const char *src, const struct attest_verify_cfg *cfg,
    int *is_test, char *why, size_t whylen)
{
	uint8_t fp[32], test[32];
	char hex[65], cn[64];
	size_t i;

	*is_test = 0;
	x509_sha256(root, fp);
	for (i = 0; i < sizeof(amd_ark_pins) / sizeof(amd_ark_pins[0]); i++)
		if (memcmp(fp, amd_ark_pins[i].sha256, 32) == 0)
			return 0;
	attest_hex_encode(fp, 32, hex);
	x509_cn(root, cn, sizeof(cn));
	if (attest_test_ark_sha256(test) == 0 && memcmp(fp, test, 32) == 0) {
		*is_test = 1;
		if (cfg->av_allow_sim)
			return 0;
		return attest_fail(why, whylen, VTPM_E_UNSUPPORTED,
		    "the chain ends at the vtpmd TEST ARK '%s' (sha256 %.16s...): it proves "
		    "nothing and is trusted only when explicitly configured (--dev, "
		    "--allow-sim-attestation, --attestation-trust-test-ark, --trust-test-ark)",
		    cn, hex);
	}
	return attest_fail(why, whylen, VTPM_E_EVIDENCE,
	    "ARK '%s' from %s (sha256 %s) is not a pinned AMD ARK (Milan, Genoa, Turin)",
	    cn, src, hex);
}

static int
leaf_key_ok(X509 *leaf)
{
	EVP_PKEY *k = X509_get0_pubkey(leaf);
	char group[32];
	size_t glen = 0;

	if (k == NULL || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
		return 0;
	if (EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &glen) != 1) {
		ERR_clear_error();
		return 0;
	}
	return strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0;
}

static int
report_sig_ok(X509 *leaf, const uint8_t *report)
{
	uint8_t digest[48];
	unsigned int dlen = 0;

	if (EVP_Digest(report, ATTEST_SNP_SIGNED_LEN, digest, &dlen, EVP_sha384(), NULL) != 1 ||
	    dlen != 48)
		return 0;
	return ecdsa_verify_rs(X509_get0_pubkey(leaf), digest, 48,
	    report + 0x2A0, 72, report + 0x2E8, 72, 1);
}

/* Gathers the leaf candidates: explicit, else table, else cache. */
static int
gather_leaves(struct chainset *cs, const struct attest_verify_cfg *cfg,
    const struct attest_cert_table *t, const struct attest_claims *c, const char *role,
    char *why, size_t whylen)
{
	const uint8_t *d = c->signer == ATTEST_SIGNER_VCEK ? t->vcek : t->vlek;
	size_t dl = c->signer == ATTEST_SIGNER_VCEK ? t->vcek_len : t->vlek_len;
	char chip[129], tcb[17], path[1024];
	X509 *x;

	if (cfg->av_leaf != NULL) {
		if ((x = x509_from_bytes(cfg->av_leaf, cfg->av_leaf_len)) == NULL)
			return attest_fail(why, whylen, VTPM_E_FORMAT,
			    "the given %s is not an X.509 certificate (DER or PEM)", role);
		cs->leaf[cs->nleaf++] = (struct cand){ x, "the command line", 1 };
		return 0;
	}
	if (d != NULL) {
		if ((x = x509_from_bytes(d, dl)) == NULL)
			return attest_fail(why, whylen, VTPM_E_FORMAT,
			    "the %s in the certificate table is not an X.509 certificate", role);
		cs->leaf[cs->nleaf++] = (struct cand){ x, "the certificate table", 1 };
		return 0;
	}
	if (cfg->av_cache_dir != NULL && c->signer == ATTEST_SIGNER_VCEK) {
		attest_hex_encode(c->snp.chip_id, (c->flags & ATTEST_CF_TURIN_LAYOUT) ? 8 : 64, chip);
		attest_hex_encode(c->snp.reported_tcb.raw, 8, tcb);
		snprintf(path, sizeof(path), "%s/vcek/%s-%s.der", cfg->av_cache_dir, chip, tcb);
		if ((x = load_cert_file(path)) == NULL) {
			snprintf(path, sizeof(path), "%s/vcek/%s-%s.pem", cfg->av_cache_dir, chip, tcb);
			x = load_cert_file(path);
		}
		snprintf(cs->cache_path, sizeof(cs->cache_path), "%s", path);
		if (x != NULL) {
			cs->leaf[cs->nleaf++] = (struct cand){ x, "the cache", 1 };
			return 0;
		}
	} else if (cfg->av_cache_dir != NULL) {
		cache_scan(cs, cfg->av_cache_dir, "vlek", 1);
		if (cs->nleaf > 0)
			return 0;
		snprintf(cs->cache_path, sizeof(cs->cache_path), "%s/vlek/", cfg->av_cache_dir);
	}
	return attest_fail(why, whylen, VTPM_E_EVIDENCE,
	    "no %s certificate: none given, none in the evidence's certificate table%s%s%s",
	    role, cfg->av_cache_dir ? ", none in the cache (" : " and no cache directory",
	    cfg->av_cache_dir ? cs->cache_path : "", cfg->av_cache_dir ? ")" : "");
}

int
attest_snp_verify(const struct attest_verify_cfg *cfg, const uint8_t *report, size_t len,
    const uint8_t *table, size_t tlen, struct attest_claims *claims, char *why, size_t whylen)
{
	struct attest_claims c;
	struct attest_cert_table t;
	struct chainset *cs;
	const char *role, *irole;
	X509 *leaf, *inter, *root, *x;
	uint8_t vmpl_mask;
	char cn[64], product[32];
	int i, li = 0, ii, ri, is_test, turin, rc;
	size_t k;

	memset(claims, 0, sizeof(*claims));
	if ((rc = snp_report_parse(report, len, &c, why, whylen)) != 0)
		return rc;
	if ((rc = attest_cert_table_parse(table, table ? tlen : 0, &t, why, whylen)) != 0)
		return rc;
	role = c.signer == ATTEST_SIGNER_VCEK ? "VCEK" : "VLEK";
	irole = c.signer == ATTEST_SIGNER_VCEK ? "ASK" : "ASVK";
	if ((cs = calloc(1, sizeof(*cs))) == NULL)
		return attest_fail(why, whylen, VTPM_E_NOMEM, "out of memory");
	if ((rc = gather_leaves(cs, cfg, &t, &c, role, why, whylen)) != 0)
		goto out;

	/* Certificates offered by the peer or the operator: roots must be pinned. */
	if (t.ask != NULL && chainset_add_bundle(cs, t.ask, t.ask_len, "the certificate table") != 0) {
		rc = attest_fail(why, whylen, VTPM_E_FORMAT,
		    "the %s in the certificate table is not an X.509 certificate", irole);
		goto out;
	}
	if (t.ark != NULL && chainset_add_bundle(cs, t.ark, t.ark_len, "the certificate table") != 0) {
		rc = attest_fail(why, whylen, VTPM_E_FORMAT,
		    "the ARK in the certificate table is not an X.509 certificate");
		goto out;
	}
	if (cfg->av_chain != NULL &&
	    chainset_add_bundle(cs, cfg->av_chain, cfg->av_chain_len, "the given chain") != 0) {
		rc = attest_fail(why, whylen, VTPM_E_FORMAT,
		    "the given chain holds no PEM certificate");
		goto out;
	}
	if (cfg->av_cache_dir != NULL)
		cache_scan(cs, cfg->av_cache_dir, "chain", 0);
	for (i = 0; i < cs->nroot; i++)
		if ((rc = root_trusted(cs->root[i].x, cs->root[i].src, cfg, &is_test,
		    why, whylen)) != 0)
			goto out;
	/* Built-in AMD certificates (and the test chain: refused at its root). */
	for (k = 0; k < sizeof(builtin_inters) / sizeof(builtin_inters[0]); k++)
		if ((x = x509_from_embedded(builtin_inters[k])) != NULL)
			chainset_add_ca(cs, x, "the built-in certificates", 0);
	for (k = 0; k < sizeof(builtin_roots) / sizeof(builtin_roots[0]); k++)
		if ((x = x509_from_embedded(builtin_roots[k])) != NULL)
			chainset_add_ca(cs, x, "the built-in certificates", 0);

	/* Several cached VLEKs: the one whose key signed this report. */
	if (cs->nleaf > 1) {
		for (li = 0; li < cs->nleaf; li++)
			if (report_sig_ok(cs->leaf[li].x, report))
				break;
		if (li == cs->nleaf) {
			rc = attest_fail(why, whylen, VTPM_E_EVIDENCE,
			    "none of the %d %s certificates in %s signed this report",
			    cs->nleaf, role, cs->cache_path);
			goto out;
		}
	}
	leaf = cs->leaf[li].x;
	x509_cn(leaf, cn, sizeof(cn));
	if (!leaf_key_ok(leaf)) {
		rc = attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s '%s' does not hold an EC P-384 key", role, cn);
		goto out;
	}
	if (strcmp(cn, c.signer == ATTEST_SIGNER_VCEK ? "SEV-VCEK" : "SEV-VLEK") != 0) {
		rc = attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "the report is signed by its %s (KEY_INFO) but the certificate from %s "
		    "is '%s'", role, cs->leaf[li].src, cn);
		goto out;
	}
	if ((ii = find_issuer(cs->inter, cs->ninter, leaf, role, irole, why, whylen)) < 0) {
		rc = VTPM_E_EVIDENCE;
		goto out;
	}
	inter = cs->inter[ii].x;
	if ((ri = find_issuer(cs->root, cs->nroot, inter, irole, "ARK", why, whylen)) < 0) {
		rc = VTPM_E_EVIDENCE;
		goto out;
	}
	root = cs->root[ri].x;
	if ((rc = root_trusted(root, cs->root[ri].src, cfg, &is_test, why, whylen)) != 0 ||
	    (rc = x509_check_issued_by(root, "ARK", root, "ARK", NID_rsassaPss, why, whylen)) != 0)
		goto out;
	if ((rc = x509_check_time(root, "ARK", cfg, why, whylen)) != 0 ||
	    (rc = x509_check_time(inter, irole, cfg, why, whylen)) != 0 ||
	    (rc = x509_check_time(leaf, role, cfg, why, whylen)) != 0)
		goto out;

	/* The certificate says which chip and TCB it is for. */
	ext_product(leaf, product, sizeof(product));
	turin = (c.flags & ATTEST_CF_TURIN_LAYOUT) != 0;
	if (c.snp.version < 3 && strncmp(product, "Turin", 5) == 0)
		turin = 1;
	else if (c.snp.version < 3 && (strncmp(product, "Milan", 5) == 0 ||
	    strncmp(product, "Genoa", 5) == 0))
		turin = 0;
	if (turin != ((c.flags & ATTEST_CF_TURIN_LAYOUT) != 0)) {
		c.flags ^= ATTEST_CF_TURIN_LAYOUT;
		snp_tcb_decode(c.snp.current_tcb.raw, turin, &c.snp.current_tcb);
		snp_tcb_decode(c.snp.reported_tcb.raw, turin, &c.snp.reported_tcb);
		snp_tcb_decode(c.snp.committed_tcb.raw, turin, &c.snp.committed_tcb);
		snp_tcb_decode(c.snp.launch_tcb.raw, turin, &c.snp.launch_tcb);
	}
	snprintf(c.snp.product, sizeof(c.snp.product), "%s", product);
	if (c.signer == ATTEST_SIGNER_VCEK && (rc = check_hwid(leaf, &c.snp, why, whylen)) != 0)
		goto out;
	if ((rc = check_spls(leaf, role, &c.snp.reported_tcb, turin, why, whylen)) != 0)
		goto out;
	if (!report_sig_ok(leaf, report)) {
		rc = attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "SNP report signature does not verify with the %s from %s "
		    "(report altered, or signed by another key)", role, cs->leaf[li].src);
		goto out;
	}

	/* Authentic. Now what this verifier accepts. */
	if (c.debug && !cfg->av_allow_debug) {
		rc = attest_fail(why, whylen, VTPM_E_POLICY,
		    "SNP guest policy has DEBUG set (bit 19): the host can read and change "
		    "the guest's memory");
		goto out;
	}
	vmpl_mask = cfg->av_vmpl_mask ? cfg->av_vmpl_mask : 1;
	if (!(vmpl_mask & (1u << c.snp.vmpl))) {
		rc = attest_fail(why, whylen, VTPM_E_POLICY,
		    "SNP report VMPL %u is not allowed (allowed mask 0x%x): not requested "
		    "from the most privileged level", c.snp.vmpl, vmpl_mask);
		goto out;
	}
	if (is_test)
		c.flags |= ATTEST_CF_TEST_ROOT;
	x509_cn(root, c.anchor, sizeof(c.anchor));
	if (cfg->av_no_time_check)
		c.flags |= ATTEST_CF_NO_TIME_CHECK;
	*claims = c;
	rc = 0;
out:
	chainset_free(cs);
	if (rc != 0)
		sodium_memzero(&c, sizeof(c));
	return rc;
}
