/*
 * instance.c: instances with workers, and their durable state.
 * Decides create / resume / power-cycle from verified claims only, spawns a
 * worker per attached instance (fork+exec of vtpmd --worker), seals every
 * blob a worker hands over and commits them in group-commit batches before
 * acknowledging. Trusts workers for nothing: every IPC message is checked
 * against the permission table in ipc.h and a violation kills the worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/futex.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "channel.h"
#include "endorse.h"
#include "fleet.h"
#include "cursor.h"
#include "ipc.h"
#include "log.h"
#include "ops.h"
#include "parent.h"
#include "proto.h"
#include "worker.h"
#include "zygote.h"

#define STOP_GRACE_SEC	10

static uint8_t *ipcbuf;		/* IPC_MAX_MSG */
static uint8_t *sealbuf;	/* sealed blob scratch */
static uint8_t *initbuf;	/* IPC_INIT body: unsealed state (locked, wiped after use) */
#define SEALBUF_LEN	(IPC_MAX_BLOB + SEAL_BLOB_OVERHEAD)
#define INIT_BODY_MAX	(IPC_MAX_MSG - IPC_HDR_LEN)

static void
bufs_init(void)
{
	if (ipcbuf != NULL)
		return;
	ipcbuf = malloc(IPC_MAX_MSG);
	sealbuf = malloc(SEALBUF_LEN);
	initbuf = sodium_malloc(INIT_BODY_MAX);
	if (ipcbuf == NULL || sealbuf == NULL || initbuf == NULL)
		fatalx("out of memory");
}

const char *
inst_state_name(enum inst_state st)
{
	switch (st) {
	case I_STARTING:	return "starting";
	case I_IDLE:		return "idle";
	case I_ACTIVE:		return "attached";
	case I_STOPPING:	return "stopping";
	case I_DEAD:		return "dead";
	}
	return "?";
}

struct inst *
inst_find(const char *name)
{
	struct inst *in;

	TAILQ_FOREACH(in, &V->insts, entry)
		if (in->state != I_DEAD && strcmp(in->rec.name, name) == 0)
			return in;
	return NULL;
}

/*
 * The session's socket is the worker's alone now (it ended, or the worker
 * is gone): closes the parent's dup and wipes frames it still held, which
 * must never leave (ipc.h: their nonces may be reused).
 */
static void
inst_session_drop(struct inst *in)
{
	if (in->held != NULL)
		sodium_memzero(in->held, IPC_MAX_HELD);
	in->held_len = 0;
	if (in->guest_fd >= 0) {
		close(in->guest_fd);
		in->guest_fd = -1;
	}
}

/*
 * Retires an instance: off the list at once, freed by insts_bury() at the
 * end of the event-loop round, since an event for it may still be pending
 * in the same epoll batch.
 */
static struct inst_list graveyard = TAILQ_HEAD_INITIALIZER(graveyard);

static void
inst_free(struct inst *in)
{
	struct inst *live = inst_find(in->rec.name);

	/* etcd: others may take it now, unless a new worker of ours serves it */
	if (live == NULL || live == in)
		store_inst_release(V->store, in->rec.name);
	TAILQ_REMOVE(&V->insts, in, entry);
	V->ninsts--;
	if (in->dek != NULL) {
		sodium_memzero(in->dek, SEAL_KEY_LEN);
		sodium_free(in->dek);
		in->dek = NULL;
	}
	inst_session_drop(in);
	free(in->held);
	in->held = NULL;
	if (in->shared != NULL) {
		munmap(in->shared, IPC_SHARED_LEN);
		in->shared = NULL;
	}
	in->state = I_DEAD;
	in->ev.fd = -1;
	TAILQ_INSERT_TAIL(&graveyard, in, entry);
}

void
insts_bury(void)
{
	struct inst *in;

	while ((in = TAILQ_FIRST(&graveyard)) != NULL) {
		TAILQ_REMOVE(&graveyard, in, entry);
		sodium_memzero(in, sizeof(*in));
		free(in);
	}
}

/* Stops listening to a worker and makes sure it is gone; freed once reaped. */
static void
inst_kill(struct inst *in, const char *why)
{
	if (in->state == I_DEAD)
		return;
	log_warnx("instance %s: worker %d killed: %s", in->rec.name, (int)in->pid, why);
	if (in->state == I_ACTIVE)	/* its guest's session ends here */
		(void)audit_log(NULL, STORE_AUDIT_DETACH, VTPM_E_CLOSED, 0, STORE_AUDIT_NO_UID,
		    in->rec.name, in->rec.uuid, &in->claims, "session ended: worker killed: %s",
		    why);
	if (in->pid > 0)
		kill(in->pid, SIGKILL);
	if (in->ev.fd >= 0) {
		ev_del(&in->ev);
		close(in->ev.fd);
		in->ev.fd = -1;
	}
	inst_session_drop(in);
	in->state = I_DEAD;
	if (in->waiting != NULL) {
		struct session *s = in->waiting;

		in->waiting = NULL;
		session_attach_ready(s, in, 0);
	}
}

static int
inst_send(struct inst *in, uint8_t type, const void *a, size_t alen,
    const void *b, size_t blen, int fd)
{
	int rc = ipc_send2(in->ev.fd, type, a, alen, b, blen, fd);

	if (rc != 0)
		inst_kill(in, "IPC send failed");
	return rc;
}

/* ---------- spawning ---------- */

/*
 * Starts the instance's worker process (it then waits for IPC_INIT): a
 * spare from the zygote's pool if one is ready, else a fresh fork (or
 * fork+exec with --worker-spawn exec).
 */
static int
inst_spawn_process(struct inst *in)
{
	int sv[2], fd;

	if (!V->cfg.worker_exec && zygote_take(&fd, &in->spawn_id, &in->pid) == 0) {
		if (in->pid > 0)	/* else inst_spawned() names it */
			log_info("instance %s: worker %d started (a spare)", in->rec.name,
			    (int)in->pid);
		goto started;
	}
	if (zygote_socketpair(sv) != 0)
		return VTPM_E_IO;
	if (V->cfg.worker_exec) {
		/* --worker-spawn exec: fork+exec of vtpmd --worker per instance. */
		char ids[32];
		char *argv[] = { "vtpmd", "--worker", ids, NULL, NULL };
		pid_t pid;

		snprintf(ids, sizeof(ids), "%u:%u", (unsigned)V->cfg.worker_uid,
		    (unsigned)V->cfg.worker_gid);
		if (V->cfg.verbose)
			argv[3] = "-v";
		if ((pid = fork()) < 0) {
			log_warn("fork");
			close(sv[0]);
			close(sv[1]);
			return VTPM_E_IO;
		}
		if (pid == 0) {
			/*
			 * Only fds 0-2 and the IPC socket survive exec: not every
			 * library opens close-on-exec (LMDB's data file is not).
			 */
			if (dup2(sv[1], WORKER_IPC_FD) < 0 ||
			    close_range(WORKER_IPC_FD + 1, ~0U, 0) != 0)
				_exit(127);
			execv(V->self_exe, argv);
			_exit(127);
		}
		in->pid = pid;
	} else {
		/* The zygote forks the worker (zygote.h); its pid arrives later. */
		if (zygote_spawn(sv[1], &in->spawn_id) != 0) {
			close(sv[0]);
			close(sv[1]);
			return VTPM_E_IO;
		}
		in->pid = -1;		/* not known until ZYG_SPAWNED */
	}
	close(sv[1]);
	fd = sv[0];
started:
	in->ev.kind = EV_WORKER;
	in->ev.fd = fd;
	in->ev.obj = in;
	in->state = I_STARTING;
	if (ev_add(&in->ev, EPOLLIN) != 0) {
		inst_kill(in, "epoll");
		return VTPM_E_IO;
	}
	return 0;
}

/* The generation the instance's next store gets. */
static uint64_t
inst_next_gen(const struct inst *in)
{
	return (in->rec.perm_gen > in->rec.vol_gen ? in->rec.perm_gen : in->rec.vol_gen) + 1;
}

/*
 * The worker's shared page (ipc.h): a memfd mapped writable here, sealed
 * so that no writable mapping can be made of it any more, nor its size
 * changed (a worker shrinking it would fault the parent). Returns the fd
 * to pass, or -1.
 */
static int
inst_shared_new(struct inst *in)
{
	void *p;
	int fd;

	if ((fd = memfd_create("vtpmd-worker", MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0) {
		log_warn("memfd_create");
		return -1;
	}
	if (ftruncate(fd, IPC_SHARED_LEN) != 0 ||
	    (p = mmap(NULL, IPC_SHARED_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
	    MAP_FAILED) {
		log_warn("shared page");
		close(fd);
		return -1;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
	    F_SEAL_SEAL) != 0) {
		log_warn("sealing the shared page (F_SEAL_FUTURE_WRITE needs Linux 5.1)");
		munmap(p, IPC_SHARED_LEN);
		close(fd);
		return -1;
	}
	in->shared = p;
	in->shared->decided = 0;
	in->shared->done_seq = 0;
	in->shared->next_gen = inst_next_gen(in);
	in->rsp_seq = 0;
	in->rsp_queued = 0;
	return fd;
}

/* Tells the worker the instance's next generation (after a commit). */
static void
inst_publish_gen(struct inst *in)
{
	if (in->shared != NULL)
		__atomic_store_n(&in->shared->next_gen, inst_next_gen(in), __ATOMIC_RELEASE);
}

/*
 * IPC_INIT: u32 flags | u32 pcr_banks | u8 nlen | name | u32 plen | permall |
 * u32 vlen | volatile. inst_start() unseals the blobs straight into
 * initbuf (no other copy of the plaintext state, one send); init_head()
 * writes the fields before plen and returns their length.
 */
static size_t
init_head(const struct inst *in, int manufacture)
{
	struct wbuf w;
	size_t hlen, nlen = strlen(in->rec.name);

	wbuf_init(&w, initbuf, 4 + 4 + 1 + 64);
	wbuf_put_u32(&w, manufacture ? IPC_INIT_F_MANUFACTURE : 0);
	wbuf_put_u32(&w, in->rec.pcr_banks);
	wbuf_put_u8(&w, (uint8_t)nlen);
	wbuf_put_bytes(&w, in->rec.name, nlen);
	if (wbuf_end(&w, &hlen) != 0)
		fatalx("IPC_INIT header overflow");
	return hlen;
}

/* Hands a started worker its state (IPC_INIT, built in initbuf) and its shared page. */
static int
inst_spawn_init(struct inst *in, size_t total)
{
	int rc, shfd;

	if ((shfd = inst_shared_new(in)) < 0)
		return VTPM_E_IO;
	rc = inst_send(in, IPC_INIT, initbuf, total, NULL, 0, shfd);
	close(shfd);
	if (rc == 0)
		log_info("instance %s: worker requested", in->rec.name);
	return rc;
}

/* ---------- attach ---------- */

static int
name_taken(const char *name)
{
	struct store_instance tmp;

	return store_inst_get(V->store, name, &tmp) == 0;
}

int
inst_enroll(const char *name, const uint8_t meas[48], const uint8_t host[32],
    struct store_instance *out, char *why, size_t whylen)
{
	struct store_instance rec;
	uint8_t *dek;
	int rc;

	if (!keys_available()) {	/* wrapping needs V->kek (keys.c) */
		snprintf(why, whylen, "root key not available: %s", keys_status());
		return VTPM_E_AGAIN;
	}
	batch_commit();
	if (name_taken(name)) {
		snprintf(why, whylen, "instance %s exists already", name);
		return VTPM_E_EXISTS;
	}
	if (store_inst_find_identity(V->store, meas, host, &rec) == 0) {
		snprintf(why, whylen, "identity is enrolled already as %s", rec.name);
		return VTPM_E_EXISTS;
	}
	memset(&rec, 0, sizeof(rec));
	snprintf(rec.name, sizeof(rec.name), "%s", name);
	randombytes_buf(rec.uuid, sizeof(rec.uuid));
	memcpy(rec.measurement, meas, sizeof(rec.measurement));
	memcpy(rec.host_data, host, sizeof(rec.host_data));
	rec.created = (uint64_t)time(NULL);
	rec.pcr_banks = V->cfg.pcr_banks;
	if ((dek = sodium_malloc(SEAL_KEY_LEN)) == NULL)
		return VTPM_E_NOMEM;
	seal_dek_generate(dek);
	rc = seal_dek_wrap(V->kek, rec.uuid, dek, rec.wrapped_dek);
	sodium_memzero(dek, SEAL_KEY_LEN);
	sodium_free(dek);
	if (rc != 0) {
		snprintf(why, whylen, "could not wrap a data key: %s", vtpm_strerror(rc));
		return rc;
	}
	store_batch_reset(V->sync_batch);
	if ((rc = store_batch_put_inst(V->sync_batch, &rec)) != 0 ||
	    (rc = audit_log(V->sync_batch, STORE_AUDIT_ENROL, 0, 0, STORE_AUDIT_NO_UID,
	    rec.name, rec.uuid, NULL, "enrolled: measurement %02x%02x%02x%02x..., host data "
	    "%02x%02x%02x%02x...", meas[0], meas[1], meas[2], meas[3], host[0], host[1],
	    host[2], host[3])) != 0 ||
	    (rc = store_batch_commit(V->store, V->sync_batch)) != 0) {
		store_batch_reset(V->sync_batch);
		snprintf(why, whylen, "could not store the new instance: %s",
		    vtpm_strerror(rc));
		return rc;
	}
	store_batch_reset(V->sync_batch);
	log_info("instance %s enrolled", rec.name);
	if (out != NULL)
		*out = rec;
	return 0;
}

static int
auto_enrol(const struct attest_claims *c, struct store_instance *rec, char *why,
    size_t whylen)
{
	char name[STORE_NAME_MAX + 1], hex[2 * STORE_IDENT_LEN + 1];
	uint8_t ident[STORE_IDENT_LEN];

	/*
	 * "guest-" and the first 6 bytes of the host data, readable for the
	 * usual case of distinct host data; if that is taken, the identity
	 * hash, which is unique per enrolled identity.
	 */
	attest_hex_encode(c->host_data, 6, hex);
	snprintf(name, sizeof(name), "guest-%.12s", hex);
	if (name_taken(name)) {
		store_ident_key(c->measurement, c->host_data, ident);
		attest_hex_encode(ident, sizeof(ident), hex);
		snprintf(name, sizeof(name), "guest-id-%.32s", hex);
	}
	return inst_enroll(name, c->measurement, c->host_data, rec, why, whylen);
}

/* Loads and opens a sealed blob of rec into out[0..cap). */
static int
load_blob(const struct store_instance *rec, const uint8_t *dek, uint8_t type,
    uint64_t gen, uint8_t *out, size_t cap, size_t *plen, char *why, size_t whylen)
{
	size_t slen;
	int rc;

	rc = store_blob_get(V->store, rec->uuid, type, sealbuf, SEALBUF_LEN, &slen);
	if (rc != 0) {
		snprintf(why, whylen, "%s state of %s missing from the store: %s",
		    type == SEAL_BLOB_PERMANENT ? "permanent" : "volatile", rec->name,
		    vtpm_strerror(rc));
		return rc;
	}
	rc = unseal_blob(dek, rec->uuid, type, gen, sealbuf, slen, out, cap, plen);
	if (rc == VTPM_E_TOOBIG) {
		snprintf(why, whylen, "state of %s too large for a worker", rec->name);
		return rc;
	}
	if (rc != 0) {
		snprintf(why, whylen, "%s state of %s failed to open: %s "
		    "(blob corrupted, from another instance, or stale)",
		    type == SEAL_BLOB_PERMANENT ? "permanent" : "volatile", rec->name,
		    vtpm_strerror(rc));
		return rc;
	}
	return 0;
}

/*
 * Starts the instance's worker from its durable state. The volatile blob is
 * single-use: it is deleted durably before the worker serves anything, so a
 * crash can never resume the same launch twice from it.
 */
static int
inst_start(struct inst *in, const struct attest_claims *c, char *why, size_t whylen)
{
	struct store_instance rec = in->rec;
	size_t hlen, plen = 0, vlen = 0, volat;
	int rc, resume = 0;

	/*
	 * Open everything before changing anything: a blob that does not
	 * open refuses the attach and leaves the store (and the volatile
	 * state a retry of the same launch may still need) as it was.
	 */
	hlen = init_head(in, rec.perm_gen == 0);
	if (rec.perm_gen > 0 && (rc = load_blob(&rec, in->dek, SEAL_BLOB_PERMANENT,
	    rec.perm_gen, initbuf + hlen + 4, INIT_BODY_MAX - hlen - 8, &plen, why,
	    whylen)) != 0)
		goto out;
	be32_enc(initbuf + hlen, (uint32_t)plen);
	volat = hlen + 4 + plen;
	if (rec.vol_gen > 0 && sodium_memcmp(rec.vol_launch_id, c->launch_id,
	    sizeof(rec.vol_launch_id)) == 0) {
		if ((rc = load_blob(&rec, in->dek, SEAL_BLOB_VOLATILE, rec.vol_gen,
		    initbuf + volat + 4, INIT_BODY_MAX - volat - 4, &vlen, why,
		    whylen)) != 0)
			goto out;
		resume = 1;
	}
	be32_enc(initbuf + volat, (uint32_t)vlen);
	/*
	 * The worker gets its state first, so that its libtpms start-up
	 * (often on a spare worker, forked and sandboxed already) overlaps
	 * the commit below. The volatile state is still single-use: the
	 * worker only loads it; it serves nothing before IPC_SESSION, which
	 * follows its IPC_READY, which this (single-threaded) parent reads
	 * only after the commit returned. If the commit fails the worker is
	 * killed unused, and a crash meanwhile takes the worker with it.
	 */
	if ((rc = inst_spawn_process(in)) != 0) {
		snprintf(why, whylen, "could not start a worker: %s", vtpm_strerror(rc));
		goto out;
	}
	in->pending_how = resume ? ATTACHED_RESUMED :
	    rec.perm_gen == 0 ? ATTACHED_NEW : ATTACHED_POWERED_ON;
	if ((rc = inst_spawn_init(in, volat + 4 + vlen)) != 0) {
		snprintf(why, whylen, "could not start a worker: %s", vtpm_strerror(rc));
		goto out;
	}
	if (rec.vol_gen > 0) {
		rec.vol_gen = 0;
		memset(rec.vol_launch_id, 0, sizeof(rec.vol_launch_id));
		store_batch_reset(V->sync_batch);
		if ((rc = store_batch_del_blob(V->sync_batch, rec.uuid, SEAL_BLOB_VOLATILE)) != 0 ||
		    (rc = store_batch_put_inst(V->sync_batch, &rec)) != 0 ||
		    (rc = store_batch_commit(V->store, V->sync_batch)) != 0) {
			store_batch_reset(V->sync_batch);
			snprintf(why, whylen, "could not consume volatile state: %s",
			    vtpm_strerror(rc));
			goto out;
		}
		store_batch_reset(V->sync_batch);
		in->rec = rec;
		/*
		 * The shared page went out with IPC_INIT, before this commit
		 * lowered the generation base; the worker reads it only after
		 * IPC_SESSION, which cannot come before the next event round.
		 */
		inst_publish_gen(in);
	}
out:
	sodium_memzero(initbuf, hlen + 4 + plen + 4 + vlen);
	return rc;
}

/*
 * With a policy the instance comes from it alone (docs/POLICY.md): an
 * [instance] rule names an enrolled instance, an [enrol] rule one that is
 * created on first attach. The refusal names the claim.
 */
static int
inst_by_policy(const struct attest_claims *c, struct store_instance *rec, char *why,
    size_t whylen, int *errcode)
{
	char name[STORE_NAME_MAX + 1], reason[ATTEST_WHY_LEN];
	int rc, enrol;

	rc = attest_policy_match(V->policy, c, name, sizeof(name), &enrol, reason,
	    sizeof(reason));
	if (rc != 0) {
		snprintf(why, whylen, "policy refuses the guest: %s", reason);
		*errcode = ERR_POLICY;
		return rc;
	}
	rc = store_inst_get(V->store, name, rec);
	if (rc == VTPM_E_NOTFOUND && enrol) {
		log_info("policy: enrolling instance %s", name);
		if ((rc = inst_enroll(name, c->measurement, c->host_data, rec, why, whylen)) != 0)
			*errcode = rc == VTPM_E_EXISTS ? ERR_POLICY : ERR_UNAVAILABLE;
		return rc;
	}
	if (rc == VTPM_E_NOTFOUND) {
		snprintf(why, whylen, "instance %s (from the policy) is not enrolled", name);
		*errcode = ERR_NOT_ENROLLED;
	} else if (rc != 0) {
		snprintf(why, whylen, "store lookup of %s failed: %s", name, vtpm_strerror(rc));
		*errcode = ERR_UNAVAILABLE;
	}
	return rc;
}

int
inst_attach(struct session *s, const struct attest_claims *c, uint32_t flags,
    char *why, size_t whylen, int *errcode)
{
	struct store_instance rec;
	struct inst *in;
	int rc;

	bufs_init();
	if (!keys_available()) {	/* unwrapping needs V->kek (keys.c) */
		snprintf(why, whylen, "root key not available: %s", keys_status());
		*errcode = ERR_UNAVAILABLE;
		return VTPM_E_AGAIN;
	}
	batch_commit();		/* reads below must see every acknowledged write */
	if (V->policy != NULL && (rc = inst_by_policy(c, &rec, why, whylen, errcode)) != 0)
		return rc;
	rc = V->policy != NULL ? 0 :
	    store_inst_find_identity(V->store, c->measurement, c->host_data, &rec);
	if (rc == VTPM_E_NOTFOUND) {
		if (!V->cfg.auto_enrol) {
			snprintf(why, whylen, "identity not enrolled");
			*errcode = ERR_NOT_ENROLLED;
			return rc;
		}
		if ((rc = auto_enrol(c, &rec, why, whylen)) != 0) {
			*errcode = ERR_UNAVAILABLE;
			return rc;
		}
	} else if (rc != 0) {
		snprintf(why, whylen, "store lookup failed: %s", vtpm_strerror(rc));
		*errcode = ERR_UNAVAILABLE;
		return rc;
	}
	if (rec.flags & STORE_INST_FENCED) {
		snprintf(why, whylen, "instance %s is fenced (exported)", rec.name);
		*errcode = ERR_FENCED;
		return VTPM_E_FENCED;
	}
	if (ops_attach_blocked(rec.name)) {
		snprintf(why, whylen, "instance %s is being exported", rec.name);
		*errcode = ERR_BUSY;
		return VTPM_E_BUSY;
	}
	if ((in = inst_find(rec.name)) != NULL) {
		if (in->state != I_IDLE) {
			snprintf(why, whylen, "instance %s already has a live session "
			    "(state %s): second attach refused", rec.name,
			    inst_state_name(in->state));
			*errcode = ERR_BUSY;
			return VTPM_E_BUSY;
		}
		/* A hot worker: same launch resumes, a new launch power-cycles. */
		if (sodium_memcmp(in->launch_id, c->launch_id, sizeof(in->launch_id)) == 0) {
			in->pending_how = ATTACHED_RESUMED;
			in->pending_flags = 0;
		} else {
			in->pending_how = ATTACHED_POWERED_ON;
			in->pending_flags = IPC_SESS_F_POWER_CYCLE;
		}
		memcpy(in->launch_id, c->launch_id, sizeof(in->launch_id));
		in->claims = *c;
		in->waiting = s;
		inst_handoff(in, s);
		return 0;
	}
	/* etcd: become the owner first (refused if another vtpmd serves it) */
	if ((rc = fleet_claim(&rec, why, whylen, errcode)) != 0)
		return rc;
	if ((in = calloc(1, sizeof(*in))) == NULL)
		fatalx("out of memory");
	in->ev.fd = -1;
	in->guest_fd = -1;
	in->rec = rec;
	in->state = I_STARTING;
	if ((in->dek = sodium_malloc(SEAL_KEY_LEN)) == NULL)
		fatalx("out of memory");
	TAILQ_INSERT_TAIL(&V->insts, in, entry);
	V->ninsts++;
	rc = seal_dek_unwrap(V->kek, rec.uuid, rec.wrapped_dek, in->dek);
	if (rc != 0) {
		snprintf(why, whylen, "data key of %s does not unwrap: %s", rec.name,
		    vtpm_strerror(rc));
		*errcode = ERR_UNAVAILABLE;
		in->state = I_DEAD;
		inst_free(in);
		return rc;
	}
	memcpy(in->launch_id, c->launch_id, sizeof(in->launch_id));
	in->claims = *c;
	in->pending_flags = 0;
	if ((rc = inst_start(in, c, why, whylen)) != 0) {
		log_warnx("instance %s: %s", rec.name, why);
		*errcode = ERR_UNAVAILABLE;
		if (in->pid != 0) {
			in->waiting = NULL;
			inst_kill(in, "start failed");
		} else {
			in->state = I_DEAD;
			inst_free(in);
		}
		return rc;
	}
	in->waiting = s;
	return 0;
}

/* The instance's durable state generation (docs/PROTOCOL.md 8). */
static uint64_t
inst_generation(const struct inst *in)
{
	return in->rec.perm_gen;
}

/*
 * Readies the session's socket for the worker and keeps a dup of it for
 * the frames of durable responses (ipc.h). The socket becomes blocking, so
 * that the worker can sleep in read() on it; the parent itself only ever
 * sends on it with MSG_DONTWAIT. Writes time out after 10 s, as the
 * worker's did on the non-blocking socket.
 */
static int
inst_guest_dup(struct inst *in, int fd)
{
	struct timeval tv = { 10, 0 };
	int fl, dup;

	if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    (dup = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		log_warn("instance %s: session socket", in->rec.name);
		return VTPM_E_IO;
	}
	inst_session_drop(in);
	in->guest_fd = dup;
	return 0;
}

/* Hands the session's fd and cipher states to the worker; the session is done. */
void
inst_handoff(struct inst *in, struct session *s)
{
	struct noise_cipher tx, rx;
	uint8_t msg[4 + 1 + 1 + 64 + 32 + 8 + 32 + 8 + 2 + HCRTM_EVENT_LEN];
	uint8_t event[HCRTM_EVENT_LEN];
	struct wbuf w;
	size_t n, nlen = strlen(in->rec.name);
	struct chan *ch = session_chan(s);
	uint32_t flags = in->pending_flags;
	int rc;

	in->waiting = NULL;
	if (session_attach_flags(s) & ATTACH_F_AUTO_STARTUP)
		flags |= IPC_SESS_F_AUTO_STARTUP;
	if (session_wants_freshness(s)) {
		uint8_t fresh[SEAL_UUID_LEN + 8];

		/* Before the ciphers move: the worker's counters include it. */
		memcpy(fresh, in->rec.uuid, SEAL_UUID_LEN);
		be64_enc(fresh + SEAL_UUID_LEN, inst_generation(in));
		if (chan_send(ch, MSG_INSTANCE, fresh, sizeof(fresh)) != 0) {
			session_failed(s, ERR_UNAVAILABLE, "could not send the instance state");
			return;
		}
		flags |= IPC_SESS_F_FRESHNESS;
	}
	if (inst_guest_dup(in, chan_fd(ch)) != 0) {
		session_failed(s, ERR_UNAVAILABLE, "could not hand the session over");
		return;
	}
	chan_get_ciphers(ch, &tx, &rx);
	wbuf_init(&w, msg, sizeof(msg));
	wbuf_put_u32(&w, flags);
	wbuf_put_u8(&w, in->pending_how);
	wbuf_put_u8(&w, (uint8_t)nlen);
	wbuf_put_bytes(&w, in->rec.name, nlen);
	wbuf_put_bytes(&w, tx.k, 32);
	wbuf_put_u64(&w, tx.n);
	wbuf_put_bytes(&w, rx.k, 32);
	wbuf_put_u64(&w, rx.n);
	hcrtm_event(&in->claims, event);
	wbuf_put_u16(&w, sizeof(event));
	wbuf_put_bytes(&w, event, sizeof(event));
	noise_cipher_wipe(&tx);
	noise_cipher_wipe(&rx);
	if (wbuf_end(&w, &n) != 0)
		fatalx("IPC_SESSION overflow");
	rc = inst_send(in, IPC_SESSION, msg, n, NULL, 0, chan_fd(ch));
	sodium_memzero(msg, sizeof(msg));
	if (rc != 0) {
		session_failed(s, ERR_UNAVAILABLE, "instance worker unavailable");
		return;
	}
	in->state = I_ACTIVE;
	log_info("session %u: attached to instance %s (%s)", session_id(s), in->rec.name,
	    in->pending_how == ATTACHED_RESUMED ? "resumed" :
	    in->pending_how == ATTACHED_NEW ? "new" : "power-on");
	metrics_attach_ok(in->pending_how);
	(void)audit_log(NULL, STORE_AUDIT_ATTACH, 0, 0, STORE_AUDIT_NO_UID, in->rec.name,
	    in->rec.uuid, &in->claims, "session %u: %s", session_id(s),
	    in->pending_how == ATTACHED_RESUMED ? "resumed" :
	    in->pending_how == ATTACHED_NEW ? "new TPM" : "powered on");
	session_done(s);	/* closes the parent's copy of the fd */
}

/* ---------- worker messages ---------- */

static void
ack_store(struct inst *in, int result)
{
	uint8_t b[12];

	be32_enc(b, (uint32_t)(int32_t)result);
	be64_enc(b + 4, result == 0 ? inst_generation(in) : 0);
	(void)inst_send(in, IPC_STORE_ACK, b, sizeof(b), NULL, 0, -1);
}

static void batch_abort(int rc);

/*
 * Seals a blob and queues it in the group commit. On an error the batch
 * is dropped (every store in it refused) and the error returned; the
 * caller answers this store.
 */
static int
store_queue(struct inst *in, uint8_t type, const uint8_t *blob, size_t blen)
{
	uint64_t gen = inst_next_gen(in);
	size_t slen;
	int rc, max_insts, max_audit;

	/* a full group is committed first: the array, or what the backend takes */
	store_batch_limits(V->store, &max_insts, &max_audit);
	if (V->nbatch_insts == (int)(sizeof(V->batch_insts) / sizeof(V->batch_insts[0])) ||
	    (max_insts > 0 && V->nbatch_insts >= max_insts))
		batch_commit();
	in->pending_rec = in->rec;
	rc = seal_blob(in->dek, V->kek->kid, in->rec.uuid, type, gen, blob, blen,
	    sealbuf, SEALBUF_LEN, &slen);
	if (rc == 0) {
		if (type == IPC_BLOB_PERMANENT) {
			in->pending_rec.perm_gen = gen;
		} else {
			in->pending_rec.vol_gen = gen;
			memcpy(in->pending_rec.vol_launch_id, in->launch_id,
			    sizeof(in->launch_id));
		}
		if ((rc = store_batch_put_blob(V->batch, in->rec.uuid, type, sealbuf, slen)) == 0)
			rc = store_batch_put_inst(V->batch, &in->pending_rec);
	}
	if (rc != 0) {
		/*
		 * The batch may now hold half of this entry (a blob without its
		 * record, or the reverse): committing it would strand a blob at a
		 * generation no record names. Drop the whole batch and refuse
		 * every store in it; each worker answers its guest with
		 * TPM_RC_NV_UNAVAILABLE and nothing acknowledged is lost.
		 */
		log_warnx("instance %s: cannot queue state: %s; dropping the batch",
		    in->rec.name, vtpm_strerror(rc));
		batch_abort(rc);
		return rc;
	}
	in->store_pending = 1;
	V->batch_insts[V->nbatch_insts++] = in;
	return 0;
}

static int
handle_store(struct inst *in, const uint8_t *body, size_t len)
{
	const uint8_t *blob;
	uint8_t type;
	size_t blen;
	int rc;

	if (in->store_pending)
		return VTPM_E_PROTO;
	if ((rc = ipc_parse_store(body, len, (enum ipc_worker_state)in->state,
	    &type, &blob, &blen)) != 0)
		return rc;
	if (in->state == I_IDLE)
		return VTPM_E_PROTO;
	if ((rc = store_queue(in, type, blob, blen)) != 0)
		ack_store(in, rc);
	return 0;
}

/* Answers the last IPC_STORE_RSP over IPC, with the frames' unsent tail. */
static void
rsp_ack(struct inst *in, int result, const uint8_t *tail, size_t tlen)
{
	uint8_t b[14];

	be32_enc(b, (uint32_t)(int32_t)result);
	be64_enc(b + 4, result == 0 ? inst_generation(in) : 0);
	be16_enc(b + 12, (uint16_t)tlen);
	(void)inst_send(in, IPC_RSP_ACK, b, sizeof(b), tail, tlen, -1);
}

/*
 * The last IPC_STORE_RSP is decided: done_seq or an IPC_RSP_ACK says how,
 * both written before this. Wakes the worker if it sleeps on the word
 * (a guest that pipelines); without a sleeper the wake-up costs no switch.
 */
static void
rsp_decided(struct inst *in)
{
	in->rsp_queued = 0;
	if (in->shared == NULL)
		return;
	__atomic_store_n(&in->shared->decided, (uint32_t)in->rsp_seq, __ATOMIC_RELEASE);
	(void)syscall(SYS_futex, &in->shared->decided, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/*
 * A guest command's state and its response frames (ipc.h): the state
 * joins the group commit, the frames wait here for it.
 */
static int
handle_store_rsp(struct inst *in, const uint8_t *body, size_t len)
{
	const uint8_t *frames, *blob;
	size_t flen, blen;
	uint64_t gen;
	int rc;

	if (in->store_pending)
		return VTPM_E_PROTO;
	if ((rc = ipc_parse_store_rsp(body, len, &gen, &frames, &flen, &blob, &blen)) != 0)
		return rc;
	in->rsp_seq++;
	if (in->held == NULL && (in->held = malloc(IPC_MAX_HELD)) == NULL)
		fatalx("out of memory");
	/* Its MSG_STATE_GEN must say what the commit makes durable. */
	if (gen != inst_next_gen(in)) {
		log_warnx("instance %s: response store for generation %llu, expected %llu; "
		    "refused", in->rec.name, (unsigned long long)gen,
		    (unsigned long long)inst_next_gen(in));
		rsp_ack(in, VTPM_E_ROLLBACK, NULL, 0);
		rsp_decided(in);
		return 0;
	}
	if ((rc = store_queue(in, IPC_BLOB_PERMANENT, blob, blen)) != 0) {
		rsp_ack(in, rc, NULL, 0);
		rsp_decided(in);
		return 0;
	}
	memcpy(in->held, frames, flen);
	in->held_len = flen;
	in->rsp_queued = 1;
	return 0;
}

/*
 * After the commit of an IPC_STORE_RSP: on success the frames go to the
 * guest (never blocking: what does not fit goes back to the worker to
 * write), then the shared page says so; on failure they are wiped unsent
 * and the worker is told over IPC. Either way the frames exist nowhere
 * else in the parent afterwards.
 */
static void
rsp_finish(struct inst *in, int result)
{
	size_t len = in->held_len;
	ssize_t n = 0;

	in->held_len = 0;
	if (result != 0) {
		sodium_memzero(in->held, len);
		rsp_ack(in, result, NULL, 0);
		rsp_decided(in);
		return;
	}
	if (in->guest_fd >= 0 && len > 0) {
		do {
			n = send(in->guest_fd, in->held, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			n = 0;		/* the worker meets the error itself */
	}
	if ((size_t)n == len) {
		__atomic_store_n(&in->shared->done_seq, in->rsp_seq, __ATOMIC_RELEASE);
	} else {
		log_debug("instance %s: %zu of %zu response bytes left to the worker "
		    "(the guest is not reading)", in->rec.name, len - (size_t)n, len);
		rsp_ack(in, 0, in->held + n, len - (size_t)n);
	}
	sodium_memzero(in->held, len);
	rsp_decided(in);
}

/* Answers a store of a live instance once its batch is decided. */
static void
store_done(struct inst *in, int rc)
{
	if (rc == 0)
		inst_publish_gen(in);
	if (in->rsp_queued)
		rsp_finish(in, rc);
	else
		ack_store(in, rc);
}

/* Refuses every store in the pending batch and empties it. */
static void
batch_abort(int rc)
{
	int i;

	for (i = 0; i < V->nbatch_insts; i++) {
		struct inst *in = V->batch_insts[i];

		in->store_pending = 0;
		if (in->state == I_DEAD) {
			if (in->pid == 0)
				inst_free(in);
			continue;
		}
		store_done(in, rc);
	}
	V->nbatch_insts = 0;
	store_batch_reset(V->batch);
}

void
batch_commit(void)
{
	struct timespec t0, t1;
	int i, rc;

	if (V->nbatch_insts == 0 && !audit_pending())
		return;
	audit_flush(V->batch);	/* queued audit records ride along (ops.h) */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = store_batch_commit(V->store, V->batch);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metrics_commit(&t0, &t1, V->nbatch_insts, rc == 0);
	if (rc != 0)
		log_warnx("group commit of %d state blobs failed: %s", V->nbatch_insts,
		    vtpm_strerror(rc));
	else
		log_debug("group commit: %d state blobs", V->nbatch_insts);
	for (i = 0; i < V->nbatch_insts; i++) {
		struct inst *in = V->batch_insts[i];

		in->store_pending = 0;
		if (rc == 0)
			in->rec = in->pending_rec;
		if (in->state == I_DEAD) {
			if (in->pid == 0)
				inst_free(in);
			continue;
		}
		store_done(in, rc);
	}
	V->nbatch_insts = 0;
	store_batch_reset(V->batch);
}

static int
handle_msg(struct inst *in, uint8_t type, const uint8_t *body, size_t len)
{
	int rc;

	if ((rc = ipc_worker_msg_allowed(type, (enum ipc_worker_state)in->state, len)) != 0)
		return rc;
	switch (type) {
	case IPC_READY:
		if (be32_dec(body + 1) != 0) {
			inst_kill(in, "TPM failed to start");
			return 0;
		}
		in->state = I_IDLE;
		time(&in->idle_since);
		if (in->waiting != NULL)
			session_attach_ready(in->waiting, in, 1);
		/*
		 * Replace the spare this start may have used only now: forking
		 * it earlier competes for the CPU with the attach it is for.
		 */
		zygote_spares_fill();
		return 0;
	case IPC_STORE:
		return handle_store(in, body, len);
	case IPC_STORE_RSP:
		return handle_store_rsp(in, body, len);
	case IPC_EK_PUBS: {
		uint8_t certs[4 + 2 * IPC_EK_CERT_MAX], none[4] = { 0, 0, 0, 0 };
		struct attest_ek_keys keys;
		size_t clen;

		rc = ekcert_issue(in->rec.name, body, len, certs, sizeof(certs), &clen, &keys);
		if (rc == VTPM_E_FORMAT)
			return rc;
		if (rc != 0)
			log_warnx("instance %s: no EK certificates: %s", in->rec.name,
			    vtpm_strerror(rc));
		/* for `vtpmctl show`; the TPM works without it */
		(void)endorse_record_store(&in->rec, in->dek, &keys, rc == 0 ? certs : none,
		    rc == 0 ? clen : sizeof(none));
		(void)inst_send(in, IPC_EK_CERTS, rc == 0 ? certs : none,
		    rc == 0 ? clen : sizeof(none), NULL, 0, -1);
		return 0;
	}
	case IPC_SESSION_END:
		log_info("instance %s: session ended (reason %u)", in->rec.name, body[0]);
		metrics_session_end(body[0]);
		(void)audit_log(NULL, STORE_AUDIT_DETACH, 0, 0, STORE_AUDIT_NO_UID, in->rec.name,
		    in->rec.uuid, &in->claims, "session ended: %s", body[0] == END_DETACH ?
		    "guest detached" : body[0] == END_PEER_CLOSED ? "guest closed" :
		    body[0] == END_KICKED ? "ended by vtpmd" : body[0] == END_BAD_FRAME ?
		    "bad frame from the guest" : "I/O error");
		if (in->state == I_ACTIVE) {
			in->state = I_IDLE;
			time(&in->idle_since);
		}
		/* a worker settles its response store first: nothing is held now */
		inst_session_drop(in);
		return 0;
	case IPC_STATS:
		metrics_commands(be32_dec(body));
		return 0;
	case IPC_STOPPED:
		log_info("instance %s: stopped (volatile state %s)", in->rec.name,
		    body[0] ? "saved" : "not saved");
		in->state = I_DEAD;	/* reaped via SIGCHLD */
		ev_del(&in->ev);
		close(in->ev.fd);
		in->ev.fd = -1;
		return 0;
	}
	return VTPM_E_PROTO;
}

void
inst_event(struct inst *in, uint32_t events)
{
	const uint8_t *body;
	uint8_t type;
	size_t len;
	int fd, rc;

	bufs_init();
	while (in->state != I_DEAD && in->ev.fd >= 0) {
		rc = ipc_recv(in->ev.fd, ipcbuf, IPC_MAX_MSG, &type, &body, &len, &fd);
		if (rc == VTPM_E_AGAIN)
			return;
		if (rc != 0) {
			inst_kill(in, rc == VTPM_E_CLOSED ? "worker exited" :
			    "malformed IPC packet");
			return;
		}
		if (fd >= 0) {
			close(fd);
			inst_kill(in, "worker sent a file descriptor");
			return;
		}
		if ((rc = handle_msg(in, type, body, len)) != 0) {
			char why[96];

			snprintf(why, sizeof(why), "IPC message 0x%02x not allowed in "
			    "state %s (%s)", type, inst_state_name(in->state),
			    vtpm_strerror(rc));
			inst_kill(in, why);
			return;
		}
		/*
		 * A worker that asked for a store waits for the answer: nothing
		 * more to read now (epoll is level-triggered if there is).
		 */
		if (type == IPC_STORE || type == IPC_STORE_RSP)
			return;
	}
}

void
inst_spawned(uint32_t spawn_id, pid_t pid)
{
	struct inst *in;

	TAILQ_FOREACH(in, &V->insts, entry) {
		if (in->spawn_id != spawn_id || in->pid != -1)
			continue;
		if (pid <= 0) {
			in->pid = 0;
			inst_kill(in, "the zygote could not fork a worker");
			if (!in->store_pending)
				inst_free(in);
			return;
		}
		in->pid = pid;
		if (in->state == I_DEAD)
			kill(pid, SIGKILL);	/* killed before its pid was known */
		else
			log_info("instance %s: worker %d started", in->rec.name, (int)pid);
		return;
	}
	log_warnx("worker zygote: unknown spawn %u (pid %d); killing it", spawn_id, (int)pid);
	if (pid > 0)
		kill(pid, SIGKILL);
}

void
insts_zygote_lost(void)
{
	struct inst *in, *t;

	TAILQ_FOREACH_SAFE(in, &V->insts, entry, t) {
		if (in->state != I_DEAD)
			inst_kill(in, "the worker zygote is gone");
		in->pid = 0;
		if (!in->store_pending)
			inst_free(in);
	}
}

void
inst_reaped(pid_t pid, int status)
{
	struct inst *in, *t;

	TAILQ_FOREACH_SAFE(in, &V->insts, entry, t) {
		if (in->pid != pid)
			continue;
		if (WIFSIGNALED(status) && in->state != I_DEAD)
			log_warnx("instance %s: worker %d died on signal %d", in->rec.name,
			    (int)pid, WTERMSIG(status));
		else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			log_warnx("instance %s: worker %d exited with status %d",
			    in->rec.name, (int)pid, WEXITSTATUS(status));
		if (in->state != I_DEAD)
			inst_kill(in, "worker exited");
		in->pid = 0;
		if (!in->store_pending)
			inst_free(in);
		return;
	}
}

static void
inst_stop(struct inst *in)
{
	if (inst_send(in, IPC_STOP, NULL, 0, NULL, 0, -1) != 0)
		return;
	/* wakes a worker asleep in read() on its guest (ipc.h) */
	if (in->guest_fd >= 0)
		(void)shutdown(in->guest_fd, SHUT_RD);
	in->state = I_STOPPING;
	time(&in->stop_sent);
}

void
insts_tick(time_t now)
{
	struct inst *in, *t;

	TAILQ_FOREACH_SAFE(in, &V->insts, entry, t) {
		if (in->state == I_IDLE && V->cfg.idle_timeout >= 0 &&
		    now - in->idle_since >= V->cfg.idle_timeout) {
			log_info("instance %s: idle for %ds, saving and stopping its worker",
			    in->rec.name, V->cfg.idle_timeout);
			inst_stop(in);
		} else if (in->state == I_STOPPING && now - in->stop_sent > STOP_GRACE_SEC) {
			inst_kill(in, "did not stop in time");
		}
	}
}

void
inst_forget_session(struct session *s)
{
	struct inst *in;

	TAILQ_FOREACH(in, &V->insts, entry)
		if (in->waiting == s)
			in->waiting = NULL;
}

void
insts_stop_all(void)
{
	struct inst *in, *t;

	TAILQ_FOREACH_SAFE(in, &V->insts, entry, t) {
		if (in->state == I_IDLE || in->state == I_ACTIVE)
			inst_stop(in);
		else if (in->state == I_STARTING)
			inst_kill(in, "shutting down");
	}
}

int
insts_all_gone(void)
{
	return TAILQ_EMPTY(&V->insts);
}

int
inst_delete(const char *name, char *why, size_t whylen)
{
	struct store_instance rec;
	struct inst *in;
	int rc;

	batch_commit();
	if ((rc = store_inst_get(V->store, name, &rec)) != 0) {
		snprintf(why, whylen, "no instance %s: %s", name, vtpm_strerror(rc));
		return rc;
	}
	if ((in = inst_find(name)) != NULL)
		inst_kill(in, "instance deleted");
	store_batch_reset(V->sync_batch);
	if ((rc = store_batch_del_inst(V->sync_batch, name)) != 0 ||
	    (rc = audit_log(V->sync_batch, STORE_AUDIT_DELETE, 0, 0, STORE_AUDIT_NO_UID,
	    name, rec.uuid, NULL, "deleted; its data key is destroyed")) != 0 ||
	    (rc = store_batch_commit(V->store, V->sync_batch)) != 0) {
		store_batch_reset(V->sync_batch);
		snprintf(why, whylen, "delete failed: %s", vtpm_strerror(rc));
		return rc;
	}
	store_batch_reset(V->sync_batch);
	log_info("instance %s deleted (its data key is destroyed)", name);
	return 0;
}

int
inst_end_worker(const char *name, int graceful, const char *why)
{
	struct inst *in = inst_find(name);

	if (in == NULL)
		return 0;
	if (graceful && (in->state == I_IDLE || in->state == I_ACTIVE)) {
		log_info("instance %s: asking its worker to save its state and stop: %s",
		    name, why);
		inst_stop(in);
	} else if (!graceful || in->state == I_STARTING) {
		inst_kill(in, why);
	}
	return inst_find(name) != NULL;
}
