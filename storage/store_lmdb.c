/*
 * store_lmdb.c: the LMDB backend of the store (store.h, store_backend.h).
 * One environment per store directory, six named databases, one write
 * transaction per batch, one read transaction per snapshot. Trusts the arguments store.c has checked; trusts
 * nothing read back from the database (records are decoded and cross-checked
 * against their keys).
 *
 * After a failed commit: if LMDB could not write the meta page it marks the
 * environment fatal and refuses every later transaction (MDB_PANIC). The
 * committed state on disk is still the previous one (copy-on-write: a
 * commit touches no page a committed meta names), so the environment is
 * closed and opened again from the file, and service resumes as soon as the
 * disk works. Any other failed commit (data pages not written, fdatasync
 * failed, map full) aborts the transaction and leaves the environment usable.
 *
 * The commit log (store_log.h): a batch made only of PUT_INST and PUT_BLOB
 * ops, whose PUT_INSTs replace a record of the same uuid and identity (the
 * NV-write hot path), is appended to dir/commit.log with one fdatasync
 * instead of a durable LMDB transaction, and kept in an in-memory overlay
 * that point lookups (inst_get, blob_get, inst_find_identity) read first.
 * Every other batch, and every read of the inst or blob tables other than
 * a point lookup (inst_list, snapshots), first runs a checkpoint: the
 * overlay goes into LMDB in one durable transaction that also closes the
 * log's epoch (meta key "logdone" = epoch || last seq), then the log is
 * reset under a new random epoch. At open the records of an epoch that is
 * not closed are replayed (a torn tail ends the log) and checkpointed.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <pthread.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "cursor.h"
#include "log.h"
#include "store_backend.h"
#include "store_log.h"

#define LMDB_DEFAULT_MAP	((size_t)1 << 30)
#define LMDB_LOCK_FILE		"vtpmd.lock"
/*
 * 2: the store may have acknowledged writes in commit.log (store_log.h) that
 * are not yet in LMDB. A vtpmd that knows only 1 would open such a store and
 * silently miss them, so it must refuse it; a store at 1 is raised to 2 when
 * opened (nothing else changed between the two).
 */
#define LMDB_FORMAT_VERSION	2
#define LMDB_FORMAT_NO_LOG	1
#define LMDB_META_FORMAT	"format"
#define LMDB_META_KCV		"kcv"
#define LMDB_META_LOGDONE	"logdone"	/* epoch(8) || seq(8): that epoch is in LMDB */

/* Checkpoint triggers: the log half full, or its oldest record this old. */
#define LMDB_CKPT_FILL_DIV	2
#define LMDB_CKPT_AGE_MS	1000
#define LMDB_CKPT_RETRY_MS	100	/* after a failed checkpoint, on the commit path */
#define LMDB_OV_BUCKETS		1024

/* The overlay: what the log holds and LMDB does not yet, newest value per key. */
struct lmdb_ov_inst {
	struct lmdb_ov_inst	*next;
	struct store_instance	 rec;		/* decoded */
	uint8_t			 enc[STORE_INST_RECORD_MAX];
	size_t			 len;
};

struct lmdb_ov_blob {
	struct lmdb_ov_blob	*next;
	uint8_t			 key[STORE_BLOB_KEY_LEN];
	uint8_t			*data;
	size_t			 len;
};

struct store_lmdb {
	struct store	 base;		/* first: store.c sees only this */
	MDB_env		*env;
	MDB_dbi		 db_meta;
	MDB_dbi		 db_inst;
	MDB_dbi		 db_blob;
	MDB_dbi		 db_ident;
	MDB_dbi		 db_audit;
	MDB_dbi		 db_xfer;
	int		 lock_fd;
	char		 dir[PATH_MAX];
	size_t		 map_size;
	unsigned int	 envflags;
	/*
	 * Readers: every call that uses env, for its duration. Writer: the
	 * reopen after MDB_PANIC, which only tries (never waits) and only
	 * when no snapshot holds a transaction of the old environment.
	 */
	pthread_rwlock_t lock;
	int		 panicked;	/* env refuses transactions: reopen it */
	unsigned int	 snapshots;	/* open snapshots (atomic) */

	/*
	 * The commit log and its overlay, under log_mu (taken before lock).
	 * log_open: the log's epoch may hold records LMDB lacks (it must be
	 * closed by a checkpoint before a reset). log_ready: records may be
	 * appended (a reset worked since the epoch was last closed, and no
	 * append failed since).
	 */
	pthread_mutex_t	 log_mu;
	struct store_log *log;
	int		 log_open;
	int		 log_ready;
	uint64_t	 log_last_seq;	/* last record appended or replayed */
	struct timespec	 log_first;	/* when the overlay got its first entry */
	struct timespec	 log_tried;	/* the last checkpoint attempt */
	struct timespec	 log_reset_tried;	/* the last reset attempt */
	struct lmdb_ov_inst *ov_inst[LMDB_OV_BUCKETS];
	struct lmdb_ov_blob *ov_blob[LMDB_OV_BUCKETS];
	size_t		 ov_count;
	size_t		 ov_bytes;	/* values held, for the room check */
};

static const struct store_ops lmdb_ops;
static int lmdb_checkpoint(struct store_lmdb *st);
static int lmdb_log_recover(struct store_lmdb *st, int nosync);

static struct store_lmdb *
lmdb_of(struct store *s)
{
	return (struct store_lmdb *)s;
}

/*
 * Maps an LMDB or errno code to VTPM_E_*, logging the ones an operator must
 * see under the caller's name. what names the operation.
 */
#define lmdb_err(rc, what)	lmdb_err_at((rc), (what), __func__)

static int
lmdb_err_at(int rc, const char *what, const char *func)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return VTPM_E_NOTFOUND;
	case MDB_MAP_FULL:
	case ENOSPC:
	case EDQUOT:
		log_msg(LOG_LVL_WARN, 0, func, "%s: store full: %s", what,
		    mdb_strerror(rc));
		return VTPM_E_STORE_FULL;
	case MDB_TXN_FULL:
		log_msg(LOG_LVL_WARN, 0, func, "%s: batch too large for one "
		    "transaction", what);
		return VTPM_E_TOOBIG;
	case ENOMEM:
		return VTPM_E_NOMEM;
	default:
		log_msg(LOG_LVL_WARN, 0, func, "%s: %s", what, mdb_strerror(rc));
		return VTPM_E_STORE;
	}
}

static void
lmdb_val(MDB_val *v, const void *p, size_t n)
{
	v->mv_data = (void *)(uintptr_t)p;	/* LMDB takes non-const; never writes keys */
	v->mv_size = n;
}

static void
lmdb_blob_key(uint8_t key[STORE_BLOB_KEY_LEN], const uint8_t uuid[SEAL_UUID_LEN],
    uint8_t type)
{
	memcpy(key, uuid, SEAL_UUID_LEN);
	key[SEAL_UUID_LEN] = type;
}

/* ---- the overlay (under log_mu) ---------------------------------------- */

static unsigned int
lmdb_ov_hash(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;	/* FNV-1a: keys are names and uuids, not hostile */
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h % LMDB_OV_BUCKETS;
}

static struct lmdb_ov_inst *
lmdb_ov_inst_find(struct store_lmdb *st, const char *name)
{
	struct lmdb_ov_inst *e;

	for (e = st->ov_inst[lmdb_ov_hash(name, strlen(name))]; e != NULL; e = e->next)
		if (strcmp(e->rec.name, name) == 0)
			return e;
	return NULL;
}

static struct lmdb_ov_blob *
lmdb_ov_blob_find(struct store_lmdb *st, const uint8_t key[STORE_BLOB_KEY_LEN])
{
	struct lmdb_ov_blob *e;

	for (e = st->ov_blob[lmdb_ov_hash(key, STORE_BLOB_KEY_LEN)]; e != NULL; e = e->next)
		if (memcmp(e->key, key, STORE_BLOB_KEY_LEN) == 0)
			return e;
	return NULL;
}

/* Puts e in the overlay, replacing (and freeing) an entry of the same key. */
static void
lmdb_ov_inst_put(struct store_lmdb *st, struct lmdb_ov_inst *e)
{
	struct lmdb_ov_inst **pp;
	unsigned int h = lmdb_ov_hash(e->rec.name, strlen(e->rec.name));

	for (pp = &st->ov_inst[h]; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->rec.name, e->rec.name) == 0) {
			e->next = (*pp)->next;
			st->ov_bytes += e->len - (*pp)->len;
			free(*pp);
			*pp = e;
			return;
		}
	}
	e->next = st->ov_inst[h];
	st->ov_inst[h] = e;
	st->ov_count++;
	st->ov_bytes += e->len;
}

static void
lmdb_ov_blob_put(struct store_lmdb *st, struct lmdb_ov_blob *e)
{
	struct lmdb_ov_blob **pp;
	unsigned int h = lmdb_ov_hash(e->key, STORE_BLOB_KEY_LEN);

	for (pp = &st->ov_blob[h]; *pp != NULL; pp = &(*pp)->next) {
		if (memcmp((*pp)->key, e->key, STORE_BLOB_KEY_LEN) == 0) {
			e->next = (*pp)->next;
			st->ov_bytes += e->len - (*pp)->len;
			free((*pp)->data);
			free(*pp);
			*pp = e;
			return;
		}
	}
	e->next = st->ov_blob[h];
	st->ov_blob[h] = e;
	st->ov_count++;
	st->ov_bytes += e->len;
}

static void
lmdb_ov_clear(struct store_lmdb *st)
{
	struct lmdb_ov_inst *ie;
	struct lmdb_ov_blob *be;
	size_t h;

	for (h = 0; h < LMDB_OV_BUCKETS; h++) {
		while ((ie = st->ov_inst[h]) != NULL) {
			st->ov_inst[h] = ie->next;
			free(ie);
		}
		while ((be = st->ov_blob[h]) != NULL) {
			st->ov_blob[h] = be->next;
			free(be->data);
			free(be);
		}
	}
	st->ov_count = 0;
	st->ov_bytes = 0;
}

/* One prepared overlay entry per op of a loggable batch. */
struct lmdb_ov_prep {
	struct lmdb_ov_inst	**inst;
	struct lmdb_ov_blob	**blob;
	size_t			 n;
};

static void
lmdb_ov_prep_free(struct lmdb_ov_prep *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->inst[i]);
		if (p->blob[i] != NULL)
			free(p->blob[i]->data);
		free(p->blob[i]);
	}
	free(p->inst);
	free(p->blob);
	memset(p, 0, sizeof(*p));
}

/*
 * Allocates the overlay entries of b's ops before anything is written, so
 * that once the record is durable, putting them in cannot fail.
 */
static int
lmdb_ov_prep(const struct store_batch *b, struct lmdb_ov_prep *p)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	if ((p->inst = calloc(b->n, sizeof(*p->inst))) == NULL ||
	    (p->blob = calloc(b->n, sizeof(*p->blob))) == NULL) {
		free(p->inst);
		return VTPM_E_NOMEM;
	}
	p->n = b->n;
	for (i = 0; i < b->n; i++) {
		const struct store_op *op = &b->ops[i];

		if (op->kind == STORE_OP_PUT_INST) {
			if ((p->inst[i] = calloc(1, sizeof(*p->inst[i]))) == NULL)
				goto nomem;
			if (op->len > sizeof(p->inst[i]->enc) ||
			    store_inst_decode(op->data, op->len, &p->inst[i]->rec) != 0) {
				lmdb_ov_prep_free(p);
				return VTPM_E_INVAL;	/* store.c encoded it: cannot happen */
			}
			memcpy(p->inst[i]->enc, op->data, op->len);
			p->inst[i]->len = op->len;
		} else {
			if ((p->blob[i] = calloc(1, sizeof(*p->blob[i]))) == NULL ||
			    (p->blob[i]->data = malloc(op->len)) == NULL)
				goto nomem;
			lmdb_blob_key(p->blob[i]->key, op->uuid, op->type);
			memcpy(p->blob[i]->data, op->data, op->len);
			p->blob[i]->len = op->len;
		}
	}
	return 0;
nomem:
	lmdb_ov_prep_free(p);
	return VTPM_E_NOMEM;
}

/* Moves the prepared entries into the overlay, in batch order. */
static void
lmdb_ov_prep_apply(struct store_lmdb *st, struct lmdb_ov_prep *p)
{
	size_t i;

	if (st->ov_count == 0)
		clock_gettime(CLOCK_MONOTONIC, &st->log_first);
	for (i = 0; i < p->n; i++) {
		if (p->inst[i] != NULL)
			lmdb_ov_inst_put(st, p->inst[i]);
		if (p->blob[i] != NULL)
			lmdb_ov_blob_put(st, p->blob[i]);
		p->inst[i] = NULL;
		p->blob[i] = NULL;
	}
	lmdb_ov_prep_free(p);
}

/* ---- open and close --------------------------------------------------- */

/* fsync()s a directory so the entries made in it are durable. */
static int
lmdb_fsync_dir(const char *path)
{
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("open %s", path);
		return VTPM_E_IO;
	}
	if (fsync(fd) == -1) {
		log_warn("fsync %s", path);
		rc = VTPM_E_IO;
	}
	close(fd);
	return rc;
}

static int
lmdb_lock_dir(const char *dir, int *fdp)
{
	char path[PATH_MAX];
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, LMDB_LOCK_FILE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		log_warnx("store directory name too long");
		return VTPM_E_INVAL;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
		log_warn("open %s", path);
		return VTPM_E_IO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK) {
			log_warnx("store %s is in use by another vtpmd", dir);
			close(fd);
			return VTPM_E_BUSY;
		}
		log_warn("flock %s", path);
		close(fd);
		return VTPM_E_IO;
	}
	*fdp = fd;
	return 0;
}

/* Opens the named databases and checks or sets the store format, in one txn. */
static int
lmdb_open_dbs(struct store_lmdb *st)
{
	static const char fmtkey[] = LMDB_META_FORMAT;
	uint8_t ver[4];
	MDB_txn *txn;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		return lmdb_err(rc, "mdb_txn_begin");
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->db_meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "inst", MDB_CREATE, &st->db_inst)) != 0 ||
	    (rc = mdb_dbi_open(txn, "blob", MDB_CREATE, &st->db_blob)) != 0 ||
	    (rc = mdb_dbi_open(txn, "ident", MDB_CREATE, &st->db_ident)) != 0 ||
	    (rc = mdb_dbi_open(txn, "audit", MDB_CREATE, &st->db_audit)) != 0 ||
	    (rc = mdb_dbi_open(txn, "xfer", MDB_CREATE, &st->db_xfer)) != 0) {
		mdb_txn_abort(txn);
		return lmdb_err(rc, "mdb_dbi_open");
	}

	lmdb_val(&k, fmtkey, sizeof(fmtkey) - 1);
	rc = mdb_get(txn, st->db_meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		be32_enc(ver, LMDB_FORMAT_VERSION);
		lmdb_val(&v, ver, sizeof(ver));
		rc = mdb_put(txn, st->db_meta, &k, &v, 0);
	} else if (rc == 0) {
		if (v.mv_size != sizeof(ver)) {
			mdb_txn_abort(txn);
			log_warnx("%s: store format record is corrupt", st->dir);
			return VTPM_E_FORMAT;
		}
		memcpy(ver, v.mv_data, sizeof(ver));
		if (be32_dec(ver) == LMDB_FORMAT_NO_LOG) {
			be32_enc(ver, LMDB_FORMAT_VERSION);
			lmdb_val(&v, ver, sizeof(ver));
			if ((rc = mdb_put(txn, st->db_meta, &k, &v, 0)) != 0) {
				mdb_txn_abort(txn);
				return lmdb_err(rc, "store format");
			}
			log_info("%s: store format raised from %u to %u (commit log)", st->dir,
			    LMDB_FORMAT_NO_LOG, LMDB_FORMAT_VERSION);
		} else if (be32_dec(ver) != LMDB_FORMAT_VERSION) {
			mdb_txn_abort(txn);
			log_warnx("%s: store format %u is not supported (this is %u)",
			    st->dir, be32_dec(ver), LMDB_FORMAT_VERSION);
			return VTPM_E_UNSUPPORTED;
		}
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return lmdb_err(rc, "store format");
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return lmdb_err(rc, "mdb_txn_commit");
	return 0;
}

/* Creates and opens st->env in st->dir with its databases; env NULL on failure. */
static int
lmdb_env_open(struct store_lmdb *st)
{
	int rc;

	if ((rc = mdb_env_create(&st->env)) != 0) {
		st->env = NULL;
		return lmdb_err(rc, "mdb_env_create");
	}
	if ((rc = mdb_env_set_maxdbs(st->env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(st->env, st->map_size)) != 0 ||
	    (rc = mdb_env_open(st->env, st->dir, st->envflags, 0600)) != 0)
		rc = lmdb_err(rc, st->dir);
	else
		rc = lmdb_open_dbs(st);
	if (rc != 0) {
		mdb_env_close(st->env);
		st->env = NULL;
	}
	return rc;
}

/*
 * Replaces a panicked environment by a fresh one opened from the file, if
 * nobody is using it (no call in progress, no open snapshot); otherwise a
 * later call tries again. Called without st->lock held.
 */
static void
lmdb_reopen(struct store_lmdb *st)
{
	int rc;

	if (pthread_rwlock_trywrlock(&st->lock) != 0)
		return;
	if (st->panicked && __atomic_load_n(&st->snapshots, __ATOMIC_SEQ_CST) == 0) {
		if (st->env != NULL)
			mdb_env_close(st->env);
		st->env = NULL;
		if ((rc = lmdb_env_open(st)) == 0) {
			st->panicked = 0;
			log_warnx("%s: store reopened after a failed write; it holds the "
			    "last committed state", st->dir);
		} else {
			log_warnx("%s: store cannot be reopened yet: %s", st->dir,
			    vtpm_strerror(rc));
		}
	}
	pthread_rwlock_unlock(&st->lock);
}

/*
 * Takes st->lock for reading (reopening a panicked environment first) and
 * checks that there is an environment. VTPM_E_STORE (lock released) if not.
 */
static int
lmdb_enter(struct store_lmdb *st)
{
	if (st->panicked)
		lmdb_reopen(st);
	pthread_rwlock_rdlock(&st->lock);
	if (st->env == NULL) {
		pthread_rwlock_unlock(&st->lock);
		log_warnx("%s: store unavailable after a failed write", st->dir);
		return VTPM_E_STORE;
	}
	return 0;
}

/* Notes MDB_PANIC from a transaction begin, so the environment gets reopened. */
static void
lmdb_note_panic(struct store_lmdb *st, int rc)
{
	if (rc == MDB_PANIC)
		st->panicked = 1;
}

int
store_open_lmdb_flags(const char *dir, size_t map_size, unsigned int flags,
    struct store **out)
{
	struct store_lmdb *st = NULL;
	char parent[PATH_MAX];
	struct stat sb;
	int rc, created = 0;

	if (out == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	if (dir == NULL || dir[0] == '\0' || (flags & ~STORE_F_NOSYNC) != 0)
		return VTPM_E_INVAL;
	if (strlen(dir) >= sizeof(st->dir) - sizeof(LMDB_LOCK_FILE) - 1) {
		log_warnx("store directory name too long");
		return VTPM_E_INVAL;
	}
	if (seal_init() != 0)
		return VTPM_E_CRYPTO;

	if (mkdir(dir, 0700) == 0)
		created = 1;
	else if (errno != EEXIST) {
		log_warn("mkdir %s", dir);
		return VTPM_E_IO;
	}
	if (stat(dir, &sb) == -1) {
		log_warn("stat %s", dir);
		return VTPM_E_IO;
	}
	if (!S_ISDIR(sb.st_mode)) {
		log_warnx("%s is not a directory", dir);
		return VTPM_E_INVAL;
	}
	if ((sb.st_mode & 077) != 0)
		log_warnx("store directory %s is open to group or others (mode %03o)",
		    dir, (unsigned int)(sb.st_mode & 0777));

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return VTPM_E_NOMEM;
	st->base.ops = &lmdb_ops;
	st->lock_fd = -1;
	if (pthread_rwlock_init(&st->lock, NULL) != 0) {
		free(st);
		return VTPM_E_NOMEM;
	}
	if (pthread_mutex_init(&st->log_mu, NULL) != 0) {
		pthread_rwlock_destroy(&st->lock);
		free(st);
		return VTPM_E_NOMEM;
	}
	memcpy(st->dir, dir, strlen(dir) + 1);
	if ((rc = lmdb_lock_dir(dir, &st->lock_fd)) != 0)
		goto fail;

	st->map_size = map_size != 0 ? map_size : LMDB_DEFAULT_MAP;
	st->envflags = MDB_NOTLS | ((flags & STORE_F_NOSYNC) ? MDB_NOSYNC : 0);
	if ((rc = lmdb_env_open(st)) != 0)
		goto fail;
	/* LMDB syncs its files, not the directory entries that name them */
	if (!(flags & STORE_F_NOSYNC)) {
		memcpy(parent, dir, strlen(dir) + 1);
		if ((rc = lmdb_fsync_dir(dir)) != 0 ||
		    (created && (rc = lmdb_fsync_dir(dirname(parent))) != 0))
			goto fail;
	}
	if ((rc = lmdb_log_recover(st, (flags & STORE_F_NOSYNC) != 0)) != 0)
		goto fail;
	if (flags & STORE_F_NOSYNC)
		log_warnx("store %s opened without sync: commits are NOT durable", dir);
	*out = &st->base;
	return 0;

fail:
	lmdb_ops.close(&st->base);
	return rc;
}

int
store_open_lmdb(const char *dir, size_t map_size, struct store **out)
{
	return store_open_lmdb_flags(dir, map_size, 0, out);
}

static void
lmdb_close(struct store *s)
{
	struct store_lmdb *st = lmdb_of(s);

	if (st->log != NULL) {
		/* best effort: a failure leaves the log for the next open */
		if (st->env != NULL)
			(void)lmdb_checkpoint(st);
		lmdb_ov_clear(st);
		store_log_close(st->log);
	}
	if (st->env != NULL)
		mdb_env_close(st->env);
	if (st->lock_fd != -1)
		close(st->lock_fd);	/* releases the flock */
	pthread_rwlock_destroy(&st->lock);
	pthread_mutex_destroy(&st->log_mu);
	free(st);
}

/* ---- reads ------------------------------------------------------------ */

/* Begins a read transaction under st->lock; end it with lmdb_end_read(). */
static int
lmdb_begin_read(struct store_lmdb *st, MDB_txn **txn)
{
	int rc;

	if ((rc = lmdb_enter(st)) != 0)
		return rc;
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn)) != 0) {
		lmdb_note_panic(st, rc);
		pthread_rwlock_unlock(&st->lock);
		return lmdb_err(rc, "mdb_txn_begin");
	}
	return 0;
}

static void
lmdb_end_read(struct store_lmdb *st, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->lock);
}

static int
lmdb_meta_get_kcv(struct store *s, uint8_t kcv[SEAL_KCV_LEN])
{
	static const char kcvkey[] = LMDB_META_KCV;
	struct store_lmdb *st = lmdb_of(s);
	MDB_txn *txn;
	MDB_val k, v;
	int rc;

	if ((rc = lmdb_begin_read(st, &txn)) != 0)
		return rc;
	lmdb_val(&k, kcvkey, sizeof(kcvkey) - 1);
	if ((rc = mdb_get(txn, st->db_meta, &k, &v)) != 0)
		rc = lmdb_err(rc, "get kcv");
	else if (v.mv_size != SEAL_KCV_LEN) {
		log_warnx("%s: key-check record is corrupt", st->dir);
		rc = VTPM_E_FORMAT;
	} else
		memcpy(kcv, v.mv_data, SEAL_KCV_LEN);
	lmdb_end_read(st, txn);
	return rc;
}

/*
 * Reads and decodes the record stored under name in txn, checking that it
 * names itself. VTPM_E_NOTFOUND, VTPM_E_FORMAT (logged), VTPM_E_STORE.
 */
static int
lmdb_inst_read(struct store_lmdb *st, MDB_txn *txn, const char *name,
    struct store_instance *out)
{
	MDB_val k, v;
	int rc;

	lmdb_val(&k, name, strlen(name));
	if ((rc = mdb_get(txn, st->db_inst, &k, &v)) != 0)
		return lmdb_err(rc, "get instance");
	if (store_inst_decode(v.mv_data, v.mv_size, out) != 0 ||
	    strcmp(out->name, name) != 0) {
		memset(out, 0, sizeof(*out));
		log_warnx("%s: record of instance %s is corrupt", st->dir, name);
		return VTPM_E_FORMAT;
	}
	return 0;
}

/* As lmdb_inst_read(), the overlay first (log_mu held): it is newer. */
static int
lmdb_inst_read_ov(struct store_lmdb *st, MDB_txn *txn, const char *name,
    struct store_instance *out)
{
	struct lmdb_ov_inst *e;

	if ((e = lmdb_ov_inst_find(st, name)) == NULL)
		return lmdb_inst_read(st, txn, name, out);
	*out = e->rec;
	return 0;
}

static int
lmdb_inst_get(struct store *s, const char *name, struct store_instance *out)
{
	struct store_lmdb *st = lmdb_of(s);
	struct lmdb_ov_inst *e;
	MDB_txn *txn;
	int rc;

	pthread_mutex_lock(&st->log_mu);
	if ((e = lmdb_ov_inst_find(st, name)) != NULL) {
		*out = e->rec;		/* newer than LMDB's */
		rc = 0;
	} else if ((rc = lmdb_begin_read(st, &txn)) == 0) {
		rc = lmdb_inst_read(st, txn, name, out);
		lmdb_end_read(st, txn);
	}
	pthread_mutex_unlock(&st->log_mu);
	return rc;
}

/*
 * Looks up the ident index: *name gets the NUL-terminated instance name.
 * VTPM_E_NOTFOUND, VTPM_E_FORMAT (the entry is not a valid name), VTPM_E_STORE.
 */
static int
lmdb_ident_read(struct store_lmdb *st, MDB_txn *txn, const uint8_t ident[STORE_IDENT_LEN],
    char name[STORE_NAME_MAX + 1])
{
	MDB_val k, v;
	int rc;

	lmdb_val(&k, ident, STORE_IDENT_LEN);
	if ((rc = mdb_get(txn, st->db_ident, &k, &v)) != 0)
		return lmdb_err(rc, "get ident");
	if (v.mv_size < 1 || v.mv_size > STORE_NAME_MAX) {
		log_warnx("%s: ident index entry is corrupt", st->dir);
		return VTPM_E_FORMAT;
	}
	memcpy(name, v.mv_data, v.mv_size);
	name[v.mv_size] = '\0';
	if (store_inst_name_check(name) != 0) {
		log_warnx("%s: ident index entry is corrupt", st->dir);
		return VTPM_E_FORMAT;
	}
	return 0;
}

static int
lmdb_inst_find_identity(struct store *s, const uint8_t ident[STORE_IDENT_LEN],
    const uint8_t meas[STORE_MEAS_LEN], const uint8_t host[STORE_HOST_DATA_LEN],
    struct store_instance *out)
{
	struct store_lmdb *st = lmdb_of(s);
	char name[STORE_NAME_MAX + 1];
	MDB_txn *txn;
	int rc;

	name[0] = '\0';
	/* the log never changes an identity: LMDB's index holds, the record may be newer */
	pthread_mutex_lock(&st->log_mu);
	if ((rc = lmdb_begin_read(st, &txn)) != 0) {
		pthread_mutex_unlock(&st->log_mu);
		return rc;
	}
	if ((rc = lmdb_ident_read(st, txn, ident, name)) == 0 &&
	    (rc = lmdb_inst_read_ov(st, txn, name, out)) == 0 &&
	    (memcmp(out->measurement, meas, STORE_MEAS_LEN) != 0 ||
	    memcmp(out->host_data, host, STORE_HOST_DATA_LEN) != 0)) {
		log_warnx("%s: ident index names %s, whose identity differs",
		    st->dir, name);
		rc = VTPM_E_FORMAT;
	} else if (rc == VTPM_E_NOTFOUND && name[0] != '\0') {
		/* index entry without its record */
		log_warnx("%s: ident index names missing instance %s", st->dir, name);
		rc = VTPM_E_FORMAT;
	}
	lmdb_end_read(st, txn);
	pthread_mutex_unlock(&st->log_mu);
	return rc;
}

static int
lmdb_inst_list(struct store *s, int (*cb)(const struct store_instance *, void *),
    void *arg)
{
	struct store_lmdb *st = lmdb_of(s);
	struct store_instance inst;
	char name[STORE_NAME_MAX + 1];
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, bad = 0;
	MDB_cursor_op op = MDB_FIRST;

	/* LMDB holds everything from here (cb may call the store: no log_mu) */
	pthread_mutex_lock(&st->log_mu);
	rc = lmdb_checkpoint(st);
	pthread_mutex_unlock(&st->log_mu);
	if (rc != 0 || (rc = lmdb_begin_read(st, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, st->db_inst, &cur)) != 0) {
		lmdb_end_read(st, txn);
		return lmdb_err(rc, "mdb_cursor_open");
	}
	for (;; op = MDB_NEXT) {
		if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0) {
			rc = rc == MDB_NOTFOUND ? 0 : lmdb_err(rc, "list instances");
			break;
		}
		if (k.mv_size < 1 || k.mv_size > STORE_NAME_MAX) {
			log_warnx("%s: instance table holds a bad key", st->dir);
			bad = 1;
			continue;
		}
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		if (store_inst_name_check(name) != 0 ||
		    store_inst_decode(v.mv_data, v.mv_size, &inst) != 0 ||
		    strcmp(inst.name, name) != 0) {
			log_warnx("%s: record of instance %s is corrupt; skipped",
			    st->dir, store_inst_name_check(name) == 0 ? name : "(bad key)");
			bad = 1;
			continue;
		}
		if ((rc = cb(&inst, arg)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	lmdb_end_read(st, txn);
	if (rc == 0 && bad)
		rc = VTPM_E_FORMAT;
	return rc;
}

static int
lmdb_blob_get(struct store *s, const uint8_t uuid[SEAL_UUID_LEN], uint8_t type,
    uint8_t *buf, size_t cap, size_t *len)
{
	struct store_lmdb *st = lmdb_of(s);
	uint8_t key[STORE_BLOB_KEY_LEN];
	struct lmdb_ov_blob *e;
	MDB_txn *txn = NULL;
	MDB_val k, v;
	int rc;

	lmdb_blob_key(key, uuid, type);
	pthread_mutex_lock(&st->log_mu);
	if ((e = lmdb_ov_blob_find(st, key)) != NULL) {
		v.mv_data = e->data;
		v.mv_size = e->len;
		rc = 0;
	} else if ((rc = lmdb_begin_read(st, &txn)) == 0) {
		lmdb_val(&k, key, sizeof(key));
		if ((rc = mdb_get(txn, st->db_blob, &k, &v)) != 0)
			rc = lmdb_err(rc, "get blob");
	}
	if (rc == 0 && v.mv_size > cap) {
		*len = v.mv_size;
		rc = VTPM_E_TOOBIG;
	} else if (rc == 0) {
		memcpy(buf, v.mv_data, v.mv_size);
		*len = v.mv_size;
	}
	if (txn != NULL)
		lmdb_end_read(st, txn);
	pthread_mutex_unlock(&st->log_mu);
	return rc;
}

/* ---- writes ----------------------------------------------------------- */

/* Deletes ident entry ident if it points at name (else leaves it). */
static int
lmdb_ident_drop(struct store_lmdb *st, MDB_txn *txn, const uint8_t ident[STORE_IDENT_LEN],
    const char *name)
{
	char cur[STORE_NAME_MAX + 1];
	MDB_val k;
	int rc;

	rc = lmdb_ident_read(st, txn, ident, cur);
	if (rc == VTPM_E_NOTFOUND)
		return 0;
	if (rc != 0 && rc != VTPM_E_FORMAT)
		return rc;
	if (rc == 0 && strcmp(cur, name) != 0)
		return 0;
	lmdb_val(&k, ident, STORE_IDENT_LEN);
	return lmdb_err(mdb_del(txn, st->db_ident, &k, NULL), "del ident");
}

static int
lmdb_apply_put_inst(struct store_lmdb *st, MDB_txn *txn, const struct store_op *op)
{
	struct store_instance old, other;
	uint8_t oldident[STORE_IDENT_LEN];
	char owner[STORE_NAME_MAX + 1];
	MDB_val k, v;
	int rc;

	rc = lmdb_inst_read(st, txn, op->name, &old);
	if (rc == 0) {
		if (memcmp(old.uuid, op->uuid, SEAL_UUID_LEN) != 0) {
			log_warnx("instance %s exists with another uuid", op->name);
			return VTPM_E_EXISTS;
		}
		if (!store_ident_is_empty(old.measurement, old.host_data)) {
			store_ident_key(old.measurement, old.host_data, oldident);
			if ((!op->has_ident ||
			    memcmp(oldident, op->ident, STORE_IDENT_LEN) != 0) &&
			    (rc = lmdb_ident_drop(st, txn, oldident, op->name)) != 0)
				return rc;
		}
	} else if (rc == VTPM_E_FORMAT) {
		log_warnx("instance %s: replacing a corrupt record", op->name);
	} else if (rc != VTPM_E_NOTFOUND)
		return rc;

	if (op->has_ident) {
		rc = lmdb_ident_read(st, txn, op->ident, owner);
		if (rc == 0 && strcmp(owner, op->name) != 0) {
			/* taken, unless the entry is stale */
			if (lmdb_inst_read(st, txn, owner, &other) == 0 &&
			    memcmp(other.measurement, op->meas, STORE_MEAS_LEN) == 0 &&
			    memcmp(other.host_data, op->host, STORE_HOST_DATA_LEN) == 0) {
				log_warnx("instance %s: identity already enrolled as %s",
				    op->name, owner);
				return VTPM_E_EXISTS;
			}
			log_warnx("instance %s: replacing a stale ident entry", op->name);
		} else if (rc != 0 && rc != VTPM_E_NOTFOUND && rc != VTPM_E_FORMAT)
			return rc;
		lmdb_val(&k, op->ident, STORE_IDENT_LEN);
		lmdb_val(&v, op->name, strlen(op->name));
		if ((rc = mdb_put(txn, st->db_ident, &k, &v, 0)) != 0)
			return lmdb_err(rc, "put ident");
	}

	lmdb_val(&k, op->name, strlen(op->name));
	lmdb_val(&v, op->data, op->len);
	return lmdb_err(mdb_put(txn, st->db_inst, &k, &v, 0), "put instance");
}

/* Deletes every blob whose key starts with uuid. */
static int
lmdb_blobs_drop(struct store_lmdb *st, MDB_txn *txn, const uint8_t uuid[SEAL_UUID_LEN])
{
	uint8_t first[STORE_BLOB_KEY_LEN];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	lmdb_blob_key(first, uuid, 0);
	if ((rc = mdb_cursor_open(txn, st->db_blob, &cur)) != 0)
		return lmdb_err(rc, "mdb_cursor_open");
	for (;;) {
		lmdb_val(&k, first, sizeof(first));
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) != 0)
			break;
		if (k.mv_size < SEAL_UUID_LEN || memcmp(k.mv_data, uuid, SEAL_UUID_LEN) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	return lmdb_err(rc, "del blobs");
}

static int
lmdb_apply_del_inst(struct store_lmdb *st, MDB_txn *txn, const struct store_op *op)
{
	struct store_instance old;
	uint8_t ident[STORE_IDENT_LEN];
	MDB_val k;
	int rc;

	rc = lmdb_inst_read(st, txn, op->name, &old);
	if (rc == 0) {
		if (!store_ident_is_empty(old.measurement, old.host_data)) {
			store_ident_key(old.measurement, old.host_data, ident);
			if ((rc = lmdb_ident_drop(st, txn, ident, op->name)) != 0)
				return rc;
		}
		if ((rc = lmdb_blobs_drop(st, txn, old.uuid)) != 0)
			return rc;
	} else if (rc == VTPM_E_FORMAT) {
		log_warnx("instance %s: deleting a corrupt record; its blobs stay behind",
		    op->name);
	} else
		return rc;	/* VTPM_E_NOTFOUND included */

	lmdb_val(&k, op->name, strlen(op->name));
	return lmdb_err(mdb_del(txn, st->db_inst, &k, NULL), "del instance");
}

/* Appends an audit record under the next sequence number. */
static int
lmdb_apply_put_audit(struct store_lmdb *st, MDB_txn *txn, const struct store_op *op)
{
	uint8_t seqkey[8];
	uint64_t seq = 1;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, st->db_audit, &cur)) != 0)
		return lmdb_err(rc, "mdb_cursor_open");
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	mdb_cursor_close(cur);
	if (rc == 0) {
		if (k.mv_size != sizeof(seqkey)) {
			log_warnx("%s: audit table holds a bad key", st->dir);
			return VTPM_E_FORMAT;
		}
		seq = be64_dec(k.mv_data) + 1;
	} else if (rc != MDB_NOTFOUND)
		return lmdb_err(rc, "audit last");
	be64_enc(seqkey, seq);
	lmdb_val(&k, seqkey, sizeof(seqkey));
	lmdb_val(&v, op->data, op->len);
	return lmdb_err(mdb_put(txn, st->db_audit, &k, &v, MDB_APPEND), "put audit");
}

/* Deletes the oldest audit records up to a sequence number, never the newest. */
static int
lmdb_apply_prune_audit(struct store_lmdb *st, MDB_txn *txn, const struct store_op *op)
{
	uint64_t upto, last, seq;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (op->len != 8)
		return VTPM_E_INVAL;
	upto = be64_dec(op->data);
	if ((rc = mdb_cursor_open(txn, st->db_audit, &cur)) != 0)
		return lmdb_err(rc, "mdb_cursor_open");
	if ((rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) != 0) {
		mdb_cursor_close(cur);
		return rc == MDB_NOTFOUND ? 0 : lmdb_err(rc, "audit last");
	}
	if (k.mv_size != 8) {
		mdb_cursor_close(cur);
		log_warnx("%s: audit table holds a bad key", st->dir);
		return VTPM_E_FORMAT;
	}
	last = be64_dec(k.mv_data);
	if (upto >= last)
		upto = last - 1;	/* the newest stays: the sequence goes on from it */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8 || (seq = be64_dec(k.mv_data)) > upto)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : lmdb_err(rc, "prune audit");
}

static void
lmdb_xfer_key(uint8_t key[STORE_XFER_KEY_LEN], uint8_t kind, const uint8_t id[STORE_XFER_ID_LEN])
{
	key[0] = kind;
	memcpy(key + 1, id, STORE_XFER_ID_LEN);
}

static int
lmdb_apply_xfer(struct store_lmdb *st, MDB_txn *txn, const struct store_op *op)
{
	uint8_t key[STORE_XFER_KEY_LEN];
	MDB_val k, v;
	int rc;

	lmdb_xfer_key(key, op->type, op->uuid);
	lmdb_val(&k, key, sizeof(key));
	if (op->kind == STORE_OP_DEL_XFER) {
		rc = mdb_del(txn, st->db_xfer, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : lmdb_err(rc, "del xfer");
	}
	lmdb_val(&v, op->data, op->len);
	return lmdb_err(mdb_put(txn, st->db_xfer, &k, &v, 0), "put xfer");
}

static int
lmdb_apply(struct store_lmdb *st, MDB_txn *txn, const struct store_op *op)
{
	static const char kcvkey[] = LMDB_META_KCV;
	uint8_t key[STORE_BLOB_KEY_LEN];
	MDB_val k, v;
	int rc;

	switch (op->kind) {
	case STORE_OP_PUT_KCV:
		lmdb_val(&k, kcvkey, sizeof(kcvkey) - 1);
		lmdb_val(&v, op->data, op->len);
		return lmdb_err(mdb_put(txn, st->db_meta, &k, &v, 0), "put kcv");
	case STORE_OP_PUT_INST:
		return lmdb_apply_put_inst(st, txn, op);
	case STORE_OP_DEL_INST:
		return lmdb_apply_del_inst(st, txn, op);
	case STORE_OP_PUT_BLOB:
		lmdb_blob_key(key, op->uuid, op->type);
		lmdb_val(&k, key, sizeof(key));
		lmdb_val(&v, op->data, op->len);
		return lmdb_err(mdb_put(txn, st->db_blob, &k, &v, 0), "put blob");
	case STORE_OP_DEL_BLOB:
		lmdb_blob_key(key, op->uuid, op->type);
		lmdb_val(&k, key, sizeof(key));
		rc = mdb_del(txn, st->db_blob, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : lmdb_err(rc, "del blob");
	case STORE_OP_PUT_AUDIT:
		return lmdb_apply_put_audit(st, txn, op);
	case STORE_OP_PRUNE_AUDIT:
		return lmdb_apply_prune_audit(st, txn, op);
	case STORE_OP_PUT_XFER:
	case STORE_OP_DEL_XFER:
		return lmdb_apply_xfer(st, txn, op);
	}
	return VTPM_E_INVAL;
}

/*
 * Runs apply(st, txn, arg) in one write transaction and commits it durably
 * (unless MDB_NOSYNC): data pages, fdatasync, then the meta page.
 */
static int
lmdb_write_txn(struct store_lmdb *st,
    int (*apply)(struct store_lmdb *, MDB_txn *, const void *), const void *arg)
{
	MDB_txn *txn;
	int rc;

	if ((rc = lmdb_enter(st)) != 0)
		return rc;
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0) {
		lmdb_note_panic(st, rc);
		rc = lmdb_err(rc, "mdb_txn_begin");
		goto out;
	}
	if ((rc = apply(st, txn, arg)) != 0) {
		mdb_txn_abort(txn);
		goto out;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		rc = lmdb_err(rc, "mdb_txn_commit");
		/* a failed meta page write leaves the environment fatal */
		if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) == MDB_PANIC)
			st->panicked = 1;
		else
			mdb_txn_abort(txn);
	}
out:
	pthread_rwlock_unlock(&st->lock);
	if (st->panicked)
		lmdb_reopen(st);	/* so the next commit can work */
	return rc;
}

static int
lmdb_apply_batch(struct store_lmdb *st, MDB_txn *txn, const void *arg)
{
	const struct store_batch *b = arg;
	size_t i;
	int rc;

	for (i = 0; i < b->n; i++)
		if ((rc = lmdb_apply(st, txn, &b->ops[i])) != 0)
			return rc;
	return 0;
}

/* ---- the commit log (under log_mu) -------------------------------------- */

/* Puts the overlay into LMDB and marks the log's epoch done, in txn. */
static int
lmdb_apply_overlay(struct store_lmdb *st, MDB_txn *txn, const void *arg)
{
	static const char donekey[] = LMDB_META_LOGDONE;
	struct lmdb_ov_inst *ie;
	struct lmdb_ov_blob *be;
	uint8_t done[16];
	MDB_val k, v;
	size_t h;
	int rc;

	for (h = 0; h < LMDB_OV_BUCKETS; h++) {
		for (ie = st->ov_inst[h]; ie != NULL; ie = ie->next) {
			lmdb_val(&k, ie->rec.name, strlen(ie->rec.name));
			lmdb_val(&v, ie->enc, ie->len);
			if ((rc = mdb_put(txn, st->db_inst, &k, &v, 0)) != 0)
				return lmdb_err(rc, "checkpoint instance");
		}
		for (be = st->ov_blob[h]; be != NULL; be = be->next) {
			lmdb_val(&k, be->key, sizeof(be->key));
			lmdb_val(&v, be->data, be->len);
			if ((rc = mdb_put(txn, st->db_blob, &k, &v, 0)) != 0)
				return lmdb_err(rc, "checkpoint blob");
		}
	}
	be64_enc(done, store_log_epoch(st->log));
	be64_enc(done + 8, st->log_last_seq);
	lmdb_val(&k, donekey, sizeof(donekey) - 1);
	lmdb_val(&v, done, sizeof(done));
	return lmdb_err(mdb_put(txn, st->db_meta, &k, &v, 0), "put logdone");
}

static int64_t
lmdb_ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/*
 * The checkpoint: if the log's epoch may hold records LMDB lacks, puts the
 * overlay into LMDB and closes the epoch in one durable transaction; then
 * starts a new epoch. A failed transaction leaves everything as it was (the
 * log is still durable; a later call retries) and is returned. A failed
 * reset is not: LMDB then holds everything, and commits go the LMDB way
 * until a reset works.
 */
static int
lmdb_checkpoint(struct store_lmdb *st)
{
	int rc, closed = 0;

	if (st->log == NULL)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &st->log_tried);
	if (st->log_open) {
		if ((rc = lmdb_write_txn(st, lmdb_apply_overlay, NULL)) != 0) {
			log_warnx("%s: checkpoint of the commit log failed: %s (retried)",
			    st->dir, vtpm_strerror(rc));
			return rc;
		}
		lmdb_ov_clear(st);
		st->log_open = 0;
		st->log_ready = 0;
		closed = 1;
	}
	/* a failing log is retried at most every LMDB_CKPT_RETRY_MS */
	if (!st->log_ready && (closed ||
	    lmdb_ms_since(&st->log_reset_tried) >= LMDB_CKPT_RETRY_MS)) {
		clock_gettime(CLOCK_MONOTONIC, &st->log_reset_tried);
		if (store_log_reset(st->log) == 0)
			st->log_ready = 1;
		else
			log_warnx("%s: commit log cannot be reset; commits go through LMDB",
			    st->dir);
	}
	return 0;
}

/*
 * 0 if every PUT_INST of b replaces a record (overlay, else LMDB) of the
 * same uuid and identity, so the ident index needs no change and no
 * conflict can arise; 1 if one does not; a VTPM_E_* code if LMDB fails.
 */
static int
lmdb_log_eligible(struct store_lmdb *st, const struct store_batch *b)
{
	const struct store_instance *cur;
	struct store_instance old;
	struct lmdb_ov_inst *e;
	MDB_txn *txn = NULL;
	size_t i;
	int rc = 0;

	for (i = 0; i < b->n && rc == 0; i++) {
		const struct store_op *op = &b->ops[i];

		if (op->kind != STORE_OP_PUT_INST)
			continue;
		if ((e = lmdb_ov_inst_find(st, op->name)) != NULL) {
			cur = &e->rec;
		} else {
			if (txn == NULL && (rc = lmdb_begin_read(st, &txn)) != 0)
				return rc;
			if ((rc = lmdb_inst_read(st, txn, op->name, &old)) != 0) {
				if (rc == VTPM_E_NOTFOUND || rc == VTPM_E_FORMAT)
					rc = 1;	/* a create, or a repair */
				break;
			}
			cur = &old;
		}
		if (memcmp(cur->uuid, op->uuid, SEAL_UUID_LEN) != 0 ||
		    memcmp(cur->measurement, op->meas, STORE_MEAS_LEN) != 0 ||
		    memcmp(cur->host_data, op->host, STORE_HOST_DATA_LEN) != 0)
			rc = 1;
	}
	if (txn != NULL)
		lmdb_end_read(st, txn);
	return rc;
}

/*
 * 1 if LMDB has room to take the overlay with need more bytes at the next
 * checkpoint, counting every byte twice (copy-on-write, page overhead) plus
 * a margin: the log must never accept what a checkpoint cannot put into
 * LMDB, or it would stay full for good.
 */
static int
lmdb_log_room(struct store_lmdb *st, size_t need)
{
	MDB_envinfo ei;
	MDB_stat ms;
	size_t used, free_bytes;
	int ok = 0;

	if (lmdb_enter(st) != 0)
		return 0;
	if (mdb_env_info(st->env, &ei) == 0 && mdb_env_stat(st->env, &ms) == 0) {
		used = (ei.me_last_pgno + 1) * (size_t)ms.ms_psize;
		free_bytes = ei.me_mapsize > used ? ei.me_mapsize - used : 0;
		ok = 2 * (st->ov_bytes + need) + ((size_t)64 << 10) <= free_bytes;
	}
	pthread_rwlock_unlock(&st->lock);
	return ok;
}

/*
 * Commits b through the log: 0 when it is durable there (and in the
 * overlay), 1 when b is not for the log (the caller takes the LMDB way), or
 * a VTPM_E_* code: the commit failed and nothing of it will ever appear.
 */
static int
lmdb_log_commit(struct store_lmdb *st, const struct store_batch *b)
{
	struct lmdb_ov_prep prep;
	size_t need, size = store_log_size(st->log);
	int rc;

	if ((need = store_log_record_size(b)) == 0 || need > (size - STORE_LOG_BLOCK) / 4)
		return 1;
	if ((rc = lmdb_log_eligible(st, b)) != 0)
		return rc;
	if (!lmdb_log_room(st, need))
		return 1;	/* the LMDB way says "full" now, not a checkpoint later */
	/* due: half full, or the oldest entry a second old */
	if (st->log_ready && (store_log_used(st->log) + need > size / LMDB_CKPT_FILL_DIV ||
	    (st->ov_count > 0 && lmdb_ms_since(&st->log_first) >= LMDB_CKPT_AGE_MS)) &&
	    (lmdb_ms_since(&st->log_tried) >= LMDB_CKPT_RETRY_MS ||
	    need > size - store_log_used(st->log)))
		(void)lmdb_checkpoint(st);	/* failed: go on while the log has room */
	if (!st->log_ready) {
		(void)lmdb_checkpoint(st);
		if (!st->log_ready)
			/* closed and not reset: LMDB; not closed after a failure: refuse */
			return st->log_open ? VTPM_E_STORE : 1;
	}
	if (need > size - store_log_used(st->log)) {
		log_warnx("%s: commit log full and checkpoints fail", st->dir);
		return VTPM_E_STORE;
	}
	if ((rc = lmdb_ov_prep(b, &prep)) != 0)
		return rc;
	if ((rc = store_log_append(st->log, b)) != 0) {
		lmdb_ov_prep_free(&prep);
		/*
		 * The record's bytes on disk are unknown: this epoch must be
		 * closed in LMDB (so it is never replayed) and the log reset
		 * before anything else is appended. Try at once.
		 */
		st->log_open = 1;
		st->log_ready = 0;
		(void)lmdb_checkpoint(st);
		return rc == VTPM_E_IO ? VTPM_E_STORE : rc;
	}
	st->log_open = 1;
	st->log_last_seq = store_log_next_seq(st->log) - 1;
	lmdb_ov_prep_apply(st, &prep);
	return 0;
}

static int
lmdb_batch_commit(struct store *s, const struct store_batch *b)
{
	struct store_lmdb *st = lmdb_of(s);
	int rc = 1;

	pthread_mutex_lock(&st->log_mu);
	if (st->log != NULL)
		rc = lmdb_log_commit(st, b);
	/* every other batch: the log's content first, then one LMDB transaction */
	if (rc == 1 && (rc = lmdb_checkpoint(st)) == 0)
		rc = lmdb_write_txn(st, lmdb_apply_batch, b);
	pthread_mutex_unlock(&st->log_mu);
	return rc;
}

/*
 * Periodic housekeeping (the parent calls store_fleet_tick() every round):
 * checkpoints a log whose oldest record is a second old, and retries a
 * failed checkpoint or reset, at most once a second.
 */
static void
lmdb_tick(struct store *s, void (*lost)(const char *, void *), void *arg)
{
	struct store_lmdb *st = lmdb_of(s);

	if (st->log == NULL || pthread_mutex_trylock(&st->log_mu) != 0)
		return;
	if (((st->log_open && lmdb_ms_since(&st->log_first) >= LMDB_CKPT_AGE_MS) ||
	    !st->log_ready) && lmdb_ms_since(&st->log_tried) >= LMDB_CKPT_AGE_MS)
		(void)lmdb_checkpoint(st);
	pthread_mutex_unlock(&st->log_mu);
}

/* Replays one record of the log into the overlay (at open). */
static int
lmdb_replay_cb(const struct store_batch *b, uint64_t seq, void *arg)
{
	struct store_lmdb *st = arg;
	struct lmdb_ov_prep prep;
	int rc;

	if ((rc = lmdb_ov_prep(b, &prep)) != 0)
		return rc;
	lmdb_ov_prep_apply(st, &prep);
	st->log_open = 1;
	st->log_last_seq = seq;
	return 0;
}

/*
 * Opens the commit log and recovers it: the records of an epoch LMDB has
 * not marked done are replayed, in order up to the first that does not
 * check (a torn tail), and checkpointed. Fails if they cannot be.
 */
static int
lmdb_log_recover(struct store_lmdb *st, int nosync)
{
	static const char donekey[] = LMDB_META_LOGDONE;
	uint64_t done_epoch = 0;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, valid;

	if ((rc = store_log_open(st->dir, nosync, &st->log, &valid)) != 0)
		return rc;
	st->log_open = 0;
	st->log_ready = 0;
	if (valid) {
		if ((rc = lmdb_begin_read(st, &txn)) != 0)
			return rc;
		lmdb_val(&k, donekey, sizeof(donekey) - 1);
		if ((rc = mdb_get(txn, st->db_meta, &k, &v)) == 0 && v.mv_size == 16)
			done_epoch = be64_dec(v.mv_data);
		lmdb_end_read(st, txn);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return lmdb_err(rc, "get logdone");
		if (done_epoch != store_log_epoch(st->log)) {
			if ((rc = store_log_replay(st->log, lmdb_replay_cb, st)) != 0)
				return rc;
			st->log_ready = !st->log_open;	/* empty: append to it */
			if (st->log_open)
				log_info("%s: replaying %zu entries of %llu commit log records",
				    st->dir, st->ov_count, (unsigned long long)st->log_last_seq);
		}
	}
	if ((rc = lmdb_checkpoint(st)) != 0)
		return rc;
	return 0;
}

/* ---- snapshots, audit and transfer reads ----------------------------- */

struct lmdb_snapshot {
	struct store_snapshot	 base;	/* first */
	MDB_txn			*txn;
};

static int
lmdb_snapshot_begin(struct store *s, struct store_snapshot **out)
{
	struct store_lmdb *st = lmdb_of(s);
	struct lmdb_snapshot *sn;
	int rc;

	if ((sn = calloc(1, sizeof(*sn))) == NULL)
		return VTPM_E_NOMEM;
	sn->base.ss_store = s;
	/*
	 * MDB_NOTLS: the read transaction may outlive this call and cross
	 * threads, so it does not hold st->lock; the count keeps its
	 * environment from being reopened under it.
	 */
	pthread_mutex_lock(&st->log_mu);
	if ((rc = lmdb_checkpoint(st)) == 0)	/* LMDB holds everything */
		rc = lmdb_begin_read(st, &sn->txn);
	pthread_mutex_unlock(&st->log_mu);
	if (rc != 0) {
		free(sn);
		return rc;
	}
	__atomic_add_fetch(&st->snapshots, 1, __ATOMIC_SEQ_CST);
	pthread_rwlock_unlock(&st->lock);
	*out = &sn->base;
	return 0;
}

static void
lmdb_snapshot_end(struct store_snapshot *snap)
{
	struct lmdb_snapshot *sn = (struct lmdb_snapshot *)snap;
	struct store_lmdb *st = lmdb_of(snap->ss_store);

	mdb_txn_abort(sn->txn);
	__atomic_sub_fetch(&st->snapshots, 1, __ATOMIC_SEQ_CST);
	free(sn);
}

static int
lmdb_snapshot_info(struct store_snapshot *snap, size_t *count, uint8_t kcv[SEAL_KCV_LEN])
{
	static const char kcvkey[] = LMDB_META_KCV;
	struct lmdb_snapshot *sn = (struct lmdb_snapshot *)snap;
	struct store_lmdb *st = lmdb_of(snap->ss_store);
	MDB_stat ms;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_stat(sn->txn, st->db_inst, &ms)) != 0)
		return lmdb_err(rc, "mdb_stat");
	*count = ms.ms_entries;
	if (kcv == NULL)
		return 0;
	lmdb_val(&k, kcvkey, sizeof(kcvkey) - 1);
	if ((rc = mdb_get(sn->txn, st->db_meta, &k, &v)) != 0)
		return lmdb_err(rc, "get kcv");
	if (v.mv_size != SEAL_KCV_LEN) {
		log_warnx("%s: key-check record is corrupt", st->dir);
		return VTPM_E_FORMAT;
	}
	memcpy(kcv, v.mv_data, SEAL_KCV_LEN);
	return 0;
}

/* Points *p and *n at the blob (uuid, type) in txn, or NULL/0 if there is none. */
static int
lmdb_blob_ref(struct store_lmdb *st, MDB_txn *txn, const uint8_t uuid[SEAL_UUID_LEN],
    uint8_t type, const uint8_t **p, size_t *n)
{
	uint8_t key[STORE_BLOB_KEY_LEN];
	MDB_val k, v;
	int rc;

	*p = NULL;
	*n = 0;
	lmdb_blob_key(key, uuid, type);
	lmdb_val(&k, key, sizeof(key));
	rc = mdb_get(txn, st->db_blob, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return lmdb_err(rc, "get blob");
	*p = v.mv_data;
	*n = v.mv_size;
	return 0;
}

static int
lmdb_snapshot_next(struct store_snapshot *snap, const char *after,
    struct store_inst_view *out)
{
	struct lmdb_snapshot *sn = (struct lmdb_snapshot *)snap;
	struct store_lmdb *st = lmdb_of(snap->ss_store);
	char name[STORE_NAME_MAX + 1];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(sn->txn, st->db_inst, &cur)) != 0)
		return lmdb_err(rc, "mdb_cursor_open");
	if (after == NULL) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	} else {
		lmdb_val(&k, after, strlen(after));
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size == strlen(after) &&
		    memcmp(k.mv_data, after, k.mv_size) == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0)
		return lmdb_err(rc, "next instance");
	if (k.mv_size < 1 || k.mv_size > STORE_NAME_MAX) {
		log_warnx("%s: instance table holds a bad key", st->dir);
		return VTPM_E_FORMAT;
	}
	memcpy(name, k.mv_data, k.mv_size);
	name[k.mv_size] = '\0';
	if (store_inst_name_check(name) != 0 ||
	    store_inst_decode(v.mv_data, v.mv_size, &out->rec) != 0 ||
	    strcmp(out->rec.name, name) != 0) {
		memset(out, 0, sizeof(*out));
		if (store_inst_name_check(name) == 0)
			memcpy(out->rec.name, name, strlen(name) + 1);
		log_warnx("%s: record of instance %s is corrupt", st->dir,
		    out->rec.name[0] != '\0' ? out->rec.name : "(bad key)");
		return VTPM_E_FORMAT;
	}
	out->rec_bytes = v.mv_data;
	out->rec_len = v.mv_size;
	if (out->rec.perm_gen != 0 && (rc = lmdb_blob_ref(st, sn->txn, out->rec.uuid,
	    SEAL_BLOB_PERMANENT, &out->perm, &out->perm_len)) != 0)
		return rc;
	if (out->rec.vol_gen != 0 && (rc = lmdb_blob_ref(st, sn->txn, out->rec.uuid,
	    SEAL_BLOB_VOLATILE, &out->vol, &out->vol_len)) != 0)
		return rc;
	return lmdb_blob_ref(st, sn->txn, out->rec.uuid, SEAL_BLOB_ENDORSEMENT, &out->endo,
	    &out->endo_len);
}

static int
lmdb_audit_list(struct store *s, uint64_t from_seq,
    int (*cb)(uint64_t, const uint8_t *, size_t, void *), void *arg)
{
	struct store_lmdb *st = lmdb_of(s);
	uint8_t first[8];
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rc;

	if ((rc = lmdb_begin_read(st, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, st->db_audit, &cur)) != 0) {
		lmdb_end_read(st, txn);
		return lmdb_err(rc, "mdb_cursor_open");
	}
	be64_enc(first, from_seq);
	lmdb_val(&k, first, sizeof(first));
	for (;; op = MDB_NEXT) {
		if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0) {
			rc = rc == MDB_NOTFOUND ? 0 : lmdb_err(rc, "list audit");
			break;
		}
		if (k.mv_size != 8) {
			log_warnx("%s: audit table holds a bad key; skipped", st->dir);
			continue;
		}
		if ((rc = cb(be64_dec(k.mv_data), v.mv_data, v.mv_size, arg)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	lmdb_end_read(st, txn);
	return rc;
}

static int
lmdb_audit_bounds(struct store *s, uint64_t *first, uint64_t *last, uint64_t *count)
{
	struct store_lmdb *st = lmdb_of(s);
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_stat ms;
	MDB_val k, v;
	int rc;

	if ((rc = lmdb_begin_read(st, &txn)) != 0)
		return rc;
	if ((rc = mdb_stat(txn, st->db_audit, &ms)) != 0 ||
	    (rc = mdb_cursor_open(txn, st->db_audit, &cur)) != 0) {
		lmdb_end_read(st, txn);
		return lmdb_err(rc, "audit bounds");
	}
	*count = ms.ms_entries;
	if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 && k.mv_size == 8) {
		*first = be64_dec(k.mv_data);
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) == 0 && k.mv_size == 8)
			*last = be64_dec(k.mv_data);
	}
	mdb_cursor_close(cur);
	lmdb_end_read(st, txn);
	if (rc == MDB_NOTFOUND)
		return 0;
	return rc == 0 ? 0 : lmdb_err(rc, "audit bounds");
}

static int
lmdb_xfer_get(struct store *s, uint8_t kind, const uint8_t id[STORE_XFER_ID_LEN],
    uint8_t *buf, size_t cap, size_t *len)
{
	struct store_lmdb *st = lmdb_of(s);
	uint8_t key[STORE_XFER_KEY_LEN];
	MDB_txn *txn;
	MDB_val k, v;
	int rc;

	if ((rc = lmdb_begin_read(st, &txn)) != 0)
		return rc;
	lmdb_xfer_key(key, kind, id);
	lmdb_val(&k, key, sizeof(key));
	if ((rc = mdb_get(txn, st->db_xfer, &k, &v)) != 0)
		rc = lmdb_err(rc, "get xfer");
	else if (v.mv_size > cap) {
		*len = v.mv_size;
		rc = VTPM_E_TOOBIG;
	} else {
		memcpy(buf, v.mv_data, v.mv_size);
		*len = v.mv_size;
	}
	lmdb_end_read(st, txn);
	return rc;
}

static const struct store_ops lmdb_ops = {
	.name			= "lmdb",
	.close			= lmdb_close,
	.meta_get_kcv		= lmdb_meta_get_kcv,
	.inst_get		= lmdb_inst_get,
	.inst_find_identity	= lmdb_inst_find_identity,
	.inst_list		= lmdb_inst_list,
	.blob_get		= lmdb_blob_get,
	.batch_commit		= lmdb_batch_commit,
	.snapshot_begin		= lmdb_snapshot_begin,
	.snapshot_end		= lmdb_snapshot_end,
	.snapshot_info		= lmdb_snapshot_info,
	.snapshot_next		= lmdb_snapshot_next,
	.audit_list		= lmdb_audit_list,
	.audit_bounds		= lmdb_audit_bounds,
	.xfer_get		= lmdb_xfer_get,
	.fleet_tick		= lmdb_tick,
};
