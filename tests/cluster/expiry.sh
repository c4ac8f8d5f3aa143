#!/usr/bin/env bash
# Issue 16, "never let one expire": node certificates valid for 10 days (Warning: RavenDB warns
# 20 days before, errs 3 days before) and a client certificate that expires in 2 days (Error).
# Every node logs it, says it in GET /cluster/node-info and /admin/stats, and `corvid cluster
# status` prints it.
. "$(dirname "$0")/lib.sh"
"$CLI" pki init-cluster --out "$WORK/pki" --days 10 \
  --nodes A=127.0.0.1,B=127.0.0.1,C=127.0.0.1 >/dev/null
for t in A B C; do config "$t" "A B C" '"Security.Certificate.RenewBeforeDays": 0'; done
for t in A B C; do start "$t"; done
wait_until 60 "a leader" ready A B C
mkdir -p "$CERTS"
cp "$WORK/pki/A.pem" "$CERTS/node.pem"

log "node certificates for 10 more days: Warning everywhere"
json() { python3 -c "import json,sys; d=json.load(open('$WORK/last.body')); print($1)"; }
for t in A B C; do
  must 200 node GET "$t" /cluster/node-info
  [ "$(json "d['CertificateExpiry']['NodeCertificate']['Level']")" = Warning ] ||
    fail "$t: $(cat "$WORK/last.body")"
  [ "$(json "d['CertificateExpiry']['NodeCertificate']['DaysLeft']")" -le 10 ] || fail "$t: days"
  [ "$(json "d['CertificateExpiry']['IssuingCA']['Level']")" = Ok ] || fail "$t: CA"
  grep -q "NODE-EXPIRY this node's certificate expires on .*, in [0-9]* days" "$WORK/$t.log" ||
    fail "$t logged no warning"
done

log "a client certificate for 2 more days: Error, once a node counted it"
NA=$(date -u -d '+2 days' +%Y-%m-%d)
must 200 node POST A /admin/certificates "{\"Name\":\"short\",\"Permissions\":{},\"NotAfter\":\"$NA\"}"
stop B
start B
wait_until 60 "B back" ready A B C
wait_until 30 "B counted the client certificate" eval \
  'call node GET B /admin/stats; [ "$CODE" = 200 ] && [ "$(json "d[\"CertificateExpiry\"][\"ClientCertificates\"][\"Error\"]")" = 1 ]'
grep -q "NODE-EXPIRY client certificates: 0 expire within 20 days, 1 within 3 days, 0 expired" "$WORK/B.log" ||
  fail "B logged no client certificate error"

log "corvid cluster status says so"
openssl pkcs12 -export -passout pass: -in "$CERTS/node.pem" -out "$WORK/node.pfx"
out=$(CORVID_CA_FILE="$WORK/pki/ca-chain.crt" "$CLI" cluster status --cert "$WORK/node.pfx" \
  --url "$(url B "")" 2>&1) || fail "cluster status: $out"
for t in A B C; do
  grep -q "^Warning: node $t's certificate: expires on 20[0-9-]* ([0-9]* days)" <<<"$out" ||
    fail "no warning for $t: $out"
done
grep -q "client certificates: 0 expire within 20 days, 1 within 3 days" <<<"$out" ||
  fail "no client line (B counted it; the first node listed may not have): $out"
log "PASS"
