/*
 * keys.c: the store's root key in the parent (V->kek): getting it from the
 * key provider, checking it against the store before anything is served,
 * fetching it from a key broker without blocking the event loop, and
 * root-key rotation (admin op "rotate-key"). Trusts the provider only for
 * bytes: a key is used only after the store's key-check value accepts it,
 * and a rotation writes nothing until every wrapped key has been rewrapped.
 *
 *   state     guests     enrol      status "keys"
 *   WAITING   refused    refused    "waiting for broker: <reason>"   (retries, backoff)
 *   REFUSED   refused    refused    "refused: <reason>"              (retries, backoff)
 *   READY     served     allowed    "available"
 * A key that does not open the store changes nothing on disk; READY is never
 * left once reached (rotation swaps one verified key for another).
 *
 * Broker fetches run on one helper thread at a time (libcurl blocks). The
 * thread gets the job's inputs, calls keyprov_get_version() and leaves the
 * result (a read-only struct seal_kek in guarded memory, or an error and a
 * reason) in the job, then writes an eventfd; the event loop joins it and
 * acts. The thread never touches V, the store or any instance.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "endorse.h"
#include "keyprov.h"
#include "log.h"
#include "ops.h"
#include "parent.h"

#define KEYS_RETRY_MIN	1	/* seconds */
#define KEYS_RETRY_MAX	60

enum keys_state { KEYS_WAITING, KEYS_REFUSED, KEYS_READY };
enum keys_job { JOB_NONE, JOB_CURRENT, JOB_VERSION, JOB_ROTATE, JOB_RESOURCE };

#define KEYS_RESOURCE_KEEP	30	/* seconds an unclaimed resource is kept */

static struct {
	struct keyprov		*kp;
	enum keys_state		 state;
	char			 status[KEYPROV_WHY_LEN + 96];
	/* the job; the thread owns the result fields until it signals */
	enum keys_job		 job;
	uint32_t		 job_version;
	pthread_t		 thr;
	int			 job_rc;
	char			 job_why[KEYPROV_WHY_LEN];
	struct seal_kek		*job_kek;
	struct ev		 ev;		/* eventfd: job done */
	/* start-up: the broker's current key while the store's version is fetched */
	struct seal_kek		*current;
	time_t			 next_try;	/* 0 = no retry scheduled */
	int			 backoff;
	/* rotation: the admin client waiting for the answer */
	int			 rot_fd;
	int			 stopping;
	/* another resource (keys_fetch_resource()): the finished fetch, unclaimed */
	char			 res_name[400];
	int			 res_done;
	int			 res_rc;
	char			 res_why[KEYPROV_WHY_LEN];
	struct seal_kek		*res_kek;
	time_t			 res_when;
} K = { .ev = { .fd = -1 }, .rot_fd = -1 };

static void
keys_set_status(enum keys_state st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
keys_set_status(enum keys_state st, const char *fmt, ...)
{
	va_list ap;

	K.state = st;
	va_start(ap, fmt);
	vsnprintf(K.status, sizeof(K.status), fmt, ap);
	va_end(ap);
}

static void
kid_hex(const uint8_t kid[SEAL_KID_LEN], char out[2 * SEAL_KID_LEN + 1])
{
	attest_hex_encode(kid, SEAL_KID_LEN, out);
}

/* ---- the fetch thread ---------------------------------------------------- */

static void *
keys_thread(void *arg)
{
	uint64_t one = 1;
	ssize_t w;

	K.job_kek = NULL;
	if (K.job == JOB_RESOURCE)
		K.job_rc = keyprov_get_resource(K.kp, K.res_name, &K.job_kek);
	else
		K.job_rc = keyprov_get_version(K.kp, K.job == JOB_VERSION ? K.job_version : 0,
		    &K.job_kek);
	snprintf(K.job_why, sizeof(K.job_why), "%s", K.job_rc != 0 ?
	    keyprov_last_error(K.kp) : "");
	do
		w = write(K.ev.fd, &one, sizeof(one));
	while (w == -1 && errno == EINTR);
	return NULL;
}

static void
keys_job_start(enum keys_job job, uint32_t version)
{
	int rc;

	K.job = job;
	K.job_version = version;
	K.next_try = 0;
	if ((rc = pthread_create(&K.thr, NULL, keys_thread, NULL)) != 0) {
		errno = rc;
		log_warn("pthread_create");
		K.job = JOB_NONE;
		K.next_try = time(NULL) + KEYS_RETRY_MIN;
	}
}

static void
keys_retry_later(void)
{
	K.backoff = K.backoff == 0 ? KEYS_RETRY_MIN : K.backoff * 2;
	if (K.backoff > KEYS_RETRY_MAX)
		K.backoff = KEYS_RETRY_MAX;
	K.next_try = time(NULL) + K.backoff;
}

/* ---- start-up: get a key that opens the store ------------------------------ */

static void
keys_ready(struct seal_kek *k)
{
	char kid[2 * SEAL_KID_LEN + 1];

	V->kek = k;
	K.backoff = 0;
	K.next_try = 0;
	keys_set_status(KEYS_READY, "available");
	kid_hex(k->kid, kid);
	log_info("root key version %u (key id %s) opens the store: serving",
	    k->version, kid);
}

/*
 * Checks k (taken) against the store's key-check value: READY; or a fetch of
 * the store's own version started (k is the broker's current key); or
 * REFUSED with a retry scheduled. Writes only to a fresh store (its first
 * key-check value).
 */
static void
keys_check(struct seal_kek *k, int is_current)
{
	uint8_t kcv[SEAL_KCV_LEN], skid[SEAL_KID_LEN];
	char want[2 * SEAL_KID_LEN + 1], got[2 * SEAL_KID_LEN + 1];
	uint32_t sver = 0;
	int rc;

	rc = store_meta_get_kcv(V->store, kcv);
	if (rc == VTPM_E_NOTFOUND) {
		/* a fresh store: this key becomes its key */
		store_batch_reset(V->sync_batch);
		if ((rc = seal_kek_check_make(k, kcv)) != 0 ||
		    (rc = store_batch_put_kcv(V->sync_batch, kcv)) != 0 ||
		    (rc = store_batch_commit(V->store, V->sync_batch)) != 0) {
			store_batch_reset(V->sync_batch);
			seal_kek_free(k);
			keys_set_status(KEYS_REFUSED, "refused: cannot initialise the store: %s",
			    vtpm_strerror(rc));
			log_warnx("cannot initialise the store: %s", vtpm_strerror(rc));
			keys_retry_later();
			return;
		}
		store_batch_reset(V->sync_batch);
		log_info("new store initialised in %s with root key version %u",
		    V->cfg.state_dir, k->version);
		keys_ready(k);
		return;
	}
	if (rc == 0)
		rc = seal_kek_check_peek(kcv, skid, &sver);
	if (rc != 0) {
		seal_kek_free(k);
		keys_set_status(KEYS_REFUSED, "refused: cannot read the store's key check: %s",
		    vtpm_strerror(rc));
		log_warnx("cannot read the store's key check: %s", vtpm_strerror(rc));
		keys_retry_later();
		return;
	}
	rc = seal_kek_check_verify(k, kcv);
	if (rc == 0) {
		if (K.current != NULL) {
			log_warnx("the broker's current root key is version %u, the store is "
			    "at version %u (a rotation did not finish, or the broker moved "
			    "on): serving with version %u; run `vtpmctl rotate-key` to move "
			    "to version %u", K.current->version, k->version, k->version,
			    K.current->version);
			seal_kek_free(K.current);
			K.current = NULL;
		}
		keys_ready(k);
		return;
	}
	kid_hex(skid, want);
	kid_hex(k->kid, got);
	if (rc == VTPM_E_WRONG_KEY && is_current && sver != k->version) {
		/* the store is at another version: ask for exactly that one */
		log_info("the store is at root key version %u (key id %s), the broker's "
		    "current key is version %u: fetching version %u", sver, want,
		    k->version, sver);
		K.current = k;
		keys_set_status(KEYS_WAITING, "waiting for broker: fetching root key "
		    "version %u (the store's)", sver);
		keys_job_start(JOB_VERSION, sver);
		return;
	}
	if (rc == VTPM_E_WRONG_KEY)
		keys_set_status(KEYS_REFUSED, "refused: the root key from %s (version %u, "
		    "key id %s) does not open this store (it needs version %u, key id %s); "
		    "nothing was changed", keyprov_spec(K.kp), k->version, got, sver, want);
	else
		keys_set_status(KEYS_REFUSED, "refused: the store's key check does not "
		    "verify with the root key from %s (%s): the store's meta record may "
		    "be damaged; nothing was changed", keyprov_spec(K.kp), vtpm_strerror(rc));
	seal_kek_free(k);
	log_warnx("%s; serving nothing", K.status);
	if (K.current != NULL) {
		seal_kek_free(K.current);
		K.current = NULL;
	}
	keys_retry_later();
}

/* ---- rotation ------------------------------------------------------------ */

static void
keys_rotate_reply(int ok, json_object *extra, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
keys_rotate_reply(int ok, json_object *extra, const char *fmt, ...)
{
	json_object *r = extra != NULL ? extra : json_object_new_object();
	char msg[KEYPROV_WHY_LEN + 160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(r, "ok", json_object_new_boolean(ok));
	json_object_object_add(r, ok ? "message" : "error", json_object_new_string(msg));
	if (ok)
		log_info("rotate-key: %s", msg);
	else
		log_warnx("rotate-key: %s", msg);
	if (K.rot_fd >= 0)
		admin_reply(K.rot_fd, r);	/* writes and closes */
	else
		json_object_put(r);
	K.rot_fd = -1;
}

/* After the rewrap commit: live instances keep their records in memory. */
static void
keys_refresh_insts(void)
{
	struct store_instance rec;
	struct inst *in;

	TAILQ_FOREACH(in, &V->insts, entry) {
		if (store_inst_get(V->store, in->rec.name, &rec) != 0)
			continue;
		memcpy(in->rec.wrapped_dek, rec.wrapped_dek, SEAL_WRAPPED_DEK_LEN);
		memcpy(in->pending_rec.wrapped_dek, rec.wrapped_dek, SEAL_WRAPPED_DEK_LEN);
	}
}

static void
keys_rotate_done(int rc, const char *why, struct seal_kek *k)
{
	json_object *r;
	size_t count = 0;
	uint32_t from;

	if (rc != 0) {
		keys_rotate_reply(0, NULL, "cannot fetch the current root key from %s: %s; "
		    "nothing was changed", keyprov_spec(K.kp), why);
		return;
	}
	if (sodium_memcmp(k->kid, V->kek->kid, SEAL_KID_LEN) == 0) {
		r = json_object_new_object();
		json_object_object_add(r, "rotated", json_object_new_boolean(0));
		json_object_object_add(r, "key_version", json_object_new_int64(V->kek->version));
		keys_rotate_reply(1, r, "already at the broker's current root key "
		    "(version %u)", V->kek->version);
		seal_kek_free(k);
		return;
	}
	if (k->version <= V->kek->version) {
		keys_rotate_reply(0, NULL, "the broker's current root key is version %u, "
		    "not newer than the store's version %u: refusing to rotate; nothing "
		    "was changed", k->version, V->kek->version);
		seal_kek_free(k);
		return;
	}
	if (ops_running()) {
		/* one may have started while the key was being fetched */
		keys_rotate_reply(0, NULL, "a backup, restore, export or import started "
		    "meanwhile; rotate when it is done; nothing was changed");
		seal_kek_free(k);
		return;
	}
	batch_commit();		/* every acknowledged write is in, under the old key */
	/* the EK CA key goes along first: same CA after the rotation (endorse.h) */
	if ((rc = ekca_carry(k)) != 0) {
		keys_rotate_reply(0, NULL, "the EK CA key could not be wrapped for version %u: "
		    "%s; the store stays on version %u", k->version, vtpm_strerror(rc),
		    V->kek->version);
		seal_kek_free(k);
		return;
	}
	if ((rc = store_rewrap_all(V->store, V->kek, k, &count)) != 0) {
		(void)audit_log(NULL, STORE_AUDIT_ROTATE_KEY, rc, 0, STORE_AUDIT_NO_UID, NULL,
		    NULL, NULL, "rotation from version %u to %u failed; nothing was changed",
		    V->kek->version, k->version);
		keys_rotate_reply(0, NULL, "rewrapping the data keys from version %u to %u "
		    "failed: %s; nothing was changed", V->kek->version, k->version,
		    vtpm_strerror(rc));
		seal_kek_free(k);
		return;
	}
	from = V->kek->version;
	seal_kek_free(V->kek);
	V->kek = k;
	keys_refresh_insts();
	/* queued: it commits with the next group commit, under the new key */
	(void)audit_log(NULL, STORE_AUDIT_ROTATE_KEY, 0, 0, STORE_AUDIT_NO_UID, NULL, NULL,
	    NULL, "root key rotated from version %u to %u: %zu data keys rewrapped",
	    from, k->version, count);
	r = json_object_new_object();
	json_object_object_add(r, "rotated", json_object_new_boolean(1));
	json_object_object_add(r, "from_version", json_object_new_int64(from));
	json_object_object_add(r, "key_version", json_object_new_int64(k->version));
	json_object_object_add(r, "instances", json_object_new_int64((int64_t)count));
	keys_rotate_reply(1, r, "root key rotated from version %u to %u: %zu data keys "
	    "rewrapped in one transaction", from, k->version, count);
}

int
keys_rotate(int fd, char *why, size_t whylen)
{
	if (K.state != KEYS_READY) {
		snprintf(why, whylen, "no root key yet (%s)", K.status);
		return VTPM_E_AGAIN;
	}
	if (keyprov_is_dev(K.kp)) {
		snprintf(why, whylen, "the development key file has no other versions: "
		    "rotation needs a key broker (--key-provider kbs:URL)");
		return VTPM_E_UNSUPPORTED;
	}
	if (K.job != JOB_NONE || K.rot_fd >= 0) {
		snprintf(why, whylen, K.job == JOB_RESOURCE ? "the key broker is busy (a "
		    "migration key is being fetched); try again" :
		    "a rotation is already in progress");
		return VTPM_E_BUSY;
	}
	if (ops_running()) {	/* a backup or restore holds keys of the current version */
		snprintf(why, whylen, "a backup, restore, export or import is running; "
		    "rotate when it is done");
		return VTPM_E_BUSY;
	}
	if (K.stopping) {
		snprintf(why, whylen, "vtpmd is shutting down");
		return VTPM_E_AGAIN;
	}
	K.rot_fd = fd;
	log_info("rotate-key: fetching the current root key from %s", keyprov_spec(K.kp));
	keys_job_start(JOB_ROTATE, 0);
	if (K.job == JOB_NONE) {
		K.rot_fd = -1;
		snprintf(why, whylen, "cannot start the key fetch");
		return VTPM_E_IO;
	}
	return 0;
}

/* ---- the event loop's side ------------------------------------------------- */

void
keys_event(void)
{
	enum keys_job job = K.job;
	uint64_t v;
	int rc;

	if (read(K.ev.fd, &v, sizeof(v)) != sizeof(v) || job == JOB_NONE)
		return;
	if ((rc = pthread_join(K.thr, NULL)) != 0) {
		errno = rc;
		fatal("pthread_join");
	}
	K.job = JOB_NONE;
	if (job == JOB_ROTATE) {
		keys_rotate_done(K.job_rc, K.job_why, K.job_kek);
		return;
	}
	if (job == JOB_RESOURCE) {
		/* kept for keys_fetch_resource() to claim; the root-key state is untouched */
		K.res_done = 1;
		K.res_rc = K.job_rc;
		snprintf(K.res_why, sizeof(K.res_why), "%s", K.job_why);
		K.res_kek = K.job_kek;
		K.job_kek = NULL;
		K.res_when = time(NULL);
		if (K.res_rc != 0)
			log_warnx("kbs: resource %s not released: %s", K.res_name, K.res_why);
		return;
	}
	if (K.stopping) {
		seal_kek_free(K.job_kek);
		return;
	}
	if (K.job_rc != 0) {
		if (K.current != NULL) {
			seal_kek_free(K.current);
			K.current = NULL;
		}
		keys_retry_later();
		if (job == JOB_VERSION)
			keys_set_status(KEYS_REFUSED, "refused: the store needs root key "
			    "version %u, which the broker does not release: %s",
			    K.job_version, K.job_why);
		else
			keys_set_status(KEYS_WAITING, "waiting for broker: %s", K.job_why);
		log_warnx("no root key: %s (next try in %d s); serving nothing",
		    K.job_why, K.backoff);
		return;
	}
	keys_check(K.job_kek, job == JOB_CURRENT);
}

static void
keys_resource_drop(void)
{
	seal_kek_free(K.res_kek);	/* wipes */
	K.res_kek = NULL;
	K.res_done = 0;
}

int
keys_fetch_resource(const char *resource, struct seal_kek **out, char *why, size_t whylen)
{
	int rc;

	*out = NULL;
	if (K.res_done && strcmp(K.res_name, resource) == 0) {
		rc = K.res_rc;
		if (rc == 0)
			*out = K.res_kek;
		else
			snprintf(why, whylen, "%s", K.res_why);
		K.res_kek = NULL;
		K.res_done = 0;
		return rc;
	}
	if (K.state != KEYS_READY || K.kp == NULL) {
		snprintf(why, whylen, "no root key yet (%s)", K.status);
		return VTPM_E_AGAIN;
	}
	if (keyprov_is_dev(K.kp)) {
		snprintf(why, whylen, "resource %s needs a key broker (--key-provider kbs:URL)",
		    resource);
		return VTPM_E_UNSUPPORTED;
	}
	if (K.job != JOB_NONE || K.stopping) {
		snprintf(why, whylen, "the key broker is busy");
		return VTPM_E_AGAIN;	/* a rotation, or this very fetch */
	}
	if (strlen(resource) >= sizeof(K.res_name)) {
		snprintf(why, whylen, "resource name too long");
		return VTPM_E_INVAL;
	}
	keys_resource_drop();		/* an unclaimed result of another resource */
	snprintf(K.res_name, sizeof(K.res_name), "%s", resource);
	log_info("kbs: fetching resource %s from %s", resource, keyprov_spec(K.kp));
	keys_job_start(JOB_RESOURCE, 0);
	snprintf(why, whylen, "fetching %s from the key broker", resource);
	return VTPM_E_AGAIN;
}

void
keys_tick(time_t now)
{
	if (K.res_done && now - K.res_when > KEYS_RESOURCE_KEEP)
		keys_resource_drop();	/* nobody claimed it: do not keep a key around */
	if (K.state != KEYS_READY && K.job == JOB_NONE && K.next_try != 0 &&
	    now >= K.next_try && !K.stopping)
		keys_job_start(JOB_CURRENT, 0);
}

int
keys_available(void)
{
	return K.state == KEYS_READY && V->kek != NULL;
}

const char *
keys_status(void)
{
	return K.status;
}

/* The provider's settings; NULL on success, else why it cannot be used. */
static const char *
keys_config(struct keyprov_config *kc, char *why, size_t whylen)
{
	memset(kc, 0, sizeof(*kc));
	kc->kc_spec = V->cfg.key_provider;
	kc->kc_create_dev = V->cfg.dev;
	kc->kc_resource = V->cfg.key_resource;
	kc->kc_ca_file = V->cfg.kbs_ca_file;
	kc->kc_allow_http = V->cfg.kbs_allow_http;
	kc->kc_tee_key = V->cfg.kbs_tee_key;
	kc->kc_evidence = keys_evidence;
	if (strncmp(V->cfg.key_provider, "kbs:", 4) != 0) {
		kc->kc_tee = "sample";	/* unused by file: */
		return NULL;
	}
	if ((kc->kc_tee = keys_evidence_tee(why, whylen)) == NULL)
		return why;
	return NULL;
}

int
keys_check_config(void)
{
	struct keyprov_config kc;
	struct keyprov *kp = NULL;
	int rc;

	char why[ATTEST_WHY_LEN];

	if (strncmp(V->cfg.key_provider, "kbs:", 4) != 0)
		return 0;	/* file: -n must not create a development key */
	if (keys_config(&kc, why, sizeof(why)) != NULL) {
		log_warnx("key broker evidence: %s", why);
		return VTPM_E_INVAL;
	}
	rc = keyprov_open_config(&kc, &kp);	/* checks everything but the network */
	keyprov_close(kp);
	keys_evidence_close();
	return rc;
}

void
keys_init(void)
{
	struct keyprov_config kc;
	struct seal_kek *k = NULL;
	char why[ATTEST_WHY_LEN];
	int rc;

	if (keys_config(&kc, why, sizeof(why)) != NULL)
		fatalx("key broker evidence: %s", why);
	if (strncmp(V->cfg.key_provider, "kbs:", 4) == 0)
		log_info("kbs: attesting to the key broker as tee \"%s\"%s", kc.kc_tee,
		    strcmp(kc.kc_tee, "sample") == 0 ? " (no signed evidence: only a broker "
		    "with Trustee's sample verifier accepts it; development only)" : "");
	if ((rc = keyprov_open_config(&kc, &K.kp)) != 0)
		fatalx("key provider %s: %s", V->cfg.key_provider, vtpm_strerror(rc));
	if (keyprov_is_dev(K.kp)) {
		/* development key file: synchronous, and fatal if it does not fit */
		if ((rc = keyprov_get_root(K.kp, &k)) != 0)
			fatalx("key provider %s: no root key: %s", V->cfg.key_provider,
			    vtpm_strerror(rc));
		keys_check(k, 0);
		if (K.state != KEYS_READY)
			fatalx("%s", K.status);
		return;
	}
	if ((K.ev.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		fatal("eventfd");
	K.ev.kind = EV_KEYS;
	if (ev_add(&K.ev, EPOLLIN) != 0)
		fatalx("epoll");
	keys_set_status(KEYS_WAITING, "waiting for broker: first request to %s in progress",
	    keyprov_spec(K.kp));
	log_info("fetching the root key from %s (resource %s); serving nothing until "
	    "it opens the store", keyprov_spec(K.kp), V->cfg.key_resource);
	keys_job_start(JOB_CURRENT, 0);
}

void
keys_shutdown(void)
{
	K.stopping = 1;
	if (K.job != JOB_NONE) {
		keyprov_abort(K.kp);
		if (pthread_join(K.thr, NULL) == 0) {
			seal_kek_free(K.job_kek);
			K.job_kek = NULL;
		}
		K.job = JOB_NONE;
	}
	if (K.rot_fd >= 0)
		keys_rotate_reply(0, NULL, "vtpmd is shutting down; nothing was changed");
	if (K.current != NULL) {
		seal_kek_free(K.current);
		K.current = NULL;
	}
	keys_resource_drop();
	keys_evidence_close();
	if (K.ev.fd >= 0) {
		ev_del(&K.ev);
		close(K.ev.fd);
		K.ev.fd = -1;
	}
	keyprov_close(K.kp);
	K.kp = NULL;
}
