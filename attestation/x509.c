/*
 * x509.c: the X.509 and ECDSA helpers the SNP and TDX verifiers share, over
 * OpenSSL, plus the trust pins (AMD ARKs, Intel SGX Root CA). Certificates
 * given to these functions are untrusted: each check says which certificate
 * (by role and CN) failed and why, and the OpenSSL error queue is cleared.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "attest_int.h"

/* SHA-256 of the DER certificates (attestation-evidence.md, snp-amd-roots/SOURCE.txt). */
const struct amd_ark_pin amd_ark_pins[3] = {
	{ "Milan", {
	    0x69, 0xd0, 0x63, 0xb4, 0x53, 0x44, 0xd2, 0x6a,
	    0x2e, 0x94, 0xe1, 0xf4, 0x21, 0x0d, 0xe4, 0x9e,
	    0xf5, 0x55, 0x30, 0x82, 0x87, 0xd4, 0xc1, 0x74,
	    0x44, 0x5c, 0x95, 0x63, 0x9a, 0x54, 0x0b, 0xcd } },
	{ "Genoa", {
	    0x4c, 0x65, 0x98, 0xd1, 0x9c, 0x18, 0x71, 0x9c,
	    0x5d, 0xfd, 0x4a, 0x7d, 0x33, 0x5f, 0x67, 0x4e,
	    0x5b, 0xfe, 0x1d, 0x8f, 0x80, 0x0c, 0xea, 0x2c,
	    0xf2, 0x70, 0xc1, 0x0d, 0x10, 0x3d, 0xb2, 0xf1 } },
	{ "Turin", {
	    0x1f, 0x08, 0x41, 0x61, 0xa4, 0x4b, 0xb6, 0xd9,
	    0x37, 0x78, 0xa9, 0x04, 0x87, 0x7d, 0x48, 0x19,
	    0xca, 0xfa, 0x5d, 0x05, 0xef, 0x41, 0x93, 0xb2,
	    0xde, 0xd9, 0xdd, 0x9c, 0x73, 0xdd, 0x3f, 0x6a } },
};

/* "Intel SGX Root CA" (attestation-evidence.md). */
const uint8_t intel_sgx_root_sha256[32] = {
	0x44, 0xa0, 0x19, 0x6b, 0x2b, 0x99, 0xf8, 0x89,
	0xb8, 0xe1, 0x49, 0xe9, 0x5b, 0x80, 0x7a, 0x35,
	0x0e, 0x74, 0x24, 0x96, 0x43, 0x99, 0xe8, 0x85,
	0xa7, 0xcb, 0xb8, 0xcc, 0xfa, 0xb6, 0x74, 0xd3,
};

int
attest_fail(char *why, size_t whylen, int code, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	ERR_clear_error();
	return code;
}

int
attest_read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t have = 0;
	ssize_t n;
	int fd, saved;

	*out = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return VTPM_E_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		saved = S_ISREG(st.st_mode) ? errno : EINVAL;
		close(fd);
		errno = saved;
		return VTPM_E_IO;
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		return VTPM_E_TOOBIG;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return VTPM_E_NOMEM;
	}
	while (have < (size_t)st.st_size) {
		n = read(fd, buf + have, (size_t)st.st_size - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	saved = errno;
	close(fd);
	if (have != (size_t)st.st_size) {
		free(buf);
		errno = saved ? saved : EIO;
		return VTPM_E_IO;
	}
	buf[have] = '\0';	/* convenient for text; not counted in len */
	*out = buf;
	*len = have;
	return 0;
}

const char *
attest_embedded_get(const char *name)
{
	const struct attest_embedded *e;

	for (e = attest_embedded; e->name != NULL; e++)
		if (strcmp(e->name, name) == 0)
			return e->pem;
	return NULL;
}

static int
looks_pem(const uint8_t *buf, size_t len)
{
	static const char tag[] = "-----BEGIN ";
	size_t i = 0;

	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	return len - i >= sizeof(tag) - 1 && memcmp(buf + i, tag, sizeof(tag) - 1) == 0;
}

X509 *
x509_from_bytes(const uint8_t *buf, size_t len)
{
	const unsigned char *p = buf;
	X509 *x = NULL;
	BIO *bio;
	size_t i;

	uint8_t key[32];

	if (buf == NULL || len == 0 || len > INT_MAX)
		return NULL;
	if ((x = certcache_get(buf, len, key)) != NULL)
		return x;
	if (looks_pem(buf, len)) {
		if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
			return NULL;
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else {
		x = d2i_X509(NULL, &p, (long)len);
		/* DER must fill the buffer, except for zero padding. */
		for (i = (size_t)(p - buf); x != NULL && i < len; i++)
			if (buf[i] != 0) {
				X509_free(x);
				x = NULL;
			}
	}
	ERR_clear_error();
	certcache_put(key, x);
	return x;
}

STACK_OF(X509) *
x509_bundle_from_bytes(const uint8_t *buf, size_t len)
{
	STACK_OF(X509) *sk;
	X509 *x;
	BIO *bio;

	if (buf == NULL || len == 0 || len > INT_MAX || (sk = sk_X509_new_null()) == NULL)
		return NULL;
	if (!looks_pem(buf, len)) {
		if ((x = x509_from_bytes(buf, len)) == NULL || sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			sk_X509_free(sk);
			return NULL;
		}
		return sk;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		sk_X509_free(sk);
		return NULL;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(sk, x) <= 0 || sk_X509_num(sk) > 16) {
			X509_free(x);
			break;
		}
	}
	BIO_free(bio);
	ERR_clear_error();
	if (sk_X509_num(sk) == 0 || sk_X509_num(sk) > 16) {
		sk_X509_pop_free(sk, X509_free);
		return NULL;
	}
	return sk;
}

/* Compiled-in PEM texts never change: parsed once each, by name. */
#define EMBEDDED_MAX	64
static X509 *embedded_x509[EMBEDDED_MAX];
static pthread_mutex_t embedded_mu = PTHREAD_MUTEX_INITIALIZER;

X509 *
x509_from_embedded(const char *name)
{
	const struct attest_embedded *e;
	X509 *x = NULL;
	size_t i;

	for (e = attest_embedded, i = 0; e->name != NULL; e++, i++)
		if (strcmp(e->name, name) == 0)
			break;
	if (e->name == NULL)
		return NULL;
	if (i >= EMBEDDED_MAX)
		return x509_from_bytes((const uint8_t *)e->pem, strlen(e->pem));
	pthread_mutex_lock(&embedded_mu);
	if (embedded_x509[i] == NULL)
		embedded_x509[i] = x509_from_bytes((const uint8_t *)e->pem, strlen(e->pem));
	if (embedded_x509[i] != NULL && X509_up_ref(embedded_x509[i]) == 1)
		x = embedded_x509[i];
	pthread_mutex_unlock(&embedded_mu);
	return x;
}

void
x509_sha256(X509 *x, uint8_t out[32])
{
	unsigned int n = 32;

	if (X509_digest(x, EVP_sha256(), out, &n) != 1 || n != 32)
		memset(out, 0, 32);
}

void
x509_cn(X509 *x, char *buf, size_t len)
{
	int n;

	n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
	    buf, len > INT_MAX ? INT_MAX : (int)len);
	if (n < 0)
		snprintf(buf, len, "?");
	ERR_clear_error();
}

int
x509_is_self_signed(X509 *x)
{
	int r;

	/* Names and key identifiers on every call; the signature once per DER. */
	if (certcache_verified(x, x))
		r = X509_self_signed(x, 0);
	else if ((r = X509_self_signed(x, 1)) == 1)
		certcache_note_verified(x, x);
	ERR_clear_error();
	return r == 1;
}

static void
asn1_time_text(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "(unreadable time)");
}

int
x509_check_time(X509 *x, const char *role, const struct attest_verify_cfg *cfg,
    char *why, size_t whylen)
{
	time_t now;
	char cn[64], t[40];
	int r;

	if (cfg->av_no_time_check)
		return 0;
	now = cfg->av_now != 0 ? (time_t)cfg->av_now : time(NULL);
	x509_cn(x, cn, sizeof(cn));
	r = X509_cmp_time(X509_get0_notBefore(x), &now);
	if (r == 0)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s '%s' has an unreadable notBefore time", role, cn);
	if (r > 0) {
		asn1_time_text(X509_get0_notBefore(x), t, sizeof(t));
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s '%s' is not valid before %s (certificate time check)", role, cn, t);
	}
	r = X509_cmp_time(X509_get0_notAfter(x), &now);
	if (r == 0)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s '%s' has an unreadable notAfter time", role, cn);
	if (r < 0) {
		asn1_time_text(X509_get0_notAfter(x), t, sizeof(t));
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s '%s' expired on %s (certificate time check)", role, cn, t);
	}
	return 0;
}

/* RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48, as AMD signs. */
static int
pss_params_ok(X509 *x)
{
	const X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *obj;
	const void *pval;
	int ptype, ok = 0;
	RSA_PSS_PARAMS *pss = NULL;
	X509_ALGOR *mgfhash = NULL;
	const ASN1_OBJECT *o;

	X509_get0_signature(NULL, &alg, x);
	if (alg == NULL)
		return 0;
	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (OBJ_obj2nid(obj) != NID_rsassaPss || ptype != V_ASN1_SEQUENCE)
		return 0;
	pss = ASN1_item_unpack(pval, ASN1_ITEM_rptr(RSA_PSS_PARAMS));
	if (pss == NULL)
		goto out;
	if (pss->hashAlgorithm == NULL)
		goto out;
	X509_ALGOR_get0(&o, NULL, NULL, pss->hashAlgorithm);
	if (OBJ_obj2nid(o) != NID_sha384)
		goto out;
	if (pss->maskGenAlgorithm == NULL)
		goto out;
	X509_ALGOR_get0(&o, &ptype, &pval, pss->maskGenAlgorithm);
	if (OBJ_obj2nid(o) != NID_mgf1 || ptype != V_ASN1_SEQUENCE)
		goto out;
	mgfhash = ASN1_item_unpack(pval, ASN1_ITEM_rptr(X509_ALGOR));
	if (mgfhash == NULL)
		goto out;
	X509_ALGOR_get0(&o, NULL, NULL, mgfhash);
	if (OBJ_obj2nid(o) != NID_sha384)
		goto out;
	if (pss->saltLength == NULL || ASN1_INTEGER_get(pss->saltLength) != 48)
		goto out;
	ok = 1;
out:
	X509_ALGOR_free(mgfhash);
	RSA_PSS_PARAMS_free(pss);
	ERR_clear_error();
	return ok;
}

int
x509_check_issued_by(X509 *child, const char *crole, X509 *issuer,
    const char *irole, int sig_nid, char *why, size_t whylen)
{
	char ccn[64], icn[64];
	EVP_PKEY *key;
	int r;

	x509_cn(child, ccn, sizeof(ccn));
	x509_cn(issuer, icn, sizeof(icn));
	r = X509_check_issued(issuer, child);
	if (r != X509_V_OK)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s '%s' is not issued by %s '%s' (%s)", crole, ccn, irole, icn,
		    X509_verify_cert_error_string(r));
	if (X509_check_ca(issuer) < 1)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s '%s' is not a CA certificate", irole, icn);
	if (sig_nid == NID_rsassaPss && !pss_params_ok(child))
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s '%s' is not signed with RSASSA-PSS SHA-384 (MGF1 SHA-384, salt 48)",
		    crole, ccn);
	if (sig_nid != 0 && sig_nid != NID_rsassaPss && X509_get_signature_nid(child) != sig_nid)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s '%s' is signed with %s, want %s", crole, ccn,
		    OBJ_nid2sn(X509_get_signature_nid(child)), OBJ_nid2sn(sig_nid));
	if ((key = X509_get0_pubkey(issuer)) == NULL)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s '%s' has an unusable public key", irole, icn);
	if (!certcache_verified(child, issuer)) {
		if (X509_verify(child, key) != 1)
			return attest_fail(why, whylen, VTPM_E_EVIDENCE,
			    "%s '%s' signature does not verify with the key of %s '%s' "
			    "(certificate signature failure)", crole, ccn, irole, icn);
		certcache_note_verified(child, issuer);
	}
	ERR_clear_error();
	return 0;
}

int
x509_ext_by_oid(X509 *x, const char *oid, const uint8_t **data, size_t *len)
{
	ASN1_OBJECT *obj;
	X509_EXTENSION *ext;
	ASN1_OCTET_STRING *os;
	int idx, dup;

	if ((obj = OBJ_txt2obj(oid, 1)) == NULL) {
		ERR_clear_error();
		return VTPM_E_INVAL;
	}
	idx = X509_get_ext_by_OBJ(x, obj, -1);
	dup = idx >= 0 ? X509_get_ext_by_OBJ(x, obj, idx) : -1;
	ASN1_OBJECT_free(obj);
	ERR_clear_error();
	if (idx < 0)
		return VTPM_E_NOTFOUND;
	if (dup >= 0)
		return VTPM_E_FORMAT;
	if ((ext = X509_get_ext(x, idx)) == NULL || (os = X509_EXTENSION_get_data(ext)) == NULL)
		return VTPM_E_FORMAT;
	*data = ASN1_STRING_get0_data(os);
	*len = (size_t)ASN1_STRING_length(os);
	return 0;
}

int
attest_test_ark_sha256(uint8_t out[32])
{
	X509 *x = x509_from_embedded("testchain/ark.pem");

	if (x == NULL)
		return VTPM_E_CRYPTO;
	x509_sha256(x, out);
	X509_free(x);
	return 0;
}

int
ecdsa_verify_rs(EVP_PKEY *key, const uint8_t *digest, size_t dlen,
    const uint8_t *r, size_t rlen, const uint8_t *s, size_t slen, int little_endian)
{
	ECDSA_SIG *sig = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char *der = NULL;
	int derlen, ok = 0;

	if (rlen > INT_MAX || slen > INT_MAX)
		return 0;
	if (little_endian) {
		br = BN_lebin2bn(r, (int)rlen, NULL);
		bs = BN_lebin2bn(s, (int)slen, NULL);
	} else {
		br = BN_bin2bn(r, (int)rlen, NULL);
		bs = BN_bin2bn(s, (int)slen, NULL);
	}
	if (br == NULL || bs == NULL || (sig = ECDSA_SIG_new()) == NULL)
		goto out;
	if (ECDSA_SIG_set0(sig, br, bs) != 1)
		goto out;
	br = bs = NULL;		/* owned by sig now */
	if ((derlen = i2d_ECDSA_SIG(sig, &der)) <= 0)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new(key, NULL)) == NULL || EVP_PKEY_verify_init(ctx) != 1)
		goto out;
	ok = EVP_PKEY_verify(ctx, der, (size_t)derlen, digest, dlen) == 1;
out:
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
	BN_free(br);
	BN_free(bs);
	ERR_clear_error();
	return ok;
}
