/*
 * noise.h: the Noise Protocol Framework (revision 34), handshake and transport
 * ciphers, for Noise_{NN,NK,IK,XX}_25519_ChaChaPoly_SHA256 only.
 *
 * Primitives are libsodium's: X25519 (crypto_scalarmult), ChaCha20-Poly1305
 * IETF with nonce = 4 zero bytes || LE64(n), SHA-256, and HKDF built on
 * HMAC-SHA-256. No PSK modes, no fallback, no rekey.
 *
 * Typical use (the initiator of XX; the responder mirrors it):
 *
 *	hs = noise_hs_new(NOISE_XX, 1, prologue, plen, my_priv, NULL);
 *	while (!noise_hs_is_done(hs))
 *		noise_hs_my_turn(hs) ? noise_hs_write(hs, ...) : noise_hs_read(hs, ...);
 *	noise_hs_remote_static(hs, peer_pub);	check it is the expected peer
 *	noise_hs_split(hs, &tx, &rx, h);	h is the channel-binding value
 *	noise_hs_free(hs);
 *	noise_cipher_encrypt(&tx, ...); noise_cipher_decrypt(&rx, ...);
 *
 * Errors are VTPM_E_* codes (vtpm_error.h). A handshake that fails for any
 * reason other than a caller's argument error (VTPM_E_INVAL, a too small
 * output buffer, a call out of turn) is dead: its secrets are wiped and every
 * later call returns VTPM_E_PROTO. Start a new one.
 *
 * Memory: the handshake state lives in sodium_malloc() memory and is wiped by
 * noise_hs_free(). A struct noise_cipher holds a live key and belongs to the
 * caller, who should keep it in sodium_malloc() memory too and must wipe it
 * with noise_cipher_wipe(). Nothing here is thread-safe per object; distinct
 * objects may be used from distinct threads. Buffers passed in and out must
 * not overlap unless a function says so.
 */
#ifndef VTPM_NOISE_H
#define VTPM_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "vtpm_error.h"

#define NOISE_KEY_LEN	32	/* X25519 private/public key, cipher key */
#define NOISE_HASH_LEN	32	/* SHA-256; also the handshake hash h */
#define NOISE_TAG_LEN	16	/* Poly1305 tag */
#define NOISE_MAX_MSG	65535	/* any Noise message, tag included */

enum noise_pattern { NOISE_NN, NOISE_NK, NOISE_IK, NOISE_XX };

/*
 * A CipherState: key k, nonce n, has_key. The transport ciphers come from
 * noise_hs_split(). n counts messages from 0; 2^64-1 is reserved, so a
 * cipher is used up after 2^64-1 messages (VTPM_E_CRYPTO from then on).
 */
struct noise_cipher {
	uint8_t		k[NOISE_KEY_LEN];
	uint64_t	n;
	int		has_key;
};

/* Opaque HandshakeState. */
struct noise_hs;

/*
 * Starts a handshake for "Noise_<pattern>_25519_ChaChaPoly_SHA256".
 *
 * initiator	1 for the side that writes the first message, 0 otherwise.
 * prologue	bytes both sides must agree on (may be NULL if prologue_len 0);
 *		copied into the handshake hash, not kept.
 * s_priv	our static private key (32 bytes), copied; or NULL.
 * rs_pub	the peer's static public key (32 bytes) known in advance; or NULL.
 *
 * The keys must be exactly the ones the pattern uses:
 *	NN	both sides: s_priv NULL, rs_pub NULL
 *	NK	initiator: rs_pub only;		responder: s_priv only
 *	IK	initiator: s_priv and rs_pub;	responder: s_priv only
 *	XX	both sides: s_priv only (learn the peer's with noise_hs_remote_static)
 * Returns NULL on a wrong key combination, an unknown pattern, a NULL
 * prologue with a length, libsodium initialisation failure or no memory.
 * Free with noise_hs_free().
 */
struct noise_hs *noise_hs_new(enum noise_pattern p, int initiator,
    const uint8_t *prologue, size_t prologue_len,
    const uint8_t *s_priv, const uint8_t *rs_pub) VTPM_WUR;

/* Wipes and frees hs. NULL is a no-op. */
void noise_hs_free(struct noise_hs *hs);

/*
 * Fixes our ephemeral private key instead of drawing a random one. For test
 * vectors only: reusing an ephemeral key destroys the handshake's security.
 * Must come before our "e" token is processed.
 * Errors: VTPM_E_INVAL (NULL), VTPM_E_PROTO (already set or used, or dead).
 */
int noise_hs_set_ephemeral(struct noise_hs *hs, const uint8_t e_priv[32]) VTPM_WUR;

/*
 * Bytes the next handshake message adds to its payload (keys and tags), so
 * the message is exactly noise_hs_overhead() + payload length. 0 if the
 * handshake is finished or dead.
 */
size_t noise_hs_overhead(const struct noise_hs *hs);

/*
 * Writes our next handshake message carrying payload (plen bytes; payload may
 * be NULL if plen is 0) into out (cap bytes) and sets *outlen. The payload is
 * encrypted once a key exists (from NK/IK's first and every later message);
 * before that (NN's and XX's first message) it travels in clear and is only
 * authenticated when the peer's next message verifies, so send nothing
 * secret there and act on nothing it says until then.
 * Errors: VTPM_E_INVAL (NULL arguments), VTPM_E_PROTO (not our turn, finished
 * or dead), VTPM_E_TOOBIG (message would exceed cap or NOISE_MAX_MSG; the
 * handshake is unchanged), VTPM_E_CRYPTO (a DH result was all-zero: the peer
 * sent a low-order key; the handshake is dead). On every error but
 * VTPM_E_INVAL, *outlen is 0 and out[0..cap) is zeroed.
 */
int noise_hs_write(struct noise_hs *hs, const uint8_t *payload, size_t plen,
    uint8_t *out, size_t cap, size_t *outlen) VTPM_WUR;

/*
 * Reads the peer's next handshake message msg (untrusted, mlen bytes) and
 * puts its payload in payload (cap bytes; may be NULL if cap is 0), its
 * length in *plen. The message must be exactly noise_hs_overhead() bytes of
 * keys and tags followed by the payload (and its tag, once keyed).
 * Errors: VTPM_E_INVAL (NULL arguments), VTPM_E_PROTO (not our turn, finished
 * or dead), VTPM_E_TOOBIG (mlen > NOISE_MAX_MSG or payload longer than cap),
 * VTPM_E_SHORT (message shorter than its tokens), VTPM_E_AUTH (a tag did not
 * verify: tampering, a wrong prologue or wrong keys), VTPM_E_CRYPTO (an
 * all-zero DH result). Every error except INVAL and PROTO kills the
 * handshake. On every error but VTPM_E_INVAL, *plen is 0 and payload[0..cap)
 * is zeroed: nothing unauthenticated is released.
 */
int noise_hs_read(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    uint8_t *payload, size_t cap, size_t *plen) VTPM_WUR;

/* 1 once every message of the pattern was written or read (also after split). */
int noise_hs_is_done(const struct noise_hs *hs);

/* 1 if the next step is noise_hs_write(), 0 if it is a read, or done, or dead. */
int noise_hs_my_turn(const struct noise_hs *hs);

/*
 * Split(): after the last message, derives the two transport ciphers.
 * The initiator gets (send=c1, recv=c2), the responder (send=c2, recv=c1).
 * h (may be NULL) receives the final handshake hash, the channel-binding
 * value both sides share. Allowed once; afterwards the handshake's keys are
 * wiped and only noise_hs_remote_static() and noise_hs_free() remain useful.
 * Errors: VTPM_E_INVAL (NULL send/recv), VTPM_E_PROTO (not finished, dead or
 * split already), VTPM_E_CRYPTO.
 */
int noise_hs_split(struct noise_hs *hs, struct noise_cipher *send,
    struct noise_cipher *recv, uint8_t h[32]) VTPM_WUR;

/*
 * Copies the peer's static public key: given to noise_hs_new(), or learnt
 * from a handshake message that verified. Authenticated once the message
 * carrying it was read without error; the caller decides whether it is the
 * right peer. Errors: VTPM_E_INVAL, VTPM_E_NOTFOUND (not known yet, or the
 * handshake is dead).
 */
int noise_hs_remote_static(const struct noise_hs *hs, uint8_t rs[32]) VTPM_WUR;

/* X25519 public key of priv (any 32 bytes; clamped as X25519 does). */
void noise_pubkey_from_priv(const uint8_t priv[32], uint8_t pub[32]);

/* A fresh random X25519 key pair. Aborts if libsodium cannot initialise. */
void noise_keypair_generate(uint8_t priv[32], uint8_t pub[32]);

/*
 * Transport encryption: out (len + 16 bytes) = ChaCha20-Poly1305(k, n, ad, pt),
 * then n++. out may be exactly pt (in place), not partially overlap it.
 * Errors: VTPM_E_INVAL (NULL, or cipher without a key), VTPM_E_TOOBIG
 * (len + 16 > NOISE_MAX_MSG), VTPM_E_CRYPTO (nonce exhausted).
 */
int noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *pt, size_t len, uint8_t *out) VTPM_WUR;

/*
 * Transport decryption of ct (untrusted, len >= 16 bytes) into out (len - 16
 * bytes). The tag is checked before any plaintext is released; n advances
 * only on success. out may be exactly ct, not partially overlap it.
 * Errors: VTPM_E_INVAL, VTPM_E_SHORT (len < 16), VTPM_E_TOOBIG
 * (len > NOISE_MAX_MSG), VTPM_E_CRYPTO (nonce exhausted), VTPM_E_AUTH (tag
 * mismatch: out is zeroed, n unchanged).
 */
int noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *ct, size_t len, uint8_t *out) VTPM_WUR;

/* Zeroes the key and the nonce. */
void noise_cipher_wipe(struct noise_cipher *c);

#endif
