/*
 * fuzz_kbs.c: libFuzzer harness for the parsers of what a key broker sends
 * (storage/jose.c, storage/keyprov_kbs.c): jose_jwe_decrypt() (the resource
 * JWE, decrypted with a fixed public test key, d = 0x11..11, the kbs-rcar
 * vector's), keyprov_kbs_parse_resource() (the released root key) and, for
 * inputs that json-c parses, jose_jcs(). Beyond "no crash" it checks their
 * promises: the output is zeroed on failure; a resource that parses gives a
 * read-only key of a valid version; JCS output parses back to an equal value
 * and is a fixed point. It also feeds the Trustee evidence writers
 * (storage/kbs_evidence.c): any 1184 bytes as an SNP report, with the rest
 * as a certificate, and any bytes as a TDX quote, must give JSON that parses.
 *
 * Seeds: tests/fuzz/corpus/kbs/ (the vector's JWE, resource forms, and
 * snp-report-trustee = tests/vectors/snp-trustee/test-report.bin).
 * Build with `make fuzz` (clang) or, for replay, as part of `make check`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "jose.h"
#include "kbs_evidence.h"
#include "keyprov.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct jose_tee_key *fz_key;
static uint8_t *fz_out;		/* guarded, like the provider's */
#define FZ_CAP	4096

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t d[32];

	log_init("fuzz_kbs", LOG_LVL_ERR);
	if (sodium_init() < 0)
		abort();
	memset(d, 0x11, sizeof(d));	/* public test key of the kbs-rcar vector */
	if (jose_tee_key_from_ec_d(d, &fz_key) != 0 ||
	    (fz_out = sodium_malloc(FZ_CAP)) == NULL)
		abort();
	return 0;
}

static void
fz_jwe(const uint8_t *data, size_t size)
{
	char why[256];
	size_t n = 1, i;
	int rc;

	memset(fz_out, 0xa5, FZ_CAP);
	rc = jose_jwe_decrypt(fz_key, (const char *)data, size, fz_out, FZ_CAP, &n, why,
	    sizeof(why));
	if (rc != 0) {
		if (n != 0 || why[0] == '\0')
			abort();
		for (i = 0; i < FZ_CAP; i++)
			if (fz_out[i] != 0)
				abort();
	} else if (n > FZ_CAP) {
		abort();
	}
}

static void
fz_resource(const uint8_t *data, size_t size)
{
	struct seal_kek *k = NULL;
	char why[256];
	int rc;

	rc = keyprov_kbs_parse_resource(data, size, 0, &k, why, sizeof(why));
	if ((rc == 0) != (k != NULL))
		abort();
	if (k != NULL && k->version == 0)
		abort();
	seal_kek_free(k);
	rc = keyprov_kbs_parse_resource(data, size, 7, &k, why, sizeof(why));
	if (k != NULL && k->version != 7)
		abort();
	seal_kek_free(k);
}

static void
fz_jcs(const uint8_t *data, size_t size)
{
	json_tokener *tok;
	json_object *o, *back;
	char *c1 = NULL, *c2 = NULL;
	size_t l1, l2;

	if (size > 65536 || (tok = json_tokener_new_ex(16)) == NULL)
		return;
	o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	json_tokener_free(tok);
	if (o == NULL)
		return;
	if (jose_jcs(o, &c1, &l1) == 0) {
		if ((back = json_tokener_parse(c1)) == NULL)
			abort();
		if (jose_jcs(back, &c2, &l2) != 0 || l1 != l2 || memcmp(c1, c2, l1) != 0)
			abort();
		json_object_put(back);
	}
	free(c1);
	free(c2);
	json_object_put(o);
}

static void
fz_evidence(const uint8_t *data, size_t size)
{
	static char out[KEYPROV_EVIDENCE_MAX];
	struct kbs_snp_cert c = { "VCEK", NULL, 0 };
	json_object *o;
	size_t n;

	if (size >= KBS_SNP_REPORT_LEN) {
		c.der = data + KBS_SNP_REPORT_LEN;
		c.len = size - KBS_SNP_REPORT_LEN;
		if (kbs_evidence_snp_json(data, KBS_SNP_REPORT_LEN, &c, c.len > 0, out,
		    sizeof(out), &n) == 0) {
			if ((o = json_tokener_parse(out)) == NULL || n != strlen(out))
				abort();
			json_object_put(o);
		}
	}
	if (size > 0 && size < 65536 &&
	    kbs_evidence_tdx_json(data, size, NULL, 0, out, sizeof(out), &n) == 0) {
		if ((o = json_tokener_parse(out)) == NULL)
			abort();
		json_object_put(o);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_key == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	fz_jwe(data, size);
	fz_resource(data, size);
	fz_jcs(data, size);
	fz_evidence(data, size);
	return 0;
}
