/*
 * check.h: the counting checks of the unit tests that report storage-style
 * error codes. A test file includes it once, counts with CHECK and CHECK_RC,
 * and prints n_pass and n_fail at the end (tests/run-tests.sh reads that
 * line). Needs vtpm_strerror() (log.h or proto.h).
 */
#ifndef VTPM_TEST_CHECK_H
#define VTPM_TEST_CHECK_H

#include <stdio.h>

static int n_pass, n_fail;

#define CHECK(cond) do {						\
	if (cond)							\
		n_pass++;						\
	else {								\
		n_fail++;						\
		printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);	\
	}								\
} while (0)

/* expr returns a VTPM_E_* code (0 = success) */
#define CHECK_RC(expr, want) do {					\
	int rc_ = (expr);						\
	if (rc_ == (want))						\
		n_pass++;						\
	else {								\
		n_fail++;						\
		printf("FAIL %s:%d: %s = %d (%s), want %s\n", __FILE__,	\
		    __LINE__, #expr, rc_, vtpm_strerror(rc_), #want);	\
	}								\
} while (0)

#endif
