/*
 * backup_keys.c: the keys of backup and export files (backup_format.h):
 * the backup MAC key from the root key, and the wrapping and MAC keys of
 * exports from a migration secret. Trusts its input keys; every derived
 * key is a BLAKE2b-256 keyed with the input over a fixed label, so no key
 * is used for two purposes.
 */
#include <string.h>

#include <sodium.h>

#include "backup_format.h"

#define BKF_LABEL_BACKUP_MAC	"vtpmd-backup-mac-v1"
#define BKF_LABEL_MIG_WRAP	"vtpmd-migration-wrap-v1"
#define BKF_LABEL_MIG_MAC	"vtpmd-migration-mac-v1"

static void
bkf_derive(const uint8_t key[SEAL_KEY_LEN], const char *label, uint8_t out[32])
{
	crypto_generichash(out, 32, (const uint8_t *)label, strlen(label), key,
	    SEAL_KEY_LEN);
}

int
bkf_backup_mac_key(const struct seal_kek *kek, uint8_t key[BKF_MAC_KEY_LEN])
{
	if (kek == NULL || key == NULL)
		return VTPM_E_INVAL;
	bkf_derive(kek->key, BKF_LABEL_BACKUP_MAC, key);
	return 0;
}

int
bkf_migration_keys(const struct seal_kek *secret, struct seal_kek **wrap,
    uint8_t mac_key[BKF_MAC_KEY_LEN])
{
	uint8_t *k;
	int rc;

	if (wrap != NULL)
		*wrap = NULL;
	if (secret == NULL || wrap == NULL || mac_key == NULL)
		return VTPM_E_INVAL;
	if ((k = sodium_malloc(SEAL_KEY_LEN)) == NULL)
		return VTPM_E_NOMEM;
	bkf_derive(secret->key, BKF_LABEL_MIG_WRAP, k);
	rc = seal_kek_new(k, secret->version, wrap);
	sodium_free(k);		/* wipes */
	if (rc != 0)
		return rc;
	bkf_derive(secret->key, BKF_LABEL_MIG_MAC, mac_key);
	return 0;
}
