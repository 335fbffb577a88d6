/*
 * config.c: turns vtpmd.conf into command-line arguments (config.h).
 * Trusts the file's owner (root) for meaning, not for form: every line is
 * length-checked and every key must be a known option.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config.h"

static const struct option *
find_option(const struct option *longopts, const char *name)
{
	const struct option *o;

	for (o = longopts; o->name != NULL; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int
config_parse_text(const char *text, size_t len, const struct option *longopts,
    char **args, int maxargs, int *nargs, char *why, size_t whylen)
{
	char line[CONFIG_MAX_LINE + 1], *key, *val, *eq, *opt;
	const struct option *o;
	size_t pos = 0, n;
	int lineno = 0;

	*nargs = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);

		n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		lineno++;
		if (n > CONFIG_MAX_LINE) {
			snprintf(why, whylen, "line %d: longer than %d bytes", lineno, CONFIG_MAX_LINE);
			return -1;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + (nl ? 1 : 0);
		if (memchr(line, '\0', n) != NULL) {
			snprintf(why, whylen, "line %d: contains a NUL byte", lineno);
			return -1;
		}
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			snprintf(why, whylen, "line %d: expected NAME = VALUE", lineno);
			return -1;
		}
		*eq = '\0';
		key = trim(key);
		val = trim(eq + 1);
		if ((o = find_option(longopts, key)) == NULL || strcmp(key, "config") == 0 ||
		    strcmp(key, "help") == 0) {
			snprintf(why, whylen, "line %d: unknown setting \"%.64s\"", lineno, key);
			return -1;
		}
		if (*nargs + 2 > maxargs) {
			snprintf(why, whylen, "line %d: too many settings", lineno);
			return -1;
		}
		if (o->has_arg == no_argument) {
			if (strcasecmp(val, "no") == 0 || strcasecmp(val, "false") == 0)
				continue;
			if (strcasecmp(val, "yes") != 0 && strcasecmp(val, "true") != 0) {
				snprintf(why, whylen, "line %d: %s takes yes or no", lineno, key);
				return -1;
			}
		} else if (*val == '\0') {
			snprintf(why, whylen, "line %d: %s needs a value", lineno, key);
			return -1;
		}
		if ((opt = malloc(strlen(key) + 3)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		sprintf(opt, "--%s", key);
		args[(*nargs)++] = opt;
		if (o->has_arg != no_argument && (args[(*nargs)++] = strdup(val)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
	}
	return 0;
}

int
config_expand_args(int argc, char **argv, const struct option *longopts,
    int *nargc, char ***nargv, char *why, size_t whylen)
{
	static char *file_args[CONFIG_MAX_ARGS];
	const char *path = NULL;
	char **out, *text = NULL, sub[3 * CONFIG_MAX_LINE];
	struct stat st;
	int i, n = 0, nfile = 0, explicit = 0;
	size_t len = 0;
	FILE *f;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			path = argv[++i];
			explicit = 1;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			path = argv[i] + 9;
			explicit = 1;
		}
	}
	if (path == NULL && stat(VTPMD_DEFAULT_CONFIG, &st) == 0)
		path = VTPMD_DEFAULT_CONFIG;
	if (path != NULL) {
		if ((f = fopen(path, "r")) == NULL) {
			snprintf(why, whylen, "%s: %s", path, strerror(errno));
			return -1;
		}
		if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
			snprintf(why, whylen, "%s: not a regular file of at most 1 MiB", path);
			fclose(f);
			return -1;
		}
		if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
			fclose(f);
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		len = fread(text, 1, (size_t)st.st_size, f);
		fclose(f);
		if (config_parse_text(text, len, longopts, file_args, CONFIG_MAX_ARGS, &nfile,
		    sub, sizeof(sub)) != 0) {
			snprintf(why, whylen, "%s: %s", path, sub);
			free(text);
			return -1;
		}
		free(text);
	}
	(void)explicit;
	if ((out = calloc((size_t)(argc + nfile + 1), sizeof(*out))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	out[n++] = argv[0];
	for (i = 0; i < nfile; i++)
		out[n++] = file_args[i];
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			i++;
			continue;
		}
		if (strncmp(argv[i], "--config=", 9) == 0)
			continue;
		out[n++] = argv[i];
	}
	out[n] = NULL;
	*nargc = n;
	*nargv = out;
	return 0;
}
