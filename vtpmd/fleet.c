/*
 * fleet.c: vtpmd's side of a fleet on etcd (docs/FLEET.md): the --store and
 * --etcd-* options, opening the chosen backend, claiming an instance before
 * a worker starts for it, and stopping every instance whose ownership lapses.
 * Trusts the operator's options; the store (store_etcd.c) trusts no answer.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "log.h"
#include "parent.h"
#include "proto.h"

static struct store_etcd_cfg fleet_etcd;
static const char *fleet_spec;		/* "lmdb" (default) or "etcd:URL[,URL...]" */

int
fleet_option(int opt, const char *arg)
{
	char *end;
	long v;

	switch (opt) {
	case FLEET_OPT_STORE:
		if (strcmp(arg, "lmdb") != 0 && strncmp(arg, "etcd:", 5) != 0)
			fatalx("--store: want lmdb or etcd:http[s]://HOST:PORT[,...]");
		fleet_spec = arg;
		return 0;
	case FLEET_OPT_ETCD_CACERT:	fleet_etcd.ca_file = arg; return 0;
	case FLEET_OPT_ETCD_CERT:	fleet_etcd.cert_file = arg; return 0;
	case FLEET_OPT_ETCD_KEY:	fleet_etcd.key_file = arg; return 0;
	case FLEET_OPT_ETCD_ALLOW_HTTP:	fleet_etcd.allow_http = 1; return 0;
	case FLEET_OPT_ETCD_NODE:	fleet_etcd.node = arg; return 0;
	case FLEET_OPT_ETCD_MAX_TXN_OPS:
		v = strtol(arg, &end, 10);
		if (*arg == '\0' || *end != '\0' || v < 16 || v > 1000000)
			fatalx("--etcd-max-txn-ops: %s is not a number in 16..1000000 "
			    "(etcd's --max-txn-ops)", arg);
		fleet_etcd.max_txn_ops = (int)v;
		return 0;
	case FLEET_OPT_ETCD_LEASE_TTL:
	case FLEET_OPT_ETCD_TIMEOUT:
		v = strtol(arg, &end, 10);
		if (*arg == '\0' || *end != '\0' || (opt == FLEET_OPT_ETCD_LEASE_TTL ?
		    (v < 2 || v > 3600) : (v < 100 || v > 60000)))
			fatalx("%s: %s is not a number in %s", opt == FLEET_OPT_ETCD_LEASE_TTL ?
			    "--etcd-lease-ttl" : "--etcd-timeout-ms", arg,
			    opt == FLEET_OPT_ETCD_LEASE_TTL ? "2..3600" : "100..60000");
		if (opt == FLEET_OPT_ETCD_LEASE_TTL)
			fleet_etcd.lease_ttl = (int)v;
		else
			fleet_etcd.timeout_ms = (int)v;
		return 0;
	}
	return -1;
}

int
fleet_is_etcd(void)
{
	return fleet_spec != NULL && strncmp(fleet_spec, "etcd:", 5) == 0;
}

void
fleet_check_config(void)
{
	if (!fleet_is_etcd() && (fleet_etcd.ca_file != NULL || fleet_etcd.cert_file != NULL ||
	    fleet_etcd.key_file != NULL || fleet_etcd.allow_http || fleet_etcd.node != NULL ||
	    fleet_etcd.lease_ttl != 0 || fleet_etcd.timeout_ms != 0 ||
	    fleet_etcd.max_txn_ops != 0))
		fatalx("--etcd-* options need --store etcd:URL");
	if ((fleet_etcd.cert_file == NULL) != (fleet_etcd.key_file == NULL))
		fatalx("--etcd-cert and --etcd-key go together");
	if (fleet_is_etcd() && V->cfg.nosync)
		fatalx("--unsafe-nosync applies to the LMDB store only");
	if (fleet_is_etcd() && (V->cfg.audit_retention_days > 0 || V->cfg.audit_max_records > 0))
		fatalx("--audit-retention and --audit-max-records apply to the LMDB store "
		    "only (the etcd backend does not prune the audit log yet)");
}

void
fleet_open_store(void)
{
	int rc;

	if (!fleet_is_etcd()) {
		rc = store_open_lmdb_flags(V->cfg.state_dir, V->cfg.map_size,
		    V->cfg.nosync ? STORE_F_NOSYNC : 0, &V->store);
		if (rc != 0)
			fatalx("cannot open the store in %s: %s", V->cfg.state_dir,
			    vtpm_strerror(rc));
		return;
	}
	/* the state directory still holds local files (the --dev key, sockets) */
	if (mkdir(V->cfg.state_dir, 0700) != 0 && errno != EEXIST)
		fatal("mkdir %s", V->cfg.state_dir);
	fleet_etcd.endpoints = fleet_spec + 5;
	if ((rc = store_open_etcd(&fleet_etcd, &V->store)) != 0)
		fatalx("cannot open the etcd store %s: %s", fleet_etcd.endpoints,
		    vtpm_strerror(rc));
}

int
fleet_claim(struct store_instance *rec, char *why, size_t whylen, int *errcode)
{
	char owner[STORE_ETCD_OWNER_MAX + 1], name[STORE_NAME_MAX + 1];
	int rc;

	rc = store_inst_claim(V->store, rec->name, owner, sizeof(owner));
	if (rc == VTPM_E_BUSY) {
		snprintf(why, whylen, "instance %s is served by vtpmd %s: attach there, or "
		    "wait until it releases the instance (vtpmctl release there, or its "
		    "lease expires)", rec->name, owner);
		*errcode = ERR_BUSY;
		return rc;
	}
	if (rc != 0) {
		snprintf(why, whylen, "cannot claim instance %s: %s%s%s", rec->name,
		    vtpm_strerror(rc), owner[0] ? " " : "", owner);
		*errcode = ERR_UNAVAILABLE;
		return rc;
	}
	/* Read the record again now that no one else may write it. */
	memcpy(name, rec->name, sizeof(name));
	if ((rc = store_inst_get(V->store, name, rec)) != 0) {
		store_inst_release(V->store, name);
		snprintf(why, whylen, "instance %s: record gone after the claim: %s",
		    name, vtpm_strerror(rc));
		*errcode = ERR_UNAVAILABLE;
		return rc;
	}
	if (rec->flags & STORE_INST_FENCED) {
		store_inst_release(V->store, rec->name);
		snprintf(why, whylen, "instance %s is fenced (exported)", rec->name);
		*errcode = ERR_FENCED;
		return VTPM_E_FENCED;
	}
	return 0;
}

static void
fleet_lost(const char *name, void *arg)
{
	(void)arg;
	/*
	 * Hard: the worker and its guest's session end now, and any store it
	 * still has queued is refused (the commit is fenced), so nothing is
	 * acknowledged that another vtpmd could not see.
	 */
	(void)inst_end_worker(name, 0, "ownership lost (etcd lease lapsing or taken over)");
	if (inst_find(name) == NULL)
		store_inst_release(V->store, name);
}

void
fleet_tick(void)
{
	store_fleet_tick(V->store, fleet_lost, NULL);
}
