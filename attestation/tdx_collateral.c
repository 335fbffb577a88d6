/*
 * tdx_collateral.c: TDX collateral from an offline directory: Intel's
 * tcbInfo and QE identity (JSON, signed by the "Intel SGX TCB Signing" key)
 * and the CRLs of the PCK chain. Files are untrusted: JSON is parsed with
 * json-c under a size limit, signed bodies are taken byte-exact from the
 * file, and nothing counts as checked unless its signature verified or the
 * claims say it did not. Never fetches anything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <sodium.h>

#include "attest_int.h"

#define COLLATERAL_MAX	(1 << 20)
#define OID_SGX_EXT	"1.2.840.113741.1.13.1"
#define OID_SGX_TCB	"1.2.840.113741.1.13.1.2"
#define OID_SGX_PCESVN	"1.2.840.113741.1.13.1.2.17"
#define OID_SGX_FMSPC	"1.2.840.113741.1.13.1.4"
#define OID_SGX_PCEID	"1.2.840.113741.1.13.1.3"

/* What the PCK leaf says about the platform. */
struct pck_info {
	uint8_t	fmspc[6];
	uint8_t	pceid[2];
	int	comp[16];
	int	pcesvn;
	int	have_fmspc, have_pceid, have_tcb;
};

/* ---- JSON helpers -------------------------------------------------------- */

/* Index just past the JSON string starting at buf[i] == '"', or 0. */
static size_t
json_skip_string(const uint8_t *buf, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (buf[i] == '\\') {
			i++;
			continue;
		}
		if (buf[i] == '"')
			return i + 1;
	}
	return 0;
}

static size_t
json_skip_ws(const uint8_t *buf, size_t len, size_t i)
{
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	return i;
}

/* Index just past the JSON value starting at buf[i], or 0. */
static size_t
json_skip_value(const uint8_t *buf, size_t len, size_t i)
{
	int depth = 0;

	if (i >= len)
		return 0;
	if (buf[i] == '"')
		return json_skip_string(buf, len, i);
	for (; i < len; i++) {
		switch (buf[i]) {
		case '"':
			if (depth == 0 || (i = json_skip_string(buf, len, i)) == 0)
				return 0;
			i--;
			break;
		case '{':
		case '[':
			if (++depth > 64)
				return 0;
			break;
		case '}':
		case ']':
			if (depth == 0)
				return i;
			if (--depth == 0)
				return i + 1;
			break;
		case ',':
			if (depth == 0)
				return i;
			break;
		default:
			break;
		}
	}
	return depth == 0 ? i : 0;
}

int
json_raw_member(const uint8_t *buf, size_t len, const char *key, const uint8_t **val,
    size_t *vlen)
{
	size_t klen = strlen(key), i, ks, ke, vs, ve;

	i = json_skip_ws(buf, len, 0);
	if (i >= len || buf[i] != '{')
		return VTPM_E_FORMAT;
	i++;
	for (;;) {
		i = json_skip_ws(buf, len, i);
		if (i >= len || buf[i] != '"')
			return VTPM_E_FORMAT;
		ks = i + 1;
		if ((ke = json_skip_string(buf, len, i)) == 0)
			return VTPM_E_FORMAT;
		i = json_skip_ws(buf, len, ke);
		if (i >= len || buf[i] != ':')
			return VTPM_E_FORMAT;
		vs = json_skip_ws(buf, len, i + 1);
		if ((ve = json_skip_value(buf, len, vs)) == 0 || ve <= vs)
			return VTPM_E_FORMAT;
		if (ke - 1 - ks == klen && memcmp(buf + ks, key, klen) == 0) {
			*val = buf + vs;
			*vlen = ve - vs;
			return 0;
		}
		i = json_skip_ws(buf, len, ve);
		if (i >= len)
			return VTPM_E_FORMAT;
		if (buf[i] == '}')
			return VTPM_E_NOTFOUND;
		if (buf[i] != ',')
			return VTPM_E_FORMAT;
		i++;
	}
}

static json_object *
json_get(json_object *o, const char *key, json_type type)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

static int
json_hex(json_object *o, const char *key, uint8_t *out, size_t n)
{
	json_object *v = json_get(o, key, json_type_string);

	return v == NULL ? VTPM_E_FORMAT : attest_hex_decode(json_object_get_string(v), out, n);
}

static int
json_int(json_object *o, const char *key, int64_t *out)
{
	json_object *v = json_get(o, key, json_type_int);

	if (v == NULL)
		return VTPM_E_FORMAT;
	*out = json_object_get_int64(v);
	return 0;
}

/* "2025-10-27T13:07:17Z" */
static int
json_time(json_object *o, const char *key, time_t *out)
{
	json_object *v = json_get(o, key, json_type_string);
	struct tm tm;
	const char *s, *end;

	if (v == NULL)
		return VTPM_E_FORMAT;
	s = json_object_get_string(v);
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL || (*end != 'Z' && strncmp(end, ".000Z", 5) != 0 && *end != '\0'))
		return VTPM_E_FORMAT;
	*out = timegm(&tm);
	return 0;
}

/* Loads a file; *obj the parsed JSON, *buf the raw bytes (both to free). */
static int
json_load(const char *path, uint8_t **buf, size_t *len, json_object **obj)
{
	struct json_tokener *tok;
	int rc;

	*obj = NULL;
	if ((rc = attest_read_file(path, COLLATERAL_MAX, buf, len)) != 0)
		return rc;
	if ((tok = json_tokener_new_ex(32)) == NULL) {
		free(*buf);
		return VTPM_E_NOMEM;
	}
	*obj = json_tokener_parse_ex(tok, (const char *)*buf, (int)*len);
	if (*obj == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(*obj, json_type_object)) {
		json_object_put(*obj);
		*obj = NULL;
		json_tokener_free(tok);
		free(*buf);
		*buf = NULL;
		return VTPM_E_FORMAT;
	}
	json_tokener_free(tok);
	return 0;
}

/* ---- the PCK certificate's SGX extension --------------------------------- */

static int
asn1_oid_is(const ASN1_TYPE *t, const char *oid)
{
	char txt[64];

	if (t == NULL || t->type != V_ASN1_OBJECT ||
	    OBJ_obj2txt(txt, sizeof(txt), t->value.object, 1) <= 0)
		return 0;
	return strcmp(txt, oid) == 0;
}

static STACK_OF(ASN1_TYPE) *
asn1_seq(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	STACK_OF(ASN1_TYPE) *sk;

	if (len > (1 << 16))
		return NULL;
	sk = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);
	if (sk != NULL && p != der + len) {
		sk_ASN1_TYPE_pop_free(sk, ASN1_TYPE_free);
		sk = NULL;
	}
	return sk;
}

static int
asn1_small_int(const ASN1_TYPE *t, int *out)
{
	int64_t v;

	if (t == NULL || t->type != V_ASN1_INTEGER ||
	    ASN1_INTEGER_get_int64(&v, t->value.integer) != 1 || v < 0 || v > 65535)
		return -1;
	*out = (int)v;
	return 0;
}

static void
pck_tcb(const ASN1_TYPE *t, struct pck_info *pi)
{
	STACK_OF(ASN1_TYPE) *tcb, *pair;
	char oid[64];
	int i, n, comp;

	if (t->type != V_ASN1_SEQUENCE)
		return;
	tcb = asn1_seq(ASN1_STRING_get0_data(t->value.sequence),
	    (size_t)ASN1_STRING_length(t->value.sequence));
	if (tcb == NULL)
		return;
	n = 0;
	for (i = 0; i < sk_ASN1_TYPE_num(tcb); i++) {
		const ASN1_TYPE *e = sk_ASN1_TYPE_value(tcb, i);

		if (e->type != V_ASN1_SEQUENCE)
			continue;
		pair = asn1_seq(ASN1_STRING_get0_data(e->value.sequence),
		    (size_t)ASN1_STRING_length(e->value.sequence));
		if (pair == NULL)
			continue;
		if (sk_ASN1_TYPE_num(pair) == 2 &&
		    sk_ASN1_TYPE_value(pair, 0)->type == V_ASN1_OBJECT &&
		    OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_TYPE_value(pair, 0)->value.object, 1) > 0 &&
		    strncmp(oid, OID_SGX_TCB ".", strlen(OID_SGX_TCB) + 1) == 0) {
			comp = atoi(oid + strlen(OID_SGX_TCB) + 1);
			if (comp >= 1 && comp <= 16 &&
			    asn1_small_int(sk_ASN1_TYPE_value(pair, 1), &pi->comp[comp - 1]) == 0)
				n++;
			else if (comp == 17 &&
			    asn1_small_int(sk_ASN1_TYPE_value(pair, 1), &pi->pcesvn) == 0)
				n++;
		}
		sk_ASN1_TYPE_pop_free(pair, ASN1_TYPE_free);
	}
	pi->have_tcb = n == 17;
	sk_ASN1_TYPE_pop_free(tcb, ASN1_TYPE_free);
}

static int
pck_info_get(X509 *leaf, struct pck_info *pi)
{
	STACK_OF(ASN1_TYPE) *top, *pair;
	const uint8_t *d;
	size_t n;
	int i;

	memset(pi, 0, sizeof(*pi));
	if (x509_ext_by_oid(leaf, OID_SGX_EXT, &d, &n) != 0 || (top = asn1_seq(d, n)) == NULL)
		return VTPM_E_FORMAT;
	for (i = 0; i < sk_ASN1_TYPE_num(top); i++) {
		const ASN1_TYPE *e = sk_ASN1_TYPE_value(top, i), *v;

		if (e->type != V_ASN1_SEQUENCE)
			continue;
		pair = asn1_seq(ASN1_STRING_get0_data(e->value.sequence),
		    (size_t)ASN1_STRING_length(e->value.sequence));
		if (pair == NULL)
			continue;
		if (sk_ASN1_TYPE_num(pair) == 2) {
			v = sk_ASN1_TYPE_value(pair, 1);
			if (asn1_oid_is(sk_ASN1_TYPE_value(pair, 0), OID_SGX_FMSPC) &&
			    v->type == V_ASN1_OCTET_STRING && ASN1_STRING_length(v->value.octet_string) == 6) {
				memcpy(pi->fmspc, ASN1_STRING_get0_data(v->value.octet_string), 6);
				pi->have_fmspc = 1;
			} else if (asn1_oid_is(sk_ASN1_TYPE_value(pair, 0), OID_SGX_PCEID) &&
			    v->type == V_ASN1_OCTET_STRING && ASN1_STRING_length(v->value.octet_string) == 2) {
				memcpy(pi->pceid, ASN1_STRING_get0_data(v->value.octet_string), 2);
				pi->have_pceid = 1;
			} else if (asn1_oid_is(sk_ASN1_TYPE_value(pair, 0), OID_SGX_TCB)) {
				pck_tcb(v, pi);
			}
		}
		sk_ASN1_TYPE_pop_free(pair, ASN1_TYPE_free);
	}
	sk_ASN1_TYPE_pop_free(top, ASN1_TYPE_free);
	ERR_clear_error();
	return pi->have_fmspc && pi->have_pceid && pi->have_tcb ? 0 : VTPM_E_FORMAT;
}

/* ---- signatures over collateral ------------------------------------------ */

/* The TCB signing chain: "Intel SGX TCB Signing" -> pinned Intel SGX Root CA. */
static int
signing_key(const struct attest_verify_cfg *cfg, const char *dir, X509 **out, char *why,
    size_t whylen)
{
	char path[1200];
	uint8_t *buf, fp[32];
	size_t len;
	STACK_OF(X509) *sk;
	X509 *leaf = NULL, *root = NULL, *x;
	int i, rc;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/tcb_signing_chain.pem", dir);
	if (attest_read_file(path, COLLATERAL_MAX, &buf, &len) != 0)
		return 0;	/* not there: signatures are not checked, and said so */
	sk = x509_bundle_from_bytes(buf, len);
	free(buf);
	if (sk == NULL)
		return attest_fail(why, whylen, VTPM_E_FORMAT, "%s holds no certificate", path);
	for (i = 0; i < sk_X509_num(sk); i++) {
		x = sk_X509_value(sk, i);
		if (x509_is_self_signed(x))
			root = x;
		else
			leaf = x;
	}
	rc = VTPM_E_EVIDENCE;
	if (leaf == NULL || root == NULL) {
		rc = attest_fail(why, whylen, rc, "%s: want the TCB Signing certificate and the "
		    "root", path);
		goto out;
	}
	x509_sha256(root, fp);
	if (memcmp(fp, intel_sgx_root_sha256, 32) != 0) {
		rc = attest_fail(why, whylen, rc, "%s: the root is not the pinned Intel SGX Root CA",
		    path);
		goto out;
	}
	if ((rc = x509_check_issued_by(leaf, "TCB Signing certificate", root,
	    "Intel SGX Root CA", NID_ecdsa_with_SHA256, why, whylen)) != 0 ||
	    (rc = x509_check_time(leaf, "TCB Signing certificate", cfg, why, whylen)) != 0)
		goto out;
	X509_up_ref(leaf);
	*out = leaf;
	rc = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	return rc;
}

/* Verifies the hex "signature" over the raw bytes of member `body`. */
static int
body_sig_ok(X509 *signer, const uint8_t *buf, size_t len, json_object *root, const char *body)
{
	const uint8_t *raw;
	size_t rlen;
	uint8_t sig[64], digest[32];

	if (json_hex(root, "signature", sig, sizeof(sig)) != 0 ||
	    json_raw_member(buf, len, body, &raw, &rlen) != 0)
		return 0;
	crypto_hash_sha256(digest, raw, rlen);
	return ecdsa_verify_rs(X509_get0_pubkey(signer), digest, 32, sig, 32, sig + 32, 32, 0);
}

static int
collateral_time(const struct attest_verify_cfg *cfg, json_object *o, const char *what,
    char *why, size_t whylen)
{
	time_t issue, next, now;
	json_object *v;

	if (json_time(o, "issueDate", &issue) != 0 || json_time(o, "nextUpdate", &next) != 0)
		return attest_fail(why, whylen, VTPM_E_FORMAT, "%s has no readable issueDate and "
		    "nextUpdate", what);
	if (cfg->av_no_time_check)
		return 0;
	now = cfg->av_now ? (time_t)cfg->av_now : time(NULL);
	v = json_get(o, "nextUpdate", json_type_string);
	if (now > next)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s expired: nextUpdate %s (collateral time check)", what,
		    json_object_get_string(v));
	if (now < issue)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "%s is not valid yet (issueDate after now)", what);
	return 0;
}

static void
status_copy(char *dst, size_t cap, json_object *level)
{
	json_object *s = json_get(level, "tcbStatus", json_type_string);

	snprintf(dst, cap, "%s", s ? json_object_get_string(s) : "?");
}

/* ---- tcbInfo -------------------------------------------------------------- */

static int
svn_list_le(json_object *arr, const uint8_t *have16, const int *have_int, int from)
{
	int i, n = (int)json_object_array_length(arr);

	if (n != 16)
		return -1;
	for (i = from; i < 16; i++) {
		json_object *e = json_object_array_get_idx(arr, (size_t)i);
		int64_t svn;
		int have = have16 ? have16[i] : have_int[i];

		if (json_int(e, "svn", &svn) != 0)
			return -1;
		if (svn > have)
			return 0;
	}
	return 1;
}

static int
tcbinfo_check(const struct attest_verify_cfg *cfg, const char *dir, X509 *signer,
    const struct pck_info *pi, struct attest_claims *c, int *found, char *why, size_t whylen)
{
	char path[1200];
	uint8_t *buf = NULL, fmspc[6], pceid[2];
	size_t len;
	json_object *root = NULL, *ti, *levels, *mods, *m, *lvl, *tcb;
	const uint8_t *svn = c->tdx.tee_tcb_svn;
	char module_status[32] = "UpToDate";
	int64_t version, isvsvn, pcesvn;
	int rc, i, from = 0, r1, r2;
	size_t k;

	*found = 0;
	snprintf(path, sizeof(path), "%s/tcbInfo.json", dir);
	rc = json_load(path, &buf, &len, &root);
	if (rc == VTPM_E_IO && errno == ENOENT)
		return 0;
	if (rc != 0)
		return attest_fail(why, whylen, rc, "%s: %s", path,
		    rc == VTPM_E_FORMAT ? "not a JSON object" : vtpm_strerror(rc));
	*found = 1;
	rc = VTPM_E_FORMAT;
	if ((ti = json_get(root, "tcbInfo", json_type_object)) == NULL ||
	    json_get(ti, "id", json_type_string) == NULL ||
	    strcmp(json_object_get_string(json_get(ti, "id", json_type_string)), "TDX") != 0 ||
	    json_int(ti, "version", &version) != 0 || version != 3 ||
	    json_hex(ti, "fmspc", fmspc, 6) != 0 || json_hex(ti, "pceId", pceid, 2) != 0 ||
	    (levels = json_get(ti, "tcbLevels", json_type_array)) == NULL) {
		rc = attest_fail(why, whylen, rc, "%s is not a TDX tcbInfo version 3", path);
		goto out;
	}
	if (signer != NULL) {
		if (!body_sig_ok(signer, buf, len, root, "tcbInfo")) {
			rc = attest_fail(why, whylen, VTPM_E_EVIDENCE,
			    "%s signature does not verify with the TCB Signing certificate", path);
			goto out;
		}
		c->flags |= ATTEST_CF_TDX_TCBINFO_SIG;
	}
	if ((rc = collateral_time(cfg, ti, "tcbInfo", why, whylen)) != 0)
		goto out;
	if (memcmp(fmspc, pi->fmspc, 6) != 0 || memcmp(pceid, pi->pceid, 2) != 0) {
		char a[13], b[13];

		attest_hex_encode(fmspc, 6, a);
		attest_hex_encode(pi->fmspc, 6, b);
		rc = attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "tcbInfo is for FMSPC %s but the PCK certificate is for FMSPC %s", a, b);
		goto out;
	}
	/* TDX module identity (TEE_TCB_SVN[1] is the module's major version). */
	if (svn[1] > 0) {
		char id[16];

		from = 2;
		snprintf(id, sizeof(id), "TDX_%02X", svn[1]);
		snprintf(module_status, sizeof(module_status), "NoModuleIdentity");
		mods = json_get(ti, "tdxModuleIdentities", json_type_array);
		for (k = 0; mods != NULL && k < json_object_array_length(mods); k++) {
			m = json_object_array_get_idx(mods, k);
			if (json_get(m, "id", json_type_string) == NULL ||
			    strcmp(json_object_get_string(json_get(m, "id", json_type_string)), id) != 0)
				continue;
			lvl = json_get(m, "tcbLevels", json_type_array);
			for (i = 0; lvl != NULL && i < (int)json_object_array_length(lvl); i++) {
				json_object *l = json_object_array_get_idx(lvl, (size_t)i);

				tcb = json_get(l, "tcb", json_type_object);
				if (json_int(tcb, "isvsvn", &isvsvn) == 0 && isvsvn <= svn[0]) {
					status_copy(module_status, sizeof(module_status), l);
					break;
				}
			}
		}
	}
	snprintf(c->tdx.tcb_status, sizeof(c->tdx.tcb_status), "NoMatchingLevel");
	for (k = 0; k < json_object_array_length(levels); k++) {
		lvl = json_object_array_get_idx(levels, k);
		tcb = json_get(lvl, "tcb", json_type_object);
		if (tcb == NULL || json_int(tcb, "pcesvn", &pcesvn) != 0) {
			rc = attest_fail(why, whylen, VTPM_E_FORMAT, "%s: TCB level %zu malformed",
			    path, k);
			goto out;
		}
		r1 = svn_list_le(json_get(tcb, "sgxtcbcomponents", json_type_array), NULL,
		    pi->comp, 0);
		r2 = svn_list_le(json_get(tcb, "tdxtcbcomponents", json_type_array), svn, NULL,
		    from);
		if (r1 < 0 || r2 < 0) {
			rc = attest_fail(why, whylen, VTPM_E_FORMAT,
			    "%s: TCB level %zu needs 16 sgx and 16 tdx components", path, k);
			goto out;
		}
		if (r1 && r2 && pcesvn <= pi->pcesvn) {
			status_copy(c->tdx.tcb_status, sizeof(c->tdx.tcb_status), lvl);
			break;
		}
	}
	/* The worse of platform and module: a module that is not UpToDate wins. */
	if (strcmp(module_status, "UpToDate") != 0 && strcmp(c->tdx.tcb_status, "UpToDate") == 0)
		snprintf(c->tdx.tcb_status, sizeof(c->tdx.tcb_status), "%s", module_status);
	c->flags |= ATTEST_CF_TDX_TCBINFO;
	rc = 0;
out:
	json_object_put(root);
	free(buf);
	return rc;
}

/* ---- QE identity ------------------------------------------------------------ */

static int
qeid_check(const struct attest_verify_cfg *cfg, const char *dir, X509 *signer,
    const uint8_t *qe, struct attest_claims *c, int *found, char *why, size_t whylen)
{
	char path[1200];
	uint8_t *buf = NULL, misc[4], miscmask[4], attr[16], attrmask[16], mrsigner[32];
	size_t len;
	json_object *root = NULL, *id, *levels, *lvl, *tcb;
	uint32_t want_misc, mask_misc, have_misc;
	int64_t prodid, isvsvn;
	uint16_t have_prod, have_svn;
	int rc, i;
	size_t k;

	*found = 0;
	snprintf(path, sizeof(path), "%s/qe_identity.json", dir);
	rc = json_load(path, &buf, &len, &root);
	if (rc == VTPM_E_IO && errno == ENOENT) {
		snprintf(path, sizeof(path), "%s/enclaveIdentity.json", dir);
		rc = json_load(path, &buf, &len, &root);
	}
	if (rc == VTPM_E_IO && errno == ENOENT)
		return 0;
	if (rc != 0)
		return attest_fail(why, whylen, rc, "%s: %s", path,
		    rc == VTPM_E_FORMAT ? "not a JSON object" : vtpm_strerror(rc));
	*found = 1;
	rc = VTPM_E_FORMAT;
	if ((id = json_get(root, "enclaveIdentity", json_type_object)) == NULL ||
	    json_get(id, "id", json_type_string) == NULL ||
	    strcmp(json_object_get_string(json_get(id, "id", json_type_string)), "TD_QE") != 0 ||
	    json_hex(id, "miscselect", misc, 4) != 0 || json_hex(id, "miscselectMask", miscmask, 4) != 0 ||
	    json_hex(id, "attributes", attr, 16) != 0 ||
	    json_hex(id, "attributesMask", attrmask, 16) != 0 ||
	    json_hex(id, "mrsigner", mrsigner, 32) != 0 || json_int(id, "isvprodid", &prodid) != 0 ||
	    (levels = json_get(id, "tcbLevels", json_type_array)) == NULL) {
		rc = attest_fail(why, whylen, rc, "%s is not a TD_QE identity", path);
		goto out;
	}
	if (signer != NULL) {
		if (!body_sig_ok(signer, buf, len, root, "enclaveIdentity")) {
			rc = attest_fail(why, whylen, VTPM_E_EVIDENCE,
			    "%s signature does not verify with the TCB Signing certificate", path);
			goto out;
		}
		c->flags |= ATTEST_CF_TDX_QEID_SIG;
	}
	if ((rc = collateral_time(cfg, id, "QE identity", why, whylen)) != 0)
		goto out;
	/* SGX report body: MISCSELECT @16 (LE u32), ATTRIBUTES @48, MRSIGNER @128,
	 * ISVPRODID @256, ISVSVN @258 (LE u16). */
	want_misc = (uint32_t)misc[0] << 24 | (uint32_t)misc[1] << 16 | (uint32_t)misc[2] << 8 | misc[3];
	mask_misc = (uint32_t)miscmask[0] << 24 | (uint32_t)miscmask[1] << 16 |
	    (uint32_t)miscmask[2] << 8 | miscmask[3];
	have_misc = (uint32_t)qe[16] | (uint32_t)qe[17] << 8 | (uint32_t)qe[18] << 16 |
	    (uint32_t)qe[19] << 24;
	have_prod = (uint16_t)(qe[256] | qe[257] << 8);
	have_svn = (uint16_t)(qe[258] | qe[259] << 8);
	rc = VTPM_E_EVIDENCE;
	if ((have_misc & mask_misc) != (want_misc & mask_misc)) {
		rc = attest_fail(why, whylen, rc, "QE report MISCSELECT does not match the QE identity");
		goto out;
	}
	for (i = 0; i < 16; i++)
		if ((qe[48 + i] & attrmask[i]) != (attr[i] & attrmask[i])) {
			rc = attest_fail(why, whylen, rc,
			    "QE report ATTRIBUTES do not match the QE identity");
			goto out;
		}
	if (memcmp(qe + 128, mrsigner, 32) != 0) {
		rc = attest_fail(why, whylen, rc,
		    "QE report MRSIGNER is not the TD_QE signer of the QE identity");
		goto out;
	}
	if (have_prod != prodid) {
		rc = attest_fail(why, whylen, rc, "QE report ISVPRODID %u is not %lld", have_prod,
		    (long long)prodid);
		goto out;
	}
	snprintf(c->tdx.qe_status, sizeof(c->tdx.qe_status), "NoMatchingLevel");
	for (k = 0; k < json_object_array_length(levels); k++) {
		lvl = json_object_array_get_idx(levels, k);
		tcb = json_get(lvl, "tcb", json_type_object);
		if (json_int(tcb, "isvsvn", &isvsvn) == 0 && isvsvn <= have_svn) {
			status_copy(c->tdx.qe_status, sizeof(c->tdx.qe_status), lvl);
			break;
		}
	}
	c->flags |= ATTEST_CF_TDX_QEID;
	rc = 0;
out:
	json_object_put(root);
	free(buf);
	return rc;
}

/* ---- CRLs ------------------------------------------------------------------ */

static X509_CRL *
crl_load(const char *path)
{
	uint8_t *buf;
	size_t len;
	const unsigned char *p;
	X509_CRL *crl = NULL;
	BIO *bio;

	if (attest_read_file(path, COLLATERAL_MAX, &buf, &len) != 0)
		return NULL;
	if (len > 11 && memcmp(buf, "-----BEGIN ", 11) == 0) {
		if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL) {
			crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
			BIO_free(bio);
		}
	} else {
		p = buf;
		crl = d2i_X509_CRL(NULL, &p, (long)len);
	}
	free(buf);
	ERR_clear_error();
	return crl;
}

/* Checks cert against the CRL of its issuer in file name; 1 if checked. */
static int
crl_check(const struct attest_verify_cfg *cfg, const char *dir, const char *name,
    X509 *issuer, X509 *cert, const char *role, int *checked, char *why, size_t whylen)
{
	char path[1200], cn[64];
	X509_CRL *crl;
	X509_REVOKED *rev = NULL;
	time_t now;
	int rc = 0;

	*checked = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((crl = crl_load(path)) == NULL)
		return 0;
	x509_cn(issuer, cn, sizeof(cn));
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0 ||
	    X509_CRL_verify(crl, X509_get0_pubkey(issuer)) != 1) {
		rc = attest_fail(why, whylen, VTPM_E_EVIDENCE, "%s is not a CRL signed by '%s'",
		    path, cn);
		goto out;
	}
	if (!cfg->av_no_time_check) {
		now = cfg->av_now ? (time_t)cfg->av_now : time(NULL);
		if (X509_CRL_get0_nextUpdate(crl) != NULL &&
		    X509_cmp_time(X509_CRL_get0_nextUpdate(crl), &now) < 0) {
			rc = attest_fail(why, whylen, VTPM_E_EVIDENCE,
			    "%s expired (nextUpdate passed; collateral time check)", path);
			goto out;
		}
	}
	if (X509_CRL_get0_by_cert(crl, &rev, cert) == 1) {
		rc = attest_fail(why, whylen, VTPM_E_EVIDENCE, "the %s is revoked by %s", role, path);
		goto out;
	}
	*checked = 1;
out:
	X509_CRL_free(crl);
	ERR_clear_error();
	return rc;
}

/* ---- all of it ------------------------------------------------------------ */

int
tdx_collateral_check(const struct attest_verify_cfg *cfg, const char *dir,
    const struct tdx_quote *q, STACK_OF(X509) *chain, X509 *leaf, struct attest_claims *c,
    char *why, size_t whylen)
{
	struct pck_info pi;
	X509 *signer = NULL, *inter = NULL, *root = NULL, *x;
	char *nc = c->tdx.not_checked;
	size_t cap = sizeof(c->tdx.not_checked);
	int have_ti = 0, have_qe = 0, crl_root = 0, crl_pck = 0, i, rc;

	if (pck_info_get(leaf, &pi) == 0) {
		memcpy(c->tdx.fmspc, pi.fmspc, 6);
		c->tdx.have_fmspc = 1;
	}
	if (dir == NULL) {
		snprintf(nc, cap, "tcbInfo (no collateral directory); QE identity (no collateral "
		    "directory); PCK CRLs (no collateral directory)");
		return 0;
	}
	for (i = 0; i < sk_X509_num(chain); i++) {
		x = sk_X509_value(chain, i);
		if (x509_is_self_signed(x))
			root = x;
		else if (x != leaf)
			inter = x;
	}
	if (!c->tdx.have_fmspc)
		return attest_fail(why, whylen, VTPM_E_EVIDENCE,
		    "the PCK certificate has no readable SGX extension (FMSPC, PCE-ID, TCB)");
	if ((rc = signing_key(cfg, dir, &signer, why, whylen)) != 0)
		return rc;
	if ((rc = tcbinfo_check(cfg, dir, signer, &pi, c, &have_ti, why, whylen)) != 0 ||
	    (rc = qeid_check(cfg, dir, signer, q->qe_report, c, &have_qe, why, whylen)) != 0)
		goto out;
	if (root != NULL && inter != NULL &&
	    ((rc = crl_check(cfg, dir, "root_ca.crl", root, inter, "PCK CA", &crl_root,
	    why, whylen)) != 0 ||
	    (rc = crl_check(cfg, dir, "pck_ca.crl", inter, leaf, "PCK certificate", &crl_pck,
	    why, whylen)) != 0))
		goto out;
	if (crl_root && crl_pck)
		c->flags |= ATTEST_CF_TDX_CRL;
	nc[0] = '\0';
#define NOT_CHECKED(cond, text) \
	if (cond) snprintf(nc + strlen(nc), cap - strlen(nc), "%s%s", nc[0] ? "; " : "", text)
	NOT_CHECKED(!have_ti, "tcbInfo (no tcbInfo.json)");
	NOT_CHECKED(have_ti && signer == NULL, "tcbInfo signature (no tcb_signing_chain.pem)");
	NOT_CHECKED(!have_qe, "QE identity (no qe_identity.json)");
	NOT_CHECKED(have_qe && signer == NULL, "QE identity signature");
	NOT_CHECKED(!crl_root, "root CA CRL (no root_ca.crl)");
	NOT_CHECKED(!crl_pck, "PCK CA CRL (no pck_ca.crl)");
#undef NOT_CHECKED
	rc = 0;
out:
	X509_free(signer);
	return rc;
}
