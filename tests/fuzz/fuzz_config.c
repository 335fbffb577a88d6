/*
 * fuzz_config.c: the vtpmd.conf parser (config_parse_text) on arbitrary text.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct option opts[] = {
	{ "dev", no_argument, NULL, 1 },
	{ "state-dir", required_argument, NULL, 2 },
	{ "listen", required_argument, NULL, 3 },
	{ "idle-timeout", required_argument, NULL, 4 },
	{ "config", required_argument, NULL, 5 },
	{ NULL, 0, NULL, 0 },
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *args[CONFIG_MAX_ARGS], why[256];
	int n = 0, i;

	memset(args, 0, sizeof(args));
	if (config_parse_text((const char *)data, size, opts, args, CONFIG_MAX_ARGS, &n,
	    why, sizeof(why)) == 0) {
		for (i = 0; i < n; i++)
			if (args[i] == NULL || (i % 1 == 0 && strlen(args[i]) > 4096 + 2))
				abort();
	}
	for (i = 0; i < CONFIG_MAX_ARGS; i++)
		free(args[i]);
	return 0;
}
