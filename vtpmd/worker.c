/*
 * worker.c: one guest's TPM. Runs libtpms (a process-wide singleton), serves
 * that guest's session directly (Noise transport, one hop) and asks the
 * parent to make every permanent-state change durable before a response is
 * released. Trusts the parent (IPC, after exact checks); trusts nothing from
 * the guest: frames are authenticated, TPM commands size-checked, and libtpms
 * itself parses the rest.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <linux/futex.h>
#include <unistd.h>

#include <sodium.h>
#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>
#include <libtpms/tpm_tis.h>

#include "channel.h"
#include "cursor.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "worker.h"
#include "sandbox.h"

enum wstate { W_STARTING, W_IDLE, W_ACTIVE, W_STOPPING };

static struct worker {
	int		 ipc;
	enum wstate	 state;
	char		 name[64];
	uint32_t	 pcr_banks;
	struct chan	*ch;
	uint8_t		*perm;		/* last durable permanent state */
	size_t		 perm_len;
	uint8_t		*vol;		/* volatile state to load once, then freed */
	size_t		 vol_len;
	int		 running;	/* libtpms initialised (not stopped) */
	int		 guest_shutdown; /* the guest sent TPM2_Shutdown since power-on */
	uint8_t		 locality;
	int		 store_failed;	/* a store failed during the current command */
	int		 restart_pending; /* a failed store stopped the TPM: restart it */
	int		 restarting;	/* inside tpm_restart(): no nested restart */
	int		 pending_kick;
	int		 pending_stop;
	uint8_t		*ipcbuf;
	uint8_t		*rsp;		/* libtpms response buffer */
	uint32_t	 rsp_size;
	int		 fresh;		/* powered on from permanent state only */
	int		 warming;	/* zygote warm-up: state goes nowhere */
	int		 auto_startup;	/* this session wants Startup after power-on */
	int		 gen_reports;	/* the guest keeps a freshness record (v2) */
	uint64_t	 durable_gen;	/* the instance's generation last made durable */
	uint64_t	 reported_gen;	/* the last one told to the guest */
	int		 gated;		/* waiting for ATTACH_CONFIRM: change nothing */
	struct timespec	 gate_until;	/* ... at most until then */
	uint32_t	 gate_flags;	/* the session's IPC_SESS_F_* while gated */
	uint8_t		 gate_how;
	int		 touched;	/* a session started since the state was loaded */
	uint8_t		 event[HCRTM_EVENT_MAX];	/* H-CRTM launch event */
	size_t		 event_len;
	const struct ipc_shared *shared;	/* the parent's page, read-only here */
	int		 defer;		/* in a guest command: keep the store for IPC_STORE_RSP */
	uint8_t		*stash;		/* ... the permanent state it wants durable */
	size_t		 stash_len;
	int		 rsp_open;	/* an IPC_STORE_RSP whose outcome is not known yet */
	uint64_t	 rsp_seq;	/* IPC_STORE_RSP sent (the last one's number) */
	uint64_t	 rsp_gen;	/* the generation it makes durable */
	uint64_t	 rsp_mark;	/* tx nonce its frames started at */
	uint8_t		*rsp_perm;	/* its state: W.perm once durable */
	size_t		 rsp_perm_len;
	int		 rcvtimeo;	/* SO_RCVTIMEO is set on the session socket */
} W = { .ipc = WORKER_IPC_FD };

static uint8_t msgbuf[CHAN_MAX_BODY];

static void worker_stop(void) __attribute__((noreturn));
static void tpm_after_power_on(void);
static void tpm_restore_durable(void);
static void session_start(uint32_t flags, uint8_t how);
static void session_end(uint8_t reason);
static void rsp_resolve(void);

/* A guest that asked for freshness reports confirms within this (PROTOCOL.md 7). */
#define WORKER_CONFIRM_TIMEOUT_S	10

/* ---------- IPC with the parent ---------- */

/* Sleeps until the parent's channel is readable. */
static void
ipc_poll(void)
{
	struct pollfd pfd = { .fd = W.ipc, .events = POLLIN };

	while (poll(&pfd, 1, -1) < 0)
		if (errno != EINTR)
			fatal("poll");
}

/* Waits for the next IPC message; exits if the parent is gone. */
static void
ipc_wait(uint8_t *type, const uint8_t **body, size_t *len, int *fd)
{
	int rc;

	for (;;) {
		rc = ipc_recv(W.ipc, W.ipcbuf, IPC_MAX_MSG, type, body, len, fd);
		if (rc == 0)
			return;
		if (rc != VTPM_E_AGAIN) {
			log_warnx("parent channel: %s; exiting", vtpm_strerror(rc));
			_exit(2);
		}
		ipc_poll();
	}
}

/*
 * Stores a blob durably through the parent and waits for the answer.
 * KICK and STOP arriving meanwhile are remembered and handled after the
 * current command. Returns 0 once durable.
 */
static int
worker_store(uint8_t type, const uint8_t *data, size_t len)
{
	uint8_t hdr[5], mtype;
	const uint8_t *body;
	size_t blen;
	struct cursor cur;
	uint32_t res;
	uint64_t gen;
	int fd, rc;

	if (W.rsp_open)
		fatalx("store while a response store is open");
	if (len > IPC_MAX_BLOB) {
		log_warnx("state blob of %zu bytes exceeds %d", len, IPC_MAX_BLOB);
		return VTPM_E_TOOBIG;
	}
	hdr[0] = type;
	be32_enc(hdr + 1, (uint32_t)len);
	if ((rc = ipc_send2(W.ipc, IPC_STORE, hdr, sizeof(hdr), data, len, -1)) != 0) {
		log_warnx("store request: %s", vtpm_strerror(rc));
		_exit(2);
	}
	/* The answer needs a group commit: sleep first rather than read EAGAIN. */
	ipc_poll();
	for (;;) {
		ipc_wait(&mtype, &body, &blen, &fd);
		if (fd >= 0)
			fatalx("unexpected fd from parent");
		if (mtype == IPC_KICK && blen == 0) {
			W.pending_kick = 1;
			continue;
		}
		if (mtype == IPC_STOP && blen == 0) {
			W.pending_stop = 1;
			continue;
		}
		if (mtype != IPC_STORE_ACK)
			fatalx("unexpected message 0x%02x while storing", mtype);
		cur_init(&cur, body, blen);
		if (cur_get_u32(&cur, &res) != 0 || cur_get_u64(&cur, &gen) != 0 ||
		    cur_end(&cur) != 0)
			fatalx("malformed store ack");
		if ((int32_t)res == 0 && gen > W.durable_gen)
			W.durable_gen = gen;
		if ((int32_t)res != 0)
			log_warnx("parent could not store state: %s",
			    vtpm_strerror((int32_t)res));
		return (int32_t)res;
	}
}

/* ---------- libtpms callbacks ---------- */

static TPM_RESULT
cb_nvram_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT
cb_nvram_loaddata(unsigned char **data, uint32_t *length, uint32_t tpm_number,
    const char *name)
{
	const uint8_t *src = NULL;
	size_t len = 0;

	if (strcmp(name, TPM_PERMANENT_ALL_NAME) == 0) {
		src = W.perm;
		len = W.perm_len;
	} else if (strcmp(name, TPM_VOLATILESTATE_NAME) == 0) {
		src = W.vol;
		len = W.vol_len;
	}
	if (src == NULL)
		return TPM_RETRY;	/* "no such state" */
	if ((*data = malloc(len)) == NULL)
		return TPM_FAIL;
	memcpy(*data, src, len);
	*length = (uint32_t)len;
	return TPM_SUCCESS;
}

static void
stash_drop(void)
{
	if (W.stash == NULL)
		return;
	sodium_memzero(W.stash, W.stash_len);
	free(W.stash);
	W.stash = NULL;
	W.stash_len = 0;
}

/* Makes state the last durable permanent state (takes it). */
static void
perm_replace(uint8_t *state, size_t len)
{
	if (W.perm != NULL) {
		sodium_memzero(W.perm, W.perm_len);
		free(W.perm);
	}
	W.perm = state;
	W.perm_len = len;
}

static TPM_RESULT
cb_nvram_storedata(const unsigned char *data, uint32_t length, uint32_t tpm_number,
    const char *name)
{
	uint8_t *copy;

	if (strcmp(name, TPM_PERMANENT_ALL_NAME) != 0 || W.warming)
		return TPM_SUCCESS;	/* libtpms stores nothing else through us */
	if (W.defer) {
		/*
		 * A guest command: keep the state (the last one wins; each is
		 * whole) and store it with the response (rsp_handoff()).
		 */
		if ((copy = malloc(length)) == NULL)
			fatalx("out of memory");
		memcpy(copy, data, length);
		stash_drop();
		W.stash = copy;
		W.stash_len = length;
		return TPM_SUCCESS;
	}
	if (worker_store(IPC_BLOB_PERMANENT, data, length) != 0) {
		W.store_failed = 1;
		return TPM_FAIL;
	}
	if ((copy = malloc(length)) == NULL)
		fatalx("out of memory");
	memcpy(copy, data, length);
	perm_replace(copy, length);
	return TPM_SUCCESS;
}

static TPM_RESULT
cb_nvram_deletename(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
	return TPM_SUCCESS;
}

static TPM_RESULT
cb_io_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT
cb_io_getlocality(TPM_MODIFIER_INDICATOR *loc, uint32_t tpm_number)
{
	*loc = W.locality;
	return TPM_SUCCESS;
}

static TPM_RESULT
cb_io_getphysicalpresence(TPM_BOOL *pp, uint32_t tpm_number)
{
	*pp = FALSE;
	return TPM_SUCCESS;
}

static struct libtpms_callbacks tpm_callbacks = {
	.sizeOfStruct			= sizeof(struct libtpms_callbacks),
	.tpm_nvram_init			= cb_nvram_init,
	.tpm_nvram_loaddata		= cb_nvram_loaddata,
	.tpm_nvram_storedata		= cb_nvram_storedata,
	.tpm_nvram_deletename		= cb_nvram_deletename,
	.tpm_io_init			= cb_io_init,
	.tpm_io_getlocality		= cb_io_getlocality,
	.tpm_io_getphysicalpresence	= cb_io_getphysicalpresence,
};

/* ---------- running the TPM ---------- */

static void
rsp_error(uint8_t *out, uint32_t rc)
{
	be16_enc(out, TPM2_ST_NO_SESSIONS);
	be32_enc(out + 2, TPM2_HDR_LEN);
	be32_enc(out + 6, rc);
}

static int
tpm_power_on(void)
{
	TPM_RESULT rc;

	W.fresh = W.vol == NULL;
	if ((rc = TPMLIB_MainInit()) != TPM_SUCCESS) {
		log_warnx("TPMLIB_MainInit failed: 0x%x", rc);
		return VTPM_E_STORE;
	}
	W.running = 1;
	W.restart_pending = 0;
	W.guest_shutdown = 0;
	/* Volatile state is single-use: it was consumed by this power-on. */
	if (W.vol != NULL) {
		sodium_memzero(W.vol, W.vol_len);
		free(W.vol);
		W.vol = NULL;
		W.vol_len = 0;
	}
	return 0;
}

/*
 * Restarts the TPM from its last durable state after a failed store. The
 * Startup that follows a power-on stores state too: if that fails as well,
 * the nested tpm_run() leaves the TPM stopped with restart_pending set, and
 * the next command tries again (no recursion while the store stays broken).
 */
static void
tpm_restart(void)
{
	W.restart_pending = 0;
	W.restarting = 1;
	if (tpm_power_on() != 0) {
		log_warnx("TPM did not restart; retrying at the next command");
		W.restart_pending = 1;
	} else {
		tpm_after_power_on();
	}
	W.restarting = 0;
}

/*
 * A store failed: libtpms has entered failure mode, or runs on state that
 * is not durable. Restarts the TPM from its last durable state.
 */
static void
tpm_restore_durable(void)
{
	log_warnx("state not durable: answering TPM_RC_NV_UNAVAILABLE and "
	    "restarting the TPM from its last durable state");
	if (W.running)
		TPMLIB_Terminate();
	W.running = 0;
	W.restart_pending = 1;
	if (!W.restarting)
		tpm_restart();
}

/*
 * Runs one command in libtpms. Returns the TPM response code; the response
 * stays in W.rsp / *rlen. If a state store failed during the command the
 * response becomes TPM_RC_NV_UNAVAILABLE and the TPM restarts from its last
 * durable state (libtpms has entered failure mode by then). While it cannot
 * restart (the store still fails), every command gets TPM_RC_NV_UNAVAILABLE.
 * With defer (a guest's command), a permanent-state store is kept in
 * W.stash instead, for the caller to hand over with the response.
 */
static uint32_t
tpm_run_cmd(const uint8_t *cmd, uint32_t len, uint32_t *rlen, int defer)
{
	uint8_t local[TPM2_MAX_CMD];
	uint32_t rc;

	if (!W.running && W.restart_pending && !W.restarting)
		tpm_restart();
	if (!W.running) {
		rc = W.restart_pending ? TPM2_RC_NV_UNAVAILABLE : TPM2_RC_FAILURE;
		rsp_error(W.rsp, rc);
		*rlen = TPM2_HDR_LEN;
		return rc;
	}
	memcpy(local, cmd, len);	/* libtpms takes a non-const buffer */
	W.store_failed = 0;
	*rlen = 0;
	W.defer = defer;
	if (TPMLIB_Process(&W.rsp, rlen, &W.rsp_size, local, len) != TPM_SUCCESS ||
	    *rlen < TPM2_HDR_LEN) {
		log_warnx("TPMLIB_Process failed");
		rsp_error(W.rsp, TPM2_RC_FAILURE);
		*rlen = TPM2_HDR_LEN;
	}
	W.defer = 0;
	if (W.store_failed) {
		tpm_restore_durable();
		/* after the restart: its Startup must not overwrite this answer */
		rsp_error(W.rsp, TPM2_RC_NV_UNAVAILABLE);
		*rlen = TPM2_HDR_LEN;
	}
	rc = be32_dec(W.rsp + 6);
	if (len >= TPM2_HDR_LEN && rc == TPM2_RC_SUCCESS) {
		uint32_t cc = be32_dec(cmd + 6);

		if (cc == TPM2_CC_SHUTDOWN)
			W.guest_shutdown = 1;
		else if (cc == TPM2_CC_STARTUP)
			W.guest_shutdown = 0;
	}
	return rc;
}

static uint32_t
tpm_run(const uint8_t *cmd, uint32_t len, uint32_t *rlen)
{
	return tpm_run_cmd(cmd, len, rlen, 0);
}

/* Runs a command vtpmd builds itself (Startup, Shutdown, PCR_Allocate). */
static uint32_t
tpm_run_internal(const uint8_t *cmd, uint32_t len)
{
	uint8_t saved = W.locality;
	uint32_t rlen, rc;

	W.locality = 0;
	rc = tpm_run(cmd, len, &rlen);
	W.locality = saved;
	return rc;
}

static uint32_t
tpm_startup_clear(void)
{
	uint8_t cmd[12];

	be16_enc(cmd, TPM2_ST_NO_SESSIONS);
	be32_enc(cmd + 2, sizeof(cmd));
	be32_enc(cmd + 6, TPM2_CC_STARTUP);
	be16_enc(cmd + 10, TPM2_SU_CLEAR);
	return tpm_run_internal(cmd, sizeof(cmd));
}

static uint32_t
tpm_shutdown(uint16_t type)
{
	uint8_t cmd[12];

	be16_enc(cmd, TPM2_ST_NO_SESSIONS);
	be32_enc(cmd + 2, sizeof(cmd));
	be32_enc(cmd + 6, TPM2_CC_SHUTDOWN);
	be16_enc(cmd + 10, type);
	return tpm_run_internal(cmd, sizeof(cmd));
}

/* Shuts the TPM down in order (if the guest did not) and terminates libtpms. */
static void
tpm_power_off(void)
{
	uint32_t rc;

	if (!W.running)
		return;
	if (!W.guest_shutdown) {
		rc = tpm_shutdown(TPM2_SU_STATE);
		if (rc != TPM2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE)
			log_debug("TPM2_Shutdown(STATE): rc 0x%x", rc);
	}
	TPMLIB_Terminate();
	W.running = 0;
}

/*
 * What follows a fresh power-on before the guest runs: the H-CRTM sequence
 * over the guest's verified launch event (locality 4 _TPM_Hash_Start /
 * _Data / _End, so PCR 0 starts from it; docs/ENDORSEMENT.md), then
 * TPM2_Startup(CLEAR) if this session asked for it. A resumed TPM (loaded
 * with its volatile state) is already running and gets neither.
 */
static void
tpm_after_power_on(void)
{
	uint32_t rc;

	if (!W.running || !W.fresh)
		return;
	if (W.event_len > 0) {
		if (TPM_IO_Hash_Start() != TPM_SUCCESS ||
		    TPM_IO_Hash_Data(W.event, (uint32_t)W.event_len) != TPM_SUCCESS ||
		    TPM_IO_Hash_End() != TPM_SUCCESS)
			log_warnx("H-CRTM sequence failed: PCR 0 does not carry the launch");
	}
	W.fresh = 0;
	if (W.auto_startup) {
		rc = tpm_startup_clear();
		if (rc != TPM2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE)
			log_warnx("TPM2_Startup(CLEAR): rc 0x%x", rc);
	}
}

/*
 * Allocates the configured PCR banks on a new TPM: Startup, PCR_Allocate
 * with platform authorisation (empty on a new TPM), then a power cycle so
 * the allocation takes effect.
 */
static int
tpm_allocate_banks(uint32_t banks)
{
	static const uint16_t algs[] = { 0x0004, 0x000B, 0x000C, 0x000D };
	uint8_t cmd[64];
	struct wbuf w;
	size_t n, i;
	uint32_t rc;

	if ((rc = tpm_startup_clear()) != TPM2_RC_SUCCESS) {
		log_warnx("Startup at manufacture: rc 0x%x", rc);
		return VTPM_E_STORE;
	}
	wbuf_init(&w, cmd, sizeof(cmd));
	wbuf_put_u16(&w, TPM2_ST_SESSIONS);
	wbuf_put_u32(&w, 0);			/* size, patched below */
	wbuf_put_u32(&w, TPM2_CC_PCR_ALLOCATE);
	wbuf_put_u32(&w, 0x4000000C);		/* TPM_RH_PLATFORM */
	wbuf_put_u32(&w, 9);			/* authorization area */
	wbuf_put_u32(&w, 0x40000009);		/* TPM_RS_PW */
	wbuf_put_u16(&w, 0);
	wbuf_put_u8(&w, 0);
	wbuf_put_u16(&w, 0);
	wbuf_put_u32(&w, 4);			/* TPML_PCR_SELECTION count */
	for (i = 0; i < 4; i++) {
		uint8_t sel = (banks & (1u << i)) ? 0xff : 0x00;

		wbuf_put_u16(&w, algs[i]);
		wbuf_put_u8(&w, 3);
		wbuf_put_u8(&w, sel);
		wbuf_put_u8(&w, sel);
		wbuf_put_u8(&w, sel);
	}
	if (wbuf_end(&w, &n) != 0)
		fatalx("PCR_Allocate command overflow");
	be32_enc(cmd + 2, (uint32_t)n);
	if ((rc = tpm_run_internal(cmd, (uint32_t)n)) != TPM2_RC_SUCCESS) {
		log_warnx("PCR_Allocate: rc 0x%x", rc);
		return VTPM_E_STORE;
	}
	W.guest_shutdown = 0;
	tpm_shutdown(TPM2_SU_CLEAR);
	TPMLIB_Terminate();
	W.running = 0;
	return tpm_power_on();
}

static int tpm_provision_ek(void);

/* Manufacture: PCR banks, then the EKs and their certificates; ends powered on, not started. */
static int
tpm_manufacture(uint32_t banks)
{
	uint32_t rc;
	int r;

	if ((r = tpm_allocate_banks(banks)) != 0)
		return r;
	if ((rc = tpm_startup_clear()) != TPM2_RC_SUCCESS) {
		log_warnx("Startup for EK provisioning: rc 0x%x", rc);
		return VTPM_E_STORE;
	}
	if ((r = tpm_provision_ek()) != 0)
		return r;
	(void)tpm_shutdown(TPM2_SU_CLEAR);
	TPMLIB_Terminate();
	W.running = 0;
	return tpm_power_on();
}


/* ---------- endorsement: EKs and their certificates at manufacture ---------- */

/* TPM_RH_*, TPM_RS_PW and the TCG EK Credential Profile's templates. */
#define TPM_RH_ENDORSEMENT	0x4000000B
#define TPM_RH_PLATFORM_H	0x4000000C
#define TPM_RS_PW_H		0x40000009
#define TPM2_CC_CREATE_PRIMARY	0x131
#define TPM2_CC_FLUSH_CONTEXT	0x165
#define TPM2_CC_NV_DEFINE	0x12A
#define TPM2_CC_NV_WRITE	0x137
#define TPM2_CC_NV_WRITELOCK	0x138
#define EK_CERT_NV_RSA		0x01c00002
#define EK_CERT_NV_ECC		0x01c0000a
/* PPWRITE | WRITEDEFINE | PPREAD | OWNERREAD | AUTHREAD | NO_DA | PLATFORMCREATE */
#define EK_CERT_NV_ATTRS	0x42072001
#define NV_CHUNK		1024

/* PolicySecret(TPM_RH_ENDORSEMENT): the default EK authPolicy. */
static const uint8_t ek_policy[32] = {
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d,
	0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
	0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

/* Command header and the empty password session most commands here use. */
static void
cmd_begin(struct wbuf *w, uint32_t cc, uint32_t handle)
{
	wbuf_put_u16(w, TPM2_ST_SESSIONS);
	wbuf_put_u32(w, 0);		/* size, patched by cmd_finish */
	wbuf_put_u32(w, cc);
	wbuf_put_u32(w, handle);
}

static void
cmd_pw_session(struct wbuf *w)
{
	wbuf_put_u32(w, 9);
	wbuf_put_u32(w, TPM_RS_PW_H);
	wbuf_put_u16(w, 0);
	wbuf_put_u8(w, 0);
	wbuf_put_u16(w, 0);
}

static uint32_t
cmd_finish_run(uint8_t *buf, struct wbuf *w, uint32_t *rlen)
{
	size_t n;

	if (wbuf_end(w, &n) != 0)
		fatalx("internal command overflow");
	be32_enc(buf + 2, (uint32_t)n);
	W.locality = 0;
	return tpm_run(buf, (uint32_t)n, rlen);
}

/* The default EK template, RSA-2048 (L-1) or ECC NIST P-256 (L-2). */
static void
put_ek_template(struct wbuf *w, int ecc)
{
	uint8_t *size_at = wbuf_reserve(w, 2);
	size_t start = w->w_len, i;

	wbuf_put_u16(w, ecc ? 0x0023 : 0x0001);	/* type */
	wbuf_put_u16(w, 0x000B);			/* nameAlg sha256 */
	wbuf_put_u32(w, 0x000300B2);	/* fixedTPM fixedParent sensitiveDataOrigin
					   adminWithPolicy restricted decrypt */
	wbuf_put_u16(w, sizeof(ek_policy));
	wbuf_put_bytes(w, ek_policy, sizeof(ek_policy));
	wbuf_put_u16(w, 0x0006);			/* AES */
	wbuf_put_u16(w, 128);
	wbuf_put_u16(w, 0x0043);			/* CFB */
	wbuf_put_u16(w, 0x0010);			/* scheme NULL */
	if (ecc) {
		wbuf_put_u16(w, 0x0003);		/* NIST P-256 */
		wbuf_put_u16(w, 0x0010);		/* kdf NULL */
		wbuf_put_u16(w, 32);
		for (i = 0; i < 32; i++)
			wbuf_put_u8(w, 0);
		wbuf_put_u16(w, 32);
		for (i = 0; i < 32; i++)
			wbuf_put_u8(w, 0);
	} else {
		wbuf_put_u16(w, 2048);
		wbuf_put_u32(w, 0);			/* default exponent */
		wbuf_put_u16(w, 256);
		for (i = 0; i < 256; i++)
			wbuf_put_u8(w, 0);
	}
	if (size_at != NULL)
		be16_enc(size_at, (uint16_t)(w->w_len - start));
}

/* Creates the EK, copies its TPMT_PUBLIC out and flushes it. */
static int
tpm_create_ek(int ecc, uint8_t *pub, size_t cap, size_t *publen)
{
	uint8_t cmd[512];
	struct wbuf w;
	struct cursor cur;
	uint32_t rc, rlen, handle, psize;
	uint16_t tag, plen;
	const uint8_t *p;

	wbuf_init(&w, cmd, sizeof(cmd));
	cmd_begin(&w, TPM2_CC_CREATE_PRIMARY, TPM_RH_ENDORSEMENT);
	cmd_pw_session(&w);
	wbuf_put_u16(&w, 4);		/* inSensitive: empty userAuth and data */
	wbuf_put_u16(&w, 0);
	wbuf_put_u16(&w, 0);
	put_ek_template(&w, ecc);
	wbuf_put_u16(&w, 0);		/* outsideInfo */
	wbuf_put_u32(&w, 0);		/* creationPCR */
	if ((rc = cmd_finish_run(cmd, &w, &rlen)) != TPM2_RC_SUCCESS) {
		log_warnx("CreatePrimary(%s EK): rc 0x%x", ecc ? "ECC" : "RSA", rc);
		return VTPM_E_STORE;
	}
	cur_init(&cur, W.rsp, rlen);
	if (cur_get_u16(&cur, &tag) != 0 || cur_skip(&cur, 8) != 0 ||
	    cur_get_u32(&cur, &handle) != 0 || cur_get_u32(&cur, &psize) != 0 ||
	    cur_get_u16(&cur, &plen) != 0 || plen > cap || cur_get_ref(&cur, &p, plen) != 0)
		return VTPM_E_FORMAT;
	memcpy(pub, p, plen);
	*publen = plen;
	wbuf_init(&w, cmd, sizeof(cmd));
	wbuf_put_u16(&w, TPM2_ST_NO_SESSIONS);
	wbuf_put_u32(&w, 0);
	wbuf_put_u32(&w, TPM2_CC_FLUSH_CONTEXT);
	wbuf_put_u32(&w, handle);
	(void)cmd_finish_run(cmd, &w, &rlen);
	return 0;
}

/* Defines an EK-certificate NV index with platform authorisation, writes the certificate and locks it. */
static int
tpm_nv_put_cert(uint32_t index, const uint8_t *der, size_t len)
{
	uint8_t cmd[NV_CHUNK + 128];
	struct wbuf w;
	uint32_t rc, rlen;
	size_t off, n;

	wbuf_init(&w, cmd, sizeof(cmd));
	cmd_begin(&w, TPM2_CC_NV_DEFINE, TPM_RH_PLATFORM_H);
	cmd_pw_session(&w);
	wbuf_put_u16(&w, 0);			/* auth */
	wbuf_put_u16(&w, 4 + 2 + 4 + 2 + 2);	/* TPM2B_NV_PUBLIC */
	wbuf_put_u32(&w, index);
	wbuf_put_u16(&w, 0x000B);
	wbuf_put_u32(&w, EK_CERT_NV_ATTRS);
	wbuf_put_u16(&w, 0);			/* authPolicy */
	wbuf_put_u16(&w, (uint16_t)len);
	if ((rc = cmd_finish_run(cmd, &w, &rlen)) != TPM2_RC_SUCCESS) {
		log_warnx("NV_DefineSpace(0x%08x): rc 0x%x", index, rc);
		return VTPM_E_STORE;
	}
	for (off = 0; off < len; off += n) {
		n = len - off > NV_CHUNK ? NV_CHUNK : len - off;
		wbuf_init(&w, cmd, sizeof(cmd));
		cmd_begin(&w, TPM2_CC_NV_WRITE, TPM_RH_PLATFORM_H);
		wbuf_put_u32(&w, index);
		cmd_pw_session(&w);
		wbuf_put_u16(&w, (uint16_t)n);
		wbuf_put_bytes(&w, der + off, n);
		wbuf_put_u16(&w, (uint16_t)off);
		if ((rc = cmd_finish_run(cmd, &w, &rlen)) != TPM2_RC_SUCCESS) {
			log_warnx("NV_Write(0x%08x): rc 0x%x", index, rc);
			return VTPM_E_STORE;
		}
	}
	wbuf_init(&w, cmd, sizeof(cmd));
	cmd_begin(&w, TPM2_CC_NV_WRITELOCK, TPM_RH_PLATFORM_H);
	wbuf_put_u32(&w, index);
	cmd_pw_session(&w);
	if ((rc = cmd_finish_run(cmd, &w, &rlen)) != TPM2_RC_SUCCESS) {
		log_warnx("NV_WriteLock(0x%08x): rc 0x%x", index, rc);
		return VTPM_E_STORE;
	}
	return 0;
}

/* Waits for one message of the given type from the parent (KICK/STOP are remembered). */
static void
ipc_expect(uint8_t want, const uint8_t **body, size_t *len)
{
	uint8_t type;
	int fd;

	for (;;) {
		ipc_wait(&type, body, len, &fd);
		if (fd >= 0)
			fatalx("unexpected fd from parent");
		if (type == IPC_KICK && *len == 0)
			W.pending_kick = 1;
		else if (type == IPC_STOP && *len == 0)
			W.pending_stop = 1;
		else if (type == want)
			return;
		else
			fatalx("unexpected message 0x%02x while waiting for 0x%02x", type, want);
	}
}

/*
 * At manufacture: creates the RSA and ECC EKs from the default templates,
 * has the parent certify them (it holds the CA key), and stores the
 * certificates in the standard NV indices. The TPM must be running and
 * started; it is shut down and power-cycled by the caller.
 */
static int
tpm_provision_ek(void)
{
	uint8_t pubs[4 + 2 * IPC_EK_PUB_MAX], *rsa = pubs + 2, *ecc;
	size_t rlen, elen, blen;
	const uint8_t *body, *rcert, *ecert;
	struct cursor cur;
	uint16_t rl, el;
	int rc;

	if ((rc = tpm_create_ek(0, rsa, IPC_EK_PUB_MAX, &rlen)) != 0)
		return rc;
	be16_enc(pubs, (uint16_t)rlen);
	ecc = pubs + 2 + rlen + 2;
	if ((rc = tpm_create_ek(1, ecc, IPC_EK_PUB_MAX, &elen)) != 0)
		return rc;
	be16_enc(pubs + 2 + rlen, (uint16_t)elen);
	if (ipc_send(W.ipc, IPC_EK_PUBS, pubs, 4 + rlen + elen, -1) != 0)
		_exit(2);
	ipc_expect(IPC_EK_CERTS, &body, &blen);
	cur_init(&cur, body, blen);
	if (cur_get_u16(&cur, &rl) != 0 || rl > IPC_EK_CERT_MAX ||
	    cur_get_ref(&cur, &rcert, rl) != 0 || cur_get_u16(&cur, &el) != 0 ||
	    el > IPC_EK_CERT_MAX || cur_get_ref(&cur, &ecert, el) != 0 || cur_end(&cur) != 0)
		fatalx("malformed IPC_EK_CERTS");
	if (rl == 0 || el == 0) {
		log_warnx("no EK certificates from vtpmd: the EK NV indices stay empty");
		return 0;
	}
	/* The parent's buffer is reused by the stores below: copy first. */
	{
		uint8_t rc_der[IPC_EK_CERT_MAX], ec_der[IPC_EK_CERT_MAX];

		memcpy(rc_der, rcert, rl);
		memcpy(ec_der, ecert, el);
		if ((rc = tpm_nv_put_cert(EK_CERT_NV_RSA, rc_der, rl)) != 0 ||
		    (rc = tpm_nv_put_cert(EK_CERT_NV_ECC, ec_der, el)) != 0)
			return rc;
	}
	return 0;
}

/* ---------- command counts for the parent's metrics (IPC_STATS) ---------- */

static uint32_t stats_commands;
static time_t stats_second;

static void
stats_flush(void)
{
	uint8_t b[4];

	if (stats_commands == 0)
		return;
	be32_enc(b, stats_commands);
	stats_commands = 0;
	if (ipc_send(W.ipc, IPC_STATS, b, sizeof(b), -1) != 0)
		_exit(2);
}

/* Counts a command; reports at most once a second (a coarse vDSO clock read). */
static void
stats_count(void)
{
	struct timespec ts;

	stats_commands++;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	if (ts.tv_sec != stats_second) {
		stats_second = ts.tv_sec;
		stats_flush();
	}
}

/* ---------- the guest session ---------- */

static void
session_end(uint8_t reason)
{
	if (W.ch == NULL)
		return;
	rsp_resolve();		/* its answer may still have to go to the guest */
	if (W.ch == NULL)
		return;
	stats_flush();		/* allowed only while the parent sees the session */
	chan_free(W.ch);
	W.ch = NULL;
	W.gated = 0;
	W.rcvtimeo = 0;
	W.state = W_IDLE;
	W.locality = 0;
	if (ipc_send(W.ipc, IPC_SESSION_END, &reason, 1, -1) != 0)
		_exit(2);
}

/*
 * Tells a guest that keeps a freshness record how far the instance's
 * durable state has advanced, just before a response: never unasked (the
 * guest reads an unasked message as the end of the session), and only
 * generations the parent acknowledged as committed (docs/PROTOCOL.md 8).
 */
static int
report_generation(void)
{
	uint8_t b[8];
	int rc;

	if (!W.gen_reports || W.durable_gen <= W.reported_gen)
		return 0;
	be64_enc(b, W.durable_gen);
	if ((rc = chan_send(W.ch, MSG_STATE_GEN, b, sizeof(b))) == 0)
		W.reported_gen = W.durable_gen;
	return rc;
}

static int
send_ctrl_rsp(uint32_t result, const uint8_t *data, size_t len)
{
	uint8_t out[8];
	int rc;

	be32_enc(out, result);
	if (len > 4)
		return VTPM_E_TOOBIG;
	if (len > 0)
		memcpy(out + 4, data, len);
	if ((rc = report_generation()) != 0)
		return rc;
	return chan_send(W.ch, MSG_CTRL_RSP, out, 4 + len);
}

/* swtpm control result codes (TPM 1.2 values) */
#define PTM_OK			0
#define PTM_BAD_PARAMETER	3
#define PTM_FAIL		9
#define PTM_BAD_ORDINAL		10
#define PTM_BAD_LOCALITY	61

static int
handle_ctrl(const uint8_t *body, size_t len)
{
	struct cursor cur;
	uint8_t op, loc, bit;
	TPM_BOOL established;
	uint32_t flags;

	cur_init(&cur, body, len);
	if (cur_get_u8(&cur, &op) != 0)
		return VTPM_E_FORMAT;
	switch (op) {
	case CTRL_INIT:
		if (cur_get_u32(&cur, &flags) != 0 || cur_end(&cur) != 0)
			return VTPM_E_FORMAT;
		tpm_power_off();
		if (tpm_power_on() != 0)
			return send_ctrl_rsp(PTM_FAIL, NULL, 0);
		W.auto_startup = 0;	/* INIT: the caller's firmware sends Startup */
		tpm_after_power_on();
		return send_ctrl_rsp(PTM_OK, NULL, 0);
	case CTRL_STOP:
		if (cur_end(&cur) != 0)
			return VTPM_E_FORMAT;
		tpm_power_off();
		return send_ctrl_rsp(PTM_OK, NULL, 0);
	case CTRL_GET_ESTABLISHED:
		if (cur_end(&cur) != 0)
			return VTPM_E_FORMAT;
		if (!W.running || TPM_IO_TpmEstablished_Get(&established) != TPM_SUCCESS)
			return send_ctrl_rsp(PTM_FAIL, NULL, 0);
		bit = established ? 1 : 0;
		return send_ctrl_rsp(PTM_OK, &bit, 1);
	case CTRL_RESET_ESTABLISHED:
		if (cur_get_u8(&cur, &loc) != 0 || cur_end(&cur) != 0)
			return VTPM_E_FORMAT;
		if (loc > 4)
			return send_ctrl_rsp(PTM_BAD_LOCALITY, NULL, 0);
		if (!W.running)
			return send_ctrl_rsp(PTM_BAD_ORDINAL, NULL, 0);
		{
			uint8_t saved = W.locality;
			TPM_RESULT r;

			W.locality = loc;
			r = TPM_IO_TpmEstablished_Reset();
			W.locality = saved;
			return send_ctrl_rsp(r == TPM_SUCCESS ? PTM_OK : PTM_BAD_LOCALITY,
			    NULL, 0);
		}
	case CTRL_CANCEL:
		if (cur_end(&cur) != 0)
			return VTPM_E_FORMAT;
		/* Commands run to completion before the next message is read. */
		return send_ctrl_rsp(PTM_OK, NULL, 0);
	case CTRL_HASH_START:
		if (cur_end(&cur) != 0)
			return VTPM_E_FORMAT;
		return send_ctrl_rsp(W.running && TPM_IO_Hash_Start() == TPM_SUCCESS ?
		    PTM_OK : PTM_FAIL, NULL, 0);
	case CTRL_HASH_DATA:
		if (cur_left(&cur) == 0 || cur_left(&cur) > TPM2_MAX_CMD)
			return VTPM_E_FORMAT;
		return send_ctrl_rsp(W.running && TPM_IO_Hash_Data(cur.c_ptr,
		    (uint32_t)cur_left(&cur)) == TPM_SUCCESS ? PTM_OK : PTM_FAIL, NULL, 0);
	case CTRL_HASH_END:
		if (cur_end(&cur) != 0)
			return VTPM_E_FORMAT;
		return send_ctrl_rsp(W.running && TPM_IO_Hash_End() == TPM_SUCCESS ?
		    PTM_OK : PTM_FAIL, NULL, 0);
	case CTRL_DETACH:
		if (cur_end(&cur) != 0)
			return VTPM_E_FORMAT;
		(void)send_ctrl_rsp(PTM_OK, NULL, 0);
		return 1;
	}
	return VTPM_E_FORMAT;
}

/* ---------- durable responses (IPC_STORE_RSP, ipc.h) ---------- */

/*
 * The command changed the permanent state (W.stash): encrypts the response
 * -- after MSG_STATE_GEN for the generation the store will get, if the
 * guest keeps a freshness record -- and hands the frames and the state to
 * the parent, which writes the frames once the state is durable. Does not
 * wait: rsp_resolve() learns the outcome before the next guest message.
 */
static int
rsp_handoff(uint32_t rlen)
{
	uint8_t msg[8 + 2 + IPC_MAX_HELD + 4], g[8];
	size_t off = 10, n;
	uint64_t gen;
	int rc;

	gen = __atomic_load_n(&W.shared->next_gen, __ATOMIC_ACQUIRE);
	W.rsp_mark = chan_tx_mark(W.ch);
	if (W.gen_reports) {
		be64_enc(g, gen);
		if ((rc = chan_seal(W.ch, MSG_STATE_GEN, g, sizeof(g), msg + off,
		    IPC_MAX_HELD - (off - 10), &n)) != 0)
			fatalx("sealing MSG_STATE_GEN: %s", vtpm_strerror(rc));
		off += n;
	}
	if ((rc = chan_seal(W.ch, MSG_TPM_RSP, W.rsp, rlen, msg + off,
	    IPC_MAX_HELD - (off - 10), &n)) != 0)
		fatalx("sealing a response of %u bytes: %s", rlen, vtpm_strerror(rc));
	off += n;
	be64_enc(msg, gen);
	be16_enc(msg + 8, (uint16_t)(off - 10));
	be32_enc(msg + off, (uint32_t)W.stash_len);
	off += 4;
	if (W.stash_len > IPC_MAX_BLOB)
		fatalx("state blob of %zu bytes exceeds %d", W.stash_len, IPC_MAX_BLOB);
	if ((rc = ipc_send2(W.ipc, IPC_STORE_RSP, msg, off, W.stash, W.stash_len, -1)) != 0) {
		log_warnx("store request: %s", vtpm_strerror(rc));
		_exit(2);
	}
	sodium_memzero(msg, off);
	W.rsp_open = 1;
	W.rsp_seq++;
	W.rsp_gen = gen;
	W.rsp_perm = W.stash;
	W.rsp_perm_len = W.stash_len;
	W.stash = NULL;
	W.stash_len = 0;
	return 0;
}

/*
 * The outcome of the open IPC_STORE_RSP. Durable: its state becomes the
 * last durable one, and any tail of its frames the parent could not write
 * goes out now. Failed: the frames were wiped unsent; the TPM goes back to
 * its last durable state and the guest gets TPM_RC_NV_UNAVAILABLE under
 * the nonces the wiped frames had.
 */
static void
rsp_settle(int32_t result, uint64_t gen, const uint8_t *tail, size_t tlen)
{
	int rc = 0;

	W.rsp_open = 0;
	if (result == 0) {
		perm_replace(W.rsp_perm, W.rsp_perm_len);
		W.rsp_perm = NULL;
		if (gen > W.durable_gen)
			W.durable_gen = gen;
		if (W.gen_reports && W.rsp_gen > W.reported_gen)
			W.reported_gen = W.rsp_gen;	/* its frames said so */
		if (tlen > 0 && W.ch != NULL)
			rc = chan_write_raw(W.ch, tail, tlen, 10000);
	} else {
		log_warnx("parent could not store state: %s", vtpm_strerror(result));
		sodium_memzero(W.rsp_perm, W.rsp_perm_len);
		free(W.rsp_perm);
		W.rsp_perm = NULL;
		tpm_restore_durable();
		if (W.ch != NULL) {
			chan_tx_rewind(W.ch, W.rsp_mark);
			rsp_error(W.rsp, TPM2_RC_NV_UNAVAILABLE);
			if ((rc = report_generation()) == 0)
				rc = chan_send(W.ch, MSG_TPM_RSP, W.rsp, TPM2_HDR_LEN);
		}
	}
	W.rsp_perm_len = 0;
	if (rc != 0)
		log_warnx("response to the guest: %s", vtpm_strerror(rc));
}

/* Parses IPC_RSP_ACK and settles the open IPC_STORE_RSP with it. */
static void
rsp_ack(const uint8_t *body, size_t len)
{
	struct cursor cur;
	uint32_t res;
	uint64_t gen;
	uint16_t tlen;
	const uint8_t *tail;

	cur_init(&cur, body, len);
	if (!W.rsp_open || cur_get_u32(&cur, &res) != 0 || cur_get_u64(&cur, &gen) != 0 ||
	    cur_get_u16(&cur, &tlen) != 0 || tlen > IPC_MAX_HELD ||
	    cur_get_ref(&cur, &tail, tlen) != 0 || cur_end(&cur) != 0)
		fatalx("malformed or unexpected IPC_RSP_ACK");
	if ((int32_t)res != 0 && tlen != 0)
		fatalx("IPC_RSP_ACK: a failure with frames to send");
	rsp_settle((int32_t)res, gen, tail, tlen);
}

/*
 * Before anything else reaches the TPM or the guest: the outcome of the
 * open IPC_STORE_RSP. Usually the shared page has it already (two loads);
 * else sleeps on the page's futex word until the parent decides, and then
 * reads its IPC_RSP_ACK if that is where the outcome is. KICK and STOP
 * arriving meanwhile are remembered.
 */
static void
rsp_resolve(void)
{
	uint8_t type;
	const uint8_t *body;
	size_t blen;
	uint32_t d;
	int fd;

	while (W.rsp_open) {
		d = __atomic_load_n(&W.shared->decided, __ATOMIC_ACQUIRE);
		if (__atomic_load_n(&W.shared->done_seq, __ATOMIC_ACQUIRE) == W.rsp_seq) {
			rsp_settle(0, W.rsp_gen, NULL, 0);
			return;
		}
		if (d != (uint32_t)W.rsp_seq) {
			/* not decided: sleep until the word changes (EAGAIN if it did) */
			if (syscall(SYS_futex, &W.shared->decided, FUTEX_WAIT, d, NULL, NULL, 0) != 0 &&
			    errno != EAGAIN && errno != EINTR)
				fatal("futex");
			continue;
		}
		/* decided, not done: the answer is on the IPC channel */
		ipc_wait(&type, &body, &blen, &fd);
		if (fd >= 0)
			fatalx("unexpected fd from parent");
		if (type == IPC_KICK && blen == 0)
			W.pending_kick = 1;
		else if (type == IPC_STOP && blen == 0)
			W.pending_stop = 1;
		else if (type == IPC_RSP_ACK)
			rsp_ack(body, blen);
		else
			fatalx("unexpected message 0x%02x while waiting for a store", type);
	}
}

static int
handle_tpm_cmd(const uint8_t *body, size_t len)
{
	uint32_t size, rlen;
	uint8_t loc;
	int rc;

	if (len < 1 + TPM2_HDR_LEN || len > 1 + TPM2_MAX_CMD)
		return VTPM_E_FORMAT;
	loc = body[0];
	size = be32_dec(body + 3);
	if (loc > 4 || size != len - 1)
		return VTPM_E_FORMAT;
	W.locality = loc;
	(void)tpm_run_cmd(body + 1, size, &rlen, W.shared != NULL);
	stats_count();
	if (W.stash != NULL)
		return rsp_handoff(rlen);
	if ((rc = report_generation()) != 0)
		return rc;
	return chan_send(W.ch, MSG_TPM_RSP, W.rsp, rlen);
}

static void ipc_readable(void);

/* Handles what the parent sent, without waiting: KICK/STOP become pending. */
static void
ipc_check(void)
{
	struct pollfd pfd = { .fd = W.ipc, .events = POLLIN };

	while (!W.pending_kick && !W.pending_stop && poll(&pfd, 1, 0) == 1)
		ipc_readable();
}

/*
 * Serves every complete frame available on the session; on a blocking
 * socket, waits for one first. Returns the number of frames served.
 */
static int
session_readable(void)
{
	const uint8_t *frame;
	size_t flen, blen;
	uint8_t type;
	int rc, served = 0;

	for (;;) {
		rc = chan_read_frame(W.ch, &frame, &flen);
		if (rc == 0)
			return served;
		if (rc < 0) {
			/*
			 * The parent shuts the socket's reading side down when it
			 * sends KICK or STOP: that end-of-file is not the guest's.
			 */
			ipc_check();
			if (W.pending_kick || W.pending_stop || W.ch == NULL)
				return served;
			if (rc == VTPM_E_CLOSED)
				log_info("guest closed the session");
			else
				log_warnx("session read: %s", vtpm_strerror(rc));
			session_end(rc == VTPM_E_CLOSED ? END_PEER_CLOSED :
			    rc == VTPM_E_FORMAT ? END_BAD_FRAME : END_IO);
			return served;
		}
		served++;
		rc = chan_open(W.ch, frame, flen, &type, msgbuf, sizeof(msgbuf), &blen);
		if (rc != 0) {
			log_warnx("session ended: frame failed authentication (%s)",
			    vtpm_strerror(rc));
			session_end(END_BAD_FRAME);
			return served;
		}
		/* The previous command's state must be durable before this one runs. */
		rsp_resolve();
		if (W.pending_kick || W.pending_stop || W.ch == NULL) {
			sodium_memzero(msgbuf, blen);
			return served;
		}
		if (W.gated) {
			/* only ATTACH_CONFIRM (empty) opens a gated session */
			if (type != MSG_ATTACH_CONFIRM || blen != 0) {
				log_warnx("session ended: message 0x%02x before "
				    "ATTACH_CONFIRM", type);
				session_end(END_BAD_FRAME);
				return served;
			}
			session_start(W.gate_flags, W.gate_how);
			if (W.ch == NULL)
				return served;
			continue;
		}
		if (type == MSG_TPM_CMD)
			rc = handle_tpm_cmd(msgbuf, blen);
		else if (type == MSG_CTRL)
			rc = handle_ctrl(msgbuf, blen);
		else
			rc = VTPM_E_PROTO;
		sodium_memzero(msgbuf, blen);
		if (rc == 1) {
			log_info("guest detached");
			session_end(END_DETACH);
			return served;
		}
		if (rc != 0) {
			log_warnx("session ended: %s from guest (message 0x%02x)",
			    vtpm_strerror(rc), type);
			session_end(rc == VTPM_E_CLOSED ? END_PEER_CLOSED : END_BAD_FRAME);
			return served;
		}
		if (W.pending_kick || W.pending_stop)
			return served;
		/*
		 * A guest waits for each response, so the socket is usually
		 * empty now: wait again rather than pay a read() for EAGAIN.
		 */
		if (!chan_has_buffered(W.ch))
			return served;
	}
}

/* ---------- parent messages ---------- */

static void
worker_stop(void)
{
	unsigned char *buf = NULL;
	uint32_t len = 0;
	uint8_t saved = 0;

	W.state = W_STOPPING;
	rsp_resolve();
	if (W.ch != NULL)
		session_end(END_KICKED);
	W.state = W_STOPPING;
	if (W.running) {
		/*
		 * A TPM no session ever started on is as it was loaded: a
		 * Shutdown now would commit permanent state no guest asked for
		 * (docs/PROTOCOL.md 8: a refused attach changes nothing).
		 */
		if (!W.guest_shutdown && W.touched)
			(void)tpm_shutdown(TPM2_SU_STATE);
		if (TPMLIB_VolatileAll_Store(&buf, &len) == TPM_SUCCESS && buf != NULL) {
			if (worker_store(IPC_BLOB_VOLATILE, buf, len) == 0)
				saved = 1;
			sodium_memzero(buf, len);
			free(buf);
		} else {
			log_warnx("could not capture volatile state");
		}
		TPMLIB_Terminate();
		W.running = 0;
	}
	if (ipc_send(W.ipc, IPC_STOPPED, &saved, 1, -1) != 0)
		_exit(2);
	_exit(0);
}

static void
handle_session(const uint8_t *body, size_t len, int fd)
{
	struct noise_cipher tx, rx;
	struct cursor cur;
	uint32_t flags;
	uint8_t how, nlen;
	const uint8_t *name, *event;
	uint16_t elen;

	memset(&tx, 0, sizeof(tx));
	memset(&rx, 0, sizeof(rx));
	cur_init(&cur, body, len);
	if (cur_get_u32(&cur, &flags) != 0 || cur_get_u8(&cur, &how) != 0 ||
	    cur_get_u8(&cur, &nlen) != 0 || nlen > 63 ||
	    cur_get_ref(&cur, &name, nlen) != 0 ||
	    cur_get_bytes(&cur, tx.k, 32) != 0 || cur_get_u64(&cur, &tx.n) != 0 ||
	    cur_get_bytes(&cur, rx.k, 32) != 0 || cur_get_u64(&cur, &rx.n) != 0 ||
	    cur_get_u16(&cur, &elen) != 0 || elen > HCRTM_EVENT_MAX ||
	    cur_get_ref(&cur, &event, elen) != 0 ||
	    cur_end(&cur) != 0 || fd < 0)
		fatalx("malformed IPC_SESSION");
	memcpy(W.event, event, elen);
	W.event_len = elen;
	W.auto_startup = (flags & IPC_SESS_F_AUTO_STARTUP) != 0;
	W.gen_reports = (flags & IPC_SESS_F_FRESHNESS) != 0;
	/* INSTANCE told the guest the parent's generation, at least this one */
	W.reported_gen = W.durable_gen;
	tx.has_key = rx.has_key = 1;
	/* The parent made the socket blocking: the worker sleeps in read() on it. */
	if ((W.ch = chan_new(fd, 0)) == NULL)
		fatalx("out of memory");
	W.rcvtimeo = 0;
	chan_set_ciphers(W.ch, &tx, &rx);
	sodium_memzero(&tx, sizeof(tx));
	sodium_memzero(&rx, sizeof(rx));
	W.state = W_ACTIVE;
	memcpy(W.name, name, nlen);
	W.name[nlen] = '\0';
	if (W.gen_reports) {
		/*
		 * The guest checks the generation the parent sent it (MSG_INSTANCE)
		 * against its freshness record. Until it confirms, nothing may
		 * change the state: a rolled-back store must not be able to climb
		 * past the guest's record through the guest's own refused attaches.
		 */
		W.gated = 1;
		W.gate_flags = flags;
		W.gate_how = how;
		clock_gettime(CLOCK_MONOTONIC, &W.gate_until);
		W.gate_until.tv_sec += WORKER_CONFIRM_TIMEOUT_S;
		return;
	}
	session_start(flags, how);
}

/* The session's first steps (power-cycle, Startup) and ATTACHED. */
static void
session_start(uint32_t flags, uint8_t how)
{
	uint8_t out[2 + 64];
	size_t nlen = strlen(W.name);

	W.gated = 0;
	W.touched = 1;
	if (flags & IPC_SESS_F_POWER_CYCLE) {
		log_info("new launch: power-cycling the TPM");
		tpm_power_off();
		if (tpm_power_on() != 0) {
			session_end(END_IO);
			return;
		}
	}
	if (how != ATTACHED_RESUMED)
		tpm_after_power_on();
	out[0] = how;
	out[1] = (uint8_t)nlen;
	memcpy(out + 2, W.name, nlen);
	if (chan_send(W.ch, MSG_ATTACHED, out, 2 + nlen) != 0) {
		session_end(END_IO);
		return;
	}
	log_info("session attached (%s)", how == ATTACHED_RESUMED ? "resumed" :
	    how == ATTACHED_NEW ? "new TPM" : "powered on");
}

static void
handle_init(const uint8_t *body, size_t len, int fd)
{
	struct cursor cur;
	uint32_t flags, plen, vlen;
	uint8_t nlen, reply[5], how;
	const uint8_t *name, *perm, *vol;
	int rc;

	cur_init(&cur, body, len);
	if (cur_get_u32(&cur, &flags) != 0 || cur_get_u32(&cur, &W.pcr_banks) != 0 ||
	    cur_get_u8(&cur, &nlen) != 0 || nlen > 63 ||
	    cur_get_ref(&cur, &name, nlen) != 0 ||
	    cur_get_u32(&cur, &plen) != 0 || cur_get_ref(&cur, &perm, plen) != 0 ||
	    cur_get_u32(&cur, &vlen) != 0 || cur_get_ref(&cur, &vol, vlen) != 0 ||
	    cur_end(&cur) != 0 || fd < 0)
		fatalx("malformed IPC_INIT");
	/* The shared page: read-only here (sealed against writable mappings). */
	W.shared = mmap(NULL, IPC_SHARED_LEN, PROT_READ, MAP_SHARED, fd, 0);
	if (W.shared == MAP_FAILED)
		fatal("mmap of the shared page");
	close(fd);
	memcpy(W.name, name, nlen);
	W.name[nlen] = '\0';
	log_set_prefix(W.name);
	if (plen > 0) {
		if ((W.perm = malloc(plen)) == NULL)
			fatalx("out of memory");
		memcpy(W.perm, perm, plen);
		W.perm_len = plen;
	}
	if (vlen > 0) {
		if ((W.vol = malloc(vlen)) == NULL)
			fatalx("out of memory");
		memcpy(W.vol, vol, vlen);
		W.vol_len = vlen;
	}
	how = vlen > 0 ? ATTACHED_RESUMED : plen > 0 ? ATTACHED_POWERED_ON : ATTACHED_NEW;
	rc = tpm_power_on();
	if (rc == 0 && (flags & IPC_INIT_F_MANUFACTURE))
		rc = tpm_manufacture(W.pcr_banks);
	reply[0] = how;
	be32_enc(reply + 1, rc == 0 ? 0 : TPM2_RC_FAILURE);
	if (ipc_send(W.ipc, IPC_READY, reply, sizeof(reply), -1) != 0)
		_exit(2);
	if (rc != 0)
		_exit(3);
	W.state = W_IDLE;
}

/* A gated session's deadline: 1 once passed, else *wait cut to what is left. */
static int
gate_expired(int *wait)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(W.gate_until.tv_sec - now.tv_sec) * 1000 +
	    (W.gate_until.tv_nsec - now.tv_nsec) / 1000000;
	if (ms <= 0)
		return 1;
	if (*wait < 0 || ms < *wait)
		*wait = (int)ms;
	return 0;
}

static void
ipc_readable(void)
{
	uint8_t type;
	const uint8_t *body;
	size_t len;
	int fd, rc;

	rc = ipc_recv(W.ipc, W.ipcbuf, IPC_MAX_MSG, &type, &body, &len, &fd);
	if (rc == VTPM_E_AGAIN)
		return;
	if (rc != 0) {
		log_info("parent went away (%s); exiting", vtpm_strerror(rc));
		_exit(rc == VTPM_E_CLOSED ? 0 : 2);
	}
	if (type != IPC_SESSION && type != IPC_INIT && fd >= 0)
		fatalx("unexpected fd with message 0x%02x", type);
	switch (type) {
	case IPC_INIT:
		if (W.state != W_STARTING)
			fatalx("IPC_INIT twice");
		handle_init(body, len, fd);
		break;
	case IPC_SESSION:
		if (W.state != W_IDLE)
			fatalx("IPC_SESSION while not idle");
		handle_session(body, len, fd);
		break;
	case IPC_KICK:
		if (len != 0)
			fatalx("malformed IPC_KICK");
		W.pending_kick = 1;	/* the main loop ends the session */
		break;
	case IPC_STOP:
		if (len != 0)
			fatalx("malformed IPC_STOP");
		W.pending_stop = 1;	/* the main loop stops */
		break;
	case IPC_RSP_ACK:
		rsp_ack(body, len);
		break;
	default:
		fatalx("unexpected IPC message 0x%02x", type);
	}
}

/*
 * Library set-up shared by a worker and the zygote it may be forked from:
 * libsodium, buffers, libtpms callbacks. With warm, also one throwaway
 * manufacture and power-off, so that OpenSSL and libtpms have done their
 * one-time initialisation (and self-tests) before any fork: the children
 * share those pages instead of each paying ~5 ms and ~1 MiB for them.
 */
void
worker_lib_init(int warm)
{
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		fatalx("sodium_init");
	W.rsp_size = 2 * TPM2_MAX_CMD;
	if ((W.ipcbuf = malloc(IPC_MAX_MSG)) == NULL ||
	    (W.rsp = malloc(W.rsp_size)) == NULL)
		fatalx("out of memory");
	if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) != TPM_SUCCESS ||
	    TPMLIB_RegisterCallbacks(&tpm_callbacks) != TPM_SUCCESS)
		fatalx("libtpms initialisation failed");
	if (warm) {
		W.warming = 1;
		if (TPMLIB_MainInit() != TPM_SUCCESS)
			fatalx("libtpms warm-up failed");
		TPMLIB_Terminate();
		W.warming = 0;
	}
}

/*
 * The guest's socket is blocking (the parent cleared O_NONBLOCK at the
 * handoff), so with nothing else to watch the worker sleeps in read() on
 * it alone: one syscall to wait instead of poll() + read(). Commands not
 * yet reported to the parent need a wake-up after a quiet second
 * (IPC_STATS): a receive timeout, set only while some are pending.
 */
static void
session_wait_direct(void)
{
	struct timeval tv = { 0, 0 };
	int want = stats_commands > 0;

	if (want != W.rcvtimeo) {
		tv.tv_sec = want ? 1 : 0;
		if (setsockopt(chan_fd(W.ch), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
			log_warn("setsockopt(SO_RCVTIMEO)");
		else
			W.rcvtimeo = want;
	}
	if (session_readable() == 0 && W.ch != NULL && !W.pending_kick && !W.pending_stop)
		stats_flush();		/* a quiet second */
}

/*
 * Polls the parent's channel and, with a session, the guest's socket: when
 * there is no session, while the session waits for ATTACH_CONFIRM (a
 * deadline), and while a response store is open (its failure must wake the
 * worker; the parent's IPC_RSP_ACK).
 */
static void
worker_poll(void)
{
	struct pollfd pfd[2];
	int n, wait;

	pfd[0].fd = W.ipc;
	pfd[0].events = POLLIN;
	pfd[1].fd = W.ch != NULL ? chan_fd(W.ch) : -1;
	pfd[1].events = POLLIN;
	/* counted commands not yet reported: report them after a quiet second */
	wait = stats_commands > 0 && W.ch != NULL ? 1000 : -1;
	if (W.gated && gate_expired(&wait)) {
		log_warnx("session ended: no ATTACH_CONFIRM within %d s",
		    WORKER_CONFIRM_TIMEOUT_S);
		session_end(END_IO);
		return;
	}
	n = poll(pfd, 2, wait);
	if (n < 0) {
		if (errno == EINTR)
			return;
		fatal("poll");
	}
	if (n == 0) {
		stats_flush();
		return;
	}
	if (pfd[0].revents & POLLNVAL)
		fatalx("no IPC channel on fd %d (vtpmd --worker is started by vtpmd only)",
		    WORKER_IPC_FD);
	/* the parent first: a store's outcome settles before the next command */
	if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
		ipc_readable();
	if (W.ch != NULL && !W.pending_kick && !W.pending_stop &&
	    (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
		(void)session_readable();
}

/* Serves one instance until the parent stops it or goes away. */
int
worker_run(uid_t uid, gid_t gid)
{
	log_init("vtpmd-worker", log_get_level());
	log_set_prefix("");
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		fatal("PR_SET_PDEATHSIG");
	if (getppid() == 1)
		_exit(2);	/* the parent died before we could notice */
	(void)prctl(PR_SET_NAME, "vtpmd-worker", 0, 0, 0);
	sandbox_worker_enter(uid, gid);

	for (;;) {
		if (W.ch != NULL && !W.gated && !W.rsp_open)
			session_wait_direct();
		else
			worker_poll();
		if (W.pending_kick) {
			W.pending_kick = 0;
			if (W.ch != NULL) {
				log_info("session ended by vtpmd");
				session_end(END_KICKED);
			}
		}
		if (W.pending_stop)
			worker_stop();
	}
}

int
worker_main(uid_t uid, gid_t gid)
{
	worker_lib_init(0);
	return worker_run(uid, gid);
}
