/*
 * test_noise.c: transport/noise.c against the cacophony and snow Noise vectors
 * (NN, NK, IK, XX over 25519_ChaChaPoly_SHA256), then negative cases.
 * Trusts the vector files under tests/vectors/noise/ (or the directory given
 * as argv[1]); see SOURCE.txt there for where they come from.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "noise.h"

static int n_pass, n_fail;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
check(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		n_pass++;
		return;
	}
	n_fail++;
	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static int
is_zero(const uint8_t *p, size_t n)
{
	return sodium_is_zero(p, n);
}

static const char *
pattern_name(enum noise_pattern p)
{
	static const char *names[] = { "NN", "NK", "IK", "XX" };

	return names[p];
}

/* ---------------------------------------------------------------------------
 * Known answers from the vector files.
 */

static uint8_t buf_msg[NOISE_MAX_MSG + 1];
static uint8_t buf_pl[NOISE_MAX_MSG + 1];

struct vec_msg {
	uint8_t	*payload, *ct;
	size_t	 plen, ctlen;
};

/* 1 if present and decoded (exactly want bytes unless want is 0), 0 if absent, -1 if bad. */
static int
vec_hex(json_object *v, const char *key, uint8_t *out, size_t cap,
    size_t *len, size_t want)
{
	json_object *o;
	const char *s;
	size_t n;

	if (!json_object_object_get_ex(v, key, &o))
		return 0;
	if ((s = json_object_get_string(o)) == NULL ||
	    sodium_hex2bin(out, cap, s, strlen(s), NULL, &n, NULL) != 0 ||
	    (want != 0 && n != want))
		return -1;
	if (len != NULL)
		*len = n;
	return 1;
}

static int
vec_pattern(const char *name, enum noise_pattern *p)
{
	static const char *names[] = {
		"Noise_NN_25519_ChaChaPoly_SHA256",
		"Noise_NK_25519_ChaChaPoly_SHA256",
		"Noise_IK_25519_ChaChaPoly_SHA256",
		"Noise_XX_25519_ChaChaPoly_SHA256",
	};
	static const enum noise_pattern pats[] = {
		NOISE_NN, NOISE_NK, NOISE_IK, NOISE_XX,
	};
	size_t i;

	for (i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0) {
			*p = pats[i];
			return 1;
		}
	return 0;
}

/* A psk array that is present and not empty means a psk vector: not ours. */
static int
vec_has_psk(json_object *v)
{
	json_object *o;

	if (json_object_object_get_ex(v, "init_psks", &o) &&
	    json_object_array_length(o) > 0)
		return 1;
	if (json_object_object_get_ex(v, "resp_psks", &o) &&
	    json_object_array_length(o) > 0)
		return 1;
	return json_object_object_get_ex(v, "init_psk", &o) ||
	    json_object_object_get_ex(v, "resp_psk", &o);
}

static void
run_vector(const char *file, size_t idx, enum noise_pattern pat, json_object *v)
{
	uint8_t iprol[1024], rprol[1024], is[32], irs[32], rs_[32], rrs[32];
	uint8_t ie[32], re[32], hh[32], hi[32], hr[32], pub[32], got[32];
	size_t iprol_len = 0, rprol_len = 0, nmsg, i, outlen, plen;
	int has_is, has_irs, has_rs, has_rrs, has_re, has_hh, rc, rc2, ok;
	struct noise_hs *ini = NULL, *rsp = NULL;
	struct noise_cipher itx, irx, rtx, rrx;
	struct noise_hs *snd, *rcv;
	struct noise_cipher *ctx, *crx;
	json_object *msgs, *m;
	struct vec_msg vm;
	static uint8_t vpl[NOISE_MAX_MSG], vct[NOISE_MAX_MSG + 1];
	const char *pn = pattern_name(pat);

	memset(&itx, 0, sizeof(itx));
	irx = rtx = rrx = itx;
	has_is = vec_hex(v, "init_static", is, 32, NULL, 32);
	has_irs = vec_hex(v, "init_remote_static", irs, 32, NULL, 32);
	has_rs = vec_hex(v, "resp_static", rs_, 32, NULL, 32);
	has_rrs = vec_hex(v, "resp_remote_static", rrs, 32, NULL, 32);
	has_re = vec_hex(v, "resp_ephemeral", re, 32, NULL, 32);
	has_hh = vec_hex(v, "handshake_hash", hh, 32, NULL, 32);
	if (has_is < 0 || has_irs < 0 || has_rs < 0 || has_rrs < 0 ||
	    has_re < 0 || has_hh < 0 ||
	    vec_hex(v, "init_ephemeral", ie, 32, NULL, 32) != 1 ||
	    vec_hex(v, "init_prologue", iprol, sizeof(iprol), &iprol_len, 0) < 0 ||
	    vec_hex(v, "resp_prologue", rprol, sizeof(rprol), &rprol_len, 0) < 0 ||
	    !json_object_object_get_ex(v, "messages", &msgs)) {
		check(0, "%s #%zu %s: malformed vector", file, idx, pn);
		return;
	}

	ini = noise_hs_new(pat, 1, iprol, iprol_len, has_is ? is : NULL,
	    has_irs ? irs : NULL);
	rsp = noise_hs_new(pat, 0, rprol, rprol_len, has_rs ? rs_ : NULL,
	    has_rrs ? rrs : NULL);
	if (ini == NULL || rsp == NULL ||
	    noise_hs_set_ephemeral(ini, ie) != 0 ||
	    (has_re && noise_hs_set_ephemeral(rsp, re) != 0)) {
		check(0, "%s #%zu %s: cannot set up the handshake", file, idx, pn);
		goto out;
	}

	nmsg = json_object_array_length(msgs);
	for (i = 0; i < nmsg; i++) {
		m = json_object_array_get_idx(msgs, i);
		if (vec_hex(m, "payload", vpl, sizeof(vpl), &vm.plen, 0) != 1 ||
		    vec_hex(m, "ciphertext", vct, sizeof(vct), &vm.ctlen, 0) != 1) {
			check(0, "%s #%zu %s msg %zu: malformed", file, idx, pn, i);
			goto out;
		}
		vm.payload = vpl;
		vm.ct = vct;

		if (!noise_hs_is_done(ini)) {
			/* A handshake message: ours must equal theirs, byte for byte. */
			snd = i % 2 == 0 ? ini : rsp;
			rcv = i % 2 == 0 ? rsp : ini;
			ok = noise_hs_my_turn(snd) && !noise_hs_my_turn(rcv) &&
			    noise_hs_overhead(snd) + vm.plen == vm.ctlen;
			rc = noise_hs_write(snd, vm.payload, vm.plen, buf_msg,
			    sizeof(buf_msg), &outlen);
			ok = ok && rc == 0 && outlen == vm.ctlen &&
			    memcmp(buf_msg, vm.ct, outlen) == 0;
			/* The receiver reads the vector's bytes, not ours. */
			rc2 = noise_hs_read(rcv, vm.ct, vm.ctlen, buf_pl,
			    sizeof(buf_pl), &plen);
			ok = ok && rc2 == 0 && plen == vm.plen &&
			    memcmp(buf_pl, vm.payload, plen) == 0;
			check(ok, "%s #%zu %s handshake msg %zu: write %s, read %s",
			    file, idx, pn, i, vtpm_strerror(rc), vtpm_strerror(rc2));
			if (!ok)
				goto out;
			if (!noise_hs_is_done(ini) || !noise_hs_is_done(rsp))
				continue;

			/* Split(), and the handshake hash. */
			rc = noise_hs_split(ini, &itx, &irx, hi);
			rc2 = noise_hs_split(rsp, &rtx, &rrx, hr);
			ok = rc == 0 && rc2 == 0 && memcmp(hi, hr, 32) == 0 &&
			    (!has_hh || memcmp(hi, hh, 32) == 0) &&
			    memcmp(itx.k, rrx.k, 32) == 0 &&
			    memcmp(irx.k, rtx.k, 32) == 0;
			check(ok, "%s #%zu %s: split / handshake_hash%s", file,
			    idx, pn, has_hh ? "" : " (sides agree)");
			if (!ok)
				goto out;

			/* Each side learnt the other's static key, or none. */
			ok = 1;
			if (has_rs) {
				noise_pubkey_from_priv(rs_, pub);
				ok = ok && noise_hs_remote_static(ini, got) == 0 &&
				    memcmp(got, pub, 32) == 0;
			} else
				ok = ok && noise_hs_remote_static(ini, got) ==
				    VTPM_E_NOTFOUND;
			if (has_is) {
				noise_pubkey_from_priv(is, pub);
				ok = ok && noise_hs_remote_static(rsp, got) == 0 &&
				    memcmp(got, pub, 32) == 0;
			} else
				ok = ok && noise_hs_remote_static(rsp, got) ==
				    VTPM_E_NOTFOUND;
			check(ok, "%s #%zu %s: remote static keys", file, idx, pn);
			continue;
		}

		/* A transport message: initiator sends with c1, responder c2. */
		ctx = i % 2 == 0 ? &itx : &rtx;
		crx = i % 2 == 0 ? &rrx : &irx;
		rc = noise_cipher_encrypt(ctx, NULL, 0, vm.payload, vm.plen,
		    buf_msg);
		ok = rc == 0 && vm.plen + NOISE_TAG_LEN == vm.ctlen &&
		    memcmp(buf_msg, vm.ct, vm.ctlen) == 0;
		rc2 = vm.ctlen < NOISE_TAG_LEN ? VTPM_E_SHORT :
		    noise_cipher_decrypt(crx, NULL, 0, vm.ct, vm.ctlen, buf_pl);
		ok = ok && rc2 == 0 &&
		    memcmp(buf_pl, vm.payload, vm.ctlen - NOISE_TAG_LEN) == 0;
		check(ok, "%s #%zu %s transport msg %zu: encrypt %s, decrypt %s",
		    file, idx, pn, i, vtpm_strerror(rc), vtpm_strerror(rc2));
		if (!ok)
			goto out;
	}
	check(noise_hs_is_done(ini) && noise_hs_is_done(rsp),
	    "%s #%zu %s: vector ended before the handshake did", file, idx, pn);
 out:
	noise_cipher_wipe(&itx);
	noise_cipher_wipe(&irx);
	noise_cipher_wipe(&rtx);
	noise_cipher_wipe(&rrx);
	noise_hs_free(ini);
	noise_hs_free(rsp);
}

static void
run_file(const char *dir, const char *file)
{
	char path[4096];
	json_object *root, *vecs, *v, *o;
	enum noise_pattern p;
	size_t i, n, seen[4] = { 0, 0, 0, 0 };
	int ran = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((root = json_object_from_file(path)) == NULL ||
	    !json_object_object_get_ex(root, "vectors", &vecs)) {
		check(0, "%s: cannot read vectors (%s)", path,
		    json_util_get_last_err());
		json_object_put(root);
		return;
	}
	n = json_object_array_length(vecs);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(vecs, i);
		if (!json_object_object_get_ex(v, "protocol_name", &o) ||
		    !vec_pattern(json_object_get_string(o), &p) ||
		    vec_has_psk(v))
			continue;
		seen[p]++;
		ran++;
		run_vector(file, i, p, v);
	}
	/* A renamed or truncated file must not pass by running nothing. */
	check(ran == 4 && seen[0] == 1 && seen[1] == 1 && seen[2] == 1 &&
	    seen[3] == 1, "%s: expected one vector each of NN NK IK XX, ran %d",
	    file, ran);
	json_object_put(root);
}

/* ---------------------------------------------------------------------------
 * Handshakes with fresh keys, for the negative cases.
 */

struct pair {
	struct noise_hs	*ini, *rsp;
	uint8_t		 is[32], is_pub[32], rs[32], rs_pub[32];
};

static int
pair_new(struct pair *pr, enum noise_pattern p, const char *iprol,
    const char *rprol)
{
	int init_s = p == NOISE_IK || p == NOISE_XX;
	int resp_s = p != NOISE_NN;
	int init_rs = p == NOISE_NK || p == NOISE_IK;

	noise_keypair_generate(pr->is, pr->is_pub);
	noise_keypair_generate(pr->rs, pr->rs_pub);
	pr->ini = noise_hs_new(p, 1, (const uint8_t *)iprol, strlen(iprol),
	    init_s ? pr->is : NULL, init_rs ? pr->rs_pub : NULL);
	pr->rsp = noise_hs_new(p, 0, (const uint8_t *)rprol, strlen(rprol),
	    resp_s ? pr->rs : NULL, NULL);
	return pr->ini != NULL && pr->rsp != NULL ? 0 : -1;
}

static void
pair_free(struct pair *pr)
{
	noise_hs_free(pr->ini);
	noise_hs_free(pr->rsp);
	sodium_memzero(pr, sizeof(*pr));
}

struct drive_result {
	int	fail_msg;	/* -1 if the handshake completed */
	int	fail_rc;
	int	fail_read;	/* the failure was a read */
	int	zeroed;		/* payload buffer zeroed and plen 0 after it */
	size_t	mlen[3];
};

#define DRIVE_PLEN	24

/* Runs the handshake, flipping bit 0 of byte flip_pos of message flip_msg. */
static void
drive(struct pair *pr, int flip_msg, size_t flip_pos, struct drive_result *r)
{
	uint8_t payload[DRIVE_PLEN], msg[256], pl[256];
	struct noise_hs *snd, *rcv;
	size_t mlen, plen;
	int i, rc, bad_payload = -1;

	memset(r, 0, sizeof(*r));
	r->fail_msg = -1;
	for (i = 0; i < 3 && (!noise_hs_is_done(pr->ini) ||
	    !noise_hs_is_done(pr->rsp)); i++) {
		snd = i % 2 == 0 ? pr->ini : pr->rsp;
		rcv = i % 2 == 0 ? pr->rsp : pr->ini;
		memset(payload, 'a' + i, sizeof(payload));
		rc = noise_hs_write(snd, payload, sizeof(payload), msg,
		    sizeof(msg), &mlen);
		if (rc != 0) {
			r->fail_msg = i;
			r->fail_rc = rc;
			return;
		}
		r->mlen[i] = mlen;
		if (i == flip_msg && flip_pos < mlen)
			msg[flip_pos] ^= 0x01;
		memset(pl, 0xaa, sizeof(pl));
		plen = 99;
		rc = noise_hs_read(rcv, msg, mlen, pl, sizeof(pl), &plen);
		/*
		 * A payload sent before any key (NN's, XX's first) is not
		 * authenticated yet: a change shows in the next message. Note
		 * the first wrong payload; if the handshake then completes,
		 * that is the failure.
		 */
		if (rc == 0 && (plen != sizeof(payload) ||
		    memcmp(pl, payload, plen) != 0) && bad_payload < 0)
			bad_payload = i;
		if (rc != 0) {
			r->fail_msg = i;
			r->fail_rc = rc;
			r->fail_read = 1;
			r->zeroed = plen == 0 && is_zero(pl, sizeof(pl));
			return;
		}
	}
	if (bad_payload >= 0) {
		r->fail_msg = bad_payload;
		r->fail_rc = VTPM_E_FORMAT;
	}
}

static const enum noise_pattern all_patterns[] = {
	NOISE_NN, NOISE_NK, NOISE_IK, NOISE_XX
};

/* Every single-bit flip, in every byte of every handshake message, fails. */
static void
test_flipped_handshake(void)
{
	struct drive_result clean, r;
	struct pair pr;
	enum noise_pattern p;
	size_t k, pos, nmsgs;
	int j, keyed, ok, after;
	uint8_t rs[32];

	for (k = 0; k < 4; k++) {
		p = all_patterns[k];
		if (pair_new(&pr, p, "flip", "flip") != 0) {
			check(0, "flip %s: setup", pattern_name(p));
			continue;
		}
		drive(&pr, -1, 0, &clean);
		pair_free(&pr);
		check(clean.fail_msg == -1, "flip %s: clean handshake failed: %s",
		    pattern_name(p), vtpm_strerror(clean.fail_rc));
		nmsgs = p == NOISE_XX ? 3 : 2;
		for (j = 0; j < (int)nmsgs; j++) {
			/* Only NN's and XX's first message carries no tag. */
			keyed = j > 0 || p == NOISE_NK || p == NOISE_IK;
			ok = 1;
			for (pos = 0; pos < clean.mlen[j] && ok; pos++) {
				if (pair_new(&pr, p, "flip", "flip") != 0) {
					ok = 0;
					break;
				}
				drive(&pr, j, pos, &r);
				/* The failed side is dead and released nothing. */
				after = 1;
				if (r.fail_read) {
					struct noise_hs *dead = r.fail_msg % 2 == 0 ?
					    pr.rsp : pr.ini;
					uint8_t b[64];
					size_t bl;

					after = noise_hs_write(dead, NULL, 0, b,
					    sizeof(b), &bl) == VTPM_E_PROTO &&
					    noise_hs_read(dead, b, sizeof(b), NULL,
					    0, &bl) == VTPM_E_PROTO &&
					    noise_hs_remote_static(dead, rs) ==
					    VTPM_E_NOTFOUND &&
					    !noise_hs_is_done(dead);
				}
				ok = r.fail_read && r.fail_rc == VTPM_E_AUTH &&
				    r.zeroed && after &&
				    (r.fail_msg == j ||
				    (!keyed && r.fail_msg == j + 1));
				if (!ok)
					printf("FAIL: flip %s msg %d byte %zu: failed "
					    "at msg %d (%s)\n", pattern_name(p), j,
					    pos, r.fail_msg,
					    vtpm_strerror(r.fail_rc));
				pair_free(&pr);
			}
			check(ok, "flip %s msg %d: every flipped byte rejected",
			    pattern_name(p), j);
		}
	}
}

/* Completes an XX handshake and splits it. */
static int
xx_session(struct noise_cipher *itx, struct noise_cipher *irx,
    struct noise_cipher *rtx, struct noise_cipher *rrx)
{
	struct drive_result r;
	struct pair pr;
	int rc = -1;

	if (pair_new(&pr, NOISE_XX, "", "") != 0)
		goto out;
	drive(&pr, -1, 0, &r);
	if (r.fail_msg == -1 && noise_hs_split(pr.ini, itx, irx, NULL) == 0 &&
	    noise_hs_split(pr.rsp, rtx, rrx, NULL) == 0)
		rc = 0;
 out:
	pair_free(&pr);
	return rc;
}

/* Transport: the nonce must match, replays fail, tags and ad are checked. */
static void
test_transport_nonce(void)
{
	struct noise_cipher itx, irx, rtx, rrx, save;
	uint8_t c0[64 + 16], c1[64 + 16], pt[64], out[64];
	int ok;

	if (xx_session(&itx, &irx, &rtx, &rrx) != 0) {
		check(0, "transport: no session");
		return;
	}
	memset(pt, 'x', sizeof(pt));
	ok = noise_cipher_encrypt(&itx, NULL, 0, pt, sizeof(pt), c0) == 0 &&
	    noise_cipher_encrypt(&itx, NULL, 0, pt, sizeof(pt), c1) == 0 &&
	    itx.n == 2;
	check(ok, "transport: encrypt advances n");

	/* message 1 while the receiver expects nonce 0 */
	memset(out, 0xaa, sizeof(out));
	ok = noise_cipher_decrypt(&rrx, NULL, 0, c1, sizeof(c1), out) ==
	    VTPM_E_AUTH && rrx.n == 0 && is_zero(out, sizeof(out));
	check(ok, "transport: wrong nonce rejected, n kept, output zeroed");

	ok = noise_cipher_decrypt(&rrx, NULL, 0, c0, sizeof(c0), out) == 0 &&
	    memcmp(out, pt, sizeof(pt)) == 0 &&
	    noise_cipher_decrypt(&rrx, NULL, 0, c1, sizeof(c1), out) == 0 &&
	    rrx.n == 2;
	check(ok, "transport: in-order messages accepted");

	ok = noise_cipher_decrypt(&rrx, NULL, 0, c1, sizeof(c1), out) ==
	    VTPM_E_AUTH && rrx.n == 2;
	check(ok, "transport: replay rejected");

	/* a flipped tag byte, a wrong ad, the wrong direction's key */
	save = rrx;
	ok = noise_cipher_encrypt(&itx, (const uint8_t *)"ad", 2, pt,
	    sizeof(pt), c0) == 0;
	c0[sizeof(c0) - 1] ^= 0x80;
	ok = ok && noise_cipher_decrypt(&rrx, (const uint8_t *)"ad", 2, c0,
	    sizeof(c0), out) == VTPM_E_AUTH;
	c0[sizeof(c0) - 1] ^= 0x80;
	ok = ok && noise_cipher_decrypt(&rrx, (const uint8_t *)"da", 2, c0,
	    sizeof(c0), out) == VTPM_E_AUTH;
	ok = ok && noise_cipher_decrypt(&irx, (const uint8_t *)"ad", 2, c0,
	    sizeof(c0), out) == VTPM_E_AUTH;
	ok = ok && noise_cipher_decrypt(&rrx, (const uint8_t *)"ad", 2, c0,
	    sizeof(c0), out) == 0 && rrx.n == save.n + 1;
	check(ok, "transport: tag and ad checked, directions separate");

	/* in place, both ways */
	memcpy(c0, pt, sizeof(pt));
	ok = noise_cipher_encrypt(&rtx, NULL, 0, c0, sizeof(pt), c0) == 0 &&
	    noise_cipher_decrypt(&irx, NULL, 0, c0, sizeof(c0), c0) == 0 &&
	    memcmp(c0, pt, sizeof(pt)) == 0;
	check(ok, "transport: in-place encrypt and decrypt");

	/* sizes: empty payload, short, too big */
	ok = noise_cipher_encrypt(&rtx, NULL, 0, NULL, 0, c0) == 0 &&
	    noise_cipher_decrypt(&irx, NULL, 0, c0, NOISE_TAG_LEN, NULL) == 0 &&
	    noise_cipher_decrypt(&irx, NULL, 0, c0, NOISE_TAG_LEN - 1, out) ==
	    VTPM_E_SHORT &&
	    noise_cipher_encrypt(&rtx, NULL, 0, buf_pl,
	    NOISE_MAX_MSG - NOISE_TAG_LEN + 1, buf_msg) == VTPM_E_TOOBIG &&
	    noise_cipher_decrypt(&irx, NULL, 0, buf_msg, NOISE_MAX_MSG + 1,
	    buf_pl) == VTPM_E_TOOBIG;
	memset(buf_pl, 0x5a, NOISE_MAX_MSG - NOISE_TAG_LEN);
	ok = ok && noise_cipher_encrypt(&rtx, NULL, 0, buf_pl,
	    NOISE_MAX_MSG - NOISE_TAG_LEN, buf_msg) == 0 &&
	    noise_cipher_decrypt(&irx, NULL, 0, buf_msg, NOISE_MAX_MSG,
	    buf_msg) == 0 &&
	    memcmp(buf_msg, buf_pl, NOISE_MAX_MSG - NOISE_TAG_LEN) == 0;
	check(ok, "transport: empty, short, maximum and oversized messages");

	/* nonce 2^64-1 is reserved */
	itx.n = UINT64_MAX - 1;
	rrx.n = UINT64_MAX - 1;
	ok = noise_cipher_encrypt(&itx, NULL, 0, pt, sizeof(pt), c0) == 0 &&
	    noise_cipher_decrypt(&rrx, NULL, 0, c0, sizeof(c0), out) == 0 &&
	    itx.n == UINT64_MAX &&
	    noise_cipher_encrypt(&itx, NULL, 0, pt, sizeof(pt), c1) ==
	    VTPM_E_CRYPTO && itx.n == UINT64_MAX &&
	    noise_cipher_decrypt(&rrx, NULL, 0, c0, sizeof(c0), out) ==
	    VTPM_E_CRYPTO;
	check(ok, "transport: nonce 2^64-1 refused");

	/* a wiped or keyless cipher refuses work */
	noise_cipher_wipe(&itx);
	ok = itx.has_key == 0 && itx.n == 0 && is_zero(itx.k, 32) &&
	    noise_cipher_encrypt(&itx, NULL, 0, pt, sizeof(pt), c0) ==
	    VTPM_E_INVAL &&
	    noise_cipher_decrypt(&itx, NULL, 0, c0, sizeof(c0), out) ==
	    VTPM_E_INVAL;
	check(ok, "transport: a wiped cipher refuses to work");

	noise_cipher_wipe(&irx);
	noise_cipher_wipe(&rtx);
	noise_cipher_wipe(&rrx);
}

/* Low-order public keys: DH gives all zeros and the handshake stops. */
static void
test_low_order(void)
{
	/* 0, 1, and a point of order 8 (curve25519 small-order list) */
	static const uint8_t bad[3][32] = {
		{ 0 },
		{ 1 },
		{ 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56,
		  0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb,
		  0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
		  0xb8, 0x00 },
	};
	uint8_t msg[256], pl[64], s[32], s_pub[32];
	struct noise_hs *hs, *ini;
	size_t i, len, plen;
	int ok, rc;

	noise_keypair_generate(s, s_pub);
	for (i = 0; i < 3; i++) {
		/* NK responder: -> e, es computes DH(s, re) on read */
		hs = noise_hs_new(NOISE_NK, 0, NULL, 0, s, NULL);
		memset(msg, 0, sizeof(msg));
		memcpy(msg, bad[i], 32);
		memset(pl, 0xaa, sizeof(pl));
		rc = noise_hs_read(hs, msg, 32 + 16, pl, sizeof(pl), &plen);
		ok = rc == VTPM_E_CRYPTO && plen == 0 && is_zero(pl, sizeof(pl)) &&
		    noise_hs_read(hs, msg, 48, pl, sizeof(pl), &plen) ==
		    VTPM_E_PROTO;
		noise_hs_free(hs);

		/* NN responder: the read has no DH, its reply's ee fails */
		hs = noise_hs_new(NOISE_NN, 0, NULL, 0, NULL, NULL);
		ok = ok && noise_hs_read(hs, msg, 32, pl, sizeof(pl), &plen) == 0 &&
		    noise_hs_write(hs, NULL, 0, msg, sizeof(msg), &len) ==
		    VTPM_E_CRYPTO && len == 0 && is_zero(msg, sizeof(msg));
		noise_hs_free(hs);

		/* NK initiator given a low-order responder key: es fails on write */
		hs = noise_hs_new(NOISE_NK, 1, NULL, 0, NULL, bad[i]);
		ok = ok && noise_hs_write(hs, NULL, 0, msg, sizeof(msg), &len) ==
		    VTPM_E_CRYPTO && !noise_hs_my_turn(hs);
		noise_hs_free(hs);

		/* XX initiator reading <- e, ee, s, es with a low-order e */
		ini = noise_hs_new(NOISE_XX, 1, NULL, 0, s, NULL);
		ok = ok && noise_hs_write(ini, NULL, 0, msg, sizeof(msg), &len) == 0;
		memset(msg, 0, sizeof(msg));
		memcpy(msg, bad[i], 32);
		ok = ok && noise_hs_read(ini, msg, 32 + 48 + 16, pl, sizeof(pl),
		    &plen) == VTPM_E_CRYPTO;
		noise_hs_free(ini);
		check(ok, "low-order key %zu: DH refused", i);
	}
}

/* Exact sizes: short, long, and payload buffers that are too small. */
static void
test_sizes(void)
{
	struct pair pr;
	size_t k, len, plen, over;
	int ok, rc;

	for (k = 0; k < 4; k++) {
		enum noise_pattern p = all_patterns[k];
		const char *pn = pattern_name(p);

		/* read: one byte short, one too many for the buffer, over 64 KiB */
		ok = pair_new(&pr, p, "", "") == 0 &&
		    noise_hs_write(pr.ini, (const uint8_t *)"12345678", 8,
		    buf_msg, sizeof(buf_msg), &len) == 0;
		ok = ok && len == noise_hs_overhead(pr.rsp) + 8 &&
		    noise_hs_read(pr.rsp, buf_msg, len - 9, buf_pl, 64, &plen) ==
		    VTPM_E_SHORT;
		pair_free(&pr);
		check(ok, "sizes %s: message shorter than its tokens", pn);

		ok = pair_new(&pr, p, "", "") == 0 &&
		    noise_hs_write(pr.ini, (const uint8_t *)"12345678", 8,
		    buf_msg, sizeof(buf_msg), &len) == 0 &&
		    noise_hs_read(pr.rsp, buf_msg, len, buf_pl, 7, &plen) ==
		    VTPM_E_TOOBIG && is_zero(buf_pl, 7);
		pair_free(&pr);
		check(ok, "sizes %s: payload larger than the buffer", pn);

		ok = pair_new(&pr, p, "", "") == 0 &&
		    noise_hs_read(pr.rsp, buf_msg, NOISE_MAX_MSG + 1, buf_pl,
		    sizeof(buf_pl), &plen) == VTPM_E_TOOBIG;
		pair_free(&pr);
		check(ok, "sizes %s: message over %d bytes", pn, NOISE_MAX_MSG);

		/* A keyed message with a byte too many fails its tag (or, unkeyed,
		 * only the next one): covered by the flip test; here the writer. */
		ok = pair_new(&pr, p, "", "") == 0;
		over = ok ? noise_hs_overhead(pr.ini) : 0;
		ok = ok && noise_hs_write(pr.ini, buf_pl, NOISE_MAX_MSG - over + 1,
		    buf_msg, sizeof(buf_msg), &len) == VTPM_E_TOOBIG &&
		    noise_hs_write(pr.ini, buf_pl, 8, buf_msg, over + 7, &len) ==
		    VTPM_E_TOOBIG && len == 0 && noise_hs_my_turn(pr.ini);
		/* unchanged: the same handshake still completes at full size */
		randombytes_buf(buf_pl, NOISE_MAX_MSG - over);
		rc = ok ? noise_hs_write(pr.ini, buf_pl, NOISE_MAX_MSG - over,
		    buf_msg, sizeof(buf_msg), &len) : -1;
		ok = ok && rc == 0 && len == NOISE_MAX_MSG;
		ok = ok && noise_hs_read(pr.rsp, buf_msg, len, buf_msg + 0,
		    0, &plen) == VTPM_E_TOOBIG;
		pair_free(&pr);
		check(ok, "sizes %s: writer refuses oversize, then a 64 KiB "
		    "message", pn);
	}
}

/* Round trips with fresh keys and the largest payloads. */
static void
test_roundtrip(void)
{
	static uint8_t pl[NOISE_MAX_MSG];
	struct noise_cipher itx, irx, rtx, rrx;
	uint8_t hi[32], hr[32], got[32];
	struct noise_hs *snd, *rcv;
	struct pair pr;
	size_t k, len, plen, over;
	int i, ok;

	for (k = 0; k < 4; k++) {
		enum noise_pattern p = all_patterns[k];

		ok = pair_new(&pr, p, "prologue", "prologue") == 0;
		for (i = 0; ok && !noise_hs_is_done(pr.ini); i++) {
			snd = i % 2 == 0 ? pr.ini : pr.rsp;
			rcv = i % 2 == 0 ? pr.rsp : pr.ini;
			over = noise_hs_overhead(snd);
			randombytes_buf(pl, NOISE_MAX_MSG - over);
			ok = noise_hs_overhead(rcv) == over &&
			    noise_hs_write(snd, pl, NOISE_MAX_MSG - over, buf_msg,
			    sizeof(buf_msg), &len) == 0 && len == NOISE_MAX_MSG &&
			    noise_hs_read(rcv, buf_msg, len, buf_pl,
			    sizeof(buf_pl), &plen) == 0 &&
			    plen == NOISE_MAX_MSG - over &&
			    memcmp(buf_pl, pl, plen) == 0;
		}
		ok = ok && noise_hs_is_done(pr.rsp) && noise_hs_overhead(pr.ini) == 0 &&
		    noise_hs_split(pr.ini, &itx, &irx, hi) == 0 &&
		    noise_hs_split(pr.rsp, &rtx, &rrx, hr) == 0 &&
		    memcmp(hi, hr, 32) == 0 &&
		    noise_hs_split(pr.ini, &itx, &irx, hi) == VTPM_E_PROTO;
		if (p == NOISE_XX || p == NOISE_IK)
			ok = ok && noise_hs_remote_static(pr.rsp, got) == 0 &&
			    memcmp(got, pr.is_pub, 32) == 0;
		if (p != NOISE_NN)
			ok = ok && noise_hs_remote_static(pr.ini, got) == 0 &&
			    memcmp(got, pr.rs_pub, 32) == 0;
		ok = ok && noise_cipher_encrypt(&rtx, NULL, 0, pl, 100, buf_msg) == 0 &&
		    noise_cipher_decrypt(&irx, NULL, 0, buf_msg, 116, buf_pl) == 0 &&
		    memcmp(buf_pl, pl, 100) == 0;
		pair_free(&pr);
		noise_cipher_wipe(&itx);
		noise_cipher_wipe(&irx);
		noise_cipher_wipe(&rtx);
		noise_cipher_wipe(&rrx);
		check(ok, "roundtrip %s: random keys, 64 KiB handshake messages",
		    pattern_name(p));
	}
}

/* Calls out of order, wrong key sets, a prologue mismatch. */
static void
test_state_machine(void)
{
	uint8_t s[32], s_pub[32], e[32], rs[32], msg[256], pl[64];
	struct drive_result r;
	struct noise_hs *hs;
	struct noise_cipher a, b;
	struct pair pr;
	size_t len, plen;
	int ok;

	noise_keypair_generate(s, s_pub);
	noise_keypair_generate(e, rs);

	/* the key combinations each pattern allows, and no others */
	ok = noise_hs_new(NOISE_NN, 1, NULL, 0, s, NULL) == NULL &&
	    noise_hs_new(NOISE_NN, 0, NULL, 0, NULL, s_pub) == NULL &&
	    noise_hs_new(NOISE_NK, 1, NULL, 0, NULL, NULL) == NULL &&
	    noise_hs_new(NOISE_NK, 1, NULL, 0, s, s_pub) == NULL &&
	    noise_hs_new(NOISE_NK, 0, NULL, 0, NULL, NULL) == NULL &&
	    noise_hs_new(NOISE_IK, 1, NULL, 0, s, NULL) == NULL &&
	    noise_hs_new(NOISE_IK, 1, NULL, 0, NULL, s_pub) == NULL &&
	    noise_hs_new(NOISE_IK, 0, NULL, 0, s, s_pub) == NULL &&
	    noise_hs_new(NOISE_XX, 1, NULL, 0, s, s_pub) == NULL &&
	    noise_hs_new(NOISE_XX, 0, NULL, 0, NULL, NULL) == NULL &&
	    noise_hs_new((enum noise_pattern)7, 1, NULL, 0, NULL, NULL) == NULL &&
	    noise_hs_new(NOISE_NN, 1, NULL, 3, NULL, NULL) == NULL;
	check(ok, "state: wrong key sets refused by noise_hs_new");

	/* turns, split too early, remote static not yet known */
	hs = noise_hs_new(NOISE_XX, 0, NULL, 0, s, NULL);
	ok = hs != NULL && !noise_hs_my_turn(hs) &&
	    noise_hs_write(hs, NULL, 0, msg, sizeof(msg), &len) == VTPM_E_PROTO &&
	    noise_hs_split(hs, &a, &b, NULL) == VTPM_E_PROTO &&
	    noise_hs_remote_static(hs, rs) == VTPM_E_NOTFOUND &&
	    noise_hs_set_ephemeral(hs, e) == 0 &&
	    noise_hs_set_ephemeral(hs, e) == VTPM_E_PROTO;
	noise_hs_free(hs);
	hs = noise_hs_new(NOISE_NN, 1, NULL, 0, NULL, NULL);
	ok = ok && hs != NULL && noise_hs_my_turn(hs) &&
	    noise_hs_read(hs, msg, 48, pl, sizeof(pl), &plen) == VTPM_E_PROTO &&
	    noise_hs_write(hs, NULL, 0, msg, sizeof(msg), &len) == 0 &&
	    noise_hs_set_ephemeral(hs, e) == VTPM_E_PROTO &&
	    noise_hs_write(hs, NULL, 0, msg, sizeof(msg), &len) == VTPM_E_PROTO;
	noise_hs_free(hs);
	check(ok, "state: out-of-turn calls and early split refused");

	/* different prologues: the first keyed message fails */
	ok = pair_new(&pr, NOISE_NN, "one", "two") == 0;
	if (ok)
		drive(&pr, -1, 0, &r);
	ok = ok && r.fail_msg == 1 && r.fail_rc == VTPM_E_AUTH && r.zeroed;
	pair_free(&pr);
	check(ok, "state: prologue mismatch detected");

	/* IK initiator with the wrong responder key: responder cannot read */
	ok = pair_new(&pr, NOISE_IK, "", "") == 0;
	if (ok) {
		noise_hs_free(pr.ini);
		pr.ini = noise_hs_new(NOISE_IK, 1, NULL, 0, pr.is, s_pub);
		drive(&pr, -1, 0, &r);
		ok = r.fail_msg == 0 && r.fail_rc == VTPM_E_AUTH &&
		    noise_hs_remote_static(pr.rsp, rs) == VTPM_E_NOTFOUND;
	}
	pair_free(&pr);
	check(ok, "state: IK to the wrong responder key fails");

	noise_hs_free(NULL);
	noise_cipher_wipe(NULL);
}

int
main(int argc, char *argv[])
{
	const char *dir = argc > 1 ? argv[1] : "tests/vectors/noise";

	if (sodium_init() < 0) {
		printf("FAIL: sodium_init\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	run_file(dir, "cacophony.txt");
	run_file(dir, "snow.txt");
	test_flipped_handshake();
	test_transport_nonce();
	test_low_order();
	test_sizes();
	test_roundtrip();
	test_state_machine();
	printf("noise: %d passed, %d failed\n", n_pass, n_fail);
	return n_fail == 0 ? 0 : 1;
}
