/*
 * etcd_json.h: parsers of the answers of etcd's v3 JSON gateway (private to
 * storage/; store_etcd.c is the caller, tests/fuzz/fuzz_etcd.c the fuzzer).
 *
 * Every answer is untrusted: a body must be one JSON object (strict json-c
 * parse, at most ETCD_BODY_MAX bytes), int64 fields are JSON strings of
 * decimal digits (as grpc-gateway writes them) or JSON integers, keys and
 * values are standard base64 that must decode exactly. Fields the gateway
 * omits when zero (kvs, count, value, lease, succeeded...) may be absent;
 * anything present must have the right type. Unknown fields are ignored.
 * On failure the functions return VTPM_E_FORMAT and write a short printable
 * reason into why; the output is then freed and zeroed.
 */
#ifndef VTPM_ETCD_JSON_H
#define VTPM_ETCD_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "vtpm_error.h"

#define ETCD_BODY_MAX	(32u << 20)	/* the largest answer accepted */
#define ETCD_KEY_MAX	1024		/* longest key this store writes or reads */
#define ETCD_WHY_LEN	160

/* One key-value pair. key and val are malloc()ed (val NULL when empty). */
struct etcd_kv {
	uint8_t		*key;
	size_t		 klen;
	uint8_t		*val;
	size_t		 vlen;
	int64_t		 create_rev;
	int64_t		 mod_rev;
	int64_t		 version;
	int64_t		 lease;
};

/* A range answer: header revision and the pairs in the order sent. */
struct etcd_range {
	int64_t		 revision;
	struct etcd_kv	*kvs;
	size_t		 n;
	int		 more;
	int64_t		 count;		/* pairs in the whole range (count_only answers) */
};

/* A txn answer: the responses that were range reads, by their position. */
#define ETCD_TXN_MAX_RESP	4096
struct etcd_txn {
	int64_t		 revision;
	int		 succeeded;
	size_t		 nresp;
	struct etcd_range *resp;	/* nresp entries; non-range responses are empty */
};

/* A lease grant or keepalive answer. */
struct etcd_lease {
	int64_t		 revision;
	int64_t		 id;
	int64_t		 ttl;		/* seconds; <= 0: the lease is gone */
};

/* /v3/kv/range. Returns 0, VTPM_E_FORMAT or VTPM_E_NOMEM. */
int etcd_parse_range(const char *body, size_t len, struct etcd_range *out,
    char *why, size_t whylen) VTPM_WUR;

/* /v3/kv/txn. Returns 0, VTPM_E_FORMAT or VTPM_E_NOMEM. */
int etcd_parse_txn(const char *body, size_t len, struct etcd_txn *out,
    char *why, size_t whylen) VTPM_WUR;

/*
 * /v3/lease/grant (keepalive = 0) or /v3/lease/keepalive (keepalive = 1:
 * the message is wrapped in "result"). A missing TTL reads as 0 (gone).
 * Returns 0 or VTPM_E_FORMAT.
 */
int etcd_parse_lease(const char *body, size_t len, int keepalive, struct etcd_lease *out,
    char *why, size_t whylen) VTPM_WUR;

/*
 * The gateway's error body {"error"|"message": "...", "code": N} as printable
 * text in out (at most outlen - 1 bytes), or a description of the body.
 */
void etcd_error_text(const char *body, size_t len, char *out, size_t outlen);

void etcd_range_free(struct etcd_range *r);
void etcd_txn_free(struct etcd_txn *t);

#endif
