#!/usr/bin/env bash
# Three nodes elect a leader; 1,000 commands proposed through all three (followers forward to
# the leader) leave the same state hash on every node; everything survives a restart of the
# whole cluster (entries are padded to 8 bytes: odd-sized ones included); a second process on
# the same DataDir and a bad configuration are refused at start.
. "$(dirname "$0")/lib.sh"

start_cluster A B C
L=$(leader_of A B C)
log "leader $L"

N=${CLUSTER_COMMANDS:-1000}
mkdir -p "$WORK/out"
log "proposing $N commands through A, B and C (12 admin sessions at once)"
PIDS=()
for s in $(seq 0 11); do
  t=$(echo A B C | cut -d' ' -f$((s % 3 + 1)))
  for i in $(seq "$s" 12 $((N - 1))); do
    # names of every length: the encoded entries take every size modulo 8
    printf 'generateClientCert client-%s-%0*d %s\n' "$t" $((i % 13)) "$i" "$WORK/out"
  done | "$CLI" admin-channel --data-dir "$WORK/data/$t" >"$WORK/session-$s.out" 2>&1 &
  PIDS+=($!)
done
for s in $(seq 0 11); do
  wait "${PIDS[$s]}" || fail "session $s: $(grep -v '^Generated\|^  /' "$WORK/session-$s.out" | head -3)"
done
[ "$(ls "$WORK/out"/*.pfx | wc -l)" = "$N" ] || fail "expected $N certificate files"

wait_until 60 "identical state on A, B, C" same_state A B C
COUNT=$(field A Certificates)
[ "$COUNT" = $((N + 3)) ] || fail "A has $COUNT registrations, expected $((N + 3))"
HASH=$(field A TrustHash)
log "all three at index $(applied A), trust state hash $HASH"

log "restarting the whole cluster"
for t in A B C; do stop "$t"; done
for t in A B C; do start "$t"; done
wait_until 60 "a leader after restart" ready A B C
wait_until 60 "identical state after restart" same_state A B C
[ "$(field B TrustHash)" = "$HASH" ] || fail "the trust state changed across the restart"
[ "$(field C Certificates)" = "$COUNT" ] || fail "registrations lost across the restart"
gen A after-restart || fail "no commit after the restart"

log "a second process on A's DataDir is refused"
if (cd "$WORK" && "$NODE" --config A.json >"$WORK/dup.out" 2>&1); then
  fail "a second corvid-node started on the same DataDir"
fi
grep -q "in use by another corvid-node" "$WORK/dup.out" || fail "no clear message: $(cat "$WORK/dup.out")"

log "bad configurations are refused with the key named"
echo '{"ServerUrl": "https://127.0.0.1:1", "Bogus.Key": 1}' >"$WORK/bad.json"
if "$NODE" --config "$WORK/bad.json" >"$WORK/bad.out" 2>&1; then fail "bad config accepted"; fi
grep -q "unknown key 'Bogus.Key'" "$WORK/bad.out" || fail "unclear: $(cat "$WORK/bad.out")"
sed 's/"Cluster.NodeTag": "A"/"Cluster.NodeTag": 7/' "$WORK/A.json" >"$WORK/bad2.json"
if (cd "$WORK" && "$NODE" --config bad2.json >bad2.out 2>&1); then fail "bad type accepted"; fi
grep -q "Cluster.NodeTag" "$WORK/bad2.out" || fail "unclear: $(cat "$WORK/bad2.out")"

for t in A B C; do stop "$t"; done
log "PASS"
