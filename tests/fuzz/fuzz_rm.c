/*
 * fuzz_rm.c: vtpm-guest's resource manager (guest-driver/rm.c) between
 * hostile clients and an arbitrary TPM. The input is split in two: client
 * commands for two connections, and the TPM's answers (any bytes with a
 * consistent size field, "unreachable", or a well-formed default answer
 * once the input runs out). Checks that every answer the RM gives a client
 * is a whole TPM response, and (under ASan) that nothing leaks or overruns.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "rm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fake {
	const uint8_t	*t;
	size_t		 tlen;
	uint32_t	 next;
};

static int
fake_tpm(void *arg, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap, size_t *rlen)
{
	struct fake *f = arg;
	uint32_t cc = be32_dec(cmd + 6);
	size_t n;
	uint8_t mode;

	(void)len;
	if (f->tlen == 0) {
		/* the default: success, with a plausible body */
		be16_enc(rsp, 0x8001);
		be32_enc(rsp + 6, 0);
		if (cc == 0x162) {	/* ContextSave: a minimal TPMS_CONTEXT */
			memset(rsp + 10, 0, 18);
			be32_enc(rsp + 18, be32_dec(cmd + 10));
			be16_enc(rsp + 26, 2);
			n = 30;
		} else {
			f->next++;
			be32_enc(rsp + 10, (f->next & 1 ? 0x02000000U : 0x80000000U) |
			    (f->next & 0xff));
			n = 14;
		}
		be32_enc(rsp + 2, (uint32_t)n);
		*rlen = n;
		return 0;
	}
	mode = f->t[0];
	f->t++;
	f->tlen--;
	if (mode == 0)
		return -1;
	n = f->tlen < 2 ? 0 : be16_dec(f->t);
	if (f->tlen >= 2) {
		f->t += 2;
		f->tlen -= 2;
	}
	if (n > f->tlen)
		n = f->tlen;
	if (n > cap)
		n = cap;
	memset(rsp, 0, 10);
	memcpy(rsp, f->t, n);
	f->t += n;
	f->tlen -= n;
	if (n < 10)
		n = 10;
	be32_enc(rsp + 2, (uint32_t)n);	/* the caller's function checks this */
	*rlen = n;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t cmd[4096], rsp[RM_RSP_MAX];
	struct rm_conn *c[2];
	struct fake f;
	size_t split, n, rlen;
	uint8_t kind;
	int i;

	if (size < 2)
		return 0;
	split = be16_dec(data);
	data += 2;
	size -= 2;
	if (split > size)
		split = size;
	f.t = data + split;
	f.tlen = size - split;
	f.next = 0;
	c[0] = rm_conn_new();
	c[1] = rm_conn_new();
	if (c[0] == NULL || c[1] == NULL)
		abort();
	while (split >= 3) {
		kind = data[0];
		n = be16_dec(data + 1);
		data += 3;
		split -= 3;
		if (n > split)
			n = split;
		if (n > sizeof(cmd))
			n = sizeof(cmd);
		memset(cmd, 0, 10);
		memcpy(cmd, data, n);
		data += n;
		split -= n;
		if (n < 10)
			n = 10;
		be32_enc(cmd + 2, (uint32_t)n);	/* local_check_tpm_command held */
		if (kind & 0x80) {		/* the client goes away */
			rm_conn_close(c[kind & 1], fake_tpm, &f);
			if ((c[kind & 1] = rm_conn_new()) == NULL)
				abort();
			continue;
		}
		if (rm_command(c[kind & 1], cmd, n, rsp, sizeof(rsp), &rlen, fake_tpm, &f) != 0)
			continue;
		if (rlen < 10 || rlen > sizeof(rsp) || be32_dec(rsp + 2) != rlen)
			abort();
	}
	for (i = 0; i < 2; i++)
		rm_conn_close(c[i], fake_tpm, &f);
	return 0;
}
