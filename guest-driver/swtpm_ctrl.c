/*
 * swtpm_ctrl.c: parsing of swtpm control-channel requests and the answers
 * that need no vtpmd. The bytes come from any local process that can reach
 * the control socket (QEMU, tcti-swtpm, anything): every size is checked
 * against the command's accepted forms before a field is read.
 */
#include <stdio.h>
#include <string.h>

#include "cursor.h"
#include "swtpm_ctrl.h"

/* Accepted body sizes per command: [min, max]; 0xffff marks "unsupported". */
struct ctrl_shape {
	uint32_t	cs_cmd;
	uint16_t	cs_min;
	uint16_t	cs_max;
};

#define UNSUPPORTED	0xffffU

static const struct ctrl_shape shapes[] = {
	{ PTM_CMD_GET_CAPABILITY,	0, 0 },
	{ PTM_CMD_INIT,			4, 4 },
	{ PTM_CMD_SHUTDOWN,		0, 0 },
	{ PTM_CMD_GET_TPMESTABLISHED,	0, 0 },
	{ PTM_CMD_SET_LOCALITY,		1, 4 },
	{ PTM_CMD_HASH_START,		0, 0 },
	{ PTM_CMD_HASH_DATA,		4, 4 + SWTPM_CTRL_MAX_HASH_DATA },
	{ PTM_CMD_HASH_END,		0, 0 },
	{ PTM_CMD_CANCEL_TPM_CMD,	0, 0 },
	{ PTM_CMD_STORE_VOLATILE,	UNSUPPORTED, UNSUPPORTED },
	{ PTM_CMD_RESET_TPMESTABLISHED,	1, 4 },
	{ PTM_CMD_GET_STATEBLOB,	UNSUPPORTED, UNSUPPORTED },
	{ PTM_CMD_SET_STATEBLOB,	UNSUPPORTED, UNSUPPORTED },
	{ PTM_CMD_STOP,			0, 0 },
	{ PTM_CMD_GET_CONFIG,		0, 0 },
	{ PTM_CMD_SET_DATAFD,		0, 0 },
	{ PTM_CMD_SET_BUFFERSIZE,	4, 4 },
	{ PTM_CMD_GET_INFO,		16, 16 },
	{ PTM_CMD_LOCK_STORAGE,		UNSUPPORTED, UNSUPPORTED },
};

int
swtpm_ctrl_parse(const uint8_t *buf, size_t have, struct swtpm_req *req,
    uint32_t *res)
{
	const struct ctrl_shape *sh = NULL;
	struct cursor cur;
	uint32_t cmd, len, pad;
	size_t body, i;

	memset(req, 0, sizeof(*req));
	*res = PTM_RES_OK;
	if (have < 4)
		return SWTPM_NEED_MORE;
	cur_init(&cur, buf, have);
	if (cur_get_u32(&cur, &cmd) != 0)
		return SWTPM_NEED_MORE;
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		if (shapes[i].cs_cmd == cmd)
			sh = &shapes[i];
	if (sh == NULL || sh->cs_min == UNSUPPORTED) {
		*res = PTM_RES_BAD_ORDINAL;
		return SWTPM_BAD;
	}
	body = cur_left(&cur);
	if (body < sh->cs_min)
		return SWTPM_NEED_MORE;
	if (body > sh->cs_max) {
		*res = PTM_RES_BAD_PARAMETER;
		return SWTPM_BAD;
	}
	req->sr_cmd = cmd;
	switch (cmd) {
	case PTM_CMD_INIT:
	case PTM_CMD_SET_BUFFERSIZE:
		if (cur_get_u32(&cur, &req->sr_u32) != 0 || cur_end(&cur) != 0)
			goto bad;
		break;
	case PTM_CMD_SET_LOCALITY:
	case PTM_CMD_RESET_TPMESTABLISHED:
		/* u8 alone, or padded to the 4-byte union QEMU sends */
		if (body != 1 && body != 4)
			goto bad;
		if (cur_get_u8(&cur, &req->sr_loc) != 0 || cur_skip(&cur, body - 1) != 0 ||
		    cur_end(&cur) != 0)
			goto bad;
		if (req->sr_loc > 4) {
			memset(req, 0, sizeof(*req));
			*res = PTM_RES_BAD_LOCALITY;
			return SWTPM_BAD;
		}
		break;
	case PTM_CMD_GET_INFO:
		if (cur_get_u64(&cur, &req->sr_info_flags) != 0 ||
		    cur_get_u32(&cur, &req->sr_info_offset) != 0 ||
		    cur_get_u32(&cur, &pad) != 0 || cur_end(&cur) != 0)
			goto bad;
		break;
	case PTM_CMD_HASH_DATA:
		if (cur_get_u32(&cur, &len) != 0)
			goto bad;
		if (len > SWTPM_CTRL_MAX_HASH_DATA)
			goto bad;
		if (cur_left(&cur) < len)
			return SWTPM_NEED_MORE;
		if (cur_get_ref(&cur, &req->sr_data, len) != 0)
			goto bad;
		/* the rest may only be the fixed-size struct's padding */
		req->sr_data_len = len;
		break;
	default:
		if (cur_end(&cur) != 0)
			goto bad;
		break;
	}
	return SWTPM_REQ;
bad:
	memset(req, 0, sizeof(*req));
	*res = PTM_RES_BAD_PARAMETER;
	return SWTPM_BAD;
}

uint32_t
swtpm_ctrl_buffersize(uint32_t want, int stopped, uint32_t *cur)
{
	if (want == 0)
		return PTM_RES_OK;
	if (!stopped)
		return PTM_RES_BAD_ORDINAL;
	if (want < SWTPM_BUFSIZE_MIN)
		want = SWTPM_BUFSIZE_MIN;
	if (want > SWTPM_BUFSIZE_MAX)
		want = SWTPM_BUFSIZE_MAX;
	*cur = want;
	return PTM_RES_OK;
}

int
swtpm_ctrl_info(uint64_t flags, uint32_t offset, uint8_t *out, size_t cap,
    size_t *outlen)
{
	char text[256];
	struct wbuf w;
	size_t tot;
	int n;

	/* The TPM behind vtpmd is libtpms's TPM 2.0 (spec revision 1.64). */
	n = snprintf(text, sizeof(text), "{%s%s%s}",
	    (flags & PTM_INFO_TPMSPECIFICATION) ?
	    "\"TPMSpecification\":{\"family\":\"2.0\",\"level\":0,\"revision\":164}" : "",
	    (flags & PTM_INFO_TPMSPECIFICATION) && (flags & PTM_INFO_TPMATTRIBUTES) ?
	    "," : "",
	    (flags & PTM_INFO_TPMATTRIBUTES) ?
	    "\"TPMAttributes\":{\"manufacturer\":\"id:00001014\",\"model\":\"vtpmd\"}" : "");
	if (n < 0 || (size_t)n >= sizeof(text))
		return VTPM_E_TOOBIG;
	tot = (size_t)n + 1;		/* with its NUL, as swtpm */
	wbuf_init(&w, out, cap);
	if (offset > tot) {
		wbuf_put_u32(&w, PTM_RES_BAD_PARAMETER);
		return wbuf_end(&w, outlen);
	}
	wbuf_put_u32(&w, PTM_RES_OK);
	wbuf_put_u32(&w, (uint32_t)tot);
	wbuf_put_u32(&w, (uint32_t)(tot - offset));
	wbuf_put_bytes(&w, text + offset, tot - offset);
	return wbuf_end(&w, outlen);
}
