#!/usr/bin/env bash
# Secrets at rest. On a live 3-node cluster with snapshots taken: the issuing CA's private key
# is nowhere in clear under any DataDir (raw scalar, DER and PEM, searched in the Raft log,
# snapshots and RocksDB files); every file under DataDir is 0600 and every folder 0700; a node
# whose Security.MasterKey.Path is missing, of the wrong size, readable by others, owned by
# another user or inside its DataDir refuses to start and names the key; a node with another
# master key cannot issue, says why and keeps running; certificates issued through every node
# verify against the root; and a master key rotation (corvid pki rotate-master-key) re-seals
# the CA key and the TOTP keys under the new key (a two-factor session goes on, a login works
# after it), after which the old key alone opens nothing; no TOTP key is stored or logged.
. "$(dirname "$0")/lib.sh"

pki
MK=$WORK/pki/master.key
extra() { echo "\"Cluster.SnapshotThreshold\": 16, \"Cluster.SnapshotTrailing\": 8, \"Logs.AuditPath\": \"data/$1/audit.log\""; }
for t in A B C; do
  config "$t" "A B C" "$(extra "$t")"
  cp "$WORK/$t.json" "$WORK/$t-good.json"
done
for t in A B C; do start "$t"; done
wait_until 60 "a leader" ready A B C

url() { echo "https://127.0.0.1:$(http_port "$1")$2"; }
verify() { openssl verify -CAfile "$WORK/pki/root.crt" -untrusted "$WORK/pki/issuing.crt" "$1" >/dev/null; }
# issue_all PREFIX: one certificate through every node's admin channel, each verified.
issue_all() {
  local t
  for t in A B C; do
    gen "$t" "$1-$t" || fail "generateClientCert $1-$t through $t"
    verify "$WORK/out/$1-$t.crt" || fail "$1-$t (issued through $t) does not verify against the root"
  done
}

log "issuing through every node until each has taken a snapshot"
for i in $(seq 1 8); do issue_all "cert$i"; done
has_snapshots() {
  local t
  for t in A B C; do ls "$WORK/data/$t/raft" | grep -q '^snapshot-' || return 1; done
}
wait_until 60 "a snapshot on every node" has_snapshots
wait_until 60 "same state" same_state A B C
log "$(ls "$WORK/data/A/raft" | tr '\n' ' ')"

# ---- the issuing CA key in every encoding it could be stored in
K=$WORK/key
mkdir -p "$K"
openssl pkcs12 -in "$WORK/pki/issuing.pfx" -nocerts -nodes -passin pass: 2>/dev/null |
  openssl pkey -out "$K/pkcs8.pem" || fail "cannot read the key of issuing.pfx"
openssl pkey -in "$K/pkcs8.pem" -outform DER -out "$K/pkcs8.der"
openssl ec -in "$K/pkcs8.pem" -outform DER -out "$K/sec1.der" 2>/dev/null # what i2d_PrivateKey gives
openssl ec -in "$K/pkcs8.pem" -out "$K/sec1.pem" 2>/dev/null
hex() { od -An -v -tx1 "$1" | tr -d '\n'; } # " 30 77 02 ...": matches only on byte boundaries
SEC1=$(hex "$K/sec1.der")
case $SEC1 in " 30 77 02 01 01 04 20 "*) ;; *) fail "unexpected SEC1 encoding of the P-256 key: ${SEC1:0:40}" ;; esac
SCALAR=${SEC1:21:96} # the 32 private-key bytes
[ ${#SCALAR} = 96 ] || fail "cannot take the private scalar"
PKCS8=$(hex "$K/pkcs8.der")
grep -hv -- '-----' "$K/pkcs8.pem" "$K/sec1.pem" | awk 'length($0) >= 16' >"$K/pem-lines"
[ "$(wc -l <"$K/pem-lines")" -ge 4 ] || fail "too few PEM lines to search for"

# clear_in DIR: prints each file under DIR holding the key in one of those encodings.
clear_in() {
  local f
  while IFS= read -r -d '' f; do
    if hex "$f" | grep -qF -e "$SCALAR" -e "$PKCS8" -e "$SEC1"; then echo "$f (DER bytes)"; fi
  done < <(find "$1" -type f -print0)
  grep -rlaF -f "$K/pem-lines" "$1" | sed 's/$/ (PEM)/' || true
}
# The search itself must find what it looks for.
mkdir -p "$WORK/control"
{ head -c 100 /dev/urandom; cat "$K/sec1.der"; head -c 100 /dev/urandom; } >"$WORK/control/der"
cp "$K/pkcs8.pem" "$WORK/control/pem"
[ "$(clear_in "$WORK/control" | wc -l)" = 2 ] || fail "the search misses the key: $(clear_in "$WORK/control")"

check_no_clear_key() {
  local found
  found=$(clear_in "$WORK/data")
  [ -z "$found" ] || fail "the issuing CA private key is stored in clear: $found"
}
check_no_clear_key
log "no clear copy of the issuing CA key under any DataDir ($(find "$WORK/data" -type f | wc -l) files: Raft segments, snapshots, RocksDB)"
for t in A B C; do
  [ "$(field "$t" IssuingCAKey)" = "sealed under $(field "$t" MasterKey) (this node's master key)" ] ||
    fail "$t: $(admin "$t" info | grep -E 'MasterKey|IssuingCAKey')"
done

# ---- permissions
check_modes() {
  local bad
  bad=$(find "$WORK/data" \( -type d ! -perm 700 \) -o \( ! -type d ! -perm 600 \) -printf '%m %p\n')
  [ -z "$bad" ] || fail "not owner-only under DataDir: $bad"
}
check_modes
[ -f "$WORK/data/A/audit.log" ] || fail "no audit log in DataDir to check"
log "every file under DataDir is 0600, every folder 0700 ($(find "$WORK/data" | wc -l) entries)"

# ---- master key files a node refuses
W=$(echo A B C | tr ' ' '\n' | grep -v "$(leader_of A B C)" | tail -1)
stop "$W"
# refused NAME JSON-VALUE WHY: node W started with that key file exits 1 naming the key.
refused() {
  local name=$1 value=$2 why=$3 rc=0
  sed "s#\"Security.MasterKey.Path\": \"pki/master.key\"#\"Security.MasterKey.Path\": $value#" \
    "$WORK/$W.json" >"$WORK/$W-$name.json"
  (cd "$WORK" && timeout 30 "$NODE" --config "$W-$name.json" >"$WORK/$name.out" 2>&1) || rc=$?
  [ "$rc" = 1 ] || fail "$name: the node exited with $rc, not 1: $(cat "$WORK/$name.out")"
  grep -q "Security.MasterKey.Path" "$WORK/$name.out" || fail "$name: the key is not named: $(cat "$WORK/$name.out")"
  grep -q "$why" "$WORK/$name.out" || fail "$name: does not say '$why': $(cat "$WORK/$name.out")"
  log "$name refused: $(tail -n 1 "$WORK/$name.out")"
}
mkdir -p "$WORK/keys"
refused missing '"keys/none.key"' "does not exist"
(umask 077 && head -c 16 /dev/urandom >"$WORK/keys/short.key")
refused short '"keys/short.key"' "holds 16 bytes"
(umask 077 && head -c 33 /dev/urandom >"$WORK/keys/long.key")
refused long '"keys/long.key"' "holds 33 bytes"
cp "$MK" "$WORK/keys/open.key" && chmod 644 "$WORK/keys/open.key"
refused mode0644 '"keys/open.key"' "mode 0644"
chmod 640 "$WORK/keys/open.key"
refused mode0640 '"keys/open.key"' "mode 0640"
if [ "$(id -u)" = 0 ]; then
  cp "$MK" "$WORK/keys/theirs.key" && chown 65534:65534 "$WORK/keys/theirs.key"
  refused owner '"keys/theirs.key"' "owned by uid 65534"
fi
cp "$MK" "$WORK/data/$W/master.key"
refused inside "\"data/$W/master.key\"" "inside DataDir"
rm -f "$WORK/data/$W/master.key"
grep -v '"Security.MasterKey.Path"' "$WORK/$W.json" >"$WORK/$W-nokey.json"
rc=0
(cd "$WORK" && timeout 30 "$NODE" --config "$W-nokey.json" >"$WORK/nokey.out" 2>&1) || rc=$?
[ "$rc" = 1 ] && grep -q "missing required key 'Security.MasterKey.Path'" "$WORK/nokey.out" ||
  fail "a config without the key: rc $rc, $(cat "$WORK/nokey.out")"
for f in "$WORK"/*.out; do
  grep -qaF -f "$K/pem-lines" "$f" && fail "$f prints key material"
done

# ---- a node with another master key: joins, cannot issue, says why, keeps running
(umask 077 && head -c 32 /dev/urandom >"$WORK/keys/other.key")
sed 's#"Security.MasterKey.Path": "pki/master.key"#"Security.MasterKey.Path": "keys/other.key"#' \
  "$WORK/$W.json" >"$WORK/$W-other.json"
cp "$WORK/$W-other.json" "$WORK/$W.json"
start "$W"
wait_until 60 "$W back with another master key" ready A B C
out=$(admin "$W" generateClientCert wrongkey "$WORK/out" 2>&1) && fail "$W issued with another master key: $out"
grep -q "sealed under master key" <<<"$out" && grep -q "Security.MasterKey.Path" <<<"$out" ||
  fail "unclear refusal on the admin channel: $out"
log "admin channel on $W: $out"
[ ! -e "$WORK/out/wrongkey.crt" ] || fail "a certificate file was written"
st=$(curl -s -o "$WORK/post.body" -w '%{http_code}' --cacert "$WORK/pki/ca-chain.crt" --cert "$WORK/pki/A.pem" \
  -H 'Content-Type: application/json' -d '{"Name":"wrongkey2","SecurityClearance":"ValidUser","Permissions":{}}' \
  "$(url "$W" /admin/certificates)")
[ "$st" = 503 ] && grep -q "sealed under master key" "$WORK/post.body" ||
  fail "POST /admin/certificates on $W: $st $(head -c 300 "$WORK/post.body")"
log "POST /admin/certificates on $W: $st $(cat "$WORK/post.body")"
grep -q "cannot issue" <(admin "$W" info) || fail "info on $W does not show the foreign key"
admin "$W" info | grep -q 'Serving: yes' || fail "$W stopped serving"
alive "$W" || fail "$W died"
grep -q "wrongkey" <(curl -s --cacert "$WORK/pki/ca-chain.crt" --cert "$WORK/pki/A.pem" "$(url A /admin/certificates)") &&
  fail "a certificate was registered by the node with another key"
gen "$(leader_of A B C)" after-wrong-key || fail "the others stopped issuing"
stop "$W"
cp "$WORK/$W-good.json" "$WORK/$W.json"
start "$W"
wait_until 60 "$W back with the cluster's master key" ready A B C
issue_all back

# ---- rotation: new key first, old key kept; re-sealed; --finish; the old key alone fails
# A certificate with a TOTP key, whose key is re-sealed too, and its session kept.
TOTP=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
https() { # METHOD PATH PEM [BODY]: status; body in $WORK/https.body
  curl -s -o "$WORK/https.body" -w '%{http_code}' --cacert "$WORK/pki/ca-chain.crt" --cert "$3" \
    -X "$1" ${4:+-H 'Content-Type: application/json' -d "$4"} "$(url A "$2")" || true
}
[ "$(https POST /admin/certificates "$WORK/pki/A.pem" "{\"Name\":\"totp\",\"SecurityClearance\":\"Operator\",\"Permissions\":{},\"TwoFactorAuthenticationKey\":\"$TOTP\"}")" = 200 ] ||
  fail "a certificate with a TOTP key: $(cat "$WORK/https.body")"
(mkdir -p "$WORK/totp" && cd "$WORK/totp" && unzip -q "$WORK/https.body" && cat totp.crt totp.key >totp.pem) || fail "totp zip"
TOTP_PEM=$WORK/totp/totp.pem
[ "$(https GET /admin/certificates "$TOTP_PEM")" = 428 ] || fail "no 428 before the login"
[ "$(https POST '/authentication/2fa?hasLimits=false' "$TOTP_PEM" "{\"Token\":\"$(oathtool --totp -b "$TOTP")\"}")" = 202 ] ||
  fail "login: $(cat "$WORK/https.body")"
OLD_ID=$(field A MasterKey)
cp -p "$MK" "$WORK/keys/old.key"
"$CLI" pki rotate-master-key --key "$MK" >"$WORK/rotate.out" || fail "rotate-master-key: $(cat "$WORK/rotate.out")"
NEW_ID=$(sed -n 's/.*new master key \([0-9a-f]*\),.*/\1/p' "$WORK/rotate.out")
[ -n "$NEW_ID" ] && [ "$NEW_ID" != "$OLD_ID" ] || fail "rotation output: $(cat "$WORK/rotate.out")"
rolling_restart() {
  local l t
  l=$(leader_of A B C)
  for t in $(echo A B C | tr ' ' '\n' | grep -v "$l") "$l"; do
    stop "$t"
    start "$t"
    wait_until 60 "$t back" ready A B C
  done
}
rolling_restart
resealed() {
  local t
  for t in A B C; do
    admin "$t" info | grep -qx "IssuingCAKey: sealed under $NEW_ID (this node's master key)" || return 1
  done
}
wait_until 60 "the CA key re-sealed under $NEW_ID on every node" resealed
grep -q "re-sealed under master key $NEW_ID" "$WORK"/[ABC].log || fail "no node logged the re-seal"
totp_resealed() { [ "$(field "$(leader_of A B C)" TwoFactorKeys)" = "all sealed under the current master key" ]; }
wait_until 90 "the TOTP keys re-sealed under $NEW_ID" totp_resealed
grep -q "two-factor keys sealed under an older master key: re-sealing" "$WORK"/[ABC].log ||
  fail "no node re-sealed the TOTP key"
issue_all rotating
"$CLI" pki rotate-master-key --key "$MK" --finish >/dev/null || fail "rotate-master-key --finish"
rolling_restart
for t in A B C; do
  [ "$(field "$t" MasterKey)" = "$NEW_ID" ] || fail "$t: MasterKey $(field "$t" MasterKey) after --finish"
done
issue_all rotated
wait_until 30 "the session kept through the rotation" test "$(https GET /admin/certificates "$TOTP_PEM")" = 200
[ "$(https POST '/authentication/2fa?hasLimits=false' "$TOTP_PEM" "{\"Token\":\"$(oathtool --totp -b --now "@$(($(date +%s) + 30))" "$TOTP")\"}")" = 202 ] ||
  fail "login after the rotation: $(cat "$WORK/https.body")"
log "rotated from $OLD_ID to $NEW_ID; every node issues, the TOTP key opens under the new key"
W=$(echo A B C | tr ' ' '\n' | grep -v "$(leader_of A B C)" | tail -1)
stop "$W"
sed 's#"Security.MasterKey.Path": "pki/master.key"#"Security.MasterKey.Path": "keys/old.key"#' \
  "$WORK/$W-good.json" >"$WORK/$W.json"
start "$W"
wait_until 60 "$W back with the old key" ready A B C
out=$(admin "$W" generateClientCert oldkey "$WORK/out" 2>&1) && fail "the retired key still opens the CA key: $out"
grep -q "sealed under master key $NEW_ID" <<<"$out" || fail "unclear: $out"
stop "$W"
cp "$WORK/$W-good.json" "$WORK/$W.json"
start "$W"
wait_until 60 "$W back" ready A B C

wait_until 60 "same state" same_state A B C
check_no_clear_key
check_modes
for t in A B C; do
  grep -aF -f "$K/pem-lines" "$WORK/$t.log" >/dev/null && fail "$t's log holds key material"
done
grep -rlaF "$TOTP" "$WORK/data" "$WORK"/[ABC].log && fail "the TOTP key is stored or logged in clear"
for t in A B C; do stop "$t"; done
log "PASS"
