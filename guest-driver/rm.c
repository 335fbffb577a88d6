/*
 * rm.c: the local socket's resource manager (rm.h): per-connection
 * transient objects and sessions, swapped in and out of the TPM around
 * each command. Trusts nothing from a client (every handle it names must
 * be its own; lengths are checked by the cursor before use) and checks the
 * TPM's answers to the RM's own commands before using them.
 */
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "log.h"
#include "rm.h"

#define ST_NO_SESSIONS	0x8001U
#define ST_SESSIONS	0x8002U
#define HDR_LEN		10U

#define CC_CONTEXT_LOAD		0x161U
#define CC_CONTEXT_SAVE		0x162U
#define CC_FLUSH_CONTEXT	0x165U
#define CC_START_AUTH_SESSION	0x176U
#define CC_GET_CAPABILITY	0x17AU
#define CAP_HANDLES		0x00000001U

#define HT(h)		((h) >> 24)
#define HT_TRANSIENT	0x80U
#define HT_HMAC		0x02U
#define HT_POLICY	0x03U
#define IS_SESSION(h)	(HT(h) == HT_HMAC || HT(h) == HT_POLICY)
#define MAX_AUTH	3	/* sessions in one authorization area */
#define MAX_CAP_HANDLES	254	/* what fits in the TPM's capability buffer */

/* ---------- the command table (TPM 2.0 Part 3, each command's tables) ---------- */

/*
 * For each command: how many handles its handle area holds, and whether
 * its response starts with a handle. Codes missing here are refused with
 * TPM_RC_COMMAND_CODE: the RM cannot find the handles of a command it does
 * not know.
 */
static const struct rm_cc {
	uint16_t	cc;	/* low 16 bits; all codes are 0x0000_01xx */
	uint8_t		nh;
	uint8_t		rh;
} rm_cc_table[] = {
	{ 0x11F, 2, 0 },	/* NV_UndefineSpaceSpecial: nvIndex, platform */
	{ 0x120, 2, 0 },	/* EvictControl: auth, objectHandle */
	{ 0x121, 1, 0 },	/* HierarchyControl */
	{ 0x122, 2, 0 },	/* NV_UndefineSpace: auth, nvIndex */
	{ 0x124, 1, 0 },	/* ChangeEPS */
	{ 0x125, 1, 0 },	/* ChangePPS */
	{ 0x126, 1, 0 },	/* Clear */
	{ 0x127, 1, 0 },	/* ClearControl */
	{ 0x128, 1, 0 },	/* ClockSet */
	{ 0x129, 1, 0 },	/* HierarchyChangeAuth */
	{ 0x12A, 1, 0 },	/* NV_DefineSpace */
	{ 0x12B, 1, 0 },	/* PCR_Allocate */
	{ 0x12C, 1, 0 },	/* PCR_SetAuthPolicy */
	{ 0x12D, 1, 0 },	/* PP_Commands */
	{ 0x12E, 1, 0 },	/* SetPrimaryPolicy */
	{ 0x12F, 2, 0 },	/* FieldUpgradeStart: authorization, keyHandle */
	{ 0x130, 1, 0 },	/* ClockRateAdjust */
	{ 0x131, 1, 1 },	/* CreatePrimary: primaryHandle -> objectHandle */
	{ 0x132, 1, 0 },	/* NV_GlobalWriteLock */
	{ 0x133, 2, 0 },	/* GetCommandAuditDigest: privacyHandle, signHandle */
	{ 0x134, 2, 0 },	/* NV_Increment: auth, nvIndex */
	{ 0x135, 2, 0 },	/* NV_SetBits */
	{ 0x136, 2, 0 },	/* NV_Extend */
	{ 0x137, 2, 0 },	/* NV_Write */
	{ 0x138, 2, 0 },	/* NV_WriteLock */
	{ 0x139, 1, 0 },	/* DictionaryAttackLockReset */
	{ 0x13A, 1, 0 },	/* DictionaryAttackParameters */
	{ 0x13B, 1, 0 },	/* NV_ChangeAuth */
	{ 0x13C, 1, 0 },	/* PCR_Event */
	{ 0x13D, 1, 0 },	/* PCR_Reset */
	{ 0x13E, 1, 0 },	/* SequenceComplete: sequenceHandle */
	{ 0x13F, 1, 0 },	/* SetAlgorithmSet */
	{ 0x140, 1, 0 },	/* SetCommandCodeAuditStatus */
	{ 0x141, 0, 0 },	/* FieldUpgradeData */
	{ 0x142, 0, 0 },	/* IncrementalSelfTest */
	{ 0x143, 0, 0 },	/* SelfTest */
	{ 0x144, 0, 0 },	/* Startup */
	{ 0x145, 0, 0 },	/* Shutdown */
	{ 0x146, 0, 0 },	/* StirRandom */
	{ 0x147, 2, 0 },	/* ActivateCredential: activateHandle, keyHandle */
	{ 0x148, 2, 0 },	/* Certify: objectHandle, signHandle */
	{ 0x149, 3, 0 },	/* PolicyNV: authHandle, nvIndex, policySession */
	{ 0x14A, 2, 0 },	/* CertifyCreation: signHandle, objectHandle */
	{ 0x14B, 2, 0 },	/* Duplicate: objectHandle, newParentHandle */
	{ 0x14C, 2, 0 },	/* GetTime: privacyAdminHandle, signHandle */
	{ 0x14D, 3, 0 },	/* GetSessionAuditDigest: privacy, sign, session */
	{ 0x14E, 2, 0 },	/* NV_Read: authHandle, nvIndex */
	{ 0x14F, 2, 0 },	/* NV_ReadLock */
	{ 0x150, 2, 0 },	/* ObjectChangeAuth: objectHandle, parentHandle */
	{ 0x151, 2, 0 },	/* PolicySecret: authHandle, policySession */
	{ 0x152, 2, 0 },	/* Rewrap: oldParent, newParent */
	{ 0x153, 1, 0 },	/* Create: parentHandle */
	{ 0x154, 1, 0 },	/* ECDH_ZGen: keyHandle */
	{ 0x155, 1, 0 },	/* HMAC (and MAC): handle */
	{ 0x156, 1, 0 },	/* Import: parentHandle */
	{ 0x157, 1, 1 },	/* Load: parentHandle -> objectHandle */
	{ 0x158, 1, 0 },	/* Quote: signHandle */
	{ 0x159, 1, 0 },	/* RSA_Decrypt: keyHandle */
	{ 0x15B, 1, 1 },	/* HMAC_Start (and MAC_Start): handle -> sequenceHandle */
	{ 0x15C, 1, 0 },	/* SequenceUpdate: sequenceHandle */
	{ 0x15D, 1, 0 },	/* Sign: keyHandle */
	{ 0x15E, 1, 0 },	/* Unseal: itemHandle */
	{ 0x160, 2, 0 },	/* PolicySigned: authObject, policySession */
	{ 0x161, 0, 1 },	/* ContextLoad: -> loadedHandle */
	{ 0x162, 1, 0 },	/* ContextSave: saveHandle */
	{ 0x163, 1, 0 },	/* ECDH_KeyGen: keyHandle */
	{ 0x164, 1, 0 },	/* EncryptDecrypt: keyHandle */
	{ 0x165, 0, 0 },	/* FlushContext: the handle is a parameter */
	{ 0x167, 0, 1 },	/* LoadExternal: -> objectHandle */
	{ 0x168, 1, 0 },	/* MakeCredential: handle */
	{ 0x169, 1, 0 },	/* NV_ReadPublic: nvIndex */
	{ 0x16A, 1, 0 },	/* PolicyAuthorize: policySession */
	{ 0x16B, 1, 0 },	/* PolicyAuthValue */
	{ 0x16C, 1, 0 },	/* PolicyCommandCode */
	{ 0x16D, 1, 0 },	/* PolicyCounterTimer */
	{ 0x16E, 1, 0 },	/* PolicyCpHash */
	{ 0x16F, 1, 0 },	/* PolicyLocality */
	{ 0x170, 1, 0 },	/* PolicyNameHash */
	{ 0x171, 1, 0 },	/* PolicyOR */
	{ 0x172, 1, 0 },	/* PolicyTicket */
	{ 0x173, 1, 0 },	/* ReadPublic: objectHandle */
	{ 0x174, 1, 0 },	/* RSA_Encrypt: keyHandle */
	{ 0x176, 2, 1 },	/* StartAuthSession: tpmKey, bind -> sessionHandle */
	{ 0x177, 1, 0 },	/* VerifySignature: keyHandle */
	{ 0x178, 0, 0 },	/* ECC_Parameters */
	{ 0x179, 0, 0 },	/* FirmwareRead */
	{ 0x17A, 0, 0 },	/* GetCapability */
	{ 0x17B, 0, 0 },	/* GetRandom */
	{ 0x17C, 0, 0 },	/* GetTestResult */
	{ 0x17D, 0, 0 },	/* Hash */
	{ 0x17E, 0, 0 },	/* PCR_Read */
	{ 0x17F, 1, 0 },	/* PolicyPCR: policySession */
	{ 0x180, 1, 0 },	/* PolicyRestart: sessionHandle */
	{ 0x181, 0, 0 },	/* ReadClock */
	{ 0x182, 1, 0 },	/* PCR_Extend: pcrHandle */
	{ 0x183, 1, 0 },	/* PCR_SetAuthValue */
	{ 0x184, 3, 0 },	/* NV_Certify: signHandle, authHandle, nvIndex */
	{ 0x185, 2, 0 },	/* EventSequenceComplete: pcrHandle, sequenceHandle */
	{ 0x186, 0, 1 },	/* HashSequenceStart: -> sequenceHandle */
	{ 0x187, 1, 0 },	/* PolicyPhysicalPresence */
	{ 0x188, 1, 0 },	/* PolicyDuplicationSelect */
	{ 0x189, 1, 0 },	/* PolicyGetDigest */
	{ 0x18A, 0, 0 },	/* TestParms */
	{ 0x18B, 1, 0 },	/* Commit: signHandle */
	{ 0x18C, 1, 0 },	/* PolicyPassword */
	{ 0x18D, 1, 0 },	/* ZGen_2Phase: keyA */
	{ 0x18E, 0, 0 },	/* EC_Ephemeral */
	{ 0x18F, 1, 0 },	/* PolicyNvWritten */
	{ 0x190, 1, 0 },	/* PolicyTemplate */
	{ 0x191, 1, 1 },	/* CreateLoaded: parentHandle -> objectHandle */
	{ 0x192, 3, 0 },	/* PolicyAuthorizeNV: authHandle, nvIndex, policySession */
	{ 0x193, 1, 0 },	/* EncryptDecrypt2: keyHandle */
	{ 0x194, 1, 0 },	/* AC_GetCapability: ac */
	{ 0x195, 3, 0 },	/* AC_Send: sendObject, authHandle, ac */
	{ 0x196, 1, 0 },	/* Policy_AC_SendSelect: policySession */
	{ 0x197, 2, 0 },	/* CertifyX509: objectHandle, signHandle */
	{ 0x198, 1, 0 },	/* ACT_SetTimeout: actHandle */
	{ 0x199, 1, 0 },	/* ECC_Encrypt: keyHandle */
	{ 0x19A, 1, 0 },	/* ECC_Decrypt: keyHandle */
	{ 0x19B, 1, 0 },	/* PolicyCapability: policySession */
	{ 0x19C, 1, 0 },	/* PolicyParameters: policySession */
	{ 0x19D, 1, 0 },	/* NV_DefineSpace2: authHandle */
	{ 0x19E, 1, 0 },	/* NV_ReadPublic2: nvIndex */
	{ 0x19F, 1, 0 },	/* SetCapability: authHandle */
	{ 0x1A0, 1, 0 },	/* ReadOnlyControl: authHandle */
	{ 0x1A1, 1, 0 },	/* PolicyTransportSPDM: policySession */
};

int
rm_cc_info(uint32_t cc, unsigned *nh, unsigned *rh)
{
	size_t i;

	if ((cc & 0xFFFF0000U) != 0)
		return VTPM_E_NOTFOUND;
	for (i = 0; i < sizeof(rm_cc_table) / sizeof(rm_cc_table[0]); i++)
		if (rm_cc_table[i].cc == cc) {
			*nh = rm_cc_table[i].nh;
			*rh = rm_cc_table[i].rh;
			return 0;
		}
	return VTPM_E_NOTFOUND;
}

/* ---------- state ---------- */

struct rm_obj {
	uint32_t	 o_vh;		/* the client's handle; 0: slot free */
	int		 o_loaded;	/* in the TPM as o_real (else o_ctx holds it) */
	uint32_t	 o_real;
	uint8_t		*o_ctx;		/* TPMS_CONTEXT from ContextSave */
	size_t		 o_ctxlen;
};

enum rm_sess_state {
	SESS_FREE = 0,
	SESS_SAVED,	/* saved by the RM: s_ctx loads it */
	SESS_LOADED,	/* loaded in the TPM */
	SESS_CLIENT	/* the client saved it itself; only its blob loads it */
};

struct rm_sess {
	uint32_t	 s_h;		/* the TPM's handle (the client sees it too) */
	int		 s_state;
	uint8_t		*s_ctx;
	size_t		 s_ctxlen;
	uint64_t	 s_seq;		/* s_ctx's sequence: regap oldest first */
	int		 s_mark;
};

struct rm_conn {
	struct rm_obj	 c_obj[RM_MAX_OBJECTS];
	struct rm_sess	 c_sess[RM_MAX_SESSIONS];
	struct rm_conn	*c_next;
};

static struct {
	struct rm_conn	*conns;			/* every open connection */
	uint32_t	 orphans[RM_MAX_ORPHANS];	/* oldest first */
	int		 norphans;
	uint32_t	 pending[32];		/* flush when the TPM is back */
	int		 npending;
	uint8_t		 cmd[64];		/* the RM's own commands */
	uint8_t		 ctxcmd[RM_RSP_MAX];	/* ContextLoad */
	uint8_t		 rsp[RM_RSP_MAX];
	size_t		 rsplen;
	uint8_t		 work[RM_RSP_MAX];	/* the client's command, rewritten */
} R;

struct rm_io {
	rm_tpm_fn	 tpm;
	void		*arg;
};

static void
rm_error(uint8_t *rsp, size_t *rlen, uint32_t rc)
{
	be16_enc(rsp, ST_NO_SESSIONS);
	be32_enc(rsp + 2, HDR_LEN);
	be32_enc(rsp + 6, rc);
	*rlen = HDR_LEN;
}

/*
 * Runs cmd (len bytes) on the TPM; its response in R.rsp. Returns the
 * response code, or -1 if the TPM could not be reached.
 */
static long
rm_run(const struct rm_io *io, const uint8_t *cmd, size_t len)
{
	if (io->tpm(io->arg, cmd, len, R.rsp, sizeof(R.rsp), &R.rsplen) != 0)
		return -1;
	if (R.rsplen < HDR_LEN || be32_dec(R.rsp + 2) != R.rsplen)
		return -1;	/* the caller's function checks this too */
	return (long)be32_dec(R.rsp + 6);
}

/* FlushContext(h). */
static long
rm_flush(const struct rm_io *io, uint32_t h)
{
	be16_enc(R.cmd, ST_NO_SESSIONS);
	be32_enc(R.cmd + 2, HDR_LEN + 4);
	be32_enc(R.cmd + 6, CC_FLUSH_CONTEXT);
	be32_enc(R.cmd + 10, h);
	return rm_run(io, R.cmd, HDR_LEN + 4);
}

/* Flush, or remember to flush when the TPM is back. */
static void
rm_flush_or_defer(const struct rm_io *io, uint32_t h)
{
	if (rm_flush(io, h) >= 0)
		return;
	if (R.npending < (int)(sizeof(R.pending) / sizeof(R.pending[0])))
		R.pending[R.npending++] = h;
	else
		log_warnx("rm: cannot flush handle 0x%08x (TPM unreachable); it stays loaded", h);
}

/*
 * Checks that b (n bytes) is one TPMS_CONTEXT (sequence, savedHandle,
 * hierarchy, TPM2B contextBlob) and nothing else; its sequence in *seq.
 */
static int
rm_context_check(const uint8_t *b, size_t n, uint64_t *seq)
{
	struct cursor cur;
	uint32_t saved, hier;
	uint16_t sz;

	cur_init(&cur, b, n);
	if (cur_get_u64(&cur, seq) != 0 || cur_get_u32(&cur, &saved) != 0 ||
	    cur_get_u32(&cur, &hier) != 0 || cur_get_u16(&cur, &sz) != 0 ||
	    cur_skip(&cur, sz) != 0)
		return VTPM_E_FORMAT;
	return cur_end(&cur);
}

/*
 * ContextSave(h): on success a fresh copy of the context in *ctx (freed
 * by the caller) and its length. Returns the TPM's rc, -1 unreachable, or
 * RM_RC_FAILURE if the answer was malformed or memory ran out.
 */
static long
rm_save(const struct rm_io *io, uint32_t h, uint8_t **ctx, size_t *ctxlen, uint64_t *seq)
{
	long rc;

	be16_enc(R.cmd, ST_NO_SESSIONS);
	be32_enc(R.cmd + 2, HDR_LEN + 4);
	be32_enc(R.cmd + 6, CC_CONTEXT_SAVE);
	be32_enc(R.cmd + 10, h);
	if ((rc = rm_run(io, R.cmd, HDR_LEN + 4)) != 0)
		return rc;
	if (rm_context_check(R.rsp + HDR_LEN, R.rsplen - HDR_LEN, seq) != 0 ||
	    (*ctx = malloc(R.rsplen - HDR_LEN)) == NULL) {
		log_warnx("rm: ContextSave of 0x%08x: malformed answer or out of memory", h);
		return RM_RC_FAILURE;
	}
	*ctxlen = R.rsplen - HDR_LEN;
	memcpy(*ctx, R.rsp + HDR_LEN, *ctxlen);
	return 0;
}

/* ContextLoad(ctx): the TPM's handle in *h. Returns the rc or -1. */
static long
rm_load(const struct rm_io *io, const uint8_t *ctx, size_t ctxlen, uint32_t *h)
{
	long rc;

	if (ctxlen > sizeof(R.ctxcmd) - HDR_LEN)
		return RM_RC_FAILURE;
	be16_enc(R.ctxcmd, ST_NO_SESSIONS);
	be32_enc(R.ctxcmd + 2, (uint32_t)(HDR_LEN + ctxlen));
	be32_enc(R.ctxcmd + 6, CC_CONTEXT_LOAD);
	memcpy(R.ctxcmd + HDR_LEN, ctx, ctxlen);
	if ((rc = rm_run(io, R.ctxcmd, HDR_LEN + ctxlen)) != 0)
		return rc;
	if (R.rsplen < HDR_LEN + 4)
		return RM_RC_FAILURE;
	*h = be32_dec(R.rsp + HDR_LEN);
	return 0;
}

static void
rm_sess_free(struct rm_sess *s)
{
	free(s->s_ctx);
	memset(s, 0, sizeof(*s));
}

static void
rm_obj_free(struct rm_obj *o)
{
	free(o->o_ctx);
	memset(o, 0, sizeof(*o));
}

static struct rm_obj *
rm_obj_find(struct rm_conn *c, uint32_t vh)
{
	int i;

	for (i = 0; i < RM_MAX_OBJECTS; i++)
		if (c->c_obj[i].o_vh != 0 && c->c_obj[i].o_vh == vh)
			return &c->c_obj[i];
	return NULL;
}

static struct rm_sess *
rm_sess_find(struct rm_conn *c, uint32_t h)
{
	int i;

	for (i = 0; i < RM_MAX_SESSIONS; i++)
		if (c->c_sess[i].s_state != SESS_FREE && c->c_sess[i].s_h == h)
			return &c->c_sess[i];
	return NULL;
}

/* ---------- sessions: the context gap ---------- */

/*
 * The TPM numbers saved session contexts with a counter of limited width;
 * when the newest would catch up with the oldest still saved, it answers
 * TPM_RC_CONTEXT_GAP. Every session the RM holds saved is loaded and saved
 * again, oldest first, which moves them all to the front. Sessions whose
 * context a client holds cannot be refreshed: orphans are flushed.
 */
static int
rm_regap(const struct rm_io *io)
{
	struct rm_conn *c;
	struct rm_sess *s, *old;
	uint8_t *ctx;
	size_t ctxlen;
	uint32_t h;
	uint64_t seq;
	long rc;
	int i;

	log_warnx("rm: the TPM's context gap is full; refreshing saved sessions");
	for (c = R.conns; c != NULL; c = c->c_next)
		for (i = 0; i < RM_MAX_SESSIONS; i++)
			c->c_sess[i].s_mark = 0;
	for (;;) {
		old = NULL;
		for (c = R.conns; c != NULL; c = c->c_next)
			for (i = 0; i < RM_MAX_SESSIONS; i++) {
				s = &c->c_sess[i];
				if (s->s_state == SESS_SAVED && !s->s_mark &&
				    (old == NULL || s->s_seq < old->s_seq))
					old = s;
			}
		if (old == NULL)
			break;
		old->s_mark = 1;
		if ((rc = rm_load(io, old->s_ctx, old->s_ctxlen, &h)) < 0)
			return -1;
		if (rc != 0) {
			rm_flush_or_defer(io, old->s_h);
			rm_sess_free(old);
			continue;
		}
		if ((rc = rm_save(io, old->s_h, &ctx, &ctxlen, &seq)) < 0)
			return -1;
		if (rc != 0) {
			old->s_state = SESS_LOADED;	/* saved again after the next command */
			continue;
		}
		free(old->s_ctx);
		old->s_ctx = ctx;
		old->s_ctxlen = ctxlen;
		old->s_seq = seq;
	}
	for (i = 0; i < R.norphans; i++)
		rm_flush_or_defer(io, R.orphans[i]);
	R.norphans = 0;
	return 0;
}

/*
 * After a command: saves every object of c that is loaded and flushes it;
 * saves every session of c that is loaded. An object or session the TPM no
 * longer has (a completed sequence, a session without continueSession) is
 * forgotten. Returns -1 if the TPM could not be reached.
 */
static int
rm_put_back(const struct rm_io *io, struct rm_conn *c)
{
	struct rm_obj *o;
	struct rm_sess *s;
	uint8_t *ctx;
	size_t ctxlen;
	uint64_t seq;
	long rc;
	int i, regapped = 0;

	for (i = 0; i < RM_MAX_OBJECTS; i++) {
		o = &c->c_obj[i];
		if (o->o_vh == 0 || !o->o_loaded)
			continue;
		if ((rc = rm_save(io, o->o_real, &ctx, &ctxlen, &seq)) < 0)
			return -1;
		if (rc != 0) {
			if (rc != RM_RC_REFERENCE_H0) {
				log_warnx("rm: ContextSave of object 0x%08x failed "
				    "(0x%03lx); it is dropped", o->o_real, rc);
				rm_flush_or_defer(io, o->o_real);
			}
			rm_obj_free(o);
			continue;
		}
		if (rm_flush(io, o->o_real) < 0) {
			free(ctx);
			return -1;
		}
		free(o->o_ctx);
		o->o_ctx = ctx;
		o->o_ctxlen = ctxlen;
		o->o_loaded = 0;
		o->o_real = 0;
	}
	for (i = 0; i < RM_MAX_SESSIONS; i++) {
		s = &c->c_sess[i];
		if (s->s_state != SESS_LOADED)
			continue;
		rc = rm_save(io, s->s_h, &ctx, &ctxlen, &seq);
		if (rc == RM_RC_CONTEXT_GAP && !regapped) {
			regapped = 1;
			if (rm_regap(io) < 0)
				return -1;
			rc = rm_save(io, s->s_h, &ctx, &ctxlen, &seq);
		}
		if (rc < 0)
			return -1;
		if (rc != 0) {
			if (rc != RM_RC_REFERENCE_H0) {
				log_warnx("rm: ContextSave of session 0x%08x failed "
				    "(0x%03lx); it is flushed", s->s_h, rc);
				rm_flush_or_defer(io, s->s_h);
			}
			rm_sess_free(s);
			continue;
		}
		free(s->s_ctx);
		s->s_ctx = ctx;
		s->s_ctxlen = ctxlen;
		s->s_seq = seq;
		s->s_state = SESS_SAVED;
	}
	return 0;
}

/* ---------- parsing a client's command ---------- */

struct rm_cmd {
	uint16_t	tag;
	uint32_t	cc;
	unsigned	nh, rh;
	uint32_t	h[3];		/* handle area, at offset 10 */
	unsigned	ns;
	uint32_t	sh[MAX_AUTH];	/* authorization session handles */
	size_t		soff[MAX_AUTH];	/* and where they are */
	size_t		poff;		/* where the parameters start */
};

/*
 * Parses the handle and authorization areas of a command (len bytes, the
 * header's size already checked). Returns 0, or the TPM response code to
 * answer with.
 */
static uint32_t
rm_parse(const uint8_t *cmd, size_t len, struct rm_cmd *p)
{
	struct cursor cur, auth;
	const uint8_t *ab;
	uint32_t asize, sh, sz;
	uint16_t n16;
	uint8_t attr;
	unsigned i;

	memset(p, 0, sizeof(*p));
	cur_init(&cur, cmd, len);
	if (cur_get_u16(&cur, &p->tag) != 0 || cur_get_u32(&cur, &sz) != 0 ||
	    cur_get_u32(&cur, &p->cc) != 0)
		return RM_RC_INSUFFICIENT;
	if (p->tag != ST_NO_SESSIONS && p->tag != ST_SESSIONS)
		return RM_RC_BAD_TAG;
	if (rm_cc_info(p->cc, &p->nh, &p->rh) != 0)
		return RM_RC_COMMAND_CODE;
	for (i = 0; i < p->nh; i++)
		if (cur_get_u32(&cur, &p->h[i]) != 0)
			return RM_RC_INSUFFICIENT;
	if (p->tag == ST_SESSIONS) {
		if (cur_get_u32(&cur, &asize) != 0 || asize > cur_left(&cur) ||
		    cur_get_ref(&cur, &ab, asize) != 0)
			return RM_RC_AUTHSIZE;
		cur_init(&auth, ab, asize);
		while (cur_left(&auth) > 0) {
			if (p->ns == MAX_AUTH)
				return RM_RC_AUTHSIZE;
			p->soff[p->ns] = (size_t)(ab - cmd) + (asize - cur_left(&auth));
			if (cur_get_u32(&auth, &sh) != 0 ||
			    cur_get_u16(&auth, &n16) != 0 || cur_skip(&auth, n16) != 0 ||
			    cur_get_u8(&auth, &attr) != 0 ||
			    cur_get_u16(&auth, &n16) != 0 || cur_skip(&auth, n16) != 0)
				return RM_RC_AUTHSIZE;
			p->sh[p->ns++] = sh;
		}
		if (p->ns == 0)
			return RM_RC_AUTHSIZE;
	}
	p->poff = len - cur_left(&cur);
	return 0;
}

/* ---------- the commands the RM answers or changes ---------- */

/* FlushContext: the handle is a parameter, exactly 4 bytes of them. */
static int
rm_flush_context(struct rm_conn *c, const struct rm_io *io, const struct rm_cmd *p,
    const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap, size_t *rlen)
{
	struct rm_obj *o;
	struct rm_sess *s;
	uint32_t h;

	if (p->tag != ST_NO_SESSIONS || len != p->poff + 4)
		goto forward;	/* the TPM refuses it, with its own code */
	h = be32_dec(cmd + p->poff);
	if (HT(h) == HT_TRANSIENT) {
		if ((o = rm_obj_find(c, h)) == NULL) {
			rm_error(rsp, rlen, RM_RC_HANDLE | RM_RC_P | 0x100);
			return 0;
		}
		if (o->o_loaded)
			rm_flush_or_defer(io, o->o_real);
		rm_obj_free(o);
		rm_error(rsp, rlen, RM_RC_SUCCESS);
		return 0;
	}
	if (IS_SESSION(h)) {
		if ((s = rm_sess_find(c, h)) == NULL) {
			rm_error(rsp, rlen, RM_RC_HANDLE | RM_RC_P | 0x100);
			return 0;
		}
		if (io->tpm(io->arg, cmd, len, rsp, cap, rlen) != 0)
			return -1;
		rm_sess_free(s);
		return 0;
	}
forward:
	return io->tpm(io->arg, cmd, len, rsp, cap, rlen) != 0 ? -1 : 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * GetCapability(TPM_CAP_HANDLES) for transient objects and sessions: the
 * client's own handles only. Returns 1 if answered, 0 if it is another
 * query (the TPM answers it).
 */
static int
rm_get_handles(struct rm_conn *c, const struct rm_cmd *p, const uint8_t *cmd,
    size_t len, uint8_t *rsp, size_t *rlen)
{
	struct cursor cur;
	struct wbuf w;
	uint32_t capability, prop, count, list[RM_MAX_OBJECTS + RM_MAX_SESSIONS];
	size_t n = 0, i, out;
	int k;

	cur_init(&cur, cmd + p->poff, len - p->poff);
	if (cur_get_u32(&cur, &capability) != 0 || cur_get_u32(&cur, &prop) != 0 ||
	    cur_get_u32(&cur, &count) != 0 || cur_end(&cur) != 0 ||
	    capability != CAP_HANDLES ||
	    (HT(prop) != HT_TRANSIENT && !IS_SESSION(prop)))
		return 0;
	if (p->tag != ST_NO_SESSIONS) {
		/* an audit session would need an answer the TPM signed */
		rm_error(rsp, rlen, RM_RC_AUTH_CONTEXT);
		return 1;
	}
	if (HT(prop) == HT_TRANSIENT) {
		for (k = 0; k < RM_MAX_OBJECTS; k++)
			if (c->c_obj[k].o_vh != 0 && c->c_obj[k].o_vh >= prop)
				list[n++] = c->c_obj[k].o_vh;
	} else {
		/* 0x02: the sessions it can use; 0x03: those it saved itself */
		for (k = 0; k < RM_MAX_SESSIONS; k++) {
			const struct rm_sess *s = &c->c_sess[k];

			if (s->s_state == SESS_FREE ||
			    (s->s_state == SESS_CLIENT) != (HT(prop) == HT_POLICY) ||
			    (s->s_h & 0xFFFFFFU) < (prop & 0xFFFFFFU))
				continue;
			list[n++] = s->s_h;
		}
	}
	qsort(list, n, sizeof(list[0]), cmp_u32);
	out = n < count ? n : count;
	if (out > MAX_CAP_HANDLES)
		out = MAX_CAP_HANDLES;
	wbuf_init(&w, rsp, RM_RSP_MAX);
	wbuf_put_u16(&w, ST_NO_SESSIONS);
	wbuf_put_u32(&w, (uint32_t)(HDR_LEN + 1 + 4 + 4 + 4 * out));
	wbuf_put_u32(&w, RM_RC_SUCCESS);
	wbuf_put_u8(&w, out < n);	/* moreData */
	wbuf_put_u32(&w, CAP_HANDLES);
	wbuf_put_u32(&w, (uint32_t)out);
	for (i = 0; i < out; i++)
		wbuf_put_u32(&w, list[i]);
	if (wbuf_end(&w, rlen) != 0)
		fatalx("rm: capability answer overflow");
	return 1;
}

/* ---------- one client command ---------- */

/* The response's new handle (rh): the object or session becomes c's. */
static uint32_t
rm_adopt(struct rm_conn *c, const struct rm_io *io, uint8_t *rsp, size_t rlen)
{
	struct rm_conn *o;
	struct rm_sess *s = NULL;
	uint32_t h;
	int i;

	if (rlen < HDR_LEN + 4)
		return RM_RC_FAILURE;
	h = be32_dec(rsp + HDR_LEN);
	if (HT(h) == HT_TRANSIENT) {
		for (i = 0; i < RM_MAX_OBJECTS && c->c_obj[i].o_vh != 0; i++)
			;
		if (i == RM_MAX_OBJECTS) {
			rm_flush_or_defer(io, h);
			return RM_RC_OBJECT_MEMORY;
		}
		c->c_obj[i].o_vh = (HT_TRANSIENT << 24) | (uint32_t)i;
		c->c_obj[i].o_loaded = 1;
		c->c_obj[i].o_real = h;
		be32_enc(rsp + HDR_LEN, c->c_obj[i].o_vh);
		return 0;
	}
	if (!IS_SESSION(h))
		return 0;
	/* a session context loaded by its blob: whoever held it lets go */
	for (o = R.conns; o != NULL; o = o->c_next)
		if ((s = rm_sess_find(o, h)) != NULL) {
			rm_sess_free(s);
			break;
		}
	for (i = 0; i < R.norphans; i++)
		if (R.orphans[i] == h) {
			memmove(&R.orphans[i], &R.orphans[i + 1],
			    (size_t)(R.norphans - i - 1) * sizeof(R.orphans[0]));
			R.norphans--;
			break;
		}
	for (i = 0; i < RM_MAX_SESSIONS && c->c_sess[i].s_state != SESS_FREE; i++)
		;
	if (i == RM_MAX_SESSIONS) {
		rm_flush_or_defer(io, h);
		return RM_RC_SESSION_HANDLES;
	}
	c->c_sess[i].s_h = h;
	c->c_sess[i].s_state = SESS_LOADED;
	return 0;
}

/* Loads what the command names; writes the TPM's handles into R.work. */
static long
rm_bring_in(struct rm_conn *c, const struct rm_io *io, const struct rm_cmd *p)
{
	struct rm_obj *o;
	struct rm_sess *s;
	uint32_t h;
	unsigned i;
	long rc;

	for (i = 0; i < p->nh; i++) {
		if (HT(p->h[i]) == HT_TRANSIENT) {
			o = rm_obj_find(c, p->h[i]);
			if (!o->o_loaded) {
				if ((rc = rm_load(io, o->o_ctx, o->o_ctxlen, &h)) != 0)
					return rc;
				o->o_loaded = 1;
				o->o_real = h;
			}
			be32_enc(R.work + HDR_LEN + 4 * i, o->o_real);
		} else if (IS_SESSION(p->h[i])) {
			s = rm_sess_find(c, p->h[i]);
			if (s->s_state == SESS_SAVED) {
				if ((rc = rm_load(io, s->s_ctx, s->s_ctxlen, &h)) != 0)
					return rc;
				s->s_state = SESS_LOADED;
			}
		}
	}
	for (i = 0; i < p->ns; i++) {
		if (!IS_SESSION(p->sh[i]))
			continue;
		s = rm_sess_find(c, p->sh[i]);
		if (s->s_state == SESS_SAVED) {
			if ((rc = rm_load(io, s->s_ctx, s->s_ctxlen, &h)) != 0)
				return rc;
			s->s_state = SESS_LOADED;
		}
	}
	return 0;
}

static void
rm_flush_pending(const struct rm_io *io)
{
	int n = R.npending, i;

	R.npending = 0;
	for (i = 0; i < n; i++)
		rm_flush_or_defer(io, R.pending[i]);
}

int
rm_command(struct rm_conn *c, const uint8_t *cmd, size_t len, uint8_t *rsp,
    size_t cap, size_t *rlen, rm_tpm_fn tpm, void *arg)
{
	struct rm_io io = { tpm, arg };
	struct rm_cmd p;
	struct rm_sess *s;
	uint32_t rc;
	long lrc;
	unsigned i;
	int resent = 0;

	if (len < HDR_LEN || len > sizeof(R.work) || cap < RM_RSP_MAX)
		fatalx("rm_command: unchecked command");
	rm_flush_pending(&io);
	if ((rc = rm_parse(cmd, len, &p)) != 0) {
		rm_error(rsp, rlen, rc);
		return 0;
	}
	/* the client may name only its own objects and sessions */
	for (i = 0; i < p.nh; i++)
		if ((HT(p.h[i]) == HT_TRANSIENT && rm_obj_find(c, p.h[i]) == NULL) ||
		    (IS_SESSION(p.h[i]) && rm_sess_find(c, p.h[i]) == NULL)) {
			rm_error(rsp, rlen, RM_RC_HANDLE | (i + 1) << 8);
			return 0;
		}
	for (i = 0; i < p.ns; i++)
		if (IS_SESSION(p.sh[i]) && rm_sess_find(c, p.sh[i]) == NULL) {
			rm_error(rsp, rlen, RM_RC_HANDLE | RM_RC_S | (i + 1) << 8);
			return 0;
		}
	if (p.cc == CC_FLUSH_CONTEXT)
		return rm_flush_context(c, &io, &p, cmd, len, rsp, cap, rlen);
	if (p.cc == CC_GET_CAPABILITY && rm_get_handles(c, &p, cmd, len, rsp, rlen))
		return 0;

	memcpy(R.work, cmd, len);
	if ((lrc = rm_bring_in(c, &io, &p)) != 0) {
		if (lrc < 0)
			return -1;
		/* put back what was loaded; the client gets the TPM's answer */
		if (rm_put_back(&io, c) < 0)
			return -1;
		rm_error(rsp, rlen, (uint32_t)lrc);
		return 0;
	}
again:
	if (tpm(arg, R.work, len, rsp, cap, rlen) != 0) {
		(void)rm_put_back(&io, c);
		return -1;
	}
	rc = be32_dec(rsp + 6);
	if (rc == RM_RC_CONTEXT_GAP && p.cc == CC_START_AUTH_SESSION && !resent) {
		resent = 1;	/* nothing was created: make room and try once more */
		if (rm_regap(&io) < 0)
			return -1;
		goto again;
	}
	if (rc == RM_RC_SUCCESS && p.cc == CC_CONTEXT_SAVE && IS_SESSION(p.h[0]) &&
	    (s = rm_sess_find(c, p.h[0])) != NULL) {
		/* the client's blob is now the only way to load it */
		free(s->s_ctx);
		s->s_ctx = NULL;
		s->s_ctxlen = 0;
		s->s_state = SESS_CLIENT;
	}
	if (rc == RM_RC_SUCCESS && p.rh == 1 && (rc = rm_adopt(c, &io, rsp, *rlen)) != 0)
		rm_error(rsp, rlen, rc);
	if (rm_put_back(&io, c) < 0)
		return -1;
	return 0;
}

/* ---------- connections ---------- */

struct rm_conn *
rm_conn_new(void)
{
	struct rm_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->c_next = R.conns;
	R.conns = c;
	return c;
}

void
rm_conn_close(struct rm_conn *c, rm_tpm_fn tpm, void *arg)
{
	struct rm_io io = { tpm, arg };
	struct rm_conn **pp;
	struct rm_sess *s;
	int i;

	if (c == NULL)
		return;
	for (pp = &R.conns; *pp != NULL && *pp != c; pp = &(*pp)->c_next)
		;
	if (*pp == c)
		*pp = c->c_next;
	for (i = 0; i < RM_MAX_OBJECTS; i++) {
		if (c->c_obj[i].o_vh != 0 && c->c_obj[i].o_loaded)
			rm_flush_or_defer(&io, c->c_obj[i].o_real);
		rm_obj_free(&c->c_obj[i]);
	}
	for (i = 0; i < RM_MAX_SESSIONS; i++) {
		s = &c->c_sess[i];
		if (s->s_state == SESS_CLIENT) {
			/* its context is in the client's hands (a file, most
			 * likely): another client may load it */
			if (R.norphans == RM_MAX_ORPHANS) {
				rm_flush_or_defer(&io, R.orphans[0]);
				memmove(&R.orphans[0], &R.orphans[1],
				    (RM_MAX_ORPHANS - 1) * sizeof(R.orphans[0]));
				R.norphans--;
			}
			R.orphans[R.norphans++] = s->s_h;
		} else if (s->s_state != SESS_FREE) {
			rm_flush_or_defer(&io, s->s_h);
		}
		rm_sess_free(s);
	}
	free(c);
}

int
rm_conn_objects(const struct rm_conn *c)
{
	int i, n = 0;

	for (i = 0; i < RM_MAX_OBJECTS; i++)
		n += c->c_obj[i].o_vh != 0;
	return n;
}

int
rm_conn_sessions(const struct rm_conn *c)
{
	int i, n = 0;

	for (i = 0; i < RM_MAX_SESSIONS; i++)
		n += c->c_sess[i].s_state != SESS_FREE;
	return n;
}
