/*
 * vtpmctl.c: the operator's tool. Sends one JSON request over vtpmd's admin
 * socket and prints the answer as a table or, with --json, as JSON.
 * Trusts the daemon's answer only as far as json-c parses it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

int vtpmctl_verify_evidence(int argc, char **argv);	/* vtpmctl_verify.c */
/* vtpmctl_ops.c: backup, verify, restore, export, import, audit, metrics */
int ctl_ops_is_cmd(const char *cmd);
int ctl_ops_main(const char *admin, int json, int argc, char **argv);
void ctl_ops_usage(FILE *f);

#define DEFAULT_ADMIN	"/run/vtpmd/admin.sock"

static void
usage(FILE *f)
{
	fprintf(f,
"usage: vtpmctl [--admin PATH] [--json] COMMAND [ARGS]\n"
"commands:\n"
"  list                         instances and their state (on etcd: owner, lease)\n"
"  release NAME                 save NAME's state, stop its worker and give up\n"
"                               ownership (etcd: another vtpmd may serve it)\n"
"  show NAME                    one instance (with its EK public keys and certificate\n"
"                               fingerprints: docs/ENDORSEMENT.md)\n"
"  delete NAME                  destroy an instance (crypto-shred its data key)\n"
"  enroll NAME --measurement HEX --host-data HEX\n"
"  status                       daemon status (\"keys\": available, waiting or refused)\n"
"  rotate-key                   fetch the key broker's current root key and rewrap\n"
"                               every instance's data key with it (one transaction)\n"
"  ca show                      the vtpmd EK CA certificate (PEM)\n"
"  ca evidence                  vtpmd's evidence binding the CA key (base64 envelope;\n"
"                               --json adds report_data and the certificate)\n"
"  verify-evidence ...          offline: SNP report, TDX quote or vtpmd envelope, with\n"
"                               --report-data HEX or --ek EKPUB (vtpmctl verify-evidence -h)\n");
	ctl_ops_usage(f);
}

static json_object *
request(const char *path, json_object *req)
{
	struct sockaddr_un sun;
	const char *out = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	char *buf = NULL, *nb;
	size_t have = 0, cap = 0;
	ssize_t n;
	int fd;
	json_object *rep;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "vtpmctl: admin socket path too long\n");
		exit(2);
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "vtpmctl: cannot reach vtpmd at %s: %s\n", path, strerror(errno));
		exit(2);
	}
	if (write(fd, out, strlen(out)) != (ssize_t)strlen(out) || write(fd, "\n", 1) != 1) {
		fprintf(stderr, "vtpmctl: write: %s\n", strerror(errno));
		exit(2);
	}
	for (;;) {
		if (cap - have < 65536) {
			if (cap > (1u << 30) || (nb = realloc(buf, cap + (1 << 20))) == NULL) {
				fprintf(stderr, "vtpmctl: answer too large\n");
				exit(2);
			}
			buf = nb;
			cap += 1 << 20;
		}
		if ((n = read(fd, buf + have, cap - have - 1)) <= 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	if (buf == NULL)
		return NULL;
	buf[have] = '\0';
	rep = json_tokener_parse(buf);
	free(buf);
	return rep;
}

static void
print_instance_line(json_object *o)
{
	json_object *v;
	const char *name = "", *state = "", *uuid = "";
	int64_t gen = 0;

	if (json_object_object_get_ex(o, "name", &v))
		name = json_object_get_string(v);
	if (json_object_object_get_ex(o, "state", &v))
		state = json_object_get_string(v);
	if (json_object_object_get_ex(o, "uuid", &v))
		uuid = json_object_get_string(v);
	if (json_object_object_get_ex(o, "generation", &v))
		gen = json_object_get_int64(v);
	printf("%-24s %-10s %10lld  %s", name, state, (long long)gen, uuid);
	/* on etcd (docs/FLEET.md): which vtpmd owns it, under which lease */
	if (json_object_object_get_ex(o, "owner", &v))
		printf("  %s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "lease", &v))
		printf(" lease %s", json_object_get_string(v));
	printf("\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "admin", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "measurement", required_argument, NULL, 'm' },
		{ "host-data", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *admin = DEFAULT_ADMIN, *cmd, *meas = NULL, *host = NULL;
	json_object *req, *rep, *v;
	int ch, json = 0, ok;
	size_t i;

	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':	admin = optarg; break;
		case 'j':	json = 1; break;
		case 'm':	meas = optarg; break;
		case 'd':	host = optarg; break;
		case 'h':	usage(stdout); return 0;
		default:	usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (strcmp(cmd, "verify-evidence") == 0)	/* offline: no admin socket */
		return vtpmctl_verify_evidence(argc - optind + 1, argv + optind - 1);
	if (ctl_ops_is_cmd(cmd))	/* its own options and arguments */
		return ctl_ops_main(admin, json, argc - optind + 1, argv + optind - 1);
	/*
	 * Options may also follow the command and its arguments: parse the
	 * rest again in glibc's permuting mode (optind = 0 reinitialises it;
	 * the first pass stopped at the command with "+").
	 */
	argv[optind - 1] = argv[0];
	argc -= optind - 1;
	argv += optind - 1;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':	admin = optarg; break;
		case 'j':	json = 1; break;
		case 'm':	meas = optarg; break;
		case 'd':	host = optarg; break;
		default:	usage(stderr); return 2;
		}
	}
	if (strcmp(cmd, "ca") == 0) {
		/* vtpmctl ca show | ca evidence */
		if (optind >= argc || (strcmp(argv[optind], "show") != 0 &&
		    strcmp(argv[optind], "evidence") != 0)) {
			fprintf(stderr, "vtpmctl: ca needs show or evidence\n");
			return 2;
		}
		cmd = strcmp(argv[optind++], "show") == 0 ? "ca-show" : "ca-evidence";
	}
	req = json_object_new_object();
	json_object_object_add(req, "op", json_object_new_string(cmd));
	if (strcmp(cmd, "show") == 0 || strcmp(cmd, "delete") == 0 || strcmp(cmd, "enroll") == 0 ||
	    strcmp(cmd, "release") == 0) {
		if (optind >= argc) {
			fprintf(stderr, "vtpmctl: %s needs NAME\n", cmd);
			return 2;
		}
		json_object_object_add(req, "name", json_object_new_string(argv[optind++]));
	}
	if (strcmp(cmd, "enroll") == 0) {
		if (meas == NULL || host == NULL) {
			fprintf(stderr, "vtpmctl: enroll needs --measurement and --host-data\n");
			return 2;
		}
		json_object_object_add(req, "measurement", json_object_new_string(meas));
		json_object_object_add(req, "host_data", json_object_new_string(host));
	} else if (strcmp(cmd, "list") != 0 && strcmp(cmd, "show") != 0 &&
	    strcmp(cmd, "rotate-key") != 0 && strcmp(cmd, "release") != 0 &&
	    strcmp(cmd, "delete") != 0 && strcmp(cmd, "status") != 0 &&
	    strcmp(cmd, "ca-show") != 0 && strcmp(cmd, "ca-evidence") != 0) {
		fprintf(stderr, "vtpmctl: unknown command %s\n", cmd);
		usage(stderr);
		return 2;
	}
	if (optind != argc) {
		fprintf(stderr, "vtpmctl: unexpected argument %s\n", argv[optind]);
		return 2;
	}
	rep = request(admin, req);
	json_object_put(req);
	if (rep == NULL) {
		fprintf(stderr, "vtpmctl: vtpmd sent no valid answer\n");
		return 2;
	}
	ok = json_object_object_get_ex(rep, "ok", &v) && json_object_get_boolean(v);
	if (!ok) {
		const char *err = json_object_object_get_ex(rep, "error", &v) ?
		    json_object_get_string(v) : "unknown error";

		if (json)
			printf("%s\n", json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY));
		fprintf(stderr, "vtpmctl: %s\n", err);
		json_object_put(rep);
		return 1;
	}
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY));
	} else if (strcmp(cmd, "list") == 0) {
		json_object_object_get_ex(rep, "instances", &v);
		printf("%-24s %-10s %10s  %s\n", "NAME", "STATE", "GENERATION", "UUID");
		for (i = 0; i < json_object_array_length(v); i++)
			print_instance_line(json_object_array_get_idx(v, i));
	} else if (strcmp(cmd, "show") == 0 || strcmp(cmd, "enroll") == 0) {
		json_object_object_get_ex(rep, "instance", &v);
		printf("%s\n", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PRETTY));
	} else if (strcmp(cmd, "ca-show") == 0) {
		json_object_object_get_ex(rep, "certificate", &v);
		fputs(json_object_get_string(v), stdout);
	} else if (strcmp(cmd, "ca-evidence") == 0) {
		json_object_object_get_ex(rep, "evidence", &v);
		printf("%s\n", json_object_get_string(v));
	} else if (strcmp(cmd, "rotate-key") == 0) {
		printf("%s\n", json_object_object_get_ex(rep, "message", &v) ?
		    json_object_get_string(v) : "ok");
	} else if (strcmp(cmd, "status") == 0) {
		json_object_object_get_ex(rep, "status", &v);
		printf("%s\n", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PRETTY));
	} else {
		printf("ok\n");
	}
	json_object_put(rep);
	return 0;
}
