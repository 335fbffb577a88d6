/*
 * fuzz_noise_hs.c: libFuzzer harness for noise_hs_read(), the parser of
 * untrusted Noise handshake messages. Input byte 0 picks the pattern (& 3:
 * NN NK IK XX); the rest is read as the responder's first message and as the
 * initiator's second, and whatever is accepted is carried on to the end.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fixed keys (the cacophony vectors' ones) so every input replays exactly. */
static const uint8_t fz_init_s[32] = {
	0xe6, 0x1e, 0xf9, 0x91, 0x9c, 0xde, 0x45, 0xdd, 0x5f, 0x82, 0x16, 0x64,
	0x04, 0xbd, 0x08, 0xe3, 0x8b, 0xce, 0xb5, 0xdf, 0xdf, 0xde, 0xd0, 0xa3,
	0x4c, 0x8d, 0xf7, 0xed, 0x54, 0x22, 0x14, 0xd1,
};
static const uint8_t fz_init_e[32] = {
	0x89, 0x3e, 0x28, 0xb9, 0xdc, 0x6c, 0xa8, 0xd6, 0x11, 0xab, 0x66, 0x47,
	0x54, 0xb8, 0xce, 0xb7, 0xba, 0xc5, 0x11, 0x73, 0x49, 0xa4, 0x43, 0x9a,
	0x6b, 0x05, 0x69, 0xda, 0x97, 0x7c, 0x46, 0x4a,
};
static const uint8_t fz_resp_s[32] = {
	0x4a, 0x3a, 0xcb, 0xfd, 0xb1, 0x63, 0xde, 0xc6, 0x51, 0xdf, 0xa3, 0x19,
	0x4d, 0xec, 0xe6, 0x76, 0xd4, 0x37, 0x02, 0x9c, 0x62, 0xa4, 0x08, 0xb4,
	0xc5, 0xea, 0x91, 0x14, 0x24, 0x6e, 0x48, 0x93,
};
static const uint8_t fz_resp_e[32] = {
	0xbb, 0xdb, 0x4c, 0xdb, 0xd3, 0x09, 0xf1, 0xa1, 0xf2, 0xe1, 0x45, 0x69,
	0x67, 0xfe, 0x28, 0x8c, 0xad, 0xd6, 0xf7, 0x12, 0xd6, 0x5d, 0xc7, 0xb7,
	0x79, 0x3d, 0x5e, 0x63, 0xda, 0x6b, 0x37, 0x5b,
};
static const uint8_t fz_prologue[] = "vtpmd fuzz";
static uint8_t fz_resp_s_pub[32];

static uint8_t fz_payload[NOISE_MAX_MSG];
static uint8_t fz_out[NOISE_MAX_MSG];

static struct noise_hs *
fz_new(enum noise_pattern p, int initiator)
{
	const uint8_t *s = NULL, *rs = NULL;
	struct noise_hs *hs;

	if (initiator) {
		if (p == NOISE_IK || p == NOISE_XX)
			s = fz_init_s;
		if (p == NOISE_NK || p == NOISE_IK)
			rs = fz_resp_s_pub;
	} else if (p != NOISE_NN)
		s = fz_resp_s;
	hs = noise_hs_new(p, initiator, fz_prologue, sizeof(fz_prologue) - 1,
	    s, rs);
	if (hs == NULL ||
	    noise_hs_set_ephemeral(hs, initiator ? fz_init_e : fz_resp_e) != 0)
		abort();
	return hs;
}

/* Reads msg and checks the promises of noise_hs_read() either way. */
static int
fz_read(struct noise_hs *hs, const uint8_t *msg, size_t len)
{
	size_t need = noise_hs_overhead(hs), plen = 1;
	int rc;

	memset(fz_payload, 0xa5, len < sizeof(fz_payload) ? len : sizeof(fz_payload));
	rc = noise_hs_read(hs, msg, len, fz_payload, sizeof(fz_payload), &plen);
	if (rc == 0) {
		if (len < need || plen != len - need)
			abort();	/* accepted a message of the wrong size */
	} else {
		if (plen != 0 || !sodium_is_zero(fz_payload,
		    len < sizeof(fz_payload) ? len : sizeof(fz_payload)))
			abort();	/* released bytes after a failure */
		if (noise_hs_my_turn(hs) || noise_hs_is_done(hs))
			abort();	/* a failed handshake lives on */
	}
	return rc;
}

/* Writes our next message and, once done, splits. Errors are fine here
 * (a low-order key from the input fails the DH); crashes are not. */
static void
fz_finish(struct noise_hs *hs)
{
	struct noise_cipher tx, rx;
	uint8_t h[32];
	size_t olen;

	while (noise_hs_my_turn(hs))
		if (noise_hs_write(hs, (const uint8_t *)"reply", 5, fz_out,
		    sizeof(fz_out), &olen) != 0)
			return;
	if (noise_hs_is_done(hs) && noise_hs_split(hs, &tx, &rx, h) == 0) {
		if (noise_cipher_encrypt(&tx, NULL, 0, h, sizeof(h), fz_out) != 0)
			abort();
		noise_cipher_wipe(&tx);
		noise_cipher_wipe(&rx);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (sodium_init() < 0)
		abort();
	noise_pubkey_from_priv(fz_resp_s, fz_resp_s_pub);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum noise_pattern pats[4] = {
		NOISE_NN, NOISE_NK, NOISE_IK, NOISE_XX
	};
	enum noise_pattern p;
	struct noise_hs *hs;
	size_t olen;

	if (size < 1)
		return 0;
	p = pats[data[0] & 3];
	data++;
	size--;

	/* The responder's first message. */
	hs = fz_new(p, 0);
	if (fz_read(hs, data, size) == 0)
		fz_finish(hs);
	noise_hs_free(hs);

	/* The initiator's second message, after its own first. */
	hs = fz_new(p, 1);
	if (noise_hs_write(hs, NULL, 0, fz_out, sizeof(fz_out), &olen) != 0)
		abort();
	if (fz_read(hs, data, size) == 0)
		fz_finish(hs);
	noise_hs_free(hs);
	return 0;
}
