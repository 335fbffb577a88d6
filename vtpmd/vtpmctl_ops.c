/*
 * vtpmctl_ops.c: vtpmctl's operator commands (docs/OPERATIONS.md): backup,
 * verify, restore, export, import, audit and metrics. Files are opened or
 * created here (with the operator's credentials) and passed to vtpmd as a
 * descriptor; a new file is written to a temporary name in the target
 * directory and renamed only after vtpmd said "ok" and it was fsync()ed.
 * Long operations show a progress bar on a terminal and print JSON lines
 * otherwise. Trusts vtpmd's answers only as far as json-c parses them, and
 * nothing in a backup file (offline verify uses the bounds-checked parser).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "backup_format.h"

int ctl_ops_is_cmd(const char *cmd);
int ctl_ops_main(const char *admin, int json, int argc, char **argv);
void ctl_ops_usage(FILE *f);

#define CTL_LINE_MAX	(64u << 20)	/* longest reply line (a large audit log) */

static const char *const ctl_cmds[] = {
	"backup", "verify", "restore", "export", "import", "audit", "metrics",
};

int
ctl_ops_is_cmd(const char *cmd)
{
	size_t i;

	for (i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		if (strcmp(cmd, ctl_cmds[i]) == 0)
			return 1;
	return 0;
}

void
ctl_ops_usage(FILE *f)
{
	fprintf(f,
"  backup FILE                  hot, consistent backup of every instance (atomic write)\n"
"  verify FILE [--with-keys] [--layout]\n"
"                               check a backup or export offline and name what is damaged;\n"
"                               --with-keys: vtpmd also opens every blob (changes nothing)\n"
"  restore FILE [--force]       restore a backup in one transaction; refuses older state\n"
"                               over newer unless --force (which the audit log records)\n"
"  export NAME FILE             move an instance out: written for the migration key, and\n"
"                               fenced here in the same transaction\n"
"  import FILE                  take in an export (each export once)\n"
"  audit [--since T] [--limit N]  the audit log; T: unix seconds, 2026-11-28[T10:00:00Z],\n"
"                               or an age such as 30m, 2h, 7d\n"
"  metrics                      Prometheus text format\n"
"Long operations draw a progress bar on a terminal and print JSON lines otherwise.\n");
}

/* ---- progress --------------------------------------------------------- */

struct progress {
	int		 tty;		/* draw a bar */
	int		 json;		/* print JSON lines */
	const char	*op;
	char		 phase[32];
	uint32_t	 done, total;
	struct timespec	 start, last;
	int		 drawn;
	uint32_t	 shown;		/* done as last printed (JSON lines) */
	int		 shown_any;
};

static double
secs_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void
progress_init(struct progress *p, const char *op, int json)
{
	memset(p, 0, sizeof(*p));
	p->op = op;
	p->json = json || !isatty(STDOUT_FILENO);
	p->tty = !p->json;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
}

static void
progress_draw(struct progress *p, int final)
{
	double el = secs_since(&p->start), rate = el >= 0.05 ? p->done / el : 0, eta = -1;
	char bar[31];
	int i, fill;

	if (rate > 0 && p->total >= p->done)
		eta = (p->total - p->done) / rate;
	if (p->json) {
		if (p->shown_any && p->shown == p->done)
			return;		/* the last line already said it */
		p->shown = p->done;
		p->shown_any = 1;
		printf("{\"op\":\"%s\",\"phase\":\"%s\",\"done\":%u,\"total\":%u,\"rate\":%.1f,"
		    "\"elapsed_seconds\":%.2f,\"eta_seconds\":%.1f}\n", p->op, p->phase, p->done,
		    p->total, rate, el, eta < 0 ? 0 : eta);
		fflush(stdout);
		return;
	}
	fill = p->total > 0 ? (int)((uint64_t)p->done * 30 / p->total) : (final ? 30 : 0);
	for (i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	printf("\r%-7s %-9s [%s] %u/%u  %.0f/s  ", p->op, p->phase, bar, p->done, p->total,
	    rate);
	if (final)
		printf("%.1fs    \n", el);
	else if (eta >= 0)
		printf("ETA %d:%02d   ", (int)eta / 60, (int)eta % 60);
	else
		printf("ETA -:--   ");
	fflush(stdout);
	p->drawn = !final;
}

/* A new figure; a new phase restarts the clock (rate and ETA are per phase). */
static void
progress_update(struct progress *p, const char *phase, uint32_t done, uint32_t total)
{
	if (strcmp(phase, p->phase) != 0) {
		if (p->phase[0] != '\0')
			progress_draw(p, 1);
		snprintf(p->phase, sizeof(p->phase), "%s", phase);
		clock_gettime(CLOCK_MONOTONIC, &p->start);
		p->last.tv_sec = 0;
		p->shown_any = 0;
	}
	p->done = done;
	p->total = total;
	if (done < total && p->last.tv_sec != 0 && secs_since(&p->last) < 0.2)
		return;
	clock_gettime(CLOCK_MONOTONIC, &p->last);
	progress_draw(p, 0);
}

static void
progress_end(struct progress *p)
{
	if (p->phase[0] != '\0' && (p->drawn || p->json))
		progress_draw(p, 1);
	p->phase[0] = '\0';
}

/* ---- talking to vtpmd ------------------------------------------------- */

static void
die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static char tmp_path[PATH_MAX];		/* removed on failure and on SIGINT/SIGTERM */

static void
die(int code, const char *fmt, ...)
{
	va_list ap;

	if (tmp_path[0] != '\0')
		unlink(tmp_path);
	fflush(stdout);
	fprintf(stderr, "vtpmctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(code);
}

static void
on_signal(int sig)
{
	if (tmp_path[0] != '\0')
		unlink(tmp_path);
	_exit(128 + sig);
}

/* Connects to vtpmd and sends one request line, with fd (if >= 0) attached. */
static int
ctl_send(const char *admin, json_object *req, int fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct sockaddr_un sun;
	struct msghdr msg;
	struct iovec iov[2];
	const char *line = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(line);
	ssize_t n;
	int s;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(admin) >= sizeof(sun.sun_path))
		die(2, "admin socket path too long");
	memcpy(sun.sun_path, admin, strlen(admin));
	if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(s, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		die(2, "cannot reach vtpmd at %s: %s", admin, strerror(errno));
	iov[0].iov_base = (void *)(uintptr_t)line;
	iov[0].iov_len = len;
	iov[1].iov_base = "\n";
	iov[1].iov_len = 1;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	if (fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		cm.hdr.cmsg_len = CMSG_LEN(sizeof(int));
		cm.hdr.cmsg_level = SOL_SOCKET;
		cm.hdr.cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(&cm.hdr), &fd, sizeof(int));
	}
	do {
		n = sendmsg(s, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len + 1)
		die(2, "sending the request: %s", n < 0 ? strerror(errno) : "short write");
	return s;
}

/*
 * Reads reply lines: progress lines update p (may be NULL); the first other
 * line is the reply, returned (the caller frees it).
 */
static json_object *
ctl_replies(int s, struct progress *p)
{
	size_t have = 0, cap = 65536;
	char *buf = malloc(cap), *nl;
	json_object *o, *pr, *v;
	ssize_t n;

	if (buf == NULL)
		die(2, "out of memory");
	for (;;) {
		while ((nl = memchr(buf, '\n', have)) != NULL) {
			*nl = '\0';
			o = json_tokener_parse(buf);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
			if (o == NULL)
				die(2, "vtpmd sent a line that is not JSON");
			if (!json_object_object_get_ex(o, "progress", &pr)) {
				free(buf);
				close(s);
				return o;
			}
			if (p != NULL) {
				const char *phase = json_object_object_get_ex(pr, "phase", &v) ?
				    json_object_get_string(v) : "?";
				uint32_t done = json_object_object_get_ex(pr, "done", &v) ?
				    (uint32_t)json_object_get_int64(v) : 0;
				uint32_t total = json_object_object_get_ex(pr, "total", &v) ?
				    (uint32_t)json_object_get_int64(v) : 0;

				progress_update(p, phase, done, total);
			}
			json_object_put(o);
		}
		if (have == cap) {
			char *q;

			if (cap >= CTL_LINE_MAX)
				die(2, "vtpmd's answer is longer than %u bytes", CTL_LINE_MAX);
			if ((q = realloc(buf, cap * 2)) == NULL)
				die(2, "out of memory");
			buf = q;
			cap *= 2;
		}
		do {
			n = read(s, buf + have, cap - have);
		} while (n < 0 && errno == EINTR);
		if (n <= 0)
			die(2, "vtpmd closed the connection without an answer (see its log)");
		have += (size_t)n;
	}
}

/* Prints a failed reply (error and problems) and returns 1. */
static int
ctl_failed(json_object *rep, int json)
{
	json_object *v, *arr;
	size_t i;

	if (json) {
		printf("%s\n", json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PLAIN));
	} else if (json_object_object_get_ex(rep, "problems", &arr) &&
	    json_object_is_type(arr, json_type_array)) {
		for (i = 0; i < json_object_array_length(arr); i++) {
			json_object *o = json_object_array_get_idx(arr, i), *inst;

			printf("  %s%s%s\n", json_object_object_get_ex(o, "instance", &inst) ?
			    json_object_get_string(inst) : "", json_object_object_get_ex(o,
			    "instance", &inst) ? ": " : "", json_object_object_get_ex(o, "why", &v) ?
			    json_object_get_string(v) : "?");
		}
	}
	fflush(stdout);
	fprintf(stderr, "vtpmctl: %s\n", json_object_object_get_ex(rep, "error", &v) ?
	    json_object_get_string(v) : "failed");
	json_object_put(rep);
	return 1;
}

static int
ctl_ok(json_object *rep)
{
	json_object *v;

	return json_object_object_get_ex(rep, "ok", &v) && json_object_get_boolean(v);
}

/* ---- files ------------------------------------------------------------ */

/* Creates the temporary file beside path (mode 0600); sets tmp_path. */
static int
tmp_create(const char *path)
{
	char dcopy[PATH_MAX], bcopy[PATH_MAX];
	int fd;

	if (strlen(path) >= sizeof(dcopy) - 16)
		die(2, "%s: path too long", path);
	memcpy(dcopy, path, strlen(path) + 1);
	memcpy(bcopy, path, strlen(path) + 1);
	snprintf(tmp_path, sizeof(tmp_path), "%s/.%s.XXXXXX", dirname(dcopy), basename(bcopy));
	if ((fd = mkostemp(tmp_path, O_CLOEXEC)) < 0) {
		tmp_path[0] = '\0';
		die(2, "cannot create a file beside %s: %s", path, strerror(errno));
	}
	return fd;
}

/* fsync the file, rename it into place, fsync the directory. */
static void
tmp_commit(int fd, const char *path)
{
	char dcopy[PATH_MAX];
	int dfd;

	if (fsync(fd) != 0)
		die(1, "fsync %s: %s", tmp_path, strerror(errno));
	if (close(fd) != 0)
		die(1, "close %s: %s", tmp_path, strerror(errno));
	if (rename(tmp_path, path) != 0)
		die(1, "rename %s to %s: %s", tmp_path, path, strerror(errno));
	tmp_path[0] = '\0';
	memcpy(dcopy, path, strlen(path) + 1);
	if ((dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fsync(dfd) != 0)
		die(1, "fsync the directory of %s: %s (the file is in place but its name "
		    "may not survive a crash)", path, strerror(errno));
	close(dfd);
}

static uint8_t *
read_file(const char *path, size_t *len, int *fdp)
{
	struct stat sb;
	uint8_t *buf;
	size_t have = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		die(2, "%s: %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		die(2, "%s: not a regular file", path);
	if ((buf = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1)) == NULL)
		die(2, "%s: out of memory", path);
	while (have < (size_t)sb.st_size) {
		n = pread(fd, buf + have, (size_t)sb.st_size - have, (off_t)have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die(2, "%s: %s", path, n < 0 ? strerror(errno) : "shrank while read");
		have += (size_t)n;
	}
	*len = have;
	if (fdp != NULL)
		*fdp = fd;
	else
		close(fd);
	return buf;
}

/* ---- offline verify --------------------------------------------------- */

struct vctx {
	struct progress	 prog;
	int		 json;
	int		 layout;
	int		 problems;
	uint32_t	 total;
	const uint8_t	*buf;
};

static const char *
part_name(enum bkf_part part)
{
	switch (part) {
	case BKF_PART_HEAD:	return "header";
	case BKF_PART_ENTRY:	return "manifest";
	case BKF_PART_SECTION:	return "data";
	case BKF_PART_LAYOUT:	return "layout";
	case BKF_PART_TRAILER:	return "trailer";
	}
	return "?";
}

static void
v_problem(void *arg, const struct bkf_problem *p)
{
	struct vctx *c = arg;

	c->problems++;
	if (c->prog.drawn) {
		printf("\n");
		c->prog.drawn = 0;
	}
	if (c->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "damaged", json_object_new_string(part_name(p->part)));
		if (p->index >= 0)
			json_object_object_add(o, "index", json_object_new_int64(p->index));
		if (p->name[0] != '\0')
			json_object_object_add(o, "instance", json_object_new_string(p->name));
		json_object_object_add(o, "offset", json_object_new_int64((int64_t)p->offset));
		json_object_object_add(o, "length", json_object_new_int64((int64_t)p->length));
		json_object_object_add(o, "why", json_object_new_string(p->why));
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else if (p->index >= 0) {
		printf("DAMAGED instance %s (#%lld, %s, bytes %llu..%llu): %s\n",
		    p->name[0] ? p->name : "(name unreadable)", (long long)p->index,
		    part_name(p->part), (unsigned long long)p->offset,
		    (unsigned long long)(p->offset + p->length), p->why);
	} else {
		printf("DAMAGED %s (bytes %llu..%llu, no instance): %s\n", part_name(p->part),
		    (unsigned long long)p->offset, (unsigned long long)(p->offset + p->length),
		    p->why);
	}
}

static void
v_instance(void *arg, uint32_t index, const struct bkf_entry *e, int ok)
{
	struct vctx *c = arg;

	if (c->layout && c->json)
		printf("{\"instance\":\"%s\",\"index\":%u,\"ok\":%s,\"entry\":[%llu,%d],"
		    "\"data\":[%llu,%u]}\n", e->name, index, ok ? "true" : "false",
		    (unsigned long long)(BKF_HEAD_LEN + (uint64_t)index * BKF_ENTRY_LEN),
		    BKF_ENTRY_LEN, (unsigned long long)e->offset, e->length);
	else if (c->layout)
		printf("  #%u %-24s entry %llu+%d data %llu+%u %s\n", index, e->name,
		    (unsigned long long)(BKF_HEAD_LEN + (uint64_t)index * BKF_ENTRY_LEN),
		    BKF_ENTRY_LEN, (unsigned long long)e->offset, e->length, ok ? "ok" : "DAMAGED");
	if (!c->layout)
		progress_update(&c->prog, "check", index + 1, c->total);
}

/* Checks buf offline; prints problems; returns the number of problems. */
static int
verify_offline(const uint8_t *buf, size_t len, const char *path, int json, int layout,
    struct bkf_head *head)
{
	struct vctx c;
	struct bkf_verify_cb cb = { v_problem, v_instance, &c };
	char id[2 * BKF_ID_LEN + 1];
	int rc;

	memset(&c, 0, sizeof(c));
	progress_init(&c.prog, "verify", json);
	c.json = c.prog.json;
	c.layout = layout;
	c.buf = buf;
	/* the instance count is only known from an intact head: peek for the bar */
	if (len >= BKF_HEAD_LEN && bkf_head_parse(buf, len, head, NULL, 0) == 0)
		c.total = head->count;
	rc = bkf_verify(buf, len, head, &cb);
	if (!layout)
		progress_end(&c.prog);
	if (rc == 0) {
		sodium_bin2hex(id, sizeof(id), head->id, BKF_ID_LEN);
		if (c.json)
			printf("{\"ok\":true,\"file\":\"%s\",\"kind\":\"%s\",\"id\":\"%s\","
			    "\"instances\":%u,\"created\":%llu,\"vtpmd_version\":\"%s\",\"bytes\":%zu}\n",
			    path, head->kind == BKF_KIND_BACKUP ? "backup" : "export", id,
			    head->count, (unsigned long long)head->created, head->vtpmd_version, len);
		else
			printf("%s: intact %s %s: %u instance%s, %zu bytes, made %llu by vtpmd %s\n",
			    path, head->kind == BKF_KIND_BACKUP ? "backup" : "export", id,
			    head->count, head->count == 1 ? "" : "s", len,
			    (unsigned long long)head->created, head->vtpmd_version);
		return 0;
	}
	if (c.json)
		printf("{\"ok\":false,\"file\":\"%s\",\"problems\":%d}\n", path, c.problems);
	else
		printf("%s: %d problem%s found\n", path, c.problems, c.problems == 1 ? "" : "s");
	return c.problems > 0 ? c.problems : 1;
}

/* ---- the commands ----------------------------------------------------- */

struct ctl_opts {
	const char	*admin;
	int		 json;
	int		 force;
	int		 with_keys;
	int		 layout;
	const char	*since;
	long		 limit;
};

/* Runs a long op on fd with progress; returns the final reply (ok or not). */
static json_object *
ctl_long_op(const struct ctl_opts *o, json_object *req, int fd, const char *op)
{
	struct progress p;
	json_object *rep;
	int s;

	progress_init(&p, op, o->json);
	s = ctl_send(o->admin, req, fd);
	json_object_put(req);
	rep = ctl_replies(s, &p);
	progress_end(&p);
	return rep;
}

static json_object *
req_new(const char *op)
{
	json_object *r = json_object_new_object();

	json_object_object_add(r, "op", json_object_new_string(op));
	return r;
}

static void
print_result(const struct ctl_opts *o, json_object *rep, const char *key, const char *what)
{
	json_object *v;

	if (o->json) {
		printf("%s\n", json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PLAIN));
		return;
	}
	if (key != NULL && json_object_object_get_ex(rep, key, &v))
		printf("%s: %s\n", what, json_object_to_json_string_ext(v,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_SPACED));
	else
		printf("%s\n", what);
}

/* backup FILE, export NAME FILE: a new file, written by vtpmd through the descriptor. */
static int
cmd_write(const struct ctl_opts *o, const char *op, const char *name, const char *path)
{
	json_object *req = req_new(op), *rep;
	int fd = tmp_create(path);

	if (name != NULL)
		json_object_object_add(req, "name", json_object_new_string(name));
	rep = ctl_long_op(o, req, fd, op);
	if (!ctl_ok(rep)) {
		close(fd);
		unlink(tmp_path);
		tmp_path[0] = '\0';
		return ctl_failed(rep, o->json);
	}
	tmp_commit(fd, path);
	print_result(o, rep, strcmp(op, "backup") == 0 ? "backup" : "export",
	    path);
	json_object_put(rep);
	return 0;
}

static int
cmd_read(const struct ctl_opts *o, const char *op, const char *path)
{
	struct bkf_head head;
	json_object *req, *rep;
	uint8_t *buf;
	size_t len;
	int fd, problems;

	buf = read_file(path, &len, &fd);
	/* offline first: damage is located here, before vtpmd reads a byte */
	problems = verify_offline(buf, len, path, o->json, o->layout, &head);
	free(buf);
	if (problems != 0) {
		close(fd);
		return 1;
	}
	if (strcmp(op, "verify-backup") == 0 && !o->with_keys) {
		close(fd);
		return 0;
	}
	req = req_new(op);
	if (o->force)
		json_object_object_add(req, "force", json_object_new_boolean(1));
	rep = ctl_long_op(o, req, fd, strcmp(op, "verify-backup") == 0 ? "verify" : op);
	close(fd);
	if (!ctl_ok(rep))
		return ctl_failed(rep, o->json);
	if (strcmp(op, "restore") == 0 && !o->json) {
		json_object *v;
		int64_t nnew = 0, nrep = 0, nskip = 0, nforced = 0;

		if (json_object_object_get_ex(rep, "new", &v)) nnew = json_object_get_int64(v);
		if (json_object_object_get_ex(rep, "replaced", &v)) nrep = json_object_get_int64(v);
		if (json_object_object_get_ex(rep, "unchanged", &v)) nskip = json_object_get_int64(v);
		if (json_object_object_get_ex(rep, "forced", &v)) nforced = json_object_get_int64(v);
		printf("restored %s: %lld new, %lld replaced, %lld unchanged%s\n", path,
		    (long long)nnew, (long long)nrep, (long long)nskip,
		    nforced ? " (FORCED over newer or conflicting state: see vtpmctl audit)" : "");
	} else if (strcmp(op, "import") == 0) {
		print_result(o, rep, "import", "imported");
	} else {
		print_result(o, rep, "message", "verified with vtpmd's keys");
	}
	json_object_put(rep);
	return 0;
}

/* --since: unix seconds, an ISO date or date-time (UTC), or an age like 30m. */
static int64_t
parse_since(const char *s)
{
	struct tm tm;
	char *end;
	long long v;
	const char *rest;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == 0 && end != s && v >= 0) {
		if (*end == '\0')
			return v;
		if (end[1] == '\0') {
			switch (*end) {
			case 's': return (int64_t)time(NULL) - v;
			case 'm': return (int64_t)time(NULL) - v * 60;
			case 'h': return (int64_t)time(NULL) - v * 3600;
			case 'd': return (int64_t)time(NULL) - v * 86400;
			}
		}
	}
	memset(&tm, 0, sizeof(tm));
	if ((rest = strptime(s, "%Y-%m-%d", &tm)) != NULL) {
		if (*rest == 'T' || *rest == ' ')
			rest = strptime(rest + 1, "%H:%M:%S", &tm);
		if (rest != NULL && (*rest == '\0' || strcmp(rest, "Z") == 0))
			return (int64_t)timegm(&tm);
	}
	die(2, "--since %s: want unix seconds, YYYY-MM-DD[THH:MM:SS[Z]] (UTC) or an age "
	    "such as 30m, 2h, 7d", s);
}

static int
cmd_audit(const struct ctl_opts *o)
{
	json_object *req = req_new("audit"), *rep, *arr, *e, *v;
	char when[64];
	size_t i;
	int s;

	if (o->since != NULL)
		json_object_object_add(req, "since", json_object_new_int64(parse_since(o->since)));
	if (o->limit > 0)
		json_object_object_add(req, "limit", json_object_new_int64(o->limit));
	s = ctl_send(o->admin, req, -1);
	json_object_put(req);
	rep = ctl_replies(s, NULL);
	if (!ctl_ok(rep))
		return ctl_failed(rep, o->json);
	if (!json_object_object_get_ex(rep, "events", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return ctl_failed(rep, o->json);
	if (!o->json)
		printf("%-24s %-10s %-8s %-24s %s\n", "TIME (UTC)", "EVENT", "RESULT",
		    "INSTANCE", "DETAIL");
	for (i = 0; i < json_object_array_length(arr); i++) {
		e = json_object_array_get_idx(arr, i);
		if (o->json) {
			printf("%s\n", json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
			continue;
		}
		{
			int64_t ms = json_object_object_get_ex(e, "time_ms", &v) ?
			    json_object_get_int64(v) : 0;
			time_t t = (time_t)(ms / 1000);
			struct tm tm;
			const char *inst = json_object_object_get_ex(e, "instance", &v) ?
			    json_object_get_string(v) : "-";
			const char *res = json_object_object_get_ex(e, "result", &v) ?
			    json_object_get_string(v) : "?";
			int forced = json_object_object_get_ex(e, "forced", &v) &&
			    json_object_get_boolean(v);

			gmtime_r(&t, &tm);
			snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
			    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			    tm.tm_sec, (int)(ms % 1000));
			printf("%-24s %-10s %-8s %-24s %s%s\n", when,
			    json_object_object_get_ex(e, "event", &v) ? json_object_get_string(v) :
			    "?", strcmp(res, "ok") == 0 ? "ok" : "FAILED", inst,
			    forced ? "[FORCED] " : "", json_object_object_get_ex(e, "detail", &v) ?
			    json_object_get_string(v) : "");
			if (strcmp(res, "ok") != 0)
				printf("%-24s %-10s %-8s %-24s (%s)\n", "", "", "", "", res);
		}
	}
	json_object_put(rep);
	return 0;
}

static int
cmd_metrics(const struct ctl_opts *o)
{
	json_object *rep, *v;
	int s = ctl_send(o->admin, req_new("metrics"), -1);

	rep = ctl_replies(s, NULL);
	if (!ctl_ok(rep) || !json_object_object_get_ex(rep, "text", &v))
		return ctl_failed(rep, o->json);
	fputs(json_object_get_string(v), stdout);
	json_object_put(rep);
	return 0;
}

int
ctl_ops_main(const char *admin, int json, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "admin", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "force", no_argument, NULL, 'f' },
		{ "with-keys", no_argument, NULL, 'k' },
		{ "layout", no_argument, NULL, 'l' },
		{ "since", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_opts o;
	const char *cmd = argv[0];
	struct sigaction sa;
	int ch, nargs;
	char **args;

	memset(&o, 0, sizeof(o));
	o.admin = admin;
	o.json = json || !isatty(STDOUT_FILENO);	/* JSON lines unless on a terminal */
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':	o.admin = optarg; break;
		case 'j':	o.json = 1; break;
		case 'f':	o.force = 1; break;
		case 'k':	o.with_keys = 1; break;
		case 'l':	o.layout = 1; break;
		case 's':	o.since = optarg; break;
		case 'n':	o.limit = atol(optarg); break;
		default:	return 2;
		}
	}
	args = argv + optind;
	nargs = argc - optind;
	if ((o.force && strcmp(cmd, "restore") != 0) ||
	    ((o.with_keys || o.layout) && strcmp(cmd, "verify") != 0) ||
	    ((o.since != NULL || o.limit != 0) && strcmp(cmd, "audit") != 0)) {
		fprintf(stderr, "vtpmctl: option not valid for %s\n", cmd);
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		die(2, "libsodium does not start");

#define WANT(n, u) do { if (nargs != (n)) { fprintf(stderr, "usage: vtpmctl %s %s\n", cmd, u); return 2; } } while (0)
	if (strcmp(cmd, "backup") == 0) {
		WANT(1, "FILE");
		return cmd_write(&o, "backup", NULL, args[0]);
	}
	if (strcmp(cmd, "export") == 0) {
		WANT(2, "NAME FILE");
		return cmd_write(&o, "export", args[0], args[1]);
	}
	if (strcmp(cmd, "verify") == 0) {
		WANT(1, "FILE [--with-keys] [--layout]");
		return cmd_read(&o, "verify-backup", args[0]);
	}
	if (strcmp(cmd, "restore") == 0) {
		WANT(1, "FILE [--force]");
		return cmd_read(&o, "restore", args[0]);
	}
	if (strcmp(cmd, "import") == 0) {
		WANT(1, "FILE");
		return cmd_read(&o, "import", args[0]);
	}
	if (strcmp(cmd, "audit") == 0) {
		WANT(0, "[--since T] [--limit N] [--json]");
		return cmd_audit(&o);
	}
	if (strcmp(cmd, "metrics") == 0) {
		WANT(0, "");
		return cmd_metrics(&o);
	}
#undef WANT
	return 2;
}
