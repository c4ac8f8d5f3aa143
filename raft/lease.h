/* Read leases over the forwarding channel: the pure decisions, from times in milliseconds of one
 * node's own clock (CLOCK_BOOTTIME: it goes on while the machine sleeps) passed in.
 *
 * A follower asks the leader it believes in for a lease every lease/4, recording its own send
 * time t; a grant makes it serve until t + lease. The leader grants only while it has heard
 * from a majority of voters within the lease, and keeps, per node, when it last granted; a
 * revocation's answer waits, for each node that has a lease and has not taken the revocation,
 * until that lease has run out on any clock (RFT_LEASE_DRIFT_PCT). raft/rft.c has the protocol
 * and the safety argument. No allocation, no I/O: tests/unit/raft/lease.c drives it. */
#ifndef CORVID_RAFT_LEASE_H
#define CORVID_RAFT_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How much faster one node's clock may run than another's, in percent, and a few ms for the
 * rounding of clock readings to milliseconds and for the gap between reading a clock and
 * acting on it. */
#define RFT_LEASE_DRIFT_PCT 10
#define RFT_LEASE_MARGIN_MS 10
#define RFT_LEASE_TABLE_MAX 64

/* What the leader knows of one node, by Raft id. Survives its channel's reconnects and the
 * leader's own loss and regain of leadership (a grant stays in force regardless). */
struct rft_lease_entry {
    uint64_t id;
    uint64_t heard_ms;   /* a lower bound of the last time it named us as its leader; 0 never */
    uint64_t granted_ms; /* the last time we granted it a lease (after its request came); 0 never */
    uint64_t applied;    /* the highest applied index it reported */
};

struct rft_lease_table {
    struct rft_lease_entry e[RFT_LEASE_TABLE_MAX];
    size_t n;
};

/* The entry for id, created (zeroed) when create is set; NULL when absent or the table is
 * full. */
struct rft_lease_entry *rft_lease_entry(struct rft_lease_table *t, uint64_t id, bool create);

/* How long, on the leader's clock, a lease of lease_ms granted at some time lasts at most:
 * lease_ms stretched by the drift, plus the margin. */
uint64_t rft_lease_hold_ms(uint64_t lease_ms);
/* How long a new leader holds revocation answers: two such spans (see raft/rft.c). */
uint64_t rft_lease_new_leader_ms(uint64_t lease_ms);

/* Whether a node last heard at heard_ms still counts at now: within lease_ms (and not a
 * reading from the future, which only a bug or a foreign clock could produce). */
bool rft_lease_fresh(uint64_t heard_ms, uint64_t now, uint64_t lease_ms);

/* Whether a strict majority of n voters counts as heard: heard[i] per voter, the leader's own
 * reading is `now`. False for n == 0. */
bool rft_lease_quorum(const uint64_t *heard, size_t n, uint64_t now, uint64_t lease_ms);

/* Whether a revocation's answer still waits for a node: it was granted a lease (granted_ms),
 * has not taken the revocation (took), and that lease may still be in force at now. */
bool rft_lease_waits(uint64_t granted_ms, bool took, uint64_t now, uint64_t lease_ms);

/* A follower's lease from a grant of the request it sent at sent_ms. */
uint64_t rft_lease_until(uint64_t sent_ms, uint64_t lease_ms);
/* Whether a follower holding a lease until `until` may serve at now. */
bool rft_lease_valid(uint64_t until, uint64_t now);

#endif
