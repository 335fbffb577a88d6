/*
 * vtpm_guest.c: vtpm-guest, the guest agent. Connects to vtpmd, runs the
 * Noise XX handshake as initiator, proves the guest by attestation, checks
 * vtpmd's evidence against the pinned measurements, attaches, and then
 * serves the guest's TPM on a local unix socket (docs/LOCAL-PROTOCOL.md)
 * to the TCTI plugin and other clients. Trusts nothing from vtpmd before
 * its evidence verifies, and nothing from local clients beyond one request.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "attest.h"
#include "channel.h"
#include "cursor.h"
#include "endpoint.h"
#include "local_proto.h"
#include "log.h"
#include "noise.h"
#include "proto.h"
#include "tcti_vtpm.h"

#define MAX_CLIENTS	64
#define REQ_MAX		(VTPM_LOCAL_HDR_LEN + VTPM_LOCAL_MAX_BODY)

struct client {
	int	fd;
	int	nreq;		/* requests served: HELLO must be the first */
	uint8_t	buf[REQ_MAX];
	size_t	have;
};

static struct guest {
	struct endpoint		 server;
	struct attest_provider	*attester;
	struct attest_verify_cfg verify;
	uint8_t			 pinned[8][ATTEST_MEASUREMENT_LEN];
	const char		*socket_path;
	struct chan		*ch;
	int			 lfd;
	struct client		 clients[MAX_CLIENTS];
	int			 cmd_timeout_ms;
	int			 no_retry;
	int			 backoff_ms;
	struct timespec		 next_try;
	char			 instance[64];
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
"usage: vtpm-guest --server ENDPOINT --socket PATH [--attestation sim]\n"
"                  [--sim-measurement HEX48] [--sim-host-data HEX32] [--sim-launch-id HEX32]\n"
"                  [--vtpmd-measurement HEX48 ...] [--command-timeout MS] [--no-retry] [-v]\n");
}

/* ---------- the channel to vtpmd ---------- */

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
	snprintf(why, whylen, "vtpmd refused (code %u): %.*s", code, (int)n, text);
	return code == ERR_BUSY || code == ERR_UNAVAILABLE || code == ERR_SHUTTING_DOWN ?
	    VTPM_E_BUSY : VTPM_E_POLICY;
}

/* Connects, handshakes, attests both ways and attaches. */
static int
guest_connect(char *why, size_t whylen)
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
	int fd, rc;

	if ((rc = endpoint_connect(&G.server, 5000, &fd)) != 0) {
		snprintf(why, whylen, "cannot connect to vtpmd: %s", vtpm_strerror(rc));
		return rc;
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
	    (rc = chan_write_frame(ch, out, olen, 5000)) != 0 ||
	    (rc = chan_wait_frame(ch, 10000, &frame, &flen)) < 0 ||
	    (rc = noise_hs_read(hs, frame, flen, rbuf, sizeof(rbuf), &plen)) != 0 ||
	    (rc = noise_hs_write(hs, NULL, 0, out, sizeof(out), &olen)) != 0 ||
	    (rc = chan_write_frame(ch, out, olen, 5000)) != 0 ||
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
	if ((rc = chan_recv(ch, 30000, &type, rbuf, sizeof(rbuf), &blen)) != 0) {
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
	attach[0] = VTPM_PROTO_VERSION;
	be32_enc(attach + 1, ATTACH_F_AUTO_STARTUP);
	if ((rc = chan_send(ch, MSG_ATTACH, attach, sizeof(attach))) != 0 ||
	    (rc = chan_recv(ch, 60000, &type, rbuf, sizeof(rbuf), &blen)) != 0) {
		snprintf(why, whylen, "attach failed: %s", vtpm_strerror(rc));
		goto fail;
	}
	if (type == MSG_ERROR) {
		rc = fail_reason(rbuf, blen, why, whylen);
		goto fail;
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

/* One connection attempt, respecting the backoff schedule. */
static void
guest_try_connect(int force)
{
	struct timespec now;
	char why[320];
	int rc;

	if (G.ch != NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!force && (now.tv_sec < G.next_try.tv_sec ||
	    (now.tv_sec == G.next_try.tv_sec && now.tv_nsec < G.next_try.tv_nsec)))
		return;
	rc = guest_connect(why, sizeof(why));
	if (rc == 0)
		return;
	log_warnx("%s", why);
	if (G.no_retry)
		exit(1);
	G.backoff_ms = G.backoff_ms == 0 ? 100 : G.backoff_ms * 2;
	if (G.backoff_ms > 5000)
		G.backoff_ms = 5000;
	G.next_try = now;
	G.next_try.tv_sec += G.backoff_ms / 1000;
	G.next_try.tv_nsec += (long)(G.backoff_ms % 1000) * 1000000;
	if (G.next_try.tv_nsec >= 1000000000) {
		G.next_try.tv_sec++;
		G.next_try.tv_nsec -= 1000000000;
	}
}

/*
 * Sends one TPM command to vtpmd and waits for its response. A command that
 * could not be sent at all is retried once on a fresh connection (it cannot
 * have executed); one that was sent but not answered fails (it may have).
 */
static int
tpm_transact(uint8_t locality, const uint8_t *cmd, size_t len, uint8_t *rsp,
    size_t cap, size_t *rlen)
{
	uint8_t msg[1 + VTPM_LOCAL_MAX_COMMAND];
	uint8_t type;
	int rc, attempt;

	msg[0] = locality;
	memcpy(msg + 1, cmd, len);
	for (attempt = 0; attempt < 2; attempt++) {
		if (G.ch == NULL)
			guest_try_connect(1);
		if (G.ch == NULL)
			return VTPM_E_CLOSED;
		rc = chan_send(G.ch, MSG_TPM_CMD, msg, 1 + len);
		if (rc == 0)
			break;
		guest_disconnect(vtpm_strerror(rc));
	}
	if (rc != 0)
		return rc;
	rc = chan_recv(G.ch, G.cmd_timeout_ms, &type, rsp, cap, rlen);
	if (rc != 0) {
		guest_disconnect(rc == VTPM_E_TIMEOUT ? "command timed out" : vtpm_strerror(rc));
		return rc;
	}
	if (type != MSG_TPM_RSP || *rlen < TPM2_HDR_LEN || be32_dec(rsp + 2) != *rlen) {
		guest_disconnect("malformed response from vtpmd");
		return VTPM_E_PROTO;
	}
	return 0;
}

/* ---------- local clients ---------- */

static void
client_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
	c->have = 0;
}

static int
client_reply(struct client *c, uint32_t status, const uint8_t *body, size_t len)
{
	uint8_t hdr[VTPM_LOCAL_HDR_LEN];
	struct iovec iov[2];
	ssize_t n;
	size_t total = sizeof(hdr) + len, done = 0;

	be32_enc(hdr, status);
	be32_enc(hdr + 4, (uint32_t)len);
	while (done < total) {
		iov[0].iov_base = hdr + (done < sizeof(hdr) ? done : sizeof(hdr));
		iov[0].iov_len = done < sizeof(hdr) ? sizeof(hdr) - done : 0;
		iov[1].iov_base = (uint8_t *)body + (done > sizeof(hdr) ? done - sizeof(hdr) : 0);
		iov[1].iov_len = len - (done > sizeof(hdr) ? done - sizeof(hdr) : 0);
		n = writev(c->fd, iov, 2);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static void
client_request(struct client *c, uint32_t op, const uint8_t *body, size_t len)
{
	uint8_t hello[VTPM_LOCAL_HELLO_LEN];
	size_t rlen;
	int rc;

	switch (op) {
	case VTPM_LOCAL_OP_HELLO:
		if (len != VTPM_LOCAL_HELLO_LEN || c->nreq != 1 ||
		    be32_dec(body) != VTPM_LOCAL_VERSION) {
			(void)client_reply(c, VTPM_LOCAL_STATUS_BAD_REQUEST, NULL, 0);
			return;
		}
		be32_enc(hello, VTPM_LOCAL_VERSION);
		be32_enc(hello + 4, be32_dec(body + 4) & VTPM_LOCAL_HELLO_RAW);
		(void)client_reply(c, VTPM_LOCAL_STATUS_OK, hello, sizeof(hello));
		return;
	case VTPM_LOCAL_OP_CANCEL:
		(void)client_reply(c, len == 0 ? VTPM_LOCAL_STATUS_OK :
		    VTPM_LOCAL_STATUS_BAD_REQUEST, NULL, 0);
		return;
	case VTPM_LOCAL_OP_TPM_COMMAND:
		if (local_check_tpm_command(body, len) != 0) {
			(void)client_reply(c, VTPM_LOCAL_STATUS_BAD_REQUEST, NULL, 0);
			return;
		}
		rc = tpm_transact(body[0], body + 1, len - 1, rbuf, sizeof(rbuf), &rlen);
		if (rc != 0)
			(void)client_reply(c, VTPM_LOCAL_STATUS_TPM_UNAVAIL, NULL, 0);
		else
			(void)client_reply(c, VTPM_LOCAL_STATUS_OK, rbuf, rlen);
		return;
	}
	(void)client_reply(c, VTPM_LOCAL_STATUS_BAD_REQUEST, NULL, 0);
}

static void
client_readable(struct client *c)
{
	const uint8_t *body;
	uint32_t op, len;
	size_t used;
	ssize_t n;
	int rc;

	n = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		client_close(c);
		return;
	}
	c->have += (size_t)n;
	while ((rc = local_request_next(c->buf, c->have, &op, &body, &len, &used)) == 1) {
		c->nreq++;
		client_request(c, op, body, len);
		if (c->fd < 0)
			return;
		memmove(c->buf, c->buf + used, c->have - used);
		c->have -= used;
	}
	if (rc < 0) {
		log_warnx("local client announced an oversized request; closing it");
		(void)client_reply(c, VTPM_LOCAL_STATUS_BAD_REQUEST, NULL, 0);
		client_close(c);
	}
}

static int
local_listen(const char *path)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		fatalx("socket path too long: %s", path);
	strcpy(sun.sun_path, path);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		fatal("socket");
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		fatal("bind %s", path);
	if (chmod(path, 0660) != 0)
		fatal("chmod %s", path);
	if (listen(fd, 64) != 0)
		fatal("listen");
	return fd;
}

static void
serve(void)
{
	struct pollfd pfd[1 + MAX_CLIENTS];
	int i, n, fd, map[1 + MAX_CLIENTS];

	for (i = 0; i < MAX_CLIENTS; i++)
		G.clients[i].fd = -1;
	while (!G.stop) {
		guest_try_connect(0);
		n = 0;
		pfd[n].fd = G.lfd;
		pfd[n].events = POLLIN;
		map[n++] = -1;
		for (i = 0; i < MAX_CLIENTS; i++) {
			if (G.clients[i].fd < 0)
				continue;
			pfd[n].fd = G.clients[i].fd;
			pfd[n].events = POLLIN;
			map[n++] = i;
		}
		if (poll(pfd, (nfds_t)n, G.ch == NULL ? 100 : 1000) < 0) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		/* vtpmd never speaks unasked: readable now means closed or broken. */
		if (G.ch != NULL) {
			struct pollfd cp = { .fd = chan_fd(G.ch), .events = POLLIN };

			if (poll(&cp, 1, 0) > 0)
				guest_disconnect("vtpmd closed the connection");
		}
		for (i = 1; i < n; i++)
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				client_readable(&G.clients[map[i]]);
		if (pfd[0].revents & POLLIN) {
			while ((fd = accept4(G.lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
				for (i = 0; i < MAX_CLIENTS && G.clients[i].fd >= 0; i++)
					;
				if (i == MAX_CLIENTS) {
					log_warnx("too many local clients; refusing one");
					close(fd);
					continue;
				}
				G.clients[i].fd = fd;
				G.clients[i].have = 0;
				G.clients[i].nreq = 0;
			}
		}
	}
}

/* --attestation: this guest's provider, and what it accepts from vtpmd. */
#define GUEST_LAUNCH_FILE	"/run/vtpm-guest-launch-id"	/* TDX: see docs/ATTESTATION.md */
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
	OPT_PIN, OPT_TIMEOUT, OPT_NORETRY };

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "attestation", required_argument, NULL, OPT_ATTEST },
		{ "attestation-trust-test-ark", no_argument, NULL, OPT_TRUST_ARK },
		{ "attestation-cache-dir", required_argument, NULL, OPT_ACACHE },
		{ "sim-measurement", required_argument, NULL, OPT_MEAS },
		{ "sim-host-data", required_argument, NULL, OPT_HOST },
		{ "sim-launch-id", required_argument, NULL, OPT_LAUNCH },
		{ "vtpmd-measurement", required_argument, NULL, OPT_PIN },
		{ "command-timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "no-retry", no_argument, NULL, OPT_NORETRY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint8_t meas[ATTEST_MEASUREMENT_LEN] = { 0 }, host[ATTEST_HOST_DATA_LEN] = { 0 };
	uint8_t launch[ATTEST_LAUNCH_ID_LEN];
	const char *server = NULL, *attestation = "sim";
	int ch, have_launch = 0, npin = 0, rc;

	log_init("vtpm-guest", LOG_LVL_INFO);
	G.socket_path = VTPM_LOCAL_DEFAULT_PATH;
	G.cmd_timeout_ms = 120000;
	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (ch) {
		case OPT_SERVER:	server = optarg; break;
		case OPT_SOCKET:	G.socket_path = optarg; break;
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
			if (G.cmd_timeout_ms <= 0)
				fatalx("--command-timeout: want milliseconds > 0");
			break;
		case OPT_NORETRY:	G.no_retry = 1; break;
		case 'v':		log_init("vtpm-guest", LOG_LVL_DEBUG); break;
		case 'h':		usage(stdout); return 0;
		default:		usage(stderr); return 2;
		}
	}
	if (server == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0)
		fatalx("sodium_init");
	if (endpoint_parse(server, 0, &G.server) != 0)
		fatalx("--server %s: not a valid endpoint", server);
	if (!have_launch)
		randombytes_buf(launch, sizeof(launch));	/* a new launch (sim) */
	if ((rc = guest_attest_setup(attestation, meas, host, launch)) != 0)
		fatalx("--attestation %s: %s", attestation, vtpm_strerror(rc));
	G.verify.av_measurements = (const uint8_t (*)[ATTEST_MEASUREMENT_LEN])G.pinned;
	G.verify.av_nmeasurements = (size_t)npin;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	/* Attach first: the local socket appears only once the TPM is there. */
	guest_try_connect(1);
	while (G.ch == NULL && !G.stop) {
		usleep(50000);
		guest_try_connect(0);
	}
	if (G.stop)
		return 0;
	G.lfd = local_listen(G.socket_path);
	log_info("serving the TPM on %s", G.socket_path);
	serve();
	unlink(G.socket_path);
	chan_free(G.ch);
	log_info("stopped");
	return 0;
}
