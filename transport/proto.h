/*
 * proto.h: message types and codes of the vtpmd channel (docs/PROTOCOL.md).
 * Shared by vtpmd (parent and worker) and vtpm-guest. Only constants here.
 */
#ifndef VTPM_PROTO_H
#define VTPM_PROTO_H

#define VTPM_PROTO_VERSION	1
/*
 * Version 2 of ATTACH (the same 5 bytes) asks for freshness reports: vtpmd
 * sends MSG_INSTANCE before ATTACHED and MSG_STATE_GEN before a response
 * whenever the instance's durable generation advanced (docs/PROTOCOL.md 8).
 */
#define VTPM_PROTO_VERSION_FRESH	2

/* Plaintext message types (first byte of every transport message). */
enum vtpm_msg {
	MSG_EVIDENCE	= 0x01,	/* evidence envelope (attest.h) */
	MSG_ATTACH	= 0x02,	/* guest: u8 version | u32 flags */
	MSG_ATTACHED	= 0x03,	/* vtpmd: u8 how | u8 name_len | name */
	MSG_ERROR	= 0x04,	/* u32 code | u16 len | text; the sender closes */
	MSG_INSTANCE	= 0x05,	/* vtpmd (v2): uuid[16] | u64 generation, before ATTACHED */
	MSG_ATTACH_CONFIRM = 0x06, /* guest (v2): empty; the generation is acceptable */
	MSG_TPM_CMD	= 0x10,	/* guest: u8 locality | TPM command */
	MSG_TPM_RSP	= 0x11,	/* vtpmd: TPM response */
	MSG_STATE_GEN	= 0x12,	/* vtpmd (v2): u64 generation, before a response */
	MSG_CTRL	= 0x20,	/* guest: u8 op | args */
	MSG_CTRL_RSP	= 0x21,	/* vtpmd: u32 result | data */
};

/* MSG_ATTACH flags. */
#define ATTACH_F_AUTO_STARTUP	0x1	/* vtpmd sends TPM2_Startup(CLEAR) after power-on */

/* MSG_ATTACHED how. */
enum attach_how {
	ATTACHED_NEW		= 0,	/* instance manufactured now */
	ATTACHED_POWERED_ON	= 1,	/* new launch (or no saved state): TPM reset */
	ATTACHED_RESUMED	= 2,	/* same launch: PCRs and sessions kept */
};

/* MSG_CTRL ops (swtpm control channel equivalents). */
enum vtpm_ctrl {
	CTRL_INIT		= 1,	/* power-cycle: u32 flags */
	CTRL_GET_ESTABLISHED	= 2,	/* -> u8 bit */
	CTRL_RESET_ESTABLISHED	= 3,	/* u8 locality */
	CTRL_CANCEL		= 4,
	CTRL_HASH_START		= 5,
	CTRL_HASH_DATA		= 6,	/* data */
	CTRL_HASH_END		= 7,
	CTRL_STOP		= 8,	/* TPM stopped until CTRL_INIT */
	CTRL_DETACH		= 9,	/* orderly end of session */
};

/* MSG_ERROR codes. */
enum vtpm_errcode {
	ERR_INTERNAL		= 1,
	ERR_PROTOCOL		= 2,
	ERR_EVIDENCE		= 3,	/* peer evidence did not verify */
	ERR_NOT_ENROLLED	= 4,
	ERR_BUSY		= 5,	/* instance already has a live session */
	ERR_UNAVAILABLE		= 6,	/* storage or keys unavailable */
	ERR_FENCED		= 7,
	ERR_POLICY		= 8,
	ERR_SHUTTING_DOWN	= 9,
};

/* TPM 2.0 constants the programs need. */
#define TPM2_HDR_LEN		10
#define TPM2_MAX_CMD		4096
#define TPM2_ST_NO_SESSIONS	0x8001
#define TPM2_ST_SESSIONS	0x8002
#define TPM2_RC_SUCCESS		0x000
#define TPM2_RC_FAILURE		0x101
#define TPM2_RC_INITIALIZE	0x100
#define TPM2_RC_NV_UNAVAILABLE	0x923
#define TPM2_RC_RETRY		0x922
#define TPM2_RC_CANCELED	0x909
#define TPM2_CC_STARTUP		0x144
#define TPM2_CC_SHUTDOWN	0x145
#define TPM2_CC_PCR_ALLOCATE	0x12B
#define TPM2_SU_CLEAR		0x0000
#define TPM2_SU_STATE		0x0001
#define TPM2_CC_SET_LOCALITY	0x20001000	/* vtpm_proxy vendor command */

#endif
