/*
 * metrics.c: counters and gauges of the vtpmd parent in the Prometheus text
 * format (version 0.0.4): `vtpmctl metrics` (admin op "metrics") and an
 * optional loopback HTTP endpoint (--metrics-listen tcp:127.0.0.1:PORT).
 * Trusts its callers' numbers; the HTTP peer is untrusted: at most 4 KiB of
 * request is read, only "GET /metrics" is answered, connections are capped
 * and never block the event loop.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "ops_job.h"
#include "parent.h"
#include "proto.h"

#define RATE_WINDOW	10		/* seconds averaged for commands per second */
#define NLAT		12
#define NSIZE		12
#define HTTP_MAX_CONN	8
#define HTTP_MAX_REQ	4096

static const double lat_bounds[NLAT - 1] = {
	0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
};
static const int size_bounds[NSIZE - 1] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024 };

/* attach failure reasons, indexed by ERR_* code (proto.h) */
static const char *const fail_reason[] = {
	"other", "internal", "protocol", "evidence", "not_enrolled", "busy",
	"unavailable", "fenced", "policy", "shutting_down",
};
#define NREASON	(sizeof(fail_reason) / sizeof(fail_reason[0]))

static const char *const end_reason[] = {
	"other", "peer_closed", "bad_frame", "detach", "kicked", "io",
};
#define NEND	(sizeof(end_reason) / sizeof(end_reason[0]))

static struct {
	time_t		 started;
	uint64_t	 commands;
	uint64_t	 rate_sec[RATE_WINDOW + 1];	/* commands in second s, at s % (RATE_WINDOW+1) */
	time_t		 rate_stamp[RATE_WINDOW + 1];
	uint64_t	 commits, commit_failures, committed_blobs;
	double		 commit_seconds;
	uint64_t	 lat_bucket[NLAT];
	uint64_t	 size_bucket[NSIZE];
	uint64_t	 attach_ok[3];			/* by ATTACHED_* */
	uint64_t	 attach_failed[NREASON];
	uint64_t	 session_end[NEND];
} M;

static time_t
mono_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

void
metrics_commit(const struct timespec *t0, const struct timespec *t1, int blobs, int ok)
{
	double s = (double)(t1->tv_sec - t0->tv_sec) + (double)(t1->tv_nsec - t0->tv_nsec) / 1e9;
	int i;

	if (!ok) {
		M.commit_failures++;
		return;
	}
	if (blobs <= 0)
		return;		/* an audit-only commit: not a group commit of state */
	M.commits++;
	M.committed_blobs += (uint64_t)blobs;
	M.commit_seconds += s;
	for (i = 0; i < NLAT - 1 && s > lat_bounds[i]; i++)
		;
	M.lat_bucket[i]++;
	for (i = 0; i < NSIZE - 1 && blobs > size_bounds[i]; i++)
		;
	M.size_bucket[i]++;
}

void
metrics_commands(uint32_t n)
{
	time_t now = mono_sec();
	int slot = (int)(now % (RATE_WINDOW + 1));

	M.commands += n;
	if (M.rate_stamp[slot] != now) {
		M.rate_stamp[slot] = now;
		M.rate_sec[slot] = 0;
	}
	M.rate_sec[slot] += n;
}

void
metrics_attach_ok(int how)
{
	if (how >= 0 && how < 3)
		M.attach_ok[how]++;
}

void
metrics_attach_failed(int errcode)
{
	M.attach_failed[errcode > 0 && (size_t)errcode < NREASON ? errcode : 0]++;
}

void
metrics_session_end(uint8_t reason)
{
	M.session_end[reason < NEND ? reason : 0]++;
}

/* ---- rendering -------------------------------------------------------- */

struct mbuf {
	char	*p;
	size_t	 n, cap;
	int	 err;
};

static void mb_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
mb_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = 1;
			return;
		}
		if ((size_t)n < b->cap - b->n) {
			b->n += (size_t)n;
			return;
		}
		{
			/* metrics text holds no secrets: realloc is fine */
			size_t cap = b->cap * 2 + (size_t)n;
			char *q = realloc(b->p, cap);

			if (q == NULL) {
				b->err = 1;
				return;
			}
			b->p = q;
			b->cap = cap;
		}
	}
}

static void
mb_head(struct mbuf *b, const char *name, const char *type, const char *help)
{
	mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct inst_count {
	uint64_t	total, fenced;
};

static int
count_cb(const struct store_instance *r, void *arg)
{
	struct inst_count *c = arg;

	c->total++;
	if (r->flags & STORE_INST_FENCED)
		c->fenced++;
	return 0;
}

char *
metrics_text(void)
{
	struct mbuf b = { NULL, 0, 0, 0 };
	struct inst_count ic = { 0, 0 };
	struct inst *in;
	uint64_t cum, recent = 0;
	time_t now = mono_sec();
	int i, workers = 0, attached = 0, list_rc, span;
	size_t r;

	if ((b.p = malloc(8192)) == NULL)
		return NULL;
	b.cap = 8192;
	b.p[0] = '\0';
	if (M.started == 0)
		M.started = time(NULL);
	TAILQ_FOREACH(in, &V->insts, entry) {
		if (in->state == I_DEAD)
			continue;
		workers++;
		attached += in->state == I_ACTIVE;
	}
	list_rc = store_inst_list(V->store, count_cb, &ic);

	mb_head(&b, "vtpmd_build_info", "gauge", "vtpmd version.");
	mb_printf(&b, "vtpmd_build_info{version=\"%s\"} 1\n", VTPM_VERSION);
	mb_head(&b, "vtpmd_instances_registered", "gauge",
	    "Instances in the store (enrolled), fenced ones included.");
	mb_printf(&b, "vtpmd_instances_registered %llu\n", (unsigned long long)ic.total);
	mb_head(&b, "vtpmd_instances_fenced", "gauge",
	    "Instances fenced after an export (they serve nothing here).");
	mb_printf(&b, "vtpmd_instances_fenced %llu\n", (unsigned long long)ic.fenced);
	mb_head(&b, "vtpmd_store_readable", "gauge",
	    "1 if the last walk of the instance table found every record intact.");
	mb_printf(&b, "vtpmd_store_readable %d\n", list_rc == 0);
	mb_head(&b, "vtpmd_instances_attached", "gauge", "Instances with a live guest session.");
	mb_printf(&b, "vtpmd_instances_attached %d\n", attached);
	mb_head(&b, "vtpmd_workers", "gauge", "Running instance workers (attached or hot).");
	mb_printf(&b, "vtpmd_workers %d\n", workers);
	mb_head(&b, "vtpmd_handshakes_in_progress", "gauge", "Guest connections before attach.");
	mb_printf(&b, "vtpmd_handshakes_in_progress %d\n", V->nhandshakes);
	mb_head(&b, "vtpmd_keys_available", "gauge", "1 once the root key opens the store.");
	mb_printf(&b, "vtpmd_keys_available %d\n", OPS_KEYED());

	mb_head(&b, "vtpmd_tpm_commands_total", "counter",
	    "TPM commands executed (workers report at most once a second and at session end).");
	mb_printf(&b, "vtpmd_tpm_commands_total %llu\n", (unsigned long long)M.commands);
	/* the last RATE_WINDOW whole seconds, the current one excluded */
	for (i = 0; i <= RATE_WINDOW; i++) {
		time_t age = now - M.rate_stamp[i];

		if (M.rate_stamp[i] != 0 && age >= 1 && age <= RATE_WINDOW)
			recent += M.rate_sec[i];
	}
	span = now - M.started < RATE_WINDOW ? (int)(now - M.started) : RATE_WINDOW;
	if (span < 1)
		span = 1;
	mb_head(&b, "vtpmd_tpm_commands_per_second", "gauge",
	    "TPM commands per second over the last 10 seconds.");
	mb_printf(&b, "vtpmd_tpm_commands_per_second %.2f\n", (double)recent / span);

	mb_head(&b, "vtpmd_commit_duration_seconds", "histogram",
	    "Time of one group commit (one durable store transaction for many instances).");
	for (cum = 0, i = 0; i < NLAT; i++) {
		cum += M.lat_bucket[i];
		if (i < NLAT - 1)
			mb_printf(&b, "vtpmd_commit_duration_seconds_bucket{le=\"%g\"} %llu\n",
			    lat_bounds[i], (unsigned long long)cum);
		else
			mb_printf(&b, "vtpmd_commit_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
			    (unsigned long long)cum);
	}
	mb_printf(&b, "vtpmd_commit_duration_seconds_sum %.6f\n", M.commit_seconds);
	mb_printf(&b, "vtpmd_commit_duration_seconds_count %llu\n", (unsigned long long)M.commits);
	mb_head(&b, "vtpmd_commit_batch_size", "histogram",
	    "State blobs (instance writes) per group commit.");
	for (cum = 0, i = 0; i < NSIZE; i++) {
		cum += M.size_bucket[i];
		if (i < NSIZE - 1)
			mb_printf(&b, "vtpmd_commit_batch_size_bucket{le=\"%d\"} %llu\n",
			    size_bounds[i], (unsigned long long)cum);
		else
			mb_printf(&b, "vtpmd_commit_batch_size_bucket{le=\"+Inf\"} %llu\n",
			    (unsigned long long)cum);
	}
	mb_printf(&b, "vtpmd_commit_batch_size_sum %llu\n", (unsigned long long)M.committed_blobs);
	mb_printf(&b, "vtpmd_commit_batch_size_count %llu\n", (unsigned long long)M.commits);
	mb_head(&b, "vtpmd_commit_failures_total", "counter",
	    "Group commits that failed (their writes were refused to the guests).");
	mb_printf(&b, "vtpmd_commit_failures_total %llu\n", (unsigned long long)M.commit_failures);

	mb_head(&b, "vtpmd_attaches_total", "counter", "Successful attaches, by how the TPM started.");
	mb_printf(&b, "vtpmd_attaches_total{how=\"new\"} %llu\n", (unsigned long long)M.attach_ok[0]);
	mb_printf(&b, "vtpmd_attaches_total{how=\"power_on\"} %llu\n",
	    (unsigned long long)M.attach_ok[1]);
	mb_printf(&b, "vtpmd_attaches_total{how=\"resumed\"} %llu\n",
	    (unsigned long long)M.attach_ok[2]);
	mb_head(&b, "vtpmd_attach_failures_total", "counter",
	    "Refused or failed attaches (after the Noise handshake), by reason.");
	for (r = 0; r < NREASON; r++)
		mb_printf(&b, "vtpmd_attach_failures_total{reason=\"%s\"} %llu\n", fail_reason[r],
		    (unsigned long long)M.attach_failed[r]);
	mb_head(&b, "vtpmd_sessions_ended_total", "counter", "Guest sessions ended, by reason.");
	for (r = 0; r < NEND; r++)
		mb_printf(&b, "vtpmd_sessions_ended_total{reason=\"%s\"} %llu\n", end_reason[r],
		    (unsigned long long)M.session_end[r]);
	mb_head(&b, "vtpmd_start_time_seconds", "gauge", "When metrics began (unix seconds).");
	mb_printf(&b, "vtpmd_start_time_seconds %lld\n", (long long)M.started);
	if (b.err) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

json_object *
metrics_admin(void)
{
	json_object *reply = json_object_new_object();
	char *text = metrics_text();

	json_object_object_add(reply, "ok", json_object_new_boolean(text != NULL));
	if (text == NULL)
		json_object_object_add(reply, "error", json_object_new_string("out of memory"));
	else
		json_object_object_add(reply, "text", json_object_new_string(text));
	free(text);
	return reply;
}

/* ---- loopback HTTP ---------------------------------------------------- */

struct http_conn {
	struct ev	 ev;		/* kind EV_METRICS, obj = this */
	char		 req[HTTP_MAX_REQ + 1];
	size_t		 n;
	unsigned long	 seq;
};

static struct ev http_listen_ev = { EV_METRICS, -1, NULL };
static struct http_conn *conns[HTTP_MAX_CONN];
static unsigned long conn_seq;

static void
http_close(struct http_conn *c)
{
	int i;

	for (i = 0; i < HTTP_MAX_CONN; i++)
		if (conns[i] == c)
			conns[i] = NULL;
	ev_del(&c->ev);
	close(c->ev.fd);
	free(c);
}

static void
http_send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	/* the socket is non-blocking: what does not fit now is dropped (small replies) */
	while (n > 0 && (w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT)) > 0) {
		p += w;
		n -= (size_t)w;
	}
}

static void
http_answer(struct http_conn *c)
{
	char hdr[256], *body = NULL;
	const char *status = "404 Not Found", *text = "not found; try /metrics\n";
	int n;

	if (strncmp(c->req, "GET /metrics ", 13) == 0 || strncmp(c->req, "GET /metrics\r", 13) == 0) {
		if ((body = metrics_text()) != NULL) {
			status = "200 OK";
			text = body;
		} else {
			status = "500 Internal Server Error";
			text = "out of memory\n";
		}
	} else if (strncmp(c->req, "GET ", 4) != 0) {
		status = "405 Method Not Allowed";
		text = "only GET\n";
	}
	n = snprintf(hdr, sizeof(hdr), "HTTP/1.0 %s\r\nContent-Type: text/plain; "
	    "version=0.0.4; charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
	    status, strlen(text));
	if (n > 0 && (size_t)n < sizeof(hdr)) {
		http_send_all(c->ev.fd, hdr, (size_t)n);
		http_send_all(c->ev.fd, text, strlen(text));
	}
	free(body);
	shutdown(c->ev.fd, SHUT_WR);
	http_close(c);
}

static void
http_readable(struct http_conn *c)
{
	ssize_t r;

	for (;;) {
		r = recv(c->ev.fd, c->req + c->n, HTTP_MAX_REQ - c->n, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			http_close(c);
			return;
		}
		c->n += (size_t)r;
		c->req[c->n] = '\0';
		if (strstr(c->req, "\r\n\r\n") != NULL || strstr(c->req, "\n\n") != NULL) {
			http_answer(c);
			return;
		}
		if (c->n == HTTP_MAX_REQ) {
			http_close(c);
			return;
		}
	}
}

static void
metrics_http_accept(int lfd)
{
	struct http_conn *c;
	int fd, i, slot, oldest;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		slot = -1;
		oldest = 0;
		for (i = 0; i < HTTP_MAX_CONN; i++) {
			if (conns[i] == NULL) {
				slot = i;
				break;
			}
			if (conns[i]->seq < conns[oldest]->seq)
				oldest = i;
		}
		if (slot < 0) {		/* full: the slowest client goes */
			http_close(conns[oldest]);
			slot = oldest;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		c->ev.kind = EV_METRICS;
		c->ev.fd = fd;
		c->ev.obj = c;
		c->seq = ++conn_seq;
		if (ev_add(&c->ev, EPOLLIN) != 0) {
			close(fd);
			free(c);
			continue;
		}
		conns[slot] = c;
	}
}

void
metrics_http_event(struct ev *ev)
{
	if (ev->obj == NULL)
		metrics_http_accept(ev->fd);
	else
		http_readable(ev->obj);
}

void
metrics_listen_init(void)
{
	struct endpoint ep;
	uint32_t port;
	int fd, rc;

	M.started = time(NULL);
	if (V->cfg.metrics_listen == NULL)
		return;
	if (endpoint_parse(V->cfg.metrics_listen, 0, &ep) != 0 || ep.kind != EP_TCP)
		fatalx("--metrics-listen %s: want tcp:127.0.0.1:PORT", V->cfg.metrics_listen);
	if ((rc = endpoint_listen(&ep, 0600, &fd)) != 0)
		fatalx("cannot listen on --metrics-listen %s: %s", V->cfg.metrics_listen,
		    vtpm_strerror(rc));
	http_listen_ev.fd = fd;
	if (ev_add(&http_listen_ev, EPOLLIN) != 0)
		fatalx("epoll");
	if (endpoint_local_port(fd, &port) != 0)
		port = 0;
	log_info("metrics on http://%s:%u/metrics (loopback only)", ep.host, (unsigned)port);
}
