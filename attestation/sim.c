/*
 * sim.c: the `sim` platform: real-format SEV-SNP attestation reports signed
 * with the published TEST VCEK (attestation/testchain), and the certificate
 * table that goes with them. Trusts only its caller's parameters; what it
 * makes proves nothing, and verifiers refuse it unless told otherwise.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <sodium.h>

#include "attest_int.h"
#include "cursor.h"

/*
 * What gen-sim-chain.sh put into the test VCEKs; the unit tests check that
 * reports made from these values verify against the embedded certificates.
 */
#define SIM_CHIP_LABEL		"vtpmd TEST chip"
#define SIM_CHIP_LABEL_TURIN	"vtpmd TEST chip turin"
static const uint8_t sim_tcb_legacy[8] = { 9, 0, 0, 0, 0, 0, 23, 212 };	/* bl tee . . . . snp ucode */
static const uint8_t sim_tcb_turin[8] = { 1, 2, 3, 4, 0, 0, 0, 90 };	/* fmc bl tee snp . . . ucode */

void
attest_sim_params_init(struct attest_sim_params *sp)
{
	memset(sp, 0, sizeof(*sp));
	sp->sp_version = 3;
	sp->sp_policy = 0x30000;	/* SMT allowed, reserved bit 17 */
	memset(sp->sp_report_id_ma, 0xFF, sizeof(sp->sp_report_id_ma));
}

/*
 * The published TEST keys and certificate tables, decoded once per process
 * (decoding a PEM key costs more than the signature made with it). They are
 * compiled-in constants, so nothing can change under the cache.
 */
static pthread_mutex_t sim_mu = PTHREAD_MUTEX_INITIALIZER;
static EVP_PKEY *sim_keys[2];
static uint8_t *sim_tables[2];
static size_t sim_table_len[2];

/* The test VCEK's private key (a new reference: EVP_PKEY_free it), or NULL. */
static EVP_PKEY *
sim_key(int turin)
{
	const char *pem;
	EVP_PKEY *k = NULL;
	BIO *bio;

	pthread_mutex_lock(&sim_mu);
	if (sim_keys[turin] == NULL) {
		pem = attest_embedded_get(turin ? "testchain/vcek-turin.key" :
		    "testchain/vcek.key");
		if (pem != NULL && (bio = BIO_new_mem_buf(pem, (int)strlen(pem))) != NULL) {
			sim_keys[turin] = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
			BIO_free(bio);
		}
		ERR_clear_error();
	}
	if (sim_keys[turin] != NULL && EVP_PKEY_up_ref(sim_keys[turin]) == 1)
		k = sim_keys[turin];
	pthread_mutex_unlock(&sim_mu);
	return k;
}

/* Signs the first 0x2A0 bytes; writes R and S little-endian, 72 bytes each. */
static int
sim_sign(int turin, uint8_t *report)
{
	uint8_t digest[48], der[128];
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	EVP_PKEY_CTX *ctx = NULL;
	ECDSA_SIG *sig = NULL;
	EVP_PKEY *key;
	unsigned int dlen = 0;
	size_t slen = sizeof(der);
	int rc = VTPM_E_CRYPTO;

	if ((key = sim_key(turin != 0)) == NULL)
		return VTPM_E_CRYPTO;
	if (EVP_Digest(report, ATTEST_SNP_SIGNED_LEN, digest, &dlen, EVP_sha384(), NULL) != 1 ||
	    (ctx = EVP_PKEY_CTX_new(key, NULL)) == NULL || EVP_PKEY_sign_init(ctx) != 1 ||
	    EVP_PKEY_sign(ctx, der, &slen, digest, dlen) != 1 ||
	    (sig = d2i_ECDSA_SIG(NULL, &p, (long)slen)) == NULL)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2lebinpad(r, report + 0x2A0, 72) != 72 ||
	    BN_bn2lebinpad(s, report + 0x2E8, 72) != 72)
		goto out;
	rc = 0;
out:
	ECDSA_SIG_free(sig);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return rc;
}

int
attest_sim_report(const struct attest_sim_params *sp,
    const uint8_t rd[ATTEST_REPORT_DATA_LEN], uint8_t report[ATTEST_SNP_REPORT_LEN])
{
	uint8_t chip[64] = { 0 }, zero[200] = { 0 };
	const uint8_t *tcb = sp->sp_turin ? sim_tcb_turin : sim_tcb_legacy;
	struct wbuf w;
	size_t n;
	int rc;

	if (sp->sp_version < 2 || sp->sp_version > 5 || sp->sp_vmpl > 3)
		return VTPM_E_INVAL;
	if (sp->sp_turin) {
		uint8_t h[64];

		crypto_hash_sha512(h, (const uint8_t *)SIM_CHIP_LABEL_TURIN,
		    strlen(SIM_CHIP_LABEL_TURIN));
		memcpy(chip, h, 8);
	} else {
		crypto_hash_sha512(chip, (const uint8_t *)SIM_CHIP_LABEL, strlen(SIM_CHIP_LABEL));
	}
	wbuf_init(&w, report, ATTEST_SNP_REPORT_LEN);
	wbuf_put_u32_le(&w, sp->sp_version);
	wbuf_put_u32_le(&w, sp->sp_guest_svn);
	wbuf_put_u64_le(&w, sp->sp_policy);
	wbuf_put_bytes(&w, sp->sp_family_id, 16);
	wbuf_put_bytes(&w, sp->sp_image_id, 16);
	wbuf_put_u32_le(&w, sp->sp_vmpl);
	wbuf_put_u32_le(&w, 1);				/* ECDSA P-384 SHA-384 */
	wbuf_put_bytes(&w, tcb, 8);			/* CURRENT_TCB */
	wbuf_put_u64_le(&w, 0x3);			/* PLATFORM_INFO: SMT_EN, TSME_EN */
	wbuf_put_u32_le(&w, 0);				/* KEY_INFO: signed by the VCEK */
	wbuf_put_u32_le(&w, 0);
	wbuf_put_bytes(&w, rd, ATTEST_REPORT_DATA_LEN);
	wbuf_put_bytes(&w, sp->sp_measurement, 48);
	wbuf_put_bytes(&w, sp->sp_host_data, 32);
	wbuf_put_bytes(&w, sp->sp_id_key_digest, 48);
	wbuf_put_bytes(&w, zero, 48);			/* AUTHOR_KEY_DIGEST */
	wbuf_put_bytes(&w, sp->sp_report_id, 32);
	wbuf_put_bytes(&w, sp->sp_report_id_ma, 32);
	wbuf_put_bytes(&w, tcb, 8);			/* REPORTED_TCB */
	if (sp->sp_version >= 3) {
		wbuf_put_u8(&w, sp->sp_turin ? 0x1A : 0x19);	/* CPUID family */
		wbuf_put_u8(&w, sp->sp_turin ? 0x02 : 0x11);	/* model: Turin / Genoa */
		wbuf_put_u8(&w, 0x01);
		wbuf_put_bytes(&w, zero, 21);
	} else {
		wbuf_put_bytes(&w, zero, 24);
	}
	wbuf_put_bytes(&w, chip, 64);
	wbuf_put_bytes(&w, tcb, 8);			/* COMMITTED_TCB */
	wbuf_put_bytes(&w, (const uint8_t[]){ 40, 55, 1, 0, 40, 55, 1, 0 }, 8); /* builds 1.55.40 */
	wbuf_put_bytes(&w, tcb, 8);			/* LAUNCH_TCB */
	wbuf_put_bytes(&w, zero, 168);			/* v5 mitigation vectors are 0 */
	wbuf_put_bytes(&w, zero, 144);			/* signature, filled below */
	wbuf_put_bytes(&w, zero, 168);
	wbuf_put_bytes(&w, zero, 200);
	if ((rc = wbuf_end(&w, &n)) != 0 || n != ATTEST_SNP_REPORT_LEN)
		return rc != 0 ? rc : VTPM_E_CRYPTO;
	return sim_sign(sp->sp_turin, report);
}

static int
pem_to_der(const char *name, uint8_t *out, size_t cap, size_t *len)
{
	X509 *x = x509_from_embedded(name);
	unsigned char *p = out;
	int n;

	if (x == NULL)
		return VTPM_E_CRYPTO;
	n = i2d_X509(x, NULL);
	if (n <= 0 || (size_t)n > cap) {
		X509_free(x);
		return VTPM_E_TOOBIG;
	}
	n = i2d_X509(x, &p);
	X509_free(x);
	if (n <= 0)
		return VTPM_E_CRYPTO;
	*len = (size_t)n;
	return 0;
}

static int
sim_cert_table_build(int turin, uint8_t *out, size_t cap, size_t *len)
{
	uint8_t vcek[4096], ask[4096], ark[4096];
	struct snp_table_entry e[3];
	size_t lv, ls, lr;
	int rc;

	if ((rc = pem_to_der(turin ? "testchain/vcek-turin.pem" : "testchain/vcek.pem",
	    vcek, sizeof(vcek), &lv)) != 0 ||
	    (rc = pem_to_der("testchain/ask.pem", ask, sizeof(ask), &ls)) != 0 ||
	    (rc = pem_to_der("testchain/ark.pem", ark, sizeof(ark), &lr)) != 0)
		return rc;
	e[0] = (struct snp_table_entry){ snp_guid_vcek, vcek, lv };
	e[1] = (struct snp_table_entry){ snp_guid_ask, ask, ls };
	e[2] = (struct snp_table_entry){ snp_guid_ark, ark, lr };
	return snp_cert_table_build(e, 3, out, cap, len);
}

int
attest_sim_cert_table(int turin, uint8_t *out, size_t cap, size_t *len)
{
	uint8_t buf[3 * 4096 + 256];
	size_t n;
	int t = turin != 0, rc = 0;

	pthread_mutex_lock(&sim_mu);
	if (sim_tables[t] == NULL) {
		if ((rc = sim_cert_table_build(t, buf, sizeof(buf), &n)) == 0) {
			if ((sim_tables[t] = malloc(n)) == NULL) {
				rc = VTPM_E_NOMEM;
			} else {
				memcpy(sim_tables[t], buf, n);
				sim_table_len[t] = n;
			}
		}
	}
	if (rc == 0 && sim_table_len[t] > cap)
		rc = VTPM_E_TOOBIG;
	if (rc == 0) {
		memcpy(out, sim_tables[t], sim_table_len[t]);
		*len = sim_table_len[t];
	}
	pthread_mutex_unlock(&sim_mu);
	return rc;
}
