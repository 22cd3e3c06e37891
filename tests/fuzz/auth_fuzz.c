/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the cluster authentication handshake (control/auth.c).
 *
 * Input: byte 0 picks who has the secret (bit 0 the server, bit 1 the
 * client); bytes 1 and 2 are the lengths of the first two parts; the rest is
 * split into three parts, each fed to one decoder as the peer's message:
 *   part 1, as a RESPONSE, to a server that sent a real CHALLENGE;
 *   part 2, as a CHALLENGE, to a client;
 *   part 3, as a CONFIRM, to a client that sent a real RESPONSE.
 *
 * Properties: every call returns 0, -EACCES or -EPROTO, and done() agrees;
 * a side with the secret never accepts fuzzer bytes (forging an HMAC is
 * infeasible, so a 0 there is a bug); a side without one accepts exactly the
 * documented open-mode message; a failed handshake stays failed and has
 * wiped its key; and any CHALLENGE the client accepts yields a RESPONSE a
 * server with that nonce accepts, whose CONFIRM the client accepts in turn.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "auth.h"
#include "helpers.h"

#define FUZZ_F_SERVER_SECRET 0x01
#define FUZZ_F_CLIENT_SECRET 0x02

static const uint8_t g_secret[] = "fuzz cluster secret, 0123456789";
#define SECRET_LEN (sizeof(g_secret) - 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The result of any step: a known code, done() agreeing, and a failure that sticks. */
static void
check_rc(const struct pc_auth *a, int rc)
{
	if (rc != 0 && rc != -EACCES && rc != -EPROTO) {
		__builtin_trap();
	}
	if (pc_auth_done(a) != (rc == 0)) {
		__builtin_trap();
	}
	if ((rc == 0) != (strcmp(pc_auth_error(a), "no error") == 0)) {
		__builtin_trap();
	}
	/* Whichever way it ended, the key is gone. */
	if (!all_zero(&a->key, sizeof(a->key))) {
		__builtin_trap();
	}
}

/* Is msg the documented header of `type` with flags (status) `flags`? */
static bool
is_header(const uint8_t *msg, uint8_t type, uint8_t flags)
{
	const uint8_t want[8] = {'P', 'C', 'A', '1', 1, flags, type, 0};

	return memcmp(msg, want, sizeof(want)) == 0;
}

static void
fuzz_server(bool secret, const uint8_t *msg, size_t len)
{
	struct pc_auth srv;
	uint8_t challenge[PC_AUTH_CHALLENGE_LEN];
	uint8_t confirm[PC_AUTH_CONFIRM_LEN];
	int rc;

	if (pc_auth_server_start(&srv, g_secret, secret ? SECRET_LEN : 0, challenge) != 0) {
		__builtin_trap();
	}
	rc = pc_auth_server_verify(&srv, msg, len, confirm);
	check_rc(&srv, rc);
	if (rc == 0) {
		/* Only the open RESPONSE gets through, and only to an open server. */
		if (secret || len != PC_AUTH_RESPONSE_LEN || !is_header(msg, 2, 0) ||
		    !all_zero(msg + 40, PC_AUTH_MAC_LEN) ||
		    memcmp(msg + 8, challenge + 8, 32) == 0) {
			__builtin_trap();
		}
		if (!is_header(confirm, 3, 0) || !all_zero(confirm + 8, PC_AUTH_MAC_LEN)) {
			__builtin_trap();
		}
	}
	/* Again: a finished handshake has nothing more to verify, a failed one stays failed. */
	if (pc_auth_server_verify(&srv, msg, len, confirm) != (rc == 0 ? -EPROTO : rc)) {
		__builtin_trap();
	}
	/* And a client's call on a server is out of order. */
	if (rc == 0 && pc_auth_client_finish(&srv, msg, len) != -EPROTO) {
		__builtin_trap();
	}
	pc_auth_wipe(&srv);
}

/* A client accepted `challenge`: a server holding that nonce must complete the handshake. */
static void
round_trip(struct pc_auth *cli, bool secret, const uint8_t *challenge,
	   const uint8_t response[PC_AUTH_RESPONSE_LEN])
{
	struct pc_auth srv;
	uint8_t mine[PC_AUTH_CHALLENGE_LEN];
	uint8_t confirm[PC_AUTH_CONFIRM_LEN];
	struct pc_auth copy = *cli;

	if (!is_header(response, 2, secret ? 1 : 0) ||
	    memcmp(response + 8, challenge + 8, PC_AUTH_NONCE_LEN) == 0 ||
	    secret == all_zero(response + 40, PC_AUTH_MAC_LEN)) {
		__builtin_trap();
	}
	if (pc_auth_server_start(&srv, g_secret, secret ? SECRET_LEN : 0, mine) != 0) {
		__builtin_trap();
	}
	/* The layout is public for embedding; here it lets the fuzzer choose nonce_s. */
	memcpy(srv.nonce_s, challenge + 8, PC_AUTH_NONCE_LEN);
	if (pc_auth_server_verify(&srv, response, PC_AUTH_RESPONSE_LEN, confirm) != 0) {
		__builtin_trap();
	}
	check_rc(&srv, 0);
	if (pc_auth_client_finish(&copy, confirm, sizeof(confirm)) != 0) {
		__builtin_trap();
	}
	check_rc(&copy, 0);
	pc_auth_wipe(&copy);
	pc_auth_wipe(&srv);
}

static void
fuzz_client_challenge(bool cli_secret, const uint8_t *msg, size_t len)
{
	struct pc_auth cli;
	uint8_t response[PC_AUTH_RESPONSE_LEN] = {0};
	int rc = pc_auth_client_respond(&cli, g_secret, cli_secret ? SECRET_LEN : 0, msg, len,
					response);

	if (rc != 0) {
		if (rc != -EACCES && rc != -EPROTO) {
			__builtin_trap();
		}
		check_rc(&cli, rc);
		if (!all_zero(response, sizeof(response))) {
			__builtin_trap();
		}
		return;
	}
	if (pc_auth_done(&cli) || len != PC_AUTH_CHALLENGE_LEN ||
	    !is_header(msg, 1, cli_secret ? 1 : 0)) {
		__builtin_trap();
	}
	round_trip(&cli, cli_secret, msg, response);
	pc_auth_wipe(&cli);
}

static void
fuzz_client_confirm(bool cli_secret, const uint8_t *msg, size_t len)
{
	struct pc_auth srv;
	struct pc_auth cli;
	uint8_t challenge[PC_AUTH_CHALLENGE_LEN];
	uint8_t response[PC_AUTH_RESPONSE_LEN];
	int rc;

	/* A real CHALLENGE with the client's own mode, so that the client responds. */
	if (pc_auth_server_start(&srv, g_secret, cli_secret ? SECRET_LEN : 0, challenge) != 0 ||
	    pc_auth_client_respond(&cli, g_secret, cli_secret ? SECRET_LEN : 0, challenge,
				   sizeof(challenge), response) != 0) {
		__builtin_trap();
	}
	rc = pc_auth_client_finish(&cli, msg, len);
	check_rc(&cli, rc);
	if (rc == 0 && (cli_secret || len != PC_AUTH_CONFIRM_LEN || !is_header(msg, 3, 0) ||
			!all_zero(msg + 8, PC_AUTH_MAC_LEN))) {
		__builtin_trap();
	}
	if (pc_auth_client_finish(&cli, msg, len) != (rc == 0 ? -EPROTO : rc)) {
		__builtin_trap();
	}
	pc_auth_wipe(&cli);
	pc_auth_wipe(&srv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *msg;
	size_t left;
	size_t n1;
	size_t n2;

	if (size < 3) {
		return 0;
	}
	msg = data + 3;
	left = size - 3;
	n1 = data[1] < left ? data[1] : left;
	n2 = data[2] < left - n1 ? data[2] : left - n1;
	fuzz_server((data[0] & FUZZ_F_SERVER_SECRET) != 0, msg, n1);
	fuzz_client_challenge((data[0] & FUZZ_F_CLIENT_SECRET) != 0, msg + n1, n2);
	fuzz_client_confirm((data[0] & FUZZ_F_CLIENT_SECRET) != 0, msg + n1 + n2, left - n1 - n2);
	return 0;
}
