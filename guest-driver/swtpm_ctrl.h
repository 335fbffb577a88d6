/*
 * swtpm_ctrl.h: the swtpm control-channel requests vtpm-guest --swtpm
 * understands (swtpm's tpm_ioctl.h over a socket: a u32 big-endian command
 * code, then its body; the answer starts with a u32 result), parsed from
 * untrusted bytes, and the answers computed without vtpmd. Pure functions;
 * fuzzed by tests/fuzz/fuzz_swtpm_ctrl.c; the wire format is in
 * docs/GUEST-DRIVER.md section 3.2.
 */
#ifndef VTPM_SWTPM_CTRL_H
#define VTPM_SWTPM_CTRL_H

#include <stddef.h>
#include <stdint.h>

#include "vtpm_error.h"

/* Command codes (CMD_*). */
#define PTM_CMD_GET_CAPABILITY		0x01U
#define PTM_CMD_INIT			0x02U
#define PTM_CMD_SHUTDOWN		0x03U
#define PTM_CMD_GET_TPMESTABLISHED	0x04U
#define PTM_CMD_SET_LOCALITY		0x05U
#define PTM_CMD_HASH_START		0x06U
#define PTM_CMD_HASH_DATA		0x07U
#define PTM_CMD_HASH_END		0x08U
#define PTM_CMD_CANCEL_TPM_CMD		0x09U
#define PTM_CMD_STORE_VOLATILE		0x0aU	/* not supported */
#define PTM_CMD_RESET_TPMESTABLISHED	0x0bU
#define PTM_CMD_GET_STATEBLOB		0x0cU	/* not supported */
#define PTM_CMD_SET_STATEBLOB		0x0dU	/* not supported */
#define PTM_CMD_STOP			0x0eU
#define PTM_CMD_GET_CONFIG		0x0fU
#define PTM_CMD_SET_DATAFD		0x10U
#define PTM_CMD_SET_BUFFERSIZE		0x11U
#define PTM_CMD_GET_INFO		0x12U
#define PTM_CMD_LOCK_STORAGE		0x13U	/* not supported */

/* Results (TPM 1.2 codes, as swtpm and the vtpmd channel's CTRL use). */
#define PTM_RES_OK			0U
#define PTM_RES_BAD_PARAMETER		3U
#define PTM_RES_FAIL			9U
#define PTM_RES_BAD_ORDINAL		10U	/* unknown/unsupported, or wrong state */
#define PTM_RES_BAD_LOCALITY		61U

/* Capability bits (PTM_CAP_*). */
#define PTM_CAP_INIT			0x0001U
#define PTM_CAP_SHUTDOWN		0x0002U
#define PTM_CAP_GET_TPMESTABLISHED	0x0004U
#define PTM_CAP_SET_LOCALITY		0x0008U
#define PTM_CAP_HASHING			0x0010U
#define PTM_CAP_CANCEL_TPM_CMD		0x0020U
#define PTM_CAP_RESET_TPMESTABLISHED	0x0080U
#define PTM_CAP_STOP			0x0400U
#define PTM_CAP_GET_CONFIG		0x0800U
#define PTM_CAP_SET_DATAFD		0x1000U
#define PTM_CAP_SET_BUFFERSIZE		0x2000U
#define PTM_CAP_GET_INFO		0x4000U

/* What vtpm-guest advertises: everything above, no state blobs. */
#define SWTPM_CTRL_CAPS	(PTM_CAP_INIT | PTM_CAP_SHUTDOWN | \
	PTM_CAP_GET_TPMESTABLISHED | PTM_CAP_SET_LOCALITY | PTM_CAP_HASHING | \
	PTM_CAP_CANCEL_TPM_CMD | PTM_CAP_RESET_TPMESTABLISHED | PTM_CAP_STOP | \
	PTM_CAP_GET_CONFIG | PTM_CAP_SET_DATAFD | PTM_CAP_SET_BUFFERSIZE | \
	PTM_CAP_GET_INFO)

#define PTM_INIT_FLAG_DELETE_VOLATILE	0x1U
#define PTM_INFO_TPMSPECIFICATION	0x1ULL
#define PTM_INFO_TPMATTRIBUTES		0x2ULL

/* Largest request: HASH_DATA, u32 code + u32 length + 4096 bytes. */
#define SWTPM_CTRL_MAX_REQ		(4U + 4U + 4096U)
#define SWTPM_CTRL_MAX_HASH_DATA	4096U

/* Data-channel buffer sizes (SET_BUFFERSIZE); as libtpms reports for TPM 2.0. */
#define SWTPM_BUFSIZE_MIN		2808U
#define SWTPM_BUFSIZE_MAX		4096U

/* A parsed request; the fields that its command does not use are zero. */
struct swtpm_req {
	uint32_t	 sr_cmd;
	uint32_t	 sr_u32;		/* INIT flags, SET_BUFFERSIZE size */
	uint8_t		 sr_loc;		/* SET_LOCALITY, RESET_TPMESTABLISHED */
	uint64_t	 sr_info_flags;		/* GET_INFO */
	uint32_t	 sr_info_offset;	/* GET_INFO */
	const uint8_t	*sr_data;		/* HASH_DATA, points into the input */
	uint32_t	 sr_data_len;
};

enum swtpm_parse {
	SWTPM_NEED_MORE = 0,	/* shorter than the command's smallest request */
	SWTPM_REQ	= 1,	/* *req holds a well-formed request */
	SWTPM_BAD	= 2,	/* answer *res, act on nothing */
};

/*
 * swtpm_ctrl_parse: the control channel has no length field, so a request
 * is the bytes a client wrote before it waits for the answer. buf holds
 * every byte received so far (have of them). Returns NEED_MORE while they
 * cannot yet be the command's smallest form; REQ when they are exactly one
 * accepted form of the command; BAD otherwise, with *res:
 *   BAD_ORDINAL   unknown or unsupported command (STORE_VOLATILE,
 *                 GET/SET_STATEBLOB, LOCK_STORAGE)
 *   BAD_LOCALITY  SET_LOCALITY or RESET_TPMESTABLISHED above 4
 *   BAD_PARAMETER any other size or value.
 * Accepted bodies: none for GET_CAPABILITY, SHUTDOWN, GET_TPMESTABLISHED,
 * HASH_START, HASH_END, CANCEL_TPM_CMD, STOP, GET_CONFIG, SET_DATAFD;
 * u32 for INIT and SET_BUFFERSIZE; u8 locality, alone or padded to 4 bytes
 * (tcti-swtpm sends 1 byte, QEMU 4) for SET_LOCALITY and
 * RESET_TPMESTABLISHED; u64 flags | u32 offset | u32 pad for GET_INFO;
 * u32 len | len bytes (len <= 4096), optionally padded up to 4096 bytes,
 * for HASH_DATA. req->sr_data points into buf.
 */
int swtpm_ctrl_parse(const uint8_t *buf, size_t have, struct swtpm_req *req,
    uint32_t *res);

/*
 * swtpm_ctrl_buffersize: SET_BUFFERSIZE with the requested size want
 * (0: query) while the TPM is stopped or not. A change is allowed only
 * while stopped (else BAD_ORDINAL, as swtpm); it is clamped to
 * [SWTPM_BUFSIZE_MIN, SWTPM_BUFSIZE_MAX] and stored in *cur. Returns the
 * result code; *cur is the size to report either way.
 */
uint32_t swtpm_ctrl_buffersize(uint32_t want, int stopped, uint32_t *cur);

/*
 * swtpm_ctrl_info: the GET_INFO answer for flags, from offset: writes
 * {u32 res, u32 totlength, u32 length, text} into out (cap bytes) and sets
 * *outlen. The text is a NUL-terminated JSON object with the sections
 * asked for that vtpm-guest knows (TPMSPECIFICATION, TPMATTRIBUTES; other
 * bits are ignored). offset past the end: res BAD_PARAMETER, no text.
 * Returns 0, or VTPM_E_TOOBIG if cap is too small.
 */
int swtpm_ctrl_info(uint64_t flags, uint32_t offset, uint8_t *out, size_t cap,
    size_t *outlen) VTPM_WUR;

#endif
