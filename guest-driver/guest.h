/*
 * guest.h: the inside of vtpm-guest. The core (vtpm_guest.c) owns the one
 * attested channel to vtpmd; front ends turn what guest software speaks
 * into commands on it:
 *
 *	front end	file		speaks to			attach
 *	local socket	local_srv.c	TCTI plugin, local clients	AUTO_STARTUP
 *	--proxy		proxy.c		the kernel (vtpm_proxy)		AUTO_STARTUP
 *	--swtpm PATH	swtpm_srv.c	QEMU, tcti-swtpm		raw: no Startup
 *
 * One thread, one poll loop (guest_serve): front ends add their fds, the
 * loop hands back the events. A command runs to completion (or to its
 * deadline) before the loop looks at anything else, so there is one
 * outstanding command at a time on the channel, whoever sent it.
 */
#ifndef VTPM_GUEST_H
#define VTPM_GUEST_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---------- deadlines (CLOCK_MONOTONIC) ---------- */

/* Sets *dl to now + ms. */
void guest_deadline_in(struct timespec *dl, int ms);
/* Milliseconds left until dl; 0 once it has passed (never negative). */
int guest_ms_left(const struct timespec *dl);

/* ---------- the channel to vtpmd ---------- */

/* How a command or control operation ended. */
enum guest_outcome {
	GUEST_OK = 0,	/* answered; the answer is in the caller's buffer */
	GUEST_NOT_SENT,	/* never reached vtpmd by the deadline: it did not run */
	GUEST_UNKNOWN,	/* sent but not answered in time (or the channel broke
			 * after sending): it may have run; the channel was
			 * dropped, since a late answer could not be matched */
	GUEST_ABANDONED	/* abandon() returned non-zero before it was sent */
};

/*
 * Called while a command waits for a connection (never after it was sent):
 * non-zero means the requester has given up (the kernel timed the command
 * out and sent another one), so the command is dropped unsent.
 */
typedef int (*guest_abandon_fn)(void *arg);

/*
 * guest_tpm_transact: runs one TPM 2.0 command (len 10..4096 bytes, header
 * size already checked by the caller) at the given locality (0..4) and puts
 * the response (10..cap bytes, its size field checked) in rsp and rlen.
 * Connects (attests, attaches) first if needed, with backoff, until
 * deadline. A command that could not be sent is retried on a new
 * connection until the deadline (it cannot have run); one that was sent is
 * never sent again. Returns an enum guest_outcome. abandon may be NULL.
 */
int guest_tpm_transact(uint8_t locality, const uint8_t *cmd, size_t len,
    uint8_t *rsp, size_t cap, size_t *rlen, const struct timespec *deadline,
    guest_abandon_fn abandon, void *arg);

/*
 * guest_ctrl: one control operation (docs/PROTOCOL.md section 6): op and
 * alen bytes of args; vtpmd's u32 result in *result and its data (at most
 * cap bytes) in data and dlen. Same connection and retry rules as above.
 * Returns an enum guest_outcome.
 */
int guest_ctrl(uint8_t op, const uint8_t *args, size_t alen, uint32_t *result,
    uint8_t *data, size_t cap, size_t *dlen, const struct timespec *deadline);

/*
 * guest_detach: ends the session in order (CTRL_DETACH, bounded), closes
 * the channel and stays detached: no background reconnect until the next
 * command or control operation. vtpmd keeps the TPM and its state.
 */
void guest_detach(void);

/* The per-command bound (--command-timeout), in milliseconds. */
int guest_command_timeout_ms(void);

/* ---------- the event loop ---------- */

#define GUEST_MAX_POLLFDS	160

/*
 * A front end. fe_fill adds the fds it wants watched to pfd (at most max)
 * and returns how many; fe_dispatch gets the same entries back, revents
 * filled in, in the same order; fe_stop closes everything (sockets
 * unlinked) at exit. Front ends are registered once, before guest_serve.
 */
struct guest_fe {
	const char	*fe_name;
	int		(*fe_fill)(struct pollfd *pfd, int max);
	void		(*fe_dispatch)(const struct pollfd *pfd, int n);
	void		(*fe_stop)(void);
};

void guest_fe_add(const struct guest_fe *fe);

/* ---------- the front ends ---------- */

/*
 * local_srv_start: listens on path (docs/LOCAL-PROTOCOL.md) and registers
 * the local-socket front end. Fatal on failure.
 */
void local_srv_start(const char *path);

/* --no-raw: HELLO's RAW flag is not granted; every client gets the RM. */
void local_srv_deny_raw(void);

/*
 * proxy_start: opens /dev/vtpmx, creates a TPM 2.0 vtpm_proxy device,
 * prints its name on stdout and registers the front end serving it. Call
 * only once attached: the kernel sends commands at once. Fatal on failure.
 */
void proxy_start(void);

/*
 * swtpm_srv_start: listens on path (data channel) and path.ctrl (control
 * channel), both unix sockets, and registers the swtpm-compatible front
 * end. Fatal on failure.
 */
void swtpm_srv_start(const char *path);

/* Tells the service manager (sd_notify protocol, no libsystemd) READY=1. */
void guest_notify_ready(void);

/* TDX: this launch's nonce file (docs/ATTESTATION.md). */
#define GUEST_LAUNCH_FILE	"/run/vtpm-guest-launch-id"

/* `vtpm-guest bind-ek ...` (bind_ek.c): argv[0] is "bind-ek"; returns the exit status. */
int guest_bind_ek(int argc, char **argv);

#endif
