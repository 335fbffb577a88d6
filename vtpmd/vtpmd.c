/*
 * vtpmd.c: the vtpmd program: configuration, start-up checks, the parent's
 * event loop and clean shutdown. `vtpmd --worker` runs the worker role
 * instead (worker.c). Trusts its command line (the operator); everything
 * arriving on sockets is handled by session.c, instance.c and admin.c.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "keyprov.h"
#include "log.h"
#include "fleet.h"
#include "ops.h"
#include "parent.h"
#include "sandbox.h"
#include "worker.h"
#include "zygote.h"

struct vtpmd *V;

static void
usage(FILE *f)
{
	fprintf(f,
"usage: vtpmd [--config FILE] [--dev] --state-dir DIR --listen ENDPOINT [--listen ...] --admin unix:PATH\n"
"             [--attestation auto|snp|tdx|sim] [--allow-sim-attestation]\n"
"             [--policy FILE] [--attestation-trust-test-ark] [--attestation-cache-dir DIR]\n"
"             [--key-provider file:PATH] [--allow-key-file]\n"
"             [--key-provider kbs:https://HOST:PORT --key-resource REPO/TYPE/TAG\n"
"              [--kbs-ca-file PEM] [--kbs-allow-http] [--kbs-tee-key ec|rsa]\n"
"              [--kbs-tee auto|snp|tdx|sample] [--migration-key-resource REPO/TYPE/TAG]]\n"
"             [--sim-measurement HEX48] [--sim-host-data HEX32] [--sim-launch-id HEX32]\n"
"             [--auto-enrol] [--pcr-banks LIST] [--idle-timeout SEC]\n"
"             [--max-handshakes N] [--store-map-size MIB] [--worker-user USER] [--worker-spawn zygote|exec]\n"
"             [--worker-spares N] [-n] [-v]\n"
"             [--migration-key-provider file:PATH] [--metrics-listen tcp:127.0.0.1:PORT]\n"
"             [--audit-retention DAYS] [--audit-max-records N]\n"
"             [--store lmdb|etcd:URL[,URL...] [--etcd-cacert PEM] [--etcd-cert PEM --etcd-key PEM]\n"
"              [--etcd-allow-http] [--etcd-node NAME] [--etcd-lease-ttl SEC] [--etcd-timeout-ms MS]\n"
"              [--etcd-max-txn-ops N]]\n"
"Endpoints: unix:PATH, vsock:PORT, tcp:127.0.0.1:PORT.\n"
"--dev: development mode. Simulated attestation, a local key file in the state\n"
"directory, auto-enrolment. NOT FOR PRODUCTION. See vtpmd(8).\n");
}

int
ev_add(struct ev *ev, uint32_t events)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	if (epoll_ctl(V->epfd, EPOLL_CTL_ADD, ev->fd, &e) != 0) {
		log_warn("epoll_ctl add");
		return VTPM_E_IO;
	}
	return 0;
}

void
ev_del(struct ev *ev)
{
	if (ev->fd >= 0 && epoll_ctl(V->epfd, EPOLL_CTL_DEL, ev->fd, NULL) != 0 &&
	    errno != ENOENT && errno != EBADF)
		log_warn("epoll_ctl del");
}

static int
parse_banks(const char *s, uint32_t *out)
{
	char buf[128], *tok, *save = NULL;
	uint32_t banks = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "sha1") == 0)
			banks |= 1;
		else if (strcmp(tok, "sha256") == 0)
			banks |= 2;
		else if (strcmp(tok, "sha384") == 0)
			banks |= 4;
		else if (strcmp(tok, "sha512") == 0)
			banks |= 8;
		else
			return -1;
	}
	if (banks == 0)
		return -1;
	*out = banks;
	return 0;
}

enum {
	OPT_DEV = 256, OPT_STATE_DIR, OPT_LISTEN, OPT_ADMIN, OPT_ATTESTATION,
	OPT_POLICY, OPT_TRUST_TEST_ARK, OPT_ATTEST_CACHE,
	OPT_ALLOW_SIM, OPT_KEY_PROVIDER, OPT_ALLOW_KEY_FILE, OPT_SIM_MEAS,
	OPT_SIM_HOST, OPT_SIM_LAUNCH, OPT_AUTO_ENROL, OPT_PCR_BANKS, OPT_IDLE,
	OPT_MAX_HS, OPT_MAP_SIZE, OPT_NOSYNC, OPT_WORKER, OPT_WORKER_USER, OPT_CONFIG, OPT_WORKER_SPAWN,
	OPT_WORKER_SPARES,
	OPT_KEY_RESOURCE, OPT_KBS_CA_FILE, OPT_KBS_ALLOW_HTTP, OPT_KBS_TEE_KEY,
	OPT_MIGRATION_KP, OPT_METRICS_LISTEN,
	OPT_KBS_TEE, OPT_MIGRATION_RES, OPT_AUDIT_RETENTION, OPT_AUDIT_MAX,
};

static const struct option longopts[] = {
	{ "dev", no_argument, NULL, OPT_DEV },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "admin", required_argument, NULL, OPT_ADMIN },
	{ "attestation", required_argument, NULL, OPT_ATTESTATION },
	{ "allow-sim-attestation", no_argument, NULL, OPT_ALLOW_SIM },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "attestation-trust-test-ark", no_argument, NULL, OPT_TRUST_TEST_ARK },
	{ "attestation-cache-dir", required_argument, NULL, OPT_ATTEST_CACHE },
	{ "key-provider", required_argument, NULL, OPT_KEY_PROVIDER },
	{ "allow-key-file", no_argument, NULL, OPT_ALLOW_KEY_FILE },
	{ "key-resource", required_argument, NULL, OPT_KEY_RESOURCE },
	{ "kbs-ca-file", required_argument, NULL, OPT_KBS_CA_FILE },
	{ "kbs-allow-http", no_argument, NULL, OPT_KBS_ALLOW_HTTP },
	{ "kbs-tee-key", required_argument, NULL, OPT_KBS_TEE_KEY },
	{ "sim-measurement", required_argument, NULL, OPT_SIM_MEAS },
	{ "sim-host-data", required_argument, NULL, OPT_SIM_HOST },
	{ "sim-launch-id", required_argument, NULL, OPT_SIM_LAUNCH },
	{ "auto-enrol", no_argument, NULL, OPT_AUTO_ENROL },
	{ "auto-enroll", no_argument, NULL, OPT_AUTO_ENROL },
	{ "pcr-banks", required_argument, NULL, OPT_PCR_BANKS },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "max-handshakes", required_argument, NULL, OPT_MAX_HS },
	{ "store-map-size", required_argument, NULL, OPT_MAP_SIZE },
	{ "unsafe-nosync", no_argument, NULL, OPT_NOSYNC },
	{ "worker-user", required_argument, NULL, OPT_WORKER_USER },
	{ "worker-spawn", required_argument, NULL, OPT_WORKER_SPAWN },
	{ "worker-spares", required_argument, NULL, OPT_WORKER_SPARES },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "migration-key-provider", required_argument, NULL, OPT_MIGRATION_KP },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "kbs-tee", required_argument, NULL, OPT_KBS_TEE },
	{ "migration-key-resource", required_argument, NULL, OPT_MIGRATION_RES },
	{ "audit-retention", required_argument, NULL, OPT_AUDIT_RETENTION },
	{ "audit-max-records", required_argument, NULL, OPT_AUDIT_MAX },
	FLEET_LONGOPTS,
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static long
parse_num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < lo || v > hi)
		fatalx("%s: %s is not a number in %ld..%ld", what, s, lo, hi);
	return v;
}

static void
parse_hex_opt(const char *s, uint8_t *out, size_t len, const char *what)
{
	if (attest_hex_decode(s, out, len) != 0)
		fatalx("%s: want %zu hex digits", what, 2 * len);
}

/* Loads --policy (so that -n checks it too); a bad policy is fatal. */
static void
policy_load(const struct config *c)
{
	char why[ATTEST_WHY_LEN];

	if (c->policy_file == NULL)
		return;
	if (attest_policy_load(c->policy_file, &V->policy, why, sizeof(why)) != 0)
		fatalx("--policy: %s", why);
	log_info("policy %s: %zu rules; instances come from the policy",
	    c->policy_file, attest_policy_nrules(V->policy));
}

/* The attestation provider and what vtpmd accepts from guests. */
static void
attest_setup(void)
{
	struct attest_provider_opts o;
	char why[ATTEST_WHY_LEN];

	memset(&o, 0, sizeof(o));
	o.ap_kind = V->cfg.attestation;
	memcpy(o.ap_sim_measurement, V->cfg.sim_measurement, sizeof(o.ap_sim_measurement));
	memcpy(o.ap_sim_host_data, V->cfg.sim_host_data, sizeof(o.ap_sim_host_data));
	memcpy(o.ap_sim_launch_id, V->cfg.sim_launch_id, sizeof(o.ap_sim_launch_id));
	if (attest_provider_open(&o, &V->attester, why, sizeof(why)) != 0)
		fatalx("attestation provider: %s", why);
	log_info("attestation: %s", attest_provider_name(V->attester));
	/* --dev and --allow-sim-attestation imply trusting the TEST ARK, as before. */
	V->verify.av_allow_sim = V->cfg.allow_sim || V->cfg.trust_test_ark;
	V->verify.av_cache_dir = V->cfg.attest_cache_dir;
	if (V->policy != NULL) {
		/* The policy decides DEBUG and VMPL (its defaults: forbid, VMPL 0). */
		V->verify.av_allow_debug = 1;
		V->verify.av_vmpl_mask = 0xF;
	}
}

/* Refuses anything insecure unless explicitly allowed; says loudly what --dev does. */
static void
check_security(struct config *c)
{
	if (c->dev) {
		log_warnx("*** DEVELOPMENT MODE (--dev): simulated attestation is trusted, "
		    "%s, unknown guests are enrolled automatically. Do not use in "
		    "production. ***", strncmp(c->key_provider, "file:", 5) == 0 ?
		    "the root key is a local file" : "the key broker sees simulated evidence");
	}
	if (strcmp(c->attestation, "sim") == 0) {
		if (!c->allow_sim)
			fatalx("--attestation sim is refused without --dev or "
			    "--allow-sim-attestation: simulated evidence proves nothing");
		if (!c->dev)
			log_warnx("simulated attestation is trusted (--allow-sim-attestation): "
			    "any peer can forge evidence");
	} else if (strcmp(c->attestation, "auto") != 0 && strcmp(c->attestation, "snp") != 0 &&
	    strcmp(c->attestation, "tdx") != 0) {
		fatalx("--attestation %s: want auto, snp, tdx or sim", c->attestation);
	}
	if (c->trust_test_ark && !c->dev)
		log_warnx("the vtpmd TEST ARK is trusted (--attestation-trust-test-ark): "
		    "guests' sim evidence is accepted, and anyone can forge it");
	policy_load(c);
	if (strncmp(c->key_provider, "file:", 5) == 0) {
		if (!c->allow_key_file)
			fatalx("--key-provider file: is refused without --dev or "
			    "--allow-key-file: a local key file is not released by attestation");
		if (!c->dev)
			log_warnx("root key from a local file (--allow-key-file): "
			    "the state is only as safe as that file");
	} else if (strncmp(c->key_provider, "kbs:", 4) == 0) {
		if (c->key_resource == NULL)
			fatalx("--key-provider kbs: needs --key-resource REPO/TYPE/TAG");
		if (strncmp(c->key_provider + 4, "http://", 7) == 0 && !c->kbs_allow_http)
			fatalx("--key-provider %s: plain http is refused without "
			    "--kbs-allow-http (the broker would not be authenticated)",
			    c->key_provider);
		if (c->kbs_tee != NULL && strcmp(c->kbs_tee, "sample") == 0 &&
		    strcmp(c->attestation, "sim") != 0 && !c->dev)
			fatalx("--kbs-tee sample with --attestation %s: unsigned evidence is "
			    "for development only (add --dev)", c->attestation);
		if (c->migration_key_resource != NULL) {
			if (!keyprov_resource_ok(c->migration_key_resource))
				fatalx("--migration-key-resource %s: want REPO/TYPE/TAG",
				    c->migration_key_resource);
			if (c->migration_key_provider != NULL)
				fatalx("--migration-key-resource and --migration-key-provider "
				    "exclude each other");
		}
	}
	if (strncmp(c->key_provider, "kbs:", 4) != 0 && (c->key_resource != NULL ||
	    c->kbs_ca_file != NULL || c->kbs_allow_http))
		fatalx("--key-resource, --kbs-ca-file and --kbs-allow-http need "
		    "--key-provider kbs:URL");
	if (strncmp(c->key_provider, "kbs:", 4) != 0 && (c->kbs_tee != NULL ||
	    c->migration_key_resource != NULL))
		fatalx("--kbs-tee and --migration-key-resource need --key-provider kbs:URL");
}

static void
parse_args(int argc, char **argv, struct config *c, int *check_only)
{
	static char keypath[PATH_MAX], sockpath[PATH_MAX];
	const char *listen_specs[MAX_LISTEN];
	int ch, i, nl = 0;
	const char *admin = NULL;

	memset(c, 0, sizeof(*c));
	c->attestation = NULL;
	c->key_provider = NULL;
	c->pcr_banks = 2;	/* sha256 */
	c->idle_timeout = 300;
	c->worker_spares = 2;
	c->handshake_timeout_ms = 10000;
	c->max_handshakes = 256;
	c->map_size = 1024UL << 20;
	/* Simulated vtpmd claims default to a recognisable test measurement. */
	crypto_generichash(c->sim_measurement, sizeof(c->sim_measurement),
	    (const uint8_t *)"vtpmd-sim-measurement", 21, NULL, 0);
	while ((ch = getopt_long(argc, argv, "nvh", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_DEV:		c->dev = 1; break;
		case OPT_STATE_DIR:	c->state_dir = optarg; break;
		case OPT_LISTEN:
			if (nl == MAX_LISTEN)
				fatalx("at most %d --listen", MAX_LISTEN);
			listen_specs[nl++] = optarg;
			break;
		case OPT_ADMIN:		admin = optarg; break;
		case OPT_ATTESTATION:	c->attestation = optarg; break;
		case OPT_ALLOW_SIM:	c->allow_sim = 1; break;
		case OPT_POLICY:	c->policy_file = optarg; break;
		case OPT_TRUST_TEST_ARK: c->trust_test_ark = 1; break;
		case OPT_ATTEST_CACHE:	c->attest_cache_dir = optarg; break;
		case OPT_KEY_PROVIDER:	c->key_provider = optarg; break;
		case OPT_ALLOW_KEY_FILE: c->allow_key_file = 1; break;
		case OPT_KEY_RESOURCE:	c->key_resource = optarg; break;
		case OPT_KBS_CA_FILE:	c->kbs_ca_file = optarg; break;
		case OPT_KBS_ALLOW_HTTP: c->kbs_allow_http = 1; break;
		case OPT_KBS_TEE_KEY:
			if (strcmp(optarg, "ec") == 0)
				c->kbs_tee_key = KEYPROV_TEE_KEY_EC;
			else if (strcmp(optarg, "rsa") == 0)
				c->kbs_tee_key = KEYPROV_TEE_KEY_RSA;
			else
				fatalx("--kbs-tee-key: want ec or rsa");
			break;
		case OPT_SIM_MEAS:	parse_hex_opt(optarg, c->sim_measurement, 48, "--sim-measurement"); break;
		case OPT_SIM_HOST:	parse_hex_opt(optarg, c->sim_host_data, 32, "--sim-host-data"); break;
		case OPT_SIM_LAUNCH:	parse_hex_opt(optarg, c->sim_launch_id, 32, "--sim-launch-id"); break;
		case OPT_AUTO_ENROL:	c->auto_enrol = 1; break;
		case OPT_PCR_BANKS:
			if (parse_banks(optarg, &c->pcr_banks) != 0)
				fatalx("--pcr-banks: want a list of sha1,sha256,sha384,sha512");
			break;
		case OPT_IDLE:		c->idle_timeout = (int)parse_num(optarg, 0, 86400 * 365, "--idle-timeout"); break;
		case OPT_MAX_HS:	c->max_handshakes = (int)parse_num(optarg, 1, 100000, "--max-handshakes"); break;
		case OPT_MAP_SIZE:	c->map_size = (size_t)parse_num(optarg, 1, 1L << 22, "--store-map-size") << 20; break;
		case OPT_NOSYNC:	c->nosync = 1; break;
		case OPT_WORKER_USER:	c->worker_user = optarg; break;
		case OPT_WORKER_SPAWN:
			if (strcmp(optarg, "exec") == 0)
				c->worker_exec = 1;
			else if (strcmp(optarg, "zygote") == 0)
				c->worker_exec = 0;
			else
				fatalx("--worker-spawn: want zygote or exec");
			break;
		case OPT_WORKER_SPARES:
			c->worker_spares = (int)parse_num(optarg, 0, ZYGOTE_SPARES_MAX, "--worker-spares");
			break;
		case OPT_CONFIG:	break;	/* consumed by config_expand_args() */
		case OPT_MIGRATION_KP:	c->migration_key_provider = optarg; break;
		case OPT_METRICS_LISTEN: c->metrics_listen = optarg; break;
		case OPT_KBS_TEE:
			if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "snp") != 0 &&
			    strcmp(optarg, "tdx") != 0 && strcmp(optarg, "sample") != 0)
				fatalx("--kbs-tee: want auto, snp, tdx or sample");
			c->kbs_tee = optarg;
			break;
		case OPT_MIGRATION_RES:	c->migration_key_resource = optarg; break;
		case OPT_AUDIT_RETENTION:
			c->audit_retention_days = (int)parse_num(optarg, 0, 36500, "--audit-retention");
			break;
		case OPT_AUDIT_MAX:
			c->audit_max_records = parse_num(optarg, 0, 1000000000L, "--audit-max-records");
			break;
		case 'n':		*check_only = 1; break;
		case 'v':		c->verbose = 1; log_init("vtpmd", LOG_LVL_DEBUG); break;
		case 'h':		usage(stdout); exit(0);
		default:
			if (fleet_option(ch, optarg) == 0)	/* --store, --etcd-* */
				break;
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
	if (c->state_dir == NULL)
		c->state_dir = "/var/lib/vtpmd";
	if (c->worker_user == NULL)
		c->worker_user = "nobody";
	{
		struct passwd *pw = getpwnam(c->worker_user);

		if (pw == NULL)
			fatalx("--worker-user %s: no such user", c->worker_user);
		if (pw->pw_uid == 0)
			fatalx("--worker-user %s: workers must not run as root", c->worker_user);
		c->worker_uid = pw->pw_uid;
		c->worker_gid = pw->pw_gid;
	}
	if (c->dev) {
		c->allow_sim = 1;
		c->allow_key_file = 1;
		c->auto_enrol = 1;
		if (c->attestation == NULL)
			c->attestation = "sim";
		if (c->key_provider == NULL) {
			snprintf(keypath, sizeof(keypath), "file:%s/dev-root.key", c->state_dir);
			c->key_provider = keypath;
		}
		if (nl == 0) {
			snprintf(sockpath, sizeof(sockpath), "unix:%s/vtpmd.sock", c->state_dir);
			listen_specs[nl++] = sockpath;
		}
	}
	if (c->attestation == NULL)
		c->attestation = "auto";
	if (c->key_provider == NULL)
		fatalx("no --key-provider given (and not in --dev mode)");
	if (nl == 0)
		fatalx("no --listen endpoint given");
	for (i = 0; i < nl; i++)
		if (endpoint_parse(listen_specs[i], 0, &c->listen[i]) != 0)
			fatalx("--listen %s: not a valid endpoint", listen_specs[i]);
	c->nlisten = nl;
	if (admin != NULL) {
		if (endpoint_parse(admin, 0, &c->admin) != 0 || c->admin.kind != EP_UNIX)
			fatalx("--admin %s: want unix:PATH", admin);
		c->have_admin = 1;
	}
	check_security(c);
}

static void
open_store_and_key(void)
{
	fleet_check_config();
	fleet_open_store();	/* LMDB in the state directory, or etcd */
	if (V->cfg.nosync)
		log_warnx("--unsafe-nosync: state is NOT durable (tests and benchmarks only)");
}

static struct ev listen_ev[MAX_LISTEN], admin_ev, signal_ev;

static void
open_listeners(void)
{
	char name[160];
	int i, fd, rc;

	for (i = 0; i < V->cfg.nlisten; i++) {
		rc = endpoint_listen(&V->cfg.listen[i], 0666, &fd);
		if (endpoint_format(&V->cfg.listen[i], name, sizeof(name)) != 0)
			snprintf(name, sizeof(name), "?");
		if (rc != 0)
			fatalx("cannot listen on %s: %s", name, vtpm_strerror(rc));
		listen_ev[i].kind = EV_LISTEN;
		listen_ev[i].fd = fd;
		if (ev_add(&listen_ev[i], EPOLLIN) != 0)
			fatalx("epoll");
		log_info("listening for guests on %s", name);
	}
	if (V->cfg.have_admin) {
		if ((rc = endpoint_listen(&V->cfg.admin, 0600, &fd)) != 0)
			fatalx("cannot listen on admin socket %s: %s", V->cfg.admin.path,
			    vtpm_strerror(rc));
		admin_ev.kind = EV_ADMIN;
		admin_ev.fd = fd;
		if (ev_add(&admin_ev, EPOLLIN) != 0)
			fatalx("epoll");
		log_info("admin socket on %s (mode 0600)", V->cfg.admin.path);
	}
}

static void
close_listeners(void)
{
	int i;

	for (i = 0; i < V->cfg.nlisten; i++) {
		if (listen_ev[i].fd < 0)
			continue;
		ev_del(&listen_ev[i]);
		close(listen_ev[i].fd);
		listen_ev[i].fd = -1;
		if (V->cfg.listen[i].kind == EP_UNIX)
			unlink(V->cfg.listen[i].path);
	}
}

static void
handle_signals(void)
{
	struct signalfd_siginfo si;
	pid_t pid;
	int status;

	while (read(signal_ev.fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (!V->shutting_down) {
				log_info("signal %d: shutting down (saving every instance)",
				    (int)si.ssi_signo);
				V->shutting_down = 1;
				close_listeners();
				sessions_close_all();
				ops_shutdown();
				insts_stop_all();
			}
			break;
		case SIGCHLD:
			break;
		}
	}
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (!zygote_reaped(pid))
			inst_reaped(pid, status);
}

/*
 * Tells systemd (Type=notify) that vtpmd is ready: listeners are open and
 * the store is keyed. A datagram "READY=1" to $NOTIFY_SOCKET; no libsystemd.
 */
static void
notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	if (sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&sun, len) != 7)
		log_warn("sd_notify");
	close(fd);
}

static int
event_loop(void)
{
	struct epoll_event evs[64];
	struct timespec now, last = { 0, 0 }, shutdown_start = { 0, 0 };
	int zyg_pending, sig_pending;
	int i, n, notified = 0;

	for (;;) {
		/* a long operator operation (ops.h) runs in slices: no sleeping meanwhile */
		n = epoll_wait(V->epfd, evs, 64, ops_busy() ? 0 : 250);
		if (n < 0 && errno != EINTR)
			fatal("epoll_wait");
		zyg_pending = sig_pending = 0;
		for (i = 0; i < n; i++) {
			struct ev *ev = evs[i].data.ptr;

			switch (ev->kind) {
			case EV_LISTEN:
				session_accept(ev->fd);
				break;
			case EV_ADMIN:
				batch_commit();
				admin_accept(ev->fd);
				break;
			case EV_SESSION:
				session_event(ev->obj, evs[i].events);
				break;
			case EV_WORKER:
				inst_event(ev->obj, evs[i].events);
				break;
			/*
			 * Handled after the batch: they may free instances and
			 * sessions whose events are still later in evs[].
			 */
			case EV_ZYGOTE:
				zyg_pending = 1;
				break;
			case EV_SIGNAL:
				sig_pending = 1;
				break;
			case EV_KEYS:
				keys_event();
				break;
			case EV_METRICS:
				metrics_http_event(ev);
				break;
			}
		}
		if (!notified && keys_available()) {
			notify_ready();		/* keyed: guests are served from now on */
			notified = 1;
		}
		if (zyg_pending)
			zygote_event();
		if (sig_pending)
			handle_signals();
		/* Group commit: every store received in this round, one transaction. */
		batch_commit();
		fleet_tick();		/* etcd: end instances whose ownership lapses */
		insts_bury();
		ops_run();
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec != last.tv_sec) {
			last = now;
			sessions_expire(&now);
			insts_tick(time(NULL));
			keys_tick(time(NULL));
		}
		if (V->shutting_down) {
			if (shutdown_start.tv_sec == 0)
				shutdown_start = now;
			if (insts_all_gone()) {
				zygote_stop();
				return 0;
			}
			if (now.tv_sec - shutdown_start.tv_sec > 15) {
				log_warnx("workers did not stop in time; killing them");
				return 1;
			}
		}
	}
}

int
main(int argc, char **argv)
{
	static struct vtpmd state;
	sigset_t mask;
	ssize_t n;
	int i, check_only = 0, rc;

	log_init("vtpmd", LOG_LVL_INFO);
	/* Worker roles: vtpmd --worker|--worker-zygote UID:GID [-v], started by the parent only. */
	if (argc >= 3 && (strcmp(argv[1], "--worker") == 0 ||
	    strcmp(argv[1], "--worker-zygote") == 0)) {
		unsigned long u, g;
		char *end;

		u = strtoul(argv[2], &end, 10);
		if (*end != ':')
			fatalx("--worker wants UID:GID");
		g = strtoul(end + 1, &end, 10);
		if (*end != '\0')
			fatalx("--worker wants UID:GID");
		if (argc > 3 && strcmp(argv[3], "-v") == 0)
			log_init("vtpmd-worker", LOG_LVL_DEBUG);
		if (strcmp(argv[1], "--worker-zygote") == 0)
			return zygote_main((uid_t)u, (gid_t)g);
		return worker_main((uid_t)u, (gid_t)g);
	}
	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	V = &state;
	TAILQ_INIT(&V->insts);
	for (i = 0; i < MAX_LISTEN; i++)
		listen_ev[i].fd = -1;
	{
		char why[8400];
		int nargc;
		char **nargv;

		if (config_expand_args(argc, argv, longopts, &nargc, &nargv, why, sizeof(why)) != 0)
			fatalx("configuration: %s", why);
		parse_args(nargc, nargv, &V->cfg, &check_only);
	}
	if (check_only) {
		fleet_check_config();	/* --store and --etcd-* fit together */
		if (keys_check_config() != 0)
			fatalx("key provider %s: configuration not usable", V->cfg.key_provider);
		printf("configuration OK\n");
		return 0;
	}
	sandbox_parent_enter();
	{
		/* One IPC socket per worker: allow as many as the hard limit. */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if ((n = readlink("/proc/self/exe", V->self_exe, sizeof(V->self_exe) - 1)) <= 0)
		fatal("readlink /proc/self/exe");
	V->self_exe[n] = '\0';
	if ((V->batch = store_batch_new()) == NULL ||
	    (V->sync_batch = store_batch_new()) == NULL)
		fatalx("out of memory");
	open_store_and_key();
	attest_setup();
	if ((V->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		fatal("epoll_create1");
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
		fatal("sigprocmask");
	signal(SIGPIPE, SIG_IGN);
	if ((signal_ev.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		fatal("signalfd");
	signal_ev.kind = EV_SIGNAL;
	if (ev_add(&signal_ev, EPOLLIN) != 0)
		fatalx("epoll");
	/*
	 * After the signal mask (a key-fetch thread inherits it) and epoll:
	 * file: keyed now (or fatal); kbs: keyed later, off the event loop.
	 */
	keys_init();
	ops_init();		/* migration key provider, metrics endpoint */
	if (!V->cfg.worker_exec && zygote_start() != 0)
		fatalx("cannot start the worker zygote");
	open_listeners();
	log_info("vtpmd %s ready (store: %s, %s)", VTPM_VERSION, V->cfg.state_dir,
	    store_backend_name(V->store));
	rc = event_loop();
	batch_commit();
	keys_shutdown();
	if (V->cfg.have_admin)
		unlink(V->cfg.admin.path);
	store_close(V->store);
	seal_kek_free(V->kek);
	log_info("stopped");
	return rc;
}
