/*
 * fuzz_etcd.c: libFuzzer harness for the parsers of etcd's answers
 * (storage/etcd_json.c): etcd_parse_range(), etcd_parse_txn(),
 * etcd_parse_lease() (grant and keepalive) and etcd_error_text(). The first
 * byte picks the parser, the rest is the body. Beyond "no crash" it checks
 * their promises: output zeroed on failure with a reason; on success every
 * pair has a key, revisions that make sense and count >= the pairs sent;
 * a lease has a positive ID; the error text is printable.
 *
 * Seeds: tests/fuzz/corpus/etcd/ (answers of etcd 3.4.23's gateway).
 */
#include <stdlib.h>
#include <string.h>

#include "etcd_json.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_etcd", LOG_LVL_ERR);
	return 0;
}

static volatile uint8_t fz_sink;

static int
fz_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

static void
fz_check_range(const struct etcd_range *r)
{
	size_t i;

	if ((uint64_t)r->count < r->n && r->n > 0)
		abort();
	for (i = 0; i < r->n; i++) {
		const struct etcd_kv *kv = &r->kvs[i];

		if (kv->key == NULL || kv->klen == 0 || kv->klen > ETCD_KEY_MAX ||
		    (kv->val == NULL) != (kv->vlen == 0) || kv->create_rev <= 0 ||
		    kv->mod_rev < kv->create_rev || kv->version <= 0 || kv->lease < 0)
			abort();
		/* touch the last bytes: a wrong length shows under ASan */
		fz_sink ^= kv->key[kv->klen - 1];
		if (kv->vlen > 0)
			fz_sink ^= kv->val[kv->vlen - 1];
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[ETCD_WHY_LEN], text[64];
	struct etcd_range r;
	struct etcd_txn t;
	struct etcd_lease l;
	const char *body;
	size_t i;
	int rc;

	if (size < 1)
		return 0;
	body = (const char *)data + 1;
	size--;
	why[0] = '\0';
	switch (data[0] % 5) {
	case 0:
		rc = etcd_parse_range(body, size, &r, why, sizeof(why));
		if (rc != 0 && (!fz_zero(&r, sizeof(r)) || why[0] == '\0'))
			abort();
		if (rc == 0) {
			if (r.revision <= 0)
				abort();
			fz_check_range(&r);
			etcd_range_free(&r);
		}
		break;
	case 1:
		rc = etcd_parse_txn(body, size, &t, why, sizeof(why));
		if (rc != 0 && (!fz_zero(&t, sizeof(t)) || why[0] == '\0'))
			abort();
		if (rc == 0) {
			if (t.revision <= 0 || t.nresp > ETCD_TXN_MAX_RESP)
				abort();
			for (i = 0; i < t.nresp; i++)
				fz_check_range(&t.resp[i]);
			etcd_txn_free(&t);
		}
		break;
	case 2:
	case 3:
		rc = etcd_parse_lease(body, size, data[0] % 5 == 3, &l, why, sizeof(why));
		if (rc != 0 && (!fz_zero(&l, sizeof(l)) || why[0] == '\0'))
			abort();
		if (rc == 0 && (l.id <= 0 || l.revision <= 0))
			abort();
		break;
	default:
		etcd_error_text(body, size, text, sizeof(text));
		for (i = 0; text[i] != '\0'; i++)
			if (i >= sizeof(text) - 1 || text[i] < 0x20 || text[i] > 0x7e)
				abort();
		break;
	}
	return 0;
}
