/*
 * freshness.h: vtpm-guest's freshness record, one file per vtpmd instance
 * in the guest's state directory (docs/PROTOCOL.md section 8):
 *
 *	DIR/freshness-<uuid hex>:  "vtpm-guest-freshness-v1 <uuid hex> <generation>\n"
 *
 * The generation is the highest durable generation of that instance vtpmd
 * has reported; a lower one presented at attach means the store was rolled
 * back (or restored by an operator).
 */
#ifndef VTPM_GUEST_FRESHNESS_H
#define VTPM_GUEST_FRESHNESS_H

#include <stddef.h>
#include <stdint.h>

#define FRESH_UUID_LEN	16

/*
 * Parses the contents of a record file (len bytes, not NUL-terminated) for
 * this uuid: the exact line above, decimal generation without sign or
 * leading zeros. Returns 0 with *gen set, -1 on anything else.
 */
int fresh_parse(const char *buf, size_t len, const uint8_t uuid[FRESH_UUID_LEN],
    uint64_t *gen);

/*
 * Reads the record of uuid from dir. Returns 0 with *gen set; 1 if there is
 * none yet; -1 if it cannot be read or does not parse (why says which).
 */
int fresh_load(const char *dir, const uint8_t uuid[FRESH_UUID_LEN], uint64_t *gen,
    char *why, size_t whylen);

/*
 * Replaces the record of uuid in dir with gen, durably: write a temporary
 * file, fsync, rename, fsync the directory. Returns 0, or -1 (why says why;
 * the old record, if any, is left as it was).
 */
int fresh_store(const char *dir, const uint8_t uuid[FRESH_UUID_LEN], uint64_t gen,
    char *why, size_t whylen);

#endif
