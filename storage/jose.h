/*
 * jose.h: the few JOSE pieces the Trustee KBS protocol needs (docs/KBS.md):
 * RFC 8785 canonical JSON, the RCAR runtime-data digest, a TEE key pair and
 * decryption of the resource JWE (RFC 7516 flattened JSON serialization).
 *
 * Only what Trustee (protocol 0.4.0) sends is accepted:
 *   alg  ECDH-ES+A256KW with an ephemeral P-256 "epk" in the protected header
 *        (Concat KDF, SHA-256, AlgorithmID "ECDH-ES+A256KW", apu/apv if
 *        present, keydatalen 256; AES-256 key wrap of the CEK), or
 *        RSA-OAEP-256 (OAEP with SHA-256 and MGF1-SHA-256);
 *   enc  A256GCM, 12-byte IV, 16-byte tag, AAD = the "protected" member
 *        exactly as received.
 * The JWE must carry exactly the members protected, encrypted_key, iv,
 * ciphertext and tag (no "aad", no unprotected headers, no "zip", no
 * "crit"). Everything the broker sends is untrusted; the tag is verified
 * before any plaintext is released, and the output is zeroed on failure.
 *
 * Secrets: the TEE private key lives in OpenSSL's EVP_PKEY (freed with
 * cleansing); the shared secret, KDF output and CEK in sodium_malloc()
 * memory, wiped before return. Nothing here logs; failures carry a one-line
 * reason in the caller's "why" buffer. Functions return 0 or a negative
 * VTPM_E_* code. Thread-safe (no shared state).
 */
#ifndef VTPM_JOSE_H
#define VTPM_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "vtpm_error.h"

#define JOSE_DIGEST_LEN		48	/* SHA-384 of the runtime data */
#define JOSE_REPORT_DATA_LEN	64	/* SNP/TDX report data: digest || 0x00 * 16 */
#define JOSE_PLAIN_MAX		65536	/* largest JWE plaintext accepted */

enum jose_key_type {
	JOSE_KEY_EC_P256	= 1,	/* alg ECDH-ES+A256KW (default) */
	JOSE_KEY_RSA_OAEP_256	= 2,	/* alg RSA-OAEP-256, 3072-bit modulus */
};

struct jose_tee_key;	/* opaque */

/*
 * Generates a fresh TEE key pair of the given type. *out is owned by the
 * caller (jose_tee_key_free()). Returns 0, VTPM_E_INVAL or VTPM_E_CRYPTO.
 */
int jose_tee_key_new(enum jose_key_type type, struct jose_tee_key **out) VTPM_WUR;

/*
 * Test helpers: a P-256 key from its 32-byte private scalar (big-endian), or
 * an EC P-256 / RSA private key from PEM. Returns 0, VTPM_E_INVAL,
 * VTPM_E_FORMAT (not a usable key) or VTPM_E_CRYPTO.
 */
int jose_tee_key_from_ec_d(const uint8_t d[32], struct jose_tee_key **out) VTPM_WUR;
int jose_tee_key_from_pem(const char *pem, size_t len, struct jose_tee_key **out) VTPM_WUR;

/* Frees a key (OpenSSL cleanses it). NULL is a no-op. */
void jose_tee_key_free(struct jose_tee_key *k);

/*
 * The public JWK sent as runtime-data "tee-pubkey":
 *   {"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":b64url,"y":b64url}
 *   {"kty":"RSA","alg":"RSA-OAEP-256","n":b64url,"e":b64url}
 * Coordinates are left-padded to 32 bytes. *out is a new json-c object owned
 * by the caller (json_object_put()). Returns 0, VTPM_E_NOMEM or VTPM_E_CRYPTO.
 */
int jose_tee_key_jwk(const struct jose_tee_key *k, json_object **out) VTPM_WUR;

/*
 * RFC 8785 (JCS) serialization of v: object members sorted by their UTF-16
 * code units, no whitespace, ECMAScript string escaping. Supported values:
 * objects, arrays, strings (valid UTF-8), booleans, null and integers with
 * |n| <= 2^53; a double is VTPM_E_UNSUPPORTED. *out is malloc()ed and
 * NUL-terminated; *outlen excludes the NUL. Returns 0, VTPM_E_INVAL,
 * VTPM_E_FORMAT (invalid UTF-8), VTPM_E_UNSUPPORTED, VTPM_E_NOMEM.
 */
int jose_jcs(json_object *v, char **out, size_t *outlen) VTPM_WUR;

/*
 * The RCAR binding (Trustee backend.rs / guest-components rcar_client.rs):
 *   digest = SHA-384(JCS({"additional-evidence": additional,
 *                         "nonce": nonce, "tee-pubkey": tee_pubkey}))
 * and report_data = digest || 0x00 * 16. Either output may be NULL.
 * Returns 0 or the codes of jose_jcs().
 */
int jose_runtime_data_digest(const char *nonce, json_object *tee_pubkey,
    const char *additional, uint8_t digest[JOSE_DIGEST_LEN],
    uint8_t report_data[JOSE_REPORT_DATA_LEN]) VTPM_WUR;

/*
 * Decrypts a flattened-JSON JWE (untrusted bytes jwe[0..len)) addressed to
 * key into out[0..cap) (use sodium_malloc() memory for secrets) and sets
 * *outlen. On failure out[0..cap) is zeroed, *outlen is 0 and why holds a
 * one-line reason (never key material).
 * Returns 0; VTPM_E_INVAL (arguments); VTPM_E_FORMAT (not JSON, missing or
 * extra members, bad base64url, wrong sizes); VTPM_E_UNSUPPORTED (alg or enc
 * not accepted, "zip", "crit"); VTPM_E_TOOBIG (plaintext above cap or
 * JOSE_PLAIN_MAX); VTPM_E_AUTH (key unwrap or GCM tag failed: tampered, or
 * not for this key); VTPM_E_CRYPTO; VTPM_E_NOMEM.
 */
int jose_jwe_decrypt(const struct jose_tee_key *key, const char *jwe, size_t len,
    uint8_t *out, size_t cap, size_t *outlen, char *why, size_t whylen) VTPM_WUR;

/*
 * base64url without padding (RFC 7515 section 2), strict: no padding, no
 * whitespace, no trailing bits. Decodes in[0..inlen) into out[0..cap).
 * Returns 0, VTPM_E_FORMAT or VTPM_E_TOOBIG.
 */
int jose_b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t cap,
    size_t *outlen) VTPM_WUR;

#endif
