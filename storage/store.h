/*
 * store.h: the persistent store of vtpmd instances (records and sealed blobs).
 *
 * A store holds six tables:
 *   meta   store format version and the root key's key-check value (seal.h)
 *   inst   instance name -> instance record (store_inst_encode() format)
 *   ident  SHA-256(measurement || host_data) -> instance name
 *   blob   uuid(16) || type(1) -> sealed blob (seal.h "VTB1"), stored as given
 *          (type 3 also under "EKCA" 0000 kid: the EK CA key, wrapped, endorse.c)
 *   audit  u64 sequence -> audit record (store_audit_encode() format)
 *   xfer   kind(1) || id(16) -> export/import bookkeeping (see below)
 * Nothing in the store is secret in clear: records carry the data key only
 * wrapped, blobs are sealed. The store never sees a key.
 *
 * Reads go straight to the backend. Writes are collected in a struct
 * store_batch and committed atomically and durably by store_batch_commit():
 * one batch is the group-commit unit, so writes of many instances may share
 * one batch and one device flush.
 *
 * The backend is chosen at open time behind a small vtable (store_backend.h);
 * LMDB is the one built in. Every function that can fail returns 0 or a
 * negative VTPM_E_* code. Argument errors (NULL, a bad name, an unknown blob
 * type) return VTPM_E_INVAL.
 *
 * Threads and processes: the functions on one struct store may be called from
 * several threads at once, except store_close(); a batch must be used by one
 * thread at a time. A store must not be used in a child after fork(); its
 * descriptors are close-on-exec. One process at a time may open a store
 * directory (flock on dir/vtpmd.lock).
 */
#ifndef VTPM_STORE_H
#define VTPM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "vtpm_error.h"

#define STORE_NAME_MAX		63	/* longest instance name, without NUL */
#define STORE_MEAS_LEN		48
#define STORE_HOST_DATA_LEN	32
#define STORE_LAUNCH_ID_LEN	32
#define STORE_IDENT_LEN		32	/* SHA-256 */

#define STORE_INST_FENCED	0x1u	/* exported or owned elsewhere: serve nothing */
#define STORE_INST_FLAGS_KNOWN	(STORE_INST_FENCED)

#define STORE_INST_RECORD_VERSION 1
#define STORE_INST_RECORD_MAX	512	/* >= any encoded record */
#define STORE_BLOB_MAX		(SEAL_PLAIN_MAX + SEAL_BLOB_OVERHEAD)

/* Flags for store_open_lmdb_flags(). */
#define STORE_F_NOSYNC		0x1u	/* MDB_NOSYNC, no fdatasync of the log: NOT durable; tests and benchmarks only */

struct store;		/* opaque; begins with const struct store_ops *ops */
struct store_batch;	/* opaque; heap */

/*
 * The instance record. Holds no secret in clear.
 * An all-zero measurement together with an all-zero host_data means "no
 * identity enrolled": such a record has no ident index entry.
 */
struct store_instance {
	char		name[STORE_NAME_MAX + 1];	/* [A-Za-z0-9._-]{1,63}, NUL-terminated */
	uint8_t		uuid[SEAL_UUID_LEN];
	uint8_t		measurement[STORE_MEAS_LEN];	/* enrolled identity */
	uint8_t		host_data[STORE_HOST_DATA_LEN];
	uint64_t	created;			/* unix seconds */
	uint64_t	perm_gen;	/* generation of the committed permanent blob, 0 = none yet */
	uint64_t	vol_gen;	/* generation of the stored volatile blob, 0 = none */
	uint8_t		vol_launch_id[STORE_LAUNCH_ID_LEN];	/* launch the volatile blob belongs to */
	uint32_t	flags;		/* STORE_INST_* */
	uint8_t		wrapped_dek[SEAL_WRAPPED_DEK_LEN];
	uint32_t	pcr_banks;	/* bitmask chosen at creation */
};

/* ---- opening ---------------------------------------------------------- */

/*
 * Opens (creating if needed) the LMDB store in directory dir, durably:
 * every commit is flushed to the device before it returns.
 * Beside LMDB's data.mdb the store keeps a commit log, dir/commit.log
 * (STORE_LOG_SIZE, 32 MiB, zero-filled once): a batch of only
 * store_batch_put_blob() and store_batch_put_inst() writes that replace a
 * record of the same uuid and identity (the NV-write hot path) is made
 * durable by one append and one fdatasync there, and moved into LMDB by a
 * later checkpoint (every other batch, store_inst_list(), a snapshot, the
 * log half full, a second after its first record via store_fleet_tick(),
 * store_close()). Open replays what the log holds and LMDB lacks (a crash),
 * so the two files are the store: copy or move them together.
 *   dir       created with mode 0700 if missing (the last component only);
 *   map_size  the largest the data file may grow to, in bytes; 0 = 1 GiB.
 *             The file is sparse and grows only as data is written.
 *   out       set to the new store, owned by the caller (store_close()).
 * Takes an exclusive flock on dir/vtpmd.lock for the store's lifetime.
 * Returns 0; VTPM_E_INVAL; VTPM_E_BUSY (another open store holds the lock,
 * in this or another process); VTPM_E_IO (mkdir, open or flock failed; logged
 * with errno); VTPM_E_UNSUPPORTED (store written by a newer format);
 * VTPM_E_STORE (LMDB failed; logged); VTPM_E_NOMEM.
 */
int store_open_lmdb(const char *dir, size_t map_size, struct store **out) VTPM_WUR;

/* As store_open_lmdb() with STORE_F_* flags; unknown flags -> VTPM_E_INVAL. */
int store_open_lmdb_flags(const char *dir, size_t map_size, unsigned int flags,
    struct store **out) VTPM_WUR;

/*
 * The etcd backend (store_etcd.c, docs/FLEET.md): many vtpmd processes share
 * one etcd cluster, reached through its v3 JSON gateway with libcurl (loaded
 * at run time). The store holds a lease, renewed by one thread that does
 * nothing else; instances are served by one owner at a time (store_inst_claim()).
 */
#define STORE_ETCD_MAX_ENDPOINTS	8
#define STORE_ETCD_OWNER_MAX		127	/* "node/incarnation", printable */

struct store_etcd_cfg {
	const char	*endpoints;	/* "http[s]://HOST:PORT[,...]" */
	const char	*ca_file;	/* PEM bundle for https; NULL = the system's */
	const char	*cert_file;	/* client certificate (PEM), or NULL */
	const char	*key_file;	/* its key (PEM), or NULL */
	int		 allow_http;	/* plain http to a host that is not loopback */
	int		 lease_ttl;	/* seconds, 2..3600; 0 = 10 */
	int		 timeout_ms;	/* per request, all endpoints together; 0 = 2000 */
	const char	*node;		/* this vtpmd's name in owner keys; NULL = hostname */
	int		 max_txn_ops;	/* etcd's --max-txn-ops; 0 = 128, its default */
};

/*
 * Opens the etcd store: checks the endpoints (plain http only to loopback
 * unless allow_http), loads libcurl, checks or sets the store format and
 * grants this process's lease, then starts the keepalive thread (call it
 * after any fork()/daemonising and with the signal mask the thread should
 * inherit). Returns 0; VTPM_E_INVAL (bad configuration, logged);
 * VTPM_E_UNSUPPORTED (no usable libcurl, or a store of a newer format);
 * VTPM_E_IO or VTPM_E_TIMEOUT (no endpoint answered); VTPM_E_FORMAT (an
 * answer that does not parse); VTPM_E_NOMEM.
 */
int store_open_etcd(const struct store_etcd_cfg *cfg, struct store **out) VTPM_WUR;

/*
 * Ownership (etcd; other backends have one process per store and succeed):
 * store_inst_claim() makes this process the owner of instance name, bound to
 * its lease, unless another owner holds it: then VTPM_E_BUSY with the
 * owner's name in owner[0..ownerlen). Every later write of the instance's
 * record is fenced: it commits only while this process still owns the
 * instance and the record is the one it last wrote, else the commit fails
 * with VTPM_E_FENCED and the instance stays refused until released.
 * Returns 0; VTPM_E_BUSY; VTPM_E_FENCED (this process's lease is gone);
 * VTPM_E_IO, VTPM_E_TIMEOUT, VTPM_E_FORMAT, VTPM_E_STORE.
 */
int store_inst_claim(struct store *s, const char *name, char *owner, size_t ownerlen)
    VTPM_WUR;

/* Gives up ownership of name if held (deletes the owner key if it is still ours). */
void store_inst_release(struct store *s, const char *name);

/*
 * Checks every claimed instance: one whose lease may lapse before the next
 * renewal is marked lost and lost(name, arg) is called, so the caller stops
 * serving it before anyone else can take it. Call at least once a second.
 * Also the backends' periodic housekeeping: LMDB checkpoints its commit
 * log there once its oldest record is a second old, and retries a failed
 * checkpoint (lost is never called).
 */
void store_fleet_tick(struct store *s, void (*lost)(const char *name, void *arg),
    void *arg);

/*
 * The owner of name as the store knows it: owner text and lease ID.
 * Returns 0; VTPM_E_NOTFOUND (no owner, or a backend without owners);
 * VTPM_E_IO, VTPM_E_FORMAT, VTPM_E_STORE.
 */
int store_inst_owner(struct store *s, const char *name, char *owner, size_t ownerlen,
    int64_t *lease) VTPM_WUR;

/* This process's owner name and lease ID ("" and 0 for other backends). */
void store_fleet_self(struct store *s, char *owner, size_t ownerlen, int64_t *lease);

/*
 * How much one batch may carry in this backend (0 = no limit): the state
 * stores of at most *max_insts instances (a blob and a record each) and at
 * most *max_audit audit records. etcd refuses a txn with more than its
 * --max-txn-ops compares or writes (store_etcd_cfg.max_txn_ops); vtpmd
 * commits a group before it outgrows this, so a busy round becomes several
 * commits instead of one refused one.
 */
void store_batch_limits(struct store *s, int *max_insts, int *max_audit);

/* Closes the store and releases its lock. No batch may be committing. NULL is a no-op. */
void store_close(struct store *s);

/* The backend's name ("lmdb"), for logs. */
const char *store_backend_name(const struct store *s);

/* ---- reads ------------------------------------------------------------ */

/*
 * Copies the key-check value from the meta table into kcv.
 * Returns 0; VTPM_E_NOTFOUND (fresh store: none stored yet); VTPM_E_FORMAT
 * (stored value is not 64 bytes); VTPM_E_STORE.
 */
int store_meta_get_kcv(struct store *s, uint8_t kcv[SEAL_KCV_LEN]) VTPM_WUR;

/*
 * Reads the record of instance name into *out.
 * Returns 0; VTPM_E_INVAL (not a valid name); VTPM_E_NOTFOUND; VTPM_E_FORMAT
 * (the stored record does not decode, or names another instance);
 * VTPM_E_STORE. *out is zeroed on failure.
 */
int store_inst_get(struct store *s, const char *name, struct store_instance *out) VTPM_WUR;

/*
 * Finds the instance enrolled with this (measurement, host_data) through the
 * ident index, and checks that the record it names really carries them.
 * Returns 0; VTPM_E_NOTFOUND; VTPM_E_FORMAT (index and record disagree, or the
 * record does not decode); VTPM_E_STORE. *out is zeroed on failure.
 */
int store_inst_find_identity(struct store *s, const uint8_t meas[STORE_MEAS_LEN],
    const uint8_t host[STORE_HOST_DATA_LEN], struct store_instance *out) VTPM_WUR;

/*
 * Calls cb(record, arg) for every instance in name (byte) order, inside one
 * read snapshot. A nonzero return from cb stops the walk and is returned.
 * A record that does not decode is skipped with a log line, and once the walk
 * has visited all others the call returns VTPM_E_FORMAT. cb may call the read
 * functions; it should not commit a batch (the snapshot would pin old pages).
 * The record passed to cb is valid only during the call.
 * Returns 0, cb's nonzero value, VTPM_E_FORMAT or VTPM_E_STORE.
 */
int store_inst_list(struct store *s,
    int (*cb)(const struct store_instance *inst, void *arg), void *arg) VTPM_WUR;

/*
 * Copies the sealed blob (uuid, type) into buf[0..cap) and sets *len to its
 * size. If cap is too small, returns VTPM_E_TOOBIG with *len set to the size
 * needed and buf untouched. The bytes are as stored: open them with
 * unseal_blob(), which checks them.
 * Returns 0; VTPM_E_INVAL; VTPM_E_NOTFOUND; VTPM_E_TOOBIG; VTPM_E_STORE.
 */
int store_blob_get(struct store *s, const uint8_t uuid[SEAL_UUID_LEN], uint8_t type,
    uint8_t *buf, size_t cap, size_t *len) VTPM_WUR;

/* ---- batched writes --------------------------------------------------- */

/*
 * A batch is an ordered list of writes, applied in order and committed as
 * one atomic, durable unit. The store_batch_put_* and _del_* calls only
 * record the write (copying every argument) and check the arguments; errors
 * that depend on the store's contents are reported by store_batch_commit().
 * Batches are backend-independent and may be committed to any store.
 */

/* Returns an empty batch owned by the caller, or NULL if out of memory. */
struct store_batch *store_batch_new(void);

/* Frees a batch and everything it holds. NULL is a no-op. */
void store_batch_free(struct store_batch *b);

/* Drops every recorded write; the batch is then empty and reusable. */
void store_batch_reset(struct store_batch *b);

/* Number of writes recorded. */
size_t store_batch_count(const struct store_batch *b);

/* Sets the key-check value in the meta table (replacing any). Returns 0, VTPM_E_INVAL, VTPM_E_NOMEM. */
int store_batch_put_kcv(struct store_batch *b, const uint8_t kcv[SEAL_KCV_LEN]) VTPM_WUR;

/*
 * Creates or replaces the record of inst->name and keeps the ident index in
 * step (drops the old identity's entry, adds the new one). At commit:
 * VTPM_E_EXISTS if a record of that name exists with another uuid (a create
 * must not clobber an instance), or if another instance is enrolled with the
 * same identity.
 * Returns 0; VTPM_E_INVAL (bad name or unknown flag bits); VTPM_E_NOMEM.
 */
int store_batch_put_inst(struct store_batch *b, const struct store_instance *inst) VTPM_WUR;

/*
 * Deletes instance name: its record, its ident entry and all its blobs.
 * With the record goes the only copy of the wrapped data key, so anything
 * sealed for the instance elsewhere (backups, exports) is unreadable
 * (crypto-shredding). At commit: VTPM_E_NOTFOUND if there is no such record.
 * A record that does not decode is still deleted, with a log line; its blobs
 * then cannot be located and stay behind, sealed.
 * Returns 0; VTPM_E_INVAL; VTPM_E_NOMEM.
 */
int store_batch_del_inst(struct store_batch *b, const char *name) VTPM_WUR;

/*
 * Stores a sealed blob under (uuid, type), replacing any. Copies sealed.
 * The bytes are not checked here (seal them with seal_blob()).
 * Returns 0; VTPM_E_INVAL (unknown type, len 0); VTPM_E_TOOBIG (len above
 * STORE_BLOB_MAX); VTPM_E_NOMEM.
 */
int store_batch_put_blob(struct store_batch *b, const uint8_t uuid[SEAL_UUID_LEN],
    uint8_t type, const uint8_t *sealed, size_t len) VTPM_WUR;

/* Deletes the blob (uuid, type); deleting a missing blob is not an error. Returns 0, VTPM_E_INVAL, VTPM_E_NOMEM. */
int store_batch_del_blob(struct store_batch *b, const uint8_t uuid[SEAL_UUID_LEN],
    uint8_t type) VTPM_WUR;

/*
 * Applies the batch's writes in order in one transaction and commits it
 * durably (unless opened with STORE_F_NOSYNC). All or nothing: on any failure
 * the store is exactly as before.
 * On success the batch is emptied (ready for reuse); on failure it is left
 * as it was, so the caller may retry it or store_batch_reset() it.
 * An empty batch commits nothing and returns 0.
 * Returns 0; VTPM_E_INVAL; VTPM_E_STORE_FULL (map full, ENOSPC, EDQUOT);
 * VTPM_E_TOOBIG (one transaction cannot hold this batch: split it);
 * VTPM_E_NOTFOUND, VTPM_E_EXISTS (see the writes above); VTPM_E_STORE (any
 * other backend failure; logged).
 */
int store_batch_commit(struct store *s, struct store_batch *b) VTPM_WUR;

/* ---- the record format ------------------------------------------------ */

/*
 * The instance record, version 1 (integers big-endian):
 *   u8   record version = 1
 *   u8   name length n, 1..63
 *   n    name, [A-Za-z0-9._-], not "." or ".."
 *   16   uuid
 *   48   measurement
 *   32   host_data
 *   u64  created
 *   u64  perm_gen
 *   u64  vol_gen
 *   32   vol_launch_id
 *   u32  flags (only STORE_INST_FLAGS_KNOWN bits)
 *   u32  pcr_banks
 *   u16  wrapped DEK length = 88
 *   88   wrapped DEK
 *   (end: nothing may follow)
 */

/*
 * Encodes inst into out[0..cap) and sets *outlen.
 * Returns 0; VTPM_E_INVAL (bad name, unknown flags); VTPM_E_TOOBIG (cap).
 */
int store_inst_encode(const struct store_instance *inst, uint8_t *out, size_t cap,
    size_t *outlen) VTPM_WUR;

/*
 * Decodes a record (untrusted bytes) into *out, checking every field and the
 * exact end. Returns 0, VTPM_E_INVAL (NULL) or VTPM_E_FORMAT (anything
 * else wrong); *out is zeroed on failure.
 */
int store_inst_decode(const uint8_t *buf, size_t len, struct store_instance *out) VTPM_WUR;

/* 0 if name is a valid instance name (NUL-terminated), else VTPM_E_INVAL. */
int store_inst_name_check(const char *name) VTPM_WUR;

/* The ident index key: SHA-256(meas || host). */
void store_ident_key(const uint8_t meas[STORE_MEAS_LEN],
    const uint8_t host[STORE_HOST_DATA_LEN], uint8_t key[STORE_IDENT_LEN]);

/* 1 if (meas, host) is all zero, i.e. no identity enrolled. */
int store_ident_is_empty(const uint8_t meas[STORE_MEAS_LEN],
    const uint8_t host[STORE_HOST_DATA_LEN]);

/* ---- root-key rotation (rewrap.c) ------------------------------------- */

/*
 * Moves the store from root key old_kek to new_kek: rewraps every
 * instance's data key and replaces the key-check value, all in ONE batch
 * committed atomically and durably, so after a crash at any point the store
 * is entirely under old_kek or entirely under new_kek. Before writing
 * anything it checks that the stored key-check value is old_kek's and that
 * every wrapped key opens (a record already under new_kek is kept as it is).
 * Each data key is unwrapped into guarded memory and wiped at once. Sealed
 * blobs are not touched: they are sealed by the data keys, which do not
 * change (their header kid stays the one at sealing time; informational).
 * The caller must let no other write reach the store during the call (it
 * reads the records, then commits them rewrapped).
 *   count  set to the number of records rewrapped (may be NULL).
 * Returns 0; VTPM_E_INVAL; VTPM_E_NOTFOUND (no key-check value: a fresh
 * store); VTPM_E_WRONG_KEY or VTPM_E_AUTH (old_kek does not open the store
 * or an instance's data key: nothing written); VTPM_E_FORMAT (a record
 * that does not decode: nothing written); the codes of store_batch_commit();
 * VTPM_E_NOMEM.
 */
int store_rewrap_all(struct store *s, const struct seal_kek *old_kek,
    const struct seal_kek *new_kek, size_t *count) VTPM_WUR;

/* ---- read snapshots (backups) ---------------------------------------- */

/*
 * A read snapshot: one consistent, immutable view of the whole store (an
 * LMDB read transaction), for taking a backup while instances keep writing.
 * Writers are not blocked; the snapshot pins the pages it sees, so the data
 * file may grow while one is open: end it soon. A snapshot may be kept
 * across calls and event-loop rounds, and used by one thread at a time.
 */
struct store_snapshot;		/* opaque; heap */

/* One instance as the snapshot holds it. Pointers stay valid until store_snapshot_end(). */
struct store_inst_view {
	struct store_instance	 rec;		/* decoded and checked */
	const uint8_t		*rec_bytes;	/* the record as stored (store_inst_encode() format) */
	size_t			 rec_len;
	const uint8_t		*perm;		/* sealed permanent blob, NULL if none stored */
	size_t			 perm_len;
	const uint8_t		*vol;		/* sealed volatile blob, NULL if none stored */
	size_t			 vol_len;
	const uint8_t		*endo;		/* sealed endorsement blob, NULL if none stored */
	size_t			 endo_len;
};

/*
 * Opens a snapshot of s. *out is owned by the caller (store_snapshot_end()).
 * Returns 0; VTPM_E_INVAL; VTPM_E_NOMEM; VTPM_E_STORE.
 */
int store_snapshot_begin(struct store *s, struct store_snapshot **out) VTPM_WUR;

/* Ends a snapshot; every pointer it handed out becomes invalid. NULL is a no-op. */
void store_snapshot_end(struct store_snapshot *snap);

/*
 * The number of instance records in the snapshot, and its key-check value
 * (kcv may be NULL). Returns 0; VTPM_E_INVAL; VTPM_E_NOTFOUND (no key-check
 * value: a fresh store); VTPM_E_FORMAT (kcv record corrupt); VTPM_E_STORE.
 */
int store_snapshot_info(struct store_snapshot *snap, size_t *count,
    uint8_t kcv[SEAL_KCV_LEN]) VTPM_WUR;

/*
 * The first instance whose name sorts (bytewise) after `after` (NULL or ""
 * for the first of all) and its blobs, read from the snapshot. A blob whose
 * generation the record names as 0 is not returned even if stored.
 * Returns 0; VTPM_E_NOTFOUND (no more instances); VTPM_E_FORMAT (the next
 * record does not decode or names another instance: its key is copied into
 * out->rec.name when it is a valid name, so the caller can say which);
 * VTPM_E_INVAL; VTPM_E_STORE.
 */
int store_snapshot_next(struct store_snapshot *snap, const char *after,
    struct store_inst_view *out) VTPM_WUR;

/* ---- the audit table -------------------------------------------------- */

/*
 * Table "audit": u64 sequence number (big-endian, from 1, assigned at
 * commit in batch order) -> one audit record (format below). Records are
 * appended; they hold no secret (names, identities, results). The oldest
 * may be pruned (store_batch_prune_audit()), never the newest, so sequence
 * numbers keep growing.
 */
enum store_audit_event {
	STORE_AUDIT_ENROL	= 1,	/* an instance created (enrolled) */
	STORE_AUDIT_ATTACH	= 2,	/* a guest attached, or was refused */
	STORE_AUDIT_DETACH	= 3,	/* a session ended */
	STORE_AUDIT_DELETE	= 4,
	STORE_AUDIT_BACKUP	= 5,
	STORE_AUDIT_RESTORE	= 6,
	STORE_AUDIT_EXPORT	= 7,
	STORE_AUDIT_IMPORT	= 8,
	STORE_AUDIT_ROTATE_KEY	= 9,
	STORE_AUDIT_PRUNE	= 10,	/* the oldest audit records were deleted (retention) */
};
#define STORE_AUDIT_EVENT_MAX	10

#define STORE_AUDIT_F_FORCED	0x1u	/* the operator overrode a safety check (--force) */
#define STORE_AUDIT_NO_UID	0xffffffffu
#define STORE_AUDIT_DETAIL_MAX	400
#define STORE_AUDIT_RECORD_VERSION 1
#define STORE_AUDIT_RECORD_MAX	(2 + 8 + 4 + 4 + 4 + 1 + STORE_NAME_MAX + SEAL_UUID_LEN + 1 + \
	STORE_MEAS_LEN + STORE_HOST_DATA_LEN + STORE_LAUNCH_ID_LEN + 2 + STORE_AUDIT_DETAIL_MAX)

struct store_audit_record {
	uint8_t		event;			/* enum store_audit_event */
	uint64_t	time_ms;		/* unix time, milliseconds */
	int32_t		result;			/* 0 = success, else a VTPM_E_* code */
	uint32_t	flags;			/* STORE_AUDIT_F_* */
	uint32_t	actor_uid;		/* operator's uid, or STORE_AUDIT_NO_UID */
	char		name[STORE_NAME_MAX + 1];	/* instance, "" for none */
	uint8_t		uuid[SEAL_UUID_LEN];	/* zero for none */
	int		has_claims;		/* the guest's verified identity follows */
	uint8_t		measurement[STORE_MEAS_LEN];
	uint8_t		host_data[STORE_HOST_DATA_LEN];
	uint8_t		launch_id[STORE_LAUNCH_ID_LEN];
	char		detail[STORE_AUDIT_DETAIL_MAX + 1];	/* printable ASCII */
};

/*
 * The audit record, version 1 (integers big-endian):
 *   u8   version = 1
 *   u8   event (1..STORE_AUDIT_EVENT_MAX)
 *   u64  time_ms
 *   u32  result (two's complement of the int32)
 *   u32  flags (only STORE_AUDIT_F_* bits)
 *   u32  actor_uid
 *   u8   name length n, 0..63; n bytes name (a valid instance name if n > 0)
 *   16   uuid
 *   u8   has_claims, 0 or 1; if 1: 48 measurement, 32 host_data, 32 launch_id
 *   u16  detail length d, 0..400; d bytes detail, each 0x20..0x7e
 *   (end)
 */

/*
 * Encodes r into out[0..cap) (cap >= STORE_AUDIT_RECORD_MAX always suffices).
 * A detail that is too long is cut at STORE_AUDIT_DETAIL_MAX; bytes outside
 * 0x20..0x7e are replaced by '?'. Returns 0; VTPM_E_INVAL (bad event, name
 * or flags); VTPM_E_TOOBIG (cap).
 */
int store_audit_encode(const struct store_audit_record *r, uint8_t *out, size_t cap,
    size_t *outlen) VTPM_WUR;

/* Decodes a record (untrusted bytes), exact end. Returns 0 or VTPM_E_FORMAT; *out zeroed on failure. */
int store_audit_decode(const uint8_t *buf, size_t len, struct store_audit_record *out)
    VTPM_WUR;

/* "attach", "backup", ... for an event code; "unknown" for others. */
const char *store_audit_event_name(uint8_t event);

/* Appends an encoded audit record to the batch (copied). Returns 0, VTPM_E_INVAL (len 0 or above the maximum), VTPM_E_NOMEM. */
int store_batch_put_audit(struct store_batch *b, const uint8_t *rec, size_t len) VTPM_WUR;

/*
 * Calls cb(seq, rec, len, arg) for every audit record with sequence number
 * >= from_seq, in order, inside one read snapshot. rec is the stored bytes
 * (decode them); valid during the call. A nonzero return from cb stops the
 * walk and is returned. Returns 0, cb's value, VTPM_E_INVAL, VTPM_E_STORE.
 */
int store_audit_list(struct store *s, uint64_t from_seq,
    int (*cb)(uint64_t seq, const uint8_t *rec, size_t len, void *arg), void *arg)
    VTPM_WUR;

/*
 * Deletes, at commit and in batch order, every audit record with sequence
 * number <= upto_seq except the newest record of the table. Returns 0,
 * VTPM_E_INVAL (upto_seq 0), VTPM_E_NOMEM.
 */
int store_batch_prune_audit(struct store_batch *b, uint64_t upto_seq) VTPM_WUR;

/*
 * The audit table's oldest and newest sequence numbers and its number of
 * records (all 0 when it is empty), in one read snapshot. Returns 0,
 * VTPM_E_INVAL, VTPM_E_STORE.
 */
int store_audit_bounds(struct store *s, uint64_t *first, uint64_t *last, uint64_t *count)
    VTPM_WUR;

/* ---- the transfer table (exports and imports) ------------------------- */

/*
 * Table "xfer": kind(1) || id(16) -> a small value (at most
 * STORE_XFER_VALUE_MAX bytes, the caller's format). Kinds:
 *   STORE_XFER_EXPORTED  export id -> what was exported (at the source)
 *   STORE_XFER_GONE      instance uuid -> the export id that moved it away
 *   STORE_XFER_IMPORTED  export id -> what was imported (at the destination),
 *                        so the same export is never imported twice
 */
#define STORE_XFER_EXPORTED	'E'
#define STORE_XFER_GONE		'U'
#define STORE_XFER_IMPORTED	'I'
#define STORE_XFER_ID_LEN	16
#define STORE_XFER_VALUE_MAX	256

/* Returns 0; VTPM_E_INVAL (unknown kind, len 0 or too long); VTPM_E_NOMEM. */
int store_batch_put_xfer(struct store_batch *b, uint8_t kind,
    const uint8_t id[STORE_XFER_ID_LEN], const uint8_t *val, size_t len) VTPM_WUR;

/* Deleting a missing entry is not an error. Returns 0, VTPM_E_INVAL, VTPM_E_NOMEM. */
int store_batch_del_xfer(struct store_batch *b, uint8_t kind,
    const uint8_t id[STORE_XFER_ID_LEN]) VTPM_WUR;

/*
 * Copies the value of (kind, id) into buf[0..cap) and sets *len; as
 * store_blob_get() for a small cap. Returns 0; VTPM_E_INVAL; VTPM_E_NOTFOUND;
 * VTPM_E_TOOBIG; VTPM_E_STORE.
 */
int store_xfer_get(struct store *s, uint8_t kind, const uint8_t id[STORE_XFER_ID_LEN],
    uint8_t *buf, size_t cap, size_t *len) VTPM_WUR;

#endif
