/*
 * test_attest.c: unit tests of attestation/: every real SEV-SNP report and
 * TDX quote in tests/vectors verifies; each negative case fails with its
 * own reason; the sim platform, the certificate table, the configfs-tsm
 * provider (against a fake tree), the envelope binding and the policy.
 * Vectors are found under $VTPM_VECTORS (default tests/vectors).
 * Ends with "attest: N passed, M failed".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "attest_int.h"

static int npass, nfail;
static const char *vecdir = "tests/vectors";

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

/* rc == want and why contains text. */
#define CHECK_ERR(rc, want, why, text, name) \
	CHECK((rc) == (want) && strstr((why), (text)) != NULL, \
	    "%s: rc %d (want %d), why '%s' (want '%s')", name, rc, want, why, text)

static uint8_t *
load(const char *rel, size_t *len)
{
	char path[512];
	uint8_t *buf;

	snprintf(path, sizeof(path), "%s/%s", vecdir, rel);
	if (attest_read_file(path, 1 << 20, &buf, len) != 0) {
		printf("cannot read %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return buf;
}

static uint8_t *
load_hex(const char *rel, size_t *len)
{
	size_t n, i, o = 0;
	uint8_t *txt = load(rel, &n), *bin = malloc(n / 2 + 1);
	char b[3] = { 0 };

	for (i = 0; i + 1 < n; i += 2) {
		if (txt[i] == '\n' || txt[i] == '\r')
			break;
		b[0] = (char)txt[i];
		b[1] = (char)txt[i + 1];
		bin[o++] = (uint8_t)strtoul(b, NULL, 16);
	}
	free(txt);
	*len = o;
	return bin;
}

static void
cfg_init(struct attest_verify_cfg *c)
{
	memset(c, 0, sizeof(*c));
}

static int64_t
utc(int y, int mo, int d)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	return (int64_t)timegm(&tm);
}

/* ---- SNP: real vectors ------------------------------------------------------ */

static void
test_snp_real(void)
{
	struct attest_verify_cfg cfg;
	struct attest_claims c;
	char why[ATTEST_WHY_LEN];
	uint8_t *rep, *vcek, *chain, *vrep, *vvcek, *vlek, *vlekrep, *vlekchain;
	size_t rl, vl, cl, vrl, vvl, kl, krl, kcl;
	int rc;

	rep = load("snp-trustee/test-report.bin", &rl);
	vcek = load("snp-trustee/test-vcek.der", &vl);
	chain = load("snp-virtee-sev/cert_chain_milan", &cl);

	/* Trustee v2 Milan report with its VCEK, the chain built in. */
	cfg_init(&cfg);
	cfg.av_leaf = vcek;
	cfg.av_leaf_len = vl;
	rc = attest_snp_verify(&cfg, rep, rl, NULL, 0, &c, why, sizeof(why));
	CHECK(rc == 0, "trustee report verifies: %s", why);
	CHECK(c.tee == ATTEST_TEE_SNP && c.snp.version == 2 && c.signer == ATTEST_SIGNER_VCEK,
	    "trustee claims: tee %d version %u signer %d", c.tee, c.snp.version, c.signer);
	CHECK(c.snp.reported_tcb.bootloader == 3 && c.snp.reported_tcb.tee == 0 &&
	    c.snp.reported_tcb.snp == 8 && c.snp.reported_tcb.microcode == 0x73,
	    "trustee reported TCB decoded (legacy layout)");
	CHECK(!(c.flags & (ATTEST_CF_TEST_ROOT | ATTEST_CF_TURIN_LAYOUT | ATTEST_CF_BOUND)),
	    "trustee flags 0x%x", c.flags);
	CHECK(strcmp(c.snp.product, "Milan-B0") == 0, "product %s", c.snp.product);
	CHECK(memcmp(c.launch_id, c.snp.report_id, 32) == 0, "launch id is REPORT_ID");

	/* The same with an explicit chain (ASK, ARK PEM). */
	cfg.av_chain = chain;
	cfg.av_chain_len = cl;
	rc = attest_snp_verify(&cfg, rep, rl, NULL, 0, &c, why, sizeof(why));
	CHECK(rc == 0, "trustee report verifies with --chain: %s", why);

	/* virtee v2 Milan report (hex text) with its VCEK. */
	vrep = load_hex("snp-virtee-sev/report_milan.hex", &vrl);
	vvcek = load("snp-virtee-sev/vcek_milan.der", &vvl);
	cfg_init(&cfg);
	cfg.av_leaf = vvcek;
	cfg.av_leaf_len = vvl;
	cfg.av_chain = chain;
	cfg.av_chain_len = cl;
	rc = attest_snp_verify(&cfg, vrep, vrl, NULL, 0, &c, why, sizeof(why));
	CHECK(rc == 0 && vrl == ATTEST_SNP_REPORT_LEN, "virtee report verifies: %s", why);

	/* VLEK (AWS) v3 report, VMPL 1: expired certificate. */
	vlek = load("snp-trustee/test-vlek.der", &kl);
	vlekrep = load("snp-trustee/test-vlek-report.bin", &krl);
	vlekchain = load("snp-amd-roots/gosevguest_ask_ark_milan_vlek.pem", &kcl);
	cfg_init(&cfg);
	cfg.av_leaf = vlek;
	cfg.av_leaf_len = kl;
	cfg.av_vmpl_mask = 0xF;
	rc = attest_snp_verify(&cfg, vlekrep, krl, NULL, 0, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "VLEK 'SEV-VLEK' expired on 2025-12-10", "expired VLEK");
	cfg.av_no_time_check = 1;
	rc = attest_snp_verify(&cfg, vlekrep, krl, NULL, 0, &c, why, sizeof(why));
	CHECK(rc == 0 && c.signer == ATTEST_SIGNER_VLEK && c.snp.version == 3 &&
	    (c.flags & ATTEST_CF_NO_TIME_CHECK), "VLEK report verifies without the time check: %s",
	    rc ? why : "");
	cfg.av_no_time_check = 0;
	cfg.av_now = utc(2025, 6, 1);
	cfg.av_chain = vlekchain;
	cfg.av_chain_len = kcl;
	rc = attest_snp_verify(&cfg, vlekrep, krl, NULL, 0, &c, why, sizeof(why));
	CHECK(rc == 0, "VLEK report verifies at 2025-06-01 with the ASVK chain: %s", why);
	cfg.av_vmpl_mask = 0;
	rc = attest_snp_verify(&cfg, vlekrep, krl, NULL, 0, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_POLICY, why, "VMPL 1 is not allowed", "VLEK report at VMPL 1");

	/* The certificate table path: VCEK, ASK, ARK from the evidence. */
	{
		X509 *ask, *ark;
		STACK_OF(X509) *sk = x509_bundle_from_bytes(chain, cl);
		uint8_t askd[4096], arkd[4096], tab[16384], *p;
		size_t al, kl2, tl;
		struct snp_table_entry e[3];

		ask = sk_X509_value(sk, 0);
		ark = sk_X509_value(sk, 1);
		p = askd;
		al = (size_t)i2d_X509(ask, &p);
		p = arkd;
		kl2 = (size_t)i2d_X509(ark, &p);
		e[0] = (struct snp_table_entry){ snp_guid_vcek, vcek, vl };
		e[1] = (struct snp_table_entry){ snp_guid_ask, askd, al };
		e[2] = (struct snp_table_entry){ snp_guid_ark, arkd, kl2 };
		rc = snp_cert_table_build(e, 3, tab, sizeof(tab), &tl);
		CHECK(rc == 0, "table built");
		cfg_init(&cfg);
		rc = attest_snp_verify(&cfg, rep, rl, tab, tl, &c, why, sizeof(why));
		CHECK(rc == 0, "trustee report verifies from the certificate table: %s", why);
		/* Mixed-endian GUIDs are accepted too. */
		{
			uint8_t t;

			t = tab[0]; tab[0] = tab[3]; tab[3] = t;
			t = tab[1]; tab[1] = tab[2]; tab[2] = t;
			t = tab[4]; tab[4] = tab[5]; tab[5] = t;
			t = tab[6]; tab[6] = tab[7]; tab[7] = t;
		}
		rc = attest_snp_verify(&cfg, rep, rl, tab, tl, &c, why, sizeof(why));
		CHECK(rc == 0, "mixed-endian VCEK GUID accepted: %s", why);
		sk_X509_pop_free(sk, X509_free);
	}

	/* The offline cache: DIR/vcek/<chip>-<tcb>.der. */
	{
		char dir[] = "/tmp/vtpm-attest-cache.XXXXXX", path[512], chip[129], tcb[17];
		FILE *f;

		CHECK(mkdtemp(dir) != NULL, "mkdtemp");
		snprintf(path, sizeof(path), "%s/vcek", dir);
		mkdir(path, 0700);
		cfg_init(&cfg);
		cfg.av_cache_dir = dir;
		rc = attest_snp_verify(&cfg, rep, rl, NULL, 0, &c, why, sizeof(why));
		CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "no VCEK certificate: none given, none in the "
		    "evidence's certificate table, none in the cache", "empty cache");
		attest_hex_encode(rep + 0x1A0, 64, chip);
		attest_hex_encode(rep + 0x180, 8, tcb);
		snprintf(path, sizeof(path), "%s/vcek/%s-%s.der", dir, chip, tcb);
		f = fopen(path, "wb");
		fwrite(vcek, 1, vl, f);
		fclose(f);
		rc = attest_snp_verify(&cfg, rep, rl, NULL, 0, &c, why, sizeof(why));
		CHECK(rc == 0, "trustee report verifies from the cache: %s", why);
		unlink(path);
		snprintf(path, sizeof(path), "%s/vcek", dir);
		rmdir(path);
		rmdir(dir);
		cfg_init(&cfg);
		rc = attest_snp_verify(&cfg, rep, rl, NULL, 0, &c, why, sizeof(why));
		CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "and no cache directory", "no VCEK at all");
	}
	free(vrep);
	free(vvcek);
	free(vlek);
	free(vlekrep);
	free(vlekchain);
	free(rep);
	free(vcek);
	free(chain);
}

/* The real Turin VCEK passes chain, hwID (raw 8 bytes) and SPL (Turin layout). */
static void
test_snp_turin_vcek(void)
{
	struct attest_verify_cfg cfg;
	struct attest_claims c;
	char why[ATTEST_WHY_LEN];
	uint8_t *vcek, rep[ATTEST_SNP_REPORT_LEN];
	static const uint8_t hwid[8] = { 0x1E, 0x55, 0x0A, 0x8E, 0xE5, 0xCF, 0x9F, 0x4D };
	static const uint8_t tcb[8] = { 0, 0, 0, 0, 0, 0, 0, 9 };
	size_t vl;
	int rc, v;

	vcek = load("snp-virtee-sev/vcek_turin.der", &vl);
	for (v = 2; v <= 3; v++) {
		memset(rep, 0, sizeof(rep));
		rep[0] = (uint8_t)v;
		rep[0x0A] = 0x02;			/* POLICY bit 17 */
		rep[0x34] = 1;				/* ECDSA P-384 */
		memcpy(rep + 0x180, tcb, 8);		/* REPORTED_TCB */
		if (v == 3)
			rep[0x188] = 0x1A;		/* CPUID family: Turin */
		memcpy(rep + 0x1A0, hwid, 8);
		rep[0x2A0] = 1;				/* a signature that will not verify */
		rep[0x2E8] = 1;
		cfg_init(&cfg);
		cfg.av_leaf = vcek;
		cfg.av_leaf_len = vl;
		rc = attest_snp_verify(&cfg, rep, sizeof(rep), NULL, 0, &c, why, sizeof(why));
		CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "SNP report signature does not verify",
		    v == 2 ? "Turin VCEK, v2 heuristic: chain, hwID and SPLs pass" :
		    "Turin VCEK, v3 family 0x1A: chain, hwID and SPLs pass");
		rep[0x187] = 10;			/* microcode SPL off by one */
		rc = attest_snp_verify(&cfg, rep, sizeof(rep), NULL, 0, &c, why, sizeof(why));
		CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "VCEK ucodeSPL 9 does not match REPORTED_TCB "
		    "microcode 10", "Turin SPL mismatch");
	}
	free(vcek);
}

static void
test_snp_negative(void)
{
	struct attest_verify_cfg cfg;
	struct attest_claims c;
	char why[ATTEST_WHY_LEN];
	uint8_t *rep, *vcek, *other, *bad1, *bad2, *q, *copy;
	size_t rl, vl, ol, b1, b2, ql, i;
	int rc, sig_err = 0, field_err = 0, ok = 0;

	rep = load("snp-trustee/test-report.bin", &rl);
	vcek = load("snp-trustee/test-vcek.der", &vl);
	other = load("snp-virtee-sev/vcek_milan.der", &ol);
	bad1 = load("snp-trustee/test-vcek-invalid-legacy.der", &b1);
	bad2 = load("snp-trustee/test-vcek-invalid-new.der", &b2);
	cfg_init(&cfg);

	/* Another chip's (valid) VCEK. */
	cfg.av_leaf = other;
	cfg.av_leaf_len = ol;
	rc = attest_snp_verify(&cfg, rep, rl, NULL, 0, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "is another chip than the report's CHIP_ID",
	    "another chip's VCEK");
	/* The two invalid VCEKs (raw and OCTET STRING hwID): bad signatures. */
	cfg.av_leaf = bad1;
	cfg.av_leaf_len = b1;
	rc = attest_snp_verify(&cfg, rep, rl, NULL, 0, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "VCEK 'SEV-VCEK' signature does not verify with the "
	    "key of ASK 'SEV-Milan'", "invalid VCEK (legacy hwID)");
	cfg.av_leaf = bad2;
	cfg.av_leaf_len = b2;
	rc = attest_snp_verify(&cfg, rep, rl, NULL, 0, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "VCEK 'SEV-VCEK' signature does not verify with the "
	    "key of ASK 'SEV-Milan'", "invalid VCEK (OCTET STRING hwID)");

	/* A flipped byte anywhere in the signed range. */
	cfg.av_leaf = vcek;
	cfg.av_leaf_len = vl;
	copy = malloc(rl);
	for (i = 0; i < ATTEST_SNP_SIGNED_LEN; i++) {
		memcpy(copy, rep, rl);
		copy[i] ^= 0x01;
		rc = attest_snp_verify(&cfg, copy, rl, NULL, 0, &c, why, sizeof(why));
		if (rc == 0)
			ok++;
		else if (strstr(why, "SNP report signature does not verify") != NULL)
			sig_err++;
		else
			field_err++;
	}
	CHECK(ok == 0, "no flipped byte in 0x000-0x29F verifies (%d did)", ok);
	CHECK(sig_err > 500 && sig_err + field_err == ATTEST_SNP_SIGNED_LEN,
	    "flip sweep: %d signature errors, %d field errors", sig_err, field_err);
	/* Unsigned bytes after the signature do not matter; R/S padding does. */
	memcpy(copy, rep, rl);
	copy[ATTEST_SNP_REPORT_LEN - 1] ^= 0xFF;
	CHECK(attest_snp_verify(&cfg, copy, rl, NULL, 0, &c, why, sizeof(why)) == 0,
	    "reserved byte after the signature is ignored");
	memcpy(copy, rep, rl);
	copy[0x2A0 + 60] = 1;
	rc = attest_snp_verify(&cfg, copy, rl, NULL, 0, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "R or S is longer than 48 bytes", "R padding");
	memcpy(copy, rep, rl);
	copy[0] = 6;
	rc = attest_snp_verify(&cfg, copy, rl, NULL, 0, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "version 6 is not supported", "version 6");
	memcpy(copy, rep, rl);
	copy[0x34] = 2;
	rc = attest_snp_verify(&cfg, copy, rl, NULL, 0, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "signature algorithm 2", "sig algo");
	memcpy(copy, rep, rl);
	copy[0x48] = 7 << 2;
	rc = attest_snp_verify(&cfg, copy, rl, NULL, 0, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "unsigned (KEY_INFO SIGNING_KEY 7)", "unsigned");
	memcpy(copy, rep, rl);
	copy[0x48] = 1 << 2;	/* claims VLEK */
	rc = attest_snp_verify(&cfg, copy, rl, NULL, 0, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "signed by its VLEK (KEY_INFO) but the certificate",
	    "VLEK claimed, VCEK given");
	rc = attest_snp_verify(&cfg, rep, rl - 1, NULL, 0, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "has 1183 bytes, want 1184", "short report");

	/* A self-signed root that is not an AMD ARK (the Intel root from a quote). */
	q = load("tdx-trustee/tdx_quote_4.dat", &ql);
	{
		const char *pem = memmem(q, ql, "-----BEGIN", 10);
		STACK_OF(X509) *sk = x509_bundle_from_bytes((const uint8_t *)pem,
		    ql - (size_t)((const uint8_t *)pem - q));
		X509 *root = NULL;
		BIO *b = BIO_new(BIO_s_mem());
		char *data;
		long n;
		int k;

		for (k = 0; sk != NULL && k < sk_X509_num(sk); k++)
			if (x509_is_self_signed(sk_X509_value(sk, k)))
				root = sk_X509_value(sk, k);
		PEM_write_bio_X509(b, root);
		n = BIO_get_mem_data(b, &data);
		cfg.av_chain = (const uint8_t *)data;
		cfg.av_chain_len = (size_t)n;
		rc = attest_snp_verify(&cfg, rep, rl, NULL, 0, &c, why, sizeof(why));
		CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "ARK 'Intel SGX Root CA' from the given chain",
		    "unpinned root in the chain");
		CHECK(strstr(why, "is not a pinned AMD ARK") != NULL, "unpinned: %s", why);
		BIO_free(b);
		sk_X509_pop_free(sk, X509_free);
		cfg.av_chain = NULL;
	}
	free(q);
	free(copy);
	free(rep);
	free(vcek);
	free(other);
	free(bad1);
	free(bad2);
}

/* ---- the sim platform ------------------------------------------------------- */

static void
test_sim(void)
{
	struct attest_sim_params sp;
	struct attest_verify_cfg cfg;
	struct attest_claims c;
	struct attest_provider *p;
	uint8_t rd[64], rd2[64], rep[ATTEST_SNP_REPORT_LEN], tab[16384], ev[ATTEST_MAX_EVIDENCE];
	char why[ATTEST_WHY_LEN];
	size_t tl, el, i;
	int rc, v, turin, ok, sig;

	randombytes_buf(rd, sizeof(rd));
	randombytes_buf(rd2, sizeof(rd2));
	cfg_init(&cfg);
	cfg.av_allow_sim = 1;
	for (turin = 0; turin <= 1; turin++) {
		for (v = 2; v <= 5; v++) {
			attest_sim_params_init(&sp);
			sp.sp_version = (uint32_t)v;
			sp.sp_turin = turin;
			memset(sp.sp_measurement, 0x11, 48);
			memset(sp.sp_host_data, 0x22, 32);
			memset(sp.sp_report_id, 0x33, 32);
			rc = attest_sim_report(&sp, rd, rep);
			CHECK(rc == 0, "sim report v%d turin %d made", v, turin);
			rc = attest_sim_cert_table(turin, tab, sizeof(tab), &tl);
			CHECK(rc == 0, "sim table");
			rc = attest_snp_verify(&cfg, rep, sizeof(rep), tab, tl, &c, why, sizeof(why));
			CHECK(rc == 0, "sim report v%d turin %d verifies: %s", v, turin, why);
			CHECK(rc != 0 || ((c.flags & ATTEST_CF_TEST_ROOT) &&
			    !!(c.flags & ATTEST_CF_TURIN_LAYOUT) == turin &&
			    c.snp.reported_tcb.snp == (turin ? 4 : 23) &&
			    c.snp.reported_tcb.microcode == (turin ? 90 : 212) &&
			    memcmp(c.launch_id, sp.sp_report_id, 32) == 0 &&
			    memcmp(c.report_data, rd, 64) == 0),
			    "sim v%d turin %d claims (flags 0x%x)", v, turin, c.flags);
		}
	}

	/* Sweep the sim report too (the test chain). */
	attest_sim_params_init(&sp);
	rc = attest_sim_report(&sp, rd, rep);
	rc |= attest_sim_cert_table(0, tab, sizeof(tab), &tl);
	ok = sig = 0;
	for (i = 0; i < ATTEST_SNP_SIGNED_LEN; i++) {
		uint8_t copy[ATTEST_SNP_REPORT_LEN];

		memcpy(copy, rep, sizeof(copy));
		copy[i] ^= 0x80;
		if (attest_snp_verify(&cfg, copy, sizeof(copy), tab, tl, &c, why, sizeof(why)) == 0)
			ok++;
		else if (strstr(why, "signature does not verify"))
			sig++;
	}
	CHECK(rc == 0 && ok == 0 && sig > 500, "sim flip sweep: %d verified, %d signature errors",
	    ok, sig);

	/* The test ARK is refused unless configured. */
	cfg.av_allow_sim = 0;
	rc = attest_snp_verify(&cfg, rep, sizeof(rep), tab, tl, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_UNSUPPORTED, why, "the chain ends at the vtpmd TEST ARK",
	    "test ARK refused by default");
	rc = attest_snp_verify(&cfg, rep, sizeof(rep), NULL, 0, &c, why, sizeof(why));
	CHECK(rc != 0, "sim report without certificates and without trust is refused: %s", why);
	cfg.av_allow_sim = 1;

	/* DEBUG policy bit. */
	attest_sim_params_init(&sp);
	sp.sp_policy |= ATTEST_SNP_POLICY_DEBUG;
	rc = attest_sim_report(&sp, rd, rep);
	rc = attest_snp_verify(&cfg, rep, sizeof(rep), tab, tl, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_POLICY, why, "DEBUG set (bit 19)", "DEBUG policy bit");
	cfg.av_allow_debug = 1;
	rc = attest_snp_verify(&cfg, rep, sizeof(rep), tab, tl, &c, why, sizeof(why));
	CHECK(rc == 0 && c.debug == 1, "DEBUG allowed when configured: %s", why);
	cfg.av_allow_debug = 0;

	/* VMPL not 0. */
	attest_sim_params_init(&sp);
	sp.sp_vmpl = 2;
	rc = attest_sim_report(&sp, rd, rep);
	rc = attest_snp_verify(&cfg, rep, sizeof(rep), tab, tl, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_POLICY, why, "VMPL 2 is not allowed", "VMPL 2");
	cfg.av_vmpl_mask = 1 << 2;
	rc = attest_snp_verify(&cfg, rep, sizeof(rep), tab, tl, &c, why, sizeof(why));
	CHECK(rc == 0 && c.snp.vmpl == 2, "VMPL 2 allowed by mask: %s", why);
	cfg.av_vmpl_mask = 0;

	/* The provider and the envelope: binding to the session. */
	{
		uint8_t m[48], h[32], l[32];

		memset(m, 0xAA, sizeof(m));
		memset(h, 0xBB, sizeof(h));
		memset(l, 0xCC, sizeof(l));
		rc = attest_provider_sim_new(m, h, l, &p);
		CHECK(rc == 0 && attest_provider_tee(p) == ATTEST_TEE_SNP &&
		    strcmp(attest_provider_name(p), "sim") == 0, "sim provider");
		rc = attest_evidence_get(p, rd, ev, sizeof(ev), &el);
		CHECK(rc == 0 && el > ATTEST_SNP_REPORT_LEN + 16, "sim evidence (%zu bytes)", el);
		rc = attest_evidence_verify(&cfg, ev, el, rd, &c, why, sizeof(why));
		CHECK(rc == 0 && (c.flags & ATTEST_CF_BOUND) && memcmp(c.measurement, m, 48) == 0 &&
		    memcmp(c.host_data, h, 32) == 0 && memcmp(c.launch_id, l, 32) == 0,
		    "sim evidence verifies and binds: %s", why);
		rc = attest_evidence_verify(&cfg, ev, el, rd2, &c, why, sizeof(why));
		CHECK_ERR(rc, VTPM_E_BINDING, why, "report data does not match this session",
		    "REPORT_DATA not matching");
		{
			const uint8_t (*pins)[48] = (const uint8_t (*)[48])rd2;	/* 64 bytes, not m */

			cfg.av_measurements = pins;
			cfg.av_nmeasurements = 1;
			rc = attest_evidence_verify(&cfg, ev, el, rd, &c, why, sizeof(why));
			CHECK_ERR(rc, VTPM_E_POLICY, why, "is not pinned", "pinned measurement");
			cfg.av_measurements = (const uint8_t (*)[48])m;
			rc = attest_evidence_verify(&cfg, ev, el, rd, &c, why, sizeof(why));
			CHECK(rc == 0, "pinned measurement accepted: %s", why);
			cfg.av_nmeasurements = 0;
		}
		cfg.av_allow_sim = 0;
		rc = attest_evidence_verify(&cfg, ev, el, rd, &c, why, sizeof(why));
		CHECK_ERR(rc, VTPM_E_UNSUPPORTED, why, "TEST ARK", "envelope: test ARK not trusted");
		cfg.av_allow_sim = 1;
		ev[5] = 1;	/* the old simulated tee */
		rc = attest_evidence_verify(&cfg, ev, el, rd, &c, why, sizeof(why));
		CHECK_ERR(rc, VTPM_E_UNSUPPORTED, why, "tee type 1", "old tee 1 refused");
		ev[5] = ATTEST_TEE_SNP;
		rc = attest_evidence_verify(&cfg, ev, el - 1, rd, &c, why, sizeof(why));
		CHECK_ERR(rc, VTPM_E_FORMAT, why, "envelope is malformed", "truncated envelope");
		rc = attest_evidence_get(p, rd, ev, 100, &el);
		CHECK(rc == VTPM_E_TOOBIG, "evidence into a small buffer: %d", rc);
		attest_provider_free(p);
	}
}

/*
 * The caches (certcache.c): a certificate parsed or a signature checked once
 * is reused only for the very same bytes; changed bytes are checked afresh.
 */
static void
test_cert_caches(void)
{
	struct attest_sim_params sp;
	struct attest_verify_cfg cfg;
	struct attest_cert_table t;
	struct attest_claims c;
	uint8_t rd[64], rep[ATTEST_SNP_REPORT_LEN], tab[16384], der[4200];
	X509 *x[40], *y;
	char why[ATTEST_WHY_LEN];
	size_t tl, off, vl, i;
	int rc, same = 1, alive = 1;

	randombytes_buf(rd, sizeof(rd));
	cfg_init(&cfg);
	cfg.av_allow_sim = 1;
	attest_sim_params_init(&sp);
	rc = attest_sim_report(&sp, rd, rep);
	rc |= attest_sim_cert_table(0, tab, sizeof(tab), &tl);
	rc |= attest_snp_verify(&cfg, rep, sizeof(rep), tab, tl, &c, why, sizeof(why));
	rc |= attest_snp_verify(&cfg, rep, sizeof(rep), tab, tl, &c, why, sizeof(why));
	CHECK(rc == 0, "sim evidence verifies twice (caches warm): %s", why);

	/* The VCEK's last byte is in its signature: the cached check must not apply. */
	rc = attest_cert_table_parse(tab, tl, &t, why, sizeof(why));
	CHECK(rc == 0 && t.vcek != NULL, "sim table parses");
	if (rc == 0 && t.vcek != NULL) {
		off = (size_t)(t.vcek - tab);
		vl = t.vcek_len;
		tab[off + vl - 1] ^= 0x01;
		rc = attest_snp_verify(&cfg, rep, sizeof(rep), tab, tl, &c, why, sizeof(why));
		CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "signature does not verify",
		    "VCEK with a changed signature after a cached success");
		tab[off + vl - 1] ^= 0x01;
		rc = attest_snp_verify(&cfg, rep, sizeof(rep), tab, tl, &c, why, sizeof(why));
		CHECK(rc == 0, "the original VCEK verifies again: %s", why);

		/* More distinct inputs than the parse cache holds, all alive at once. */
		if (vl + 40 <= sizeof(der)) {
			for (i = 0; i < 40; i++) {
				memset(der, 0, sizeof(der));
				memcpy(der, tab + off, vl);
				x[i] = x509_from_bytes(der, vl + i);	/* zero padding: a new key */
				alive &= x[i] != NULL;
			}
			y = x509_from_bytes(der, vl + 39);
			same = y != NULL && y == x[39];
			X509_free(y);
			for (i = 0; i < 40; i++) {
				if (x[i] != NULL) {
					char cn[64];

					x509_cn(x[i], cn, sizeof(cn));
					alive &= strcmp(cn, "SEV-VCEK") == 0;
				}
				X509_free(x[i]);
			}
			CHECK(alive && same, "parse cache: 40 inputs alive (%d), a repeat is "
			    "the cached object (%d)", alive, same);
		}
	}
}

/* ---- certificate table parser -------------------------------------------- */

static void
put_entry(uint8_t *t, const uint8_t *guid, uint32_t off, uint32_t len)
{
	memcpy(t, guid, 16);
	t[16] = (uint8_t)off; t[17] = (uint8_t)(off >> 8); t[18] = (uint8_t)(off >> 16); t[19] = (uint8_t)(off >> 24);
	t[20] = (uint8_t)len; t[21] = (uint8_t)(len >> 8); t[22] = (uint8_t)(len >> 16); t[23] = (uint8_t)(len >> 24);
}

static void
test_cert_table(void)
{
	struct attest_cert_table t;
	uint8_t b[2048];
	char why[ATTEST_WHY_LEN];
	static const uint8_t other[16] = { 1, 2, 3 };
	int rc, i;

	memset(b, 0, sizeof(b));
	rc = attest_cert_table_parse(b, 0, &t, why, sizeof(why));
	CHECK(rc == 0 && t.nentries == 0, "empty table");
	rc = attest_cert_table_parse(b, 24, &t, why, sizeof(why));
	CHECK(rc == 0 && t.nentries == 0, "terminator only");
	put_entry(b, snp_guid_vcek, 48, 10);
	rc = attest_cert_table_parse(b, 100, &t, why, sizeof(why));
	CHECK(rc == 0 && t.vcek == b + 48 && t.vcek_len == 10, "one entry");
	rc = attest_cert_table_parse(b, 30, &t, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "truncated (no all-zero terminator)", "no terminator");
	rc = attest_cert_table_parse(b, 50, &t, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "lies outside", "entry past the end");
	put_entry(b, snp_guid_vcek, 10, 10);
	rc = attest_cert_table_parse(b, 100, &t, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "lies outside", "entry inside the table header");
	put_entry(b, snp_guid_vcek, 0xFFFFFFF0u, 0x20);
	rc = attest_cert_table_parse(b, 100, &t, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "lies outside", "offset overflow");
	put_entry(b, snp_guid_vcek, 72, 4);
	put_entry(b + 24, snp_guid_vcek, 76, 4);
	rc = attest_cert_table_parse(b, 100, &t, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "two VCEK entries", "duplicate");
	put_entry(b + 24, other, 76, 4);
	rc = attest_cert_table_parse(b, 100, &t, why, sizeof(why));
	CHECK(rc == 0 && t.nentries == 2, "unknown GUID skipped: %s", why);
	put_entry(b + 24, other, 76, 0);
	rc = attest_cert_table_parse(b, 100, &t, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "is empty", "empty entry");
	memset(b, 0, sizeof(b));
	put_entry(b, (const uint8_t[16]){ 0 }, 5, 5);
	rc = attest_cert_table_parse(b, 100, &t, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "zero GUID but offset", "zero GUID with data");
	memset(b, 0, sizeof(b));
	for (i = 0; i < 40; i++)
		put_entry(b + 24 * i, other, 1500, 1);
	rc = attest_cert_table_parse(b, sizeof(b), &t, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "more than 32 entries", "too many entries");
}

/* ---- TDX -------------------------------------------------------------------- */

static void
copy_file(const char *from_rel, const char *to)
{
	size_t n;
	uint8_t *b = load(from_rel, &n);
	FILE *f = fopen(to, "wb");

	fwrite(b, 1, n, f);
	fclose(f);
	free(b);
}

static void
test_tdx(void)
{
	struct attest_verify_cfg cfg;
	struct attest_claims c;
	struct tdx_quote tq;
	char why[ATTEST_WHY_LEN], dir[] = "/tmp/vtpm-attest-tdx.XXXXXX", path[512];
	uint8_t *q4, *q5, *copy;
	size_t l4, l5;
	int rc;

	q4 = load("tdx-trustee/tdx_quote_4.dat", &l4);
	q5 = load("tdx-trustee/tdx_quote_5.dat", &l5);
	cfg_init(&cfg);
	rc = attest_tdx_verify(&cfg, q4, l4, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_POLICY, why, "TD attributes have DEBUG set", "quote v4 is a debug TD");
	cfg.av_allow_debug = 1;
	rc = attest_tdx_verify(&cfg, q4, l4, &c, why, sizeof(why));
	CHECK(rc == 0 && c.tee == ATTEST_TEE_TDX && c.tdx.version == 4 && c.debug &&
	    c.signer == ATTEST_SIGNER_PCK, "quote v4 verifies (debug allowed): %s", why);
	CHECK(rc != 0 || (memcmp(c.measurement, q4 + 48 + 0x88, 48) == 0 &&
	    memcmp(c.tdx.report_data, q4 + 568, 64) == 0 &&
	    memcmp(c.tdx.rtmr[3], q4 + 48 + 0x1D8, 48) == 0),
	    "v4 claims MRTD, REPORTDATA (offset 568), RTMR3");
	CHECK(strstr(c.tdx.not_checked, "no collateral directory") != NULL,
	    "not_checked says so: %s", c.tdx.not_checked);
	cfg.av_allow_debug = 0;
	rc = attest_tdx_verify(&cfg, q5, l5, &c, why, sizeof(why));
	CHECK(rc == 0 && c.tdx.version == 5 && c.tdx.body_type == 3 && !c.debug,
	    "quote v5 (TDX 1.5 body) verifies: %s", why);
	CHECK(rc != 0 || memcmp(c.tdx.mrconfigid, q5 + 54 + 0xB8, 48) == 0, "v5 MRCONFIGID");
	CHECK(c.tdx.have_fmspc, "FMSPC read from the PCK certificate");

	/* Collateral from a directory: tcbInfo and QE identity (not signed here). */
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof(path), "%s/tcbInfo.json", dir);
	copy_file("tdx-trustee/tcbInfo.json", path);
	snprintf(path, sizeof(path), "%s/enclaveIdentity.json", dir);
	copy_file("tdx-trustee/enclaveIdentity.json", path);
	cfg.av_tdx_collateral_dir = dir;
	rc = attest_tdx_verify(&cfg, q5, l5, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "tcbInfo expired: nextUpdate 2025-11-26T13:07:17Z",
	    "expired tcbInfo");
	cfg.av_now = utc(2025, 11, 1);
	rc = attest_tdx_verify(&cfg, q5, l5, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "tcbInfo is for FMSPC 00a06d080000 but the PCK "
	    "certificate is for FMSPC 90c06f000000", "collateral for another platform");
	/* The same tcbInfo relabelled for this platform (unsigned: no signing chain). */
	{
		size_t tl;
		uint8_t *ti = load("tdx-trustee/tcbInfo.json", &tl);
		char *f = memmem(ti, tl, "00A06D080000", 12);
		FILE *fp;

		if (f != NULL)
			memcpy(f, "90C06F000000", 12);
		snprintf(path, sizeof(path), "%s/tcbInfo.json", dir);
		fp = fopen(path, "wb");
		fwrite(ti, 1, tl, fp);
		fclose(fp);
		free(ti);
	}
	rc = attest_tdx_verify(&cfg, q5, l5, &c, why, sizeof(why));
	CHECK(rc == 0, "quote v5 with collateral: %s", why);
	CHECK((c.flags & ATTEST_CF_TDX_TCBINFO) && (c.flags & ATTEST_CF_TDX_QEID) &&
	    !(c.flags & (ATTEST_CF_TDX_TCBINFO_SIG | ATTEST_CF_TDX_QEID_SIG | ATTEST_CF_TDX_CRL)),
	    "collateral flags 0x%x", c.flags);
	/* This PCK's SGX TCB (comp01 = 1) is below both levels of that tcbInfo. */
	CHECK(strcmp(c.tdx.tcb_status, "NoMatchingLevel") == 0 &&
	    strcmp(c.tdx.qe_status, "UpToDate") == 0, "statuses %s / %s", c.tdx.tcb_status,
	    c.tdx.qe_status);
	CHECK(strstr(c.tdx.not_checked, "tcbInfo signature") &&
	    strstr(c.tdx.not_checked, "PCK CA CRL") &&
	    !strstr(c.tdx.not_checked, "tcbInfo (no"), "not_checked: %s", c.tdx.not_checked);
	cfg.av_no_time_check = 1;
	cfg.av_now = 0;
	cfg.av_allow_debug = 1;
	rc = attest_tdx_verify(&cfg, q4, l4, &c, why, sizeof(why));
	CHECK(rc == 0 || strstr(why, "FMSPC") != NULL, "quote v4 with collateral: %s",
	    rc ? why : c.tdx.tcb_status);
	unlink(path);
	snprintf(path, sizeof(path), "%s/tcbInfo.json", dir);
	unlink(path);
	rmdir(dir);
	cfg_init(&cfg);

	/* Negative: each link of the chain of trust. */
	copy = malloc(l5);
	memcpy(copy, q5, l5);
	copy[54 + 0x88] ^= 1;	/* MRTD */
	rc = attest_tdx_verify(&cfg, copy, l5, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "quote signature does not verify", "TDX body flip");
	rc = tdx_quote_parse(q5, l5, &tq, why, sizeof(why));
	CHECK(rc == 0, "parse v5");
	memcpy(copy, q5, l5);
	copy[tq.qe_report - q5 + 10] ^= 1;
	rc = attest_tdx_verify(&cfg, copy, l5, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "QE report signature does not verify", "QE report flip");
	memcpy(copy, q5, l5);
	copy[tq.ak - q5 + 5] ^= 1;
	rc = attest_tdx_verify(&cfg, copy, l5, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_EVIDENCE, why, "QE report data is not SHA-256", "AK flip");
	memcpy(copy, q5, l5);
	copy[0] = 3;
	rc = attest_tdx_verify(&cfg, copy, l5, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "version 3 is not supported", "TDX version");
	rc = attest_tdx_verify(&cfg, q5, l5 - 1, &c, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_FORMAT, why, "truncated", "TDX truncated");
	free(copy);
	free(q4);
	free(q5);
}

/* ---- configfs-tsm against a fake tree ---------------------------------------- */

static struct {
	const char *provider;
	const char *generation;
	uint8_t	outblob[ATTEST_MAX_EVIDENCE];
	size_t	outlen;
	uint8_t	auxblob[16384];
	size_t	auxlen;
	uint8_t	inblob[64];
	size_t	inlen;
	int	entries;
} fake;

static void
fake_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[600];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (write(fd, data, len) != (ssize_t)len)
			perror("fake write");
		close(fd);
	}
}

static int
fake_mkdir(const char *path, unsigned int mode)
{
	if (mkdir(path, mode) != 0)
		return -1;
	fake.entries++;
	fake_file(path, "provider", fake.provider, strlen(fake.provider));
	fake_file(path, "privlevel_floor", "0\n", 2);
	fake_file(path, "privlevel", "0\n", 2);
	fake_file(path, "inblob", "", 0);
	fake_file(path, "outblob", fake.outblob, fake.outlen);
	fake_file(path, "auxblob", fake.auxblob, fake.auxlen);
	fake_file(path, "generation", fake.generation, strlen(fake.generation));
	return 0;
}

static int
fake_rmdir(const char *path)
{
	static const char *const names[] = { "provider", "privlevel_floor", "privlevel",
		"inblob", "outblob", "auxblob", "generation" };
	char p[600];
	size_t i;
	int fd;

	snprintf(p, sizeof(p), "%s/inblob", path);
	if ((fd = open(p, O_RDONLY)) >= 0) {
		ssize_t n = read(fd, fake.inblob, sizeof(fake.inblob));

		fake.inlen = n > 0 ? (size_t)n : 0;
		close(fd);
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", path, names[i]);
		unlink(p);
	}
	fake.entries--;
	return rmdir(path);
}

static void
test_configfs(void)
{
	static const struct attest_tsm_ops ops = { fake_mkdir, fake_rmdir };
	struct attest_provider_opts o;
	struct attest_provider *p;
	struct attest_sim_params sp;
	struct attest_verify_cfg cfg;
	struct attest_claims c;
	char dir[] = "/tmp/vtpm-attest-tsm.XXXXXX", why[ATTEST_WHY_LEN], nf[600];
	uint8_t rd[64], ev[ATTEST_MAX_EVIDENCE], want[64], nonce[32];
	size_t el;
	int rc;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	randombytes_buf(rd, sizeof(rd));
	attest_sim_params_init(&sp);
	memset(sp.sp_measurement, 0x44, 48);
	rc = attest_sim_report(&sp, rd, fake.outblob);
	fake.outlen = ATTEST_SNP_REPORT_LEN;
	rc |= attest_sim_cert_table(0, fake.auxblob, sizeof(fake.auxblob), &fake.auxlen);
	CHECK(rc == 0, "fake outblob and auxblob");
	fake.provider = "sev_guest\n";
	fake.generation = "1\n";

	memset(&o, 0, sizeof(o));
	o.ap_kind = "auto";
	o.ap_tsm_dir = dir;
	o.ap_sev_guest = "/nonexistent/sev-guest";
	o.ap_tsm_ops = &ops;
	rc = attest_provider_open(&o, &p, why, sizeof(why));
	CHECK(rc == 0 && attest_provider_tee(p) == ATTEST_TEE_SNP &&
	    strcmp(attest_provider_name(p), "configfs-tsm (sev_guest)") == 0,
	    "configfs-tsm SNP provider opens: %s", why);
	if (rc != 0)
		return;
	CHECK(fake.entries == 0, "the probe entry was removed");
	rc = attest_evidence_get(p, rd, ev, sizeof(ev), &el);
	CHECK(rc == 0, "configfs-tsm evidence: %s", attest_provider_error(p));
	CHECK(fake.inlen == 64 && memcmp(fake.inblob, rd, 64) == 0, "inblob = report data");
	CHECK(fake.entries == 0, "the report entry was removed");
	cfg_init(&cfg);
	cfg.av_allow_sim = 1;
	rc = attest_evidence_verify(&cfg, ev, el, rd, &c, why, sizeof(why));
	CHECK(rc == 0 && c.measurement[0] == 0x44, "configfs-tsm evidence verifies: %s", why);

	fake.generation = "2\n";	/* someone else wrote to our entry */
	rc = attest_evidence_get(p, rd, ev, sizeof(ev), &el);
	CHECK(rc == VTPM_E_BUSY && strstr(attest_provider_error(p), "generation 2 after our 1 writes"),
	    "generation race detected: %s", attest_provider_error(p));
	fake.generation = "1\n";
	attest_provider_free(p);

	o.ap_privlevel = 2;
	rc = attest_provider_open(&o, &p, why, sizeof(why));
	fake.generation = "2\n";	/* privlevel + inblob */
	rc |= attest_evidence_get(p, rd, ev, sizeof(ev), &el);
	CHECK(rc == 0, "privlevel written, generation 2 expected: %s", attest_provider_error(p));
	attest_provider_free(p);
	o.ap_privlevel = 0;
	fake.generation = "1\n";

	/* TDX: inblob = SHA-512(label || rd || nonce), aux = the nonce. */
	fake.provider = "tdx_guest\n";
	fake.auxlen = 0;
	snprintf(nf, sizeof(nf), "%s.nonce", dir);
	o.ap_launch_file = nf;
	o.ap_kind = "snp";
	rc = attest_provider_open(&o, &p, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_UNSUPPORTED, why, "no snp attestation interface here", "snp on a TDX box");
	o.ap_kind = "tdx";
	rc = attest_provider_open(&o, &p, why, sizeof(why));
	CHECK(rc == 0 && attest_provider_tee(p) == ATTEST_TEE_TDX, "TDX provider: %s", why);
	if (rc == 0) {
		rc = attest_evidence_get(p, rd, ev, sizeof(ev), &el);
		CHECK(rc == 0 && el == 16 + ATTEST_SNP_REPORT_LEN + 32 && ev[5] == ATTEST_TEE_TDX,
		    "TDX envelope: %s", attest_provider_error(p));
		memcpy(nonce, ev + el - 32, 32);
		attest_tdx_report_data(rd, nonce, want);
		CHECK(fake.inlen == 64 && memcmp(fake.inblob, want, 64) == 0,
		    "TDX inblob binds report data and launch nonce");
		attest_provider_free(p);
		rc = attest_provider_open(&o, &p, why, sizeof(why));
		rc |= attest_evidence_get(p, rd, ev, sizeof(ev), &el);
		CHECK(rc == 0 && memcmp(ev + el - 32, nonce, 32) == 0,
		    "the launch nonce file keeps the launch across restarts");
		/* raw (the key broker's form): REPORTDATA is the report data as given */
		rc = attest_evidence_get_raw(p, rd, ev, sizeof(ev), &el);
		CHECK(rc == 0 && fake.inlen == 64 && memcmp(fake.inblob, rd, 64) == 0 &&
		    ev[5] == ATTEST_TEE_TDX, "TDX raw evidence: inblob = report data unchanged");
		attest_provider_free(p);
	}
	unlink(nf);

	o.ap_tsm_dir = "/nonexistent/tsm";
	o.ap_kind = "auto";
	rc = attest_provider_open(&o, &p, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_UNSUPPORTED, why, "configfs-tsm needs Linux 6.7+", "no interface");
	CHECK(strstr(why, "/nonexistent/sev-guest") != NULL, "names /dev/sev-guest: %s", why);
	o.ap_kind = "sgx";
	rc = attest_provider_open(&o, &p, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_INVAL, why, "unknown (auto, snp, tdx, sim)", "unknown kind");
	rmdir(dir);
}

/* ---- policy -------------------------------------------------------------------- */

static int
pol(const char *text, struct attest_policy **p, char *why)
{
	return attest_policy_parse("test.policy", (const uint8_t *)text, strlen(text), p, why,
	    ATTEST_WHY_LEN);
}

static void
sim_claims(struct attest_claims *c, const struct attest_sim_params *sp)
{
	struct attest_verify_cfg cfg;
	uint8_t rd[64] = { 0 }, rep[ATTEST_SNP_REPORT_LEN], tab[16384];
	char why[ATTEST_WHY_LEN];
	size_t tl;

	cfg_init(&cfg);
	cfg.av_allow_sim = 1;
	cfg.av_allow_debug = 1;
	cfg.av_vmpl_mask = 0xF;
	if (attest_sim_report(sp, rd, rep) != 0 || attest_sim_cert_table(sp->sp_turin, tab,
	    sizeof(tab), &tl) != 0 || attest_snp_verify(&cfg, rep, sizeof(rep), tab, tl, c, why,
	    sizeof(why)) != 0) {
		printf("sim_claims: %s\n", why);
		exit(1);
	}
}

static void
test_policy(void)
{
	struct attest_policy *p;
	struct attest_sim_params sp;
	struct attest_claims c;
	char why[ATTEST_WHY_LEN], inst[64], m11[97], m22[97], h33[65], text[4096];
	int rc, ae;
	static const struct { const char *text, *err; } bad[] = {
		{ "", "empty" },
		{ "vtpmd-policy 2\n", "test.policy:1: the first line must be 'vtpmd-policy 1'" },
		{ "vtpmd-policy 1\nfoo = bar\n", "test.policy:2: 'foo' outside a section" },
		{ "vtpmd-policy 1\n[defaults]\nmeasurement = 00\n", ":3: 'measurement' is not a [defaults] key" },
		{ "vtpmd-policy 1\n[instance a]\nmeasurement = 0011\n", ":3: measurement: want 96 hex digits" },
		{ "vtpmd-policy 1\n[instance a]\nfrobnicate = 1\n", ":3: unknown key 'frobnicate'" },
		{ "vtpmd-policy 1\n[instance a]\ndebug = forbid\ndebug = allow\n", ":4: debug given twice" },
		{ "vtpmd-policy 1\n[instance a]\ndebug = maybe\n", ":3: debug: want forbid or allow" },
		{ "vtpmd-policy 1\n[instance a]\nvmpl = 4\n", ":3: vmpl: '4' is not 0..3" },
		{ "vtpmd-policy 1\n[instance a]\nmin-tcb = snp=300\n", ":3: min-tcb: snp value is not 0..255" },
		{ "vtpmd-policy 1\n[instance a]\nmin-tcb = pcr=1\n", ":3: min-tcb: unknown component 'pcr'" },
		{ "vtpmd-policy 1\n[instance a]\ntee = sgx\n", ":3: tee: 'sgx' is not snp or tdx" },
		{ "vtpmd-policy 1\n[instance a b]\n", ":2: want [defaults]" },
		{ "vtpmd-policy 1\n[instance a/b]\n", ":2: instance name 'a/b' is not" },
		{ "vtpmd-policy 1\n[enrol fixed-name]\n", ":2: enrol template 'fixed-name' needs" },
		{ "vtpmd-policy 1\n[enrol x-{pcr:4}]\n", ":2: enrol template" },
		{ "vtpmd-policy 1\n[party]\n", ":2: want [defaults]" },
		{ "vtpmd-policy 1\n[instance a]\ndebug = forbid\n", ":2: rule 'a' has no measurement" },
		{ "vtpmd-policy 1\n[instance a]\n[defaults]\n", ":3: [defaults] must come before the rules" },
		{ "vtpmd-policy 1\n[instance a]\nsigner = amd\n", ":3: signer: 'amd' is not vcek" },
		{ "vtpmd-policy 1\n\x01\n", ":2: byte 0x01 is not printable ASCII" },
		{ "vtpmd-policy 1\n[instance a]\ntdx-tcb-status = Fine\n", "unknown status 'Fine'" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = pol(bad[i].text, &p, why);
		CHECK(rc == VTPM_E_FORMAT && p == NULL && strstr(why, bad[i].err) != NULL,
		    "bad policy %zu: rc %d why '%s' (want '%s')", i, rc, why, bad[i].err);
	}

	memset(m11, '1', 96); m11[96] = '\0';
	memset(m22, '2', 96); m22[96] = '\0';
	memset(h33, '3', 64); h33[64] = '\0';
	snprintf(text, sizeof(text),
	    "vtpmd-policy 1\n"
	    "# a comment\n"
	    "[defaults]\n"
	    "test-root = allow   # sim evidence in this test\n"
	    "min-tcb = bootloader=9 snp=23\n"
	    "\n"
	    "[instance web-01]\n"
	    "tee = snp\n"
	    "measurement = %s\n"
	    "host-data = %s\n"
	    "\n"
	    "[instance strict]\n"
	    "measurement = %s\n"
	    "host-data = %s\n"
	    "min-tcb = snp=24\n"
	    "\n"
	    "[enrol guest-{host-data:8}]\n"
	    "measurement = %s\n", m11, h33, m22, h33, m11);
	rc = pol(text, &p, why);
	CHECK(rc == 0 && attest_policy_nrules(p) == 3, "policy parses: %s", why);
	if (rc != 0)
		return;

	attest_sim_params_init(&sp);
	memset(sp.sp_measurement, 0x11, 48);
	memset(sp.sp_host_data, 0x33, 32);
	sim_claims(&c, &sp);
	rc = attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
	CHECK(rc == 0 && strcmp(inst, "web-01") == 0 && ae == 0, "instance rule: %s %s", inst, why);

	memset(sp.sp_host_data, 0x44, 32);
	sim_claims(&c, &sp);
	rc = attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
	CHECK(rc == 0 && strcmp(inst, "guest-44444444") == 0 && ae == 1, "enrol rule: %s %s",
	    inst, why);

	memset(sp.sp_measurement, 0x55, 48);
	sim_claims(&c, &sp);
	rc = attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_POLICY, why, "claim measurement=5555", "unknown measurement");
	CHECK(strstr(why, "is not allowed by any rule") != NULL, "names the claim: %s", why);

	memset(sp.sp_measurement, 0x22, 48);
	memset(sp.sp_host_data, 0x33, 32);
	sim_claims(&c, &sp);
	rc = attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_POLICY, why, "rule 'strict': claim reported_tcb.snp=23 is below the "
	    "minimum 24 (TCB below minimum)", "TCB below minimum");

	memset(sp.sp_host_data, 0x99, 32);
	sim_claims(&c, &sp);
	rc = attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_POLICY, why, "claim host-data=9999", "host data mismatch");
	CHECK(strstr(why, "rule 'strict'") != NULL, "closest rule named: %s", why);

	memset(sp.sp_measurement, 0x11, 48);
	memset(sp.sp_host_data, 0x33, 32);
	sp.sp_policy |= ATTEST_SNP_POLICY_DEBUG;
	sim_claims(&c, &sp);
	rc = attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_POLICY, why, "claim debug=1 (SNP guest policy DEBUG bit 19)",
	    "policy: debug");
	attest_sim_params_init(&sp);
	memset(sp.sp_measurement, 0x11, 48);
	memset(sp.sp_host_data, 0x33, 32);
	sp.sp_vmpl = 1;
	sim_claims(&c, &sp);
	rc = attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_POLICY, why, "claim vmpl=1 is not allowed", "policy: vmpl");
	attest_sim_params_init(&sp);
	memset(sp.sp_measurement, 0x11, 48);
	memset(sp.sp_host_data, 0x33, 32);
	memset(sp.sp_report_id_ma, 0x01, 32);
	sim_claims(&c, &sp);
	rc = attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_POLICY, why, "claim migration-agent=1", "policy: migration agent");
	attest_policy_free(p);

	/* test-root is forbidden unless allowed; signer; TDX status needs collateral. */
	snprintf(text, sizeof(text), "vtpmd-policy 1\n[instance a]\nmeasurement = %s\n", m11);
	rc = pol(text, &p, why);
	attest_sim_params_init(&sp);
	memset(sp.sp_measurement, 0x11, 48);
	sim_claims(&c, &sp);
	rc |= attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
	CHECK(rc == VTPM_E_POLICY && strstr(why, "claim test-root=1"), "test root forbidden: %s", why);
	attest_policy_free(p);
	snprintf(text, sizeof(text), "vtpmd-policy 1\n[defaults]\ntest-root = allow\n"
	    "[instance a]\nmeasurement = %s\nsigner = vlek\n", m11);
	rc = pol(text, &p, why);
	rc |= attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
	CHECK(rc == VTPM_E_POLICY && strstr(why, "claim signer=VCEK is not allowed"),
	    "signer: %s", why);
	attest_policy_free(p);
	{
		uint8_t *q5;
		size_t l5;
		struct attest_verify_cfg cfg;
		char mrtd[97];

		q5 = load("tdx-trustee/tdx_quote_5.dat", &l5);
		cfg_init(&cfg);
		rc = attest_tdx_verify(&cfg, q5, l5, &c, why, sizeof(why));
		attest_hex_encode(c.measurement, 48, mrtd);
		snprintf(text, sizeof(text), "vtpmd-policy 1\n[instance td]\ntee = tdx\n"
		    "measurement = %s\ntdx-tcb-status = UpToDate\n", mrtd);
		rc |= pol(text, &p, why);
		rc |= attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
		CHECK(rc == VTPM_E_POLICY && strstr(why, "claim tdx-tcb-status was not evaluated"),
		    "tdx status without collateral: %s", why);
		attest_policy_free(p);
		snprintf(text, sizeof(text), "vtpmd-policy 1\n[instance td]\ntee = tdx\n"
		    "measurement = %s\n", mrtd);
		rc = pol(text, &p, why);
		rc |= attest_policy_match(p, &c, inst, sizeof(inst), &ae, why, sizeof(why));
		CHECK(rc == 0 && strcmp(inst, "td") == 0, "TDX rule: %s", why);
		attest_policy_free(p);
		free(q5);
	}
	rc = attest_policy_load("/nonexistent/policy", &p, why, sizeof(why));
	CHECK_ERR(rc, VTPM_E_IO, why, "No such file", "missing policy file");
}

int
main(void)
{
	const char *env = getenv("VTPM_VECTORS");

	if (env != NULL)
		vecdir = env;
	if (sodium_init() < 0)
		return 1;
	test_snp_real();
	test_snp_turin_vcek();
	test_snp_negative();
	test_sim();
	test_cert_caches();
	test_cert_table();
	test_tdx();
	test_configfs();
	test_policy();
	printf("attest: %d passed, %d failed\n", npass, nfail);
	return nfail != 0;
}
