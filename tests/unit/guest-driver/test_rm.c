/*
 * test_rm.c: the local socket's resource manager (guest-driver/rm.c)
 * against a small fake TPM that, like a real one, holds 3 transient objects
 * and 3 loaded sessions, and answers ContextSave / ContextLoad /
 * FlushContext. Known answers for the command table (TPM 2.0 Part 3), the
 * handle rewriting, isolation between two connections, what a closed
 * connection leaves behind, the context-gap refresh, and malformed input.
 */
#include <stdio.h>
#include <string.h>

#include "cursor.h"
#include "rm.h"

static int passed, failed;

static void
ok(int cond, const char *what)
{
	if (cond) {
		passed++;
		printf("ok   - %s\n", what);
	} else {
		failed++;
		printf("FAIL - %s\n", what);
	}
}

/* ---------- the fake TPM ---------- */

#define F_OBJ	3
#define F_SESS	16

static struct {
	uint32_t	obj[F_OBJ];	/* object id loaded in slot i (0: free) */
	uint32_t	next_id;
	struct { uint32_t h; int loaded; uint64_t seq; } sess[F_SESS];
	uint32_t	next_sess;
	uint64_t	seq;
	int		max_loaded;	/* most objects ever loaded at once */
	int		unreachable;	/* answer -1 */
	int		gap_once;	/* next session ContextSave: CONTEXT_GAP */
	int		ncmds;
} F;

static int
f_loaded(void)
{
	int i, n = 0;

	for (i = 0; i < F_OBJ; i++)
		n += F.obj[i] != 0;
	return n;
}

static int
f_sessions(void)
{
	int i, n = 0;

	for (i = 0; i < F_SESS; i++)
		n += F.sess[i].h != 0;
	return n;
}

static int
f_sess_find(uint32_t h)
{
	int i;

	for (i = 0; i < F_SESS; i++)
		if (F.sess[i].h != 0 && F.sess[i].h == h)
			return i;
	return -1;
}

static size_t
f_rsp(uint8_t *rsp, uint32_t rc, const uint8_t *body, size_t n)
{
	be16_enc(rsp, 0x8001);
	be32_enc(rsp + 2, (uint32_t)(10 + n));
	be32_enc(rsp + 6, rc);
	if (n > 0)
		memcpy(rsp + 10, body, n);
	return 10 + n;
}

/* a new object in a free slot: its handle in *h, or 0 */
static uint32_t
f_new_obj(uint32_t id, uint32_t *h)
{
	int i;

	for (i = 0; i < F_OBJ && F.obj[i] != 0; i++)
		;
	if (i == F_OBJ)
		return RM_RC_OBJECT_MEMORY;
	F.obj[i] = id;
	*h = 0x80000000U | (uint32_t)i;
	if (f_loaded() > F.max_loaded)
		F.max_loaded = f_loaded();
	return 0;
}

static int
f_obj_ok(uint32_t h)
{
	return (h >> 24) == 0x80 && (h & 0xffffff) < F_OBJ && F.obj[h & 0xffffff] != 0;
}

static int
fake_tpm(void *arg, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap, size_t *rlen)
{
	uint32_t cc = be32_dec(cmd + 6), h = len >= 14 ? be32_dec(cmd + 10) : 0, nh, rc = 0;
	uint8_t body[32];
	int i;

	(void)arg;
	(void)cap;
	F.ncmds++;
	if (F.unreachable)
		return -1;
	/* authorization sessions must be loaded (the table finds the area) */
	if (be16_dec(cmd) == 0x8002) {
		unsigned nhandles = 0, rh;
		size_t off;
		uint32_t sh;

		if (rm_cc_info(cc, &nhandles, &rh) != 0)
			nhandles = 0;
		off = 10 + 4 * (size_t)nhandles + 4;
		sh = off + 4 <= len ? be32_dec(cmd + off) : 0;
		if ((sh >> 24) == 2 && ((i = f_sess_find(sh)) < 0 || !F.sess[i].loaded)) {
			*rlen = f_rsp(rsp, 0x920 /* REFERENCE_S0 */, NULL, 0);
			return 0;
		}
	}
	switch (cc) {
	case 0x131:	/* CreatePrimary */
	case 0x186:	/* HashSequenceStart */
		if ((rc = f_new_obj(++F.next_id | (cc == 0x186 ? 0x8000 : 0), &nh)) == 0) {
			be32_enc(body, nh);
			*rlen = f_rsp(rsp, 0, body, 4);
			return 0;
		}
		break;
	case 0x157:	/* Load: parent must be loaded */
		if (!f_obj_ok(h) && h != 0x40000001) {
			rc = RM_RC_HANDLE | 0x100;
			break;
		}
		if ((rc = f_new_obj(++F.next_id, &nh)) == 0) {
			be32_enc(body, nh);
			*rlen = f_rsp(rsp, 0, body, 4);
			return 0;
		}
		break;
	case 0x173:	/* ReadPublic: the object's id as its "public area" */
		if (!f_obj_ok(h)) {
			rc = RM_RC_REFERENCE_H0;
			break;
		}
		be32_enc(body, F.obj[h & 0xffffff]);
		*rlen = f_rsp(rsp, 0, body, 4);
		return 0;
	case 0x13E:	/* SequenceComplete: flushes the sequence */
		if (!f_obj_ok(h)) {
			rc = RM_RC_REFERENCE_H0;
			break;
		}
		F.obj[h & 0xffffff] = 0;
		break;
	case 0x176:	/* StartAuthSession */
		for (i = 0; i < F_SESS && F.sess[i].h != 0; i++)
			;
		F.sess[i].h = 0x02000000U | ++F.next_sess;
		F.sess[i].loaded = 1;
		be32_enc(body, F.sess[i].h);
		*rlen = f_rsp(rsp, 0, body, 4);
		return 0;
	case 0x162:	/* ContextSave: sequence, savedHandle, hierarchy, blob = id */
		memset(body, 0, sizeof(body));
		if (f_obj_ok(h)) {
			be64_enc(body, ++F.seq);
			be32_enc(body + 8, 0x80000000U);
			be16_enc(body + 16, 4);
			be32_enc(body + 18, F.obj[h & 0xffffff]);
		} else if ((i = f_sess_find(h)) >= 0 && F.sess[i].loaded) {
			if (F.gap_once) {
				F.gap_once = 0;
				rc = RM_RC_CONTEXT_GAP;
				break;
			}
			F.sess[i].loaded = 0;
			F.sess[i].seq = ++F.seq;
			be64_enc(body, F.seq);
			be32_enc(body + 8, h);
			be16_enc(body + 16, 4);
			be32_enc(body + 18, h);
		} else {
			rc = RM_RC_REFERENCE_H0;
			break;
		}
		*rlen = f_rsp(rsp, 0, body, 22);
		return 0;
	case 0x161:	/* ContextLoad */
		if (len != 32) {
			rc = 0x1d5;
			break;
		}
		if ((be32_dec(cmd + 18) >> 24) == 0x80) {
			if ((rc = f_new_obj(be32_dec(cmd + 28), &nh)) != 0)
				break;
		} else if ((i = f_sess_find(be32_dec(cmd + 28))) >= 0 && !F.sess[i].loaded &&
		    F.sess[i].seq == be64_dec(cmd + 10)) {
			F.sess[i].loaded = 1;
			nh = F.sess[i].h;
		} else {
			rc = 0x922;	/* TPM_RC_INTEGRITY-ish: stale or forged */
			break;
		}
		be32_enc(body, nh);
		*rlen = f_rsp(rsp, 0, body, 4);
		return 0;
	case 0x165:	/* FlushContext */
		if (f_obj_ok(h))
			F.obj[h & 0xffffff] = 0;
		else if ((i = f_sess_find(h)) >= 0)
			F.sess[i].h = 0;
		else
			rc = RM_RC_HANDLE | RM_RC_P | 0x100;
		break;
	default:
		break;
	}
	*rlen = f_rsp(rsp, rc, NULL, 0);
	return 0;
}

/* ---------- helpers ---------- */

static uint8_t rsp[RM_RSP_MAX];
static size_t rlen;

static size_t
mk(uint8_t *out, uint16_t tag, uint32_t cc, const uint8_t *body, size_t n)
{
	be16_enc(out, tag);
	be32_enc(out + 2, (uint32_t)(10 + n));
	be32_enc(out + 6, cc);
	if (n > 0)
		memcpy(out + 10, body, n);
	return 10 + n;
}

/* runs a command on c; returns its response code (or 0xffffffff: unreachable) */
static uint32_t
run(struct rm_conn *c, uint16_t tag, uint32_t cc, const uint8_t *body, size_t n)
{
	uint8_t cmd[512];
	size_t len = mk(cmd, tag, cc, body, n);

	if (rm_command(c, cmd, len, rsp, sizeof(rsp), &rlen, fake_tpm, NULL) != 0)
		return 0xffffffffU;
	if (rlen < 10 || be32_dec(rsp + 2) != rlen)
		return 0xfffffffeU;
	return be32_dec(rsp + 6);
}

static uint32_t
run_h(struct rm_conn *c, uint32_t cc, uint32_t h)
{
	uint8_t b[4];

	be32_enc(b, h);
	return run(c, 0x8001, cc, b, 4);
}

/* CreatePrimary(owner) with a password session: the new (virtual) handle */
static uint32_t
primary(struct rm_conn *c)
{
	static const uint8_t b[] = { 0x40, 0, 0, 1, 0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 0, 0, 0 };

	if (run(c, 0x8002, 0x131, b, sizeof(b)) != 0)
		return 0;
	return be32_dec(rsp + 10);
}

static uint32_t
session(struct rm_conn *c)
{
	static const uint8_t b[] = { 0x40, 0, 0, 7, 0x40, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0x10, 0, 0xb };

	if (run(c, 0x8001, 0x176, b, sizeof(b)) != 0)
		return 0;
	return be32_dec(rsp + 10);
}

/* SequenceUpdate(seq) authorised by session s */
static uint32_t
seq_update(struct rm_conn *c, uint32_t seqh, uint32_t s)
{
	uint8_t b[4 + 4 + 9 + 2];

	be32_enc(b, seqh);
	be32_enc(b + 4, 9);
	be32_enc(b + 8, s);
	memset(b + 12, 0, 7);
	b[14] = 1;
	return run(c, 0x8002, 0x15C, b, sizeof(b));
}

/* GetCapability(HANDLES, prop, 64): the handles, their number returned */
static int
getcap(struct rm_conn *c, uint32_t prop, uint32_t *out)
{
	uint8_t b[12];
	uint32_t n, i;

	be32_enc(b, 1);
	be32_enc(b + 4, prop);
	be32_enc(b + 8, 64);
	if (run(c, 0x8001, 0x17A, b, 12) != 0 || rlen < 19)
		return -1;
	n = be32_dec(rsp + 15);
	if (rlen != 19 + 4 * n)
		return -1;
	for (i = 0; i < n; i++)
		out[i] = be32_dec(rsp + 19 + 4 * i);
	return (int)n;
}

int
main(void)
{
	struct rm_conn *a, *b;
	uint32_t ha[5], hb, s, q, list[64], id0;
	unsigned nh, rh;
	int i, n, all;

	/* the table: known answers from TPM 2.0 Part 3 */
	ok(rm_cc_info(0x157, &nh, &rh) == 0 && nh == 1 && rh == 1, "Load: 1 handle, returns one");
	ok(rm_cc_info(0x131, &nh, &rh) == 0 && nh == 1 && rh == 1, "CreatePrimary: 1, 1");
	ok(rm_cc_info(0x176, &nh, &rh) == 0 && nh == 2 && rh == 1, "StartAuthSession: 2, 1");
	ok(rm_cc_info(0x161, &nh, &rh) == 0 && nh == 0 && rh == 1, "ContextLoad: 0, 1");
	ok(rm_cc_info(0x165, &nh, &rh) == 0 && nh == 0 && rh == 0, "FlushContext: 0 (its handle is a parameter)");
	ok(rm_cc_info(0x14B, &nh, &rh) == 0 && nh == 2 && rh == 0, "Duplicate: 2, 0");
	ok(rm_cc_info(0x184, &nh, &rh) == 0 && nh == 3 && rh == 0, "NV_Certify: 3, 0");
	ok(rm_cc_info(0x185, &nh, &rh) == 0 && nh == 2 && rh == 0, "EventSequenceComplete: 2, 0");
	ok(rm_cc_info(0x186, &nh, &rh) == 0 && nh == 0 && rh == 1, "HashSequenceStart: 0, 1");
	ok(rm_cc_info(0x17A, &nh, &rh) == 0 && nh == 0 && rh == 0, "GetCapability: 0, 0");
	ok(rm_cc_info(0x123, &nh, &rh) != 0, "0x123 (no such command): unknown");
	ok(rm_cc_info(0x20000000, &nh, &rh) != 0, "vendor codes: unknown");
	for (i = 0x11F, all = 1; i <= 0x1A1; i++)
		if (rm_cc_info((uint32_t)i, &nh, &rh) == 0 && (nh > 3 || rh > 1))
			all = 0;
	ok(all, "every entry: at most 3 handles, at most 1 in the response");

	/* two connections, five objects each: more than the TPM's 3 slots */
	a = rm_conn_new();
	b = rm_conn_new();
	for (i = 0; i < 5; i++)
		ha[i] = primary(a);
	ok(ha[0] == 0x80000000U && ha[4] == 0x80000004U, "A's objects: virtual 0x80000000..4");
	ok(f_loaded() == 0, "between commands nothing of A's is loaded in the TPM");
	ok(F.max_loaded <= 3, "the TPM never held more than 3 objects");
	hb = primary(b);
	ok(hb == 0x80000000U, "B's first object is 0x80000000 as well (its own)");
	ok(run_h(a, 0x173, ha[4]) == 0, "A: ReadPublic(its 0x80000004) succeeds");
	id0 = be32_dec(rsp + 10);
	ok(run_h(b, 0x173, hb) == 0 && be32_dec(rsp + 10) != id0 &&
	    run_h(a, 0x173, 0x80000000U) == 0 && be32_dec(rsp + 10) != id0,
	    "A's and B's 0x80000000 are different objects");
	ok(run_h(b, 0x173, 0x80000004U) == (RM_RC_HANDLE | 0x100),
	    "B: ReadPublic(A's 0x80000004) is TPM_RC_HANDLE + handle 1");
	ok(run_h(b, 0x165, 0x80000004U) == (RM_RC_HANDLE | RM_RC_P | 0x100),
	    "B: FlushContext(A's 0x80000004) is TPM_RC_HANDLE + parameter 1");
	ok(rm_conn_objects(a) == 5, "... and A still has all 5");
	ok(getcap(a, 0x80000000U, list) == 5 && list[0] == 0x80000000U && list[4] == 0x80000004U,
	    "A: GetCapability(transient handles) lists its 5");
	ok(getcap(b, 0x80000000U, list) == 1 && list[0] == 0x80000000U,
	    "B: GetCapability(transient handles) lists its 1");
	ok(getcap(a, 0x80000003U, list) == 2, "A: from 0x80000003 on: 2");

	/* Load under a parent: the parent is brought in and translated */
	{
		uint8_t lb[4 + 4 + 9];

		be32_enc(lb, ha[2]);
		be32_enc(lb + 4, 9);
		be32_enc(lb + 8, 0x40000009);
		memset(lb + 12, 0, 5);
		ok(run(a, 0x8002, 0x157, lb, sizeof(lb)) == 0 && be32_dec(rsp + 10) == 0x80000005U,
		    "A: Load under its 0x80000002 gives 0x80000005");
	}
	ok(run_h(a, 0x165, 0x80000005U) == 0 && rm_conn_objects(a) == 5,
	    "A: FlushContext(0x80000005) forgets it");

	/* a sequence completed by the TPM is forgotten */
	ok(run(a, 0x8001, 0x186, (const uint8_t *)"\0\0\0\x0b", 4) == 0, "A: HashSequenceStart");
	q = be32_dec(rsp + 10);
	ok(run_h(a, 0x13E, q) == 0 && rm_conn_objects(a) == 5,
	    "A: SequenceComplete flushes the sequence; the RM forgets it");

	/* sessions: saved between commands, usable only by their owner */
	s = session(a);
	ok((s >> 24) == 2, "A: StartAuthSession gives a session handle");
	ok(F.sess[f_sess_find(s)].loaded == 0, "... saved (not loaded) between commands");
	ok(run(a, 0x8001, 0x186, (const uint8_t *)"\0\0\0\x0b", 4) == 0, "A: another sequence");
	q = be32_dec(rsp + 10);
	ok(seq_update(a, q, s) == 0, "A: SequenceUpdate authorised by its session (loaded for it)");
	ok(seq_update(b, hb, s) == (RM_RC_HANDLE | RM_RC_S | 0x100),
	    "B: A's session in its authorization area is TPM_RC_HANDLE + session 1");
	ok(run_h(b, 0x180, s) == (RM_RC_HANDLE | 0x100), "B: A's session in its handle area: handle 1");
	ok(getcap(a, 0x02000000U, list) == 1 && list[0] == s, "A: GetCapability(loaded sessions): its one");
	ok(getcap(b, 0x02000000U, list) == 0, "B: none");

	/* the context gap: saved sessions are refreshed, and the save retried */
	F.gap_once = 1;
	ok(seq_update(a, q, s) == 0 && F.sess[f_sess_find(s)].loaded == 0 && F.gap_once == 0,
	    "TPM_RC_CONTEXT_GAP on saving the session: refreshed, saved again");

	/* bad input: TPM errors, nothing reaches the TPM */
	{
		static const uint8_t half_dup[] = { 0x80, 0, 0, 0 };
		static const uint8_t bad_auth[] = { 0x80, 0, 0, 0, 0, 0, 0, 0xff };
		static const uint8_t two_pw[] = { 0x80, 0, 0, 0, 0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 0, 0 };
		int before = F.ncmds;

		ok(run(a, 0x8001, 0x14B, half_dup, 4) == RM_RC_INSUFFICIENT,
		    "Duplicate with one handle: TPM_RC_INSUFFICIENT");
		ok(run(a, 0x8001, 0x1234, NULL, 0) == RM_RC_COMMAND_CODE, "unknown code: TPM_RC_COMMAND_CODE");
		ok(run(a, 0x8003, 0x17B, NULL, 0) == RM_RC_BAD_TAG, "tag 0x8003: TPM_RC_BAD_TAG");
		ok(run(a, 0x8002, 0x15C, bad_auth, sizeof(bad_auth)) == RM_RC_AUTHSIZE,
		    "authorization size past the end: TPM_RC_AUTHSIZE");
		ok(run(a, 0x8002, 0x15C, two_pw, sizeof(two_pw)) == RM_RC_AUTHSIZE,
		    "a session cut short: TPM_RC_AUTHSIZE");
		ok(F.ncmds == before, "none of them reached the TPM");
	}

	/* the TPM unreachable: the client is told, the state stays */
	F.unreachable = 1;
	ok(run_h(a, 0x173, ha[1]) == 0xffffffffU, "TPM unreachable: rm_command returns -1");
	F.unreachable = 0;
	ok(run_h(a, 0x173, ha[1]) == 0 && f_loaded() == 0, "reachable again: A's objects work");

	/* A goes away: its session is flushed, nothing of it stays */
	rm_conn_close(a, fake_tpm, NULL);
	ok(f_sessions() == 0 && f_loaded() == 0, "A closed: no session, no object left in the TPM");
	ok(run_h(b, 0x173, hb) == 0, "B's object still works");

	/* a session the client saved itself survives it, once, for another */
	a = rm_conn_new();
	s = session(a);
	ok(run_h(a, 0x162, s) == 0 && rlen == 32, "A: ContextSave of its session (a client-held blob)");
	{
		uint8_t blob[22];

		memcpy(blob, rsp + 10, 22);
		ok(getcap(a, 0x03000000U, list) == 1 && list[0] == s,
		    "A: the session is listed as saved (0x03)");
		rm_conn_close(a, fake_tpm, NULL);
		ok(f_sessions() == 1, "A closed: the client-held session is kept (an orphan)");
		ok(run(b, 0x8001, 0x161, blob, 22) == 0 && be32_dec(rsp + 10) == s,
		    "B: ContextLoad of that blob claims it");
		ok(rm_conn_sessions(b) == 1 && run_h(b, 0x165, s) == 0 && f_sessions() == 0,
		    "B: FlushContext of it: gone");
		ok(run(b, 0x8001, 0x161, blob, 22) != 0, "B: the same blob again: the TPM's error");
	}
	rm_conn_close(b, fake_tpm, NULL);
	ok(f_sessions() == 0 && f_loaded() == 0, "all closed: the TPM is empty");
	n = passed + failed;
	printf("test_rm: %d passed, %d failed\n", passed, failed);
	return failed != 0 || n == 0;
}
