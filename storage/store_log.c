/*
 * store_log.c: the commit log of the LMDB backend (store_log.h): one
 * preallocated file, one record per group commit of instance state, one
 * fdatasync per record. Trusts the batches store_lmdb.c hands it (checked by
 * store.c); trusts nothing read back from the file (store_log_parse()).
 *
 * Why a preallocated file: overwriting blocks that already exist neither
 * allocates nor changes the size, so fdatasync flushes the data alone (no
 * file system metadata, no journal commit). Why 4 KiB alignment: a torn
 * write touches only the record being written, never an earlier durable
 * one. Why BLAKE2b (crypto_generichash) as the checksum: libsodium is
 * already linked, and the blobs were just sealed with a pass of the same
 * order of cost; a 256-bit sum leaves no chance that a torn or stale record
 * passes.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cursor.h"
#include "log.h"
#include "store_log.h"

static const uint8_t log_hdr_magic[8] = { 'V', 'T', 'P', 'M', 'L', 'O', 'G', '1' };
static const uint8_t log_rec_magic[8] = { 'V', 'T', 'P', 'M', 'R', 'E', 'C', '1' };

#define LOG_HDR_LEN	(8 + 8 + 8)
#define LOG_OP_INST	1
#define LOG_OP_BLOB	2

struct store_log {
	int		 fd;
	int		 nosync;
	char		 path[PATH_MAX];
	size_t		 size;		/* file size, a multiple of the block */
	size_t		 tail;		/* next record's offset */
	uint64_t	 epoch;
	uint64_t	 next_seq;
	uint8_t		*buf;		/* encoding buffer (records hold no secret) */
	size_t		 bufcap;
};

static size_t
log_pad(size_t n)
{
	return (n + STORE_LOG_BLOCK - 1) / STORE_LOG_BLOCK * STORE_LOG_BLOCK;
}

static int
log_sync(struct store_log *l)
{
	if (l->nosync)
		return 0;
	if (fdatasync(l->fd) == -1) {
		log_warn("fdatasync %s", l->path);
		return VTPM_E_IO;
	}
	return 0;
}

/* pwrite()s all of p[0..n) at off, looping over short writes. */
static int
log_pwrite_all(int fd, const uint8_t *p, size_t n, off_t off, const char *path)
{
	ssize_t w;

	while (n > 0) {
		w = pwrite(fd, p, n, off);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			log_warn("pwrite %s", path);
			return errno == ENOSPC || errno == EDQUOT ? VTPM_E_STORE_FULL : VTPM_E_IO;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static int
log_pread_all(int fd, uint8_t *p, size_t n, off_t off)
{
	ssize_t r;

	while (n > 0) {
		r = pread(fd, p, n, off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? VTPM_E_FORMAT : VTPM_E_IO;
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

static void
log_sum(const uint8_t *p, size_t n, uint8_t sum[STORE_LOG_SUM_LEN])
{
	crypto_generichash(sum, STORE_LOG_SUM_LEN, p, n, NULL, 0);
}

/* ---- the header ------------------------------------------------------- */

static void
log_hdr_encode(uint8_t blk[STORE_LOG_BLOCK], uint64_t size, uint64_t epoch)
{
	memset(blk, 0, STORE_LOG_BLOCK);
	memcpy(blk, log_hdr_magic, 8);
	be64_enc(blk + 8, size);
	be64_enc(blk + 16, epoch);
	log_sum(blk, LOG_HDR_LEN, blk + LOG_HDR_LEN);
}

/* 0 and *epoch if the header block checks against size. */
static int
log_hdr_check(const uint8_t *blk, uint64_t size, uint64_t *epoch)
{
	uint8_t sum[STORE_LOG_SUM_LEN];

	if (memcmp(blk, log_hdr_magic, 8) != 0 || be64_dec(blk + 8) != size)
		return VTPM_E_FORMAT;
	log_sum(blk, LOG_HDR_LEN, sum);
	if (sodium_memcmp(sum, blk + LOG_HDR_LEN, sizeof(sum)) != 0)
		return VTPM_E_FORMAT;
	*epoch = be64_dec(blk + 16);
	return 0;
}

/* ---- open, create, reset ----------------------------------------------- */

/*
 * Drops the file's clean cached pages. The page cache may hold the log in
 * large folios (those of the zero fill, or of a big record); a small record
 * written into one later dirties, and fdatasync then writes, the whole
 * folio: measured 40 KB written per NV write instead of 4 on Linux 6.18
 * ext4. After a drop, each record gets folios of its own size.
 */
static void
log_drop_cache(int fd)
{
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

static int
log_fsync_dir(const char *dir)
{
	int fd, rc = 0;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("open %s", dir);
		return VTPM_E_IO;
	}
	if (fsync(fd) == -1) {
		log_warn("fsync %s", dir);
		rc = VTPM_E_IO;
	}
	close(fd);
	return rc;
}

/*
 * Writes a zero-filled log of STORE_LOG_SIZE under a temporary name, syncs
 * it and renames it into place: a log file that exists is always whole.
 */
static int
log_create(const char *dir, const char *path, int nosync)
{
	char tmp[PATH_MAX];
	uint8_t *zeros;
	size_t off;
	int fd, n, rc = 0;

	n = snprintf(tmp, sizeof(tmp), "%s.new", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return VTPM_E_INVAL;
	if ((zeros = calloc(1, (size_t)1 << 20)) == NULL)
		return VTPM_E_NOMEM;
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		log_warn("open %s", tmp);
		free(zeros);
		return VTPM_E_IO;
	}
	for (off = 0; off < STORE_LOG_SIZE && rc == 0; off += (size_t)1 << 20)
		rc = log_pwrite_all(fd, zeros, (size_t)1 << 20, (off_t)off, tmp);
	free(zeros);
	if (rc == 0 && !nosync && fdatasync(fd) == -1) {
		log_warn("fdatasync %s", tmp);
		rc = VTPM_E_IO;
	}
	if (rc == 0)
		log_drop_cache(fd);
	close(fd);
	if (rc == 0 && rename(tmp, path) == -1) {
		log_warn("rename %s", tmp);
		rc = VTPM_E_IO;
	}
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	return nosync ? 0 : log_fsync_dir(dir);
}

int
store_log_open(const char *dir, int nosync, struct store_log **out, int *valid)
{
	struct store_log *l;
	uint8_t blk[STORE_LOG_BLOCK];
	struct stat sb;
	int n, rc;

	*out = NULL;
	*valid = 0;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return VTPM_E_NOMEM;
	l->fd = -1;
	l->nosync = nosync;
	n = snprintf(l->path, sizeof(l->path), "%s/%s", dir, STORE_LOG_FILE);
	if (n < 0 || (size_t)n >= sizeof(l->path) - 8) {
		free(l);
		return VTPM_E_INVAL;
	}
	if (stat(l->path, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (size_t)sb.st_size < 2 * STORE_LOG_BLOCK) {
		/* missing, or too small to hold a record: nothing to lose */
		if ((rc = log_create(dir, l->path, nosync)) != 0) {
			free(l);
			return rc;
		}
	}
	if ((l->fd = open(l->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) == -1 ||
	    fstat(l->fd, &sb) == -1) {
		log_warn("open %s", l->path);
		store_log_close(l);
		return VTPM_E_IO;
	}
	l->size = (size_t)sb.st_size / STORE_LOG_BLOCK * STORE_LOG_BLOCK;
	if (l->size > (size_t)1 << 32)
		l->size = (size_t)1 << 32;
	l->tail = l->size;	/* full until replayed or reset */
	rc = log_pread_all(l->fd, blk, sizeof(blk), 0);
	if (rc == VTPM_E_IO) {
		log_warn("read %s", l->path);
		store_log_close(l);
		return rc;
	}
	if (rc == 0 && log_hdr_check(blk, l->size, &l->epoch) == 0)
		*valid = 1;
	l->next_seq = 1;
	*out = l;
	return 0;
}

void
store_log_close(struct store_log *l)
{
	if (l == NULL)
		return;
	if (l->fd != -1)
		close(l->fd);
	free(l->buf);
	free(l);
}

uint64_t
store_log_epoch(const struct store_log *l)
{
	return l->epoch;
}

size_t
store_log_used(const struct store_log *l)
{
	return l->tail;
}

size_t
store_log_size(const struct store_log *l)
{
	return l->size;
}

uint64_t
store_log_next_seq(const struct store_log *l)
{
	return l->next_seq;
}

int
store_log_reset(struct store_log *l)
{
	uint8_t blk[STORE_LOG_BLOCK];
	uint64_t epoch;
	int rc;

	do
		randombytes_buf(&epoch, sizeof(epoch));
	while (epoch == 0 || epoch == l->epoch);
	log_hdr_encode(blk, l->size, epoch);
	if ((rc = log_pwrite_all(l->fd, blk, sizeof(blk), 0, l->path)) != 0 ||
	    (rc = log_sync(l)) != 0) {
		l->tail = l->size;	/* unusable until a reset works */
		return VTPM_E_IO;
	}
	l->epoch = epoch;
	l->next_seq = 1;
	l->tail = STORE_LOG_BLOCK;
	log_drop_cache(l->fd);
	return 0;
}

/* ---- records ----------------------------------------------------------- */

size_t
store_log_record_size(const struct store_batch *b)
{
	size_t i, n = STORE_LOG_REC_HDR + STORE_LOG_SUM_LEN;

	if (b->n == 0 || b->n > STORE_LOG_OPS_MAX)
		return 0;
	for (i = 0; i < b->n; i++) {
		const struct store_op *op = &b->ops[i];

		if (op->kind == STORE_OP_PUT_INST && op->len >= 1 &&
		    op->len <= STORE_INST_RECORD_MAX)
			n += 1 + 2 + op->len;
		else if (op->kind == STORE_OP_PUT_BLOB && op->len >= 1 &&
		    op->len <= STORE_BLOB_MAX)
			n += 1 + SEAL_UUID_LEN + 1 + 4 + op->len;
		else
			return 0;
	}
	return log_pad(n);
}

size_t
store_log_encode(const struct store_batch *b, uint64_t epoch, uint64_t seq,
    uint8_t *out, size_t cap)
{
	size_t i, padded, body, len;
	struct wbuf w;

	if ((padded = store_log_record_size(b)) == 0 || cap < padded)
		return 0;
	body = padded;	/* an upper bound; the exact length follows */
	wbuf_init(&w, out, cap);
	wbuf_put_bytes(&w, log_rec_magic, 8);
	wbuf_put_u64(&w, epoch);
	wbuf_put_u64(&w, seq);
	wbuf_put_u32(&w, (uint32_t)b->n);
	wbuf_put_u32(&w, 0);	/* L, filled in below */
	for (i = 0; i < b->n; i++) {
		const struct store_op *op = &b->ops[i];

		if (op->kind == STORE_OP_PUT_INST) {
			wbuf_put_u8(&w, LOG_OP_INST);
			wbuf_put_u16(&w, (uint16_t)op->len);
		} else {
			wbuf_put_u8(&w, LOG_OP_BLOB);
			wbuf_put_bytes(&w, op->uuid, SEAL_UUID_LEN);
			wbuf_put_u8(&w, op->type);
			wbuf_put_u32(&w, (uint32_t)op->len);
		}
		wbuf_put_bytes(&w, op->data, op->len);
	}
	if (wbuf_end(&w, &len) != 0)
		return 0;
	body = len - STORE_LOG_REC_HDR;
	be32_enc(out + 28, (uint32_t)body);
	log_sum(out, len, out + len);
	len += STORE_LOG_SUM_LEN;
	memset(out + len, 0, padded - len);
	return padded;
}

/* Parses the ops of a record body into out. */
static int
log_parse_ops(const uint8_t *p, size_t len, uint32_t n, struct store_batch *out)
{
	struct store_instance inst;
	struct cursor c;
	const uint8_t *data;
	uint8_t kind, uuid[SEAL_UUID_LEN], type;
	uint16_t m16;
	uint32_t i, m;
	int rc;

	cur_init(&c, p, len);
	for (i = 0; i < n; i++) {
		if (cur_get_u8(&c, &kind) != 0)
			return VTPM_E_FORMAT;
		if (kind == LOG_OP_INST) {
			if (cur_get_u16(&c, &m16) != 0 || m16 < 1 ||
			    m16 > STORE_INST_RECORD_MAX ||
			    cur_get_ref(&c, &data, m16) != 0 ||
			    store_inst_decode(data, m16, &inst) != 0)
				return VTPM_E_FORMAT;
			rc = store_batch_put_inst(out, &inst);
		} else if (kind == LOG_OP_BLOB) {
			if (cur_get_bytes(&c, uuid, sizeof(uuid)) != 0 ||
			    cur_get_u8(&c, &type) != 0 ||
			    cur_get_u32(&c, &m) != 0 || m < 1 || m > STORE_BLOB_MAX ||
			    cur_get_ref(&c, &data, m) != 0)
				return VTPM_E_FORMAT;
			rc = store_batch_put_blob(out, uuid, type, data, m);
		} else
			return VTPM_E_FORMAT;
		if (rc == VTPM_E_NOMEM)
			return rc;
		if (rc != 0)
			return VTPM_E_FORMAT;	/* a bad type or name */
	}
	return cur_end(&c) == 0 ? 0 : VTPM_E_FORMAT;
}

int
store_log_parse(const uint8_t *buf, size_t len, uint64_t epoch, uint64_t seq,
    struct store_batch *out, size_t *used)
{
	uint8_t sum[STORE_LOG_SUM_LEN];
	uint32_t n, body;
	int rc;

	*used = 0;
	if (len < STORE_LOG_REC_HDR + STORE_LOG_SUM_LEN ||
	    memcmp(buf, log_rec_magic, 8) != 0 ||
	    be64_dec(buf + 8) != epoch || be64_dec(buf + 16) != seq)
		return VTPM_E_FORMAT;
	n = be32_dec(buf + 24);
	body = be32_dec(buf + 28);
	if (n < 1 || n > STORE_LOG_OPS_MAX ||
	    body > len - STORE_LOG_REC_HDR - STORE_LOG_SUM_LEN)
		return VTPM_E_FORMAT;
	log_sum(buf, STORE_LOG_REC_HDR + body, sum);
	if (sodium_memcmp(sum, buf + STORE_LOG_REC_HDR + body, sizeof(sum)) != 0)
		return VTPM_E_FORMAT;
	if ((rc = log_parse_ops(buf + STORE_LOG_REC_HDR, body, n, out)) != 0) {
		store_batch_reset(out);
		return rc;
	}
	*used = log_pad(STORE_LOG_REC_HDR + body + STORE_LOG_SUM_LEN);
	return 0;
}

/* Makes l->buf at least n bytes. */
static int
log_buf(struct store_log *l, size_t n)
{
	uint8_t *p;

	if (l->bufcap >= n)
		return 0;
	if ((p = malloc(n)) == NULL)
		return VTPM_E_NOMEM;
	free(l->buf);
	l->buf = p;
	l->bufcap = n;
	return 0;
}

int
store_log_replay(struct store_log *l,
    int (*cb)(const struct store_batch *b, uint64_t seq, void *arg), void *arg)
{
	struct store_batch *b;
	uint8_t hdr[STORE_LOG_REC_HDR];
	size_t off = STORE_LOG_BLOCK, used, want;
	uint64_t seq = 1;
	int rc = 0;

	if ((b = store_batch_new()) == NULL)
		return VTPM_E_NOMEM;
	while (off + STORE_LOG_BLOCK <= l->size) {
		if ((rc = log_pread_all(l->fd, hdr, sizeof(hdr), (off_t)off)) != 0)
			break;
		if (memcmp(hdr, log_rec_magic, 8) != 0 || be64_dec(hdr + 8) != l->epoch ||
		    be64_dec(hdr + 16) != seq)
			break;
		want = (size_t)be32_dec(hdr + 28) + STORE_LOG_REC_HDR + STORE_LOG_SUM_LEN;
		if (want > l->size - off)
			break;		/* a length no record of this log can have */
		if ((rc = log_buf(l, want)) != 0 ||
		    (rc = log_pread_all(l->fd, l->buf, want, (off_t)off)) != 0)
			break;
		if ((rc = store_log_parse(l->buf, want, l->epoch, seq, b, &used)) != 0)
			break;
		rc = cb(b, seq, arg);
		store_batch_reset(b);
		if (rc != 0)
			break;
		off += used;
		seq++;
	}
	store_batch_free(b);
	if (rc == VTPM_E_FORMAT)
		rc = 0;		/* a torn or stale record: the end of the log */
	if (rc == VTPM_E_IO)
		log_warn("read %s", l->path);
	if (rc == 0) {
		l->tail = off;
		l->next_seq = seq;
	}
	return rc;
}

int
store_log_append(struct store_log *l, const struct store_batch *b)
{
	size_t need, len;
	int rc;

	if ((need = store_log_record_size(b)) == 0)
		return VTPM_E_INVAL;
	if (l->tail > l->size || need > l->size - l->tail)
		return VTPM_E_STORE_FULL;
	if ((rc = log_buf(l, need)) != 0)
		return rc;
	if ((len = store_log_encode(b, l->epoch, l->next_seq, l->buf, l->bufcap)) != need)
		return VTPM_E_INVAL;
	if ((rc = log_pwrite_all(l->fd, l->buf, len, (off_t)l->tail, l->path)) != 0 ||
	    (rc = log_sync(l)) != 0)
		return rc;
	l->tail += len;
	l->next_seq++;
	return 0;
}
