/*
 * tpm_frame.h: checks on TPM 2.0 command bytes that vtpm-guest reads from
 * the kernel (vtpm_proxy) and from swtpm data channels, and the error
 * responses it answers with itself. Pure functions over untrusted bytes;
 * fuzzed by tests/fuzz/fuzz_proxy_cmd.c.
 */
#ifndef VTPM_TPM_FRAME_H
#define VTPM_TPM_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "vtpm_error.h"

#define TPM_FRAME_HDR_LEN	10U	/* u16 tag | u32 size | u32 code */
#define TPM_FRAME_MAX_CMD	4096U	/* largest command vtpmd accepts */

/* Response codes vtpm-guest answers with itself (TPM 2.0 Part 2). */
#define TPM_FRAME_RC_SUCCESS	0x000U
#define TPM_FRAME_RC_FAILURE	0x101U	/* vtpmd unreachable, or the command's
					 * fate unknown (docs/LOCAL-PROTOCOL.md) */
#define TPM_FRAME_RC_COMMAND_SIZE 0x142U /* size field and length disagree */
#define TPM_FRAME_RC_LOCALITY	0x907U	/* locality above 4 */

#define TPM_FRAME_CC_SET_LOCALITY 0x20001000U	/* vtpm_proxy driver command */

/*
 * tpm_frame_need: buf holds the first have bytes of a TPM command on a
 * stream. Returns 0 while fewer than 10 bytes are there; otherwise reads
 * the header's size field and returns 1 with *total = size if
 * 10 <= size <= max, VTPM_E_FORMAT if size < 10, VTPM_E_TOOBIG if
 * size > max. Whether all of *total is there is the caller's check.
 */
int tpm_frame_need(const uint8_t *buf, size_t have, size_t max, size_t *total) VTPM_WUR;

/* What one command read from the vtpm_proxy fd is. */
enum proxy_cmd_kind {
	PROXY_CMD_TPM = 1,	/* a well-formed command: forward it */
	PROXY_CMD_SET_LOCALITY,	/* the driver's locality command: *locality */
	PROXY_CMD_BAD,		/* answer *rc locally, forward nothing */
};

/*
 * proxy_cmd_parse: classifies the len bytes one read() of the proxy fd
 * returned. TPM: 10 <= len <= 4096 and the size field equals len.
 * SET_LOCALITY: code 0x20001000, exactly 11 bytes, locality 0..4 (what
 * Linux's tpm_vtpm_proxy sends before it uses a locality). Anything else
 * is BAD with *rc TPM_FRAME_RC_COMMAND_SIZE, or TPM_FRAME_RC_LOCALITY for a
 * SET_LOCALITY above 4. Returns an enum proxy_cmd_kind; never fails.
 */
int proxy_cmd_parse(const uint8_t *buf, size_t len, uint8_t *locality, uint32_t *rc);

/*
 * tpm_frame_error: writes the 10-byte response "tag 0x8001, size 10, rc"
 * into out.
 */
void tpm_frame_error(uint8_t out[TPM_FRAME_HDR_LEN], uint32_t rc);

/*
 * tpm_frame_rsp_ok: 1 if the len bytes at rsp are a response a TPM client
 * can take: 10 <= len <= max and the size field equals len; else 0.
 */
int tpm_frame_rsp_ok(const uint8_t *rsp, size_t len, size_t max);

#endif
