/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The data plane's transport interface: how a worker lcore reads pages out
 * of another node's published segment. Two implementations sit behind it:
 * tcp (tcp.h, non-blocking sockets) and rdma (rdma.h, RC QPs with one-sided
 * READ); the engine picks one at start (`protocol`, rdma falling back to
 * tcp with a warning when no device is usable).
 *
 * One struct pc_xport per lcore that drives the data plane (each worker, or
 * the control lcore when it runs the workers' pollers): it owns that lcore's
 * channels to peers (up to max_channels_per_peer each) and, for tcp, the
 * lcore's share of the data port (one SO_REUSEPORT listener per lcore, so
 * serving spreads over the workers). Nothing is shared between lcores and
 * nothing blocks: post, then poll.
 *
 * A READ names a page by where its header is in the owner's segment and the
 * generation the directory gave for it; the owner checks both against its
 * own store (pc_store_pin_at) and never trusts an address from the wire.
 * The bytes land in this node's segment at local_off (a staging slot the
 * caller allocated: header then payload, as in the owner's segment), and
 * the caller checks the header (pc_page_check) before using them: a
 * transport can fail a read, it never vouches for the bytes.
 */
#ifndef PC_TRANSPORT_H
#define PC_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pc_store;
struct pc_xport;

/* Defaults used where struct pc_xport_opts has 0. */
#define PC_XPORT_OP_TIMEOUT_DEFAULT (5ull * 1000000000ull) /* ns */
#define PC_XPORT_CHANNELS_DEFAULT   16

struct pc_xport_opts {
	/* The local segment: where READs land, and (tcp) what is served. */
	struct pc_store *store; /* serving side: pages pinned by offset; may be NULL (no serving) */
	unsigned int ci;        /* this lcore's store cache index */
	void *seg_base;
	uint64_t seg_size;
	/* The data port: tcp listens on it (SO_REUSEPORT, every lcore the same port). */
	const char *bind_host; /* IP literal; NULL or "" = any */
	uint16_t port;         /* 0 = ephemeral: the first lcore's choice, given to the others */
	/* Cluster secret (copied), or secret_len 0: open mode (control/auth.h). */
	const uint8_t *secret;
	size_t secret_len;
	unsigned int max_channels_per_peer; /* 0 = default */
	uint64_t op_timeout_ns;             /* a READ's deadline when the caller gives none */
	bool tcp_zerocopy;                  /* tcp: serve pages with MSG_ZEROCOPY (tcp.h) */
};

/* Where a peer's data plane is (from its member record and the directory). */
struct pc_xport_peer {
	const char *node_id;  /* channels are per node id and incarnation */
	uint64_t incarnation; /* a new one drops the old channels */
	const char *host;     /* IP literal of the data endpoint */
	uint16_t port;
	/* rdma: the owner's segment rkey and address come in its handshake record (qp_proto.h). */
};

struct pc_xport_read {
	uint64_t remote_off; /* page header offset in the owner's segment */
	uint64_t generation; /* the generation the directory named */
	uint32_t len;        /* bytes to read: header + payload */
	uint64_t local_off;  /* destination in the local segment (room for len bytes) */
	uint64_t cookie;     /* the caller's, given back with the completion */
};

/*
 * A finished READ: status 0 (len bytes are at local_off), or -ESTALE (the
 * owner has no page of that generation there: a stale location), -EINVAL
 * (the owner refused the range), -ETIMEDOUT (the deadline passed: the
 * channel was reset), -ECONNRESET / -ECONNREFUSED / -EHOSTUNREACH (the
 * peer is gone), -EACCES (authentication failed), -EPROTO (the peer broke
 * the protocol), -EIO (the owner failed otherwise).
 */
struct pc_xport_cqe {
	uint64_t cookie;
	int status;
};

struct pc_xport_stats {
	uint64_t reads_posted;
	uint64_t reads_ok;
	uint64_t reads_failed; /* any error status */
	uint64_t reads_stale;  /* -ESTALE */
	uint64_t timeouts;
	uint64_t bytes_read;
	uint64_t channels_open; /* now */
	uint64_t channels_opened;
	uint64_t channels_destroyed; /* after an error or a timeout: never reused */
	uint64_t serve_requests;     /* reads served to others (tcp) */
	uint64_t serve_refused;      /* out of range, stale, malformed */
	uint64_t serve_bytes;
	uint64_t serve_conns_open;
	uint64_t serve_malformed; /* connections closed for bad bytes */
	/* tcp zero-copy serving (tcp.h): sends, and their notifications by send. */
	uint64_t serve_zc_sends;  /* sendmsg calls with MSG_ZEROCOPY */
	uint64_t serve_zc_done;   /* of them reported done: their pages unpinned */
	uint64_t serve_zc_copied; /* of those, the kernel copied after all (then: copies) */
	uint64_t serve_zc_nobufs; /* refused (ENOBUFS: locked-memory limits): sent copied */
};

struct pc_xport_ops {
	const char *name; /* "tcp", "rdma" */
	/* NULL with errno set (and a log line) on failure. */
	struct pc_xport *(*create)(const struct pc_xport_opts *opts);
	/*
	 * Close everything. READs still outstanding are dropped (counted in
	 * reads_failed; nothing is delivered after this): drain with poll
	 * first, except at shutdown. tcp unpins what it serves: destroy it
	 * before its store.
	 */
	void (*destroy)(struct pc_xport *x);
	/*
	 * Queue n READs to one peer with an absolute deadline (monotonic ns;
	 * 0 = now + op_timeout). Returns how many were taken (the rest: try
	 * again after a poll; 0 when every channel to the peer is busy), or
	 * -errno (bad arguments).
	 */
	int (*post_reads)(struct pc_xport *x, const struct pc_xport_peer *peer,
			  const struct pc_xport_read *reads, unsigned int n, uint64_t deadline_ns,
			  uint64_t now_ns);
	/*
	 * Do the I/O (both sides: reads in flight and, for tcp, serving), then
	 * write up to max completions. Returns how many were written.
	 */
	int (*poll)(struct pc_xport *x, uint64_t now_ns, struct pc_xport_cqe *out,
		    unsigned int max);
	/* The data port bound (after create): advertised in the member record. */
	uint16_t (*port)(const struct pc_xport *x);
	void (*get_stats)(const struct pc_xport *x, struct pc_xport_stats *st);
	/*
	 * An fd that turns readable when poll has I/O to do (tcp: its epoll
	 * set), for an idle lcore to sleep on (pc_lcore_wait_fd_add); -1 when
	 * completions signal no fd and must be polled (rdma's CQs).
	 */
	int (*wait_fd)(const struct pc_xport *x);
};

#endif /* PC_TRANSPORT_H */
