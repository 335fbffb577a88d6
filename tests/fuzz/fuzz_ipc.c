/*
 * fuzz_ipc.c: the parent's checks of worker IPC messages (the untrusted
 * direction): the permission table and the IPC_STORE and IPC_STORE_RSP
 * parsers, in every worker state. Build: see tests/fuzz/module.mk.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *blob, *frames;
	size_t blen, flen;
	uint64_t gen;
	uint8_t btype;
	int ws;

	if (size < 1)
		return 0;
	for (ws = IPC_WS_STARTING; ws <= IPC_WS_DEAD; ws++) {
		if (ipc_worker_msg_allowed(data[0], (enum ipc_worker_state)ws, size - 1) != 0)
			continue;
		if (data[0] == IPC_STORE &&
		    ipc_parse_store(data + 1, size - 1, (enum ipc_worker_state)ws,
		    &btype, &blob, &blen) == 0) {
			/* The blob must lie inside the message. */
			if (blob < data + 1 || blob + blen > data + size || blen == 0)
				abort();
		}
		if (data[0] == IPC_STORE_RSP &&
		    ipc_parse_store_rsp(data + 1, size - 1, &gen, &frames, &flen,
		    &blob, &blen) == 0) {
			/* Both areas inside the message, in order, nothing empty. */
			if (frames < data + 1 || frames + flen > blob || blob + blen != data + size ||
			    flen == 0 || flen > IPC_MAX_HELD || blen == 0 || gen == 0)
				abort();
		}
	}
	return 0;
}
