/*
 * fleet.h: the store backend choice and a fleet of vtpmd on etcd (fleet.c,
 * docs/FLEET.md). Parent process only.
 */
#ifndef VTPM_FLEET_H
#define VTPM_FLEET_H

#include <stddef.h>

#include "store.h"

/* getopt values of the options fleet_option() takes (vtpmd.c lists them). */
enum {
	FLEET_OPT_STORE = 512,
	FLEET_OPT_ETCD_CACERT,
	FLEET_OPT_ETCD_CERT,
	FLEET_OPT_ETCD_KEY,
	FLEET_OPT_ETCD_ALLOW_HTTP,
	FLEET_OPT_ETCD_NODE,
	FLEET_OPT_ETCD_LEASE_TTL,
	FLEET_OPT_ETCD_TIMEOUT,
	FLEET_OPT_ETCD_MAX_TXN_OPS,
};

#define FLEET_LONGOPTS \
	{ "store", required_argument, NULL, FLEET_OPT_STORE }, \
	{ "etcd-cacert", required_argument, NULL, FLEET_OPT_ETCD_CACERT }, \
	{ "etcd-cert", required_argument, NULL, FLEET_OPT_ETCD_CERT }, \
	{ "etcd-key", required_argument, NULL, FLEET_OPT_ETCD_KEY }, \
	{ "etcd-allow-http", no_argument, NULL, FLEET_OPT_ETCD_ALLOW_HTTP }, \
	{ "etcd-node", required_argument, NULL, FLEET_OPT_ETCD_NODE }, \
	{ "etcd-lease-ttl", required_argument, NULL, FLEET_OPT_ETCD_LEASE_TTL }, \
	{ "etcd-timeout-ms", required_argument, NULL, FLEET_OPT_ETCD_TIMEOUT }, \
	{ "etcd-max-txn-ops", required_argument, NULL, FLEET_OPT_ETCD_MAX_TXN_OPS }

/* Takes one FLEET_OPT_* option (fatal on a bad value); -1 if opt is not one. */
int  fleet_option(int opt, const char *arg);
/* After parsing: fatal on options that do not fit together. */
void fleet_check_config(void);
/* 1 if the store is etcd. */
int  fleet_is_etcd(void);
/* Opens V->store (LMDB in the state directory, or etcd); fatal on failure. */
void fleet_open_store(void);
/*
 * Makes this vtpmd the owner of rec->name before a worker starts for it,
 * and reads the record again under the claim. On failure why names the
 * owner (VTPM_E_BUSY, *errcode ERR_BUSY) or the error.
 */
int  fleet_claim(struct store_instance *rec, char *why, size_t whylen, int *errcode);
/* Every event-loop round: ends the workers of instances whose ownership lapses. */
void fleet_tick(void);

#endif
