#!/usr/bin/env bash
# tools/local-cluster end to end, on its fixed local ports (8081-8084, 9081-9084) but in a
# temporary CORVID_LOCAL_DIR and with the binaries of CORVID_BIN (this build: nothing is
# installed or built): up; up again changes nothing; down stops every node cleanly; up again
# keeps the trust state; add-node D makes D a member with the same state; down.
set -euo pipefail

: "${CORVID_BIN:?CORVID_BIN must name the build directory}"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
LC=$SRC/tools/local-cluster
CLI=$CORVID_BIN/corvid
export CORVID_BIN
CORVID_LOCAL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/corvid-local.XXXXXX")
export CORVID_LOCAL_DIR
L=$CORVID_LOCAL_DIR
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*"; }
fail() {
  log "FAIL: $*"
  for f in "$L"/*.log; do
    [ -f "$f" ] || continue
    echo "---- last lines of $f"
    tail -n 30 "$f"
  done
  exit 1
}

cleanup() {
  local f p _
  for f in "$L"/*.pid; do
    [ -f "$f" ] || continue
    p=$(cat "$f")
    # Only our nodes: the pid must still be a corvid-node started from this directory.
    if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "corvid-node --config $L/"; then
      kill -KILL "$p" 2>/dev/null || true
      # The shell beside the node writes TAG.exit once it is gone: wait for it before rm -rf.
      for _ in $(seq 50); do
        [ -f "${f%.pid}.exit" ] && break
        sleep 0.1
      done
    fi
  done
  if [ -z "${KEEP_WORK:-}" ]; then rm -rf "$L"; else log "kept $L"; fi
}
trap cleanup EXIT

field() { "$CLI" admin-channel --data-dir "$L/$1" info 2>/dev/null | sed -n "s/^$2: //p"; }
pids() {
  local t
  for t in "$@"; do printf '%s ' "$(cat "$L/$t.pid")"; done
}
# same_state TAGS...: equal applied index and state hash everywhere.
same_state() {
  local t h first=""
  for t in "$@"; do
    h="$(field "$t" AppliedIndex)/$(field "$t" StateHash)"
    [ "$h" != "/" ] || return 1
    [ -z "$first" ] && first=$h
    [ "$h" = "$first" ] || return 1
  done
}
wait_same_state() {
  local end=$((SECONDS + 90))
  until same_state "$@"; do
    [ "$SECONDS" -lt "$end" ] || fail "no common state on $* after 90 s"
    sleep 0.2
  done
}
# run NAME ARGS...: tools/local-cluster ARGS, its output kept in $L/NAME.out.
run() {
  local name=$1
  shift
  "$LC" "$@" >"$L/$name.out" 2>&1 || fail "local-cluster $* failed: $(cat "$L/$name.out")"
  cat "$L/$name.out"
}
all_stopped() {
  local t
  for t in "$@"; do
    [ ! -e "$L/$t.pid" ] || fail "$t.pid left behind"
    [ "$(cat "$L/$t.exit" 2>/dev/null)" = 0 ] || fail "node $t exited with '$(cat "$L/$t.exit" 2>/dev/null)'"
  done
  local c
  for c in /proc/[0-9]*/cmdline; do
    if tr '\0' ' ' <"$c" 2>/dev/null | grep -q "corvid-node --config $L/"; then
      fail "a node still runs: $(tr '\0' ' ' <"$c")"
    fi
  done
}

configs_sum() { (cd "$SRC" && find cluster-configs -type f | sort | xargs sha256sum); }
CONFIGS_SUM=$(configs_sum)

for p in 8081 8082 8083 8084 9081 9082 9083 9084; do
  if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
    fail "port $p is in use (a local cluster running? 'tools/local-cluster down' stops it)"
  fi
done

log "usage"
"$LC" help | grep -q "add-node D" || fail "help does not describe add-node"
rc=0
"$LC" frobnicate >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "an unknown command exits with $rc, not 2"

log "up"
run up1 up
for e in pfx key pem; do
  f=$L/admin/admin.client.certificate.$e
  [ -f "$f" ] || fail "$f is missing"
  [ "$(stat -c %a "$f")" = 600 ] || fail "$f has mode $(stat -c %a "$f")"
done
[ -f "$L/admin/admin.client.certificate.crt" ] || fail "the admin .crt is missing"
! grep -q "PRIVATE KEY" "$L/up1.out" || fail "up printed a private key"
for u in https://127.0.0.1:8081 https://127.0.0.1:8082 https://127.0.0.1:8083 \
  admin.client.certificate.pfx admin.client.certificate.pem; do
  grep -qF "$u" "$L/up1.out" || fail "up does not print $u"
done
# The example commands work when pasted.
grep -E "^  $CORVID_BIN/corvid admin-channel " "$L/up1.out" >"$L/examples.sh"
[ "$(wc -l <"$L/examples.sh")" = 2 ] || fail "expected two admin-channel examples"
(cd "$SRC" && bash -e "$L/examples.sh") >"$L/examples.out" 2>&1 ||
  fail "an example command failed: $(cat "$L/examples.out")"
grep -q "^Node C: Member" "$L/examples.out" || fail "clusterStatus example: $(cat "$L/examples.out")"
grep -E "^  curl " "$L/up1.out" >"$L/curl.sh" || fail "no curl example"
(cd "$SRC" && bash -e "$L/curl.sh") >"$L/curl.out" 2>&1 || fail "the curl example failed: $(cat "$L/curl.out")"
grep -q '"Name":"admin.client.certificate"' "$L/curl.out" ||
  fail "the curl example does not list the admin certificate: $(head -c 600 "$L/curl.out")"
# The Studio's URL, and the commands that import the admin certificate into a browser's store
# (Chromium's NSS store, of a HOME of the test's own; the Firefox .pfx with a password).
grep -qF "https://127.0.0.1:8081/studio/" "$L/up1.out" || fail "up does not print the Studio's URL"
grep -E "^    (pk12util|certutil|openssl) " "$L/up1.out" >"$L/import.sh"
[ "$(wc -l <"$L/import.sh")" = 3 ] || fail "expected three import commands: $(cat "$L/import.sh")"
mkdir -p "$L/home/.pki/nssdb"
certutil -N -d "sql:$L/home/.pki/nssdb" --empty-password
(cd "$SRC" && HOME=$L/home bash -e "$L/import.sh") >"$L/import.out" 2>&1 ||
  fail "an import command failed: $(cat "$L/import.out")"
certutil -L -d "sql:$L/home/.pki/nssdb" | grep -q "^admin.client.certificate .*u,u,u" ||
  fail "the admin certificate is not in the browser's store: $(certutil -L -d "sql:$L/home/.pki/nssdb")"
openssl pkcs12 -in "$L/admin/admin.client.certificate.firefox.pfx" -passin pass:corvid -nokeys >/dev/null 2>&1 ||
  fail "the Firefox .pfx does not open with its password"

run status1 status
[ "$(grep -c ' Leader ' "$L/status1.out")" = 1 ] || fail "not exactly one leader"
[ "$(grep -c ' Follower ' "$L/status1.out")" = 2 ] || fail "not two followers"
! grep -q ' down ' "$L/status1.out" || fail "a node is down"

log "up again changes nothing"
wait_same_state A B C
before_pids=$(pids A B C)
before_certs=$(field A Certificates)
before_hash=$(field A TrustHash)
before_admin=$(stat -c %Y "$L/admin/admin.client.certificate.pfx")
run up2 up >/dev/null
grep -q "already running" "$L/up2.out" || fail "a second up does not say the cluster runs"
[ "$(pids A B C)" = "$before_pids" ] || fail "a second up changed the pids"
[ "$(stat -c %Y "$L/admin/admin.client.certificate.pfx")" = "$before_admin" ] ||
  fail "a second up rewrote the admin certificate"
wait_same_state A B C
[ "$(field A Certificates)" = "$before_certs" ] || fail "a second up changed the certificates"
[ "$(field A TrustHash)" = "$before_hash" ] || fail "a second up changed the state"
log "certificates: $before_certs, state $before_hash"

log "down"
run down1 down
all_stopped A B C
run status2 status >/dev/null
[ "$(grep -c ' down ' "$L/status2.out")" = 3 ] || fail "status after down: $(cat "$L/status2.out")"

log "up after down keeps the trust state"
run up3 up >/dev/null
grep -q "creating the first admin" "$L/up3.out" && fail "up after down made a new admin certificate"
wait_same_state A B C
[ "$(field A Certificates)" = "$before_certs" ] ||
  fail "certificates $(field A Certificates) after restart, $before_certs before"
[ "$(field A TrustHash)" = "$before_hash" ] || fail "the trust state changed across down/up"

log "add-node D"
run add add-node D
[ -f "$L/pki/D.pfx" ] || fail "no certificate for D"
wait_same_state A B C D
"$CLI" admin-channel --data-dir "$L/A" clusterStatus | grep -q "^Node D: Member" ||
  fail "D is not a voter: $("$CLI" admin-channel --data-dir "$L/A" clusterStatus)"
[ "$(field D Certificates)" = "$((before_certs + 1))" ] ||
  fail "D holds $(field D Certificates) certificates, expected $((before_certs + 1))"
run status3 status >/dev/null
[ "$(grep -c ' Follower \| Leader ' "$L/status3.out")" = 4 ] ||
  fail "status after add-node: $(cat "$L/status3.out")"
[ "$(configs_sum)" = "$CONFIGS_SUM" ] || fail "something was written into cluster-configs/"
# A certificate issued before the join works on D.
sed 's|https://127.0.0.1:8081/|https://127.0.0.1:8084/|' "$L/curl.sh" >"$L/curl-d.sh"
(cd "$SRC" && bash -e "$L/curl-d.sh") >"$L/curl-d.out" 2>&1 || fail "curl on D failed: $(cat "$L/curl-d.out")"
grep -q '"Name":"admin.client.certificate"' "$L/curl-d.out" ||
  fail "D does not list the admin certificate: $(head -c 600 "$L/curl-d.out")"

log "down"
run down2 down
all_stopped A B C D
log "PASS"
