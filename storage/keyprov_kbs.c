/*
 * keyprov_kbs.c: the "kbs:" key provider: the root key is a resource of a
 * Trustee Key Broker Service, released after RCAR attestation (protocol
 * 0.4.0; docs/KBS.md). libcurl is loaded with dlopen() so that only the
 * process that fetches keys maps it (vtpmd's workers are exec'd from the
 * same binary). Trusts the configuration; trusts nothing the broker sends:
 * sizes are capped, JSON is parsed strictly, the JWE is checked before any
 * plaintext is used, and the released key is parsed by hand inside guarded
 * memory. Broker text that reaches a log is reduced to printable ASCII.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CURL_DISABLE_TYPECHECK
#include <json-c/json.h>
#include <sodium.h>

#include "curl_dl.h"
#include "jose.h"
#include "keyprov_impl.h"
#include "log.h"

#define KBS_PROTOCOL_VERSION	"0.4.0"
#define KBS_PREFIX		"/kbs/v0"
#define KBS_COOKIE_NAME		"kbs-session-id"
#define KBS_COOKIE_MAX		128
#define KBS_URL_MAX		512
#define KBS_SEGMENT_MAX		128
#define KBS_RESP_MAX		(256 * 1024)	/* any broker response */
#define KBS_RESOURCE_MAX	4096		/* a decrypted root-key resource */
#define KBS_NONCE_MAX		1024
#define KBS_TIMEOUT_MS		15000
#define KBS_CONNECT_MS		10000

/* ---- provider state ---------------------------------------------------- */

struct kbs {
	char			 base[KBS_URL_MAX];	/* scheme://host[:port][/path], no trailing / */
	char			 resource[3 * KBS_SEGMENT_MAX + 3];	/* REPO/TYPE/TAG */
	char			*ca_file;
	int			 allow_http;
	char			 tee[32];
	enum jose_key_type	 key_type;
	keyprov_evidence_fn	 evidence;
	void			*evidence_arg;
	long			 timeout_ms;
	atomic_int		 aborted;
};

/* One attested session: a curl handle, the cookie and the last response. */
struct kbs_session {
	struct kbs	*k;
	CURL		*h;
	char		 cookie[sizeof(KBS_COOKIE_NAME) + KBS_COOKIE_MAX + 1];
	char		*body;		/* NUL-terminated; public bytes (JWE, JSON) */
	size_t		 len;
	int		 overflow;
	char		 errbuf[CURL_ERROR_SIZE];
};

/* Copies broker text into out as printable ASCII, at most outlen - 1 bytes. */
static void
kbs_sanitize(char *out, size_t outlen, const char *in, size_t inlen)
{
	size_t i, n = 0;

	for (i = 0; i < inlen && n + 1 < outlen; i++)
		out[n++] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
	if (outlen > 0)
		out[n] = '\0';
}

/* 1 if s is a Trustee resource path segment: [A-Za-z0-9_-][A-Za-z0-9_.-]*. */
static int
kbs_segment_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > KBS_SEGMENT_MAX || s[0] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' ||
		    s[i] == '.'))
			return 0;
	return 1;
}

static int
kbs_resource_ok(const char *r)
{
	const char *a, *b;

	if ((a = strchr(r, '/')) == NULL || (b = strchr(a + 1, '/')) == NULL ||
	    strchr(b + 1, '/') != NULL)
		return 0;
	return kbs_segment_ok(r, (size_t)(a - r)) &&
	    kbs_segment_ok(a + 1, (size_t)(b - a - 1)) &&
	    kbs_segment_ok(b + 1, strlen(b + 1));
}

static int
kbs_open(struct keyprov *kp, const char *arg, const struct keyprov_config *cfg)
{
	struct kbs *k;
	size_t n = strlen(arg), i;
	int rc;

	if (strncmp(arg, "https://", 8) != 0 && strncmp(arg, "http://", 7) != 0) {
		log_warnx("kbs: URL must start with https:// (got %.64s)", arg);
		return VTPM_E_INVAL;
	}
	if (strncmp(arg, "http://", 7) == 0 && !cfg->kc_allow_http) {
		log_warnx("kbs: plain http:// is refused without --kbs-allow-http "
		    "(the key would still be encrypted to the TEE key, but the "
		    "broker would not be authenticated)");
		return VTPM_E_INVAL;
	}
	while (n > 0 && arg[n - 1] == '/')
		n--;
	if (n >= KBS_URL_MAX || n <= (size_t)(arg[4] == 's' ? 8 : 7)) {
		log_warnx("kbs: URL missing a host, or too long");
		return VTPM_E_INVAL;
	}
	for (i = 0; i < n; i++)
		if (arg[i] <= 0x20 || arg[i] >= 0x7f || arg[i] == '?' || arg[i] == '#' ||
		    arg[i] == '@') {
			log_warnx("kbs: URL holds a character not allowed here "
			    "(space, control, ?, # or @)");
			return VTPM_E_INVAL;
		}
	if (cfg->kc_resource == NULL || !kbs_resource_ok(cfg->kc_resource)) {
		log_warnx("kbs: --key-resource must be REPO/TYPE/TAG, each part "
		    "[A-Za-z0-9_-][A-Za-z0-9_.-]* of at most %d characters", KBS_SEGMENT_MAX);
		return VTPM_E_INVAL;
	}
	if (cfg->kc_tee == NULL || cfg->kc_tee[0] == '\0' ||
	    strlen(cfg->kc_tee) >= sizeof(k->tee) || cfg->kc_evidence == NULL) {
		log_warnx("kbs: no TEE name or evidence source configured");
		return VTPM_E_INVAL;
	}
	if (cfg->kc_tee_key != KEYPROV_TEE_KEY_EC && cfg->kc_tee_key != KEYPROV_TEE_KEY_RSA) {
		log_warnx("kbs: unknown TEE key type %d", cfg->kc_tee_key);
		return VTPM_E_INVAL;
	}
	if (cfg->kc_ca_file != NULL && access(cfg->kc_ca_file, R_OK) != 0) {
		log_warn("kbs: CA file %s", cfg->kc_ca_file);
		return VTPM_E_INVAL;
	}
	if ((rc = vtpm_curl_load("kbs")) != 0)
		return rc;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return VTPM_E_NOMEM;
	memcpy(k->base, arg, n);
	k->base[n] = '\0';
	memcpy(k->resource, cfg->kc_resource, strlen(cfg->kc_resource) + 1);
	if (cfg->kc_ca_file != NULL && (k->ca_file = strdup(cfg->kc_ca_file)) == NULL) {
		free(k);
		return VTPM_E_NOMEM;
	}
	k->allow_http = cfg->kc_allow_http;
	memcpy(k->tee, cfg->kc_tee, strlen(cfg->kc_tee) + 1);
	k->key_type = cfg->kc_tee_key == KEYPROV_TEE_KEY_RSA ? JOSE_KEY_RSA_OAEP_256 :
	    JOSE_KEY_EC_P256;
	k->evidence = cfg->kc_evidence;
	k->evidence_arg = cfg->kc_evidence_arg;
	k->timeout_ms = cfg->kc_timeout_ms > 0 ? cfg->kc_timeout_ms : KBS_TIMEOUT_MS;
	atomic_init(&k->aborted, 0);
	kp->priv = k;
	if (strncmp(k->base, "http://", 7) == 0)
		log_warnx("kbs: plain http to %s (--kbs-allow-http): the broker is not "
		    "authenticated; for tests only", k->base);
	return 0;
}

static void
kbs_abort(struct keyprov *kp)
{
	struct kbs *k = kp->priv;

	atomic_store(&k->aborted, 1);
}

static void
kbs_close(struct keyprov *kp)
{
	struct kbs *k = kp->priv;

	if (k == NULL)
		return;
	free(k->ca_file);
	free(k);
	kp->priv = NULL;
}

/* ---- HTTP ---------------------------------------------------------------- */

static size_t
kbs_write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct kbs_session *s = arg;
	size_t n = size * nmemb;
	char *nb;

	if (n > KBS_RESP_MAX - s->len) {
		s->overflow = 1;
		return 0;
	}
	if ((nb = realloc(s->body, s->len + n + 1)) == NULL)
		return 0;
	s->body = nb;
	memcpy(s->body + s->len, p, n);
	s->len += n;
	s->body[s->len] = '\0';
	return n;
}

/* Keeps "kbs-session-id=VALUE" from a Set-Cookie header; ignores the rest. */
static size_t
kbs_header_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	static const char hdr[] = "set-cookie:";
	struct kbs_session *s = arg;
	size_t n = size * nmemb, i, v;

	if (n < sizeof(hdr) - 1 || strncasecmp(p, hdr, sizeof(hdr) - 1) != 0)
		return n;
	i = sizeof(hdr) - 1;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (n - i < sizeof(KBS_COOKIE_NAME) ||
	    memcmp(p + i, KBS_COOKIE_NAME "=", sizeof(KBS_COOKIE_NAME)) != 0)
		return n;
	i += sizeof(KBS_COOKIE_NAME);
	for (v = i; v < n && v - i <= KBS_COOKIE_MAX; v++)
		if (!((p[v] >= 'a' && p[v] <= 'z') || (p[v] >= 'A' && p[v] <= 'Z') ||
		    (p[v] >= '0' && p[v] <= '9') || p[v] == '-' || p[v] == '_'))
			break;
	if (v == i || v - i > KBS_COOKIE_MAX)
		return n;	/* not a value we accept: no cookie */
	snprintf(s->cookie, sizeof(s->cookie), "%s=%.*s", KBS_COOKIE_NAME,
	    (int)(v - i), p + i);
	return n;
}

static int
kbs_progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	struct kbs_session *s = arg;

	return atomic_load(&s->k->aborted) ? 1 : 0;
}

/* curl_easy_setopt with a success check (setopt returns CURLE_OK or an error). */
#define KBS_SETOPT(h, opt, val) (vtpm_curl.easy_setopt((h), (opt), (val)) == CURLE_OK)

static int
kbs_session_init(struct keyprov *kp, struct kbs_session *s)
{
	struct kbs *k = kp->priv;
	CURL *h;
	int ok;

	memset(s, 0, sizeof(*s));
	s->k = k;
	if ((h = vtpm_curl.easy_init()) == NULL)
		return keyprov_fail(kp, VTPM_E_NOMEM, "curl_easy_init failed");
	s->h = h;
	ok = KBS_SETOPT(h, CURLOPT_PROTOCOLS_STR, k->allow_http ? "http,https" : "https") &&
	    KBS_SETOPT(h, CURLOPT_NOSIGNAL, 1L) &&
	    KBS_SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L) &&
	    KBS_SETOPT(h, CURLOPT_PROXY, "") &&
	    KBS_SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L) &&
	    KBS_SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L) &&
	    KBS_SETOPT(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) &&
	    KBS_SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS,
	    k->timeout_ms < KBS_CONNECT_MS ? k->timeout_ms : (long)KBS_CONNECT_MS) &&
	    KBS_SETOPT(h, CURLOPT_TIMEOUT_MS, k->timeout_ms) &&
	    KBS_SETOPT(h, CURLOPT_USERAGENT, "vtpmd/" VTPM_VERSION) &&
	    KBS_SETOPT(h, CURLOPT_ERRORBUFFER, s->errbuf) &&
	    KBS_SETOPT(h, CURLOPT_WRITEFUNCTION, kbs_write_cb) &&
	    KBS_SETOPT(h, CURLOPT_WRITEDATA, s) &&
	    KBS_SETOPT(h, CURLOPT_HEADERFUNCTION, kbs_header_cb) &&
	    KBS_SETOPT(h, CURLOPT_HEADERDATA, s) &&
	    KBS_SETOPT(h, CURLOPT_NOPROGRESS, 0L) &&
	    KBS_SETOPT(h, CURLOPT_XFERINFOFUNCTION, kbs_progress_cb) &&
	    KBS_SETOPT(h, CURLOPT_XFERINFODATA, s);
	if (ok && k->ca_file != NULL)
		/* only this bundle: no system CA path besides it */
		ok = KBS_SETOPT(h, CURLOPT_CAINFO, k->ca_file) &&
		    KBS_SETOPT(h, CURLOPT_CAPATH, (char *)NULL);
	if (!ok)
		return keyprov_fail(kp, VTPM_E_UNSUPPORTED,
		    "libcurl lacks a required option (need 7.85 or later)");
	return 0;
}

static void
kbs_session_free(struct kbs_session *s)
{
	if (s->h != NULL)
		vtpm_curl.easy_cleanup(s->h);
	free(s->body);
	sodium_memzero(s->cookie, sizeof(s->cookie));
	memset(s, 0, sizeof(*s));
}

/*
 * Reads an RFC 7807 error body into "Type: detail" (printable ASCII), or
 * describes the body if it is not one.
 */
static void
kbs_error_text(const struct kbs_session *s, char *out, size_t outlen)
{
	json_object *o, *t, *d;
	const char *type = NULL, *detail = "", *slash;
	char a[64], b[160];

	o = s->body != NULL ? json_tokener_parse(s->body) : NULL;
	if (o != NULL && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "type", &t) && json_object_is_type(t, json_type_string)) {
		type = json_object_get_string(t);
		if ((slash = strrchr(type, '/')) != NULL)
			type = slash + 1;
		if (json_object_object_get_ex(o, "detail", &d) &&
		    json_object_is_type(d, json_type_string))
			detail = json_object_get_string(d);
		kbs_sanitize(a, sizeof(a), type, strlen(type));
		kbs_sanitize(b, sizeof(b), detail, strlen(detail));
		snprintf(out, outlen, "%s%s%s", a, b[0] ? ": " : "", b);
	} else if (s->len == 0) {
		snprintf(out, outlen, "empty body");
	} else {
		kbs_sanitize(b, 80, s->body, s->len);
		snprintf(out, outlen, "body \"%s%s\"", b, s->len > 79 ? "..." : "");
	}
	json_object_put(o);
}

/*
 * One request. body NULL = GET. On a transport failure sets kp->why and
 * returns VTPM_E_IO / VTPM_E_TIMEOUT / VTPM_E_AGAIN / VTPM_E_FORMAT; else 0
 * with *status the HTTP status and s->body the response.
 */
static int
kbs_request(struct keyprov *kp, struct kbs_session *s, const char *path,
    const char *body, long *status)
{
	struct kbs *k = kp->priv;
	struct curl_slist *hdrs = NULL, *t;
	char url[KBS_URL_MAX + 3 * KBS_SEGMENT_MAX + 64];
	const char *method = body != NULL ? "POST" : "GET";
	CURLcode cc;
	int ok, rc = 0;

	if (atomic_load(&k->aborted))
		return keyprov_fail(kp, VTPM_E_AGAIN, "stopped");
	snprintf(url, sizeof(url), "%s%s", k->base, path);
	free(s->body);
	s->body = NULL;
	s->len = 0;
	s->overflow = 0;
	s->errbuf[0] = '\0';
	*status = 0;
	if ((t = vtpm_curl.slist_append(hdrs, "Accept: application/json")) == NULL)
		goto nomem;
	hdrs = t;
	if (body != NULL) {
		if ((t = vtpm_curl.slist_append(hdrs, "Content-Type: application/json")) == NULL)
			goto nomem;
		hdrs = t;
	}
	if (s->cookie[0] != '\0') {
		char c[sizeof("Cookie: ") + sizeof(s->cookie)];

		snprintf(c, sizeof(c), "Cookie: %s", s->cookie);
		t = vtpm_curl.slist_append(hdrs, c);
		sodium_memzero(c, sizeof(c));
		if (t == NULL)
			goto nomem;
		hdrs = t;
	}
	ok = KBS_SETOPT(s->h, CURLOPT_URL, url) &&
	    KBS_SETOPT(s->h, CURLOPT_HTTPHEADER, hdrs);
	if (body != NULL)
		ok = ok && KBS_SETOPT(s->h, CURLOPT_POST, 1L) &&
		    KBS_SETOPT(s->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body)) &&
		    KBS_SETOPT(s->h, CURLOPT_POSTFIELDS, body);
	else
		ok = ok && KBS_SETOPT(s->h, CURLOPT_HTTPGET, 1L);
	if (!ok) {
		rc = keyprov_fail(kp, VTPM_E_INVAL, "%s %s: libcurl refused the request",
		    method, url);
		goto done;
	}
	cc = vtpm_curl.easy_perform(s->h);
	if (cc == CURLE_OK) {
		if (vtpm_curl.easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, status) != CURLE_OK)
			rc = keyprov_fail(kp, VTPM_E_IO, "%s %s: no HTTP status", method, url);
	} else if (s->overflow) {
		rc = keyprov_fail(kp, VTPM_E_FORMAT, "%s %s: response larger than %d "
		    "bytes: not a KBS", method, url, KBS_RESP_MAX);
	} else if (cc == CURLE_ABORTED_BY_CALLBACK) {
		rc = keyprov_fail(kp, VTPM_E_AGAIN, "stopped");
	} else {
		rc = keyprov_fail(kp, cc == CURLE_OPERATION_TIMEDOUT ? VTPM_E_TIMEOUT :
		    VTPM_E_IO, "%s %s: %s", method, url,
		    s->errbuf[0] ? s->errbuf : vtpm_curl.easy_strerror(cc));
	}
done:
	vtpm_curl.easy_setopt(s->h, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	vtpm_curl.slist_free_all(hdrs);
	return rc;
nomem:
	vtpm_curl.slist_free_all(hdrs);
	return keyprov_fail(kp, VTPM_E_NOMEM, "out of memory");
}

/* Maps a non-2xx status to an error code and kp->why. */
static int
kbs_http_error(struct keyprov *kp, struct kbs_session *s, const char *what, long status)
{
	char text[240];
	int rc;

	kbs_error_text(s, text, sizeof(text));
	if (status == 401 || status == 403)
		rc = VTPM_E_POLICY;
	else if (status == 404)
		rc = VTPM_E_NOTFOUND;
	else if (status >= 500)
		rc = VTPM_E_IO;
	else
		rc = VTPM_E_FORMAT;
	return keyprov_fail(kp, rc, "%s: %s (HTTP %ld: %s)", what,
	    rc == VTPM_E_POLICY ? "refused by the broker" :
	    rc == VTPM_E_NOTFOUND ? "not found" :
	    rc == VTPM_E_IO ? "broker error" : "unexpected answer", status, text);
}

/* Parses s->body as one JSON object (strict); NULL with kp->why set. */
static json_object *
kbs_body_object(struct keyprov *kp, struct kbs_session *s, const char *what)
{
	json_tokener *tok;
	json_object *o = NULL;
	char b[64];

	if (s->body != NULL && s->len < INT32_MAX && (tok = json_tokener_new_ex(32)) != NULL) {
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
		o = json_tokener_parse_ex(tok, s->body, (int)s->len);
		if (o != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
		    !json_object_is_type(o, json_type_object))) {
			json_object_put(o);
			o = NULL;
		}
		json_tokener_free(tok);
	}
	if (o == NULL) {
		kbs_sanitize(b, sizeof(b), s->body != NULL ? s->body : "", s->len);
		keyprov_fail(kp, VTPM_E_FORMAT, "%s: the broker's answer is not a JSON "
		    "object (starts \"%s\")", what, b);
	}
	return o;
}

/* ---- the RCAR exchange ----------------------------------------------------- */

static char *
kbs_json_text(json_object *o)
{
	const char *t = json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	return t != NULL ? strdup(t) : NULL;
}

/* POST /auth: sends Request, reads Challenge.nonce into nonce. */
static int
kbs_auth(struct keyprov *kp, struct kbs_session *s, char *nonce, size_t noncecap)
{
	struct kbs *k = kp->priv;
	json_object *req, *xp, *algs, *ch = NULL, *v;
	const char *n;
	char *body;
	long status;
	size_t nl, i;
	int rc;

	req = json_object_new_object();
	xp = json_object_new_object();
	algs = json_object_new_array();
	json_object_array_add(algs, json_object_new_string("sha384"));
	json_object_object_add(xp, "supported-hash-algorithms", algs);
	json_object_object_add(req, "version", json_object_new_string(KBS_PROTOCOL_VERSION));
	json_object_object_add(req, "tee", json_object_new_string(k->tee));
	json_object_object_add(req, "extra-params", xp);
	body = kbs_json_text(req);
	json_object_put(req);
	if (body == NULL)
		return keyprov_fail(kp, VTPM_E_NOMEM, "out of memory");
	rc = kbs_request(kp, s, KBS_PREFIX "/auth", body, &status);
	free(body);
	if (rc != 0)
		return rc;
	if (status != 200)
		return kbs_http_error(kp, s, "auth", status);
	if ((ch = kbs_body_object(kp, s, "auth")) == NULL)
		return VTPM_E_FORMAT;
	rc = VTPM_E_FORMAT;
	if (!json_object_object_get_ex(ch, "nonce", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    (nl = (size_t)json_object_get_string_len(v)) == 0 || nl >= noncecap) {
		keyprov_fail(kp, rc, "auth: the challenge has no usable \"nonce\"");
		goto done;
	}
	n = json_object_get_string(v);
	for (i = 0; i < nl; i++)
		if (n[i] <= 0x20 || n[i] >= 0x7f || n[i] == '"' || n[i] == '\\') {
			keyprov_fail(kp, rc, "auth: the challenge nonce is not base64");
			goto done;
		}
	memcpy(nonce, n, nl + 1);
	/* SHA-384 unless the broker selects another hash (only SE does) */
	if (json_object_object_get_ex(ch, "extra-params", &v) &&
	    json_object_is_type(v, json_type_object) &&
	    json_object_object_get_ex(v, "selected-hash-algorithm", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), "sha384") != 0)) {
		rc = keyprov_fail(kp, VTPM_E_UNSUPPORTED, "auth: the broker selected a "
		    "hash other than sha384");
		goto done;
	}
	if (s->cookie[0] == '\0') {
		keyprov_fail(kp, rc, "auth: the broker set no " KBS_COOKIE_NAME " cookie");
		goto done;
	}
	rc = 0;
done:
	json_object_put(ch);
	return rc;
}

/* POST /attest with runtime-data {nonce, tee-pubkey} and bound evidence. */
static int
kbs_attest(struct keyprov *kp, struct kbs_session *s, const char *nonce,
    const struct jose_tee_key *tk)
{
	struct kbs *k = kp->priv;
	uint8_t rd[JOSE_REPORT_DATA_LEN];
	json_object *jwk = NULL, *ev = NULL, *req = NULL, *rt, *te, *resp = NULL, *v;
	char *evbuf = NULL, *body = NULL;
	size_t evlen = 0;
	long status;
	int rc;

	if ((rc = jose_tee_key_jwk(tk, &jwk)) != 0) {
		keyprov_fail(kp, rc, "cannot encode the TEE public key");
		goto done;
	}
	if ((rc = jose_runtime_data_digest(nonce, jwk, "", NULL, rd)) != 0) {
		keyprov_fail(kp, rc, "cannot hash the runtime data: %s", vtpm_strerror(rc));
		goto done;
	}
	if ((evbuf = malloc(KEYPROV_EVIDENCE_MAX)) == NULL) {
		rc = keyprov_fail(kp, VTPM_E_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = k->evidence(k->evidence_arg, k->tee, rd, evbuf, KEYPROV_EVIDENCE_MAX - 1,
	    &evlen)) != 0 || evlen >= KEYPROV_EVIDENCE_MAX) {
		keyprov_fail(kp, rc != 0 ? rc : VTPM_E_TOOBIG, "no %s evidence: %s",
		    k->tee, vtpm_strerror(rc != 0 ? rc : VTPM_E_TOOBIG));
		rc = rc != 0 ? rc : VTPM_E_TOOBIG;
		goto done;
	}
	evbuf[evlen] = '\0';
	if ((ev = json_tokener_parse(evbuf)) == NULL ||
	    !json_object_is_type(ev, json_type_object)) {
		rc = keyprov_fail(kp, VTPM_E_FORMAT, "the %s evidence is not a JSON object",
		    k->tee);
		goto done;
	}
	req = json_object_new_object();
	rt = json_object_new_object();
	te = json_object_new_object();
	json_object_object_add(rt, "nonce", json_object_new_string(nonce));
	json_object_object_add(rt, "tee-pubkey", json_object_get(jwk));
	json_object_object_add(te, "primary_evidence", json_object_get(ev));
	json_object_object_add(te, "additional_evidence", json_object_new_string(""));
	json_object_object_add(req, "runtime-data", rt);
	json_object_object_add(req, "tee-evidence", te);
	if ((body = kbs_json_text(req)) == NULL) {
		rc = keyprov_fail(kp, VTPM_E_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = kbs_request(kp, s, KBS_PREFIX "/attest", body, &status)) != 0)
		goto done;
	if (status != 200) {
		rc = kbs_http_error(kp, s, "attest", status);
		goto done;
	}
	if ((resp = kbs_body_object(kp, s, "attest")) == NULL) {
		rc = VTPM_E_FORMAT;
		goto done;
	}
	if (!json_object_object_get_ex(resp, "token", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		rc = keyprov_fail(kp, VTPM_E_FORMAT, "attest: the answer has no \"token\"");
		goto done;
	}
	rc = 0;
done:
	json_object_put(resp);
	json_object_put(req);
	json_object_put(ev);
	json_object_put(jwk);
	free(body);
	free(evbuf);
	return rc;
}

/* ---- the released resource ------------------------------------------------ */

static size_t
kbs_skip_ws(const uint8_t *p, size_t len, size_t i)
{
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	return i;
}

/*
 * {"version": N, "key": "<base64>"} in any order, nothing else. The key is
 * decoded straight into k->key (guarded memory); no copy is made elsewhere.
 */
static int
kbs_parse_json_key(const uint8_t *p, size_t len, struct seal_kek *k, uint32_t *version,
    char *why, size_t whylen)
{
	size_t i = 0, ks, kl, b64s = 0, b64l = 0, binlen;
	uint64_t ver = 0;
	int have_ver = 0, have_key = 0;

	i = kbs_skip_ws(p, len, i);
	if (i >= len || p[i++] != '{')
		goto bad;
	for (;;) {
		i = kbs_skip_ws(p, len, i);
		if (i >= len || p[i++] != '"')
			goto bad;
		for (ks = i; i < len && p[i] >= 'a' && p[i] <= 'z'; i++)
			;
		kl = i - ks;
		if (i >= len || p[i++] != '"')
			goto bad;
		i = kbs_skip_ws(p, len, i);
		if (i >= len || p[i++] != ':')
			goto bad;
		i = kbs_skip_ws(p, len, i);
		if (kl == 7 && memcmp(p + ks, "version", 7) == 0 && !have_ver) {
			if (i >= len || p[i] < '1' || p[i] > '9')
				goto bad;
			for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
				ver = ver * 10 + (uint64_t)(p[i] - '0');
				if (ver > UINT32_MAX)
					goto bad;
			}
			have_ver = 1;
		} else if (kl == 3 && memcmp(p + ks, "key", 3) == 0 && !have_key) {
			if (i >= len || p[i++] != '"')
				goto bad;
			for (b64s = i; i < len && p[i] != '"'; i++)
				if (i - b64s > 64)
					goto bad;
			if (i >= len)
				goto bad;
			b64l = i++ - b64s;
			have_key = 1;
		} else {
			goto bad;
		}
		i = kbs_skip_ws(p, len, i);
		if (i < len && p[i] == ',') {
			i++;
			continue;
		}
		if (i < len && p[i] == '}') {
			i++;
			break;
		}
		goto bad;
	}
	if (kbs_skip_ws(p, len, i) != len || !have_ver || !have_key)
		goto bad;
	if (sodium_base642bin(k->key, sizeof(k->key), (const char *)p + b64s, b64l, NULL,
	    &binlen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 &&
	    sodium_base642bin(k->key, sizeof(k->key), (const char *)p + b64s, b64l, NULL,
	    &binlen, NULL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0) {
		snprintf(why, whylen, "the released key is not 32 bytes of standard base64");
		return VTPM_E_FORMAT;
	}
	if (binlen != SEAL_KEY_LEN) {
		snprintf(why, whylen, "the released key is not 32 bytes of standard base64");
		return VTPM_E_FORMAT;
	}
	*version = (uint32_t)ver;
	return 0;
bad:
	snprintf(why, whylen, "the released resource is neither 32 raw bytes nor "
	    "{\"version\":N,\"key\":\"<base64>\"} (N from 1 to 4294967295)");
	return VTPM_E_FORMAT;
}

int
keyprov_kbs_parse_resource(const uint8_t *res, size_t len, uint32_t want_version,
    struct seal_kek **out, char *why, size_t whylen)
{
	struct seal_kek *k;
	uint32_t version;
	int rc;

	if (out == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	if (res == NULL || why == NULL)
		return VTPM_E_INVAL;
	if ((k = sodium_malloc(sizeof(*k))) == NULL)
		return VTPM_E_NOMEM;
	if (len == SEAL_KEY_LEN) {
		memcpy(k->key, res, SEAL_KEY_LEN);
		version = want_version != 0 ? want_version : 1;
	} else if ((rc = kbs_parse_json_key(res, len, k, &version, why, whylen)) != 0) {
		sodium_free(k);
		return rc;
	} else if (want_version != 0 && version != want_version) {
		snprintf(why, whylen, "the resource for version %u holds version %u",
		    want_version, version);
		sodium_free(k);
		return VTPM_E_FORMAT;
	}
	k->version = version;
	seal_kek_derive_id(k);
	sodium_mprotect_readonly(k);
	*out = k;
	return 0;
}

/* ---- get ------------------------------------------------------------------ */

static int
kbs_fetch(struct keyprov *kp, const char *resource, uint32_t version, struct seal_kek **out)
{
	struct kbs *k = kp->priv;
	struct kbs_session s;
	struct jose_tee_key *tk = NULL;
	char nonce[KBS_NONCE_MAX], path[sizeof(k->resource) + 64], why[200];
	uint8_t *plain = NULL;
	size_t plen;
	long status;
	int rc;

	if ((rc = kbs_session_init(kp, &s)) != 0)
		return rc;
	if ((rc = jose_tee_key_new(k->key_type, &tk)) != 0) {
		keyprov_fail(kp, rc, "cannot make a TEE key pair");
		goto done;
	}
	if ((rc = kbs_auth(kp, &s, nonce, sizeof(nonce))) != 0 ||
	    (rc = kbs_attest(kp, &s, nonce, tk)) != 0)
		goto done;
	if (version == 0)
		snprintf(path, sizeof(path), KBS_PREFIX "/resource/%s", resource);
	else
		snprintf(path, sizeof(path), KBS_PREFIX "/resource/%s.v%u", resource,
		    version);
	if ((rc = kbs_request(kp, &s, path, NULL, &status)) != 0)
		goto done;
	if (status != 200) {
		rc = kbs_http_error(kp, &s, path + sizeof(KBS_PREFIX "/resource"), status);
		goto done;
	}
	if ((plain = sodium_malloc(KBS_RESOURCE_MAX)) == NULL) {
		rc = keyprov_fail(kp, VTPM_E_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = jose_jwe_decrypt(tk, s.body, s.len, plain, KBS_RESOURCE_MAX, &plen,
	    why, sizeof(why))) != 0) {
		kbs_sanitize(why, sizeof(why), why, strlen(why));	/* may quote the broker */
		keyprov_fail(kp, rc, "%s: %s", path + sizeof(KBS_PREFIX "/resource"), why);
		goto done;
	}
	if ((rc = keyprov_kbs_parse_resource(plain, plen, version, out, why,
	    sizeof(why))) != 0) {
		keyprov_fail(kp, rc, "%s: %s", path + sizeof(KBS_PREFIX "/resource"), why);
		goto done;
	}
	log_info("kbs: %s version %u released by %s (resource %s)",
	    resource == k->resource ? "root key" : "key", (*out)->version, k->base,
	    path + sizeof(KBS_PREFIX "/resource"));
done:
	if (plain != NULL)
		sodium_free(plain);	/* wipes */
	jose_tee_key_free(tk);
	kbs_session_free(&s);
	return rc;
}

static int
kbs_get_version(struct keyprov *kp, uint32_t version, struct seal_kek **out)
{
	struct kbs *k = kp->priv;

	return kbs_fetch(kp, k->resource, version, out);
}

static int
kbs_get_resource(struct keyprov *kp, const char *resource, struct seal_kek **out)
{
	struct kbs *k = kp->priv;

	if (!kbs_resource_ok(resource) || strlen(resource) >= sizeof(k->resource))
		return keyprov_fail(kp, VTPM_E_INVAL, "kbs: resource %.64s is not "
		    "REPO/TYPE/TAG", resource);
	return kbs_fetch(kp, resource, 0, out);
}

int
keyprov_resource_ok(const char *s)
{
	return s != NULL && strlen(s) < 3 * KBS_SEGMENT_MAX + 3 && kbs_resource_ok(s);
}

int
keyprov_kbs_sample_evidence(void *arg, const char *tee,
    const uint8_t report_data[KEYPROV_REPORT_DATA_LEN], char *out, size_t cap,
    size_t *len)
{
	char b64[sodium_base64_ENCODED_LEN(JOSE_DIGEST_LEN, sodium_base64_VARIANT_ORIGINAL)];
	int n;

	*len = 0;
	sodium_bin2base64(b64, sizeof(b64), report_data, JOSE_DIGEST_LEN,
	    sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(out, cap, "{\"svn\":\"1\",\"report_data\":\"%s\"}", b64);
	if (n < 0 || (size_t)n >= cap)
		return VTPM_E_TOOBIG;
	*len = (size_t)n;
	return 0;
}

const struct keyprov_ops keyprov_kbs_ops = {
	.scheme		= "kbs",
	.is_dev		= 0,
	.open		= kbs_open,
	.get_version	= kbs_get_version,
	.get_resource	= kbs_get_resource,
	.abort		= kbs_abort,
	.close		= kbs_close,
};
