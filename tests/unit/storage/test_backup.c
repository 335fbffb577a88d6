/*
 * test_backup.c: unit tests of the backup container (backup_format.h) and
 * of the store's snapshots, audit table and transfer table. One binary;
 * prints a line per failed check and ends with "backup: N passed, M failed".
 * Works in a mkdtemp() directory under /tmp and removes it.
 */
#include <sys/stat.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "backup_format.h"
#include "log.h"
#include "seal.h"
#include "store.h"
#include "../check.h"

static char tmpdir[64];


static const uint8_t test_root[SEAL_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
static const uint8_t test_dek[SEAL_KEY_LEN] = { 0x17, 0x18, 0x19 };
static const uint8_t test_mac[BKF_MAC_KEY_LEN] = { 0xaa, 0xbb };
static struct seal_kek *kek;

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* ---- an in-memory file ------------------------------------------------ */

struct membuf {
	uint8_t	*p;
	size_t	 n, cap;
};

static int
mem_out(void *arg, const uint8_t *p, size_t n)
{
	struct membuf *m = arg;

	if (m->n + n > m->cap) {
		size_t cap = (m->n + n) * 2;
		uint8_t *q = realloc(m->p, cap);

		if (q == NULL)
			return VTPM_E_NOMEM;
		m->p = q;
		m->cap = cap;
	}
	memcpy(m->p + m->n, p, n);
	m->n += n;
	return 0;
}

/* One test instance: a record and sealed blobs of the given plaintext sizes (0 = none). */
struct tinst {
	struct store_instance	rec;
	uint8_t			recb[STORE_INST_RECORD_MAX];
	size_t			rlen;
	uint8_t			perm[4096 + SEAL_BLOB_OVERHEAD];
	size_t			plen;
	uint8_t			vol[4096 + SEAL_BLOB_OVERHEAD];
	size_t			vlen;
	uint8_t			endo[512 + SEAL_BLOB_OVERHEAD];	/* endorsement record */
	size_t			elen;
};

static void
tinst_make(struct tinst *t, const char *name, uint8_t seed, size_t perm_pt, size_t vol_pt)
{
	uint8_t pt[4096];

	memset(t, 0, sizeof(*t));
	snprintf(t->rec.name, sizeof(t->rec.name), "%s", name);
	memset(t->rec.uuid, seed, sizeof(t->rec.uuid));
	memset(t->rec.measurement, seed + 1, sizeof(t->rec.measurement));
	memset(t->rec.host_data, seed + 2, sizeof(t->rec.host_data));
	t->rec.created = 1700000000 + seed;
	t->rec.pcr_banks = 2;
	memset(pt, seed, sizeof(pt));
	if (seal_dek_wrap(kek, t->rec.uuid, test_dek, t->rec.wrapped_dek) != 0)
		abort();
	if (perm_pt > 0) {
		t->rec.perm_gen = 5 + seed;
		if (seal_blob(test_dek, kek->kid, t->rec.uuid, SEAL_BLOB_PERMANENT,
		    t->rec.perm_gen, pt, perm_pt, t->perm, sizeof(t->perm), &t->plen) != 0)
			abort();
	}
	if (vol_pt > 0) {
		t->rec.vol_gen = 6 + seed;
		memset(t->rec.vol_launch_id, 0x4c, sizeof(t->rec.vol_launch_id));
		if (seal_blob(test_dek, kek->kid, t->rec.uuid, SEAL_BLOB_VOLATILE,
		    t->rec.vol_gen, pt, vol_pt, t->vol, sizeof(t->vol), &t->vlen) != 0)
			abort();
	}
	if (store_inst_encode(&t->rec, t->recb, sizeof(t->recb), &t->rlen) != 0)
		abort();
}

/* Writes a file of n instances (names must be sorted) into *m. */
static int
build_file(struct tinst *ts, uint32_t n, uint16_t kind, struct membuf *m)
{
	struct bkf_writer w;
	struct bkf_head h;
	struct bkf_entry *es;
	uint64_t off;
	uint32_t i;
	int rc = 0;

	memset(m, 0, sizeof(*m));
	if ((es = calloc(n ? n : 1, sizeof(*es))) == NULL)
		return VTPM_E_NOMEM;
	memset(&h, 0, sizeof(h));
	h.version = BKF_VERSION;
	h.kind = kind;
	h.created = 1800000000;
	snprintf(h.vtpmd_version, sizeof(h.vtpmd_version), "0.1.0-test");
	memset(h.id, 0x1d, sizeof(h.id));
	memcpy(h.kid, kek->kid, SEAL_KID_LEN);
	h.key_version = 1;
	h.count = n;
	off = bkf_data_offset(n);
	for (i = 0; i < n; i++) {
		struct bkf_entry *e = &es[i];

		memcpy(e->name, ts[i].rec.name, sizeof(e->name));
		memcpy(e->uuid, ts[i].rec.uuid, SEAL_UUID_LEN);
		e->perm_gen = ts[i].rec.perm_gen;
		e->vol_gen = ts[i].rec.vol_gen;
		e->flags = ts[i].rec.flags;
		memcpy(e->kid, kek->kid, SEAL_KID_LEN);
		e->offset = off;
		if ((rc = bkf_section_measure_endo(ts[i].recb, ts[i].rlen,
		    ts[i].plen ? ts[i].perm : NULL, ts[i].plen,
		    ts[i].vlen ? ts[i].vol : NULL, ts[i].vlen,
		    ts[i].elen ? ts[i].endo : NULL, ts[i].elen, &e->length, e->sum)) != 0)
			goto out;
		off += e->length;
		h.data_len += e->length;
	}
	if ((rc = bkf_writer_init(&w, test_mac, mem_out, m)) != 0)
		goto out;
	if ((rc = bkf_write_head(&w, &h)) != 0)
		goto out_w;
	for (i = 0; i < n; i++)
		if ((rc = bkf_write_entry(&w, i, &es[i])) != 0)
			goto out_w;
	for (i = 0; i < n; i++)
		if ((rc = bkf_write_section_endo(&w, ts[i].recb, ts[i].rlen,
		    ts[i].plen ? ts[i].perm : NULL, ts[i].plen,
		    ts[i].vlen ? ts[i].vol : NULL, ts[i].vlen,
		    ts[i].elen ? ts[i].endo : NULL, ts[i].elen)) != 0)
			goto out_w;
	rc = bkf_write_trailer(&w);
out_w:
	bkf_writer_wipe(&w);
out:
	free(es);
	return rc;
}

/* ---- verification callbacks ------------------------------------------- */

struct vres {
	int	problems;
	int	named[8];	/* problems naming instance i */
	int	nameless;	/* problems naming no instance */
	char	last[400];
};

static struct tinst *cur_ts;

static void
vres_problem(void *arg, const struct bkf_problem *p)
{
	struct vres *r = arg;

	r->problems++;
	snprintf(r->last, sizeof(r->last), "part %d #%lld %s: %s", (int)p->part,
	    (long long)p->index, p->name, p->why);
	if (p->index >= 0 && p->index < 8 && cur_ts != NULL &&
	    strcmp(p->name, cur_ts[p->index].rec.name) == 0)
		r->named[p->index]++;
	else if (p->index < 0 && p->name[0] == '\0')
		r->nameless++;
}

static int
verify_buf(const uint8_t *p, size_t n, struct vres *r)
{
	struct bkf_verify_cb cb = { vres_problem, NULL, r };
	struct bkf_head h;

	memset(r, 0, sizeof(*r));
	return bkf_verify(p, n, &h, &cb);
}

/* ---- tests: the container --------------------------------------------- */

/* A section may end with the instance's endorsement record (type 3, generation 1). */
static void
test_endorsement(void)
{
	struct tinst ts[2];
	struct membuf m;
	struct bkf_head h;
	struct bkf_entry e;
	struct bkf_section sec;
	struct vres r;
	uint8_t pt[300];
	char why[200];

	memset(pt, 0x5e, sizeof(pt));
	tinst_make(&ts[0], "alpha", 0x10, 1000, 0);
	tinst_make(&ts[1], "beta", 0x20, 500, 0);
	CHECK_RC(seal_blob(test_dek, kek->kid, ts[0].rec.uuid, SEAL_BLOB_ENDORSEMENT,
	    SEAL_ENDORSEMENT_GEN, pt, sizeof(pt), ts[0].endo, sizeof(ts[0].endo), &ts[0].elen), 0);
	CHECK_RC(build_file(ts, 2, BKF_KIND_BACKUP, &m), 0);
	CHECK(m.n == bkf_data_offset(2) + BKF_SECTION_FIXED * 2 + ts[0].rlen + ts[0].plen +
	    4 + ts[0].elen + ts[1].rlen + ts[1].plen + BKF_TRAILER_LEN);
	cur_ts = ts;
	CHECK_RC(verify_buf(m.p, m.n, &r), 0);
	CHECK_RC(bkf_head_parse(m.p, m.n, &h, why, sizeof(why)), 0);
	CHECK_RC(bkf_entry_parse(m.p, m.n, &h, 0, &e, why, sizeof(why)), 0);
	CHECK_RC(bkf_section_parse(m.p, m.n, &h, &e, &sec, why, sizeof(why)), 0);
	CHECK(sec.endo_len == ts[0].elen && memcmp(sec.endo, ts[0].endo, sec.endo_len) == 0);
	CHECK_RC(bkf_entry_parse(m.p, m.n, &h, 1, &e, why, sizeof(why)), 0);
	CHECK_RC(bkf_section_parse(m.p, m.n, &h, &e, &sec, why, sizeof(why)), 0);
	CHECK(sec.endo == NULL && sec.endo_len == 0);
	free(m.p);

	/* in the endorsement slot: a blob of another type, or another generation */
	CHECK_RC(seal_blob(test_dek, kek->kid, ts[0].rec.uuid, SEAL_BLOB_PERMANENT,
	    SEAL_ENDORSEMENT_GEN, pt, sizeof(pt), ts[0].endo, sizeof(ts[0].endo), &ts[0].elen), 0);
	CHECK_RC(build_file(ts, 2, BKF_KIND_BACKUP, &m), 0);
	CHECK(verify_buf(m.p, m.n, &r) != 0 && r.named[0] == 1);
	CHECK(strstr(r.last, "endorsement") != NULL);
	free(m.p);
	CHECK_RC(seal_blob(test_dek, kek->kid, ts[0].rec.uuid, SEAL_BLOB_ENDORSEMENT, 2, pt,
	    sizeof(pt), ts[0].endo, sizeof(ts[0].endo), &ts[0].elen), 0);
	CHECK_RC(build_file(ts, 2, BKF_KIND_BACKUP, &m), 0);
	CHECK(verify_buf(m.p, m.n, &r) != 0 && r.named[0] == 1);
	free(m.p);
	cur_ts = NULL;
}

static void
test_roundtrip(void)
{
	struct tinst ts[3];
	struct membuf m;
	struct bkf_head h;
	struct bkf_entry e;
	struct bkf_section sec;
	struct vres r;
	char why[200];

	tinst_make(&ts[0], "alpha", 0x10, 1000, 300);
	tinst_make(&ts[1], "beta", 0x20, 0, 0);		/* enrolled, never attached */
	tinst_make(&ts[2], "gamma", 0x30, 2000, 0);
	CHECK_RC(build_file(ts, 3, BKF_KIND_BACKUP, &m), 0);
	CHECK(m.n == bkf_data_offset(3) + BKF_SECTION_FIXED * 3 + ts[0].rlen + ts[0].plen +
	    ts[0].vlen + ts[1].rlen + ts[2].rlen + ts[2].plen + BKF_TRAILER_LEN);
	cur_ts = ts;
	CHECK_RC(verify_buf(m.p, m.n, &r), 0);
	CHECK(r.problems == 0);

	CHECK_RC(bkf_head_parse(m.p, m.n, &h, why, sizeof(why)), 0);
	CHECK(h.count == 3 && h.kind == BKF_KIND_BACKUP && h.created == 1800000000);
	CHECK(strcmp(h.vtpmd_version, "0.1.0-test") == 0);
	CHECK(bkf_file_length(&h) == m.n);
	CHECK_RC(bkf_entry_parse(m.p, m.n, &h, 0, &e, why, sizeof(why)), 0);
	CHECK(strcmp(e.name, "alpha") == 0 && e.perm_gen == 0x15 && e.vol_gen == 0x16);
	CHECK_RC(bkf_section_parse(m.p, m.n, &h, &e, &sec, why, sizeof(why)), 0);
	CHECK(sec.perm_len == ts[0].plen && memcmp(sec.perm, ts[0].perm, sec.perm_len) == 0);
	CHECK(sec.vol_len == ts[0].vlen && memcmp(sec.vol, ts[0].vol, sec.vol_len) == 0);
	CHECK(sec.rec_len == ts[0].rlen && memcmp(sec.rec_bytes, ts[0].recb, ts[0].rlen) == 0);
	CHECK_RC(bkf_entry_parse(m.p, m.n, &h, 1, &e, why, sizeof(why)), 0);
	CHECK_RC(bkf_section_parse(m.p, m.n, &h, &e, &sec, why, sizeof(why)), 0);
	CHECK(sec.perm == NULL && sec.vol == NULL && sec.perm_len == 0);
	CHECK_RC(bkf_entry_parse(m.p, m.n, &h, 3, &e, why, sizeof(why)), VTPM_E_INVAL);

	/* the MAC: right key, wrong key */
	CHECK_RC(bkf_mac_verify(m.p, m.n, test_mac), 0);
	{
		uint8_t other[BKF_MAC_KEY_LEN] = { 0xab };

		CHECK_RC(bkf_mac_verify(m.p, m.n, other), VTPM_E_AUTH);
	}
	/* the trailer alone */
	CHECK_RC(bkf_trailer_check(m.p, m.n, why, sizeof(why)), 0);

	/* an empty backup (no instances) is valid */
	free(m.p);
	CHECK_RC(build_file(ts, 0, BKF_KIND_BACKUP, &m), 0);
	CHECK(m.n == BKF_HEAD_LEN + BKF_TRAILER_LEN);
	CHECK_RC(verify_buf(m.p, m.n, &r), 0);
	free(m.p);
	cur_ts = NULL;
}

/*
 * Every single flipped bit-pattern at every position of a small file is
 * found, and a flip inside an instance's entry or section names that
 * instance; a flip anywhere else names a part and no instance.
 */
static void
test_flip_sweep(void)
{
	struct tinst ts[3];
	struct membuf m;
	struct vres r;
	uint64_t data;
	size_t i, missed = 0, misnamed = 0;
	uint8_t masks[] = { 0x01, 0x80, 0xff };
	size_t k;

	tinst_make(&ts[0], "guest-a", 0x11, 700, 200);
	tinst_make(&ts[1], "guest-b", 0x22, 600, 0);
	tinst_make(&ts[2], "guest-c", 0x33, 0, 0);
	CHECK_RC(build_file(ts, 3, BKF_KIND_BACKUP, &m), 0);
	cur_ts = ts;
	data = bkf_data_offset(3);
	for (k = 0; k < sizeof(masks); k++) {
		for (i = 0; i < m.n; i++) {
			int who = -1;

			m.p[i] ^= masks[k];
			if (verify_buf(m.p, m.n, &r) == 0) {
				if (missed++ < 5)
					printf("  flip 0x%02x at %zu not detected\n", masks[k], i);
			} else {
				/* which instance owns byte i? */
				if (i >= BKF_HEAD_LEN && i < data)
					who = (int)((i - BKF_HEAD_LEN) / BKF_ENTRY_LEN);
				else if (i >= data && i < m.n - BKF_TRAILER_LEN) {
					uint64_t o = data;
					int j;

					for (j = 0; j < 3; j++) {
						uint64_t l = BKF_SECTION_FIXED + ts[j].rlen +
						    ts[j].plen + ts[j].vlen;

						if (i < o + l) {
							who = j;
							break;
						}
						o += l;
					}
				}
				if ((who >= 0 && r.named[who] == 0) ||
				    (who < 0 && r.nameless == 0)) {
					if (misnamed++ < 5)
						printf("  flip 0x%02x at %zu (instance %d): %s\n",
						    masks[k], i, who, r.last);
				}
			}
			m.p[i] ^= masks[k];
		}
	}
	CHECK(missed == 0);
	CHECK(misnamed == 0);
	CHECK_RC(verify_buf(m.p, m.n, &r), 0);	/* restored intact */

	/* truncation and extension */
	CHECK(verify_buf(m.p, m.n - 1, &r) != 0 && r.problems > 0);
	CHECK(verify_buf(m.p, BKF_HEAD_LEN + 10, &r) != 0);
	CHECK(verify_buf(m.p, 3, &r) != 0);
	CHECK(verify_buf(m.p, 0, &r) != 0);
	{
		uint8_t *big = malloc(m.n + 1);

		memcpy(big, m.p, m.n);
		big[m.n] = 0;
		CHECK(verify_buf(big, m.n + 1, &r) != 0);
		free(big);
	}
	/* a flipped byte also breaks the MAC */
	m.p[m.n / 2] ^= 1;
	CHECK_RC(bkf_mac_verify(m.p, m.n, test_mac), VTPM_E_AUTH);
	m.p[m.n / 2] ^= 1;
	free(m.p);
	cur_ts = NULL;
}

static void
test_format_rules(void)
{
	struct tinst ts[2];
	struct membuf m;
	struct vres r;
	struct bkf_head h;
	char why[200];

	/* names out of order are refused (the writer does not sort) */
	tinst_make(&ts[0], "zeta", 1, 100, 0);
	tinst_make(&ts[1], "alpha", 2, 100, 0);
	CHECK_RC(build_file(ts, 2, BKF_KIND_BACKUP, &m), 0);
	CHECK_RC(verify_buf(m.p, m.n, &r), VTPM_E_FORMAT);
	free(m.p);

	/* an export holds exactly one unfenced instance */
	tinst_make(&ts[0], "one", 1, 100, 0);
	tinst_make(&ts[1], "two", 2, 100, 0);
	CHECK_RC(build_file(ts, 2, BKF_KIND_EXPORT, &m), 0);
	CHECK_RC(bkf_head_parse(m.p, m.n, &h, why, sizeof(why)), VTPM_E_FORMAT);
	free(m.p);
	CHECK_RC(build_file(ts, 1, BKF_KIND_EXPORT, &m), 0);
	CHECK_RC(verify_buf(m.p, m.n, &r), 0);
	free(m.p);
	ts[0].rec.flags = STORE_INST_FENCED;
	if (store_inst_encode(&ts[0].rec, ts[0].recb, sizeof(ts[0].recb), &ts[0].rlen) != 0)
		abort();
	CHECK_RC(build_file(ts, 1, BKF_KIND_EXPORT, &m), 0);
	CHECK_RC(verify_buf(m.p, m.n, &r), VTPM_E_FORMAT);
	free(m.p);

	/* a record whose generation has no blob */
	tinst_make(&ts[0], "one", 1, 100, 0);
	ts[0].plen = 0;
	CHECK_RC(build_file(ts, 1, BKF_KIND_BACKUP, &m), 0);
	CHECK_RC(verify_buf(m.p, m.n, &r), VTPM_E_FORMAT);
	CHECK(strstr(r.last, "permanent state missing") != NULL);
	free(m.p);

	/* another format version with an intact header checksum: unsupported */
	tinst_make(&ts[0], "one", 1, 100, 0);
	CHECK_RC(build_file(ts, 1, BKF_KIND_BACKUP, &m), 0);
	m.p[5] = 2;	/* version 2 */
	crypto_generichash(m.p + 88, 32, m.p, 88, NULL, 0);
	CHECK_RC(bkf_head_parse(m.p, m.n, &h, why, sizeof(why)), VTPM_E_UNSUPPORTED);
	CHECK_RC(verify_buf(m.p, m.n, &r), VTPM_E_UNSUPPORTED);
	free(m.p);

	/* writer misuse */
	{
		struct bkf_writer w;
		struct bkf_entry e;

		memset(&m, 0, sizeof(m));
		memset(&e, 0, sizeof(e));
		snprintf(e.name, sizeof(e.name), "x");
		CHECK_RC(bkf_writer_init(&w, test_mac, mem_out, &m), 0);
		CHECK_RC(bkf_write_entry(&w, 0, &e), VTPM_E_INVAL);	/* before the head */
		CHECK_RC(bkf_write_trailer(&w), VTPM_E_INVAL);		/* sticky */
		bkf_writer_wipe(&w);
		free(m.p);
	}
}

static void
test_keys(void)
{
	struct seal_kek *w1 = NULL, *w2 = NULL;
	uint8_t m1[BKF_MAC_KEY_LEN], m2[BKF_MAC_KEY_LEN], b[BKF_MAC_KEY_LEN];
	uint8_t wrapped[SEAL_WRAPPED_DEK_LEN], dek[SEAL_KEY_LEN], uuid[SEAL_UUID_LEN] = { 9 };

	CHECK_RC(bkf_migration_keys(kek, &w1, m1), 0);
	CHECK_RC(bkf_migration_keys(kek, &w2, m2), 0);
	CHECK(w1 != NULL && w2 != NULL);
	if (w1 == NULL || w2 == NULL)
		return;
	CHECK(memcmp(w1->key, w2->key, SEAL_KEY_LEN) == 0);	/* deterministic */
	CHECK(memcmp(m1, m2, sizeof(m1)) == 0);
	CHECK(memcmp(w1->key, kek->key, SEAL_KEY_LEN) != 0);	/* never the secret itself */
	CHECK(memcmp(w1->key, m1, SEAL_KEY_LEN) != 0);
	CHECK(memcmp(w1->kid, kek->kid, SEAL_KID_LEN) != 0);
	CHECK(w1->version == kek->version);
	CHECK_RC(bkf_backup_mac_key(kek, b), 0);
	CHECK(memcmp(b, m1, sizeof(b)) != 0);
	CHECK_RC(seal_dek_wrap(w1, uuid, test_dek, wrapped), 0);
	CHECK_RC(seal_dek_unwrap(w2, uuid, wrapped, dek), 0);
	CHECK(memcmp(dek, test_dek, SEAL_KEY_LEN) == 0);
	CHECK_RC(seal_dek_unwrap(kek, uuid, wrapped, dek), VTPM_E_WRONG_KEY);
	seal_kek_free(w1);
	seal_kek_free(w2);
}

/* ---- tests: the store's snapshots, audit and transfer tables ----------- */

static void
put_tinst(struct store *s, struct tinst *t)
{
	struct store_batch *b = store_batch_new();

	CHECK_RC(store_batch_put_inst(b, &t->rec), 0);
	if (t->plen)
		CHECK_RC(store_batch_put_blob(b, t->rec.uuid, SEAL_BLOB_PERMANENT, t->perm,
		    t->plen), 0);
	if (t->vlen)
		CHECK_RC(store_batch_put_blob(b, t->rec.uuid, SEAL_BLOB_VOLATILE, t->vol,
		    t->vlen), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	store_batch_free(b);
}

static void
test_snapshot(void)
{
	struct store *s = NULL;
	struct store_snapshot *snap = NULL;
	struct store_inst_view v;
	struct store_batch *b;
	struct tinst ts[3], newer;
	uint8_t kcv[SEAL_KCV_LEN], kcv2[SEAL_KCV_LEN];
	size_t count;
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/snap", tmpdir);
	CHECK_RC(store_open_lmdb_flags(dir, 0, STORE_F_NOSYNC, &s), 0);
	if (s == NULL)
		return;
	b = store_batch_new();
	CHECK_RC(seal_kek_check_make(kek, kcv), 0);
	CHECK_RC(store_batch_put_kcv(b, kcv), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	tinst_make(&ts[0], "a1", 0x41, 500, 100);
	tinst_make(&ts[1], "b2", 0x42, 0, 0);
	tinst_make(&ts[2], "c3", 0x43, 800, 0);
	put_tinst(s, &ts[2]);
	put_tinst(s, &ts[0]);
	put_tinst(s, &ts[1]);

	CHECK_RC(store_snapshot_begin(s, &snap), 0);
	if (snap == NULL)
		return;
	/* change the store under the snapshot: a newer a1, c3 deleted */
	newer = ts[0];
	newer.rec.perm_gen = 99;
	if (seal_blob(test_dek, kek->kid, newer.rec.uuid, SEAL_BLOB_PERMANENT, 99,
	    (const uint8_t *)"x", 1, newer.perm, sizeof(newer.perm), &newer.plen) != 0)
		abort();
	put_tinst(s, &newer);
	CHECK_RC(store_batch_del_inst(b, "c3"), 0);
	CHECK_RC(store_batch_commit(s, b), 0);

	CHECK_RC(store_snapshot_info(snap, &count, kcv2), 0);
	CHECK(count == 3 && memcmp(kcv, kcv2, sizeof(kcv)) == 0);
	CHECK_RC(store_snapshot_next(snap, NULL, &v), 0);
	CHECK(strcmp(v.rec.name, "a1") == 0 && v.rec.perm_gen == ts[0].rec.perm_gen);
	CHECK(v.perm_len == ts[0].plen && memcmp(v.perm, ts[0].perm, v.perm_len) == 0);
	CHECK(v.vol_len == ts[0].vlen && memcmp(v.vol, ts[0].vol, v.vol_len) == 0);
	CHECK(v.rec_len == ts[0].rlen && memcmp(v.rec_bytes, ts[0].recb, v.rec_len) == 0);
	CHECK_RC(store_snapshot_next(snap, "a1", &v), 0);
	CHECK(strcmp(v.rec.name, "b2") == 0 && v.perm == NULL && v.vol == NULL);
	CHECK_RC(store_snapshot_next(snap, "b", &v), 0);	/* between names */
	CHECK(strcmp(v.rec.name, "b2") == 0);
	CHECK_RC(store_snapshot_next(snap, "b2", &v), 0);
	CHECK(strcmp(v.rec.name, "c3") == 0 && v.perm_len == ts[2].plen);
	CHECK_RC(store_snapshot_next(snap, "c3", &v), VTPM_E_NOTFOUND);
	store_snapshot_end(snap);

	/* a new snapshot sees the new state */
	CHECK_RC(store_snapshot_begin(s, &snap), 0);
	CHECK_RC(store_snapshot_info(snap, &count, NULL), 0);
	CHECK(count == 2);
	CHECK_RC(store_snapshot_next(snap, "", &v), 0);
	CHECK(v.rec.perm_gen == 99 && v.perm_len == newer.plen);
	store_snapshot_end(snap);
	store_snapshot_end(NULL);
	store_batch_free(b);
	store_close(s);
}

static int
audit_cb(uint64_t seq, const uint8_t *rec, size_t len, void *arg)
{
	uint64_t *seqs = arg;
	struct store_audit_record r;

	if (store_audit_decode(rec, len, &r) != 0)
		return -1;
	seqs[0]++;
	seqs[seqs[0]] = seq * 1000 + r.event;
	return seqs[0] == 10 ? 7 : 0;
}

static void
test_audit(void)
{
	struct store_audit_record r, d;
	struct store *s = NULL;
	struct store_batch *b;
	uint8_t enc[STORE_AUDIT_RECORD_MAX];
	uint64_t seqs[32];
	size_t n;
	char dir[128];
	int i;

	memset(&r, 0, sizeof(r));
	r.event = STORE_AUDIT_RESTORE;
	r.time_ms = 1800000000123ull;
	r.result = VTPM_E_ROLLBACK;
	r.flags = STORE_AUDIT_F_FORCED;
	r.actor_uid = 0;
	snprintf(r.name, sizeof(r.name), "guest-1");
	memset(r.uuid, 7, sizeof(r.uuid));
	r.has_claims = 1;
	memset(r.measurement, 0x11, sizeof(r.measurement));
	memset(r.launch_id, 0x33, sizeof(r.launch_id));
	snprintf(r.detail, sizeof(r.detail), "forced over newer state\n(tab\t)");
	CHECK_RC(store_audit_encode(&r, enc, sizeof(enc), &n), 0);
	CHECK_RC(store_audit_decode(enc, n, &d), 0);
	CHECK(d.event == r.event && d.time_ms == r.time_ms && d.result == VTPM_E_ROLLBACK);
	CHECK(d.flags == STORE_AUDIT_F_FORCED && d.has_claims == 1);
	CHECK(strcmp(d.name, "guest-1") == 0);
	CHECK(memcmp(d.measurement, r.measurement, sizeof(d.measurement)) == 0);
	CHECK(strcmp(d.detail, "forced over newer state?(tab?)") == 0);	/* sanitised */
	CHECK_RC(store_audit_decode(enc, n - 1, &d), VTPM_E_FORMAT);
	CHECK(d.event == 0);
	enc[1] = 0;
	CHECK_RC(store_audit_decode(enc, n, &d), VTPM_E_FORMAT);
	r.event = 0;
	CHECK_RC(store_audit_encode(&r, enc, sizeof(enc), &n), VTPM_E_INVAL);
	r.event = STORE_AUDIT_ATTACH;
	r.has_claims = 0;
	r.name[0] = '\0';
	memset(r.detail, 'x', STORE_AUDIT_DETAIL_MAX);
	r.detail[STORE_AUDIT_DETAIL_MAX] = '\0';
	CHECK_RC(store_audit_encode(&r, enc, sizeof(enc), &n), 0);
	CHECK(n <= STORE_AUDIT_RECORD_MAX);
	CHECK_RC(store_audit_decode(enc, n, &d), 0);
	CHECK(strlen(d.detail) == STORE_AUDIT_DETAIL_MAX && d.name[0] == '\0');
	CHECK(strcmp(store_audit_event_name(STORE_AUDIT_ROTATE_KEY), "rotate-key") == 0);
	CHECK(strcmp(store_audit_event_name(0), "unknown") == 0);

	snprintf(dir, sizeof(dir), "%s/audit", tmpdir);
	CHECK_RC(store_open_lmdb_flags(dir, 0, STORE_F_NOSYNC, &s), 0);
	if (s == NULL)
		return;
	b = store_batch_new();
	memset(seqs, 0, sizeof(seqs));
	CHECK_RC(store_audit_list(s, 0, audit_cb, seqs), 0);
	CHECK(seqs[0] == 0);
	for (i = 0; i < 3; i++) {	/* three in one batch */
		r.event = (uint8_t)(STORE_AUDIT_ENROL + i);
		CHECK_RC(store_audit_encode(&r, enc, sizeof(enc), &n), 0);
		CHECK_RC(store_batch_put_audit(b, enc, n), 0);
	}
	CHECK_RC(store_batch_commit(s, b), 0);
	r.event = STORE_AUDIT_BACKUP;
	CHECK_RC(store_audit_encode(&r, enc, sizeof(enc), &n), 0);
	CHECK_RC(store_batch_put_audit(b, enc, n), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK_RC(store_batch_put_audit(b, enc, 0), VTPM_E_INVAL);
	memset(seqs, 0, sizeof(seqs));
	CHECK_RC(store_audit_list(s, 0, audit_cb, seqs), 0);
	CHECK(seqs[0] == 4 && seqs[1] == 1001 && seqs[2] == 2002 && seqs[3] == 3003 &&
	    seqs[4] == 4005);
	memset(seqs, 0, sizeof(seqs));
	CHECK_RC(store_audit_list(s, 3, audit_cb, seqs), 0);
	CHECK(seqs[0] == 2 && seqs[1] == 3003);
	/* a nonzero callback value stops the walk and is returned */
	for (i = 0; i < 10; i++)
		CHECK_RC(store_batch_put_audit(b, enc, n), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	memset(seqs, 0, sizeof(seqs));
	CHECK_RC(store_audit_list(s, 1, audit_cb, seqs), 7);
	CHECK(seqs[0] == 10);

	/* transfers */
	{
		uint8_t id[STORE_XFER_ID_LEN], val[STORE_XFER_VALUE_MAX + 1], got[8];

		memset(id, 0x5a, sizeof(id));
		memset(val, 'v', sizeof(val));
		CHECK_RC(store_xfer_get(s, STORE_XFER_IMPORTED, id, got, sizeof(got), &n),
		    VTPM_E_NOTFOUND);
		CHECK_RC(store_batch_put_xfer(b, STORE_XFER_IMPORTED, id, val, 5), 0);
		CHECK_RC(store_batch_put_xfer(b, 'X', id, val, 5), VTPM_E_INVAL);
		CHECK_RC(store_batch_put_xfer(b, STORE_XFER_GONE, id, val, sizeof(val)),
		    VTPM_E_INVAL);
		CHECK_RC(store_batch_commit(s, b), 0);
		CHECK_RC(store_xfer_get(s, STORE_XFER_IMPORTED, id, got, sizeof(got), &n), 0);
		CHECK(n == 5 && memcmp(got, "vvvvv", 5) == 0);
		CHECK_RC(store_xfer_get(s, STORE_XFER_IMPORTED, id, got, 2, &n), VTPM_E_TOOBIG);
		CHECK(n == 5);
		CHECK_RC(store_xfer_get(s, STORE_XFER_EXPORTED, id, got, sizeof(got), &n),
		    VTPM_E_NOTFOUND);
		CHECK_RC(store_batch_del_xfer(b, STORE_XFER_IMPORTED, id), 0);
		CHECK_RC(store_batch_del_xfer(b, STORE_XFER_IMPORTED, id), 0);	/* twice */
		CHECK_RC(store_batch_commit(s, b), 0);
		CHECK_RC(store_xfer_get(s, STORE_XFER_IMPORTED, id, got, sizeof(got), &n),
		    VTPM_E_NOTFOUND);
	}
	store_batch_free(b);
	store_close(s);
}

int
main(void)
{
	log_init("test_backup", getenv("VTPM_TEST_VERBOSE") ? LOG_LVL_DEBUG : LOG_LVL_ERR);
	if (seal_init() != 0 || seal_kek_new(test_root, 1, &kek) != 0) {
		printf("backup: 0 passed, 1 failed\n");
		return 1;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vtpm-test-backup.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_roundtrip();
	test_endorsement();
	test_flip_sweep();
	test_format_rules();
	test_keys();
	test_snapshot();
	test_audit();
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	seal_kek_free(kek);
	printf("backup: %d passed, %d failed\n", n_pass, n_fail);
	return n_fail != 0;
}
