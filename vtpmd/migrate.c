/*
 * migrate.c: moving one instance to another vtpmd (ops.h): export writes
 * the instance with its data key rewrapped by a migration key and fences it
 * here in the same transaction that records the export; import checks the
 * export's MAC, opens everything, refuses an export it has seen before, and
 * rewraps the data key with this vtpmd's root key. Trusts the migration key
 * provider for bytes only (the key is derived, never used raw); trusts
 * nothing in an export file (backup.c's checks run first).
 *
 * The migration secret comes from the key broker (--migration-key-resource
 * REPO/TYPE/TAG with --key-provider kbs:URL): fetched on demand, in an
 * attested session of its own on keys.c's fetch thread, when an export or
 * import needs it, and wiped once the job derived its keys (an export or
 * import waits in PH_KEYS meanwhile; the event loop keeps serving). Both
 * vtpmds get the same resource from the broker after attestation. For
 * development, --migration-key-provider file:PATH (with --dev defaulting
 * to file:STATE_DIR/dev-migration.key, created if missing) reads a secret
 * both hosts hold. migrate_keys() is the one place that fetches.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cursor.h"
#include "endorse.h"
#include "keyprov.h"
#include "log.h"
#include "ops_job.h"
#include "parent.h"

#define EXPORT_STOP_SEC		15	/* a worker gets this long to save and stop */

static const char *mig_spec;	/* NULL: export and import are off */
static const char *mig_resource;	/* kbs: the broker's resource, or NULL */
static struct keyprov *mig_kp;	/* opened on first use */
static char mig_spec_buf[4200];

/* Checks the migration key provider's spec; the provider is opened on first use. */
void
migrate_init(void)
{
	const char *spec = V->cfg.migration_key_provider;

	if (V->cfg.migration_key_resource != NULL) {
		mig_resource = V->cfg.migration_key_resource;
		mig_spec = V->cfg.key_provider;
		log_info("migration key: resource %s from %s (fetched after attestation when "
		    "an export or import needs it)", mig_resource, mig_spec);
		return;
	}
	if (spec == NULL && V->cfg.dev) {
		snprintf(mig_spec_buf, sizeof(mig_spec_buf), "file:%s/dev-migration.key",
		    V->cfg.state_dir);
		spec = mig_spec_buf;
	}
	if (spec == NULL) {
		log_info("no --migration-key-provider: export and import are off");
		return;
	}
	if (strncmp(spec, "kbs:", 4) == 0)
		fatalx("--migration-key-provider %s: for a broker-held migration key use "
		    "--migration-key-resource REPO/TYPE/TAG (same broker as --key-provider)",
		    spec);
	if (strncmp(spec, "file:", 5) == 0 && !V->cfg.allow_key_file)
		fatalx("--migration-key-provider file: is refused without --dev or "
		    "--allow-key-file: a local key file is not released by attestation");
	if (strncmp(spec, "file:", 5) != 0 || spec[5] == '\0')
		fatalx("--migration-key-provider %s: want file:PATH", spec);
	mig_spec = spec;
	log_info("migration key from %s (read when an export or import needs it%s)", spec,
	    V->cfg.dev ? "; --dev creates it if missing" : "");
}

int
migrate_keys(struct seal_kek **wrap, uint8_t *mac_key, char *why, size_t whylen)
{
	struct seal_kek *secret = NULL;
	int rc;

	*wrap = NULL;
	if (mig_spec == NULL) {
		snprintf(why, whylen, "no migration key: start vtpmd with "
		    "--migration-key-resource REPO/TYPE/TAG (or, for development, "
		    "--migration-key-provider file:PATH)");
		return VTPM_E_UNSUPPORTED;
	}
	if (mig_resource != NULL) {
		/* VTPM_E_AGAIN: the fetch runs; the caller waits in PH_KEYS and asks again */
		if ((rc = keys_fetch_resource(mig_resource, &secret, why, whylen)) != 0)
			return rc;
		rc = bkf_migration_keys(secret, wrap, mac_key);
		seal_kek_free(secret);		/* wipes: only the derived keys stay, in the job */
		if (rc != 0)
			snprintf(why, whylen, "cannot derive the migration keys: %s",
			    vtpm_strerror(rc));
		return rc;
	}
	if (mig_kp == NULL && (rc = keyprov_open(mig_spec, V->cfg.dev, &mig_kp)) != 0) {
		mig_kp = NULL;
		snprintf(why, whylen, "migration key %s: %s", mig_spec, vtpm_strerror(rc));
		return rc;
	}
	if ((rc = keyprov_get_root(mig_kp, &secret)) != 0) {
		snprintf(why, whylen, "migration key %s: %s", keyprov_spec(mig_kp),
		    vtpm_strerror(rc));
		return rc;
	}
	rc = bkf_migration_keys(secret, wrap, mac_key);
	seal_kek_free(secret);
	if (rc != 0)
		snprintf(why, whylen, "cannot derive the migration keys: %s", vtpm_strerror(rc));
	return rc;
}

/*
 * The transfer table's values (store.h, "xfer"): what moved, when.
 *   EXPORTED/IMPORTED: u64 time | 16 uuid | u64 perm_gen | u64 vol_gen | u8 n | name
 *   GONE:              u64 time | 16 export id
 */
static int
xfer_value(const struct store_instance *rec, uint8_t *out, size_t cap, size_t *len)
{
	struct wbuf w;
	size_t n = strlen(rec->name);

	wbuf_init(&w, out, cap);
	wbuf_put_u64(&w, (uint64_t)time(NULL));
	wbuf_put_bytes(&w, rec->uuid, SEAL_UUID_LEN);
	wbuf_put_u64(&w, rec->perm_gen);
	wbuf_put_u64(&w, rec->vol_gen);
	wbuf_put_u8(&w, (uint8_t)n);
	wbuf_put_bytes(&w, rec->name, n);
	return wbuf_end(&w, len);
}

/* ---- export ----------------------------------------------------------- */

int
migrate_admin_export(json_object *req, int conn, int *passfd, json_object **reply)
{
	struct store_instance rec;
	json_object *v;
	const char *name = NULL;
	struct job *j;
	char why[300];
	int rc;

	if (json_object_object_get_ex(req, "name", &v) && json_object_is_type(v, json_type_string))
		name = json_object_get_string(v);
	rc = VTPM_E_INVAL;
	if (name == NULL || store_inst_name_check(name) != 0)
		snprintf(why, sizeof(why), "export needs \"name\": an instance name");
	else if (mig_spec == NULL)
		snprintf(why, sizeof(why), "no migration key: start vtpmd with "
		    "--migration-key-resource REPO/TYPE/TAG (or, for development, "
		    "--migration-key-provider file:PATH)");
	else if (!OPS_KEYED())
		snprintf(why, sizeof(why), "%s", OPS_NOT_KEYED);
	else if (job_check_writable(*passfd, why, sizeof(why)) != 0)
		;
	else if (batch_commit(), (rc = store_inst_get(V->store, name, &rec)) != 0)
		snprintf(why, sizeof(why), "no instance %s: %s", name, vtpm_strerror(rc));
	else if (rec.flags & STORE_INST_FENCED)
		snprintf(why, sizeof(why), "instance %s is fenced: it was exported already",
		    name);
	else
		rc = 0;
	if (rc != 0) {
		*reply = json_object_new_object();
		json_object_object_add(*reply, "ok", json_object_new_boolean(0));
		json_object_object_add(*reply, "error", json_object_new_string(why));
		return OPS_REPLIED;
	}
	j = job_new(JOB_EXPORT, "export", conn, *passfd);
	*passfd = -1;
	memcpy(j->name, name, strlen(name) + 1);
	j->total = 1;
	/* attaches wait from now (ops_attach_blocked()); first the migration key */
	j->phase = PH_KEYS;
	job_start(j);
	log_info("export of %s started", name);
	return OPS_TAKEN;
}

/*
 * PH_KEYS of an export: the migration keys first (from the broker this may
 * take a few round trips; the instance keeps its worker meanwhile), then the
 * live worker is asked to save and stop. A refused key changes nothing.
 */
static void
export_begin(struct job *j)
{
	char why[300];
	int rc;

	if (j->file_kek == NULL &&
	    (rc = migrate_keys(&j->file_kek, j->mac_key, why, sizeof(why))) != 0) {
		if (rc == VTPM_E_AGAIN && job_keys_wait(j, why) == 0)
			return;		/* the broker fetch runs: back in PH_KEYS */
		job_fail(j, rc, "%s%s; nothing was changed", rc == VTPM_E_AGAIN ?
		    "no migration key in time: " : "", why);
		return;
	}
	j->stop_deadline = time(NULL) + EXPORT_STOP_SEC;
	j->phase = inst_end_worker(j->name, 1, "instance exported") ? PH_STOP : PH_APPLY;
	if (j->phase == PH_STOP)
		log_info("export of %s: waiting for its worker to save its state and stop",
		    j->name);
}

static void
export_apply(struct job *j)
{
	struct store_instance rec, out;
	struct bkf_entry e;
	struct seal_kek *wrap = NULL;
	struct store_batch *b = NULL;
	uint8_t recb[STORE_INST_RECORD_MAX], val[STORE_XFER_VALUE_MAX], gone[24];
	uint8_t *perm = NULL, *vol = NULL, endo[ENDORSE_SEALED_MAX];
	size_t rlen, plen = 0, vlen = 0, elen = 0, xlen;
	char why[300], id[2 * BKF_ID_LEN + 1];
	json_object *reply, *o;
	int rc;

	batch_commit();		/* the worker's last state is in the store */
	if ((rc = store_inst_get(V->store, j->name, &rec)) != 0) {
		job_fail(j, rc, "no instance %s: %s", j->name, vtpm_strerror(rc));
		return;
	}
	if (rec.flags & STORE_INST_FENCED) {
		job_fail(j, VTPM_E_FENCED, "instance %s is fenced: it was exported already",
		    j->name);
		return;
	}
	if (!OPS_KEYED()) {
		job_fail(j, VTPM_E_AGAIN, "%s", OPS_NOT_KEYED);
		return;
	}
	wrap = j->file_kek;	/* export_begin() derived it; the job owns it */
	/* the data key, rewrapped for the destination: never in clear outside guarded memory */
	out = rec;
	out.flags &= ~STORE_INST_FENCED;
	if ((rc = seal_dek_unwrap(V->kek, rec.uuid, rec.wrapped_dek, j->dek)) == 0)
		rc = seal_dek_wrap(wrap, out.uuid, j->dek, out.wrapped_dek);
	sodium_memzero(j->dek, SEAL_KEY_LEN);
	if (rc != 0) {
		snprintf(why, sizeof(why), "instance %s: its data key cannot be rewrapped: %s",
		    j->name, vtpm_strerror(rc));
		goto fail;
	}
	if ((rc = store_inst_encode(&out, recb, sizeof(recb), &rlen)) != 0) {
		snprintf(why, sizeof(why), "instance %s: record not encoded", j->name);
		goto fail;
	}
	if ((perm = malloc(STORE_BLOB_MAX)) == NULL || (vol = malloc(STORE_BLOB_MAX)) == NULL)
		fatalx("out of memory");
	if ((rec.perm_gen != 0 && (rc = store_blob_get(V->store, rec.uuid, SEAL_BLOB_PERMANENT,
	    perm, STORE_BLOB_MAX, &plen)) != 0) ||
	    (rec.vol_gen != 0 && (rc = store_blob_get(V->store, rec.uuid, SEAL_BLOB_VOLATILE,
	    vol, STORE_BLOB_MAX, &vlen)) != 0)) {
		snprintf(why, sizeof(why), "instance %s: its state is missing from the store: %s",
		    j->name, vtpm_strerror(rc));
		goto fail;
	}
	/* its endorsement record, if it has one (instances made before it have none) */
	rc = store_blob_get(V->store, rec.uuid, SEAL_BLOB_ENDORSEMENT, endo, sizeof(endo), &elen);
	if (rc == VTPM_E_NOTFOUND)
		elen = 0;
	else if (rc != 0) {
		snprintf(why, sizeof(why), "instance %s: its endorsement record is unreadable: %s",
		    j->name, vtpm_strerror(rc));
		goto fail;
	}

	/* the file: head, one entry, one section, trailer; then durable */
	j->head.version = BKF_VERSION;
	j->head.kind = BKF_KIND_EXPORT;
	j->head.created = (uint64_t)time(NULL);
	snprintf(j->head.vtpmd_version, sizeof(j->head.vtpmd_version), "%s", VTPM_VERSION);
	randombytes_buf(j->head.id, sizeof(j->head.id));
	memcpy(j->head.kid, wrap->kid, SEAL_KID_LEN);
	j->head.key_version = wrap->version;
	j->head.count = 1;
	memset(&e, 0, sizeof(e));
	memcpy(e.name, out.name, sizeof(e.name));
	memcpy(e.uuid, out.uuid, SEAL_UUID_LEN);
	e.perm_gen = out.perm_gen;
	e.vol_gen = out.vol_gen;
	e.flags = out.flags;
	memcpy(e.kid, wrap->kid, SEAL_KID_LEN);
	e.offset = bkf_data_offset(1);
	if ((rc = bkf_section_measure_endo(recb, rlen, plen ? perm : NULL, plen,
	    vlen ? vol : NULL, vlen, elen ? endo : NULL, elen, &e.length, e.sum)) != 0) {
		snprintf(why, sizeof(why), "instance %s: state too large to export", j->name);
		goto fail;
	}
	j->head.data_len = e.length;
	if ((rc = bkf_writer_init(&j->w, j->mac_key, job_write_out, j)) == 0) {
		j->w_live = 1;
		if ((rc = bkf_write_head(&j->w, &j->head)) == 0 &&
		    (rc = bkf_write_entry(&j->w, 0, &e)) == 0 &&
		    (rc = bkf_write_section_endo(&j->w, recb, rlen, plen ? perm : NULL, plen,
		    vlen ? vol : NULL, vlen, elen ? endo : NULL, elen)) == 0)
			rc = bkf_write_trailer(&j->w);
	}
	if (rc == 0 && fdatasync(j->fd) != 0)
		rc = VTPM_E_IO;
	if (rc != 0) {
		snprintf(why, sizeof(why), "writing the export: %s", rc == VTPM_E_IO ?
		    strerror(errno) : vtpm_strerror(rc));
		goto fail;
	}

	/* fence here, record the export, audit: one transaction */
	attest_hex_encode(j->head.id, BKF_ID_LEN, id);
	rec.flags |= STORE_INST_FENCED;
	memcpy(gone, j->head.id, BKF_ID_LEN);
	be64_enc(gone + BKF_ID_LEN, (uint64_t)time(NULL));
	if ((b = store_batch_new()) == NULL)
		fatalx("out of memory");
	if ((rc = xfer_value(&rec, val, sizeof(val), &xlen)) != 0 ||
	    (rc = store_batch_put_inst(b, &rec)) != 0 ||
	    (rc = store_batch_put_xfer(b, STORE_XFER_EXPORTED, j->head.id, val, xlen)) != 0 ||
	    (rc = store_batch_put_xfer(b, STORE_XFER_GONE, rec.uuid, gone, sizeof(gone))) != 0 ||
	    (rc = audit_log(b, STORE_AUDIT_EXPORT, 0, 0, j->uid, rec.name, rec.uuid, NULL,
	    "export %s (generation %llu/%llu); fenced here", id,
	    (unsigned long long)rec.perm_gen, (unsigned long long)rec.vol_gen)) != 0 ||
	    (rc = store_batch_commit(V->store, b)) != 0) {
		snprintf(why, sizeof(why), "the fence was not committed, so the export is void "
		    "(vtpmctl discards the file): %s", vtpm_strerror(rc));
		goto fail;
	}
	log_info("instance %s exported (export %s) and fenced", rec.name, id);
	reply = json_object_new_object();
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "name", json_object_new_string(rec.name));
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)rec.perm_gen));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)j->bytes));
	json_object_object_add(reply, "export", o);
	store_batch_free(b);
	free(perm);
	free(vol);
	job_finish(j, reply);
	return;

fail:
	store_batch_free(b);
	free(perm);
	free(vol);
	(void)audit_log(NULL, STORE_AUDIT_EXPORT, rc, 0, j->uid, j->name, rec.uuid, NULL,
	    "export failed: %s", why);
	job_fail(j, rc, "%s", why);
}

/* ---- import ----------------------------------------------------------- */

int
migrate_admin_import(json_object *req, int conn, int *passfd, json_object **reply)
{
	char why[300];
	int rc = VTPM_E_INVAL;

	if (mig_spec == NULL)
		snprintf(why, sizeof(why), "no migration key: start vtpmd with "
		    "--migration-key-resource REPO/TYPE/TAG (or, for development, "
		    "--migration-key-provider file:PATH)");
	else if (!OPS_KEYED())
		snprintf(why, sizeof(why), "%s", OPS_NOT_KEYED);
	else
		rc = job_start_read(JOB_IMPORT, "import", req, conn, passfd, why, sizeof(why));
	if (rc != 0) {
		*reply = json_object_new_object();
		json_object_object_add(*reply, "ok", json_object_new_boolean(0));
		json_object_object_add(*reply, "error", json_object_new_string(why));
		return OPS_REPLIED;
	}
	return OPS_TAKEN;
}

static void
import_apply(struct job *j)
{
	struct store_instance cur, other, rec;
	struct bkf_section sec;
	struct store_batch *b = NULL;
	uint8_t val[STORE_XFER_VALUE_MAX];
	char why[300], id[2 * BKF_ID_LEN + 1];
	const char *order_why;
	size_t xlen;
	json_object *reply, *o;
	int rc, replacing = 0;

	attest_hex_encode(j->head.id, BKF_ID_LEN, id);
	batch_commit();
	if (bkf_section_parse(j->buf, j->len, &j->head, &j->entries[0], &sec, why,
	    sizeof(why)) != 0)
		fatalx("import: a verified section no longer parses");
	memset(&cur, 0, sizeof(cur));
	rc = VTPM_E_EXISTS;
	if (store_xfer_get(V->store, STORE_XFER_IMPORTED, j->head.id, val, sizeof(val),
	    &xlen) == 0) {
		snprintf(why, sizeof(why), "export %s was imported here already: an export is "
		    "used once", id);
		goto refuse;
	}
	switch (store_inst_get(V->store, sec.rec.name, &cur)) {
	case 0:
		if (memcmp(cur.uuid, sec.rec.uuid, SEAL_UUID_LEN) != 0) {
			snprintf(why, sizeof(why), "instance name %s belongs to another instance "
			    "here", sec.rec.name);
			goto refuse;
		}
		if (!(cur.flags & STORE_INST_FENCED)) {
			snprintf(why, sizeof(why), "instance %s is live here (not fenced): "
			    "importing it would fork its TPM", sec.rec.name);
			goto refuse;
		}
		{
			enum gen_order ord = job_gen_order(&sec, &cur, &order_why);

			if (ord != GEN_NEWER && ord != GEN_SAME) {
				rc = VTPM_E_ROLLBACK;
				snprintf(why, sizeof(why), "instance %s: the export is not newer than "
				    "the copy fenced here: %s", sec.rec.name, order_why);
				goto refuse;
			}
		}
		replacing = 1;	/* it comes back home */
		break;
	case VTPM_E_NOTFOUND:
		if (!store_ident_is_empty(sec.rec.measurement, sec.rec.host_data) &&
		    store_inst_find_identity(V->store, sec.rec.measurement, sec.rec.host_data,
		    &other) == 0) {
			snprintf(why, sizeof(why), "its identity is enrolled here as instance %s",
			    other.name);
			goto refuse;
		}
		break;
	default:
		rc = VTPM_E_STORE;
		snprintf(why, sizeof(why), "instance %s: its record here is unreadable",
		    sec.rec.name);
		goto refuse;
	}
	if (!OPS_KEYED()) {
		rc = VTPM_E_AGAIN;
		snprintf(why, sizeof(why), "%s", OPS_NOT_KEYED);
		goto refuse;
	}
	/* the data key: from the migration key to this vtpmd's root key */
	rec = sec.rec;
	rec.flags &= ~STORE_INST_FENCED;
	if ((rc = seal_dek_unwrap(j->file_kek, rec.uuid, sec.rec.wrapped_dek, j->dek)) == 0)
		rc = seal_dek_wrap(V->kek, rec.uuid, j->dek, rec.wrapped_dek);
	sodium_memzero(j->dek, SEAL_KEY_LEN);
	if (rc != 0) {
		snprintf(why, sizeof(why), "its data key cannot be rewrapped: %s",
		    vtpm_strerror(rc));
		goto refuse;
	}
	(void)inst_end_worker(rec.name, 0, "replaced by an import");
	if ((b = store_batch_new()) == NULL)
		fatalx("out of memory");
	if ((rc = xfer_value(&rec, val, sizeof(val), &xlen)) != 0 ||
	    (rc = store_batch_put_inst(b, &rec)) != 0 ||
	    (rc = sec.perm != NULL ? store_batch_put_blob(b, rec.uuid, SEAL_BLOB_PERMANENT,
	    sec.perm, sec.perm_len) : store_batch_del_blob(b, rec.uuid, SEAL_BLOB_PERMANENT)) != 0 ||
	    (rc = sec.vol != NULL ? store_batch_put_blob(b, rec.uuid, SEAL_BLOB_VOLATILE,
	    sec.vol, sec.vol_len) : store_batch_del_blob(b, rec.uuid, SEAL_BLOB_VOLATILE)) != 0 ||
	    (rc = sec.endo != NULL ? store_batch_put_blob(b, rec.uuid, SEAL_BLOB_ENDORSEMENT,
	    sec.endo, sec.endo_len) : store_batch_del_blob(b, rec.uuid,
	    SEAL_BLOB_ENDORSEMENT)) != 0 ||
	    (rc = store_batch_put_xfer(b, STORE_XFER_IMPORTED, j->head.id, val, xlen)) != 0 ||
	    (rc = store_batch_del_xfer(b, STORE_XFER_GONE, rec.uuid)) != 0 ||
	    (rc = audit_log(b, STORE_AUDIT_IMPORT, 0, 0, j->uid, rec.name, rec.uuid, NULL,
	    "export %s (generation %llu/%llu)%s", id, (unsigned long long)rec.perm_gen,
	    (unsigned long long)rec.vol_gen, replacing ? "; it came back: the fenced copy "
	    "here is replaced" : "")) != 0 ||
	    (rc = store_batch_commit(V->store, b)) != 0) {
		store_batch_free(b);
		snprintf(why, sizeof(why), "import not committed, nothing changed: %s",
		    vtpm_strerror(rc));
		goto refuse;
	}
	store_batch_free(b);
	log_info("instance %s imported (export %s)", rec.name, id);
	reply = json_object_new_object();
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "name", json_object_new_string(rec.name));
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)rec.perm_gen));
	json_object_object_add(reply, "import", o);
	job_finish(j, reply);
	return;

refuse:
	(void)audit_log(NULL, STORE_AUDIT_IMPORT, rc, 0, j->uid, sec.rec.name, sec.rec.uuid,
	    NULL, "export %s refused: %s", id, why);
	job_fail(j, rc, "import refused, nothing changed: %s", why);
}

void
migrate_step(struct job *j)
{
	if (j->kind == JOB_IMPORT) {
		import_apply(j);
		return;
	}
	if (j->phase == PH_KEYS) {
		export_begin(j);
		return;
	}
	if (j->phase == PH_STOP) {
		if (inst_find(j->name) != NULL) {
			if (time(NULL) > j->stop_deadline && !j->stop_killed) {
				log_warnx("export of %s: its worker did not stop in %d s; killing it "
				    "(its volatile state is lost)", j->name, EXPORT_STOP_SEC);
				(void)inst_end_worker(j->name, 0, "did not stop for an export");
				j->stop_killed = 1;
			}
			job_progress(j, "stop", 0);
			return;
		}
		j->phase = PH_APPLY;
	}
	export_apply(j);
}
