/*
 * audit.c: the audit log of the vtpmd parent (ops.h, table "audit" in
 * store.h): who attached, detached, enrolled, deleted, backed up, restored,
 * exported, imported or rotated keys, when, with what identity and result.
 * Trusts its callers for the facts; stores no secret (names, identities,
 * results and a short detail only) and answers `vtpmctl audit`.
 * Retention (--audit-retention DAYS, --audit-max-records N): the oldest
 * records are deleted in the ordinary group commit, together with an
 * "audit-prune" record that says what went; the newest record always stays.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "log.h"
#include "ops.h"
#include "parent.h"
#include "proto.h"

#define AUDIT_QUEUE_MAX		4096	/* queued records; beyond that the oldest go to the log only */
#define AUDIT_LIST_DEFAULT	10000
#define AUDIT_LIST_MAX		1000000

static struct {
	uint8_t		*rec[AUDIT_QUEUE_MAX];
	size_t		 len[AUDIT_QUEUE_MAX];
	int		 n;
	unsigned long	 dropped;
} Q;

/* Retention: the prune planned by audit_pending() for the next audit_flush(). */
#define AUDIT_PRUNE_EVERY_SEC	1

static struct {
	time_t		 next_check;
	uint64_t	 upto;		/* 0: nothing to prune */
	uint64_t	 n, first_seq;
	uint64_t	 oldest_ms;
	long		 n_age;		/* of n, this many were older than the retention */
} R;

static uint64_t
audit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
audit_log(struct store_batch *b, uint8_t event, int32_t result, uint32_t flags,
    uint32_t uid, const char *name, const uint8_t *uuid, const struct attest_claims *c,
    const char *fmt, ...)
{
	struct store_audit_record r;
	uint8_t enc[STORE_AUDIT_RECORD_MAX];
	size_t n;
	va_list ap;
	int rc;

	memset(&r, 0, sizeof(r));
	r.event = event;
	r.time_ms = audit_now_ms();
	r.result = result;
	r.flags = flags;
	r.actor_uid = uid;
	if (name != NULL && store_inst_name_check(name) == 0)
		snprintf(r.name, sizeof(r.name), "%s", name);
	if (uuid != NULL)
		memcpy(r.uuid, uuid, sizeof(r.uuid));
	if (c != NULL) {
		r.has_claims = 1;
		memcpy(r.measurement, c->measurement, sizeof(r.measurement));
		memcpy(r.host_data, c->host_data, sizeof(r.host_data));
		memcpy(r.launch_id, c->launch_id, sizeof(r.launch_id));
	}
	va_start(ap, fmt);
	vsnprintf(r.detail, sizeof(r.detail), fmt, ap);
	va_end(ap);
	log_debug("audit: %s %s result %d: %s", store_audit_event_name(event),
	    r.name[0] ? r.name : "-", result, r.detail);
	/*
	 * Until a root key has opened the store nothing is written to it (it may
	 * not even be ours: a wrong key changes nothing on disk). Events of that
	 * time go to the log only.
	 */
	if (V->kek == NULL) {
		log_info("audit (not stored, no root key yet): %s %s: %s: %s",
		    store_audit_event_name(event), r.name[0] ? r.name : "-",
		    result == 0 ? "ok" : vtpm_strerror(result), r.detail);
		return 0;
	}
	if ((rc = store_audit_encode(&r, enc, sizeof(enc), &n)) != 0) {
		log_warnx("audit record not encoded: %s", vtpm_strerror(rc));
		return rc;
	}
	if (b != NULL)
		return store_batch_put_audit(b, enc, n);

	if (Q.n == AUDIT_QUEUE_MAX) {
		/* cannot happen while batch_commit() runs every round; never grow unbounded */
		if (Q.dropped++ == 0)
			log_warnx("audit queue full: records are dropped until the next commit");
		return 0;
	}
	if ((Q.rec[Q.n] = malloc(n)) == NULL) {
		log_warnx("audit record dropped: out of memory");
		return 0;
	}
	memcpy(Q.rec[Q.n], enc, n);
	Q.len[Q.n] = n;
	Q.n++;
	return 0;
}

void
audit_attach_refused(const struct attest_claims *c, int errcode, const char *why)
{
	struct store_instance rec;
	int32_t result;

	switch (errcode) {
	case ERR_NOT_ENROLLED:	result = VTPM_E_NOTFOUND; break;
	case ERR_BUSY:		result = VTPM_E_BUSY; break;
	case ERR_FENCED:	result = VTPM_E_FENCED; break;
	case ERR_POLICY:	result = VTPM_E_POLICY; break;
	case ERR_EVIDENCE:	result = VTPM_E_EVIDENCE; break;
	case ERR_PROTOCOL:	result = VTPM_E_PROTO; break;
	case ERR_SHUTTING_DOWN:
	case ERR_UNAVAILABLE:	result = VTPM_E_AGAIN; break;
	default:		result = VTPM_E_INVAL; break;
	}
	/* name the instance this identity belongs to, if any */
	if (store_inst_find_identity(V->store, c->measurement, c->host_data, &rec) != 0)
		memset(&rec, 0, sizeof(rec));
	(void)audit_log(NULL, STORE_AUDIT_ATTACH, result, 0, STORE_AUDIT_NO_UID,
	    rec.name[0] ? rec.name : NULL, rec.name[0] ? rec.uuid : NULL, c,
	    "refused: %s", why);
}

struct audit_prune_walk {
	uint64_t	 cutoff_ms;	/* records older than this go (0: no age limit) */
	uint64_t	 n_count;	/* this many oldest records go for the count limit */
	uint64_t	 seen;
	uint64_t	 upto, first_seq, oldest_ms;
	long		 n_age;
};

static int
audit_prune_cb(uint64_t seq, const uint8_t *rec, size_t len, void *arg)
{
	struct audit_prune_walk *w = arg;
	struct store_audit_record r;
	int old;

	if (store_audit_decode(rec, len, &r) != 0)
		r.time_ms = 0;		/* undecodable: oldest of all */
	old = w->cutoff_ms != 0 && r.time_ms < w->cutoff_ms;
	if (!old && w->seen >= w->n_count)
		return 1;		/* the first record to keep: stop */
	if (w->seen++ == 0) {
		w->first_seq = seq;
		w->oldest_ms = r.time_ms;
	}
	if (old)
		w->n_age++;
	w->upto = seq;
	return 0;
}

/* Decides whether the next commit prunes, and up to which record. */
static void
audit_prune_plan(void)
{
	struct audit_prune_walk w;
	uint64_t first, last, count, slack, total;
	long max = V->cfg.audit_max_records;
	int rc;

	R.upto = 0;
	memset(&w, 0, sizeof(w));
	if ((rc = store_audit_bounds(V->store, &first, &last, &count)) != 0) {
		log_warnx("audit retention: %s", vtpm_strerror(rc));
		return;
	}
	if (count == 0)
		return;
	if (V->cfg.audit_retention_days > 0)
		w.cutoff_ms = audit_now_ms() - (uint64_t)V->cfg.audit_retention_days * 86400000ULL;
	if (max > 0) {
		/* hysteresis: prune once the log is 10% over, then down to max */
		slack = (uint64_t)max / 10 > 0 ? (uint64_t)max / 10 : 1;
		total = count + (uint64_t)Q.n;
		if (total > (uint64_t)max + slack)
			w.n_count = total + 1 - (uint64_t)max;	/* + 1: the prune's own record */
		if (w.n_count > count)
			w.n_count = count;
	}
	if (w.cutoff_ms == 0 && w.n_count == 0)
		return;
	if ((rc = store_audit_list(V->store, first, audit_prune_cb, &w)) < 0) {
		log_warnx("audit retention: %s", vtpm_strerror(rc));
		return;
	}
	if (w.seen == 0)
		return;
	R.upto = w.upto;
	R.n = w.seen;
	R.first_seq = w.first_seq;
	R.oldest_ms = w.oldest_ms;
	R.n_age = w.n_age;
}

int
audit_pending(void)
{
	time_t now;

	if (Q.n > 0 || R.upto != 0)
		return 1;
	if ((V->cfg.audit_retention_days == 0 && V->cfg.audit_max_records == 0) ||
	    V->kek == NULL || V->store == NULL)
		return 0;
	now = time(NULL);
	if (now < R.next_check)
		return 0;
	R.next_check = now + AUDIT_PRUNE_EVERY_SEC;
	audit_prune_plan();
	return R.upto != 0;
}

void
audit_flush(struct store_batch *b)
{
	char when[32], why[128];
	time_t t;
	struct tm tm;
	int i, n, rc, max_insts, max_audit;

	/* as many as the backend takes in one batch; the rest ride the next */
	store_batch_limits(V->store, &max_insts, &max_audit);
	n = max_audit > 0 && Q.n > max_audit ? max_audit : Q.n;
	for (i = 0; i < n; i++) {
		if (store_batch_put_audit(b, Q.rec[i], Q.len[i]) != 0)
			log_warnx("audit record dropped: out of memory");
		free(Q.rec[i]);
		Q.rec[i] = NULL;
	}
	if (n < Q.n)
		memmove(Q.rec, Q.rec + n, (size_t)(Q.n - n) * sizeof(Q.rec[0]));
	if (n < Q.n)
		memmove(Q.len, Q.len + n, (size_t)(Q.n - n) * sizeof(Q.len[0]));
	Q.n -= n;
	if (Q.dropped > 0)
		log_warnx("%lu audit records were dropped (queue full)", Q.dropped);
	Q.dropped = 0;
	if (R.upto == 0)
		return;
	/* the prune's record first: it is then the newest, which a prune keeps */
	t = (time_t)(R.oldest_ms / 1000);
	if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
	    &tm) == 0)
		snprintf(when, sizeof(when), "?");
	if (V->cfg.audit_retention_days > 0)
		snprintf(why, sizeof(why), "%ld older than %d days", R.n_age,
		    V->cfg.audit_retention_days);
	else
		why[0] = '\0';
	if ((uint64_t)R.n_age < R.n)
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "%s%llu beyond the "
		    "limit of %ld records", why[0] ? ", " : "",
		    (unsigned long long)(R.n - (uint64_t)R.n_age), V->cfg.audit_max_records);
	if ((rc = audit_log(b, STORE_AUDIT_PRUNE, 0, 0, STORE_AUDIT_NO_UID, NULL, NULL, NULL,
	    "retention: %llu oldest audit records deleted (sequence %llu..%llu, oldest "
	    "from %s): %s", (unsigned long long)R.n, (unsigned long long)R.first_seq,
	    (unsigned long long)R.upto, when, why)) == 0)
		rc = store_batch_prune_audit(b, R.upto);
	if (rc != 0)
		log_warnx("audit retention: prune not queued: %s", vtpm_strerror(rc));
	else
		log_info("audit retention: deleting %llu oldest records (up to sequence %llu)",
		    (unsigned long long)R.n, (unsigned long long)R.upto);
	R.upto = 0;
}

/* ---- vtpmctl audit ---------------------------------------------------- */

struct audit_walk {
	json_object	*arr;		/* NULL in the counting pass */
	uint64_t	 since_ms;
	long		 first;		/* matching records before this one are left out */
	long		 count;		/* matching records seen */
	long		 skipped;
};

static json_object *
audit_hex(const uint8_t *p, size_t n)
{
	char buf[2 * 48 + 1];

	attest_hex_encode(p, n, buf);
	return json_object_new_string(buf);
}

static int
audit_walk_cb(uint64_t seq, const uint8_t *rec, size_t len, void *arg)
{
	struct audit_walk *w = arg;
	struct store_audit_record r;
	json_object *o;

	if (store_audit_decode(rec, len, &r) != 0) {
		w->skipped++;
		return 0;
	}
	if (r.time_ms < w->since_ms)
		return 0;
	if (w->arr == NULL) {		/* the counting pass */
		w->count++;
		return 0;
	}
	if (w->count++ < w->first)
		return 0;
	o = json_object_new_object();
	json_object_object_add(o, "seq", json_object_new_int64((int64_t)seq));
	json_object_object_add(o, "time_ms", json_object_new_int64((int64_t)r.time_ms));
	json_object_object_add(o, "event", json_object_new_string(
	    store_audit_event_name(r.event)));
	json_object_object_add(o, "result", json_object_new_string(
	    r.result == 0 ? "ok" : vtpm_strerror(r.result)));
	json_object_object_add(o, "forced", json_object_new_boolean(
	    (r.flags & STORE_AUDIT_F_FORCED) != 0));
	if (r.actor_uid != STORE_AUDIT_NO_UID)
		json_object_object_add(o, "uid", json_object_new_int64(r.actor_uid));
	if (r.name[0] != '\0')
		json_object_object_add(o, "instance", json_object_new_string(r.name));
	if (!sodium_is_zero(r.uuid, sizeof(r.uuid)))
		json_object_object_add(o, "uuid", audit_hex(r.uuid, sizeof(r.uuid)));
	if (r.has_claims) {
		json_object_object_add(o, "measurement", audit_hex(r.measurement,
		    sizeof(r.measurement)));
		json_object_object_add(o, "host_data", audit_hex(r.host_data,
		    sizeof(r.host_data)));
		json_object_object_add(o, "launch_id", audit_hex(r.launch_id,
		    sizeof(r.launch_id)));
	}
	json_object_object_add(o, "detail", json_object_new_string(r.detail));
	json_object_array_add(w->arr, o);
	return 0;
}

json_object *
audit_admin(json_object *req)
{
	struct audit_walk w;
	json_object *reply, *v;
	int64_t since = 0;
	long limit = AUDIT_LIST_DEFAULT, total;
	int rc;

	memset(&w, 0, sizeof(w));
	if (json_object_object_get_ex(req, "since", &v)) {
		if (!json_object_is_type(v, json_type_int) || (since = json_object_get_int64(v)) < 0)
			goto bad;
	}
	if (json_object_object_get_ex(req, "limit", &v)) {
		if (!json_object_is_type(v, json_type_int))
			goto bad;
		limit = (long)json_object_get_int64(v);
		if (limit < 1 || limit > AUDIT_LIST_MAX)
			goto bad;
	}
	w.since_ms = (uint64_t)since * 1000;
	batch_commit();		/* queued records first */
	/* two passes: count, then keep the newest `limit` (no reshuffling) */
	if ((rc = store_audit_list(V->store, 1, audit_walk_cb, &w)) == 0) {
		total = w.count;
		w.first = total > limit ? total - limit : 0;
		w.count = 0;
		w.skipped = 0;
		w.arr = json_object_new_array();
		rc = store_audit_list(V->store, 1, audit_walk_cb, &w);
		w.count = total;
	}
	if (rc != 0) {
		char why[128];

		json_object_put(w.arr);
		reply = json_object_new_object();
		snprintf(why, sizeof(why), "audit log not readable: %s", vtpm_strerror(rc));
		json_object_object_add(reply, "ok", json_object_new_boolean(0));
		json_object_object_add(reply, "error", json_object_new_string(why));
		return reply;
	}
	if (w.skipped > 0)
		log_warnx("audit: %ld records do not decode; skipped", w.skipped);
	reply = json_object_new_object();
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	json_object_object_add(reply, "events", w.arr);
	json_object_object_add(reply, "truncated", json_object_new_boolean(w.first > 0));
	return reply;

bad:
	reply = json_object_new_object();
	json_object_object_add(reply, "ok", json_object_new_boolean(0));
	json_object_object_add(reply, "error", json_object_new_string(
	    "audit: \"since\" must be unix seconds >= 0 and \"limit\" 1..1000000"));
	return reply;
}
