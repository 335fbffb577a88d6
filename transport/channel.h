/*
 * channel.h: the framed, encrypted vtpmd channel (docs/PROTOCOL.md).
 *
 * On the stream every frame is u16 BE length (1..65535) followed by that many
 * bytes: a Noise handshake message, or after the handshake a Noise transport
 * message (ciphertext + 16-byte tag) whose plaintext is u8 type | body.
 * Nonces are implicit counters, so a replayed, reordered, dropped or altered
 * frame fails to decrypt and the channel is dead: every error is final.
 *
 * Ownership: a struct chan owns its fd (closed by chan_free) and its cipher
 * keys (sodium_malloc memory, wiped by chan_free).
 */
#ifndef VTPM_CHANNEL_H
#define VTPM_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "noise.h"
#include "vtpm_error.h"

#define CHAN_MAX_FRAME	65535
#define CHAN_MAX_BODY	(CHAN_MAX_FRAME - NOISE_TAG_LEN - 1)
#define CHAN_PROLOGUE	"vtpmd-noise-v1"

struct chan;

/*
 * Wraps fd. exact_reads: never read past the end of the current frame (the
 * parent uses it so that nothing meant for a worker is consumed before the
 * session is handed over); otherwise reads are greedy and buffered.
 */
struct chan *chan_new(int fd, int exact_reads);
/* Closes the fd unless chan_release_fd() took it, wipes keys, frees. */
void chan_free(struct chan *ch);
int chan_fd(const struct chan *ch);
/* Gives up ownership of the fd (it stays open); returns it. */
int chan_release_fd(struct chan *ch);

/* Installs transport cipher states (copied; the caller wipes its copies). */
void chan_set_ciphers(struct chan *ch, const struct noise_cipher *tx,
    const struct noise_cipher *rx);
/* Copies the current cipher states out (to hand the session to a worker). */
void chan_get_ciphers(const struct chan *ch, struct noise_cipher *tx,
    struct noise_cipher *rx);
/* 1 if bytes beyond the last complete frame are buffered. */
int chan_has_buffered(const struct chan *ch);

/*
 * Reads from the fd (which may be non-blocking). Returns 1 and points
 * frame and len at a complete frame (valid until the next call), 0 if more
 * bytes are needed (EAGAIN), VTPM_E_CLOSED on EOF between frames,
 * VTPM_E_SHORT on EOF inside a frame (truncated), VTPM_E_FORMAT on a zero
 * length, VTPM_E_IO on a read error.
 */
int chan_read_frame(struct chan *ch, const uint8_t **frame, size_t *len) VTPM_WUR;
/* Like chan_read_frame but waits up to timeout_ms (-1 = forever); VTPM_E_TIMEOUT. */
int chan_wait_frame(struct chan *ch, int timeout_ms, const uint8_t **frame,
    size_t *len) VTPM_WUR;
/* Writes one frame whole (waits up to timeout_ms on a non-blocking fd). */
int chan_write_frame(struct chan *ch, const uint8_t *p, size_t len, int timeout_ms) VTPM_WUR;

/* Encrypts u8 type | body and writes it as one frame. */
int chan_send(struct chan *ch, uint8_t type, const void *body, size_t len) VTPM_WUR;
/*
 * Encrypts u8 type | body into one frame as it goes on the stream (u16 BE
 * length | ciphertext) at out, cap bytes, without writing it: *olen gets
 * its length. The tx nonce advances as for chan_send(), so frames sealed
 * this way must leave in the order they were sealed. VTPM_E_TOOBIG if cap
 * is too small.
 */
int chan_seal(struct chan *ch, uint8_t type, const void *body, size_t len,
    uint8_t *out, size_t cap, size_t *olen) VTPM_WUR;
/* Writes bytes that are already frames (chan_seal() output) whole. */
int chan_write_raw(struct chan *ch, const uint8_t *p, size_t len, int timeout_ms) VTPM_WUR;
/*
 * The tx nonce counter, and putting it back. chan_tx_rewind() is only for
 * frames sealed after the mark that are known never to leave (every copy
 * of them wiped): otherwise a nonce would repeat on the wire and the
 * AEAD would be broken for those frames.
 */
uint64_t chan_tx_mark(const struct chan *ch);
void chan_tx_rewind(struct chan *ch, uint64_t mark);
/* Decrypts a frame into type and body (cap bytes); VTPM_E_AUTH on any tampering. */
int chan_open(struct chan *ch, const uint8_t *frame, size_t flen, uint8_t *type,
    uint8_t *body, size_t cap, size_t *blen) VTPM_WUR;
/* Waits for, reads and decrypts one message. */
int chan_recv(struct chan *ch, int timeout_ms, uint8_t *type, uint8_t *body,
    size_t cap, size_t *blen) VTPM_WUR;

#endif
