/*
 * vtpm_error.c: names for the VTPM_E_* codes.
 * Trusts nothing: any int maps to a string.
 */
#include <string.h>

#include "vtpm_error.h"

const char *
vtpm_strerror(int err)
{
	switch (err) {
	case VTPM_OK:            return "success";
	case VTPM_E_NOMEM:       return "out of memory";
	case VTPM_E_IO:          return "input/output error";
	case VTPM_E_SHORT:       return "message truncated";
	case VTPM_E_TRAILING:    return "trailing bytes after message";
	case VTPM_E_TOOBIG:      return "length exceeds maximum";
	case VTPM_E_FORMAT:      return "malformed message";
	case VTPM_E_AUTH:        return "authentication failed";
	case VTPM_E_CRYPTO:      return "cryptographic operation failed";
	case VTPM_E_PROTO:       return "protocol violation";
	case VTPM_E_CLOSED:      return "connection closed";
	case VTPM_E_NOTFOUND:    return "not found";
	case VTPM_E_EXISTS:      return "already exists";
	case VTPM_E_BUSY:        return "busy";
	case VTPM_E_STORE:       return "storage failure";
	case VTPM_E_STORE_FULL:  return "storage full";
	case VTPM_E_WRONG_KEY:   return "key does not open the store";
	case VTPM_E_ROLLBACK:    return "stale state (rollback detected)";
	case VTPM_E_POLICY:      return "denied by policy";
	case VTPM_E_EVIDENCE:    return "evidence did not verify";
	case VTPM_E_BINDING:     return "evidence not bound to this session";
	case VTPM_E_TIMEOUT:     return "timed out";
	case VTPM_E_INVAL:       return "invalid argument";
	case VTPM_E_FENCED:      return "instance fenced";
	case VTPM_E_AGAIN:       return "try again";
	case VTPM_E_UNSUPPORTED: return "not supported";
	}
	if (err > 0)
		return strerror(err);
	return "unknown error";
}
