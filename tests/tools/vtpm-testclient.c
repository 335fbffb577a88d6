/*
 * vtpm-testclient.c: a channel-level guest for the end-to-end tests. Does
 * everything vtpm-guest does up to TPM traffic (connect, Noise XX as
 * initiator, simulated evidence, vtpmd's evidence checked, ATTACH, GetRandom)
 * and can break exactly one thing on the way: a flipped, replayed, dropped,
 * zero-length, random or truncated frame, bad or relayed evidence, a tampered
 * handshake message. It reports what vtpmd did about it and exits 0 only if
 * that matches --expect. Trusts nothing from vtpmd.
 *
 * Transport frames the client sends are numbered from 1:
 *   1 EVIDENCE, 2 ATTACH, 3 .. 2+K TPM_CMD GetRandom(16), 3+K CTRL DETACH
 * (--skip-evidence and --skip-attach leave a message out: the later frames
 * then come one number earlier). --truncate=N sends the first half of frame
 * N, then shuts its write side and watches what vtpmd does.
 * Outcomes: ok (every step answered correctly), closed (the session ended:
 * end of file, reset, or an ERROR message), refused (an ERROR message).
 * --expect closed accepts closed and refused; a session that ends before the
 * fault was injected, a timeout, or a malformed answer never matches.
 *
 * --nv-steps N replaces the GetRandom commands: it defines an NV counter
 * (0x01500030; "defined" is fine), then N times sends NV_Increment and
 * NV_Read of it -- with --pipeline both frames back to back before reading
 * either answer -- and prints "step I: increment RC read RC value V".
 * With --step-files PREFIX it waits before step I until file PREFIX<I>
 * exists (so that a test can change things between steps). The outcome is
 * ok when every answer is a well-formed response in order; the codes and
 * values are for the test to judge. --burst K (with --nv-steps) first
 * writes K NV_Increment frames in one write(), reads nothing for a second
 * (the answers pile up in the socket until it is full), then reads the K
 * answers and prints "burst: K answered, R failed, value V" (V: NV_Read
 * after them).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "attest.h"
#include "channel.h"
#include "cursor.h"
#include "endpoint.h"
#include "log.h"
#include "noise.h"
#include "proto.h"

enum outcome { OUT_OK, OUT_CLOSED, OUT_REFUSED, OUT_TIMEOUT, OUT_BAD, OUT_EARLY };

static const char *const outcome_names[] = {
	"ok", "closed", "refused", "timeout", "malformed answer", "ended before the fault",
};

/* One connection to vtpmd as the client sees it. */
struct conn {
	const char		*tag;		/* "A", "B" in messages */
	int			 fd;
	struct chan		*ch;		/* used for reading frames only */
	struct noise_cipher	 tx, rx;
	uint8_t			 h[NOISE_HASH_LEN];
	unsigned		 nframe;	/* transport frames sent */
	int			 dropped;	/* the last xmit was dropped */
};

static struct {
	struct endpoint	 server;
	uint8_t		 meas[ATTEST_MEASUREMENT_LEN];
	uint8_t		 host[ATTEST_HOST_DATA_LEN];
	uint8_t		 launch[ATTEST_LAUNCH_ID_LEN];
	int		 ncommands;
	int		 timeout_ms;
	unsigned	 flip, replay, drop, zero, garbage, truncate;
	const char	*bad_evidence;		/* "binding" or "signature" */
	int		 relay_evidence;
	int		 tamper_hs;
	int		 skip_evidence;		/* send ATTACH first */
	int		 skip_attach;		/* send a TPM command before ATTACH */
	int		 attach_version;
	int		 nv_steps;
	int		 pipeline;
	const char	*step_files;
	int		 burst;
	uint8_t		*cork;		/* --burst: frames gathered here, not written */
	size_t		 cork_len;
	int		 fault_injected;
	const char	*expect;
	const char	*expect_error;
	/* what happened */
	uint32_t	 err_code;
	char		 err_text[512];
	char		 detail[512];
} C;

static uint8_t rbuf[CHAN_MAX_BODY];

struct conn;
static enum outcome nv_steps(struct conn *c);
static enum outcome nv_burst(struct conn *c);

static void
usage(FILE *f)
{
	fprintf(f,
"usage: vtpm-testclient --server ENDPOINT --expect ok|closed|refused\n"
"         [--measurement HEX48] [--host-data HEX32 | --host-byte XX]\n"
"         [--launch-id HEX32 | --launch-byte XX] [--commands K] [--timeout MS]\n"
"         [--expect-error TEXT] and at most one fault:\n"
"         --flip-frame N | --replay-frame N | --drop-frame N | --zero-frame N |\n"
"         --garbage-frame N | --truncate[=N] | --bad-evidence binding|signature |\n"
"         --relay-evidence | --tamper-hs | --skip-evidence | --skip-attach |\n"
"         --attach-version V\n"
"       or, for durable writes: --nv-steps N [--pipeline] [--step-files PREFIX]\n"
"         [--burst K]\n");
}

static void
detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
detail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(C.detail, sizeof(C.detail), fmt, ap);
	va_end(ap);
}

/* Writes all of p; VTPM_E_CLOSED when the peer is gone. */
static int
write_raw(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return errno == EPIPE || errno == ECONNRESET ? VTPM_E_CLOSED : VTPM_E_IO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Maps a read or write failure to an outcome, "early" if no fault yet. */
static enum outcome
outcome_of(int rc, const char *where)
{
	detail("%s: %s", where, vtpm_strerror(rc));
	if (rc == VTPM_E_TIMEOUT)
		return OUT_TIMEOUT;
	if (!C.fault_injected)
		return OUT_EARLY;
	if (rc == VTPM_E_CLOSED || rc == VTPM_E_IO)
		return OUT_CLOSED;
	return OUT_BAD;
}

/*
 * Sends one transport message as frame number ++nframe, applying the fault
 * aimed at that frame. Returns 0 (sent, or dropped: c->dropped), or a write
 * error. After --truncate the write side is shut.
 */
static int
xmit(struct conn *c, uint8_t type, const void *body, size_t len)
{
	uint8_t frame[2 + CHAN_MAX_FRAME], pt[1 + CHAN_MAX_BODY];
	size_t flen = len + 1 + NOISE_TAG_LEN;
	unsigned n = ++c->nframe;
	int rc;

	c->dropped = 0;
	pt[0] = type;
	memcpy(pt + 1, body, len);
	if ((rc = noise_cipher_encrypt(&c->tx, NULL, 0, pt, len + 1, frame + 2)) != 0)
		return rc;
	be16_enc(frame, (uint16_t)flen);
	if (n == C.drop) {
		C.fault_injected = 1;
		c->dropped = 1;
		return 0;
	}
	if (n == C.flip) {
		C.fault_injected = 1;
		frame[2 + flen / 2] ^= 0x01;
	}
	if (n == C.garbage) {
		C.fault_injected = 1;
		randombytes_buf(frame + 2, flen);
	}
	if (n == C.zero) {
		C.fault_injected = 1;
		return write_raw(c->fd, (const uint8_t *)"\0\0", 2);
	}
	if (n == C.truncate) {
		C.fault_injected = 1;
		rc = write_raw(c->fd, frame, (2 + flen) / 2);
		shutdown(c->fd, SHUT_WR);
		return rc;
	}
	if (C.cork != NULL) {
		memcpy(C.cork + C.cork_len, frame, 2 + flen);
		C.cork_len += 2 + flen;
		return 0;
	}
	if ((rc = write_raw(c->fd, frame, 2 + flen)) != 0)
		return rc;
	if (n == C.replay) {
		C.fault_injected = 1;
		rc = write_raw(c->fd, frame, 2 + flen);
	}
	return rc;
}

/*
 * Receives one transport message. Returns 0 with *type and the body in
 * rbuf, or an outcome-mapped error: an ERROR message is decoded into C.err_*
 * and reported as VTPM_E_POLICY.
 */
static int
recv_msg(struct conn *c, uint8_t *type, size_t *blen)
{
	uint8_t pt[CHAN_MAX_FRAME];
	const uint8_t *frame, *text;
	struct cursor cur;
	uint16_t tlen;
	size_t flen;
	int rc;

	if ((rc = chan_wait_frame(c->ch, C.timeout_ms, &frame, &flen)) < 0)
		return rc;
	if (flen < NOISE_TAG_LEN + 1)
		return VTPM_E_FORMAT;
	if ((rc = noise_cipher_decrypt(&c->rx, NULL, 0, frame, flen, pt)) != 0)
		return rc;
	*type = pt[0];
	*blen = flen - NOISE_TAG_LEN - 1;
	memcpy(rbuf, pt + 1, *blen);
	if (*type == MSG_ERROR) {
		cur_init(&cur, rbuf, *blen);
		if (cur_get_u32(&cur, &C.err_code) != 0 || cur_get_u16(&cur, &tlen) != 0 ||
		    cur_get_ref(&cur, &text, tlen) != 0 || cur_end(&cur) != 0)
			return VTPM_E_FORMAT;
		snprintf(C.err_text, sizeof(C.err_text), "%.*s", (int)tlen, text);
		return VTPM_E_POLICY;
	}
	return 0;
}

/* recv_msg() mapped to an outcome; 0 means a message other than ERROR arrived. */
static int
recv_step(struct conn *c, const char *where, uint8_t *type, size_t *blen,
    enum outcome *out)
{
	int rc = recv_msg(c, type, blen);

	if (rc == 0)
		return 0;
	if (rc == VTPM_E_POLICY) {
		detail("%s: ERROR %u: %s", where, C.err_code, C.err_text);
		*out = C.fault_injected ? OUT_REFUSED : OUT_EARLY;
	} else {
		*out = outcome_of(rc, where);
	}
	return -1;
}

static void
conn_close(struct conn *c)
{
	if (c->ch != NULL)
		chan_free(c->ch);	/* closes fd */
	else if (c->fd >= 0)
		close(c->fd);
	c->ch = NULL;
	c->fd = -1;
	noise_cipher_wipe(&c->tx);
	noise_cipher_wipe(&c->rx);
}

/* Connects and runs the XX handshake as initiator (msg 3 tampered if asked). */
static enum outcome
conn_handshake(struct conn *c, int tamper)
{
	uint8_t spriv[32], spub[32], out[256];
	const uint8_t *frame;
	size_t olen, flen, plen;
	struct noise_hs *hs;
	int rc;

	c->fd = -1;
	if ((rc = endpoint_connect(&C.server, 5000, &c->fd)) != 0) {
		detail("connect: %s", vtpm_strerror(rc));
		return OUT_EARLY;
	}
	if ((c->ch = chan_new(c->fd, 0)) == NULL)
		fatalx("out of memory");
	noise_keypair_generate(spriv, spub);
	hs = noise_hs_new(NOISE_XX, 1, (const uint8_t *)CHAN_PROLOGUE,
	    strlen(CHAN_PROLOGUE), spriv, NULL);
	sodium_memzero(spriv, sizeof(spriv));
	if (hs == NULL)
		fatalx("noise_hs_new");
	if ((rc = noise_hs_write(hs, NULL, 0, out, sizeof(out), &olen)) != 0 ||
	    (rc = chan_write_frame(c->ch, out, olen, 5000)) != 0)
		goto fail;
	if ((rc = chan_wait_frame(c->ch, C.timeout_ms, &frame, &flen)) < 0)
		goto fail;
	if ((rc = noise_hs_read(hs, frame, flen, rbuf, sizeof(rbuf), &plen)) != 0 ||
	    (rc = noise_hs_write(hs, NULL, 0, out, sizeof(out), &olen)) != 0)
		goto fail;
	if (tamper) {
		C.fault_injected = 1;
		out[olen / 2] ^= 0x80;
	}
	if ((rc = chan_write_frame(c->ch, out, olen, 5000)) != 0 ||
	    (rc = noise_hs_split(hs, &c->tx, &c->rx, c->h)) != 0)
		goto fail;
	noise_hs_free(hs);
	return OUT_OK;
fail:
	noise_hs_free(hs);
	return outcome_of(rc, "handshake");
}

/* Our evidence for handshake hash h, spoiled as --bad-evidence asks. */
static void
make_evidence(const uint8_t h[NOISE_HASH_LEN], uint8_t *ev, size_t cap, size_t *len)
{
	struct attest_provider *p;
	uint8_t rd[ATTEST_REPORT_DATA_LEN], other[NOISE_HASH_LEN];

	if (C.bad_evidence != NULL && strcmp(C.bad_evidence, "binding") == 0) {
		randombytes_buf(other, sizeof(other));	/* "another session" */
		attest_report_data(ATTEST_ROLE_GUEST, other, rd);
		C.fault_injected = 1;
	} else {
		attest_report_data(ATTEST_ROLE_GUEST, h, rd);
	}
	if (attest_provider_sim_new(C.meas, C.host, C.launch, &p) != 0 ||
	    attest_evidence_get(p, rd, ev, cap, len) != 0)
		fatalx("cannot make evidence");
	attest_provider_free(p);
	if (C.bad_evidence != NULL && strcmp(C.bad_evidence, "signature") == 0) {
		/*
		 * One byte of the report past the 12-byte envelope header:
		 * offset 0xBF of an SEV-SNP report (the sim backend's format)
		 * is in MEASUREMENT, inside the signed bytes 0x000-0x29F, so
		 * only the signature check can object.
		 */
		if (*len < 12 + 0x100)
			fatalx("evidence too short to spoil (%zu bytes)", *len);
		ev[12 + 0xBF] ^= 0x01;
		C.fault_injected = 1;
	}
}

/*
 * Everything after the handshake, with ev (evidence to send) given.
 * Returns the outcome of this session.
 */
static enum outcome
conn_run(struct conn *c, const uint8_t *ev, size_t evlen)
{
	struct attest_verify_cfg vcfg = { .av_allow_sim = 1 };
	struct attest_claims peer;
	uint8_t rd[ATTEST_REPORT_DATA_LEN], msg[1 + 12], prev[16], type;
	char why[256];
	enum outcome out;
	size_t blen;
	int rc, i;

	/* frame 1: EVIDENCE; vtpmd answers with its own */
	if (C.skip_evidence)
		C.fault_injected = 1;
	else if ((rc = xmit(c, MSG_EVIDENCE, ev, evlen)) != 0)
		return outcome_of(rc, "send evidence");
	if (!c->dropped && !C.skip_evidence) {
		if (recv_step(c, "evidence", &type, &blen, &out) != 0)
			return out;
		if (type != MSG_EVIDENCE) {
			detail("vtpmd sent message 0x%02x instead of evidence", type);
			return OUT_BAD;
		}
		attest_report_data(ATTEST_ROLE_VTPMD, c->h, rd);
		if (attest_evidence_verify(&vcfg, rbuf, blen, rd, &peer, why, sizeof(why)) != 0) {
			detail("vtpmd's evidence refused: %s", why);
			return OUT_BAD;
		}
	}
	/* frame 2: ATTACH */
	msg[0] = (uint8_t)C.attach_version;
	be32_enc(msg + 1, ATTACH_F_AUTO_STARTUP);
	if (C.attach_version != VTPM_PROTO_VERSION)
		C.fault_injected = 1;
	if (C.skip_attach)
		C.fault_injected = 1;
	else if ((rc = xmit(c, MSG_ATTACH, msg, 5)) != 0)
		return outcome_of(rc, "send attach");
	if (!c->dropped && !C.skip_attach) {
		if (recv_step(c, "attach", &type, &blen, &out) != 0)
			return out;
		if (type != MSG_ATTACHED || blen < 2 || blen != 2u + rbuf[1]) {
			detail("malformed ATTACHED (type 0x%02x, %zu bytes)", type, blen);
			return OUT_BAD;
		}
		printf("%s: attached to %.*s (how %u)\n", c->tag, (int)rbuf[1], rbuf + 2, rbuf[0]);
	}
	if (C.nv_steps > 0 && (out = nv_steps(c)) != OUT_OK)
		return out;
	/* frames 3..2+K: TPM2_GetRandom(16) at locality 0 */
	memset(prev, 0, sizeof(prev));
	for (i = 0; i < (C.nv_steps > 0 ? 0 : C.ncommands); i++) {
		static const uint8_t getrandom[12] = {
			0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 16 };

		msg[0] = 0;
		memcpy(msg + 1, getrandom, sizeof(getrandom));
		if ((rc = xmit(c, MSG_TPM_CMD, msg, 1 + sizeof(getrandom))) != 0)
			return outcome_of(rc, "send TPM command");
		if (c->dropped)
			continue;
		if (recv_step(c, "TPM command", &type, &blen, &out) != 0)
			return out;
		if (type != MSG_TPM_RSP || blen != 10 + 2 + 16 || be32_dec(rbuf + 2) != blen ||
		    be32_dec(rbuf + 6) != TPM2_RC_SUCCESS || be16_dec(rbuf + 10) != 16) {
			detail("GetRandom answer: type 0x%02x, %zu bytes, rc 0x%x", type, blen,
			    blen >= 10 ? be32_dec(rbuf + 6) : 0);
			return OUT_BAD;
		}
		if (memcmp(prev, rbuf + 12, 16) == 0) {
			detail("GetRandom returned the same 16 bytes twice");
			return OUT_BAD;
		}
		memcpy(prev, rbuf + 12, 16);
	}
	/* last frame: CTRL DETACH, an orderly end */
	msg[0] = CTRL_DETACH;
	if ((rc = xmit(c, MSG_CTRL, msg, 1)) != 0)
		return outcome_of(rc, "send detach");
	if (!c->dropped) {
		if (recv_step(c, "detach", &type, &blen, &out) != 0)
			return out;
		if (type != MSG_CTRL_RSP || blen != 4 || be32_dec(rbuf) != 0) {
			detail("malformed DETACH answer");
			return OUT_BAD;
		}
	}
	if (C.fault_injected) {
		/* The fault must end the session: wait for the close. */
		rc = recv_msg(c, &type, &blen);
		if (rc == VTPM_E_POLICY) {
			detail("after the last step: ERROR %u: %s", C.err_code, C.err_text);
			return OUT_REFUSED;
		}
		if (rc == VTPM_E_CLOSED || rc == VTPM_E_IO) {
			detail("closed after the last step");
			return OUT_CLOSED;
		}
		detail("session still up after the fault (%s)", rc == 0 ? "a message came" :
		    vtpm_strerror(rc));
		return rc == VTPM_E_TIMEOUT ? OUT_TIMEOUT : OUT_BAD;
	}
	if (C.nv_steps > 0)
		detail("%d NV steps answered", C.nv_steps);
	else
		detail("%d GetRandom commands answered", C.ncommands);
	return OUT_OK;
}

/* ---------- --nv-steps ---------- */

#define NV_TC_INDEX	0x01500030u
#define NV_TC_ATTRS	0x02040014u	/* NO_DA | AUTHREAD | AUTHWRITE, TPM_NT_COUNTER */

/* Command header; returns the offset after it (size patched by nv_frame()). */
static size_t
nv_begin(uint8_t *c, uint32_t cc, uint32_t h1, uint32_t h2)
{
	size_t n = 10;

	be16_enc(c, 0x8002);		/* TPM_ST_SESSIONS */
	be32_enc(c + 6, cc);
	be32_enc(c + n, h1);
	n += 4;
	if (h2 != 0) {
		be32_enc(c + n, h2);
		n += 4;
	}
	be32_enc(c + n, 9);		/* the empty password session */
	be32_enc(c + n + 4, 0x40000009);
	be16_enc(c + n + 8, 0);
	c[n + 10] = 0;
	be16_enc(c + n + 11, 0);
	return n + 13;
}

/* Wraps a command (locality 0) and sends it. */
static int
nv_send(struct conn *c, uint8_t *cmd, size_t n)
{
	uint8_t msg[1 + 64];

	be32_enc(cmd + 2, (uint32_t)n);
	msg[0] = 0;
	memcpy(msg + 1, cmd, n);
	return xmit(c, MSG_TPM_CMD, msg, 1 + n);
}

static int
nv_send_define(struct conn *c)
{
	uint8_t cmd[64];
	size_t n = nv_begin(cmd, 0x12a, 0x40000001u, 0);	/* NV_DefineSpace, owner */

	be16_enc(cmd + n, 0);		/* auth */
	be16_enc(cmd + n + 2, 14);	/* TPM2B_NV_PUBLIC */
	be32_enc(cmd + n + 4, NV_TC_INDEX);
	be16_enc(cmd + n + 8, 0x000b);	/* SHA-256 */
	be32_enc(cmd + n + 10, NV_TC_ATTRS);
	be16_enc(cmd + n + 14, 0);	/* authPolicy */
	be16_enc(cmd + n + 16, 8);	/* dataSize */
	return nv_send(c, cmd, n + 18);
}

static int
nv_send_increment(struct conn *c)
{
	uint8_t cmd[64];

	return nv_send(c, cmd, nv_begin(cmd, 0x134, NV_TC_INDEX, NV_TC_INDEX));
}

static int
nv_send_read(struct conn *c)
{
	uint8_t cmd[64];
	size_t n = nv_begin(cmd, 0x14e, NV_TC_INDEX, NV_TC_INDEX);

	be16_enc(cmd + n, 8);		/* size */
	be16_enc(cmd + n + 2, 0);	/* offset */
	return nv_send(c, cmd, n + 4);
}

/* One TPM response: 0 with *rc (and *v for a successful 8-byte NV_Read). */
static int
nv_answer(struct conn *c, const char *where, uint32_t *rc, uint64_t *v, enum outcome *out)
{
	uint8_t type;
	size_t blen;

	if (recv_step(c, where, &type, &blen, out) != 0)
		return -1;
	if (type != MSG_TPM_RSP || blen < 10 || be32_dec(rbuf + 2) != blen) {
		detail("%s: type 0x%02x, %zu bytes", where, type, blen);
		*out = OUT_BAD;
		return -1;
	}
	*rc = be32_dec(rbuf + 6);
	if (v != NULL && *rc == 0) {
		/* header, u32 parameterSize, TPM2B (u16 8, 8 bytes), sessions */
		if (blen < 10 + 4 + 2 + 8 || be16_dec(rbuf + 14) != 8) {
			detail("%s: malformed NV_Read answer", where);
			*out = OUT_BAD;
			return -1;
		}
		*v = be64_dec(rbuf + 16);
	}
	return 0;
}

/* --burst: K increments in one write, answers read only after a second. */
static enum outcome
nv_burst(struct conn *c)
{
	enum outcome out;
	uint32_t rc1;
	uint64_t v = 0;
	int i, rc, failed = 0;

	if ((C.cork = malloc((size_t)C.burst * 128)) == NULL)
		fatalx("out of memory");
	C.cork_len = 0;
	for (i = 0; i < C.burst; i++)
		if ((rc = nv_send_increment(c)) != 0)
			return outcome_of(rc, "gather NV_Increment");
	rc = write_raw(c->fd, C.cork, C.cork_len);
	free(C.cork);
	C.cork = NULL;
	if (rc != 0)
		return outcome_of(rc, "send the burst");
	sleep(1);
	for (i = 0; i < C.burst; i++) {
		if (nv_answer(c, "burst NV_Increment", &rc1, NULL, &out) != 0)
			return out;
		if (rc1 != 0)
			failed++;
	}
	if ((rc = nv_send_read(c)) != 0)
		return outcome_of(rc, "send NV_Read");
	if (nv_answer(c, "NV_Read", &rc1, &v, &out) != 0)
		return out;
	printf("burst: %d answered, %d failed, value %llu\n", C.burst, failed,
	    (unsigned long long)v);
	fflush(stdout);
	return OUT_OK;
}

/* Waits (up to the timeout) for PREFIX<step> to exist. */
static int
step_wait(int step)
{
	char path[4096];
	int i;

	if (C.step_files == NULL)
		return 0;
	snprintf(path, sizeof(path), "%s%d", C.step_files, step);
	for (i = 0; i < C.timeout_ms / 10; i++) {
		if (access(path, F_OK) == 0)
			return 0;
		usleep(10000);
	}
	detail("step %d: %s did not appear", step, path);
	return -1;
}

static enum outcome
nv_steps(struct conn *c)
{
	enum outcome out;
	uint32_t rc1, rc2;
	uint64_t v;
	int i, rc;

	if ((rc = nv_send_define(c)) != 0)
		return outcome_of(rc, "send NV_DefineSpace");
	if (nv_answer(c, "NV_DefineSpace", &rc1, NULL, &out) != 0)
		return out;
	if (rc1 != 0 && rc1 != 0x14c) {	/* TPM_RC_NV_DEFINED */
		detail("NV_DefineSpace: rc 0x%x", rc1);
		return OUT_BAD;
	}
	printf("defined\n");
	fflush(stdout);
	if (C.burst > 0 && (out = nv_burst(c)) != OUT_OK)
		return out;
	for (i = 1; i <= C.nv_steps; i++) {
		if (step_wait(i) != 0)
			return OUT_TIMEOUT;
		v = 0;
		if ((rc = nv_send_increment(c)) != 0)
			return outcome_of(rc, "send NV_Increment");
		if (C.pipeline && (rc = nv_send_read(c)) != 0)
			return outcome_of(rc, "send NV_Read");
		if (nv_answer(c, "NV_Increment", &rc1, NULL, &out) != 0)
			return out;
		if (!C.pipeline && (rc = nv_send_read(c)) != 0)
			return outcome_of(rc, "send NV_Read");
		if (nv_answer(c, "NV_Read", &rc2, &v, &out) != 0)
			return out;
		printf("step %d: increment 0x%x read 0x%x value %llu\n", i, rc1, rc2,
		    (unsigned long long)v);
		fflush(stdout);
	}
	return OUT_OK;
}

/* The whole flow on one connection. */
static enum outcome
run_one(void)
{
	uint8_t ev[ATTEST_MAX_EVIDENCE];
	struct conn c = { .tag = "session" };
	enum outcome out;
	size_t evlen;

	if ((out = conn_handshake(&c, C.tamper_hs)) == OUT_OK) {
		make_evidence(c.h, ev, sizeof(ev), &evlen);
		out = conn_run(&c, ev, evlen);
	}
	conn_close(&c);
	return out;
}

/*
 * --relay-evidence: sessions A and B both finish their handshakes; A's
 * evidence is sent in B (a relay: must be refused as not bound to B), then
 * in A itself, where the same bytes must be accepted and A must work.
 */
static enum outcome
run_relay(void)
{
	uint8_t ev[ATTEST_MAX_EVIDENCE];
	struct conn a = { .tag = "A" }, b = { .tag = "B" };
	enum outcome out, out_a;
	char detail_b[512];
	size_t evlen;

	if ((out = conn_handshake(&a, 0)) != OUT_OK || (out = conn_handshake(&b, 0)) != OUT_OK) {
		conn_close(&a);
		conn_close(&b);
		return out;
	}
	make_evidence(a.h, ev, sizeof(ev), &evlen);
	C.fault_injected = 1;
	out = conn_run(&b, ev, evlen);
	memcpy(detail_b, C.detail, sizeof(detail_b));
	conn_close(&b);
	C.fault_injected = 0;
	out_a = conn_run(&a, ev, evlen);
	printf("session A (its own evidence): %s (%s)\n", outcome_names[out_a], C.detail);
	conn_close(&a);
	memcpy(C.detail, detail_b, sizeof(C.detail));
	if (out_a != OUT_OK) {
		fprintf(stderr, "vtpm-testclient: session A failed with evidence that "
		    "was its own\n");
		return OUT_BAD;
	}
	return out;
}

static unsigned
frame_arg(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end != '\0' || v < 1 || v > 1000)
		fatalx("frame number %s: want 1..1000", s);
	return (unsigned)v;
}

static void
byte_arg(const char *s, uint8_t *out, size_t n)
{
	unsigned v;
	char *end;

	v = (unsigned)strtoul(s, &end, 16);
	if (strlen(s) != 2 || *end != '\0')
		fatalx("want one hex byte: %s", s);
	memset(out, (int)v, n);
}

enum { O_SERVER = 256, O_MEAS, O_HOST, O_HOSTB, O_LAUNCH, O_LAUNCHB, O_CMDS,
	O_TIMEOUT, O_FLIP, O_REPLAY, O_DROP, O_ZERO, O_GARBAGE, O_TRUNC, O_BADEV,
	O_RELAY, O_TAMPER, O_EXPECT, O_EXPERR, O_SKIPEV, O_SKIPATT, O_ATTVER,
	O_NVSTEPS, O_PIPELINE, O_STEPFILES, O_BURST };

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, O_SERVER },
		{ "measurement", required_argument, NULL, O_MEAS },
		{ "host-data", required_argument, NULL, O_HOST },
		{ "host-byte", required_argument, NULL, O_HOSTB },
		{ "launch-id", required_argument, NULL, O_LAUNCH },
		{ "launch-byte", required_argument, NULL, O_LAUNCHB },
		{ "commands", required_argument, NULL, O_CMDS },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "flip-frame", required_argument, NULL, O_FLIP },
		{ "replay-frame", required_argument, NULL, O_REPLAY },
		{ "drop-frame", required_argument, NULL, O_DROP },
		{ "zero-frame", required_argument, NULL, O_ZERO },
		{ "garbage-frame", required_argument, NULL, O_GARBAGE },
		{ "truncate", optional_argument, NULL, O_TRUNC },
		{ "bad-evidence", required_argument, NULL, O_BADEV },
		{ "relay-evidence", no_argument, NULL, O_RELAY },
		{ "tamper-hs", no_argument, NULL, O_TAMPER },
		{ "skip-evidence", no_argument, NULL, O_SKIPEV },
		{ "skip-attach", no_argument, NULL, O_SKIPATT },
		{ "attach-version", required_argument, NULL, O_ATTVER },
		{ "expect", required_argument, NULL, O_EXPECT },
		{ "expect-error", required_argument, NULL, O_EXPERR },
		{ "nv-steps", required_argument, NULL, O_NVSTEPS },
		{ "pipeline", no_argument, NULL, O_PIPELINE },
		{ "step-files", required_argument, NULL, O_STEPFILES },
		{ "burst", required_argument, NULL, O_BURST },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *server = NULL;
	enum outcome out;
	int ch, nfaults = 0, match;

	log_init("vtpm-testclient", LOG_LVL_INFO);
	memset(C.meas, 0x11, sizeof(C.meas));
	memset(C.host, 0xee, sizeof(C.host));
	randombytes_buf(C.launch, sizeof(C.launch));
	C.ncommands = 3;
	C.timeout_ms = 10000;
	C.attach_version = VTPM_PROTO_VERSION;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case O_SERVER:	server = optarg; break;
		case O_MEAS:
			if (attest_hex_decode(optarg, C.meas, sizeof(C.meas)) != 0)
				fatalx("--measurement: want 96 hex digits");
			break;
		case O_HOST:
			if (attest_hex_decode(optarg, C.host, sizeof(C.host)) != 0)
				fatalx("--host-data: want 64 hex digits");
			break;
		case O_HOSTB:	byte_arg(optarg, C.host, sizeof(C.host)); break;
		case O_LAUNCH:
			if (attest_hex_decode(optarg, C.launch, sizeof(C.launch)) != 0)
				fatalx("--launch-id: want 64 hex digits");
			break;
		case O_LAUNCHB:	byte_arg(optarg, C.launch, sizeof(C.launch)); break;
		case O_CMDS:
			C.ncommands = atoi(optarg);
			if (C.ncommands < 1 || C.ncommands > 100)
				fatalx("--commands: want 1..100");
			break;
		case O_TIMEOUT:
			C.timeout_ms = atoi(optarg);
			if (C.timeout_ms < 1)
				fatalx("--timeout: want milliseconds");
			break;
		case O_FLIP:	C.flip = frame_arg(optarg); nfaults++; break;
		case O_REPLAY:	C.replay = frame_arg(optarg); nfaults++; break;
		case O_DROP:	C.drop = frame_arg(optarg); nfaults++; break;
		case O_ZERO:	C.zero = frame_arg(optarg); nfaults++; break;
		case O_GARBAGE:	C.garbage = frame_arg(optarg); nfaults++; break;
		case O_TRUNC:	C.truncate = optarg ? frame_arg(optarg) : 3; nfaults++; break;
		case O_BADEV:
			if (strcmp(optarg, "binding") != 0 && strcmp(optarg, "signature") != 0)
				fatalx("--bad-evidence: binding or signature");
			C.bad_evidence = optarg;
			nfaults++;
			break;
		case O_RELAY:	C.relay_evidence = 1; nfaults++; break;
		case O_TAMPER:	C.tamper_hs = 1; nfaults++; break;
		case O_SKIPEV:	C.skip_evidence = 1; nfaults++; break;
		case O_SKIPATT:	C.skip_attach = 1; nfaults++; break;
		case O_ATTVER:	C.attach_version = atoi(optarg) & 0xff; nfaults++; break;
		case O_EXPECT:	C.expect = optarg; break;
		case O_EXPERR:	C.expect_error = optarg; break;
		case O_NVSTEPS:
			C.nv_steps = atoi(optarg);
			if (C.nv_steps < 1 || C.nv_steps > 1000)
				fatalx("--nv-steps: want 1..1000");
			break;
		case O_PIPELINE:	C.pipeline = 1; break;
		case O_STEPFILES:	C.step_files = optarg; break;
		case O_BURST:
			C.burst = atoi(optarg);
			if (C.burst < 1 || C.burst > 5000)
				fatalx("--burst: want 1..5000");
			break;
		case 'h':	usage(stdout); return 0;
		default:	usage(stderr); return 2;
		}
	}
	if (server == NULL || C.expect == NULL || optind != argc || nfaults > 1 ||
	    (strcmp(C.expect, "ok") != 0 && strcmp(C.expect, "closed") != 0 &&
	    strcmp(C.expect, "refused") != 0)) {
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0)
		fatalx("sodium_init");
	if (endpoint_parse(server, 0, &C.server) != 0)
		fatalx("--server %s: not a valid endpoint", server);
	signal(SIGPIPE, SIG_IGN);

	out = C.relay_evidence ? run_relay() : run_one();
	printf("outcome: %s (%s)\n", outcome_names[out], C.detail);
	if (strcmp(C.expect, "ok") == 0)
		match = out == OUT_OK;
	else if (strcmp(C.expect, "refused") == 0)
		match = out == OUT_REFUSED;
	else
		match = out == OUT_CLOSED || out == OUT_REFUSED;
	if (match && C.expect_error != NULL && strstr(C.err_text, C.expect_error) == NULL) {
		printf("error text \"%s\" does not contain \"%s\"\n", C.err_text, C.expect_error);
		match = 0;
	}
	printf("expected %s: %s\n", C.expect, match ? "matched" : "NOT matched");
	return match ? 0 : 1;
}
