/*
 * crashimg.h: what a disk could hold after a power cut (tests/crashsim).
 */
#ifndef VTPM_CRASHIMG_H
#define VTPM_CRASHIMG_H

#include <stdint.h>

struct crashimg_stats {
	uint64_t	writes;		/* write records before the cut */
	uint64_t	durable;	/* of which certainly on disk */
	uint64_t	maybe;		/* of which perhaps on disk */
	uint64_t	blocks_dropped;	/* 4 KiB blocks left at an older version */
};

/*
 * Builds in outdir (created; must not exist) the files of snapdir as they
 * could be on disk had the power failed at time cut (CLOCK_MONOTONIC ns),
 * given the write log (wlog.h) recorded since snapdir was copied.
 *
 * The model, per file and per 4 KiB block: a write is certainly durable when
 * it went through an O_SYNC/O_DSYNC descriptor and returned before the cut,
 * or when an fsync/fdatasync of the same file started after it returned and
 * returned before the cut. Every other write that started before the cut
 * may or may not have reached the disk, block by block and independently of
 * the others: each block holds the page-cache content it had at some moment
 * between its last durable write and the cut (a prefix of its writes), chosen
 * with seed. Truncates count as durable writes of the size. Files and
 * directories are assumed to exist as in snapdir (the store creates them
 * before the copy). lock.mdb (LMDB's lock file, rebuilt at open) is left out.
 * Returns 0, or -1 with a message in err.
 */
int	crashimg_build(const char *wlog, const char *snapdir, const char *outdir,
	    uint64_t cut, uint64_t seed, struct crashimg_stats *st, char *err,
	    size_t errlen);

#endif
