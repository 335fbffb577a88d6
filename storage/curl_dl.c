/*
 * curl_dl.c: the one libcurl loader of storage/ (curl_dl.h).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "curl_dl.h"
#include "log.h"

struct vtpm_curl_api vtpm_curl;

static const struct {
	const char	*name;
	size_t		 off;
} curl_syms[] = {
	{ "curl_global_init",	offsetof(struct vtpm_curl_api, global_init) },
	{ "curl_easy_init",	offsetof(struct vtpm_curl_api, easy_init) },
	{ "curl_easy_setopt",	offsetof(struct vtpm_curl_api, easy_setopt) },
	{ "curl_easy_perform",	offsetof(struct vtpm_curl_api, easy_perform) },
	{ "curl_easy_getinfo",	offsetof(struct vtpm_curl_api, easy_getinfo) },
	{ "curl_easy_cleanup",	offsetof(struct vtpm_curl_api, easy_cleanup) },
	{ "curl_slist_append",	offsetof(struct vtpm_curl_api, slist_append) },
	{ "curl_slist_free_all", offsetof(struct vtpm_curl_api, slist_free_all) },
	{ "curl_easy_strerror",	offsetof(struct vtpm_curl_api, easy_strerror) },
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static char curl_error[160];	/* why loading failed; "" = loaded */

static void
curl_load_once(void)
{
	void *dl, *sym;
	size_t i;

	if ((dl = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(curl_error, sizeof(curl_error), "cannot load libcurl.so.4: %s",
		    dlerror());
		return;
	}
	for (i = 0; i < sizeof(curl_syms) / sizeof(curl_syms[0]); i++) {
		if ((sym = dlsym(dl, curl_syms[i].name)) == NULL) {
			snprintf(curl_error, sizeof(curl_error), "libcurl lacks %s",
			    curl_syms[i].name);
			goto fail;
		}
		/* a data pointer and a function pointer have one size on Linux */
		memcpy((char *)&vtpm_curl + curl_syms[i].off, &sym, sizeof(sym));
	}
	if (vtpm_curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(curl_error, sizeof(curl_error), "curl_global_init failed");
		goto fail;
	}
	return;
fail:
	dlclose(dl);
	memset(&vtpm_curl, 0, sizeof(vtpm_curl));
}

int
vtpm_curl_load(const char *who)
{
	(void)pthread_once(&curl_once, curl_load_once);
	if (curl_error[0] != '\0') {
		log_warnx("%s: %s", who, curl_error);
		return VTPM_E_UNSUPPORTED;
	}
	return 0;
}
