/*
 * backup.c: long operator operations in the vtpmd parent (ops.h): hot
 * backups from one read snapshot, verification with the keys, and atomic
 * restore with per-instance generation checks; plus the admin dispatch of
 * every issue-7 op and the job framework migrate.c shares (ops_job.h).
 * Trusts the operator's request only as an admin-socket peer (root, 0600);
 * trusts nothing in a backup file: it is parsed with the cursor
 * (backup_format.h), its MAC is checked before anything else is believed,
 * and every data key and blob must open before one byte is restored.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cursor.h"
#include "log.h"
#include "ops_job.h"
#include "parent.h"

#define PROGRESS_NS	200000000L	/* at most 5 progress lines a second */

static struct job *J;		/* the running long operation, or NULL */
static uint8_t *cmpbuf;		/* STORE_BLOB_MAX: stored blobs compared with a file's */

/* ---- the job framework ------------------------------------------------ */

static uint32_t
peer_uid(int conn)
{
	struct ucred uc;
	socklen_t sl = sizeof(uc);

	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &uc, &sl) != 0 || sl != sizeof(uc))
		return STORE_AUDIT_NO_UID;
	return (uint32_t)uc.uid;
}

struct job *
job_new(enum job_kind kind, const char *op, int conn, int fd)
{
	struct job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatalx("out of memory");
	j->kind = kind;
	j->op = op;
	j->conn = conn;
	j->fd = fd;
	j->uid = peer_uid(conn);
	if ((j->mac_key = sodium_malloc(BKF_MAC_KEY_LEN)) == NULL ||
	    (j->dek = sodium_malloc(SEAL_KEY_LEN)) == NULL)
		fatalx("out of memory");
	j->problems = json_object_new_array();
	return j;
}

static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	if (j->snap != NULL)
		store_snapshot_end(j->snap);
	if (j->w_live)
		bkf_writer_wipe(&j->w);
	sodium_memzero(&j->mac, sizeof(j->mac));
	if (j->fd >= 0)
		close(j->fd);
	free(j->buf);
	free(j->entries);
	seal_kek_free(j->file_kek);
	sodium_free(j->mac_key);
	sodium_free(j->dek);
	if (j->plain != NULL)
		sodium_free(j->plain);
	json_object_put(j->problems);
	if (J == j)
		J = NULL;
	free(j);
}

void
job_start(struct job *j)
{
	int fl;

	/* progress lines must never block the event loop: drop them if the peer stalls */
	if ((fl = fcntl(j->conn, F_GETFL)) != -1)
		(void)fcntl(j->conn, F_SETFL, fl | O_NONBLOCK);
	clock_gettime(CLOCK_MONOTONIC, &j->last_progress);
	J = j;
}

/* Sends the final reply (takes it) on a blocking connection and closes it. */
static void
job_reply(struct job *j, json_object *reply)
{
	const char *out = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(out), off = 0;
	ssize_t n;
	int fl;

	if ((fl = fcntl(j->conn, F_GETFL)) != -1)
		(void)fcntl(j->conn, F_SETFL, fl & ~O_NONBLOCK);
	while (off < len) {
		n = send(j->conn, out + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off == len)
		(void)send(j->conn, "\n", 1, MSG_NOSIGNAL);
	json_object_put(reply);
	close(j->conn);
	j->conn = -1;
}

void
job_finish(struct job *j, json_object *reply)
{
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	job_reply(j, reply);
	job_free(j);
}

void
job_fail(struct job *j, int rc, const char *fmt, ...)
{
	json_object *reply = json_object_new_object();
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warnx("%s failed: %s", j->op, why);
	json_object_object_add(reply, "ok", json_object_new_boolean(0));
	json_object_object_add(reply, "error", json_object_new_string(why));
	if (rc != 0)
		json_object_object_add(reply, "code", json_object_new_string(vtpm_strerror(rc)));
	if (json_object_array_length(j->problems) > 0)
		json_object_object_add(reply, "problems", json_object_get(j->problems));
	job_reply(j, reply);
	job_free(j);
}

static long
ns_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000000000L + (now.tv_nsec - t->tv_nsec);
}

int
job_slice_over(const struct timespec *start)
{
	return ns_since(start) >= JOB_SLICE_NS;
}

void
job_progress(struct job *j, const char *phase, int force)
{
	char line[256];
	int n;

	if (!force && ns_since(&j->last_progress) < PROGRESS_NS)
		return;
	clock_gettime(CLOCK_MONOTONIC, &j->last_progress);
	n = snprintf(line, sizeof(line), "{\"progress\":{\"op\":\"%s\",\"phase\":\"%s\","
	    "\"done\":%u,\"total\":%u}}\n", j->op, phase, j->done, j->total);
	if (n > 0 && (size_t)n < sizeof(line))
		(void)send(j->conn, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* 0 while the operator's connection is open (a closed one ends the job). */
static int
job_peer_gone(struct job *j)
{
	char c;
	ssize_t r = recv(j->conn, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

int
job_check_writable(int fd, char *why, size_t whylen)
{
	struct stat sb;
	int fl;

	if (fd < 0) {
		snprintf(why, whylen, "no file descriptor came with the request "
		    "(vtpmctl passes the file it created)");
		return VTPM_E_INVAL;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size != 0 ||
	    (fl = fcntl(fd, F_GETFL)) == -1 || (fl & O_ACCMODE) == O_RDONLY ||
	    (fl & O_APPEND)) {
		snprintf(why, whylen, "the descriptor passed is not an empty regular file "
		    "open for writing");
		return VTPM_E_INVAL;
	}
	return 0;
}

static int
job_check_readable(struct job *j, char *why, size_t whylen)
{
	struct stat sb;
	int fl;

	if (j->fd < 0) {
		snprintf(why, whylen, "no file descriptor came with the request "
		    "(vtpmctl passes the file it opened)");
		return VTPM_E_INVAL;
	}
	if (fstat(j->fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    (fl = fcntl(j->fd, F_GETFL)) == -1 || (fl & O_ACCMODE) == O_WRONLY) {
		snprintf(why, whylen, "the descriptor passed is not a regular file open "
		    "for reading");
		return VTPM_E_INVAL;
	}
	if ((uint64_t)sb.st_size > JOB_FILE_MAX || sb.st_size < BKF_HEAD_LEN + BKF_TRAILER_LEN) {
		snprintf(why, whylen, "the file is %lld bytes: not a backup vtpmd can read "
		    "(%d..%llu)", (long long)sb.st_size, BKF_HEAD_LEN + BKF_TRAILER_LEN,
		    (unsigned long long)JOB_FILE_MAX);
		return VTPM_E_TOOBIG;
	}
	j->len = (size_t)sb.st_size;
	if ((j->buf = malloc(j->len)) == NULL) {
		snprintf(why, whylen, "out of memory for a %zu-byte file", j->len);
		return VTPM_E_NOMEM;
	}
	return 0;
}

/* ---- reading and verifying a file (verify-backup, restore, import) ----- */

int
job_read_step(struct job *j)
{
	char why[256];
	size_t want;
	ssize_t r;
	int rc;

	if (j->have < j->len) {
		want = j->len - j->have;
		if (want > JOB_READ_CHUNK)
			want = JOB_READ_CHUNK;
		r = pread(j->fd, j->buf + j->have, want, (off_t)j->have);
		if (r < 0 && errno == EINTR)
			return 1;
		if (r <= 0) {
			job_fail(j, VTPM_E_IO, "reading the file: %s", r < 0 ? strerror(errno) :
			    "it shrank while read");
			return -1;
		}
		j->have += (size_t)r;
		j->done = (uint32_t)((j->have + (1u << 20) - 1) >> 20);
		j->total = (uint32_t)((j->len + (1u << 20) - 1) >> 20);
		job_progress(j, "read MiB", j->have == j->len);
		if (j->have < j->len)
			return 1;
	}
	if ((rc = bkf_head_parse(j->buf, j->len, &j->head, why, sizeof(why))) != 0) {
		job_fail(j, rc, "%s", why);
		return -1;
	}
	if (bkf_file_length(&j->head) != j->len) {
		job_fail(j, VTPM_E_FORMAT, "the file is %zu bytes, its header says %llu "
		    "(truncated or extended)", j->len,
		    (unsigned long long)bkf_file_length(&j->head));
		return -1;
	}
	if ((j->kind == JOB_RESTORE && j->head.kind != BKF_KIND_BACKUP) ||
	    (j->kind == JOB_IMPORT && j->head.kind != BKF_KIND_EXPORT)) {
		job_fail(j, VTPM_E_INVAL, "this is %s file; %s wants %s",
		    j->head.kind == BKF_KIND_BACKUP ? "a backup" : "an export", j->op,
		    j->kind == JOB_RESTORE ? "a backup (vtpmctl backup)" :
		    "an export (vtpmctl export)");
		return -1;
	}
	if ((j->entries = calloc(j->head.count ? j->head.count : 1, sizeof(*j->entries))) == NULL ||
	    (j->plain = sodium_malloc(STORE_BLOB_MAX)) == NULL) {
		job_fail(j, VTPM_E_NOMEM, "out of memory");
		return -1;
	}
	return 0;
}

int
job_keys_wait(struct job *j, const char *why)
{
	time_t now = time(NULL);

	if (j->keys_deadline == 0) {
		j->keys_deadline = now + JOB_KEYS_WAIT_SEC;
		log_info("%s: %s", j->op, why);
	} else if (now > j->keys_deadline) {
		return -1;
	}
	j->phase = PH_KEYS;
	return 0;
}

int
job_load_keys(struct job *j)
{
	char why[256], hk[2 * SEAL_KID_LEN + 1], ok[2 * SEAL_KID_LEN + 1];
	int rc;

	if (!OPS_KEYED()) {
		job_fail(j, VTPM_E_AGAIN, "%s", OPS_NOT_KEYED);
		return -1;
	}
	if (j->head.kind == BKF_KIND_BACKUP) {
		if (sodium_memcmp(j->head.kid, V->kek->kid, SEAL_KID_LEN) != 0) {
			attest_hex_encode(j->head.kid, SEAL_KID_LEN, hk);
			attest_hex_encode(V->kek->kid, SEAL_KID_LEN, ok);
			job_fail(j, VTPM_E_WRONG_KEY, "the backup's data keys are wrapped by "
			    "root key %s (version %u); this vtpmd's root key is %s (version %u)",
			    hk, j->head.key_version, ok, V->kek->version);
			return -1;
		}
		if ((rc = seal_kek_new(V->kek->key, V->kek->version, &j->file_kek)) != 0 ||
		    (rc = bkf_backup_mac_key(V->kek, j->mac_key)) != 0) {
			job_fail(j, rc, "cannot derive the backup keys");
			return -1;
		}
	} else {
		if ((rc = migrate_keys(&j->file_kek, j->mac_key, why, sizeof(why))) != 0) {
			if (rc == VTPM_E_AGAIN && job_keys_wait(j, why) == 0)
				return 0;	/* PH_KEYS: asked again when the broker answered */
			job_fail(j, rc, "%s%s", rc == VTPM_E_AGAIN ?
			    "no migration key in time: " : "", why);
			return -1;
		}
		if (sodium_memcmp(j->head.kid, j->file_kek->kid, SEAL_KID_LEN) != 0) {
			attest_hex_encode(j->head.kid, SEAL_KID_LEN, hk);
			attest_hex_encode(j->file_kek->kid, SEAL_KID_LEN, ok);
			job_fail(j, VTPM_E_WRONG_KEY, "the export is wrapped by migration key %s; "
			    "this vtpmd's migration key is %s", hk, ok);
			return -1;
		}
	}
	crypto_generichash_init(&j->mac, j->mac_key, BKF_MAC_KEY_LEN, BKF_SUM_LEN);
	j->mac_off = 0;
	j->expect_off = bkf_data_offset(j->head.count);
	j->phase = PH_MAC;
	return 0;
}

static void
job_problem(struct job *j, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
job_problem(struct job *j, const char *name, const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (name != NULL && name[0] != '\0')
		json_object_object_add(o, "instance", json_object_new_string(name));
	json_object_object_add(o, "why", json_object_new_string(why));
	json_object_array_add(j->problems, o);
	log_warnx("%s: %s%s%s", j->op, name != NULL && name[0] ? name : "",
	    name != NULL && name[0] ? ": " : "", why);
}

/* Checks instance i: entry, section, data key, blobs. Appends problems. */
static void
job_check_instance(struct job *j, uint32_t i)
{
	struct bkf_entry *e = &j->entries[i];
	struct bkf_section sec;
	char why[200];
	size_t plen;
	int rc;

	if (bkf_entry_parse(j->buf, j->len, &j->head, i, e, why, sizeof(why)) != 0) {
		job_problem(j, NULL, "instance #%u: %s", i, why);
		j->expect_off = 0;
		return;
	}
	if ((j->expect_off != 0 && e->offset != j->expect_off) ||
	    (i > 0 && j->entries[i - 1].name[0] != '\0' &&
	    strcmp(j->entries[i - 1].name, e->name) >= 0)) {
		job_problem(j, e->name, "manifest order or offsets are wrong");
		e->name[0] = '\0';
		return;
	}
	j->expect_off = e->offset + e->length;
	if (bkf_section_parse(j->buf, j->len, &j->head, e, &sec, why, sizeof(why)) != 0) {
		job_problem(j, e->name, "%s", why);
		e->name[0] = '\0';
		return;
	}
	rc = seal_dek_unwrap(j->file_kek, sec.rec.uuid, sec.rec.wrapped_dek, j->dek);
	if (rc != 0) {
		job_problem(j, e->name, "its data key does not unwrap: %s", vtpm_strerror(rc));
		e->name[0] = '\0';
		return;
	}
	if (sec.perm != NULL && (rc = unseal_blob(j->dek, sec.rec.uuid, SEAL_BLOB_PERMANENT,
	    sec.rec.perm_gen, sec.perm, sec.perm_len, j->plain, STORE_BLOB_MAX, &plen)) != 0)
		job_problem(j, e->name, "its permanent state does not open: %s",
		    vtpm_strerror(rc));
	else if (sec.vol != NULL && (rc = unseal_blob(j->dek, sec.rec.uuid,
	    SEAL_BLOB_VOLATILE, sec.rec.vol_gen, sec.vol, sec.vol_len, j->plain,
	    STORE_BLOB_MAX, &plen)) != 0)
		job_problem(j, e->name, "its volatile state does not open: %s",
		    vtpm_strerror(rc));
	else if (sec.endo != NULL && (rc = unseal_blob(j->dek, sec.rec.uuid,
	    SEAL_BLOB_ENDORSEMENT, SEAL_ENDORSEMENT_GEN, sec.endo, sec.endo_len, j->plain,
	    STORE_BLOB_MAX, &plen)) != 0)
		job_problem(j, e->name, "its endorsement record does not open: %s",
		    vtpm_strerror(rc));
	sodium_memzero(j->dek, SEAL_KEY_LEN);
	plen = sec.perm_len > sec.vol_len ? sec.perm_len : sec.vol_len;
	sodium_memzero(j->plain, plen > sec.endo_len ? plen : sec.endo_len);
	if (rc != 0)
		e->name[0] = '\0';
}

/* A restore or import refused before it could change anything: audited (queued). */
static void
job_audit_refusal(struct job *j, int rc, const char *why)
{
	char id[2 * BKF_ID_LEN + 1];

	if (j->kind != JOB_RESTORE && j->kind != JOB_IMPORT)
		return;
	attest_hex_encode(j->head.id, BKF_ID_LEN, id);
	(void)audit_log(NULL, j->kind == JOB_RESTORE ? STORE_AUDIT_RESTORE : STORE_AUDIT_IMPORT,
	    rc, 0, j->uid, NULL, NULL, NULL, "%s %s refused: %s",
	    j->kind == JOB_RESTORE ? "backup" : "export", id, why);
}

int
job_verify_step(struct job *j)
{
	struct timespec start;
	uint8_t mac[BKF_SUM_LEN];
	size_t body = j->len - BKF_TRAILER_LEN, n;

	clock_gettime(CLOCK_MONOTONIC, &start);
	if (j->phase == PH_MAC) {
		while (j->mac_off < body && !job_slice_over(&start)) {
			n = body - j->mac_off;
			if (n > (1u << 20))
				n = 1u << 20;
			crypto_generichash_update(&j->mac, j->buf + j->mac_off, n);
			j->mac_off += n;
		}
		if (j->mac_off < body)
			return 1;
		crypto_generichash_final(&j->mac, mac, sizeof(mac));
		if (sodium_memcmp(mac, j->buf + body + 4, BKF_SUM_LEN) != 0) {
			job_audit_refusal(j, VTPM_E_AUTH, "the file's MAC does not verify");
			job_fail(j, VTPM_E_AUTH, "the file's MAC does not verify: it was altered, "
			    "or made under another %s (run `vtpmctl verify FILE` to locate "
			    "damage)", j->head.kind == BKF_KIND_BACKUP ? "root key" :
			    "migration key");
			return -1;
		}
		j->phase = PH_CHECK;
		j->done = 0;
		j->total = j->head.count;
		return 1;
	}
	while (j->done < j->head.count && !job_slice_over(&start))
		job_check_instance(j, j->done++);
	job_progress(j, "verify", j->done == j->head.count);
	if (j->done < j->head.count)
		return 1;
	if (j->head.count > 0 && j->expect_off != 0 &&
	    j->expect_off != bkf_data_offset(j->head.count) + j->head.data_len)
		job_problem(j, NULL, "instance data does not end where the trailer begins");
	return 0;
}

/* ---- backup ----------------------------------------------------------- */

int
job_write_out(void *arg, const uint8_t *p, size_t n)
{
	struct job *j = arg;
	ssize_t w;

	while (n > 0) {
		if ((w = write(j->fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return errno == ENOSPC || errno == EDQUOT ? VTPM_E_STORE_FULL : VTPM_E_IO;
		}
		p += w;
		n -= (size_t)w;
		j->bytes += (uint64_t)w;
	}
	return 0;
}

static int
backup_start(int conn, int *passfd, char *why, size_t whylen)
{
	uint8_t kcv[SEAL_KCV_LEN];
	struct job *j;
	size_t count;
	int rc;

	if (!OPS_KEYED()) {
		snprintf(why, whylen, "%s", OPS_NOT_KEYED);
		return VTPM_E_AGAIN;
	}
	if ((rc = job_check_writable(*passfd, why, whylen)) != 0)
		return rc;
	j = job_new(JOB_BACKUP, "backup", conn, *passfd);
	*passfd = -1;
	/* every acknowledged write is committed (EV_ADMIN ran batch_commit()) */
	if ((rc = store_snapshot_begin(V->store, &j->snap)) != 0 ||
	    (rc = store_snapshot_info(j->snap, &count, kcv)) != 0) {
		snprintf(why, whylen, "cannot open a snapshot of the store: %s", vtpm_strerror(rc));
		goto fail;
	}
	if ((rc = seal_kek_check_verify(V->kek, kcv)) != 0) {
		snprintf(why, whylen, "the snapshot is not under this vtpmd's root key (%s): "
		    "a key rotation is under way? try again", vtpm_strerror(rc));
		goto fail;
	}
	if (count > BKF_MAX_INSTANCES) {
		rc = VTPM_E_TOOBIG;
		snprintf(why, whylen, "%zu instances: more than a backup holds", count);
		goto fail;
	}
	if ((j->entries = calloc(count ? count : 1, sizeof(*j->entries))) == NULL)
		fatalx("out of memory");
	if ((rc = bkf_backup_mac_key(V->kek, j->mac_key)) != 0)
		goto fail;
	j->head.version = BKF_VERSION;
	j->head.kind = BKF_KIND_BACKUP;
	j->head.created = (uint64_t)time(NULL);
	snprintf(j->head.vtpmd_version, sizeof(j->head.vtpmd_version), "%s", VTPM_VERSION);
	randombytes_buf(j->head.id, sizeof(j->head.id));
	memcpy(j->head.kid, V->kek->kid, SEAL_KID_LEN);
	j->head.key_version = V->kek->version;
	j->total = (uint32_t)count;
	j->phase = PH_SCAN;
	job_start(j);
	log_info("backup started: %zu instances (snapshot)", count);
	return 0;

fail:
	*passfd = j->fd;	/* the caller closes it */
	j->fd = -1;
	job_free(j);
	return rc;
}

/* Writes the head and the manifest once every instance is measured. */
static void
backup_write_manifest(struct job *j)
{
	uint64_t data;
	uint32_t i;
	int rc;

	j->head.count = j->done;
	data = bkf_data_offset(j->head.count);
	for (i = 0; i < j->head.count; i++)
		j->entries[i].offset += data;
	if (bkf_writer_init(&j->w, j->mac_key, job_write_out, j) != 0)
		fatalx("backup writer");
	j->w_live = 1;
	rc = bkf_write_head(&j->w, &j->head);
	for (i = 0; rc == 0 && i < j->head.count; i++)
		rc = bkf_write_entry(&j->w, i, &j->entries[i]);
	if (rc != 0) {
		job_fail(j, rc, "writing the backup: %s", rc == VTPM_E_STORE_FULL ?
		    "no space left on the target file system" : vtpm_strerror(rc));
		return;
	}
	j->after[0] = '\0';
	j->total = j->head.count;
	j->done = 0;
	j->phase = PH_WRITE;
}

/* PH_SCAN: measures every instance of the snapshot for the manifest. */
static void
backup_scan(struct job *j, const struct timespec *start)
{
	struct store_inst_view v;
	struct bkf_entry *e;
	uint8_t kid[SEAL_KID_LEN];
	int rc;

	while (!job_slice_over(start)) {
		rc = store_snapshot_next(j->snap, j->after, &v);
		if (rc == VTPM_E_NOTFOUND) {
			job_progress(j, "scan", 1);
			backup_write_manifest(j);
			return;
		}
		if (rc != 0) {
			job_fail(j, rc, "instance %s: %s", v.rec.name[0] ? v.rec.name : "?",
			    rc == VTPM_E_FORMAT ? "its record is corrupt: backup refused "
			    "(the store needs repair)" : vtpm_strerror(rc));
			return;
		}
		if (j->done == j->total) {
			job_fail(j, VTPM_E_STORE, "the snapshot holds more instances than it said");
			return;
		}
		if ((v.rec.perm_gen != 0 && v.perm == NULL) || (v.rec.vol_gen != 0 && v.vol == NULL)) {
			job_fail(j, VTPM_E_STORE, "instance %s: its record names a %s blob the store "
			    "does not hold: backup refused", v.rec.name,
			    v.perm == NULL && v.rec.perm_gen ? "permanent" : "volatile");
			return;
		}
		if (bkf_wrapped_kid(v.rec.wrapped_dek, kid) != 0 ||
		    memcmp(kid, j->head.kid, SEAL_KID_LEN) != 0) {
			job_fail(j, VTPM_E_WRONG_KEY, "instance %s: its data key is not wrapped by "
			    "the current root key (rotation under way?)", v.rec.name);
			return;
		}
		e = &j->entries[j->done];
		memcpy(e->name, v.rec.name, sizeof(e->name));
		memcpy(e->uuid, v.rec.uuid, SEAL_UUID_LEN);
		e->perm_gen = v.rec.perm_gen;
		e->vol_gen = v.rec.vol_gen;
		e->flags = v.rec.flags;
		memcpy(e->kid, kid, SEAL_KID_LEN);
		if ((rc = bkf_section_measure_endo(v.rec_bytes, v.rec_len, v.perm, v.perm_len,
		    v.vol, v.vol_len, v.endo, v.endo_len, &e->length, e->sum)) != 0) {
			job_fail(j, rc, "instance %s: cannot measure its data", v.rec.name);
			return;
		}
		e->offset = j->head.data_len;	/* relative; made absolute with the manifest */
		j->head.data_len += e->length;
		memcpy(j->after, v.rec.name, sizeof(j->after));
		j->done++;
	}
	job_progress(j, "scan", 0);
}

static void
backup_done(struct job *j)
{
	json_object *reply = json_object_new_object(), *b = json_object_new_object();
	char id[2 * BKF_ID_LEN + 1], kid[2 * SEAL_KID_LEN + 1];
	struct store_batch *ab;

	attest_hex_encode(j->head.id, BKF_ID_LEN, id);
	store_snapshot_end(j->snap);
	j->snap = NULL;
	/* the audit record commits before the operator hears "ok" */
	if ((ab = store_batch_new()) == NULL)
		fatalx("out of memory");
	if (audit_log(ab, STORE_AUDIT_BACKUP, 0, 0, j->uid, NULL, NULL, NULL,
	    "backup %s: %u instances, %llu bytes", id, j->head.count,
	    (unsigned long long)j->bytes) != 0 ||
	    store_batch_commit(V->store, ab) != 0)
		log_warnx("backup %s: audit record not committed", id);
	store_batch_free(ab);
	log_info("backup %s written: %u instances, %llu bytes", id, j->head.count,
	    (unsigned long long)j->bytes);
	json_object_object_add(b, "id", json_object_new_string(id));
	json_object_object_add(b, "instances", json_object_new_int64(j->head.count));
	json_object_object_add(b, "bytes", json_object_new_int64((int64_t)j->bytes));
	json_object_object_add(b, "created", json_object_new_int64((int64_t)j->head.created));
	attest_hex_encode(j->head.kid, SEAL_KID_LEN, kid);
	json_object_object_add(b, "key_id", json_object_new_string(kid));
	json_object_object_add(reply, "backup", b);
	job_finish(j, reply);
}

/* PH_WRITE: writes the sections, then the trailer. */
static void
backup_write(struct job *j, const struct timespec *start)
{
	struct store_inst_view v;
	struct bkf_entry *e;
	int rc;

	while (j->done < j->head.count && !job_slice_over(start)) {
		if ((rc = store_snapshot_next(j->snap, j->after, &v)) != 0) {
			job_fail(j, rc, "reading the snapshot again: %s", vtpm_strerror(rc));
			return;
		}
		e = &j->entries[j->done];
		if (strcmp(e->name, v.rec.name) != 0 || j->w.bw_off != e->offset) {
			job_fail(j, VTPM_E_STORE, "the snapshot changed under the backup (%s)",
			    v.rec.name);
			return;
		}
		if ((rc = bkf_write_section_endo(&j->w, v.rec_bytes, v.rec_len, v.perm,
		    v.perm_len, v.vol, v.vol_len, v.endo, v.endo_len)) != 0) {
			job_fail(j, rc, "writing the backup: %s", rc == VTPM_E_STORE_FULL ?
			    "no space left on the target file system" : vtpm_strerror(rc));
			return;
		}
		memcpy(j->after, v.rec.name, sizeof(j->after));
		j->done++;
	}
	job_progress(j, "write", j->done == j->head.count);
	if (j->done < j->head.count)
		return;
	if ((rc = bkf_write_trailer(&j->w)) != 0) {
		job_fail(j, rc, "writing the backup: %s", vtpm_strerror(rc));
		return;
	}
	backup_done(j);
}

/* ---- verify-backup ---------------------------------------------------- */

static void
verify_done(struct job *j)
{
	json_object *reply;
	char id[2 * BKF_ID_LEN + 1];
	size_t np = json_object_array_length(j->problems);

	attest_hex_encode(j->head.id, BKF_ID_LEN, id);
	if (np > 0) {
		job_fail(j, VTPM_E_FORMAT, "%zu problem%s in %s %s", np, np == 1 ? "" : "s",
		    j->head.kind == BKF_KIND_BACKUP ? "backup" : "export", id);
		return;
	}
	log_info("%s %s verified: %u instances open with the keys",
	    j->head.kind == BKF_KIND_BACKUP ? "backup" : "export", id, j->head.count);
	reply = json_object_new_object();
	json_object_object_add(reply, "kind", json_object_new_string(
	    j->head.kind == BKF_KIND_BACKUP ? "backup" : "export"));
	json_object_object_add(reply, "id", json_object_new_string(id));
	json_object_object_add(reply, "instances", json_object_new_int64(j->head.count));
	json_object_object_add(reply, "message", json_object_new_string(
	    "every data key unwraps and every blob opens"));
	job_finish(j, reply);
}

/* ---- restore ---------------------------------------------------------- */

/* Is the stored blob (uuid, type) byte-for-byte the file's blob? */
static int
blob_same(const uint8_t uuid[SEAL_UUID_LEN], uint8_t type, const uint8_t *p, size_t n)
{
	size_t len;

	if (cmpbuf == NULL && (cmpbuf = malloc(STORE_BLOB_MAX)) == NULL)
		fatalx("out of memory");
	if (store_blob_get(V->store, uuid, type, cmpbuf, STORE_BLOB_MAX, &len) != 0)
		return 0;
	return len == n && memcmp(cmpbuf, p, n) == 0;
}

/*
 * Generations only grow along one history: the permanent generation never
 * goes down, and a volatile blob exists between a stop and the next start,
 * at the permanent generation + 1. So with equal permanent generations the
 * blobs themselves decide (a history that forked reuses numbers).
 */
enum gen_order
job_gen_order(const struct bkf_section *sec, const struct store_instance *cur,
    const char **why)
{
	const struct store_instance *f = &sec->rec;

	*why = "";
	if (f->perm_gen > cur->perm_gen)
		return GEN_NEWER;
	if (f->perm_gen < cur->perm_gen) {
		*why = "its permanent state is older than the store's";
		return GEN_OLDER;
	}
	if (f->perm_gen != 0 && !blob_same(f->uuid, SEAL_BLOB_PERMANENT, sec->perm,
	    sec->perm_len)) {
		*why = "same generation, different state: the histories forked";
		return GEN_UNCLEAR;
	}
	if (f->vol_gen == 0 && cur->vol_gen == 0)
		return GEN_SAME;
	if (f->vol_gen != 0 && cur->vol_gen != 0 &&
	    blob_same(f->uuid, SEAL_BLOB_VOLATILE, sec->vol, sec->vol_len))
		return GEN_SAME;
	if (f->vol_gen == 0) {
		*why = "the store holds a newer saved volatile state";
		return GEN_OLDER;
	}
	*why = "its saved volatile state may have been resumed already "
	    "(single use; restoring it could roll PCRs back)";
	return GEN_UNCLEAR;
}

enum restore_action { R_SKIP, R_NEW, R_REPLACE, R_REFUSE };

struct restore_item {
	enum restore_action	 act;
	int			 forced;	/* overrides a refusal with --force */
	int			 other_uuid;	/* the name belongs to another instance now */
	const char		*why;
	char			 whybuf[160];
};

/* Decides what restoring instance e does. */
static void
restore_plan_one(struct job *j, const struct bkf_entry *e, const struct bkf_section *sec,
    struct restore_item *it)
{
	struct store_instance cur, other;
	uint8_t val[STORE_XFER_VALUE_MAX];
	size_t vlen;
	int rc;

	memset(it, 0, sizeof(*it));
	rc = store_inst_get(V->store, e->name, &cur);
	if (rc == VTPM_E_NOTFOUND) {
		if (!store_ident_is_empty(sec->rec.measurement, sec->rec.host_data) &&
		    store_inst_find_identity(V->store, sec->rec.measurement,
		    sec->rec.host_data, &other) == 0) {
			snprintf(it->whybuf, sizeof(it->whybuf), "its identity is enrolled as "
			    "instance %s here (delete that first)", other.name);
			it->why = it->whybuf;
			it->act = R_REFUSE;	/* never forced: two instances, one identity */
			return;
		}
		if (store_xfer_get(V->store, STORE_XFER_GONE, e->uuid, val, sizeof(val),
		    &vlen) == 0) {
			it->why = "it was exported to another vtpmd (restoring it would fork "
			    "its TPM)";
			it->act = j->force ? R_NEW : R_REFUSE;
			it->forced = j->force;
			return;
		}
		it->act = R_NEW;
		return;
	}
	if (rc != 0) {
		snprintf(it->whybuf, sizeof(it->whybuf), "its record here is unreadable (%s)",
		    vtpm_strerror(rc));
		it->why = it->whybuf;
		it->act = j->force ? R_REPLACE : R_REFUSE;
		it->forced = j->force;
		it->other_uuid = 1;
		return;
	}
	if (memcmp(cur.uuid, e->uuid, SEAL_UUID_LEN) != 0) {
		it->why = "the name belongs to another instance here (another uuid)";
		it->act = j->force ? R_REPLACE : R_REFUSE;
		it->forced = j->force;
		it->other_uuid = 1;
		return;
	}
	switch (job_gen_order(sec, &cur, &it->why)) {
	case GEN_SAME:
		if (cur.flags == sec->rec.flags)
			return;		/* R_SKIP: nothing would change */
		if (cur.flags & STORE_INST_FENCED) {
			it->why = "it is fenced here (exported to another vtpmd)";
			break;
		}
		it->act = R_REPLACE;	/* fencing it again is never a rollback */
		return;
	case GEN_NEWER:
		if (cur.flags & STORE_INST_FENCED) {
			it->why = "it is fenced here (exported to another vtpmd)";
			break;
		}
		it->act = R_REPLACE;
		return;
	case GEN_OLDER:
	case GEN_UNCLEAR:
		break;
	}
	it->act = j->force ? R_REPLACE : R_REFUSE;
	it->forced = j->force;
}

static int
restore_queue(struct store_batch *b, const struct bkf_section *sec, int del_first)
{
	int rc;

	if (del_first && (rc = store_batch_del_inst(b, sec->rec.name)) != 0)
		return rc;
	if ((rc = store_batch_put_inst(b, &sec->rec)) != 0)
		return rc;
	rc = sec->perm != NULL ?
	    store_batch_put_blob(b, sec->rec.uuid, SEAL_BLOB_PERMANENT, sec->perm, sec->perm_len) :
	    store_batch_del_blob(b, sec->rec.uuid, SEAL_BLOB_PERMANENT);
	if (rc != 0)
		return rc;
	rc = sec->endo != NULL ? store_batch_put_blob(b, sec->rec.uuid, SEAL_BLOB_ENDORSEMENT,
	    sec->endo, sec->endo_len) :
	    store_batch_del_blob(b, sec->rec.uuid, SEAL_BLOB_ENDORSEMENT);
	if (rc != 0)
		return rc;
	return sec->vol != NULL ?
	    store_batch_put_blob(b, sec->rec.uuid, SEAL_BLOB_VOLATILE, sec->vol, sec->vol_len) :
	    store_batch_del_blob(b, sec->rec.uuid, SEAL_BLOB_VOLATILE);
}

/* PH_APPLY of a restore: one synchronous step, one transaction. */
static void
restore_apply(struct job *j)
{
	struct restore_item *items;
	struct bkf_section sec;
	struct store_batch *b;
	json_object *reply, *refused;
	char id[2 * BKF_ID_LEN + 1], why[200];
	uint32_t i, nnew = 0, nrep = 0, nskip = 0, nref = 0, nforced = 0;
	int rc = 0;

	attest_hex_encode(j->head.id, BKF_ID_LEN, id);
	batch_commit();		/* every acknowledged write is in the store */
	if (!OPS_KEYED() || sodium_memcmp(V->kek->kid, j->head.kid, SEAL_KID_LEN) != 0) {
		job_fail(j, VTPM_E_WRONG_KEY, "the root key changed while the backup was "
		    "verified; try again");
		return;
	}
	if ((items = calloc(j->head.count ? j->head.count : 1, sizeof(*items))) == NULL)
		fatalx("out of memory");
	refused = json_object_new_array();
	for (i = 0; i < j->head.count; i++) {
		if (bkf_section_parse(j->buf, j->len, &j->head, &j->entries[i], &sec, why,
		    sizeof(why)) != 0)
			fatalx("restore: a verified section no longer parses");
		restore_plan_one(j, &j->entries[i], &sec, &items[i]);
		if (items[i].act == R_REFUSE) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "instance", json_object_new_string(
			    j->entries[i].name));
			json_object_object_add(o, "why", json_object_new_string(items[i].why));
			json_object_array_add(refused, o);
			nref++;
		}
	}
	if (nref > 0) {
		/* nothing changes; the refusal itself is audited */
		if ((b = store_batch_new()) == NULL)
			fatalx("out of memory");
		(void)audit_log(b, STORE_AUDIT_RESTORE, VTPM_E_ROLLBACK, 0, j->uid, NULL, NULL,
		    NULL, "backup %s refused: %u of %u instances would go back or conflict "
		    "(first: %s: %s)", id, nref, j->head.count,
		    json_object_get_string(json_object_object_get(
		    json_object_array_get_idx(refused, 0), "instance")),
		    json_object_get_string(json_object_object_get(
		    json_object_array_get_idx(refused, 0), "why")));
		if (store_batch_commit(V->store, b) != 0)
			log_warnx("restore: audit record not committed");
		store_batch_free(b);
		json_object_put(j->problems);
		j->problems = refused;
		free(items);
		job_fail(j, VTPM_E_ROLLBACK, "restore refused, nothing changed: %u instance%s "
		    "would go back to older state or conflict%s", nref, nref == 1 ? "" : "s",
		    j->force ? "" : " (--force overrides where that is possible)");
		return;
	}
	json_object_put(refused);

	/* end the live sessions of every instance that changes, then one transaction */
	if ((b = store_batch_new()) == NULL)
		fatalx("out of memory");
	for (i = 0; i < j->head.count; i++) {
		struct restore_item *it = &items[i];

		if (it->act == R_SKIP) {
			nskip++;
			continue;
		}
		if (bkf_section_parse(j->buf, j->len, &j->head, &j->entries[i], &sec, why,
		    sizeof(why)) != 0)
			fatalx("restore: a verified section no longer parses");
		(void)inst_end_worker(sec.rec.name, 0, "restored from a backup");
		if ((rc = restore_queue(b, &sec, it->other_uuid)) != 0)
			break;
		if (it->act == R_NEW)
			nnew++;
		else
			nrep++;
		if (it->forced) {
			nforced++;
			rc = audit_log(b, STORE_AUDIT_RESTORE, 0, STORE_AUDIT_F_FORCED, j->uid,
			    sec.rec.name, sec.rec.uuid, NULL, "FORCED by the operator from "
			    "backup %s: %s (backup generation %llu/%llu)", id, it->why,
			    (unsigned long long)sec.rec.perm_gen,
			    (unsigned long long)sec.rec.vol_gen);
			log_warnx("restore --force: instance %s: %s", sec.rec.name, it->why);
		}
		if (rc != 0)
			break;
	}
	if (rc == 0)
		rc = audit_log(b, STORE_AUDIT_RESTORE, 0, nforced ? STORE_AUDIT_F_FORCED : 0,
		    j->uid, NULL, NULL, NULL, "backup %s: %u new, %u replaced, %u unchanged%s%s",
		    id, nnew, nrep, nskip, nforced ? ", FORCED over newer or conflicting state: " :
		    "", nforced ? "see the instances' records" : "");
	if (rc == 0)
		rc = store_batch_commit(V->store, b);
	store_batch_free(b);
	free(items);
	if (rc != 0) {
		job_fail(j, rc, "restore not committed, nothing changed: %s", vtpm_strerror(rc));
		return;
	}
	log_info("restored backup %s: %u new, %u replaced, %u unchanged, %u forced", id, nnew,
	    nrep, nskip, nforced);
	reply = json_object_new_object();
	json_object_object_add(reply, "id", json_object_new_string(id));
	json_object_object_add(reply, "new", json_object_new_int64(nnew));
	json_object_object_add(reply, "replaced", json_object_new_int64(nrep));
	json_object_object_add(reply, "unchanged", json_object_new_int64(nskip));
	json_object_object_add(reply, "forced", json_object_new_int64(nforced));
	job_finish(j, reply);
}

/* ---- dispatch --------------------------------------------------------- */

int
job_start_read(enum job_kind kind, const char *op, json_object *req, int conn, int *passfd,
    char *why, size_t whylen)
{
	json_object *v;
	struct job *j;
	int rc;

	j = job_new(kind, op, conn, *passfd);
	*passfd = -1;
	if (json_object_object_get_ex(req, "force", &v))
		j->force = json_object_get_boolean(v);
	if ((rc = job_check_readable(j, why, whylen)) != 0) {
		*passfd = j->fd;
		j->fd = -1;
		j->conn = -1;
		job_free(j);
		return rc;
	}
	j->phase = PH_READ;
	job_start(j);
	log_info("%s started (%zu bytes)%s", op, j->len, j->force ? ", --force" : "");
	return 0;
}

static json_object *
error_json(const char *why)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(why));
	return o;
}

int
ops_admin(json_object *req, int conn, int *passfd, json_object **reply)
{
	json_object *v;
	const char *op;
	char why[512];
	int rc;

	*reply = NULL;
	if (!json_object_object_get_ex(req, "op", &v) || !json_object_is_type(v, json_type_string))
		return OPS_NOT_MINE;
	op = json_object_get_string(v);
	if (strcmp(op, "audit") == 0) {
		*reply = audit_admin(req);
		return OPS_REPLIED;
	}
	if (strcmp(op, "metrics") == 0) {
		*reply = metrics_admin();
		return OPS_REPLIED;
	}
	if (strcmp(op, "backup") != 0 && strcmp(op, "verify-backup") != 0 &&
	    strcmp(op, "restore") != 0 && strcmp(op, "export") != 0 &&
	    strcmp(op, "import") != 0)
		return OPS_NOT_MINE;
	if (J != NULL) {
		snprintf(why, sizeof(why), "busy: a %s is running; one long operation at a time",
		    J->op);
		*reply = error_json(why);
		return OPS_REPLIED;
	}
	if (V->shutting_down) {
		*reply = error_json("vtpmd is shutting down");
		return OPS_REPLIED;
	}
	if (strcmp(op, "export") == 0)
		return migrate_admin_export(req, conn, passfd, reply);
	if (strcmp(op, "import") == 0)
		return migrate_admin_import(req, conn, passfd, reply);
	if (strcmp(op, "backup") == 0)
		rc = backup_start(conn, passfd, why, sizeof(why));
	else if (strcmp(op, "restore") == 0)	/* a job outlives req: static names only */
		rc = job_start_read(JOB_RESTORE, "restore", req, conn, passfd, why, sizeof(why));
	else
		rc = job_start_read(JOB_VERIFY, "verify-backup", req, conn, passfd, why,
		    sizeof(why));
	if (rc != 0) {
		*reply = error_json(why);
		return OPS_REPLIED;
	}
	return OPS_TAKEN;
}

void
ops_init(void)
{
	migrate_init();
	metrics_listen_init();
}

int
ops_running(void)
{
	return J != NULL;
}

int
ops_busy(void)
{
	return J != NULL && J->phase != PH_STOP && J->phase != PH_KEYS;
}

int
ops_attach_blocked(const char *name)
{
	return J != NULL && J->kind == JOB_EXPORT && strcmp(J->name, name) == 0;
}

void
ops_shutdown(void)
{
	if (J != NULL)
		job_fail(J, VTPM_E_AGAIN, "vtpmd is shutting down; nothing was changed");
}

void
ops_run(void)
{
	struct timespec start;
	struct job *j = J;
	int r;

	if (j == NULL)
		return;
	if (job_peer_gone(j)) {
		log_warnx("%s abandoned: the operator's connection closed; nothing was changed",
		    j->op);
		close(j->conn);
		j->conn = -1;
		job_free(j);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	switch (j->phase) {
	case PH_SCAN:
		backup_scan(j, &start);
		return;
	case PH_WRITE:
		backup_write(j, &start);
		return;
	case PH_STOP:
		migrate_step(j);
		return;
	case PH_KEYS:
		/* ask again: keys.c's fetch thread wakes the loop when the broker answered */
		if (j->kind == JOB_EXPORT) {
			migrate_step(j);
		} else {
			(void)job_load_keys(j);
		}
		return;
	case PH_READ:
		if (job_read_step(j) != 0)
			return;
		(void)job_load_keys(j);		/* sets PH_MAC, or failed and freed */
		return;
	case PH_MAC:
	case PH_CHECK:
		if ((r = job_verify_step(j)) != 0)
			return;
		if (j->kind == JOB_VERIFY) {
			verify_done(j);
			return;
		}
		if (json_object_array_length(j->problems) > 0) {
			job_audit_refusal(j, VTPM_E_FORMAT, "its data keys or blobs do not open");
			job_fail(j, VTPM_E_FORMAT, "%s refused, nothing changed: the file has "
			    "problems", j->op);
			return;
		}
		j->phase = PH_APPLY;
		return;
	case PH_APPLY:
		if (j->kind == JOB_RESTORE)
			restore_apply(j);
		else
			migrate_step(j);
		return;
	case PH_DONE:
		job_free(j);
		return;
	}
}
