/*
 * fuzz_frames.c: the channel's frame reader and transport-message opener
 * over arbitrary stream bytes, in greedy and exact read modes, with fixed
 * cipher keys (the fuzzer cannot forge tags, so this mostly exercises
 * framing, length checks and the failure paths).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "channel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (sodium_init() < 0)
		abort();
	return 0;
}

static void
run(const uint8_t *data, size_t size, int exact)
{
	static uint8_t body[CHAN_MAX_BODY];
	struct noise_cipher tx, rx;
	const uint8_t *frame;
	struct chan *ch;
	size_t flen, blen;
	uint8_t type;
	int p[2], rc;

	if (pipe(p) != 0)
		return;
	if (size > 0 && write(p[1], data, size) != (ssize_t)size) {
		close(p[0]);
		close(p[1]);
		return;
	}
	close(p[1]);
	if ((ch = chan_new(p[0], exact)) == NULL) {
		close(p[0]);
		return;
	}
	memset(&tx, 0, sizeof(tx));
	memset(&rx, 0x42, sizeof(rx));
	rx.n = 0;
	rx.has_key = tx.has_key = 1;
	chan_set_ciphers(ch, &tx, &rx);
	while ((rc = chan_read_frame(ch, &frame, &flen)) == 1) {
		if (flen == 0 || flen > CHAN_MAX_FRAME)
			abort();
		if (chan_open(ch, frame, flen, &type, body, sizeof(body), &blen) != 0)
			break;
	}
	chan_free(ch);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 60000)	/* stay below the pipe buffer */
		return 0;
	run(data, size, 0);
	run(data, size, 1);
	return 0;
}
