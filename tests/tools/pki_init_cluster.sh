#!/usr/bin/env bash
# Checks `corvid pki init-cluster`, `init-node` and `inspect` with the openssl command-line tool.
# usage: pki_init_cluster.sh PATH-TO-CORVID
set -euo pipefail

corvid=${1:?usage: $0 PATH-TO-CORVID}
command -v openssl >/dev/null || { echo "openssl command-line tool not found" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

mode_of() { stat -c %a "$1"; }
count_certs() { grep -c -- '-----BEGIN CERTIFICATE-----' || true; }

# ---- usage errors exit 2, help exits 0
"$corvid" --help >/dev/null || fail "corvid --help"
"$corvid" pki --help | grep -q init-cluster || fail "corvid pki --help lists init-cluster"
"$corvid" pki init-cluster --help | grep -q -- '--nodes' || fail "init-cluster --help"
set +e
"$corvid" pki init-cluster --nodes A=127.0.0.1 >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "missing --out should exit 2 (got $rc)"
"$corvid" pki init-cluster --out "$tmp/x" --nodes a=127.0.0.1 >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "lower-case tag should exit 2 (got $rc)"
"$corvid" pki init-cluster --out "$tmp/x" --nodes A=127.0.0.1,A=127.0.0.2 >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "duplicate tag should exit 2 (got $rc)"
"$corvid" nosuchcommand >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "unknown command should exit 2 (got $rc)"
set -e
[ ! -e "$tmp/x" ] || fail "a refused command created its output directory"

# ---- a three-node cluster without password
out=$tmp/pki/nested
"$corvid" pki init-cluster --out "$out" --nodes A=127.0.0.1,B=127.0.0.1,C=127.0.0.1 >"$tmp/log"
cat "$tmp/log"
[ "$(mode_of "$out")" = 700 ] || fail "output directory mode $(mode_of "$out"), want 700"
for f in root.crt issuing.crt A.crt B.crt C.crt ca-chain.crt ServerCertificatesCollection.pfx; do
  [ -f "$out/$f" ] || fail "$f missing"
  grep -q "$out/$f" "$tmp/log" || fail "$f not reported as written"
done
for f in root.key issuing.key issuing.pfx A.pfx B.pfx C.pfx A.pem B.pem C.pem master.key; do
  [ -f "$out/$f" ] || { fail "$f missing"; continue; }
  [ "$(mode_of "$out/$f")" = 600 ] || fail "$f has mode $(mode_of "$out/$f"), want 600"
  grep -q "$out/$f" "$tmp/log" || fail "$f not reported as written"
done
ok "files and modes"

# ---- the master key: 32 random bytes, printed by identifier only
[ "$(stat -c %s "$out/master.key")" = 32 ] || fail "master.key holds $(stat -c %s "$out/master.key") bytes, want 32"
grep -q 'master key [0-9a-f]\{16\}' "$tmp/log" || fail "init-cluster does not name the master key's identifier"
mk_hex=$(od -An -v -tx1 "$out/master.key" 2>/dev/null | tr -d ' \n' || true)
mk_b64=$(base64 -w0 "$out/master.key" 2>/dev/null || true)
[ -n "$mk_hex" ] && grep -qiF -e "$mk_hex" -e "$mk_b64" "$tmp/log" && fail "the master key was printed"
"$corvid" pki init-cluster --out "$tmp/other" --nodes A=127.0.0.1 >/dev/null
cmp -s "$out/master.key" "$tmp/other/master.key" && fail "two clusters got the same master key"
ok "master key"

openssl verify -CAfile "$out/root.crt" "$out/issuing.crt" >/dev/null || fail "issuing.crt does not verify"
openssl x509 -in "$out/issuing.crt" -noout -ext basicConstraints | grep -q 'CA:TRUE, pathlen:0' ||
  fail "issuing CA lacks CA:TRUE, pathlen:0"
openssl x509 -in "$out/root.crt" -noout -ext keyUsage | grep -q 'Certificate Sign, CRL Sign' ||
  fail "root CA key usage"
for t in A B C; do
  crt=$out/$t.crt
  for purpose in sslserver sslclient; do
    openssl verify -purpose $purpose -CAfile "$out/root.crt" -untrusted "$out/issuing.crt" "$crt" \
      >/dev/null || fail "$t.crt does not verify for $purpose"
  done
  openssl verify -CAfile "$out/root.crt" "$crt" >/dev/null 2>&1 &&
    fail "$t.crt verifies without the issuing CA"
  ext=$(openssl x509 -in "$crt" -noout -ext extendedKeyUsage,subjectAltName,keyUsage)
  grep -q 'TLS Web Server Authentication, TLS Web Client Authentication' <<<"$ext" || fail "$t EKU"
  grep -q 'IP Address:127.0.0.1' <<<"$ext" || fail "$t SAN IP"
  grep -q "URI:urn:corvid:node:$t" <<<"$ext" || fail "$t SAN URI"
  grep -q 'Digital Signature' <<<"$ext" || fail "$t key usage"
  openssl x509 -in "$crt" -noout -text | grep -q 'ecdsa-with-SHA256' || fail "$t signature algorithm"

  n=$(openssl pkcs12 -in "$out/$t.pfx" -nokeys -passin pass: | count_certs)
  [ "$n" = 3 ] || fail "$t.pfx holds $n certificates, want 3 (leaf, issuing, root)"
  openssl pkcs12 -in "$out/$t.pfx" -nocerts -nodes -passin pass: -out "$tmp/$t.key" 2>/dev/null ||
    fail "$t.pfx key does not read"
  a=$(openssl pkey -in "$tmp/$t.key" -pubout 2>/dev/null)
  b=$(openssl x509 -in "$crt" -noout -pubkey)
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "$t.pfx key does not match $t.crt"
  c=$(openssl pkey -in "$out/$t.pem" -pubout 2>/dev/null)
  [ "$c" = "$b" ] || fail "$t.pem key does not match $t.crt"
  [ "$(count_certs <"$out/$t.pem")" = 2 ] || fail "$t.pem should hold leaf and issuing CA"
  openssl pkcs12 -in "$out/$t.pfx" -info -noout -passin pass: 2>&1 | grep -q 'AES-256-CBC' ||
    fail "$t.pfx is not AES-256-CBC"
done
ok "node certificates verify, carry EKU/SAN, PFX and PEM read"

n=$(openssl pkcs12 -in "$out/ServerCertificatesCollection.pfx" -nokeys -passin pass: | count_certs)
[ "$n" = 3 ] || fail "ServerCertificatesCollection.pfx holds $n certificates, want 3"
openssl pkcs12 -in "$out/ServerCertificatesCollection.pfx" -nocerts -nodes -passin pass: 2>/dev/null |
  grep -q 'PRIVATE KEY' && fail "ServerCertificatesCollection.pfx holds a private key"
n=$(count_certs <"$out/ca-chain.crt")
[ "$n" = 2 ] || fail "ca-chain.crt holds $n certificates, want 2"
n=$(openssl pkcs12 -in "$out/issuing.pfx" -nokeys -passin pass: | count_certs)
[ "$n" = 2 ] || fail "issuing.pfx holds $n certificates, want 2"
grep -q 'BEGIN PRIVATE KEY' "$out/root.key" || fail "root.key is not PEM PKCS#8"
ok "collection, chain and issuing.pfx"

# ---- inspect agrees with openssl
"$corvid" pki inspect "$out/A.pfx" >"$tmp/inspect"
want=$(openssl x509 -in "$out/A.crt" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
grep -q "Thumbprint: *$want" "$tmp/inspect" || fail "inspect thumbprint (want $want)"
pin=$(openssl x509 -in "$out/A.crt" -noout -pubkey | openssl pkey -pubin -outform der |
  openssl dgst -sha256 -binary | base64)
grep -q "Pinning hash: *$pin" "$tmp/inspect" || fail "inspect pinning hash (want $pin)"
grep -q 'URI:urn:corvid:node:A' "$tmp/inspect" || fail "inspect SAN"
grep -q 'serverAuth, clientAuth' "$tmp/inspect" || fail "inspect EKU"
grep -q 'PRIVATE KEY-----' "$tmp/inspect" && fail "inspect printed a key"
"$corvid" pki inspect "$out/ca-chain.crt" | grep -q 'Certificate 2 of 2' || fail "inspect chain"
"$corvid" pki inspect "$out/A.pem" | grep -q 'Private key: EC-P256 (matches certificate 1)' ||
  fail "inspect A.pem key"
ok "inspect"

# ---- refuses to overwrite; --force does
sum=$(sha256sum "$out/root.key")
set +e
"$corvid" pki init-cluster --out "$out" --nodes A=127.0.0.1 >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "second init-cluster should exit 1 (got $rc)"
grep -q 'force' "$tmp/err" || fail "refusal does not mention --force"
[ "$(sha256sum "$out/root.key")" = "$sum" ] || fail "root.key changed without --force"
"$corvid" pki init-cluster --out "$out" --nodes A=127.0.0.1,B=127.0.0.1,C=127.0.0.1 --force >/dev/null
[ "$(sha256sum "$out/root.key")" != "$sum" ] || fail "--force did not replace root.key"
[ "$(mode_of "$out/root.key")" = 600 ] || fail "root.key mode after --force"
[ "$(mode_of "$out/master.key")" = 600 ] || fail "master.key mode after --force"
ls -A "$out" | grep -q '\.tmp-' && fail "temporary files left behind"
ok "overwrite protection"

# ---- init-node
"$corvid" pki init-node --ca-dir "$out" --tag D --host node-d.example.com >/dev/null
openssl verify -purpose sslserver -CAfile "$out/root.crt" -untrusted "$out/issuing.crt" "$out/D.crt" \
  >/dev/null || fail "D.crt does not verify"
openssl x509 -in "$out/D.crt" -noout -ext subjectAltName | grep -q 'DNS:node-d.example.com' ||
  fail "D SAN DNS"
[ "$(mode_of "$out/D.pfx")" = 600 ] || fail "D.pfx mode"
set +e
"$corvid" pki init-node --ca-dir "$out" --tag D --host 127.0.0.1 >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "init-node over an existing D should exit 1 (got $rc)"
# a node made elsewhere gets the cluster's master key, never a new one
"$corvid" pki init-node --ca-dir "$out" --tag F --host 127.0.0.1 --out "$tmp/nodeF" >"$tmp/logF"
cmp -s "$out/master.key" "$tmp/nodeF/master.key" || fail "init-node --out did not copy the cluster's master key"
[ "$(mode_of "$tmp/nodeF/master.key")" = 600 ] || fail "copied master.key mode $(mode_of "$tmp/nodeF/master.key")"
"$corvid" pki init-node --ca-dir "$out" --tag G --host 127.0.0.1 --out "$tmp/nodeF" >/dev/null ||
  fail "init-node beside the same master key"
head -c 32 /dev/urandom >"$tmp/nodeF/master.key"
set +e
"$corvid" pki init-node --ca-dir "$out" --tag H --host 127.0.0.1 --out "$tmp/nodeF" >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q 'not the cluster.s master key' "$tmp/err" || fail "init-node beside another master key (rc $rc): $(cat "$tmp/err")"
[ -e "$tmp/nodeF/H.pfx" ] && fail "init-node wrote H's material before refusing"
chmod 644 "$out/master.key"
set +e
"$corvid" pki init-node --ca-dir "$out" --tag H --host 127.0.0.1 --out "$tmp/nodeH" >/dev/null 2>"$tmp/err"; rc=$?
set -e
chmod 600 "$out/master.key"
[ $rc -eq 1 ] && grep -q 'mode 0644' "$tmp/err" || fail "init-node with a 0644 master key (rc $rc): $(cat "$tmp/err")"
ok "init-node"

# ---- rotate-master-key: new key first, then the old one; --finish keeps the new one
cp -p "$out/master.key" "$tmp/mk"
old_id=$("$corvid" pki rotate-master-key --key "$tmp/mk" | sed -n 's/.*then the previous key \([0-9a-f]*\).*/\1/p')
[ -n "$old_id" ] || fail "rotate-master-key does not name the previous key"
[ "$(stat -c %s "$tmp/mk")" = 64 ] || fail "rotating: $(stat -c %s "$tmp/mk") bytes, want 64"
[ "$(mode_of "$tmp/mk")" = 600 ] || fail "rotating: mode $(mode_of "$tmp/mk")"
cmp -s <(tail -c 32 "$tmp/mk") "$out/master.key" || fail "rotating: the previous key is not kept second"
cmp -s <(head -c 32 "$tmp/mk") "$out/master.key" && fail "rotating: no new key"
head -c 32 "$tmp/mk" >"$tmp/new"
set +e
"$corvid" pki rotate-master-key --key "$tmp/mk" >/dev/null 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q 'rotation is in progress' "$tmp/err" || fail "a second rotation before --finish (rc $rc)"
"$corvid" pki rotate-master-key --key "$tmp/mk" --finish >/dev/null || fail "--finish"
cmp -s "$tmp/mk" "$tmp/new" || fail "--finish did not keep the new key alone"
[ "$(mode_of "$tmp/mk")" = 600 ] || fail "finished: mode $(mode_of "$tmp/mk")"
set +e
"$corvid" pki rotate-master-key --key "$tmp/mk" --finish >/dev/null 2>&1; rc=$?
head -c 16 /dev/urandom >"$tmp/short"; chmod 600 "$tmp/short"
"$corvid" pki rotate-master-key --key "$tmp/short" >/dev/null 2>"$tmp/err"; rc2=$?
set -e
[ $rc -eq 1 ] || fail "--finish with one key should exit 1 (got $rc)"
[ $rc2 -eq 1 ] && grep -q 'holds 16 bytes' "$tmp/err" || fail "a 16-byte key file (rc $rc2)"
ls -A "$tmp" | grep -q '\.tmp-' && fail "temporary files left behind"
ok "rotate-master-key"

# ---- with a password, RSA keys
pw=$tmp/pw.txt
printf 'correct horse\n' >"$pw"
out2=$tmp/pki2
"$corvid" pki init-cluster --out "$out2" --nodes A=::1,B=b.example.com --key-type RSA-2048 --days 30 \
  --password-file "$pw" >/dev/null
openssl pkcs12 -in "$out2/A.pfx" -nokeys -passin "pass:correct horse" >/dev/null ||
  fail "A.pfx does not open with the password"
openssl pkcs12 -in "$out2/A.pfx" -nokeys -passin pass:wrong >/dev/null 2>&1 &&
  fail "A.pfx opens with a wrong password"
grep -q 'ENCRYPTED PRIVATE KEY' "$out2/root.key" || fail "root.key not encrypted with a password"
grep -q 'ENCRYPTED PRIVATE KEY' "$out2/A.pem" || fail "A.pem key not encrypted with a password"
openssl x509 -in "$out2/A.crt" -noout -ext keyUsage | grep -q 'Key Encipherment' ||
  fail "RSA node lacks keyEncipherment"
openssl x509 -in "$out2/A.crt" -noout -ext subjectAltName | grep -q 'IP Address:0:0:0:0:0:0:0:1' ||
  fail "IPv6 SAN"
openssl verify -CAfile "$out2/root.crt" -untrusted "$out2/issuing.crt" "$out2/B.crt" >/dev/null ||
  fail "RSA chain does not verify"
"$corvid" pki inspect "$out2/A.pfx" --password-file "$pw" | grep -q 'RSA-2048' || fail "inspect RSA"
set +e
"$corvid" pki inspect "$out2/A.pfx" >/dev/null 2>"$tmp/err"; rc=$?
"$corvid" pki init-node --ca-dir "$out2" --tag E --host 127.0.0.1 >/dev/null 2>&1; rc2=$?
set -e
[ $rc -eq 1 ] && grep -q 'password' "$tmp/err" || fail "inspect without the password"
[ $rc2 -eq 1 ] || fail "init-node without the CA password should fail"
"$corvid" pki init-node --ca-dir "$out2" --tag E --host 127.0.0.1 --password-file "$pw" >/dev/null ||
  fail "init-node with the CA password"
grep -rq 'correct horse' "$out2" "$tmp/log" && fail "the password was written out in clear"
ok "password-protected RSA cluster"

if [ $failures -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
