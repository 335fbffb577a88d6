/*
 * wlog.h: the write log of the power-loss simulation (tests/crashsim).
 *
 * wlog.so, preloaded into vtpmd, appends one record per write, sync and
 * truncate on the files under a chosen directory; crashimg.c later builds
 * from a copy of that directory taken before vtpmd started plus the log
 * what the disk could hold had the power failed at a chosen moment.
 *
 * The log is a sequence of records, each a struct wlog_rec followed by
 * dlen bytes (WLOG_PATH: the path; WLOG_WRITE: the data). Host byte order:
 * the log never leaves the machine that wrote it. Times are CLOCK_MONOTONIC
 * in nanoseconds, so they compare with the clients' acknowledgement times.
 */
#ifndef VTPM_WLOG_H
#define VTPM_WLOG_H

#include <stdint.h>

#define WLOG_MAGIC	0x574c4f47u	/* "WLOG" */

enum wlog_op {
	WLOG_PATH	= 1,	/* file id named: data = path relative to the directory */
	WLOG_WRITE	= 2,	/* off, dlen bytes of data; flags WLOG_F_DSYNC */
	WLOG_SYNC	= 3,	/* fsync or fdatasync of the file: t0 start, t1 return */
	WLOG_TRUNC	= 4,	/* ftruncate to off */
};

#define WLOG_F_DSYNC	0x1	/* the fd had O_SYNC or O_DSYNC: durable on return */

struct wlog_rec {
	uint32_t	magic;
	uint8_t		op;
	uint8_t		flags;
	uint16_t	pad;
	uint32_t	file;	/* id given by a WLOG_PATH record before */
	uint32_t	pad2;
	uint64_t	t0;	/* when the call started */
	uint64_t	t1;	/* when it returned */
	uint64_t	off;
	uint64_t	dlen;
};

#endif
