/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Slab classes over the published segment.
 *
 * The segment (see segment.h) is cut into PC_SLAB_CHUNK_SIZE chunks. A size
 * class owns spans: runs of contiguous chunks, each cut into slots of the
 * class's slot size. A slot holds one page: [64-byte header][payload of up
 * to the class capacity][PC_SLAB_KEY_TAIL bytes: the full key], the slot
 * size rounded up to 64 bytes. Classes are fine-grained (16 per octave above
 * 64 KiB, every 4 KiB below) so a page wastes at most ~6 %, and created on
 * first use, so a deployment with one or two page sizes gets exactly those
 * classes. A span goes back to the chunk pool when all its slots are free,
 * and a class that needs memory takes it from there: a segment full of one
 * size can be reused for another after eviction.
 *
 * Every slot has a 64-byte engine-private descriptor (struct pc_slot) in a
 * table outside the segment; the slab owns off, cap and class_id, the store
 * (store.c) owns the rest. A descriptor keeps its address while its span is
 * held; alloc and free do not write it. When a span is formed (again, maybe
 * for another class) its descriptors are re-initialised: off, cap and
 * class_id set, every store field zeroed (state, clock_ref and generation
 * with atomic stores).
 *
 * Concurrency: alloc/free take slots from a per-cache stack first (one cache
 * per lcore, indexed 0..nb_caches-1, no atomics), refilling or flushing a
 * batch under the class's spinlock; a span is taken from or returned to the
 * chunk pool under the pool's spinlock. Neither lock is taken per page on a
 * warm path. A cache index must only be used by one thread at a time.
 */
#ifndef PC_SLAB_H
#define PC_SLAB_H

#include <stdbool.h>
#include <stdint.h>

#include "page.h"

#define PC_SLAB_CHUNK_SIZE  (64u << 10)
#define PC_SLAB_KEY_TAIL    320 /* full namespaced key kept after the payload */
#define PC_SLAB_MAX_CLASSES 256

struct pc_slab;

/* A slot's descriptor: 64 bytes, engine-private. */
struct pc_slot {
	uint64_t off;                       /* slab: segment offset of the page header */
	uint32_t cap;                       /* slab: payload capacity of the class */
	uint16_t class_id;                  /* slab */
	uint8_t flags;                      /* slab-private bits */
	uint8_t clock_ref;                  /* store: set by readers, cleared by the CLOCK hand */
	uint32_t state;                     /* store: state and pin count, atomic */
	uint32_t payload_len;               /* store */
	uint32_t prefix_depth;              /* store */
	uint32_t key_len;                   /* store: bytes of the key at the key tail */
	uint64_t generation;                /* store */
	uint8_t digest[PC_PAGE_DIGEST_LEN]; /* store */
	uint64_t free_tsc;                  /* store: when it entered the quarantine */
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct pc_slot) == 64, "slot descriptor is one cache line");

struct pc_slab_opts {
	const char *name;       /* for logs and rte objects */
	void *base;             /* the segment mapping */
	uint64_t size;          /* bytes; only whole chunks are used */
	unsigned int nb_caches; /* per-lcore caches, >= 1 */
};

struct pc_slab_stats {
	uint64_t chunks_total;
	uint64_t chunks_free;    /* in the chunk pool */
	uint64_t spans_taken;    /* spans moved pool -> class, ever */
	uint64_t spans_returned; /* spans moved class -> pool, ever */
	unsigned int classes;    /* classes created */
};

/*
 * Build the slab over [base, base + size) and its descriptor table. Control
 * lcore, at start. Returns NULL and logs on failure (size under one chunk,
 * no memory).
 */
struct pc_slab *pc_slab_create(const struct pc_slab_opts *opts);

/* Free the descriptor table and the slab (not the segment). Accepts NULL. */
void pc_slab_destroy(struct pc_slab *slab);

/*
 * The class for a payload of payload_len bytes (1..PC_PAGE_PAYLOAD_MAX), or
 * -EMSGSIZE. Pure function; any thread.
 */
int pc_slab_class_of(uint32_t payload_len);

/* Payload capacity and slot size (bytes, a multiple of 64) of a class. */
uint32_t pc_slab_class_cap(int class_id);
uint64_t pc_slab_class_slot_size(int class_id);

/*
 * Take up to n free slots of class_id for cache ci; returns how many (0..n)
 * and their descriptors in slots[]. Takes a span from the chunk pool when
 * the class has none free; returns fewer than n (possibly 0) when the
 * segment has no room: the caller evicts and retries. Any lcore, with its
 * own ci.
 */
unsigned int pc_slab_alloc_burst(struct pc_slab *slab, unsigned int ci, int class_id,
				 struct pc_slot *slots[], unsigned int n);

/*
 * Give n slots back (any mix of classes). A span whose slots are all free
 * goes back to the chunk pool (once out of every cache). Any lcore, with its
 * own ci.
 */
void pc_slab_free_bulk(struct pc_slab *slab, unsigned int ci, struct pc_slot *const slots[],
		       unsigned int n);

/* Return every slot in cache ci to its class. Owner of ci. */
void pc_slab_flush_cache(struct pc_slab *slab, unsigned int ci);

/*
 * The descriptor of the slot whose page header is at segment offset off,
 * or NULL when off is not the start of a slot in a span that a class holds.
 * Any lcore; no lock. Safe with any off (bounds and overflow checked), and
 * while spans are taken and given back: a span re-formed at that moment may
 * give NULL or a descriptor of the new layout, never a pointer outside the
 * table; the caller trusts the slot only through its state and generation.
 * A free slot of a held span is found too.
 */
struct pc_slot *pc_slab_slot_at(const struct pc_slab *slab, uint64_t off);

/* The page header of a slot, and the start of its key tail. */
struct pc_page_hdr *pc_slab_page(const struct pc_slab *slab, const struct pc_slot *slot);
uint8_t *pc_slab_key_tail(const struct pc_slab *slab, const struct pc_slot *slot);

/*
 * CLOCK hand support: the next up to n descriptors of class_id's spans in
 * address order after *cursor (0 = from the start), wrapping around once
 * per call at most; *cursor is advanced. Slots of every state are returned;
 * the caller filters. Control lcore. *cursor is a segment offset: the next
 * slot returned is the first at or after it (after a wrap, from offset 0);
 * one call never returns a slot twice.
 */
unsigned int pc_slab_scan(struct pc_slab *slab, int class_id, uint64_t *cursor,
			  struct pc_slot *out[], unsigned int n);

/*
 * Fragmentation fallback: when class_id cannot get a span although enough
 * chunks are free in total, name the slots of the cheapest window of chunks
 * that would hold one span of class_id (fewest slots in use). The caller
 * evicts them; once they are free the span can be formed. Returns the
 * number written to out (<= n), 0 when nothing needs to go. Control lcore.
 * "In use" means not back in the class (pc_slab_free_bulk'd slots still in
 * a per-lcore cache count as in use and may be named: skip what you do not
 * hold); a slot counts whole spans: a span comes back only with all of its
 * slots. Also 0 when the segment is smaller than one span of class_id.
 */
unsigned int pc_slab_victim_window(struct pc_slab *slab, int class_id, struct pc_slot *out[],
				   unsigned int n);

/* Classes created so far, in id order, into ids[] (up to n); returns the count. */
unsigned int pc_slab_classes(const struct pc_slab *slab, int ids[], unsigned int n);

void pc_slab_get_stats(const struct pc_slab *slab, struct pc_slab_stats *stats);

#endif /* PC_SLAB_H */
