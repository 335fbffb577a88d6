/*
 * fuzz_cert_table.c: libFuzzer harness for the GHCB certificate table
 * parser (attest_cert_table_parse()) and the certificate loaders it feeds
 * (x509_from_bytes(), x509_bundle_from_bytes()). Beyond "no crash": every
 * entry the parser returns lies inside the input.
 *
 * Build (from the repository root, after `make` generated build/gen/):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *     -Itransport -Iattestation $(pkg-config --cflags json-c) \
 *     tests/fuzz/fuzz_cert_table.c attestation/[a-z]*.c build/gen/attest_embedded.c \
 *     transport/cursor.c transport/vtpm_error.c \
 *     -lcrypto -ljson-c -lsodium -o fuzz_cert_table
 *   ./fuzz_cert_table tests/fuzz/corpus/cert_table/
 * Seeds: the sim tables (VCEK, ASK, ARK), an empty table, a table with an
 * unknown GUID.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "attest_int.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void
inside(const uint8_t *p, size_t n, const unsigned char *data, size_t size)
{
	if (p == NULL)
		return;
	if (p < data || n > size || (size_t)(p - data) > size - n)
		abort();
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct attest_cert_table t;
	char why[ATTEST_WHY_LEN];
	STACK_OF(X509) *sk;
	X509 *x;

	if (attest_cert_table_parse(data, size, &t, why, sizeof(why)) == 0) {
		inside(t.vcek, t.vcek_len, data, size);
		inside(t.vlek, t.vlek_len, data, size);
		inside(t.ask, t.ask_len, data, size);
		inside(t.ark, t.ark_len, data, size);
		if (t.vcek != NULL && (x = x509_from_bytes(t.vcek, t.vcek_len)) != NULL)
			X509_free(x);
		if (t.ask != NULL && (sk = x509_bundle_from_bytes(t.ask, t.ask_len)) != NULL)
			sk_X509_pop_free(sk, X509_free);
	}
	if ((sk = x509_bundle_from_bytes(data, size)) != NULL)
		sk_X509_pop_free(sk, X509_free);
	return 0;
}
