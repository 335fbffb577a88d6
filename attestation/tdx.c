/*
 * tdx.c: the Intel TDX quote verifier (quote v4 and v5, ECDSA-P256
 * attestation key, certification data type 6 with a PCK chain of type 5).
 * The quote is untrusted: it is read with the cursor, the attestation key
 * is trusted only through the QE report the PCK leaf signed, and the PCK
 * leaf only through its chain to the pinned Intel SGX Root CA.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <sodium.h>

#include "attest_int.h"
#include "cursor.h"

#define TDX_TEE_TYPE		0x81
#define TDX_AK_ECDSA_P256	2
#define TDX_CERT_QE_REPORT	6
#define TDX_CERT_PCK_CHAIN	5
#define TDX_MAX_QUOTE		(ATTEST_MAX_EVIDENCE)

static const uint8_t intel_qe_vendor[16] = {
	0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
	0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
};

int
tdx_quote_parse(const uint8_t *buf, size_t len, struct tdx_quote *q, char *why, size_t whylen)
{
	struct cursor cur, sig, cert;
	const uint8_t *sigdata, *certdata;
	uint32_t siglen, cert_size, body_size, pck_size;
	uint16_t cert_type, auth_len, pck_type, rsv1, rsv2;

	memset(q, 0, sizeof(*q));
	if (len > TDX_MAX_QUOTE)
		return attest_fail(why, whylen, VTPM_E_TOOBIG, "TDX quote of %zu bytes is too large",
		    len);
	cur_init(&cur, buf, len);
	if (cur_get_u16_le(&cur, &q->version) != 0 || cur_get_u16_le(&cur, &q->att_key_type) != 0 ||
	    cur_get_u32_le(&cur, &q->tee_type) != 0 || cur_get_u16_le(&cur, &rsv1) != 0 ||
	    cur_get_u16_le(&cur, &rsv2) != 0 || cur_get_ref(&cur, &q->qe_vendor_id, 16) != 0 ||
	    cur_skip(&cur, 20) != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT, "TDX quote header truncated");
	if (q->version != 4 && q->version != 5)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "TDX quote version %u is not supported (4, 5)", q->version);
	if (q->att_key_type != TDX_AK_ECDSA_P256)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "TDX quote attestation key type %u is not ECDSA-P256 (2)", q->att_key_type);
	if (q->tee_type != TDX_TEE_TYPE)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "quote TEE type 0x%x is not TDX (0x81)", q->tee_type);
	if (memcmp(q->qe_vendor_id, intel_qe_vendor, 16) != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "TDX quote QE vendor is not Intel's quoting enclave");
	if (q->version == 4) {
		q->body_type = 2;
		body_size = TDX_BODY10_LEN;
	} else {
		if (cur_get_u16_le(&cur, &q->body_type) != 0 || cur_get_u32_le(&cur, &body_size) != 0)
			return attest_fail(why, whylen, VTPM_E_FORMAT, "TDX quote v5 body header truncated");
		if (!(q->body_type == 2 && body_size == TDX_BODY10_LEN) &&
		    !(q->body_type == 3 && body_size == TDX_BODY15_LEN))
			return attest_fail(why, whylen, VTPM_E_FORMAT,
			    "TDX quote v5 body type %u size %u is not TDX 1.0 (2, 584) or "
			    "TDX 1.5 (3, 648)", q->body_type, body_size);
	}
	q->body_len = body_size;
	if (cur_get_ref(&cur, &q->body, body_size) != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT, "TDX quote body truncated");
	q->signed_len = len - cur_left(&cur);
	if (cur_get_u32_le(&cur, &siglen) != 0 || cur_get_ref(&cur, &sigdata, siglen) != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT, "TDX quote signature data truncated");
	q->trailing = cur_left(&cur);

	cur_init(&sig, sigdata, siglen);
	if (cur_get_ref(&sig, &q->sig, 64) != 0 || cur_get_ref(&sig, &q->ak, 64) != 0 ||
	    cur_get_u16_le(&sig, &cert_type) != 0 || cur_get_u32_le(&sig, &cert_size) != 0 ||
	    cur_get_ref(&sig, &certdata, cert_size) != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "TDX quote signature data malformed");
	if (cur_end(&sig) != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "TDX quote signature data has %zu bytes after its certification data",
		    cur_left(&sig));
	if (cert_type != TDX_CERT_QE_REPORT)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "TDX quote certification data type %u is not a QE report (6)", cert_type);
	cur_init(&cert, certdata, cert_size);
	if (cur_get_ref(&cert, &q->qe_report, TDX_QE_REPORT_LEN) != 0 ||
	    cur_get_ref(&cert, &q->qe_sig, 64) != 0 ||
	    cur_get_u16_le(&cert, &auth_len) != 0 || cur_get_ref(&cert, &q->auth, auth_len) != 0 ||
	    cur_get_u16_le(&cert, &pck_type) != 0 || cur_get_u32_le(&cert, &pck_size) != 0 ||
	    cur_get_ref(&cert, &q->pck_chain, pck_size) != 0 || cur_end(&cert) != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "TDX quote QE report certification data malformed");
	q->auth_len = auth_len;
	q->pck_chain_len = pck_size;
	if (pck_type != TDX_CERT_PCK_CHAIN)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "TDX quote QE certification data type %u is not a PCK chain (5)", pck_type);
	return 0;
}

static uint64_t
le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void
tdx_claims_from_body(const struct tdx_quote *q, struct attest_claims *c)
{
	struct attest_tdx_claims *t = &c->tdx;
	const uint8_t *b = q->body;
	crypto_hash_sha256_state st;
	static const char label[] = "vtpmd-tdx-host-data-v1";
	int i;

	/* q->body_len >= 584 was checked by the parser. */
	t->version = q->version;
	t->body_type = q->body_type;
	memcpy(t->tee_tcb_svn, b + 0x000, 16);
	memcpy(t->mrseam, b + 0x010, 48);
	memcpy(t->mrsignerseam, b + 0x040, 48);
	t->seam_attributes = le64(b + 0x070);
	t->td_attributes = le64(b + 0x078);
	t->xfam = le64(b + 0x080);
	memcpy(t->mrtd, b + 0x088, 48);
	memcpy(t->mrconfigid, b + 0x0B8, 48);
	memcpy(t->mrowner, b + 0x0E8, 48);
	memcpy(t->mrownerconfig, b + 0x118, 48);
	for (i = 0; i < 4; i++)
		memcpy(t->rtmr[i], b + 0x148 + 48 * i, 48);
	memcpy(t->report_data, b + 0x208, 64);
	if (q->body_len == TDX_BODY15_LEN) {
		memcpy(t->tee_tcb_svn2, b + 0x248, 16);
		memcpy(t->mrservicetd, b + 0x258, 48);
	}
	c->tee = ATTEST_TEE_TDX;
	c->signer = ATTEST_SIGNER_PCK;
	c->debug = (t->td_attributes & ATTEST_TDX_ATTR_DEBUG) != 0;
	memcpy(c->measurement, t->mrtd, 48);
	memcpy(c->report_data, t->report_data, 64);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)label, sizeof(label) - 1);
	crypto_hash_sha256_update(&st, t->mrconfigid, 48);
	crypto_hash_sha256_update(&st, t->mrowner, 48);
	crypto_hash_sha256_update(&st, t->mrownerconfig, 48);
	crypto_hash_sha256_final(&st, c->host_data);
}

/* An EC P-256 public key from x || y. */
static EVP_PKEY *
p256_key(const uint8_t xy[64])
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	uint8_t pub[65];

	pub[0] = 0x04;
	memcpy(pub + 1, xy, 64);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	ERR_clear_error();
	return key;
}

static int
sig_p256_ok(EVP_PKEY *key, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	uint8_t digest[32];

	crypto_hash_sha256(digest, msg, len);
	return ecdsa_verify_rs(key, digest, 32, sig, 32, sig + 32, 32, 0);
}

/* PCK leaf -> PCK Platform/Processor CA -> pinned Intel SGX Root CA. */
static int
pck_chain_check(const struct attest_verify_cfg *cfg, STACK_OF(X509) *sk, X509 **leafp,
    char *why, size_t whylen)
{
	X509 *leaf = NULL, *inter = NULL, *root = NULL, *x;
	uint8_t fp[32];
	char cn[64], hex[65];
	int i, n = sk_X509_num(sk), rc;

	for (i = 0; i < n; i++) {
		x = sk_X509_value(sk, i);
		if (x509_is_self_signed(x)) {
			if (root != NULL)
				return attest_fail(why, whylen, VTPM_E_EVIDENCE,
				    "PCK chain holds two self-signed certificates");
			root = x;
		} else if (X509_check_ca(x) >= 1) {
			if (inter != NULL)
				return attest_fail(why, whylen, VTPM_E_EVIDENCE,
				    "PCK chain holds two intermediate CAs");
			inter = x;
		} else {
			if (leaf != NULL)
				return attest_fail(why, whylen, VTPM_E_EVIDENCE,
				    "PCK chain holds two leaf certificates");
			leaf = x;
		}
	}
	if (leaf == NULL || inter == NULL || root == NULL)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "PCK chain needs a leaf, a PCK CA and the root; it has %d certificates", n);
	x509_sha256(root, fp);
	if (memcmp(fp, intel_sgx_root_sha256, 32) != 0) {
		x509_cn(root, cn, sizeof(cn));
		attest_hex_encode(fp, 32, hex);
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "PCK chain root '%s' (sha256 %s) is not the pinned Intel SGX Root CA", cn, hex);
	}
	if ((rc = x509_check_issued_by(root, "Intel SGX Root CA", root, "itself",
	    NID_ecdsa_with_SHA256, why, whylen)) != 0 ||
	    (rc = x509_check_issued_by(inter, "PCK CA", root, "Intel SGX Root CA",
	    NID_ecdsa_with_SHA256, why, whylen)) != 0 ||
	    (rc = x509_check_issued_by(leaf, "PCK certificate", inter, "PCK CA",
	    NID_ecdsa_with_SHA256, why, whylen)) != 0)
		return rc;
	if ((rc = x509_check_time(root, "Intel SGX Root CA", cfg, why, whylen)) != 0 ||
	    (rc = x509_check_time(inter, "PCK CA", cfg, why, whylen)) != 0 ||
	    (rc = x509_check_time(leaf, "PCK certificate", cfg, why, whylen)) != 0)
		return rc;
	*leafp = leaf;
	return 0;
}

int
attest_tdx_verify(const struct attest_verify_cfg *cfg, const uint8_t *quote, size_t len,
    struct attest_claims *claims, char *why, size_t whylen)
{
	struct attest_claims c;
	struct tdx_quote q;
	STACK_OF(X509) *sk = NULL;
	EVP_PKEY *ak = NULL;
	X509 *leaf = NULL;
	crypto_hash_sha256_state st;
	uint8_t h[32];
	char dir[1024];
	const char *cdir = NULL;
	int rc;

	memset(claims, 0, sizeof(*claims));
	memset(&c, 0, sizeof(c));
	if ((rc = tdx_quote_parse(quote, len, &q, why, whylen)) != 0)
		return rc;
	if (q.trailing != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "TDX quote has %zu bytes after its signature data", q.trailing);
	if ((sk = x509_bundle_from_bytes(q.pck_chain, q.pck_chain_len)) == NULL)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "TDX quote PCK chain holds no PEM certificate");
	if ((rc = pck_chain_check(cfg, sk, &leaf, why, whylen)) != 0)
		goto out;
	/* The PCK leaf vouches for the QE report ... */
	if (!sig_p256_ok(X509_get0_pubkey(leaf), q.qe_report, TDX_QE_REPORT_LEN, q.qe_sig)) {
		rc = attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "TDX QE report signature does not verify with the PCK certificate");
		goto out;
	}
	/* ... whose report data vouches for the attestation key ... */
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, q.ak, 64);
	crypto_hash_sha256_update(&st, q.auth, q.auth_len);
	crypto_hash_sha256_final(&st, h);
	if (sodium_memcmp(h, q.qe_report + 320, 32) != 0 ||
	    !sodium_is_zero(q.qe_report + 352, 32)) {
		rc = attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "TDX QE report data is not SHA-256(attestation key || auth data): the "
		    "attestation key is not the quoting enclave's");
		goto out;
	}
	/* ... which signed the quote. */
	if ((ak = p256_key(q.ak)) == NULL) {
		rc = attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "TDX quote attestation key is not a P-256 point");
		goto out;
	}
	if (!sig_p256_ok(ak, quote, q.signed_len, q.sig)) {
		rc = attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "TDX quote signature does not verify with its attestation key "
		    "(quote altered)");
		goto out;
	}
	tdx_claims_from_body(&q, &c);
	snprintf(c.anchor, sizeof(c.anchor), "Intel SGX Root CA");
	if (cfg->av_tdx_collateral_dir != NULL) {
		cdir = cfg->av_tdx_collateral_dir;
	} else if (cfg->av_cache_dir != NULL) {
		snprintf(dir, sizeof(dir), "%s/tdx", cfg->av_cache_dir);
		cdir = dir;
	}
	if ((rc = tdx_collateral_check(cfg, cdir, &q, sk, leaf, &c, why, whylen)) != 0)
		goto out;
	if (c.debug && !cfg->av_allow_debug) {
		rc = attest_fail(why, whylen, VTPM_E_POLICY,
		    "TD attributes have DEBUG set (bit 0): the host can read and change the "
		    "TD's memory");
		goto out;
	}
	if (cfg->av_no_time_check)
		c.flags |= ATTEST_CF_NO_TIME_CHECK;
	*claims = c;
	rc = 0;
out:
	EVP_PKEY_free(ak);
	sk_X509_pop_free(sk, X509_free);
	if (rc != 0)
		sodium_memzero(&c, sizeof(c));
	ERR_clear_error();
	return rc;
}
