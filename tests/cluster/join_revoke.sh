#!/usr/bin/env bash
# The flows users run, with public commands only: add node D by importing the exported server
# certificates (with every bad case refused and nothing changed), revoke a certificate
# cluster-wide (refused at once on every node and listed in the CRL), a revocation made while a
# node is down enforced by that node before it serves anything, and node removal.
. "$(dirname "$0")/lib.sh"
TESTCERT="$CORVID_BIN/corvid-testcert"
start_cluster A B C
C="$CERTS"
mint admin ClusterAdmin
mint early ValidUser
mint operator Operator
wait_until 60 "same state" same_state A B C

log "export the server certificates"
must 200 admin GET B /admin/certificates/export
cp "$WORK/last.body" "$WORK/exported.pfx"
[ "$(openssl pkcs12 -in "$WORK/exported.pfx" -nokeys -passin pass: 2>/dev/null | grep -c 'BEGIN CERTIFICATE')" = 3 ] ||
  fail "the export does not hold the three node certificates"

log "start D passive, trusting the export"
config D "" '"Cluster.TrustedNodeCertificates.Path": "exported.pfx"'
start D
wait_until 60 "D answers" curl -s -k "$(url D /cluster/node-info)"
L=$(leader_of A B C)
F=$(echo A B C | tr ' ' '\n' | grep -v "$L" | head -1)
H=$(field A TrustHash)

log "bad cases change nothing"
must 403 operator PUT "$F" "/admin/cluster/node?url=$(url D '')&tag=D"
must 400 admin PUT "$F" "/admin/cluster/node?url=https://127.0.0.1:1&tag=D"
grep -q "cannot reach" "$WORK/last.body" || fail "unclear: $(cat "$WORK/last.body")"
must 400 admin PUT "$F" "/admin/cluster/node?url=$(url D '')&tag=D&expectedThumbprint=0000000000000000000000000000000000000000"
grep -q "not the expected thumbprint" "$WORK/last.body" || fail "unclear: $(cat "$WORK/last.body")"
must 409 admin PUT "$F" "/admin/cluster/node?url=$(url D '')&tag=A"
must 400 admin PUT "$F" "/admin/cluster/node?url=$(url D '')&tag=E"
grep -q "is node D, not E" "$WORK/last.body" || fail "unclear: $(cat "$WORK/last.body")"
must 409 admin PUT "$F" "/admin/cluster/node?url=$(url B '')&tag=B"
pki "$WORK/other"
mkdir -p "$WORK/pki-e" && cp "$WORK/other/E.pfx" "$WORK/pki/E-other.pfx"
config E "E" ''
sed -i 's#pki/E.pfx#pki/E-other.pfx#; s#pki/issuing.pfx#other/issuing.pfx#' "$WORK/E.json"
start E
wait_until 60 "E leads its own cluster" sh -c "\"$CLI\" admin-channel --data-dir \"$WORK/data/E\" info | grep -q 'State: Leader'"
must 409 admin PUT "$F" "/admin/cluster/node?url=$(url E '')&tag=E"
grep -q "already a member of a cluster" "$WORK/last.body" || fail "unclear: $(cat "$WORK/last.body")"
stop E
[ "$(field A TrustHash)" = "$H" ] || fail "a refused add-node changed the trust state"

log "add D through a follower (307 to the leader)"
DTP=$(openssl x509 -in "$WORK/pki/D.crt" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
must 200 admin PUT "$F" "/admin/cluster/node?url=$(url D '')&tag=D&expectedThumbprint=$DTP"
wait_until 60 "D caught up" same_state A B C D
wait_until 60 "D serving" sh -c "[ \"\$(\"$CLI\" admin-channel --data-dir \"$WORK/data/D\" info | sed -n 's/^Serving: //p')\" = yes ]"
must 200 early GET D /certificates/whoami
grep -q '"Name":"early"' "$WORK/last.body" || fail "D does not know the early certificate"
must 200 admin GET D /admin/certificates/export
[ "$(openssl pkcs12 -in "$WORK/last.body" -nokeys -passin pass: 2>/dev/null | grep -c 'BEGIN CERTIFICATE')" = 4 ] ||
  fail "the export does not hold four node certificates"
must 200 admin GET A /admin/certificates
grep -q '"Name":"Server certificate for Node D"' "$WORK/last.body" || fail "D's registration is missing"

log "revoke cluster-wide: refused at once on every node, listed in the CRL"
mint late ValidUser
wait_until 60 "same state" same_state A B C D
LATE=$(tp late)
must 204 admin DELETE C "/admin/certificates?thumbprint=$LATE"
for t in A B C D; do
  must 403 late GET "$t" /cluster/topology
  grep -q "was revoked" "$WORK/last.body" || fail "node $t: $(cat "$WORK/last.body")"
done
curl -s --cacert "$WORK/pki/ca-chain.crt" "$(url D '/ca/crl?format=pem')" >"$WORK/crl.pem"
openssl crl -in "$WORK/crl.pem" -noout -text | grep -q "Serial Number: $(openssl x509 -in "$C/late.pem" -noout -serial | sed 's/serial=//')" ||
  fail "the CRL does not list the revoked serial"

log "revocations through the leader: no node serves a certificate once its DELETE returned"
# corvid-bench revoke opens connections presenting X on every node before the DELETE and sends
# their first requests the moment the 204 arrives: a node that had not taken the revocation yet
# would serve X (a follower applies an entry only after the leader's next message reaches it).
LEADER=$(leader_of A B C D) || fail "no leader"
"$CORVID_BIN/corvid-bench" revoke --url "$(url A /)" --url "$(url B /)" --url "$(url C /)" \
  --url "$(url D /)" --delete-url "$(url "$LEADER" /)" --cacert "$WORK/pki/ca-chain.crt" \
  --cert "$C/node.pem" --key "$C/node.pem" --issuer "$WORK/pki/issuing.pfx" --count 40 >"$WORK/revoke.out" 2>&1 ||
  fail "corvid-bench revoke: $(cat "$WORK/revoke.out")"
grep -q "requests served with the revoked certificate after the DELETE returned: 0$" \
  "$WORK/revoke.out" || fail "a revoked certificate was served after its DELETE returned: $(cat "$WORK/revoke.out")"

log "a revocation while node C is down is enforced by C before it serves"
mint whiledown ValidUser
wait_until 60 "same state" same_state A B C D
must 200 whiledown GET C /cluster/topology
stop C
must 204 admin DELETE A "/admin/certificates?thumbprint=$(tp whiledown)"
start C
# poll C from the moment it listens: it must never answer 200 to the revoked certificate, nor
# describe it as registered (whoami), nor give a CRL without it
WD_SERIAL=$(openssl x509 -in "$C/whiledown.pem" -noout -serial | sed 's/serial=//')
END=$((SECONDS + 120))
while [ "$SECONDS" -lt "$END" ]; do
  call whiledown GET C /certificates/whoami
  case "$CODE" in 000 | 503 | 204) ;; *) fail "restarted C answered whoami with $CODE: $(cat "$WORK/last.body")" ;; esac
  call whiledown GET C "/ca/crl?format=pem"
  case "$CODE" in
    000 | 503) ;;
    200) openssl crl -in "$WORK/last.body" -noout -text | grep -q "Serial Number: $WD_SERIAL" ||
      fail "restarted C gave a CRL without the certificate revoked while it was down" ;;
    *) fail "restarted C answered the CRL with $CODE" ;;
  esac
  call whiledown GET C /cluster/topology
  case "$CODE" in
    000 | 503) sleep 0.05 ;;
    403) break ;;
    *) fail "restarted C answered $CODE to a certificate revoked while it was down" ;;
  esac
done
[ "$CODE" = 403 ] || fail "C never came back ($CODE)"

log "remove D"
must 204 admin DELETE "$F" "/admin/cluster/node?nodeTag=D"
admin A clusterStatus | grep -q "Node D" && fail "D is still a member"
wait_until 60 "D's certificate revoked" sh -c "curl -s --cacert \"$WORK/pki/ca-chain.crt\" \"$(url A /ca/crl?format=pem)\" | openssl crl -noout -text | grep -q \"Serial Number: $(openssl x509 -in "$WORK/pki/D.crt" -noout -serial | sed 's/serial=//')\""
must 404 admin DELETE A "/admin/cluster/node?nodeTag=D"
stop D
for t in A B C; do stop "$t"; done
log "PASS"
