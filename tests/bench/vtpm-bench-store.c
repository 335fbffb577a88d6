/*
 * vtpm-bench-store.c: fills a STOPPED vtpmd's state directory with many
 * enrolled instances, fast, for the store-scale benchmark. Uses the store
 * interface (storage/store.h) directly: each record is what `vtpmctl
 * enroll` would create (random uuid, a fresh data key wrapped by the root
 * key from the dev key file, no TPM state yet), committed 1,000 to a batch
 * with MDB_NOSYNC, then one durable commit at the end. Trusts the state dir
 * it is given (the flock keeps a running vtpmd out).
 *
 * usage: vtpm-bench-store --state-dir DIR --start N --count N
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "cursor.h"
#include "keyprov.h"
#include "seal.h"
#include "store.h"

#define PER_BATCH	1000

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "start", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	char spec[4200];
	struct keyprov *kp;
	struct seal_kek *kek;
	struct store *st;
	struct store_batch *b;
	struct store_instance rec;
	uint8_t kcv[SEAL_KCV_LEN], *dek;
	long start = 0, count = 0, i;
	uint64_t t0;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':	dir = optarg; break;
		case 's':	start = atol(optarg); break;
		case 'c':	count = atol(optarg); break;
		default:
			fprintf(stderr, "usage: vtpm-bench-store --state-dir DIR "
			    "--start N --count N\n");
			return 2;
		}
	}
	if (dir == NULL || start < 0 || count < 1 || start + count > 99999999) {
		fprintf(stderr, "vtpm-bench-store: need --state-dir, --start >= 0, "
		    "--count >= 1\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	snprintf(spec, sizeof(spec), "file:%s/dev-root.key", dir);
	if ((rc = keyprov_open(spec, 0, &kp)) != 0 ||
	    (rc = keyprov_get_root(kp, &kek)) != 0) {
		fprintf(stderr, "vtpm-bench-store: root key %s: %s\n", spec,
		    vtpm_strerror(rc));
		return 1;
	}
	keyprov_close(kp);
	if ((rc = store_open_lmdb_flags(dir, 0, STORE_F_NOSYNC, &st)) != 0) {
		fprintf(stderr, "vtpm-bench-store: open %s: %s (is vtpmd still running?)\n",
		    dir, vtpm_strerror(rc));
		return 1;
	}
	if ((rc = store_meta_get_kcv(st, kcv)) != 0 ||
	    (rc = seal_kek_check_verify(kek, kcv)) != 0) {
		fprintf(stderr, "vtpm-bench-store: the key does not open this store: %s\n",
		    vtpm_strerror(rc));
		return 1;
	}
	if ((b = store_batch_new()) == NULL || (dek = sodium_malloc(SEAL_KEY_LEN)) == NULL)
		return 1;
	t0 = bench_now_ns();
	for (i = start; i < start + count; i++) {
		memset(&rec, 0, sizeof(rec));
		snprintf(rec.name, sizeof(rec.name), "bench-%08ld", i);
		randombytes_buf(rec.uuid, sizeof(rec.uuid));
		memset(rec.measurement, 0x22, sizeof(rec.measurement));
		memcpy(rec.host_data, "STOR", 4);
		be32_enc(rec.host_data + 4, (uint32_t)i);
		rec.created = (uint64_t)time(NULL);
		rec.pcr_banks = 2;
		seal_dek_generate(dek);
		if ((rc = seal_dek_wrap(kek, rec.uuid, dek, rec.wrapped_dek)) != 0 ||
		    (rc = store_batch_put_inst(b, &rec)) != 0) {
			fprintf(stderr, "vtpm-bench-store: %s\n", vtpm_strerror(rc));
			return 1;
		}
		if (store_batch_count(b) >= PER_BATCH || i + 1 == start + count) {
			if ((rc = store_batch_commit(st, b)) != 0) {
				fprintf(stderr, "vtpm-bench-store: commit: %s\n",
				    vtpm_strerror(rc));
				return 1;
			}
			store_batch_reset(b);
		}
	}
	sodium_memzero(dek, SEAL_KEY_LEN);
	sodium_free(dek);
	store_batch_free(b);
	store_close(st);
	/* store_close() on a NOSYNC store: the final flush is the OS's; make it ours. */
	sync();
	fprintf(stderr, "  enrolled %ld instances in %.2f s\n", count,
	    (double)(bench_now_ns() - t0) / 1e9);
	result("store.enrol_per_s", (double)count / ((double)(bench_now_ns() - t0) / 1e9),
	    "inst/s");
	seal_kek_free(kek);
	return 0;
}
