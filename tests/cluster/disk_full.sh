#!/usr/bin/env bash
# Disk full (issue 12). Each node's DataDir is a small tmpfs inside a private mount namespace
# that this test makes (everything vanishes with it). The leader's disk is filled to below the
# reserve: it answers writes with 507 naming its DataDir, keeps serving reads, hands leadership
# over, and the cluster goes on committing through the other nodes; once space returns it takes
# writes again by itself. Then a follower's disk is filled to the last byte: the entries the
# cluster commits meanwhile cannot be stored there, and that node fails closed (exits non-zero,
# saying why); restarted while the disk is still full it refuses to start, saying so; restarted
# once there is room it catches up. Every acknowledged write is on every node.
if [ -z "${CORVID_DISK_NS:-}" ]; then
  export CORVID_DISK_NS=1
  exec unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

TMPFS_MIB=128 # a node at rest uses ~29 MiB: 3 preallocated 8 MiB Raft segments and RocksDB
disk_cleanup() {
  local p
  for p in $(cat "$WORK"/*.pid 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
  for t in A B C; do umount -l "$WORK/data/$t" 2>/dev/null || true; done
  cleanup
}
trap disk_cleanup EXIT

pki
for t in A B C; do
  config "$t" "A B C"
  mkdir -p "$WORK/data/$t"
  mount -t tmpfs -o "size=${TMPFS_MIB}m,mode=0700" tmpfs "$WORK/data/$t" || fail "cannot mount a tmpfs"
done
for t in A B C; do start "$t"; done
wait_until 60 "a leader on A B C" ready A B C
mkdir -p "$CERTS"
cp "$WORK/pki/A.pem" "$CERTS/node.pem"

# fill TAG [LEAVE_MIB]: fills TAG's DataDir to the last byte, then gives LEAVE_MIB back.
fill() {
  local f="$WORK/data/$1/fill"
  dd if=/dev/zero of="$f" bs=1M >/dev/null 2>&1 || true # ends with ENOSPC
  [ -z "${2:-}" ] || truncate -s "-${2}M" "$f"
  log "filled $1: $(df -h --output=avail "$WORK/data/$1" | tail -1 | tr -d ' ') left"
}
unfill() { rm -f "$WORK/data/$1/fill"; }

ACKED=0
SEQ=0
body() { echo "{\"Name\":\"$1\",\"SecurityClearance\":\"ValidUser\",\"Permissions\":{}}"; }
# A node without a read lease answers 503 NotReady (before proposing anything): a full leader
# hands leadership over at once, and then holds no read lease until the next leader grants one.
# The helpers ask again then; any other unexpected answer fails the test.
# post TAG NAME: POST /admin/certificates through TAG with request id NAME; 0 when
# acknowledged (409: an earlier try with this id was committed), 1 for a 503 or a 507
post() {
  call node POST "$1" "/admin/certificates?raft-request-id=$2" "$(body "$2")"
  case $CODE in
    200 | 409) return 0 ;;
    503 | 507) return 1 ;;
    *) fail "write $2 through $1 -> $CODE: $(head -c 400 "$WORK/last.body")" ;;
  esac
}
# write TAG: one certificate generated through TAG; must be acknowledged
write() {
  SEQ=$((SEQ + 1))
  wait_until 60 "write w$SEQ-$1 acknowledged" post "$1" "w$SEQ-$1"
  ACKED=$((ACKED + 1))
}
# refusal TAG: a write through TAG gets 507 with a message naming TAG's DataDir (1 for a 503)
refusal() {
  local dir="$WORK/data/$1"
  SEQ=$((SEQ + 1))
  call node POST "$1" /admin/certificates "$(body "w$SEQ-$1")"
  [ "$CODE" != 503 ] || return 1
  [ "$CODE" = 507 ] || fail "write on $1 with a full disk -> $CODE (want 507): $(head -c 400 "$WORK/last.body")"
  grep -q '"Type":"DiskFull"' "$WORK/last.body" || fail "507 without Type DiskFull: $(cat "$WORK/last.body")"
  grep -qF "disk full: DataDir $dir has" "$WORK/last.body" ||
    fail "507 does not name the DataDir $dir: $(cat "$WORK/last.body")"
  if ! grep -q '"FreeBytes":[0-9]' "$WORK/last.body" || ! grep -q '"NeededBytes":[0-9]' "$WORK/last.body"; then
    fail "507 without the figures: $(cat "$WORK/last.body")"
  fi
}
refused() { wait_until 60 "a 507 from $1" refusal "$1"; }
# reads TAG: the reads a client makes all answer 200 (1 for a 503)
reads() {
  local path
  for path in /admin/certificates /certificates/whoami /ca/crl; do
    call node GET "$1" "$path"
    [ "$CODE" != 503 ] || return 1
    [ "$CODE" = 200 ] || fail "GET $path on $1 -> $CODE: $(head -c 300 "$WORK/last.body")"
  done
}
reads_ok() { wait_until 60 "reads on $1" reads "$1"; }
not_leader() { local l; l=$(leader_of "$@") && [ "$l" != "$NOT" ]; }
dead() { ! alive "$1"; }
base=$(field A Certificates)
write A

L=$(leader_of A B C)
others=$(echo A B C | tr ' ' '\n' | grep -vx "$L" | tr '\n' ' ')
F1=$(echo "$others" | cut -d' ' -f1)
F2=$(echo "$others" | cut -d' ' -f2)
log "leader $L: filling its disk to below the reserve"
fill "$L" 16 # below the reserve (48 MiB and more), with room to go on following
# Forwarded writes that reach the full leader are refused there; the followers ask again
# wherever the leader is by then.
write "$F1"
refused "$L"
NOT=$L wait_until 60 "leadership to leave $L" not_leader A B C
log "leader now $(leader_of A B C)"
grep -q 'NODE-DISK.*refusing writes (507)' "$WORK/$L.log" || fail "$L did not log its full disk"
grep -q 'NODE-DISK.*handing leadership' "$WORK/$L.log" || fail "$L did not log the hand-over"
for t in "$F1" "$F2" "$F1" "$F2"; do write "$t"; done
refused "$L"
reads_ok "$L"
alive "$L" || fail "$L exited with a disk below its reserve"
wait_until 60 "$L to follow the commits" same_state A B C

log "space returns on $L"
unfill "$L"
# 507 until that node sees the room, then acknowledged (one request id throughout)
wait_until 60 "writes accepted again on $L" post "$L" "again-$L"
ACKED=$((ACKED + 1))
grep -q 'NODE-DISK.*free again' "$WORK/$L.log" || fail "$L did not log that it has room again"
write "$L"
wait_until 60 "the same state on A B C" same_state A B C
[ "$(field "$L" Certificates)" = $((base + ACKED)) ] ||
  fail "$(field "$L" Certificates) registrations, want $((base + ACKED))"

L=$(leader_of A B C)
F=$(echo A B C | tr ' ' '\n' | grep -vx "$L" | head -1)
O=$(echo A B C | tr ' ' '\n' | grep -vx "$L" | grep -vx "$F")
log "follower $F: filling its disk to the last byte"
fill "$F"
refused "$F"
# commits through the others reach F, which cannot store them: it must fail closed
stores_or_dies() { dead "$F" || { write "$L"; false; }; }
wait_until 90 "$F to fail closed" stores_or_dies
rc=0
wait "$(cat "$WORK/$F.pid")" || rc=$?
rm -f "$WORK/$F.pid"
[ "$rc" != 0 ] || fail "$F exited 0 after its disk filled"
[ "$rc" -lt 128 ] || fail "$F died of signal $((rc - 128)) instead of exiting"
grep -q "NODE-RAFT.*Raft stopped on this node.*disk full: DataDir $WORK/data/$F has" "$WORK/$F.log" ||
  fail "$F gave no clear reason: $(grep -i 'error' "$WORK/$F.log" | tail -3)"
log "$F exited with $rc: $(grep 'NODE-RAFT' "$WORK/$F.log" | tail -1 | cut -c1-200)"
write "$O"
write "$L"

log "restarting $F while its disk is still full"
rc=0
(cd "$WORK" && exec "$NODE" --config "$F.json" >>"$WORK/$F.log" 2>&1) || rc=$?
if [ "$rc" = 0 ] || [ "$rc" -ge 128 ]; then fail "$F started on a full disk, or crashed ($rc)"; fi
grep -q "cannot start: node $F: disk full: DataDir $WORK/data/$F has" "$WORK/$F.log" ||
  fail "no clear message: $(tail -3 "$WORK/$F.log")"

log "space returns on $F: restarting it"
unfill "$F"
start "$F"
wait_until 60 "a leader on A B C after the restart" ready A B C
write "$F"
all_kept "$base" "$ACKED"
log "$ACKED acknowledged writes on every node, state hash $(hash_of A)"
for t in A B C; do stop "$t"; done
log "PASS"
