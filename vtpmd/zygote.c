/*
 * zygote.c: the worker zygote (zygote.h), both sides. The zygote trusts the
 * parent (its only peer); the parent checks every zygote message's exact
 * length and treats anything else as the zygote failing (it restarts it).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cursor.h"
#include "ipc.h"
#include "log.h"
#include "parent.h"
#include "sandbox.h"
#include "worker.h"
#include "zygote.h"

#define ZYGOTE_FD	3

/* ---------- the zygote process ---------- */

static int
zygote_send(uint8_t type, const uint8_t *body, size_t len)
{
	return ipc_send(ZYGOTE_FD, type, body, len, -1);
}

int
zygote_main(uid_t uid, gid_t gid)
{
	static uint8_t buf[256];
	struct signalfd_siginfo si;
	struct pollfd pfd[2];
	const uint8_t *body;
	uint8_t type, out[8];
	size_t len;
	sigset_t mask;
	int sfd, fd, rc, status;
	pid_t pid;

	log_init("vtpmd-zygote", log_get_level());
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		fatal("PR_SET_PDEATHSIG");
	if (getppid() == 1)
		_exit(2);
	worker_lib_init(1);
	sandbox_worker_prepare();
	sandbox_zygote_enter(uid, gid);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
	    (sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		fatal("signalfd");
	for (;;) {
		pfd[0].fd = ZYGOTE_FD;
		pfd[0].events = POLLIN;
		pfd[1].fd = sfd;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		if (pfd[1].revents & POLLIN) {
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
			while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
				be32_enc(out, (uint32_t)pid);
				be32_enc(out + 4, (uint32_t)status);
				if (zygote_send(ZYG_EXITED, out, 8) != 0)
					_exit(2);
			}
		}
		if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
			continue;
		rc = ipc_recv(ZYGOTE_FD, buf, sizeof(buf), &type, &body, &len, &fd);
		if (rc == VTPM_E_AGAIN)
			continue;
		if (rc != 0)
			_exit(rc == VTPM_E_CLOSED ? 0 : 2);	/* the parent is gone */
		if (type != ZYG_SPAWN || len != 4 || fd < 0)
			fatalx("unexpected message 0x%02x from the parent", type);
		pid = fork();
		if (pid == 0) {
			/* The new worker: its IPC socket becomes fd 3. */
			if (dup2(fd, WORKER_IPC_FD) < 0)
				_exit(127);
			close(fd);
			close(sfd);
			sigprocmask(SIG_UNBLOCK, &mask, NULL);
			_exit(worker_run((uid_t)-1, (gid_t)-1));
		}
		close(fd);
		if (pid < 0)
			log_warn("fork");
		memcpy(out, body, 4);
		be32_enc(out + 4, pid > 0 ? (uint32_t)pid : 0);
		if (zygote_send(ZYG_SPAWNED, out, 8) != 0)
			_exit(2);
	}
}

/* ---------- the parent's side ---------- */

static struct ev zyg_ev = { .kind = EV_ZYGOTE, .fd = -1 };
static pid_t zyg_pid;
static uint32_t next_id;

/*
 * Spare workers: forked by the zygote ahead of need, sandboxed, waiting
 * for IPC_INIT on their socket exactly as a worker asked for at attach
 * time would. Each is handed to one instance and never comes back: a
 * worker serves one instance and exits (IPC_INIT twice is fatal in it).
 */
struct spare {
	int		 sp_fd;		/* the parent's end of its IPC socket */
	uint32_t	 sp_id;		/* spawn id */
	pid_t		 sp_pid;	/* -1 until ZYG_SPAWNED */
	struct timespec	 sp_asked;	/* when ZYG_SPAWN was sent */
};

/*
 * A spare that dies younger than this is not replaced at once (the next
 * attach asks again): a worker that cannot start must not make the zygote
 * fork in a loop.
 */
#define SPARE_MIN_LIFE_MS	200
static struct spare spares[ZYGOTE_SPARES_MAX];
static int nspares;

static void spares_drop_all(void);

int
zygote_start(void)
{
	char ids[32];
	char *argv[] = { "vtpmd", "--worker-zygote", ids, NULL, NULL };
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		log_warn("socketpair");
		return VTPM_E_IO;
	}
	snprintf(ids, sizeof(ids), "%u:%u", (unsigned)V->cfg.worker_uid,
	    (unsigned)V->cfg.worker_gid);
	if (V->cfg.verbose)
		argv[3] = "-v";
	if ((pid = fork()) < 0) {
		log_warn("fork");
		close(sv[0]);
		close(sv[1]);
		return VTPM_E_IO;
	}
	if (pid == 0) {
		/*
		 * Only fds 0-2 and the socket reach the zygote and so every
		 * worker: not every library opens close-on-exec (LMDB keeps
		 * the store's data file open without it), and a worker may
		 * read and write any fd it holds.
		 */
		if (dup2(sv[1], ZYGOTE_FD) < 0 || close_range(ZYGOTE_FD + 1, ~0U, 0) != 0)
			_exit(127);
		execv(V->self_exe, argv);
		_exit(127);
	}
	close(sv[1]);
	zyg_pid = pid;
	zyg_ev.fd = sv[0];
	if (ev_add(&zyg_ev, EPOLLIN) != 0) {
		close(sv[0]);
		zyg_ev.fd = -1;
		return VTPM_E_IO;
	}
	log_info("worker zygote %d started", (int)pid);
	zygote_spares_fill();
	return 0;
}

int
zygote_socketpair(int sv[2])
{
	int sndbuf = 1 << 20;
	struct timeval tv = { 2, 0 };

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		log_warn("socketpair");
		return VTPM_E_IO;
	}
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	/* a worker that stops reading cannot block the parent for long */
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return 0;
}

int
zygote_spawn(int worker_fd, uint32_t *id)
{
	uint8_t b[4];
	int rc;

	if (zyg_ev.fd < 0)
		return VTPM_E_AGAIN;
	*id = ++next_id;
	be32_enc(b, *id);
	if ((rc = ipc_send(zyg_ev.fd, ZYG_SPAWN, b, sizeof(b), worker_fd)) != 0)
		log_warnx("worker zygote: %s", vtpm_strerror(rc));
	return rc;
}

void
zygote_spares_fill(void)
{
	struct spare *sp;
	int sv[2];

	while (nspares < V->cfg.worker_spares && zyg_ev.fd >= 0 && !V->shutting_down) {
		if (zygote_socketpair(sv) != 0)
			return;
		sp = &spares[nspares];
		if (zygote_spawn(sv[1], &sp->sp_id) != 0) {
			close(sv[0]);
			close(sv[1]);
			return;
		}
		close(sv[1]);
		sp->sp_fd = sv[0];
		sp->sp_pid = -1;
		clock_gettime(CLOCK_MONOTONIC, &sp->sp_asked);
		nspares++;
	}
}

static void
spare_remove(int i)
{
	close(spares[i].sp_fd);
	spares[i] = spares[--nspares];
	memset(&spares[nspares], 0, sizeof(spares[nspares]));
}

/* A spare is usable while its end of the socket is quiet: no EOF, no data. */
static int
spare_alive(const struct spare *sp)
{
	struct pollfd pfd = { .fd = sp->sp_fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 0;
}

int
zygote_take(int *fd, uint32_t *id, pid_t *pid)
{
	struct spare sp;

	while (nspares > 0) {
		sp = spares[0];
		spares[0] = spares[--nspares];
		if (!spare_alive(&sp)) {
			log_warnx("spare worker %d is gone; not used", (int)sp.sp_pid);
			close(sp.sp_fd);
			if (sp.sp_pid > 0)
				kill(sp.sp_pid, SIGKILL);	/* its exit is reported */
			continue;
		}
		*fd = sp.sp_fd;
		*id = sp.sp_id;
		*pid = sp.sp_pid;
		return 0;
	}
	return VTPM_E_AGAIN;
}

int
zygote_spares(void)
{
	return nspares;
}

static void
spares_drop_all(void)
{
	while (nspares > 0)
		spare_remove(nspares - 1);	/* they exit on EOF */
}

static void
zygote_lost(const char *why)
{
	log_warnx("worker zygote %d lost (%s); its workers end with it", (int)zyg_pid, why);
	if (zyg_ev.fd >= 0) {
		ev_del(&zyg_ev);
		close(zyg_ev.fd);
		zyg_ev.fd = -1;
	}
	if (zyg_pid > 0)
		kill(zyg_pid, SIGKILL);	/* reaped in zygote_reaped() */
	spares_drop_all();
	insts_zygote_lost();
}

static long long
spare_age_ms(const struct spare *sp)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - sp->sp_asked.tv_sec) * 1000 +
	    (now.tv_nsec - sp->sp_asked.tv_nsec) / 1000000;
}

/* ZYG_SPAWNED / ZYG_EXITED about a spare: 1 if it was one. */
static int
spare_event(uint8_t type, uint32_t a, uint32_t b)
{
	int i;

	for (i = 0; i < nspares; i++) {
		if (type == ZYG_SPAWNED && spares[i].sp_id == a && spares[i].sp_pid == -1) {
			if (b == 0) {
				log_warnx("worker zygote could not fork a spare worker");
				spare_remove(i);	/* refilled at the next attach */
				return 1;
			}
			spares[i].sp_pid = (pid_t)b;
			log_debug("spare worker %d ready", (int)b);
			return 1;
		}
		if (type == ZYG_EXITED && spares[i].sp_pid == (pid_t)a) {
			int young = spare_age_ms(&spares[i]) < SPARE_MIN_LIFE_MS;

			log_warnx("spare worker %d exited (status 0x%x); %s", (int)a, b,
			    young ? "it died at start: replaced at the next attach" :
			    "replacing it");
			spare_remove(i);
			if (!young)
				zygote_spares_fill();
			return 1;
		}
	}
	return 0;
}

void
zygote_event(void)
{
	static uint8_t buf[64];
	const uint8_t *body;
	uint8_t type;
	size_t len;
	int fd, rc;

	while (zyg_ev.fd >= 0) {
		rc = ipc_recv(zyg_ev.fd, buf, sizeof(buf), &type, &body, &len, &fd);
		if (rc == VTPM_E_AGAIN)
			return;
		if (rc != 0 || fd >= 0 || len != 8 ||
		    (type != ZYG_SPAWNED && type != ZYG_EXITED)) {
			if (fd >= 0)
				close(fd);
			zygote_lost(rc != 0 ? vtpm_strerror(rc) : "bad message");
			return;
		}
		if (spare_event(type, be32_dec(body), be32_dec(body + 4)))
			continue;
		if (type == ZYG_SPAWNED)
			inst_spawned(be32_dec(body), (pid_t)be32_dec(body + 4));
		else
			inst_reaped((pid_t)be32_dec(body), (int)be32_dec(body + 4));
	}
}

int
zygote_reaped(pid_t pid)
{
	if (pid != zyg_pid || pid <= 0)
		return 0;
	zyg_pid = 0;
	if (zyg_ev.fd >= 0)
		zygote_lost("exited");
	if (!V->shutting_down && zygote_start() != 0)
		log_warnx("worker zygote could not be restarted; attaches will fail");
	return 1;
}

void
zygote_stop(void)
{
	spares_drop_all();
	if (zyg_ev.fd >= 0) {
		ev_del(&zyg_ev);
		close(zyg_ev.fd);	/* the zygote exits on EOF */
		zyg_ev.fd = -1;
	}
}
