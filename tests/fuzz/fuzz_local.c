/*
 * fuzz_local.c: request framing on vtpm-guest's local socket
 * (local_request_next, local_check_tpm_command) over arbitrary bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "local_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *body;
	uint32_t op, len;
	size_t used, off = 0;
	int rc;

	while ((rc = local_request_next(data + off, size - off, &op, &body, &len, &used)) == 1) {
		if (used > size - off || body + len > data + size)
			abort();
		if (op == 1)
			(void)!local_check_tpm_command(body, len);
		off += used;
	}
	return 0;
}
