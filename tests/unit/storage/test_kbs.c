/*
 * test_kbs.c: unit tests of the Trustee KBS key provider's pieces: RFC 8785
 * canonical JSON, the RCAR runtime-data digest, JWE decryption (the shared
 * kbs-rcar vector, tampering, an RSA-OAEP-256 vector made by the Python test
 * broker), the released-resource parser, provider configuration checks, an
 * unreachable broker, and root-key rotation of a store (store_rewrap_all).
 * Trusts the vector files under tests/vectors/kbs-rcar/ (or argv[1]).
 * Prints a line per failed check and ends with "kbs: N passed, M failed".
 */
#include <sys/stat.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "jose.h"
#include "kbs_evidence.h"
#include "keyprov.h"
#include "log.h"
#include "seal.h"
#include "store.h"
#include "../check.h"

static const char *vecdir = "tests/vectors/kbs-rcar";


static json_object *
load_json(const char *name)
{
	char path[512];
	json_object *o;

	snprintf(path, sizeof(path), "%s/%s", vecdir, name);
	if ((o = json_object_from_file(path)) == NULL) {
		printf("FATAL: cannot read %s\n", path);
		exit(2);
	}
	return o;
}

static const char *
jstr(json_object *o, const char *path)
{
	char buf[256], *save = NULL, *tok;
	json_object *cur = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok != NULL; tok = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(cur, tok, &cur))
			return NULL;
	return json_object_get_string(cur);
}

static json_object *
jget(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

static int
hex_eq(const uint8_t *p, size_t n, const char *hex)
{
	char buf[2 * 128 + 1];
	size_t i;

	if (n > 128 || strlen(hex) != 2 * n)
		return 0;
	for (i = 0; i < n; i++)
		snprintf(buf + 2 * i, 3, "%02x", p[i]);
	return strcmp(buf, hex) == 0;
}

static void
hex_to(const char *hex, uint8_t *out, size_t n)
{
	size_t i;
	unsigned int b;

	for (i = 0; i < n; i++) {
		if (sscanf(hex + 2 * i, "%2x", &b) != 1) {
			printf("FATAL: bad hex\n");
			exit(2);
		}
		out[i] = (uint8_t)b;
	}
}

/* ---- RFC 8785 ------------------------------------------------------------ */

static int
jcs_is(const char *json, const char *want)
{
	json_object *o = json_tokener_parse(json);
	char *out = NULL;
	size_t n;
	int ok;

	if (o == NULL)
		return 0;
	ok = jose_jcs(o, &out, &n) == 0 && n == strlen(want) && strcmp(out, want) == 0;
	if (!ok)
		printf("  jcs(%s) = %s\n", json, out ? out : "(error)");
	free(out);
	json_object_put(o);
	return ok;
}

static void
test_jcs(void)
{
	json_object *o;
	char *out = NULL;
	size_t n;
	uint8_t d[48];
	unsigned int dl;

	/* Trustee attestation-service unit test: JCS then SHA-384 */
	o = json_tokener_parse("{\"b\":1,\"a\":\"test\",\"c\":{\"d\":\"e\"}}");
	CHECK_RC(jose_jcs(o, &out, &n), 0);
	CHECK(out != NULL && strcmp(out, "{\"a\":\"test\",\"b\":1,\"c\":{\"d\":\"e\"}}") == 0);
	free(out);
	json_object_put(o);
	{
		const char *c = "{\"a\":\"test\",\"b\":1,\"c\":{\"d\":\"e\"}}";

		CHECK(EVP_Digest(c, strlen(c), d, &dl, EVP_sha384(), NULL) == 1);
		CHECK(hex_eq(d, 48, "e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f"
		    "525cd22c4597480a186427c813ca941da78870c3"));
	}

	/* RFC 8785 3.2.3: names sort by UTF-16 code units (emoji before U+FB33) */
	CHECK(jcs_is("{\"\\u20ac\":\"Euro Sign\",\"\\r\":\"Carriage Return\","
	    "\"\\ufb33\":\"Hebrew Letter Dalet With Dagesh\",\"1\":\"One\","
	    "\"\\ud83d\\ude00\":\"Emoji: Grinning Face\",\"\\u0080\":\"Control\","
	    "\"\\u00f6\":\"Latin Small Letter O With Diaeresis\"}",
	    "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
	    "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
	    "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
	    "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}"));
	/* string escaping: short forms, \u00XX lowercase, '/' and DEL as is */
	CHECK(jcs_is("[\"\\u0000\\b\\t\\n\\f\\r\\u000f\\u001f \\\" \\\\ / \\u007f\"]",
	    "[\"\\u0000\\b\\t\\n\\f\\r\\u000f\\u001f \\\" \\\\ / \x7f\"]"));
	CHECK(jcs_is("{\"z\":[1,-2,true,false,null,{}],\"a\":{\"c\":\"\",\"b\":[]}}",
	    "{\"a\":{\"b\":[],\"c\":\"\"},\"z\":[1,-2,true,false,null,{}]}"));
	CHECK(jcs_is("9007199254740992", "9007199254740992"));
	o = json_tokener_parse("9007199254740993");
	CHECK_RC(jose_jcs(o, &out, &n), VTPM_E_UNSUPPORTED);
	json_object_put(o);
	o = json_tokener_parse("{\"a\":1.5}");
	CHECK_RC(jose_jcs(o, &out, &n), VTPM_E_UNSUPPORTED);
	json_object_put(o);
	o = json_object_new_string_len("\xc0\xaf", 2);	/* overlong '/' */
	CHECK_RC(jose_jcs(o, &out, &n), VTPM_E_FORMAT);
	json_object_put(o);
	o = json_object_new_string_len("\xed\xa0\x80", 3);	/* a lone surrogate */
	CHECK_RC(jose_jcs(o, &out, &n), VTPM_E_FORMAT);
	json_object_put(o);
	CHECK(out == NULL);
}

/* ---- the shared kbs-rcar vector ---------------------------------------- */

static void
test_vector(void)
{
	json_object *v = load_json("kbs_v0.4.0_vectors.json"), *jwk = NULL, *want;
	struct jose_tee_key *tk = NULL;
	uint8_t d[32], digest[48], rd[64], *plain;
	char *canon = NULL, ev[256];
	const char *jwe;
	size_t n, plen;
	char why[256];
	json_object *rt;

	hex_to(jstr(v, "tee_private_key_d_hex"), d, 32);
	CHECK_RC(jose_tee_key_from_ec_d(d, &tk), 0);
	if (tk == NULL) {
		json_object_put(v);
		return;
	}
	/* our JWK of the fixed key is the vector's tee-pubkey */
	CHECK_RC(jose_tee_key_jwk(tk, &jwk), 0);
	want = jget(v, "tee_pubkey_jwk");
	CHECK(jwk != NULL && json_object_equal(jwk, want));

	/* runtime data: canonical text, SHA-384, 64-byte report data, sample evidence */
	rt = json_object_new_object();
	json_object_object_add(rt, "additional-evidence", json_object_new_string(""));
	json_object_object_add(rt, "nonce", json_object_new_string(jstr(v, "challenge.nonce")));
	json_object_object_add(rt, "tee-pubkey", json_object_get(jwk));
	CHECK_RC(jose_jcs(rt, &canon, &n), 0);
	CHECK(canon != NULL && strcmp(canon, jstr(v, "runtime_data_jcs")) == 0);
	free(canon);
	json_object_put(rt);
	CHECK_RC(jose_runtime_data_digest(jstr(v, "challenge.nonce"), jwk, "", digest, rd), 0);
	CHECK(hex_eq(digest, 48, jstr(v, "runtime_data_sha384")));
	CHECK(hex_eq(rd, 64, jstr(v, "report_data_64_snp_tdx")));
	CHECK_RC(keyprov_kbs_sample_evidence(NULL, "sample", rd, ev, sizeof(ev), &n), 0);
	{
		json_object *got = json_tokener_parse(ev);

		CHECK(got != NULL && json_object_equal(got, jget(v, "sample_tee_evidence")));
		json_object_put(got);
	}

	/* the JWE decrypts to the vector's plaintext */
	jwe = json_object_to_json_string_ext(jget(jget(v, "jwe"), "response_body"),
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	plain = sodium_malloc(JOSE_PLAIN_MAX);
	CHECK_RC(jose_jwe_decrypt(tk, jwe, strlen(jwe), plain, 4096, &plen, why, sizeof(why)), 0);
	CHECK(plen == strlen(jstr(v, "jwe.plaintext")) &&
	    memcmp(plain, jstr(v, "jwe.plaintext"), plen) == 0);
	sodium_free(plain);
	json_object_put(jwk);
	jose_tee_key_free(tk);
	json_object_put(v);
}

/* ---- tampering --------------------------------------------------------- */

/* Decrypts jwe (a JSON object) with tk; returns the code, checks the output is zero on failure. */
static int
try_decrypt(const struct jose_tee_key *tk, json_object *jwe, char *why, size_t whylen)
{
	const char *s = json_object_to_json_string_ext(jwe, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	uint8_t *out = sodium_malloc(4096);
	size_t n = 99, i;
	int rc, zero = 1;

	memset(out, 0xa5, 4096);
	rc = jose_jwe_decrypt(tk, s, strlen(s), out, 4096, &n, why, whylen);
	if (rc != 0) {
		for (i = 0; i < 4096; i++)
			zero &= out[i] == 0;
		CHECK(zero && n == 0 && why[0] != '\0');
	}
	sodium_free(out);
	return rc;
}

/* A copy of the vector's JWE with member key's base64url text altered at position pos. */
static json_object *
jwe_flip(json_object *orig, const char *key, size_t pos)
{
	json_object *c = NULL, *v;
	char buf[1024];
	const char *s;

	json_object_deep_copy(orig, &c, NULL);
	json_object_object_get_ex(c, key, &v);
	s = json_object_get_string(v);
	snprintf(buf, sizeof(buf), "%s", s);
	if (pos >= strlen(buf))
		pos = strlen(buf) - 1;
	buf[pos] = buf[pos] == 'A' ? 'B' : 'A';
	json_object_object_add(c, key, json_object_new_string(buf));
	return c;
}

static json_object *
jwe_with(json_object *orig, const char *key, json_object *val)
{
	json_object *c = NULL;

	json_object_deep_copy(orig, &c, NULL);
	if (val == NULL)
		json_object_object_del(c, key);
	else
		json_object_object_add(c, key, val);
	return c;
}

/* The vector's JWE with its protected header replaced by hdr (JSON text). */
static json_object *
jwe_header(json_object *orig, const char *hdr)
{
	char b64[1024];

	sodium_bin2base64(b64, sizeof(b64), (const uint8_t *)hdr, strlen(hdr),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return jwe_with(orig, "protected", json_object_new_string(b64));
}

static void
test_tamper(void)
{
	static const char *const parts[] = { "protected", "encrypted_key", "iv",
	    "ciphertext", "tag" };
	json_object *v = load_json("kbs_v0.4.0_vectors.json"), *jwe, *t;
	struct jose_tee_key *tk = NULL, *other = NULL;
	uint8_t d[32];
	char why[256];
	size_t i;
	int rc;

	hex_to(jstr(v, "tee_private_key_d_hex"), d, 32);
	if (jose_tee_key_from_ec_d(d, &tk) != 0) {
		CHECK(0);
		json_object_put(v);
		return;
	}
	jwe = jget(jget(v, "jwe"), "response_body");
	CHECK_RC(try_decrypt(tk, jwe, why, sizeof(why)), 0);

	/* one altered character anywhere: never plaintext */
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t pos;

		for (pos = 0; pos < 40; pos += 13) {
			t = jwe_flip(jwe, parts[i], pos);
			rc = try_decrypt(tk, t, why, sizeof(why));
			/* AUTH (tag, key unwrap), FORMAT (base64, JSON) or
			 * UNSUPPORTED (an altered alg or enc name) */
			CHECK(rc == VTPM_E_AUTH || rc == VTPM_E_FORMAT ||
			    rc == VTPM_E_UNSUPPORTED);
			if (rc == 0)
				printf("  tampered %s at %zu decrypted\n", parts[i], pos);
			json_object_put(t);
		}
	}
	/* another TEE key */
	memset(d, 0x33, sizeof(d));
	CHECK_RC(jose_tee_key_from_ec_d(d, &other), 0);
	CHECK_RC(try_decrypt(other, jwe, why, sizeof(why)), VTPM_E_AUTH);
	jose_tee_key_free(other);

	/* shape: missing, extra or unsupported members and headers */
	t = jwe_with(jwe, "tag", NULL);
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_FORMAT);
	json_object_put(t);
	t = jwe_with(jwe, "aad", json_object_new_string("AAAA"));
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_UNSUPPORTED);
	json_object_put(t);
	t = jwe_with(jwe, "header", json_object_new_object());
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_UNSUPPORTED);
	json_object_put(t);
	t = jwe_with(jwe, "iv", json_object_new_string("oKGio6Slpqeoqaqr="));
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_FORMAT);
	json_object_put(t);
	t = jwe_with(jwe, "iv", json_object_new_string("oKGio6Slpqeo"));
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_FORMAT);	/* 9 bytes */
	json_object_put(t);
	t = jwe_with(jwe, "ciphertext", json_object_new_int(5));
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_FORMAT);
	json_object_put(t);
	t = jwe_header(jwe, "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A128GCM\"}");
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_UNSUPPORTED);
	json_object_put(t);
	t = jwe_header(jwe, "{\"alg\":\"RSA-OAEP-256\",\"enc\":\"A256GCM\"}");
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_UNSUPPORTED);
	json_object_put(t);
	t = jwe_header(jwe, "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"zip\":\"DEF\"}");
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_UNSUPPORTED);
	json_object_put(t);
	t = jwe_header(jwe, "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\"}");
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_FORMAT);	/* no epk */
	json_object_put(t);
	/* an epk that is not on the curve (x, y+1 of the real one) */
	t = jwe_header(jwe, "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{\"crv\":"
	    "\"P-256\",\"kty\":\"EC\",\"x\":\"1lqTl3yqPRsIGFL_V6eeRl8WYFdzBLrq1QXdOkhYnPM\","
	    "\"y\":\"UBheiVNy32Ih6joTdVfkc_3bZ1XwW9UHw8Uz_OnJEoY\"}}");
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_FORMAT);
	json_object_put(t);
	/* the legacy (protocol 0.1) form: protected as plain JSON */
	t = jwe_with(jwe, "protected", json_object_new_string(
	    "{\"alg\":\"RSA1_5\",\"enc\":\"A256GCM\"}"));
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_FORMAT);
	CHECK(strstr(why, "0.1") != NULL);
	json_object_put(t);
	/* not JSON at all; JSON but not an object; a truncated object */
	{
		uint8_t out[64];
		size_t n;

		CHECK_RC(jose_jwe_decrypt(tk, "\x00\x01garbage", 9, out, sizeof(out), &n,
		    why, sizeof(why)), VTPM_E_FORMAT);
		CHECK_RC(jose_jwe_decrypt(tk, "[1,2]", 5, out, sizeof(out), &n, why,
		    sizeof(why)), VTPM_E_FORMAT);
		CHECK_RC(jose_jwe_decrypt(tk, "{\"protected\":\"ey", 16, out, sizeof(out), &n,
		    why, sizeof(why)), VTPM_E_FORMAT);
		/* a plaintext larger than the caller's buffer */
		{
			const char *s = json_object_to_json_string_ext(jwe, JSON_C_TO_STRING_PLAIN);

			CHECK_RC(jose_jwe_decrypt(tk, s, strlen(s), out, 8, &n, why, sizeof(why)),
			    VTPM_E_TOOBIG);
		}
	}
	jose_tee_key_free(tk);
	json_object_put(v);
}

static void
test_b64url(void)
{
	uint8_t out[16];
	size_t n;

	CHECK_RC(jose_b64url_decode("AQID", 4, out, sizeof(out), &n), 0);
	CHECK(n == 3 && out[0] == 1 && out[2] == 3);
	CHECK_RC(jose_b64url_decode("AQI", 3, out, sizeof(out), &n), 0);
	CHECK(n == 2);
	CHECK_RC(jose_b64url_decode("AQI=", 4, out, sizeof(out), &n), VTPM_E_FORMAT);
	CHECK_RC(jose_b64url_decode("AQJ", 3, out, sizeof(out), &n), VTPM_E_FORMAT);	/* trailing bits */
	CHECK_RC(jose_b64url_decode("A+/A", 4, out, sizeof(out), &n), VTPM_E_FORMAT);
	CHECK_RC(jose_b64url_decode("-_-_", 4, out, sizeof(out), &n), 0);
	CHECK_RC(jose_b64url_decode("A", 1, out, sizeof(out), &n), VTPM_E_FORMAT);
	CHECK_RC(jose_b64url_decode("AAAAAAAAAAAAAAAAAAAAAAAA", 24, out, sizeof(out), &n),
	    VTPM_E_TOOBIG);
}

/* ---- RSA-OAEP-256 against the Python broker's JWE ------------------------ */

static void
test_rsa(void)
{
	json_object *v = load_json("rsa-oaep-256.json"), *jwk = NULL, *t;
	struct jose_tee_key *tk = NULL, *fresh = NULL;
	const char *pem = jstr(v, "private_key_pem"), *jwe;
	uint8_t out[256];
	size_t n;
	char why[256];

	CHECK_RC(jose_tee_key_from_pem(pem, strlen(pem), &tk), 0);
	if (tk == NULL) {
		json_object_put(v);
		return;
	}
	CHECK_RC(jose_tee_key_jwk(tk, &jwk), 0);
	CHECK(jwk != NULL && json_object_equal(jwk, jget(v, "tee_pubkey_jwk")));
	json_object_put(jwk);
	jwe = json_object_to_json_string_ext(jget(v, "jwe"), JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	CHECK_RC(jose_jwe_decrypt(tk, jwe, strlen(jwe), out, sizeof(out), &n, why,
	    sizeof(why)), 0);
	CHECK(n == strlen(jstr(v, "plaintext")) && memcmp(out, jstr(v, "plaintext"), n) == 0);
	/* and it is a root-key resource of version 7 */
	{
		struct seal_kek *k = NULL;

		CHECK_RC(keyprov_kbs_parse_resource(out, n, 0, &k, why, sizeof(why)), 0);
		CHECK(k != NULL && k->version == 7 && k->key[0] == 0 && k->key[31] == 31);
		seal_kek_free(k);
	}
	t = jwe_flip(jget(v, "jwe"), "encrypted_key", 20);
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_AUTH);
	json_object_put(t);
	t = jwe_flip(jget(v, "jwe"), "ciphertext", 3);
	CHECK_RC(try_decrypt(tk, t, why, sizeof(why)), VTPM_E_AUTH);
	json_object_put(t);
	/* a fresh RSA key cannot open it; an EC key refuses the alg */
	CHECK_RC(jose_tee_key_new(JOSE_KEY_RSA_OAEP_256, &fresh), 0);
	CHECK_RC(try_decrypt(fresh, jget(v, "jwe"), why, sizeof(why)), VTPM_E_AUTH);
	CHECK_RC(jose_tee_key_jwk(fresh, &jwk), 0);
	CHECK(jwk != NULL && strcmp(jstr(jwk, "alg"), "RSA-OAEP-256") == 0 &&
	    strcmp(jstr(jwk, "e"), "AQAB") == 0 && strlen(jstr(jwk, "n")) == 512);
	json_object_put(jwk);
	jose_tee_key_free(fresh);
	CHECK_RC(jose_tee_key_new(JOSE_KEY_EC_P256, &fresh), 0);
	CHECK_RC(try_decrypt(fresh, jget(v, "jwe"), why, sizeof(why)), VTPM_E_UNSUPPORTED);
	CHECK_RC(jose_tee_key_jwk(fresh, &jwk), 0);
	CHECK(jwk != NULL && strlen(jstr(jwk, "x")) == 43 && strlen(jstr(jwk, "y")) == 43);
	json_object_put(jwk);
	jose_tee_key_free(fresh);
	CHECK_RC(jose_tee_key_from_pem("-----BEGIN", 10, &fresh), VTPM_E_FORMAT);
	jose_tee_key_free(tk);
	json_object_put(v);
}

/* ---- the released resource ------------------------------------------------ */

static int
parse_res(const char *s, uint32_t want, uint32_t *version, uint8_t *first)
{
	struct seal_kek *k = NULL;
	char why[256];
	int rc;

	rc = keyprov_kbs_parse_resource((const uint8_t *)s, strlen(s), want, &k, why,
	    sizeof(why));
	if (rc == 0) {
		*version = k->version;
		*first = k->key[0];
	} else {
		CHECK(k == NULL && why[0] != '\0');
	}
	seal_kek_free(k);
	return rc;
}

static void
test_resource(void)
{
	static const char key_b64[] = "AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	struct seal_kek *k = NULL, *ref = NULL;
	uint8_t raw[32], first = 0;
	uint32_t ver = 0;
	char why[256], buf[256];

	memset(raw, 0x42, sizeof(raw));
	CHECK_RC(keyprov_kbs_parse_resource(raw, 32, 0, &k, why, sizeof(why)), 0);
	CHECK(k != NULL && k->version == 1 && k->key[0] == 0x42);
	/* the kid is derived as seal does */
	CHECK_RC(seal_kek_new(raw, 1, &ref), 0);
	CHECK(k != NULL && ref != NULL && memcmp(k->kid, ref->kid, SEAL_KID_LEN) == 0);
	seal_kek_free(k);
	seal_kek_free(ref);
	k = NULL;
	CHECK_RC(keyprov_kbs_parse_resource(raw, 32, 5, &k, why, sizeof(why)), 0);
	CHECK(k != NULL && k->version == 5);
	seal_kek_free(k);
	CHECK_RC(keyprov_kbs_parse_resource(raw, 31, 0, &k, why, sizeof(why)), VTPM_E_FORMAT);
	CHECK_RC(keyprov_kbs_parse_resource(raw, 33, 0, &k, why, sizeof(why)), VTPM_E_FORMAT);

	snprintf(buf, sizeof(buf), "{\"version\":3,\"key\":\"%s\"}", key_b64);
	CHECK_RC(parse_res(buf, 0, &ver, &first), 0);
	CHECK(ver == 3 && first == 1);
	snprintf(buf, sizeof(buf), " {\n \"key\" : \"%s\" ,\"version\": 4294967295 }\n", key_b64);
	CHECK_RC(parse_res(buf, 0, &ver, &first), 0);
	CHECK(ver == 4294967295u);
	snprintf(buf, sizeof(buf), "{\"version\":3,\"key\":\"%s\"}", key_b64);
	CHECK_RC(parse_res(buf, 3, &ver, &first), 0);
	CHECK_RC(parse_res(buf, 2, &ver, &first), VTPM_E_FORMAT);	/* TAG.v2 holds 3 */
	/* without padding is accepted too */
	CHECK_RC(parse_res("{\"version\":2,\"key\":\"AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}",
	    0, &ver, &first), 0);
	CHECK_RC(parse_res("{\"version\":0,\"key\":\"AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}",
	    0, &ver, &first), VTPM_E_FORMAT);
	CHECK_RC(parse_res("{\"version\":01,\"key\":\"AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}",
	    0, &ver, &first), VTPM_E_FORMAT);
	CHECK_RC(parse_res("{\"version\":4294967296,\"key\":\"AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}",
	    0, &ver, &first), VTPM_E_FORMAT);
	CHECK_RC(parse_res("{\"version\":-1,\"key\":\"AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}",
	    0, &ver, &first), VTPM_E_FORMAT);
	CHECK_RC(parse_res("{\"version\":1,\"key\":\"AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\"}",
	    0, &ver, &first), VTPM_E_FORMAT);	/* 31 bytes */
	CHECK_RC(parse_res("{\"version\":1,\"key\":\"AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==\"}",
	    0, &ver, &first), VTPM_E_FORMAT);	/* 34 bytes */
	CHECK_RC(parse_res("{\"version\":1,\"key\":\"AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\",\"x\":1}",
	    0, &ver, &first), VTPM_E_FORMAT);	/* extra member */
	CHECK_RC(parse_res("{\"version\":1,\"version\":2,\"key\":\"AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}",
	    0, &ver, &first), VTPM_E_FORMAT);	/* duplicate */
	CHECK_RC(parse_res("{\"key\":\"AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}",
	    0, &ver, &first), VTPM_E_FORMAT);	/* no version */
	CHECK_RC(parse_res("{\"version\":1,\"key\":\"AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}x",
	    0, &ver, &first), VTPM_E_FORMAT);	/* trailing bytes */
	CHECK_RC(parse_res("{\"version\":1,\"key\":\"AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"",
	    0, &ver, &first), VTPM_E_FORMAT);	/* truncated */
	CHECK_RC(parse_res("{\"version\":1,\"key\":\"-_ECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}",
	    0, &ver, &first), VTPM_E_FORMAT);	/* base64url, not standard */
	CHECK_RC(parse_res("", 0, &ver, &first), VTPM_E_FORMAT);
}

/* ---- provider configuration and an unreachable broker --------------------- */

static int
evidence_none(void *arg, const char *tee, const uint8_t rd[KEYPROV_REPORT_DATA_LEN],
    char *out, size_t cap, size_t *len)
{
	return keyprov_kbs_sample_evidence(arg, tee, rd, out, cap, len);
}

static int
kbs_open(const char *spec, const char *res, int allow_http, struct keyprov **kp)
{
	struct keyprov_config c;

	memset(&c, 0, sizeof(c));
	c.kc_spec = spec;
	c.kc_resource = res;
	c.kc_allow_http = allow_http;
	c.kc_tee = "sample";
	c.kc_evidence = evidence_none;
	c.kc_timeout_ms = 3000;
	return keyprov_open_config(&c, kp);
}

static void
test_provider(void)
{
	struct keyprov *kp = NULL;
	struct seal_kek *k = NULL;

	CHECK_RC(kbs_open("kbs:https://127.0.0.1:1", "vtpm/kek/root", 0, &kp), 0);
	CHECK(kp != NULL && !keyprov_is_dev(kp));
	if (kp != NULL) {
		/* nothing listens on port 1: a quick, clear failure */
		CHECK_RC(keyprov_get_root(kp, &k), VTPM_E_IO);
		CHECK(k == NULL && strstr(keyprov_last_error(kp), "127.0.0.1:1") != NULL);
		keyprov_abort(kp);
		CHECK_RC(keyprov_get_root(kp, &k), VTPM_E_AGAIN);
		keyprov_close(kp);
		kp = NULL;
	}
	CHECK_RC(kbs_open("kbs:http://127.0.0.1:1", "vtpm/kek/root", 0, &kp), VTPM_E_INVAL);
	CHECK_RC(kbs_open("kbs:http://127.0.0.1:1", "vtpm/kek/root", 1, &kp), 0);
	keyprov_close(kp);
	kp = NULL;
	CHECK_RC(kbs_open("kbs:ftp://host", "vtpm/kek/root", 1, &kp), VTPM_E_INVAL);
	CHECK_RC(kbs_open("kbs:https://", "vtpm/kek/root", 1, &kp), VTPM_E_INVAL);
	CHECK_RC(kbs_open("kbs:https://a b", "vtpm/kek/root", 1, &kp), VTPM_E_INVAL);
	CHECK_RC(kbs_open("kbs:https://u@host", "vtpm/kek/root", 1, &kp), VTPM_E_INVAL);
	CHECK_RC(kbs_open("kbs:https://host", "vtpm/kek", 1, &kp), VTPM_E_INVAL);
	CHECK_RC(kbs_open("kbs:https://host", "vtpm/kek/a/b", 1, &kp), VTPM_E_INVAL);
	CHECK_RC(kbs_open("kbs:https://host", "vtpm/.kek/a", 1, &kp), VTPM_E_INVAL);
	CHECK_RC(kbs_open("kbs:https://host", "vtpm//a", 1, &kp), VTPM_E_INVAL);
	CHECK_RC(kbs_open("kbs:https://host", "vtpm/kek/a?b", 1, &kp), VTPM_E_INVAL);
	CHECK_RC(kbs_open("kbs:https://host", NULL, 1, &kp), VTPM_E_INVAL);
	CHECK_RC(kbs_open("kbs:https://host/", "vtpm/kek/k.v2_x-y", 1, &kp), 0);
	keyprov_close(kp);
	CHECK_RC(kbs_open("nope:x", "vtpm/kek/a", 1, &kp), VTPM_E_UNSUPPORTED);
}

/* ---- rotation of a store ------------------------------------------------- */

static char tmpdir[64];

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static struct seal_kek *
kek_of(uint8_t b, uint32_t version)
{
	uint8_t key[SEAL_KEY_LEN];
	struct seal_kek *k = NULL;

	memset(key, b, sizeof(key));
	if (seal_kek_new(key, version, &k) != 0)
		exit(2);
	return k;
}

struct collect {
	struct store_instance	recs[8];
	int			n;
};

static int
collect_cb(const struct store_instance *r, void *arg)
{
	struct collect *c = arg;

	if (c->n < 8)
		c->recs[c->n++] = *r;
	return 0;
}

static void
test_rewrap(void)
{
	struct seal_kek *k1 = kek_of(0x11, 1), *k2 = kek_of(0x22, 2), *k3 = kek_of(0x33, 3);
	uint8_t deks[3][SEAL_KEY_LEN], dek[SEAL_KEY_LEN], kcv[SEAL_KCV_LEN], kid[SEAL_KID_LEN];
	struct collect before, after;
	struct store_instance rec;
	struct store_batch *b = store_batch_new();
	struct store *s = NULL;
	uint32_t ver;
	size_t count = 99;
	int i;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_kbs.XXXXXX");
	if (mkdtemp(tmpdir) == NULL || b == NULL) {
		CHECK(0);
		return;
	}
	CHECK_RC(store_open_lmdb_flags(tmpdir, 0, STORE_F_NOSYNC, &s), 0);
	if (s == NULL)
		goto out;
	/* a fresh store has no key check: nothing to rotate */
	CHECK_RC(store_rewrap_all(s, k1, k2, &count), VTPM_E_NOTFOUND);
	CHECK_RC(seal_kek_check_make(k1, kcv), 0);
	CHECK_RC(store_batch_put_kcv(b, kcv), 0);
	for (i = 0; i < 3; i++) {
		memset(&rec, 0, sizeof(rec));
		snprintf(rec.name, sizeof(rec.name), "inst-%d", i);
		memset(rec.uuid, 0x40 + i, sizeof(rec.uuid));
		rec.perm_gen = 10 + (uint64_t)i;
		rec.pcr_banks = 2;
		seal_dek_generate(deks[i]);
		CHECK_RC(seal_dek_wrap(k1, rec.uuid, deks[i], rec.wrapped_dek), 0);
		CHECK_RC(store_batch_put_inst(b, &rec), 0);
	}
	CHECK_RC(store_batch_commit(s, b), 0);
	memset(&before, 0, sizeof(before));
	CHECK_RC(store_inst_list(s, collect_cb, &before), 0);
	CHECK(before.n == 3);

	/* the wrong old key changes nothing */
	CHECK_RC(store_rewrap_all(s, k3, k2, &count), VTPM_E_WRONG_KEY);
	memset(&after, 0, sizeof(after));
	CHECK_RC(store_inst_list(s, collect_cb, &after), 0);
	CHECK(memcmp(&before, &after, sizeof(before)) == 0);
	CHECK_RC(store_meta_get_kcv(s, kcv), 0);
	CHECK_RC(seal_kek_check_verify(k1, kcv), 0);

	/* one record whose wrapped key does not open: nothing is written */
	rec = before.recs[1];
	rec.wrapped_dek[50] ^= 1;
	CHECK_RC(store_batch_put_inst(b, &rec), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK_RC(store_rewrap_all(s, k1, k2, &count), VTPM_E_AUTH);
	CHECK_RC(store_meta_get_kcv(s, kcv), 0);
	CHECK_RC(seal_kek_check_verify(k1, kcv), 0);
	CHECK_RC(store_inst_get(s, "inst-0", &rec), 0);
	CHECK(memcmp(rec.wrapped_dek, before.recs[0].wrapped_dek, SEAL_WRAPPED_DEK_LEN) == 0);
	CHECK_RC(store_batch_put_inst(b, &before.recs[1]), 0);	/* repair */
	CHECK_RC(store_batch_commit(s, b), 0);

	/* the rotation: every wrapped key and the key check move to k2 at once */
	CHECK_RC(store_rewrap_all(s, k1, k2, &count), 0);
	CHECK(count == 3);
	CHECK_RC(store_meta_get_kcv(s, kcv), 0);
	CHECK_RC(seal_kek_check_verify(k2, kcv), 0);
	CHECK_RC(seal_kek_check_verify(k1, kcv), VTPM_E_WRONG_KEY);
	CHECK_RC(seal_kek_check_peek(kcv, kid, &ver), 0);
	CHECK(ver == 2 && memcmp(kid, k2->kid, SEAL_KID_LEN) == 0);
	memset(&after, 0, sizeof(after));
	CHECK_RC(store_inst_list(s, collect_cb, &after), 0);
	CHECK(after.n == 3);
	for (i = 0; i < after.n; i++) {
		CHECK_RC(seal_dek_peek(after.recs[i].wrapped_dek, kid, &ver), 0);
		CHECK(ver == 2 && memcmp(kid, k2->kid, SEAL_KID_LEN) == 0);
		CHECK_RC(seal_dek_unwrap(k1, after.recs[i].uuid, after.recs[i].wrapped_dek, dek),
		    VTPM_E_WRONG_KEY);
		CHECK_RC(seal_dek_unwrap(k2, after.recs[i].uuid, after.recs[i].wrapped_dek, dek), 0);
		CHECK(memcmp(dek, deks[i], SEAL_KEY_LEN) == 0);	/* same data key */
		CHECK(after.recs[i].perm_gen == before.recs[i].perm_gen);
		CHECK(strcmp(after.recs[i].name, before.recs[i].name) == 0);
	}
	/* again with the old key: refused, nothing changes */
	CHECK_RC(store_rewrap_all(s, k1, k3, &count), VTPM_E_WRONG_KEY);
	CHECK_RC(store_rewrap_all(s, k2, k3, &count), 0);
	CHECK(count == 3);
	CHECK_RC(seal_dek_peek(after.recs[0].wrapped_dek, kid, &ver), 0);
	{
		uint8_t notdek[SEAL_WRAPPED_DEK_LEN];

		memset(notdek, 0, sizeof(notdek));
		memcpy(notdek, kcv, 16);	/* a key check's header is not a wrapped key's */
		CHECK_RC(seal_dek_peek(notdek, kid, &ver), VTPM_E_FORMAT);
	}
out:
	store_close(s);
	store_batch_free(b);
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	seal_kek_free(k1);
	seal_kek_free(k2);
	seal_kek_free(k3);
	sodium_memzero(deks, sizeof(deks));
	sodium_memzero(dek, sizeof(dek));
}

/* ---- Trustee evidence JSON ------------------------------------------------ */

static uint8_t *
read_vec(const char *rel, size_t *len)
{
	char path[512];
	FILE *f;
	uint8_t *buf;

	snprintf(path, sizeof(path), "%s/../%s", vecdir, rel);
	if ((f = fopen(path, "rb")) == NULL || (buf = malloc(1 << 20)) == NULL) {
		printf("FATAL: cannot read %s\n", path);
		exit(2);
	}
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

/* An int member in 0..max, else -1 (also for null or a missing member). */
static long long
jint(json_object *o, const char *k, long long max)
{
	json_object *v;
	long long n;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	n = (long long)json_object_get_uint64(v);
	return n >= 0 && n <= max ? n : -1;
}

static int
jnull(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v == NULL;
}

/* Copies a JSON byte array of exactly n elements; 0 or -1. */
static int
jarr(json_object *o, const char *k, uint8_t *out, size_t n)
{
	json_object *v, *e;
	size_t i;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) != n)
		return -1;
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(v, i);
		if (!json_object_is_type(e, json_type_int) || json_object_get_int(e) < 0 ||
		    json_object_get_int(e) > 255)
			return -1;
		out[i] = (uint8_t)json_object_get_int(e);
	}
	return 0;
}

static void
put_le(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The raw TCB back from its JSON (the reverse of the generation's layout). */
static int
tcb_back(json_object *r, const char *k, int turin, uint8_t out[8])
{
	json_object *t;

	memset(out, 0, 8);
	if (!json_object_object_get_ex(r, k, &t))
		return -1;
	if (turin) {
		out[0] = (uint8_t)jint(t, "fmc", 255);
		out[1] = (uint8_t)jint(t, "bootloader", 255);
		out[2] = (uint8_t)jint(t, "tee", 255);
		out[3] = (uint8_t)jint(t, "snp", 255);
	} else {
		if (!jnull(t, "fmc"))
			return -1;
		out[0] = (uint8_t)jint(t, "bootloader", 255);
		out[1] = (uint8_t)jint(t, "tee", 255);
		out[6] = (uint8_t)jint(t, "snp", 255);
	}
	out[7] = (uint8_t)jint(t, "microcode", 255);
	return 0;
}

/* Rebuilds the 1184 report bytes from SnpEvidence JSON as Trustee's sev crate would. */
static int
snp_json_back(json_object *ev, uint8_t rep[1184])
{
	json_object *r, *v, *sig;
	long long ver;
	int turin, bad = 0;

	memset(rep, 0, 1184);
	if (!json_object_object_get_ex(ev, "attestation_report", &r))
		return -1;
	ver = jint(r, "version", 5);
	turin = ver >= 3 && jint(r, "cpuid_fam_id", 255) == 0x1A;
	put_le(rep + 0x00, (uint64_t)ver, 4);
	put_le(rep + 0x04, (uint64_t)jint(r, "guest_svn", 0xffffffffLL), 4);
	put_le(rep + 0x08, (uint64_t)jint(r, "policy", 0x7fffffffffffffffLL), 8);
	bad |= jarr(r, "family_id", rep + 0x10, 16) | jarr(r, "image_id", rep + 0x20, 16);
	put_le(rep + 0x30, (uint64_t)jint(r, "vmpl", 3), 4);
	put_le(rep + 0x34, (uint64_t)jint(r, "sig_algo", 0xffff), 4);
	bad |= tcb_back(r, "current_tcb", turin, rep + 0x38);
	put_le(rep + 0x40, (uint64_t)jint(r, "plat_info", 0x7fffffffffffffffLL), 8);
	put_le(rep + 0x48, (uint64_t)jint(r, "key_info", 0xffffffffLL), 4);
	bad |= jarr(r, "report_data", rep + 0x50, 64) | jarr(r, "measurement", rep + 0x90, 48) |
	    jarr(r, "host_data", rep + 0xC0, 32) | jarr(r, "id_key_digest", rep + 0xE0, 48) |
	    jarr(r, "author_key_digest", rep + 0x110, 48) |
	    jarr(r, "report_id", rep + 0x140, 32) | jarr(r, "report_id_ma", rep + 0x160, 32);
	bad |= tcb_back(r, "reported_tcb", turin, rep + 0x180);
	if (ver >= 3) {
		rep[0x188] = (uint8_t)jint(r, "cpuid_fam_id", 255);
		rep[0x189] = (uint8_t)jint(r, "cpuid_mod_id", 255);
		rep[0x18A] = (uint8_t)jint(r, "cpuid_step", 255);
	} else if (!jnull(r, "cpuid_fam_id") || !jnull(r, "cpuid_mod_id") ||
	    !jnull(r, "cpuid_step")) {
		bad = -1;
	}
	bad |= jarr(r, "chip_id", rep + 0x1A0, 64);
	bad |= tcb_back(r, "committed_tcb", turin, rep + 0x1E0);
	if (!json_object_object_get_ex(r, "current", &v))
		return -1;
	rep[0x1E8] = (uint8_t)jint(v, "build", 255);
	rep[0x1E9] = (uint8_t)jint(v, "minor", 255);
	rep[0x1EA] = (uint8_t)jint(v, "major", 255);
	if (!json_object_object_get_ex(r, "committed", &v))
		return -1;
	rep[0x1EC] = (uint8_t)jint(v, "build", 255);
	rep[0x1ED] = (uint8_t)jint(v, "minor", 255);
	rep[0x1EE] = (uint8_t)jint(v, "major", 255);
	bad |= tcb_back(r, "launch_tcb", turin, rep + 0x1F0);
	if (ver >= 5) {
		put_le(rep + 0x1F8, (uint64_t)jint(r, "launch_mit_vector", 0x7fffffffffffffffLL), 8);
		put_le(rep + 0x200, (uint64_t)jint(r, "current_mit_vector", 0x7fffffffffffffffLL), 8);
	} else if (!jnull(r, "launch_mit_vector") || !jnull(r, "current_mit_vector")) {
		bad = -1;
	}
	if (!json_object_object_get_ex(r, "signature", &sig))
		return -1;
	bad |= jarr(sig, "r", rep + 0x2A0, 72) | jarr(sig, "s", rep + 0x2E8, 72);
	return bad;
}

static void
test_evidence(void)
{
	struct kbs_snp_cert cert;
	json_object *ev, *chain, *c0, *v;
	uint8_t *rep, *vcek, *quote, back[1184], syn[1184], ccel[100], dec[8192];
	char *out;
	size_t rlen, vlen, qlen, len, dlen;
	int i;

	out = malloc(KEYPROV_EVIDENCE_MAX);
	CHECK(out != NULL);

	/* Trustee's own SNP test report (v2, Milan) and its VCEK */
	rep = read_vec("snp-trustee/test-report.bin", &rlen);
	vcek = read_vec("snp-trustee/test-vcek.der", &vlen);
	CHECK(rlen == KBS_SNP_REPORT_LEN);
	cert = (struct kbs_snp_cert){ "VCEK", vcek, vlen };
	CHECK_RC(kbs_evidence_snp_json(rep, rlen, &cert, 1, out, KEYPROV_EVIDENCE_MAX, &len), 0);
	CHECK(len == strlen(out));
	ev = json_tokener_parse(out);
	CHECK(ev != NULL && json_object_object_length(ev) == 2);
	CHECK(ev != NULL && snp_json_back(ev, back) == 0);
	CHECK(memcmp(back, rep, 1184) == 0);	/* every byte of the report is in the JSON */
	CHECK(json_object_object_get_ex(ev, "cert_chain", &chain) &&
	    json_object_array_length(chain) == 1);
	c0 = json_object_array_get_idx(chain, 0);
	CHECK(json_object_object_get_ex(c0, "cert_type", &v) &&
	    strcmp(json_object_get_string(v), "VCEK") == 0);
	CHECK(json_object_object_get_ex(c0, "data", &v) &&
	    json_object_array_length(v) == vlen &&
	    json_object_get_int(json_object_array_get_idx(v, 0)) == vcek[0] &&
	    json_object_get_int(json_object_array_get_idx(v, vlen - 1)) == vcek[vlen - 1]);
	json_object_put(ev);

	/* no certificates: cert_chain null (Trustee then fetches the VCEK) */
	CHECK_RC(kbs_evidence_snp_json(rep, rlen, NULL, 0, out, KEYPROV_EVIDENCE_MAX, &len), 0);
	ev = json_tokener_parse(out);
	CHECK(ev != NULL && jnull(ev, "cert_chain"));
	json_object_put(ev);

	/* a v5 Turin-layout report: fmc set, CPUID and mitigation vectors present */
	for (i = 0; i < 1184; i++)
		syn[i] = (uint8_t)(i * 7 + 3);
	put_le(syn, 5, 4);
	syn[0x188] = 0x1A;
	put_le(syn + 0x30, 2, 4);		/* vmpl */
	put_le(syn + 0x34, 1, 4);		/* sig_algo */
	memset(syn + 0x3C, 0, 3);		/* Turin TCB reserved bytes 4..6 */
	memset(syn + 0x184, 0, 3);
	memset(syn + 0x1E4, 0, 3);
	memset(syn + 0x1F4, 0, 3);
	syn[0x1EB] = syn[0x1EF] = 0;
	memset(syn + 0x4C, 0, 4);
	memset(syn + 0x18B, 0, 0x1A0 - 0x18B);
	memset(syn + 0x208, 0, 0x2A0 - 0x208);
	memset(syn + 0x330, 0, 1184 - 0x330);
	syn[0x08 + 7] &= 0x7f;			/* keep the u64s below 2^63 for json-c */
	syn[0x40 + 7] &= 0x7f;
	syn[0x1F8 + 7] &= 0x7f;
	syn[0x200 + 7] &= 0x7f;
	CHECK_RC(kbs_evidence_snp_json(syn, 1184, NULL, 0, out, KEYPROV_EVIDENCE_MAX, &len), 0);
	ev = json_tokener_parse(out);
	CHECK(ev != NULL && snp_json_back(ev, back) == 0);
	CHECK(memcmp(back, syn, 1184) == 0);
	CHECK(json_object_object_get_ex(ev, "attestation_report", &v) &&
	    json_object_object_get_ex(v, "current_tcb", &v) && jint(v, "fmc", 255) == syn[0x38]);
	json_object_put(ev);

	/* refusals: wrong size, unknown certificate type, buffer too small */
	CHECK_RC(kbs_evidence_snp_json(rep, 1183, NULL, 0, out, KEYPROV_EVIDENCE_MAX, &len),
	    VTPM_E_INVAL);
	cert.type = "PEK";
	CHECK_RC(kbs_evidence_snp_json(rep, rlen, &cert, 1, out, KEYPROV_EVIDENCE_MAX, &len),
	    VTPM_E_INVAL);
	CHECK_RC(kbs_evidence_snp_json(rep, rlen, NULL, 0, out, 1000, &len), VTPM_E_TOOBIG);
	CHECK(len == 0 && out[0] == '\0');

	/* TDX: Trustee's v4 quote, without and with an event log */
	quote = read_vec("tdx-trustee/tdx_quote_4.dat", &qlen);
	CHECK_RC(kbs_evidence_tdx_json(quote, qlen, NULL, 0, out, KEYPROV_EVIDENCE_MAX, &len), 0);
	ev = json_tokener_parse(out);
	CHECK(ev != NULL && json_object_object_length(ev) == 2 && jnull(ev, "cc_eventlog"));
	CHECK(json_object_object_get_ex(ev, "quote", &v) &&
	    sodium_base642bin(dec, sizeof(dec), json_object_get_string(v),
	    (size_t)json_object_get_string_len(v), NULL, &dlen, NULL,
	    sodium_base64_VARIANT_ORIGINAL) == 0 && dlen == qlen && memcmp(dec, quote, qlen) == 0);
	json_object_put(ev);
	for (i = 0; i < (int)sizeof(ccel); i++)
		ccel[i] = (uint8_t)(0xC0 + i);
	CHECK_RC(kbs_evidence_tdx_json(quote, qlen, ccel, sizeof(ccel), out,
	    KEYPROV_EVIDENCE_MAX, &len), 0);
	ev = json_tokener_parse(out);
	CHECK(ev != NULL && json_object_object_get_ex(ev, "cc_eventlog", &v) &&
	    sodium_base642bin(dec, sizeof(dec), json_object_get_string(v),
	    (size_t)json_object_get_string_len(v), NULL, &dlen, NULL,
	    sodium_base64_VARIANT_ORIGINAL) == 0 && dlen == sizeof(ccel) &&
	    memcmp(dec, ccel, sizeof(ccel)) == 0);
	json_object_put(ev);
	CHECK_RC(kbs_evidence_tdx_json(quote, qlen, NULL, 0, out, 100, &len), VTPM_E_TOOBIG);
	CHECK_RC(kbs_evidence_tdx_json(NULL, 0, NULL, 0, out, 100, &len), VTPM_E_INVAL);
	free(quote);
	free(rep);
	free(vcek);
	free(out);
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		vecdir = argv[1];
	log_init("test_kbs", getenv("VTPM_TEST_VERBOSE") ? LOG_LVL_DEBUG : LOG_LVL_ERR);
	if (sodium_init() < 0)
		return 2;
	test_jcs();
	test_b64url();
	test_vector();
	test_tamper();
	test_rsa();
	test_resource();
	test_provider();
	test_rewrap();
	test_evidence();
	printf("kbs: %d passed, %d failed\n", n_pass, n_fail);
	return n_fail == 0 ? 0 : 1;
}
