/*
 * seal.c: sealed blobs, wrapped data keys and the key-check value (seal.h).
 * Trusts its keys and the caller's expectations (uuid, type, generation);
 * trusts nothing in sealed, wrapped or stored bytes: layout first, tag next,
 * and only an authentic blob's generation is compared.
 */
#include <string.h>

#include <sodium.h>

#include "cursor.h"
#include "seal.h"

#define SEAL_BLOB_MAGIC		"VTB1"
#define SEAL_DEK_MAGIC		"VTK1"
#define SEAL_KCV_MAGIC		"VKC1"
#define SEAL_KID_LABEL		"vtpmd-kid-v1"
#define SEAL_BLOB_LABEL		"vtpmd-blob-v1"
#define SEAL_DEK_LABEL		"vtpmd-dek-v1"
#define SEAL_KCV_LABEL		"vtpmd-kcv-v1"

#define SEAL_BLOB_AD_HDR	24	/* magic..kid: the header part in AD */
#define SEAL_DEK_HDR_LEN	16	/* magic|kid|version */
#define SEAL_KCV_SALT_LEN	16
#define SEAL_KCV_MAC_OFF	32
#define SEAL_KCV_MAC_LEN	32

/* AD = header part || uuid || label; the largest label is 13 bytes. */
#define SEAL_AD_MAX		(SEAL_BLOB_AD_HDR + SEAL_UUID_LEN + 16)

_Static_assert(SEAL_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(SEAL_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce size");
_Static_assert(SEAL_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(SEAL_WRAPPED_DEK_LEN ==
    SEAL_DEK_HDR_LEN + SEAL_NONCE_LEN + SEAL_KEY_LEN + SEAL_TAG_LEN, "wrapped DEK size");
_Static_assert(SEAL_KCV_LEN == SEAL_KCV_MAC_OFF + SEAL_KCV_MAC_LEN, "kcv size");

int
seal_init(void)
{
	return sodium_init() < 0 ? VTPM_E_CRYPTO : 0;
}

void
seal_kek_derive_id(struct seal_kek *k)
{
	uint8_t h[crypto_generichash_BYTES];

	crypto_generichash(h, sizeof(h), (const uint8_t *)SEAL_KID_LABEL,
	    sizeof(SEAL_KID_LABEL) - 1, k->key, sizeof(k->key));
	memcpy(k->kid, h, SEAL_KID_LEN);
	sodium_memzero(h, sizeof(h));
}

int
seal_kek_new(const uint8_t key[SEAL_KEY_LEN], uint32_t version, struct seal_kek **out)
{
	struct seal_kek *k;

	if (out == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	if (key == NULL)
		return VTPM_E_INVAL;
	if (seal_init() != 0)
		return VTPM_E_CRYPTO;
	if ((k = sodium_malloc(sizeof(*k))) == NULL)
		return VTPM_E_NOMEM;
	memcpy(k->key, key, SEAL_KEY_LEN);
	k->version = version;
	seal_kek_derive_id(k);
	sodium_mprotect_readonly(k);
	*out = k;
	return 0;
}

void
seal_kek_free(struct seal_kek *k)
{
	if (k != NULL)
		sodium_free(k);	/* makes it writable, wipes, unmaps */
}

void
seal_dek_generate(uint8_t dek[SEAL_KEY_LEN])
{
	crypto_aead_xchacha20poly1305_ietf_keygen(dek);
}

size_t
seal_blob_size(size_t plain_len)
{
	if (plain_len > SEAL_PLAIN_MAX)
		return 0;
	return plain_len + SEAL_BLOB_OVERHEAD;
}

static int
seal_type_valid(uint8_t type)
{
	return type == SEAL_BLOB_PERMANENT || type == SEAL_BLOB_VOLATILE ||
	    type == SEAL_BLOB_ENDORSEMENT;
}

/* ad = hdr[0..hdrlen) || uuid || label; returns its length. */
static size_t
seal_ad_build(uint8_t ad[SEAL_AD_MAX], const uint8_t *hdr, size_t hdrlen,
    const uint8_t uuid[SEAL_UUID_LEN], const char *label)
{
	size_t llen = strlen(label);

	memcpy(ad, hdr, hdrlen);
	memcpy(ad + hdrlen, uuid, SEAL_UUID_LEN);
	memcpy(ad + hdrlen + SEAL_UUID_LEN, label, llen);
	return hdrlen + SEAL_UUID_LEN + llen;
}

/*
 * The header grammar, shared by unseal_blob() and seal_blob_peek():
 * magic(4) type(1) 0(1) 0(2) gen(8) kid(8) nonce(24) body(>= 16).
 */
static int
seal_blob_parse(const uint8_t *sealed, size_t len, struct seal_blob_info *info,
    const uint8_t **nonce)
{
	struct cursor c;
	const uint8_t *magic;
	uint8_t r8;
	uint16_t r16;

	if (len < SEAL_BLOB_OVERHEAD || len - SEAL_BLOB_OVERHEAD > SEAL_PLAIN_MAX)
		return VTPM_E_FORMAT;
	cur_init(&c, sealed, SEAL_BLOB_HDR_LEN);
	if (cur_get_ref(&c, &magic, 4) != 0 ||
	    cur_get_u8(&c, &info->type) != 0 ||
	    cur_get_u8(&c, &r8) != 0 ||
	    cur_get_u16(&c, &r16) != 0 ||
	    cur_get_u64(&c, &info->generation) != 0 ||
	    cur_get_bytes(&c, info->kid, SEAL_KID_LEN) != 0 ||
	    cur_get_ref(&c, nonce, SEAL_NONCE_LEN) != 0 ||
	    cur_end(&c) != 0)
		return VTPM_E_FORMAT;
	if (memcmp(magic, SEAL_BLOB_MAGIC, 4) != 0 || r8 != 0 || r16 != 0 ||
	    !seal_type_valid(info->type) || info->generation == 0)
		return VTPM_E_FORMAT;
	info->plain_len = len - SEAL_BLOB_OVERHEAD;
	return 0;
}

int
seal_blob(const uint8_t dek[SEAL_KEY_LEN], const uint8_t kid[SEAL_KID_LEN],
    const uint8_t uuid[SEAL_UUID_LEN], uint8_t type, uint64_t gen,
    const uint8_t *pt, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t ad[SEAL_AD_MAX];
	unsigned long long clen;
	size_t adlen, need;
	struct wbuf w;
	uint8_t *nonce;

	if (outlen != NULL)
		*outlen = 0;
	if (dek == NULL || kid == NULL || uuid == NULL || outlen == NULL ||
	    out == NULL || (pt == NULL && len > 0) || !seal_type_valid(type) ||
	    gen == 0)
		return VTPM_E_INVAL;
	if ((need = seal_blob_size(len)) == 0 || cap < need)
		return VTPM_E_TOOBIG;

	wbuf_init(&w, out, SEAL_BLOB_HDR_LEN);
	wbuf_put_bytes(&w, SEAL_BLOB_MAGIC, 4);
	wbuf_put_u8(&w, type);
	wbuf_put_u8(&w, 0);
	wbuf_put_u16(&w, 0);
	wbuf_put_u64(&w, gen);
	wbuf_put_bytes(&w, kid, SEAL_KID_LEN);
	if ((nonce = wbuf_reserve(&w, SEAL_NONCE_LEN)) == NULL)
		return VTPM_E_INVAL;	/* unreachable: sizes are constants */
	randombytes_buf(nonce, SEAL_NONCE_LEN);

	adlen = seal_ad_build(ad, out, SEAL_BLOB_AD_HDR, uuid, SEAL_BLOB_LABEL);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_BLOB_HDR_LEN,
	    &clen, pt, len, ad, adlen, NULL, nonce, dek) != 0 ||
	    clen != len + SEAL_TAG_LEN) {
		sodium_memzero(out, cap);
		return VTPM_E_CRYPTO;
	}
	*outlen = need;
	return 0;
}

int
seal_blob_peek(const uint8_t *sealed, size_t len, struct seal_blob_info *info)
{
	const uint8_t *nonce;
	int rc;

	if (info == NULL)
		return VTPM_E_INVAL;
	memset(info, 0, sizeof(*info));
	if (sealed == NULL)
		return VTPM_E_INVAL;
	if ((rc = seal_blob_parse(sealed, len, info, &nonce)) != 0)
		memset(info, 0, sizeof(*info));
	return rc;
}

int
unseal_blob(const uint8_t dek[SEAL_KEY_LEN], const uint8_t uuid[SEAL_UUID_LEN],
    uint8_t type, uint64_t expect_gen, const uint8_t *sealed, size_t len,
    uint8_t *out, size_t cap, size_t *outlen)
{
	struct seal_blob_info info;
	uint8_t ad[SEAL_AD_MAX];
	unsigned long long mlen = 0;
	const uint8_t *nonce;
	size_t adlen;
	int rc;

	if (outlen != NULL)
		*outlen = 0;
	if (dek == NULL || uuid == NULL || outlen == NULL ||
	    (out == NULL && cap > 0) || !seal_type_valid(type) || expect_gen == 0) {
		rc = VTPM_E_INVAL;
		goto fail;
	}
	if (sealed == NULL) {
		rc = VTPM_E_FORMAT;
		goto fail;
	}

	/* 1. layout */
	if ((rc = seal_blob_parse(sealed, len, &info, &nonce)) != 0)
		goto fail;
	if (info.plain_len > cap) {
		rc = VTPM_E_TOOBIG;
		goto fail;
	}
	/* 2. slot */
	if (info.type != type) {
		rc = VTPM_E_AUTH;
		goto fail;
	}
	/* 3. tag; libsodium releases no plaintext unless it verifies */
	adlen = seal_ad_build(ad, sealed, SEAL_BLOB_AD_HDR, uuid, SEAL_BLOB_LABEL);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL,
	    sealed + SEAL_BLOB_HDR_LEN, len - SEAL_BLOB_HDR_LEN, ad, adlen,
	    nonce, dek) != 0 || mlen != info.plain_len) {
		rc = VTPM_E_AUTH;
		goto fail;
	}
	/* 4. generation, now known to be the sealer's */
	if (info.generation != expect_gen) {
		rc = VTPM_E_ROLLBACK;
		goto fail;
	}
	*outlen = info.plain_len;
	return 0;

fail:
	if (out != NULL && cap > 0)
		sodium_memzero(out, cap);
	return rc;
}

int
seal_dek_wrap(const struct seal_kek *kek, const uint8_t uuid[SEAL_UUID_LEN],
    const uint8_t dek[SEAL_KEY_LEN], uint8_t out[SEAL_WRAPPED_DEK_LEN])
{
	uint8_t ad[SEAL_AD_MAX];
	unsigned long long clen;
	struct wbuf w;
	uint8_t *nonce;
	size_t adlen;

	if (kek == NULL || uuid == NULL || dek == NULL || out == NULL)
		return VTPM_E_INVAL;
	wbuf_init(&w, out, SEAL_DEK_HDR_LEN + SEAL_NONCE_LEN);
	wbuf_put_bytes(&w, SEAL_DEK_MAGIC, 4);
	wbuf_put_bytes(&w, kek->kid, SEAL_KID_LEN);
	wbuf_put_u32(&w, kek->version);
	if ((nonce = wbuf_reserve(&w, SEAL_NONCE_LEN)) == NULL)
		return VTPM_E_INVAL;	/* unreachable: sizes are constants */
	randombytes_buf(nonce, SEAL_NONCE_LEN);

	adlen = seal_ad_build(ad, out, SEAL_DEK_HDR_LEN, uuid, SEAL_DEK_LABEL);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(
	    out + SEAL_DEK_HDR_LEN + SEAL_NONCE_LEN, &clen, dek, SEAL_KEY_LEN,
	    ad, adlen, NULL, nonce, kek->key) != 0 ||
	    clen != SEAL_KEY_LEN + SEAL_TAG_LEN) {
		sodium_memzero(out, SEAL_WRAPPED_DEK_LEN);
		return VTPM_E_CRYPTO;
	}
	return 0;
}

int
seal_dek_unwrap(const struct seal_kek *kek, const uint8_t uuid[SEAL_UUID_LEN],
    const uint8_t in[SEAL_WRAPPED_DEK_LEN], uint8_t dek[SEAL_KEY_LEN])
{
	uint8_t ad[SEAL_AD_MAX];
	unsigned long long mlen = 0;
	const uint8_t *magic, *kid, *nonce, *body;
	uint32_t version;
	struct cursor c;
	size_t adlen;

	if (dek == NULL)
		return VTPM_E_INVAL;
	sodium_memzero(dek, SEAL_KEY_LEN);
	if (kek == NULL || uuid == NULL || in == NULL)
		return VTPM_E_INVAL;

	cur_init(&c, in, SEAL_WRAPPED_DEK_LEN);
	if (cur_get_ref(&c, &magic, 4) != 0 ||
	    cur_get_ref(&c, &kid, SEAL_KID_LEN) != 0 ||
	    cur_get_u32(&c, &version) != 0 ||
	    cur_get_ref(&c, &nonce, SEAL_NONCE_LEN) != 0 ||
	    cur_get_ref(&c, &body, SEAL_KEY_LEN + SEAL_TAG_LEN) != 0 ||
	    cur_end(&c) != 0)
		return VTPM_E_FORMAT;
	if (memcmp(magic, SEAL_DEK_MAGIC, 4) != 0)
		return VTPM_E_FORMAT;
	if (sodium_memcmp(kid, kek->kid, SEAL_KID_LEN) != 0)
		return VTPM_E_WRONG_KEY;
	(void)version;	/* informational; authenticated through AD */

	adlen = seal_ad_build(ad, in, SEAL_DEK_HDR_LEN, uuid, SEAL_DEK_LABEL);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(dek, &mlen, NULL, body,
	    SEAL_KEY_LEN + SEAL_TAG_LEN, ad, adlen, nonce, kek->key) != 0 ||
	    mlen != SEAL_KEY_LEN) {
		sodium_memzero(dek, SEAL_KEY_LEN);
		return VTPM_E_AUTH;
	}
	return 0;
}

static void
seal_kcv_mac(const struct seal_kek *kek, const uint8_t hdr[SEAL_KCV_MAC_OFF],
    uint8_t mac[SEAL_KCV_MAC_LEN])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, kek->key, SEAL_KEY_LEN, SEAL_KCV_MAC_LEN);
	crypto_generichash_update(&st, hdr, SEAL_KCV_MAC_OFF);
	crypto_generichash_update(&st, (const uint8_t *)SEAL_KCV_LABEL,
	    sizeof(SEAL_KCV_LABEL) - 1);
	crypto_generichash_final(&st, mac, SEAL_KCV_MAC_LEN);
	sodium_memzero(&st, sizeof(st));
}

int
seal_kek_check_make(const struct seal_kek *kek, uint8_t out[SEAL_KCV_LEN])
{
	struct wbuf w;
	uint8_t *salt;

	if (kek == NULL || out == NULL)
		return VTPM_E_INVAL;
	wbuf_init(&w, out, SEAL_KCV_MAC_OFF);
	wbuf_put_bytes(&w, SEAL_KCV_MAGIC, 4);
	wbuf_put_bytes(&w, kek->kid, SEAL_KID_LEN);
	wbuf_put_u32(&w, kek->version);
	if ((salt = wbuf_reserve(&w, SEAL_KCV_SALT_LEN)) == NULL)
		return VTPM_E_INVAL;	/* unreachable: sizes are constants */
	randombytes_buf(salt, SEAL_KCV_SALT_LEN);
	seal_kcv_mac(kek, out, out + SEAL_KCV_MAC_OFF);
	return 0;
}

int
seal_kek_check_verify(const struct seal_kek *kek, const uint8_t in[SEAL_KCV_LEN])
{
	uint8_t mac[SEAL_KCV_MAC_LEN];
	int rc;

	if (kek == NULL || in == NULL)
		return VTPM_E_INVAL;
	if (memcmp(in, SEAL_KCV_MAGIC, 4) != 0)
		return VTPM_E_FORMAT;
	if (sodium_memcmp(in + 4, kek->kid, SEAL_KID_LEN) != 0)
		return VTPM_E_WRONG_KEY;
	seal_kcv_mac(kek, in, mac);
	rc = crypto_verify_32(mac, in + SEAL_KCV_MAC_OFF) == 0 ? 0 : VTPM_E_AUTH;
	sodium_memzero(mac, sizeof(mac));
	return rc;
}

/* kid and version sit at the same offsets in a wrapped DEK and a KCV. */
static int
seal_peek_kid_version(const uint8_t *in, const char *magic, uint8_t kid[SEAL_KID_LEN],
    uint32_t *version)
{
	if (in == NULL)
		return VTPM_E_INVAL;
	if (memcmp(in, magic, 4) != 0)
		return VTPM_E_FORMAT;
	if (kid != NULL)
		memcpy(kid, in + 4, SEAL_KID_LEN);
	if (version != NULL)
		*version = be32_dec(in + 4 + SEAL_KID_LEN);
	return 0;
}

int
seal_dek_peek(const uint8_t in[SEAL_WRAPPED_DEK_LEN], uint8_t kid[SEAL_KID_LEN],
    uint32_t *version)
{
	return seal_peek_kid_version(in, SEAL_DEK_MAGIC, kid, version);
}

int
seal_kek_check_peek(const uint8_t in[SEAL_KCV_LEN], uint8_t kid[SEAL_KID_LEN],
    uint32_t *version)
{
	return seal_peek_kid_version(in, SEAL_KCV_MAGIC, kid, version);
}
