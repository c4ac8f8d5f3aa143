#!/usr/bin/env bash
# The corvid CLI against three real nodes: every `certs` and `cluster` command, human and --json
# output (parsed), the documented exit codes on every failure path (wrong password, unusable
# files, no reachable node, a node's certificate that does not verify, refused by clearance),
# the password prompt on a terminal, and --url failover with the first node down.
. "$(dirname "$0")/lib.sh"
TESTCERT="$CORVID_BIN/corvid-testcert"
start_cluster A B C
mkdir -p "$WORK/admin" "$WORK/o"
admin A generateClientCert admin "$WORK/admin" >/dev/null
O="$WORK/o"
cd "$WORK"

URL_A="https://127.0.0.1:$(http_port A)"
URL_B="https://127.0.0.1:$(http_port B)"
URL_C="https://127.0.0.1:$(http_port C)"
export CORVID_URL="$URL_A,$URL_B,$URL_C"
export CORVID_CERT="$WORK/admin/admin.pfx"
export CORVID_CA_FILE="$WORK/pki/ca-chain.crt"
unset CORVID_CERT_PASSWORD NO_COLOR

# run RC ARGS...: corvid ARGS (stdin not a terminal), stdout in $O/out, stderr in $O/err; the
# exit status must be RC.
run() {
  local want=$1 rc=0
  shift
  "$CLI" "$@" >"$O/out" 2>"$O/err" </dev/null || rc=$?
  [ "$rc" = "$want" ] ||
    fail "corvid $* -> exit $rc, expected $want; stderr: $(head -c 800 "$O/err"); stdout: $(head -c 400 "$O/out")"
}
err_has() { grep -q -- "$1" "$O/err" || fail "stderr lacks '$1': $(head -c 800 "$O/err")"; }
out_has() { grep -q -- "$1" "$O/out" || fail "stdout lacks '$1': $(head -c 1500 "$O/out")"; }
# json EXPR: a Python expression over d, the JSON document on stdout, must hold.
json() {
  python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$O/out" "$1" || fail "JSON check '$1' failed on: $(head -c 1500 "$O/out")"
}
jget() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$O/out" "$1"; }
tp_of() { openssl x509 -in "$1" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'; }
# onterm INPUT ARGS...: corvid ARGS on a pseudo-terminal, INPUT typed at the password prompt;
# what the terminal showed in $O/out.
cat >"$WORK/onterm.py" <<'EOF'
import os, pty, select, sys, time
answer = sys.argv[1].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
seen, sent, end = b"", False, time.time() + 60
while time.time() < end:
    if not select.select([fd], [], [], 0.2)[0]:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not sent and b"Password for" in seen:
        os.write(fd, answer + b"\n")
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
EOF
onterm() {
  local want=$1 input=$2 rc=0
  shift 2
  python3 "$WORK/onterm.py" "$input" "$CLI" "$@" >"$O/out" 2>&1 || rc=$?
  [ "$rc" = "$want" ] || fail "on a terminal: corvid $* -> exit $rc, expected $want: $(head -c 800 "$O/out")"
}

log "help for every command, with examples"
run 0 --help
out_has "certs" && out_has "cluster" && out_has "4 TLS"
for sub in certs cluster; do
  run 0 "$sub" --help
  out_has "Examples:"
done
for c in list show generate upload edit clone delete purge export whoami expiring; do
  run 0 certs "$c" --help
  out_has "usage: corvid certs $c" && out_has "Examples:" && out_has "Exit status"
done
for c in status topology add-node remove-node; do
  run 0 cluster "$c" --help
  out_has "usage: corvid cluster $c" && out_has "Examples:"
done
run 2 certs
run 2 certs frobnicate
err_has "unknown certs command"
run 2 certs list --frobnicate
run 2 certs show
run 2 certs generate x --clearance God
err_has "ClusterAdmin, ClusterNode, Operator or ValidUser"
run 2 certs generate x --perm db1
err_has "DATABASE=ACCESS"
run 2 certs generate x --perm db1=Write
run 2 certs generate x --key-type DSA-1024
run 2 certs generate x --not-after tomorrow
run 2 certs list --timeout 0
run 2 cluster remove-node lower

log "whoami and list, human and --json"
run 0 certs whoami --json
json 'd["Name"] == "admin" and d["SecurityClearance"] == "ClusterAdmin"'
ADMIN_TP=$(jget 'd["Thumbprint"]')
[ "$ADMIN_TP" = "$(tp_of "$WORK/admin/admin.crt")" ] || fail "whoami thumbprint $ADMIN_TP"
run 0 certs whoami
out_has "Security clearance:  ClusterAdmin" && out_has "Issuer:  *CN=Corvid Issuing CA"
# global options also before the command
run 0 --json --url "$URL_B" certs whoami
json 'd["Thumbprint"] == "'"$ADMIN_TP"'"'
run 0 certs list --json
json 'any(r["Name"] == "admin" and r["Thumbprint"] == "'"$ADMIN_TP"'" for r in d["Results"])'
json 'd["Results"][0]["Name"] == "Server Certificate" and d["LoadedServerCert"] == d["Results"][0]["Thumbprint"]'
json 'all("LastUsed" in r for r in d["Results"])'
# (the node's own entry carries its certificate even with metadataOnly)
json 'all("Certificate" not in r for r in d["Results"][1:])'
json '[r for r in d["Results"] if r["Name"] == "admin"][0]["LastUsed"].endswith("Z")'
json 'sum(r["SecurityClearance"] == "ClusterNode" for r in d["Results"]) == 3'
run 0 certs list
head -1 "$O/out" | grep -q "^NAME  *THUMBPRINT  *CLEARANCE  *VALID FROM  *EXPIRES  *LAST USED  *PERMISSIONS$" ||
  fail "list header: $(head -1 "$O/out")"
grep -q "^admin  *$ADMIN_TP  *ClusterAdmin  *[0-9-]* [0-9:]* [A-Z+0-9-]*  .*(all databases)$" "$O/out" ||
  fail "list row: $(cat "$O/out")"
grep -q $'\033' "$O/out" && fail "colours written to a pipe"
TZ=Asia/Tokyo run 0 certs list --no-last-used
grep -q "^admin .* JST " "$O/out" || fail "dates are not in local time with the zone: $(cat "$O/out")"

TERM=xterm onterm 0 '' certs list --no-last-used
grep -q $'\033\\[1mNAME' "$O/out" || fail "no bold header on a terminal: $(head -2 "$O/out" | od -c | head)"
TERM=xterm NO_COLOR=1 onterm 0 '' certs list --no-last-used
grep -q $'\033' "$O/out" && fail "colours on a terminal despite NO_COLOR"

log "generate: unpacked, as a zip, with a password"
run 0 certs generate ops --clearance Operator --out "$WORK/ops"
out_has "Generated 'ops' (Operator)"
for f in pfx crt key; do
  [ "$(stat -c %a "$WORK/ops/ops.$f")" = 600 ] || fail "ops.$f is not mode 0600"
done
OPS_TP=$(tp_of "$WORK/ops/ops.crt")
out_has "$OPS_TP"
openssl verify -CAfile "$WORK/pki/root.crt" -untrusted "$WORK/pki/issuing.crt" "$WORK/ops/ops.crt" >/dev/null ||
  fail "ops.crt does not chain to the cluster's root"
run 0 certs generate app1 --perm orders=readwrite --perm stats=Read --days 5 --out "$WORK/app1.zip" --json
json 'd["Name"] == "app1" and d["SecurityClearance"] == "ValidUser" and len(d["Thumbprint"]) == 40'
json 'd["Permissions"] == {"orders": "ReadWrite", "stats": "Read"} and d["Files"] == ["'"$WORK/app1.zip"'"]'
APP1_TP=$(jget 'd["Thumbprint"]')
# (grep -q would stop reading early: with pipefail the writer's SIGPIPE fails the pipeline)
[ "$(unzip -l "$WORK/app1.zip" | grep -c 'app1\.\(pfx\|crt\|key\)$')" = 3 ] || fail "the zip lacks app1's files"
(mkdir -p "$WORK/app1" && cd "$WORK/app1" && unzip -q "$WORK/app1.zip") || fail "unzip app1.zip"
printf 'b1-s3cret\n' >"$WORK/bi.pass"
run 0 certs generate bi --perm stats=Read --key-type RSA-2048 --pfx-password-file "$WORK/bi.pass" --out "$WORK/bi"
grep -q "b1-s3cret" "$O/out" "$O/err" && fail "the password was printed"
grep -q ENCRYPTED "$WORK/bi/bi.key" || fail "bi.key is not encrypted"
openssl pkcs12 -in "$WORK/bi/bi.pfx" -passin pass:b1-s3cret -nokeys -out "$WORK/bi.certs" 2>/dev/null &&
  grep -q "BEGIN CERTIFICATE" "$WORK/bi.certs" ||
  fail "bi.pfx does not open with its password"
run 0 pki inspect "$WORK/bi/bi.pfx" --password-file "$WORK/bi.pass"
out_has "RSA-2048"
run 0 certs list --json --no-last-used
N_CERTS=$(jget 'len(d["Results"])')
run 2 certs generate ops --out "$WORK/ops"
err_has "already exists"
run 2 certs generate app1 --out "$WORK/app1.zip"
run 0 certs list --json --no-last-used
[ "$(jget 'len(d["Results"])')" = "$N_CERTS" ] || fail "a refused generate registered a certificate"
run 1 certs generate late --not-after 2001-01-01 --out "$WORK/late"
err_has "400 Bad Request" && err_has "must be in the future" && err_has "from https://127.0.0.1:"

log "show"
run 0 certs show app1
out_has "Permissions:         orders: ReadWrite, stats: Read" && out_has "Thumbprint:          $APP1_TP"
out_has "(in [0-9]* days)"
run 0 certs show "$OPS_TP" --json
json 'd["Name"] == "ops" and d["SecurityClearance"] == "Operator" and len(d["Certificate"]) > 100'
run 0 certs show ops --pem
[ "$(openssl x509 -in "$O/out" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')" = "$OPS_TP" ] ||
  fail "show --pem gave another certificate"
run 1 certs show no-such-name
err_has "no certificate is named 'no-such-name'"
run 1 certs show 0000000000000000000000000000000000000000
err_has "404 Not Found"

log "upload: .pem, .pfx with a password, unusable files"
"$TESTCERT" "$WORK/stranger.pem" stranger 0 30
STRANGER_TP=$(tp_of "$WORK/stranger.pem")
run 0 certs upload "$WORK/stranger.pem" --perm db1=Read --json
json 'd["Name"] == "stranger" and d["Thumbprints"] == ["'"$STRANGER_TP"'"] and d["Permissions"] == {"db1": "Read"}'
"$TESTCERT" "$WORK/partner.pem" partner 0 30
printf 'p4rtner\n' >"$WORK/partner.pass"
openssl pkcs12 -export -in "$WORK/partner.pem" -inkey "$WORK/partner.pem" -out "$WORK/partner.pfx" -passout pass:p4rtner
run 2 certs upload "$WORK/partner.pfx"
err_has "a password is required" && err_has "pfx-password-file"
run 2 certs upload "$WORK/partner.pfx" --pfx-password-file "$WORK/bi.pass"
err_has "wrong password"
run 0 certs upload "$WORK/partner.pfx" --pfx-password-file "$WORK/partner.pass" --name partner --clearance Operator
out_has "Registered 'partner' (Operator)" && out_has "$(tp_of "$WORK/partner.pem")"
onterm 0 p4rtner certs upload "$WORK/partner.pfx" --name partner2
grep -q "Password for" "$O/out" || fail "no prompt: $(cat "$O/out")"
grep -q "p4rtner" "$O/out" && fail "the typed password was echoed"
run 2 certs upload "$WORK/no-such-file.crt"
err_has "cannot open"
run 2 certs upload "$WORK"
err_has "is a directory"
head -c 300 /dev/urandom >"$WORK/garbage.crt"
run 2 certs upload "$WORK/garbage.crt"
err_has "not a certificate"
run 2 certs upload "$WORK/stranger.pem" --pfx-password-file "$WORK/no-such.pass"
"$TESTCERT" "$WORK/twin1.pem" twin1 0 30
"$TESTCERT" "$WORK/twin2.pem" twin2 0 30
run 0 certs upload "$WORK/twin1.pem" --name twin
run 0 certs upload "$WORK/twin2.pem" --name twin
run 1 certs show twin
err_has "2 certificates are named 'twin'; give the thumbprint" && err_has "$(tp_of "$WORK/twin2.pem")"
run 0 certs list --name twin --json --no-last-used
json 'sorted(r["Thumbprint"] for r in d["Results"]) == sorted(["'"$(tp_of "$WORK/twin1.pem")"'", "'"$(tp_of "$WORK/twin2.pem")"'"])'

log "edit"
run 0 certs edit stranger --perm db2=Admin --remove-perm db1 --name stranger2
out_has "Updated 'stranger2'"
run 0 certs show "$STRANGER_TP" --json --no-last-used
json 'd["Name"] == "stranger2" and d["Permissions"] == {"db2": "Admin"} and d["SecurityClearance"] == "ValidUser"'
run 0 certs edit stranger2 --clearance operator --clear-perms --json
json 'd["SecurityClearance"] == "Operator" and d["Permissions"] == {} and d["Thumbprint"] == "'"$STRANGER_TP"'"'
run 2 certs edit stranger2
err_has "nothing to change"

log "clone"
run 0 certs clone app1 --name app1-b --out "$WORK/app1-b" --json
json 'd["Name"] == "app1-b" and d["SecurityClearance"] == "ValidUser" and d["Permissions"] == {"orders": "ReadWrite", "stats": "Read"}'
APP1B_TP=$(jget 'd["Thumbprint"]')
[ "$APP1B_TP" != "$APP1_TP" ] || fail "clone reused the certificate"
run 0 certs whoami --cert "$WORK/app1-b/app1-b.pfx" --json
json 'd["Name"] == "app1-b" and d["Permissions"]["orders"] == "ReadWrite"'

log "expiring"
run 0 certs expiring --days 10 --json
json '[r["Name"] for r in d["Results"]] == ["app1"]'
run 0 certs expiring --days 10
out_has "^app1  *$APP1_TP"
run 0 certs expiring --days 0
out_has "No certificate expires within 0 days"
TERM=xterm onterm 0 '' certs expiring --days 10
grep -q $'\033\\[31m' "$O/out" || fail "an expiration within 5 days is not red on a terminal"

log "refused by clearance, and anonymous"
run 1 certs list --cert "$WORK/app1-b/app1-b.pfx"
err_has "403 Forbidden" && err_has "Operator/ClusterAdmin access is required"
run 1 certs generate boss --clearance ClusterAdmin --cert "$WORK/ops/ops.pfx" --out "$WORK/boss"
err_has "lower clearance: Operator"
run 1 certs delete admin --yes --cert "$WORK/ops/ops.pfx"
err_has "403"
CORVID_CERT='' run 1 certs list
err_has "requires client certificate"
CORVID_CERT='' run 1 certs whoami --json
out_has "^null$" && err_has "no client certificate was given"
run 1 certs delete admin --yes
err_has "current client certificate"

log "delete, and the revoked certificate refused"
run 0 certs delete app1-b --json
json 'd["Deleted"] == [{"Name": "app1-b", "Thumbprint": "'"$APP1B_TP"'"}]'
wait_until 60 "same state" same_state A B C
for u in "$URL_A" "$URL_B" "$URL_C"; do
  run 1 certs whoami --url "$u" --cert "$WORK/app1-b/app1-b.pfx"
  err_has "does not know this client certificate"
done
run 0 certs delete "$STRANGER_TP" partner2
out_has "Revoked 'stranger2'" && out_has "Revoked 'partner2'"
run 1 certs delete no-such-name

log "purge"
"$TESTCERT" "$WORK/old.pem" old-one -30 -1
run 0 certs upload "$WORK/old.pem"
run 0 certs expiring --days 0 --json
json '[r["Name"] for r in d["Results"]] == ["old-one"]'
run 0 certs purge --json
json 'd["Purged"][0]["Name"] == "old-one" and d["Purged"][0]["Thumbprint"] == "'"$(tp_of "$WORK/old.pem")"'"'
run 0 certs list --json --no-last-used
json 'all(r["Name"] != "old-one" for r in d["Results"])'
run 0 certs purge
out_has "Purged 0 expired certificates"

log "export"
run 0 certs export --out "$WORK/collection.pfx" --json
json 'sorted(c["NodeTag"] for c in d["Certificates"]) == ["A", "B", "C"] and d["File"] == "'"$WORK/collection.pfx"'"'
[ "$(openssl pkcs12 -in "$WORK/collection.pfx" -nokeys -passin pass: 2>/dev/null | grep -c 'BEGIN CERTIFICATE')" = 3 ] ||
  fail "the exported collection does not hold three certificates"
run 2 certs export --out "$WORK/collection.pfx"
err_has "already exists"
run 0 certs export --out "$WORK/collection.pfx" --force

log "cluster topology and status"
run 0 cluster topology --json
json 'sorted(d["Topology"]["Members"]) == ["A", "B", "C"] and d["Leader"] in ("A", "B", "C")'
LEADER=$(jget 'd["Leader"]')
run 0 cluster topology
out_has "^$LEADER  *https://127.0.0.1:[0-9]*  *Member (leader)$"
run 0 cluster status --json
json 'd["Healthy"] and d["Leader"] == "'"$LEADER"'" and len(d["Nodes"]) == 3'
json 'all(n["Reachable"] and n["Leader"] == "'"$LEADER"'" and n["Role"] == "Member" for n in d["Nodes"])'
json '[n["State"] for n in d["Nodes"]].count("Leader") == 1'
run 0 cluster status
out_has "^Cluster: 3 nodes, leader $LEADER, term [0-9]*$"
CORVID_CERT='' run 1 cluster status

log "the client certificate: passwords, files, PEM"
run 4 certs whoami --cert "$WORK/bi/bi.pfx"
err_has "a password is required" && err_has "CORVID_CERT_PASSWORD"
run 4 certs whoami --cert "$WORK/bi/bi.pfx" --password-file "$WORK/partner.pass"
err_has "wrong password"
run 0 certs whoami --cert "$WORK/bi/bi.pfx" --password-file "$WORK/bi.pass"
CORVID_CERT_PASSWORD=b1-s3cret run 0 certs whoami --cert "$WORK/bi/bi.pfx" --json
json 'd["Name"] == "bi"'
onterm 0 b1-s3cret certs whoami --cert "$WORK/bi/bi.pfx"
grep -q "Password for" "$O/out" && grep -q "Name: *bi" "$O/out" || fail "prompted whoami: $(cat "$O/out")"
grep -q "b1-s3cret" "$O/out" && fail "the typed password was echoed"
onterm 4 wrong certs whoami --cert "$WORK/bi/bi.pfx"
grep -q "wrong password" "$O/out" || fail "no 'wrong password': $(cat "$O/out")"
run 4 certs whoami --cert "$WORK/no-such.pfx"
err_has "cannot open"
run 4 certs whoami --cert "$WORK/garbage.crt"
run 4 certs whoami --cert "$WORK/ops/ops.crt"
err_has "no private key"
run 0 certs whoami --cert "$WORK/ops/ops.crt" --key "$WORK/ops/ops.key" --json
json 'd["Name"] == "ops"'
run 4 certs whoami --cert "$WORK/ops/ops.crt" --key "$WORK/app1/app1.key"
err_has "matches none"
run 2 certs whoami --password-file "$WORK/no-such.pass"

log "TLS: the nodes are verified, never trusted blindly"
CORVID_CA_FILE='' run 4 certs whoami
err_has "does not verify" && err_has "ca-file"
"$TESTCERT" "$WORK/foreign-ca.pem" foreign -1 30 ca
run 4 certs whoami --ca-file "$WORK/foreign-ca.pem"
run 4 certs whoami --url "https://localhost:$(http_port A)"
err_has "hostname mismatch"
run 0 certs whoami --url "https://localhost:$(http_port A)" --insecure
err_has "not verified"
run 2 certs whoami --ca-file "$WORK/no-such-ca.crt"

log "no reachable node"
run 3 certs list --url https://127.0.0.1:1 --url https://127.0.0.1:2
err_has "no node could be reached" && err_has "Connection refused"
run 3 cluster status --url https://127.0.0.1:1
run 2 certs list --url "http://127.0.0.1:$(http_port A)"
err_has "HTTPS only"
CORVID_URL='' run 2 certs list
err_has "CORVID_URL"

log "add-node and remove-node"
config D "" '"Cluster.TrustedNodeCertificates.Path": "collection.pfx"'
start D
URL_D="https://127.0.0.1:$(http_port D)"
wait_until 60 "D answers" curl -s --cacert "$WORK/pki/ca-chain.crt" "$URL_D/cluster/node-info"
run 1 cluster add-node "$URL_D" --cert "$WORK/ops/ops.pfx"
err_has "403"
run 2 cluster add-node "$URL_D" --tag E
err_has "says it is node D"
rc=0
"$CLI" cluster add-node "$URL_D" --json >"$O/out" 2>"$O/err" </dev/null || rc=$?
if [ "$rc" = 1 ] && grep -q "404 Not Found" "$O/err"; then
  log "SKIP add-node/remove-node: the node has no PUT /admin/cluster/node"
  stop D
else
  [ "$rc" = 0 ] || fail "add-node -> $rc: $(cat "$O/err")"
  json 'd == {"Tag": "D", "Url": "'"$URL_D"'", "Member": True}'
  run 0 cluster status --json
  json 'd["Healthy"] and sorted(n["Tag"] for n in d["Nodes"]) == ["A", "B", "C", "D"]'
  run 0 certs whoami --url "$URL_D" --json
  json 'd["Name"] == "admin"'
  run 1 cluster add-node "$URL_D"
  err_has "409"
  run 0 cluster remove-node D --yes --json
  json 'd == {"Tag": "D", "Removed": True}'
  run 0 cluster topology --json
  json 'sorted(d["Topology"]["AllNodes"]) == ["A", "B", "C"]'
  stop D
fi

log "--url failover: the first node stopped (SIGSTOP), then down"
kill -STOP "$(cat "$WORK/A.pid")"
run 0 certs whoami --json
json 'd["Name"] == "admin"'
err_has "$URL_A: the TLS handshake timed out; trying $URL_B"
kill -CONT "$(cat "$WORK/A.pid")"
stop A
run 0 certs list --json
json 'any(r["Name"] == "ops" for r in d["Results"])'
err_has "note: $URL_A: cannot connect"
err_has "trying $URL_B"
run 0 certs generate after-failover --out "$WORK/af" --verbose
err_has "POST $URL_B/admin/certificates -> 200"
run 0 certs show after-failover --json --url "$URL_A" --url "$URL_C"
json 'd["Name"] == "after-failover"'
run 0 cluster status --json
json 'not d["Healthy"] and [n["Reachable"] for n in d["Nodes"] if n["Tag"] == "A"] == [False]'
json 'all(n["Reachable"] for n in d["Nodes"] if n["Tag"] != "A")'
run 3 certs list --url "$URL_A"

stop B
stop C
log "PASS"
