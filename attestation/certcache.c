/*
 * certcache.c: two small process-wide caches that spare every attach the
 * cost of parsing the same certificates and checking the same certificate
 * signatures again (OpenSSL 3 decodes each public key through its provider
 * machinery: parsing the SNP chain once cost more than all its signature
 * checks). Inputs are untrusted bytes; both caches are keyed by SHA-256 of
 * exact bytes, so a hit can only give what a fresh parse or check would:
 *
 *   parsed    SHA-256 of the bytes handed to x509_from_bytes() (DER or PEM)
 *             -> the X509 that parsing them gave (shared, reference-counted;
 *             nobody modifies a certificate after parsing it)
 *   verified  SHA-256 of the child's DER || SHA-256 of the issuer's DER
 *             -> "the child's signature verifies with the issuer's key"
 *
 * Only successes are remembered, so a failure is checked again next time.
 * Everything else (the report's own signature, names, CA flags, signature
 * parameters, validity times, pins, policy) runs on every call. Both caches
 * are small rings: the oldest entry makes room. Thread-safe (one mutex).
 */
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "attest_int.h"

#define PARSED_MAX	32
#define VERIFIED_MAX	64

static struct {
	uint8_t	 key[32];
	X509	*x;
	uint8_t	 der_sha256[32];	/* of x's DER, for the verified pairs */
} parsed[PARSED_MAX];
static unsigned parsed_next;

static uint8_t verified[VERIFIED_MAX][64];
static unsigned verified_n, verified_next;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

static void
bytes_key(const uint8_t *buf, size_t len, uint8_t key[32])
{
	crypto_hash_sha256(key, buf, len);
}

X509 *
certcache_get(const uint8_t *buf, size_t len, uint8_t key[32])
{
	X509 *x = NULL;
	unsigned i;

	bytes_key(buf, len, key);
	pthread_mutex_lock(&cache_mu);
	for (i = 0; i < PARSED_MAX; i++)
		if (parsed[i].x != NULL && memcmp(parsed[i].key, key, 32) == 0) {
			if (X509_up_ref(parsed[i].x) == 1)
				x = parsed[i].x;
			break;
		}
	pthread_mutex_unlock(&cache_mu);
	return x;
}

void
certcache_put(const uint8_t key[32], X509 *x)
{
	uint8_t der[32];
	unsigned int n = 32;
	X509 *old;

	if (x == NULL || X509_digest(x, EVP_sha256(), der, &n) != 1 || n != 32 ||
	    X509_up_ref(x) != 1)
		return;
	pthread_mutex_lock(&cache_mu);
	old = parsed[parsed_next].x;
	memcpy(parsed[parsed_next].key, key, 32);
	parsed[parsed_next].x = x;
	memcpy(parsed[parsed_next].der_sha256, der, 32);
	parsed_next = (parsed_next + 1) % PARSED_MAX;
	pthread_mutex_unlock(&cache_mu);
	X509_free(old);
}

/*
 * SHA-256 of x's DER. A certificate the parse cache holds has it stored:
 * the caller holds a reference to x, so an entry with x's address is x.
 */
static int
der_sha256(X509 *x, uint8_t out[32])
{
	unsigned int n = 32;
	unsigned i;
	int found = 0;

	pthread_mutex_lock(&cache_mu);
	for (i = 0; i < PARSED_MAX && !found; i++)
		if (parsed[i].x == x) {
			memcpy(out, parsed[i].der_sha256, 32);
			found = 1;
		}
	pthread_mutex_unlock(&cache_mu);
	if (found)
		return 0;
	return X509_digest(x, EVP_sha256(), out, &n) == 1 && n == 32 ? 0 : -1;
}

static int
pair_key(X509 *child, X509 *issuer, uint8_t key[64])
{
	return der_sha256(child, key) == 0 && der_sha256(issuer, key + 32) == 0 ? 0 : -1;
}

int
certcache_verified(X509 *child, X509 *issuer)
{
	uint8_t key[64];
	unsigned i;
	int hit = 0;

	if (pair_key(child, issuer, key) != 0)
		return 0;
	pthread_mutex_lock(&cache_mu);
	for (i = 0; i < verified_n && !hit; i++)
		hit = memcmp(verified[i], key, 64) == 0;
	pthread_mutex_unlock(&cache_mu);
	return hit;
}

void
certcache_note_verified(X509 *child, X509 *issuer)
{
	uint8_t key[64];

	if (pair_key(child, issuer, key) != 0)
		return;
	pthread_mutex_lock(&cache_mu);
	memcpy(verified[verified_next], key, 64);
	verified_next = (verified_next + 1) % VERIFIED_MAX;
	if (verified_n < VERIFIED_MAX)
		verified_n++;
	pthread_mutex_unlock(&cache_mu);
}
