/*
 * vtpm_guest.c: vtpm-guest, the guest agent. Connects to vtpmd, runs the
 * Noise XX handshake as initiator, proves the guest by attestation, checks
 * vtpmd's evidence against the pinned measurements, attaches, and then
 * serves the guest's TPM through its front ends (guest.h): the local
 * socket (docs/LOCAL-PROTOCOL.md), the kernel's vtpm_proxy device
 * (--proxy) and a swtpm-compatible endpoint (--swtpm). Keeps the channel
 * up: reconnects with backoff and re-attests. Trusts nothing from vtpmd
 * before its evidence verifies, and nothing from front ends' peers beyond
 * one request.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "attest.h"
#include "channel.h"
#include "cursor.h"
#include "endpoint.h"
#include "freshness.h"
#include "guest.h"
#include "log.h"
#include "noise.h"
#include "proto.h"
#include "tcti_vtpm.h"

#define MAX_FES		4

static struct guest {
	struct endpoint		 server;
	struct attest_provider	*attester;
	struct attest_verify_cfg verify;
	uint8_t			 pinned[8][ATTEST_MEASUREMENT_LEN];
	struct chan		*ch;
	uint32_t		 attach_flags;	/* MSG_ATTACH flags */
	int			 attached_once;
	uint32_t		 refusal;	/* ERR_* of the last failed attempt, or 0 */
	int			 detached;	/* after guest_detach(): reconnect on demand only */
	int			 cmd_timeout_ms;
	int			 no_retry;
	int			 backoff_ms;
	struct timespec		 next_try;
	char			 instance[64];
	const char		*state_dir;	/* --state-dir: the freshness record */
	int			 accept_rollback; /* --accept-rollback */
	uint8_t			 uuid[FRESH_UUID_LEN];	/* of the attached instance */
	uint64_t		 fresh_gen;	/* its highest generation recorded */
	const struct guest_fe	*fes[MAX_FES];
	int			 nfes;
	volatile sig_atomic_t	 stop;
} G;

static uint8_t rbuf[CHAN_MAX_BODY];

static void
on_signal(int sig)
{
	G.stop = 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: vtpm-guest --server ENDPOINT [--socket PATH [--no-raw]] [--proxy | --swtpm PATH]\n"
"                  [--attestation auto|snp|tdx|sim] [--attestation-trust-test-ark]\n"
"                  [--attestation-cache-dir DIR] [--vtpmd-measurement HEX48 ...]\n"
"                  [--sim-measurement HEX48] [--sim-host-data HEX32] [--sim-launch-id HEX32]\n"
"                  [--state-dir DIR [--accept-rollback]]\n"
"                  [--command-timeout MS] [--allow-remote] [--no-retry] [-v]\n"
"       vtpm-guest bind-ek --out FILE ...   (vtpm-guest bind-ek --help)\n");
}

/* ---------- deadlines ---------- */

void
guest_deadline_in(struct timespec *dl, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, dl);
	dl->tv_sec += ms / 1000;
	dl->tv_nsec += (long)(ms % 1000) * 1000000;
	if (dl->tv_nsec >= 1000000000) {
		dl->tv_sec++;
		dl->tv_nsec -= 1000000000;
	}
}

int
guest_ms_left(const struct timespec *dl)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(dl->tv_sec - now.tv_sec) * 1000 +
	    (dl->tv_nsec - now.tv_nsec) / 1000000;
	if (ms <= 0)
		return 0;
	return ms > 86400000 ? 86400000 : (int)ms;
}

/* A step's own bound, cut to what is left of dl (if any); at least 1 ms. */
static int
step_ms(int step, const struct timespec *dl)
{
	int left;

	if (dl == NULL)
		return step;
	left = guest_ms_left(dl);
	if (left < 1)
		left = 1;
	return left < step ? left : step;
}

int
guest_command_timeout_ms(void)
{
	return G.cmd_timeout_ms;
}

/* ---------- the channel to vtpmd ---------- */
/* Reads an ERROR body into why; its code (an enum vtpm_errcode) in G.refusal. */
static int
fail_reason(const uint8_t *body, size_t len, char *why, size_t whylen)
{
	struct cursor cur;
	uint32_t code;
	uint16_t n;
	const uint8_t *text;

	cur_init(&cur, body, len);
	if (cur_get_u32(&cur, &code) != 0 || cur_get_u16(&cur, &n) != 0 ||
	    cur_get_ref(&cur, &text, n) != 0 || cur_end(&cur) != 0) {
		snprintf(why, whylen, "vtpmd sent a malformed error");
		return VTPM_E_PROTO;
	}
	G.refusal = code;
	snprintf(why, whylen, "vtpmd refused (code %u): %.*s", code, (int)n, text);
	return code == ERR_BUSY || code == ERR_UNAVAILABLE || code == ERR_SHUTTING_DOWN ?
	    VTPM_E_BUSY : VTPM_E_POLICY;
}

/* ---------- the freshness record (docs/PROTOCOL.md section 8) ---------- */

/* Records a generation vtpmd reported as durable, if it is new. */
static void
fresh_advance(uint64_t gen)
{
	char why[320];

	if (G.state_dir == NULL || gen <= G.fresh_gen)
		return;
	if (fresh_store(G.state_dir, G.uuid, gen, why, sizeof(why)) != 0) {
		/* keeps the lower record: no false alarm, less protection */
		log_warnx("cannot record generation %llu: %s",
		    (unsigned long long)gen, why);
		return;
	}
	G.fresh_gen = gen;
}

/*
 * MSG_INSTANCE at attach: the instance's UUID and durable generation. A
 * generation lower than this guest has recorded means vtpmd's store was
 * rolled back (or restored): refused unless --accept-rollback.
 */
static int
fresh_check_attach(const uint8_t *body, size_t len, char *why, size_t whylen)
{
	uint64_t gen, seen;
	char hex[2 * FRESH_UUID_LEN + 1];
	int rc;

	if (len != FRESH_UUID_LEN + 8) {
		snprintf(why, whylen, "malformed INSTANCE from vtpmd");
		return VTPM_E_PROTO;
	}
	memcpy(G.uuid, body, FRESH_UUID_LEN);
	gen = be64_dec(body + FRESH_UUID_LEN);
	attest_hex_encode(G.uuid, FRESH_UUID_LEN, hex);
	rc = fresh_load(G.state_dir, G.uuid, &seen, why, whylen);
	if (rc < 0) {
		G.refusal = ERR_POLICY;	/* an operator must look: fail commands now */
		return VTPM_E_IO;
	}
	if (rc == 1) {
		log_info("instance %s: no freshness record yet; starting at generation %llu",
		    hex, (unsigned long long)gen);
		seen = 0;
	}
	if (gen < seen) {
		if (!G.accept_rollback) {
			snprintf(why, whylen, "rollback detected: vtpmd presents generation "
			    "%llu of instance %s, but this guest has seen generation %llu "
			    "(the store was replaced by an older copy, or restored; "
			    "--accept-rollback accepts it knowingly)",
			    (unsigned long long)gen, hex, (unsigned long long)seen);
			G.refusal = ERR_POLICY;
			return VTPM_E_POLICY;
		}
		log_warnx("--accept-rollback: accepting generation %llu of instance %s "
		    "(this guest had seen %llu)", (unsigned long long)gen, hex,
		    (unsigned long long)seen);
	}
	/* the record follows vtpmd: raised, or lowered when accepted above */
	G.fresh_gen = seen;
	if (rc == 1 || gen != seen) {
		char err[320];

		if (fresh_store(G.state_dir, G.uuid, gen, err, sizeof(err)) != 0)
			log_warnx("cannot record generation %llu: %s",
			    (unsigned long long)gen, err);
		else
			G.fresh_gen = gen;
	}
	return 0;
}

/*
 * chan_recv for the answer to a request: a STATE_GEN ahead of it is
 * recorded first (so that an answer the guest acts on never outruns its
 * record), then the answer is read.
 */
static int
guest_recv(struct chan *ch, int timeout_ms, uint8_t *type, uint8_t *body, size_t cap,
    size_t *len)
{
	int rc;

	for (;;) {
		rc = chan_recv(ch, timeout_ms, type, body, cap, len);
		if (rc != 0 || *type != MSG_STATE_GEN || G.state_dir == NULL)
			return rc;
		if (*len != 8)
			return VTPM_E_PROTO;
		fresh_advance(be64_dec(body));
	}
}

/*
 * Connects, handshakes, attests both ways and attaches. Each step has its
 * own bound, cut to what is left of dl when dl is not NULL.
 */
static int
guest_connect(char *why, size_t whylen, const struct timespec *dl)
{
	uint8_t spriv[32], spub[32], out[256], h[NOISE_HASH_LEN];
	uint8_t rd[ATTEST_REPORT_DATA_LEN], ev[ATTEST_MAX_EVIDENCE], attach[5];
	struct noise_cipher tx, rx;
	struct attest_claims peer;
	struct noise_hs *hs = NULL;
	struct chan *ch = NULL;
	const uint8_t *frame;
	size_t flen, olen, plen, evlen, blen;
	uint8_t type;
	int fd, fl, rc;

	if ((rc = endpoint_connect(&G.server, step_ms(5000, dl), &fd)) != 0) {
		snprintf(why, whylen, "cannot connect to vtpmd: %s%s%s", vtpm_strerror(rc),
		    rc == VTPM_E_IO ? ": " : "", rc == VTPM_E_IO ? strerror(errno) : "");
		return rc;
	}
	/* Nonblocking, so that every wait on the channel keeps its bound. */
	if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
		snprintf(why, whylen, "fcntl: %s", strerror(errno));
		close(fd);
		return VTPM_E_IO;
	}
	if ((ch = chan_new(fd, 0)) == NULL) {
		close(fd);
		return VTPM_E_NOMEM;
	}
	noise_keypair_generate(spriv, spub);
	hs = noise_hs_new(NOISE_XX, 1, (const uint8_t *)CHAN_PROLOGUE,
	    strlen(CHAN_PROLOGUE), spriv, NULL);
	sodium_memzero(spriv, sizeof(spriv));
	if (hs == NULL) {
		rc = VTPM_E_NOMEM;
		goto fail;
	}
	if ((rc = noise_hs_write(hs, NULL, 0, out, sizeof(out), &olen)) != 0 ||
	    (rc = chan_write_frame(ch, out, olen, step_ms(5000, dl))) != 0 ||
	    (rc = chan_wait_frame(ch, step_ms(10000, dl), &frame, &flen)) < 0 ||
	    (rc = noise_hs_read(hs, frame, flen, rbuf, sizeof(rbuf), &plen)) != 0 ||
	    (rc = noise_hs_write(hs, NULL, 0, out, sizeof(out), &olen)) != 0 ||
	    (rc = chan_write_frame(ch, out, olen, step_ms(5000, dl))) != 0 ||
	    (rc = noise_hs_split(hs, &tx, &rx, h)) != 0) {
		snprintf(why, whylen, "handshake with vtpmd failed: %s", vtpm_strerror(rc));
		goto fail;
	}
	noise_hs_free(hs);
	hs = NULL;
	chan_set_ciphers(ch, &tx, &rx);
	noise_cipher_wipe(&tx);
	noise_cipher_wipe(&rx);

	attest_report_data(ATTEST_ROLE_GUEST, h, rd);
	if ((rc = attest_evidence_get(G.attester, rd, ev, sizeof(ev), &evlen)) != 0 ||
	    (rc = chan_send(ch, MSG_EVIDENCE, ev, evlen)) != 0) {
		snprintf(why, whylen, "could not send evidence: %s", vtpm_strerror(rc));
		goto fail;
	}
	if ((rc = chan_recv(ch, step_ms(30000, dl), &type, rbuf, sizeof(rbuf), &blen)) != 0) {
		snprintf(why, whylen, "no evidence from vtpmd: %s", vtpm_strerror(rc));
		goto fail;
	}
	if (type == MSG_ERROR) {
		rc = fail_reason(rbuf, blen, why, whylen);
		goto fail;
	}
	if (type != MSG_EVIDENCE) {
		snprintf(why, whylen, "vtpmd sent message 0x%02x instead of evidence", type);
		rc = VTPM_E_PROTO;
		goto fail;
	}
	attest_report_data(ATTEST_ROLE_VTPMD, h, rd);
	{
		char reason[256];

		rc = attest_evidence_verify(&G.verify, rbuf, blen, rd, &peer, reason,
		    sizeof(reason));
		if (rc != 0) {
			snprintf(why, whylen, "vtpmd's evidence refused: %s", reason);
			rc = VTPM_E_POLICY;
			goto fail;
		}
	}
	/* with a freshness record, version 2: vtpmd reports the generation */
	attach[0] = G.state_dir != NULL ? VTPM_PROTO_VERSION_FRESH : VTPM_PROTO_VERSION;
	be32_enc(attach + 1, G.attach_flags);
	if ((rc = chan_send(ch, MSG_ATTACH, attach, sizeof(attach))) != 0 ||
	    (rc = chan_recv(ch, step_ms(60000, dl), &type, rbuf, sizeof(rbuf), &blen)) != 0) {
		snprintf(why, whylen, "attach failed: %s", vtpm_strerror(rc));
		goto fail;
	}
	if (type == MSG_ERROR) {
		rc = fail_reason(rbuf, blen, why, whylen);
		goto fail;
	}
	if (G.state_dir != NULL) {
		if (type != MSG_INSTANCE) {
			snprintf(why, whylen, "vtpmd sent message 0x%02x instead of "
			    "INSTANCE", type);
			rc = VTPM_E_PROTO;
			goto fail;
		}
		if ((rc = fresh_check_attach(rbuf, blen, why, whylen)) != 0)
			goto fail;	/* why says: rollback, or the record */
		if ((rc = chan_send(ch, MSG_ATTACH_CONFIRM, NULL, 0)) != 0 ||
		    (rc = chan_recv(ch, step_ms(60000, dl), &type, rbuf, sizeof(rbuf),
		    &blen)) != 0) {
			snprintf(why, whylen, "attach failed: %s", vtpm_strerror(rc));
			goto fail;
		}
	}
	if (type != MSG_ATTACHED || blen < 2 || rbuf[1] > 63 || blen != 2u + rbuf[1]) {
		snprintf(why, whylen, "malformed ATTACHED from vtpmd");
		rc = VTPM_E_PROTO;
		goto fail;
	}
	memcpy(G.instance, rbuf + 2, rbuf[1]);
	G.instance[rbuf[1]] = '\0';
	log_info("attached to vtpmd instance %s (%s)", G.instance,
	    rbuf[0] == ATTACHED_RESUMED ? "resumed: PCRs and sessions kept" :
	    rbuf[0] == ATTACHED_NEW ? "new TPM manufactured" : "powered on: PCRs reset");
	if (G.attached_once && rbuf[0] != ATTACHED_RESUMED)
		log_warnx("vtpmd had lost this launch's volatile state (it was not "
		    "stopped in order): the TPM was reset%s", (G.attach_flags &
		    ATTACH_F_AUTO_STARTUP) ? " and started again" :
		    " and needs TPM2_Startup");
	G.attached_once = 1;
	sodium_memzero(h, sizeof(h));
	G.ch = ch;
	G.backoff_ms = 0;
	return 0;
fail:
	sodium_memzero(h, sizeof(h));
	if (hs != NULL)
		noise_hs_free(hs);
	chan_free(ch);
	return rc;
}

static void
guest_disconnect(const char *why)
{
	if (G.ch == NULL)
		return;
	log_warnx("connection to vtpmd lost: %s", why);
	chan_free(G.ch);
	G.ch = NULL;
}

/* vtpmd never speaks unasked: readable now means closed or broken. */
static void
guest_check_alive(void)
{
	struct pollfd cp;

	if (G.ch == NULL)
		return;
	cp.fd = chan_fd(G.ch);
	cp.events = POLLIN;
	cp.revents = 0;
	if (poll(&cp, 1, 0) > 0)
		guest_disconnect("vtpmd closed the connection");
}

static int
before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * One connection attempt, unless the backoff schedule says not yet (and
 * force is 0). Returns 0 once connected, 1 if it did not try (backoff), -1
 * if the attempt failed (G.refusal says whether vtpmd refused it).
 */
static int
guest_try_connect(int force, const struct timespec *dl)
{
	struct timespec now;
	char why[320];
	int rc;

	if (G.ch != NULL)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!force && before(&now, &G.next_try))
		return 1;
	G.refusal = 0;
	rc = guest_connect(why, sizeof(why), dl);
	if (rc == 0)
		return 0;
	log_warnx("%s", why);
	if (G.no_retry)
		exit(1);
	G.backoff_ms = G.backoff_ms == 0 ? 100 : G.backoff_ms * 2;
	if (G.backoff_ms > 5000)
		G.backoff_ms = 5000;
	guest_deadline_in(&G.next_try, G.backoff_ms);
	return -1;
}

/*
 * Makes sure the channel is up before dl, following the backoff schedule
 * and asking abandon() every 50 ms. Returns GUEST_OK, GUEST_NOT_SENT (dl
 * passed, vtpmd refused, or the agent is stopping) or GUEST_ABANDONED.
 * vtpmd unreachable, or busy with this instance's previous session, or
 * shutting down, is waited out; an explicit refusal (not enrolled, policy,
 * evidence, no root key, fenced) fails the command at once: vtpmd is there
 * and said no.
 */
static int
guest_wait_channel(const struct timespec *dl, guest_abandon_fn abandon, void *arg)
{
	int wait, left, rc, first = 1;

	for (;;) {
		guest_check_alive();
		if (G.ch != NULL)
			return GUEST_OK;
		if (abandon != NULL && abandon(arg))
			return GUEST_ABANDONED;
		if (G.stop || guest_ms_left(dl) == 0)
			return GUEST_NOT_SENT;
		/* a new command tries at once, whatever the backoff says */
		rc = guest_try_connect(first, dl);
		first = 0;
		if (rc == 0)
			return GUEST_OK;
		if (rc < 0 && G.refusal != 0 && G.refusal != ERR_BUSY &&
		    G.refusal != ERR_SHUTTING_DOWN)
			return GUEST_NOT_SENT;
		wait = guest_ms_left(&G.next_try);
		left = guest_ms_left(dl);
		if (wait > left)
			wait = left;
		if (wait > 50)
			wait = 50;
		if (wait > 0)
			(void)poll(NULL, 0, wait);
	}
}

/*
 * Sends one message and waits for the answer of type want. A message that
 * could not be written whole never reached vtpmd as a frame it could
 * authenticate, so it did not run: it is sent again on a new connection
 * (until dl). Once written it is never sent again.
 */
static int
guest_exchange(uint8_t type, const uint8_t *msg, size_t mlen, uint8_t want,
    uint8_t *out, size_t cap, size_t *olen, const struct timespec *dl,
    guest_abandon_fn abandon, void *arg)
{
	char why[320];
	uint8_t rtype;
	int rc;

	for (;;) {
		if ((rc = guest_wait_channel(dl, abandon, arg)) != GUEST_OK)
			return rc;
		if ((rc = chan_send(G.ch, type, msg, mlen)) == 0)
			break;
		guest_disconnect(vtpm_strerror(rc));
	}
	rc = guest_recv(G.ch, step_ms(G.cmd_timeout_ms, dl), &rtype, out, cap, olen);
	if (rc != 0) {
		guest_disconnect(rc == VTPM_E_TIMEOUT ? "no answer within the command "
		    "timeout (the command may have run)" : vtpm_strerror(rc));
		return GUEST_UNKNOWN;
	}
	if (rtype != want) {
		if (rtype == MSG_ERROR)
			(void)fail_reason(out, *olen, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "message 0x%02x instead of 0x%02x",
			    rtype, want);
		guest_disconnect(why);
		return GUEST_UNKNOWN;
	}
	return GUEST_OK;
}

int
guest_tpm_transact(uint8_t locality, const uint8_t *cmd, size_t len,
    uint8_t *rsp, size_t cap, size_t *rlen, const struct timespec *dl,
    guest_abandon_fn abandon, void *arg)
{
	uint8_t msg[1 + TPM2_MAX_CMD];
	int rc;

	if (locality > 4 || len < TPM2_HDR_LEN || len > TPM2_MAX_CMD)
		fatalx("front end passed an unchecked command");
	msg[0] = locality;
	memcpy(msg + 1, cmd, len);
	rc = guest_exchange(MSG_TPM_CMD, msg, 1 + len, MSG_TPM_RSP, rsp, cap, rlen,
	    dl, abandon, arg);
	if (rc == GUEST_OK && (*rlen < TPM2_HDR_LEN || be32_dec(rsp + 2) != *rlen)) {
		guest_disconnect("malformed response from vtpmd");
		return GUEST_UNKNOWN;
	}
	return rc;
}

int
guest_ctrl(uint8_t op, const uint8_t *args, size_t alen, uint32_t *result,
    uint8_t *data, size_t cap, size_t *dlen, const struct timespec *dl)
{
	uint8_t msg[1 + 4096], rsp[64];
	size_t rlen;
	int rc;

	if (alen > sizeof(msg) - 1)
		fatalx("control arguments too long");
	msg[0] = op;
	if (alen > 0)
		memcpy(msg + 1, args, alen);
	rc = guest_exchange(MSG_CTRL, msg, 1 + alen, MSG_CTRL_RSP, rsp, sizeof(rsp),
	    &rlen, dl, NULL, NULL);
	if (rc != GUEST_OK)
		return rc;
	if (rlen < 4 || rlen - 4 > cap) {
		guest_disconnect("malformed control answer from vtpmd");
		return GUEST_UNKNOWN;
	}
	*result = be32_dec(rsp);
	*dlen = rlen - 4;
	if (*dlen > 0)
		memcpy(data, rsp + 4, *dlen);
	return GUEST_OK;
}

void
guest_detach(void)
{
	struct timespec dl;
	uint8_t rsp[64], op = CTRL_DETACH, type;
	size_t rlen;

	G.detached = 1;
	if (G.ch == NULL)
		return;
	guest_deadline_in(&dl, 2000);
	if (chan_send(G.ch, MSG_CTRL, &op, 1) == 0 &&
	    guest_recv(G.ch, step_ms(2000, &dl), &type, rsp, sizeof(rsp), &rlen) == 0 &&
	    type == MSG_CTRL_RSP)
		log_info("detached from vtpmd instance %s", G.instance);
	chan_free(G.ch);
	G.ch = NULL;
}

/* ---------- the event loop ---------- */

void
guest_fe_add(const struct guest_fe *fe)
{
	if (G.nfes == MAX_FES)
		fatalx("too many front ends");
	G.fes[G.nfes++] = fe;
}

static void
guest_serve(void)
{
	struct pollfd pfd[GUEST_MAX_POLLFDS];
	struct timespec dl;
	int cnt[MAX_FES], i, k, n;

	while (!G.stop) {
		if (G.ch == NULL && !G.detached) {
			guest_deadline_in(&dl, G.cmd_timeout_ms);
			(void)guest_try_connect(0, &dl);
		}
		for (i = 0, n = 0; i < G.nfes; i++) {
			cnt[i] = G.fes[i]->fe_fill(pfd + n, GUEST_MAX_POLLFDS - n);
			n += cnt[i];
		}
		for (k = 0; k < n; k++)
			pfd[k].revents = 0;
		if (poll(pfd, (nfds_t)n, G.ch == NULL && !G.detached ? 100 : 1000) < 0) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		guest_check_alive();
		for (i = 0, k = 0; i < G.nfes && !G.stop; k += cnt[i], i++)
			G.fes[i]->fe_dispatch(pfd + k, cnt[i]);
	}
	for (i = 0; i < G.nfes; i++)
		G.fes[i]->fe_stop();
}

/* --attestation: this guest's provider, and what it accepts from vtpmd. */
static int attest_trust_test_ark;		/* --attestation-trust-test-ark */
static const char *attest_cache_dir;		/* --attestation-cache-dir */

static int
guest_attest_setup(const char *kind, const uint8_t meas[ATTEST_MEASUREMENT_LEN],
    const uint8_t host[ATTEST_HOST_DATA_LEN], const uint8_t launch[ATTEST_LAUNCH_ID_LEN])
{
	struct attest_provider_opts o;
	char why[ATTEST_WHY_LEN];
	int rc;

	memset(&o, 0, sizeof(o));
	o.ap_kind = kind;
	o.ap_launch_file = GUEST_LAUNCH_FILE;
	memcpy(o.ap_sim_measurement, meas, ATTEST_MEASUREMENT_LEN);
	memcpy(o.ap_sim_host_data, host, ATTEST_HOST_DATA_LEN);
	memcpy(o.ap_sim_launch_id, launch, ATTEST_LAUNCH_ID_LEN);
	if ((rc = attest_provider_open(&o, &G.attester, why, sizeof(why))) != 0) {
		log_warnx("--attestation %s: %s", kind, why);
		return rc;
	}
	if (strcmp(kind, "sim") == 0) {
		log_warnx("simulated attestation: this guest's evidence proves nothing, and "
		    "vtpmd's is accepted from the public TEST chain (development and tests only)");
		attest_trust_test_ark = 1;
	} else if (attest_trust_test_ark) {
		log_warnx("--attestation-trust-test-ark: vtpmd's evidence may come from the "
		    "public TEST chain, which anyone can forge");
	}
	log_info("attestation: %s", attest_provider_name(G.attester));
	G.verify.av_allow_sim = attest_trust_test_ark;
	G.verify.av_cache_dir = attest_cache_dir;
	return 0;
}

enum { OPT_SERVER = 256, OPT_SOCKET, OPT_ATTEST, OPT_TRUST_ARK, OPT_ACACHE, OPT_MEAS,
	OPT_HOST, OPT_LAUNCH,
	OPT_PIN, OPT_TIMEOUT, OPT_NORETRY, OPT_PROXY, OPT_SWTPM, OPT_REMOTE, OPT_NORAW,
	OPT_STATE_DIR, OPT_ACCEPT_ROLLBACK };

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "proxy", no_argument, NULL, OPT_PROXY },
		{ "swtpm", required_argument, NULL, OPT_SWTPM },
		{ "allow-remote", no_argument, NULL, OPT_REMOTE },
		{ "attestation", required_argument, NULL, OPT_ATTEST },
		{ "attestation-trust-test-ark", no_argument, NULL, OPT_TRUST_ARK },
		{ "attestation-cache-dir", required_argument, NULL, OPT_ACACHE },
		{ "sim-measurement", required_argument, NULL, OPT_MEAS },
		{ "sim-host-data", required_argument, NULL, OPT_HOST },
		{ "sim-launch-id", required_argument, NULL, OPT_LAUNCH },
		{ "vtpmd-measurement", required_argument, NULL, OPT_PIN },
		{ "command-timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "no-retry", no_argument, NULL, OPT_NORETRY },
		{ "no-raw", no_argument, NULL, OPT_NORAW },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "accept-rollback", no_argument, NULL, OPT_ACCEPT_ROLLBACK },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint8_t meas[ATTEST_MEASUREMENT_LEN] = { 0 }, host[ATTEST_HOST_DATA_LEN] = { 0 };
	uint8_t launch[ATTEST_LAUNCH_ID_LEN];
	const char *server = NULL, *attestation = "auto", *socket_path = NULL;
	const char *swtpm_path = NULL;
	int ch, have_launch = 0, npin = 0, rc, proxy = 0, allow_remote = 0;

	if (argc > 1 && strcmp(argv[1], "bind-ek") == 0)
		return guest_bind_ek(argc - 1, argv + 1);
	log_init("vtpm-guest", LOG_LVL_INFO);
	G.cmd_timeout_ms = 120000;
	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (ch) {
		case OPT_SERVER:	server = optarg; break;
		case OPT_SOCKET:	socket_path = optarg; break;
		case OPT_PROXY:		proxy = 1; break;
		case OPT_SWTPM:		swtpm_path = optarg; break;
		case OPT_REMOTE:	allow_remote = 1; break;
		case OPT_ATTEST:	attestation = optarg; break;
		case OPT_TRUST_ARK:	attest_trust_test_ark = 1; break;
		case OPT_ACACHE:	attest_cache_dir = optarg; break;
		case OPT_MEAS:
			if (attest_hex_decode(optarg, meas, sizeof(meas)) != 0)
				fatalx("--sim-measurement: want 96 hex digits");
			break;
		case OPT_HOST:
			if (attest_hex_decode(optarg, host, sizeof(host)) != 0)
				fatalx("--sim-host-data: want 64 hex digits");
			break;
		case OPT_LAUNCH:
			if (attest_hex_decode(optarg, launch, sizeof(launch)) != 0)
				fatalx("--sim-launch-id: want 64 hex digits");
			have_launch = 1;
			break;
		case OPT_PIN:
			if (npin == 8 || attest_hex_decode(optarg, G.pinned[npin], ATTEST_MEASUREMENT_LEN) != 0)
				fatalx("--vtpmd-measurement: want 96 hex digits (at most 8)");
			npin++;
			break;
		case OPT_TIMEOUT:
			G.cmd_timeout_ms = atoi(optarg);
			if (G.cmd_timeout_ms <= 0 || G.cmd_timeout_ms > 3600000)
				fatalx("--command-timeout: want milliseconds, 1..3600000");
			break;
		case OPT_NORETRY:	G.no_retry = 1; break;
		case OPT_NORAW:		local_srv_deny_raw(); break;
		case OPT_STATE_DIR:	G.state_dir = optarg; break;
		case OPT_ACCEPT_ROLLBACK: G.accept_rollback = 1; break;
		case 'v':		log_init("vtpm-guest", LOG_LVL_DEBUG); break;
		case 'h':		usage(stdout); return 0;
		default:		usage(stderr); return 2;
		}
	}
	if (server == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (G.accept_rollback && G.state_dir == NULL)
		fatalx("--accept-rollback needs --state-dir (it lowers the record there)");
	if (G.state_dir == NULL)
		log_info("no --state-dir: a rollback of vtpmd's store to an older copy "
		    "cannot be detected by this guest");
	if (proxy && swtpm_path != NULL)
		fatalx("--proxy and --swtpm exclude each other (the kernel starts its "
		    "TPM itself, a swtpm client's firmware does)");
	/* The local socket is the default front end; with another, on request. */
	if (socket_path == NULL && !proxy && swtpm_path == NULL)
		socket_path = VTPM_LOCAL_DEFAULT_PATH;
	/* A swtpm endpoint serves a raw TPM: its client's firmware sends Startup. */
	G.attach_flags = swtpm_path != NULL ? 0 : ATTACH_F_AUTO_STARTUP;
	if (sodium_init() < 0)
		fatalx("sodium_init");
	if (endpoint_parse(server, allow_remote, &G.server) != 0)
		fatalx("--server %s: not a valid endpoint%s", server, allow_remote ? "" :
		    " (a tcp host other than loopback needs --allow-remote)");
	if (!have_launch)
		randombytes_buf(launch, sizeof(launch));	/* a new launch (sim) */
	if ((rc = guest_attest_setup(attestation, meas, host, launch)) != 0)
		fatalx("--attestation %s: %s", attestation, vtpm_strerror(rc));
	G.verify.av_measurements = (const uint8_t (*)[ATTEST_MEASUREMENT_LEN])G.pinned;
	G.verify.av_nmeasurements = (size_t)npin;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	/*
	 * Attach first: the sockets appear only once the TPM is there, and the
	 * kernel sends commands the moment the proxy device exists.
	 */
	(void)guest_try_connect(1, NULL);
	while (G.ch == NULL && !G.stop) {
		(void)poll(NULL, 0, 50);
		(void)guest_try_connect(0, NULL);
	}
	if (G.stop)
		return 0;
	if (socket_path != NULL)
		local_srv_start(socket_path);
	if (swtpm_path != NULL)
		swtpm_srv_start(swtpm_path);
	if (proxy)
		proxy_start();
	else
		guest_notify_ready();
	guest_serve();
	chan_free(G.ch);	/* the session ends; vtpmd keeps the TPM */
	log_info("stopped");
	return 0;
}
