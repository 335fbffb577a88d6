/*
 * store_backend.h: what a storage backend implements (private to storage/).
 *
 * A backend allocates a structure that begins with struct store, points ops
 * at its table, and fills every entry. store.c checks the arguments before
 * calling an op (valid name, known type, non-NULL pointers), so ops may
 * assume them. Ops return the codes documented for the matching store_*()
 * function in store.h. A second backend (etcd) adds a file here and an
 * open function in store.h; nothing else changes.
 */
#ifndef VTPM_STORE_BACKEND_H
#define VTPM_STORE_BACKEND_H

#include "store.h"

struct store_ops {
	const char *name;
	void	(*close)(struct store *s);
	int	(*meta_get_kcv)(struct store *s, uint8_t kcv[SEAL_KCV_LEN]);
	int	(*inst_get)(struct store *s, const char *name, struct store_instance *out);
	int	(*inst_find_identity)(struct store *s, const uint8_t ident[STORE_IDENT_LEN],
		    const uint8_t meas[STORE_MEAS_LEN], const uint8_t host[STORE_HOST_DATA_LEN],
		    struct store_instance *out);
	int	(*inst_list)(struct store *s,
		    int (*cb)(const struct store_instance *, void *), void *arg);
	int	(*blob_get)(struct store *s, const uint8_t uuid[SEAL_UUID_LEN], uint8_t type,
		    uint8_t *buf, size_t cap, size_t *len);
	/* Applies b's ops in order, all or nothing. Must not change b. */
	int	(*batch_commit)(struct store *s, const struct store_batch *b);
	/* Read snapshots, the audit and the transfer tables (store.h). */
	int	(*snapshot_begin)(struct store *s, struct store_snapshot **out);
	void	(*snapshot_end)(struct store_snapshot *snap);
	int	(*snapshot_info)(struct store_snapshot *snap, size_t *count,
		    uint8_t kcv[SEAL_KCV_LEN]);
	int	(*snapshot_next)(struct store_snapshot *snap, const char *after,
		    struct store_inst_view *out);
	int	(*audit_list)(struct store *s, uint64_t from_seq,
		    int (*cb)(uint64_t, const uint8_t *, size_t, void *), void *arg);
	int	(*audit_bounds)(struct store *s, uint64_t *first, uint64_t *last,
		    uint64_t *count);
	int	(*xfer_get)(struct store *s, uint8_t kind,
		    const uint8_t id[STORE_XFER_ID_LEN], uint8_t *buf, size_t cap,
		    size_t *len);
	/*
	 * Ownership (store.h); NULL in a backend with one process per store,
	 * except fleet_tick, which LMDB uses as its periodic tick.
	 */
	int	(*inst_claim)(struct store *s, const char *name, char *owner, size_t ownerlen);
	void	(*inst_release)(struct store *s, const char *name);
	void	(*fleet_tick)(struct store *s, void (*lost)(const char *, void *), void *arg);
	int	(*inst_owner)(struct store *s, const char *name, char *owner, size_t ownerlen,
		    int64_t *lease);
	void	(*fleet_self)(struct store *s, char *owner, size_t ownerlen, int64_t *lease);
	/* Batch limits (store.h store_batch_limits); NULL = none. */
	void	(*batch_limits)(struct store *s, int *max_insts, int *max_audit);
};

struct store {
	const struct store_ops *ops;
};

/* A backend's snapshot begins with this. */
struct store_snapshot {
	struct store	*ss_store;
};

enum store_op_kind {
	STORE_OP_PUT_KCV = 1,
	STORE_OP_PUT_INST,
	STORE_OP_DEL_INST,
	STORE_OP_PUT_BLOB,
	STORE_OP_DEL_BLOB,
	STORE_OP_PUT_AUDIT,	/* data = encoded record; key assigned at commit */
	STORE_OP_PUT_XFER,	/* type = kind, uuid = id, data = value */
	STORE_OP_DEL_XFER,	/* type = kind, uuid = id */
	STORE_OP_PRUNE_AUDIT,	/* data = u64 upto_seq (big-endian) */
};

/* One recorded write. Fields not used by a kind are zero. */
struct store_op {
	enum store_op_kind	 kind;
	char			 name[STORE_NAME_MAX + 1];	/* PUT_INST, DEL_INST */
	uint8_t			 uuid[SEAL_UUID_LEN];		/* PUT_INST, *_BLOB; *_XFER: id */
	uint8_t			 type;				/* *_BLOB; *_XFER: kind */
	int			 has_ident;			/* PUT_INST: identity enrolled */
	uint8_t			 ident[STORE_IDENT_LEN];	/* PUT_INST */
	uint8_t			 meas[STORE_MEAS_LEN];		/* PUT_INST */
	uint8_t			 host[STORE_HOST_DATA_LEN];	/* PUT_INST */
	uint8_t			*data;	/* heap: kcv, encoded record, sealed blob, audit record, xfer value */
	size_t			 len;
};

struct store_batch {
	struct store_op	*ops;
	size_t		 n;
	size_t		 cap;
};

/* Blob key uuid(16) || type(1). */
#define STORE_BLOB_KEY_LEN	(SEAL_UUID_LEN + 1)
/* Transfer key kind(1) || id(16). */
#define STORE_XFER_KEY_LEN	(1 + STORE_XFER_ID_LEN)

#endif
