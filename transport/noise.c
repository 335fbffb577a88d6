/*
 * noise.c: Noise rev 34 handshakes NN, NK, IK, XX over 25519/ChaChaPoly/SHA256,
 * and the transport CipherState, written on libsodium primitives.
 * Trusts the caller's arguments and keys. Trusts nothing in a received
 * message: it is read through one cursor after its exact length is checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cursor.h"
#include "noise.h"

#define NOISE_NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * The four patterns (Noise spec §7.4, §7.5). "..." ends the pre-messages.
 *
 *   NN:              NK:              IK:                   XX:
 *     -> e             <- s             <- s                  -> e
 *     <- e, ee         ...              ...                   <- e, ee, s, es
 *                      -> e, es         -> e, es, s, ss       -> s, se
 *                      <- e, ee         <- e, ee, se
 *
 * The table spells the same tokens; noise_hs_write() and noise_hs_read()
 * walk a message's tokens one at a time. Messages alternate, initiator first.
 */
enum noise_token { TOK_END = 0, TOK_E, TOK_S, TOK_EE, TOK_ES, TOK_SE, TOK_SS };

#define NOISE_MAX_MSGS		3
#define NOISE_MAX_TOKENS	5	/* 4 tokens and TOK_END */

struct noise_pattern_def {
	const char	*pd_name;
	int		 pd_pre_resp_s;	/* pre-message "<- s" */
	int		 pd_init_s;	/* the initiator has a static key */
	int		 pd_resp_s;	/* the responder has a static key */
	size_t		 pd_nmsgs;
	uint8_t		 pd_msgs[NOISE_MAX_MSGS][NOISE_MAX_TOKENS];
};

static const struct noise_pattern_def noise_patterns[] = {
	[NOISE_NN] = { "NN", 0, 0, 0, 2, {
		{ TOK_E },				/* -> e */
		{ TOK_E, TOK_EE },			/* <- e, ee */
	} },
	[NOISE_NK] = { "NK", 1, 0, 1, 2, {		/* <- s */
		{ TOK_E, TOK_ES },			/* -> e, es */
		{ TOK_E, TOK_EE },			/* <- e, ee */
	} },
	[NOISE_IK] = { "IK", 1, 1, 1, 2, {		/* <- s */
		{ TOK_E, TOK_ES, TOK_S, TOK_SS },	/* -> e, es, s, ss */
		{ TOK_E, TOK_EE, TOK_SE },		/* <- e, ee, se */
	} },
	[NOISE_XX] = { "XX", 0, 1, 1, 3, {
		{ TOK_E },				/* -> e */
		{ TOK_E, TOK_EE, TOK_S, TOK_ES },	/* <- e, ee, s, es */
		{ TOK_S, TOK_SE },			/* -> s, se */
	} },
};

enum noise_hs_state { HS_RUNNING = 0, HS_DONE, HS_SPLIT, HS_DEAD };

struct noise_hs {
	const struct noise_pattern_def *hs_def;
	int		 hs_initiator;
	int		 hs_state;		/* enum noise_hs_state */
	size_t		 hs_msg;		/* index of the next message */

	/* SymmetricState */
	struct noise_cipher hs_cs;
	uint8_t		 hs_ck[NOISE_HASH_LEN];
	uint8_t		 hs_h[NOISE_HASH_LEN];

	/* s, e, rs, re */
	uint8_t		 hs_s[NOISE_KEY_LEN];
	uint8_t		 hs_s_pub[NOISE_KEY_LEN];
	uint8_t		 hs_e[NOISE_KEY_LEN];
	uint8_t		 hs_e_pub[NOISE_KEY_LEN];
	uint8_t		 hs_rs[NOISE_KEY_LEN];
	uint8_t		 hs_re[NOISE_KEY_LEN];
	int		 hs_has_s, hs_has_e, hs_has_rs, hs_has_re;
};

/* A valid, never dereferenced-for-writing pointer for zero-length data. */
static const uint8_t noise_empty[1];

/* ---------------------------------------------------------------------------
 * CipherState: ChaCha20-Poly1305 IETF, nonce = 4 zero bytes || LE64(n).
 */

static void
noise_nonce(uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES], uint64_t n)
{
	size_t i;

	memset(nonce, 0, 4);
	for (i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

/* ENCRYPT(k, n++, ad, pt) into out (len + 16 bytes). */
static int
noise_cipher_seal(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *pt, size_t len, uint8_t *out)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
	unsigned long long clen;

	if (c->n == UINT64_MAX)		/* reserved: the cipher is used up */
		return VTPM_E_CRYPTO;
	noise_nonce(nonce, c->n);
	if (crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen,
	    len > 0 ? pt : noise_empty, len, adlen > 0 ? ad : noise_empty, adlen,
	    NULL, nonce, c->k) != 0 || clen != len + NOISE_TAG_LEN) {
		sodium_memzero(out, len + NOISE_TAG_LEN);
		return VTPM_E_CRYPTO;
	}
	c->n++;
	return 0;
}

/* DECRYPT(k, n, ad, ct) into out (len - 16 bytes); n++ only if the tag verifies. */
static int
noise_cipher_open(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *ct, size_t len, uint8_t *out)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
	uint8_t scratch[1];
	unsigned long long mlen;

	if (len < NOISE_TAG_LEN)
		return VTPM_E_SHORT;
	if (c->n == UINT64_MAX)
		return VTPM_E_CRYPTO;
	noise_nonce(nonce, c->n);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(
	    len > NOISE_TAG_LEN ? out : scratch, &mlen, NULL, ct, len,
	    adlen > 0 ? ad : noise_empty, adlen, nonce, c->k) != 0 ||
	    mlen != len - NOISE_TAG_LEN) {
		if (len > NOISE_TAG_LEN)
			sodium_memzero(out, len - NOISE_TAG_LEN);
		return VTPM_E_AUTH;
	}
	c->n++;
	return 0;
}

int
noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *pt, size_t len, uint8_t *out)
{
	if (c == NULL || out == NULL || (pt == NULL && len > 0) ||
	    (ad == NULL && adlen > 0) || !c->has_key)
		return VTPM_E_INVAL;
	if (len > NOISE_MAX_MSG - NOISE_TAG_LEN)
		return VTPM_E_TOOBIG;
	return noise_cipher_seal(c, ad, adlen, pt, len, out);
}

int
noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *ct, size_t len, uint8_t *out)
{
	if (c == NULL || ct == NULL || (out == NULL && len > NOISE_TAG_LEN) ||
	    (ad == NULL && adlen > 0) || !c->has_key)
		return VTPM_E_INVAL;
	if (len > NOISE_MAX_MSG)
		return VTPM_E_TOOBIG;
	return noise_cipher_open(c, ad, adlen, ct, len, out);
}

void
noise_cipher_wipe(struct noise_cipher *c)
{
	if (c != NULL)
		sodium_memzero(c, sizeof(*c));
}

/* ---------------------------------------------------------------------------
 * DH, HASH, HKDF.
 */

void
noise_pubkey_from_priv(const uint8_t priv[32], uint8_t pub[32])
{
	/* Cannot fail: the clamped scalar never maps the base point to 0. */
	if (crypto_scalarmult_curve25519_base(pub, priv) != 0)
		abort();
}

void
noise_keypair_generate(uint8_t priv[32], uint8_t pub[32])
{
	/* Without a working RNG there is no safe key to return. */
	if (sodium_init() < 0)
		abort();
	randombytes_buf(priv, NOISE_KEY_LEN);
	noise_pubkey_from_priv(priv, pub);
}

/* DH(priv, pub); an all-zero result (low-order pub) is an error. */
static int
noise_dh(uint8_t out[32], const uint8_t priv[32], const uint8_t pub[32])
{
	if (crypto_scalarmult_curve25519(out, priv, pub) != 0) {
		sodium_memzero(out, NOISE_KEY_LEN);
		return VTPM_E_CRYPTO;
	}
	return 0;
}

/* HMAC-SHA256(key, a || b). */
static int
noise_hmac(uint8_t out[NOISE_HASH_LEN], const uint8_t key[NOISE_HASH_LEN],
    const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	crypto_auth_hmacsha256_state st;
	int rc = 0;

	if (crypto_auth_hmacsha256_init(&st, key, NOISE_HASH_LEN) != 0 ||
	    (alen > 0 && crypto_auth_hmacsha256_update(&st, a, alen) != 0) ||
	    (blen > 0 && crypto_auth_hmacsha256_update(&st, b, blen) != 0) ||
	    crypto_auth_hmacsha256_final(&st, out) != 0)
		rc = VTPM_E_CRYPTO;
	sodium_memzero(&st, sizeof(st));
	return rc;
}

/* HKDF(chaining_key, input_key_material, 2) of spec §4.3. */
static int
noise_hkdf2(const uint8_t ck[NOISE_HASH_LEN], const uint8_t *ikm, size_t ikmlen,
    uint8_t out1[NOISE_HASH_LEN], uint8_t out2[NOISE_HASH_LEN])
{
	static const uint8_t one = 0x01, two = 0x02;
	uint8_t tk[NOISE_HASH_LEN];
	int rc;

	rc = noise_hmac(tk, ck, ikm, ikmlen, NULL, 0);
	if (rc == 0)
		rc = noise_hmac(out1, tk, &one, 1, NULL, 0);
	if (rc == 0)
		rc = noise_hmac(out2, tk, out1, NOISE_HASH_LEN, &two, 1);
	sodium_memzero(tk, sizeof(tk));
	return rc;
}

/* ---------------------------------------------------------------------------
 * SymmetricState.
 */

/* MixHash(data): h = HASH(h || data). */
static int
noise_mix_hash(struct noise_hs *hs, const uint8_t *data, size_t len)
{
	crypto_hash_sha256_state st;
	int rc = 0;

	if (crypto_hash_sha256_init(&st) != 0 ||
	    crypto_hash_sha256_update(&st, hs->hs_h, NOISE_HASH_LEN) != 0 ||
	    (len > 0 && crypto_hash_sha256_update(&st, data, len) != 0) ||
	    crypto_hash_sha256_final(&st, hs->hs_h) != 0)
		rc = VTPM_E_CRYPTO;
	sodium_memzero(&st, sizeof(st));
	return rc;
}

/* MixKey(ikm): ck, temp_k = HKDF(ck, ikm, 2); InitializeKey(temp_k). */
static int
noise_mix_key(struct noise_hs *hs, const uint8_t ikm[NOISE_KEY_LEN])
{
	uint8_t ck[NOISE_HASH_LEN], k[NOISE_HASH_LEN];
	int rc;

	rc = noise_hkdf2(hs->hs_ck, ikm, NOISE_KEY_LEN, ck, k);
	if (rc == 0) {
		memcpy(hs->hs_ck, ck, NOISE_HASH_LEN);
		memcpy(hs->hs_cs.k, k, NOISE_KEY_LEN);
		hs->hs_cs.n = 0;
		hs->hs_cs.has_key = 1;
	}
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(k, sizeof(k));
	return rc;
}

/* EncryptAndHash(pt): out = EncryptWithAd(h, pt); MixHash(out). */
static int
noise_encrypt_and_hash(struct noise_hs *hs, const uint8_t *pt, size_t len,
    uint8_t *out)
{
	size_t outlen = len;
	int rc = 0;

	if (hs->hs_cs.has_key) {
		rc = noise_cipher_seal(&hs->hs_cs, hs->hs_h, NOISE_HASH_LEN,
		    pt, len, out);
		outlen += NOISE_TAG_LEN;
	} else if (len > 0)
		memcpy(out, pt, len);
	if (rc == 0)
		rc = noise_mix_hash(hs, out, outlen);
	return rc;
}

/* DecryptAndHash(ct): out = DecryptWithAd(h, ct); MixHash(ct). */
static int
noise_decrypt_and_hash(struct noise_hs *hs, const uint8_t *ct, size_t len,
    uint8_t *out)
{
	int rc = 0;

	if (hs->hs_cs.has_key)
		rc = noise_cipher_open(&hs->hs_cs, hs->hs_h, NOISE_HASH_LEN,
		    ct, len, out);
	else if (len > 0)
		memcpy(out, ct, len);
	if (rc == 0)
		rc = noise_mix_hash(hs, ct, len);
	return rc;
}

/* ---------------------------------------------------------------------------
 * HandshakeState.
 */

/*
 * A DH token, the same on both sides once "local" and "remote" are named:
 *	ee	DH(e, re)
 *	es	initiator DH(e, rs), responder DH(s, re)
 *	se	initiator DH(s, re), responder DH(e, rs)
 *	ss	DH(s, rs)
 * then MixKey(the result).
 */
static int
noise_mix_dh(struct noise_hs *hs, int tok)
{
	const uint8_t *priv, *pub;
	uint8_t dh[NOISE_KEY_LEN];
	int have, local_e, remote_e, rc;

	switch (tok) {
	case TOK_EE:
		local_e = 1;
		remote_e = 1;
		break;
	case TOK_ES:
		local_e = hs->hs_initiator;
		remote_e = !hs->hs_initiator;
		break;
	case TOK_SE:
		local_e = !hs->hs_initiator;
		remote_e = hs->hs_initiator;
		break;
	case TOK_SS:
		local_e = 0;
		remote_e = 0;
		break;
	default:
		return VTPM_E_PROTO;
	}
	priv = local_e ? hs->hs_e : hs->hs_s;
	pub = remote_e ? hs->hs_re : hs->hs_rs;
	have = (local_e ? hs->hs_has_e : hs->hs_has_s) &&
	    (remote_e ? hs->hs_has_re : hs->hs_has_rs);
	if (!have)
		return VTPM_E_PROTO;

	rc = noise_dh(dh, priv, pub);
	if (rc == 0)
		rc = noise_mix_key(hs, dh);
	sodium_memzero(dh, sizeof(dh));
	return rc;
}

/* Bytes the next message adds to its payload, from its tokens and key state. */
static size_t
noise_msg_overhead(const struct noise_hs *hs)
{
	const uint8_t *tok;
	size_t n = 0;
	int keyed = hs->hs_cs.has_key;

	for (tok = hs->hs_def->pd_msgs[hs->hs_msg]; *tok != TOK_END; tok++) {
		switch (*tok) {
		case TOK_E:
			n += NOISE_KEY_LEN;
			break;
		case TOK_S:
			n += NOISE_KEY_LEN + (keyed ? NOISE_TAG_LEN : 0);
			break;
		default:		/* every DH token ends in MixKey */
			keyed = 1;
			break;
		}
	}
	return n + (keyed ? NOISE_TAG_LEN : 0);
}

/* A failed handshake keeps nothing: wipe every key and refuse further use. */
static void
noise_hs_kill(struct noise_hs *hs)
{
	const struct noise_pattern_def *def = hs->hs_def;
	int initiator = hs->hs_initiator;

	sodium_memzero(hs, sizeof(*hs));
	hs->hs_def = def;
	hs->hs_initiator = initiator;
	hs->hs_state = HS_DEAD;
}

/* After a message: move on; after the last one only ck and h are needed. */
static void
noise_hs_advance(struct noise_hs *hs)
{
	if (++hs->hs_msg < hs->hs_def->pd_nmsgs)
		return;
	hs->hs_state = HS_DONE;
	sodium_memzero(hs->hs_s, sizeof(hs->hs_s));
	sodium_memzero(hs->hs_e, sizeof(hs->hs_e));
	hs->hs_has_s = 0;
	hs->hs_has_e = 0;
}

struct noise_hs *
noise_hs_new(enum noise_pattern p, int initiator, const uint8_t *prologue,
    size_t prologue_len, const uint8_t *s_priv, const uint8_t *rs_pub)
{
	const struct noise_pattern_def *def;
	struct noise_hs *hs;
	char name[64];
	int n, want_s, want_rs;

	if ((unsigned int)p >= NOISE_NITEMS(noise_patterns))
		return NULL;
	def = &noise_patterns[p];
	initiator = initiator != 0;
	want_s = initiator ? def->pd_init_s : def->pd_resp_s;
	want_rs = initiator && def->pd_pre_resp_s;
	if ((s_priv != NULL) != want_s || (rs_pub != NULL) != want_rs ||
	    (prologue == NULL && prologue_len > 0))
		return NULL;
	if (sodium_init() < 0)
		return NULL;
	if ((hs = sodium_malloc(sizeof(*hs))) == NULL)
		return NULL;
	memset(hs, 0, sizeof(*hs));
	hs->hs_def = def;
	hs->hs_initiator = initiator;
	hs->hs_state = HS_RUNNING;
	if (s_priv != NULL) {
		memcpy(hs->hs_s, s_priv, NOISE_KEY_LEN);
		noise_pubkey_from_priv(hs->hs_s, hs->hs_s_pub);
		hs->hs_has_s = 1;
	}
	if (rs_pub != NULL) {
		memcpy(hs->hs_rs, rs_pub, NOISE_KEY_LEN);
		hs->hs_has_rs = 1;
	}

	/* InitializeSymmetric(protocol_name): h = name padded or hashed; ck = h */
	n = snprintf(name, sizeof(name), "Noise_%s_25519_ChaChaPoly_SHA256",
	    def->pd_name);
	if (n < 0 || (size_t)n >= sizeof(name))
		goto fail;
	if ((size_t)n <= NOISE_HASH_LEN)
		memcpy(hs->hs_h, name, (size_t)n);	/* rest stays zero */
	else if (crypto_hash_sha256(hs->hs_h, (const uint8_t *)name,
	    (size_t)n) != 0)
		goto fail;
	memcpy(hs->hs_ck, hs->hs_h, NOISE_HASH_LEN);

	/* MixHash(prologue) */
	if (noise_mix_hash(hs, prologue, prologue_len) != 0)
		goto fail;

	/* pre-message "<- s": MixHash(the responder's static public key) */
	if (def->pd_pre_resp_s &&
	    noise_mix_hash(hs, initiator ? hs->hs_rs : hs->hs_s_pub,
	    NOISE_KEY_LEN) != 0)
		goto fail;
	return hs;

 fail:
	noise_hs_free(hs);
	return NULL;
}

void
noise_hs_free(struct noise_hs *hs)
{
	if (hs == NULL)
		return;
	sodium_memzero(hs, sizeof(*hs));
	sodium_free(hs);
}

int
noise_hs_set_ephemeral(struct noise_hs *hs, const uint8_t e_priv[32])
{
	if (hs == NULL || e_priv == NULL)
		return VTPM_E_INVAL;
	if (hs->hs_state != HS_RUNNING || hs->hs_has_e)
		return VTPM_E_PROTO;
	memcpy(hs->hs_e, e_priv, NOISE_KEY_LEN);
	noise_pubkey_from_priv(hs->hs_e, hs->hs_e_pub);
	hs->hs_has_e = 1;
	return 0;
}

int
noise_hs_is_done(const struct noise_hs *hs)
{
	return hs != NULL &&
	    (hs->hs_state == HS_DONE || hs->hs_state == HS_SPLIT);
}

int
noise_hs_my_turn(const struct noise_hs *hs)
{
	if (hs == NULL || hs->hs_state != HS_RUNNING)
		return 0;
	return (hs->hs_msg % 2 == 0) == (hs->hs_initiator != 0);
}

size_t
noise_hs_overhead(const struct noise_hs *hs)
{
	if (hs == NULL || hs->hs_state != HS_RUNNING)
		return 0;
	return noise_msg_overhead(hs);
}

int
noise_hs_write(struct noise_hs *hs, const uint8_t *payload, size_t plen,
    uint8_t *out, size_t cap, size_t *outlen)
{
	const uint8_t *tok;
	struct wbuf w;
	uint8_t *p;
	size_t need, n;
	int rc = 0;

	if (hs == NULL || out == NULL || outlen == NULL ||
	    (payload == NULL && plen > 0))
		return VTPM_E_INVAL;
	*outlen = 0;
	if (!noise_hs_my_turn(hs)) {
		rc = VTPM_E_PROTO;
		goto fail;
	}
	need = noise_msg_overhead(hs);
	if (plen > NOISE_MAX_MSG - need || need + plen > cap) {
		rc = VTPM_E_TOOBIG;		/* nothing changed yet */
		goto fail;
	}

	wbuf_init(&w, out, cap);
	for (tok = hs->hs_def->pd_msgs[hs->hs_msg];
	    *tok != TOK_END && rc == 0; tok++) {
		switch (*tok) {
		case TOK_E:
			/* e: e = GENERATE_KEYPAIR() unless fixed; write e.pub; MixHash(e.pub) */
			if (!hs->hs_has_e) {
				randombytes_buf(hs->hs_e, NOISE_KEY_LEN);
				noise_pubkey_from_priv(hs->hs_e, hs->hs_e_pub);
				hs->hs_has_e = 1;
			}
			wbuf_put_bytes(&w, hs->hs_e_pub, NOISE_KEY_LEN);
			rc = noise_mix_hash(hs, hs->hs_e_pub, NOISE_KEY_LEN);
			break;
		case TOK_S:
			/* s: write EncryptAndHash(s.pub) */
			n = NOISE_KEY_LEN + (hs->hs_cs.has_key ? NOISE_TAG_LEN : 0);
			if ((p = wbuf_reserve(&w, n)) == NULL || !hs->hs_has_s)
				rc = VTPM_E_PROTO;
			else
				rc = noise_encrypt_and_hash(hs, hs->hs_s_pub,
				    NOISE_KEY_LEN, p);
			break;
		default:
			/* ee, es, se, ss: MixKey(DH(...)) */
			rc = noise_mix_dh(hs, *tok);
			break;
		}
	}
	/* payload: write EncryptAndHash(payload) */
	if (rc == 0) {
		n = plen + (hs->hs_cs.has_key ? NOISE_TAG_LEN : 0);
		if ((p = wbuf_reserve(&w, n)) == NULL)
			rc = VTPM_E_PROTO;
		else
			rc = noise_encrypt_and_hash(hs, payload, plen, p);
	}
	if (rc == 0)
		rc = wbuf_end(&w, outlen);
	if (rc == 0 && *outlen != need + plen)
		rc = VTPM_E_PROTO;		/* the size rule broke: a bug */
	if (rc != 0) {
		noise_hs_kill(hs);
		goto fail;
	}
	noise_hs_advance(hs);
	return 0;

 fail:
	*outlen = 0;
	sodium_memzero(out, cap);
	return rc;
}

int
noise_hs_read(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    uint8_t *payload, size_t cap, size_t *plen)
{
	const uint8_t *tok, *p;
	struct cursor c;
	uint8_t scratch[1];
	size_t need, n, tag;
	int rc = 0;

	if (hs == NULL || plen == NULL || (msg == NULL && mlen > 0) ||
	    (payload == NULL && cap > 0))
		return VTPM_E_INVAL;
	*plen = 0;
	if (hs->hs_state != HS_RUNNING || noise_hs_my_turn(hs)) {
		rc = VTPM_E_PROTO;
		goto fail;
	}

	/* Exact size: the tokens' bytes, then payload (+ tag once keyed). */
	need = noise_msg_overhead(hs);
	if (mlen > NOISE_MAX_MSG)
		rc = VTPM_E_TOOBIG;
	else if (mlen < need)
		rc = VTPM_E_SHORT;
	else if (mlen - need > cap)
		rc = VTPM_E_TOOBIG;
	if (rc != 0)
		goto kill;

	cur_init(&c, msg, mlen);
	for (tok = hs->hs_def->pd_msgs[hs->hs_msg];
	    *tok != TOK_END && rc == 0; tok++) {
		switch (*tok) {
		case TOK_E:
			/* e: re = the next 32 bytes; MixHash(re) */
			if (hs->hs_has_re)
				rc = VTPM_E_PROTO;
			else if ((rc = cur_get_bytes(&c, hs->hs_re,
			    NOISE_KEY_LEN)) == 0) {
				hs->hs_has_re = 1;
				rc = noise_mix_hash(hs, hs->hs_re, NOISE_KEY_LEN);
			}
			break;
		case TOK_S:
			/* s: rs = DecryptAndHash(the next 32 bytes + tag if keyed) */
			n = NOISE_KEY_LEN + (hs->hs_cs.has_key ? NOISE_TAG_LEN : 0);
			if (hs->hs_has_rs)
				rc = VTPM_E_PROTO;
			else if ((rc = cur_get_ref(&c, &p, n)) == 0 &&
			    (rc = noise_decrypt_and_hash(hs, p, n,
			    hs->hs_rs)) == 0)
				hs->hs_has_rs = 1;
			break;
		default:
			/* ee, es, se, ss: MixKey(DH(...)) */
			rc = noise_mix_dh(hs, *tok);
			break;
		}
	}
	/* payload: DecryptAndHash(the rest) */
	if (rc == 0) {
		tag = hs->hs_cs.has_key ? NOISE_TAG_LEN : 0;
		n = cur_left(&c);
		if (n < tag || n - tag > cap)
			rc = VTPM_E_PROTO;	/* the size check above broke */
		else if ((rc = cur_get_ref(&c, &p, n)) == 0 &&
		    (rc = noise_decrypt_and_hash(hs, p, n,
		    n > tag ? payload : scratch)) == 0)
			*plen = n - tag;
	}
	if (rc == 0)
		rc = cur_end(&c);
	if (rc != 0)
		goto kill;
	noise_hs_advance(hs);
	return 0;

 kill:
	noise_hs_kill(hs);
 fail:
	*plen = 0;
	if (cap > 0)
		sodium_memzero(payload, cap);
	return rc;
}

int
noise_hs_split(struct noise_hs *hs, struct noise_cipher *send,
    struct noise_cipher *recv, uint8_t h[32])
{
	uint8_t k1[NOISE_KEY_LEN], k2[NOISE_KEY_LEN];
	int rc;

	if (hs == NULL || send == NULL || recv == NULL)
		return VTPM_E_INVAL;
	if (hs->hs_state != HS_DONE)
		return VTPM_E_PROTO;

	/* temp_k1, temp_k2 = HKDF(ck, zerolen, 2); c1 = temp_k1, c2 = temp_k2 */
	rc = noise_hkdf2(hs->hs_ck, NULL, 0, k1, k2);
	if (rc != 0) {
		noise_hs_kill(hs);
		goto out;
	}
	memcpy(send->k, hs->hs_initiator ? k1 : k2, NOISE_KEY_LEN);
	memcpy(recv->k, hs->hs_initiator ? k2 : k1, NOISE_KEY_LEN);
	send->n = recv->n = 0;
	send->has_key = recv->has_key = 1;
	if (h != NULL)
		memcpy(h, hs->hs_h, NOISE_HASH_LEN);

	/* The handshake's keys have done their work. */
	sodium_memzero(hs->hs_ck, sizeof(hs->hs_ck));
	sodium_memzero(&hs->hs_cs, sizeof(hs->hs_cs));
	hs->hs_state = HS_SPLIT;
 out:
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	return rc;
}

int
noise_hs_remote_static(const struct noise_hs *hs, uint8_t rs[32])
{
	if (hs == NULL || rs == NULL)
		return VTPM_E_INVAL;
	if (!hs->hs_has_rs || hs->hs_state == HS_DEAD)
		return VTPM_E_NOTFOUND;
	memcpy(rs, hs->hs_rs, NOISE_KEY_LEN);
	return 0;
}
