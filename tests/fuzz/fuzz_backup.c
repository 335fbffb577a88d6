/*
 * fuzz_backup.c: libFuzzer harness for the parsers of backup and export
 * files (storage/backup_format.h: bkf_verify() and the head, entry, section
 * and trailer parsers, bkf_mac_verify()) and of audit records
 * (store_audit_decode()). Beyond "no crash" it checks their promises: a
 * file bkf_verify() accepts parses piece by piece and every piece lies
 * inside the input; every problem names a valid instance or none; a decoded
 * audit record re-encodes to the same bytes.
 *
 * Build: see tests/fuzz/module.mk (`make fuzz`; `make check` replays the seeds).
 * Seeds: built with -DFUZZ_MAKE_SEEDS (and without -fsanitize=fuzzer) this
 * file is a program that writes valid seeds (a backup of three instances, an
 * export, an empty backup, audit records), MACed with the harness's fixed key:
 *   cc -std=c11 -D_GNU_SOURCE -DFUZZ_MAKE_SEEDS -Itransport -Istorage \
 *     tests/fuzz/fuzz_backup.c storage/backup_format.c storage/seal.c \
 *     storage/store.c transport/cursor.c transport/log.c transport/vtpm_error.c \
 *     -lsodium -o make_seeds && ./make_seeds tests/fuzz/corpus/backup
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup_format.h"
#include "log.h"
#include "seal.h"
#include "store.h"

/* Fixed, public test keys: nothing here is secret. */
static const uint8_t fz_mac[BKF_MAC_KEY_LEN] = {
	0x6d, 0x61, 0x63, 0x6d, 0x61, 0x63, 0x6d, 0x61, 0x63, 0x6d, 0x61, 0x63,
	0x6d, 0x61, 0x63, 0x6d, 0x61, 0x63, 0x6d, 0x61, 0x63, 0x6d, 0x61, 0x63,
	0x6d, 0x61, 0x63, 0x6d, 0x61, 0x63, 0x6d, 0x61,
};

struct fz_ctx {
	const uint8_t	*data;
	size_t		 size;
	uint32_t	 count;
	int		 head_ok;
};

static void
fz_problem(void *arg, const struct bkf_problem *p)
{
	struct fz_ctx *c = arg;

	if (p->name[0] != '\0' && store_inst_name_check(p->name) != 0)
		abort();
	if (p->index < -1 || (p->index >= 0 && (!c->head_ok || (uint64_t)p->index >= c->count)))
		abort();
	if (p->part < BKF_PART_HEAD || p->part > BKF_PART_TRAILER)
		abort();
}

static void
fz_instance(void *arg, uint32_t index, const struct bkf_entry *e, int ok)
{
	struct fz_ctx *c = arg;

	if (index >= c->count)
		abort();
	if (ok && (store_inst_name_check(e->name) != 0 || e->offset > c->size ||
	    e->length > c->size - e->offset))
		abort();
}

static int
fz_inside(const struct fz_ctx *c, const uint8_t *p, size_t n)
{
	if (p == NULL)
		return n == 0;
	return p >= c->data && n <= c->size && p + n <= c->data + c->size;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_backup", LOG_LVL_ERR);
	if (seal_init() != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_ctx c = { data, size, 0, 0 };
	struct bkf_verify_cb cb = { fz_problem, fz_instance, &c };
	struct bkf_head head, h2;
	struct bkf_entry e;
	struct bkf_section sec;
	struct store_audit_record ar;
	uint8_t enc[STORE_AUDIT_RECORD_MAX];
	char why[200];
	size_t n;
	uint32_t i;
	int rc;

	/* the head alone first, so the callbacks know the instance count */
	if (bkf_head_parse(data, size, &head, why, sizeof(why)) == 0) {
		c.count = head.count;
		c.head_ok = 1;
		if (bkf_file_length(&head) == 0)
			abort();
	} else if (head.count != 0 || head.kind != 0) {
		abort();	/* zeroed on failure */
	}
	rc = bkf_verify(data, size, &h2, &cb);
	if (rc == 0) {
		/* an intact file parses piece by piece, inside the input */
		if (!c.head_ok || bkf_file_length(&head) != size ||
		    bkf_trailer_check(data, size, why, sizeof(why)) != 0)
			abort();
		for (i = 0; i < head.count; i++) {
			if (bkf_entry_parse(data, size, &head, i, &e, why, sizeof(why)) != 0 ||
			    bkf_section_parse(data, size, &head, &e, &sec, why, sizeof(why)) != 0)
				abort();
			if (!fz_inside(&c, sec.rec_bytes, sec.rec_len) ||
			    !fz_inside(&c, sec.perm, sec.perm_len) ||
			    !fz_inside(&c, sec.vol, sec.vol_len) ||
			    !fz_inside(&c, sec.endo, sec.endo_len) ||
			    strcmp(sec.rec.name, e.name) != 0)
				abort();
		}
		/* the fixed key may or may not match; either way the call is safe */
		rc = bkf_mac_verify(data, size, fz_mac);
		if (rc != 0 && rc != VTPM_E_AUTH)
			abort();
	} else if (rc != VTPM_E_FORMAT && rc != VTPM_E_UNSUPPORTED) {
		abort();
	} else if (c.head_ok) {
		/* entries of a damaged file: each parses or fails cleanly */
		for (i = 0; i < head.count && i < 64; i++) {
			if (bkf_entry_parse(data, size, &head, i, &e, why, sizeof(why)) != 0)
				continue;
			if (bkf_section_parse(data, size, &head, &e, &sec, why, sizeof(why)) == 0 &&
			    (!fz_inside(&c, sec.rec_bytes, sec.rec_len) ||
			    !fz_inside(&c, sec.perm, sec.perm_len) ||
			    !fz_inside(&c, sec.vol, sec.vol_len) ||
			    !fz_inside(&c, sec.endo, sec.endo_len)))
				abort();
		}
	}

	/* audit records: anything decoded re-encodes to the same bytes */
	if (store_audit_decode(data, size, &ar) == 0) {
		if (store_audit_encode(&ar, enc, sizeof(enc), &n) != 0 || n != size ||
		    memcmp(enc, data, size) != 0)
			abort();
	} else if (ar.event != 0 || ar.time_ms != 0) {
		abort();
	}
	return 0;
}

#ifdef FUZZ_MAKE_SEEDS
static const uint8_t fz_root[SEAL_KEY_LEN] = { 0x42, 0x42, 0x42, 0x42 };
static const uint8_t fz_dek[SEAL_KEY_LEN] = { 0x17, 0x17, 0x17, 0x17 };

struct membuf {
	uint8_t	p[1 << 16];
	size_t	n;
};

static int
mem_out(void *arg, const uint8_t *p, size_t n)
{
	struct membuf *m = arg;

	if (m->n + n > sizeof(m->p))
		return VTPM_E_TOOBIG;
	memcpy(m->p + m->n, p, n);
	m->n += n;
	return 0;
}

static int
fz_write(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}

/*
 * A file of n instances (names i0, i1, ...), every second one with blobs
 * (and, with endo, an endorsement record).
 */
static int
make_file(struct seal_kek *kek, uint16_t kind, uint32_t n, int endo, struct membuf *m)
{
	static uint8_t rec[8][STORE_INST_RECORD_MAX], perm[8][400], vol[8][300], eb[8][200];
	static size_t rlen[8], plen[8], vlen[8], elen[8];
	struct store_instance in;
	struct bkf_entry es[8];
	struct bkf_writer w;
	struct bkf_head h;
	uint8_t pt[200];
	uint64_t off;
	uint32_t i;

	memset(pt, 0x70, sizeof(pt));
	memset(&h, 0, sizeof(h));
	h.version = BKF_VERSION;
	h.kind = kind;
	h.created = 1800000000;
	snprintf(h.vtpmd_version, sizeof(h.vtpmd_version), "0.1.0");
	memset(h.id, 0x1d, sizeof(h.id));
	memcpy(h.kid, kek->kid, SEAL_KID_LEN);
	h.key_version = 1;
	h.count = n;
	off = bkf_data_offset(n);
	for (i = 0; i < n; i++) {
		memset(&in, 0, sizeof(in));
		snprintf(in.name, sizeof(in.name), "i%u", i);
		memset(in.uuid, (int)(i + 1), sizeof(in.uuid));
		memset(in.measurement, 0x11, sizeof(in.measurement));
		memset(in.host_data, (int)(0x20 + i), sizeof(in.host_data));
		in.pcr_banks = 2;
		plen[i] = vlen[i] = elen[i] = 0;
		if (seal_dek_wrap(kek, in.uuid, fz_dek, in.wrapped_dek) != 0)
			return -1;
		if (i % 2 == 0) {
			in.perm_gen = 3;
			in.vol_gen = 4;
			if (seal_blob(fz_dek, kek->kid, in.uuid, SEAL_BLOB_PERMANENT, 3, pt, 100,
			    perm[i], sizeof(perm[i]), &plen[i]) != 0 ||
			    seal_blob(fz_dek, kek->kid, in.uuid, SEAL_BLOB_VOLATILE, 4, pt, 50,
			    vol[i], sizeof(vol[i]), &vlen[i]) != 0)
				return -1;
			if (endo && seal_blob(fz_dek, kek->kid, in.uuid, SEAL_BLOB_ENDORSEMENT,
			    SEAL_ENDORSEMENT_GEN, pt, 80, eb[i], sizeof(eb[i]), &elen[i]) != 0)
				return -1;
		}
		if (store_inst_encode(&in, rec[i], sizeof(rec[i]), &rlen[i]) != 0)
			return -1;
		memset(&es[i], 0, sizeof(es[i]));
		memcpy(es[i].name, in.name, sizeof(in.name));
		memcpy(es[i].uuid, in.uuid, SEAL_UUID_LEN);
		es[i].perm_gen = in.perm_gen;
		es[i].vol_gen = in.vol_gen;
		memcpy(es[i].kid, kek->kid, SEAL_KID_LEN);
		es[i].offset = off;
		if (bkf_section_measure_endo(rec[i], rlen[i], plen[i] ? perm[i] : NULL, plen[i],
		    vlen[i] ? vol[i] : NULL, vlen[i], elen[i] ? eb[i] : NULL, elen[i],
		    &es[i].length, es[i].sum) != 0)
			return -1;
		off += es[i].length;
		h.data_len += es[i].length;
	}
	m->n = 0;
	if (bkf_writer_init(&w, fz_mac, mem_out, m) != 0 || bkf_write_head(&w, &h) != 0)
		return -1;
	for (i = 0; i < n; i++)
		if (bkf_write_entry(&w, i, &es[i]) != 0)
			return -1;
	for (i = 0; i < n; i++)
		if (bkf_write_section_endo(&w, rec[i], rlen[i], plen[i] ? perm[i] : NULL, plen[i],
		    vlen[i] ? vol[i] : NULL, vlen[i], elen[i] ? eb[i] : NULL, elen[i]) != 0)
			return -1;
	if (bkf_write_trailer(&w) != 0)
		return -1;
	bkf_writer_wipe(&w);
	return 0;
}

int
main(int argc, char **argv)
{
	static struct membuf m;
	struct store_audit_record r;
	struct seal_kek *kek;
	uint8_t enc[STORE_AUDIT_RECORD_MAX];
	size_t n;

	if (argc != 2 || seal_init() != 0 || seal_kek_new(fz_root, 1, &kek) != 0) {
		fprintf(stderr, "usage: make_seeds DIR\n");
		return 1;
	}
	if (make_file(kek, BKF_KIND_BACKUP, 3, 0, &m) != 0 ||
	    fz_write(argv[1], "backup-3", m.p, m.n) != 0 ||
	    make_file(kek, BKF_KIND_BACKUP, 3, 1, &m) != 0 ||
	    fz_write(argv[1], "backup-3-endorsement", m.p, m.n) != 0 ||
	    make_file(kek, BKF_KIND_EXPORT, 1, 0, &m) != 0 ||
	    fz_write(argv[1], "export-1", m.p, m.n) != 0 ||
	    make_file(kek, BKF_KIND_BACKUP, 0, 0, &m) != 0 ||
	    fz_write(argv[1], "backup-empty", m.p, m.n) != 0)
		return 1;
	memset(&r, 0, sizeof(r));
	r.event = STORE_AUDIT_ATTACH;
	r.time_ms = 1800000000123ull;
	r.actor_uid = STORE_AUDIT_NO_UID;
	snprintf(r.name, sizeof(r.name), "guest-1");
	r.has_claims = 1;
	memset(r.measurement, 0x11, sizeof(r.measurement));
	snprintf(r.detail, sizeof(r.detail), "session 1: resumed");
	if (store_audit_encode(&r, enc, sizeof(enc), &n) != 0 ||
	    fz_write(argv[1], "audit-attach", enc, n) != 0)
		return 1;
	memset(&r, 0, sizeof(r));
	r.event = STORE_AUDIT_RESTORE;
	r.result = VTPM_E_ROLLBACK;
	r.flags = STORE_AUDIT_F_FORCED;
	snprintf(r.detail, sizeof(r.detail), "forced");
	if (store_audit_encode(&r, enc, sizeof(enc), &n) != 0 ||
	    fz_write(argv[1], "audit-restore", enc, n) != 0)
		return 1;
	seal_kek_free(kek);
	return 0;
}
#endif
