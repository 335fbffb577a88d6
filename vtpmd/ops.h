/*
 * ops.h: the operator's side of the vtpmd parent (issue 7): backups and
 * their verification, restore (backup.c), export and import between vtpmds
 * (migrate.c), the audit log (audit.c) and metrics (metrics.c), and the
 * hooks the rest of the parent calls into them. Parent only: workers never
 * include this.
 *
 * Long operations (backup, verify-backup, restore, export, import) run in
 * slices between event-loop rounds, so guests keep being served: the event
 * loop calls ops_run() every round and polls without waiting while
 * ops_busy(). One long operation runs at a time; another is refused (busy).
 * Their admin connection carries progress lines and then the one final
 * reply (docs/OPERATIONS.md); the file travels as a descriptor passed with
 * the request (SCM_RIGHTS), so vtpmd never opens an operator's path.
 */
#ifndef VTPM_OPS_H
#define VTPM_OPS_H

#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "attest.h"
#include "store.h"

struct inst;

/* ---- backup.c: admin dispatch and the event loop ----------------------- */

enum ops_admin_rc {
	OPS_NOT_MINE	= 0,	/* not one of these ops: nothing done */
	OPS_REPLIED	= 1,	/* *reply is set: the caller sends it and closes conn */
	OPS_TAKEN	= 2,	/* the op owns conn, answers it later and closes it */
};

/*
 * Handles req if its "op" is backup, verify-backup, restore, export,
 * import, audit or metrics. conn is the admin connection (its peer's uid is
 * recorded in the audit log); *passfd is the descriptor that came with the
 * request or -1: an op that keeps it sets *passfd to -1, otherwise the
 * caller closes it. Returns an enum ops_admin_rc.
 */
int  ops_admin(json_object *req, int conn, int *passfd, json_object **reply);

/* Opens the migration key provider (V->cfg.migration_key_provider); fatal on a bad one. */
void ops_init(void);
/* 1 while a long operation (backup, verify-backup, restore, export, import) is under way. */
int  ops_running(void);
/* 1 while a long operation has work to do (the event loop must not sleep). */
int  ops_busy(void);
/* Runs one slice (a few milliseconds) of the long operation, if any. */
void ops_run(void);
/* vtpmd is stopping: abandons a long operation (nothing half-written is committed). */
void ops_shutdown(void);
/* 1 if attaching instance name must wait (an export of it is under way). */
int  ops_attach_blocked(const char *name);

/* ---- audit.c ---------------------------------------------------------- */

/*
 * Records an audit event (store.h, table "audit"): event, result (0 or a
 * VTPM_E_* code), flags (STORE_AUDIT_F_*), the operator's uid or
 * STORE_AUDIT_NO_UID, the instance (name and uuid; either may be NULL), the
 * guest's verified claims (may be NULL) and a printf-style detail (no
 * secrets). With b, the record joins that batch, so it commits in the same
 * transaction as the change it describes (returns 0 or VTPM_E_NOMEM /
 * VTPM_E_INVAL). With b NULL it is queued and commits with the next group
 * commit (batch_commit()), at most one event-loop round later; returns 0.
 * While no root key has opened the store (V->kek NULL) nothing is stored:
 * the event goes to the log only.
 */
int  audit_log(struct store_batch *b, uint8_t event, int32_t result, uint32_t flags,
    uint32_t uid, const char *name, const uint8_t *uuid, const struct attest_claims *c,
    const char *fmt, ...) __attribute__((format(printf, 9, 10)));

/* An attach with verified claims c was refused with ERR_* code errcode (queued). */
void audit_attach_refused(const struct attest_claims *c, int errcode, const char *why);
/*
 * Queued records waiting for a commit, or a retention prune due
 * (--audit-retention, --audit-max-records; checked at most once a second):
 * batch_commit() commits even without blobs then.
 */
int  audit_pending(void);
/*
 * Moves the queued records into b (batch_commit(), just before it commits),
 * then a due prune: its own audit record ("audit-prune") and the deletion
 * of the oldest records, in the same transaction.
 */
void audit_flush(struct store_batch *b);
/* Admin op "audit": {"since": unix seconds (optional), "limit": n (optional)}. */
json_object *audit_admin(json_object *req);

/* ---- metrics.c -------------------------------------------------------- */

/* A group commit of blobs instance writes took t0..t1; ok = it committed. */
void metrics_commit(const struct timespec *t0, const struct timespec *t1, int blobs, int ok);
/* A worker reported n TPM commands (IPC_STATS). */
void metrics_commands(uint32_t n);
/* An attach succeeded (how: ATTACHED_*). */
void metrics_attach_ok(int how);
/* An attach failed with protocol error code errcode (ERR_*). */
void metrics_attach_failed(int errcode);
/* A session ended (IPC_SESSION_END reason). */
void metrics_session_end(uint8_t reason);
/* The metrics in the Prometheus text format, as a new string (free()); NULL if out of memory. */
char *metrics_text(void);
/* Admin op "metrics": {"ok":true,"text":"..."}. */
json_object *metrics_admin(void);
/* The optional loopback HTTP endpoint (V->cfg.metrics_listen): opened by ops_init(). */
void metrics_listen_init(void);
/* The event loop's entry for EV_METRICS (the listener or one of its connections). */
struct ev;
void metrics_http_event(struct ev *ev);

#endif
