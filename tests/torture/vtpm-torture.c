/*
 * vtpm-torture.c: crash torture and fault-injection driver. G guest processes
 * each attach to their own instance over the real channel (Noise, simulated
 * evidence, ATTACH) and write NV in a loop: NV_Write of a sequence number to
 * an ordinary index, NV_Increment of a counter. Each records every write the
 * TPM acknowledged with success. The driver meanwhile kills vtpmd (--mode
 * daemon) or a random worker (--mode worker) with SIGKILL at random moments,
 * or does nothing (--mode none: faults come from outside, tests/faultinj),
 * or cuts the power (--mode power: vtpmd runs under tests/crashsim/wlog.so;
 * after the kill the state directory is replaced by what the disk could hold
 * had the power failed at a random earlier moment, tests/crashsim/crashimg.c;
 * every write acknowledged before that moment must be there).
 * After every kill each guest reattaches and reads both indices back: the
 * value must be the last acknowledged one or the one in flight when the
 * session broke. Trusts nothing vtpmd says; counts what it sees.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "attest.h"
#include "crashimg.h"
#include "channel.h"
#include "cursor.h"
#include "endpoint.h"
#include "log.h"
#include "noise.h"
#include "proto.h"

#define MAX_GUESTS	16
#define NV_DATA		0x01500020u
#define NV_CTR		0x01500021u
#define ATTR_DATA	0x02040004u	/* NO_DA | AUTHREAD | AUTHWRITE, ordinary */
#define ATTR_CTR	0x02040014u	/* the same, TPM_NT_COUNTER */
#define RC_NV_DEFINED	0x14cu
#define RC_NV_UNINIT	0x14au
#define RC_HANDLE	0x18bu		/* TPM_RC_HANDLE + handle 1 */
#define IO_TIMEOUT_MS	20000
#define STUCK_MS	60000		/* a guest that cannot reattach this long: failed open */

/* What one guest knows, kept across reconnects (and across runs with --state). */
struct gstate {
	int		defined;	/* both indices acknowledged as defined */
	uint64_t	data_acked;	/* last acknowledged sequence number, 0 = none */
	uint64_t	data_pending;	/* sequence number in flight, 0 = none */
	uint64_t	data_next;
	int		ctr_state;	/* 0 never incremented, 1 value known, 2 acked but value unknown */
	uint64_t	ctr_acked;
	int		ctr_pending;	/* an increment in flight */
	uint64_t	acks_unchecked;	/* acknowledged since the last good read-back */
	/* --mode power: the range the next read-back may show after a cut */
	int		p_active;
	uint64_t	p_data_lo, p_data_hi, p_ctr_lo, p_ctr_hi;
	int		p_ctr_may_be_new;	/* the counter's first increment may be lost */
};

/* Counters a guest shares with the driver (MAP_SHARED). */
struct gshared {
	volatile uint64_t	epoch_seen;	/* epoch of the last good read-back */
	volatile uint64_t	acked, checked, verifies, lost, corrupt, ghosts;
	volatile uint64_t	failed_opens, attaches, refusals, tpm_errors;
	volatile int		exited;
	struct gstate		st;		/* final state, for --state */
	char			problem[256];
};

struct shared {
	volatile uint64_t	epoch;
	volatile uint64_t	cut_epoch;	/* --mode power: the epoch the cut below opened */
	volatile uint64_t	cut_ns;		/* CLOCK_MONOTONIC of the last power cut */
	volatile int		stop;
	struct gshared		g[MAX_GUESTS];
};

static struct {
	struct endpoint	 server;
	const char	*mode;
	int		 guests;
	long		 iterations;
	int		 max_delay_ms;
	unsigned	 seed;
	const char	*state_file;
	const char	*stop_file;
	const char	*progress_file;
	const char	*vtpmd_log;
	char		**vtpmd_argv;
	int		 read_back;
	int		 quiet;
	int		 power;
	const char	*state_dir;	/* --mode power */
	const char	*wlog_so;	/* --mode power */
} O;

static struct shared *S;
static pid_t vtpmd_pid;
static volatile int *vtpmd_up;	/* shared: 0 while the driver has vtpmd down */

static int
vtpmd_running_hint(void)
{
	return vtpmd_up == NULL || *vtpmd_up;
}

/* ---------- small helpers ---------- */

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static uint64_t rng;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n == 0 ? 0 : (uint32_t)(rng % n);
}

static void
problem(int g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
problem(int g, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vtpm-torture: guest %d: %s\n", g, buf);
	memcpy(S->g[g].problem, buf, sizeof(buf));
}

/* ---------- one guest session ---------- */

struct sess {
	int		 g;
	struct chan	*ch;
	uint8_t		 launch[ATTEST_LAUNCH_ID_LEN];
};

enum { S_OK = 0, S_BROKEN = -1, S_REFUSED = -2 };

static void
sess_close(struct sess *s)
{
	if (s->ch != NULL)
		chan_free(s->ch);
	s->ch = NULL;
}

/* Connect, XX handshake, evidence both ways, ATTACH. S_OK, S_BROKEN or S_REFUSED. */
static int
sess_open(struct sess *s, uint32_t *errcode, char *why, size_t whylen)
{
	struct attest_verify_cfg vcfg = { .av_allow_sim = 1 };
	uint8_t spriv[32], spub[32], out[256], h[NOISE_HASH_LEN], rd[ATTEST_REPORT_DATA_LEN];
	uint8_t meas[ATTEST_MEASUREMENT_LEN], host[ATTEST_HOST_DATA_LEN];
	static uint8_t ev[ATTEST_MAX_EVIDENCE], body[CHAN_MAX_BODY];
	struct noise_cipher tx, rx;
	struct attest_provider *p;
	struct attest_claims peer;
	const uint8_t *frame;
	size_t olen, flen, plen, evlen, blen;
	struct noise_hs *hs;
	char vwhy[256];
	uint8_t type, msg[5];
	int fd = -1, rc;
	struct cursor cur;
	uint16_t tlen;
	const uint8_t *text;

	why[0] = '\0';
	if (endpoint_connect(&O.server, 2000, &fd) != 0)
		return S_BROKEN;
	if ((s->ch = chan_new(fd, 0)) == NULL)
		fatalx("out of memory");
	noise_keypair_generate(spriv, spub);
	hs = noise_hs_new(NOISE_XX, 1, (const uint8_t *)CHAN_PROLOGUE,
	    strlen(CHAN_PROLOGUE), spriv, NULL);
	sodium_memzero(spriv, sizeof(spriv));
	if (hs == NULL)
		fatalx("noise_hs_new");
	rc = noise_hs_write(hs, NULL, 0, out, sizeof(out), &olen);
	if (rc == 0)
		rc = chan_write_frame(s->ch, out, olen, IO_TIMEOUT_MS);
	if (rc == 0 && (rc = chan_wait_frame(s->ch, IO_TIMEOUT_MS, &frame, &flen)) > 0)
		rc = 0;
	if (rc == 0)
		rc = noise_hs_read(hs, frame, flen, body, sizeof(body), &plen);
	if (rc == 0)
		rc = noise_hs_write(hs, NULL, 0, out, sizeof(out), &olen);
	if (rc == 0)
		rc = chan_write_frame(s->ch, out, olen, IO_TIMEOUT_MS);
	if (rc == 0)
		rc = noise_hs_split(hs, &tx, &rx, h);
	noise_hs_free(hs);
	if (rc != 0)
		goto broken;
	chan_set_ciphers(s->ch, &tx, &rx);
	noise_cipher_wipe(&tx);
	noise_cipher_wipe(&rx);

	memset(meas, 0x11, sizeof(meas));
	memset(host, 0x40 + s->g, sizeof(host));
	attest_report_data(ATTEST_ROLE_GUEST, h, rd);
	if (attest_provider_sim_new(meas, host, s->launch, &p) != 0 ||
	    attest_evidence_get(p, rd, ev, sizeof(ev), &evlen) != 0)
		fatalx("cannot make evidence");
	attest_provider_free(p);
	if (chan_send(s->ch, MSG_EVIDENCE, ev, evlen) != 0 ||
	    chan_recv(s->ch, IO_TIMEOUT_MS, &type, body, sizeof(body), &blen) != 0)
		goto broken;
	if (type == MSG_ERROR)
		goto error;
	attest_report_data(ATTEST_ROLE_VTPMD, h, rd);
	if (type != MSG_EVIDENCE ||
	    attest_evidence_verify(&vcfg, body, blen, rd, &peer, vwhy, sizeof(vwhy)) != 0) {
		snprintf(why, whylen, "vtpmd's evidence refused");
		*errcode = 0;
		sess_close(s);
		return S_REFUSED;
	}
	msg[0] = VTPM_PROTO_VERSION;
	be32_enc(msg + 1, ATTACH_F_AUTO_STARTUP);
	if (chan_send(s->ch, MSG_ATTACH, msg, sizeof(msg)) != 0 ||
	    chan_recv(s->ch, IO_TIMEOUT_MS, &type, body, sizeof(body), &blen) != 0)
		goto broken;
	if (type == MSG_ERROR)
		goto error;
	if (type != MSG_ATTACHED) {
		snprintf(why, whylen, "answer 0x%02x to ATTACH", type);
		*errcode = 0;
		sess_close(s);
		return S_REFUSED;
	}
	return S_OK;

error:
	cur_init(&cur, body, blen);
	if (cur_get_u32(&cur, errcode) != 0 || cur_get_u16(&cur, &tlen) != 0 ||
	    cur_get_ref(&cur, &text, tlen) != 0)
		*errcode = 0, tlen = 0, text = (const uint8_t *)"";
	snprintf(why, whylen, "ERROR %u: %.*s", *errcode, (int)tlen, text);
	sess_close(s);
	return S_REFUSED;
broken:
	sess_close(s);
	return S_BROKEN;
}

static size_t
cmd_begin(uint8_t *c, uint32_t cc)
{
	be16_enc(c, TPM2_ST_SESSIONS);
	be32_enc(c + 6, cc);
	return 10;
}

/* Appends an empty password authorisation area. */
static size_t
cmd_pwauth(uint8_t *c, size_t n)
{
	be32_enc(c + n, 9);
	be32_enc(c + n + 4, 0x40000009u);	/* TPM_RS_PW */
	be16_enc(c + n + 8, 0);			/* nonce */
	c[n + 10] = 0;				/* attributes */
	be16_enc(c + n + 11, 0);		/* hmac */
	return n + 13;
}

/*
 * Runs one TPM command. Returns S_OK with *rc the response code and the
 * response in rsp[0..*rlen), or S_BROKEN (the session is gone).
 */
static int
tpm(struct sess *s, uint8_t *cmd, size_t n, uint32_t *rc, uint8_t *rsp, size_t cap,
    size_t *rlen)
{
	static uint8_t msg[1 + TPM2_MAX_CMD];
	uint8_t type;

	be32_enc(cmd + 2, (uint32_t)n);
	msg[0] = 0;
	memcpy(msg + 1, cmd, n);
	if (chan_send(s->ch, MSG_TPM_CMD, msg, n + 1) != 0 ||
	    chan_recv(s->ch, IO_TIMEOUT_MS, &type, rsp, cap, rlen) != 0 ||
	    type != MSG_TPM_RSP || *rlen < TPM2_HDR_LEN || be32_dec(rsp + 2) != *rlen) {
		sess_close(s);
		return S_BROKEN;
	}
	*rc = be32_dec(rsp + 6);
	return S_OK;
}

static int
nv_define(struct sess *s, uint32_t index, uint32_t attrs, uint32_t *rc)
{
	uint8_t c[64], r[256];
	size_t n, rl;

	n = cmd_begin(c, 0x12a);
	be32_enc(c + n, 0x40000001u);	/* TPM_RH_OWNER */
	n = cmd_pwauth(c, n + 4);
	be16_enc(c + n, 0);		/* auth */
	be16_enc(c + n + 2, 14);	/* TPM2B_NV_PUBLIC */
	be32_enc(c + n + 4, index);
	be16_enc(c + n + 8, 0x000b);	/* SHA-256 */
	be32_enc(c + n + 10, attrs);
	be16_enc(c + n + 14, 0);	/* authPolicy */
	be16_enc(c + n + 16, 8);	/* dataSize */
	return tpm(s, c, n + 18, rc, r, sizeof(r), &rl);
}

static size_t
nv_cmd(uint8_t *c, uint32_t cc, uint32_t index)
{
	size_t n = cmd_begin(c, cc);

	be32_enc(c + n, index);
	be32_enc(c + n + 4, index);
	return cmd_pwauth(c, n + 8);
}

static int
nv_write(struct sess *s, uint64_t v, uint32_t *rc)
{
	uint8_t c[64], r[256];
	size_t n, rl;

	n = nv_cmd(c, 0x137, NV_DATA);
	be16_enc(c + n, 8);
	be64_enc(c + n + 2, v);
	be16_enc(c + n + 10, 0);
	return tpm(s, c, n + 12, rc, r, sizeof(r), &rl);
}

static int
nv_increment(struct sess *s, uint32_t *rc)
{
	uint8_t c[64], r[256];
	size_t rl;

	return tpm(s, c, nv_cmd(c, 0x134, NV_CTR), rc, r, sizeof(r), &rl);
}

/* NV_Read of 8 bytes: S_OK with *rc; *v set when *rc is success. */
static int
nv_read(struct sess *s, uint32_t index, uint32_t *rc, uint64_t *v)
{
	uint8_t c[64], r[256];
	size_t n, rl;
	int st;

	n = nv_cmd(c, 0x14e, index);
	be16_enc(c + n, 8);
	be16_enc(c + n + 2, 0);
	if ((st = tpm(s, c, n + 4, rc, r, sizeof(r), &rl)) != S_OK)
		return st;
	if (*rc == TPM2_RC_SUCCESS) {
		/* header, u32 parameterSize, TPM2B (u16 8, 8 bytes), sessions */
		if (rl < 10 + 4 + 2 + 8 || be16_dec(r + 14) != 8) {
			*rc = 0xffffffffu;
			return S_OK;
		}
		*v = be64_dec(r + 16);
	}
	return S_OK;
}

/* ---------- one guest's loop ---------- */

/*
 * --mode power: when each write was acknowledged (each guest is its own
 * process, so these are its own). An acknowledgement received before the
 * cut proves the write was durable before it; later ones prove nothing.
 */
#define ACK_RING	8192
struct ack { uint64_t t, v; };
static struct {
	struct ack	data[ACK_RING], ctr[ACK_RING];
	unsigned	ndata, nctr;		/* entries (wrap at ACK_RING) */
	uint64_t	data_base, ctr_base;	/* values seen by the last read-back */
	uint64_t	t_defined;		/* when the define was acknowledged */
	uint64_t	t_ctr_first;		/* when the first increment was */
} H;

static void
ack_note(struct ack *ring, unsigned *n, uint64_t v)
{
	ring[*n % ACK_RING].t = now_ns();
	ring[*n % ACK_RING].v = v;
	(*n)++;
}

/* The last value acknowledged before the cut, or base if none is known. */
static uint64_t
ack_floor(const struct ack *ring, unsigned n, uint64_t base, uint64_t cut)
{
	unsigned i, first = n > ACK_RING ? n - ACK_RING : 0;

	for (i = n; i > first; i--)
		if (ring[(i - 1) % ACK_RING].t < cut)
			return ring[(i - 1) % ACK_RING].v;
	return base;
}

/*
 * After a power cut at time cut: what the indices may now hold. Writes
 * acknowledged before the cut must be there; anything sent since may or may
 * not be. The next guest_verify() checks against this range.
 */
static void
power_adjust(struct gstate *st, uint64_t cut)
{
	if (st->defined && H.t_defined >= cut) {
		st->defined = 0;	/* the define itself may be gone: define again */
		H.data_base = H.ctr_base = 0;
	}
	st->p_active = 1;
	st->p_data_lo = st->defined ? ack_floor(H.data, H.ndata, H.data_base, cut) : 0;
	st->p_data_hi = st->data_next;
	st->p_ctr_lo = ack_floor(H.ctr, H.nctr, H.ctr_base, cut);
	st->p_ctr_hi = st->ctr_acked + (st->ctr_pending ? 1 : 0);
	st->p_ctr_may_be_new = !st->defined || st->ctr_state == 0 ||
	    (st->ctr_state == 2 && H.t_ctr_first >= cut);
	H.ndata = H.nctr = 0;
}

/*
 * guest_verify() for --mode power: index value v (or rc) against the range
 * power_adjust() set. Updates the acknowledged values to what is there.
 */
static void
power_check(struct sess *s, struct gstate *st, uint32_t index, uint32_t rc, uint64_t v)
{
	struct gshared *gs = &S->g[s->g];

	if (index == NV_DATA) {
		if (rc == RC_NV_UNINIT && st->p_data_lo == 0) {
			v = 0;
		} else if (rc != TPM2_RC_SUCCESS || v < st->p_data_lo) {
			gs->lost++;
			problem(s->g, "after a power cut the data index holds %llu (rc 0x%x), "
			    "acknowledged before the cut %llu", (unsigned long long)v, rc,
			    (unsigned long long)st->p_data_lo);
		} else if (v > st->p_data_hi) {
			gs->corrupt++;
			problem(s->g, "after a power cut the data index holds %llu, never "
			    "sent (highest %llu)", (unsigned long long)v,
			    (unsigned long long)st->p_data_hi);
		}
		st->data_acked = v;
		st->data_pending = 0;
		if (st->data_next < v)
			st->data_next = v;
		H.data_base = v;
		return;
	}
	if (rc == RC_NV_UNINIT && st->p_ctr_may_be_new) {
		st->ctr_state = 0;
		v = 0;
	} else if (rc != TPM2_RC_SUCCESS) {
		gs->lost++;
		problem(s->g, "after a power cut the counter is unreadable (rc 0x%x)", rc);
	} else if (st->ctr_state != 1 || st->p_ctr_may_be_new) {
		st->ctr_state = 1;	/* its first value, learnt now */
	} else if (v < st->p_ctr_lo) {
		gs->lost++;
		problem(s->g, "after a power cut the counter is %llu, acknowledged before "
		    "the cut %llu", (unsigned long long)v, (unsigned long long)st->p_ctr_lo);
	} else if (v > st->p_ctr_hi) {
		gs->corrupt++;
		problem(s->g, "after a power cut the counter is %llu, at most %llu sent",
		    (unsigned long long)v, (unsigned long long)st->p_ctr_hi);
	}
	st->ctr_acked = v;
	st->ctr_pending = 0;
	H.ctr_base = v;
}

/*
 * Reads both indices back and checks them against what was acknowledged.
 * S_OK, or S_BROKEN (the session broke: check again after reattaching).
 */
static int
guest_verify(struct sess *s, struct gstate *st, int after_error)
{
	struct gshared *gs = &S->g[s->g];
	uint64_t v = 0;
	uint32_t rc;

	if (!st->defined)
		return S_OK;
	if (st->p_active) {
		uint64_t vc = 0;
		uint32_t rcc;

		if (nv_read(s, NV_DATA, &rc, &v) != S_OK || nv_read(s, NV_CTR, &rcc, &vc) != S_OK)
			return S_BROKEN;
		if (rc == TPM2_RC_NV_UNAVAILABLE || rc == TPM2_RC_INITIALIZE ||
		    rc == TPM2_RC_RETRY || rcc == TPM2_RC_NV_UNAVAILABLE ||
		    rcc == TPM2_RC_INITIALIZE || rcc == TPM2_RC_RETRY)
			return S_BROKEN;
		power_check(s, st, NV_DATA, rc, v);
		power_check(s, st, NV_CTR, rcc, vc);
		st->p_active = 0;
		gs->verifies++;
		gs->checked += st->acks_unchecked;
		st->acks_unchecked = 0;
		return S_OK;
	}
	if (nv_read(s, NV_DATA, &rc, &v) != S_OK)
		return S_BROKEN;
	if (rc == RC_NV_UNINIT && st->data_acked == 0) {
		st->data_pending = 0;
	} else if (rc != TPM2_RC_SUCCESS) {
		if (rc == TPM2_RC_NV_UNAVAILABLE || rc == TPM2_RC_INITIALIZE ||
		    rc == TPM2_RC_FAILURE || rc == TPM2_RC_RETRY)
			return S_BROKEN;	/* the TPM is restarting: try again */
		gs->lost++;
		problem(s->g, "data index unreadable: rc 0x%x (acked %llu)", rc,
		    (unsigned long long)st->data_acked);
		return S_OK;
	} else if (v == st->data_acked) {
		st->data_pending = 0;
	} else if (v != 0 && v == st->data_pending) {
		if (after_error) {
			gs->ghosts++;
			problem(s->g, "write %llu answered with an error is present",
			    (unsigned long long)v);
		}
		st->data_acked = v;
		st->data_pending = 0;
	} else if (v < st->data_acked) {
		gs->lost++;
		problem(s->g, "data index holds %llu, last acknowledged %llu",
		    (unsigned long long)v, (unsigned long long)st->data_acked);
		st->data_acked = v;
		st->data_pending = 0;
	} else {
		gs->corrupt++;
		problem(s->g, "data index holds %llu, acknowledged %llu, in flight %llu",
		    (unsigned long long)v, (unsigned long long)st->data_acked,
		    (unsigned long long)st->data_pending);
		st->data_acked = v;
		st->data_pending = 0;
	}
	if (st->data_next < st->data_acked)
		st->data_next = st->data_acked;

	if (nv_read(s, NV_CTR, &rc, &v) != S_OK)
		return S_BROKEN;
	if (rc == RC_NV_UNINIT && st->ctr_state == 0) {
		st->ctr_pending = 0;
	} else if (rc != TPM2_RC_SUCCESS) {
		if (rc == TPM2_RC_NV_UNAVAILABLE || rc == TPM2_RC_INITIALIZE ||
		    rc == TPM2_RC_FAILURE || rc == TPM2_RC_RETRY)
			return S_BROKEN;
		gs->lost++;
		problem(s->g, "counter unreadable: rc 0x%x", rc);
		return S_OK;
	} else if (st->ctr_state != 1) {
		/* first value learnt (or the first increment's value unknown) */
		if (st->ctr_state == 0 && !st->ctr_pending) {
			gs->corrupt++;
			problem(s->g, "counter has a value but was never incremented");
		} else if (st->ctr_state == 0 && after_error) {
			gs->ghosts++;
		}
		st->ctr_state = 1;
		st->ctr_acked = v;
		st->ctr_pending = 0;
	} else if (v == st->ctr_acked) {
		st->ctr_pending = 0;
	} else if (v == st->ctr_acked + 1 && st->ctr_pending) {
		if (after_error) {
			gs->ghosts++;
			problem(s->g, "increment answered with an error is present");
		}
		st->ctr_acked = v;
		st->ctr_pending = 0;
	} else if (v < st->ctr_acked) {
		gs->lost++;
		problem(s->g, "counter %llu, last acknowledged %llu",
		    (unsigned long long)v, (unsigned long long)st->ctr_acked);
		st->ctr_acked = v;
		st->ctr_pending = 0;
	} else {
		gs->corrupt++;
		problem(s->g, "counter %llu, acknowledged %llu%s",
		    (unsigned long long)v, (unsigned long long)st->ctr_acked,
		    st->ctr_pending ? " (+1 in flight)" : "");
		st->ctr_acked = v;
		st->ctr_pending = 0;
	}
	gs->verifies++;
	gs->checked += st->acks_unchecked;
	st->acks_unchecked = 0;
	H.data_base = st->data_acked;
	H.ctr_base = st->ctr_acked;
	H.ndata = H.nctr = 0;
	return S_OK;
}

/* Defines both indices if not yet acknowledged. S_OK or S_BROKEN. */
static int
guest_define(struct sess *s, struct gstate *st)
{
	uint32_t rc1, rc2;

	if (st->defined)
		return S_OK;
	if (nv_define(s, NV_DATA, ATTR_DATA, &rc1) != S_OK ||
	    nv_define(s, NV_CTR, ATTR_CTR, &rc2) != S_OK)
		return S_BROKEN;
	if ((rc1 == 0 || rc1 == RC_NV_DEFINED) && (rc2 == 0 || rc2 == RC_NV_DEFINED)) {
		st->defined = 1;
		H.t_defined = now_ns();
		return S_OK;
	}
	S->g[s->g].tpm_errors++;
	return S_BROKEN;
}

/*
 * --read-back: reads an index right after an acknowledged write, in the same
 * session; it must hold what was acknowledged (a TPM that restarted from a
 * state without it, after answering success, would not). S_OK, S_BROKEN, or
 * 1 (a TPM error: reattach and check).
 */
static int
read_back(struct sess *s, struct gstate *st, uint32_t index, uint64_t want)
{
	struct gshared *gs = &S->g[s->g];
	uint64_t v = 0;
	uint32_t rc;

	if (nv_read(s, index, &rc, &v) != S_OK)
		return S_BROKEN;
	if (rc != TPM2_RC_SUCCESS) {
		gs->tpm_errors++;
		return 1;
	}
	if (v == want) {
		gs->checked += st->acks_unchecked;
		st->acks_unchecked = 0;
		return S_OK;
	}
	if (v < want)
		gs->lost++;
	else
		gs->corrupt++;
	problem(s->g, "%s read back right after its acknowledged write: %llu, want %llu",
	    index == NV_DATA ? "data index" : "counter", (unsigned long long)v,
	    (unsigned long long)want);
	if (index == NV_DATA)
		st->data_acked = v;
	else
		st->ctr_acked = v;
	return S_OK;
}

/* One write step: NV_Write then NV_Increment. S_OK, S_BROKEN, or 1 (TPM error). */
static int
guest_step(struct sess *s, struct gstate *st)
{
	struct gshared *gs = &S->g[s->g];
	uint32_t rc;

	st->data_pending = ++st->data_next;
	if (nv_write(s, st->data_pending, &rc) != S_OK)
		return S_BROKEN;
	if (rc != TPM2_RC_SUCCESS) {
		gs->tpm_errors++;
		return 1;
	}
	st->data_acked = st->data_pending;
	st->data_pending = 0;
	ack_note(H.data, &H.ndata, st->data_acked);
	gs->acked++;
	st->acks_unchecked++;
	if (O.read_back && (rc = read_back(s, st, NV_DATA, st->data_acked)) != S_OK)
		return rc;

	st->ctr_pending = 1;
	if (nv_increment(s, &rc) != S_OK)
		return S_BROKEN;
	if (rc != TPM2_RC_SUCCESS) {
		gs->tpm_errors++;
		return 1;
	}
	st->ctr_pending = 0;
	if (st->ctr_state == 1) {
		st->ctr_acked++;
		ack_note(H.ctr, &H.nctr, st->ctr_acked);
	} else if (st->ctr_state == 0) {
		st->ctr_state = 2;	/* the first value: learnt at the next read-back */
		H.t_ctr_first = now_ns();
	}
	gs->acked++;
	st->acks_unchecked++;
	if (O.read_back && st->ctr_state == 1)
		return read_back(s, st, NV_CTR, st->ctr_acked);
	return S_OK;
}

static void
guest_main(int g, struct gstate *st)
{
	struct gshared *gs = &S->g[g];
	struct sess s = { .g = g };
	uint64_t epoch, down_since = 0, cut_seen = 0;
	int rc, after_error = 0, stuck_counted = 0;
	uint32_t errcode;
	char why[256];

	randombytes_buf(s.launch, sizeof(s.launch));
	for (;;) {
		epoch = S->epoch;
		if (S->stop && gs->epoch_seen >= epoch)
			break;
		rc = sess_open(&s, &errcode, why, sizeof(why));
		if (rc != S_OK) {
			if (down_since == 0)
				down_since = now_ms();
			if (rc == S_REFUSED) {
				gs->refusals++;
				if (errcode != ERR_BUSY && errcode != ERR_UNAVAILABLE &&
				    errcode != ERR_SHUTTING_DOWN) {
					gs->failed_opens++;
					problem(g, "attach refused: %s", why);
				}
			}
			if (!stuck_counted && now_ms() - down_since > STUCK_MS &&
			    vtpmd_running_hint()) {
				gs->failed_opens++;
				stuck_counted = 1;
				problem(g, "no attach for %d s (%s)", STUCK_MS / 1000,
				    why[0] ? why : "connection fails");
			}
			sleep_ms(rc == S_REFUSED ? 20 : 5);
			continue;
		}
		down_since = 0;
		stuck_counted = 0;
		gs->attaches++;
		if (O.power && S->cut_epoch > cut_seen) {
			__sync_synchronize();	/* cut_ns was written before cut_epoch */
			cut_seen = S->cut_epoch;
			power_adjust(st, S->cut_ns);
		}
		if (guest_define(&s, st) != S_OK || guest_verify(&s, st, after_error) != S_OK) {
			sess_close(&s);
			continue;
		}
		after_error = 0;
		gs->epoch_seen = epoch;
		while (S->epoch == epoch && !S->stop) {
			rc = guest_step(&s, st);
			if (rc == S_OK)
				continue;
			if (rc == 1) {
				/* the TPM restarted from its durable state: power-cycle and look */
				after_error = 1;
				randombytes_buf(s.launch, sizeof(s.launch));
				sleep_ms(10);
			}
			break;
		}
		if (s.ch != NULL) {
			uint8_t op = CTRL_DETACH, type, body[64];
			size_t blen;

			if (chan_send(s.ch, MSG_CTRL, &op, 1) == 0 &&
			    chan_recv(s.ch, IO_TIMEOUT_MS, &type, body, sizeof(body), &blen) != 0)
				blen = 0;	/* the session ends either way */
			sess_close(&s);
		}
	}
	gs->st = *st;
	gs->exited = 1;
}

/* ---------- the driver ---------- */

/* --mode power: the write log, the copy it starts from, when vtpmd started */
static struct {
	char		wlog[4096], snap[4096];
	int		armed;		/* the running vtpmd writes the log */
	uint64_t	t_start;
	uint64_t	cuts, writes, maybe, dropped;
} P;

static void
vtpmd_start(void)
{
	int fd;

	if (O.vtpmd_argv == NULL)
		return;
	if ((vtpmd_pid = fork()) == -1)
		fatal("fork");
	if (vtpmd_pid == 0) {
		if (P.armed && (setenv("LD_PRELOAD", O.wlog_so, 1) != 0 ||
		    setenv("VTPM_WLOG", P.wlog, 1) != 0 ||
		    setenv("VTPM_WLOG_DIR", O.state_dir, 1) != 0))
			_exit(126);
		if ((fd = open(O.vtpmd_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) == -1)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(O.vtpmd_argv[0], O.vtpmd_argv);
		_exit(127);
	}
}

static void
vtpmd_kill(void)
{
	int status;

	if (vtpmd_pid <= 0)
		return;
	kill(vtpmd_pid, SIGKILL);
	while (waitpid(vtpmd_pid, &status, 0) == -1 && errno == EINTR)
		;
	vtpmd_pid = 0;
}

/* Runs argv and waits; 0 if it exited 0. */
static int
run(char *const argv[])
{
	pid_t pid;
	int status;

	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/*
 * --mode power, vtpmd down: copies the state directory as the disk holds
 * it now and empties the write log; the next vtpmd_start() records into it.
 */
static void
power_arm(void)
{
	char *rm[] = { "rm", "-rf", P.snap, NULL };
	char *cp[] = { "cp", "-a", (char *)O.state_dir, P.snap, NULL };
	int fd;

	if (run(rm) != 0 || run(cp) != 0)
		fatalx("cannot copy %s to %s", O.state_dir, P.snap);
	if ((fd = open(P.wlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1)
		fatal("%s", P.wlog);
	close(fd);
	P.armed = 1;
	P.t_start = now_ns();
}

/*
 * --mode power, vtpmd just killed: picks a moment of its life (half the
 * time in its last max-delay window, where the guests were writing) and
 * replaces the state directory by what the disk could hold had the power
 * failed then. Tells the guests the moment before they may reattach.
 */
static void
power_cut(void)
{
	char img[4200], old[4200], err[512];
	char *rm[] = { "rm", "-rf", old, NULL };
	uint64_t now = now_ns(), span = now - P.t_start, window, cut;
	struct crashimg_stats cs;

	window = (uint64_t)(O.max_delay_ms + 1) * 1000000u;
	if (window > span)
		window = span;
	cut = (uint64_t)rnd(1u << 30) << 30 | rnd(1u << 30);
	cut = rnd(2) ? now - window + cut % (window + 1) : P.t_start + cut % (span + 1);
	snprintf(img, sizeof(img), "%s.cut", O.state_dir);
	snprintf(old, sizeof(old), "%s.old", O.state_dir);
	if (run(rm) != 0)
		fatalx("cannot remove %s", old);
	rm[2] = img;
	if (run(rm) != 0)
		fatalx("cannot remove %s", img);
	if (crashimg_build(P.wlog, P.snap, img, cut, rng, &cs, err, sizeof(err)) != 0)
		fatalx("power cut image: %s", err);
	if (rename(O.state_dir, old) != 0 || rename(img, O.state_dir) != 0)
		fatal("replacing %s", O.state_dir);
	P.cuts++;
	P.writes += cs.writes;
	P.maybe += cs.maybe;
	P.dropped += cs.blocks_dropped;
	P.armed = 0;
	S->cut_ns = cut;
	__sync_synchronize();
	S->cut_epoch = S->epoch + 1;	/* the epoch the caller opens next */
}

/* ppid of pid from /proc, or -1. */
static pid_t
proc_ppid(pid_t pid, char *comm, size_t cap)
{
	char path[64], buf[512], *p, *q;
	ssize_t n;
	int fd, ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((p = strchr(buf, '(')) == NULL || (q = strrchr(buf, ')')) == NULL)
		return -1;
	if (comm != NULL)
		snprintf(comm, cap, "%.*s", (int)(q - p - 1), p + 1);
	if (sscanf(q + 2, "%*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

/* Picks a random worker of our vtpmd (its children or grandchildren named vtpmd-worker). */
static pid_t
pick_worker(void)
{
	pid_t found[256];
	int n = 0;
	struct dirent *de;
	DIR *d;
	char comm[64];

	if ((d = opendir("/proc")) == NULL)
		fatal("opendir /proc");
	while ((de = readdir(d)) != NULL && n < 256) {
		pid_t pid = (pid_t)atoi(de->d_name), pp;

		if (pid <= 0)
			continue;
		if ((pp = proc_ppid(pid, comm, sizeof(comm))) <= 0 ||
		    strcmp(comm, "vtpmd-worker") != 0)
			continue;
		if (pp == vtpmd_pid || proc_ppid(pp, NULL, 0) == vtpmd_pid)
			found[n++] = pid;
	}
	closedir(d);
	return n == 0 ? 0 : found[rnd((uint32_t)n)];
}

/* Waits until every guest has read back its state in the current epoch. */
static int
wait_guests(void)
{
	uint64_t t0 = now_ms();
	int g, all;

	for (;;) {
		int status;

		all = 1;
		for (g = 0; g < O.guests; g++)
			if (S->g[g].epoch_seen < S->epoch)
				all = 0;
		if (all)
			return 0;
		if (vtpmd_pid > 0 && waitpid(vtpmd_pid, &status, WNOHANG) == vtpmd_pid) {
			/* it gave up on its own: the store (or something else) did not open */
			vtpmd_pid = 0;
			S->g[0].failed_opens++;
			snprintf((char *)S->g[0].problem, sizeof(S->g[0].problem),
			    "vtpmd exited by itself (status 0x%x): see its log", status);
			fprintf(stderr, "vtpm-torture: vtpmd exited by itself (status 0x%x)\n",
			    status);
			return -1;
		}
		if (now_ms() - t0 > 2 * STUCK_MS)
			return -1;
		sleep_ms(2);
	}
}

static void
totals(struct gshared *t)
{
	int g;

	memset(t, 0, sizeof(*t));
	for (g = 0; g < O.guests; g++) {
		t->acked += S->g[g].acked;
		t->checked += S->g[g].checked;
		t->verifies += S->g[g].verifies;
		t->lost += S->g[g].lost;
		t->corrupt += S->g[g].corrupt;
		t->ghosts += S->g[g].ghosts;
		t->failed_opens += S->g[g].failed_opens;
		t->attaches += S->g[g].attaches;
		t->refusals += S->g[g].refusals;
		t->tpm_errors += S->g[g].tpm_errors;
	}
}

static void
write_progress(long it)
{
	struct gshared t;
	FILE *f;
	char tmp[4096];

	if (O.progress_file == NULL)
		return;
	totals(&t);
	snprintf(tmp, sizeof(tmp), "%s.tmp", O.progress_file);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fprintf(f, "iterations %ld acked %llu checked %llu errors %llu lost %llu corrupt %llu "
	    "ghosts %llu failed_opens %llu attaches %llu refusals %llu epoch %llu\n", it,
	    (unsigned long long)t.acked, (unsigned long long)t.checked,
	    (unsigned long long)t.tpm_errors, (unsigned long long)t.lost,
	    (unsigned long long)t.corrupt, (unsigned long long)t.ghosts,
	    (unsigned long long)t.failed_opens, (unsigned long long)t.attaches,
	    (unsigned long long)t.refusals, (unsigned long long)S->epoch);
	fclose(f);
	rename(tmp, O.progress_file);
}

static void
state_load(struct gstate *st)
{
	FILE *f;
	int g, defined, cs;
	unsigned long long da, ca;

	if (O.state_file == NULL || (f = fopen(O.state_file, "r")) == NULL)
		return;
	while (fscanf(f, "%d %d %llu %d %llu", &g, &defined, &da, &cs, &ca) == 5) {
		if (g < 0 || g >= MAX_GUESTS)
			continue;
		st[g].defined = defined;
		st[g].data_acked = st[g].data_next = da;
		st[g].ctr_state = cs;
		st[g].ctr_acked = ca;
	}
	fclose(f);
}

static void
state_save(void)
{
	FILE *f;
	int g;

	if (O.state_file == NULL || (f = fopen(O.state_file, "w")) == NULL)
		return;
	for (g = 0; g < O.guests; g++) {
		const struct gstate *st = &S->g[g].st;

		fprintf(f, "%d %d %llu %d %llu\n", g, st->defined,
		    (unsigned long long)st->data_acked, st->ctr_state,
		    (unsigned long long)st->ctr_acked);
	}
	fclose(f);
}

static int
stop_requested(void)
{
	struct stat sb;

	return O.stop_file != NULL && stat(O.stop_file, &sb) == 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: vtpm-torture --server ENDPOINT --mode daemon|worker|power|none [--guests G]\n"
"         [--iterations N] [--max-delay MS] [--seed S] [--state FILE]\n"
"         [--state-dir DIR --wlog-so PATH]\n"
"         [--stop-file FILE] [--progress FILE] [--vtpmd-log FILE] [--quiet]\n"
"         [--read-back]\n"
"         [-- /path/to/vtpmd ARGS...]\n"
"daemon: SIGKILL vtpmd N times (the driver starts it with the arguments after --)\n"
"worker: SIGKILL a random worker N times; none: no kills, run until --stop-file\n"
"power: as daemon, and each time replace --state-dir (vtpmd's) by a power-cut\n"
"       image built from the writes tests/crashsim/wlog.so (--wlog-so) recorded\n"
"--read-back: read every index right after each acknowledged write as well\n");
}

int
main(int argc, char **argv)
{
	enum { O_SERVER = 256, O_MODE, O_GUESTS, O_ITER, O_DELAY, O_SEED, O_STATE,
		O_STOP, O_PROGRESS, O_LOG, O_QUIET, O_READBACK, O_STATEDIR, O_WLOGSO };
	static const struct option opts[] = {
		{ "server", required_argument, NULL, O_SERVER },
		{ "mode", required_argument, NULL, O_MODE },
		{ "guests", required_argument, NULL, O_GUESTS },
		{ "iterations", required_argument, NULL, O_ITER },
		{ "max-delay", required_argument, NULL, O_DELAY },
		{ "seed", required_argument, NULL, O_SEED },
		{ "state", required_argument, NULL, O_STATE },
		{ "stop-file", required_argument, NULL, O_STOP },
		{ "progress", required_argument, NULL, O_PROGRESS },
		{ "vtpmd-log", required_argument, NULL, O_LOG },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "read-back", no_argument, NULL, O_READBACK },
		{ "state-dir", required_argument, NULL, O_STATEDIR },
		{ "wlog-so", required_argument, NULL, O_WLOGSO },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gstate init[MAX_GUESTS];
	struct gshared t;
	const char *server = NULL;
	pid_t pids[MAX_GUESTS], w;
	long it = 0, kills = 0, early = 0;
	uint64_t t0;
	int ch, g, daemon_mode, worker_mode, stuck = 0;

	log_init("vtpm-torture", LOG_LVL_WARN);
	O.guests = 4;
	O.iterations = 100;
	O.max_delay_ms = 150;
	O.seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	O.vtpmd_log = "/dev/null";
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case O_SERVER:	server = optarg; break;
		case O_MODE:	O.mode = optarg; break;
		case O_GUESTS:	O.guests = atoi(optarg); break;
		case O_ITER:	O.iterations = atol(optarg); break;
		case O_DELAY:	O.max_delay_ms = atoi(optarg); break;
		case O_SEED:	O.seed = (unsigned)strtoul(optarg, NULL, 0); break;
		case O_STATE:	O.state_file = optarg; break;
		case O_STOP:	O.stop_file = optarg; break;
		case O_PROGRESS: O.progress_file = optarg; break;
		case O_LOG:	O.vtpmd_log = optarg; break;
		case O_QUIET:	O.quiet = 1; break;
		case O_READBACK: O.read_back = 1; break;
		case O_STATEDIR: O.state_dir = optarg; break;
		case O_WLOGSO:	O.wlog_so = optarg; break;
		case 'h':	usage(stdout); return 0;
		default:	usage(stderr); return 2;
		}
	}
	if (optind < argc)
		O.vtpmd_argv = argv + optind;
	if (server == NULL || O.mode == NULL || O.guests < 1 || O.guests > MAX_GUESTS ||
	    O.iterations < 0 || O.max_delay_ms < 0 ||
	    (strcmp(O.mode, "daemon") != 0 && strcmp(O.mode, "worker") != 0 &&
	    strcmp(O.mode, "power") != 0 && strcmp(O.mode, "none") != 0) ||
	    (strcmp(O.mode, "power") == 0 && (O.state_dir == NULL || O.state_dir[0] != '/' ||
	    O.wlog_so == NULL)) ||
	    (strcmp(O.mode, "none") != 0 && O.vtpmd_argv == NULL)) {
		usage(stderr);
		return 2;
	}
	O.power = strcmp(O.mode, "power") == 0;
	daemon_mode = strcmp(O.mode, "daemon") == 0 || O.power;
	if (O.power) {
		snprintf(P.wlog, sizeof(P.wlog), "%s.wlog", O.state_dir);
		snprintf(P.snap, sizeof(P.snap), "%s.snap", O.state_dir);
	}
	worker_mode = strcmp(O.mode, "worker") == 0;
	if (sodium_init() < 0)
		fatalx("sodium_init");
	if (endpoint_parse(server, 0, &O.server) != 0)
		fatalx("--server %s: not a valid endpoint", server);
	signal(SIGPIPE, SIG_IGN);
	rng = (uint64_t)O.seed * 2654435761u + 1;
	printf("vtpm-torture: mode %s, %d guests, %ld iterations, seed %u\n", O.mode,
	    O.guests, O.iterations, O.seed);
	fflush(stdout);

	S = mmap(NULL, sizeof(*S) + sizeof(int), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (S == MAP_FAILED)
		fatal("mmap");
	vtpmd_up = (volatile int *)(S + 1);
	*vtpmd_up = 1;
	memset(init, 0, sizeof(init));
	state_load(init);
	S->epoch = 1;

	vtpmd_start();
	for (g = 0; g < O.guests; g++) {
		if ((pids[g] = fork()) == -1)
			fatal("fork");
		if (pids[g] == 0) {
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
				_exit(1);	/* no guest outlives the driver */
			guest_main(g, &init[g]);
			_exit(0);
		}
	}

	t0 = now_ms();
	/* none: faults come from outside; guests may be refused for a while */
	while (strcmp(O.mode, "none") == 0 && !stop_requested()) {
		write_progress(0);
		sleep_ms(50);
	}
	for (it = 0; strcmp(O.mode, "none") != 0 && !stop_requested() && it < O.iterations;
	    it++) {
		if (wait_guests() != 0) {
			stuck = 1;
			fprintf(stderr, "vtpm-torture: guests did not reattach within %d s\n",
			    2 * STUCK_MS / 1000);
			break;
		}
		write_progress(it);
		sleep_ms(rnd((uint32_t)O.max_delay_ms + 1));
		if (daemon_mode) {
			*vtpmd_up = 0;
			vtpmd_kill();
			kills++;
			if (P.armed)
				power_cut();
			S->epoch++;
			if (O.power)
				power_arm();
			vtpmd_start();
			*vtpmd_up = 1;
			if (!O.power && rnd(10) == 0) {
				/* sometimes kill it again while it starts up */
				sleep_ms(rnd(40));
				*vtpmd_up = 0;
				vtpmd_kill();
				kills++;
				early++;
				vtpmd_start();
				*vtpmd_up = 1;
			}
		} else if (worker_mode) {
			pid_t victim = 0;
			int tries;

			for (tries = 0; tries < 200 && (victim = pick_worker()) == 0; tries++)
				sleep_ms(5);
			if (victim == 0) {
				fprintf(stderr, "vtpm-torture: no worker to kill\n");
				stuck = 1;
				break;
			}
			kill(victim, SIGKILL);
			kills++;
			S->epoch++;
		}
		if (!O.quiet && (it + 1) % 100 == 0) {
			totals(&t);
			printf("  %ld iterations, %llu writes acknowledged, %.0f s\n", it + 1,
			    (unsigned long long)t.acked, (double)(now_ms() - t0) / 1000);
			fflush(stdout);
		}
	}
	/* stop writing, then a last read-back of everything */
	S->stop = 1;
	S->epoch++;
	if (!stuck && wait_guests() != 0)
		stuck = 1;
	for (g = 0; g < O.guests; g++) {
		if (stuck)
			kill(pids[g], SIGKILL);
		while ((w = waitpid(pids[g], NULL, 0)) == -1 && errno == EINTR)
			;
	}
	vtpmd_kill();
	write_progress(it);
	totals(&t);
	if (!stuck)
		state_save();
	for (g = 0; g < O.guests; g++)
		if (S->g[g].problem[0] != '\0')
			printf("guest %d: last problem: %s\n", g, S->g[g].problem);
	printf("iterations: %ld (%s kills: %ld, %ld of them during start-up)\n", it, O.mode,
	    kills, early);
	printf("writes acknowledged: %llu\n", (unsigned long long)t.acked);
	printf("writes checked: %llu (%llu read-backs, %llu attaches)\n",
	    (unsigned long long)t.checked, (unsigned long long)t.verifies,
	    (unsigned long long)t.attaches);
	printf("TPM errors: %llu; refused attaches (busy/unavailable, retried): %llu\n",
	    (unsigned long long)t.tpm_errors, (unsigned long long)t.refusals);
	printf("lost = %llu, corrupt = %llu, failed opens = %llu, errors later present = %llu\n",
	    (unsigned long long)t.lost, (unsigned long long)t.corrupt,
	    (unsigned long long)t.failed_opens, (unsigned long long)t.ghosts);
	if (O.power)
		printf("power cuts: %llu; file writes before the cuts %llu, of them not yet durable "
		    "%llu; 4 KiB blocks left at an older version %llu\n",
		    (unsigned long long)P.cuts, (unsigned long long)P.writes,
		    (unsigned long long)P.maybe, (unsigned long long)P.dropped);
	printf("time: %.1f s\n", (double)(now_ms() - t0) / 1000);
	if (stuck || t.lost != 0 || t.corrupt != 0 || t.failed_opens != 0 ||
	    t.checked != t.acked) {
		printf("vtpm-torture: FAILED\n");
		return 1;
	}
	printf("vtpm-torture: OK\n");
	return 0;
}
