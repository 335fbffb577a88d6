/*
 * test_tcti.c: drives libtss2-tcti-vtpm.so.0 through dlopen and
 * Tss2_Tcti_Info()->init, as tctildr does, against a fake vtpm-guest thread
 * on a temporary unix socket; then runs the real tpm2_getrandom against it.
 * Usage: test_tcti [path/to/libtss2-tcti-vtpm.so.0]
 * (default: ../libtss2-tcti-vtpm.so.0 relative to this binary).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tss2/tss2_tcti.h>

#include "tcti_vtpm.h"

extern char **environ;

static int n_pass, n_fail;

#define CHECK(cond) check((cond), #cond, __func__, __LINE__)
#define CHECK_RC(got, want) check_rc((got), (want), #got, __func__, __LINE__)

static bool
check(bool ok, const char *what, const char *fn, int line)
{
	if (ok) {
		n_pass++;
	} else {
		n_fail++;
		fprintf(stderr, "FAIL %s:%d: %s\n", fn, line, what);
	}
	return ok;
}

static bool
check_rc(TSS2_RC got, TSS2_RC want, const char *what, const char *fn, int line)
{
	if (got == want) {
		n_pass++;
		return true;
	}
	n_fail++;
	fprintf(stderr, "FAIL %s:%d: %s = 0x%x, want 0x%x\n", fn, line, what,
	    (unsigned)got, (unsigned)want);
	return false;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* ==== the fake vtpm-guest ================================================ */

enum fake_mode {
	FAKE_NORMAL,		/* answer at once */
	FAKE_HOLD,		/* answer after fake_release() */
	FAKE_SPLIT,		/* header + 3 body bytes, fake_release(), rest */
	FAKE_DRIP,		/* one byte per write, 1 ms apart */
	FAKE_OVERSIZE,		/* status 0 with len fake.oversize_len */
	FAKE_STATUS,		/* status fake.status, empty body */
	FAKE_STATUS_BODY,	/* status fake.status with a 4-byte body */
	FAKE_BADSIZE,		/* TPM header size field one too large */
	FAKE_SHORT_TPM,		/* status 0, 4-byte body */
	FAKE_CLOSE,		/* hang up instead of answering */
	FAKE_EXTRA,		/* answer, then 4 unsolicited bytes */
	FAKE_BIG,		/* an 8192-byte TPM response */
	FAKE_GARBAGE,		/* a random frame, recorded in fake.sent */
};

/* From tss2_tpm2_types.h, which tss2_tcti.h includes. */
#define TPM_CC_GET_CAPABILITY	TPM2_CC_GetCapability
#define TPM_CC_GET_RANDOM	TPM2_CC_GetRandom
#define TPM_CAP_TPM_PROPERTIES	TPM2_CAP_TPM_PROPERTIES
#define TPM_PT_MAX_DIGEST	TPM2_PT_MAX_DIGEST
#define TPM_RC_FAILURE		TPM2_RC_FAILURE

static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	int		 listen_fd;
	/* behaviour, set by the tests */
	enum fake_mode	 mode;
	uint32_t	 status;
	uint32_t	 oversize_len;
	uint32_t	 hello_status;
	uint32_t	 hello_version;
	int64_t		 hello_grant;	/* -1: grant what was asked */
	int		 released;
	uint8_t		 random[64];
	uint64_t	 prng;		/* xorshift64 state for FAKE_GARBAGE */
	uint8_t		 sent[8 + VTPM_LOCAL_MAX_BODY];
	size_t		 sent_len;
	/* observations */
	int		 conns_closed;
	int		 n_hello;
	uint32_t	 hello_req_version;
	uint32_t	 hello_req_flags;
	int		 n_cmds;
	uint8_t		 locality;
	size_t		 cmd_len;
	uint8_t		 cmd[4096];
	uint32_t	 codes[64];
	int		 n_codes;
} fake = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.hello_version = VTPM_LOCAL_VERSION,
	.hello_grant = -1,
};

static void
fake_reset(enum fake_mode mode)
{
	pthread_mutex_lock(&fake.mu);
	fake.mode = mode;
	fake.status = 0;
	fake.oversize_len = 0;
	fake.hello_status = 0;
	fake.hello_version = VTPM_LOCAL_VERSION;
	fake.hello_grant = -1;
	fake.released = 0;
	fake.n_cmds = 0;
	fake.n_codes = 0;
	fake.cmd_len = 0;
	fake.locality = 0xff;
	fake.n_hello = 0;
	pthread_mutex_unlock(&fake.mu);
}

/* Change only the answering mode. */
static void
fake_set_mode(enum fake_mode mode)
{
	pthread_mutex_lock(&fake.mu);
	fake.mode = mode;
	pthread_mutex_unlock(&fake.mu);
}

static void
fake_release(void)
{
	pthread_mutex_lock(&fake.mu);
	fake.released = 1;
	pthread_cond_broadcast(&fake.cv);
	pthread_mutex_unlock(&fake.mu);
}

/* Wait (bounded) for fake_release(); consume it. */
static void
fake_wait_release(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&fake.mu);
	while (!fake.released &&
	    pthread_cond_timedwait(&fake.cv, &fake.mu, &ts) == 0)
		;
	fake.released = 0;
	pthread_mutex_unlock(&fake.mu);
}

static int
fake_conns_closed(void)
{
	int n;

	pthread_mutex_lock(&fake.mu);
	n = fake.conns_closed;
	pthread_mutex_unlock(&fake.mu);
	return n;
}

/* True once the server has seen more than `before` connections end. */
static bool
fake_wait_closed(int before)
{
	int64_t end = now_ms() + 3000;

	while (now_ms() < end) {
		if (fake_conns_closed() > before)
			return true;
		usleep(2000);
	}
	return false;
}

static bool
fake_read_all(int fd, uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool
fake_write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool
fake_send_frame(int fd, uint32_t status, const uint8_t *body, uint32_t len)
{
	uint8_t hdr[8];

	put_u32(hdr, status);
	put_u32(hdr + 4, len);
	return fake_write_all(fd, hdr, 8) && fake_write_all(fd, body, len);
}

/* A TPM response for cmd: GetRandom, GetCapability(properties), else error. */
static size_t
fake_tpm_answer(const uint8_t *cmd, size_t len, uint8_t *rsp)
{
	uint32_t code = get_u32(cmd + 6);
	size_t n;

	if (code == TPM_CC_GET_RANDOM && len >= 12) {
		n = (size_t)cmd[10] << 8 | cmd[11];
		if (n > sizeof(fake.random))
			n = sizeof(fake.random);
		put_u16(rsp, 0x8001);
		put_u32(rsp + 2, (uint32_t)(12 + n));
		put_u32(rsp + 6, 0);
		put_u16(rsp + 10, (uint16_t)n);
		pthread_mutex_lock(&fake.mu);
		memcpy(rsp + 12, fake.random, n);
		pthread_mutex_unlock(&fake.mu);
		return 12 + n;
	}
	if (code == TPM_CC_GET_CAPABILITY && len >= 22 &&
	    get_u32(cmd + 10) == TPM_CAP_TPM_PROPERTIES) {
		/* moreData, TPMS_CAPABILITY_DATA{cap, TPML_TAGGED_TPM_PROPERTY} */
		put_u16(rsp, 0x8001);
		put_u32(rsp + 2, 10 + 1 + 4 + 4 + 8);
		put_u32(rsp + 6, 0);
		rsp[10] = 0;
		put_u32(rsp + 11, TPM_CAP_TPM_PROPERTIES);
		put_u32(rsp + 15, 1);
		put_u32(rsp + 19, TPM_PT_MAX_DIGEST);
		put_u32(rsp + 23, 64);
		return 27;
	}
	put_u16(rsp, 0x8001);
	put_u32(rsp + 2, 10);
	put_u32(rsp + 6, TPM_RC_FAILURE);
	return 10;
}

static uint32_t
fake_rand(void)
{
	uint64_t x = fake.prng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	fake.prng = x;
	return (uint32_t)(x >> 16);
}

/*
 * A random response frame into fake.sent (caller holds fake.mu): status
 * 0, 1, 2, 3 or anything; len 0, small, TPM-sized, the maximum, just over,
 * or anything; random body, usually with a consistent TPM size field. For
 * len > VTPM_LOCAL_MAX_BODY only the header and 64 bytes are sent.
 */
static void
fake_garbage_frame(void)
{
	static const uint32_t statuses[] = { 0, 0, 0, 1, 2, 3 };
	uint32_t status, len, r = fake_rand();
	size_t i, body;

	status = r % 8 < 6 ? statuses[r % 8] : fake_rand();
	switch (fake_rand() % 7) {
	case 0: len = 0; break;
	case 1: len = fake_rand() % 10; break;
	case 2: len = 10 + fake_rand() % 64; break;
	case 3: len = 10 + fake_rand() % (VTPM_LOCAL_MAX_BODY - 9); break;
	case 4: len = VTPM_LOCAL_MAX_BODY; break;
	case 5: len = VTPM_LOCAL_MAX_BODY + 1 + fake_rand() % 100000; break;
	default: len = fake_rand() | 0x80000000U; break;
	}
	body = len <= VTPM_LOCAL_MAX_BODY ? len : 64;
	put_u32(fake.sent, status);
	put_u32(fake.sent + 4, len);
	for (i = 0; i < body; i++)
		fake.sent[8 + i] = (uint8_t)fake_rand();
	if (body >= 6 && fake_rand() % 3 != 0)
		put_u32(fake.sent + 8 + 2, len);
	fake.sent_len = 8 + body;
}

/* Serve one connection until EOF or FAKE_CLOSE. */
static void
fake_serve(int fd)
{
	static uint8_t body[VTPM_LOCAL_MAX_BODY], rsp[VTPM_LOCAL_MAX_BODY + 16];
	uint8_t hdr[8], out[8];
	uint32_t op, len, flags, grant;
	enum fake_mode mode;
	uint32_t status, oversize;
	size_t rlen, i;

	for (;;) {
		if (!fake_read_all(fd, hdr, 8))
			return;
		op = get_u32(hdr);
		len = get_u32(hdr + 4);
		if (len > VTPM_LOCAL_MAX_BODY) {
			(void)fake_send_frame(fd, VTPM_LOCAL_STATUS_BAD_REQUEST,
			    NULL, 0);
			return;
		}
		if (!fake_read_all(fd, body, len))
			return;

		if (op == VTPM_LOCAL_OP_HELLO) {
			if (len != 8) {
				(void)fake_send_frame(fd, 2, NULL, 0);
				continue;
			}
			flags = get_u32(body + 4);
			pthread_mutex_lock(&fake.mu);
			fake.n_hello++;
			fake.hello_req_version = get_u32(body);
			fake.hello_req_flags = flags;
			status = fake.hello_status;
			put_u32(out, fake.hello_version);
			grant = fake.hello_grant < 0 ? flags :
			    (uint32_t)fake.hello_grant;
			pthread_mutex_unlock(&fake.mu);
			put_u32(out + 4, grant);
			if (status != 0)
				(void)fake_send_frame(fd, status, NULL, 0);
			else
				(void)fake_send_frame(fd, 0, out, 8);
			continue;
		}
		if (op == VTPM_LOCAL_OP_CANCEL) {
			(void)fake_send_frame(fd, 0, NULL, 0);
			continue;
		}
		if (op != VTPM_LOCAL_OP_TPM_COMMAND || len < 11) {
			(void)fake_send_frame(fd, 2, NULL, 0);
			continue;
		}

		pthread_mutex_lock(&fake.mu);
		fake.n_cmds++;
		fake.locality = body[0];
		fake.cmd_len = len - 1;
		memcpy(fake.cmd, body + 1, len - 1);
		if (fake.n_codes < 64)
			fake.codes[fake.n_codes++] = get_u32(body + 1 + 6);
		mode = fake.mode;
		status = fake.status;
		oversize = fake.oversize_len;
		pthread_mutex_unlock(&fake.mu);

		rlen = fake_tpm_answer(body + 1, len - 1, rsp + 8);
		put_u32(rsp, 0);
		put_u32(rsp + 4, (uint32_t)rlen);

		switch (mode) {
		case FAKE_NORMAL:
			(void)fake_write_all(fd, rsp, 8 + rlen);
			break;
		case FAKE_HOLD:
			fake_wait_release();
			(void)fake_write_all(fd, rsp, 8 + rlen);
			break;
		case FAKE_SPLIT:
			(void)fake_write_all(fd, rsp, 8 + 3);
			fake_wait_release();
			(void)fake_write_all(fd, rsp + 11, rlen - 3);
			break;
		case FAKE_DRIP:
			for (i = 0; i < 8 + rlen; i++) {
				(void)fake_write_all(fd, rsp + i, 1);
				usleep(1000);
			}
			break;
		case FAKE_OVERSIZE:
			/* More than a frame can hold follows, so a missing bound
			 * shows up as an overflow, not only as a hang. */
			put_u32(rsp + 4, oversize);
			memset(rsp + 8, 0x41, sizeof(rsp) - 8);
			(void)fake_write_all(fd, rsp, sizeof(rsp));
			(void)fake_write_all(fd, rsp + 8, sizeof(rsp) - 8);
			break;
		case FAKE_STATUS:
			(void)fake_send_frame(fd, status, NULL, 0);
			break;
		case FAKE_STATUS_BODY:
			(void)fake_send_frame(fd, status, (const uint8_t *)"oops", 4);
			break;
		case FAKE_BADSIZE:
			put_u32(rsp + 8 + 2, (uint32_t)rlen + 1);
			(void)fake_write_all(fd, rsp, 8 + rlen);
			break;
		case FAKE_SHORT_TPM:
			put_u32(rsp + 4, 4);
			(void)fake_write_all(fd, rsp, 8 + 4);
			break;
		case FAKE_CLOSE:
			return;
		case FAKE_EXTRA:
			memcpy(rsp + 8 + rlen, "junk", 4);
			(void)fake_write_all(fd, rsp, 8 + rlen + 4);
			break;
		case FAKE_GARBAGE:
			pthread_mutex_lock(&fake.mu);
			fake_garbage_frame();
			(void)fake_write_all(fd, fake.sent, fake.sent_len);
			pthread_mutex_unlock(&fake.mu);
			break;
		case FAKE_BIG:
			put_u32(rsp + 4, VTPM_LOCAL_MAX_BODY);
			put_u16(rsp + 8, 0x8001);
			put_u32(rsp + 10, VTPM_LOCAL_MAX_BODY);
			put_u32(rsp + 14, 0);
			for (i = 10; i < VTPM_LOCAL_MAX_BODY; i++)
				rsp[8 + i] = (uint8_t)(i * 7);
			(void)fake_write_all(fd, rsp, 8 + VTPM_LOCAL_MAX_BODY);
			break;
		}
	}
}

static void *
fake_main(void *arg)
{
	int fd;

	(void)arg;
	for (;;) {
		fd = accept(fake.listen_fd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		fake_serve(fd);
		close(fd);
		pthread_mutex_lock(&fake.mu);
		fake.conns_closed++;
		pthread_mutex_unlock(&fake.mu);
	}
}

static bool
fake_start(const char *path)
{
	struct sockaddr_un sa;
	pthread_t t;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fake.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fake.listen_fd < 0 ||
	    bind(fake.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fake.listen_fd, 8) < 0)
		return false;
	if (getrandom(fake.random, sizeof(fake.random), 0) !=
	    (ssize_t)sizeof(fake.random))
		return false;
	if (pthread_create(&t, NULL, fake_main, NULL) != 0)
		return false;
	pthread_detach(t);
	return true;
}

/* ==== driving the plugin the way tctildr does =========================== */

static const TSS2_TCTI_INFO *info;
static void *so_handle;
static char sock_path[PATH_MAX];
static char so_path[PATH_MAX];

static uint8_t getrandom8[12] = {
	0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x7b, 0x00, 0x08
};

static TSS2_TCTI_CONTEXT *
tcti_open(const char *conf, TSS2_RC *rcp)
{
	TSS2_TCTI_CONTEXT *ctx;
	size_t size = 0;
	TSS2_RC rc;

	rc = info->init(NULL, &size, conf);
	if (rc != TSS2_RC_SUCCESS) {
		*rcp = rc;
		return NULL;
	}
	if ((ctx = calloc(1, size)) == NULL) {
		*rcp = TSS2_TCTI_RC_MEMORY;
		return NULL;
	}
	rc = info->init(ctx, &size, conf);
	*rcp = rc;
	if (rc != TSS2_RC_SUCCESS) {
		free(ctx);
		return NULL;
	}
	return ctx;
}

static void
tcti_close(TSS2_TCTI_CONTEXT *ctx)
{
	if (ctx == NULL)
		return;
	Tss2_Tcti_Finalize(ctx);
	free(ctx);
}

static TSS2_TCTI_CONTEXT *
open_default(void)
{
	char conf[PATH_MAX + 8];
	TSS2_TCTI_CONTEXT *ctx;
	TSS2_RC rc;

	snprintf(conf, sizeof(conf), "path=%s", sock_path);
	ctx = tcti_open(conf, &rc);
	CHECK_RC(rc, TSS2_RC_SUCCESS);
	return ctx;
}

/* The GetRandom(8) answer the fake gives. */
static size_t
expected_getrandom8(uint8_t *out)
{
	put_u16(out, 0x8001);
	put_u32(out + 2, 20);
	put_u32(out + 6, 0);
	put_u16(out + 10, 8);
	memcpy(out + 12, fake.random, 8);
	return 20;
}

/* Send GetRandom(8), receive it blocking, check the bytes. */
static bool
roundtrip(TSS2_TCTI_CONTEXT *ctx)
{
	uint8_t buf[4096], want[32];
	size_t size = sizeof(buf), wlen = expected_getrandom8(want);

	if (!CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_RC_SUCCESS))
		return false;
	if (!CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf,
	    TSS2_TCTI_TIMEOUT_BLOCK), TSS2_RC_SUCCESS))
		return false;
	return CHECK(size == wlen && memcmp(buf, want, wlen) == 0);
}

/* ==== tests =============================================================== */

static void
test_info_and_exports(void)
{
	char cmd[PATH_MAX + 64], line[256];
	FILE *p;
	int n_syms = 0, n_bad = 0;

	CHECK(info != NULL);
	CHECK(info->version == 2);
	CHECK(strcmp(info->name, "tcti-vtpm") == 0);
	CHECK(info->description != NULL && info->config_help != NULL);
	CHECK(info->init == (TSS2_TCTI_INIT_FUNC)dlsym(so_handle,
	    "Tss2_Tcti_Vtpm_Init"));
	CHECK(dlsym(so_handle, "tcti_vtpm_transmit") == NULL);
	CHECK(dlsym(so_handle, "tcti_vtpm_parse_config") == NULL);

	/* Exactly two defined dynamic symbols. */
	snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s' 2>/dev/null",
	    so_path);
	if ((p = popen(cmd, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), p) != NULL) {
		n_syms++;
		if (strstr(line, " Tss2_Tcti_Info\n") == NULL &&
		    strstr(line, " Tss2_Tcti_Vtpm_Init\n") == NULL) {
			n_bad++;
			fprintf(stderr, "unexpected export: %s", line);
		}
	}
	if (pclose(p) == 0) {
		CHECK(n_syms == 2);
		CHECK(n_bad == 0);
	} else {
		printf("SKIP export list: nm not usable\n");
	}
}

static void
test_init_protocol(void)
{
	TSS2_TCTI_CONTEXT *ctx;
	size_t size = 0, small;

	CHECK_RC(info->init(NULL, &size, NULL), TSS2_RC_SUCCESS);
	CHECK(size >= sizeof(TSS2_TCTI_CONTEXT_COMMON_V2));
	CHECK_RC(info->init(NULL, NULL, NULL), TSS2_TCTI_RC_BAD_VALUE);

	ctx = calloc(1, size);
	small = sizeof(TSS2_TCTI_CONTEXT_COMMON_V2);
	CHECK_RC(info->init(ctx, &small, sock_path),
	    TSS2_TCTI_RC_INSUFFICIENT_BUFFER);
	free(ctx);

	ctx = open_default();
	if (ctx == NULL)
		return;
	CHECK(TSS2_TCTI_VERSION(ctx) == 2);
	CHECK(TSS2_TCTI_MAKE_STICKY(ctx) == NULL);
	CHECK_RC(Tss2_Tcti_MakeSticky(ctx, NULL, 0),
	    TSS2_TCTI_RC_NOT_IMPLEMENTED);
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.n_hello == 1);
	CHECK(fake.hello_req_version == 1 && fake.hello_req_flags == 0);
	pthread_mutex_unlock(&fake.mu);
	tcti_close(ctx);
}

static void
test_config(void)
{
	static const char *bad[] = {
		"path=/x,foo=1", "foo=1", "raw=2", "raw=", "raw=yes",
		"timeout=abc", "timeout=-1", "timeout=86400001",
		"timeout=99999999999", "path=/a,path=/b", "raw=1,raw=1",
		"path=/a,", ",path=/a", "path=", "=x", "path=/a,,raw=1",
	};
	char conf[PATH_MAX + 64], longp[300];
	TSS2_TCTI_CONTEXT *ctx;
	size_t i;
	TSS2_RC rc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ctx = tcti_open(bad[i], &rc);
		if (!CHECK_RC(rc, TSS2_TCTI_RC_BAD_VALUE))
			fprintf(stderr, "  config \"%s\"\n", bad[i]);
		tcti_close(ctx);
	}
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	ctx = tcti_open(longp, &rc);
	CHECK_RC(rc, TSS2_TCTI_RC_BAD_VALUE);
	tcti_close(ctx);

	ctx = tcti_open("path=/nonexistent/vtpm.sock", &rc);
	CHECK_RC(rc, TSS2_TCTI_RC_NO_CONNECTION);
	tcti_close(ctx);

	/* Bare path. */
	fake_reset(FAKE_NORMAL);
	ctx = tcti_open(sock_path, &rc);
	CHECK_RC(rc, TSS2_RC_SUCCESS);
	if (ctx != NULL)
		roundtrip(ctx);
	tcti_close(ctx);

	/* All keys; raw=1 reaches the server as HELLO flag bit 0. */
	fake_reset(FAKE_NORMAL);
	snprintf(conf, sizeof(conf), "timeout=5000,raw=1,path=%s", sock_path);
	ctx = tcti_open(conf, &rc);
	CHECK_RC(rc, TSS2_RC_SUCCESS);
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.hello_req_flags == VTPM_LOCAL_HELLO_RAW);
	pthread_mutex_unlock(&fake.mu);
	if (ctx != NULL)
		roundtrip(ctx);
	tcti_close(ctx);

	/* raw=0 explicitly. */
	fake_reset(FAKE_NORMAL);
	snprintf(conf, sizeof(conf), "path=%s,raw=0", sock_path);
	ctx = tcti_open(conf, &rc);
	CHECK_RC(rc, TSS2_RC_SUCCESS);
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.hello_req_flags == 0);
	pthread_mutex_unlock(&fake.mu);
	tcti_close(ctx);

	/* Empty config: $VTPM_SOCKET, also when only other keys are given. */
	setenv("VTPM_SOCKET", sock_path, 1);
	fake_reset(FAKE_NORMAL);
	ctx = tcti_open(NULL, &rc);
	CHECK_RC(rc, TSS2_RC_SUCCESS);
	if (ctx != NULL)
		roundtrip(ctx);
	tcti_close(ctx);
	ctx = tcti_open("", &rc);
	CHECK_RC(rc, TSS2_RC_SUCCESS);
	tcti_close(ctx);
	fake_reset(FAKE_NORMAL);
	ctx = tcti_open("raw=1", &rc);
	CHECK_RC(rc, TSS2_RC_SUCCESS);
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.n_hello == 1 && fake.hello_req_flags == 1);
	pthread_mutex_unlock(&fake.mu);
	tcti_close(ctx);
	/* An explicit path wins over the environment. */
	setenv("VTPM_SOCKET", "/nonexistent/vtpm.sock", 1);
	ctx = tcti_open(sock_path, &rc);
	CHECK_RC(rc, TSS2_RC_SUCCESS);
	tcti_close(ctx);
	ctx = tcti_open(NULL, &rc);
	CHECK_RC(rc, TSS2_TCTI_RC_NO_CONNECTION);
	tcti_close(ctx);
	unsetenv("VTPM_SOCKET");
}

static void
test_roundtrip_and_buffers(void)
{
	TSS2_TCTI_CONTEXT *ctx;
	uint8_t buf[4096], want[32];
	size_t size, wlen = expected_getrandom8(want);

	fake_reset(FAKE_NORMAL);
	if ((ctx = open_default()) == NULL)
		return;
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_RC_SUCCESS);

	/* Size query, twice: same answer, nothing consumed. */
	size = 0;
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, NULL, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_RC_SUCCESS);
	CHECK(size == wlen);
	size = 0;
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, NULL, TSS2_TCTI_TIMEOUT_NONE),
	    TSS2_RC_SUCCESS);
	CHECK(size == wlen);

	/* Too small: INSUFFICIENT_BUFFER, the needed size, response kept. */
	size = 5;
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_TCTI_RC_INSUFFICIENT_BUFFER);
	CHECK(size == wlen);
	size = wlen - 1;
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_TCTI_RC_INSUFFICIENT_BUFFER);

	/* Exact size is enough. */
	size = wlen;
	memset(buf, 0, sizeof(buf));
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_RC_SUCCESS);
	CHECK(size == wlen && memcmp(buf, want, wlen) == 0);

	/* What the server saw: op 1, locality 0, the command verbatim. */
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.n_cmds == 1);
	CHECK(fake.locality == 0);
	CHECK(fake.cmd_len == sizeof(getrandom8) &&
	    memcmp(fake.cmd, getrandom8, sizeof(getrandom8)) == 0);
	pthread_mutex_unlock(&fake.mu);

	/* Several in a row on the same connection. */
	CHECK(roundtrip(ctx));
	CHECK(roundtrip(ctx));
	tcti_close(ctx);

	/* The largest response the protocol allows. */
	fake_reset(FAKE_BIG);
	if ((ctx = open_default()) == NULL)
		return;
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_RC_SUCCESS);
	size = 0;
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, NULL, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_RC_SUCCESS);
	CHECK(size == VTPM_LOCAL_MAX_BODY);
	{
		static uint8_t big[VTPM_LOCAL_MAX_BODY];
		size_t i;
		bool same = true;

		size = sizeof(big);
		CHECK_RC(Tss2_Tcti_Receive(ctx, &size, big,
		    TSS2_TCTI_TIMEOUT_BLOCK), TSS2_RC_SUCCESS);
		for (i = 10; i < sizeof(big); i++)
			same = same && big[i] == (uint8_t)(i * 7);
		CHECK(size == sizeof(big) && same);
	}
	tcti_close(ctx);

	/* Drip-fed, one byte per write: a blocking receive assembles it. */
	fake_reset(FAKE_DRIP);
	if ((ctx = open_default()) == NULL)
		return;
	CHECK(roundtrip(ctx));
	tcti_close(ctx);
}

static void
test_sequence(void)
{
	TSS2_TCTI_CONTEXT *ctx;
	uint8_t buf[4096];
	size_t size = sizeof(buf);

	fake_reset(FAKE_NORMAL);
	if ((ctx = open_default()) == NULL)
		return;
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_TCTI_RC_BAD_SEQUENCE);
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_RC_SUCCESS);
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_TCTI_RC_BAD_SEQUENCE);
	CHECK_RC(Tss2_Tcti_SetLocality(ctx, 1), TSS2_TCTI_RC_BAD_SEQUENCE);
	size = sizeof(buf);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_RC_SUCCESS);
	size = sizeof(buf);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_TCTI_RC_BAD_SEQUENCE);
	CHECK_RC(Tss2_Tcti_Receive(ctx, NULL, buf, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_TCTI_RC_BAD_REFERENCE);
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.n_cmds == 1);	/* the refused transmit sent nothing */
	pthread_mutex_unlock(&fake.mu);
	CHECK(roundtrip(ctx));
	tcti_close(ctx);
}

static void
test_transmit_validation(void)
{
	TSS2_TCTI_CONTEXT *ctx;
	static uint8_t cmd[VTPM_LOCAL_MAX_COMMAND + 1];

	fake_reset(FAKE_NORMAL);
	if ((ctx = open_default()) == NULL)
		return;
	memcpy(cmd, getrandom8, sizeof(getrandom8));
	put_u32(cmd + 2, 13);		/* header says 13, we pass 12 */
	CHECK_RC(Tss2_Tcti_Transmit(ctx, 12, cmd), TSS2_TCTI_RC_BAD_VALUE);
	put_u32(cmd + 2, 11);
	CHECK_RC(Tss2_Tcti_Transmit(ctx, 12, cmd), TSS2_TCTI_RC_BAD_VALUE);
	put_u32(cmd + 2, 9);
	CHECK_RC(Tss2_Tcti_Transmit(ctx, 9, cmd), TSS2_TCTI_RC_BAD_VALUE);
	CHECK_RC(Tss2_Tcti_Transmit(ctx, 0, cmd), TSS2_TCTI_RC_BAD_VALUE);
	put_u32(cmd + 2, VTPM_LOCAL_MAX_COMMAND + 1);
	CHECK_RC(Tss2_Tcti_Transmit(ctx, VTPM_LOCAL_MAX_COMMAND + 1, cmd),
	    TSS2_TCTI_RC_BAD_VALUE);
	CHECK_RC(Tss2_Tcti_Transmit(ctx, 12, NULL), TSS2_TCTI_RC_BAD_REFERENCE);
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.n_cmds == 0);
	pthread_mutex_unlock(&fake.mu);

	/* The largest legal command goes through (the fake answers an error). */
	memset(cmd, 0, sizeof(cmd));
	put_u16(cmd, 0x8001);
	put_u32(cmd + 2, VTPM_LOCAL_MAX_COMMAND);
	put_u32(cmd + 6, 0x00000144);
	CHECK_RC(Tss2_Tcti_Transmit(ctx, VTPM_LOCAL_MAX_COMMAND, cmd),
	    TSS2_RC_SUCCESS);
	{
		uint8_t buf[64];
		size_t size = sizeof(buf);

		CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf,
		    TSS2_TCTI_TIMEOUT_BLOCK), TSS2_RC_SUCCESS);
		CHECK(size == 10 && get_u32(buf + 6) == TPM_RC_FAILURE);
	}
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.cmd_len == VTPM_LOCAL_MAX_COMMAND);
	pthread_mutex_unlock(&fake.mu);
	CHECK(roundtrip(ctx));
	tcti_close(ctx);
}

static void
test_locality(void)
{
	TSS2_TCTI_CONTEXT *ctx;

	fake_reset(FAKE_NORMAL);
	if ((ctx = open_default()) == NULL)
		return;
	CHECK_RC(Tss2_Tcti_SetLocality(ctx, 3), TSS2_RC_SUCCESS);
	CHECK(roundtrip(ctx));
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.locality == 3);
	pthread_mutex_unlock(&fake.mu);
	CHECK_RC(Tss2_Tcti_SetLocality(ctx, 5), TSS2_TCTI_RC_BAD_VALUE);
	CHECK_RC(Tss2_Tcti_SetLocality(ctx, 255), TSS2_TCTI_RC_BAD_VALUE);
	CHECK(roundtrip(ctx));
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.locality == 3);	/* refused change left it alone */
	pthread_mutex_unlock(&fake.mu);
	CHECK_RC(Tss2_Tcti_SetLocality(ctx, 4), TSS2_RC_SUCCESS);
	CHECK(roundtrip(ctx));
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.locality == 4);
	pthread_mutex_unlock(&fake.mu);
	CHECK_RC(Tss2_Tcti_SetLocality(ctx, 0), TSS2_RC_SUCCESS);
	CHECK(roundtrip(ctx));
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.locality == 0);
	pthread_mutex_unlock(&fake.mu);
	tcti_close(ctx);
}

static void
test_try_again_and_poll(void)
{
	TSS2_TCTI_CONTEXT *ctx;
	TSS2_TCTI_POLL_HANDLE h[2];
	uint8_t buf[4096], want[32];
	size_t size, n, wlen = expected_getrandom8(want);
	int64_t t0;

	fake_reset(FAKE_HOLD);
	if ((ctx = open_default()) == NULL)
		return;

	n = 0;
	CHECK_RC(Tss2_Tcti_GetPollHandles(ctx, NULL, &n), TSS2_RC_SUCCESS);
	CHECK(n == 1);
	n = 0;
	CHECK_RC(Tss2_Tcti_GetPollHandles(ctx, h, &n),
	    TSS2_TCTI_RC_INSUFFICIENT_BUFFER);
	CHECK_RC(Tss2_Tcti_GetPollHandles(ctx, h, NULL),
	    TSS2_TCTI_RC_BAD_REFERENCE);
	n = 2;
	CHECK_RC(Tss2_Tcti_GetPollHandles(ctx, h, &n), TSS2_RC_SUCCESS);
	CHECK(n == 1 && h[0].fd >= 0 && h[0].events == POLLIN);
	CHECK(fcntl(h[0].fd, F_GETFD) >= 0);

	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_RC_SUCCESS);
	size = 0;
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, NULL, TSS2_TCTI_TIMEOUT_NONE),
	    TSS2_TCTI_RC_TRY_AGAIN);
	size = sizeof(buf);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_NONE),
	    TSS2_TCTI_RC_TRY_AGAIN);
	t0 = now_ms();
	size = sizeof(buf);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, 60), TSS2_TCTI_RC_TRY_AGAIN);
	CHECK(now_ms() - t0 >= 50);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, -2), TSS2_TCTI_RC_BAD_VALUE);
	/* Still waiting for the answer: no new command, no locality change. */
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_TCTI_RC_BAD_SEQUENCE);
	CHECK_RC(Tss2_Tcti_Cancel(ctx), TSS2_TCTI_RC_NOT_IMPLEMENTED);
	h[0].revents = 0;
	CHECK(poll(h, 1, 0) == 0);

	/* The answer arrives: the poll handle fires, a non-blocking receive completes. */
	fake_release();
	h[0].revents = 0;
	CHECK(poll(h, 1, 5000) == 1 && (h[0].revents & POLLIN));
	usleep(20000);			/* let the whole frame land */
	size = sizeof(buf);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_NONE),
	    TSS2_RC_SUCCESS);
	CHECK(size == wlen && memcmp(buf, want, wlen) == 0);
	fake_set_mode(FAKE_NORMAL);
	CHECK(roundtrip(ctx));
	tcti_close(ctx);

	/* TRY_AGAIN, then a blocking receive waits for the late answer. */
	fake_reset(FAKE_HOLD);
	if ((ctx = open_default()) == NULL)
		return;
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_RC_SUCCESS);
	size = sizeof(buf);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, 10), TSS2_TCTI_RC_TRY_AGAIN);
	fake_release();
	size = sizeof(buf);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_RC_SUCCESS);
	CHECK(size == wlen && memcmp(buf, want, wlen) == 0);
	tcti_close(ctx);
}

static void
test_partial(void)
{
	TSS2_TCTI_CONTEXT *ctx;
	uint8_t buf[4096], want[32];
	size_t size, wlen = expected_getrandom8(want);

	/* Header and 3 body bytes arrive, then nothing: TRY_AGAIN keeps them. */
	fake_reset(FAKE_SPLIT);
	if ((ctx = open_default()) == NULL)
		return;
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_RC_SUCCESS);
	size = 0;
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, NULL, 100),
	    TSS2_TCTI_RC_TRY_AGAIN);
	size = sizeof(buf);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, 0), TSS2_TCTI_RC_TRY_AGAIN);
	fake_release();
	size = 0;
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, NULL, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_RC_SUCCESS);
	CHECK(size == wlen);
	size = sizeof(buf);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_RC_SUCCESS);
	CHECK(size == wlen && memcmp(buf, want, wlen) == 0);
	fake_set_mode(FAKE_NORMAL);
	CHECK(roundtrip(ctx));
	tcti_close(ctx);
}

/* One bad answer in `mode`; expect `want`, and whether the link survives. */
static void
bad_answer(enum fake_mode mode, uint32_t status, uint32_t oversize,
    TSS2_RC want, bool survives)
{
	TSS2_TCTI_CONTEXT *ctx;
	uint8_t buf[4096];
	size_t size;

	fake_reset(mode);
	pthread_mutex_lock(&fake.mu);
	fake.status = status;
	fake.oversize_len = oversize;
	pthread_mutex_unlock(&fake.mu);
	if ((ctx = open_default()) == NULL)
		return;
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_RC_SUCCESS);
	size = sizeof(buf);
	if (!CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf,
	    TSS2_TCTI_TIMEOUT_BLOCK), want))
		fprintf(stderr, "  mode %d status %u len %u\n", (int)mode,
		    (unsigned)status, (unsigned)oversize);
	/* The exchange is over either way. */
	size = sizeof(buf);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_TCTI_RC_BAD_SEQUENCE);
	fake_reset(FAKE_NORMAL);
	if (survives) {
		CHECK(roundtrip(ctx));
	} else {
		CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8),
		    getrandom8), TSS2_TCTI_RC_NO_CONNECTION);
		size = 1;
		CHECK_RC(Tss2_Tcti_GetPollHandles(ctx, NULL, &size),
		    TSS2_RC_SUCCESS);
	}
	tcti_close(ctx);
}

static void
test_bad_answers(void)
{
	bad_answer(FAKE_STATUS, 1, 0, TSS2_TCTI_RC_IO_ERROR, true);
	bad_answer(FAKE_STATUS, 2, 0, TSS2_TCTI_RC_BAD_VALUE, true);
	bad_answer(FAKE_STATUS, 7, 0, TSS2_TCTI_RC_GENERAL_FAILURE, true);
	bad_answer(FAKE_STATUS_BODY, 1, 0, TSS2_TCTI_RC_MALFORMED_RESPONSE,
	    true);
	bad_answer(FAKE_BADSIZE, 0, 0, TSS2_TCTI_RC_MALFORMED_RESPONSE, true);
	bad_answer(FAKE_SHORT_TPM, 0, 0, TSS2_TCTI_RC_MALFORMED_RESPONSE, true);
	bad_answer(FAKE_OVERSIZE, 0, VTPM_LOCAL_MAX_BODY + 1,
	    TSS2_TCTI_RC_MALFORMED_RESPONSE, false);
	bad_answer(FAKE_OVERSIZE, 0, 0x10000, TSS2_TCTI_RC_MALFORMED_RESPONSE,
	    false);
	bad_answer(FAKE_OVERSIZE, 0, 0xffffffffU,
	    TSS2_TCTI_RC_MALFORMED_RESPONSE, false);
	bad_answer(FAKE_CLOSE, 0, 0, TSS2_TCTI_RC_IO_ERROR, false);
}

/*
 * Random frames from the server: the TCTI must give exactly the outcome the
 * protocol document prescribes (the oracle below), never crash, and keep or
 * drop the connection accordingly.
 */
static void
test_random_frames(void)
{
	static uint8_t frame[8 + VTPM_LOCAL_MAX_BODY], buf[VTPM_LOCAL_MAX_BODY];
	char conf[PATH_MAX + 8];
	TSS2_TCTI_CONTEXT *ctx = NULL;
	uint32_t status, len;
	size_t flen, size;
	TSS2_RC rc, want;
	int i, bad = 0, n_ok = 0, n_drop = 0;
	bool drop;

	snprintf(conf, sizeof(conf), "path=%s", sock_path);
	fake_reset(FAKE_GARBAGE);
	pthread_mutex_lock(&fake.mu);
	fake.prng = 0x9e3779b97f4a7c15ULL;
	pthread_mutex_unlock(&fake.mu);
	for (i = 0; i < 2000; i++) {
		if (ctx == NULL) {	/* reconnect silently: not a check */
			ctx = tcti_open(conf, &rc);
			if (ctx == NULL) {
				CHECK_RC(rc, TSS2_RC_SUCCESS);
				return;
			}
		}
		rc = Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8);
		if (rc != TSS2_RC_SUCCESS) {
			bad++;
			break;
		}
		size = sizeof(buf);
		rc = Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_BLOCK);

		pthread_mutex_lock(&fake.mu);
		flen = fake.sent_len;
		memcpy(frame, fake.sent, flen);
		pthread_mutex_unlock(&fake.mu);
		status = get_u32(frame);
		len = get_u32(frame + 4);
		drop = false;
		if (len > VTPM_LOCAL_MAX_BODY) {
			want = TSS2_TCTI_RC_MALFORMED_RESPONSE;
			drop = true;
		} else if (status != 0) {
			want = len != 0 ? TSS2_TCTI_RC_MALFORMED_RESPONSE :
			    status == 1 ? TSS2_TCTI_RC_IO_ERROR :
			    status == 2 ? TSS2_TCTI_RC_BAD_VALUE :
			    TSS2_TCTI_RC_GENERAL_FAILURE;
		} else if (len < 10 || get_u32(frame + 8 + 2) != len) {
			want = TSS2_TCTI_RC_MALFORMED_RESPONSE;
		} else {
			want = TSS2_RC_SUCCESS;
		}
		if (rc != want || (rc == TSS2_RC_SUCCESS && (size != len ||
		    memcmp(buf, frame + 8, len) != 0))) {
			if (bad++ < 5)
				fprintf(stderr, "  frame %d: status %u len %u: "
				    "rc 0x%x, want 0x%x\n", i, (unsigned)status,
				    (unsigned)len, (unsigned)rc, (unsigned)want);
		}
		n_ok += rc == TSS2_RC_SUCCESS;
		if (drop) {
			n_drop++;
			if (Tss2_Tcti_Transmit(ctx, sizeof(getrandom8),
			    getrandom8) != TSS2_TCTI_RC_NO_CONNECTION)
				bad++;
			tcti_close(ctx);
			ctx = NULL;
		}
	}
	tcti_close(ctx);
	CHECK(bad == 0);
	CHECK(n_ok > 100 && n_drop > 100);	/* the mix covered both */
}

static void
test_unsolicited(void)
{
	TSS2_TCTI_CONTEXT *ctx;

	fake_reset(FAKE_EXTRA);
	if ((ctx = open_default()) == NULL)
		return;
	CHECK(roundtrip(ctx));		/* the frame itself is fine */
	usleep(20000);
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_TCTI_RC_IO_ERROR);
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_TCTI_RC_NO_CONNECTION);
	tcti_close(ctx);
}

static void
test_config_timeout(void)
{
	char conf[PATH_MAX + 32];
	TSS2_TCTI_CONTEXT *ctx;
	uint8_t buf[4096];
	size_t size;
	int64_t t0, dt;
	TSS2_RC rc;

	fake_reset(FAKE_HOLD);
	snprintf(conf, sizeof(conf), "path=%s,timeout=100", sock_path);
	ctx = tcti_open(conf, &rc);
	if (!CHECK_RC(rc, TSS2_RC_SUCCESS))
		return;
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_RC_SUCCESS);
	/* A caller's own timeout still gives TRY_AGAIN ... */
	size = sizeof(buf);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, 0), TSS2_TCTI_RC_TRY_AGAIN);
	/* ... a blocking receive gives up after timeout= and drops the link. */
	t0 = now_ms();
	size = sizeof(buf);
	CHECK_RC(Tss2_Tcti_Receive(ctx, &size, buf, TSS2_TCTI_TIMEOUT_BLOCK),
	    TSS2_TCTI_RC_IO_ERROR);
	dt = now_ms() - t0;
	CHECK(dt >= 90 && dt < 2000);
	fake_release();
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_TCTI_RC_NO_CONNECTION);
	tcti_close(ctx);
}

static void
test_hello_refused(void)
{
	struct {
		uint32_t status, version;
		int64_t grant;
		const char *extra;
		TSS2_RC want;
	} cases[] = {
		{ 1, 1, -1, "", TSS2_TCTI_RC_IO_ERROR },
		{ 2, 1, -1, "", TSS2_TCTI_RC_BAD_VALUE },
		{ 0, 2, -1, "", TSS2_TCTI_RC_NOT_SUPPORTED },
		{ 0, 1, 0, ",raw=1", TSS2_TCTI_RC_NOT_PERMITTED },
		{ 0, 1, 2, "", TSS2_TCTI_RC_MALFORMED_RESPONSE },
	};
	char conf[PATH_MAX + 32];
	TSS2_TCTI_CONTEXT *ctx;
	size_t i;
	int before;
	TSS2_RC rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_reset(FAKE_NORMAL);
		pthread_mutex_lock(&fake.mu);
		fake.hello_status = cases[i].status;
		fake.hello_version = cases[i].version;
		fake.hello_grant = cases[i].grant;
		pthread_mutex_unlock(&fake.mu);
		snprintf(conf, sizeof(conf), "path=%s%s", sock_path,
		    cases[i].extra);
		before = fake_conns_closed();
		ctx = tcti_open(conf, &rc);
		if (!CHECK_RC(rc, cases[i].want))
			fprintf(stderr, "  hello case %zu\n", i);
		CHECK(ctx == NULL);
		/* A failed init leaves nothing open: the server sees EOF. */
		CHECK(fake_wait_closed(before));
		tcti_close(ctx);
	}
}

static void
test_finalize_and_context(void)
{
	TSS2_TCTI_CONTEXT *ctx;
	TSS2_TCTI_CONTEXT_COMMON_V2 forged;
	TSS2_TCTI_POLL_HANDLE h;
	size_t n = 1;
	int before, fd;

	fake_reset(FAKE_NORMAL);
	if ((ctx = open_default()) == NULL)
		return;
	CHECK_RC(Tss2_Tcti_GetPollHandles(ctx, &h, &n), TSS2_RC_SUCCESS);
	fd = h.fd;

	/* Another context's functions with a wrong magic: BAD_CONTEXT. */
	memcpy(&forged, ctx, sizeof(forged));
	forged.v1.magic ^= 1;
	CHECK_RC(Tss2_Tcti_Transmit((TSS2_TCTI_CONTEXT *)&forged,
	    sizeof(getrandom8), getrandom8), TSS2_TCTI_RC_BAD_CONTEXT);
	CHECK_RC(Tss2_Tcti_Cancel((TSS2_TCTI_CONTEXT *)&forged),
	    TSS2_TCTI_RC_BAD_CONTEXT);
	CHECK_RC(forged.v1.transmit(NULL, sizeof(getrandom8), getrandom8),
	    TSS2_TCTI_RC_BAD_REFERENCE);
	forged.v1.finalize((TSS2_TCTI_CONTEXT *)&forged);	/* must not close */
	CHECK(fcntl(fd, F_GETFD) >= 0);
	CHECK(roundtrip(ctx));

	before = fake_conns_closed();
	Tss2_Tcti_Finalize(ctx);
	CHECK(fake_wait_closed(before));
	CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
	/* The context is wiped: the ABI macros now refuse it. */
	CHECK(TSS2_TCTI_VERSION(ctx) == 0);
	CHECK_RC(Tss2_Tcti_Transmit(ctx, sizeof(getrandom8), getrandom8),
	    TSS2_TCTI_RC_ABI_MISMATCH);
	Tss2_Tcti_Finalize(ctx);	/* second finalize: harmless */
	free(ctx);
}

/* ==== end to end: the real tpm2_getrandom ================================= */

/*
 * Run tpm2_getrandom --hex 8 with LD_LIBRARY_PATH pointing at the plugin,
 * selecting the TCTI with -T (use_env false, "path=" form) or with
 * TPM2TOOLS_TCTI (use_env true, bare path form); check it prints the bytes
 * the fake served and that GetRandom went over our socket.
 */
static void
run_tpm2_getrandom(bool use_env)
{
#if defined(__SANITIZE_ADDRESS__)
	(void)use_env;
	printf("SKIP tpm2_getrandom: an ASan-built plugin cannot load into "
	    "an uninstrumented tpm2-tools\n");
#else
	char conf[PATH_MAX + 32], libdir[PATH_MAX], ldpath[PATH_MAX + 64];
	char out[256], want_hex[17], errpath[] = "/tmp/test_tcti.err.XXXXXX";
	char *argv_t[] = { "tpm2_getrandom", "-T", conf, "--hex", "8", NULL };
	char *argv_e[] = { "tpm2_getrandom", "--hex", "8", NULL };
	char **envp;
	const char *old;
	posix_spawn_file_actions_t fa;
	size_t nenv, i, got = 0;
	ssize_t n;
	pid_t pid;
	int pfd[2], errfd, st = 0, err, found = 0;

	if (realpath(so_path, libdir) == NULL) {
		CHECK(!"realpath of the plugin");
		return;
	}
	*strrchr(libdir, '/') = '\0';
	if (use_env)
		snprintf(conf, sizeof(conf), "TPM2TOOLS_TCTI=vtpm:%s", sock_path);
	else
		snprintf(conf, sizeof(conf), "vtpm:path=%s", sock_path);
	old = getenv("LD_LIBRARY_PATH");
	snprintf(ldpath, sizeof(ldpath), "LD_LIBRARY_PATH=%s%s%s", libdir,
	    old != NULL && *old != '\0' ? ":" : "", old != NULL ? old : "");

	for (nenv = 0; environ[nenv] != NULL; nenv++)
		;
	if ((envp = calloc(nenv + 3, sizeof(*envp))) == NULL) {
		CHECK(!"calloc");
		return;
	}
	for (i = 0, nenv = 0; environ[i] != NULL; i++)
		if (strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0 &&
		    strncmp(environ[i], "TPM2TOOLS_TCTI=", 15) != 0 &&
		    strncmp(environ[i], "VTPM_SOCKET=", 12) != 0)
			envp[nenv++] = environ[i];
	envp[nenv++] = ldpath;
	if (use_env)
		envp[nenv++] = conf;
	envp[nenv] = NULL;

	errfd = mkstemp(errpath);
	if (errfd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
		CHECK(!"pipe/mkstemp");
		free(envp);
		if (errfd >= 0) {
			close(errfd);
			unlink(errpath);
		}
		return;
	}
	fake_reset(FAKE_NORMAL);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	err = posix_spawnp(&pid, "tpm2_getrandom", &fa, NULL,
	    use_env ? argv_e : argv_t, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	free(envp);
	if (err == ENOENT) {
		printf("SKIP tpm2_getrandom: not installed\n");
		goto out;
	}
	if (!CHECK(err == 0))
		goto out;
	while (got < sizeof(out) - 1 &&
	    (n = read(pfd[0], out + got, sizeof(out) - 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == ' '))
		out[--got] = '\0';
	for (i = 0; i < 8; i++)
		snprintf(want_hex + 2 * i, 3, "%02x", fake.random[i]);

	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (!CHECK(strcmp(out, want_hex) == 0)) {
		char e[2048];

		fprintf(stderr, "  tpm2_getrandom (%s) printed \"%s\", want "
		    "\"%s\"\n", use_env ? "TPM2TOOLS_TCTI" : "-T", out,
		    want_hex);
		lseek(errfd, 0, SEEK_SET);
		n = read(errfd, e, sizeof(e) - 1);
		if (n > 0) {
			e[n] = '\0';
			fprintf(stderr, "  its stderr: %s\n", e);
		}
	}
	pthread_mutex_lock(&fake.mu);
	CHECK(fake.n_hello == 1 && fake.hello_req_flags == 0);
	for (i = 0; i < (size_t)fake.n_codes; i++)
		found += fake.codes[i] == TPM_CC_GET_RANDOM;
	CHECK(found == 1);
	printf("tpm2_getrandom via %s: printed %s; commands seen:",
	    use_env ? "TPM2TOOLS_TCTI" : "-T", out);
	for (i = 0; i < (size_t)fake.n_codes; i++)
		printf(" 0x%x", (unsigned)fake.codes[i]);
	printf("\n");
	pthread_mutex_unlock(&fake.mu);
out:
	close(pfd[0]);
	close(errfd);
	unlink(errpath);
#endif
}

static void
test_tpm2_getrandom(void)
{
	run_tpm2_getrandom(false);
	run_tpm2_getrandom(true);
}

/* ==== main ================================================================ */

static bool
find_plugin(int argc, char **argv)
{
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (argc > 1) {
		snprintf(so_path, sizeof(so_path), "%s", argv[1]);
		return true;
	}
	/* build/tests/test_tcti -> build/libtss2-tcti-vtpm.so.0 */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) == NULL)
		return false;
	*slash = '\0';
	return snprintf(so_path, sizeof(so_path), "%s/../libtss2-tcti-vtpm.so.0",
	    self) < (int)sizeof(so_path);
}

int
main(int argc, char **argv)
{
	char dir[] = "/tmp/test_tcti.XXXXXX";
	TSS2_TCTI_INFO_FUNC info_fn;

	alarm(60);
	unsetenv("VTPM_SOCKET");
	if (!find_plugin(argc, argv)) {
		fprintf(stderr, "test_tcti: cannot locate the plugin\n");
		return 2;
	}
	if ((so_handle = dlopen(so_path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "test_tcti: dlopen %s: %s\n", so_path, dlerror());
		return 2;
	}
	info_fn = (TSS2_TCTI_INFO_FUNC)dlsym(so_handle, TSS2_TCTI_INFO_SYMBOL);
	if (info_fn == NULL || (info = info_fn()) == NULL) {
		fprintf(stderr, "test_tcti: no %s in %s\n",
		    TSS2_TCTI_INFO_SYMBOL, so_path);
		return 2;
	}
	if (mkdtemp(dir) == NULL) {
		perror("test_tcti: mkdtemp");
		return 2;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/tpm.sock", dir);
	if (!fake_start(sock_path)) {
		perror("test_tcti: fake server");
		return 2;
	}

	test_info_and_exports();
	test_init_protocol();
	test_config();
	test_roundtrip_and_buffers();
	test_sequence();
	test_transmit_validation();
	test_locality();
	test_try_again_and_poll();
	test_partial();
	test_bad_answers();
	test_random_frames();
	test_unsolicited();
	test_config_timeout();
	test_hello_refused();
	test_finalize_and_context();
	test_tpm2_getrandom();

	unlink(sock_path);
	rmdir(dir);
	printf("tcti: %d passed, %d failed\n", n_pass, n_fail);
	return n_fail == 0 ? 0 : 1;
}
