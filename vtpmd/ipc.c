/*
 * ipc.c: one-packet-per-message IPC over SOCK_SEQPACKET, with fd passing.
 * Trusts nothing received: the header and the packet size are checked here,
 * every body is parsed by its receiver with the cursor.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cursor.h"
#include "ipc.h"

int
ipc_send2(int sock, uint8_t type, const void *a, size_t alen, const void *b,
    size_t blen, int pass_fd)
{
	uint8_t hdr[IPC_HDR_LEN] = { type, 0, 0, 0 };
	struct iovec iov[3];
	struct msghdr msg;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	ssize_t n;

	if (alen + blen > IPC_MAX_MSG - IPC_HDR_LEN)
		return VTPM_E_TOOBIG;
	iov[0].iov_base = hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = (void *)a;
	iov[1].iov_len = alen;
	iov[2].iov_base = (void *)b;
	iov[2].iov_len = blen;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = 3;
	if (pass_fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		cm.hdr.cmsg_len = CMSG_LEN(sizeof(int));
		cm.hdr.cmsg_level = SOL_SOCKET;
		cm.hdr.cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(&cm.hdr), &pass_fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE || errno == ECONNRESET ? VTPM_E_CLOSED : VTPM_E_IO;
	if ((size_t)n != sizeof(hdr) + alen + blen)
		return VTPM_E_IO;
	return 0;
}

int
ipc_send(int sock, uint8_t type, const void *body, size_t len, int pass_fd)
{
	return ipc_send2(sock, type, body, len, NULL, 0, pass_fd);
}

int
ipc_recv(int sock, uint8_t *buf, size_t cap, uint8_t *type, const uint8_t **body,
    size_t *blen, int *fd_out)
{
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *c;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	ssize_t n;
	int fd;

	*fd_out = -1;
	iov.iov_base = buf;
	iov.iov_len = cap;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return VTPM_E_AGAIN;
		return errno == ECONNRESET ? VTPM_E_CLOSED : VTPM_E_IO;
	}
	/* Collect any passed fds first so none leaks on an error path. */
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t i, nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (i = 0; i < nfd; i++) {
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (*fd_out < 0)
					*fd_out = fd;
				else
					close(fd);
			}
		}
	}
	if (n == 0) {
		if (*fd_out >= 0)
			close(*fd_out);
		*fd_out = -1;
		return VTPM_E_CLOSED;
	}
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n < IPC_HDR_LEN ||
	    buf[1] != 0 || buf[2] != 0 || buf[3] != 0) {
		if (*fd_out >= 0)
			close(*fd_out);
		*fd_out = -1;
		return VTPM_E_FORMAT;
	}
	*type = buf[0];
	*body = buf + IPC_HDR_LEN;
	*blen = (size_t)n - IPC_HDR_LEN;
	return 0;
}

#define WS(x)	(1u << (x))

/* Who may send what, when: the worker side of the table in ipc.h. */
static const struct ipc_rule {
	uint8_t		type;
	uint32_t	states;
	size_t		minlen;
	size_t		maxlen;
} worker_rules[] = {
	{ IPC_READY,       WS(IPC_WS_STARTING),					5, 5 },
	{ IPC_STORE,       WS(IPC_WS_STARTING) | WS(IPC_WS_ACTIVE) | WS(IPC_WS_STOPPING),
									6, 5 + IPC_MAX_BLOB },
	{ IPC_SESSION_END, WS(IPC_WS_ACTIVE) | WS(IPC_WS_STOPPING),		1, 1 },
	{ IPC_STOPPED,     WS(IPC_WS_STOPPING),					1, 1 },
	{ IPC_EK_PUBS,     WS(IPC_WS_STARTING),				4, 4 + 2 * IPC_EK_PUB_MAX },
	{ IPC_STATS,       WS(IPC_WS_ACTIVE) | WS(IPC_WS_STOPPING),		4, 4 },
	{ IPC_STORE_RSP,   WS(IPC_WS_ACTIVE) | WS(IPC_WS_STOPPING),
							8 + 2 + 3 + 4 + 1,
							8 + 2 + IPC_MAX_HELD + 4 + IPC_MAX_BLOB },
};

int
ipc_worker_msg_allowed(uint8_t type, enum ipc_worker_state ws, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(worker_rules) / sizeof(worker_rules[0]); i++) {
		const struct ipc_rule *r = &worker_rules[i];

		if (r->type != type)
			continue;
		if ((unsigned)ws > IPC_WS_DEAD || !(r->states & WS(ws)))
			return VTPM_E_PROTO;
		if (len < r->minlen || len > r->maxlen)
			return VTPM_E_FORMAT;
		return 0;
	}
	return VTPM_E_PROTO;
}

int
ipc_parse_store(const uint8_t *body, size_t len, enum ipc_worker_state ws,
    uint8_t *btype, const uint8_t **blob, size_t *blen)
{
	struct cursor cur;
	uint32_t n;

	cur_init(&cur, body, len);
	if (cur_get_u8(&cur, btype) != 0 || cur_get_u32(&cur, &n) != 0 ||
	    n == 0 || n > IPC_MAX_BLOB || cur_get_ref(&cur, blob, n) != 0 ||
	    cur_end(&cur) != 0)
		return VTPM_E_FORMAT;
	if (*btype == IPC_BLOB_VOLATILE ? ws != IPC_WS_STOPPING : *btype != IPC_BLOB_PERMANENT)
		return VTPM_E_PROTO;
	*blen = n;
	return 0;
}

/* The frame area of an IPC_STORE_RSP: whole channel frames, no more than allowed. */
static int
ipc_check_frames(const uint8_t *p, size_t len)
{
	struct cursor cur;
	uint16_t n;
	int nframes = 0;

	cur_init(&cur, p, len);
	while (cur_left(&cur) > 0) {
		if (++nframes > IPC_MAX_HELD_FRAMES || cur_get_u16(&cur, &n) != 0 ||
		    n == 0 || cur_skip(&cur, n) != 0)
			return VTPM_E_FORMAT;
	}
	return nframes > 0 ? 0 : VTPM_E_FORMAT;
}

int
ipc_parse_store_rsp(const uint8_t *body, size_t len, uint64_t *gen,
    const uint8_t **frames, size_t *flen, const uint8_t **blob, size_t *blen)
{
	struct cursor cur;
	uint16_t fl;
	uint32_t n;

	cur_init(&cur, body, len);
	if (cur_get_u64(&cur, gen) != 0 || *gen == 0 ||
	    cur_get_u16(&cur, &fl) != 0 || fl == 0 || fl > IPC_MAX_HELD ||
	    cur_get_ref(&cur, frames, fl) != 0 ||
	    cur_get_u32(&cur, &n) != 0 || n == 0 || n > IPC_MAX_BLOB ||
	    cur_get_ref(&cur, blob, n) != 0 || cur_end(&cur) != 0)
		return VTPM_E_FORMAT;
	if (ipc_check_frames(*frames, fl) != 0)
		return VTPM_E_FORMAT;
	*flen = fl;
	*blen = n;
	return 0;
}
