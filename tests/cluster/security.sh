#!/usr/bin/env bash
# The holes a security review found on a live cluster, each shown closed through the public
# interfaces: forged renewals (the pinning-hash fallback), collection edits, reused request ids,
# removed nodes still trusted, a partitioned node serving its state, add-node trusting whatever
# certificate a URL presents.
. "$(dirname "$0")/lib.sh"
TESTCERT="$CORVID_BIN/corvid-testcert"
pki
for t in A B C; do config "$t" "A B C" "\"Logs.AuditPath\": \"audit-$t.jsonl\""; done
for t in A B C; do start "$t"; done
wait_until 60 "a leader" ready A B C
C="$CERTS"
mint admin ClusterAdmin
mint operator Operator
{ openssl pkcs12 -in "$WORK/pki/issuing.pfx" -clcerts -nokeys -passin pass: &&
  openssl pkcs12 -in "$WORK/pki/issuing.pfx" -nocerts -nodes -passin pass:; } 2>/dev/null \
  >"$WORK/issuing.pem" || fail "cannot read the issuing CA"
# renew NAME OUT FROM TO [ISSUER]: a certificate for NAME's key pair, by ISSUER (the cluster's
# issuing CA unless given)
renew() {
  "$TESTCERT" "$C/$2.pem" "$2" "$3" "$4" "${5:-$WORK/issuing.pem}" "$C/z-$1/$1.key" ||
    fail "cannot make $2"
}
registered() { must 200 admin GET A "/admin/certificates?thumbprint=$1" && grep -q "$1" "$WORK/last.body"; }

log "1. renewals by the pinning hash: only under the same issuer key, of a current registration"
mint victim ClusterAdmin
# A look-alike CA: the attacker's own key, with the issuing CA's subject key identifier, so that
# its certificates carry the Authority Key Identifier of the cluster CA's.
SKI=$(openssl x509 -in "$WORK/pki/issuing.crt" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :')
[ -n "$SKI" ] || fail "the issuing CA has no subject key identifier"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/fake.key" \
  -out "$WORK/fake.crt" -subj "/CN=Corvid Issuing CA" -days 30 \
  -addext "subjectKeyIdentifier=$SKI" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || fail "cannot make the look-alike CA"
cat "$WORK/fake.crt" "$WORK/fake.key" >"$WORK/fake.pem"
renew victim forged 0 20 "$WORK/fake.pem"
[ "$(openssl x509 -in "$C/forged.pem" -noout -ext authorityKeyIdentifier | tail -1)" = \
  "$(openssl x509 -in "$C/victim.pem" -noout -ext authorityKeyIdentifier | tail -1)" ] ||
  fail "the forged certificate does not carry the stored certificate's key identifier"
must 403 forged GET B /cluster/topology
grep -q "known Public Key Pinning Hash" "$WORK/last.body" || fail "unclear: $(cat "$WORK/last.body")"
renew victim selfsigned 0 3650 self
must 403 selfsigned GET B /cluster/topology
registered "$(tp victim)" || fail "the victim's registration is gone"
must 200 admin GET A /admin/certificates
grep -qi "$(tp forged)\|$(tp selfsigned)" "$WORK/last.body" && fail "a forged renewal was registered"

log "   a renewal by the cluster CA is registered like the original, two-factor key included"
must 200 node POST A /admin/certificates '{"Name":"twofa","SecurityClearance":"ValidUser","Permissions":{"db1":"Read"},"TwoFactorAuthenticationKey":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}'
(cd "$C" && rm -rf z-twofa && mkdir z-twofa && cd z-twofa && unzip -q "$WORK/last.body" &&
  cat twofa.crt twofa.key >"$C/twofa.pem") || fail "mint twofa"
must 428 twofa GET B /cluster/topology
renew twofa twofa2 0 60
must 428 twofa2 GET B /cluster/topology
wait_until 60 "the renewal registered" registered "$(tp twofa2)"
must 200 admin GET A "/admin/certificates?thumbprint=$(tp twofa2)"
grep -q '"HasTwoFactor":true' "$WORK/last.body" || fail "the renewal lost the two-factor key: $(cat "$WORK/last.body")"
grep -q '"db1":"Read"' "$WORK/last.body" || fail "the renewal lost its permissions: $(cat "$WORK/last.body")"
must 428 twofa2 GET C /cluster/topology # registered now: still no access without a code
wait_until 60 "the renewal in the audit log" grep -q "$(tp twofa2 | tr 'A-F' 'a-f').*a renewal with the key pair" "$WORK/audit-A.jsonl"

log "   an expired registration renews nothing"
"$TESTCERT" "$C/old.pem" old -30 -1 "$WORK/issuing.pem" || fail "cannot make old"
mkdir -p "$C/z-old" && openssl pkey -in "$C/old.pem" -out "$C/z-old/old.key" 2>/dev/null
must 201 admin PUT A /admin/certificates "{\"Name\":\"old\",\"Certificate\":\"$(openssl x509 -in "$C/old.pem" | grep -v -- ----- | tr -d '\n')\",\"SecurityClearance\":\"ClusterAdmin\",\"Permissions\":{}}"
renew old revived 0 3650
must 403 revived GET B /cluster/topology

log "   revoking a certificate revokes every registration of its key"
mint user ValidUser
renew user user2 0 60
must 200 user2 GET B /cluster/topology
wait_until 60 "the renewal registered" registered "$(tp user2)"
must 204 admin DELETE A "/admin/certificates?thumbprint=$(tp user)"
for t in A B C; do
  must 403 user2 GET "$t" /cluster/topology
done
must 404 admin GET A "/admin/certificates?thumbprint=$(tp user2)"

log "2. an edit applies to the whole collection"
"$TESTCERT" "$C/first.pem" first 0 30
"$TESTCERT" "$C/second.pem" second 0 30
cat "$C/first.pem" "$C/second.pem" >"$WORK/pair.pem"
admin A trustClientCert pair "$WORK/pair.pem" >/dev/null || fail "trustClientCert pair"
wait_until 60 "same state" same_state A B C
must 200 second GET B /admin/certificates
must 400 admin POST A /admin/certificates/edit "{\"Thumbprint\":\"$(tp second)\",\"Name\":\"x\",\"SecurityClearance\":\"ValidUser\",\"Permissions\":{}}"
grep -q "$(tp first | tr 'A-F' 'a-f')" "$WORK/last.body" || fail "the refusal does not name the primary: $(cat "$WORK/last.body")"
must 201 admin POST A /admin/certificates/edit "{\"Thumbprint\":\"$(tp first)\",\"Name\":\"pair\",\"SecurityClearance\":\"ValidUser\",\"Permissions\":{}}"
wait_until 60 "same state" same_state A B C
for t in A B C; do
  must 403 second GET "$t" /admin/certificates
  must 403 first GET "$t" /admin/certificates
done
must 200 admin GET A "/admin/certificates?thumbprint=$(tp second)"
grep -q '"SecurityClearance":"ValidUser"' "$WORK/last.body" || fail "$(cat "$WORK/last.body")"

log "3. raft-request-id: one caller's id names one command"
mint target ValidUser
must 204 admin DELETE A "/admin/certificates/purge?raft-request-id=r-1"
must 409 admin DELETE B "/admin/certificates?thumbprint=$(tp target)&raft-request-id=r-1"
grep -q "different command" "$WORK/last.body" || fail "unclear: $(cat "$WORK/last.body")"
must 200 target GET C /cluster/topology # not revoked
must 204 operator DELETE A "/admin/certificates/purge?raft-request-id=r-1" # another caller's
LONG=$(head -c 300 /dev/zero | tr '\0' 'x')
must 400 admin DELETE A "/admin/certificates?thumbprint=$(tp target)&raft-request-id=$LONG"
must 200 target GET C /cluster/topology
must 204 admin DELETE A "/admin/certificates?thumbprint=$(tp target)&raft-request-id=r-2"
must 204 admin DELETE C "/admin/certificates?thumbprint=$(tp target)&raft-request-id=r-2" # a retry
must 403 target GET B /cluster/topology

log "13. add-node without expectedThumbprint: only a certificate the cluster CA issued"
pki "$WORK/other"
cp "$WORK/other/E.pfx" "$WORK/pki/E-other.pfx"
config E "" ''
sed -i 's#pki/E.pfx#pki/E-other.pfx#; s#pki/issuing.pfx#other/issuing.pfx#' "$WORK/E.json"
start E
wait_until 60 "E answers" curl -s -k "$(url E /cluster/node-info)"
H=$(field A TrustHash)
must 400 admin PUT A "/admin/cluster/node?url=$(url E '')&tag=E"
grep -q "not issued by the cluster CA.*expectedThumbprint=" "$WORK/last.body" || fail "unclear: $(cat "$WORK/last.body")"
[ "$(field A TrustHash)" = "$H" ] || fail "a refused add-node changed the trust state"
admin A clusterStatus | grep -q "Node E" && fail "E was added"
stop E

log "8. Cluster.TrustedNodeCertificates counts while a node is passive, not once it has joined"
must 200 admin GET B /admin/certificates/export
openssl pkcs12 -in "$WORK/last.body" -nokeys -passin pass: 2>/dev/null >"$WORK/trusted.pem"
openssl x509 -in "$WORK/other/B.pem" >>"$WORK/trusted.pem" # a certificate the cluster never knew
openssl pkcs12 -export -nokeys -in "$WORK/trusted.pem" -out "$WORK/trusted.pfx" -passout pass: ||
  fail "cannot make the trusted collection"
config D "" '"Cluster.TrustedNodeCertificates.Path": "trusted.pfx"'
start D
wait_until 60 "D answers" curl -s -k "$(url D /cluster/node-info)"
must 200 admin PUT A "/admin/cluster/node?url=$(url D '')&tag=D"
wait_until 60 "D caught up" same_state A B C D
impostor "$WORK/other/B.pem" 2 B D
wait_until 60 "D refusing a certificate only its file named" grep -q "refused inbound peer claiming node B: .*not a trusted cluster node" "$WORK/D.log"
log "   and a node removed from the cluster is refused by D"
L=$(leader_of A B C D)
R=$(echo A B C | tr ' ' '\n' | grep -v "$L" | head -1)
must 204 admin DELETE "$L" "/admin/cluster/node?nodeTag=$R"
wait_until 60 "D without $R" sh -c "! \"$CLI\" admin-channel --data-dir \"$WORK/data/D\" clusterStatus | grep -q 'Node $R'"
stop "$R"
REST=$(echo A B C D | tr ' ' '\n' | grep -v "$R" | tr '\n' ' ')
# shellcheck disable=SC2086
wait_until 60 "same state without $R" same_state $REST
impostor "$WORK/pki/$R.pem" "$(idx "$R")" "$R" D
wait_until 60 "D refusing the removed node" grep -q "refused inbound peer claiming node $R: " "$WORK/D.log"
gen D still-committing || fail "the cluster stopped committing"

log "9. the CRL is the committed state's: one number and date on every node, growing with revocations"
# crl TAG: the CRL's number (decimal), thisUpdate and nextUpdate as node TAG signs it
crl() {
  curl -s --cacert "$WORK/pki/ca-chain.crt" "$(url "$1" '/ca/crl?format=pem')" |
    openssl crl -noout -crlnumber -lastupdate -nextupdate >"$WORK/crl.txt" || return 1
  local hex
  hex=$(sed -n 's/^crlNumber=\(0x\)\{0,1\}//p' "$WORK/crl.txt")
  echo "$((16#$hex)) $(grep -v crlNumber "$WORK/crl.txt" | tr '\n' ' ')"
}
# shellcheck disable=SC2086
wait_until 60 "same state" same_state $REST
CRL0=$(crl D)
for t in $REST; do [ "$(crl "$t")" = "$CRL0" ] || fail "node $t signs another CRL: $(crl "$t") vs $CRL0"; done
MINT_AS=admin MINT_ON=D mint bystander ValidUser
# shellcheck disable=SC2086
wait_until 60 "same state" same_state $REST
[ "$(crl D)" = "$CRL0" ] || fail "a registration changed the CRL: $(crl D) vs $CRL0"
must 204 admin DELETE D "/admin/certificates?thumbprint=$(tp bystander)"
# shellcheck disable=SC2086
wait_until 60 "same state" same_state $REST
CRL1=$(crl "$L")
[ "${CRL1%% *}" -gt "${CRL0%% *}" ] || fail "the CRL number did not grow: $CRL1 after $CRL0"
for t in $REST; do [ "$(crl "$t")" = "$CRL1" ] || fail "node $t signs another CRL: $(crl "$t") vs $CRL1"; done

log "9. a node cut off from the majority stops serving its state, and serves again once back"
set -- $REST
M=$1
for t in "$@"; do [ "$t" = "$M" ] || kill -STOP "$(cat "$WORK/$t.pid")"; done
wait_until 60 "$M refusing trust reads" sh -c "curl -s -o /dev/null -w '%{http_code}' --cacert \"$WORK/pki/ca-chain.crt\" --cert \"$C/admin.pem\" \"$(url "$M" /cluster/topology)\" | grep -qx 503"
call admin GET "$M" /cluster/topology
grep -q "cut off from the majority" "$WORK/last.body" || fail "unclear: $(cat "$WORK/last.body")"
CODE=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/pki/ca-chain.crt" "$(url "$M" /ca/crl)" || true)
[ "$CODE" = 503 ] || fail "a node without a leader signed a CRL ($CODE)"
for t in "$@"; do [ "$t" = "$M" ] || kill -CONT "$(cat "$WORK/$t.pid")"; done
# shellcheck disable=SC2086
wait_until 60 "$M serving again" ready $REST
must 200 admin GET "$M" /cluster/topology

for t in $REST; do stop "$t"; done
log "PASS"
