/*
 * vtpm-storetool.c: tampers with a stopped vtpmd's store for the end-to-end
 * tests, through the storage API (no key needed: it moves and damages sealed
 * bytes, as an attacker with the disk could). Takes the store's lock, so it
 * fails while vtpmd runs. Test use only.
 *
 *   show DIR NAME                  uuid, generations, blob sizes
 *   copy-blob DIR SRC DST [TYPE]   SRC's sealed blob over DST's (DST's record kept)
 *   corrupt-blob DIR NAME OFFSET [TYPE]   flips the low bit of one byte
 *   save-blob DIR NAME FILE [TYPE]        writes the sealed blob to FILE
 *   restore-blob DIR NAME FILE [TYPE]     puts FILE back as the blob (a rollback)
 *   audit-add DIR DAYS_AGO COUNT   appends COUNT audit records dated DAYS_AGO
 *                                  days back (retention tests)
 * TYPE is permanent (default) or volatile.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "seal.h"
#include "store.h"

static uint8_t blob[STORE_BLOB_MAX];

static void
usage(void)
{
	fprintf(stderr,
"usage: vtpm-storetool show DIR NAME\n"
"       vtpm-storetool copy-blob DIR SRC DST [permanent|volatile]\n"
"       vtpm-storetool corrupt-blob DIR NAME OFFSET [permanent|volatile]\n"
"       vtpm-storetool save-blob DIR NAME FILE [permanent|volatile]\n"
"       vtpm-storetool restore-blob DIR NAME FILE [permanent|volatile]\n"
"       vtpm-storetool audit-add DIR DAYS_AGO COUNT\n");
	exit(2);
}

static void
die(const char *what, int rc)
{
	fprintf(stderr, "vtpm-storetool: %s: %s\n", what, vtpm_strerror(rc));
	exit(1);
}

static uint8_t
blob_type(int argc, char **argv, int i)
{
	if (argc <= i || strcmp(argv[i], "permanent") == 0)
		return SEAL_BLOB_PERMANENT;
	if (strcmp(argv[i], "volatile") == 0)
		return SEAL_BLOB_VOLATILE;
	usage();
	return 0;
}

static void
get_inst(struct store *s, const char *name, struct store_instance *rec)
{
	int rc;

	if ((rc = store_inst_get(s, name, rec)) != 0)
		die(name, rc);
}

static size_t
get_blob(struct store *s, const struct store_instance *rec, uint8_t type)
{
	size_t len;
	int rc;

	if ((rc = store_blob_get(s, rec->uuid, type, blob, sizeof(blob), &len)) != 0)
		die("reading the blob", rc);
	return len;
}

static void
put_blob(struct store *s, const struct store_instance *rec, uint8_t type, size_t len)
{
	struct store_batch *b;
	int rc;

	if ((b = store_batch_new()) == NULL)
		die("batch", VTPM_E_NOMEM);
	if ((rc = store_batch_put_blob(b, rec->uuid, type, blob, len)) != 0 ||
	    (rc = store_batch_commit(s, b)) != 0)
		die("writing the blob", rc);
	store_batch_free(b);
}

int
main(int argc, char **argv)
{
	struct store_instance src, dst;
	struct seal_blob_info info;
	struct store *s;
	const char *cmd;
	size_t len;
	uint8_t type;
	FILE *f;
	char *end;
	long off;
	int rc, i;

	log_init("vtpm-storetool", LOG_LVL_WARN);
	if (argc < 4)
		usage();
	cmd = argv[1];
	if ((rc = store_open_lmdb(argv[2], 0, &s)) != 0)
		die(argv[2], rc);
	if (strcmp(cmd, "show") == 0 && argc == 4) {
		get_inst(s, argv[3], &dst);
		printf("name %s\nuuid ", dst.name);
		for (i = 0; i < SEAL_UUID_LEN; i++)
			printf("%02x", dst.uuid[i]);
		printf("\nperm_gen %llu\nvol_gen %llu\n", (unsigned long long)dst.perm_gen,
		    (unsigned long long)dst.vol_gen);
		for (type = SEAL_BLOB_PERMANENT; type <= SEAL_BLOB_VOLATILE; type++) {
			rc = store_blob_get(s, dst.uuid, type, blob, sizeof(blob), &len);
			if (rc == 0 && seal_blob_peek(blob, len, &info) == 0)
				printf("%s %zu bytes, generation %llu\n", type == SEAL_BLOB_PERMANENT ?
				    "permanent" : "volatile", len,
				    (unsigned long long)info.generation);
			else
				printf("%s none\n", type == SEAL_BLOB_PERMANENT ? "permanent" :
				    "volatile");
		}
	} else if (strcmp(cmd, "copy-blob") == 0 && (argc == 5 || argc == 6)) {
		type = blob_type(argc, argv, 5);
		get_inst(s, argv[3], &src);
		get_inst(s, argv[4], &dst);
		len = get_blob(s, &src, type);
		put_blob(s, &dst, type, len);
		printf("copied %zu bytes from %s over %s\n", len, src.name, dst.name);
	} else if (strcmp(cmd, "corrupt-blob") == 0 && (argc == 5 || argc == 6)) {
		type = blob_type(argc, argv, 5);
		get_inst(s, argv[3], &dst);
		len = get_blob(s, &dst, type);
		errno = 0;
		off = strtol(argv[4], &end, 10);
		if (errno != 0 || *end != '\0' || off < 0 || (size_t)off >= len) {
			fprintf(stderr, "vtpm-storetool: offset %s outside the %zu-byte blob\n",
			    argv[4], len);
			return 1;
		}
		blob[off] ^= 0x01;
		put_blob(s, &dst, type, len);
		printf("flipped byte %ld of %s's %zu-byte blob\n", off, dst.name, len);
	} else if (strcmp(cmd, "save-blob") == 0 && (argc == 5 || argc == 6)) {
		type = blob_type(argc, argv, 5);
		get_inst(s, argv[3], &dst);
		len = get_blob(s, &dst, type);
		if ((f = fopen(argv[4], "wb")) == NULL || fwrite(blob, 1, len, f) != len ||
		    fclose(f) != 0) {
			perror(argv[4]);
			return 1;
		}
	} else if (strcmp(cmd, "restore-blob") == 0 && (argc == 5 || argc == 6)) {
		type = blob_type(argc, argv, 5);
		get_inst(s, argv[3], &dst);
		if ((f = fopen(argv[4], "rb")) == NULL) {
			perror(argv[4]);
			return 1;
		}
		len = fread(blob, 1, sizeof(blob), f);
		fclose(f);
		if (len == 0) {
			fprintf(stderr, "vtpm-storetool: %s is empty\n", argv[4]);
			return 1;
		}
		put_blob(s, &dst, type, len);
	} else if (strcmp(cmd, "audit-add") == 0 && argc == 5) {
		struct store_audit_record r;
		struct store_batch *b = store_batch_new();
		uint8_t enc[STORE_AUDIT_RECORD_MAX];
		long days = strtol(argv[3], &end, 10), n = strtol(argv[4], NULL, 10);
		uint64_t t = (uint64_t)time(NULL) * 1000 - (uint64_t)days * 86400000ULL;

		if (b == NULL || *end != '\0' || days < 0 || n < 1 || n > 100000)
			usage();
		for (i = 0; i < n; i++) {
			memset(&r, 0, sizeof(r));
			r.event = STORE_AUDIT_BACKUP;
			r.time_ms = t + (uint64_t)i;
			r.actor_uid = 0;
			snprintf(r.detail, sizeof(r.detail), "test record %d, %ld days old", i, days);
			if ((rc = store_audit_encode(&r, enc, sizeof(enc), &len)) != 0 ||
			    (rc = store_batch_put_audit(b, enc, len)) != 0)
				die("audit-add", rc);
		}
		if ((rc = store_batch_commit(s, b)) != 0)
			die("audit-add", rc);
		store_batch_free(b);
	} else {
		usage();
	}
	store_close(s);
	return 0;
}
