/*
 * vtpm-bench-inproc.c: the floor of every figure: libtpms in this process,
 * TPMLIB_Process in a loop, no transport, NV state kept in memory by the
 * callbacks below. Prints "R inproc.* ..." lines (bench.h). Trusts libtpms.
 *
 * --zygote N: the memory experiment behind a suggested worker design: this
 * process (libtpms and OpenSSL loaded and initialised, no TPM running) forks
 * N children that each manufacture and start their own TPM, as workers
 * forked from a pre-initialised zygote would; prints their PSS.
 *
 * usage: vtpm-bench-inproc [--rounds N] [--iters N] [--zygote N]
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>

#include "bench.h"

/* NV "files" in memory: the permanent and the volatile state. */
static struct {
	uint8_t	*perm;
	size_t	 perm_len;
	uint8_t	*vol;
	size_t	 vol_len;
	unsigned long stores;
} nv;

static uint8_t *rsp;
static uint32_t rsp_size;

static TPM_RESULT
cb_nvram_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT
cb_nvram_loaddata(unsigned char **data, uint32_t *length, uint32_t tpm_number,
    const char *name)
{
	uint8_t *src = NULL;
	size_t len = 0;

	if (strcmp(name, TPM_PERMANENT_ALL_NAME) == 0) {
		src = nv.perm;
		len = nv.perm_len;
	} else if (strcmp(name, TPM_VOLATILESTATE_NAME) == 0) {
		src = nv.vol;
		len = nv.vol_len;
	}
	if (src == NULL)
		return TPM_RETRY;
	if ((*data = malloc(len)) == NULL)
		return TPM_FAIL;
	memcpy(*data, src, len);
	*length = (uint32_t)len;
	return TPM_SUCCESS;
}

static TPM_RESULT
cb_nvram_storedata(const unsigned char *data, uint32_t length, uint32_t tpm_number,
    const char *name)
{
	uint8_t **dst;
	size_t *dlen;

	if (strcmp(name, TPM_PERMANENT_ALL_NAME) == 0) {
		dst = &nv.perm;
		dlen = &nv.perm_len;
	} else if (strcmp(name, TPM_VOLATILESTATE_NAME) == 0) {
		dst = &nv.vol;
		dlen = &nv.vol_len;
	} else {
		return TPM_SUCCESS;
	}
	free(*dst);
	if ((*dst = malloc(length)) == NULL)
		return TPM_FAIL;
	memcpy(*dst, data, length);
	*dlen = length;
	nv.stores++;
	return TPM_SUCCESS;
}

static TPM_RESULT
cb_nvram_deletename(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
	return TPM_SUCCESS;
}

static TPM_RESULT
cb_io_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT
cb_io_getlocality(TPM_MODIFIER_INDICATOR *loc, uint32_t tpm_number)
{
	*loc = 0;
	return TPM_SUCCESS;
}

static TPM_RESULT
cb_io_getphysicalpresence(TPM_BOOL *pp, uint32_t tpm_number)
{
	*pp = FALSE;
	return TPM_SUCCESS;
}

static struct libtpms_callbacks callbacks = {
	.sizeOfStruct			= sizeof(struct libtpms_callbacks),
	.tpm_nvram_init			= cb_nvram_init,
	.tpm_nvram_loaddata		= cb_nvram_loaddata,
	.tpm_nvram_storedata		= cb_nvram_storedata,
	.tpm_nvram_deletename		= cb_nvram_deletename,
	.tpm_io_init			= cb_io_init,
	.tpm_io_getlocality		= cb_io_getlocality,
	.tpm_io_getphysicalpresence	= cb_io_getphysicalpresence,
};

/* Private_Dirty KiB of this process's mappings whose name contains what. */
static long
self_private_dirty(const char *what)
{
	char line[512];
	long v, sum = 0;
	int in = 0;
	FILE *f;

	if ((f = fopen("/proc/self/smaps", "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long a, z;

		if (sscanf(line, "%lx-%lx ", &a, &z) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = strstr(line, what) != NULL;
		else if (in && sscanf(line, "Private_Dirty: %ld kB", &v) == 1)
			sum += v;
	}
	fclose(f);
	return sum;
}

/* Runs one command; returns its response code (exits on a library failure). */
static uint32_t
run(const uint8_t *cmd, size_t len)
{
	uint8_t local[TPM_CMD_MAX];
	uint32_t rlen = 0;

	memcpy(local, cmd, len);
	if (TPMLIB_Process(&rsp, &rlen, &rsp_size, local, (uint32_t)len) != TPM_SUCCESS) {
		fprintf(stderr, "inproc: TPMLIB_Process failed\n");
		exit(1);
	}
	return tpmrsp_code(rsp, rlen);
}

/*
 * Times iters runs of cmd per round over rounds rounds; reports the median
 * of the per-round p50 and p99.
 */
static void
time_cmd(const char *key, const uint8_t *cmd, size_t len, int rounds, int iters)
{
	double p50[16], p99[16];
	struct samples s;
	char k[96];
	uint64_t t0;
	uint32_t rc;
	int r, i;

	samples_init(&s, (size_t)iters);
	for (r = 0; r < rounds && r < 16; r++) {
		s.s_n = 0;
		for (i = 0; i < iters / 20; i++)	/* warm-up */
			(void)run(cmd, len);
		for (i = 0; i < iters; i++) {
			t0 = bench_now_ns();
			rc = run(cmd, len);
			samples_add(&s, bench_now_ns() - t0);
			if (rc != 0) {
				fprintf(stderr, "inproc: %s: TPM rc 0x%x\n", key, rc);
				exit(1);
			}
		}
		p50[r] = samples_pct_us(&s, 0.50);
		p99[r] = samples_pct_us(&s, 0.99);
	}
	snprintf(k, sizeof(k), "inproc.%s.p50", key);
	result(k, median_d(p50, (size_t)r), "us");
	snprintf(k, sizeof(k), "inproc.%s.p99", key);
	result(k, median_d(p99, (size_t)r), "us");
	samples_free(&s);
}

static int
zygote(int n)
{
	uint8_t cmd[TPM_CMD_MAX];
	struct mem_kib m, self;
	pid_t *kids;
	long pss = 0;
	int i, got = 0, pfd[2];
	char c;

	if (n < 1 || (kids = calloc((size_t)n, sizeof(*kids))) == NULL || pipe(pfd) != 0)
		return 1;
	TPMLIB_Terminate();
	free(nv.perm);
	free(nv.vol);
	nv.perm = nv.vol = NULL;
	for (i = 0; i < n; i++) {
		if ((kids[i] = fork()) < 0)
			break;
		if (kids[i] == 0) {
			size_t len;

			close(pfd[0]);
			if (TPMLIB_MainInit() != TPM_SUCCESS)
				_exit(1);
			len = tpmcmd_startup_clear(cmd);
			(void)run(cmd, len);
			len = tpmcmd_get_random(cmd, 16);
			if (run(cmd, len) != 0)
				_exit(1);
			if (write(pfd[1], "r", 1) != 1)
				_exit(1);
			for (;;)
				pause();
		}
	}
	close(pfd[1]);
	for (i = 0; i < n && read(pfd[0], &c, 1) == 1; i++)
		;
	usleep(300000);
	for (i = 0; i < n; i++) {
		if (kids[i] > 0 && mem_read(kids[i], &m) == 0) {
			pss += m.pss;
			got++;
		}
	}
	if (got > 0 && mem_read(getpid(), &self) == 0) {
		result("inproc.zygote.children", got, "processes");
		result("inproc.zygote.child_pss", (double)pss / got, "KiB");
		result("inproc.zygote.per_instance_pss", (double)(pss + self.pss) / got, "KiB");
	}
	for (i = 0; i < n; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	for (i = 0; i < n; i++)
		if (kids[i] > 0)
			(void)waitpid(kids[i], NULL, 0);
	free(kids);
	return got > 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "iters", required_argument, NULL, 'i' },
		{ "zygote", required_argument, NULL, 'z' },
		{ NULL, 0, NULL, 0 },
	};
	uint8_t cmd[TPM_CMD_MAX];
	size_t len;
	uint64_t t0;
	unsigned long stores0;
	int ch, rounds = 5, iters = 20000, i, nzygote = 0;
	double t;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':	rounds = atoi(optarg); break;
		case 'i':	iters = atoi(optarg); break;
		case 'z':	nzygote = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: vtpm-bench-inproc [--rounds N] [--iters N] "
			    "[--zygote N]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > 16 || iters < 100) {
		fprintf(stderr, "inproc: --rounds 1..16, --iters >= 100\n");
		return 2;
	}
	rsp_size = 2 * TPM_CMD_MAX;
	if ((rsp = malloc(rsp_size)) == NULL)
		return 1;
	if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) != TPM_SUCCESS ||
	    TPMLIB_RegisterCallbacks(&callbacks) != TPM_SUCCESS) {
		fprintf(stderr, "inproc: libtpms initialisation failed\n");
		return 1;
	}
	t0 = bench_now_ns();
	if (TPMLIB_MainInit() != TPM_SUCCESS) {
		fprintf(stderr, "inproc: TPMLIB_MainInit failed\n");
		return 1;
	}
	t = (double)(bench_now_ns() - t0) / 1000.0;
	len = tpmcmd_startup_clear(cmd);
	t0 = bench_now_ns();
	if (run(cmd, len) != 0) {
		fprintf(stderr, "inproc: Startup failed\n");
		return 1;
	}
	if (nzygote > 0)	/* OpenSSL and libtpms are initialised now */
		return zygote(nzygote);
	result("inproc.first_maininit_fresh", t, "us");
	result("inproc.first_startup", (double)(bench_now_ns() - t0) / 1000.0, "us");
	/* What one manufactured, started libtpms costs a process (heap: mostly OpenSSL). */
	result("inproc.mem.heap_private_dirty", (double)self_private_dirty("[heap]"), "KiB");
	result("inproc.mem.libcrypto_private_dirty", (double)self_private_dirty("libcrypto"), "KiB");

	len = tpmcmd_get_random(cmd, 32);
	time_cmd("getrandom", cmd, len, rounds, iters);
	len = tpmcmd_pcr_extend(cmd, 16, 0xa5);
	time_cmd("pcrextend", cmd, len, rounds, iters);
	len = tpmcmd_nv_define_counter(cmd, BENCH_NV_INDEX);
	if (run(cmd, len) != 0) {
		fprintf(stderr, "inproc: NV_DefineSpace failed\n");
		return 1;
	}
	stores0 = nv.stores;
	len = tpmcmd_nv_increment(cmd, BENCH_NV_INDEX);
	time_cmd("nvincrement", cmd, len, rounds, iters / 2);
	result("inproc.nvincrement.stores_per_cmd", (double)(nv.stores - stores0) /
	    ((double)rounds * (iters / 2 + iters / 40)), "stores");
	result("inproc.permall_bytes", (double)nv.perm_len, "B");

	/* Power cycle with existing state, as a hot instance switch would. */
	{
		struct samples s;
		uint8_t *buf = NULL;
		uint32_t blen = 0;

		samples_init(&s, 200);
		for (i = 0; i < 200; i++) {
			if (TPMLIB_VolatileAll_Store(&buf, &blen) != TPM_SUCCESS)
				return 1;
			free(nv.vol);
			nv.vol = buf;
			nv.vol_len = blen;
			buf = NULL;
			TPMLIB_Terminate();
			t0 = bench_now_ns();
			if (TPMLIB_MainInit() != TPM_SUCCESS) {
				fprintf(stderr, "inproc: MainInit (resume) failed\n");
				return 1;
			}
			samples_add(&s, bench_now_ns() - t0);
		}
		result("inproc.resume_maininit.p50", samples_pct_us(&s, 0.5), "us");
		result("inproc.volatile_bytes", (double)nv.vol_len, "B");
		samples_free(&s);
	}
	TPMLIB_Terminate();
	return 0;
}
