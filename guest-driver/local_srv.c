/*
 * local_srv.c: vtpm-guest's local socket (docs/LOCAL-PROTOCOL.md), served
 * to the TCTI plugin and other local clients. Trusts nothing from a client
 * beyond one request at a time: frames go through local_proto.c's checks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "cursor.h"
#include "guest.h"
#include "local_proto.h"
#include "log.h"
#include "tcti_vtpm.h"

#define LOCAL_MAX_CLIENTS	64
#define LOCAL_REQ_MAX		(VTPM_LOCAL_HDR_LEN + VTPM_LOCAL_MAX_BODY)

struct client {
	int	fd;
	int	nreq;		/* requests served: HELLO must be the first */
	uint8_t	buf[LOCAL_REQ_MAX];
	size_t	have;
};

static struct local_srv {
	const char	*path;
	int		 lfd;
	struct client	 clients[LOCAL_MAX_CLIENTS];
	uint8_t		 rsp[VTPM_LOCAL_MAX_BODY];
} L = { .lfd = -1 };

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
	struct timespec deadline;
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
		guest_deadline_in(&deadline, guest_command_timeout_ms());
		rc = guest_tpm_transact(body[0], body + 1, len - 1, L.rsp, sizeof(L.rsp),
		    &rlen, &deadline, NULL, NULL);
		if (rc != GUEST_OK)
			(void)client_reply(c, VTPM_LOCAL_STATUS_TPM_UNAVAIL, NULL, 0);
		else
			(void)client_reply(c, VTPM_LOCAL_STATUS_OK, L.rsp, rlen);
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

static void
local_accept(void)
{
	int fd, i;

	while ((fd = accept4(L.lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		for (i = 0; i < LOCAL_MAX_CLIENTS && L.clients[i].fd >= 0; i++)
			;
		if (i == LOCAL_MAX_CLIENTS) {
			log_warnx("too many local clients; refusing one");
			close(fd);
			continue;
		}
		L.clients[i].fd = fd;
		L.clients[i].have = 0;
		L.clients[i].nreq = 0;
	}
}

static int
local_fill(struct pollfd *pfd, int max)
{
	int i, n = 0;

	if (max < 1 + LOCAL_MAX_CLIENTS)
		fatalx("poll set too small");
	pfd[n].fd = L.lfd;
	pfd[n++].events = POLLIN;
	for (i = 0; i < LOCAL_MAX_CLIENTS; i++) {
		pfd[n].fd = L.clients[i].fd;	/* -1: ignored by poll */
		pfd[n++].events = POLLIN;
	}
	return n;
}

static void
local_dispatch(const struct pollfd *pfd, int n)
{
	int i;

	for (i = 1; i < n; i++)
		if (pfd[i].fd >= 0 && pfd[i].fd == L.clients[i - 1].fd &&
		    (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			client_readable(&L.clients[i - 1]);
	if (pfd[0].revents & POLLIN)
		local_accept();
}

static void
local_stop(void)
{
	int i;

	for (i = 0; i < LOCAL_MAX_CLIENTS; i++)
		if (L.clients[i].fd >= 0)
			client_close(&L.clients[i]);
	if (L.lfd >= 0) {
		close(L.lfd);
		L.lfd = -1;
		unlink(L.path);
	}
}

static const struct guest_fe local_fe = {
	.fe_name	= "local socket",
	.fe_fill	= local_fill,
	.fe_dispatch	= local_dispatch,
	.fe_stop	= local_stop,
};

void
local_srv_start(const char *path)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, i;

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
	for (i = 0; i < LOCAL_MAX_CLIENTS; i++)
		L.clients[i].fd = -1;
	L.path = path;
	L.lfd = fd;
	guest_fe_add(&local_fe);
	log_info("serving the TPM on %s", path);
}
