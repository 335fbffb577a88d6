/*
 * parent.h: state shared by the files of the vtpmd parent process
 * (vtpmd.c: configuration and event loop; session.c: guest handshakes;
 * instance.c: workers and durable state; admin.c: the admin socket).
 * Nothing here is visible to workers.
 */
#ifndef VTPM_PARENT_H
#define VTPM_PARENT_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "attest.h"
#include "endpoint.h"
#include "seal.h"
#include "store.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST((head));				\
	    (var) && ((tvar) = TAILQ_NEXT((var), field), 1);		\
	    (var) = (tvar))
#endif

#define MAX_LISTEN	8
#define MAX_PINNED	8

struct config {
	int		 dev;
	const char	*state_dir;
	struct endpoint	 listen[MAX_LISTEN];
	int		 nlisten;
	struct endpoint	 admin;
	int		 have_admin;
	const char	*attestation;		/* "sim" */
	int		 allow_sim;
	int		 trust_test_ark;	/* accept guests' evidence from the TEST ARK */
	const char	*policy_file;		/* --policy (docs/POLICY.md) */
	const char	*attest_cache_dir;	/* --attestation-cache-dir */
	const char	*key_provider;		/* "file:PATH" or "kbs:URL" */
	int		 allow_key_file;
	const char	*key_resource;		/* kbs: REPO/TYPE/TAG */
	const char	*kbs_ca_file;		/* kbs: PEM bundle; NULL = system */
	int		 kbs_allow_http;
	int		 kbs_tee_key;		/* KEYPROV_TEE_KEY_* */
	uint8_t		 sim_measurement[ATTEST_MEASUREMENT_LEN];
	uint8_t		 sim_host_data[ATTEST_HOST_DATA_LEN];
	uint8_t		 sim_launch_id[ATTEST_LAUNCH_ID_LEN];
	uint32_t	 pcr_banks;		/* bit 0 sha1, 1 sha256, 2 sha384, 3 sha512 */
	int		 idle_timeout;		/* seconds a detached worker stays hot */
	int		 auto_enrol;
	size_t		 map_size;
	int		 nosync;		/* tests only */
	int		 handshake_timeout_ms;
	int		 max_handshakes;
	int		 verbose;
	const char	*worker_user;		/* workers run as this user when vtpmd is root */
	int		 worker_exec;		/* --worker-spawn exec: no zygote */
	int		 worker_spares;		/* --worker-spares: pre-forked workers (zygote.h) */
	uid_t		 worker_uid;
	gid_t		 worker_gid;
	const char	*migration_key_provider;	/* export/import (migrate.c); NULL = off */
	const char	*metrics_listen;	/* tcp:127.0.0.1:PORT (metrics.c); NULL = off */
	const char	*kbs_tee;		/* --kbs-tee auto|snp|tdx|sample; NULL = auto */
	const char	*migration_key_resource;	/* kbs: REPO/TYPE/TAG (migrate.c) */
	int		 audit_retention_days;	/* audit.c: 0 = keep forever */
	long		 audit_max_records;	/* audit.c: 0 = no limit */
};

/* Event-loop registration: every fd in epoll points at one of these. */
enum ev_kind { EV_LISTEN, EV_ADMIN, EV_SESSION, EV_WORKER, EV_SIGNAL, EV_KEYS, EV_METRICS, EV_ZYGOTE };
struct ev {
	enum ev_kind	 kind;
	int		 fd;
	void		*obj;
};

#include "ipc.h"

/* The parent's view of a worker; the values index the table in ipc.c. */
enum inst_state {
	I_STARTING	= IPC_WS_STARTING,
	I_IDLE		= IPC_WS_IDLE,
	I_ACTIVE	= IPC_WS_ACTIVE,
	I_STOPPING	= IPC_WS_STOPPING,
	I_DEAD		= IPC_WS_DEAD,
};

struct session;

/* An instance with a worker process. */
struct inst {
	TAILQ_ENTRY(inst)	 entry;
	struct store_instance	 rec;		/* as committed */
	uint8_t			*dek;		/* sodium_malloc, 32 bytes */
	pid_t			 pid;
	struct ev		 ev;		/* the IPC socket */
	enum inst_state		 state;
	struct session		*waiting;	/* attach waiting for READY */
	uint8_t			 launch_id[ATTEST_LAUNCH_ID_LEN];
	struct attest_claims	 claims;	/* of the live or last session */
	time_t			 idle_since;
	time_t			 stop_sent;
	int			 store_pending;	/* an IPC_STORE is in the batch */
	struct store_instance	 pending_rec;	/* rec once that batch commits */
	uint8_t			 pending_how;	/* ATTACHED how for the waiting session */
	uint32_t		 pending_flags;	/* IPC_SESS_F_* for it */
	uint32_t		 spawn_id;	/* the zygote's answer names it */
	/* durable responses (IPC_STORE_RSP, ipc.h) */
	struct ipc_shared	*shared;	/* the worker's shared page, mapped here */
	int			 guest_fd;	/* dup of the session's socket while ACTIVE, or -1 */
	int			 rsp_queued;	/* an IPC_STORE_RSP waits for the commit */
	uint64_t		 rsp_seq;	/* IPC_STORE_RSP received from this worker */
	uint8_t			*held;		/* frames waiting for the commit (IPC_MAX_HELD) */
	size_t			 held_len;
};
TAILQ_HEAD(inst_list, inst);

struct vtpmd {
	struct config		 cfg;
	int			 epfd;
	struct store		*store;
	struct seal_kek		*kek;		/* NULL until keys_available() (keys.c) */
	struct attest_provider	*attester;
	struct attest_verify_cfg verify;
	struct attest_policy	*policy;	/* --policy, or NULL */
	struct inst_list	 insts;
	int			 ninsts;
	int			 nhandshakes;
	struct store_batch	*batch;		/* group commit: pending worker writes */
	struct store_batch	*sync_batch;	/* one-off writes (enrol, delete, consume) */
	struct inst		*batch_insts[1024];
	int			 nbatch_insts;
	int			 shutting_down;
	char			 self_exe[4096];
};

extern struct vtpmd *V;

/* vtpmd.c */
int  ev_add(struct ev *ev, uint32_t events);
void ev_del(struct ev *ev);

/* session.c */
void session_accept(int lfd);
void session_event(struct session *s, uint32_t events);
void session_attach_ready(struct session *s, struct inst *in, int ok);
struct chan *session_chan(struct session *s);
unsigned session_id(const struct session *s);
uint32_t session_attach_flags(const struct session *s);
/* The guest attached with version 2: it keeps a freshness record (MSG_INSTANCE). */
int session_wants_freshness(const struct session *s);
void session_done(struct session *s);		/* handed off: free, keep the fd */
void session_failed(struct session *s, int code, const char *why);
void sessions_expire(const struct timespec *now);
void sessions_close_all(void);

/* instance.c */
int  inst_attach(struct session *s, const struct attest_claims *c,
    uint32_t attach_flags, char *why, size_t whylen, int *errcode);
void inst_handoff(struct inst *in, struct session *s);
void inst_event(struct inst *in, uint32_t events);
void inst_reaped(pid_t pid, int status);
void inst_spawned(uint32_t spawn_id, pid_t pid);	/* the zygote forked it */
void insts_bury(void);			/* frees instances retired this round */
void insts_zygote_lost(void);				/* every worker is gone */
void insts_tick(time_t now);
void insts_stop_all(void);
/* A session waiting for a worker is going away: no instance may keep pointing at it. */
void inst_forget_session(struct session *s);
int  insts_all_gone(void);
void batch_commit(void);
int  inst_delete(const char *name, char *why, size_t whylen);
int  inst_enroll(const char *name, const uint8_t meas[48], const uint8_t host[32],
    struct store_instance *out, char *why, size_t whylen);
struct inst *inst_find(const char *name);
const char *inst_state_name(enum inst_state st);
/*
 * Ends the worker of instance name, if one runs: hard (killed, its TPM state
 * in memory dropped) or, with graceful, asked to save its volatile state and
 * stop. Returns 0 once no worker runs, 1 while a graceful stop is under way
 * (inst_find() becomes NULL when it is done).
 */
int  inst_end_worker(const char *name, int graceful, const char *why);

/* admin.c */
void admin_accept(int lfd);
/* Writes a deferred reply (takes it) to an admin client and closes fd. */
struct json_object;
void admin_reply(int fd, struct json_object *reply);

/* keys.c: the root key (V->kek), its provider, and rotation */
void keys_init(void);		/* after the store is open; fatal on a bad config */
int  keys_check_config(void);	/* -n: the provider's settings (no fetch); 0 or logged error */
int  keys_available(void);	/* V->kek set and accepted by the store */
const char *keys_status(void);	/* "available", "waiting for broker: ...", "refused: ..." */
void keys_event(void);		/* EV_KEYS: a broker fetch finished */
void keys_tick(time_t now);	/* retries with backoff */
/* Starts a rotation; 0 = the reply to fd comes later (keys.c owns fd), else why. */
int  keys_rotate(int fd, char *why, size_t whylen);
void keys_shutdown(void);
/*
 * Fetches the kbs: resource (REPO/TYPE/TAG) on the fetch thread. 0 and *out
 * (owned by the caller, seal_kek_free()) when a fetch of this resource has
 * finished; VTPM_E_AGAIN while it runs or the thread is busy (ask again);
 * else the provider's error with why. Only when the root key is READY.
 */
int  keys_fetch_resource(const char *resource, struct seal_kek **out, char *why,
    size_t whylen);

/* keys_evidence.c: what vtpmd shows the key broker */
/* The TEE name for the broker (--kbs-tee, the backend); NULL with why. */
const char *keys_evidence_tee(char *why, size_t whylen);
/* A keyprov_evidence_fn: sample, or the backend's SNP/TDX evidence as Trustee parses it. */
int  keys_evidence(void *arg, const char *tee, const uint8_t rd[64], char *out,
    size_t cap, size_t *len);
void keys_evidence_close(void);

#endif
