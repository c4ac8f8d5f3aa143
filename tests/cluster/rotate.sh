#!/usr/bin/env bash
# Issue 16, per-node rotation: each node's certificate replaced in turn while clients call
# every node on new connections, with no failed request and no election; the new one on disk
# (owner-only), presented by the node, registered as ClusterNode; the old one revoked (in the
# CRL, gone from the registrations) and refused when a peer still presents it. Bad .pfx
# files refused with the reason and nothing changed.
. "$(dirname "$0")/lib.sh"
start_cluster A B C
mkdir -p "$CERTS"
cp "$WORK/pki/A.pem" "$CERTS/node.pem"
mint admin ClusterAdmin
MINT_AS=admin # A's own certificate is about to be revoked
openssl pkcs12 -export -passout pass: -in "$CERTS/admin.pem" -out "$WORK/admin.pfx"
export CORVID_CA_FILE="$WORK/pki/ca-chain.crt"
json() { python3 -c "import json,sys; d=json.load(open('$WORK/last.body')); print($1)"; }
# presented TAG: the thumbprint node TAG presents on a new HTTPS connection, upper case
presented() {
  openssl s_client -connect "127.0.0.1:$(http_port "$1")" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'
}
# on_disk TAG: the thumbprint in node TAG's Security.Certificate.Path
on_disk() {
  openssl pkcs12 -in "$WORK/pki/$1.pfx" -passin pass: -nokeys -clcerts 2>/dev/null |
    openssl x509 -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'
}
term_of() { field "$1" Term; }

load_start admin A B C
TERM0=$(term_of A)

rotate() {
  local tag=$1 old new out
  old=$(presented "$tag")
  log "rotating $tag ($old) through $2"
  out=$("$CLI" cluster rotate-node-cert "$tag" --cert "$WORK/admin.pfx" --url "$(url "$2" "")" \
    --json 2>&1) || fail "rotate-node-cert $tag: $out"
  new=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['Thumbprint'])" "$out")
  [ "$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['OldThumbprint'])" "$out")" = "$old" ] ||
    fail "$tag: old thumbprint: $out"
  [ "$new" != "$old" ] || fail "$tag: the same certificate: $out"
  [ "$(presented "$tag")" = "$new" ] || fail "$tag presents $(presented "$tag"), not $new"
  [ "$(on_disk "$tag")" = "$new" ] || fail "$tag's file holds $(on_disk "$tag"), not $new"
  [ "$(stat -c %a "$WORK/pki/$tag.pfx")" = 600 ] || fail "$tag's file is not owner-only"
  for t in A B C; do
    wait_until 30 "$t: $old retired" eval '[ "$(clearance_of "$t" "$old")" = none ]'
    [ "$(clearance_of "$t" "$new")" = ClusterNode ] || fail "$t: $new not ClusterNode"
  done
  eval "NEW_$tag=$new"
}
for t in A B C; do cp "$WORK/pki/$t.pfx" "$WORK/old-$t.pfx"; done
rotate B A
rotate A C
rotate C B

log "the old certificates are in the CRL, as superseded"
must 200 admin GET B "/ca/crl?format=pem"
crl=$(openssl crl -in "$WORK/last.body" -noout -text)
for t in A B C; do
  s=$(openssl x509 -in "$WORK/pki/$t.crt" -noout -serial | sed 's/.*=//')
  grep -A4 "Serial Number: $s" <<<"$crl" | grep -q "Superseded" || fail "$t's old serial $s not superseded: $crl"
done

log "a peer presenting B's old certificate is refused"
L=$(leader_of A B C)
impostor "$WORK/pki/B.pem" 2 B "$L"
wait_until 60 "the refusal in the log" grep -q "refused inbound peer claiming node B: .*was revoked" "$WORK/$L.log"

load_stop "the rotations"
[ "$(term_of A)" = "$TERM0" ] || fail "an election during the rotations: term $TERM0 -> $(term_of A)"

log "a node restarted after its rotation keeps its new certificate"
stop B
start B
wait_until 60 "B back" ready A B C
[ "$(presented B)" = "$NEW_B" ] || fail "B came back with $(presented B)"

log "bad .pfx files: refused with the reason, nothing changed"
send_pfx() { # FILE TAG [PASSWORD]
  local b64
  b64=$(base64 -w0 "$1")
  printf '{"Certificate":"%s","Password":"%s"}' "$b64" "${3:-}" >"$WORK/body.json"
  CODE=$(curl -s -o "$WORK/last.body" -w '%{http_code}' --cacert "$WORK/pki/ca-chain.crt" \
    --cert "$CERTS/admin.pem" -H 'Content-Type: application/json' --data-binary "@$WORK/body.json" \
    "$(url "$2" "/admin/certificates/replace-node-cert?nodeTag=$2")" || true)
}
refused() { # WHAT MESSAGE-PATTERN
  [ "$CODE" = 400 ] || fail "$1: $CODE $(cat "$WORK/last.body")"
  grep -q "$2" "$WORK/last.body" || fail "$1: $(cat "$WORK/last.body")"
  [ "$(presented C)" = "$NEW_C" ] || fail "$1 changed C's certificate"
}
openssl pkcs12 -export -passout pass: -nokeys -in "$WORK/pki/C.crt" -out "$WORK/nokey.pfx"
send_pfx "$WORK/nokey.pfx" C
refused "no key" "no private key"
openssl pkcs12 -export -passout pass: -in "$CERTS/admin.pem" -out "$WORK/client.pfx"
send_pfx "$WORK/client.pfx" C
refused "a client certificate" "lacks the serverAuth usage"
send_pfx "$WORK/pki/A.pfx" C
refused "A's certificate for C" "names node 'A'"
send_pfx "$WORK/old-C.pfx" C wrong
refused "a wrong password" "wrong or missing Password"
# expired and not yet valid
node_cert C expired '-10 days' '-1 day' pw
send_pfx "$WORK/expired.pfx" C pw
refused "an expired certificate" "expired"
node_cert C future '+1 day' '+10 days' pw
send_pfx "$WORK/future.pfx" C pw
refused "a certificate not valid yet" "not valid yet"

log "a good .pfx for C, sent through A (307 to C)"
node_cert C good '-1 hour' '+90 days' pw
b64=$(base64 -w0 "$WORK/good.pfx")
must 200 admin POST A /admin/certificates/replace-node-cert?nodeTag=C "{\"Certificate\":\"$b64\",\"Password\":\"pw\"}"
want=$(openssl x509 -in "$WORK/good.crt" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
[ "$(json "d['Thumbprint']")" = "$want" ] || fail "C: $(cat "$WORK/last.body")"
[ "$(presented C)" = "$want" ] || fail "C presents $(presented C), not $want"
log "the same again: nothing to do"
must 200 admin POST C /admin/certificates/replace-node-cert?nodeTag=C "{\"Certificate\":\"$b64\",\"Password\":\"pw\"}"
[ "$(json "d['Changed']")" = False ] || fail "same certificate: $(cat "$WORK/last.body")"

log "refusals: an Operator, a missing nodeTag, an unknown node"
mint ops Operator
must 403 ops POST B "/admin/certificates/replace-node-cert?nodeTag=B"
[ "$(presented B)" = "$NEW_B" ] || fail "an Operator rotated B"
must 400 admin POST B "/admin/certificates/replace-node-cert"
must 404 admin POST B "/admin/certificates/replace-node-cert?nodeTag=Q"
gen A still-committing || fail "the cluster stopped committing"
log "PASS"
