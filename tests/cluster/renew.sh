#!/usr/bin/env bash
# Issue 16, "never let one expire": a node whose certificate is valid for minutes renews it from
# the cluster CA on its own (Security.Certificate.RenewBeforeDays), while clients call every
# node, with no failed request; a node whose certificate expired while it was off (renewal
# turned off) is refused by its peers, and comes back with one command on its admin channel
# (renewNodeCert with the cluster CA), which a foreign CA cannot do.
. "$(dirname "$0")/lib.sh"
pki
presented() {
  openssl s_client -connect "127.0.0.1:$(http_port "$1")" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'
}
presented_end() {
  openssl s_client -connect "127.0.0.1:$(http_port "$1")" </dev/null 2>/dev/null |
    openssl x509 -noout -enddate | sed 's/.*=//'
}
thumb() { openssl x509 -in "$1" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'; }
json() { python3 -c "import json,sys; d=json.load(open('$WORK/last.body')); print($1)"; }

log "B's certificate is valid for 90 seconds (and B does not renew)"
node_cert B shortB '-1 minute' '+90 seconds'
B_END=$(date -d "$(openssl x509 -in "$WORK/shortB.crt" -noout -enddate | sed 's/.*=//')" +%s)
cp "$WORK/shortB.pfx" "$WORK/pki/B.pfx"
OLD_B=$(thumb "$WORK/shortB.crt")
config A "A B C"
config B "A B C" '"Security.Certificate.RenewBeforeDays": 0'
config C "A B C"
for t in A B C; do start "$t"; done
wait_until 60 "a leader on A B C" ready A B C
mkdir -p "$CERTS"
cp "$WORK/pki/C.pem" "$CERTS/node.pem"
MINT_ON=C
mint admin ClusterAdmin
MINT_AS=admin
load_start admin A B C

log "A is given a certificate valid for 10 minutes, and renews it by itself"
node_cert A shortA '-1 minute' '+10 minutes'
OLD_A=$(thumb "$WORK/shortA.crt")
b64=$(base64 -w0 "$WORK/shortA.pfx")
must 200 admin POST A /admin/certificates/replace-node-cert?nodeTag=A "{\"Certificate\":\"$b64\"}"
[ "$(json "d['Thumbprint']")" = "$OLD_A" ] || fail "A: $(cat "$WORK/last.body")"
wait_until 60 "A presenting a renewed certificate" eval '[ "$(presented A)" != "$OLD_A" ]'
NEW_A=$(presented A)
end=$(date -d "$(presented_end A)" +%s)
[ "$end" -gt $(($(date +%s) + 30 * 86400)) ] || fail "A's renewed certificate ends $(presented_end A)"
wait_until 30 "A's old certificate retired" eval '[ "$(clearance_of C "$OLD_A")" = none ]'
[ "$(clearance_of C "$NEW_A")" = ClusterNode ] || fail "A's new one: $(cat "$WORK/last.body")"
grep -q "NODE-CERT  node A renewed its certificate from the cluster CA" "$WORK/A.log" || fail "A did not log it"
wait_until 30 "A's node-info reporting the renewed certificate's expiry" eval \
  'call admin GET A /cluster/node-info; [ "$CODE" = 200 ] && [ "$(json "d[\"CertificateExpiry\"][\"NodeCertificate\"][\"Level\"]")" = Ok ]'
load_stop "A's renewal"
[ "$(presented B)" = "$OLD_B" ] || fail "B renewed with RenewBeforeDays 0"

log "B is off until its certificate expired; its peers refuse it when it comes back"
stop B
wait_until 120 "B's certificate expired" eval '[ "$(date +%s)" -gt "$B_END" ]'
start B
wait_until 60 "the peers refusing B" grep -q "refused .* peer claiming node B: certificate .* expired" "$WORK/A.log" "$WORK/C.log"

log "renewNodeCert with a foreign CA is refused"
"$CLI" pki init-cluster --out "$WORK/foreign" --nodes B=127.0.0.1 >/dev/null
out=$(admin B renewNodeCert "$WORK/foreign/issuing.pfx" 2>&1) && fail "a foreign CA renewed B: $out"
grep -q "not this cluster's" <<<"$out" || fail "foreign CA: $out"
[ "$(presented B)" = "$OLD_B" ] || fail "B changed its certificate"
log "renewNodeCert with the cluster CA brings B back"
out=$(admin B renewNodeCert "$WORK/pki/issuing.pfx" 2>&1) || fail "renewNodeCert: $out"
NEW_B=$(presented B)
[ "$NEW_B" != "$OLD_B" ] || fail "B still presents its expired certificate"
grep -qi "now presents certificate $NEW_B" <<<"$out" || fail "renewNodeCert said: $out"
wait_until 60 "B back in the cluster" ready A B C
wait_until 30 "B's new certificate registered" eval '[ "$(clearance_of A "$NEW_B")" = ClusterNode ]'
wait_until 30 "B's expired certificate retired" eval '[ "$(clearance_of A "$OLD_B")" = none ]' 
on_disk=$(openssl pkcs12 -in "$WORK/pki/B.pfx" -passin pass: -nokeys -clcerts 2>/dev/null | openssl x509 -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
[ "$on_disk" = "$NEW_B" ] || fail "B's file holds $on_disk"
gen B after-recovery || fail "B cannot commit"
wait_until 60 "the same state on A B C" same_state A B C
log "PASS"
