/*
 * keyprov_impl.h: what key providers share with the dispatcher in
 * keyprov.c. Private to storage/; callers use keyprov.h.
 */
#ifndef VTPM_KEYPROV_IMPL_H
#define VTPM_KEYPROV_IMPL_H

#include <limits.h>
#include <stdarg.h>

#include "keyprov.h"

struct keyprov_ops {
	const char *scheme;	/* without the colon */
	int	is_dev;		/* development only: say so wherever it is used */
	int	(*open)(struct keyprov *kp, const char *arg,
		    const struct keyprov_config *cfg);
	/* version 0 = the current key */
	int	(*get_version)(struct keyprov *kp, uint32_t version,
		    struct seal_kek **out);
	/* another resource of the same source; NULL: not supported */
	int	(*get_resource)(struct keyprov *kp, const char *resource,
		    struct seal_kek **out);
	void	(*abort)(struct keyprov *kp);
	void	(*close)(struct keyprov *kp);
};

struct keyprov {
	const struct keyprov_ops *ops;
	char		 spec[PATH_MAX + 16];
	char		 path[PATH_MAX];	/* file: */
	void		*priv;			/* the provider's own state */
	char		 why[KEYPROV_WHY_LEN];	/* last failure, no secrets */
};

/* Sets kp->why (printf-style) and returns rc. */
int keyprov_fail(struct keyprov *kp, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

extern const struct keyprov_ops keyprov_kbs_ops;

#endif
