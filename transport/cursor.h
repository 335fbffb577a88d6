/*
 * cursor.h: the one bounds-checked reader for untrusted bytes, and its writer twin.
 *
 * A cursor is {ptr, len}. Every getter checks the remaining length first,
 * consumes, then returns; on failure it returns VTPM_E_SHORT and leaves the
 * cursor exhausted (sticky), so a parser may check once at the end. Integers
 * are big-endian unless the name says _le. cur_end() is the end-of-message
 * check: VTPM_E_TRAILING if bytes remain, the sticky error if any getter failed.
 *
 * The writer (struct wbuf) appends into a caller-owned fixed buffer; an
 * overflow sets a sticky error returned by wbuf_end(). Nothing is allocated.
 */
#ifndef VTPM_CURSOR_H
#define VTPM_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "vtpm_error.h"

struct cursor {
	const uint8_t	*c_ptr;
	size_t		 c_len;
	int		 c_err;		/* sticky: first error seen */
};

static inline void
cur_init(struct cursor *c, const void *p, size_t len)
{
	c->c_ptr = p;
	c->c_len = len;
	c->c_err = 0;
}

static inline size_t cur_left(const struct cursor *c) { return c->c_len; }

int cur_get_u8(struct cursor *c, uint8_t *v) VTPM_WUR;
int cur_get_u16(struct cursor *c, uint16_t *v) VTPM_WUR;
int cur_get_u32(struct cursor *c, uint32_t *v) VTPM_WUR;
int cur_get_u64(struct cursor *c, uint64_t *v) VTPM_WUR;
int cur_get_u16_le(struct cursor *c, uint16_t *v) VTPM_WUR;
int cur_get_u32_le(struct cursor *c, uint32_t *v) VTPM_WUR;
int cur_get_u64_le(struct cursor *c, uint64_t *v) VTPM_WUR;
/* Copies exactly n bytes into out. */
int cur_get_bytes(struct cursor *c, void *out, size_t n) VTPM_WUR;
/* Points *p at the next n bytes without copying (valid while the input lives). */
int cur_get_ref(struct cursor *c, const uint8_t **p, size_t n) VTPM_WUR;
int cur_skip(struct cursor *c, size_t n) VTPM_WUR;
/* 0 if the cursor is exactly at its end and no getter failed. */
int cur_end(const struct cursor *c) VTPM_WUR;

struct wbuf {
	uint8_t	*w_ptr;
	size_t	 w_cap;
	size_t	 w_len;
	int	 w_err;
};

static inline void
wbuf_init(struct wbuf *w, void *p, size_t cap)
{
	w->w_ptr = p;
	w->w_cap = cap;
	w->w_len = 0;
	w->w_err = 0;
}

void wbuf_put_u8(struct wbuf *w, uint8_t v);
void wbuf_put_u16(struct wbuf *w, uint16_t v);
void wbuf_put_u32(struct wbuf *w, uint32_t v);
void wbuf_put_u64(struct wbuf *w, uint64_t v);
void wbuf_put_u32_le(struct wbuf *w, uint32_t v);
void wbuf_put_u64_le(struct wbuf *w, uint64_t v);
void wbuf_put_bytes(struct wbuf *w, const void *p, size_t n);
/* Reserves n bytes and returns where they start, or NULL (sticky error). */
uint8_t *wbuf_reserve(struct wbuf *w, size_t n);
/* 0 and the length written, or VTPM_E_TOOBIG if anything overflowed. */
int wbuf_end(const struct wbuf *w, size_t *len) VTPM_WUR;

/* Big-endian helpers for fixed positions in already-checked buffers. */
static inline uint16_t be16_dec(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t be32_dec(const uint8_t *p)
{ return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline void be16_enc(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static inline void be32_enc(uint8_t *p, uint32_t v)
{ p[0] = v >> 24; p[1] = (v >> 16) & 0xff; p[2] = (v >> 8) & 0xff; p[3] = v & 0xff; }
static inline void be64_enc(uint8_t *p, uint64_t v)
{ be32_enc(p, (uint32_t)(v >> 32)); be32_enc(p + 4, (uint32_t)v); }
static inline uint64_t be64_dec(const uint8_t *p)
{ return (uint64_t)be32_dec(p) << 32 | be32_dec(p + 4); }

#endif
