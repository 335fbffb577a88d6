/*
 * test_ekbind.c: unit tests of attestation/ekbind.c: EKPUB files in every
 * accepted form give the report data computed independently with openssl
 * and sha512sum (tests/vectors/ekbind/SOURCE.txt); TPMT_PUBLIC of the
 * default templates converts to the same SPKI tpm2_createek gave; malformed
 * input fails with a reason. Ends with "ekbind: N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "attest_int.h"
#include "cursor.h"

static int npass, nfail;
static const char *vecdir = "tests/vectors/ekbind";

#define CHECK(cond, ...) do {						\
	if (cond) {							\
		npass++;						\
	} else {							\
		nfail++;						\
		printf("FAIL %s:%d: ", __FILE__, __LINE__);		\
		printf(__VA_ARGS__);					\
		printf("\n");						\
	}								\
} while (0)

static uint8_t *
load(const char *name, size_t *len)
{
	char path[512];
	uint8_t *buf;

	snprintf(path, sizeof(path), "%s/%s", vecdir, name);
	if (attest_read_file(path, 1 << 20, &buf, len) != 0) {
		printf("cannot read %s\n", path);
		exit(1);
	}
	return buf;
}

/* Appends b to a (a malloc'd), returns the new buffer. */
static uint8_t *
cat(uint8_t *a, size_t *alen, const uint8_t *b, size_t blen)
{
	uint8_t *n = realloc(a, *alen + blen);

	if (n == NULL)
		exit(2);
	memcpy(n + *alen, b, blen);
	*alen += blen;
	return n;
}

/* Loads the named files into one key set and returns the load's result. */
static int
load_set(struct attest_ek_keys *k, const char *names[], int n, char *why, size_t whylen)
{
	uint8_t *buf;
	size_t len;
	int i, rc = 0;

	memset(k, 0, sizeof(*k));
	for (i = 0; i < n && rc == 0; i++) {
		buf = load(names[i], &len);
		rc = attest_ek_load(buf, len, k, why, whylen);
		free(buf);
	}
	return rc;
}

static void
want_rd(const struct attest_ek_keys *k, const char *rdfile, const char *what)
{
	uint8_t rd[64], want[64], *hex;
	size_t len;

	hex = load(rdfile, &len);
	if (len < 128 || sodium_hex2bin(want, sizeof(want), (const char *)hex, 128, NULL, NULL,
	    NULL) != 0)
		exit(1);
	free(hex);
	attest_ek_bind_report_data(k, rd);
	CHECK(memcmp(rd, want, 64) == 0, "%s: report data differs from %s", what, rdfile);
}

static void
test_files(void)
{
	const char *pems[] = { "ek-rsa.pem", "ek-ecc.pem" };
	const char *ders[] = { "ek-ecc-cert.der", "ek-rsa-cert.der" };	/* any order */
	const char *mixed[] = { "ek-rsa-cert.der", "ek-ecc.pem", "ek-rsa.pem" };
	struct attest_ek_keys k;
	char why[ATTEST_WHY_LEN];
	uint8_t *a, *b, *buf;
	size_t alen, blen;
	X509 *x;
	BIO *bio;
	int rc;

	CHECK(load_set(&k, pems, 2, why, sizeof(why)) == 0, "PEM keys: %s", why);
	want_rd(&k, "both.rd", "tpm2_createek PEM keys");
	CHECK(load_set(&k, ders, 2, why, sizeof(why)) == 0, "DER certs: %s", why);
	want_rd(&k, "both.rd", "DER EK certificates");
	CHECK(load_set(&k, mixed, 3, why, sizeof(why)) == 0,
	    "a certificate and its own key again: %s", why);
	want_rd(&k, "both.rd", "certificate and key of the same EK");
	CHECK(load_set(&k, pems, 1, why, sizeof(why)) == 0, "RSA PEM: %s", why);
	want_rd(&k, "rsa-only.rd", "the RSA EK alone");

	/* DER certificates back to back, and the same as PEM in one file */
	a = load("ek-rsa-cert.der", &alen);
	b = load("ek-ecc-cert.der", &blen);
	buf = NULL;
	{
		size_t n = 0;

		buf = cat(buf, &n, a, alen);
		buf = cat(buf, &n, b, blen);
		memset(&k, 0, sizeof(k));
		CHECK(attest_ek_load(buf, n, &k, why, sizeof(why)) == 0, "DER pair: %s", why);
		want_rd(&k, "both.rd", "two DER certificates in one file");
		/* a byte of garbage after them */
		buf = cat(buf, &n, (const uint8_t *)"\x30", 1);
		memset(&k, 0, sizeof(k));
		rc = attest_ek_load(buf, n, &k, why, sizeof(why));
		CHECK(rc == VTPM_E_FORMAT && strstr(why, "later DER object") != NULL,
		    "trailing garbage: rc %d why %s", rc, why);
	}
	free(buf);
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		exit(2);
	{
		const uint8_t *p = a;
		BUF_MEM *m;

		x = d2i_X509(NULL, &p, (long)alen);
		PEM_write_bio_X509(bio, x);
		X509_free(x);
		p = b;
		x = d2i_X509(NULL, &p, (long)blen);
		PEM_write_bio_X509(bio, x);
		X509_free(x);
		BIO_get_mem_ptr(bio, &m);
		memset(&k, 0, sizeof(k));
		CHECK(attest_ek_load((const uint8_t *)m->data, m->length, &k, why,
		    sizeof(why)) == 0, "PEM certificates: %s", why);
		want_rd(&k, "both.rd", "PEM EK certificates");
	}
	BIO_free(bio);
	free(a);
	free(b);
}

static void
test_refusals(void)
{
	const char *two[] = { "ek-rsa.pem", "other-rsa.pem" };
	const char *ed[] = { "ed25519.pem" };
	static const char priv[] = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n"
	    "-----END PRIVATE KEY-----\n";
	static const char badpem[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
	struct attest_ek_keys k;
	char why[ATTEST_WHY_LEN];
	int rc;

	rc = load_set(&k, two, 2, why, sizeof(why));
	CHECK(rc == VTPM_E_FORMAT && strstr(why, "two different RSA") != NULL,
	    "two RSA keys: rc %d why %s", rc, why);
	rc = load_set(&k, ed, 1, why, sizeof(why));
	CHECK(rc == VTPM_E_FORMAT && strstr(why, "neither RSA nor EC") != NULL,
	    "Ed25519: rc %d why %s", rc, why);
	memset(&k, 0, sizeof(k));
	rc = attest_ek_load((const uint8_t *)priv, sizeof(priv) - 1, &k, why, sizeof(why));
	CHECK(rc == VTPM_E_FORMAT && strstr(why, "PRIVATE KEY") != NULL,
	    "a private key block: rc %d why %s", rc, why);
	rc = attest_ek_load((const uint8_t *)badpem, sizeof(badpem) - 1, &k, why, sizeof(why));
	CHECK(rc == VTPM_E_FORMAT, "a PUBLIC KEY block of junk: rc %d", rc);
	rc = attest_ek_load((const uint8_t *)"hello", 5, &k, why, sizeof(why));
	CHECK(rc == VTPM_E_FORMAT, "junk: rc %d", rc);
	rc = attest_ek_load((const uint8_t *)"", 0, &k, why, sizeof(why));
	CHECK(rc == VTPM_E_FORMAT, "empty: rc %d", rc);
	rc = attest_ek_load((const uint8_t *)"-----BEGIN ", 11, &k, why, sizeof(why));
	CHECK(rc == VTPM_E_FORMAT, "a cut PEM header: rc %d", rc);
	CHECK(k.ek_rsa_len == 0 && k.ek_ecc_len == 0, "refused input left keys behind");
}

/* The TPMT_PUBLIC a TPM returns for the default template, with the key of pem. */
static size_t
tpmt_of(const char *pem, int ecc, uint8_t *out, size_t cap, uint8_t *spki, size_t *spki_len)
{
	uint8_t *buf, x[32], y[32], n[256], *sp = spki;
	size_t len, o;
	EVP_PKEY *pk;
	BIGNUM *bn = NULL;
	BIO *bio;
	struct wbuf w;

	buf = load(pem, &len);
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    (pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL)
		exit(1);
	BIO_free(bio);
	free(buf);
	*spki_len = (size_t)i2d_PUBKEY(pk, &sp);
	wbuf_init(&w, out, cap);
	wbuf_put_u16(&w, ecc ? 0x0023 : 0x0001);
	wbuf_put_u16(&w, 0x000B);
	wbuf_put_u32(&w, 0x000300B2);
	wbuf_put_u16(&w, 32);
	wbuf_put_bytes(&w, (const uint8_t[32]){ 0x83, 0x71 }, 32);
	wbuf_put_u16(&w, 0x0006);
	wbuf_put_u16(&w, 128);
	wbuf_put_u16(&w, 0x0043);
	wbuf_put_u16(&w, 0x0010);
	if (ecc) {
		if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &bn) ||
		    BN_bn2binpad(bn, x, 32) != 32)
			exit(1);
		BN_free(bn);
		bn = NULL;
		if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &bn) ||
		    BN_bn2binpad(bn, y, 32) != 32)
			exit(1);
		wbuf_put_u16(&w, 0x0003);
		wbuf_put_u16(&w, 0x0010);
		wbuf_put_u16(&w, 32);
		wbuf_put_bytes(&w, x, 32);
		wbuf_put_u16(&w, 32);
		wbuf_put_bytes(&w, y, 32);
	} else {
		if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &bn) ||
		    BN_bn2binpad(bn, n, 256) != 256)
			exit(1);
		wbuf_put_u16(&w, 2048);
		wbuf_put_u32(&w, 0);
		wbuf_put_u16(&w, 256);
		wbuf_put_bytes(&w, n, 256);
	}
	BN_free(bn);
	EVP_PKEY_free(pk);
	if (wbuf_end(&w, &o) != 0)
		exit(1);
	return o;
}

static void
test_tpmt(void)
{
	uint8_t t[512], want[ATTEST_EK_SPKI_MAX], got[ATTEST_EK_SPKI_MAX];
	size_t tl, wl, gl, i;
	int ecc, bad;

	for (ecc = 0; ecc < 2; ecc++) {
		tl = tpmt_of(ecc ? "ek-ecc.pem" : "ek-rsa.pem", ecc, t, sizeof(t), want, &wl);
		CHECK(attest_ek_spki_from_tpmt(t, tl, ecc, got, sizeof(got), &gl) == 0 &&
		    gl == wl && memcmp(got, want, wl) == 0,
		    "%s TPMT_PUBLIC: not the SPKI tpm2_createek gave", ecc ? "ECC" : "RSA");
		CHECK(attest_ek_spki_from_tpmt(t, tl, !ecc, got, sizeof(got), &gl) ==
		    VTPM_E_FORMAT, "%s TPMT_PUBLIC taken for the other kind", ecc ? "ECC" : "RSA");
		CHECK(attest_ek_spki_from_tpmt(t, tl, ecc, got, 10, &gl) == VTPM_E_TOOBIG,
		    "small output buffer");
		for (i = 0, bad = 0; i < tl; i++)
			if (attest_ek_spki_from_tpmt(t, i, ecc, got, sizeof(got), &gl) !=
			    VTPM_E_FORMAT)
				bad++;
		CHECK(bad == 0, "%d truncations of the %s TPMT_PUBLIC accepted", bad,
		    ecc ? "ECC" : "RSA");
		t[tl] = 0;
		CHECK(attest_ek_spki_from_tpmt(t, tl + 1, ecc, got, sizeof(got), &gl) ==
		    VTPM_E_FORMAT, "a trailing byte accepted");
	}
	/* RSA: other key sizes are not the default template's */
	tl = tpmt_of("ek-rsa.pem", 0, t, sizeof(t), want, &wl);
	/* keyBits at 50: type, nameAlg, attributes, policy, symmetric, scheme before it */
	t[50] = 0x04;	/* 0x0800 (2048) -> 0x0400 */
	CHECK(attest_ek_spki_from_tpmt(t, tl, 0, got, sizeof(got), &gl) == VTPM_E_FORMAT,
	    "a 1024-bit keyBits field accepted");
}

int
main(void)
{
	const char *v = getenv("VTPM_VECTORS");
	static char dir[512];

	if (v != NULL) {
		snprintf(dir, sizeof(dir), "%s/ekbind", v);
		vecdir = dir;
	}
	if (sodium_init() < 0)
		return 2;
	test_files();
	test_refusals();
	test_tpmt();
	printf("ekbind: %d passed, %d failed\n", npass, nfail);
	return nfail != 0;
}
