/*
 * curl_dl.h: libcurl, loaded with dlopen() the first time a network client
 * of storage/ (the kbs: key provider, the etcd store) needs it, so that only
 * the parent maps it and vtpmd builds and runs without it when neither is
 * used. One table for every user; curl_global_init() runs once.
 */
#ifndef VTPM_CURL_DL_H
#define VTPM_CURL_DL_H

#include <curl/curl.h>

#include "vtpm_error.h"

struct vtpm_curl_api {
	CURLcode	 (*global_init)(long);
	CURL		*(*easy_init)(void);
	CURLcode	 (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode	 (*easy_perform)(CURL *);
	CURLcode	 (*easy_getinfo)(CURL *, CURLINFO, ...);
	void		 (*easy_cleanup)(CURL *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void		 (*slist_free_all)(struct curl_slist *);
	const char	*(*easy_strerror)(CURLcode);
};

/* Filled by vtpm_curl_load(); all NULL before it succeeds. */
extern struct vtpm_curl_api vtpm_curl;

/*
 * Loads libcurl.so.4 and runs curl_global_init() once per process (safe
 * from any thread: pthread_once). Returns 0, or VTPM_E_UNSUPPORTED (logged,
 * prefixed with who) if the library or a symbol is missing; a failure is
 * final for the process.
 */
int vtpm_curl_load(const char *who) VTPM_WUR;

#endif
