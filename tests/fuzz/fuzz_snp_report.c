/*
 * fuzz_snp_report.c: libFuzzer harness for the SEV-SNP side of attestation/:
 * the evidence envelope (attest_evidence_verify()), the report parser
 * (snp_report_parse()) and the whole verifier (attest_snp_verify(): the
 * first 1184 bytes as the report, the rest as its certificate table). The
 * test ARK is trusted so that inputs built from the sim chain get past the
 * chain to the hwID, SPL and signature checks. Beyond "no crash": claims
 * are all zero whenever verification fails.
 *
 * Build (from the repository root, after `make` generated build/gen/):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *     -Itransport -Iattestation $(pkg-config --cflags json-c) \
 *     tests/fuzz/fuzz_snp_report.c attestation/[a-z]*.c build/gen/attest_embedded.c \
 *     transport/cursor.c transport/vtpm_error.c \
 *     -lcrypto -ljson-c -lsodium -o fuzz_snp_report
 *   ./fuzz_snp_report tests/fuzz/corpus/snp_report/
 * or link the build objects: tests/fuzz/fuzz_snp_report.c build/libattest.a
 *   build/libtransport.a -lcrypto -ljson-c -lsodium.
 *
 * Seeds: built with -DFUZZ_MAKE_SEEDS (without -fsanitize=fuzzer) this file
 * is a program that writes sim envelopes and reports into a directory:
 *   cc -std=c11 -D_GNU_SOURCE -DFUZZ_MAKE_SEEDS -Itransport -Iattestation \
 *     tests/fuzz/fuzz_snp_report.c build/libattest.a build/libtransport.a \
 *     -lcrypto -ljson-c -lsodium -o make_seeds && ./make_seeds tests/fuzz/corpus/snp_report
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "attest_int.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void
must_be_zero(const struct attest_claims *c)
{
	static const struct attest_claims zero;

	if (memcmp(c, &zero, sizeof(zero)) != 0)
		abort();	/* a failed verification leaked claims */
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct attest_verify_cfg cfg;
	struct attest_claims c;
	char why[ATTEST_WHY_LEN];
	uint8_t rd[64] = { 0 };
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	cfg.av_allow_sim = 1;
	cfg.av_no_time_check = 1;
	rc = attest_evidence_verify(&cfg, data, size, rd, &c, why, sizeof(why));
	if (rc != 0)
		must_be_zero(&c);
	rc = snp_report_parse(data, size < ATTEST_SNP_REPORT_LEN ? size : ATTEST_SNP_REPORT_LEN,
	    &c, why, sizeof(why));
	(void)rc;	/* any result is fine; it must not crash */
	if (size >= ATTEST_SNP_REPORT_LEN) {
		rc = attest_snp_verify(&cfg, data, ATTEST_SNP_REPORT_LEN, data + ATTEST_SNP_REPORT_LEN,
		    size - ATTEST_SNP_REPORT_LEN, &c, why, sizeof(why));
		if (rc != 0)
			must_be_zero(&c);
	}
	return 0;
}

#ifdef FUZZ_MAKE_SEEDS
static void
put(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(b, 1, n, f) != n) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

int
main(int argc, char **argv)
{
	struct attest_sim_params sp;
	struct attest_provider *p;
	uint8_t rd[64] = { 0 }, ev[ATTEST_MAX_EVIDENCE], buf[ATTEST_SNP_REPORT_LEN + 8192];
	size_t n, tl;

	if (argc != 2 || sodium_init() < 0)
		return 2;
	attest_sim_params_init(&sp);
	memset(sp.sp_measurement, 0x11, 48);
	if (attest_provider_sim_params(&sp, &p) != 0 ||
	    attest_evidence_get(p, rd, ev, sizeof(ev), &n) != 0)
		return 1;
	put(argv[1], "sim-envelope-v3", ev, n);
	attest_provider_free(p);
	sp.sp_turin = 1;
	sp.sp_version = 2;
	if (attest_sim_report(&sp, rd, buf) != 0 ||
	    attest_sim_cert_table(1, buf + ATTEST_SNP_REPORT_LEN, sizeof(buf) - ATTEST_SNP_REPORT_LEN,
	    &tl) != 0)
		return 1;
	put(argv[1], "sim-report-turin-v2+table", buf, ATTEST_SNP_REPORT_LEN + tl);
	sp.sp_turin = 0;
	sp.sp_version = 5;
	if (attest_sim_report(&sp, rd, buf) != 0)
		return 1;
	put(argv[1], "sim-report-v5", buf, ATTEST_SNP_REPORT_LEN);
	return 0;
}
#endif
