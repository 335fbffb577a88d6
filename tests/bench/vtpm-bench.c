/*
 * vtpm-bench.c: the benchmark client. Speaks the full vtpmd channel as a
 * guest (Noise XX initiator, simulated evidence bound to the handshake,
 * vtpmd's evidence checked, ATTACH, then MSG_TPM_CMD/MSG_TPM_RSP), and the
 * raw swtpm protocol on swtpm's unix data socket, and times both side by
 * side. Results go to stdout as "R key value unit" lines (bench.h); progress
 * to stderr. Trusts nothing from either server beyond what it checks:
 * frames are authenticated, TPM responses have their header checked.
 *
 * usage: vtpm-bench COMMAND [options]     (see usage() below)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "attest.h"
#include "bench.h"
#include "channel.h"
#include "cursor.h"
#include "endpoint.h"
#include "noise.h"
#include "proto.h"

#define MAX_ROUNDS	16

static struct {
	struct endpoint	 server;		/* vtpmd, --server */
	int		 have_server;
	const char	*admin;			/* vtpmd admin socket path */
	const char	*swtpm;			/* a swtpm data socket */
	const char	*swtpm2;		/* a second one (durable vs plain) */
	const char	*swtpm_dir;		/* DIR/swtpm-N.sock for N guests */
	const char	*swtpm_bin;
	const char	*preload;		/* LD_PRELOAD for spawned swtpm */
	const char	*label;
	const char	*phase;
	const char	*vtpmd_bin;
	int		 rounds;
	int		 iters;
	int		 n;
	int		 threads;
	double		 seconds;
	uint32_t	 base;			/* identity family of the guests */
	pid_t		 vtpmd_pid;
	int		 verbose;
} O = {
	.rounds = 5, .iters = 5000, .n = 1, .threads = 4, .seconds = 5,
	.base = 1, .swtpm_bin = "swtpm", .label = "x", .phase = "new",
};

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "vtpm-bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void
note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "  ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

/* ======================================================================
 * The vtpmd channel, guest side
 * ====================================================================== */

struct vguest {
	struct chan		*ch;
	struct attest_provider	*ap;
	uint8_t			 host[ATTEST_HOST_DATA_LEN];
	uint8_t			 launch[ATTEST_LAUNCH_ID_LEN];
	uint8_t			 how;
	char			 name[64];
	/* phases of the last attach, ns since its start */
	uint64_t		 t_connect, t_handshake, t_evidence, t_attached;
};

static const uint8_t sim_meas[ATTEST_MEASUREMENT_LEN] = {
	0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
	0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
	0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
	0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
};

/*
 * Guest idx of family base: host data idx | base (u16) | "BNCH" | 0..., a
 * fixed launch id derived from it (so a re-attach is the same launch).
 * Distinct host data means a distinct vtpmd instance (auto-enrolled with
 * --dev). The first 6 bytes differ between guests: vtpmd names an
 * auto-enrolled instance after them and allows only 999 collisions.
 */
static void
vg_init(struct vguest *g, uint32_t base, uint32_t idx)
{
	int rc;

	memset(g, 0, sizeof(*g));
	be32_enc(g->host, idx);
	be16_enc(g->host + 4, (uint16_t)base);
	memcpy(g->host + 6, "BNCH", 4);
	crypto_generichash(g->launch, sizeof(g->launch), g->host, sizeof(g->host),
	    (const uint8_t *)"bench-launch", 12);
	if ((rc = attest_provider_sim_new(sim_meas, g->host, g->launch, &g->ap)) != 0)
		die("attest_provider_sim_new: %s", vtpm_strerror(rc));
}

static void
vg_free(struct vguest *g)
{
	if (g->ch != NULL)
		chan_free(g->ch);
	g->ch = NULL;
	attest_provider_free(g->ap);
	g->ap = NULL;
}

/* The text of an ERROR message, for diagnostics. */
static int
error_code(const uint8_t *b, size_t n, char *why, size_t whylen)
{
	struct cursor c;
	uint32_t code;
	uint16_t tl;
	const uint8_t *t;

	cur_init(&c, b, n);
	if (cur_get_u32(&c, &code) != 0 || cur_get_u16(&c, &tl) != 0 ||
	    cur_get_ref(&c, &t, tl) != 0 || cur_end(&c) != 0) {
		snprintf(why, whylen, "malformed ERROR");
		return -1;
	}
	snprintf(why, whylen, "vtpmd refused (code %u): %.*s", code, (int)tl, t);
	return (int)code;
}

/*
 * Connects and attaches: handshake, evidence both ways, ATTACH, ATTACHED.
 * Returns 0, or the vtpmd ERROR code (> 0), or a VTPM_E_* code (< 0) with
 * why filled in.
 */
static int
vg_attach(struct vguest *g, char *why, size_t whylen)
{
	static __thread uint8_t body[CHAN_MAX_BODY];
	uint8_t spriv[32], spub[32], out[256], h[NOISE_HASH_LEN];
	uint8_t rd[ATTEST_REPORT_DATA_LEN], ev[ATTEST_MAX_EVIDENCE], attach[5];
	struct attest_verify_cfg vcfg = { .av_allow_sim = 1 };
	struct attest_claims peer;
	struct noise_cipher tx, rx;
	struct noise_hs *hs = NULL;
	const uint8_t *frame;
	size_t flen, olen, plen, evlen, blen;
	uint64_t t0 = bench_now_ns();
	uint8_t type;
	int fd, rc;

	g->ch = NULL;
	if ((rc = endpoint_connect(&O.server, 5000, &fd)) != 0) {
		snprintf(why, whylen, "connect: %s", vtpm_strerror(rc));
		return rc;
	}
	g->t_connect = bench_now_ns() - t0;
	if ((g->ch = chan_new(fd, 0)) == NULL) {
		close(fd);
		snprintf(why, whylen, "out of memory");
		return VTPM_E_NOMEM;
	}
	noise_keypair_generate(spriv, spub);
	hs = noise_hs_new(NOISE_XX, 1, (const uint8_t *)CHAN_PROLOGUE,
	    strlen(CHAN_PROLOGUE), spriv, NULL);
	sodium_memzero(spriv, sizeof(spriv));
	if (hs == NULL) {
		rc = VTPM_E_NOMEM;
		snprintf(why, whylen, "noise_hs_new");
		goto fail;
	}
	if ((rc = noise_hs_write(hs, NULL, 0, out, sizeof(out), &olen)) != 0 ||
	    (rc = chan_write_frame(g->ch, out, olen, 5000)) != 0 ||
	    (rc = chan_wait_frame(g->ch, 10000, &frame, &flen)) < 0 ||
	    (rc = noise_hs_read(hs, frame, flen, body, sizeof(body), &plen)) != 0 ||
	    (rc = noise_hs_write(hs, NULL, 0, out, sizeof(out), &olen)) != 0 ||
	    (rc = chan_write_frame(g->ch, out, olen, 5000)) != 0 ||
	    (rc = noise_hs_split(hs, &tx, &rx, h)) != 0) {
		snprintf(why, whylen, "handshake: %s", vtpm_strerror(rc));
		goto fail;
	}
	noise_hs_free(hs);
	hs = NULL;
	chan_set_ciphers(g->ch, &tx, &rx);
	noise_cipher_wipe(&tx);
	noise_cipher_wipe(&rx);
	g->t_handshake = bench_now_ns() - t0;

	attest_report_data(ATTEST_ROLE_GUEST, h, rd);
	if ((rc = attest_evidence_get(g->ap, rd, ev, sizeof(ev), &evlen)) != 0 ||
	    (rc = chan_send(g->ch, MSG_EVIDENCE, ev, evlen)) != 0 ||
	    (rc = chan_recv(g->ch, 30000, &type, body, sizeof(body), &blen)) != 0) {
		snprintf(why, whylen, "evidence exchange: %s", vtpm_strerror(rc));
		goto fail;
	}
	if (type == MSG_ERROR) {
		rc = error_code(body, blen, why, whylen);
		goto fail;
	}
	attest_report_data(ATTEST_ROLE_VTPMD, h, rd);
	if (type != MSG_EVIDENCE || attest_evidence_verify(&vcfg, body, blen, rd, &peer,
	    why, whylen) != 0) {
		if (type != MSG_EVIDENCE)
			snprintf(why, whylen, "message 0x%02x instead of evidence", type);
		rc = VTPM_E_EVIDENCE;
		goto fail;
	}
	g->t_evidence = bench_now_ns() - t0;
	attach[0] = VTPM_PROTO_VERSION;
	be32_enc(attach + 1, ATTACH_F_AUTO_STARTUP);
	if ((rc = chan_send(g->ch, MSG_ATTACH, attach, sizeof(attach))) != 0 ||
	    (rc = chan_recv(g->ch, 60000, &type, body, sizeof(body), &blen)) != 0) {
		snprintf(why, whylen, "attach: %s", vtpm_strerror(rc));
		goto fail;
	}
	if (type == MSG_ERROR) {
		rc = error_code(body, blen, why, whylen);
		goto fail;
	}
	if (type != MSG_ATTACHED || blen < 2 || body[1] > 63 || blen != 2u + body[1]) {
		snprintf(why, whylen, "malformed ATTACHED");
		rc = VTPM_E_PROTO;
		goto fail;
	}
	g->t_attached = bench_now_ns() - t0;
	g->how = body[0];
	memcpy(g->name, body + 2, body[1]);
	g->name[body[1]] = '\0';
	sodium_memzero(h, sizeof(h));
	return 0;
fail:
	sodium_memzero(h, sizeof(h));
	if (hs != NULL)
		noise_hs_free(hs);
	chan_free(g->ch);
	g->ch = NULL;
	return rc == 0 ? VTPM_E_PROTO : rc;
}

/* Attaches, retrying a few times while vtpmd says busy (a detach in flight). */
static void
vg_attach_or_die(struct vguest *g)
{
	char why[320];
	int rc, i;

	for (i = 0; i < 50; i++) {
		rc = vg_attach(g, why, sizeof(why));
		if (rc == 0)
			return;
		if (rc != ERR_BUSY)
			break;
		usleep(20000);
	}
	die("attach: %s", why);
}

/* One TPM command over the channel. Returns the TPM response code. */
static uint32_t
vg_tpm(struct vguest *g, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap,
    size_t *rlen)
{
	uint8_t msg[1 + TPM_CMD_MAX], type;
	int rc;

	msg[0] = 0;
	memcpy(msg + 1, cmd, len);
	if ((rc = chan_send(g->ch, MSG_TPM_CMD, msg, 1 + len)) != 0 ||
	    (rc = chan_recv(g->ch, 60000, &type, rsp, cap, rlen)) != 0)
		die("vtpmd TPM command: %s", vtpm_strerror(rc));
	if (type != MSG_TPM_RSP)
		die("vtpmd answered message 0x%02x to a TPM command", type);
	return tpmrsp_code(rsp, *rlen);
}

/* Orderly detach (CTRL_DETACH, wait for CTRL_RSP), then close. */
static void
vg_detach(struct vguest *g)
{
	uint8_t op = CTRL_DETACH, body[64], type;
	size_t blen;

	if (g->ch == NULL)
		return;
	if (chan_send(g->ch, MSG_CTRL, &op, 1) == 0 &&
	    chan_recv(g->ch, 10000, &type, body, sizeof(body), &blen) != 0)
		note("no answer to DETACH (closing anyway)");
	chan_free(g->ch);
	g->ch = NULL;
}

/* ======================================================================
 * swtpm's raw data socket
 * ====================================================================== */

static int
unix_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		die("socket path too long: %s", path);
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * One raw TPM command to swtpm: write it, read until the response header's
 * size is complete. Returns the response code, 0xFFFFFFFF on a broken
 * connection.
 */
static uint32_t
sw_tpm(int fd, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap, size_t *rlen)
{
	size_t have = 0, need = 10;
	ssize_t n;

	if (write_all(fd, cmd, len) != 0)
		return 0xFFFFFFFFu;
	while (have < need) {
		n = read(fd, rsp + have, cap - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0xFFFFFFFFu;
		have += (size_t)n;
		if (have >= 10) {
			need = be32_dec(rsp + 2);
			if (need < 10 || need > cap)
				return 0xFFFFFFFFu;
		}
	}
	*rlen = have;
	return tpmrsp_code(rsp, have);
}

static int
sw_connect_or_die(const char *path)
{
	int fd = unix_connect(path);

	if (fd < 0)
		die("cannot connect to swtpm at %s: %s", path, strerror(errno));
	return fd;
}

/* ======================================================================
 * Timed loops
 * ====================================================================== */

enum target { T_VTPMD, T_SWTPM };

struct peer {
	enum target	 kind;
	struct vguest	*g;
	int		 fd;
};

static uint32_t
peer_tpm(struct peer *p, const uint8_t *cmd, size_t len)
{
	uint8_t rsp[TPM_CMD_MAX * 2];
	size_t rlen;

	if (p->kind == T_VTPMD)
		return vg_tpm(p->g, cmd, len, rsp, sizeof(rsp), &rlen);
	return sw_tpm(p->fd, cmd, len, rsp, sizeof(rsp), &rlen);
}

/* iters commands (after iters/20 warm-up), collecting latencies. */
static double
time_loop(struct peer *p, const uint8_t *cmd, size_t len, int iters, struct samples *s,
    const char *what)
{
	uint64_t t0, t1, start;
	uint32_t rc;
	int i;

	s->s_n = 0;
	for (i = 0; i < iters / 20; i++)
		if ((rc = peer_tpm(p, cmd, len)) != 0)
			die("%s: TPM rc 0x%x during warm-up", what, rc);
	start = bench_now_ns();
	for (i = 0; i < iters; i++) {
		t0 = bench_now_ns();
		rc = peer_tpm(p, cmd, len);
		t1 = bench_now_ns();
		if (rc != 0)
			die("%s: TPM rc 0x%x", what, rc);
		samples_add(s, t1 - t0);
	}
	return (double)iters / ((double)(bench_now_ns() - start) / 1e9);
}

struct series {
	const char	*key;		/* e.g. "rtt.vtpmd.getrandom" */
	double		 p50[MAX_ROUNDS], p99[MAX_ROUNDS], ops[MAX_ROUNDS], mean[MAX_ROUNDS];
	int		 n;
};

static void
series_add(struct series *se, struct samples *s, double ops)
{
	se->p50[se->n] = samples_pct_us(s, 0.50);
	se->p99[se->n] = samples_pct_us(s, 0.99);
	se->mean[se->n] = samples_mean_us(s);
	se->ops[se->n] = ops;
	note("%-32s round %d: p50 %8.1f us  p99 %8.1f us  mean %8.1f us  %8.0f ops/s",
	    se->key, se->n + 1, se->p50[se->n], se->p99[se->n], se->mean[se->n], ops);
	se->n++;
}

static void
series_report(struct series *se)
{
	char k[128];
	double lo = 1e18, hi = 0;
	int i;

	for (i = 0; i < se->n; i++) {
		lo = se->p50[i] < lo ? se->p50[i] : lo;
		hi = se->p50[i] > hi ? se->p50[i] : hi;
	}
	snprintf(k, sizeof(k), "%s.p50_min", se->key);
	result(k, lo, "us");
	snprintf(k, sizeof(k), "%s.p50_max", se->key);
	result(k, hi, "us");
	snprintf(k, sizeof(k), "%s.p50", se->key);
	result(k, median_d(se->p50, (size_t)se->n), "us");
	snprintf(k, sizeof(k), "%s.p99", se->key);
	result(k, median_d(se->p99, (size_t)se->n), "us");
	snprintf(k, sizeof(k), "%s.mean", se->key);
	result(k, median_d(se->mean, (size_t)se->n), "us");
	snprintf(k, sizeof(k), "%s.ops", se->key);
	result(k, median_d(se->ops, (size_t)se->n), "ops/s");
}

/* Defines the benchmark counter (an existing one from an earlier run is fine). */
static void
define_counter(struct peer *p, const char *what)
{
	uint8_t cmd[TPM_CMD_MAX];
	size_t len = tpmcmd_nv_define_counter(cmd, BENCH_NV_INDEX);
	uint32_t rc = peer_tpm(p, cmd, len);

	if (rc != 0 && rc != TPM_RC_NV_DEFINED)
		die("%s: NV_DefineSpace rc 0x%x", what, rc);
}

/* ---- rtt: cheap commands, vtpmd vs swtpm, interleaved ---- */

static int
cmd_rtt(void)
{
	struct series se[4] = {
		{ .key = "rtt.vtpmd.getrandom" }, { .key = "rtt.swtpm.getrandom" },
		{ .key = "rtt.vtpmd.pcrextend" }, { .key = "rtt.swtpm.pcrextend" },
	};
	uint8_t gr[TPM_CMD_MAX], pe[TPM_CMD_MAX];
	size_t grl = tpmcmd_get_random(gr, 32), pel = tpmcmd_pcr_extend(pe, 16, 0x5a);
	struct vguest g;
	struct peer pv = { .kind = T_VTPMD, .g = &g }, ps = { .kind = T_SWTPM };
	struct samples s;
	int r, i;

	if (!O.have_server || O.swtpm == NULL)
		die("rtt needs --server and --swtpm");
	vg_init(&g, O.base, 0);
	vg_attach_or_die(&g);
	ps.fd = sw_connect_or_die(O.swtpm);
	samples_init(&s, (size_t)O.iters);
	for (r = 0; r < O.rounds && r < MAX_ROUNDS; r++) {
		for (i = 0; i < 4; i++) {
			struct peer *p = i % 2 == 0 ? &pv : &ps;
			double ops = time_loop(p, i < 2 ? gr : pe, i < 2 ? grl : pel,
			    O.iters, &s, se[i].key);

			series_add(&se[i], &s, ops);
		}
	}
	for (i = 0; i < 4; i++)
		series_report(&se[i]);
	vg_detach(&g);
	vg_free(&g);
	close(ps.fd);
	samples_free(&s);
	return 0;
}

/* ---- nv: durable NV_Increment, one guest ---- */

static int
cmd_nv(void)
{
	struct series se[3] = {
		{ .key = "nv1.vtpmd" }, { .key = "nv1.swtpm_durable" }, { .key = "nv1.swtpm_plain" },
	};
	uint8_t inc[TPM_CMD_MAX];
	size_t incl = tpmcmd_nv_increment(inc, BENCH_NV_INDEX);
	struct vguest g;
	struct peer p[3] = { { .kind = T_VTPMD, .g = &g }, { .kind = T_SWTPM },
	    { .kind = T_SWTPM } };
	struct samples s;
	int r, i, np = 3;

	if (!O.have_server || O.swtpm == NULL)
		die("nv needs --server and --swtpm (durable) [--swtpm2 (plain)]");
	vg_init(&g, O.base, 0);
	vg_attach_or_die(&g);
	p[1].fd = sw_connect_or_die(O.swtpm);
	if (O.swtpm2 != NULL)
		p[2].fd = sw_connect_or_die(O.swtpm2);
	else
		np = 2;
	for (i = 0; i < np; i++)
		define_counter(&p[i], se[i].key);
	samples_init(&s, (size_t)O.iters);
	for (r = 0; r < O.rounds && r < MAX_ROUNDS; r++)
		for (i = 0; i < np; i++)
			series_add(&se[i], &s, time_loop(&p[i], inc, incl, O.iters, &s,
			    se[i].key));
	for (i = 0; i < np; i++)
		series_report(&se[i]);
	vg_detach(&g);
	vg_free(&g);
	close(p[1].fd);
	if (np == 3)
		close(p[2].fd);
	samples_free(&s);
	return 0;
}

/*
 * ---- nvmulti: N guests, one outstanding NV_Increment each (--phase
 * getrandom: GetRandom(32) instead, which stores nothing: the ceiling of
 * the data path itself with that many guests) ----
 */

struct mconn {
	struct peer	 p;
	struct vguest	 g;
	uint8_t		 buf[TPM_CMD_MAX * 2];	/* swtpm response being read */
	size_t		 have;
	uint64_t	 sent;
	int		 inflight;
};

static void
mconn_send(struct mconn *c, const uint8_t *cmd, size_t len)
{
	uint8_t msg[1 + TPM_CMD_MAX];
	int rc;

	c->sent = bench_now_ns();
	c->inflight = 1;
	if (c->p.kind == T_VTPMD) {
		msg[0] = 0;
		memcpy(msg + 1, cmd, len);
		if ((rc = chan_send(c->g.ch, MSG_TPM_CMD, msg, 1 + len)) != 0)
			die("send: %s", vtpm_strerror(rc));
	} else if (write_all(c->p.fd, cmd, len) != 0) {
		die("swtpm write: %s", strerror(errno));
	}
}

/* Reads what is there; returns 1 when a complete response arrived. */
static int
mconn_readable(struct mconn *c)
{
	const uint8_t *frame;
	uint8_t rsp[TPM_CMD_MAX * 2], type;
	size_t flen, rlen;
	ssize_t n;
	int rc;

	if (c->p.kind == T_VTPMD) {
		rc = chan_read_frame(c->g.ch, &frame, &flen);
		if (rc == 0)
			return 0;
		if (rc < 0)
			die("vtpmd read: %s", vtpm_strerror(rc));
		if ((rc = chan_open(c->g.ch, frame, flen, &type, rsp, sizeof(rsp), &rlen)) != 0)
			die("vtpmd frame: %s", vtpm_strerror(rc));
		if (type != MSG_TPM_RSP || tpmrsp_code(rsp, rlen) != 0)
			die("vtpmd: command failed (type 0x%02x rc 0x%x)", type,
			    tpmrsp_code(rsp, rlen));
		return 1;
	}
	n = read(c->p.fd, c->buf + c->have, sizeof(c->buf) - c->have);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		die("swtpm read: %s", n == 0 ? "closed" : strerror(errno));
	c->have += (size_t)n;
	if (c->have < 10 || c->have < be32_dec(c->buf + 2))
		return 0;
	if (tpmrsp_code(c->buf, c->have) != 0)
		die("swtpm: command rc 0x%x", tpmrsp_code(c->buf, c->have));
	c->have = 0;
	return 1;
}

static void *
attach_range_thread(void *arg)
{
	struct mconn **cs = arg;
	int i;

	for (i = 0; cs[i] != NULL; i++)
		vg_attach_or_die(&cs[i]->g);
	return NULL;
}

/* Attaches every guest of cs[0..n) with nthreads threads. */
static double
attach_parallel(struct mconn *cs, int n, int nthreads)
{
	pthread_t th[64];
	struct mconn ***parts;
	uint64_t t0 = bench_now_ns();
	int t, i, k;

	if (nthreads > 64)
		nthreads = 64;
	if (nthreads > n)
		nthreads = n;
	parts = calloc((size_t)nthreads, sizeof(*parts));
	for (t = 0; t < nthreads; t++) {
		parts[t] = calloc((size_t)n / nthreads + 2, sizeof(**parts));
		for (i = t, k = 0; i < n; i += nthreads)
			parts[t][k++] = &cs[i];
		if (pthread_create(&th[t], NULL, attach_range_thread, parts[t]) != 0)
			die("pthread_create");
	}
	for (t = 0; t < nthreads; t++) {
		pthread_join(th[t], NULL);
		free(parts[t]);
	}
	free(parts);
	return (double)(bench_now_ns() - t0) / 1e9;
}

/* The server processes behind the connections: their CPU and disk writes. */
struct srv_acct {
	pid_t		 pids[4096];
	int		 n;
	long		 ticks0, ticks1;
	long		 first0, first1;	/* pids[0] alone (the vtpmd parent) */
	long long	 wb0, wb1;
	struct rusage	 self0, self1;
};

static void
acct_add(struct srv_acct *a, pid_t pid)
{
	int i;

	for (i = 0; i < a->n; i++)
		if (a->pids[i] == pid)
			return;
	if (a->n < (int)(sizeof(a->pids) / sizeof(a->pids[0])))
		a->pids[a->n++] = pid;
}

static pid_t
peer_pid(int fd)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0)
		return -1;
	return uc.pid;
}

static void
acct_sample(struct srv_acct *a, long *ticks, long *first, long long *wb,
    struct rusage *self)
{
	long t;
	long long w;
	int i;

	*ticks = 0;
	*first = 0;
	*wb = 0;
	for (i = 0; i < a->n; i++) {
		if ((t = proc_cpu_ticks(a->pids[i])) > 0)
			*ticks += t;
		if (i == 0 && t > 0)
			*first = t;
		if ((w = proc_write_bytes(a->pids[i])) > 0)
			*wb += w;
	}
	getrusage(RUSAGE_SELF, self);
}

static double
tv_us(const struct timeval *a, const struct timeval *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e6 + (double)(b->tv_usec - a->tv_usec);
}

static int
cmd_nvmulti(void)
{
	uint8_t inc[TPM_CMD_MAX];
	int getrandom = strcmp(O.phase, "getrandom") == 0;
	size_t incl = getrandom ? tpmcmd_get_random(inc, 32) :
	    tpmcmd_nv_increment(inc, BENCH_NV_INDEX);
	struct epoll_event ev, evs[256];
	struct mconn *cs;
	struct samples s;
	uint64_t t_start, t_end, t_warm, now;
	unsigned long done = 0;
	static struct srv_acct acct;
	char k[128];
	int ep, i, n, k2, vt = O.swtpm_dir == NULL, inflight, sampled = 0;
	double hz = (double)sysconf(_SC_CLK_TCK);

	if (vt && !O.have_server)
		die("nvmulti needs --server or --swtpm-dir");
	bench_raise_nofile(4 * O.n + 64);
	if ((cs = calloc((size_t)O.n, sizeof(*cs))) == NULL)
		die("out of memory");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	for (i = 0; i < O.n; i++) {
		cs[i].p.kind = vt ? T_VTPMD : T_SWTPM;
		if (vt) {
			vg_init(&cs[i].g, O.base, (uint32_t)i);
			cs[i].p.g = &cs[i].g;
		}
	}
	if (vt) {
		note("attaching %d guests", O.n);
		(void)attach_parallel(cs, O.n, O.threads);
	}
	for (i = 0; i < O.n; i++) {
		int fd;

		if (!vt) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/swtpm-%d.sock", O.swtpm_dir, i);
			cs[i].p.fd = sw_connect_or_die(path);
		}
		define_counter(&cs[i].p, O.label);
		fd = vt ? chan_fd(cs[i].g.ch) : cs[i].p.fd;
		if (!vt && peer_pid(fd) > 0)
			acct_add(&acct, peer_pid(fd));
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
			die("fcntl");
		ev.events = EPOLLIN;
		ev.data.ptr = &cs[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
			die("epoll_ctl");
	}
	if (vt && O.vtpmd_pid > 0) {
		pid_t kids[4096];
		size_t nk = proc_descendants(O.vtpmd_pid, kids, 4096), j;

		acct_add(&acct, O.vtpmd_pid);
		for (j = 0; j < nk; j++)
			acct_add(&acct, kids[j]);
	}
	samples_init(&s, 100000);
	t_start = bench_now_ns();
	t_warm = t_start + 1000000000ull;
	t_end = t_warm + (uint64_t)(O.seconds * 1e9);
	for (i = 0; i < O.n; i++)
		mconn_send(&cs[i], inc, incl);
	inflight = O.n;
	while (inflight > 0) {
		n = epoll_wait(ep, evs, 256, 10000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("nvmulti: no progress for 10 s");
		now = bench_now_ns();
		if (sampled == 0 && now >= t_warm) {
			acct_sample(&acct, &acct.ticks0, &acct.first0, &acct.wb0, &acct.self0);
			sampled = 1;
		} else if (sampled == 1 && now >= t_end) {
			acct_sample(&acct, &acct.ticks1, &acct.first1, &acct.wb1, &acct.self1);
			sampled = 2;
		}
		for (k2 = 0; k2 < n; k2++) {
			struct mconn *c = evs[k2].data.ptr;

			while (c->inflight && mconn_readable(c)) {
				c->inflight = 0;
				inflight--;
				if (now >= t_warm && now <= t_end)
					done++;
				/*
				 * A fresh clock: an answer to a command sent in this
				 * batch (after now was read) must not wrap around.
				 */
				if (c->sent >= t_warm && now <= t_end)
					samples_add(&s, bench_now_ns() - c->sent);
				if (now < t_end) {
					mconn_send(c, inc, incl);
					inflight++;
				}
			}
		}
	}
	snprintf(k, sizeof(k), "nvmulti.%s.guests", O.label);
	result(k, O.n, "guests");
	snprintf(k, sizeof(k), "nvmulti.%s.ops", O.label);
	result(k, (double)done / O.seconds, "ops/s");
	snprintf(k, sizeof(k), "nvmulti.%s.p50", O.label);
	result(k, samples_pct_us(&s, 0.5), "us");
	snprintf(k, sizeof(k), "nvmulti.%s.p99", O.label);
	result(k, samples_pct_us(&s, 0.99), "us");
	if (sampled == 2 && done > 0 && acct.n > 0) {
		snprintf(k, sizeof(k), "nvmulti.%s.server_cpu_us_per_op", O.label);
		result(k, (double)(acct.ticks1 - acct.ticks0) / hz * 1e6 / (double)done, "us");
		if (vt) {
			snprintf(k, sizeof(k), "nvmulti.%s.parent_cpu_us_per_op", O.label);
			result(k, (double)(acct.first1 - acct.first0) / hz * 1e6 / (double)done,
			    "us");
		}
		snprintf(k, sizeof(k), "nvmulti.%s.client_cpu_us_per_op", O.label);
		result(k, (tv_us(&acct.self0.ru_utime, &acct.self1.ru_utime) +
		    tv_us(&acct.self0.ru_stime, &acct.self1.ru_stime)) / (double)done, "us");
		snprintf(k, sizeof(k), "nvmulti.%s.disk_bytes_per_op", O.label);
		result(k, (double)(acct.wb1 - acct.wb0) / (double)done, "B");
	}
	note("%s: %d guests, %lu %s in %.1f s = %.0f/s, p50 %.0f us", O.label, O.n, done,
	    getrandom ? "GetRandom" : "durable increments", O.seconds, (double)done / O.seconds,
	    samples_pct_us(&s, 0.5));
	for (i = 0; i < O.n; i++) {
		if (vt) {
			int fd = chan_fd(cs[i].g.ch);

			(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			vg_detach(&cs[i].g);
			vg_free(&cs[i].g);
		} else {
			close(cs[i].p.fd);
		}
	}
	free(cs);
	samples_free(&s);
	close(ep);
	return 0;
}

/* ======================================================================
 * Admin socket (one JSON line each way)
 * ====================================================================== */

/* Sends req, returns the whole answer (malloc'd, NUL-terminated) and its size. */
static char *
admin_call(const char *req, size_t *len)
{
	size_t cap = 1 << 16, have = 0;
	char *buf = malloc(cap);
	ssize_t n;
	int fd;

	if (buf == NULL || (fd = unix_connect(O.admin)) < 0)
		die("cannot reach the admin socket %s", O.admin);
	if (write_all(fd, (const uint8_t *)req, strlen(req)) != 0 ||
	    write_all(fd, (const uint8_t *)"\n", 1) != 0)
		die("admin write");
	for (;;) {
		if (have + 1 == cap && (buf = realloc(buf, cap *= 2)) == NULL)
			die("out of memory");
		n = read(fd, buf + have, cap - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	buf[have] = '\0';
	*len = have;
	return buf;
}

static int
admin_workers(void)
{
	size_t len;
	char *r = admin_call("{\"op\":\"status\"}", &len), *p;
	int n = -1;

	if ((p = strstr(r, "\"workers\":")) != NULL)
		n = atoi(p + 10);
	free(r);
	return n;
}

/* Times the admin "list" op with an unbounded reader. */
static int
cmd_admin_list(void)
{
	double ms[MAX_ROUNDS];
	size_t len = 0;
	uint64_t t0;
	char *r, k[128];
	int i, ok = 1;

	if (O.admin == NULL)
		die("admin-list needs --admin");
	for (i = 0; i < O.rounds && i < MAX_ROUNDS; i++) {
		t0 = bench_now_ns();
		r = admin_call("{\"op\":\"list\"}", &len);
		ms[i] = (double)(bench_now_ns() - t0) / 1e6;
		if (strstr(r, "\"ok\":true") == NULL)
			ok = 0;
		free(r);
	}
	snprintf(k, sizeof(k), "store.%s.admin_list_ms", O.label);
	result(k, median_d(ms, (size_t)i), "ms");
	snprintf(k, sizeof(k), "store.%s.admin_list_bytes", O.label);
	result(k, (double)len, "B");
	snprintf(k, sizeof(k), "store.%s.admin_list_ok", O.label);
	result(k, ok, "bool");
	return 0;
}

/* ======================================================================
 * attach: new / hot / resume (evicted) latency
 * ====================================================================== */

static void
report_attach(const char *phase, struct samples *tot, struct samples *hs,
    struct samples *evd, struct samples *ready)
{
	char k[128];

	snprintf(k, sizeof(k), "attach.%s.ready_p50", phase);
	result(k, samples_pct_us(ready, 0.5) / 1000.0, "ms");
	snprintf(k, sizeof(k), "attach.%s.p50", phase);
	result(k, samples_pct_us(tot, 0.5) / 1000.0, "ms");
	snprintf(k, sizeof(k), "attach.%s.p99", phase);
	result(k, samples_pct_us(tot, 0.99) / 1000.0, "ms");
	snprintf(k, sizeof(k), "attach.%s.handshake_p50", phase);
	result(k, samples_pct_us(hs, 0.5) / 1000.0, "ms");
	snprintf(k, sizeof(k), "attach.%s.evidence_p50", phase);
	result(k, samples_pct_us(evd, 0.5) / 1000.0, "ms");
	snprintf(k, sizeof(k), "attach.%s.n", phase);
	result(k, (double)tot->s_n, "samples");
}

/*
 * new:    first attach of N fresh identities (auto-enrol, manufacture, worker
 *         spawn), each detached right after;
 * hot:    the same identities again while their workers still run (same
 *         launch: RESUMED without touching the store);
 * resume: vtpmd runs with --idle-timeout 0; an untimed priming round, then
 *         per round: wait until every worker was evicted (its volatile state
 *         saved), attach all N (timed: RESUMED from the store), detach all.
 */
static int
cmd_attach(void)
{
	uint8_t gr[TPM_CMD_MAX], rsp[TPM_CMD_MAX * 2];
	size_t grl = tpmcmd_get_random(gr, 16), rlen;
	struct samples tot, hs, evd, ready;
	struct vguest *g;
	int i, r, want, resume = strcmp(O.phase, "resume") == 0, tries, nr, bad = 0;

	if (!O.have_server)
		die("attach needs --server");
	if (resume && O.admin == NULL)
		die("attach --phase resume needs --admin");
	want = strcmp(O.phase, "new") == 0 ? ATTACHED_NEW : ATTACHED_RESUMED;
	if ((g = calloc((size_t)O.n, sizeof(*g))) == NULL)
		die("out of memory");
	nr = resume ? O.rounds + 1 : 1;
	samples_init(&tot, (size_t)O.n * (size_t)nr);
	samples_init(&hs, (size_t)O.n * (size_t)nr);
	samples_init(&evd, (size_t)O.n * (size_t)nr);
	samples_init(&ready, (size_t)O.n * (size_t)nr);
	for (i = 0; i < O.n; i++)
		vg_init(&g[i], O.base, (uint32_t)i);
	for (r = 0; r < nr; r++) {
		int timed = !resume || r > 0;

		if (resume && r > 0) {
			/* Every worker must be gone: wait for the idle eviction. */
			for (tries = 0; admin_workers() != 0; tries++) {
				if (tries > 300)
					die("workers were not evicted within 15 s "
					    "(is --idle-timeout 0 set?)");
				usleep(50000);
			}
		}
		for (i = 0; i < O.n; i++) {
			vg_attach_or_die(&g[i]);
			if (timed) {
				if (g[i].how != want && bad++ < 3)
					note("guest %d attached with how=%u, expected %d", i,
					    g[i].how, want);
				samples_add(&tot, g[i].t_attached);
				samples_add(&hs, g[i].t_handshake);
				samples_add(&evd, g[i].t_evidence);
				samples_add(&ready, g[i].t_attached - g[i].t_evidence);
			}
			if (vg_tpm(&g[i], gr, grl, rsp, sizeof(rsp), &rlen) != 0)
				die("GetRandom after attach failed");
			if (!resume)
				vg_detach(&g[i]);
		}
		if (resume)	/* detach together: evictions happen between rounds */
			for (i = 0; i < O.n; i++)
				vg_detach(&g[i]);
	}
	report_attach(O.phase, &tot, &hs, &evd, &ready);
	{
		char k[128];

		snprintf(k, sizeof(k), "attach.%s.unexpected_how", O.phase);
		result(k, bad, "attaches");
	}
	for (i = 0; i < O.n; i++)
		vg_free(&g[i]);
	free(g);
	samples_free(&tot);
	samples_free(&hs);
	samples_free(&evd);
	samples_free(&ready);
	return 0;
}

/* ======================================================================
 * hold: N attached instances, memory
 * ====================================================================== */

struct mapping_pd {
	char	name[128];
	long	priv_dirty;
	long	rss;
};

/* Private_Dirty and Rss of one process by mapping name (files by basename). */
static int
smaps_by_mapping(pid_t pid, struct mapping_pd *out, int cap)
{
	char path[64], line[512], name[256], prev[160] = "start", anon[200], *b;
	struct mapping_pd *cur = NULL;
	int n = 0, i;
	long v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long a, z;

		if (sscanf(line, "%lx-%lx", &a, &z) == 2 && strchr(line, ':') != NULL &&
		    strchr(line, '-') < strchr(line, ' ')) {
			name[0] = '\0';
			(void)sscanf(line, "%*s %*s %*s %*s %*s %255[^\n]", name);
			b = strrchr(name, '/');
			b = b ? b + 1 : name;
			if (*b == '\0') {
				/* anonymous: name it after the mapping before (a library's bss) */
				snprintf(anon, sizeof(anon), "[anon:%s]", prev);
				b = anon;
			} else if (b[0] != '[') {
				snprintf(prev, sizeof(prev), "%.159s", b);
			}
			for (i = 0; i < n && strcmp(out[i].name, b) != 0; i++)
				;
			if (i == n && n < cap) {
				snprintf(out[n].name, sizeof(out[n].name), "%.127s", b);
				out[n].priv_dirty = out[n].rss = 0;
				n++;
			}
			cur = i < cap ? &out[i] : NULL;
			continue;
		}
		if (cur == NULL)
			continue;
		if (sscanf(line, "Private_Dirty: %ld kB", &v) == 1)
			cur->priv_dirty += v;
		else if (sscanf(line, "Rss: %ld kB", &v) == 1)
			cur->rss += v;
	}
	fclose(f);
	return n;
}

static int
cmp_pd(const void *a, const void *b)
{
	const struct mapping_pd *x = a, *y = b;

	return (y->priv_dirty > x->priv_dirty) - (y->priv_dirty < x->priv_dirty);
}

static void
report_breakdown(const char *label, pid_t pid)
{
	struct mapping_pd m[256];
	char k[512];
	int n = smaps_by_mapping(pid, m, 256), i;

	qsort(m, (size_t)n, sizeof(m[0]), cmp_pd);
	note("%s: private dirty memory of pid %d by mapping (KiB):", label, (int)pid);
	for (i = 0; i < n && i < 12; i++) {
		if (m[i].priv_dirty == 0)
			break;
		note("  %6ld  %s (rss %ld)", m[i].priv_dirty, m[i].name, m[i].rss);
		snprintf(k, sizeof(k), "mem.%.60s.pd.%.128s", label, m[i].name);
		result(k, (double)m[i].priv_dirty, "KiB");
	}
}

/* A vtpmd worker names itself "vtpmd-worker" (prctl PR_SET_NAME). */
static int
proc_is_worker(pid_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(comm, sizeof(comm), f) == NULL)
		comm[0] = '\0';
	fclose(f);
	return strncmp(comm, "vtpmd-worker", 12) == 0;
}

/*
 * A spare worker (vtpmd --worker-spares) has no guest connection yet: fds
 * 0-3 only. 0 when fd 4 cannot be checked (not root): counted as a worker.
 */
static int
proc_is_spare(pid_t pid)
{
	char path[64], target[64];

	snprintf(path, sizeof(path), "/proc/%d/fd/3", (int)pid);
	if (readlink(path, target, sizeof(target)) < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd/4", (int)pid);
	return readlink(path, target, sizeof(target)) < 0 && errno == ENOENT;
}

static int
cmd_hold(void)
{
	uint8_t gr[TPM_CMD_MAX], rsp[TPM_CMD_MAX * 2];
	size_t grl = tpmcmd_get_random(gr, 16), rlen;
	struct mconn *cs;
	struct mem_kib par, m;
	pid_t *kids;
	size_t nk, i;
	long pss = 0, rss = 0, pd = 0, other_pss = 0, spare_pss = 0;
	double secs;
	char k[128];
	int ngone = 0, nspare = 0;
	size_t nw = 0;

	if (!O.have_server || O.vtpmd_pid <= 0)
		die("hold needs --server and --vtpmd-pid");
	bench_raise_nofile(2 * O.n + 64);
	if ((cs = calloc((size_t)O.n, sizeof(*cs))) == NULL ||
	    (kids = calloc((size_t)O.n + 64, sizeof(*kids))) == NULL)
		die("out of memory");
	for (i = 0; i < (size_t)O.n; i++)
		vg_init(&cs[i].g, O.base, (uint32_t)i);
	note("attaching %d guests with %d threads", O.n, O.threads);
	secs = attach_parallel(cs, O.n, O.threads);
	for (i = 0; i < (size_t)O.n; i++)
		if (vg_tpm(&cs[i].g, gr, grl, rsp, sizeof(rsp), &rlen) != 0)
			die("GetRandom on guest %zu failed", i);
	snprintf(k, sizeof(k), "mem.%s.attach_all_s", O.label);
	result(k, secs, "s");
	sleep(1);
	/*
	 * Every descendant counts: workers are the zygote's children (the
	 * parent's grandchildren), and the zygote itself is part of the cost.
	 */
	nk = proc_descendants(O.vtpmd_pid, kids, (size_t)O.n + 64);
	if (mem_read(O.vtpmd_pid, &par) != 0)
		die("cannot read /proc/%d/smaps_rollup", (int)O.vtpmd_pid);
	for (i = 0; i < nk; i++) {
		if (mem_read(kids[i], &m) != 0) {
			ngone++;
			continue;
		}
		if (!proc_is_worker(kids[i])) {
			other_pss += m.pss;
			continue;
		}
		if (proc_is_spare(kids[i])) {	/* idle, waiting for an instance */
			spare_pss += m.pss;
			nspare++;
			continue;
		}
		kids[nw++] = kids[i];
		pss += m.pss;
		rss += m.rss;
		pd += m.priv_dirty;
	}
	nk = nw;
	if (nk == 0)
		die("no vtpmd-worker among the descendants of %d", (int)O.vtpmd_pid);
	note("%s: %zu workers: PSS %ld KiB (%.0f each), parent PSS %ld KiB (RSS %ld, "
	    "private dirty %ld), other helpers (zygote) PSS %ld KiB, %d idle spare workers "
	    "PSS %ld KiB, %d gone", O.label, nk, pss, (double)pss / (double)nk, par.pss,
	    par.rss, par.priv_dirty, other_pss, nspare, spare_pss, ngone);
	/* The spares are part of the cost: they count in the totals below. */
	other_pss += spare_pss;
	snprintf(k, sizeof(k), "mem.%s.spares", O.label);
	result(k, (double)nspare, "processes");
	snprintf(k, sizeof(k), "mem.%s.spare_pss", O.label);
	result(k, nspare > 0 ? (double)spare_pss / (double)nspare : 0.0, "KiB");
	snprintf(k, sizeof(k), "mem.%s.workers", O.label);
	result(k, (double)nk, "processes");
	snprintf(k, sizeof(k), "mem.%s.total_pss", O.label);
	result(k, (double)(pss + other_pss + par.pss) / 1024.0, "MiB");
	snprintf(k, sizeof(k), "mem.%s.per_instance_pss", O.label);
	result(k, (double)(pss + other_pss + par.pss) / (double)O.n, "KiB");
	snprintf(k, sizeof(k), "mem.%s.helpers_pss", O.label);
	result(k, (double)other_pss, "KiB");
	snprintf(k, sizeof(k), "mem.%s.worker_pss", O.label);
	result(k, (double)pss / (double)nk, "KiB");
	snprintf(k, sizeof(k), "mem.%s.worker_rss", O.label);
	result(k, (double)rss / (double)nk, "KiB");
	snprintf(k, sizeof(k), "mem.%s.worker_priv_dirty", O.label);
	result(k, (double)pd / (double)nk, "KiB");
	snprintf(k, sizeof(k), "mem.%s.parent_pss", O.label);
	result(k, (double)par.pss, "KiB");
	snprintf(k, sizeof(k), "mem.%s.parent_priv_dirty", O.label);
	result(k, (double)par.priv_dirty, "KiB");
	if (nk > 0)
		report_breakdown(O.label, kids[0]);
	for (i = 0; i < (size_t)O.n; i++) {
		vg_detach(&cs[i].g);
		vg_free(&cs[i].g);
	}
	free(cs);
	free(kids);
	return 0;
}

/* ======================================================================
 * swtpm processes: cold start and density
 * ====================================================================== */

static pid_t spawned[4096];
static int nspawned;

static void
kill_spawned(void)
{
	int i;

	for (i = 0; i < nspawned; i++)
		if (spawned[i] > 0)
			kill(spawned[i], SIGTERM);
	for (i = 0; i < nspawned; i++)
		if (spawned[i] > 0)
			(void)waitpid(spawned[i], NULL, 0);
	nspawned = 0;
}

static void
on_signal(int sig)
{
	int i;

	for (i = 0; i < nspawned; i++)
		if (spawned[i] > 0)
			kill(spawned[i], SIGKILL);
	_exit(128 + sig);
}

/* fork+exec swtpm serving state dir on unix socket sock. */
static pid_t
swtpm_spawn(const char *dir, const char *sock)
{
	char state[4200], server[4200];
	pid_t pid;

	snprintf(state, sizeof(state), "dir=%s", dir);
	snprintf(server, sizeof(server), "type=unixio,path=%s", sock);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (O.preload != NULL)
			setenv("LD_PRELOAD", O.preload, 1);
		execlp(O.swtpm_bin, "swtpm", "socket", "--tpm2", "--tpmstate", state,
		    "--server", server, "--flags", "not-need-init,startup-clear",
		    (char *)NULL);
		_exit(127);
	}
	if (nspawned < (int)(sizeof(spawned) / sizeof(spawned[0])))
		spawned[nspawned++] = pid;
	return pid;
}

/* Polls connect every 100 us until swtpm answers GetRandom; returns the fd. */
static int
swtpm_wait_answer(const char *sock, pid_t pid, int timeout_ms)
{
	uint8_t gr[TPM_CMD_MAX], rsp[TPM_CMD_MAX * 2];
	size_t grl = tpmcmd_get_random(gr, 16), rlen;
	uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int fd, st;

	for (;;) {
		if ((fd = unix_connect(sock)) >= 0) {
			if (sw_tpm(fd, gr, grl, rsp, sizeof(rsp), &rlen) == 0)
				return fd;
			close(fd);
		}
		if (waitpid(pid, &st, WNOHANG) == pid)
			die("swtpm for %s exited (status 0x%x)", sock, st);
		if (bench_now_ns() > end)
			die("swtpm at %s did not answer within %d ms", sock, timeout_ms);
		usleep(100);
	}
}

static void
mkdir_p(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		die("mkdir %s: %s", path, strerror(errno));
}

static int
cmd_swtpm_cold(void)
{
	struct samples fresh, existing;
	char dir[4096], sock[4200];
	uint64_t t0;
	pid_t pid;
	int i, pass, fd;

	if (O.swtpm_dir == NULL)
		die("swtpm-cold needs --swtpm-dir");
	samples_init(&fresh, (size_t)O.n);
	samples_init(&existing, (size_t)O.n);
	for (i = 0; i < O.n; i++) {
		for (pass = 0; pass < 2; pass++) {
			snprintf(dir, sizeof(dir), "%s/cold-%d", O.swtpm_dir, i);
			snprintf(sock, sizeof(sock), "%s/cold-%d.sock", O.swtpm_dir, i);
			mkdir_p(dir);
			unlink(sock);
			t0 = bench_now_ns();
			pid = swtpm_spawn(dir, sock);
			fd = swtpm_wait_answer(sock, pid, 10000);
			samples_add(pass == 0 ? &fresh : &existing, bench_now_ns() - t0);
			close(fd);
			kill_spawned();
		}
	}
	result("cold.swtpm_fresh.p50", samples_pct_us(&fresh, 0.5) / 1000.0, "ms");
	result("cold.swtpm_existing.p50", samples_pct_us(&existing, 0.5) / 1000.0, "ms");
	samples_free(&fresh);
	samples_free(&existing);
	return 0;
}

static int
cmd_swtpm_density(void)
{
	uint8_t gr[TPM_CMD_MAX], rsp[TPM_CMD_MAX * 2];
	size_t grl = tpmcmd_get_random(gr, 16), rlen;
	char dir[4096], sock[4200], k[128];
	struct mem_kib m;
	long pss = 0, rss = 0, pd = 0;
	uint64_t t0;
	pid_t *pids;
	int *fds, i, got = 0;
	double secs;

	if (O.swtpm_dir == NULL)
		die("swtpm-density needs --swtpm-dir");
	if (O.n > (int)(sizeof(spawned) / sizeof(spawned[0])))
		die("at most %zu swtpm", sizeof(spawned) / sizeof(spawned[0]));
	bench_raise_nofile(2 * O.n + 64);
	pids = calloc((size_t)O.n, sizeof(*pids));
	fds = calloc((size_t)O.n, sizeof(*fds));
	t0 = bench_now_ns();
	for (i = 0; i < O.n; i++) {
		snprintf(dir, sizeof(dir), "%s/d-%d", O.swtpm_dir, i);
		snprintf(sock, sizeof(sock), "%s/d-%d.sock", O.swtpm_dir, i);
		mkdir_p(dir);
		unlink(sock);
		pids[i] = swtpm_spawn(dir, sock);
	}
	for (i = 0; i < O.n; i++) {
		snprintf(sock, sizeof(sock), "%s/d-%d.sock", O.swtpm_dir, i);
		fds[i] = swtpm_wait_answer(sock, pids[i], 120000);
		/* a connection kept open, as an attached guest would */
		(void)sw_tpm(fds[i], gr, grl, rsp, sizeof(rsp), &rlen);
	}
	secs = (double)(bench_now_ns() - t0) / 1e9;
	sleep(1);
	for (i = 0; i < O.n; i++) {
		if (mem_read(pids[i], &m) != 0)
			continue;
		got++;
		pss += m.pss;
		rss += m.rss;
		pd += m.priv_dirty;
	}
	snprintf(k, sizeof(k), "mem.%s.start_all_s", O.label);
	result(k, secs, "s");
	snprintf(k, sizeof(k), "mem.%s.processes", O.label);
	result(k, got, "processes");
	snprintf(k, sizeof(k), "mem.%s.total_pss", O.label);
	result(k, (double)pss / 1024.0, "MiB");
	snprintf(k, sizeof(k), "mem.%s.per_instance_pss", O.label);
	result(k, (double)pss / got, "KiB");
	snprintf(k, sizeof(k), "mem.%s.rss", O.label);
	result(k, (double)rss / got, "KiB");
	snprintf(k, sizeof(k), "mem.%s.priv_dirty", O.label);
	result(k, (double)pd / got, "KiB");
	report_breakdown(O.label, pids[0]);
	for (i = 0; i < O.n; i++)
		close(fds[i]);
	kill_spawned();
	free(pids);
	free(fds);
	return 0;
}


/* ======================================================================
 * loop: N commands, untimed (for strace -c by run-bench.sh)
 * ====================================================================== */

static int
cmd_loop(void)
{
	uint8_t cmd[TPM_CMD_MAX];
	size_t len;
	struct vguest g;
	struct peer p = { .kind = O.swtpm != NULL ? T_SWTPM : T_VTPMD, .g = &g };
	uint32_t rc;
	int i, nv = strcmp(O.phase, "nvincrement") == 0;

	if (p.kind == T_VTPMD) {
		if (!O.have_server)
			die("loop needs --server or --swtpm");
		vg_init(&g, O.base, 0);
		vg_attach_or_die(&g);
	} else {
		p.fd = sw_connect_or_die(O.swtpm);
	}
	if (nv) {
		define_counter(&p, "loop");
		len = tpmcmd_nv_increment(cmd, BENCH_NV_INDEX);
	} else if (strcmp(O.phase, "pcrextend") == 0) {
		len = tpmcmd_pcr_extend(cmd, 16, 0x3c);
	} else {
		len = tpmcmd_get_random(cmd, 32);
	}
	for (i = 0; i < O.iters; i++)
		if ((rc = peer_tpm(&p, cmd, len)) != 0)
			die("loop: TPM rc 0x%x", rc);
	if (p.kind == T_VTPMD) {
		vg_detach(&g);
		vg_free(&g);
	} else {
		close(p.fd);
	}
	return 0;
}

/* ======================================================================
 * flush: the disk's durable-write floor in the benchmark's directory
 * ====================================================================== */

static int
cmd_flush(void)
{
	char path[4096], tmp[4200], key[128];
	uint8_t buf[4096];
	struct samples a, b;
	uint64_t t0;
	int fd, dfd, i, pass;

	if (O.swtpm_dir == NULL)
		die("flush needs --swtpm-dir DIR (a scratch directory on the same disk)");
	memset(buf, 0x5a, sizeof(buf));
	samples_init(&a, (size_t)O.iters);
	samples_init(&b, (size_t)O.iters);
	snprintf(path, sizeof(path), "%s/flush-inplace", O.swtpm_dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) || fsync(fd) != 0)
		die("flush: %s: %s", path, strerror(errno));
	/* A: overwrite one 4 KiB page in place + fdatasync (one device flush). */
	for (i = 0; i < O.iters; i++) {
		buf[0] = (uint8_t)i;
		t0 = bench_now_ns();
		if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) || fdatasync(fd) != 0)
			die("flush: write: %s", strerror(errno));
		samples_add(&a, bench_now_ns() - t0);
	}
	close(fd);
	unlink(path);
	/* B: upstream swtpm's pattern, 1,346 bytes: tmp, write, fsync, rename, fsync(dir). */
	snprintf(path, sizeof(path), "%s/flush-state", O.swtpm_dir);
	snprintf(tmp, sizeof(tmp), "%s/flush-state.tmp", O.swtpm_dir);
	if ((dfd = open(O.swtpm_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		die("flush: %s: %s", O.swtpm_dir, strerror(errno));
	for (pass = 0, i = 0; i < O.iters; i++) {
		t0 = bench_now_ns();
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
		    write(fd, buf, 1346) != 1346 || fsync(fd) != 0 || close(fd) != 0 ||
		    rename(tmp, path) != 0 || fsync(dfd) != 0)
			die("flush: file pattern: %s", strerror(errno));
		samples_add(&b, bench_now_ns() - t0);
		pass++;
	}
	close(dfd);
	unlink(path);
	snprintf(key, sizeof(key), "disk.fdatasync_4k.p50");
	result(key, samples_pct_us(&a, 0.5), "us");
	result("disk.fdatasync_4k.p99", samples_pct_us(&a, 0.99), "us");
	result("disk.file_fsync_rename_fsyncdir.p50", samples_pct_us(&b, 0.5), "us");
	result("disk.file_fsync_rename_fsyncdir.p99", samples_pct_us(&b, 0.99), "us");
	samples_free(&a);
	samples_free(&b);
	return 0;
}

/* ======================================================================
 * spawn: process start floors (fork+exec to exit)
 * ====================================================================== */

/*
 * fork+exec of argv until the child exits. with_ipc: the child gets a
 * socketpair end as fd 3 whose other end is closed (a vtpmd worker then
 * starts, finds its parent gone, and exits).
 */
static double
spawn_p50(char *const argv[], int n, int with_ipc)
{
	struct samples s;
	uint64_t t0;
	pid_t pid;
	int i, st, fd, sv[2];
	double r;

	samples_init(&s, (size_t)n);
	for (i = 0; i < n; i++) {
		sv[0] = sv[1] = -1;
		if (with_ipc && socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
			die("socketpair: %s", strerror(errno));
		t0 = bench_now_ns();
		if ((pid = fork()) < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			if ((fd = open("/dev/null", O_RDWR)) >= 0) {
				dup2(fd, 0);
				dup2(fd, 1);
				dup2(fd, 2);
			}
			if (with_ipc && dup2(sv[1], 3) != 3)
				_exit(126);
			closefrom(4);
			execv(argv[0], argv);
			_exit(127);
		}
		if (with_ipc) {
			close(sv[0]);
			close(sv[1]);
		}
		if (waitpid(pid, &st, 0) != pid)
			die("waitpid");
		samples_add(&s, bench_now_ns() - t0);
		if (i == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) >= 126))
			die("%s did not run (status 0x%x)", argv[0], st);
	}
	r = samples_pct_us(&s, 0.5) / 1000.0;
	samples_free(&s);
	return r;
}

static int
cmd_spawn(void)
{
	char *t[] = { "/bin/true", NULL };
	char ids[64];
	char *w[] = { NULL, "--worker", ids, NULL };

	if (O.vtpmd_bin == NULL)
		die("spawn needs --vtpmd-bin PATH");
	snprintf(ids, sizeof(ids), "%s", O.phase);
	w[0] = (char *)O.vtpmd_bin;
	result("spawn.bin_true.p50", spawn_p50(t, O.n, 0), "ms");
	result("spawn.vtpmd_worker.p50", spawn_p50(w, O.n, 1), "ms");
	return 0;
}


/* ======================================================================
 * stall: NV_Increment for S seconds; the longest one (something else
 * blocking vtpmd's parent, such as an admin request, shows up here)
 * ====================================================================== */

static int
cmd_stall(void)
{
	uint8_t inc[TPM_CMD_MAX];
	size_t incl = tpmcmd_nv_increment(inc, BENCH_NV_INDEX);
	struct vguest g;
	struct peer p = { .kind = T_VTPMD, .g = &g };
	struct samples s;
	uint64_t end, t0, t1;
	uint32_t rc;
	char k[128];

	if (!O.have_server)
		die("stall needs --server");
	vg_init(&g, O.base, 0);
	vg_attach_or_die(&g);
	define_counter(&p, "stall");
	samples_init(&s, 10000);
	end = bench_now_ns() + (uint64_t)(O.seconds * 1e9);
	do {
		t0 = bench_now_ns();
		if ((rc = peer_tpm(&p, inc, incl)) != 0)
			die("stall: NV_Increment rc 0x%x", rc);
		t1 = bench_now_ns();
		samples_add(&s, t1 - t0);
	} while (t1 < end);
	snprintf(k, sizeof(k), "stall.%s.nv_p50", O.label);
	result(k, samples_pct_us(&s, 0.5) / 1000.0, "ms");
	snprintf(k, sizeof(k), "stall.%s.nv_max", O.label);
	result(k, samples_pct_us(&s, 1.0) / 1000.0, "ms");
	vg_detach(&g);
	vg_free(&g);
	samples_free(&s);
	return 0;
}


/* ======================================================================
 * crypto: what the channel's encryption adds to one round trip
 * ====================================================================== */

/*
 * ns per call of encrypt and of decrypt for messages of len bytes: the p50
 * over batches of 100 calls (a batch that was preempted is an outlier).
 */
static void
crypto_time(size_t len, double *enc_ns, double *dec_ns)
{
	enum { BATCH = 100, NB = 200 };
	struct noise_cipher a, b;
	struct samples se, sd;
	uint8_t pt[256], *ct;
	uint64_t t0;
	size_t clen = len + NOISE_TAG_LEN;
	int i, j;

	memset(&a, 0, sizeof(a));
	randombytes_buf(a.k, sizeof(a.k));
	a.has_key = 1;
	b = a;
	memset(pt, 0x42, sizeof(pt));
	samples_init(&se, NB);
	samples_init(&sd, NB);
	if ((ct = malloc(BATCH * clen)) == NULL)
		die("out of memory");
	for (j = 0; j < NB; j++) {
		t0 = bench_now_ns();
		for (i = 0; i < BATCH; i++)
			if (noise_cipher_encrypt(&a, NULL, 0, pt, len, ct + (size_t)i * clen) != 0)
				die("encrypt");
		samples_add(&se, bench_now_ns() - t0);
		t0 = bench_now_ns();
		for (i = 0; i < BATCH; i++)
			if (noise_cipher_decrypt(&b, NULL, 0, ct + (size_t)i * clen, clen, pt) != 0)
				die("decrypt");
		samples_add(&sd, bench_now_ns() - t0);
	}
	*enc_ns = samples_pct_us(&se, 0.5) * 1000.0 / BATCH;
	*dec_ns = samples_pct_us(&sd, 0.5) * 1000.0 / BATCH;
	samples_free(&se);
	samples_free(&sd);
	free(ct);
	noise_cipher_wipe(&a);
	noise_cipher_wipe(&b);
}

/*
 * The attestation steps of one attach, each side doing one of each:
 * producing evidence (sim: sign a report) and verifying the peer's.
 */
static void
evidence_time(void)
{
	struct attest_verify_cfg vcfg = { .av_allow_sim = 1 };
	struct attest_claims claims;
	struct samples sg, sv, cg, cv;
	struct vguest g;
	uint8_t rd[ATTEST_REPORT_DATA_LEN], ev[ATTEST_MAX_EVIDENCE];
	char why[256];
	size_t evlen;
	uint64_t t0, c0;
	int i, rc;

	vg_init(&g, 0xfff0, 0);
	randombytes_buf(rd, sizeof(rd));
	samples_init(&sg, 50);
	samples_init(&sv, 50);
	samples_init(&cg, 50);
	samples_init(&cv, 50);
	for (i = 0; i < 50; i++) {
		t0 = bench_now_ns();
		c0 = bench_cpu_ns();
		if ((rc = attest_evidence_get(g.ap, rd, ev, sizeof(ev), &evlen)) != 0)
			die("attest_evidence_get: %s", vtpm_strerror(rc));
		samples_add(&cg, bench_cpu_ns() - c0);
		samples_add(&sg, bench_now_ns() - t0);
		t0 = bench_now_ns();
		c0 = bench_cpu_ns();
		if (attest_evidence_verify(&vcfg, ev, evlen, rd, &claims, why, sizeof(why)) != 0)
			die("attest_evidence_verify: %s", why);
		samples_add(&cv, bench_cpu_ns() - c0);
		samples_add(&sv, bench_now_ns() - t0);
	}
	result("crypto.evidence_get.p50", samples_pct_us(&sg, 0.5) / 1000.0, "ms");
	result("crypto.evidence_verify.p50", samples_pct_us(&sv, 0.5) / 1000.0, "ms");
	result("crypto.evidence_get.cpu_p50", samples_pct_us(&cg, 0.5) / 1000.0, "ms");
	result("crypto.evidence_verify.cpu_p50", samples_pct_us(&cv, 0.5) / 1000.0, "ms");
	samples_free(&cg);
	samples_free(&cv);
	result("crypto.evidence_bytes", (double)evlen, "B");
	samples_free(&sg);
	samples_free(&sv);
	vg_free(&g);
}

static int
cmd_crypto(void)
{
	double ce, cd, re, rd;

	/* GetRandom(32): type + locality + 12-byte command; type + 44-byte response */
	crypto_time(1 + 1 + 12, &ce, &cd);
	crypto_time(1 + 44, &re, &rd);
	result("crypto.getrandom_cmd_encrypt", ce / 1000.0, "us");
	result("crypto.getrandom_cmd_decrypt", cd / 1000.0, "us");
	result("crypto.getrandom_rsp_encrypt", re / 1000.0, "us");
	result("crypto.getrandom_rsp_decrypt", rd / 1000.0, "us");
	result("crypto.per_round_trip", (ce + cd + re + rd) / 1000.0, "us");
	evidence_time();
	return 0;
}

/* ---- load: N guests, a mix of commands, errors counted (make load) ---- */

enum { LD_GETRANDOM, LD_PCR_EXTEND, LD_PCR_READ, LD_NV_INCREMENT, LD_CREATE_PRIMARY,
	LD_FLUSH, LD_KINDS };
static const char *const ld_names[LD_KINDS] = { "GetRandom", "PCR_Extend", "PCR_Read",
	"NV_Increment", "CreatePrimary", "FlushContext" };

/* CreatePrimary of an ECC P-256 storage key under the owner hierarchy. */
static size_t
ld_create_primary(uint8_t *out)
{
	static const uint8_t body[] = {
		0x80, 0x02, 0, 0, 0, 0, 0x00, 0x00, 0x01, 0x31,	/* TPM_CC_CreatePrimary */
		0x40, 0x00, 0x00, 0x01,				/* TPM_RH_OWNER */
		0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 0, 0, 0,	/* empty password session */
		0, 4, 0, 0, 0, 0,				/* inSensitive: empty */
		0, 26,						/* inPublic size */
		0x00, 0x23, 0x00, 0x0b,				/* ECC, SHA-256 */
		0x00, 0x03, 0x00, 0x72,				/* storage key attributes */
		0, 0,						/* authPolicy */
		0x00, 0x06, 0x00, 0x80, 0x00, 0x43,		/* AES-128-CFB */
		0x00, 0x10, 0x00, 0x03, 0x00, 0x10,		/* scheme NULL, P-256, kdf NULL */
		0, 0, 0, 0,					/* unique x, y: empty */
		0, 0,						/* outsideInfo */
		0, 0, 0, 0,					/* creationPCR: none */
	};

	memcpy(out, body, sizeof(body));
	be32_enc(out + 2, sizeof(body));
	return sizeof(body);
}

static size_t
ld_flush(uint8_t *out, uint32_t handle)
{
	memcpy(out, "\x80\x01\0\0\0\x0e\0\0\x01\x65", 10);	/* TPM_CC_FlushContext */
	be32_enc(out + 10, handle);
	return 14;
}

static size_t
ld_pcr_read(uint8_t *out)
{
	static const uint8_t body[] = {
		0x80, 0x01, 0, 0, 0, 20, 0x00, 0x00, 0x01, 0x7e,	/* TPM_CC_PCR_Read */
		0, 0, 0, 1, 0x00, 0x0b, 3, 0x00, 0x00, 0x01,	/* sha256: PCR 16 */
	};

	memcpy(out, body, sizeof(body));
	return sizeof(body);
}

struct lconn {
	struct vguest	 g;
	uint64_t	 sent;
	int		 kind;		/* of the command in flight */
	uint32_t	 handle;	/* a primary to flush next, or 0 */
	int		 dead;
	unsigned	 rnd;
};

/* Picks and sends the guest's next command. */
static void
ld_send(struct lconn *c, unsigned long *errs)
{
	uint8_t cmd[TPM_CMD_MAX], msg[1 + TPM_CMD_MAX];
	size_t len;
	unsigned r;
	int rc;

	r = rand_r(&c->rnd) % 1000;
	if (c->handle != 0) {
		c->kind = LD_FLUSH;
		len = ld_flush(cmd, c->handle);
	} else if (r < 400) {
		c->kind = LD_GETRANDOM;
		len = tpmcmd_get_random(cmd, 32);
	} else if (r < 650) {
		c->kind = LD_PCR_EXTEND;
		len = tpmcmd_pcr_extend(cmd, 16, (uint8_t)r);
	} else if (r < 800) {
		c->kind = LD_PCR_READ;
		len = ld_pcr_read(cmd);
	} else if (r < 990) {
		c->kind = LD_NV_INCREMENT;
		len = tpmcmd_nv_increment(cmd, BENCH_NV_INDEX);
	} else {
		c->kind = LD_CREATE_PRIMARY;
		len = ld_create_primary(cmd);
	}
	msg[0] = 0;
	memcpy(msg + 1, cmd, len);
	c->sent = bench_now_ns();
	if ((rc = chan_send(c->g.ch, MSG_TPM_CMD, msg, 1 + len)) != 0) {
		note("guest %s: send: %s", c->g.name, vtpm_strerror(rc));
		(*errs)++;
		c->dead = 1;
	}
}

static long
ld_nofile_limit(void)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)rl.rlim_cur : -1;
}

static int
cmd_load(void)
{
	struct epoll_event ev, evs[256];
	struct lconn *cs;
	struct mconn *ms;
	struct samples all, per[LD_KINDS];
	unsigned long count[LD_KINDS] = { 0 }, errs = 0, done = 0;
	uint64_t t_start, t_end, now;
	struct mem_kib m;
	long rss = 0, pss = 0;
	pid_t kids[4096];
	size_t nk = 0, j;
	char k[128];
	int ep, i, n, kk, inflight = 0;

	if (!O.have_server)
		die("load needs --server");
	bench_raise_nofile(4 * O.n + 64);
	note("RLIMIT_NOFILE of this client: %ld", ld_nofile_limit());
	if ((cs = calloc((size_t)O.n, sizeof(*cs))) == NULL ||
	    (ms = calloc((size_t)O.n, sizeof(*ms))) == NULL)
		die("out of memory");
	for (i = 0; i < O.n; i++) {
		vg_init(&ms[i].g, O.base, (uint32_t)i);
		ms[i].p.kind = T_VTPMD;
		ms[i].p.g = &ms[i].g;
	}
	note("attaching %d guests", O.n);
	note("attached in %.1f s", attach_parallel(ms, O.n, O.threads));
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	for (i = 0; i < O.n; i++) {
		int fd;

		define_counter(&ms[i].p, O.label);
		cs[i].g = ms[i].g;
		cs[i].rnd = (unsigned)i * 2654435761u + 1;
		fd = chan_fd(cs[i].g.ch);
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
			die("fcntl");
		ev.events = EPOLLIN;
		ev.data.ptr = &cs[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
			die("epoll_ctl");
	}
	samples_init(&all, 2000000);
	for (i = 0; i < LD_KINDS; i++)
		samples_init(&per[i], 1000000);
	t_start = bench_now_ns();
	t_end = t_start + (uint64_t)(O.seconds * 1e9);
	for (i = 0; i < O.n; i++) {
		ld_send(&cs[i], &errs);
		inflight += !cs[i].dead;
	}
	while (inflight > 0) {
		n = epoll_wait(ep, evs, 256, 30000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			note("no progress for 30 s with %d commands in flight", inflight);
			errs += (unsigned long)inflight;
			break;
		}
		now = bench_now_ns();
		for (kk = 0; kk < n; kk++) {
			struct lconn *c = evs[kk].data.ptr;
			const uint8_t *frame;
			uint8_t rsp[TPM_CMD_MAX * 2], type;
			size_t flen, rlen;
			uint32_t code;
			int rc;

			if (c->dead)
				continue;
			rc = chan_read_frame(c->g.ch, &frame, &flen);
			if (rc == 0)
				continue;
			if (rc > 0)
				rc = chan_open(c->g.ch, frame, flen, &type, rsp, sizeof(rsp), &rlen);
			if (rc < 0 || (rc == 0 && type != MSG_TPM_RSP)) {
				note("guest %s: %s", c->g.name, rc < 0 ? vtpm_strerror(rc) :
				    "unexpected message");
				errs++;
				c->dead = 1;
				inflight--;
				(void)epoll_ctl(ep, EPOLL_CTL_DEL, chan_fd(c->g.ch), NULL);
				continue;
			}
			code = tpmrsp_code(rsp, rlen);
			if (code != 0) {
				note("guest %s: %s answered 0x%x", c->g.name, ld_names[c->kind],
				    code);
				errs++;
			}
			if (c->kind == LD_CREATE_PRIMARY && code == 0 && rlen >= 14)
				c->handle = be32_dec(rsp + 10);
			else if (c->kind == LD_FLUSH)
				c->handle = 0;
			count[c->kind]++;
			done++;
			samples_add(&all, now - c->sent);
			samples_add(&per[c->kind], now - c->sent);
			inflight--;
			if (now < t_end || c->handle != 0) {
				ld_send(c, &errs);
				inflight += !c->dead;
			}
		}
	}
	/* memory of vtpmd and its workers at the end of the run */
	if (O.vtpmd_pid > 0) {
		if (mem_read(O.vtpmd_pid, &m) == 0) {
			rss += m.rss;
			pss += m.pss;
		}
		nk = proc_children(O.vtpmd_pid, kids, 4096);
		for (j = 0; j < nk; j++) {
			pid_t gk[4096];
			size_t ng = proc_children(kids[j], gk, 4096), q;

			if (mem_read(kids[j], &m) == 0) {
				rss += m.rss;
				pss += m.pss;
			}
			for (q = 0; q < ng; q++)	/* workers forked by the zygote */
				if (mem_read(gk[q], &m) == 0) {
					rss += m.rss;
					pss += m.pss;
				}
		}
	}
	snprintf(k, sizeof(k), "load.%s.guests", O.label);
	result(k, O.n, "guests");
	snprintf(k, sizeof(k), "load.%s.commands", O.label);
	result(k, (double)done, "commands");
	snprintf(k, sizeof(k), "load.%s.errors", O.label);
	result(k, (double)errs, "errors");
	snprintf(k, sizeof(k), "load.%s.ops", O.label);
	result(k, (double)done / O.seconds, "ops/s");
	snprintf(k, sizeof(k), "load.%s.p50", O.label);
	result(k, samples_pct_us(&all, 0.5), "us");
	snprintf(k, sizeof(k), "load.%s.p99", O.label);
	result(k, samples_pct_us(&all, 0.99), "us");
	for (i = 0; i < LD_KINDS; i++) {
		if (count[i] == 0)
			continue;
		snprintf(k, sizeof(k), "load.%s.%s.count", O.label, ld_names[i]);
		result(k, (double)count[i], "commands");
		snprintf(k, sizeof(k), "load.%s.%s.p50", O.label, ld_names[i]);
		result(k, samples_pct_us(&per[i], 0.5), "us");
		snprintf(k, sizeof(k), "load.%s.%s.p99", O.label, ld_names[i]);
		result(k, samples_pct_us(&per[i], 0.99), "us");
	}
	if (O.vtpmd_pid > 0) {
		snprintf(k, sizeof(k), "load.%s.server_rss", O.label);
		result(k, (double)rss / 1024.0, "MiB");
		snprintf(k, sizeof(k), "load.%s.server_pss", O.label);
		result(k, (double)pss / 1024.0, "MiB");
	}
	note("%s: %d guests, %lu commands in %.0f s, %lu errors, p50 %.0f us, p99 %.0f us",
	    O.label, O.n, done, O.seconds, errs, samples_pct_us(&all, 0.5),
	    samples_pct_us(&all, 0.99));
	for (i = 0; i < O.n; i++) {
		if (!cs[i].dead) {
			int fd = chan_fd(cs[i].g.ch);

			(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			vg_detach(&cs[i].g);
		}
		vg_free(&cs[i].g);
	}
	free(cs);
	free(ms);
	return errs == 0 ? 0 : 1;
}

/* ======================================================================
 * main
 * ====================================================================== */

static void
usage(FILE *f)
{
	fprintf(f,
"usage: vtpm-bench COMMAND [options]\n"
"  rtt          --server EP --swtpm SOCK [--rounds N --iters N]\n"
"               GetRandom(32) and PCR_Extend round trips, vtpmd vs swtpm, interleaved\n"
"  nv           --server EP --swtpm SOCK(durable) [--swtpm2 SOCK(plain)] [--rounds --iters]\n"
"               NV_Increment of an ordinary counter, one guest\n"
"  nvmulti      (--server EP | --swtpm-dir DIR) --n GUESTS --seconds S --label L\n"
"               [--phase getrandom]\n"
"               aggregate NV_Increment/s, one outstanding command per guest\n"
"  load         --server EP --n GUESTS --seconds S --label L [--vtpmd-pid PID]\n"
"               a mix of commands from every guest; errors, p50/p99, server memory\n"
"  attach       --server EP --phase new|hot|resume --n N [--rounds R] [--admin SOCK]\n"
"  hold         --server EP --vtpmd-pid PID --n N [--threads T] --label L\n"
"               N attached instances; PSS of the parent and its workers\n"
"  admin-list   --admin SOCK [--rounds R] --label L\n"
"  swtpm-cold   --swtpm-dir DIR --n N\n"
"  swtpm-density --swtpm-dir DIR --n N --label L\n"
"  loop         (--server EP | --swtpm SOCK) --phase getrandom|pcrextend|nvincrement --iters N\n"
"               untimed commands (run under strace -c)\n"
"  flush        --swtpm-dir DIR --iters N: 4 KiB pwrite+fdatasync and the\n"
"               tmp+fsync+rename+fsync(dir) file pattern on that disk\n"
"  spawn        --vtpmd-bin PATH --phase UID:GID --n N: fork+exec to exit of\n"
"               /bin/true and of `vtpmd --worker` without its IPC socket\n"
"  crypto       ChaCha20-Poly1305 time of one GetRandom round trip's four messages\n"
"  stall        --server EP --seconds S --label L: NV_Increment in a loop;\n"
"               p50 and the longest one\n"
"common: --base N (identity family), --swtpm-bin PATH, --preload SO\n");
}

enum {
	OPT_SERVER = 256, OPT_ADMIN, OPT_SWTPM, OPT_SWTPM2, OPT_SWTPM_DIR, OPT_SWTPM_BIN,
	OPT_PRELOAD, OPT_LABEL, OPT_PHASE, OPT_ROUNDS, OPT_ITERS, OPT_N, OPT_THREADS,
	OPT_SECONDS, OPT_BASE, OPT_PID, OPT_VTPMD_BIN,
};

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "admin", required_argument, NULL, OPT_ADMIN },
		{ "swtpm", required_argument, NULL, OPT_SWTPM },
		{ "swtpm2", required_argument, NULL, OPT_SWTPM2 },
		{ "swtpm-dir", required_argument, NULL, OPT_SWTPM_DIR },
		{ "swtpm-bin", required_argument, NULL, OPT_SWTPM_BIN },
		{ "preload", required_argument, NULL, OPT_PRELOAD },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "phase", required_argument, NULL, OPT_PHASE },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "iters", required_argument, NULL, OPT_ITERS },
		{ "n", required_argument, NULL, OPT_N },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "seconds", required_argument, NULL, OPT_SECONDS },
		{ "base", required_argument, NULL, OPT_BASE },
		{ "vtpmd-pid", required_argument, NULL, OPT_PID },
		{ "vtpmd-bin", required_argument, NULL, OPT_VTPMD_BIN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd;
	int ch;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case OPT_SERVER:
			if (endpoint_parse(optarg, 0, &O.server) != 0)
				die("--server %s: not an endpoint", optarg);
			O.have_server = 1;
			break;
		case OPT_ADMIN:		O.admin = optarg; break;
		case OPT_SWTPM:		O.swtpm = optarg; break;
		case OPT_SWTPM2:	O.swtpm2 = optarg; break;
		case OPT_SWTPM_DIR:	O.swtpm_dir = optarg; break;
		case OPT_SWTPM_BIN:	O.swtpm_bin = optarg; break;
		case OPT_PRELOAD:	O.preload = optarg; break;
		case OPT_LABEL:		O.label = optarg; break;
		case OPT_PHASE:		O.phase = optarg; break;
		case OPT_ROUNDS:	O.rounds = atoi(optarg); break;
		case OPT_ITERS:		O.iters = atoi(optarg); break;
		case OPT_N:		O.n = atoi(optarg); break;
		case OPT_THREADS:	O.threads = atoi(optarg); break;
		case OPT_SECONDS:	O.seconds = atof(optarg); break;
		case OPT_BASE:		O.base = (uint32_t)strtoul(optarg, NULL, 0); break;
		case OPT_PID:		O.vtpmd_pid = (pid_t)atoi(optarg); break;
		case OPT_VTPMD_BIN:	O.vtpmd_bin = optarg; break;
		case 'h':		usage(stdout); return 0;
		default:		usage(stderr); return 2;
		}
	}
	if (O.rounds < 1 || O.rounds > MAX_ROUNDS || O.iters < 20 || O.n < 1 ||
	    O.threads < 1 || O.seconds <= 0)
		die("bad --rounds (1..%d), --iters (>= 20), --n, --threads or --seconds",
		    MAX_ROUNDS);
	if (sodium_init() < 0)
		die("sodium_init");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	atexit(kill_spawned);
	if (strcmp(cmd, "rtt") == 0)
		return cmd_rtt();
	if (strcmp(cmd, "nv") == 0)
		return cmd_nv();
	if (strcmp(cmd, "nvmulti") == 0)
		return cmd_nvmulti();
	if (strcmp(cmd, "attach") == 0)
		return cmd_attach();
	if (strcmp(cmd, "load") == 0)
		return cmd_load();
	if (strcmp(cmd, "hold") == 0)
		return cmd_hold();
	if (strcmp(cmd, "admin-list") == 0)
		return cmd_admin_list();
	if (strcmp(cmd, "swtpm-cold") == 0)
		return cmd_swtpm_cold();
	if (strcmp(cmd, "swtpm-density") == 0)
		return cmd_swtpm_density();
	if (strcmp(cmd, "loop") == 0)
		return cmd_loop();
	if (strcmp(cmd, "flush") == 0)
		return cmd_flush();
	if (strcmp(cmd, "spawn") == 0)
		return cmd_spawn();
	if (strcmp(cmd, "stall") == 0)
		return cmd_stall();
	if (strcmp(cmd, "crypto") == 0)
		return cmd_crypto();
	usage(stderr);
	return 2;
}
