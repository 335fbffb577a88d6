/*
 * attest.h: attestation evidence for the vtpmd channel, produced and verified.
 *
 * Each side of a channel sends one evidence envelope whose report data is
 * bound to the Noise handshake (attest_report_data()). A provider produces
 * evidence from the platform (configfs-tsm, /dev/sev-guest) or, for tests and
 * development only, the `sim` backend, which signs real-format SEV-SNP
 * reports with a published TEST chain (attestation/testchain/). A verifier
 * checks the envelope and returns the verified claims; a policy maps claims
 * to instance names. Identity and reset-versus-resume decisions are taken
 * only from claims returned by attest_evidence_verify().
 *
 * Envelope (all integers big-endian; docs/PROTOCOL.md section 4):
 *   "VTEV" | u8 version (1) | u8 tee | u16 0 | u32 report_len | report |
 *   u32 aux_len | aux
 *   tee 2 (SEV-SNP): report = the 1184-byte ATTESTATION_REPORT,
 *                    aux = the GHCB certificate table (may be empty)
 *   tee 3 (TDX):     report = the TD quote (v4 or v5),
 *                    aux = the 32-byte launch nonce (docs/ATTESTATION.md)
 *
 * Ownership: nothing returned here points into caller memory unless the
 * function says so. All functions are safe to call from several threads on
 * different objects; none keeps global mutable state. Library functions
 * return 0 or a negative VTPM_E_* code; where they take (why, whylen) they
 * write one line naming the reason for any failure (always NUL-terminated
 * when whylen > 0).
 */
#ifndef VTPM_ATTEST_H
#define VTPM_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "vtpm_error.h"

#define ATTEST_REPORT_DATA_LEN	64
#define ATTEST_MEASUREMENT_LEN	48
#define ATTEST_HOST_DATA_LEN	32
#define ATTEST_LAUNCH_ID_LEN	32
#define ATTEST_MAX_EVIDENCE	16384
#define ATTEST_SNP_REPORT_LEN	1184	/* 0x4A0 */
#define ATTEST_SNP_SIGNED_LEN	0x2A0	/* bytes covered by the report signature */
#define ATTEST_SNP_CHIP_ID_LEN	64
#define ATTEST_TDX_NONCE_LEN	32
#define ATTEST_WHY_LEN		256	/* a good size for why buffers */

enum attest_tee {
	/* 1 was the Ed25519 simulated format of version 0.1; no longer accepted. */
	ATTEST_TEE_SNP = 2,
	ATTEST_TEE_TDX = 3,
};

enum attest_role { ATTEST_ROLE_GUEST = 0, ATTEST_ROLE_VTPMD = 1 };

/* Who signed the evidence (attest_claims.signer). */
enum attest_signer {
	ATTEST_SIGNER_NONE = 0,
	ATTEST_SIGNER_VCEK = 1,		/* SNP: chip key, chain ASK -> ARK */
	ATTEST_SIGNER_VLEK = 2,		/* SNP: cloud-loaded key, chain ASVK -> ARK */
	ATTEST_SIGNER_PCK = 3,		/* TDX: quoting enclave, certified by the PCK */
};

/* An SEV-SNP TCB_VERSION, raw and decoded by the layout of its generation. */
struct attest_snp_tcb {
	uint8_t	raw[8];		/* as in the report (a little-endian u64) */
	uint8_t	fmc;		/* Turin layout only, else 0 */
	uint8_t	bootloader;
	uint8_t	tee;
	uint8_t	snp;
	uint8_t	microcode;
};

/* attest_claims.flags */
#define ATTEST_CF_TEST_ROOT	0x0001	/* chain ends at the vtpmd TEST ARK: proves nothing */
#define ATTEST_CF_NO_TIME_CHECK	0x0002	/* certificate validity periods were not checked */
#define ATTEST_CF_BOUND		0x0004	/* report data checked against this session */
#define ATTEST_CF_TURIN_LAYOUT	0x0008	/* SNP TCBs decoded with the Turin byte layout */
#define ATTEST_CF_MIGRATION_AGENT 0x0010 /* SNP: REPORT_ID_MA is set (a migration agent) */
#define ATTEST_CF_TDX_TCBINFO	0x0100	/* TDX: platform TCB evaluated against tcbInfo */
#define ATTEST_CF_TDX_TCBINFO_SIG 0x0200 /* TDX: tcbInfo signature verified */
#define ATTEST_CF_TDX_QEID	0x0400	/* TDX: QE report evaluated against QE identity */
#define ATTEST_CF_TDX_QEID_SIG	0x0800	/* TDX: QE identity signature verified */
#define ATTEST_CF_TDX_CRL	0x1000	/* TDX: PCK chain checked against CRLs */

/* TDX quote fields (all copied from the verified quote). */
struct attest_tdx_claims {
	uint16_t version;		/* quote version 4 or 5 */
	uint16_t body_type;		/* 2 = TDX 1.0 (584 bytes), 3 = TDX 1.5 (648) */
	uint8_t	tee_tcb_svn[16];
	uint8_t	mrseam[48];
	uint8_t	mrsignerseam[48];
	uint64_t seam_attributes;
	uint64_t td_attributes;		/* bit 0 DEBUG */
	uint64_t xfam;
	uint8_t	mrtd[48];
	uint8_t	mrconfigid[48];
	uint8_t	mrowner[48];
	uint8_t	mrownerconfig[48];
	uint8_t	rtmr[4][48];
	uint8_t	report_data[64];	/* REPORTDATA as in the quote */
	uint8_t	tee_tcb_svn2[16];	/* TDX 1.5 only */
	uint8_t	mrservicetd[48];	/* TDX 1.5 only */
	uint8_t	fmspc[6];		/* from the PCK certificate */
	int	have_fmspc;
	char	tcb_status[32];		/* from tcbInfo when evaluated, else "" */
	char	qe_status[32];		/* from QE identity when evaluated, else "" */
	char	not_checked[256];	/* what was not checked: "; "-separated */
};

/* SEV-SNP report fields (all copied from the verified report). */
struct attest_snp_claims {
	uint32_t version;		/* 2..5 */
	uint32_t guest_svn;
	uint64_t policy;		/* bit 19 DEBUG, 18 MIGRATE_MA, ... */
	uint8_t	family_id[16];
	uint8_t	image_id[16];
	uint32_t vmpl;
	uint32_t sig_algo;
	uint64_t platform_info;
	uint32_t key_info;
	uint8_t	id_key_digest[48];
	uint8_t	author_key_digest[48];
	uint8_t	report_id[32];
	uint8_t	report_id_ma[32];
	uint8_t	chip_id[ATTEST_SNP_CHIP_ID_LEN];
	struct attest_snp_tcb current_tcb, reported_tcb, committed_tcb, launch_tcb;
	uint8_t	cpuid_fam, cpuid_mod, cpuid_step;	/* version 3+; else 0 */
	uint8_t	current_build, current_minor, current_major;
	uint8_t	committed_build, committed_minor, committed_major;
	uint64_t launch_mit_vector, current_mit_vector;	/* version 5; else 0 */
	char	product[32];		/* productName of the VCEK/VLEK */
};

#define ATTEST_SNP_POLICY_MIGRATE_MA	(1ULL << 18)
#define ATTEST_SNP_POLICY_DEBUG		(1ULL << 19)
#define ATTEST_TDX_ATTR_DEBUG		(1ULL << 0)

/*
 * Claims a verifier vouches for. The first five fields are common to every
 * TEE and are what vtpmd keys identity on:
 *   measurement  SNP MEASUREMENT; TDX MRTD
 *   host_data    SNP HOST_DATA; TDX SHA-256("vtpmd-tdx-host-data-v1" ||
 *                MRCONFIGID || MROWNER || MROWNERCONFIG)
 *   launch_id    distinguishes launches: SNP REPORT_ID; TDX the launch nonce
 *                from the envelope (zero for a bare quote)
 *   report_data  after attest_evidence_verify(): the session binding value
 *                that was checked; after attest_snp_verify()/_tdx_verify():
 *                the raw REPORT_DATA field
 */
struct attest_claims {
	uint8_t	tee;				/* enum attest_tee */
	uint8_t	measurement[ATTEST_MEASUREMENT_LEN];
	uint8_t	host_data[ATTEST_HOST_DATA_LEN];
	uint8_t	launch_id[ATTEST_LAUNCH_ID_LEN];
	uint8_t	report_data[ATTEST_REPORT_DATA_LEN];
	uint32_t flags;				/* ATTEST_CF_* */
	uint8_t	signer;				/* enum attest_signer */
	char	anchor[48];			/* CN of the pinned root: "ARK-Milan", ... */
	int	debug;				/* SNP policy DEBUG / TDX attribute DEBUG */
	struct attest_snp_claims snp;		/* valid when tee == ATTEST_TEE_SNP */
	struct attest_tdx_claims tdx;		/* valid when tee == ATTEST_TEE_TDX */
};

/*
 * report_data = SHA-512("vtpmd-attest-v1" || role || h), role the ASCII
 * string "guest" or "vtpmd", h the 32-byte Noise handshake hash.
 */
void attest_report_data(enum attest_role role, const uint8_t h[32],
    uint8_t out[ATTEST_REPORT_DATA_LEN]);

/* ---- providers -------------------------------------------------------- */

struct attest_provider;

/*
 * For tests only: replaces mkdir(2)/rmdir(2) of configfs-tsm report entries so
 * that a fake tree of plain files can stand in for configfs (where the
 * kernel creates the attribute files). NULL in production.
 */
struct attest_tsm_ops {
	int	(*mkdir)(const char *path, unsigned int mode);
	int	(*rmdir)(const char *path);
};

/* Options for attest_provider_open(); zero means the default. */
struct attest_provider_opts {
	const char *ap_kind;		/* "auto" (default), "snp", "tdx", "sim" */
	const char *ap_tsm_dir;		/* default /sys/kernel/config/tsm/report */
	const char *ap_sev_guest;	/* default /dev/sev-guest */
	/*
	 * TDX: a file holding this launch's 32-byte nonce, created (mode 0600,
	 * O_EXCL) on first use. It must live on a file system that does not
	 * survive a reboot (/run). NULL: a fresh nonce per provider.
	 */
	const char *ap_launch_file;
	int	ap_privlevel;		/* SNP VMPL to request, 0..3 (default 0) */
	const struct attest_tsm_ops *ap_tsm_ops;	/* tests only, else NULL */
	/* sim only: the claims to sign */
	uint8_t	ap_sim_measurement[ATTEST_MEASUREMENT_LEN];
	uint8_t	ap_sim_host_data[ATTEST_HOST_DATA_LEN];
	uint8_t	ap_sim_launch_id[ATTEST_LAUNCH_ID_LEN];
};

/*
 * Opens a provider. "auto" probes configfs-tsm (provider sev_guest or
 * tdx_guest), then /dev/sev-guest; it never picks "sim". "snp" uses
 * configfs-tsm if it offers sev_guest, else /dev/sev-guest; "tdx" needs
 * configfs-tsm with tdx_guest. Nothing is requested from the platform yet.
 * Returns 0 and *out (free with attest_provider_free()); VTPM_E_UNSUPPORTED
 * (no such interface here), VTPM_E_INVAL (unknown kind), VTPM_E_IO,
 * VTPM_E_NOMEM, with the reason in why.
 */
int attest_provider_open(const struct attest_provider_opts *o,
    struct attest_provider **out, char *why, size_t whylen) VTPM_WUR;

/*
 * Simulated provider: real-format SEV-SNP version 3 reports for the given
 * claims (launch -> REPORT_ID), signed by the built-in TEST VCEK, the
 * certificate table carrying VCEK, ASK and ARK. For development and tests
 * only; verifiers refuse it unless av_allow_sim.
 */
int attest_provider_sim_new(const uint8_t meas[ATTEST_MEASUREMENT_LEN],
    const uint8_t host[ATTEST_HOST_DATA_LEN],
    const uint8_t launch[ATTEST_LAUNCH_ID_LEN],
    struct attest_provider **out) VTPM_WUR;
void attest_provider_free(struct attest_provider *p);
/* The tee of this provider's evidence (ATTEST_TEE_SNP for sim). */
int attest_provider_tee(const struct attest_provider *p);
/* A static description: "sim", "configfs-tsm (sev_guest)", "/dev/sev-guest", ... */
const char *attest_provider_name(const struct attest_provider *p);
/* The reason of the last failed attest_evidence_get(), or "". */
const char *attest_provider_error(const struct attest_provider *p);

/*
 * Produces an evidence envelope carrying report_data into out (cap bytes).
 * Returns 0 and sets *len; VTPM_E_TOOBIG (cap too small); VTPM_E_IO,
 * VTPM_E_BUSY (configfs-tsm generation race, or the host was busy),
 * VTPM_E_EVIDENCE (the platform refused), with attest_provider_error() set.
 */
int attest_evidence_get(struct attest_provider *p,
    const uint8_t report_data[ATTEST_REPORT_DATA_LEN],
    uint8_t *out, size_t cap, size_t *len) VTPM_WUR;

/*
 * As attest_evidence_get(), but report_data goes into the report or quote
 * unchanged: TDX REPORTDATA is not bound to the launch nonce (the envelope
 * still carries the nonce as aux). For verifiers that compare REPORT_DATA
 * with their own value, such as Trustee's (the kbs: key provider); vtpmd's
 * channel verifiers expect attest_evidence_get()'s form. SEV-SNP and sim
 * evidence are the same from both functions.
 */
int attest_evidence_get_raw(struct attest_provider *p,
    const uint8_t report_data[ATTEST_REPORT_DATA_LEN],
    uint8_t *out, size_t cap, size_t *len) VTPM_WUR;

/* ---- the sim platform (tests and development) ------------------------- */

/* What attest_sim_report() puts into a report. */
struct attest_sim_params {
	uint32_t sp_version;		/* 2, 3 or 5 (default 3) */
	uint64_t sp_policy;		/* default 0x30000: SMT allowed, reserved bit 17 */
	uint32_t sp_vmpl;
	int	sp_turin;		/* sign with the Turin-layout test VCEK */
	uint32_t sp_guest_svn;
	uint8_t	sp_measurement[ATTEST_MEASUREMENT_LEN];
	uint8_t	sp_host_data[ATTEST_HOST_DATA_LEN];
	uint8_t	sp_report_id[32];
	uint8_t	sp_report_id_ma[32];	/* default all 0xFF: no migration agent */
	uint8_t	sp_family_id[16];
	uint8_t	sp_image_id[16];
	uint8_t	sp_id_key_digest[48];
};
/* Fills defaults (zero claims). */
void attest_sim_params_init(struct attest_sim_params *sp);
/* A signed report; 0, or VTPM_E_CRYPTO / VTPM_E_INVAL (bad version). */
int attest_sim_report(const struct attest_sim_params *sp,
    const uint8_t report_data[ATTEST_REPORT_DATA_LEN],
    uint8_t report[ATTEST_SNP_REPORT_LEN]) VTPM_WUR;
/* The certificate table (VCEK, ASK, ARK in DER) for the test VCEK. */
int attest_sim_cert_table(int turin, uint8_t *out, size_t cap, size_t *len) VTPM_WUR;
/* A sim provider signing with these parameters (report data per request). */
int attest_provider_sim_params(const struct attest_sim_params *sp,
    struct attest_provider **out) VTPM_WUR;

/* ---- verification ------------------------------------------------------ */

/* What a verifier accepts. Zero-initialised means the strictest settings. */
struct attest_verify_cfg {
	/*
	 * Trust the vtpmd TEST ARK (attestation/testchain), i.e. `sim`
	 * evidence. Anyone can forge such evidence.
	 */
	int	av_allow_sim;
	/* Pinned measurements the peer must have; none pinned accepts any. */
	const uint8_t (*av_measurements)[ATTEST_MEASUREMENT_LEN];
	size_t	av_nmeasurements;
	int	av_no_time_check;	/* skip certificate validity periods */
	int64_t	av_now;			/* unix seconds to check validity at; 0 = now */
	int	av_allow_debug;		/* accept SNP policy DEBUG / TDX DEBUG */
	uint8_t	av_vmpl_mask;		/* SNP: bit n allows VMPL n; 0 = VMPL 0 only */
	/*
	 * Offline certificate cache (docs/ATTESTATION.md): SNP
	 * DIR/vcek/<CHIP_ID hex>-<REPORTED_TCB hex>.der or .pem, VLEKs in
	 * DIR/vlek/, PEM chains in DIR/chain/; TDX collateral in DIR/tdx/.
	 * Nothing is ever fetched.
	 */
	const char *av_cache_dir;
	/* SNP: an explicit VCEK/VLEK (DER or PEM) instead of table or cache. */
	const uint8_t *av_leaf;
	size_t	av_leaf_len;
	/* SNP: a PEM bundle of ASK/ASVK and ARK, any order. */
	const uint8_t *av_chain;
	size_t	av_chain_len;
	/* TDX: a directory with tcbInfo.json, qe_identity.json, CRLs (see docs). */
	const char *av_tdx_collateral_dir;
};

/*
 * Verifies an envelope from an untrusted peer: format; the TEE evidence
 * (attest_snp_verify() / attest_tdx_verify()); that its report data equals
 * expect_rd (this session); then the pinned measurements. On success fills
 * *claims (flags has ATTEST_CF_BOUND). On failure returns VTPM_E_FORMAT,
 * VTPM_E_TOOBIG, VTPM_E_EVIDENCE, VTPM_E_UNSUPPORTED (tee or trust anchor
 * not accepted), VTPM_E_BINDING or VTPM_E_POLICY and writes a one-line
 * reason into why; *claims is then zeroed.
 */
int attest_evidence_verify(const struct attest_verify_cfg *cfg,
    const uint8_t *ev, size_t len,
    const uint8_t expect_rd[ATTEST_REPORT_DATA_LEN],
    struct attest_claims *claims, char *why, size_t whylen) VTPM_WUR;

/*
 * Verifies a raw SEV-SNP report (versions 2..5) and, optionally, the
 * certificate table that came with it (table may be NULL). Checks, in this
 * order: layout and reserved fields; the VCEK/VLEK (cfg->av_leaf, else the
 * table, else the cache) and its chain to a pinned ARK (RSASSA-PSS SHA-384,
 * validity times unless av_no_time_check); hwID = CHIP_ID (VCEK); the SPL
 * extensions = REPORTED_TCB; the ECDSA P-384 signature over bytes
 * 0x000-0x29F; DEBUG and VMPL against cfg. No session binding.
 * Returns 0 and *claims, or VTPM_E_FORMAT / VTPM_E_EVIDENCE /
 * VTPM_E_UNSUPPORTED / VTPM_E_POLICY with the reason in why.
 */
int attest_snp_verify(const struct attest_verify_cfg *cfg,
    const uint8_t *report, size_t len, const uint8_t *table, size_t tlen,
    struct attest_claims *claims, char *why, size_t whylen) VTPM_WUR;

/*
 * Verifies a TDX quote (v4 or v5, ECDSA-P256 attestation key): the quote
 * signature by the attestation key, the QE report signature by the PCK
 * leaf, the QE report-data binding SHA-256(AK || auth data), the PCK chain
 * to the pinned Intel SGX Root CA; then the collateral in
 * cfg->av_tdx_collateral_dir or cfg->av_cache_dir/tdx when present. What
 * was and was not checked is in claims->flags and claims->tdx.not_checked.
 * Returns as attest_snp_verify().
 */
int attest_tdx_verify(const struct attest_verify_cfg *cfg,
    const uint8_t *quote, size_t len, struct attest_claims *claims,
    char *why, size_t whylen) VTPM_WUR;

/*
 * Parses a GHCB certificate table (24-byte entries {GUID, u32 offset,
 * u32 length} little-endian, ended by an all-zero entry; offsets from the
 * table start). Stores pointers into buf for the VCEK, VLEK, ASK, ARK.
 * Unknown GUIDs are skipped after their bounds are checked. Returns 0,
 * VTPM_E_FORMAT (with why) on any bounds, overlap or duplicate error.
 */
struct attest_cert_table {
	const uint8_t *vcek, *vlek, *ask, *ark;
	size_t	vcek_len, vlek_len, ask_len, ark_len;
	unsigned nentries;		/* entries before the terminator */
};
int attest_cert_table_parse(const uint8_t *buf, size_t len,
    struct attest_cert_table *t, char *why, size_t whylen) VTPM_WUR;

/* ---- policy (docs/POLICY.md) ------------------------------------------ */

struct attest_policy;

/*
 * Loads and checks a policy file. Returns 0 and *out (free with
 * attest_policy_free()); VTPM_E_IO (errno set), VTPM_E_TOOBIG (over 1 MiB),
 * VTPM_E_FORMAT with "FILE:LINE: reason" in why, VTPM_E_NOMEM.
 */
int attest_policy_load(const char *path, struct attest_policy **out,
    char *why, size_t whylen) VTPM_WUR;
/* The same from a buffer (name is used in messages). */
int attest_policy_parse(const char *name, const uint8_t *buf, size_t len,
    struct attest_policy **out, char *why, size_t whylen) VTPM_WUR;
void attest_policy_free(struct attest_policy *p);
/* Number of [instance] and [enrol] rules. */
size_t attest_policy_nrules(const struct attest_policy *p);

/*
 * Maps verified claims to an instance name. Instance rules are tried in
 * file order, then enrol rules. The first rule whose match keys all hold
 * decides: if its requirements (debug, vmpl, min-tcb, signer, migration
 * agent, ...) hold, returns 0 with the name in instance (cap >= 64) and
 * *auto_enrol 1 for an enrol rule (vtpmd may create the instance), else 0.
 * Returns VTPM_E_POLICY with why naming the claim ("measurement 11..11 is
 * not allowed by any rule", "TCB snp 2 below the minimum 8 of rule web");
 * VTPM_E_INVAL if cap is too small.
 */
int attest_policy_match(const struct attest_policy *p,
    const struct attest_claims *c, char *instance, size_t cap,
    int *auto_enrol, char *why, size_t whylen) VTPM_WUR;

/* ---- helpers ----------------------------------------------------------- */

/* Hex helpers shared by the command-line programs. */
int attest_hex_decode(const char *hex, uint8_t *out, size_t outlen) VTPM_WUR;
void attest_hex_encode(const uint8_t *in, size_t len, char *out /* 2*len+1 */);
/* "VCEK", "VLEK", "PCK" or "none". */
const char *attest_signer_name(int signer);

/* ---- EK binding (docs/ENDORSEMENT.md section 4; ekbind.c) ------------- */

#define ATTEST_EK_SPKI_MAX	600		/* DER SubjectPublicKeyInfo, RSA up to 4096 */
#define ATTEST_EK_FILE_MAX	(256 * 1024)	/* an EKPUB file */

/* A vTPM's EK public keys as DER SubjectPublicKeyInfo; length 0 = absent. */
struct attest_ek_keys {
	uint8_t	ek_rsa[ATTEST_EK_SPKI_MAX];
	size_t	ek_rsa_len;
	uint8_t	ek_ecc[ATTEST_EK_SPKI_MAX];
	size_t	ek_ecc_len;
};

/*
 * An EK's TPMT_PUBLIC (untrusted: as a TPM returned it) of the default
 * templates' shape, RSA-2048 (want_ecc 0) or ECC NIST P-256 (1), as DER
 * SubjectPublicKeyInfo into der[0..cap). Returns 0 and *dlen;
 * VTPM_E_FORMAT (malformed, or another type or size); VTPM_E_TOOBIG;
 * VTPM_E_CRYPTO.
 */
int attest_ek_spki_from_tpmt(const uint8_t *tpmt, size_t len, int want_ecc,
    uint8_t *der, size_t cap, size_t *dlen) VTPM_WUR;

/*
 * Adds the keys of an EKPUB file (untrusted) to k: PEM blocks PUBLIC KEY
 * (tpm2_createek -f pem) or CERTIFICATE, or DER certificates or public keys
 * back to back (tpm2_getekcertificate, tpm2_nvread). RSA keys fill
 * ek_rsa, EC keys ek_ecc; the same key twice is accepted, two different
 * ones of a kind are not. Certificates are not verified here (that is
 * openssl verify's job against `vtpmctl ca show`). Returns 0;
 * VTPM_E_FORMAT, VTPM_E_TRAILING, VTPM_E_TOOBIG, VTPM_E_NOMEM with why.
 */
int attest_ek_load(const uint8_t *buf, size_t len, struct attest_ek_keys *k,
    char *why, size_t whylen) VTPM_WUR;

/*
 * The report data binding a guest's evidence to its vTPM's EKs:
 * SHA-512("vtpmd-ek-bind-v1" || RSA EK SPKI || ECC EK SPKI), an absent key
 * contributing nothing.
 */
void attest_ek_bind_report_data(const struct attest_ek_keys *k,
    uint8_t rd[ATTEST_REPORT_DATA_LEN]);

#endif
