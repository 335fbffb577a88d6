/*
 * freshness.c: vtpm-guest's freshness record (--state-dir): the highest
 * durable generation vtpmd has reported for each instance (by UUID), kept
 * in the guest's own state directory, so that a vtpmd store rolled back to
 * an older copy is noticed at attach (docs/PROTOCOL.md section 8). Trusts
 * the record file as much as the guest's own disk; parses it strictly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "freshness.h"

#define FRESH_MAGIC	"vtpm-guest-freshness-v1"

static void
uuid_hex(const uint8_t uuid[FRESH_UUID_LEN], char out[2 * FRESH_UUID_LEN + 1])
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 0; i < FRESH_UUID_LEN; i++) {
		out[2 * i] = hx[uuid[i] >> 4];
		out[2 * i + 1] = hx[uuid[i] & 15];
	}
	out[2 * FRESH_UUID_LEN] = '\0';
}

int
fresh_parse(const char *buf, size_t len, const uint8_t uuid[FRESH_UUID_LEN],
    uint64_t *gen)
{
	char want[sizeof(FRESH_MAGIC) + 2 * FRESH_UUID_LEN + 2], hex[2 * FRESH_UUID_LEN + 1];
	size_t wlen, i;
	uint64_t v = 0;

	uuid_hex(uuid, hex);
	wlen = (size_t)snprintf(want, sizeof(want), "%s %s ", FRESH_MAGIC, hex);
	if (len < wlen + 2 || memcmp(buf, want, wlen) != 0 || buf[len - 1] != '\n')
		return -1;
	/* decimal digits, no sign, no leading zero (but "0"), no overflow */
	if (len - 1 - wlen > 20 || (buf[wlen] == '0' && len - 1 - wlen > 1))
		return -1;
	for (i = wlen; i < len - 1; i++) {
		unsigned d;

		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		d = (unsigned)(buf[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*gen = v;
	return 0;
}

static void
fresh_path(const char *dir, const uint8_t uuid[FRESH_UUID_LEN], const char *suffix,
    char *out, size_t cap)
{
	char hex[2 * FRESH_UUID_LEN + 1];

	uuid_hex(uuid, hex);
	snprintf(out, cap, "%s/freshness-%s%s", dir, hex, suffix);
}

int
fresh_load(const char *dir, const uint8_t uuid[FRESH_UUID_LEN], uint64_t *gen,
    char *why, size_t whylen)
{
	char path[4096], buf[128];
	ssize_t n;
	int fd;

	fresh_path(dir, uuid, "", path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			return 1;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || fresh_parse(buf, (size_t)n, uuid, gen) != 0) {
		snprintf(why, whylen, "%s: %s", path, n < 0 ? strerror(errno) :
		    "not a freshness record for this instance (damaged?)");
		return -1;
	}
	return 0;
}

int
fresh_store(const char *dir, const uint8_t uuid[FRESH_UUID_LEN], uint64_t gen,
    char *why, size_t whylen)
{
	char path[4096], tmp[4096], hex[2 * FRESH_UUID_LEN + 1], line[128];
	int fd, dfd, len;

	uuid_hex(uuid, hex);
	fresh_path(dir, uuid, "", path, sizeof(path));
	fresh_path(dir, uuid, ".tmp", tmp, sizeof(tmp));
	len = snprintf(line, sizeof(line), "%s %s %llu\n", FRESH_MAGIC, hex,
	    (unsigned long long)gen);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto fail;
	if (write(fd, line, (size_t)len) != len || fsync(fd) != 0) {
		close(fd);
		(void)unlink(tmp);
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		(void)unlink(tmp);
		goto fail;
	}
	/* the rename itself must be durable before anything relies on it */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto fail;
	if (fsync(dfd) != 0) {
		close(dfd);
		goto fail;
	}
	close(dfd);
	return 0;
fail:
	snprintf(why, whylen, "%s: %s", path, strerror(errno));
	return -1;
}
