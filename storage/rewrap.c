/*
 * rewrap.c: root-key rotation of a store (store_rewrap_all(), store.h).
 * Trusts its two keys; trusts nothing read from the store: every record is
 * decoded by the store, every wrapped key and the key-check value are
 * authenticated before anything is queued, and the whole change is one batch.
 */
#include <string.h>

#include <sodium.h>

#include "store.h"

struct rewrap_walk {
	const struct seal_kek	*old_kek, *new_kek;
	struct store_batch	*batch;
	uint8_t			*dek;		/* sodium_malloc, SEAL_KEY_LEN */
	size_t			 count;
	int			 rc;
};

static int
rewrap_one(const struct store_instance *inst, void *arg)
{
	struct rewrap_walk *w = arg;
	struct store_instance rec = *inst;
	int rc;

	rc = seal_dek_unwrap(w->old_kek, rec.uuid, rec.wrapped_dek, w->dek);
	if (rc == VTPM_E_WRONG_KEY &&
	    seal_dek_unwrap(w->new_kek, rec.uuid, rec.wrapped_dek, w->dek) == 0) {
		/* already under the new key (cannot happen after an atomic commit) */
		sodium_memzero(w->dek, SEAL_KEY_LEN);
		return 0;
	}
	if (rc == 0)
		rc = seal_dek_wrap(w->new_kek, rec.uuid, w->dek, rec.wrapped_dek);
	sodium_memzero(w->dek, SEAL_KEY_LEN);
	if (rc == 0)
		rc = store_batch_put_inst(w->batch, &rec);
	sodium_memzero(&rec, sizeof(rec));
	if (rc != 0) {
		w->rc = rc;
		return 1;	/* stop the walk */
	}
	w->count++;
	return 0;
}

int
store_rewrap_all(struct store *s, const struct seal_kek *old_kek,
    const struct seal_kek *new_kek, size_t *count)
{
	struct rewrap_walk w;
	uint8_t kcv[SEAL_KCV_LEN];
	int rc;

	if (count != NULL)
		*count = 0;
	if (s == NULL || old_kek == NULL || new_kek == NULL)
		return VTPM_E_INVAL;
	memset(&w, 0, sizeof(w));
	if ((rc = store_meta_get_kcv(s, kcv)) != 0)
		return rc;
	if ((rc = seal_kek_check_verify(old_kek, kcv)) != 0)
		return rc;
	if ((w.batch = store_batch_new()) == NULL ||
	    (w.dek = sodium_malloc(SEAL_KEY_LEN)) == NULL) {
		rc = VTPM_E_NOMEM;
		goto done;
	}
	w.old_kek = old_kek;
	w.new_kek = new_kek;
	rc = store_inst_list(s, rewrap_one, &w);
	if (rc == 1)
		rc = w.rc;
	if (rc != 0)
		goto done;
	if ((rc = seal_kek_check_make(new_kek, kcv)) != 0 ||
	    (rc = store_batch_put_kcv(w.batch, kcv)) != 0 ||
	    (rc = store_batch_commit(s, w.batch)) != 0)
		goto done;
	if (count != NULL)
		*count = w.count;
done:
	if (w.dek != NULL)
		sodium_free(w.dek);
	store_batch_free(w.batch);
	return rc;
}
