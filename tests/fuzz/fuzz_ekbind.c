/*
 * fuzz_ekbind.c: libFuzzer harness for the EK binding parsers: a verifier's
 * EKPUB file (attest_ek_load(): PEM blocks or DER certificates and keys) and
 * an EK's TPMT_PUBLIC as a TPM returns it (attest_ek_spki_from_tpmt()).
 * The first input byte picks the parser. Beyond "no crash": a refusal
 * always says why and leaves no key behind from a failed file; an accepted
 * key is a DER SubjectPublicKeyInfo within its bound.
 * Build: `make fuzz` (tests/fuzz/module.mk). Seeds: tests/vectors/ekbind.
 */
#include <stdlib.h>
#include <string.h>

#include "attest_int.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct attest_ek_keys k;
	uint8_t der[ATTEST_EK_SPKI_MAX], rd[ATTEST_REPORT_DATA_LEN];
	char why[ATTEST_WHY_LEN];
	size_t dlen = 0;
	int rc;

	if (size < 1)
		return 0;
	memset(&k, 0, sizeof(k));
	switch (data[0] % 3) {
	case 0:
		why[0] = '\0';
		rc = attest_ek_load(data + 1, size - 1, &k, why, sizeof(why));
		if (rc != 0 && why[0] == '\0')
			abort();
		if (k.ek_rsa_len > ATTEST_EK_SPKI_MAX || k.ek_ecc_len > ATTEST_EK_SPKI_MAX ||
		    (k.ek_rsa_len > 0 && k.ek_rsa[0] != 0x30) ||
		    (k.ek_ecc_len > 0 && k.ek_ecc[0] != 0x30))
			abort();
		if (rc == 0)
			attest_ek_bind_report_data(&k, rd);
		break;
	default:
		rc = attest_ek_spki_from_tpmt(data + 1, size - 1, data[0] % 3 == 2, der,
		    sizeof(der), &dlen);
		if (rc == 0 && (dlen == 0 || dlen > sizeof(der) || der[0] != 0x30))
			abort();
		break;
	}
	return 0;
}
