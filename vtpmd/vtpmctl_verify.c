/*
 * vtpmctl_verify.c: `vtpmctl verify-evidence`, a verifier anyone can run
 * offline: an SEV-SNP report (with its VCEK/VLEK and chain, a certificate
 * table or a cache directory) or a TDX quote (with optional collateral), or
 * a vtpmd evidence envelope. Prints the verified claims as JSON and what was
 * and was not checked, or the precise reason and exits 1. Trusts only the
 * pinned roots compiled into libattest (and the test ARK when told to).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "attest.h"

int vtpmctl_verify_evidence(int argc, char **argv);

#define FILE_MAX	(1 << 20)

static void
usage(FILE *f)
{
	fprintf(f,
"usage: vtpmctl verify-evidence --report FILE [--vcek FILE] [--chain FILE]\n"
"                               [--certs FILE] [--cache-dir DIR]\n"
"       vtpmctl verify-evidence --quote FILE [--collateral DIR]\n"
"       vtpmctl verify-evidence --evidence FILE --report-data HEX | --ek EKPUB...\n"
"  common: [--no-time-check] [--trust-test-ark] [--allow-debug] [--vmpl any|LIST]\n"
"          [--report-data HEX | --ek EKPUB [--ek EKPUB]] [--policy FILE] [--now UNIXTIME]\n"
"--report: the raw 1184-byte SEV-SNP report (or its hex text); --vcek: the VCEK\n"
"or VLEK (DER or PEM); --chain: ASK/ASVK and ARK as PEM, any order; --certs: a\n"
"GHCB certificate table (auxblob). --quote: a TDX quote v4/v5. --ek: the guest's\n"
"EK public key(s) or EK certificate(s), PEM or DER (vtpm-guest bind-ek; checks\n"
"report data == SHA-512(\"vtpmd-ek-bind-v1\" || RSA EK SPKI || ECC EK SPKI)). Prints the claims\n"
"as JSON and exits 0, or prints the reason and exits 1 (2: usage).\n");
}

static int
read_all(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0, r;
	uint8_t *b = NULL, *nb;

	if (f == NULL) {
		fprintf(stderr, "vtpmctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if ((nb = realloc(b, cap)) == NULL)
			break;
		b = nb;
		r = fread(b + n, 1, cap - n, f);
		n += r;
		if (n < cap || cap >= FILE_MAX)
			break;
		cap *= 2;
	}
	if (ferror(f) || n >= FILE_MAX || b == NULL) {
		fprintf(stderr, "vtpmctl: %s: unreadable or larger than %d bytes\n", path, FILE_MAX);
		fclose(f);
		free(b);
		return -1;
	}
	fclose(f);
	*buf = b;
	*len = n;
	return 0;
}

/* A report given as hex text (as in some test data) becomes binary. */
static void
maybe_hex(uint8_t *buf, size_t *len)
{
	size_t n = *len, bin;

	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (n != 2 * ATTEST_SNP_REPORT_LEN)
		return;
	if (sodium_hex2bin(buf, n / 2, (const char *)buf, n, NULL, &bin, NULL) == 0 &&
	    bin == n / 2)
		*len = bin;
}

static json_object *
hex(const uint8_t *p, size_t n)
{
	char *s = malloc(2 * n + 1);
	json_object *o;

	if (s == NULL)
		return NULL;
	sodium_bin2hex(s, 2 * n + 1, p, n);
	o = json_object_new_string(s);
	free(s);
	return o;
}

static json_object *
hex64(uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "0x%016llx", (unsigned long long)v);
	return json_object_new_string(s);
}

static json_object *
tcb_json(const struct attest_snp_tcb *t, int turin)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "raw", hex(t->raw, 8));
	if (turin)
		json_object_object_add(o, "fmc", json_object_new_int(t->fmc));
	json_object_object_add(o, "bootloader", json_object_new_int(t->bootloader));
	json_object_object_add(o, "tee", json_object_new_int(t->tee));
	json_object_object_add(o, "snp", json_object_new_int(t->snp));
	json_object_object_add(o, "microcode", json_object_new_int(t->microcode));
	return o;
}

static void
add_str(json_object *arr, const char *s)
{
	json_object_array_add(arr, json_object_new_string(s));
}

static json_object *
claims_json(const struct attest_claims *c, int rd_checked, int ek_checked)
{
	json_object *o = json_object_new_object(), *t, *chk = json_object_new_array(),
	    *nchk = json_object_new_array();
	int turin = (c->flags & ATTEST_CF_TURIN_LAYOUT) != 0, i;
	char line[200];

	json_object_object_add(o, "verified", json_object_new_boolean(1));
	json_object_object_add(o, "tee", json_object_new_string(c->tee == ATTEST_TEE_SNP ?
	    "snp" : "tdx"));
	json_object_object_add(o, "signer", json_object_new_string(attest_signer_name(c->signer)));
	json_object_object_add(o, "root", json_object_new_string(c->anchor));
	json_object_object_add(o, "test_root", json_object_new_boolean(
	    (c->flags & ATTEST_CF_TEST_ROOT) != 0));
	json_object_object_add(o, "measurement", hex(c->measurement, sizeof(c->measurement)));
	json_object_object_add(o, "host_data", hex(c->host_data, sizeof(c->host_data)));
	json_object_object_add(o, "launch_id", hex(c->launch_id, sizeof(c->launch_id)));
	json_object_object_add(o, "report_data", hex(c->report_data, sizeof(c->report_data)));
	json_object_object_add(o, "debug", json_object_new_boolean(c->debug));
	if (c->tee == ATTEST_TEE_SNP) {
		const struct attest_snp_claims *s = &c->snp;

		t = json_object_new_object();
		json_object_object_add(t, "version", json_object_new_int((int32_t)s->version));
		json_object_object_add(t, "guest_svn", json_object_new_int64(s->guest_svn));
		json_object_object_add(t, "policy", hex64(s->policy));
		json_object_object_add(t, "vmpl", json_object_new_int((int32_t)s->vmpl));
		json_object_object_add(t, "family_id", hex(s->family_id, 16));
		json_object_object_add(t, "image_id", hex(s->image_id, 16));
		json_object_object_add(t, "id_key_digest", hex(s->id_key_digest, 48));
		json_object_object_add(t, "author_key_digest", hex(s->author_key_digest, 48));
		json_object_object_add(t, "report_id", hex(s->report_id, 32));
		json_object_object_add(t, "report_id_ma", hex(s->report_id_ma, 32));
		json_object_object_add(t, "chip_id", hex(s->chip_id, 64));
		json_object_object_add(t, "platform_info", hex64(s->platform_info));
		json_object_object_add(t, "key_info", json_object_new_int((int32_t)s->key_info));
		json_object_object_add(t, "product", json_object_new_string(s->product));
		json_object_object_add(t, "tcb_layout", json_object_new_string(turin ? "turin" :
		    "milan-genoa"));
		json_object_object_add(t, "cpuid_fam_id", json_object_new_int(s->cpuid_fam));
		json_object_object_add(t, "cpuid_mod_id", json_object_new_int(s->cpuid_mod));
		json_object_object_add(t, "cpuid_step", json_object_new_int(s->cpuid_step));
		json_object_object_add(t, "current_tcb", tcb_json(&s->current_tcb, turin));
		json_object_object_add(t, "reported_tcb", tcb_json(&s->reported_tcb, turin));
		json_object_object_add(t, "committed_tcb", tcb_json(&s->committed_tcb, turin));
		json_object_object_add(t, "launch_tcb", tcb_json(&s->launch_tcb, turin));
		snprintf(line, sizeof(line), "%u.%u.%u", s->current_major, s->current_minor,
		    s->current_build);
		json_object_object_add(t, "current_firmware", json_object_new_string(line));
		snprintf(line, sizeof(line), "%u.%u.%u", s->committed_major, s->committed_minor,
		    s->committed_build);
		json_object_object_add(t, "committed_firmware", json_object_new_string(line));
		if (s->version >= 5) {
			json_object_object_add(t, "launch_mit_vector", hex64(s->launch_mit_vector));
			json_object_object_add(t, "current_mit_vector", hex64(s->current_mit_vector));
		}
		json_object_object_add(o, "snp", t);
		add_str(chk, "report layout, version and reserved fields");
		snprintf(line, sizeof(line), "ECDSA P-384 SHA-384 signature over bytes 0x000-0x29F "
		    "by the %s", attest_signer_name(c->signer));
		add_str(chk, line);
		snprintf(line, sizeof(line), "%s -> %s -> %s (pinned) RSASSA-PSS SHA-384 chain",
		    attest_signer_name(c->signer), c->signer == ATTEST_SIGNER_VLEK ? "ASVK" : "ASK",
		    c->anchor);
		add_str(chk, line);
		if (c->signer == ATTEST_SIGNER_VCEK)
			add_str(chk, "VCEK hwID == CHIP_ID");
		add_str(chk, "certificate SPL extensions == REPORTED_TCB");
		add_str(chk, c->debug ? "DEBUG allowed (--allow-debug)" : "guest policy DEBUG not set");
		add_str(chk, "VMPL allowed");
		add_str(nchk, "certificate revocation (AMD CRLs are not consulted)");
	} else {
		const struct attest_tdx_claims *d = &c->tdx;
		json_object *col = json_object_new_object();
		char name[16];

		t = json_object_new_object();
		json_object_object_add(t, "version", json_object_new_int(d->version));
		json_object_object_add(t, "body_type", json_object_new_int(d->body_type));
		json_object_object_add(t, "mrtd", hex(d->mrtd, 48));
		for (i = 0; i < 4; i++) {
			snprintf(name, sizeof(name), "rtmr%d", i);
			json_object_object_add(t, name, hex(d->rtmr[i], 48));
		}
		json_object_object_add(t, "mrconfigid", hex(d->mrconfigid, 48));
		json_object_object_add(t, "mrowner", hex(d->mrowner, 48));
		json_object_object_add(t, "mrownerconfig", hex(d->mrownerconfig, 48));
		json_object_object_add(t, "reportdata", hex(d->report_data, 64));
		json_object_object_add(t, "mrseam", hex(d->mrseam, 48));
		json_object_object_add(t, "mrsignerseam", hex(d->mrsignerseam, 48));
		json_object_object_add(t, "tee_tcb_svn", hex(d->tee_tcb_svn, 16));
		json_object_object_add(t, "seam_attributes", hex64(d->seam_attributes));
		json_object_object_add(t, "td_attributes", hex64(d->td_attributes));
		json_object_object_add(t, "xfam", hex64(d->xfam));
		if (d->body_type == 3) {
			json_object_object_add(t, "tee_tcb_svn2", hex(d->tee_tcb_svn2, 16));
			json_object_object_add(t, "mrservicetd", hex(d->mrservicetd, 48));
		}
		if (d->have_fmspc)
			json_object_object_add(t, "fmspc", hex(d->fmspc, 6));
		json_object_object_add(col, "tcb_status", d->tcb_status[0] ?
		    json_object_new_string(d->tcb_status) : NULL);
		json_object_object_add(col, "qe_status", d->qe_status[0] ?
		    json_object_new_string(d->qe_status) : NULL);
		json_object_object_add(t, "collateral", col);
		json_object_object_add(o, "tdx", t);
		add_str(chk, "quote layout (v4/v5, ECDSA-P256, certification data 6 and 5)");
		add_str(chk, "quote signature by the attestation key");
		add_str(chk, "QE report signature by the PCK certificate");
		add_str(chk, "QE report data == SHA-256(attestation key || auth data)");
		add_str(chk, "PCK certificate -> PCK CA -> Intel SGX Root CA (pinned)");
		add_str(chk, c->debug ? "DEBUG allowed (--allow-debug)" : "TD attribute DEBUG not set");
		if (c->flags & ATTEST_CF_TDX_TCBINFO) {
			snprintf(line, sizeof(line), "platform TCB against tcbInfo: %s", d->tcb_status);
			add_str(chk, line);
		}
		if (c->flags & ATTEST_CF_TDX_TCBINFO_SIG)
			add_str(chk, "tcbInfo signature (TCB Signing -> Intel SGX Root CA)");
		if (c->flags & ATTEST_CF_TDX_QEID) {
			snprintf(line, sizeof(line), "QE report against the QE identity: %s",
			    d->qe_status);
			add_str(chk, line);
		}
		if (c->flags & ATTEST_CF_TDX_QEID_SIG)
			add_str(chk, "QE identity signature");
		if (c->flags & ATTEST_CF_TDX_CRL)
			add_str(chk, "PCK chain against the root CA and PCK CA CRLs");
		if (d->not_checked[0]) {
			char buf[sizeof(d->not_checked)], *tok, *save = NULL;

			snprintf(buf, sizeof(buf), "%s", d->not_checked);
			for (tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save))
				add_str(nchk, tok[0] == ' ' ? tok + 1 : tok);
		}
	}
	add_str(c->flags & ATTEST_CF_NO_TIME_CHECK ? nchk : chk,
	    "certificate and collateral validity times");
	add_str(rd_checked ? chk : nchk, ek_checked ? "report data == SHA-512(\"vtpmd-ek-bind-v1\" "
	    "|| the --ek keys' SubjectPublicKeyInfo)" : rd_checked ? "report data == --report-data" :
	    "report data binding (no --report-data given)");
	if (ek_checked)
		add_str(nchk, "the EK certificates' chain (openssl verify against vtpmctl ca show)");
	if (c->flags & ATTEST_CF_TEST_ROOT)
		add_str(nchk, "authenticity: the chain ends at the vtpmd TEST ARK, whose keys are "
		    "public");
	json_object_object_add(o, "checked", chk);
	json_object_object_add(o, "not_checked", nchk);
	return o;
}

/* --ek FILE: PEM public keys or certificates, or DER (attest_ek_load). */
static int
read_ek(const char *path, struct attest_ek_keys *ek)
{
	char why[ATTEST_WHY_LEN];
	uint8_t *buf;
	size_t len;
	int rc;

	if (read_all(path, &buf, &len) != 0)
		return -1;
	rc = attest_ek_load(buf, len, ek, why, sizeof(why));
	free(buf);
	if (rc != 0)
		fprintf(stderr, "vtpmctl: --ek %s: %s\n", path, why);
	return rc;
}

static json_object *
ek_json(const struct attest_ek_keys *ek, const uint8_t rd[64])
{
	json_object *o = json_object_new_object();
	uint8_t h[32];

	if (ek->ek_rsa_len) {
		crypto_hash_sha256(h, ek->ek_rsa, ek->ek_rsa_len);
		json_object_object_add(o, "rsa_spki_sha256", hex(h, sizeof(h)));
	}
	if (ek->ek_ecc_len) {
		crypto_hash_sha256(h, ek->ek_ecc, ek->ek_ecc_len);
		json_object_object_add(o, "ecc_spki_sha256", hex(h, sizeof(h)));
	}
	json_object_object_add(o, "report_data", hex(rd, 64));
	return o;
}

int
vtpmctl_verify_evidence(int argc, char **argv)
{
	enum { O_REPORT = 256, O_VCEK, O_CHAIN, O_CERTS, O_CACHE, O_QUOTE, O_COLL, O_EVID,
		O_NOTIME, O_TEST, O_DEBUG, O_VMPL, O_RD, O_POLICY, O_NOW, O_EK };
	static const struct option opts[] = {
		{ "report", required_argument, NULL, O_REPORT },
		{ "vcek", required_argument, NULL, O_VCEK },
		{ "vlek", required_argument, NULL, O_VCEK },
		{ "chain", required_argument, NULL, O_CHAIN },
		{ "certs", required_argument, NULL, O_CERTS },
		{ "cache-dir", required_argument, NULL, O_CACHE },
		{ "quote", required_argument, NULL, O_QUOTE },
		{ "collateral", required_argument, NULL, O_COLL },
		{ "evidence", required_argument, NULL, O_EVID },
		{ "no-time-check", no_argument, NULL, O_NOTIME },
		{ "trust-test-ark", no_argument, NULL, O_TEST },
		{ "allow-debug", no_argument, NULL, O_DEBUG },
		{ "vmpl", required_argument, NULL, O_VMPL },
		{ "report-data", required_argument, NULL, O_RD },
		{ "policy", required_argument, NULL, O_POLICY },
		{ "now", required_argument, NULL, O_NOW },
		{ "ek", required_argument, NULL, O_EK },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *report = NULL, *vcek = NULL, *chain = NULL, *certs = NULL, *quote = NULL,
	    *evidence = NULL, *rdhex = NULL, *policy = NULL;
	struct attest_verify_cfg cfg;
	struct attest_claims c;
	struct attest_policy *pol = NULL;
	uint8_t *rep = NULL, *leaf = NULL, *ch = NULL, *tab = NULL, rd[64];
	size_t rl = 0, ll = 0, cl = 0, tl = 0;
	char why[ATTEST_WHY_LEN], inst[64], *end;
	json_object *out;
	struct attest_ek_keys ek;
	int opt, rc, ae, ret = 1, nek = 0;

	memset(&cfg, 0, sizeof(cfg));
	memset(&ek, 0, sizeof(ek));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case O_REPORT:	report = optarg; break;
		case O_VCEK:	vcek = optarg; break;
		case O_CHAIN:	chain = optarg; break;
		case O_CERTS:	certs = optarg; break;
		case O_CACHE:	cfg.av_cache_dir = optarg; break;
		case O_QUOTE:	quote = optarg; break;
		case O_COLL:	cfg.av_tdx_collateral_dir = optarg; break;
		case O_EVID:	evidence = optarg; break;
		case O_NOTIME:	cfg.av_no_time_check = 1; break;
		case O_TEST:	cfg.av_allow_sim = 1; break;
		case O_DEBUG:	cfg.av_allow_debug = 1; break;
		case O_VMPL:
			if (strcmp(optarg, "any") == 0) {
				cfg.av_vmpl_mask = 0xF;
				break;
			}
			for (end = optarg; *end; end++) {
				if (*end >= '0' && *end <= '3')
					cfg.av_vmpl_mask |= (uint8_t)(1u << (*end - '0'));
				else if (*end != ',') {
					fprintf(stderr, "vtpmctl: --vmpl: want any or a list of 0..3\n");
					return 2;
				}
			}
			break;
		case O_RD:	rdhex = optarg; break;
		case O_POLICY:	policy = optarg; break;
		case O_NOW:
			errno = 0;
			cfg.av_now = strtoll(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || cfg.av_now <= 0) {
				fprintf(stderr, "vtpmctl: --now: want unix seconds\n");
				return 2;
			}
			break;
		case O_EK:
			if (read_ek(optarg, &ek) != 0)
				return 1;
			nek++;
			break;
		case 'h':	usage(stdout); return 0;
		default:	usage(stderr); return 2;
		}
	}
	if (nek > 0 && rdhex != NULL) {
		fprintf(stderr, "vtpmctl: --ek and --report-data exclude each other\n");
		return 2;
	}
	if (optind != argc || (report != NULL) + (quote != NULL) + (evidence != NULL) != 1) {
		usage(stderr);
		return 2;
	}
	if (rdhex != NULL && attest_hex_decode(rdhex, rd, sizeof(rd)) != 0) {
		fprintf(stderr, "vtpmctl: --report-data: want 128 hex digits\n");
		return 2;
	}
	if (evidence != NULL && rdhex == NULL && nek == 0) {
		fprintf(stderr, "vtpmctl: --evidence needs --report-data (the session's) or --ek\n");
		return 2;
	}
	if (nek > 0)
		attest_ek_bind_report_data(&ek, rd);
	if (sodium_init() < 0)
		return 1;
	if ((vcek && read_all(vcek, &leaf, &ll) != 0) || (chain && read_all(chain, &ch, &cl) != 0) ||
	    (certs && read_all(certs, &tab, &tl) != 0) ||
	    read_all(report ? report : quote ? quote : evidence, &rep, &rl) != 0)
		goto out;
	cfg.av_leaf = leaf;
	cfg.av_leaf_len = ll;
	cfg.av_chain = ch;
	cfg.av_chain_len = cl;
	if (policy != NULL && attest_policy_load(policy, &pol, why, sizeof(why)) != 0) {
		fprintf(stderr, "vtpmctl: policy: %s\n", why);
		goto out;
	}
	if (report != NULL) {
		maybe_hex(rep, &rl);
		rc = attest_snp_verify(&cfg, rep, rl, tab, tl, &c, why, sizeof(why));
	} else if (quote != NULL) {
		rc = attest_tdx_verify(&cfg, rep, rl, &c, why, sizeof(why));
	} else {
		rc = attest_evidence_verify(&cfg, rep, rl, rd, &c, why, sizeof(why));
	}
	if (rc == 0 && (rdhex != NULL || nek > 0) && evidence == NULL &&
	    sodium_memcmp(c.tee == ATTEST_TEE_TDX ? c.tdx.report_data : c.report_data, rd, 64) != 0) {
		rc = VTPM_E_BINDING;
		snprintf(why, sizeof(why), "report data does not match --report-data");
	}
	if (rc == VTPM_E_BINDING && nek > 0)
		snprintf(why, sizeof(why), "EK binding does not hold: the evidence's report data "
		    "is not SHA-512(\"vtpmd-ek-bind-v1\" || %s%s%s) of the given EK%s (another "
		    "guest's TPM, another EK set, or not made by vtpm-guest bind-ek)",
		    ek.ek_rsa_len ? "RSA EK SPKI" : "", ek.ek_rsa_len && ek.ek_ecc_len ? " || " : "",
		    ek.ek_ecc_len ? "ECC EK SPKI" : "", ek.ek_rsa_len && ek.ek_ecc_len ? "s" : "");
	if (rc != 0) {
		fprintf(stderr, "vtpmctl: verify-evidence: %s\n", why);
		goto out;
	}
	out = claims_json(&c, rdhex != NULL || nek > 0, nek > 0);
	if (nek > 0)
		json_object_object_add(out, "ek_binding", ek_json(&ek, rd));
	if (pol != NULL) {
		json_object *pj = json_object_new_object();

		rc = attest_policy_match(pol, &c, inst, sizeof(inst), &ae, why, sizeof(why));
		json_object_object_add(pj, "allowed", json_object_new_boolean(rc == 0));
		if (rc == 0) {
			json_object_object_add(pj, "instance", json_object_new_string(inst));
			json_object_object_add(pj, "auto_enrol", json_object_new_boolean(ae));
		} else {
			json_object_object_add(pj, "reason", json_object_new_string(why));
		}
		json_object_object_add(out, "policy", pj);
	}
	printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(out);
	if (pol != NULL && rc != 0) {
		fprintf(stderr, "vtpmctl: verify-evidence: authentic, but the policy refuses it: %s\n",
		    why);
		goto out;
	}
	ret = 0;
out:
	attest_policy_free(pol);
	free(rep);
	free(leaf);
	free(ch);
	free(tab);
	return ret;
}
