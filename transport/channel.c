/*
 * channel.c: length-prefixed frames and Noise transport messages on a stream.
 * Trusts nothing read from the fd: lengths are checked before use and every
 * message is authenticated before its type byte is looked at.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "channel.h"
#include "cursor.h"

struct chan_keys {
	struct noise_cipher	tx;
	struct noise_cipher	rx;
};

struct chan {
	int			 fd;
	int			 exact;
	struct chan_keys	*keys;		/* sodium_malloc */
	uint8_t			*rbuf;		/* 2 + CHAN_MAX_FRAME */
	size_t			 rhave;		/* bytes in rbuf */
	size_t			 rconsumed;	/* bytes of the frame returned last */
	uint8_t			*tbuf;		/* 2 + CHAN_MAX_FRAME */
	uint8_t			*pbuf;		/* plaintext scratch */
};

struct chan *
chan_new(int fd, int exact_reads)
{
	struct chan *ch;

	if ((ch = calloc(1, sizeof(*ch))) == NULL)
		return NULL;
	ch->fd = fd;
	ch->exact = exact_reads;
	ch->keys = sodium_malloc(sizeof(*ch->keys));
	ch->rbuf = malloc(2 + CHAN_MAX_FRAME);
	ch->tbuf = malloc(2 + CHAN_MAX_FRAME);
	ch->pbuf = malloc(CHAN_MAX_FRAME);
	if (ch->keys == NULL || ch->rbuf == NULL || ch->tbuf == NULL || ch->pbuf == NULL) {
		ch->fd = -1;
		chan_free(ch);
		return NULL;
	}
	memset(ch->keys, 0, sizeof(*ch->keys));
	return ch;
}

void
chan_free(struct chan *ch)
{
	if (ch == NULL)
		return;
	if (ch->fd >= 0)
		close(ch->fd);
	if (ch->keys != NULL) {
		sodium_memzero(ch->keys, sizeof(*ch->keys));
		sodium_free(ch->keys);
	}
	if (ch->pbuf != NULL) {
		sodium_memzero(ch->pbuf, CHAN_MAX_FRAME);
		free(ch->pbuf);
	}
	free(ch->rbuf);
	free(ch->tbuf);
	free(ch);
}

int
chan_fd(const struct chan *ch)
{
	return ch->fd;
}

int
chan_release_fd(struct chan *ch)
{
	int fd = ch->fd;

	ch->fd = -1;
	return fd;
}

void
chan_set_ciphers(struct chan *ch, const struct noise_cipher *tx,
    const struct noise_cipher *rx)
{
	ch->keys->tx = *tx;
	ch->keys->rx = *rx;
}

void
chan_get_ciphers(const struct chan *ch, struct noise_cipher *tx,
    struct noise_cipher *rx)
{
	*tx = ch->keys->tx;
	*rx = ch->keys->rx;
}

int
chan_has_buffered(const struct chan *ch)
{
	return ch->rhave > ch->rconsumed;
}

/* Drops the frame returned by the previous call. */
static void
chan_consume(struct chan *ch)
{
	if (ch->rconsumed == 0)
		return;
	memmove(ch->rbuf, ch->rbuf + ch->rconsumed, ch->rhave - ch->rconsumed);
	ch->rhave -= ch->rconsumed;
	ch->rconsumed = 0;
}

int
chan_read_frame(struct chan *ch, const uint8_t **frame, size_t *len)
{
	size_t need, want;
	ssize_t n;

	chan_consume(ch);
	for (;;) {
		need = 2;
		if (ch->rhave >= 2) {
			need = 2 + (size_t)be16_dec(ch->rbuf);
			if (need == 2)
				return VTPM_E_FORMAT;
		}
		if (ch->rhave >= need && ch->rhave >= 2 && need > 2) {
			*frame = ch->rbuf + 2;
			*len = need - 2;
			ch->rconsumed = need;
			return 1;
		}
		want = ch->exact ? need - ch->rhave : 2 + CHAN_MAX_FRAME - ch->rhave;
		n = read(ch->fd, ch->rbuf + ch->rhave, want);
		if (n == 0)	/* a frame cut short is not a clean close */
			return ch->rhave > 0 ? VTPM_E_SHORT : VTPM_E_CLOSED;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return VTPM_E_IO;
		}
		ch->rhave += (size_t)n;
	}
}

static int
deadline_left(const struct timespec *end, int timeout_ms)
{
	struct timespec now;
	long ms;

	if (timeout_ms < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (end->tv_sec - now.tv_sec) * 1000 + (end->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

static void
deadline_set(struct timespec *end, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, end);
	if (timeout_ms < 0)
		return;
	end->tv_sec += timeout_ms / 1000;
	end->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (end->tv_nsec >= 1000000000) {
		end->tv_sec++;
		end->tv_nsec -= 1000000000;
	}
}

int
chan_wait_frame(struct chan *ch, int timeout_ms, const uint8_t **frame, size_t *len)
{
	struct timespec end;
	struct pollfd pfd;
	int rc, left;

	deadline_set(&end, timeout_ms);
	for (;;) {
		if ((rc = chan_read_frame(ch, frame, len)) != 0)
			return rc;
		left = deadline_left(&end, timeout_ms);
		if (left == 0)
			return VTPM_E_TIMEOUT;
		pfd.fd = ch->fd;
		pfd.events = POLLIN;
		rc = poll(&pfd, 1, left);
		if (rc < 0 && errno != EINTR)
			return VTPM_E_IO;
	}
}

static int
write_all(int fd, const uint8_t *p, size_t len, int timeout_ms)
{
	struct timespec end;
	struct pollfd pfd;
	ssize_t n;
	int left;

	deadline_set(&end, timeout_ms);
	while (len > 0) {
		n = write(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			left = deadline_left(&end, timeout_ms);
			if (left == 0)
				return VTPM_E_TIMEOUT;
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, left) < 0 && errno != EINTR)
				return VTPM_E_IO;
			continue;
		}
		return errno == EPIPE || errno == ECONNRESET ? VTPM_E_CLOSED : VTPM_E_IO;
	}
	return 0;
}

int
chan_write_frame(struct chan *ch, const uint8_t *p, size_t len, int timeout_ms)
{
	if (len == 0 || len > CHAN_MAX_FRAME)
		return VTPM_E_TOOBIG;
	be16_enc(ch->tbuf, (uint16_t)len);
	if (p != ch->tbuf + 2)
		memcpy(ch->tbuf + 2, p, len);
	return write_all(ch->fd, ch->tbuf, 2 + len, timeout_ms);
}

int
chan_seal(struct chan *ch, uint8_t type, const void *body, size_t len, uint8_t *out,
    size_t cap, size_t *olen)
{
	int rc;

	if (len > CHAN_MAX_BODY || cap < 2 + 1 + len + NOISE_TAG_LEN)
		return VTPM_E_TOOBIG;
	ch->pbuf[0] = type;
	if (len > 0)
		memcpy(ch->pbuf + 1, body, len);
	rc = noise_cipher_encrypt(&ch->keys->tx, NULL, 0, ch->pbuf, len + 1, out + 2);
	sodium_memzero(ch->pbuf, len + 1);
	if (rc != 0)
		return rc;
	be16_enc(out, (uint16_t)(len + 1 + NOISE_TAG_LEN));
	*olen = 2 + len + 1 + NOISE_TAG_LEN;
	return 0;
}

int
chan_send(struct chan *ch, uint8_t type, const void *body, size_t len)
{
	size_t n;
	int rc;

	if ((rc = chan_seal(ch, type, body, len, ch->tbuf, 2 + CHAN_MAX_FRAME, &n)) != 0)
		return rc;
	return write_all(ch->fd, ch->tbuf, n, 10000);
}

int
chan_write_raw(struct chan *ch, const uint8_t *p, size_t len, int timeout_ms)
{
	return write_all(ch->fd, p, len, timeout_ms);
}

uint64_t
chan_tx_mark(const struct chan *ch)
{
	return ch->keys->tx.n;
}

void
chan_tx_rewind(struct chan *ch, uint64_t mark)
{
	ch->keys->tx.n = mark;
}

int
chan_open(struct chan *ch, const uint8_t *frame, size_t flen, uint8_t *type,
    uint8_t *body, size_t cap, size_t *blen)
{
	size_t plen;
	int rc;

	if (flen < NOISE_TAG_LEN + 1)
		return VTPM_E_FORMAT;
	plen = flen - NOISE_TAG_LEN;
	if (plen - 1 > cap)
		return VTPM_E_TOOBIG;
	if ((rc = noise_cipher_decrypt(&ch->keys->rx, NULL, 0, frame, flen, ch->pbuf)) != 0)
		return rc;
	*type = ch->pbuf[0];
	if (plen > 1)
		memcpy(body, ch->pbuf + 1, plen - 1);
	*blen = plen - 1;
	sodium_memzero(ch->pbuf, plen);
	return 0;
}

int
chan_recv(struct chan *ch, int timeout_ms, uint8_t *type, uint8_t *body,
    size_t cap, size_t *blen)
{
	const uint8_t *frame;
	size_t flen;
	int rc;

	if ((rc = chan_wait_frame(ch, timeout_ms, &frame, &flen)) < 0)
		return rc;
	return chan_open(ch, frame, flen, type, body, cap, blen);
}
