/*
 * proxy.c: the guest kernel's own TPM (vtpm-guest --proxy). Creates
 * /dev/tpmN and /dev/tpmrmN through Linux's vtpm_proxy driver and serves
 * the fd the driver returns: one command per read(), one response per
 * write(), one at a time. Answers the driver's SET_LOCALITY itself and
 * sends the locality with every command. Trusts the kernel to frame its
 * commands but checks every size anyway (proxy_cmd_parse).
 *
 * When vtpmd cannot answer: a command that never reached it is dropped if
 * the kernel gave up on it (it sent the next one), else answered with
 * TPM_RC_FAILURE at the command timeout; a command that reached vtpmd but
 * got no answer is answered with TPM_RC_FAILURE, never sent again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vtpm_proxy.h>

#include "cursor.h"
#include "guest.h"
#include "log.h"
#include "tpm_frame.h"

static struct proxy {
	int		 fd;		/* the server side of the device pair */
	unsigned	 tpm_num;
	uint8_t		 locality;	/* from the driver's last SET_LOCALITY */
	int		 ready;		/* /dev/tpmN registered, READY=1 sent */
	uint8_t		 cmd[TPM_FRAME_MAX_CMD];
	uint8_t		 rsp[2 * TPM_FRAME_MAX_CMD];
} P = { .fd = -1 };

/* The kernel queued another command: it timed this one out. */
static int
proxy_abandoned(void *arg)
{
	struct pollfd p = { .fd = P.fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

static void
proxy_write(const uint8_t *rsp, size_t len, uint32_t cc)
{
	ssize_t n;

	do
		n = write(P.fd, rsp, len);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len)
		return;
	if (n < 0 && errno == EPIPE)
		fatalx("the kernel closed /dev/tpm%u", P.tpm_num);
	/* EIO: the kernel no longer waits for this response (it timed out). */
	if (n < 0)
		log_warn("response to command 0x%x not taken by the kernel", cc);
	else
		log_warnx("response to command 0x%x cut short by the kernel", cc);
}

static void
proxy_answer_rc(uint32_t rc, uint32_t cc)
{
	uint8_t out[TPM_FRAME_HDR_LEN];

	tpm_frame_error(out, rc);
	proxy_write(out, sizeof(out), cc);
}

static void
proxy_command(void)
{
	struct timespec dl;
	uint32_t rc, cc;
	uint8_t loc;
	size_t rlen;
	ssize_t n;

	n = read(P.fd, P.cmd, sizeof(P.cmd));
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		if (errno == EPIPE)
			fatalx("the kernel closed /dev/tpm%u (registration failed?)",
			    P.tpm_num);
		fatal("read from the vtpm_proxy device");
	}
	cc = n >= (ssize_t)TPM_FRAME_HDR_LEN ? be32_dec(P.cmd + 6) : 0;
	switch (proxy_cmd_parse(P.cmd, (size_t)n, &loc, &rc)) {
	case PROXY_CMD_SET_LOCALITY:
		log_debug("kernel selects locality %u", loc);
		P.locality = loc;
		proxy_answer_rc(TPM_FRAME_RC_SUCCESS, cc);
		return;
	case PROXY_CMD_BAD:
		log_warnx("malformed command from the kernel (%zd bytes, code 0x%x): "
		    "answering 0x%x", n, cc, rc);
		proxy_answer_rc(rc, cc);
		return;
	}
	guest_deadline_in(&dl, guest_command_timeout_ms());
	switch (guest_tpm_transact(P.locality, P.cmd, (size_t)n, P.rsp, sizeof(P.rsp),
	    &rlen, &dl, proxy_abandoned, NULL)) {
	case GUEST_OK:
		if (!tpm_frame_rsp_ok(P.rsp, rlen, TPM_FRAME_MAX_CMD)) {
			log_warnx("command 0x%x: a %zu-byte response does not fit the "
			    "kernel's buffer: answering TPM_RC_FAILURE", cc, rlen);
			proxy_answer_rc(TPM_FRAME_RC_FAILURE, cc);
			return;
		}
		proxy_write(P.rsp, rlen, cc);
		return;
	case GUEST_NOT_SENT:
		log_warnx("command 0x%x: vtpmd not reachable within %d ms: answering "
		    "TPM_RC_FAILURE (it did not run)", cc, guest_command_timeout_ms());
		proxy_answer_rc(TPM_FRAME_RC_FAILURE, cc);
		return;
	case GUEST_UNKNOWN:
		log_warnx("command 0x%x: no answer from vtpmd: answering "
		    "TPM_RC_FAILURE (it may have run)", cc);
		proxy_answer_rc(TPM_FRAME_RC_FAILURE, cc);
		return;
	case GUEST_ABANDONED:
		log_warnx("command 0x%x: the kernel gave up on it before vtpmd was "
		    "reachable; dropped (it did not run)", cc);
		return;
	}
}

/* READY=1 once the kernel has registered the device (its start-up done). */
static void
proxy_check_ready(void)
{
	char sys[64], dev[64];

	if (P.ready)
		return;
	snprintf(sys, sizeof(sys), "/sys/class/tpm/tpm%u/dev", P.tpm_num);
	snprintf(dev, sizeof(dev), "/dev/tpm%u", P.tpm_num);
	if (access(sys, F_OK) != 0 && access(dev, F_OK) != 0)
		return;
	P.ready = 1;
	log_info("/dev/tpm%u and /dev/tpmrm%u are registered", P.tpm_num, P.tpm_num);
	guest_notify_ready();
}

static int
proxy_fill(struct pollfd *pfd, int max)
{
	if (max < 1)
		fatalx("poll set too small");
	pfd[0].fd = P.fd;
	pfd[0].events = POLLIN;
	return 1;
}

static void
proxy_dispatch(const struct pollfd *pfd, int n)
{
	if (pfd[0].revents & POLLIN)
		proxy_command();
	else if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL))
		fatalx("the kernel closed /dev/tpm%u", P.tpm_num);
	proxy_check_ready();
}

static void
proxy_stop(void)
{
	if (P.fd >= 0)
		close(P.fd);	/* the kernel removes /dev/tpmN */
	P.fd = -1;
}

static const struct guest_fe proxy_fe = {
	.fe_name	= "vtpm_proxy",
	.fe_fill	= proxy_fill,
	.fe_dispatch	= proxy_dispatch,
	.fe_stop	= proxy_stop,
};

void
proxy_start(void)
{
	struct vtpm_proxy_new_dev nd;
	int x;

	if ((x = open("/dev/vtpmx", O_RDWR | O_CLOEXEC)) < 0)
		fatal("open /dev/vtpmx (is tpm_vtpm_proxy loaded? run as root)");
	memset(&nd, 0, sizeof(nd));
	nd.flags = VTPM_PROXY_FLAG_TPM2;
	if (ioctl(x, VTPM_PROXY_IOC_NEW_DEV, &nd) != 0)
		fatal("VTPM_PROXY_IOC_NEW_DEV");
	close(x);
	P.fd = (int)nd.fd;
	P.tpm_num = nd.tpm_num;
	if (fcntl(P.fd, F_SETFD, FD_CLOEXEC) != 0)
		fatal("fcntl");
	guest_fe_add(&proxy_fe);
	printf("New TPM device: /dev/tpm%u (major/minor = %u/%u)\n", nd.tpm_num,
	    nd.major, nd.minor);
	fflush(stdout);
	log_info("serving /dev/tpm%u and /dev/tpmrm%u", nd.tpm_num, nd.tpm_num);
}
