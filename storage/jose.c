/*
 * jose.c: RFC 8785 canonical JSON, the RCAR runtime-data digest, TEE keys
 * and JWE decryption for the Trustee KBS provider (jose.h; docs/KBS.md).
 * Trusts nothing in a JWE: layout and sizes first, then the key unwrap, then
 * the GCM tag; plaintext leaves only after the tag verified. OpenSSL 3
 * provides the primitives (ECDH, AES key wrap, AES-GCM, RSA-OAEP); the
 * Concat KDF (RFC 7518 section 4.6.2) is written out here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <sodium.h>

#include "cursor.h"
#include "jose.h"

#define JOSE_ALG_ECDH		"ECDH-ES+A256KW"
#define JOSE_ALG_RSA		"RSA-OAEP-256"
#define JOSE_ENC		"A256GCM"
#define JOSE_JWE_MAX		(4 * JOSE_PLAIN_MAX)	/* JSON text of a JWE */
#define JOSE_HDR_MAX		4096	/* decoded protected header */
#define JOSE_PARTY_MAX		256	/* apu, apv */
#define JOSE_IV_LEN		12
#define JOSE_TAG_LEN		16
#define JOSE_CEK_LEN		32
#define JOSE_WRAPPED_CEK_LEN	(JOSE_CEK_LEN + 8)
#define JOSE_EC_COORD_LEN	32
#define JOSE_RSA_BITS		3072
#define JOSE_RSA_MAX_BYTES	1024	/* 8192-bit modulus */

struct jose_tee_key {
	enum jose_key_type	 type;
	EVP_PKEY		*pkey;
};

/* ---- small helpers ---------------------------------------------------- */

static int
jose_fail(char *why, size_t whylen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
jose_fail(char *why, size_t whylen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int
jose_b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t cap,
    size_t *outlen)
{
	size_t need = inlen / 4 * 3 + (inlen % 4 == 0 ? 0 : inlen % 4 - 1);

	*outlen = 0;
	if (inlen % 4 == 1)
		return VTPM_E_FORMAT;
	if (need > cap)
		return VTPM_E_TOOBIG;
	/* libsodium rejects padding, foreign characters and nonzero trailing bits */
	if (sodium_base642bin(out, cap, in, inlen, NULL, outlen, NULL,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 || *outlen != need) {
		sodium_memzero(out, cap);
		*outlen = 0;
		return VTPM_E_FORMAT;
	}
	return 0;
}

/* base64url of p[0..n) as a new json-c string. */
static json_object *
jose_b64url_string(const uint8_t *p, size_t n)
{
	char buf[sodium_base64_ENCODED_LEN(JOSE_RSA_MAX_BYTES,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING)];

	if (n > JOSE_RSA_MAX_BYTES)
		return NULL;
	sodium_bin2base64(buf, sizeof(buf), p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return json_object_new_string(buf);
}

/* ---- RFC 8785 --------------------------------------------------------- */

struct jbuf {
	char	*p;
	size_t	 len, cap;
	int	 err;
};

static void
jb_put(struct jbuf *b, const char *s, size_t n)
{
	char *np;
	size_t ncap;

	if (b->err != 0)
		return;
	if (n + 1 > b->cap - b->len) {
		ncap = b->cap == 0 ? 256 : b->cap;
		while (n + 1 > ncap - b->len) {
			if (ncap > (size_t)1 << 28) {
				b->err = VTPM_E_TOOBIG;
				return;
			}
			ncap *= 2;
		}
		/* runtime data is public: plain realloc is fine here */
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->err = VTPM_E_NOMEM;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/*
 * Decodes one UTF-8 code point at *p (before end). Strict: no overlong
 * forms, no surrogates, nothing above U+10FFFF. 0, or -1 if invalid.
 */
static int
utf8_next(const uint8_t **p, const uint8_t *end, uint32_t *cp)
{
	const uint8_t *s = *p;
	uint32_t c, min;
	int n, i;

	if (s >= end)
		return -1;
	c = s[0];
	if (c < 0x80) {
		*cp = c;
		*p = s + 1;
		return 0;
	} else if ((c & 0xe0) == 0xc0) {
		n = 1; c &= 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 2; c &= 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 3; c &= 0x07; min = 0x10000;
	} else {
		return -1;
	}
	if (end - s <= n)
		return -1;
	for (i = 1; i <= n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*cp = c;
	*p = s + n + 1;
	return 0;
}

static int
utf8_valid(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + n;
	uint32_t cp;

	while (p < end)
		if (utf8_next(&p, end, &cp) != 0)
			return 0;
	return 1;
}

/* Next UTF-16 code unit of a valid UTF-8 string; *pending holds a low surrogate. */
static int
utf16_next(const uint8_t **p, const uint8_t *end, uint32_t *pending, uint32_t *unit)
{
	uint32_t cp;

	if (*pending != 0) {
		*unit = *pending;
		*pending = 0;
		return 1;
	}
	if (*p >= end || utf8_next(p, end, &cp) != 0)
		return 0;
	if (cp >= 0x10000) {
		cp -= 0x10000;
		*unit = 0xd800 + (cp >> 10);
		*pending = 0xdc00 + (cp & 0x3ff);
	} else {
		*unit = cp;
	}
	return 1;
}

/* RFC 8785 section 3.2.3: member names compare as arrays of UTF-16 code units. */
static int
jcs_key_cmp(const void *a, const void *b)
{
	const char *ka = *(const char *const *)a, *kb = *(const char *const *)b;
	const uint8_t *pa = (const uint8_t *)ka, *pb = (const uint8_t *)kb;
	const uint8_t *ea = pa + strlen(ka), *eb = pb + strlen(kb);
	uint32_t qa = 0, qb = 0, ua, ub;
	int ha, hb;

	for (;;) {
		ha = utf16_next(&pa, ea, &qa, &ua);
		hb = utf16_next(&pb, eb, &qb, &ub);
		if (!ha || !hb)
			return ha - hb;
		if (ua != ub)
			return ua < ub ? -1 : 1;
	}
}

static void
jcs_string(struct jbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char esc[7];
	size_t i, run = 0;
	unsigned char c;

	jb_put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		jb_put(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"':	jb_put(b, "\\\"", 2); break;
		case '\\':	jb_put(b, "\\\\", 2); break;
		case '\b':	jb_put(b, "\\b", 2); break;
		case '\t':	jb_put(b, "\\t", 2); break;
		case '\n':	jb_put(b, "\\n", 2); break;
		case '\f':	jb_put(b, "\\f", 2); break;
		case '\r':	jb_put(b, "\\r", 2); break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			jb_put(b, esc, 6);
			break;
		}
	}
	jb_put(b, s + run, n - run);
	jb_put(b, "\"", 1);
}

static int
jcs_value(struct jbuf *b, json_object *v, int depth)
{
	const char **keys = NULL, *s;
	char num[32];
	size_t i, n;
	int64_t iv;
	int rc = 0;

	if (depth > 32)
		return VTPM_E_TOOBIG;
	switch (json_object_get_type(v)) {
	case json_type_null:
		jb_put(b, "null", 4);
		break;
	case json_type_boolean:
		if (json_object_get_boolean(v))
			jb_put(b, "true", 4);
		else
			jb_put(b, "false", 5);
		break;
	case json_type_int:
		iv = json_object_get_int64(v);
		if (iv > ((int64_t)1 << 53) || iv < -((int64_t)1 << 53))
			return VTPM_E_UNSUPPORTED;
		n = (size_t)snprintf(num, sizeof(num), "%lld", (long long)iv);
		jb_put(b, num, n);
		break;
	case json_type_double:
		return VTPM_E_UNSUPPORTED;
	case json_type_string:
		s = json_object_get_string(v);
		n = (size_t)json_object_get_string_len(v);
		if (!utf8_valid(s, n))
			return VTPM_E_FORMAT;
		jcs_string(b, s, n);
		break;
	case json_type_array:
		jb_put(b, "[", 1);
		n = json_object_array_length(v);
		for (i = 0; i < n && rc == 0; i++) {
			if (i > 0)
				jb_put(b, ",", 1);
			rc = jcs_value(b, json_object_array_get_idx(v, i), depth + 1);
		}
		jb_put(b, "]", 1);
		break;
	case json_type_object:
		n = (size_t)json_object_object_length(v);
		if (n > 0 && (keys = calloc(n, sizeof(*keys))) == NULL)
			return VTPM_E_NOMEM;
		i = 0;
		json_object_object_foreach(v, key, val) {
			(void)val;
			if (i < n)
				keys[i++] = key;
		}
		for (i = 0; i < n; i++)
			if (!utf8_valid(keys[i], strlen(keys[i]))) {
				free(keys);
				return VTPM_E_FORMAT;
			}
		if (n > 1)
			qsort(keys, n, sizeof(*keys), jcs_key_cmp);
		jb_put(b, "{", 1);
		for (i = 0; i < n && rc == 0; i++) {
			if (i > 0)
				jb_put(b, ",", 1);
			jcs_string(b, keys[i], strlen(keys[i]));
			jb_put(b, ":", 1);
			rc = jcs_value(b, json_object_object_get(v, keys[i]), depth + 1);
		}
		jb_put(b, "}", 1);
		free(keys);
		break;
	}
	return rc != 0 ? rc : b->err;
}

int
jose_jcs(json_object *v, char **out, size_t *outlen)
{
	struct jbuf b = { NULL, 0, 0, 0 };
	int rc;

	if (out == NULL || outlen == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	*outlen = 0;
	if ((rc = jcs_value(&b, v, 0)) != 0) {
		free(b.p);
		return rc;
	}
	if (b.p == NULL)
		return VTPM_E_INVAL;
	*out = b.p;
	*outlen = b.len;
	return 0;
}

int
jose_runtime_data_digest(const char *nonce, json_object *tee_pubkey,
    const char *additional, uint8_t digest[JOSE_DIGEST_LEN],
    uint8_t report_data[JOSE_REPORT_DATA_LEN])
{
	json_object *rd;
	uint8_t d[JOSE_DIGEST_LEN];
	unsigned int dlen = 0;
	char *canon = NULL;
	size_t clen;
	int rc;

	if (nonce == NULL || tee_pubkey == NULL || additional == NULL)
		return VTPM_E_INVAL;
	if ((rd = json_object_new_object()) == NULL)
		return VTPM_E_NOMEM;
	json_object_object_add(rd, "additional-evidence", json_object_new_string(additional));
	json_object_object_add(rd, "nonce", json_object_new_string(nonce));
	json_object_object_add(rd, "tee-pubkey", json_object_get(tee_pubkey));
	rc = jose_jcs(rd, &canon, &clen);
	json_object_put(rd);
	if (rc != 0)
		return rc;
	if (EVP_Digest(canon, clen, d, &dlen, EVP_sha384(), NULL) != 1 ||
	    dlen != JOSE_DIGEST_LEN) {
		free(canon);
		return VTPM_E_CRYPTO;
	}
	free(canon);
	if (digest != NULL)
		memcpy(digest, d, JOSE_DIGEST_LEN);
	if (report_data != NULL) {
		memset(report_data, 0, JOSE_REPORT_DATA_LEN);
		memcpy(report_data, d, JOSE_DIGEST_LEN);
	}
	return 0;
}

/* ---- TEE keys ---------------------------------------------------------- */

static int
jose_key_wrap(EVP_PKEY *pk, enum jose_key_type type, struct jose_tee_key **out)
{
	struct jose_tee_key *k;

	if ((k = calloc(1, sizeof(*k))) == NULL) {
		EVP_PKEY_free(pk);
		return VTPM_E_NOMEM;
	}
	k->type = type;
	k->pkey = pk;
	*out = k;
	return 0;
}

int
jose_tee_key_new(enum jose_key_type type, struct jose_tee_key **out)
{
	EVP_PKEY *pk;

	if (out == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	if (type == JOSE_KEY_EC_P256)
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (type == JOSE_KEY_RSA_OAEP_256)
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)JOSE_RSA_BITS);
	else
		return VTPM_E_INVAL;
	if (pk == NULL)
		return VTPM_E_CRYPTO;
	return jose_key_wrap(pk, type, out);
}

/* An EVP_PKEY for P-256 from params (public point, and d if priv != NULL). */
static EVP_PKEY *
jose_ec_fromdata(const uint8_t pub[65], const BIGNUM *priv)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;

	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 65) ||
	    (priv != NULL && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv)) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, priv != NULL ? EVP_PKEY_KEYPAIR :
	    EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);	/* OSSL_PARAM_clear_free where secret */
	OSSL_PARAM_BLD_free(bld);
	return pk;
}

int
jose_tee_key_from_ec_d(const uint8_t d[32], struct jose_tee_key **out)
{
	EC_GROUP *g = NULL;
	EC_POINT *pt = NULL;
	BIGNUM *bn = NULL;
	EVP_PKEY *pk = NULL;
	uint8_t pub[65];
	int rc = VTPM_E_CRYPTO;

	if (out == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	if (d == NULL)
		return VTPM_E_INVAL;
	if ((g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) == NULL ||
	    (bn = BN_secure_new()) == NULL || BN_bin2bn(d, 32, bn) == NULL ||
	    (pt = EC_POINT_new(g)) == NULL)
		goto done;
	if (BN_is_zero(bn) || BN_cmp(bn, EC_GROUP_get0_order(g)) >= 0) {
		rc = VTPM_E_FORMAT;
		goto done;
	}
	if (EC_POINT_mul(g, pt, bn, NULL, NULL, NULL) != 1 ||
	    EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, pub,
	    sizeof(pub), NULL) != sizeof(pub) ||
	    (pk = jose_ec_fromdata(pub, bn)) == NULL)
		goto done;
	rc = jose_key_wrap(pk, JOSE_KEY_EC_P256, out);
done:
	EC_POINT_free(pt);
	BN_clear_free(bn);
	EC_GROUP_free(g);
	return rc;
}

int
jose_tee_key_from_pem(const char *pem, size_t len, struct jose_tee_key **out)
{
	EVP_PKEY *pk;
	BIO *bio;
	char group[32];
	size_t glen;

	if (out == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	if (pem == NULL || len > INT32_MAX)
		return VTPM_E_INVAL;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return VTPM_E_NOMEM;
	pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pk == NULL)
		return VTPM_E_FORMAT;
	if (EVP_PKEY_is_a(pk, "RSA") && EVP_PKEY_get_bits(pk) >= 2048 &&
	    EVP_PKEY_get_bits(pk) <= 8 * JOSE_RSA_MAX_BYTES)
		return jose_key_wrap(pk, JOSE_KEY_RSA_OAEP_256, out);
	if (EVP_PKEY_is_a(pk, "EC") &&
	    EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
	    sizeof(group), &glen) == 1 && strcmp(group, "prime256v1") == 0)
		return jose_key_wrap(pk, JOSE_KEY_EC_P256, out);
	EVP_PKEY_free(pk);
	return VTPM_E_FORMAT;
}

void
jose_tee_key_free(struct jose_tee_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);		/* key material is cleansed by OpenSSL */
	free(k);
}

/* A BIGNUM parameter of pk as base64url: fixed width (pad > 0) or minimal. */
static json_object *
jose_bn_param(EVP_PKEY *pk, const char *name, int pad)
{
	uint8_t buf[JOSE_RSA_MAX_BYTES];
	BIGNUM *bn = NULL;
	json_object *s = NULL;
	int n;

	if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1)
		return NULL;
	if (pad > 0)
		n = BN_bn2binpad(bn, buf, pad);
	else if (BN_num_bytes(bn) <= (int)sizeof(buf))
		n = BN_bn2bin(bn, buf);
	else
		n = -1;
	if (n > 0)
		s = jose_b64url_string(buf, (size_t)n);
	BN_free(bn);
	return s;
}

int
jose_tee_key_jwk(const struct jose_tee_key *k, json_object **out)
{
	json_object *j, *a, *b;

	if (out == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	if (k == NULL)
		return VTPM_E_INVAL;
	if ((j = json_object_new_object()) == NULL)
		return VTPM_E_NOMEM;
	if (k->type == JOSE_KEY_EC_P256) {
		a = jose_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, JOSE_EC_COORD_LEN);
		b = jose_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, JOSE_EC_COORD_LEN);
		json_object_object_add(j, "kty", json_object_new_string("EC"));
		json_object_object_add(j, "crv", json_object_new_string("P-256"));
		json_object_object_add(j, "alg", json_object_new_string(JOSE_ALG_ECDH));
		json_object_object_add(j, "x", a);
		json_object_object_add(j, "y", b);
	} else {
		a = jose_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
		b = jose_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
		json_object_object_add(j, "kty", json_object_new_string("RSA"));
		json_object_object_add(j, "alg", json_object_new_string(JOSE_ALG_RSA));
		json_object_object_add(j, "n", a);
		json_object_object_add(j, "e", b);
	}
	if (a == NULL || b == NULL) {
		json_object_put(j);
		return VTPM_E_CRYPTO;
	}
	*out = j;
	return 0;
}

/* ---- JWE --------------------------------------------------------------- */

/* Secrets of one decryption, in one sodium_malloc() region. */
struct jose_secrets {
	uint8_t	z[JOSE_EC_COORD_LEN];		/* ECDH shared secret */
	uint8_t	kek[32];			/* Concat KDF output */
	uint8_t	cek[JOSE_CEK_LEN + 16];		/* unwrapped content key (+ slack) */
	uint8_t	rsa[JOSE_RSA_MAX_BYTES];	/* RSA-OAEP output */
};

/* The decoded parts of a JWE. Nothing here is secret. */
struct jose_parts {
	const char	*protected_b64;
	size_t		 protected_len;
	uint8_t		 ek[JOSE_RSA_MAX_BYTES];
	size_t		 ek_len;
	uint8_t		 iv[JOSE_IV_LEN];
	uint8_t		 tag[JOSE_TAG_LEN];
	uint8_t		*ct;
	size_t		 ct_len;
	char		 alg[32];
	uint8_t		 epk[65];		/* 0x04 || x || y */
	uint8_t		 apu[JOSE_PARTY_MAX], apv[JOSE_PARTY_MAX];
	size_t		 apu_len, apv_len;
};

/* A string member of o, or NULL. */
static const char *
jose_str(json_object *o, const char *key, size_t *len)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	if (len != NULL)
		*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

/* Strict JSON parse of s[0..len) into an object; NULL if not one. */
static json_object *
jose_parse_object(const char *s, size_t len)
{
	json_tokener *tok;
	json_object *o;
	size_t end;

	if (len > INT32_MAX || (tok = json_tokener_new_ex(16)) == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, s, (int)len);
	end = o != NULL ? json_tokener_get_parse_end(tok) : 0;
	while (end < len && strchr(" \t\r\n", s[end]) != NULL && s[end] != '\0')
		end++;
	if (o != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
	    end != len || !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static int
jose_b64_member(json_object *o, const char *key, uint8_t *out, size_t cap,
    size_t *outlen, char *why, size_t whylen)
{
	const char *s;
	size_t n;
	int rc;

	if ((s = jose_str(o, key, &n)) == NULL)
		return jose_fail(why, whylen, VTPM_E_FORMAT,
		    "JWE has no string member \"%s\"", key);
	if ((rc = jose_b64url_decode(s, n, out, cap, outlen)) != 0)
		return jose_fail(why, whylen, rc, "JWE member \"%s\" is %s", key,
		    rc == VTPM_E_TOOBIG ? "too long" : "not base64url");
	return 0;
}

/* The protected header: alg, enc and, for ECDH-ES, epk/apu/apv. */
static int
jose_parse_header(struct jose_parts *p, char *why, size_t whylen)
{
	char hdr[JOSE_HDR_MAX + 1];
	json_object *h, *epk;
	const char *alg, *enc, *s, *x, *y;
	size_t hlen, n, xl, yl;
	uint8_t coord[JOSE_EC_COORD_LEN];
	int rc = VTPM_E_FORMAT;

	if (jose_b64url_decode(p->protected_b64, p->protected_len, (uint8_t *)hdr,
	    JOSE_HDR_MAX, &hlen) != 0)
		return jose_fail(why, whylen, VTPM_E_FORMAT, "JWE \"protected\" is not "
		    "base64url (a protocol 0.1 broker sends plain JSON: unsupported)");
	hdr[hlen] = '\0';
	if ((h = jose_parse_object(hdr, hlen)) == NULL)
		return jose_fail(why, whylen, VTPM_E_FORMAT,
		    "JWE protected header is not a JSON object");
	if ((alg = jose_str(h, "alg", NULL)) == NULL ||
	    (enc = jose_str(h, "enc", NULL)) == NULL) {
		rc = jose_fail(why, whylen, VTPM_E_FORMAT,
		    "JWE protected header lacks \"alg\" or \"enc\"");
		goto done;
	}
	if (strcmp(enc, JOSE_ENC) != 0) {
		rc = jose_fail(why, whylen, VTPM_E_UNSUPPORTED,
		    "JWE enc \"%.32s\" is not supported (want A256GCM)", enc);
		goto done;
	}
	if (json_object_object_get_ex(h, "zip", NULL) ||
	    json_object_object_get_ex(h, "crit", NULL)) {
		rc = jose_fail(why, whylen, VTPM_E_UNSUPPORTED,
		    "JWE header uses \"zip\" or \"crit\" (not supported)");
		goto done;
	}
	if (strlen(alg) >= sizeof(p->alg)) {
		rc = jose_fail(why, whylen, VTPM_E_UNSUPPORTED, "JWE alg not supported");
		goto done;
	}
	memcpy(p->alg, alg, strlen(alg) + 1);
	if (strcmp(alg, JOSE_ALG_ECDH) != 0) {
		rc = 0;
		goto done;
	}
	if (!json_object_object_get_ex(h, "epk", &epk) ||
	    !json_object_is_type(epk, json_type_object) ||
	    (s = jose_str(epk, "kty", NULL)) == NULL || strcmp(s, "EC") != 0 ||
	    (s = jose_str(epk, "crv", NULL)) == NULL || strcmp(s, "P-256") != 0 ||
	    (x = jose_str(epk, "x", &xl)) == NULL || (y = jose_str(epk, "y", &yl)) == NULL) {
		rc = jose_fail(why, whylen, VTPM_E_FORMAT,
		    "JWE \"epk\" is not an EC P-256 public key");
		goto done;
	}
	p->epk[0] = 0x04;
	if (jose_b64url_decode(x, xl, coord, sizeof(coord), &n) != 0 || n != sizeof(coord)) {
		rc = jose_fail(why, whylen, VTPM_E_FORMAT, "JWE epk x is not 32 bytes");
		goto done;
	}
	memcpy(p->epk + 1, coord, sizeof(coord));
	if (jose_b64url_decode(y, yl, coord, sizeof(coord), &n) != 0 || n != sizeof(coord)) {
		rc = jose_fail(why, whylen, VTPM_E_FORMAT, "JWE epk y is not 32 bytes");
		goto done;
	}
	memcpy(p->epk + 1 + sizeof(coord), coord, sizeof(coord));
	if ((s = jose_str(h, "apu", &n)) != NULL &&
	    jose_b64url_decode(s, n, p->apu, sizeof(p->apu), &p->apu_len) != 0) {
		rc = jose_fail(why, whylen, VTPM_E_FORMAT, "JWE apu is not base64url");
		goto done;
	}
	if ((s = jose_str(h, "apv", &n)) != NULL &&
	    jose_b64url_decode(s, n, p->apv, sizeof(p->apv), &p->apv_len) != 0) {
		rc = jose_fail(why, whylen, VTPM_E_FORMAT, "JWE apv is not base64url");
		goto done;
	}
	rc = 0;
done:
	json_object_put(h);
	return rc;
}

/* The flattened JSON serialization: exactly five members, all strings. */
static int
jose_parse(json_object *o, struct jose_parts *p, size_t cap, char *why, size_t whylen)
{
	static const char *const members[] = {
		"protected", "encrypted_key", "iv", "ciphertext", "tag",
	};
	const char *ct;
	size_t i, n, ctl;
	int rc, known;

	json_object_object_foreach(o, key, val) {
		(void)val;
		known = 0;
		for (i = 0; i < sizeof(members) / sizeof(members[0]); i++)
			known |= strcmp(key, members[i]) == 0;
		if (!known)
			return jose_fail(why, whylen, VTPM_E_UNSUPPORTED,
			    "JWE member \"%.32s\" is not supported (Trustee sends "
			    "protected, encrypted_key, iv, ciphertext, tag)", key);
	}
	if ((p->protected_b64 = jose_str(o, "protected", &p->protected_len)) == NULL)
		return jose_fail(why, whylen, VTPM_E_FORMAT, "JWE has no \"protected\"");
	if ((rc = jose_b64_member(o, "encrypted_key", p->ek, sizeof(p->ek), &p->ek_len,
	    why, whylen)) != 0 ||
	    (rc = jose_b64_member(o, "iv", p->iv, sizeof(p->iv), &n, why, whylen)) != 0)
		return rc;
	if (n != JOSE_IV_LEN)
		return jose_fail(why, whylen, VTPM_E_FORMAT, "JWE iv is not 12 bytes");
	if ((rc = jose_b64_member(o, "tag", p->tag, sizeof(p->tag), &n, why, whylen)) != 0)
		return rc;
	if (n != JOSE_TAG_LEN)
		return jose_fail(why, whylen, VTPM_E_FORMAT, "JWE tag is not 16 bytes");
	if ((ct = jose_str(o, "ciphertext", &ctl)) == NULL)
		return jose_fail(why, whylen, VTPM_E_FORMAT, "JWE has no \"ciphertext\"");
	if (ctl / 4 * 3 > JOSE_PLAIN_MAX || ctl / 4 * 3 > cap + 2)
		return jose_fail(why, whylen, VTPM_E_TOOBIG,
		    "JWE plaintext larger than %zu bytes", cap);
	if ((p->ct = malloc(ctl / 4 * 3 + 3)) == NULL)
		return VTPM_E_NOMEM;
	if ((rc = jose_b64url_decode(ct, ctl, p->ct, ctl / 4 * 3 + 3, &p->ct_len)) != 0)
		return jose_fail(why, whylen, VTPM_E_FORMAT, "JWE ciphertext is not base64url");
	if (p->ct_len > cap)
		return jose_fail(why, whylen, VTPM_E_TOOBIG,
		    "JWE plaintext larger than %zu bytes", cap);
	return jose_parse_header(p, why, whylen);
}

/* Concat KDF (NIST SP 800-56A, RFC 7518 4.6.2) for one 256-bit key. */
static int
jose_concat_kdf(const uint8_t *z, size_t zlen, const struct jose_parts *p,
    uint8_t out[32])
{
	uint8_t be[4];
	EVP_MD_CTX *md;
	unsigned int n = 0;
	int ok;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return VTPM_E_NOMEM;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	be32_enc(be, 1);				/* round counter */
	ok = ok && EVP_DigestUpdate(md, be, 4) == 1;
	ok = ok && EVP_DigestUpdate(md, z, zlen) == 1;
	be32_enc(be, (uint32_t)strlen(p->alg));		/* AlgorithmID */
	ok = ok && EVP_DigestUpdate(md, be, 4) == 1;
	ok = ok && EVP_DigestUpdate(md, p->alg, strlen(p->alg)) == 1;
	be32_enc(be, (uint32_t)p->apu_len);		/* PartyUInfo */
	ok = ok && EVP_DigestUpdate(md, be, 4) == 1;
	ok = ok && EVP_DigestUpdate(md, p->apu, p->apu_len) == 1;
	be32_enc(be, (uint32_t)p->apv_len);		/* PartyVInfo */
	ok = ok && EVP_DigestUpdate(md, be, 4) == 1;
	ok = ok && EVP_DigestUpdate(md, p->apv, p->apv_len) == 1;
	be32_enc(be, 256);				/* SuppPubInfo: keydatalen */
	ok = ok && EVP_DigestUpdate(md, be, 4) == 1;
	ok = ok && EVP_DigestFinal_ex(md, out, &n) == 1 && n == 32;
	EVP_MD_CTX_free(md);				/* cleanses the state */
	return ok ? 0 : VTPM_E_CRYPTO;
}

/* ECDH-ES+A256KW: Z from our key and epk, KDF, then AES-256 key unwrap. */
static int
jose_unwrap_ecdh(const struct jose_tee_key *key, const struct jose_parts *p,
    struct jose_secrets *s, char *why, size_t whylen)
{
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *dctx = NULL, *cctx = NULL;
	EVP_CIPHER_CTX *cc = NULL;
	size_t zlen = sizeof(s->z);
	int outl = 0, finl = 0, rc = VTPM_E_CRYPTO;

	if (p->ek_len != JOSE_WRAPPED_CEK_LEN)
		return jose_fail(why, whylen, VTPM_E_FORMAT,
		    "JWE encrypted_key is %zu bytes (want 40)", p->ek_len);
	if ((peer = jose_ec_fromdata(p->epk, NULL)) == NULL ||
	    (cctx = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL)) == NULL ||
	    EVP_PKEY_public_check(cctx) != 1) {
		rc = jose_fail(why, whylen, VTPM_E_FORMAT,
		    "JWE epk is not a valid P-256 point");
		goto done;
	}
	if ((dctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL)) == NULL ||
	    EVP_PKEY_derive_init(dctx) != 1 ||
	    EVP_PKEY_derive_set_peer_ex(dctx, peer, 1) != 1 ||
	    EVP_PKEY_derive(dctx, s->z, &zlen) != 1 || zlen != sizeof(s->z)) {
		rc = jose_fail(why, whylen, VTPM_E_CRYPTO, "ECDH with the JWE epk failed");
		goto done;
	}
	if ((rc = jose_concat_kdf(s->z, zlen, p, s->kek)) != 0) {
		jose_fail(why, whylen, rc, "Concat KDF failed");
		goto done;
	}
	if ((cc = EVP_CIPHER_CTX_new()) == NULL) {
		rc = VTPM_E_NOMEM;
		goto done;
	}
	EVP_CIPHER_CTX_set_flags(cc, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (EVP_DecryptInit_ex(cc, EVP_aes_256_wrap(), NULL, s->kek, NULL) != 1) {
		rc = jose_fail(why, whylen, VTPM_E_CRYPTO, "AES key wrap unavailable");
		goto done;
	}
	/* The RFC 3394 integrity check fails for a wrong key or altered bytes. */
	if (EVP_DecryptUpdate(cc, s->cek, &outl, p->ek, (int)p->ek_len) != 1 ||
	    EVP_DecryptFinal_ex(cc, s->cek + outl, &finl) != 1 ||
	    outl + finl != JOSE_CEK_LEN) {
		rc = jose_fail(why, whylen, VTPM_E_AUTH, "JWE content key does not unwrap "
		    "(altered, or not encrypted to this TEE key)");
		goto done;
	}
	rc = 0;
done:
	EVP_CIPHER_CTX_free(cc);
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_CTX_free(cctx);
	EVP_PKEY_free(peer);
	return rc;
}

/* RSA-OAEP-256: OAEP with SHA-256 and MGF1-SHA-256. */
static int
jose_unwrap_rsa(const struct jose_tee_key *key, const struct jose_parts *p,
    struct jose_secrets *s, char *why, size_t whylen)
{
	EVP_PKEY_CTX *ctx;
	size_t outlen = sizeof(s->rsa);
	int rc = 0;

	if (p->ek_len != (size_t)EVP_PKEY_get_size(key->pkey))
		return jose_fail(why, whylen, VTPM_E_FORMAT,
		    "JWE encrypted_key is %zu bytes (want %d)", p->ek_len,
		    EVP_PKEY_get_size(key->pkey));
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL)) == NULL)
		return VTPM_E_NOMEM;
	if (EVP_PKEY_decrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1)
		rc = jose_fail(why, whylen, VTPM_E_CRYPTO, "RSA-OAEP-256 unavailable");
	else if (EVP_PKEY_decrypt(ctx, s->rsa, &outlen, p->ek, p->ek_len) != 1 ||
	    outlen != JOSE_CEK_LEN)
		rc = jose_fail(why, whylen, VTPM_E_AUTH, "JWE content key does not decrypt "
		    "(altered, or not encrypted to this TEE key)");
	else
		memcpy(s->cek, s->rsa, JOSE_CEK_LEN);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

/* A256GCM with AAD = the protected member as received. */
static int
jose_gcm_open(const struct jose_secrets *s, const struct jose_parts *p,
    uint8_t *out, char *why, size_t whylen)
{
	EVP_CIPHER_CTX *cc;
	int outl = 0, finl = 0, rc = 0;

	if (p->protected_len > INT32_MAX || p->ct_len > INT32_MAX)
		return VTPM_E_TOOBIG;
	if ((cc = EVP_CIPHER_CTX_new()) == NULL)
		return VTPM_E_NOMEM;
	if (EVP_DecryptInit_ex(cc, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_SET_IVLEN, JOSE_IV_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(cc, NULL, NULL, s->cek, p->iv) != 1 ||
	    EVP_DecryptUpdate(cc, NULL, &outl, (const uint8_t *)p->protected_b64,
	    (int)p->protected_len) != 1 ||
	    EVP_DecryptUpdate(cc, out, &outl, p->ct, (int)p->ct_len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_SET_TAG, JOSE_TAG_LEN,
	    (void *)(uintptr_t)p->tag) != 1)
		rc = jose_fail(why, whylen, VTPM_E_CRYPTO, "AES-GCM unavailable");
	else if (EVP_DecryptFinal_ex(cc, out + outl, &finl) != 1 ||
	    (size_t)(outl + finl) != p->ct_len)
		rc = jose_fail(why, whylen, VTPM_E_AUTH,
		    "JWE tag does not verify (ciphertext, iv or header altered)");
	EVP_CIPHER_CTX_free(cc);
	return rc;
}

int
jose_jwe_decrypt(const struct jose_tee_key *key, const char *jwe, size_t len,
    uint8_t *out, size_t cap, size_t *outlen, char *why, size_t whylen)
{
	struct jose_secrets *s = NULL;
	struct jose_parts *p = NULL;
	json_object *o = NULL;
	const char *want;
	int rc;

	if (outlen != NULL)
		*outlen = 0;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (key == NULL || jwe == NULL || out == NULL || outlen == NULL)
		return VTPM_E_INVAL;
	if (cap > JOSE_PLAIN_MAX)
		cap = JOSE_PLAIN_MAX;
	if (len > JOSE_JWE_MAX) {
		rc = jose_fail(why, whylen, VTPM_E_TOOBIG, "JWE larger than %d bytes",
		    JOSE_JWE_MAX);
		goto done;
	}
	if ((o = jose_parse_object(jwe, len)) == NULL) {
		rc = jose_fail(why, whylen, VTPM_E_FORMAT, "response is not a JSON object");
		goto done;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (s = sodium_malloc(sizeof(*s))) == NULL) {
		rc = VTPM_E_NOMEM;
		goto done;
	}
	if ((rc = jose_parse(o, p, cap, why, whylen)) != 0)
		goto done;
	want = key->type == JOSE_KEY_EC_P256 ? JOSE_ALG_ECDH : JOSE_ALG_RSA;
	if (strcmp(p->alg, want) != 0) {
		rc = jose_fail(why, whylen, VTPM_E_UNSUPPORTED,
		    "JWE alg \"%s\" does not match the TEE key (want %s)", p->alg, want);
		goto done;
	}
	if (key->type == JOSE_KEY_EC_P256)
		rc = jose_unwrap_ecdh(key, p, s, why, whylen);
	else
		rc = jose_unwrap_rsa(key, p, s, why, whylen);
	if (rc != 0)
		goto done;
	if ((rc = jose_gcm_open(s, p, out, why, whylen)) != 0)
		goto done;
	*outlen = p->ct_len;
done:
	if (rc != 0)
		sodium_memzero(out, cap);
	if (s != NULL)
		sodium_free(s);		/* wipes Z, KEK and CEK */
	if (p != NULL) {
		free(p->ct);
		free(p);
	}
	json_object_put(o);
	return rc;
}
