/*
 * sandbox.c: process self-limitation for the parent and the workers.
 * Trusts nothing; every step must succeed or the process stops.
 */
#include <sys/prctl.h>
#include <sys/resource.h>

#include "log.h"
#include "sandbox.h"

static void
sandbox_common(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		fatal("setrlimit(RLIMIT_CORE)");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		fatal("prctl(PR_SET_DUMPABLE)");
}

void
sandbox_parent_enter(void)
{
	sandbox_common();
}

void
sandbox_worker_enter(void)
{
	sandbox_common();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
}
