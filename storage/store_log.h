/*
 * store_log.h: the LMDB backend's commit log (private to storage/).
 *
 * One preallocated file, dir/commit.log, written cyclically. A group commit
 * of instance state (PUT_INST and PUT_BLOB only) is one record appended at a
 * 4 KiB boundary and made durable by one fdatasync; store_lmdb.c later copies
 * what the log holds into LMDB (a checkpoint) and resets the log. The format
 * (integers big-endian):
 *
 *   block 0, the header (rewritten by every reset):
 *     8   "VTPMLOG1"
 *     u64 file size
 *     u64 epoch (random, new at every reset)
 *     32  BLAKE2b-256 of the 24 bytes above
 *   from offset 4096, records, each starting at a 4 KiB boundary:
 *     8   "VTPMREC1"
 *     u64 epoch (the header's)
 *     u64 sequence number (1, 2, ... within an epoch)
 *     u32 number of ops n (1..STORE_LOG_OPS_MAX)
 *     u32 body length L
 *     L   body: n ops, each
 *           u8 1 (PUT_INST): u16 length m (1..STORE_INST_RECORD_MAX), m bytes
 *               instance record (store_inst_encode() format)
 *           u8 2 (PUT_BLOB): 16 uuid, u8 type (1..3), u32 length m
 *               (1..STORE_BLOB_MAX), m bytes sealed blob
 *         (exact end)
 *     32  BLAKE2b-256 of everything above in the record
 *     zeros up to the next 4 KiB boundary (not covered: never read)
 *
 * Every byte of the file is untrusted when read back: store_log_parse() is
 * fuzzed (tests/fuzz/fuzz_store_log.c).
 */
#ifndef VTPM_STORE_LOG_H
#define VTPM_STORE_LOG_H

#include "store_backend.h"

#define STORE_LOG_FILE		"commit.log"
#define STORE_LOG_BLOCK		4096u
#define STORE_LOG_SIZE		((size_t)32 << 20)	/* 32 MiB */
#define STORE_LOG_OPS_MAX	65536u
#define STORE_LOG_REC_HDR	32u	/* magic, epoch, seq, n, L */
#define STORE_LOG_SUM_LEN	32u

struct store_log;

/*
 * Opens dir/commit.log, creating it (zero-filled to STORE_LOG_SIZE, synced,
 * then renamed into place and the directory synced) if it is missing or
 * too small to hold a record. A log of another size is used at its size
 * (rounded down to a block). nosync: never fdatasync (STORE_F_NOSYNC).
 * *valid is set to 1 if the header checks (its epoch is store_log_epoch()),
 * else 0: the log then holds nothing usable and must be reset before use.
 * Returns 0; VTPM_E_IO (logged); VTPM_E_NOMEM.
 */
int store_log_open(const char *dir, int nosync, struct store_log **out, int *valid)
    VTPM_WUR;

void store_log_close(struct store_log *l);

uint64_t store_log_epoch(const struct store_log *l);

/* Bytes in use (header and records) and the file's size. */
size_t store_log_used(const struct store_log *l);
size_t store_log_size(const struct store_log *l);

/* The sequence number the next record gets (1 after a reset). */
uint64_t store_log_next_seq(const struct store_log *l);

/*
 * Reads the records of the current epoch from the start, in order, calling
 * cb for each (b holds its ops; cb may not keep b) until the first record
 * that does not parse: that is the end of the log (a torn tail). Sets the
 * append position after the last good record. Returns 0, cb's nonzero
 * value, VTPM_E_IO, VTPM_E_NOMEM.
 */
int store_log_replay(struct store_log *l,
    int (*cb)(const struct store_batch *b, uint64_t seq, void *arg), void *arg) VTPM_WUR;

/*
 * The padded size a record of b takes, or 0 if b holds an op the log does
 * not carry (anything but PUT_INST and PUT_BLOB) or too many ops.
 */
size_t store_log_record_size(const struct store_batch *b);

/*
 * Appends b as one record and makes it durable (pwrite, fdatasync).
 * VTPM_E_STORE_FULL if it does not fit in the space left (nothing written).
 * On an I/O failure the record's bytes on disk are undefined: the caller
 * must close the epoch (checkpoint, reset) before anything else is appended.
 * Returns 0; VTPM_E_STORE_FULL; VTPM_E_INVAL (b not loggable); VTPM_E_IO
 * (logged); VTPM_E_NOMEM.
 */
int store_log_append(struct store_log *l, const struct store_batch *b) VTPM_WUR;

/*
 * Starts a new epoch: a fresh random epoch in a new header, written and made
 * durable before it returns; the log is then empty. Returns 0 or VTPM_E_IO.
 */
int store_log_reset(struct store_log *l) VTPM_WUR;

/*
 * Parses one record (untrusted) at buf[0..len), which must be of epoch and
 * carry sequence number seq. On success *used is its padded size (may
 * exceed len only by padding) and out (empty on entry) holds its ops.
 * Returns 0; VTPM_E_FORMAT (anything wrong: torn, other epoch, bad
 * checksum, bad op); VTPM_E_NOMEM. out is reset on failure.
 */
int store_log_parse(const uint8_t *buf, size_t len, uint64_t epoch, uint64_t seq,
    struct store_batch *out, size_t *used) VTPM_WUR;

/*
 * Encodes b as a record of (epoch, seq) into out[0..cap), padded; cap must be
 * at least store_log_record_size(b). Returns the padded length or 0.
 */
size_t store_log_encode(const struct store_batch *b, uint64_t epoch, uint64_t seq,
    uint8_t *out, size_t cap);

#endif
