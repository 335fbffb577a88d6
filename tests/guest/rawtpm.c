/*
 * rawtpm.c: a raw TPM client for the guest test (make check-guest). Writes
 * one command, given in hex, to a TPM character device, reads the response
 * and prints "rc=0xRC ms=MS" and the response in hex; on an I/O error
 * prints "error=ERRNO-TEXT ms=MS". Linked statically into the initramfs.
 *
 *	rawtpm /dev/tpm0 80010000000c0000017b0008	(GetRandom 8)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

int
main(int argc, char **argv)
{
	unsigned char cmd[4096], rsp[4096];
	struct timespec t0;
	size_t len, i;
	ssize_t n;
	int fd;

	if (argc != 3 || strlen(argv[2]) % 2 != 0 || strlen(argv[2]) / 2 > sizeof(cmd)) {
		fprintf(stderr, "usage: rawtpm DEVICE HEXCOMMAND\n");
		return 2;
	}
	len = strlen(argv[2]) / 2;
	for (i = 0; i < len; i++) {
		unsigned v;

		if (sscanf(argv[2] + 2 * i, "%2x", &v) != 1) {
			fprintf(stderr, "rawtpm: not hex\n");
			return 2;
		}
		cmd[i] = (unsigned char)v;
	}
	if ((fd = open(argv[1], O_RDWR)) < 0) {
		printf("error=open:%s ms=0\n", strerror(errno));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (write(fd, cmd, len) != (ssize_t)len) {
		printf("error=write:%s ms=%ld\n", strerror(errno), ms_since(&t0));
		return 1;
	}
	if ((n = read(fd, rsp, sizeof(rsp))) < 10) {
		printf("error=read:%s ms=%ld\n", n < 0 ? strerror(errno) : "short",
		    ms_since(&t0));
		return 1;
	}
	printf("rc=0x%x ms=%ld rsp=", (unsigned)rsp[6] << 24 | (unsigned)rsp[7] << 16 |
	    (unsigned)rsp[8] << 8 | rsp[9], ms_since(&t0));
	for (i = 0; i < (size_t)n; i++)
		printf("%02x", rsp[i]);
	printf("\n");
	close(fd);
	return 0;
}
