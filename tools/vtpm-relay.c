/*
 * vtpm-relay: the host's byte relay between guests and the vtpmd CVM.
 * Accepts on one endpoint, connects each connection to another, and copies
 * bytes both ways without looking at them (they are Noise ciphertext). Trusts
 * neither side: every peer gets bounded buffers and its errors end only its
 * own connection; only the command line is trusted.
 *
 * One process, one thread, one epoll loop; all sockets are nonblocking.
 *
 *	client ──► ring[C] ──► target		(stop reading a side whose ring is full)
 *	client ◄── ring[T] ◄── target
 *
 * A clean EOF on one side is passed on as shutdown(SHUT_WR) on the other once
 * its ring has drained; a connection ends when both directions are shut, on
 * a read or write error on either side (an abort), on the idle or connect
 * timeout, or at SIGTERM/SIGINT.
 */
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/vm_sockets.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "endpoint.h"
#include "log.h"

#define RELAY_DEFAULT_MAX_CONNS		1024
#define RELAY_DEFAULT_BUFFER		(64 * 1024)
#define RELAY_DEFAULT_CONNECT_TIMEOUT	10	/* seconds */
#define RELAY_MIN_BUFFER		1024
#define RELAY_MAX_BUFFER		(64 * 1024 * 1024)
#define RELAY_ACCEPT_BURST		64	/* accepts per wakeup */
#define RELAY_TICK_MS			1000	/* timer resolution */

enum { SIDE_CLIENT = 0, SIDE_TARGET = 1 };
static const char *const side_name[2] = { "client", "target" };

/* What an epoll event points at; the tag is the first member of each. */
enum src_tag { SRC_LISTEN = 1, SRC_SIGNAL, SRC_SIDE };

struct ring {
	uint8_t		*r_buf;
	size_t		 r_cap;
	size_t		 r_head;	/* first byte to write out */
	size_t		 r_len;		/* bytes held */
};

struct conn;

struct side {
	enum src_tag	 s_tag;		/* SRC_SIDE */
	struct conn	*s_conn;
	int		 s_idx;		/* SIDE_CLIENT or SIDE_TARGET */
	int		 s_fd;
	uint32_t	 s_events;	/* what epoll watches for, 0: not registered */
	int		 s_registered;
};

struct conn {
	TAILQ_ENTRY(conn) c_entry;
	uint64_t	 c_id;
	struct side	 c_side[2];
	struct ring	 c_ring[2];	/* c_ring[s]: read from side s, for the other */
	int		 c_rd_eof[2];	/* side s sent EOF */
	int		 c_wr_shut[2];	/* we did shutdown(SHUT_WR) on side s */
	uint64_t	 c_bytes[2];	/* bytes from side s delivered to the other */
	int		 c_connecting;	/* target dial in progress */
	struct endpoint_dial c_dial;
	int64_t		 c_started;
	int64_t		 c_active;	/* last time any byte or EOF moved */
	int		 c_closed;
	char		 c_peer[ENDPOINT_STRLEN];
};

TAILQ_HEAD(conn_list, conn);

static struct relay {
	struct endpoint	 listen_ep;
	struct endpoint	 target_ep;
	char		 listen_str[ENDPOINT_STRLEN];
	char		 target_str[ENDPOINT_STRLEN];
	unsigned	 max_conns;
	unsigned	 idle_timeout_s;	/* 0: never */
	unsigned	 connect_timeout_s;
	size_t		 buffer;
	int		 mode;

	int		 epfd;
	int		 lfd;
	int		 sigfd;
	int		 listening;		/* lfd is in epoll */
	int64_t		 accept_resume;		/* when a paused accept resumes, or 0 */
	struct stat	 lst;			/* the unix socket file we created */
	int		 lst_valid;

	struct conn_list conns;
	struct conn_list dead;			/* freed after each epoll batch */
	unsigned	 nconns;
	uint64_t	 next_id;
	uint64_t	 refused;		/* since the last report */
	int64_t		 refused_logged;
} R;

static const enum src_tag tag_listen = SRC_LISTEN;
static const enum src_tag tag_signal = SRC_SIGNAL;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Ring buffers: the free space and the data as at most two iovecs each.
 */

static int
ring_free_iov(const struct ring *r, struct iovec iov[2])
{
	size_t tail = (r->r_head + r->r_len) % r->r_cap;
	size_t free_ = r->r_cap - r->r_len;
	size_t first;

	if (free_ == 0)
		return 0;
	first = r->r_cap - tail;
	if (first > free_)
		first = free_;
	iov[0].iov_base = r->r_buf + tail;
	iov[0].iov_len = first;
	if (first == free_)
		return 1;
	iov[1].iov_base = r->r_buf;
	iov[1].iov_len = free_ - first;
	return 2;
}

static int
ring_data_iov(const struct ring *r, struct iovec iov[2])
{
	size_t first;

	if (r->r_len == 0)
		return 0;
	first = r->r_cap - r->r_head;
	if (first > r->r_len)
		first = r->r_len;
	iov[0].iov_base = r->r_buf + r->r_head;
	iov[0].iov_len = first;
	if (first == r->r_len)
		return 1;
	iov[1].iov_base = r->r_buf;
	iov[1].iov_len = r->r_len - first;
	return 2;
}

static void
ring_consume(struct ring *r, size_t n)
{
	r->r_head = (r->r_head + n) % r->r_cap;
	r->r_len -= n;
	if (r->r_len == 0)
		r->r_head = 0;	/* keep the free space in one piece */
}

/*
 * Connections.
 */

static void
conn_close(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
conn_close(struct conn *c, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	int s;

	if (c->c_closed)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_info("conn %" PRIu64 ": closed (%s): client->target %" PRIu64
	    " bytes, target->client %" PRIu64 " bytes, %.3f s",
	    c->c_id, why, c->c_bytes[SIDE_CLIENT], c->c_bytes[SIDE_TARGET],
	    (double)(now_ms() - c->c_started) / 1000.0);

	if (c->c_connecting)
		endpoint_dial_abort(&c->c_dial);
	for (s = 0; s < 2; s++) {
		/* close() also takes the fd out of epoll. */
		if (c->c_side[s].s_fd >= 0 && !(s == SIDE_TARGET && c->c_connecting))
			close(c->c_side[s].s_fd);
		c->c_side[s].s_fd = -1;
		c->c_side[s].s_registered = 0;
	}
	c->c_connecting = 0;
	c->c_closed = 1;
	TAILQ_REMOVE(&R.conns, c, c_entry);
	TAILQ_INSERT_TAIL(&R.dead, c, c_entry);
	R.nconns--;
}

static void
conn_free(struct conn *c)
{
	free(c->c_ring[0].r_buf);
	free(c->c_ring[1].r_buf);
	free(c);
}

static void
free_dead(void)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&R.dead)) != NULL) {
		TAILQ_REMOVE(&R.dead, c, c_entry);
		conn_free(c);
	}
}

static int
side_ready(const struct conn *c, int s)
{
	return s == SIDE_CLIENT || !c->c_connecting;
}

/* The epoll events side s needs now. */
static uint32_t
side_wanted(const struct conn *c, int s)
{
	uint32_t ev = 0;

	if (s == SIDE_TARGET && c->c_connecting) {
		if (c->c_dial.ed_events & POLLIN)
			ev |= EPOLLIN;
		if (c->c_dial.ed_events & POLLOUT)
			ev |= EPOLLOUT;
		return ev;
	}
	if (!c->c_rd_eof[s] && c->c_ring[s].r_len < c->c_ring[s].r_cap)
		ev |= EPOLLIN;
	if (c->c_ring[!s].r_len > 0)
		ev |= EPOLLOUT;
	return ev;
}

/*
 * Brings epoll in line with what the side needs. A side that needs nothing is
 * taken out of epoll altogether: a hung-up socket would otherwise report
 * EPOLLHUP over and over while we wait for the other side.
 */
static int
side_update(struct side *sd)
{
	struct epoll_event ev;
	uint32_t want = side_wanted(sd->s_conn, sd->s_idx);
	int op;

	if (sd->s_fd < 0)
		return 0;
	if (sd->s_registered && want == sd->s_events)
		return 0;
	if (want == 0) {
		if (!sd->s_registered)
			return 0;
		if (epoll_ctl(R.epfd, EPOLL_CTL_DEL, sd->s_fd, NULL) == -1)
			return -1;
		sd->s_registered = 0;
		sd->s_events = 0;
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.ptr = sd;
	op = sd->s_registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(R.epfd, op, sd->s_fd, &ev) == -1)
		return -1;
	sd->s_registered = 1;
	sd->s_events = want;
	return 0;
}

/* Passes on EOFs whose data has drained; closes the connection when both are done. */
static void
conn_progress(struct conn *c)
{
	int s;

	for (s = 0; s < 2 && !c->c_closed; s++) {
		int dst = !s;

		if (!c->c_rd_eof[s] || c->c_ring[s].r_len > 0 || c->c_wr_shut[dst] ||
		    !side_ready(c, dst))
			continue;
		if (shutdown(c->c_side[dst].s_fd, SHUT_WR) == -1 && errno != ENOTCONN)
			log_debug("conn %" PRIu64 ": shutdown %s: %s", c->c_id,
			    side_name[dst], strerror(errno));
		c->c_wr_shut[dst] = 1;
	}
	if (c->c_closed)
		return;
	if (c->c_wr_shut[SIDE_CLIENT] && c->c_wr_shut[SIDE_TARGET]) {
		conn_close(c, "done");
		return;
	}
	for (s = 0; s < 2; s++) {
		if (side_update(&c->c_side[s]) == -1) {
			conn_close(c, "epoll_ctl %s: %s", side_name[s], strerror(errno));
			return;
		}
	}
}

/* Reads side s into its ring until the ring is full or the socket is dry. */
static void
side_read(struct conn *c, int s)
{
	struct ring *r = &c->c_ring[s];
	struct iovec iov[2];
	ssize_t n;
	int cnt;

	while (!c->c_rd_eof[s] && (cnt = ring_free_iov(r, iov)) > 0) {
		n = readv(c->c_side[s].s_fd, iov, cnt);
		if (n > 0) {
			r->r_len += (size_t)n;
			c->c_active = now_ms();
			continue;
		}
		if (n == 0) {
			c->c_rd_eof[s] = 1;
			c->c_active = now_ms();
			log_debug("conn %" PRIu64 ": EOF from %s", c->c_id, side_name[s]);
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		conn_close(c, "read from %s: %s", side_name[s], strerror(errno));
		return;
	}
}

/* Writes the other side's ring out to side s until it drains or s is full. */
static void
side_write(struct conn *c, int s)
{
	struct ring *r = &c->c_ring[!s];
	struct msghdr msg;
	struct iovec iov[2];
	ssize_t n;
	int cnt;

	while ((cnt = ring_data_iov(r, iov)) > 0) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)cnt;
		n = sendmsg(c->c_side[s].s_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			ring_consume(r, (size_t)n);
			c->c_bytes[!s] += (uint64_t)n;
			c->c_active = now_ms();
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_close(c, "write to %s: %s", side_name[s],
		    n == 0 ? "wrote nothing" : strerror(errno));
		return;
	}
}

/*
 * Acts on what endpoint_dial_start() or endpoint_dial_step() returned. The
 * target side is out of epoll here (see conn_event()): the dial may have
 * swapped its socket for another one with the same number.
 */
static void
conn_dial_result(struct conn *c, int r, int fd)
{
	struct side *t = &c->c_side[SIDE_TARGET];

	t->s_registered = 0;
	t->s_events = 0;
	if (r == VTPM_E_AGAIN) {
		t->s_fd = c->c_dial.ed_fd;
		return;
	}
	c->c_connecting = 0;
	t->s_fd = fd;
	if (r == 0) {
		c->c_active = now_ms();
		log_debug("conn %" PRIu64 ": connected to %s", c->c_id, R.target_str);
		side_write(c, SIDE_TARGET);	/* what the client sent meanwhile */
		return;
	}
	/* The dial has closed its socket. */
	if (r == VTPM_E_IO || r == VTPM_E_UNSUPPORTED)
		conn_close(c, "connect %s: %s", R.target_str, strerror(errno));
	else
		conn_close(c, "connect %s: %s", R.target_str, vtpm_strerror(r));
}

static void
conn_event(struct side *sd, uint32_t events)
{
	struct conn *c = sd->s_conn;
	int s = sd->s_idx, fd, r;

	if (c->c_closed)
		return;
	if (s == SIDE_TARGET && c->c_connecting) {
		if (sd->s_registered &&
		    epoll_ctl(R.epfd, EPOLL_CTL_DEL, sd->s_fd, NULL) == -1) {
			conn_close(c, "epoll_ctl target: %s", strerror(errno));
			return;
		}
		sd->s_registered = 0;
		r = endpoint_dial_step(&c->c_dial, &fd);
		conn_dial_result(c, r, fd);
	} else {
		/* EPOLLHUP/EPOLLERR: the read or write below reports what happened. */
		if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (sd->s_events & EPOLLIN)) {
			side_read(c, s);
			/* Pass it on at once rather than after another epoll round. */
			if (!c->c_closed && side_ready(c, !s))
				side_write(c, !s);
		}
		if (!c->c_closed && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) &&
		    (sd->s_events & EPOLLOUT))
			side_write(c, s);
	}
	if (!c->c_closed)
		conn_progress(c);
}

/* Who connected: the vsock CID and port, the tcp address, or the unix peer's pid and uid. */
static void
format_peer(int fd, const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	char addr[INET6_ADDRSTRLEN];
	struct ucred cred;
	socklen_t len = sizeof(cred);

	switch (ss->ss_family) {
	case AF_VSOCK: {
		const struct sockaddr_vm *svm = (const struct sockaddr_vm *)ss;

		snprintf(buf, cap, "vsock:%u:%u", svm->svm_cid, svm->svm_port);
		return;
	}
	case AF_INET: {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
		snprintf(buf, cap, "tcp:%s:%u", addr, ntohs(sin->sin_port));
		return;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
		snprintf(buf, cap, "tcp:[%s]:%u", addr, ntohs(sin6->sin6_port));
		return;
	}
	case AF_UNIX:
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
			snprintf(buf, cap, "unix pid %d uid %u", (int)cred.pid,
			    (unsigned)cred.uid);
		else
			snprintf(buf, cap, "unix");
		return;
	}
	snprintf(buf, cap, "address family %d", (int)ss->ss_family);
}

static void
conn_new(int fd, const struct sockaddr_storage *ss)
{
	struct conn *c;
	int r, tfd, s, timeout_ms;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->c_ring[0].r_buf = malloc(R.buffer)) == NULL ||
	    (c->c_ring[1].r_buf = malloc(R.buffer)) == NULL) {
		log_warn("conn: refused, no memory for buffers");
		if (c != NULL)
			conn_free(c);
		close(fd);
		return;
	}
	c->c_id = ++R.next_id;
	c->c_started = c->c_active = now_ms();
	for (s = 0; s < 2; s++) {
		c->c_side[s].s_tag = SRC_SIDE;
		c->c_side[s].s_conn = c;
		c->c_side[s].s_idx = s;
		c->c_side[s].s_fd = -1;
		c->c_ring[s].r_cap = R.buffer;
	}
	c->c_side[SIDE_CLIENT].s_fd = fd;
	format_peer(fd, ss, c->c_peer, sizeof(c->c_peer));
	TAILQ_INSERT_TAIL(&R.conns, c, c_entry);
	R.nconns++;
	log_info("conn %" PRIu64 ": open from %s to %s (%u open)", c->c_id,
	    c->c_peer, R.target_str, R.nconns);

	timeout_ms = (int)R.connect_timeout_s * 1000;
	c->c_connecting = 1;
	r = endpoint_dial_start(&c->c_dial, &R.target_ep, timeout_ms, &tfd);
	conn_dial_result(c, r, tfd);
	if (!c->c_closed)
		conn_progress(c);
}

static void
listen_pause(int64_t until)
{
	if (R.listening && epoll_ctl(R.epfd, EPOLL_CTL_DEL, R.lfd, NULL) == 0)
		R.listening = 0;
	R.accept_resume = until;
}

static int
listen_resume(void)
{
	struct epoll_event ev;

	if (R.listening || R.lfd < 0)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = (void *)&tag_listen;
	if (epoll_ctl(R.epfd, EPOLL_CTL_ADD, R.lfd, &ev) == -1)
		return -1;
	R.listening = 1;
	R.accept_resume = 0;
	return 0;
}

static void
report_refused(int64_t now, int force)
{
	if (R.refused == 0 || (!force && now - R.refused_logged < 1000))
		return;
	log_warnx("refused %" PRIu64 " connection(s): limit of %u reached",
	    R.refused, R.max_conns);
	R.refused = 0;
	R.refused_logged = now;
}

static void
accept_some(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int i, fd;

	for (i = 0; i < RELAY_ACCEPT_BURST; i++) {
		len = sizeof(ss);
		fd = accept4(R.lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (errno) {
			case EAGAIN:
#if EWOULDBLOCK != EAGAIN
			case EWOULDBLOCK:
#endif
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
			case EPERM:
				continue;
			default:
				/* EMFILE, ENFILE, ENOBUFS, ENOMEM: back off for a tick. */
				log_warn("accept on %s, pausing for 1 s", R.listen_str);
				listen_pause(now_ms() + RELAY_TICK_MS);
				return;
			}
		}
		if (R.nconns >= R.max_conns) {
			close(fd);
			R.refused++;
			report_refused(now_ms(), 0);
			continue;
		}
		conn_new(fd, &ss);
	}
}

/* Connect deadlines, idle timeouts, a paused accept. */
static void
timers(int64_t now)
{
	struct conn *c, *next;
	int64_t idle_ms = (int64_t)R.idle_timeout_s * 1000;
	int64_t conn_ms = (int64_t)R.connect_timeout_s * 1000;

	for (c = TAILQ_FIRST(&R.conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, c_entry);
		if (c->c_connecting && now - c->c_started >= conn_ms)
			conn_close(c, "connect %s: timed out after %u s", R.target_str,
			    R.connect_timeout_s);
		else if (idle_ms > 0 && now - c->c_active >= idle_ms)
			conn_close(c, "idle for %u s", R.idle_timeout_s);
	}
	if (R.accept_resume != 0 && now >= R.accept_resume && listen_resume() == -1)
		log_warn("epoll_ctl: listening socket");
	report_refused(now, 1);
}

static void
relay_shutdown(const char *why)
{
	struct conn *c;
	struct stat st;

	log_info("%s: stopping; closing %u connection(s)", why, R.nconns);
	if (R.lfd >= 0) {
		close(R.lfd);
		R.lfd = -1;
	}
	/* Remove our socket file, but only if it is still ours. */
	if (R.lst_valid && lstat(R.listen_ep.path, &st) == 0 &&
	    st.st_dev == R.lst.st_dev && st.st_ino == R.lst.st_ino)
		unlink(R.listen_ep.path);
	while ((c = TAILQ_FIRST(&R.conns)) != NULL)
		conn_close(c, "relay stopping");
	free_dead();
}

static int
relay_loop(void)
{
	struct epoll_event evs[64];
	struct signalfd_siginfo si;
	int64_t last_tick = now_ms(), now;
	int n, i, timeout;

	for (;;) {
		timeout = (R.nconns > 0 || R.accept_resume != 0 || R.refused > 0) ?
		    RELAY_TICK_MS : -1;
		n = epoll_wait(R.epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_warn("epoll_wait");
			return 1;
		}
		for (i = 0; i < n; i++) {
			const enum src_tag *tag = evs[i].data.ptr;

			switch (*tag) {
			case SRC_LISTEN:
				accept_some();
				break;
			case SRC_SIGNAL:
				if (read(R.sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
					break;
				relay_shutdown(strsignal((int)si.ssi_signo));
				return 0;
			case SRC_SIDE:
				conn_event((struct side *)evs[i].data.ptr, evs[i].events);
				break;
			}
		}
		free_dead();
		now = now_ms();
		if (now - last_tick >= RELAY_TICK_MS || n == 0) {
			timers(now);
			free_dead();
			last_tick = now;
		}
	}
}

/*
 * Start-up.
 */

static __attribute__((noreturn)) void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: vtpm-relay --listen ENDPOINT --connect ENDPOINT [--max-conns N]\n"
	    "                  [--idle-timeout SEC] [--connect-timeout SEC]\n"
	    "                  [--buffer BYTES] [--mode OCTAL] [-n] [-v]\n"
	    "endpoints: unix:PATH  vsock:PORT  vsock:CID:PORT  tcp:HOST:PORT\n"
	    "           hvsock:PATH:PORT (connect only)\n");
	exit(status);
}

/* A decimal number in [min, max], nothing else. */
static int
parse_num(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
parse_endpoint(const char *opt, const char *spec, struct endpoint *ep)
{
	int r;

	if ((r = endpoint_parse(spec, 0, ep)) != 0) {
		log_warnx("%s %s: %s", opt, spec, vtpm_strerror(r));
		return -1;
	}
	return 0;
}

/* Room for every connection's two sockets plus a few of our own. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)R.max_conns * 2 + 16;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit RLIMIT_NOFILE");
	}
	if (rl.rlim_cur < need)
		log_warnx("open file limit %llu is below the %llu that --max-conns %u needs",
		    (unsigned long long)rl.rlim_cur, (unsigned long long)need, R.max_conns);
}

static int
relay_setup(void)
{
	struct epoll_event ev;
	sigset_t mask;
	uint32_t port;
	int r;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1 ||
	    (R.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1) {
		log_warn("signalfd");
		return -1;
	}
	if ((R.epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		log_warn("epoll_create1");
		return -1;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = (void *)&tag_signal;
	if (epoll_ctl(R.epfd, EPOLL_CTL_ADD, R.sigfd, &ev) == -1) {
		log_warn("epoll_ctl: signalfd");
		return -1;
	}
	raise_fd_limit();

	if ((r = endpoint_listen(&R.listen_ep, R.mode, &R.lfd)) != 0) {
		if (r == VTPM_E_IO || r == VTPM_E_UNSUPPORTED || r == VTPM_E_BUSY ||
		    r == VTPM_E_EXISTS)
			log_warnx("listen %s: %s (%s)", R.listen_str, vtpm_strerror(r),
			    strerror(errno));
		else
			log_warnx("listen %s: %s", R.listen_str, vtpm_strerror(r));
		return -1;
	}
	if (R.listen_ep.kind == EP_UNIX && lstat(R.listen_ep.path, &R.lst) == 0)
		R.lst_valid = 1;
	/* tcp port 0: say which port the kernel picked. */
	if (R.listen_ep.kind == EP_TCP && R.listen_ep.port == 0 &&
	    endpoint_local_port(R.lfd, &port) == 0) {
		R.listen_ep.port = port;
		if (endpoint_format(&R.listen_ep, R.listen_str, sizeof(R.listen_str)) != 0)
			fatalx("endpoint_format");
	}
	if (listen_resume() == -1) {
		log_warn("epoll_ctl: listening socket");
		if (R.lst_valid)
			unlink(R.listen_ep.path);
		return -1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "listen",		required_argument,	NULL, 'l' },
		{ "connect",		required_argument,	NULL, 'c' },
		{ "max-conns",		required_argument,	NULL, 'm' },
		{ "idle-timeout",	required_argument,	NULL, 'i' },
		{ "connect-timeout",	required_argument,	NULL, 't' },
		{ "buffer",		required_argument,	NULL, 'b' },
		{ "mode",		required_argument,	NULL, 'M' },
		{ "check",		no_argument,		NULL, 'n' },
		{ "verbose",		no_argument,		NULL, 'v' },
		{ "help",		no_argument,		NULL, 'h' },
		{ NULL,			0,			NULL, 0 },
	};
	const char *listen_spec = NULL, *connect_spec = NULL;
	unsigned long long v;
	int ch, check_only = 0, verbose = 0, ret;
	char *end;
	long mode;

	log_init("vtpm-relay", LOG_LVL_INFO);
	R.max_conns = RELAY_DEFAULT_MAX_CONNS;
	R.buffer = RELAY_DEFAULT_BUFFER;
	R.connect_timeout_s = RELAY_DEFAULT_CONNECT_TIMEOUT;
	R.mode = 0600;
	R.lfd = R.epfd = R.sigfd = -1;
	TAILQ_INIT(&R.conns);
	TAILQ_INIT(&R.dead);

	while ((ch = getopt_long(argc, argv, "l:c:m:i:t:b:M:nvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'c':
			connect_spec = optarg;
			break;
		case 'm':
			if (parse_num(optarg, 1, 1000000, &v) == -1) {
				log_warnx("--max-conns %s: want 1..1000000", optarg);
				return 1;
			}
			R.max_conns = (unsigned)v;
			break;
		case 'i':
			if (parse_num(optarg, 0, 86400 * 365, &v) == -1) {
				log_warnx("--idle-timeout %s: want seconds, 0 for none", optarg);
				return 1;
			}
			R.idle_timeout_s = (unsigned)v;
			break;
		case 't':
			if (parse_num(optarg, 1, 3600, &v) == -1) {
				log_warnx("--connect-timeout %s: want 1..3600 seconds", optarg);
				return 1;
			}
			R.connect_timeout_s = (unsigned)v;
			break;
		case 'b':
			if (parse_num(optarg, RELAY_MIN_BUFFER, RELAY_MAX_BUFFER, &v) == -1) {
				log_warnx("--buffer %s: want %d..%d bytes", optarg,
				    RELAY_MIN_BUFFER, RELAY_MAX_BUFFER);
				return 1;
			}
			R.buffer = (size_t)v;
			break;
		case 'M':
			errno = 0;
			mode = strtol(optarg, &end, 8);
			if (*optarg == '\0' || *end != '\0' || errno != 0 || mode < 0 ||
			    mode > 0777) {
				log_warnx("--mode %s: want an octal mode such as 0660", optarg);
				return 1;
			}
			R.mode = (int)mode;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(0);
		default:
			usage(1);
		}
	}
	if (optind != argc || listen_spec == NULL || connect_spec == NULL)
		usage(1);
	if (verbose)
		log_init("vtpm-relay", LOG_LVL_DEBUG);

	if (parse_endpoint("--listen", listen_spec, &R.listen_ep) == -1 ||
	    parse_endpoint("--connect", connect_spec, &R.target_ep) == -1)
		return 1;
	if (R.listen_ep.kind == EP_HVSOCK) {
		log_warnx("--listen %s: the VMM listens on hybrid vsock; listen on "
		    "unix:PATH_PORT for guest-initiated connections", listen_spec);
		return 1;
	}
	if (R.target_ep.kind == EP_VSOCK && R.target_ep.cid == ENDPOINT_CID_ANY) {
		log_warnx("--connect %s: a vsock target needs vsock:CID:PORT", connect_spec);
		return 1;
	}
	if (R.target_ep.kind == EP_TCP && R.target_ep.port == 0) {
		log_warnx("--connect %s: port 0", connect_spec);
		return 1;
	}
	if (endpoint_format(&R.listen_ep, R.listen_str, sizeof(R.listen_str)) != 0 ||
	    endpoint_format(&R.target_ep, R.target_str, sizeof(R.target_str)) != 0)
		fatalx("endpoint_format");
	if (check_only) {
		printf("configuration OK: %s -> %s\n", R.listen_str, R.target_str);
		return 0;
	}

	if (relay_setup() == -1)
		return 1;
	log_info("relaying %s -> %s (max %u connections, %zu-byte buffers, "
	    "idle timeout %u s)", R.listen_str, R.target_str, R.max_conns, R.buffer,
	    R.idle_timeout_s);
	ret = relay_loop();
	close(R.epfd);
	close(R.sigfd);
	return ret;
}
