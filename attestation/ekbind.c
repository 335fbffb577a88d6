/*
 * ekbind.c: the EK binding of docs/ENDORSEMENT.md section 4: a guest's
 * evidence whose report data is a hash of its vTPM's EK public keys. Turns
 * an EK's TPMT_PUBLIC (from a TPM) or a verifier's EKPUB file (PEM public
 * keys or EK certificates, or DER) into DER SubjectPublicKeyInfo and hashes
 * them. Everything parsed here is untrusted; OpenSSL decodes the DER.
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "attest_int.h"
#include "cursor.h"

#define EK_BIND_LABEL		"vtpmd-ek-bind-v1"

/* ---------- TPMT_PUBLIC of the default EK templates ---------- */

static int
skip_sym_and_scheme(struct cursor *c)
{
	uint16_t alg, v;

	if (cur_get_u16(c, &alg) != 0)
		return -1;
	if (alg != 0x0010 && (cur_get_u16(c, &v) != 0 || cur_get_u16(c, &v) != 0))
		return -1;
	if (cur_get_u16(c, &alg) != 0)
		return -1;
	if (alg != 0x0010 && cur_get_u16(c, &v) != 0)
		return -1;
	return 0;
}

/* RSA-2048 (type 0x0001) or ECC NIST P-256 (0x0023) TPMT_PUBLIC to a key. */
static EVP_PKEY *
tpmt_pkey(const uint8_t *p, size_t len, int want_ecc)
{
	struct cursor c;
	uint16_t type, nalg, plen, bits, curve, kdf, n, xl, yl;
	uint32_t attrs, exp;
	const uint8_t *mod, *xp, *yp;
	uint8_t pt[65];
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	cur_init(&c, p, len);
	if (cur_get_u16(&c, &type) != 0 || cur_get_u16(&c, &nalg) != 0 ||
	    cur_get_u32(&c, &attrs) != 0 || cur_get_u16(&c, &plen) != 0 ||
	    cur_skip(&c, plen) != 0 || skip_sym_and_scheme(&c) != 0)
		return NULL;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		return NULL;
	if (!want_ecc && type == 0x0001) {
		if (cur_get_u16(&c, &bits) != 0 || cur_get_u32(&c, &exp) != 0 ||
		    cur_get_u16(&c, &n) != 0 || n != 256 || bits != 2048 ||
		    cur_get_ref(&c, &mod, n) != 0 || cur_end(&c) != 0)
			goto out;
		bn_n = BN_bin2bn(mod, n, NULL);
		bn_e = BN_new();
		if (bn_n == NULL || bn_e == NULL || !BN_set_word(bn_e, exp ? exp : 65537) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
		    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL)
			goto out;
	} else if (want_ecc && type == 0x0023) {
		if (cur_get_u16(&c, &curve) != 0 || cur_get_u16(&c, &kdf) != 0 ||
		    curve != 0x0003 || (kdf != 0x0010 && cur_skip(&c, 2) != 0) ||
		    cur_get_u16(&c, &xl) != 0 || xl != 32 || cur_get_ref(&c, &xp, xl) != 0 ||
		    cur_get_u16(&c, &yl) != 0 || yl != 32 || cur_get_ref(&c, &yp, yl) != 0 ||
		    cur_end(&c) != 0)
			goto out;
		pt[0] = 0x04;
		memcpy(pt + 1, xp, 32);
		memcpy(pt + 33, yp, 32);
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
		    "prime256v1", 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) ||
		    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL)
			goto out;
	} else {
		goto out;
	}
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		key = NULL;
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(bn_n);
	BN_free(bn_e);
	return key;
}

static int
pkey_spki(EVP_PKEY *k, uint8_t *der, size_t cap, size_t *dlen)
{
	uint8_t *p = der;
	int n;

	if ((n = i2d_PUBKEY(k, NULL)) <= 0)
		return VTPM_E_CRYPTO;
	if ((size_t)n > cap)
		return VTPM_E_TOOBIG;
	if (i2d_PUBKEY(k, &p) != n)
		return VTPM_E_CRYPTO;
	*dlen = (size_t)n;
	return 0;
}

int
attest_ek_spki_from_tpmt(const uint8_t *tpmt, size_t len, int want_ecc, uint8_t *der,
    size_t cap, size_t *dlen)
{
	EVP_PKEY *k;
	int rc;

	if ((k = tpmt_pkey(tpmt, len, want_ecc)) == NULL) {
		ERR_clear_error();
		return VTPM_E_FORMAT;
	}
	rc = pkey_spki(k, der, cap, dlen);
	EVP_PKEY_free(k);
	return rc;
}

/* ---------- a verifier's EKPUB file ---------- */

/* Files the EK set: RSA or EC only; one key of each kind (the same twice is fine). */
static int
ek_add(struct attest_ek_keys *k, EVP_PKEY *pk, const char *what, char *why, size_t whylen)
{
	uint8_t der[ATTEST_EK_SPKI_MAX], *slot;
	size_t dlen, *slot_len;
	const char *kind;
	int id = EVP_PKEY_get_base_id(pk);

	if (id == EVP_PKEY_RSA) {
		slot = k->ek_rsa;
		slot_len = &k->ek_rsa_len;
		kind = "RSA";
	} else if (id == EVP_PKEY_EC) {
		slot = k->ek_ecc;
		slot_len = &k->ek_ecc_len;
		kind = "ECC";
	} else {
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "%s: the key is neither RSA nor EC, so it is no EK", what);
	}
	if (pkey_spki(pk, der, sizeof(der), &dlen) != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT, "%s: %s key too large", what, kind);
	if (*slot_len != 0) {
		if (*slot_len == dlen && memcmp(slot, der, dlen) == 0)
			return 0;
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "%s: two different %s keys given (want at most one RSA and one ECC EK)",
		    what, kind);
	}
	memcpy(slot, der, dlen);
	*slot_len = dlen;
	return 0;
}

/* One DER object: an X.509 certificate or a SubjectPublicKeyInfo. */
static int
ek_add_der(struct attest_ek_keys *k, const uint8_t **pp, size_t len, const char *what,
    char *why, size_t whylen)
{
	const uint8_t *p = *pp;
	X509 *x;
	EVP_PKEY *pk;
	int rc;

	if (len > 65536)
		return attest_fail(why, whylen, VTPM_E_TOOBIG, "%s: too large", what);
	if ((x = d2i_X509(NULL, &p, (long)len)) != NULL) {
		pk = X509_get_pubkey(x);
		X509_free(x);
	} else {
		p = *pp;
		pk = d2i_PUBKEY(NULL, &p, (long)len);
	}
	if (pk == NULL)
		return attest_fail(why, whylen, VTPM_E_FORMAT,
		    "%s: neither a certificate nor a public key", what);
	rc = ek_add(k, pk, what, why, whylen);
	EVP_PKEY_free(pk);
	*pp = p;
	return rc;
}

int
attest_ek_load(const uint8_t *buf, size_t len, struct attest_ek_keys *k, char *why,
    size_t whylen)
{
	static const char begin[] = "-----BEGIN ";
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	const uint8_t *p, *end;
	long dlen;
	BIO *b = NULL;
	int rc = 0, n = 0;

	if (len == 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT, "empty");
	if (len > ATTEST_EK_FILE_MAX)
		return attest_fail(why, whylen, VTPM_E_TOOBIG, "larger than %d bytes",
		    ATTEST_EK_FILE_MAX);
	if (memmem(buf, len, begin, sizeof(begin) - 1) == NULL) {
		/* DER: one or more certificates or keys back to back */
		p = buf;
		end = buf + len;
		while (rc == 0 && p < end) {
			rc = ek_add_der(k, &p, (size_t)(end - p), n == 0 ? "DER object 1" :
			    "a later DER object", why, whylen);
			n++;
		}
		goto out;
	}
	if ((b = BIO_new_mem_buf(buf, (int)len)) == NULL)
		return attest_fail(why, whylen, VTPM_E_NOMEM, "out of memory");
	while (PEM_read_bio(b, &name, &header, &data, &dlen) == 1) {
		n++;
		if (strcmp(name, "PUBLIC KEY") != 0 && strcmp(name, "CERTIFICATE") != 0) {
			rc = attest_fail(why, whylen, VTPM_E_FORMAT, "PEM block %d is a %.40s, "
			    "want PUBLIC KEY or CERTIFICATE", n, name);
		} else {
			p = data;
			rc = ek_add_der(k, &p, (size_t)dlen, name, why, whylen);
			if (rc == 0 && p != data + dlen)
				rc = attest_fail(why, whylen, VTPM_E_TRAILING,
				    "PEM block %d has bytes after its %s", n, name);
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
		if (rc != 0)
			goto out;
	}
	if (n == 0)
		rc = attest_fail(why, whylen, VTPM_E_FORMAT, "no readable PEM block");
out:
	BIO_free(b);
	ERR_clear_error();
	return rc;
}

void
attest_ek_bind_report_data(const struct attest_ek_keys *k, uint8_t rd[ATTEST_REPORT_DATA_LEN])
{
	crypto_hash_sha512_state st;

	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, (const uint8_t *)EK_BIND_LABEL, sizeof(EK_BIND_LABEL) - 1);
	crypto_hash_sha512_update(&st, k->ek_rsa, k->ek_rsa_len);
	crypto_hash_sha512_update(&st, k->ek_ecc, k->ek_ecc_len);
	crypto_hash_sha512_final(&st, rd);
}
