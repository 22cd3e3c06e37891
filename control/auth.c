/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cluster authentication: the three-message HMAC challenge-response (see
 * auth.h for the wire format and what it does and does not protect).
 *
 * Every decoder checks the exact length first, then the whole header, then
 * the body; a side with a secret decides only on a constant-time MAC
 * comparison. The keyed HMAC state is prepared once per handshake and
 * wiped the moment the handshake ends, whichever way it ends.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "auth.h"

#define PC_AUTH_MAGIC   "PCA1"
#define PC_AUTH_VERSION 1
#define PC_AUTH_HDR_LEN 8

/* Header offsets: magic[4], version, flags (status in a CONFIRM), type, reserved. */
#define PC_AUTH_OFF_VERSION  4
#define PC_AUTH_OFF_FLAGS    5
#define PC_AUTH_OFF_TYPE     6
#define PC_AUTH_OFF_RESERVED 7

#define PC_AUTH_TYPE_CHALLENGE 1
#define PC_AUTH_TYPE_RESPONSE  2
#define PC_AUTH_TYPE_CONFIRM   3

#define PC_AUTH_F_SECRET 0x01 /* the sender has a cluster secret */
#define PC_AUTH_ACCEPTED 0    /* CONFIRM status */

/* Both labels have the same length, so label || nonce || nonce parses one way only. */
#define PC_AUTH_LABEL_CLIENT "peercache-auth-v1 client"
#define PC_AUTH_LABEL_SERVER "peercache-auth-v1 server"
#define PC_AUTH_LABEL_LEN    (sizeof(PC_AUTH_LABEL_CLIENT) - 1)

_Static_assert(sizeof(PC_AUTH_LABEL_CLIENT) == sizeof(PC_AUTH_LABEL_SERVER),
	       "labels must have one length");
_Static_assert(PC_AUTH_MAC_LEN == crypto_auth_hmacsha256_BYTES, "HMAC-SHA256 is 32 bytes");
_Static_assert(PC_AUTH_CHALLENGE_LEN == PC_AUTH_HDR_LEN + PC_AUTH_NONCE_LEN, "CHALLENGE layout");
_Static_assert(PC_AUTH_RESPONSE_LEN == PC_AUTH_HDR_LEN + PC_AUTH_NONCE_LEN + PC_AUTH_MAC_LEN,
	       "RESPONSE layout");
_Static_assert(PC_AUTH_CONFIRM_LEN == PC_AUTH_HDR_LEN + PC_AUTH_MAC_LEN, "CONFIRM layout");

/*
 * Mark the handshake failed and wipe the key. Only the first failure is
 * recorded: it is the one worth logging, and a failed handshake must keep
 * failing whatever the caller feeds it next.
 */
static int
auth_fail(struct pc_auth *a, int err, const char *reason)
{
	if (a->state != PC_AUTH_FAILED) {
		a->state = PC_AUTH_FAILED;
		a->err = err;
		a->reason = reason;
	}
	sodium_memzero(&a->key, sizeof(a->key));
	return a->err;
}

/* Reset `a` for a new handshake and key it; secret_len 0 is open mode. */
static int
auth_begin(struct pc_auth *a, uint8_t role, const uint8_t *secret, size_t secret_len)
{
	sodium_memzero(a, sizeof(*a));
	a->role = role;
	if (secret_len != 0 && (secret == NULL || secret_len < PC_AUTH_SECRET_MIN ||
				secret_len > PC_AUTH_SECRET_MAX)) {
		return auth_fail(a, -EINVAL, "cluster secret of a bad length");
	}
	/* Idempotent and thread-safe; randombytes_buf() must not run before it. */
	if (sodium_init() < 0) {
		return auth_fail(a, -EIO, "libsodium failed to initialize");
	}
	a->has_secret = secret_len != 0;
	if (a->has_secret) {
		crypto_auth_hmacsha256_init(&a->key, secret, secret_len);
	}
	return 0;
}

/* HMAC(secret, label || first || second), from the state keyed once. */
static void
auth_mac(const struct pc_auth *a, const char *label, const uint8_t *first, const uint8_t *second,
	 uint8_t mac[PC_AUTH_MAC_LEN])
{
	crypto_auth_hmacsha256_state st = a->key;

	crypto_auth_hmacsha256_update(&st, (const unsigned char *)label, PC_AUTH_LABEL_LEN);
	crypto_auth_hmacsha256_update(&st, first, PC_AUTH_NONCE_LEN);
	crypto_auth_hmacsha256_update(&st, second, PC_AUTH_NONCE_LEN);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

static void
auth_put_header(uint8_t *msg, uint8_t type, uint8_t flags)
{
	memcpy(msg, PC_AUTH_MAGIC, 4);
	msg[PC_AUTH_OFF_VERSION] = PC_AUTH_VERSION;
	msg[PC_AUTH_OFF_FLAGS] = flags;
	msg[PC_AUTH_OFF_TYPE] = type;
	msg[PC_AUTH_OFF_RESERVED] = 0;
}

/*
 * Check the length and the header of a message of `type`. Flags bits other
 * than PC_AUTH_F_SECRET (any non-zero status in a CONFIRM) are malformed.
 * Returns 0, or fails the handshake with -EPROTO.
 */
static int
auth_check_header(struct pc_auth *a, const uint8_t *msg, size_t len, size_t want, uint8_t type)
{
	uint8_t allowed = type == PC_AUTH_TYPE_CONFIRM ? PC_AUTH_ACCEPTED : PC_AUTH_F_SECRET;

	if (msg == NULL || len != want) {
		return auth_fail(a, -EPROTO, "message of the wrong length");
	}
	if (memcmp(msg, PC_AUTH_MAGIC, 4) != 0) {
		return auth_fail(a, -EPROTO, "bad magic: not a PeerCache auth message");
	}
	if (msg[PC_AUTH_OFF_VERSION] != PC_AUTH_VERSION) {
		return auth_fail(a, -EPROTO, "unsupported auth protocol version");
	}
	if (msg[PC_AUTH_OFF_TYPE] != type) {
		return auth_fail(a, -EPROTO, "unexpected message type (out of order)");
	}
	if (msg[PC_AUTH_OFF_RESERVED] != 0) {
		return auth_fail(a, -EPROTO, "reserved header bits set");
	}
	if ((msg[PC_AUTH_OFF_FLAGS] & ~allowed) != 0) {
		return auth_fail(a, -EPROTO,
				 type == PC_AUTH_TYPE_CONFIRM ? "CONFIRM status is not accepted"
							      : "unknown flag bits set");
	}
	return 0;
}

/* A call that does not fit the state fails the handshake (a failed one keeps its error). */
static int
auth_expect(struct pc_auth *a, uint8_t role, uint8_t state)
{
	if (a->state == PC_AUTH_FAILED) {
		return a->err;
	}
	if (a->role != role || a->state != state) {
		return auth_fail(a, -EPROTO, "auth call out of order");
	}
	return 0;
}

int
pc_auth_server_start(struct pc_auth *a, const uint8_t *secret, size_t secret_len,
		     uint8_t challenge[PC_AUTH_CHALLENGE_LEN])
{
	int rc = auth_begin(a, PC_AUTH_ROLE_SERVER, secret, secret_len);

	if (rc != 0) {
		return rc;
	}
	randombytes_buf(a->nonce_s, sizeof(a->nonce_s));
	auth_put_header(challenge, PC_AUTH_TYPE_CHALLENGE, a->has_secret ? PC_AUTH_F_SECRET : 0);
	memcpy(challenge + PC_AUTH_HDR_LEN, a->nonce_s, PC_AUTH_NONCE_LEN);
	a->state = PC_AUTH_CHALLENGED;
	return 0;
}

int
pc_auth_client_respond(struct pc_auth *a, const uint8_t *secret, size_t secret_len,
		       const uint8_t *challenge, size_t len, uint8_t response[PC_AUTH_RESPONSE_LEN])
{
	uint8_t mac[PC_AUTH_MAC_LEN] = {0};
	bool server_secret;
	int rc = auth_begin(a, PC_AUTH_ROLE_CLIENT, secret, secret_len);

	if (rc != 0) {
		return rc;
	}
	rc = auth_check_header(a, challenge, len, PC_AUTH_CHALLENGE_LEN, PC_AUTH_TYPE_CHALLENGE);
	if (rc != 0) {
		return rc;
	}
	server_secret = (challenge[PC_AUTH_OFF_FLAGS] & PC_AUTH_F_SECRET) != 0;
	if (server_secret && !a->has_secret) {
		return auth_fail(a, -EACCES,
				 "the server requires a cluster_secret and this node has none");
	}
	if (!server_secret && a->has_secret) {
		return auth_fail(
			a, -EACCES,
			"the server has no cluster_secret: refusing an unauthenticated peer");
	}
	memcpy(a->nonce_s, challenge + PC_AUTH_HDR_LEN, PC_AUTH_NONCE_LEN);
	randombytes_buf(a->nonce_c, sizeof(a->nonce_c));
	if (a->has_secret) {
		auth_mac(a, PC_AUTH_LABEL_CLIENT, a->nonce_s, a->nonce_c, mac);
	}
	auth_put_header(response, PC_AUTH_TYPE_RESPONSE, a->has_secret ? PC_AUTH_F_SECRET : 0);
	memcpy(response + PC_AUTH_HDR_LEN, a->nonce_c, PC_AUTH_NONCE_LEN);
	memcpy(response + PC_AUTH_HDR_LEN + PC_AUTH_NONCE_LEN, mac, PC_AUTH_MAC_LEN);
	a->state = PC_AUTH_RESPONDED;
	return 0;
}

int
pc_auth_server_verify(struct pc_auth *a, const uint8_t *response, size_t len,
		      uint8_t confirm[PC_AUTH_CONFIRM_LEN])
{
	uint8_t want[PC_AUTH_MAC_LEN] = {0};
	const uint8_t *nonce_c;
	const uint8_t *mac;
	bool client_secret;
	int rc = auth_expect(a, PC_AUTH_ROLE_SERVER, PC_AUTH_CHALLENGED);

	if (rc != 0) {
		return rc;
	}
	rc = auth_check_header(a, response, len, PC_AUTH_RESPONSE_LEN, PC_AUTH_TYPE_RESPONSE);
	if (rc != 0) {
		return rc;
	}
	nonce_c = response + PC_AUTH_HDR_LEN;
	mac = nonce_c + PC_AUTH_NONCE_LEN;
	client_secret = (response[PC_AUTH_OFF_FLAGS] & PC_AUTH_F_SECRET) != 0;
	/* A client without a secret has no MAC to send; anything else there is garbage. */
	if (!client_secret && !sodium_is_zero(mac, PC_AUTH_MAC_LEN)) {
		return auth_fail(a, -EPROTO, "a MAC from a client that has no cluster_secret");
	}
	if (a->has_secret && !client_secret) {
		return auth_fail(a, -EACCES, "the client has no cluster_secret");
	}
	if (!a->has_secret && client_secret) {
		return auth_fail(a, -EACCES,
				 "the client has a cluster_secret and this node has none");
	}
	/*
	 * Our own nonce sent back is a reflection attempt. The role labels
	 * already keep a reflected MAC from verifying; refusing the nonce too
	 * costs nothing and covers open mode, where there is no MAC.
	 */
	if (sodium_memcmp(nonce_c, a->nonce_s, PC_AUTH_NONCE_LEN) == 0) {
		return auth_fail(a, -EACCES, "the client sent the server's own nonce back");
	}
	memcpy(a->nonce_c, nonce_c, PC_AUTH_NONCE_LEN);
	if (a->has_secret) {
		auth_mac(a, PC_AUTH_LABEL_CLIENT, a->nonce_s, a->nonce_c, want);
		if (sodium_memcmp(mac, want, PC_AUTH_MAC_LEN) != 0) {
			return auth_fail(
				a, -EACCES,
				"client MAC mismatch: a different cluster_secret, or a replay");
		}
		auth_mac(a, PC_AUTH_LABEL_SERVER, a->nonce_c, a->nonce_s, want);
	}
	auth_put_header(confirm, PC_AUTH_TYPE_CONFIRM, PC_AUTH_ACCEPTED);
	memcpy(confirm + PC_AUTH_HDR_LEN, want, PC_AUTH_MAC_LEN);
	sodium_memzero(&a->key, sizeof(a->key));
	a->state = PC_AUTH_DONE;
	return 0;
}

int
pc_auth_client_finish(struct pc_auth *a, const uint8_t *confirm, size_t len)
{
	uint8_t want[PC_AUTH_MAC_LEN];
	const uint8_t *mac;
	int rc = auth_expect(a, PC_AUTH_ROLE_CLIENT, PC_AUTH_RESPONDED);

	if (rc != 0) {
		return rc;
	}
	rc = auth_check_header(a, confirm, len, PC_AUTH_CONFIRM_LEN, PC_AUTH_TYPE_CONFIRM);
	if (rc != 0) {
		return rc;
	}
	mac = confirm + PC_AUTH_HDR_LEN;
	if (a->has_secret) {
		auth_mac(a, PC_AUTH_LABEL_SERVER, a->nonce_c, a->nonce_s, want);
		if (sodium_memcmp(mac, want, PC_AUTH_MAC_LEN) != 0) {
			return auth_fail(a, -EACCES,
					 "server MAC mismatch: the server does not hold this "
					 "cluster_secret (a different secret, or a fake server)");
		}
	} else if (!sodium_is_zero(mac, PC_AUTH_MAC_LEN)) {
		return auth_fail(a, -EPROTO, "a MAC from a server that has no cluster_secret");
	}
	sodium_memzero(&a->key, sizeof(a->key));
	a->state = PC_AUTH_DONE;
	return 0;
}

bool
pc_auth_done(const struct pc_auth *a)
{
	return a->state == PC_AUTH_DONE;
}

const char *
pc_auth_error(const struct pc_auth *a)
{
	return a->state == PC_AUTH_FAILED && a->reason != NULL ? a->reason : "no error";
}

void
pc_auth_wipe(struct pc_auth *a)
{
	if (a != NULL) {
		sodium_memzero(a, sizeof(*a));
	}
}
