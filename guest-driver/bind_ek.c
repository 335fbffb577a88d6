/*
 * bind_ek.c: `vtpm-guest bind-ek`, a one-shot command run beside the agent:
 * reads the vTPM's EK public keys through the running agent's local socket
 * (TPM2_CreatePrimary with the default EK templates), and writes this
 * guest's evidence whose report data is their hash (docs/ENDORSEMENT.md
 * section 4). Trusts the TPM's answers only as far as the cursor checks them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "attest.h"
#include "cursor.h"
#include "guest.h"
#include "proto.h"
#include "tcti_vtpm.h"

#define TPM_RH_ENDORSEMENT	0x4000000B
#define TPM_RS_PW		0x40000009
#define TPM_CC_CREATE_PRIMARY	0x131
#define TPM_CC_FLUSH_CONTEXT	0x165

/* PolicySecret(TPM_RH_ENDORSEMENT): the default EK authPolicy. */
static const uint8_t ek_policy[32] = {
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d,
	0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
	0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

static void
bind_usage(FILE *f)
{
	fprintf(f,
"usage: vtpm-guest bind-ek --out FILE [--ek rsa|ecc|both] [--pem FILE] [--socket PATH]\n"
"                          [--attestation auto|snp|tdx|sim] [--sim-measurement HEX48]\n"
"                          [--sim-host-data HEX32] [--sim-launch-id HEX32]\n"
"Writes this guest's evidence (an envelope for vtpmctl verify-evidence --evidence)\n"
"whose report data is SHA-512(\"vtpmd-ek-bind-v1\" || RSA EK SPKI || ECC EK SPKI),\n"
"and prints that report data in hex.\n");
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
read_all(int fd, uint8_t *p, size_t n)
{
	ssize_t r;

	while (n > 0) {
		if ((r = read(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = ECONNRESET;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int
local_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vtpm-guest: bind-ek: socket path too long\n");
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "vtpm-guest: bind-ek: %s: %s (is vtpm-guest running?)\n", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/*
 * One TPM command on the local socket (docs/LOCAL-PROTOCOL.md): sends it,
 * reads the response into rsp and checks its framing and response code.
 */
static int
local_tpm(int fd, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap, size_t *rlen)
{
	uint8_t hdr[VTPM_LOCAL_HDR_LEN], req[VTPM_LOCAL_HDR_LEN + 1 + VTPM_LOCAL_MAX_COMMAND];
	uint32_t status, blen, rc;

	if (len > VTPM_LOCAL_MAX_COMMAND)
		return -1;
	be32_enc(req, VTPM_LOCAL_OP_TPM_COMMAND);
	be32_enc(req + 4, (uint32_t)(1 + len));
	req[8] = 0;	/* locality */
	memcpy(req + 9, cmd, len);
	if (write_all(fd, req, 9 + len) != 0 || read_all(fd, hdr, sizeof(hdr)) != 0) {
		fprintf(stderr, "vtpm-guest: bind-ek: local socket: %s\n", strerror(errno));
		return -1;
	}
	status = be32_dec(hdr);
	blen = be32_dec(hdr + 4);
	if (blen > VTPM_LOCAL_MAX_BODY || blen > cap || (status != 0 && blen != 0)) {
		fprintf(stderr, "vtpm-guest: bind-ek: malformed answer on the local socket\n");
		return -1;
	}
	if (status != VTPM_LOCAL_STATUS_OK) {
		fprintf(stderr, "vtpm-guest: bind-ek: the TPM is unavailable (status %u)\n",
		    status);
		return -1;
	}
	if (read_all(fd, rsp, blen) != 0) {
		fprintf(stderr, "vtpm-guest: bind-ek: local socket: %s\n", strerror(errno));
		return -1;
	}
	if (blen < TPM2_HDR_LEN || be32_dec(rsp + 2) != blen) {
		fprintf(stderr, "vtpm-guest: bind-ek: malformed TPM response\n");
		return -1;
	}
	if ((rc = be32_dec(rsp + 6)) != 0) {
		fprintf(stderr, "vtpm-guest: bind-ek: the TPM answered 0x%03x%s\n", rc,
		    (rc & 0xfff) == 0x98e || (rc & 0xfff) == 0x922 ? " (the endorsement "
		    "hierarchy has a password: not supported)" : "");
		return -1;
	}
	*rlen = blen;
	return 0;
}

/* TPM2_CreatePrimary(TPM_RH_ENDORSEMENT) with the default EK template L-1 or L-2. */
static size_t
ek_create_cmd(uint8_t *buf, size_t cap, int ecc)
{
	struct wbuf w;
	uint8_t *pub_size;
	size_t start, i, n;

	wbuf_init(&w, buf, cap);
	wbuf_put_u16(&w, TPM2_ST_SESSIONS);
	wbuf_put_u32(&w, 0);			/* size, below */
	wbuf_put_u32(&w, TPM_CC_CREATE_PRIMARY);
	wbuf_put_u32(&w, TPM_RH_ENDORSEMENT);
	wbuf_put_u32(&w, 9);			/* authorization: empty password */
	wbuf_put_u32(&w, TPM_RS_PW);
	wbuf_put_u16(&w, 0);
	wbuf_put_u8(&w, 0);
	wbuf_put_u16(&w, 0);
	wbuf_put_u16(&w, 4);			/* inSensitive: empty auth and data */
	wbuf_put_u16(&w, 0);
	wbuf_put_u16(&w, 0);
	pub_size = wbuf_reserve(&w, 2);		/* inPublic */
	start = w.w_len;
	wbuf_put_u16(&w, ecc ? 0x0023 : 0x0001);
	wbuf_put_u16(&w, 0x000B);		/* nameAlg SHA-256 */
	wbuf_put_u32(&w, 0x000300B2);
	wbuf_put_u16(&w, sizeof(ek_policy));
	wbuf_put_bytes(&w, ek_policy, sizeof(ek_policy));
	wbuf_put_u16(&w, 0x0006);		/* AES-128-CFB */
	wbuf_put_u16(&w, 128);
	wbuf_put_u16(&w, 0x0043);
	wbuf_put_u16(&w, 0x0010);		/* scheme NULL */
	if (ecc) {
		wbuf_put_u16(&w, 0x0003);	/* NIST P-256 */
		wbuf_put_u16(&w, 0x0010);	/* kdf NULL */
		for (i = 0; i < 2; i++) {
			wbuf_put_u16(&w, 32);
			wbuf_put_bytes(&w, (const uint8_t[32]){ 0 }, 32);
		}
	} else {
		wbuf_put_u16(&w, 2048);
		wbuf_put_u32(&w, 0);		/* exponent 65537 */
		wbuf_put_u16(&w, 256);
		for (i = 0; i < 8; i++)
			wbuf_put_bytes(&w, (const uint8_t[32]){ 0 }, 32);
	}
	if (pub_size != NULL)
		be16_enc(pub_size, (uint16_t)(w.w_len - start));
	wbuf_put_u16(&w, 0);			/* outsideInfo */
	wbuf_put_u32(&w, 0);			/* creationPCR: none */
	if (wbuf_end(&w, &n) != 0)
		return 0;
	be32_enc(buf + 2, (uint32_t)n);
	return n;
}

/* Creates one EK, files its SPKI in k and flushes it. */
static int
ek_read(int fd, int ecc, struct attest_ek_keys *k)
{
	uint8_t cmd[512], rsp[VTPM_LOCAL_MAX_BODY], flush[14];
	const uint8_t *tpmt;
	struct cursor c;
	uint32_t handle, psize;
	uint16_t tag, plen;
	size_t n, rlen;
	int rc;

	if ((n = ek_create_cmd(cmd, sizeof(cmd), ecc)) == 0 ||
	    local_tpm(fd, cmd, n, rsp, sizeof(rsp), &rlen) != 0)
		return -1;
	cur_init(&c, rsp, rlen);
	if (cur_get_u16(&c, &tag) != 0 || tag != TPM2_ST_SESSIONS || cur_skip(&c, 8) != 0 ||
	    cur_get_u32(&c, &handle) != 0 || cur_get_u32(&c, &psize) != 0 ||
	    cur_get_u16(&c, &plen) != 0 || cur_get_ref(&c, &tpmt, plen) != 0) {
		fprintf(stderr, "vtpm-guest: bind-ek: malformed CreatePrimary response\n");
		return -1;
	}
	rc = attest_ek_spki_from_tpmt(tpmt, plen, ecc, ecc ? k->ek_ecc : k->ek_rsa,
	    ATTEST_EK_SPKI_MAX, ecc ? &k->ek_ecc_len : &k->ek_rsa_len);
	be16_enc(flush, 0x8001);
	be32_enc(flush + 2, sizeof(flush));
	be32_enc(flush + 6, TPM_CC_FLUSH_CONTEXT);
	be32_enc(flush + 10, handle);
	(void)local_tpm(fd, flush, sizeof(flush), rsp, sizeof(rsp), &rlen);
	if (rc != 0) {
		fprintf(stderr, "vtpm-guest: bind-ek: the %s EK is not of the default template's "
		    "shape: %s\n", ecc ? "ECC" : "RSA", vtpm_strerror(rc));
		return -1;
	}
	return 0;
}

static int
write_file(const char *path, const void *p, size_t n)
{
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 ||
	    write_all(fd, p, n) != 0 || close(fd) != 0) {
		fprintf(stderr, "vtpm-guest: bind-ek: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return 0;
}

/* The bound keys as PEM PUBLIC KEY blocks, RSA first. */
static int
write_pem(const char *path, const struct attest_ek_keys *k)
{
	const uint8_t *der[2] = { k->ek_rsa, k->ek_ecc };
	size_t len[2] = { k->ek_rsa_len, k->ek_ecc_len }, i, j, o = 0;
	char out[4096], b64[1024];

	for (i = 0; i < 2; i++) {
		if (len[i] == 0)
			continue;
		sodium_bin2base64(b64, sizeof(b64), der[i], len[i],
		    sodium_base64_VARIANT_ORIGINAL);
		o += (size_t)snprintf(out + o, sizeof(out) - o, "-----BEGIN PUBLIC KEY-----\n");
		for (j = 0; b64[j] != '\0'; j += 64)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%.64s\n", b64 + j);
		o += (size_t)snprintf(out + o, sizeof(out) - o, "-----END PUBLIC KEY-----\n");
	}
	return write_file(path, out, o);
}

int
guest_bind_ek(int argc, char **argv)
{
	enum { O_OUT = 256, O_EK, O_PEM, O_SOCKET, O_ATTEST, O_MEAS, O_HOST, O_LAUNCH };
	static const struct option opts[] = {
		{ "out", required_argument, NULL, O_OUT },
		{ "ek", required_argument, NULL, O_EK },
		{ "pem", required_argument, NULL, O_PEM },
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "attestation", required_argument, NULL, O_ATTEST },
		{ "sim-measurement", required_argument, NULL, O_MEAS },
		{ "sim-host-data", required_argument, NULL, O_HOST },
		{ "sim-launch-id", required_argument, NULL, O_LAUNCH },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct attest_provider_opts po;
	struct attest_provider *prov = NULL;
	struct attest_ek_keys k;
	const char *out = NULL, *pem = NULL, *sock = getenv(VTPM_LOCAL_ENV_SOCKET);
	const char *which = "both";
	uint8_t rd[ATTEST_REPORT_DATA_LEN], ev[ATTEST_MAX_EVIDENCE];
	char why[ATTEST_WHY_LEN], rdhex[2 * ATTEST_REPORT_DATA_LEN + 1];
	size_t evlen;
	int opt, fd = -1, rc, ret = 1;

	memset(&po, 0, sizeof(po));
	memset(&k, 0, sizeof(k));
	po.ap_kind = "auto";
	po.ap_launch_file = GUEST_LAUNCH_FILE;
	if (sock == NULL || sock[0] == '\0')
		sock = VTPM_LOCAL_DEFAULT_PATH;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case O_OUT:	out = optarg; break;
		case O_EK:	which = optarg; break;
		case O_PEM:	pem = optarg; break;
		case O_SOCKET:	sock = optarg; break;
		case O_ATTEST:	po.ap_kind = optarg; break;
		case O_MEAS:
		case O_HOST:
		case O_LAUNCH:
			if (attest_hex_decode(optarg, opt == O_MEAS ? po.ap_sim_measurement :
			    opt == O_HOST ? po.ap_sim_host_data : po.ap_sim_launch_id,
			    opt == O_MEAS ? ATTEST_MEASUREMENT_LEN : 32) != 0) {
				fprintf(stderr, "vtpm-guest: bind-ek: %s: want %d hex digits\n",
				    argv[optind - 1], opt == O_MEAS ? 96 : 64);
				return 2;
			}
			break;
		case 'h':	bind_usage(stdout); return 0;
		default:	bind_usage(stderr); return 2;
		}
	}
	if (out == NULL || optind != argc || (strcmp(which, "rsa") != 0 &&
	    strcmp(which, "ecc") != 0 && strcmp(which, "both") != 0)) {
		bind_usage(stderr);
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	if ((fd = local_connect(sock)) < 0)
		goto out;
	if ((strcmp(which, "ecc") != 0 && ek_read(fd, 0, &k) != 0) ||
	    (strcmp(which, "rsa") != 0 && ek_read(fd, 1, &k) != 0))
		goto out;
	attest_ek_bind_report_data(&k, rd);
	if ((rc = attest_provider_open(&po, &prov, why, sizeof(why))) != 0) {
		fprintf(stderr, "vtpm-guest: bind-ek: --attestation %s: %s\n", po.ap_kind, why);
		goto out;
	}
	if (strcmp(po.ap_kind, "sim") == 0)
		fprintf(stderr, "vtpm-guest: bind-ek: simulated attestation: this evidence "
		    "proves nothing (development and tests only)\n");
	if ((rc = attest_evidence_get(prov, rd, ev, sizeof(ev), &evlen)) != 0) {
		fprintf(stderr, "vtpm-guest: bind-ek: no evidence: %s: %s\n", vtpm_strerror(rc),
		    attest_provider_error(prov));
		goto out;
	}
	if (write_file(out, ev, evlen) != 0 || (pem != NULL && write_pem(pem, &k) != 0))
		goto out;
	attest_hex_encode(rd, sizeof(rd), rdhex);
	printf("%s\n", rdhex);
	ret = 0;
out:
	attest_provider_free(prov);
	if (fd >= 0)
		close(fd);
	return ret;
}
