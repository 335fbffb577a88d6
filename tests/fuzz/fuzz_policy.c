/*
 * fuzz_policy.c: libFuzzer harness for the attestation policy parser
 * (attest_policy_parse()) and matcher (attest_policy_match()) against fixed
 * SNP and TDX claims. Beyond "no crash": a returned instance name is a valid
 * name ([A-Za-z0-9._-]{1,63}) and a refusal always says why.
 *
 * Build (from the repository root, after `make` generated build/gen/):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *     -Itransport -Iattestation $(pkg-config --cflags json-c) \
 *     tests/fuzz/fuzz_policy.c attestation/[a-z]*.c build/gen/attest_embedded.c \
 *     transport/cursor.c transport/vtpm_error.c \
 *     -lcrypto -ljson-c -lsodium -o fuzz_policy
 *   ./fuzz_policy tests/fuzz/corpus/policy/
 * Seeds: the examples of docs/POLICY.md.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "attest_int.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void
check_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 63)
		abort();
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			abort();
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct attest_policy *p;
	struct attest_claims c;
	char why[ATTEST_WHY_LEN], inst[64];
	int rc, ae, tee;

	if (attest_policy_parse("fuzz", data, size, &p, why, sizeof(why)) != 0) {
		if (p != NULL || why[0] == '\0')
			abort();
		return 0;
	}
	for (tee = ATTEST_TEE_SNP; tee <= ATTEST_TEE_TDX; tee++) {
		memset(&c, 0, sizeof(c));
		c.tee = (uint8_t)tee;
		memset(c.measurement, 0x11, sizeof(c.measurement));
		memset(c.host_data, 0x22, sizeof(c.host_data));
		c.signer = tee == ATTEST_TEE_SNP ? ATTEST_SIGNER_VCEK : ATTEST_SIGNER_PCK;
		c.snp.reported_tcb.snp = 8;
		why[0] = '\0';
		rc = attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
		if (rc == 0)
			check_name(inst);
		else if (why[0] == '\0')
			abort();
	}
	attest_policy_free(p);
	return 0;
}
