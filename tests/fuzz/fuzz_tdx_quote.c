/*
 * fuzz_tdx_quote.c: libFuzzer harness for the TDX side of attestation/: the
 * quote parser (tdx_quote_parse()), the whole verifier (attest_tdx_verify(),
 * no collateral) and the byte-exact JSON member finder used for signed
 * collateral (json_raw_member()). Beyond "no crash": a parsed quote's
 * pointers lie inside the input, failed verification leaves zero claims.
 *
 * Build (from the repository root, after `make` generated build/gen/):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *     -Itransport -Iattestation $(pkg-config --cflags json-c) \
 *     tests/fuzz/fuzz_tdx_quote.c attestation/[a-z]*.c build/gen/attest_embedded.c \
 *     transport/cursor.c transport/vtpm_error.c \
 *     -lcrypto -ljson-c -lsodium -o fuzz_tdx_quote
 *   ./fuzz_tdx_quote tests/fuzz/corpus/tdx_quote/
 * Seeds: the two real quotes of tests/vectors/tdx-trustee and the two
 * collateral JSON files.
 */
#include <stdlib.h>
#include <string.h>

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
	static const struct attest_claims zero;
	struct attest_verify_cfg cfg;
	struct attest_claims c;
	struct tdx_quote q;
	char why[ATTEST_WHY_LEN];
	const uint8_t *v;
	size_t vl;

	if (tdx_quote_parse(data, size, &q, why, sizeof(why)) == 0) {
		inside(q.body, q.body_len, data, size);
		inside(q.sig, 64, data, size);
		inside(q.ak, 64, data, size);
		inside(q.qe_report, TDX_QE_REPORT_LEN, data, size);
		inside(q.qe_sig, 64, data, size);
		inside(q.auth, q.auth_len, data, size);
		inside(q.pck_chain, q.pck_chain_len, data, size);
		if (q.signed_len > size)
			abort();
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.av_allow_debug = 1;
	cfg.av_no_time_check = 1;
	if (attest_tdx_verify(&cfg, data, size, &c, why, sizeof(why)) != 0 &&
	    memcmp(&c, &zero, sizeof(c)) != 0)
		abort();
	if (json_raw_member(data, size, "tcbInfo", &v, &vl) == 0)
		inside(v, vl, data, size);
	if (json_raw_member(data, size, "signature", &v, &vl) == 0)
		inside(v, vl, data, size);
	return 0;
}
