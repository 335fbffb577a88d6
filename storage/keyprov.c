/*
 * keyprov.c: root-key providers (keyprov.h): the dispatcher and "file:"
 * (development only); "kbs:" is in keyprov_kbs.c.
 * Trusts the spec from the configuration; trusts nothing about the key file
 * (type, mode and size are checked on the open descriptor before reading).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "keyprov_impl.h"
#include "log.h"

#define KEYPROV_FILE_VERSION	1

int
keyprov_fail(struct keyprov *kp, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(kp->why, sizeof(kp->why), fmt, ap);
	va_end(ap);
	return rc;
}

/* ---- file: ------------------------------------------------------------ */

/* Writes all of p[0..n) to fd. */
static int
keyprov_write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
keyprov_fsync_dir(const char *path)
{
	char copy[PATH_MAX];
	int fd, rc = 0;

	memcpy(copy, path, strlen(path) + 1);
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if (fsync(fd) == -1)
		rc = -1;
	close(fd);
	return rc;
}

/*
 * Creates a development key file at path. 0 if created, or if someone else
 * created it meanwhile (the caller then reads theirs).
 */
static int
keyprov_file_create(const char *path)
{
	uint8_t *key;
	int fd, rc = VTPM_E_IO;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600)) == -1) {
		if (errno == EEXIST)
			return 0;
		log_warn("create %s", path);
		return VTPM_E_IO;
	}
	if ((key = sodium_malloc(SEAL_KEY_LEN)) == NULL) {
		rc = VTPM_E_NOMEM;
		goto fail;
	}
	randombytes_buf(key, SEAL_KEY_LEN);
	if (fchmod(fd, 0600) == -1 || keyprov_write_all(fd, key, SEAL_KEY_LEN) == -1 ||
	    fsync(fd) == -1) {
		log_warn("write %s", path);
		goto fail;
	}
	sodium_free(key);
	key = NULL;
	if (close(fd) == -1) {
		fd = -1;
		log_warn("close %s", path);
		goto fail;
	}
	fd = -1;
	if (keyprov_fsync_dir(path) == -1) {
		log_warn("fsync directory of %s", path);
		goto fail;
	}
	log_warnx("created DEVELOPMENT root key %s: anyone who can read this file "
	    "can open the store; do not use it in production", path);
	return 0;

fail:
	if (key != NULL)
		sodium_free(key);
	if (fd != -1)
		close(fd);
	unlink(path);
	return rc;
}

/*
 * Opens the key file and checks it. *fdp is an open descriptor on success.
 * VTPM_E_NOTFOUND (missing), VTPM_E_INVAL (bad file), VTPM_E_IO.
 */
static int
keyprov_file_check(const char *path, int *fdp)
{
	struct stat sb;
	int fd;

	*fdp = -1;
	/* O_NONBLOCK: a FIFO in the key's place must not hang start-up */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
		if (errno == ENOENT) {
			log_warnx("root key file %s does not exist", path);
			return VTPM_E_NOTFOUND;
		}
		log_warn("open %s", path);
		return VTPM_E_IO;
	}
	if (fstat(fd, &sb) == -1) {
		log_warn("fstat %s", path);
		close(fd);
		return VTPM_E_IO;
	}
	if (!S_ISREG(sb.st_mode)) {
		log_warnx("root key file %s is not a regular file", path);
		goto bad;
	}
	if ((sb.st_mode & 077) != 0) {
		log_warnx("root key file %s has mode %03o: it must not be accessible "
		    "to group or others (chmod 600)", path,
		    (unsigned int)(sb.st_mode & 0777));
		goto bad;
	}
	if (sb.st_size != SEAL_KEY_LEN) {
		log_warnx("root key file %s holds %lld bytes; it must hold exactly %d",
		    path, (long long)sb.st_size, SEAL_KEY_LEN);
		goto bad;
	}
	*fdp = fd;
	return 0;

bad:
	close(fd);
	return VTPM_E_INVAL;
}

static int
keyprov_file_open(struct keyprov *kp, const char *arg, const struct keyprov_config *cfg)
{
	int fd, rc;
	size_t n = strlen(arg);

	if (n == 0 || n >= sizeof(kp->path)) {
		log_warnx("key provider file: needs a path");
		return VTPM_E_INVAL;
	}
	memcpy(kp->path, arg, n + 1);
	if (cfg->kc_create_dev && (rc = keyprov_file_create(kp->path)) != 0)
		return rc;
	if ((rc = keyprov_file_check(kp->path, &fd)) != 0)
		return rc;
	close(fd);
	return 0;
}

static int
keyprov_file_get_version(struct keyprov *kp, uint32_t version, struct seal_kek **out)
{
	struct seal_kek *k = NULL;
	size_t got = 0;
	ssize_t r;
	uint8_t extra;
	int fd, rc;

	if (version != 0 && version != KEYPROV_FILE_VERSION)
		return keyprov_fail(kp, VTPM_E_NOTFOUND, "a key file has only version %d",
		    KEYPROV_FILE_VERSION);
	if ((rc = keyprov_file_check(kp->path, &fd)) != 0)
		return keyprov_fail(kp, rc, "root key file %s unusable: %s", kp->path,
		    vtpm_strerror(rc));
	if ((k = sodium_malloc(sizeof(*k))) == NULL) {
		rc = VTPM_E_NOMEM;
		goto done;
	}
	while (got < SEAL_KEY_LEN) {
		r = read(fd, k->key + got, SEAL_KEY_LEN - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			log_warn("read %s", kp->path);
			rc = VTPM_E_IO;
			goto done;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	/* the size was checked by fstat; check again that the file ends here */
	while ((r = read(fd, &extra, 1)) == -1 && errno == EINTR)
		;
	if (got != SEAL_KEY_LEN || r != 0) {
		log_warnx("root key file %s changed size while read; it must hold "
		    "exactly %d bytes", kp->path, SEAL_KEY_LEN);
		rc = VTPM_E_INVAL;
		goto done;
	}
	k->version = KEYPROV_FILE_VERSION;
	seal_kek_derive_id(k);
	sodium_mprotect_readonly(k);
	*out = k;
	k = NULL;
	rc = 0;

done:
	if (k != NULL)
		sodium_free(k);		/* wipes */
	close(fd);
	return rc;
}

static void
keyprov_file_abort(struct keyprov *kp)
{
}

static void
keyprov_file_close(struct keyprov *kp)
{
}

static const struct keyprov_ops keyprov_file_ops = {
	.scheme		= "file",
	.is_dev		= 1,
	.open		= keyprov_file_open,
	.get_version	= keyprov_file_get_version,
	.abort		= keyprov_file_abort,
	.close		= keyprov_file_close,
};

/* ---- dispatch --------------------------------------------------------- */

static const struct keyprov_ops *const keyprov_table[] = {
	&keyprov_file_ops,
	&keyprov_kbs_ops,
};

int
keyprov_open(const char *spec, int create_dev, struct keyprov **out)
{
	struct keyprov_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.kc_spec = spec;
	cfg.kc_create_dev = create_dev;
	return keyprov_open_config(&cfg, out);
}

int
keyprov_open_config(const struct keyprov_config *cfg, struct keyprov **out)
{
	const struct keyprov_ops *ops = NULL;
	struct keyprov *kp;
	const char *colon, *spec;
	size_t i, slen;
	int rc;

	if (out == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	if (cfg == NULL)
		return VTPM_E_INVAL;
	spec = cfg->kc_spec;
	if (spec == NULL || (colon = strchr(spec, ':')) == NULL || colon == spec) {
		log_warnx("key provider spec must be scheme:argument (e.g. file:/path)");
		return VTPM_E_INVAL;
	}
	if ((slen = strlen(spec)) >= sizeof(kp->spec)) {
		log_warnx("key provider spec too long");
		return VTPM_E_INVAL;
	}
	for (i = 0; i < sizeof(keyprov_table) / sizeof(keyprov_table[0]); i++) {
		if (strlen(keyprov_table[i]->scheme) == (size_t)(colon - spec) &&
		    strncmp(keyprov_table[i]->scheme, spec, (size_t)(colon - spec)) == 0)
			ops = keyprov_table[i];
	}
	if (ops == NULL) {
		log_warnx("key provider %.*s: not supported by this build",
		    (int)(colon - spec), spec);
		return VTPM_E_UNSUPPORTED;
	}
	if (seal_init() != 0)
		return VTPM_E_CRYPTO;
	if ((kp = calloc(1, sizeof(*kp))) == NULL)
		return VTPM_E_NOMEM;
	kp->ops = ops;
	memcpy(kp->spec, spec, slen + 1);
	if ((rc = ops->open(kp, colon + 1, cfg)) != 0) {
		free(kp);
		return rc;
	}
	*out = kp;
	return 0;
}

int
keyprov_get_root(struct keyprov *kp, struct seal_kek **out)
{
	return keyprov_get_version(kp, 0, out);
}

int
keyprov_get_version(struct keyprov *kp, uint32_t version, struct seal_kek **out)
{
	int rc;

	if (out == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	if (kp == NULL)
		return VTPM_E_INVAL;
	kp->why[0] = '\0';
	rc = kp->ops->get_version(kp, version, out);
	if (rc != 0 && kp->why[0] == '\0')
		keyprov_fail(kp, rc, "%s", vtpm_strerror(rc));
	return rc;
}

int
keyprov_get_resource(struct keyprov *kp, const char *resource, struct seal_kek **out)
{
	int rc;

	if (out == NULL)
		return VTPM_E_INVAL;
	*out = NULL;
	if (kp == NULL || resource == NULL)
		return VTPM_E_INVAL;
	kp->why[0] = '\0';
	if (kp->ops->get_resource == NULL)
		return keyprov_fail(kp, VTPM_E_UNSUPPORTED, "the %s provider holds one key "
		    "only (named resources need a key broker)", kp->ops->scheme);
	rc = kp->ops->get_resource(kp, resource, out);
	if (rc != 0 && kp->why[0] == '\0')
		keyprov_fail(kp, rc, "%s", vtpm_strerror(rc));
	return rc;
}

const char *
keyprov_last_error(const struct keyprov *kp)
{
	return kp != NULL ? kp->why : "";
}

void
keyprov_abort(struct keyprov *kp)
{
	if (kp != NULL)
		kp->ops->abort(kp);
}

int
keyprov_is_dev(const struct keyprov *kp)
{
	return kp != NULL && kp->ops->is_dev;
}

const char *
keyprov_spec(const struct keyprov *kp)
{
	return kp != NULL ? kp->spec : "";
}

void
keyprov_close(struct keyprov *kp)
{
	if (kp == NULL)
		return;
	kp->ops->close(kp);
	free(kp);
}
