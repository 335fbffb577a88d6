/*
 * keyprov.h: where the store's root key (KEK) comes from.
 *
 * A key provider is named by a spec string "scheme:argument":
 *   file:PATH   a file of exactly 32 raw key bytes, mode 0600 or stricter
 *               (no group or other permission bits). version = 1.
 *   kbs:URL     reserved for a Trustee KBS provider; VTPM_E_UNSUPPORTED here.
 * Providers sit behind a small vtable, so adding one is adding a scheme.
 *
 * The provider hands out the key in sodium_malloc() memory, read-only; the
 * caller owns it and frees it with seal_kek_free(). Nothing here logs a key
 * byte; paths and reasons are logged.
 */
#ifndef VTPM_KEYPROV_H
#define VTPM_KEYPROV_H

#include "seal.h"
#include "vtpm_error.h"

struct keyprov;		/* opaque */

/*
 * Opens the provider named by spec and checks that it can deliver a key
 * (for file: the file exists, is a regular file, is not open to group or
 * others, and holds exactly 32 bytes).
 *   create_dev  file: only. If the file is missing, creates it (O_EXCL, mode
 *               0600, fsync of file and directory) from randombytes and logs
 *               that it is a development key. Never set this in production.
 *   out         set to the provider, owned by the caller (keyprov_close()).
 * Returns 0; VTPM_E_INVAL (malformed spec, or a key file that is open to
 * group/others, not regular, or not exactly 32 bytes; logged); VTPM_E_NOTFOUND
 * (no key file and create_dev not set; logged); VTPM_E_UNSUPPORTED (unknown or
 * not built scheme); VTPM_E_IO (system call failed; logged with errno);
 * VTPM_E_NOMEM; VTPM_E_CRYPTO.
 */
int keyprov_open(const char *spec, int create_dev, struct keyprov **out) VTPM_WUR;

/*
 * Fetches the root key: *out is a new read-only struct seal_kek (kid derived,
 * version set) owned by the caller; free it with seal_kek_free(). Each call
 * re-reads the source and re-checks it.
 * Returns 0, or the codes of keyprov_open() except VTPM_E_UNSUPPORTED.
 */
int keyprov_get_root(struct keyprov *kp, struct seal_kek **out) VTPM_WUR;

/* The spec the provider was opened with, for logs (holds no secret). */
const char *keyprov_spec(const struct keyprov *kp);

/* Closes the provider. NULL is a no-op. Keys already handed out stay valid. */
void keyprov_close(struct keyprov *kp);

#endif
