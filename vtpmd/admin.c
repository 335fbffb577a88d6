/*
 * admin.c: the admin socket (unix, mode 0600): one JSON request line in,
 * one JSON response line out (docs/ADMIN-PROTOCOL.md). The peer is a local
 * operator, but its bytes are still parsed defensively (json-c, size limit,
 * read timeout) and nothing it sends can reach a key or a plaintext blob.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "endorse.h"
#include "log.h"
#include "ops.h"
#include "parent.h"
#include "zygote.h"

#define ADMIN_MAX_REQ	65536
#define ADMIN_TIMEOUT_MS 2000

static json_object *
hexstr(const uint8_t *p, size_t n)
{
	json_object *o;
	char *buf;

	if ((buf = malloc(2 * n + 1)) == NULL)
		return NULL;
	attest_hex_encode(p, n, buf);
	o = json_object_new_string(buf);
	free(buf);
	return o;
}

static json_object *
inst_json(const struct store_instance *r)
{
	json_object *o = json_object_new_object();
	struct inst *in = inst_find(r->name);
	char uuid[33];
	json_object *banks = json_object_new_array();
	static const char *bank_names[] = { "sha1", "sha256", "sha384", "sha512" };
	int i;

	attest_hex_encode(r->uuid, sizeof(r->uuid), uuid);
	json_object_object_add(o, "name", json_object_new_string(r->name));
	json_object_object_add(o, "uuid", json_object_new_string(uuid));
	json_object_object_add(o, "state", json_object_new_string(
	    r->flags & STORE_INST_FENCED ? "fenced" :
	    in != NULL ? inst_state_name(in->state) : "stored"));
	json_object_object_add(o, "worker_pid", json_object_new_int(in ? (int)in->pid : 0));
	json_object_object_add(o, "created", json_object_new_int64((int64_t)r->created));
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)r->perm_gen));
	json_object_object_add(o, "has_volatile_state", json_object_new_boolean(r->vol_gen != 0));
	json_object_object_add(o, "measurement", hexstr(r->measurement, sizeof(r->measurement)));
	json_object_object_add(o, "host_data", hexstr(r->host_data, sizeof(r->host_data)));
	for (i = 0; i < 4; i++)
		if (r->pcr_banks & (1u << i))
			json_object_array_add(banks, json_object_new_string(bank_names[i]));
	json_object_object_add(o, "pcr_banks", banks);
	{
		uint8_t kid[SEAL_KID_LEN];
		uint32_t kver = 0;

		/* which root key version wraps its data key (from the record) */
		if (seal_dek_peek(r->wrapped_dek, kid, &kver) == 0) {
			json_object_object_add(o, "key_version", json_object_new_int64(kver));
			json_object_object_add(o, "key_id", hexstr(kid, sizeof(kid)));
		}
	}
	{
		/* on etcd: the vtpmd that owns the instance, and its lease */
		char owner[STORE_ETCD_OWNER_MAX + 1], lease[17];
		int64_t lid;

		if (store_inst_owner(V->store, r->name, owner, sizeof(owner), &lid) == 0) {
			snprintf(lease, sizeof(lease), "%llx", (unsigned long long)lid);
			json_object_object_add(o, "owner", json_object_new_string(owner));
			json_object_object_add(o, "lease", json_object_new_string(lease));
		}
	}
	if (in != NULL && (in->state == I_ACTIVE || in->state == I_IDLE)) {
		/* The H-CRTM event of the live launch, for verifiers to replay. */
		uint8_t ev[HCRTM_EVENT_LEN];

		hcrtm_event(&in->claims, ev);
		json_object_object_add(o, "launch_event", hexstr(ev, sizeof(ev)));
	}
	return o;
}

static int
list_cb(const struct store_instance *r, void *arg)
{
	json_object_array_add(arg, inst_json(r));
	return 0;
}

static json_object *
error_reply(const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

static const char *
get_str(json_object *req, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Returns the reply, or NULL if the op answers fd later itself (rotate-key). */
static json_object *
admin_handle(json_object *req, int fd)
{
	json_object *reply = json_object_new_object(), *arr;
	struct store_instance rec;
	const char *op = get_str(req, "op"), *name;
	char why[256];
	int rc;

	if (op == NULL) {
		json_object_put(reply);
		return error_reply("request has no \"op\"");
	}
	if (strcmp(op, "list") == 0) {
		arr = json_object_new_array();
		rc = store_inst_list(V->store, list_cb, arr);
		if (rc != 0) {
			json_object_put(arr);
			json_object_put(reply);
			snprintf(why, sizeof(why), "list failed: %s", vtpm_strerror(rc));
			return error_reply(why);
		}
		json_object_object_add(reply, "instances", arr);
	} else if (strcmp(op, "release") == 0) {
		/* save, stop, give up ownership: the guest may attach anywhere (FLEET.md) */
		if ((name = get_str(req, "name")) == NULL || store_inst_name_check(name) != 0) {
			json_object_put(reply);
			return error_reply("release needs a valid \"name\"");
		}
		if (inst_end_worker(name, 1, "released by the operator") == 0)
			store_inst_release(V->store, name);	/* no worker: drop any claim */
		json_object_object_add(reply, "message", json_object_new_string(
		    inst_find(name) != NULL ? "saving its state and stopping; released "
		    "when the worker has stopped" : "released"));
	} else if (strcmp(op, "show") == 0 || strcmp(op, "delete") == 0) {
		if ((name = get_str(req, "name")) == NULL) {
			json_object_put(reply);
			return error_reply("request has no \"name\"");
		}
		if (strcmp(op, "show") == 0) {
			if ((rc = store_inst_get(V->store, name, &rec)) != 0) {
				json_object_put(reply);
				snprintf(why, sizeof(why), "no instance %s: %s", name,
				    vtpm_strerror(rc));
				return error_reply(why);
			}
			json_object_object_add(reply, "instance", inst_json(&rec));
			json_object_object_add(json_object_object_get(reply, "instance"),
			    "endorsement", endorse_show_json(&rec));
		} else if (inst_delete(name, why, sizeof(why)) != 0) {
			json_object_put(reply);
			return error_reply(why);
		}
	} else if (strcmp(op, "enroll") == 0) {
		const char *m = get_str(req, "measurement"), *h = get_str(req, "host_data");
		uint8_t meas[48], host[32];

		name = get_str(req, "name");
		if (name == NULL || m == NULL || h == NULL ||
		    attest_hex_decode(m, meas, sizeof(meas)) != 0 ||
		    attest_hex_decode(h, host, sizeof(host)) != 0) {
			json_object_put(reply);
			return error_reply("enroll needs name, measurement (96 hex digits) "
			    "and host_data (64 hex digits)");
		}
		if (inst_enroll(name, meas, host, &rec, why, sizeof(why)) != 0) {
			json_object_put(reply);
			return error_reply(why);
		}
		json_object_object_add(reply, "instance", inst_json(&rec));
	} else if (strcmp(op, "ca-show") == 0 || strcmp(op, "ca-evidence") == 0) {
		char *pem = ekca_pem();

		if (pem == NULL) {
			json_object_put(reply);
			return error_reply("the EK CA is not available (no root key yet)");
		}
		json_object_object_add(reply, "certificate", json_object_new_string(pem));
		free(pem);
		if (strcmp(op, "ca-evidence") == 0) {
			uint8_t rd[ATTEST_REPORT_DATA_LEN], ev[ATTEST_MAX_EVIDENCE];
			char b64[sodium_base64_ENCODED_LEN(ATTEST_MAX_EVIDENCE,
			    sodium_base64_VARIANT_ORIGINAL)];
			size_t evlen;

			if ((rc = ekca_report_data(rd)) != 0 ||
			    (rc = attest_evidence_get(V->attester, rd, ev, sizeof(ev), &evlen)) != 0) {
				json_object_put(reply);
				snprintf(why, sizeof(why), "no evidence: %s", vtpm_strerror(rc));
				return error_reply(why);
			}
			sodium_bin2base64(b64, sizeof(b64), ev, evlen, sodium_base64_VARIANT_ORIGINAL);
			json_object_object_add(reply, "report_data", hexstr(rd, sizeof(rd)));
			json_object_object_add(reply, "evidence", json_object_new_string(b64));
		}
	} else if (strcmp(op, "status") == 0) {
		json_object *st = json_object_new_object();
		struct inst *in;
		int attached = 0, workers = 0;

		TAILQ_FOREACH(in, &V->insts, entry) {
			if (in->state == I_DEAD)
				continue;
			workers++;
			attached += in->state == I_ACTIVE;
		}
		json_object_object_add(st, "version", json_object_new_string(VTPM_VERSION));
		json_object_object_add(st, "state_dir", json_object_new_string(V->cfg.state_dir));
		json_object_object_add(st, "dev_mode", json_object_new_boolean(V->cfg.dev));
		json_object_object_add(st, "attestation", json_object_new_string(V->cfg.attestation));
		json_object_object_add(st, "key_provider", json_object_new_string(
		    strncmp(V->cfg.key_provider, "file:", 5) == 0 ? "file" : V->cfg.key_provider));
		if (strncmp(V->cfg.key_provider, "file:", 5) == 0)
			json_object_object_add(st, "key_provider_note", json_object_new_string(
			    "development only: a local key file, not released by attestation"));
		json_object_object_add(st, "keys", json_object_new_string(keys_status()));
		if (keys_available()) {
			json_object_object_add(st, "key_version",
			    json_object_new_int64(V->kek->version));
			json_object_object_add(st, "key_id", hexstr(V->kek->kid, SEAL_KID_LEN));
		}
		json_object_object_add(st, "workers", json_object_new_int(workers));
		json_object_object_add(st, "attached", json_object_new_int(attached));
		json_object_object_add(st, "spare_workers", json_object_new_int(zygote_spares()));
		json_object_object_add(st, "handshakes", json_object_new_int(V->nhandshakes));
		json_object_object_add(reply, "status", st);
	} else if (strcmp(op, "rotate-key") == 0) {
		json_object_put(reply);
		if (keys_rotate(fd, why, sizeof(why)) != 0)
			return error_reply(why);
		return NULL;	/* keys.c answers when the rewrap committed (or failed) */
	} else {
		json_object_put(reply);
		snprintf(why, sizeof(why), "unknown op \"%.40s\"", op);
		return error_reply(why);
	}
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	return reply;
}

/* One recvmsg(); a descriptor passed with the bytes (SCM_RIGHTS) goes to *passfd. */
static ssize_t
recv_some(int fd, char *buf, size_t len, int *passfd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct iovec iov = { buf, len };
	struct msghdr msg;
	struct cmsghdr *c;
	ssize_t n;
	size_t i, nfd;
	int pfd;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	for (c = CMSG_FIRSTHDR(&msg); n >= 0 && c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			memcpy(&pfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*passfd < 0)
				*passfd = pfd;	/* the first one; ops that take none close it */
			else
				close(pfd);
		}
	}
	return n;
}

/*
 * Reads one line (bounded size and time); returns its length or -1. A
 * descriptor passed with it (backup, restore, ...: ops.h) goes to *passfd.
 */
static ssize_t
read_line(int fd, char *buf, size_t cap, int *passfd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec start, now;
	size_t have = 0;
	ssize_t n;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (have < cap - 1) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = ADMIN_TIMEOUT_MS - ((now.tv_sec - start.tv_sec) * 1000 +
		    (now.tv_nsec - start.tv_nsec) / 1000000);
		if (ms <= 0 || poll(&pfd, 1, (int)ms) <= 0)
			return -1;
		n = recv_some(fd, buf + have, cap - 1 - have, passfd);
		if (n <= 0)
			return -1;
		have += (size_t)n;
		if (memchr(buf, '\n', have) != NULL)
			break;
	}
	buf[have] = '\0';
	if (memchr(buf, '\n', have) == NULL)
		return -1;
	return (ssize_t)have;
}

void
admin_reply(int fd, json_object *reply)
{
	const char *out;
	size_t len, off;
	ssize_t n;

	out = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN);
	len = strlen(out);
	for (off = 0; off < len; ) {
		n = write(fd, out + off, len - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	(void)!write(fd, "\n", 1);
	json_object_put(reply);
	close(fd);
}

void
admin_accept(int lfd)
{
	static char buf[ADMIN_MAX_REQ + 1];
	json_object *req, *reply;
	json_tokener *tok;
	ssize_t n;
	int fd, passfd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		/*
		 * A client that stops reading must not stall the event loop:
		 * replies (a list of many instances is large) give up after
		 * the same bound as requests.
		 */
		struct timeval tv = { .tv_sec = ADMIN_TIMEOUT_MS / 1000,
		    .tv_usec = (ADMIN_TIMEOUT_MS % 1000) * 1000 };
		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
			log_warn("admin: SO_SNDTIMEO");
		passfd = -1;
		n = read_line(fd, buf, sizeof(buf), &passfd);
		if (n < 0) {
			log_warnx("admin: request not read (too long, too slow or closed)");
			reply = error_reply("request must be one JSON line of at most 64 KiB");
		} else {
			tok = json_tokener_new_ex(16);
			req = tok ? json_tokener_parse_ex(tok, buf, (int)n) : NULL;
			if (tok != NULL && json_tokener_get_error(tok) != json_tokener_success) {
				json_object_put(req);
				req = NULL;
			}
			if (tok != NULL)
				json_tokener_free(tok);
			if (req == NULL || !json_object_is_type(req, json_type_object)) {
				log_warnx("admin: malformed request");
				reply = error_reply("malformed JSON request");
			} else {
				/* backup, restore, export, import, audit, metrics (ops.h) */
				switch (ops_admin(req, fd, &passfd, &reply)) {
				case OPS_NOT_MINE:
					reply = admin_handle(req, fd);
					break;
				case OPS_TAKEN:
					reply = NULL;	/* the op answers fd later */
					break;
				}
			}
			json_object_put(req);
		}
		if (passfd >= 0)
			close(passfd);
		if (reply != NULL)
			admin_reply(fd, reply);		/* else fd waits for a deferred reply */
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		log_warn("admin accept");
}
