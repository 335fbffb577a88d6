/*
 * test_endpoint.c: unit tests for transport/endpoint.c: the spec grammar
 * (good and bad specs, format round trips), unix and loopback tcp sockets,
 * the hybrid-vsock handshake against fake VMMs forked from this process, and
 * the error a kernel without vsock gives (forced with a seccomp filter).
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/vm_sockets.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syscall.h>
#include <time.h>
#include <unistd.h>

#include "endpoint.h"

static int passed, failed;

#define CHECK(expr) do {						\
	if (expr)							\
		passed++;						\
	else {								\
		failed++;						\
		fprintf(stderr, "FAIL: %s:%d: %s\n", __FILE__, __LINE__, #expr); \
	}								\
} while (0)

/* Checks r == want, printing both as names when they differ. */
#define CHECK_RC(r, want) do {						\
	int r_ = (r), w_ = (want);					\
	if (r_ == w_)							\
		passed++;						\
	else {								\
		failed++;						\
		fprintf(stderr, "FAIL: %s:%d: %s = %d (%s), want %d (%s)\n", \
		    __FILE__, __LINE__, #r, r_, vtpm_strerror(r_), w_,	\
		    vtpm_strerror(w_));					\
	}								\
} while (0)

static char tmpdir[] = "/tmp/test_endpoint.XXXXXX";

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
tmp_path(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", tmpdir, name);
}

/*
 * Parsing and formatting.
 */

static void
check_roundtrip(const struct endpoint *ep, int allow_remote)
{
	char buf[ENDPOINT_STRLEN];
	struct endpoint again;

	CHECK_RC(endpoint_format(ep, buf, sizeof(buf)), 0);
	CHECK_RC(endpoint_parse(buf, allow_remote, &again), 0);
	CHECK(memcmp(ep, &again, sizeof(again)) == 0);
}

static void
test_parse_good(void)
{
	struct endpoint ep;
	char spec[256], path[ENDPOINT_PATH_MAX + 1];

	CHECK_RC(endpoint_parse("unix:/run/vtpmd/vtpmd.sock", 0, &ep), 0);
	CHECK(ep.kind == EP_UNIX && strcmp(ep.path, "/run/vtpmd/vtpmd.sock") == 0);
	check_roundtrip(&ep, 0);

	CHECK_RC(endpoint_parse("unix:rel:with:colons", 0, &ep), 0);
	CHECK(ep.kind == EP_UNIX && strcmp(ep.path, "rel:with:colons") == 0);

	memset(path, 'p', ENDPOINT_PATH_MAX);
	path[ENDPOINT_PATH_MAX] = '\0';
	snprintf(spec, sizeof(spec), "unix:%s", path);
	CHECK_RC(endpoint_parse(spec, 0, &ep), 0);
	CHECK(strlen(ep.path) == ENDPOINT_PATH_MAX);
	check_roundtrip(&ep, 0);

	CHECK_RC(endpoint_parse("vsock:5000", 0, &ep), 0);
	CHECK(ep.kind == EP_VSOCK && ep.cid == VMADDR_CID_ANY && ep.port == 5000);
	check_roundtrip(&ep, 0);

	CHECK_RC(endpoint_parse("vsock:3:5000", 0, &ep), 0);
	CHECK(ep.kind == EP_VSOCK && ep.cid == 3 && ep.port == 5000);
	check_roundtrip(&ep, 0);

	CHECK_RC(endpoint_parse("vsock:4294967294:4294967294", 0, &ep), 0);
	CHECK(ep.cid == 4294967294u && ep.port == 4294967294u);
	check_roundtrip(&ep, 0);

	CHECK_RC(endpoint_parse("tcp:127.0.0.1:2321", 0, &ep), 0);
	CHECK(ep.kind == EP_TCP && strcmp(ep.host, "127.0.0.1") == 0 && ep.port == 2321);
	check_roundtrip(&ep, 0);

	CHECK_RC(endpoint_parse("tcp:127.4.5.6:65535", 0, &ep), 0);
	CHECK(ep.port == 65535);
	CHECK_RC(endpoint_parse("tcp:localhost:0", 0, &ep), 0);
	CHECK(strcmp(ep.host, "localhost") == 0 && ep.port == 0);
	check_roundtrip(&ep, 0);

	CHECK_RC(endpoint_parse("tcp:[::1]:2321", 0, &ep), 0);
	CHECK(strcmp(ep.host, "::1") == 0 && ep.port == 2321);
	check_roundtrip(&ep, 0);
	CHECK_RC(endpoint_parse("tcp:::1:2321", 0, &ep), 0);
	CHECK(strcmp(ep.host, "::1") == 0 && ep.port == 2321);

	CHECK_RC(endpoint_parse("tcp:10.0.0.1:443", 1, &ep), 0);
	check_roundtrip(&ep, 1);
	CHECK_RC(endpoint_parse("tcp:[2001:db8::1]:443", 1, &ep), 0);
	CHECK(strcmp(ep.host, "2001:db8::1") == 0);
	check_roundtrip(&ep, 1);
	CHECK_RC(endpoint_parse("tcp:vtpmd-1.example.org:443", 1, &ep), 0);
	check_roundtrip(&ep, 1);

	CHECK_RC(endpoint_parse("hvsock:/run/fc/v.sock:5000", 0, &ep), 0);
	CHECK(ep.kind == EP_HVSOCK && strcmp(ep.path, "/run/fc/v.sock") == 0 &&
	    ep.port == 5000);
	check_roundtrip(&ep, 0);
	CHECK_RC(endpoint_parse("hvsock:/a:b/c:7", 0, &ep), 0);
	CHECK(strcmp(ep.path, "/a:b/c") == 0 && ep.port == 7);
	check_roundtrip(&ep, 0);
}

static void
test_parse_bad(void)
{
	static const struct {
		const char	*spec;
		int		 remote;
		int		 want;
	} bad[] = {
		{ "", 0, VTPM_E_INVAL },
		{ "unix", 0, VTPM_E_INVAL },
		{ "unix:", 0, VTPM_E_INVAL },
		{ "UNIX:/x", 0, VTPM_E_INVAL },
		{ "udp:127.0.0.1:1", 0, VTPM_E_INVAL },
		{ "vsock:", 0, VTPM_E_INVAL },
		{ "vsock:abc", 0, VTPM_E_INVAL },
		{ "vsock:-1", 0, VTPM_E_INVAL },
		{ "vsock:+5", 0, VTPM_E_INVAL },
		{ "vsock: 5", 0, VTPM_E_INVAL },
		{ "vsock:5 ", 0, VTPM_E_INVAL },
		{ "vsock:0x10", 0, VTPM_E_INVAL },
		{ "vsock:5:", 0, VTPM_E_INVAL },
		{ "vsock::5", 0, VTPM_E_INVAL },
		{ "vsock:1:2:3", 0, VTPM_E_INVAL },
		{ "vsock:4294967295", 0, VTPM_E_INVAL },	/* VMADDR_PORT_ANY */
		{ "vsock:4294967296", 0, VTPM_E_INVAL },
		{ "vsock:99999999999", 0, VTPM_E_INVAL },
		{ "vsock:4294967295:1", 0, VTPM_E_INVAL },	/* VMADDR_CID_ANY */
		{ "tcp:127.0.0.1:65536", 0, VTPM_E_INVAL },
		{ "tcp:127.0.0.1:99999", 1, VTPM_E_INVAL },
		{ "tcp:127.0.0.1:", 0, VTPM_E_INVAL },
		{ "tcp:127.0.0.1", 0, VTPM_E_INVAL },
		{ "tcp:127.0.0.1:http", 0, VTPM_E_INVAL },
		{ "tcp:127.0.0.1:8x", 0, VTPM_E_INVAL },
		{ "tcp::80", 0, VTPM_E_INVAL },
		{ "tcp:[]:80", 0, VTPM_E_INVAL },
		{ "tcp:[127.0.0.1]:80", 0, VTPM_E_INVAL },
		{ "tcp:[::1:80", 0, VTPM_E_INVAL },
		{ "tcp:10.0.0.1:80", 0, VTPM_E_INVAL },		/* remote refused */
		{ "tcp:0.0.0.0:80", 0, VTPM_E_INVAL },
		{ "tcp:[::]:80", 0, VTPM_E_INVAL },
		{ "tcp:[::2]:80", 0, VTPM_E_INVAL },
		{ "tcp:[::ffff:127.0.0.1]:80", 0, VTPM_E_INVAL },
		{ "tcp:example.com:80", 0, VTPM_E_INVAL },
		{ "tcp:localhost.:80", 0, VTPM_E_INVAL },
		{ "tcp:LOCALHOST:80", 0, VTPM_E_INVAL },
		{ "tcp:127.1:80", 0, VTPM_E_INVAL },
		{ "tcp:a..b:80", 1, VTPM_E_INVAL },
		{ "tcp:-a:80", 1, VTPM_E_INVAL },
		{ "tcp:a_b:80", 1, VTPM_E_INVAL },
		{ "tcp:a b:80", 1, VTPM_E_INVAL },
		{ "hvsock:/x", 0, VTPM_E_INVAL },
		{ "hvsock:/x:", 0, VTPM_E_INVAL },
		{ "hvsock::5", 0, VTPM_E_INVAL },
		{ "hvsock:/x:abc", 0, VTPM_E_INVAL },
		{ "hvsock:/x:4294967295", 0, VTPM_E_INVAL },
	};
	char spec[512], longstr[300];
	struct endpoint ep;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r;

		memset(&ep, 0xa5, sizeof(ep));
		r = endpoint_parse(bad[i].spec, bad[i].remote, &ep);
		if (r != bad[i].want)
			fprintf(stderr, "FAIL: spec \"%s\" gave %d (%s)\n",
			    bad[i].spec, r, vtpm_strerror(r));
		CHECK_RC(r, bad[i].want);
		CHECK(ep.kind == 0 && ep.port == 0 && ep.path[0] == '\0');
	}
	CHECK_RC(endpoint_parse(NULL, 0, &ep), VTPM_E_INVAL);

	/* Overlong path (one byte over) and host. */
	memset(longstr, 'p', sizeof(longstr) - 1);
	longstr[sizeof(longstr) - 1] = '\0';
	snprintf(spec, sizeof(spec), "unix:%.*s", ENDPOINT_PATH_MAX + 1, longstr);
	CHECK_RC(endpoint_parse(spec, 0, &ep), VTPM_E_TOOBIG);
	snprintf(spec, sizeof(spec), "unix:%s", longstr);
	CHECK_RC(endpoint_parse(spec, 0, &ep), VTPM_E_TOOBIG);
	snprintf(spec, sizeof(spec), "hvsock:%.*s:5000", ENDPOINT_PATH_MAX + 1, longstr);
	CHECK_RC(endpoint_parse(spec, 0, &ep), VTPM_E_TOOBIG);
	snprintf(spec, sizeof(spec), "tcp:%.*s:80", ENDPOINT_HOST_MAX + 1, longstr);
	CHECK_RC(endpoint_parse(spec, 1, &ep), VTPM_E_TOOBIG);
	snprintf(spec, sizeof(spec), "tcp:%.*s:80", ENDPOINT_HOST_MAX, longstr);
	CHECK_RC(endpoint_parse(spec, 1, &ep), 0);
}

static void
test_format(void)
{
	struct endpoint ep;
	char buf[ENDPOINT_STRLEN];

	CHECK_RC(endpoint_parse("vsock:3:5000", 0, &ep), 0);
	CHECK_RC(endpoint_format(&ep, buf, 12), VTPM_E_TOOBIG);
	CHECK(buf[0] == '\0');
	CHECK_RC(endpoint_format(&ep, buf, 13), 0);
	CHECK(strcmp(buf, "vsock:3:5000") == 0);
	memset(&ep, 0, sizeof(ep));
	CHECK_RC(endpoint_format(&ep, buf, sizeof(buf)), VTPM_E_INVAL);
}

/*
 * Unix sockets.
 */

static int
fd_flag(int fd, int cmd, int flag)
{
	int v = fcntl(fd, cmd);

	return v != -1 && (v & flag) != 0;
}

/* accept() on a nonblocking listener, waiting up to a second. */
static int
accept_wait(int lfd)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };

	if (poll(&pfd, 1, 1000) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* Sends a few bytes each way between two connected sockets. */
static int
exchange(int a, int b)
{
	char buf[8];

	if (write(a, "ping", 4) != 4 || read(b, buf, sizeof(buf)) != 4 ||
	    memcmp(buf, "ping", 4) != 0)
		return 0;
	if (write(b, "pong", 4) != 4 || read(a, buf, sizeof(buf)) != 4 ||
	    memcmp(buf, "pong", 4) != 0)
		return 0;
	return 1;
}

static void
test_unix(void)
{
	struct endpoint ep, missing;
	char spec[256], path[200];
	struct stat st;
	int lfd, lfd2, cfd, afd, ffd;
	uint32_t port;
	char probe;

	tmp_path(path, sizeof(path), "u.sock");
	snprintf(spec, sizeof(spec), "unix:%s", path);
	CHECK_RC(endpoint_parse(spec, 0, &ep), 0);

	CHECK_RC(endpoint_listen(&ep, 0600, &lfd), 0);
	CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
	CHECK(fd_flag(lfd, F_GETFL, O_NONBLOCK) && fd_flag(lfd, F_GETFD, FD_CLOEXEC));
	CHECK_RC(endpoint_local_port(lfd, &port), VTPM_E_INVAL);

	/* A live listener is never taken over. */
	CHECK_RC(endpoint_listen(&ep, 0600, &lfd2), VTPM_E_BUSY);
	CHECK(lfd2 == -1);
	/* Finding out cost the live listener one connection, closed at once. */
	afd = accept_wait(lfd);
	CHECK(afd >= 0 && read(afd, &probe, 1) == 0);
	close(afd);
	CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));

	CHECK_RC(endpoint_connect(&ep, 1000, &cfd), 0);
	CHECK(cfd >= 0 && !fd_flag(cfd, F_GETFL, O_NONBLOCK) && fd_flag(cfd, F_GETFD, FD_CLOEXEC));
	afd = accept_wait(lfd);
	CHECK(afd >= 0);
	CHECK(exchange(cfd, afd));
	close(afd);
	close(cfd);

	/* Closed listener leaves a stale socket: connect refused, listen takes it over. */
	close(lfd);
	CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
	errno = 0;
	CHECK_RC(endpoint_connect(&ep, 1000, &cfd), VTPM_E_IO);
	CHECK(errno == ECONNREFUSED && cfd == -1);
	CHECK_RC(endpoint_listen(&ep, 0660, &lfd), 0);
	CHECK(lstat(path, &st) == 0 && (st.st_mode & 0777) == 0660);
	close(lfd);
	unlink(path);

	/* Missing socket; a regular file in the way is left alone. */
	snprintf(spec, sizeof(spec), "unix:%s/nothing-here", tmpdir);
	CHECK_RC(endpoint_parse(spec, 0, &missing), 0);
	errno = 0;
	CHECK_RC(endpoint_connect(&missing, 1000, &cfd), VTPM_E_IO);
	CHECK(errno == ENOENT);
	ffd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	CHECK(ffd >= 0 && write(ffd, "keep", 4) == 4);
	close(ffd);
	CHECK_RC(endpoint_listen(&ep, 0600, &lfd), VTPM_E_EXISTS);
	CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 4);
	unlink(path);

	CHECK_RC(endpoint_listen(&ep, 01000, &lfd), VTPM_E_INVAL);
	CHECK_RC(endpoint_listen(&ep, -2, &lfd), VTPM_E_INVAL);
	CHECK_RC(endpoint_connect(&ep, -2, &cfd), VTPM_E_INVAL);
}

/*
 * TCP on loopback.
 */

static void
test_tcp(void)
{
	struct endpoint ep, cep;
	char spec[64];
	int lfd, cfd, afd, one = 0;
	socklen_t len = sizeof(one);
	uint32_t port = 0;

	CHECK_RC(endpoint_parse("tcp:127.0.0.1:0", 0, &ep), 0);
	CHECK_RC(endpoint_listen(&ep, -1, &lfd), 0);
	CHECK(fd_flag(lfd, F_GETFL, O_NONBLOCK) && fd_flag(lfd, F_GETFD, FD_CLOEXEC));
	CHECK_RC(endpoint_local_port(lfd, &port), 0);
	CHECK(port > 0 && port <= 65535);

	snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%u", port);
	CHECK_RC(endpoint_parse(spec, 0, &cep), 0);
	CHECK_RC(endpoint_connect(&cep, 1000, &cfd), 0);
	CHECK(cfd >= 0 && !fd_flag(cfd, F_GETFL, O_NONBLOCK) && fd_flag(cfd, F_GETFD, FD_CLOEXEC));
	CHECK(getsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, &len) == 0 && one != 0);
	afd = accept_wait(lfd);
	CHECK(afd >= 0);
	CHECK(exchange(cfd, afd));
	close(afd);
	close(cfd);

	/* "localhost" is 127.0.0.1 first. */
	snprintf(spec, sizeof(spec), "tcp:localhost:%u", port);
	CHECK_RC(endpoint_parse(spec, 0, &cep), 0);
	CHECK_RC(endpoint_connect(&cep, 1000, &cfd), 0);
	afd = accept_wait(lfd);
	CHECK(afd >= 0 && exchange(cfd, afd));
	close(afd);
	close(cfd);
	close(lfd);

	/* Nothing listens any more. */
	errno = 0;
	CHECK_RC(endpoint_connect(&cep, 1000, &cfd), VTPM_E_IO);
	CHECK(errno == ECONNREFUSED && cfd == -1);
	CHECK_RC(endpoint_parse("tcp:127.0.0.1:0", 0, &cep), 0);
	CHECK_RC(endpoint_connect(&cep, 1000, &cfd), VTPM_E_INVAL);

	/* IPv6 loopback, where the kernel has it. */
	CHECK_RC(endpoint_parse("tcp:[::1]:0", 0, &ep), 0);
	if (endpoint_listen(&ep, -1, &lfd) != 0) {
		fprintf(stderr, "note: no IPv6 loopback here (%s), skipped\n", strerror(errno));
		return;
	}
	CHECK_RC(endpoint_local_port(lfd, &port), 0);
	snprintf(spec, sizeof(spec), "tcp:::1:%u", port);
	CHECK_RC(endpoint_parse(spec, 0, &cep), 0);
	CHECK_RC(endpoint_connect(&cep, 1000, &cfd), 0);
	afd = accept_wait(lfd);
	CHECK(afd >= 0 && exchange(cfd, afd));
	close(afd);
	close(cfd);
	close(lfd);
}

/*
 * Hybrid vsock: a fake VMM in a child process. It accepts one connection,
 * reads the request line, answers with `reply`, then echoes until EOF. It
 * exits 0 if the request was exactly "CONNECT 5000\n", 1 otherwise.
 */

static void
fake_vmm(int lfd, const char *reply, size_t replylen, int silent)
{
	char line[64], buf[256];
	size_t n = 0;
	ssize_t k;
	int fd, ok;

	fd = accept_wait(lfd);
	if (fd < 0)
		_exit(2);
	while (n < sizeof(line) - 1) {
		if (read(fd, &line[n], 1) != 1)
			_exit(3);
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	ok = strcmp(line, "CONNECT 5000\n") == 0;
	if (silent) {
		sleep(5);
		_exit(ok ? 0 : 1);
	}
	if (replylen == 0)		/* hang up, as a VMM does for a closed port */
		_exit(ok ? 0 : 1);
	if (replylen > 0 && write(fd, reply, replylen) != (ssize_t)replylen)
		_exit(4);
	while ((k = read(fd, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)k) != k)
			break;
	_exit(ok ? 0 : 1);
}

/*
 * Runs one scenario: returns what endpoint_connect() said; *vmm_ok is whether
 * the fake VMM saw the right request; with want_tail, also checks that the
 * bytes sent right after the reply line are the first ones the caller reads.
 */
static int
hv_scenario(const char *reply, size_t replylen, int silent, int timeout_ms,
    const char *tail, int *vmm_ok, int *tail_ok)
{
	struct endpoint lep, ep;
	char spec[256], path[200], buf[64];
	pid_t pid;
	int lfd, fd, r, status = 0;
	size_t tl = tail ? strlen(tail) : 0;

	*vmm_ok = *tail_ok = 0;
	tmp_path(path, sizeof(path), "fc.vsock");
	snprintf(spec, sizeof(spec), "unix:%s", path);
	if (endpoint_parse(spec, 0, &lep) != 0 || endpoint_listen(&lep, 0600, &lfd) != 0)
		return -1;
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0)
		fake_vmm(lfd, reply, replylen, silent);
	close(lfd);

	snprintf(spec, sizeof(spec), "hvsock:%s:5000", path);
	if (endpoint_parse(spec, 0, &ep) != 0)
		return -1;
	r = endpoint_connect(&ep, timeout_ms, &fd);
	if (r == 0) {
		/* The tail came in the same segment as "OK ...\n": it must still be there. */
		if (tl > 0 && read(fd, buf, tl) == (ssize_t)tl && memcmp(buf, tail, tl) == 0)
			*tail_ok = 1;
		if (write(fd, "echo", 4) != 4 || read(fd, buf, 4) != 4 || memcmp(buf, "echo", 4) != 0)
			*tail_ok = 0;
		close(fd);
	}
	if (silent)
		kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		*vmm_ok = 1;
	if (silent && WIFSIGNALED(status))
		*vmm_ok = 1;
	unlink(path);
	return r;
}

static void
test_hvsock(void)
{
	static const char good[] = "OK 1073741824\nTAIL";
	static const struct {
		const char	*reply;
		int		 want;
	} bad[] = {
		{ "ERR\n", VTPM_E_FORMAT },
		{ "ok 1073741824\n", VTPM_E_FORMAT },
		{ "OK\n", VTPM_E_FORMAT },
		{ "OK \n", VTPM_E_FORMAT },
		{ "OK  5\n", VTPM_E_FORMAT },
		{ "OK 01\n", VTPM_E_FORMAT },
		{ "OK -1\n", VTPM_E_FORMAT },
		{ "OK 5x\n", VTPM_E_FORMAT },
		{ "OK 5\r\n", VTPM_E_FORMAT },
		{ "OK 4294967296\n", VTPM_E_FORMAT },
		{ "\n", VTPM_E_FORMAT },
		{ "OK 42949672950\n", VTPM_E_TOOBIG },
		{ "OK 1073741824000000000000000000000000000000\n", VTPM_E_TOOBIG },
		{ "", VTPM_E_CLOSED },		/* the VMM hangs up: no listener */
	};
	struct endpoint ep;
	int r, vmm_ok, tail_ok, fd;
	int64_t t0;
	size_t i;
	char big[200];

	r = hv_scenario(good, sizeof(good) - 1, 0, 2000, "TAIL", &vmm_ok, &tail_ok);
	CHECK_RC(r, 0);
	CHECK(vmm_ok);
	CHECK(tail_ok);

	r = hv_scenario("OK 4294967295\n", 14, 0, 2000, NULL, &vmm_ok, &tail_ok);
	CHECK_RC(r, 0);
	CHECK(vmm_ok);
	r = hv_scenario("OK 0\n", 5, 0, 2000, NULL, &vmm_ok, &tail_ok);
	CHECK_RC(r, 0);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = hv_scenario(bad[i].reply, strlen(bad[i].reply), 0, 2000, NULL,
		    &vmm_ok, &tail_ok);
		if (r != bad[i].want)
			fprintf(stderr, "FAIL: reply \"%s\"\n", bad[i].reply);
		CHECK_RC(r, bad[i].want);
		CHECK(vmm_ok);
	}

	/* A long reply without any newline stops at the bound. */
	memset(big, 'A', sizeof(big));
	r = hv_scenario(big, sizeof(big), 0, 2000, NULL, &vmm_ok, &tail_ok);
	CHECK_RC(r, VTPM_E_TOOBIG);

	/* A VMM that never answers: the deadline holds. */
	t0 = now_ms();
	r = hv_scenario("", 0, 1, 300, NULL, &vmm_ok, &tail_ok);
	CHECK_RC(r, VTPM_E_TIMEOUT);
	CHECK(now_ms() - t0 >= 250 && now_ms() - t0 < 3000);
	CHECK(vmm_ok);

	/* No VMM socket at all. */
	CHECK_RC(endpoint_parse("hvsock:/nonexistent/vtpm-test.vsock:5000", 0, &ep), 0);
	errno = 0;
	CHECK_RC(endpoint_connect(&ep, 1000, &fd), VTPM_E_IO);
	CHECK(errno == ENOENT);
	/* Only the VMM listens on hybrid vsock. */
	CHECK_RC(endpoint_listen(&ep, 0600, &fd), VTPM_E_UNSUPPORTED);
}

/*
 * The nonblocking dial against a live unix listener, driven by hand.
 */
static void
test_dial(void)
{
	struct endpoint ep;
	struct endpoint_dial d;
	char spec[256], path[200];
	int lfd, fd, afd, r;

	tmp_path(path, sizeof(path), "dial.sock");
	snprintf(spec, sizeof(spec), "unix:%s", path);
	CHECK_RC(endpoint_parse(spec, 0, &ep), 0);
	CHECK_RC(endpoint_listen(&ep, 0600, &lfd), 0);
	r = endpoint_dial_start(&d, &ep, -1, &fd);
	while (r == VTPM_E_AGAIN) {
		struct pollfd pfd = { .fd = d.ed_fd, .events = d.ed_events };

		if (poll(&pfd, 1, 1000) != 1)
			break;
		r = endpoint_dial_step(&d, &fd);
	}
	CHECK_RC(r, 0);
	CHECK(fd >= 0 && fd_flag(fd, F_GETFL, O_NONBLOCK) && d.ed_fd == -1);
	endpoint_dial_abort(&d);	/* harmless after success */
	afd = accept_wait(lfd);
	CHECK(afd >= 0);
	close(afd);
	close(fd);
	close(lfd);
	unlink(path);
}

/*
 * vsock: this machine has no vsock loopback, so only the failure paths run.
 * A seccomp filter in a child makes socket(AF_VSOCK, ...) fail with
 * EAFNOSUPPORT, as on a kernel without the vsock module.
 */

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG0_LO	offsetof(struct seccomp_data, args[0])
#else
#define ARG0_LO	(offsetof(struct seccomp_data, args[0]) + 4)
#endif

static int
deny_vsock(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LO),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_VSOCK, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
		.filter = filter,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static void
test_vsock(void)
{
	struct endpoint ep;
	int fd, status, st[2];
	pid_t pid;

	/* The listening form cannot be dialled; no system call is made. */
	CHECK_RC(endpoint_parse("vsock:5000", 0, &ep), 0);
	CHECK_RC(endpoint_connect(&ep, 100, &fd), VTPM_E_INVAL);

	if (pipe(st) == -1) {
		CHECK(0);
		return;
	}
	if ((pid = fork()) == 0) {
		int res[6] = { 0 }, r;

		close(st[0]);
		if (deny_vsock() == -1)
			_exit(2);
		errno = 0;
		r = endpoint_listen(&ep, -1, &fd);
		res[0] = r == VTPM_E_UNSUPPORTED;
		res[1] = errno == EAFNOSUPPORT && fd == -1;
		res[2] = strcmp(vtpm_strerror(r), "not supported") == 0;
		if (endpoint_parse("vsock:3:5000", 0, &ep) != 0)
			_exit(3);
		errno = 0;
		r = endpoint_connect(&ep, 100, &fd);
		res[3] = r == VTPM_E_UNSUPPORTED;
		res[4] = errno == EAFNOSUPPORT && fd == -1;
		/* Other families still work under the filter. */
		r = endpoint_parse("tcp:127.0.0.1:0", 0, &ep);
		res[5] = r == 0 && endpoint_listen(&ep, -1, &fd) == 0;
		if (write(st[1], res, sizeof(res)) != sizeof(res))
			_exit(4);
		_exit(0);
	}
	close(st[1]);
	{
		int res[6] = { 0 }, i;

		CHECK(read(st[0], res, sizeof(res)) == sizeof(res));
		for (i = 0; i < 6; i++) {
			if (!res[i])
				fprintf(stderr, "FAIL: vsock check %d\n", i);
			CHECK(res[i]);
		}
	}
	close(st[0]);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_parse_good();
	test_parse_bad();
	test_format();
	test_unix();
	test_tcp();
	test_hvsock();
	test_dial();
	test_vsock();
	rmdir(tmpdir);
	printf("endpoint: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
