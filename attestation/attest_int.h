/*
 * attest_int.h: private to attestation/ (and its tests and fuzzers): the
 * parsers' intermediate forms, the X.509 helpers over OpenSSL, and the
 * PEM files compiled into the library. Not part of the public API.
 */
#ifndef VTPM_ATTEST_INT_H
#define VTPM_ATTEST_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "attest.h"

/* Writes a formatted reason into why and returns code. */
int attest_fail(char *why, size_t whylen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads a whole regular file of at most max bytes into a malloc'd buffer. */
int attest_read_file(const char *path, size_t max, uint8_t **out, size_t *len) VTPM_WUR;

/* ---- embedded PEM files (generated: $(BUILD)/gen/attest_embedded.c) ---- */

struct attest_embedded {
	const char *name;	/* "testchain/ark.pem", "amdroots/milan_ark.pem", ... */
	const char *pem;
};
extern const struct attest_embedded attest_embedded[];
/* The PEM text of an embedded file, or NULL. */
const char *attest_embedded_get(const char *name);

/* ---- X.509 (x509.c) ---------------------------------------------------- */

/* One certificate from DER or PEM bytes; NULL if it does not parse. */
X509 *x509_from_bytes(const uint8_t *buf, size_t len);
/* Every certificate of a PEM bundle (or one DER); NULL if none parses. */
STACK_OF(X509) *x509_bundle_from_bytes(const uint8_t *buf, size_t len);
X509 *x509_from_embedded(const char *name);
void x509_sha256(X509 *x, uint8_t out[32]);
/* The subject CN (or "?"), truncated to fit. */
void x509_cn(X509 *x, char *buf, size_t len);
int x509_is_self_signed(X509 *x);
/* Validity at cfg->av_now (or now) unless cfg->av_no_time_check. */
int x509_check_time(X509 *x, const char *role, const struct attest_verify_cfg *cfg,
    char *why, size_t whylen) VTPM_WUR;
/*
 * child is issued by issuer: names (and key identifiers) match, issuer is a
 * CA allowed to sign certificates, the signature verifies with issuer's key,
 * and uses sig_nid (NID_rsassaPss: PSS with SHA-384 and salt 48; or
 * NID_ecdsa_with_SHA256) when non-zero. Reasons name both roles.
 */
int x509_check_issued_by(X509 *child, const char *crole, X509 *issuer,
    const char *irole, int sig_nid, char *why, size_t whylen) VTPM_WUR;
/* The DER contents (OCTET STRING value) of the extension with this OID text. */
int x509_ext_by_oid(X509 *x, const char *oid, const uint8_t **data, size_t *len);

/* ---- caches (certcache.c): keyed by SHA-256 of exact bytes ------------- */

/*
 * The certificate parsed earlier from exactly these bytes (a new reference:
 * X509_free it), or NULL; key receives SHA-256 of the bytes for a later put.
 */
X509 *certcache_get(const uint8_t *buf, size_t len, uint8_t key[32]);
/* Remembers x (takes its own reference; x may be NULL: nothing happens). */
void certcache_put(const uint8_t key[32], X509 *x);
/* 1 if child's signature was verified with issuer's key before (same DERs). */
int certcache_verified(X509 *child, X509 *issuer);
/* Remembers that child's signature verifies with issuer's key. */
void certcache_note_verified(X509 *child, X509 *issuer);

/* AMD ARK pins (SHA-256 of the DER certificate). */
struct amd_ark_pin {
	const char *product;		/* "Milan", "Genoa", "Turin" */
	uint8_t	sha256[32];
};
extern const struct amd_ark_pin amd_ark_pins[3];
/* The pinned Intel SGX Root CA. */
extern const uint8_t intel_sgx_root_sha256[32];
/* SHA-256 of the embedded vtpmd TEST ARK (computed once from the PEM). */
int attest_test_ark_sha256(uint8_t out[32]) VTPM_WUR;

/* ---- SEV-SNP (snp.c) --------------------------------------------------- */

/* Parses the report layout only: no signature; fills c->snp and the common
 * claims (measurement, host_data, launch_id, report_data, debug). */
int snp_report_parse(const uint8_t *buf, size_t len, struct attest_claims *c,
    char *why, size_t whylen) VTPM_WUR;
/* Decodes a TCB_VERSION by layout. */
void snp_tcb_decode(const uint8_t raw[8], int turin, struct attest_snp_tcb *t);
/* Known GUIDs of the certificate table, RFC 4122 byte order. */
extern const uint8_t snp_guid_vcek[16], snp_guid_vlek[16], snp_guid_ask[16],
    snp_guid_ark[16];
/* Builds a certificate table from DER blobs (n entries of guid/data/len). */
struct snp_table_entry {
	const uint8_t *guid;
	const uint8_t *data;
	size_t	len;
};
int snp_cert_table_build(const struct snp_table_entry *e, size_t n,
    uint8_t *out, size_t cap, size_t *len) VTPM_WUR;

/* ---- TDX (tdx.c) -------------------------------------------------------- */

#define TDX_HEADER_LEN		48
#define TDX_BODY10_LEN		584
#define TDX_BODY15_LEN		648
#define TDX_QE_REPORT_LEN	384

/* A parsed quote; pointers go into the caller's buffer. */
struct tdx_quote {
	uint16_t version, att_key_type, body_type;
	uint32_t tee_type;
	const uint8_t *qe_vendor_id;	/* 16 */
	const uint8_t *body;		/* body_len bytes */
	size_t	body_len;
	size_t	signed_len;		/* header .. end of body */
	const uint8_t *sig;		/* 64: r || s big-endian */
	const uint8_t *ak;		/* 64: x || y */
	const uint8_t *qe_report;	/* 384 */
	const uint8_t *qe_sig;		/* 64 */
	const uint8_t *auth;		/* auth data */
	size_t	auth_len;
	const uint8_t *pck_chain;	/* PEM, may end with NUL bytes */
	size_t	pck_chain_len;
	size_t	trailing;		/* bytes after the signature data (ignored) */
};
int tdx_quote_parse(const uint8_t *buf, size_t len, struct tdx_quote *q,
    char *why, size_t whylen) VTPM_WUR;
/* Fills c->tdx and the common claims from a parsed quote body. */
void tdx_claims_from_body(const struct tdx_quote *q, struct attest_claims *c);

/* TDX REPORTDATA = SHA-512("vtpmd-tdx-launch-v1" || report_data || nonce). */
void attest_tdx_report_data(const uint8_t rd[64], const uint8_t nonce[32], uint8_t out[64]);

/* TDX collateral (tdx_collateral.c): updates c->flags and c->tdx statuses. */
int tdx_collateral_check(const struct attest_verify_cfg *cfg, const char *dir,
    const struct tdx_quote *q, STACK_OF(X509) *pck_chain, X509 *pck_leaf,
    struct attest_claims *c, char *why, size_t whylen) VTPM_WUR;
/* The raw bytes of the value of top-level key in a JSON object text. */
int json_raw_member(const uint8_t *buf, size_t len, const char *key,
    const uint8_t **val, size_t *vlen) VTPM_WUR;

/* ---- ECDSA helper (x509.c) ---------------------------------------------- */

/* Verifies a raw (r, s) signature over a digest with key. */
int ecdsa_verify_rs(EVP_PKEY *key, const uint8_t *digest, size_t dlen,
    const uint8_t *r, size_t rlen, const uint8_t *s, size_t slen, int little_endian);

#endif
