/*
 * config.h: vtpmd.conf, the configuration file (vtpmd.conf(5)).
 *
 * Every setting is also a command-line option and has the same name: a line
 * "NAME = VALUE" means "--NAME VALUE"; for an option without an argument
 * the value is yes/true (given) or no/false (not given). Lines starting
 * with '#' and blank lines are ignored. Options given on the command line
 * come after the file's, so they win where an option takes one value.
 */
#ifndef VTPM_CONFIG_H
#define VTPM_CONFIG_H

#include <getopt.h>
#include <stddef.h>

#define VTPMD_DEFAULT_CONFIG	"/etc/vtpmd/vtpmd.conf"
#define CONFIG_MAX_ARGS		256
#define CONFIG_MAX_LINE		4096

/*
 * Builds a new argument vector: argv[0], then the settings of the config
 * file named by "--config FILE" (or VTPMD_DEFAULT_CONFIG if it exists and no
 * --config is given), then the remaining command-line arguments without
 * --config. Returns 0, or -1 with a reason (file, line number, what is
 * wrong) in why. The new vector and its strings live until exit.
 */
int config_expand_args(int argc, char **argv, const struct option *longopts,
    int *nargc, char ***nargv, char *why, size_t whylen);

/* Parses one config file's text (for the fuzz harness and the tests). */
int config_parse_text(const char *text, size_t len, const struct option *longopts,
    char **args, int maxargs, int *nargs, char *why, size_t whylen);

#endif
