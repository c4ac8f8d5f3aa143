/* raft/rft: in-process clusters over the real TLS transport: election, forwarding from a
 * follower, request ids, membership, a partition and its healing, read leases. */
#include "cluster.h"

#define ALL3 7u /* nodes A, B, C */

static void leader_applies_and_replicates(void **state)
{
    (void)state;
    struct tc c;
    tc_init(&c, 3, 3);
    tc_start_all(&c);
    int l = tc_wait_leader(&c);
    struct tc_prop p;
    tc_audit(&c, (size_t)l, "leader-1", &p);
    assert_int_equal(p.status, 0);
    assert_false(p.res.rejected);
    assert_false(p.res.duplicate);
    assert_true(p.res.index > 0);
    /* answered after it was applied on the proposer */
    assert_true(kv_applied_index(c.n[l].kv) >= p.res.index);
    tc_wait_applied(&c, p.res.index, ALL3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(tc_audit_count(&c, i, "leader-1"), 1);
        assert_true(c.n[i].applied_calls > 0);
    }
    tc_fini(&c);
}

static void follower_forwards_to_the_leader(void **state)
{
    (void)state;
    struct tc c;
    tc_init(&c, 3, 3);
    tc_start_all(&c);
    int l = tc_wait_leader(&c);
    size_t f = tc_follower(&c, l, -1);
    struct tc_prop p;
    tc_audit(&c, f, "fwd-1", &p);
    assert_int_equal(p.status, 0);
    assert_string_equal(p.errmsg, "");
    assert_false(p.res.rejected);
    assert_true(p.res.index > 0);
    /* rft_propose's contract: answered once applied on the proposing node */
    assert_true(kv_applied_index(c.n[f].kv) >= p.res.index);
    tc_wait_applied(&c, p.res.index, ALL3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(tc_audit_count(&c, i, "fwd-1"), 1);

    /* A refusal travels back with its code and reason. */
    struct cmn_buf b;
    tc_audit_entry(&b, "fwd-2", "fwd-2", KV_CL_OPERATOR);
    tc_propose(&c, f, &b, &p);
    cmn_buf_fini(&b);
    assert_int_equal(p.status, 0);
    assert_true(p.res.rejected);
    assert_int_equal(p.res.code, KV_REJ_FORBIDDEN);
    assert_string_equal(p.res.reason,
                        "Insufficient security clearance: ClusterAdmin access is required, not "
                        "Operator");
    assert_true(kv_applied_index(c.n[f].kv) >= p.res.index);

    /* An entry without a request id is refused at once: a retry could apply it twice. */
    tc_audit_entry(&b, NULL, "no-rid", KV_CL_CLUSTER_ADMIN);
    assert_int_equal(rft_propose(c.n[f].r, b.data, b.len, tc_prop_cb, &p), CMN_EINVALID);
    assert_int_equal(rft_propose(c.n[f].r, b.data, 3, tc_prop_cb, &p), CMN_EINVALID);
    cmn_buf_fini(&b);
    tc_fini(&c);
}

static void duplicate_request_ids_apply_once(void **state)
{
    (void)state;
    struct tc c;
    tc_init(&c, 3, 3);
    tc_start_all(&c);
    int l = tc_wait_leader(&c);
    size_t f = tc_follower(&c, l, -1);
    size_t g = tc_follower(&c, l, (int)f);

    /* A retry after an answer: reported as the duplicate it is. */
    struct tc_prop p1, p2;
    tc_audit(&c, f, "dup-1", &p1);
    assert_int_equal(p1.status, 0);
    assert_false(p1.res.duplicate);
    tc_audit(&c, (size_t)l, "dup-1", &p2);
    assert_int_equal(p2.status, 0);
    assert_true(p2.res.duplicate);
    assert_false(p2.res.rejected);
    assert_true(p2.res.index > p1.res.index);

    /* The same proposal from three nodes at once (as retries racing an answer): each answered
     * exactly once, applied once. */
    struct cmn_buf b;
    tc_audit_entry(&b, "dup-2", "dup-2", KV_CL_CLUSTER_ADMIN);
    struct tc_prop q[3];
    size_t from[3] = {f, g, (size_t)l};
    memset(q, 0, sizeof q);
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(rft_propose(c.n[from[k]].r, b.data, b.len, tc_prop_cb, &q[k]), 0);
    cmn_buf_fini(&b);
    for (size_t k = 0; k < 3; k++)
        tc_run_until(&c, tc_prop_done, &q[k]);
    unsigned firsts = 0;
    uint64_t top = 0;
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(q[k].calls, 1);
        assert_int_equal(q[k].status, 0);
        assert_false(q[k].res.rejected);
        firsts += !q[k].res.duplicate;
        top = q[k].res.index > top ? q[k].res.index : top;
    }
    assert_int_equal(firsts, 1);
    tc_wait_applied(&c, top, ALL3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(tc_audit_count(&c, i, "dup-1"), 1);
        assert_int_equal(tc_audit_count(&c, i, "dup-2"), 1);
    }

    /* The same id for a different command is refused, not applied. */
    tc_audit_entry(&b, "dup-1", "something else", KV_CL_CLUSTER_ADMIN);
    tc_propose(&c, g, &b, &p1);
    cmn_buf_fini(&b);
    assert_int_equal(p1.status, 0);
    assert_true(p1.res.rejected);
    assert_int_equal(p1.res.code, KV_REJ_CONFLICT);
    assert_non_null(strstr(p1.res.reason, "raft-request-id 'dup-1' was already used"));
    tc_fini(&c);
}

struct change {
    unsigned calls;
    int status;
    char errmsg[CMN_ERRMSG_SIZE];
};

static void change_cb(void *ctx, int status, const char *errmsg)
{
    struct change *ch = ctx;
    ch->calls++;
    ch->status = status;
    snprintf(ch->errmsg, sizeof ch->errmsg, "%s", errmsg ? errmsg : "");
}

static bool change_done(struct tc *c, void *arg)
{
    (void)c;
    return ((struct change *)arg)->calls > 0;
}

static int member_role(struct tc *c, size_t i, const char *tag)
{
    struct rft_status st;
    rft_status(c->n[i].r, &st);
    for (size_t k = 0; k < st.n_members; k++)
        if (strcmp(st.members[k].tag, tag) == 0)
            return st.members[k].role;
    return -1;
}

static void membership_add_and_remove(void **state)
{
    (void)state;
    struct tc c;
    tc_init(&c, 4, 3); /* D starts passive */
    tc_start_all(&c);
    int l = tc_wait_leader(&c);
    size_t f = tc_follower(&c, l, 3);
    struct tc_prop p;
    tc_audit(&c, (size_t)l, "before-join", &p);
    assert_int_equal(p.status, 0);

    struct rft_status st;
    rft_status(c.n[3].r, &st);
    assert_string_equal(st.state, "Passive");

    char err[CMN_ERRMSG_SIZE] = "";
    struct change ch = {0};
    assert_int_equal(rft_add_node(c.n[f].r, "D", c.n[3].address, change_cb, &ch, err), CMN_EDENIED);
    assert_string_equal(err, "only the leader changes the membership");
    assert_int_equal(rft_add_node(c.n[l].r, "d1", c.n[3].address, change_cb, &ch, err),
                     CMN_EINVALID);
    assert_string_equal(err, "'d1' is not a node tag");
    assert_int_equal(rft_remove_node(c.n[l].r, "Q", change_cb, &ch, err), CMN_ENOTFOUND);
    assert_string_equal(err, "server ID is not valid");

    assert_int_equal(rft_add_node(c.n[l].r, "D", c.n[3].address, change_cb, &ch, err), 0);
    struct change other = {0};
    assert_int_equal(rft_remove_node(c.n[l].r, "C", change_cb, &other, err), CMN_EBUSY);
    assert_string_equal(err, "another membership change is in progress");
    tc_run_until(&c, change_done, &ch);
    assert_int_equal(ch.calls, 1);
    assert_int_equal(ch.status, 0);
    assert_int_equal(other.calls, 0);
    assert_int_equal(member_role(&c, (size_t)l, "D"), RAFT_VOTER);
    /* D caught up with what came before it, and takes what comes after */
    tc_wait_applied(&c, p.res.index, 1u << 3);
    assert_int_equal(tc_audit_count(&c, 3, "before-join"), 1);
    tc_audit(&c, 3, "from-D", &p); /* forwarded by the new member */
    assert_int_equal(p.status, 0);
    tc_wait_applied(&c, p.res.index, 15u);

    /* Adding it twice: refused by canonical/raft, reported as such */
    memset(&ch, 0, sizeof ch);
    l = tc_wait_leader(&c);
    assert_int_equal(rft_add_node(c.n[l].r, "D", c.n[3].address, change_cb, &ch, err), CMN_EEXISTS);
    assert_string_equal(err, "server ID already in use");

    /* Removing it: the others go on without it */
    size_t keep = l == 3 ? 0 : (size_t)l;
    if (l == 3) { /* D leads: let it go, and remove it from the new leader */
        tc_stop(&c, 3);
        l = tc_wait_leader(&c);
        keep = (size_t)l;
    }
    memset(&ch, 0, sizeof ch);
    assert_int_equal(rft_remove_node(c.n[keep].r, "D", change_cb, &ch, err), 0);
    tc_run_until(&c, change_done, &ch);
    assert_int_equal(ch.status, 0);
    assert_int_equal(member_role(&c, keep, "D"), -1);
    tc_audit(&c, keep, "after-leave", &p);
    assert_int_equal(p.status, 0);
    tc_wait_applied(&c, p.res.index, ALL3);
    if (c.n[3].running)
        assert_true(kv_applied_index(c.n[3].kv) < p.res.index);
    tc_fini(&c);
}

struct lease_arg {
    size_t i;
    bool held;
};

static bool lease_is(struct tc *c, void *arg)
{
    struct lease_arg *a = arg;
    return rft_lease_held(c->n[a->i].r, NULL, 0) == a->held;
}

static void wait_lease(struct tc *c, size_t i, bool held)
{
    struct lease_arg a = {i, held};
    tc_run_until(c, lease_is, &a);
}

static bool not_ready(struct tc *c, void *arg)
{
    struct rft_status st;
    rft_status(c->n[*(size_t *)arg].r, &st);
    return !st.ready;
}

struct new_leader {
    size_t old;
    int found;
};

static bool other_leader(struct tc *c, void *arg)
{
    struct new_leader *a = arg;
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (i == a->old || !c->n[i].running)
            continue;
        struct rft_status st;
        rft_status(c->n[i].r, &st);
        if (st.ready) {
            a->found = (int)i;
            return true;
        }
    }
    return false;
}

static bool follows_someone(struct tc *c, void *arg)
{
    struct rft_status st;
    rft_status(c->n[*(size_t *)arg].r, &st);
    return st.leader[0] != '\0' && strcmp(st.state, "Follower") == 0;
}

static void partition_and_heal(void **state)
{
    (void)state;
    struct tc c;
    tc_init(&c, 3, 3);
    c.propose_timeout_ms = 1500;
    tc_start_all(&c);
    size_t old = (size_t)tc_wait_leader(&c);
    wait_lease(&c, old, true);

    /* The leader alone on one side: it stops serving, the other two elect a leader. */
    tc_isolate(&c, old, true);
    struct new_leader nl = {old, -1};
    tc_run_until(&c, other_leader, &nl);
    tc_run_until(&c, not_ready, &old);
    wait_lease(&c, old, false);
    char why[200] = "";
    assert_false(rft_lease_held(c.n[old].r, why, sizeof why));
    assert_true(why[0] != '\0');

    size_t l = (size_t)nl.found;
    size_t f = tc_follower(&c, (int)l, (int)old);
    struct tc_prop p, q;
    tc_audit(&c, f, "majority-side", &p);
    assert_int_equal(p.status, 0);
    tc_wait_applied(&c, p.res.index, (1u << l) | (1u << f));

    /* The minority side has no leader: its proposal times out, and says why. */
    tc_audit(&c, old, "minority-side", &q);
    assert_int_equal(q.status, CMN_EBUSY);
    assert_string_equal(q.errmsg,
                        "no leader: the cluster has no quorum (retry when a majority of nodes "
                        "is up)");
    assert_true(kv_applied_index(c.n[old].kv) < p.res.index);

    /* Healed: the old leader follows and catches up; a write from it goes through. */
    tc_isolate(&c, old, false);
    tc_run_until(&c, follows_someone, &old);
    tc_wait_applied(&c, p.res.index, ALL3);
    tc_audit(&c, old, "healed", &q);
    assert_int_equal(q.status, 0);
    tc_wait_applied(&c, q.res.index, ALL3);
    uint8_t h0[32], h[32];
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(kv_state_hash(c.n[0].kv, h0, err), 0);
    for (size_t i = 1; i < 3; i++) {
        assert_int_equal(kv_state_hash(c.n[i].kv, h, err), 0);
        assert_memory_equal(h0, h, 32);
        assert_int_equal(tc_audit_count(&c, i, "minority-side"), 0);
    }
    tc_fini(&c);
}

/* What the proposer's callback saw about every other node when it fired. */
struct announce_check {
    struct tc_prop p;
    struct tc *c;
    size_t from;
    bool bad;
    char why[200];
};

static void announce_cb(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct announce_check *a = ctx;
    tc_prop_cb(&a->p, status, res, errmsg);
    if (status != 0 || res == NULL)
        return;
    for (size_t i = 0; i < a->c->n_nodes; i++) {
        struct tc_node *n = &a->c->n[i];
        if (i == a->from || !n->running)
            continue;
        /* The promise: no node may serve without the entry once it is answered. */
        bool has = kv_applied_index(n->kv) >= res->index || n->committed_index >= res->index;
        if (!has && rft_lease_held(n->r, NULL, 0)) {
            a->bad = true;
            snprintf(a->why, sizeof a->why, "node %s holds a lease without entry %llu", n->tag,
                     (unsigned long long)res->index);
        }
    }
}

static void announce_and_wait(struct tc *c, size_t from, const char *rid, struct announce_check *a)
{
    struct cmn_buf b;
    tc_audit_entry(&b, rid, rid, KV_CL_CLUSTER_ADMIN);
    memset(a, 0, sizeof *a);
    a->c = c;
    a->from = from;
    assert_int_equal(rft_propose(c->n[from].r, b.data, b.len, announce_cb, a), 0);
    cmn_buf_fini(&b);
    tc_run_until(c, tc_prop_done, &a->p);
    assert_int_equal(a->p.calls, 1);
    assert_int_equal(a->p.status, 0);
    if (a->bad)
        fail_msg("%s", a->why);
}

static void read_leases_follow_the_links(void **state)
{
    (void)state;
    struct tc c;
    tc_init(&c, 3, 3);
    c.announce_audit = true;
    tc_start_all(&c);
    size_t l = (size_t)tc_wait_leader(&c);
    for (size_t i = 0; i < 3; i++)
        wait_lease(&c, i, true);

    /* Connected: an announced entry reaches every node before its answer. */
    struct announce_check a;
    announce_and_wait(&c, l, "announced-1", &a);
    size_t f = tc_follower(&c, (int)l, -1);
    size_t g = tc_follower(&c, (int)l, (int)f);

    /* One follower cut off: its lease runs out, and the answer waits for that, no less. */
    tc_isolate(&c, f, true);
    announce_and_wait(&c, l, "announced-2", &a);
    assert_false(rft_lease_held(c.n[f].r, NULL, 0));
    assert_true(kv_applied_index(c.n[f].kv) < a.p.res.index);
    assert_true(kv_applied_index(c.n[g].kv) >= a.p.res.index ||
                c.n[g].committed_index >= a.p.res.index || !rft_lease_held(c.n[g].r, NULL, 0));
    char why[200] = "";
    assert_false(rft_lease_held(c.n[f].r, why, sizeof why));
    assert_string_equal(why, "it has not heard from a leader within 400 ms (no read lease)");

    /* Healed: it applies what it missed, and only then holds a lease again. */
    tc_isolate(&c, f, false);
    wait_lease(&c, f, true);
    assert_true(kv_applied_index(c.n[f].kv) >= a.p.res.index);
    tc_fini(&c);
}

static void close_fails_what_is_pending(void **state)
{
    (void)state;
    struct tc c;
    tc_init(&c, 3, 3);
    c.propose_timeout_ms = TC_GUARD_MS; /* never runs out here */
    tc_start_all(&c);
    int l = tc_wait_leader(&c);
    size_t f = tc_follower(&c, l, -1);
    /* A follower cut off from everyone: its proposal can only wait, and closing ends it. */
    tc_isolate(&c, f, true);
    struct cmn_buf b;
    tc_audit_entry(&b, "pending", "pending", KV_CL_CLUSTER_ADMIN);
    struct tc_prop p = {0};
    assert_int_equal(rft_propose(c.n[f].r, b.data, b.len, tc_prop_cb, &p), 0);
    uv_run(&c.loop, UV_RUN_NOWAIT);
    tc_stop(&c, f);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.status, CMN_EIO);
    assert_string_equal(p.errmsg, "the node is shutting down");
    cmn_buf_fini(&b);
    tc_fini(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(leader_applies_and_replicates),
        cmocka_unit_test(follower_forwards_to_the_leader),
        cmocka_unit_test(duplicate_request_ids_apply_once),
        cmocka_unit_test(membership_add_and_remove),
        cmocka_unit_test(partition_and_heal),
        cmocka_unit_test(read_leases_follow_the_links),
        cmocka_unit_test(close_fails_what_is_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
