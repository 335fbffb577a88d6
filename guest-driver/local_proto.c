/*
 * local_proto.c: framing checks for vtpm-guest's local socket.
 * Trusts nothing from the client: lengths are checked before use.
 */
#include "cursor.h"
#include "local_proto.h"
#include "tcti_vtpm.h"

int
local_request_next(const uint8_t *buf, size_t have, uint32_t *op,
    const uint8_t **body, uint32_t *len, size_t *consumed)
{
	uint32_t n;

	if (have < VTPM_LOCAL_HDR_LEN)
		return 0;
	n = be32_dec(buf + 4);
	if (n > VTPM_LOCAL_MAX_BODY)
		return VTPM_E_TOOBIG;
	if (have - VTPM_LOCAL_HDR_LEN < n)
		return 0;
	*op = be32_dec(buf);
	*body = buf + VTPM_LOCAL_HDR_LEN;
	*len = n;
	*consumed = VTPM_LOCAL_HDR_LEN + (size_t)n;
	return 1;
}

int
local_check_tpm_command(const uint8_t *body, size_t len)
{
	if (len < 1 + VTPM_LOCAL_TPM_HDR_LEN || len > 1 + VTPM_LOCAL_MAX_COMMAND)
		return VTPM_E_FORMAT;
	if (body[0] > VTPM_LOCAL_MAX_LOCALITY)
		return VTPM_E_FORMAT;
	if (be32_dec(body + 3) != len - 1)
		return VTPM_E_FORMAT;
	return 0;
}
