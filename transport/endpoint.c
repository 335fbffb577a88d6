/*
 * endpoint.c: parse and format endpoint specs; listen on and connect to them,
 * including the hybrid-vsock CONNECT/OK handshake of Firecracker and Cloud
 * Hypervisor. Trusts the spec only after endpoint_parse() checked it, and
 * trusts nothing in the VMM's reply line: bounded, byte by byte, exact syntax.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/vm_sockets.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "endpoint.h"

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

enum dial_state { DIAL_IDLE = 0, DIAL_CONNECT, DIAL_HV_SEND, DIAL_HV_RECV, DIAL_DONE };

/* close() that keeps errno for the caller's error report. */
static void
close_keep_errno(int fd)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	errno = saved;
}

/*
 * Parsing.
 */

/* Exactly n decimal digits (1..10), value <= max. No sign, space or base prefix. */
static int
parse_u32(const char *s, size_t n, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 10)
		return VTPM_E_INVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return VTPM_E_INVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return VTPM_E_INVAL;
	*out = (uint32_t)v;
	return 0;
}

static int
copy_path(char *dst, const char *s, size_t n)
{
	if (n == 0 || memchr(s, '\0', n) != NULL)
		return VTPM_E_INVAL;
	if (n > ENDPOINT_PATH_MAX)
		return VTPM_E_TOOBIG;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

static int
host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

/* A DNS name: labels of letters, digits and '-', separated by single dots. */
static int
host_is_dns_name(const char *host)
{
	size_t i, label = 0;

	for (i = 0; host[i] != '\0'; i++) {
		char ch = host[i];

		if (ch == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-') {
			if (ch == '-' && label == 0)
				return 0;
			label++;
		} else
			return 0;
	}
	return i > 0;
}

/* "HOST:PORT" or "[V6]:PORT" or "V6:PORT" (split at the last colon). */
static int
parse_tcp(const char *s, int allow_remote, struct endpoint *ep)
{
	struct in6_addr a6;
	struct in_addr a4;
	const char *colon = strrchr(s, ':');
	const char *h;
	size_t hlen;
	int r, bracketed = 0;

	if (colon == NULL)
		return VTPM_E_INVAL;
	if ((r = parse_u32(colon + 1, strlen(colon + 1), 65535, &ep->port)) != 0)
		return r;
	h = s;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
		bracketed = 1;
	}
	if (hlen == 0)
		return VTPM_E_INVAL;
	if (hlen > ENDPOINT_HOST_MAX)
		return VTPM_E_TOOBIG;
	memcpy(ep->host, h, hlen);
	ep->host[hlen] = '\0';

	if (inet_pton(AF_INET6, ep->host, &a6) == 1) {
		/* fine, bracketed or not */
	} else if (bracketed || memchr(ep->host, ':', hlen) != NULL ||
	    memchr(ep->host, '[', hlen) != NULL || memchr(ep->host, ']', hlen) != NULL) {
		return VTPM_E_INVAL;
	} else if (inet_pton(AF_INET, ep->host, &a4) != 1 &&
	    !host_is_dns_name(ep->host)) {
		return VTPM_E_INVAL;
	}
	if (!allow_remote && !host_is_loopback(ep->host))
		return VTPM_E_INVAL;
	return 0;
}

static int
parse_body(const char *spec, int allow_remote, struct endpoint *ep)
{
	const char *s, *colon;
	int r;

	if (strncmp(spec, "unix:", 5) == 0) {
		s = spec + 5;
		ep->kind = EP_UNIX;
		return copy_path(ep->path, s, strlen(s));
	}
	if (strncmp(spec, "vsock:", 6) == 0) {
		s = spec + 6;
		ep->kind = EP_VSOCK;
		colon = strchr(s, ':');
		if (colon == NULL) {
			ep->cid = ENDPOINT_CID_ANY;
			return parse_u32(s, strlen(s), UINT32_MAX - 1, &ep->port);
		}
		if ((r = parse_u32(s, (size_t)(colon - s), UINT32_MAX - 1, &ep->cid)) != 0)
			return r;
		return parse_u32(colon + 1, strlen(colon + 1), UINT32_MAX - 1, &ep->port);
	}
	if (strncmp(spec, "tcp:", 4) == 0) {
		ep->kind = EP_TCP;
		return parse_tcp(spec + 4, allow_remote, ep);
	}
	if (strncmp(spec, "hvsock:", 7) == 0) {
		s = spec + 7;
		ep->kind = EP_HVSOCK;
		colon = strrchr(s, ':');
		if (colon == NULL)
			return VTPM_E_INVAL;
		if ((r = parse_u32(colon + 1, strlen(colon + 1), UINT32_MAX - 1, &ep->port)) != 0)
			return r;
		return copy_path(ep->path, s, (size_t)(colon - s));
	}
	return VTPM_E_INVAL;
}

int
endpoint_parse(const char *spec, int allow_remote, struct endpoint *ep)
{
	int r;

	memset(ep, 0, sizeof(*ep));
	if (spec == NULL)
		return VTPM_E_INVAL;
	if ((r = parse_body(spec, allow_remote, ep)) != 0)
		memset(ep, 0, sizeof(*ep));
	return r;
}

int
endpoint_format(const struct endpoint *ep, char *buf, size_t cap)
{
	int n;

	switch (ep->kind) {
	case EP_UNIX:
		n = snprintf(buf, cap, "unix:%s", ep->path);
		break;
	case EP_VSOCK:
		if (ep->cid == ENDPOINT_CID_ANY)
			n = snprintf(buf, cap, "vsock:%u", ep->port);
		else
			n = snprintf(buf, cap, "vsock:%u:%u", ep->cid, ep->port);
		break;
	case EP_TCP:
		n = snprintf(buf, cap, strchr(ep->host, ':') != NULL ?
		    "tcp:[%s]:%u" : "tcp:%s:%u", ep->host, ep->port);
		break;
	case EP_HVSOCK:
		n = snprintf(buf, cap, "hvsock:%s:%u", ep->path, ep->port);
		break;
	default:
		if (cap > 0)
			buf[0] = '\0';
		return VTPM_E_INVAL;
	}
	if (n < 0 || (size_t)n >= cap) {
		if (cap > 0)
			buf[0] = '\0';
		return VTPM_E_TOOBIG;
	}
	return 0;
}

/*
 * Addresses.
 */

static socklen_t
addr_unix(struct sockaddr_storage *ss, const char *path)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;

	memset(ss, 0, sizeof(*ss));
	sun->sun_family = AF_UNIX;
	/* endpoint_parse() bounded path to sizeof(sun_path) - 1. */
	memcpy(sun->sun_path, path, strnlen(path, sizeof(sun->sun_path) - 1));
	return (socklen_t)sizeof(*sun);
}

static socklen_t
addr_vsock(struct sockaddr_storage *ss, uint32_t cid, uint32_t port)
{
	struct sockaddr_vm *svm = (struct sockaddr_vm *)ss;

	memset(ss, 0, sizeof(*ss));
	svm->svm_family = AF_VSOCK;
	svm->svm_cid = cid;
	svm->svm_port = port;
	return (socklen_t)sizeof(*svm);
}

static socklen_t
addr_in4(struct sockaddr_storage *ss, const struct in_addr *a, uint32_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_addr = *a;
	sin->sin_port = htons((uint16_t)port);
	return (socklen_t)sizeof(*sin);
}

static socklen_t
addr_in6(struct sockaddr_storage *ss, const struct in6_addr *a, uint32_t port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = *a;
	sin6->sin6_port = htons((uint16_t)port);
	return (socklen_t)sizeof(*sin6);
}

/*
 * The addresses of a tcp endpoint, at most max. Literals and "localhost"
 * never reach the resolver ("localhost" is 127.0.0.1 then ::1, whatever
 * /etc/hosts says); only names allowed by allow_remote do.
 */
static int
resolve_tcp(const struct endpoint *ep, struct sockaddr_storage *ss,
    socklen_t *len, unsigned max, unsigned *n)
{
	struct addrinfo hints, *res, *ai;
	struct in_addr a4;
	struct in6_addr a6;

	*n = 0;
	if (strcmp(ep->host, "localhost") == 0) {
		a4.s_addr = htonl(INADDR_LOOPBACK);
		len[(*n)] = addr_in4(&ss[*n], &a4, ep->port);
		(*n)++;
		if (*n < max) {
			len[*n] = addr_in6(&ss[*n], &in6addr_loopback, ep->port);
			(*n)++;
		}
		return 0;
	}
	if (inet_pton(AF_INET, ep->host, &a4) == 1) {
		len[0] = addr_in4(&ss[0], &a4, ep->port);
		*n = 1;
		return 0;
	}
	if (inet_pton(AF_INET6, ep->host, &a6) == 1) {
		len[0] = addr_in6(&ss[0], &a6, ep->port);
		*n = 1;
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	if (getaddrinfo(ep->host, NULL, &hints, &res) != 0)
		return VTPM_E_NOTFOUND;
	for (ai = res; ai != NULL && *n < max; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET)
			len[*n] = addr_in4(&ss[*n],
			    &((struct sockaddr_in *)ai->ai_addr)->sin_addr, ep->port);
		else if (ai->ai_family == AF_INET6)
			len[*n] = addr_in6(&ss[*n],
			    &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, ep->port);
		else
			continue;
		(*n)++;
	}
	freeaddrinfo(res);
	return *n > 0 ? 0 : VTPM_E_NOTFOUND;
}

/* VTPM_E_UNSUPPORTED for a family this kernel lacks, else VTPM_E_IO. errno kept. */
static int
socket_error(void)
{
	return errno == EAFNOSUPPORT ? VTPM_E_UNSUPPORTED : VTPM_E_IO;
}

/*
 * Listening.
 */

/* Removes PATH if it is a socket with no listener; refuses anything else. */
static int
unix_remove_stale(const char *path)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct stat st;
	int fd, r;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : VTPM_E_IO;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return VTPM_E_EXISTS;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		return VTPM_E_IO;
	len = addr_unix(&ss, path);
	r = connect(fd, (struct sockaddr *)&ss, len);
	if (r == 0 || errno == EAGAIN) {
		close(fd);
		errno = EADDRINUSE;
		return VTPM_E_BUSY;
	}
	if (errno != ECONNREFUSED) {
		close_keep_errno(fd);
		return VTPM_E_IO;
	}
	close(fd);
	if (unlink(path) == -1 && errno != ENOENT)
		return VTPM_E_IO;
	return 0;
}

static int
listen_unix(const struct endpoint *ep, int mode, int *fd)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int s, r;

	if ((r = unix_remove_stale(ep->path)) != 0)
		return r;
	if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		return VTPM_E_IO;
	len = addr_unix(&ss, ep->path);
	if (bind(s, (struct sockaddr *)&ss, len) == -1) {
		close_keep_errno(s);
		return VTPM_E_IO;
	}
	/* Before listen(): until then every connect() is refused anyway. */
	if ((mode >= 0 && chmod(ep->path, (mode_t)mode) == -1) ||
	    listen(s, SOMAXCONN) == -1) {
		int saved = errno;

		unlink(ep->path);
		close(s);
		errno = saved;
		return VTPM_E_IO;
	}
	*fd = s;
	return 0;
}

static int
listen_inet(const struct endpoint *ep, int *fd)
{
	struct sockaddr_storage ss[1];
	socklen_t len[1];
	unsigned n;
	int s, r, one = 1;

	if ((r = resolve_tcp(ep, ss, len, 1, &n)) != 0)
		return r;
	if ((s = socket(ss[0].ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		return socket_error();
	if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (ss[0].ss_family == AF_INET6 &&
	    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(s, (struct sockaddr *)&ss[0], len[0]) == -1 ||
	    listen(s, SOMAXCONN) == -1) {
		close_keep_errno(s);
		return VTPM_E_IO;
	}
	*fd = s;
	return 0;
}

static int
listen_vsock(const struct endpoint *ep, int *fd)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int s;

	if ((s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		return socket_error();
	len = addr_vsock(&ss, ep->cid, ep->port);
	if (bind(s, (struct sockaddr *)&ss, len) == -1 || listen(s, SOMAXCONN) == -1) {
		close_keep_errno(s);
		return VTPM_E_IO;
	}
	*fd = s;
	return 0;
}

int
endpoint_listen(const struct endpoint *ep, int mode, int *fd)
{
	*fd = -1;
	switch (ep->kind) {
	case EP_UNIX:
		if (mode < -1 || mode > 0777)
			return VTPM_E_INVAL;
		return listen_unix(ep, mode, fd);
	case EP_TCP:
		return listen_inet(ep, fd);
	case EP_VSOCK:
		return listen_vsock(ep, fd);
	case EP_HVSOCK:
		return VTPM_E_UNSUPPORTED;
	}
	return VTPM_E_INVAL;
}

int
endpoint_local_port(int fd, uint32_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return VTPM_E_IO;
	switch (ss.ss_family) {
	case AF_INET:
		*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		return 0;
	case AF_INET6:
		*port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		return 0;
	case AF_VSOCK:
		*port = ((struct sockaddr_vm *)&ss)->svm_port;
		return 0;
	}
	return VTPM_E_INVAL;
}

/*
 * Dialling: a small state machine so that one event loop can connect many
 * sockets at once; endpoint_connect() drives the same machine with poll().
 *
 *	CONNECT		nonblocking connect() in progress: wait for POLLOUT,
 *			read SO_ERROR; on failure try the next address
 *	HV_SEND		hvsock only: write "CONNECT <port>\n"
 *	HV_RECV		hvsock only: read the reply one byte at a time up to
 *			'\n' (so no byte of the stream after it is consumed),
 *			at most ENDPOINT_HV_REPLY_MAX bytes, then check it is
 *			exactly "OK " <u32 in decimal, no leading zero> "\n"
 *	DONE		the fd belongs to the caller
 */

static void
dial_close(struct endpoint_dial *d)
{
	close_keep_errno(d->ed_fd);
	d->ed_fd = -1;
	d->ed_events = 0;
}

static int
dial_fail(struct endpoint_dial *d, int err, int *fd)
{
	dial_close(d);
	d->ed_state = DIAL_DONE;
	*fd = -1;
	return err;
}

static int
dial_done(struct endpoint_dial *d, int *fd)
{
	*fd = d->ed_fd;
	d->ed_fd = -1;
	d->ed_events = 0;
	d->ed_state = DIAL_DONE;
	return 0;
}

/* "OK " then 1..10 digits without a leading zero, value <= UINT32_MAX. */
static int
hv_reply_ok(const char *line, size_t len)
{
	uint32_t port;

	if (len < 4 || memcmp(line, "OK ", 3) != 0)
		return 0;
	if (line[3] == '0' && len > 4)
		return 0;
	return parse_u32(line + 3, len - 3, UINT32_MAX, &port) == 0;
}

static int
dial_hv_recv(struct endpoint_dial *d, int *fd)
{
	char ch;
	ssize_t n;

	for (;;) {
		n = recv(d->ed_fd, &ch, 1, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			d->ed_events = POLLIN;
			return VTPM_E_AGAIN;
		}
		if (n == -1)
			return dial_fail(d, VTPM_E_IO, fd);
		if (n == 0) {
			errno = ECONNREFUSED;
			return dial_fail(d, VTPM_E_CLOSED, fd);
		}
		d->ed_line[d->ed_linelen++] = ch;
		if (ch == '\n')
			break;
		if (d->ed_linelen == sizeof(d->ed_line)) {
			errno = EPROTO;
			return dial_fail(d, VTPM_E_TOOBIG, fd);
		}
	}
	if (!hv_reply_ok(d->ed_line, d->ed_linelen - 1)) {
		errno = EPROTO;
		return dial_fail(d, VTPM_E_FORMAT, fd);
	}
	return dial_done(d, fd);
}

static int
dial_hv_send(struct endpoint_dial *d, int *fd)
{
	ssize_t n;

	while (d->ed_reqoff < d->ed_reqlen) {
		n = send(d->ed_fd, d->ed_req + d->ed_reqoff,
		    d->ed_reqlen - d->ed_reqoff, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			d->ed_events = POLLOUT;
			return VTPM_E_AGAIN;
		}
		if (n == -1)
			return dial_fail(d, VTPM_E_IO, fd);
		d->ed_reqoff += (size_t)n;
	}
	d->ed_state = DIAL_HV_RECV;
	return dial_hv_recv(d, fd);
}

/* The socket is connected: set options, start the handshake if any. */
static int
dial_connected(struct endpoint_dial *d, int *fd)
{
	int one = 1, n;

	switch (d->ed_ep.kind) {
	case EP_TCP:
		if (setsockopt(d->ed_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
			return dial_fail(d, VTPM_E_IO, fd);
		break;
	case EP_HVSOCK:
		n = snprintf(d->ed_req, sizeof(d->ed_req), "CONNECT %u\n", d->ed_ep.port);
		if (n < 0 || (size_t)n >= sizeof(d->ed_req))
			return dial_fail(d, VTPM_E_INVAL, fd);
		d->ed_reqlen = (size_t)n;
		d->ed_reqoff = 0;
		d->ed_linelen = 0;
		d->ed_state = DIAL_HV_SEND;
		return dial_hv_send(d, fd);
	default:
		break;
	}
	return dial_done(d, fd);
}

/* Starts connect() on the next address; gives up after the last one. */
static int
dial_next(struct endpoint_dial *d, int *fd)
{
	const struct sockaddr_storage *ss;
	struct timeval tv;
	socklen_t len;
	int s;

	while (d->ed_next < d->ed_naddr) {
		ss = &d->ed_addr[d->ed_next];
		len = d->ed_addrlen[d->ed_next];
		d->ed_next++;
		s = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (s == -1) {
			if (errno == EAFNOSUPPORT && d->ed_naddr == 1)
				return dial_fail(d, VTPM_E_UNSUPPORTED, fd);
			d->ed_errno = errno;
			continue;
		}
		d->ed_fd = s;
		if (ss->ss_family == AF_VSOCK && d->ed_timeout_ms > 0) {
			tv.tv_sec = d->ed_timeout_ms / 1000;
			tv.tv_usec = (d->ed_timeout_ms % 1000) * 1000;
			if (setsockopt(s, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT,
			    &tv, sizeof(tv)) == -1)
				return dial_fail(d, VTPM_E_IO, fd);
		}
		if (connect(s, (const struct sockaddr *)ss, len) == 0)
			return dial_connected(d, fd);
		if (errno == EINPROGRESS || errno == EINTR) {
			d->ed_state = DIAL_CONNECT;
			d->ed_events = POLLOUT;
			return VTPM_E_AGAIN;
		}
		if (errno == EAGAIN && ss->ss_family == AF_UNIX)
			return dial_fail(d, VTPM_E_BUSY, fd);
		d->ed_errno = errno;
		dial_close(d);
	}
	errno = d->ed_errno;
	return dial_fail(d, VTPM_E_IO, fd);
}

int
endpoint_dial_start(struct endpoint_dial *d, const struct endpoint *ep,
    int timeout_ms, int *fd)
{
	int r;

	memset(d, 0, sizeof(*d));
	d->ed_fd = -1;
	d->ed_state = DIAL_DONE;
	d->ed_ep = *ep;
	d->ed_timeout_ms = timeout_ms;
	d->ed_errno = ECONNREFUSED;
	*fd = -1;
	if (timeout_ms < -1)
		return VTPM_E_INVAL;

	switch (ep->kind) {
	case EP_UNIX:
	case EP_HVSOCK:
		d->ed_addrlen[0] = addr_unix(&d->ed_addr[0], ep->path);
		d->ed_naddr = 1;
		break;
	case EP_VSOCK:
		if (ep->cid == ENDPOINT_CID_ANY)
			return VTPM_E_INVAL;
		d->ed_addrlen[0] = addr_vsock(&d->ed_addr[0], ep->cid, ep->port);
		d->ed_naddr = 1;
		break;
	case EP_TCP:
		if (ep->port == 0)
			return VTPM_E_INVAL;
		if ((r = resolve_tcp(ep, d->ed_addr, d->ed_addrlen,
		    ARRAY_LEN(d->ed_addr), &d->ed_naddr)) != 0)
			return r;
		break;
	default:
		return VTPM_E_INVAL;
	}
	d->ed_state = DIAL_IDLE;
	return dial_next(d, fd);
}

int
endpoint_dial_step(struct endpoint_dial *d, int *fd)
{
	socklen_t len;
	int err;

	*fd = -1;
	switch (d->ed_state) {
	case DIAL_CONNECT:
		len = sizeof(err);
		if (getsockopt(d->ed_fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			return dial_fail(d, VTPM_E_IO, fd);
		if (err == EINPROGRESS || err == EALREADY)
			return VTPM_E_AGAIN;
		if (err == 0) {
			/* A spurious wakeup also reads 0: only a peer proves it. */
			struct sockaddr_storage peer;

			len = sizeof(peer);
			if (getpeername(d->ed_fd, (struct sockaddr *)&peer, &len) == 0)
				return dial_connected(d, fd);
			if (errno == ENOTCONN)
				return VTPM_E_AGAIN;
			return dial_fail(d, VTPM_E_IO, fd);
		}
		d->ed_errno = err;
		dial_close(d);
		return dial_next(d, fd);
	case DIAL_HV_SEND:
		return dial_hv_send(d, fd);
	case DIAL_HV_RECV:
		return dial_hv_recv(d, fd);
	default:
		return VTPM_E_INVAL;
	}
}

void
endpoint_dial_abort(struct endpoint_dial *d)
{
	dial_close(d);
	d->ed_state = DIAL_DONE;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before deadline (-1: none), at least 0. */
static int
left_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	if (left < 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

int
endpoint_connect(const struct endpoint *ep, int timeout_ms, int *fd)
{
	struct endpoint_dial d;
	struct pollfd pfd;
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	int64_t deadline;
	int r, n, flags;

	*fd = -1;
	if (timeout_ms < -1)
		return VTPM_E_INVAL;
	deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

	/* A unix listener with a full backlog cannot be polled for: retry. */
	while ((r = endpoint_dial_start(&d, ep, timeout_ms, fd)) == VTPM_E_BUSY) {
		if (left_ms(deadline) == 0) {
			errno = ETIMEDOUT;
			return VTPM_E_TIMEOUT;
		}
		nanosleep(&nap, NULL);
	}
	while (r == VTPM_E_AGAIN) {
		if (deadline >= 0 && left_ms(deadline) == 0) {
			endpoint_dial_abort(&d);
			errno = ETIMEDOUT;
			return VTPM_E_TIMEOUT;
		}
		pfd.fd = d.ed_fd;
		pfd.events = d.ed_events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left_ms(deadline));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			endpoint_dial_abort(&d);
			return VTPM_E_IO;
		}
		if (n == 0)
			continue;	/* the deadline check above ends it */
		r = endpoint_dial_step(&d, fd);
	}
	if (r != 0)
		return r;
	if ((flags = fcntl(*fd, F_GETFL)) == -1 ||
	    fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		close_keep_errno(*fd);
		*fd = -1;
		return VTPM_E_IO;
	}
	return 0;
}
