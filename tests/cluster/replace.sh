#!/usr/bin/env bash
# Issue 16, RavenDB's replacement: one certificate for the whole cluster (naming every node)
# put in place on every node with `corvid certs replace-server` while clients call every node
# on new connections, with no failed request and no election; bad .pfx files refused with the
# reason and nothing started; a node that is down switches when it comes back, and
# replacement/status says which has not and why; reset; refresh of an overwritten file.
. "$(dirname "$0")/lib.sh"
start_cluster A B C
mkdir -p "$CERTS"
cp "$WORK/pki/A.pem" "$CERTS/node.pem"
mint admin ClusterAdmin
MINT_AS=admin
openssl pkcs12 -export -passout pass: -in "$CERTS/admin.pem" -out "$WORK/admin.pfx"
export CORVID_CA_FILE="$WORK/pki/ca-chain.crt"
json() { python3 -c "import json,sys; d=json.load(open('$WORK/last.body')); print($1)"; }
presented() {
  openssl s_client -connect "127.0.0.1:$(http_port "$1")" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'
}
thumb() { openssl x509 -in "$WORK/$1.crt" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'; }
every_node_presents() { local t; for t in "$@"; do [ "$(presented "$t")" = "$WANT" ] || return 1; done; }
for t in A B C; do eval "OLD_$t=$(presented "$t")"; done
load_start admin A B C
TERM0=$(field A Term)

log "bad .pfx files: refused with the reason, nothing started"
send() { # FILE [PASSWORD]
  printf '{"Name":"x","Certificate":"%s","Password":"%s"}' "$(base64 -w0 "$1")" "${2:-}" >"$WORK/body.json"
  CODE=$(curl -s -L -o "$WORK/last.body" -w '%{http_code}' --cacert "$WORK/pki/ca-chain.crt" \
    --cert "$CERTS/admin.pem" -H 'Content-Type: application/json' --data-binary "@$WORK/body.json" \
    "$(url B /admin/certificates/replace-cluster-cert)" || true)
}
refused() { # WHAT PATTERN
  [ "$CODE" = 400 ] || fail "$1: $CODE $(cat "$WORK/last.body")"
  grep -q "$2" "$WORK/last.body" || fail "$1: $(cat "$WORK/last.body")"
  must 404 admin GET A /admin/certificates/replacement/status
  [ "$(presented A)" = "$OLD_A" ] || fail "$1 changed A's certificate"
}
node_cert "A B" twonodes '-1 hour' '+90 days'
send "$WORK/twonodes.pfx"
refused "a certificate that does not name C" "does not name node C"
openssl pkcs12 -export -passout pass: -nokeys -in "$WORK/twonodes.crt" -out "$WORK/nokey.pfx"
send "$WORK/nokey.pfx"
refused "no key" "no private key"
send "$WORK/admin.pfx"
refused "a client certificate" "needs both the serverAuth"
node_cert "A B C" expired '-10 days' '-1 day'
send "$WORK/expired.pfx"
refused "an expired certificate" "expired"
node_cert "A B C" future '+1 day' '+10 days'
send "$WORK/future.pfx"
refused "a certificate not valid yet" "not valid yet"

log "corvid certs replace-server, through B: every node switches"
node_cert "A B C" shared '-1 hour' '+90 days' secret
echo secret >"$WORK/shared.pass"
out=$("$CLI" certs replace-server "$WORK/shared.pfx" --pfx-password-file "$WORK/shared.pass" \
  --cert "$WORK/admin.pfx" --url "$(url B "")" 2>&1) || fail "replace-server: $out"
grep -q "in use on every node" <<<"$out" || fail "replace-server said: $out"
WANT=$(thumb shared)
every_node_presents A B C || fail "not every node presents $WANT"
must 404 admin GET A /admin/certificates/replacement/status
for t in A B C; do
  on_disk=$(openssl pkcs12 -in "$WORK/pki/$t.pfx" -passin pass: -nokeys -clcerts 2>/dev/null | openssl x509 -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
  [ "$on_disk" = "$WANT" ] || fail "$t's file holds $on_disk"
  eval "old=\$OLD_$t"
  wait_until 30 "$t's old certificate retired" eval '[ "$(clearance_of A "$old")" = none ]'
done
[ "$(clearance_of B "$WANT")" = ClusterNode ] || fail "the new certificate is not ClusterNode"
load_stop "the replacement"
[ "$(field A Term)" = "$TERM0" ] || fail "an election during the replacement: term $TERM0 -> $(field A Term)"
log "the same again: nothing to do"
send "$WORK/shared.pfx" secret
[ "$CODE" = 201 ] || fail "again: $CODE $(cat "$WORK/last.body")"
must 404 admin GET A /admin/certificates/replacement/status
every_node_presents A B C || fail "the same certificate again changed a node"

log "C is down: A and B switch, status names C; C switches when it comes back"
stop C
node_cert "A B C" shared2 '-1 hour' '+90 days'
L=$(leader_of A B)
out=$(admin "$L" replaceClusterCert "$WORK/shared2.pfx" 2>&1) || fail "replaceClusterCert: $out"
WANT=$(thumb shared2)
wait_until 30 "A and B on the new certificate" every_node_presents A B
must 200 admin GET A /admin/certificates/replacement/status
[ "$(json "d['Thumbprint']")" = "$WANT" ] || fail "status: $(cat "$WORK/last.body")"
[ "$(json "[n['State'] for n in d['Nodes'] if n['Tag']=='C'][0]")" = Pending ] || fail "status: $(cat "$WORK/last.body")"
json "[n['Note'] for n in d['Nodes'] if n['Tag']=='C'][0]" | grep -q "down" || fail "status: $(cat "$WORK/last.body")"
[ "$(json "d['Replaced']")" = 2 ] || fail "status: $(cat "$WORK/last.body")"
start C
wait_until 60 "C on the new certificate" every_node_presents C
wait_until 30 "the replacement over" eval 'call admin GET A /admin/certificates/replacement/status; [ "$CODE" = 404 ]'
wait_until 30 "the first shared certificate retired" eval '[ "$(clearance_of A "$(thumb shared)")" = none ]'
wait_until 60 "A B C ready" ready A B C

log "reset: C down during a replacement, reset, C keeps the certificate it has"
stop C
node_cert "A B C" shared3 '-1 hour' '+90 days'
send "$WORK/shared3.pfx"
[ "$CODE" = 201 ] || fail "shared3: $CODE $(cat "$WORK/last.body")"
WANT=$(thumb shared3)
wait_until 30 "A and B on shared3" every_node_presents A B
must 204 admin POST A /admin/certificates/replacement/reset
must 404 admin GET B /admin/certificates/replacement/status
start C
wait_until 60 "A B C ready" ready A B C
[ "$(presented C)" = "$(thumb shared2)" ] || fail "C switched after the reset"
[ "$(clearance_of A "$(thumb shared2)")" = ClusterNode ] || fail "C's certificate was retired while C uses it"

log "refresh: C's file overwritten with shared3, picked up"
openssl pkcs12 -export -passout pass: -inkey "$WORK/shared3.key" -in "$WORK/shared3.crt" \
  -certfile "$WORK/pki/issuing.crt" -out "$WORK/pki/C.pfx"
must 204 admin POST C /admin/certificates/refresh
[ "$(presented C)" = "$WANT" ] || fail "C did not pick up its file"
wait_until 30 "shared2 retired" eval '[ "$(clearance_of A "$(thumb shared2)")" = none ]'

log "refusals: an Operator; a follower answers 307"
mint ops Operator
must 403 ops POST A /admin/certificates/replace-cluster-cert '{"Certificate":"x"}'
must 403 ops GET A /admin/certificates/replacement/status
must 403 ops POST A /admin/certificates/replacement/reset
must 403 ops POST A /admin/certificates/refresh
F=$(echo A B C | tr ' ' '\n' | grep -v "$(leader_of A B C)" | head -1)
CODE=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/pki/ca-chain.crt" --cert "$CERTS/admin.pem" \
  -X POST -d '{}' "$(url "$F" /admin/certificates/replace-cluster-cert)")
[ "$CODE" = 307 ] || fail "a follower answered $CODE"
gen A still-committing || fail "the cluster stopped committing"
wait_until 60 "the same state on A B C" same_state A B C
log "PASS"
