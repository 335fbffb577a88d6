/*
 * backup_format.h: the backup and export file of vtpmd ("VBAK", version 1),
 * byte by byte in docs/BACKUP-FORMAT.md.
 *
 * One container serves both uses:
 *   backup  (kind 1) every instance of a store: records with their data keys
 *           wrapped by the store's root key, and their sealed blobs;
 *   export  (kind 2) one instance on its way to another vtpmd: its data key
 *           is rewrapped by a migration key both sides can get.
 * The file holds no secret in clear: records carry wrapped keys, blobs are
 * sealed (seal.h). It adds checksums so damage is found and located without
 * any key (BLAKE2b-256: the file header, each manifest entry, each instance
 * section, the whole file), and a MAC keyed by a key only vtpmd can derive,
 * so a file that was altered, or made by anything but a vtpmd holding the
 * right key, is refused before anything is restored or imported.
 *
 * Layout (integers big-endian; N instances; D = sum of the section lengths):
 *   [0, 120)                 file header and manifest header (struct bkf_head)
 *   [120, 120 + 184 N)       N manifest entries, in strictly increasing name order
 *   [120 + 184 N, ... + D)   N instance sections, contiguous, in entry order
 *   last 68 bytes            trailer: "VEND" | MAC | checksum
 *
 * This module is keyless except bkf_backup_mac_key() and bkf_migration_keys()
 * (backup_keys.c), which derive keys from a root or migration key. Parsers
 * take untrusted bytes, use the bounds-checked cursor, and never read outside
 * buf[0..len); they return pointers into buf, valid while buf is.
 * Functions that can fail return 0 or a negative VTPM_E_* code and, where a
 * `why` buffer is taken, put one human line there (no secrets).
 */
#ifndef VTPM_BACKUP_FORMAT_H
#define VTPM_BACKUP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "seal.h"
#include "store.h"
#include "vtpm_error.h"

#define BKF_MAGIC		"VBAK"
#define BKF_VERSION		1
#define BKF_KIND_BACKUP		1
#define BKF_KIND_EXPORT		2

#define BKF_HEAD_LEN		120	/* file header (8) + manifest header (112) */
#define BKF_ENTRY_LEN		184
#define BKF_TRAILER_LEN		68
#define BKF_SECTION_FIXED	14	/* "VINS" u16 u32 u32 */
#define BKF_SUM_LEN		32
#define BKF_ID_LEN		16
#define BKF_VERSION_STR_LEN	32
#define BKF_MAC_KEY_LEN		32
#define BKF_MAX_INSTANCES	(1u << 24)
#define BKF_SECTION_MAX		(BKF_SECTION_FIXED + STORE_INST_RECORD_MAX + 2 * STORE_BLOB_MAX)

/* The file header and manifest header. */
struct bkf_head {
	uint16_t	version;			/* BKF_VERSION */
	uint16_t	kind;				/* BKF_KIND_* */
	uint64_t	created;			/* unix seconds */
	char		vtpmd_version[BKF_VERSION_STR_LEN + 1];	/* printable ASCII */
	uint8_t		id[BKF_ID_LEN];			/* backup id / export id (random) */
	uint8_t		kid[SEAL_KID_LEN];		/* the key wrapping every data key */
	uint32_t	key_version;
	uint32_t	count;				/* instances, N */
	uint64_t	data_len;			/* D */
};

/* One manifest entry. */
struct bkf_entry {
	char		name[STORE_NAME_MAX + 1];
	uint8_t		uuid[SEAL_UUID_LEN];
	uint64_t	perm_gen;
	uint64_t	vol_gen;
	uint32_t	flags;				/* STORE_INST_* */
	uint8_t		kid[SEAL_KID_LEN];		/* of this instance's wrapped data key */
	uint64_t	offset;				/* of its section, from the file start */
	uint32_t	length;				/* of its section */
	uint8_t		sum[BKF_SUM_LEN];		/* BLAKE2b-256 of its section */
};

/* One instance section, parsed: pointers into the file. */
struct bkf_section {
	struct store_instance	 rec;		/* decoded, matches its entry */
	const uint8_t		*rec_bytes;	/* store_inst_encode() format */
	size_t			 rec_len;
	const uint8_t		*perm;		/* sealed permanent blob, NULL if none */
	size_t			 perm_len;
	const uint8_t		*vol;		/* sealed volatile blob, NULL if none */
	size_t			 vol_len;
	const uint8_t		*endo;		/* sealed endorsement blob, NULL if none */
	size_t			 endo_len;
};

/* ---- sizes ------------------------------------------------------------ */

/* Offset of the first section for count instances. */
uint64_t bkf_data_offset(uint32_t count);

/*
 * The exact file length for head (count and data_len), or 0 if it would
 * overflow or exceed BKF_MAX_INSTANCES.
 */
uint64_t bkf_file_length(const struct bkf_head *head);

/*
 * The kid of the key that wrapped a data key ("VTK1" | kid | ..., seal.h),
 * read without a key (not authenticated). Returns 0 or VTPM_E_FORMAT.
 */
int bkf_wrapped_kid(const uint8_t wrapped[SEAL_WRAPPED_DEK_LEN], uint8_t kid[SEAL_KID_LEN])
    VTPM_WUR;

/* ---- writing ---------------------------------------------------------- */

/*
 * A streaming writer. Bytes go to out(arg, p, n), which returns 0 or a
 * negative code; every byte also feeds the whole-file checksum and the MAC.
 * The writer holds keyed hash state: end every use with bkf_writer_wipe().
 * A file is written as: head, count entries, count sections (in entry
 * order, each at the offset its entry names), trailer. The writer checks
 * that offsets match and returns VTPM_E_INVAL on misuse; the first error is
 * sticky.
 */
struct bkf_writer {
	crypto_generichash_state  bw_sum;
	crypto_generichash_state  bw_mac;
	int			(*bw_out)(void *arg, const uint8_t *p, size_t n);
	void			 *bw_arg;
	uint64_t		  bw_off;
	int			  bw_err;
};

/* mac_key: BKF_MAC_KEY_LEN bytes (bkf_backup_mac_key(), bkf_migration_keys()). */
int bkf_writer_init(struct bkf_writer *w, const uint8_t mac_key[BKF_MAC_KEY_LEN],
    int (*out)(void *arg, const uint8_t *p, size_t n), void *arg) VTPM_WUR;
void bkf_writer_wipe(struct bkf_writer *w);

/* Writes the 120-byte head (count and data_len must be final). */
int bkf_write_head(struct bkf_writer *w, const struct bkf_head *head) VTPM_WUR;

/* Writes entry number index (0-based). e->name must be a valid instance name. */
int bkf_write_entry(struct bkf_writer *w, uint32_t index, const struct bkf_entry *e)
    VTPM_WUR;

/*
 * Writes one section from an encoded record and its sealed blobs (perm/vol
 * NULL with length 0 when absent). Returns VTPM_E_TOOBIG if a piece
 * exceeds its maximum.
 */
int bkf_write_section(struct bkf_writer *w, const uint8_t *rec, size_t rec_len,
    const uint8_t *perm, size_t perm_len, const uint8_t *vol, size_t vol_len) VTPM_WUR;
/* The same with the instance's sealed endorsement blob (NULL, 0: none). */
int bkf_write_section_endo(struct bkf_writer *w, const uint8_t *rec, size_t rec_len,
    const uint8_t *perm, size_t perm_len, const uint8_t *vol, size_t vol_len,
    const uint8_t *endo, size_t endo_len) VTPM_WUR;

/* Writes the trailer; the file is complete. */
int bkf_write_trailer(struct bkf_writer *w) VTPM_WUR;

/*
 * The length and checksum a section of these pieces will have (for the
 * manifest, which precedes the sections). Returns 0 or VTPM_E_TOOBIG.
 */
int bkf_section_measure(const uint8_t *rec, size_t rec_len, const uint8_t *perm,
    size_t perm_len, const uint8_t *vol, size_t vol_len, uint32_t *length,
    uint8_t sum[BKF_SUM_LEN]) VTPM_WUR;
int bkf_section_measure_endo(const uint8_t *rec, size_t rec_len, const uint8_t *perm,
    size_t perm_len, const uint8_t *vol, size_t vol_len, const uint8_t *endo,
    size_t endo_len, uint32_t *length, uint8_t sum[BKF_SUM_LEN]) VTPM_WUR;

/* ---- parsing (untrusted bytes) ---------------------------------------- */

/*
 * Parses and checks the head: magic, its checksum, version, kind, fields.
 * Returns 0; VTPM_E_FORMAT (not a vtpmd backup, or the head is damaged);
 * VTPM_E_UNSUPPORTED (an intact head of another format version).
 * *head is zeroed on failure.
 */
int bkf_head_parse(const uint8_t *buf, size_t len, struct bkf_head *head,
    char *why, size_t whylen) VTPM_WUR;

/*
 * Parses entry number index: its checksum (which binds the index), name,
 * padding, and that its section lies in the data region. Offsets are not
 * compared with the neighbours' (bkf_verify() does). Returns 0 or
 * VTPM_E_FORMAT; *e zeroed on failure.
 */
int bkf_entry_parse(const uint8_t *buf, size_t len, const struct bkf_head *head,
    uint32_t index, struct bkf_entry *e, char *why, size_t whylen) VTPM_WUR;

/*
 * Parses the section entry e names: its checksum, then its grammar, then
 * that it agrees with e and head (name, uuid, generations, flags, key id,
 * blob types and generations; a blob exactly when its generation is not 0).
 * Returns 0 or VTPM_E_FORMAT; *sec zeroed on failure.
 */
int bkf_section_parse(const uint8_t *buf, size_t len, const struct bkf_head *head,
    const struct bkf_entry *e, struct bkf_section *sec, char *why, size_t whylen)
    VTPM_WUR;

/*
 * Checks the trailer: magic and the whole-file checksum. The MAC is not
 * checked here (it needs a key: bkf_mac_verify()). Returns 0 or VTPM_E_FORMAT.
 */
int bkf_trailer_check(const uint8_t *buf, size_t len, char *why, size_t whylen)
    VTPM_WUR;

/*
 * Checks the MAC with mac_key (constant-time compare). Call after the
 * structure is known good. Returns 0, VTPM_E_FORMAT (too short) or
 * VTPM_E_AUTH (altered, or made under another key).
 */
int bkf_mac_verify(const uint8_t *buf, size_t len, const uint8_t mac_key[BKF_MAC_KEY_LEN])
    VTPM_WUR;

/* ---- offline verification --------------------------------------------- */

enum bkf_part {
	BKF_PART_HEAD = 1,	/* file header or manifest header: no instance */
	BKF_PART_ENTRY,		/* an instance's manifest entry */
	BKF_PART_SECTION,	/* an instance's data section */
	BKF_PART_LAYOUT,	/* lengths and offsets that do not add up */
	BKF_PART_TRAILER,	/* the trailer: no instance */
};

/* One problem found by bkf_verify(). */
struct bkf_problem {
	enum bkf_part	part;
	int64_t		index;			/* instance number, -1 for none */
	char		name[STORE_NAME_MAX + 1];	/* its name, "" if unknown */
	uint64_t	offset;			/* the bytes concerned */
	uint64_t	length;
	char		why[200];
};

/* Callbacks of bkf_verify(); any may be NULL. */
struct bkf_verify_cb {
	void	(*problem)(void *arg, const struct bkf_problem *p);
	/* each instance once, in order: its entry (zeroed if damaged), whether it is intact */
	void	(*instance)(void *arg, uint32_t index, const struct bkf_entry *e, int ok);
	void	 *arg;
};

/*
 * Checks a whole file without any key: head, every entry, every section,
 * the layout, the trailer and the whole-file checksum, reporting every
 * problem it can locate (it goes on after a damaged instance) and naming
 * the instance a damaged byte belongs to: from its entry, or when the entry
 * itself is damaged, from the record in its section. *head is filled when
 * the head is intact. Returns 0 (intact), VTPM_E_FORMAT (problems reported),
 * VTPM_E_UNSUPPORTED (another format version; nothing else checked).
 */
int bkf_verify(const uint8_t *buf, size_t len, struct bkf_head *head,
    const struct bkf_verify_cb *cb) VTPM_WUR;

/* ---- keys (backup_keys.c; the daemon only) ----------------------------- */

/*
 * The MAC key of backups made under root key kek: BLAKE2b-256 keyed with
 * the KEK over "vtpmd-backup-mac-v1". key should be sodium_malloc() memory.
 * Returns 0 or VTPM_E_INVAL.
 */
int bkf_backup_mac_key(const struct seal_kek *kek, uint8_t key[BKF_MAC_KEY_LEN]) VTPM_WUR;

/*
 * The keys of exports from a migration secret (a key-provider key both
 * vtpmds can get): *wrap = a new read-only KEK of BLAKE2b-256(secret,
 * "vtpmd-migration-wrap-v1") with the secret's version (free with
 * seal_kek_free()), and mac_key = BLAKE2b-256(secret, "vtpmd-migration-mac-v1").
 * The secret itself never wraps or MACs anything. Returns 0, VTPM_E_INVAL,
 * VTPM_E_NOMEM.
 */
int bkf_migration_keys(const struct seal_kek *secret, struct seal_kek **wrap,
    uint8_t mac_key[BKF_MAC_KEY_LEN]) VTPM_WUR;

#endif
