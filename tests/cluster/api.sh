#!/usr/bin/env bash
# The HTTPS API on three nodes: the authorization matrix (endpoint x caller -> status, with
# the trust state unchanged by every refusal), the seed's curl flow verbatim, revocation on
# open keep-alive connections of every node, bad input answered with clear 4xx, and what
# RavenDB's clients read (the topology's shape and Etag, the health check, error bodies).
. "$(dirname "$0")/lib.sh"
TESTCERT="$CORVID_BIN/corvid-testcert"
pki
mkdir -p "$WORK/c" "$WORK/out"
C="$WORK/c"

# Callers that need configuration: a well-known admin thumbprint and a well-known issuer.
"$TESTCERT" "$C/wk.pem" well-known-admin 0 30
WK=$(openssl x509 -in "$C/wk.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
"$TESTCERT" "$C/issuer.pem" well-known-issuer -1 60 ca
openssl x509 -in "$C/issuer.pem" -out "$C/issuer.crt"
"$TESTCERT" "$C/wki.pem" issued-by-well-known 0 30 "$C/issuer.pem"
for t in A B C; do
  config "$t" "A B C" "\"Security.WellKnownCertificates.Admin\": [\"$WK\"], \"Security.WellKnownIssuers.Admin\": [\"c/issuer.crt\"]"
done
for t in A B C; do start "$t"; done
wait_until 60 "a leader" ready A B C

url() { echo "https://127.0.0.1:$(http_port "$1")$2"; }
# code CALLER METHOD NODE PATH [BODY]: the HTTP status.
code() {
  local who=$1 method=$2 node=$3 path=$4 body=${5:-} cert=()
  [ "$who" != none ] && cert=(--cert "$C/$who.pem")
  curl -s -o "$WORK/last.body" -w '%{http_code}' --cacert "$WORK/pki/ca-chain.crt" "${cert[@]}" \
    -X "$method" ${body:+-H 'Content-Type: application/json' -d "$body"} "$(url "$node" "$path")" || true
}
expect() {
  local want=$1; shift
  local got
  got=$(code "$@")
  [ "$got" = "$want" ] || fail "$* -> $got, expected $want: $(head -c 300 "$WORK/last.body")"
}

log "the seed's curl flow: a node's .pfx as the client certificate, on node B"
cd "$WORK/out"
openssl pkcs12 -in "$WORK/pki/B.pfx" -out server.pem -clcerts -passin pass: -passout pass:pem_password
curl -s -X POST -H "Content-Type: application/json" -d '{"Name": "cluster.admin.client.certificate","SecurityClearance": "ClusterAdmin","Password": "p@$$w0rd"}' -o admin.zip --cacert "$WORK/pki/ca-chain.crt" "$(url B /admin/certificates)" --cert server.pem:pem_password
unzip -o -q admin.zip || fail "the answer is not a zip: $(head -c 300 admin.zip)"
for f in pfx crt key; do [ -f "cluster.admin.client.certificate.$f" ] || fail "zip lacks .$f"; done
wait_until 60 "same state" same_state A B C
grep -q ENCRYPTED cluster.admin.client.certificate.key || fail "the .key is not encrypted"
openssl verify -CAfile "$WORK/pki/root.crt" -untrusted "$WORK/pki/issuing.crt" cluster.admin.client.certificate.crt >/dev/null ||
  fail "the generated certificate does not chain to the root"
curl -s -f --cacert "$WORK/pki/ca-chain.crt" --cert-type P12 --cert 'cluster.admin.client.certificate.pfx:p@$$w0rd' \
  "$(url C /admin/certificates)" >list.json || fail "the new admin cannot list on node C"
grep -q '"Name":"cluster.admin.client.certificate","Thumbprint":"[0-9A-F]*","SecurityClearance":"ClusterAdmin"' list.json ||
  fail "the listing lacks the new admin: $(head -c 300 list.json)"
openssl pkcs12 -in cluster.admin.client.certificate.pfx -passin 'pass:p@$$w0rd' -nodes -out "$C/admin.pem" 2>/dev/null
cd "$WORK"

log "minting the callers"
cp "$WORK/pki/A.pem" "$C/node.pem"
"$TESTCERT" "$C/unknown.pem" stranger 0 30
"$TESTCERT" "$C/expired.pem" expired -30 -1
"$TESTCERT" "$C/notyet.pem" not-yet-valid 2 30
gen_as() { # gen_as NAME CLEARANCE PERMISSIONS -> $C/NAME.pem
  code admin POST A /admin/certificates "{\"Name\":\"$1\",\"SecurityClearance\":\"$2\",\"Permissions\":$3}" >/dev/null
  (cd "$WORK/out" && rm -rf "$1" && mkdir "$1" && cd "$1" && unzip -q "$WORK/last.body") ||
    fail "generate $1: $(head -c 300 "$WORK/last.body")"
  cat "$WORK/out/$1/$1.crt" "$WORK/out/$1/$1.key" >"$C/$1.pem"
}
gen_as operator Operator '{}'
gen_as user ValidUser '{"db1":"ReadWrite"}'
gen_as reader ValidUser '{"db1":"Read"}'
gen_as revoked ValidUser '{}'
RV=$(openssl x509 -in "$C/revoked.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
expect 204 admin DELETE B "/admin/certificates?thumbprint=$RV"
wait_until 60 "same state" same_state A B C

log "authorization matrix"
HASH=$(hash_of A)
ALL="none unknown expired notyet revoked user reader operator admin node wk wki"
# row: METHOD PATH BODY | expected status per caller, in ALL's order
matrix() {
  local method=$1 path=$2 body=$3; shift 3
  local who want node
  for who in $ALL; do
    want=$1; shift
    for node in A B C; do expect "$want" "$who" "$method" "$node" "$path" "$body"; done
  done
}
#                                                         none unk exp nyv rev usr rdr op  adm nod wk  wki
matrix GET /admin/certificates ''                         403  403 403 403 403 403 403 200 200 200 200 200
matrix GET /admin/certificates/export ''                  403  403 403 403 403 403 403 200 200 200 200 200
matrix GET /admin/stats ''                                403  403 403 403 403 403 403 200 200 200 200 200
matrix GET /cluster/topology ''                           403  403 403 403 403 200 200 200 200 200 200 200
matrix GET /certificates/whoami ''                        204  204 204 204 204 200 200 200 200 200 200 200
matrix GET /cluster/node-info ''                          200  200 200 200 200 200 200 200 200 200 200 200
matrix GET '/info/tcp?tcp=health-check' ''                403  403 403 403 403 200 200 200 200 200 200 200
# refused CALLERS... -- METHOD PATH BODY: 403 for each caller on every node.
refused() {
  local callers=() who node
  while [ "$1" != -- ]; do callers+=("$1"); shift; done
  shift
  for who in "${callers[@]}"; do
    for node in A B C; do expect 403 "$who" "$@"; done
  done
}
b64() { openssl x509 -in "$1" -outform DER | base64 -w0; }
UNKNOWN_B64=$(b64 "$C/unknown.pem")
ADMIN_TP=$(openssl x509 -in "$C/admin.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
USER_TP=$(openssl x509 -in "$C/user.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
NODE_TP=$(openssl x509 -in "$C/node.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
refused none unknown expired notyet revoked user reader operator -- POST A /admin/certificates \
  '{"Name":"x","SecurityClearance":"ClusterNode","Permissions":{}}'
refused user reader operator -- POST B /admin/certificates '{"Name":"x","SecurityClearance":"ClusterAdmin","Permissions":{}}'
refused user reader -- POST C /admin/certificates '{"Name":"x","SecurityClearance":"ValidUser","Permissions":{}}'
refused operator -- PUT A /admin/certificates "{\"Name\":\"x\",\"Certificate\":\"$UNKNOWN_B64\",\"SecurityClearance\":\"ClusterNode\",\"Permissions\":{}}"
refused operator -- PUT A /admin/certificates "{\"Name\":\"x\",\"Certificate\":\"$UNKNOWN_B64\",\"SecurityClearance\":\"ClusterAdmin\",\"Permissions\":{}}"
refused operator user -- DELETE B "/admin/certificates?thumbprint=$ADMIN_TP" ''
refused operator -- DELETE B "/admin/certificates?thumbprint=$NODE_TP" ''
refused admin -- DELETE C "/admin/certificates?thumbprint=$ADMIN_TP" ''
refused operator -- POST A /admin/certificates/edit "{\"Thumbprint\":\"$USER_TP\",\"Name\":\"u\",\"SecurityClearance\":\"ClusterAdmin\",\"Permissions\":{}}"
refused operator -- POST A /admin/certificates/edit "{\"Thumbprint\":\"$ADMIN_TP\",\"Name\":\"a\",\"SecurityClearance\":\"Operator\",\"Permissions\":{}}"
refused none user reader -- DELETE A /admin/certificates/purge ''
for t in A B C; do [ "$(hash_of "$t")" = "$HASH" ] || fail "a refused request changed the trust state on $t"; done
grep -q "Cannot delete .* because it's the current client certificate" "$WORK/last.body" ||
  grep -q "Could not authorize" "$WORK/last.body" || fail "unclear refusal: $(cat "$WORK/last.body")"
expect 403 operator POST B /admin/certificates '{"Name":"x","SecurityClearance":"ClusterNode","Permissions":{}}'
grep -q "lower clearance: Operator" "$WORK/last.body" || fail "unclear: $(cat "$WORK/last.body")"

log "allowed writes, visible on every node"
expect 201 operator PUT B /admin/certificates "{\"Name\":\"stranger\",\"Certificate\":\"$UNKNOWN_B64\",\"SecurityClearance\":\"ValidUser\",\"Permissions\":{\"db2\":\"Admin\"}}"
wait_until 60 "same state" same_state A B C
for t in A B C; do expect 200 unknown GET "$t" /certificates/whoami; done
grep -q '"db2":"Admin"' "$WORK/last.body" || fail "whoami: $(cat "$WORK/last.body")"
expect 201 wki POST C /admin/certificates/edit "{\"Thumbprint\":\"$USER_TP\",\"Name\":\"user2\",\"SecurityClearance\":\"Operator\",\"Permissions\":{}}"
wait_until 60 "same state" same_state A B C
for t in A B C; do expect 200 user GET "$t" /admin/certificates; done
expect 200 wk GET A "/admin/certificates?thumbprint=$USER_TP&metadataOnly=true"
grep -q '"Name":"user2"' "$WORK/last.body" || fail "edit not visible"
grep -q '"Certificate"' "$WORK/last.body" && fail "metadataOnly returned the certificate"
expect 204 node DELETE A /admin/certificates/purge ''
expect 404 admin DELETE A "/admin/certificates?thumbprint=0000000000000000000000000000000000000000" ''

log "what RavenDB's clients read: the topology on every node, its Etag growing, error bodies"
# json EXPR ARGS...: EXPR holds for d, the last answer's JSON, with ARGS in a.
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); a=sys.argv[2:]; sys.exit(not ($1))" "$WORK/last.body" "${@:2}"; }
json 'd["Error"] == d["Message"] and "doesn" in d["Error"] and d["Url"] == "/admin/certificates"' ||
  fail "the error lacks RavenDB's Error and Url: $(cat "$WORK/last.body")"
for t in A B C; do
  expect 200 reader GET "$t" /cluster/topology
  json 'd["Status"] == {} and d["Topology"]["Watchers"] == {} and d["Topology"]["Members"] == dict(zip("ABC", a))' \
    "$(url A '')" "$(url B '')" "$(url C '')" || fail "topology on $t: $(cat "$WORK/last.body")"
done
etag() { expect 200 reader GET A /cluster/topology && python3 -c 'import json,sys; print(json.load(sys.stdin)["Etag"])' <"$WORK/last.body"; }
E1=$(etag)
READER_TP=$(openssl x509 -in "$C/reader.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
expect 201 admin POST A /admin/certificates/edit "{\"Thumbprint\":\"$READER_TP\",\"Name\":\"reader\",\"SecurityClearance\":\"ValidUser\",\"Permissions\":{\"db1\":\"Read\"}}"
E2=$(etag)
[ "$E1" -gt 0 ] && [ "$E2" -gt "$E1" ] || fail "the topology's Etag went from $E1 to $E2 over a write"

log "revocation on open keep-alive connections, on every node"
# One TLS connection per node, fed through a FIFO: a first request answered before the DELETE,
# a second one on the same connection after it.
REQ="GET /admin/certificates HTTP/1.1\r\nHost: x\r\n\r\n"
KA=()
for t in A B C; do
  mkfifo "$WORK/ka-$t.in"
  timeout 120 openssl s_client -quiet -connect "127.0.0.1:$(http_port "$t")" -cert "$C/operator.pem" \
    -key "$C/operator.pem" <"$WORK/ka-$t.in" >"$WORK/ka-$t.out" 2>/dev/null &
  KA+=($!)
  exec {fd}>"$WORK/ka-$t.in"
  eval "KA_FD_$t=$fd"
  (printf "$REQ" >&"$fd") 2>/dev/null || fail "node $t: no TLS connection"
done
for t in A B C; do
  wait_until 60 "the first answer on node $t's open connection" grep -q '^HTTP/1.1 200' "$WORK/ka-$t.out"
done
OP_TP=$(openssl x509 -in "$C/operator.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
expect 204 admin DELETE B "/admin/certificates?thumbprint=$OP_TP" ''
wait_until 60 "same state" same_state A B C
# The node closed the connection: the second request may find it gone (a subshell takes the
# SIGPIPE) or be refused; it is never answered 200.
for t in A B C; do
  eval "fd=\$KA_FD_$t"
  (printf "$REQ" >&"$fd") 2>/dev/null || true
  exec {fd}>&-
done
wait "${KA[@]}" || true
for t in A B C; do
  [ "$(grep -c '^HTTP/1.1 200' "$WORK/ka-$t.out")" = 1 ] ||
    fail "node $t: the revoked certificate was served again on its open connection: $(grep '^HTTP' "$WORK/ka-$t.out")"
  expect 403 operator GET "$t" /admin/certificates
  grep -q "was revoked" "$WORK/last.body" || fail "node $t: $(cat "$WORK/last.body")"
done
curl -s --cacert "$WORK/pki/ca-chain.crt" "$(url C /ca/crl)" -o "$WORK/crl.der"
SERIAL=$(openssl x509 -in "$C/operator.pem" -noout -serial | sed 's/serial=//')
openssl crl -inform DER -in "$WORK/crl.der" -noout -text | grep -q "Serial Number: $SERIAL" ||
  fail "the CRL does not list the revoked serial $SERIAL"
openssl crl -inform DER -in "$WORK/crl.der" -noout -CAfile "$WORK/pki/ca-chain.crt" 2>&1 | grep -q "verify OK" ||
  fail "the CRL does not verify against the cluster CA"

log "bad input"
HASH=$(hash_of A)
bad() { # bad STATUS WORDS BODY [METHOD PATH]
  local want=$1 words=$2 body=$3 method=${4:-PUT} path=${5:-/admin/certificates}
  expect "$want" admin "$method" A "$path" "$body"
  grep -q "$words" "$WORK/last.body" || fail "'$body' -> $(cat "$WORK/last.body"), lacks '$words'"
}
bad 400 "Invalid JSON" '{"Name": "x", '
bad 400 "Invalid JSON" 'not json'
bad 400 "Name is a required field" '{"Name": 5, "Certificate": "AA==", "Permissions": {}}'
bad 400 "Name is a required field" '{"Certificate": "AA==", "Permissions": {}}'
bad 400 "Permissions is a required field" "{\"Name\":\"x\",\"Certificate\":\"$UNKNOWN_B64\"}"
bad 400 "SecurityClearance must be" "{\"Name\":\"x\",\"Certificate\":\"$UNKNOWN_B64\",\"SecurityClearance\":\"God\",\"Permissions\":{}}"
bad 400 "access must be" "{\"Name\":\"x\",\"Certificate\":\"$UNKNOWN_B64\",\"Permissions\":{\"db\":\"All\"}}"
bad 400 "expected a Base64 value" '{"Name":"x","Certificate":"@@@not base64@@@","Permissions":{}}'
bad 400 "Unable to load" '{"Name":"x","Certificate":"AAAAAAAA","Permissions":{}}'
PFX_B64=$(base64 -w0 "$WORK/out/cluster.admin.client.certificate.pfx")
bad 400 "password" "{\"Name\":\"x\",\"Certificate\":\"$PFX_B64\",\"Password\":\"wrong\",\"Permissions\":{}}"
CORRUPT=$(head -c 600 "$WORK/out/cluster.admin.client.certificate.pfx" | base64 -w0)
expect 400 admin PUT A /admin/certificates "{\"Name\":\"x\",\"Certificate\":\"$CORRUPT\",\"Permissions\":{}}"
bad 400 "KeyType must be" '{"Name":"x","KeyType":"DSA-512","Permissions":{}}' POST
bad 400 "must be in the future" '{"Name":"x","NotAfter":"2001-01-01","Permissions":{}}' POST
bad 400 "exactly once" '' DELETE "/admin/certificates?thumbprint=a&thumbprint=b"
head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$WORK/big.json"
got=$(curl -s -o "$WORK/last.body" -w '%{http_code}' --cacert "$WORK/pki/ca-chain.crt" --cert "$C/admin.pem" \
  -X PUT -H 'Content-Type: application/json' --data-binary @"$WORK/big.json" "$(url A /admin/certificates)" || true)
[ "$got" = 413 ] || fail "an oversized body got $got"
# a client that stops mid-request does not hold the node: its connection is open with half a
# request sent while another client is served
mkfifo "$WORK/slow.in"
timeout 120 openssl s_client -brief -connect "127.0.0.1:$(http_port A)" -cert "$C/admin.pem" \
  -key "$C/admin.pem" <"$WORK/slow.in" >/dev/null 2>"$WORK/slow.err" &
SLOW=$!
exec {slow}>"$WORK/slow.in"
wait_until 60 "the slow client's handshake" grep -q '^CONNECTION ESTABLISHED' "$WORK/slow.err"
(printf 'PUT /admin/certificates HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"Na' >&"$slow") ||
  fail "the slow client's connection closed"
expect 200 admin GET A /admin/certificates
exec {slow}>&-
kill "$SLOW" 2>/dev/null || true
wait "$SLOW" || true
for t in A B C; do [ "$(hash_of "$t")" = "$HASH" ] || fail "bad input changed the trust state on $t"; done

log "300 aborted handshakes do not lock clients out"
seq 1 300 | xargs -P 8 -I{} curl -s -o /dev/null "$(url A /cluster/node-info)" || true
PIDS=()
for i in $(seq 1 6); do code admin GET A /cluster/node-info >"$WORK/hs-$i" & PIDS+=($!); done
wait "${PIDS[@]}"
for i in $(seq 1 6); do [ "$(cat "$WORK/hs-$i")" = 200 ] || fail "after aborted handshakes: $(cat "$WORK/hs-$i")"; done

for t in A B C; do stop "$t"; done
log "PASS"
