/*
 * tcti_vtpm.h: the tpm2-tss TCTI plugin for the vtpm guest agent's local
 * socket (libtss2-tcti-vtpm.so.0), and the constants of that socket's
 * protocol, which vtpm-guest speaks from the other side.
 *
 * The wire format is documented byte by byte in docs/LOCAL-PROTOCOL.md.
 *
 * Using the plugin
 *   tpm2-tools:  tpm2_getrandom -T vtpm:/run/vtpm/tpm.sock 8
 *                TPM2TOOLS_TCTI=vtpm:path=/run/vtpm/tpm.sock,raw=1 tpm2_pcrread
 *   tctildr:     Tss2_TctiLdr_Initialize("vtpm:path=...", &tcti)
 *   direct link: Tss2_Tcti_Vtpm_Init() below, two calls as for every TCTI.
 *
 * Configuration string (everything after "vtpm:")
 *   NULL or ""               the socket named by $VTPM_SOCKET (ignored in
 *                            setuid/setgid processes: secure_getenv), else
 *                            VTPM_LOCAL_DEFAULT_PATH
 *   PATH                     any string without '=' is taken whole as the path
 *   key=value[,key=value...] keys, each at most once, no empty values:
 *     path=PATH              socket path (shorter than sizeof(sun_path));
 *                            absent: as for the empty string
 *     raw=0|1                ask vtpm-guest for the raw TPM, without resource
 *                            management (HELLO flag VTPM_LOCAL_HELLO_RAW)
 *     timeout=MS             0..86400000; 0 (default) = none. Bounds a
 *                            blocking receive (timeout -1): on expiry the
 *                            receive fails with TSS2_TCTI_RC_IO_ERROR and the
 *                            connection is dropped. Also bounds the HELLO
 *                            exchange at init (default VTPM_LOCAL_HELLO_MS).
 *   Anything else (unknown key, repeated key, bad number) is
 *   TSS2_TCTI_RC_BAD_VALUE.
 *
 * The TCTI functions behave as the ABI in tss2_tcti.h describes; the
 * specifics of this plugin:
 *   transmit        TSS2_TCTI_RC_BAD_VALUE unless 10 <= size <= 4096 and the
 *                   TPM header's size field equals size; BAD_SEQUENCE unless
 *                   in the TRANSMIT state; NO_CONNECTION once the connection
 *                   was dropped; IO_ERROR if the write fails (drops it).
 *   receive         response == NULL is a size query (the response is read
 *                   whole first). *size too small: INSUFFICIENT_BUFFER with
 *                   *size set to the size needed, the response is kept.
 *                   timeout -1 blocks (or up to timeout= from the config),
 *                   timeout >= 0 polls that many ms and returns TRY_AGAIN if
 *                   the response is not complete; partial data is kept and a
 *                   later call completes it. Server status 1 (TPM
 *                   unavailable) -> IO_ERROR, status 2 (bad request) ->
 *                   BAD_VALUE, other status -> GENERAL_FAILURE; each of
 *                   these ends the exchange (state TRANSMIT, connection
 *                   kept). A TPM response whose header size disagrees with
 *                   its length, or shorter than 10 bytes ->
 *                   MALFORMED_RESPONSE (exchange ended, connection kept). A
 *                   frame length over VTPM_LOCAL_MAX_BODY, end of file or a
 *                   read error drops the connection (MALFORMED_RESPONSE resp.
 *                   IO_ERROR); it is never reopened: later transmits (and
 *                   getPollHandles with a buffer) return NO_CONNECTION.
 *                   Bytes from the server while no command is outstanding
 *                   make the next transmit fail with IO_ERROR and drop it.
 *   setLocality     0..4 (else BAD_VALUE), only in the TRANSMIT state
 *                   (BAD_SEQUENCE). Sent with every later command.
 *   cancel          always TSS2_TCTI_RC_NOT_IMPLEMENTED in this version
 *                   (the protocol's CANCEL op is not sent).
 *   getPollHandles  one handle: the socket, events POLLIN. handles == NULL
 *                   queries the count; *num_handles < 1 -> INSUFFICIENT_BUFFER.
 *   makeSticky      NULL (the ABI macro returns NOT_IMPLEMENTED).
 *   finalize        closes the socket and wipes the context, including any
 *                   buffered command or response; the caller frees it.
 *
 * A context is not thread safe: one thread at a time, as for every TCTI.
 * It holds one connection; after fork() only one process may use it.
 */
#ifndef VTPM_TCTI_VTPM_H
#define VTPM_TCTI_VTPM_H

#include <stddef.h>

#include <tss2/tss2_tcti.h>

/* Local protocol, version 1 (docs/LOCAL-PROTOCOL.md). */
#define VTPM_LOCAL_VERSION		1U
#define VTPM_LOCAL_DEFAULT_PATH		"/run/vtpm/tpm.sock"
#define VTPM_LOCAL_ENV_SOCKET		"VTPM_SOCKET"
#define VTPM_LOCAL_HDR_LEN		8U	/* u32 op|status, u32 len */
#define VTPM_LOCAL_MAX_BODY		8192U	/* requests and responses */

#define VTPM_LOCAL_OP_TPM_COMMAND	1U	/* u8 locality | command */
#define VTPM_LOCAL_OP_CANCEL		2U	/* empty */
#define VTPM_LOCAL_OP_HELLO		3U	/* u32 version | u32 flags */

#define VTPM_LOCAL_HELLO_RAW		0x00000001U	/* no resource manager */
#define VTPM_LOCAL_HELLO_LEN		8U	/* request and response body */
#define VTPM_LOCAL_HELLO_MS		10000	/* default HELLO answer bound */

#define VTPM_LOCAL_STATUS_OK		0U	/* body: the TPM response */
#define VTPM_LOCAL_STATUS_TPM_UNAVAIL	1U	/* vtpmd unreachable/timeout */
#define VTPM_LOCAL_STATUS_BAD_REQUEST	2U

#define VTPM_LOCAL_TPM_HDR_LEN		10U	/* tag u16, size u32, code u32 */
#define VTPM_LOCAL_MAX_COMMAND		4096U
#define VTPM_LOCAL_MAX_LOCALITY		4U

/*
 * Tss2_Tcti_Info: the descriptor tctildr looks up by dlsym(). Static
 * storage; never freed. info->init is Tss2_Tcti_Vtpm_Init.
 */
const TSS2_TCTI_INFO *Tss2_Tcti_Info(void);

/*
 * Tss2_Tcti_Vtpm_Init: initialise a vtpm TCTI context.
 *   ctx == NULL: sets *size to the context size and returns TSS2_RC_SUCCESS
 *     (config is not looked at).
 *   ctx != NULL: ctx points to *size bytes owned by the caller (zeroed or
 *     not); parses config, connects, exchanges HELLO and fills in the
 *     context. The caller must call Tss2_Tcti_Finalize() before freeing.
 * Returns TSS2_RC_SUCCESS, or
 *   TSS2_TCTI_RC_BAD_VALUE          size NULL, bad config
 *   TSS2_TCTI_RC_INSUFFICIENT_BUFFER *size smaller than the context
 *   TSS2_TCTI_RC_NO_CONNECTION      socket() or connect() failed
 *   TSS2_TCTI_RC_IO_ERROR           HELLO write/read failed or timed out,
 *                                   the server hung up, or it answered
 *                                   status 1
 *   TSS2_TCTI_RC_BAD_VALUE          (also) HELLO answered with status 2
 *   TSS2_TCTI_RC_GENERAL_FAILURE    HELLO answered with another status
 *   TSS2_TCTI_RC_MALFORMED_RESPONSE HELLO answer not 8 bytes (status 0) or
 *                                   not empty (status != 0), frame length
 *                                   over 8192, or granted flags that were
 *                                   not asked for
 *   TSS2_TCTI_RC_NOT_SUPPORTED      server speaks another protocol version
 *   TSS2_TCTI_RC_NOT_PERMITTED      raw=1 asked for but not granted
 * On failure nothing is left open and the context memory is wiped.
 */
TSS2_RC Tss2_Tcti_Vtpm_Init(TSS2_TCTI_CONTEXT *ctx, size_t *size,
    const char *config);

#endif
