/*
 * bench_util.c: clock, latency samples, TPM command builders and /proc
 * readers for the benchmark programs (bench.h). Trusts /proc and the
 * caller; a TPM response is only checked for its header.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "cursor.h"

uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
bench_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
samples_init(struct samples *s, size_t cap)
{
	s->s_n = 0;
	s->s_cap = cap > 0 ? cap : 16;
	if ((s->s_ns = malloc(s->s_cap * sizeof(*s->s_ns))) == NULL) {
		fprintf(stderr, "bench: out of memory\n");
		abort();
	}
}

void
samples_free(struct samples *s)
{
	free(s->s_ns);
	s->s_ns = NULL;
	s->s_n = s->s_cap = 0;
}

void
samples_add(struct samples *s, uint64_t ns)
{
	uint64_t *n;

	if (s->s_n == s->s_cap) {
		if ((n = realloc(s->s_ns, 2 * s->s_cap * sizeof(*n))) == NULL) {
			fprintf(stderr, "bench: out of memory\n");
			abort();
		}
		s->s_ns = n;
		s->s_cap *= 2;
	}
	s->s_ns[s->s_n++] = ns;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double
samples_pct_us(struct samples *s, double q)
{
	size_t i;

	if (s->s_n == 0)
		return 0;
	qsort(s->s_ns, s->s_n, sizeof(*s->s_ns), cmp_u64);
	i = (size_t)(q * (double)(s->s_n - 1) + 0.5);
	if (i >= s->s_n)
		i = s->s_n - 1;
	return (double)s->s_ns[i] / 1000.0;
}

double
samples_mean_us(const struct samples *s)
{
	double sum = 0;
	size_t i;

	if (s->s_n == 0)
		return 0;
	for (i = 0; i < s->s_n; i++)
		sum += (double)s->s_ns[i];
	return sum / (double)s->s_n / 1000.0;
}

double
median_d(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void
result(const char *key, double value, const char *unit)
{
	printf("R %s %.3f %s\n", key, value, unit);
	fflush(stdout);
}

void
result_str(const char *key, const char *text)
{
	printf("R %s %s -\n", key, text);
	fflush(stdout);
}

/* ---- TPM commands ---- */

#define TPM_ST_NO_SESSIONS	0x8001
#define TPM_ST_SESSIONS		0x8002
#define TPM_RH_OWNER		0x40000001u
#define TPM_RS_PW		0x40000009u
#define TPM_ALG_SHA256		0x000B

/* Finishes a command: patches the size field, returns the length. */
static size_t
cmd_end(struct wbuf *w, uint8_t *out)
{
	size_t n;

	if (wbuf_end(w, &n) != 0) {
		fprintf(stderr, "bench: TPM command overflow\n");
		abort();
	}
	be32_enc(out + 2, (uint32_t)n);
	return n;
}

/* The authorization area of one empty password session. */
static void
put_pw_session(struct wbuf *w)
{
	wbuf_put_u32(w, 9);		/* authorizationSize */
	wbuf_put_u32(w, TPM_RS_PW);
	wbuf_put_u16(w, 0);		/* nonce */
	wbuf_put_u8(w, 0);		/* session attributes */
	wbuf_put_u16(w, 0);		/* hmac (the empty password) */
}

size_t
tpmcmd_startup_clear(uint8_t *out)
{
	struct wbuf w;

	wbuf_init(&w, out, TPM_CMD_MAX);
	wbuf_put_u16(&w, TPM_ST_NO_SESSIONS);
	wbuf_put_u32(&w, 0);
	wbuf_put_u32(&w, 0x144);	/* TPM_CC_Startup */
	wbuf_put_u16(&w, 0);		/* TPM_SU_CLEAR */
	return cmd_end(&w, out);
}

size_t
tpmcmd_get_random(uint8_t *out, uint16_t bytes)
{
	struct wbuf w;

	wbuf_init(&w, out, TPM_CMD_MAX);
	wbuf_put_u16(&w, TPM_ST_NO_SESSIONS);
	wbuf_put_u32(&w, 0);
	wbuf_put_u32(&w, 0x17B);	/* TPM_CC_GetRandom */
	wbuf_put_u16(&w, bytes);
	return cmd_end(&w, out);
}

size_t
tpmcmd_pcr_extend(uint8_t *out, uint32_t pcr, uint8_t digest_byte)
{
	struct wbuf w;
	int i;

	wbuf_init(&w, out, TPM_CMD_MAX);
	wbuf_put_u16(&w, TPM_ST_SESSIONS);
	wbuf_put_u32(&w, 0);
	wbuf_put_u32(&w, 0x182);	/* TPM_CC_PCR_Extend */
	wbuf_put_u32(&w, pcr);
	put_pw_session(&w);
	wbuf_put_u32(&w, 1);		/* TPML_DIGEST_VALUES count */
	wbuf_put_u16(&w, TPM_ALG_SHA256);
	for (i = 0; i < 32; i++)
		wbuf_put_u8(&w, digest_byte);
	return cmd_end(&w, out);
}

size_t
tpmcmd_nv_define_counter(uint8_t *out, uint32_t index)
{
	/* OWNERWRITE|AUTHWRITE|NT=counter|OWNERREAD|AUTHREAD; not ORDERLY */
	const uint32_t attrs = 0x2u | 0x4u | (1u << 4) | 0x20000u | 0x40000u;
	struct wbuf w;

	wbuf_init(&w, out, TPM_CMD_MAX);
	wbuf_put_u16(&w, TPM_ST_SESSIONS);
	wbuf_put_u32(&w, 0);
	wbuf_put_u32(&w, 0x12A);	/* TPM_CC_NV_DefineSpace */
	wbuf_put_u32(&w, TPM_RH_OWNER);
	put_pw_session(&w);
	wbuf_put_u16(&w, 0);		/* TPM2B_AUTH: empty */
	wbuf_put_u16(&w, 14);		/* TPM2B_NV_PUBLIC size */
	wbuf_put_u32(&w, index);
	wbuf_put_u16(&w, TPM_ALG_SHA256);
	wbuf_put_u32(&w, attrs);
	wbuf_put_u16(&w, 0);		/* authPolicy: empty */
	wbuf_put_u16(&w, 8);		/* dataSize */
	return cmd_end(&w, out);
}

size_t
tpmcmd_nv_increment(uint8_t *out, uint32_t index)
{
	struct wbuf w;

	wbuf_init(&w, out, TPM_CMD_MAX);
	wbuf_put_u16(&w, TPM_ST_SESSIONS);
	wbuf_put_u32(&w, 0);
	wbuf_put_u32(&w, 0x134);	/* TPM_CC_NV_Increment */
	wbuf_put_u32(&w, TPM_RH_OWNER);	/* authHandle */
	wbuf_put_u32(&w, index);
	put_pw_session(&w);
	return cmd_end(&w, out);
}

size_t
tpmcmd_nv_undefine(uint8_t *out, uint32_t index)
{
	struct wbuf w;

	wbuf_init(&w, out, TPM_CMD_MAX);
	wbuf_put_u16(&w, TPM_ST_SESSIONS);
	wbuf_put_u32(&w, 0);
	wbuf_put_u32(&w, 0x122);	/* TPM_CC_NV_UndefineSpace */
	wbuf_put_u32(&w, TPM_RH_OWNER);
	wbuf_put_u32(&w, index);
	put_pw_session(&w);
	return cmd_end(&w, out);
}

uint32_t
tpmrsp_code(const uint8_t *rsp, size_t len)
{
	if (len < 10 || be32_dec(rsp + 2) != len)
		return 0xFFFFFFFFu;
	return be32_dec(rsp + 6);
}

/* ---- /proc ---- */

int
mem_read(pid_t pid, struct mem_kib *m)
{
	char path[64], line[256], key[64];
	long v;
	FILE *f;

	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%63[^:]: %ld kB", key, &v) != 2)
			continue;
		if (strcmp(key, "Rss") == 0)
			m->rss = v;
		else if (strcmp(key, "Pss") == 0)
			m->pss = v;
		else if (strcmp(key, "Private_Dirty") == 0)
			m->priv_dirty = v;
		else if (strcmp(key, "Private_Clean") == 0)
			m->priv_clean = v;
		else if (strcmp(key, "Shared_Clean") == 0)
			m->shared_clean = v;
		else if (strcmp(key, "Shared_Dirty") == 0)
			m->shared_dirty = v;
	}
	fclose(f);
	return m->rss > 0 ? 0 : -1;
}

/* Every process in /proc with its parent, for one snapshot of the tree. */
struct proc_link {
	pid_t	pid;
	pid_t	ppid;
};

static size_t
proc_links(struct proc_link **out)
{
	char path[300], buf[512], *p;
	struct proc_link *l = NULL, *nl;
	struct dirent *de;
	size_t n = 0, cap = 0;
	int pp;
	FILE *f;
	DIR *d;

	*out = NULL;
	if ((d = opendir("/proc")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(buf, sizeof(buf), f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 1, " %*c %d", &pp) == 1) {
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				if ((nl = realloc(l, cap * sizeof(*l))) == NULL)
					break;
				l = nl;
			}
			l[n].pid = (pid_t)atoi(de->d_name);
			l[n].ppid = (pid_t)pp;
			n++;
		}
		fclose(f);
	}
	closedir(d);
	*out = l;
	return n;
}

size_t
proc_children(pid_t ppid, pid_t *out, size_t cap)
{
	struct proc_link *l;
	size_t nl = proc_links(&l), i, n = 0;

	for (i = 0; i < nl && n < cap; i++)
		if (l[i].ppid == ppid)
			out[n++] = l[i].pid;
	free(l);
	return n;
}

size_t
proc_descendants(pid_t ppid, pid_t *out, size_t cap)
{
	struct proc_link *l;
	size_t nl = proc_links(&l), i, n = 0, scan = 0;
	pid_t parent = ppid;

	/* Breadth first: out[] doubles as the queue of parents to expand. */
	for (;;) {
		for (i = 0; i < nl && n < cap; i++)
			if (l[i].ppid == parent)
				out[n++] = l[i].pid;
		if (scan == n)
			break;
		parent = out[scan++];
	}
	free(l);
	return n;
}

long
proc_cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	long r = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	/* fields after the command: state ppid pgrp session tty tpgid flags
	 * minflt cminflt majflt cmajflt utime stime */
	if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL &&
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	    &ut, &st) == 2)
		r = (long)(ut + st);
	fclose(f);
	return r;
}

long long
proc_write_bytes(pid_t pid)
{
	char path[64], line[128];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "write_bytes: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

void
bench_raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || (long)rl.rlim_max >= want ?
		    (rlim_t)want : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}
