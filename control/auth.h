/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cluster authentication: the HMAC challenge-response that opens every
 * connection between engines (control RPC, discovery, data plane).
 *
 * This is a byte-in/byte-out state machine, no sockets and no logging: the
 * connection code reads a fixed-size message, hands it over, and sends what
 * comes back. Three messages, each a fixed size, mutual authentication:
 *
 *   server -> client  CHALLENGE  40 bytes  header, nonce_s[32]
 *   client -> server  RESPONSE   72 bytes  header, nonce_c[32], mac_c[32]
 *   server -> client  CONFIRM    40 bytes  header, mac_s[32]
 *
 *   header (8 bytes): "PCA1", version u8 (1), flags u8, type u8, reserved u8 (0)
 *     flags, CHALLENGE and RESPONSE: bit 0 = the sender has a cluster secret;
 *       the other bits are 0.
 *     flags, CONFIRM: the status, 0 = accepted (the only value defined: a
 *       server that denies sends nothing at all).
 *     type: 1 CHALLENGE, 2 RESPONSE, 3 CONFIRM. CHALLENGE and CONFIRM have the
 *       same size; the type keeps one from ever being read as the other.
 *
 *   mac_c = HMAC-SHA256(secret, "peercache-auth-v1 client" || nonce_s || nonce_c)
 *   mac_s = HMAC-SHA256(secret, "peercache-auth-v1 server" || nonce_c || nonce_s)
 *   (the labels without a terminating NUL)
 *
 * Nonces are fresh from the system CSPRNG on every connection, so a RESPONSE
 * recorded on one connection fails on the next. The two labels differ, so a
 * MAC made by one role never verifies as the other's. The server also
 * refuses a RESPONSE that sends its own nonce back (nonce_c == nonce_s). The
 * client has nothing to check a CHALLENGE against: its own nonce is drawn
 * after the CHALLENGE arrives, so the server cannot make the two equal.
 *
 * Open mode (no secret on either side) runs the same three messages with
 * all-zero MACs, and both sides accept. A secret on one side only always
 * fails, and the client already sees it in the CHALLENGE's flags: a client
 * without a secret facing a server with one fails (the server requires a
 * secret), and a client with a secret refuses a server without one (an
 * unauthenticated peer). Either way the client sends no RESPONSE; a server
 * with a secret also denies any RESPONSE that does not carry a valid MAC.
 * The flags are not covered by the MACs and need not be: they only choose
 * which error is reported; whether a side accepts depends on its own secret.
 *
 * What this does not do: it authenticates the handshake, not the bytes after
 * it. An active attacker on the path can let two honest engines (or one
 * engine's client and server sides) complete the handshake through it and
 * then inject into the stream. Deployments that face such an attacker need
 * a protected network (or, later, per-frame MACs keyed from this handshake).
 *
 * Threads: any lcore or thread may call these functions. A struct pc_auth
 * belongs to one connection and is used by that connection's owner only;
 * nothing here is shared between handshakes.
 */
#ifndef PC_AUTH_H
#define PC_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define PC_AUTH_CHALLENGE_LEN 40
#define PC_AUTH_RESPONSE_LEN  72
#define PC_AUTH_CONFIRM_LEN   40
#define PC_AUTH_NONCE_LEN     32
#define PC_AUTH_MAC_LEN       32
#define PC_AUTH_SECRET_MIN    16   /* shorter is guessable (the config enforces it too) */
#define PC_AUTH_SECRET_MAX    1023 /* PC_CONFIG_SECRET_MAX - 1 */

/* Private: the state machine's states and roles. */
enum pc_auth_state {
	PC_AUTH_IDLE = 0,   /* zeroed or wiped */
	PC_AUTH_CHALLENGED, /* server: CHALLENGE sent, waiting for the RESPONSE */
	PC_AUTH_RESPONDED,  /* client: RESPONSE sent, waiting for the CONFIRM */
	PC_AUTH_DONE,       /* both sides proved what they had to */
	PC_AUTH_FAILED,     /* for good: every later call fails the same way */
};

enum pc_auth_role {
	PC_AUTH_ROLE_NONE = 0,
	PC_AUTH_ROLE_SERVER,
	PC_AUTH_ROLE_CLIENT,
};

/*
 * One side of one handshake. The layout is here so that connections can
 * embed it; every field is private, use the functions below.
 */
struct pc_auth {
	/* HMAC keyed with the secret once; wiped as soon as the handshake ends. */
	crypto_auth_hmacsha256_state key;
	uint8_t nonce_s[PC_AUTH_NONCE_LEN];
	uint8_t nonce_c[PC_AUTH_NONCE_LEN];
	const char *reason; /* why it failed, a static string; NULL when it has not */
	int err;            /* the failure's -errno, 0 when it has not failed */
	uint8_t role;       /* enum pc_auth_role */
	uint8_t state;      /* enum pc_auth_state */
	bool has_secret;
};

/*
 * Server, on accepting a connection: start a handshake and write the
 * CHALLENGE to send. `secret` is the cluster secret (PC_AUTH_SECRET_MIN to
 * PC_AUTH_SECRET_MAX bytes, any values); secret_len 0 means open mode (no
 * secret; `secret` is ignored). Whatever `a` held before is overwritten.
 * Returns 0; -EINVAL for a secret of a bad length, or NULL with a length;
 * -EIO when libsodium cannot start (no randomness source). On failure
 * nothing is written to `challenge`, `a` is failed, pc_auth_error() says
 * why.
 */
int pc_auth_server_start(struct pc_auth *a, const uint8_t *secret, size_t secret_len,
			 uint8_t challenge[PC_AUTH_CHALLENGE_LEN]);

/*
 * Client, on receiving the CHALLENGE (`len` bytes): start a handshake and
 * write the RESPONSE to send. `secret` as for pc_auth_server_start().
 * Whatever `a` held before is overwritten; `response` is written only on
 * success. Returns 0; -EPROTO for a malformed CHALLENGE (length, magic,
 * version, type, flags or reserved bits); -EACCES when exactly one side has
 * a secret (the server requires one we lack, or the server has none and we
 * refuse an unauthenticated peer); -EINVAL and -EIO as for
 * pc_auth_server_start(). On failure the caller sends nothing and closes;
 * pc_auth_error() says why.
 */
int pc_auth_client_respond(struct pc_auth *a, const uint8_t *secret, size_t secret_len,
			   const uint8_t *challenge, size_t len,
			   uint8_t response[PC_AUTH_RESPONSE_LEN]);

/*
 * Server, on receiving the RESPONSE (`len` bytes): check it and write the
 * CONFIRM to send. Returns 0 when the client is accepted (pc_auth_done() is
 * true); -EACCES when it is denied (wrong or missing secret, a replayed or
 * forged MAC, our own nonce sent back): the caller sends nothing and closes;
 * -EPROTO for a malformed RESPONSE or a call out of order (no CHALLENGE
 * outstanding). `confirm` is written only on success. Once a handshake has
 * failed, every later call returns its first error again.
 */
int pc_auth_server_verify(struct pc_auth *a, const uint8_t *response, size_t len,
			  uint8_t confirm[PC_AUTH_CONFIRM_LEN]);

/*
 * Client, on receiving the CONFIRM (`len` bytes): check that the server
 * holds the secret too. Returns 0 when it does (pc_auth_done() is true);
 * -EACCES when its MAC is wrong (a server with another secret, or a fake
 * one); -EPROTO for a malformed CONFIRM, a status other than accepted, or a
 * call out of order (no RESPONSE outstanding). Once a handshake has failed,
 * every later call returns its first error again.
 */
int pc_auth_client_finish(struct pc_auth *a, const uint8_t *confirm, size_t len);

/* True once this side has completed the handshake successfully. */
bool pc_auth_done(const struct pc_auth *a);

/*
 * Why the handshake failed, for the caller's log line: a static string,
 * never NULL ("no error" when it has not failed). Never contains the secret.
 */
const char *pc_auth_error(const struct pc_auth *a);

/*
 * Zero the whole struct, keyed HMAC state included; `a` is then idle and
 * may start a new handshake. Call when a connection closes mid-handshake (a
 * finished or failed handshake has already wiped its key). Accepts NULL.
 */
void pc_auth_wipe(struct pc_auth *a);

#endif /* PC_AUTH_H */
