#!/usr/bin/env bash
# A follower whose data directory was wiped catches up by snapshot (InstallSnapshot); a node
# whose Raft log is corrupt refuses to start (auto-recovery is off) instead of dropping entries.
. "$(dirname "$0")/lib.sh"

pki
for t in A B C; do
  config "$t" "A B C" '"Cluster.SnapshotThreshold": 32, "Cluster.SnapshotTrailing": 16'
done
for t in A B C; do start "$t"; done
wait_until 30 "a leader" ready A B C

log "stopping C and wiping its data directory"
stop C
rm -rf "$WORK/data/C"
L=$(leader_of A B)
for i in $(seq 1 120); do gen "$L" "while-c-away-$i" || fail "gen $i"; done
start C
wait_until 30 "C caught up" same_state A B C
grep -q "restored snapshot" "$WORK/C.log" || fail "C did not catch up by snapshot"
[ "$(field C Certificates)" = "$(field A Certificates)" ] || fail "C differs"
log "C restored a snapshot and matches A and B"

log "corrupting C's Raft log"
stop C
SEG=$(ls "$WORK/data/C/raft" | grep -E '^[0-9]{16}-[0-9]{16}$' | head -1 || true)
[ -n "$SEG" ] || SEG=$(ls "$WORK/data/C/raft" | grep -E '^open-' | head -1)
[ -n "$SEG" ] || fail "no segment to corrupt in $(ls "$WORK/data/C/raft")"
printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$WORK/data/C/raft/$SEG" bs=1 seek=8 conv=notrunc 2>/dev/null
: >"$WORK/C.log"
start C
for _ in $(seq 1 50); do alive C || break; sleep 0.1; done
if alive C; then fail "C started on a corrupt log"; fi
grep -q "raft start" "$WORK/C.log" || fail "no clear message: $(cat "$WORK/C.log")"
ls "$WORK/data/C/raft" | grep -q corrupt && fail "segments were renamed to corrupt-*"
log "C refused: $(grep 'raft start' "$WORK/C.log" | head -1)"
rm -f "$WORK/C.pid"

log "snapshots by size: a few large entries (bundles of 128 certificates) and no entry threshold"
for t in A B; do stop "$t"; done
rm -rf "$WORK/data"
for t in A B C; do config "$t" "A B C" '"Cluster.SnapshotThresholdInMb": 1'; done
: >"$WORK/C.log"
for t in A B; do start "$t"; done
wait_until 30 "a leader" ready A B
L=$(leader_of A B)
"$CORVID_BIN/corvid-bench" http-register --url "https://127.0.0.1:$(http_port "$L")" \
  --cacert "$WORK/pki/ca-chain.crt" --cert "$WORK/pki/A.pem" --clients 4 --count 2560 \
  --bundle 128 >"$WORK/register.out" 2>&1 || fail "registering: $(cat "$WORK/register.out")"
ls "$WORK/data/$L/raft" | grep -q '^snapshot-' ||
  fail "no snapshot after ~2 MiB of entries: $(ls "$WORK/data/$L/raft")"
start C
wait_until 60 "C caught up" same_state A B C
grep -q "restored snapshot" "$WORK/C.log" || fail "C joined by replaying the log, not by snapshot"
log "C received a snapshot taken by size"
for t in A B C; do stop "$t"; done
log "PASS"
