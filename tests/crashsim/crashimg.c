/*
 * crashimg.c: builds a power-cut image of a directory from a copy taken
 * before the run and the write log wlog.so recorded during it (crashimg.h
 * gives the model).
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crashimg.h"
#include "wlog.h"

#define BLK		4096u
#define MAX_FILES	256

struct wr {
	struct wlog_rec		 r;	/* a copy: records in the log are not aligned */
	const uint8_t		*data;
	int			 durable;
};

struct file {
	char		*name;
	struct wr	*w;		/* writes, truncates and syncs before the cut, in log order */
	size_t		 nw, capw;
};

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static uint64_t
rnd(uint64_t *s)
{
	/* splitmix64: reproducible from the seed the caller prints */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int
read_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	int fd;
	ssize_t n;
	size_t got = 0;

	*buf = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) != 0 || (*buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size && (n = read(fd, *buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	*len = got;
	return 0;
}

static int
write_file(const char *path, const uint8_t *buf, size_t len)
{
	int fd;
	ssize_t n;
	size_t done = 0;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return -1;
	while (done < len && (n = write(fd, buf + done, len - done)) > 0)
		done += (size_t)n;
	close(fd);
	return done == len ? 0 : -1;
}

/* Copies every regular file of src into dst (one level; the store is flat). */
static int
copy_dir(const char *src, const char *dst, char *err, size_t errlen)
{
	char a[4096], b[4096];
	struct dirent *de;
	uint8_t *buf;
	size_t len;
	DIR *d;
	int rc = 0;

	if ((d = opendir(src)) == NULL) {
		seterr(err, errlen, "%s: %s", src, strerror(errno));
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' || strcmp(de->d_name, "lock.mdb") == 0)
			continue;
		snprintf(a, sizeof(a), "%s/%s", src, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", dst, de->d_name);
		if (stat(a, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (read_file(a, &buf, &len) != 0 || write_file(b, buf, len) != 0) {
			seterr(err, errlen, "copy %s: %s", a, strerror(errno));
			rc = -1;
		}
		free(buf);
	}
	closedir(d);
	return rc;
}

/* One block's content: base, then the prefix of its writes chosen. */
static void
apply_range(uint8_t *img, size_t imglen, const struct wr *w, uint64_t lo, uint64_t hi)
{
	uint64_t a = w->r.off, b = w->r.off + w->r.dlen;

	if (a < lo)
		a = lo;
	if (b > hi)
		b = hi;
	if (a >= b || b > imglen)
		return;
	memcpy(img + a, w->data + (a - w->r.off), (size_t)(b - a));
}

static int
build_file(const struct file *f, const char *snapdir, const char *outdir, uint64_t *seed,
    struct crashimg_stats *st, char *err, size_t errlen)
{
	char path[4096];
	uint8_t *base, *img;
	size_t blen, ilen, i, j;
	uint64_t size, end, nblk, blk;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", snapdir, f->name);
	if (read_file(path, &base, &blen) != 0) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* the size: the last truncate, grown by every write that may have landed */
	size = blen;
	for (i = 0; i < f->nw; i++) {
		if (f->w[i].r.op == WLOG_TRUNC)
			size = f->w[i].r.off;
	}
	end = size;
	for (i = 0; i < f->nw; i++)
		if (f->w[i].r.op == WLOG_WRITE && f->w[i].r.off + f->w[i].r.dlen > end)
			end = f->w[i].r.off + f->w[i].r.dlen;
	ilen = (size_t)end;
	if ((img = calloc(1, ilen + 1)) == NULL) {
		free(base);
		seterr(err, errlen, "out of memory");
		return -1;
	}
	if (base != NULL && blen > 0)
		memcpy(img, base, blen < ilen ? blen : ilen);
	free(base);

	/* each block independently: its durable prefix, then perhaps more */
	nblk = (end + BLK - 1) / BLK;
	size = 0;
	for (blk = 0; blk < nblk; blk++) {
		uint64_t lo = blk * BLK, hi = lo + BLK;
		size_t touch = 0, need = 0, take;

		for (i = 0; i < f->nw; i++) {
			const struct wlog_rec *r = &f->w[i].r;

			if (r->op != WLOG_WRITE || r->off >= hi || r->off + r->dlen <= lo)
				continue;
			touch++;
			if (f->w[i].durable)
				need = touch;
		}
		if (touch == 0) {
			if (lo < blen && blen > size)
				size = blen < hi ? blen : hi;
			continue;
		}
		switch (rnd(seed) % 3) {
		case 0:	take = need; break;
		case 1:	take = touch; break;
		default: take = need + (size_t)(rnd(seed) % (touch - need + 1)); break;
		}
		if (take < touch)
			st->blocks_dropped++;
		for (i = 0, j = 0; i < f->nw && j < take; i++) {
			const struct wlog_rec *r = &f->w[i].r;

			if (r->op != WLOG_WRITE || r->off >= hi || r->off + r->dlen <= lo)
				continue;
			apply_range(img, ilen, &f->w[i], lo, hi);
			if (r->off + r->dlen > size)
				size = r->off + r->dlen < hi ? r->off + r->dlen : hi;
			j++;
		}
		if (lo < blen && blen > size)
			size = blen < hi ? blen : hi;
	}
	/* a durable truncate wins over what the blocks say */
	for (i = 0; i < f->nw; i++)
		if (f->w[i].r.op == WLOG_TRUNC && f->w[i].durable)
			size = f->w[i].r.off > size ? f->w[i].r.off : size;
	if (size > ilen)
		size = ilen;
	snprintf(path, sizeof(path), "%s/%s", outdir, f->name);
	rc = write_file(path, img, (size_t)size);
	if (rc != 0)
		seterr(err, errlen, "%s: %s", path, strerror(errno));
	free(img);
	return rc;
}

int
crashimg_build(const char *wlog, const char *snapdir, const char *outdir, uint64_t cut,
    uint64_t seed, struct crashimg_stats *st, char *err, size_t errlen)
{
	struct file files[MAX_FILES + 1];
	uint8_t *log;
	size_t loglen, off;
	uint32_t i;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	memset(files, 0, sizeof(files));
	if (mkdir(outdir, 0700) != 0) {
		seterr(err, errlen, "%s: %s", outdir, strerror(errno));
		return -1;
	}
	if (copy_dir(snapdir, outdir, err, errlen) != 0)
		return -1;
	if (read_file(wlog, &log, &loglen) != 0) {
		seterr(err, errlen, "%s: %s", wlog, strerror(errno));
		return -1;
	}
	/* pass 1: the records before the cut, per file; a torn last record ends the log */
	for (off = 0; off + sizeof(struct wlog_rec) <= loglen;) {
		struct wlog_rec rec;
		const struct wlog_rec *r = &rec;
		const uint8_t *data = log + off + sizeof(rec);
		struct file *f;

		memcpy(&rec, log + off, sizeof(rec));	/* records are not aligned */

		if (r->magic != WLOG_MAGIC || r->dlen > loglen - off - sizeof(*r) ||
		    r->file == 0 || r->file > MAX_FILES)
			break;
		off += sizeof(*r) + (size_t)r->dlen;
		f = &files[r->file];
		if (r->op == WLOG_PATH) {
			if (f->name == NULL && r->dlen > 0 && r->dlen < 256 &&
			    memchr(data, '/', (size_t)r->dlen) == NULL)
				f->name = strndup((const char *)data, (size_t)r->dlen);
			continue;
		}
		if (f->name == NULL || r->t0 >= cut)
			continue;
		if (r->op == WLOG_SYNC && r->t1 >= cut)
			continue;	/* had not returned: promises nothing */
		if (r->op != WLOG_WRITE && r->op != WLOG_TRUNC && r->op != WLOG_SYNC)
			continue;
		if (f->nw == f->capw) {
			size_t ncap = f->capw ? 2 * f->capw : 64;
			struct wr *nw = realloc(f->w, ncap * sizeof(*nw));

			if (nw == NULL) {
				seterr(err, errlen, "out of memory");
				goto out;
			}
			f->w = nw;
			f->capw = ncap;
		}
		f->w[f->nw].r = rec;
		f->w[f->nw].data = data;
		f->w[f->nw].durable = (r->flags & WLOG_F_DSYNC) && r->t1 < cut;
		f->nw++;
	}
	for (i = 1; i <= MAX_FILES; i++) {
		size_t k, m;

		if (files[i].name == NULL || files[i].nw == 0)
			continue;
		/*
		 * pass 2: a sync makes durable every write that had returned when
		 * it started, wherever another thread's record landed in the log
		 */
		for (m = 0; m < files[i].nw; m++) {
			const struct wlog_rec *s = &files[i].w[m].r;

			if (s->op != WLOG_SYNC)
				continue;
			for (k = 0; k < files[i].nw; k++)
				if (files[i].w[k].r.op != WLOG_SYNC && files[i].w[k].r.t1 <= s->t0)
					files[i].w[k].durable = 1;
		}
		for (k = 0; k < files[i].nw; k++) {
			if (files[i].w[k].r.op != WLOG_WRITE)
				continue;
			st->writes++;
			if (files[i].w[k].durable)
				st->durable++;
			else
				st->maybe++;
		}
		if (build_file(&files[i], snapdir, outdir, &seed, st, err, errlen) != 0)
			goto out;
	}
	rc = 0;
out:
	for (i = 0; i <= MAX_FILES; i++) {
		free(files[i].name);
		free(files[i].w);
	}
	free(log);
	return rc;
}
