/*
 * fuzz_sealed_blob.c: libFuzzer harness for every parser of stored bytes in
 * storage/: unseal_blob() and seal_blob_peek() (sealed blobs), store_inst_decode()
 * (instance records), seal_dek_unwrap() (wrapped DEKs) and
 * seal_kek_check_verify() (key-check values). Each input goes to all of them.
 * Beyond "no crash" it checks each parser's promises: output zeroed on
 * failure, peek and unseal agree on the layout, a decoded record re-encodes to
 * the same bytes.
 *
 * Build (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *     -Itransport -Istorage tests/fuzz/fuzz_sealed_blob.c storage/seal.c \
 *     storage/store.c transport/cursor.c transport/log.c transport/vtpm_error.c \
 *     -lsodium -o fuzz_sealed_blob
 *   ./fuzz_sealed_blob tests/fuzz/corpus/sealed_blob/
 *
 * Seeds: built with -DFUZZ_MAKE_SEEDS (and without -fsanitize=fuzzer) the
 * same file is a program that writes valid seeds, sealed with the harness's
 * fixed keys so the fuzzer starts past the tag check:
 *   cc -std=c11 -D_GNU_SOURCE -DFUZZ_MAKE_SEEDS -Itransport -Istorage \
 *     tests/fuzz/fuzz_sealed_blob.c storage/seal.c storage/store.c \
 *     transport/cursor.c transport/log.c transport/vtpm_error.c -lsodium \
 *     -o make_seeds && ./make_seeds tests/fuzz/corpus/sealed_blob
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "seal.h"
#include "store.h"

/* Fixed, public test keys: nothing here is secret. */
static const uint8_t fz_root[SEAL_KEY_LEN] = {
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
};
static const uint8_t fz_dek[SEAL_KEY_LEN] = {
	0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
	0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
	0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
	0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
};
static const uint8_t fz_uuid[SEAL_UUID_LEN] = {
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
	0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
};
static struct seal_kek *fz_kek;

static int
fz_setup(void)
{
	log_init("fuzz_sealed_blob", LOG_LVL_ERR);
	if (seal_init() != 0 || seal_kek_new(fz_root, 1, &fz_kek) != 0)
		return -1;
	return 0;
}

static int
fz_all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* Calls unseal_blob() and checks its promises; returns its result. */
static int
fz_unseal(uint8_t type, uint64_t gen, const uint8_t *data, size_t size,
    uint8_t *out, size_t cap)
{
	size_t outlen = 12345;
	int rc;

	memset(out, 0xa5, cap);
	rc = unseal_blob(fz_dek, fz_uuid, type, gen, data, size, out, cap, &outlen);
	if (rc == 0) {
		if (size < SEAL_BLOB_OVERHEAD || outlen != size - SEAL_BLOB_OVERHEAD)
			abort();
	} else if (outlen != 0 || !fz_all_zero(out, cap))
		abort();
	return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (fz_setup() != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seal_blob_info info;
	struct store_instance inst;
	uint8_t rec[STORE_INST_RECORD_MAX];
	uint8_t *out, *dek;
	size_t cap = size + 1, rlen;
	int prc, rc;

	if ((out = malloc(cap)) == NULL)
		return 0;

	/* sealed blob: peek and unseal must agree on the layout */
	prc = seal_blob_peek(data, size, &info);
	if (prc == 0) {
		if (info.plain_len != size - SEAL_BLOB_OVERHEAD)
			abort();
		/* the right slot at its generation, the other slot, another generation */
		rc = fz_unseal(info.type, info.generation, data, size, out, cap);
		if (rc != 0 && rc != VTPM_E_AUTH)
			abort();
		if (fz_unseal(info.type == 1 ? 2 : 1, info.generation, data, size,
		    out, cap) != VTPM_E_AUTH)
			abort();
		rc = fz_unseal(info.type, info.generation + 1 ? info.generation + 1 : 1,
		    data, size, out, cap);
		if (rc != VTPM_E_ROLLBACK && rc != VTPM_E_AUTH)
			abort();
		if (size > SEAL_BLOB_OVERHEAD &&
		    fz_unseal(info.type, info.generation, data, size, out,
		    info.plain_len - 1) != VTPM_E_TOOBIG)
			abort();
	} else {
		if (fz_unseal(SEAL_BLOB_PERMANENT, 1, data, size, out, cap) != prc)
			abort();
	}

	/* instance record: anything decoded re-encodes to the same bytes */
	if (store_inst_decode(data, size, &inst) == 0) {
		if (store_inst_encode(&inst, rec, sizeof(rec), &rlen) != 0 ||
		    rlen != size || memcmp(rec, data, size) != 0)
			abort();
	} else if (!fz_all_zero((const uint8_t *)&inst, sizeof(inst)))
		abort();

	/* wrapped DEK and key-check value, when the size fits */
	if (size == SEAL_WRAPPED_DEK_LEN) {
		dek = out;	/* cap >= 89 */
		memset(dek, 0xa5, SEAL_KEY_LEN);
		if (seal_dek_unwrap(fz_kek, fz_uuid, data, dek) != 0 &&
		    !fz_all_zero(dek, SEAL_KEY_LEN))
			abort();
	}
	if (size == SEAL_KCV_LEN) {
		rc = seal_kek_check_verify(fz_kek, data);
		if (rc != 0 && rc != VTPM_E_FORMAT && rc != VTPM_E_WRONG_KEY &&
		    rc != VTPM_E_AUTH)
			abort();
	}

	free(out);
	return 0;
}

#ifdef FUZZ_MAKE_SEEDS
static int
fz_write(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, n, f) != n ||
	    fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static uint8_t pt[1299], blob[1299 + SEAL_BLOB_OVERHEAD];
	struct store_instance inst;
	uint8_t rec[STORE_INST_RECORD_MAX], w[SEAL_WRAPPED_DEK_LEN], kcv[SEAL_KCV_LEN];
	size_t i, n;

	if (argc != 2 || fz_setup() != 0) {
		fprintf(stderr, "usage: make_seeds DIR\n");
		return 1;
	}
	for (i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)(i * 31);

	if (seal_blob(fz_dek, fz_kek->kid, fz_uuid, SEAL_BLOB_PERMANENT, 1, pt, 64,
	    blob, sizeof(blob), &n) != 0 || fz_write(argv[1], "blob-perm-gen1", blob, n) != 0)
		return 1;
	if (seal_blob(fz_dek, fz_kek->kid, fz_uuid, SEAL_BLOB_VOLATILE, 7, pt, sizeof(pt),
	    blob, sizeof(blob), &n) != 0 || fz_write(argv[1], "blob-vol-gen7", blob, n) != 0)
		return 1;
	if (seal_blob(fz_dek, fz_kek->kid, fz_uuid, SEAL_BLOB_PERMANENT, 0x0102030405060708ull,
	    pt, 0, blob, sizeof(blob), &n) != 0 || fz_write(argv[1], "blob-empty", blob, n) != 0)
		return 1;

	memset(&inst, 0, sizeof(inst));
	snprintf(inst.name, sizeof(inst.name), "guest-01.prod");
	memcpy(inst.uuid, fz_uuid, sizeof(inst.uuid));
	memset(inst.measurement, 0x4d, sizeof(inst.measurement));
	memset(inst.host_data, 0x48, sizeof(inst.host_data));
	inst.created = 1700000000;
	inst.perm_gen = 3;
	inst.vol_gen = 2;
	memset(inst.vol_launch_id, 0x4c, sizeof(inst.vol_launch_id));
	inst.flags = STORE_INST_FENCED;
	inst.pcr_banks = 0x6;
	if (seal_dek_wrap(fz_kek, fz_uuid, fz_dek, inst.wrapped_dek) != 0 ||
	    store_inst_encode(&inst, rec, sizeof(rec), &n) != 0 ||
	    fz_write(argv[1], "record-v1", rec, n) != 0)
		return 1;
	memcpy(w, inst.wrapped_dek, sizeof(w));
	if (fz_write(argv[1], "wrapped-dek", w, sizeof(w)) != 0)
		return 1;
	if (seal_kek_check_make(fz_kek, kcv) != 0 ||
	    fz_write(argv[1], "kcv", kcv, sizeof(kcv)) != 0)
		return 1;
	seal_kek_free(fz_kek);
	return 0;
}
#endif
