/*
 * endorse.c: the vtpmd EK CA and EK certificates (TCG EK Credential
 * Profile), built with OpenSSL in the parent. Trusts nothing in the EK
 * public areas a worker sends: they are parsed with the cursor and must be
 * exactly the default EK templates' shape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "cursor.h"
#include "endorse.h"
#include "ipc.h"
#include "log.h"
#include "parent.h"

static EVP_PKEY *ca_key;
static X509 *ca_cert;

void
hcrtm_event(const struct attest_claims *c, uint8_t out[HCRTM_EVENT_LEN])
{
	uint8_t *p = out;

	memcpy(p, "vtpmd-launch-v1", 15);
	p += 15;
	*p++ = c->tee;
	memcpy(p, c->measurement, ATTEST_MEASUREMENT_LEN);
	p += ATTEST_MEASUREMENT_LEN;
	memcpy(p, c->host_data, ATTEST_HOST_DATA_LEN);
	p += ATTEST_HOST_DATA_LEN;
	memcpy(p, c->launch_id, ATTEST_LAUNCH_ID_LEN);
}

void
ekca_reset(void)
{
	EVP_PKEY_free(ca_key);
	X509_free(ca_cert);
	ca_key = NULL;
	ca_cert = NULL;
}

/*
 * The CA key's home in the store: its P-256 scalar wrapped ("VTK1",
 * seal_dek_wrap()) by one root key, under the blob key (uuid "EKCA" 0 0 0 0
 * || that key's kid, SEAL_BLOB_ENDORSEMENT). A rotation wraps it for the new
 * root key before the store switches (ekca_carry()), so the CA outlives
 * rotations. No instance uuid can collide in practice (random 128 bits).
 */
static void
ca_slot(const struct seal_kek *kek, uint8_t uuid[SEAL_UUID_LEN])
{
	memset(uuid, 0, SEAL_UUID_LEN);
	memcpy(uuid, "EKCA", 4);
	memcpy(uuid + 8, kek->kid, SEAL_KID_LEN);
}

/* The first P-256 scalar of HMAC-SHA256(root key, "vtpmd-ek-ca-v1" || counter) in [1, n). */
static int
ca_first_scalar(const struct seal_kek *kek, uint8_t d[32])
{
	static const char label[] = "vtpmd-ek-ca-v1";
	uint8_t msg[sizeof(label)];
	BIGNUM *bn = NULL, *order = NULL;
	EC_GROUP *grp;
	int ctr, rc = VTPM_E_CRYPTO;

	grp = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	order = BN_new();
	if (grp == NULL || order == NULL || !EC_GROUP_get_order(grp, order, NULL))
		goto out;
	memcpy(msg, label, sizeof(label) - 1);
	for (ctr = 0; ctr < 256; ctr++) {
		msg[sizeof(label) - 1] = (uint8_t)ctr;
		crypto_auth_hmacsha256(d, msg, sizeof(msg), kek->key);
		BN_clear_free(bn);
		if ((bn = BN_bin2bn(d, 32, NULL)) == NULL)
			goto out;
		if (!BN_is_zero(bn) && BN_cmp(bn, order) < 0) {
			rc = 0;
			break;
		}
	}
out:
	if (rc != 0)
		sodium_memzero(d, 32);
	BN_clear_free(bn);
	BN_free(order);
	EC_GROUP_free(grp);
	return rc;
}

static int
ca_slot_put(const struct seal_kek *kek, const uint8_t d[32])
{
	uint8_t uuid[SEAL_UUID_LEN], w[SEAL_WRAPPED_DEK_LEN];
	struct store_batch *b;
	int rc;

	ca_slot(kek, uuid);
	if ((rc = seal_dek_wrap(kek, uuid, d, w)) != 0)
		return rc;
	if ((b = store_batch_new()) == NULL)
		fatalx("out of memory");
	if ((rc = store_batch_put_blob(b, uuid, SEAL_BLOB_ENDORSEMENT, w, sizeof(w))) == 0)
		rc = store_batch_commit(V->store, b);
	store_batch_free(b);
	return rc;
}

/*
 * The CA scalar under kek: from its slot, or, for a store that has none
 * yet, derived from kek and stored (so a store keeps the CA it had before
 * the slot existed, until its first rotation, and from then on).
 */
static int
ca_scalar(const struct seal_kek *kek, uint8_t d[32])
{
	uint8_t uuid[SEAL_UUID_LEN], w[SEAL_WRAPPED_DEK_LEN + 1];
	size_t n;
	int rc;

	ca_slot(kek, uuid);
	rc = store_blob_get(V->store, uuid, SEAL_BLOB_ENDORSEMENT, w, sizeof(w), &n);
	if (rc == 0) {
		if (n != SEAL_WRAPPED_DEK_LEN)
			return VTPM_E_FORMAT;
		return seal_dek_unwrap(kek, uuid, w, d);
	}
	if (rc != VTPM_E_NOTFOUND)
		return rc == VTPM_E_TOOBIG ? VTPM_E_FORMAT : rc;
	if ((rc = ca_first_scalar(kek, d)) != 0)
		return rc;
	if ((rc = ca_slot_put(kek, d)) != 0) {
		sodium_memzero(d, 32);
		return rc;
	}
	log_info("EK CA: key derived from root key version %u and kept in the store",
	    kek->version);
	return 0;
}

int
ekca_carry(const struct seal_kek *new_kek)
{
	uint8_t *d;
	int rc;

	if (V->kek == NULL)
		return VTPM_E_AGAIN;
	if ((d = sodium_malloc(32)) == NULL)
		fatalx("out of memory");
	if ((rc = ca_scalar(V->kek, d)) == 0)
		rc = ca_slot_put(new_kek, d);
	sodium_memzero(d, 32);
	sodium_free(d);
	if (rc != 0)
		log_warnx("EK CA: could not wrap the CA key for root key version %u: %s",
		    new_kek->version, vtpm_strerror(rc));
	return rc;
}

/* The CA key pair from its scalar (ca_scalar()). */
static EVP_PKEY *
ca_derive_key(void)
{
	uint8_t *d = NULL, pub[65];
	EC_GROUP *grp = NULL;
	EC_POINT *pt = NULL;
	BIGNUM *bn = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	int rc;

	if (V->kek == NULL)
		return NULL;
	if ((d = sodium_malloc(32)) == NULL)
		fatalx("out of memory");
	if ((rc = ca_scalar(V->kek, d)) != 0) {
		log_warnx("EK CA: no key: %s", vtpm_strerror(rc));
		goto out;
	}
	grp = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	if (grp == NULL || (bn = BN_bin2bn(d, 32, NULL)) == NULL ||
	    (pt = EC_POINT_new(grp)) == NULL ||
	    !EC_POINT_mul(grp, pt, bn, NULL, NULL, NULL) ||
	    EC_POINT_point2oct(grp, pt, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof(pub),
	    NULL) != sizeof(pub))
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) <= 0)
		key = NULL;
out:
	sodium_memzero(d, 32);
	sodium_free(d);
	OSSL_PARAM_free(params);	/* holds a copy of the scalar */
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	EC_POINT_free(pt);
	EC_GROUP_free(grp);
	BN_clear_free(bn);
	return key;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (ext == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* A positive serial number from 16 bytes (random, or a digest). */
static int
set_serial(X509 *x, const uint8_t bytes[16])
{
	uint8_t b[16];
	BIGNUM *bn;
	int ok;

	memcpy(b, bytes, sizeof(b));
	b[0] &= 0x7f;
	b[0] |= 0x01;	/* never zero, never negative */
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL)
		return 0;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok;
}

static int
ca_make(void)
{
	uint8_t spki_hash[32], *der = NULL;
	X509_NAME *name = NULL;
	X509V3_CTX ctx;
	X509 *x = NULL;
	int len;

	if (ca_key != NULL)
		return 0;
	if ((ca_key = ca_derive_key()) == NULL) {
		log_warnx("EK CA: no key (root key not available)");
		return VTPM_E_AGAIN;
	}
	if ((len = i2d_PUBKEY(ca_key, &der)) <= 0)
		goto fail;
	crypto_hash_sha256(spki_hash, der, (unsigned long long)len);
	OPENSSL_free(der);
	if ((x = X509_new()) == NULL || !X509_set_version(x, 2) ||
	    !set_serial(x, spki_hash) || (name = X509_NAME_new()) == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"vtpmd", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"vtpmd EK CA", -1, -1, 0) ||
	    !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
	    !ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "20250101000000Z") ||
	    !ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "99991231235959Z") ||
	    !X509_set_pubkey(x, ca_key))
		goto fail;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (!add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    !add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    X509_sign(x, ca_key, EVP_sha256()) <= 0)
		goto fail;
	X509_NAME_free(name);
	ca_cert = x;
	return 0;
fail:
	log_warnx("EK CA: could not build the CA certificate");
	X509_NAME_free(name);
	X509_free(x);
	ekca_reset();
	return VTPM_E_CRYPTO;
}

char *
ekca_pem(void)
{
	BIO *b;
	BUF_MEM *m;
	char *out = NULL;

	if (ca_make() != 0 || (b = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (PEM_write_bio_X509(b, ca_cert) && BIO_get_mem_ptr(b, &m) > 0 &&
	    (out = malloc(m->length + 1)) != NULL) {
		memcpy(out, m->data, m->length);
		out[m->length] = '\0';
	}
	BIO_free(b);
	return out;
}

int
ekca_report_data(uint8_t rd[ATTEST_REPORT_DATA_LEN])
{
	crypto_hash_sha512_state st;
	uint8_t *der = NULL;
	int len, rc;

	if ((rc = ca_make()) != 0)
		return rc;
	if ((len = i2d_PUBKEY(ca_key, &der)) <= 0)
		return VTPM_E_CRYPTO;
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, (const uint8_t *)"vtpmd-ek-ca-v1", 14);
	crypto_hash_sha512_update(&st, der, (unsigned long long)len);
	crypto_hash_sha512_final(&st, rd);
	OPENSSL_free(der);
	return 0;
}

/* ---------- EK public areas (TPMT_PUBLIC) ---------- */

/* Turns an EK's TPMT_PUBLIC into an OpenSSL public key; NULL if malformed. */
static EVP_PKEY *
ek_pubkey(const uint8_t *p, size_t len, int want_ecc)
{
	uint8_t der[ATTEST_EK_SPKI_MAX];
	const uint8_t *d = der;
	size_t dlen;

	if (attest_ek_spki_from_tpmt(p, len, want_ecc, der, sizeof(der), &dlen) != 0)
		return NULL;
	return d2i_PUBKEY(NULL, &d, (long)dlen);
}

/* TPMSpecification ::= SEQUENCE { family UTF8String "2.0", level 0, revision 164 } in subjectDirectoryAttributes. */
static const uint8_t tpm_spec_sda[] = {
	0x30, 0x19, 0x30, 0x17, 0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x10,
	0x31, 0x0e, 0x30, 0x0c, 0x0c, 0x03, '2', '.', '0', 0x02, 0x01, 0x00,
	0x02, 0x02, 0x00, 0xa4,
};

/* An EK certificate: empty subject, the TPM in a critical SAN, EKU tcg-kp-EKCertificate. */
static int
ek_cert_der(EVP_PKEY *ek, int ecc, uint8_t *out, size_t cap, size_t *len)
{
	GENERAL_NAMES *gns = NULL;
	GENERAL_NAME *gn = NULL;
	X509_NAME *dn = NULL, *empty = NULL;
	X509_EXTENSION *sda = NULL;
	ASN1_OCTET_STRING *os = NULL;
	X509V3_CTX ctx;
	X509 *x = NULL;
	uint8_t serial[16], *p;
	int n, rc = VTPM_E_CRYPTO;
	char version[16];

	randombytes_buf(serial, sizeof(serial));
	snprintf(version, sizeof(version), "id:%08X", 0x00000100u);
	if ((x = X509_new()) == NULL || !X509_set_version(x, 2) || !set_serial(x, serial) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca_cert)) ||
	    (empty = X509_NAME_new()) == NULL || !X509_set_subject_name(x, empty) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    !ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "99991231235959Z") ||
	    !X509_set_pubkey(x, ek))
		goto out;
	if ((dn = X509_NAME_new()) == NULL ||
	    !X509_NAME_add_entry_by_OBJ(dn, OBJ_txt2obj("2.23.133.2.1", 1), MBSTRING_UTF8,
	    (const unsigned char *)"id:49424D00", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_OBJ(dn, OBJ_txt2obj("2.23.133.2.2", 1), MBSTRING_UTF8,
	    (const unsigned char *)"vtpmd", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_OBJ(dn, OBJ_txt2obj("2.23.133.2.3", 1), MBSTRING_UTF8,
	    (const unsigned char *)version, -1, -1, 0) ||
	    (gn = GENERAL_NAME_new()) == NULL || (gns = sk_GENERAL_NAME_new_null()) == NULL)
		goto out;
	gn->type = GEN_DIRNAME;
	gn->d.directoryName = dn;
	dn = NULL;
	if (!sk_GENERAL_NAME_push(gns, gn))
		goto out;
	gn = NULL;
	X509V3_set_ctx(&ctx, ca_cert, x, NULL, NULL, 0);
	if (!X509_add1_ext_i2d(x, NID_subject_alt_name, gns, 1, X509V3_ADD_DEFAULT) ||
	    !add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, &ctx, NID_key_usage, ecc ? "critical,keyAgreement" :
	    "critical,keyEncipherment") ||
	    !add_ext(x, &ctx, NID_ext_key_usage, "2.23.133.8.1") ||
	    !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
		goto out;
	if ((os = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(os, tpm_spec_sda, sizeof(tpm_spec_sda)) ||
	    (sda = X509_EXTENSION_create_by_NID(NULL, NID_subject_directory_attributes, 0, os)) == NULL ||
	    !X509_add_ext(x, sda, -1) || X509_sign(x, ca_key, EVP_sha256()) <= 0)
		goto out;
	if ((n = i2d_X509(x, NULL)) <= 0 || (size_t)n > cap) {
		rc = VTPM_E_TOOBIG;
		goto out;
	}
	p = out;
	i2d_X509(x, &p);
	*len = (size_t)n;
	rc = 0;
out:
	X509_EXTENSION_free(sda);
	ASN1_OCTET_STRING_free(os);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(gns);
	X509_NAME_free(dn);
	X509_NAME_free(empty);
	X509_free(x);
	return rc;
}

int
ekcert_issue(const char *instance, const uint8_t *body, size_t len, uint8_t *out,
    size_t cap, size_t *outlen, struct attest_ek_keys *keys)
{
	const uint8_t *rsa, *ecc;
	struct cursor c;
	uint16_t rl, el;
	EVP_PKEY *rk = NULL, *ek = NULL;
	struct wbuf w;
	uint8_t *rlen_at, *elen_at, *der;
	size_t dlen;
	int rc;

	cur_init(&c, body, len);
	if (cur_get_u16(&c, &rl) != 0 || rl > IPC_EK_PUB_MAX || cur_get_ref(&c, &rsa, rl) != 0 ||
	    cur_get_u16(&c, &el) != 0 || el > IPC_EK_PUB_MAX || cur_get_ref(&c, &ecc, el) != 0 ||
	    cur_end(&c) != 0)
		return VTPM_E_FORMAT;
	memset(keys, 0, sizeof(*keys));
	if (attest_ek_spki_from_tpmt(rsa, rl, 0, keys->ek_rsa, sizeof(keys->ek_rsa),
	    &keys->ek_rsa_len) != 0 ||
	    attest_ek_spki_from_tpmt(ecc, el, 1, keys->ek_ecc, sizeof(keys->ek_ecc),
	    &keys->ek_ecc_len) != 0) {
		memset(keys, 0, sizeof(*keys));
		return VTPM_E_FORMAT;
	}
	if ((rk = ek_pubkey(rsa, rl, 0)) == NULL || (ek = ek_pubkey(ecc, el, 1)) == NULL) {
		EVP_PKEY_free(rk);
		return VTPM_E_FORMAT;
	}
	if ((rc = ca_make()) != 0)
		goto out;
	wbuf_init(&w, out, cap);
	rlen_at = wbuf_reserve(&w, 2);
	if ((der = wbuf_reserve(&w, 0)) == NULL ||
	    (rc = ek_cert_der(rk, 0, der, cap - w.w_len, &dlen)) != 0 ||
	    wbuf_reserve(&w, dlen) == NULL)
		goto out;
	be16_enc(rlen_at, (uint16_t)dlen);
	elen_at = wbuf_reserve(&w, 2);
	if ((der = wbuf_reserve(&w, 0)) == NULL ||
	    (rc = ek_cert_der(ek, 1, der, cap - w.w_len, &dlen)) != 0 ||
	    wbuf_reserve(&w, dlen) == NULL)
		goto out;
	be16_enc(elen_at, (uint16_t)dlen);
	if ((rc = wbuf_end(&w, outlen)) == 0)
		log_info("instance %s: EK certificates issued (RSA-2048, ECC P-256)", instance);
out:
	EVP_PKEY_free(rk);
	EVP_PKEY_free(ek);
	return rc;
}

/* ---------- the endorsement record (sealed blob type 3) ---------- */

int
endorse_record_store(const struct store_instance *rec, const uint8_t *dek,
    const struct attest_ek_keys *keys, const uint8_t *certs, size_t clen)
{
	uint8_t plain[ENDORSE_PLAIN_MAX], sealed[ENDORSE_SEALED_MAX];
	struct store_batch *b;
	struct wbuf w;
	size_t plen, slen;
	int rc;

	wbuf_init(&w, plain, sizeof(plain));
	wbuf_put_bytes(&w, "VEK1", 4);
	wbuf_put_u16(&w, (uint16_t)keys->ek_rsa_len);
	wbuf_put_bytes(&w, keys->ek_rsa, keys->ek_rsa_len);
	wbuf_put_u16(&w, (uint16_t)keys->ek_ecc_len);
	wbuf_put_bytes(&w, keys->ek_ecc, keys->ek_ecc_len);
	wbuf_put_bytes(&w, certs, clen);
	if ((rc = wbuf_end(&w, &plen)) != 0 ||
	    (rc = seal_blob(dek, V->kek->kid, rec->uuid, SEAL_BLOB_ENDORSEMENT,
	    SEAL_ENDORSEMENT_GEN, plain, plen, sealed, sizeof(sealed), &slen)) != 0)
		goto out;
	if ((b = store_batch_new()) == NULL)
		fatalx("out of memory");
	if ((rc = store_batch_put_blob(b, rec->uuid, SEAL_BLOB_ENDORSEMENT, sealed, slen)) == 0)
		rc = store_batch_commit(V->store, b);
	store_batch_free(b);
out:
	if (rc != 0)
		log_warnx("instance %s: endorsement record not stored: %s", rec->name,
		    vtpm_strerror(rc));
	return rc;
}

static json_object *
endo_hex(const uint8_t *p, size_t n)
{
	char s[2 * 64 + 1];

	if (n > 64)
		return NULL;
	sodium_bin2hex(s, sizeof(s), p, n);
	return json_object_new_string(s);
}

static json_object *
endo_sha256(const uint8_t *p, size_t n)
{
	uint8_t h[32];

	if (n == 0)
		return NULL;
	crypto_hash_sha256(h, p, n);
	return endo_hex(h, sizeof(h));
}

static json_object *
endo_pem(const uint8_t *der, size_t n)
{
	char b64[1024], pem[1400];
	size_t i, o;

	if (n == 0 || sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) > sizeof(b64))
		return NULL;
	sodium_bin2base64(b64, sizeof(b64), der, n, sodium_base64_VARIANT_ORIGINAL);
	o = (size_t)snprintf(pem, sizeof(pem), "-----BEGIN PUBLIC KEY-----\n");
	for (i = 0; b64[i] != '\0' && o < sizeof(pem); i += 64)
		o += (size_t)snprintf(pem + o, sizeof(pem) - o, "%.64s\n", b64 + i);
	if (o < sizeof(pem))
		snprintf(pem + o, sizeof(pem) - o, "-----END PUBLIC KEY-----\n");
	return json_object_new_string(pem);
}

static json_object *
endo_missing(const char *why)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "recorded", json_object_new_boolean(0));
	json_object_object_add(o, "why", json_object_new_string(why));
	return o;
}

json_object *
endorse_show_json(const struct store_instance *rec)
{
	uint8_t *sealed = NULL, *plain = NULL, *dek = NULL, rd[ATTEST_REPORT_DATA_LEN];
	const uint8_t *magic, *rsa, *ecc, *rc_der, *ec_der;
	uint16_t rl, el, rcl, ecl;
	struct attest_ek_keys *k = NULL;
	struct cursor c;
	size_t slen, plen;
	json_object *o = NULL;
	char why[160];
	int rc;

	if (V->kek == NULL)
		return endo_missing("the root key is not available yet");
	if ((sealed = malloc(ENDORSE_SEALED_MAX)) == NULL || (plain = malloc(ENDORSE_PLAIN_MAX)) == NULL ||
	    (k = calloc(1, sizeof(*k))) == NULL || (dek = sodium_malloc(SEAL_KEY_LEN)) == NULL)
		fatalx("out of memory");
	rc = store_blob_get(V->store, rec->uuid, SEAL_BLOB_ENDORSEMENT, sealed,
	    ENDORSE_SEALED_MAX, &slen);
	if (rc == VTPM_E_NOTFOUND) {
		o = endo_missing(rec->perm_gen == 0 ? "not manufactured yet (no guest has "
		    "attached)" : "none recorded: the instance was manufactured by a vtpmd "
		    "that did not keep endorsement records; read the EKs in the guest "
		    "(tpm2_createek, tpm2_getekcertificate)");
		goto out;
	}
	if (rc == 0)
		rc = seal_dek_unwrap(V->kek, rec->uuid, rec->wrapped_dek, dek);
	if (rc == 0)
		rc = unseal_blob(dek, rec->uuid, SEAL_BLOB_ENDORSEMENT, SEAL_ENDORSEMENT_GEN,
		    sealed, slen, plain, ENDORSE_PLAIN_MAX, &plen);
	if (rc != 0) {
		snprintf(why, sizeof(why), "the endorsement record does not open: %s",
		    vtpm_strerror(rc));
		o = endo_missing(why);
		goto out;
	}
	cur_init(&c, plain, plen);
	if (cur_get_ref(&c, &magic, 4) != 0 || memcmp(magic, "VEK1", 4) != 0 ||
	    cur_get_u16(&c, &rl) != 0 || rl > ATTEST_EK_SPKI_MAX || cur_get_ref(&c, &rsa, rl) != 0 ||
	    cur_get_u16(&c, &el) != 0 || el > ATTEST_EK_SPKI_MAX || cur_get_ref(&c, &ecc, el) != 0 ||
	    cur_get_u16(&c, &rcl) != 0 || cur_get_ref(&c, &rc_der, rcl) != 0 ||
	    cur_get_u16(&c, &ecl) != 0 || cur_get_ref(&c, &ec_der, ecl) != 0 ||
	    cur_end(&c) != 0) {
		o = endo_missing("the endorsement record is malformed");
		goto out;
	}
	memcpy(k->ek_rsa, rsa, rl);
	k->ek_rsa_len = rl;
	memcpy(k->ek_ecc, ecc, el);
	k->ek_ecc_len = el;
	attest_ek_bind_report_data(k, rd);
	o = json_object_new_object();
	json_object_object_add(o, "recorded", json_object_new_boolean(1));
	json_object_object_add(o, "ek_rsa_pem", endo_pem(rsa, rl));
	json_object_object_add(o, "ek_ecc_pem", endo_pem(ecc, el));
	json_object_object_add(o, "ek_rsa_spki_sha256", endo_sha256(rsa, rl));
	json_object_object_add(o, "ek_ecc_spki_sha256", endo_sha256(ecc, el));
	json_object_object_add(o, "ek_rsa_cert_sha256", endo_sha256(rc_der, rcl));
	json_object_object_add(o, "ek_ecc_cert_sha256", endo_sha256(ec_der, ecl));
	json_object_object_add(o, "ek_bind_report_data", endo_hex(rd, sizeof(rd)));
out:
	sodium_free(dek);
	free(k);
	free(plain);
	free(sealed);
	return o;
}
