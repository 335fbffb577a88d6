/*
 * cursor.c: bounds-checked reading of untrusted bytes, bounded writing.
 * Trusts nothing in the input; every read checks the remaining length first.
 */
#include <string.h>

#include "cursor.h"

static int
cur_fail(struct cursor *c)
{
	if (c->c_err == 0)
		c->c_err = VTPM_E_SHORT;
	c->c_len = 0;
	return c->c_err;
}

int
cur_get_ref(struct cursor *c, const uint8_t **p, size_t n)
{
	if (c->c_err != 0 || c->c_len < n)
		return cur_fail(c);
	*p = c->c_ptr;
	c->c_ptr += n;
	c->c_len -= n;
	return 0;
}

int
cur_get_bytes(struct cursor *c, void *out, size_t n)
{
	const uint8_t *p;

	if (cur_get_ref(c, &p, n) != 0)
		return c->c_err;
	if (n > 0)
		memcpy(out, p, n);
	return 0;
}

int
cur_skip(struct cursor *c, size_t n)
{
	const uint8_t *p;

	return cur_get_ref(c, &p, n);
}

int
cur_get_u8(struct cursor *c, uint8_t *v)
{
	const uint8_t *p;

	if (cur_get_ref(c, &p, 1) != 0)
		return c->c_err;
	*v = p[0];
	return 0;
}

int
cur_get_u16(struct cursor *c, uint16_t *v)
{
	const uint8_t *p;

	if (cur_get_ref(c, &p, 2) != 0)
		return c->c_err;
	*v = be16_dec(p);
	return 0;
}

int
cur_get_u32(struct cursor *c, uint32_t *v)
{
	const uint8_t *p;

	if (cur_get_ref(c, &p, 4) != 0)
		return c->c_err;
	*v = be32_dec(p);
	return 0;
}

int
cur_get_u64(struct cursor *c, uint64_t *v)
{
	const uint8_t *p;

	if (cur_get_ref(c, &p, 8) != 0)
		return c->c_err;
	*v = be64_dec(p);
	return 0;
}

int
cur_get_u16_le(struct cursor *c, uint16_t *v)
{
	const uint8_t *p;

	if (cur_get_ref(c, &p, 2) != 0)
		return c->c_err;
	*v = (uint16_t)(p[0] | p[1] << 8);
	return 0;
}

int
cur_get_u32_le(struct cursor *c, uint32_t *v)
{
	const uint8_t *p;

	if (cur_get_ref(c, &p, 4) != 0)
		return c->c_err;
	*v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
	return 0;
}

int
cur_get_u64_le(struct cursor *c, uint64_t *v)
{
	uint32_t lo, hi;

	if (cur_get_u32_le(c, &lo) != 0 || cur_get_u32_le(c, &hi) != 0)
		return c->c_err;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

int
cur_end(const struct cursor *c)
{
	if (c->c_err != 0)
		return c->c_err;
	return c->c_len == 0 ? 0 : VTPM_E_TRAILING;
}

uint8_t *
wbuf_reserve(struct wbuf *w, size_t n)
{
	uint8_t *p;

	if (w->w_err != 0 || w->w_cap - w->w_len < n) {
		w->w_err = VTPM_E_TOOBIG;
		return NULL;
	}
	p = w->w_ptr + w->w_len;
	w->w_len += n;
	return p;
}

void
wbuf_put_bytes(struct wbuf *w, const void *src, size_t n)
{
	uint8_t *p = wbuf_reserve(w, n);

	if (p != NULL && n > 0)
		memcpy(p, src, n);
}

void
wbuf_put_u8(struct wbuf *w, uint8_t v)
{
	wbuf_put_bytes(w, &v, 1);
}

void
wbuf_put_u16(struct wbuf *w, uint16_t v)
{
	uint8_t *p = wbuf_reserve(w, 2);

	if (p != NULL)
		be16_enc(p, v);
}

void
wbuf_put_u32(struct wbuf *w, uint32_t v)
{
	uint8_t *p = wbuf_reserve(w, 4);

	if (p != NULL)
		be32_enc(p, v);
}

void
wbuf_put_u64(struct wbuf *w, uint64_t v)
{
	uint8_t *p = wbuf_reserve(w, 8);

	if (p != NULL)
		be64_enc(p, v);
}

void
wbuf_put_u32_le(struct wbuf *w, uint32_t v)
{
	uint8_t *p = wbuf_reserve(w, 4);

	if (p != NULL) {
		p[0] = v & 0xff;
		p[1] = (v >> 8) & 0xff;
		p[2] = (v >> 16) & 0xff;
		p[3] = v >> 24;
	}
}

void
wbuf_put_u64_le(struct wbuf *w, uint64_t v)
{
	wbuf_put_u32_le(w, (uint32_t)v);
	wbuf_put_u32_le(w, (uint32_t)(v >> 32));
}

int
wbuf_end(const struct wbuf *w, size_t *len)
{
	if (w->w_err != 0)
		return w->w_err;
	*len = w->w_len;
	return 0;
}
