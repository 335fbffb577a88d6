/*
 * fuzz_swtpm_ctrl.c: swtpm control-channel requests on vtpm-guest --swtpm
 * (swtpm_ctrl_parse) and the answers computed from them without vtpmd
 * (swtpm_ctrl_buffersize, swtpm_ctrl_info), over arbitrary bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "swtpm_ctrl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct swtpm_req req;
	uint8_t out[512];
	size_t olen;
	uint32_t res, cur = SWTPM_BUFSIZE_MAX;

	switch (swtpm_ctrl_parse(data, size, &req, &res)) {
	case SWTPM_NEED_MORE:
		if (size > SWTPM_CTRL_MAX_REQ)
			abort();	/* no command is that long */
		break;
	case SWTPM_BAD:
		if (res == 0 || req.sr_cmd != 0)
			abort();	/* an error code, and nothing to act on */
		break;
	case SWTPM_REQ:
		if (res != 0 || size < 4 || size > SWTPM_CTRL_MAX_REQ)
			abort();
		if ((req.sr_cmd == PTM_CMD_SET_LOCALITY ||
		    req.sr_cmd == PTM_CMD_RESET_TPMESTABLISHED) && req.sr_loc > 4)
			abort();
		if (req.sr_data_len > SWTPM_CTRL_MAX_HASH_DATA ||
		    (req.sr_data_len > 0 && (req.sr_data < data ||
		    req.sr_data + req.sr_data_len > data + size)))
			abort();
		if (req.sr_cmd == PTM_CMD_SET_BUFFERSIZE) {
			(void)swtpm_ctrl_buffersize(req.sr_u32, size & 1, &cur);
			if (cur < SWTPM_BUFSIZE_MIN || cur > SWTPM_BUFSIZE_MAX)
				abort();
		}
		if (req.sr_cmd == PTM_CMD_GET_INFO &&
		    swtpm_ctrl_info(req.sr_info_flags, req.sr_info_offset, out,
		    sizeof(out), &olen) == 0 && (olen < 4 || olen > sizeof(out)))
			abort();
		break;
	default:
		abort();
	}
	return 0;
}
