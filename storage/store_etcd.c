/*
 * store_etcd.c: the etcd backend of the store (store.h, docs/FLEET.md).
 * Talks to etcd's v3 JSON gateway over libcurl (dlopen()ed); one batch is
 * one etcd txn whose compares fence every instance it writes to this
 * process's ownership. Trusts the arguments store.c checked; trusts nothing
 * etcd answers (etcd_json.c parses, records are decoded and cross-checked).
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "curl_dl.h"
#include "cursor.h"
#include "etcd_json.h"
#include "log.h"
#include "store_backend.h"

#define ETCD_PREFIX		"vtpmd/"
#define ETCD_FORMAT_VERSION	"1"
#define ETCD_DEFAULT_TTL	10
#define ETCD_DEFAULT_TIMEOUT	2000
#define ETCD_DEFAULT_MAX_TXN_OPS 128	/* etcd's own default */
#define ETCD_URL_MAX		256
#define ETCD_TXN_RETRIES	4
#define ETCD_MAX_CLAIMS		4096

/* ---- state -------------------------------------------------------------- */

enum claim_state { CLAIM_HELD = 1, CLAIM_LOST };

/* An instance this process owns (or owned and lost). */
struct etcd_claim {
	char		 name[STORE_NAME_MAX + 1];
	enum claim_state state;
	int		 reported;	/* CLAIM_LOST passed to fleet_tick's callback */
	int64_t		 lease;		/* the lease the owner key is bound to */
	int64_t		 rev;		/* mod_revision of the record we last wrote/read; -1 unknown */
	uint8_t		 rec[STORE_INST_RECORD_MAX];	/* that record; rlen 0 = none */
	size_t		 rlen;
};

/* One HTTP client: a curl handle and its response buffer. */
struct etcd_http {
	CURL		*h;
	char		*body;
	size_t		 len;
	size_t		 cap;
	int		 overflow;
	char		 errbuf[CURL_ERROR_SIZE];
};

struct store_etcd {
	struct store	 base;		/* first */
	char		 ep[STORE_ETCD_MAX_ENDPOINTS][ETCD_URL_MAX];
	int		 nep;
	_Atomic int	 cur;		/* the endpoint that answered last */
	char		*ca_file, *cert_file, *key_file;
	int		 timeout_ms;
	int		 ttl;
	int		 max_txn_ops;	/* etcd's --max-txn-ops */
	char		 owner[STORE_ETCD_OWNER_MAX + 1];

	pthread_mutex_t	 mu;		/* main: http_main, claims, audit_next */
	struct etcd_http http_main;
	struct etcd_claim *claims;
	size_t		 nclaims;
	uint64_t	 audit_next;	/* next audit sequence, 0 = unknown */

	/* the lease: written by the keepalive thread, read by everyone */
	pthread_mutex_t	 lmu;
	int64_t		 lease;
	int64_t		 lease_deadline_ms;	/* monotonic; past it the lease may be gone */
	pthread_cond_t	 lcv;
	int		 stopping;
	pthread_t	 thr;
	int		 have_thr;
	struct etcd_http http_ka;
};

static const struct store_ops etcd_ops;

static struct store_etcd *
etcd_of(struct store *s)
{
	return (struct store_etcd *)s;
}

static int64_t
etcd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- keys --------------------------------------------------------------- */

static void
etcd_hex(char *out, const uint8_t *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

#define ETCD_K_MAX	96

static void
etcd_key_inst(char k[ETCD_K_MAX], const char *name)
{
	snprintf(k, ETCD_K_MAX, ETCD_PREFIX "inst/%s", name);
}

static void
etcd_key_own(char k[ETCD_K_MAX], const char *name)
{
	snprintf(k, ETCD_K_MAX, ETCD_PREFIX "own/%s", name);
}

static void
etcd_key_ident(char k[ETCD_K_MAX], const uint8_t ident[STORE_IDENT_LEN])
{
	char h[2 * STORE_IDENT_LEN + 1];

	etcd_hex(h, ident, STORE_IDENT_LEN);
	snprintf(k, ETCD_K_MAX, ETCD_PREFIX "ident/%s", h);
}

static void
etcd_key_blob_prefix(char k[ETCD_K_MAX], const uint8_t uuid[SEAL_UUID_LEN])
{
	char h[2 * SEAL_UUID_LEN + 1];

	etcd_hex(h, uuid, SEAL_UUID_LEN);
	snprintf(k, ETCD_K_MAX, ETCD_PREFIX "blob/%s/", h);
}

static void
etcd_key_blob(char k[ETCD_K_MAX], const uint8_t uuid[SEAL_UUID_LEN], uint8_t type)
{
	char h[2 * SEAL_UUID_LEN + 1];

	etcd_hex(h, uuid, SEAL_UUID_LEN);
	snprintf(k, ETCD_K_MAX, ETCD_PREFIX "blob/%s/%02x", h, type);
}

static void
etcd_key_audit(char k[ETCD_K_MAX], uint64_t seq)
{
	snprintf(k, ETCD_K_MAX, ETCD_PREFIX "audit/%016llx", (unsigned long long)seq);
}

static void
etcd_key_xfer(char k[ETCD_K_MAX], uint8_t kind, const uint8_t id[STORE_XFER_ID_LEN])
{
	char h[2 * STORE_XFER_ID_LEN + 1];

	etcd_hex(h, id, STORE_XFER_ID_LEN);
	snprintf(k, ETCD_K_MAX, ETCD_PREFIX "xfer/%02x%s", kind, h);
}

/* The end of the range of keys that start with prefix (the prefix, last byte + 1). */
static void
etcd_prefix_end(char *end, const char *prefix)
{
	size_t n = strlen(prefix);

	memcpy(end, prefix, n + 1);
	end[n - 1]++;		/* our prefixes end in '/', never 0xff */
}

/* ---- JSON requests -------------------------------------------------------- */

static json_object *
etcd_j_b64(const void *p, size_t n)
{
	size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	json_object *o;
	char *s;

	if ((s = malloc(cap)) == NULL)
		return NULL;
	sodium_bin2base64(s, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
	o = json_object_new_string(s);
	free(s);
	return o;
}

static json_object *
etcd_j_i64(int64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "%lld", (long long)v);
	return json_object_new_string(b);
}

/* Adds key (and range_end if end != NULL) to o. */
static void
etcd_j_key(json_object *o, const char *key, const char *end)
{
	json_object_object_add(o, "key", etcd_j_b64(key, strlen(key)));
	if (end != NULL)
		json_object_object_add(o, "range_end", etcd_j_b64(end, strlen(end)));
}

/* ---- HTTP ----------------------------------------------------------------- */

static size_t
etcd_write_cb(char *p, size_t sz, size_t n, void *arg)
{
	struct etcd_http *c = arg;
	size_t len = sz * n, ncap;
	char *nb;

	if (len > ETCD_BODY_MAX - c->len) {
		c->overflow = 1;
		return 0;
	}
	if (c->len + len + 1 > c->cap) {
		ncap = c->cap == 0 ? 4096 : c->cap;
		while (ncap < c->len + len + 1)
			ncap *= 2;
		/* answers hold sealed blobs and records only: realloc is fine */
		if ((nb = realloc(c->body, ncap)) == NULL)
			return 0;
		c->body = nb;
		c->cap = ncap;
	}
	memcpy(c->body + c->len, p, len);
	c->len += len;
	c->body[c->len] = '\0';
	return len;
}

#define ETCD_SETOPT(h, opt, val) (vtpm_curl.easy_setopt((h), (opt), (val)) == CURLE_OK)

static int
etcd_http_init(struct store_etcd *st, struct etcd_http *c)
{
	CURL *h;
	int ok;

	memset(c, 0, sizeof(*c));
	if ((h = vtpm_curl.easy_init()) == NULL)
		return VTPM_E_NOMEM;
	c->h = h;
	ok = ETCD_SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https") &&
	    ETCD_SETOPT(h, CURLOPT_NOSIGNAL, 1L) &&
	    ETCD_SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L) &&
	    ETCD_SETOPT(h, CURLOPT_PROXY, "") &&
	    ETCD_SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L) &&
	    ETCD_SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L) &&
	    ETCD_SETOPT(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) &&
	    ETCD_SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, (long)st->timeout_ms) &&
	    ETCD_SETOPT(h, CURLOPT_TIMEOUT_MS, (long)st->timeout_ms) &&
	    ETCD_SETOPT(h, CURLOPT_USERAGENT, "vtpmd/" VTPM_VERSION) &&
	    ETCD_SETOPT(h, CURLOPT_ERRORBUFFER, c->errbuf) &&
	    ETCD_SETOPT(h, CURLOPT_WRITEFUNCTION, etcd_write_cb) &&
	    ETCD_SETOPT(h, CURLOPT_WRITEDATA, c) &&
	    ETCD_SETOPT(h, CURLOPT_POST, 1L);
	if (ok && st->ca_file != NULL)
		ok = ETCD_SETOPT(h, CURLOPT_CAINFO, st->ca_file) &&
		    ETCD_SETOPT(h, CURLOPT_CAPATH, (char *)NULL);
	if (ok && st->cert_file != NULL)
		ok = ETCD_SETOPT(h, CURLOPT_SSLCERT, st->cert_file) &&
		    ETCD_SETOPT(h, CURLOPT_SSLKEY, st->key_file);
	if (!ok) {
		log_warnx("etcd: libcurl lacks a required option (need 7.85 or later)");
		vtpm_curl.easy_cleanup(h);
		c->h = NULL;
		return VTPM_E_UNSUPPORTED;
	}
	return 0;
}

static void
etcd_http_free(struct etcd_http *c)
{
	if (c->h != NULL)
		vtpm_curl.easy_cleanup(c->h);
	free(c->body);
	memset(c, 0, sizeof(*c));
}

/*
 * POSTs the JSON object req to path on one endpoint after the other,
 * starting with the one that answered last, until one gives an HTTP answer.
 * A 200 leaves the body in c; any other status is an error with the
 * gateway's text logged. Takes no ownership of req.
 * Returns 0; VTPM_E_IO (no endpoint answered); VTPM_E_TIMEOUT (the last one
 * timed out); VTPM_E_STORE (etcd refused); VTPM_E_TOOBIG (etcd says the
 * request is too large or has too many operations); VTPM_E_FORMAT;
 * VTPM_E_NOMEM.
 */
static int
etcd_post(struct store_etcd *st, struct etcd_http *c, const char *path, json_object *req)
{
	struct curl_slist *hdrs = NULL;
	char url[ETCD_URL_MAX + 32], text[160];
	const char *body;
	long status = 0;
	CURLcode cc = CURLE_OK;
	int i, e, rc = VTPM_E_IO, start = atomic_load(&st->cur);
	int64_t t0 = etcd_now_ms(), left;

	if ((body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN)) == NULL)
		return VTPM_E_NOMEM;
	if ((hdrs = vtpm_curl.slist_append(NULL, "Content-Type: application/json")) == NULL)
		return VTPM_E_NOMEM;
	for (i = 0; i < st->nep; i++) {
		e = (start + i) % st->nep;
		/*
		 * One budget for all endpoints: the caller (the event loop) is
		 * blocked meanwhile, and must get back to its lease checks.
		 */
		if ((left = st->timeout_ms - (etcd_now_ms() - t0)) < 50)
			break;
		snprintf(url, sizeof(url), "%s%s", st->ep[e], path);
		c->len = 0;
		c->overflow = 0;
		c->errbuf[0] = '\0';
		if (c->body != NULL)
			c->body[0] = '\0';
		if (!ETCD_SETOPT(c->h, CURLOPT_TIMEOUT_MS, (long)left) ||
		    !ETCD_SETOPT(c->h, CURLOPT_URL, url) ||
		    !ETCD_SETOPT(c->h, CURLOPT_HTTPHEADER, hdrs) ||
		    !ETCD_SETOPT(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body)) ||
		    !ETCD_SETOPT(c->h, CURLOPT_POSTFIELDS, body)) {
			rc = VTPM_E_INVAL;
			break;
		}
		cc = vtpm_curl.easy_perform(c->h);
		if (cc != CURLE_OK) {
			if (c->overflow) {
				log_warnx("etcd %s: answer larger than %u bytes", url, ETCD_BODY_MAX);
				rc = VTPM_E_FORMAT;
				break;
			}
			log_warnx("etcd %s: %s", url, c->errbuf[0] ? c->errbuf :
			    vtpm_curl.easy_strerror(cc));
			rc = cc == CURLE_OPERATION_TIMEDOUT ? VTPM_E_TIMEOUT : VTPM_E_IO;
			atomic_store(&st->cur, (e + 1) % st->nep);	/* next call: the next one */
			continue;
		}
		if (vtpm_curl.easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
			status = 0;
		if (status == 200) {
			atomic_store(&st->cur, e);
			rc = 0;
			break;
		}
		etcd_error_text(c->body, c->len, text, sizeof(text));
		log_warnx("etcd %s: HTTP %ld: %s", url, status, text);
		if (strstr(text, "too many operations") != NULL ||
		    strstr(text, "request is too large") != NULL) {
			rc = VTPM_E_TOOBIG;
			break;
		}
		/* no leader, timeouts, unavailable: another member may do better */
		rc = status >= 500 || status == 0 ? VTPM_E_IO : VTPM_E_STORE;
		if (rc == VTPM_E_STORE)
			break;
	}
	vtpm_curl.easy_setopt(c->h, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	vtpm_curl.easy_setopt(c->h, CURLOPT_POSTFIELDS, (char *)NULL);
	vtpm_curl.slist_free_all(hdrs);
	return rc;
}

/* Range read of [key, end) (end NULL: key only) at revision rev (0 = latest). */
static int
etcd_range(struct store_etcd *st, struct etcd_http *c, const char *key, const char *end,
    int64_t rev, int64_t limit, int descend, int count_only, struct etcd_range *out)
{
	char why[ETCD_WHY_LEN];
	json_object *req;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((req = json_object_new_object()) == NULL)
		return VTPM_E_NOMEM;
	etcd_j_key(req, key, end);
	if (rev > 0)
		json_object_object_add(req, "revision", etcd_j_i64(rev));
	if (limit > 0)
		json_object_object_add(req, "limit", etcd_j_i64(limit));
	if (descend) {
		json_object_object_add(req, "sort_order", json_object_new_string("DESCEND"));
		json_object_object_add(req, "sort_target", json_object_new_string("KEY"));
	}
	if (count_only)
		json_object_object_add(req, "count_only", json_object_new_boolean(1));
	rc = etcd_post(st, c, "/v3/kv/range", req);
	json_object_put(req);
	if (rc != 0)
		return rc;
	if ((rc = etcd_parse_range(c->body, c->len, out, why, sizeof(why))) != 0) {
		log_warnx("etcd: range answer rejected: %s", why);
		return rc;
	}
	return 0;
}

static int
etcd_bytes_cmp(const uint8_t *a, size_t an, const char *b)
{
	size_t bn = strlen(b);
	int c = memcmp(a, b, an < bn ? an : bn);

	if (c != 0)
		return c;
	return an < bn ? -1 : an > bn ? 1 : 0;
}

/* Checks that every pair of a range answer lies in [key, end) (or is key). */
static int
etcd_range_check(const struct etcd_range *r, const char *key, const char *end)
{
	size_t i;

	if (end == NULL && r->n > 1)
		goto bad;
	for (i = 0; i < r->n; i++) {
		const struct etcd_kv *kv = &r->kvs[i];

		if (end == NULL ? etcd_bytes_cmp(kv->key, kv->klen, key) != 0 :
		    etcd_bytes_cmp(kv->key, kv->klen, key) < 0 ||
		    etcd_bytes_cmp(kv->key, kv->klen, end) >= 0)
			goto bad;
	}
	return 0;
bad:
	log_warnx("etcd: answer holds a key outside the range asked for");
	return VTPM_E_FORMAT;
}

/* Reads one key: *out gets 0 or 1 pair. */
static int
etcd_get(struct store_etcd *st, struct etcd_http *c, const char *key, int64_t rev,
    struct etcd_range *out)
{
	int rc;

	if ((rc = etcd_range(st, c, key, NULL, rev, 0, 0, 0, out)) == 0 &&
	    (rc = etcd_range_check(out, key, NULL)) != 0)
		etcd_range_free(out);
	return rc;
}

/* Copies the value of key into buf (as store_blob_get()). */
static int
etcd_get_into(struct store_etcd *st, const char *key, uint8_t *buf, size_t cap, size_t *len)
{
	struct etcd_range r;
	int rc;

	pthread_mutex_lock(&st->mu);
	rc = etcd_get(st, &st->http_main, key, 0, &r);
	pthread_mutex_unlock(&st->mu);
	if (rc != 0)
		return rc;
	if (r.n == 0)
		rc = VTPM_E_NOTFOUND;
	else if (r.kvs[0].vlen > cap) {
		*len = r.kvs[0].vlen;
		rc = VTPM_E_TOOBIG;
	} else {
		if (r.kvs[0].vlen > 0)
			memcpy(buf, r.kvs[0].val, r.kvs[0].vlen);
		*len = r.kvs[0].vlen;
	}
	etcd_range_free(&r);
	return rc;
}

/* ---- the lease and its keepalive thread ------------------------------------ */

static int
etcd_lease_call(struct store_etcd *st, struct etcd_http *c, int keepalive, int64_t id,
    struct etcd_lease *out)
{
	char why[ETCD_WHY_LEN];
	json_object *req;
	int rc;

	if ((req = json_object_new_object()) == NULL)
		return VTPM_E_NOMEM;
	if (keepalive)
		json_object_object_add(req, "ID", etcd_j_i64(id));
	else
		json_object_object_add(req, "TTL", etcd_j_i64(st->ttl));
	rc = etcd_post(st, c, keepalive ? "/v3/lease/keepalive" : "/v3/lease/grant", req);
	json_object_put(req);
	if (rc != 0)
		return rc;
	if ((rc = etcd_parse_lease(c->body, c->len, keepalive, out, why, sizeof(why))) != 0)
		log_warnx("etcd: lease answer rejected: %s", why);
	else if (keepalive && out->id != id) {
		log_warnx("etcd: keepalive answered for another lease");
		rc = VTPM_E_FORMAT;
	}
	return rc;
}

/* Grants a new lease (the old one is gone); claims under the old one are lost. */
static int
etcd_lease_grant(struct store_etcd *st, struct etcd_http *c)
{
	struct etcd_lease l;
	int64_t sent = etcd_now_ms();
	int rc;

	if ((rc = etcd_lease_call(st, c, 0, 0, &l)) != 0)
		return rc;
	if (l.ttl <= 0) {
		log_warnx("etcd: lease granted with TTL %lld", (long long)l.ttl);
		return VTPM_E_FORMAT;
	}
	pthread_mutex_lock(&st->lmu);
	st->lease = l.id;
	st->lease_deadline_ms = sent + l.ttl * 1000;
	pthread_mutex_unlock(&st->lmu);
	log_info("etcd: lease %llx granted (TTL %llds)", (unsigned long long)l.id,
	    (long long)l.ttl);
	return 0;
}

/*
 * The keepalive thread: renews the lease every TTL/3 and nothing else.
 * The deadline counts from when the renewal was sent, so it never outlives
 * the lease etcd keeps. A lease etcd no longer knows is replaced.
 */
static void *
etcd_keepalive_thread(void *arg)
{
	struct store_etcd *st = arg;
	struct etcd_lease l;
	struct timespec ts;
	int64_t id, sent;
	int rc, stop;

	for (;;) {
		pthread_mutex_lock(&st->lmu);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)(st->ttl * 1000 / 3 % 1000) * 1000000L;
		ts.tv_sec += st->ttl / 3 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		while (!st->stopping &&
		    pthread_cond_timedwait(&st->lcv, &st->lmu, &ts) != ETIMEDOUT)
			;
		stop = st->stopping;
		id = st->lease;
		pthread_mutex_unlock(&st->lmu);
		if (stop)
			break;
		sent = etcd_now_ms();
		if (id == 0 || (rc = etcd_lease_call(st, &st->http_ka, 1, id, &l)) == 0) {
			if (id != 0 && l.ttl > 0) {
				pthread_mutex_lock(&st->lmu);
				if (st->lease == id)
					st->lease_deadline_ms = sent + l.ttl * 1000;
				pthread_mutex_unlock(&st->lmu);
				continue;
			}
			log_warnx("etcd: lease %llx expired; granting a new one",
			    (unsigned long long)id);
			pthread_mutex_lock(&st->lmu);
			st->lease = 0;
			pthread_mutex_unlock(&st->lmu);
			(void)etcd_lease_grant(st, &st->http_ka);
		} else
			log_warnx("etcd: lease keepalive failed: %s", vtpm_strerror(rc));
	}
	return NULL;
}

/*
 * The lease a claim may use now: its ID if it will live past the next tick
 * with a margin, else 0.
 */
static int64_t
etcd_lease_live(struct store_etcd *st)
{
	int64_t id, dl, margin;

	pthread_mutex_lock(&st->lmu);
	id = st->lease;
	dl = st->lease_deadline_ms;
	pthread_mutex_unlock(&st->lmu);
	margin = st->ttl * 1000 / 4;
	if (margin < 500)
		margin = 500;
	return id != 0 && etcd_now_ms() + margin < dl ? id : 0;
}

/* ---- open and close -------------------------------------------------------- */

static int
etcd_host_is_loopback(const char *url)
{
	char host[ETCD_URL_MAX];
	const char *p = url + 7, *e;
	struct in_addr a4;
	size_t n;

	if (*p == '[') {
		e = strchr(p, ']');
		return e != NULL && (size_t)(e - p - 1) == 3 && memcmp(p + 1, "::1", 3) == 0;
	}
	n = strcspn(p, ":/");
	if (n == 0 || n >= sizeof(host))
		return 0;
	memcpy(host, p, n);
	host[n] = '\0';
	if (strcmp(host, "localhost") == 0)
		return 1;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

static int
etcd_parse_endpoints(struct store_etcd *st, const struct store_etcd_cfg *cfg)
{
	const char *p = cfg->endpoints, *q;
	size_t n, i;

	while (p != NULL && *p != '\0') {
		q = strchr(p, ',');
		n = q != NULL ? (size_t)(q - p) : strlen(p);
		if (st->nep == STORE_ETCD_MAX_ENDPOINTS) {
			log_warnx("etcd: more than %d endpoints", STORE_ETCD_MAX_ENDPOINTS);
			return VTPM_E_INVAL;
		}
		if (n >= ETCD_URL_MAX - 1) {
			log_warnx("etcd: endpoint too long");
			return VTPM_E_INVAL;
		}
		memcpy(st->ep[st->nep], p, n);
		st->ep[st->nep][n] = '\0';
		while (n > 0 && st->ep[st->nep][n - 1] == '/')
			st->ep[st->nep][--n] = '\0';
		for (i = 0; i < n; i++)
			if (st->ep[st->nep][i] <= 0x20 || st->ep[st->nep][i] >= 0x7f ||
			    strchr("?#@", st->ep[st->nep][i]) != NULL) {
				log_warnx("etcd: endpoint %s: bad character", st->ep[st->nep]);
				return VTPM_E_INVAL;
			}
		if (strncmp(st->ep[st->nep], "https://", 8) == 0 && n > 8) {
			/* fine */
		} else if (strncmp(st->ep[st->nep], "http://", 7) == 0 && n > 7) {
			if (!cfg->allow_http && !etcd_host_is_loopback(st->ep[st->nep])) {
				log_warnx("etcd: %s: plain http only to loopback "
				    "(--etcd-allow-http to override)", st->ep[st->nep]);
				return VTPM_E_INVAL;
			}
		} else {
			log_warnx("etcd: endpoint %s: want http://HOST:PORT or https://HOST:PORT",
			    st->ep[st->nep]);
			return VTPM_E_INVAL;
		}
		st->nep++;
		p = q != NULL ? q + 1 : NULL;
	}
	if (st->nep == 0) {
		log_warnx("etcd: no endpoint given");
		return VTPM_E_INVAL;
	}
	return 0;
}

/* Checks the store format key, or sets it in a fresh store. */
static int
etcd_format_check(struct store_etcd *st)
{
	static const char key[] = ETCD_PREFIX "meta/format";
	char why[ETCD_WHY_LEN];
	struct etcd_range r;
	struct etcd_txn t;
	json_object *req, *a, *c, *s, *p;
	int rc;

	if ((req = json_object_new_object()) == NULL)
		return VTPM_E_NOMEM;
	a = json_object_new_array();
	c = json_object_new_object();
	json_object_object_add(c, "result", json_object_new_string("EQUAL"));
	json_object_object_add(c, "target", json_object_new_string("CREATE"));
	etcd_j_key(c, key, NULL);
	json_object_object_add(c, "create_revision", etcd_j_i64(0));
	json_object_array_add(a, c);
	json_object_object_add(req, "compare", a);
	a = json_object_new_array();
	s = json_object_new_object();
	p = json_object_new_object();
	etcd_j_key(p, key, NULL);
	json_object_object_add(p, "value", etcd_j_b64(ETCD_FORMAT_VERSION, 1));
	json_object_object_add(s, "request_put", p);
	json_object_array_add(a, s);
	json_object_object_add(req, "success", a);
	pthread_mutex_lock(&st->mu);
	rc = etcd_post(st, &st->http_main, "/v3/kv/txn", req);
	json_object_put(req);
	if (rc == 0 && (rc = etcd_parse_txn(st->http_main.body, st->http_main.len, &t,
	    why, sizeof(why))) != 0)
		log_warnx("etcd: txn answer rejected: %s", why);
	if (rc == 0) {
		etcd_txn_free(&t);
		rc = etcd_get(st, &st->http_main, key, 0, &r);
	}
	pthread_mutex_unlock(&st->mu);
	if (rc != 0)
		return rc;
	if (r.n != 1 || r.kvs[0].vlen != 1 || r.kvs[0].val[0] != ETCD_FORMAT_VERSION[0]) {
		log_warnx("etcd: store format %s is not supported (this is %s)",
		    r.n == 1 && r.kvs[0].vlen == 1 && r.kvs[0].val[0] > '0' &&
		    r.kvs[0].val[0] <= '9' ? "newer" : "unknown", ETCD_FORMAT_VERSION);
		rc = VTPM_E_UNSUPPORTED;
	}
	etcd_range_free(&r);
	return rc;
}

static void etcd_close(struct store *s);

int
store_open_etcd(const struct store_etcd_cfg *cfg, struct store **out)
{
	struct store_etcd *st;
	char host[64], inc[17];
	sigset_t all, old;
	uint8_t rnd[8];
	int rc;

	if (out == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	if (cfg == NULL || cfg->endpoints == NULL ||
	    (cfg->lease_ttl != 0 && (cfg->lease_ttl < 2 || cfg->lease_ttl > 3600)) ||
	    cfg->timeout_ms < 0 || (cfg->cert_file == NULL) != (cfg->key_file == NULL) ||
	    (cfg->max_txn_ops != 0 && cfg->max_txn_ops < 16))
		return VTPM_E_INVAL;
	if (seal_init() != 0)
		return VTPM_E_CRYPTO;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return VTPM_E_NOMEM;
	st->base.ops = &etcd_ops;
	pthread_mutex_init(&st->mu, NULL);
	pthread_mutex_init(&st->lmu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&st->lcv, &ca);
		pthread_condattr_destroy(&ca);
	}
	st->ttl = cfg->lease_ttl != 0 ? cfg->lease_ttl : ETCD_DEFAULT_TTL;
	st->timeout_ms = cfg->timeout_ms != 0 ? cfg->timeout_ms : ETCD_DEFAULT_TIMEOUT;
	st->max_txn_ops = cfg->max_txn_ops != 0 ? cfg->max_txn_ops : ETCD_DEFAULT_MAX_TXN_OPS;
	if ((int64_t)st->timeout_ms * 4 > (int64_t)st->ttl * 1000)
		log_warnx("etcd: a request may take %d ms, more than a quarter of the lease "
		    "TTL (%d s): an instance may be stopped for a lapsing lease while "
		    "vtpmd waits for etcd", st->timeout_ms, st->ttl);
	if ((rc = etcd_parse_endpoints(st, cfg)) != 0)
		goto fail;
	if (cfg->node != NULL) {
		snprintf(host, sizeof(host), "%s", cfg->node);
	} else if (gethostname(host, sizeof(host)) != 0) {
		snprintf(host, sizeof(host), "vtpmd");
	}
	host[sizeof(host) - 1] = '\0';
	if (host[0] == '\0' || strcspn(host, "/ \t\r\n") != strlen(host)) {
		log_warnx("etcd: node name \"%s\" is empty or holds / or space", host);
		rc = VTPM_E_INVAL;
		goto fail;
	}
	randombytes_buf(rnd, sizeof(rnd));
	etcd_hex(inc, rnd, sizeof(rnd));
	snprintf(st->owner, sizeof(st->owner), "%s/%s", host, inc);
	if ((cfg->ca_file != NULL && (st->ca_file = strdup(cfg->ca_file)) == NULL) ||
	    (cfg->cert_file != NULL && (st->cert_file = strdup(cfg->cert_file)) == NULL) ||
	    (cfg->key_file != NULL && (st->key_file = strdup(cfg->key_file)) == NULL)) {
		rc = VTPM_E_NOMEM;
		goto fail;
	}
	if ((rc = vtpm_curl_load("etcd")) != 0 ||
	    (rc = etcd_http_init(st, &st->http_main)) != 0 ||
	    (rc = etcd_http_init(st, &st->http_ka)) != 0)
		goto fail;
	if ((rc = etcd_format_check(st)) != 0)
		goto fail;
	if ((rc = etcd_lease_grant(st, &st->http_main)) != 0)
		goto fail;
	/* The thread takes no signal: they stay with the caller's signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&st->thr, NULL, etcd_keepalive_thread, st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		log_warn("etcd: pthread_create");
		rc = VTPM_E_IO;
		goto fail;
	}
	st->have_thr = 1;
	log_info("etcd: store on %s%s (owner %s, lease TTL %ds)", st->ep[0],
	    st->nep > 1 ? " and others" : "", st->owner, st->ttl);
	*out = &st->base;
	return 0;
fail:
	etcd_close(&st->base);
	return rc;
}

static void
etcd_close(struct store *s)
{
	struct store_etcd *st = etcd_of(s);
	json_object *req;

	if (st->have_thr) {
		pthread_mutex_lock(&st->lmu);
		st->stopping = 1;
		pthread_cond_signal(&st->lcv);
		pthread_mutex_unlock(&st->lmu);
		pthread_join(st->thr, NULL);
	}
	/* Revoking the lease drops every owner key bound to it at once. */
	if (st->lease != 0 && st->http_main.h != NULL &&
	    (req = json_object_new_object()) != NULL) {
		json_object_object_add(req, "ID", etcd_j_i64(st->lease));
		(void)etcd_post(st, &st->http_main, "/v3/lease/revoke", req);
		json_object_put(req);
	}
	etcd_http_free(&st->http_main);
	etcd_http_free(&st->http_ka);
	free(st->claims);
	free(st->ca_file);
	free(st->cert_file);
	free(st->key_file);
	pthread_cond_destroy(&st->lcv);
	pthread_mutex_destroy(&st->lmu);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

/* ---- reads ------------------------------------------------------------------ */

static int
etcd_meta_get_kcv(struct store *s, uint8_t kcv[SEAL_KCV_LEN])
{
	uint8_t buf[SEAL_KCV_LEN];
	size_t len;
	int rc;

	rc = etcd_get_into(etcd_of(s), ETCD_PREFIX "meta/kcv", buf, sizeof(buf), &len);
	if (rc == VTPM_E_TOOBIG || (rc == 0 && len != SEAL_KCV_LEN)) {
		log_warnx("etcd: key-check record is corrupt");
		return VTPM_E_FORMAT;
	}
	if (rc == 0)
		memcpy(kcv, buf, SEAL_KCV_LEN);
	return rc;
}

/* Decodes a record stored under name; VTPM_E_FORMAT (logged) if it is not one. */
static int
etcd_inst_decode(const char *name, const uint8_t *p, size_t n, struct store_instance *out)
{
	if (store_inst_decode(p, n, out) != 0 || strcmp(out->name, name) != 0) {
		memset(out, 0, sizeof(*out));
		log_warnx("etcd: record of instance %s is corrupt", name);
		return VTPM_E_FORMAT;
	}
	return 0;
}

static int
etcd_inst_get(struct store *s, const char *name, struct store_instance *out)
{
	uint8_t rec[STORE_INST_RECORD_MAX];
	char key[ETCD_K_MAX];
	size_t len;
	int rc;

	etcd_key_inst(key, name);
	rc = etcd_get_into(etcd_of(s), key, rec, sizeof(rec), &len);
	if (rc == VTPM_E_TOOBIG)
		rc = VTPM_E_FORMAT;
	if (rc != 0)
		return rc;
	return etcd_inst_decode(name, rec, len, out);
}

static int
etcd_inst_find_identity(struct store *s, const uint8_t ident[STORE_IDENT_LEN],
    const uint8_t meas[STORE_MEAS_LEN], const uint8_t host[STORE_HOST_DATA_LEN],
    struct store_instance *out)
{
	char key[ETCD_K_MAX], name[STORE_NAME_MAX + 1];
	size_t len;
	int rc;

	etcd_key_ident(key, ident);
	rc = etcd_get_into(etcd_of(s), key, (uint8_t *)name, STORE_NAME_MAX, &len);
	if (rc == VTPM_E_TOOBIG || (rc == 0 && len == 0))
		rc = VTPM_E_FORMAT;
	if (rc == 0) {
		name[len] = '\0';
		if (strlen(name) != len || store_inst_name_check(name) != 0)
			rc = VTPM_E_FORMAT;
	}
	if (rc == VTPM_E_FORMAT)
		log_warnx("etcd: ident index entry is corrupt");
	if (rc != 0)
		return rc;
	rc = etcd_inst_get(s, name, out);
	if (rc == VTPM_E_NOTFOUND) {
		log_warnx("etcd: ident index names missing instance %s", name);
		return VTPM_E_FORMAT;
	}
	if (rc == 0 && (memcmp(out->measurement, meas, STORE_MEAS_LEN) != 0 ||
	    memcmp(out->host_data, host, STORE_HOST_DATA_LEN) != 0)) {
		log_warnx("etcd: ident index names %s, whose identity differs", name);
		return VTPM_E_FORMAT;
	}
	return rc;
}

/*
 * Reads every pair under prefix from key from (NULL: all) at revision rev
 * (0: the first page's), page by page, calling cb(kv, arg) for each; a
 * nonzero cb return stops and is returned. locked: the caller holds st->mu
 * (else it is taken per page, so cb may call the read functions).
 */
static int
etcd_walk(struct store_etcd *st, int locked, const char *prefix, const char *from,
    int64_t rev, int (*cb)(const struct etcd_kv *, void *), void *arg)
{
	char start[ETCD_KEY_MAX + 2], end[ETCD_K_MAX];
	struct etcd_range r;
	size_t i, n;
	int rc;

	etcd_prefix_end(end, prefix);
	snprintf(start, sizeof(start), "%s", from != NULL ? from : prefix);
	for (;;) {
		if (!locked)
			pthread_mutex_lock(&st->mu);
		rc = etcd_range(st, &st->http_main, start, end, rev, 256, 0, 0, &r);
		if (!locked)
			pthread_mutex_unlock(&st->mu);
		if (rc != 0)
			return rc;
		if ((rc = etcd_range_check(&r, start, end)) != 0)
			goto out;
		if (rev == 0)
			rev = r.revision;	/* later pages: the same view */
		for (i = 0; i < r.n; i++)
			if ((rc = cb(&r.kvs[i], arg)) != 0)
				goto out;
		if (!r.more || r.n == 0)
			goto out;
		/* next page: right after the last key (keys here are printable) */
		n = r.kvs[r.n - 1].klen;
		if (n + 1 >= sizeof(start) || memchr(r.kvs[r.n - 1].key, 0, n) != NULL) {
			log_warnx("etcd: a key is too long or holds a NUL byte");
			rc = VTPM_E_FORMAT;
			goto out;
		}
		memcpy(start, r.kvs[r.n - 1].key, n);
		start[n] = '\x01';
		start[n + 1] = '\0';
		etcd_range_free(&r);
	}
out:
	etcd_range_free(&r);
	return rc;
}

struct etcd_list_arg {
	int	(*cb)(const struct store_instance *, void *);
	void	*arg;
	int	 bad;
};

/* The instance name of an inst/ key, or NULL if it is not a valid one. */
static const char *
etcd_inst_name(const struct etcd_kv *kv, char name[STORE_NAME_MAX + 1])
{
	size_t pl = sizeof(ETCD_PREFIX "inst/") - 1;

	if (kv->klen <= pl || kv->klen - pl > STORE_NAME_MAX)
		return NULL;
	memcpy(name, kv->key + pl, kv->klen - pl);
	name[kv->klen - pl] = '\0';
	if (strlen(name) != kv->klen - pl || store_inst_name_check(name) != 0)
		return NULL;
	return name;
}

static int
etcd_list_cb(const struct etcd_kv *kv, void *arg)
{
	struct etcd_list_arg *a = arg;
	struct store_instance inst;
	char name[STORE_NAME_MAX + 1];

	if (etcd_inst_name(kv, name) == NULL) {
		log_warnx("etcd: instance table holds a bad key");
		a->bad = 1;
		return 0;
	}
	if (etcd_inst_decode(name, kv->val, kv->vlen, &inst) != 0) {
		a->bad = 1;
		return 0;
	}
	return a->cb(&inst, a->arg);
}

static int
etcd_inst_list(struct store *s, int (*cb)(const struct store_instance *, void *), void *arg)
{
	struct etcd_list_arg a = { cb, arg, 0 };
	int rc;

	rc = etcd_walk(etcd_of(s), 0, ETCD_PREFIX "inst/", NULL, 0, etcd_list_cb, &a);
	if (rc == 0 && a.bad)
		rc = VTPM_E_FORMAT;
	return rc;
}

static int
etcd_blob_get(struct store *s, const uint8_t uuid[SEAL_UUID_LEN], uint8_t type,
    uint8_t *buf, size_t cap, size_t *len)
{
	char key[ETCD_K_MAX];

	etcd_key_blob(key, uuid, type);
	return etcd_get_into(etcd_of(s), key, buf, cap, len);
}

static int
etcd_xfer_get(struct store *s, uint8_t kind, const uint8_t id[STORE_XFER_ID_LEN],
    uint8_t *buf, size_t cap, size_t *len)
{
	char key[ETCD_K_MAX];

	etcd_key_xfer(key, kind, id);
	return etcd_get_into(etcd_of(s), key, buf, cap, len);
}

struct etcd_audit_arg {
	int	(*cb)(uint64_t, const uint8_t *, size_t, void *);
	void	*arg;
};

/* The sequence number of an audit/ key, or 0 if it is not one. */
static uint64_t
etcd_audit_seq(const uint8_t *key, size_t klen)
{
	size_t pl = sizeof(ETCD_PREFIX "audit/") - 1, i;
	uint64_t v = 0;

	if (klen != pl + 16)
		return 0;
	for (i = pl; i < klen; i++) {
		uint8_t ch = key[i];

		if (ch >= '0' && ch <= '9')
			v = v << 4 | (uint64_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v = v << 4 | (uint64_t)(ch - 'a' + 10);
		else
			return 0;
	}
	return v;
}

static int
etcd_audit_cb(const struct etcd_kv *kv, void *arg)
{
	struct etcd_audit_arg *a = arg;
	uint64_t seq = etcd_audit_seq(kv->key, kv->klen);

	if (seq == 0) {
		log_warnx("etcd: audit table holds a bad key; skipped");
		return 0;
	}
	return a->cb(seq, kv->val, kv->vlen, a->arg);
}

static int
etcd_audit_list(struct store *s, uint64_t from_seq,
    int (*cb)(uint64_t, const uint8_t *, size_t, void *), void *arg)
{
	struct etcd_audit_arg a = { cb, arg };
	char from[ETCD_K_MAX];

	etcd_key_audit(from, from_seq);
	return etcd_walk(etcd_of(s), 0, ETCD_PREFIX "audit/", from, 0, etcd_audit_cb, &a);
}

/* ---- claims --------------------------------------------------------------- */

static struct etcd_claim *
etcd_claim_find(struct store_etcd *st, const char *name)
{
	size_t i;

	for (i = 0; i < st->nclaims; i++)
		if (strcmp(st->claims[i].name, name) == 0)
			return &st->claims[i];
	return NULL;
}

static void
etcd_claim_drop(struct store_etcd *st, struct etcd_claim *c)
{
	size_t i = (size_t)(c - st->claims);

	memmove(c, c + 1, (st->nclaims - i - 1) * sizeof(*c));
	st->nclaims--;
}

/* Adds a compare of one key to the JSON array a. what: "VALUE", "LEASE", "MOD", "CREATE". */
static void
etcd_j_cmp(json_object *a, const char *key, const char *what, int64_t num,
    const void *val, size_t vlen)
{
	json_object *c = json_object_new_object();

	json_object_object_add(c, "result", json_object_new_string("EQUAL"));
	json_object_object_add(c, "target", json_object_new_string(what));
	etcd_j_key(c, key, NULL);
	if (strcmp(what, "VALUE") == 0)
		json_object_object_add(c, "value", etcd_j_b64(val, vlen));
	else if (strcmp(what, "LEASE") == 0)
		json_object_object_add(c, "lease", etcd_j_i64(num));
	else if (strcmp(what, "MOD") == 0)
		json_object_object_add(c, "mod_revision", etcd_j_i64(num));
	else
		json_object_object_add(c, "create_revision", etcd_j_i64(num));
	json_object_array_add(a, c);
}

static void
etcd_j_req_range(json_object *a, const char *key)
{
	json_object *r = json_object_new_object(), *q = json_object_new_object();

	etcd_j_key(q, key, NULL);
	json_object_object_add(r, "request_range", q);
	json_object_array_add(a, r);
}

/* Sends a txn; *out parsed. */
static int
etcd_txn(struct store_etcd *st, json_object *req, struct etcd_txn *out)
{
	char why[ETCD_WHY_LEN];
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = etcd_post(st, &st->http_main, "/v3/kv/txn", req)) != 0)
		return rc;
	if ((rc = etcd_parse_txn(st->http_main.body, st->http_main.len, out, why,
	    sizeof(why))) != 0)
		log_warnx("etcd: txn answer rejected: %s", why);
	return rc;
}

/* Describes an owner value for a message: printable, at most ownerlen - 1. */
static void
etcd_owner_text(const struct etcd_kv *kv, char *owner, size_t ownerlen)
{
	size_t i, n;

	if (ownerlen == 0)
		return;
	n = kv->vlen < ownerlen - 1 ? kv->vlen : ownerlen - 1;
	for (i = 0; i < n; i++)
		owner[i] = kv->val[i] >= 0x21 && kv->val[i] <= 0x7e ? (char)kv->val[i] : '?';
	owner[n] = '\0';
}

static int
etcd_inst_claim(struct store *s, const char *name, char *owner, size_t ownerlen)
{
	struct store_etcd *st = etcd_of(s);
	char okey[ETCD_K_MAX], ikey[ETCD_K_MAX];
	json_object *req, *cmp, *succ, *fail, *put, *p;
	struct etcd_claim *c;
	struct etcd_txn t;
	const struct etcd_kv *own, *rec;
	int64_t lease;
	int rc;

	if ((lease = etcd_lease_live(st)) == 0) {
		snprintf(owner, ownerlen, "%s", "(this vtpmd has no live lease)");
		return VTPM_E_FENCED;
	}
	etcd_key_own(okey, name);
	etcd_key_inst(ikey, name);
	pthread_mutex_lock(&st->mu);
	if ((c = etcd_claim_find(st, name)) != NULL && c->state == CLAIM_LOST) {
		/* a lost claim is dropped by release only, after the worker stopped */
		pthread_mutex_unlock(&st->mu);
		snprintf(owner, ownerlen, "%s", "(lost by this vtpmd; stopping)");
		return VTPM_E_FENCED;
	}
	if (c == NULL && st->nclaims == ETCD_MAX_CLAIMS) {
		pthread_mutex_unlock(&st->mu);
		return VTPM_E_BUSY;
	}
	/*
	 * if own/NAME does not exist: put own/NAME = us (lease), read inst/NAME
	 * else: read own/NAME and inst/NAME
	 */
	req = json_object_new_object();
	cmp = json_object_new_array();
	etcd_j_cmp(cmp, okey, "CREATE", 0, NULL, 0);
	succ = json_object_new_array();
	put = json_object_new_object();
	p = json_object_new_object();
	etcd_j_key(p, okey, NULL);
	json_object_object_add(p, "value", etcd_j_b64(st->owner, strlen(st->owner)));
	json_object_object_add(p, "lease", etcd_j_i64(lease));
	json_object_object_add(put, "request_put", p);
	json_object_array_add(succ, put);
	etcd_j_req_range(succ, okey);
	etcd_j_req_range(succ, ikey);
	fail = json_object_new_array();
	etcd_j_req_range(fail, okey);
	etcd_j_req_range(fail, ikey);
	json_object_object_add(req, "compare", cmp);
	json_object_object_add(req, "success", succ);
	json_object_object_add(req, "failure", fail);
	rc = etcd_txn(st, req, &t);
	json_object_put(req);
	if (rc != 0)
		goto out;
	{
		size_t io = t.succeeded ? 1 : 0, ii = io + 1;

		if (t.nresp != ii + 1 || t.resp[io].n != 1 || t.resp[ii].n > 1 ||
		    etcd_range_check(&t.resp[io], okey, NULL) != 0 ||
		    etcd_range_check(&t.resp[ii], ikey, NULL) != 0) {
			log_warnx("etcd: claim of %s: answer has the wrong shape", name);
			rc = VTPM_E_FORMAT;
			goto out_t;
		}
		own = &t.resp[io].kvs[0];
		rec = t.resp[ii].n == 1 ? &t.resp[ii].kvs[0] : NULL;
	}
	if (own->vlen != strlen(st->owner) || memcmp(own->val, st->owner, own->vlen) != 0 ||
	    own->lease != lease) {
		etcd_owner_text(own, owner, ownerlen);
		rc = own->vlen == strlen(st->owner) &&
		    memcmp(own->val, st->owner, own->vlen) == 0 ? VTPM_E_FENCED : VTPM_E_BUSY;
		goto out_t;
	}
	if (rec != NULL && rec->vlen > STORE_INST_RECORD_MAX) {
		log_warnx("etcd: record of instance %s is corrupt", name);
		rc = VTPM_E_FORMAT;
		goto out_t;
	}
	if (c == NULL) {
		struct etcd_claim *g;

		if ((g = realloc(st->claims, (st->nclaims + 1) * sizeof(*g))) == NULL) {
			rc = VTPM_E_NOMEM;
			goto out_t;
		}
		st->claims = g;
		c = &st->claims[st->nclaims++];
		memset(c, 0, sizeof(*c));
		snprintf(c->name, sizeof(c->name), "%s", name);
	}
	c->state = CLAIM_HELD;
	c->lease = lease;
	c->rev = rec != NULL ? rec->mod_rev : 0;
	c->rlen = rec != NULL ? rec->vlen : 0;
	if (c->rlen > 0)
		memcpy(c->rec, rec->val, c->rlen);
	rc = 0;
out_t:
	etcd_txn_free(&t);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

static void
etcd_inst_release(struct store *s, const char *name)
{
	struct store_etcd *st = etcd_of(s);
	char okey[ETCD_K_MAX];
	json_object *req, *cmp, *succ, *d, *q;
	struct etcd_claim *c;
	struct etcd_txn t;

	pthread_mutex_lock(&st->mu);
	if ((c = etcd_claim_find(st, name)) == NULL) {
		pthread_mutex_unlock(&st->mu);
		return;
	}
	etcd_key_own(okey, name);
	req = json_object_new_object();
	cmp = json_object_new_array();
	etcd_j_cmp(cmp, okey, "VALUE", 0, st->owner, strlen(st->owner));
	etcd_j_cmp(cmp, okey, "LEASE", c->lease, NULL, 0);
	succ = json_object_new_array();
	d = json_object_new_object();
	q = json_object_new_object();
	etcd_j_key(q, okey, NULL);
	json_object_object_add(d, "request_delete_range", q);
	json_object_array_add(succ, d);
	json_object_object_add(req, "compare", cmp);
	json_object_object_add(req, "success", succ);
	if (etcd_txn(st, req, &t) == 0) {
		if (t.succeeded)
			log_info("etcd: instance %s released", name);
		etcd_txn_free(&t);
	} else
		log_warnx("etcd: instance %s: owner key not deleted; it goes with the lease",
		    name);
	json_object_put(req);
	etcd_claim_drop(st, c);
	pthread_mutex_unlock(&st->mu);
}

static void
etcd_fleet_tick(struct store *s, void (*lost)(const char *, void *), void *arg)
{
	struct store_etcd *st = etcd_of(s);
	char name[STORE_NAME_MAX + 1];
	int64_t lease = etcd_lease_live(st);
	size_t i;

	for (;;) {
		name[0] = '\0';
		pthread_mutex_lock(&st->mu);
		for (i = 0; i < st->nclaims; i++) {
			struct etcd_claim *c = &st->claims[i];

			if (c->state == CLAIM_HELD && c->lease != lease)
				c->state = CLAIM_LOST;
			if (c->state == CLAIM_LOST && !c->reported) {
				c->reported = 1;
				snprintf(name, sizeof(name), "%s", c->name);
				break;
			}
		}
		pthread_mutex_unlock(&st->mu);
		if (name[0] == '\0')
			return;
		log_warnx("etcd: instance %s: ownership lapsing or lost: stop serving it", name);
		lost(name, arg);
	}
}

static int
etcd_inst_owner(struct store *s, const char *name, char *owner, size_t ownerlen,
    int64_t *lease)
{
	struct store_etcd *st = etcd_of(s);
	char okey[ETCD_K_MAX];
	struct etcd_range r;
	int rc;

	etcd_key_own(okey, name);
	pthread_mutex_lock(&st->mu);
	rc = etcd_get(st, &st->http_main, okey, 0, &r);
	pthread_mutex_unlock(&st->mu);
	if (rc != 0)
		return rc;
	if (r.n == 0)
		rc = VTPM_E_NOTFOUND;
	else {
		etcd_owner_text(&r.kvs[0], owner, ownerlen);
		*lease = r.kvs[0].lease;
	}
	etcd_range_free(&r);
	return rc;
}

static void
etcd_fleet_self(struct store *s, char *owner, size_t ownerlen, int64_t *lease)
{
	struct store_etcd *st = etcd_of(s);

	snprintf(owner, ownerlen, "%s", st->owner);
	pthread_mutex_lock(&st->lmu);
	*lease = st->lease;
	pthread_mutex_unlock(&st->lmu);
}

/* ---- batch commit ------------------------------------------------------------ */

/*
 * The batch is applied to an overlay: every key the ops read comes from the
 * overlay, else from etcd (remembered with its mod_revision, 0 = absent, and
 * compared in the txn, so the txn commits only on the state it was computed
 * from). Written keys collapse to their final value (etcd refuses a txn that
 * names a key twice).
 */
struct ov_ent {
	char		 key[ETCD_K_MAX];
	int		 written;	/* 1: put or delete in the txn */
	int		 present;	/* value exists (after the writes so far) */
	const uint8_t	*val;		/* borrowed from an op, or own */
	size_t		 vlen;
	uint8_t		*own;		/* malloc()ed value read from etcd */
	int		 read;		/* compare in the txn */
	int64_t		 read_rev;	/* mod_revision seen, 0 = absent */
};

struct ov {
	struct store_etcd *st;
	struct ov_ent	*e;
	size_t		 n, cap;
	char		(*fenced)[STORE_NAME_MAX + 1];	/* inst names written under a claim */
	size_t		 nfenced;
	char		(*unowned)[STORE_NAME_MAX + 1];	/* written with no claim: no owner allowed */
	size_t		 nunowned;
	size_t		 nmax;		/* room in each: the batch's op count */
	uint64_t	 audit_next;
};

static void
ov_free(struct ov *o)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		free(o->e[i].own);
	free(o->e);
	free(o->fenced);
	free(o->unowned);
	memset(o, 0, sizeof(*o));
}

static struct ov_ent *
ov_find(struct ov *o, const char *key)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (strcmp(o->e[i].key, key) == 0)
			return &o->e[i];
	return NULL;
}

static struct ov_ent *
ov_add(struct ov *o, const char *key)
{
	struct ov_ent *g;

	if (o->n == o->cap) {
		size_t nc = o->cap == 0 ? 16 : o->cap * 2;

		if ((g = realloc(o->e, nc * sizeof(*g))) == NULL)
			return NULL;
		o->e = g;
		o->cap = nc;
	}
	g = &o->e[o->n++];
	memset(g, 0, sizeof(*g));
	snprintf(g->key, sizeof(g->key), "%s", key);
	return g;
}

/*
 * The current value of key as the batch sees it. For the record of an
 * instance this process holds, the claim's copy stands in for a read
 * (its revision is compared by the fence).
 */
static int
ov_get(struct ov *o, const char *key, struct ov_ent **out)
{
	struct ov_ent *e;
	struct etcd_range r;
	int rc;

	if ((e = ov_find(o, key)) != NULL) {
		*out = e;
		return 0;
	}
	if ((rc = etcd_get(o->st, &o->st->http_main, key, 0, &r)) != 0)
		return rc;
	if ((e = ov_add(o, key)) == NULL) {
		etcd_range_free(&r);
		return VTPM_E_NOMEM;
	}
	e->read = 1;
	if (r.n == 1) {
		e->present = 1;
		e->read_rev = r.kvs[0].mod_rev;
		e->own = r.kvs[0].val;		/* taken */
		r.kvs[0].val = NULL;
		e->val = e->own;
		e->vlen = r.kvs[0].vlen;
	}
	etcd_range_free(&r);
	*out = e;
	return 0;
}

static int
ov_put(struct ov *o, const char *key, const uint8_t *val, size_t vlen)
{
	struct ov_ent *e;

	if ((e = ov_find(o, key)) == NULL && (e = ov_add(o, key)) == NULL)
		return VTPM_E_NOMEM;
	e->written = 1;
	e->present = 1;
	e->val = val;
	e->vlen = vlen;
	return 0;
}

static int
ov_del(struct ov *o, const char *key)
{
	struct ov_ent *e;

	if ((e = ov_find(o, key)) == NULL && (e = ov_add(o, key)) == NULL)
		return VTPM_E_NOMEM;
	e->written = 1;
	e->present = 0;
	e->val = NULL;
	e->vlen = 0;
	return 0;
}

/* Notes that the batch writes instance name: fenced by its claim, or by "no owner". */
static int
ov_touch_inst(struct ov *o, const char *name)
{
	struct etcd_claim *c = etcd_claim_find(o->st, name);
	size_t i;

	if (c != NULL && c->state == CLAIM_LOST) {
		log_warnx("etcd: instance %s: ownership lost; write refused", name);
		return VTPM_E_FENCED;
	}
	if (c != NULL && c->lease != etcd_lease_live(o->st)) {
		/* the lease the claim is bound to is gone or lapsing */
		log_warnx("etcd: instance %s: lease lapsing or gone; write refused", name);
		c->state = CLAIM_LOST;
		return VTPM_E_FENCED;
	}
	if (c != NULL) {
		for (i = 0; i < o->nfenced; i++)
			if (strcmp(o->fenced[i], name) == 0)
				return 0;
		if (o->nfenced == o->nmax)
			return VTPM_E_TOOBIG;	/* cannot happen: one name per op at most */
		snprintf(o->fenced[o->nfenced++], STORE_NAME_MAX + 1, "%s", name);
		return 0;
	}
	for (i = 0; i < o->nunowned; i++)
		if (strcmp(o->unowned[i], name) == 0)
			return 0;
	if (o->nunowned == o->nmax)
		return VTPM_E_TOOBIG;
	snprintf(o->unowned[o->nunowned++], STORE_NAME_MAX + 1, "%s", name);
	return 0;
}

/* The record of name as the batch sees it (claim copy for a held claim). */
static int
ov_get_inst(struct ov *o, const char *name, struct ov_ent **out)
{
	struct etcd_claim *c = etcd_claim_find(o->st, name);
	char key[ETCD_K_MAX];
	struct ov_ent *e;

	etcd_key_inst(key, name);
	if (c != NULL && c->state == CLAIM_HELD && c->rev >= 0 && ov_find(o, key) == NULL) {
		if ((e = ov_add(o, key)) == NULL)
			return VTPM_E_NOMEM;
		e->present = c->rlen > 0;
		e->val = c->rlen > 0 ? c->rec : NULL;
		e->vlen = c->rlen;
		*out = e;	/* not "read": the fence compares its revision */
		return 0;
	}
	return ov_get(o, key, out);
}

/* Reads the ident entry under ikey into name; VTPM_E_NOTFOUND or VTPM_E_FORMAT. */
static int
ov_ident_name(struct ov *o, const char *ikey, char name[STORE_NAME_MAX + 1])
{
	struct ov_ent *e;
	int rc;

	if ((rc = ov_get(o, ikey, &e)) != 0)
		return rc;
	if (!e->present)
		return VTPM_E_NOTFOUND;
	if (e->vlen < 1 || e->vlen > STORE_NAME_MAX)
		return VTPM_E_FORMAT;
	memcpy(name, e->val, e->vlen);
	name[e->vlen] = '\0';
	if (strlen(name) != e->vlen || store_inst_name_check(name) != 0)
		return VTPM_E_FORMAT;
	return 0;
}

static int
ov_ident_drop(struct ov *o, const uint8_t ident[STORE_IDENT_LEN], const char *name)
{
	char ikey[ETCD_K_MAX], cur[STORE_NAME_MAX + 1];
	int rc;

	etcd_key_ident(ikey, ident);
	rc = ov_ident_name(o, ikey, cur);
	if (rc == VTPM_E_NOTFOUND)
		return 0;
	if (rc != 0 && rc != VTPM_E_FORMAT)
		return rc;
	if (rc == 0 && strcmp(cur, name) != 0)
		return 0;
	return ov_del(o, ikey);
}

static int
ov_put_inst(struct ov *o, const struct store_op *op)
{
	struct store_instance old, other;
	uint8_t oldident[STORE_IDENT_LEN];
	char ikey[ETCD_K_MAX], okey[ETCD_K_MAX], owner[STORE_NAME_MAX + 1];
	struct ov_ent *e, *oe;
	int rc, same_ident = 0;

	if ((rc = ov_touch_inst(o, op->name)) != 0 || (rc = ov_get_inst(o, op->name, &e)) != 0)
		return rc;
	if (e->present) {
		if (etcd_inst_decode(op->name, e->val, e->vlen, &old) != 0) {
			log_warnx("etcd: instance %s: replacing a corrupt record", op->name);
		} else {
			if (memcmp(old.uuid, op->uuid, SEAL_UUID_LEN) != 0) {
				log_warnx("etcd: instance %s exists with another uuid", op->name);
				return VTPM_E_EXISTS;
			}
			if (!store_ident_is_empty(old.measurement, old.host_data)) {
				store_ident_key(old.measurement, old.host_data, oldident);
				if (op->has_ident && memcmp(oldident, op->ident,
				    STORE_IDENT_LEN) == 0)
					same_ident = 1;	/* its entry stays as it is */
				else if ((rc = ov_ident_drop(o, oldident, op->name)) != 0)
					return rc;
			}
		}
	}
	if (op->has_ident && !same_ident) {
		etcd_key_ident(ikey, op->ident);
		rc = ov_ident_name(o, ikey, owner);
		if (rc == 0 && strcmp(owner, op->name) != 0) {
			etcd_key_inst(okey, owner);
			if (ov_get(o, okey, &oe) == 0 && oe->present &&
			    etcd_inst_decode(owner, oe->val, oe->vlen, &other) == 0 &&
			    memcmp(other.measurement, op->meas, STORE_MEAS_LEN) == 0 &&
			    memcmp(other.host_data, op->host, STORE_HOST_DATA_LEN) == 0) {
				log_warnx("etcd: instance %s: identity already enrolled as %s",
				    op->name, owner);
				return VTPM_E_EXISTS;
			}
			log_warnx("etcd: instance %s: replacing a stale ident entry", op->name);
		} else if (rc != 0 && rc != VTPM_E_NOTFOUND && rc != VTPM_E_FORMAT)
			return rc;
		if ((rc = ov_put(o, ikey, (const uint8_t *)op->name, strlen(op->name))) != 0)
			return rc;
	}
	etcd_key_inst(ikey, op->name);
	return ov_put(o, ikey, op->data, op->len);
}

struct ov_blob_arg {
	struct ov	*o;
	int		 rc;
};

static int
ov_blob_del_cb(const struct etcd_kv *kv, void *arg)
{
	struct ov_blob_arg *a = arg;
	char key[ETCD_K_MAX];

	if (kv->klen >= sizeof(key) || memchr(kv->key, 0, kv->klen) != NULL)
		return VTPM_E_FORMAT;
	memcpy(key, kv->key, kv->klen);
	key[kv->klen] = '\0';
	return ov_del(a->o, key);
}

static int
ov_del_inst(struct ov *o, const struct store_op *op)
{
	struct store_instance old;
	uint8_t ident[STORE_IDENT_LEN];
	char key[ETCD_K_MAX], prefix[ETCD_K_MAX];
	struct ov_blob_arg a = { o, 0 };
	struct ov_ent *e;
	size_t i;
	int rc;

	if ((rc = ov_touch_inst(o, op->name)) != 0 || (rc = ov_get_inst(o, op->name, &e)) != 0)
		return rc;
	if (!e->present)
		return VTPM_E_NOTFOUND;
	if (etcd_inst_decode(op->name, e->val, e->vlen, &old) != 0) {
		log_warnx("etcd: instance %s: deleting a corrupt record; its blobs stay behind",
		    op->name);
	} else {
		if (!store_ident_is_empty(old.measurement, old.host_data)) {
			store_ident_key(old.measurement, old.host_data, ident);
			if ((rc = ov_ident_drop(o, ident, op->name)) != 0)
				return rc;
		}
		etcd_key_blob_prefix(prefix, old.uuid);
		/* the blobs in etcd, and any this batch wrote */
		rc = etcd_walk(o->st, 1, prefix, NULL, 0, ov_blob_del_cb, &a);
		if (rc != 0)
			return rc;
		for (i = 0; i < o->n; i++)
			if (strncmp(o->e[i].key, prefix, strlen(prefix)) == 0 &&
			    (rc = ov_del(o, o->e[i].key)) != 0)
				return rc;
	}
	etcd_key_inst(key, op->name);
	return ov_del(o, key);
}

static int
ov_put_audit(struct ov *o, const struct store_op *op)
{
	char key[ETCD_K_MAX];
	struct etcd_range r;
	struct ov_ent *e;
	uint64_t seq;
	int rc;

	if (o->audit_next == 0) {
		char end[ETCD_K_MAX];

		etcd_prefix_end(end, ETCD_PREFIX "audit/");
		if ((rc = etcd_range(o->st, &o->st->http_main, ETCD_PREFIX "audit/", end, 0, 1,
		    1, 0, &r)) != 0)
			return rc;
		if ((rc = etcd_range_check(&r, ETCD_PREFIX "audit/", end)) != 0) {
			etcd_range_free(&r);
			return rc;
		}
		seq = r.n == 0 ? 0 : etcd_audit_seq(r.kvs[0].key, r.kvs[0].klen);
		if (r.n != 0 && seq == 0) {
			log_warnx("etcd: audit table holds a bad key");
			etcd_range_free(&r);
			return VTPM_E_FORMAT;
		}
		etcd_range_free(&r);
		o->audit_next = seq + 1;
	}
	etcd_key_audit(key, o->audit_next++);
	/* must not exist yet: another vtpmd may append the same number */
	if ((e = ov_find(o, key)) == NULL) {
		if ((e = ov_add(o, key)) == NULL)
			return VTPM_E_NOMEM;
		e->read = 1;
		e->read_rev = 0;
	}
	return ov_put(o, key, op->data, op->len);
}

static int
ov_apply(struct ov *o, const struct store_op *op)
{
	char key[ETCD_K_MAX];

	switch (op->kind) {
	case STORE_OP_PUT_KCV:
		return ov_put(o, ETCD_PREFIX "meta/kcv", op->data, op->len);
	case STORE_OP_PUT_INST:
		return ov_put_inst(o, op);
	case STORE_OP_DEL_INST:
		return ov_del_inst(o, op);
	case STORE_OP_PUT_BLOB:
		etcd_key_blob(key, op->uuid, op->type);
		return ov_put(o, key, op->data, op->len);
	case STORE_OP_DEL_BLOB:
		etcd_key_blob(key, op->uuid, op->type);
		return ov_del(o, key);
	case STORE_OP_PUT_AUDIT:
		return ov_put_audit(o, op);
	case STORE_OP_PUT_XFER:
		etcd_key_xfer(key, op->type, op->uuid);
		return ov_put(o, key, op->data, op->len);
	case STORE_OP_DEL_XFER:
		etcd_key_xfer(key, op->type, op->uuid);
		return ov_del(o, key);
	case STORE_OP_PRUNE_AUDIT:
		/* vtpmd refuses audit retention with this backend (fleet.c) */
		log_warnx("etcd: pruning the audit log is not supported");
		return VTPM_E_UNSUPPORTED;
	}
	return VTPM_E_INVAL;
}

/* Builds the txn: compares (read set, fences), writes, and diagnostics on failure. */
static json_object *
ov_txn_request(struct ov *o)
{
	struct store_etcd *st = o->st;
	json_object *req, *cmp, *succ, *fail, *w, *p;
	char key[ETCD_K_MAX];
	struct etcd_claim *c;
	size_t i;

	req = json_object_new_object();
	cmp = json_object_new_array();
	succ = json_object_new_array();
	fail = json_object_new_array();
	for (i = 0; i < o->n; i++) {
		struct ov_ent *e = &o->e[i];

		if (e->read)
			etcd_j_cmp(cmp, e->key, e->read_rev != 0 ? "MOD" : "CREATE",
			    e->read_rev, NULL, 0);
		if (!e->written)
			continue;
		w = json_object_new_object();
		p = json_object_new_object();
		etcd_j_key(p, e->key, NULL);
		if (e->present) {
			/* an empty value is never written: every op carries bytes */
			json_object_object_add(p, "value", etcd_j_b64(e->val, e->vlen));
			json_object_object_add(w, "request_put", p);
		} else
			json_object_object_add(w, "request_delete_range", p);
		json_object_array_add(succ, w);
	}
	for (i = 0; i < o->nfenced; i++) {
		if ((c = etcd_claim_find(st, o->fenced[i])) == NULL)
			continue;	/* cannot happen: claims change only under st->mu */
		etcd_key_own(key, o->fenced[i]);
		etcd_j_cmp(cmp, key, "VALUE", 0, st->owner, strlen(st->owner));
		etcd_j_cmp(cmp, key, "LEASE", c->lease, NULL, 0);
		etcd_j_req_range(fail, key);
		etcd_key_inst(key, o->fenced[i]);
		if (c->rev >= 0)
			etcd_j_cmp(cmp, key, c->rev != 0 ? "MOD" : "CREATE", c->rev, NULL, 0);
		etcd_j_req_range(fail, key);
	}
	for (i = 0; i < o->nunowned; i++) {
		etcd_key_own(key, o->unowned[i]);
		etcd_j_cmp(cmp, key, "CREATE", 0, NULL, 0);
		etcd_j_req_range(fail, key);
	}
	json_object_object_add(req, "compare", cmp);
	json_object_object_add(req, "success", succ);
	json_object_object_add(req, "failure", fail);
	return req;
}

/*
 * After a failed compare: 1 if a fenced instance is no longer ours (it is
 * marked lost), 2 if its record already is what this batch writes (an
 * earlier attempt committed), 3 if an instance written without a claim has
 * an owner (another vtpmd serves it), 0 if the fences held (a read
 * changed: retry).
 */
static int
ov_diagnose(struct ov *o, const struct etcd_txn *t, int64_t *committed_rev)
{
	struct store_etcd *st = o->st;
	char okey[ETCD_K_MAX], ikey[ETCD_K_MAX];
	struct etcd_claim *c;
	struct ov_ent *e;
	size_t i;
	int res = 0;

	if (t->nresp != 2 * o->nfenced + o->nunowned)
		return 1;
	for (i = 0; i < o->nunowned; i++) {
		const struct etcd_range *ro = &t->resp[2 * o->nfenced + i];
		char text[STORE_ETCD_OWNER_MAX + 1];

		etcd_key_own(okey, o->unowned[i]);
		if (etcd_range_check(ro, okey, NULL) == 0 && ro->n == 1) {
			etcd_owner_text(&ro->kvs[0], text, sizeof(text));
			log_warnx("etcd: instance %s is served by %s: write refused",
			    o->unowned[i], text);
			return 3;
		}
	}
	for (i = 0; i < o->nfenced; i++) {
		const struct etcd_range *ro = &t->resp[2 * i], *ri = &t->resp[2 * i + 1];

		if ((c = etcd_claim_find(st, o->fenced[i])) == NULL)
			return 1;
		etcd_key_own(okey, o->fenced[i]);
		etcd_key_inst(ikey, o->fenced[i]);
		if (etcd_range_check(ro, okey, NULL) != 0 || etcd_range_check(ri, ikey, NULL) != 0 ||
		    ro->n != 1 || ro->kvs[0].vlen != strlen(st->owner) ||
		    memcmp(ro->kvs[0].val, st->owner, ro->kvs[0].vlen) != 0 ||
		    ro->kvs[0].lease != c->lease) {
			log_warnx("etcd: instance %s is no longer owned by this vtpmd%s",
			    c->name, ro->n == 1 ? " (taken over)" : " (lease gone)");
			c->state = CLAIM_LOST;
			return 1;
		}
		if (c->rev >= 0 && (ri->n == 0 ? 0 : ri->kvs[0].mod_rev) != c->rev) {
			e = ov_find(o, ikey);
			if (e != NULL && e->written && e->present && ri->n == 1 &&
			    ri->kvs[0].vlen == e->vlen &&
			    memcmp(ri->kvs[0].val, e->val, e->vlen) == 0) {
				*committed_rev = ri->kvs[0].mod_rev;
				res = 2;
				continue;
			}
			log_warnx("etcd: instance %s: record changed behind this vtpmd "
			    "(revision %lld, expected %lld): fenced", c->name,
			    (long long)(ri->n ? ri->kvs[0].mod_rev : 0), (long long)c->rev);
			c->state = CLAIM_LOST;
			return 1;
		}
	}
	return res;
}

/* After a commit at revision rev: claims remember the records written. */
static void
ov_committed(struct ov *o, int64_t rev)
{
	char key[ETCD_K_MAX];
	struct etcd_claim *c;
	struct ov_ent *e;
	size_t i;

	for (i = 0; i < o->nfenced; i++) {
		if ((c = etcd_claim_find(o->st, o->fenced[i])) == NULL)
			continue;
		etcd_key_inst(key, o->fenced[i]);
		if ((e = ov_find(o, key)) == NULL || !e->written)
			continue;
		c->rev = e->present ? rev : 0;
		c->rlen = e->present && e->vlen <= sizeof(c->rec) ? e->vlen : 0;
		if (c->rlen > 0)
			memcpy(c->rec, e->val, c->rlen);
	}
	o->st->audit_next = o->audit_next;
}

/* The outcome of an earlier attempt is unknown: the claims' records must be re-read. */
static void
ov_uncertain(struct ov *o)
{
	struct etcd_claim *c;
	size_t i;

	for (i = 0; i < o->nfenced; i++)
		if ((c = etcd_claim_find(o->st, o->fenced[i])) != NULL)
			c->rev = -1;
	o->st->audit_next = 0;
}

static int
etcd_batch_commit(struct store *s, const struct store_batch *b)
{
	struct store_etcd *st = etcd_of(s);
	struct etcd_txn t;
	struct ov o;
	json_object *req;
	int64_t rev = 0;
	size_t i;
	int rc = 0, attempt, d;

	pthread_mutex_lock(&st->mu);
	for (attempt = 0; attempt < ETCD_TXN_RETRIES; attempt++) {
		rc = 0;
		memset(&o, 0, sizeof(o));
		o.st = st;
		o.audit_next = st->audit_next;
		o.nmax = b->n;
		if ((o.fenced = calloc(b->n, sizeof(*o.fenced))) == NULL ||
		    (o.unowned = calloc(b->n, sizeof(*o.unowned))) == NULL) {
			ov_free(&o);
			rc = VTPM_E_NOMEM;
			break;
		}
		for (i = 0; i < b->n && rc == 0; i++)
			rc = ov_apply(&o, &b->ops[i]);
		if (rc != 0) {
			ov_free(&o);
			break;
		}
		req = ov_txn_request(&o);
		rc = etcd_txn(st, req, &t);
		json_object_put(req);
		if (rc == VTPM_E_IO || rc == VTPM_E_TIMEOUT) {
			/* maybe committed, maybe not: the next write re-reads */
			ov_uncertain(&o);
			ov_free(&o);
			rc = VTPM_E_STORE;
			break;
		}
		if (rc != 0) {
			ov_free(&o);
			break;
		}
		if (t.succeeded) {
			ov_committed(&o, t.revision);
			etcd_txn_free(&t);
			ov_free(&o);
			break;
		}
		d = ov_diagnose(&o, &t, &rev);
		etcd_txn_free(&t);
		if (d == 2) {
			ov_committed(&o, rev);
			ov_free(&o);
			break;
		}
		ov_free(&o);
		if (d == 1) {
			rc = VTPM_E_FENCED;
			break;
		}
		if (d == 3) {
			rc = VTPM_E_BUSY;
			break;
		}
		/* a key the batch read changed (another vtpmd enrolled, audited): again */
		st->audit_next = 0;
		rc = VTPM_E_STORE;
	}
	pthread_mutex_unlock(&st->mu);
	if (rc == VTPM_E_STORE)
		log_warnx("etcd: batch not committed");
	return rc;
}

/* ---- snapshots ---------------------------------------------------------------- */

struct etcd_snapshot {
	struct store_snapshot	 base;	/* first */
	int64_t			 rev;
	struct etcd_range	 rec, perm, vol, endo;	/* what the last next() returned */
};

static int
etcd_snapshot_begin(struct store *s, struct store_snapshot **out)
{
	struct store_etcd *st = etcd_of(s);
	struct etcd_snapshot *sn;
	struct etcd_range r;
	int rc;

	pthread_mutex_lock(&st->mu);
	rc = etcd_get(st, &st->http_main, ETCD_PREFIX "meta/format", 0, &r);
	pthread_mutex_unlock(&st->mu);
	if (rc != 0)
		return rc;
	if ((sn = calloc(1, sizeof(*sn))) == NULL) {
		etcd_range_free(&r);
		return VTPM_E_NOMEM;
	}
	sn->base.ss_store = s;
	sn->rev = r.revision;	/* every read of the snapshot is at this revision */
	etcd_range_free(&r);
	*out = &sn->base;
	return 0;
}

static void
etcd_snapshot_release(struct etcd_snapshot *sn)
{
	etcd_range_free(&sn->rec);
	etcd_range_free(&sn->perm);
	etcd_range_free(&sn->vol);
	etcd_range_free(&sn->endo);
}

static void
etcd_snapshot_end(struct store_snapshot *snap)
{
	struct etcd_snapshot *sn = (struct etcd_snapshot *)snap;

	etcd_snapshot_release(sn);
	free(sn);
}

static int
etcd_snapshot_info(struct store_snapshot *snap, size_t *count, uint8_t kcv[SEAL_KCV_LEN])
{
	struct etcd_snapshot *sn = (struct etcd_snapshot *)snap;
	struct store_etcd *st = etcd_of(snap->ss_store);
	char end[ETCD_K_MAX];
	struct etcd_range r;
	int64_t n = 0;
	int rc;

	etcd_prefix_end(end, ETCD_PREFIX "inst/");
	pthread_mutex_lock(&st->mu);
	rc = etcd_range(st, &st->http_main, ETCD_PREFIX "inst/", end, sn->rev, 0, 0, 1, &r);
	if (rc == 0) {
		n = r.count;
		etcd_range_free(&r);
	}
	if (rc == 0 && kcv != NULL) {
		rc = etcd_get(st, &st->http_main, ETCD_PREFIX "meta/kcv", sn->rev, &r);
		if (rc == 0) {
			if (r.n == 0)
				rc = VTPM_E_NOTFOUND;
			else if (r.kvs[0].vlen != SEAL_KCV_LEN) {
				log_warnx("etcd: key-check record is corrupt");
				rc = VTPM_E_FORMAT;
			} else
				memcpy(kcv, r.kvs[0].val, SEAL_KCV_LEN);
			etcd_range_free(&r);
		}
	}
	pthread_mutex_unlock(&st->mu);
	if (rc == 0)
		*count = (size_t)n;
	return rc;
}

static int
etcd_snapshot_next(struct store_snapshot *snap, const char *after,
    struct store_inst_view *out)
{
	struct etcd_snapshot *sn = (struct etcd_snapshot *)snap;
	struct store_etcd *st = etcd_of(snap->ss_store);
	char start[ETCD_K_MAX + 2], end[ETCD_K_MAX], key[ETCD_K_MAX], name[STORE_NAME_MAX + 1];
	const struct etcd_kv *kv;
	int rc;

	etcd_snapshot_release(sn);
	etcd_prefix_end(end, ETCD_PREFIX "inst/");
	if (after != NULL)
		snprintf(start, sizeof(start), ETCD_PREFIX "inst/%s\x01", after);
	else
		snprintf(start, sizeof(start), ETCD_PREFIX "inst/");
	pthread_mutex_lock(&st->mu);
	rc = etcd_range(st, &st->http_main, start, end, sn->rev, 1, 0, 0, &sn->rec);
	if (rc == 0)
		rc = etcd_range_check(&sn->rec, start, end);
	if (rc == 0 && sn->rec.n == 0)
		rc = VTPM_E_NOTFOUND;
	if (rc != 0)
		goto out;
	kv = &sn->rec.kvs[0];
	if (etcd_inst_name(kv, name) == NULL) {
		log_warnx("etcd: instance table holds a bad key");
		rc = VTPM_E_FORMAT;
		goto out;
	}
	if (etcd_inst_decode(name, kv->val, kv->vlen, &out->rec) != 0) {
		memset(out, 0, sizeof(*out));
		memcpy(out->rec.name, name, strlen(name) + 1);
		rc = VTPM_E_FORMAT;
		goto out;
	}
	out->rec_bytes = kv->val;
	out->rec_len = kv->vlen;
	if (out->rec.perm_gen != 0) {
		etcd_key_blob(key, out->rec.uuid, SEAL_BLOB_PERMANENT);
		if ((rc = etcd_get(st, &st->http_main, key, sn->rev, &sn->perm)) != 0)
			goto out;
		if (sn->perm.n == 1) {
			out->perm = sn->perm.kvs[0].val;
			out->perm_len = sn->perm.kvs[0].vlen;
		}
	}
	if (out->rec.vol_gen != 0) {
		etcd_key_blob(key, out->rec.uuid, SEAL_BLOB_VOLATILE);
		if ((rc = etcd_get(st, &st->http_main, key, sn->rev, &sn->vol)) != 0)
			goto out;
		if (sn->vol.n == 1) {
			out->vol = sn->vol.kvs[0].val;
			out->vol_len = sn->vol.kvs[0].vlen;
		}
	}
	/* the endorsement record (EK publics, certificates) has no generation field */
	etcd_key_blob(key, out->rec.uuid, SEAL_BLOB_ENDORSEMENT);
	if ((rc = etcd_get(st, &st->http_main, key, sn->rev, &sn->endo)) != 0)
		goto out;
	if (sn->endo.n == 1) {
		out->endo = sn->endo.kvs[0].val;
		out->endo_len = sn->endo.kvs[0].vlen;
	}
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/*
 * etcd checks each of a txn's lists (compares, success ops, failure ops)
 * against --max-txn-ops. The state store of one claimed instance costs at
 * most 4 compares (the record as read, the owner's value and lease, the
 * record's revision), 2 or 3 writes (blob, record, an ident entry) and 2
 * failure reads; an audit record 1 write, and the batch 1 compare and 1
 * write for the audit counter. A fifth of the limit in instances and a
 * quarter in audit records keep every list below it, with room for the few
 * keys a batch reads besides.
 */
static void
etcd_batch_limits(struct store *s, int *max_insts, int *max_audit)
{
	struct store_etcd *st = etcd_of(s);

	*max_insts = (st->max_txn_ops - 8) / 5;
	*max_audit = st->max_txn_ops / 4;
	if (*max_insts < 1)
		*max_insts = 1;
	if (*max_audit < 1)
		*max_audit = 1;
}

static const struct store_ops etcd_ops = {
	.name			= "etcd",
	.close			= etcd_close,
	.meta_get_kcv		= etcd_meta_get_kcv,
	.inst_get		= etcd_inst_get,
	.inst_find_identity	= etcd_inst_find_identity,
	.inst_list		= etcd_inst_list,
	.blob_get		= etcd_blob_get,
	.batch_commit		= etcd_batch_commit,
	.snapshot_begin		= etcd_snapshot_begin,
	.snapshot_end		= etcd_snapshot_end,
	.snapshot_info		= etcd_snapshot_info,
	.snapshot_next		= etcd_snapshot_next,
	.audit_list		= etcd_audit_list,
	.xfer_get		= etcd_xfer_get,
	.inst_claim		= etcd_inst_claim,
	.inst_release		= etcd_inst_release,
	.fleet_tick		= etcd_fleet_tick,
	.inst_owner		= etcd_inst_owner,
	.fleet_self		= etcd_fleet_self,
	.batch_limits		= etcd_batch_limits,
};
