/*
 * local_proto.h: parsing of requests on vtpm-guest's local socket
 * (docs/LOCAL-PROTOCOL.md; constants in tcti_vtpm.h). Pure functions over
 * untrusted bytes from local clients; fuzzed by tests/fuzz/fuzz_local.c.
 */
#ifndef VTPM_LOCAL_PROTO_H
#define VTPM_LOCAL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "vtpm_error.h"

/*
 * Looks for one complete request at the start of buf (have bytes).
 * Returns 1 and sets op, body, len and *consumed when one is there, 0 when
 * more bytes are needed, VTPM_E_TOOBIG when the announced body exceeds
 * VTPM_LOCAL_MAX_BODY (the client must be dropped).
 */
int local_request_next(const uint8_t *buf, size_t have, uint32_t *op,
    const uint8_t **body, uint32_t *len, size_t *consumed) VTPM_WUR;

/*
 * Checks an OP_TPM_COMMAND body: u8 locality (0..4) | a TPM command of
 * 10..4096 bytes whose header size field equals its length.
 */
int local_check_tpm_command(const uint8_t *body, size_t len) VTPM_WUR;

#endif
