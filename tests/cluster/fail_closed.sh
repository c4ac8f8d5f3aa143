#!/usr/bin/env bash
# Fail closed: a node whose canonical/raft turns Unavailable exits non-zero with a clear log
# line (it would otherwise serve a trust state that no longer follows the cluster), the others
# go on committing, and once restarted it catches up with nothing acknowledged lost. Then a
# leader whose log write fails (CORVID_TEST_FAIL_RAFT_APPEND, as when no segment can be
# prepared on a full disk) exits at once: 0.15 would truncate its log and crash.
#
# The fault is injected at the raft_io boundary by a hook compiled only into test builds
# (-DCORVID_TESTS=ON): with CORVID_TEST_FAIL_RAFT_TERM=FILE, writing the Raft term fails while
# FILE exists. canonical/raft 0.15 then gives up through its own code path (recvCb or tickCb ->
# convertToUnavailable), which is what a disk failing under the metadata files does. A real
# disk fault cannot do this reliably: raft rewrites its metadata files in place, so a full disk
# never fails them (tests/cluster/disk_full.sh covers the full disk, which fails elsewhere).
. "$(dirname "$0")/lib.sh"

pki
for t in A B C; do config "$t" "A B C"; done
# start_hooked TAG: TAG's term writes fail while $WORK/TAG.fault exists, its log writes while
# $WORK/TAG.fault-append does
start_hooked() {
  CORVID_TEST_FAIL_RAFT_TERM="$WORK/$1.fault" CORVID_TEST_FAIL_RAFT_APPEND="$WORK/$1.fault-append" \
    start "$1"
}
for t in A B C; do start_hooked "$t"; done
wait_until 60 "a leader on A B C" ready A B C
grep -q 'RFT-TEST.*test hook' "$WORK/A.log" ||
  fail "the test hook is not compiled in (configure with -DCORVID_TESTS=ON)"
mkdir -p "$CERTS"
cp "$WORK/pki/A.pem" "$CERTS/node.pem"
ACKED=0
SEQ=0
# post TAG NAME: POST /admin/certificates through TAG with request id NAME; 0 when
# acknowledged (409: an earlier try with this id was committed), 1 for a 503 (a node without a
# read lease, as around an election, answers 503 NotReady before proposing anything)
post() {
  call node POST "$1" "/admin/certificates?raft-request-id=$2" "{\"Name\":\"$2\",\"SecurityClearance\":\"ValidUser\",\"Permissions\":{}}"
  case $CODE in
    200 | 409) return 0 ;;
    503) return 1 ;;
    *) fail "write $2 through $1 -> $CODE: $(head -c 400 "$WORK/last.body")" ;;
  esac
}
write() {
  SEQ=$((SEQ + 1))
  wait_until 60 "write w$SEQ acknowledged" post "$1" "w$SEQ"
  ACKED=$((ACKED + 1))
}
base=$(field A Certificates)
for t in A B C; do write "$t"; done

L=$(leader_of A B C)
F=$(echo A B C | tr ' ' '\n' | grep -vx "$L" | head -1)
O=$(echo A B C | tr ' ' '\n' | grep -vx "$L" | grep -vx "$F")
log "leader $L; term writes fail on $F from now on; pausing $L for a new election"
touch "$WORK/$F.fault"
kill -STOP "$(cat "$WORK/$L.pid")"
dead() { ! alive "$1"; }
wait_until 60 "$F to fail closed" dead "$F"
kill -CONT "$(cat "$WORK/$L.pid")"
rc=0
wait "$(cat "$WORK/$F.pid")" || rc=$?
rm -f "$WORK/$F.pid"
[ "$rc" != 0 ] || fail "$F exited 0 after its Raft turned Unavailable"
[ "$rc" -lt 128 ] || fail "$F died of signal $((rc - 128)) instead of exiting"
grep -q "NODE-RAFT.*Raft stopped on this node (canonical/raft turned Unavailable.*injected failure" \
  "$WORK/$F.log" || fail "no clear log line: $(grep -E 'ERROR|NODE-RAFT' "$WORK/$F.log" | tail -3)"
log "$F exited with $rc: $(grep 'NODE-RAFT' "$WORK/$F.log" | tail -1 | cut -c1-220)"

wait_until 60 "a leader on $L $O" ready "$L" "$O"
write "$L"
write "$O"

log "restarting $F without the fault"
rm -f "$WORK/$F.fault"
start_hooked "$F"
wait_until 60 "a leader on A B C after the restart" ready A B C
write "$F"
all_kept "$base" "$ACKED"

# A leader whose log write fails (as when no Raft segment can be prepared on a full disk):
# canonical/raft 0.15 would truncate its in-memory log and go on leading, so it must stop, and
# its leadership with it.
L=$(leader_of A B C)
O=$(echo A B C | tr ' ' '\n' | grep -vx "$L" | head -1)
log "leader $L; its log writes fail from now on"
touch "$WORK/$L.fault-append"
RID="rid-append-$$"
# write_on_L: a write through L (asked again while L answers 503), never acknowledged
write_on_L() {
  dead "$L" && return 0
  call node POST "$L" "/admin/certificates?raft-request-id=$RID" "{\"Name\":\"$RID\",\"SecurityClearance\":\"ValidUser\",\"Permissions\":{}}"
  [ "$CODE" != 200 ] || fail "a write was acknowledged by a leader that could not store it"
  dead "$L"
}
wait_until 60 "$L to fail closed" write_on_L
rc=0
wait "$(cat "$WORK/$L.pid")" || rc=$?
rm -f "$WORK/$L.pid"
if [ "$rc" = 0 ] || [ "$rc" -ge 128 ]; then fail "$L exited with $rc after its log write failed"; fi
grep -q "NODE-RAFT.*Raft stopped on this node (Raft could not write its log.*injected failure" \
  "$WORK/$L.log" || fail "no clear log line: $(grep -E 'ERROR|NODE-RAFT' "$WORK/$L.log" | tail -3)"
log "$L exited with $rc: $(grep 'NODE-RAFT' "$WORK/$L.log" | tail -1 | cut -c1-220)"
others=$(echo A B C | tr ' ' '\n' | grep -vx "$L" | tr '\n' ' ')
# shellcheck disable=SC2086
wait_until 60 "a leader on $others" ready $others
# The refused write's outcome was unknown to its client: retried with its request id, it is
# applied once (409: it had been committed already, and its key was returned to nobody).
wait_until 60 "the retry of $RID acknowledged" post "$O" "$RID"
ACKED=$((ACKED + 1))
for t in $others; do write "$t"; done
rm -f "$WORK/$L.fault-append"
start_hooked "$L"
wait_until 60 "a leader on A B C after the restart" ready A B C
write "$L"
all_kept "$base" "$ACKED"
log "$ACKED acknowledged writes on every node"
for t in A B C; do stop "$t"; done
log "PASS"
