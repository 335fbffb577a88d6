/*
 * fuzz_freshness.c: vtpm-guest's freshness record parser (fresh_parse) over
 * arbitrary file contents, for a fixed instance UUID; a parsed record must
 * print back to exactly the bytes it came from.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "freshness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t uuid[FRESH_UUID_LEN] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
	0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[128];
	uint64_t gen;
	int n;

	if (fresh_parse((const char *)data, size, uuid, &gen) != 0)
		return 0;
	n = snprintf(line, sizeof(line), "vtpm-guest-freshness-v1 "
	    "00112233445566778899aabbccddeeff %llu\n", (unsigned long long)gen);
	if (n < 0 || (size_t)n != size || memcmp(line, data, size) != 0)
		abort();
	return 0;
}
