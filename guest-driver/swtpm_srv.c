/*
 * swtpm_srv.c: a swtpm-compatible endpoint (vtpm-guest --swtpm PATH), so
 * that QEMU's "-tpmdev emulator" and tpm2-tss's tcti-swtpm use the vTPM
 * in vtpmd unchanged. PATH is the data channel (raw TPM 2.0 commands, one
 * connection per command or a persistent one), PATH.ctrl the control
 * channel (swtpm_ctrl.h); QEMU hands its data socket over with SET_DATAFD.
 * Trusts nothing from its peers: control requests go through
 * swtpm_ctrl_parse, data frames through tpm_frame_need; a bad request gets
 * an error answer and changes nothing. The wire formats are in
 * docs/GUEST-DRIVER.md section 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cursor.h"
#include "endpoint.h"
#include "guest.h"
#include "log.h"
#include "proto.h"
#include "swtpm_ctrl.h"
#include "tpm_frame.h"

#define SW_MAX_CTRL		8	/* control connections at once */
#define SW_MAX_DATA		8	/* data connections at once (+ the SET_DATAFD one) */
#define SW_CTRL_PARTIAL_MS	1000	/* an incomplete control request, then BAD_PARAMETER */
#define SW_DATA_PARTIAL_MS	10000	/* an incomplete TPM command, then the connection closes */
#define SW_WRITE_MS		10000	/* bound on writing one answer */
#define SW_BUF			(SWTPM_CTRL_MAX_REQ > TPM_FRAME_MAX_CMD ? \
				 SWTPM_CTRL_MAX_REQ : TPM_FRAME_MAX_CMD)

enum sw_kind { SW_CTRL = 1, SW_DATA };

struct sw_conn {
	int		 fd;		/* -1: slot free */
	enum sw_kind	 kind;
	int		 passed_fd;	/* SCM_RIGHTS fd waiting for its SET_DATAFD */
	uint8_t		 buf[SW_BUF];
	size_t		 have;
	struct timespec	 partial_dl;	/* deadline of the incomplete request */
};

static struct swtpm_srv {
	char		 data_path[ENDPOINT_PATH_MAX + 1];
	char		 ctrl_path[ENDPOINT_PATH_MAX + 1];
	int		 data_lfd;
	int		 ctrl_lfd;
	struct sw_conn	 ctrl[SW_MAX_CTRL];
	struct sw_conn	 data[SW_MAX_DATA + 1];	/* the last one: from SET_DATAFD */
	uint8_t		 locality;	/* SET_LOCALITY, sent with every command */
	uint32_t	 bufsize;	/* SET_BUFFERSIZE: largest TPM command taken */
	int		 stopped;	/* STOP answered OK, no INIT since */
	uint8_t		 rsp[2 * TPM_FRAME_MAX_CMD];
} S = { .data_lfd = -1, .ctrl_lfd = -1, .bufsize = SWTPM_BUFSIZE_MAX };

#define SW_DATAFD_SLOT	SW_MAX_DATA

static void
conn_close(struct sw_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->passed_fd >= 0)
		close(c->passed_fd);
	c->fd = -1;
	c->passed_fd = -1;
	c->have = 0;
}

static void
conn_open(struct sw_conn *c, int fd, enum sw_kind kind)
{
	c->fd = fd;
	c->kind = kind;
	c->passed_fd = -1;
	c->have = 0;
}

/* Writes all of p to a nonblocking socket within SW_WRITE_MS; 0 or -1. */
static int
write_all(int fd, const uint8_t *p, size_t len)
{
	struct timespec dl;
	struct pollfd pfd;
	ssize_t n;

	guest_deadline_in(&dl, SW_WRITE_MS);
	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    guest_ms_left(&dl) > 0) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			(void)poll(&pfd, 1, guest_ms_left(&dl));
			continue;
		}
		return -1;
	}
	return 0;
}

/* ---------- control channel ---------- */

static void
ctrl_reply(struct sw_conn *c, const uint8_t *p, size_t len)
{
	if (write_all(c->fd, p, len) != 0) {
		log_warnx("control client went away before its answer");
		conn_close(c);
	}
}

static void
ctrl_reply_res(struct sw_conn *c, uint32_t res)
{
	uint8_t out[4];

	be32_enc(out, res);
	ctrl_reply(c, out, sizeof(out));
}

/* One control operation on vtpmd; a channel failure is PTM_RES_FAIL. */
static uint32_t
sw_vtpmd_ctrl(uint8_t op, const uint8_t *args, size_t alen, uint8_t *data,
    size_t cap, size_t *dlen)
{
	struct timespec dl;
	uint32_t result;
	size_t n = 0;
	int rc;

	guest_deadline_in(&dl, guest_command_timeout_ms());
	rc = guest_ctrl(op, args, alen, &result, data, cap, dlen != NULL ? dlen : &n, &dl);
	if (rc != GUEST_OK) {
		log_warnx("control operation %u: vtpmd did not answer (%s)", op,
		    rc == GUEST_NOT_SENT ? "not reachable; not done" :
		    "lost; it may have been done");
		return PTM_RES_FAIL;
	}
	return result;
}

static void
ctrl_set_datafd(struct sw_conn *c)
{
	struct sw_conn *d = &S.data[SW_DATAFD_SLOT];
	struct stat st;
	int fd = c->passed_fd, fl;

	c->passed_fd = -1;
	if (fd < 0) {
		log_warnx("SET_DATAFD without a file descriptor");
		ctrl_reply_res(c, PTM_RES_BAD_PARAMETER);
		return;
	}
	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
	    (fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		log_warnx("SET_DATAFD: the descriptor is not a usable socket");
		close(fd);
		ctrl_reply_res(c, PTM_RES_BAD_PARAMETER);
		return;
	}
	conn_close(d);
	conn_open(d, fd, SW_DATA);
	log_info("data channel handed over (SET_DATAFD)");
	ctrl_reply_res(c, PTM_RES_OK);
}

static void
ctrl_request(struct sw_conn *c, const struct swtpm_req *req)
{
	uint8_t out[64], data[8], arg[4];
	struct wbuf w;
	size_t olen, dlen = 0;
	uint32_t res;

	wbuf_init(&w, out, sizeof(out));
	switch (req->sr_cmd) {
	case PTM_CMD_GET_CAPABILITY:
		/* the one answer without a result code: u64 caps */
		wbuf_put_u64(&w, SWTPM_CTRL_CAPS);
		break;
	case PTM_CMD_INIT:
		be32_enc(arg, req->sr_u32);
		res = sw_vtpmd_ctrl(CTRL_INIT, arg, 4, data, sizeof(data), NULL);
		if (res == PTM_RES_OK)
			S.stopped = 0;
		log_info("INIT (power cycle): result %u", res);
		wbuf_put_u32(&w, res);
		break;
	case PTM_CMD_SHUTDOWN:
		/* swtpm exits here; vtpm-guest ends the session and keeps serving */
		guest_detach();
		wbuf_put_u32(&w, PTM_RES_OK);
		break;
	case PTM_CMD_GET_TPMESTABLISHED:
		res = sw_vtpmd_ctrl(CTRL_GET_ESTABLISHED, NULL, 0, data, sizeof(data), &dlen);
		if (res == PTM_RES_OK && dlen != 1)
			res = PTM_RES_FAIL;
		wbuf_put_u32(&w, res);
		wbuf_put_u8(&w, res == PTM_RES_OK ? data[0] : 0);
		wbuf_put_u8(&w, 0);
		wbuf_put_u16(&w, 0);
		break;
	case PTM_CMD_SET_LOCALITY:
		S.locality = req->sr_loc;
		wbuf_put_u32(&w, PTM_RES_OK);
		break;
	case PTM_CMD_HASH_START:
		wbuf_put_u32(&w, sw_vtpmd_ctrl(CTRL_HASH_START, NULL, 0, data, sizeof(data), NULL));
		break;
	case PTM_CMD_HASH_DATA:
		wbuf_put_u32(&w, req->sr_data_len == 0 ? PTM_RES_OK :
		    sw_vtpmd_ctrl(CTRL_HASH_DATA, req->sr_data, req->sr_data_len, data,
		    sizeof(data), NULL));
		break;
	case PTM_CMD_HASH_END:
		wbuf_put_u32(&w, sw_vtpmd_ctrl(CTRL_HASH_END, NULL, 0, data, sizeof(data), NULL));
		break;
	case PTM_CMD_CANCEL_TPM_CMD:
		/* commands run one at a time, so none is running here */
		wbuf_put_u32(&w, sw_vtpmd_ctrl(CTRL_CANCEL, NULL, 0, data, sizeof(data), NULL));
		break;
	case PTM_CMD_RESET_TPMESTABLISHED:
		wbuf_put_u32(&w, sw_vtpmd_ctrl(CTRL_RESET_ESTABLISHED, &req->sr_loc, 1, data,
		    sizeof(data), NULL));
		break;
	case PTM_CMD_STOP:
		res = sw_vtpmd_ctrl(CTRL_STOP, NULL, 0, data, sizeof(data), NULL);
		if (res == PTM_RES_OK)
			S.stopped = 1;
		wbuf_put_u32(&w, res);
		break;
	case PTM_CMD_GET_CONFIG:
		wbuf_put_u32(&w, PTM_RES_OK);
		wbuf_put_u32(&w, 0);	/* no file key, no migration key */
		break;
	case PTM_CMD_SET_DATAFD:
		ctrl_set_datafd(c);
		return;
	case PTM_CMD_SET_BUFFERSIZE:
		res = swtpm_ctrl_buffersize(req->sr_u32, S.stopped, &S.bufsize);
		wbuf_put_u32(&w, res);
		wbuf_put_u32(&w, S.bufsize);
		wbuf_put_u32(&w, SWTPM_BUFSIZE_MIN);
		wbuf_put_u32(&w, SWTPM_BUFSIZE_MAX);
		break;
	case PTM_CMD_GET_INFO:
		if (swtpm_ctrl_info(req->sr_info_flags, req->sr_info_offset, S.rsp,
		    sizeof(S.rsp), &olen) != 0)
			fatalx("GET_INFO answer does not fit");
		ctrl_reply(c, S.rsp, olen);
		return;
	default:
		fatalx("swtpm_ctrl_parse passed command 0x%x", req->sr_cmd);
	}
	if (wbuf_end(&w, &olen) != 0)
		fatalx("control answer overflow");
	ctrl_reply(c, out, olen);
}

/* Reads what is there (and any passed fd), then acts on a whole request. */
static void
ctrl_readable(struct sw_conn *c)
{
	union {
		struct cmsghdr	hdr;
		uint8_t		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct swtpm_req req;
	struct cmsghdr *cmsg;
	struct msghdr msg;
	struct iovec iov;
	uint32_t res;
	ssize_t n;
	int fd;

	for (;;) {
		if (c->have == sizeof(c->buf)) {
			log_warnx("control request longer than any command");
			ctrl_reply_res(c, PTM_RES_BAD_PARAMETER);
			conn_close(c);
			return;
		}
		iov.iov_base = c->buf + c->have;
		iov.iov_len = sizeof(c->buf) - c->have;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		for (cmsg = CMSG_FIRSTHDR(&msg); n >= 0 && cmsg != NULL;
		    cmsg = CMSG_NXTHDR(&msg, cmsg)) {
			if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
			    cmsg->cmsg_len != CMSG_LEN(sizeof(int)))
				continue;
			memcpy(&fd, CMSG_DATA(cmsg), sizeof(fd));
			if (c->passed_fd >= 0)
				close(c->passed_fd);
			c->passed_fd = fd;
		}
		if (n > 0 && (msg.msg_flags & MSG_CTRUNC))
			log_warnx("control client passed more descriptors than one");
		if (n <= 0) {
			conn_close(c);	/* EOF or error: the client is gone */
			return;
		}
		c->have += (size_t)n;
	}
	if (c->have == 0)
		return;
	switch (swtpm_ctrl_parse(c->buf, c->have, &req, &res)) {
	case SWTPM_NEED_MORE:
		guest_deadline_in(&c->partial_dl, SW_CTRL_PARTIAL_MS);
		return;
	case SWTPM_BAD:
		log_warnx("malformed control request (%zu bytes, command 0x%x): "
		    "answering %u", c->have, c->have >= 4 ? be32_dec(c->buf) : 0, res);
		ctrl_reply_res(c, res);
		break;
	case SWTPM_REQ:
		log_debug("control command 0x%02x", req.sr_cmd);
		ctrl_request(c, &req);
		break;
	}
	if (c->fd >= 0) {
		c->have = 0;		/* one request per write, nothing after it */
		if (c->passed_fd >= 0) {
			log_warnx("descriptor passed with a command other than SET_DATAFD");
			close(c->passed_fd);
			c->passed_fd = -1;
		}
	}
}

/* ---------- data channel ---------- */

static void
data_reply(struct sw_conn *c, const uint8_t *p, size_t len)
{
	if (write_all(c->fd, p, len) != 0) {
		log_warnx("data client went away before its response");
		conn_close(c);
	}
}

static void
data_command(struct sw_conn *c, size_t len)
{
	struct timespec dl;
	uint8_t err[TPM_FRAME_HDR_LEN];
	size_t rlen;
	int rc;

	guest_deadline_in(&dl, guest_command_timeout_ms());
	rc = guest_tpm_transact(S.locality, c->buf, len, S.rsp, sizeof(S.rsp), &rlen,
	    &dl, NULL, NULL);
	if (rc == GUEST_OK) {
		data_reply(c, S.rsp, rlen);
		return;
	}
	log_warnx("command 0x%x: %s: answering TPM_RC_FAILURE", be32_dec(c->buf + 6),
	    rc == GUEST_NOT_SENT ? "vtpmd not reachable (it did not run)" :
	    "no answer from vtpmd (it may have run)");
	tpm_frame_error(err, TPM_FRAME_RC_FAILURE);
	data_reply(c, err, sizeof(err));
}

static void
data_readable(struct sw_conn *c)
{
	uint8_t err[TPM_FRAME_HDR_LEN];
	size_t total;
	ssize_t n;
	int rc;

	n = recv(c->fd, c->buf + c->have, sizeof(c->buf) - c->have, MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		if (c->have > 0)
			log_warnx("data client closed in the middle of a command");
		conn_close(c);
		return;
	}
	c->have += (size_t)n;
	while (c->fd >= 0 && (rc = tpm_frame_need(c->buf, c->have, S.bufsize, &total)) != 0) {
		if (rc < 0) {
			/* cannot be delimited: answer, run nothing, and hang up */
			log_warnx("data frame with size %u (largest %u): answering "
			    "TPM_RC_COMMAND_SIZE and closing", be32_dec(c->buf + 2), S.bufsize);
			tpm_frame_error(err, TPM_FRAME_RC_COMMAND_SIZE);
			data_reply(c, err, sizeof(err));
			conn_close(c);
			return;
		}
		if (c->have < total)
			break;
		data_command(c, total);
		if (c->fd < 0)
			return;
		memmove(c->buf, c->buf + total, c->have - total);
		c->have -= total;
	}
	if (c->fd >= 0 && c->have > 0)
		guest_deadline_in(&c->partial_dl, SW_DATA_PARTIAL_MS);
}

/* ---------- the front end ---------- */

static void
sw_accept(int lfd, struct sw_conn *slots, int nslots, enum sw_kind kind)
{
	int fd, i;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		for (i = 0; i < nslots && slots[i].fd >= 0; i++)
			;
		if (i == nslots) {
			log_warnx("too many %s connections; refusing one",
			    kind == SW_CTRL ? "control" : "data");
			close(fd);
			continue;
		}
		conn_open(&slots[i], fd, kind);
	}
}

/* Ends requests that stayed incomplete past their bound. */
static void
sw_expire(void)
{
	int i;

	for (i = 0; i < SW_MAX_CTRL; i++) {
		struct sw_conn *c = &S.ctrl[i];

		if (c->fd >= 0 && c->have > 0 && guest_ms_left(&c->partial_dl) == 0) {
			log_warnx("incomplete control request (%zu bytes): answering "
			    "BAD_PARAMETER", c->have);
			ctrl_reply_res(c, PTM_RES_BAD_PARAMETER);
			c->have = 0;
		}
	}
	for (i = 0; i <= SW_MAX_DATA; i++) {
		struct sw_conn *c = &S.data[i];

		if (c->fd >= 0 && c->have > 0 && guest_ms_left(&c->partial_dl) == 0) {
			log_warnx("incomplete TPM command (%zu bytes) on the data "
			    "channel; closing it", c->have);
			conn_close(c);
		}
	}
}

static int
sw_fill(struct pollfd *pfd, int max)
{
	int i, n = 0;

	if (max < 2 + SW_MAX_CTRL + SW_MAX_DATA + 1)
		fatalx("poll set too small");
	pfd[n].fd = S.ctrl_lfd;
	pfd[n++].events = POLLIN;
	pfd[n].fd = S.data_lfd;
	pfd[n++].events = POLLIN;
	for (i = 0; i < SW_MAX_CTRL; i++) {
		pfd[n].fd = S.ctrl[i].fd;
		pfd[n++].events = POLLIN;
	}
	for (i = 0; i <= SW_MAX_DATA; i++) {
		pfd[n].fd = S.data[i].fd;
		pfd[n++].events = POLLIN;
	}
	return n;
}

static void
sw_dispatch(const struct pollfd *pfd, int n)
{
	const short ev = POLLIN | POLLHUP | POLLERR;
	int i;

	for (i = 0; i < SW_MAX_CTRL; i++) {
		const struct pollfd *p = &pfd[2 + i];

		if (p->fd >= 0 && p->fd == S.ctrl[i].fd && (p->revents & ev))
			ctrl_readable(&S.ctrl[i]);
	}
	for (i = 0; i <= SW_MAX_DATA; i++) {
		const struct pollfd *p = &pfd[2 + SW_MAX_CTRL + i];

		if (p->fd >= 0 && p->fd == S.data[i].fd && (p->revents & ev))
			data_readable(&S.data[i]);
	}
	if (pfd[0].revents & POLLIN)
		sw_accept(S.ctrl_lfd, S.ctrl, SW_MAX_CTRL, SW_CTRL);
	if (pfd[1].revents & POLLIN)
		sw_accept(S.data_lfd, S.data, SW_MAX_DATA, SW_DATA);
	sw_expire();
}

static void
sw_stop(void)
{
	int i;

	for (i = 0; i < SW_MAX_CTRL; i++)
		conn_close(&S.ctrl[i]);
	for (i = 0; i <= SW_MAX_DATA; i++)
		conn_close(&S.data[i]);
	if (S.ctrl_lfd >= 0) {
		close(S.ctrl_lfd);
		unlink(S.ctrl_path);
	}
	if (S.data_lfd >= 0) {
		close(S.data_lfd);
		unlink(S.data_path);
	}
	S.ctrl_lfd = S.data_lfd = -1;
}

static const struct guest_fe swtpm_fe = {
	.fe_name	= "swtpm endpoint",
	.fe_fill	= sw_fill,
	.fe_dispatch	= sw_dispatch,
	.fe_stop	= sw_stop,
};

static int
sw_listen(const char *path)
{
	struct endpoint ep;
	int fd, rc;

	memset(&ep, 0, sizeof(ep));
	ep.kind = EP_UNIX;
	if (strlen(path) > ENDPOINT_PATH_MAX)
		fatalx("--swtpm %s: path too long (the control socket adds \".ctrl\")", path);
	memcpy(ep.path, path, strlen(path) + 1);
	if ((rc = endpoint_listen(&ep, 0660, &fd)) != 0)
		fatalx("cannot listen on %s: %s", path, vtpm_strerror(rc));
	return fd;
}

void
swtpm_srv_start(const char *path)
{
	int i;

	if (snprintf(S.data_path, sizeof(S.data_path), "%s", path) >= (int)sizeof(S.data_path) ||
	    snprintf(S.ctrl_path, sizeof(S.ctrl_path), "%s.ctrl", path) >=
	    (int)sizeof(S.ctrl_path))
		fatalx("--swtpm %s: path too long (the control socket adds \".ctrl\")", path);
	for (i = 0; i < SW_MAX_CTRL; i++)
		S.ctrl[i].fd = S.ctrl[i].passed_fd = -1;
	for (i = 0; i <= SW_MAX_DATA; i++)
		S.data[i].fd = S.data[i].passed_fd = -1;
	S.data_lfd = sw_listen(S.data_path);
	S.ctrl_lfd = sw_listen(S.ctrl_path);
	guest_fe_add(&swtpm_fe);
	log_info("serving a swtpm-compatible TPM: data %s, control %s", S.data_path,
	    S.ctrl_path);
}
