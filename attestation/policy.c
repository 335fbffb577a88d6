/*
 * policy.c: the attestation policy (docs/POLICY.md): a line-based file of
 * [defaults], [instance NAME] and [enrol TEMPLATE] sections that maps
 * verified claims to instance names. The file is read byte by byte with the
 * cursor; anything unknown, repeated or out of range is an error naming its
 * line. Matching trusts only claims that attest_*_verify() returned.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest_int.h"
#include "cursor.h"

#define POLICY_MAX_FILE		(1 << 20)
#define POLICY_MAX_LINE		1024
#define POLICY_MAX_RULES	4096
#define POLICY_MAX_VALUES	256
#define NAME_MAX_LEN		63

/* Match keys: the claim must equal one of the listed values. */
enum mkey {
	M_MEASUREMENT, M_HOST_DATA, M_MRCONFIGID, M_MROWNER, M_MROWNERCONFIG,
	M_RTMR0, M_RTMR1, M_RTMR2, M_RTMR3, M_ID_KEY, M_AUTHOR_KEY, M_FAMILY,
	M_IMAGE, M_CHIP_ID, M_NKEYS
};
static const struct { const char *name; size_t len; } mkeys[M_NKEYS] = {
	[M_MEASUREMENT] = { "measurement", 48 },
	[M_HOST_DATA] = { "host-data", 32 },
	[M_MRCONFIGID] = { "mrconfigid", 48 },
	[M_MROWNER] = { "mrowner", 48 },
	[M_MROWNERCONFIG] = { "mrownerconfig", 48 },
	[M_RTMR0] = { "rtmr0", 48 },
	[M_RTMR1] = { "rtmr1", 48 },
	[M_RTMR2] = { "rtmr2", 48 },
	[M_RTMR3] = { "rtmr3", 48 },
	[M_ID_KEY] = { "id-key-digest", 48 },
	[M_AUTHOR_KEY] = { "author-key-digest", 48 },
	[M_FAMILY] = { "family-id", 16 },
	[M_IMAGE] = { "image-id", 16 },
	[M_CHIP_ID] = { "chip-id", 64 },
};

enum { TCB_BL, TCB_TEE, TCB_SNP, TCB_UCODE, TCB_FMC, TCB_N };
static const char *const tcb_names[TCB_N] = { "bootloader", "tee", "snp", "microcode", "fmc" };

#define NSTATUS 8
static const char *const tdx_statuses[NSTATUS] = {
	"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
	"ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded",
	"Revoked", "NoMatchingLevel",
};

/* Requirements: -1 means "not set here" (inherit). */
struct pol_req {
	int	debug;			/* 0 forbid, 1 allow */
	int	vmpl_mask;		/* bit n: VMPL n */
	int	signer_mask;		/* bit ATTEST_SIGNER_* */
	int	migration;		/* 0 forbid, 1 allow */
	int	test_root;		/* 0 forbid, 1 allow */
	int	min_tcb[TCB_N];
	int64_t	min_guest_svn;
	int	tdx_tcb_mask;		/* bit i: tdx_statuses[i] */
	int	tdx_qe_mask;
};

struct pol_vals {
	uint8_t	(*v)[64];
	size_t	n;
};

struct pol_rule {
	char	name[NAME_MAX_LEN + 1];	/* a name or, for enrol, a template */
	int	enrol;
	int	line;
	int	tee_mask;		/* bit ATTEST_TEE_*; 0 = any */
	struct pol_vals m[M_NKEYS];
	struct pol_req req;
};

struct attest_policy {
	struct pol_req	defaults;
	struct pol_rule	*rules;
	size_t		nrules;
	size_t		cap;
};

static void
req_unset(struct pol_req *r)
{
	int i;

	r->debug = r->vmpl_mask = r->signer_mask = r->migration = r->test_root = -1;
	for (i = 0; i < TCB_N; i++)
		r->min_tcb[i] = -1;
	r->min_guest_svn = -1;
	r->tdx_tcb_mask = r->tdx_qe_mask = -1;
}

void
attest_policy_free(struct attest_policy *p)
{
	size_t i;
	int k;

	if (p == NULL)
		return;
	for (i = 0; i < p->nrules; i++)
		for (k = 0; k < M_NKEYS; k++)
			free(p->rules[i].m[k].v);
	free(p->rules);
	free(p);
}

size_t
attest_policy_nrules(const struct attest_policy *p)
{
	return p->nrules;
}

static int
name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

/* A template: name characters and {key:N} with key a match key, 1 <= N <= 2*len. */
static int
template_ok(const char *s)
{
	char key[32];
	const char *p, *close;
	size_t klen;
	int k, n, any = 0;

	if (strlen(s) == 0 || strlen(s) > NAME_MAX_LEN)
		return 0;
	for (p = s; *p; p++) {
		if (*p == '{') {
			if ((close = strchr(p, '}')) == NULL || (size_t)(close - p) > sizeof(key))
				return 0;
			if (sscanf(p + 1, "%31[a-z0-9-]:%d", key, &n) != 2)
				return 0;
			klen = strlen(key);
			if (p[1 + klen] != ':')
				return 0;
			for (k = 0; k < M_NKEYS; k++)
				if (strcmp(key, mkeys[k].name) == 0)
					break;
			if (k == M_NKEYS || n < 1 || (size_t)n > 2 * mkeys[k].len)
				return 0;
			p = close;
			any = 1;
		} else if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') {
			return 0;
		}
	}
	return any;	/* an enrol rule must vary its name with the claims */
}

/* Splits a value into tokens separated by spaces, tabs or commas. */
static int
tokens(char *val, char **tok, int max)
{
	char *save = NULL, *t;
	int n = 0;

	for (t = strtok_r(val, " \t,", &save); t != NULL; t = strtok_r(NULL, " \t,", &save)) {
		if (n == max)
			return -1;
		tok[n++] = t;
	}
	return n;
}

struct pstate {
	const char	*name;
	int		line;
	char		*why;
	size_t		whylen;
};

#define PERR(ps, ...) perr(ps, __VA_ARGS__)
static int perr(struct pstate *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int
perr(struct pstate *ps, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return attest_fail(ps->why, ps->whylen, VTPM_E_FORMAT, "%s:%d: %s", ps->name, ps->line, msg);
}

static int
parse_req(struct pstate *ps, struct pol_req *r, const char *key, char **tok, int nt)
{
	int i, j, v;
	char *end;
	long l;

	if (strcmp(key, "debug") == 0 || strcmp(key, "migration-agent") == 0 ||
	    strcmp(key, "test-root") == 0) {
		int *slot = key[0] == 'd' ? &r->debug : key[0] == 'm' ? &r->migration : &r->test_root;

		if (*slot != -1)
			return PERR(ps, "%s given twice", key);
		if (nt != 1 || (strcmp(tok[0], "forbid") != 0 && strcmp(tok[0], "allow") != 0))
			return PERR(ps, "%s: want forbid or allow", key);
		*slot = strcmp(tok[0], "allow") == 0;
		return 0;
	}
	if (strcmp(key, "vmpl") == 0) {
		if (r->vmpl_mask != -1)
			return PERR(ps, "vmpl given twice");
		r->vmpl_mask = 0;
		for (i = 0; i < nt; i++) {
			if (strlen(tok[i]) != 1 || tok[i][0] < '0' || tok[i][0] > '3')
				return PERR(ps, "vmpl: '%s' is not 0..3", tok[i]);
			r->vmpl_mask |= 1 << (tok[i][0] - '0');
		}
		if (nt == 0)
			return PERR(ps, "vmpl: no value");
		return 0;
	}
	if (strcmp(key, "signer") == 0) {
		if (r->signer_mask != -1)
			return PERR(ps, "signer given twice");
		r->signer_mask = 0;
		for (i = 0; i < nt; i++) {
			if (strcmp(tok[i], "vcek") == 0)
				r->signer_mask |= 1 << ATTEST_SIGNER_VCEK;
			else if (strcmp(tok[i], "vlek") == 0)
				r->signer_mask |= 1 << ATTEST_SIGNER_VLEK;
			else if (strcmp(tok[i], "pck") == 0)
				r->signer_mask |= 1 << ATTEST_SIGNER_PCK;
			else
				return PERR(ps, "signer: '%s' is not vcek, vlek or pck", tok[i]);
		}
		if (nt == 0)
			return PERR(ps, "signer: no value");
		return 0;
	}
	if (strcmp(key, "min-tcb") == 0) {
		if (nt == 0)
			return PERR(ps, "min-tcb: no value");
		for (i = 0; i < nt; i++) {
			char *eq = strchr(tok[i], '=');

			if (eq == NULL)
				return PERR(ps, "min-tcb: want COMPONENT=N, got '%s'", tok[i]);
			*eq = '\0';
			for (j = 0; j < TCB_N; j++)
				if (strcmp(tok[i], tcb_names[j]) == 0)
					break;
			if (j == TCB_N)
				return PERR(ps, "min-tcb: unknown component '%s' (bootloader, tee, "
				    "snp, microcode, fmc)", tok[i]);
			errno = 0;
			l = strtol(eq + 1, &end, 0);
			if (errno != 0 || *end != '\0' || end == eq + 1 || l < 0 || l > 255)
				return PERR(ps, "min-tcb: %s value is not 0..255", tok[i]);
			if (r->min_tcb[j] != -1)
				return PERR(ps, "min-tcb: %s given twice", tok[i]);
			r->min_tcb[j] = (int)l;
		}
		return 0;
	}
	if (strcmp(key, "min-guest-svn") == 0) {
		if (r->min_guest_svn != -1)
			return PERR(ps, "min-guest-svn given twice");
		errno = 0;
		l = nt == 1 ? strtol(tok[0], &end, 0) : -1;
		if (nt != 1 || errno != 0 || *end != '\0' || l < 0 || l > 0xFFFFFFFFL)
			return PERR(ps, "min-guest-svn: want one number 0..2^32-1");
		r->min_guest_svn = l;
		return 0;
	}
	if (strcmp(key, "tdx-tcb-status") == 0 || strcmp(key, "tdx-qe-status") == 0) {
		int *slot = key[4] == 't' ? &r->tdx_tcb_mask : &r->tdx_qe_mask;

		if (*slot != -1)
			return PERR(ps, "%s given twice", key);
		*slot = 0;
		for (i = 0; i < nt; i++) {
			for (v = 0; v < NSTATUS; v++)
				if (strcmp(tok[i], tdx_statuses[v]) == 0)
					break;
			if (v == NSTATUS)
				return PERR(ps, "%s: unknown status '%s'", key, tok[i]);
			*slot |= 1 << v;
		}
		if (nt == 0)
			return PERR(ps, "%s: no value", key);
		return 0;
	}
	return 1;	/* not a requirement key */
}

static int
parse_match(struct pstate *ps, struct pol_rule *r, const char *key, char **tok, int nt)
{
	struct pol_vals *pv;
	uint8_t (*nv)[64];
	int k, i;

	if (strcmp(key, "tee") == 0) {
		if (r->tee_mask != 0)
			return PERR(ps, "tee given twice");
		for (i = 0; i < nt; i++) {
			if (strcmp(tok[i], "snp") == 0)
				r->tee_mask |= 1 << ATTEST_TEE_SNP;
			else if (strcmp(tok[i], "tdx") == 0)
				r->tee_mask |= 1 << ATTEST_TEE_TDX;
			else
				return PERR(ps, "tee: '%s' is not snp or tdx", tok[i]);
		}
		if (nt == 0)
			return PERR(ps, "tee: no value");
		return 0;
	}
	for (k = 0; k < M_NKEYS; k++)
		if (strcmp(key, mkeys[k].name) == 0)
			break;
	if (k == M_NKEYS)
		return 1;
	if (nt == 0)
		return PERR(ps, "%s: no value", key);
	pv = &r->m[k];
	if (pv->n + (size_t)nt > POLICY_MAX_VALUES)
		return PERR(ps, "%s: more than %d values", key, POLICY_MAX_VALUES);
	if ((nv = realloc(pv->v, (pv->n + (size_t)nt) * sizeof(*nv))) == NULL)
		return attest_fail(ps->why, ps->whylen, VTPM_E_NOMEM, "out of memory");
	pv->v = nv;
	for (i = 0; i < nt; i++) {
		memset(pv->v[pv->n], 0, 64);
		if (attest_hex_decode(tok[i], pv->v[pv->n], mkeys[k].len) != 0)
			return PERR(ps, "%s: want %zu hex digits", key, 2 * mkeys[k].len);
		pv->n++;
	}
	return 0;
}

static int
parse_line(struct pstate *ps, struct attest_policy *p, char *line, int *seen_header,
    struct pol_req **cur_req, struct pol_rule **cur_rule, int *in_defaults_seen)
{
	char *s = line, *e, *eq, *key, *val, *tok[POLICY_MAX_VALUES];
	size_t n;
	int nt, rc;

	if ((e = strchr(s, '#')) != NULL)
		*e = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	if (n == 0)
		return 0;
	if (!*seen_header) {
		if (strcmp(s, "vtpmd-policy 1") != 0)
			return PERR(ps, "the first line must be 'vtpmd-policy 1'");
		*seen_header = 1;
		return 0;
	}
	if (s[0] == '[') {
		char kind[16], name[NAME_MAX_LEN + 2];
		struct pol_rule *r;

		if (s[n - 1] != ']')
			return PERR(ps, "section header without ]");
		s[n - 1] = '\0';
		if (strcmp(s + 1, "defaults") == 0) {
			if (*in_defaults_seen)
				return PERR(ps, "[defaults] given twice");
			if (p->nrules > 0)
				return PERR(ps, "[defaults] must come before the rules");
			*in_defaults_seen = 1;
			*cur_req = &p->defaults;
			*cur_rule = NULL;
			return 0;
		}
		if (sscanf(s + 1, "%15s %64s", kind, name) != 2 ||
		    strlen(s + 1) != strlen(kind) + 1 + strlen(name))
			return PERR(ps, "want [defaults], [instance NAME] or [enrol TEMPLATE]");
		if (strcmp(kind, "instance") != 0 && strcmp(kind, "enrol") != 0 &&
		    strcmp(kind, "enroll") != 0)
			return PERR(ps, "unknown section kind '%s'", kind);
		if (kind[0] == 'i' && !name_ok(name))
			return PERR(ps, "instance name '%s' is not [A-Za-z0-9._-]{1,63}", name);
		if (kind[0] == 'e' && !template_ok(name))
			return PERR(ps, "enrol template '%s' needs name characters and at least "
			    "one {KEY:N} (KEY a match key, N hex digits)", name);
		if (p->nrules == POLICY_MAX_RULES)
			return PERR(ps, "more than %d rules", POLICY_MAX_RULES);
		if (p->nrules == p->cap) {
			size_t nc = p->cap ? 2 * p->cap : 16;

			if ((r = realloc(p->rules, nc * sizeof(*r))) == NULL)
				return attest_fail(ps->why, ps->whylen, VTPM_E_NOMEM, "out of memory");
			p->rules = r;
			p->cap = nc;
		}
		r = &p->rules[p->nrules++];
		memset(r, 0, sizeof(*r));
		memcpy(r->name, name, strlen(name) + 1);	/* <= 63, checked above */
		r->enrol = kind[0] == 'e';
		r->line = ps->line;
		req_unset(&r->req);
		*cur_rule = r;
		*cur_req = &r->req;
		return 0;
	}
	if ((eq = strchr(s, '=')) == NULL)
		return PERR(ps, "want KEY = VALUE");
	*eq = '\0';
	key = s;
	val = eq + 1;
	n = strlen(key);
	while (n > 0 && (key[n - 1] == ' ' || key[n - 1] == '\t'))
		key[--n] = '\0';
	if (*cur_req == NULL)
		return PERR(ps, "'%s' outside a section", key);
	if ((nt = tokens(val, tok, POLICY_MAX_VALUES)) < 0)
		return PERR(ps, "%s: too many values", key);
	rc = parse_req(ps, *cur_req, key, tok, nt);
	if (rc <= 0)
		return rc;
	if (*cur_rule == NULL)
		return PERR(ps, "'%s' is not a [defaults] key", key);
	rc = parse_match(ps, *cur_rule, key, tok, nt);
	if (rc <= 0)
		return rc;
	return PERR(ps, "unknown key '%s'", key);
}

int
attest_policy_parse(const char *name, const uint8_t *buf, size_t len,
    struct attest_policy **out, char *why, size_t whylen)
{
	struct attest_policy *p;
	struct pstate ps = { name, 1, why, whylen };
	struct pol_req *cur_req = NULL;
	struct pol_rule *cur_rule = NULL;
	struct cursor cur;
	char line[POLICY_MAX_LINE + 1];
	size_t ll = 0, i;
	uint8_t ch;
	int seen_header = 0, defaults_seen = 0, rc = 0;

	*out = NULL;
	if (len > POLICY_MAX_FILE)
		return attest_fail(why, whylen, VTPM_E_TOOBIG, "%s: larger than %d bytes", name,
		    POLICY_MAX_FILE);
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return attest_fail(why, whylen, VTPM_E_NOMEM, "out of memory");
	req_unset(&p->defaults);
	cur_init(&cur, buf, len);
	while (rc == 0) {
		if (cur_left(&cur) == 0) {
			if (ll > 0) {
				line[ll] = '\0';
				rc = parse_line(&ps, p, line, &seen_header, &cur_req, &cur_rule,
				    &defaults_seen);
			}
			break;
		}
		if (cur_get_u8(&cur, &ch) != 0)
			break;
		if (ch == '\n') {
			line[ll] = '\0';
			rc = parse_line(&ps, p, line, &seen_header, &cur_req, &cur_rule,
			    &defaults_seen);
			ll = 0;
			ps.line++;
			continue;
		}
		if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch >= 0x7f) {
			rc = PERR(&ps, "byte 0x%02x is not printable ASCII", ch);
			break;
		}
		if (ll == POLICY_MAX_LINE) {
			rc = PERR(&ps, "line longer than %d bytes", POLICY_MAX_LINE);
			break;
		}
		line[ll++] = (char)ch;
	}
	if (rc == 0 && !seen_header)
		rc = attest_fail(why, whylen, VTPM_E_FORMAT, "%s: empty (no 'vtpmd-policy 1' line)",
		    name);
	for (i = 0; rc == 0 && i < p->nrules; i++) {
		if (p->rules[i].m[M_MEASUREMENT].n == 0) {
			ps.line = p->rules[i].line;
			rc = PERR(&ps, "rule '%s' has no measurement: every rule must pin at least "
			    "one", p->rules[i].name);
		}
	}
	if (rc != 0) {
		attest_policy_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int
attest_policy_load(const char *path, struct attest_policy **out, char *why, size_t whylen)
{
	uint8_t *buf;
	size_t len;
	int rc;

	*out = NULL;
	rc = attest_read_file(path, POLICY_MAX_FILE, &buf, &len);
	if (rc == VTPM_E_TOOBIG)
		return attest_fail(why, whylen, rc, "%s: larger than %d bytes", path,
		    POLICY_MAX_FILE);
	if (rc != 0) {
		int saved = errno;

		attest_fail(why, whylen, rc, "%s: %s", path,
		    rc == VTPM_E_IO ? strerror(errno) : vtpm_strerror(rc));
		errno = saved;
		return rc;
	}
	rc = attest_policy_parse(path, buf, len, out, why, whylen);
	free(buf);
	return rc;
}

/* ---- matching ------------------------------------------------------------- */

/* The claim for a match key, or NULL if this TEE has no such claim. */
static const uint8_t *
claim_of(const struct attest_claims *c, int k)
{
	int snp = c->tee == ATTEST_TEE_SNP, tdx = c->tee == ATTEST_TEE_TDX;

	switch (k) {
	case M_MEASUREMENT: return c->measurement;
	case M_HOST_DATA: return c->host_data;
	case M_MRCONFIGID: return tdx ? c->tdx.mrconfigid : NULL;
	case M_MROWNER: return tdx ? c->tdx.mrowner : NULL;
	case M_MROWNERCONFIG: return tdx ? c->tdx.mrownerconfig : NULL;
	case M_RTMR0: case M_RTMR1: case M_RTMR2: case M_RTMR3:
		return tdx ? c->tdx.rtmr[k - M_RTMR0] : NULL;
	case M_ID_KEY: return snp ? c->snp.id_key_digest : NULL;
	case M_AUTHOR_KEY: return snp ? c->snp.author_key_digest : NULL;
	case M_FAMILY: return snp ? c->snp.family_id : NULL;
	case M_IMAGE: return snp ? c->snp.image_id : NULL;
	case M_CHIP_ID: return snp ? c->snp.chip_id : NULL;
	default: return NULL;
	}
}

static const char *
tee_name(int tee)
{
	return tee == ATTEST_TEE_SNP ? "snp" : tee == ATTEST_TEE_TDX ? "tdx" : "?";
}

/* -1 if the rule matches; else the first key (M_NKEYS for tee) that does not. */
static int
rule_first_miss(const struct pol_rule *r, const struct attest_claims *c, int *nmatched,
    int *meas_ok)
{
	const uint8_t *cl;
	size_t i;
	int k, miss = -1;

	*nmatched = 0;
	*meas_ok = 0;
	if (r->tee_mask != 0 && !(r->tee_mask & (1 << c->tee)))
		miss = M_NKEYS;
	else if (r->tee_mask != 0)
		(*nmatched)++;
	for (k = 0; k < M_NKEYS; k++) {
		if (r->m[k].n == 0)
			continue;
		cl = claim_of(c, k);
		for (i = 0; cl != NULL && i < r->m[k].n; i++)
			if (memcmp(r->m[k].v[i], cl, mkeys[k].len) == 0)
				break;
		if (cl != NULL && i < r->m[k].n) {
			(*nmatched)++;
			if (k == M_MEASUREMENT)
				*meas_ok = 1;
		}
		else if (miss == -1)
			miss = k;
	}
	return miss;
}

static int
req_get(int rule, int def, int builtin)
{
	return rule != -1 ? rule : def != -1 ? def : builtin;
}

static int
check_req(const struct pol_rule *r, const struct pol_req *d, const struct attest_claims *c,
    char *why, size_t whylen)
{
	const struct pol_req *q = &r->req;
	const struct attest_snp_tcb *tcbs[3];
	static const char *const tcb_which[3] = { "reported_tcb", "current_tcb", "committed_tcb" };
	int v, i, j, have, min, ma;
	int64_t svn;

	if ((c->flags & ATTEST_CF_TEST_ROOT) && !req_get(q->test_root, d->test_root, 0))
		return attest_fail(why, whylen, VTPM_E_POLICY,
		    "rule '%s': claim test-root=1 (signed by the vtpmd TEST chain) but the "
		    "policy has test-root = forbid", r->name);
	if (c->debug && !req_get(q->debug, d->debug, 0))
		return attest_fail(why, whylen, VTPM_E_POLICY,
		    "rule '%s': claim debug=1 (%s) but the policy forbids debug", r->name,
		    c->tee == ATTEST_TEE_SNP ? "SNP guest policy DEBUG bit 19" : "TD attribute DEBUG");
	if (c->tee == ATTEST_TEE_SNP) {
		v = req_get(q->vmpl_mask, d->vmpl_mask, 1);
		if (!(v & (1 << c->snp.vmpl)))
			return attest_fail(why, whylen, VTPM_E_POLICY,
			    "rule '%s': claim vmpl=%u is not allowed (vmpl mask 0x%x)", r->name,
			    c->snp.vmpl, v);
		ma = (c->snp.policy & ATTEST_SNP_POLICY_MIGRATE_MA) ||
		    (c->flags & ATTEST_CF_MIGRATION_AGENT);
		if (ma && !req_get(q->migration, d->migration, 0))
			return attest_fail(why, whylen, VTPM_E_POLICY,
			    "rule '%s': claim migration-agent=1 (POLICY MIGRATE_MA or REPORT_ID_MA "
			    "set) but the policy has migration-agent = forbid", r->name);
		tcbs[0] = &c->snp.reported_tcb;
		tcbs[1] = &c->snp.current_tcb;
		tcbs[2] = &c->snp.committed_tcb;
		for (i = 0; i < TCB_N; i++) {
			min = req_get(q->min_tcb[i], d->min_tcb[i], -1);
			if (min < 0)
				continue;
			for (j = 0; j < 3; j++) {
				const struct attest_snp_tcb *t = tcbs[j];

				have = i == TCB_BL ? t->bootloader : i == TCB_TEE ? t->tee :
				    i == TCB_SNP ? t->snp : i == TCB_UCODE ? t->microcode : t->fmc;
				if (have < min)
					return attest_fail(why, whylen, VTPM_E_POLICY,
					    "rule '%s': claim %s.%s=%d is below the minimum %d "
					    "(TCB below minimum)", r->name, tcb_which[j],
					    tcb_names[i], have, min);
			}
		}
		svn = q->min_guest_svn != -1 ? q->min_guest_svn : d->min_guest_svn;
		if (svn >= 0 && c->snp.guest_svn < svn)
			return attest_fail(why, whylen, VTPM_E_POLICY,
			    "rule '%s': claim guest-svn=%u is below the minimum %lld", r->name,
			    c->snp.guest_svn, (long long)svn);
	}
	v = req_get(q->signer_mask, d->signer_mask, -1);
	if (v != -1 && !(v & (1 << c->signer)))
		return attest_fail(why, whylen, VTPM_E_POLICY,
		    "rule '%s': claim signer=%s is not allowed", r->name,
		    attest_signer_name(c->signer));
	if (c->tee == ATTEST_TEE_TDX) {
		const char *st[2] = { c->tdx.tcb_status, c->tdx.qe_status };
		int masks[2] = { req_get(q->tdx_tcb_mask, d->tdx_tcb_mask, -1),
		    req_get(q->tdx_qe_mask, d->tdx_qe_mask, -1) };
		uint32_t need[2] = { ATTEST_CF_TDX_TCBINFO, ATTEST_CF_TDX_QEID };
		static const char *const what[2] = { "tdx-tcb-status", "tdx-qe-status" };

		for (i = 0; i < 2; i++) {
			if (masks[i] == -1)
				continue;
			if (!(c->flags & need[i]))
				return attest_fail(why, whylen, VTPM_E_POLICY,
				    "rule '%s': claim %s was not evaluated (no collateral) but the "
				    "policy requires it", r->name, what[i]);
			for (j = 0; j < NSTATUS; j++)
				if (strcmp(st[i], tdx_statuses[j]) == 0)
					break;
			if (j == NSTATUS || !(masks[i] & (1 << j)))
				return attest_fail(why, whylen, VTPM_E_POLICY,
				    "rule '%s': claim %s=%s is not allowed", r->name, what[i], st[i]);
		}
	}
	return 0;
}

/* Expands {key:N} with the first N hex digits of the claim. */
static int
expand_template(const char *t, const struct attest_claims *c, char *out, size_t cap)
{
	char key[32], hex[2 * 64 + 1];
	const uint8_t *cl;
	size_t o = 0;
	int k, n;

	for (; *t; t++) {
		if (*t != '{') {
			if (o + 1 >= cap)
				return -1;
			out[o++] = *t;
			continue;
		}
		if (sscanf(t + 1, "%31[a-z0-9-]:%d", key, &n) != 2)
			return -1;
		for (k = 0; k < M_NKEYS; k++)
			if (strcmp(key, mkeys[k].name) == 0)
				break;
		if (k == M_NKEYS || (cl = claim_of(c, k)) == NULL || n < 1 ||
		    (size_t)n > 2 * mkeys[k].len || o + (size_t)n >= cap)
			return -1;
		attest_hex_encode(cl, mkeys[k].len, hex);
		memcpy(out + o, hex, (size_t)n);
		o += (size_t)n;
		t = strchr(t, '}');
		if (t == NULL)
			return -1;
	}
	out[o] = '\0';
	return name_ok(out) ? 0 : -1;
}

int
attest_policy_match(const struct attest_policy *p, const struct attest_claims *c,
    char *instance, size_t cap, int *auto_enrol, char *why, size_t whylen)
{
	const struct pol_rule *r, *best = NULL;
	char hex[2 * 64 + 1], want[2 * 64 + 1];
	const uint8_t *cl;
	size_t i;
	int pass, miss, nm, meas_ok, best_nm = -1, best_miss = -1, rc;

	*auto_enrol = 0;
	if (cap < NAME_MAX_LEN + 1)
		return attest_fail(why, whylen, VTPM_E_INVAL, "instance buffer too small");
	instance[0] = '\0';
	/* Instance rules first, then enrol rules, each in file order. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < p->nrules; i++) {
			r = &p->rules[i];
			if (r->enrol != pass)
				continue;
			miss = rule_first_miss(r, c, &nm, &meas_ok);
			if (miss != -1) {
				/* The closest rule: a matching measurement counts most. */
				if (meas_ok)
					nm += 100;
				if (nm > best_nm) {
					best_nm = nm;
					best = r;
					best_miss = miss;
				}
				continue;
			}
			if ((rc = check_req(r, &p->defaults, c, why, whylen)) != 0)
				return rc;
			if (r->enrol) {
				if (expand_template(r->name, c, instance, cap) != 0)
					return attest_fail(why, whylen, VTPM_E_POLICY,
					    "rule '%s': its template does not give a valid name for "
					    "these claims", r->name);
				*auto_enrol = 1;
			} else {
				snprintf(instance, cap, "%s", r->name);
			}
			return 0;
		}
	}
	attest_hex_encode(c->measurement, ATTEST_MEASUREMENT_LEN, hex);
	if (best == NULL)
		return attest_fail(why, whylen, VTPM_E_POLICY,
		    "claim measurement=%s is not allowed: the policy has no rules", hex);
	if (best_nm < 100)
		return attest_fail(why, whylen, VTPM_E_POLICY,
		    "claim measurement=%s is not allowed by any rule", hex);
	if (best_miss == M_NKEYS)
		return attest_fail(why, whylen, VTPM_E_POLICY,
		    "claim tee=%s is not allowed by rule '%s' (the closest match)",
		    tee_name(c->tee), best->name);
	cl = claim_of(c, best_miss);
	if (cl == NULL)
		return attest_fail(why, whylen, VTPM_E_POLICY,
		    "claim %s does not exist for tee=%s, which rule '%s' (the closest match) "
		    "requires", mkeys[best_miss].name, tee_name(c->tee), best->name);
	attest_hex_encode(cl, mkeys[best_miss].len, hex);
	attest_hex_encode(best->m[best_miss].v[0], mkeys[best_miss].len, want);
	return attest_fail(why, whylen, VTPM_E_POLICY,
	    "claim %s=%.32s%s is not allowed by rule '%s' (the closest match; it wants "
	    "%s=%.32s%s)", mkeys[best_miss].name, hex, strlen(hex) > 32 ? "..." : "",
	    best->name, mkeys[best_miss].name, want, strlen(want) > 32 ? "..." : "");
}
