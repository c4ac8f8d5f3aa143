#!/usr/bin/env bash
# A follower whose data directory was wiped catches up by snapshot (InstallSnapshot); a node
# whose Raft log is corrupt refuses to start (auto-recovery is off) instead of dropping entries;
# snapshots are taken by size, and a node added after one catches up from it.
. "$(dirname "$0")/lib.sh"

pki
for t in A B C; do
  config "$t" "A B C" '"Cluster.SnapshotThreshold": 32, "Cluster.SnapshotTrailing": 16'
done
for t in A B C; do start "$t"; done
wait_until 60 "a leader" ready A B C

L=$(leader_of A B C)
W=$(echo A B C | tr ' ' '\n' | grep -v "$L" | head -1)
TERM0=$(field "$L" Term)
log "stopping follower $W and wiping its data directory"
stop "$W"
rm -rf "$WORK/data/$W"
for i in $(seq 1 120); do gen "$L" "while-away-$i" || fail "gen $i"; done
start "$W"
wait_until 60 "$W caught up" same_state A B C
[ "$(field "$W" Certificates)" = "$(field "$L" Certificates)" ] || fail "$W differs"
# canonical/raft 0.15 queues the messages for a peer it cannot reach, and a leader that has
# never heard from that peer sends it the log from index 1: a new leader elected while W was
# away may have queued such a message before its log was compacted, and W takes those entries
# instead of a snapshot. With the same leader throughout, W is behind the compacted log and must
# be sent the snapshot.
if [ "$(field "$L" Term)" = "$TERM0" ]; then
  grep -q "restored snapshot" "$WORK/$W.log" || fail "$W did not catch up by snapshot"
  log "$W restored a snapshot and matches the others"
else
  log "the leadership changed while $W was away: $W matches the others (snapshot not required)"
fi

log "corrupting $W's Raft log"
stop "$W"
SEG=$(ls "$WORK/data/$W/raft" | grep -E '^[0-9]{16}-[0-9]{16}$' | head -1 || true)
[ -n "$SEG" ] || SEG=$(ls "$WORK/data/$W/raft" | grep -E '^open-' | head -1)
[ -n "$SEG" ] || fail "no segment to corrupt in $(ls "$WORK/data/$W/raft")"
printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$WORK/data/$W/raft/$SEG" bs=1 seek=8 conv=notrunc 2>/dev/null
: >"$WORK/$W.log"
start "$W"
dead() { ! alive "$1"; }
wait_until 60 "$W to refuse its corrupt log and exit" dead "$W"
grep -q "raft start" "$WORK/$W.log" || fail "no clear message: $(cat "$WORK/$W.log")"
ls "$WORK/data/$W/raft" | grep -q corrupt && fail "segments were renamed to corrupt-*"
log "$W refused: $(grep 'raft start' "$WORK/$W.log" | head -1)"
rm -f "$WORK/$W.pid"

log "snapshots by size: a few large entries (bundles of 128 certificates) and no entry threshold"
for t in A B C; do alive "$t" && stop "$t"; done
rm -rf "$WORK/data"
SNAP='"Cluster.SnapshotThresholdInMb": 1'
for t in A B C; do config "$t" "A B C" "$SNAP"; done
for t in A B C; do : >"$WORK/$t.log"; start "$t"; done
wait_until 60 "a leader" ready A B C
L=$(leader_of A B C)
# A leader whose followers are busy applying these large entries can miss their lease requests
# for an election timeout on a loaded machine, and answer 503 NotReady until they catch up (the
# read lease): the registration is asked again then, as RavenDB's clients retry a 503.
register() {
  "$CORVID_BIN/corvid-bench" http-register --url "https://127.0.0.1:$(http_port "$L")" \
    --cacert "$WORK/pki/ca-chain.crt" --cert "$WORK/pki/A.pem" --clients 4 --count 2560 \
    --bundle 128 >"$WORK/register.out" 2>&1 && return 0
  grep -q '"Type":"NotReady"' "$WORK/register.out" && return 1
  BAD="registering: $(cat "$WORK/register.out")"
}
BAD=""
wait_until 120 "2,560 certificates registered in bundles" register
[ -z "$BAD" ] || fail "$BAD"
wait_until 60 "same state" same_state A B C
for t in A B C; do
  ls "$WORK/data/$t/raft" | grep -q '^snapshot-' ||
    fail "$t took no snapshot after ~2 MiB of entries: $(ls "$WORK/data/$t/raft")"
done
log "adding node D: its log starts after the snapshot, so D is sent the snapshot"
config D "" "\"Cluster.TrustedNodeCertificates.Path\": \"pki/ServerCertificatesCollection.pfx\", $SNAP"
start D
wait_until 60 "D passive" sh -c "\"$CLI\" admin-channel --data-dir \"$WORK/data/D\" info | grep -q 'State: Passive'"
L=$(leader_of A B C)
OUT=$(admin "$L" addNode D "https://127.0.0.1:$(http_port D)" "tls://127.0.0.1:$(raft_port D)" "$WORK/pki/D.crt") ||
  fail "addNode: $OUT"
log "$OUT"
wait_until 60 "D caught up" same_state A B C D
grep -q "restored snapshot" "$WORK/D.log" || fail "D joined by replaying the log, not by snapshot"
[ "$(field D Certificates)" = "$(field A Certificates)" ] || fail "D differs"
log "D received a snapshot taken by size"
for t in A B C D; do stop "$t"; done
log "PASS"
