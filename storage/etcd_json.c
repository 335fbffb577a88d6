/*
 * etcd_json.c: strict parsers of etcd v3 JSON gateway answers (etcd_json.h).
 * Trusts nothing in a body: every field is type-checked, every number range-
 * checked, every base64 string decoded exactly; fuzzed by fuzz_etcd.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "etcd_json.h"

static int
ej_fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return VTPM_E_FORMAT;
}

/* Parses body as exactly one JSON object; NULL with why set. */
static json_object *
ej_object(const char *body, size_t len, char *why, size_t whylen)
{
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error err;

	if (body == NULL || len == 0) {
		ej_fail(why, whylen, "empty answer");
		return NULL;
	}
	if (len > ETCD_BODY_MAX) {
		ej_fail(why, whylen, "answer larger than %u bytes", ETCD_BODY_MAX);
		return NULL;
	}
	if ((tok = json_tokener_new_ex(64)) == NULL) {
		ej_fail(why, whylen, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, body, (int)len);
	err = json_tokener_get_error(tok);
	if (o != NULL && (err != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	if (o == NULL) {
		ej_fail(why, whylen, "answer is not JSON");
		return NULL;
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		ej_fail(why, whylen, "answer is not a JSON object");
		return NULL;
	}
	return o;
}

/*
 * Reads int64 field name of o into *v: absent = 0; a string of 1..19 decimal
 * digits with an optional '-', or a JSON integer.
 */
static int
ej_int64(json_object *o, const char *name, int64_t *v, char *why, size_t whylen)
{
	json_object *f;
	const char *s;
	size_t n, i;
	int64_t x = 0;
	int neg = 0;

	*v = 0;
	if (!json_object_object_get_ex(o, name, &f) || f == NULL)
		return 0;
	if (json_object_is_type(f, json_type_int)) {
		*v = json_object_get_int64(f);
		return 0;
	}
	if (!json_object_is_type(f, json_type_string))
		return ej_fail(why, whylen, "field %s is not a number", name);
	s = json_object_get_string(f);
	n = (size_t)json_object_get_string_len(f);
	i = 0;
	if (n > 0 && s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (n == i || n - i > 19)
		return ej_fail(why, whylen, "field %s is not a valid int64", name);
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return ej_fail(why, whylen, "field %s is not a valid int64", name);
		if (x > (INT64_MAX - (s[i] - '0')) / 10)
			return ej_fail(why, whylen, "field %s is out of range", name);
		x = x * 10 + (s[i] - '0');
	}
	*v = neg ? -x : x;
	return 0;
}

/* Reads bool field name (absent = 0). */
static int
ej_bool(json_object *o, const char *name, int *v, char *why, size_t whylen)
{
	json_object *f;

	*v = 0;
	if (!json_object_object_get_ex(o, name, &f) || f == NULL)
		return 0;
	if (!json_object_is_type(f, json_type_boolean))
		return ej_fail(why, whylen, "field %s is not a boolean", name);
	*v = json_object_get_boolean(f) ? 1 : 0;
	return 0;
}

/*
 * Decodes base64 field name into a malloc()ed buffer (*out NULL for an
 * absent or empty field). max bounds the decoded length.
 */
static int
ej_b64(json_object *o, const char *name, size_t max, uint8_t **out, size_t *outlen,
    char *why, size_t whylen)
{
	json_object *f;
	const char *s, *end;
	size_t n, cap, got;
	uint8_t *buf;

	*out = NULL;
	*outlen = 0;
	if (!json_object_object_get_ex(o, name, &f) || f == NULL)
		return 0;
	if (!json_object_is_type(f, json_type_string))
		return ej_fail(why, whylen, "field %s is not a string", name);
	s = json_object_get_string(f);
	n = (size_t)json_object_get_string_len(f);
	if (n == 0)
		return 0;
	if (n % 4 != 0 || n / 4 * 3 > max + 2)
		return ej_fail(why, whylen, "field %s: bad base64 length", name);
	cap = n / 4 * 3;
	if ((buf = malloc(cap)) == NULL)
		return VTPM_E_NOMEM;
	if (sodium_base642bin(buf, cap, s, n, NULL, &got, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || end != s + n || got > max) {
		free(buf);
		return ej_fail(why, whylen, "field %s is not valid base64", name);
	}
	*out = buf;
	*outlen = got;
	return 0;
}

static int
ej_header(json_object *o, int64_t *rev, char *why, size_t whylen)
{
	json_object *h;
	int rc;

	*rev = 0;
	if (!json_object_object_get_ex(o, "header", &h) ||
	    !json_object_is_type(h, json_type_object))
		return ej_fail(why, whylen, "answer has no header");
	if ((rc = ej_int64(h, "revision", rev, why, whylen)) != 0)
		return rc;
	if (*rev <= 0)
		return ej_fail(why, whylen, "header revision %lld is not positive",
		    (long long)*rev);
	return 0;
}

static void
ej_kv_free(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->val);
	memset(kv, 0, sizeof(*kv));
}

void
etcd_range_free(struct etcd_range *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		ej_kv_free(&r->kvs[i]);
	free(r->kvs);
	memset(r, 0, sizeof(*r));
}

void
etcd_txn_free(struct etcd_txn *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nresp; i++)
		etcd_range_free(&t->resp[i]);
	free(t->resp);
	memset(t, 0, sizeof(*t));
}

static int
ej_kv(json_object *o, struct etcd_kv *kv, char *why, size_t whylen)
{
	int rc;

	memset(kv, 0, sizeof(*kv));
	if (!json_object_is_type(o, json_type_object))
		return ej_fail(why, whylen, "kvs entry is not an object");
	if ((rc = ej_b64(o, "key", ETCD_KEY_MAX, &kv->key, &kv->klen, why, whylen)) != 0 ||
	    (rc = ej_b64(o, "value", ETCD_BODY_MAX, &kv->val, &kv->vlen, why, whylen)) != 0 ||
	    (rc = ej_int64(o, "create_revision", &kv->create_rev, why, whylen)) != 0 ||
	    (rc = ej_int64(o, "mod_revision", &kv->mod_rev, why, whylen)) != 0 ||
	    (rc = ej_int64(o, "version", &kv->version, why, whylen)) != 0 ||
	    (rc = ej_int64(o, "lease", &kv->lease, why, whylen)) != 0)
		goto fail;
	if (kv->klen == 0) {
		rc = ej_fail(why, whylen, "kvs entry without a key");
		goto fail;
	}
	if (kv->create_rev <= 0 || kv->mod_rev < kv->create_rev || kv->version <= 0 ||
	    kv->lease < 0) {
		rc = ej_fail(why, whylen, "kvs entry with impossible revisions");
		goto fail;
	}
	return 0;
fail:
	ej_kv_free(kv);
	return rc;
}

/* The body of a range answer (o is the object holding header and kvs). */
static int
ej_range_obj(json_object *o, struct etcd_range *out, int need_header, char *why,
    size_t whylen)
{
	json_object *a;
	size_t i, n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (need_header && (rc = ej_header(o, &out->revision, why, whylen)) != 0)
		return rc;
	if ((rc = ej_bool(o, "more", &out->more, why, whylen)) != 0 ||
	    (rc = ej_int64(o, "count", &out->count, why, whylen)) != 0)
		return rc;
	if (out->count < 0)
		return ej_fail(why, whylen, "negative count");
	if (!json_object_object_get_ex(o, "kvs", &a) || a == NULL)
		return 0;
	if (!json_object_is_type(a, json_type_array))
		return ej_fail(why, whylen, "kvs is not an array");
	n = json_object_array_length(a);
	if (n == 0)
		return 0;
	if ((uint64_t)out->count < n)
		return ej_fail(why, whylen, "count %lld below the %zu pairs sent",
		    (long long)out->count, n);
	if ((out->kvs = calloc(n, sizeof(*out->kvs))) == NULL)
		return VTPM_E_NOMEM;
	for (i = 0; i < n; i++) {
		if ((rc = ej_kv(json_object_array_get_idx(a, i), &out->kvs[i], why,
		    whylen)) != 0) {
			etcd_range_free(out);
			return rc;
		}
		out->n = i + 1;
	}
	return 0;
}

int
etcd_parse_range(const char *body, size_t len, struct etcd_range *out, char *why,
    size_t whylen)
{
	json_object *o;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((o = ej_object(body, len, why, whylen)) == NULL)
		return VTPM_E_FORMAT;
	rc = ej_range_obj(o, out, 1, why, whylen);
	json_object_put(o);
	if (rc != 0)
		etcd_range_free(out);
	return rc;
}

int
etcd_parse_txn(const char *body, size_t len, struct etcd_txn *out, char *why,
    size_t whylen)
{
	json_object *o, *a, *r, *rr;
	size_t i, n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((o = ej_object(body, len, why, whylen)) == NULL)
		return VTPM_E_FORMAT;
	if ((rc = ej_header(o, &out->revision, why, whylen)) != 0 ||
	    (rc = ej_bool(o, "succeeded", &out->succeeded, why, whylen)) != 0)
		goto out;
	if (json_object_object_get_ex(o, "responses", &a) && a != NULL) {
		if (!json_object_is_type(a, json_type_array)) {
			rc = ej_fail(why, whylen, "responses is not an array");
			goto out;
		}
		n = json_object_array_length(a);
	}
	if (n > ETCD_TXN_MAX_RESP) {
		rc = ej_fail(why, whylen, "%zu responses: too many", n);
		goto out;
	}
	if (n > 0 && (out->resp = calloc(n, sizeof(*out->resp))) == NULL) {
		rc = VTPM_E_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		r = json_object_array_get_idx(a, i);
		if (!json_object_is_type(r, json_type_object)) {
			rc = ej_fail(why, whylen, "response %zu is not an object", i);
			goto out;
		}
		out->nresp = i + 1;
		if (!json_object_object_get_ex(r, "response_range", &rr))
			continue;	/* a put or a delete: nothing we read */
		if (!json_object_is_type(rr, json_type_object)) {
			rc = ej_fail(why, whylen, "response %zu is not an object", i);
			goto out;
		}
		if ((rc = ej_range_obj(rr, &out->resp[i], 0, why, whylen)) != 0)
			goto out;
	}
	rc = 0;
out:
	json_object_put(o);
	if (rc != 0)
		etcd_txn_free(out);
	return rc;
}

int
etcd_parse_lease(const char *body, size_t len, int keepalive, struct etcd_lease *out,
    char *why, size_t whylen)
{
	json_object *o, *m;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((o = ej_object(body, len, why, whylen)) == NULL)
		return VTPM_E_FORMAT;
	m = o;
	if (keepalive && (!json_object_object_get_ex(o, "result", &m) ||
	    !json_object_is_type(m, json_type_object))) {
		rc = ej_fail(why, whylen, "keepalive answer has no result");
		goto out;
	}
	if ((rc = ej_header(m, &out->revision, why, whylen)) != 0 ||
	    (rc = ej_int64(m, "ID", &out->id, why, whylen)) != 0 ||
	    (rc = ej_int64(m, "TTL", &out->ttl, why, whylen)) != 0)
		goto out;
	if (out->id <= 0)
		rc = ej_fail(why, whylen, "lease ID %lld is not positive", (long long)out->id);
out:
	json_object_put(o);
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* Copies printable ASCII of s[0..n) into out, '?' for anything else. */
static void
ej_printable(char *out, size_t outlen, const char *s, size_t n)
{
	size_t i;

	if (outlen == 0)
		return;
	if (n > outlen - 1)
		n = outlen - 1;
	for (i = 0; i < n; i++)
		out[i] = s[i] >= 0x20 && s[i] <= 0x7e ? s[i] : '?';
	out[n] = '\0';
}

void
etcd_error_text(const char *body, size_t len, char *out, size_t outlen)
{
	json_object *o, *f;
	char dummy[8];

	if (outlen == 0)
		return;
	out[0] = '\0';
	o = ej_object(body, len, dummy, sizeof(dummy));
	if (o != NULL && ((json_object_object_get_ex(o, "error", &f) &&
	    json_object_is_type(f, json_type_string)) ||
	    (json_object_object_get_ex(o, "message", &f) &&
	    json_object_is_type(f, json_type_string)))) {
		ej_printable(out, outlen, json_object_get_string(f),
		    (size_t)json_object_get_string_len(f));
	} else if (body == NULL || len == 0) {
		snprintf(out, outlen, "empty body");
	} else {
		ej_printable(out, outlen < 64 ? outlen : 64, body, len);
	}
	json_object_put(o);
}
