/*
 * ops_job.h: the long operation shared by backup.c and migrate.c (private
 * to those two files). A job runs in slices from ops_run(); it owns the
 * admin connection (progress lines, then one final reply) and the
 * operator's file descriptor.
 */
#ifndef VTPM_OPS_JOB_H
#define VTPM_OPS_JOB_H

#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "backup_format.h"
#include "ops.h"
#include "store.h"

#define JOB_SLICE_NS	5000000L	/* one slice: 5 ms of work, then the event loop */
#define JOB_READ_CHUNK	(32u << 20)	/* bytes read from the operator's file per slice */
#define JOB_FILE_MAX	((uint64_t)8 << 30)	/* largest file restored or verified */

/* The root key is in V->kek once it opened the store (NULL before: keys.c may fetch it late). */
#define OPS_KEYED()	(V->kek != NULL)
#define OPS_NOT_KEYED	"root key not available yet (see vtpmctl status)"

enum job_kind { JOB_BACKUP, JOB_VERIFY, JOB_RESTORE, JOB_EXPORT, JOB_IMPORT };

enum job_phase {
	PH_READ,	/* reading the operator's file into memory */
	PH_MAC,		/* the keyed MAC over the file */
	PH_CHECK,	/* every instance: structure, data key, blobs */
	PH_APPLY,	/* restore / import: one synchronous commit */
	PH_SCAN,	/* backup: measure every instance of the snapshot */
	PH_WRITE,	/* backup: write the sections */
	PH_STOP,	/* export: waiting for the instance's worker to save and stop */
	PH_KEYS,	/* export / import: waiting for the broker's migration key */
	PH_DONE,
};

struct job {
	enum job_kind		 kind;
	const char		*op;		/* "backup", ... (static: the job outlives the request) */
	enum job_phase		 phase;
	int			 conn;		/* admin connection */
	int			 fd;		/* the operator's file */
	uint32_t		 uid;		/* the operator (SO_PEERCRED) */
	int			 force;
	uint32_t		 done, total;
	struct timespec		 last_progress;

	/* reading and checking a file (verify, restore, import) */
	uint8_t			*buf;
	size_t			 len, have;
	struct bkf_head		 head;
	struct bkf_entry	*entries;	/* head.count, filled by PH_CHECK */
	crypto_generichash_state mac;		/* keyed: wiped with the job */
	size_t			 mac_off;
	struct seal_kek		*file_kek;	/* wraps the file's data keys (owned) */
	uint8_t			*mac_key;	/* sodium_malloc, BKF_MAC_KEY_LEN */
	uint8_t			*dek;		/* sodium_malloc, SEAL_KEY_LEN */
	uint8_t			*plain;		/* sodium_malloc, STORE_BLOB_MAX: unseal scratch */
	json_object		*problems;	/* array of {instance, why} */
	uint64_t		 expect_off;

	/* backup */
	struct store_snapshot	*snap;
	char			 after[STORE_NAME_MAX + 1];
	struct bkf_writer	 w;
	int			 w_live;
	uint64_t		 bytes;

	/* export */
	char			 name[STORE_NAME_MAX + 1];
	time_t			 stop_deadline;
	int			 stop_killed;

	/* export / import: the broker's migration key (PH_KEYS) */
	time_t			 keys_deadline;
};

/* backup.c, for migrate.c */
struct job *job_new(enum job_kind kind, const char *op, int conn, int fd);
void job_start(struct job *j);		/* becomes the running job */
void job_fail(struct job *j, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));	/* replies with an error and ends the job */
void job_finish(struct job *j, json_object *reply);	/* replies (takes reply) and ends the job */
void job_progress(struct job *j, const char *phase, int force);
int  job_slice_over(const struct timespec *start);
int  job_check_writable(int fd, char *why, size_t whylen);
/* A bkf_writer output: writes to j->fd (arg is the job), counting j->bytes. */
int  job_write_out(void *arg, const uint8_t *p, size_t n);
/* Starts a job that reads the operator's file (verify-backup, restore, import); 0 or why. */
int  job_start_read(enum job_kind kind, const char *op, json_object *req, int conn,
    int *passfd, char *why, size_t whylen);
/* Reads the file in slices; then checks the head. 1 = more to do, 0 = done, -1 = failed (replied). */
int  job_read_step(struct job *j);
/* The keyed MAC and every instance's structure, key and blobs; same return values. */
int  job_verify_step(struct job *j);
/* Loads the keys for the file's kind (backup: root key; export: migration keys). 0 or failed (replied). */
int  job_load_keys(struct job *j);

/*
 * Parks j in PH_KEYS while the broker fetch of the migration key runs
 * (migrate_keys() said VTPM_E_AGAIN with why); ops_run() retries the step
 * that asked. 0, or -1 once JOB_KEYS_WAIT_SEC passed (the caller fails j).
 */
#define JOB_KEYS_WAIT_SEC	60
int  job_keys_wait(struct job *j, const char *why);

/* migrate.c, for backup.c */
int  migrate_admin_export(json_object *req, int conn, int *passfd, json_object **reply);
int  migrate_admin_import(json_object *req, int conn, int *passfd, json_object **reply);
void migrate_step(struct job *j);	/* PH_STOP and PH_APPLY of export and import */
/* The migration secret's keys: *wrap (owned by the caller) and mac_key. 0 or a VTPM_E_* code with why. */
int  migrate_keys(struct seal_kek **wrap, uint8_t *mac_key, char *why, size_t whylen);
void migrate_init(void);

/* Generation order of a file's state against the store's (backup.c). */
enum gen_order { GEN_SAME, GEN_NEWER, GEN_OLDER, GEN_UNCLEAR };
enum gen_order job_gen_order(const struct bkf_section *sec, const struct store_instance *cur,
    const char **why);

#endif
