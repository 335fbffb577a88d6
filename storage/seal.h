/*
 * seal.h: sealing primitives of the vtpmd store (libsodium only).
 *
 * Three keys, three formats:
 *
 *   root key (KEK)   from a key provider (keyprov.h); opens the store.
 *   data key (DEK)   one per instance, random; kept in the instance record
 *                    only as a wrapped DEK ("VTK1", sealed by the KEK).
 *   sealed blob      ("VTB1") one TPM state blob of one instance, or its
 *                    endorsement record, sealed by that instance's DEK.
 *   key-check value  ("VKC1") in the store's meta record; tells a wrong root
 *                    key apart before anything is written.
 *
 * Byte layouts (all integers big-endian):
 *
 *   sealed blob, seal_blob_size(n) = 64 + n bytes:
 *     off  len
 *       0    4  magic "VTB1"
 *       4    1  type (enum seal_blob_type)
 *       5    1  reserved, 0
 *       6    2  reserved, 0
 *       8    8  generation (>= 1)
 *      16    8  kid of the root key that wraps the instance's DEK
 *      24   24  nonce (random)
 *      48    n  ciphertext
 *    48+n   16  tag
 *   AEAD = XChaCha20-Poly1305-IETF, key = DEK,
 *   AD = bytes 0..23 (magic..kid) || instance uuid (16) || "vtpmd-blob-v1".
 *   The nonce is an AEAD input and so is authenticated without being in AD.
 *   A blob therefore cannot be moved to another instance, swapped between
 *   the permanent and volatile slot, or replayed at another generation.
 *
 *   wrapped DEK, SEAL_WRAPPED_DEK_LEN = 88 bytes:
 *       0    4  magic "VTK1"
 *       4    8  kid of the KEK
 *      12    4  KEK version
 *      16   24  nonce (random)
 *      40   32  ciphertext of the DEK
 *      72   16  tag
 *   AEAD = XChaCha20-Poly1305-IETF, key = KEK,
 *   AD = bytes 0..15 (magic..version) || instance uuid || "vtpmd-dek-v1".
 *
 *   key-check value, SEAL_KCV_LEN = 64 bytes:
 *       0    4  magic "VKC1"
 *       4    8  kid of the KEK
 *      12    4  KEK version
 *      16   16  salt (random)
 *      32   32  BLAKE2b-256 keyed with the KEK over bytes 0..31 || "vtpmd-kcv-v1"
 *
 *   kid = first 8 bytes of BLAKE2b-256 keyed with the KEK over "vtpmd-kid-v1".
 *
 * Every function that can fail returns 0 or a negative VTPM_E_* code and is
 * warn_unused_result. Argument errors (NULL pointers, unknown type,
 * generation 0) return VTPM_E_INVAL. Outputs that may hold plaintext or key
 * bytes are zeroed on every failure. Nothing here logs.
 *
 * Call seal_init() once before the first use (keyprov_open() and
 * store_open_lmdb() do). All functions are thread-safe; none keeps state.
 */
#ifndef VTPM_SEAL_H
#define VTPM_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "vtpm_error.h"

#define SEAL_KEY_LEN		32
#define SEAL_KID_LEN		8
#define SEAL_UUID_LEN		16
#define SEAL_NONCE_LEN		24
#define SEAL_TAG_LEN		16
#define SEAL_BLOB_HDR_LEN	48	/* magic..nonce */
#define SEAL_BLOB_OVERHEAD	(SEAL_BLOB_HDR_LEN + SEAL_TAG_LEN)
#define SEAL_PLAIN_MAX		(1u << 20)	/* largest plaintext a blob may hold */
#define SEAL_WRAPPED_DEK_LEN	88
#define SEAL_KCV_LEN		64

enum seal_blob_type {
	SEAL_BLOB_PERMANENT = 1,	/* libtpms permanent state (NVChip) */
	SEAL_BLOB_VOLATILE  = 2,	/* libtpms volatile state of one launch */
	SEAL_BLOB_ENDORSEMENT = 3,	/* EK publics and certificates (docs/ENDORSEMENT.md) */
};

/* An endorsement blob is written once, at manufacture: always this generation. */
#define SEAL_ENDORSEMENT_GEN	1

/*
 * A root key (KEK). Always lives in sodium_malloc() memory: get one from
 * seal_kek_new() or keyprov_get_root(), never declare one on the stack.
 * Both return it read-only (sodium_mprotect_readonly); free it with
 * seal_kek_free().
 */
struct seal_kek {
	uint8_t		key[SEAL_KEY_LEN];
	uint8_t		kid[SEAL_KID_LEN];
	uint32_t	version;
};

/* What seal_blob_peek() reads from a blob's header without any key. */
struct seal_blob_info {
	uint8_t		type;
	uint64_t	generation;
	uint8_t		kid[SEAL_KID_LEN];
	size_t		plain_len;
};

/*
 * Initialises libsodium. Safe to call many times and from several threads.
 * Returns 0, or VTPM_E_CRYPTO if libsodium cannot start.
 */
int seal_init(void) VTPM_WUR;

/*
 * Creates a KEK from 32 key bytes: allocates it with sodium_malloc(),
 * copies key, sets version, derives the kid and makes it read-only.
 * The caller keeps ownership of key (wipe it). *out is owned by the caller
 * and freed with seal_kek_free().
 * Returns 0, VTPM_E_INVAL or VTPM_E_NOMEM.
 */
int seal_kek_new(const uint8_t key[SEAL_KEY_LEN], uint32_t version,
    struct seal_kek **out) VTPM_WUR;

/* Wipes and frees a KEK from seal_kek_new()/keyprov_get_root(). NULL is a no-op. */
void seal_kek_free(struct seal_kek *k);

/* Sets k->kid from k->key (see above). k must be writable. */
void seal_kek_derive_id(struct seal_kek *k);

/* Fills dek with a fresh random data key. dek should be sodium_malloc() memory. */
void seal_dek_generate(uint8_t dek[SEAL_KEY_LEN]);

/*
 * Size of a sealed blob holding plain_len bytes: plain_len + 64.
 * Returns 0 if plain_len > SEAL_PLAIN_MAX.
 */
size_t seal_blob_size(size_t plain_len);

/*
 * Seals pt[0..len) for instance uuid into out[0..cap) and sets *outlen to
 * seal_blob_size(len). kid names the KEK that wraps dek (informational,
 * authenticated). type is a seal_blob_type; gen >= 1 is the generation the
 * caller will record for this blob. pt and out must not overlap.
 *
 * Returns 0; VTPM_E_INVAL (bad argument, gen 0); VTPM_E_TOOBIG (len above
 * SEAL_PLAIN_MAX or cap too small); VTPM_E_CRYPTO.
 */
int seal_blob(const uint8_t dek[SEAL_KEY_LEN], const uint8_t kid[SEAL_KID_LEN],
    const uint8_t uuid[SEAL_UUID_LEN], uint8_t type, uint64_t gen,
    const uint8_t *pt, size_t len, uint8_t *out, size_t cap, size_t *outlen)
    VTPM_WUR;

/*
 * Opens a sealed blob (untrusted bytes) of instance uuid and type, which the
 * caller's records say is at generation expect_gen (>= 1). Checks in this
 * order, stopping at the first failure:
 *   1. layout: length >= 64, magic, reserved bytes zero, known type
 *      -> VTPM_E_FORMAT; plaintext larger than cap -> VTPM_E_TOOBIG;
 *   2. header type differs from type -> VTPM_E_AUTH (another slot's blob);
 *   3. the tag, which covers header, uuid and ciphertext -> VTPM_E_AUTH
 *      (tampered, another instance's blob, or another DEK);
 *   4. generation != expect_gen -> VTPM_E_ROLLBACK. Only reported for an
 *      authentic blob, so it always means a genuine stale or future blob.
 * On success out[0..*outlen) holds the plaintext. On any failure out[0..cap)
 * is zeroed and *outlen is 0. The kid is not compared (there is no expected
 * one here); seal_blob_peek() exposes it.
 * Returns 0, VTPM_E_INVAL, VTPM_E_FORMAT, VTPM_E_TOOBIG, VTPM_E_AUTH,
 * VTPM_E_ROLLBACK.
 */
int unseal_blob(const uint8_t dek[SEAL_KEY_LEN], const uint8_t uuid[SEAL_UUID_LEN],
    uint8_t type, uint64_t expect_gen, const uint8_t *sealed, size_t len,
    uint8_t *out, size_t cap, size_t *outlen)
    VTPM_WUR;

/*
 * Reads the header of a sealed blob without a key (for tools and for picking
 * the right key). Nothing in *info is authenticated until unseal_blob()
 * succeeds. Returns 0, VTPM_E_INVAL or VTPM_E_FORMAT (same layout checks as
 * unseal_blob() step 1).
 */
int seal_blob_peek(const uint8_t *sealed, size_t len, struct seal_blob_info *info)
    VTPM_WUR;

/*
 * Wraps an instance's DEK under the KEK, bound to uuid, into out (88 bytes).
 * Returns 0, VTPM_E_INVAL or VTPM_E_CRYPTO.
 */
int seal_dek_wrap(const struct seal_kek *kek, const uint8_t uuid[SEAL_UUID_LEN],
    const uint8_t dek[SEAL_KEY_LEN], uint8_t out[SEAL_WRAPPED_DEK_LEN])
    VTPM_WUR;

/*
 * Unwraps a wrapped DEK (untrusted bytes) of instance uuid into dek (should be
 * sodium_malloc() memory). Returns 0; VTPM_E_INVAL; VTPM_E_FORMAT (magic);
 * VTPM_E_WRONG_KEY (kid is not this KEK's); VTPM_E_AUTH (tag: tampered or
 * another instance's key). dek is zeroed on failure.
 */
int seal_dek_unwrap(const struct seal_kek *kek, const uint8_t uuid[SEAL_UUID_LEN],
    const uint8_t in[SEAL_WRAPPED_DEK_LEN], uint8_t dek[SEAL_KEY_LEN])
    VTPM_WUR;

/*
 * Reads the kid and KEK version of a wrapped DEK (untrusted bytes) without a
 * key, for status displays and for choosing a key. Not authenticated until
 * seal_dek_unwrap() succeeds. Either output may be NULL.
 * Returns 0, VTPM_E_INVAL or VTPM_E_FORMAT (magic).
 */
int seal_dek_peek(const uint8_t in[SEAL_WRAPPED_DEK_LEN], uint8_t kid[SEAL_KID_LEN],
    uint32_t *version) VTPM_WUR;

/*
 * Makes a key-check value for the KEK (to store in the meta record).
 * Returns 0 or VTPM_E_INVAL.
 */
int seal_kek_check_make(const struct seal_kek *kek, uint8_t out[SEAL_KCV_LEN])
    VTPM_WUR;

/*
 * Checks that a stored key-check value (untrusted bytes) was made with this
 * KEK. Returns 0; VTPM_E_INVAL; VTPM_E_FORMAT (magic); VTPM_E_WRONG_KEY (kid
 * differs: another root key); VTPM_E_AUTH (kid matches, MAC does not: the
 * record was altered).
 */
int seal_kek_check_verify(const struct seal_kek *kek, const uint8_t in[SEAL_KCV_LEN])
    VTPM_WUR;

/*
 * Reads the kid and KEK version of a key-check value (untrusted bytes)
 * without a key: which root key version a store expects. Not authenticated
 * until seal_kek_check_verify() succeeds. Either output may be NULL.
 * Returns 0, VTPM_E_INVAL or VTPM_E_FORMAT (magic).
 */
int seal_kek_check_peek(const uint8_t in[SEAL_KCV_LEN], uint8_t kid[SEAL_KID_LEN],
    uint32_t *version) VTPM_WUR;

#endif
