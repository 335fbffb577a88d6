/*
 * provider.c: where evidence comes from. configfs-tsm (Linux 6.7+:
 * /sys/kernel/config/tsm/report) for SEV-SNP and TDX, the /dev/sev-guest
 * ioctls as the SNP fallback, and the `sim` platform. Trusts the kernel's
 * interfaces only for lengths it checks; what they return is verified by
 * the peer, not here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "attest_int.h"
#include "cursor.h"

#define TSM_DEFAULT_DIR		"/sys/kernel/config/tsm/report"
#define SEV_GUEST_DEFAULT	"/dev/sev-guest"
#define OUTBLOB_MAX		(ATTEST_MAX_EVIDENCE)
#define CERTS_MAX		(64 * 1024)
/* The kernel refuses certs_len above SEV_FW_BLOB_MAX_SIZE (16 KiB). */
#define SEV_CERTS_LEN		(16 * 1024)

/*
 * /dev/sev-guest ABI (include/uapi/linux/sev-guest.h), defined here so the
 * build does not depend on kernel headers; checked against them if present.
 */
struct vt_snp_report_req {
	uint8_t	user_data[64];
	uint32_t vmpl;
	uint8_t	rsvd[28];
};
struct vt_snp_report_resp {
	uint8_t	data[4000];
};
struct vt_snp_guest_request_ioctl {
	uint8_t	msg_version;
	uint64_t req_data;
	uint64_t resp_data;
	uint64_t exitinfo2;	/* bits 31:0 firmware error, 63:32 VMM error */
};
struct vt_snp_ext_report_req {
	struct vt_snp_report_req data;
	uint64_t certs_address;
	uint32_t certs_len;
};
#define VT_SNP_GET_REPORT	_IOWR('S', 0x0, struct vt_snp_guest_request_ioctl)
#define VT_SNP_GET_EXT_REPORT	_IOWR('S', 0x2, struct vt_snp_guest_request_ioctl)
#define VT_VMM_ERR_INVALID_LEN	1
#define VT_VMM_ERR_BUSY		2
_Static_assert(sizeof(struct vt_snp_report_req) == 96, "snp_report_req");
_Static_assert(sizeof(struct vt_snp_guest_request_ioctl) == 32, "snp_guest_request_ioctl");

#if defined(__has_include)
#if __has_include(<linux/sev-guest.h>)
#include <linux/sev-guest.h>
_Static_assert(VT_SNP_GET_REPORT == SNP_GET_REPORT, "SNP_GET_REPORT");
_Static_assert(VT_SNP_GET_EXT_REPORT == SNP_GET_EXT_REPORT, "SNP_GET_EXT_REPORT");
_Static_assert(sizeof(struct vt_snp_ext_report_req) == sizeof(struct snp_ext_report_req),
    "snp_ext_report_req");
_Static_assert(sizeof(struct vt_snp_report_resp) == sizeof(struct snp_report_resp),
    "snp_report_resp");
#endif
#endif

enum prov_kind { P_SIM, P_TSM, P_SEV_GUEST };

struct attest_provider {
	enum prov_kind	kind;
	int		tee;
	char		name[48];
	char		err[ATTEST_WHY_LEN];
	struct attest_sim_params sim;
	char		tsm_dir[256];
	char		sev_dev[256];
	int		privlevel;
	unsigned	seq;
	const struct attest_tsm_ops *ops;
	uint8_t		nonce[ATTEST_TDX_NONCE_LEN];	/* TDX launch nonce */
	uint8_t		aux[CERTS_MAX];
};

static struct attest_provider *
prov_new(enum prov_kind kind, int tee, const char *name)
{
	struct attest_provider *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->kind = kind;
	p->tee = tee;
	snprintf(p->name, sizeof(p->name), "%s", name);
	return p;
}

int
attest_provider_sim_params(const struct attest_sim_params *sp, struct attest_provider **out)
{
	struct attest_provider *p;

	if (sp->sp_version < 2 || sp->sp_version > 5 || sp->sp_vmpl > 3)
		return VTPM_E_INVAL;
	if ((p = prov_new(P_SIM, ATTEST_TEE_SNP, "sim")) == NULL)
		return VTPM_E_NOMEM;
	p->sim = *sp;
	*out = p;
	return 0;
}

int
attest_provider_sim_new(const uint8_t meas[ATTEST_MEASUREMENT_LEN],
    const uint8_t host[ATTEST_HOST_DATA_LEN], const uint8_t launch[ATTEST_LAUNCH_ID_LEN],
    struct attest_provider **out)
{
	struct attest_sim_params sp;

	attest_sim_params_init(&sp);
	memcpy(sp.sp_measurement, meas, sizeof(sp.sp_measurement));
	memcpy(sp.sp_host_data, host, sizeof(sp.sp_host_data));
	memcpy(sp.sp_report_id, launch, sizeof(sp.sp_report_id));
	return attest_provider_sim_params(&sp, out);
}

void
attest_provider_free(struct attest_provider *p)
{
	if (p != NULL) {
		sodium_memzero(p, sizeof(*p));
		free(p);
	}
}

int
attest_provider_tee(const struct attest_provider *p)
{
	return p->tee;
}

const char *
attest_provider_name(const struct attest_provider *p)
{
	return p->name;
}

const char *
attest_provider_error(const struct attest_provider *p)
{
	return p->err;
}

/* ---- configfs-tsm -------------------------------------------------------- */

static int
tsm_read(const char *dir, const char *file, uint8_t *buf, size_t cap, size_t *len)
{
	char path[512];
	size_t have = 0;
	ssize_t n;
	int fd, saved;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return VTPM_E_IO;
	for (;;) {
		if (have == cap) {
			uint8_t extra;

			n = read(fd, &extra, 1);
			if (n > 0) {
				close(fd);
				return VTPM_E_TOOBIG;
			}
			break;
		}
		n = read(fd, buf + have, cap - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			close(fd);
			errno = saved;
			return VTPM_E_IO;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	*len = have;
	return 0;
}

static int
tsm_write(const char *dir, const char *file, const void *buf, size_t len)
{
	char path[512];
	ssize_t n;
	int fd, saved;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return VTPM_E_IO;
	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);
	saved = errno;
	close(fd);
	errno = saved;
	if (n < 0)
		return VTPM_E_IO;
	if ((size_t)n != len) {
		errno = EIO;
		return VTPM_E_IO;
	}
	return 0;
}

static int
sys_mkdir(const char *path, unsigned int mode)
{
	return mkdir(path, (mode_t)mode);
}

static const struct attest_tsm_ops sys_tsm_ops = { sys_mkdir, rmdir };

/* Creates a fresh report entry; its path in entry. */
static int
tsm_mkdir(const struct attest_tsm_ops *ops, const char *root, unsigned *seq, char *entry,
    size_t cap)
{
	uint32_t r;
	int i;

	for (i = 0; i < 8; i++) {
		r = randombytes_random();
		snprintf(entry, cap, "%s/vtpmd-%ld-%u-%08x", root, (long)getpid(), (*seq)++, r);
		if (ops->mkdir(entry, 0700) == 0)
			return 0;
		if (errno != EEXIST)
			return VTPM_E_IO;
	}
	return VTPM_E_IO;
}

/* Reads the provider name of an entry ("sev_guest", "tdx_guest"), newline cut. */
static int
tsm_provider(const char *entry, char *out, size_t cap)
{
	uint8_t buf[64];
	size_t n, i;
	int rc;

	if ((rc = tsm_read(entry, "provider", buf, sizeof(buf) - 1, &n)) != 0)
		return rc;
	for (i = 0; i < n && buf[i] != '\n' && i + 1 < cap; i++)
		out[i] = (buf[i] >= 0x20 && buf[i] < 0x7f) ? (char)buf[i] : '?';
	out[i] = '\0';
	return 0;
}

static int
tsm_probe(const struct attest_tsm_ops *ops, const char *root, char *provider, size_t cap,
    char *why, size_t whylen)
{
	char entry[512];
	struct stat st;
	unsigned seq = 0;
	int rc;

	if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
		return attest_fail(why, whylen, VTPM_E_UNSUPPORTED,
		    "%s does not exist (configfs-tsm needs Linux 6.7+ and configfs mounted)", root);
	if (tsm_mkdir(ops, root, &seq, entry, sizeof(entry)) != 0)
		return attest_fail(why, whylen, VTPM_E_IO, "mkdir in %s: %s", root,
		    strerror(errno));
	rc = tsm_provider(entry, provider, cap);
	if (rc != 0)
		rc = attest_fail(why, whylen, rc, "%s/provider: %s", entry, strerror(errno));
	if (ops->rmdir(entry) != 0 && rc == 0)
		rc = attest_fail(why, whylen, VTPM_E_IO, "rmdir %s: %s", entry, strerror(errno));
	return rc;
}

/*
 * One report: mkdir, check provider, [privlevel], inblob, outblob, auxblob,
 * generation == our writes (no one else used the entry), rmdir.
 */
static int
tsm_get(struct attest_provider *p, const uint8_t inblob[64], uint8_t *out, size_t cap,
    size_t *olen, uint8_t *aux, size_t auxcap, size_t *alen)
{
	char entry[512], prov[32], num[32], gen[32];
	const char *want = p->tee == ATTEST_TEE_TDX ? "tdx_guest" : "sev_guest";
	unsigned long long g;
	unsigned writes = 0;
	size_t n;
	char *end;
	int rc;

	*alen = 0;
	if (tsm_mkdir(p->ops, p->tsm_dir, &p->seq, entry, sizeof(entry)) != 0)
		return attest_fail(p->err, sizeof(p->err), VTPM_E_IO, "mkdir in %s: %s",
		    p->tsm_dir, strerror(errno));
	if ((rc = tsm_provider(entry, prov, sizeof(prov))) != 0) {
		rc = attest_fail(p->err, sizeof(p->err), rc, "%s/provider: %s", entry,
		    strerror(errno));
		goto out;
	}
	if (strcmp(prov, want) != 0) {
		rc = attest_fail(p->err, sizeof(p->err), VTPM_E_UNSUPPORTED,
		    "configfs-tsm provider is '%s', want '%s'", prov, want);
		goto out;
	}
	if (p->tee == ATTEST_TEE_SNP && p->privlevel != 0) {
		snprintf(num, sizeof(num), "%d\n", p->privlevel);
		if (tsm_write(entry, "privlevel", num, strlen(num)) != 0) {
			rc = attest_fail(p->err, sizeof(p->err), VTPM_E_IO,
			    "%s/privlevel %d: %s (below privlevel_floor?)", entry, p->privlevel,
			    strerror(errno));
			goto out;
		}
		writes++;
	}
	if (tsm_write(entry, "inblob", inblob, 64) != 0) {
		rc = attest_fail(p->err, sizeof(p->err), VTPM_E_IO, "%s/inblob: %s", entry,
		    strerror(errno));
		goto out;
	}
	writes++;
	if ((rc = tsm_read(entry, "outblob", out, cap, olen)) != 0) {
		rc = attest_fail(p->err, sizeof(p->err), rc, "%s/outblob: %s", entry,
		    rc == VTPM_E_TOOBIG ? "larger than expected" : strerror(errno));
		goto out;
	}
	if (aux != NULL) {
		rc = tsm_read(entry, "auxblob", aux, auxcap, alen);
		if (rc == VTPM_E_IO && (errno == ENOENT || errno == ENXIO || errno == ENODATA ||
		    errno == EOPNOTSUPP)) {
			*alen = 0;	/* no certificates from the host */
		} else if (rc != 0) {
			rc = attest_fail(p->err, sizeof(p->err), rc, "%s/auxblob: %s", entry,
			    rc == VTPM_E_TOOBIG ? "larger than expected" : strerror(errno));
			goto out;
		}
	}
	if ((rc = tsm_read(entry, "generation", (uint8_t *)gen, sizeof(gen) - 1, &n)) != 0) {
		rc = attest_fail(p->err, sizeof(p->err), rc, "%s/generation: %s", entry,
		    strerror(errno));
		goto out;
	}
	gen[n] = '\0';
	errno = 0;
	g = strtoull(gen, &end, 10);
	if (errno != 0 || end == gen || (*end != '\n' && *end != '\0')) {
		rc = attest_fail(p->err, sizeof(p->err), VTPM_E_FORMAT,
		    "%s/generation is not a number", entry);
		goto out;
	}
	if (g != writes) {
		rc = attest_fail(p->err, sizeof(p->err), VTPM_E_BUSY,
		    "%s: generation %llu after our %u writes: another process wrote to this "
		    "report entry; the outblob may not be ours", entry, g, writes);
		goto out;
	}
	rc = 0;
out:
	if (p->ops->rmdir(entry) != 0 && rc == 0)
		rc = attest_fail(p->err, sizeof(p->err), VTPM_E_IO, "rmdir %s: %s", entry,
		    strerror(errno));
	return rc;
}

/* ---- /dev/sev-guest --------------------------------------------------------- */

static int
sev_guest_get(struct attest_provider *p, const uint8_t rd[64], uint8_t report[1184],
    uint8_t *certs, size_t certcap, size_t *clen)
{
	struct vt_snp_ext_report_req ereq;
	struct vt_snp_report_resp resp;
	struct vt_snp_guest_request_ioctl io;
	struct cursor cur;
	uint32_t status, size;
	uint32_t clen_req = (uint32_t)((certcap < SEV_CERTS_LEN ? certcap : SEV_CERTS_LEN) &
	    ~(size_t)4095);
	int fd, r, ext = 1, saved;

	*clen = 0;
	if ((fd = open(p->sev_dev, O_RDWR | O_CLOEXEC)) < 0)
		return attest_fail(p->err, sizeof(p->err), VTPM_E_IO, "%s: %s", p->sev_dev,
		    strerror(errno));
	memset(&ereq, 0, sizeof(ereq));
	memcpy(ereq.data.user_data, rd, 64);
	ereq.data.vmpl = (uint32_t)p->privlevel;
	ereq.certs_address = (uint64_t)(uintptr_t)certs;
	ereq.certs_len = clen_req;
	for (;;) {
		memset(&resp, 0, sizeof(resp));
		memset(&io, 0, sizeof(io));
		io.msg_version = 1;
		io.req_data = ext ? (uint64_t)(uintptr_t)&ereq : (uint64_t)(uintptr_t)&ereq.data;
		io.resp_data = (uint64_t)(uintptr_t)&resp;
		r = ioctl(fd, ext ? VT_SNP_GET_EXT_REPORT : VT_SNP_GET_REPORT, &io);
		if (r == 0)
			break;
		saved = errno;
		if (ext && (io.exitinfo2 >> 32) == VT_VMM_ERR_INVALID_LEN) {
			/* The host needs ereq.certs_len bytes, more than the kernel allows. */
			close(fd);
			return attest_fail(p->err, sizeof(p->err), VTPM_E_TOOBIG,
			    "%s: the host's certificates need %u bytes, more than %u",
			    p->sev_dev, ereq.certs_len, clen_req);
		}
		if ((io.exitinfo2 >> 32) == VT_VMM_ERR_BUSY) {
			close(fd);
			return attest_fail(p->err, sizeof(p->err), VTPM_E_BUSY,
			    "%s: the host is busy (VMM error BUSY)", p->sev_dev);
		}
		if (ext) {
			ext = 0;	/* no certificates from this host: plain report */
			continue;
		}
		close(fd);
		return attest_fail(p->err, sizeof(p->err), VTPM_E_EVIDENCE,
		    "%s SNP_GET_REPORT: %s (firmware error 0x%x, VMM error 0x%x)", p->sev_dev,
		    strerror(saved), (unsigned)(io.exitinfo2 & 0xffffffff),
		    (unsigned)(io.exitinfo2 >> 32));
	}
	close(fd);
	/* MSG_REPORT_RSP: u32 status, u32 report_size, 24 reserved, report. */
	cur_init(&cur, resp.data, sizeof(resp.data));
	if (cur_get_u32_le(&cur, &status) != 0 || cur_get_u32_le(&cur, &size) != 0 ||
	    cur_skip(&cur, 24) != 0 || cur_get_bytes(&cur, report, ATTEST_SNP_REPORT_LEN) != 0)
		return attest_fail(p->err, sizeof(p->err), VTPM_E_FORMAT, "short MSG_REPORT_RSP");
	if (status != 0)
		return attest_fail(p->err, sizeof(p->err), VTPM_E_EVIDENCE,
		    "MSG_REPORT_RSP status 0x%x%s", status,
		    status == 0x16 ? " (invalid parameters)" : "");
	if (size != ATTEST_SNP_REPORT_LEN)
		return attest_fail(p->err, sizeof(p->err), VTPM_E_FORMAT,
		    "MSG_REPORT_RSP report_size %u, want %d", size, ATTEST_SNP_REPORT_LEN);
	if (ext)
		*clen = clen_req;	/* the table ends itself with a zero entry */
	return 0;
}

/* ---- opening ------------------------------------------------------------------ */

static int
tdx_nonce_load(const char *path, uint8_t nonce[32], char *why, size_t whylen)
{
	uint8_t buf[33];
	ssize_t n;
	int fd, i;

	if (path == NULL) {
		randombytes_buf(nonce, 32);
		return 0;
	}
	for (i = 0; i < 2; i++) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			n = read(fd, buf, sizeof(buf));
			close(fd);
			if (n != 32)
				return attest_fail(why, whylen, VTPM_E_FORMAT,
				    "%s does not hold a 32-byte launch nonce", path);
			memcpy(nonce, buf, 32);
			return 0;
		}
		if (errno != ENOENT)
			break;
		randombytes_buf(buf, 32);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			if (errno == EEXIST)
				continue;	/* someone else made it: read theirs */
			break;
		}
		n = write(fd, buf, 32);
		if (n != 32 || fsync(fd) != 0) {
			close(fd);
			unlink(path);
			break;
		}
		close(fd);
		memcpy(nonce, buf, 32);
		return 0;
	}
	return attest_fail(why, whylen, VTPM_E_IO, "launch nonce file %s: %s", path,
	    strerror(errno));
}

int
attest_provider_open(const struct attest_provider_opts *o, struct attest_provider **out,
    char *why, size_t whylen)
{
	const char *kind = o->ap_kind ? o->ap_kind : "auto";
	const char *tsm = o->ap_tsm_dir ? o->ap_tsm_dir : TSM_DEFAULT_DIR;
	const char *sev = o->ap_sev_guest ? o->ap_sev_guest : SEV_GUEST_DEFAULT;
	char prov[32] = "", tsmwhy[ATTEST_WHY_LEN] = "";
	struct attest_provider *p = NULL;
	int have_tsm, have_sev, tee, rc;

	*out = NULL;
	if (strcmp(kind, "sim") == 0)
		return attest_provider_sim_new(o->ap_sim_measurement, o->ap_sim_host_data,
		    o->ap_sim_launch_id, out);
	if (strcmp(kind, "auto") != 0 && strcmp(kind, "snp") != 0 && strcmp(kind, "tdx") != 0)
		return attest_fail(why, whylen, VTPM_E_INVAL,
		    "attestation '%s' unknown (auto, snp, tdx, sim)", kind);
	if (o->ap_privlevel < 0 || o->ap_privlevel > 3)
		return attest_fail(why, whylen, VTPM_E_INVAL, "privlevel %d is not 0..3",
		    o->ap_privlevel);
	const struct attest_tsm_ops *ops = o->ap_tsm_ops ? o->ap_tsm_ops : &sys_tsm_ops;

	have_tsm = tsm_probe(ops, tsm, prov, sizeof(prov), tsmwhy, sizeof(tsmwhy)) == 0;
	have_sev = access(sev, R_OK | W_OK) == 0;
	tee = strcmp(prov, "tdx_guest") == 0 ? ATTEST_TEE_TDX :
	    strcmp(prov, "sev_guest") == 0 ? ATTEST_TEE_SNP : 0;
	if (have_tsm && tee != 0 && (strcmp(kind, "auto") == 0 ||
	    (strcmp(kind, "snp") == 0 && tee == ATTEST_TEE_SNP) ||
	    (strcmp(kind, "tdx") == 0 && tee == ATTEST_TEE_TDX))) {
		char name[48];

		snprintf(name, sizeof(name), "configfs-tsm (%s)", prov);
		if ((p = prov_new(P_TSM, tee, name)) == NULL)
			return attest_fail(why, whylen, VTPM_E_NOMEM, "out of memory");
		snprintf(p->tsm_dir, sizeof(p->tsm_dir), "%s", tsm);
		p->ops = ops;
	} else if (have_sev && strcmp(kind, "tdx") != 0) {
		if ((p = prov_new(P_SEV_GUEST, ATTEST_TEE_SNP, sev)) == NULL)
			return attest_fail(why, whylen, VTPM_E_NOMEM, "out of memory");
		snprintf(p->sev_dev, sizeof(p->sev_dev), "%s", sev);
	} else {
		return attest_fail(why, whylen, VTPM_E_UNSUPPORTED,
		    "no %s attestation interface here: configfs-tsm: %s%s%s; %s: %s "
		    "(is this a confidential VM? --attestation sim is for development only)",
		    strcmp(kind, "auto") == 0 ? "SEV-SNP or TDX" : kind,
		    have_tsm ? "provider '" : tsmwhy, have_tsm ? prov : "", have_tsm ? "'" : "",
		    sev, have_sev ? "not usable for TDX" : strerror(errno));
	}
	p->privlevel = o->ap_privlevel;
	if (p->tee == ATTEST_TEE_TDX &&
	    (rc = tdx_nonce_load(o->ap_launch_file, p->nonce, why, whylen)) != 0) {
		attest_provider_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

/* ---- the envelope --------------------------------------------------------- */

static int
envelope(uint8_t tee, const uint8_t *report, size_t rlen, const uint8_t *aux, size_t alen,
    uint8_t *out, size_t cap, size_t *len)
{
	struct wbuf w;

	wbuf_init(&w, out, cap);
	wbuf_put_bytes(&w, "VTEV", 4);
	wbuf_put_u8(&w, 1);
	wbuf_put_u8(&w, tee);
	wbuf_put_u16(&w, 0);
	wbuf_put_u32(&w, (uint32_t)rlen);
	wbuf_put_bytes(&w, report, rlen);
	wbuf_put_u32(&w, (uint32_t)alen);
	wbuf_put_bytes(&w, aux, alen);
	return wbuf_end(&w, len);
}

static int
evidence_get(struct attest_provider *p, const uint8_t rd[ATTEST_REPORT_DATA_LEN], int raw,
    uint8_t *out, size_t cap, size_t *len)
{
	uint8_t report[OUTBLOB_MAX], inblob[64];
	size_t rlen = 0, alen = 0;
	int rc;

	p->err[0] = '\0';
	switch (p->kind) {
	case P_SIM:
		if ((rc = attest_sim_report(&p->sim, rd, report)) != 0 ||
		    (rc = attest_sim_cert_table(p->sim.sp_turin, p->aux, sizeof(p->aux), &alen)) != 0)
			return attest_fail(p->err, sizeof(p->err), rc,
			    "sim report: %s", vtpm_strerror(rc));
		rlen = ATTEST_SNP_REPORT_LEN;
		break;
	case P_SEV_GUEST:
		if ((rc = sev_guest_get(p, rd, report, p->aux, sizeof(p->aux), &alen)) != 0)
			return rc;
		rlen = ATTEST_SNP_REPORT_LEN;
		/* Re-pack the known entries: the host's buffer is page-sized. */
		if (alen > 0) {
			struct attest_cert_table t;
			struct snp_table_entry e[4];
			uint8_t *tmp;
			char why[ATTEST_WHY_LEN];
			size_t ne = 0;

			if (attest_cert_table_parse(p->aux, alen, &t, why, sizeof(why)) != 0)
				return attest_fail(p->err, sizeof(p->err), VTPM_E_FORMAT,
				    "host certificates: %s", why);
			if (t.vcek != NULL)
				e[ne++] = (struct snp_table_entry){ snp_guid_vcek, t.vcek, t.vcek_len };
			if (t.vlek != NULL)
				e[ne++] = (struct snp_table_entry){ snp_guid_vlek, t.vlek, t.vlek_len };
			if (t.ask != NULL)
				e[ne++] = (struct snp_table_entry){ snp_guid_ask, t.ask, t.ask_len };
			if (t.ark != NULL)
				e[ne++] = (struct snp_table_entry){ snp_guid_ark, t.ark, t.ark_len };
			alen = 0;
			if (ne > 0) {
				if ((tmp = malloc(sizeof(p->aux))) == NULL)
					return attest_fail(p->err, sizeof(p->err), VTPM_E_NOMEM,
					    "out of memory");
				rc = snp_cert_table_build(e, ne, tmp, sizeof(p->aux), &alen);
				if (rc == 0)
					memcpy(p->aux, tmp, alen);
				free(tmp);
				if (rc != 0)
					return attest_fail(p->err, sizeof(p->err), rc,
					    "host certificates do not fit");
			}
		}
		break;
	case P_TSM:
		if (p->tee == ATTEST_TEE_TDX && !raw)
			attest_tdx_report_data(rd, p->nonce, inblob);
		else
			memcpy(inblob, rd, 64);
		if ((rc = tsm_get(p, inblob, report, sizeof(report), &rlen,
		    p->tee == ATTEST_TEE_SNP ? p->aux : NULL, sizeof(p->aux), &alen)) != 0)
			return rc;
		if (p->tee == ATTEST_TEE_TDX) {
			memcpy(p->aux, p->nonce, sizeof(p->nonce));
			alen = sizeof(p->nonce);
		}
		break;
	default:
		return VTPM_E_UNSUPPORTED;
	}
	rc = envelope((uint8_t)p->tee, report, rlen, p->aux, alen, out, cap, len);
	if (rc != 0)
		attest_fail(p->err, sizeof(p->err), rc, "evidence of %zu bytes does not fit in %zu",
		    rlen + alen + 16, cap);
	return rc;
}

int
attest_evidence_get(struct attest_provider *p, const uint8_t rd[ATTEST_REPORT_DATA_LEN],
    uint8_t *out, size_t cap, size_t *len)
{
	return evidence_get(p, rd, 0, out, cap, len);
}

int
attest_evidence_get_raw(struct attest_provider *p, const uint8_t rd[ATTEST_REPORT_DATA_LEN],
    uint8_t *out, size_t cap, size_t *len)
{
	return evidence_get(p, rd, 1, out, cap, len);
}
