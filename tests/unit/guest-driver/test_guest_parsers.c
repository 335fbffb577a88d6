/*
 * test_guest_parsers.c: known answers for the parsers vtpm-guest applies to
 * bytes from its peers: swtpm control requests (swtpm_ctrl.c), commands
 * from the kernel's vtpm_proxy fd and swtpm data frames (tpm_frame.c).
 * The requests are the ones QEMU 7.2 and tcti-swtpm send, plus the
 * malformed ones a hostile local client could.
 */
#include <stdio.h>
#include <string.h>

#include "cursor.h"
#include "swtpm_ctrl.h"
#include "tpm_frame.h"

static int passed, failed;

static void
ok(int cond, const char *what)
{
	if (cond) {
		passed++;
		printf("ok   - %s\n", what);
	} else {
		failed++;
		printf("FAIL - %s\n", what);
	}
}

static size_t
unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = 0;
	unsigned v;

	while (h[0] != '\0' && h[1] != '\0' && n < cap && sscanf(h, "%2x", &v) == 1) {
		out[n++] = (uint8_t)v;
		h += 2;
	}
	return n;
}

/* swtpm control requests: hex in, what the parser must say. */
static const struct {
	const char	*hex;
	int		 want;		/* enum swtpm_parse */
	uint32_t	 res;		/* for SWTPM_BAD */
	uint32_t	 cmd;		/* for SWTPM_REQ */
	uint32_t	 u32;
	uint8_t		 loc;
	const char	*what;
} ctrl_cases[] = {
	{ "", SWTPM_NEED_MORE, 0, 0, 0, 0, "nothing yet" },
	{ "000000", SWTPM_NEED_MORE, 0, 0, 0, 0, "3 bytes of a code" },
	{ "00000001", SWTPM_REQ, 0, PTM_CMD_GET_CAPABILITY, 0, 0, "GET_CAPABILITY" },
	{ "0000000100", SWTPM_BAD, PTM_RES_BAD_PARAMETER, 0, 0, 0, "GET_CAPABILITY + 1 byte" },
	{ "0000000200000000", SWTPM_REQ, 0, PTM_CMD_INIT, 0, 0, "INIT 0 (QEMU)" },
	{ "0000000200000001", SWTPM_REQ, 0, PTM_CMD_INIT, 1, 0, "INIT DELETE_VOLATILE (tcti-swtpm reset)" },
	{ "000000020000", SWTPM_NEED_MORE, 0, 0, 0, 0, "INIT cut short" },
	{ "000000020000000000", SWTPM_BAD, PTM_RES_BAD_PARAMETER, 0, 0, 0, "INIT + 1 byte" },
	{ "00000003", SWTPM_REQ, 0, PTM_CMD_SHUTDOWN, 0, 0, "SHUTDOWN" },
	{ "00000004", SWTPM_REQ, 0, PTM_CMD_GET_TPMESTABLISHED, 0, 0, "GET_TPMESTABLISHED" },
	{ "0000000500", SWTPM_REQ, 0, PTM_CMD_SET_LOCALITY, 0, 0, "SET_LOCALITY 0, 1 byte (tcti-swtpm)" },
	{ "0000000504000000", SWTPM_REQ, 0, PTM_CMD_SET_LOCALITY, 0, 4, "SET_LOCALITY 4, 4 bytes (QEMU)" },
	{ "0000000505", SWTPM_BAD, PTM_RES_BAD_LOCALITY, 0, 0, 0, "SET_LOCALITY 5" },
	{ "00000005ff000000", SWTPM_BAD, PTM_RES_BAD_LOCALITY, 0, 0, 0, "SET_LOCALITY 255" },
	{ "000000050100", SWTPM_BAD, PTM_RES_BAD_PARAMETER, 0, 0, 0, "SET_LOCALITY, 2-byte body" },
	{ "00000005", SWTPM_NEED_MORE, 0, 0, 0, 0, "SET_LOCALITY without its byte" },
	{ "000000050100000000", SWTPM_BAD, PTM_RES_BAD_PARAMETER, 0, 0, 0, "SET_LOCALITY, 5-byte body" },
	{ "00000006", SWTPM_REQ, 0, PTM_CMD_HASH_START, 0, 0, "HASH_START" },
	{ "0000000700000003616263", SWTPM_REQ, 0, PTM_CMD_HASH_DATA, 0, 0, "HASH_DATA 'abc'" },
	{ "00000007000000036162", SWTPM_NEED_MORE, 0, 0, 0, 0, "HASH_DATA short of its data" },
	{ "0000000700001001", SWTPM_BAD, PTM_RES_BAD_PARAMETER, 0, 0, 0, "HASH_DATA of 4097 bytes" },
	{ "00000007ffffffff", SWTPM_BAD, PTM_RES_BAD_PARAMETER, 0, 0, 0, "HASH_DATA of 4 GiB" },
	{ "00000008", SWTPM_REQ, 0, PTM_CMD_HASH_END, 0, 0, "HASH_END" },
	{ "00000009", SWTPM_REQ, 0, PTM_CMD_CANCEL_TPM_CMD, 0, 0, "CANCEL_TPM_CMD" },
	{ "0000000a", SWTPM_BAD, PTM_RES_BAD_ORDINAL, 0, 0, 0, "STORE_VOLATILE: unsupported" },
	{ "0000000b03", SWTPM_REQ, 0, PTM_CMD_RESET_TPMESTABLISHED, 0, 3, "RESET_TPMESTABLISHED 3" },
	{ "0000000b09000000", SWTPM_BAD, PTM_RES_BAD_LOCALITY, 0, 0, 0, "RESET_TPMESTABLISHED 9" },
	{ "0000000c000000000000000100000000", SWTPM_BAD, PTM_RES_BAD_ORDINAL, 0, 0, 0, "GET_STATEBLOB: unsupported" },
	{ "0000000d", SWTPM_BAD, PTM_RES_BAD_ORDINAL, 0, 0, 0, "SET_STATEBLOB: unsupported" },
	{ "0000000e", SWTPM_REQ, 0, PTM_CMD_STOP, 0, 0, "STOP" },
	{ "0000000f", SWTPM_REQ, 0, PTM_CMD_GET_CONFIG, 0, 0, "GET_CONFIG" },
	{ "00000010", SWTPM_REQ, 0, PTM_CMD_SET_DATAFD, 0, 0, "SET_DATAFD" },
	{ "0000001100000000", SWTPM_REQ, 0, PTM_CMD_SET_BUFFERSIZE, 0, 0, "SET_BUFFERSIZE query" },
	{ "0000001100000f80", SWTPM_REQ, 0, PTM_CMD_SET_BUFFERSIZE, 0xf80, 0, "SET_BUFFERSIZE 3968 (tpm-crb)" },
	{ "0000001200000000000000030000000000000000", SWTPM_REQ, 0, PTM_CMD_GET_INFO, 0, 0, "GET_INFO" },
	{ "00000012000000000000000300000000", SWTPM_NEED_MORE, 0, 0, 0, 0, "GET_INFO without pad" },
	{ "00000013", SWTPM_BAD, PTM_RES_BAD_ORDINAL, 0, 0, 0, "LOCK_STORAGE: unsupported" },
	{ "00000000", SWTPM_BAD, PTM_RES_BAD_ORDINAL, 0, 0, 0, "command 0" },
	{ "ffffffff", SWTPM_BAD, PTM_RES_BAD_ORDINAL, 0, 0, 0, "command 0xffffffff" },
};

static void
test_ctrl(void)
{
	uint8_t buf[64], out[512];
	struct swtpm_req req;
	size_t i, n, olen;
	uint32_t res, cur;
	char what[160];
	int r;

	for (i = 0; i < sizeof(ctrl_cases) / sizeof(ctrl_cases[0]); i++) {
		n = unhex(ctrl_cases[i].hex, buf, sizeof(buf));
		r = swtpm_ctrl_parse(buf, n, &req, &res);
		snprintf(what, sizeof(what), "control: %s", ctrl_cases[i].what);
		if (r != ctrl_cases[i].want) {
			ok(0, what);
			continue;
		}
		if (r == SWTPM_BAD)
			ok(res == ctrl_cases[i].res && req.sr_cmd == 0, what);
		else if (r == SWTPM_REQ)
			ok(res == 0 && req.sr_cmd == ctrl_cases[i].cmd &&
			    req.sr_u32 == ctrl_cases[i].u32 && req.sr_loc == ctrl_cases[i].loc, what);
		else
			ok(1, what);
	}
	/* HASH_DATA points into the input; the 4096-byte struct padding is taken */
	memset(out, 0, sizeof(out));
	n = unhex("0000000700000003616263", out, sizeof(out));
	r = swtpm_ctrl_parse(out, n + 100, &req, &res);
	ok(r == SWTPM_REQ && req.sr_data == out + 8 && req.sr_data_len == 3 &&
	    memcmp(req.sr_data, "abc", 3) == 0, "control: HASH_DATA data and padding");

	cur = SWTPM_BUFSIZE_MAX;
	ok(swtpm_ctrl_buffersize(0, 0, &cur) == PTM_RES_OK && cur == 4096, "buffer size: query");
	ok(swtpm_ctrl_buffersize(3000, 0, &cur) == PTM_RES_BAD_ORDINAL && cur == 4096,
	    "buffer size: no change while running");
	ok(swtpm_ctrl_buffersize(3968, 1, &cur) == PTM_RES_OK && cur == 3968,
	    "buffer size: 3968 while stopped");
	ok(swtpm_ctrl_buffersize(1, 1, &cur) == PTM_RES_OK && cur == SWTPM_BUFSIZE_MIN,
	    "buffer size: clamped up to the minimum");
	ok(swtpm_ctrl_buffersize(100000, 1, &cur) == PTM_RES_OK && cur == SWTPM_BUFSIZE_MAX,
	    "buffer size: clamped down to the maximum");

	ok(swtpm_ctrl_info(PTM_INFO_TPMSPECIFICATION, 0, out, sizeof(out), &olen) == 0 &&
	    be32_dec(out) == 0 && be32_dec(out + 4) == olen - 12 && be32_dec(out + 8) == olen - 12 &&
	    memcmp(out + 12, "{\"TPMSpecification\":{\"family\":\"2.0\"", 35) == 0 &&
	    out[olen - 1] == '\0', "GET_INFO: specification, NUL-terminated");
	ok(swtpm_ctrl_info(3, 10, out, sizeof(out), &olen) == 0 && be32_dec(out) == 0 &&
	    be32_dec(out + 8) == be32_dec(out + 4) - 10, "GET_INFO: from an offset");
	ok(swtpm_ctrl_info(3, 100000, out, sizeof(out), &olen) == 0 &&
	    be32_dec(out) == PTM_RES_BAD_PARAMETER && olen == 4, "GET_INFO: offset past the end");
	ok(swtpm_ctrl_info(0, 0, out, sizeof(out), &olen) == 0 && olen == 15 &&
	    memcmp(out + 12, "{}", 3) == 0, "GET_INFO: no flags, empty object");
	ok(swtpm_ctrl_info(3, 0, out, 20, &olen) == VTPM_E_TOOBIG, "GET_INFO: small buffer");
	ok(SWTPM_CTRL_CAPS == 0x7cbf, "capabilities: 0x7cbf");
}

static const struct {
	const char	*hex;
	int		 want;
	uint32_t	 rc;
	uint8_t		 loc;
	const char	*what;
} proxy_cases[] = {
	{ "80020000000b2000100000", PROXY_CMD_SET_LOCALITY, 0, 0, "SET_LOCALITY 0 (what Linux sends)" },
	{ "80020000000b2000100004", PROXY_CMD_SET_LOCALITY, 0, 4, "SET_LOCALITY 4" },
	{ "80010000000b2000100002", PROXY_CMD_SET_LOCALITY, 0, 2, "SET_LOCALITY, TPM 1.2-style tag" },
	{ "80020000000b2000100005", PROXY_CMD_BAD, TPM_FRAME_RC_LOCALITY, 0, "SET_LOCALITY 5" },
	{ "80020000000c200010000000", PROXY_CMD_BAD, TPM_FRAME_RC_COMMAND_SIZE, 0, "SET_LOCALITY, 12 bytes" },
	{ "80020000000a20001000", PROXY_CMD_BAD, TPM_FRAME_RC_COMMAND_SIZE, 0, "SET_LOCALITY without locality" },
	{ "80010000000c0000017b0008", PROXY_CMD_TPM, 0, 0, "GetRandom" },
	{ "80010000000b0000014301", PROXY_CMD_TPM, 0, 0, "SelfTest" },
	{ "80010000000a00000145", PROXY_CMD_TPM, 0, 0, "a 10-byte command" },
	{ "80010000000d0000017b0008", PROXY_CMD_BAD, TPM_FRAME_RC_COMMAND_SIZE, 0, "size field above the length" },
	{ "80010000000b0000017b0008", PROXY_CMD_BAD, TPM_FRAME_RC_COMMAND_SIZE, 0, "size field below the length" },
	{ "800100000009000001", PROXY_CMD_BAD, TPM_FRAME_RC_COMMAND_SIZE, 0, "9 bytes" },
	{ "", PROXY_CMD_BAD, TPM_FRAME_RC_COMMAND_SIZE, 0, "nothing" },
};

static void
test_proxy(void)
{
	uint8_t buf[4200], err[TPM_FRAME_HDR_LEN];
	size_t i, n, total;
	uint32_t rc;
	uint8_t loc;
	char what[160];
	int r;

	for (i = 0; i < sizeof(proxy_cases) / sizeof(proxy_cases[0]); i++) {
		n = unhex(proxy_cases[i].hex, buf, sizeof(buf));
		loc = 0xff;
		r = proxy_cmd_parse(buf, n, &loc, &rc);
		snprintf(what, sizeof(what), "proxy: %s", proxy_cases[i].what);
		ok(r == proxy_cases[i].want && (r != PROXY_CMD_BAD || rc == proxy_cases[i].rc) &&
		    (r != PROXY_CMD_SET_LOCALITY || loc == proxy_cases[i].loc), what);
	}
	memset(buf, 0, sizeof(buf));
	be16_enc(buf, 0x8001);
	be32_enc(buf + 2, 4096);
	be32_enc(buf + 6, 0x17b);
	ok(proxy_cmd_parse(buf, 4096, &loc, &rc) == PROXY_CMD_TPM, "proxy: a 4096-byte command");
	be32_enc(buf + 2, 4097);
	ok(proxy_cmd_parse(buf, 4097, &loc, &rc) == PROXY_CMD_BAD &&
	    rc == TPM_FRAME_RC_COMMAND_SIZE, "proxy: a 4097-byte command");

	ok(tpm_frame_need(buf, 9, 4096, &total) == 0, "frame: 9 bytes, need more");
	be32_enc(buf + 2, 12);
	ok(tpm_frame_need(buf, 10, 4096, &total) == 1 && total == 12, "frame: header says 12");
	be32_enc(buf + 2, 9);
	ok(tpm_frame_need(buf, 10, 4096, &total) == VTPM_E_FORMAT, "frame: size 9");
	be32_enc(buf + 2, 3001);
	ok(tpm_frame_need(buf, 10, 3000, &total) == VTPM_E_TOOBIG, "frame: above the buffer size");
	be32_enc(buf + 2, 0xffffffffU);
	ok(tpm_frame_need(buf, 10, 4096, &total) == VTPM_E_TOOBIG, "frame: size 4 GiB");

	tpm_frame_error(err, TPM_FRAME_RC_FAILURE);
	n = unhex("80010000000a00000101", buf, sizeof(buf));
	ok(memcmp(err, buf, n) == 0 && tpm_frame_rsp_ok(err, sizeof(err), 4096),
	    "error response: TPM_RC_FAILURE");
	ok(!tpm_frame_rsp_ok(err, 9, 4096) && !tpm_frame_rsp_ok(err, 10, 9),
	    "response check: short, or above the limit");
}

int
main(void)
{
	test_ctrl();
	test_proxy();
	printf("guest-parsers: %d passed, %d failed\n", passed, failed);
	return failed != 0;
}
