/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * peercache-ctl: ask a running engine what it knows (members, ring, lookup,
 * stats) over its Unix socket, with the admin protocol of
 * common/pc_admin_proto.h. The engine renders the text; this tool sends one
 * request, reassembles the reply's parts and prints them. libc only.
 *
 * Exit status: 0 success; 1 the engine answered an error, or could not be
 * reached, or broke the protocol; 2 a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pc_admin_proto.h"
#include "pc_session_proto.h"

#ifndef PC_VERSION
#define PC_VERSION "0.0.0"
#endif
#ifndef PC_GIT_REV
#define PC_GIT_REV "unknown"
#endif

#define CTL_SOCKET_DEFAULT  "/tmp/peercache/engine.sock"
#define CTL_TIMEOUT_DEFAULT 10.0
#define CTL_TIMEOUT_MAX     86400.0
#define CTL_REPLY_MAX       (64u << 20) /* the engine sends at most 16 MiB */

#define CTL_MIN(a, b) ((a) < (b) ? (a) : (b))

#define EXIT_ENGINE 1
#define EXIT_USAGE  2

static const char *g_prog = "peercache-ctl";

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: %s [OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"Ask a running PeerCache engine what it knows, over its Unix socket.\n"
		"\n"
		"commands:\n"
		"  members        this node, then every member: role, endpoints, pool, master\n"
		"  ring           the directory ring: each node's share of the key space\n"
		"  lookup KEY...  where the directory has each key's pages (1..%d keys;\n"
		"                 put -- before keys that start with '-')\n"
		"  stats          engine, store, session, cluster and lcore counters\n"
		"\n"
		"options:\n"
		"  -s, --socket PATH      the engine's engine_socket (default %s)\n"
		"  -j, --json             print one JSON document instead of tables\n"
		"  -t, --timeout SECONDS  give up waiting for the engine after this long "
		"(default %.0f)\n"
		"  -n, --namespace NS     the key namespace for lookup (default \"\")\n"
		"  -h, --help             print this help\n"
		"  -V, --version          print the version\n"
		"\n"
		"exit status: 0 success, 1 engine error or no engine, 2 usage error\n",
		g_prog, PC_ADMIN_KEYS_MAX, CTL_SOCKET_DEFAULT, CTL_TIMEOUT_DEFAULT);
}

static int
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", g_prog);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry '%s --help'.\n", g_prog);
	return EXIT_USAGE;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Milliseconds left until deadline, at least 0. */
static int
left_ms(double deadline)
{
	double left = deadline - now_s();

	return left <= 0 ? 0 : (int)(left * 1000.0) + 1;
}

/* ------------------------------------------------------------------ */
/* The request                                                         */
/* ------------------------------------------------------------------ */

struct req {
	uint8_t buf[PC_ADMIN_REQ_MAX];
	size_t len;
};

static void
put(struct req *r, const void *p, size_t n)
{
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

static void
put_u16(struct req *r, uint16_t v)
{
	put(r, &v, sizeof(v));
}

/* Returns 0, or EXIT_USAGE after saying why. */
static int
build_request(struct req *r, uint16_t op, bool json, const char *ns, char **keys, int nkeys)
{
	struct pc_admin_req_hdr h = {
		.magic = PC_ADMIN_MAGIC,
		.version = PC_ADMIN_VERSION,
		.op = op,
		.flags = json ? PC_ADMIN_F_JSON : 0,
	};
	size_t ns_len = strlen(ns);
	int i;

	r->len = 0;
	put(r, &h, sizeof(h));
	if (op != PC_ADMIN_OP_LOOKUP) {
		return 0;
	}
	if (ns_len > PC_NS_MAX) {
		fprintf(stderr, "%s: the namespace has %zu bytes, at most %d\n", g_prog, ns_len,
			PC_NS_MAX);
		return EXIT_USAGE;
	}
	if (nkeys < 1) {
		return usage_error("%s", "lookup needs at least one KEY");
	}
	if (nkeys > PC_ADMIN_KEYS_MAX) {
		fprintf(stderr, "%s: %d keys, at most %d per lookup\n", g_prog, nkeys,
			PC_ADMIN_KEYS_MAX);
		return EXIT_USAGE;
	}
	put_u16(r, (uint16_t)ns_len);
	put(r, ns, ns_len);
	put_u16(r, (uint16_t)nkeys);
	for (i = 0; i < nkeys; i++) {
		size_t len = strlen(keys[i]);

		if (len == 0) {
			fprintf(stderr, "%s: key %d is empty\n", g_prog, i + 1);
			return EXIT_USAGE;
		}
		if (len > PC_KEY_MAX) {
			fprintf(stderr, "%s: key %d has %zu bytes, at most %d\n", g_prog, i + 1,
				len, PC_KEY_MAX);
			return EXIT_USAGE;
		}
		put_u16(r, (uint16_t)len);
		put(r, keys[i], len);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The connection                                                      */
/* ------------------------------------------------------------------ */

/* Connect before the deadline. Returns the socket, or -1 after saying why. */
static int
connect_engine(const char *path, double deadline)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "%s: socket: %s\n", g_prog, strerror(errno));
		return -1;
	}
	for (;;) {
		struct timespec pause = {.tv_sec = 0, .tv_nsec = 10L * 1000 * 1000};

		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			return fd;
		}
		if (errno == EINTR) {
			continue;
		}
		/* A full listen backlog: the engine is busy accepting; retry until the deadline. */
		if (errno == EAGAIN && left_ms(deadline) > 0) {
			nanosleep(&pause, NULL);
			continue;
		}
		break;
	}
	switch (errno) {
	case ENOENT:
		fprintf(stderr,
			"%s: no engine at %s: no such socket (is the engine running? --socket "
			"names its engine_socket)\n",
			g_prog, path);
		break;
	case ECONNREFUSED:
		fprintf(stderr,
			"%s: no engine at %s: connection refused (a socket file left by a stopped "
			"engine?)\n",
			g_prog, path);
		break;
	case EAGAIN:
		fprintf(stderr, "%s: the engine at %s accepts no connection (timed out)\n", g_prog,
			path);
		break;
	default:
		fprintf(stderr, "%s: no engine at %s: %s\n", g_prog, path, strerror(errno));
		break;
	}
	close(fd);
	return -1;
}

/* Wait for events on fd until the deadline. Returns 1 ready, 0 timed out, -1 error. */
static int
wait_fd(int fd, short events, double deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int ms = left_ms(deadline);
		int n;

		if (ms == 0) {
			return 0;
		}
		n = poll(&p, 1, ms);
		if (n > 0) {
			return 1;
		}
		if (n < 0 && errno != EINTR) {
			return -1;
		}
	}
}

static int
send_request(int fd, const char *path, const struct req *r, double deadline, double timeout)
{
	bool grown = false;

	for (;;) {
		ssize_t n = send(fd, r->buf, r->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int w;

		if (n == (ssize_t)r->len) {
			return 0;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && errno == EMSGSIZE && !grown) {
			/* A large lookup over a small default send buffer. */
			int size = (int)(2 * r->len);

			grown = true;
			if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) == 0) {
				continue;
			}
			errno = EMSGSIZE;
		}
		if (n < 0 && errno == EAGAIN) {
			w = wait_fd(fd, POLLOUT, deadline);
			if (w > 0) {
				continue;
			}
			if (w == 0) {
				fprintf(stderr,
					"%s: the engine at %s took no request within %g s\n",
					g_prog, path, timeout);
				return -1;
			}
		}
		fprintf(stderr, "%s: cannot send to the engine at %s: %s\n", g_prog, path,
			n < 0 ? strerror(errno) : "short write");
		return -1;
	}
}

struct reply {
	char *text;
	size_t len;
	int32_t status;
};

/* An engine that predates the admin protocol (or has it off) refuses it as a bad hello. */
static void
report_hello_refusal(const char *path, const uint8_t *buf, size_t n)
{
	struct pc_hello_reply hr;

	memset(&hr, 0, sizeof(hr));
	memcpy(&hr, buf, n < sizeof(hr) ? n : sizeof(hr));
	hr.msg[sizeof(hr.msg) - 1] = '\0';
	fprintf(stderr, "%s: the engine at %s does not serve admin requests: %s\n", g_prog, path,
		hr.msg[0] != '\0' ? hr.msg : "refused");
}

/* Receive every part of one reply. Returns 0, or -1 after saying why. */
static int
recv_reply(int fd, const char *path, double deadline, double timeout, struct reply *out)
{
	static uint8_t buf[sizeof(struct pc_admin_reply_hdr) + PC_ADMIN_CHUNK_MAX];
	bool first = true;

	memset(out, 0, sizeof(*out));
	for (;;) {
		struct pc_admin_reply_hdr h = {0};
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		char *grown;
		int w;

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && errno == EAGAIN) {
			w = wait_fd(fd, POLLIN, deadline);
			if (w > 0) {
				continue;
			}
			if (w == 0) {
				fprintf(stderr,
					"%s: no %sreply from the engine at %s within %g s\n",
					g_prog, first ? "" : "complete ", path, timeout);
				return -1;
			}
			fprintf(stderr, "%s: poll: %s\n", g_prog, strerror(errno));
			return -1;
		}
		if (n <= 0) {
			fprintf(stderr,
				"%s: the engine at %s closed the connection before %s%s%s\n",
				g_prog, path, first ? "replying" : "its reply was complete",
				n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
			return -1;
		}
		memcpy(&h, buf, CTL_MIN((size_t)n, sizeof(h)));
		if ((size_t)n >= sizeof(h.magic) && h.magic == PC_HELLO_REPLY_MAGIC) {
			report_hello_refusal(path, buf, CTL_MIN((size_t)n, sizeof(buf)));
			return -1;
		}
		if ((size_t)n < sizeof(h) || (size_t)n > sizeof(buf)) {
			fprintf(stderr, "%s: malformed reply from the engine at %s (%zd bytes)\n",
				g_prog, path, n);
			return -1;
		}
		if (h.magic != PC_ADMIN_REPLY_MAGIC || h.len != (size_t)n - sizeof(h) ||
		    (!first && h.status != out->status)) {
			fprintf(stderr, "%s: malformed reply from the engine at %s\n", g_prog,
				path);
			return -1;
		}
		if (out->len + h.len > CTL_REPLY_MAX) {
			fprintf(stderr, "%s: the reply from the engine at %s is over %u bytes\n",
				g_prog, path, CTL_REPLY_MAX);
			return -1;
		}
		grown = realloc(out->text, out->len + h.len + 1);
		if (grown == NULL) {
			fprintf(stderr, "%s: out of memory\n", g_prog);
			return -1;
		}
		out->text = grown;
		memcpy(out->text + out->len, buf + sizeof(h), h.len);
		out->len += h.len;
		out->text[out->len] = '\0';
		out->status = h.status;
		first = false;
		if (!(h.flags & PC_ADMIN_RF_MORE)) {
			return 0;
		}
	}
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

static const struct {
	const char *name;
	uint16_t op;
} g_commands[] = {
	{"members", PC_ADMIN_OP_MEMBERS},
	{"ring", PC_ADMIN_OP_RING},
	{"lookup", PC_ADMIN_OP_LOOKUP},
	{"stats", PC_ADMIN_OP_STATS},
};

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"timeout", required_argument, NULL, 't'},
		{"namespace", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	static struct req r;
	const char *path = CTL_SOCKET_DEFAULT;
	const char *ns = "";
	double timeout = CTL_TIMEOUT_DEFAULT;
	double deadline;
	bool json = false;
	struct reply rep;
	uint16_t op = 0;
	size_t i;
	int fd;
	int c;
	int rc;

	while ((c = getopt_long(argc, argv, "s:jt:n:hV", opts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 't':
			errno = 0;
			timeout = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' || !isfinite(timeout) ||
			    timeout <= 0 || timeout > CTL_TIMEOUT_MAX) {
				return usage_error("--timeout %s: expected seconds, above 0 and at "
						   "most 86400",
						   optarg);
			}
			break;
		case 'n':
			ns = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("peercache-ctl %s (%s), admin protocol %d\n", PC_VERSION, PC_GIT_REV,
			       PC_ADMIN_VERSION);
			return 0;
		default:
			fprintf(stderr, "Try '%s --help'.\n", g_prog);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		return usage_error("%s", "no command (members, ring, lookup or stats)");
	}
	for (i = 0; i < sizeof(g_commands) / sizeof(g_commands[0]); i++) {
		if (strcmp(argv[optind], g_commands[i].name) == 0) {
			op = g_commands[i].op;
		}
	}
	if (op == 0) {
		return usage_error("unknown command '%s' (members, ring, lookup or stats)",
				   argv[optind]);
	}
	if (op != PC_ADMIN_OP_LOOKUP && optind + 1 < argc) {
		return usage_error("unexpected argument '%s'", argv[optind + 1]);
	}
	if (path[0] == '\0' || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		return usage_error("--socket '%s': expected a path of 1..107 bytes", path);
	}
	rc = build_request(&r, op, json, ns, argv + optind + 1, argc - optind - 1);
	if (rc != 0) {
		return rc;
	}
	deadline = now_s() + timeout;
	fd = connect_engine(path, deadline);
	if (fd < 0) {
		return EXIT_ENGINE;
	}
	if (send_request(fd, path, &r, deadline, timeout) != 0 ||
	    recv_reply(fd, path, deadline, timeout, &rep) != 0) {
		close(fd);
		return EXIT_ENGINE;
	}
	close(fd);
	if (rep.status != 0) {
		fprintf(stderr, "%s: %s%s", g_prog, rep.len > 0 ? rep.text : "engine error",
			rep.len > 0 && rep.text[rep.len - 1] == '\n' ? "" : "\n");
		free(rep.text);
		return EXIT_ENGINE;
	}
	if (rep.len > 0 && fwrite(rep.text, 1, rep.len, stdout) != rep.len) {
		free(rep.text);
		return EXIT_ENGINE;
	}
	free(rep.text);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "%s: cannot write the reply: %s\n", g_prog, strerror(errno));
		return EXIT_ENGINE;
	}
	return 0;
}
