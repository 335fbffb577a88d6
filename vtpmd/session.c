/*
 * session.c: a guest connection in the parent, from accept to hand-off.
 * Noise XX as responder, then evidence both ways bound to the handshake
 * hash, then ATTACH. Trusts nothing from the peer: every frame is
 * length-checked, authenticated, and parsed with the cursor; the instance
 * is chosen only from verified claims, never from the connection's address.
 *
 *   guest                              vtpmd
 *   -> e                                             (msg 1)
 *   <- e, ee, s, es                                  (msg 2)
 *   -> s, se                                         (msg 3)
 *   -> EVIDENCE(report_data = H("guest", h))
 *                                      verify, then
 *   <- EVIDENCE(report_data = H("vtpmd", h))
 *   -> ATTACH(version, flags)
 *                                      instance ready, session handed to its worker
 *   <- ATTACHED(how, name)             (sent by the worker)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "channel.h"
#include "cursor.h"
#include "log.h"
#include "noise.h"
#include "ops.h"
#include "parent.h"
#include "proto.h"

enum sess_state { S_MSG1, S_MSG3, S_EVIDENCE, S_ATTACH, S_WAIT_WORKER };

struct session {
	TAILQ_ENTRY(session)	 entry;
	struct ev		 ev;
	struct chan		*ch;
	struct noise_hs		*hs;
	enum sess_state		 state;
	struct timespec		 deadline;
	uint8_t			 h[NOISE_HASH_LEN];
	struct attest_claims	 claims;
	uint32_t		 attach_flags;
	uint8_t			 version;	/* of ATTACH: 1, or 2 (freshness reports) */
	unsigned		 id;
};
static TAILQ_HEAD(, session) sessions = TAILQ_HEAD_INITIALIZER(sessions);
static unsigned next_id;
static uint8_t sbuf[CHAN_MAX_BODY];

static void
session_free(struct session *s)
{
	/* sessions_close_all() at shutdown frees sessions an instance still waits for */
	if (s->state == S_WAIT_WORKER)
		inst_forget_session(s);
	if (s->ev.fd >= 0)
		ev_del(&s->ev);
	TAILQ_REMOVE(&sessions, s, entry);
	if (s->hs != NULL)
		noise_hs_free(s->hs);
	chan_free(s->ch);	/* closes the fd unless handed off */
	sodium_memzero(s->h, sizeof(s->h));
	free(s);
	V->nhandshakes--;
}

/* Ends a session with an error message (when keys exist) and a log line. */
static void
session_fail(struct session *s, int code, const char *why)
{
	uint8_t out[6 + 200];
	size_t n = strlen(why);

	log_warnx("session %u closed: %s", s->id, why);
	if (s->state >= S_EVIDENCE && code != 0) {
		metrics_attach_failed(code);
		if (s->state >= S_ATTACH)	/* the claims are verified: audit the refusal */
			audit_attach_refused(&s->claims, code, why);
		if (n > 200)
			n = 200;
		be32_enc(out, (uint32_t)code);
		be16_enc(out + 4, (uint16_t)n);
		memcpy(out + 6, why, n);
		if (chan_send(s->ch, MSG_ERROR, out, 6 + n) != 0)
			log_debug("session %u: error message not delivered", s->id);
	}
	session_free(s);
}

void
session_accept(int lfd)
{
	struct session *s;
	int fd;

	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("accept");
			return;
		}
		if (V->shutting_down || V->nhandshakes >= V->cfg.max_handshakes) {
			log_warnx("refusing connection: %s", V->shutting_down ?
			    "shutting down" : "too many handshakes in progress");
			close(fd);
			continue;
		}
		if ((s = calloc(1, sizeof(*s))) == NULL ||
		    (s->ch = chan_new(fd, 1)) == NULL) {
			log_warnx("out of memory");
			free(s);
			close(fd);
			continue;
		}
		s->id = ++next_id;
		s->state = S_MSG1;
		s->ev.kind = EV_SESSION;
		s->ev.fd = fd;
		s->ev.obj = s;
		clock_gettime(CLOCK_MONOTONIC, &s->deadline);
		s->deadline.tv_sec += V->cfg.handshake_timeout_ms / 1000;
		TAILQ_INSERT_TAIL(&sessions, s, entry);
		V->nhandshakes++;
		if (ev_add(&s->ev, EPOLLIN) != 0) {
			session_free(s);
			continue;
		}
		log_debug("session %u: connection accepted", s->id);
	}
}

static int
session_msg1(struct session *s, const uint8_t *frame, size_t len)
{
	uint8_t spriv[32], spub[32], out[256];
	size_t plen, olen;
	int rc;

	noise_keypair_generate(spriv, spub);
	s->hs = noise_hs_new(NOISE_XX, 0, (const uint8_t *)CHAN_PROLOGUE,
	    strlen(CHAN_PROLOGUE), spriv, NULL);
	sodium_memzero(spriv, sizeof(spriv));
	if (s->hs == NULL)
		return VTPM_E_NOMEM;
	if ((rc = noise_hs_read(s->hs, frame, len, sbuf, sizeof(sbuf), &plen)) != 0)
		return rc;
	if (plen != 0)
		return VTPM_E_PROTO;
	if ((rc = noise_hs_write(s->hs, NULL, 0, out, sizeof(out), &olen)) != 0)
		return rc;
	if ((rc = chan_write_frame(s->ch, out, olen, 1000)) != 0)
		return rc;
	s->state = S_MSG3;
	return 0;
}

static int
session_msg3(struct session *s, const uint8_t *frame, size_t len)
{
	struct noise_cipher tx, rx;
	size_t plen;
	int rc;

	if ((rc = noise_hs_read(s->hs, frame, len, sbuf, sizeof(sbuf), &plen)) != 0)
		return rc;
	if (plen != 0 || !noise_hs_is_done(s->hs))
		return VTPM_E_PROTO;
	if ((rc = noise_hs_split(s->hs, &tx, &rx, s->h)) != 0)
		return rc;
	chan_set_ciphers(s->ch, &tx, &rx);
	noise_cipher_wipe(&tx);
	noise_cipher_wipe(&rx);
	noise_hs_free(s->hs);
	s->hs = NULL;
	s->state = S_EVIDENCE;
	return 0;
}

static void
session_evidence(struct session *s, const uint8_t *body, size_t len)
{
	uint8_t rd[ATTEST_REPORT_DATA_LEN];
	uint8_t ev[ATTEST_MAX_EVIDENCE];
	char why[256], hexm[97], hexh[65];
	size_t evlen;
	int rc;

	attest_report_data(ATTEST_ROLE_GUEST, s->h, rd);
	rc = attest_evidence_verify(&V->verify, body, len, rd, &s->claims, why, sizeof(why));
	if (rc != 0) {
		char msg[300];

		snprintf(msg, sizeof(msg), "guest evidence refused: %s", why);
		session_fail(s, rc == VTPM_E_POLICY ? ERR_POLICY : ERR_EVIDENCE, msg);
		return;
	}
	attest_hex_encode(s->claims.measurement, sizeof(s->claims.measurement), hexm);
	attest_hex_encode(s->claims.host_data, sizeof(s->claims.host_data), hexh);
	log_info("session %u: guest evidence verified (measurement %.16s..., "
	    "host data %.16s...)", s->id, hexm, hexh);
	attest_report_data(ATTEST_ROLE_VTPMD, s->h, rd);
	if ((rc = attest_evidence_get(V->attester, rd, ev, sizeof(ev), &evlen)) != 0 ||
	    (rc = chan_send(s->ch, MSG_EVIDENCE, ev, evlen)) != 0) {
		session_fail(s, ERR_INTERNAL, "could not send own evidence");
		return;
	}
	s->state = S_ATTACH;
}

static void
session_attach(struct session *s, const uint8_t *body, size_t len)
{
	struct cursor cur;
	uint8_t version;
	char why[256];
	int rc, code = ERR_INTERNAL;

	cur_init(&cur, body, len);
	if (cur_get_u8(&cur, &version) != 0 ||
	    cur_get_u32(&cur, &s->attach_flags) != 0 || cur_end(&cur) != 0) {
		session_fail(s, ERR_PROTOCOL, "malformed ATTACH");
		return;
	}
	if (version != VTPM_PROTO_VERSION && version != VTPM_PROTO_VERSION_FRESH) {
		session_fail(s, ERR_PROTOCOL, "unsupported protocol version");
		return;
	}
	s->version = version;
	if (s->attach_flags & ~(uint32_t)ATTACH_F_AUTO_STARTUP) {
		session_fail(s, ERR_PROTOCOL, "unknown ATTACH flags");
		return;
	}
	if (V->shutting_down) {
		session_fail(s, ERR_SHUTTING_DOWN, "vtpmd is shutting down");
		return;
	}
	/* Stop reading: from here the fd belongs to the instance's worker. */
	ev_del(&s->ev);
	s->ev.fd = -1;
	s->state = S_WAIT_WORKER;
	rc = inst_attach(s, &s->claims, s->attach_flags, why, sizeof(why), &code);
	if (rc != 0)
		session_fail(s, code, why);
}

/* Called by instance.c when the worker for a waiting session is ready (or failed). */
void
session_attach_ready(struct session *s, struct inst *in, int ok)
{
	if (!ok) {
		session_fail(s, ERR_UNAVAILABLE, "instance could not be started");
		return;
	}
	inst_handoff(in, s);
}

struct chan *
session_chan(struct session *s)
{
	return s->ch;
}

unsigned
session_id(const struct session *s)
{
	return s->id;
}

uint32_t
session_attach_flags(const struct session *s)
{
	return s->attach_flags;
}

int
session_wants_freshness(const struct session *s)
{
	return s->version >= VTPM_PROTO_VERSION_FRESH;
}

void
session_done(struct session *s)
{
	session_free(s);
}

void
session_failed(struct session *s, int code, const char *why)
{
	session_fail(s, code, why);
}

void
session_event(struct session *s, uint32_t events)
{
	const uint8_t *frame;
	size_t flen, blen;
	uint8_t type;
	int rc;

	for (;;) {
		rc = chan_read_frame(s->ch, &frame, &flen);
		if (rc == 0)
			return;
		if (rc < 0) {
			session_fail(s, 0, rc == VTPM_E_CLOSED ? "peer closed during handshake" :
			    rc == VTPM_E_SHORT ? "truncated frame" :
			    rc == VTPM_E_FORMAT ? "zero-length frame" : "read error");
			return;
		}
		switch (s->state) {
		case S_MSG1:
			if ((rc = session_msg1(s, frame, flen)) != 0) {
				session_fail(s, 0, "bad handshake message 1");
				return;
			}
			break;
		case S_MSG3:
			if ((rc = session_msg3(s, frame, flen)) != 0) {
				session_fail(s, 0, "bad handshake message 3");
				return;
			}
			break;
		case S_EVIDENCE:
		case S_ATTACH:
			rc = chan_open(s->ch, frame, flen, &type, sbuf, sizeof(sbuf), &blen);
			if (rc != 0) {
				session_fail(s, 0, "frame failed authentication");
				return;
			}
			if (s->state == S_EVIDENCE && type == MSG_EVIDENCE)
				session_evidence(s, sbuf, blen);
			else if (s->state == S_ATTACH && type == MSG_ATTACH)
				session_attach(s, sbuf, blen);
			else
				session_fail(s, ERR_PROTOCOL, "unexpected message");
			return;		/* s may be gone, or no longer ours to read */
		case S_WAIT_WORKER:
			session_fail(s, ERR_PROTOCOL, "message before ATTACHED");
			return;
		}
	}
}

void
sessions_expire(const struct timespec *now)
{
	struct session *s, *t;

	TAILQ_FOREACH_SAFE(s, &sessions, entry, t) {
		if (s->state == S_WAIT_WORKER)
			continue;
		if (now->tv_sec > s->deadline.tv_sec ||
		    (now->tv_sec == s->deadline.tv_sec && now->tv_nsec > s->deadline.tv_nsec))
			session_fail(s, ERR_PROTOCOL, "handshake timed out");
	}
}

void
sessions_close_all(void)
{
	struct session *s, *t;

	TAILQ_FOREACH_SAFE(s, &sessions, entry, t)
		session_fail(s, ERR_SHUTTING_DOWN, "vtpmd is shutting down");
}
