/*
 * test_storage.c: unit tests of storage/ (seal, record format, LMDB store,
 * key providers). One binary; prints a line per failed check and ends with
 * "storage: N passed, M failed". Works in a mkdtemp() directory under /tmp
 * and removes it. Set VTPM_TEST_VERBOSE=1 to see the library's log lines.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "keyprov.h"
#include "log.h"
#include "seal.h"
#include "store.h"
#include "store_log.h"
#include "cursor.h"
#include "../check.h"

static char tmpdir[64];


/* ---- helpers ---------------------------------------------------------- */

static void
fill(uint8_t *p, size_t n, uint8_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static int
is_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

static void
path_in_tmp(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", tmpdir, name);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static struct seal_kek *
kek_from_byte(uint8_t b, uint32_t version)
{
	uint8_t key[SEAL_KEY_LEN];
	struct seal_kek *k = NULL;

	memset(key, b, sizeof(key));
	if (seal_kek_new(key, version, &k) != 0) {
		printf("FATAL: seal_kek_new\n");
		exit(2);
	}
	sodium_memzero(key, sizeof(key));
	return k;
}

static void
inst_make(struct store_instance *in, const char *name, uint8_t seed, int with_ident)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->name, sizeof(in->name), "%s", name);
	fill(in->uuid, sizeof(in->uuid), seed);
	if (with_ident) {
		fill(in->measurement, sizeof(in->measurement), (uint8_t)(seed + 1));
		fill(in->host_data, sizeof(in->host_data), (uint8_t)(seed + 2));
	}
	in->created = 1700000000u + seed;
	in->perm_gen = seed;
	in->vol_gen = 0;
	fill(in->vol_launch_id, sizeof(in->vol_launch_id), (uint8_t)(seed + 3));
	in->pcr_banks = 0x6;
	fill(in->wrapped_dek, sizeof(in->wrapped_dek), (uint8_t)(seed + 4));
}

static int
inst_equal(const struct store_instance *a, const struct store_instance *b)
{
	return strcmp(a->name, b->name) == 0 &&
	    memcmp(a->uuid, b->uuid, sizeof(a->uuid)) == 0 &&
	    memcmp(a->measurement, b->measurement, sizeof(a->measurement)) == 0 &&
	    memcmp(a->host_data, b->host_data, sizeof(a->host_data)) == 0 &&
	    a->created == b->created && a->perm_gen == b->perm_gen &&
	    a->vol_gen == b->vol_gen &&
	    memcmp(a->vol_launch_id, b->vol_launch_id, sizeof(a->vol_launch_id)) == 0 &&
	    a->flags == b->flags && a->pcr_banks == b->pcr_banks &&
	    memcmp(a->wrapped_dek, b->wrapped_dek, sizeof(a->wrapped_dek)) == 0;
}

/* ---- seal ------------------------------------------------------------- */

static const uint8_t kid_kat_key[32] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};
/* Python: hashlib.blake2b(b"vtpmd-kid-v1", key=bytes(range(32)), digest_size=32)[:8] */
static const uint8_t kid_kat[8] = { 0x3c, 0xbd, 0x5e, 0x76, 0x61, 0x62, 0xb1, 0x6f };

static void
test_kek_kid(void)
{
	struct seal_kek *k = NULL;

	CHECK_RC(seal_kek_new(kid_kat_key, 7, &k), 0);
	if (k == NULL)
		return;
	CHECK(memcmp(k->kid, kid_kat, 8) == 0);
	CHECK(k->version == 7);
	seal_kek_free(k);
	seal_kek_free(NULL);
	CHECK_RC(seal_kek_new(NULL, 1, &k), VTPM_E_INVAL);
	CHECK(k == NULL);
}

static void
test_seal_roundtrip(void)
{
	static const size_t lens[] = { 0, 1, 1299, 4503, 65536 };
	uint8_t dek[32], kid[8], uuid[16];
	uint8_t *pt, *sealed, *out;
	struct seal_blob_info info;
	size_t i, n, outlen;
	int t;

	fill(dek, 32, 1);
	fill(kid, 8, 2);
	fill(uuid, 16, 3);
	pt = malloc(65536);
	sealed = malloc(65536 + SEAL_BLOB_OVERHEAD);
	out = malloc(65536);
	if (pt == NULL || sealed == NULL || out == NULL)
		exit(2);
	fill(pt, 65536, 9);

	CHECK(seal_blob_size(0) == 64);
	CHECK(seal_blob_size(1299) == 1299 + 64);
	CHECK(seal_blob_size(SEAL_PLAIN_MAX) == SEAL_PLAIN_MAX + 64);
	CHECK(seal_blob_size(SEAL_PLAIN_MAX + 1) == 0);
	CHECK(seal_blob_size((size_t)-1) == 0);

	for (t = SEAL_BLOB_PERMANENT; t <= SEAL_BLOB_ENDORSEMENT; t++) {
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			int ok = 1;

			if (seal_blob(dek, kid, uuid, (uint8_t)t, 42 + i, pt, lens[i],
			    sealed, 65536 + SEAL_BLOB_OVERHEAD, &n) != 0 ||
			    n != seal_blob_size(lens[i]))
				ok = 0;
			if (ok && (seal_blob_peek(sealed, n, &info) != 0 ||
			    info.type != t || info.generation != 42 + i ||
			    memcmp(info.kid, kid, 8) != 0 || info.plain_len != lens[i]))
				ok = 0;
			if (ok && (unseal_blob(dek, uuid, (uint8_t)t, 42 + i, sealed, n,
			    out, 65536, &outlen) != 0 || outlen != lens[i] ||
			    memcmp(out, pt, lens[i]) != 0))
				ok = 0;
			if (!ok)
				printf("  (type %d, len %zu)\n", t, lens[i]);
			CHECK(ok);
		}
	}

	/* two seals of the same input differ (random nonce) */
	{
		uint8_t a[128], b[128];
		size_t na, nb;

		CHECK_RC(seal_blob(dek, kid, uuid, 1, 1, pt, 16, a, sizeof(a), &na), 0);
		CHECK_RC(seal_blob(dek, kid, uuid, 1, 1, pt, 16, b, sizeof(b), &nb), 0);
		CHECK(na == nb && memcmp(a, b, na) != 0);
	}

	/* argument errors */
	CHECK_RC(seal_blob(dek, kid, uuid, 4, 1, pt, 16, sealed, 1024, &n), VTPM_E_INVAL);
	CHECK_RC(seal_blob(dek, kid, uuid, 0, 1, pt, 16, sealed, 1024, &n), VTPM_E_INVAL);
	CHECK_RC(seal_blob(dek, kid, uuid, 1, 0, pt, 16, sealed, 1024, &n), VTPM_E_INVAL);
	CHECK_RC(seal_blob(dek, kid, uuid, 1, 1, pt, 16, sealed, 16 + 63, &n), VTPM_E_TOOBIG);
	CHECK_RC(seal_blob(dek, kid, uuid, 1, 1, pt, SEAL_PLAIN_MAX + 1, sealed, 1024, &n),
	    VTPM_E_TOOBIG);
	CHECK_RC(seal_blob(dek, kid, uuid, 1, 1, NULL, 16, sealed, 1024, &n), VTPM_E_INVAL);
	free(pt);
	free(sealed);
	free(out);
}

/*
 * Builds the documented AD by hand and opens/creates blobs with libsodium
 * directly: the code and the format in seal.h must agree.
 */
static void
test_seal_format_doc(void)
{
	static const char label[] = "vtpmd-blob-v1";
	uint8_t dek[32], kid[8], uuid[16], pt[100], blob[100 + 64], out[100];
	uint8_t ad[24 + 16 + sizeof(label) - 1];
	unsigned long long mlen, clen;
	size_t n;

	fill(dek, 32, 11);
	fill(kid, 8, 12);
	fill(uuid, 16, 13);
	fill(pt, sizeof(pt), 14);

	/* ours -> by hand */
	CHECK_RC(seal_blob(dek, kid, uuid, SEAL_BLOB_VOLATILE, 0x0102030405060708ull,
	    pt, sizeof(pt), blob, sizeof(blob), &n), 0);
	CHECK(memcmp(blob, "VTB1", 4) == 0);
	CHECK(blob[4] == 2 && blob[5] == 0 && blob[6] == 0 && blob[7] == 0);
	CHECK(blob[8] == 1 && blob[15] == 8);
	CHECK(memcmp(blob + 16, kid, 8) == 0);
	memcpy(ad, blob, 24);
	memcpy(ad + 24, uuid, 16);
	memcpy(ad + 40, label, sizeof(label) - 1);
	CHECK(crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, blob + 48,
	    n - 48, ad, sizeof(ad), blob + 24, dek) == 0 && mlen == sizeof(pt) &&
	    memcmp(out, pt, sizeof(pt)) == 0);

	/* by hand -> ours */
	memcpy(blob, "VTB1\x01\x00\x00\x00", 8);
	memset(blob + 8, 0, 7);
	blob[15] = 9;
	memcpy(blob + 16, kid, 8);
	memset(blob + 24, 0x5a, 24);
	memcpy(ad, blob, 24);
	CHECK(crypto_aead_xchacha20poly1305_ietf_encrypt(blob + 48, &clen, pt, sizeof(pt),
	    ad, sizeof(ad), NULL, blob + 24, dek) == 0 && clen == sizeof(pt) + 16);
	CHECK_RC(unseal_blob(dek, uuid, SEAL_BLOB_PERMANENT, 9, blob, sizeof(blob), out,
	    sizeof(out), &n), 0);
	CHECK(n == sizeof(pt) && memcmp(out, pt, sizeof(pt)) == 0);
}

static void
test_seal_bindings(void)
{
	uint8_t dek[32], dek2[32], kid[8], uuid[16], uuid2[16], pt[300];
	uint8_t blob[300 + 64], mut[300 + 65], out[300];
	size_t n, outlen, i;
	int bad, rc, zero_ok;

	fill(dek, 32, 21);
	memcpy(dek2, dek, 32);
	dek2[31] ^= 1;
	fill(kid, 8, 22);
	fill(uuid, 16, 23);
	memcpy(uuid2, uuid, 16);
	uuid2[0] ^= 0x80;
	fill(pt, sizeof(pt), 24);
	CHECK_RC(seal_blob(dek, kid, uuid, SEAL_BLOB_PERMANENT, 5, pt, sizeof(pt), blob,
	    sizeof(blob), &n), 0);

	CHECK_RC(unseal_blob(dek, uuid, SEAL_BLOB_PERMANENT, 5, blob, n, out, sizeof(out),
	    &outlen), 0);
	/* another instance */
	memset(out, 0xee, sizeof(out));
	CHECK_RC(unseal_blob(dek, uuid2, SEAL_BLOB_PERMANENT, 5, blob, n, out, sizeof(out),
	    &outlen), VTPM_E_AUTH);
	CHECK(is_zero(out, sizeof(out)) && outlen == 0);
	/* the other slot */
	CHECK_RC(unseal_blob(dek, uuid, SEAL_BLOB_VOLATILE, 5, blob, n, out, sizeof(out),
	    &outlen), VTPM_E_AUTH);
	CHECK_RC(unseal_blob(dek, uuid, SEAL_BLOB_ENDORSEMENT, 5, blob, n, out, sizeof(out),
	    &outlen), VTPM_E_AUTH);
	/* another generation: stale and future */
	memset(out, 0xee, sizeof(out));
	CHECK_RC(unseal_blob(dek, uuid, SEAL_BLOB_PERMANENT, 6, blob, n, out, sizeof(out),
	    &outlen), VTPM_E_ROLLBACK);
	CHECK(is_zero(out, sizeof(out)) && outlen == 0);
	CHECK_RC(unseal_blob(dek, uuid, SEAL_BLOB_PERMANENT, 4, blob, n, out, sizeof(out),
	    &outlen), VTPM_E_ROLLBACK);
	/* another key */
	CHECK_RC(unseal_blob(dek2, uuid, SEAL_BLOB_PERMANENT, 5, blob, n, out, sizeof(out),
	    &outlen), VTPM_E_AUTH);
	/* output too small */
	memset(out, 0xee, sizeof(out));
	CHECK_RC(unseal_blob(dek, uuid, SEAL_BLOB_PERMANENT, 5, blob, n, out,
	    sizeof(out) - 1, &outlen), VTPM_E_TOOBIG);
	CHECK(is_zero(out, sizeof(out) - 1));
	/* arguments */
	CHECK_RC(unseal_blob(dek, uuid, 9, 5, blob, n, out, sizeof(out), &outlen),
	    VTPM_E_INVAL);
	CHECK_RC(unseal_blob(dek, uuid, 1, 0, blob, n, out, sizeof(out), &outlen),
	    VTPM_E_INVAL);
	CHECK_RC(unseal_blob(dek, uuid, 1, 5, NULL, n, out, sizeof(out), &outlen),
	    VTPM_E_FORMAT);

	/* a forged generation is a tag failure, not a rollback */
	memcpy(mut, blob, n);
	mut[15] ^= 0x03;	/* gen 5 -> 6 */
	CHECK_RC(unseal_blob(dek, uuid, SEAL_BLOB_PERMANENT, 6, mut, n, out, sizeof(out),
	    &outlen), VTPM_E_AUTH);
	/* a forged type is a slot mismatch or a tag failure */
	memcpy(mut, blob, n);
	mut[4] = SEAL_BLOB_VOLATILE;
	CHECK_RC(unseal_blob(dek, uuid, SEAL_BLOB_VOLATILE, 5, mut, n, out, sizeof(out),
	    &outlen), VTPM_E_AUTH);
	/* layout errors */
	memcpy(mut, blob, n);
	mut[0] = 'X';
	CHECK_RC(unseal_blob(dek, uuid, 1, 5, mut, n, out, sizeof(out), &outlen),
	    VTPM_E_FORMAT);
	memcpy(mut, blob, n);
	mut[5] = 1;
	CHECK_RC(unseal_blob(dek, uuid, 1, 5, mut, n, out, sizeof(out), &outlen),
	    VTPM_E_FORMAT);
	memcpy(mut, blob, n);
	mut[7] = 1;
	CHECK_RC(unseal_blob(dek, uuid, 1, 5, mut, n, out, sizeof(out), &outlen),
	    VTPM_E_FORMAT);
	memcpy(mut, blob, n);
	mut[4] = 4;	/* no such type */
	CHECK_RC(unseal_blob(dek, uuid, 1, 5, mut, n, out, sizeof(out), &outlen),
	    VTPM_E_FORMAT);
	memcpy(mut, blob, n);
	mut[4] = SEAL_BLOB_ENDORSEMENT;	/* another slot's type */
	CHECK(unseal_blob(dek, uuid, 1, 5, mut, n, out, sizeof(out), &outlen) != 0);

	/* every single-bit flip anywhere is rejected, and nothing leaks */
	bad = 0;
	for (i = 0; i < n * 8; i++) {
		memcpy(mut, blob, n);
		mut[i / 8] ^= (uint8_t)(1u << (i % 8));
		memset(out, 0xee, sizeof(out));
		rc = unseal_blob(dek, uuid, SEAL_BLOB_PERMANENT, 5, mut, n, out,
		    sizeof(out), &outlen);
		zero_ok = is_zero(out, sizeof(out)) && outlen == 0;
		if (rc == 0 || rc == VTPM_E_ROLLBACK || !zero_ok) {
			if (bad++ < 5)
				printf("  bit %zu: rc %d\n", i, rc);
		}
	}
	CHECK(bad == 0);
	/* every truncation, and one extra byte, are rejected */
	bad = 0;
	for (i = 0; i < n; i++) {
		rc = unseal_blob(dek, uuid, SEAL_BLOB_PERMANENT, 5, blob, i, out,
		    sizeof(out), &outlen);
		if (rc != VTPM_E_FORMAT && rc != VTPM_E_AUTH)
			bad++;
	}
	CHECK(bad == 0);
	memcpy(mut, blob, n);
	mut[n] = 0;
	CHECK_RC(unseal_blob(dek, uuid, SEAL_BLOB_PERMANENT, 5, mut, n + 1, out,
	    sizeof(out), &outlen), VTPM_E_TOOBIG);	/* 301 bytes do not fit */
	{
		uint8_t big[301];

		CHECK_RC(unseal_blob(dek, uuid, SEAL_BLOB_PERMANENT, 5, mut, n + 1, big,
		    sizeof(big), &outlen), VTPM_E_AUTH);
		CHECK(is_zero(big, sizeof(big)));
	}
	CHECK_RC(unseal_blob(dek, uuid, SEAL_BLOB_PERMANENT, 5, blob, 63, out,
	    sizeof(out), &outlen), VTPM_E_FORMAT);
}

static void
test_dek_wrap(void)
{
	struct seal_kek *k1 = kek_from_byte(0x11, 1), *k2 = kek_from_byte(0x22, 2);
	uint8_t uuid[16], uuid2[16], w[SEAL_WRAPPED_DEK_LEN], mut[SEAL_WRAPPED_DEK_LEN];
	uint8_t *dek = sodium_malloc(32), *got = sodium_malloc(32);
	size_t i;
	int bad, rc;

	if (dek == NULL || got == NULL)
		exit(2);
	fill(uuid, 16, 31);
	memcpy(uuid2, uuid, 16);
	uuid2[15] ^= 1;
	seal_dek_generate(dek);
	CHECK(!is_zero(dek, 32));

	CHECK_RC(seal_dek_wrap(k1, uuid, dek, w), 0);
	CHECK(memcmp(w, "VTK1", 4) == 0 && memcmp(w + 4, k1->kid, 8) == 0);
	CHECK(w[12] == 0 && w[15] == 1);
	CHECK_RC(seal_dek_unwrap(k1, uuid, w, got), 0);
	CHECK(memcmp(got, dek, 32) == 0);

	memset(got, 0xee, 32);
	CHECK_RC(seal_dek_unwrap(k2, uuid, w, got), VTPM_E_WRONG_KEY);
	CHECK(is_zero(got, 32));
	memset(got, 0xee, 32);
	CHECK_RC(seal_dek_unwrap(k1, uuid2, w, got), VTPM_E_AUTH);
	CHECK(is_zero(got, 32));
	memcpy(mut, w, sizeof(w));
	mut[0] = 'X';
	CHECK_RC(seal_dek_unwrap(k1, uuid, mut, got), VTPM_E_FORMAT);
	memcpy(mut, w, sizeof(w));
	mut[15] = 2;	/* version is authenticated */
	CHECK_RC(seal_dek_unwrap(k1, uuid, mut, got), VTPM_E_AUTH);

	bad = 0;
	for (i = 0; i < sizeof(w) * 8; i++) {
		memcpy(mut, w, sizeof(w));
		mut[i / 8] ^= (uint8_t)(1u << (i % 8));
		memset(got, 0xee, 32);
		rc = seal_dek_unwrap(k1, uuid, mut, got);
		if (rc == 0 || !is_zero(got, 32))
			bad++;
	}
	CHECK(bad == 0);
	CHECK_RC(seal_dek_wrap(NULL, uuid, dek, w), VTPM_E_INVAL);

	sodium_free(dek);
	sodium_free(got);
	seal_kek_free(k1);
	seal_kek_free(k2);
}

static void
test_kcv(void)
{
	struct seal_kek *k1 = kek_from_byte(0x33, 1), *k2 = kek_from_byte(0x44, 1);
	uint8_t kcv[SEAL_KCV_LEN], kcv2[SEAL_KCV_LEN], mut[SEAL_KCV_LEN];
	size_t i;
	int bad;

	CHECK_RC(seal_kek_check_make(k1, kcv), 0);
	CHECK_RC(seal_kek_check_make(k1, kcv2), 0);
	CHECK(memcmp(kcv, kcv2, sizeof(kcv)) != 0);	/* salted */
	CHECK_RC(seal_kek_check_verify(k1, kcv), 0);
	CHECK_RC(seal_kek_check_verify(k1, kcv2), 0);
	CHECK_RC(seal_kek_check_verify(k2, kcv), VTPM_E_WRONG_KEY);
	memcpy(mut, kcv, sizeof(kcv));
	mut[0] ^= 1;
	CHECK_RC(seal_kek_check_verify(k1, mut), VTPM_E_FORMAT);
	memcpy(mut, kcv, sizeof(kcv));
	mut[63] ^= 1;
	CHECK_RC(seal_kek_check_verify(k1, mut), VTPM_E_AUTH);
	bad = 0;
	for (i = 0; i < sizeof(kcv) * 8; i++) {
		memcpy(mut, kcv, sizeof(kcv));
		mut[i / 8] ^= (uint8_t)(1u << (i % 8));
		if (seal_kek_check_verify(k1, mut) == 0)
			bad++;
	}
	CHECK(bad == 0);
	seal_kek_free(k1);
	seal_kek_free(k2);
}

/* ---- the record format ------------------------------------------------ */

static void
test_names(void)
{
	char n63[64], n64[65];

	memset(n63, 'a', 63);
	n63[63] = '\0';
	memset(n64, 'a', 64);
	n64[64] = '\0';
	CHECK_RC(store_inst_name_check("guest-01.prod_a"), 0);
	CHECK_RC(store_inst_name_check("a"), 0);
	CHECK_RC(store_inst_name_check("..."), 0);
	CHECK_RC(store_inst_name_check(n63), 0);
	CHECK_RC(store_inst_name_check(n64), VTPM_E_INVAL);
	CHECK_RC(store_inst_name_check(""), VTPM_E_INVAL);
	CHECK_RC(store_inst_name_check("."), VTPM_E_INVAL);
	CHECK_RC(store_inst_name_check(".."), VTPM_E_INVAL);
	CHECK_RC(store_inst_name_check("a/b"), VTPM_E_INVAL);
	CHECK_RC(store_inst_name_check("a b"), VTPM_E_INVAL);
	CHECK_RC(store_inst_name_check("caf\xc3\xa9"), VTPM_E_INVAL);
	CHECK_RC(store_inst_name_check(NULL), VTPM_E_INVAL);
}

static void
test_record_codec(void)
{
	struct store_instance in, out;
	uint8_t rec[STORE_INST_RECORD_MAX], mut[STORE_INST_RECORD_MAX + 1];
	size_t n, n2, i, nlen;
	uint8_t rec2[STORE_INST_RECORD_MAX];
	int bad, rc;

	inst_make(&in, "guest-7", 7, 1);
	in.flags = STORE_INST_FENCED;
	in.vol_gen = 3;
	CHECK_RC(store_inst_encode(&in, rec, sizeof(rec), &n), 0);
	nlen = strlen(in.name);
	CHECK(n == 2 + nlen + 16 + 48 + 32 + 24 + 32 + 4 + 4 + 2 + 88);
	CHECK(rec[0] == STORE_INST_RECORD_VERSION && rec[1] == nlen);
	CHECK_RC(store_inst_decode(rec, n, &out), 0);
	CHECK(inst_equal(&in, &out));

	/* every truncation and an extra byte */
	bad = 0;
	for (i = 0; i < n; i++)
		if (store_inst_decode(rec, i, &out) != VTPM_E_FORMAT ||
		    !is_zero((const uint8_t *)&out, sizeof(out)))
			bad++;
	CHECK(bad == 0);
	memcpy(mut, rec, n);
	mut[n] = 0;
	CHECK_RC(store_inst_decode(mut, n + 1, &out), VTPM_E_FORMAT);

	/* specific fields */
	memcpy(mut, rec, n);
	mut[0] = 2;
	CHECK_RC(store_inst_decode(mut, n, &out), VTPM_E_FORMAT);
	memcpy(mut, rec, n);
	mut[1] = 0;
	CHECK_RC(store_inst_decode(mut, n, &out), VTPM_E_FORMAT);
	memcpy(mut, rec, n);
	mut[1] = 0xff;
	CHECK_RC(store_inst_decode(mut, n, &out), VTPM_E_FORMAT);
	memcpy(mut, rec, n);
	mut[2] = '/';
	CHECK_RC(store_inst_decode(mut, n, &out), VTPM_E_FORMAT);
	memcpy(mut, rec, n);
	mut[2 + nlen + 16 + 48 + 32 + 24 + 32] |= 0x80;	/* flags: unknown bit */
	CHECK_RC(store_inst_decode(mut, n, &out), VTPM_E_FORMAT);
	memcpy(mut, rec, n);
	mut[2 + nlen + 16 + 48 + 32 + 24 + 32 + 8 + 1] = 87;	/* dek length */
	CHECK_RC(store_inst_decode(mut, n, &out), VTPM_E_FORMAT);

	/* any byte flip: rejected, or a record that re-encodes to the same bytes */
	bad = 0;
	for (i = 0; i < n * 8; i++) {
		memcpy(mut, rec, n);
		mut[i / 8] ^= (uint8_t)(1u << (i % 8));
		rc = store_inst_decode(mut, n, &out);
		if (rc == 0) {
			if (store_inst_encode(&out, rec2, sizeof(rec2), &n2) != 0 ||
			    n2 != n || memcmp(rec2, mut, n) != 0)
				bad++;
		} else if (rc != VTPM_E_FORMAT)
			bad++;
	}
	CHECK(bad == 0);

	/* encode refuses what decode would refuse */
	inst_make(&in, "bad name", 1, 0);
	CHECK_RC(store_inst_encode(&in, rec, sizeof(rec), &n), VTPM_E_INVAL);
	inst_make(&in, "ok", 1, 0);
	in.flags = 0x10;
	CHECK_RC(store_inst_encode(&in, rec, sizeof(rec), &n), VTPM_E_INVAL);
	in.flags = 0;
	CHECK_RC(store_inst_encode(&in, rec, 10, &n), VTPM_E_TOOBIG);
	CHECK_RC(store_inst_decode(NULL, 0, &out), VTPM_E_INVAL);
}

/* ---- LMDB store ------------------------------------------------------- */

struct list_ctx {
	char	names[16][64];
	int	n;
	int	stop_at;
};

static int
list_cb(const struct store_instance *inst, void *arg)
{
	struct list_ctx *lc = arg;

	if (lc->n < 16)
		snprintf(lc->names[lc->n], 64, "%s", inst->name);
	lc->n++;
	if (lc->stop_at > 0 && lc->n == lc->stop_at)
		return 99;
	return 0;
}

/*
 * A digest of everything reachable in the store: kcv, every record in list
 * order, both blobs of every instance, and the given names' lookups.
 */
static void
store_digest(struct store *s, const char *const *probe, size_t nprobe,
    uint8_t d[32])
{
	crypto_hash_sha256_state st;
	static uint8_t buf[STORE_BLOB_MAX];
	struct store_instance in;
	uint8_t kcv[SEAL_KCV_LEN], rec[STORE_INST_RECORD_MAX];
	size_t i, n;
	int rc, t;

	crypto_hash_sha256_init(&st);
	rc = store_meta_get_kcv(s, kcv);
	crypto_hash_sha256_update(&st, (uint8_t *)&rc, sizeof(rc));
	if (rc == 0)
		crypto_hash_sha256_update(&st, kcv, sizeof(kcv));
	for (i = 0; i < nprobe; i++) {
		rc = store_inst_get(s, probe[i], &in);
		crypto_hash_sha256_update(&st, (uint8_t *)&rc, sizeof(rc));
		if (rc != 0)
			continue;
		if (store_inst_encode(&in, rec, sizeof(rec), &n) == 0)
			crypto_hash_sha256_update(&st, rec, n);
		for (t = 1; t <= 2; t++) {
			rc = store_blob_get(s, in.uuid, (uint8_t)t, buf, sizeof(buf), &n);
			crypto_hash_sha256_update(&st, (uint8_t *)&rc, sizeof(rc));
			if (rc == 0)
				crypto_hash_sha256_update(&st, buf, n);
		}
		if (!store_ident_is_empty(in.measurement, in.host_data)) {
			struct store_instance f;

			rc = store_inst_find_identity(s, in.measurement, in.host_data, &f);
			crypto_hash_sha256_update(&st, (uint8_t *)&rc, sizeof(rc));
			if (rc == 0)
				crypto_hash_sha256_update(&st, (uint8_t *)f.name, strlen(f.name));
		}
	}
	crypto_hash_sha256_final(&st, d);
}

static void
test_store_basic(void)
{
	static const char *const probe[] = { "alpha", "beta", "gamma", "delta" };
	char dir[128];
	struct store *s = NULL, *s2 = NULL;
	struct store_batch *b;
	struct store_instance a, be, g, out;
	struct list_ctx lc;
	uint8_t kcv[64], kcv2[64], blob[200], got[200], d1[32], d2[32];
	uint8_t uuid_none[16];
	size_t n;

	path_in_tmp(dir, sizeof(dir), "basic");
	CHECK_RC(store_open_lmdb(dir, 0, &s), 0);
	if (s == NULL)
		return;
	CHECK(strcmp(store_backend_name(s), "lmdb") == 0);
	{
		struct stat sb;

		CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	}
	CHECK_RC(store_open_lmdb(dir, 0, &s2), VTPM_E_BUSY);
	CHECK(s2 == NULL);
	CHECK_RC(store_meta_get_kcv(s, kcv), VTPM_E_NOTFOUND);

	b = store_batch_new();
	CHECK(b != NULL && store_batch_count(b) == 0);
	if (b == NULL)
		exit(2);
	fill(kcv, sizeof(kcv), 50);
	CHECK_RC(store_batch_put_kcv(b, kcv), 0);
	inst_make(&g, "gamma", 60, 1);
	inst_make(&a, "alpha", 70, 1);
	inst_make(&be, "beta", 80, 0);	/* no identity enrolled */
	CHECK_RC(store_batch_put_inst(b, &g), 0);
	CHECK_RC(store_batch_put_inst(b, &a), 0);
	CHECK_RC(store_batch_put_inst(b, &be), 0);
	fill(blob, sizeof(blob), 90);
	CHECK_RC(store_batch_put_blob(b, a.uuid, SEAL_BLOB_PERMANENT, blob, 150), 0);
	CHECK_RC(store_batch_put_blob(b, a.uuid, SEAL_BLOB_VOLATILE, blob + 1, 120), 0);
	CHECK_RC(store_batch_put_blob(b, g.uuid, SEAL_BLOB_PERMANENT, blob + 2, 100), 0);
	CHECK(store_batch_count(b) == 7);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK(store_batch_count(b) == 0);
	CHECK_RC(store_batch_commit(s, b), 0);	/* empty */

	CHECK_RC(store_meta_get_kcv(s, kcv2), 0);
	CHECK(memcmp(kcv, kcv2, 64) == 0);
	CHECK_RC(store_inst_get(s, "alpha", &out), 0);
	CHECK(inst_equal(&out, &a));
	CHECK_RC(store_inst_get(s, "beta", &out), 0);
	CHECK(inst_equal(&out, &be));
	CHECK_RC(store_inst_get(s, "delta", &out), VTPM_E_NOTFOUND);
	CHECK(is_zero((const uint8_t *)&out, sizeof(out)));
	CHECK_RC(store_inst_get(s, "no/slash", &out), VTPM_E_INVAL);

	CHECK_RC(store_inst_find_identity(s, a.measurement, a.host_data, &out), 0);
	CHECK(strcmp(out.name, "alpha") == 0);
	CHECK_RC(store_inst_find_identity(s, g.measurement, g.host_data, &out), 0);
	CHECK(strcmp(out.name, "gamma") == 0);
	CHECK_RC(store_inst_find_identity(s, a.measurement, g.host_data, &out),
	    VTPM_E_NOTFOUND);
	CHECK_RC(store_inst_find_identity(s, be.measurement, be.host_data, &out),
	    VTPM_E_NOTFOUND);

	memset(&lc, 0, sizeof(lc));
	CHECK_RC(store_inst_list(s, list_cb, &lc), 0);
	CHECK(lc.n == 3 && strcmp(lc.names[0], "alpha") == 0 &&
	    strcmp(lc.names[1], "beta") == 0 && strcmp(lc.names[2], "gamma") == 0);
	memset(&lc, 0, sizeof(lc));
	lc.stop_at = 2;
	CHECK_RC(store_inst_list(s, list_cb, &lc), 99);
	CHECK(lc.n == 2);

	CHECK_RC(store_blob_get(s, a.uuid, SEAL_BLOB_PERMANENT, got, sizeof(got), &n), 0);
	CHECK(n == 150 && memcmp(got, blob, 150) == 0);
	CHECK_RC(store_blob_get(s, a.uuid, SEAL_BLOB_VOLATILE, got, sizeof(got), &n), 0);
	CHECK(n == 120 && memcmp(got, blob + 1, 120) == 0);
	CHECK_RC(store_blob_get(s, a.uuid, SEAL_BLOB_PERMANENT, got, 149, &n), VTPM_E_TOOBIG);
	CHECK(n == 150);
	CHECK_RC(store_blob_get(s, be.uuid, SEAL_BLOB_PERMANENT, got, sizeof(got), &n),
	    VTPM_E_NOTFOUND);
	CHECK_RC(store_blob_get(s, a.uuid, SEAL_BLOB_ENDORSEMENT, got, sizeof(got), &n),
	    VTPM_E_NOTFOUND);
	CHECK_RC(store_blob_get(s, a.uuid, 4, got, sizeof(got), &n), VTPM_E_INVAL);

	/* argument checks when recording */
	CHECK_RC(store_batch_put_blob(b, a.uuid, 0, blob, 10), VTPM_E_INVAL);
	CHECK_RC(store_batch_put_blob(b, a.uuid, 1, blob, 0), VTPM_E_INVAL);
	CHECK_RC(store_batch_put_blob(b, a.uuid, 1, blob, STORE_BLOB_MAX + 1), VTPM_E_TOOBIG);
	CHECK_RC(store_batch_del_inst(b, ".."), VTPM_E_INVAL);
	inst_make(&out, "x y", 1, 0);
	CHECK_RC(store_batch_put_inst(b, &out), VTPM_E_INVAL);
	CHECK(store_batch_count(b) == 0);

	/* re-enrol alpha: the old identity stops resolving, the new one does */
	a.measurement[0] ^= 0xff;
	a.perm_gen = 2;
	CHECK_RC(store_batch_put_inst(b, &a), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK_RC(store_inst_find_identity(s, a.measurement, a.host_data, &out), 0);
	CHECK(strcmp(out.name, "alpha") == 0 && out.perm_gen == 2);
	a.measurement[0] ^= 0xff;
	CHECK_RC(store_inst_find_identity(s, a.measurement, a.host_data, &out),
	    VTPM_E_NOTFOUND);
	a.measurement[0] ^= 0xff;

	/* conflicts change nothing */
	store_digest(s, probe, 4, d1);
	inst_make(&out, "delta", 99, 0);
	memcpy(out.measurement, g.measurement, sizeof(out.measurement));
	memcpy(out.host_data, g.host_data, sizeof(out.host_data));
	CHECK_RC(store_batch_put_blob(b, out.uuid, 1, blob, 10), 0);
	CHECK_RC(store_batch_put_inst(b, &out), 0);	/* gamma's identity */
	CHECK_RC(store_batch_commit(s, b), VTPM_E_EXISTS);
	CHECK(store_batch_count(b) == 2);	/* left for the caller */
	store_batch_reset(b);
	CHECK(store_batch_count(b) == 0);
	inst_make(&out, "gamma", 61, 0);	/* same name, other uuid */
	CHECK_RC(store_batch_put_inst(b, &out), 0);
	CHECK_RC(store_batch_commit(s, b), VTPM_E_EXISTS);
	store_batch_reset(b);
	store_digest(s, probe, 4, d2);
	CHECK(memcmp(d1, d2, 32) == 0);

	/* delete alpha: record, ident and both blobs go; gamma's stay */
	CHECK_RC(store_batch_del_inst(b, "alpha"), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK_RC(store_inst_get(s, "alpha", &out), VTPM_E_NOTFOUND);
	CHECK_RC(store_inst_find_identity(s, a.measurement, a.host_data, &out),
	    VTPM_E_NOTFOUND);
	CHECK_RC(store_blob_get(s, a.uuid, SEAL_BLOB_PERMANENT, got, sizeof(got), &n),
	    VTPM_E_NOTFOUND);
	CHECK_RC(store_blob_get(s, a.uuid, SEAL_BLOB_VOLATILE, got, sizeof(got), &n),
	    VTPM_E_NOTFOUND);
	CHECK_RC(store_blob_get(s, g.uuid, SEAL_BLOB_PERMANENT, got, sizeof(got), &n), 0);
	CHECK(n == 100 && memcmp(got, blob + 2, 100) == 0);
	CHECK_RC(store_batch_del_inst(b, "alpha"), 0);
	CHECK_RC(store_batch_commit(s, b), VTPM_E_NOTFOUND);
	store_batch_reset(b);
	/* alpha's identity is free again */
	inst_make(&out, "delta", 71, 0);
	memcpy(out.measurement, a.measurement, sizeof(out.measurement));
	memcpy(out.host_data, a.host_data, sizeof(out.host_data));
	CHECK_RC(store_batch_put_inst(b, &out), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK_RC(store_inst_find_identity(s, a.measurement, a.host_data, &out), 0);
	CHECK(strcmp(out.name, "delta") == 0);

	/* del_blob is idempotent; ordered writes in one batch */
	memset(uuid_none, 0xab, sizeof(uuid_none));
	CHECK_RC(store_batch_del_blob(b, uuid_none, SEAL_BLOB_VOLATILE), 0);
	CHECK_RC(store_batch_put_blob(b, g.uuid, SEAL_BLOB_VOLATILE, blob, 10), 0);
	CHECK_RC(store_batch_del_blob(b, g.uuid, SEAL_BLOB_VOLATILE), 0);
	CHECK_RC(store_batch_put_blob(b, g.uuid, SEAL_BLOB_VOLATILE, blob + 3, 11), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK_RC(store_blob_get(s, g.uuid, SEAL_BLOB_VOLATILE, got, sizeof(got), &n), 0);
	CHECK(n == 11 && memcmp(got, blob + 3, 11) == 0);

	/* survives close and reopen */
	store_digest(s, probe, 4, d1);
	store_close(s);
	s = NULL;
	CHECK_RC(store_open_lmdb(dir, 0, &s), 0);
	if (s != NULL) {
		store_digest(s, probe, 4, d2);
		CHECK(memcmp(d1, d2, 32) == 0);
		CHECK_RC(store_inst_get(s, "gamma", &out), 0);
		CHECK(inst_equal(&out, &g));
		store_close(s);
	}
	CHECK_RC(store_open_lmdb_flags(dir, 0, 0x80, &s), VTPM_E_INVAL);
	store_batch_free(b);
	store_batch_free(NULL);
	store_close(NULL);
}

/* A write that fails at position p of a batch leaves the store untouched. */
static void
test_store_atomic(void)
{
	static const char *const probe[] = { "i0", "i1", "i2", "i3", "i4" };
	char dir[128];
	struct store *s = NULL;
	struct store_batch *b = store_batch_new();
	struct store_instance in;
	uint8_t blob[64], d1[32], d2[32];
	int p, k, bad = 0, bad_count = 0;
	const int nw = 6;

	path_in_tmp(dir, sizeof(dir), "atomic");
	CHECK_RC(store_open_lmdb_flags(dir, 0, STORE_F_NOSYNC, &s), 0);
	if (s == NULL || b == NULL)
		exit(2);
	for (k = 0; k < 3; k++) {
		inst_make(&in, probe[k], (uint8_t)(10 * k + 1), 1);
		fill(blob, sizeof(blob), (uint8_t)k);
		if (store_batch_put_inst(b, &in) != 0 ||
		    store_batch_put_blob(b, in.uuid, 1, blob, sizeof(blob)) != 0)
			exit(2);
	}
	CHECK_RC(store_batch_commit(s, b), 0);
	store_digest(s, probe, 5, d1);

	for (p = 0; p <= nw; p++) {
		store_batch_reset(b);
		for (k = 0; k <= nw; k++) {
			int rc;

			if (k == p) {
				rc = store_batch_del_inst(b, "missing");
			} else if (k % 3 == 0) {
				inst_make(&in, probe[(k / 3) % 5], (uint8_t)(10 * ((k / 3) % 5) + 1), 1);
				in.perm_gen = 1000 + (uint64_t)k;
				rc = store_batch_put_inst(b, &in);
			} else if (k % 3 == 1) {
				inst_make(&in, probe[3 + k % 2], (uint8_t)(200 + k), 0);
				rc = store_batch_put_inst(b, &in);
			} else {
				inst_make(&in, probe[k % 3], (uint8_t)(10 * (k % 3) + 1), 1);
				fill(blob, sizeof(blob), (uint8_t)(100 + k));
				rc = store_batch_put_blob(b, in.uuid, 1, blob, sizeof(blob));
				if (rc == 0)
					rc = store_batch_del_inst(b, probe[(k + 1) % 3]);
			}
			if (rc != 0)
				exit(2);
		}
		if (store_batch_commit(s, b) != VTPM_E_NOTFOUND)
			bad++;
		if (store_batch_count(b) == 0)
			bad_count++;
		store_digest(s, probe, 5, d2);
		if (memcmp(d1, d2, 32) != 0) {
			printf("  store changed by a failed batch (fault at %d)\n", p);
			bad++;
		}
	}
	CHECK(bad == 0);
	CHECK(bad_count == 0);
	store_batch_free(b);
	store_close(s);
}

static void
test_store_full(void)
{
	static const char *const probe[] = { "small" };
	char dir[128];
	struct store *s = NULL;
	struct store_batch *b = store_batch_new();
	struct store_instance in;
	uint8_t *big, blob[300], got[300], d1[32], d2[32];
	size_t n;
	int rc, i;

	path_in_tmp(dir, sizeof(dir), "full");
	big = malloc(512 * 1024);
	if (b == NULL || big == NULL)
		exit(2);
	fill(big, 512 * 1024, 3);
	CHECK_RC(store_open_lmdb(dir, 256 * 1024, &s), 0);
	if (s == NULL)
		exit(2);
	inst_make(&in, "small", 5, 1);
	fill(blob, sizeof(blob), 1);
	CHECK_RC(store_batch_put_inst(b, &in), 0);
	CHECK_RC(store_batch_put_blob(b, in.uuid, 1, blob, sizeof(blob)), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	store_digest(s, probe, 1, d1);

	/* earlier writes, then one that cannot fit */
	in.perm_gen = 77;
	fill(blob, sizeof(blob), 2);
	CHECK_RC(store_batch_put_inst(b, &in), 0);
	CHECK_RC(store_batch_put_blob(b, in.uuid, 1, blob, sizeof(blob)), 0);
	CHECK_RC(store_batch_put_blob(b, in.uuid, 2, big, 512 * 1024), 0);
	CHECK_RC(store_batch_commit(s, b), VTPM_E_STORE_FULL);
	store_digest(s, probe, 1, d2);
	CHECK(memcmp(d1, d2, 32) == 0);
	CHECK_RC(store_inst_get(s, "small", &in), 0);
	CHECK(in.perm_gen == 5);

	/* many small batches until full: every failure is clean, the rest stays */
	store_batch_reset(b);
	rc = 0;
	for (i = 0; i < 200 && rc == 0; i++) {
		char name[16];
		struct store_instance x;

		snprintf(name, sizeof(name), "f%03d", i);
		inst_make(&x, name, (uint8_t)i, 0);
		x.uuid[15] = (uint8_t)(i >> 8);
		x.uuid[14] = 0x77;
		if (store_batch_put_inst(b, &x) != 0 ||
		    store_batch_put_blob(b, x.uuid, 1, big, 8192) != 0)
			exit(2);
		rc = store_batch_commit(s, b);
	}
	CHECK_RC(rc, VTPM_E_STORE_FULL);
	store_batch_reset(b);
	store_digest(s, probe, 1, d2);
	CHECK(memcmp(d1, d2, 32) == 0);

	/* still usable: freeing space lets a write through */
	for (i = 0; i < 200; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%03d", i);
		if (store_batch_del_inst(b, name) != 0)
			exit(2);
		if (store_batch_commit(s, b) != 0) {
			store_batch_reset(b);
			break;
		}
	}
	fill(blob, sizeof(blob), 9);
	CHECK_RC(store_batch_put_blob(b, in.uuid, 1, blob, sizeof(blob)), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK_RC(store_blob_get(s, in.uuid, 1, got, sizeof(got), &n), 0);
	CHECK(n == sizeof(blob) && memcmp(got, blob, n) == 0);

	store_close(s);
	store_batch_free(b);
	free(big);
}

/* Writes raw bytes into a store's table behind its back. */
/* Reads one value of a named database straight from LMDB (or an MDB_* code). */
static int
raw_get(const char *dir, const char *db, const void *key, size_t klen, void *out,
    size_t cap, size_t *len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_env_create(&env)) != 0)
		return rc;
	mdb_env_set_maxdbs(env, 8);
	if ((rc = mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0600)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0) {
		mdb_env_close(env);
		return rc;
	}
	k.mv_data = (void *)(uintptr_t)key;
	k.mv_size = klen;
	if ((rc = mdb_dbi_open(txn, db, 0, &dbi)) == 0 &&
	    (rc = mdb_get(txn, dbi, &k, &v)) == 0) {
		*len = v.mv_size;
		memcpy(out, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

static int
raw_put(const char *dir, const char *db, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_env_create(&env)) != 0)
		return rc;
	mdb_env_set_maxdbs(env, 8);
	if ((rc = mdb_env_open(env, dir, MDB_NOTLS, 0600)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) {
		mdb_env_close(env);
		return rc;
	}
	k.mv_data = (void *)(uintptr_t)key;
	k.mv_size = klen;
	v.mv_data = (void *)(uintptr_t)val;
	v.mv_size = vlen;
	if ((rc = mdb_dbi_open(txn, db, 0, &dbi)) != 0 ||
	    (rc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return rc;
	}
	rc = mdb_txn_commit(txn);
	mdb_env_close(env);
	return rc;
}

static void
test_store_corrupt(void)
{
	char dir[128];
	struct store *s = NULL;
	struct store_batch *b = store_batch_new();
	struct store_instance a, c, out;
	struct list_ctx lc;
	uint8_t rec[STORE_INST_RECORD_MAX], blob[32], got[32];
	size_t n;

	path_in_tmp(dir, sizeof(dir), "corrupt");
	CHECK_RC(store_open_lmdb_flags(dir, 0, STORE_F_NOSYNC, &s), 0);
	if (s == NULL || b == NULL)
		exit(2);
	inst_make(&a, "aa", 1, 1);
	inst_make(&c, "cc", 2, 1);
	fill(blob, sizeof(blob), 4);
	CHECK_RC(store_batch_put_inst(b, &a), 0);
	CHECK_RC(store_batch_put_inst(b, &c), 0);
	CHECK_RC(store_batch_put_blob(b, c.uuid, 1, blob, sizeof(blob)), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	store_close(s);

	/* cc: garbage; bb: a valid record naming someone else */
	CHECK(raw_put(dir, "inst", "cc", 2, "\x01\x02garbage", 9) == 0);
	CHECK(store_inst_encode(&a, rec, sizeof(rec), &n) == 0);
	CHECK(raw_put(dir, "inst", "bb", 2, rec, n) == 0);

	CHECK_RC(store_open_lmdb_flags(dir, 0, STORE_F_NOSYNC, &s), 0);
	if (s == NULL)
		exit(2);
	CHECK_RC(store_inst_get(s, "cc", &out), VTPM_E_FORMAT);
	CHECK(is_zero((const uint8_t *)&out, sizeof(out)));
	CHECK_RC(store_inst_get(s, "bb", &out), VTPM_E_FORMAT);
	CHECK_RC(store_inst_get(s, "aa", &out), 0);
	CHECK_RC(store_inst_find_identity(s, c.measurement, c.host_data, &out),
	    VTPM_E_FORMAT);
	memset(&lc, 0, sizeof(lc));
	CHECK_RC(store_inst_list(s, list_cb, &lc), VTPM_E_FORMAT);
	CHECK(lc.n == 1 && strcmp(lc.names[0], "aa") == 0);

	/* a corrupt record can be replaced, and deleted */
	CHECK_RC(store_batch_put_inst(b, &c), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK_RC(store_inst_get(s, "cc", &out), 0);
	CHECK(inst_equal(&out, &c));
	CHECK_RC(store_inst_find_identity(s, c.measurement, c.host_data, &out), 0);
	CHECK_RC(store_batch_del_inst(b, "bb"), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	memset(&lc, 0, sizeof(lc));
	CHECK_RC(store_inst_list(s, list_cb, &lc), 0);
	CHECK(lc.n == 2);
	CHECK_RC(store_blob_get(s, c.uuid, 1, got, sizeof(got), &n), 0);
	store_close(s);

	/* a kcv of the wrong size, and a store from a newer format */
	CHECK(raw_put(dir, "meta", "kcv", 3, "short", 5) == 0);
	CHECK_RC(store_open_lmdb_flags(dir, 0, STORE_F_NOSYNC, &s), 0);
	if (s != NULL) {
		uint8_t kcv[64];

		CHECK_RC(store_meta_get_kcv(s, kcv), VTPM_E_FORMAT);
		store_close(s);
		s = NULL;
	}
	CHECK(raw_put(dir, "meta", "format", 6, "\x00\x00\x00\x03", 4) == 0);
	CHECK_RC(store_open_lmdb_flags(dir, 0, STORE_F_NOSYNC, &s), VTPM_E_UNSUPPORTED);
	CHECK(s == NULL);
	/* the lock was released by the failed open; a store from before the
	 * commit log (format 1) opens and is raised to 2, which a vtpmd that
	 * knows only 1 refuses (it would not read commit.log) */
	CHECK(raw_put(dir, "meta", "format", 6, "\x00\x00\x00\x01", 4) == 0);
	CHECK_RC(store_open_lmdb_flags(dir, 0, STORE_F_NOSYNC, &s), 0);
	store_close(s);
	s = NULL;
	{
		uint8_t ver[4] = { 0 };
		size_t vlen = 0;

		CHECK(raw_get(dir, "meta", "format", 6, ver, sizeof(ver), &vlen) == 0);
		CHECK(vlen == 4 && memcmp(ver, "\x00\x00\x00\x02", 4) == 0);
	}
	CHECK_RC(store_open_lmdb_flags(dir, 0, STORE_F_NOSYNC, &s), 0);
	store_close(s);
	store_batch_free(b);
}

/* ---- the commit log (store_log.h) -------------------------------------- */

#define LOG_T_BLOB	96

/* The blob value written with generation g. */
static void
log_blob(uint8_t *p, uint64_t g)
{
	fill(p, LOG_T_BLOB, (uint8_t)(0x40 + g));
	p[0] = (uint8_t)g;
}

/* Commits instance in's state at generation g: record and permanent blob (the hot path). */
static int
log_put_gen(struct store *s, struct store_instance *in, uint64_t g)
{
	struct store_batch *b = store_batch_new();
	uint8_t blob[LOG_T_BLOB];
	int rc;

	if (b == NULL)
		exit(2);
	in->perm_gen = g;
	log_blob(blob, g);
	if ((rc = store_batch_put_blob(b, in->uuid, SEAL_BLOB_PERMANENT, blob, sizeof(blob))) == 0 &&
	    (rc = store_batch_put_inst(b, in)) == 0)
		rc = store_batch_commit(s, b);
	store_batch_free(b);
	return rc;
}

/* Creates instance "logi" (an LMDB commit) in a fresh durable store at dir. */
static struct store *
log_setup(const char *dir, struct store_instance *in)
{
	struct store *s = NULL;
	struct store_batch *b = store_batch_new();

	if (store_open_lmdb(dir, 0, &s) != 0 || b == NULL)
		exit(2);
	inst_make(in, "logi", 33, 1);
	in->perm_gen = 0;
	if (store_batch_put_inst(b, in) != 0 || store_batch_commit(s, b) != 0)
		exit(2);
	store_batch_free(b);
	return s;
}

/* The generation the store holds for "logi" (record and blob must agree), or -1. */
static long
log_gen_of(struct store *s)
{
	struct store_instance in, f;
	uint8_t got[LOG_T_BLOB + 8], want[LOG_T_BLOB];
	size_t n;

	if (store_inst_get(s, "logi", &in) != 0)
		return -1;
	if (in.perm_gen == 0)
		return 0;
	log_blob(want, in.perm_gen);
	if (store_blob_get(s, in.uuid, SEAL_BLOB_PERMANENT, got, sizeof(got), &n) != 0 ||
	    n != sizeof(want) || memcmp(got, want, n) != 0)
		return -2;
	if (store_inst_find_identity(s, in.measurement, in.host_data, &f) != 0 ||
	    f.perm_gen != in.perm_gen)
		return -3;
	return (long)in.perm_gen;
}

/* Reopens dir and returns the generation it holds (-1.. on error). */
static long
log_reopen_gen(const char *dir)
{
	struct store *s = NULL;
	long g;

	if (store_open_lmdb(dir, 0, &s) != 0)
		return -10;
	g = log_gen_of(s);
	store_close(s);
	return g;
}

/*
 * Runs a child that opens the store at dir, commits generations from..to
 * through the log (a checkpoint by store_inst_list() after ckpt_after if
 * nonzero) and _exit()s without closing: a crash.
 */
static void
log_crash_child(const char *dir, uint64_t from, uint64_t to, uint64_t ckpt_after)
{
	struct store_instance in;
	struct store *s = NULL;
	struct list_ctx lc;
	uint64_t g;
	pid_t pid;
	int status;

	fflush(stdout);
	if ((pid = fork()) == -1)
		exit(2);
	if (pid == 0) {
		if (store_open_lmdb(dir, 0, &s) != 0 || store_inst_get(s, "logi", &in) != 0)
			_exit(3);
		for (g = from; g <= to; g++) {
			if (log_put_gen(s, &in, g) != 0)
				_exit(4);
			if (g == ckpt_after) {
				memset(&lc, 0, sizeof(lc));
				if (store_inst_list(s, list_cb, &lc) != 0)
					_exit(5);
			}
		}
		_exit(0);	/* no store_close(): nothing checkpointed at exit */
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0);
}

static int
log_file_rw(const char *dir, int wr, void *p, size_t n, off_t off)
{
	char path[256];
	int fd;
	ssize_t r;

	snprintf(path, sizeof(path), "%s/commit.log", dir);
	if ((fd = open(path, wr ? O_WRONLY : O_RDONLY)) == -1)
		return -1;
	r = wr ? pwrite(fd, p, n, off) : pread(fd, p, n, off);
	close(fd);
	return r == (ssize_t)n ? 0 : -1;
}

/* The generation LMDB itself holds for "logi", read behind the store's back. */
static long
log_lmdb_gen(const char *dir)
{
	struct store_instance in;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	long g = -1;

	if (mdb_env_create(&env) != 0)
		return -1;
	mdb_env_set_maxdbs(env, 8);
	if (mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0600) == 0 &&
	    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0) {
		k.mv_data = "logi";
		k.mv_size = 4;
		if (mdb_dbi_open(txn, "inst", 0, &dbi) == 0 && mdb_get(txn, dbi, &k, &v) == 0 &&
		    store_inst_decode(v.mv_data, v.mv_size, &in) == 0)
			g = (long)in.perm_gen;
		mdb_txn_abort(txn);
	}
	mdb_env_close(env);
	return g;
}

static void
test_store_log(void)
{
	struct store_instance in, out;
	struct store_snapshot *snap;
	struct store_inst_view view;
	struct store_batch *b;
	struct store *s;
	struct list_ctx lc;
	char dir[128], magic[9] = { 0 };
	uint8_t blk[4096], *saved;
	size_t n;

	/* overlay reads: every point lookup, list and snapshot see a logged write */
	path_in_tmp(dir, sizeof(dir), "log-overlay");
	s = log_setup(dir, &in);
	CHECK_RC(log_put_gen(s, &in, 7), 0);
	CHECK(log_gen_of(s) == 7);
	CHECK(log_lmdb_gen(dir) == 0);	/* in the log only: the fast path was taken */
	CHECK_RC(store_snapshot_begin(s, &snap), 0);
	CHECK(log_lmdb_gen(dir) == 7);	/* the snapshot checkpointed first */
	if (snap != NULL) {
		CHECK_RC(store_snapshot_next(snap, NULL, &view), 0);
		CHECK(view.rec.perm_gen == 7 && view.perm_len == LOG_T_BLOB);
		store_snapshot_end(snap);
	}
	CHECK_RC(log_put_gen(s, &in, 8), 0);
	memset(&lc, 0, sizeof(lc));
	CHECK_RC(store_inst_list(s, list_cb, &lc), 0);
	CHECK(lc.n == 1 && log_lmdb_gen(dir) == 8);
	/* a create, a conflict and a delete go the LMDB way, after the log */
	CHECK_RC(log_put_gen(s, &in, 9), 0);
	b = store_batch_new();
	inst_make(&out, "logi", 34, 0);		/* same name, other uuid */
	CHECK_RC(store_batch_put_inst(b, &out), 0);
	CHECK_RC(store_batch_commit(s, b), VTPM_E_EXISTS);
	store_batch_reset(b);
	CHECK(log_gen_of(s) == 9);
	CHECK_RC(store_batch_del_blob(b, in.uuid, SEAL_BLOB_VOLATILE), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK(log_lmdb_gen(dir) == 9);
	store_close(s);
	CHECK(log_lmdb_gen(dir) == 9);

	/* a crash: every acknowledged record is replayed at open */
	path_in_tmp(dir, sizeof(dir), "log-crash");
	s = log_setup(dir, &in);
	store_close(s);
	log_crash_child(dir, 1, 20, 0);
	CHECK(log_lmdb_gen(dir) == 0);
	CHECK(log_file_rw(dir, 0, magic, 8, 4096) == 0 && strcmp(magic, "VTPMREC1") == 0);
	CHECK(log_reopen_gen(dir) == 20);
	CHECK(log_lmdb_gen(dir) == 20);		/* and checkpointed */
	CHECK(log_reopen_gen(dir) == 20);

	/* checkpoint, more commits, crash */
	log_crash_child(dir, 21, 30, 25);
	CHECK(log_lmdb_gen(dir) == 25);
	CHECK(log_reopen_gen(dir) == 30);

	/* a torn tail: the last record is dropped, the ones before survive */
	log_crash_child(dir, 31, 35, 0);	/* records 1..5 at 4096 * (1..5) */
	CHECK(log_file_rw(dir, 0, blk, 64, 5 * 4096) == 0);
	blk[40] ^= 0x01;
	CHECK(log_file_rw(dir, 1, blk, 64, 5 * 4096) == 0);
	CHECK(log_reopen_gen(dir) == 34);

	/*
	 * Leftovers: records of an epoch LMDB marked done are not replayed
	 * (a crash between a checkpoint and the reset), nor records of another
	 * epoch than the header's.
	 */
	log_crash_child(dir, 41, 45, 0);
	saved = malloc(8 * 4096);
	if (saved == NULL)
		exit(2);
	CHECK(log_file_rw(dir, 0, saved, 8 * 4096, 0) == 0);
	CHECK(log_reopen_gen(dir) == 45);	/* replayed, epoch closed */
	s = NULL;
	CHECK_RC(store_open_lmdb(dir, 0, &s), 0);
	if (s == NULL)
		exit(2);
	CHECK_RC(store_inst_get(s, "logi", &in), 0);
	in.perm_gen = 40;			/* an older generation, the LMDB way */
	CHECK_RC(store_batch_put_inst(b, &in), 0);
	CHECK_RC(store_batch_del_blob(b, in.uuid, SEAL_BLOB_VOLATILE), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	store_close(s);
	CHECK(log_file_rw(dir, 1, saved, 8 * 4096, 0) == 0);	/* header and records */
	CHECK(log_reopen_gen(dir) == -2);	/* gen 40 names a blob of gen 45: as written */
	CHECK(log_lmdb_gen(dir) == 40);
	CHECK(log_file_rw(dir, 1, saved + 4096, 7 * 4096, 4096) == 0);	/* records only */
	CHECK(log_lmdb_gen(dir) == 40);
	CHECK(log_reopen_gen(dir) == -2);
	CHECK(log_lmdb_gen(dir) == 40);
	free(saved);

	/*
	 * A failed append: the commit fails, later commits work (through LMDB
	 * until the log is reset), and the refused record is never replayed,
	 * even if its bytes did reach the disk.
	 */
	path_in_tmp(dir, sizeof(dir), "log-fail");
	s = log_setup(dir, &in);
	store_close(s);
	{
		pid_t pid;
		int status;

		fflush(stdout);
		if ((pid = fork()) == -1)
			exit(2);
		if (pid == 0) {
			char fdp[64], target[256];
			ssize_t r;
			int fd, ro;

			if (store_open_lmdb(dir, 0, &s) != 0 || log_put_gen(s, &in, 1) != 0)
				_exit(3);
			/* the log's descriptor now refuses writes */
			for (fd = 3; fd < 256; fd++) {
				snprintf(fdp, sizeof(fdp), "/proc/self/fd/%d", fd);
				r = readlink(fdp, target, sizeof(target) - 1);
				if (r > 0 && (target[r] = '\0', strstr(target, "commit.log") != NULL))
					break;
			}
			if (fd == 256 || (ro = open("/dev/null", O_RDONLY)) == -1 ||
			    dup2(ro, fd) == -1)
				_exit(4);
			if (log_put_gen(s, &in, 2) == 0)	/* refused */
				_exit(5);
			if (log_gen_of(s) != 1)
				_exit(6);
			if (log_put_gen(s, &in, 3) != 0 || log_gen_of(s) != 3)
				_exit(7);
			_exit(0);
		}
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0);
	}
	/* the refused record of generation 2, as if it had landed after record 1 */
	b = b != NULL ? b : store_batch_new();
	store_batch_reset(b);
	{
		uint8_t blob[LOG_T_BLOB], rec[8192], hdr[64];
		struct store_batch *rb = store_batch_new();

		in.perm_gen = 2;
		log_blob(blob, 2);
		CHECK(rb != NULL && store_batch_put_blob(rb, in.uuid, SEAL_BLOB_PERMANENT, blob,
		    sizeof(blob)) == 0 && store_batch_put_inst(rb, &in) == 0);
		CHECK(log_file_rw(dir, 0, hdr, sizeof(hdr), 0) == 0);
		n = store_log_encode(rb, be64_dec(hdr + 16), 2, rec, sizeof(rec));
		CHECK(n == 4096 && log_file_rw(dir, 1, rec, n, 2 * 4096) == 0);
		store_batch_free(rb);
	}
	CHECK(log_reopen_gen(dir) == 3);
	store_batch_free(b);
}

/* ---- key providers ---------------------------------------------------- */

static void
write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	int fd;

	unlink(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1 ||
	    write(fd, p, n) != (ssize_t)n || fchmod(fd, mode) == -1 || close(fd) == -1) {
		printf("FATAL: write %s: %s\n", path, strerror(errno));
		exit(2);
	}
}

static void
test_keyprov(void)
{
	char path[128], spec[160];
	struct keyprov *kp = NULL, *kp2 = NULL;
	struct seal_kek *k1 = NULL, *k2 = NULL;
	struct stat sb;
	uint8_t buf[33];

	path_in_tmp(path, sizeof(path), "root.key");
	snprintf(spec, sizeof(spec), "file:%s", path);

	CHECK_RC(keyprov_open(spec, 0, &kp), VTPM_E_NOTFOUND);
	CHECK(kp == NULL);
	CHECK_RC(keyprov_open(spec, 1, &kp), 0);
	CHECK(stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0777) == 0600 &&
	    sb.st_size == 32);
	CHECK(kp != NULL && strcmp(keyprov_spec(kp), spec) == 0);
	CHECK_RC(keyprov_get_root(kp, &k1), 0);
	CHECK(k1 != NULL && k1->version == 1);
	/* an existing file is used, not replaced, even with create_dev */
	CHECK_RC(keyprov_open(spec, 1, &kp2), 0);
	CHECK_RC(keyprov_get_root(kp2, &k2), 0);
	CHECK(k1 != NULL && k2 != NULL && memcmp(k1->kid, k2->kid, 8) == 0 &&
	    sodium_memcmp(k1->key, k2->key, 32) == 0);
	seal_kek_free(k2);
	k2 = NULL;
	keyprov_close(kp2);
	kp2 = NULL;

	/* the kid is the one seal derives from the same bytes */
	{
		int fd = open(path, O_RDONLY);
		uint8_t raw[32];

		CHECK(fd != -1 && read(fd, raw, 32) == 32);
		if (fd != -1)
			close(fd);
		CHECK_RC(seal_kek_new(raw, 1, &k2), 0);
		CHECK(k1 != NULL && k2 != NULL && memcmp(k1->kid, k2->kid, 8) == 0);
		sodium_memzero(raw, sizeof(raw));
		seal_kek_free(k2);
		k2 = NULL;
	}

	/* group/world-readable: refused at open and at fetch */
	CHECK(chmod(path, 0644) == 0);
	CHECK_RC(keyprov_open(spec, 0, &kp2), VTPM_E_INVAL);
	CHECK(kp2 == NULL);
	CHECK_RC(keyprov_get_root(kp, &k2), VTPM_E_INVAL);
	CHECK(k2 == NULL);
	CHECK(chmod(path, 0640) == 0);
	CHECK_RC(keyprov_open(spec, 1, &kp2), VTPM_E_INVAL);
	CHECK(chmod(path, 0400) == 0);
	CHECK_RC(keyprov_open(spec, 0, &kp2), 0);
	keyprov_close(kp2);
	kp2 = NULL;

	/* wrong sizes */
	fill(buf, sizeof(buf), 1);
	write_file(path, buf, 31, 0600);
	CHECK_RC(keyprov_open(spec, 0, &kp2), VTPM_E_INVAL);
	CHECK_RC(keyprov_get_root(kp, &k2), VTPM_E_INVAL);
	write_file(path, buf, 33, 0600);
	CHECK_RC(keyprov_open(spec, 1, &kp2), VTPM_E_INVAL);
	write_file(path, buf, 0, 0600);
	CHECK_RC(keyprov_open(spec, 0, &kp2), VTPM_E_INVAL);
	write_file(path, buf, 32, 0600);
	CHECK_RC(keyprov_get_root(kp, &k2), 0);
	CHECK(k2 != NULL && memcmp(k2->key, buf, 32) == 0);
	seal_kek_free(k2);
	k2 = NULL;

	/* not a regular file */
	snprintf(spec, sizeof(spec), "file:%s", tmpdir);
	CHECK_RC(keyprov_open(spec, 0, &kp2), VTPM_E_INVAL);

	/* specs */
	CHECK_RC(keyprov_open("nocolon", 0, &kp2), VTPM_E_INVAL);
	CHECK_RC(keyprov_open(":x", 0, &kp2), VTPM_E_INVAL);
	CHECK_RC(keyprov_open("file:", 0, &kp2), VTPM_E_INVAL);
	/* kbs: needs a resource, a TEE and evidence (keyprov_open_config; test_kbs.c) */
	CHECK_RC(keyprov_open("kbs:https://kbs.example:8080", 0, &kp2), VTPM_E_INVAL);
	CHECK_RC(keyprov_open("filex:/tmp/x", 0, &kp2), VTPM_E_UNSUPPORTED);
	CHECK_RC(keyprov_get_root(NULL, &k2), VTPM_E_INVAL);

	seal_kek_free(k1);
	keyprov_close(kp);
	keyprov_close(NULL);
}

/* ---- the pieces together ---------------------------------------------- */

static void
test_end_to_end(void)
{
	char dir[128], kpath[128], spec[160];
	struct keyprov *kp = NULL;
	struct seal_kek *kek = NULL, *other = kek_from_byte(0x99, 1);
	struct store *s = NULL;
	struct store_batch *b = store_batch_new();
	struct store_instance x, y, got;
	uint8_t kcv[64], state[1299], sealed[1299 + 64], old[1299 + 64], buf[1299 + 64];
	uint8_t plain[1299];
	uint8_t *dek = sodium_malloc(32), *dek2 = sodium_malloc(32);
	size_t n, nold, nb;

	if (b == NULL || dek == NULL || dek2 == NULL)
		exit(2);
	path_in_tmp(dir, sizeof(dir), "e2e");
	path_in_tmp(kpath, sizeof(kpath), "e2e.key");
	snprintf(spec, sizeof(spec), "file:%s", kpath);
	CHECK_RC(keyprov_open(spec, 1, &kp), 0);
	CHECK_RC(keyprov_get_root(kp, &kek), 0);
	if (kek == NULL)
		exit(2);

	/* first start: fresh store, record the key-check value */
	CHECK_RC(store_open_lmdb(dir, 0, &s), 0);
	if (s == NULL)
		exit(2);
	CHECK_RC(store_meta_get_kcv(s, kcv), VTPM_E_NOTFOUND);
	CHECK_RC(seal_kek_check_make(kek, kcv), 0);
	CHECK_RC(store_batch_put_kcv(b, kcv), 0);

	/* create two instances with their own data keys and first state */
	inst_make(&x, "vm-x", 1, 1);
	inst_make(&y, "vm-y", 2, 1);
	x.perm_gen = 1;
	y.perm_gen = 1;
	seal_dek_generate(dek);
	CHECK_RC(seal_dek_wrap(kek, x.uuid, dek, x.wrapped_dek), 0);
	fill(state, sizeof(state), 42);
	CHECK_RC(seal_blob(dek, kek->kid, x.uuid, SEAL_BLOB_PERMANENT, 1, state,
	    sizeof(state), sealed, sizeof(sealed), &n), 0);
	memcpy(old, sealed, n);
	nold = n;
	CHECK_RC(store_batch_put_inst(b, &x), 0);
	CHECK_RC(store_batch_put_blob(b, x.uuid, SEAL_BLOB_PERMANENT, sealed, n), 0);
	seal_dek_generate(dek2);
	CHECK_RC(seal_dek_wrap(kek, y.uuid, dek2, y.wrapped_dek), 0);
	CHECK_RC(seal_blob(dek2, kek->kid, y.uuid, SEAL_BLOB_PERMANENT, 1, state,
	    sizeof(state), sealed, sizeof(sealed), &n), 0);
	CHECK_RC(store_batch_put_inst(b, &y), 0);
	CHECK_RC(store_batch_put_blob(b, y.uuid, SEAL_BLOB_PERMANENT, sealed, n), 0);
	CHECK_RC(store_batch_commit(s, b), 0);

	/* the TPM wrote NV: generation 2 */
	state[0] ^= 1;
	x.perm_gen = 2;
	CHECK_RC(seal_blob(dek, kek->kid, x.uuid, SEAL_BLOB_PERMANENT, 2, state,
	    sizeof(state), sealed, sizeof(sealed), &n), 0);
	CHECK_RC(store_batch_put_blob(b, x.uuid, SEAL_BLOB_PERMANENT, sealed, n), 0);
	CHECK_RC(store_batch_put_inst(b, &x), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	store_close(s);
	s = NULL;
	sodium_memzero(dek, 32);

	/* restart: the key opens the store; a wrong key is refused up front */
	CHECK_RC(store_open_lmdb(dir, 0, &s), 0);
	if (s == NULL)
		exit(2);
	CHECK_RC(store_meta_get_kcv(s, kcv), 0);
	CHECK_RC(seal_kek_check_verify(kek, kcv), 0);
	CHECK_RC(seal_kek_check_verify(other, kcv), VTPM_E_WRONG_KEY);
	CHECK_RC(store_inst_find_identity(s, x.measurement, x.host_data, &got), 0);
	CHECK_RC(seal_dek_unwrap(other, got.uuid, got.wrapped_dek, dek), VTPM_E_WRONG_KEY);
	CHECK_RC(seal_dek_unwrap(kek, got.uuid, got.wrapped_dek, dek), 0);
	CHECK_RC(store_blob_get(s, got.uuid, SEAL_BLOB_PERMANENT, buf, sizeof(buf), &nb), 0);
	CHECK_RC(unseal_blob(dek, got.uuid, SEAL_BLOB_PERMANENT, got.perm_gen, buf, nb,
	    plain, sizeof(plain), &n), 0);
	CHECK(n == sizeof(state) && memcmp(plain, state, n) == 0);

	/* someone with write access to the store puts generation 1 back */
	CHECK_RC(store_batch_put_blob(b, x.uuid, SEAL_BLOB_PERMANENT, old, nold), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK_RC(store_blob_get(s, got.uuid, SEAL_BLOB_PERMANENT, buf, sizeof(buf), &nb), 0);
	CHECK_RC(unseal_blob(dek, got.uuid, SEAL_BLOB_PERMANENT, got.perm_gen, buf, nb,
	    plain, sizeof(plain), &n), VTPM_E_ROLLBACK);
	/* ... or y's blob in x's slot, or x's wrapped key in y's record */
	CHECK_RC(store_blob_get(s, y.uuid, SEAL_BLOB_PERMANENT, buf, sizeof(buf), &nb), 0);
	CHECK_RC(unseal_blob(dek, got.uuid, SEAL_BLOB_PERMANENT, 1, buf, nb,
	    plain, sizeof(plain), &n), VTPM_E_AUTH);
	CHECK_RC(seal_dek_unwrap(kek, y.uuid, x.wrapped_dek, dek2), VTPM_E_AUTH);

	/* delete x: crypto-shred */
	CHECK_RC(store_batch_del_inst(b, "vm-x"), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK_RC(store_blob_get(s, x.uuid, SEAL_BLOB_PERMANENT, buf, sizeof(buf), &nb),
	    VTPM_E_NOTFOUND);
	CHECK_RC(store_inst_get(s, "vm-x", &got), VTPM_E_NOTFOUND);

	store_close(s);
	store_batch_free(b);
	seal_kek_free(kek);
	seal_kek_free(other);
	keyprov_close(kp);
	sodium_free(dek);
	sodium_free(dek2);
}

/* Audit retention: the oldest records go, the newest stays, sequence numbers go on. */
static int
audit_seq_cb(uint64_t seq, const uint8_t *rec, size_t len, void *arg)
{
	uint64_t *seqs = arg;

	if (seqs[0] < 63)
		seqs[++seqs[0]] = seq;
	return 0;
}

static void
audit_put(struct store *s, int n)
{
	struct store_audit_record r;
	struct store_batch *b = store_batch_new();
	uint8_t enc[STORE_AUDIT_RECORD_MAX];
	size_t len;
	int i;

	for (i = 0; i < n; i++) {
		memset(&r, 0, sizeof(r));
		r.event = STORE_AUDIT_ATTACH;
		r.time_ms = 1000 + (uint64_t)i;
		r.actor_uid = STORE_AUDIT_NO_UID;
		snprintf(r.detail, sizeof(r.detail), "record %d", i);
		CHECK_RC(store_audit_encode(&r, enc, sizeof(enc), &len), 0);
		CHECK_RC(store_batch_put_audit(b, enc, len), 0);
	}
	CHECK_RC(store_batch_commit(s, b), 0);
	store_batch_free(b);
}

static void
test_audit_prune(void)
{
	char dir[128];
	struct store *s = NULL;
	struct store_batch *b;
	uint64_t first, last, count, seqs[64];

	path_in_tmp(dir, sizeof(dir), "audit-prune");
	CHECK_RC(store_open_lmdb(dir, 0, &s), 0);
	if (s == NULL)
		return;
	CHECK_RC(store_audit_bounds(s, &first, &last, &count), 0);
	CHECK(first == 0 && last == 0 && count == 0);
	audit_put(s, 10);
	CHECK_RC(store_audit_bounds(s, &first, &last, &count), 0);
	CHECK(first == 1 && last == 10 && count == 10);

	b = store_batch_new();
	CHECK_RC(store_batch_prune_audit(b, 0), VTPM_E_INVAL);
	CHECK_RC(store_batch_prune_audit(b, 4), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK_RC(store_audit_bounds(s, &first, &last, &count), 0);
	CHECK(first == 5 && last == 10 && count == 6);

	/* pruning "everything" keeps the newest, and the next record is 11 */
	store_batch_reset(b);
	CHECK_RC(store_batch_prune_audit(b, 1000), 0);
	CHECK_RC(store_batch_commit(s, b), 0);
	CHECK_RC(store_audit_bounds(s, &first, &last, &count), 0);
	CHECK(first == 10 && last == 10 && count == 1);
	audit_put(s, 2);
	seqs[0] = 0;
	CHECK_RC(store_audit_list(s, 1, audit_seq_cb, seqs), 0);
	CHECK(seqs[0] == 3 && seqs[1] == 10 && seqs[2] == 11 && seqs[3] == 12);

	store_batch_free(b);
	store_close(s);
	CHECK_RC(store_open_lmdb(dir, 0, &s), 0);
	CHECK_RC(store_audit_bounds(s, &first, &last, &count), 0);
	CHECK(first == 10 && last == 12 && count == 3);	/* durable across reopen */
	store_close(s);
}

int
main(void)
{
	const char *v = getenv("VTPM_TEST_VERBOSE");

	log_init("test_storage", v != NULL && *v == '1' ? LOG_LVL_DEBUG : LOG_LVL_ERR);
	if (seal_init() != 0) {
		printf("FATAL: seal_init\n");
		return 2;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vtpmd-test-storage.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		printf("FATAL: mkdtemp: %s\n", strerror(errno));
		return 2;
	}

	test_kek_kid();
	test_seal_roundtrip();
	test_seal_format_doc();
	test_seal_bindings();
	test_dek_wrap();
	test_kcv();
	test_names();
	test_record_codec();
	test_store_basic();
	test_audit_prune();
	test_store_atomic();
	test_store_full();
	test_store_corrupt();
	test_store_log();
	test_keyprov();
	test_end_to_end();

	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	printf("storage: %d passed, %d failed\n", n_pass, n_fail);
	return n_fail == 0 ? 0 : 1;
}
