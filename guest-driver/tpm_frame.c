/*
 * tpm_frame.c: size checks on TPM commands from the kernel's vtpm_proxy
 * fd and from swtpm data channels, and vtpm-guest's own error responses.
 * Trusts nothing it is given: every length is checked before it is used.
 */
#include "cursor.h"
#include "tpm_frame.h"

int
tpm_frame_need(const uint8_t *buf, size_t have, size_t max, size_t *total)
{
	uint32_t size;

	if (have < TPM_FRAME_HDR_LEN)
		return 0;
	size = be32_dec(buf + 2);
	if (size < TPM_FRAME_HDR_LEN)
		return VTPM_E_FORMAT;
	if (size > max)
		return VTPM_E_TOOBIG;
	*total = size;
	return 1;
}

int
proxy_cmd_parse(const uint8_t *buf, size_t len, uint8_t *locality, uint32_t *rc)
{
	struct cursor cur;
	uint16_t tag;
	uint32_t size, code;
	uint8_t loc;

	*rc = TPM_FRAME_RC_COMMAND_SIZE;
	if (len < TPM_FRAME_HDR_LEN || len > TPM_FRAME_MAX_CMD)
		return PROXY_CMD_BAD;
	cur_init(&cur, buf, len);
	if (cur_get_u16(&cur, &tag) != 0 || cur_get_u32(&cur, &size) != 0 ||
	    cur_get_u32(&cur, &code) != 0 || size != len)
		return PROXY_CMD_BAD;
	if (code != TPM_FRAME_CC_SET_LOCALITY)
		return PROXY_CMD_TPM;
	/* tag | size 11 | 0x20001000 | u8 locality, and nothing after it */
	if (cur_get_u8(&cur, &loc) != 0 || cur_end(&cur) != 0)
		return PROXY_CMD_BAD;
	if (loc > 4) {
		*rc = TPM_FRAME_RC_LOCALITY;
		return PROXY_CMD_BAD;
	}
	*locality = loc;
	*rc = TPM_FRAME_RC_SUCCESS;
	return PROXY_CMD_SET_LOCALITY;
}

void
tpm_frame_error(uint8_t out[TPM_FRAME_HDR_LEN], uint32_t rc)
{
	be16_enc(out, 0x8001);		/* TPM_ST_NO_SESSIONS */
	be32_enc(out + 2, TPM_FRAME_HDR_LEN);
	be32_enc(out + 6, rc);
}

int
tpm_frame_rsp_ok(const uint8_t *rsp, size_t len, size_t max)
{
	return len >= TPM_FRAME_HDR_LEN && len <= max && be32_dec(rsp + 2) == len;
}
