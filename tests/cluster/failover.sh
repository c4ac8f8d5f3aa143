#!/usr/bin/env bash
# kill -9 of the leader: a new leader, nothing committed lost, the old leader restarts and
# catches up. Two nodes down: the survivor commits nothing, and says so. (How long an election
# takes is a benchmark's business: nothing here asserts a duration.)
. "$(dirname "$0")/lib.sh"

start_cluster A B C
for i in $(seq 1 30); do gen "$(echo A B C | cut -d' ' -f$((i % 3 + 1)))" "before-$i" || fail "gen $i"; done
wait_until 60 "same state" same_state A B C
BEFORE=$(field A Certificates)
OLD=$(leader_of A B C)
REST=$(echo A B C | tr ' ' '\n' | grep -v "$OLD" | tr '\n' ' ')
log "killing leader $OLD"
kill9 "$OLD"
# shellcheck disable=SC2086
wait_until 60 "a new leader among $REST" ready $REST
# shellcheck disable=SC2086
log "new leader $(leader_of $REST)"
for t in $REST; do
  [ "$(field "$t" Certificates)" = "$BEFORE" ] || fail "$t lost committed registrations"
done
for t in $REST; do gen "$t" "after-$t" || fail "no commit through $t after failover"; done

log "restarting $OLD"
start "$OLD"
wait_until 60 "$OLD caught up" same_state A B C
[ "$(field "$OLD" Certificates)" = $((BEFORE + 2)) ] || fail "$OLD did not catch up"

log "two nodes down"
set -- $REST
kill9 "$1"
kill9 "$2"
if admin "$OLD" generateClientCert lonely "$WORK/out" >"$WORK/lonely.out" 2>&1; then
  fail "a single node committed a command"
fi
grep -q "no leader" "$WORK/lonely.out" || fail "no clear message: $(cat "$WORK/lonely.out")"
log "survivor says: $(head -1 "$WORK/lonely.out")"
[ "$(field "$OLD" Certificates)" = $((BEFORE + 2)) ] || fail "the survivor changed its state"

log "quorum back"
start "$1"
start "$2"
wait_until 60 "a leader again" ready A B C
gen "$OLD" back || fail "no commit once the quorum is back"
wait_until 60 "same state" same_state A B C
for t in A B C; do stop "$t"; done
log "PASS"
