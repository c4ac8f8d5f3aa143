#!/usr/bin/env bash
# Impostors are refused and the cluster keeps committing: a node certificate from a foreign CA,
# and a valid node certificate claiming another node's tag. A fourth node is added (registered,
# caught up, promoted to voter) and removed again.
. "$(dirname "$0")/lib.sh"

start_cluster A B C
pki "$WORK/foreign"

L=$(leader_of A B C)
log "a foreign CA's certificate for B knocks on $L"
impostor "$WORK/foreign/B.pem" 2 B "$L"
wait_until 60 "the refusal in the log" grep -q "refused inbound peer claiming node B: .*not a trusted cluster node" "$WORK/$L.log"
log "D's valid certificate claims to be B"
impostor "$WORK/pki/D.pem" 2 B "$L"
wait_until 60 "the refusal in the log" grep -q "certificate names node 'D', not 'B'" "$WORK/$L.log"
gen A still-committing || fail "the cluster stopped committing"
[ "$(leader_of A B C)" = "$L" ] || fail "the impostors disturbed the leadership"

log "adding node D"
config D "" '"Cluster.TrustedNodeCertificates.Path": "pki/ServerCertificatesCollection.pfx"'
start D
wait_until 60 "D passive" sh -c "\"$CLI\" admin-channel --data-dir \"$WORK/data/D\" info | grep -q 'State: Passive'"
OUT=$(admin "$L" addNode D "https://127.0.0.1:$(http_port D)" "tls://127.0.0.1:$(raft_port D)" "$WORK/pki/D.crt") ||
  fail "addNode: $OUT"
log "$OUT"
wait_until 60 "D caught up" same_state A B C D
admin "$L" clusterStatus | grep -q "Node D: Member" || fail "D is not a voter: $(admin "$L" clusterStatus)"
gen D through-d || fail "no commit through D"
wait_until 60 "same state on four" same_state A B C D

log "busy and refused membership changes"
NL=$(leader_of A B C D)
F=$(echo A B C | tr ' ' '\n' | grep -v "$NL" | head -1)
admin "$F" removeNode D >"$WORK/rm.out" 2>&1 && fail "a follower changed the membership"
grep -q "only the leader" "$WORK/rm.out" || fail "unclear: $(cat "$WORK/rm.out")"

log "removing node D"
admin "$NL" removeNode D || fail "removeNode failed"
admin "$NL" clusterStatus | grep -q "Node D" && fail "D is still a member"
stop D
gen A after-removal || fail "no commit after removal"
wait_until 60 "same state" same_state A B C
for t in A B C; do stop "$t"; done
log "PASS"
