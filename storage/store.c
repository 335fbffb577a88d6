/*
 * store.c: backend-independent half of the store: argument checks and
 * dispatch to the backend's ops, write batches, and the instance record
 * format. Trusts its callers' structs after checking them; trusts nothing in
 * an encoded record (store_inst_decode() is fuzzed).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cursor.h"
#include "store_backend.h"

_Static_assert(2 + STORE_NAME_MAX + SEAL_UUID_LEN + STORE_MEAS_LEN + STORE_HOST_DATA_LEN +
    3 * 8 + STORE_LAUNCH_ID_LEN + 4 + 4 + 2 + SEAL_WRAPPED_DEK_LEN <= STORE_INST_RECORD_MAX,
    "STORE_INST_RECORD_MAX too small");

/* ---- dispatch --------------------------------------------------------- */

void
store_close(struct store *s)
{
	if (s != NULL)
		s->ops->close(s);
}

const char *
store_backend_name(const struct store *s)
{
	return s != NULL ? s->ops->name : "none";
}

static int
store_type_valid(uint8_t type)
{
	return type == SEAL_BLOB_PERMANENT || type == SEAL_BLOB_VOLATILE ||
	    type == SEAL_BLOB_ENDORSEMENT;
}

int
store_meta_get_kcv(struct store *s, uint8_t kcv[SEAL_KCV_LEN])
{
	if (s == NULL || kcv == NULL)
		return VTPM_E_INVAL;
	return s->ops->meta_get_kcv(s, kcv);
}

int
store_inst_get(struct store *s, const char *name, struct store_instance *out)
{
	int rc;

	if (out == NULL)
		return VTPM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (s == NULL || store_inst_name_check(name) != 0)
		return VTPM_E_INVAL;
	if ((rc = s->ops->inst_get(s, name, out)) != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

int
store_inst_find_identity(struct store *s, const uint8_t meas[STORE_MEAS_LEN],
    const uint8_t host[STORE_HOST_DATA_LEN], struct store_instance *out)
{
	uint8_t ident[STORE_IDENT_LEN];
	int rc;

	if (out == NULL)
		return VTPM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (s == NULL || meas == NULL || host == NULL)
		return VTPM_E_INVAL;
	if (store_ident_is_empty(meas, host))
		return VTPM_E_NOTFOUND;		/* never indexed */
	store_ident_key(meas, host, ident);
	if ((rc = s->ops->inst_find_identity(s, ident, meas, host, out)) != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

int
store_inst_list(struct store *s, int (*cb)(const struct store_instance *, void *),
    void *arg)
{
	if (s == NULL || cb == NULL)
		return VTPM_E_INVAL;
	return s->ops->inst_list(s, cb, arg);
}

int
store_blob_get(struct store *s, const uint8_t uuid[SEAL_UUID_LEN], uint8_t type,
    uint8_t *buf, size_t cap, size_t *len)
{
	if (len != NULL)
		*len = 0;
	if (s == NULL || uuid == NULL || len == NULL || !store_type_valid(type) ||
	    (buf == NULL && cap > 0))
		return VTPM_E_INVAL;
	return s->ops->blob_get(s, uuid, type, buf, cap, len);
}

int
store_batch_commit(struct store *s, struct store_batch *b)
{
	int rc;

	if (s == NULL || b == NULL)
		return VTPM_E_INVAL;
	if (b->n == 0)
		return 0;
	if ((rc = s->ops->batch_commit(s, b)) == 0)
		store_batch_reset(b);
	return rc;
}

/* ---- ownership (etcd) -------------------------------------------------- */

int
store_inst_claim(struct store *s, const char *name, char *owner, size_t ownerlen)
{
	if (owner != NULL && ownerlen > 0)
		owner[0] = '\0';
	if (s == NULL || store_inst_name_check(name) != 0 || (owner == NULL && ownerlen > 0))
		return VTPM_E_INVAL;
	return s->ops->inst_claim != NULL ? s->ops->inst_claim(s, name, owner, ownerlen) : 0;
}

void
store_inst_release(struct store *s, const char *name)
{
	if (s != NULL && store_inst_name_check(name) == 0 && s->ops->inst_release != NULL)
		s->ops->inst_release(s, name);
}

void
store_fleet_tick(struct store *s, void (*lost)(const char *, void *), void *arg)
{
	if (s != NULL && lost != NULL && s->ops->fleet_tick != NULL)
		s->ops->fleet_tick(s, lost, arg);
}

int
store_inst_owner(struct store *s, const char *name, char *owner, size_t ownerlen,
    int64_t *lease)
{
	if (owner != NULL && ownerlen > 0)
		owner[0] = '\0';
	if (lease != NULL)
		*lease = 0;
	if (s == NULL || store_inst_name_check(name) != 0 || owner == NULL ||
	    ownerlen == 0 || lease == NULL)
		return VTPM_E_INVAL;
	if (s->ops->inst_owner == NULL)
		return VTPM_E_NOTFOUND;
	return s->ops->inst_owner(s, name, owner, ownerlen, lease);
}

void
store_fleet_self(struct store *s, char *owner, size_t ownerlen, int64_t *lease)
{
	if (owner != NULL && ownerlen > 0)
		owner[0] = '\0';
	if (lease != NULL)
		*lease = 0;
	if (s != NULL && owner != NULL && ownerlen > 0 && lease != NULL &&
	    s->ops->fleet_self != NULL)
		s->ops->fleet_self(s, owner, ownerlen, lease);
}

void
store_batch_limits(struct store *s, int *max_insts, int *max_audit)
{
	*max_insts = 0;
	*max_audit = 0;
	if (s != NULL && s->ops->batch_limits != NULL)
		s->ops->batch_limits(s, max_insts, max_audit);
}

/* ---- batches ---------------------------------------------------------- */

struct store_batch *
store_batch_new(void)
{
	return calloc(1, sizeof(struct store_batch));
}

void
store_batch_reset(struct store_batch *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n; i++)
		free(b->ops[i].data);
	if (b->n > 0)
		memset(b->ops, 0, b->n * sizeof(b->ops[0]));
	b->n = 0;
}

void
store_batch_free(struct store_batch *b)
{
	if (b == NULL)
		return;
	store_batch_reset(b);
	free(b->ops);
	free(b);
}

size_t
store_batch_count(const struct store_batch *b)
{
	return b != NULL ? b->n : 0;
}

/*
 * Appends an op of this kind carrying a heap copy of data[0..len) and
 * returns it, or NULL if out of memory (the batch is then unchanged).
 */
static struct store_op *
store_batch_add(struct store_batch *b, enum store_op_kind kind, const void *data,
    size_t len)
{
	struct store_op *op, *grown;
	size_t ncap;
	uint8_t *copy = NULL;

	if (b->n == b->cap) {
		ncap = b->cap == 0 ? 16 : b->cap * 2;
		if (ncap > SIZE_MAX / sizeof(*grown))
			return NULL;
		/* ops hold no secrets (records and sealed blobs), so realloc is fine */
		if ((grown = realloc(b->ops, ncap * sizeof(*grown))) == NULL)
			return NULL;
		memset(grown + b->cap, 0, (ncap - b->cap) * sizeof(*grown));
		b->ops = grown;
		b->cap = ncap;
	}
	if (len > 0) {
		if ((copy = malloc(len)) == NULL)
			return NULL;
		memcpy(copy, data, len);
	}
	op = &b->ops[b->n++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->data = copy;
	op->len = len;
	return op;
}

int
store_batch_put_kcv(struct store_batch *b, const uint8_t kcv[SEAL_KCV_LEN])
{
	if (b == NULL || kcv == NULL)
		return VTPM_E_INVAL;
	return store_batch_add(b, STORE_OP_PUT_KCV, kcv, SEAL_KCV_LEN) != NULL ?
	    0 : VTPM_E_NOMEM;
}

int
store_batch_put_inst(struct store_batch *b, const struct store_instance *inst)
{
	uint8_t rec[STORE_INST_RECORD_MAX];
	struct store_op *op;
	size_t len;
	int rc;

	if (b == NULL || inst == NULL)
		return VTPM_E_INVAL;
	if ((rc = store_inst_encode(inst, rec, sizeof(rec), &len)) != 0)
		return rc == VTPM_E_TOOBIG ? VTPM_E_INVAL : rc;	/* cannot happen */
	if ((op = store_batch_add(b, STORE_OP_PUT_INST, rec, len)) == NULL)
		return VTPM_E_NOMEM;
	memcpy(op->name, inst->name, strlen(inst->name) + 1);
	memcpy(op->uuid, inst->uuid, SEAL_UUID_LEN);
	memcpy(op->meas, inst->measurement, STORE_MEAS_LEN);
	memcpy(op->host, inst->host_data, STORE_HOST_DATA_LEN);
	op->has_ident = !store_ident_is_empty(inst->measurement, inst->host_data);
	if (op->has_ident)
		store_ident_key(inst->measurement, inst->host_data, op->ident);
	return 0;
}

int
store_batch_del_inst(struct store_batch *b, const char *name)
{
	struct store_op *op;

	if (b == NULL || store_inst_name_check(name) != 0)
		return VTPM_E_INVAL;
	if ((op = store_batch_add(b, STORE_OP_DEL_INST, NULL, 0)) == NULL)
		return VTPM_E_NOMEM;
	memcpy(op->name, name, strlen(name) + 1);
	return 0;
}

int
store_batch_put_blob(struct store_batch *b, const uint8_t uuid[SEAL_UUID_LEN],
    uint8_t type, const uint8_t *sealed, size_t len)
{
	struct store_op *op;

	if (b == NULL || uuid == NULL || sealed == NULL || len == 0 ||
	    !store_type_valid(type))
		return VTPM_E_INVAL;
	if (len > STORE_BLOB_MAX)
		return VTPM_E_TOOBIG;
	if ((op = store_batch_add(b, STORE_OP_PUT_BLOB, sealed, len)) == NULL)
		return VTPM_E_NOMEM;
	memcpy(op->uuid, uuid, SEAL_UUID_LEN);
	op->type = type;
	return 0;
}

int
store_batch_del_blob(struct store_batch *b, const uint8_t uuid[SEAL_UUID_LEN],
    uint8_t type)
{
	struct store_op *op;

	if (b == NULL || uuid == NULL || !store_type_valid(type))
		return VTPM_E_INVAL;
	if ((op = store_batch_add(b, STORE_OP_DEL_BLOB, NULL, 0)) == NULL)
		return VTPM_E_NOMEM;
	memcpy(op->uuid, uuid, SEAL_UUID_LEN);
	op->type = type;
	return 0;
}

/* ---- names and identities --------------------------------------------- */

static int
store_name_char(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
}

/* Checks name bytes p[0..n) (no NUL needed). */
static int
store_name_check_bytes(const uint8_t *p, size_t n)
{
	size_t i;

	if (n < 1 || n > STORE_NAME_MAX)
		return VTPM_E_INVAL;
	for (i = 0; i < n; i++)
		if (!store_name_char(p[i]))
			return VTPM_E_INVAL;
	/* never a path component that means something else */
	if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
		return VTPM_E_INVAL;
	return 0;
}

int
store_inst_name_check(const char *name)
{
	if (name == NULL)
		return VTPM_E_INVAL;
	return store_name_check_bytes((const uint8_t *)name,
	    strnlen(name, STORE_NAME_MAX + 1));
}

void
store_ident_key(const uint8_t meas[STORE_MEAS_LEN],
    const uint8_t host[STORE_HOST_DATA_LEN], uint8_t key[STORE_IDENT_LEN])
{
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, meas, STORE_MEAS_LEN);
	crypto_hash_sha256_update(&st, host, STORE_HOST_DATA_LEN);
	crypto_hash_sha256_final(&st, key);
}

int
store_ident_is_empty(const uint8_t meas[STORE_MEAS_LEN],
    const uint8_t host[STORE_HOST_DATA_LEN])
{
	return sodium_is_zero(meas, STORE_MEAS_LEN) &&
	    sodium_is_zero(host, STORE_HOST_DATA_LEN);
}

/* ---- the record format ------------------------------------------------ */

int
store_inst_encode(const struct store_instance *inst, uint8_t *out, size_t cap,
    size_t *outlen)
{
	struct wbuf w;
	size_t n;
	int rc;

	if (outlen != NULL)
		*outlen = 0;
	if (inst == NULL || out == NULL || outlen == NULL)
		return VTPM_E_INVAL;
	if (store_inst_name_check(inst->name) != 0 ||
	    (inst->flags & ~STORE_INST_FLAGS_KNOWN) != 0)
		return VTPM_E_INVAL;
	n = strlen(inst->name);

	wbuf_init(&w, out, cap);
	wbuf_put_u8(&w, STORE_INST_RECORD_VERSION);
	wbuf_put_u8(&w, (uint8_t)n);
	wbuf_put_bytes(&w, inst->name, n);
	wbuf_put_bytes(&w, inst->uuid, SEAL_UUID_LEN);
	wbuf_put_bytes(&w, inst->measurement, STORE_MEAS_LEN);
	wbuf_put_bytes(&w, inst->host_data, STORE_HOST_DATA_LEN);
	wbuf_put_u64(&w, inst->created);
	wbuf_put_u64(&w, inst->perm_gen);
	wbuf_put_u64(&w, inst->vol_gen);
	wbuf_put_bytes(&w, inst->vol_launch_id, STORE_LAUNCH_ID_LEN);
	wbuf_put_u32(&w, inst->flags);
	wbuf_put_u32(&w, inst->pcr_banks);
	wbuf_put_u16(&w, SEAL_WRAPPED_DEK_LEN);
	wbuf_put_bytes(&w, inst->wrapped_dek, SEAL_WRAPPED_DEK_LEN);
	if ((rc = wbuf_end(&w, outlen)) != 0) {
		*outlen = 0;
		return rc;
	}
	return 0;
}

int
store_inst_decode(const uint8_t *buf, size_t len, struct store_instance *out)
{
	struct cursor c;
	const uint8_t *name;
	uint8_t version, nlen;
	uint16_t dlen;

	if (out == NULL)
		return VTPM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (buf == NULL)
		return VTPM_E_INVAL;

	cur_init(&c, buf, len);
	if (cur_get_u8(&c, &version) != 0 || version != STORE_INST_RECORD_VERSION)
		goto bad;
	if (cur_get_u8(&c, &nlen) != 0 || cur_get_ref(&c, &name, nlen) != 0 ||
	    store_name_check_bytes(name, nlen) != 0)
		goto bad;
	memcpy(out->name, name, nlen);
	out->name[nlen] = '\0';
	if (cur_get_bytes(&c, out->uuid, SEAL_UUID_LEN) != 0 ||
	    cur_get_bytes(&c, out->measurement, STORE_MEAS_LEN) != 0 ||
	    cur_get_bytes(&c, out->host_data, STORE_HOST_DATA_LEN) != 0 ||
	    cur_get_u64(&c, &out->created) != 0 ||
	    cur_get_u64(&c, &out->perm_gen) != 0 ||
	    cur_get_u64(&c, &out->vol_gen) != 0 ||
	    cur_get_bytes(&c, out->vol_launch_id, STORE_LAUNCH_ID_LEN) != 0 ||
	    cur_get_u32(&c, &out->flags) != 0 ||
	    cur_get_u32(&c, &out->pcr_banks) != 0 ||
	    cur_get_u16(&c, &dlen) != 0)
		goto bad;
	if ((out->flags & ~STORE_INST_FLAGS_KNOWN) != 0 || dlen != SEAL_WRAPPED_DEK_LEN)
		goto bad;
	if (cur_get_bytes(&c, out->wrapped_dek, SEAL_WRAPPED_DEK_LEN) != 0 ||
	    cur_end(&c) != 0)
		goto bad;
	return 0;

bad:
	memset(out, 0, sizeof(*out));
	return VTPM_E_FORMAT;
}

/* ---- snapshots, the audit table, the transfer table ------------------- */

int
store_snapshot_begin(struct store *s, struct store_snapshot **out)
{
	if (out == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	if (s == NULL)
		return VTPM_E_INVAL;
	return s->ops->snapshot_begin(s, out);
}

void
store_snapshot_end(struct store_snapshot *snap)
{
	if (snap != NULL)
		snap->ss_store->ops->snapshot_end(snap);
}

int
store_snapshot_info(struct store_snapshot *snap, size_t *count, uint8_t kcv[SEAL_KCV_LEN])
{
	if (snap == NULL || count == NULL)
		return VTPM_E_INVAL;
	*count = 0;
	return snap->ss_store->ops->snapshot_info(snap, count, kcv);
}

int
store_snapshot_next(struct store_snapshot *snap, const char *after,
    struct store_inst_view *out)
{
	int rc;

	if (out == NULL)
		return VTPM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (snap == NULL)
		return VTPM_E_INVAL;
	if (after != NULL && after[0] == '\0')
		after = NULL;
	if (after != NULL && strnlen(after, STORE_NAME_MAX + 1) > STORE_NAME_MAX)
		return VTPM_E_INVAL;
	if ((rc = snap->ss_store->ops->snapshot_next(snap, after, out)) != 0 &&
	    rc != VTPM_E_FORMAT)
		memset(out, 0, sizeof(*out));
	return rc;
}

int
store_batch_put_audit(struct store_batch *b, const uint8_t *rec, size_t len)
{
	if (b == NULL || rec == NULL || len == 0 || len > STORE_AUDIT_RECORD_MAX)
		return VTPM_E_INVAL;
	return store_batch_add(b, STORE_OP_PUT_AUDIT, rec, len) != NULL ? 0 : VTPM_E_NOMEM;
}

int
store_batch_prune_audit(struct store_batch *b, uint64_t upto_seq)
{
	uint8_t v[8];

	if (b == NULL || upto_seq == 0)
		return VTPM_E_INVAL;
	be64_enc(v, upto_seq);
	return store_batch_add(b, STORE_OP_PRUNE_AUDIT, v, sizeof(v)) != NULL ? 0 : VTPM_E_NOMEM;
}

int
store_audit_bounds(struct store *s, uint64_t *first, uint64_t *last, uint64_t *count)
{
	if (s == NULL || first == NULL || last == NULL || count == NULL)
		return VTPM_E_INVAL;
	*first = *last = *count = 0;
	if (s->ops->audit_bounds == NULL)
		return VTPM_E_UNSUPPORTED;
	return s->ops->audit_bounds(s, first, last, count);
}

int
store_audit_list(struct store *s, uint64_t from_seq,
    int (*cb)(uint64_t, const uint8_t *, size_t, void *), void *arg)
{
	if (s == NULL || cb == NULL)
		return VTPM_E_INVAL;
	return s->ops->audit_list(s, from_seq, cb, arg);
}

static int
store_xfer_kind_valid(uint8_t kind)
{
	return kind == STORE_XFER_EXPORTED || kind == STORE_XFER_GONE ||
	    kind == STORE_XFER_IMPORTED;
}

int
store_batch_put_xfer(struct store_batch *b, uint8_t kind,
    const uint8_t id[STORE_XFER_ID_LEN], const uint8_t *val, size_t len)
{
	struct store_op *op;

	if (b == NULL || id == NULL || val == NULL || len == 0 ||
	    len > STORE_XFER_VALUE_MAX || !store_xfer_kind_valid(kind))
		return VTPM_E_INVAL;
	if ((op = store_batch_add(b, STORE_OP_PUT_XFER, val, len)) == NULL)
		return VTPM_E_NOMEM;
	op->type = kind;
	memcpy(op->uuid, id, STORE_XFER_ID_LEN);
	return 0;
}

int
store_batch_del_xfer(struct store_batch *b, uint8_t kind,
    const uint8_t id[STORE_XFER_ID_LEN])
{
	struct store_op *op;

	if (b == NULL || id == NULL || !store_xfer_kind_valid(kind))
		return VTPM_E_INVAL;
	if ((op = store_batch_add(b, STORE_OP_DEL_XFER, NULL, 0)) == NULL)
		return VTPM_E_NOMEM;
	op->type = kind;
	memcpy(op->uuid, id, STORE_XFER_ID_LEN);
	return 0;
}

int
store_xfer_get(struct store *s, uint8_t kind, const uint8_t id[STORE_XFER_ID_LEN],
    uint8_t *buf, size_t cap, size_t *len)
{
	if (len != NULL)
		*len = 0;
	if (s == NULL || id == NULL || len == NULL || !store_xfer_kind_valid(kind) ||
	    (buf == NULL && cap > 0))
		return VTPM_E_INVAL;
	return s->ops->xfer_get(s, kind, id, buf, cap, len);
}

/* ---- the audit record format ------------------------------------------ */

static const char *const store_audit_names[STORE_AUDIT_EVENT_MAX + 1] = {
	[STORE_AUDIT_ENROL]	 = "enrol",
	[STORE_AUDIT_ATTACH]	 = "attach",
	[STORE_AUDIT_DETACH]	 = "detach",
	[STORE_AUDIT_DELETE]	 = "delete",
	[STORE_AUDIT_BACKUP]	 = "backup",
	[STORE_AUDIT_RESTORE]	 = "restore",
	[STORE_AUDIT_EXPORT]	 = "export",
	[STORE_AUDIT_IMPORT]	 = "import",
	[STORE_AUDIT_ROTATE_KEY] = "rotate-key",
	[STORE_AUDIT_PRUNE]	 = "audit-prune",
};

const char *
store_audit_event_name(uint8_t event)
{
	if (event == 0 || event > STORE_AUDIT_EVENT_MAX)
		return "unknown";
	return store_audit_names[event];
}

int
store_audit_encode(const struct store_audit_record *r, uint8_t *out, size_t cap,
    size_t *outlen)
{
	char detail[STORE_AUDIT_DETAIL_MAX];
	size_t n, d, i;
	struct wbuf w;

	if (outlen != NULL)
		*outlen = 0;
	if (r == NULL || out == NULL || outlen == NULL)
		return VTPM_E_INVAL;
	if (r->event == 0 || r->event > STORE_AUDIT_EVENT_MAX ||
	    (r->flags & ~STORE_AUDIT_F_FORCED) != 0)
		return VTPM_E_INVAL;
	n = strnlen(r->name, sizeof(r->name));
	if (n > 0 && store_inst_name_check(r->name) != 0)
		return VTPM_E_INVAL;
	d = strnlen(r->detail, STORE_AUDIT_DETAIL_MAX);
	for (i = 0; i < d; i++)
		detail[i] = r->detail[i] >= 0x20 && r->detail[i] <= 0x7e ? r->detail[i] : '?';

	wbuf_init(&w, out, cap);
	wbuf_put_u8(&w, STORE_AUDIT_RECORD_VERSION);
	wbuf_put_u8(&w, r->event);
	wbuf_put_u64(&w, r->time_ms);
	wbuf_put_u32(&w, (uint32_t)r->result);
	wbuf_put_u32(&w, r->flags);
	wbuf_put_u32(&w, r->actor_uid);
	wbuf_put_u8(&w, (uint8_t)n);
	wbuf_put_bytes(&w, r->name, n);
	wbuf_put_bytes(&w, r->uuid, SEAL_UUID_LEN);
	wbuf_put_u8(&w, r->has_claims ? 1 : 0);
	if (r->has_claims) {
		wbuf_put_bytes(&w, r->measurement, STORE_MEAS_LEN);
		wbuf_put_bytes(&w, r->host_data, STORE_HOST_DATA_LEN);
		wbuf_put_bytes(&w, r->launch_id, STORE_LAUNCH_ID_LEN);
	}
	wbuf_put_u16(&w, (uint16_t)d);
	wbuf_put_bytes(&w, detail, d);
	if (wbuf_end(&w, outlen) != 0) {
		*outlen = 0;
		return VTPM_E_TOOBIG;
	}
	return 0;
}

int
store_audit_decode(const uint8_t *buf, size_t len, struct store_audit_record *out)
{
	struct cursor c;
	const uint8_t *p;
	uint8_t version, nlen, claims;
	uint16_t dlen;
	uint32_t result;
	size_t i;

	if (out == NULL)
		return VTPM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (buf == NULL)
		return VTPM_E_FORMAT;
	cur_init(&c, buf, len);
	if (cur_get_u8(&c, &version) != 0 || version != STORE_AUDIT_RECORD_VERSION ||
	    cur_get_u8(&c, &out->event) != 0 || out->event == 0 ||
	    out->event > STORE_AUDIT_EVENT_MAX ||
	    cur_get_u64(&c, &out->time_ms) != 0 ||
	    cur_get_u32(&c, &result) != 0 ||
	    cur_get_u32(&c, &out->flags) != 0 ||
	    (out->flags & ~STORE_AUDIT_F_FORCED) != 0 ||
	    cur_get_u32(&c, &out->actor_uid) != 0 ||
	    cur_get_u8(&c, &nlen) != 0 || nlen > STORE_NAME_MAX ||
	    cur_get_ref(&c, &p, nlen) != 0 ||
	    (nlen > 0 && store_name_check_bytes(p, nlen) != 0))
		goto bad;
	out->result = (int32_t)result;
	memcpy(out->name, p, nlen);
	out->name[nlen] = '\0';
	if (cur_get_bytes(&c, out->uuid, SEAL_UUID_LEN) != 0 ||
	    cur_get_u8(&c, &claims) != 0 || claims > 1)
		goto bad;
	out->has_claims = claims;
	if (claims && (cur_get_bytes(&c, out->measurement, STORE_MEAS_LEN) != 0 ||
	    cur_get_bytes(&c, out->host_data, STORE_HOST_DATA_LEN) != 0 ||
	    cur_get_bytes(&c, out->launch_id, STORE_LAUNCH_ID_LEN) != 0))
		goto bad;
	if (cur_get_u16(&c, &dlen) != 0 || dlen > STORE_AUDIT_DETAIL_MAX ||
	    cur_get_ref(&c, &p, dlen) != 0 || cur_end(&c) != 0)
		goto bad;
	for (i = 0; i < dlen; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			goto bad;
	memcpy(out->detail, p, dlen);
	out->detail[dlen] = '\0';
	return 0;

bad:
	memset(out, 0, sizeof(*out));
	return VTPM_E_FORMAT;
}
