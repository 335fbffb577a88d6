/*
 * fuzz_proxy_cmd.c: what vtpm-guest --proxy does with one read() of the
 * vtpm_proxy fd (proxy_cmd_parse), and the TPM framing of swtpm data
 * channels (tpm_frame_need, tpm_frame_rsp_ok), over arbitrary bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cursor.h"
#include "tpm_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t loc = 0xff, err[TPM_FRAME_HDR_LEN];
	uint32_t rc;
	size_t total = 0;
	int r;

	switch (proxy_cmd_parse(data, size, &loc, &rc)) {
	case PROXY_CMD_TPM:
		/* forwarded: must be a whole, size-checked command */
		if (size < TPM_FRAME_HDR_LEN || size > TPM_FRAME_MAX_CMD ||
		    be32_dec(data + 2) != size)
			abort();
		break;
	case PROXY_CMD_SET_LOCALITY:
		if (loc > 4 || size != 11 || rc != TPM_FRAME_RC_SUCCESS)
			abort();
		break;
	case PROXY_CMD_BAD:
		if (rc != TPM_FRAME_RC_COMMAND_SIZE && rc != TPM_FRAME_RC_LOCALITY)
			abort();
		tpm_frame_error(err, rc);
		if (!tpm_frame_rsp_ok(err, sizeof(err), TPM_FRAME_MAX_CMD))
			abort();
		break;
	default:
		abort();
	}
	r = tpm_frame_need(data, size, size & 1 ? 3000 : TPM_FRAME_MAX_CMD, &total);
	if (r == 1 && (total < TPM_FRAME_HDR_LEN || total > TPM_FRAME_MAX_CMD))
		abort();
	if (r == 0 && size >= TPM_FRAME_HDR_LEN)
		abort();
	(void)tpm_frame_rsp_ok(data, size, TPM_FRAME_MAX_CMD);
	return 0;
}
