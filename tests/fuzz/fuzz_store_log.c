/*
 * fuzz_store_log.c: libFuzzer harness for the commit log's record parser
 * (storage/store_log.c, store_log_parse()), which reads back commit.log at
 * every open. The first byte picks the mode: even, the rest is parsed as it
 * is (the checksum must hold); odd, the harness first recomputes the
 * record's checksum (BLAKE2b-256 over the length the record names), so the
 * fuzzer reaches the op parser. The epoch and sequence number expected are
 * the ones the record names. Beyond "no crash": on success the record
 * encodes back to exactly the same bytes, its padded size is whole blocks,
 * and every op is a PUT_INST or PUT_BLOB; on failure the batch is empty.
 *
 * Seeds: tests/fuzz/corpus/store_log/ (records written by store_log_encode()).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cursor.h"
#include "log.h"
#include "store_log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_store_log", LOG_LVL_ERR);
	if (sodium_init() < 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_batch *b;
	uint8_t *rec, *again;
	uint64_t epoch, seq;
	size_t len, used, body, n, i;
	int rc;

	if (size < 1 + STORE_LOG_REC_HDR)
		return 0;
	len = size - 1;
	if ((rec = malloc(len)) == NULL || (b = store_batch_new()) == NULL)
		abort();
	memcpy(rec, data + 1, len);
	epoch = be64_dec(rec + 8);
	seq = be64_dec(rec + 16);
	body = be32_dec(rec + 28);
	if ((data[0] & 1) && body <= len - STORE_LOG_REC_HDR &&
	    len - STORE_LOG_REC_HDR - body >= STORE_LOG_SUM_LEN)
		crypto_generichash(rec + STORE_LOG_REC_HDR + body, STORE_LOG_SUM_LEN, rec,
		    STORE_LOG_REC_HDR + body, NULL, 0);

	rc = store_log_parse(rec, len, epoch, seq, b, &used);
	if (rc != 0) {
		if (store_batch_count(b) != 0 || used != 0)
			abort();
	} else {
		n = STORE_LOG_REC_HDR + body + STORE_LOG_SUM_LEN;
		if (used == 0 || used % STORE_LOG_BLOCK != 0 || used < n ||
		    store_log_record_size(b) != used)
			abort();
		for (i = 0; i < store_batch_count(b); i++)
			if (b->ops[i].kind != STORE_OP_PUT_INST &&
			    b->ops[i].kind != STORE_OP_PUT_BLOB)
				abort();
		if ((again = malloc(used)) == NULL)
			abort();
		if (store_log_encode(b, epoch, seq, again, used) != used ||
		    memcmp(again, rec, n) != 0)
			abort();
		free(again);
	}
	/* a wrong epoch or sequence number never parses */
	store_batch_reset(b);
	if (store_log_parse(rec, len, epoch + 1, seq, b, &used) == 0 ||
	    store_log_parse(rec, len, epoch, seq + 1, b, &used) == 0)
		abort();
	store_batch_free(b);
	free(rec);
	return 0;
}
