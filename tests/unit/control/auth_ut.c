/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control/auth.c: the HMAC challenge-response between engines. Both sides
 * run in-process and the messages are passed by hand, so every attack is a
 * few lines: a wrong or missing secret on either side, a replayed RESPONSE,
 * a reflected nonce or MAC, a fake server, any single flipped bit, and every
 * malformed header field. The MACs are checked against libsodium's one-shot
 * HMAC over the documented input, not against the module's own helper.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../../../control/auth.c"
#include "ut.h"
#include "helpers.h"

#define LABEL_LEN 24 /* "peercache-auth-v1 client" without its NUL */

static const uint8_t g_secret[] = "correct horse battery staple, cluster A";
static const uint8_t g_other[] = "correct horse battery staple, cluster B";
#define SECRET_LEN (sizeof(g_secret) - 1)
#define OTHER_LEN  (sizeof(g_other) - 1)

/* One connection: both sides and the three messages as they went over the wire. */
struct conn {
	struct pc_auth srv;
	struct pc_auth cli;
	uint8_t challenge[PC_AUTH_CHALLENGE_LEN];
	uint8_t response[PC_AUTH_RESPONSE_LEN];
	uint8_t confirm[PC_AUTH_CONFIRM_LEN];
};

/* Run the server's start and the client's respond; the RESPONSE is not yet verified. */
static void
conn_respond(struct conn *c, const uint8_t *srv_secret, size_t srv_len, const uint8_t *cli_secret,
	     size_t cli_len)
{
	memset(c, 0, sizeof(*c));
	CU_ASSERT_EQUAL_FATAL(pc_auth_server_start(&c->srv, srv_secret, srv_len, c->challenge), 0);
	CU_ASSERT_EQUAL_FATAL(pc_auth_client_respond(&c->cli, cli_secret, cli_len, c->challenge,
						     sizeof(c->challenge), c->response),
			      0);
}

/* A whole good handshake with the same secret (or none) on both sides. */
static void
conn_full(struct conn *c, const uint8_t *secret, size_t len)
{
	conn_respond(c, secret, len, secret, len);
	CU_ASSERT_EQUAL_FATAL(
		pc_auth_server_verify(&c->srv, c->response, sizeof(c->response), c->confirm), 0);
	CU_ASSERT_EQUAL_FATAL(pc_auth_client_finish(&c->cli, c->confirm, sizeof(c->confirm)), 0);
}

/* The documented MAC, computed independently: HMAC(secret, label || first || second). */
static void
ref_mac(const uint8_t *secret, size_t len, const char *label, const uint8_t *first,
	const uint8_t *second, uint8_t mac[PC_AUTH_MAC_LEN])
{
	uint8_t in[LABEL_LEN + 2 * PC_AUTH_NONCE_LEN];
	crypto_auth_hmacsha256_state st;

	CU_ASSERT_EQUAL_FATAL(strlen(label), LABEL_LEN);
	memcpy(in, label, LABEL_LEN);
	memcpy(in + LABEL_LEN, first, PC_AUTH_NONCE_LEN);
	memcpy(in + LABEL_LEN + PC_AUTH_NONCE_LEN, second, PC_AUTH_NONCE_LEN);
	/* The streaming API: the one-shot crypto_auth_hmacsha256() takes a 32-byte key only. */
	crypto_auth_hmacsha256_init(&st, secret, len);
	crypto_auth_hmacsha256_update(&st, in, sizeof(in));
	crypto_auth_hmacsha256_final(&st, mac);
}

static void
test_good_secret(void)
{
	struct conn c;
	uint8_t mac[PC_AUTH_MAC_LEN];
	const uint8_t *nonce_s = c.challenge + 8;
	const uint8_t *nonce_c = c.response + 8;

	conn_full(&c, g_secret, SECRET_LEN);
	CU_ASSERT_TRUE(pc_auth_done(&c.srv));
	CU_ASSERT_TRUE(pc_auth_done(&c.cli));
	CU_ASSERT_STRING_EQUAL(pc_auth_error(&c.srv), "no error");
	CU_ASSERT_STRING_EQUAL(pc_auth_error(&c.cli), "no error");

	/* The wire format, byte for byte. */
	CU_ASSERT_EQUAL(memcmp(c.challenge, "PCA1\x01\x01\x01\x00", 8), 0);
	CU_ASSERT_EQUAL(memcmp(c.response, "PCA1\x01\x01\x02\x00", 8), 0);
	CU_ASSERT_EQUAL(memcmp(c.confirm, "PCA1\x01\x00\x03\x00", 8), 0);
	ref_mac(g_secret, SECRET_LEN, "peercache-auth-v1 client", nonce_s, nonce_c, mac);
	CU_ASSERT_EQUAL(memcmp(c.response + 40, mac, PC_AUTH_MAC_LEN), 0);
	ref_mac(g_secret, SECRET_LEN, "peercache-auth-v1 server", nonce_c, nonce_s, mac);
	CU_ASSERT_EQUAL(memcmp(c.confirm + 8, mac, PC_AUTH_MAC_LEN), 0);

	/* The key is not kept once the handshake is over. */
	CU_ASSERT_TRUE(all_zero(&c.srv.key, sizeof(c.srv.key)));
	CU_ASSERT_TRUE(all_zero(&c.cli.key, sizeof(c.cli.key)));
}

static void
test_secret_lengths(void)
{
	uint8_t big[PC_AUTH_SECRET_MAX + 1];
	uint8_t challenge[PC_AUTH_CHALLENGE_LEN];
	struct pc_auth a;
	struct conn c;
	uint8_t mac[PC_AUTH_MAC_LEN];

	/* Any bytes, NULs included; longer than the HMAC block (64) is hashed, and still works. */
	for (size_t i = 0; i < sizeof(big); i++) {
		big[i] = (uint8_t)(i * 7);
	}
	conn_full(&c, big, PC_AUTH_SECRET_MAX);
	ref_mac(big, PC_AUTH_SECRET_MAX, "peercache-auth-v1 server", c.response + 8,
		c.challenge + 8, mac);
	CU_ASSERT_EQUAL(memcmp(c.confirm + 8, mac, PC_AUTH_MAC_LEN), 0);
	conn_full(&c, big, PC_AUTH_SECRET_MIN);

	/* A secret that differs only past byte 64 is a different secret. */
	conn_respond(&c, big, PC_AUTH_SECRET_MAX, big, PC_AUTH_SECRET_MAX - 1);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EACCES);

	CU_ASSERT_EQUAL(pc_auth_server_start(&a, big, PC_AUTH_SECRET_MAX + 1, challenge), -EINVAL);
	CU_ASSERT_STRING_EQUAL(pc_auth_error(&a), "cluster secret of a bad length");
	CU_ASSERT_FALSE(pc_auth_done(&a));
	CU_ASSERT_EQUAL(pc_auth_server_start(&a, big, PC_AUTH_SECRET_MIN - 1, challenge), -EINVAL);
	CU_ASSERT_EQUAL(pc_auth_server_start(&a, NULL, 32, challenge), -EINVAL);
	CU_ASSERT_EQUAL(
		pc_auth_client_respond(&a, big, 1, c.challenge, sizeof(c.challenge), c.response),
		-EINVAL);
	/* A failed start leaves nothing to verify. */
	CU_ASSERT_EQUAL(pc_auth_server_verify(&a, c.response, sizeof(c.response), c.confirm),
			-EINVAL);
	/* Length 0 is open mode whatever the pointer. */
	CU_ASSERT_EQUAL(pc_auth_server_start(&a, big, 0, challenge), 0);
	CU_ASSERT_EQUAL(challenge[5], 0);
}

static void
test_wrong_secret(void)
{
	struct conn c;
	uint8_t untouched[PC_AUTH_CONFIRM_LEN];

	conn_respond(&c, g_secret, SECRET_LEN, g_other, OTHER_LEN);
	memset(c.confirm, 0xa5, sizeof(c.confirm));
	memcpy(untouched, c.confirm, sizeof(untouched));
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EACCES);
	CU_ASSERT_FALSE(pc_auth_done(&c.srv));
	/* Denied means nothing to send. */
	CU_ASSERT_EQUAL(memcmp(c.confirm, untouched, sizeof(untouched)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.srv), "client MAC mismatch"));
	CU_ASSERT_TRUE(all_zero(&c.srv.key, sizeof(c.srv.key)));
}

static void
test_fake_server(void)
{
	struct conn c;
	struct pc_auth fake;
	uint8_t challenge[PC_AUTH_CHALLENGE_LEN];

	/*
	 * A server with another secret cannot verify the client, but a fake one
	 * answers anyway: CONFIRM with a MAC under its own key. The client,
	 * which never learns whether the server checked, must catch it.
	 */
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	CU_ASSERT_EQUAL_FATAL(pc_auth_server_start(&fake, g_other, OTHER_LEN, challenge), 0);
	auth_put_header(c.confirm, PC_AUTH_TYPE_CONFIRM, PC_AUTH_ACCEPTED);
	auth_mac(&fake, PC_AUTH_LABEL_SERVER, c.cli.nonce_c, c.cli.nonce_s, c.confirm + 8);
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, c.confirm, sizeof(c.confirm)), -EACCES);
	CU_ASSERT_FALSE(pc_auth_done(&c.cli));
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.cli), "server MAC mismatch"));
	pc_auth_wipe(&fake);

	/* An all-zero MAC (an "open" CONFIRM) does not fool a client with a secret either. */
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	auth_put_header(c.confirm, PC_AUTH_TYPE_CONFIRM, PC_AUTH_ACCEPTED);
	memset(c.confirm + 8, 0, PC_AUTH_MAC_LEN);
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, c.confirm, sizeof(c.confirm)), -EACCES);
}

static void
test_replayed_response(void)
{
	struct conn c1;
	struct conn c2;

	/* Record a good RESPONSE, then play it against a new connection's CHALLENGE. */
	conn_full(&c1, g_secret, SECRET_LEN);
	CU_ASSERT_EQUAL_FATAL(pc_auth_server_start(&c2.srv, g_secret, SECRET_LEN, c2.challenge), 0);
	CU_ASSERT_EQUAL(
		pc_auth_server_verify(&c2.srv, c1.response, sizeof(c1.response), c2.confirm),
		-EACCES);
	CU_ASSERT_FALSE(pc_auth_done(&c2.srv));
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c2.srv), "replay"));

	/* A recorded CONFIRM does not finish a new client either. */
	conn_respond(&c2, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c2.cli, c1.confirm, sizeof(c1.confirm)), -EACCES);
}

static void
test_open_mode(void)
{
	struct conn c;

	conn_full(&c, NULL, 0);
	CU_ASSERT_TRUE(pc_auth_done(&c.srv));
	CU_ASSERT_TRUE(pc_auth_done(&c.cli));
	CU_ASSERT_EQUAL(c.challenge[5], 0);
	CU_ASSERT_EQUAL(c.response[5], 0);
	CU_ASSERT_TRUE(all_zero(c.response + 40, PC_AUTH_MAC_LEN));
	CU_ASSERT_TRUE(all_zero(c.confirm + 8, PC_AUTH_MAC_LEN));
	/* Nonces still flow, so open mode is the same code path. */
	CU_ASSERT_FALSE(all_zero(c.challenge + 8, PC_AUTH_NONCE_LEN));
	CU_ASSERT_FALSE(all_zero(c.response + 8, PC_AUTH_NONCE_LEN));
}

static void
test_open_client_secret_server(void)
{
	struct conn c;

	/* The client sees the server's flag and fails before sending anything. */
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL_FATAL(pc_auth_server_start(&c.srv, g_secret, SECRET_LEN, c.challenge), 0);
	CU_ASSERT_EQUAL(pc_auth_client_respond(&c.cli, NULL, 0, c.challenge, sizeof(c.challenge),
					       c.response),
			-EACCES);
	CU_ASSERT_FALSE(pc_auth_done(&c.cli));
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.cli), "requires a cluster_secret"));
	CU_ASSERT_TRUE(all_zero(c.response, sizeof(c.response)));

	/* An open RESPONSE sent anyway (an old or hostile client) is denied. */
	auth_put_header(c.response, PC_AUTH_TYPE_RESPONSE, 0);
	randombytes_buf(c.response + 8, PC_AUTH_NONCE_LEN);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EACCES);
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.srv), "client has no cluster_secret"));
}

static void
test_secret_client_open_server(void)
{
	struct conn c;
	struct conn open;

	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL_FATAL(pc_auth_server_start(&c.srv, NULL, 0, c.challenge), 0);
	CU_ASSERT_EQUAL(pc_auth_client_respond(&c.cli, g_secret, SECRET_LEN, c.challenge,
					       sizeof(c.challenge), c.response),
			-EACCES);
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.cli), "unauthenticated peer"));

	/* An open server never accepts a client that claims a secret. */
	conn_respond(&open, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	CU_ASSERT_EQUAL(
		pc_auth_server_verify(&c.srv, open.response, sizeof(open.response), c.confirm),
		-EACCES);
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.srv), "this node has none"));
}

static void
test_nonces_fresh(void)
{
	struct conn c1;
	struct conn c2;

	conn_full(&c1, g_secret, SECRET_LEN);
	conn_full(&c2, g_secret, SECRET_LEN);
	CU_ASSERT_NOT_EQUAL(memcmp(c1.challenge + 8, c2.challenge + 8, PC_AUTH_NONCE_LEN), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(c1.response + 8, c2.response + 8, PC_AUTH_NONCE_LEN), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(c1.challenge + 8, c1.response + 8, PC_AUTH_NONCE_LEN), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(c1.confirm + 8, c2.confirm + 8, PC_AUTH_MAC_LEN), 0);
	CU_ASSERT_FALSE(all_zero(c1.challenge + 8, PC_AUTH_NONCE_LEN));
}

static void
test_reflection(void)
{
	struct conn c;
	struct pc_auth keyed;
	uint8_t challenge[PC_AUTH_CHALLENGE_LEN];
	uint8_t *nonce_c = c.response + 8;
	uint8_t *mac_c = c.response + 40;

	/*
	 * The server's own nonce sent back, with the MAC a secret holder would
	 * compute for it: refused for the nonce alone.
	 */
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	memcpy(nonce_c, c.challenge + 8, PC_AUTH_NONCE_LEN);
	ref_mac(g_secret, SECRET_LEN, "peercache-auth-v1 client", c.challenge + 8, nonce_c, mac_c);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EACCES);
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.srv), "own nonce"));

	/* The same in open mode, where no MAC would catch it. */
	conn_respond(&c, NULL, 0, NULL, 0);
	memcpy(nonce_c, c.challenge + 8, PC_AUTH_NONCE_LEN);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EACCES);

	/* The client's own MAC sent back as the server's: the labels differ. */
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	auth_put_header(c.confirm, PC_AUTH_TYPE_CONFIRM, PC_AUTH_ACCEPTED);
	memcpy(c.confirm + 8, mac_c, PC_AUTH_MAC_LEN);
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, c.confirm, sizeof(c.confirm)), -EACCES);

	/*
	 * A server-labelled MAC over the right nonces (what a server would
	 * send) is not a client's proof: a CONFIRM cannot be turned into a
	 * RESPONSE.
	 */
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	CU_ASSERT_EQUAL_FATAL(pc_auth_server_start(&keyed, g_secret, SECRET_LEN, challenge), 0);
	auth_mac(&keyed, PC_AUTH_LABEL_SERVER, c.challenge + 8, nonce_c, mac_c);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EACCES);
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	auth_mac(&keyed, PC_AUTH_LABEL_SERVER, nonce_c, c.challenge + 8, mac_c);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EACCES);
	pc_auth_wipe(&keyed);
}

static void
test_response_bit_flips(void)
{
	struct conn c;
	unsigned int failed = 0;

	for (size_t bit = 0; bit < sizeof(c.response) * 8; bit++) {
		int rc;

		conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
		c.response[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		rc = pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm);
		if (rc != -EACCES && rc != -EPROTO) {
			failed++;
			fprintf(stderr, "RESPONSE bit %zu flipped: verify returned %d\n", bit, rc);
		}
		CU_ASSERT_FALSE(pc_auth_done(&c.srv));
	}
	CU_ASSERT_EQUAL(failed, 0);
	/* The unflipped control passes, so the loop above tests the flip. */
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			0);
}

static void
test_confirm_bit_flips(void)
{
	struct conn c;
	uint8_t good[PC_AUTH_CONFIRM_LEN];
	struct pc_auth saved;
	unsigned int failed = 0;

	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	saved = c.cli;
	CU_ASSERT_EQUAL_FATAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), good),
			      0);
	for (size_t bit = 0; bit < sizeof(c.confirm) * 8; bit++) {
		int rc;

		c.cli = saved;
		memcpy(c.confirm, good, sizeof(good));
		c.confirm[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		rc = pc_auth_client_finish(&c.cli, c.confirm, sizeof(c.confirm));
		if (rc != -EACCES && rc != -EPROTO) {
			failed++;
			fprintf(stderr, "CONFIRM bit %zu flipped: finish returned %d\n", bit, rc);
		}
		CU_ASSERT_FALSE(pc_auth_done(&c.cli));
	}
	CU_ASSERT_EQUAL(failed, 0);
	c.cli = saved;
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, good, sizeof(good)), 0);
	pc_auth_wipe(&saved);
}

/* Each header byte of each message, set to a wrong value, is -EPROTO and says so. */
static void
test_malformed_headers(void)
{
	static const struct {
		size_t off;
		uint8_t value;
		const char *why;
	} bad[] = {
		{0, 'X', "bad magic"}, {3, '2', "bad magic"}, {4, 0, "version"}, {4, 2, "version"},
		{5, 0x02, "flag"},     {5, 0x80, "flag"},     {6, 0, "type"},    {6, 4, "type"},
		{7, 1, "reserved"},    {7, 0x80, "reserved"},
	};
	struct conn c;

	for (size_t i = 0; i < PC_ARRAY_SIZE(bad); i++) {
		uint8_t msg[PC_AUTH_RESPONSE_LEN];

		/* CHALLENGE, at the client. */
		memset(&c, 0, sizeof(c));
		CU_ASSERT_EQUAL_FATAL(
			pc_auth_server_start(&c.srv, g_secret, SECRET_LEN, c.challenge), 0);
		memcpy(msg, c.challenge, PC_AUTH_CHALLENGE_LEN);
		msg[bad[i].off] = bad[i].value;
		CU_ASSERT_EQUAL(pc_auth_client_respond(&c.cli, g_secret, SECRET_LEN, msg,
						       PC_AUTH_CHALLENGE_LEN, c.response),
				-EPROTO);
		CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.cli), bad[i].why));

		/* RESPONSE, at the server. */
		conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
		memcpy(msg, c.response, PC_AUTH_RESPONSE_LEN);
		msg[bad[i].off] = bad[i].value;
		CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, msg, PC_AUTH_RESPONSE_LEN, c.confirm),
				-EPROTO);
		CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.srv), bad[i].why));

		/* CONFIRM, at the client; byte 5 is the status there. */
		conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
		CU_ASSERT_EQUAL_FATAL(
			pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			0);
		memcpy(msg, c.confirm, PC_AUTH_CONFIRM_LEN);
		msg[bad[i].off] = bad[i].value;
		CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, msg, PC_AUTH_CONFIRM_LEN), -EPROTO);
		CU_ASSERT_PTR_NOT_NULL(
			strstr(pc_auth_error(&c.cli), bad[i].off == 5 ? "status" : bad[i].why));
	}
}

static void
test_malformed_lengths(void)
{
	static const size_t deltas[] = {1, 8};
	uint8_t big[PC_AUTH_RESPONSE_LEN + 16] = {0};
	struct conn c;

	/* Empty, NULL, one short, one long, a header only: the length is checked exactly. */
	for (size_t i = 0; i < PC_ARRAY_SIZE(deltas); i++) {
		size_t d = deltas[i];

		conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
		memcpy(big, c.response, sizeof(c.response));
		CU_ASSERT_EQUAL(
			pc_auth_server_verify(&c.srv, big, PC_AUTH_RESPONSE_LEN + d, c.confirm),
			-EPROTO);
		CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.srv), "length"));
		conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
		CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, PC_AUTH_RESPONSE_LEN - d,
						      c.confirm),
				-EPROTO);

		memcpy(big, c.challenge, sizeof(c.challenge));
		CU_ASSERT_EQUAL(pc_auth_client_respond(&c.cli, g_secret, SECRET_LEN, big,
						       PC_AUTH_CHALLENGE_LEN + d, c.response),
				-EPROTO);
		CU_ASSERT_EQUAL(pc_auth_client_respond(&c.cli, g_secret, SECRET_LEN, c.challenge,
						       PC_AUTH_CHALLENGE_LEN - d, c.response),
				-EPROTO);

		conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
		CU_ASSERT_EQUAL_FATAL(
			pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			0);
		memcpy(big, c.confirm, sizeof(c.confirm));
		CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, big, PC_AUTH_CONFIRM_LEN + d),
				-EPROTO);
	}
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, NULL, PC_AUTH_RESPONSE_LEN, c.confirm),
			-EPROTO);
	CU_ASSERT_EQUAL(pc_auth_client_respond(&c.cli, NULL, 0, NULL, 0, c.response), -EPROTO);
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, c.confirm, 0), -EPROTO);
}

static void
test_open_mode_strict(void)
{
	struct conn c;

	/* No secret means no MAC: a non-zero one is malformed, both ways. */
	conn_respond(&c, NULL, 0, NULL, 0);
	c.response[71] = 1;
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.srv), "MAC from a client"));

	conn_respond(&c, NULL, 0, NULL, 0);
	CU_ASSERT_EQUAL_FATAL(
		pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm), 0);
	c.confirm[8] = 1;
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, c.confirm, sizeof(c.confirm)), -EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.cli), "MAC from a server"));
}

static void
test_type_confusion(void)
{
	struct conn c;

	/* CHALLENGE and CONFIRM have one size; the type byte tells them apart. */
	conn_full(&c, NULL, 0);
	CU_ASSERT_EQUAL(
		pc_auth_client_respond(&c.cli, NULL, 0, c.confirm, sizeof(c.confirm), c.response),
		-EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.cli), "type"));
	conn_respond(&c, NULL, 0, NULL, 0);
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, c.challenge, sizeof(c.challenge)), -EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.cli), "type"));
}

static void
test_out_of_order(void)
{
	struct conn c;
	struct pc_auth zeroed;

	/* Nothing started: no CHALLENGE is outstanding. */
	memset(&c, 0, sizeof(c));
	memset(&zeroed, 0, sizeof(zeroed));
	CU_ASSERT_EQUAL(pc_auth_server_verify(&zeroed, c.response, sizeof(c.response), c.confirm),
			-EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&zeroed), "out of order"));
	memset(&zeroed, 0, sizeof(zeroed));
	CU_ASSERT_EQUAL(pc_auth_client_finish(&zeroed, c.confirm, sizeof(c.confirm)), -EPROTO);

	/* The wrong role's call. */
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c.srv, c.confirm, sizeof(c.confirm)), -EPROTO);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.cli, c.response, sizeof(c.response), c.confirm),
			-EPROTO);
	/* ... poisons both: the right call now fails too. */
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EPROTO);
	CU_ASSERT_FALSE(pc_auth_done(&c.srv));

	/* A step repeated after success fails, and the handshake is no longer done. */
	conn_full(&c, g_secret, SECRET_LEN);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EPROTO);
	CU_ASSERT_FALSE(pc_auth_done(&c.srv));
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, c.confirm, sizeof(c.confirm)), -EPROTO);
	CU_ASSERT_FALSE(pc_auth_done(&c.cli));
}

static void
test_failed_stays_failed(void)
{
	struct conn c;
	uint8_t good[PC_AUTH_RESPONSE_LEN];
	const char *why;

	/* Denied, then the genuine RESPONSE: still denied, same reason. */
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	memcpy(good, c.response, sizeof(good));
	c.response[50] ^= 1;
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EACCES);
	why = pc_auth_error(&c.srv);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, good, sizeof(good), c.confirm), -EACCES);
	CU_ASSERT_FALSE(pc_auth_done(&c.srv));
	CU_ASSERT_PTR_EQUAL(pc_auth_error(&c.srv), why);

	/* Malformed, then genuine: still -EPROTO. */
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, 3, c.confirm), -EPROTO);
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(pc_auth_error(&c.srv), "length"));

	/* The client side too. */
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	CU_ASSERT_EQUAL_FATAL(
		pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm), 0);
	c.confirm[20] ^= 0x10;
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, c.confirm, sizeof(c.confirm)), -EACCES);
	c.confirm[20] ^= 0x10;
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, c.confirm, sizeof(c.confirm)), -EACCES);
	CU_ASSERT_FALSE(pc_auth_done(&c.cli));
}

static void
test_wipe(void)
{
	struct conn c;
	struct pc_auth a;
	uint8_t challenge[PC_AUTH_CHALLENGE_LEN];

	/* Mid-handshake the key is there; wipe leaves not a byte of it. */
	CU_ASSERT_EQUAL_FATAL(pc_auth_server_start(&a, g_secret, SECRET_LEN, challenge), 0);
	CU_ASSERT_FALSE(all_zero(&a.key, sizeof(a.key)));
	pc_auth_wipe(&a);
	CU_ASSERT_TRUE(all_zero(&a, sizeof(a)));
	CU_ASSERT_FALSE(pc_auth_done(&a));
	CU_ASSERT_STRING_EQUAL(pc_auth_error(&a), "no error");
	pc_auth_wipe(NULL);

	/* The client's, after it responded. */
	conn_respond(&c, g_secret, SECRET_LEN, g_secret, SECRET_LEN);
	CU_ASSERT_FALSE(all_zero(&c.cli.key, sizeof(c.cli.key)));
	pc_auth_wipe(&c.cli);
	CU_ASSERT_TRUE(all_zero(&c.cli, sizeof(c.cli)));
	/* A wiped side is idle: it cannot finish. */
	CU_ASSERT_EQUAL(pc_auth_client_finish(&c.cli, c.confirm, sizeof(c.confirm)), -EPROTO);

	/* Failure wipes the key by itself. */
	conn_respond(&c, g_secret, SECRET_LEN, g_other, OTHER_LEN);
	CU_ASSERT_FALSE(all_zero(&c.srv.key, sizeof(c.srv.key)));
	CU_ASSERT_EQUAL(pc_auth_server_verify(&c.srv, c.response, sizeof(c.response), c.confirm),
			-EACCES);
	CU_ASSERT_TRUE(all_zero(&c.srv.key, sizeof(c.srv.key)));

	/* A wiped struct starts a new handshake as well as a fresh one. */
	pc_auth_wipe(&c.srv);
	conn_full(&c, g_secret, SECRET_LEN);
}

static const struct pc_ut_test handshake_tests[] = {
	{"good secret: both sides done, MACs as documented", test_good_secret},
	{"secret lengths: 16..1023 bytes, any values", test_secret_lengths},
	{"wrong secret: the server denies, sends nothing", test_wrong_secret},
	{"fake server: the client catches it at CONFIRM", test_fake_server},
	{"replayed RESPONSE or CONFIRM is refused", test_replayed_response},
	{"open mode: no secret on either side", test_open_mode},
	{"open client vs secret server: denied", test_open_client_secret_server},
	{"secret client vs open server: refused", test_secret_client_open_server},
	{"nonces differ between connections", test_nonces_fresh},
	{"reflection: own nonce or other role's MAC", test_reflection},
	{NULL, NULL},
};

static const struct pc_ut_test tamper_tests[] = {
	{"every single bit of a RESPONSE matters", test_response_bit_flips},
	{"every single bit of a CONFIRM matters", test_confirm_bit_flips},
	{"each header field of each message", test_malformed_headers},
	{"exact lengths, NULL messages", test_malformed_lengths},
	{"open mode: MAC fields must be zero", test_open_mode_strict},
	{"CHALLENGE and CONFIRM are not interchangeable", test_type_confusion},
	{"calls out of order", test_out_of_order},
	{"a failed handshake stays failed", test_failed_stays_failed},
	{"wipe zeroes the key", test_wipe},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"auth handshake", NULL, NULL, handshake_tests},
	{"auth tampering", NULL, NULL, tamper_tests},
};

int
main(void)
{
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
