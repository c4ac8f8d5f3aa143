/* Read leases: the pure decisions (see lease.h). */
#include "raft/lease.h"

#include <string.h>

struct rft_lease_entry *rft_lease_entry(struct rft_lease_table *t, uint64_t id, bool create)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->e[i].id == id)
            return &t->e[i];
    if (!create || id == 0 || t->n == RFT_LEASE_TABLE_MAX)
        return NULL;
    struct rft_lease_entry *e = &t->e[t->n++];
    memset(e, 0, sizeof *e);
    e->id = id;
    return e;
}

uint64_t rft_lease_hold_ms(uint64_t lease_ms)
{
    return lease_ms + (lease_ms * RFT_LEASE_DRIFT_PCT + 99) / 100 + RFT_LEASE_MARGIN_MS;
}

uint64_t rft_lease_new_leader_ms(uint64_t lease_ms)
{
    return 2 * rft_lease_hold_ms(lease_ms);
}

bool rft_lease_fresh(uint64_t heard_ms, uint64_t now, uint64_t lease_ms)
{
    return heard_ms != 0 && heard_ms <= now && now - heard_ms < lease_ms;
}

bool rft_lease_quorum(const uint64_t *heard, size_t n, uint64_t now, uint64_t lease_ms)
{
    size_t fresh = 0;
    for (size_t i = 0; i < n; i++)
        if (rft_lease_fresh(heard[i], now, lease_ms))
            fresh++;
    return n > 0 && fresh > n / 2;
}

bool rft_lease_waits(uint64_t granted_ms, bool took, uint64_t now, uint64_t lease_ms)
{
    return granted_ms != 0 && !took && now < granted_ms + rft_lease_hold_ms(lease_ms);
}

uint64_t rft_lease_until(uint64_t sent_ms, uint64_t lease_ms)
{
    return sent_ms + lease_ms;
}

bool rft_lease_valid(uint64_t until, uint64_t now)
{
    return now < until;
}
