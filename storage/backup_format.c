/*
 * backup_format.c: the "VBAK" backup/export container (backup_format.h,
 * docs/BACKUP-FORMAT.md): a streaming writer and a keyless parser and
 * verifier. Trusts nothing in a file: every field goes through the cursor,
 * every length is checked against the file before use, and a damaged part
 * is named (head, an instance's entry or section, layout, trailer).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "backup_format.h"
#include "cursor.h"

#define BKF_TRAILER_MAGIC	"VEND"
#define BKF_SECTION_MAGIC	"VINS"
#define BKF_HEAD_SUM_OFF	(BKF_HEAD_LEN - BKF_SUM_LEN)		/* 88 */
#define BKF_ENTRY_SUM_OFF	(BKF_ENTRY_LEN - BKF_SUM_LEN)		/* 152 */
#define BKF_NAME_FIELD		64
#define BKF_WDEK_KID_OFF	4	/* kid inside a wrapped DEK ("VTK1" | kid) */

_Static_assert(BKF_HEAD_SUM_OFF == 8 + 8 + BKF_VERSION_STR_LEN + BKF_ID_LEN +
    SEAL_KID_LEN + 4 + 4 + 8, "manifest header layout");
_Static_assert(BKF_ENTRY_SUM_OFF == BKF_NAME_FIELD + SEAL_UUID_LEN + 8 + 8 + 4 +
    SEAL_KID_LEN + 8 + 4 + BKF_SUM_LEN, "manifest entry layout");
_Static_assert(BKF_TRAILER_LEN == 4 + 2 * BKF_SUM_LEN, "trailer layout");
_Static_assert(BKF_SECTION_MAX < UINT32_MAX, "section length is a u32");
_Static_assert(crypto_generichash_BYTES == BKF_SUM_LEN, "BLAKE2b-256");

static void
bkf_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
bkf_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static void
bkf_hash(uint8_t out[BKF_SUM_LEN], const uint8_t *p, size_t n)
{
	crypto_generichash(out, BKF_SUM_LEN, p, n, NULL, 0);
}

/* ---- sizes ------------------------------------------------------------ */

uint64_t
bkf_data_offset(uint32_t count)
{
	return BKF_HEAD_LEN + (uint64_t)count * BKF_ENTRY_LEN;
}

uint64_t
bkf_file_length(const struct bkf_head *head)
{
	uint64_t base;

	if (head == NULL || head->count > BKF_MAX_INSTANCES)
		return 0;
	base = bkf_data_offset(head->count) + BKF_TRAILER_LEN;
	if (head->data_len > UINT64_MAX / 2 - base)
		return 0;
	return base + head->data_len;
}

int
bkf_wrapped_kid(const uint8_t wrapped[SEAL_WRAPPED_DEK_LEN], uint8_t kid[SEAL_KID_LEN])
{
	if (wrapped == NULL || kid == NULL || memcmp(wrapped, "VTK1", 4) != 0)
		return VTPM_E_FORMAT;
	memcpy(kid, wrapped + BKF_WDEK_KID_OFF, SEAL_KID_LEN);
	return 0;
}

/* ---- encoding helpers (shared by writer and parser) -------------------- */

static void
bkf_head_encode(const struct bkf_head *h, uint8_t out[BKF_HEAD_LEN])
{
	uint8_t ver[BKF_VERSION_STR_LEN];
	struct wbuf w;
	size_t n;

	memset(ver, 0, sizeof(ver));
	n = strnlen(h->vtpmd_version, BKF_VERSION_STR_LEN);
	memcpy(ver, h->vtpmd_version, n);
	wbuf_init(&w, out, BKF_HEAD_LEN);
	wbuf_put_bytes(&w, BKF_MAGIC, 4);
	wbuf_put_u16(&w, h->version);
	wbuf_put_u16(&w, h->kind);
	wbuf_put_u64(&w, h->created);
	wbuf_put_bytes(&w, ver, sizeof(ver));
	wbuf_put_bytes(&w, h->id, BKF_ID_LEN);
	wbuf_put_bytes(&w, h->kid, SEAL_KID_LEN);
	wbuf_put_u32(&w, h->key_version);
	wbuf_put_u32(&w, h->count);
	wbuf_put_u64(&w, h->data_len);
	bkf_hash(out + BKF_HEAD_SUM_OFF, out, BKF_HEAD_SUM_OFF);
}

/* The entry checksum covers the entry's first 152 bytes and its index. */
static void
bkf_entry_sum(const uint8_t *entry, uint32_t index, uint8_t out[BKF_SUM_LEN])
{
	crypto_generichash_state st;
	uint8_t ib[4];

	be32_enc(ib, index);
	crypto_generichash_init(&st, NULL, 0, BKF_SUM_LEN);
	crypto_generichash_update(&st, entry, BKF_ENTRY_SUM_OFF);
	crypto_generichash_update(&st, ib, sizeof(ib));
	crypto_generichash_final(&st, out, BKF_SUM_LEN);
}

static void
bkf_entry_encode(const struct bkf_entry *e, uint32_t index, uint8_t out[BKF_ENTRY_LEN])
{
	uint8_t name[BKF_NAME_FIELD];
	struct wbuf w;
	size_t n = strlen(e->name);

	memset(name, 0, sizeof(name));
	name[0] = (uint8_t)n;
	memcpy(name + 1, e->name, n);
	wbuf_init(&w, out, BKF_ENTRY_LEN);
	wbuf_put_bytes(&w, name, sizeof(name));
	wbuf_put_bytes(&w, e->uuid, SEAL_UUID_LEN);
	wbuf_put_u64(&w, e->perm_gen);
	wbuf_put_u64(&w, e->vol_gen);
	wbuf_put_u32(&w, e->flags);
	wbuf_put_bytes(&w, e->kid, SEAL_KID_LEN);
	wbuf_put_u64(&w, e->offset);
	wbuf_put_u32(&w, e->length);
	wbuf_put_bytes(&w, e->sum, BKF_SUM_LEN);
	bkf_entry_sum(out, index, out + BKF_ENTRY_SUM_OFF);
}

/*
 * Section pieces: "VINS" u16 R | rec | u32 P | perm | u32 V | vol, then,
 * only when the instance has one, u32 E | its endorsement blob.
 */
static int
bkf_section_pieces(size_t rec_len, size_t perm_len, size_t vol_len, size_t endo_len,
    uint8_t head[6], uint8_t plen[4], uint8_t vlen[4], uint8_t elen[4], uint32_t *total)
{
	if (rec_len == 0 || rec_len > STORE_INST_RECORD_MAX || perm_len > STORE_BLOB_MAX ||
	    vol_len > STORE_BLOB_MAX || endo_len > STORE_BLOB_MAX)
		return VTPM_E_TOOBIG;
	memcpy(head, BKF_SECTION_MAGIC, 4);
	be16_enc(head + 4, (uint16_t)rec_len);
	be32_enc(plen, (uint32_t)perm_len);
	be32_enc(vlen, (uint32_t)vol_len);
	be32_enc(elen, (uint32_t)endo_len);
	*total = (uint32_t)(BKF_SECTION_FIXED + rec_len + perm_len + vol_len +
	    (endo_len > 0 ? 4 + endo_len : 0));
	return 0;
}

int
bkf_section_measure(const uint8_t *rec, size_t rec_len, const uint8_t *perm,
    size_t perm_len, const uint8_t *vol, size_t vol_len, uint32_t *length,
    uint8_t sum[BKF_SUM_LEN])
{
	return bkf_section_measure_endo(rec, rec_len, perm, perm_len, vol, vol_len, NULL, 0,
	    length, sum);
}

int
bkf_section_measure_endo(const uint8_t *rec, size_t rec_len, const uint8_t *perm,
    size_t perm_len, const uint8_t *vol, size_t vol_len, const uint8_t *endo,
    size_t endo_len, uint32_t *length, uint8_t sum[BKF_SUM_LEN])
{
	crypto_generichash_state st;
	uint8_t head[6], pl[4], vl[4], el[4];
	int rc;

	if (rec == NULL || length == NULL || sum == NULL ||
	    (perm == NULL && perm_len > 0) || (vol == NULL && vol_len > 0) ||
	    (endo == NULL && endo_len > 0))
		return VTPM_E_INVAL;
	if ((rc = bkf_section_pieces(rec_len, perm_len, vol_len, endo_len, head, pl, vl, el,
	    length)) != 0)
		return rc;
	crypto_generichash_init(&st, NULL, 0, BKF_SUM_LEN);
	crypto_generichash_update(&st, head, sizeof(head));
	crypto_generichash_update(&st, rec, rec_len);
	crypto_generichash_update(&st, pl, sizeof(pl));
	if (perm_len > 0)
		crypto_generichash_update(&st, perm, perm_len);
	crypto_generichash_update(&st, vl, sizeof(vl));
	if (vol_len > 0)
		crypto_generichash_update(&st, vol, vol_len);
	if (endo_len > 0) {
		crypto_generichash_update(&st, el, sizeof(el));
		crypto_generichash_update(&st, endo, endo_len);
	}
	crypto_generichash_final(&st, sum, BKF_SUM_LEN);
	return 0;
}

/* ---- writing ---------------------------------------------------------- */

int
bkf_writer_init(struct bkf_writer *w, const uint8_t mac_key[BKF_MAC_KEY_LEN],
    int (*out)(void *arg, const uint8_t *p, size_t n), void *arg)
{
	if (w == NULL)
		return VTPM_E_INVAL;
	memset(w, 0, sizeof(*w));
	if (mac_key == NULL || out == NULL) {
		w->bw_err = VTPM_E_INVAL;
		return VTPM_E_INVAL;
	}
	if (crypto_generichash_init(&w->bw_sum, NULL, 0, BKF_SUM_LEN) != 0 ||
	    crypto_generichash_init(&w->bw_mac, mac_key, BKF_MAC_KEY_LEN, BKF_SUM_LEN) != 0) {
		w->bw_err = VTPM_E_CRYPTO;
		return VTPM_E_CRYPTO;
	}
	w->bw_out = out;
	w->bw_arg = arg;
	return 0;
}

void
bkf_writer_wipe(struct bkf_writer *w)
{
	if (w != NULL)
		sodium_memzero(w, sizeof(*w));
}

/* Emits bytes: to the output, the checksum and (unless mac is 0) the MAC. */
static int
bkf_emit(struct bkf_writer *w, const uint8_t *p, size_t n, int mac)
{
	int rc;

	if (w->bw_err != 0)
		return w->bw_err;
	if (n == 0)
		return 0;
	crypto_generichash_update(&w->bw_sum, p, n);
	if (mac)
		crypto_generichash_update(&w->bw_mac, p, n);
	if ((rc = w->bw_out(w->bw_arg, p, n)) != 0) {
		w->bw_err = rc;
		return rc;
	}
	w->bw_off += n;
	return 0;
}

int
bkf_write_head(struct bkf_writer *w, const struct bkf_head *head)
{
	uint8_t buf[BKF_HEAD_LEN];

	if (w == NULL || head == NULL)
		return VTPM_E_INVAL;
	if (w->bw_err != 0)
		return w->bw_err;
	if (w->bw_off != 0 || head->version != BKF_VERSION ||
	    (head->kind != BKF_KIND_BACKUP && head->kind != BKF_KIND_EXPORT) ||
	    bkf_file_length(head) == 0)
		return w->bw_err = VTPM_E_INVAL;
	bkf_head_encode(head, buf);
	return bkf_emit(w, buf, sizeof(buf), 1);
}

int
bkf_write_entry(struct bkf_writer *w, uint32_t index, const struct bkf_entry *e)
{
	uint8_t buf[BKF_ENTRY_LEN];

	if (w == NULL || e == NULL)
		return VTPM_E_INVAL;
	if (w->bw_err != 0)
		return w->bw_err;
	if (w->bw_off != BKF_HEAD_LEN + (uint64_t)index * BKF_ENTRY_LEN ||
	    store_inst_name_check(e->name) != 0)
		return w->bw_err = VTPM_E_INVAL;
	bkf_entry_encode(e, index, buf);
	return bkf_emit(w, buf, sizeof(buf), 1);
}

int
bkf_write_section(struct bkf_writer *w, const uint8_t *rec, size_t rec_len,
    const uint8_t *perm, size_t perm_len, const uint8_t *vol, size_t vol_len)
{
	return bkf_write_section_endo(w, rec, rec_len, perm, perm_len, vol, vol_len, NULL, 0);
}

int
bkf_write_section_endo(struct bkf_writer *w, const uint8_t *rec, size_t rec_len,
    const uint8_t *perm, size_t perm_len, const uint8_t *vol, size_t vol_len,
    const uint8_t *endo, size_t endo_len)
{
	uint8_t head[6], pl[4], vl[4], el[4];
	uint32_t total;
	int rc;

	if (w == NULL || rec == NULL || (perm == NULL && perm_len > 0) ||
	    (vol == NULL && vol_len > 0) || (endo == NULL && endo_len > 0))
		return VTPM_E_INVAL;
	if (w->bw_err != 0)
		return w->bw_err;
	if ((rc = bkf_section_pieces(rec_len, perm_len, vol_len, endo_len, head, pl, vl, el,
	    &total)) != 0)
		return w->bw_err = rc;
	if ((rc = bkf_emit(w, head, sizeof(head), 1)) != 0 ||
	    (rc = bkf_emit(w, rec, rec_len, 1)) != 0 ||
	    (rc = bkf_emit(w, pl, sizeof(pl), 1)) != 0 ||
	    (rc = bkf_emit(w, perm, perm_len, 1)) != 0 ||
	    (rc = bkf_emit(w, vl, sizeof(vl), 1)) != 0 ||
	    (rc = bkf_emit(w, vol, vol_len, 1)) != 0)
		return rc;
	if (endo_len > 0 && ((rc = bkf_emit(w, el, sizeof(el), 1)) != 0 ||
	    (rc = bkf_emit(w, endo, endo_len, 1)) != 0))
		return rc;
	return 0;
}

int
bkf_write_trailer(struct bkf_writer *w)
{
	uint8_t mac[BKF_SUM_LEN], sum[BKF_SUM_LEN];
	int rc;

	if (w == NULL)
		return VTPM_E_INVAL;
	if (w->bw_err != 0)
		return w->bw_err;
	crypto_generichash_final(&w->bw_mac, mac, sizeof(mac));
	if ((rc = bkf_emit(w, (const uint8_t *)BKF_TRAILER_MAGIC, 4, 0)) != 0 ||
	    (rc = bkf_emit(w, mac, sizeof(mac), 0)) != 0)
		return rc;
	crypto_generichash_final(&w->bw_sum, sum, sizeof(sum));
	/* the checksum covers everything before it, itself excluded */
	if ((rc = w->bw_out(w->bw_arg, sum, sizeof(sum))) != 0)
		return w->bw_err = rc;
	w->bw_off += sizeof(sum);
	w->bw_err = VTPM_E_INVAL;	/* nothing may follow */
	return 0;
}

/* ---- parsing ---------------------------------------------------------- */

static int
bkf_printable(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return 0;
	return 1;
}

int
bkf_head_parse(const uint8_t *buf, size_t len, struct bkf_head *head, char *why,
    size_t whylen)
{
	uint8_t sum[BKF_SUM_LEN];
	const uint8_t *magic, *ver, *stored;
	struct cursor c;
	size_t vlen;
	int sum_ok;

	if (head == NULL)
		return VTPM_E_INVAL;
	memset(head, 0, sizeof(*head));
	if (buf == NULL || len < 4 || memcmp(buf, BKF_MAGIC, 4) != 0) {
		bkf_why(why, whylen, "not a vtpmd backup file (no \"VBAK\" magic)");
		return VTPM_E_FORMAT;
	}
	if (len < BKF_HEAD_LEN) {
		bkf_why(why, whylen, "file ends inside its header (%zu bytes)", len);
		return VTPM_E_FORMAT;
	}
	bkf_hash(sum, buf, BKF_HEAD_SUM_OFF);
	sum_ok = sodium_memcmp(sum, buf + BKF_HEAD_SUM_OFF, BKF_SUM_LEN) == 0;

	cur_init(&c, buf, BKF_HEAD_LEN);
	if (cur_get_ref(&c, &magic, 4) != 0 ||
	    cur_get_u16(&c, &head->version) != 0 ||
	    cur_get_u16(&c, &head->kind) != 0 ||
	    cur_get_u64(&c, &head->created) != 0 ||
	    cur_get_ref(&c, &ver, BKF_VERSION_STR_LEN) != 0 ||
	    cur_get_bytes(&c, head->id, BKF_ID_LEN) != 0 ||
	    cur_get_bytes(&c, head->kid, SEAL_KID_LEN) != 0 ||
	    cur_get_u32(&c, &head->key_version) != 0 ||
	    cur_get_u32(&c, &head->count) != 0 ||
	    cur_get_u64(&c, &head->data_len) != 0 ||
	    cur_get_ref(&c, &stored, BKF_SUM_LEN) != 0 ||
	    cur_end(&c) != 0)
		goto damaged;	/* cannot happen: fixed sizes */
	if (!sum_ok) {
		if (head->version != BKF_VERSION)
			bkf_why(why, whylen, "file header damaged (its checksum fails; "
			    "the version field reads %u)", head->version);
		else
			bkf_why(why, whylen, "file header damaged (its checksum fails)");
		goto fail;
	}
	if (head->version != BKF_VERSION) {
		bkf_why(why, whylen, "backup format version %u is not supported "
		    "(this vtpmd reads version %d)", head->version, BKF_VERSION);
		memset(head, 0, sizeof(*head));
		return VTPM_E_UNSUPPORTED;
	}
	vlen = strnlen((const char *)ver, BKF_VERSION_STR_LEN);
	if ((head->kind != BKF_KIND_BACKUP && head->kind != BKF_KIND_EXPORT) ||
	    !bkf_printable(ver, vlen) ||
	    !sodium_is_zero(ver + vlen, BKF_VERSION_STR_LEN - vlen) ||
	    head->count > BKF_MAX_INSTANCES ||
	    (head->kind == BKF_KIND_EXPORT && head->count != 1) ||
	    bkf_file_length(head) == 0)
		goto damaged;
	memcpy(head->vtpmd_version, ver, vlen);
	head->vtpmd_version[vlen] = '\0';
	return 0;

damaged:
	bkf_why(why, whylen, "file header holds impossible values (kind %u, %u instances)",
	    head->kind, head->count);
fail:
	memset(head, 0, sizeof(*head));
	return VTPM_E_FORMAT;
}

int
bkf_entry_parse(const uint8_t *buf, size_t len, const struct bkf_head *head,
    uint32_t index, struct bkf_entry *e, char *why, size_t whylen)
{
	uint8_t sum[BKF_SUM_LEN];
	const uint8_t *p, *name, *stored;
	struct cursor c;
	uint64_t off, data, end;

	if (e == NULL)
		return VTPM_E_INVAL;
	memset(e, 0, sizeof(*e));
	if (buf == NULL || head == NULL || index >= head->count)
		return VTPM_E_INVAL;
	off = BKF_HEAD_LEN + (uint64_t)index * BKF_ENTRY_LEN;
	if (off + BKF_ENTRY_LEN > len) {
		bkf_why(why, whylen, "file ends inside manifest entry %u", index);
		return VTPM_E_FORMAT;
	}
	p = buf + off;
	bkf_entry_sum(p, index, sum);
	if (sodium_memcmp(sum, p + BKF_ENTRY_SUM_OFF, BKF_SUM_LEN) != 0) {
		bkf_why(why, whylen, "manifest entry damaged (its checksum fails)");
		return VTPM_E_FORMAT;
	}
	cur_init(&c, p, BKF_ENTRY_LEN);
	if (cur_get_ref(&c, &name, BKF_NAME_FIELD) != 0 ||
	    cur_get_bytes(&c, e->uuid, SEAL_UUID_LEN) != 0 ||
	    cur_get_u64(&c, &e->perm_gen) != 0 ||
	    cur_get_u64(&c, &e->vol_gen) != 0 ||
	    cur_get_u32(&c, &e->flags) != 0 ||
	    cur_get_bytes(&c, e->kid, SEAL_KID_LEN) != 0 ||
	    cur_get_u64(&c, &e->offset) != 0 ||
	    cur_get_u32(&c, &e->length) != 0 ||
	    cur_get_bytes(&c, e->sum, BKF_SUM_LEN) != 0 ||
	    cur_get_ref(&c, &stored, BKF_SUM_LEN) != 0 ||
	    cur_end(&c) != 0)
		goto bad;
	if (name[0] < 1 || name[0] > STORE_NAME_MAX ||
	    !sodium_is_zero(name + 1 + name[0], BKF_NAME_FIELD - 1 - name[0]))
		goto bad;
	memcpy(e->name, name + 1, name[0]);
	e->name[name[0]] = '\0';
	if (store_inst_name_check(e->name) != 0 || (e->flags & ~STORE_INST_FLAGS_KNOWN) != 0)
		goto bad;
	data = bkf_data_offset(head->count);
	end = data + head->data_len;
	if (e->offset < data || e->length < BKF_SECTION_FIXED || e->length > BKF_SECTION_MAX ||
	    e->offset > end || e->length > end - e->offset) {
		bkf_why(why, whylen, "manifest entry places its data outside the data "
		    "region (offset %llu, length %u)", (unsigned long long)e->offset,
		    e->length);
		memset(e, 0, sizeof(*e));
		return VTPM_E_FORMAT;
	}
	return 0;

bad:
	bkf_why(why, whylen, "manifest entry holds impossible values");
	memset(e, 0, sizeof(*e));
	return VTPM_E_FORMAT;
}

/* Checks one blob of a section against the generation its record names. */
static int
bkf_blob_check(const uint8_t *blob, size_t n, uint8_t type, uint64_t gen, char *why,
    size_t whylen)
{
	struct seal_blob_info info;
	const char *what = type == SEAL_BLOB_PERMANENT ? "permanent" :
	    type == SEAL_BLOB_VOLATILE ? "volatile" : "endorsement";

	if (gen == 0 && n == 0)
		return 0;
	if (gen == 0 || n == 0) {
		bkf_why(why, whylen, "%s state %s, but its record says generation %llu",
		    what, n == 0 ? "missing" : "present", (unsigned long long)gen);
		return VTPM_E_FORMAT;
	}
	if (seal_blob_peek(blob, n, &info) != 0 || info.type != type ||
	    info.generation != gen) {
		bkf_why(why, whylen, "%s state is not a sealed blob of generation %llu",
		    what, (unsigned long long)gen);
		return VTPM_E_FORMAT;
	}
	return 0;
}

int
bkf_section_parse(const uint8_t *buf, size_t len, const struct bkf_head *head,
    const struct bkf_entry *e, struct bkf_section *sec, char *why, size_t whylen)
{
	uint8_t sum[BKF_SUM_LEN];
	const uint8_t *magic;
	struct cursor c;
	uint16_t rlen;
	uint32_t plen, vlen, elen = 0;
	int rc;

	if (sec == NULL)
		return VTPM_E_INVAL;
	memset(sec, 0, sizeof(*sec));
	if (buf == NULL || head == NULL || e == NULL)
		return VTPM_E_INVAL;
	if (e->offset > len || e->length > len - e->offset) {
		bkf_why(why, whylen, "file ends inside the instance's data");
		return VTPM_E_FORMAT;
	}
	bkf_hash(sum, buf + e->offset, e->length);
	if (sodium_memcmp(sum, e->sum, BKF_SUM_LEN) != 0) {
		bkf_why(why, whylen, "instance data damaged (its checksum fails)");
		return VTPM_E_FORMAT;
	}
	cur_init(&c, buf + e->offset, e->length);
	if (cur_get_ref(&c, &magic, 4) != 0 || memcmp(magic, BKF_SECTION_MAGIC, 4) != 0 ||
	    cur_get_u16(&c, &rlen) != 0 ||
	    cur_get_ref(&c, &sec->rec_bytes, rlen) != 0 ||
	    cur_get_u32(&c, &plen) != 0 || plen > STORE_BLOB_MAX ||
	    cur_get_ref(&c, &sec->perm, plen) != 0 ||
	    cur_get_u32(&c, &vlen) != 0 || vlen > STORE_BLOB_MAX ||
	    cur_get_ref(&c, &sec->vol, vlen) != 0 ||
	    (cur_left(&c) > 0 && (cur_get_u32(&c, &elen) != 0 || elen == 0 ||
	    elen > STORE_BLOB_MAX || cur_get_ref(&c, &sec->endo, elen) != 0)) ||
	    cur_end(&c) != 0) {
		bkf_why(why, whylen, "instance data is malformed");
		goto fail;
	}
	sec->rec_len = rlen;
	sec->perm_len = plen;
	sec->vol_len = vlen;
	sec->endo_len = elen;
	if (plen == 0)
		sec->perm = NULL;
	if (vlen == 0)
		sec->vol = NULL;
	if (store_inst_decode(sec->rec_bytes, sec->rec_len, &sec->rec) != 0) {
		bkf_why(why, whylen, "instance record does not decode");
		goto fail;
	}
	if (strcmp(sec->rec.name, e->name) != 0 ||
	    memcmp(sec->rec.uuid, e->uuid, SEAL_UUID_LEN) != 0 ||
	    sec->rec.perm_gen != e->perm_gen || sec->rec.vol_gen != e->vol_gen ||
	    sec->rec.flags != e->flags) {
		bkf_why(why, whylen, "instance record disagrees with its manifest entry");
		goto fail;
	}
	if (memcmp(sec->rec.wrapped_dek, "VTK1", 4) != 0 ||
	    memcmp(sec->rec.wrapped_dek + BKF_WDEK_KID_OFF, e->kid, SEAL_KID_LEN) != 0 ||
	    memcmp(e->kid, head->kid, SEAL_KID_LEN) != 0) {
		bkf_why(why, whylen, "instance data key is not wrapped by the file's key");
		goto fail;
	}
	if (head->kind == BKF_KIND_EXPORT && (e->flags & STORE_INST_FENCED)) {
		bkf_why(why, whylen, "an export holds a fenced instance");
		goto fail;
	}
	if ((rc = bkf_blob_check(sec->perm, plen, SEAL_BLOB_PERMANENT, e->perm_gen, why,
	    whylen)) != 0 ||
	    (rc = bkf_blob_check(sec->vol, vlen, SEAL_BLOB_VOLATILE, e->vol_gen, why,
	    whylen)) != 0 ||
	    (elen > 0 && (rc = bkf_blob_check(sec->endo, elen, SEAL_BLOB_ENDORSEMENT,
	    SEAL_ENDORSEMENT_GEN, why, whylen)) != 0))
		goto fail;
	return 0;

fail:
	memset(sec, 0, sizeof(*sec));
	return VTPM_E_FORMAT;
}

int
bkf_trailer_check(const uint8_t *buf, size_t len, char *why, size_t whylen)
{
	uint8_t sum[BKF_SUM_LEN];
	const uint8_t *t;

	if (buf == NULL || len < BKF_HEAD_LEN + BKF_TRAILER_LEN) {
		bkf_why(why, whylen, "file too short for a trailer");
		return VTPM_E_FORMAT;
	}
	t = buf + len - BKF_TRAILER_LEN;
	if (memcmp(t, BKF_TRAILER_MAGIC, 4) != 0) {
		bkf_why(why, whylen, "trailer damaged or missing (no \"VEND\")");
		return VTPM_E_FORMAT;
	}
	bkf_hash(sum, buf, len - BKF_SUM_LEN);
	if (sodium_memcmp(sum, buf + len - BKF_SUM_LEN, BKF_SUM_LEN) != 0) {
		bkf_why(why, whylen, "whole-file checksum fails");
		return VTPM_E_FORMAT;
	}
	return 0;
}

int
bkf_mac_verify(const uint8_t *buf, size_t len, const uint8_t mac_key[BKF_MAC_KEY_LEN])
{
	uint8_t mac[BKF_SUM_LEN];
	size_t body;
	int rc;

	if (buf == NULL || mac_key == NULL)
		return VTPM_E_INVAL;
	if (len < BKF_HEAD_LEN + BKF_TRAILER_LEN)
		return VTPM_E_FORMAT;
	body = len - BKF_TRAILER_LEN;
	crypto_generichash(mac, sizeof(mac), buf, body, mac_key, BKF_MAC_KEY_LEN);
	rc = sodium_memcmp(mac, buf + body + 4, BKF_SUM_LEN) == 0 ? 0 : VTPM_E_AUTH;
	sodium_memzero(mac, sizeof(mac));
	return rc;
}

/* ---- offline verification --------------------------------------------- */

static void
bkf_report(const struct bkf_verify_cb *cb, enum bkf_part part, int64_t index,
    const char *name, uint64_t off, uint64_t n, const char *why, int *count)
{
	struct bkf_problem p;

	(*count)++;
	if (cb == NULL || cb->problem == NULL)
		return;
	memset(&p, 0, sizeof(p));
	p.part = part;
	p.index = index;
	if (name != NULL)
		snprintf(p.name, sizeof(p.name), "%s", name);
	p.offset = off;
	p.length = n;
	snprintf(p.why, sizeof(p.why), "%s", why);
	cb->problem(cb->arg, &p);
}

/*
 * Names the instance whose entry is damaged: the record in a section that
 * starts at off (if one parses there), else the entry's own name field if
 * it reads as a valid name.
 */
static void
bkf_guess_name(const uint8_t *buf, size_t len, uint64_t off, const uint8_t *entry,
    char name[STORE_NAME_MAX + 1])
{
	struct store_instance rec;
	uint16_t rlen;

	name[0] = '\0';
	if (off != 0 && off <= len && len - off >= 6 &&
	    memcmp(buf + off, BKF_SECTION_MAGIC, 4) == 0) {
		rlen = be16_dec(buf + off + 4);
		if (rlen <= len - off - 6 &&
		    store_inst_decode(buf + off + 6, rlen, &rec) == 0) {
			memcpy(name, rec.name, strlen(rec.name) + 1);
			return;
		}
	}
	if (entry[0] >= 1 && entry[0] <= STORE_NAME_MAX) {
		memcpy(name, entry + 1, entry[0]);
		name[entry[0]] = '\0';
		if (store_inst_name_check(name) != 0)
			name[0] = '\0';
	}
}

int
bkf_verify(const uint8_t *buf, size_t len, struct bkf_head *head_out,
    const struct bkf_verify_cb *cb)
{
	struct bkf_head head;
	struct bkf_entry e, prev;
	struct bkf_section sec;
	char why[200], name[STORE_NAME_MAX + 1];
	uint64_t want, expect_off, data, trailer;
	int rc, problems = 0, have_prev = 0, expect_known;
	uint32_t i;

	if (head_out != NULL)
		memset(head_out, 0, sizeof(*head_out));
	rc = bkf_head_parse(buf, len, &head, why, sizeof(why));
	if (rc == VTPM_E_UNSUPPORTED) {
		bkf_report(cb, BKF_PART_HEAD, -1, NULL, 0, BKF_HEAD_LEN, why, &problems);
		return rc;
	}
	if (rc != 0) {
		bkf_report(cb, BKF_PART_HEAD, -1, NULL, 0, len < BKF_HEAD_LEN ? len :
		    BKF_HEAD_LEN, why, &problems);
		/* without an intact head nothing else can be located */
		return VTPM_E_FORMAT;
	}
	if (head_out != NULL)
		*head_out = head;
	want = bkf_file_length(&head);
	data = bkf_data_offset(head.count);
	if (want != len) {
		snprintf(why, sizeof(why), "file is %zu bytes, its header says %llu "
		    "(truncated or extended)", len, (unsigned long long)want);
		bkf_report(cb, BKF_PART_LAYOUT, -1, NULL, 0, len, why, &problems);
	}
	trailer = data + head.data_len;

	expect_off = data;
	expect_known = 1;
	for (i = 0; i < head.count; i++) {
		uint64_t eoff = BKF_HEAD_LEN + (uint64_t)i * BKF_ENTRY_LEN;

		if (eoff + BKF_ENTRY_LEN > len) {
			bkf_report(cb, BKF_PART_LAYOUT, i, NULL, eoff, BKF_ENTRY_LEN,
			    "file ends inside the manifest", &problems);
			break;
		}
		if (bkf_entry_parse(buf, len, &head, i, &e, why, sizeof(why)) != 0) {
			bkf_guess_name(buf, len, expect_known ? expect_off : 0, buf + eoff,
			    name);
			bkf_report(cb, BKF_PART_ENTRY, i, name, eoff, BKF_ENTRY_LEN, why,
			    &problems);
			if (cb != NULL && cb->instance != NULL) {
				memset(&e, 0, sizeof(e));
				cb->instance(cb->arg, i, &e, 0);
			}
			expect_known = 0;
			have_prev = 0;
			continue;
		}
		if ((expect_known && e.offset != expect_off) ||
		    (have_prev && strcmp(prev.name, e.name) >= 0)) {
			bkf_report(cb, BKF_PART_LAYOUT, i, e.name, eoff, BKF_ENTRY_LEN,
			    expect_known && e.offset != expect_off ?
			    "instance data is not where the manifest puts it" :
			    "manifest entries are not in strictly increasing name order",
			    &problems);
		}
		rc = bkf_section_parse(buf, len, &head, &e, &sec, why, sizeof(why));
		if (rc != 0)
			bkf_report(cb, BKF_PART_SECTION, i, e.name, e.offset, e.length, why,
			    &problems);
		if (cb != NULL && cb->instance != NULL)
			cb->instance(cb->arg, i, &e, rc == 0);
		expect_off = e.offset + e.length;
		expect_known = 1;
		prev = e;
		have_prev = 1;
	}
	if (expect_known && head.count > 0 && expect_off != trailer)
		bkf_report(cb, BKF_PART_LAYOUT, -1, NULL, expect_off, 0,
		    "instance data does not end where the trailer begins", &problems);
	if (bkf_trailer_check(buf, len, why, sizeof(why)) != 0 && problems == 0)
		bkf_report(cb, BKF_PART_TRAILER, -1, NULL, len > BKF_TRAILER_LEN ?
		    len - BKF_TRAILER_LEN : 0, BKF_TRAILER_LEN,
		    strcmp(why, "whole-file checksum fails") == 0 ?
		    "trailer damaged (every part checks, the whole-file checksum does not)" :
		    why, &problems);
	return problems == 0 ? 0 : VTPM_E_FORMAT;
}
