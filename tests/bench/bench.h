/*
 * bench.h: helpers shared by the benchmark programs in tests/bench/ (they
 * are measuring tools, not part of vtpmd): a monotonic clock, latency
 * samples with percentiles, hand-marshalled TPM 2.0 commands, and result
 * lines. Every result goes to stdout as one line
 *
 *	R <key> <value> <unit>
 *
 * which tests/bench/run-bench.sh collects; everything else goes to stderr.
 * Nothing here trusts a response beyond checking its header.
 */
#ifndef VTPM_BENCH_H
#define VTPM_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- time ---- */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);
/* CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID) in nanoseconds. */
uint64_t bench_cpu_ns(void);

/* ---- samples ---- */

struct samples {
	uint64_t	*s_ns;		/* one latency per operation, nanoseconds */
	size_t		 s_n;
	size_t		 s_cap;
};

/* Allocates room for cap samples; aborts on no memory. */
void samples_init(struct samples *s, size_t cap);
void samples_free(struct samples *s);
/* Appends one sample (grows the array if needed). */
void samples_add(struct samples *s, uint64_t ns);
/* Sorts the samples and returns the q-quantile (0..1) in microseconds. */
double samples_pct_us(struct samples *s, double q);
double samples_mean_us(const struct samples *s);
/* Median of n doubles (sorted in place). */
double median_d(double *v, size_t n);

/* Prints "R key value unit" on stdout (and flushes). */
void result(const char *key, double value, const char *unit);
/* Prints "R key text -" (a value that is not a number, e.g. a version). */
void result_str(const char *key, const char *text);

/* ---- TPM 2.0 commands, hand-marshalled ---- */

#define BENCH_NV_INDEX	0x01500016u	/* the counter every benchmark uses */
#define TPM_CMD_MAX	4096

/* Writes the command into out (TPM_CMD_MAX bytes) and returns its length. */
size_t tpmcmd_startup_clear(uint8_t *out);
size_t tpmcmd_get_random(uint8_t *out, uint16_t bytes);
/* PCR_Extend(pcr, sha256 = digest byte repeated) with an empty password session. */
size_t tpmcmd_pcr_extend(uint8_t *out, uint32_t pcr, uint8_t digest_byte);
/* NV_DefineSpace of an 8-byte ordinary (non-orderly) counter, owner auth. */
size_t tpmcmd_nv_define_counter(uint8_t *out, uint32_t index);
size_t tpmcmd_nv_increment(uint8_t *out, uint32_t index);
size_t tpmcmd_nv_undefine(uint8_t *out, uint32_t index);

/*
 * Checks a response: at least 10 bytes, header size equal to len.
 * Returns its response code, or 0xFFFFFFFF if malformed.
 */
uint32_t tpmrsp_code(const uint8_t *rsp, size_t len);

#define TPM_RC_NV_DEFINED	0x14C

/* ---- processes ---- */

/*
 * Memory of one process from /proc/PID/smaps_rollup, in KiB.
 * Returns 0, or -1 if the process is gone or the file unreadable.
 */
struct mem_kib {
	long	rss;
	long	pss;
	long	priv_dirty;
	long	priv_clean;
	long	shared_clean;
	long	shared_dirty;
};
int mem_read(pid_t pid, struct mem_kib *m);

/*
 * Children of ppid (from /proc/PID/stat), up to cap of them.
 * Returns how many were found.
 */
size_t proc_children(pid_t ppid, pid_t *out, size_t cap);
/*
 * Every descendant of ppid (children, their children, ...), up to cap: with
 * the zygote, vtpmd's workers are its grandchildren. Returns how many.
 */
size_t proc_descendants(pid_t ppid, pid_t *out, size_t cap);

/* utime + stime of a process in clock ticks (sysconf(_SC_CLK_TCK)), or -1. */
long proc_cpu_ticks(pid_t pid);
/* write_bytes of /proc/PID/io (bytes this process sent to storage), or -1. */
long long proc_write_bytes(pid_t pid);

/* Raises RLIMIT_NOFILE to want (or the hard limit). */
void bench_raise_nofile(long want);

#endif
