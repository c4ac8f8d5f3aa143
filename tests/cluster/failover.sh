#!/usr/bin/env bash
# kill -9 of the leader: a new leader within the election timeout, nothing committed lost, the
# old leader restarts and catches up. Two nodes down: the survivor commits nothing, and says so.
. "$(dirname "$0")/lib.sh"

start_cluster A B C
for i in $(seq 1 30); do gen "$(echo A B C | cut -d' ' -f$((i % 3 + 1)))" "before-$i" || fail "gen $i"; done
wait_until 20 "same state" same_state A B C
BEFORE=$(field A Certificates)
OLD=$(leader_of A B C)
REST=$(echo A B C | tr ' ' '\n' | grep -v "$OLD" | tr '\n' ' ')
log "killing leader $OLD"
T0=$(date +%s%N)
kill9 "$OLD"
# shellcheck disable=SC2086
wait_until 10 "a new leader among $REST" ready $REST
MS=$(( ($(date +%s%N) - T0) / 1000000 ))
# shellcheck disable=SC2086
NEW=$(leader_of $REST)
log "new leader $NEW after ${MS} ms"
# election timeout 1000 ms, randomised up to 2x, plus the barrier and this poll's own latency
[ "$MS" -lt 4000 ] || fail "the new leader took ${MS} ms"
for t in $REST; do
  [ "$(field "$t" Certificates)" = "$BEFORE" ] || fail "$t lost committed registrations"
done
for t in $REST; do gen "$t" "after-$t" || fail "no commit through $t after failover"; done

log "restarting $OLD"
start "$OLD"
wait_until 20 "$OLD caught up" same_state A B C
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
wait_until 30 "a leader again" ready A B C
gen "$OLD" back || fail "no commit once the quorum is back"
wait_until 20 "same state" same_state A B C
for t in A B C; do stop "$t"; done
log "PASS"
