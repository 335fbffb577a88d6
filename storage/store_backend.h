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
};

struct store {
	const struct store_ops *ops;
};

enum store_op_kind {
	STORE_OP_PUT_KCV = 1,
	STORE_OP_PUT_INST,
	STORE_OP_DEL_INST,
	STORE_OP_PUT_BLOB,
	STORE_OP_DEL_BLOB,
};

/* One recorded write. Fields not used by a kind are zero. */
struct store_op {
	enum store_op_kind	 kind;
	char			 name[STORE_NAME_MAX + 1];	/* PUT_INST, DEL_INST */
	uint8_t			 uuid[SEAL_UUID_LEN];		/* PUT_INST, *_BLOB */
	uint8_t			 type;				/* *_BLOB */
	int			 has_ident;			/* PUT_INST: identity enrolled */
	uint8_t			 ident[STORE_IDENT_LEN];	/* PUT_INST */
	uint8_t			 meas[STORE_MEAS_LEN];		/* PUT_INST */
	uint8_t			 host[STORE_HOST_DATA_LEN];	/* PUT_INST */
	uint8_t			*data;	/* heap: kcv, encoded record, sealed blob */
	size_t			 len;
};

struct store_batch {
	struct store_op	*ops;
	size_t		 n;
	size_t		 cap;
};

/* Blob key uuid(16) || type(1). */
#define STORE_BLOB_KEY_LEN	(SEAL_UUID_LEN + 1)

#endif
