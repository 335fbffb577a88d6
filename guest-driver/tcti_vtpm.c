/*
 * tcti_vtpm.c: tpm2-tss TCTI plugin that carries TPM commands over the local
 * unix socket of vtpm-guest (docs/LOCAL-PROTOCOL.md).
 * Trusts its caller (the TSS) as far as the TCTI ABI does, and nothing the
 * server sends: every frame is length-checked against fixed bounds before use.
 * Self-contained by design (only libc): it is loaded into arbitrary programs.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tcti_vtpm.h"

#define VTPM_TCTI_EXPORT	__attribute__((visibility("default")))

#define TCTI_VTPM_MAGIC		0x7674706d6c6f6331ULL	/* "vtpmloc1" */
#define TCTI_VTPM_ABI_VERSION	2
#define TCTI_VTPM_TIMEOUT_MAX	86400000U		/* config timeout=, ms */

enum tcti_vtpm_state {
	TCTI_VTPM_TRANSMIT = 1,		/* may send a command */
	TCTI_VTPM_RECEIVE,		/* command sent, response outstanding */
};

struct tcti_vtpm_ctx {
	TSS2_TCTI_CONTEXT_COMMON_V2 tv_common;	/* must come first (ABI) */
	int		 tv_fd;			/* -1 once dropped */
	enum tcti_vtpm_state tv_state;
	uint8_t		 tv_locality;
	uint32_t	 tv_timeout_ms;		/* config timeout=, 0 = none */
	/* response frame being read: header then body; tv_rx_have bytes so far */
	size_t		 tv_rx_have;
	uint8_t		 tv_rx[VTPM_LOCAL_HDR_LEN + VTPM_LOCAL_MAX_BODY];
	/* request staging: header, locality, command */
	uint8_t		 tv_tx[VTPM_LOCAL_HDR_LEN + 1 + VTPM_LOCAL_MAX_COMMAND];
};

struct tcti_vtpm_config {
	char		 vc_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool		 vc_raw;
	uint32_t	 vc_timeout_ms;
};

/*
 * A minimal big-endian reader for the server's bytes. The project's cursor
 * lives in libtransport, which this plugin must not link; this is the same
 * contract in miniature: check, consume, then return; failures are sticky.
 */
struct tcti_cur {
	const uint8_t	*tc_ptr;
	size_t		 tc_len;
	bool		 tc_bad;
};

static void
tcti_cur_init(struct tcti_cur *c, const uint8_t *p, size_t len)
{
	c->tc_ptr = p;
	c->tc_len = len;
	c->tc_bad = false;
}

static uint32_t
tcti_cur_get_u32(struct tcti_cur *c)
{
	uint32_t v;

	if (c->tc_bad || c->tc_len < 4) {
		c->tc_bad = true;
		c->tc_len = 0;
		return 0;
	}
	v = (uint32_t)c->tc_ptr[0] << 24 | (uint32_t)c->tc_ptr[1] << 16 |
	    (uint32_t)c->tc_ptr[2] << 8 | c->tc_ptr[3];
	c->tc_ptr += 4;
	c->tc_len -= 4;
	return v;
}

/* True if every getter succeeded and nothing is left: the end-of-message check. */
static bool
tcti_cur_end(const struct tcti_cur *c)
{
	return !c->tc_bad && c->tc_len == 0;
}

static void
tcti_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
tcti_peek_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* ---- context checks ---------------------------------------------------- */

static struct tcti_vtpm_ctx *
tcti_vtpm_ctx_get(TSS2_TCTI_CONTEXT *tcti, TSS2_RC *rc)
{
	struct tcti_vtpm_ctx *ctx = (struct tcti_vtpm_ctx *)tcti;

	if (ctx == NULL) {
		*rc = TSS2_TCTI_RC_BAD_REFERENCE;
		return NULL;
	}
	if (ctx->tv_common.v1.magic != TCTI_VTPM_MAGIC) {
		*rc = TSS2_TCTI_RC_BAD_CONTEXT;
		return NULL;
	}
	*rc = TSS2_RC_SUCCESS;
	return ctx;
}

/* Forget the current exchange; wipe what it carried. */
static void
tcti_vtpm_exchange_end(struct tcti_vtpm_ctx *ctx)
{
	explicit_bzero(ctx->tv_rx, sizeof(ctx->tv_rx));
	ctx->tv_rx_have = 0;
	ctx->tv_state = TCTI_VTPM_TRANSMIT;
}

/* The byte stream is out of step or gone: no later call may use it. */
static void
tcti_vtpm_drop(struct tcti_vtpm_ctx *ctx)
{
	if (ctx->tv_fd >= 0)
		(void)close(ctx->tv_fd);
	ctx->tv_fd = -1;
	tcti_vtpm_exchange_end(ctx);
}

/* ---- socket I/O -------------------------------------------------------- */

static int64_t
tcti_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write all of buf, over short writes and EINTR. Never raises SIGPIPE. */
static TSS2_RC
tcti_vtpm_write_all(int fd, const uint8_t *buf, size_t len)
{
	struct pollfd pfd;
	ssize_t n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				pfd.fd = fd;
				pfd.events = POLLOUT;
				pfd.revents = 0;
				(void)poll(&pfd, 1, -1);
				continue;
			}
			return TSS2_TCTI_RC_IO_ERROR;
		}
		buf += n;
		len -= (size_t)n;
	}
	return TSS2_RC_SUCCESS;
}

/*
 * Continue reading the response frame into tv_rx until it is complete.
 * timeout_ms < 0 waits without limit. Returns
 *   TSS2_RC_SUCCESS         frame complete: tv_rx_have == 8 + len
 *   TSS2_TCTI_RC_TRY_AGAIN  timeout expired; what arrived is kept
 *   TSS2_TCTI_RC_IO_ERROR   read error or end of file (connection dropped)
 *   TSS2_TCTI_RC_MALFORMED_RESPONSE  len > VTPM_LOCAL_MAX_BODY (dropped)
 */
static TSS2_RC
tcti_vtpm_read_frame(struct tcti_vtpm_ctx *ctx, int timeout_ms)
{
	struct pollfd pfd;
	int64_t deadline = 0;
	size_t want;
	uint32_t len;
	ssize_t n;
	int wait, pr;

	if (timeout_ms > 0)
		deadline = tcti_now_ms() + timeout_ms;

	for (;;) {
		if (ctx->tv_rx_have < VTPM_LOCAL_HDR_LEN) {
			want = VTPM_LOCAL_HDR_LEN;
		} else {
			/* Header complete: bound len before any arithmetic with it. */
			len = tcti_peek_u32(ctx->tv_rx + 4);
			if (len > VTPM_LOCAL_MAX_BODY) {
				tcti_vtpm_drop(ctx);
				return TSS2_TCTI_RC_MALFORMED_RESPONSE;
			}
			want = VTPM_LOCAL_HDR_LEN + len;
		}
		if (ctx->tv_rx_have == want)
			return TSS2_RC_SUCCESS;

		if (timeout_ms < 0) {
			wait = -1;
		} else if (timeout_ms == 0) {
			wait = 0;
		} else {
			int64_t left = deadline - tcti_now_ms();
			wait = left > 0 ? (int)left : 0;
		}
		pfd.fd = ctx->tv_fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		pr = poll(&pfd, 1, wait);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			tcti_vtpm_drop(ctx);
			return TSS2_TCTI_RC_IO_ERROR;
		}
		if (pr == 0)
			return TSS2_TCTI_RC_TRY_AGAIN;

		n = recv(ctx->tv_fd, ctx->tv_rx + ctx->tv_rx_have,
		    want - ctx->tv_rx_have, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			tcti_vtpm_drop(ctx);
			return TSS2_TCTI_RC_IO_ERROR;
		}
		if (n == 0) {			/* server went away */
			tcti_vtpm_drop(ctx);
			return TSS2_TCTI_RC_IO_ERROR;
		}
		ctx->tv_rx_have += (size_t)n;
	}
}

/* Map a non-zero status of a complete frame to a TCTI error. */
static TSS2_RC
tcti_vtpm_status_rc(uint32_t status)
{
	switch (status) {
	case VTPM_LOCAL_STATUS_TPM_UNAVAIL:
		return TSS2_TCTI_RC_IO_ERROR;
	case VTPM_LOCAL_STATUS_BAD_REQUEST:
		return TSS2_TCTI_RC_BAD_VALUE;
	default:
		return TSS2_TCTI_RC_GENERAL_FAILURE;
	}
}

/*
 * Check a complete response frame (tv_rx, tv_rx_have bytes) and set
 * *body_len to the TPM response length on success. The frame's length was
 * bounded by tcti_vtpm_read_frame().
 *   frame    = u32 status | u32 len | body[len]
 *   status 0 : body = TPM response, 10 <= len, TPM header size == len
 *   status !0: body empty
 */
static TSS2_RC
tcti_vtpm_parse_response(struct tcti_vtpm_ctx *ctx, size_t *body_len)
{
	struct tcti_cur c;
	uint32_t status, len, tpm_size;

	tcti_cur_init(&c, ctx->tv_rx, VTPM_LOCAL_HDR_LEN);
	status = tcti_cur_get_u32(&c);
	len = tcti_cur_get_u32(&c);
	if (!tcti_cur_end(&c) || len > VTPM_LOCAL_MAX_BODY ||
	    ctx->tv_rx_have != VTPM_LOCAL_HDR_LEN + (size_t)len)
		return TSS2_TCTI_RC_MALFORMED_RESPONSE;

	if (status != VTPM_LOCAL_STATUS_OK) {
		if (len != 0)
			return TSS2_TCTI_RC_MALFORMED_RESPONSE;
		return tcti_vtpm_status_rc(status);
	}
	if (len < VTPM_LOCAL_TPM_HDR_LEN)
		return TSS2_TCTI_RC_MALFORMED_RESPONSE;
	tpm_size = tcti_peek_u32(ctx->tv_rx + VTPM_LOCAL_HDR_LEN + 2);
	if (tpm_size != len)
		return TSS2_TCTI_RC_MALFORMED_RESPONSE;
	*body_len = len;
	return TSS2_RC_SUCCESS;
}

/* ---- the TCTI functions ------------------------------------------------ */

static TSS2_RC
tcti_vtpm_transmit(TSS2_TCTI_CONTEXT *tcti, size_t size, const uint8_t *command)
{
	struct tcti_vtpm_ctx *ctx;
	struct pollfd pfd;
	uint8_t probe;
	ssize_t n;
	TSS2_RC rc;

	if ((ctx = tcti_vtpm_ctx_get(tcti, &rc)) == NULL)
		return rc;
	if (command == NULL)
		return TSS2_TCTI_RC_BAD_REFERENCE;
	if (ctx->tv_state != TCTI_VTPM_TRANSMIT)
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	if (size < VTPM_LOCAL_TPM_HDR_LEN || size > VTPM_LOCAL_MAX_COMMAND)
		return TSS2_TCTI_RC_BAD_VALUE;
	if (tcti_peek_u32(command + 2) != size)
		return TSS2_TCTI_RC_BAD_VALUE;
	if (ctx->tv_fd < 0)
		return TSS2_TCTI_RC_NO_CONNECTION;

	/*
	 * Between exchanges the server has nothing to say. Bytes now would be
	 * taken for the next response, so treat them (or EOF) as a broken link.
	 */
	pfd.fd = ctx->tv_fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) > 0) {
		n = recv(ctx->tv_fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR)) {
			tcti_vtpm_drop(ctx);
			return TSS2_TCTI_RC_IO_ERROR;
		}
	}

	/* request = u32 op | u32 len | u8 locality | command[size] */
	tcti_put_u32(ctx->tv_tx, VTPM_LOCAL_OP_TPM_COMMAND);
	tcti_put_u32(ctx->tv_tx + 4, (uint32_t)(1 + size));
	ctx->tv_tx[VTPM_LOCAL_HDR_LEN] = ctx->tv_locality;
	memcpy(ctx->tv_tx + VTPM_LOCAL_HDR_LEN + 1, command, size);
	rc = tcti_vtpm_write_all(ctx->tv_fd, ctx->tv_tx,
	    VTPM_LOCAL_HDR_LEN + 1 + size);
	explicit_bzero(ctx->tv_tx, sizeof(ctx->tv_tx));
	if (rc != TSS2_RC_SUCCESS) {
		tcti_vtpm_drop(ctx);
		return rc;
	}
	ctx->tv_rx_have = 0;
	ctx->tv_state = TCTI_VTPM_RECEIVE;
	return TSS2_RC_SUCCESS;
}

static TSS2_RC
tcti_vtpm_receive(TSS2_TCTI_CONTEXT *tcti, size_t *size, uint8_t *response,
    int32_t timeout)
{
	struct tcti_vtpm_ctx *ctx;
	size_t body_len = 0;
	int wait;
	TSS2_RC rc;

	if ((ctx = tcti_vtpm_ctx_get(tcti, &rc)) == NULL)
		return rc;
	if (size == NULL)
		return TSS2_TCTI_RC_BAD_REFERENCE;
	if (ctx->tv_state != TCTI_VTPM_RECEIVE)
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	if (timeout < TSS2_TCTI_TIMEOUT_BLOCK)
		return TSS2_TCTI_RC_BAD_VALUE;
	if (ctx->tv_fd < 0) {
		tcti_vtpm_exchange_end(ctx);
		return TSS2_TCTI_RC_NO_CONNECTION;
	}

	if (timeout == TSS2_TCTI_TIMEOUT_BLOCK)
		wait = ctx->tv_timeout_ms == 0 ? -1 : (int)ctx->tv_timeout_ms;
	else
		wait = timeout;
	rc = tcti_vtpm_read_frame(ctx, wait);
	if (rc == TSS2_TCTI_RC_TRY_AGAIN && timeout == TSS2_TCTI_TIMEOUT_BLOCK) {
		/* Only a configured bound ends a blocking wait: give up on it. */
		tcti_vtpm_drop(ctx);
		return TSS2_TCTI_RC_IO_ERROR;
	}
	if (rc == TSS2_TCTI_RC_TRY_AGAIN)
		return rc;
	if (rc != TSS2_RC_SUCCESS) {
		tcti_vtpm_exchange_end(ctx);	/* already dropped */
		return rc;
	}

	rc = tcti_vtpm_parse_response(ctx, &body_len);
	if (rc != TSS2_RC_SUCCESS) {
		/* The frame was whole: the stream is still in step. */
		tcti_vtpm_exchange_end(ctx);
		return rc;
	}
	if (response == NULL) {
		*size = body_len;
		return TSS2_RC_SUCCESS;
	}
	if (*size < body_len) {
		*size = body_len;
		return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
	}
	memcpy(response, ctx->tv_rx + VTPM_LOCAL_HDR_LEN, body_len);
	*size = body_len;
	tcti_vtpm_exchange_end(ctx);
	return TSS2_RC_SUCCESS;
}

static void
tcti_vtpm_finalize(TSS2_TCTI_CONTEXT *tcti)
{
	struct tcti_vtpm_ctx *ctx;
	TSS2_RC rc;

	if ((ctx = tcti_vtpm_ctx_get(tcti, &rc)) == NULL)
		return;
	if (ctx->tv_fd >= 0)
		(void)close(ctx->tv_fd);
	explicit_bzero(ctx, sizeof(*ctx));
	ctx->tv_fd = -1;
}

static TSS2_RC
tcti_vtpm_cancel(TSS2_TCTI_CONTEXT *tcti)
{
	TSS2_RC rc;

	if (tcti_vtpm_ctx_get(tcti, &rc) == NULL)
		return rc;
	/* The protocol has CANCEL (op 2) but it is only legal between commands. */
	return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC
tcti_vtpm_get_poll_handles(TSS2_TCTI_CONTEXT *tcti,
    TSS2_TCTI_POLL_HANDLE *handles, size_t *num_handles)
{
	struct tcti_vtpm_ctx *ctx;
	TSS2_RC rc;

	if ((ctx = tcti_vtpm_ctx_get(tcti, &rc)) == NULL)
		return rc;
	if (num_handles == NULL)
		return TSS2_TCTI_RC_BAD_REFERENCE;
	if (handles == NULL) {
		*num_handles = 1;
		return TSS2_RC_SUCCESS;
	}
	if (*num_handles < 1) {
		*num_handles = 1;
		return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
	}
	if (ctx->tv_fd < 0)
		return TSS2_TCTI_RC_NO_CONNECTION;
	handles[0].fd = ctx->tv_fd;
	handles[0].events = POLLIN;
	handles[0].revents = 0;
	*num_handles = 1;
	return TSS2_RC_SUCCESS;
}

static TSS2_RC
tcti_vtpm_set_locality(TSS2_TCTI_CONTEXT *tcti, uint8_t locality)
{
	struct tcti_vtpm_ctx *ctx;
	TSS2_RC rc;

	if ((ctx = tcti_vtpm_ctx_get(tcti, &rc)) == NULL)
		return rc;
	if (ctx->tv_state != TCTI_VTPM_TRANSMIT)
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	if (locality > VTPM_LOCAL_MAX_LOCALITY)
		return TSS2_TCTI_RC_BAD_VALUE;
	ctx->tv_locality = locality;
	return TSS2_RC_SUCCESS;
}

/* ---- configuration ----------------------------------------------------- */

static TSS2_RC
tcti_vtpm_set_path(struct tcti_vtpm_config *cfg, const char *p, size_t len)
{
	if (len == 0 || len >= sizeof(cfg->vc_path) || memchr(p, '\0', len))
		return TSS2_TCTI_RC_BAD_VALUE;
	memcpy(cfg->vc_path, p, len);
	cfg->vc_path[len] = '\0';
	return TSS2_RC_SUCCESS;
}

/* Decimal 0..max, digits only, no sign, no leading junk. */
static TSS2_RC
tcti_vtpm_parse_uint(const char *p, size_t len, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return TSS2_TCTI_RC_BAD_VALUE;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return TSS2_TCTI_RC_BAD_VALUE;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (v > max)
		return TSS2_TCTI_RC_BAD_VALUE;
	*out = (uint32_t)v;
	return TSS2_RC_SUCCESS;
}

/*
 * config = ""  |  PATH (no '=')  |  key=value *("," key=value)
 * key    = "path" | "raw" | "timeout", each at most once.
 */
static TSS2_RC
tcti_vtpm_parse_config(const char *config, struct tcti_vtpm_config *cfg)
{
	const char *p, *end, *eq, *env;
	size_t klen, vlen;
	bool seen_path = false, seen_raw = false, seen_timeout = false;
	uint32_t v = 0;
	TSS2_RC rc;

	memset(cfg, 0, sizeof(*cfg));
	if (config != NULL && config[0] != '\0' && strchr(config, '=') == NULL)
		return tcti_vtpm_set_path(cfg, config, strlen(config));

	for (p = config; p != NULL && *p != '\0'; p = (*end == ',') ? end + 1 : end) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL)
			return TSS2_TCTI_RC_BAD_VALUE;
		klen = (size_t)(eq - p);
		vlen = (size_t)(end - eq - 1);
		if (klen == 4 && memcmp(p, "path", 4) == 0 && !seen_path) {
			seen_path = true;
			rc = tcti_vtpm_set_path(cfg, eq + 1, vlen);
		} else if (klen == 3 && memcmp(p, "raw", 3) == 0 && !seen_raw) {
			seen_raw = true;
			rc = tcti_vtpm_parse_uint(eq + 1, vlen, 1, &v);
			cfg->vc_raw = (v == 1);
		} else if (klen == 7 && memcmp(p, "timeout", 7) == 0 &&
		    !seen_timeout) {
			seen_timeout = true;
			rc = tcti_vtpm_parse_uint(eq + 1, vlen,
			    TCTI_VTPM_TIMEOUT_MAX, &cfg->vc_timeout_ms);
		} else {
			rc = TSS2_TCTI_RC_BAD_VALUE;	/* unknown or repeated */
		}
		if (rc != TSS2_RC_SUCCESS)
			return rc;
		if (*end == ',' && end[1] == '\0')
			return TSS2_TCTI_RC_BAD_VALUE;	/* trailing comma */
	}

	if (!seen_path) {
		env = secure_getenv(VTPM_LOCAL_ENV_SOCKET);
		if (env != NULL && env[0] != '\0')
			return tcti_vtpm_set_path(cfg, env, strlen(env));
		return tcti_vtpm_set_path(cfg, VTPM_LOCAL_DEFAULT_PATH,
		    strlen(VTPM_LOCAL_DEFAULT_PATH));
	}
	return TSS2_RC_SUCCESS;
}

/* ---- init -------------------------------------------------------------- */

/*
 * HELLO: send u32 version | u32 flags, expect status 0 and the same shape
 * back with the flags granted (a subset of those asked for).
 */
static TSS2_RC
tcti_vtpm_hello(struct tcti_vtpm_ctx *ctx, const struct tcti_vtpm_config *cfg)
{
	uint8_t req[VTPM_LOCAL_HDR_LEN + VTPM_LOCAL_HELLO_LEN];
	uint32_t flags = cfg->vc_raw ? VTPM_LOCAL_HELLO_RAW : 0;
	uint32_t status, len, version, granted;
	struct tcti_cur c;
	TSS2_RC rc;

	tcti_put_u32(req, VTPM_LOCAL_OP_HELLO);
	tcti_put_u32(req + 4, VTPM_LOCAL_HELLO_LEN);
	tcti_put_u32(req + 8, VTPM_LOCAL_VERSION);
	tcti_put_u32(req + 12, flags);
	if ((rc = tcti_vtpm_write_all(ctx->tv_fd, req, sizeof(req))) !=
	    TSS2_RC_SUCCESS)
		return rc;

	ctx->tv_rx_have = 0;
	rc = tcti_vtpm_read_frame(ctx, cfg->vc_timeout_ms != 0 ?
	    (int)cfg->vc_timeout_ms : VTPM_LOCAL_HELLO_MS);
	if (rc == TSS2_TCTI_RC_TRY_AGAIN)
		return TSS2_TCTI_RC_IO_ERROR;
	if (rc != TSS2_RC_SUCCESS)
		return rc;

	tcti_cur_init(&c, ctx->tv_rx, ctx->tv_rx_have);
	status = tcti_cur_get_u32(&c);
	len = tcti_cur_get_u32(&c);
	if (status != VTPM_LOCAL_STATUS_OK)
		return len == 0 && c.tc_len == 0 ? tcti_vtpm_status_rc(status) :
		    TSS2_TCTI_RC_MALFORMED_RESPONSE;
	if (len != VTPM_LOCAL_HELLO_LEN)
		return TSS2_TCTI_RC_MALFORMED_RESPONSE;
	version = tcti_cur_get_u32(&c);
	granted = tcti_cur_get_u32(&c);
	if (!tcti_cur_end(&c))
		return TSS2_TCTI_RC_MALFORMED_RESPONSE;
	if (version != VTPM_LOCAL_VERSION)
		return TSS2_TCTI_RC_NOT_SUPPORTED;
	if ((granted & ~flags) != 0)
		return TSS2_TCTI_RC_MALFORMED_RESPONSE;
	if (granted != flags)
		return TSS2_TCTI_RC_NOT_PERMITTED;
	return TSS2_RC_SUCCESS;
}

static TSS2_RC
tcti_vtpm_connect(const char *path, int *fdp)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return TSS2_TCTI_RC_BAD_VALUE;
	memcpy(sa.sun_path, path, strlen(path) + 1);

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return TSS2_TCTI_RC_NO_CONNECTION;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		(void)close(fd);
		return TSS2_TCTI_RC_NO_CONNECTION;
	}
	*fdp = fd;
	return TSS2_RC_SUCCESS;
}

VTPM_TCTI_EXPORT TSS2_RC
Tss2_Tcti_Vtpm_Init(TSS2_TCTI_CONTEXT *tcti, size_t *size, const char *config)
{
	struct tcti_vtpm_ctx *ctx = (struct tcti_vtpm_ctx *)tcti;
	struct tcti_vtpm_config cfg;
	TSS2_TCTI_CONTEXT_COMMON_V1 *v1;
	int fd = -1;
	TSS2_RC rc;

	if (size == NULL)
		return TSS2_TCTI_RC_BAD_VALUE;
	if (ctx == NULL) {
		*size = sizeof(struct tcti_vtpm_ctx);
		return TSS2_RC_SUCCESS;
	}
	if (*size < sizeof(struct tcti_vtpm_ctx))
		return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;

	memset(ctx, 0, sizeof(*ctx));
	ctx->tv_fd = -1;
	if ((rc = tcti_vtpm_parse_config(config, &cfg)) != TSS2_RC_SUCCESS)
		goto fail;
	if ((rc = tcti_vtpm_connect(cfg.vc_path, &fd)) != TSS2_RC_SUCCESS)
		goto fail;
	ctx->tv_fd = fd;
	if ((rc = tcti_vtpm_hello(ctx, &cfg)) != TSS2_RC_SUCCESS)
		goto fail;

	ctx->tv_timeout_ms = cfg.vc_timeout_ms;
	ctx->tv_locality = 0;
	tcti_vtpm_exchange_end(ctx);		/* state TRANSMIT */
	v1 = &ctx->tv_common.v1;
	v1->magic = TCTI_VTPM_MAGIC;
	v1->version = TCTI_VTPM_ABI_VERSION;
	v1->transmit = tcti_vtpm_transmit;
	v1->receive = tcti_vtpm_receive;
	v1->finalize = tcti_vtpm_finalize;
	v1->cancel = tcti_vtpm_cancel;
	v1->getPollHandles = tcti_vtpm_get_poll_handles;
	v1->setLocality = tcti_vtpm_set_locality;
	ctx->tv_common.makeSticky = NULL;
	return TSS2_RC_SUCCESS;

fail:
	if (ctx->tv_fd >= 0)
		(void)close(ctx->tv_fd);
	explicit_bzero(ctx, sizeof(*ctx));
	return rc;
}

static const TSS2_TCTI_INFO tcti_vtpm_info = {
	.version = TCTI_VTPM_ABI_VERSION,
	.name = "tcti-vtpm",
	.description = "TCTI for the vtpm guest agent's local socket (vtpm-guest).",
	.config_help = "Socket path, or key/value string "
	    "\"path=/run/vtpm/tpm.sock[,raw=0|1][,timeout=MS]\". "
	    "Empty: $VTPM_SOCKET, else /run/vtpm/tpm.sock.",
	.init = Tss2_Tcti_Vtpm_Init,
};

VTPM_TCTI_EXPORT const TSS2_TCTI_INFO *
Tss2_Tcti_Info(void)
{
	return &tcti_vtpm_info;
}
