/*
 * local_srv.c: vtpm-guest's local socket (docs/LOCAL-PROTOCOL.md), served
 * to the TCTI plugin and other local clients. Trusts nothing from a client
 * beyond one request at a time: frames go through local_proto.c's checks,
 * TPM commands through the resource manager (rm.c) unless the client asked
 * for the raw TPM. Each poll round serves at most one request per client,
 * and only whole requests: a slow client delays the others by at most one
 * command.
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
#include "rm.h"
#include "tcti_vtpm.h"

#define LOCAL_MAX_CLIENTS	64
#define LOCAL_REQ_MAX		(VTPM_LOCAL_HDR_LEN + VTPM_LOCAL_MAX_BODY)

struct client {
	int	fd;
	int	nreq;		/* requests served: HELLO must be the first */
	int	raw;		/* HELLO granted RAW: no resource manager */
	struct rm_conn *rm;	/* its objects and sessions */
	uint8_t	buf[LOCAL_REQ_MAX];
	size_t	have;
};

static struct local_srv {
	const char	*path;
	int		 lfd;
	int		 deny_raw;	/* --no-raw */
	struct client	 clients[LOCAL_MAX_CLIENTS];
	uint8_t		 rsp[VTPM_LOCAL_MAX_BODY];
} L = { .lfd = -1 };

/* One TPM command for the resource manager, or for a raw client. */
struct local_io {
	uint8_t		io_loc;
	struct timespec	io_deadline;
};

static int
local_tpm(void *arg, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap,
    size_t *rlen)
{
	struct local_io *io = arg;

	return guest_tpm_transact(io->io_loc, cmd, len, rsp, cap, rlen,
	    &io->io_deadline, NULL, NULL) == GUEST_OK ? 0 : -1;
}

/* Closes the connection; the resource manager flushes what it had loaded. */
static void
client_close_within(struct client *c, int ms)
{
	struct local_io io;

	if (c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	c->have = 0;
	io.io_loc = 0;
	guest_deadline_in(&io.io_deadline, ms);
	rm_conn_close(c->rm, local_tpm, &io);
	c->rm = NULL;
}

static void
client_close(struct client *c)
{
	client_close_within(c, guest_command_timeout_ms());
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
		if (n <= 0) {
			/* a client that waits for its answer always has room
			 * for it (EAGAIN: it is sending without reading) */
			client_close(c);
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

static void
client_request(struct client *c, uint32_t op, const uint8_t *body, size_t len)
{
	uint8_t hello[VTPM_LOCAL_HELLO_LEN];
	struct local_io io;
	size_t rlen;
	int rc;

	switch (op) {
	case VTPM_LOCAL_OP_HELLO:
		if (len != VTPM_LOCAL_HELLO_LEN || c->nreq != 1 ||
		    be32_dec(body) != VTPM_LOCAL_VERSION) {
			(void)client_reply(c, VTPM_LOCAL_STATUS_BAD_REQUEST, NULL, 0);
			return;
		}
		c->raw = (be32_dec(body + 4) & VTPM_LOCAL_HELLO_RAW) && !L.deny_raw;
		be32_enc(hello, VTPM_LOCAL_VERSION);
		be32_enc(hello + 4, c->raw ? VTPM_LOCAL_HELLO_RAW : 0);
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
		io.io_loc = body[0];
		guest_deadline_in(&io.io_deadline, guest_command_timeout_ms());
		if (c->raw)
			rc = local_tpm(&io, body + 1, len - 1, L.rsp, sizeof(L.rsp), &rlen);
		else
			rc = rm_command(c->rm, body + 1, len - 1, L.rsp, sizeof(L.rsp),
			    &rlen, local_tpm, &io);
		if (rc != 0)
			(void)client_reply(c, VTPM_LOCAL_STATUS_TPM_UNAVAIL, NULL, 0);
		else
			(void)client_reply(c, VTPM_LOCAL_STATUS_OK, L.rsp, rlen);
		return;
	}
	(void)client_reply(c, VTPM_LOCAL_STATUS_BAD_REQUEST, NULL, 0);
}

/* 1 if a whole request is buffered (or a bad one: it must be answered). */
static int
client_has_request(const struct client *c)
{
	const uint8_t *body;
	uint32_t op, len;
	size_t used;

	return local_request_next(c->buf, c->have, &op, &body, &len, &used) != 0;
}

/* Reads what the client sent, unless a whole request waits already. */
static void
client_read(struct client *c)
{
	ssize_t n;

	if (client_has_request(c))
		return;
	n = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		client_close(c);
		return;
	}
	c->have += (size_t)n;
}

/* Serves one buffered request, if a whole one is there. */
static void
client_serve_one(struct client *c)
{
	const uint8_t *body;
	uint32_t op, len;
	size_t used;
	int rc;

	rc = local_request_next(c->buf, c->have, &op, &body, &len, &used);
	if (rc == 0)
		return;
	if (rc < 0) {
		log_warnx("local client announced an oversized request; closing it");
		if (client_reply(c, VTPM_LOCAL_STATUS_BAD_REQUEST, NULL, 0) == 0)
			client_close(c);
		return;
	}
	c->nreq++;
	client_request(c, op, body, len);
	if (c->fd < 0)
		return;
	memmove(c->buf, c->buf + used, c->have - used);
	c->have -= used;
}

static void
local_accept(void)
{
	int fd, i;

	while ((fd = accept4(L.lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		for (i = 0; i < LOCAL_MAX_CLIENTS && L.clients[i].fd >= 0; i++)
			;
		if (i == LOCAL_MAX_CLIENTS) {
			log_warnx("too many local clients; refusing one");
			close(fd);
			continue;
		}
		if ((L.clients[i].rm = rm_conn_new()) == NULL) {
			log_warnx("out of memory; refusing a local client");
			close(fd);
			continue;
		}
		L.clients[i].fd = fd;
		L.clients[i].have = 0;
		L.clients[i].nreq = 0;
		L.clients[i].raw = 0;
	}
}

/*
 * A client with a whole request buffered is polled for POLLOUT too (its
 * socket is writable: poll returns at once), so that its next request is
 * served in the next round, after everybody else's.
 */
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
		pfd[n++].events = POLLIN | (L.clients[i].fd >= 0 &&
		    client_has_request(&L.clients[i]) ? POLLOUT : 0);
	}
	return n;
}

static void
local_dispatch(const struct pollfd *pfd, int n)
{
	struct client *c;
	int i;

	for (i = 1; i < n; i++) {
		c = &L.clients[i - 1];
		if (pfd[i].fd < 0 || pfd[i].fd != c->fd ||
		    !(pfd[i].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR)))
			continue;
		client_read(c);
		if (c->fd >= 0)
			client_serve_one(c);
	}
	if (pfd[0].revents & POLLIN)
		local_accept();
}

static void
local_stop(void)
{
	int i;

	for (i = 0; i < LOCAL_MAX_CLIENTS; i++)
		if (L.clients[i].fd >= 0)
			client_close_within(&L.clients[i], 2000);
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
local_srv_deny_raw(void)
{
	L.deny_raw = 1;
}

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
