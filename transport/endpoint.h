/*
 * endpoint.h: the endpoint strings every vtpmd program accepts, and the
 * sockets behind them.
 *
 * Grammar (one spec, no whitespace, numbers are plain decimal):
 *
 *	unix:PATH		unix stream socket; PATH is 1..107 bytes
 *	vsock:PORT		AF_VSOCK, any local CID (a listening form)
 *	vsock:CID:PORT		AF_VSOCK, a peer CID (the connecting form)
 *	tcp:HOST:PORT		TCP; HOST is 127.x.x.x, ::1, [::1] or "localhost"
 *				unless the caller allows remote hosts; PORT <= 65535
 *	hvsock:PATH:PORT	Firecracker / Cloud Hypervisor hybrid vsock: connect
 *				to the VMM's unix socket PATH, send "CONNECT PORT\n",
 *				expect "OK HOSTPORT\n" (connect only)
 *
 * vsock and hvsock ports are 32-bit (struct sockaddr_vm.svm_port, and the
 * VMMs' CONNECT line), except 4294967295 (VMADDR_PORT_ANY). CIDs are 32-bit
 * except 4294967295 (VMADDR_CID_ANY, which "vsock:PORT" stands for).
 *
 * Every function returns 0 or a negative VTPM_E_* code (vtpm_error.h). Where
 * a code is VTPM_E_IO, errno says which system call failed and why. Nothing
 * here allocates memory (beyond getaddrinfo() for DNS names), keeps state
 * between calls, installs signal handlers or logs: callers log. Any thread
 * may call any function.
 */
#ifndef VTPM_ENDPOINT_H
#define VTPM_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "vtpm_error.h"

enum endpoint_kind { EP_UNIX = 1, EP_VSOCK = 2, EP_TCP = 3, EP_HVSOCK = 4 };

/* Longest unix socket path (sun_path holds 108 bytes with the NUL). */
#define ENDPOINT_PATH_MAX	107
/* Longest tcp HOST, without brackets. */
#define ENDPOINT_HOST_MAX	63
/* Enough for any spec endpoint_format() writes, with its NUL. */
#define ENDPOINT_STRLEN		128
/* Longest hybrid-vsock reply line accepted, '\n' included: "OK 4294967295\n". */
#define ENDPOINT_HV_REPLY_MAX	14
/* The value of cid for "vsock:PORT" (VMADDR_CID_ANY). */
#define ENDPOINT_CID_ANY	UINT32_MAX

/*
 * A parsed endpoint: plain data, copy it freely. Fields that the kind does not
 * use are zero. path is NUL-terminated (unix, hvsock); host is
 * NUL-terminated and stored without IPv6 brackets (tcp); cid is
 * ENDPOINT_CID_ANY for "vsock:PORT".
 */
struct endpoint {
	enum endpoint_kind	kind;
	char			path[108];
	uint32_t		cid;
	uint32_t		port;
	char			host[64];
};

/*
 * Parses spec into *ep. A tcp HOST must be a loopback literal or "localhost"
 * unless allow_remote is non-zero; then any IPv4/IPv6 literal or DNS name
 * (letters, digits, '.', '-') is accepted. Port 0 is accepted for tcp (an
 * ephemeral listening port, see endpoint_local_port()).
 *
 * Returns 0, or
 *	VTPM_E_INVAL	unknown kind, empty or non-decimal number, number out of
 *			range, missing field, malformed host, or a non-loopback
 *			tcp host without allow_remote;
 *	VTPM_E_TOOBIG	PATH longer than ENDPOINT_PATH_MAX or HOST longer than
 *			ENDPOINT_HOST_MAX.
 * On failure *ep is zeroed.
 */
int endpoint_parse(const char *spec, int allow_remote, struct endpoint *ep) VTPM_WUR;

/*
 * Writes the spec of ep into buf (cap bytes, NUL-terminated); parsing the
 * result gives back the same endpoint. Returns 0, VTPM_E_INVAL for a kind
 * it does not know, or VTPM_E_TOOBIG if cap is too small (buf then holds ""
 * when cap > 0). ENDPOINT_STRLEN is always enough.
 */
int endpoint_format(const struct endpoint *ep, char *buf, size_t cap) VTPM_WUR;

/*
 * Opens a listening socket (SOCK_STREAM, SOCK_CLOEXEC, SOCK_NONBLOCK,
 * backlog SOMAXCONN) and stores it in *fd; the caller owns and closes it.
 *
 * unix: if PATH exists it must be a socket nobody listens on (a stale one);
 *	it is then removed. Finding that out means a connect(): a live
 *	listener sees one connection that closes at once. The socket file gets mode (0..0777, e.g. 0600 or
 *	0660) before listen(), so nobody can connect under looser permissions;
 *	mode -1 leaves what the umask gave. The caller unlinks PATH when done.
 * tcp:	SO_REUSEADDR; IPv6 sockets are IPV6_V6ONLY. "localhost" is 127.0.0.1.
 *	A DNS name binds its first address.
 * vsock: binds CID ep->cid (VMADDR_CID_ANY for "vsock:PORT") and ep->port.
 * mode is ignored except for unix.
 *
 * Returns 0, or
 *	VTPM_E_UNSUPPORTED	hvsock (the VMM listens, not us), or this kernel
 *				has no such address family (errno EAFNOSUPPORT,
 *				e.g. no vsock module);
 *	VTPM_E_EXISTS		unix PATH exists and is not a socket (errno EEXIST);
 *	VTPM_E_BUSY		unix PATH is a live socket (errno EADDRINUSE);
 *	VTPM_E_NOTFOUND		tcp name did not resolve;
 *	VTPM_E_INVAL		bad kind or mode;
 *	VTPM_E_IO		a system call failed (errno).
 * On failure *fd is -1 and nothing is left behind.
 */
int endpoint_listen(const struct endpoint *ep, int mode, int *fd) VTPM_WUR;

/*
 * Connects to ep and stores a blocking SOCK_CLOEXEC stream socket in *fd;
 * the caller owns and closes it. timeout_ms bounds the whole operation
 * (name lookup aside), the hvsock handshake included; -1 waits for ever.
 * tcp tries each address of the host in turn and sets TCP_NODELAY. hvsock
 * consumes the VMM's reply line exactly, leaving any bytes after it unread.
 * A unix listener with a full backlog is retried until the deadline.
 *
 * Returns 0, or
 *	VTPM_E_TIMEOUT		the deadline passed (errno ETIMEDOUT);
 *	VTPM_E_INVAL		vsock without a CID, port 0, bad timeout;
 *	VTPM_E_UNSUPPORTED	no such address family here (errno EAFNOSUPPORT);
 *	VTPM_E_NOTFOUND		tcp name did not resolve;
 *	VTPM_E_CLOSED		hvsock: the VMM closed before replying (no
 *				listener on that port in the guest);
 *	VTPM_E_FORMAT		hvsock: the reply is not "OK <u32>\n";
 *	VTPM_E_TOOBIG		hvsock: no '\n' within ENDPOINT_HV_REPLY_MAX bytes;
 *	VTPM_E_IO		a system call failed (errno; ECONNREFUSED,
 *				ENOENT, ... from connect()).
 * On failure *fd is -1.
 */
int endpoint_connect(const struct endpoint *ep, int timeout_ms, int *fd) VTPM_WUR;

/*
 * The local port of a bound AF_INET, AF_INET6 or AF_VSOCK socket (for
 * example after listening on tcp port 0). Returns 0, VTPM_E_INVAL for
 * another family, or VTPM_E_IO (errno) if getsockname() fails.
 */
int endpoint_local_port(int fd, uint32_t *port) VTPM_WUR;

/*
 * Nonblocking connect for event loops; endpoint_connect() is this plus
 * poll(). A dial owns one socket at a time, ed_fd.
 *
 *	endpoint_dial_start(&d, ep, timeout_ms, &fd)
 *	while (r == VTPM_E_AGAIN) {
 *		wait until d.ed_fd is ready for d.ed_events (POLLIN or POLLOUT);
 *		r = endpoint_dial_step(&d, &fd);
 *	}
 *
 * On 0 the dial is finished and *fd is the connected socket, still
 * nonblocking, now owned by the caller. On VTPM_E_AGAIN, wait as above; note
 * that ed_fd may change between calls (tcp moves on to the next address).
 * Any other code is a failure with the same meaning as for
 * endpoint_connect(), except that a unix listener with a full backlog gives
 * VTPM_E_BUSY at once; the dial has then closed its socket and *fd is -1.
 * The dial never enforces a deadline: the caller does, and calls
 * endpoint_dial_abort() (also safe after success or failure). timeout_ms is
 * only handed to the kernel where it keeps its own connect timer (vsock;
 * -1 keeps the kernel's default of 2 s). The endpoint is copied.
 * The struct's members are private except ed_fd and ed_events.
 */
struct endpoint_dial {
	int			ed_fd;		/* socket in progress, or -1 */
	short			ed_events;	/* what to wait for on ed_fd */
	int			ed_state;
	int			ed_errno;	/* last connect() failure */
	struct endpoint		ed_ep;
	int			ed_timeout_ms;
	unsigned		ed_naddr;
	unsigned		ed_next;
	struct sockaddr_storage	ed_addr[4];
	socklen_t		ed_addrlen[4];
	char			ed_req[24];	/* "CONNECT <port>\n" */
	size_t			ed_reqlen;
	size_t			ed_reqoff;
	char			ed_line[ENDPOINT_HV_REPLY_MAX];
	size_t			ed_linelen;
};

int endpoint_dial_start(struct endpoint_dial *d, const struct endpoint *ep,
    int timeout_ms, int *fd) VTPM_WUR;
int endpoint_dial_step(struct endpoint_dial *d, int *fd) VTPM_WUR;
void endpoint_dial_abort(struct endpoint_dial *d);

#endif
