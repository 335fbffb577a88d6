/*
 * test_store_etcd.c: the etcd backend against a live etcd (URL in argv[1];
 * tests/fleet/test_fleet.sh starts the cluster and runs it): the store
 * semantics LMDB has (records, ident index, blobs, conflicts change nothing,
 * delete takes the blobs, snapshots, audit order), plus ownership: a claim
 * names its owner to others, unclaimed writes of an owned instance are
 * refused, a writer whose ownership is gone is fenced, release frees it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "store.h"
#include "../check.h"



static void
fill(uint8_t *p, size_t n, uint8_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
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
	in->pcr_banks = 0x6;
	fill(in->wrapped_dek, sizeof(in->wrapped_dek), (uint8_t)(seed + 4));
}

static int
list_count(const struct store_instance *in, void *arg)
{
	(void)in;
	(*(int *)arg)++;
	return 0;
}

static int
audit_cb(uint64_t seq, const uint8_t *rec, size_t len, void *arg)
{
	uint64_t *last = arg;

	if (seq != *last + 1 || len == 0 || rec == NULL)
		return 1;
	*last = seq;
	return 0;
}

static int
open_store(const char *url, const char *node, struct store **s)
{
	struct store_etcd_cfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoints = url;
	cfg.node = node;
	cfg.lease_ttl = 3;
	cfg.timeout_ms = 3000;
	return store_open_etcd(&cfg, s);
}

int
main(int argc, char **argv)
{
	struct store *a = NULL, *b = NULL;
	struct store_batch *bt;
	struct store_instance x, y, out;
	struct store_snapshot *snap;
	struct store_inst_view view;
	struct store_etcd_cfg bad;
	uint8_t blob[300], got[300], rec[STORE_AUDIT_RECORD_MAX];
	char owner[STORE_ETCD_OWNER_MAX + 1], self[STORE_ETCD_OWNER_MAX + 1];
	char nx[32], ny[32];
	struct store_audit_record ar;
	uint64_t last;
	int64_t lease, mylease;
	size_t n, cnt;
	int count, i;

	log_init("test_store_etcd", LOG_LVL_ERR);
	if (argc != 2 || sodium_init() < 0) {
		fprintf(stderr, "usage: test_store_etcd http://127.0.0.1:PORT[,...]\n");
		return 2;
	}
	/* names unique per run: the cluster may hold other instances */
	snprintf(nx, sizeof(nx), "ut-x-%08x", randombytes_random());
	snprintf(ny, sizeof(ny), "ut-y-%08x", randombytes_random());

	/* configuration checks */
	memset(&bad, 0, sizeof(bad));
	bad.endpoints = "http://10.1.2.3:2379";
	CHECK_RC(store_open_etcd(&bad, &a), VTPM_E_INVAL);	/* plain http off loopback */
	bad.endpoints = "ftp://127.0.0.1:1";
	CHECK_RC(store_open_etcd(&bad, &a), VTPM_E_INVAL);
	bad.endpoints = "http://127.0.0.1:1";
	bad.lease_ttl = 1;
	CHECK_RC(store_open_etcd(&bad, &a), VTPM_E_INVAL);
	bad.lease_ttl = 0;
	bad.timeout_ms = 300;
	CHECK(store_open_etcd(&bad, &a) == VTPM_E_IO && a == NULL);	/* nobody listens */

	CHECK_RC(open_store(argv[1], "ut-a", &a), 0);
	CHECK_RC(open_store(argv[1], "ut-b", &b), 0);
	if (a == NULL || b == NULL || (bt = store_batch_new()) == NULL)
		return 2;
	CHECK(strcmp(store_backend_name(a), "etcd") == 0);
	store_fleet_self(a, self, sizeof(self), &mylease);
	CHECK(strncmp(self, "ut-a/", 5) == 0 && mylease > 0);

	/* records, ident, blobs; a second handle sees them */
	inst_make(&x, nx, 10, 1);
	inst_make(&y, ny, 20, 0);
	fill(blob, sizeof(blob), 3);
	CHECK_RC(store_batch_put_inst(bt, &x), 0);
	CHECK_RC(store_batch_put_inst(bt, &y), 0);
	CHECK_RC(store_batch_put_blob(bt, x.uuid, SEAL_BLOB_PERMANENT, blob, 250), 0);
	CHECK_RC(store_batch_put_blob(bt, x.uuid, SEAL_BLOB_VOLATILE, blob + 1, 100), 0);
	CHECK_RC(store_batch_commit(a, bt), 0);
	CHECK_RC(store_inst_get(b, nx, &out), 0);
	CHECK(out.perm_gen == 10 && memcmp(out.uuid, x.uuid, 16) == 0);
	CHECK_RC(store_inst_find_identity(b, x.measurement, x.host_data, &out), 0);
	CHECK(strcmp(out.name, nx) == 0);
	CHECK_RC(store_blob_get(b, x.uuid, SEAL_BLOB_PERMANENT, got, sizeof(got), &n), 0);
	CHECK(n == 250 && memcmp(got, blob, 250) == 0);
	CHECK_RC(store_blob_get(b, x.uuid, SEAL_BLOB_PERMANENT, got, 10, &n), VTPM_E_TOOBIG);
	CHECK(n == 250);
	count = 0;
	CHECK_RC(store_inst_list(b, list_count, &count), 0);
	CHECK(count >= 2);

	/* conflicts change nothing: same name other uuid, identity taken */
	inst_make(&out, nx, 11, 0);
	CHECK_RC(store_batch_put_inst(bt, &out), 0);
	CHECK_RC(store_batch_commit(b, bt), VTPM_E_EXISTS);
	CHECK(store_batch_count(bt) == 1);
	store_batch_reset(bt);
	inst_make(&out, ny, 20, 0);
	memcpy(out.measurement, x.measurement, sizeof(out.measurement));
	memcpy(out.host_data, x.host_data, sizeof(out.host_data));
	CHECK_RC(store_batch_put_blob(bt, out.uuid, SEAL_BLOB_PERMANENT, blob, 5), 0);
	CHECK_RC(store_batch_put_inst(bt, &out), 0);
	CHECK_RC(store_batch_commit(b, bt), VTPM_E_EXISTS);
	store_batch_reset(bt);
	CHECK_RC(store_blob_get(a, out.uuid, SEAL_BLOB_PERMANENT, got, sizeof(got), &n),
	    VTPM_E_NOTFOUND);
	CHECK_RC(store_inst_get(a, ny, &out), 0);
	CHECK(store_ident_is_empty(out.measurement, out.host_data));

	/* ownership: a claims x; b is refused, naming a */
	CHECK_RC(store_inst_claim(a, nx, owner, sizeof(owner)), 0);
	CHECK_RC(store_inst_claim(a, nx, owner, sizeof(owner)), 0);	/* again: still ours */
	CHECK_RC(store_inst_claim(b, nx, owner, sizeof(owner)), VTPM_E_BUSY);
	CHECK(strcmp(owner, self) == 0);
	CHECK_RC(store_inst_owner(b, nx, owner, sizeof(owner), &lease), 0);
	CHECK(strcmp(owner, self) == 0 && lease == mylease);
	CHECK_RC(store_inst_owner(b, ny, owner, sizeof(owner), &lease), VTPM_E_NOTFOUND);
	/* the owner writes; a non-owner's write of the record is refused */
	for (i = 0; i < 3; i++) {
		x.perm_gen++;
		CHECK_RC(store_batch_put_blob(bt, x.uuid, SEAL_BLOB_PERMANENT, blob + i, 200), 0);
		CHECK_RC(store_batch_put_inst(bt, &x), 0);
		CHECK_RC(store_batch_commit(a, bt), 0);
	}
	out = x;
	out.perm_gen = 99;
	CHECK_RC(store_batch_put_inst(bt, &out), 0);
	CHECK_RC(store_batch_commit(b, bt), VTPM_E_BUSY);
	store_batch_reset(bt);
	CHECK_RC(store_batch_del_inst(bt, nx), 0);
	CHECK_RC(store_batch_commit(b, bt), VTPM_E_BUSY);
	store_batch_reset(bt);
	CHECK_RC(store_inst_get(b, nx, &out), 0);
	CHECK(out.perm_gen == 13);

	/* snapshot: one revision, later writes unseen */
	CHECK_RC(store_snapshot_begin(b, &snap), 0);
	x.perm_gen++;
	CHECK_RC(store_batch_put_inst(bt, &x), 0);
	CHECK_RC(store_batch_commit(a, bt), 0);
	CHECK_RC(store_snapshot_info(snap, &cnt, NULL), 0);
	CHECK(cnt >= 2);
	{
		char after[STORE_NAME_MAX + 1] = "";
		int seen = 0, rc;

		while ((rc = store_snapshot_next(snap, after, &view)) == 0) {
			if (strcmp(view.rec.name, nx) == 0) {
				seen = 1;
				CHECK(view.rec.perm_gen == 13 && view.perm != NULL &&
				    view.perm_len == 200 && memcmp(view.perm, blob + 2, 200) == 0);
			}
			memcpy(after, view.rec.name, sizeof(after));
		}
		CHECK_RC(rc, VTPM_E_NOTFOUND);
		CHECK(seen);
	}
	store_snapshot_end(snap);

	/* a write of a record changed behind the owner is fenced, and stays so */
	{
		struct store *a2 = NULL;

		/* b takes over after a's ownership key is gone (as on lease expiry) */
		store_inst_release(a, nx);
		CHECK_RC(store_inst_claim(b, nx, owner, sizeof(owner)), 0);
		x.perm_gen++;
		CHECK_RC(store_batch_put_inst(bt, &x), 0);
		CHECK_RC(store_batch_commit(a, bt), VTPM_E_BUSY);	/* a no longer claims */
		store_batch_reset(bt);
		/* a third handle claims y and loses it: its next write is fenced */
		CHECK_RC(open_store(argv[1], "ut-c", &a2), 0);
		if (a2 != NULL) {
			CHECK_RC(store_inst_claim(a2, ny, owner, sizeof(owner)), 0);
			/* another owner's key replaces a2's: simulate takeover by b */
			store_inst_release(a2, ny);
			CHECK_RC(store_inst_claim(a2, ny, owner, sizeof(owner)), 0);
			CHECK_RC(store_inst_claim(b, ny, owner, sizeof(owner)), VTPM_E_BUSY);
			store_close(a2);	/* revokes a2's lease: its owner keys go */
			CHECK_RC(store_inst_claim(b, ny, owner, sizeof(owner)), 0);
		}
		store_inst_release(b, ny);
		store_inst_release(b, nx);
		CHECK_RC(store_inst_owner(a, nx, owner, sizeof(owner), &lease), VTPM_E_NOTFOUND);
	}

	/* audit records are numbered in commit order across handles */
	memset(&ar, 0, sizeof(ar));
	ar.event = STORE_AUDIT_ATTACH;
	snprintf(ar.name, sizeof(ar.name), "%s", nx);
	CHECK_RC(store_audit_encode(&ar, rec, sizeof(rec), &n), 0);
	for (i = 0; i < 3; i++) {
		CHECK_RC(store_batch_put_audit(bt, rec, n), 0);
		CHECK_RC(store_batch_commit(i % 2 ? a : b, bt), 0);
	}
	last = 0;
	CHECK_RC(store_audit_list(a, 1, audit_cb, &last), 0);
	CHECK(last >= 3);

	/* delete takes record, ident and blobs */
	CHECK_RC(store_batch_del_inst(bt, nx), 0);
	CHECK_RC(store_batch_del_inst(bt, ny), 0);
	CHECK_RC(store_batch_commit(a, bt), 0);
	CHECK_RC(store_inst_get(b, nx, &out), VTPM_E_NOTFOUND);
	CHECK_RC(store_inst_find_identity(b, x.measurement, x.host_data, &out), VTPM_E_NOTFOUND);
	CHECK_RC(store_blob_get(b, x.uuid, SEAL_BLOB_PERMANENT, got, sizeof(got), &n),
	    VTPM_E_NOTFOUND);
	CHECK_RC(store_blob_get(b, x.uuid, SEAL_BLOB_VOLATILE, got, sizeof(got), &n),
	    VTPM_E_NOTFOUND);

	store_batch_free(bt);
	store_close(a);
	store_close(b);
	printf("store_etcd: %d passed, %d failed\n", n_pass, n_fail);
	return n_fail == 0 ? 0 : 1;
}
