/* raft/lease: the read-lease decisions, from times passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "raft/lease.h"

#define L 1000

static void hold_covers_drift_and_margin(void **state)
{
    (void)state;
    /* A lease of L on a clock up to 10% slower lasts up to 1.1 L on ours. */
    assert_true(rft_lease_hold_ms(L) >= L + L / 10 + RFT_LEASE_MARGIN_MS);
    assert_int_equal(rft_lease_hold_ms(L), 1110);
    assert_true(rft_lease_hold_ms(7) >= 7 + 1 + RFT_LEASE_MARGIN_MS); /* rounded up */
    assert_int_equal(rft_lease_new_leader_ms(L), 2 * rft_lease_hold_ms(L));
}

static void fresh_is_within_the_lease_and_never_future(void **state)
{
    (void)state;
    assert_false(rft_lease_fresh(0, 5000, L)); /* never heard */
    assert_true(rft_lease_fresh(5000, 5000, L));
    assert_true(rft_lease_fresh(4001, 5000, L));
    assert_false(rft_lease_fresh(4000, 5000, L));
    assert_false(rft_lease_fresh(5001, 5000, L)); /* a reading from the future */
}

static void quorum_needs_a_strict_majority(void **state)
{
    (void)state;
    uint64_t now = 10000;
    uint64_t three[3] = {now, 0, 0};
    assert_false(rft_lease_quorum(three, 3, now, L)); /* only the leader itself */
    three[1] = now - 999;
    assert_true(rft_lease_quorum(three, 3, now, L));
    three[1] = now - 1000;
    assert_false(rft_lease_quorum(three, 3, now, L)); /* heard exactly L ago: too old */
    uint64_t four[4] = {now, now - 1, 0, 0};
    assert_false(rft_lease_quorum(four, 4, now, L)); /* 2 of 4 is no majority */
    four[2] = now - 2;
    assert_true(rft_lease_quorum(four, 4, now, L));
    uint64_t one[1] = {now};
    assert_true(rft_lease_quorum(one, 1, now, L)); /* a one-node cluster */
    assert_false(rft_lease_quorum(one, 0, now, L));
}

static void revocation_waits_until_the_lease_ran_out(void **state)
{
    (void)state;
    uint64_t g = 20000;
    assert_false(rft_lease_waits(0, false, g, L)); /* never granted: costs nothing */
    assert_false(rft_lease_waits(g, true, g, L));  /* took the announcement */
    assert_true(rft_lease_waits(g, false, g, L));
    assert_true(rft_lease_waits(g, false, g + rft_lease_hold_ms(L) - 1, L));
    assert_false(rft_lease_waits(g, false, g + rft_lease_hold_ms(L), L));
}

static void follower_lease_counts_from_its_send_time(void **state)
{
    (void)state;
    uint64_t sent = 30000;
    uint64_t until = rft_lease_until(sent, L);
    assert_int_equal(until, sent + L);
    assert_true(rft_lease_valid(until, sent + L - 1));
    assert_false(rft_lease_valid(until, sent + L));
    assert_false(rft_lease_valid(0, 1)); /* never granted */
    /* On the leader's clock the follower's lease ends before the hold does, even when the
     * follower's clock runs 10% slow: L on its clock is at most 1.1 L on the leader's, and
     * the leader recorded its grant after the request was sent. */
    uint64_t granted_on_leader = 500, sent_mapped = 490;
    assert_true(sent_mapped + L + L / 10 < granted_on_leader + rft_lease_hold_ms(L));
}

static void table_finds_creates_and_fills(void **state)
{
    (void)state;
    static struct rft_lease_table t;
    assert_null(rft_lease_entry(&t, 1, false));
    assert_null(rft_lease_entry(&t, 0, true)); /* id 0 is no node */
    struct rft_lease_entry *e = rft_lease_entry(&t, 1, true);
    assert_non_null(e);
    e->granted_ms = 7;
    assert_ptr_equal(rft_lease_entry(&t, 1, false), e);
    assert_int_equal(rft_lease_entry(&t, 1, true)->granted_ms, 7);
    for (uint64_t id = 2; id <= RFT_LEASE_TABLE_MAX; id++)
        assert_non_null(rft_lease_entry(&t, id, true));
    assert_int_equal(t.n, RFT_LEASE_TABLE_MAX);
    assert_null(rft_lease_entry(&t, RFT_LEASE_TABLE_MAX + 1, true)); /* full: no grant */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hold_covers_drift_and_margin),
        cmocka_unit_test(fresh_is_within_the_lease_and_never_future),
        cmocka_unit_test(quorum_needs_a_strict_majority),
        cmocka_unit_test(revocation_waits_until_the_lease_ran_out),
        cmocka_unit_test(follower_lease_counts_from_its_send_time),
        cmocka_unit_test(table_finds_creates_and_fills),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
